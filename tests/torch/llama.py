"""tests/torch/llama.py — the reference for examples/llama/tiny.tfx: a tiny
LLaMA-style decoder written from the math of TECHNIQUES.md in float64:
pre-norm RMSNorm, grouped-query attention with RoPE and a causal mask,
SwiGLU FFN, final RMSNorm, untied classifier.

Usage: /usr/bin/python3 tests/torch/llama.py OUTDIR
The module's build_case() is shared with llama_neox.py (other RoPE pairing).
"""
import math

import torch

from common import outdir_from_argv, write_case

CONFIG = dict(dim=64, layers=2, heads=4, kv_heads=2, hidden=96, vocab=128, eps=1e-5,
              theta=10000.0, style="interleaved", rotary_dim=None)


def rmsnorm(x, g, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g


def rope(x, heads, theta, style, rotary_dim):
    """Rotates each head of x [T, heads*d] by angle p * theta^(-2i/rotary_dim)
    on its first rotary_dim dims. Pairs: interleaved (2i, 2i+1) or half
    (i, i + rotary_dim/2)."""
    T = x.shape[0]
    d = x.shape[1] // heads
    r = rotary_dim or d
    x = x.reshape(T, heads, d).clone()
    pos = torch.arange(T, dtype=torch.float64)[:, None]               # [T, 1]
    i = torch.arange(r // 2, dtype=torch.float64)[None, :]            # [1, r/2]
    ang = pos * theta ** (-2.0 * i / r)                                # [T, r/2]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]  # [T, 1, r/2]
    if style == "interleaved":
        a, b = x[:, :, 0:r:2].clone(), x[:, :, 1:r:2].clone()
        x[:, :, 0:r:2] = a * cos - b * sin
        x[:, :, 1:r:2] = a * sin + b * cos
    else:
        a, b = x[:, :, : r // 2].clone(), x[:, :, r // 2: r].clone()
        x[:, :, : r // 2] = a * cos - b * sin
        x[:, :, r // 2: r] = a * sin + b * cos
    return x.reshape(T, heads * d)


def attention(x, wq, wk, wv, wo, heads, kv_heads, c):
    T, D = x.shape
    d = wq.shape[0] // heads
    q = rope(x @ wq.T, heads, c["theta"], c["style"], c["rotary_dim"]).reshape(T, heads, d)
    k = rope(x @ wk.T, kv_heads, c["theta"], c["style"], c["rotary_dim"]).reshape(T, kv_heads, d)
    v = (x @ wv.T).reshape(T, kv_heads, d)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)  # -inf where j > i
    out = torch.empty(T, heads, d, dtype=torch.float64)
    group = heads // kv_heads
    for h in range(heads):
        g = h // group
        s = q[:, h, :] @ k[:, g, :].T / math.sqrt(d) + mask
        out[:, h, :] = torch.softmax(s, dim=-1) @ v[:, g, :]
    return out.reshape(T, heads * d) @ wo.T


def make_weights(c, gen, storage=None):
    D, Hd, Gd, F, V = c["dim"], c["dim"], c["dim"] // c["heads"] * c["kv_heads"], c["hidden"], c["vocab"]

    def lin(out, inp):
        return torch.randn(out, inp, generator=gen, dtype=torch.float64) / math.sqrt(inp)

    def gain(n):
        return 1.0 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64)

    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=torch.float64),
         "norm": gain(D), "output": lin(V, D)}
    for i in range(c["layers"]):
        p = "layers.%d." % i
        w[p + "attention_norm"] = gain(D)
        w[p + "wq"] = lin(Hd, D)
        w[p + "wk"] = lin(Gd, D)
        w[p + "wv"] = lin(Gd, D)
        w[p + "wo"] = lin(D, Hd)
        w[p + "ffn_norm"] = gain(D)
        w[p + "w1"] = lin(F, D)
        w[p + "w2"] = lin(D, F)
        w[p + "w3"] = lin(F, D)
    # storage(name) is the dtype each tensor is saved as (default float32);
    # compute with exactly the values tfxc will read
    stored = {k: v.to(storage(k) if storage else torch.float32) for k, v in w.items()}
    return stored, {k: v.to(torch.float64) for k, v in stored.items()}


def forward(w, tokens, c):
    x = w["tok_embeddings"][tokens.long()]
    for i in range(c["layers"]):
        p = "layers.%d." % i
        a = rmsnorm(x, w[p + "attention_norm"], c["eps"])
        h = x + attention(a, w[p + "wq"], w[p + "wk"], w[p + "wv"], w[p + "wo"], c["heads"], c["kv_heads"], c)
        f = rmsnorm(h, w[p + "ffn_norm"], c["eps"])
        silu = torch.nn.functional.silu
        x = h + (silu(f @ w[p + "w1"].T) * (f @ w[p + "w3"].T)) @ w[p + "w2"].T
    return rmsnorm(x, w["norm"], c["eps"]) @ w["output"].T


def build_case(outdir, c, seed, T=20, storage=None, file_names=None):
    """file_names(stored) -> {file name: tensor} renames the saved tensors
    (e.g. to Hugging Face names); the model is computed with the param names."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    stored, w = make_weights(c, gen, storage)
    tokens = torch.randint(0, c["vocab"], (T,), generator=gen, dtype=torch.int32)
    expected = forward(w, tokens, c)
    write_case(outdir, file_names(stored) if file_names else stored, tokens, expected, causal=True)


if __name__ == "__main__":
    build_case(outdir_from_argv(), CONFIG, seed=1234)
