//! Cluster mode: several coordinator replicas on one etcd store, one leader at a time.
//!
//! Each replica ([`run_replica`]) loops over terms:
//! 1. grant an election lease (`election_ttl`) and keep it alive with one stream;
//! 2. serve as a **follower**: every worker and client call is answered `UNAVAILABLE` with the
//!    leader's advertised URL in the `stilts-leader` metadata entry ([`LEADER_METADATA`]), which
//!    workers and `stilts sweep` follow;
//! 3. campaign under `<prefix>election` with the advertised URL as value (etcd's election API);
//! 4. once elected: stop the follower server, load the whole state from the store (crash-only,
//!    exactly as a restarted single coordinator: jobs still leased keep their worker for one
//!    lease TTL, so running jobs are adopted), and serve through a **fenced** store handle
//!    ([`EtcdStore::fenced`]): every write transaction also compares the election key's create
//!    revision, so a deposed leader cannot commit anything (`store/etcd/fence.rs`);
//! 5. the term ends when the election lease is lost or a write finds the fence gone: the replica
//!    stops serving and goes back to 1. Only `shutdown` ends the loop (the lease is revoked, so
//!    another replica takes over at once instead of after the TTL).
//!
//! The listener is shared by every term, so the advertised address never changes. Health
//! (`health.rs`) and reflection are served in every phase, also while etcd is unreachable: the
//! API is NOT_SERVING except while leading.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use stilts_common::backoff::{Backoff, BackoffConfig, Jitter};
use stilts_common::clock::Clock;
use stilts_common::store::StoreError;
use stilts_proto::v1::sweep_service_server::SweepServiceServer;
use stilts_proto::v1::worker_service_server::WorkerServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::NamedService;
use tracing::{info, warn};

use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::health::{self, Health};
use crate::server::{self, Incoming};
use crate::setup::Setup;
use crate::store::etcd::{EtcdStore, Fence};
use crate::sweep_api::SweepApi;
use crate::worker_api::WorkerApi;

/// Metadata entry of a follower's `UNAVAILABLE` answer: the leader's advertised URL.
pub const LEADER_METADATA: &str = "stilts-leader";

/// How a replica takes part in the election.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The URL workers and clients reach this replica at; the election value, and the hint
    /// followers give. Required.
    pub advertise: String,
    /// TTL of the election lease: a leader that dies is replaced after at most this plus one
    /// campaign round trip. etcd rounds it up to whole seconds (minimum about 2 s). Default 5 s.
    pub election_ttl: Duration,
    /// How often followers refresh the leader hint. Default 500 ms.
    pub hint_period: Duration,
}

impl ClusterConfig {
    pub fn new(advertise: impl Into<String>) -> Self {
        Self {
            advertise: advertise.into(),
            election_ttl: Duration::from_secs(5),
            hint_period: Duration::from_millis(500),
        }
    }
}

