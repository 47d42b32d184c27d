#!/usr/bin/env python3
"""tests/fuzz/gen_seeds.py OUTDIR — writes the seed corpora of the fuzz
targets: OUTDIR/frontend (every examples/**/*.tfx plus a few programs that
use the rest of the language), OUTDIR/llama2c (tiny llama2.c checkpoints that
match the target's fixed graph, with shared and separate classifier) and
OUTDIR/safetensors (small files in F32/F16/BF16, with metadata, with the
names the target's renaming rules map) and OUTDIR/gguf (GGUF v2/v3 files with
metadata arrays, F32/F16/BF16/Q8_0/Q4_0/Q5_0/Q4_K/Q6_K tensors, another
alignment, renamed names) and OUTDIR/model (mutation lists of fuzz_model.c:
none, a truncation, one byte in each region). Standard library only."""
import glob
import json
import os
import shutil
import struct
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = sys.argv[1]


def write(sub, name, data):
    d = os.path.join(out, sub)
    os.makedirs(d, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(d, name), mode) as f:
        f.write(data)


# ---- frontend: the examples and a few programs using the rest of the language
for i, p in enumerate(sorted(glob.glob(os.path.join(root, "examples", "**", "*.tfx"), recursive=True))):
    os.makedirs(os.path.join(out, "frontend"), exist_ok=True)
    shutil.copy(p, os.path.join(out, "frontend", "example%02d_%s" % (i, os.path.basename(p))))
write("frontend", "encoder.tfx", """model enc
const d = 16, max_seq = 8, ff = 4 * d, eps = 1e-6
param ln_g : f32[d]
param ln_b : f32[d]
param wq : f32[d, d]; param wk : f32[d, d]; param wv : f32[d, d]; param wo : f32[d, d]
param bq : f32[d]
param w_up : f32[ff, d]; param b_up : f32[ff]; param w_down : f32[d, ff]
param m : f32[d, d]
forward(x : f32[T, d]) -> f32[T, d] {
  h = layernorm(x, ln_g, ln_b, eps = eps)
  h = x + attention(h, wq, wk, wv, wo, heads = 2, mask = none, bq = bq,
                    position = rope(theta = 500000.0, style = half, rotary_dim = 4))
  u = gelu(linear(h, w_up, b_up), approximate = tanh)
  h = h - linear(relu(u) * gelu(u), w_down)
  return softmax(matmul(rope(h, heads = 4), m))
}
schedule { threads = 3; attention = dense }
""")
write("frontend", "blocks.tfx", """const d = 8, max_seq = 4
weights "m.safetensors" format safetensors rename {
  "model.layers.{i}.w.weight" = "layers.{i}.mlp.w"
  "unused.{j}" = ""
}
param e : f32[16, d]
block mlp(y : f32[T, d]) -> f32[T, d] {
  param w : f32[d, d]
  return linear(y, w)
}
block layer(y : f32[T, d]) -> f32[T, d] {
  param g : f32[d]
  return mlp(rmsnorm(y, g))
}
forward(t : i32[T]) -> f32[T, d] {
  x = embedding(e, t)
  x = repeat(2) layer(x)
  x = repeat(1, prefix = "enc.h") layer(x)
  x = mlp(x, prefix = "head")
  return silu(x)
}
""")
write("frontend", "errors.tfx", """model m
const dim = 64, max_seq = 16, vocab = 32, z = dim / (dim - 64)
param emb : f32[vocab, dim]
param g : f32[T]
forward(t : i32[T]) -> f32[T, dim] {
  x = embedding(emb, t)
  y = rmsnrom(x, g, epsilon = 1e-5)
  return x + $
}
""")

# ---- llama2c: dim 8, hidden 4, 1 layer, 2 heads, 2 kv heads, vocab 4, seq_len 4


def llama2c(vocab_sign, n_layers=1, seq=4):
    dim, hidden, heads, kv, vocab = 8, 4, 2, 2, 4
    head = dim // heads
    n = vocab * dim + n_layers * (2 * dim + 2 * dim * dim + 2 * dim * (kv * head) + 3 * dim * hidden)
    n += dim + seq * head  # final norm, freq_cis real + imag
    if vocab_sign < 0:
        n += vocab * dim
    hdr = struct.pack("<7i", dim, hidden, n_layers, heads, kv, vocab_sign * vocab, seq)
    return hdr + struct.pack("<%df" % n, *[((i * 37) % 19 - 9) / 8.0 for i in range(n)])


write("llama2c", "tiny_shared.bin", llama2c(1))
write("llama2c", "tiny_unshared.bin", llama2c(-1))
write("llama2c", "tiny_2layers.bin", llama2c(1, n_layers=2))
write("llama2c", "header_only.bin", struct.pack("<7i", 8, 4, 1, 2, 2, 4, 4))

# ---- safetensors


def f16_bits(x):
    return struct.unpack("<H", struct.pack("<e", x))[0]


