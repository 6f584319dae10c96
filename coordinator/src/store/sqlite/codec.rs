//! Records ⇄ rows. u64 values are stored as i64 bit patterns (lossless both ways).

use std::collections::BTreeMap;

use rusqlite::Row;
use stilts_common::failure::Failure;
use stilts_common::job::JobSpec;
use stilts_common::state::{JobState, JobStatus};
use stilts_common::store::{CellRecord, EventRecord, JobRecord, SweepRecord, WorkerRecord};

use super::op_error::OpError;

/// u64 → the i64 SQLite stores (two's complement bit pattern).
pub(super) fn to_db(v: u64) -> i64 {
    v as i64
}

/// The inverse of [`to_db`].
pub(super) fn from_db(v: i64) -> u64 {
    v as u64
}

fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> OpError {
    OpError::Corrupt {
        what: what.into(),
        detail: detail.to_string(),
    }
}

fn json_col<T: serde::de::DeserializeOwned>(
    key: &str,
    column: &str,
    text: &str,
) -> Result<T, OpError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("job {key}"), format!("{column}: {e}")))
}

pub(super) const SWEEP_COLS: &str =
    "name, file_name, grid_toml, grid_digest, submitted_at_ms, cancelled, backend";

pub(super) fn sweep_from_row(r: &Row<'_>) -> rusqlite::Result<SweepRecord> {
    Ok(SweepRecord {
        name: r.get(0)?,
        file_name: r.get(1)?,
        grid_toml: r.get(2)?,
        grid_digest: r.get(3)?,
        submitted_at_ms: from_db(r.get(4)?),
        cancelled: r.get(5)?,
        backend: r.get(6)?,
    })
}

pub(super) const JOB_COLS: &str = "key, spec_json, state, attempt, budget_spent, max_attempts, \
     dependents, worker_id, not_before_ms, last_failure_json, metrics_json, artifact, version, \
     usage_json";

/// A job row as read, before its JSON columns are decoded (decoding happens outside the
/// rusqlite row callback so a bad value is reported as `Corrupt`, not as a SQL error).
pub(super) struct RawJob {
    key: String,
    spec_json: String,
    state: String,
    attempt: u32,
    budget_spent: u32,
    max_attempts: u32,
    dependents: i64,
    worker_id: Option<String>,
    not_before_ms: i64,
    last_failure_json: Option<String>,
    metrics_json: Option<String>,
    artifact: Option<String>,
    version: i64,
    usage_json: Option<String>,
}

pub(super) fn raw_job_from_row(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        key: r.get(0)?,
        spec_json: r.get(1)?,
        state: r.get(2)?,
        attempt: r.get(3)?,
        budget_spent: r.get(4)?,
        max_attempts: r.get(5)?,
        dependents: r.get(6)?,
        worker_id: r.get(7)?,
        not_before_ms: r.get(8)?,
        last_failure_json: r.get(9)?,
        metrics_json: r.get(10)?,
        artifact: r.get(11)?,
        version: r.get(12)?,
        usage_json: r.get(13)?,
    })
}

impl RawJob {
    pub(super) fn decode(self) -> Result<JobRecord, OpError> {
        let key = self.key;
        let spec: JobSpec = json_col(&key, "spec_json", &self.spec_json)?;
        let state = JobState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("job {key}"), format!("state {:?}", self.state)))?;
        let last_failure: Option<Failure> = match &self.last_failure_json {
            Some(text) => Some(json_col(&key, "last_failure_json", text)?),
            None => None,
        };
        let metrics: Option<serde_json::Value> = match &self.metrics_json {
            Some(text) => Some(json_col(&key, "metrics_json", text)?),
            None => None,
        };
        // NULL: stored before accounting existed (schema version 3 and older).
        let usage = match &self.usage_json {
            Some(text) => json_col(&key, "usage_json", text)?,
            None => Default::default(),
        };
        Ok(JobRecord {
            usage,
            spec,
            status: JobStatus {
                state,
                attempt: self.attempt,
                budget_spent: self.budget_spent,
            },
            max_attempts: self.max_attempts,
            dependents: from_db(self.dependents),
            worker_id: self.worker_id,
            not_before_ms: from_db(self.not_before_ms),
            last_failure,
            metrics,
            artifact: self.artifact,
            version: from_db(self.version),
            key,
        })
    }
}

