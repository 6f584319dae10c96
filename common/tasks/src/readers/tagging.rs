//! Token tagging files: XTREME's `token<TAB>tag` tsv and PAN-X's original `lang:token<TAB>TAG`.

use std::path::Path;

use super::lines;
use crate::error::TaskError;
use crate::example::{Dataset, TaggedSentence};

/// `token<TAB>tag` per line (tags checked against `labels` unless empty), blank line between sentences. A file whose lines have no tag
/// (XTREME test files) gives sentences with `tags: None`; mixing both is an error.
pub fn read_xtreme_tags(path: &Path, text: &str, labels: &[String]) -> Result<Dataset, TaskError> {
    read_blocks(path, text, labels, |line| Ok(line.to_string()))
}

/// PAN-X original: `lang:token<TAB>TAG`; the `lang:` prefix is stripped (up to the first `:`),
/// as XTREME's `panx_preprocess` does.
pub fn read_panx_original(
    path: &Path,
    text: &str,
    labels: &[String],
) -> Result<Dataset, TaskError> {
    read_blocks(path, text, labels, |token| match token.find(':') {
        Some(i) => Ok(token[i + 1..].trim().to_string()),
        None => Err("token has no `lang:` prefix".to_string()),
    })
}

fn read_blocks(
    path: &Path,
    text: &str,
    labels: &[String],
    token_fix: impl Fn(&str) -> Result<String, String>,
) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    let mut tokens = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    let mut labelled: Option<bool> = None;
    let mut start = 1;
    let mut flush = |tokens: &mut Vec<String>, tags: &mut Vec<String>, labelled: Option<bool>| {
        if !tokens.is_empty() {
            out.push(TaggedSentence {
                id: out.len().to_string(),
                tokens: std::mem::take(tokens),
                tags: if labelled == Some(true) {
                    Some(std::mem::take(tags))
                } else {
                    None
                },
            });
            tags.clear();
        }
    };
    for (n, line) in lines(text) {
        if line.trim().is_empty() {
            flush(&mut tokens, &mut tags, labelled);
            start = n + 1;
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let has_tag = match cols.len() {
            1 => false,
            2 => true,
            k => {
                return Err(TaskError::format(
                    path,
                    n,
                    format!("expected `token<TAB>tag` (or a token alone), found {k} columns"),
                ));
            }
        };
        match labelled {
            None => labelled = Some(has_tag),
            Some(l) if l != has_tag => {
                return Err(TaskError::format(
                    path,
                    n,
                    format!(
                        "line {} tag but earlier lines {} (sentence from line {start})",
                        if has_tag { "has a" } else { "has no" },
                        if l { "have tags" } else { "have none" }
                    ),
                ));
            }
            _ => {}
        }
        let token = token_fix(cols[0]).map_err(|m| TaskError::format(path, n, m))?;
        tokens.push(token);
        if has_tag {
            let tag = cols[1].trim();
            if tag.is_empty() {
                return Err(TaskError::format(path, n, "empty tag"));
            }
            if !labels.is_empty() && !labels.iter().any(|l| l == tag) {
                return Err(TaskError::format(
                    path,
                    n,
                    format!("unknown tag `{tag}` (labels: {})", labels.join(", ")),
                ));
            }
            tags.push(tag.to_string());
        }
    }
    flush(&mut tokens, &mut tags, labelled);
    Ok(Dataset::Tagging(out))
}
