//! Shared helpers of the trainer's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `$STILTS_TEST_MODELS` (written by `deploy/fetch-models.sh`), or `None` after printing a
/// visible skip notice.
pub fn test_models() -> Option<PathBuf> {
    match std::env::var_os("STILTS_TEST_MODELS").map(PathBuf::from) {
        Some(dir) if dir.join("all-MiniLM-L6-v2/model.safetensors").is_file() => Some(dir),
        _ => {
            eprintln!("skipping: STILTS_TEST_MODELS not set (run deploy/fetch-models.sh)");
            None
        }
    }
}

pub fn minilm() -> Option<PathBuf> {
    test_models().map(|d| d.join("all-MiniLM-L6-v2"))
}

/// `$STILTS_SHARED_DATA` (the real XTREME-R data), or `None` after printing a visible skip
/// notice.
pub fn shared_data() -> Option<PathBuf> {
    match std::env::var_os("STILTS_SHARED_DATA").map(PathBuf::from) {
        Some(dir) if dir.is_dir() => Some(dir),
        _ => {
            eprintln!("skipping: STILTS_SHARED_DATA not set");
            None
        }
    }
}
