//! `stilts run grid.toml`: the embedded mode. One process holds the coordinator (gRPC on a
//! loopback port, SQLite under the state directory) and a local worker; the grid is submitted
//! over gRPC like any client would, progress is drawn until every cell is finished, and the
//! results table is printed. Running it again resumes: the coordinator reloads the store, jobs
//! that succeeded keep their state, and failed or cancelled jobs are revived.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use stilts_common::backend::TrainerBackend;
use stilts_common::clock::SystemClock;
use stilts_coordinator::store::sqlite::SqliteStore;
use stilts_coordinator::{CoordinatorConfig, Setup};
use stilts_proto::v1::RetryFailedRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{Format, RunArgs};
use crate::{client, executors, progress};

/// Paths inside a state directory.
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("state.db")
    }
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }
}

/// How the local worker trains: `Some(backend)` for a burn grid (the built-in trainer uses every
/// core for one job), `None` for a command grid. The backend is `--backend`, else the grid's
/// `[executor] backend`, else cpu; one this binary lacks is an error, before anything is
/// submitted. A grid that does not parse is reported by the submit that follows.
fn local_backend(grid: &Path, requested: Option<&str>) -> Result<Option<String>> {
    let text = std::fs::read_to_string(grid).unwrap_or_default();
    let grid_backend =
        match stilts_common::grid::load(&grid.display().to_string(), &text, None, None) {
            Ok(g) => match g.executor {
                stilts_common::grid::Executor::Burn { backend } => backend,
                stilts_common::grid::Executor::Command { .. } => return Ok(None),
            },
            Err(_) if text.contains("\"command\"") => return Ok(None),
            Err(_) => None,
        };
    let (chosen, from) = match (requested, grid_backend) {
        (Some(b), _) => (b.to_string(), "--backend".to_string()),
        (None, Some(b)) => (b, format!("{} ([executor] backend)", grid.display())),
        (None, None) => ("cpu".to_string(), "the default".to_string()),
    };
    let family = TrainerBackend::parse(&chosen).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown backend {chosen:?} from {from}: use cpu, libtorch-cpu or libtorch-cuda[:N]"
        )
    })?;
    executors::check_backend(family).map_err(|why| {
        anyhow::anyhow!(
            "{from} asks for backend {chosen:?}, and {why}. Nothing was submitted or trained."
        )
    })?;
    Ok(Some(chosen))
}

/// Exit status of `stilts run`: 0 when every cell succeeded, 1 otherwise.
pub async fn run(args: RunArgs) -> Result<i32> {
    // Before anything is created or submitted: can this binary train the grid at all?
    let backend = local_backend(&args.grid, args.backend.as_deref())?;
    // One catalog for the whole process: the planner, the dashboard and the local worker.
    let catalog = Arc::new(crate::catalog::load(None)?);
    if let Ok(text) = std::fs::read_to_string(&args.grid) {
        crate::own_tasks::check(&args.grid, &text, &catalog)?;
    }
    let state = StateDir::new(&args.state.state_dir);
    std::fs::create_dir_all(&state.root)
        .with_context(|| format!("cannot create state directory {}", state.root.display()))?;
    let store = SqliteStore::open(state.db())
        .with_context(|| format!("opening the store {}", state.db().display()))?;

    let shutdown = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let url = format!("http://{}", listener.local_addr()?);
    let cfg = CoordinatorConfig {
        max_attempts: args.max_attempts,
        artifacts_root: Some(state.artifacts()),
        // Every worker that held a lease before this process started was ours, and is gone.
        expire_leases_on_start: true,
        ..CoordinatorConfig::default()
    };
    let setup = Setup {
        config: cfg,
        http_listener: crate::roles::http_listener(args.http)?,
        catalog: Some(catalog.clone()),
    };
    let coordinator = tokio::spawn(stilts_coordinator::run(
        setup,
        listener,
        store,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));

    let result = drive(&args, backend, &catalog, &state, &url, &shutdown).await;
    shutdown.cancel();
    match coordinator.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("coordinator: {e}"),
        Err(e) => eprintln!("coordinator task: {e}"),
    }
    result
}

async fn drive(
    args: &RunArgs,
    backend: Option<String>,
    catalog: &Arc<stilts_tasks::Catalog>,
    state: &StateDir,
    url: &str,
    shutdown: &CancellationToken,
) -> Result<i32> {
    let mut client = client::connect(url).await?;
    let submitted =
        client::submit(&mut client, &args.grid, args.backend.as_deref(), catalog).await?;
    if submitted.replanned {
        eprintln!(
            "the data of sweep {} changed since the last run: planned again; jobs whose data changed run again",
            submitted.sweep
        );
    }
    let revived = client
        .retry_failed(RetryFailedRequest {
            sweep: submitted.sweep.clone(),
        })
        .await?
        .into_inner()
        .jobs_revived;
    eprintln!(
        "sweep {}: {} cells, {} stage jobs ({} already done{}); state in {}",
        submitted.sweep,
        submitted.cells,
        submitted.jobs,
        submitted.jobs_already_done,
        if revived > 0 {
            format!(", {revived} failed jobs retried")
        } else {
            String::new()
        },
        state.root.display()
    );

    let executor = executors::local(
        backend.as_deref().unwrap_or("cpu"),
        &state.models(),
        catalog,
    )?;
    let slots = args
        .slots
        .unwrap_or_else(|| executor.default_slots(backend.is_some()));
    let mut wcfg = stilts_worker::WorkerConfig::new(vec![url.to_string()], state.artifacts());
    wcfg.name = "local".to_string();
    wcfg.slots = slots;
    wcfg.labels.insert(
        stilts_common::usage::DEVICE_LABEL.to_string(),
        stilts_worker::device::label(backend.as_deref().unwrap_or("cpu"), None),
    );
    let worker_stop = shutdown.child_token();
    let worker_now = shutdown.child_token();
    let worker = tokio::spawn(stilts_worker::run_until(
        wcfg,
        executor.into_executor(),
        worker_stop.clone(),
        worker_now.clone(),
    ));

    let bars = !args.no_progress && std::io::stderr().is_terminal();
    let followed = tokio::select! {
        r = progress::follow(&mut client, &submitted.sweep, bars) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: cancelling running jobs; run the same command again to resume");
            worker_now.cancel();
            worker_stop.cancel();
            let _ = worker.await;
            return Ok(130);
        }
    };
    worker_stop.cancel();
    match worker.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("worker: {e}"),
        Err(e) => eprintln!("worker task: {e}"),
    }
    let status = followed?;
    print!(
        "{}",
        client::results(&mut client, &submitted.sweep, Format::Table).await?
    );
    let failed: u64 = status
        .cells
        .iter()
        .filter(|c| c.state != "succeeded")
        .map(|c| c.count)
        .sum();
    if failed > 0 {
        eprint!("{}", client::format_status(&status));
        eprintln!(
            "{failed} cells did not succeed; fix the cause and run the same command again to \
             retry them (finished jobs are not rerun)"
        );
        return Ok(1);
    }
    Ok(0)
}
