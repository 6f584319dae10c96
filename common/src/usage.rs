//! Compute accounting: what each job's attempts cost, and what a sweep spent and saved.
//!
//! The coordinator keeps a [`Usage`] in every job record. The write that hands an attempt out
//! stamps its start; the write that ends it (success, failure, lost lease, cancel) adds its wall
//! time in the same compare-and-set, so the figures survive crashes and fail-overs exactly as the
//! job's state does, and a retried attempt adds its own time. All durations are milliseconds.
//!
//! [`SweepCompute`] sums a sweep's jobs: time spent (wall and GPU), time lost to attempts that did
//! not succeed, and time saved against the naive plan of training every cell's chain from scratch:
//! by shared prefixes within the sweep and by jobs that earlier sweeps had already trained.

use serde::{Deserialize, Serialize};

/// The device label a worker announces (`labels["device"]`): `cpu`, or an accelerator name
/// (`NVIDIA H100 80GB HBM3`, `cuda:0`, …).
pub const DEVICE_LABEL: &str = "device";

/// Whether a device label names an accelerator (anything but `cpu`).
pub fn is_gpu(device: &str) -> bool {
    !device.is_empty() && device != "cpu"
}

/// What a job's attempts cost so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Start of the attempt in progress (unix ms); 0 when none is.
    pub attempt_started_ms: u64,
    /// Wall time of every ended attempt.
    pub total_ms: u64,
    /// Of which in attempts that did not succeed (failed, lost, cancelled).
    pub lost_ms: u64,
    /// Of which on an accelerator (one per job: a job holds one slot, one GPU).
    pub gpu_ms: u64,
    /// Wall time of the attempt that succeeded: what training this job once costs.
    pub success_ms: u64,
    /// When the job succeeded (unix ms); 0 while it has not.
    pub succeeded_at_ms: u64,
    /// Wall time of the last ended attempt.
    pub last_attempt_ms: u64,
    /// Device of the last ended attempt (the worker's `device` label).
    pub device: String,
}

impl Usage {
    /// An attempt was handed out at `now_ms`.
    pub fn start(&mut self, now_ms: u64) {
        self.attempt_started_ms = now_ms;
    }

    /// The attempt in progress ended at `now_ms` on `device`; `succeeded` when it produced the
    /// job's result. An attempt without a recorded start (stored before accounting existed)
    /// adds nothing.
    pub fn end(&mut self, now_ms: u64, succeeded: bool, device: &str) {
        let started = std::mem::take(&mut self.attempt_started_ms);
        if started == 0 {
            return;
        }
        let ms = now_ms.saturating_sub(started);
        self.last_attempt_ms = ms;
        self.total_ms += ms;
        if is_gpu(device) {
            self.gpu_ms += ms;
        }
        if succeeded {
            self.success_ms = ms;
            self.succeeded_at_ms = now_ms;
        } else {
            self.lost_ms += ms;
        }
        self.device = device.to_string();
    }
}

/// A sweep's compute, summed over its distinct jobs and its cells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepCompute {
    /// Wall time of every attempt of the sweep's jobs this sweep ran (jobs an earlier sweep had
    /// already finished are not counted: they cost this sweep nothing).
    pub spent_ms: u64,
    /// Of which on accelerators.
    pub gpu_ms: u64,
    /// Of which in attempts that did not succeed.
    pub lost_ms: u64,
    /// Training every cell's chain from scratch (its intermediate and target jobs, at their
    /// successful attempts' wall time), over the cells whose training jobs succeeded.
    pub naive_training_ms: u64,
    /// Training each distinct job once, over the same cells.
    pub planned_training_ms: u64,
    /// Of `planned_training_ms`, jobs an earlier sweep had already trained.
    pub reused_training_ms: u64,
}

impl SweepCompute {
    /// Adds one distinct job of the sweep, submitted at `sweep_submitted_ms`.
    pub fn add_job(&mut self, usage: &Usage, sweep_submitted_ms: u64) {
        if reused(usage, sweep_submitted_ms) {
            return;
        }
        self.spent_ms += usage.total_ms;
        self.gpu_ms += usage.gpu_ms;
        self.lost_ms += usage.lost_ms;
    }

