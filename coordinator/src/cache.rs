//! The coordinator's memory: a cache of the store, rebuilt from it on start (crash-only).
//!
//! Jobs live in a vector indexed by [`JobIdx`] with a key → index map, parent/children links,
//! sweep membership, and the scheduling indexes (the ready queue, each worker's leased jobs).
//! Only the writer task changes job records, and only after the store accepted the change.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

use stilts_common::backend::{Need, Offer};
use stilts_common::job::ExecutorSpec;
use stilts_common::plan::Axes;
use stilts_common::progress::Progress;
use stilts_common::state::JobState;
use stilts_common::store::{
    CellRecord, JobRecord, Snapshot, Store, StoreError, SweepRecord, WorkerRecord,
};

use crate::scheduler::{Prio, ReadyQueue};

pub type JobIdx = u32;
pub type SweepIdx = u32;

#[derive(Debug)]
pub struct JobEntry {
    pub record: JobRecord,
    pub parent: Option<JobIdx>,
    pub children: Vec<JobIdx>,
    pub sweeps: Vec<SweepIdx>,
    /// Insertion order: the "older first" of the scheduling order.
    pub age: u64,
    /// A write of this job is at the store; no other write may start until it returns.
    pub in_flight: bool,
    /// Latest progress a heartbeat reported for the current attempt.
    pub progress: Option<Progress>,
    /// When the job last entered the ready queue (unix ms, not before its backoff ends); 0
    /// never. The start of the attempt's `queue_wait` span.
    pub ready_since_ms: u64,
    /// When this cache last indexed the job as leased (assignment or load), unix ms.
    pub leased_since_ms: u64,
    /// Heartbeats of the holder, since the grace after `leased_since_ms`, that did not list the
    /// job: two in a row mean the assignment never reached the worker (see `Core::heartbeat`).
    pub unseen: u8,
    /// What the worker that runs it must offer: a command job runs anywhere; a burn job needs
    /// the backend of its newest sweep (see [`Core::need_of`]).
    pub need: Need,
}

/// One cell, as indexes into its sweep's [`Axes`] and the job table.
#[derive(Debug, Clone, Copy)]
pub struct CellEntry {
    pub model: u32,
    pub intermediate: u32,
    pub target: u32,
    pub language: u32,
    pub seed: u32,
    pub evaluate: JobIdx,
}

#[derive(Debug)]
pub struct SweepEntry {
    pub record: SweepRecord,
    pub jobs: Vec<JobIdx>,
    pub cells: Vec<CellEntry>,
    pub axes: Axes,
}

#[derive(Debug)]
pub struct WorkerEntry {
    pub record: WorkerRecord,
    pub cached: HashSet<String>,
    /// The executors it announced (`WorkerRecord::backend`, parsed).
    pub offer: Offer,
    /// What its attempts are accounted as: its `device` label, else `cuda` for a worker that
    /// offers libtorch-cuda, else `cpu` (see `stilts_common::usage`).
    pub device: String,
    /// Lease expiry on the injected clock (memory only: a restart grants every worker one TTL).
    pub lease_expires_at_ms: u64,
    /// Jobs leased to this worker.
    pub jobs: HashSet<JobIdx>,
}

#[derive(Debug, Default)]
pub struct Core {
    pub jobs: Vec<JobEntry>,
    pub by_key: HashMap<String, JobIdx>,
    pub sweeps: Vec<SweepEntry>,
    pub sweep_by_name: HashMap<String, SweepIdx>,
    pub workers: HashMap<String, WorkerEntry>,
    pub queue: ReadyQueue,
    /// Sequence number of the last job event applied.
    pub event_seq: u64,
    next_age: u64,
}

/// The device a worker's attempts are accounted on.
fn device_of(w: &WorkerRecord) -> String {
    match w.labels.get(stilts_common::usage::DEVICE_LABEL) {
        Some(d) if !d.trim().is_empty() => d.trim().to_string(),
        _ if w.backend.contains("cuda") => "cuda".to_string(),
        _ => "cpu".to_string(),
    }
}

