//! The `command` executor: runs the user's own program for each stage job.
//!
//! The stage's template is filled in with [`template_vars`] and run with `sh -c` in its own process
//! group, in the worker's working directory (or [`CommandExecutor::with_working_dir`]). Every
//! placeholder is also exported as an environment variable, `STILTS_` + its name in capitals with
//! non-alphanumerics as `_` (`{output_dir}` → `$STILTS_OUTPUT_DIR`, `{recipe.lr}` →
//! `$STILTS_RECIPE_LR`). Every value is substituted **shell-quoted** (one word each; a value of
//! only `A-Z a-z 0-9 _ @ % + = : , . / -` is left as it is, anything else goes in single quotes),
//! so a grid value is never shell syntax: do not quote placeholders yourself.
//! `{languages_space}` expands to one word per language.
//!
//! The attempt's log directory gets `command.txt` (the rendered command), `stdout.log` and
//! `stderr.log`. Progress lines on stdout are described in [`crate::progress_line`].
//!
//! Outcomes:
//! - exit 0 and a metrics file holding a JSON object → success. Training jobs may skip the file
//!   (their metrics are `{}`); evaluate jobs must write it.
//! - exit 0 with missing (evaluate) or invalid metrics → `BadMetrics`, permanent.
//! - non-zero exit with a code in `retryable_exit_codes` → `Error`, retryable, *not* counted
//!   against the budget: the program itself said "try again" (EX_TEMPFAIL and the like).
//! - any other non-zero exit, or death by a signal → `Error`, retryable, counted against the
//!   budget: crashes are often transient on GPU nodes (NCCL, ECC, a full disk), and the budget
//!   stops a deterministic crash from looping.
//! - past `timeout_s` → `Timeout`, retryable, counted. Cancelled → `Cancelled`, not retryable,
//!   not counted (the agent reclassifies cancels it caused itself, e.g. on shutdown).
//! - a template that does not render, or a non-command spec → `User`, permanent.
//! - the worker cannot create logs or spawn the shell → `Error`, retryable, counted.
//!
//! Timeouts and cancels send SIGTERM to the whole process group and SIGKILL after the grace
//! period; processes the job leaves behind in its group are killed when it ends.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stilts_common::failure::{Failure, FailureReason};
use stilts_common::job::{ExecutorSpec, StageKind};
use stilts_common::template;
use tracing::{info, warn};

use crate::executor::{CancelFlag, Executor, JobContext, JobOutput, ProgressSink};
use crate::log_tail::tail_lines;
use crate::metrics::read_metrics;
use crate::process::{Ending, GroupChild};
use crate::progress_line::{StdoutUpdate, pump_stdout};

/// File in the attempt's log directory where ignored malformed `STILTS_METRIC` lines are noted.
pub const WARNINGS_LOG: &str = "warnings.log";

/// Recipe key: `true` fails the job (not retryable) at the first NaN or infinite loss reported.
pub const STOP_ON_NAN: &str = "stop_on_nan";

/// Lines of stderr quoted in a failure message.
const STDERR_TAIL_LINES: usize = 20;
/// How long to wait for stdout to drain once the job's process group is gone.
const STDOUT_DRAIN: Duration = Duration::from_secs(2);

/// Runs stage jobs as shell commands. Cheap to clone; holds no per-job state.
#[derive(Debug, Clone)]
pub struct CommandExecutor {
    shell: PathBuf,
    kill_grace: Duration,
    working_dir: Option<PathBuf>,
}

impl Default for CommandExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandExecutor {
    /// `sh`, a 10 s grace between SIGTERM and SIGKILL, the worker's working directory.
    pub fn new() -> Self {
        Self {
            shell: PathBuf::from("sh"),
            kill_grace: Duration::from_secs(10),
            working_dir: None,
        }
    }

    /// Time a terminated job gets between SIGTERM and SIGKILL (default 10 s).
    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Directory commands run in (default: the worker's own working directory).
    pub fn with_working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }
}

/// The placeholder values for one job (see `stilts_common::template::PLACEHOLDERS`).
pub fn template_vars(ctx: &JobContext) -> BTreeMap<String, String> {
    let spec = &ctx.spec;
    let input_dir = match &ctx.input_dir {
        Some(dir) => dir.display().to_string(),
        None => spec.model_source.clone(),
    };
    let target = match spec.kind {
        StageKind::Intermediate => String::new(),
        StageKind::Target | StageKind::Evaluate => spec.task.clone(),
    };
    let mut vars = BTreeMap::from([
        ("model".to_string(), spec.model.clone()),
        ("model_source".to_string(), spec.model_source.clone()),
        ("task".to_string(), spec.task.clone()),
        ("intermediate".to_string(), spec.intermediate.clone()),
        ("target".to_string(), target),
        ("languages".to_string(), spec.languages.join(",")),
        ("languages_space".to_string(), spec.languages.join(" ")),
        ("seed".to_string(), spec.seed.to_string()),
        ("input_dir".to_string(), input_dir),
        (
            "output_dir".to_string(),
            ctx.output_dir.display().to_string(),
        ),
        (
            "metrics_file".to_string(),
            ctx.metrics_file.display().to_string(),
        ),
        ("job_key".to_string(), ctx.key.clone()),
        ("attempt".to_string(), ctx.attempt.to_string()),
    ]);
    for (name, value) in &spec.recipe {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        vars.insert(format!("recipe.{name}"), text);
    }
    vars
}

