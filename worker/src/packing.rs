//! Where a new job goes among this worker's GPUs: a pure function of memory numbers.
//!
//! Each GPU has a budget (`--gpu-memory`, else its total memory) and the reservations of the jobs
//! running on it (their estimates, `gpu_estimate.rs`, raised after out-of-memory failures,
//! `oom_memo.rs`). A job goes to the GPU with the most free memory that fits it and has fewer
//! than `--jobs-per-gpu` jobs; ties go to the GPU with fewer jobs, then to the lower position in
//! `--gpus`. A job that fits nowhere waits. A job larger than every budget is reserved at the
//! largest budget ([`reservation`]): it waits for an empty GPU and runs there alone, instead of
//! waiting forever.

/// One GPU as the packer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuLoad {
    /// Bytes jobs may reserve on it.
    pub budget: u64,
    /// Bytes reserved by the jobs running on it.
    pub reserved: u64,
    /// Jobs running on it.
    pub jobs: u32,
}

impl GpuLoad {
    pub fn free(&self) -> u64 {
        self.budget.saturating_sub(self.reserved)
    }
}

/// The packer's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Run on the GPU at this position of the list.
    On(usize),
    /// Nothing fits now: wait until a job ends.
    Wait,
}

/// Places a job needing `need` bytes (see the module doc).
pub fn place(gpus: &[GpuLoad], need: u64, jobs_per_gpu: Option<u32>) -> Placement {
    gpus.iter()
        .enumerate()
        .filter(|(_, g)| g.free() >= need && jobs_per_gpu.is_none_or(|cap| g.jobs < cap))
        // Most free memory first, then fewest jobs, then the lowest position.
        .max_by_key(|(i, g)| (g.free(), std::cmp::Reverse(g.jobs), std::cmp::Reverse(*i)))
        .map_or(Placement::Wait, |(i, _)| Placement::On(i))
}

/// Whether a job needing `need` bytes could start now on some GPU.
pub fn has_room(gpus: &[GpuLoad], need: u64, jobs_per_gpu: Option<u32>) -> bool {
    place(gpus, need, jobs_per_gpu) != Placement::Wait
}

/// What a job reserves: its estimate, raised to its out-of-memory memo, capped at the largest
/// budget (so that it can run alone on an empty GPU).
pub fn reservation(estimate: u64, memo: Option<u64>, gpus: &[GpuLoad]) -> u64 {
    let largest = gpus.iter().map(|g| g.budget).max().unwrap_or(0);
    estimate.max(memo.unwrap_or(0)).min(largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    fn gpu(budget_g: u64, reserved_g: u64, jobs: u32) -> GpuLoad {
        GpuLoad {
            budget: budget_g * G,
            reserved: reserved_g * G,
            jobs,
        }
    }

    #[test]
    fn the_gpu_with_the_most_free_memory_wins() {
        let gpus = [gpu(80, 40, 2), gpu(80, 10, 1), gpu(80, 30, 1)];
        assert_eq!(place(&gpus, 8 * G, None), Placement::On(1));
        // Only GPU 1 has 70 GiB free.
        assert_eq!(place(&gpus, 70 * G, None), Placement::On(1));
        assert_eq!(place(&gpus, 71 * G, None), Placement::Wait);
    }

    #[test]
    fn an_exact_fit_fits() {
        assert_eq!(place(&[gpu(80, 72, 3)], 8 * G, None), Placement::On(0));
        assert_eq!(place(&[gpu(80, 72, 3)], 8 * G + 1, None), Placement::Wait);
    }

    #[test]
    fn ties_go_to_fewer_jobs_then_the_lower_position() {
        let gpus = [gpu(80, 20, 2), gpu(80, 20, 1), gpu(80, 20, 1)];
        assert_eq!(place(&gpus, G, None), Placement::On(1));
        let idle = [gpu(80, 0, 0), gpu(80, 0, 0)];
        assert_eq!(place(&idle, G, None), Placement::On(0));
    }

    #[test]
    fn the_jobs_per_gpu_cap_is_respected() {
        let gpus = [gpu(80, 8, 4), gpu(80, 40, 2)];
        assert_eq!(place(&gpus, 8 * G, None), Placement::On(0));
        assert_eq!(place(&gpus, 8 * G, Some(4)), Placement::On(1));
        assert_eq!(place(&gpus, 8 * G, Some(2)), Placement::Wait);
        assert!(!has_room(&gpus, 8 * G, Some(2)));
        assert!(has_room(&gpus, 8 * G, Some(3)));
    }

    #[test]
    fn budgets_may_differ_and_overcommitted_gpus_are_full() {
        // A GPU whose reservations exceed its budget (budget lowered, memo raised) has no room.
        let gpus = [gpu(40, 45, 1), gpu(24, 4, 1)];
        assert_eq!(place(&gpus, 20 * G, None), Placement::On(1));
        assert_eq!(place(&gpus, 21 * G, None), Placement::Wait);
        assert_eq!(place(&[], G, None), Placement::Wait);
    }

    #[test]
    fn reservations_are_raised_by_the_memo_and_capped_at_the_largest_budget() {
        let gpus = [gpu(40, 0, 0), gpu(80, 0, 0)];
        assert_eq!(reservation(8 * G, None, &gpus), 8 * G);
        assert_eq!(reservation(8 * G, Some(12 * G), &gpus), 12 * G);
        assert_eq!(reservation(8 * G, Some(4 * G), &gpus), 8 * G);
        assert_eq!(reservation(100 * G, None, &gpus), 80 * G);
        assert_eq!(reservation(8 * G, Some(u64::MAX), &gpus), 80 * G);
        // Capped at the largest budget, a job fits an empty GPU of that size and only that.
        let need = reservation(100 * G, None, &gpus);
        assert_eq!(place(&gpus, need, None), Placement::On(1));
        assert_eq!(
            place(&[gpu(40, 0, 0), gpu(80, 1, 1)], need, None),
            Placement::Wait
        );
    }

    /// Every placement on every small configuration: the chosen GPU fits, respects the cap and
    /// has the most free memory among those that do; `Wait` only when none fits.
    #[test]
    fn exhaustively_on_small_configurations() {
        let loads: Vec<GpuLoad> = (0..=4u64)
            .flat_map(|r| (0..=2u32).map(move |j| gpu(4, r, j)))
            .chain([gpu(2, 0, 0), gpu(2, 1, 1)])
            .collect();
        let mut checked = 0;
        for a in &loads {
            for b in &loads {
                let gpus = [*a, *b];
                for need in 0..=5 {
                    for cap in [None, Some(1), Some(2)] {
                        let fits =
                            |g: &GpuLoad| g.free() >= need * G && cap.is_none_or(|c| g.jobs < c);
                        match place(&gpus, need * G, cap) {
                            Placement::Wait => assert!(!gpus.iter().any(fits)),
                            Placement::On(i) => {
                                assert!(fits(&gpus[i]));
                                let best = gpus.iter().filter(|g| fits(g)).map(|g| g.free()).max();
                                assert_eq!(Some(gpus[i].free()), best);
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 17 * 17 * 6 * 3);
    }
}
