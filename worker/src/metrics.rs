//! Reading the metrics file a job writes: one JSON object, `{"de": {"accuracy": 81.2}, ...}`,
//! with training metrics under `"train"`.

use std::io::ErrorKind;
use std::path::Path;

use stilts_common::failure::{Failure, FailureReason};
use stilts_common::metrics::json_kind;

/// Reads and checks the metrics file at `path`. A file that is missing is an error when
/// `required` (evaluate jobs) and an empty object otherwise (training jobs may write no metrics).
/// Bad metrics are a permanent failure: the job claimed success, and running the same code again
/// writes the same file.
pub fn read_metrics(path: &Path, required: bool) -> Result<serde_json::Value, Failure> {
    let bad = |message: String| Failure::permanent(FailureReason::BadMetrics, message);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound && !required => {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(bad(format!(
                "the job succeeded but never wrote its metrics file {}",
                path.display()
            )));
        }
        Err(e) => {
            return Err(bad(format!(
                "cannot read metrics file {}: {e}",
                path.display()
            )));
        }
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "metrics file {} is not valid JSON at line {}, column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if !value.is_object() {
        return Err(bad(format!(
            "metrics file {} must hold one JSON object, found {}",
            path.display(),
            json_kind(&value)
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        std::fs::write(&path, r#"{"de": {"accuracy": 81.2}}"#).unwrap();
        assert_eq!(read_metrics(&path, true).unwrap()["de"]["accuracy"], 81.2);
    }

    #[test]
    fn missing_file_depends_on_whether_it_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        assert_eq!(read_metrics(&path, false).unwrap(), serde_json::json!({}));
        let f = read_metrics(&path, true).unwrap_err();
        assert_eq!(f.reason, FailureReason::BadMetrics);
        assert!(!f.retryable);
        assert!(f.message.contains("metrics.json"), "{}", f.message);
    }

    #[test]
    fn invalid_json_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        std::fs::write(&path, "{\n  \"de\": {\"accuracy\": 81.2,}\n}").unwrap();
        let f = read_metrics(&path, false).unwrap_err();
        assert_eq!(f.reason, FailureReason::BadMetrics);
        assert!(
            f.message
                .contains("metrics.json is not valid JSON at line 2, column"),
            "{}",
            f.message
        );
        std::fs::write(&path, "[1, 2]").unwrap();
        assert!(
            read_metrics(&path, true)
                .unwrap_err()
                .message
                .contains("found an array")
        );
    }
}
