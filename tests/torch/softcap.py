"""tests/torch/softcap.py — the reference for tests/torch/softcap.tfx (and its
schedule variants softcap_split.tfx, softcap_tiny.tfx), from the math in
float64 as Gemma 2 writes it (modeling_gemma2.py): the scaled scores
s -> c * tanh(s / c) before the mask and the softmax, and the final logits
c * tanh(logits / c).

Usage: /usr/bin/python3 tests/torch/softcap.py OUTDIR
"""
import torch

from attn_common import as_f32, causal_mask, lin, make_gen, rope
from common import outdir_from_argv, write_case

D, H, G, HD, V = 32, 4, 2, 8, 40


def cap(x, c):
    return c * torch.tanh(x / c)


def attn(x, w, p, T, scale, c, allowed, use_rope):
    q = (x @ w[p + "wq"].T).reshape(T, H, HD)
    k = (x @ w[p + "wk"].T).reshape(T, G, HD)
    if use_rope:
        pos = torch.arange(T)
        q, k = rope(q, pos, 10000.0, "half"), rope(k, pos, 10000.0, "half")
    v = (x @ w[p + "wv"].T).reshape(T, G, HD)
    out = torch.empty(T, H, HD, dtype=torch.float64)
    for h in range(H):
        g = h // (H // G)
        s = cap(q[:, h] @ k[:, g].T * scale, c).masked_fill(~allowed, float("-inf"))
        out[:, h] = torch.softmax(s, -1) @ v[:, g]
    return out.reshape(T, H * HD) @ w[p + "wo"].T


def main(outdir, seed=5, T=21):
    gen = make_gen(seed)
    w = {"tok": 2.0 * torch.randn(V, D, generator=gen, dtype=torch.float64), "out": 2.0 * lin(gen, V, D)}
    for p in ("a.", "b."):
        w[p + "wq"], w[p + "wk"], w[p + "wv"] = lin(gen, H * HD, D), lin(gen, G * HD, D), lin(gen, G * HD, D)
        w[p + "wo"] = lin(gen, D, H * HD)
    w = as_f32(w)
    tokens = torch.randint(0, V, (T,), generator=gen, dtype=torch.int32)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    x = w["tok"][tokens.long()]
    x = x + attn(x, w, "a.", T, 0.75, 2.0, causal_mask(T), True)
    x = x + attn(x, w, "b.", T, HD ** -0.5, 1.0, causal_mask(T) & (i - j < 6), False)
    write_case(outdir, {k: v.to(torch.float32) for k, v in w.items()}, tokens, cap(x @ w["out"].T, 3.0), causal=True)


if __name__ == "__main__":
    main(outdir_from_argv())
