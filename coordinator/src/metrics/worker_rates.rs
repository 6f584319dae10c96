//! Throughput of each worker, from its heartbeats' progress, and its rendering.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::cache::Core;

use super::histogram::label;

/// Throughput of one worker, from its heartbeats.
#[derive(Debug, Default, Clone)]
pub struct WorkerRate {
    pub jobs_completed: u64,
    pub steps_total: u64,
    /// Per running job key: (last step, when, steps per second since the previous heartbeat).
    pub running: HashMap<String, (u64, u64, f64)>,
}

impl WorkerRate {
    /// A running job reached `step` at `now_ms`: its rate since the previous report.
    pub fn progress(&mut self, job_key: &str, step: u64, now_ms: u64) {
        let rate = match self.running.get(job_key) {
            Some(&(last, at, rate)) if step >= last => {
                self.steps_total += step - last;
                if now_ms > at {
                    (step - last) as f64 * 1000.0 / (now_ms - at) as f64
                } else {
                    rate
                }
            }
            _ => 0.0,
        };
        self.running
            .insert(job_key.to_string(), (step, now_ms, rate));
    }
}

/// Per-worker throughput: connected workers only, plus the completions of every worker seen.
pub fn render(out: &mut String, workers: &HashMap<String, WorkerRate>, core: &Core) {
    let mut ids: Vec<&String> = workers.keys().collect();
    ids.sort();
    out.push_str(
        "# HELP stilts_worker_jobs_completed_total Attempts a worker completed successfully.\n\
         # TYPE stilts_worker_jobs_completed_total counter\n",
    );
    for id in &ids {
        let n = workers[*id].jobs_completed;
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
        let n = workers[*id].steps_total;
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
        let rate: f64 = workers.get(id).map_or(0.0, |r| {
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
