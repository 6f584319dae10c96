//! Reading a local state directory through an in-process coordinator (the same query path
//! remote clients use): `stilts results` and `stilts report` without `--coordinator`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use stilts_common::clock::SystemClock;
use stilts_coordinator::CoordinatorConfig;
use stilts_coordinator::store::sqlite::SqliteStore;
use stilts_proto::v1::ListSweepsRequest;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::Format;
use crate::client::{self, Client};
use crate::run::StateDir;

/// A client to a coordinator: a remote one, or one started here over a local state directory.
pub struct Session {
    pub client: Client,
    server: Option<(CancellationToken, JoinHandle<()>)>,
}

impl Session {
    pub async fn open(remote: Option<&str>, state_dir: &Path) -> Result<Session> {
        if let Some(url) = remote {
            return Ok(Session {
                client: client::connect(url).await?,
                server: None,
            });
        }
        let state = StateDir::new(state_dir);
        if !state.db().is_file() {
            bail!(
                "no store at {}: run a sweep first (`stilts run grid.toml`), pass --state-dir, \
                 or --coordinator URL",
                state.db().display()
            );
        }
        let store = SqliteStore::open(state.db())
            .with_context(|| format!("opening the store {}", state.db().display()))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = CancellationToken::new();
        let cfg = CoordinatorConfig::default();
        let run = stilts_coordinator::run(
            cfg,
            listener,
            store,
            Arc::new(SystemClock),
            shutdown.clone(),
        );
        let server = tokio::spawn(async move {
            if let Err(e) = run.await {
                eprintln!("coordinator: {e}");
            }
        });
        Ok(Session {
            client: client::connect(&url).await?,
            server: Some((shutdown, server)),
        })
    }

    /// `sweep`, or the most recent sweep.
    pub async fn sweep_name(&mut self, sweep: Option<&str>) -> Result<String> {
        if let Some(s) = sweep {
            return Ok(s.to_string());
        }
        let sweeps = self
            .client
            .list_sweeps(ListSweepsRequest {})
            .await?
            .into_inner()
            .sweeps;
        sweeps
            .into_iter()
            .next()
            .context("the store holds no sweep yet")
    }

    pub async fn close(self) {
        if let Some((shutdown, server)) = self.server {
            shutdown.cancel();
            let _ = server.await;
        }
    }
}

/// `stilts results`.
pub async fn run(state_dir: &Path, sweep: Option<&str>, format: Format) -> Result<String> {
    let mut session = Session::open(None, state_dir).await?;
    let out = async {
        let name = session.sweep_name(sweep).await?;
        client::results(&mut session.client, &name, format).await
    }
    .await;
    session.close().await;
    out
}
