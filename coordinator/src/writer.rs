//! The single writer: every job transition goes through this task, is written to the store
//! with compare-and-set, and only then is applied to the cache and acknowledged.
//!
//! Group commit: requests queue on a channel while batches are at the store; the next batch takes
//! all of them (up to `max_batch`) in one `update_jobs` call. Batches are pipelined: up to
//! [`PIPELINE`] are at the store at once (batch n+1 is planned and sent while batch n commits),
//! and their results are applied strictly in order. A job has at most one write in flight, in
//! any batch; a second request for it waits until the first returns. Nothing is applied to the
//! cache or acknowledged before the store has returned the batch that holds it. A lost
//! compare-and-set or an ambiguous store error rejects the request, lets the batches still at
//! the store return (they are applied like any other), then reloads the cache from the store
//! (never guess); if the store cannot be read either, the writer stops and takes the coordinator
//! down with it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use futures::future::BoxFuture;

use stilts_common::plan::Plan;
use stilts_common::state::{JobState, JobStatus};
use stilts_common::store::{CellRecord, Conflict, JobRecord, Store, StoreError, SweepRecord};
use stilts_proto::v1 as pb;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::cache::{self, CellEntry, Core, JobIdx, Repairs};
use crate::error::CoordinatorError;
use crate::events::JobEvent;
use crate::intents::{Applied, Intent, Pending, Planned, Reply, SubmitSummary, Then, Undelivered};
use crate::server::Shared;

/// How many batches may be at the store at once.
const PIPELINE: usize = 2;

type BatchResult = Result<Vec<Result<u64, Conflict>>, StoreError>;

/// A batch sent to the store whose result has not been applied yet.
struct InFlight {
    write: BoxFuture<'static, BatchResult>,
    applied: Vec<Applied>,
    now: u64,
}

