//! all-MiniLM-L6-v2 hidden states and token ids against an independent NumPy reference
//! (`tests/oracle/bert_numpy.py`, float64). Needs `STILTS_TEST_MODELS` and python3 with numpy and
//! safetensors; skips visibly otherwise.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use burn::prelude::*;
use stilts_trainer::batch::TokenBatch;
use stilts_trainer::model::load_pretrained;

const PAIRS: &[(&str, Option<&str>)] = &[
    ("Hello, world! Café déjà vu.", None),
    (
        "A man is playing a guitar.",
        Some("Someone plays an instrument on stage."),
    ),
    ("The quick brown fox jumps over the lazy dog", Some("No.")),
    ("Zero-shot cross-lingual transfer (XTREME-R) works?", None),
];

#[test]
fn minilm_matches_numpy_reference() {
    let Some(dir) = common::minilm() else { return };
    let oracle = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/bert_numpy.py");
    let request = serde_json::json!({ "pairs": PAIRS });
    let child = Command::new("python3")
        .arg(oracle)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipping: python3 not found");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        eprintln!("skipping: {}", String::from_utf8_lossy(&out.stderr).trim());
        return;
    }
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let device = Device::flex();
    let model = load_pretrained(dir.to_str().unwrap(), 128, &device).unwrap();
    let encoded: Vec<_> = PAIRS
        .iter()
        .map(|(a, b)| model.tokenizer.encode(a, *b).unwrap())
        .collect();

    for (i, enc) in encoded.iter().enumerate() {
        let ids: Vec<u32> = serde_json::from_value(reference["ids"][i].clone()).unwrap();
        let types: Vec<u32> = serde_json::from_value(reference["type_ids"][i].clone()).unwrap();
        assert_eq!(enc.ids, ids, "token ids of pair {i}");
        assert_eq!(enc.type_ids, types, "type ids of pair {i}");
    }

    // One padded batch: also checks that padding is masked out.
    let refs: Vec<_> = encoded.iter().collect();
    let batch = TokenBatch::new(&refs, &model.config);
    let hidden = model.encoder.forward(&batch.to_input(&device));
    let [b, seq, h] = hidden.dims();
    assert_eq!((b, h), (PAIRS.len(), 384));
    let got: Vec<f32> = hidden.into_data().try_to_vec::<f32>().unwrap();
    let mut max_delta = 0f64;
    for (i, enc) in encoded.iter().enumerate() {
        let want: Vec<Vec<f64>> = serde_json::from_value(reference["hidden"][i].clone()).unwrap();
        assert_eq!(want.len(), enc.len());
        for (t, row) in want.iter().enumerate() {
            for (k, w) in row.iter().enumerate() {
                let g = got[(i * seq + t) * h + k] as f64;
                max_delta = max_delta.max((g - w).abs());
            }
        }
    }
    eprintln!("all-MiniLM-L6-v2 vs numpy reference: max |delta| = {max_delta:e}");
    assert!(max_delta <= 1e-4, "max |delta| {max_delta} > 1e-4");
}
