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

use std::collections::VecDeque;
use std::sync::Arc;

use futures::future::BoxFuture;

use stilts_common::plan::{Plan, PlannedJob};
use stilts_common::state::{JobState, JobStatus};
use stilts_common::store::{
    CellRecord, Conflict, DeleteOutcome, EventRecord, JobRecord, Store, StoreError, SubmitOutcome,
    SweepRecord,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::cache::{self, CellEntry, Core, JobIdx, Repairs, SweepIdx};
use crate::error::CoordinatorError;
use crate::events::JobEvent;
use crate::intents::{Applied, Intent, Pending, Planned, Reply, SubmitSummary, Then, Undelivered};
use crate::metrics::Metrics;
use crate::shared::Shared;

/// How many batches may be at the store at once.
const PIPELINE: usize = 2;
/// Jobs handled per hold of the cache lock while a submit is prepared and applied (a few
/// milliseconds each), so that heartbeats and acquires go between the chunks of a big sweep.
const LOCK_CHUNK: usize = 2_000;

type BatchResult = Result<Vec<Result<u64, Conflict>>, StoreError>;

/// A submit whose write is at the store (one at a time; job writes go on meanwhile).
struct Submitting {
    sweep: SweepRecord,
    plan: Arc<Plan>,
    reply: Reply<SubmitSummary>,
    replanned: bool,
    /// Prepares the records (off the writer, see [`prepare`]), then writes them.
    write: BoxFuture<'static, SubmitResult>,
}

/// What a submit's preparation found, for [`Writer::end_submit`].
struct Prepared {
    /// Plan indexes of the jobs the cache did not hold, with "parent succeeded" as sent.
    fresh: Vec<(usize, bool)>,
    /// Jobs of the plan that had already succeeded.
    already_done: u64,
}

type SubmitResult = Result<(SubmitOutcome, Prepared), StoreError>;

/// A change of the sweeps themselves, one at a time and in arrival order.
enum Change {
    Submit(SweepRecord, Box<Plan>, Reply<SubmitSummary>),
    Delete {
        name: String,
        purge: bool,
        reply: Reply<DeleteOutcome>,
    },
}

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
    /// Submits and deletes waiting for the submit at the store.
    submits: VecDeque<Change>,
    submitting: Option<Submitting>,
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
            submits: VecDeque::new(),
            submitting: None,
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
            let submitting = self.submitting.is_some();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    self.drain().await?;
                    return Ok(());
                }
                result = Self::oldest(&mut self.in_flight), if busy => {
                    self.settle(result).await?;
                }
                result = Self::submitted(&mut self.submitting), if submitting => {
                    self.end_submit(result).await?;
                    self.start_submit().await?;
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
                    Intent::Submit { sweep, plan, reply } => {
                        self.submits.push_back(Change::Submit(sweep, plan, reply))
                    }
                    Intent::DeleteSweep { name, purge, reply } => self
                        .submits
                        .push_back(Change::Delete { name, purge, reply }),
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
        self.start_submit().await
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

    /// The result of the submit at the store (pending forever when there is none).
    async fn submitted(submitting: &mut Option<Submitting>) -> SubmitResult {
        match submitting {
            Some(s) => (&mut s.write).await,
            None => std::future::pending().await,
        }
    }

    /// Waits for every batch and the submit at the store and applies them.
    async fn drain(&mut self) -> Result<(), CoordinatorError> {
        self.drain_then_reload(false).await?;
        if self.submitting.is_some() {
            let result = Self::submitted(&mut self.submitting).await;
            self.end_submit(result).await?;
        }
        Ok(())
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
            // A submit at the store finishes first, so that the reload reads all of it.
            if let Some(mut pending) = self.submitting.take() {
                let result = (&mut pending.write).await;
                let _ = pending.reply.send(match result {
                    Ok((_, prepared)) => {
                        Ok(summary_of(&pending.plan, &prepared, pending.replanned))
                    }
                    Err(e) => Err(e.into()),
                });
            }
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
        let record = EventRecord {
            seq: core.event_seq,
            job_key: e.record.key.clone(),
            from: p.from.as_str().to_string(),
            to: e.record.status.state.as_str().to_string(),
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
        let _ = self.shared.events.send(Arc::new(JobEvent {
            record,
            kind: e.record.spec.kind,
            sweeps,
        }));
    }

    /// Starts the next queued submit when none is at the store: answers at once when the sweep
    /// is known, else builds its records (a chunk of jobs per hold of the cache lock) and sends
    /// them to the store. The writer goes on with job writes meanwhile; see [`Self::end_submit`].
    /// A delete waits for its turn like a submit and is done here (see [`Self::delete`]).
    async fn start_submit(&mut self) -> Result<(), CoordinatorError> {
        while self.submitting.is_none() {
            let (sweep, plan, reply) = match self.submits.pop_front() {
                None => return Ok(()),
                Some(Change::Delete { name, purge, reply }) => {
                    let result = self.delete(&name, purge).await?;
                    let _ = reply.send(result);
                    continue;
                }
                Some(Change::Submit(sweep, plan, reply)) => (sweep, plan, reply),
            };
            let mut replanned = false;
            if self.inputs_changed(&sweep, &plan) {
                // Same grid file, new data (`data_version = "auto"`): the old plan goes, its jobs
                // stay, and the new plan reuses every one whose inputs did not change.
                info!(sweep = %sweep.name, "the sweep's data changed since it was submitted: planning it again");
                if let Err(e) = self.delete(&sweep.name, false).await? {
                    let _ = reply.send(Err(e));
                    continue;
                }
                replanned = true;
            }
            if let Some(answer) = self.known_sweep(&sweep, &plan) {
                let _ = reply.send(answer);
                continue;
            }
            // The records and cells of a big plan take a while to build: on a blocking thread,
            // reading the cache a chunk at a time, so the writer goes on with job writes.
            let plan: Arc<Plan> = Arc::from(plan);
            let (store, shared, record, p) = (
                self.store.clone(),
                self.shared.clone(),
                sweep.clone(),
                plan.clone(),
            );
            let max_attempts = self.shared.cfg.max_attempts;
            let write: BoxFuture<'static, SubmitResult> = Box::pin(async move {
                let built = tokio::task::spawn_blocking(move || prepare(&shared, &p, max_attempts))
                    .await
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                let (records, cells, prepared) = built;
                let outcome = store.submit(record, records, cells).await?;
                Ok((outcome, prepared))
            });
            self.submitting = Some(Submitting {
                sweep,
                plan,
                reply,
                replanned,
                write,
            });
        }
        Ok(())
    }

    /// Whether `sweep` is stored under its name from the same grid text but planned from other
    /// inputs, and the grid asks for that to mean new work (`data_version = "auto"`).
    fn inputs_changed(&self, sweep: &SweepRecord, plan: &Plan) -> bool {
        plan.replan_on_new_inputs
            && self.shared.core().sweep(&sweep.name).is_some_and(|e| {
                e.record.grid_digest != sweep.grid_digest
                    && e.record.grid_toml == sweep.grid_toml
                    && e.record.backend == sweep.backend
            })
    }

    /// Deletes a sweep at the store once every write at the store has returned, then reloads
    /// the cache (rare and simple beats a second way of removing things from the cache).
    async fn delete(
        &mut self,
        name: &str,
        purge: bool,
    ) -> Result<Result<DeleteOutcome, CoordinatorError>, CoordinatorError> {
        self.drain_then_reload(false).await?;
        let result = self.store.delete_sweep(name, purge).await;
        match result {
            Ok(outcome) => {
                info!(sweep = %name, cells = outcome.cells, purged = outcome.purged.len(), "sweep deleted");
                self.drain_then_reload(true).await?;
                Ok(Ok(outcome))
            }
            Err(StoreError::SweepNotFound(n)) => Ok(Err(CoordinatorError::UnknownSweep(n))),
            Err(e) => {
                // Ambiguous: read back what the store holds.
                let e = CoordinatorError::from(e);
                self.drain_then_reload(true).await?;
                Ok(Err(e))
            }
        }
    }

    /// The answer to a submit of a sweep the cache knows: its summary when the grid and backend
    /// are the same (resume), else why not.
    fn known_sweep(
        &self,
        sweep: &SweepRecord,
        plan: &Plan,
    ) -> Option<Result<SubmitSummary, CoordinatorError>> {
        let core = self.shared.core();
        let existing = core.sweep(&sweep.name)?;
        Some(if existing.record.grid_digest != sweep.grid_digest {
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
            let done = plan
                .jobs
                .iter()
                .filter(|j| {
                    core.job(&j.key).is_some_and(|i| {
                        core.jobs[i as usize].record.status.state == JobState::Succeeded
                    })
                })
                .count() as u64;
            Ok(SubmitSummary {
                cells: plan.cells.len() as u64,
                jobs: plan.jobs.len() as u64,
                jobs_already_done: done,
                replanned: false,
            })
        })
    }

    /// The submit at the store has returned: its new jobs (version 1, the store's contract) and
    /// memberships go into the cache a chunk per hold of the lock, then its cells, and the
    /// caller is answered. Anything the cache cannot account for (a job stored by someone else,
    /// a sweep that appeared meanwhile, an ambiguous failure) reloads the cache instead.
    async fn end_submit(&mut self, result: SubmitResult) -> Result<(), CoordinatorError> {
        let Some(Submitting {
            sweep,
            plan,
            reply,
            replanned,
            ..
        }) = self.submitting.take()
        else {
            return Ok(());
        };
        let (outcome, prepared) = match result {
            Ok(o) => o,
            Err(e) => {
                let ambiguous = matches!(e, StoreError::Backend(_));
                let _ = reply.send(Err(e.into()));
                if ambiguous {
                    self.drain_then_reload(true).await?;
                }
                return Ok(());
            }
        };
        let summary = summary_of(&plan, &prepared, replanned);
        let fresh = prepared.fresh;
        let unknown = !outcome.sweep_created || {
            let core = self.shared.core();
            outcome.already_stored.iter().any(|k| core.job(k).is_none())
        };
        if unknown {
            // Written by another submit or coordinator: read the store (never guess).
            self.drain_then_reload(true).await?;
            let _ = reply.send(Ok(summary));
            return Ok(());
        }
        let now = self.shared.clock.now_ms();
        let s = self.shared.core().add_sweep(sweep.clone());
        let idx_of = self.cache_plan_jobs(&plan, fresh, s, now).await?;
        let cells: Vec<CellEntry> = plan
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
        {
            let mut core = self.shared.core();
            core.sweeps[s as usize].cells = cells;
            core.sweeps[s as usize].axes = plan.axes.clone();
        }
        info!(sweep = %sweep.name, jobs_inserted = outcome.jobs_inserted, already_done = summary.jobs_already_done, "sweep submitted");
        self.shared.ready.notify_waiters();
        let _ = reply.send(Ok(summary));
        Ok(())
    }

    /// Puts the jobs of a durable submit into the cache, `LOCK_CHUNK` at a time (the lock is
    /// released and the task yields between chunks, so job writes go on beside a big submit):
    /// the store's new jobs (`fresh`: plan index, parents done) inserted, every job made a member
    /// of sweep `s`. The cache index of each plan job, in plan order.
    async fn cache_plan_jobs(
        &mut self,
        plan: &Plan,
        fresh: Vec<(usize, bool)>,
        s: SweepIdx,
        now: u64,
    ) -> Result<Vec<JobIdx>, CoordinatorError> {
        let max_attempts = self.shared.cfg.max_attempts;
        let mut fresh = fresh.into_iter().peekable();
        let mut idx_of = Vec::with_capacity(plan.jobs.len());
        for start in (0..plan.jobs.len()).step_by(LOCK_CHUNK) {
            let chunk = start..(start + LOCK_CHUNK).min(plan.jobs.len());
            {
                let mut core = self.shared.core();
                let first_new = core.jobs.len();
                for n in chunk.clone() {
                    if let Some(&(f, parents_done)) = fresh.peek()
                        && f == n
                    {
                        fresh.next();
                        let j = &plan.jobs[n];
                        if core.job(&j.key).is_none() {
                            let mut record = new_record(j, parents_done, max_attempts);
                            record.version = 1;
                            core.insert_job(record);
                        }
                    }
                }
                core.link_parents(first_new);
                for n in chunk {
                    let key = &plan.jobs[n].key;
                    let i = join_sweep(
                        &mut core,
                        &self.shared.metrics,
                        &mut self.carry,
                        key,
                        s,
                        first_new,
                        now,
                    )?;
                    idx_of.push(i);
                }
            }
            tokio::task::yield_now().await;
        }
        Ok(idx_of)
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

/// A submit's records, cells and what [`Writer::end_submit`] needs, built on a blocking thread
/// from the plan and the cache (read [`LOCK_CHUNK`] jobs per hold of the lock). A job the cache
/// already holds is sent as it is (the store keeps its stored record); a new one is ready when
/// its parent has succeeded (a parent that succeeds meanwhile is unblocked by `end_submit`).
fn prepare(
    shared: &Shared,
    plan: &Plan,
    max_attempts: u32,
) -> (Vec<JobRecord>, Vec<CellRecord>, Prepared) {
    let mut records = Vec::with_capacity(plan.jobs.len());
    let mut fresh = Vec::new();
    let mut already_done = 0;
    for start in (0..plan.jobs.len()).step_by(LOCK_CHUNK) {
        let core = shared.core();
        for n in start..(start + LOCK_CHUNK).min(plan.jobs.len()) {
            let j = &plan.jobs[n];
            if let Some(i) = core.job(&j.key) {
                let record = &core.jobs[i as usize].record;
                already_done += u64::from(record.status.state == JobState::Succeeded);
                records.push(record.clone());
                continue;
            }
            let parents_done = match j.parent {
                None => true,
                Some(p) => core.job(&plan.jobs[p as usize].key).is_some_and(|i| {
                    core.jobs[i as usize].record.status.state == JobState::Succeeded
                }),
            };
            fresh.push((n, parents_done));
            records.push(new_record(j, parents_done, max_attempts));
        }
    }
    let cells = plan
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
    (
        records,
        cells,
        Prepared {
            fresh,
            already_done,
        },
    )
}

fn summary_of(plan: &Plan, prepared: &Prepared, replanned: bool) -> SubmitSummary {
    SubmitSummary {
        cells: plan.cells.len() as u64,
        jobs: plan.jobs.len() as u64,
        jobs_already_done: prepared.already_done,
        replanned,
    }
}

/// The record of a job the store does not hold yet (its version is set by the store: 1).
fn new_record(j: &PlannedJob, parents_done: bool, max_attempts: u32) -> JobRecord {
    JobRecord {
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
        usage: Default::default(),
    }
}

/// Makes cached job `key` a member of sweep `s`; a job new to the cache (index ≥
/// `first_new`), or left without a sweep by an earlier submit that stopped halfway, is
/// indexed for scheduling (and unblocked when its parent already succeeded).
fn join_sweep(
    core: &mut Core,
    metrics: &Metrics,
    carry: &mut VecDeque<Intent>,
    key: &str,
    s: SweepIdx,
    first_new: usize,
    now: u64,
) -> Result<JobIdx, CoordinatorError> {
    let i = core.job(key).ok_or_else(|| StoreError::Corrupt {
        what: format!("job {key}"),
        detail: "submitted but not in the cache".into(),
    })?;
    let had_none = core.jobs[i as usize].sweeps.is_empty();
    core.add_membership(i, s, now);
    if (i as usize) < first_new && !had_none {
        return Ok(i);
    }
    core.index(i, now);
    if (i as usize) >= first_new {
        metrics.inserted(&core.jobs[i as usize].record, now);
    }
    if core.jobs[i as usize].record.status.state == JobState::Blocked && core.parent_succeeded(i) {
        carry.push_back(Intent::Unblock { job: i });
    }
    Ok(i)
}
