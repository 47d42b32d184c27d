"""tests/torch/rope_op.py — the reference for tests/torch/rope_op.tfx: the
standalone `rope(x, heads = H, ...)` op, written from the RoPE papers (RoFormer;
GPT-NeoX for the half-split pairs) in float64. For x [T, H * d], each head's
first r dims (r = rotary_dim) are rotated by angle p * theta^(-2i/r),
i = 0 .. r/2 - 1, where p is the token's absolute position in the sequence;
pairs (2i, 2i + 1) (interleaved) or (i, i + r/2) (half); dims r .. d - 1 pass
through. Per layer of a decoder (tokens -> embedding, untied classifier):
  a  = rmsnorm(x)
  x += causal attention(a) without positions (it gives the model its KV cache,
       so decode and chunked prefill see positions pos + t)
  b  = rmsnorm(x)
  x += rope(b @ r1^T, heads 4, interleaved, theta 10000, all 12 dims) @ o1^T
     + rope(b @ r2^T + c2, heads 2, half, theta 500, first 16 of 24 dims) @ o2^T
     + rope(b, heads 6, half, theta 1e6, first 6 of 8 dims) @ o3^T
     + rope(b, heads 8, interleaved, theta 50, first 4 of 6 dims) @ o4^T

Usage: /usr/bin/python3 tests/torch/rope_op.py OUTDIR
"""
import torch

from attn_common import F64, as_f32, attention, bias, causal_mask, gain, lin, make_gen, rmsnorm, rope
from common import outdir_from_argv, write_case

C = dict(dim=48, layers=2, heads=4, vocab=96, eps=1e-5)
ROPES = [  # (heads, style, theta, rotary_dim)
    (4, "interleaved", 10000.0, 12),
    (2, "half", 500.0, 16),
    (6, "half", 1e6, 6),
    (8, "interleaved", 50.0, 4),
]


def rope_heads(x, pos, heads, style, theta, r):
    """rope on the first r dims of each of the heads of x [T, heads * d]."""
    T = x.shape[0]
    y = x.reshape(T, heads, -1).clone()
    y[:, :, :r] = rope(y[:, :, :r], pos, theta, style)
    return y.reshape(T, -1)


def make_weights(gen):
    D, V = C["dim"], C["vocab"]
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "norm": gain(gen, D), "output": lin(gen, V, D)}
    for i in range(C["layers"]):
        p = "layers.%d." % i
        w[p + "attention_norm"], w[p + "rope_norm"] = gain(gen, D), gain(gen, D)
        for n in ("wq", "wk", "wv", "wo", "r1", "o1", "r2", "o2", "o3", "o4"):
            w[p + n] = lin(gen, D, D)
        w[p + "c2"] = bias(gen, D)
    return as_f32(w)


def forward(w, tokens):
    T, H, eps = tokens.shape[0], C["heads"], C["eps"]
    pos = torch.arange(T)
    x = w["tok_embeddings"][tokens.long()]
    for l in range(C["layers"]):
        p = "layers.%d." % l
        a = rmsnorm(x, w[p + "attention_norm"], eps)
        q, k, v = (a @ w[p + n].T for n in ("wq", "wk", "wv"))
        x = x + attention(q, k, v, H, H, causal_mask(T)) @ w[p + "wo"].T
        b = rmsnorm(x, w[p + "rope_norm"], eps)
        inputs = [b @ w[p + "r1"].T, b @ w[p + "r2"].T + w[p + "c2"], b, b]
        for n, (src, (heads, style, theta, r)) in enumerate(zip(inputs, ROPES)):
            x = x + rope_heads(src, pos, heads, style, theta, r) @ w[p + "o%d" % (n + 1)].T
    return rmsnorm(x, w["norm"], eps) @ w["output"].T


if __name__ == "__main__":
    gen = make_gen(6262)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (24,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)
