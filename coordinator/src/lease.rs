//! Worker leases: one per worker, renewed by every call the worker makes, expired by the reaper.
//!
//! Lease expiry times live in memory only. A restarted coordinator gives every worker it finds in
//! the store one fresh TTL, so a worker that keeps running through the restart keeps its jobs;
//! one that is gone loses them one TTL later.

use std::collections::HashSet;
use std::sync::Arc;

use stilts_common::heartbeat::{HeartbeatReply, RunningJob};
use stilts_common::series::MAX_STORED_POINTS;
use stilts_common::state::JobState;
use stilts_common::store::{CurveRecord, Store};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::cache::{Core, JobIdx};
use crate::error::CoordinatorError;
use crate::intents::Intent;
use crate::shared::Shared;

/// A worker whose lease ran out, with the attempts it held.
#[derive(Debug)]
pub struct Expired {
    pub worker: String,
    pub jobs: Vec<(JobIdx, u32)>,
}

impl Core {
    /// Extends a worker's lease; false for an unknown worker.
    pub fn renew(&mut self, worker: &str, now_ms: u64, ttl_ms: u64) -> bool {
        match self.workers.get_mut(worker) {
            Some(w) => {
                w.lease_expires_at_ms = w.lease_expires_at_ms.max(now_ms + ttl_ms);
                true
            }
            None => false,
        }
    }

    /// Renews the lease, records progress of current assignments (and returns their curves, to
    /// be stored), and lists the reported jobs
    /// the worker must cancel: those it no longer holds (reassigned after a lost lease,
    /// cancelled, unknown). A listed job whose attempt and fencing token are the current ones is
    /// never cancelled, whichever worker id it comes under (the lost-lease race: see below).
    ///
    /// Also returns the attempts this worker holds but did not list (a worker lists its running
    /// jobs and its undelivered reports), once a lease TTL after the assignment and in two
    /// heartbeats in a row: the assignment never reached it (the reply was lost, e.g. the
    /// leader died between the commit and the reply). Without this a live worker would renew a
    /// lease on a job it never runs, forever.
    pub fn heartbeat(
        &mut self,
        worker: &str,
        running: Vec<RunningJob>,
        now_ms: u64,
        ttl_ms: u64,
    ) -> (HeartbeatReply, Vec<(JobIdx, u32)>, Vec<CurveRecord>) {
        let known = self.renew(worker, now_ms, ttl_ms);
        let mut cancel_job_keys = Vec::new();
        let mut curves = Vec::new();
        let mut listed = HashSet::with_capacity(running.len());
        for r in running {
            let Some(idx) = self.job(&r.job_key) else {
                cancel_job_keys.push(r.job_key);
                continue;
            };
            listed.insert(idx);
            let e = &mut self.jobs[idx as usize];
            let rec = &e.record;
            let same = rec.worker_id.as_deref() == Some(worker) && rec.status.attempt == r.attempt;
            if same && rec.status.state == JobState::Leased && rec.version == r.fencing_token {
                e.unseen = 0;
                if let Some(p) = r.progress {
                    e.progress = Some(p);
                }
                // Only the current attempt's curve is kept (the token proved it above).
                if !r.curve.is_empty() {
                    let skip = r.curve.len().saturating_sub(MAX_STORED_POINTS);
                    curves.push(CurveRecord {
                        job_key: r.job_key,
                        attempt: r.attempt,
                        points: r.curve.into_iter().skip(skip).collect(),
                    });
                }
            } else if e.in_flight || (same && rec.status.state == JobState::Succeeded) {
                // A write is on its way (its outcome decides), or the report already landed.
            } else if rec.status.state == JobState::Leased
                && rec.status.attempt == r.attempt
                && rec.version == r.fencing_token
            {
                // The current assignment, listed under another worker id: a worker that lost
                // its lease registered again and acquired this job, while a heartbeat with its
                // old id was on its way. The token proves the sender holds the assignment;
                // cancelling would fail a healthy job for good. Its own id's heartbeat renews it.
            } else {
                cancel_job_keys.push(r.job_key);
            }
        }
        let held: Vec<JobIdx> = self
            .workers
            .get(worker)
            .map(|w| w.jobs.iter().copied().collect())
            .unwrap_or_default();
        let mut lost = Vec::new();
        for idx in held {
            let e = &mut self.jobs[idx as usize];
            if listed.contains(&idx)
                || e.in_flight
                || now_ms < e.leased_since_ms.saturating_add(ttl_ms)
            {
                continue;
            }
            e.unseen = e.unseen.saturating_add(1);
            if e.unseen >= 2 {
                lost.push((idx, e.record.status.attempt));
            }
        }
        let reply = HeartbeatReply {
            cancel_job_keys,
            known,
        };
        (reply, lost, curves)
    }

    /// Removes the workers whose lease ran out by `now_ms`.
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<Expired> {
        let ids: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, w)| w.lease_expires_at_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| self.workers.remove(&id))
            .map(|w| Expired {
                jobs: w
                    .jobs
                    .iter()
                    .map(|&j| (j, self.jobs[j as usize].record.status.attempt))
                    .collect(),
                worker: w.record.id,
            })
            .collect()
    }
}

/// Every `reaper_period`: releases jobs whose backoff has passed and expires lost workers
/// (their leased jobs get `LeaseExpired`: ready again with budget spent, or failed).
pub async fn reaper<S: Store>(
    store: Arc<S>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> Result<(), CoordinatorError> {
    let mut tick = tokio::time::interval(shared.cfg.reaper_period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let now = shared.clock.now_ms();
        let (promoted, expired) = {
            let mut core = shared.core();
            (core.queue.promote(now), core.take_expired(now))
        };
        if promoted > 0 {
            shared.ready.notify_waiters();
        }
        for w in expired {
            warn!(worker = %w.worker, jobs = w.jobs.len(), "worker lease expired");
            shared.metrics.lease_expired(w.jobs.len());
            for (job, attempt) in w.jobs {
                let intent = Intent::Expire {
                    job,
                    worker: w.worker.clone(),
                    attempt,
                };
                if shared.intents.send(intent).await.is_err() {
                    return Ok(());
                }
            }
            if let Err(e) = store.remove_worker(&w.worker).await {
                warn!(worker = %w.worker, error = %e, "could not remove an expired worker from the store");
            }
        }
    }
}
