"""tests/torch/attn_common.py — building blocks of the attention-family
reference scripts (alibi.py, longformer.py, bigbird.py, mla.py, encdec.py),
written from the math of TECHNIQUES.md and the papers, never from tfxc's code.
Everything is float64; weights are rounded to float32 first (the file holds
f32), so the reference computes with exactly the values tfxc reads.
"""
import math

import torch

F64 = torch.float64


def rmsnorm(x, g, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g


def layernorm(x, g, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)  # biased variance
    return (x - mu) / torch.sqrt(var + eps) * g + b


def gelu_erf(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, p, theta, style):
    """Rotates the last dim (r = its size) of x [T, ..., r] by angles
    p[t] * theta^(-2i/r); pairs (2i, 2i+1) (interleaved) or (i, i + r/2)."""
    r = x.shape[-1]
    i = torch.arange(r // 2, dtype=F64)
    ang = p.to(F64)[:, None] * theta ** (-2.0 * i / r)           # [T, r/2]
    shape = [x.shape[0]] + [1] * (x.dim() - 2) + [r // 2]
    cos, sin = torch.cos(ang).reshape(shape), torch.sin(ang).reshape(shape)
    y = x.clone()
    if style == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        y[..., 0::2] = a * cos - b * sin
        y[..., 1::2] = a * sin + b * cos
    else:
        a, b = x[..., : r // 2], x[..., r // 2:]
        y[..., : r // 2] = a * cos - b * sin
        y[..., r // 2:] = a * sin + b * cos
    return y


def alibi_slopes(n):
    """The ALiBi paper's slopes (the authors' get_slopes): 2^(-8/n * h) for
    h = 1..n when n is a power of two, otherwise the slopes of the closest
    power of two below n followed by every other slope of twice that."""
    def power_of_2(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]
    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + alibi_slopes(2 * closest)[0::2][: n - closest]


def attention(q, k, v, heads, kv_heads, allowed, bias=None, scale=None):
    """softmax(q k^T * scale + bias, masked) v per head. q [Tq, H*d],
    k [Tk, G*dk] with dk = d, v [Tk, G*dv]; allowed [Tq, Tk] bool; bias
    [H, Tq, Tk] or None. Query head h reads key/value head h // (H/G). A row
    with no allowed key outputs zeros."""
    Tq, Tk = q.shape[0], k.shape[0]
    d = q.shape[1] // heads
    dv = v.shape[1] // kv_heads
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    qh = q.reshape(Tq, heads, d)
    kh = k.reshape(Tk, kv_heads, d)
    vh = v.reshape(Tk, kv_heads, dv)
    out = torch.zeros(Tq, heads, dv, dtype=F64)
    any_row = allowed.any(dim=1)
    for h in range(heads):
        g = h // (heads // kv_heads)
        s = qh[:, h, :] @ kh[:, g, :].T * scale
        if bias is not None:
            s = s + bias[h]
        s = s.masked_fill(~allowed, float("-inf"))
        p = torch.softmax(s[any_row], dim=-1)
        out[any_row, h, :] = p @ vh[:, g, :]
    return out.reshape(Tq, heads * dv)


def causal_mask(T):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    return j <= i


def make_gen(seed):
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def lin(gen, out, inp):
    return torch.randn(out, inp, generator=gen, dtype=F64) / math.sqrt(inp)


def gain(gen, n):
    return 1.0 + 0.1 * torch.randn(n, generator=gen, dtype=F64)


def bias(gen, n):
    return 0.1 * torch.randn(n, generator=gen, dtype=F64)


def as_f32(w):
    """The weights as the file stores them (f32), back in float64."""
    return {k: v.to(torch.float32).to(F64) for k, v in w.items()}
