//! Retrieval tasks: Tatoeba (LASER files), LAReQA (XQuAD-R pool), Mewsli-X (mentions + entities).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ReadCtx, field, json_lines, lines, read_to_string};
use crate::error::TaskError;
use crate::example::{AnswerPool, Dataset, PoolCandidate, PoolQuery, RetrievalSet};

/// LASER `tatoeba.xxx-eng.xxx`: line i ↔ line i of `tatoeba.xxx-eng.eng`. Queries are the
/// non-English side, candidates the English side, gold the identity.
pub fn read_tatoeba(path: &Path) -> Result<Dataset, TaskError> {
    let english = path.with_extension("eng");
    let src = read_to_string(path)?;
    let eng = read_to_string(&english)?;
    let queries: Vec<String> = lines(&src).map(|(_, l)| l.to_string()).collect();
    let candidates: Vec<String> = lines(&eng).map(|(_, l)| l.to_string()).collect();
    if queries.len() != candidates.len() {
        return Err(TaskError::format(
            &english,
            candidates.len().min(queries.len()) + 1,
            format!(
                "{} has {} lines but {} has {}",
                path.display(),
                queries.len(),
                english.display(),
                candidates.len()
            ),
        ));
    }
    let gold = (0..queries.len()).collect();
    Ok(Dataset::Retrieval(RetrievalSet {
        queries,
        candidates,
        gold,
    }))
}

struct LareqaFile {
    lang: String,
    /// (question id, question, answer_start, paragraph index into `paragraphs`)
    questions: Vec<(String, String, usize, usize)>,
    /// per paragraph: context and sentence (start, end) character ranges
    paragraphs: Vec<(String, Vec<(usize, usize)>)>,
}

fn parse_lareqa(path: &Path, lang: &str) -> Result<LareqaFile, TaskError> {
    let text = read_to_string(path)?;
    let root: Value = serde_json::from_str(&text)
        .map_err(|e| TaskError::format(path, e.line(), format!("invalid JSON: {e}")))?;
    let bad = |m: &str| TaskError::format(path, 1, m.to_string());
    let mut file = LareqaFile {
        lang: lang.to_string(),
        questions: Vec::new(),
        paragraphs: Vec::new(),
    };
    for article in root
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing `data`"))?
    {
        for para in article
            .get("paragraphs")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("missing `paragraphs`"))?
        {
            let context = para
                .get("context")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("missing `context`"))?;
            let breaks: Vec<(usize, usize)> = para
                .get("sentence_breaks")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("missing `sentence_breaks`"))?
                .iter()
                .map(|b| Some((b.get(0)?.as_u64()? as usize, b.get(1)?.as_u64()? as usize)))
                .collect::<Option<_>>()
                .ok_or_else(|| bad("`sentence_breaks` must be [start, end] pairs"))?;
            let p = file.paragraphs.len();
            for qa in para
                .get("qas")
                .and_then(Value::as_array)
                .ok_or_else(|| bad("missing `qas`"))?
            {
                let id = qa
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("question without `id`"))?;
                let line = super::squad::line_of_string(&text, id);
                let question = qa
                    .get("question")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let start = qa
                    .get("answers")
                    .and_then(|a| a.get(0))
                    .and_then(|a| a.get("answer_start"))
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        TaskError::format(path, line, format!("question {id} has no answer_start"))
                    })?;
                file.questions
                    .push((id.to_string(), question.to_string(), start as usize, p));
            }
            file.paragraphs.push((context.to_string(), breaks));
        }
    }
    Ok(file)
}