    /// Adds one cell, given the usage of its chain's training jobs (intermediate, then target;
    /// the baseline chain has only a target). Distinct jobs are added to `planned` once by the
    /// caller (see [`SweepCompute::add_planned`]); a cell whose training has not all succeeded
    /// is left out of both sides.
    pub fn add_cell(&mut self, chain: &[&Usage]) -> bool {
        if chain.iter().any(|u| u.succeeded_at_ms == 0) {
            return false;
        }
        self.naive_training_ms += chain.iter().map(|u| u.success_ms).sum::<u64>();
        true
    }

    /// Adds one distinct training job of a counted cell to the planned side.
    pub fn add_planned(&mut self, usage: &Usage, sweep_submitted_ms: u64) {
        self.planned_training_ms += usage.success_ms;
        if reused(usage, sweep_submitted_ms) {
            self.reused_training_ms += usage.success_ms;
        }
    }

    /// Training time the plan saved against training every cell from scratch: by shared
    /// prefixes within the sweep and by earlier sweeps' jobs.
    pub fn saved_ms(&self) -> u64 {
        (self
            .naive_training_ms
            .saturating_sub(self.planned_training_ms))
            + self.reused_training_ms
    }
}

/// A job an earlier sweep finished before this one was submitted.
fn reused(usage: &Usage, sweep_submitted_ms: u64) -> bool {
    usage.succeeded_at_ms != 0 && usage.succeeded_at_ms < sweep_submitted_ms
}

/// Hours with one decimal ("12.5 h"), or minutes below an hour, seconds below a minute.
pub fn hours(ms: u64) -> String {
    let ms = ms as f64;
    if ms >= 3_600_000.0 {
        format!("{:.1} h", ms / 3_600_000.0)
    } else if ms >= 60_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_add_up_and_lost_attempts_are_kept_apart() {
        let mut u = Usage::default();
        u.end(5_000, true, "cpu"); // no start recorded: nothing
        assert_eq!(u, Usage::default());
        u.start(1_000);
        u.end(4_000, false, "NVIDIA H100");
        u.start(10_000);
        u.end(17_000, true, "cpu");
        assert_eq!(
            (
                u.total_ms,
                u.lost_ms,
                u.gpu_ms,
                u.success_ms,
                u.succeeded_at_ms
            ),
            (10_000, 3_000, 3_000, 7_000, 17_000)
        );
        assert_eq!(u.attempt_started_ms, 0);
        assert_eq!(u.device, "cpu");
    }

    /// Two cells share an intermediate job; a third cell's target job came from an earlier
    /// sweep; a fourth cell is unfinished and counts on neither side.
    #[test]
    fn savings_count_shared_prefixes_and_earlier_sweeps() {
        let done = |ms: u64, at: u64| Usage {
            total_ms: ms,
            success_ms: ms,
            succeeded_at_ms: at,
            ..Usage::default()
        };
        let submitted = 1_000;
        let inter = done(100, 2_000);
        let (t1, t2) = (done(10, 3_000), done(20, 3_000));
        let old = done(50, 500);
        let running = Usage::default();
        let mut c = SweepCompute::default();
        for job in [&inter, &t1, &t2, &old, &running] {
            c.add_job(job, submitted);
        }
        assert!(c.add_cell(&[&inter, &t1]));
        assert!(c.add_cell(&[&inter, &t2]));
        assert!(c.add_cell(&[&old]));
        assert!(!c.add_cell(&[&inter, &running]));
        for job in [&inter, &t1, &t2, &old] {
            c.add_planned(job, submitted);
        }
        assert_eq!(
            c.spent_ms, 130,
            "the earlier sweep's job cost this one nothing"
        );
        assert_eq!(c.naive_training_ms, 110 + 120 + 50);
        assert_eq!(c.planned_training_ms, 180);
        assert_eq!(c.reused_training_ms, 50);
        assert_eq!(c.saved_ms(), 100 + 50);
        assert_eq!(hours(5_400_000), "1.5 h");
        assert_eq!(hours(90_000), "1.5 min");
        assert_eq!(hours(1_250), "1.2 s");
    }
}
