"""tests/torch/alibi.py — the reference for examples/bloom/alibi.tfx: a tiny
BLOOM-style decoder with ALiBi (no position embedding; -m_h * (i - j) added to
the scaled scores of query i, key j <= i; the paper's slopes, here for H = 6,
not a power of two), written from the math in float64: embedding LayerNorm,
pre-norm LayerNorm blocks with biased projections, GELU-tanh MLP, final
LayerNorm, classifier tied to the embedding.

Usage: /usr/bin/python3 tests/torch/alibi.py OUTDIR
"""
import torch

from attn_common import (F64, alibi_slopes, as_f32, attention, bias, causal_mask, gain, gelu_tanh, layernorm, lin,
                         make_gen)
from common import outdir_from_argv, write_case

C = dict(dim=96, layers=2, heads=6, vocab=128, eps=1e-5)


def make_weights(gen):
    D, V, Fh = C["dim"], C["vocab"], 4 * C["dim"]
    w = {"word_embeddings": torch.randn(V, D, generator=gen, dtype=F64),
         "emb_norm_g": gain(gen, D), "emb_norm_b": bias(gen, D), "ln_f_g": gain(gen, D), "ln_f_b": bias(gen, D)}
    for i in range(C["layers"]):
        p = "layers.%d." % i
        w[p + "ln1_g"], w[p + "ln1_b"] = gain(gen, D), bias(gen, D)
        for n in ("q", "k", "v", "o"):
            w[p + "w" + n], w[p + "b" + n] = lin(gen, D, D), bias(gen, D)
        w[p + "ln2_g"], w[p + "ln2_b"] = gain(gen, D), bias(gen, D)
        w[p + "w_up"], w[p + "b_up"] = lin(gen, Fh, D), bias(gen, Fh)
        w[p + "w_down"], w[p + "b_down"] = lin(gen, D, Fh), bias(gen, D)
    return as_f32(w)


def forward(w, tokens):
    T, H, eps = tokens.shape[0], C["heads"], C["eps"]
    i = torch.arange(T, dtype=F64)[:, None]
    j = torch.arange(T, dtype=F64)[None, :]
    slopes = torch.tensor(alibi_slopes(H), dtype=F64)
    alibi = -slopes[:, None, None] * (i - j)[None, :, :]      # [H, T, T]; masked where j > i
    allowed = causal_mask(T)
    x = layernorm(w["word_embeddings"][tokens.long()], w["emb_norm_g"], w["emb_norm_b"], eps)
    for l in range(C["layers"]):
        p = "layers.%d." % l
        a = layernorm(x, w[p + "ln1_g"], w[p + "ln1_b"], eps)
        q, k, v = (a @ w[p + "w" + n].T + w[p + "b" + n] for n in ("q", "k", "v"))
        h = x + attention(q, k, v, H, H, allowed, alibi) @ w[p + "wo"].T + w[p + "bo"]
        f = layernorm(h, w[p + "ln2_g"], w[p + "ln2_b"], eps)
        x = h + gelu_tanh(f @ w[p + "w_up"].T + w[p + "b_up"]) @ w[p + "w_down"].T + w[p + "b_down"]
    return layernorm(x, w["ln_f_g"], w["ln_f_b"], eps) @ w["word_embeddings"].T


if __name__ == "__main__":
    gen = make_gen(4242)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (20,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)
