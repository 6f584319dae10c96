//! Before `stilts run` or `stilts plan` submits or accepts a grid that brings its own tasks
//! (`[tasks.NAME]`, `catalog` files): every file those tasks' jobs will read is read here, where
//! the data is visible, so that a missing file or a label outside the task's label set is an
//! error naming the grid position and the data file and line, and nothing is submitted.
//! Built-in tasks are not read (their data is large and checked by its own tests).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Result, bail};
use stilts_common::grid::{Executor, Location};
use stilts_tasks::{Catalog, Split, TaskError, load};

use crate::data_digest::{data_root, grid_reads};

/// Reads the grid's own tasks' files; a grid that does not plan is left to the planner.
pub fn check(grid_path: &Path, text: &str, catalog: &Catalog) -> Result<()> {
    let file = grid_path.display().to_string();
    let Some((tasks, g)) = crate::catalog::grid_with_tasks(grid_path, text, catalog) else {
        return Ok(());
    };
    if tasks.own.is_empty() || matches!(g.executor, Executor::Command { .. }) {
        return Ok(());
    }
    let mut seen = BTreeSet::new();
    for r in grid_reads(&g, &tasks.catalog) {
        let task = r.task;
        if !tasks.own.contains_key(&task.name)
            || !seen.insert((task.name.clone(), r.split.as_str(), r.lang.clone()))
        {
            continue;
        }
        let root = data_root(&g, r.kind, &task.name);
        match load(task, r.split, &r.lang, &root) {
            Ok(_) => {}
            // Model selection falls back to the last model without an English dev split.
            Err(TaskError::NotFound { .. }) if r.split == Split::Dev => {}
            Err(e) => {
                let at = position(&file, text, &task.name);
                bail!("{at}: [tasks.{}]: {e}\n  nothing was submitted", task.name)
            }
        }
    }
    Ok(())
}

/// The position of `[tasks.NAME]` in the grid (line 1 when the task came from a catalog file).
fn position(file: &str, text: &str, task: &str) -> Location {
    let header = format!("[tasks.{task}]");
    let offset = text.find(&header).map_or(0, |i| i + "[tasks.".len());
    Location::at(file, text, offset)
}
