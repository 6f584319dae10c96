//! `stilts run grid.toml`: the embedded mode. One process holds the coordinator (gRPC on a
//! loopback port, SQLite under the state directory) and a local worker; the grid is submitted
//! over gRPC like any client would, progress is drawn until every cell is finished, and the
//! results table is printed. Running it again resumes: the coordinator reloads the store, jobs
//! that succeeded keep their state, and failed or cancelled jobs are revived.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use stilts_common::clock::SystemClock;
use stilts_coordinator::CoordinatorConfig;
use stilts_coordinator::store::sqlite::SqliteStore;
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

/// Whether the grid runs on the built-in trainer (its default executor), which uses every core
/// for one job; a grid that does not parse is reported by the submit that follows.
fn is_burn_grid(grid: &Path) -> bool {
    let text = std::fs::read_to_string(grid).unwrap_or_default();
    stilts_common::grid::load(&grid.display().to_string(), &text, None, None)
        .map(|g| matches!(g.executor, stilts_common::grid::Executor::Burn { .. }))
        .unwrap_or_else(|_| !text.contains("\"command\""))
}

/// Exit status of `stilts run`: 0 when every cell succeeded, 1 otherwise.
pub async fn run(args: RunArgs) -> Result<i32> {
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
    let mut cfg = CoordinatorConfig {
        max_attempts: args.max_attempts,
        http_listener: crate::roles::http_listener(args.http)?,
        artifacts_root: Some(state.artifacts()),
        task_languages: Some(crate::catalog::language_resolver(None)?),
        ..CoordinatorConfig::default()
    };
    // Every worker that held a lease before this process started was ours, and is gone.
    cfg.expire_leases_on_start = true;
    let coordinator = tokio::spawn(stilts_coordinator::run(
        cfg,
        listener,
        store,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));

    let result = drive(&args, &state, &url, &shutdown).await;
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
    state: &StateDir,
    url: &str,
    shutdown: &CancellationToken,
) -> Result<i32> {
    let mut client = client::connect(url).await?;
    let submitted = client::submit(&mut client, &args.grid).await?;
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

    let executor = executors::local(&args.backend, &state.models())?;
    let slots = args
        .slots
        .unwrap_or_else(|| executor.default_slots(is_burn_grid(&args.grid)));
    let mut wcfg = stilts_worker::WorkerConfig::new(vec![url.to_string()], state.artifacts());
    wcfg.name = "local".to_string();
    wcfg.slots = slots;
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
