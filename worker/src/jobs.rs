//! The thread each job runs on: directories, the executor call, the report (the table of
//! running jobs that heartbeats read is `job_table.rs`).
//!
//! Layout per job key `K` under the artifact root: `K/` is the output directory (kept across
//! attempts so a retry can resume from its checkpoints), `K/metrics.json` the metrics file,
//! `K/logs/attempt-<n>/` the attempt's logs. A metrics file left by an earlier attempt is moved
//! to `K/logs/attempt-<n>/previous-metrics.json` before attempt `n` starts, so a stale file is
//! never taken for this attempt's result.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use stilts_common::convert::job_spec_from_json;
use stilts_common::failure::{Failure, FailureReason};
use stilts_proto::v1 as pb;
use tracing::{error, info, info_span, warn};

use crate::executor::{CancelFlag, JobContext, JobOutput, Progress, ProgressSink};
use crate::gpu_estimate;
use crate::gpu_pool::{Ending, NotPlaced, Placed};
use crate::job_table::{CancelCause, Entry, SharedProgress, handed_back};
use crate::report_queue::{Outcome, Report};
use crate::shared::Agent;
use crate::trace_ctx;

/// A job key is a directory name under the artifact root: it must not escape it.
fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Takes on one assignment: prepares its directories and runs it on a thread of its own. Anything
/// that keeps it from starting is reported as a failure of that attempt.
pub(crate) fn start(agent: &Arc<Agent>, a: pb::JobAssignment, shutting_down: bool) {
    let (key, attempt, token) = (a.job_key.clone(), a.attempt, a.fencing_token);
    let trace = trace_ctx::extract(&a.trace_context);
    let refuse = |failure: Failure| {
        warn!(job = %key, attempt, reason = %failure.reason, error = %failure.message, "job not started");
        agent.reports.push(Report {
            key: key.clone(),
            attempt,
            token,
            outcome: Outcome::Fail(failure),
            curve: Vec::new(),
            trace: trace.clone(),
        });
    };
    if shutting_down {
        return refuse(handed_back(format!(
            "worker {} is shutting down",
            agent.cfg.name
        )));
    }
    if !safe_key(&key) {
        return refuse(Failure::permanent(
            FailureReason::User,
            format!("job key {key:?} is not a safe directory name"),
        ));
    }
    {
        // The coordinator re-assigned a job this worker still runs (its lease had lapsed): keep
        // the running process and report it under the new attempt and token.
        let mut map = agent.jobs.map.lock().expect("jobs lock");
        if let Some(entry) = map.get_mut(&key) {
            if entry.cause.is_none() {
                info!(job = %key, attempt, old_attempt = entry.attempt, "job re-assigned while still running here; adopting the new attempt");
                entry.attempt = attempt;
                entry.token = token;
                entry.trace = trace;
                return;
            }
            drop(map);
            return refuse(handed_back(
                "the previous attempt is still stopping on this worker",
            ));
        }
    }
    let spec = match job_spec_from_json(&a.spec_json) {
        Ok(spec) => spec,
        Err(e) => {
            return refuse(Failure::retryable(
                FailureReason::Error,
                format!("worker cannot read the job spec (version skew?): {e}"),
            ));
        }
    };
    let output_dir = agent.cfg.artifacts.join(&key);
    let ctx = JobContext {
        key: key.clone(),
        attempt,
        spec,
        input_dir: (!a.input_artifact.is_empty()).then(|| PathBuf::from(&a.input_artifact)),
        metrics_file: output_dir.join("metrics.json"),
        log_dir: output_dir.join("logs").join(format!("attempt-{attempt}")),
        output_dir,
        gpu: None,
    };
    if let Err(e) = prepare_dirs(&ctx) {
        return refuse(Failure::retryable(
            FailureReason::Error,
            format!("cannot prepare {}: {e}", ctx.output_dir.display()),
        ));
    }

    let progress = Arc::new(SharedProgress::default());
    let cancel = CancelFlag::new();
    {
        let mut map = agent.jobs.map.lock().expect("jobs lock");
        let entry = Entry {
            attempt,
            token,
            progress: progress.clone(),
            cancel: cancel.clone(),
            cause: None,
            trace: trace.clone(),
        };
        map.insert(key.clone(), entry);
        agent.jobs.publish(&map);
    }
    if let Some(pool) = &agent.gpus {
        // In the line for GPU memory before the thread starts: no more acquiring until placed.
        pool.enqueue(&key);
    }
    info!(job = %key, attempt, kind = %ctx.spec.kind, sweep = %a.sweep, "job started");
    // The executor's work (and any span it opens) is a child of the attempt's trace.
    let span = trace_ctx::adopt(
        info_span!(parent: None, "execute", job.key = %key, job.kind = %ctx.spec.kind, job.attempt = attempt),
        &trace,
    );
    let thread_agent = agent.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("job-{}", &key[..key.len().min(12)]))
        .spawn(move || {
            let mut ctx = ctx;
            let placed = match place(&thread_agent, &ctx, progress.as_ref(), &cancel) {
                Ok(placed) => placed,
                Err(failure) => {
                    return finish(&thread_agent, &ctx.key, Err(failure), Instant::now());
                }
            };
            ctx.gpu = placed.map(|p| p.gpu);
            let started = Instant::now();
            let executor = thread_agent.executor.clone();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                span.in_scope(|| executor.run(&ctx, progress.as_ref(), &cancel))
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(panic_failure(&what))
            })
            .and_then(|out| checked_metrics(&ctx, out));
            if let (Some(pool), Some(_)) = (&thread_agent.gpus, placed) {
                pool.release(&ctx.key, ending(&result));
            }
            finish(&thread_agent, &ctx.key, result, started);
        });
    if let Err(e) = spawned {
        if let Some(pool) = &agent.gpus {
            pool.dequeue(&key);
        }
        let mut map = agent.jobs.map.lock().expect("jobs lock");
        map.remove(&key);
        agent.jobs.publish(&map);
        drop(map);
        refuse(Failure::retryable(
            FailureReason::Error,
            format!("cannot start a job thread: {e}"),
        ));
    }
}

