//! Throughput of each worker's running jobs, from its heartbeats' progress.

use std::collections::HashMap;

use crate::cache::Core;

/// The running jobs of one worker, from its heartbeats.
#[derive(Debug, Default, Clone)]
pub struct WorkerRate {
    /// Per running job key: (last step, when, steps per second since the previous heartbeat).
    pub running: HashMap<String, (u64, u64, f64)>,
}

impl WorkerRate {
    /// A running job reached `step` at `now_ms`: its rate since the previous report. Returns the
    /// steps made since then (0 for a job not seen before or whose step went back).
    pub fn progress(&mut self, job_key: &str, step: u64, now_ms: u64) -> u64 {
        let (steps, rate) = match self.running.get(job_key) {
            Some(&(last, at, rate)) if step >= last => {
                let rate = if now_ms > at {
                    (step - last) as f64 * 1000.0 / (now_ms - at) as f64
                } else {
                    rate
                };
                (step - last, rate)
            }
            _ => (0, 0.0),
        };
        self.running
            .insert(job_key.to_string(), (step, now_ms, rate));
        steps
    }

    /// Steps per second over all running jobs.
    pub fn total(&self) -> f64 {
        self.running.values().map(|r| r.2).sum()
    }
}

/// Steps per second of each connected worker (sorted by id), over the jobs the cache says it
/// runs: a worker whose lease expired is not listed.
pub fn connected(workers: &HashMap<String, WorkerRate>, core: &Core) -> Vec<(String, f64)> {
    let mut connected: Vec<&String> = core.workers.keys().collect();
    connected.sort();
    connected
        .into_iter()
        .map(|id| {
            let w = &core.workers[id];
            let rate: f64 = workers.get(id).map_or(0.0, |r| {
                w.jobs
                    .iter()
                    .filter_map(|&j| r.running.get(&core.jobs[j as usize].record.key))
                    .map(|x| x.2)
                    .sum()
            });
            (id.clone(), rate)
        })
        .collect()
}
