//! Values as stored in etcd: compact JSON.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use stilts_common::store::{CellRecord, JobRecord, StoreError, SweepRecord};

use super::error::{EtcdError, corrupt};

/// The value of `sweeps/<name>`: the record plus where its cells are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSweep {
    #[serde(flatten)]
    pub record: SweepRecord,
    /// Number of cells, spread over `ceil(cells / CELLS_PER_KEY)` chunk keys.
    pub cells: u64,
}

/// One cell in a chunk: `[model, intermediate, target, language, seed, evaluate_job]`.
type CellTuple = (String, String, String, String, u64, String);

pub(crate) fn encode<T: Serialize>(
    what: impl FnOnce() -> String,
    value: &T,
) -> Result<Vec<u8>, EtcdError> {
    serde_json::to_vec(value).map_err(|source| EtcdError::Encode {
        what: what(),
        source,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what(), e))
}

/// A job as stored, with its version field set (the stored value carries it too, for humans
/// reading etcd; the authoritative version is the key's etcd `version`).
pub(crate) fn encode_job(job: &JobRecord, version: u64) -> Result<Vec<u8>, EtcdError> {
    if job.version == version {
        return encode(|| format!("job {}", job.key), job);
    }
    let mut job = job.clone();
    job.version = version;
    encode(|| format!("job {}", job.key), &job)
}

/// Decodes a job value; `version` is the key's etcd version.
pub(crate) fn decode_job(key: &str, bytes: &[u8], version: i64) -> Result<JobRecord, StoreError> {
    let mut job: JobRecord = decode(|| format!("job {key}"), bytes)?;
    job.version = u64::try_from(version)
        .map_err(|_| corrupt(format!("job {key}"), "negative etcd version"))?;
    Ok(job)
}

pub(crate) fn encode_cells(sweep: &str, cells: &[CellRecord]) -> Result<Vec<u8>, EtcdError> {
    let tuples: Vec<(&str, &str, &str, &str, u64, &str)> = cells
        .iter()
        .map(|c| {
            (
                c.model.as_str(),
                c.intermediate.as_str(),
                c.target.as_str(),
                c.language.as_str(),
                c.seed,
                c.evaluate_job.as_str(),
            )
        })
        .collect();
    encode(|| format!("cells of sweep {sweep}"), &tuples)
}

pub(crate) fn decode_cells(
    sweep: &str,
    bytes: &[u8],
    out: &mut Vec<CellRecord>,
) -> Result<(), StoreError> {
    let tuples: Vec<CellTuple> = decode(|| format!("cells of sweep {sweep}"), bytes)?;
    out.extend(tuples.into_iter().map(
        |(model, intermediate, target, language, seed, evaluate_job)| CellRecord {
            model,
            intermediate,
            target,
            language,
            seed,
            evaluate_job,
        },
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_compactly() {
        let cell = CellRecord {
            model: "xlmr".into(),
            intermediate: "none".into(),
            target: "xnli".into(),
            language: "sw".into(),
            seed: 3,
            evaluate_job: "ab".repeat(32),
        };
        let bytes = encode_cells("s", std::slice::from_ref(&cell)).unwrap();
        assert!(bytes.len() < 110, "{}", String::from_utf8_lossy(&bytes));
        let mut out = Vec::new();
        decode_cells("s", &bytes, &mut out).unwrap();
        assert_eq!(out, vec![cell]);
    }
}
