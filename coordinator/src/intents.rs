//! What callers ask the writer to do, and how one request becomes one compare-and-set write.
//!
//! Every rule about *whether* a job may change lives in `stilts_common::state::transition`;
//! this file checks the request against the cache (fencing: worker, attempt and token must match
//! the job's current lease) and builds the write. Nothing here touches the store.

use stilts_common::convert::job_spec_to_json;
use stilts_common::failure::{Failure, FailureReason};
use stilts_common::plan::Plan;
use stilts_common::state::{Event, JobState, JobStatus, transition};
use stilts_common::store::{DeleteOutcome, EventRecord, JobRecord, JobUpdate, SweepRecord};
use stilts_common::usage::Usage;
use tokio::sync::oneshot;

use crate::cache::{Core, JobIdx};
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;

pub type Reply<T> = oneshot::Sender<Result<T, CoordinatorError>>;

/// Who reports on which assignment.
#[derive(Debug, Clone)]
pub struct Report {
    pub worker: String,
    pub key: String,
    pub attempt: u32,
    pub token: u64,
}

/// A job handed to a worker.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub job_key: String,
    pub attempt: u32,
    /// The version the assign write produced.
    pub fencing_token: u64,
    pub spec_json: String,
    pub input_artifact: String,
    pub sweep: String,
    /// The stage kind (a trace attribute).
    pub kind: &'static str,
    /// The queue wait, ready to assigned (unix ms; `ready_since_ms` 0 when unknown).
    pub ready_since_ms: u64,
    pub assigned_at_ms: u64,
}

/// What `SubmitSweep` did.
#[derive(Debug, Clone, Copy)]
pub struct SubmitSummary {
    pub cells: u64,
    pub jobs: u64,
    pub jobs_already_done: u64,
    /// The sweep was stored from the same grid with other inputs and was planned again.
    pub replanned: bool,
}

/// Why an assignment is taken back without spending budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// The reply to `AcquireJob` could not be handed to the caller.
    ReplyFailed,
    /// The worker's heartbeats do not list the job (see `Core::heartbeat`).
    NotRunning,
}

/// One request to the writer.
#[derive(Debug)]
pub enum Intent {
    Assign {
        worker: String,
        reply: Reply<Option<Assignment>>,
    },
    Complete {
        report: Report,
        metrics: Option<serde_json::Value>,
        artifact: String,
        reply: Reply<JobState>,
    },
    Fail {
        report: Report,
        failure: Failure,
        reply: Reply<JobState>,
    },
    /// The worker's lease ran out while it held this attempt.
    Expire {
        job: JobIdx,
        worker: String,
        attempt: u32,
    },
    /// An assignment that never reached its worker: back to ready, no budget spent.
    Release {
        job: JobIdx,
        worker: String,
        attempt: u32,
        why: Undelivered,
    },
    Cancel {
        job: JobIdx,
        reply: Reply<bool>,
    },
    Retry {
        job: JobIdx,
        reply: Reply<bool>,
    },
    /// The parent succeeded: blocked → ready.
    Unblock {
        job: JobIdx,
    },
    Submit {
        sweep: SweepRecord,
        plan: Box<Plan>,
        reply: Reply<SubmitSummary>,
    },
    /// Remove a sweep (see `Store::delete_sweep`); handled in turn with submits.
    DeleteSweep {
        name: String,
        purge: bool,
        reply: Reply<DeleteOutcome>,
    },
}

/// The fields of a job record a write changes.
#[derive(Debug, Clone)]
pub struct Delta {
    pub status: JobStatus,
    pub worker_id: Option<String>,
    pub not_before_ms: u64,
    pub last_failure: Option<Failure>,
    pub metrics: Option<serde_json::Value>,
    pub artifact: Option<String>,
    pub usage: Usage,
}

