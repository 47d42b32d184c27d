"""tests/torch/bert.py — the reference for examples/bert/bert.tfx: a tiny
BERT-style encoder written from the math of TECHNIQUES.md in float64: word
embedding + learned absolute positions + the segment-0 token-type row,
LayerNorm, then post-norm layers y = LayerNorm(x + f(x)) with bidirectional
multi-head attention (biases) and a GELU (erf form) FFN with biases. The
output is the last hidden states; an encoder, so no decode checks.

Usage: /usr/bin/python3 tests/torch/bert.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, gelu_erf, layernorm, linear, mha

C = dict(dim=64, layers=2, heads=4, hidden=256, vocab=100, max_pos=40, eps=1e-12)


def main(outdir, seed=77, T=23):
    w = Weights(seed)
    D, F = C["dim"], C["hidden"]
    word = w.randn("word_emb", C["vocab"], D, scale=0.5)
    pos = w.randn("pos_emb", C["max_pos"], D, scale=0.5)
    typ = w.randn("type_emb", D, scale=0.5)
    eln = (w.gain("emb_ln_g", D), w.bias("emb_ln_b", D))
    layers = []
    for i in range(C["layers"]):
        p = "layers.%d." % i
        layers.append(dict(
            att=[w.lin(p + n, D, D) for n in ("wq", "wk", "wv", "wo")],
            b=[w.bias(p + n, D) for n in ("bq", "bk", "bv", "bo")],
            ln1=(w.gain(p + "ln_1_g", D), w.bias(p + "ln_1_b", D)),
            ffn1=(w.lin(p + "w1", F, D), w.bias(p + "b1", F)),
            ffn2=(w.lin(p + "w2", D, F), w.bias(p + "b2", D)),
            ln2=(w.gain(p + "ln_2_g", D), w.bias(p + "ln_2_b", D))))
    tokens = w.tokens(T, C["vocab"])

    x = layernorm(word[tokens.long()] + pos[:T] + typ, *eln, C["eps"])
    for L in layers:
        h = layernorm(x + mha(x, *L["att"], C["heads"], C["heads"], causal=False, b=L["b"]), *L["ln1"], C["eps"])
        x = layernorm(h + linear(gelu_erf(linear(h, *L["ffn1"])), *L["ffn2"]), *L["ln2"], C["eps"])
    write_case(outdir, w.stored, tokens, x, causal=False)


if __name__ == "__main__":
    main(outdir_from_argv())
