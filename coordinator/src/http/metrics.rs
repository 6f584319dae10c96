//! Prometheus metrics, written by hand in the text exposition format (version 0.0.4).
//!
//! Counters and histograms are updated by one-line hooks where things happen (the writer's
//! `apply`, the reaper, the worker API); gauges (jobs by state, workers, cells) are read from the
//! cache at scrape time, so they can never drift from it. Durations are measured on the injected
//! clock (`Clock::now_ms`), except the acquire latency, which is a wall-clock round trip through
//! the writer.
//!
//! The same hook keeps a short per-job history of transitions since this coordinator started,
//! which the dashboard's cell page shows as the job's attempts.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use stilts_common::job::StageKind;
use stilts_common::state::JobState;
use stilts_common::store::JobRecord;
use stilts_proto::v1 as pb;

use crate::cache::Core;
use crate::error::CoordinatorError;
use crate::status::CellState;

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
/// Transitions kept per job for the cell page.
pub const HISTORY_PER_JOB: usize = 24;
/// Outcomes of an attempt, the `outcome` label of the duration histogram.
const OUTCOMES: [&str; 3] = ["succeeded", "failed", "cancelled"];

/// A fixed-bucket histogram.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); the last slot is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, v: f64) {
        let i = self.bounds.iter().position(|&b| v <= b);
        self.counts[i.unwrap_or(self.bounds.len())] += 1;
        self.sum += v;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, &b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()];
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// One transition of a job, as the cell page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at_ms: u64,
    pub from: &'static str,
    pub to: &'static str,
    pub attempt: u32,
    pub worker: String,
    pub message: String,
}

#[derive(Debug, Default)]
struct JobTrack {
    /// When the job entered its current state (for a ready job: when its backoff ends).
    since_ms: Option<u64>,
    history: VecDeque<HistoryEntry>,
}

/// Throughput of one worker, from its heartbeats.
#[derive(Debug, Default, Clone)]
struct WorkerRate {
    jobs_completed: u64,
    steps_total: u64,
    /// Per running job key: (last step, when, steps per second since the previous heartbeat).
    running: HashMap<String, (u64, u64, f64)>,
}

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

fn kind_label(rank: usize) -> &'static str {
    StageKind::ALL
        .iter()
        .find(|k| k.rank() as usize == rank)
        .map_or("unknown", |k| k.as_str())
}

