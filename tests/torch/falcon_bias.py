"""tests/torch/falcon_bias.py — the reference for tests/torch/falcon_bias.tfx:
q, k and v projections with biases, written into Falcon's fused
self_attention.query_key_value weight and bias ([kv_heads, q_per_kv + 2,
head_dim] rows: per group its query heads, its key head, its value head), in
float64: (x Wq^T + bq) Mix^T + (x Wk^T + bk) * (x Wv^T + bv).

Usage: /usr/bin/python3 tests/torch/falcon_bias.py OUTDIR
"""
import torch

from common import outdir_from_argv, write_case
from ffn_common import Weights, linear

D, H, G, HD = 24, 6, 2, 4
QPK = H // G


def grouped(q, k, v):
    """q [H * HD, ...], k and v [G * HD, ...] -> [G * (QPK + 2) * HD, ...]."""
    rest = q.shape[1:]
    parts = [q.reshape(G, QPK, HD, *rest), k.reshape(G, 1, HD, *rest), v.reshape(G, 1, HD, *rest)]
    return torch.cat(parts, 1).reshape(G * (QPK + 2) * HD, *rest).contiguous()


def main(outdir, seed=17, T=11):
    w = Weights(seed)
    wq, bq = w.lin("wq", H * HD, D), w.bias("bq", H * HD)
    wk, bk = w.lin("wk", G * HD, D), w.bias("bk", G * HD)
    wv, bv = w.lin("wv", G * HD, D), w.bias("bv", G * HD)
    mix = w.lin("mix", G * HD, H * HD)
    x = w.inputs(T, D)
    h = x.to(wq.dtype)
    y = linear(linear(h, wq, bq), mix) + linear(h, wk, bk) * linear(h, wv, bv)
    s = w.stored
    stored = {"mix": s["mix"],
              "h.0.self_attention.query_key_value.weight": grouped(s["wq"], s["wk"], s["wv"]),
              "h.0.self_attention.query_key_value.bias": grouped(s["bq"], s["bk"], s["bv"])}
    write_case(outdir, stored, x, y, causal=False)


if __name__ == "__main__":
    main(outdir_from_argv())
