//! Multiple-choice readers: COPA/XCOPA, Social IQa, HellaSwag, Cosmos QA, CommonsenseQA. The
//! first segment is built from the task's `template` (catalog), fixed across the grid.

use std::path::Path;

use serde_json::Value;

use super::{ReadCtx, csv, field, json_lines, read_to_string};
use crate::error::TaskError;
use crate::example::{ChoiceExample, Dataset};

fn fill(ctx: &ReadCtx<'_>, default: &str, vars: &[(&str, &str)]) -> String {
    let mut out = ctx
        .task
        .template
        .clone()
        .unwrap_or_else(|| default.to_string());
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

fn int_label(
    path: &Path,
    n: usize,
    obj: &serde_json::Map<String, Value>,
    key: &str,
    choices: usize,
) -> Result<Option<usize>, TaskError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let s = v.to_string();
            let i = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or_else(|| {
                    TaskError::format(path, n, format!("`{key}` is not an index: {s}"))
                })? as usize;
            if i >= choices {
                return Err(TaskError::format(
                    path,
                    n,
                    format!("`{key}` = {i} but there are only {choices} choices"),
                ));
            }
            Ok(Some(i))
        }
    }
}

/// COPA / XCOPA: `premise`, `choice1`, `choice2`, `question` ∈ {cause, effect}, `label` ∈ {0, 1}.
pub fn read_copa(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, text)? {
        let question = field(path, n, &obj, "question")?;
        if question != "cause" && question != "effect" {
            return Err(TaskError::format(
                path,
                n,
                format!("`question` is `{question}`, expected cause or effect"),
            ));
        }
        let premise = field(path, n, &obj, "premise")?;
        out.push(ChoiceExample {
            id: field(path, n, &obj, "idx").unwrap_or_else(|_| n.to_string()),
            context: fill(
                ctx,
                "{premise} What was the {question}?",
                &[("premise", &premise), ("question", &question)],
            ),
            choices: vec![
                field(path, n, &obj, "choice1")?,
                field(path, n, &obj, "choice2")?,
            ],
            label: int_label(path, n, &obj, "label", 2)?,
        });
    }
    Ok(Dataset::Choices(out))
}

/// Social IQa: `context`, `question`, `answerA..C`; gold from `correct` (A/B/C, v1.4) or from a
/// sibling `<stem>-labels.lst` (1-based, the older `socialiqa-train-dev` release).
pub fn read_siqa(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let rows = json_lines(path, text)?;
    let label_file = path.with_file_name(format!(
        "{}-labels.lst",
        path.file_stem().unwrap_or_default().to_string_lossy()
    ));
    let external: Option<Vec<String>> = if rows.iter().any(|(_, o)| o.contains_key("correct")) {
        None
    } else if label_file.exists() {
        let t = read_to_string(&label_file)?;
        let labels: Vec<String> = t
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if labels.len() != rows.len() {
            return Err(TaskError::format(
                &label_file,
                labels.len().min(rows.len()) + 1,
                format!(
                    "{} labels for {} examples in {}",
                    labels.len(),
                    rows.len(),
                    path.display()
                ),
            ));
        }
        Some(labels)
    } else {
        None
    };
    let mut out = Vec::new();
    for (i, (n, obj)) in rows.iter().enumerate() {
        let (context, question) = (
            field(path, *n, obj, "context")?,
            field(path, *n, obj, "question")?,
        );
        let choices = vec![
            field(path, *n, obj, "answerA")?,
            field(path, *n, obj, "answerB")?,
            field(path, *n, obj, "answerC")?,
        ];
        let label = if let Some(labels) = &external {
            let l: usize = labels[i]
                .parse()
                .ok()
                .filter(|l| (1..=3).contains(l))
                .ok_or_else(|| {
                    TaskError::format(
                        &label_file,
                        i + 1,
                        format!("label `{}` is not 1, 2 or 3", labels[i]),
                    )
                })?;
            Some(l - 1)
        } else if obj.contains_key("correct") {
            let c = field(path, *n, obj, "correct")?;
            Some(match c.as_str() {
                "A" => 0,
                "B" => 1,
                "C" => 2,
                _ => {
                    return Err(TaskError::format(
                        path,
                        *n,
                        format!("`correct` is `{c}`, expected A, B or C"),
                    ));
                }
            })
        } else {
            None
        };
        out.push(ChoiceExample {
            id: n.to_string(),
            context: fill(
                ctx,
                "{context} {question}",
                &[("context", &context), ("question", &question)],
            ),
            choices,
            label,
        });
    }
    Ok(Dataset::Choices(out))
}

