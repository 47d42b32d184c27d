"""tests/torch/gemma.py — the reference for examples/gemma/gemma.tfx: a tiny
Gemma-style decoder written from the math (the Gemma and Gemma 2 papers) in
float64: the embedding scaled by sqrt(dim), RMSNorm with gain (1 + w),
multi-query attention with half-split RoPE and scores scaled by
1/sqrt(query_pre_attn_scalar), a GeGLU feed-forward network (tanh GELU),
the classifier tied to the embedding.

Usage: /usr/bin/python3 tests/torch/gemma.py OUTDIR
"""
import math

import torch

from attn_common import gelu_tanh, rmsnorm, rope
from common import outdir_from_argv, write_case

D, L, H, G, HD, F, V, EPS, QS = 64, 2, 4, 1, 32, 128, 96, 1e-6, 24


def attention(x, w, p, T):
    pos = torch.arange(T)
    q = rope((x @ w[p + "q_proj"].T).reshape(T, H, HD), pos, 10000.0, "half")
    k = rope((x @ w[p + "k_proj"].T).reshape(T, G, HD), pos, 10000.0, "half")
    v = (x @ w[p + "v_proj"].T).reshape(T, G, HD)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    out = torch.empty(T, H, HD, dtype=torch.float64)
    for h in range(H):
        g = h // (H // G)
        s = q[:, h] @ k[:, g].T / math.sqrt(QS) + mask
        out[:, h] = torch.softmax(s, -1) @ v[:, g]
    return out.reshape(T, H * HD) @ w[p + "o_proj"].T


def main(outdir, seed=7, T=19):
    gen = torch.Generator().manual_seed(seed)

    def lin(o, i):
        return torch.randn(o, i, generator=gen, dtype=torch.float64) / math.sqrt(i)

    def gain(n):  # stored as w, applied as 1 + w
        return 0.2 * torch.randn(n, generator=gen, dtype=torch.float64)

    w = {"embed_tokens": torch.randn(V, D, generator=gen, dtype=torch.float64) / math.sqrt(D), "norm": gain(D)}
    for i in range(L):
        p = "layers.%d." % i
        w[p + "input_layernorm"] = gain(D)
        w[p + "q_proj"], w[p + "k_proj"], w[p + "v_proj"] = lin(H * HD, D), lin(G * HD, D), lin(G * HD, D)
        w[p + "o_proj"] = lin(D, H * HD)
        w[p + "post_attention_layernorm"] = gain(D)
        w[p + "gate_proj"], w[p + "up_proj"], w[p + "down_proj"] = lin(F, D), lin(F, D), lin(D, F)
    stored = {k: v.to(torch.float32) for k, v in w.items()}
    w = {k: v.to(torch.float64) for k, v in stored.items()}
    tokens = torch.randint(0, V, (T,), generator=gen, dtype=torch.int32)
    x = w["embed_tokens"][tokens.long()] * math.sqrt(D)
    for i in range(L):
        p = "layers.%d." % i
        h = x + attention(rmsnorm(x, 1 + w[p + "input_layernorm"], EPS), w, p, T)
        f = rmsnorm(h, 1 + w[p + "post_attention_layernorm"], EPS)
        x = h + (gelu_tanh(f @ w[p + "gate_proj"].T) * (f @ w[p + "up_proj"].T)) @ w[p + "down_proj"].T
    y = rmsnorm(x, 1 + w["norm"], EPS) @ w["embed_tokens"].T
    write_case(outdir, stored, tokens, y, causal=True)


if __name__ == "__main__":
    main(outdir_from_argv())
