//! The loop that delivers queued results (`report_queue.rs`) to the coordinator.
//!
//! Reports are delivered in order, each retried with backoff for as long as the coordinator is
//! unreachable (jobs keep their results through an outage). A report the coordinator rejects for
//! good is dropped with a log line and never retried: FAILED_PRECONDITION (a stale fencing token:
//! the job was re-assigned), INVALID_ARGUMENT and NOT_FOUND (the coordinator knows no such job).

use std::sync::Arc;

use stilts_proto::v1 as pb;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tracing::{Instrument, error, info, info_span, warn};

use crate::backoff::Backoff;
use crate::report_queue::Outcome;
use crate::shared::Agent;
use crate::trace_ctx;

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
