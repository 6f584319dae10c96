//! SQuAD v1.1 exact match and F1 (XQuAD, TyDiQA-GoldP), written from the documented algorithm
//! (XTREME-R.md §4.1): `normalize = white_space_fix(remove_articles(remove_punc(lower(s))))`,
//! ASCII punctuation only; per question the max over gold answers; averages over **all** gold
//! questions, a missing prediction counting 0.

use std::collections::HashMap;

use super::pytext::{py_lower, py_split, remove_words};

/// ASCII punctuation (Python's `string.punctuation`).
pub const ASCII_PUNCT: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// SQuAD v1.1 answer normalisation.
pub fn normalize_answer(s: &str) -> String {
    let lower = py_lower(s);
    let no_punc: String = lower
        .chars()
        .filter(|c| !ASCII_PUNCT.contains(*c))
        .collect();
    let no_articles = remove_words(&no_punc, &["a", "an", "the"]);
    py_split(&no_articles).collect::<Vec<_>>().join(" ")
}

/// Token F1 between two token lists (multiset overlap).
pub fn token_f1(pred: &[String], gold: &[String]) -> f64 {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in gold {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0i64;
    for t in pred {
        if let Some(c) = counts.get_mut(t.as_str())
            && *c > 0
        {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let p = same as f64 / pred.len() as f64;
    let r = same as f64 / gold.len() as f64;
    2.0 * p * r / (p + r)
}

/// One question's gold answers and the language of its context.
#[derive(Debug, Clone, PartialEq)]
pub struct QaGold {
    pub id: String,
    pub answers: Vec<String>,
    pub context_lang: String,
}

/// QA scores as fractions, plus the ids that had no prediction (they counted 0).
#[derive(Debug, Clone, PartialEq)]
pub struct QaScores {
    pub exact_match: f64,
    pub f1: f64,
    pub total: usize,
    pub missing: Vec<String>,
}

/// Which normalisation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QaNormalization {
    /// SQuAD v1.1 (XQuAD, TyDiQA).
    Squad,
    /// MLQA: language-aware, by the context language.
    Mlqa,
}

/// Per-question (EM, F1) for one prediction, max over gold answers.
pub fn question_scores(
    norm: QaNormalization,
    prediction: &str,
    answers: &[String],
    lang: &str,
) -> Result<(f64, f64), super::mlqa::UnknownLanguage> {
    let mut em: f64 = 0.0;
    let mut f1: f64 = 0.0;
    for gold in answers {
        let (e, f) = match norm {
            QaNormalization::Squad => {
                let (p, g) = (normalize_answer(prediction), normalize_answer(gold));
                let pt: Vec<String> = py_split(&p).map(str::to_string).collect();
                let gt: Vec<String> = py_split(&g).map(str::to_string).collect();
                ((p == g) as u8 as f64, token_f1(&pt, &gt))
            }
            QaNormalization::Mlqa => {
                let (p, g) = (
                    super::mlqa::normalize_answer(prediction, lang)?,
                    super::mlqa::normalize_answer(gold, lang)?,
                );
                let pt: Vec<String> = py_split(&p).map(str::to_string).collect();
                let gt: Vec<String> = py_split(&g).map(str::to_string).collect();
                ((p == g) as u8 as f64, token_f1(&pt, &gt))
            }
        };
        em = em.max(e);
        f1 = f1.max(f);
    }
    Ok((em, f1))
}

/// Scores `predictions` (id → answer text) against every gold question.
pub fn qa_scores(
    norm: QaNormalization,
    gold: &[QaGold],
    predictions: &HashMap<String, String>,
) -> Result<QaScores, super::mlqa::UnknownLanguage> {
    let (mut em, mut f1) = (0.0, 0.0);
    let mut missing = Vec::new();
    for q in gold {
        let Some(pred) = predictions.get(&q.id) else {
            missing.push(q.id.clone());
            continue;
        };
        let (e, f) = question_scores(norm, pred, &q.answers, &q.context_lang)?;
        em += e;
        f1 += f;
    }
    let total = gold.len();
    let div = if total == 0 { 1.0 } else { total as f64 };
    Ok(QaScores {
        exact_match: em / div,
        f1: f1 / div,
        total,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalize_answer("The  Denver Broncos!"), "denver broncos");
        assert_eq!(normalize_answer("«an» apple"), "« » apple");
    }

    #[test]
    fn f1_and_em() {
        let gold = vec![QaGold {
            id: "q".into(),
            answers: vec!["Denver Broncos".into(), "the Broncos".into()],
            context_lang: "en".into(),
        }];
        let mut preds = HashMap::new();
        preds.insert("q".to_string(), "Broncos".to_string());
        let s = qa_scores(QaNormalization::Squad, &gold, &preds).unwrap();
        assert_eq!(s.exact_match, 1.0);
        assert_eq!(s.f1, 1.0);
        preds.insert("q".to_string(), "Denver".to_string());
        let s = qa_scores(QaNormalization::Squad, &gold, &preds).unwrap();
        assert_eq!(s.exact_match, 0.0);
        assert!((s.f1 - 2.0 / 3.0).abs() < 1e-12);
        let s = qa_scores(QaNormalization::Squad, &gold, &HashMap::new()).unwrap();
        assert_eq!((s.f1, s.missing.len()), (0.0, 1));
    }
}
