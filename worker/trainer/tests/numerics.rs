//! all-MiniLM-L6-v2 hidden states and token ids against an independent NumPy reference
//! (`tests/oracle/bert_numpy.py`, float64), and a tiny perturbed XLNet against
//! `tests/oracle/xlnet_numpy.py`. Need python3 with numpy and safetensors (and, for the BERT
//! family, `STILTS_TEST_MODELS`); skip visibly otherwise.

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

/// Runs the BERT NumPy oracle on `dir`; `None` (after a visible skip notice) without
/// python/numpy.
fn oracle(dir: &Path, request: serde_json::Value) -> Option<serde_json::Value> {
    run_oracle("bert_numpy.py", dir, request)
}

fn run_oracle(name: &str, dir: &Path, request: serde_json::Value) -> Option<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle")
        .join(name);
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
    max_delta_at(got, seq, h, lens, &vec![0; lens.len()], reference)
}

/// As [`max_delta`], row `i`'s tokens starting at position `leads[i]` (left padding).
fn max_delta_at(
    got: Vec<f32>,
    seq: usize,
    h: usize,
    lens: &[usize],
    leads: &[usize],
    reference: &serde_json::Value,
) -> f64 {
    let mut max_delta = 0f64;
    for (i, &len) in lens.iter().enumerate() {
        let want: Vec<Vec<f64>> = serde_json::from_value(reference["hidden"][i].clone()).unwrap();
        assert_eq!(want.len(), len);
        for (t, row) in want.iter().enumerate() {
            for (k, w) in row.iter().enumerate() {
                let at = (i * seq + leads[i] + t) * h + k;
                max_delta = max_delta.max((got[at] as f64 - w).abs());
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

/// XLNet: relative positional attention (content, position and segment terms, `rel_shift`,
/// `clamp_len` 6 shorter than the inputs), the `A <sep> B <sep> <cls>` layout with segment id 2
/// for `<cls>`, left padding; a tiny checkpoint whose every parameter is random, against the
/// float64 NumPy forward pass, per token within 1e-5. Then `stilts encode` (mean and `cls`
/// pooling) against the same reference.
#[test]
fn tiny_xlnet_matches_numpy_reference() {
    let Some((tmp, model)) = common::load_tiny_xlnet(11, 128) else {
        return;
    };
    let device = Device::flex();
    let encoded: Vec<_> = PAIRS
        .iter()
        .map(|(a, b)| model.tokenizer.encode(a, *b).unwrap())
        .collect();
    let (sep, cls) = (4, 3);
    // Tagging builds single sequences from these: nothing before, `<sep>` `<cls>` after.
    let pieces = model.tokenizer.special_pieces().unwrap();
    assert_eq!(pieces, (vec![], vec![(sep, 0), (cls, 2)]));
    for e in &encoded {
        let n = e.len();
        assert_eq!(
            &e.ids[n - 2..],
            &[sep, cls],
            "<sep> <cls> close every input"
        );
        assert_eq!(e.type_ids[n - 1], 2, "<cls> has its own segment id");
    }
    let pair = &encoded[1];
    let first_sep = pair.ids.iter().position(|&i| i == sep).unwrap();
    assert!(pair.type_ids[..=first_sep].iter().all(|&t| t == 0));
    assert!(
        pair.type_ids[first_sep + 1..pair.len() - 1]
            .iter()
            .all(|&t| t == 1)
    );

    let ids: Vec<&Vec<u32>> = encoded.iter().map(|e| &e.ids).collect();
    let types: Vec<&Vec<u32>> = encoded.iter().map(|e| &e.type_ids).collect();
    let request = serde_json::json!({ "ids": ids, "type_ids": types });
    let Some(reference) = run_oracle("xlnet_numpy.py", tmp.path(), request) else {
        return;
    };
    let refs: Vec<_> = encoded.iter().collect();
    let batch = TokenBatch::new(&refs, &model.config);
    let leads: Vec<usize> = (0..batch.batch).map(|r| batch.lead(r)).collect();
    assert!(leads.iter().any(|&l| l > 0), "some row is padded");
    for (r, e) in encoded.iter().enumerate() {
        assert_eq!(
            leads[r] + e.len(),
            batch.seq,
            "row {r} is padded on the left"
        );
        assert_eq!(batch.ids[(r + 1) * batch.seq - 1], cls as i64);
    }
    let hidden = model.encoder.forward(&batch.to_input(&device));
    let [_, seq, h] = hidden.dims();
    assert_eq!(h, 32);
    let got: Vec<f32> = hidden.into_data().try_to_vec::<f32>().unwrap();
    let lens: Vec<usize> = encoded.iter().map(|e| e.len()).collect();
    let delta = max_delta_at(got, seq, h, &lens, &leads, &reference);
    eprintln!("tiny XLNet vs numpy reference: max |delta| = {delta:e}");
    assert!(delta <= 1e-5, "max |delta| {delta} > 1e-5");

    // `stilts encode`: one text at a time and all together give the reference's pooled vectors.
    let texts: Vec<String> = PAIRS.iter().map(|(a, _)| a.to_string()).collect();
    let singles: Vec<_> = texts
        .iter()
        .map(|t| model.tokenizer.encode(t, None).unwrap())
        .collect();
    let ids: Vec<&Vec<u32>> = singles.iter().map(|e| &e.ids).collect();
    let types: Vec<&Vec<u32>> = singles.iter().map(|e| &e.type_ids).collect();
    let request = serde_json::json!({ "ids": ids, "type_ids": types });
    let reference = run_oracle("xlnet_numpy.py", tmp.path(), request).unwrap();
    let mean =
        stilts_trainer::encode(tmp.path(), &texts, None, stilts_trainer::Pool::Mean).unwrap();
    let last = stilts_trainer::encode(tmp.path(), &texts, None, stilts_trainer::Pool::Cls).unwrap();
    let mut delta = 0f64;
    for (i, e) in singles.iter().enumerate() {
        let want: Vec<Vec<f64>> = serde_json::from_value(reference["hidden"][i].clone()).unwrap();
        for k in 0..h {
            let avg = want.iter().map(|row| row[k]).sum::<f64>() / e.len() as f64;
            delta = delta.max((mean[i][k] as f64 - avg).abs());
            delta = delta.max((last[i][k] as f64 - want[e.len() - 1][k]).abs());
        }
    }
    eprintln!("stilts encode on tiny XLNet vs numpy reference: max |delta| = {delta:e}");
    assert!(delta <= 1e-5, "encode: max |delta| {delta} > 1e-5");
}
