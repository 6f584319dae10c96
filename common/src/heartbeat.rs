//! A worker's heartbeat in domain terms: the attempts it runs (with progress and curve) and the
//! coordinator's answer. The wire messages (`stilts.v1.RunningJob`, `HeartbeatResponse`) are
//! converted in `convert.rs`.

use crate::progress::Progress;
use crate::series::Point;

/// One attempt a worker runs, as its heartbeat lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningJob {
    pub job_key: String,
    pub attempt: u32,
    /// The assignment's fencing token (the job record's version when it was assigned).
    pub fencing_token: u64,
    pub progress: Option<Progress>,
    /// The attempt's whole downsampled curve so far; empty = unchanged since the last heartbeat.
    pub curve: Vec<Point>,
}

/// The coordinator's answer to a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// Jobs the worker must cancel (sweep cancelled, or reassigned after a lost lease).
    pub cancel_job_keys: Vec<String>,
    /// False when the coordinator no longer knows this worker: it must register again.
    pub known: bool,
}
