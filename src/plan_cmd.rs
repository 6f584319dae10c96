//! `stilts plan grid.toml`: expand and validate without running.

use std::path::Path;

use anyhow::{Context, Result, bail};

pub fn run(grid: &Path) -> Result<String> {
    let text = std::fs::read_to_string(grid)
        .with_context(|| format!("cannot read grid file {}", grid.display()))?;
    let resolver = crate::catalog::language_resolver(None)?;
    let resolve = |task: &str| resolver(task);
    let file = grid.display().to_string();
    let plan = match stilts_common::plan::plan(&file, &text, Some(&resolve), None) {
        Ok(plan) => plan,
        Err(e) => bail!("{e}"),
    };
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
