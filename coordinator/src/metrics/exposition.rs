//! The Prometheus text exposition of [`Metrics`], written by hand (format 0.0.4). Gauges are read
//! from the cache at scrape time, so they can never drift from it.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use stilts_common::job::StageKind;
use stilts_common::state::JobState;

use super::histogram::label;
use super::{Inner, Metrics, worker_rates};
use crate::cache::Core;
use crate::status::CellState;

/// Outcomes of an attempt, the `outcome` label of the duration histogram.
const OUTCOMES: [&str; 3] = ["succeeded", "failed", "cancelled"];

fn kind_label(rank: usize) -> &'static str {
    StageKind::ALL
        .iter()
        .find(|k| k.rank() as usize == rank)
        .map_or("unknown", |k| k.as_str())
}

impl Metrics {
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
        worker_rates::render(&mut out, &m.workers, core);
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
