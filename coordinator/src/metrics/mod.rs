//! Prometheus metrics: the hooks that count, and what they keep. Counters and histograms live in
//! a `prometheus_client` registry (`families.rs`: typed label sets, bucket bounds); `scrape.rs`
//! encodes it in the OpenMetrics text format, with the gauges it reads from the cache.
//!
//! Counters and histograms are updated by one-line hooks where things happen (the writer's
//! `apply`, the reaper, the worker API); gauges (jobs by state, workers, cells, worker rates) are
//! read from the cache at scrape time, so they can never drift from it. Durations are measured on
//! the injected clock (`Clock::now_ms`), except the acquire latency, which is a wall-clock round
//! trip through the writer; all are exposed in seconds.
//!
//! The same hook keeps a short per-job history of transitions since this coordinator started,
//! which the dashboard's cell page shows as the job's attempts.

mod families;
mod job_history;
mod scrape;
mod worker_rates;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::registry::Registry;
use stilts_common::heartbeat::RunningJob;
use stilts_common::state::JobState;
use stilts_common::store::JobRecord;

use crate::error::CoordinatorError;
use families::{
    ComputeLabels, Families, KindLabels, KindOutcomeLabels, Outcome, ReportLabels, WorkerLabels,
};
use job_history::JobTrack;
pub use job_history::{HISTORY_PER_JOB, HistoryEntry};
pub use scrape::CONTENT_TYPE;
use worker_rates::WorkerRate;

/// What the hooks keep besides the registry: per-job state times and history, and the running
/// jobs' progress per worker.
#[derive(Debug, Default)]
struct Inner {
    jobs: HashMap<String, JobTrack>,
    workers: HashMap<String, WorkerRate>,
}

/// The coordinator's metrics (one per `run`, in `Shared`).
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Every counter and histogram, as encoded at each scrape.
    registry: Registry,
    /// Handles on the registry's metrics, for the hooks.
    f: Families,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let f = Families::register(&mut registry);
        Self {
            inner: Mutex::default(),
            registry,
            f,
        }
    }
}

fn secs(from_ms: u64, to_ms: u64) -> f64 {
    to_ms.saturating_sub(from_ms) as f64 / 1000.0
}

impl Metrics {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A durable transition of `rec` (already applied) from `from`; `worker` is the worker the
    /// event names. Called by the writer once per applied write.
    pub fn transition(
        &self,
        rec: &JobRecord,
        from: JobState,
        worker: &str,
        message: &str,
        now_ms: u64,
    ) {
        let to = rec.status.state;
        let kind = rec.spec.kind.as_str();
        let mut m = self.inner();
        let track = m.jobs.entry(rec.key.clone()).or_default();
        let since = track.since_ms;
        track.since_ms = Some(if to == JobState::Ready {
            now_ms.max(rec.not_before_ms)
        } else {
            now_ms
        });
        if track.history.len() == HISTORY_PER_JOB {
            track.history.pop_front();
        }
        track.history.push_back(HistoryEntry {
            at_ms: now_ms,
            from: from.as_str(),
            to: to.as_str(),
            attempt: rec.status.attempt,
            worker: worker.to_string(),
            message: message.to_string(),
        });
        match (from, to) {
            (JobState::Ready, JobState::Leased) => {
                if let Some(since) = since {
                    self.f
                        .queue_wait
                        .get_or_create(&KindLabels { kind })
                        .observe(secs(since, now_ms));
                }
            }
            (JobState::Leased, to) => {
                let outcome = match to {
                    JobState::Succeeded => Outcome::Succeeded,
                    JobState::Cancelled => Outcome::Cancelled,
                    _ => Outcome::Failed,
                };
                if let Some(since) = since {
                    let labels = KindOutcomeLabels {
                        kind,
                        outcome: outcome.as_str(),
                    };
                    self.f
                        .durations
                        .get_or_create(&labels)
                        .observe(secs(since, now_ms));
                }
                let compute = ComputeLabels {
                    device: if stilts_common::usage::is_gpu(&rec.usage.device) {
                        "gpu"
                    } else {
                        "cpu"
                    },
                    outcome: if outcome == Outcome::Succeeded {
                        "succeeded"
                    } else {
                        "lost"
                    },
                };
                self.f
                    .compute
                    .get_or_create(&compute)
                    .inc_by(rec.usage.last_attempt_ms as f64 / 1000.0);
                match outcome {
                    Outcome::Succeeded => {
                        self.f.completions.get_or_create(&KindLabels { kind }).inc();
                        let w = self.f.worker(worker);
                        self.f.worker_jobs_completed.get_or_create(&w).inc();
                    }
                    Outcome::Failed => {
                        self.f
                            .attempt_failures
                            .get_or_create(&KindLabels { kind })
                            .inc();
                    }
                    Outcome::Cancelled => {}
                }
                if let Some(w) = m.workers.get_mut(worker) {
                    w.running.remove(&rec.key);
                }
            }
            _ => {}
        }
    }

    /// A job the writer inserted (a submitted sweep's new job): a ready one waits from now.
    pub fn inserted(&self, rec: &JobRecord, now_ms: u64) {
        if rec.status.state == JobState::Ready {
            let mut m = self.inner();
            m.jobs.entry(rec.key.clone()).or_default().since_ms =
                Some(now_ms.max(rec.not_before_ms));
        }
    }

    /// The reaper expired a worker's lease that held `jobs` attempts.
    pub fn lease_expired(&self, jobs: usize) {
        self.f.lease_expiries.inc();
        self.f.lease_expired_jobs.inc_by(jobs as u64);
    }

    /// A report the worker API rejected; counts the fenced (stale) ones.
    pub fn report_rejected(&self, complete: bool, e: &CoordinatorError) {
        if matches!(e, CoordinatorError::StaleToken { .. }) {
            let report = if complete { "complete" } else { "fail" };
            self.f
                .stale_reports
                .get_or_create(&ReportLabels { report })
                .inc();
        }
    }

    /// One round trip of an assignment request through the writer.
    pub fn acquire_latency(&self, d: Duration) {
        self.f.acquire.observe(d.as_secs_f64());
    }

    /// Progress of a worker's running jobs, from a heartbeat.
    pub fn heartbeat(&self, worker: &str, running: &[RunningJob], now_ms: u64) {
        let labels = self.f.worker(worker);
        let mut m = self.inner();
        let w = m.workers.entry(worker.to_string()).or_default();
        let steps: u64 = running
            .iter()
            .filter_map(|r| Some(w.progress(&r.job_key, r.progress.as_ref()?.step, now_ms)))
            .sum();
        drop(m);
        self.f.worker_steps.get_or_create(&labels).inc_by(steps);
    }

    /// The history of a job's transitions since this coordinator started, oldest first.
    pub fn history(&self, key: &str) -> Vec<HistoryEntry> {
        self.inner()
            .jobs
            .get(key)
            .map(|t| t.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Steps per second and jobs completed of a worker.
    pub fn worker_rate(&self, worker: &str) -> (f64, u64) {
        let rate = self
            .inner()
            .workers
            .get(worker)
            .map_or(0.0, WorkerRate::total);
        let labels = WorkerLabels {
            worker: worker.to_string(),
        };
        let completed = self
            .f
            .worker_jobs_completed
            .get(&labels)
            .map_or(0, |c| c.get());
        (rate, completed)
    }
}
