//! Before `stilts run` or `stilts plan` submits or accepts a grid that brings its own tasks
//! (`[tasks.NAME]`, `catalog` files): every file those tasks' jobs will read is read here, where
//! the data is visible, so that a missing file or a label outside the task's label set is an
//! error naming the grid position and the data file and line, and nothing is submitted.
//! Built-in tasks are not read (their data is large and checked by its own tests).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use stilts_common::grid::{self, Executor, Grid, Location, NO_INTERMEDIATE};
use stilts_common::job::StageKind;
use stilts_tasks::{Catalog, Split, TaskDef, TaskError, load};

/// Reads the grid's own tasks' files; a grid that does not plan is left to the planner.
pub fn check(grid_path: &Path, text: &str, catalog: &Catalog) -> Result<()> {
    let file = grid_path.display().to_string();
    let files = crate::catalog::grid_catalog_files(grid_path, text);
    let files = |p: &str| files.get(p).cloned();
    let Ok(tasks) = grid::grid_catalog(&file, text, catalog, &files) else {
        return Ok(());
    };
    if tasks.own.is_empty() {
        return Ok(());
    }
    let merged = &tasks.catalog;
    let resolve = |t: &str| merged.get(t).map(|d| d.languages.clone());
    let known = |t: &str| merged.get(t).is_some();
    let Ok(g) = grid::load(&file, text, Some(&resolve), Some(&known)) else {
        return Ok(());
    };
    if matches!(g.executor, Executor::Command { .. }) {
        return Ok(());
    }
    for (task, split, lang, kind) in reads(&g, merged) {
        if !tasks.own.contains_key(&task.name) {
            continue;
        }
        let root = data_root(&g, kind, &task.name);
        match load(task, split, &lang, &root) {
            Ok(_) => {}
            // Model selection falls back to the last model without an English dev split.
            Err(TaskError::NotFound { .. }) if split == Split::Dev => {}
            Err(e) => {
                let at = position(&file, text, &task.name);
                bail!("{at}: [tasks.{}]: {e}\n  nothing was submitted", task.name)
            }
        }
    }
    Ok(())
}

/// (task, split, language, stage kind) of every read the grid's jobs make.
fn reads<'c>(g: &Grid, catalog: &'c Catalog) -> Vec<(&'c TaskDef, Split, String, StageKind)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut add = |t: &'c TaskDef, split: Split, lang: &str, kind: StageKind| {
        if seen.insert((t.name.clone(), split.as_str(), lang.to_string())) {
            out.push((t, split, lang.to_string(), kind));
        }
    };
    for name in g.intermediates.iter().filter(|i| *i != NO_INTERMEDIATE) {
        if let Some(t) = catalog.get(name) {
            add(t, Split::Train, "en", StageKind::Intermediate);
            add(t, Split::Dev, "en", StageKind::Intermediate);
        }
    }
    for target in &g.targets {
        let Some(t) = catalog.get(&target.task) else {
            continue;
        };
        let phases: Vec<&TaskDef> = if t.english_train.is_empty() {
            vec![t]
        } else {
            t.english_train
                .iter()
                .filter_map(|n| catalog.get(n))
                .collect()
        };
        for p in phases {
            add(p, Split::Train, "en", StageKind::Target);
        }
        add(t, Split::Dev, "en", StageKind::Target);
        for lang in &target.languages {
            add(t, Split::Test, lang, StageKind::Evaluate);
        }
    }
    out
}

/// Where the trainer will look: the recipe's `data_dir`, else `$STILTS_DATA_DIR`, else `data`
/// (as `BurnExecutor::data_root`).
fn data_root(g: &Grid, kind: StageKind, task: &str) -> PathBuf {
    g.recipe
        .resolve(kind, task)
        .get("data_dir")
        .and_then(|v| v.as_str())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("STILTS_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// The position of `[tasks.NAME]` in the grid (line 1 when the task came from a catalog file).
fn position(file: &str, text: &str, task: &str) -> Location {
    let header = format!("[tasks.{task}]");
    let offset = text.find(&header).map_or(0, |i| i + "[tasks.".len());
    Location::at(file, text, offset)
}
