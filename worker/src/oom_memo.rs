//! The worker's memory of jobs that ran out of GPU memory, so that their retries reserve more.
//!
//! An out-of-memory failure (`FailureReason::Oom`, a CUDA allocation failure; retryable) means
//! the job needed more than it reserved. The first one raises the job key's reservation to
//! [`RAISE`] × what it had; a second one (and every later one) to the whole GPU budget, so the
//! retry runs alone on a GPU. Other running jobs are not touched.
//!
//! The memo is per worker and in memory: it helps when the coordinator hands the retry back to
//! this worker (or this worker gets the same key again); another worker, or this one after a
//! restart, starts again from the estimate. A key that succeeds is forgotten.

use std::collections::HashMap;

/// The factor a first out-of-memory failure raises a job's reservation by.
pub const RAISE: f64 = 1.5;

/// Keys remembered at most; the oldest half is dropped beyond it (keys of long-finished sweeps).
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub struct OomMemo {
    /// Job key → (out-of-memory failures so far, raised reservation in bytes, insertion order).
    entries: HashMap<String, (u32, u64, u64)>,
    order: u64,
}

impl OomMemo {
    pub fn new() -> Self {
        Self::default()
    }

    /// The raised reservation of `key`, if it ran out of memory here before.
    pub fn get(&self, key: &str) -> Option<u64> {
        self.entries.get(key).map(|e| e.1)
    }

    /// Records that `key` ran out of memory with `reserved` bytes on a GPU of `budget` bytes;
    /// returns the reservation its retry gets.
    pub fn out_of_memory(&mut self, key: &str, reserved: u64, budget: u64) -> u64 {
        let failures = self.entries.get(key).map_or(0, |e| e.0) + 1;
        let raised = if failures == 1 {
            ((reserved as f64 * RAISE) as u64).min(budget)
        } else {
            budget
        };
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(key) {
            self.drop_oldest_half();
        }
        self.order += 1;
        self.entries.insert(
            key.to_string(),
            (failures, raised.max(reserved), self.order),
        );
        raised.max(reserved)
    }

    /// Forgets `key` (it succeeded).
    pub fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn drop_oldest_half(&mut self) {
        let mut orders: Vec<u64> = self.entries.values().map(|e| e.2).collect();
        orders.sort_unstable();
        let cut = orders[orders.len() / 2];
        self.entries.retain(|_, e| e.2 >= cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    #[test]
    fn a_first_oom_raises_by_half_a_second_takes_the_whole_gpu() {
        let mut memo = OomMemo::new();
        assert_eq!(memo.get("k"), None);
        assert_eq!(memo.out_of_memory("k", 8 * G, 80 * G), 12 * G);
        assert_eq!(memo.get("k"), Some(12 * G));
        assert_eq!(memo.out_of_memory("k", 12 * G, 80 * G), 80 * G);
        assert_eq!(memo.out_of_memory("k", 80 * G, 80 * G), 80 * G);
        assert_eq!(memo.get("other"), None);
        memo.forget("k");
        assert_eq!(memo.get("k"), None);
        assert!(memo.is_empty());
    }

    #[test]
    fn raises_are_capped_at_the_budget_and_never_lower() {
        let mut memo = OomMemo::new();
        assert_eq!(memo.out_of_memory("k", 70 * G, 80 * G), 80 * G);
        // A reservation above the budget (another GPU's) is kept, not lowered.
        assert_eq!(memo.out_of_memory("j", 90 * G, 80 * G), 90 * G);
    }

    #[test]
    fn the_memo_is_bounded() {
        let mut memo = OomMemo::new();
        for i in 0..CAPACITY + 1 {
            memo.out_of_memory(&format!("k{i}"), G, 80 * G);
        }
        assert!(memo.len() <= CAPACITY / 2 + 1, "{}", memo.len());
        assert_eq!(memo.get(&format!("k{CAPACITY}")), Some(G + G / 2));
        assert_eq!(memo.get("k0"), None);
    }
}
