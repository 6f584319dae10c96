//! `data_version = "auto"`: job keys that hold digests of the data each job reads.
//!
//! The planner cannot read data (a coordinator may not see the files), so the client that
//! submits computes one digest per *input* and sends them with the grid (`Grid::data_digests`).
//! An input is what one kind of job reads of one task ([`input_key`]):
//!
//! | input | files |
//! |---|---|
//! | `intermediate/<task>` | the task's English train and dev splits (a `mixture`: its components' English train splits) |
//! | `target/<task>` | the English train split of the task (or of its `english_train` tasks) and its English dev split |
//! | `evaluate/<task>/<lang>` | the task's test split in `lang` |
//!
//! Each job's `data_version` becomes the digest of its own inputs, so a changed test file of
//! one language gives new keys to the evaluate jobs of that language only, and a changed
//! training file to the jobs that train on it and everything below them (a key holds its
//! parent's key).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::grid::{Grid, GridError, Location, NO_INTERMEDIATE};
use crate::job::StageKind;

/// The `data_version` that asks for digests.
pub const DATA_AUTO: &str = "auto";

/// The name of one input (see the module doc); `lang` only for evaluate inputs.
pub fn input_key(kind: StageKind, task: &str, lang: Option<&str>) -> String {
    match (kind, lang) {
        (StageKind::Evaluate, Some(l)) => format!("evaluate/{task}/{l}"),
        (kind, _) => format!("{}/{task}", kind.as_str()),
    }
}

/// Every input the grid's jobs read, by [`input_key`].
pub fn inputs(grid: &Grid) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for i in grid.intermediates.iter().filter(|i| *i != NO_INTERMEDIATE) {
        out.insert(input_key(StageKind::Intermediate, i, None));
    }
    for t in &grid.targets {
        out.insert(input_key(StageKind::Target, &t.task, None));
        for l in &t.languages {
            out.insert(input_key(StageKind::Evaluate, &t.task, Some(l)));
        }
    }
    out
}

/// An error naming the `data_version` line when the grid asks for digests and one is missing.
pub fn check(grid: &Grid, file: &str, text: &str) -> Result<(), GridError> {
    if grid.data_version != DATA_AUTO {
        return Ok(());
    }
    let Some(missing) = inputs(grid)
        .into_iter()
        .find(|k| !grid.data_digests.contains_key(k))
    else {
        return Ok(());
    };
    let offset = text.find("data_version").unwrap_or(0);
    Err(GridError::Invalid {
        at: Location::at(file, text, offset),
        path: "[sweep] data_version".into(),
        message: format!("\"auto\" needs a digest of the data, and none came for {missing}"),
        hint: "submit with `stilts run` or `stilts sweep submit` where the data is readable \
               (the recipe's data_dir, $STILTS_DATA_DIR or ./data), or set a fixed data_version"
            .into(),
    })
}

/// The `data_version` of one job: the grid's own string, or with "auto" the digest of the
/// job's inputs (an evaluate job's languages combined in their sorted order).
pub fn job_data_version(grid: &Grid, kind: StageKind, task: &str, languages: &[String]) -> String {
    if grid.data_version != DATA_AUTO {
        return grid.data_version.clone();
    }
    let digest = |k: String| grid.data_digests.get(&k).cloned().unwrap_or_default();
    match kind {
        StageKind::Evaluate => {
            let mut h = Sha256::new();
            for l in languages {
                h.update(format!("{l}={}\n", digest(input_key(kind, task, Some(l)))));
            }
            format!("sha256:{}", hex::encode(h.finalize()))
        }
        _ => digest(input_key(kind, task, None)),
    }
}

/// Keeps only the digests the grid reads (a client may send more).
pub fn retain_needed(grid: &Grid, digests: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let needed = inputs(grid);
    digests
        .iter()
        .filter(|(k, _)| needed.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
