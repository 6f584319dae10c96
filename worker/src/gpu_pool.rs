//! The GPUs of a worker started with `--gpus`: what each has reserved, the jobs waiting for
//! memory, and the out-of-memory memo. The decisions are pure functions elsewhere (where a job
//! goes: `packing.rs`; how much it needs: `gpu_estimate.rs`; how much after an out-of-memory
//! failure: `oom_memo.rs`); this file holds the state and the waiting.
//!
//! - The acquire loop asks for a job only while no job waits for memory and some GPU has room for
//!   the smallest plausible job ([`GpuPool::wait_room`]).
//! - A job's thread reserves memory before its executor starts ([`GpuPool::reserve`]). A job that
//!   does not fit yet waits there, in the running table (so heartbeats carry it, with the phase
//!   `waiting for GPU memory …`), until a job ends; jobs are placed in the order they arrived.
//! - When the executor returns, its reservation is released ([`GpuPool::release`]); an
//!   out-of-memory failure first raises the key's reservation in the memo.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::byte_size;
use crate::config::WorkerConfig;
use crate::device;
use crate::error::WorkerError;
use crate::executor::CancelFlag;
use crate::gpu_estimate::SMALLEST_JOB;
use crate::oom_memo::OomMemo;
use crate::packing::{GpuLoad, Placement, place, reservation};

/// How often a waiting job looks at its cancel flag.
const POLL: Duration = Duration::from_millis(100);

/// Where a job runs and what it holds there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    /// The CUDA device index (one of `--gpus`).
    pub(crate) gpu: u32,
    /// Bytes reserved.
    pub(crate) bytes: u64,
}

/// Why a job stopped waiting without a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotPlaced {
    /// Its cancel flag was raised.
    Cancelled,
    /// The worker is shutting down.
    Closed,
    /// Every GPU of the worker was lost (a device error): the job goes back for another worker.
    NoGpu,
}

/// How a job on a GPU ended, for the memo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Succeeded,
    OutOfMemory,
    /// The GPU itself failed (a CUDA device error, not out of memory): nothing more is placed
    /// on it.
    DeviceLost,
    Failed,
}

#[derive(Debug, Default)]
struct State {
    /// Job key → (position in `indices`, bytes reserved).
    running: HashMap<String, (usize, u64)>,
    /// Keys of jobs waiting for memory, in arrival order.
    waiting: VecDeque<String>,
    memo: OomMemo,
    closed: bool,
    /// Positions of GPUs lost to a device error: their budget counts as 0 from then on.
    lost: std::collections::BTreeSet<usize>,
}

pub(crate) struct GpuPool {
    /// CUDA indices, as given by `--gpus`.
    indices: Vec<u32>,
    /// Budget per GPU, same order.
    budgets: Vec<u64>,
    jobs_per_gpu: Option<u32>,
    state: Mutex<State>,
    /// Wakes waiting job threads.
    changed: Condvar,
    /// Bumped on every change; wakes the acquire loop.
    version: watch::Sender<u64>,
}

