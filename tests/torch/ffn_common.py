"""tests/torch/ffn_common.py — building blocks of the FFN, position and
mixture-of-experts reference scripts (ffn_glu.py, gpt2.py, bert.py,
transformer.py, mixtral.py, moe_*.py), written from the math of
TECHNIQUES.md and the papers, never from tfxc's code. Everything is float64;
weights are rounded to float32 first (the file holds f32), so the reference
computes with exactly the values tfxc reads. Norms, GELU, RoPE and attention
come from attn_common.py.
"""
import math

import torch

from attn_common import (F64, attention, causal_mask, gelu_erf, gelu_tanh, layernorm, rmsnorm,  # noqa: F401
                         rope)


def sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def silu(x):
    return x * sigmoid(x)


def relu(x):
    return torch.where(x > 0, x, torch.zeros_like(x))


ACTS = {"sigmoid": sigmoid, "relu": relu, "gelu": gelu_erf, "gelu_tanh": gelu_tanh, "silu": silu,
        "none": lambda x: x}


def linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def glu(x, w1, w3, act, b1=None, b3=None):
    """Shazeer's gated unit: act(x W1^T + b1) * (x W3^T + b3); act sigmoid (GLU),
    relu (ReGLU), gelu (GeGLU), silu (SwiGLU), none (bilinear)."""
    return ACTS[act](linear(x, w1, b1)) * linear(x, w3, b3)


def sinusoidal(T, D, base=10000.0, pos0=0):
    """PE[p, 2i] = sin(p / base^(2i/D)), PE[p, 2i+1] = cos(p / base^(2i/D)) for
    p = pos0 .. pos0 + T - 1 (the original Transformer's table)."""
    p = torch.arange(pos0, pos0 + T, dtype=F64)[:, None]
    c = torch.arange(D)
    ang = p / base ** ((2 * (c // 2)).to(F64) / D)[None, :]
    return torch.where((c % 2 == 0)[None, :], torch.sin(ang), torch.cos(ang))


def heads_rope(x, heads, theta, style, rotary_dim=None):
    """RoPE on each head of x [T, heads*d] (positions 0..T-1), first
    rotary_dim dims of each head."""
    T = x.shape[0]
    d = x.shape[1] // heads
    r = rotary_dim or d
    xh = x.reshape(T, heads, d).clone()
    xh[:, :, :r] = rope(xh[:, :, :r], torch.arange(T), theta, style)
    return xh.reshape(T, heads * d)


def mha(x, wq, wk, wv, wo, heads, kv_heads, causal, b=None, rope_cfg=None):
    """Multi-head attention with its projections (biases b = (bq, bk, bv, bo)
    or None), optional RoPE (theta, style) on q and k, causal or bidirectional."""
    bq, bk, bv, bo = b if b is not None else (None,) * 4
    q, k, v = linear(x, wq, bq), linear(x, wk, bk), linear(x, wv, bv)
    if rope_cfg is not None:
        q = heads_rope(q, heads, *rope_cfg)
        k = heads_rope(k, kv_heads, *rope_cfg)
    T = x.shape[0]
    allowed = causal_mask(T) if causal else torch.ones(T, T, dtype=torch.bool)
    return linear(attention(q, k, v, heads, kv_heads, allowed), wo, bo)


def moe(x, router, w1, w2, w3, top_k, act="silu", gate="softmax_topk", capacity=None, shared=None):
    """A sparse mixture of experts. Returns (y, margin, dropped).

    logits = x router^T [T, E]; per token the top_k experts by logit, in
    decreasing order, ties to the lowest index (a stable sort); weights:
    softmax over the chosen logits (gate softmax_topk, Mixtral) or the
    softmax over all E logits at the chosen experts (gate softmax, Switch /
    DeepSeek, not renormalized). capacity C: each expert accepts at most
    ceil(C * T * k / E) tokens of this call, in token order; a dropped
    (token, expert) pair contributes nothing. Expert e: act(x w1[e]^T) *
    (x w3[e]^T) (or without w3: act(x w1[e]^T)), then w2[e]. shared =
    (s1, s2, s3 or None): an always-on FFN of the same form added to the
    output. margin: the smallest gap between a token's k-th and (k+1)-th
    logit (how far the choice is from a tie); dropped: how many (token,
    expert) pairs the capacity dropped."""
    T, D = x.shape
    E = router.shape[0]
    logits = x @ router.T
    order = torch.sort(-logits, dim=1, stable=True).indices[:, :top_k]
    if gate == "softmax_topk":
        weights = torch.softmax(logits.gather(1, order), dim=1)
    else:
        weights = torch.softmax(logits, dim=1).gather(1, order)
    keep = torch.ones(T, top_k, dtype=torch.bool)
    if capacity:
        cap = math.ceil(capacity * T * top_k / E)
        count = [0] * E
        for t in range(T):
            for s in range(top_k):
                e = int(order[t, s])
                if count[e] < cap:
                    count[e] += 1
                else:
                    keep[t, s] = False
    y = torch.zeros(T, D, dtype=F64)
    for t in range(T):
        for s in range(top_k):
            if not keep[t, s]:
                continue
            e = int(order[t, s])
            h = ACTS[act](x[t] @ w1[e].T)
            if w3 is not None:
                h = h * (x[t] @ w3[e].T)
            y[t] += weights[t, s] * (h @ w2[e].T)
    if shared is not None:
        s1, s2, s3 = shared
        h = ACTS[act](x @ s1.T)
        if s3 is not None:
            h = h * (x @ s3.T)
        y = y + h @ s2.T
    srt = torch.sort(logits, dim=1, descending=True).values
    margin = float((srt[:, top_k - 1] - srt[:, top_k]).min()) if top_k < E else float("inf")
    return y, margin, int((~keep).sum())


class Weights:
    """Random float64 weights named like the .tfx params, stored as float32:
    w.lin(name, out, in) etc. return the f32-rounded float64 tensor."""

    def __init__(self, seed):
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.stored = {}

    def _put(self, name, t):
        t32 = t.to(torch.float32)
        self.stored[name] = t32
        return t32.to(F64)

    def randn(self, name, *shape, scale=1.0):
        return self._put(name, scale * torch.randn(*shape, generator=self.gen, dtype=F64))

    def lin(self, name, out, inp):
        return self.randn(name, out, inp, scale=1.0 / math.sqrt(inp))

    def experts(self, name, E, out, inp):
        return self.randn(name, E, out, inp, scale=1.0 / math.sqrt(inp))

    def gain(self, name, n):
        return self._put(name, 1.0 + 0.1 * torch.randn(n, generator=self.gen, dtype=F64))

    def bias(self, name, n):
        return self.randn(name, n, scale=0.1)

    def tokens(self, T, vocab):
        return torch.randint(0, vocab, (T,), generator=self.gen, dtype=torch.int32)

    def inputs(self, T, D):
        return torch.randn(T, D, generator=self.gen, dtype=F64).to(torch.float32)
