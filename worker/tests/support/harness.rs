//! What the worker's loopback tests share besides the peer: command-job assignments, the
//! worker's test configuration, and a worker started and stopped on the test's runtime.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stilts_common::convert::job_spec_to_json;
use stilts_common::job::{ExecutorSpec, JobSpec, StageKind};
use stilts_proto::v1 as pb;
use stilts_worker::backoff::BackoffConfig;
use stilts_worker::{CommandExecutor, WorkerConfig, WorkerError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const PATIENCE: Duration = Duration::from_secs(20);

/// A command job of stage `kind` (an evaluate job in `de`) for model source `model_source`.
pub fn command_job(
    key: &str,
    token: u64,
    kind: StageKind,
    model_source: &str,
    template: &str,
) -> pb::JobAssignment {
    let spec = JobSpec {
        kind,
        model: "xlmr".into(),
        model_source: model_source.into(),
        task: "xnli".into(),
        intermediate: "none".into(),
        languages: if kind == StageKind::Evaluate {
            vec!["de".into()]
        } else {
            vec![]
        },
        seed: 1,
        recipe: Default::default(),
        executor: ExecutorSpec::Command {
            template: template.into(),
            retryable_exit_codes: vec![],
            timeout_s: None,
        },
        parent: None,
        data_version: "d".into(),
        code_version: "c".into(),
        task_defs: Default::default(),
    };
    pb::JobAssignment {
        job_key: key.into(),
        attempt: 1,
        fencing_token: token,
        spec_json: job_spec_to_json(&spec),
        input_artifact: String::new(),
        sweep: "sweep".into(),
        trace_context: Default::default(),
    }
}

/// A job that prints progress, waits for `gate` to exist, then writes metrics.
pub fn gated(gate: &Path) -> String {
    format!(
        "echo STILTS_PROGRESS step=3 total=10 loss=0.5 phase=train; \
         while [ ! -e {} ]; do sleep 0.02; done; \
         echo '{{{{\"de\": {{{{\"accuracy\": 80}}}}}}}}' > {{metrics_file}}",
        gate.display()
    )
}

/// A worker named `name` with short periods and timeouts, for tests.
pub fn worker_config(urls: Vec<String>, artifacts: &Path, name: &str) -> WorkerConfig {
    let mut cfg = WorkerConfig::new(urls, artifacts);
    cfg.name = name.into();
    cfg.heartbeat_period = Some(Duration::from_millis(50));
    cfg.acquire_wait = Duration::from_millis(200);
    cfg.rpc_timeout = Duration::from_secs(2);
    cfg.shutdown_grace = Duration::from_secs(10);
    cfg.cancel_wait = Duration::from_secs(10);
    cfg.report_flush = Duration::from_secs(5);
    cfg.backoff = BackoffConfig {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
    };
    cfg
}

/// A worker running the command executor on the test's runtime.
pub struct Worker {
    pub shutdown: CancellationToken,
    pub now: CancellationToken,
    handle: JoinHandle<Result<(), WorkerError>>,
}

impl Worker {
    pub fn start(cfg: WorkerConfig) -> Self {
        let (shutdown, now) = (CancellationToken::new(), CancellationToken::new());
        let executor = Arc::new(CommandExecutor::new().with_kill_grace(Duration::from_millis(200)));
        let run = stilts_worker::run_until(cfg, executor, shutdown.clone(), now.clone());
        Self {
            shutdown,
            now,
            handle: tokio::spawn(run),
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.join().await;
    }

    pub async fn join(self) {
        self.result().await.expect("worker ended cleanly");
    }

    pub async fn result(self) -> Result<(), WorkerError> {
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("worker stopped in time")
            .unwrap()
    }
}
