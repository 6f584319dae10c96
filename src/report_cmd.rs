//! `stilts report`: the transfer matrix (Δ against the `none` baseline, grouped by domain), the
//! aligned-vs-not-aligned comparison, plots and result exports for one sweep.

use std::path::PathBuf;

use anyhow::{Context, Result};
use stilts_coordinator::report::export::{self, JobProvenance, Provenance};
use stilts_coordinator::report::{self, CellOutcome, ReportError, ReportInput, ResultValue};

use crate::cli::ReportArgs;
use crate::local_results::Session;
use stilts_common::sweep_status::{CellRow, ComputeSummary, ResultRow};

pub async fn run(args: ReportArgs) -> Result<()> {
    let mut session = Session::open(args.coordinator.as_deref(), &args.state.state_dir).await?;
    let fetched = fetch(&mut session, args.sweep.as_deref()).await;
    session.close().await;
    let (input, provenance, own_tasks, compute) = fetched?;

    // The process's catalog plus the tasks the sweep's grid brought, as its jobs carry them.
    let mut catalog = crate::catalog::load(args.catalog.as_deref())?;
    for task in own_tasks {
        catalog.insert(task);
    }
    let tasks = report::catalog_tasks(&catalog);
    let mut report = report::build(&input, &tasks);
    report.compute = compute;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("report-{}", file_name_part(&input.sweep))));
    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create report directory {}", out.display()))?;
    let mut written = match report.write_all(&out) {
        Ok(files) => files,
        Err(ReportError::PngSkipped { reason, written }) => {
            eprintln!("warning: PNG plots skipped ({reason}); SVG plots were written");
            written
        }
        Err(e) => return Err(e).context("writing the report"),
    };
    written
        .extend(export::write_results(&out, &input, &provenance).context("exporting the results")?);
    print!("{}", report.markdown());
    eprintln!("wrote {} files to {}", written.len(), out.display());
    Ok(())
}

type Fetched = (
    ReportInput,
    Provenance,
    Vec<stilts_tasks::TaskDef>,
    Option<report::compute::Compute>,
);

async fn fetch(session: &mut Session, sweep: Option<&str>) -> Result<Fetched> {
    let sweep = session.sweep_name(sweep).await?;
    let status = crate::client::status(&mut session.client, &sweep).await?;
    let own_tasks = own_tasks(&status.tasks_json)
        .with_context(|| format!("reading the task definitions of sweep {sweep:?}"))?;
    let cells = crate::client::all_cells(&mut session.client, &sweep).await?;
    let rows = crate::client::all_results(&mut session.client, &sweep).await?;
    let mut provenance = Provenance::default();
    for r in &rows {
        provenance
            .jobs
            .entry(r.job_key.clone())
            .or_insert_with(|| JobProvenance {
                code_version: r.code_version.clone(),
                data_version: r.data_version.clone(),
            });
    }
    let cells = cells
        .into_iter()
        .map(|c| CellOutcome::from(CellRow::from(c)))
        .collect();
    let results = rows
        .into_iter()
        .map(|r| ResultValue::from(ResultRow::from(r)))
        .collect();
    Ok((
        ReportInput {
            sweep,
            cells,
            results,
        },
        provenance,
        own_tasks,
        status
            .compute
            .as_ref()
            .map(|c| report::compute::Compute::from(&ComputeSummary::from(c))),
    ))
}

/// The definitions in `SweepStatus::tasks_json` (empty: none).
fn own_tasks(json: &str) -> Result<Vec<stilts_tasks::TaskDef>> {
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let defs: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_str(json)?;
    defs.iter()
        .map(|(name, def)| Ok(stilts_tasks::TaskDef::from_json(name, def)?))
        .collect()
}

/// A sweep name as one safe path component: grids refuse unsafe names, but a store written by
/// an older stilts may hold one (`x/../../tmp`); the default report directory must stay in the
/// working directory whatever the name.
fn file_name_part(sweep: &str) -> String {
    sweep
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_report_directory_stays_in_the_working_directory() {
        assert_eq!(
            super::file_name_part("x/../../../tmp/e"),
            "x__________tmp_e"
        );
        assert_eq!(super::file_name_part("demo-1"), "demo-1");
    }
}
