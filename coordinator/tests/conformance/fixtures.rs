//! Records the conformance suite writes: small grids of intermediate → target → evaluate chains.

use std::collections::BTreeMap;

use stilts_common::failure::{Failure, FailureReason};
use stilts_common::job::{ExecutorSpec, JobSpec, StageKind};
use stilts_common::state::{JobState, JobStatus};
use stilts_common::store::{
    CellRecord, EventRecord, JobRecord, JobUpdate, SweepRecord, WorkerRecord,
};

pub const LANGUAGES: [&str; 2] = ["de", "sw"];

fn spec(
    kind: StageKind,
    task: &str,
    seed: u64,
    parent: Option<&str>,
    languages: &[&str],
) -> JobSpec {
    JobSpec {
        kind,
        model: "xlmr".into(),
        model_source: "FacebookAI/xlm-roberta-base".into(),
        task: task.into(),
        intermediate: "squad".into(),
        languages: languages.iter().map(|l| l.to_string()).collect(),
        seed,
        recipe: BTreeMap::from([("lr".to_string(), serde_json::json!(2e-5))]),
        executor: ExecutorSpec::Burn,
        parent: parent.map(str::to_owned),
        data_version: "v1".into(),
        code_version: "c1".into(),
        task_defs: Default::default(),
    }
}

fn job(key: String, spec: JobSpec) -> JobRecord {
    JobRecord {
        key,
        status: JobStatus::new(spec.parent.is_none()),
        spec,
        max_attempts: 3,
        dependents: 2,
        worker_id: None,
        not_before_ms: 0,
        last_failure: None,
        metrics: None,
        artifact: None,
        version: 0,
        usage: Default::default(),
    }
}

pub fn intermediate_key(seed: u64) -> String {
    format!("intermediate:squad:{seed}")
}

pub fn evaluate_key(target: &str, seed: u64) -> String {
    format!("evaluate:{target}:{seed}")
}

/// A sweep over `targets` × seeds {1, 2} × [`LANGUAGES`]: one intermediate job per seed (shared
/// by every target, and by other sweeps over the same seeds), one target and one evaluate job
/// per (target, seed). Cells come in a deliberately unsorted order.
pub fn grid(
    name: &str,
    digest: &str,
    targets: &[&str],
) -> (SweepRecord, Vec<JobRecord>, Vec<CellRecord>) {
    let sweep = SweepRecord {
        name: name.into(),
        file_name: format!("{name}.toml"),
        grid_toml: format!("[sweep]\nname = {name:?}\n"),
        grid_digest: digest.into(),
        submitted_at_ms: 1_700_000_000_000,
        cancelled: false,
        backend: "libtorch-cuda".into(),
    };
    let mut jobs = Vec::new();
    let mut cells = Vec::new();
    for seed in [2, 1] {
        let ikey = intermediate_key(seed);
        jobs.push(job(
            ikey.clone(),
            spec(StageKind::Intermediate, "squad", seed, None, &[]),
        ));
        for target in targets {
            let tkey = format!("target:{target}:{seed}");
            let ekey = evaluate_key(target, seed);
            jobs.push(job(
                tkey.clone(),
                spec(StageKind::Target, target, seed, Some(&ikey), &[]),
            ));
            jobs.push(job(
                ekey.clone(),
                spec(StageKind::Evaluate, target, seed, Some(&tkey), &LANGUAGES),
            ));
            for language in LANGUAGES.iter().rev() {
                cells.push(CellRecord {
                    model: "xlmr".into(),
                    intermediate: "squad".into(),
                    target: target.to_string(),
                    language: language.to_string(),
                    seed,
                    evaluate_job: ekey.clone(),
                });
            }
        }
    }
    (sweep, jobs, cells)
}

/// `job` moved to `state` (as the coordinator would after a transition), with its event.
pub fn transition(job: &JobRecord, state: JobState, worker: &str, at_ms: u64) -> JobUpdate {
    let mut record = job.clone();
    let from = record.status.state;
    record.status.state = state;
    if state == JobState::Leased {
        record.status.attempt += 1;
        record.worker_id = Some(worker.into());
    }
    JobUpdate {
        expected_version: job.version,
        event: Some(EventRecord {
            seq: 0,
            job_key: job.key.clone(),
            from: from.to_string(),
            to: state.to_string(),
            attempt: record.status.attempt,
            worker_id: worker.into(),
            message: format!("{from} -> {state}"),
            at_ms,
        }),
        record,
    }
}

/// `job` completed with metrics for [`LANGUAGES`] (plus a `train` entry) and an artifact.
pub fn completed(job: &JobRecord, accuracy: f64) -> JobRecord {
    let mut r = job.clone();
    r.status.state = JobState::Succeeded;
    r.metrics = Some(serde_json::json!({
        "de": {"accuracy": accuracy, "f1": accuracy - 1.0},
        "sw": {"accuracy": accuracy - 10.0, "f1": accuracy - 11.0},
        "train": {"loss": [2.0, 1.0, 0.5]},
    }));
    r.artifact = Some(format!("file:///artifacts/{}", job.key));
    r.last_failure = Some(Failure::preempted("spot instance reclaimed"));
    r.not_before_ms = 1_700_000_123_456;
    r
}

pub fn worker(id: &str, slots: u32) -> WorkerRecord {
    WorkerRecord {
        id: id.into(),
        name: format!("node-{id}"),
        slots,
        backend: "cuda".into(),
        labels: BTreeMap::from([("gpu".to_string(), "h100".to_string())]),
        cached_artifacts: vec![intermediate_key(1)],
        lease_expires_at_ms: 1_700_000_010_000,
    }
}

/// A permanent failure record, for round-tripping `last_failure`.
pub fn failed(job: &JobRecord) -> JobRecord {
    let mut r = job.clone();
    r.status.state = JobState::Failed;
    r.status.budget_spent = 3;
    r.last_failure = Some(Failure::permanent(FailureReason::Data, "bad row 17"));
    r
}
