//! `stilts results`: results of a sweep in a local state directory, read through an in-process
//! coordinator (the same query path remote clients use).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use stilts_common::clock::SystemClock;
use stilts_coordinator::CoordinatorConfig;
use stilts_coordinator::store::sqlite::SqliteStore;
use stilts_proto::v1::ListSweepsRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::Format;
use crate::client;
use crate::run::StateDir;

pub async fn run(state_dir: &Path, sweep: Option<&str>, format: Format) -> Result<String> {
    let state = StateDir::new(state_dir);
    if !state.db().is_file() {
        bail!(
            "no store at {}: run a sweep first (`stilts run grid.toml`) or pass --state-dir",
            state.db().display()
        );
    }
    let store = SqliteStore::open(&state.db())
        .with_context(|| format!("opening the store {}", state.db().display()))?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(stilts_coordinator::run(
        CoordinatorConfig::default(),
        listener,
        store,
        Arc::new(SystemClock),
        shutdown.clone(),
    ));
    let out = async {
        let mut c = client::connect(&url).await?;
        let name = match sweep {
            Some(s) => s.to_string(),
            None => c
                .list_sweeps(ListSweepsRequest {})
                .await?
                .into_inner()
                .sweeps
                .into_iter()
                .next()
                .context("the store holds no sweep yet")?,
        };
        client::results(&mut c, &name, format).await
    }
    .await;
    shutdown.cancel();
    let _ = server.await;
    out
}
