//! The worker agent: register, acquire jobs while slots are free, run each on its own thread,
//! heartbeat, report; survive coordinator outages; drain on shutdown.
//!
//! Three loops share one [`Agent`]: acquiring (`acquire_loop` here), heartbeats
//! (`heartbeat.rs`) and report delivery (`reports.rs`); jobs run on threads (`jobs.rs`).
//!
//! Shutdown (`shutdown` fires): no new jobs; running jobs get `shutdown_grace` to finish, then are
//! cancelled and reported as preempted (retryable, no budget spent); queued reports get
//! `report_flush` to reach the coordinator; then [`run`] returns. `cancel_now` (for a second
//! SIGTERM) skips the grace: running jobs are cancelled at once.

use std::sync::{Arc, Mutex};

use stilts_proto::v1 as pb;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::{error, info, warn};

use crate::backoff::Backoff;
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::executor::Executor;
use crate::gpu_pool::GpuPool;
use crate::heartbeat::heartbeat_loop;
use crate::job_table::{CancelCause, Jobs};
use crate::jobs;
use crate::link::Link;
use crate::report_queue::ReportQueue;
use crate::reports::deliver_reports;
use crate::shared::Agent;

/// Runs a worker until `shutdown` fires, then drains gracefully (see the module doc).
pub async fn run(
    cfg: WorkerConfig,
    executor: Arc<dyn Executor>,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    run_until(cfg, executor, shutdown, CancellationToken::new()).await
}

/// [`run`] with a second token that cancels running jobs at once instead of letting them finish.
pub async fn run_until(
    cfg: WorkerConfig,
    executor: Arc<dyn Executor>,
    shutdown: CancellationToken,
    cancel_now: CancellationToken,
) -> Result<(), WorkerError> {
    if cfg.slots == 0 && cfg.gpus.is_empty() {
        return Err(WorkerError::NoSlots);
    }
    let gpus = GpuPool::from_config(&cfg)?;
    let mut cfg = cfg;
    if let Some(pool) = &gpus {
        // Announced at registration (the dashboard's "jobs/slots", the worker's memory): the most
        // jobs that could run at once, and the memory budgets together.
        cfg.slots = pool.most_jobs();
        if cfg.device_memory == 0 {
            cfg.device_memory = pool.total_budget();
        }
    }
    std::fs::create_dir_all(&cfg.artifacts).map_err(|source| WorkerError::ArtifactRoot {
        path: cfg.artifacts.clone(),
        source,
    })?;
    let link = Link::new(&cfg, executor.backend())?;
    let agent = Arc::new(Agent {
        cfg,
        executor,
        link,
        jobs: Jobs::new(),
        gpus,
        reports: ReportQueue::new(),
        fatal: Mutex::new(None),
        fatal_token: CancellationToken::new(),
    });
    match &agent.gpus {
        Some(pool) => {
            info!(name = %agent.cfg.name, gpus = %pool.describe(), jobs_per_gpu = ?agent.cfg.jobs_per_gpu, url = %agent.link.url(), "worker starting")
        }
        None => {
            info!(name = %agent.cfg.name, slots = agent.cfg.slots, url = %agent.link.url(), "worker starting")
        }
    }

    let background = CancellationToken::new();
    let mut loops = JoinSet::new();
    loops.spawn(heartbeat_loop(agent.clone(), background.clone()));
    loops.spawn(deliver_reports(agent.clone(), background.clone()));
    // A child of `shutdown`: the acquire loop sees the shutdown the moment it is signalled.
    let stop_acquiring = shutdown.child_token();
    let mut acquire = tokio::spawn(acquire_loop(agent.clone(), stop_acquiring.clone()));

    // A fresh future each time: `cancelled()` resolves at once for a token already cancelled.
    let hurry = || hurried(&cancel_now, &agent.fatal_token);
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = hurry() => {}
    }
    info!(
        running = agent.jobs.running(),
        "shutting down: acquiring no more jobs"
    );
    stop_acquiring.cancel();
    if let Some(pool) = &agent.gpus {
        // Jobs still waiting for GPU memory are handed back at once.
        pool.close();
    }
    // An AcquireJob in flight is let finish (bounded by acquire_wait), so that a job it brings is
    // handed back at once instead of waiting out a lease.
    tokio::select! {
        _ = &mut acquire => {}
        _ = hurry() => acquire.abort(),
    }

    if agent.jobs.running() > 0 {
        let grace = agent.cfg.shutdown_grace;
        info!(
            running = agent.jobs.running(),
            grace_ms = grace.as_millis() as u64,
            "waiting for running jobs"
        );
        tokio::select! {
            _ = agent.jobs.wait_idle() => {}
            _ = tokio::time::sleep(grace) => {}
            _ = hurry() => {}
        }
    }
    if agent.jobs.running() > 0 {
        let n = agent.jobs.cancel_all(CancelCause::Shutdown);
        warn!(jobs = n, "cancelling running jobs");
        let wait = agent.cfg.cancel_wait;
        if tokio::time::timeout(wait, agent.jobs.wait_idle())
            .await
            .is_err()
        {
            error!(
                jobs = agent.jobs.running(),
                wait_ms = wait.as_millis() as u64,
                "jobs did not stop after cancel; abandoning them"
            );
        }
    }
    if agent.reports.len() > 0 {
        let flush = agent.cfg.report_flush;
        info!(reports = agent.reports.len(), "delivering the last reports");
        if tokio::time::timeout(flush, agent.reports.wait_empty())
            .await
            .is_err()
        {
            warn!(
                reports = agent.reports.len(),
                flush_ms = flush.as_millis() as u64,
                "coordinator unreachable; undelivered reports are lost (their leases will expire)"
            );
        }
    }
    background.cancel();
    while loops.join_next().await.is_some() {}
    info!("worker stopped");
    match agent.fatal.lock().expect("fatal lock").take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Waits until the worker can take another job; the free slots to announce.
