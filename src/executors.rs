//! Wiring of the executors a worker offers: each job goes to the executor its spec names
//! (`command` or the built-in `burn` trainer), after `pip:` model sources are fetched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use stilts_common::backend::TrainerBackend;
use stilts_common::failure::{Failure, FailureReason};
use stilts_common::job::ExecutorSpec;
use stilts_worker::CommandExecutor;
use stilts_worker::executor::{CancelFlag, Executor, JobContext, JobOutput, ProgressSink};
use stilts_worker::model_fetch;

/// Routes each job by `spec.executor`.
pub struct Dispatch {
    command: CommandExecutor,
    burn: Option<Arc<dyn Executor>>,
    backend: String,
    model_cache: PathBuf,
}

impl Dispatch {
    /// Jobs one local worker runs at once when the user does not say: the burn trainer uses
    /// every core for one job; command jobs get one slot per core.
    pub fn default_slots(&self, burn_grid: bool) -> u32 {
        if burn_grid {
            1
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
        }
    }

    pub fn into_executor(self) -> Arc<dyn Executor> {
        Arc::new(self)
    }
}

/// Whether this binary can train on `backend`; the error says how to get one that can.
pub fn check_backend(backend: TrainerBackend) -> Result<(), String> {
    if !cfg!(feature = "trainer") {
        return Err(
            "this stilts binary was built without the burn trainer (cargo feature \
                    `trainer`): rebuild with default features, or use [executor] kind = \"command\""
                .to_string(),
        );
    }
    if backend.needs_libtorch() && !cfg!(feature = "libtorch") {
        return Err(format!(
            "this stilts binary has no {backend} backend: {}",
            backend.how_to_get()
        ));
    }
    Ok(())
}

/// The executors of this build: `command` always; `burn` with the `trainer` feature, on the
/// process's task catalog (jobs of grids with their own tasks carry those definitions).
pub fn local(
    backend: &str,
    model_cache: &Path,
    catalog: &Arc<stilts_tasks::Catalog>,
) -> Result<Dispatch> {
    Ok(Dispatch {
        command: CommandExecutor::new(),
        burn: burn(backend, catalog)?,
        backend: backend.to_string(),
        model_cache: model_cache.to_path_buf(),
    })
}

#[cfg(feature = "trainer")]
fn burn(backend: &str, catalog: &stilts_tasks::Catalog) -> Result<Option<Arc<dyn Executor>>> {
    use anyhow::Context as _;
    let backend = stilts_trainer::backend::Backend::parse(backend)
        .with_context(|| format!("--backend {backend}"))?;
    Ok(Some(Arc::new(
        stilts_trainer::executor::BurnExecutor::new(backend).with_catalog(catalog.clone()),
    )))
}

#[cfg(not(feature = "trainer"))]
fn burn(_backend: &str, _catalog: &stilts_tasks::Catalog) -> Result<Option<Arc<dyn Executor>>> {
    Ok(None)
}

impl Executor for Dispatch {
    fn backend(&self) -> String {
        match &self.burn {
            Some(b) => format!("command+{}", b.backend()),
            None => format!("command (no trainer; --backend {} unused)", self.backend),
        }
    }

    fn run(
        &self,
        ctx: &JobContext,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<JobOutput, Failure> {
        let mut ctx = ctx.clone();
        ctx.spec.model_source = model_fetch::resolve(&ctx.spec.model_source, &self.model_cache)
            .map_err(|e| Failure::retryable(FailureReason::Data, e.to_string()))?;
        match &ctx.spec.executor {
            ExecutorSpec::Command { .. } => self.command.run(&ctx, progress, cancel),
            ExecutorSpec::Burn => match &self.burn {
                Some(burn) => burn.run(&ctx, progress, cancel),
                None => Err(Failure::permanent(
                    FailureReason::User,
                    "this stilts binary was built without the burn trainer (cargo feature \
                     `trainer`); rebuild with default features or use [executor] kind = \"command\"",
                )),
            },
        }
    }
}
