"""tests/torch/mla_plain.py — the reference for tests/torch/mla_plain.tfx:
multi-head latent attention (DeepSeek-V2) in the configurations mla.py leaves
out, written from the paper's equations in float64 and in the plain
(non-absorbed) form, as mla.py:

  q = x W_q^T (no low-rank path), or x W_dq^T W_uq^T (low rank, no q_norm)
      -> per head [q_nope (dn) | q_pe (dr)]
  [c | k_pe] = x W_dkv_kr^T; c = rmsnorm(c) only where kv_norm is given
  per head: k_nope = c W_uk_h^T, v = c W_uv_h^T (W_kv_b rows: dn of W_uk, dv of W_uv)
  score = (q_nope . k_nope + rope(q_pe) . rope(k_pe)) / sqrt(dn + dr), causal

  layer 0: direct W_q, no kv_norm, RoPE interleaved, base 10000
  layer 1: direct W_q, kv_norm, RoPE half-split (i, i + dr/2), base 50000
  layer 2: low-rank q without q_norm, no kv_norm, RoPE interleaved, base 1000,
           and a sliding window: j > i - 5

Around it: pre-norm RMSNorm blocks (attention only), final RMSNorm, untied
classifier.

Usage: /usr/bin/python3 tests/torch/mla_plain.py OUTDIR
"""
import math

import torch

from attn_common import F64, as_f32, causal_mask, gain, lin, make_gen, rmsnorm, rope
from common import outdir_from_argv, write_case

C = dict(dim=48, heads=4, vocab=96, dn=8, dr=4, dv=12, r=24, rq=32, eps=1e-6)
LAYERS = [dict(low_rank_q=False, kv_norm=False, style="interleaved", theta=10000.0, window=None),
          dict(low_rank_q=False, kv_norm=True, style="half", theta=50000.0, window=None),
          dict(low_rank_q=True, kv_norm=False, style="interleaved", theta=1000.0, window=5)]


def make_weights(gen):
    D, H, V = C["dim"], C["heads"], C["vocab"]
    dn, dr, dv, r, rq = C["dn"], C["dr"], C["dv"], C["r"], C["rq"]
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "norm": gain(gen, D), "output": lin(gen, V, D)}
    for i, L in enumerate(LAYERS):
        p = "layers.%d." % i
        w[p + "attention_norm"] = gain(gen, D)
        if L["low_rank_q"]:
            w[p + "wq_a"] = lin(gen, rq, D)
            w[p + "wq"] = lin(gen, H * (dn + dr), rq)
        else:
            w[p + "wq"] = lin(gen, H * (dn + dr), D)
        w[p + "wkv_a"] = lin(gen, r + dr, D)
        if L["kv_norm"]:
            w[p + "kv_norm"] = gain(gen, r)
        w[p + "wkv_b"] = lin(gen, H * (dn + dv), r)
        w[p + "wo"] = lin(gen, D, H * dv)
    return as_f32(w)


def mla(x, w, p, L):
    T = x.shape[0]
    H, dn, dr, dv, r, eps = C["heads"], C["dn"], C["dr"], C["dv"], C["r"], C["eps"]
    pos = torch.arange(T)
    qin = x @ w[p + "wq_a"].T if L["low_rank_q"] else x
    q = (qin @ w[p + "wq"].T).reshape(T, H, dn + dr)
    q_nope, q_pe = q[:, :, :dn], rope(q[:, :, dn:], pos, L["theta"], L["style"])
    ckv = x @ w[p + "wkv_a"].T
    c = rmsnorm(ckv[:, :r], w[p + "kv_norm"], eps) if L["kv_norm"] else ckv[:, :r]
    k_pe = rope(ckv[:, r:], pos, L["theta"], L["style"])                    # [T, dr], shared by the heads
    kv = (c @ w[p + "wkv_b"].T).reshape(T, H, dn + dv)
    k_nope, v = kv[:, :, :dn], kv[:, :, dn:]
    allowed = causal_mask(T)
    if L["window"]:
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        allowed = allowed & (i - j < L["window"])
    out = torch.empty(T, H, dv, dtype=F64)
    for h in range(H):
        s = (q_nope[:, h, :] @ k_nope[:, h, :].T + q_pe[:, h, :] @ k_pe.T) / math.sqrt(dn + dr)
        s = s.masked_fill(~allowed, float("-inf"))
        out[:, h, :] = torch.softmax(s, dim=-1) @ v[:, h, :]
    return out.reshape(T, H * dv) @ w[p + "wo"].T


def forward(w, tokens):
    x = w["tok_embeddings"][tokens.long()]
    for l, L in enumerate(LAYERS):
        p = "layers.%d." % l
        x = x + mla(rmsnorm(x, w[p + "attention_norm"], C["eps"]), w, p, L)
    return rmsnorm(x, w["norm"], C["eps"]) @ w["output"].T


if __name__ == "__main__":
    gen = make_gen(5252)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (20,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)
