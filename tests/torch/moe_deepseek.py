"""tests/torch/moe_deepseek.py — the reference for
tests/torch/moe_deepseek.tfx, written from the math of TECHNIQUES.md
(DeepSeekMoE) in float64: embedding, pre-norm RMSNorm + causal attention
with half-split RoPE, RMSNorm + 16 fine-grained SwiGLU experts, top 4 by
logit (ties to the lower index) weighted by the softmax over all 16 logits
(not renormalized), plus the shared SwiGLU expert; untied classifier.

The seed is the first whose routing is at least 1e-3 away from any tie.

Usage: /usr/bin/python3 tests/torch/moe_deepseek.py OUTDIR
"""
from common import outdir_from_argv, write_case
from ffn_common import Weights, linear, mha, moe, rmsnorm

D, H, E, F, S, V, EPS = 32, 4, 16, 8, 16, 64, 1e-5


def build(seed, T):
    w = Weights(seed)
    embed, output = w.randn("embed", V, D), w.lin("output", V, D)
    an = w.gain("attention_norm", D)
    att = [w.lin(n, D, D) for n in ("wq", "wk", "wv", "wo")]
    fn = w.gain("ffn_norm", D)
    router = w.randn("router", E, D, scale=2.0 / D ** 0.5)
    w1, w2, w3 = w.experts("w1", E, F, D), w.experts("w2", E, D, F), w.experts("w3", E, F, D)
    shared = (w.lin("shared_w1", S, D), w.lin("shared_w2", D, S), w.lin("shared_w3", S, D))
    tokens = w.tokens(T, V)
    x = embed[tokens.long()]
    h = x + mha(rmsnorm(x, an, EPS), *att, H, H, causal=True, rope_cfg=(10000.0, "half"))
    y, margin, _ = moe(rmsnorm(h, fn, EPS), router, w1, w2, w3, 4, act="silu", gate="softmax", shared=shared)
    return w, tokens, linear(h + y, output), margin


def main(outdir, T=18):
    for seed in range(40, 90):
        w, tokens, logits, margin = build(seed, T)
        if margin > 1e-3:
            write_case(outdir, w.stored, tokens, logits, causal=True)
            return
    raise SystemExit("moe_deepseek.py: no seed without a near-tie in routing")


if __name__ == "__main__":
    main(outdir_from_argv())
