//! What `run` starts from: the configuration (plain data, `config.rs`) and what the process
//! hands over at run time, never read from a file: a pre-bound HTTP listener and the task
//! catalog it loaded once.

use std::sync::Arc;

use crate::config::CoordinatorConfig;
use crate::http::HttpListener;

/// A coordinator's configuration and run-time handles. A plain [`CoordinatorConfig`] converts
/// into one without handles.
#[derive(Clone, Default)]
pub struct Setup {
    pub config: CoordinatorConfig,
    /// An HTTP listener the caller bound already (to know its port first); used instead of
    /// `http_listen` while it has not been taken. Default none.
    pub http_listener: Option<HttpListener>,
    /// The task catalog (loaded once by the process) for the planner, the dashboard and the
    /// report; a sweep's own tasks travel with its jobs. Default none: any task name is
    /// accepted and `languages = "all"` is an error.
    pub catalog: Option<Arc<stilts_tasks::Catalog>>,
}

impl From<CoordinatorConfig> for Setup {
    fn from(config: CoordinatorConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("config", &self.config)
            .field("http_listener", &self.http_listener)
            .field("catalog", &self.catalog.is_some())
            .finish()
    }
}
