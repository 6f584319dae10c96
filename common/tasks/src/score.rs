//! `stilts score`: one prediction file in the XTREME submission format against a gold file in
//! the original or the XTREME layout. Results use the official keys, ×100.
//!
//! Prediction formats (XTREME-R.md §2.2): classification — one label per line; tagging — one
//! label per line, blank line between sentences; QA — JSON `{id: answer}`; XCOPA — JSONL with a
//! `label` field; Tatoeba — one candidate index per line; Mewsli-X — JSON `{example_id: [QIDs]}`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::catalog::{Catalog, Head, Layout, Metric, TaskDef};
use crate::error::{ScoreError, TaskError};
use crate::example::{Dataset, Label};
use crate::load::Split;
use crate::metrics::squad::{QaGold, QaNormalization};
use crate::metrics::{self, pytext};
use crate::readers::{self, ReadCtx, read_to_string};

const LABELLED_SOURCES: &str = "labelled gold comes from the original distributions: XNLI-1.0 \
xnli.test.tsv, deepmind/xquad, MLQA_V1 test, tydiqa-goldp-v1.1-dev, cambridgeltl/xcopa, the UD \
treebanks, the PAN-X (Rahimi et al.) originals, Mewsli-X wikinews_mentions-test.jsonl — or score \
on dev splits";

/// Scores `predictions` for `task` in `lang` against `gold`. See the module doc for formats.
/// The warnings of [`score_checked`] are dropped; callers that show results should use it.
pub fn score(
    catalog: &Catalog,
    task: &str,
    lang: &str,
    predictions: &Path,
    gold: &Path,
) -> Result<Value, ScoreError> {
    score_checked(catalog, task, lang, predictions, gold).map(|s| s.metrics)
}

/// The official metrics of one file and what the reader should know about them.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The official keys, ×100.
    pub metrics: Value,
    /// Counted irregularities the official scripts also tolerate (QA: unanswered questions,
    /// scored 0; answers that are not a span of their context; ids that are not questions).
    pub warnings: Vec<String>,
}

/// [`score`] with its warnings.
pub fn score_checked(
    catalog: &Catalog,
    task: &str,
    lang: &str,
    predictions: &Path,
    gold: &Path,
) -> Result<Scored, ScoreError> {
    let task = catalog
        .get(task)
        .ok_or_else(|| ScoreError::UnknownTask(task.to_string()))?;
    if task.name == "mewslix" {
        return score_mewslix(predictions, gold, lang).map(Scored::clean);
    }
    let gold_data = read_gold(task, lang, gold)?;
    if let (Head::SpanQa, Dataset::Qa(ex)) = (task.head, &gold_data) {
        return score_qa(task, predictions, gold, ex);
    }
    score_other(task, predictions, gold, gold_data).map(Scored::clean)
}

impl Scored {
    fn clean(metrics: Value) -> Scored {
        Scored {
            metrics,
            warnings: vec![],
        }
    }
}

fn score_other(
    task: &TaskDef,
    predictions: &Path,
    gold: &Path,
    gold_data: Dataset,
) -> Result<Value, ScoreError> {
    match (task.head, gold_data) {
        (Head::Classification | Head::Regression, Dataset::Pairs(ex)) => score_classification(
            task,
            predictions,
            gold,
            ex.into_iter().map(|e| e.label).collect(),
        ),
        (Head::MultipleChoice, Dataset::Choices(ex)) => score_choices(
            predictions,
            gold,
            ex.into_iter().map(|e| (e.id, e.label)).collect(),
        ),
        (Head::TokenClassification, Dataset::Tagging(s)) => score_tagging(predictions, gold, s),
        (Head::Retrieval, Dataset::Retrieval(r)) if task.metric == Metric::Accuracy => {
            let pred = read_label_lines(predictions)?;
            let mut idx = Vec::new();
            for (n, p) in &pred {
                idx.push(p.parse::<usize>().map_err(|_| {
                    pred_err(predictions, *n, format!("`{p}` is not a candidate index"))
                })?);
            }
            check_count(predictions, pred.len(), r.gold.len(), gold)?;
            let acc = metrics::accuracy(&r.gold, &idx).unwrap_or(0.0);
            Ok(json!({ "accuracy": acc * 100.0 }))
        }
        (_, d) => Err(ScoreError::Gold {
            path: gold.to_path_buf(),
            message: format!(
                "task `{}` ({:?}) cannot be scored from this gold file ({} examples of another kind); \
                 LAReQA is scored by its own retrieval script",
                task.name,
                task.head,
                d.len()
            ),
        }),
    }
}

