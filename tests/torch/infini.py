"""tests/torch/infini.py — the reference for examples/infini/infini.tfx: a
LLaMA-style decoder whose attention is Infini-attention, written from the
paper (Munkhdalai et al. 2024, "Leave No Context Behind: Efficient Infinite
Context Transformers with Infini-attention", section 2.1) in float64, never
from tfxc's code.

The sequence is cut into segments of N = 16 tokens. For segment s and head h
(σ = ELU + 1, Q, K rotated by RoPE at their absolute positions):
  A_dot = softmax(Q_s K_s^T / sqrt(d) + causal mask inside the segment) V_s
  A_mem = σ(Q_s) M_(s-1) / (σ(Q_s) z_(s-1))        (0 for s = 0: M_0 = 0, z_0 = 0)
  M_s = M_(s-1) + σ(K_s)^T V_s,  z_s = z_(s-1) + Σ_t σ(K_s[t])   (the linear update)
  A = sigmoid(β_h) A_mem + (1 - sigmoid(β_h)) A_dot
then the heads are concatenated and projected by W_O. Pre-norm RMSNorm blocks
with a SwiGLU FFN, a final RMSNorm and an untied classifier. 50 tokens: four
segments, the last one partial.

Usage: /usr/bin/python3 tests/torch/infini.py OUTDIR
"""
import math

import torch

from attn_common import F64, as_f32, gain, lin, make_gen, rmsnorm, rope
from common import outdir_from_argv, write_case

C = dict(dim=64, layers=2, heads=4, head_dim=16, hidden=128, vocab=128, eps=1e-5, segment=16, T=50)


def sigma(x):
    return torch.nn.functional.elu(x) + 1.0


def infini_attention(q, k, v, beta):
    """q, k, v [T, H, d], beta [H] -> [T, H, d], segment by segment"""
    T, H, d = q.shape
    N = C["segment"]
    out = torch.empty(T, H, v.shape[2], dtype=F64)
    for h in range(H):
        M = torch.zeros(d, v.shape[2], dtype=F64)
        z = torch.zeros(d, dtype=F64)
        gate = torch.sigmoid(beta[h])
        for s0 in range(0, T, N):
            Q, K, V = q[s0:s0 + N, h], k[s0:s0 + N, h], v[s0:s0 + N, h]
            L = Q.shape[0]
            scores = Q @ K.T / math.sqrt(d)
            mask = torch.arange(L)[None, :] <= torch.arange(L)[:, None]
            scores = scores.masked_fill(~mask, float("-inf"))
            a_dot = torch.softmax(scores, dim=-1) @ V
            if s0 == 0:
                a_mem = torch.zeros_like(a_dot)
            else:
                a_mem = (sigma(Q) @ M) / (sigma(Q) @ z)[:, None]
            out[s0:s0 + L, h] = gate * a_mem + (1.0 - gate) * a_dot
            M = M + sigma(K).T @ V
            z = z + sigma(K).sum(0)
    return out


def make_weights(gen):
    D, H, d, F, V = C["dim"], C["heads"], C["head_dim"], C["hidden"], C["vocab"]
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "norm": gain(gen, D),
         "output": lin(gen, V, D)}
    for i in range(C["layers"]):
        p = "layers.%d." % i
        w[p + "attention_norm"], w[p + "ffn_norm"] = gain(gen, D), gain(gen, D)
        for n in ("wq", "wk", "wv"):
            w[p + n] = lin(gen, H * d, D)
        w[p + "wo"] = lin(gen, D, H * d)
        w[p + "beta"] = torch.randn(H, generator=gen, dtype=F64)
        w[p + "w1"], w[p + "w3"], w[p + "w2"] = lin(gen, F, D), lin(gen, F, D), lin(gen, D, F)
    return as_f32(w)


def forward(w, tokens):
    T, H, d, eps = tokens.shape[0], C["heads"], C["head_dim"], C["eps"]
    pos = torch.arange(T)
    x = w["tok_embeddings"][tokens.long()]
    for l in range(C["layers"]):
        p = "layers.%d." % l
        a = rmsnorm(x, w[p + "attention_norm"], eps)
        q = rope((a @ w[p + "wq"].T).reshape(T, H, d), pos, 10000.0, "interleaved")
        k = rope((a @ w[p + "wk"].T).reshape(T, H, d), pos, 10000.0, "interleaved")
        v = (a @ w[p + "wv"].T).reshape(T, H, d)
        x = x + infini_attention(q, k, v, w[p + "beta"]).reshape(T, H * d) @ w[p + "wo"].T
        f = rmsnorm(x, w[p + "ffn_norm"], eps)
        g = f @ w[p + "w1"].T
        x = x + (g * torch.sigmoid(g) * (f @ w[p + "w3"].T)) @ w[p + "w2"].T
    return rmsnorm(x, w["norm"], eps) @ w["output"].T


def main():
    gen = make_gen(5151)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (C["T"],), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)


if __name__ == "__main__":
    main()
