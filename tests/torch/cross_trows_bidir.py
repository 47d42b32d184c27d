"""tests/torch/cross_trows_bidir.py — the reference for
tests/torch/cross_trows_bidir.tfx: an encoder over f32 rows whose attention
takes its keys and values from another tensor of the same call (a memory of
T rows, mask = none), written from the math in float64.

  m  = gelu(x Wm^T + bm)                                   (memory [T, 24])
  h  = x + cross(layernorm(x), m): q from x (4 heads of 8), k and v from m
       (one key/value head, MQA), every row of m visible
  h2 = h + cross(layernorm(h), m) with half-split RoPE (base 100) on q and k
       at their row positions, sparse = sliding(window = 3): |i - j| < 3
  y  = h2 Wout^T + bout                                     ([T, 16])

Usage: /usr/bin/python3 tests/torch/cross_trows_bidir.py OUTDIR
"""
import torch

from attn_common import F64, as_f32, attention, bias, gain, gelu_erf, layernorm, lin, make_gen, rope
from common import outdir_from_argv, write_case

C = dict(dim=32, mem=24, heads=4, out=16, eps=1e-5)


def make_weights(gen):
    D, M, O = C["dim"], C["mem"], C["out"]
    w = {"wm": lin(gen, M, D), "bm": bias(gen, M), "head": lin(gen, O, D), "head_b": bias(gen, O)}
    for l in range(2):
        p = "c%d_" % l
        w[p + "g"], w[p + "b"] = gain(gen, D), bias(gen, D)
        w[p + "wq"], w[p + "wk"], w[p + "wv"], w[p + "wo"] = lin(gen, D, D), lin(gen, 8, M), lin(gen, 8, M), lin(gen, D, D)
    return as_f32(w)


def forward(w, x):
    T, H, eps = x.shape[0], C["heads"], C["eps"]
    pos = torch.arange(T)
    m = gelu_erf(x @ w["wm"].T + w["bm"])
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    for l, allowed in enumerate([torch.ones(T, T, dtype=torch.bool), (i - j).abs() < 3]):
        p = "c%d_" % l
        a = layernorm(x, w[p + "g"], w[p + "b"], eps)
        q, k, v = a @ w[p + "wq"].T, m @ w[p + "wk"].T, m @ w[p + "wv"].T
        if l == 1:
            q = rope(q.reshape(T, H, -1), pos, 100.0, "half").reshape(T, -1)
            k = rope(k, pos, 100.0, "half")
        x = x + attention(q, k, v, H, 1, allowed) @ w[p + "wo"].T
    return x @ w["head"].T + w["head_b"]


if __name__ == "__main__":
    gen = make_gen(4545)
    w = make_weights(gen)
    x = torch.randn(18, C["dim"], generator=gen, dtype=F64).to(torch.float32)
    write_case(outdir_from_argv(), w, x, forward(w, x.to(F64)), causal=False)
