"""tests/torch/gpt2.py — the reference for examples/gpt2/gpt2.tfx: a tiny
GPT-2-style decoder written from the math of TECHNIQUES.md in float64:
token embedding + learned absolute positions, pre-norm LayerNorm (gain and
bias), multi-head causal attention with biases, GELU (tanh form) FFN with
biases, final LayerNorm, classifier tied to the token embedding.

Usage: /usr/bin/python3 tests/torch/gpt2.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, gelu_tanh, layernorm, linear, mha

C = dict(dim=64, layers=2, heads=4, hidden=256, vocab=96, max_pos=64, eps=1e-5)


def main(outdir, seed=2024, T=20):
    w = Weights(seed)
    D, F = C["dim"], C["hidden"]
    wte = w.randn("wte", C["vocab"], D, scale=0.5)
    wpe = w.randn("wpe", C["max_pos"], D, scale=0.5)
    layers = []
    for i in range(C["layers"]):
        p = "h.%d." % i
        layers.append(dict(
            ln1=(w.gain(p + "ln_1_g", D), w.bias(p + "ln_1_b", D)),
            att=[w.lin(p + n, D, D) for n in ("wq", "wk", "wv", "wo")],
            b=[w.bias(p + n, D) for n in ("bq", "bk", "bv", "bo")],
            ln2=(w.gain(p + "ln_2_g", D), w.bias(p + "ln_2_b", D)),
            fc=(w.lin(p + "fc_w", F, D), w.bias(p + "fc_b", F)),
            proj=(w.lin(p + "proj_w", D, F), w.bias(p + "proj_b", D))))
    lnf = (w.gain("ln_f_g", D), w.bias("ln_f_b", D))
    tokens = w.tokens(T, C["vocab"])

    x = wte[tokens.long()] + wpe[:T]                  # positions 0 .. T-1
    for L in layers:
        a = layernorm(x, *L["ln1"], C["eps"])
        h = x + mha(a, *L["att"], C["heads"], C["heads"], causal=True, b=L["b"])
        f = layernorm(h, *L["ln2"], C["eps"])
        x = h + linear(gelu_tanh(linear(f, *L["fc"])), *L["proj"])
    logits = linear(layernorm(x, *lnf, C["eps"]), wte)
    write_case(outdir, w.stored, tokens, logits, causal=True)


if __name__ == "__main__":
    main(outdir_from_argv())
