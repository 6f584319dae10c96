//! `stilts export tensorboard`: a sweep's training curves as TensorBoard event files (one run
//! per job attempt, tags `train/loss`, `train/lr`, `train/grad_norm`, `dev/metric`), and the same
//! series as `curves.json` and `curves.csv`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use stilts_common::csv::field;
use stilts_common::series::Point;
use stilts_coordinator::report::tensorboard;
use stilts_proto::v1::GetCurvesRequest;

use crate::cli::{ExportArgs, ExportCommand};
use crate::local_results::Session;

/// One attempt's curve with the names the export files use.
#[derive(Debug, serde::Serialize)]
struct Run {
    job_key: String,
    /// `intermediate`, `target` or `evaluate`.
    stage: &'static str,
    model: String,
    intermediate: String,
    target: String,
    seed: u64,
    attempt: u32,
    points: Vec<Point>,
    /// The run's directory under the output directory.
    #[serde(skip)]
    dir: PathBuf,
}

pub async fn run(cmd: ExportCommand) -> Result<()> {
    let ExportCommand::Tensorboard(args) = cmd;
    let mut session = Session::open(args.coordinator.as_deref(), &args.state.state_dir).await?;
    let fetched = fetch(&mut session, &args).await;
    session.close().await;
    let (sweep, runs) = fetched?;
    let files = write(&args.out, &runs)?;
    eprintln!(
        "sweep {sweep}: {} curves ({} points) as {} files in {}; view with `tensorboard --logdir {}`",
        runs.len(),
        runs.iter().map(|r| r.points.len()).sum::<usize>(),
        files,
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// Every curve of every job of the sweep, each job once (jobs are shared between cells).
async fn fetch(session: &mut Session, args: &ExportArgs) -> Result<(String, Vec<Run>)> {
    let sweep = session.sweep_name(args.sweep.as_deref()).await?;
    let cells = crate::client::all_cells(&mut session.client, &sweep).await?;
    let mut seen = HashSet::new();
    let mut runs = Vec::new();
    for c in &cells {
        let n = c.job_keys.len();
        for (i, key) in c.job_keys.iter().enumerate() {
            if !seen.insert(key.clone()) {
                continue;
            }
            // A chain is [intermediate,] target, evaluate (no intermediate job for `none`).
            let stage = match n - i {
                1 => "evaluate",
                2 => "target",
                _ => "intermediate",
            };
            let name = match stage {
                "intermediate" => format!("{}.{}.seed{}", c.model, c.intermediate, c.seed),
                "target" => format!("{}.{}-{}.seed{}", c.model, c.intermediate, c.target, c.seed),
                _ => format!(
                    "{}.{}-{}.{}.seed{}",
                    c.model, c.intermediate, c.target, c.language, c.seed
                ),
            };
            let short = &key[..key.len().min(8)];
            let curves = session
                .client
                .get_curves(GetCurvesRequest {
                    job_key: key.clone(),
                })
                .await
                .with_context(|| format!("curves of job {key}"))?
                .into_inner()
                .curves;
            for a in curves {
                runs.push(Run {
                    job_key: key.clone(),
                    stage,
                    model: c.model.clone(),
                    intermediate: c.intermediate.clone(),
                    target: c.target.clone(),
                    seed: c.seed,
                    attempt: a.attempt,
                    points: a.points.into_iter().map(Point::from).collect(),
                    dir: PathBuf::from(stage)
                        .join(safe(&format!("{name}.{short}")))
                        .join(format!("attempt-{}", a.attempt)),
                });
            }
        }
    }
    Ok((sweep, runs))
}

/// Writes the event files, `curves.json` and `curves.csv`; returns the number of files.
fn write(out: &Path, runs: &[Run]) -> Result<usize> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output directory {}", out.display()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for r in runs {
        let dir = out.join(&r.dir);
        tensorboard::write_run(&dir, &r.points, now)
            .with_context(|| format!("writing TensorBoard events in {}", dir.display()))?;
    }
    let json_path = out.join("curves.json");
    let json = serde_json::to_string_pretty(runs).context("encoding curves.json")?;
    std::fs::write(&json_path, json + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    let csv_path = out.join("curves.csv");
    std::fs::write(&csv_path, csv(runs))
        .with_context(|| format!("writing {}", csv_path.display()))?;
    Ok(runs.len() + 2)
}

/// One row per point; an absent value is empty, a non-finite one `NaN`, `inf` or `-inf`; names
/// quoted by the one CSV writer (`stilts_common::csv`).
fn csv(runs: &[Run]) -> String {
    let mut s = String::from(
        "job_key,stage,model,intermediate,target,seed,attempt,step,loss,lr,grad_norm,dev\n",
    );
    let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in runs {
        for p in &r.points {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                field(&r.job_key),
                field(r.stage),
                field(&r.model),
                field(&r.intermediate),
                field(&r.target),
                r.seed,
                r.attempt,
                p.step,
                cell(p.loss),
                cell(p.lr),
                cell(p.grad_norm),
                cell(p.dev)
            );
        }
    }
    s
}

/// A run name as one safe path component (names from grids are plain words already; a store
/// written by an older stilts may hold anything).
fn safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}
