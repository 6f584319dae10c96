//! One cell for the dashboard's cell page: its chain of jobs (first stage first), each with its
//! state, attempts, transitions since this coordinator started, metrics, training curves per
//! attempt (from the store), and the tail of the
//! current attempt's logs when the coordinator can read the artifact directory
//! (`artifacts_root`); otherwise the page says the logs are on the worker.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::curves::curves_json;
use super::{HttpState, error, json};

/// Bytes of each log file shown, from its end.
const LOG_TAIL_BYTES: u64 = 8 * 1024;
/// Log files the command executor writes per attempt.
const LOG_FILES: [&str; 3] = ["stdout.log", "stderr.log", "command.txt"];

/// Where a job's logs would be: `<artifacts>/<job key>/logs/attempt-<n>/`.
struct LogsAt {
    key: String,
    attempt: u32,
}

pub async fn cell(
    State(st): State<Arc<HttpState>>,
    Path((name, index)): Path<(String, String)>,
) -> Response {
    let Ok(index) = index.parse::<usize>() else {
        return error(StatusCode::BAD_REQUEST, "the cell index is a number");
    };
    let (mut body, logs) = {
        let core = st.shared.core();
        let Some(s) = core.sweep(&name) else {
            return error(StatusCode::NOT_FOUND, format!("unknown sweep {name:?}"));
        };
        let Some(c) = s.cells.get(index) else {
            return error(
                StatusCode::NOT_FOUND,
                format!("sweep {name:?} has no cell {index}"),
            );
        };
        let mut chain: Vec<u32> = core.ancestry(c.evaluate).collect();
        chain.reverse();
        let mut logs = Vec::new();
        let jobs: Vec<Value> = chain
            .iter()
            .map(|&j| {
                let e = &core.jobs[j as usize];
                let r = &e.record;
                logs.push(LogsAt {
                    key: r.key.clone(),
                    attempt: r.status.attempt,
                });
                json!({
                    "key": r.key,
                    "kind": r.spec.kind.as_str(),
                    "task": r.spec.task,
                    "languages": r.spec.languages,
                    "state": r.status.state.as_str(),
                    "attempt": r.status.attempt,
                    "max_attempts": r.max_attempts,
                    "budget_spent": r.status.budget_spent,
                    "worker": r.worker_id,
                    "not_before_ms": r.not_before_ms,
                    "last_failure": r.last_failure.as_ref().map(ToString::to_string),
                    "metrics": r.metrics,
                    "artifact": r.artifact,
                    "progress": e.progress.as_ref().map(|p| json!({
                        "step": p.step, "total": p.total, "phase": p.phase,
                        "loss": Some(p.loss).filter(|l| l.is_finite()),
                    })),
                    "history": st.shared.metrics.history(&r.key),
                    "usage": {
                        "total_ms": r.usage.total_ms,
                        "lost_ms": r.usage.lost_ms,
                        "gpu_ms": r.usage.gpu_ms,
                        "device": r.usage.device,
                    },
                })
            })
            .collect();
        // The same chain under the other seeds: their target jobs, for the seed overlay. Cells
        // are stored in plan order (seed innermost), so the seeds of this cell's chain and
        // language are its neighbours; each is checked, never assumed.
        let n_seeds = s.axes.seeds.len();
        let first = index.checked_sub(c.seed as usize).unwrap_or(usize::MAX);
        let seed_jobs: Vec<Value> = (0..n_seeds)
            .filter_map(|k| {
                let o = s.cells.get(first.checked_add(k)?)?;
                let same = (o.model, o.intermediate, o.target, o.language, o.seed)
                    == (c.model, c.intermediate, c.target, c.language, k as u32);
                let target = core.jobs[o.evaluate as usize].parent.filter(|_| same)?;
                Some(json!({
                    "seed": s.axes.seeds[k],
                    "job": core.jobs[target as usize].record.key,
                    "state": core.jobs[target as usize].record.status.state.as_str(),
                }))
            })
            .collect();
        let body = json!({
            "seeds": seed_jobs,
            "sweep": s.record.name,
            "index": index,
            "model": s.axes.models[c.model as usize],
            "intermediate": s.axes.intermediates[c.intermediate as usize],
            "target": s.axes.targets[c.target as usize],
            "language": s.axes.languages[c.language as usize],
            "seed": s.axes.seeds[c.seed as usize],
            "state": core.cell_state(c).as_str(),
            "jobs": jobs,
        });
        (body, logs)
    };
    for (job, at) in body["jobs"].as_array_mut().into_iter().flatten().zip(&logs) {
        job["curves"] = curves_json(&*st.curves, &at.key).await;
    }
    for seed in body["seeds"].as_array_mut().into_iter().flatten() {
        let key = seed["job"].as_str().unwrap_or_default().to_string();
        // The latest attempt's curve of each seed.
        let latest = match curves_json(&*st.curves, &key).await {
            Value::Array(mut all) => all.pop().unwrap_or(Value::Null),
            other => other,
        };
        seed["curve"] = latest;
    }
    let root = st.shared.cfg.artifacts_root.clone();
    let tails = match root {
        None => None,
        Some(root) => tokio::task::spawn_blocking(move || {
            logs.iter().map(|l| read_logs(&root, l)).collect::<Vec<_>>()
        })
        .await
        .ok(),
    };
    match tails {
        Some(tails) => {
            if let Some(jobs) = body["jobs"].as_array_mut() {
                for (job, tail) in jobs.iter_mut().zip(tails) {
                    job["logs"] = tail;
                }
            }
        }
        None => body["logs_note"] = json!("logs on worker"),
    }
    json(&body)
}

/// A job key is a hex digest; anything else never becomes a path.
fn is_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 128 && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn read_logs(root: &FsPath, at: &LogsAt) -> Value {
    if !is_key(&at.key) || at.attempt == 0 {
        return Value::Null;
    }
    let dir: PathBuf = root
        .join(&at.key)
        .join("logs")
        .join(format!("attempt-{}", at.attempt));
    let files: serde_json::Map<String, Value> = LOG_FILES
        .iter()
        .filter_map(|f| tail(&dir.join(f)).map(|t| (f.to_string(), Value::String(t))))
        .collect();
    if files.is_empty() {
        return json!({ "attempt": at.attempt, "note": "no logs in the artifact directory" });
    }
    json!({ "attempt": at.attempt, "files": files })
}

/// The last [`LOG_TAIL_BYTES`] of a file, lossily decoded; `None` if it cannot be read.
fn tail(path: &FsPath) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::with_capacity((len - start) as usize);
    f.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    // Drop a partial first line when the file was cut.
    Some(match (start > 0, text.find('\n')) {
        (true, Some(i)) => text[i + 1..].to_string(),
        _ => text.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_keys_become_paths() {
        assert!(is_key("ab12cd"));
        assert!(!is_key("../etc"));
        assert!(!is_key(""));
        assert!(!is_key("a/b"));
    }

    #[test]
    fn tail_keeps_the_end_of_long_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.log");
        let line = "x".repeat(99) + "\n";
        std::fs::write(&path, line.repeat(200) + "last\n").unwrap();
        let t = tail(&path).unwrap();
        assert!(t.ends_with("last\n"));
        assert!(t.len() <= LOG_TAIL_BYTES as usize);
        assert!(t.starts_with('x'));
        assert!(tail(&dir.path().join("missing")).is_none());
    }
}