impl Delta {
    fn of(r: &JobRecord) -> Self {
        Self {
            status: r.status,
            worker_id: r.worker_id.clone(),
            not_before_ms: r.not_before_ms,
            last_failure: r.last_failure.clone(),
            metrics: r.metrics.clone(),
            artifact: r.artifact.clone(),
            usage: r.usage.clone(),
        }
    }

    pub fn apply_to(&self, r: &mut JobRecord) {
        r.status = self.status;
        r.worker_id.clone_from(&self.worker_id);
        r.not_before_ms = self.not_before_ms;
        r.last_failure.clone_from(&self.last_failure);
        r.metrics.clone_from(&self.metrics);
        r.artifact.clone_from(&self.artifact);
        r.usage.clone_from(&self.usage);
    }
}

/// What to tell the caller once the write is durable.
#[derive(Debug)]
pub enum Then {
    Assign(Reply<Option<Assignment>>, Assignment),
    State(Reply<JobState>),
    Bool(Reply<bool>),
    Nothing,
}

/// A write on its way to the store: the write itself, and what applying it means.
#[derive(Debug)]
pub struct Pending {
    pub update: JobUpdate,
    pub applied: Applied,
}

/// What the cache does once a write is durable.
#[derive(Debug)]
pub struct Applied {
    pub job: JobIdx,
    pub from: JobState,
    pub delta: Delta,
    /// The worker the event names (the new holder, else the one that held the job).
    pub worker: String,
    pub message: String,
    pub then: Then,
}

/// The outcome of looking at one intent.
#[derive(Debug)]
pub enum Planned {
    /// Answered (or nothing to do) without a write.
    Done,
    /// The job has a write in flight; try again in the next batch.
    Defer(Intent),
    Write(Box<Pending>),
}

fn answer<T>(reply: Reply<T>, v: Result<T, CoordinatorError>) -> Planned {
    // The caller may have gone away (deadline, disconnect); the write did not happen either way.
    let _ = reply.send(v);
    Planned::Done
}

impl Core {
    /// Checks one request against the cache and turns it into a write (marking the job in flight).
    pub fn plan_intent(&mut self, intent: Intent, now_ms: u64, cfg: &CoordinatorConfig) -> Planned {
        match intent {
            Intent::Assign { worker, reply } => self.plan_assign(worker, reply, now_ms),
            Intent::Complete {
                report,
                metrics,
                artifact,
                reply,
            } => self.plan_complete(report, metrics, artifact, reply, now_ms),
            Intent::Fail {
                report,
                failure,
                reply,
            } => self.plan_fail(report, failure, reply, now_ms, cfg),
            Intent::Expire {
                job,
                worker,
                attempt,
            }
            | Intent::Release {
                job,
                worker,
                attempt,
                ..
            } if !self.holds(job, &worker, attempt) => Planned::Done,
            i @ (Intent::Expire { job, .. }
            | Intent::Release { job, .. }
            | Intent::Cancel { job, .. }
            | Intent::Retry { job, .. }
            | Intent::Unblock { job })
                if self.jobs[job as usize].in_flight =>
            {
                Planned::Defer(i)
            }
            Intent::Expire { job, worker, .. } => {
                let f = Failure::retryable(
                    FailureReason::WorkerLost,
                    format!("worker {worker} lost its lease"),
                );
                let built = self.build_failure_event(job, Event::LeaseExpired, f, now_ms, cfg);
                self.begin_or_drop(built)
            }
            Intent::Release {
                job, worker, why, ..
            } => {
                let f = Failure::preempted(match why {
                    Undelivered::ReplyFailed => {
                        format!("the assignment to worker {worker} could not be delivered")
                    }
                    Undelivered::NotRunning => format!(
                        "worker {worker} does not run its assignment (absent from two heartbeats \
                         a lease TTL after it was assigned: the reply was lost)"
                    ),
                });
                let built = self.build_failure(job, f, now_ms, cfg);
                self.begin_or_drop(built)
            }
            Intent::Cancel { job, reply } => self.plan_cancel(job, reply, now_ms),
            Intent::Retry { job, reply } => self.plan_retry(job, reply, now_ms),
            Intent::Unblock { job } => self.plan_unblock(job, now_ms),
            Intent::Submit { reply, .. } => answer(
                reply,
                Err(CoordinatorError::InvalidArgument(
                    "a submission is not a job write".into(),
                )),
            ),
            Intent::DeleteSweep { reply, .. } => answer(
                reply,
                Err(CoordinatorError::InvalidArgument(
                    "a delete is not a job write".into(),
                )),
            ),
        }
    }

