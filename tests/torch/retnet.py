"""tests/torch/retnet.py — the reference for examples/retnet/retnet.tfx: a
RetNet decoder written from the paper (Sun et al. 2023, "Retentive Network:
A Successor to Transformer for Large Language Models", sections 2.1-2.3) in
float64, never from tfxc's code.

Multi-scale retention, head h with gamma_h = 1 - 2^(-5-h):
  Q = (X W_Q) ⊙ Θ, K = (X W_K) ⊙ Θ̄ (Θ_n = e^{i n θ}: the rotation of pairs
  (2i, 2i+1) by n θ_i, θ_i = 10000^(-2i/d)), V = X W_V
  parallel:   Retention(X) = (Q K^T / sqrt(d) ⊙ D) V, D_nm = gamma^(n-m) (n >= m), else 0
  recurrent:  S_n = gamma S_(n-1) + K_n^T V_n, Retention(X_n) = Q_n S_n / sqrt(d)
  chunkwise:  chunks of B rows: R_i = K_[i]^T (V_[i] ⊙ ζ) + gamma^B R_(i-1),
              ζ_j = gamma^(B-1-j); out = (Q_[i] K_[i]^T ⊙ D) V_[i] + (Q_[i] R_(i-1)) ⊙ ξ, ξ_j = gamma^(j+1)
  Y = GroupNorm_heads(Concat(head_1..head_h)) (per head, biased variance, gain and bias)
  MSR(X) = (swish(X W_G) ⊙ Y) W_O
Layer: Y = MSR(LN(X)) + X, X' = FFN(LN(Y)) + Y with FFN(X) = gelu(X W_1 + b_1) W_2 + b_2
(erf GELU). The expected output is the parallel form; the script checks that
the recurrent and the chunkwise forms (B = 16) give the same retention.
150 tokens: tfxc's prefill runs its chunkwise form over three chunks of 64.

Usage: /usr/bin/python3 tests/torch/retnet.py OUTDIR
"""
import math

import torch

from attn_common import F64, as_f32, bias, gain, gelu_erf, layernorm, lin, make_gen, rope
from common import outdir_from_argv, write_case

C = dict(dim=64, layers=2, heads=4, head_dim=16, v_dim=32, hidden=128, vocab=128, eps=1e-5, T=150)


def gammas(H):
    return torch.tensor([1.0 - 2.0 ** (-5 - h) for h in range(H)], dtype=F64)


def retention_parallel(q, k, v, H, gam=None):
    """q, k [T, H, d], v [T, H, dv] -> [T, H, dv]"""
    T, d = q.shape[0], q.shape[2]
    n = torch.arange(T, dtype=F64)[:, None]
    m = torch.arange(T, dtype=F64)[None, :]
    out = torch.empty(T, H, v.shape[2], dtype=F64)
    for h, g in enumerate((gammas(H) if gam is None else gam).tolist()):
        D = torch.where(n >= m, g ** (n - m), torch.zeros((), dtype=F64))
        out[:, h] = ((q[:, h] @ k[:, h].T) / math.sqrt(d) * D) @ v[:, h]
    return out


def retention_recurrent(q, k, v, H, gam=None):
    T, d, dv = q.shape[0], q.shape[2], v.shape[2]
    out = torch.empty(T, H, dv, dtype=F64)
    for h, g in enumerate((gammas(H) if gam is None else gam).tolist()):
        S = torch.zeros(d, dv, dtype=F64)
        for t in range(T):
            S = g * S + k[t, h][:, None] * v[t, h][None, :]
            out[t, h] = q[t, h] @ S / math.sqrt(d)
    return out