fn pred_err(path: &Path, line: usize, message: String) -> ScoreError {
    ScoreError::Predictions {
        path: path.to_path_buf(),
        line,
        message,
    }
}

/// Does `path` end with the components of `pattern` (with `*` wildcards)?
fn path_matches(path: &Path, pattern: &str) -> bool {
    let comps: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let pats: Vec<&str> = pattern.split('/').collect();
    pats.len() <= comps.len()
        && pats
            .iter()
            .rev()
            .zip(comps.iter().rev())
            .all(|(p, c)| crate::load::wildcard_match(p, c))
}

/// Reads the gold file with the reader of the layout whose pattern it matches, else with each
/// layout's reader in turn; a one-column file of known labels is read as submission-format gold.
fn read_gold(task: &TaskDef, lang: &str, gold: &Path) -> Result<Dataset, ScoreError> {
    let read_with = |layout: &Layout, split: Split| {
        let ctx = ReadCtx {
            task,
            lang,
            split,
            layout,
        };
        readers::read_path(&ctx, gold)
    };
    for layout in &task.layouts {
        for (split, patterns) in [
            (Split::Test, &layout.test),
            (Split::Dev, &layout.dev),
            (Split::Train, &layout.train),
        ] {
            for p in patterns {
                let filled = p
                    .replace("{lang}", lang)
                    .replace("{lang3}", crate::lang::iso639_3(lang).unwrap_or("?"))
                    .replace("{lang_name}", crate::lang::tydiqa_name(lang).unwrap_or("?"));
                if path_matches(gold, &filled) {
                    return Ok(read_with(layout, split)?);
                }
            }
        }
    }
    if task.head == Head::Classification
        && let Ok(lines) = read_label_lines(gold)
        && !lines.is_empty()
        && lines.iter().all(|(_, l)| task.label_index(l).is_some())
    {
        let labels: Vec<Label> = lines
            .iter()
            .map(|(_, l)| Label::Class(task.label_index(l).unwrap_or(0)))
            .collect();
        return Ok(Dataset::Pairs(
            std::iter::zip(0.., labels)
                .map(|(i, label)| crate::example::PairExample {
                    id: i.to_string(),
                    text_a: String::new(),
                    text_b: None,
                    label,
                })
                .collect(),
        ));
    }
    let mut last: Option<TaskError> = None;
    for layout in &task.layouts {
        match read_with(layout, Split::Test) {
            Ok(d) if !d.is_empty() => return Ok(d),
            Ok(_) => {}
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => ScoreError::Task(e),
        None => ScoreError::Gold {
            path: gold.to_path_buf(),
            message: format!("no example for language `{lang}` in this file"),
        },
    })
}

/// Non-empty trimmed lines with their numbers (trailing blank lines ignored).
fn read_label_lines(path: &Path) -> Result<Vec<(usize, String)>, ScoreError> {
    let text = read_to_string(path)?;
    let mut out = Vec::new();
    for (n, line) in readers::lines(&text) {
        let l = line.trim();
        if l.is_empty() {
            return Err(pred_err(
                path,
                n,
                "blank line in a one-label-per-line file".into(),
            ));
        }
        out.push((n, l.to_string()));
    }
    Ok(out)
}