/// XQuAD-R: queries in `ctx.lang`; the candidate pool is every sentence of every language file
/// next to `path`; a query's gold answers are the sentences (one per language) holding the
/// answer of the question with the same id.
pub fn read_lareqa(ctx: &ReadCtx<'_>, path: &Path) -> Result<Dataset, TaskError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TaskError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut candidates = Vec::new();
    // (lang, question id) → candidate index of its answer sentence
    let mut answer_of: HashMap<(String, String), usize> = HashMap::new();
    let mut queries = Vec::new();
    let mut pool_langs = Vec::new();
    for f in &files {
        let lang = f
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let parsed = parse_lareqa(f, &lang)?;
        let mut first_of_paragraph = Vec::new();
        for (context, breaks) in &parsed.paragraphs {
            first_of_paragraph.push(candidates.len());
            let chars: Vec<char> = context.chars().collect();
            for &(s, e) in breaks {
                let sentence: String = chars[s.min(chars.len())..e.min(chars.len())]
                    .iter()
                    .collect();
                candidates.push(PoolCandidate {
                    id: candidates.len().to_string(),
                    sentence,
                    context: context.clone(),
                    lang: parsed.lang.clone(),
                });
            }
        }
        for (id, question, start, p) in &parsed.questions {
            let breaks = &parsed.paragraphs[*p].1;
            let k = breaks
                .iter()
                .position(|&(s, e)| *start >= s && *start < e.max(s + 1))
                .or_else(|| breaks.iter().rposition(|&(s, _)| *start >= s))
                .ok_or_else(|| {
                    TaskError::format(
                        f,
                        super::squad::line_of_string(&read_to_string(f).unwrap_or_default(), id),
                        format!("question {id}: answer_start {start} is in no sentence"),
                    )
                })?;
            answer_of.insert(
                (parsed.lang.clone(), id.clone()),
                first_of_paragraph[*p] + k,
            );
            if parsed.lang == ctx.lang {
                queries.push(PoolQuery {
                    id: id.clone(),
                    question: question.clone(),
                    context: String::new(),
                    lang: parsed.lang.clone(),
                });
            }
        }
        pool_langs.push(parsed.lang);
    }
    let gold = queries
        .iter()
        .map(|q| {
            pool_langs
                .iter()
                .filter_map(|l| answer_of.get(&(l.clone(), q.id.clone())).copied())
                .collect()
        })
        .collect();
    Ok(Dataset::AnswerPool(AnswerPool {
        queries,
        candidates,
        gold,
    }))
}

/// One Mewsli-X mention.
#[derive(Debug, Clone, PartialEq)]
pub struct MewsliMention {
    pub example_id: String,
    pub lang: String,
    pub text: String,
    /// The sentence of `context.text` holding the mention (`context.sentence_spans`); empty when
    /// the file carries no article text (the released `*_no_text` files).
    pub context: String,
    /// Gold Wikidata QID (empty in XTREME's blanked test copy).
    pub entity_id: String,
    pub line: usize,
}

type JsonObj = serde_json::Map<String, Value>;

fn object<'v>(
    path: &Path,
    n: usize,
    obj: &'v JsonObj,
    key: &str,
) -> Result<&'v JsonObj, TaskError> {
    obj.get(key)
        .and_then(Value::as_object)
        .ok_or_else(|| TaskError::format(path, n, format!("missing object `{key}`")))
}

/// The sentence of a Mewsli-X `context` (text + `sentence_spans`, offsets in characters) that
/// holds character `at`; empty without text.
fn sentence_at(path: &Path, n: usize, context: &JsonObj, at: usize) -> Result<String, TaskError> {
    let text = context
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if text.is_empty() {
        return Ok(String::new());
    }
    let chars: Vec<char> = text.chars().collect();
    let spans = context
        .get("sentence_spans")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for span in spans {
        let (Some(s), Some(e)) = (
            span.get("start").and_then(Value::as_u64),
            span.get("end").and_then(Value::as_u64),
        ) else {
            return Err(TaskError::format(
                path,
                n,
                "`sentence_spans` entries need integer `start` and `end`",
            ));
        };
        let (s, e) = (s as usize, (e as usize).min(chars.len()));
        if s <= at && at < e {
            return Ok(chars[s..e].iter().collect());
        }
    }
    // No span covers the mention: the whole text, as the model's window truncates it anyway.
    Ok(text.to_string())
}

fn mention(
    path: &Path,
    n: usize,
    m: &JsonObj,
    context: &JsonObj,
    lang: &str,
) -> Result<MewsliMention, TaskError> {
    let span = object(path, n, m, "mention_span")?;
    let start = span.get("start").and_then(Value::as_u64).unwrap_or(0) as usize;
    Ok(MewsliMention {
        example_id: field(path, n, m, "example_id")?,
        lang: lang.to_string(),
        text: field(path, n, span, "text")?,
        context: sentence_at(path, n, context, start)?,
        entity_id: m
            .get("entity_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        line: n,
    })
}

/// Reads a Mewsli-X mentions jsonl (`context` + `mentions[]`); keeps `lang` if given.
pub fn read_mewslix_mentions(
    path: &Path,
    lang: Option<&str>,
) -> Result<Vec<MewsliMention>, TaskError> {
    let text = read_to_string(path)?;
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, &text)? {
        let context = object(path, n, &obj, "context")?;
        let doc_lang = field(path, n, context, "language")?;
        if lang.is_some_and(|l| l != doc_lang) {
            continue;
        }
        let mentions = obj
            .get("mentions")
            .and_then(Value::as_array)
            .ok_or_else(|| TaskError::format(path, n, "missing array `mentions`"))?;
        for m in mentions {
            let m = m
                .as_object()
                .ok_or_else(|| TaskError::format(path, n, "a mention is not an object"))?;
            out.push(mention(path, n, m, context, &doc_lang)?);
        }
    }
    Ok(out)
}