/// The placeholder values as they go into `sh -c`: each one shell-quoted (one word), except
/// `languages_space`, which is one quoted word per language (meant to expand to several
/// arguments). The environment variables keep the raw values.
fn shell_words(vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(k, v)| {
            let quoted = if k == "languages_space" {
                v.split(' ')
                    .filter(|w| !w.is_empty())
                    .map(template::shell_quote)
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                template::shell_quote(v).into_owned()
            };
            (k.clone(), quoted)
        })
        .collect()
}

/// `output_dir` → `STILTS_OUTPUT_DIR`, `recipe.lr` → `STILTS_RECIPE_LR`.
fn env_name(placeholder: &str) -> String {
    let mut name = String::from("STILTS_");
    name.extend(placeholder.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    name
}

fn spawn_failure(message: String) -> Failure {
    Failure::retryable(FailureReason::Error, message)
}

impl Executor for CommandExecutor {
    fn backend(&self) -> String {
        "command".to_string()
    }

    fn run(
        &self,
        ctx: &JobContext,
        progress: &dyn ProgressSink,
        cancel: &CancelFlag,
    ) -> Result<JobOutput, Failure> {
        let ExecutorSpec::Command {
            template,
            retryable_exit_codes,
            timeout_s,
        } = &ctx.spec.executor
        else {
            return Err(Failure::permanent(
                FailureReason::User,
                "the command executor got a job whose spec is not `kind = \"command\"`",
            ));
        };
        let stop_on_nan = match ctx.spec.recipe.get(STOP_ON_NAN) {
            None => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Failure::permanent(
                    FailureReason::User,
                    format!("recipe key {STOP_ON_NAN} must be true or false, not {other}"),
                ));
            }
        };
        let vars = template_vars(ctx);
        let rendered = template::render(template, &shell_words(&vars)).map_err(|e| {
            Failure::permanent(
                FailureReason::User,
                format!("{} command template: {e}", ctx.spec.kind),
            )
        })?;

        let log_dir = &ctx.log_dir;
        std::fs::create_dir_all(log_dir)
            .and_then(|()| std::fs::write(log_dir.join("command.txt"), format!("{rendered}\n")))
            .map_err(|e| {
                spawn_failure(format!("cannot write logs in {}: {e}", log_dir.display()))
            })?;
        let stderr_path = log_dir.join("stderr.log");
        let open = |name: &str| {
            let path = log_dir.join(name);
            File::create(&path)
                .map_err(|e| spawn_failure(format!("cannot create {}: {e}", path.display())))
        };
        let (stdout_log, stderr_log) = (open("stdout.log")?, open("stderr.log")?);

        let mut cmd = Command::new(&self.shell);
        cmd.arg("-c")
            .arg(&rendered)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr_log)
            .envs(vars.iter().map(|(k, v)| (env_name(k), v)));
        if let Some(dir) = &self.working_dir {
            cmd.current_dir(dir);
        }
        if let Some(gpu) = ctx.gpu {
            // Placed on a GPU by a worker packing jobs (`--gpus`): the program sees that one.
            cmd.env("CUDA_VISIBLE_DEVICES", gpu.to_string())
                .env("STILTS_GPU", gpu.to_string());
        }
        info!(job = %ctx.key, attempt = ctx.attempt, command = %rendered, "starting command");
        let started = Instant::now();
        let deadline = timeout_s.map(|s| started + Duration::from_secs(s));
        let mut child = GroupChild::spawn(cmd)
            .map_err(|e| spawn_failure(format!("cannot start `{}`: {e}", self.shell.display())))?;

        let (tx, rx) = mpsc::channel();
        let pump = child.take_stdout().map(|stdout| {
            std::thread::Builder::new()
                .name("job-stdout".into())
                .spawn(move || pump_stdout(stdout, stdout_log, tx))
        });
        if let Some(Err(e)) = pump {
            // Without a reader the child would block on a full pipe: stop it now.
            drop(child);
            return Err(spawn_failure(format!(
                "cannot start the stdout reader: {e}"
            )));
        }
        let warnings = log_dir.join(WARNINGS_LOG);
        // The first step whose loss was NaN or infinite; with `stop_on_nan` it stops the command.
        let mut bad_loss: Option<u64> = None;
        let stop = CancelFlag::new();
        let mut forward = || {
            while let Ok(update) = rx.try_recv() {
                let bad = forward_update(update, progress, &ctx.key, &warnings);
                bad_loss = bad_loss.or(bad);
            }
            if cancel.is_cancelled() || (stop_on_nan && bad_loss.is_some()) {
                stop.cancel();
            }
        };
        let ending = child
            .wait(deadline, &stop, self.kill_grace, &mut forward)
            .map_err(|e| spawn_failure(format!("waiting for the command failed: {e}")))?;
        let bad_loss = bad_loss.or(drain_progress(&rx, progress, &ctx.key, &warnings));
        if let Some(step) = bad_loss.filter(|_| stop_on_nan && !cancel.is_cancelled()) {
            return Err(Failure::permanent(
                FailureReason::Data,
                format!(
                    "the loss is NaN or infinite at step {step} and the recipe sets \
                     {STOP_ON_NAN} = true; the command was stopped"
                ),
            ));
        }

        let tail = || tail_lines(&stderr_path, STDERR_TAIL_LINES);
        match ending {
            Ending::Exited(status) if status.success() => {
                let required = ctx.spec.kind == StageKind::Evaluate;
                let metrics = read_metrics(&ctx.metrics_file, required)?;
                Ok(JobOutput {
                    metrics,
                    artifact: ctx.output_dir.clone(),
                })
            }
            Ending::Exited(status) => Err(exit_failure(status, retryable_exit_codes, &tail())),
            Ending::TimedOut => Err(Failure::retryable(
                FailureReason::Timeout,
                format!(
                    "timed out after {}s and was killed; last stderr lines:\n{}",
                    timeout_s.unwrap_or_default(),
                    tail()
                ),
            )),
            Ending::Cancelled => Err(Failure {
                reason: FailureReason::Cancelled,
                retryable: false,
                counts_against_budget: false,
                message: "cancelled on the worker; the command was terminated".to_string(),
            }),
        }
    }
}

