//! State shared by the worker agent's loops (acquiring in `agent.rs`, heartbeats in
//! `heartbeat.rs`, report delivery in `reports.rs`) and its job threads (`jobs.rs`); this file
//! imports none of them.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::executor::Executor;
use crate::gpu_pool::GpuPool;
use crate::job_table::Jobs;
use crate::link::Link;
use crate::report_queue::ReportQueue;

/// State shared by the agent's loops and job threads.
pub(crate) struct Agent {
    pub(crate) cfg: WorkerConfig,
    pub(crate) executor: Arc<dyn Executor>,
    pub(crate) link: Link,
    pub(crate) jobs: Jobs,
    /// The GPUs jobs are packed onto (`gpus` in the config); `None`: `slots` jobs at once.
    pub(crate) gpus: Option<GpuPool>,
    pub(crate) reports: ReportQueue,
    pub(crate) fatal: Mutex<Option<WorkerError>>,
    pub(crate) fatal_token: CancellationToken,
}

impl Agent {
    /// Records an error that ends the agent (the first one wins) and starts the shutdown.
    pub(crate) fn fail(&self, e: WorkerError) {
        error!(error = %e, "worker stopping");
        self.fatal.lock().expect("fatal lock").get_or_insert(e);
        self.fatal_token.cancel();
    }
}