    /// A write nobody waits for (expiry, release, unblock): begun, or dropped when the
    /// transition no longer applies.
    fn begin_or_drop(&mut self, built: Result<Pending, CoordinatorError>) -> Planned {
        match built {
            Ok(p) => self.begin(p, Then::Nothing),
            Err(_) => Planned::Done,
        }
    }

    /// Begins `built`, telling `then` once durable, or answers `reply` with the error.
    fn begin_or_answer<T>(
        &mut self,
        built: Result<Pending, CoordinatorError>,
        reply: Reply<T>,
        then: impl FnOnce(Reply<T>) -> Then,
    ) -> Planned {
        match built {
            Ok(p) => self.begin(p, then(reply)),
            Err(e) => answer(reply, Err(e)),
        }
    }

    /// The next job for `worker` (the scheduler's pick), leased to it.
    fn plan_assign(
        &mut self,
        worker: String,
        reply: Reply<Option<Assignment>>,
        now_ms: u64,
    ) -> Planned {
        if !self.workers.contains_key(&worker) {
            return answer(reply, Err(CoordinatorError::UnknownWorker(worker)));
        }
        let Some(job) = self.pick(&worker) else {
            return answer(reply, Ok(None));
        };
        let e = &self.jobs[job as usize];
        let input_artifact = e
            .parent
            .and_then(|p| self.jobs[p as usize].record.artifact.clone())
            .unwrap_or_default();
        let mut assignment = Assignment {
            job_key: e.record.key.clone(),
            attempt: 0,
            fencing_token: 0,
            spec_json: job_spec_to_json(&e.record.spec),
            input_artifact,
            sweep: self.sweep_name_of(job).to_string(),
            kind: e.record.spec.kind.as_str(),
            ready_since_ms: e.ready_since_ms,
            assigned_at_ms: now_ms,
        };
        let w = worker.clone();
        match self.build(job, Event::Assign, now_ms, String::new(), |d| {
            d.worker_id = Some(w);
        }) {
            Ok(p) => {
                assignment.attempt = p.applied.delta.status.attempt;
                self.begin(p, Then::Assign(reply, assignment))
            }
            Err(e) => answer(reply, Err(e)),
        }
    }

    /// A fenced completion with checked metrics; a replay of a recorded success is answered
    /// without a write.
    fn plan_complete(
        &mut self,
        report: Report,
        metrics: Option<serde_json::Value>,
        artifact: String,
        reply: Reply<JobState>,
        now_ms: u64,
    ) -> Planned {
        let job = match self.check_report(&report, true) {
            Ok(Some(job)) => job,
            Ok(None) => return answer(reply, Ok(JobState::Succeeded)),
            Err(e) => return answer(reply, Err(e)),
        };
        if let Err(why) =
            stilts_common::metrics::check(&self.jobs[job as usize].record.spec, metrics.as_ref())
        {
            let key = &self.jobs[job as usize].record.key;
            let msg = format!("job {key}: metrics {why}; nothing was recorded");
            return answer(reply, Err(CoordinatorError::InvalidArgument(msg)));
        }
        if self.jobs[job as usize].in_flight {
            return Planned::Defer(Intent::Complete {
                report,
                metrics,
                artifact,
                reply,
            });
        }
        let built = self.build(job, Event::Complete, now_ms, String::new(), |d| {
            d.metrics = metrics;
            d.artifact = (!artifact.is_empty()).then_some(artifact);
            d.last_failure = None;
        });
        self.begin_or_answer(built, reply, Then::State)
    }

