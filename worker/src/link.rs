//! The worker's link to the coordinator: one gRPC channel at a time, to one of the configured
//! addresses, moving to the next address on a transport error; and the registration (session)
//! every call is made under, renewed when the coordinator forgets the worker.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use stilts_proto::v1::worker_service_client::WorkerServiceClient;
use stilts_proto::v1::{RegisterWorkerRequest, RegisterWorkerResponse};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Response, Status};
use tracing::{info, warn};

use crate::backoff::{Backoff, BackoffConfig};
use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::tls::{self, BearerAuth};

pub(crate) type Client = WorkerServiceClient<InterceptedService<Channel, BearerAuth>>;

/// Lease TTL assumed when a coordinator announces none.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// One registration with the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    pub worker_id: String,
    pub lease_ttl: Duration,
}

/// Codes that say "this address is not answering", after which the next address is tried.
pub(crate) fn is_transport(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled
    )
}

/// The configured address a coordinator replica names as leader (`stilts-leader` metadata of its
/// `UNAVAILABLE` answer), if it is one of `urls`.
fn leader_hint(status: &Status, urls: &[String]) -> Option<usize> {
    let leader = status.metadata().get("stilts-leader")?.to_str().ok()?;
    let leader = leader.trim_end_matches('/');
    urls.iter().position(|u| u.trim_end_matches('/') == leader)
}

/// Registration refusals that no retry will fix.
fn is_refusal(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::InvalidArgument | Code::Unauthenticated | Code::PermissionDenied
    )
}

struct Current {
    index: usize,
    client: Client,
}

pub(crate) struct Link {
    urls: Vec<String>,
    endpoints: Vec<Endpoint>,
    auth: BearerAuth,
    current: Mutex<Current>,
    session: tokio::sync::Mutex<Option<Session>>,
    register: RegisterWorkerRequest,
    rpc_timeout: Duration,
    backoff: BackoffConfig,
}

