"""tests/torch/computed_weight.py — the reference for
tests/torch/computed_weight.tfx: linears whose weights are computed from
params (a + b, u v^T, u v^T + c), with a LayerNorm before, a bias and GELU
after and a residual, in float64. f32 rows, no attention.

Usage: /usr/bin/python3 tests/torch/computed_weight.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, gelu_erf, layernorm, linear

D, R, EPS = 32, 8, 1e-5


def main(outdir, seed=5, T=13):
    w = Weights(seed)
    g, nb = w.gain("n_g", D), w.bias("n_b", D)
    a, b, bias = w.lin("a", D, D), w.lin("b", D, D), w.bias("bias", D)
    u, v, c = w.lin("u", D, R), w.lin("v", D, R), w.lin("c", D, D)
    x = w.inputs(T, D)
    h = x.to(a.dtype)
    h = h + gelu_erf(linear(layernorm(h, g, nb, EPS), a + b, bias))
    uv = linear(u, v)
    h = h + linear(h, uv)
    h = linear(h, uv + c)
    write_case(outdir, w.stored, x, h, causal=False)


if __name__ == "__main__":
    main(outdir_from_argv())
