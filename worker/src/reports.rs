//! Results waiting to reach the coordinator, and the loop that delivers them.
//!
//! Reports are delivered in order, each retried with backoff for as long as the coordinator is
//! unreachable (jobs keep their results through an outage). A report the coordinator rejects for
//! good is dropped with a log line and never retried: FAILED_PRECONDITION (a stale fencing token:
//! the job was re-assigned), INVALID_ARGUMENT and NOT_FOUND (the coordinator knows no such job).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use stilts_common::failure::Failure;
use stilts_proto::v1 as pb;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::{Instrument, error, info, info_span, warn};

use crate::agent::Agent;
use crate::backoff::Backoff;
use crate::trace_ctx;

/// How an attempt ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Complete {
        metrics_json: String,
        artifact: String,
        duration_s: f64,
    },
    Fail(Failure),
}

/// One attempt's result, under the attempt and fencing token it was assigned with.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub key: String,
    pub attempt: u32,
    pub token: u64,
    pub outcome: Outcome,
    /// The attempt's curve when heartbeats have not delivered all of it (else empty).
    pub curve: Vec<pb::CurvePoint>,
    /// The attempt's trace context; delivery runs in a `report` span of that trace.
    pub trace: opentelemetry::Context,
}

/// FIFO of undelivered reports.
pub(crate) struct ReportQueue {
    queue: Mutex<VecDeque<Report>>,
    len: watch::Sender<usize>,
}

impl ReportQueue {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            len: watch::Sender::new(0),
        }
    }

    pub(crate) fn push(&self, report: Report) {
        let mut q = self.queue.lock().expect("report lock");
        q.push_back(report);
        self.len.send_replace(q.len());
    }

    /// (key, attempt, fencing token) of every queued report, oldest first.
    pub(crate) fn undelivered(&self) -> Vec<(String, u32, u64)> {
        let q = self.queue.lock().expect("report lock");
        q.iter()
            .map(|r| (r.key.clone(), r.attempt, r.token))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        *self.len.borrow()
    }

    /// The oldest report, once there is one (it stays queued until [`ReportQueue::pop`]).
    async fn next(&self) -> Report {
        let mut rx = self.len.subscribe();
        loop {
            if let Some(r) = self.queue.lock().expect("report lock").front() {
                return r.clone();
            }
            let _ = rx.wait_for(|n| *n > 0).await;
        }
    }

    fn pop(&self) {
        let mut q = self.queue.lock().expect("report lock");
        q.pop_front();
        self.len.send_replace(q.len());
    }

    /// Waits until every report is delivered or dropped.
    pub(crate) async fn wait_empty(&self) {
        let mut rx = self.len.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Rejections no retry will change.
fn is_final(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::FailedPrecondition | Code::InvalidArgument | Code::NotFound
    )
}

/// Delivers queued reports until `stop` fires.
pub(crate) async fn deliver_reports(agent: Arc<Agent>, stop: CancellationToken) {
    let mut backoff = Backoff::new(agent.cfg.backoff);
    loop {
        let report = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = agent.reports.next() => r,
        };
        let session = match agent.link.session(&stop).await {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(e) => return agent.fail(e),
        };
        let worker_id = session.worker_id.clone();
        let timeout = agent.link.rpc_timeout();
        let (key, attempt, token) = (report.key.clone(), report.attempt, report.token);
        let span = trace_ctx::adopt(
            info_span!(parent: None, "report", job.key = %key, job.attempt = attempt),
            &report.trace,
        );
        let result = match report.outcome {
            Outcome::Complete {
                metrics_json,
                artifact,
                duration_s,
            } => {
                let req = pb::CompleteJobRequest {
                    worker_id,
                    job_key: key.clone(),
                    attempt,
                    fencing_token: token,
                    metrics_json,
                    artifact,
                    duration_s,
                    curve: report.curve.clone(),
                };
                agent
                    .link
                    .call(timeout, |mut c| async move { c.complete_job(req).await })
                    .instrument(span)
                    .await
            }
            Outcome::Fail(failure) => {
                let req = pb::FailJobRequest {
                    worker_id,
                    job_key: key.clone(),
                    attempt,
                    fencing_token: token,
                    failure: Some(failure.into()),
                    curve: report.curve.clone(),
                };
                agent
                    .link
                    .call(timeout, |mut c| async move { c.fail_job(req).await })
                    .instrument(span)
                    .await
            }
        };
        match result {
            Ok(reply) => {
                backoff.reset();
                agent.reports.pop();
                info!(job = %key, attempt, state = %reply.state, "report delivered");
            }
            Err(status) if status.code() == Code::FailedPrecondition => {
                agent.reports.pop();
                warn!(job = %key, attempt, token, error = %status.message(), "report fenced off (stale token); dropped");
            }
            Err(status) if is_final(&status) => {
                agent.reports.pop();
                error!(job = %key, attempt, code = ?status.code(), error = %status.message(), "report rejected; dropped");
            }
            Err(status) => {
                let delay = backoff.next_delay();
                warn!(job = %key, attempt, url = %agent.link.url(), code = ?status.code(), error = %status.message(), retry_in_ms = delay.as_millis() as u64, "report not delivered; will retry");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
