"""tests/torch/t5.py — the reference for examples/t5/t5.tfx: a tiny T5-style
encoder-decoder from the math of the T5 paper (Raffel et al.), in float64
except the relative position buckets, computed as Hugging Face's
_relative_position_bucket does (f32 logarithms): pre-norm layers with an
RMSNorm without bias, unscaled attention scores plus a learned bias per
bucket of j - i and head (bidirectional in the encoder, causal in the
decoder), cross-attention without bias, ReLU FFN, final norms and the tied
classifier scaled by dim^-0.5.

Usage: /usr/bin/python3 tests/torch/t5.py OUTDIR
"""
import math

import torch

from attn_common import rmsnorm
from common import outdir_from_argv, write_case

D, H, KV, FF, LE, LD, V, S, EPS, NB, MD = 32, 4, 32, 64, 2, 2, 48, 12, 1e-6, 16, 20
HD = KV // H


def bucket(rel, bidirectional, num_buckets, max_distance):
    """rel = key position - query position (a long tensor); T5's bucket."""
    ret = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        ret += (rel > 0).to(torch.long) * num_buckets
        rel = torch.abs(rel)
    else:
        rel = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    is_small = rel < max_exact
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return ret + torch.where(is_small, rel, large)


def attention(xq, xkv, w, p, bias, causal):
    Tq, Tk = xq.shape[0], xkv.shape[0]
    q = (xq @ w[p + "q"].T).reshape(Tq, H, HD)
    k = (xkv @ w[p + "k"].T).reshape(Tk, H, HD)
    v = (xkv @ w[p + "v"].T).reshape(Tk, H, HD)
    out = torch.empty(Tq, H, HD, dtype=torch.float64)
    mask = torch.full((Tq, Tk), float("-inf"), dtype=torch.float64).triu(1) if causal else 0.0
    for h in range(H):
        s = q[:, h] @ k[:, h].T + mask  # no 1/sqrt(d)
        if bias is not None:
            s = s + bias[:, :, h]
        out[:, h] = torch.softmax(s, -1) @ v[:, h]
    return out.reshape(Tq, KV) @ w[p + "o"].T


def rel_bias(table, Tq, Tk, bidirectional):
    rel = torch.arange(Tk)[None, :] - torch.arange(Tq)[:, None]
    return table[bucket(rel, bidirectional, NB, MD)]  # [Tq, Tk, H]


def main(outdir, seed=5, T=21):
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, s=1.0):
        return s * torch.randn(*shape, generator=gen, dtype=torch.float64)

    w = {"source": r(S, D), "shared": r(V, D), "enc_rel": r(NB, H), "dec_rel": r(NB, H),
         "enc_norm": 1 + r(D, s=0.2), "dec_norm": 1 + r(D, s=0.2)}
    for i in range(LE):
        p = "encoder.%d." % i
        w[p + "sa_norm"], w[p + "ff_norm"] = 1 + r(D, s=0.2), 1 + r(D, s=0.2)
        for n in "qkv":
            w[p + n] = r(KV, D, s=D ** -0.5 * (HD ** -0.5 if n == "q" else 1))
        w[p + "o"], w[p + "wi"], w[p + "wo"] = r(D, KV, s=KV ** -0.5), r(FF, D, s=D ** -0.5), r(D, FF, s=FF ** -0.5)
    for i in range(LD):
        p = "decoder.%d." % i
        for n in ("sa_norm", "ca_norm", "ff_norm"):
            w[p + n] = 1 + r(D, s=0.2)
        for n in ("q", "k", "v", "cq", "ck", "cv"):
            w[p + n] = r(KV, D, s=D ** -0.5 * (HD ** -0.5 if n in ("q", "cq") else 1))
        w[p + "o"], w[p + "co"] = r(D, KV, s=KV ** -0.5), r(D, KV, s=KV ** -0.5)
        w[p + "wi"], w[p + "wo"] = r(FF, D, s=D ** -0.5), r(D, FF, s=FF ** -0.5)
    stored = {k: v.to(torch.float32) for k, v in w.items()}
    w = {k: v.to(torch.float64) for k, v in stored.items()}
    tokens = torch.randint(0, V, (T,), generator=gen, dtype=torch.int32)

    x = w["source"]
    eb = rel_bias(w["enc_rel"], S, S, True)
    for i in range(LE):
        p = "encoder.%d." % i
        x = x + attention(rmsnorm(x, w[p + "sa_norm"], EPS), rmsnorm(x, w[p + "sa_norm"], EPS), w, p, eb, False)
        x = x + torch.relu(rmsnorm(x, w[p + "ff_norm"], EPS) @ w[p + "wi"].T) @ w[p + "wo"].T
    enc = rmsnorm(x, w["enc_norm"], EPS)
    x = w["shared"][tokens.long()]
    db = rel_bias(w["dec_rel"], T, T, False)
    for i in range(LD):
        p = "decoder.%d." % i
        a = rmsnorm(x, w[p + "sa_norm"], EPS)
        x = x + attention(a, a, w, p, db, True)
        wc = {p + "q": w[p + "cq"], p + "k": w[p + "ck"], p + "v": w[p + "cv"], p + "o": w[p + "co"]}
        x = x + attention(rmsnorm(x, w[p + "ca_norm"], EPS), enc, wc, p, None, False)
        x = x + torch.relu(rmsnorm(x, w[p + "ff_norm"], EPS) @ w[p + "wi"].T) @ w[p + "wo"].T
    y = (rmsnorm(x, w["dec_norm"], EPS) * D ** -0.5) @ w["shared"].T
    write_case(outdir, stored, tokens, y, causal=True)


if __name__ == "__main__":
    main(outdir_from_argv())
