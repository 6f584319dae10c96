//! In-process coordinator harness: the real `run` on a loopback port, tonic clients, a manual
//! clock, and a store factory (`store_factory/mod.rs`, which a test binary using this module
//! declares too) so the same tests run against every backend.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use stilts_common::clock::ManualClock;
use stilts_coordinator::{CoordinatorConfig, CoordinatorError, Setup};
use stilts_proto::v1 as pb;
use stilts_proto::v1::sweep_service_client::SweepServiceClient;
use stilts_proto::v1::worker_service_client::WorkerServiceClient;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

#[allow(unused_imports)] // each test binary uses a different part
pub use crate::store_factory::{MemFactory, MemStore, SqliteFactory, StoreFactory};

/// Lease TTL of the test config, in manual-clock milliseconds.
pub const TTL_MS: u64 = 10_000;

/// Fast reaper, long TTL on the manual clock, 1 s backoff base.
pub fn test_config() -> CoordinatorConfig {
    CoordinatorConfig {
        lease_ttl: Duration::from_millis(TTL_MS),
        reaper_period: Duration::from_millis(5),
        max_attempts: 3,
        backoff_base: Duration::from_millis(1_000),
        backoff_cap: Duration::from_millis(4_000),
        acquire_max_wait: Duration::from_secs(5),
        ..CoordinatorConfig::default()
    }
}

pub struct Harness<F: StoreFactory> {
    pub factory: F,
    pub setup: Setup,
    pub clock: ManualClock,
    shutdown: CancellationToken,
    server: Option<JoinHandle<Result<(), CoordinatorError>>>,
    pub workers: WorkerServiceClient<Channel>,
    pub sweeps: SweepServiceClient<Channel>,
}

impl<F: StoreFactory> Harness<F> {
    pub async fn start(factory: F, setup: impl Into<Setup>) -> Self {
        let setup = setup.into();
        let clock = ManualClock::new(1_000_000);
        let (shutdown, server, workers, sweeps) = launch(&factory, &setup, &clock).await;
        Self {
            factory,
            setup,
            clock,
            shutdown,
            server: Some(server),
            workers,
            sweeps,
        }
    }

