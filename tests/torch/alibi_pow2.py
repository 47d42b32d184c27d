"""tests/torch/alibi_pow2.py — the reference for tests/torch/alibi_pow2.tfx
(and, through main(causal=False), alibi_bidir.py for alibi_bidir.tfx): an
MPT-style decoder with ALiBi for a power-of-two head count, written from the
ALiBi paper in float64. No position embedding; the scaled score of query
head h, query i and key j gets -m_h * (i - j) under the causal mask (j <= i),
-m_h * |i - j| without one, with m_h = 2^(-8h/H), h = 1..H (H = 8 here, so
the slopes are 2^-1 ... 2^-8; alibi.py covers H = 6). Grouped-query attention
(H = 8 query heads, G = 2 key/value heads: query head h reads KV head
h // 4, and keeps its own slope). Pre-norm LayerNorm blocks without biases
on the projections, a GELU (tanh) MLP, a final LayerNorm and an untied
classifier.

Usage: /usr/bin/python3 tests/torch/alibi_pow2.py OUTDIR
"""
import torch

from attn_common import F64, as_f32, attention, bias, causal_mask, gain, gelu_tanh, layernorm, lin, make_gen
from common import outdir_from_argv, write_case

C = dict(dim=64, layers=2, heads=8, kv_heads=2, hidden=128, vocab=128, eps=1e-5)


def slopes_pow2(H):
    """m_h = 2^(-8h/H), h = 1..H (the paper's rule when H is a power of two)."""
    assert H & (H - 1) == 0
    return [2.0 ** (-8.0 * h / H) for h in range(1, H + 1)]


def make_weights(gen):
    D, H, G, F, V = C["dim"], C["heads"], C["kv_heads"], C["hidden"], C["vocab"]
    d = D // H
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "ln_f_g": gain(gen, D),
         "ln_f_b": bias(gen, D), "output": lin(gen, V, D)}
    for i in range(C["layers"]):
        p = "layers.%d." % i
        w[p + "ln1_g"], w[p + "ln1_b"] = gain(gen, D), bias(gen, D)
        w[p + "wq"], w[p + "wk"], w[p + "wv"] = lin(gen, H * d, D), lin(gen, G * d, D), lin(gen, G * d, D)
        w[p + "wo"] = lin(gen, D, H * d)
        w[p + "ln2_g"], w[p + "ln2_b"] = gain(gen, D), bias(gen, D)
        w[p + "w_up"], w[p + "w_down"] = lin(gen, F, D), lin(gen, D, F)
    return as_f32(w)


def forward(w, tokens, causal):
    T, H, G, eps = tokens.shape[0], C["heads"], C["kv_heads"], C["eps"]
    i = torch.arange(T, dtype=F64)[:, None]
    j = torch.arange(T, dtype=F64)[None, :]
    m = torch.tensor(slopes_pow2(H), dtype=F64)
    dist = (i - j) if causal else (i - j).abs()
    alibi = -m[:, None, None] * dist[None, :, :]                      # [H, T, T]
    allowed = causal_mask(T) if causal else torch.ones(T, T, dtype=torch.bool)
    x = w["tok_embeddings"][tokens.long()]
    for l in range(C["layers"]):
        p = "layers.%d." % l
        a = layernorm(x, w[p + "ln1_g"], w[p + "ln1_b"], eps)
        q, k, v = (a @ w[p + n].T for n in ("wq", "wk", "wv"))
        h = x + attention(q, k, v, H, G, allowed, alibi) @ w[p + "wo"].T
        f = layernorm(h, w[p + "ln2_g"], w[p + "ln2_b"], eps)
        x = h + gelu_tanh(f @ w[p + "w_up"].T) @ w[p + "w_down"].T
    return layernorm(x, w["ln_f_g"], w["ln_f_b"], eps) @ w["output"].T


def main(causal, seed, heads, kv_heads):
    C["heads"], C["kv_heads"] = heads, kv_heads
    gen = make_gen(seed)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (24,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens, causal), causal=causal)


if __name__ == "__main__":
    main(causal=True, seed=8080, heads=8, kv_heads=2)
