"""tests/torch/encdec.py — the reference for examples/encdec/encdec.tfx: an
encoder-decoder Transformer written from the math in float64. Encoder over a
fixed source [src_len, dim] (+ learned positions): post-norm layers of
bidirectional self-attention and a ReLU FFN. Decoder over the target tokens
(+ learned positions): post-norm layers of causal self-attention,
cross-attention (queries from the decoder, keys and values from the encoder's
output, no mask) and a ReLU FFN; classifier tied to the target embedding.

Usage: /usr/bin/python3 tests/torch/encdec.py OUTDIR
"""
import torch

from attn_common import F64, as_f32, attention, bias, causal_mask, gain, layernorm, lin, make_gen
from common import outdir_from_argv, write_case

C = dict(dim=64, heads=4, hidden=128, enc_layers=2, dec_layers=2, vocab=128, max_seq=32, src_len=12, eps=1e-5)


def make_weights(gen):
    D, F, V, S = C["dim"], C["hidden"], C["vocab"], C["src_len"]
    w = {"source": torch.randn(S, D, generator=gen, dtype=F64),
         "src_pos": 0.5 * torch.randn(S, D, generator=gen, dtype=F64),
         "tgt_emb": torch.randn(V, D, generator=gen, dtype=F64),
         "tgt_pos": 0.5 * torch.randn(C["max_seq"], D, generator=gen, dtype=F64)}

    def ffn_norms(p, n_norms):
        w[p + "w1"], w[p + "b1"] = lin(gen, F, D), bias(gen, F)
        w[p + "w2"], w[p + "b2"] = lin(gen, D, F), bias(gen, D)
        for k in range(1, n_norms + 1):
            w[p + "ln_%d_g" % k], w[p + "ln_%d_b" % k] = gain(gen, D), bias(gen, D)

    for i in range(C["enc_layers"]):
        p = "encoder.%d." % i
        for n in ("wq", "wk", "wv", "wo"):
            w[p + n] = lin(gen, D, D)
        ffn_norms(p, 2)
    for i in range(C["dec_layers"]):
        p = "decoder.%d." % i
        for n in ("sq", "sk", "sv", "so", "cq", "ck", "cv", "co"):
            w[p + n] = lin(gen, D, D)
        ffn_norms(p, 3)
    return as_f32(w)


def mha(x, mem, w, p, names, allowed):
    q, k, v = x @ w[p + names[0]].T, mem @ w[p + names[1]].T, mem @ w[p + names[2]].T
    return attention(q, k, v, C["heads"], C["heads"], allowed) @ w[p + names[3]].T


def ffn(x, w, p):
    return torch.relu(x @ w[p + "w1"].T + w[p + "b1"]) @ w[p + "w2"].T + w[p + "b2"]


def forward(w, tokens):
    T, S, eps = tokens.shape[0], C["src_len"], C["eps"]
    e = w["source"] + w["src_pos"]
    full = torch.ones(S, S, dtype=torch.bool)
    for i in range(C["enc_layers"]):
        p = "encoder.%d." % i
        h = layernorm(e + mha(e, e, w, p, ("wq", "wk", "wv", "wo"), full), w[p + "ln_1_g"], w[p + "ln_1_b"], eps)
        e = layernorm(h + ffn(h, w, p), w[p + "ln_2_g"], w[p + "ln_2_b"], eps)
    x = w["tgt_emb"][tokens.long()] + w["tgt_pos"][:T]
    cross = torch.ones(T, S, dtype=torch.bool)
    for i in range(C["dec_layers"]):
        p = "decoder.%d." % i
        h = layernorm(x + mha(x, x, w, p, ("sq", "sk", "sv", "so"), causal_mask(T)), w[p + "ln_1_g"],
                      w[p + "ln_1_b"], eps)
        c = layernorm(h + mha(h, e, w, p, ("cq", "ck", "cv", "co"), cross), w[p + "ln_2_g"], w[p + "ln_2_b"], eps)
        x = layernorm(c + ffn(c, w, p), w[p + "ln_3_g"], w[p + "ln_3_b"], eps)
    return x @ w["tgt_emb"].T


if __name__ == "__main__":
    gen = make_gen(3131)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (20,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)
