//! What the report needs to know about a task: its domain label (for alignment) and how its
//! per-language score is formed from the metrics a worker reports.

use std::collections::BTreeSet;

use serde::Serialize;
use stilts_tasks::{Catalog, Metric};

/// Domain label of tasks the catalog does not know. Cells involving it are never counted as
/// aligned or not aligned.
pub const UNKNOWN_DOMAIN: &str = "unknown";

/// How a task's per-language score is formed (XTREME-R.md §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "metric")]
pub enum ScoreRule {
    /// (`exact_match` + `f1`) / 2; averaging it over languages equals (avg EM + avg F1) / 2.
    Qa,
    /// One named metric.
    Metric(String),
    /// Decided from the metrics the target's results carry: QA when both `exact_match` and `f1`
    /// are present, else `f1`, else `accuracy`, else `map@20`, else the only metric.
    Auto,
}

impl ScoreRule {
    /// Resolves [`ScoreRule::Auto`] against the metric names seen; `None` if nothing fits.
    pub fn resolve(&self, seen: &BTreeSet<String>) -> Option<ScoreRule> {
        match self {
            ScoreRule::Auto => {
                if seen.contains("exact_match") && seen.contains("f1") {
                    return Some(ScoreRule::Qa);
                }
                for m in ["f1", "accuracy", "map@20"] {
                    if seen.contains(m) {
                        return Some(ScoreRule::Metric(m.to_string()));
                    }
                }
                if seen.len() == 1 {
                    return seen.iter().next().map(|m| ScoreRule::Metric(m.clone()));
                }
                None
            }
            other => Some(other.clone()),
        }
    }

    /// The metric names this rule reads.
    pub fn metrics(&self) -> Vec<&str> {
        match self {
            ScoreRule::Qa => vec!["exact_match", "f1"],
            ScoreRule::Metric(m) => vec![m.as_str()],
            ScoreRule::Auto => vec![],
        }
    }

    /// Short label for tables: `(EM+F1)/2`, `accuracy`, …
    pub fn label(&self) -> String {
        match self {
            ScoreRule::Qa => "(EM+F1)/2".to_string(),
            ScoreRule::Metric(m) => m.clone(),
            ScoreRule::Auto => "auto".to_string(),
        }
    }
}

/// Domain label and score rule of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskInfo {
    pub domain: String,
    pub score: ScoreRule,
}

impl TaskInfo {
    /// The fallback for a task name no catalog knows (command-executor grids).
    pub fn unknown() -> TaskInfo {
        TaskInfo {
            domain: UNKNOWN_DOMAIN.to_string(),
            score: ScoreRule::Auto,
        }
    }

    /// From a catalog entry. STS-B's Pearson/Spearman pair, which XTREME-R never aggregates,
    /// scores by `pearson`.
    pub fn from_task(task: &stilts_tasks::TaskDef) -> TaskInfo {
        let score = match task.metric {
            Metric::Squad | Metric::Mlqa => ScoreRule::Qa,
            Metric::Accuracy => ScoreRule::Metric("accuracy".into()),
            Metric::SeqevalF1 => ScoreRule::Metric("f1".into()),
            Metric::MapAt20 => ScoreRule::Metric("map@20".into()),
            Metric::PearsonSpearman => ScoreRule::Metric("pearson".into()),
        };
        TaskInfo {
            domain: task.domain.clone(),
            score,
        }
    }
}

/// A lookup over `catalog`, falling back to [`TaskInfo::unknown`].
pub fn catalog_tasks(catalog: &Catalog) -> impl Fn(&str) -> TaskInfo + '_ {
    move |name: &str| {
        catalog
            .get(name)
            .map(TaskInfo::from_task)
            .unwrap_or_else(TaskInfo::unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn catalog_and_fallback() {
        let catalog = Catalog::builtin();
        let lookup = catalog_tasks(&catalog);
        assert_eq!(lookup("xquad").score, ScoreRule::Qa);
        assert_eq!(lookup("xquad").domain, "qa");
        assert_eq!(lookup("xnli").score, ScoreRule::Metric("accuracy".into()));
        assert_eq!(lookup("mnli").domain, "nli");
        assert_eq!(lookup("udpos").score, ScoreRule::Metric("f1".into()));
        assert_eq!(lookup("my-own-task"), TaskInfo::unknown());
    }

    #[test]
    fn auto_rule() {
        let auto = ScoreRule::Auto;
        assert_eq!(
            auto.resolve(&set(&["exact_match", "f1"])),
            Some(ScoreRule::Qa)
        );
        assert_eq!(
            auto.resolve(&set(&["f1", "precision", "recall"])),
            Some(ScoreRule::Metric("f1".into()))
        );
        assert_eq!(
            auto.resolve(&set(&["accuracy", "loss"])),
            Some(ScoreRule::Metric("accuracy".into()))
        );
        assert_eq!(
            auto.resolve(&set(&["bleu"])),
            Some(ScoreRule::Metric("bleu".into()))
        );
        assert_eq!(auto.resolve(&set(&["bleu", "chrf"])), None);
        assert_eq!(auto.resolve(&set(&[])), None);
    }
}
