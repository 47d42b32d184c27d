"""tests/torch/sparse_causal.py — the reference for
tests/torch/sparse_causal.tfx: Longformer and BigBird under a causal mask.
masks.py's decoder (four pre-norm attention layers, GQA, interleaved RoPE,
residual), with these patterns, written from the papers' definitions in
float64. Query i, key j <= i (absolute positions), d = i - j:
  layer 0 longformer(window = 4, global = 2):
          d < 4, or i < 2 or j < 2 (global tokens 0 and 1)
  layer 1 longformer(window = 9, global = tokens(3, 10), dilation = 2):
          (d < 9 and d % 2 == 0), or i or j in {3, 10}
  layer 2 bigbird(block_size = 3, global = 1, random = 2, seed = 11):
  layer 3 bigbird(block_size = 4, global = 0, random = 1, seed = 3):
          blocks qb = i // b, kb = j // b: |qb - kb| <= 1, or qb < global or
          kb < global, or kb is one of qb's random blocks
every pair also with j <= i. The random blocks follow tfxc's documented
rule (docs/language.md), reimplemented from that text in bigbird.py: under
a causal mask they are drawn from the n = qb + 1 blocks up to the query's.

Usage: /usr/bin/python3 tests/torch/sparse_causal.py OUTDIR
"""
import torch

from attn_common import make_gen
from bigbird import random_blocks
from common import outdir_from_argv, write_case
from masks import C, forward, make_weights


def longformer(T, window, global_tokens, dilation):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    d = i - j
    g = torch.zeros(T, dtype=torch.bool)
    for p in global_tokens:
        if p < T:
            g[p] = True
    allowed = ((d < window) & (d % dilation == 0)) | g[:, None] | g[None, :]
    return allowed & (j <= i)


def bigbird_causal(T, b, n_global, r, seed):
    allowed = torch.zeros(T, T, dtype=torch.bool)
    for i in range(T):
        qb = i // b
        rnd = random_blocks(seed, qb, r, qb + 1)
        for j in range(i + 1):
            kb = j // b
            allowed[i, j] = abs(qb - kb) <= 1 or qb < n_global or kb < n_global or kb in rnd
    return allowed


def masks(T):
    return [longformer(T, 4, (0, 1), 1), longformer(T, 9, (3, 10), 2),
            bigbird_causal(T, 3, 1, 2, 11), bigbird_causal(T, 4, 0, 1, 3)]


if __name__ == "__main__":
    gen = make_gen(9191)
    w = make_weights(gen)
    T = 24
    tokens = torch.randint(0, C["vocab"], (T,), generator=gen, dtype=torch.int32)
    ms = masks(T)
    full = torch.arange(T)[None, :] <= torch.arange(T)[:, None]
    for m in ms:
        assert 0 < m.sum() < full.sum()   # each pattern is sparser than causal
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens, True, ms), causal=True)
