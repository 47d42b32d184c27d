"""tests/torch/linformer.py — the reference for examples/linformer/linformer.tfx:
a Linformer encoder written from the paper (Wang et al. 2020, "Linformer:
Self-Attention with Linear Complexity", section 4) in float64, never from
tfxc's code.

  head_i = softmax(X W_i^Q (E_i X W_i^K)^T / sqrt(d)) (F_i X W_i^V)
  MHA(X) = Concat(head_1..head_h) W^O
with E, F : [k, n] (n = max_seq) projecting the n positions to k; a
sequence of T < n tokens uses the first T columns (E[:, :T]), as padding
the sequence to n with zero rows would. Layer (pre-norm):
Y = X + MHA(LN(X)), X' = Y + FFN(LN(Y)), FFN(X) = gelu(X W_1 + b_1) W_2 + b_2
(erf GELU). Input: token embeddings + learned positions. E and F per layer,
shared by the heads (the paper's headwise sharing). The script checks that
the first-T-columns rule equals padding to n with zeros.
100 tokens, n = 128, k = 32.

Usage: /usr/bin/python3 tests/torch/linformer.py OUTDIR
"""
import math

import torch

from attn_common import F64, as_f32, bias, gain, gelu_erf, layernorm, lin, make_gen
from common import outdir_from_argv, write_case

C = dict(dim=64, layers=2, heads=4, hidden=128, kproj=32, vocab=128, max_seq=128, eps=1e-5, T=100)


def linformer_mha(a, w, p, H):
    T, D = a.shape
    d = D // H
    n = C["max_seq"]
    q = (a @ w[p + "wq"].T).reshape(T, H, d)
    K, V = a @ w[p + "wk"].T, a @ w[p + "wv"].T
    Kp, Vp = w[p + "e"][:, :T] @ K, w[p + "f"][:, :T] @ V  # [k, D]
    pad = torch.zeros(n - T, D, dtype=F64)  # the same with the sequence padded to n
    assert (w[p + "e"] @ torch.cat([K, pad]) - Kp).abs().max().item() <= 1e-12 * max(1.0, Kp.abs().max().item())
    kh, vh = Kp.reshape(-1, H, d), Vp.reshape(-1, H, d)
    out = torch.empty(T, H, d, dtype=F64)
    for h in range(H):
        s = q[:, h] @ kh[:, h].T / math.sqrt(d)
        out[:, h] = torch.softmax(s, dim=-1) @ vh[:, h]
    return out.reshape(T, D) @ w[p + "wo"].T


def make_weights(gen):
    D, F, V, k, n = C["dim"], C["hidden"], C["vocab"], C["kproj"], C["max_seq"]
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64),
         "wpe": 0.1 * torch.randn(n, D, generator=gen, dtype=F64), "norm_g": gain(gen, D),
         "norm_b": bias(gen, D), "output": lin(gen, V, D)}
    for i in range(C["layers"]):
        p = "layers.%d." % i
        w[p + "ln1_g"], w[p + "ln1_b"] = gain(gen, D), bias(gen, D)
        for m in ("wq", "wk", "wv", "wo"):
            w[p + m] = lin(gen, D, D)
        w[p + "e"], w[p + "f"] = lin(gen, k, n), lin(gen, k, n)
        w[p + "ln2_g"], w[p + "ln2_b"] = gain(gen, D), bias(gen, D)
        w[p + "w1"], w[p + "b1"] = lin(gen, F, D), bias(gen, F)
        w[p + "w2"], w[p + "b2"] = lin(gen, D, F), bias(gen, D)
    return as_f32(w)


def forward(w, tokens):
    T, eps = tokens.shape[0], C["eps"]
    x = w["tok_embeddings"][tokens.long()] + w["wpe"][:T]
    for l in range(C["layers"]):
        p = "layers.%d." % l
        x = x + linformer_mha(layernorm(x, w[p + "ln1_g"], w[p + "ln1_b"], eps), w, p, C["heads"])
        g = layernorm(x, w[p + "ln2_g"], w[p + "ln2_b"], eps)
        x = x + gelu_erf(g @ w[p + "w1"].T + w[p + "b1"]) @ w[p + "w2"].T + w[p + "b2"]
    return layernorm(x, w["norm_g"], w["norm_b"], eps) @ w["output"].T


def main():
    gen = make_gen(6262)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (C["T"],), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=False)


if __name__ == "__main__":
    main()
