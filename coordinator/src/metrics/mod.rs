//! Prometheus metrics: the hooks that count, and what they keep. Rendered by `exposition.rs` in
//! the text exposition format (version 0.0.4), with the primitives of `histogram.rs`.
//!
//! Counters and histograms are updated by one-line hooks where things happen (the writer's
//! `apply`, the reaper, the worker API); gauges (jobs by state, workers, cells) are read from the
//! cache at scrape time, so they can never drift from it. Durations are measured on the injected
//! clock (`Clock::now_ms`), except the acquire latency, which is a wall-clock round trip through
//! the writer.
//!
//! The same hook keeps a short per-job history of transitions since this coordinator started,
//! which the dashboard's cell page shows as the job's attempts.

mod exposition;
mod histogram;
mod job_history;
mod worker_rates;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use stilts_common::heartbeat::RunningJob;
use stilts_common::state::JobState;
use stilts_common::store::JobRecord;

use crate::error::CoordinatorError;
use histogram::Histogram;
use job_history::JobTrack;
pub use job_history::{HISTORY_PER_JOB, HistoryEntry};
use worker_rates::WorkerRate;

/// Bucket bounds (seconds) of the job duration histogram: 1 s to 1 day.
const DURATION_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];
/// Bucket bounds (seconds) of the queue wait histogram: 10 ms to 6 h.
const WAIT_BUCKETS: [f64; 11] = [
    0.01, 0.1, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 7200.0, 21600.0,
];
/// Bucket bounds (seconds) of the acquire latency histogram: 100 µs to 2.5 s.
const LATENCY_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 2.5,
];

#[derive(Debug)]
struct Inner {
    jobs: HashMap<String, JobTrack>,
    queue_wait: [Histogram; 3],
    durations: [[Histogram; 3]; 3],
    completions: [u64; 3],
    attempt_failures: [u64; 3],
    /// Attempt wall time (ms), by [cpu, gpu] × [succeeded, lost].
    compute_ms: [[u64; 2]; 2],
    acquire: Histogram,
    workers: HashMap<String, WorkerRate>,
}

impl Default for Inner {
    fn default() -> Self {
        let d = || std::array::from_fn(|_| Histogram::new(&DURATION_BUCKETS));
        Self {
            jobs: HashMap::new(),
            queue_wait: std::array::from_fn(|_| Histogram::new(&WAIT_BUCKETS)),
            durations: std::array::from_fn(|_| d()),
            completions: [0; 3],
            attempt_failures: [0; 3],
            compute_ms: [[0; 2]; 2],
            acquire: Histogram::new(&LATENCY_BUCKETS),
            workers: HashMap::new(),
        }
    }
}

/// The coordinator's metrics (one per `run`, in `Shared`).
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    lease_expiries: AtomicU64,
    lease_expired_jobs: AtomicU64,
    stale_completions: AtomicU64,
    stale_failures: AtomicU64,
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
        let kind = rec.spec.kind.rank() as usize;
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
                    m.queue_wait[kind].observe(secs(since, now_ms));
                }
            }
            (JobState::Leased, to) => {
                let outcome = match to {
                    JobState::Succeeded => 0,
                    JobState::Cancelled => 2,
                    _ => 1,
                };
                if let Some(since) = since {
                    m.durations[kind][outcome].observe(secs(since, now_ms));
                }
                let gpu = usize::from(stilts_common::usage::is_gpu(&rec.usage.device));
                m.compute_ms[gpu][usize::from(outcome != 0)] += rec.usage.last_attempt_ms;
                match outcome {
                    0 => {
                        m.completions[kind] += 1;
                        m.workers
                            .entry(worker.to_string())
                            .or_default()
                            .jobs_completed += 1;
                    }
                    1 => m.attempt_failures[kind] += 1,
                    _ => {}
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
        self.lease_expiries.fetch_add(1, Ordering::Relaxed);
        self.lease_expired_jobs
            .fetch_add(jobs as u64, Ordering::Relaxed);
    }

    /// A report the worker API rejected; counts the fenced (stale) ones.
    pub fn report_rejected(&self, complete: bool, e: &CoordinatorError) {
        if matches!(e, CoordinatorError::StaleToken { .. }) {
            let c = if complete {
                &self.stale_completions
            } else {
                &self.stale_failures
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One round trip of an assignment request through the writer.
    pub fn acquire_latency(&self, d: Duration) {
        self.inner().acquire.observe(d.as_secs_f64());
    }

    /// Progress of a worker's running jobs, from a heartbeat.
    pub fn heartbeat(&self, worker: &str, running: &[RunningJob], now_ms: u64) {
        let mut m = self.inner();
        let w = m.workers.entry(worker.to_string()).or_default();
        for r in running {
            if let Some(p) = &r.progress {
                w.progress(&r.job_key, p.step, now_ms);
            }
        }
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
        self.inner().workers.get(worker).map_or((0.0, 0), |w| {
            (w.running.values().map(|r| r.2).sum(), w.jobs_completed)
        })
    }
}