/// Hands one stdout update to the sink; a malformed metric line becomes a warning in the worker's
/// log and a line in the attempt's `warnings.log`, never a failure. Returns the step of a point
/// whose loss is NaN or infinite (the point is forwarded like any other).
fn forward_update(
    update: StdoutUpdate,
    sink: &dyn ProgressSink,
    key: &str,
    warnings: &Path,
) -> Option<u64> {
    match update {
        StdoutUpdate::Progress(p) => sink.report(p),
        StdoutUpdate::Point(point) => {
            sink.point(point);
            if point.loss_non_finite() {
                return Some(point.step);
            }
        }
        StdoutUpdate::Malformed { line, why } => {
            warn!(job = %key, line, reason = %why, "ignored a malformed STILTS_METRIC line");
            let text = format!("stdout.log line {line}: ignored STILTS_METRIC line: {why}\n");
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(warnings)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
            if let Err(e) = written {
                warn!(job = %key, path = %warnings.display(), error = %e, "cannot write the warnings log");
            }
        }
    }
    None
}

/// Forwards the last progress updates once the job has ended, waiting a little for the stdout
/// reader (a process that escaped the group may hold the pipe open; it is not waited for).
/// Returns the first step with a NaN or infinite loss among them.
fn drain_progress(
    rx: &mpsc::Receiver<StdoutUpdate>,
    sink: &dyn ProgressSink,
    key: &str,
    warnings: &Path,
) -> Option<u64> {
    let until = Instant::now() + STDOUT_DRAIN;
    let mut bad_loss = None;
    loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(update) => bad_loss = bad_loss.or(forward_update(update, sink, key, warnings)),
            Err(mpsc::RecvTimeoutError::Disconnected) => return bad_loss,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                warn!(job = %key, "job stdout still open after the job ended; not waiting for it");
                return bad_loss;
            }
        }
    }
}

fn exit_failure(status: ExitStatus, retryable_codes: &[i32], stderr_tail: &str) -> Failure {
    use std::os::unix::process::ExitStatusExt;
    let what = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    };
    let message = format!("command {what}; last stderr lines:\n{stderr_tail}");
    match status.code() {
        Some(code) if retryable_codes.contains(&code) => Failure {
            reason: FailureReason::Error,
            retryable: true,
            counts_against_budget: false,
            message: format!("{message}\n(exit code {code} is in retryable_exit_codes)"),
        },
        _ => Failure::retryable(FailureReason::Error, message),
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
