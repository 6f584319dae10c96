#!/usr/bin/env python3
"""Independent reference for the XLNet numerics test: the XLNet forward pass (content stream,
bidirectional attention, as fine-tuning runs it) in NumPy float64, written from the XLNet paper
(Yang et al. 2019, relative positional encodings and relative segment encodings) and the
documented layout of HuggingFace XLNet checkpoints; plus a maker of tiny random checkpoints.

Usage:
  xlnet_numpy.py make DIR [SEED]   writes DIR/config.json and DIR/model.safetensors: a 2-layer
                                   XLNet (d_model 32, 4 heads) whose every parameter, LayerNorm
                                   weights and biases included, is random; HF names with the
                                   `transformer.` prefix, plus mask_emb and an LM bias as HF's
                                   XLNetLMHeadModel has them. Copy a tokenizer.json next to it.
  xlnet_numpy.py DIR < request.json > response.json
      request:  {"ids": [[...], ...], "type_ids": [[...], ...]}   (one unpadded sequence each)
      response: {"hidden": [[[...] per token] per sequence]}      (last layer, float64)
Exit code 3 if numpy or safetensors is missing (the Rust test then skips visibly).
"""
import json
import math
import sys

try:
    import numpy as np
    from safetensors.numpy import load_file, save_file
except ImportError as e:  # the caller reports this as a skip
    print(f"missing python module: {e}", file=sys.stderr)
    sys.exit(3)

TINY = {
    "model_type": "xlnet", "architectures": ["XLNetLMHeadModel"], "vocab_size": 340,
    "d_model": 32, "n_layer": 2, "n_head": 4, "d_head": 8, "d_inner": 64,
    "ff_activation": "gelu", "untie_r": True, "attn_type": "bi", "bi_data": False,
    "clamp_len": 6, "mem_len": None, "reuse_len": None, "same_length": False,
    "layer_norm_eps": 1e-12, "dropout": 0.1, "initializer_range": 0.02,
    "pad_token_id": 5, "bos_token_id": 1, "eos_token_id": 2, "summary_type": "last",
    "summary_use_proj": True, "summary_activation": "tanh", "summary_last_dropout": 0.1,
    "start_n_top": 5, "end_n_top": 5,
}


def make(out_dir, seed):
    rng = np.random.default_rng(seed)
    c = TINY
    m, n, d, inner = c["d_model"], c["n_head"], c["d_head"], c["d_inner"]
    rand = lambda *shape, scale=0.2: (rng.standard_normal(shape) * scale).astype(np.float32)
    w = {"transformer.word_embedding.weight": rand(c["vocab_size"], m, scale=1.0),
         "transformer.mask_emb": rand(1, 1, m),
         "lm_loss.bias": rand(c["vocab_size"])}
    for i in range(c["n_layer"]):
        p = f"transformer.layer.{i}."
        for name in "qkvor":
            w[p + "rel_attn." + name] = rand(m, n, d, scale=m ** -0.5)
        for name in ("r_w_bias", "r_r_bias", "r_s_bias"):
            w[p + "rel_attn." + name] = rand(n, d, scale=0.5)
        w[p + "rel_attn.seg_embed"] = rand(2, n, d, scale=0.5)
        for ln in ("rel_attn.layer_norm.", "ff.layer_norm."):
            w[p + ln + "weight"] = 1.0 + rand(m)
            w[p + ln + "bias"] = rand(m)
        w[p + "ff.layer_1.weight"] = rand(inner, m, scale=m ** -0.5)
        w[p + "ff.layer_1.bias"] = rand(inner)
        w[p + "ff.layer_2.weight"] = rand(m, inner, scale=inner ** -0.5)
        w[p + "ff.layer_2.bias"] = rand(m)
    save_file(w, f"{out_dir}/model.safetensors")
    with open(f"{out_dir}/config.json", "w") as f:
        json.dump(c, f, indent=2)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


ERF = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))


def sinusoids(n, d_model, clamp_len):
    """Encodings of relative distances n, n-1, ..., -n+1 (row r is distance n - r)."""
    dist = np.arange(n, -n, -1.0)
    if clamp_len > 0:
        dist = np.clip(dist, -clamp_len, clamp_len)
    freq = 1.0 / 10000.0 ** (np.arange(0, d_model, 2.0) / d_model)
    angle = dist[:, None] * freq[None, :]
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)


def forward(ids, types, w, cfg):
    g = lambda k: w[k].astype(np.float64)
    n = len(ids)
    m, heads, dh = cfg["d_model"], cfg["n_head"], cfg["d_head"]
    eps = cfg.get("layer_norm_eps", 1e-12)
    clamp = cfg.get("clamp_len") or -1
    h = g("word_embedding.weight")[ids]
    pos = sinusoids(n, m, clamp)                      # [2n, m]
    i_idx, j_idx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    row_of = n - (i_idx - j_idx)                      # row of distance i - j in `pos`
    differ = (types[:, None] != types[None, :]).astype(int)
    for layer in range(cfg["n_layer"]):
        p = f"layer.{layer}.rel_attn."
        proj = lambda x, name: np.einsum("th,hnd->tnd", x, g(p + name))
        q, k, v = proj(h, "q"), proj(h, "k"), proj(h, "v")
        kr = proj(pos, "r")                           # [2n, heads, dh]
        content = np.einsum("ind,jnd->nij", q + g(p + "r_w_bias"), k)
        by_row = np.einsum("ind,rnd->nir", q + g(p + "r_r_bias"), kr)
        position = by_row[:, i_idx, row_of]            # [heads, n, n]
        by_seg = np.einsum("ind,snd->nis", q + g(p + "r_s_bias"), g(p + "seg_embed"))
        segment = by_seg[:, i_idx, differ]
        score = (content + position + segment) / math.sqrt(dh)
        score = np.exp(score - score.max(-1, keepdims=True))
        prob = score / score.sum(-1, keepdims=True)
        vec = np.einsum("nij,jnd->ind", prob, v)
        out = np.einsum("ind,hnd->ih", vec, g(p + "o"))
        h = layer_norm(out + h, g(p + "layer_norm.weight"), g(p + "layer_norm.bias"), eps)
        f = f"layer.{layer}.ff."
        inner = gelu(h @ g(f + "layer_1.weight").T + g(f + "layer_1.bias"))
        out = inner @ g(f + "layer_2.weight").T + g(f + "layer_2.bias")
        h = layer_norm(out + h, g(f + "layer_norm.weight"), g(f + "layer_norm.bias"), eps)
    return h


def main():
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
        return
    model_dir = sys.argv[1]
    cfg = json.load(open(f"{model_dir}/config.json"))
    weights = load_file(f"{model_dir}/model.safetensors")
    weights = {k[len("transformer."):] if k.startswith("transformer.") else k: v
               for k, v in weights.items()}
    req = json.load(sys.stdin)
    hidden = [forward(np.array(ids), np.array(types), weights, cfg).tolist()
              for ids, types in zip(req["ids"], req["type_ids"])]
    json.dump({"hidden": hidden}, sys.stdout)


if __name__ == "__main__":
    main()
