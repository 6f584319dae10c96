//! The ready queue: which runnable job a worker gets next.
//!
//! Jobs are queued per need class (`stilts_common::backend::Need`): a worker only ever sees the
//! classes its executors serve, so a burn job whose sweep asks for `libtorch-cuda` waits for a
//! worker with that backend and is never run elsewhere. Within what a worker may run, the order
//! (the critical path first) is: stage kind (intermediate, then target, then evaluate), then
//! more dependent cells first, then older. Jobs whose backoff has not passed wait in a separate
//! set ordered by due time and join the queue when it passes. Among the first
//! [`LOCALITY_WINDOW`] candidates of the head's kind, a job whose parent checkpoint the asking
//! worker already holds is preferred.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use crate::cache::{Core, JobIdx};

/// How many candidates of the head's kind are inspected for a local one.
pub const LOCALITY_WINDOW: usize = 8;

/// Scheduling priority; the smallest is assigned first. Every field is fixed for a job's life,
/// so the tuple can be recomputed to remove a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Prio {
    /// `Need::class` of the job: the queue is partitioned by it.
    pub class: u8,
    pub rank: u8,
    pub dependents: Reverse<u64>,
    /// Insertion order into the cache: older first.
    pub age: u64,
    pub job: JobIdx,
}

#[derive(Debug, Default)]
pub struct ReadyQueue {
    ready: BTreeSet<Prio>,
    /// (not_before_ms, priority) of ready jobs still in backoff.
    delayed: BTreeSet<(u64, Prio)>,
}

impl ReadyQueue {
    pub fn insert(&mut self, prio: Prio, not_before_ms: u64, now_ms: u64) {
        if not_before_ms > now_ms {
            self.delayed.insert((not_before_ms, prio));
        } else {
            self.ready.insert(prio);
        }
    }

    pub fn remove(&mut self, prio: Prio, not_before_ms: u64) {
        if !self.ready.remove(&prio) {
            self.delayed.remove(&(not_before_ms, prio));
        }
    }

    /// Moves jobs whose backoff has passed into the queue; returns how many.
    pub fn promote(&mut self, now_ms: u64) -> usize {
        let mut n = 0;
        while let Some(&(due, prio)) = self.delayed.first() {
            if due > now_ms {
                break;
            }
            self.delayed.pop_first();
            self.ready.insert(prio);
            n += 1;
        }
        n
    }

    pub fn len(&self) -> usize {
        self.ready.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    #[cfg(test)]
    pub fn delayed_len(&self) -> usize {
        self.delayed.len()
    }

    /// Ready jobs of one need class, in scheduling order.
    fn class(&self, class: u8) -> impl Iterator<Item = &Prio> {
        let first = Prio {
            class,
            rank: 0,
            dependents: Reverse(u64::MAX),
            age: 0,
            job: 0,
        };
        self.ready
            .range(first..)
            .take_while(move |p| p.class == class)
    }

    /// Ready jobs of one need class (for status: what waits for a missing worker).
    pub fn ready_in_class(&self, class: u8) -> usize {
        self.class(class).count()
    }

    /// The first `n` ready jobs a worker serving `classes` may run, in scheduling order
    /// (across classes, by kind, dependents and age).
    fn candidates(&self, classes: impl Iterator<Item = u8>, n: usize) -> Vec<Prio> {
        let mut out: Vec<Prio> = classes
            .flat_map(|c| self.class(c).take(n).copied().collect::<Vec<_>>())
            .collect();
        out.sort_by_key(|p| (p.rank, p.dependents, p.age, p.job));
        out.truncate(n);
        out
    }
}

impl Core {
    /// Picks the job `worker` should run next, without removing it: the head of the queue,
    /// unless one of the next few of the same kind has its parent checkpoint on `worker`.
    pub fn pick(&self, worker: &str) -> Option<JobIdx> {
        let offer = self
            .workers
            .get(worker)
            .map(|w| w.offer)
            .unwrap_or_default();
        let candidates = self
            .queue
            .candidates(offer.serves().map(|n| n.class()), LOCALITY_WINDOW);
        let mut it = candidates.iter();
        let head = *it.next()?;
        if self.is_local(head.job, worker) {
            return Some(head.job);
        }
        it.take(LOCALITY_WINDOW - 1)
            .take_while(|p| p.rank == head.rank)
            .find(|p| self.is_local(p.job, worker))
            .map_or(Some(head.job), |p| Some(p.job))
    }

    /// Does `worker` hold the parent checkpoint of `job` (it produced it, or lists it cached)?
    fn is_local(&self, job: JobIdx, worker: &str) -> bool {
        let Some(parent) = self.jobs[job as usize].parent else {
            return false;
        };
        let parent = &self.jobs[parent as usize].record;
        if parent.worker_id.as_deref() == Some(worker) {
            return true;
        }
        self.workers
            .get(worker)
            .is_some_and(|w| w.cached.contains(&parent.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prio(rank: u8, dependents: u64, age: u64) -> Prio {
        Prio {
            class: 0,
            rank,
            dependents: Reverse(dependents),
            age,
            job: age as JobIdx,
        }
    }

    #[test]
    fn orders_by_kind_then_dependents_then_age() {
        let mut q = ReadyQueue::default();
        q.insert(prio(2, 100, 0), 0, 0);
        q.insert(prio(1, 1, 1), 0, 0);
        q.insert(prio(1, 5, 2), 0, 0);
        q.insert(prio(1, 5, 3), 0, 0);
        q.insert(prio(0, 1, 4), 0, 0);
        let order: Vec<u64> = q
            .candidates([0].into_iter(), 10)
            .iter()
            .map(|p| p.age)
            .collect();
        assert_eq!(order, [4, 2, 3, 1, 0]);
    }

    #[test]
    fn classes_partition_the_queue_and_merge_in_order() {
        let mut q = ReadyQueue::default();
        let of = |class: u8, rank: u8, age: u64| Prio {
            class,
            ..prio(rank, 1, age)
        };
        q.insert(of(0, 2, 0), 0, 0);
        q.insert(of(4, 0, 1), 0, 0);
        q.insert(of(2, 1, 2), 0, 0);
        q.insert(of(1, 0, 3), 0, 0);
        let ages = |classes: &[u8]| -> Vec<u64> {
            q.candidates(classes.iter().copied(), 10)
                .iter()
                .map(|p| p.age)
                .collect()
        };
        // A CPU trainer worker serves classes 0, 1, 2: never the CUDA job (age 1).
        assert_eq!(ages(&[0, 1, 2]), [3, 2, 0]);
        // A worker without the trainer: command jobs only.
        assert_eq!(ages(&[0]), [0]);
        assert_eq!(ages(&[0, 1, 4]), [1, 3, 0]);
        assert_eq!(q.ready_in_class(4), 1);
        assert_eq!(ages(&[0, 1, 2, 3, 4]).len(), 4);
        assert_eq!(q.candidates([0, 1, 2, 3, 4].into_iter(), 2).len(), 2);
    }

    #[test]
    fn backoff_keeps_jobs_out_until_due() {
        let mut q = ReadyQueue::default();
        q.insert(prio(0, 1, 0), 100, 50);
        assert!(q.is_empty());
        assert_eq!(q.promote(99), 0);
        assert_eq!(q.promote(100), 1);
        assert_eq!(q.len(), 1);
        q.remove(prio(0, 1, 0), 100);
        assert!(q.is_empty());
        q.insert(prio(0, 1, 0), 100, 50);
        q.remove(prio(0, 1, 0), 100);
        assert_eq!(q.delayed_len(), 0);
    }
}
