//! Conversions between the `stilts.v1` wire types and the domain types, done once at the edge.
//! Wire enums arrive as raw `i32`s: an unknown or unspecified value is an error, never a guess.

use stilts_proto::v1 as pb;
use thiserror::Error;

use crate::failure::{Failure, FailureReason};
use crate::heartbeat::{HeartbeatReply, RunningJob};
use crate::job::JobSpec;
use crate::progress::Progress;
use crate::series::Point;

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

impl From<FailureReason> for pb::FailureReason {
    fn from(reason: FailureReason) -> Self {
        match reason {
            FailureReason::Error => Self::Error,
            FailureReason::Timeout => Self::Timeout,
            FailureReason::BadMetrics => Self::BadMetrics,
            FailureReason::Preempted => Self::Preempted,
            FailureReason::Oom => Self::Oom,
            FailureReason::Data => Self::Data,
            FailureReason::User => Self::User,
            FailureReason::Cancelled => Self::Cancelled,
            FailureReason::WorkerLost => Self::WorkerLost,
        }
    }
}

impl TryFrom<pb::FailureReason> for FailureReason {
    type Error = ConvertError;

    fn try_from(reason: pb::FailureReason) -> Result<Self, ConvertError> {
        Ok(match reason {
            pb::FailureReason::Unspecified => return Err(ConvertError::UnspecifiedFailureReason),
            pb::FailureReason::Error => Self::Error,
            pb::FailureReason::Timeout => Self::Timeout,
            pb::FailureReason::BadMetrics => Self::BadMetrics,
            pb::FailureReason::Preempted => Self::Preempted,
            pb::FailureReason::Oom => Self::Oom,
            pb::FailureReason::Data => Self::Data,
            pb::FailureReason::User => Self::User,
            pb::FailureReason::Cancelled => Self::Cancelled,
            pb::FailureReason::WorkerLost => Self::WorkerLost,
        })
    }
}

/// Maps the raw `i32` a prost message carries for `FailureReason`.
pub fn failure_reason_from_wire(raw: i32) -> Result<FailureReason, ConvertError> {
    let reason =
        pb::FailureReason::try_from(raw).map_err(|_| ConvertError::UnknownFailureReason(raw))?;
    FailureReason::try_from(reason)
}

impl From<Failure> for pb::Failure {
    fn from(f: Failure) -> Self {
        Self {
            reason: pb::FailureReason::from(f.reason) as i32,
            retryable: f.retryable,
            counts_against_budget: f.counts_against_budget,
            message: f.message,
        }
    }
}

impl TryFrom<pb::Failure> for Failure {
    type Error = ConvertError;

    fn try_from(f: pb::Failure) -> Result<Self, ConvertError> {
        Ok(Self {
            reason: failure_reason_from_wire(f.reason)?,
            retryable: f.retryable,
            counts_against_budget: f.counts_against_budget,
            message: f.message,
        })
    }
}

impl From<Progress> for pb::Progress {
    fn from(p: Progress) -> Self {
        Self {
            step: p.step,
            total: p.total,
            loss: p.loss,
            phase: p.phase,
        }
    }
}

impl From<pb::Progress> for Progress {
    fn from(p: pb::Progress) -> Self {
        Self {
            step: p.step,
            total: p.total,
            loss: p.loss,
            phase: p.phase,
        }
    }
}

impl From<Point> for pb::CurvePoint {
    fn from(p: Point) -> Self {
        Self {
            step: p.step,
            loss: p.loss,
            lr: p.lr,
            grad_norm: p.grad_norm,
            dev: p.dev,
        }
    }
}

impl From<pb::CurvePoint> for Point {
    fn from(p: pb::CurvePoint) -> Self {
        Self {
            step: p.step,
            loss: p.loss,
            lr: p.lr,
            grad_norm: p.grad_norm,
            dev: p.dev,
        }
    }
}

/// The `spec_json` of a job assignment: the spec's canonical JSON (the form hashed into its key).
impl From<pb::RunningJob> for RunningJob {
    fn from(r: pb::RunningJob) -> Self {
        Self {
            job_key: r.job_key,
            attempt: r.attempt,
            fencing_token: r.fencing_token,
            progress: r.progress.map(Progress::from),
            curve: r.curve.into_iter().map(Point::from).collect(),
        }
    }
}

impl From<HeartbeatReply> for pb::HeartbeatResponse {
    fn from(r: HeartbeatReply) -> Self {
        Self {
            cancel_job_keys: r.cancel_job_keys,
            known: r.known,
        }
    }
}

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

    use super::*;
    use crate::job::{ExecutorSpec, StageKind};

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
