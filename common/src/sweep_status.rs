//! What the coordinator reports about a sweep, in domain terms: counts by state, cells, result
//! rows, failed jobs and compute. The services convert these to `stilts.v1` messages at the edge
//! (`convert/to_wire.rs`); clients convert back (`convert/from_wire.rs`).

use crate::cell_state::CellState;
use crate::job::StageKind;
use crate::progress::Progress;
use crate::state::JobState;
use crate::usage::SweepCompute;

/// Counts by state, indexed like [`CellState::ALL`] or [`JobState::ALL`].
pub type Counts = [u64; 6];

/// The non-zero counts of cells, by state name.
pub fn by_cell_state(c: &Counts) -> Vec<(&'static str, u64)> {
    named(c, |i| CellState::ALL[i].as_str())
}

/// The non-zero counts of jobs, by state name.
pub fn by_job_state(c: &Counts) -> Vec<(&'static str, u64)> {
    named(c, |i| JobState::ALL[i].as_str())
}

fn named(c: &Counts, name: impl Fn(usize) -> &'static str) -> Vec<(&'static str, u64)> {
    c.iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, &n)| (name(i), n))
        .collect()
}

/// A sweep's status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepStatus {
    pub sweep: String,
    pub cells_total: u64,
    /// Cells by [`CellState`].
    pub cells: Counts,
    /// Jobs by [`JobState`], per stage kind (indexed by [`StageKind::rank`]).
    pub jobs: [Counts; 3],
    /// Cells by state per axis value, axes in grid order.
    pub axes: Vec<AxisCounts>,
    pub finished: bool,
    /// Failed jobs with their last failure (at most `MAX_FAILED_LISTED`).
    pub failed: Vec<JobSummary>,
    pub backend: String,
    /// Why ready jobs are not running (one line per need no connected worker serves).
    pub waiting: Vec<String>,
    /// The definitions of the tasks the grid brought, as JSON (empty: none).
    pub tasks_json: String,
    pub compute: ComputeSummary,
}

/// Cells by state of one axis value.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisCounts {
    /// `model`, `intermediate`, `target`, `language` or `seed`.
    pub axis: &'static str,
    pub value: String,
    pub cells: Counts,
}

/// One job, as status and failure lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub job_key: String,
    pub kind: StageKind,
    pub state: JobState,
    pub attempt: u32,
    /// The last failure (empty: none).
    pub message: String,
    pub progress: Option<Progress>,
    /// The worker holding it (empty: none).
    pub worker_id: String,
}

/// One grid point with its state and chain.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRow {
    pub model: String,
    pub intermediate: String,
    pub target: String,
    pub language: String,
    pub seed: u64,
    pub state: CellState,
    /// The chain's job keys, first stage first.
    pub job_keys: Vec<String>,
    /// Why the cell failed (the failed job's kind and last failure).
    pub reason: Option<String>,
}

/// One numeric metric of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub model: String,
    pub intermediate: String,
    pub target: String,
    pub language: String,
    pub seed: u64,
    pub metric: String,
    pub value: f64,
    /// The evaluate job that produced it.
    pub job_key: String,
    pub code_version: String,
    pub data_version: String,
}

/// A sweep's compute: the totals, the saving, and the spending per axis value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComputeSummary {
    pub totals: SweepCompute,
    pub saved_ms: u64,
    pub axes: Vec<AxisCompute>,
}

/// Spent per axis value (model, intermediate, target), over the jobs of that value.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisCompute {
    pub axis: String,
    pub value: String,
    pub spent_ms: u64,
    pub gpu_ms: u64,
    pub lost_ms: u64,
}