async fn free_slots(agent: &Agent, slots: u32) -> u32 {
    match &agent.gpus {
        Some(pool) => {
            pool.wait_room().await;
            1
        }
        None => agent.jobs.wait_free(slots).await,
    }
}

/// Resolves once running jobs must stop at once: `cancel_now` or a fatal error.
async fn hurried(cancel_now: &CancellationToken, fatal: &CancellationToken) {
    tokio::select! {
        _ = cancel_now.cancelled() => {}
        _ = fatal.cancelled() => {}
    }
}

/// Acquires jobs while slots are free (with GPUs: while no job waits for GPU memory and some GPU
/// has room for the smallest plausible job, `gpu_pool.rs`), until `stop` fires.
async fn acquire_loop(agent: Arc<Agent>, stop: CancellationToken) {
    let mut backoff = Backoff::new(agent.cfg.backoff);
    let slots = agent.cfg.slots;
    loop {
        let free = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            free = free_slots(&agent, slots) => free,
        };
        let session = match agent.link.session(&stop).await {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(e) => return agent.fail(e),
        };
        let wait = agent.cfg.acquire_wait;
        let req = pb::AcquireJobRequest {
            worker_id: session.worker_id.clone(),
            free_slots: free,
            wait_ms: wait.as_millis() as u64,
        };
        let timeout = wait + agent.link.rpc_timeout();
        match agent
            .link
            .call(timeout, |mut c| async move { c.acquire_job(req).await })
            .await
        {
            Ok(reply) => {
                backoff.reset();
                if let Some(assignment) = reply.assignment {
                    jobs::start(&agent, assignment, stop.is_cancelled());
                }
            }
            Err(status) => {
                if status.code() == Code::NotFound {
                    agent.link.forget(&session.worker_id).await;
                }
                let delay = backoff.next_delay();
                warn!(url = %agent.link.url(), code = ?status.code(), error = %status.message(), retry_in_ms = delay.as_millis() as u64, "acquire failed");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
