"""tests/torch/transformer.py — the reference for
examples/transformer/transformer.tfx: a tiny decoder-only stack in the style
of "Attention Is All You Need", written from the math in float64: token
embedding + the sinusoidal table, post-norm layers LayerNorm(x + causal
attention), LayerNorm(h + ReLU FFN with biases), classifier tied to the
embedding.

Usage: /usr/bin/python3 tests/torch/transformer.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, layernorm, linear, mha, relu, sinusoidal

C = dict(dim=48, layers=2, heads=4, hidden=96, vocab=80, eps=1e-6)


def main(outdir, seed=5, T=21):
    w = Weights(seed)
    D, F = C["dim"], C["hidden"]
    embed = w.randn("embed", C["vocab"], D, scale=0.5)
    layers = []
    for i in range(C["layers"]):
        p = "layers.%d." % i
        layers.append(dict(
            att=[w.lin(p + n, D, D) for n in ("wq", "wk", "wv", "wo")],
            ln1=(w.gain(p + "ln_1_g", D), w.bias(p + "ln_1_b", D)),
            ffn1=(w.lin(p + "w1", F, D), w.bias(p + "b1", F)),
            ffn2=(w.lin(p + "w2", D, F), w.bias(p + "b2", D)),
            ln2=(w.gain(p + "ln_2_g", D), w.bias(p + "ln_2_b", D))))
    tokens = w.tokens(T, C["vocab"])

    x = embed[tokens.long()] + sinusoidal(T, D, 10000.0)
    for L in layers:
        h = layernorm(x + mha(x, *L["att"], C["heads"], C["heads"], causal=True), *L["ln1"], C["eps"])
        x = layernorm(h + linear(relu(linear(h, *L["ffn1"])), *L["ffn2"]), *L["ln2"], C["eps"])
    write_case(outdir, w.stored, tokens, linear(x, embed), causal=True)


if __name__ == "__main__":
    main(outdir_from_argv())
