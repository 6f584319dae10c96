//! Chunk F1 as `seqeval.metrics.f1_score(y_true, y_pred)` computes it in **seqeval 1.2.2,
//! default mode** (no `mode="strict"`, no scheme, prefix tags). Reproduced behaviour:
//!
//! * sentences are flattened into one sequence with an `O` after each sentence;
//! * a tag's prefix is its first character and its type the rest after the first `-`
//!   (`B-PER` → B/PER; `NOUN` → N/OUN; `CCONJ` and `SCONJ` → C/CONJ and S/CONJ, one type; `X` → X/_);
//! * chunk boundaries follow seqeval's `end_of_chunk`/`start_of_chunk` rules (conlleval
//!   compatible: a stray `I-` starts a chunk; runs of one POS tag merge into one chunk; a chunk
//!   that a new `S`-prefixed start overwrites is dropped — the CCONJ SCONJ quirk);
//! * micro average over chunk types: P = tp/pred, R = tp/true, F1 = 2PR/(P+R), 0 when undefined.

use std::collections::HashSet;

/// A chunk: (type, first index, last index) in the flattened sequence.
pub type Chunk = (String, usize, usize);

fn split_tag(tag: &str) -> (char, String) {
    let mut chars = tag.chars();
    let prefix = chars.next().unwrap_or('O');
    let rest: String = chars.collect();
    let ty = match rest.split_once('-') {
        Some((_, after)) => after.to_string(),
        None => rest,
    };
    (prefix, if ty.is_empty() { "_".to_string() } else { ty })
}

fn end_of_chunk(prev_tag: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(prev_tag, 'E' | 'S')
        || (prev_tag == 'B' && matches!(tag, 'B' | 'S' | 'O'))
        || (prev_tag == 'I' && matches!(tag, 'B' | 'S' | 'O'))
        || (prev_tag != 'O' && prev_tag != '.' && prev_type != ty)
}

fn start_of_chunk(prev_tag: char, tag: char, prev_type: &str, ty: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (prev_tag == 'E' && matches!(tag, 'E' | 'I'))
        || (prev_tag == 'S' && matches!(tag, 'E' | 'I'))
        || (prev_tag == 'O' && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_type != ty)
}

/// seqeval 1.2.2 `get_entities` over sentences (flattened with `O` separators).
pub fn get_entities<S: AsRef<str>>(sentences: &[Vec<S>]) -> Vec<Chunk> {
    let mut flat: Vec<&str> = Vec::new();
    for s in sentences {
        flat.extend(s.iter().map(AsRef::as_ref));
        flat.push("O");
    }
    flat.push("O");
    let mut chunks = Vec::new();
    let (mut prev_tag, mut prev_type) = ('O', String::new());
    let mut begin = 0;
    for (i, chunk) in flat.iter().enumerate() {
        let (tag, ty) = split_tag(chunk);
        if end_of_chunk(prev_tag, tag, &prev_type, &ty) {
            chunks.push((prev_type.clone(), begin, i.saturating_sub(1)));
        }
        if start_of_chunk(prev_tag, tag, &prev_type, &ty) {
            begin = i;
        }
        prev_tag = tag;
        prev_type = ty;
    }
    chunks
}

/// Micro-averaged chunk precision, recall and F1 (fractions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeqevalScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Sentence/token counts differ between gold and predictions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sentence {sentence}: {gold} gold tags but {pred} predicted")]
pub struct LengthMismatch {
    pub sentence: usize,
    pub gold: usize,
    pub pred: usize,
}

/// `seqeval.metrics.{precision,recall,f1}_score(y_true, y_pred)` of seqeval 1.2.2.
pub fn seqeval_scores<S: AsRef<str>>(
    y_true: &[Vec<S>],
    y_pred: &[Vec<S>],
) -> Result<SeqevalScores, LengthMismatch> {
    if y_true.len() != y_pred.len() {
        return Err(LengthMismatch {
            sentence: y_true.len().min(y_pred.len()),
            gold: y_true.len(),
            pred: y_pred.len(),
        });
    }
    for (i, (t, p)) in y_true.iter().zip(y_pred).enumerate() {
        if t.len() != p.len() {
            return Err(LengthMismatch {
                sentence: i,
                gold: t.len(),
                pred: p.len(),
            });
        }
    }
    let truth: HashSet<Chunk> = get_entities(y_true).into_iter().collect();
    let pred: HashSet<Chunk> = get_entities(y_pred).into_iter().collect();
    let tp = truth.intersection(&pred).count() as f64;
    let precision = if pred.is_empty() {
        0.0
    } else {
        tp / pred.len() as f64
    };
    let recall = if truth.is_empty() {
        0.0
    } else {
        tp / truth.len() as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Ok(SeqevalScores {
        precision,
        recall,
        f1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn pos_is_not_accuracy() {
        // XTREME-R.md §4.3: NOUN NOUN VERB PUNCT vs NOUN VERB VERB PUNCT → F1 1/3.
        let s = seqeval_scores(&[v("NOUN NOUN VERB PUNCT")], &[v("NOUN VERB VERB PUNCT")]).unwrap();
        assert!((s.f1 - 1.0 / 3.0).abs() < 1e-12, "{s:?}");
    }

    #[test]
    fn cconj_sconj_share_a_type() {
        let s = seqeval_scores(&[v("NOUN CCONJ NOUN")], &[v("NOUN SCONJ NOUN")]).unwrap();
        assert_eq!(s.f1, 1.0);
        // In `CCONJ SCONJ` the first chunk is dropped.
        assert_eq!(
            get_entities(&[v("CCONJ SCONJ")]),
            vec![("CONJ".to_string(), 1, 1)]
        );
    }

    #[test]
    fn stray_inside_tag_starts_entity() {
        let s = seqeval_scores(&[v("B-LOC O")], &[v("I-LOC O")]).unwrap();
        assert_eq!(s.f1, 1.0);
    }
}