/// The JSON columns of a job as written.
pub(super) struct JobJson {
    pub spec: String,
    pub last_failure: Option<String>,
    pub metrics: Option<String>,
    pub usage: String,
}

pub(super) fn job_json(job: &JobRecord) -> Result<JobJson, serde_json::Error> {
    let status = status_json(job)?;
    Ok(JobJson {
        spec: serde_json::to_string(&job.spec)?,
        last_failure: status.last_failure,
        metrics: status.metrics,
        usage: status.usage,
    })
}

/// The JSON columns a transition may change (everything in [`JobJson`] but the spec).
pub(super) struct StatusJson {
    pub last_failure: Option<String>,
    pub metrics: Option<String>,
    pub usage: String,
}

pub(super) fn status_json(job: &JobRecord) -> Result<StatusJson, serde_json::Error> {
    Ok(StatusJson {
        last_failure: job
            .last_failure
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
        metrics: job
            .metrics
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?,
        usage: serde_json::to_string(&job.usage)?,
    })
}

/// The `results` rows of a metrics document: one per language × numeric metric, skipping the
/// `train` entry (training curves) and anything that is not `{language: {metric: number}}`.
pub(super) fn result_rows(metrics: &serde_json::Value) -> Vec<(&str, &str, f64)> {
    let Some(languages) = metrics.as_object() else {
        return Vec::new();
    };
    languages
        .iter()
        .filter(|(language, _)| language.as_str() != "train")
        .filter_map(|(language, m)| Some((language, m.as_object()?)))
        .flat_map(|(language, m)| {
            m.iter().filter_map(move |(metric, v)| {
                Some((language.as_str(), metric.as_str(), v.as_f64()?))
            })
        })
        .collect()
}

pub(super) const CELL_COLS: &str = "model, intermediate, target, language, seed, evaluate_job";

pub(super) fn cell_from_row(r: &Row<'_>) -> rusqlite::Result<CellRecord> {
    Ok(CellRecord {
        model: r.get(0)?,
        intermediate: r.get(1)?,
        target: r.get(2)?,
        language: r.get(3)?,
        seed: from_db(r.get(4)?),
        evaluate_job: r.get(5)?,
    })
}

pub(super) const WORKER_COLS: &str =
    "id, name, slots, backend, labels_json, cached_artifacts_json, lease_expires_at_ms";

pub(super) type RawWorker = (WorkerRecord, String, String);

/// A worker row; its JSON columns come back as text for [`decode_worker`].
pub(super) fn raw_worker_from_row(r: &Row<'_>) -> rusqlite::Result<RawWorker> {
    Ok((
        WorkerRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            slots: r.get(2)?,
            backend: r.get(3)?,
            labels: BTreeMap::new(),
            cached_artifacts: Vec::new(),
            lease_expires_at_ms: from_db(r.get(6)?),
        },
        r.get(4)?,
        r.get(5)?,
    ))
}

pub(super) fn decode_worker((mut w, labels, cached): RawWorker) -> Result<WorkerRecord, OpError> {
    let what = format!("worker {}", w.id);
    w.labels = serde_json::from_str(&labels).map_err(|e| corrupt(what.clone(), e))?;
    w.cached_artifacts = serde_json::from_str(&cached).map_err(|e| corrupt(what, e))?;
    Ok(w)
}

pub(super) const EVENT_COLS: &str =
    "seq, job_key, from_state, to_state, attempt, worker_id, message, at_ms";

pub(super) fn event_from_row(r: &Row<'_>) -> rusqlite::Result<EventRecord> {
    Ok(EventRecord {
        seq: from_db(r.get(0)?),
        job_key: r.get(1)?,
        from: r.get(2)?,
        to: r.get(3)?,
        attempt: r.get(4)?,
        worker_id: r.get(5)?,
        message: r.get(6)?,
        at_ms: from_db(r.get(7)?),
    })
}