/// On a worker packing jobs onto GPUs: reserves the job's estimated memory
/// (`gpu_estimate.rs`, raised by the out-of-memory memo), waiting while it does not fit; the
/// phase says so meanwhile. `None` on a worker without GPUs. A job cancelled, or whose worker
/// shuts down, while it waits ends without running.
fn place(
    agent: &Agent,
    ctx: &JobContext,
    progress: &dyn ProgressSink,
    cancel: &CancelFlag,
) -> Result<Option<Placed>, Failure> {
    let Some(pool) = &agent.gpus else {
        return Ok(None);
    };
    let estimate = gpu_estimate::for_spec(&ctx.spec);
    let waiting = |phase: String| {
        progress.report(Progress {
            phase,
            ..Progress::default()
        })
    };
    match pool.reserve(&ctx.key, estimate, cancel, waiting) {
        Ok(placed) => {
            // The phase said `waiting for GPU memory …`: the executor reports its own from here.
            progress.report(Progress::default());
            Ok(Some(placed))
        }
        Err(NotPlaced::Cancelled) => Err(Failure {
            reason: FailureReason::Cancelled,
            retryable: false,
            counts_against_budget: false,
            message: "cancelled on the worker while waiting for GPU memory".to_string(),
        }),
        Err(NotPlaced::Closed) => Err(handed_back(format!(
            "worker {} shut down before the job got GPU memory",
            agent.cfg.name
        ))),
        Err(NotPlaced::NoGpu) => Err(handed_back(format!(
            "every GPU of worker {} failed (device errors); the job goes to another worker",
            agent.cfg.name
        ))),
    }
}

/// How a job ended, for the out-of-memory memo.
fn ending(result: &Result<JobOutput, Failure>) -> Ending {
    match result {
        Ok(_) => Ending::Succeeded,
        Err(f) if f.reason == FailureReason::Oom => Ending::OutOfMemory,
        Err(f) if device_lost(&f.message) => Ending::DeviceLost,
        Err(_) => Ending::Failed,
    }
}

/// Whether a failure message is a CUDA device error (the GPU itself failed or is gone), as
/// opposed to a bug in the job or an out-of-memory: such a job is retried elsewhere and the GPU
/// takes no more jobs. Patterns from the CUDA runtime's and PyTorch's error texts.
fn device_lost(message: &str) -> bool {
    const PATTERNS: [&str; 8] = [
        "gpu is lost",
        "fallen off the bus",
        "uncorrectable ecc error",
        "cudaerrorecc",
        "cuda_error_ecc",
        "no cuda gpus are available",
        "cuda-capable device(s) is/are busy or unavailable",
        "cudaerrordevicesunavailable",
    ];
    let lower = message.to_ascii_lowercase();
    PATTERNS.iter().any(|p| lower.contains(p))
}

/// The failure of an executor that panicked. LibTorch reports a CUDA allocation failure by a
/// panic of burn-tch (`CUDA out of memory. Tried to allocate …`): that is an out-of-memory
/// failure, retryable (it depends on what else shares the GPU), and said as such.
fn panic_failure(what: &str) -> Failure {
    let lower = what.to_ascii_lowercase();
    let reason = if lower.contains("out of memory") || lower.contains("cuda_error_out_of_memory") {
        FailureReason::Oom
    } else {
        FailureReason::Error
    };
    Failure::retryable(reason, format!("executor panicked: {what}"))
}

