"""tests/torch/falcon_grouped.py — tests/torch/mixtral.py's model (grouped-
query attention: 4 heads, 2 KV heads) with its q, k and v projections fused
as Falcon's checkpoints (new decoder architecture) store them:
self_attention.query_key_value.weight is [G, q_per_kv + 2, d] rows per
group g: its q_per_kv query heads, then its key head, then its value head.
The reference of tests/torch/falcon_grouped.tfx; other tensors keep the
.tfx's names.

Usage: /usr/bin/python3 tests/torch/falcon_grouped.py OUTDIR
"""
import torch

import hf_layout
import mixtral
from common import outdir_from_argv


def grouped(q, k, v, G):
    """q [G * qpk * d, D], k and v [G * d, D] -> [G * (qpk + 2) * d, D]."""
    d = k.shape[0] // G
    qpk = q.shape[0] // (G * d)
    parts = [q.reshape(G, qpk, d, -1), k.reshape(G, 1, d, -1), v.reshape(G, 1, d, -1)]
    return torch.cat(parts, 1).reshape(-1, q.shape[1]).contiguous()


def repack(w):
    G = mixtral.C["kv_heads"]
    for i in range(mixtral.C["layers"]):
        p = "layers.%d." % i
        qkv = grouped(w.pop(p + "wq"), w.pop(p + "wk"), w.pop(p + "wv"), G)
        w["transformer.h.%d.self_attention.query_key_value.weight" % i] = qkv
    return w


if __name__ == "__main__":
    hf_layout.run(mixtral, outdir_from_argv(), repack)
