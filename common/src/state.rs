//! The job state machine: one pure function over (status, event), no I/O.
//!
//! ```text
//!   blocked ──ParentsSucceeded──▶ ready ──Assign──▶ leased ──Complete──▶ succeeded
//!      ▲                           ▲  ▲                │
//!      │                           │  └─Fail(retry) / LeaseExpired (budget left)
//!      │                           │                   │
//!      └──────Retry (parents not done)      Fail(no retry) / budget spent ──▶ failed
//!                                  └──────Retry (parents done)────────────── failed | cancelled
//!   blocked | ready | leased ──Cancel──▶ cancelled
//! ```
//! A failed job's dependants stay `blocked` (not failed) until a `Retry` revives it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its parent to succeed.
    Blocked,
    /// Runnable; waiting for a worker (and for its backoff to pass).
    Ready,
    /// Assigned to a worker under a lease.
    Leased,
    Succeeded,
    /// Past its attempt budget, or a permanent failure. Dependants stay blocked.
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        Self::Blocked,
        Self::Ready,
        Self::Leased,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Ready => "ready",
            Self::Leased => "leased",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// No further transition happens without a user's `retry`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of a job record the state machine owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub state: JobState,
    /// Number of the current (or last) assignment; 0 = never assigned.
    pub attempt: u32,
    /// Attempts that counted against the budget since the last retry.
    pub budget_spent: u32,
}

impl JobStatus {
    /// A new job: ready when it has no unfinished parent, blocked otherwise.
    pub fn new(parents_done: bool) -> Self {
        let state = if parents_done {
            JobState::Ready
        } else {
            JobState::Blocked
        };
        Self {
            state,
            attempt: 0,
            budget_spent: 0,
        }
    }
}

/// Something that happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Every parent has succeeded.
    ParentsSucceeded,
    /// A worker takes the job.
    Assign,
    /// The worker reports success.
    Complete,
    /// The worker reports failure.
    Fail {
        retryable: bool,
        counts_against_budget: bool,
    },
    /// The worker's lease ran out while it held the job. Counts against the budget
    /// (a job that kills its worker must not requeue forever).
    LeaseExpired,
    /// The user cancels the sweep.
    Cancel,
    /// The user revives a failed or cancelled job; `parents_done` decides ready vs blocked.
    Retry { parents_done: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("event {event:?} is not allowed in state {from}")]
pub struct TransitionError {
    pub from: JobState,
    pub event: Event,
}

/// The whole state machine. `max_attempts` is the job's attempt budget (≥ 1).
pub fn transition(
    s: JobStatus,
    event: Event,
    max_attempts: u32,
) -> Result<JobStatus, TransitionError> {
    use JobState::*;
    let spent_after = |counts: bool| s.budget_spent + u32::from(counts);
    let retry_or_fail = |retryable: bool, counts: bool| {
        let budget_spent = spent_after(counts);
        let state = if retryable && budget_spent < max_attempts.max(1) {
            Ready
        } else {
            Failed
        };
        JobStatus {
            state,
            budget_spent,
            ..s
        }
    };
    let next = match (s.state, event) {
        (Blocked, Event::ParentsSucceeded) => JobStatus { state: Ready, ..s },
        (Ready, Event::Assign) => JobStatus {
            state: Leased,
            attempt: s.attempt + 1,
            ..s
        },
        (Leased, Event::Complete) => JobStatus {
            state: Succeeded,
            ..s
        },
        (
            Leased,
            Event::Fail {
                retryable,
                counts_against_budget,
            },
        ) => retry_or_fail(retryable, counts_against_budget),
        (Leased, Event::LeaseExpired) => retry_or_fail(true, true),
        (Blocked | Ready | Leased, Event::Cancel) => JobStatus {
            state: Cancelled,
            ..s
        },
        (Failed | Cancelled, Event::Retry { parents_done }) => JobStatus {
            state: if parents_done { Ready } else { Blocked },
            budget_spent: 0,
            ..s
        },
        (from, event) => return Err(TransitionError { from, event }),
    };
    Ok(next)
}