pub struct Writer<S> {
    store: Arc<S>,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Intent>,
    /// Requests to plan.
    carry: VecDeque<Intent>,
    /// Requests for jobs with a write in flight: planned again once a batch returns.
    deferred: VecDeque<Intent>,
    /// Batches at the store, oldest first.
    in_flight: VecDeque<InFlight>,
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
            deferred: VecDeque::new(),
            in_flight: VecDeque::new(),
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), CoordinatorError> {
        loop {
            while self.carry.len() < self.shared.cfg.max_batch * 4 {
                match self.rx.try_recv() {
                    Ok(intent) => self.carry.push_back(intent),
                    Err(_) => break,
                }
            }
            if !self.carry.is_empty() && self.in_flight.len() < PIPELINE {
                self.round().await?;
                continue;
            }
            let room = self.in_flight.len() < PIPELINE;
            let busy = !self.in_flight.is_empty();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    self.drain().await?;
                    return Ok(());
                }
                result = Self::oldest(&mut self.in_flight), if busy => {
                    self.settle(result).await?;
                }
                next = self.rx.recv(), if room => match next {
                    Some(intent) => self.carry.push_back(intent),
                    None => {
                        self.drain().await?;
                        return Ok(());
                    }
                },
            }
        }
    }

    /// Plans every queued request against the cache and sends the writes to the store as one
    /// batch; submissions are handled once every batch at the store has returned.
    async fn round(&mut self) -> Result<(), CoordinatorError> {
        let now = self.shared.clock.now_ms();
        let cfg = &self.shared.cfg;
        let mut batch: Vec<Pending> = Vec::new();
        let mut submits = Vec::new();
        let mut rest = VecDeque::new();
        {
            let mut core = self.shared.core();
            if core.queue.promote(now) > 0 {
                self.shared.ready.notify_waiters();
            }
            while let Some(intent) = self.carry.pop_front() {
                if batch.len() >= cfg.max_batch {
                    rest.push_back(intent);
                    continue;
                }
                match intent {
                    Intent::Submit { sweep, plan, reply } => submits.push((sweep, plan, reply)),
                    other => match core.plan_intent(other, now, cfg) {
                        Planned::Done => {}
                        Planned::Defer(i) => self.deferred.push_back(i),
                        Planned::Write(p) => batch.push(*p),
                    },
                }
            }
        }
        self.carry = rest;
        if !batch.is_empty() {
            self.send(batch, now).await;
        }
        if !submits.is_empty() {
            self.drain().await?;
            for (sweep, plan, reply) in submits {
                self.submit(sweep, *plan, reply).await?;
            }
        }
        Ok(())
    }

    /// Sends a batch to the store. It is polled once here so that it reaches the store now, in
    /// order behind the batches already there.
    async fn send(&mut self, batch: Vec<Pending>, now: u64) {
        let (updates, applied): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.update, p.applied)).unzip();
        let store = self.store.clone();
        let mut write: BoxFuture<'static, BatchResult> =
            Box::pin(async move { store.update_jobs(updates).await });
        let early = match futures::poll!(write.as_mut()) {
            std::task::Poll::Ready(result) => Some(result),
            std::task::Poll::Pending => None,
        };
        self.in_flight.push_back(InFlight {
            write: match early {
                Some(result) => Box::pin(std::future::ready(result)),
                None => write,
            },
            applied,
            now,
        });
    }

    /// The result of the oldest batch at the store (pending forever when there is none).
    async fn oldest(in_flight: &mut VecDeque<InFlight>) -> BatchResult {
        match in_flight.front_mut() {
            Some(front) => (&mut front.write).await,
            None => std::future::pending().await,
        }
    }

    /// Waits for every batch at the store and applies it.
    async fn drain(&mut self) -> Result<(), CoordinatorError> {
        self.drain_then_reload(false).await
    }

    /// Applies the oldest batch's result. A conflict or an ambiguous failure reloads the cache,
    /// after the batches still at the store have returned and been applied.
    async fn settle(&mut self, results: BatchResult) -> Result<(), CoordinatorError> {
        if self.finish(results) {
            self.drain_then_reload(true).await?;
        }
        Ok(())
    }

    async fn drain_then_reload(&mut self, mut reload: bool) -> Result<(), CoordinatorError> {
        while let Some(front) = self.in_flight.front_mut() {
            let result = (&mut front.write).await;
            reload |= self.finish(result);
        }
        if reload {
            self.reload().await?;
        }
        Ok(())
    }

    /// Applies the oldest batch's result; true when the cache must be reloaded.
    fn finish(&mut self, results: BatchResult) -> bool {
        let InFlight { applied, now, .. } = self
            .in_flight
            .pop_front()
            .expect("finish is called for the oldest batch");
        // Requests that waited for a job of this batch may go now (before newer ones).
        while let Some(i) = self.deferred.pop_back() {
            self.carry.push_front(i);
        }
        self.apply_batch(applied, results, now)
    }

    fn apply_batch(&mut self, applied: Vec<Applied>, results: BatchResult, now: u64) -> bool {
        let n = applied.len();
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
        reload
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
        self.shared
            .metrics
            .transition(rec, p.from, &p.worker, &p.message, now);
        match p.then {
            Then::Assign(reply, mut a) => {
                a.fencing_token = version;
                let (worker, attempt) = (rec.worker_id.clone().unwrap_or_default(), a.attempt);
                if reply.send(Ok(Some(a))).is_err() {
                    cascade.push(Intent::Release {
                        job: idx,
                        worker,
                        attempt,
                        why: Undelivered::ReplyFailed,
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
                let result = if existing.record.grid_digest != sweep.grid_digest {
                    Err(CoordinatorError::Store(StoreError::SweepExists {
                        name: sweep.name.clone(),
                        existing: existing.record.grid_digest.clone(),
                    }))
                } else if existing.record.backend != sweep.backend {
                    Err(CoordinatorError::SweepBackend {
                        name: sweep.name.clone(),
                        stored: existing.record.backend.clone(),
                        requested: sweep.backend.clone(),
                    })
                } else {
                    Ok(summary)
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
                core.add_membership(i, s, now);
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
                self.shared
                    .metrics
                    .inserted(&core.jobs[i as usize].record, now);
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
