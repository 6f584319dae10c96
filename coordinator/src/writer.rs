//! The single writer: every job transition goes through this task, is written to the store
//! with compare-and-set, and only then is applied to the cache and acknowledged.
//!
//! Group commit: requests queue on a channel while a batch is at the store; the next batch takes
//! all of them (up to `max_batch`) in one `update_jobs` call. A job gets at most one write per
//! batch; a second request for it waits for the next batch. A lost compare-and-set or an
//! ambiguous store error rejects the request and reloads the cache from the store (never guess);
//! if the store cannot be read either, the writer stops and takes the coordinator down with it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use stilts_common::plan::Plan;
use stilts_common::state::{JobState, JobStatus};
use stilts_common::store::{CellRecord, JobRecord, Store, StoreError, SweepRecord};
use stilts_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::cache::{self, CellEntry, Core, JobIdx, Repairs};
use crate::error::CoordinatorError;
use crate::events::JobEvent;
use crate::intents::{Applied, Intent, Pending, Planned, Reply, SubmitSummary, Then};
use crate::server::Shared;

pub struct Writer<S> {
    store: Arc<S>,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Intent>,
    carry: VecDeque<Intent>,
}

impl<S: Store> Writer<S> {
    pub fn new(
        store: Arc<S>,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<Intent>,
        repairs: Repairs,
    ) -> Self {
        let mut carry = VecDeque::new();
        for job in repairs.unblock {
            carry.push_back(Intent::Unblock { job });
        }
        if shared.cfg.expire_leases_on_start {
            for (job, worker, attempt) in repairs.leased {
                carry.push_back(Intent::Expire {
                    job,
                    worker,
                    attempt,
                });
            }
        }
        Self {
            store,
            shared,
            rx,
            carry,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), CoordinatorError> {
        loop {
            if self.carry.is_empty() {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    next = self.rx.recv() => match next {
                        Some(intent) => self.carry.push_back(intent),
                        None => return Ok(()),
                    },
                }
            }
            while self.carry.len() < self.shared.cfg.max_batch * 4 {
                match self.rx.try_recv() {
                    Ok(intent) => self.carry.push_back(intent),
                    Err(_) => break,
                }
            }
            self.round().await?;
            if cancel.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// One batch: plan every queued request against the cache, write, apply, answer.
    async fn round(&mut self) -> Result<(), CoordinatorError> {
        let now = self.shared.clock.now_ms();
        let cfg = &self.shared.cfg;
        let mut batch: Vec<Pending> = Vec::new();
        let mut submits = Vec::new();
        let mut deferred = VecDeque::new();
        {
            let mut core = self.shared.core();
            if core.queue.promote(now) > 0 {
                self.shared.ready.notify_waiters();
            }
            while let Some(intent) = self.carry.pop_front() {
                if batch.len() >= cfg.max_batch {
                    deferred.push_back(intent);
                    continue;
                }
                match intent {
                    Intent::Submit { sweep, plan, reply } => submits.push((sweep, plan, reply)),
                    other => match core.plan_intent(other, now, cfg) {
                        Planned::Done => {}
                        Planned::Defer(i) => deferred.push_back(i),
                        Planned::Write(p) => batch.push(*p),
                    },
                }
            }
        }
        self.carry = deferred;
        if !batch.is_empty() {
            self.commit(batch, now).await?;
        }
        for (sweep, plan, reply) in submits {
            self.submit(sweep, *plan, reply).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, batch: Vec<Pending>, now: u64) -> Result<(), CoordinatorError> {
        let (updates, applied): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.update, p.applied)).unzip();
        let n = updates.len();
        let results = self.store.update_jobs(updates).await;
        let mut reload = false;
        let mut cascade = Vec::new();
        let mut ready = false;
        {
            let mut core = self.shared.core();
            match results {
                Ok(results) => {
                    for (p, result) in applied.into_iter().zip(results) {
                        match result {
                            Ok(version) => {
                                ready |= self.apply(&mut core, p, version, now, &mut cascade);
                            }
                            Err(conflict) => {
                                warn!(job = %conflict.key, expected = conflict.expected, actual = conflict.actual, "lost a compare-and-set; reloading from the store");
                                reload = true;
                                core.abandon(p.job, now);
                                reject(p.then, CoordinatorError::Conflict(conflict));
                            }
                        }
                    }
                }
                Err(e) => {
                    error!(error = %e, writes = n, "store write failed; reloading from the store");
                    reload = true;
                    let msg = e.to_string();
                    for p in applied {
                        core.abandon(p.job, now);
                        let err = StoreError::Backend(msg.clone().into());
                        reject(p.then, CoordinatorError::Store(err));
                    }
                }
            }
        }
        self.carry.extend(cascade);
        if ready {
            self.shared.ready.notify_waiters();
        }
        if reload {
            self.reload().await?;
        }
        Ok(())
    }

    /// Applies a durable write to the cache and answers its caller. Returns true when the job
    /// became ready.
    fn apply(
        &self,
        core: &mut Core,
        p: Applied,
        version: u64,
        now: u64,
        cascade: &mut Vec<Intent>,
    ) -> bool {
        let idx = p.job;
        let e = &mut core.jobs[idx as usize];
        p.delta.apply_to(&mut e.record);
        e.record.version = version;
        e.in_flight = false;
        let state = e.record.status.state;
        if p.from == JobState::Leased {
            e.progress = None;
        }
        if !core.index(idx, now) {
            let e = &core.jobs[idx as usize].record;
            cascade.push(Intent::Expire {
                job: idx,
                worker: e.worker_id.clone().unwrap_or_default(),
                attempt: e.status.attempt,
            });
        }
        if state == JobState::Succeeded {
            for &child in &core.jobs[idx as usize].children {
                if core.jobs[child as usize].record.status.state == JobState::Blocked {
                    cascade.push(Intent::Unblock { job: child });
                }
            }
        }
        core.event_seq += 1;
        self.publish(core, idx, &p);
        let rec = &core.jobs[idx as usize].record;
        debug!(job = %rec.key, from = %p.from, to = %state, attempt = rec.status.attempt, version, "job transition");
        match p.then {
            Then::Assign(reply, mut a) => {
                a.fencing_token = version;
                let (worker, attempt) = (rec.worker_id.clone().unwrap_or_default(), a.attempt);
                if reply.send(Ok(Some(a))).is_err() {
                    cascade.push(Intent::Release {
                        job: idx,
                        worker,
                        attempt,
                    });
                }
            }
            Then::State(reply) => {
                let _ = reply.send(Ok(state));
            }
            Then::Bool(reply) => {
                let _ = reply.send(Ok(true));
            }
            Then::Nothing => {}
        }
        state == JobState::Ready
    }

    fn publish(&self, core: &Core, idx: JobIdx, p: &Applied) {
        if self.shared.events.receiver_count() == 0 {
            return;
        }
        let e = &core.jobs[idx as usize];
        let event = pb::Event {
            seq: core.event_seq,
            job_key: e.record.key.clone(),
            kind: e.record.spec.kind.as_str().to_string(),
            from_state: p.from.as_str().to_string(),
            to_state: e.record.status.state.as_str().to_string(),
            attempt: e.record.status.attempt,
            worker_id: p.worker.clone(),
            message: p.message.clone(),
            at_ms: self.shared.clock.now_ms(),
        };
        let sweeps = e
            .sweeps
            .iter()
            .map(|&s| core.sweeps[s as usize].record.name.clone())
            .collect();
        let _ = self
            .shared
            .events
            .send(Arc::new(JobEvent { event, sweeps }));
    }

    /// Records a sweep: its new jobs (existing ones keep their state: resume), its cells.
    async fn submit(
        &mut self,
        sweep: SweepRecord,
        plan: Plan,
        reply: Reply<SubmitSummary>,
    ) -> Result<(), CoordinatorError> {
        let max_attempts = self.shared.cfg.max_attempts;
        let summary = SubmitSummary {
            cells: plan.cells.len() as u64,
            jobs: plan.jobs.len() as u64,
            jobs_already_done: 0,
        };
        let (records, cells, already_done) = {
            let core = self.shared.core();
            let done = plan
                .jobs
                .iter()
                .filter(|j| {
                    core.job(&j.key).is_some_and(|i| {
                        core.jobs[i as usize].record.status.state == JobState::Succeeded
                    })
                })
                .count() as u64;
            let summary = SubmitSummary {
                jobs_already_done: done,
                ..summary
            };
            if let Some(existing) = core.sweep(&sweep.name) {
                let result = if existing.record.grid_digest == sweep.grid_digest {
                    Ok(summary)
                } else {
                    Err(CoordinatorError::Store(StoreError::SweepExists {
                        name: sweep.name.clone(),
                        existing: existing.record.grid_digest.clone(),
                    }))
                };
                let _ = reply.send(result);
                return Ok(());
            }
            // Every job of the plan goes to the store: it inserts the missing ones and records
            // the sweep's membership of all of them.
            let mut records = Vec::with_capacity(plan.jobs.len());
            for j in &plan.jobs {
                if let Some(i) = core.job(&j.key) {
                    records.push(core.jobs[i as usize].record.clone());
                    continue;
                }
                let parents_done = match j.parent {
                    None => true,
                    Some(p) => core.job(&plan.jobs[p as usize].key).is_some_and(|i| {
                        core.jobs[i as usize].record.status.state == JobState::Succeeded
                    }),
                };
                records.push(JobRecord {
                    key: j.key.clone(),
                    spec: j.spec.clone(),
                    status: JobStatus::new(parents_done),
                    max_attempts,
                    dependents: j.dependents,
                    worker_id: None,
                    not_before_ms: 0,
                    last_failure: None,
                    metrics: None,
                    artifact: None,
                    version: 0,
                });
            }
            let cells: Vec<CellRecord> = plan
                .cells
                .iter()
                .map(|c| {
                    let v = plan.cell_values(c);
                    CellRecord {
                        model: v.model.to_string(),
                        intermediate: v.intermediate.to_string(),
                        target: v.target.to_string(),
                        language: v.language.to_string(),
                        seed: v.seed,
                        evaluate_job: plan.jobs[c.evaluate_job as usize].key.clone(),
                    }
                })
                .collect();
            (records, cells, done)
        };
        let outcome = match self.store.submit(sweep.clone(), records, cells).await {
            Ok(o) => o,
            Err(e) => {
                let ambiguous = matches!(e, StoreError::Backend(_));
                let _ = reply.send(Err(e.into()));
                if ambiguous {
                    self.reload().await?;
                }
                return Ok(());
            }
        };
        // The store sets the versions of the jobs it inserted: read them back (never guess).
        let snapshot = self.store.load().await?;
        let now = self.shared.clock.now_ms();
        {
            let mut core = self.shared.core();
            let s = core.add_sweep(sweep.clone());
            let first_new = core.jobs.len();
            let mut stored: HashMap<String, JobRecord> = snapshot
                .jobs
                .into_iter()
                .map(|(r, _)| (r.key.clone(), r))
                .collect();
            for j in &plan.jobs {
                if core.job(&j.key).is_none()
                    && let Some(record) = stored.remove(&j.key)
                {
                    core.insert_job(record);
                }
            }
            core.link_parents(first_new);
            let mut idx_of = Vec::with_capacity(plan.jobs.len());
            for j in &plan.jobs {
                let i = core.job(&j.key).ok_or_else(|| StoreError::Corrupt {
                    what: format!("job {}", j.key),
                    detail: "submitted but not found in the store".into(),
                })?;
                core.add_membership(i, s);
                idx_of.push(i);
            }
            core.sweeps[s as usize].cells = plan
                .cells
                .iter()
                .map(|c| CellEntry {
                    model: c.model,
                    intermediate: c.intermediate,
                    target: c.target,
                    language: c.language,
                    seed: c.seed,
                    evaluate: idx_of[c.evaluate_job as usize],
                })
                .collect();
            core.sweeps[s as usize].axes = plan.axes;
            for i in first_new..core.jobs.len() {
                let i = i as JobIdx;
                core.index(i, now);
                if core.jobs[i as usize].record.status.state == JobState::Blocked
                    && core.parent_succeeded(i)
                {
                    self.carry.push_back(Intent::Unblock { job: i });
                }
            }
        }
        info!(sweep = %sweep.name, created = outcome.sweep_created, jobs_inserted = outcome.jobs_inserted, already_done, "sweep submitted");
        self.shared.ready.notify_waiters();
        let _ = reply.send(Ok(SubmitSummary {
            jobs_already_done: already_done,
            ..summary
        }));
        Ok(())
    }

    /// Rebuilds the cache from the store, keeping the in-memory leases of workers.
    async fn reload(&mut self) -> Result<(), CoordinatorError> {
        let now = self.shared.clock.now_ms();
        let (mut fresh, repairs) =
            cache::load(&*self.store, now, self.shared.cfg.lease_ttl_ms()).await?;
        let mut core = self.shared.core();
        for (id, old) in core.workers.drain() {
            match fresh.workers.get_mut(&id) {
                Some(w) => w.lease_expires_at_ms = old.lease_expires_at_ms,
                None => {
                    fresh.add_worker(old.record, old.lease_expires_at_ms);
                }
            }
        }
        *core = fresh;
        drop(core);
        warn!(
            unblock = repairs.unblock.len(),
            "cache reloaded from the store"
        );
        for job in repairs.unblock {
            self.carry.push_back(Intent::Unblock { job });
        }
        self.shared.ready.notify_waiters();
        Ok(())
    }
}

fn reject(then: Then, e: CoordinatorError) {
    match then {
        Then::Assign(reply, _) => {
            let _ = reply.send(Err(e));
        }
        Then::State(reply) => {
            let _ = reply.send(Err(e));
        }
        Then::Bool(reply) => {
            let _ = reply.send(Err(e));
        }
        Then::Nothing => {}
    }
}

impl Core {
    /// A write that did not happen: the job goes back into the indexes as it was.
    fn abandon(&mut self, job: JobIdx, now: u64) {
        self.jobs[job as usize].in_flight = false;
        self.index(job, now);
    }
}
