//! all-MiniLM-L6-v2 hidden states and token ids against an independent NumPy reference
//! (`tests/oracle/bert_numpy.py`, float64). Needs `STILTS_TEST_MODELS` and python3 with numpy and
//! safetensors; skips visibly otherwise.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use burn::prelude::*;
use stilts_trainer::batch::TokenBatch;
use stilts_trainer::hf_config::HfConfig;
use stilts_trainer::model::load_pretrained;
use stilts_trainer::weights::save_encoder_hf;

const PAIRS: &[(&str, Option<&str>)] = &[
    ("Hello, world! Café déjà vu.", None),
    (
        "A man is playing a guitar.",
        Some("Someone plays an instrument on stage."),
    ),
    ("The quick brown fox jumps over the lazy dog", Some("No.")),
    ("Zero-shot cross-lingual transfer (XTREME-R) works?", None),
];

/// Runs the NumPy oracle on `dir`; `None` (after a visible skip notice) without python/numpy.
fn oracle(dir: &Path, request: serde_json::Value) -> Option<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/bert_numpy.py");
    let child = Command::new("python3")
        .arg(script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipping: python3 not found");
        return None;
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
        return None;
    }
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// Max |delta| between a padded batch's hidden states and the oracle's per-sequence ones.
fn max_delta(
    got: Vec<f32>,
    seq: usize,
    h: usize,
    lens: &[usize],
    reference: &serde_json::Value,
) -> f64 {
    let mut max_delta = 0f64;
    for (i, &len) in lens.iter().enumerate() {
        let want: Vec<Vec<f64>> = serde_json::from_value(reference["hidden"][i].clone()).unwrap();
        assert_eq!(want.len(), len);
        for (t, row) in want.iter().enumerate() {
            for (k, w) in row.iter().enumerate() {
                max_delta = max_delta.max((got[(i * seq + t) * h + k] as f64 - w).abs());
            }
        }
    }
    max_delta
}

#[test]
fn minilm_matches_numpy_reference() {
    let Some(dir) = common::minilm() else { return };
    let Some(reference) = oracle(&dir, serde_json::json!({ "pairs": PAIRS })) else {
        return;
    };

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
    let lens: Vec<usize> = encoded.iter().map(|e| e.len()).collect();
    let max_delta = max_delta(got, seq, h, &lens, &reference);
    eprintln!("all-MiniLM-L6-v2 vs numpy reference: max |delta| = {max_delta:e}");
    assert!(max_delta <= 1e-4, "max |delta| {max_delta} > 1e-4");
}

/// RoBERTa/XLM-R conventions (positions from padding_idx + 1, one token type, padding id 1) on a
/// small randomly initialised XLM-R-shaped model, written in HF format and loaded back.
#[test]
fn xlmr_positions_match_numpy_reference() {
    let Some(models) = common::test_models() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "model_type": "xlm-roberta", "vocab_size": 250002, "hidden_size": 32,
        "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "max_position_embeddings": 40, "type_vocab_size": 1, "pad_token_id": 1,
        "layer_norm_eps": 1e-5, "hidden_act": "gelu"
    });
    let cfg_path = tmp.path().join("config.json");
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    std::fs::copy(
        models.join("xlmr-tokenizer/tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .unwrap();
    let device = Device::flex();
    device.seed(5);
    let enc_cfg = HfConfig::load(&cfg_path)
        .unwrap()
        .encoder_config(&cfg_path)
        .unwrap();
    assert_eq!(enc_cfg.position_offset, 2);
    save_encoder_hf(
        &enc_cfg.init(&device),
        &tmp.path().join("model.safetensors"),
    )
    .unwrap();

    let model = load_pretrained(tmp.path().to_str().unwrap(), 38, &device).unwrap();
    let encoded: Vec<_> = ["Zero-shot Transfer über Sprachen hinweg.", "Salut !"]
        .iter()
        .map(|t| model.tokenizer.encode(t, None).unwrap())
        .collect();
    let ids: Vec<&Vec<u32>> = encoded.iter().map(|e| &e.ids).collect();
    let request = serde_json::json!({ "ids": ids, "position_offset": 2 });
    let Some(reference) = oracle(tmp.path(), request) else {
        return;
    };
    let refs: Vec<_> = encoded.iter().collect();
    let batch = TokenBatch::new(&refs, &model.config);
    assert_eq!(
        batch.ids[2 * batch.seq - 1],
        1,
        "second row is padded with <pad> = 1"
    );
    let hidden = model.encoder.forward(&batch.to_input(&device));
    let [_, seq, h] = hidden.dims();
    let got: Vec<f32> = hidden.into_data().try_to_vec::<f32>().unwrap();
    let lens: Vec<usize> = encoded.iter().map(|e| e.len()).collect();
    let delta = max_delta(got, seq, h, &lens, &reference);
    eprintln!("xlm-roberta-shaped model vs numpy reference: max |delta| = {delta:e}");
    assert!(delta <= 1e-4, "max |delta| {delta} > 1e-4");
}