/// Delay before the next attempt: exponential in the attempts spent, capped, with "full jitter"
/// (`jitter` is a uniform sample in [0, 1) supplied by the caller, so this stays pure). The
/// shared [`Backoff`](crate::backoff::Backoff) computes it.
pub fn backoff_ms(budget_spent: u32, base_ms: u64, cap_ms: u64, jitter: f64) -> u64 {
    if budget_spent == 0 {
        return 0;
    }
    let backoff = crate::backoff::Backoff::new(crate::backoff::BackoffConfig {
        initial: std::time::Duration::from_millis(base_ms),
        max: std::time::Duration::from_millis(cap_ms),
    });
    backoff.delay_after(budget_spent - 1, jitter).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    fn st(state: JobState, attempt: u32, budget_spent: u32) -> JobStatus {
        JobStatus {
            state,
            attempt,
            budget_spent,
        }
    }

    fn all_events() -> Vec<Event> {
        let mut v = vec![
            Event::ParentsSucceeded,
            Event::Assign,
            Event::Complete,
            Event::LeaseExpired,
        ];
        v.push(Event::Cancel);
        for retryable in [false, true] {
            for counts_against_budget in [false, true] {
                v.push(Event::Fail {
                    retryable,
                    counts_against_budget,
                });
            }
        }
        v.extend([
            Event::Retry {
                parents_done: false,
            },
            Event::Retry { parents_done: true },
        ]);
        v
    }

    /// Every (state, event) pair: exactly the documented ones are allowed, and each lands where
    /// the diagram says.
    #[test]
    fn exhaustive_transition_table() {
        for from in JobState::ALL {
            for event in all_events() {
                let got = transition(st(from, 1, 0), event, 3);
                let expected: Option<JobState> = match (from, event) {
                    (Blocked, Event::ParentsSucceeded) => Some(Ready),
                    (Ready, Event::Assign) => Some(Leased),
                    (Leased, Event::Complete) => Some(Succeeded),
                    (
                        Leased,
                        Event::Fail {
                            retryable: true, ..
                        },
                    ) => Some(Ready),
                    (
                        Leased,
                        Event::Fail {
                            retryable: false, ..
                        },
                    ) => Some(Failed),
                    (Leased, Event::LeaseExpired) => Some(Ready),
                    (Blocked | Ready | Leased, Event::Cancel) => Some(Cancelled),
                    (Failed | Cancelled, Event::Retry { parents_done: true }) => Some(Ready),
                    (
                        Failed | Cancelled,
                        Event::Retry {
                            parents_done: false,
                        },
                    ) => Some(Blocked),
                    _ => None,
                };
                match expected {
                    Some(to) => assert_eq!(got.unwrap().state, to, "{from:?} + {event:?}"),
                    None => assert_eq!(got.unwrap_err(), TransitionError { from, event }),
                }
            }
        }
    }

    #[test]
    fn assign_increments_attempt() {
        assert_eq!(
            transition(st(Ready, 2, 1), Event::Assign, 3).unwrap(),
            st(Leased, 3, 1)
        );
    }

    #[test]
    fn budget_exhaustion_fails_the_job() {
        let fail = Event::Fail {
            retryable: true,
            counts_against_budget: true,
        };
        let s = transition(st(Leased, 1, 0), fail, 2).unwrap();
        assert_eq!(s, st(Ready, 1, 1));
        let s = transition(st(Leased, 2, 1), fail, 2).unwrap();
        assert_eq!(s, st(Failed, 2, 2));
        // a lost lease spends budget too
        assert_eq!(
            transition(st(Leased, 2, 1), Event::LeaseExpired, 2)
                .unwrap()
                .state,
            Failed
        );
    }

    #[test]
    fn preemption_spends_no_budget() {
        let pre = Event::Fail {
            retryable: true,
            counts_against_budget: false,
        };
        let s = transition(st(Leased, 7, 1), pre, 2).unwrap();
        assert_eq!(s, st(Ready, 7, 1));
    }

    #[test]
    fn retry_resets_budget_and_keeps_attempt_numbers_growing() {
        let s = transition(st(Failed, 3, 3), Event::Retry { parents_done: true }, 3).unwrap();
        assert_eq!(s, st(Ready, 3, 0));
        assert_eq!(transition(s, Event::Assign, 3).unwrap().attempt, 4);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff_ms(0, 100, 10_000, 1.0), 0);
        assert_eq!(backoff_ms(1, 100, 10_000, 1.0), 100);
        assert_eq!(backoff_ms(3, 100, 10_000, 1.0), 400);
        assert_eq!(backoff_ms(30, 100, 10_000, 1.0), 10_000);
        assert_eq!(backoff_ms(3, 100, 10_000, 0.5), 200);
    }
}
