//! A short per-job history of transitions since this coordinator started, which the dashboard's
//! cell page shows as the job's attempts.

use std::collections::VecDeque;

use serde::Serialize;

/// Transitions kept per job for the cell page.
pub const HISTORY_PER_JOB: usize = 24;

/// One transition of a job, as the cell page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at_ms: u64,
    pub from: &'static str,
    pub to: &'static str,
    pub attempt: u32,
    pub worker: String,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct JobTrack {
    /// When the job entered its current state (for a ready job: when its backoff ends).
    pub since_ms: Option<u64>,
    pub history: VecDeque<HistoryEntry>,
}
