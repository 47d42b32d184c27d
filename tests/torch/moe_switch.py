"""tests/torch/moe_switch.py — the reference for tests/torch/moe_switch.tfx,
written from the math of TECHNIQUES.md (Switch Transformer) in float64:
LayerNorm, top-1 routing over 4 experts, weight = softmax over all 4 logits at
the chosen expert, capacity ceil(1.0 * T * 1 / 4) tokens per expert in token
order (overflow dropped: the token keeps only its residual), ungated ReLU
experts; residual.

The seed is the first whose routing is at least 1e-3 away from any tie and
where the capacity drops tokens.

Usage: /usr/bin/python3 tests/torch/moe_switch.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, layernorm, moe

D, E, F, EPS = 24, 4, 40, 1e-5


def build(seed, T):
    w = Weights(seed)
    ln = (w.gain("ln_g", D), w.bias("ln_b", D))
    router = w.randn("router", E, D, scale=2.0 / D ** 0.5)
    w1, w2 = w.experts("w1", E, F, D), w.experts("w2", E, D, F)
    x = w.inputs(T, D)
    f = layernorm(x.double(), *ln, EPS)
    y, margin, dropped = moe(f, router, w1, w2, None, 1, act="relu", gate="softmax", capacity=1.0)
    return w, x, x.double() + y, margin, dropped


def main(outdir, T=22):
    for seed in range(8, 58):
        w, x, y, margin, dropped = build(seed, T)
        if margin > 1e-3 and dropped >= 2:
            write_case(outdir, w.stored, x, y, causal=False)
            return
    raise SystemExit("moe_switch.py: no seed with clear routing and dropped tokens")


if __name__ == "__main__":
    main(outdir_from_argv())
