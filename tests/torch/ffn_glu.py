"""tests/torch/ffn_glu.py — the reference for tests/torch/ffn_glu.tfx: the
classic FFN with ReLU, GELU (erf and tanh), SiLU and sigmoid, and the gated
FFNs GLU, ReGLU, GeGLU (both GELUs, with biases), SwiGLU and bilinear, in
pre-norm (LayerNorm, RMSNorm) and post-norm blocks, written from the math of
TECHNIQUES.md in float64. f32 input rows, no attention: no decode checks.

Usage: /usr/bin/python3 tests/torch/ffn_glu.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import ACTS, Weights, glu, layernorm, linear, rmsnorm

D, F, EPS = 32, 40, 1e-5


def main(outdir, seed=11, T=19):
    w = Weights(seed)
    n1 = (w.gain("n1_g", D), w.bias("n1_b", D))
    n2 = w.gain("n2_g", D)
    classic = []
    for name, act, biases in (("relu", "relu", True), ("gelu", "gelu", True), ("gelut", "gelu_tanh", False),
                              ("silu", "silu", False), ("sig", "sigmoid", False)):
        classic.append((act, w.lin(name + "_w1", F, D), w.bias(name + "_b1", F) if biases else None,
                        w.lin(name + "_w2", D, F), w.bias(name + "_b2", D) if biases else None))
    gated = {}
    for name in ("glu", "reglu", "geglu", "gegluT", "swiglu", "bil"):
        gated[name] = [w.lin(name + "_w1", F, D), w.lin(name + "_w3", F, D), w.lin(name + "_w2", D, F)]
    p1 = (w.gain("p1_g", D), w.bias("p1_b", D))
    p2 = (w.gain("p2_g", D), w.bias("p2_b", D))
    p3 = w.gain("p3_g", D)
    gb1, gb3 = w.bias("gegluT_b1", F), w.bias("gegluT_b3", F)
    x = (w.inputs(T, D) * 1.5).float()                 # wider than N(0, 1): saturate the activations

    h = x.to(n2.dtype)
    norms = [lambda v: layernorm(v, *n1, EPS), lambda v: rmsnorm(v, n2, EPS), None, None, None]
    for (act, w1, b1, w2, b2), norm in zip(classic, norms):
        f = norm(h) if norm else h
        h = h + linear(ACTS[act](linear(f, w1, b1)), w2, b2)

    def gated_ffn(name, act, v, b1=None, b3=None):
        w1, w3, w2 = gated[name]
        return linear(glu(v, w1, w3, act, b1, b3), w2)

    h = layernorm(h + gated_ffn("glu", "sigmoid", h), *p1, EPS)
    h = layernorm(h + gated_ffn("reglu", "relu", h), *p2, EPS)
    h = rmsnorm(h + gated_ffn("geglu", "gelu", h), p3, EPS)
    h = h + gated_ffn("gegluT", "gelu_tanh", h, gb1, gb3)
    h = h + gated_ffn("swiglu", "silu", h)
    h = h + gated_ffn("bil", "none", h)
    write_case(outdir, w.stored, x, h, causal=False)


if __name__ == "__main__":
    main(outdir_from_argv())
