"""tests/torch/cross_trows.py — the reference for tests/torch/cross_trows.tfx:
a causal decoder cross-attending the output of a causal encoder over the same
tokens (a memory of T rows, attended with mask = causal: its keys and values
are cached like self-attention's), written from the math in float64.

  x   = embedding(tokens)
  e   = x + causal_attention(rmsnorm(x)) with interleaved RoPE    (encoder)
  e   = e + relu(rmsnorm(e) W1^T) W2^T
  m   = rmsnorm(e) Wm^T                                           (memory [T, 40])
  decoder layer 0 (cross_rope):
    h = x + causal self-attention(rmsnorm(x)) with RoPE
    x = h + cross(rmsnorm(h), m): q from h, k and v from m (GQA 4/2), RoPE on q
        and k at their own positions, query i sees memory rows j <= i
  decoder layer 1 (cross_alibi):
    the same with the cross-attention biased by ALiBi (-m_h (i - j), H = 4)
    and sparse = sliding(window = 6): j > i - 6
  classifier: rmsnorm(x) Wout^T

Usage: /usr/bin/python3 tests/torch/cross_trows.py OUTDIR
"""
import torch

from attn_common import F64, alibi_slopes, as_f32, attention, causal_mask, gain, lin, make_gen, rmsnorm, rope
from common import outdir_from_argv, write_case

C = dict(dim=32, mem=40, heads=4, kv_heads=2, hidden=48, vocab=64, eps=1e-5, theta=10000.0)


def make_weights(gen):
    D, M, H, G, F, V = C["dim"], C["mem"], C["heads"], C["kv_heads"], C["hidden"], C["vocab"]
    d = D // H
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "norm": gain(gen, D), "output": lin(gen, V, D),
         "enc.n1": gain(gen, D), "enc.n2": gain(gen, D), "enc.n3": gain(gen, D),
         "enc.wq": lin(gen, D, D), "enc.wk": lin(gen, D, D), "enc.wv": lin(gen, D, D), "enc.wo": lin(gen, D, D),
         "enc.w1": lin(gen, F, D), "enc.w2": lin(gen, D, F), "enc.wm": lin(gen, M, D)}
    for l in range(2):
        p = "dec.%d." % l
        w[p + "n1"], w[p + "n2"] = gain(gen, D), gain(gen, D)
        w[p + "sq"], w[p + "sk"], w[p + "sv"], w[p + "so"] = (lin(gen, D, D) for _ in range(4))
        w[p + "cq"], w[p + "ck"], w[p + "cv"] = lin(gen, H * d, D), lin(gen, G * d, M), lin(gen, G * d, M)
        w[p + "co"] = lin(gen, D, H * d)
    return as_f32(w)


def heads_rope(t, n, pos):
    T = t.shape[0]
    return rope(t.reshape(T, n, -1), pos, C["theta"], "interleaved").reshape(T, -1)


def forward(w, tokens):
    T, H, G, eps = tokens.shape[0], C["heads"], C["kv_heads"], C["eps"]
    pos = torch.arange(T)
    causal = causal_mask(T)
    x = w["tok_embeddings"][tokens.long()]
    a = rmsnorm(x, w["enc.n1"], eps)
    q, k, v = heads_rope(a @ w["enc.wq"].T, H, pos), heads_rope(a @ w["enc.wk"].T, H, pos), a @ w["enc.wv"].T
    e = x + attention(q, k, v, H, H, causal) @ w["enc.wo"].T
    e = e + torch.relu(rmsnorm(e, w["enc.n2"], eps) @ w["enc.w1"].T) @ w["enc.w2"].T
    m = rmsnorm(e, w["enc.n3"], eps) @ w["enc.wm"].T
    i, j = torch.arange(T, dtype=F64)[:, None], torch.arange(T, dtype=F64)[None, :]
    for l in range(2):
        p = "dec.%d." % l
        a = rmsnorm(x, w[p + "n1"], eps)
        q, k, v = heads_rope(a @ w[p + "sq"].T, H, pos), heads_rope(a @ w[p + "sk"].T, H, pos), a @ w[p + "sv"].T
        h = x + attention(q, k, v, H, H, causal) @ w[p + "so"].T
        b = rmsnorm(h, w[p + "n2"], eps)
        q, k, v = b @ w[p + "cq"].T, m @ w[p + "ck"].T, m @ w[p + "cv"].T
        if l == 0:
            o = attention(heads_rope(q, H, pos), heads_rope(k, G, pos), v, H, G, causal)
        else:
            slopes = torch.tensor(alibi_slopes(H), dtype=F64)
            o = attention(q, k, v, H, G, causal & (i - j < 6), -slopes[:, None, None] * (i - j)[None])
        x = h + o @ w[p + "co"].T
    return rmsnorm(x, w["norm"], eps) @ w["output"].T


if __name__ == "__main__":
    gen = make_gen(4343)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (20,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)
