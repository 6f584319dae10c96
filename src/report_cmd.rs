//! `stilts report`: the transfer matrix (Δ against the `none` baseline, grouped by domain), the
//! aligned-vs-not-aligned comparison, plots and result exports for one sweep.

use std::path::PathBuf;

use anyhow::{Context, Result};
use stilts_coordinator::report::export::{self, JobProvenance, Provenance};
use stilts_coordinator::report::{
    self, CellOutcome, CellState, ReportError, ReportInput, ResultValue,
};

use crate::cli::ReportArgs;
use crate::local_results::Session;

pub async fn run(args: ReportArgs) -> Result<()> {
    let mut session = Session::open(args.coordinator.as_deref(), &args.state.state_dir).await?;
    let fetched = fetch(&mut session, args.sweep.as_deref()).await;
    session.close().await;
    let (input, provenance) = fetched?;

    let catalog = crate::catalog::load(args.catalog.as_deref())?;
    let tasks = report::catalog_tasks(&catalog);
    let report = report::build(&input, &tasks);
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("report-{}", input.sweep)));
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

async fn fetch(session: &mut Session, sweep: Option<&str>) -> Result<(ReportInput, Provenance)> {
    let sweep = session.sweep_name(sweep).await?;
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
        .map(|c| {
            let state = CellState::parse(&c.state).unwrap_or(CellState::Blocked);
            CellOutcome::from_cell(c, state)
        })
        .collect();
    let results = rows.into_iter().map(ResultValue::from).collect();
    Ok((
        ReportInput {
            sweep,
            cells,
            results,
        },
        provenance,
    ))
}
