//! Extractive QA (SQuAD, XQuAD, MLQA, TyDiQA-GoldP) as XTREME featurises and decodes it:
//! question truncated to `max_query_len` tokens, context cut into windows of the remaining room
//! that start `doc_stride` tokens apart; the gold span's tokens in a window, or the summary token
//! (`[CLS]` / `<s>` first; XLNet's `<cls>` last) when the answer is not inside it; n-best decoding (20 starts × 20 ends,
//! end ≥ start, at most 30 sub-tokens, both in the context, start in its max-context window)
//! mapped back to the context text through the tokenizer's character offsets.

use std::collections::HashMap;
use std::sync::Arc;

use stilts_tasks::example::QaExample;
use stilts_tasks::metrics::squad::{QaGold, QaNormalization, qa_scores};

use crate::error::{Result, TrainerError};
use crate::example::{Example, Scores, SpanTarget, Target};
use crate::recipe::TrainConfig;
use crate::tokenize::{Encoded, TemplatePiece, TextTokenizer};

/// Start and end candidates kept per window.
pub const N_BEST: usize = 20;
/// Longest answer, in sub-tokens.
pub const MAX_ANSWER_TOKENS: usize = 30;

/// Window geometry (recipe `max_seq_len`, `doc_stride`, `max_query_len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QaWindows {
    pub max_len: usize,
    pub doc_stride: usize,
    pub max_query_len: usize,
}

impl QaWindows {
    pub fn from_config(cfg: &TrainConfig) -> Self {
        Self {
            max_len: cfg.max_seq_len,
            doc_stride: cfg.doc_stride,
            max_query_len: cfg.max_query_len,
        }
    }
}

impl Default for QaWindows {
    /// XTREME's 384 / 128 / 64.
    fn default() -> Self {
        Self {
            max_len: 384,
            doc_stride: 128,
            max_query_len: 64,
        }
    }
}

/// `(start, len)` of each window over `n` context tokens with `room` tokens per window.
pub fn spans(n: usize, room: usize, stride: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let len = (n - start).min(room);
        out.push((start, len));
        if start + len >= n {
            return out;
        }
        start += len.min(stride);
    }
}

/// The windows (examples) of one question.
pub fn features(
    tok: &TextTokenizer,
    template: &[TemplatePiece],
    question: usize,
    ex: &QaExample,
    w: QaWindows,
) -> Result<Vec<Example>> {
    let mut q = tok.encode_plain(&ex.question)?.ids;
    q.truncate(w.max_query_len);
    let Encoded {
        ids: c,
        offsets: offs,
        ..
    } = tok.encode_plain(&ex.context)?;
    let specials = template
        .iter()
        .filter(|p| matches!(p, TemplatePiece::Special { .. }))
        .count();
    let room = w
        .max_len
        .checked_sub(q.len() + specials)
        .filter(|&r| r > 0)
        .ok_or_else(|| {
            TrainerError::Config(format!(
                "max_seq_len {} leaves no room for the context of question {}",
                w.max_len, ex.id
            ))
        })?;
    let gold_tokens = ex.answers.first().and_then(|(text, start)| {
        let end = start + text.chars().count();
        let s = offs.iter().position(|&(_, e)| e > *start)?;
        let e = offs.iter().rposition(|&(b, _)| b < end)?;
        (e >= s).then_some((s, e))
    });
    let windows = spans(c.len(), room, w.doc_stride.max(1));
    // Max-context window of each context token (XTREME's `_check_is_max_context`).
    let mut best = vec![(f64::MIN, 0usize); c.len()];
    for (k, &(s, len)) in windows.iter().enumerate() {
        for (i, b) in best.iter_mut().enumerate().skip(s).take(len) {
            let score = (i - s).min(s + len - 1 - i) as f64 + 0.01 * len as f64;
            if score > b.0 {
                *b = (score, k);
            }
        }
    }
    let context: Arc<str> = Arc::from(ex.context.as_str());
    let answers: Vec<String> = ex.answers.iter().map(|(t, _)| t.clone()).collect();
    let mut out = Vec::with_capacity(windows.len());
    for (k, &(s, len)) in windows.iter().enumerate() {
        let (mut ids, mut type_ids, mut chars, mut max_context) = (vec![], vec![], vec![], vec![]);
        let mut ctx_at = 0;
        for piece in template {
            match *piece {
                TemplatePiece::Special { id, type_id } => {
                    ids.push(id);
                    type_ids.push(type_id);
                    chars.push(None);
                    max_context.push(false);
                }
                TemplatePiece::First { type_id } => {
                    ids.extend(&q);
                    type_ids.extend(std::iter::repeat_n(type_id, q.len()));
                    chars.extend(std::iter::repeat_n(None, q.len()));
                    max_context.extend(std::iter::repeat_n(false, q.len()));
                }
                TemplatePiece::Second { type_id } => {
                    ctx_at = ids.len();
                    for i in s..s + len {
                        ids.push(c[i]);
                        type_ids.push(type_id);
                        chars.push(Some(offs[i]));
                        max_context.push(best[i].1 == k);
                    }
                }
            }
        }
        let n = ids.len();
        // The summary token: first where the template starts with a special token (BERT,
        // RoBERTa), else last (XLNet's `A <sep> B <sep> <cls>`).
        let cls = match template.first() {
            Some(TemplatePiece::Special { .. }) => 0,
            _ => n - 1,
        };
        let gold = if answers.is_empty() {
            None
        } else {
            Some(match gold_tokens {
                Some((gs, ge)) if gs >= s && ge < s + len => (ctx_at + gs - s, ctx_at + ge - s),
                _ => (cls, cls),
            })
        };
        out.push(Example {
            id: format!("{}#{k}", ex.id),
            inputs: vec![Encoded {
                ids,
                type_ids,
                offsets: vec![(0, 0); n],
            }],
            target: Target::Span(Box::new(SpanTarget {
                question,
                qid: ex.id.clone(),
                context: context.clone(),
                context_lang: ex.context_lang.clone(),
                answers: answers.clone(),
                gold,
                chars,
                max_context,
            })),
        });
    }
    Ok(out)
}

