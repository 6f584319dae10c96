//! The transfer report: does the domain alignment between intermediate and target task change
//! zero-shot cross-lingual transfer?
//!
//! Input is plain data ([`ReportInput`]: the sweep's cells with their derived state and its result
//! rows, one per cell × numeric metric) plus a task lookup ([`TaskInfo`]: domain label and score
//! rule; [`catalog_tasks`] reads it from the `stilts-tasks` catalog and falls back for names the
//! catalog does not know). [`build`] computes a [`Report`]; [`Report::write_all`] writes Markdown,
//! CSV, JSON, SVG and PNG files; [`export::write_results`] exports the raw rows with provenance as
//! CSV, JSON Lines and Parquet.
//!
//! | file | holds |
//! |---|---|
//! | `tasks.rs` | [`TaskInfo`], [`ScoreRule`], the catalog lookup and its fallback |
//! | `entry.rs` | [`Entry`] (mean ± sd with a t-interval over seeds, or gap counts), [`Scope`], [`Gaps`] |
//! | `student_t.rs` | Student's t CDF and quantiles (exact for integer df) |
//! | `grid.rs` | the (seed, language) units of each (model, target) and their states |
//! | `matrix.rs` | task scores per scope, Δ against `none` paired by seed, transfer gap, QA EM/F1, per-language tables |
//! | `alignment.rs` | aligned vs not aligned: within-target contrasts paired by seed, targets equally weighted (method and why there) |
//! | `markdown.rs`, `csv.rs`, `json.rs` | renderers |
//! | `plots.rs` | Δ heatmap per model, per-language bar chart per (model, target); SVG + PNG |
//! | `export.rs` | results as CSV, JSON Lines and Parquet with provenance columns |
//! | `tensorboard.rs` | training curves as TensorBoard event files (TFRecord of `Event` protobufs) |
//!
//! Numbers are used as the workers report them (per-language metrics ×100, XTREME-R.md §2.2).

mod alignment;
pub mod compute;
#[cfg(test)]
mod coverage_tests;
pub mod csv;
mod entry;
pub mod export;
mod grid;
pub mod json;
pub mod markdown;
mod matrix;
pub mod plots;
pub mod student_t;
mod tasks;
pub mod tensorboard;

use std::path::{Path, PathBuf};

use serde::Serialize;
use stilts_common::sweep_status::{CellRow, ResultRow};

pub use alignment::{
    AlignmentSummary, CellRef, Excluded, GroupStat, IntervalOptions, TargetContrast,
};
pub use entry::MIN_SEEDS_FOR_INTERVAL;
pub use matrix::{
    Entry, Gaps, LanguageRow, LanguageTable, MatrixCell, MetricEntry, ModelMatrix, RowInfo, Scope,
    ScopePair, SeedScore, Summary, TargetSummary,
};
pub use tasks::{ScoreRule, TaskInfo, UNKNOWN_DOMAIN, catalog_tasks};

/// The intermediate task name of the baseline chain (base model → target → evaluate).
pub const BASELINE: &str = "none";

pub use stilts_common::cell_state::CellState;

/// One grid point and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct CellOutcome {
    pub model: String,
    pub intermediate: String,
    pub target: String,
    pub language: String,
    pub seed: u64,
    pub state: CellState,
    /// Why the cell failed (the failed job's kind and last failure), when known.
    pub reason: Option<String>,
}

/// One numeric metric of one cell (a `ResultRow`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultValue {
    pub model: String,
    pub intermediate: String,
    pub target: String,
    pub language: String,
    pub seed: u64,
    pub metric: String,
    pub value: f64,
    /// The evaluate job that produced it.
    pub job_key: String,
}

impl From<CellRow> for CellOutcome {
    fn from(c: CellRow) -> Self {
        CellOutcome {
            reason: c.reason,
            model: c.model,
            intermediate: c.intermediate,
            target: c.target,
            language: c.language,
            seed: c.seed,
            state: c.state,
        }
    }
}

