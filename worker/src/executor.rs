//! The boundary every executor implements: run one stage job to completion on the calling
//! (blocking) thread. The agent gives each running job its own thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use stilts_common::failure::Failure;
use stilts_common::job::JobSpec;
/// Progress a running job reports; carried to the coordinator by heartbeats. Defined in
/// `stilts-common` so the proto conversions can reach it.
pub use stilts_common::progress::Progress;
/// One point of a training curve; see [`ProgressSink::point`].
pub use stilts_common::series::Point;

/// Everything an executor needs to run one assignment.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Content hash of the job (also the name of its artifact directory).
    pub key: String,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// The job's canonical spec.
    pub spec: JobSpec,
    /// The parent's artifact directory (input checkpoint); `None` for first-stage jobs.
    pub input_dir: Option<PathBuf>,
    /// Where the job writes its artifacts (checkpoints, predictions). Created by the agent and
    /// kept across attempts, so a retried job can resume from its last checkpoint.
    pub output_dir: PathBuf,
    /// Where the job must write its metrics JSON (`{"de": {"accuracy": 81.2}, "train": {..}}`).
    pub metrics_file: PathBuf,
    /// Directory for stdout/stderr logs of this attempt.
    pub log_dir: PathBuf,
    /// The CUDA device this job was placed on by a worker packing jobs onto GPUs (`--gpus`);
    /// `None` otherwise (then the executor's own device). The burn executor trains on
    /// `libtorch-cuda:<gpu>`, the command executor sets `CUDA_VISIBLE_DEVICES`.
    pub gpu: Option<u32>,
}

/// Receives progress updates from a running job. Cheap to call often.
pub trait ProgressSink: Send + Sync {
    fn report(&self, progress: Progress);
    /// One point of the job's training curve (step, loss, lr, grad norm, dev metric), in step
    /// order. The agent's sink keeps a bounded, downsampled series and sends it with heartbeats;
    /// sinks that keep no curve (tests, benchmarks) ignore points.
    fn point(&self, point: Point) {
        let _ = point;
    }
}

/// Cooperative cancellation: executors poll it between steps (and the command executor turns it
/// into SIGTERM then SIGKILL).
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a successful job leaves behind.
#[derive(Debug, Clone)]
pub struct JobOutput {
    /// The metrics JSON object as written by the job.
    pub metrics: serde_json::Value,
    /// The artifact directory (usually `JobContext::output_dir`).
    pub artifact: PathBuf,
}

/// Runs stage jobs. Implementations block the calling thread until the job ends.
pub trait Executor: Send + Sync {
    /// Backend name announced at registration, e.g. "command" or "burn-cpu".
    fn backend(&self) -> String;
    /// Runs one job. On failure, the [`Failure`] says whether a retry may help.
    fn run(
        &self,
        ctx: &JobContext,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<JobOutput, Failure>;
}
