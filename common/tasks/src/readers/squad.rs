//! SQuAD v1.1-format JSON (SQuAD, XQuAD, MLQA, TyDiQA-GoldP). Gold answer spans are checked
//! against their context: `answer_start` (in characters) must point at the answer text.

use std::path::Path;

use serde_json::Value;

use crate::error::TaskError;
use crate::example::{Dataset, QaExample};
use crate::lang;

/// 1-based line of the first occurrence of `"needle"` in `text` (0 when absent).
pub(crate) fn line_of_string(text: &str, needle: &str) -> usize {
    let quoted = format!("\"{needle}\"");
    text.find(&quoted)
        .map_or(0, |i| text[..i].matches('\n').count() + 1)
}

/// Reads every question; `keep` filters by id (used for the combined TyDiQA file).
pub fn read_squad(
    context_lang: &str,
    path: &Path,
    text: &str,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<Dataset, TaskError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| TaskError::format(path, e.line(), format!("invalid JSON: {e}")))?;
    let bad = |line: usize, m: String| TaskError::format(path, line, m);
    let data = root
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(1, "missing top-level `data` array".into()))?;
    let mut out = Vec::new();
    for article in data {
        let paragraphs = article
            .get("paragraphs")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(1, "an article has no `paragraphs` array".into()))?;
        for para in paragraphs {
            let context = para
                .get("context")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(1, "a paragraph has no `context`".into()))?;
            let context_chars: Vec<char> = context.chars().collect();
            let qas = para
                .get("qas")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(1, "a paragraph has no `qas`".into()))?;
            for qa in qas {
                let id = match qa.get("id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => return Err(bad(1, "a question has no `id`".into())),
                };
                if keep.is_some_and(|k| !k(&id)) {
                    continue;
                }
                let line = line_of_string(text, &id);
                let question = qa
                    .get("question")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(line, format!("question {id} has no `question`")))?;
                let mut answers = Vec::new();
                for a in qa
                    .get("answers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let t = a.get("text").and_then(Value::as_str).ok_or_else(|| {
                        bad(line, format!("question {id}: an answer has no `text`"))
                    })?;
                    let start = a
                        .get("answer_start")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| {
                            bad(
                                line,
                                format!("question {id}: an answer has no `answer_start`"),
                            )
                        })? as usize;
                    let n = t.chars().count();
                    let at: String = context_chars.iter().skip(start).take(n).collect();
                    if at != t && !(t.is_empty() && start <= context_chars.len()) {
                        return Err(bad(
                            line,
                            format!(
                                "question {id}: answer `{t}` is not in the context at character {start} (found `{at}`)"
                            ),
                        ));
                    }
                    answers.push((t.to_string(), start));
                }
                out.push(QaExample {
                    id,
                    question: question.to_string(),
                    context: context.to_string(),
                    answers,
                    context_lang: context_lang.to_string(),
                });
            }
        }
    }
    Ok(Dataset::Qa(out))
}

/// The combined TyDiQA-GoldP file: keeps questions whose id starts with `<language name>-`.
pub fn read_tydiqa_combined(code: &str, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let name = lang::tydiqa_name(code)
        .ok_or_else(|| TaskError::format(path, 0, format!("TyDiQA has no language `{code}`")))?;
    let prefix = format!("{name}-");
    read_squad(code, path, text, Some(&|id: &str| id.starts_with(&prefix)))
}
