//! The task catalog as the binary uses it: loaded once per process and handed to the planner,
//! the coordinator (dashboard, report) and the executors; the files a grid's `catalog = [...]`
//! names; `stilts tasks` and `stilts score`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use stilts_tasks::catalog::Catalog;

/// Built-in catalog, plus the user's task file when given.
pub fn load(extra: Option<&Path>) -> Result<Catalog> {
    match extra {
        Some(path) => Catalog::with_user_file(path)
            .with_context(|| format!("loading task catalog {}", path.display())),
        None => Ok(Catalog::builtin()),
    }
}

/// The text of every file a grid's `catalog = [...]` names, by the path as written there, read
/// relative to the grid file's folder. A file that cannot be read is left out: the planner
/// then reports it at its position in the grid.
pub fn grid_catalog_files(grid: &Path, text: &str) -> HashMap<String, String> {
    let dir = grid.parent().unwrap_or(Path::new("."));
    stilts_common::grid::catalog_paths(text)
        .into_iter()
        .filter_map(|p| {
            let contents = std::fs::read_to_string(dir.join(&p)).ok()?;
            Some((p, contents))
        })
        .collect()
}

/// The grid with the tasks it may name (the process's catalog, its `catalog` files and its own
/// `[tasks.NAME]`), loaded as the planner will; `None` when it does not load (the planner then
/// reports why, at its position).
pub fn grid_with_tasks(
    grid: &Path,
    text: &str,
    catalog: &Catalog,
) -> Option<(stilts_common::grid::GridCatalog, stilts_common::grid::Grid)> {
    let file = grid.display().to_string();
    let files = grid_catalog_files(grid, text);
    let files = |p: &str| files.get(p).cloned();
    let tasks = stilts_common::grid::grid_catalog(&file, text, catalog, &files).ok()?;
    let merged = &tasks.catalog;
    let resolve = |t: &str| merged.get(t).map(|d| d.languages.clone());
    let known = |t: &str| merged.get(t).is_some();
    let g = stilts_common::grid::load(&file, text, Some(&resolve), Some(&known)).ok()?;
    Some((tasks, g))
}

/// `stilts tasks`: one line per task.
pub fn list(extra: Option<&Path>) -> Result<String> {
    let catalog = load(extra)?;
    let mut rows =
        vec![["task", "role", "domain", "head", "metric", "languages"].map(String::from)];
    for t in catalog.tasks() {
        let langs = if t.languages.len() > 6 {
            format!(
                "{} ({})",
                t.languages[..6].join(" ") + " …",
                t.languages.len()
            )
        } else {
            t.languages.join(" ")
        };
        rows.push([
            t.name.clone(),
            serde_name(&t.role),
            t.domain.clone(),
            serde_name(&t.head),
            serde_name(&t.metric),
            langs,
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}", w = *w))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    let mixtures: Vec<_> = catalog.tasks().filter(|t| !t.mixture.is_empty()).collect();
    if !mixtures.is_empty() {
        out.push_str("\nmixtures (multi-task dual encoders; batches drawn by weight):\n");
    }
    for t in mixtures {
        let parts: Vec<String> = t
            .mixture
            .iter()
            .map(|c| match &c.label {
                Some(l) => format!("{} [{l}] ×{}", c.task, c.weight),
                None => format!("{} ×{}", c.task, c.weight),
            })
            .collect();
        out.push_str(&format!("  {} = {}\n", t.name, parts.join(" + ")));
    }
    Ok(out)
}

/// The name a catalog enum has in catalog.toml (`multiple_choice`, `map_at_20`, …).
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// `stilts score`: the official keys ×100 as one JSON object; warnings (counted, like the
/// official scripts' messages) go to stderr.
pub fn score(args: &crate::cli::ScoreArgs) -> Result<String> {
    let catalog = load(args.catalog.as_deref())?;
    let scored = stilts_tasks::score_checked(
        &catalog,
        &args.task,
        &args.lang,
        &args.predictions,
        &args.gold,
    )?;
    for w in &scored.warnings {
        eprintln!("warning: {w}");
    }
    Ok(serde_json::to_string(&scored.metrics)?)
}
