"""tests/torch/longformer_dilated.py — the reference for
tests/torch/longformer_dilated.tfx: longformer.py's RoBERTa-style post-norm
encoder with the two Longformer options longformer.tfx leaves out, written
from the Longformer paper's definition in float64. Bidirectional, d = |i - j|:
query i sees key j when (d < window and d % dilation == 0), or when i or j is
a global token, here the count form `global = 2` (tokens 0 and 1):
  layer 0: longformer(window = 7, global = 2, dilation = 2)
  layer 1: longformer(window = 10, global = 2, dilation = 3)

Usage: /usr/bin/python3 tests/torch/longformer_dilated.py OUTDIR
"""
import torch

from attn_common import gelu_erf, make_gen
from common import outdir_from_argv, write_case
from encoder_common import forward, make_weights

C = dict(dim=64, layers=2, heads=4, vocab=128, max_seq=64, eps=1e-5)
LAYERS = [dict(window=7, n_global=2, dilation=2), dict(window=10, n_global=2, dilation=3)]


def longformer_mask(T, window, n_global, dilation, causal=False):
    """Longformer's pattern; n_global: tokens 0 .. n_global - 1 are global."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    d = (i - j).abs()
    allowed = (d < window) & (d % dilation == 0)
    g = torch.arange(T) < n_global
    allowed = allowed | g[:, None] | g[None, :]
    return allowed & (j <= i) if causal else allowed


if __name__ == "__main__":
    gen = make_gen(7171)
    w = make_weights(gen, C)
    T = 24
    tokens = torch.randint(0, C["vocab"], (T,), generator=gen, dtype=torch.int32)
    masks = [longformer_mask(T, m["window"], m["n_global"], m["dilation"]) for m in LAYERS]
    for m in masks:
        assert 0 < m.sum() < T * T
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens, C, masks, gelu_erf), causal=False)