    /// A fenced failure report: retried with backoff or failed, by its class and budget.
    fn plan_fail(
        &mut self,
        report: Report,
        failure: Failure,
        reply: Reply<JobState>,
        now_ms: u64,
        cfg: &CoordinatorConfig,
    ) -> Planned {
        let job = match self.check_report(&report, false) {
            Ok(Some(job)) => job,
            Ok(None) => unreachable!("replays are only accepted for completions"),
            Err(e) => return answer(reply, Err(e)),
        };
        if self.jobs[job as usize].in_flight {
            return Planned::Defer(Intent::Fail {
                report,
                failure,
                reply,
            });
        }
        let built = self.build_failure(job, failure, now_ms, cfg);
        self.begin_or_answer(built, reply, Then::State)
    }

    /// Cancels a job that has not ended (`false`: it had).
    fn plan_cancel(&mut self, job: JobIdx, reply: Reply<bool>, now_ms: u64) -> Planned {
        if self.jobs[job as usize].record.status.state.is_terminal() {
            return answer(reply, Ok(false));
        }
        let built = self.build(job, Event::Cancel, now_ms, "sweep cancelled".into(), |d| {
            d.worker_id = None;
        });
        self.begin_or_answer(built, reply, Then::Bool)
    }

    /// Puts a failed or cancelled job back (`false`: it was neither).
    fn plan_retry(&mut self, job: JobIdx, reply: Reply<bool>, now_ms: u64) -> Planned {
        let state = self.jobs[job as usize].record.status.state;
        if !matches!(state, JobState::Failed | JobState::Cancelled) {
            return answer(reply, Ok(false));
        }
        let parents_done = self.parent_succeeded(job);
        let built = self.build(
            job,
            Event::Retry { parents_done },
            now_ms,
            "retry".into(),
            |d| {
                d.worker_id = None;
                d.not_before_ms = 0;
            },
        );
        self.begin_or_answer(built, reply, Then::Bool)
    }

    /// Readies a blocked job whose parent succeeded.
    fn plan_unblock(&mut self, job: JobIdx, now_ms: u64) -> Planned {
        let e = &self.jobs[job as usize];
        if e.record.status.state != JobState::Blocked || !self.parent_succeeded(job) {
            return Planned::Done;
        }
        let built = self.build(job, Event::ParentsSucceeded, now_ms, String::new(), |_| {});
        self.begin_or_drop(built)
    }

    /// Is `job` leased to `worker` under `attempt`?
    fn holds(&self, job: JobIdx, worker: &str, attempt: u32) -> bool {
        let r = &self.jobs[job as usize].record;
        r.status.state == JobState::Leased
            && r.status.attempt == attempt
            && r.worker_id.as_deref() == Some(worker)
    }

    /// The job a report is about when its fencing token is current. `Ok(None)`: a repeated
    /// completion of the same attempt that already succeeded (answered as success, no write).
    fn check_report(
        &self,
        r: &Report,
        accept_replay: bool,
    ) -> Result<Option<JobIdx>, CoordinatorError> {
        let job = self
            .job(&r.key)
            .ok_or_else(|| CoordinatorError::UnknownJob(r.key.clone()))?;
        let rec = &self.jobs[job as usize].record;
        let same_assignment =
            rec.status.attempt == r.attempt && rec.worker_id.as_deref() == Some(&r.worker);
        if same_assignment && rec.status.state == JobState::Leased && rec.version == r.token {
            return Ok(Some(job));
        }
        if accept_replay && same_assignment && rec.status.state == JobState::Succeeded {
            return Ok(None);
        }
        Err(CoordinatorError::StaleToken {
            key: r.key.clone(),
            worker: r.worker.clone(),
            attempt: r.attempt,
            token: r.token,
            state: rec.status.state,
            version: rec.version,
            current_attempt: rec.status.attempt,
        })
    }

