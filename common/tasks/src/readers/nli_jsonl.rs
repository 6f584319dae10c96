//! NLI in JSON lines: XNLI-1.0, MultiNLI/SNLI 1.0, jiant's MNLI, ANLI.

use std::path::Path;

use super::{ReadCtx, field, json_lines};
use crate::error::TaskError;
use crate::example::{Dataset, Label, PairExample};

/// XNLI-1.0 jsonl: all languages in one file; keeps `ctx.lang`.
pub fn read_xnli_jsonl(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, text)? {
        if field(path, n, &obj, "language")? != ctx.lang {
            continue;
        }
        out.push(PairExample {
            id: field(path, n, &obj, "pairID")?,
            text_a: field(path, n, &obj, "sentence1")?,
            text_b: Some(field(path, n, &obj, "sentence2")?),
            label: ctx.class(path, n, &field(path, n, &obj, "gold_label")?)?,
        });
    }
    Ok(Dataset::Pairs(out))
}

/// MultiNLI / SNLI 1.0 jsonl. Rows whose `gold_label` is `-` (no annotator majority) are
/// skipped, as GLUE and the SNLI paper do.
pub fn read_nli_jsonl(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, text)? {
        let gold = match obj.get("gold_label") {
            Some(_) => field(path, n, &obj, "gold_label")?,
            None => String::new(),
        };
        if gold == "-" {
            continue;
        }
        let label = if gold.is_empty() {
            Label::None
        } else {
            ctx.class(path, n, &gold)?
        };
        out.push(PairExample {
            id: field(path, n, &obj, "pairID").unwrap_or_else(|_| n.to_string()),
            text_a: field(path, n, &obj, "sentence1")?,
            text_b: Some(field(path, n, &obj, "sentence2")?),
            label,
        });
    }
    Ok(Dataset::Pairs(out))
}

/// jiant's MNLI jsonl: `premise`, `hypothesis`, `label`.
pub fn read_jiant(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, text)? {
        out.push(PairExample {
            id: n.to_string(),
            text_a: field(path, n, &obj, "premise")?,
            text_b: Some(field(path, n, &obj, "hypothesis")?),
            label: ctx.class(path, n, &field(path, n, &obj, "label")?)?,
        });
    }
    Ok(Dataset::Pairs(out))
}

/// ANLI: `uid`, `context`, `hypothesis`, `label` ∈ {e, n, c}.
pub fn read_anli(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, text)? {
        let short = field(path, n, &obj, "label")?;
        let long = match short.as_str() {
            "e" => "entailment",
            "n" => "neutral",
            "c" => "contradiction",
            other => {
                return Err(TaskError::format(
                    path,
                    n,
                    format!("unknown ANLI label `{other}` (expected e, n or c)"),
                ));
            }
        };
        out.push(PairExample {
            id: field(path, n, &obj, "uid")?,
            text_a: field(path, n, &obj, "context")?,
            text_b: Some(field(path, n, &obj, "hypothesis")?),
            label: ctx.class(path, n, long)?,
        });
    }
    Ok(Dataset::Pairs(out))
}
