//! Raw results export: one row per (cell, metric), the grid axes as columns, the cell's state
//! (and why it failed), plus the provenance of the evaluate job that produced the value (job key,
//! code version, data version; the seed is an axis column). A cell without any result (failed,
//! cancelled, not finished, or succeeded without metrics) is one row with its state and no
//! metric, value or job key, so failures are never silently dropped. Written as CSV, JSON Lines
//! and Parquet.
//!
//! Parquet uses the `parquet` crate's own column writer and record reader, without arrow: the
//! schema is flat and small, and leaving arrow out keeps a dozen `arrow-*` crates out of the
//! coordinator's build. Pages are Snappy-compressed (pure Rust). Schema:
//!
//! ```text
//! message stilts_results {
//!   REQUIRED BYTE_ARRAY model (UTF8); REQUIRED BYTE_ARRAY intermediate (UTF8);
//!   REQUIRED BYTE_ARRAY target (UTF8); REQUIRED BYTE_ARRAY language (UTF8);
//!   REQUIRED INT64 seed (INTEGER(64,false)); REQUIRED BYTE_ARRAY state (UTF8);
//!   OPTIONAL BYTE_ARRAY reason (UTF8); OPTIONAL BYTE_ARRAY metric (UTF8);
//!   OPTIONAL DOUBLE value; OPTIONAL BYTE_ARRAY job_key (UTF8);
//!   OPTIONAL BYTE_ARRAY code_version (UTF8); OPTIONAL BYTE_ARRAY data_version (UTF8);
//! }
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::{Field, RowAccessor};
use parquet::schema::parser::parse_message_type;
use serde::{Deserialize, Serialize};

use super::csv::field;
use super::{ReportError, ReportInput, write_file};

const SCHEMA: &str = "message stilts_results {
  REQUIRED BYTE_ARRAY model (UTF8);
  REQUIRED BYTE_ARRAY intermediate (UTF8);
  REQUIRED BYTE_ARRAY target (UTF8);
  REQUIRED BYTE_ARRAY language (UTF8);
  REQUIRED INT64 seed (INTEGER(64,false));
  REQUIRED BYTE_ARRAY state (UTF8);
  OPTIONAL BYTE_ARRAY reason (UTF8);
  OPTIONAL BYTE_ARRAY metric (UTF8);
  OPTIONAL DOUBLE value;
  OPTIONAL BYTE_ARRAY job_key (UTF8);
  OPTIONAL BYTE_ARRAY code_version (UTF8);
  OPTIONAL BYTE_ARRAY data_version (UTF8);
}";

/// Rows per Parquet row group.
const ROW_GROUP: usize = 256 * 1024;

/// The versions a job ran with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProvenance {
    pub code_version: String,
    pub data_version: String,
}

/// Provenance by job key, filled by the caller (from the store's job records).
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub jobs: BTreeMap<String, JobProvenance>,
}

/// One exported row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRow {
    pub model: String,
    pub intermediate: String,
    pub target: String,
    pub language: String,
    pub seed: u64,
    /// The cell's state (`succeeded`, `failed`, `cancelled`, `running`, …); `succeeded` for a
    /// result whose cell the input does not list (results come from succeeded jobs only).
    pub state: String,
    /// Why the cell failed, when known.
    pub reason: Option<String>,
    /// `None` (with `value` and `job_key`) for a cell without results.
    pub metric: Option<String>,
    pub value: Option<f64>,
    pub job_key: Option<String>,
    /// `None` when the provenance does not know the job.
    pub code_version: Option<String>,
    pub data_version: Option<String>,
}

/// The column names, in file order.
pub const COLUMNS: [&str; 12] = [
    "model",
    "intermediate",
    "target",
    "language",
    "seed",
    "state",
    "reason",
    "metric",
    "value",
    "job_key",
    "code_version",
    "data_version",
];

/// The rows of `input`, sorted by axes then metric: one per result, and one per cell without
/// any result.
pub fn rows(input: &ReportInput, provenance: &Provenance) -> Vec<ExportRow> {
    type Axes<'a> = (&'a str, &'a str, &'a str, &'a str, u64);
    let cells: BTreeMap<Axes, &super::CellOutcome> = input
        .cells
        .iter()
        .map(|c| {
            let k = (
                c.model.as_str(),
                c.intermediate.as_str(),
                c.target.as_str(),
                c.language.as_str(),
                c.seed,
            );
            (k, c)
        })
        .collect();
    let mut with_results = std::collections::BTreeSet::new();
    let mut out: Vec<ExportRow> = input
        .results
        .iter()
        .map(|r| {
            let k = (
                r.model.as_str(),
                r.intermediate.as_str(),
                r.target.as_str(),
                r.language.as_str(),
                r.seed,
            );
            with_results.insert(k);
            let cell = cells.get(&k);
            let p = provenance.jobs.get(&r.job_key);
            ExportRow {
                model: r.model.clone(),
                intermediate: r.intermediate.clone(),
                target: r.target.clone(),
                language: r.language.clone(),
                seed: r.seed,
                state: cell.map_or("succeeded", |c| c.state.as_str()).to_string(),
                reason: cell.and_then(|c| c.reason.clone()),
                metric: Some(r.metric.clone()),
                value: Some(r.value),
                job_key: Some(r.job_key.clone()),
                code_version: p.map(|p| p.code_version.clone()),
                data_version: p.map(|p| p.data_version.clone()),
            }
        })
        .collect();
    for (k, c) in &cells {
        if with_results.contains(k) {
            continue;
        }
        out.push(ExportRow {
            model: c.model.clone(),
            intermediate: c.intermediate.clone(),
            target: c.target.clone(),
            language: c.language.clone(),
            seed: c.seed,
            state: c.state.as_str().to_string(),
            reason: c.reason.clone(),
            metric: None,
            value: None,
            job_key: None,
            code_version: None,
            data_version: None,
        });
    }
    out.sort_by(|a, b| {
        (
            &a.model,
            &a.intermediate,
            &a.target,
            &a.language,
            a.seed,
            &a.metric,
        )
            .cmp(&(
                &b.model,
                &b.intermediate,
                &b.target,
                &b.language,
                b.seed,
                &b.metric,
            ))
    });
    out
}

