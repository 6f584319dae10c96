//! Coordinator errors, each mapped to one of a few gRPC codes at the edge.

use stilts_common::grid::GridError;
use stilts_common::state::{JobState, TransitionError};
use stilts_common::store::{Conflict, StoreError};
use thiserror::Error;
use tonic::Status;

#[derive(Debug, Error)]
pub enum CoordinatorError {
    /// A report or heartbeat whose assignment is no longer current. Nothing changed.
    #[error(
        "stale fencing token {token} for job {key} attempt {attempt} from worker {worker}: the job is {state} at version {version}, attempt {current_attempt}"
    )]
    StaleToken {
        key: String,
        worker: String,
        attempt: u32,
        token: u64,
        state: JobState,
        version: u64,
        current_attempt: u32,
    },
    #[error("unknown job {0}")]
    UnknownJob(String),
    #[error("unknown worker {0}: its lease expired or it never registered; register again")]
    UnknownWorker(String),
    #[error("unknown sweep {0:?}")]
    UnknownSweep(String),
    /// The grid file is invalid; the text names file, line and column.
    #[error("{0}")]
    Grid(#[from] GridError),
    #[error("{0}")]
    InvalidArgument(String),
    /// The same grid re-submitted for another trainer backend than the sweep was planned for.
    #[error(
        "sweep {name:?} was submitted for backend {} and cannot be resubmitted for {}: run it with the first backend, or give the grid another [sweep] name",
        shown(stored),
        shown(requested)
    )]
    SweepBackend {
        name: String,
        stored: String,
        requested: String,
    },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Another writer changed the job first; the coordinator reloads it from the store.
    #[error("{0}; the request was rejected, retry")]
    Conflict(#[from] Conflict),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the coordinator is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
    /// The TLS certificate, key or CA files cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A sweep backend for messages ("" reads "any").
fn shown(backend: &str) -> &str {
    if backend.is_empty() { "any" } else { backend }
}

impl From<CoordinatorError> for Status {
    fn from(e: CoordinatorError) -> Self {
        let msg = e.to_string();
        match e {
            CoordinatorError::StaleToken { .. } | CoordinatorError::Transition(_) => {
                Status::failed_precondition(msg)
            }
            CoordinatorError::UnknownJob(_)
            | CoordinatorError::UnknownWorker(_)
            | CoordinatorError::UnknownSweep(_)
            | CoordinatorError::Store(StoreError::SweepNotFound(_)) => Status::not_found(msg),
            CoordinatorError::Grid(_) | CoordinatorError::InvalidArgument(_) => {
                Status::invalid_argument(msg)
            }
            CoordinatorError::Store(StoreError::SweepExists { .. })
            | CoordinatorError::SweepBackend { .. } => Status::already_exists(msg),
            CoordinatorError::Conflict(_) => Status::aborted(msg),
            CoordinatorError::Store(StoreError::Backend(_)) | CoordinatorError::ShuttingDown => {
                Status::unavailable(msg)
            }
            CoordinatorError::Store(StoreError::Corrupt { .. })
            | CoordinatorError::Transport(_)
            | CoordinatorError::Tls(_)
            | CoordinatorError::Internal(_) => Status::internal(msg),
        }
    }
}