/// Metrics the coordinator would refuse are the job's permanent failure here, with the reason
/// (running the same code again writes the same metrics).
fn checked_metrics(ctx: &JobContext, out: JobOutput) -> Result<JobOutput, Failure> {
    match stilts_common::metrics::check(&ctx.spec, Some(&out.metrics)) {
        Ok(()) => Ok(out),
        Err(why) => Err(Failure::permanent(
            FailureReason::BadMetrics,
            format!("the job succeeded but its metrics {why}"),
        )),
    }
}

fn prepare_dirs(ctx: &JobContext) -> std::io::Result<()> {
    std::fs::create_dir_all(&ctx.log_dir)?;
    set_aside(
        &ctx.metrics_file,
        &ctx.log_dir.join("previous-metrics.json"),
    )
}

fn set_aside(stale: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::rename(stale, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Called on the job's thread when the executor returns: queues the report under the job's
/// current attempt and token, then frees the slot.
fn finish(agent: &Agent, key: &str, result: Result<JobOutput, Failure>, started: Instant) {
    let mut map = agent.jobs.map.lock().expect("jobs lock");
    let Some(entry) = map.remove(key) else {
        error!(job = %key, "finished job was not in the running table");
        return;
    };
    let duration_s = started.elapsed().as_secs_f64();
    let outcome = match result {
        Ok(out) => {
            info!(job = %key, attempt = entry.attempt, duration_s, "job succeeded");
            Outcome::Complete {
                metrics_json: out.metrics.to_string(),
                artifact: out.artifact.display().to_string(),
                duration_s,
            }
        }
        Err(mut failure) => {
            if failure.reason == FailureReason::Cancelled
                && entry.cause == Some(CancelCause::Shutdown)
            {
                failure = handed_back(format!(
                    "worker {} shut down before the job finished: {}",
                    agent.cfg.name, failure.message
                ));
            }
            warn!(job = %key, attempt = entry.attempt, reason = %failure.reason, retryable = failure.retryable, error = %failure.message, "job failed");
            Outcome::Fail(failure)
        }
    };
    agent.reports.push(Report {
        key: key.to_string(),
        attempt: entry.attempt,
        token: entry.token,
        outcome,
        curve: entry.progress.curve_update(),
        trace: entry.trace,
    });
    agent.jobs.publish(&map);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_errors_lose_the_gpu_other_failures_do_not() {
        let lost = panic_failure(
            "Torch(\"CUDA error: uncorrectable ECC error encountered\nCompile with `TORCH_USE_CUDA_DSA`\")",
        );
        assert!(lost.retryable);
        assert_eq!(ending(&Err(lost)), Ending::DeviceLost);
        let gone = panic_failure("RuntimeError: No CUDA GPUs are available");
        assert_eq!(ending(&Err(gone)), Ending::DeviceLost);
        let oom = panic_failure("CUDA out of memory. Tried to allocate 2.00 GiB");
        assert_eq!(ending(&Err(oom)), Ending::OutOfMemory);
        let bug = panic_failure("index out of bounds: the len is 3 but the index is 7");
        assert_eq!(ending(&Err(bug)), Ending::Failed);
    }

    #[test]
    fn cuda_out_of_memory_panics_are_retryable_oom_failures() {
        let f = panic_failure(
            "called `Result::unwrap()` on an `Err` value: Torch(\"CUDA out of memory. Tried to allocate 2.00 GiB\")",
        );
        assert_eq!(f.reason, FailureReason::Oom);
        assert!(f.retryable);
        let f = panic_failure("index out of bounds");
        assert_eq!(f.reason, FailureReason::Error);
        assert!(f.retryable);
    }

    #[test]
    fn keys_never_escape_the_artifact_root() {
        assert!(safe_key("3fa9c0de-intermediate_v1.2"));
        for bad in ["", ".", "..", "../x", "a/b", "/abs", "a b", "a\0b"] {
            assert!(!safe_key(bad), "{bad:?}");
        }
    }

    #[test]
    fn stale_metrics_are_set_aside_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let (stale, to) = (
            dir.path().join("metrics.json"),
            dir.path().join("previous.json"),
        );
        set_aside(&stale, &to).unwrap();
        std::fs::write(&stale, "{}").unwrap();
        set_aside(&stale, &to).unwrap();
        assert!(!stale.exists());
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "{}");
    }
}