/// What a freshly loaded cache needs the writer to do.
#[derive(Debug, Default)]
pub struct Repairs {
    /// Blocked jobs whose parent already succeeded (a crash between the two writes).
    pub unblock: Vec<JobIdx>,
    /// Leased jobs as (job, worker, attempt), for `expire_leases_on_start`.
    pub leased: Vec<(JobIdx, String, u32)>,
}

/// Loads the store into a fresh cache. Every known worker gets a lease of one TTL from `now_ms`.
pub async fn load<S: Store>(
    store: &S,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(Core, Repairs), StoreError> {
    let snapshot = store.load().await?;
    let mut cells = Vec::with_capacity(snapshot.sweeps.len());
    for sweep in &snapshot.sweeps {
        cells.push(store.cells(&sweep.name).await?);
    }
    Ok(Core::from_snapshot(snapshot, cells, now_ms, ttl_ms))
}

impl Core {
    /// Builds the cache from a snapshot and each sweep's cells (in `snapshot.sweeps` order).
    pub fn from_snapshot(
        snapshot: Snapshot,
        cells: Vec<Vec<CellRecord>>,
        now_ms: u64,
        ttl_ms: u64,
    ) -> (Core, Repairs) {
        let mut core = Core {
            event_seq: snapshot.last_event_seq,
            ..Core::default()
        };
        for sweep in snapshot.sweeps {
            core.add_sweep(sweep);
        }
        for worker in snapshot.workers {
            core.add_worker(worker, now_ms + ttl_ms);
        }
        let mut memberships = Vec::with_capacity(snapshot.jobs.len());
        for (record, sweeps) in snapshot.jobs {
            let idx = core.insert_job(record);
            memberships.push((idx, sweeps));
        }
        core.link_parents(0);
        for (idx, sweeps) in memberships {
            for name in sweeps {
                if let Some(&s) = core.sweep_by_name.get(&name) {
                    core.add_membership(idx, s, now_ms);
                }
            }
        }
        for (s, sweep_cells) in cells.into_iter().enumerate() {
            core.add_cells(s as SweepIdx, &sweep_cells);
        }
        let mut repairs = Repairs::default();
        for idx in 0..core.jobs.len() as JobIdx {
            let e = &core.jobs[idx as usize];
            match e.record.status.state {
                JobState::Blocked if core.parent_succeeded(idx) => repairs.unblock.push(idx),
                JobState::Leased => {
                    let worker = e.record.worker_id.clone().unwrap_or_default();
                    repairs
                        .leased
                        .push((idx, worker.clone(), e.record.status.attempt));
                    if !core.workers.contains_key(&worker) {
                        // A lease whose worker record is missing: adopt it like any other, so
                        // the reaper expires it after one TTL unless the worker reports.
                        core.add_worker(
                            WorkerRecord {
                                id: worker.clone(),
                                name: worker,
                                slots: 1,
                                backend: String::new(),
                                labels: Default::default(),
                                cached_artifacts: Vec::new(),
                                lease_expires_at_ms: 0,
                            },
                            now_ms + ttl_ms,
                        );
                    }
                }
                _ => {}
            }
            core.index(idx, now_ms);
        }
        (core, repairs)
    }

    pub fn add_sweep(&mut self, record: SweepRecord) -> SweepIdx {
        let idx = self.sweeps.len() as SweepIdx;
        self.sweep_by_name.insert(record.name.clone(), idx);
        self.sweeps.push(SweepEntry {
            record,
            jobs: Vec::new(),
            cells: Vec::new(),
            axes: Axes::default(),
        });
        idx
    }

    pub fn add_worker(&mut self, record: WorkerRecord, lease_expires_at_ms: u64) {
        let jobs = self
            .workers
            .remove(&record.id)
            .map(|w| w.jobs)
            .unwrap_or_default();
        self.workers.insert(
            record.id.clone(),
            WorkerEntry {
                cached: record.cached_artifacts.iter().cloned().collect(),
                offer: Offer::parse(&record.backend),
                device: device_of(&record),
                record,
                lease_expires_at_ms,
                jobs,
            },
        );
    }

    /// Adds a job record (not indexed, no parent link yet: see [`Core::link_parents`]).
    pub fn insert_job(&mut self, record: JobRecord) -> JobIdx {
        let idx = self.jobs.len() as JobIdx;
        self.by_key.insert(record.key.clone(), idx);
        let need = match record.spec.executor {
            ExecutorSpec::Command { .. } => Need::Command,
            ExecutorSpec::Burn => Need::Trainer(None),
        };
        self.jobs.push(JobEntry {
            need,
            record,
            parent: None,
            children: Vec::new(),
            sweeps: Vec::new(),
            age: self.next_age,
            in_flight: false,
            ready_since_ms: 0,
            leased_since_ms: 0,
            unseen: 0,
            progress: None,
        });
        self.next_age += 1;
        idx
    }

    /// Links every job from index `from` on to its parent.
    pub fn link_parents(&mut self, from: usize) {
        for idx in from..self.jobs.len() {
            let parent = self.jobs[idx]
                .record
                .spec
                .parent
                .as_ref()
                .and_then(|k| self.by_key.get(k).copied());
            self.jobs[idx].parent = parent;
            if let Some(p) = parent {
                self.jobs[p as usize].children.push(idx as JobIdx);
            }
        }
    }

    /// Records that `sweep` contains `job`. A burn job shared by several sweeps runs where its
    /// newest sweep says, so that re-submitting a grid for another backend moves waiting jobs.
    /// A job that had no sweep was not indexed (see [`Core::index`]): the caller indexes it.
    pub fn add_membership(&mut self, job: JobIdx, sweep: SweepIdx, now_ms: u64) {
        let e = &mut self.jobs[job as usize];
        let had_none = e.sweeps.is_empty();
        if !e.sweeps.contains(&sweep) {
            e.sweeps.push(sweep);
            self.sweeps[sweep as usize].jobs.push(job);
        }
        let need = self.need_of(job);
        if need != self.jobs[job as usize].need {
            let e = &self.jobs[job as usize];
            let queued = e.record.status.state == JobState::Ready && !e.in_flight && !had_none;
            let nb = e.record.not_before_ms;
            if queued {
                self.queue.remove(self.prio(job), nb);
            }
            self.jobs[job as usize].need = need;
            if queued {
                self.queue.insert(self.prio(job), nb, now_ms);
            }
        }
    }

    /// What a worker must offer to run `job`: anything for command jobs; for burn jobs the
    /// backend of the newest sweep that contains it (any trainer when that sweep names none).
    pub fn need_of(&self, job: JobIdx) -> Need {
        let e = &self.jobs[job as usize];
        if let ExecutorSpec::Command { .. } = e.record.spec.executor {
            return Need::Command;
        }
        e.sweeps
            .iter()
            .map(|&s| &self.sweeps[s as usize].record)
            .max_by_key(|r| r.submitted_at_ms)
            .map_or(Need::Trainer(None), |r| Need::of_burn_sweep(&r.backend))
    }

    /// Adds stored cells to a sweep, interning their axis values in first-appearance order.
    fn add_cells(&mut self, sweep: SweepIdx, cells: &[CellRecord]) {
        fn intern<T: Clone + PartialEq>(table: &mut Vec<T>, v: &T) -> u32 {
            match table.iter().position(|x| x == v) {
                Some(i) => i as u32,
                None => {
                    table.push(v.clone());
                    (table.len() - 1) as u32
                }
            }
        }
        let mut axes = Axes::default();
        let mut out = Vec::with_capacity(cells.len());
        for c in cells {
            let Some(&evaluate) = self.by_key.get(&c.evaluate_job) else {
                continue;
            };
            out.push(CellEntry {
                model: intern(&mut axes.models, &c.model),
                intermediate: intern(&mut axes.intermediates, &c.intermediate),
                target: intern(&mut axes.targets, &c.target),
                language: intern(&mut axes.languages, &c.language),
                seed: intern(&mut axes.seeds, &c.seed),
                evaluate,
            });
        }
        let entry = &mut self.sweeps[sweep as usize];
        entry.cells = out;
        entry.axes = axes;
    }

    pub fn prio(&self, idx: JobIdx) -> Prio {
        let e = &self.jobs[idx as usize];
        Prio {
            class: e.need.class(),
            rank: e.record.spec.kind.rank(),
            dependents: Reverse(e.record.dependents),
            age: e.age,
            job: idx,
        }
    }

    /// True when the job has no parent or its parent succeeded.
    pub fn parent_succeeded(&self, idx: JobIdx) -> bool {
        let e = &self.jobs[idx as usize];
        match (&e.record.spec.parent, e.parent) {
            (None, _) => true,
            (Some(_), Some(p)) => self.jobs[p as usize].record.status.state == JobState::Succeeded,
            (Some(_), None) => false,
        }
    }

    /// Puts a job into the scheduling indexes its record calls for. Returns false when the job
    /// is leased to a worker the cache does not know (the caller must expire that lease).
    pub fn index(&mut self, idx: JobIdx, now_ms: u64) -> bool {
        let e = &self.jobs[idx as usize];
        if e.in_flight {
            return true;
        }
        match e.record.status.state {
            // A job of no sweep is left behind by a submit that stopped halfway: it waits,
            // unscheduled, for a submit that names it again.
            JobState::Ready if e.sweeps.is_empty() => true,
            JobState::Ready => {
                let (prio, nb) = (self.prio(idx), e.record.not_before_ms);
                self.queue.insert(prio, nb, now_ms);
                self.jobs[idx as usize].ready_since_ms = now_ms.max(nb);
                true
            }
            JobState::Leased => {
                let worker = e.record.worker_id.as_deref().unwrap_or_default();
                match self.workers.get_mut(worker) {
                    Some(w) => {
                        w.jobs.insert(idx);
                        let e = &mut self.jobs[idx as usize];
                        e.leased_since_ms = now_ms;
                        e.unseen = 0;
                        true
                    }
                    None => false,
                }
            }
            _ => true,
        }
    }

    /// Takes a job out of the scheduling indexes (before a write of it starts).
    pub fn unindex(&mut self, idx: JobIdx) {
        let e = &self.jobs[idx as usize];
        match e.record.status.state {
            JobState::Ready => {
                let (prio, nb) = (self.prio(idx), e.record.not_before_ms);
                self.queue.remove(prio, nb);
            }
            JobState::Leased => {
                let worker = e.record.worker_id.as_deref().unwrap_or_default();
                if let Some(w) = self.workers.get_mut(worker) {
                    w.jobs.remove(&idx);
                }
            }
            _ => {}
        }
    }

    /// The job and its ancestors, the job first.
    pub fn ancestry(&self, idx: JobIdx) -> impl Iterator<Item = JobIdx> + '_ {
        std::iter::successors(Some(idx), |&j| self.jobs[j as usize].parent)
    }

    pub fn job(&self, key: &str) -> Option<JobIdx> {
        self.by_key.get(key).copied()
    }

    pub fn sweep(&self, name: &str) -> Option<&SweepEntry> {
        self.sweep_by_name
            .get(name)
            .map(|&s| &self.sweeps[s as usize])
    }

    /// The name of the sweep a job is reported under: its first live sweep, else its first.
    pub fn sweep_name_of(&self, idx: JobIdx) -> &str {
        let sweeps = &self.jobs[idx as usize].sweeps;
        sweeps
            .iter()
            .map(|&s| &self.sweeps[s as usize].record)
            .find(|r| !r.cancelled)
            .or_else(|| sweeps.first().map(|&s| &self.sweeps[s as usize].record))
            .map_or("", |r| r.name.as_str())
    }
}