fn check_count(predictions: &Path, got: usize, want: usize, gold: &Path) -> Result<(), ScoreError> {
    if got == want {
        return Ok(());
    }
    Err(pred_err(
        predictions,
        got.min(want) + 1,
        format!(
            "{got} predictions but {want} gold examples in {}",
            gold.display()
        ),
    ))
}

fn score_classification(
    task: &TaskDef,
    predictions: &Path,
    gold: &Path,
    labels: Vec<Label>,
) -> Result<Value, ScoreError> {
    if labels.iter().all(|l| *l == Label::None) {
        return Err(ScoreError::PlaceholderGold {
            path: gold.to_path_buf(),
            message: format!(
                "this file has no labels (XTREME's download removes test labels); {LABELLED_SOURCES}"
            ),
        });
    }
    let pred = read_label_lines(predictions)?;
    if task.head == Head::Regression {
        check_count(predictions, pred.len(), labels.len(), gold)?;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for ((n, p), g) in pred.iter().zip(&labels) {
            let v: f64 = p
                .parse()
                .map_err(|_| pred_err(predictions, *n, format!("`{p}` is not a number")))?;
            let Label::Score(g) = g else {
                return Err(ScoreError::Gold {
                    path: gold.to_path_buf(),
                    message: "gold has no scores".into(),
                });
            };
            x.push(v);
            y.push(*g as f64);
        }
        let (p, s) = (metrics::pearson(&x, &y), metrics::spearman(&x, &y));
        return Ok(json!({ "pearson": p.map(|v| v * 100.0), "spearman": s.map(|v| v * 100.0) }));
    }
    let mut idx = Vec::new();
    for (n, p) in &pred {
        let i = task.label_index(p).ok_or_else(|| {
            pred_err(
                predictions,
                *n,
                format!("unknown label `{p}` (labels: {})", task.labels.join(", ")),
            )
        })?;
        idx.push(Label::Class(i));
    }
    check_count(predictions, pred.len(), labels.len(), gold)?;
    let acc = metrics::accuracy(&labels, &idx).unwrap_or(0.0);
    Ok(json!({ "accuracy": acc * 100.0 }))
}

fn score_choices(
    predictions: &Path,
    gold: &Path,
    gold_labels: Vec<(String, Option<usize>)>,
) -> Result<Value, ScoreError> {
    let labels: Vec<Option<usize>> = gold_labels.iter().map(|(_, l)| *l).collect();
    if labels.iter().all(Option::is_none)
        || (labels.len() >= 10 && labels.iter().all(|l| *l == Some(0)))
    {
        return Err(ScoreError::PlaceholderGold {
            path: gold.to_path_buf(),
            message: format!(
                "every gold label is 0 or missing: XTREME's placeholder, not real labels; {LABELLED_SOURCES}"
            ),
        });
    }
    let text = read_to_string(predictions)?;
    let rows = readers::json_lines(predictions, &text)?;
    check_count(predictions, rows.len(), labels.len(), gold)?;
    let mut pred = Vec::new();
    for ((n, obj), (gid, _)) in rows.iter().zip(&gold_labels) {
        let label = obj
            .get("label")
            .and_then(Value::as_u64)
            .ok_or_else(|| pred_err(predictions, *n, "missing integer `label`".into()))?;
        if let Some(idx) = obj.get("idx").or_else(|| obj.get("id")) {
            let idx = idx.as_str().map_or_else(|| idx.to_string(), str::to_string);
            if &idx != gid {
                return Err(pred_err(
                    predictions,
                    *n,
                    format!("id `{idx}` but the gold example here is `{gid}`"),
                ));
            }
        }
        pred.push(Some(label as usize));
    }
    let acc = metrics::accuracy(&labels, &pred).unwrap_or(0.0);
    Ok(json!({ "accuracy": acc * 100.0 }))
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !pytext::is_py_space(*c)).collect()
}

