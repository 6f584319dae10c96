//! Raw results export: one row per (cell, metric), the grid axes as columns, plus the
//! provenance of the evaluate job that produced the value (job key, code version, data version;
//! the seed is an axis column). Written as CSV, JSON Lines and Parquet.
//!
//! Parquet uses the `parquet` crate's own column writer and record reader, without arrow: the
//! schema is flat and small, and leaving arrow out keeps a dozen `arrow-*` crates out of the
//! coordinator's build. Pages are Snappy-compressed (pure Rust). Schema:
//!
//! ```text
//! message stilts_results {
//!   REQUIRED BYTE_ARRAY model (UTF8); REQUIRED BYTE_ARRAY intermediate (UTF8);
//!   REQUIRED BYTE_ARRAY target (UTF8); REQUIRED BYTE_ARRAY language (UTF8);
//!   REQUIRED INT64 seed (INTEGER(64,false)); REQUIRED BYTE_ARRAY metric (UTF8);
//!   REQUIRED DOUBLE value; REQUIRED BYTE_ARRAY job_key (UTF8);
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
  REQUIRED BYTE_ARRAY metric (UTF8);
  REQUIRED DOUBLE value;
  REQUIRED BYTE_ARRAY job_key (UTF8);
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
    pub metric: String,
    pub value: f64,
    pub job_key: String,
    /// `None` when the provenance does not know the job.
    pub code_version: Option<String>,
    pub data_version: Option<String>,
}

/// The column names, in file order.
pub const COLUMNS: [&str; 10] = [
    "model",
    "intermediate",
    "target",
    "language",
    "seed",
    "metric",
    "value",
    "job_key",
    "code_version",
    "data_version",
];

/// The rows of `input`, sorted by axes then metric.
pub fn rows(input: &ReportInput, provenance: &Provenance) -> Vec<ExportRow> {
    let mut out: Vec<ExportRow> = input
        .results
        .iter()
        .map(|r| {
            let p = provenance.jobs.get(&r.job_key);
            ExportRow {
                model: r.model.clone(),
                intermediate: r.intermediate.clone(),
                target: r.target.clone(),
                language: r.language.clone(),
                seed: r.seed,
                metric: r.metric.clone(),
                value: r.value,
                job_key: r.job_key.clone(),
                code_version: p.map(|p| p.code_version.clone()),
                data_version: p.map(|p| p.data_version.clone()),
            }
        })
        .collect();
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
            field(&r.metric),
            r.value.to_string(),
            field(&r.job_key),
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
                    let v: Vec<f64> = chunk.iter().map(|r| r.value).collect();
                    col.typed::<DoubleType>().write_batch(&v, None, None)?;
                }
                name @ ("code_version" | "data_version") => {
                    let get = |r: &ExportRow| -> Option<ByteArray> {
                        let v = if name == "code_version" {
                            &r.code_version
                        } else {
                            &r.data_version
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
                        "metric" => |r| &r.metric,
                        _ => |r| &r.job_key,
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
        out.push(ExportRow {
            model: row.get_string(0)?.clone(),
            intermediate: row.get_string(1)?.clone(),
            target: row.get_string(2)?.clone(),
            language: row.get_string(3)?.clone(),
            seed: row.get_ulong(4)?,
            metric: row.get_string(5)?.clone(),
            value: row.get_double(6)?,
            job_key: row.get_string(7)?.clone(),
            code_version: optional(8),
            data_version: optional(9),
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
