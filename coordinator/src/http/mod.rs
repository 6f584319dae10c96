//! The coordinator's HTTP listener: Prometheus metrics, a JSON view of sweeps and workers, and a
//! live dashboard (one static page, no build step) that polls that JSON.
//!
//! | path | serves |
//! |---|---|
//! | `/` | the dashboard (`dashboard.html`: HTML, CSS and JS in one file) |
//! | `/metrics` | Prometheus metrics, OpenMetrics text ([`metrics`]) |
//! | `/api/sweeps` | every sweep with its cell counts |
//! | `/api/sweeps/{name}` | one sweep: axes, cells or tiles, per-axis progress, the Δ matrix ([`sweep_view`]) |
//! | `/api/sweeps/{name}/cells?offset=N&limit=M` | a page of cells |
//! | `/api/sweeps/{name}/cells/{index}` | one cell: its chain of jobs, attempts, training curves ([`curves`]), logs tail |
//! | `/api/workers` | connected workers, their jobs and throughput |
//! | `/healthz` | `ok` |
//!
//! Served with axum (already in the dependency tree through tonic) on its own listener, as a task
//! of the coordinator's `JoinSet`, stopped with the other background tasks. Once the coordinator
//! has a token, everything but `/` and `/healthz` needs one (`require_token`); a connection that
//! has not sent its request headers within `http_header_timeout` (10 s) is closed, and at most
//! 256 connections are served at once.

mod api;
mod cell;
pub mod curves;
mod sweep_view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::shared::Shared;

/// The dashboard page.
const DASHBOARD: &str = include_str!("dashboard.html");
/// How long open connections may keep the server up once it is told to stop.
const DRAIN: Duration = Duration::from_secs(2);

/// A listener bound by the caller (so it knows the port before the coordinator starts); the
/// coordinator takes it once. Clones share it.
#[derive(Clone)]
pub struct HttpListener(Arc<Mutex<Option<std::net::TcpListener>>>);

impl HttpListener {
    pub fn new(listener: std::net::TcpListener) -> Self {
        Self(Arc::new(Mutex::new(Some(listener))))
    }

    /// Binds `addr` now (`127.0.0.1:0` picks a free port; see [`HttpListener::local_addr`]).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        std::net::TcpListener::bind(addr).map(Self::new)
    }

    /// The bound address, while the listener has not been taken.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.lock().as_ref().and_then(|l| l.local_addr().ok())
    }

    fn take(&self) -> Option<std::net::TcpListener> {
        self.lock().take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<std::net::TcpListener>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for HttpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpListener({:?})", self.local_addr())
    }
}

/// The HTTP listener: the pre-bound one if it is still there, else `cfg.http_listen`
/// bound now; `None` when neither is set.
pub async fn listener(
    pre_bound: Option<HttpListener>,
    cfg: &CoordinatorConfig,
) -> Result<Option<tokio::net::TcpListener>, CoordinatorError> {
    let io = |what: String, e: std::io::Error| CoordinatorError::Internal(format!("{what}: {e}"));
    if let Some(l) = pre_bound.as_ref().and_then(HttpListener::take) {
        l.set_nonblocking(true)
            .map_err(|e| io("http listener".into(), e))?;
        return tokio::net::TcpListener::from_std(l)
            .map(Some)
            .map_err(|e| io("http listener".into(), e));
    }
    match cfg.http_listen {
        None => Ok(None),
        Some(addr) => tokio::net::TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|e| io(format!("cannot listen on {addr} for HTTP"), e)),
    }
}

/// What the handlers share.
pub(crate) struct HttpState {
    pub shared: Arc<Shared>,
    /// The process's catalog; a sweep's own tasks are added per sweep (`Core::sweep_tasks`).
    pub catalog: Arc<stilts_tasks::Catalog>,
    /// Where the cell page reads training curves (the store).
    pub curves: Arc<dyn curves::CurveReader>,
    /// The last Δ matrix built, per sweep (`sweep_view.rs`).
    pub reports: Mutex<std::collections::HashMap<String, sweep_view::DeltaCache>>,
}

/// Serves HTTP on `listener` until `stop` is cancelled (then at most [`DRAIN`] more).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    curves: Arc<dyn curves::CurveReader>,
    stop: CancellationToken,
) -> Result<(), CoordinatorError> {
    let addr = listener.local_addr().ok();
    let catalog = shared
        .catalog
        .clone()
        .unwrap_or_else(|| Arc::new(stilts_tasks::Catalog::builtin()));
    let guard = crate::auth::HttpGuard::new(&shared.cfg);
    let header_timeout = shared.cfg.http_header_timeout;
    let state = Arc::new(HttpState {
        shared,
        catalog,
        curves,
        reports: Mutex::default(),
    });
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/sweeps", get(api::sweeps))
        .route("/api/sweeps/{name}", get(sweep_view::sweep))
        .route("/api/sweeps/{name}/cells", get(sweep_view::cells))
        .route("/api/sweeps/{name}/cells/{index}", get(cell::cell))
        .route("/api/workers", get(api::workers))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::from_fn_with_state(guard, require_token))
        .with_state(state);
    info!(addr = ?addr, "http listening (dashboard, /metrics)");
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on serving.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "http: {MAX_CONNECTIONS} connections open; refusing one more");
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn).await;
                }
            }
            drop(slot);
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Connections served at once; one more is closed at once (a browser opens about six).
const MAX_CONNECTIONS: usize = 256;

/// The page itself and `/healthz` are open (they hold no data); everything else needs the token
/// when one is configured (see [`crate::auth::HttpGuard`]). The page sends the token it was
/// opened with (`/#token=…`, kept in the tab's session storage) on every fetch.
async fn require_token(
    State(guard): State<crate::auth::HttpGuard>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let open = path == "/" || path == "/healthz";
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if open || guard.admits(authorization) {
        return next.run(req).await;
    }
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "this coordinator needs a token: send `authorization: Bearer TOKEN` (the read-only \
         --http-token or the client token), or open the dashboard as /#token=TOKEN",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    r
}

async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        DASHBOARD,
    )
        .into_response()
}

async fn metrics(State(st): State<Arc<HttpState>>) -> Response {
    let text = {
        let core = st.shared.core();
        st.shared.metrics.render(&core)
    };
    match text {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => {
            tracing::error!("encoding /metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A JSON response.
pub(crate) fn json(v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A JSON error `{"error": msg}` with `status`.
pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut r = json(&serde_json::json!({ "error": msg.into() }));
    *r.status_mut() = status;
    r
}
