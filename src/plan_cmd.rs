//! `stilts plan grid.toml`: expand and validate without running.

use std::path::Path;

use anyhow::{Context, Result, bail};

pub fn run(grid: &Path) -> Result<String> {
    let text = std::fs::read_to_string(grid)
        .with_context(|| format!("cannot read grid file {}", grid.display()))?;
    let catalog = crate::catalog::load(None)?;
    let files = crate::catalog::grid_catalog_files(grid, &text);
    let files = |p: &str| files.get(p).cloned();
    let file = grid.display().to_string();
    let max = stilts_common::plan::MAX_CELLS;
    let digests = match crate::catalog::grid_with_tasks(grid, &text, &catalog) {
        Some((tasks, g)) => crate::data_digest::for_grid(&g, &tasks.catalog)?,
        None => Default::default(),
    };
    let plan =
        stilts_common::plan::plan_with_catalog(&file, &text, &catalog, &files, &digests, max);
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => bail!("{e}"),
    };
    crate::own_tasks::check(grid, &text, &catalog)?;
    let a = &plan.axes;
    Ok(format!(
        "sweep {}\naxes:            {} models × {} intermediate × {} targets × {} languages × {} seeds\n{}\n",
        plan.sweep,
        a.models.len(),
        a.intermediates.len(),
        a.targets.len(),
        a.languages.len(),
        a.seeds.len(),
        plan.summary()
    ))
}