/// Runs one replica until `shutdown`; see the module doc.
pub async fn run_replica(
    setup: impl Into<Setup>,
    cluster: ClusterConfig,
    listener: TcpListener,
    store: EtcdStore,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    let setup: Setup = setup.into();
    let cfg = &setup.config;
    let addr = listener.local_addr().ok();
    let listener = Arc::new(listener);
    let election = format!("{}election", store.config().normalized_prefix());
    let (hint_tx, hint_rx) = watch::channel(None::<String>);
    let health = Health::new().await;
    let hints = tokio::spawn(watch_leader(
        store.clone(),
        election.clone(),
        cluster.hint_period,
        hint_tx,
        health.clone(),
        shutdown.clone(),
    ));
    let follower = Follower {
        cfg,
        listener: listener.clone(),
        hint: hint_rx.clone(),
        health: health.clone(),
    };
    let result = async {
        let mut outage = StoreOutage::default();
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let lease = match store.grant_lease(cluster.election_ttl).await {
                Ok(lease) => lease,
                Err(e) => {
                    follower.during(outage.wait(&e.into(), &shutdown)).await?;
                    continue;
                }
            };
            let lease_stop = CancellationToken::new();
            let keeper = store.spawn_keep_alive(lease.id, lease.ttl / 3, lease_stop.clone());
            let term = Term {
                lease: lease.id,
                lost: CancellationToken::new(),
            };
            let watcher = {
                let lost = term.lost.clone();
                tokio::spawn(async move {
                    let ended = keeper.await;
                    warn!(ended = ?ended.as_ref().map(|r| r.as_ref().err().map(ToString::to_string)), "election lease keep-alive ended");
                    lost.cancel();
                })
            };
            let outcome = run_term(&setup, &cluster, &follower, addr, &store, &clock, &election, &term, &shutdown).await;
            lease_stop.cancel();
            watcher.abort();
            if shutdown.is_cancelled() {
                if let Err(e) = store.revoke_lease(term.lease).await {
                    warn!(error = %e, "could not revoke the election lease");
                }
                return outcome;
            }
            match outcome {
                Ok(()) => warn!("leader term ended; campaigning again"),
                Err(e) if term.lost.is_cancelled() => {
                    warn!(error = %e, "deposed; campaigning again");
                }
                // etcd unreachable or failing: never serve without it, never exit over it.
                Err(e @ CoordinatorError::Store(StoreError::Backend(_))) => {
                    let _ = store.revoke_lease(term.lease).await;
                    follower.during(outage.wait(&e, &shutdown)).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            outage = StoreOutage::default();
            let _ = store.revoke_lease(term.lease).await;
        }
    }
    .await;
    hints.abort();
    result
}

/// Backoff while etcd fails: the shared [`Backoff`], 1 s doubling to 8 s, equal jitter (so
/// replicas that lost etcd together do not come back in lockstep, and no wait is longer than
/// the plain doubling's), with a warning per attempt.
struct StoreOutage(Backoff);

impl Default for StoreOutage {
    fn default() -> Self {
        Self(
            Backoff::new(BackoffConfig {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(8),
            })
            .with_jitter(Jitter::Equal),
        )
    }
}

impl StoreOutage {
    async fn wait(&mut self, error: &CoordinatorError, shutdown: &CancellationToken) {
        let delay = self.0.next_delay();
        warn!(%error, attempt = self.0.failures(), retry_in_ms = delay.as_millis() as u64, "etcd unavailable; not serving, retrying");
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One election lease: `lost` fires when it expires or the fence finds it gone.
struct Term {
    lease: i64,
    lost: CancellationToken,
}

/// What a replica serves while it does not lead: redirects, health and reflection.
struct Follower<'a> {
    cfg: &'a CoordinatorConfig,
    listener: Arc<TcpListener>,
    hint: watch::Receiver<Option<String>>,
    health: Health,
}

impl Follower<'_> {
    /// Serves as a follower until `stop`.
    fn spawn(
        &self,
        stop: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>, CoordinatorError>
    {
        let tls_config = self
            .cfg
            .tls
            .as_ref()
            .map(crate::tls::server_config)
            .transpose()?;
        let router = tonic::transport::Server::builder()
            .add_service(NotLeader::<WorkerServiceServer<WorkerApi<EtcdStore>>>::new(
                self.hint.clone(),
            ))
            .add_service(NotLeader::<SweepServiceServer<SweepApi<EtcdStore>>>::new(
                self.hint.clone(),
            ));
        let router = health::with_standard_services(router, &self.health)?;
        Ok(tokio::spawn(crate::tls::serve(
            router,
            accept(self.listener.clone()),
            tls_config,
            stop,
        )))
    }

    /// Runs `wait` (an etcd outage's backoff) while serving as a follower.
    async fn during(
        &self,
        wait: impl std::future::Future<Output = ()>,
    ) -> Result<(), CoordinatorError> {
        let stop = CancellationToken::new();
        let server = self.spawn(stop.clone())?;
        wait.await;
        stop.cancel();
        if let Err(e) = server.await {
            warn!(error = %e, "follower server task failed");
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_term(
    setup: &Setup,
    cluster: &ClusterConfig,
    follower_server: &Follower<'_>,
    addr: Option<std::net::SocketAddr>,
    store: &EtcdStore,
    clock: &Arc<dyn Clock>,
    election: &str,
    term: &Term,
    shutdown: &CancellationToken,
) -> Result<(), CoordinatorError> {
    // Follower until elected.
    let follower_stop = CancellationToken::new();
    let follower = follower_server.spawn(follower_stop.clone())?;
    let won = tokio::select! {
        won = campaign(store, election, &cluster.advertise, term.lease, shutdown) => won,
        () = term.lost.cancelled() => Ok(None),
    };
    follower_stop.cancel();
    if let Err(e) = follower.await {
        warn!(error = %e, "follower server task failed");
    }
    let Some(fence) = won? else {
        return Ok(());
    };
    info!(advertise = %cluster.advertise, revision = fence.revision, "elected leader; loading state");
    let leader_stop = shutdown.child_token();
    let fenced = store.fenced(fence.clone());
    let stop = leader_stop.clone();
    let lost = term.lost.clone();
    let guard = tokio::spawn(async move {
        tokio::select! {
            () = fence.deposed.cancelled() => lost.cancel(),
            () = lost.cancelled() => {}
            () = stop.cancelled() => return,
        }
        warn!("leadership lost; stopping the leader services");
        stop.cancel();
    });
    let served = server::serve(
        setup.clone(),
        addr,
        accept(follower_server.listener.clone()),
        fenced,
        clock.clone(),
        &follower_server.health,
        leader_stop.clone(),
    )
    .await;
    leader_stop.cancel();
    let _ = guard.await;
    if term.lost.is_cancelled() && !shutdown.is_cancelled() {
        return Err(served.err().unwrap_or(CoordinatorError::ShuttingDown));
    }
    served
}

/// Campaigns until elected (`Some(fence)`) or `shutdown` (`None`). etcd answers a campaign
/// when this lease's key becomes the oldest; the client's request timeout interrupts long waits,
/// after which the campaign is simply repeated.
async fn campaign(
    store: &EtcdStore,
    election: &str,
    advertise: &str,
    lease: i64,
    shutdown: &CancellationToken,
) -> Result<Option<Fence>, CoordinatorError> {
    let mut client = store.client().election_client();
    loop {
        let attempt = client.campaign(election, advertise, lease);
        let resp = tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            resp = attempt => resp,
        };
        match resp {
            Ok(resp) => {
                let Some(key) = resp.leader() else {
                    return Err(CoordinatorError::Internal(
                        "etcd campaign answered without a leader key".into(),
                    ));
                };
                return Ok(Some(Fence::new(key.key().to_vec(), key.rev())));
            }
            Err(etcd_client::Error::GRpcStatus(s))
                if matches!(
                    s.code(),
                    tonic::Code::DeadlineExceeded
                        | tonic::Code::Unavailable
                        | tonic::Code::Cancelled
                ) =>
            {
                tracing::debug!(code = ?s.code(), "campaign interrupted; campaigning again");
            }
            Err(e) if is_lease_gone(&e) => {
                return Err(StoreError::Backend(Box::new(e)).into());
            }
            Err(e) => {
                warn!(error = %e, "campaign failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

fn is_lease_gone(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("lease not found"))
}

/// Keeps `tx` at the current leader's advertised URL (`None` while there is none), and `health`
/// told whether etcd answers (a leader whose etcd is gone reports NOT_SERVING at once, before
/// its election lease runs out).
async fn watch_leader(
    store: EtcdStore,
    election: String,
    period: Duration,
    tx: watch::Sender<Option<String>>,
    health: Health,
    stop: CancellationToken,
) {
    let mut client = store.client().election_client();
    let limit = (period * 4).max(Duration::from_secs(1));
    loop {
        let answer = tokio::time::timeout(limit, client.leader(election.as_str())).await;
        // "No leader" is an answer; a transport error, UNAVAILABLE or no reply is not.
        let reachable = match &answer {
            Ok(Ok(_)) => true,
            Ok(Err(etcd_client::Error::GRpcStatus(s))) => !matches!(
                s.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ),
            Ok(Err(_)) | Err(_) => false,
        };
        health.set_store_reachable(reachable).await;
        let leader = match answer {
            Ok(Ok(resp)) => resp
                .kv()
                .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()),
            _ => None,
        };
        tx.send_if_modified(|cur| {
            let changed = *cur != leader;
            *cur = leader.clone();
            changed
        });
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
    }
}

/// Connections from a listener that outlives each server using it.
fn accept(listener: Arc<TcpListener>) -> Incoming {
    futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(stream, _)| stream);
        Some((conn, l))
    })
    .boxed()
}

/// Answers every call of service `T` with `UNAVAILABLE` and the leader hint.
struct NotLeader<T> {
    hint: watch::Receiver<Option<String>>,
    _service: std::marker::PhantomData<fn() -> T>,
}

impl<T> NotLeader<T> {
    fn new(hint: watch::Receiver<Option<String>>) -> Self {
        Self {
            hint,
            _service: std::marker::PhantomData,
        }
    }
}

impl<T> Clone for NotLeader<T> {
    fn clone(&self) -> Self {
        Self::new(self.hint.clone())
    }
}

impl<T: NamedService> NamedService for NotLeader<T> {
    const NAME: &'static str = T::NAME;
}

impl<T, B> Service<http::Request<B>> for NotLeader<T> {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<B>) -> Self::Future {
        let status = not_leader(self.hint.borrow().as_deref());
        Box::pin(async move { Ok(status.into_http()) })
    }
}

/// The status a follower answers with.
fn not_leader(leader: Option<&str>) -> tonic::Status {
    let mut metadata = MetadataMap::new();
    let message = match leader.and_then(|l| MetadataValue::try_from(l).ok().map(|v| (l, v))) {
        Some((url, value)) => {
            metadata.insert(LEADER_METADATA, value);
            format!("this coordinator replica is not the leader; the leader is {url}")
        }
        None => "this coordinator replica is not the leader; no leader is elected yet".into(),
    };
    tonic::Status::with_metadata(tonic::Code::Unavailable, message, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn followers_name_the_leader_in_metadata() {
        let s = not_leader(Some("http://10.0.0.2:50051"));
        assert_eq!(s.code(), tonic::Code::Unavailable);
        assert_eq!(
            s.metadata().get(LEADER_METADATA).unwrap(),
            "http://10.0.0.2:50051"
        );
        let none = not_leader(None);
        assert!(none.metadata().get(LEADER_METADATA).is_none());
        assert!(none.message().contains("no leader"));
    }
}
