"""tests/torch/mla.py — the reference for examples/deepseek/mla.tfx: a tiny
DeepSeek-V2-style decoder with multi-head latent attention, written from the
DeepSeek-V2 paper's equations in float64 and in the plain (non-absorbed)
form: every head's keys and values are built from the latent.

  c_q = rmsnorm(x W_dq^T)               q = c_q W_uq^T -> per head [q_nope (dn) | q_pe (dr)]
  [c_kv | k_pe] = x W_dkv_kr^T          c_kv = rmsnorm(c_kv), k_pe = rope(k_pe) (one head, shared)
  per head: k_nope = c_kv W_uk_h^T, v = c_kv W_uv_h^T   (W_kv_b rows: per head dn of W_uk, dv of W_uv)
  score(i, j) = (q_nope_i . k_nope_j + rope(q_pe)_i . k_pe_j) / sqrt(dn + dr), causal
  out = softmax(score) v, heads concatenated, W_o

RoPE pairs are interleaved (2i, 2i+1), angle p * 10000^(-2i/dr). Around it:
pre-norm RMSNorm blocks, SwiGLU FFN, final RMSNorm, untied classifier.

Usage: /usr/bin/python3 tests/torch/mla.py OUTDIR
"""
import math

import torch

from attn_common import F64, as_f32, causal_mask, gain, lin, make_gen, rmsnorm, rope
from common import outdir_from_argv, write_case

C = dict(dim=64, layers=2, heads=4, hidden=96, vocab=128, dn=16, dr=8, dv=16, r=32, rq=48, eps=1e-6, theta=10000.0)


def make_weights(gen):
    D, H, F, V = C["dim"], C["heads"], C["hidden"], C["vocab"]
    dn, dr, dv, r, rq = C["dn"], C["dr"], C["dv"], C["r"], C["rq"]
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "norm": gain(gen, D), "output": lin(gen, V, D)}
    for i in range(C["layers"]):
        p = "layers.%d." % i
        w[p + "attention_norm"] = gain(gen, D)
        w[p + "wq_a"] = lin(gen, rq, D)
        w[p + "q_norm"] = gain(gen, rq)
        w[p + "wq"] = lin(gen, H * (dn + dr), rq)
        w[p + "wkv_a"] = lin(gen, r + dr, D)
        w[p + "kv_norm"] = gain(gen, r)
        w[p + "wkv_b"] = lin(gen, H * (dn + dv), r)
        w[p + "wo"] = lin(gen, D, H * dv)
        w[p + "ffn_norm"] = gain(gen, D)
        w[p + "w1"] = lin(gen, F, D)
        w[p + "w2"] = lin(gen, D, F)
        w[p + "w3"] = lin(gen, F, D)
    return as_f32(w)


def mla(x, w, p):
    T = x.shape[0]
    H, dn, dr, dv, r, eps = C["heads"], C["dn"], C["dr"], C["dv"], C["r"], C["eps"]
    pos = torch.arange(T)
    q = (rmsnorm(x @ w[p + "wq_a"].T, w[p + "q_norm"], eps) @ w[p + "wq"].T).reshape(T, H, dn + dr)
    q_nope, q_pe = q[:, :, :dn], rope(q[:, :, dn:], pos, C["theta"], "interleaved")
    ckv = x @ w[p + "wkv_a"].T
    c = rmsnorm(ckv[:, :r], w[p + "kv_norm"], eps)
    k_pe = rope(ckv[:, r:], pos, C["theta"], "interleaved")                  # [T, dr], shared by the heads
    kv = (c @ w[p + "wkv_b"].T).reshape(T, H, dn + dv)
    k_nope, v = kv[:, :, :dn], kv[:, :, dn:]
    allowed = causal_mask(T)
    out = torch.empty(T, H, dv, dtype=F64)
    for h in range(H):
        s = (q_nope[:, h, :] @ k_nope[:, h, :].T + q_pe[:, h, :] @ k_pe.T) / math.sqrt(dn + dr)
        s = s.masked_fill(~allowed, float("-inf"))
        out[:, h, :] = torch.softmax(s, dim=-1) @ v[:, h, :]
    return out.reshape(T, H * dv) @ w[p + "wo"].T


def forward(w, tokens):
    eps = C["eps"]
    x = w["tok_embeddings"][tokens.long()]
    for l in range(C["layers"]):
        p = "layers.%d." % l
        h = x + mla(rmsnorm(x, w[p + "attention_norm"], eps), w, p)
        f = rmsnorm(h, w[p + "ffn_norm"], eps)
        silu = torch.nn.functional.silu
        x = h + (silu(f @ w[p + "w1"].T) * (f @ w[p + "w3"].T)) @ w[p + "w2"].T
    return rmsnorm(x, w["norm"], eps) @ w["output"].T


if __name__ == "__main__":
    gen = make_gen(5150)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (20,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)
