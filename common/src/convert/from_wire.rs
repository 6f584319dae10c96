//! `stilts.v1` → domain: what the coordinator and the clients receive.

use stilts_proto::v1 as pb;

use super::ConvertError;
use crate::cell_state::CellState;
use crate::failure::{Failure, FailureReason};
use crate::heartbeat::RunningJob;
use crate::progress::Progress;
use crate::series::Point;
use crate::sweep_status::{AxisCompute, CellRow, ComputeSummary, ResultRow};
use crate::usage::SweepCompute;

impl TryFrom<pb::FailureReason> for FailureReason {
    type Error = ConvertError;

    fn try_from(reason: pb::FailureReason) -> Result<Self, ConvertError> {
        Ok(match reason {
            pb::FailureReason::Unspecified => return Err(ConvertError::UnspecifiedFailureReason),
            pb::FailureReason::Error => Self::Error,
            pb::FailureReason::Timeout => Self::Timeout,
            pb::FailureReason::BadMetrics => Self::BadMetrics,
            pb::FailureReason::Preempted => Self::Preempted,
            pb::FailureReason::Oom => Self::Oom,
            pb::FailureReason::Data => Self::Data,
            pb::FailureReason::User => Self::User,
            pb::FailureReason::Cancelled => Self::Cancelled,
            pb::FailureReason::WorkerLost => Self::WorkerLost,
        })
    }
}

/// Maps the raw `i32` a prost message carries for `FailureReason`.
pub fn failure_reason_from_wire(raw: i32) -> Result<FailureReason, ConvertError> {
    let reason =
        pb::FailureReason::try_from(raw).map_err(|_| ConvertError::UnknownFailureReason(raw))?;
    FailureReason::try_from(reason)
}

impl TryFrom<pb::Failure> for Failure {
    type Error = ConvertError;

    fn try_from(f: pb::Failure) -> Result<Self, ConvertError> {
        Ok(Self {
            reason: failure_reason_from_wire(f.reason)?,
            retryable: f.retryable,
            counts_against_budget: f.counts_against_budget,
            message: f.message,
        })
    }
}

impl From<pb::Progress> for Progress {
    fn from(p: pb::Progress) -> Self {
        Self {
            step: p.step,
            total: p.total,
            loss: p.loss,
            phase: p.phase,
        }
    }
}

impl From<pb::CurvePoint> for Point {
    fn from(p: pb::CurvePoint) -> Self {
        Self {
            step: p.step,
            loss: p.loss,
            lr: p.lr,
            grad_norm: p.grad_norm,
            dev: p.dev,
        }
    }
}

impl From<pb::RunningJob> for RunningJob {
    fn from(r: pb::RunningJob) -> Self {
        Self {
            job_key: r.job_key,
            attempt: r.attempt,
            fencing_token: r.fencing_token,
            progress: r.progress.map(Progress::from),
            curve: r.curve.into_iter().map(Point::from).collect(),
        }
    }
}

impl From<pb::ResultRow> for ResultRow {
    fn from(r: pb::ResultRow) -> Self {
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

impl From<pb::Cell> for CellRow {
    /// An unknown state string (a newer coordinator) reads as blocked: the cell is not counted
    /// as done, failed or cancelled.
    fn from(c: pb::Cell) -> Self {
        Self {
            state: CellState::parse(&c.state).unwrap_or(CellState::Blocked),
            reason: (!c.reason.is_empty()).then_some(c.reason),
            model: c.model,
            intermediate: c.intermediate,
            target: c.target,
            language: c.language,
            seed: c.seed,
            job_keys: c.job_keys,
        }
    }
}

impl From<&pb::SweepCompute> for ComputeSummary {
    fn from(c: &pb::SweepCompute) -> Self {
        Self {
            totals: SweepCompute {
                spent_ms: c.spent_ms,
                gpu_ms: c.gpu_ms,
                lost_ms: c.lost_ms,
                naive_training_ms: c.naive_training_ms,
                planned_training_ms: c.planned_training_ms,
                reused_training_ms: c.reused_training_ms,
            },
            saved_ms: c.saved_ms,
            axes: c
                .axes
                .iter()
                .map(|a| AxisCompute {
                    axis: a.axis.clone(),
                    value: a.value.clone(),
                    spent_ms: a.spent_ms,
                    gpu_ms: a.gpu_ms,
                    lost_ms: a.lost_ms,
                })
                .collect(),
        }
    }
}
