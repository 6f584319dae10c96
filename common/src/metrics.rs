//! The shape of the metrics a job reports, checked by the worker (a bad metrics file is the
//! job's permanent failure) and again by the coordinator (a bad `CompleteJob` is refused and
//! changes nothing).
//!
//! - Every job: one JSON object. Its `"train"` entry, if any, is an object of anything (dev
//!   scores, steps, phases).
//! - Evaluate jobs: every language the job scores maps to a non-empty object of numbers
//!   (`{"de": {"accuracy": 81.2}}`); no other keys.
//! - Training jobs: an object of objects (their own dev scores, steps; `"train"` by convention).

use std::fmt::Write as _;

use crate::job::{JobSpec, StageKind};

/// The key under which training metrics go.
pub const TRAIN_KEY: &str = "train";

/// Checks `metrics` (`None`: the job reported none) against what `spec`'s job must report.
/// The error says what is wrong, naming the key, for example
/// `language "sw" is missing (the job scores de, sw)`.
pub fn check(spec: &JobSpec, metrics: Option<&serde_json::Value>) -> Result<(), String> {
    let evaluate = spec.kind == StageKind::Evaluate;
    let Some(metrics) = metrics else {
        return if evaluate {
            Err(format!(
                "are missing (the job scores {})",
                spec.languages.join(", ")
            ))
        } else {
            Ok(())
        };
    };
    let Some(object) = metrics.as_object() else {
        return Err(format!(
            "must be one JSON object, found {}",
            json_kind(metrics)
        ));
    };
    for (key, value) in object {
        if key == TRAIN_KEY {
            if !value.is_object() {
                return Err(format!(
                    "\"{TRAIN_KEY}\" must be an object, found {}",
                    json_kind(value)
                ));
            }
            continue;
        }
        if !evaluate {
            if !value.is_object() {
                return Err(format!(
                    "of a {} job must map each key to an object, found {key:?}: {}",
                    spec.kind,
                    json_kind(value)
                ));
            }
            continue;
        }
        if !spec.languages.iter().any(|l| l == key) {
            return Err(format!(
                "hold key {key:?}, which is not a language of the job (it scores {})",
                spec.languages.join(", ")
            ));
        }
        let Some(scores) = value.as_object().filter(|o| !o.is_empty()) else {
            return Err(format!(
                "for language {key:?} must be a non-empty object of numbers, found {}",
                json_kind(value)
            ));
        };
        let mut bad = String::new();
        for (name, v) in scores {
            if !v.is_number() {
                let _ = write!(bad, "{name:?} is {}", json_kind(v));
                break;
            }
        }
        if !bad.is_empty() {
            return Err(format!("for language {key:?} must be numbers: {bad}"));
        }
    }
    if evaluate && let Some(missing) = spec.languages.iter().find(|l| !object.contains_key(*l)) {
        return Err(format!(
            "lack language {missing:?} (the job scores {})",
            spec.languages.join(", ")
        ));
    }
    Ok(())
}

/// What a JSON value is, for messages ("a number", "an array", …).
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::job::{ExecutorSpec, Recipe};

    fn spec(kind: StageKind, languages: &[&str]) -> JobSpec {
        JobSpec {
            kind,
            model: "m".into(),
            model_source: "m".into(),
            task: "xnli".into(),
            intermediate: "none".into(),
            languages: languages.iter().map(|l| l.to_string()).collect(),
            seed: 1,
            recipe: Recipe::new(),
            executor: ExecutorSpec::Burn,
            parent: None,
            data_version: "v".into(),
            code_version: "c".into(),
            task_defs: Default::default(),
        }
    }

    #[test]
    fn evaluate_metrics_must_cover_exactly_the_job_languages_with_numbers() {
        let s = spec(StageKind::Evaluate, &["de", "sw"]);
        let ok = json!({"de": {"accuracy": 81.2}, "sw": {"f1": 1, "em": 0.5}, "train": {"x": "y"}});
        assert_eq!(check(&s, Some(&ok)), Ok(()));
        let cases = [
            (json!(42), "must be one JSON object, found a number"),
            (json!([1]), "found an array"),
            (json!({"de": {"accuracy": 1}}), "lack language \"sw\""),
            (json!({"de": {"accuracy": 1}, "sw": {}}), "non-empty object"),
            (
                json!({"de": {"accuracy": "81"}, "sw": {"a": 1}}),
                "\"accuracy\" is a string",
            ),
            (json!({"de": {"accuracy": null}, "sw": {"a": 1}}), "is null"),
            (json!({"de": 81.2, "sw": {"a": 1}}), "found a number"),
            (
                json!({"de": {"a": 1}, "sw": {"a": 1}, "fr": {"a": 1}}),
                "key \"fr\"",
            ),
            (
                json!({"de": {"a": 1}, "sw": {"a": 1}, "train": 3}),
                "\"train\" must be an object",
            ),
        ];
        for (metrics, expected) in cases {
            let e = check(&s, Some(&metrics)).unwrap_err();
            assert!(e.contains(expected), "{metrics}: {e}");
        }
        assert!(check(&s, None).unwrap_err().contains("missing"));
    }

    #[test]
    fn training_metrics_are_optional_objects_of_objects() {
        let s = spec(StageKind::Target, &[]);
        assert_eq!(check(&s, None), Ok(()));
        assert_eq!(check(&s, Some(&json!({}))), Ok(()));
        assert_eq!(
            check(&s, Some(&json!({"train": {"phases": [1, 2]}}))),
            Ok(())
        );
        assert_eq!(check(&s, Some(&json!({"dev": {"accuracy": 1}}))), Ok(()));
        let e = check(&s, Some(&json!({"steps": 10}))).unwrap_err();
        assert!(e.contains("\"steps\": a number"), "{e}");
        assert!(check(&s, Some(&json!("x"))).is_err());
        assert!(check(&s, Some(&json!(42))).is_err());
    }
}