/// CSV with a header; absent provenance is an empty field; values in Rust's shortest
/// round-trip form.
pub fn to_csv(rows: &[ExportRow]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        let fields = [
            field(&r.model),
            field(&r.intermediate),
            field(&r.target),
            field(&r.language),
            r.seed.to_string(),
            field(&r.state),
            r.reason.as_deref().map(field).unwrap_or_default(),
            r.metric.as_deref().map(field).unwrap_or_default(),
            r.value.map(|v| v.to_string()).unwrap_or_default(),
            r.job_key.as_deref().map(field).unwrap_or_default(),
            r.code_version.as_deref().map(field).unwrap_or_default(),
            r.data_version.as_deref().map(field).unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// One JSON object per line.
pub fn to_jsonl(rows: &[ExportRow]) -> Result<String, ReportError> {
    let mut out = String::new();
    for r in rows {
        out.push_str(&serde_json::to_string(r)?);
        out.push('\n');
    }
    Ok(out)
}

/// Writes `rows` as a Parquet file.
pub fn write_parquet(path: &Path, rows: &[ExportRow]) -> Result<(), ReportError> {
    let file = File::create(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let schema = Arc::new(parse_message_type(SCHEMA)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(file, schema, props)?;
    for chunk in rows.chunks(ROW_GROUP) {
        let mut group = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut col) = group.next_column()? {
            let strings = |f: fn(&ExportRow) -> &str| -> Vec<ByteArray> {
                chunk.iter().map(|r| ByteArray::from(f(r))).collect()
            };
            match COLUMNS[index] {
                "seed" => {
                    // UINT64 is stored in INT64's bits.
                    let v: Vec<i64> = chunk.iter().map(|r| r.seed as i64).collect();
                    col.typed::<Int64Type>().write_batch(&v, None, None)?;
                }
                "value" => {
                    let v: Vec<f64> = chunk.iter().filter_map(|r| r.value).collect();
                    let defs: Vec<i16> = chunk.iter().map(|r| r.value.is_some() as i16).collect();
                    col.typed::<DoubleType>()
                        .write_batch(&v, Some(&defs), None)?;
                }
                name @ ("reason" | "metric" | "job_key" | "code_version" | "data_version") => {
                    let get = |r: &ExportRow| -> Option<ByteArray> {
                        let v = match name {
                            "reason" => &r.reason,
                            "metric" => &r.metric,
                            "job_key" => &r.job_key,
                            "code_version" => &r.code_version,
                            _ => &r.data_version,
                        };
                        v.as_deref().map(ByteArray::from)
                    };
                    let values: Vec<ByteArray> = chunk.iter().filter_map(get).collect();
                    let defs: Vec<i16> = chunk.iter().map(|r| get(r).is_some() as i16).collect();
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, Some(&defs), None)?;
                }
                name => {
                    let f: fn(&ExportRow) -> &str = match name {
                        "model" => |r| &r.model,
                        "intermediate" => |r| &r.intermediate,
                        "target" => |r| &r.target,
                        "language" => |r| &r.language,
                        _ => |r| &r.state,
                    };
                    col.typed::<ByteArrayType>()
                        .write_batch(&strings(f), None, None)?;
                }
            }
            col.close()?;
            index += 1;
        }
        group.close()?;
    }
    writer.close()?;
    Ok(())
}

/// Reads a file written by [`write_parquet`].
pub fn read_parquet(path: &Path) -> Result<Vec<ExportRow>, ReportError> {
    let file = File::open(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file)?;
    let mut out = Vec::new();
    for row in reader.get_row_iter(None)? {
        let row = row?;
        let optional = |i: usize| -> Option<String> {
            match row.get_column_iter().nth(i).map(|(_, f)| f) {
                Some(Field::Str(s)) => Some(s.clone()),
                _ => None,
            }
        };
        let value = match row.get_column_iter().nth(8).map(|(_, f)| f) {
            Some(Field::Double(v)) => Some(*v),
            _ => None,
        };
        out.push(ExportRow {
            model: row.get_string(0)?.clone(),
            intermediate: row.get_string(1)?.clone(),
            target: row.get_string(2)?.clone(),
            language: row.get_string(3)?.clone(),
            seed: row.get_ulong(4)?,
            state: row.get_string(5)?.clone(),
            reason: optional(6),
            metric: optional(7),
            value,
            job_key: optional(9),
            code_version: optional(10),
            data_version: optional(11),
        });
    }
    Ok(out)
}

/// Writes `results.csv`, `results.jsonl` and `results.parquet` into `dir` (created if needed)
/// and returns their paths.
pub fn write_results(
    dir: &Path,
    input: &ReportInput,
    provenance: &Provenance,
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let rows = rows(input, provenance);
    let csv = dir.join("results.csv");
    write_file(&csv, to_csv(&rows).as_bytes())?;
    let jsonl = dir.join("results.jsonl");
    write_file(&jsonl, to_jsonl(&rows)?.as_bytes())?;
    let parquet = dir.join("results.parquet");
    write_parquet(&parquet, &rows)?;
    Ok(vec![csv, jsonl, parquet])
}
