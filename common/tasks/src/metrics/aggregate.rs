//! XTREME-R task score (`evaluate.py`, XTREME-R.md §2.2): per-language metrics (×100) are
//! averaged over **all** listed languages (English included where listed); the task score is
//! (avg EM + avg F1) / 2 for QA, else avg F1, else avg accuracy, else avg map@20. The
//! non-English average is reported too (the purer zero-shot number).

use std::collections::BTreeMap;

/// Metrics of one language, e.g. `{"f1": 71.2, "exact_match": 55.0}` (×100).
pub type LangMetrics = BTreeMap<String, f64>;

#[derive(Debug, Clone, PartialEq)]
pub struct TaskScore {
    /// The task score over all listed languages.
    pub score: f64,
    /// The same over the non-English languages (`None` if there are none).
    pub non_english: Option<f64>,
    /// Per-metric averages over all listed languages.
    pub averages: BTreeMap<String, f64>,
}

/// Missing languages: the official average is only defined when every listed language has a
/// result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no result for language(s) {0}")]
pub struct MissingLanguages(pub String);

fn headline(avg: &BTreeMap<String, f64>, qa: bool) -> Option<f64> {
    if qa {
        return Some((avg.get("exact_match")? + avg.get("f1")?) / 2.0);
    }
    ["f1", "accuracy", "map@20"]
        .iter()
        .find_map(|k| avg.get(*k).copied())
}

fn average(per_lang: &BTreeMap<String, LangMetrics>, langs: &[&str]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for l in langs {
        for (k, v) in &per_lang[*l] {
            *sums.entry(k.clone()).or_default() += v;
        }
    }
    sums.into_iter()
        .map(|(k, v)| (k, v / langs.len() as f64))
        .collect()
}

/// Aggregates per-language results of one task. `qa` selects the (EM + F1) / 2 rule.
pub fn task_score(
    languages: &[String],
    per_lang: &BTreeMap<String, LangMetrics>,
    qa: bool,
) -> Result<TaskScore, MissingLanguages> {
    let missing: Vec<&str> = languages
        .iter()
        .filter(|l| !per_lang.contains_key(*l))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() || languages.is_empty() {
        return Err(MissingLanguages(missing.join(" ")));
    }
    let all: Vec<&str> = languages.iter().map(String::as_str).collect();
    let non_en: Vec<&str> = all.iter().copied().filter(|l| *l != "en").collect();
    let averages = average(per_lang, &all);
    let score = headline(&averages, qa).unwrap_or(f64::NAN);
    let non_english = if non_en.is_empty() {
        None
    } else {
        headline(&average(per_lang, &non_en), qa)
    };
    Ok(TaskScore {
        score,
        non_english,
        averages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qa_and_classification() {
        let mut per = BTreeMap::new();
        per.insert(
            "en".to_string(),
            LangMetrics::from([("exact_match".into(), 60.0), ("f1".into(), 80.0)]),
        );
        per.insert(
            "de".to_string(),
            LangMetrics::from([("exact_match".into(), 40.0), ("f1".into(), 60.0)]),
        );
        let langs = vec!["en".to_string(), "de".to_string()];
        let s = task_score(&langs, &per, true).unwrap();
        assert_eq!(s.score, 60.0);
        assert_eq!(s.non_english, Some(50.0));
        assert!(task_score(&["fr".to_string()], &per, true).is_err());
        let mut acc = BTreeMap::new();
        acc.insert(
            "en".to_string(),
            LangMetrics::from([("accuracy".into(), 90.0)]),
        );
        acc.insert(
            "de".to_string(),
            LangMetrics::from([("accuracy".into(), 70.0)]),
        );
        assert_eq!(task_score(&langs, &acc, false).unwrap().score, 80.0);
    }
}