/// Escapes a label value: backslash, double quote and newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    pub fn heartbeat(&self, worker: &str, running: &[pb::RunningJob], now_ms: u64) {
        let mut m = self.inner();
        let w = m.workers.entry(worker.to_string()).or_default();
        for r in running {
            let Some(p) = &r.progress else { continue };
            let rate = match w.running.get(&r.job_key) {
                Some(&(step, at, rate)) if p.step >= step => {
                    w.steps_total += p.step - step;
                    if now_ms > at {
                        (p.step - step) as f64 * 1000.0 / (now_ms - at) as f64
                    } else {
                        rate
                    }
                }
                _ => 0.0,
            };
            w.running.insert(r.job_key.clone(), (p.step, now_ms, rate));
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

    /// The exposition text. Gauges are read from `core` (the caller holds its lock briefly).
    pub fn render(&self, core: &Core) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let mut jobs = [[0u64; 6]; 3];
        for e in &core.jobs {
            jobs[e.record.spec.kind.rank() as usize][e.record.status.state as usize] += 1;
        }
        out.push_str(
            "# HELP stilts_jobs Stage jobs by kind and state.\n# TYPE stilts_jobs gauge\n",
        );
        for (k, row) in jobs.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                let (kind, state) = (kind_label(k), JobState::ALL[s].as_str());
                let _ = writeln!(out, "stilts_jobs{{kind=\"{kind}\",state=\"{state}\"}} {n}");
            }
        }
        out.push_str(
            "# HELP stilts_cells Cells by sweep and derived state.\n# TYPE stilts_cells gauge\n",
        );
        for s in &core.sweeps {
            let mut cells = [0u64; 6];
            for c in &s.cells {
                cells[core.cell_state(c) as usize] += 1;
            }
            let sweep = label(&s.record.name);
            for (i, n) in cells.iter().enumerate() {
                let state = CellState::ALL[i].as_str();
                let _ = writeln!(
                    out,
                    "stilts_cells{{sweep=\"{sweep}\",state=\"{state}\"}} {n}"
                );
            }
        }
        let ready_queue = core.queue.len();
        let _ = write!(
            out,
            "# HELP stilts_ready_queue Jobs in the ready queue (backoff included).\n\
             # TYPE stilts_ready_queue gauge\nstilts_ready_queue {ready_queue}\n\
             # HELP stilts_workers_connected Workers holding a lease.\n\
             # TYPE stilts_workers_connected gauge\nstilts_workers_connected {}\n",
            core.workers.len()
        );
        let counters = [
            (
                "stilts_lease_expiries_total",
                "Worker leases the reaper expired.",
                self.lease_expiries.load(Ordering::Relaxed),
            ),
            (
                "stilts_lease_expired_jobs_total",
                "Attempts lost with an expired worker lease.",
                self.lease_expired_jobs.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in counters {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            );
        }
        let _ = write!(
            out,
            "# HELP stilts_stale_reports_total Reports rejected by fencing (stale attempt or token).\n\
             # TYPE stilts_stale_reports_total counter\n\
             stilts_stale_reports_total{{report=\"complete\"}} {}\n\
             stilts_stale_reports_total{{report=\"fail\"}} {}\n",
            self.stale_completions.load(Ordering::Relaxed),
            self.stale_failures.load(Ordering::Relaxed)
        );
        let m = self.inner();
        self.render_jobs(&mut out, &m);
        out.push_str(
            "# HELP stilts_acquire_latency_seconds Round trip of an assignment request through the writer.\n\
             # TYPE stilts_acquire_latency_seconds histogram\n",
        );
        m.acquire
            .render(&mut out, "stilts_acquire_latency_seconds", "");
        render_workers(&mut out, &m, core);
        out
    }

    fn render_jobs(&self, out: &mut String, m: &Inner) {
        out.push_str(
            "# HELP stilts_compute_seconds_total Wall time of ended job attempts, by device class and outcome (lost: failed, expired, cancelled).\n\
             # TYPE stilts_compute_seconds_total counter\n",
        );
        for (d, device) in ["cpu", "gpu"].into_iter().enumerate() {
            for (o, outcome) in ["succeeded", "lost"].into_iter().enumerate() {
                let _ = writeln!(
                    out,
                    "stilts_compute_seconds_total{{device=\"{device}\",outcome=\"{outcome}\"}} {}",
                    m.compute_ms[d][o] as f64 / 1000.0
                );
            }
        }
        out.push_str(
            "# HELP stilts_job_completions_total Attempts that succeeded, by kind.\n\
             # TYPE stilts_job_completions_total counter\n",
        );
        for (k, n) in m.completions.iter().enumerate() {
            let _ = writeln!(
                out,
                "stilts_job_completions_total{{kind=\"{}\"}} {n}",
                kind_label(k)
            );
        }
        out.push_str(
            "# HELP stilts_job_attempt_failures_total Attempts that failed (retried or not), lease expiries included, by kind.\n\
             # TYPE stilts_job_attempt_failures_total counter\n",
        );
        for (k, n) in m.attempt_failures.iter().enumerate() {
            let _ = writeln!(
                out,
                "stilts_job_attempt_failures_total{{kind=\"{}\"}} {n}",
                kind_label(k)
            );
        }
        out.push_str(
            "# HELP stilts_job_queue_wait_seconds Time from ready (backoff passed) to assigned, by kind.\n\
             # TYPE stilts_job_queue_wait_seconds histogram\n",
        );
        for (k, h) in m.queue_wait.iter().enumerate() {
            let labels = format!("kind=\"{}\"", kind_label(k));
            h.render(out, "stilts_job_queue_wait_seconds", &labels);
        }
        out.push_str(
            "# HELP stilts_job_duration_seconds Time from assigned to reported, by kind and outcome.\n\
             # TYPE stilts_job_duration_seconds histogram\n",
        );
        for (k, per_outcome) in m.durations.iter().enumerate() {
            for (o, h) in per_outcome.iter().enumerate() {
                let labels = format!("kind=\"{}\",outcome=\"{}\"", kind_label(k), OUTCOMES[o]);
                h.render(out, "stilts_job_duration_seconds", &labels);
            }
        }
    }
}

/// Per-worker throughput: connected workers only, plus the completions of every worker seen.
fn render_workers(out: &mut String, m: &Inner, core: &Core) {
    let mut ids: Vec<&String> = m.workers.keys().collect();
    ids.sort();
    out.push_str(
        "# HELP stilts_worker_jobs_completed_total Attempts a worker completed successfully.\n\
         # TYPE stilts_worker_jobs_completed_total counter\n",
    );
    for id in &ids {
        let n = m.workers[*id].jobs_completed;
        let _ = writeln!(
            out,
            "stilts_worker_jobs_completed_total{{worker=\"{}\"}} {n}",
            label(id)
        );
    }
    out.push_str(
        "# HELP stilts_worker_steps_total Training steps reported in heartbeats, by worker.\n\
         # TYPE stilts_worker_steps_total counter\n",
    );
    for id in &ids {
        let n = m.workers[*id].steps_total;
        let _ = writeln!(
            out,
            "stilts_worker_steps_total{{worker=\"{}\"}} {n}",
            label(id)
        );
    }
    out.push_str(
        "# HELP stilts_worker_steps_per_second Training steps per second over a worker's running jobs (from heartbeat progress).\n\
         # TYPE stilts_worker_steps_per_second gauge\n",
    );
    let mut connected: Vec<&String> = core.workers.keys().collect();
    connected.sort();
    for id in connected {
        let w = &core.workers[id];
        let rate: f64 = m.workers.get(id).map_or(0.0, |r| {
            w.jobs
                .iter()
                .filter_map(|&j| r.running.get(&core.jobs[j as usize].record.key))
                .map(|x| x.2)
                .sum()
        });
        let _ = writeln!(
            out,
            "stilts_worker_steps_per_second{{worker=\"{}\"}} {rate}",
            label(id)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_with_inf() {
        let mut h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 2.0, 3.0, 20.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "k=\"a\"");
        assert_eq!(
            out,
            "x_bucket{k=\"a\",le=\"1\"} 1\nx_bucket{k=\"a\",le=\"10\"} 3\n\
             x_bucket{k=\"a\",le=\"+Inf\"} 4\nx_sum{k=\"a\"} 25.5\nx_count{k=\"a\"} 4\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
