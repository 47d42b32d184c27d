"""tests/torch/yoco.py — the reference for examples/yoco/yoco.tfx: a YOCO
decoder-decoder written from the paper (Sun et al. 2024, "You Only Cache
Once: Decoder-Decoder Architectures for Language Models", section 2) in
float64, never from tfxc's code.

Self-decoder (layers 0 .. L/2-1), retention in place of the paper's gated
retention (RetNet's fixed gamma_h = 1 - 2^(-5-h), the retention of
retnet.py, parallel form):
  Y^l = (swish(X^l W_G) ⊙ GroupNorm_h(Retention(RMSNorm(X^l)))) W_O + X^l
  X^(l+1) = SwiGLU(RMSNorm(Y^l)) + Y^l, SwiGLU(X) = (swish(X W_1) ⊙ X W_3) W_2
Global KV, computed once from the self-decoder's output (section 2.2):
  K̂ = rope(RMSNorm(X^(L/2)) W_K), V̂ = RMSNorm(X^(L/2)) W_V   (kv_heads heads)
Cross-decoder (layers L/2 .. L-1), each with only its own query projection:
  Q^l = rope(RMSNorm(X^l) W_Q^l)
  Y^l = softmax(Q^l K̂^T / sqrt(d) + causal mask) V̂ W_O^l + X^l   (query head h
        reads key/value head h // (H/G))
  X^(l+1) = SwiGLU(RMSNorm(Y^l)) + Y^l
Output: RMSNorm(X^L) W_out. The script also checks the cross-decoder's
incremental form: token t attending the cache of tokens 0..t gives the same
rows as the masked whole-sequence form. 70 tokens: tfxc's prefill runs its
chunkwise retention over two chunks.

Usage: /usr/bin/python3 tests/torch/yoco.py OUTDIR
"""
import torch

from attn_common import F64, as_f32, attention, bias, causal_mask, gain, lin, make_gen, rmsnorm, rope
from common import outdir_from_argv, write_case
from retnet import groupnorm, retention_parallel

C = dict(dim=64, self_layers=2, cross_layers=2, heads=4, head_dim=16, v_dim=32, kv_heads=2, hidden=128,
         vocab=128, eps=1e-5, T=70)


def swish(x):
    return x * torch.sigmoid(x)


def swiglu(x, w, p):
    return (swish(x @ w[p + "w1"].T) * (x @ w[p + "w3"].T)) @ w[p + "w2"].T


def make_weights(gen):
    D, H, d, dv, G, F, V = C["dim"], C["heads"], C["head_dim"], C["v_dim"], C["kv_heads"], C["hidden"], C["vocab"]
    w = {"tok_embeddings": torch.randn(V, D, generator=gen, dtype=F64), "kv_norm": gain(gen, D),
         "global_wk": lin(gen, G * d, D), "global_wv": lin(gen, G * d, D), "norm": gain(gen, D),
         "output": lin(gen, V, D)}
    ffn = lambda p: w.update({p + "ln2": gain(gen, D), p + "w1": lin(gen, F, D), p + "w3": lin(gen, F, D),
                              p + "w2": lin(gen, D, F)})
    for i in range(C["self_layers"]):
        p = "self_decoder.%d." % i
        w[p + "ln1"] = gain(gen, D)
        w[p + "wq"], w[p + "wk"] = lin(gen, H * d, D), lin(gen, H * d, D)
        w[p + "wv"], w[p + "wg"] = lin(gen, H * dv, D), lin(gen, H * dv, D)
        w[p + "wo"] = lin(gen, D, H * dv)
        w[p + "gn_g"], w[p + "gn_b"] = gain(gen, H * dv), bias(gen, H * dv)
        ffn(p)
    for i in range(C["cross_layers"]):
        p = "cross_decoder.%d." % i
        w[p + "ln1"] = gain(gen, D)
        w[p + "wq"], w[p + "wo"] = lin(gen, H * d, D), lin(gen, D, H * d)
        ffn(p)
    return as_f32(w)


def forward(w, tokens):
    T, H, d, dv, G, eps = tokens.shape[0], C["heads"], C["head_dim"], C["v_dim"], C["kv_heads"], C["eps"]
    pos = torch.arange(T)
    x = w["tok_embeddings"][tokens.long()]
    for l in range(C["self_layers"]):
        p = "self_decoder.%d." % l
        a = rmsnorm(x, w[p + "ln1"], eps)
        q = rope((a @ w[p + "wq"].T).reshape(T, H, d), pos, 10000.0, "interleaved")
        k = rope((a @ w[p + "wk"].T).reshape(T, H, d), pos, 10000.0, "interleaved")
        v = (a @ w[p + "wv"].T).reshape(T, H, dv)
        r = groupnorm(retention_parallel(q, k, v, H).reshape(T, H * dv), H, w[p + "gn_g"], w[p + "gn_b"], eps)
        y = x + (swish(a @ w[p + "wg"].T) * r) @ w[p + "wo"].T
        x = y + swiglu(rmsnorm(y, w[p + "ln2"], eps), w, p)
    c = rmsnorm(x, w["kv_norm"], eps)  # the one global cache
    K = rope((c @ w["global_wk"].T).reshape(T, G, d), pos, 10000.0, "interleaved").reshape(T, G * d)
    V = c @ w["global_wv"].T
    for l in range(C["cross_layers"]):
        p = "cross_decoder.%d." % l
        q = rope((rmsnorm(x, w[p + "ln1"], eps) @ w[p + "wq"].T).reshape(T, H, d), pos, 10000.0,
                 "interleaved").reshape(T, H * d)
        o = attention(q, K, V, H, G, causal_mask(T))
        for t in (0, T // 2, T - 1):  # incremental: row t against the cache of tokens 0..t
            inc = attention(q[t:t + 1], K[:t + 1], V[:t + 1], H, G, torch.ones(1, t + 1, dtype=torch.bool))
            assert (inc - o[t:t + 1]).abs().max().item() <= 1e-9 * max(1.0, o.abs().max().item())
        y = x + o @ w[p + "wo"].T
        x = y + swiglu(rmsnorm(y, w[p + "ln2"], eps), w, p)
    return rmsnorm(x, w["norm"], eps) @ w["output"].T


def main():
    gen = make_gen(5151)
    w = make_weights(gen)
    tokens = torch.randint(0, C["vocab"], (C["T"],), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens), causal=True)


if __name__ == "__main__":
    main()