/// The windows of every question of a dataset.
pub fn all_features(tok: &TextTokenizer, data: &[QaExample], w: QaWindows) -> Result<Vec<Example>> {
    let template = tok.pair_template()?;
    let mut out = Vec::new();
    for (i, ex) in data.iter().enumerate() {
        out.extend(features(tok, &template, i, ex, w)?);
    }
    Ok(out)
}

fn top(v: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    idx.truncate(N_BEST);
    idx
}

/// The best answer over a question's windows, as a substring of its context ("" if none).
fn decode_question(windows: &[(&SpanTarget, &[f32])]) -> String {
    let mut best: Option<(f32, usize, usize)> = None;
    for (t, s) in windows {
        let n = t.chars.len();
        let (st, en) = s.split_at(n.min(s.len()));
        for &i in &top(st) {
            for &j in &top(en) {
                let (Some(a), Some(b)) = (t.chars[i], t.chars.get(j).copied().flatten()) else {
                    continue;
                };
                if !t.max_context[i] || j < i || j - i + 1 > MAX_ANSWER_TOKENS {
                    continue;
                }
                let score = st[i] + en[j];
                if best.is_none_or(|(x, ..)| score > x) {
                    best = Some((score, a.0, b.1));
                }
            }
        }
    }
    let Some((_, a, b)) = best else {
        return String::new();
    };
    windows.first().map_or_else(String::new, |(t, _)| {
        t.context.chars().skip(a).take(b - a).collect()
    })
}

/// One `(question id, answer)` per question, in dataset order. Scores per window are the
/// start logits then the end logits of its positions.
pub fn decode(examples: &[Example], scores: &Scores) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut group: Vec<(&SpanTarget, &[f32])> = Vec::new();
    for (e, s) in examples.iter().zip(scores) {
        let Target::Span(t) = &e.target else {
            continue;
        };
        if group.first().is_some_and(|(g, _)| g.question != t.question) {
            out.push((group[0].0.qid.clone(), decode_question(&group)));
            group.clear();
        }
        group.push((t, s));
    }
    if let Some((g, _)) = group.first() {
        out.push((g.qid.clone(), decode_question(&group)));
    }
    out
}

/// EM and F1 (×100) of the decoded answers against every labelled question; the selection
/// score is F1.
pub fn qa_metrics(
    examples: &[Example],
    scores: &Scores,
    norm: QaNormalization,
) -> Result<(f64, serde_json::Map<String, serde_json::Value>)> {
    let mut gold: Vec<QaGold> = Vec::new();
    for e in examples {
        if let Target::Span(t) = &e.target
            && !t.answers.is_empty()
            && gold.last().is_none_or(|g| g.id != t.qid)
        {
            gold.push(QaGold {
                id: t.qid.clone(),
                answers: t.answers.clone(),
                context_lang: t.context_lang.clone(),
            });
        }
    }
    let preds: HashMap<String, String> = decode(examples, scores).into_iter().collect();
    let s = qa_scores(norm, &gold, &preds).map_err(|e| TrainerError::Data(format!("{e:?}")))?;
    let mut m = serde_json::Map::new();
    m.insert("exact_match".into(), (s.exact_match * 100.0).into());
    m.insert("f1".into(), (s.f1 * 100.0).into());
    Ok((s.f1 * 100.0, m))
}

/// Predictions as XTREME's JSON `{id: answer}`.
pub fn predictions_json(examples: &[Example], scores: &Scores) -> String {
    let map: serde_json::Map<String, serde_json::Value> = decode(examples, scores)
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}
