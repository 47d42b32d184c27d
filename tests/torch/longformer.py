"""tests/torch/longformer.py — the reference for
examples/longformer/longformer.tfx: a RoBERTa-style post-norm encoder whose
attention is Longformer's (bidirectional): query i sees key j when
|i - j| < window, or when i or j is a global token (here tokens 0 and 9).
Written from the Longformer paper's definition in float64.

Usage: /usr/bin/python3 tests/torch/longformer.py OUTDIR
"""
import torch

from attn_common import gelu_erf, make_gen
from common import outdir_from_argv, write_case
from encoder_common import forward, make_weights

C = dict(dim=64, layers=2, heads=4, vocab=128, max_seq=64, eps=1e-5, window=3, global_tokens=(0, 9))


def longformer_mask(T, window, global_tokens):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = (i - j).abs() < window
    g = torch.zeros(T, dtype=torch.bool)
    for p in global_tokens:
        if p < T:
            g[p] = True
    return allowed | g[:, None] | g[None, :]   # a global token attends all; all attend it


if __name__ == "__main__":
    gen = make_gen(777)
    w = make_weights(gen, C)
    T = 20
    tokens = torch.randint(0, C["vocab"], (T,), generator=gen, dtype=torch.int32)
    allowed = longformer_mask(T, C["window"], C["global_tokens"])
    assert 0 < allowed.sum() < T * T
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens, C, allowed, gelu_erf), causal=False)
