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
    /// Gold Wikidata QID (empty in XTREME's blanked test copy).
    pub entity_id: String,
    pub line: usize,
}

/// Reads a Mewsli-X mentions jsonl (`context` + `mentions[]`); keeps `lang` if given.
pub fn read_mewslix_mentions(
    path: &Path,
    lang: Option<&str>,
) -> Result<Vec<MewsliMention>, TaskError> {
    let text = read_to_string(path)?;
    let mut out = Vec::new();
    for (n, obj) in json_lines(path, &text)? {
        let context = obj
            .get("context")
            .and_then(Value::as_object)
            .ok_or_else(|| TaskError::format(path, n, "missing object `context`"))?;
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
            let span = m
                .get("mention_span")
                .and_then(Value::as_object)
                .ok_or_else(|| TaskError::format(path, n, "mention without `mention_span`"))?;
            out.push(MewsliMention {
                example_id: field(path, n, m, "example_id")?,
                lang: doc_lang.clone(),
                text: field(path, n, span, "text")?,
                entity_id: m
                    .get("entity_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                line: n,
            });
        }
    }
    Ok(out)
}

/// Mewsli-X: mentions of `ctx.lang` against `candidate_set_entities.jsonl` (same folder or
/// its parent). Query text = mention text; candidate text = `title: description`.
pub fn read_mewslix(ctx: &ReadCtx<'_>, path: &Path) -> Result<Dataset, TaskError> {
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
        let id = field(&entities_path, n, &obj, "entity_id")?;
        let title = obj.get("title").and_then(Value::as_str).unwrap_or_default();
        let description = obj
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        index.insert(id, candidates.len());
        candidates.push(format!("{title}: {description}"));
    }
    let mut queries = Vec::new();
    let mut gold = Vec::new();
    for m in mentions {
        let g = *index.get(&m.entity_id).ok_or_else(|| {
            TaskError::format(
                path,
                m.line,
                format!(
                    "entity `{}` of mention {} is not in the candidate set",
                    m.entity_id, m.example_id
                ),
            )
        })?;
        queries.push(m.text);
        gold.push(g);
    }
    Ok(Dataset::Retrieval(RetrievalSet {
        queries,
        candidates,
        gold,
    }))
}
