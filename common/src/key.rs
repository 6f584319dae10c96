//! Job keys: the content hash that gives a stage job its identity.
//!
//! `job_key(spec)` is the lowercase sha256 hex of the spec's canonical JSON. The JSON is canonical
//! because `JobSpec`'s fields serialise in declaration order, `Recipe` is a `BTreeMap` (sorted
//! keys), evaluate languages are sorted by the planner, and serde_json prints numbers the same way
//! on every platform. The spec carries its parent's key, so a key covers the whole chain above the
//! job: a new recipe, template, seed, data or code version upstream gives every job below a new key.

use sha2::{Digest, Sha256};

use crate::job::JobSpec;

/// Length of a job key in hex characters.
pub const KEY_LEN: usize = 64;

/// The canonical JSON of a job spec: the bytes that are hashed into its key.
pub fn canonical_json(spec: &JobSpec) -> Vec<u8> {
    // Serialising plain structs, strings and a BTreeMap of JSON values cannot fail.
    serde_json::to_vec(spec).expect("a JobSpec always serialises to JSON")
}

/// The job key: sha256 hex of [`canonical_json`]. Equal keys mean the same work.
pub fn job_key(spec: &JobSpec) -> String {
    hex::encode(job_digest(spec, &mut Vec::new()))
}

/// The raw sha256 behind [`job_key`], serialising into `buf` (cleared first) so that a caller
/// hashing many specs reuses one buffer.
pub fn job_digest(spec: &JobSpec, buf: &mut Vec<u8>) -> [u8; 32] {
    buf.clear();
    serde_json::to_writer(&mut *buf, spec).expect("a JobSpec always serialises to JSON");
    Sha256::digest(buf.as_slice()).into()
}

/// Whether `s` looks like a job key (64 lowercase hex digits). Use it before a key becomes a path.
pub fn is_job_key(s: &str) -> bool {
    s.len() == KEY_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ExecutorSpec, Recipe, StageKind};

    fn spec() -> JobSpec {
        let mut recipe = Recipe::new();
        recipe.insert("lr".into(), serde_json::json!(1e-5));
        recipe.insert("batch_size".into(), serde_json::json!(32));
        JobSpec {
            kind: StageKind::Target,
            model: "mbert".into(),
            model_source: "bert-base-multilingual-cased".into(),
            task: "xnli".into(),
            intermediate: "mnli".into(),
            languages: vec![],
            seed: 1,
            recipe,
            executor: ExecutorSpec::Command {
                template: "python train.py --task {task}".into(),
                retryable_exit_codes: vec![75],
                timeout_s: Some(3600),
            },
            parent: Some("ab".repeat(32)),
            data_version: "xtreme-r-2021".into(),
            code_version: "git:abc123".into(),
            task_defs: Default::default(),
        }
    }

    #[test]
    fn key_is_pinned() {
        // Changing this value changes every job key ever stored: only with a migration.
        let key = job_key(&spec());
        assert_eq!(
            key,
            "f83b9f7eeab1612f2e29904532e5ccc99d5367b55edffed8d5943ed3f81bf9f2"
        );
        assert!(is_job_key(&key));
    }

    #[test]
    fn canonical_json_has_sorted_recipe() {
        let json = String::from_utf8(canonical_json(&spec())).unwrap();
        assert!(
            json.find("\"batch_size\"").unwrap() < json.find("\"lr\"").unwrap(),
            "{json}"
        );
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = job_key(&spec());
        let changes: Vec<fn(&mut JobSpec)> = vec![
            |s| s.seed = 2,
            |s| {
                s.recipe.insert("lr".into(), serde_json::json!(2e-5));
            },
            |s| s.parent = None,
            |s| s.parent = Some("cd".repeat(32)),
            |s| {
                if let ExecutorSpec::Command { template, .. } = &mut s.executor {
                    template.push_str(" --x");
                }
            },
            |s| s.executor = ExecutorSpec::Burn,
            |s| s.data_version = "other".into(),
            |s| s.code_version = "git:def456".into(),
            |s| s.task = "xquad".into(),
            |s| s.model_source = "xlm-roberta-base".into(),
            |s| s.languages = vec!["de".into()],
            |s| s.kind = StageKind::Evaluate,
        ];
        for (i, change) in changes.into_iter().enumerate() {
            let mut s = spec();
            change(&mut s);
            assert_ne!(job_key(&s), base, "change {i} kept the key");
        }
        assert_eq!(job_key(&spec()), base, "the key is deterministic");
    }

    #[test]
    fn recognises_keys() {
        assert!(!is_job_key("../etc"));
        assert!(!is_job_key(&"AB".repeat(32)));
        assert!(is_job_key(&"0f".repeat(32)));
    }
}
