"""tests/torch/qk_norm.py — the reference for tests/torch/qk_norm.tfx, from
the math in float64: learned positions read from row 2 on (an offset of
padding_idx + 1), three attention layers with q/k norms before RoPE (per head
RMSNorm as Qwen3; RMSNorm over all heads as OLMo 2; per head LayerNorm with
biases as Phi's qk_layernorm), scores scaled by 1 (none), 0.5/sqrt(d) and
1/sqrt(d), and a small FFN with constants folded into its weights.

Usage: /usr/bin/python3 tests/torch/qk_norm.py OUTDIR
"""
import math

import torch

from attn_common import layernorm, rmsnorm, rope
from common import outdir_from_argv, write_case

D, H, G, HD, F, V, MS, EPS = 32, 4, 2, 8, 48, 40, 32, 1e-6


def attn(x, w, p, T, theta, style, scale, qnorm, knorm):
    pos = torch.arange(T)
    q = qnorm((x @ w[p + "wq"].T)).reshape(T, H, HD)
    k = knorm((x @ w[p + "wk"].T)).reshape(T, G, HD)
    q, k = rope(q, pos, theta, style), rope(k, pos, theta, style)
    v = (x @ w[p + "wv"].T).reshape(T, G, HD)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    out = torch.empty(T, H, HD, dtype=torch.float64)
    for h in range(H):
        g = h // (H // G)
        out[:, h] = torch.softmax(q[:, h] @ k[:, g].T * scale + mask, -1) @ v[:, g]
    return out.reshape(T, H * HD) @ w[p + "wo"].T


def ffn(x, w, p):
    h = torch.relu((x * w[p + "g"]) @ w[p + "w1"].T / 2 - 0.1)
    return x + h @ (w[p + "w2"] * 0.5 + 0.01).T


def main(outdir, seed=3, T=17):
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, s=1.0):
        return s * torch.randn(*shape, generator=gen, dtype=torch.float64)

    w = {"tok": r(V, D), "pos": r(MS + 2, D, s=0.5), "row": r(1, D, s=0.3), "out": r(V, D, s=1 / math.sqrt(D))}
    for p in ("a.", "b.", "c."):
        w[p + "wq"], w[p + "wk"], w[p + "wv"] = r(H * HD, D, s=D ** -0.5), r(G * HD, D, s=D ** -0.5), r(G * HD, D, s=D ** -0.5)
        w[p + "wo"] = r(D, H * HD, s=(H * HD) ** -0.5)
        w[p + "w1"], w[p + "w2"], w[p + "g"] = r(F, D, s=D ** -0.5), r(D, F, s=F ** -0.5), 1 + r(1, D, s=0.2)
    for p in ("a.", "c."):
        w[p + "qn"], w[p + "kn"] = 1 + r(HD, s=0.3), 1 + r(HD, s=0.3)
    w["c.qb"], w["c.kb"] = r(HD, s=0.2), r(HD, s=0.2)
    w["b.qn"], w["b.kn"] = 1 + r(H * HD, s=0.3), 1 + r(G * HD, s=0.3)
    stored = {k: v.to(torch.float32) for k, v in w.items()}
    w = {k: v.to(torch.float64) for k, v in stored.items()}
    tokens = torch.randint(0, V, (T,), generator=gen, dtype=torch.int32)

    def per_head(n, g, b=None):
        if b is None:
            return lambda t: rmsnorm(t.reshape(T, n, HD), g, EPS).reshape(T, n * HD)
        return lambda t: layernorm(t.reshape(T, n, HD), g, b, EPS).reshape(T, n * HD)

    x = w["tok"][tokens.long()] + w["pos"][2:2 + T]
    x = x + w["row"]
    x = x + attn(x, w, "a.", T, 10000.0, "half", 1.0, per_head(H, w["a.qn"]), per_head(G, w["a.kn"]))
    x = ffn(x, w, "a.")
    wb = dict(w)
    wb["b.wq"] = -w["b.wq"]
    x = x + attn(x, wb, "b.", T, 500.0, "interleaved", 0.5 / math.sqrt(HD),
                 lambda t: rmsnorm(t, w["b.qn"], EPS), lambda t: rmsnorm(t, w["b.kn"], EPS))
    x = ffn(x, w, "b.")
    x = 1 - x
    x = x + attn(x, w, "c.", T, 10000.0, "half", 1 / math.sqrt(HD),
                 per_head(H, w["c.qn"], w["c.qb"]), per_head(G, w["c.kn"], w["c.kb"]))
    x = ffn(x, w, "c.")
    write_case(outdir, stored, tokens, x @ w["out"].T, causal=True)


if __name__ == "__main__":
    main(outdir_from_argv())
