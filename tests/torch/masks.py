"""tests/torch/masks.py — the reference for examples/sparse/masks.tfx: a
decoder of four pre-norm attention layers (GQA, interleaved RoPE, residual),
one per sparse pattern, written from the definitions (Child et al. 2019 for
strided and fixed) in float64. Query i, key j, d = i - j with the causal mask
j <= i (or d = |i - j| bidirectional, masks_bidir.py):
  layer 0 sliding:  d < 4
  layer 1 dilated:  d % 2 == 0 and d < 9
  layer 2 strided:  d < 3 or d % 3 == 0
  layer 3 fixed:    i // 4 == j // 4 or j % 4 >= 4 - 1

Usage: /usr/bin/python3 tests/torch/masks.py OUTDIR
"""
import torch

from attn_common import F64, as_f32, attention, gain, lin, make_gen, rmsnorm, rope
from common import outdir_from_argv, write_case

C = dict(dim=64, heads=4, kv_heads=2, vocab=128, eps=1e-5, theta=10000.0)  # masks_bidir: kv_heads 1 (MQA)


def patterns(T, causal):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    d = (i - j).abs()
    masks = [d < 4, (d % 2 == 0) & (d < 9), (d < 3) | (d % 3 == 0), (i // 4 == j // 4) | (j % 4 >= 3)]
    if causal:
        masks = [m & (j <= i) for m in masks]
    return masks


def make_weights(gen):
    D, H, G, V = C["dim"], C["heads"], C["kv_heads"], C["vocab"]
    d = D // H
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "norm": gain(gen, D), "output": lin(gen, V, D)}
    for l in range(4):
        p = "layers.%d." % l
        w[p + "attention_norm"] = gain(gen, D)
        w[p + "wq"], w[p + "wk"], w[p + "wv"] = lin(gen, D, D), lin(gen, G * d, D), lin(gen, G * d, D)
        w[p + "wo"] = lin(gen, D, D)
    return as_f32(w)


def forward(w, tokens, causal, masks=None):
    """masks: one [T, T] allowed table per layer (default: patterns())."""
    T, H, G, eps = tokens.shape[0], C["heads"], C["kv_heads"], C["eps"]
    d = C["dim"] // H
    pos = torch.arange(T)
    x = w["tok_embeddings"][tokens.long()]
    for l, allowed in enumerate(masks if masks is not None else patterns(T, causal)):
        p = "layers.%d." % l
        a = rmsnorm(x, w[p + "attention_norm"], eps)
        q = rope((a @ w[p + "wq"].T).reshape(T, H, d), pos, C["theta"], "interleaved").reshape(T, H * d)
        k = rope((a @ w[p + "wk"].T).reshape(T, G, d), pos, C["theta"], "interleaved").reshape(T, G * d)
        v = a @ w[p + "wv"].T
        x = x + attention(q, k, v, H, G, allowed) @ w[p + "wo"].T
    return rmsnorm(x, w["norm"], eps) @ w["output"].T


def main(causal, seed, kv_heads=2):
    C["kv_heads"] = kv_heads
    gen = make_gen(seed)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (20,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens, causal), causal=causal)


if __name__ == "__main__":
    main(causal=True, seed=6060)