    /// Stops the coordinator (waiting for it to close the store) and starts a new one on the
    /// same durable state, on a new port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (shutdown, server, workers, sweeps) =
            launch(&self.factory, &self.setup, &self.clock).await;
        self.shutdown = shutdown;
        self.server = Some(server);
        self.workers = workers;
        self.sweeps = sweeps;
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("coordinator stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }

    pub async fn submit(&mut self, name: &str, toml: &str) -> pb::SubmitSweepResponse {
        self.submit_for(name, toml, "").await.unwrap()
    }

    /// Submits with a backend override (`""`: the grid's).
    pub async fn submit_for(
        &mut self,
        name: &str,
        toml: &str,
        backend: &str,
    ) -> Result<pb::SubmitSweepResponse, tonic::Status> {
        self.sweeps
            .submit_sweep(pb::SubmitSweepRequest {
                file_name: name.into(),
                grid_toml: toml.into(),
                backend: backend.into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner())
    }

    /// Registers a command-only worker (no trainer).
    pub async fn register(&mut self, name: &str, cached: &[&str]) -> String {
        self.register_as(name, "command", cached).await
    }

    /// Registers a worker announcing `backend` (e.g. `command+burn-libtorch-cuda:0`).
    pub async fn register_as(&mut self, name: &str, backend: &str, cached: &[&str]) -> String {
        self.workers
            .register_worker(pb::RegisterWorkerRequest {
                name: name.into(),
                slots: 1,
                backend: backend.into(),
                cached_artifacts: cached.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .worker_id
    }

    pub async fn acquire(&mut self, worker: &str, wait_ms: u64) -> Option<pb::JobAssignment> {
        self.workers
            .acquire_job(pb::AcquireJobRequest {
                worker_id: worker.into(),
                free_slots: 1,
                wait_ms,
            })
            .await
            .unwrap()
            .into_inner()
            .assignment
    }

    pub async fn complete(
        &mut self,
        worker: &str,
        a: &pb::JobAssignment,
        metrics_json: &str,
    ) -> Result<String, tonic::Status> {
        self.workers
            .complete_job(pb::CompleteJobRequest {
                worker_id: worker.into(),
                job_key: a.job_key.clone(),
                attempt: a.attempt,
                fencing_token: a.fencing_token,
                metrics_json: metrics_json.into(),
                artifact: format!("/artifacts/{}", a.job_key),
                duration_s: 0.0,
                curve: vec![],
            })
            .await
            .map(|r| r.into_inner().state)
    }

    pub async fn fail(
        &mut self,
        worker: &str,
        a: &pb::JobAssignment,
        retryable: bool,
    ) -> Result<String, tonic::Status> {
        self.fail_with(worker, a, retryable, "exit status 1").await
    }

    /// Reports attempt `a` failed with `message` (counts against the budget).
    pub async fn fail_with(
        &mut self,
        worker: &str,
        a: &pb::JobAssignment,
        retryable: bool,
        message: &str,
    ) -> Result<String, tonic::Status> {
        self.workers
            .fail_job(pb::FailJobRequest {
                worker_id: worker.into(),
                job_key: a.job_key.clone(),
                attempt: a.attempt,
                fencing_token: a.fencing_token,
                failure: Some(pb::Failure {
                    reason: pb::FailureReason::Error as i32,
                    retryable,
                    counts_against_budget: true,
                    message: message.into(),
                }),
                curve: vec![],
            })
            .await
            .map(|r| r.into_inner().state)
    }

    pub async fn heartbeat(
        &mut self,
        worker: &str,
        running: &[&pb::JobAssignment],
    ) -> pb::HeartbeatResponse {
        self.workers
            .heartbeat(pb::HeartbeatRequest {
                worker_id: worker.into(),
                running: running
                    .iter()
                    .map(|a| pb::RunningJob {
                        job_key: a.job_key.clone(),
                        attempt: a.attempt,
                        fencing_token: a.fencing_token,
                        progress: None,
                        curve: vec![],
                    })
                    .collect(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn status(&mut self, sweep: &str) -> pb::SweepStatus {
        self.sweeps
            .get_sweep(pb::GetSweepRequest {
                sweep: sweep.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }
}

async fn launch<F: StoreFactory>(
    factory: &F,
    setup: &Setup,
    clock: &ManualClock,
) -> (
    CancellationToken,
    JoinHandle<Result<(), CoordinatorError>>,
    WorkerServiceClient<Channel>,
    SweepServiceClient<Channel>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let store = factory.open().await;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(stilts_coordinator::run(
        setup.clone(),
        listener,
        store,
        Arc::new(clock.clone()),
        shutdown.clone(),
    ));
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    (
        shutdown,
        server,
        WorkerServiceClient::new(channel.clone()),
        SweepServiceClient::new(channel),
    )
}

/// Polls `check` until it returns `Some`, for at most 10 s.
pub async fn eventually<T, Fut: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> Fut,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Count of `state` in a list of state counts.
pub fn count(counts: &[pb::StateCount], state: &str) -> u64 {
    counts
        .iter()
        .find(|c| c.state == state)
        .map_or(0, |c| c.count)
}

/// Jobs of `kind` in `state` in a sweep status.
pub fn jobs(status: &pb::SweepStatus, kind: &str, state: &str) -> u64 {
    status
        .jobs
        .iter()
        .find(|k| k.kind == kind)
        .map_or(0, |k| count(&k.jobs, state))
}

/// A small command-executor grid: `intermediates` × one or more targets, one language per
/// evaluate job.
pub fn grid(name: &str, intermediates: &[&str], targets: &str, languages: &str) -> String {
    let inter = intermediates
        .iter()
        .map(|i| format!("{i:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"[sweep]
name = "{name}"
seeds = [1]

[models]
tiny = "models/tiny"

[grid]
intermediate = [{inter}]
target = {targets}
languages = {languages}

[evaluate]
languages_per_job = 1

[executor]
kind = "command"
intermediate = "train --model {{model_source}} --task {{task}} --out {{output_dir}}"
target = "train --init {{input_dir}} --task {{task}} --out {{output_dir}}"
evaluate = "eval --ckpt {{input_dir}} --langs {{languages}} --metrics {{metrics_file}}"
"#
    )
}

/// A burn-trainer grid (one baseline chain: 1 target job, 1 evaluate job), needing `backend`
/// when given.
pub fn burn_grid(name: &str, backend: Option<&str>) -> String {
    let backend = backend.map_or(String::new(), |b| format!("backend = {b:?}\n"));
    format!(
        r#"[sweep]
name = "{name}"
seeds = [1]

[models]
tiny = "models/tiny"

[grid]
intermediate = ["none"]
target = ["xnli"]
languages = ["de"]

[executor]
kind = "burn"
{backend}"#
    )
}

/// The kind and parent key of an assignment's spec.
pub fn kind_and_parent(a: &pb::JobAssignment) -> (String, Option<String>) {
    let spec: serde_json::Value = serde_json::from_str(&a.spec_json).unwrap();
    (
        spec["kind"].as_str().unwrap().to_string(),
        spec["parent"].as_str().map(str::to_string),
    )
}

/// Metrics an evaluate job would write for its languages.
pub fn metrics_for(a: &pb::JobAssignment) -> String {
    let spec: serde_json::Value = serde_json::from_str(&a.spec_json).unwrap();
    let mut m = serde_json::Map::new();
    for l in spec["languages"].as_array().unwrap() {
        m.insert(
            l.as_str().unwrap().to_string(),
            serde_json::json!({"accuracy": 70.5, "f1": 60.25}),
        );
    }
    serde_json::Value::Object(m).to_string()
}
