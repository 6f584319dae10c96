#!/usr/bin/env python3
"""PyTorch eager counterpart of examples/train_step_bench.rs: a BERT encoder (random init,
post-LN, GELU) + tanh head, forward + backward + AdamW at the same shapes.

python3 benches/torch_train_step.py [minilm|bert-base] [--batch 16] [--seq 128] [--steps 5]
Needs torch (pip install torch==2.9.0)."""
import argparse
import time

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("model", nargs="?", default="minilm")
p.add_argument("--batch", type=int, default=16)
p.add_argument("--seq", type=int, default=128)
p.add_argument("--steps", type=int, default=5)
a = p.parse_args()
hidden, layers, ff = {"minilm": (384, 6, 1536), "bert-base": (768, 12, 3072)}[a.model]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(30522, hidden)
        self.pos = nn.Embedding(512, hidden)
        self.typ = nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        layer = nn.TransformerEncoderLayer(hidden, 12, ff, dropout=0.1, activation="gelu",
                                           batch_first=True, layer_norm_eps=1e-12)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        for l in self.enc.layers:  # BERT has no dropout inside the feed-forward block
            l.dropout = nn.Identity()
        self.dense = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 3)
        self.drop = nn.Dropout(0.1)

    def forward(self, ids, pad):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.drop(self.ln(self.word(ids) + self.pos(pos) + self.typ(torch.zeros_like(ids))))
        x = self.enc(x, src_key_padding_mask=pad)
        return self.out(self.drop(torch.tanh(self.dense(self.drop(x[:, 0])))))


torch.manual_seed(0)
m = Model().train()
opt = torch.optim.AdamW(m.parameters(), lr=1e-5, weight_decay=0.01)
ids = torch.tensor([[(b * 7919 + i * 104729) % 30000 + 100 for i in range(a.seq)] for b in range(a.batch)])
pad = torch.zeros(a.batch, a.seq, dtype=torch.bool)
y = torch.tensor([b % 3 for b in range(a.batch)])
times = []
for step in range(a.steps + 1):
    t0 = time.perf_counter()
    loss = nn.functional.cross_entropy(m(ids, pad), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    ms = (time.perf_counter() - t0) * 1000
    if step > 0:
        times.append(ms)
times.sort()
print(f"pytorch {torch.__version__} eager {a.model} batch {a.batch} seq {a.seq}: median "
      f"{times[len(times) // 2]:.0f} ms/step over {len(times)} steps (threads: {torch.get_num_threads()})")