def retention_chunkwise(q, k, v, H, B, gam=None):
    T, d, dv = q.shape[0], q.shape[2], v.shape[2]
    out = torch.empty(T, H, dv, dtype=F64)
    for h, g in enumerate((gammas(H) if gam is None else gam).tolist()):
        R = torch.zeros(d, dv, dtype=F64)
        for c0 in range(0, T, B):
            L = min(B, T - c0)
            Q, K, V = q[c0:c0 + L, h], k[c0:c0 + L, h], v[c0:c0 + L, h]
            j = torch.arange(L, dtype=F64)
            D = torch.where(j[:, None] >= j[None, :], g ** (j[:, None] - j[None, :]), torch.zeros((), dtype=F64))
            xi = (g ** (j + 1))[:, None]
            zeta = (g ** (L - 1 - j))[:, None]
            out[c0:c0 + L, h] = ((Q @ K.T) * D) @ V / math.sqrt(d) + (Q @ R) * xi / math.sqrt(d)
            R = K.T @ (V * zeta) + g ** L * R
    return out


def groupnorm(x, G, g, b, eps):
    T, Cn = x.shape
    y = x.reshape(T, G, Cn // G)
    mu = y.mean(-1, keepdim=True)
    var = ((y - mu) ** 2).mean(-1, keepdim=True)
    return ((y - mu) / torch.sqrt(var + eps)).reshape(T, Cn) * g + b


def make_weights(gen):
    D, H, d, dv, F, V = C["dim"], C["heads"], C["head_dim"], C["v_dim"], C["hidden"], C["vocab"]
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "norm_g": gain(gen, D),
         "norm_b": bias(gen, D), "output": lin(gen, V, D)}
    for i in range(C["layers"]):
        p = "layers.%d." % i
        w[p + "ln1_g"], w[p + "ln1_b"] = gain(gen, D), bias(gen, D)
        w[p + "wq"], w[p + "wk"] = lin(gen, H * d, D), lin(gen, H * d, D)
        w[p + "wv"], w[p + "wg"] = lin(gen, H * dv, D), lin(gen, H * dv, D)
        w[p + "wo"] = lin(gen, D, H * dv)
        w[p + "gn_g"], w[p + "gn_b"] = gain(gen, H * dv), bias(gen, H * dv)
        w[p + "ln2_g"], w[p + "ln2_b"] = gain(gen, D), bias(gen, D)
        w[p + "w1"], w[p + "b1"] = lin(gen, F, D), bias(gen, F)
        w[p + "w2"], w[p + "b2"] = lin(gen, D, F), bias(gen, D)
    return as_f32(w)


def forward(w, tokens):
    T, H, d, dv, eps = tokens.shape[0], C["heads"], C["head_dim"], C["v_dim"], C["eps"]
    pos = torch.arange(T)
    x = w["tok_embeddings"][tokens.long()]
    for l in range(C["layers"]):
        p = "layers.%d." % l
        a = layernorm(x, w[p + "ln1_g"], w[p + "ln1_b"], eps)
        q = rope((a @ w[p + "wq"].T).reshape(T, H, d), pos, 10000.0, "interleaved")
        k = rope((a @ w[p + "wk"].T).reshape(T, H, d), pos, 10000.0, "interleaved")
        v = (a @ w[p + "wv"].T).reshape(T, H, dv)
        gam = w.get(p + "gamma")  # retention(..., gamma = g): the decays given (retnet_gamma.py)
        r = retention_parallel(q, k, v, H, gam)
        for other in (retention_recurrent(q, k, v, H, gam), retention_chunkwise(q, k, v, H, 16, gam)):
            err = (other - r).abs().max().item()
            assert err <= 1e-9 * max(1.0, r.abs().max().item()), "retention forms differ by %g" % err
        y = groupnorm(r.reshape(T, H * dv), H, w[p + "gn_g"], w[p + "gn_b"], eps)
        gate = a @ w[p + "wg"].T
        x = x + (gate * torch.sigmoid(gate) * y) @ w[p + "wo"].T
        f = layernorm(x, w[p + "ln2_g"], w[p + "ln2_b"], eps)
        x = x + gelu_erf(f @ w[p + "w1"].T + w[p + "b1"]) @ w[p + "w2"].T + w[p + "b2"]
    return layernorm(x, w["norm_g"], w["norm_b"], eps) @ w["output"].T


def main():
    gen = make_gen(4242)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (C["T"],), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)


if __name__ == "__main__":
    main()
