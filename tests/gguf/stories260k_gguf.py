"""tests/gguf/stories260k_gguf.py — converts llama2.c's stories260K.bin into
GGUF files the way llama.cpp's converters do, with the `gguf` package from
PyPI, and computes the reference logits of each with an independent float64
numpy forward pass of its DEQUANTIZED tensors (gguf.quants.dequantize).

Conversion: stories260K.bin holds Meta's original layout (RoPE on adjacent
pairs). Hugging Face's checkpoints permute the Q/K rows of each head for
rotate_half (convert_llama_weights_to_hf.py); llama.cpp's convert_hf_to_gguf
permutes them back (LlamaModel.permute: reshape(n_head, 2, rows/n_head/2,
cols).swapaxes(1, 2)). This script goes through both steps (and checks that
they cancel), so the GGUF's attn_q/attn_k are exactly what llama.cpp writes
for this model, and the forward pass below uses llama.cpp's "normal" RoPE
on adjacent pairs. Tensor names are llama.cpp's (token_embd.weight,
blk.N.attn_q.weight, ..., output_norm.weight); the classifier is tied to
token_embd.weight (no output.weight), as llama.cpp does when it is absent.

Files (OUTDIR/stories260K.<fmt>.gguf, <fmt> in f32, f16, q8_0, q4_0, q5_0):
  f32   every tensor F32
  f16   2-D tensors F16, 1-D (norm gains) F32
  q8_0, q4_0, q5_0  2-D tensors in that format; a tensor whose rows (ne0) 32 does
        not divide stays F16 (ffn_down: 172 inputs), as llama.cpp's
        converter does; 1-D F32
and OUTDIR/ref.<fmt>.f32: float32 little-endian [N_TOK, 512] logits of the
float64 forward pass over TOKENS (BOS then 15 greedy ids), with f32
activations (no activation quantization).

Usage: python3 tests/gguf/stories260k_gguf.py OUTDIR MODELS_DIR
"""
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

TOKENS = [1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283]


def read_llama2c(path):
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    data = np.frombuffer(raw, dtype=np.float32, offset=28)
    hd = dim // heads
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = data[pos:pos + n].reshape(shape).copy()
        pos += n
        return a

    w = {"tok": take(vocab, dim), "att_norm": take(layers, dim), "wq": take(layers, heads * hd, dim),
         "wk": take(layers, kv_heads * hd, dim), "wv": take(layers, kv_heads * hd, dim),
         "wo": take(layers, dim, heads * hd), "ffn_norm": take(layers, dim), "w1": take(layers, hidden, dim),
         "w2": take(layers, dim, hidden), "w3": take(layers, hidden, dim), "norm": take(dim)}
    assert shared
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab, seq=seq)
    return cfg, w


def hf_permute(w, n_head):
    """Meta -> Hugging Face (transformers' convert_llama_weights_to_hf.py)."""
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def llamacpp_permute(w, n_head, n_head_kv=None):
    """Hugging Face -> GGUF (llama.cpp's convert_hf_to_gguf.py, LlamaModel.permute)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_tensors(cfg, w):
    """(name, f32 array) in llama.cpp's naming and order."""
    out = [("token_embd.weight", w["tok"])]
    for i in range(cfg["layers"]):
        q_hf = hf_permute(w["wq"][i], cfg["heads"])
        k_hf = hf_permute(w["wk"][i], cfg["kv_heads"])
        q = llamacpp_permute(q_hf, cfg["heads"], cfg["heads"])
        k = llamacpp_permute(k_hf, cfg["heads"], cfg["kv_heads"])
        assert np.array_equal(q, w["wq"][i]) and np.array_equal(k, w["wk"][i])
        assert not np.array_equal(q_hf, q)
        out += [(f"blk.{i}.attn_norm.weight", w["att_norm"][i]), (f"blk.{i}.attn_q.weight", q),
                (f"blk.{i}.attn_k.weight", k), (f"blk.{i}.attn_v.weight", w["wv"][i]),
                (f"blk.{i}.attn_output.weight", w["wo"][i]), (f"blk.{i}.ffn_norm.weight", w["ffn_norm"][i]),
                (f"blk.{i}.ffn_gate.weight", w["w1"][i]), (f"blk.{i}.ffn_down.weight", w["w2"][i]),
                (f"blk.{i}.ffn_up.weight", w["w3"][i])]
    out.append(("output_norm.weight", w["norm"]))
    return out


def storage(fmt, a):
    if fmt == "f32" or a.ndim == 1:
        return QT.F32
    if fmt == "f16":
        return QT.F16
    qt = {"q8_0": QT.Q8_0, "q4_0": QT.Q4_0, "q5_0": QT.Q5_0}[fmt]
    return qt if a.shape[-1] % 32 == 0 else QT.F16


