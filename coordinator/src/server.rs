//! `run`: loads the store, starts the writer and the reaper, serves both gRPC services (and
//! health and reflection, `health.rs`).

use std::sync::Arc;

use futures::StreamExt;
use stilts_common::clock::Clock;
use stilts_common::store::Store;
use stilts_proto::v1::sweep_service_server::SweepServiceServer;
use stilts_proto::v1::worker_service_server::WorkerServiceServer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::auth::Guard;
use crate::cache;
use crate::error::CoordinatorError;
use crate::health::{self, Health};
use crate::http;
use crate::lease;
use crate::setup::Setup;
use crate::shared::Shared;
use crate::sweep_api::SweepApi;
use crate::tls;
use crate::worker_api::WorkerApi;
use crate::writer::Writer;

/// Requests that may wait for the writer before senders are held back.
const INTENT_QUEUE: usize = 65_536;

/// Serves the coordinator on `listener` until `shutdown` is cancelled or the store fails.
///
/// On start the whole state is loaded from `store` (crash-only: memory is a cache). Jobs still
/// leased keep their lease for one TTL so that workers that survived a restart can report.
pub async fn run<S: Store>(
    setup: impl Into<Setup>,
    listener: TcpListener,
    store: S,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    let addr = listener.local_addr().ok();
    let incoming = TcpListenerStream::new(listener).boxed();
    let health = Health::new().await;
    serve(
        setup.into(),
        addr,
        incoming,
        store,
        clock,
        &health,
        shutdown,
    )
    .await
}

/// Connections to serve: [`run`] passes its listener's; a cluster replica (`leader.rs`) passes
/// connections of a listener it keeps across leader terms.
pub(crate) type Incoming = futures::stream::BoxStream<'static, std::io::Result<TcpStream>>;

/// [`run`] over any stream of accepted connections; stops when the stream ends too. `health`
/// reports the API as served from the moment the state is loaded until this returns.
pub(crate) async fn serve<S: Store>(
    setup: Setup,
    addr: Option<std::net::SocketAddr>,
    incoming: Incoming,
    store: S,
    clock: Arc<dyn Clock>,
    health: &Health,
    shutdown: CancellationToken,
) -> Result<(), CoordinatorError> {
    let Setup {
        config: cfg,
        http_listener,
        catalog,
    } = setup;
    let tls_config = cfg.tls.as_ref().map(tls::server_config).transpose()?;
    let store = Arc::new(store);
    let (core, repairs) = cache::load(&*store, clock.now_ms(), cfg.lease_ttl_ms()).await?;
    info!(
        addr = ?addr,
        tls = tls_config.is_some(),
        jobs = core.jobs.len(),
        sweeps = core.sweeps.len(),
        workers = core.workers.len(),
        ready = core.queue.len(),
        leased = repairs.leased.len(),
        "coordinator state loaded"
    );
    let (tx, rx) = mpsc::channel(INTENT_QUEUE);
    let server_stop = shutdown.child_token();
    let shared = Arc::new(Shared::new(
        core,
        cfg,
        catalog,
        clock,
        tx,
        server_stop.clone(),
    ));

    let http_listener = http::listener(http_listener, &shared.cfg).await?;
    let tasks_stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    if let Some(l) = http_listener {
        let curves = Arc::new(http::curves::StoreCurves(store.clone()));
        tasks.spawn(http::serve(l, shared.clone(), curves, tasks_stop.clone()));
    }
    let writer = Writer::new(store.clone(), shared.clone(), rx, repairs);
    tasks.spawn(writer.run(tasks_stop.clone()));
    tasks.spawn(lease::reaper(
        store.clone(),
        shared.clone(),
        tasks_stop.clone(),
    ));

    let router = tonic::transport::Server::builder()
        .add_service(WorkerServiceServer::with_interceptor(
            WorkerApi::new(shared.clone(), store.clone()),
            Guard::worker_api(&shared.cfg),
        ))
        .add_service(SweepServiceServer::with_interceptor(
            SweepApi::new(shared.clone(), store.clone()),
            Guard::sweep_api(&shared.cfg),
        ));
    let router = match health::with_standard_services(router, health) {
        Ok(router) => router,
        Err(e) => {
            server_stop.cancel();
            tasks_stop.cancel();
            while tasks.join_next().await.is_some() {}
            return Err(e);
        }
    };
    health.set_serving_api(true).await;
    let server = tls::serve(router, incoming, tls_config, server_stop.clone());
    tokio::pin!(server);

    let mut failure = None;
    let served = tokio::select! {
        served = &mut server => served,
        Some(ended) = tasks.join_next() => {
            failure = task_failure(ended);
            server_stop.cancel();
            (&mut server).await
        }
    };
    health.set_serving_api(false).await;
    server_stop.cancel();
    tasks_stop.cancel();
    while let Some(ended) = tasks.join_next().await {
        if let Some(e) = task_failure(ended) {
            failure.get_or_insert(e);
        }
    }
    info!("coordinator stopped");
    match failure {
        Some(e) => {
            error!(error = %e, "coordinator stopped on an error");
            Err(e)
        }
        None => served.map_err(CoordinatorError::from),
    }
}

fn task_failure(
    ended: Result<Result<(), CoordinatorError>, tokio::task::JoinError>,
) -> Option<CoordinatorError> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(join) => Some(CoordinatorError::Internal(format!(
            "background task died: {join}"
        ))),
    }
}
