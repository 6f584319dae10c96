//! Tab-separated sentence(-pair) classification files: XTREME's xnli/pawsx copies, XNLI-1.0,
//! XNLI-MT-1.0, PAWS-X x-final and GLUE.

use std::path::Path;

use super::{ReadCtx, lines};
use crate::error::TaskError;
use crate::example::{Dataset, Label, PairExample};

/// Undoes Python `csv.writer` quoting (XTREME wrote its tsv files with it): a field that starts
/// and ends with `"` loses the outer quotes and `""` becomes `"`.
fn unquote(field: &str) -> String {
    if field.len() >= 2 && field.starts_with('"') && field.ends_with('"') {
        field[1..field.len() - 1].replace("\"\"", "\"")
    } else {
        field.to_string()
    }
}

/// `s1<TAB>s2<TAB>label`, no header; two columns = unlabelled (XTREME test files).
pub fn read_xtreme_pairs(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    read_xtreme_rows(ctx, path, text, 2)
}

/// `sentence<TAB>label` (one column = unlabelled).
pub fn read_xtreme_single(
    ctx: &ReadCtx<'_>,
    path: &Path,
    text: &str,
) -> Result<Dataset, TaskError> {
    read_xtreme_rows(ctx, path, text, 1)
}

/// Rows of `texts` text columns (1 or 2) and an optional trailing label column.
fn read_xtreme_rows(
    ctx: &ReadCtx<'_>,
    path: &Path,
    text: &str,
    texts: usize,
) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, line) in lines(text) {
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let label = if cols.len() == texts {
            Label::None
        } else if cols.len() == texts + 1 {
            ctx.class(path, n, cols[texts].trim())?
        } else {
            return Err(TaskError::format(
                path,
                n,
                format!(
                    "expected {texts} or {} tab-separated columns, found {}",
                    texts + 1,
                    cols.len()
                ),
            ));
        };
        out.push(PairExample {
            id: format!("{}", out.len()),
            text_a: unquote(cols[0]),
            text_b: (texts == 2).then(|| unquote(cols[1])),
            label,
        });
    }
    Ok(Dataset::Pairs(out))
}

/// A tsv with a header row; columns are looked up by name.
struct HeaderTsv<'t> {
    header: Vec<&'t str>,
    rows: Vec<(usize, Vec<&'t str>)>,
}

impl<'t> HeaderTsv<'t> {
    fn parse(path: &Path, text: &'t str) -> Result<Self, TaskError> {
        let mut it = lines(text).filter(|(_, l)| !l.is_empty());
        let (_, head) = it
            .next()
            .ok_or_else(|| TaskError::format(path, 1, "empty file (expected a header row)"))?;
        let header: Vec<&str> = head.split('\t').collect();
        let mut rows = Vec::new();
        for (n, line) in it {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() != header.len() {
                return Err(TaskError::format(
                    path,
                    n,
                    format!(
                        "expected {} tab-separated columns (as in the header), found {}",
                        header.len(),
                        cols.len()
                    ),
                ));
            }
            rows.push((n, cols));
        }
        Ok(HeaderTsv { header, rows })
    }
    fn col(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| *h == name)
    }
    fn need(&self, path: &Path, name: &str) -> Result<usize, TaskError> {
        self.col(name)
            .ok_or_else(|| TaskError::format(path, 1, format!("header has no `{name}` column")))
    }
}

/// XNLI-1.0 `xnli.{dev,test}.tsv`: rows of every language; keeps `ctx.lang`.
pub fn read_xnli(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let t = HeaderTsv::parse(path, text)?;
    let (lang, gold, s1, s2) = (
        t.need(path, "language")?,
        t.need(path, "gold_label")?,
        t.need(path, "sentence1")?,
        t.need(path, "sentence2")?,
    );
    let pair_id = t.col("pairID");
    let mut out = Vec::new();
    for (n, row) in &t.rows {
        if row[lang] != ctx.lang {
            continue;
        }
        out.push(PairExample {
            id: pair_id.map_or_else(|| n.to_string(), |c| row[c].to_string()),
            text_a: row[s1].to_string(),
            text_b: Some(row[s2].to_string()),
            label: ctx.class(path, *n, nli_label(row[gold]))?,
        });
    }
    Ok(Dataset::Pairs(out))
}

/// XNLI-MT-1.0: header `premise hypo label`; `contradictory` → `contradiction` (as XTREME does).
pub fn read_xnli_mt(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let t = HeaderTsv::parse(path, text)?;
    let (p, h, l) = (
        t.need(path, "premise")?,
        t.need(path, "hypo")?,
        t.need(path, "label")?,
    );
    let mut out = Vec::new();
    for (n, row) in &t.rows {
        out.push(PairExample {
            id: (out.len()).to_string(),
            text_a: row[p].trim().to_string(),
            text_b: Some(row[h].trim().to_string()),
            label: ctx.class(path, *n, nli_label(row[l].trim()))?,
        });
    }
    Ok(Dataset::Pairs(out))
}

fn nli_label(label: &str) -> &str {
    if label == "contradictory" {
        "contradiction"
    } else {
        label
    }
}

/// PAWS-X x-final: header `id sentence1 sentence2 label`.
pub fn read_pawsx(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let t = HeaderTsv::parse(path, text)?;
    let (id, s1, s2) = (
        t.need(path, "id")?,
        t.need(path, "sentence1")?,
        t.need(path, "sentence2")?,
    );
    let label = t.col("label");
    let mut out = Vec::new();
    for (n, row) in &t.rows {
        out.push(PairExample {
            id: row[id].to_string(),
            text_a: row[s1].to_string(),
            text_b: Some(row[s2].to_string()),
            label: match label {
                Some(c) => ctx.class(path, *n, row[c].trim())?,
                None => Label::None,
            },
        });
    }
    Ok(Dataset::Pairs(out))
}

/// GLUE tsv (MNLI, QQP, SST-2, STS-B): columns by header name; test files have no label column.
pub fn read_glue(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let t = HeaderTsv::parse(path, text)?;
    let first = |names: &[&str]| names.iter().find_map(|n| t.col(n));
    let a = first(&["sentence1", "question1", "sentence"]).ok_or_else(|| {
        TaskError::format(path, 1, "header has no sentence1/question1/sentence column")
    })?;
    let b = first(&["sentence2", "question2"]);
    let label = first(&["gold_label", "is_duplicate", "label", "score"]);
    let id = first(&["pairID", "id", "index"]);
    let regression = ctx.task.head == crate::catalog::Head::Regression;
    let mut out = Vec::new();
    for (n, row) in &t.rows {
        let label = match label {
            None => Label::None,
            Some(c) if regression => Label::Score(row[c].trim().parse().map_err(|_| {
                TaskError::format(path, *n, format!("score `{}` is not a number", row[c]))
            })?),
            Some(c) => ctx.class(path, *n, row[c].trim())?,
        };
        out.push(PairExample {
            id: id.map_or_else(|| n.to_string(), |c| row[c].to_string()),
            text_a: row[a].to_string(),
            text_b: b.map(|c| row[c].to_string()),
            label,
        });
    }
    Ok(Dataset::Pairs(out))
}

#[cfg(test)]
mod tests {
    use super::unquote;

    #[test]
    fn csv_quoting() {
        assert_eq!(unquote("\"album \"\", weil\""), "album \", weil");
        assert_eq!(unquote("plain"), "plain");
    }
}
