//! Domain → `stilts.v1`: what the coordinator sends.

use stilts_proto::v1 as pb;

use crate::failure::{Failure, FailureReason};
use crate::heartbeat::HeartbeatReply;
use crate::job::StageKind;
use crate::progress::Progress;
use crate::series::Point;
use crate::store::EventRecord;
use crate::sweep_status::{
    CellRow, ComputeSummary, Counts, JobSummary, ResultRow, SweepStatus, by_cell_state,
    by_job_state,
};

impl From<FailureReason> for pb::FailureReason {
    fn from(reason: FailureReason) -> Self {
        match reason {
            FailureReason::Error => Self::Error,
            FailureReason::Timeout => Self::Timeout,
            FailureReason::BadMetrics => Self::BadMetrics,
            FailureReason::Preempted => Self::Preempted,
            FailureReason::Oom => Self::Oom,
            FailureReason::Data => Self::Data,
            FailureReason::User => Self::User,
            FailureReason::Cancelled => Self::Cancelled,
            FailureReason::WorkerLost => Self::WorkerLost,
        }
    }
}

impl From<Failure> for pb::Failure {
    fn from(f: Failure) -> Self {
        Self {
            reason: pb::FailureReason::from(f.reason) as i32,
            retryable: f.retryable,
            counts_against_budget: f.counts_against_budget,
            message: f.message,
        }
    }
}

impl From<Progress> for pb::Progress {
    fn from(p: Progress) -> Self {
        Self {
            step: p.step,
            total: p.total,
            loss: p.loss,
            phase: p.phase,
        }
    }
}

impl From<Point> for pb::CurvePoint {
    fn from(p: Point) -> Self {
        Self {
            step: p.step,
            loss: p.loss,
            lr: p.lr,
            grad_norm: p.grad_norm,
            dev: p.dev,
        }
    }
}

impl From<HeartbeatReply> for pb::HeartbeatResponse {
    fn from(r: HeartbeatReply) -> Self {
        Self {
            cancel_job_keys: r.cancel_job_keys,
            known: r.known,
        }
    }
}

impl From<SweepStatus> for pb::SweepStatus {
    fn from(s: SweepStatus) -> Self {
        Self {
            sweep: s.sweep,
            cells_total: s.cells_total,
            cells: cell_counts(&s.cells),
            jobs: StageKind::ALL
                .into_iter()
                .map(|k| pb::KindCounts {
                    kind: k.as_str().to_string(),
                    jobs: state_counts(by_job_state(&s.jobs[k.rank() as usize])),
                })
                .collect(),
            axes: s
                .axes
                .into_iter()
                .map(|a| pb::AxisValueCounts {
                    axis: a.axis.to_string(),
                    value: a.value,
                    cells: cell_counts(&a.cells),
                })
                .collect(),
            finished: s.finished,
            failed: s.failed.into_iter().map(pb::JobSummary::from).collect(),
            backend: s.backend,
            waiting: s.waiting,
            tasks_json: s.tasks_json,
            compute: Some(s.compute.into()),
        }
    }
}

fn state_counts(named: Vec<(&'static str, u64)>) -> Vec<pb::StateCount> {
    named
        .into_iter()
        .map(|(state, count)| pb::StateCount {
            state: state.to_string(),
            count,
        })
        .collect()
}

fn cell_counts(c: &Counts) -> Vec<pb::StateCount> {
    state_counts(by_cell_state(c))
}

impl From<JobSummary> for pb::JobSummary {
    fn from(j: JobSummary) -> Self {
        Self {
            job_key: j.job_key,
            kind: j.kind.as_str().to_string(),
            state: j.state.as_str().to_string(),
            attempt: j.attempt,
            message: j.message,
            progress: j.progress.map(pb::Progress::from),
            worker_id: j.worker_id,
        }
    }
}

impl From<CellRow> for pb::Cell {
    fn from(c: CellRow) -> Self {
        Self {
            model: c.model,
            intermediate: c.intermediate,
            target: c.target,
            language: c.language,
            seed: c.seed,
            state: c.state.as_str().to_string(),
            job_keys: c.job_keys,
            reason: c.reason.unwrap_or_default(),
        }
    }
}

impl From<ResultRow> for pb::ResultRow {
    fn from(r: ResultRow) -> Self {
        Self {
            model: r.model,
            intermediate: r.intermediate,
            target: r.target,
            language: r.language,
            seed: r.seed,
            metric: r.metric,
            value: r.value,
            job_key: r.job_key,
            code_version: r.code_version,
            data_version: r.data_version,
        }
    }
}

impl From<ComputeSummary> for pb::SweepCompute {
    fn from(c: ComputeSummary) -> Self {
        let t = c.totals;
        Self {
            spent_ms: t.spent_ms,
            gpu_ms: t.gpu_ms,
            lost_ms: t.lost_ms,
            naive_training_ms: t.naive_training_ms,
            planned_training_ms: t.planned_training_ms,
            reused_training_ms: t.reused_training_ms,
            saved_ms: c.saved_ms,
            axes: c
                .axes
                .into_iter()
                .map(|a| pb::AxisCompute {
                    axis: a.axis,
                    value: a.value,
                    spent_ms: a.spent_ms,
                    gpu_ms: a.gpu_ms,
                    lost_ms: a.lost_ms,
                })
                .collect(),
        }
    }
}

/// One logged transition of a job of stage `kind`, as `StreamEvents` sends it.
pub fn event_to_wire(e: &EventRecord, kind: StageKind) -> pb::Event {
    pb::Event {
        seq: e.seq,
        job_key: e.job_key.clone(),
        kind: kind.as_str().to_string(),
        from_state: e.from.clone(),
        to_state: e.to.clone(),
        attempt: e.attempt,
        worker_id: e.worker_id.clone(),
        message: e.message.clone(),
        at_ms: e.at_ms,
    }
}