impl Link {
    /// Checks every address; connects lazily (nothing is dialled until the first call).
    pub(crate) fn new(cfg: &WorkerConfig, backend: String) -> Result<Self, WorkerError> {
        if cfg.coordinators.is_empty() {
            return Err(WorkerError::NoCoordinator);
        }
        let endpoints = cfg
            .coordinators
            .iter()
            .map(|url| {
                tls::endpoint(url, cfg.tls.as_ref()).map(|e| {
                    e.connect_timeout(cfg.rpc_timeout)
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(10))
                        .keep_alive_timeout(cfg.rpc_timeout)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let auth = BearerAuth::new(cfg.token.as_ref())?;
        let client =
            WorkerServiceClient::with_interceptor(endpoints[0].connect_lazy(), auth.clone());
        Ok(Self {
            urls: cfg.coordinators.clone(),
            endpoints,
            auth,
            current: Mutex::new(Current { index: 0, client }),
            session: tokio::sync::Mutex::new(None),
            register: RegisterWorkerRequest {
                name: cfg.name.clone(),
                slots: cfg.slots,
                backend,
                device_memory: cfg.device_memory,
                labels: cfg.labels.clone().into_iter().collect(),
                cached_artifacts: Vec::new(),
            },
            rpc_timeout: cfg.rpc_timeout,
            backoff: cfg.backoff,
        })
    }

    pub(crate) fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout
    }

    /// The address calls go to now.
    pub(crate) fn url(&self) -> String {
        let index = self.current.lock().expect("link lock").index;
        self.urls[index].clone()
    }

    /// Makes one call with a client-side `timeout`. A transport error moves the link to the next
    /// address (the caller backs off and retries).
    pub(crate) async fn call<T, F, Fut>(&self, timeout: Duration, call: F) -> Result<T, Status>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let (index, client) = {
            let current = self.current.lock().expect("link lock");
            (current.index, current.client.clone())
        };
        let result = match tokio::time::timeout(timeout, call(client)).await {
            Ok(result) => result.map(Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within {timeout:?}"
            ))),
        };
        if let Err(status) = &result
            && is_transport(status)
        {
            self.fail_over(index, leader_hint(status, &self.urls));
        }
        result
    }

    /// Moves to address `to` (a follower's leader hint) or else the one after `index`, unless
    /// another call already moved on.
    fn fail_over(&self, index: usize, to: Option<usize>) {
        let mut current = self.current.lock().expect("link lock");
        if current.index != index || self.endpoints.len() == 1 || to == Some(index) {
            return;
        }
        current.index = to.unwrap_or((index + 1) % self.endpoints.len());
        current.client = WorkerServiceClient::with_interceptor(
            self.endpoints[current.index].connect_lazy(),
            self.auth.clone(),
        );
        info!(failed = %self.urls[index], url = %self.urls[current.index], "trying the next coordinator address");
    }

    /// The current session, registering first (with backoff, as long as it takes) when there is
    /// none. `Ok(None)` when `stop` fires first; an error only for a refusal retrying cannot fix.
    pub(crate) async fn session(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<Session>, WorkerError> {
        let mut guard = tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(None),
            guard = self.session.lock() => guard,
        };
        if let Some(session) = guard.as_ref() {
            return Ok(Some(session.clone()));
        }
        let mut backoff = Backoff::new(self.backoff);
        loop {
            let request = self.register.clone();
            let result: Result<RegisterWorkerResponse, Status> = self
                .call(self.rpc_timeout, |mut c| async move {
                    c.register_worker(request).await
                })
                .await;
            match result {
                Ok(reply) => {
                    let lease_ttl = match reply.lease_ttl_ms {
                        0 => DEFAULT_LEASE_TTL,
                        ms => Duration::from_millis(ms),
                    };
                    let session = Session {
                        worker_id: reply.worker_id,
                        lease_ttl,
                    };
                    info!(worker_id = %session.worker_id, url = %self.url(), lease_ttl_ms = lease_ttl.as_millis() as u64, "registered with the coordinator");
                    *guard = Some(session.clone());
                    return Ok(Some(session));
                }
                Err(status) if is_refusal(&status) => {
                    return Err(WorkerError::RegistrationRefused {
                        url: self.url(),
                        status: Box::new(status),
                    });
                }
                Err(status) => {
                    if let Some(reason) = tls::certificate_refusal(&status) {
                        return Err(WorkerError::TlsRefused {
                            url: self.url(),
                            reason,
                            detail: tls::describe(&status),
                        });
                    }
                    let delay = backoff.next_delay();
                    warn!(url = %self.url(), code = ?status.code(), error = %tls::describe(&status), retry_in_ms = delay.as_millis() as u64, "registration failed");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Drops the session `worker_id` (the coordinator no longer knows it); the next
    /// [`Link::session`] registers again.
    pub(crate) async fn forget(&self, worker_id: &str) {
        let mut guard = self.session.lock().await;
        if guard.as_ref().is_some_and(|s| s.worker_id == worker_id) {
            *guard = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataMap;

    use super::*;

    #[test]
    fn follows_a_leader_hint_among_the_configured_addresses() {
        let urls = vec!["http://a:1".to_string(), "http://b:2/".to_string()];
        let mut md = MetadataMap::new();
        md.insert("stilts-leader", "http://b:2".parse().unwrap());
        let s = Status::with_metadata(Code::Unavailable, "not the leader", md);
        assert_eq!(leader_hint(&s, &urls), Some(1));
        assert_eq!(leader_hint(&Status::unavailable("down"), &urls), None);
        let mut other = MetadataMap::new();
        other.insert("stilts-leader", "http://c:3".parse().unwrap());
        let s = Status::with_metadata(Code::Unavailable, "not the leader", other);
        assert_eq!(leader_hint(&s, &urls), None);
    }
}
