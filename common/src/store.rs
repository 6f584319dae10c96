//! The `Store` trait: durable state of sweeps, cells, jobs, workers and the event log, in the
//! words of the domain. Every job write is a compare-and-set on the record's `version`; the
//! fencing token of an assignment is the version its `Assign` write produced, so any later write
//! (lease expiry, reassignment, cancel) makes older tokens stale.
//!
//! Backends: SQLite (embedded default, `coordinator/src/store/sqlite.rs`) and etcd (clusters).
//! One conformance suite (`coordinator/tests/conformance/mod.rs`) runs against each of them.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::failure::Failure;
use crate::job::JobSpec;
use crate::series::Point;
use crate::state::JobStatus;

/// A submitted grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRecord {
    pub name: String,
    /// File name the grid came from (for error messages and `status`).
    pub file_name: String,
    /// The grid file's text, kept so the sweep can be re-planned and audited.
    pub grid_toml: String,
    pub grid_digest: String,
    pub submitted_at_ms: u64,
    pub cancelled: bool,
    /// The trainer backend family its burn jobs need (`cpu`, `libtorch-cpu`, `libtorch-cuda`):
    /// the submit's override, else the grid's `[executor] backend`; "" = any worker with the
    /// trainer (and always "" for command grids). See `crate::backend`.
    #[serde(default)]
    pub backend: String,
}

/// One point of the grid, by axis values, pointing at the evaluate job that produces its result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CellRecord {
    pub model: String,
    pub intermediate: String,
    pub target: String,
    pub language: String,
    pub seed: u64,
    /// Key of the evaluate job; the rest of the chain follows `JobSpec::parent`.
    pub evaluate_job: String,
}

/// A stage job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub key: String,
    pub spec: JobSpec,
    pub status: JobStatus,
    /// Attempt budget (attempts that count against it before the job fails).
    pub max_attempts: u32,
    /// Scheduling priority: number of cells whose chain contains this job.
    pub dependents: u64,
    /// The worker holding the job while `leased`.
    pub worker_id: Option<String>,
    /// Backoff: not assignable before this time (unix ms).
    pub not_before_ms: u64,
    pub last_failure: Option<Failure>,
    /// Metrics JSON the job wrote (evaluate: `{"de": {"accuracy": 81.2}, …}`).
    pub metrics: Option<serde_json::Value>,
    /// Where the job's artifacts are.
    pub artifact: Option<String>,
    /// Compare-and-set version; 0 before the record is first stored. Bumped by every write.
    pub version: u64,
    /// What the job's attempts cost (see [`crate::usage`]); written with the transitions.
    #[serde(default)]
    pub usage: crate::usage::Usage,
}

/// A registered worker. Its lease is kept alive by heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRecord {
    pub id: String,
    pub name: String,
    pub slots: u32,
    pub backend: String,
    pub labels: BTreeMap<String, String>,
    /// Job keys whose artifacts the worker holds locally.
    pub cached_artifacts: Vec<String>,
    /// Lease expiry (unix ms).
    pub lease_expires_at_ms: u64,
}

/// One entry of the event log (job state changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Assigned by the store on append (monotonic); ignored on write.
    pub seq: u64,
    pub job_key: String,
    pub from: String,
    pub to: String,
    pub attempt: u32,
    pub worker_id: String,
    pub message: String,
    pub at_ms: u64,
}

/// The training curve of one job attempt: a bounded, downsampled series
/// ([`crate::series`]), replaced whole by each heartbeat that carries it. Each attempt keeps its
/// own curve; a retry starts a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurveRecord {
    pub job_key: String,
    pub attempt: u32,
    /// Points in step order (at most a few thousand; NaN/inf values kept, see `Point`).
    pub points: Vec<Point>,
}

/// A compare-and-set write of one job, with the event it logs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobUpdate {
    /// The version the writer read; the write fails with [`Conflict`] if the stored one differs.
    pub expected_version: u64,
    /// The new record (its `version` field is ignored; the store sets it).
    pub record: JobRecord,
    pub event: Option<EventRecord>,
}

/// A compare-and-set write lost: the record changed since it was read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("job {key}: expected version {expected}, stored version is {actual}")]
pub struct Conflict {
    pub key: String,
    pub expected: u64,
    /// 0 when the job does not exist.
    pub actual: u64,
}

/// What `submit` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubmitOutcome {
    /// True when the sweep name was new (false: identical re-submission, nothing written).
    pub sweep_created: bool,
    /// Jobs written now, each at version 1 (the others were already stored, by this or another
    /// sweep, and keep their records).
    pub jobs_inserted: u64,
    /// Keys of the given jobs that were stored before this submit and kept as they were (empty
    /// when `sweep_created` is false). Every other given job was inserted at version 1, so the
    /// caller knows each stored version without reading the jobs back.
    pub already_stored: Vec<String>,
}

