"""tests/torch/mixtral.py — the reference for examples/mixtral/mixtral.tfx:
a tiny Mixtral-style decoder written from the math of TECHNIQUES.md in
float64: pre-norm RMSNorm, grouped-query causal attention with half-split
RoPE (theta 1e6), and a sparse MoE FFN: router logits, the top 2 of 8
experts (ties to the lower index), weights = softmax over the 2 chosen
logits, output = the weighted sum of the chosen experts' SwiGLU FFNs. Final
RMSNorm, untied classifier.

The seed is the first from 31 whose every routing decision is at least 1e-3
away from a tie (so float32 rounding cannot flip a choice).

Usage: /usr/bin/python3 tests/torch/mixtral.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, linear, mha, moe, rmsnorm

C = dict(dim=64, layers=2, heads=4, kv_heads=2, experts=8, top_k=2, hidden=48, vocab=128, eps=1e-5,
         theta=1e6)


def build(seed, T):
    w = Weights(seed)
    D, E, F = C["dim"], C["experts"], C["hidden"]
    Gd = D // C["heads"] * C["kv_heads"]
    emb = w.randn("tok_embeddings", C["vocab"], D)
    layers = []
    for i in range(C["layers"]):
        p = "layers.%d." % i
        layers.append(dict(
            an=w.gain(p + "attention_norm", D),
            att=[w.lin(p + "wq", D, D), w.lin(p + "wk", Gd, D), w.lin(p + "wv", Gd, D), w.lin(p + "wo", D, D)],
            fn=w.gain(p + "ffn_norm", D),
            gate=w.randn(p + "gate", E, D, scale=2.0 / D ** 0.5),
            w1=w.experts(p + "w1", E, F, D), w2=w.experts(p + "w2", E, D, F), w3=w.experts(p + "w3", E, F, D)))
    norm, out = w.gain("norm", D), w.lin("output", C["vocab"], D)
    tokens = w.tokens(T, C["vocab"])

    x = emb[tokens.long()]
    margin = float("inf")
    for L in layers:
        a = rmsnorm(x, L["an"], C["eps"])
        h = x + mha(a, *L["att"], C["heads"], C["kv_heads"], causal=True, rope_cfg=(C["theta"], "half"))
        f = rmsnorm(h, L["fn"], C["eps"])
        y, m, _ = moe(f, L["gate"], L["w1"], L["w2"], L["w3"], C["top_k"], act="silu", gate="softmax_topk")
        margin = min(margin, m)
        x = h + y
    return w, tokens, linear(rmsnorm(x, norm, C["eps"]), out), margin


def main(outdir, T=20):
    for seed in range(31, 81):
        w, tokens, logits, margin = build(seed, T)
        if margin > 1e-3:
            write_case(outdir, w.stored, tokens, logits, causal=True)
            return
    raise SystemExit("mixtral.py: no seed without a near-tie in routing")


if __name__ == "__main__":
    main(outdir_from_argv())