impl GpuPool {
    /// The pool of a config with `gpus`, `None` without. Each GPU's budget is `gpu_memory`, else
    /// its total memory from `nvidia-smi`; without either the worker cannot pack and says so.
    pub(crate) fn from_config(cfg: &WorkerConfig) -> Result<Option<Self>, WorkerError> {
        if cfg.gpus.is_empty() {
            return Ok(None);
        }
        if cfg.jobs_per_gpu == Some(0) {
            return Err(WorkerError::Gpus("jobs_per_gpu must be at least 1".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut budgets = Vec::with_capacity(cfg.gpus.len());
        for &gpu in &cfg.gpus {
            if !seen.insert(gpu) {
                return Err(WorkerError::Gpus(format!("GPU {gpu} is listed twice")));
            }
            let budget = match cfg.gpu_memory {
                Some(b) => b,
                None => device::gpu_memory_total(gpu).ok_or_else(|| {
                    WorkerError::Gpus(format!(
                        "cannot read GPU {gpu}'s memory from `nvidia-smi --query-gpu=memory.total \
                         --format=csv,noheader,nounits -i {gpu}`: pass --gpu-memory \
                         (e.g. --gpu-memory 80GiB, the memory jobs may use on each GPU)"
                    ))
                })?,
            };
            if budget < SMALLEST_JOB {
                return Err(WorkerError::Gpus(format!(
                    "GPU {gpu}: a memory budget of {} is below the smallest job ({})",
                    byte_size::format(budget),
                    byte_size::format(SMALLEST_JOB)
                )));
            }
            budgets.push(budget);
        }
        Ok(Some(Self::new(cfg.gpus.clone(), budgets, cfg.jobs_per_gpu)))
    }

    pub(crate) fn new(indices: Vec<u32>, budgets: Vec<u64>, jobs_per_gpu: Option<u32>) -> Self {
        Self {
            indices,
            budgets,
            jobs_per_gpu,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            version: watch::Sender::new(0),
        }
    }

    /// `gpu=budget` per GPU, for the start-up log.
    pub(crate) fn describe(&self) -> String {
        let gpus: Vec<String> = self
            .indices
            .iter()
            .zip(&self.budgets)
            .map(|(i, b)| format!("{i}={}", byte_size::format(*b)))
            .collect();
        gpus.join(",")
    }

    /// The most jobs that could run at once: smallest plausible jobs filling every GPU, capped
    /// by `jobs_per_gpu`.
    pub(crate) fn most_jobs(&self) -> u32 {
        self.budgets
            .iter()
            .map(|b| {
                let fit = u32::try_from(b / SMALLEST_JOB).unwrap_or(u32::MAX);
                self.jobs_per_gpu.map_or(fit, |cap| fit.min(cap))
            })
            .fold(0u32, u32::saturating_add)
    }

    /// The budgets of all GPUs together, in bytes.
    pub(crate) fn total_budget(&self) -> u64 {
        self.budgets.iter().sum()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("gpu pool lock")
    }

    fn loads(&self, state: &State) -> Vec<GpuLoad> {
        let mut loads: Vec<GpuLoad> = self
            .budgets
            .iter()
            .enumerate()
            .map(|(pos, &budget)| GpuLoad {
                budget: if state.lost.contains(&pos) { 0 } else { budget },
                reserved: 0,
                jobs: 0,
            })
            .collect();
        for &(pos, bytes) in state.running.values() {
            loads[pos].reserved += bytes;
            loads[pos].jobs += 1;
        }
        loads
    }

    fn all_lost(&self, state: &State) -> bool {
        state.lost.len() == self.budgets.len()
    }

    fn notify(&self) {
        self.changed.notify_all();
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Whether the worker should ask for another job now: no job waits for memory and some GPU
    /// has room for the smallest plausible job.
    pub(crate) fn can_acquire(&self) -> bool {
        let state = self.lock();
        !state.closed
            && !self.all_lost(&state)
            && state.waiting.is_empty()
            && place(&self.loads(&state), SMALLEST_JOB, self.jobs_per_gpu) != Placement::Wait
    }

    /// Waits until [`Self::can_acquire`].
    pub(crate) async fn wait_room(&self) {
        let mut rx = self.version.subscribe();
        while !self.can_acquire() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Puts `key` in the waiting line at once (before its thread starts), so that the acquire
    /// loop does not ask for more work while this job has not found its place.
    pub(crate) fn enqueue(&self, key: &str) {
        self.lock().waiting.push_back(key.to_string());
        self.notify();
    }

    /// Takes `key` out of the line without placing it (its thread never started).
    pub(crate) fn dequeue(&self, key: &str) {
        self.lock().waiting.retain(|k| k != key);
        self.notify();
    }

    /// Reserves memory for `key` (enqueued before), whose estimate is `estimate` bytes; blocks
    /// while it does not fit or jobs that came before it wait. `waiting` is told once what the
    /// job waits for.
    pub(crate) fn reserve(
        &self,
        key: &str,
        estimate: u64,
        cancel: &CancelFlag,
        waiting: impl Fn(String),
    ) -> Result<Placed, NotPlaced> {
        let mut state = self.lock();
        if !state.waiting.iter().any(|k| k == key) {
            state.waiting.push_back(key.to_string());
        }
        let mut told = false;
        loop {
            let stop = if state.closed {
                Some(NotPlaced::Closed)
            } else if self.all_lost(&state) {
                Some(NotPlaced::NoGpu)
            } else if cancel.is_cancelled() {
                Some(NotPlaced::Cancelled)
            } else {
                None
            };
            if let Some(stop) = stop {
                state.waiting.retain(|k| k != key);
                drop(state);
                self.notify();
                return Err(stop);
            }
            let loads = self.loads(&state);
            let need = reservation(estimate, state.memo.get(key), &loads);
            let first = state.waiting.front().is_some_and(|k| k == key);
            if first && let Placement::On(pos) = place(&loads, need, self.jobs_per_gpu) {
                state.waiting.pop_front();
                state.running.insert(key.to_string(), (pos, need));
                drop(state);
                self.notify();
                let gpu = self.indices[pos];
                info!(job = %key, gpu, reserved = %byte_size::format(need), estimate = %byte_size::format(estimate), "job placed on a GPU");
                return Ok(Placed { gpu, bytes: need });
            }
            if !told {
                told = true;
                let free = loads.iter().map(GpuLoad::free).max().unwrap_or(0);
                let ahead = state.waiting.iter().take_while(|k| *k != key).count();
                let message = format!(
                    "waiting for GPU memory: needs {}, at most {} free on a GPU{}",
                    byte_size::format(need),
                    byte_size::format(free),
                    if ahead > 0 {
                        format!(", {ahead} job(s) ahead")
                    } else {
                        String::new()
                    }
                );
                info!(job = %key, "{message}");
                waiting(message);
            }
            state = self
                .changed
                .wait_timeout(state, POLL)
                .expect("gpu pool lock")
                .0;
        }
    }

    /// Frees `key`'s reservation; an out-of-memory ending raises its memo first (the retry's
    /// reservation is returned), a success forgets it.
    pub(crate) fn release(&self, key: &str, ending: Ending) -> Option<u64> {
        let mut state = self.lock();
        let (pos, bytes) = state.running.remove(key)?;
        let raised = match ending {
            Ending::OutOfMemory => {
                let raised = state.memo.out_of_memory(key, bytes, self.budgets[pos]);
                info!(job = %key, gpu = self.indices[pos], reserved = %byte_size::format(bytes), retry_reserves = %byte_size::format(raised), "job ran out of GPU memory; its retry here reserves more");
                Some(raised)
            }
            Ending::Succeeded => {
                state.memo.forget(key);
                None
            }
            Ending::DeviceLost => {
                state.lost.insert(pos);
                let left = self.budgets.len() - state.lost.len();
                warn!(job = %key, gpu = self.indices[pos], gpus_left = left, "GPU failed (device error): no more jobs are placed on it{}", if left == 0 { "; this worker takes no more jobs" } else { "" });
                None
            }
            Ending::Failed => None,
        };
        drop(state);
        self.notify();
        raised
    }

    /// Stops placing: waiting jobs give up ([`NotPlaced::Closed`]), no more jobs are acquired.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.notify();
    }

    /// Jobs placed per GPU position and jobs waiting (tests, logs).
    #[cfg(test)]
    fn counts(&self) -> (Vec<u32>, usize) {
        let state = self.lock();
        let jobs = self.loads(&state).iter().map(|l| l.jobs).collect();
        (jobs, state.waiting.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const G: u64 = 1 << 30;

    #[test]
    fn jobs_pack_then_wait_then_take_freed_memory() {
        let pool = Arc::new(GpuPool::new(vec![2, 5], vec![20 * G, 20 * G], None));
        let none = CancelFlag::new();
        let a = pool.reserve("a", 8 * G, &none, |_| {}).unwrap();
        let b = pool.reserve("b", 8 * G, &none, |_| {}).unwrap();
        let c = pool.reserve("c", 8 * G, &none, |_| {}).unwrap();
        // Most free first: a on 2, b on 5, c back on 2 (ties to the lower position).
        assert_eq!((a.gpu, b.gpu, c.gpu), (2, 5, 2));
        assert!(pool.can_acquire());
        let d = pool.reserve("d", 8 * G, &none, |_| {}).unwrap();
        assert_eq!(d.gpu, 5);
        // 4 GiB free on each: too little for another 8 GiB job, enough for the smallest.
        assert!(pool.can_acquire());
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let pool = pool.clone();
            pool.enqueue("e");
            std::thread::spawn(move || {
                pool.reserve("e", 8 * G, &CancelFlag::new(), move |m| tx.send(m).unwrap())
            })
        };
        let told = rx.recv().unwrap();
        assert!(
            told.starts_with("waiting for GPU memory: needs 8GiB"),
            "{told}"
        );
        assert!(!pool.can_acquire(), "no acquiring while a job waits");
        assert_eq!(pool.counts(), (vec![2, 2], 1));
        assert_eq!(pool.release("b", Ending::Succeeded), None);
        let e = waiter.join().unwrap().unwrap();
        assert_eq!(
            e,
            Placed {
                gpu: 5,
                bytes: 8 * G
            }
        );
        assert_eq!(pool.counts(), (vec![2, 2], 0));
    }

    #[test]
    fn an_out_of_memory_retry_reserves_more_and_others_go_on() {
        let pool = GpuPool::new(vec![0], vec![40 * G], None);
        let none = CancelFlag::new();
        pool.reserve("big", 10 * G, &none, |_| {}).unwrap();
        pool.reserve("other", 10 * G, &none, |_| {}).unwrap();
        assert_eq!(pool.release("big", Ending::OutOfMemory), Some(15 * G));
        assert_eq!(pool.counts(), (vec![1], 0), "the other job still runs");
        assert_eq!(
            pool.reserve("big", 10 * G, &none, |_| {}).unwrap().bytes,
            15 * G
        );
        // A second OOM: the whole GPU, so the next retry waits for `other` to end.
        assert_eq!(pool.release("big", Ending::OutOfMemory), Some(40 * G));
        let cancel = CancelFlag::new();
        cancel.cancel();
        assert_eq!(
            pool.reserve("big", 10 * G, &cancel, |_| {}),
            Err(NotPlaced::Cancelled)
        );
        pool.release("other", Ending::Failed);
        assert_eq!(
            pool.reserve("big", 10 * G, &none, |_| {}).unwrap().bytes,
            40 * G
        );
        // Success forgets the memo.
        pool.release("big", Ending::Succeeded);
        assert_eq!(
            pool.reserve("big", 10 * G, &none, |_| {}).unwrap().bytes,
            10 * G
        );
    }

    #[test]
    fn a_lost_gpu_takes_no_more_jobs_and_without_gpus_the_worker_stops_taking_jobs() {
        let pool = GpuPool::new(vec![2, 5], vec![20 * G, 20 * G], None);
        let cancel = CancelFlag::default();
        let a = pool.reserve("a", 4 * G, &cancel, |_| {}).unwrap();
        let b = pool.reserve("b", 4 * G, &cancel, |_| {}).unwrap();
        assert_ne!(a.gpu, b.gpu);
        // `a`'s GPU fails: its next jobs go to the other one, even with more free memory there.
        assert_eq!(pool.release("a", Ending::DeviceLost), None);
        assert!(pool.can_acquire());
        for key in ["c", "d"] {
            assert_eq!(
                pool.reserve(key, 4 * G, &cancel, |_| {}).unwrap().gpu,
                b.gpu
            );
        }
        // The second GPU fails too: nothing is acquired, a job that arrives goes back.
        pool.release("b", Ending::DeviceLost);
        assert!(!pool.can_acquire());
        assert_eq!(
            pool.reserve("e", 4 * G, &cancel, |_| {}),
            Err(NotPlaced::NoGpu)
        );
        assert_eq!(pool.counts().1, 0, "the job left the waiting line");
    }

    #[test]
    fn the_cap_and_closing() {
        let pool = GpuPool::new(vec![0], vec![80 * G], Some(2));
        let none = CancelFlag::new();
        pool.reserve("a", G, &none, |_| {}).unwrap();
        assert!(pool.can_acquire());
        pool.reserve("b", G, &none, |_| {}).unwrap();
        assert!(!pool.can_acquire(), "two jobs per GPU at most");
        pool.close();
        assert_eq!(pool.reserve("c", G, &none, |_| {}), Err(NotPlaced::Closed));
        pool.release("a", Ending::Succeeded);
        assert!(!pool.can_acquire(), "closed");
    }

    #[test]
    fn budgets_come_from_the_config_or_nvidia_smi_or_an_error() {
        let mut cfg = WorkerConfig::new(vec![], "a");
        assert!(GpuPool::from_config(&cfg).unwrap().is_none());
        cfg.gpus = vec![0, 1];
        cfg.gpu_memory = Some(80 * G);
        let pool = GpuPool::from_config(&cfg).unwrap().unwrap();
        assert_eq!(pool.describe(), "0=80GiB,1=80GiB");
        assert_eq!(pool.total_budget(), 160 * G);
        assert_eq!(pool.most_jobs(), 2 * 64, "80 GiB / 1.25 GiB per GPU");
        cfg.jobs_per_gpu = Some(4);
        assert_eq!(GpuPool::from_config(&cfg).unwrap().unwrap().most_jobs(), 8);
        cfg.jobs_per_gpu = None;
        cfg.gpus = vec![0, 0];
        assert!(
            GpuPool::from_config(&cfg)
                .err()
                .unwrap()
                .to_string()
                .contains("twice")
        );
        cfg.gpus = vec![0];
        cfg.gpu_memory = Some(G);
        assert!(
            GpuPool::from_config(&cfg)
                .err()
                .unwrap()
                .to_string()
                .contains("below")
        );
        cfg.gpu_memory = None;
        // Without nvidia-smi (this machine has no GPU) the error names the flag.
        if device::gpu_memory_total(0).is_none() {
            let e = GpuPool::from_config(&cfg).err().unwrap().to_string();
            assert!(
                e.contains("--gpu-memory") && e.contains("nvidia-smi"),
                "{e}"
            );
        }
        cfg.gpu_memory = Some(80 * G);
        cfg.jobs_per_gpu = Some(0);
        assert!(GpuPool::from_config(&cfg).is_err());
    }
}
