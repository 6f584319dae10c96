//! What the services, the writer, the reaper and the HTTP handlers share: the cache behind one
//! lock, the configuration, the clock, the writer's request channel and the metrics. Every
//! module that serves takes an `Arc<Shared>`; this file imports none of them.

use std::sync::{Arc, Mutex, MutexGuard};

use stilts_common::clock::Clock;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cache::Core;
use crate::config::CoordinatorConfig;
use crate::error::CoordinatorError;
use crate::events::{self, EventTx};
use crate::intents::{Intent, Reply};
use crate::metrics::Metrics;

/// What the services, the writer and the reaper share.
pub struct Shared {
    core: Mutex<Core>,
    pub cfg: CoordinatorConfig,
    /// The process's task catalog (see [`crate::setup::Setup::catalog`]).
    pub catalog: Option<Arc<stilts_tasks::Catalog>>,
    pub clock: Arc<dyn Clock>,
    /// Woken whenever a job may have become ready (long-polling `AcquireJob`s wait on it).
    pub ready: Notify,
    pub events: EventTx,
    pub metrics: Metrics,
    pub intents: mpsc::Sender<Intent>,
    /// Cancelled when the server stops: long polls and event streams end.
    pub stop: CancellationToken,
}

impl Shared {
    /// The shared state of one served term, over the cache loaded from the store.
    pub fn new(
        core: Core,
        cfg: CoordinatorConfig,
        catalog: Option<Arc<stilts_tasks::Catalog>>,
        clock: Arc<dyn Clock>,
        intents: mpsc::Sender<Intent>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            core: Mutex::new(core),
            cfg,
            catalog,
            clock,
            ready: Notify::new(),
            events: events::channel(),
            metrics: Metrics::default(),
            intents,
            stop,
        }
    }

    /// The cache. Held briefly, never across an `.await`.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a request to the writer and waits for its durable outcome.
    pub async fn call<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Intent,
    ) -> Result<T, CoordinatorError> {
        let (tx, rx) = oneshot::channel();
        self.intents
            .send(make(tx))
            .await
            .map_err(|_| CoordinatorError::ShuttingDown)?;
        rx.await.map_err(|_| CoordinatorError::ShuttingDown)?
    }

    pub fn ttl_ms(&self) -> u64 {
        self.cfg.lease_ttl_ms()
    }
}
