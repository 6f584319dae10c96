//! Failure classification: every failed attempt says whether a retry may help and whether it
//! spends the job's attempt budget (a preempted node does not; an OOM loop does).

use serde::{Deserialize, Serialize};

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Non-zero exit or an executor error.
    Error,
    /// Ran past its timeout.
    Timeout,
    /// Exited 0 but wrote no metrics, or invalid JSON.
    BadMetrics,
    /// The node is going away (Slurm preemption, spot reclaim).
    Preempted,
    /// Out of memory.
    Oom,
    /// Bad data or model files.
    Data,
    /// Bad user input (templates, config).
    User,
    /// Cancelled on the worker.
    Cancelled,
    /// The worker stopped heartbeating and lost its lease.
    WorkerLost,
}

impl FailureReason {
    pub const ALL: [FailureReason; 9] = [
        Self::Error,
        Self::Timeout,
        Self::BadMetrics,
        Self::Preempted,
        Self::Oom,
        Self::Data,
        Self::User,
        Self::Cancelled,
        Self::WorkerLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::BadMetrics => "bad_metrics",
            Self::Preempted => "preempted",
            Self::Oom => "oom",
            Self::Data => "data",
            Self::User => "user",
            Self::Cancelled => "cancelled",
            Self::WorkerLost => "worker_lost",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed attempt, as reported by a worker (or by the coordinator for a lost lease).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub reason: FailureReason,
    /// May another attempt succeed?
    pub retryable: bool,
    /// Does this attempt spend the job's attempt budget?
    pub counts_against_budget: bool,
    /// Human-readable detail: exit code, last stderr lines, file and line of bad data.
    pub message: String,
}

impl Failure {
    /// A failure another attempt may fix; spends budget.
    pub fn retryable(reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            retryable: true,
            counts_against_budget: true,
            message: message.into(),
        }
    }

    /// A failure no retry will fix (bad data, bad config): the job fails at once.
    pub fn permanent(reason: FailureReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            retryable: false,
            counts_against_budget: true,
            message: message.into(),
        }
    }

    /// Preemption: retry, no budget spent.
    pub fn preempted(message: impl Into<String>) -> Self {
        Self {
            reason: FailureReason::Preempted,
            retryable: true,
            counts_against_budget: false,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}