def bf16_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0] >> 16


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape)"""
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for k, (name, dtype, shape) in enumerate(tensors):
        n = 1
        for s in shape:
            n *= s
        vals = [((i * 13 + k) % 11 - 5) / 4.0 for i in range(n)]
        if dtype == "F32":
            b = struct.pack("<%df" % n, *vals)
        elif dtype == "F16":
            b = struct.pack("<%dH" % n, *[f16_bits(v) for v in vals])
        else:
            b = struct.pack("<%dH" % n, *[bf16_bits(v) for v in vals])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


small = [("emb", "F32", [16, 8]), ("g", "F32", [8]), ("w", "F32", [4, 8]), ("b", "F32", [4])]
write("safetensors", "small_f32.safetensors", safetensors(small))
write("safetensors", "small_f16.safetensors", safetensors([(n, "F16", s) for n, _, s in small]))
write("safetensors", "small_bf16_meta.safetensors",
      safetensors([(n, "BF16", s) for n, _, s in small], metadata={"format": "pt", "note": "caf\u00e9 \\ \""}))
write("safetensors", "renamed.safetensors",
      safetensors([("model.embed_tokens.weight", "F32", [16, 8]), ("model.layers.0.norm.weight", "F16", [8]),
                   ("lm_head.1.2", "BF16", [4, 8]), ("b", "F32", [4]), ("ignored.7", "F32", [2])]))
write("safetensors", "wrong_shape.safetensors", safetensors([("emb", "F32", [8, 16]), ("g", "F32", [8, 1])]))
write("safetensors", "empty.safetensors", struct.pack("<Q", 2) + b"{}")

# ---- gguf (fuzz_gguf's graph: emb f32[16, 32], g f32[32], w f32[4, 32], b f32[4])

GGUF_TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q8_0": (8, 32, 34), "Q4_K": (12, 256, 144),
              "Q6_K": (14, 256, 210), "BF16": (30, 1, 2), "Q5_K": (13, 256, 176), "Q5_0": (6, 32, 22)}


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(tensors, kvs=(), version=3, align=32):
    """tensors: (name, type name, row-major shape); data: a byte pattern."""
    body = b""
    kv = [(k, t, v) for k, t, v in kvs]
    if align != 32:
        kv.append(("general.alignment", 4, struct.pack("<I", align)))
    for k, t, v in kv:
        body += gguf_str(k) + struct.pack("<I", t) + v
    infos, data, off = b"", b"", 0
    for name, tn, shape in tensors:
        tid, blk, bb = GGUF_TYPES[tn]
        ne = list(reversed(shape))
        n = 1
        for d in shape:
            n *= d
        size = n // blk * bb
        infos += gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        infos += struct.pack("<IQ", tid, off)
        chunk = bytes((i * 7 + 3) & 0x3f for i in range(size))
        chunk += b"\0" * (-len(chunk) % align)
        data += chunk
        off += len(chunk)
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv)) + body + infos
    head += b"\0" * (-len(head) % align)
    return head + data


arch = [("general.architecture", 8, gguf_str("llama")),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gguf_str("a") + gguf_str("bc")),
        ("test.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 6, 1) + struct.pack("<f", 1.5))]
small_g = [("emb", "F16", [16, 32]), ("g", "F32", [32]), ("w", "Q8_0", [4, 32]), ("b", "F32", [4])]
write("gguf", "small_q8_0.gguf", gguf(small_g, arch))
write("gguf", "small_q4_0_v2.gguf", gguf([("emb", "BF16", [16, 32]), ("g", "F16", [32]), ("w", "Q4_0", [4, 32]),
                                          ("b", "F32", [4])], version=2))
write("gguf", "small_align64.gguf", gguf(small_g, arch, align=64))
write("gguf", "renamed.gguf", gguf([("token_embd.weight", "F32", [16, 32]), ("blk.0.attn_norm.weight", "F32", [32]),
                                    ("output.0.1", "Q8_0", [4, 32]), ("b", "F32", [4]), ("ignored.3", "Q5_K", [256])],
                                   arch))
write("gguf", "kquants.gguf", gguf([("x", "Q4_K", [2, 256]), ("y", "Q6_K", [1, 256])]))
write("gguf", "small_q5_0.gguf", gguf([("emb", "Q5_0", [16, 32]), ("g", "Q5_0", [32]), ("w", "Q5_0", [4, 32]),
                                       ("b", "F32", [4])], arch))
write("gguf", "empty.gguf", gguf([]))

# ---- model: fuzz_model.c's inputs are mutation lists (flags; [truncation];
# groups of region, offset low, offset high, byte)
write("model", "open.bin", b"\x00")
write("model", "verify_run.bin", b"\x05")
write("model", "cut.bin", b"\x06" + struct.pack("<I", 70000))
write("model", "ehdr.bin", b"\x04" + bytes([0, 0x12, 0, 0x3e]))
write("model", "phdr.bin", b"\x04" + bytes([0x80, 0x98, 0, 0x10]))
write("model", "desc.bin", b"\x05" + bytes([1, 24, 0, 7]))
write("model", "dynamic.bin", b"\x04" + bytes([0x82, 0x40, 0, 0x01]))
write("model", "sections.bin", b"\x04" + bytes([3, 0x58, 0, 0xff]))