/// HellaSwag: `ctx`, `endings` (4), `label` (absent in test).
pub fn read_hellaswag(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, text)? {
        let endings = match obj.get("endings") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|e| e.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| TaskError::format(path, n, "`endings` must be strings"))?,
            _ => return Err(TaskError::format(path, n, "missing array field `endings`")),
        };
        let context = field(path, n, &obj, "ctx")?;
        out.push(ChoiceExample {
            id: field(path, n, &obj, "ind")?,
            context: fill(ctx, "{context}", &[("context", &context)]),
            label: int_label(path, n, &obj, "label", endings.len())?,
            choices: endings,
        });
    }
    Ok(Dataset::Choices(out))
}

/// Cosmos QA: csv `id,context,question,answer0..3,label` (train/valid), jsonl without label (test).
pub fn read_cosmosqa(ctx: &ReadCtx<'_>, path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    let build =
        |id: String, context: &str, question: &str, choices: Vec<String>, label| ChoiceExample {
            id,
            context: fill(
                ctx,
                "{context} {question}",
                &[("context", context), ("question", question)],
            ),
            choices,
            label,
        };
    if path.extension().is_some_and(|e| e == "jsonl") {
        for (n, obj) in json_lines(path, text)? {
            let choices = (0..4)
                .map(|i| field(path, n, &obj, &format!("answer{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            let (c, q) = (
                field(path, n, &obj, "context")?,
                field(path, n, &obj, "question")?,
            );
            let label = int_label(path, n, &obj, "label", 4)?;
            out.push(build(field(path, n, &obj, "id")?, &c, &q, choices, label));
        }
        return Ok(Dataset::Choices(out));
    }
    let records = csv::parse(path, text)?;
    let Some((_, header)) = records.first() else {
        return Ok(Dataset::Choices(out));
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| TaskError::format(path, 1, format!("header has no `{name}` column")))
    };
    let (id, c, q) = (col("id")?, col("context")?, col("question")?);
    let answers = (0..4)
        .map(|i| col(&format!("answer{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    let label = header.iter().position(|h| h == "label");
    for (n, rec) in &records[1..] {
        if rec.len() != header.len() {
            return Err(TaskError::format(
                path,
                *n,
                format!("expected {} CSV fields, found {}", header.len(), rec.len()),
            ));
        }
        let gold =
            match label {
                Some(l) => Some(rec[l].parse::<usize>().ok().filter(|x| *x < 4).ok_or_else(
                    || TaskError::format(path, *n, format!("label `{}` is not 0–3", rec[l])),
                )?),
                None => None,
            };
        let choices = answers.iter().map(|a| rec[*a].clone()).collect();
        out.push(build(rec[id].clone(), &rec[c], &rec[q], choices, gold));
    }
    Ok(Dataset::Choices(out))
}

/// CommonsenseQA: original schema (`question.stem`, `question.choices[{label,text}]`,
/// `answerKey`) or the HF export (`question` string, `choices.{label,text}` lists).
pub fn read_commonsenseqa(
    ctx: &ReadCtx<'_>,
    path: &Path,
    text: &str,
) -> Result<Dataset, TaskError> {
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, text)? {
        let bad = |m: &str| TaskError::format(path, n, m.to_string());
        let (stem, labels, texts): (String, Vec<String>, Vec<String>) = match obj.get("question") {
            Some(Value::Object(q)) => {
                let stem = field(path, n, q, "stem")?;
                let choices = q
                    .get("choices")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad("missing `question.choices`"))?;
                let mut labels = Vec::new();
                let mut texts = Vec::new();
                for c in choices {
                    let c = c
                        .as_object()
                        .ok_or_else(|| bad("a choice is not an object"))?;
                    labels.push(field(path, n, c, "label")?);
                    texts.push(field(path, n, c, "text")?);
                }
                (stem, labels, texts)
            }
            Some(Value::String(stem)) => {
                let ch = obj
                    .get("choices")
                    .and_then(Value::as_object)
                    .ok_or_else(|| bad("missing `choices`"))?;
                let list = |k: &str| -> Result<Vec<String>, TaskError> {
                    ch.get(k)
                        .and_then(Value::as_array)
                        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect())
                        .ok_or_else(|| bad("`choices` needs string lists `label` and `text`"))
                };
                (stem.clone(), list("label")?, list("text")?)
            }
            _ => return Err(bad("missing `question`")),
        };
        let label = match obj.get("answerKey").and_then(Value::as_str) {
            None | Some("") => None,
            Some(key) => Some(labels.iter().position(|l| l == key).ok_or_else(|| {
                TaskError::format(path, n, format!("answerKey `{key}` is not a choice label"))
            })?),
        };
        out.push(ChoiceExample {
            id: field(path, n, &obj, "id")?,
            context: fill(ctx, "{question}", &[("question", &stem)]),
            choices: texts,
            label,
        });
    }
    Ok(Dataset::Choices(out))
}