impl From<ResultRow> for ResultValue {
    fn from(r: ResultRow) -> Self {
        ResultValue {
            model: r.model,
            intermediate: r.intermediate,
            target: r.target,
            language: r.language,
            seed: r.seed,
            metric: r.metric,
            value: r.value,
            job_key: r.job_key,
        }
    }
}

/// Everything the report is computed from.
///
/// The expected grid is the union of `cells` and the cells that `results` mention: for each
/// (model, target), every intermediate × seed × language seen anywhere for that (model, target)
/// is expected, so a seed or language absent for one intermediate counts as missing there.
#[derive(Debug, Clone, Default)]
pub struct ReportInput {
    /// The sweep's name (titles only; may be empty).
    pub sweep: String,
    pub cells: Vec<CellOutcome>,
    pub results: Vec<ResultValue>,
}

/// The computed report; [`Report::markdown`], [`Report::write_all`] render it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub sweep: String,
    /// Targets seen in the input, with their domain and the score rule used.
    pub targets: Vec<TargetSummary>,
    /// One transfer matrix per model, models sorted by name.
    pub models: Vec<ModelMatrix>,
    /// Things the reader should know (unresolved score metrics, unknown states, …).
    pub warnings: Vec<String>,
    /// The settings of every interval (t-intervals over seeds).
    pub interval: IntervalOptions,
    /// What the sweep's jobs cost and what its plan saved, when the caller knows
    /// (`SweepStatus.compute`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute: Option<compute::Compute>,
}

/// Options of [`build_with`]; [`build`] uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    pub interval: IntervalOptions,
}

/// Errors of writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot draw {path}: {message}")]
    Plot { path: PathBuf, message: String },
    /// No font for the PNG plots; everything else (SVG included) was written.
    #[error(
        "PNG plots skipped: {reason}; install the Debian package `fonts-dejavu-core` or set \
         STILTS_REPORT_FONT to a TrueType font (the other {} files were written)",
        .written.len()
    )]
    PngSkipped {
        reason: String,
        written: Vec<PathBuf>,
    },
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// Environment variable naming the TTF used for text in PNG plots.
pub const FONT_ENV: &str = "STILTS_REPORT_FONT";

/// Computes the report with default options (95% intervals).
pub fn build(input: &ReportInput, tasks: &dyn Fn(&str) -> TaskInfo) -> Report {
    build_with(input, tasks, &ReportOptions::default())
}

/// Computes the report.
pub fn build_with(
    input: &ReportInput,
    tasks: &dyn Fn(&str) -> TaskInfo,
    options: &ReportOptions,
) -> Report {
    let (targets, models, warnings) = matrix::compute(input, tasks, &options.interval);
    Report {
        sweep: input.sweep.clone(),
        targets,
        models,
        warnings,
        interval: options.interval.clone(),
        compute: None,
    }
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        markdown::render(self)
    }

    /// The long-form CSV of every matrix entry.
    pub fn csv(&self) -> String {
        csv::render(self)
    }

    /// The whole report as pretty JSON.
    pub fn json(&self) -> Result<String, ReportError> {
        json::render(self)
    }

    /// Writes `report.md`, `report.csv`, `report.json` and the plots (SVG and PNG) into `dir`
    /// (created if needed) and returns the paths written. When no font is available for the PNG
    /// plots, everything else is still written and [`ReportError::PngSkipped`] lists it.
    pub fn write_all(&self, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut written = Vec::new();
        for (name, text) in [
            ("report.md", self.markdown()),
            ("report.csv", self.csv()),
            ("report.json", self.json()?),
        ] {
            let path = dir.join(name);
            write_file(&path, text.as_bytes())?;
            written.push(path);
        }
        let plots = plots::write_plots(self, dir)?;
        written.extend(plots.written);
        match plots.png_skipped {
            None => Ok(written),
            Some(reason) => Err(ReportError::PngSkipped { reason, written }),
        }
    }
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A file-name-safe form of a model or task name.
pub(crate) fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