    fn build_failure(
        &self,
        job: JobIdx,
        failure: Failure,
        now_ms: u64,
        cfg: &CoordinatorConfig,
    ) -> Result<Pending, CoordinatorError> {
        let event = Event::Fail {
            retryable: failure.retryable,
            counts_against_budget: failure.counts_against_budget,
        };
        self.build_failure_event(job, event, failure, now_ms, cfg)
    }

    /// A failed attempt: back to ready after a jittered backoff, or failed past the budget. A
    /// lost worker's attempt (`LeaseExpired`) is ready again at once: the lease TTL already
    /// spaced the attempts, and the job did not fail, its machine went away (preemption, node
    /// loss), so another GPU should pick it up now.
    fn build_failure_event(
        &self,
        job: JobIdx,
        event: Event,
        failure: Failure,
        now_ms: u64,
        cfg: &CoordinatorConfig,
    ) -> Result<Pending, CoordinatorError> {
        let message = failure.to_string();
        let lost = event == Event::LeaseExpired;
        self.build(job, event, now_ms, message, |d| {
            let delay = match d.status.budget_spent {
                _ if lost => 0,
                0 => 0,
                spent => cfg
                    .retry_backoff()
                    .delay_after(spent - 1, rand::random::<f64>())
                    .as_millis() as u64,
            };
            d.not_before_ms = now_ms + delay;
            d.worker_id = None;
            d.last_failure = Some(failure);
        })
    }

    /// Applies `event` through the state machine and builds the write.
    fn build(
        &self,
        job: JobIdx,
        event: Event,
        now_ms: u64,
        message: String,
        edit: impl FnOnce(&mut Delta),
    ) -> Result<Pending, CoordinatorError> {
        let rec = &self.jobs[job as usize].record;
        let status = transition(rec.status, event, rec.max_attempts)?;
        let mut delta = Delta::of(rec);
        delta.status = status;
        edit(&mut delta);
        // Compute accounting, in the same write as the transition (see stilts_common::usage).
        let (was, is) = (rec.status.state, status.state);
        if is == JobState::Leased
            && (was != JobState::Leased || status.attempt != rec.status.attempt)
        {
            delta.usage.start(now_ms);
        } else if was == JobState::Leased && is != JobState::Leased {
            let holder = rec.worker_id.as_deref().and_then(|w| self.workers.get(w));
            let device = holder.map_or("", |w| w.device.as_str());
            delta.usage.end(now_ms, is == JobState::Succeeded, device);
        }
        let mut record = rec.clone();
        delta.apply_to(&mut record);
        let worker = delta
            .worker_id
            .clone()
            .or_else(|| rec.worker_id.clone())
            .unwrap_or_default();
        let event = EventRecord {
            seq: 0,
            job_key: rec.key.clone(),
            from: rec.status.state.as_str().to_string(),
            to: status.state.as_str().to_string(),
            attempt: status.attempt,
            worker_id: worker.clone(),
            message: message.clone(),
            at_ms: now_ms,
        };
        Ok(Pending {
            update: JobUpdate {
                expected_version: rec.version,
                record,
                event: Some(event),
            },
            applied: Applied {
                job,
                from: rec.status.state,
                delta,
                worker,
                message,
                then: Then::Nothing,
            },
        })
    }

    /// Marks the job in flight (out of the scheduling indexes) until its write returns.
    fn begin(&mut self, mut p: Pending, then: Then) -> Planned {
        self.unindex(p.applied.job);
        self.jobs[p.applied.job as usize].in_flight = true;
        p.applied.then = then;
        Planned::Write(Box::new(p))
    }
}