/// One entity of `candidate_set_entities.jsonl` (or a pair's `entity`) as a pool candidate:
/// id = QID, first segment = title, second = description.
fn entity(path: &Path, n: usize, obj: &JsonObj) -> Result<PoolCandidate, TaskError> {
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(PoolCandidate {
        id: field(path, n, obj, "entity_id")?,
        sentence: text("title"),
        context: text("description"),
        lang: text("description_language"),
    })
}

/// Mewsli-X `wikipedia_pairs-{train,dev}.jsonl`: one (contextual mention, entity) pair per
/// line; query `i`'s gold is candidate `i`, its own entity.
pub fn read_mewslix_pairs(path: &Path, text: &str) -> Result<Dataset, TaskError> {
    let mut pool = AnswerPool {
        queries: Vec::new(),
        candidates: Vec::new(),
        gold: Vec::new(),
    };
    for (n, obj) in json_lines(path, text)? {
        let cm = object(path, n, &obj, "contextual_mention")?;
        let context = object(path, n, cm, "context")?;
        let lang = context
            .get("language")
            .and_then(Value::as_str)
            .unwrap_or("en");
        let m = mention(path, n, object(path, n, cm, "mention")?, context, lang)?;
        let e = entity(path, n, object(path, n, &obj, "entity")?)?;
        if m.entity_id != e.id {
            return Err(TaskError::format(
                path,
                n,
                format!(
                    "mention {} links entity `{}` but the pair's entity is `{}`",
                    m.example_id, m.entity_id, e.id
                ),
            ));
        }
        pool.gold.push(vec![pool.candidates.len()]);
        pool.candidates.push(e);
        pool.queries.push(PoolQuery {
            id: m.example_id,
            question: m.text,
            context: m.context,
            lang: m.lang,
        });
    }
    Ok(Dataset::AnswerPool(pool))
}

/// Mewsli-X: mentions of `ctx.lang` against `candidate_set_entities.jsonl` (same folder or
/// its parent), or, for a `wikipedia_pairs` file (lines with `contextual_mention`), the
/// training pairs. Query = mention text + its sentence; candidate = title + description.
/// A mention whose gold entity is not in the candidate set is an error naming both files, the
/// line and the mention's `example_id`.
pub fn read_mewslix(ctx: &ReadCtx<'_>, path: &Path) -> Result<Dataset, TaskError> {
    let text = read_to_string(path)?;
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    if first.contains("\"contextual_mention\"") {
        return read_mewslix_pairs(path, &text);
    }
    drop(text);
    let mentions = read_mewslix_mentions(path, Some(ctx.lang))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let entities_path = [
        dir.join("candidate_set_entities.jsonl"),
        dir.join("../candidate_set_entities.jsonl"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or_else(|| {
        TaskError::format(
            path,
            0,
            "candidate_set_entities.jsonl not found next to the mentions file or in its parent",
        )
    })?;
    let text = read_to_string(&entities_path)?;
    let mut candidates = Vec::new();
    let mut index = HashMap::new();
    for (n, obj) in json_lines(&entities_path, &text)? {
        let e = entity(&entities_path, n, &obj)?;
        if let Some(prev) = index.insert(e.id.clone(), candidates.len()) {
            return Err(TaskError::format(
                &entities_path,
                n,
                format!(
                    "entity `{}` is listed twice (first as candidate {prev})",
                    e.id
                ),
            ));
        }
        candidates.push(e);
    }
    drop(text);
    let mut queries = Vec::new();
    let mut gold = Vec::new();
    for m in mentions {
        let g = *index.get(&m.entity_id).ok_or_else(|| {
            let why = if m.entity_id.is_empty() {
                "has no gold entity (XTREME's test copy blanks them; use wikinews_mentions-test.jsonl of the release)".to_string()
            } else {
                format!(
                    "links entity `{}`, which is not in the candidate pool {}",
                    m.entity_id,
                    entities_path.display()
                )
            };
            TaskError::format(path, m.line, format!("mention {} {why}", m.example_id))
        })?;
        queries.push(PoolQuery {
            id: m.example_id,
            question: m.text,
            context: m.context,
            lang: m.lang,
        });
        gold.push(vec![g]);
    }
    Ok(Dataset::AnswerPool(AnswerPool {
        queries,
        candidates,
        gold,
    }))
}
