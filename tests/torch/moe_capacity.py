"""tests/torch/moe_capacity.py — the reference for
tests/torch/moe_capacity.tfx, written from the math of TECHNIQUES.md in
float64: RMSNorm, router logits, top 2 of 6 experts (ties to the lower
index), softmax over the 2 chosen logits, capacity ceil(1.25 * T * 2 / 6)
tokens per expert in token order (overflow dropped), SwiGLU experts, plus a
shared SwiGLU expert; residual.

The inputs have a common offset so the router favours some experts and the
capacity really drops tokens (the script checks that some are dropped), and
the seed is the first whose routing is at least 1e-3 away from any tie.

Usage: /usr/bin/python3 tests/torch/moe_capacity.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, moe, rmsnorm

D, E, F, S, EPS = 32, 6, 24, 16, 1e-5


def build(seed, T):
    w = Weights(seed)
    norm = w.gain("norm", D)
    router = w.randn("router", E, D, scale=2.0 / D ** 0.5)
    w1, w2, w3 = w.experts("w1", E, F, D), w.experts("w2", E, D, F), w.experts("w3", E, F, D)
    s1, s2, s3 = w.lin("s1", S, D), w.lin("s2", D, S), w.lin("s3", S, D)
    x = (w.inputs(T, D) + 0.7).float()
    f = rmsnorm(x.double(), norm, EPS)
    y, margin, dropped = moe(f, router, w1, w2, w3, 2, act="silu", gate="softmax_topk", capacity=1.25,
                             shared=(s1, s2, s3))
    return w, x, x.double() + y, margin, dropped


def main(outdir, T=24):
    for seed in range(3, 53):
        w, x, y, margin, dropped = build(seed, T)
        if margin > 1e-3 and dropped >= 3:
            write_case(outdir, w.stored, x, y, causal=False)
            return
    raise SystemExit("moe_capacity.py: no seed with clear routing and dropped tokens")


if __name__ == "__main__":
    main(outdir_from_argv())
