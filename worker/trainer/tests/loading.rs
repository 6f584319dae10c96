//! Model loading errors, tokenizers, hub cache resolution and `encode`.

mod common;

use std::path::Path;

use burn::prelude::*;
use stilts_trainer::model::load_pretrained;
use stilts_trainer::source::resolve_model_source_in;
use stilts_trainer::tokenize::TextTokenizer;
use stilts_trainer::{Pool, TrainerError, encode};

fn copy_model(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn missing_weights_file_is_named() {
    let Some(dir) = common::minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(dir.join(f), tmp.path().join(f)).unwrap();
    }
    let err = load_pretrained(tmp.path().to_str().unwrap(), 128, &Device::flex()).unwrap_err();
    assert!(matches!(err, TrainerError::Io { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn unsupported_model_type_and_vocab_mismatch() {
    let Some(models) = common::test_models() else {
        return;
    };
    let dir = models.join("all-MiniLM-L6-v2");
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&dir, tmp.path());
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        tmp.path().join("config.json"),
        cfg.replace("\"bert\"", "\"gpt2\""),
    )
    .unwrap();
    let err = load_pretrained(tmp.path().to_str().unwrap(), 128, &Device::flex()).unwrap_err();
    assert!(
        err.to_string().contains("unsupported model_type \"gpt2\""),
        "{err}"
    );

    // XLM-R's 250k-piece tokenizer with MiniLM's 30k-row embedding matrix.
    std::fs::write(tmp.path().join("config.json"), cfg).unwrap();
    std::fs::copy(
        models.join("xlmr-tokenizer/tokenizer.json"),
        tmp.path().join("tokenizer.json"),
    )
    .unwrap();
    let err = load_pretrained(tmp.path().to_str().unwrap(), 128, &Device::flex()).unwrap_err();
    assert!(
        matches!(
            err,
            TrainerError::VocabMismatch {
                tokenizer_vocab: 250002,
                embedding_rows: 30522,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn corrupt_weights_name_the_tensor() {
    let Some(dir) = common::minilm() else { return };
    let tmp = tempfile::tempdir().unwrap();
    copy_model(&dir, tmp.path());
    // One layer fewer in the config than in the file: the extra layer's tensors are unused.
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        tmp.path().join("config.json"),
        cfg.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 5"),
    )
    .unwrap();
    let err = load_pretrained(tmp.path().to_str().unwrap(), 128, &Device::flex()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("unused tensor layers.5."),
        "{msg}"
    );
}

#[test]
fn minilm_tokenizer_presets_are_overridden_and_xlmr_pairs() {
    let Some(models) = common::test_models() else {
        return;
    };
    let tok =
        TextTokenizer::from_file(&models.join("all-MiniLM-L6-v2/tokenizer.json"), 16).unwrap();
    let short = tok.encode("hello world", None).unwrap();
    assert_eq!(
        short.ids,
        vec![101, 7592, 2088, 102],
        "no preset padding to 128"
    );
    let long = tok
        .encode(&"word ".repeat(50), Some("another sentence here"))
        .unwrap();
    assert_eq!(long.len(), 16, "truncated to max_len");
    assert_eq!(*long.ids.last().unwrap(), 102);
    assert_eq!(short.offsets[1], (0, 5));

    let xlmr = TextTokenizer::from_file(&models.join("xlmr-tokenizer/tokenizer.json"), 64).unwrap();
    assert_eq!(xlmr.pad_id(), 1);
    let pair = xlmr.encode("Hallo Welt", Some("Bonjour")).unwrap();
    assert_eq!(pair.ids[0], 0, "<s>");
    assert_eq!(*pair.ids.last().unwrap(), 2, "</s>");
    assert_eq!(
        pair.ids.iter().filter(|&&i| i == 2).count(),
        3,
        "<s> a </s></s> b </s>"
    );
}

#[test]
fn hub_ids_resolve_from_the_cache_without_network() {
    let Some(dir) = common::minilm() else { return };
    let cache = tempfile::tempdir().unwrap();
    copy_model(
        &dir,
        &cache.path().join("sentence-transformers--all-MiniLM-L6-v2"),
    );
    let resolved =
        resolve_model_source_in("sentence-transformers/all-MiniLM-L6-v2", cache.path()).unwrap();
    assert_eq!(
        resolved,
        cache.path().join("sentence-transformers--all-MiniLM-L6-v2")
    );
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn encode_mean_pools_sentences() {
    let Some(dir) = common::minilm() else { return };
    let texts: Vec<String> = [
        "A man is eating food.",
        "A man is eating a meal.",
        "The stock market crashed.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = encode(&dir, &texts, None, Pool::Mean).unwrap();
    assert_eq!((v.len(), v[0].len()), (3, 384));
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
    // Padding must not change an embedding: alone vs. in a batch with a longer text.
    let alone = encode(&dir, &texts[..1], None, Pool::Mean).unwrap();
    let max_diff = alone[0]
        .iter()
        .zip(&v[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_diff < 1e-4, "{max_diff}");
    let cls = encode(&dir, &texts[..1], Some(0), Pool::Cls).unwrap();
    assert_eq!(cls[0].len(), 384);
    let err = encode(&dir, &texts[..1], Some(7), Pool::Mean).unwrap_err();
    assert!(err.to_string().contains("6 layers"), "{err}");
}

/// Export to HF format and load it back: identical hidden states.
#[test]
fn hf_export_round_trips() {
    let Some(dir) = common::minilm() else { return };
    let device = Device::flex();
    let pre = load_pretrained(dir.to_str().unwrap(), 64, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    stilts_trainer::weights::save_encoder_hf(&pre.encoder, &out.path().join("model.safetensors"))
        .unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(dir.join(f), out.path().join(f)).unwrap();
    }
    // HF names and shapes, exactly those of the original file minus the pooler and the buffer.
    let names_shapes = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let mut v: Vec<(String, Vec<usize>)> = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, info.shape.clone()))
            .filter(|(name, _)| !name.starts_with("pooler.") && !name.ends_with("position_ids"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names_shapes(&out.path().join("model.safetensors")),
        names_shapes(&dir.join("model.safetensors"))
    );
    let texts = vec!["exported and loaded back".to_string()];
    let a = encode(&dir, &texts, None, Pool::Mean).unwrap();
    let b = encode(out.path(), &texts, None, Pool::Mean).unwrap();
    assert_eq!(a, b);
}

/// Rewrites `path` (safetensors) without the tensor `drop` and with each tensor of `reshape`
/// given its new shape (same number of elements).
fn rewrite_safetensors(path: &Path, drop: &str, reshape: &[(&str, Vec<usize>)]) {
    use safetensors::tensor::TensorView;
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut kept = Vec::new();
    for (name, view) in file.tensors() {
        if name == drop {
            continue;
        }
        let shape = match reshape.iter().find(|(n, _)| *n == name) {
            Some((_, to)) => to.clone(),
            None => view.shape().to_vec(),
        };
        kept.push((
            name,
            TensorView::new(view.dtype(), shape, view.data()).unwrap(),
        ));
    }
    std::fs::write(path, safetensors::serialize(kept, None).unwrap()).unwrap();
}

/// XLNet: a missing tensor and a misshaped one are both named with the shape the config
/// expects; the tensors XLNet checkpoints carry besides the encoder (`mask_emb`, the LM bias)
/// are not complaints.
#[test]
fn xlnet_missing_or_misshaped_weights_are_named() {
    let Some((tmp, model)) = common::load_tiny_xlnet(3, 64) else {
        return;
    };
    let device = Device::flex();
    assert_eq!(model.encoder.num_layers(), 2);
    rewrite_safetensors(
        &tmp.path().join("model.safetensors"),
        "transformer.layer.1.rel_attn.r_r_bias",
        &[
            ("transformer.layer.0.rel_attn.q", vec![32, 8, 4]),
            ("transformer.layer.1.ff.layer_1.weight", vec![32, 64]),
        ],
    );
    let err = load_pretrained(tmp.path().to_str().unwrap(), 64, &device).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("model.safetensors"), "{msg}");
    assert!(
        msg.contains("missing tensor xlnet.layer.1.rel_attn.r_r_bias (expected shape [4, 8])"),
        "{msg}"
    );
    assert!(
        msg.contains("tensor xlnet.layer.0.rel_attn.q has shape [32, 8, 4], expected [32, 4, 8]"),
        "{msg}"
    );
    // A Linear weight is named in the file's `[out, in]` layout.
    assert!(
        msg.contains(
            "tensor xlnet.layer.1.ff.layer_1.weight has shape [32, 64], expected [64, 32]"
        ),
        "{msg}"
    );
    assert!(
        !msg.contains("mask_emb") && !msg.contains("lm_loss"),
        "{msg}"
    );
}

/// XLNet export: HF's unprefixed names and shapes (the encoder's tensors of the original file,
/// without `transformer.`, `mask_emb` and the LM bias), loading back to the same hidden states.
#[test]
fn xlnet_hf_export_round_trips() {
    let Some((src, pre)) = common::load_tiny_xlnet(4, 64) else {
        return;
    };
    let device = Device::flex();
    let out = tempfile::tempdir().unwrap();
    stilts_trainer::weights::save_encoder_hf(&pre.encoder, &out.path().join("model.safetensors"))
        .unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.path().join(f), out.path().join(f)).unwrap();
    }
    let names_shapes = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let mut v: Vec<(String, Vec<usize>)> = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                (
                    name.trim_start_matches("transformer.").to_string(),
                    info.shape.clone(),
                )
            })
            .filter(|(name, _)| name != "mask_emb" && name != "lm_loss.bias")
            .collect();
        v.sort();
        v
    };
    let exported = names_shapes(&out.path().join("model.safetensors"));
    assert_eq!(
        exported,
        names_shapes(&src.path().join("model.safetensors"))
    );
    assert!(
        exported
            .iter()
            .any(|(n, s)| n == "layer.1.rel_attn.seg_embed" && s == &[2, 4, 8])
    );
    let back = load_pretrained(out.path().to_str().unwrap(), 64, &device).unwrap();
    let enc = pre
        .tokenizer
        .encode("What a dull movie!", Some("It was."))
        .unwrap();
    let batch = stilts_trainer::batch::TokenBatch::new(&[&enc], &pre.config);
    let a = pre.encoder.forward(&batch.to_input(&device));
    let b = back.encoder.forward(&batch.to_input(&device));
    let diff: f32 = (a - b).abs().max().into_scalar();
    assert_eq!(diff, 0.0);
}
