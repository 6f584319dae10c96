//! Conversions between the `stilts.v1` wire types and the domain types, done once at the edge:
//! domain → wire in `to_wire.rs`, wire → domain in `from_wire.rs`. Wire enums arrive as raw
//! `i32`s: an unknown or unspecified value is an error, never a guess.

mod from_wire;
mod to_wire;

use thiserror::Error;

pub use from_wire::failure_reason_from_wire;
pub use to_wire::event_to_wire;

use crate::job::JobSpec;

/// A wire message that does not map onto a domain value.
#[derive(Debug, Error)]
pub enum ConvertError {
    #[error("failure reason is unspecified")]
    UnspecifiedFailureReason,
    #[error("unknown failure reason {0}")]
    UnknownFailureReason(i32),
    #[error("required field `{0}` is missing")]
    MissingField(&'static str),
    #[error("job spec JSON is invalid at line {line}, column {column}: {source}")]
    SpecJson {
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// The `spec_json` of a job assignment: the spec's canonical JSON (the form hashed into its key).
pub fn job_spec_to_json(spec: &JobSpec) -> String {
    serde_json::to_string(spec).expect("a JobSpec always serialises: string keys, finite fields")
}

/// Parses an assignment's `spec_json`; the error names the line and column.
pub fn job_spec_from_json(json: &str) -> Result<JobSpec, ConvertError> {
    serde_json::from_str(json).map_err(|source| ConvertError::SpecJson {
        line: source.line(),
        column: source.column(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stilts_proto::v1 as pb;

    use super::*;
    use crate::failure::{Failure, FailureReason};
    use crate::job::{ExecutorSpec, StageKind};
    use crate::progress::Progress;

    #[test]
    fn every_failure_reason_round_trips() {
        for reason in FailureReason::ALL {
            let wire = pb::FailureReason::from(reason);
            assert_eq!(FailureReason::try_from(wire).unwrap(), reason);
            assert_eq!(failure_reason_from_wire(wire as i32).unwrap(), reason);
        }
    }

    #[test]
    fn unspecified_and_unknown_reasons_are_errors() {
        assert!(matches!(
            failure_reason_from_wire(0),
            Err(ConvertError::UnspecifiedFailureReason)
        ));
        assert!(matches!(
            failure_reason_from_wire(99),
            Err(ConvertError::UnknownFailureReason(99))
        ));
    }

    #[test]
    fn failure_round_trips() {
        let f = Failure::preempted("node drained");
        let back = Failure::try_from(pb::Failure::from(f.clone())).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn progress_round_trips_including_missing_loss() {
        let p = Progress {
            step: 3,
            total: 10,
            loss: 0.25,
            phase: "train".into(),
        };
        assert_eq!(Progress::from(pb::Progress::from(p.clone())), p);
        let none = Progress::default();
        assert!(pb::Progress::from(none.clone()).loss.is_nan());
        assert_eq!(Progress::from(pb::Progress::from(none.clone())), none);
    }

    fn spec() -> JobSpec {
        let mut recipe = BTreeMap::new();
        recipe.insert("lr".to_string(), serde_json::json!(1e-5));
        JobSpec {
            kind: StageKind::Evaluate,
            model: "xlmr".into(),
            model_source: "models/xlm-roberta-base".into(),
            task: "xnli".into(),
            intermediate: "mnli".into(),
            languages: vec!["de".into(), "sw".into()],
            seed: 2,
            recipe,
            executor: ExecutorSpec::Command {
                template: "eval {languages}".into(),
                retryable_exit_codes: vec![75],
                timeout_s: Some(60),
            },
            parent: Some("abc".into()),
            data_version: "v1".into(),
            code_version: "c1".into(),
            task_defs: Default::default(),
        }
    }

    #[test]
    fn job_spec_round_trips_through_json() {
        let s = spec();
        assert_eq!(job_spec_from_json(&job_spec_to_json(&s)).unwrap(), s);
    }

    #[test]
    fn bad_spec_json_names_line_and_column() {
        let e = job_spec_from_json("{\n  \"kind\": 3\n}").unwrap_err();
        assert!(matches!(e, ConvertError::SpecJson { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