def write_gguf(path, cfg, tensors, fmt):
    wr = gguf.GGUFWriter(path, "llama")
    wr.add_name("stories260K")
    wr.add_context_length(cfg["seq"])
    wr.add_embedding_length(cfg["dim"])
    wr.add_block_count(cfg["layers"])
    wr.add_feed_forward_length(cfg["hidden"])
    wr.add_head_count(cfg["heads"])
    wr.add_head_count_kv(cfg["kv_heads"])
    wr.add_rope_dimension_count(cfg["dim"] // cfg["heads"])
    wr.add_layer_norm_rms_eps(1e-5)
    # a vocabulary like a converter's: arrays of strings, floats and ints
    wr.add_tokenizer_model("llama")
    wr.add_token_list([f"<t{i}>" for i in range(cfg["vocab"])])
    wr.add_token_scores([float(-i) for i in range(cfg["vocab"])])
    wr.add_token_types([1] * cfg["vocab"])
    stored = {}
    for name, a in tensors:
        qt = storage(fmt, a)
        if qt == QT.F32:
            data = a.astype(np.float32)
        elif qt == QT.F16:
            data = a.astype(np.float16)
        else:
            data = gguf.quants.quantize(a.astype(np.float32), qt)
        wr.add_tensor(name, data, raw_dtype=qt)
        stored[name] = (qt, data)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    return stored


def dequantized(stored, shapes):
    out = {}
    for name, (qt, data) in stored.items():
        if qt == QT.F32:
            a = np.asarray(data, dtype=np.float64)
        elif qt == QT.F16:
            a = np.asarray(data, dtype=np.float64)
        else:
            a = gguf.quants.dequantize(np.asarray(data), qt).astype(np.float64)
        out[name] = a.reshape(shapes[name])
    return out


def rmsnorm(x, g, eps=1e-5):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope_adjacent(x, n_head, hd, theta=10000.0):
    """llama.cpp's normal RoPE: pairs (2i, 2i+1) of each head."""
    T = x.shape[0]
    x = x.reshape(T, n_head, hd // 2, 2)
    inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0], x[..., 1]
    return np.stack([a * c - b * s, a * s + b * c], axis=-1).reshape(T, n_head * hd)


def forward(cfg, t, tokens):
    dim, heads, kvh = cfg["dim"], cfg["heads"], cfg["kv_heads"]
    hd = dim // heads
    T = len(tokens)
    x = t["token_embd.weight"][tokens]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(cfg["layers"]):
        p = lambda n: t[f"blk.{i}.{n}.weight"]
        a = rmsnorm(x, p("attn_norm"))
        q = rope_adjacent(a @ p("attn_q").T, heads, hd)
        k = rope_adjacent(a @ p("attn_k").T, kvh, hd)
        v = a @ p("attn_v").T
        o = np.zeros((T, heads * hd))
        for h in range(heads):
            kv = h // (heads // kvh)
            qh, kh, vh = q[:, h * hd:(h + 1) * hd], k[:, kv * hd:(kv + 1) * hd], v[:, kv * hd:(kv + 1) * hd]
            s = qh @ kh.T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            o[:, h * hd:(h + 1) * hd] = (s / s.sum(axis=-1, keepdims=True)) @ vh
        x = x + o @ p("attn_output").T
        f = rmsnorm(x, p("ffn_norm"))
        g = f @ p("ffn_gate").T
        x = x + ((g / (1 + np.exp(-g))) * (f @ p("ffn_up").T)) @ p("ffn_down").T
    return rmsnorm(x, t["output_norm.weight"]) @ t["token_embd.weight"].T


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    outdir, models = sys.argv[1], sys.argv[2]
    cfg, w = read_llama2c(os.path.join(models, "stories260K.bin"))
    tensors = gguf_tensors(cfg, w)
    shapes = {n: a.shape for n, a in tensors}
    for fmt in ("f32", "f16", "q8_0", "q4_0", "q5_0"):
        path = os.path.join(outdir, f"stories260K.{fmt}.gguf")
        stored = write_gguf(path, cfg, tensors, fmt)
        # the file as any reader sees it: the gguf package reads it back
        rd = gguf.GGUFReader(path)
        assert [t.name for t in rd.tensors] == [n for n, _ in tensors]
        logits = forward(cfg, dequantized(stored, shapes), TOKENS)
        logits.astype("<f4").tofile(os.path.join(outdir, f"ref.{fmt}.f32"))
        kinds = sorted({qt.name for qt, _ in stored.values()})
        print(f"{fmt}: {os.path.getsize(path)} bytes, tensor types {kinds}")


if __name__ == "__main__":
    main()
