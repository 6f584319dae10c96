//! The generic readers of a user's own files: CSV (RFC 4180), TSV and JSON Lines, with the
//! layout's `columns` naming the text, pair and label columns (header names or JSON keys).
//! Classification labels must be in the task's `labels`; regression labels must be numbers.

use std::path::Path;

use super::{ReadCtx, csv, json_lines, lines};
use crate::catalog::{Columns, Head, ReaderKind};
use crate::error::TaskError;
use crate::example::{Dataset, Label, PairExample};

/// Reads a csv, tsv or jsonl file into sentence(-pair) examples.
pub fn read(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let Some(columns) = ctx.layout.columns.as_ref() else {
        return Err(TaskError::Unsupported {
            task: ctx.task.name.clone(),
            message: format!("layout `{}` has no `columns`", ctx.layout.name),
        });
    };
    let rows = match ctx.layout.reader {
        ReaderKind::Jsonl => json_rows(path, text, columns)?,
        ReaderKind::Tsv => {
            let records = lines(text)
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, l)| (n, l.split('\t').map(str::to_string).collect()))
                .collect();
            header_rows(path, records, columns)?
        }
        _ => header_rows(path, csv::parse(path, text)?, columns)?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let label = match &row.label {
            None => Label::None,
            Some(v) if ctx.task.head == Head::Regression => {
                Label::Score(v.trim().parse().map_err(|_| {
                    TaskError::format(path, row.line, format!("label {v:?} is not a number"))
                })?)
            }
            Some(v) => ctx.class(path, row.line, v.trim())?,
        };
        out.push(PairExample {
            id: format!("{}", out.len()),
            text_a: row.text,
            text_b: row.pair,
            label,
        });
    }
    Ok(Dataset::Pairs(out))
}

struct Row {
    line: usize,
    text: String,
    pair: Option<String>,
    label: Option<String>,
}

/// Records whose first one is the header. A file without the label column is unlabelled.
fn header_rows(
    path: &Path,
    records: Vec<(usize, Vec<String>)>,
    columns: &Columns,
) -> Result<Vec<Row>, TaskError> {
    let mut it = records.into_iter();
    let Some((header_line, header)) = it.next() else {
        return Ok(Vec::new());
    };
    let find = |name: &str| header.iter().position(|h| h.trim() == name);
    let need = |name: &str| {
        find(name).ok_or_else(|| {
            TaskError::format(
                path,
                header_line,
                format!(
                    "no column `{name}` in the header (columns: {})",
                    header.join(", ")
                ),
            )
        })
    };
    let text = need(&columns.text)?;
    let pair = columns.pair.as_deref().map(need).transpose()?;
    let label = columns.label.as_deref().and_then(find);
    let mut out = Vec::new();
    for (line, fields) in it {
        if fields.len() != header.len() {
            return Err(TaskError::format(
                path,
                line,
                format!("{} fields, the header has {}", fields.len(), header.len()),
            ));
        }
        out.push(Row {
            line,
            text: fields[text].clone(),
            pair: pair.map(|c| fields[c].clone()),
            label: label.map(|c| fields[c].clone()),
        });
    }
    Ok(out)
}

fn json_rows(path: &Path, text: &str, columns: &Columns) -> Result<Vec<Row>, TaskError> {
    let mut out = Vec::new();
    for (line, obj) in json_lines(path, text)? {
        let label = match columns.label.as_deref() {
            Some(key) if obj.contains_key(key) => Some(super::field(path, line, &obj, key)?),
            _ => None,
        };
        out.push(Row {
            line,
            text: super::field(path, line, &obj, &columns.text)?,
            pair: columns
                .pair
                .as_deref()
                .map(|k| super::field(path, line, &obj, k))
                .transpose()?,
            label,
        });
    }
    Ok(out)
}
