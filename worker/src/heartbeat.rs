//! The heartbeat loop: keeps the worker's lease, carries every running job's progress, and obeys
//! the coordinator's answers (cancel these jobs; register again).

use std::sync::Arc;

use stilts_proto::v1 as pb;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::{debug, info, warn};

use crate::job_table::CancelCause;
use crate::shared::Agent;

/// Heartbeats until `stop` fires. A heartbeat that fails is not retried early: the next one is
/// due within a third of the lease anyway, and the link has moved to the next address.
pub(crate) async fn heartbeat_loop(agent: Arc<Agent>, stop: CancellationToken) {
    let mut period = None;
    loop {
        if let Some(period) = period {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
            }
        }
        // The session is read after the wait, right before the call: a worker that registered
        // again meanwhile (lost lease) must not heartbeat its new jobs under the old id.
        let session = match agent.link.session(&stop).await {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(e) => return agent.fail(e),
        };
        let lease_period = agent.cfg.heartbeat_period.unwrap_or(session.lease_ttl / 3);
        if period.replace(lease_period).is_none() {
            continue;
        }
        let running = agent.jobs.snapshot(&agent.reports);
        let jobs = running.len();
        let req = pb::HeartbeatRequest {
            worker_id: session.worker_id.clone(),
            running,
        };
        let timeout = agent.link.rpc_timeout();
        match agent
            .link
            .call(timeout, |mut c| async move { c.heartbeat(req).await })
            .await
        {
            Ok(reply) => {
                debug!(worker_id = %session.worker_id, jobs, "heartbeat");
                agent.jobs.curves_delivered();
                if !reply.known {
                    warn!(worker_id = %session.worker_id, jobs, "coordinator no longer knows this worker; registering again (running jobs keep running)");
                    agent.link.forget(&session.worker_id).await;
                }
                for key in reply.cancel_job_keys {
                    if agent.jobs.cancel(&key, CancelCause::Coordinator) {
                        info!(job = %key, "coordinator ordered the job cancelled");
                    }
                }
            }
            Err(status) if status.code() == Code::NotFound => {
                warn!(worker_id = %session.worker_id, "coordinator does not know this worker; registering again");
                agent.link.forget(&session.worker_id).await;
            }
            Err(status) => {
                warn!(url = %agent.link.url(), code = ?status.code(), error = %status.message(), jobs, "heartbeat failed");
            }
        }
    }
}
