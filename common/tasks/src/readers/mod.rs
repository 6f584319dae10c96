//! Dataset readers, one module per file family. Every reader returns a typed [`Dataset`] and
//! reports malformed input as [`TaskError::Format`] with file and 1-based line.

mod choice;
mod columns;
mod conllu;
mod csv;
mod imdb;
mod nli_jsonl;
mod retrieval;
mod squad;
mod tagging;
mod tsv;

use std::path::{Path, PathBuf};

use crate::catalog::{Layout, ReaderKind, TaskDef};
use crate::error::TaskError;
use crate::example::{Dataset, Label};
use crate::load::Split;

pub use retrieval::{MewsliMention, read_mewslix_mentions};
pub(crate) use squad::line_of_string;

/// What a reader knows about the request.
#[derive(Debug, Clone, Copy)]
pub struct ReadCtx<'a> {
    pub task: &'a TaskDef,
    pub lang: &'a str,
    pub split: Split,
    pub layout: &'a Layout,
}

impl ReadCtx<'_> {
    /// Maps a gold label string to its class index; unknown labels are errors.
    pub(crate) fn class(&self, path: &Path, line: usize, label: &str) -> Result<Label, TaskError> {
        self.task
            .label_index(label)
            .map(Label::Class)
            .ok_or_else(|| {
                TaskError::format(
                    path,
                    line,
                    format!(
                        "unknown label `{label}` for task `{}` (labels: {})",
                        self.task.name,
                        self.task.labels.join(", ")
                    ),
                )
            })
    }
}

/// Reads the located files (several are concatenated, e.g. all UD treebanks of a language).
pub fn read_files(ctx: &ReadCtx<'_>, files: &[PathBuf]) -> Result<Dataset, TaskError> {
    let mut out: Option<Dataset> = None;
    for file in files {
        let part = read_path(ctx, file)?;
        out = Some(match out {
            None => part,
            Some(prev) => concat(prev, part, file)?,
        });
    }
    out.ok_or_else(|| TaskError::Unsupported {
        task: ctx.task.name.clone(),
        message: "no files to read".into(),
    })
}

/// Reads one file or folder with the layout's reader.
pub fn read_path(ctx: &ReadCtx<'_>, path: &Path) -> Result<Dataset, TaskError> {
    match ctx.layout.reader {
        ReaderKind::ImdbDir => imdb::read(ctx, path),
        ReaderKind::TatoebaLaser => retrieval::read_tatoeba(path),
        ReaderKind::LareqaJson => retrieval::read_lareqa(ctx, path),
        ReaderKind::MewslixJsonl => retrieval::read_mewslix(ctx, path),
        _ => {
            let text = read_to_string(path)?;
            read_text(ctx, path, &text)
        }
    }
}

/// Reads file contents already in memory (`path` only names it in errors).
pub fn read_text(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    use ReaderKind as R;
    match ctx.layout.reader {
        R::XtremePairTsv => tsv::read_xtreme_pairs(ctx, path, text),
        R::XtremeSingleTsv => tsv::read_xtreme_single(ctx, path, text),
        R::XnliTsv => tsv::read_xnli(ctx, path, text),
        R::XnliMtTsv => tsv::read_xnli_mt(ctx, path, text),
        R::PawsxTsv => tsv::read_pawsx(ctx, path, text),
        R::GlueTsv => tsv::read_glue(ctx, path, text),
        R::XnliJsonl => nli_jsonl::read_xnli_jsonl(ctx, path, text),
        R::NliJsonl => nli_jsonl::read_nli_jsonl(ctx, path, text),
        R::JiantNliJsonl => nli_jsonl::read_jiant(ctx, path, text),
        R::AnliJsonl => nli_jsonl::read_anli(ctx, path, text),
        R::CopaJsonl => choice::read_copa(ctx, path, text),
        R::SiqaJsonl => choice::read_siqa(ctx, path, text),
        R::HellaswagJsonl => choice::read_hellaswag(ctx, path, text),
        R::CosmosqaCsv => choice::read_cosmosqa(ctx, path, text),
        R::CommonsenseqaJsonl => choice::read_commonsenseqa(ctx, path, text),
        R::SquadJson => squad::read_squad(ctx.lang, path, text, None),
        R::TydiqaCombinedJson => squad::read_tydiqa_combined(ctx.lang, path, text),
        R::Conllu => conllu::read_as_tagging(ctx.lang, path, text, &ctx.task.labels),
        R::XtremeTagTsv => tagging::read_xtreme_tags(path, text, &ctx.task.labels),
        R::PanxOriginal => tagging::read_panx_original(path, text, &ctx.task.labels),
        R::Csv | R::Tsv | R::Jsonl => columns::read(ctx, path, text),
        R::ImdbDir | R::TatoebaLaser | R::LareqaJson | R::MewslixJsonl => {
            Err(TaskError::Unsupported {
                task: ctx.task.name.clone(),
                message: format!("reader {:?} reads folders, not text", ctx.layout.reader),
            })
        }
    }
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, TaskError> {
    let bytes = std::fs::read(path).map_err(|e| TaskError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        TaskError::format(path, line, "invalid UTF-8")
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// Lines with their 1-based numbers, `\r\n` and `\n` endings removed.
/// The empty piece after a final newline is not a line.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .enumerate()
        .filter(move |_| !text.is_empty())
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

/// A JSON object with the line it was read from.
pub(crate) type JsonRow = (usize, serde_json::Map<String, serde_json::Value>);

/// Parses every non-empty line as a JSON object.
pub(crate) fn json_lines(path: &Path, text: &str) -> Result<Vec<JsonRow>, TaskError> {
    let mut out = Vec::new();
    for (n, line) in lines(text) {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| TaskError::format(path, n, format!("invalid JSON: {e}")))?;
        match value {
            serde_json::Value::Object(map) => out.push((n, map)),
            _ => return Err(TaskError::format(path, n, "expected a JSON object")),
        }
    }
    Ok(out)
}

/// A string field of a JSON object (numbers are accepted and printed).
pub(crate) fn field(
    path: &Path,
    line: usize,
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<String, TaskError> {
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Ok(b.to_string()),
        Some(other) => Err(TaskError::format(
            path,
            line,
            format!("field `{key}` should be a string, found {other}"),
        )),
        None => Err(TaskError::format(
            path,
            line,
            format!("missing field `{key}`"),
        )),
    }
}

fn concat(a: Dataset, b: Dataset, path: &Path) -> Result<Dataset, TaskError> {
    Ok(match (a, b) {
        (Dataset::Pairs(mut x), Dataset::Pairs(y)) => {
            x.extend(y);
            Dataset::Pairs(x)
        }
        (Dataset::Choices(mut x), Dataset::Choices(y)) => {
            x.extend(y);
            Dataset::Choices(x)
        }
        (Dataset::Qa(mut x), Dataset::Qa(y)) => {
            x.extend(y);
            Dataset::Qa(x)
        }
        (Dataset::Tagging(mut x), Dataset::Tagging(y)) => {
            x.extend(y);
            Dataset::Tagging(x)
        }
        _ => {
            return Err(TaskError::format(
                path,
                0,
                "cannot concatenate this file with the previous ones (different kinds)",
            ));
        }
    })
}
