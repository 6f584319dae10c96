#!/usr/bin/env python3
"""Independent reference for the trainer's numerics test: a BERT forward pass in NumPy (float64)
and an uncased WordPiece tokenizer in plain Python, both written from the BERT paper's and
HuggingFace's documented behaviour, reading the same config.json / tokenizer.json /
model.safetensors as the Rust code.

Usage: bert_numpy.py MODEL_DIR < request.json > response.json
request:  {"pairs": [["text a", "text b" or null], ...]}
      or  {"ids": [[...], ...], "position_offset": 2}  (given ids, one segment; RoBERTa/XLM-R
          number positions from padding_idx + 1)
response: {"ids": [[...]], "type_ids": [[...]], "hidden": [[[...] per token] per pair]}
Exit code 3 if numpy or safetensors is missing (the Rust test then skips visibly).
"""
import json
import math
import sys
import unicodedata

try:
    import numpy as np
    from safetensors.numpy import load_file
except ImportError as e:  # the caller reports this as a skip
    print(f"missing python module: {e}", file=sys.stderr)
    sys.exit(3)


# --- tokenizer: BERT uncased basic tokenizer + greedy longest-match WordPiece -------------------

def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokens(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    words = []
    for word in "".join(out).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        cur = ""
        for ch in word:
            if is_punct(ch):
                if cur:
                    words.append(cur)
                words.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            words.append(cur)
    return words


def wordpiece(word, vocab, unk, max_chars=100):
    if len(word) > max_chars:
        return [vocab[unk]]
    ids, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = vocab[piece]
                break
            end -= 1
        if found is None:
            return [vocab[unk]]
        ids.append(found)
        start = end
    return ids


def tokenize(text, vocab):
    return [i for w in basic_tokens(text) for i in wordpiece(w, vocab, "[UNK]")]


# --- model ----------------------------------------------------------------------------------------

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


ERF = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))


def forward(ids, type_ids, w, cfg, position_offset=0):
    g = lambda k: w[k].astype(np.float64)
    n = len(ids)
    eps = cfg.get("layer_norm_eps", 1e-12)
    heads = cfg["num_attention_heads"]
    dh = cfg["hidden_size"] // heads
    x = g("embeddings.word_embeddings.weight")[ids] \
        + g("embeddings.position_embeddings.weight")[position_offset + np.arange(n)] \
        + g("embeddings.token_type_embeddings.weight")[type_ids]
    x = layer_norm(x, g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"), eps)
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda name, h: h @ g(p + name + ".weight").T + g(p + name + ".bias")
        q = lin("attention.self.query", x).reshape(n, heads, dh).transpose(1, 0, 2)
        k = lin("attention.self.key", x).reshape(n, heads, dh).transpose(1, 0, 2)
        v = lin("attention.self.value", x).reshape(n, heads, dh).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(n, heads * dh)
        x = layer_norm(x + lin("attention.output.dense", ctx),
                       g(p + "attention.output.LayerNorm.weight"),
                       g(p + "attention.output.LayerNorm.bias"), eps)
        h = gelu(lin("intermediate.dense", x))
        x = layer_norm(x + lin("output.dense", h), g(p + "output.LayerNorm.weight"),
                       g(p + "output.LayerNorm.bias"), eps)
    return x


def main():
    model_dir = sys.argv[1]
    cfg = json.load(open(f"{model_dir}/config.json"))
    tok = json.load(open(f"{model_dir}/tokenizer.json"))
    vocab = tok["model"]["vocab"]
    weights = load_file(f"{model_dir}/model.safetensors")
    weights = {k.split(".", 1)[1] if k.startswith(("bert.", "roberta.")) else k: v
               for k, v in weights.items()}
    req = json.load(sys.stdin)
    resp = {"ids": [], "type_ids": [], "hidden": []}
    if "ids" in req:
        offset = req.get("position_offset", 0)
        for ids in req["ids"]:
            types = [0] * len(ids)
            hidden = forward(np.array(ids), np.array(types), weights, cfg, offset)
            resp["ids"].append(ids)
            resp["type_ids"].append(types)
            resp["hidden"].append(hidden.tolist())
        json.dump(resp, sys.stdout)
        return
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    for a, b in req["pairs"]:
        ids = [cls] + tokenize(a, vocab) + [sep]
        types = [0] * len(ids)
        if b is not None:
            tb = tokenize(b, vocab) + [sep]
            ids += tb
            types += [1] * len(tb)
        resp["ids"].append(ids)
        resp["type_ids"].append(types)
        resp["hidden"].append(forward(np.array(ids), np.array(types), weights, cfg).tolist())
    json.dump(resp, sys.stdout)


if __name__ == "__main__":
    main()