/// What `delete_sweep` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteOutcome {
    /// Cells the sweep had.
    pub cells: u64,
    /// Memberships removed: the jobs the sweep contained.
    pub jobs: u64,
    /// Keys of the job records removed with `purge` (their results and curves went with them),
    /// sorted; the caller removes their artifacts.
    pub purged: Vec<String>,
}

/// Everything the coordinator rebuilds its memory from on start.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub sweeps: Vec<SweepRecord>,
    /// Jobs with their sweeps (a job shared by several sweeps appears once, with every sweep).
    pub jobs: Vec<(JobRecord, Vec<String>)>,
    pub workers: Vec<WorkerRecord>,
    /// Sequence number of the last event (0 when none).
    pub last_event_seq: u64,
}

#[derive(Debug, Error)]
pub enum StoreError {
    /// A sweep of this name exists with a different grid.
    #[error(
        "sweep {name:?} already exists with a different grid (digest {existing}); pick another [sweep] name or resume with the same file"
    )]
    SweepExists { name: String, existing: String },
    #[error("sweep {0:?} not found")]
    SweepNotFound(String),
    /// The backend is unreachable or failed; the caller must not assume the write happened.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("corrupt record {what}: {detail}")]
    Corrupt { what: String, detail: String },
}

/// Durable coordinator state. Implementations are cheap to clone handles (`Arc` inside).
pub trait Store: Send + Sync + 'static {
    /// Loads everything but cells and events (see [`Store::cells`], [`Store::events_after`]).
    fn load(&self) -> impl Future<Output = Result<Snapshot, StoreError>> + Send;

    /// Records a sweep, its cells and those of its jobs not stored yet (jobs are shared across
    /// sweeps by key), inserting new jobs at version 1. The sweep becomes visible (to `load`
    /// and `cells`) all at once, with its cells and memberships, or not at all; a backend may
    /// write the new jobs ahead of it in several transactions so that a big submit does not hold
    /// up other writes, and a submit that stops halfway may leave such jobs behind without any
    /// sweep (they are reused by the next submit that names them). Re-submitting the same name
    /// with the same digest writes nothing.
    fn submit(
        &self,
        sweep: SweepRecord,
        jobs: Vec<JobRecord>,
        cells: Vec<CellRecord>,
    ) -> impl Future<Output = Result<SubmitOutcome, StoreError>> + Send;

    /// Applies job writes, each one compare-and-set on its version, each atomic with its event;
    /// one lost race does not undo the others. Returns each write's new version or conflict,
    /// in order.
    fn update_jobs(
        &self,
        updates: Vec<JobUpdate>,
    ) -> impl Future<Output = Result<Vec<Result<u64, Conflict>>, StoreError>> + Send;

    /// The cells of a sweep, in the order they were submitted.
    fn cells(
        &self,
        sweep: &str,
    ) -> impl Future<Output = Result<Vec<CellRecord>, StoreError>> + Send;

    fn set_sweep_cancelled(
        &self,
        sweep: &str,
        cancelled: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates or replaces a worker record (registration, lease renewal).
    fn put_worker(
        &self,
        worker: WorkerRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn remove_worker(&self, id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Events with `seq > after`, oldest first, at most `limit`.
    fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<EventRecord>, StoreError>> + Send;

    /// Creates or replaces the curve of one job attempt. The caller has checked that the attempt
    /// is current (fencing token); a curve is a display record, so the write is not fenced again.
    fn put_curve(&self, curve: CurveRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes a sweep: its record, its cells and its memberships, all at once. Its jobs stay
    /// (they are shared by key: another sweep, or this one submitted again, reuses their
    /// results), and a job that no sweep contains any more is never scheduled. With `purge`,
    /// every job record that belongs to no sweep and is not leased is removed too, with its
    /// results and curves (events stay: the log is append-only). `SweepNotFound` when no sweep
    /// has this name.
    fn delete_sweep(
        &self,
        sweep: &str,
        purge: bool,
    ) -> impl Future<Output = Result<DeleteOutcome, StoreError>> + Send;

    /// Gives the space of deleted records back: SQLite rewrites its file (`VACUUM`), etcd
    /// compacts its history up to the current revision and defragments. Returns a line saying
    /// what it did, for the operator.
    fn compact(&self) -> impl Future<Output = Result<String, StoreError>> + Send;

    /// The curves of a job, one per attempt that reported one, oldest attempt first.
    fn curves(
        &self,
        job_key: &str,
    ) -> impl Future<Output = Result<Vec<CurveRecord>, StoreError>> + Send;
}
