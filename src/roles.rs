//! The long-running roles (`stilts coordinator`, `stilts worker`) and `stilts encode`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use stilts_common::clock::SystemClock;
use stilts_coordinator::store::etcd::EtcdStore;
use stilts_coordinator::store::sqlite::SqliteStore;
use stilts_coordinator::{ClusterConfig, CoordinatorConfig, HttpListener, Setup, StoreConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{CoordinatorArgs, EncodeArgs, HttpAddr, WorkerArgs};
use crate::run::StateDir;
use crate::{catalog, executors, security};

/// Cancels `token` on SIGTERM or Ctrl-C; a second signal cancels `now` too.
fn on_signals(token: CancellationToken, now: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    return;
                }
            };
        for round in 0..2 {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            if round == 0 {
                eprintln!("stopping: finishing running jobs (signal again to cancel them)");
                token.cancel();
            } else {
                now.cancel();
            }
        }
    });
}

pub async fn coordinator(args: CoordinatorArgs) -> Result<()> {
    let file = args
        .config
        .as_deref()
        .map(StoreConfig::from_file)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let mut store_cfg = StoreConfig::resolve(
        file,
        args.store.as_deref(),
        &args.etcd_endpoints,
        args.etcd_prefix.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    store_cfg.apply_env();
    let http_listener = http_listener(args.http)?;
    let (tls, auth) = security::server(&args.security)?;
    if auth.client_token.is_none() {
        tracing::warn!(
            "no client token (--client-token-file or STILTS_TOKEN): the sweep API is open to anyone who can reach it"
        );
    }
    let cfg = CoordinatorConfig {
        lease_ttl: args.lease_ttl,
        tls,
        auth,
        artifacts_root: args.artifacts.clone(),
        max_attempts: args.max_attempts,
        max_cells: args.max_cells,
        ..CoordinatorConfig::default()
    };
    let cfg = Setup {
        config: cfg,
        http_listener,
        catalog: Some(Arc::new(catalog::load(None)?)),
    };
    let shutdown = CancellationToken::new();
    on_signals(shutdown.clone(), CancellationToken::new());
    let clock = Arc::new(SystemClock);
    match store_cfg {
        StoreConfig::Sqlite(sqlite) => {
            let state = StateDir::new(&args.state.state_dir);
            std::fs::create_dir_all(&state.root).with_context(|| {
                format!("cannot create state directory {}", state.root.display())
            })?;
            let db = sqlite.path.unwrap_or_else(|| state.db());
            let store = SqliteStore::open(&db)
                .with_context(|| format!("opening the store {}", db.display()))?;
            let listener = listen(&args.listen).await?;
            eprintln!(
                "coordinator listening on {} (store {})",
                listener.local_addr()?,
                db.display()
            );
            stilts_coordinator::run(cfg, listener, store, clock, shutdown).await?;
        }
        StoreConfig::Etcd(etcd) => {
            let endpoints = etcd.endpoints_display();
            let store = EtcdStore::connect(*etcd)
                .await
                .with_context(|| format!("opening the etcd store at {endpoints}"))?;
            let listener = listen(&args.listen).await?;
            let local = listener.local_addr()?;
            let advertise = args
                .advertise
                .clone()
                .unwrap_or_else(|| format!("http://{local}"));
            if advertise.contains("0.0.0.0") || advertise.contains("[::]") {
                tracing::warn!(%advertise, "the advertised URL is a wildcard address; pass --advertise so that followers can point workers at this replica");
            }
            eprintln!(
                "coordinator replica listening on {local}, advertised as {advertise} (etcd store at {endpoints})"
            );
            let cluster = ClusterConfig {
                election_ttl: args.election_ttl.max(Duration::from_secs(1)),
                ..ClusterConfig::new(advertise)
            };
            stilts_coordinator::run_replica(cfg, cluster, listener, store, clock, shutdown).await?;
        }
    }
    Ok(())
}

async fn listen(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

pub async fn worker(args: WorkerArgs) -> Result<()> {
    let models = args.artifacts.join("..").join("models");
    let catalog = Arc::new(catalog::load(None)?);
    let executor = executors::local(&args.backend, &models, &catalog)?;
    let mut cfg = stilts_worker::WorkerConfig::new(args.coordinator.clone(), &args.artifacts);
    cfg.slots = args.slots;
    cfg.shutdown_grace = args.grace;
    let device_backend = gpu_packing(&args, &mut cfg)?;
    cfg.labels.insert(
        stilts_common::usage::DEVICE_LABEL.to_string(),
        stilts_worker::device::label(&device_backend, args.device.as_deref()),
    );
    let security = security::client(&args.security)?;
    cfg.tls = security.tls;
    cfg.token = security.token;
    if let Some(name) = args.name {
        cfg.name = name;
    }
    let (shutdown, now) = (CancellationToken::new(), CancellationToken::new());
    on_signals(shutdown.clone(), now.clone());
    stilts_worker::run_until(cfg, executor.into_executor(), shutdown, now).await?;
    Ok(())
}

/// `--gpus`, `--gpu-memory`, `--jobs-per-gpu` into the config; the backend whose GPU names the
/// worker's device label. `--gpus` goes with `--backend libtorch-cuda` (the GPU is chosen per
/// job, so not `libtorch-cuda:N`).
fn gpu_packing(args: &WorkerArgs, cfg: &mut stilts_worker::WorkerConfig) -> Result<String> {
    if args.gpus.is_empty() {
        return Ok(args.backend.clone());
    }
    if args.backend != "libtorch-cuda" {
        bail!(
            "--gpus packs jobs onto CUDA GPUs and picks one per job: use it with --backend \
             libtorch-cuda (not {:?})",
            args.backend
        );
    }
    cfg.gpus = args.gpus.clone();
    cfg.gpu_memory = args.gpu_memory;
    cfg.jobs_per_gpu = args.jobs_per_gpu;
    Ok(format!("libtorch-cuda:{}", args.gpus[0]))
}

#[cfg(feature = "trainer")]
pub fn encode(args: EncodeArgs) -> Result<()> {
    let mut texts = args.texts.clone();
    if let Some(path) = &args.input {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read input file {}", path.display()))?;
        texts.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
    if texts.is_empty() {
        bail!("nothing to encode: pass texts as arguments or --input FILE (one text per line)");
    }
    let pool: stilts_trainer::embed::Pool = args.pool.parse()?;
    let model = stilts_worker::model_fetch::resolve(&args.model, &default_model_cache())?;
    let vectors =
        stilts_trainer::embed::encode(std::path::Path::new(&model), &texts, args.layer, pool)?;
    for v in vectors {
        println!("{}", serde_json::to_string(&v)?);
    }
    Ok(())
}

#[cfg(not(feature = "trainer"))]
pub fn encode(_args: EncodeArgs) -> Result<()> {
    bail!("this stilts binary was built without the burn trainer (cargo feature `trainer`)")
}

#[cfg(feature = "trainer")]
fn default_model_cache() -> std::path::PathBuf {
    StateDir::new(std::path::Path::new(".stilts")).models()
}

/// Binds the dashboard/metrics listener now (so the URL can be printed before the coordinator
/// starts) and prints where it is.
pub fn http_listener(addr: HttpAddr) -> Result<Option<HttpListener>> {
    let Some(addr) = addr.0 else { return Ok(None) };
    let listener =
        HttpListener::bind(addr).with_context(|| format!("cannot listen on {addr} for HTTP"))?;
    if let Some(local) = listener.local_addr() {
        eprintln!("dashboard: http://{local}/ (metrics: http://{local}/metrics)");
    }
    Ok(Some(listener))
}