/// QA like the official SQuAD v1.1 / MLQA scripts: every answer string is scored; a question
/// without a prediction scores 0 and an id that is no question is ignored, each counted in a
/// warning. An answer that is not a span of its context (whitespace ignored) is scored as well
/// and counted: extractive models never produce one, so it points at post-processing.
fn score_qa(
    task: &TaskDef,
    predictions: &Path,
    gold: &Path,
    examples: &[crate::example::QaExample],
) -> Result<Scored, ScoreError> {
    if examples
        .iter()
        .all(|e| e.answers.iter().all(|(t, _)| t.is_empty()))
    {
        return Err(ScoreError::PlaceholderGold {
            path: gold.to_path_buf(),
            message: format!(
                "every gold answer is empty: XTREME's blanked copy; {LABELLED_SOURCES}"
            ),
        });
    }
    let text = read_to_string(predictions)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| pred_err(predictions, e.line(), format!("invalid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| pred_err(predictions, 1, "expected a JSON object {id: answer}".into()))?;
    let mut preds = HashMap::new();
    for (id, answer) in obj {
        let line = readers::line_of_string(&text, id);
        let answer = answer.as_str().ok_or_else(|| {
            pred_err(
                predictions,
                line,
                format!("answer of `{id}` is not a string"),
            )
        })?;
        preds.insert(id.clone(), answer.to_string());
    }
    let mut warnings = Vec::new();
    let gold_ids: HashSet<&str> = examples.iter().map(|e| e.id.as_str()).collect();
    let extra: Vec<&String> = obj
        .keys()
        .filter(|id| !gold_ids.contains(id.as_str()))
        .collect();
    if let Some(first) = extra.first() {
        warnings.push(format!(
            "{} ids of {} are not questions of {} (ignored), e.g. `{first}` (line {})",
            extra.len(),
            predictions.display(),
            gold.display(),
            readers::line_of_string(&text, first)
        ));
    }
    let missing: Vec<&str> = examples
        .iter()
        .filter(|e| !preds.contains_key(&e.id))
        .map(|e| e.id.as_str())
        .collect();
    if let Some(first) = missing.first() {
        let gold_text = read_to_string(gold)?;
        warnings.push(format!(
            "{} of {} questions have no prediction and score 0, e.g. `{first}` ({}:{})",
            missing.len(),
            examples.len(),
            gold.display(),
            readers::line_of_string(&gold_text, first)
        ));
    }
    let not_span: Vec<&str> = examples
        .iter()
        .filter(|e| {
            preds
                .get(&e.id)
                .is_some_and(|p| !p.is_empty() && !squash(&e.context).contains(&squash(p)))
        })
        .map(|e| e.id.as_str())
        .collect();
    if let Some(first) = not_span.first() {
        warnings.push(format!(
            "{} answers are not a span of their context (scored as given), e.g. `{first}` \
             (line {})",
            not_span.len(),
            readers::line_of_string(&text, first)
        ));
    }
    let norm = if task.metric == Metric::Mlqa {
        QaNormalization::Mlqa
    } else {
        QaNormalization::Squad
    };
    let golds: Vec<QaGold> = examples
        .iter()
        .map(|e| QaGold {
            id: e.id.clone(),
            answers: e.answers.iter().map(|(t, _)| t.clone()).collect(),
            context_lang: e.context_lang.clone(),
        })
        .collect();
    let s = metrics::qa_scores(norm, &golds, &preds).map_err(|e| ScoreError::Gold {
        path: gold.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Scored {
        metrics: json!({ "exact_match": s.exact_match * 100.0, "f1": s.f1 * 100.0 }),
        warnings,
    })
}

fn score_tagging(
    predictions: &Path,
    gold: &Path,
    sentences: Vec<crate::example::TaggedSentence>,
) -> Result<Value, ScoreError> {
    let mut y_true = Vec::new();
    for s in &sentences {
        match &s.tags {
            Some(t) => y_true.push(t.clone()),
            None => {
                return Err(ScoreError::PlaceholderGold {
                    path: gold.to_path_buf(),
                    message: format!(
                        "the file has tokens but no tags (XTREME test copy); {LABELLED_SOURCES}"
                    ),
                });
            }
        }
    }
    let text = read_to_string(predictions)?;
    let mut y_pred: Vec<Vec<String>> = Vec::new();
    let mut starts = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut start = 1;
    for (n, line) in readers::lines(&text) {
        let l = line.trim();
        if l.is_empty() {
            if !current.is_empty() {
                y_pred.push(std::mem::take(&mut current));
                starts.push(start);
            }
            start = n + 1;
            continue;
        }
        if l.contains('\t') || l.contains(' ') {
            return Err(pred_err(
                predictions,
                n,
                format!("expected one label per line, found `{l}`"),
            ));
        }
        current.push(l.to_string());
    }
    if !current.is_empty() {
        y_pred.push(current);
        starts.push(start);
    }
    if y_pred.len() != y_true.len() {
        return Err(pred_err(
            predictions,
            starts.get(y_true.len()).copied().unwrap_or(0),
            format!(
                "{} sentences but {} gold sentences in {}",
                y_pred.len(),
                y_true.len(),
                gold.display()
            ),
        ));
    }
    for (i, (t, p)) in y_true.iter().zip(&y_pred).enumerate() {
        if t.len() != p.len() {
            return Err(pred_err(
                predictions,
                starts[i],
                format!(
                    "sentence {} has {} labels but the gold sentence has {} tokens",
                    i + 1,
                    p.len(),
                    t.len()
                ),
            ));
        }
    }
    let s = metrics::seqeval_scores(&y_true, &y_pred)
        .map_err(|e| pred_err(predictions, 0, e.to_string()))?;
    Ok(json!({ "f1": s.f1 * 100.0, "precision": s.precision * 100.0, "recall": s.recall * 100.0 }))
}

fn score_mewslix(predictions: &Path, gold: &Path, lang: &str) -> Result<Value, ScoreError> {
    let mentions = readers::read_mewslix_mentions(gold, Some(lang))?;
    if mentions.is_empty() || mentions.iter().all(|m| m.entity_id.is_empty()) {
        return Err(ScoreError::PlaceholderGold {
            path: gold.to_path_buf(),
            message: format!("no gold entity ids for `{lang}`; {LABELLED_SOURCES}"),
        });
    }
    let text = read_to_string(predictions)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| pred_err(predictions, e.line(), format!("invalid JSON: {e}")))?;
    let obj = value.as_object().ok_or_else(|| {
        pred_err(
            predictions,
            1,
            "expected a JSON object {example_id: [QIDs]}".into(),
        )
    })?;
    let known: HashSet<&str> = mentions.iter().map(|m| m.example_id.as_str()).collect();
    if let Some(extra) = obj.keys().find(|k| !known.contains(k.as_str())) {
        return Err(pred_err(
            predictions,
            readers::line_of_string(&text, extra),
            format!("`{extra}` is not a mention of {}", gold.display()),
        ));
    }
    let mut targets = Vec::new();
    let mut ranked = Vec::new();
    for m in &mentions {
        targets.push(HashSet::from([m.entity_id.clone()]));
        ranked.push(match obj.get(&m.example_id) {
            None => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        pred_err(
                            predictions,
                            readers::line_of_string(&text, &m.example_id),
                            "ranked QIDs must be strings".into(),
                        )
                    })?,
            ),
            Some(_) => {
                return Err(pred_err(
                    predictions,
                    readers::line_of_string(&text, &m.example_id),
                    "expected a list of QIDs".into(),
                ));
            }
        });
    }
    let map = metrics::mean_average_precision_at_k(&targets, &ranked, 20);
    Ok(json!({ "map@20": map * 100.0 }))
}
