"""tests/torch/encoder_common.py — the RoBERTa-style encoder shared by the
sparse-attention references (longformer.py, bigbird.py): word + learned
position embeddings, LayerNorm, post-norm layers y = norm(x + f(x)) of
biased multi-head attention (with the caller's [T, T] mask, or a list of one
mask per layer) and a GELU FFN of 4 x dim, then a classifier tied to the
word embedding. float64.
"""
import torch

from attn_common import F64, as_f32, attention, bias, gain, layernorm, lin


def make_weights(gen, c):
    D, V, Fh = c["dim"], c["vocab"], 4 * c["dim"]
    w = {"word_emb": torch.randn(V, D, generator=gen, dtype=F64),
         "pos_emb": 0.5 * torch.randn(c["max_seq"], D, generator=gen, dtype=F64),
         "emb_ln_g": gain(gen, D), "emb_ln_b": bias(gen, D)}
    for i in range(c["layers"]):
        p = "layers.%d." % i
        for n in ("q", "k", "v", "o"):
            w[p + "w" + n], w[p + "b" + n] = lin(gen, D, D), bias(gen, D)
        w[p + "ln_1_g"], w[p + "ln_1_b"] = gain(gen, D), bias(gen, D)
        w[p + "w1"], w[p + "b1"] = lin(gen, Fh, D), bias(gen, Fh)
        w[p + "w2"], w[p + "b2"] = lin(gen, D, Fh), bias(gen, D)
        w[p + "ln_2_g"], w[p + "ln_2_b"] = gain(gen, D), bias(gen, D)
    return as_f32(w)


def forward(w, tokens, c, allowed, act):
    T, H, eps = tokens.shape[0], c["heads"], c["eps"]
    x = w["word_emb"][tokens.long()] + w["pos_emb"][:T]
    x = layernorm(x, w["emb_ln_g"], w["emb_ln_b"], eps)
    for l in range(c["layers"]):
        p = "layers.%d." % l
        q, k, v = (x @ w[p + "w" + n].T + w[p + "b" + n] for n in ("q", "k", "v"))
        mask = allowed[l] if isinstance(allowed, (list, tuple)) else allowed
        a = attention(q, k, v, H, H, mask) @ w[p + "wo"].T + w[p + "bo"]
        h = layernorm(x + a, w[p + "ln_1_g"], w[p + "ln_1_b"], eps)
        f = act(h @ w[p + "w1"].T + w[p + "b1"]) @ w[p + "w2"].T + w[p + "b2"]
        x = layernorm(h + f, w[p + "ln_2_g"], w[p + "ln_2_b"], eps)
    return x @ w["word_emb"].T
