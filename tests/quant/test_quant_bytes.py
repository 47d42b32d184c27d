#!/usr/bin/env python3
"""tests/quant/test_quant_bytes.py — ctest test_quant_bytes: tfxc's weight
formats against the gguf package (scripts/pyenv.sh), through tfx-quant-tool
(tfx_quantize_row and the reference decoders of ir/dtype.c).

  test_quant_bytes.py PATH/TO/tfx-quant-tool

Asserts:
- F16, BF16, Q8_0, Q4_0, Q5_0: tfxc's bytes are identical to gguf.quants.quantize
  on varied rows (Gaussian at several scales, zeros, tiny and subnormal
  values, huge values up to f32's range, negative maxima, exact rounding
  ties of each format, a single non-zero per block; no NaN);
- Q4_K, Q6_K, Q5_0, Q3_K: tfxc's bytes are identical to llama.cpp's
  (llama_model_quantize without an importance matrix: ggml's
  quantize_row_q4_K_ref / quantize_row_q6_K_ref / quantize_row_q5_0_ref /
  quantize_row_q3_K_ref) on the 128 rows of kquant_rows.py, recorded in
  golden_q4_k.bin / golden_q6_k.bin / golden_q5_0.bin / golden_q3_k.bin by
  bench/check_kquant_bytes.py --write-golden (llama-cpp-python 0.3.36; gguf
  has no K-quant quantizer);
- Q4_K, Q6_K, Q5_0, Q3_K: tfxc's dequantization equals
  gguf.quants.dequantize bit for bit on random valid blocks (any bytes, a
  finite f16 d / dmin) and on rows tfxc quantized; and the quantization
  error of tfxc's Q4_K / Q6_K / Q8_0 / Q4_0 / Q5_0 on Gaussian rows, RMS(x - deq(q(x))) /
  RMS(x), stays within bounds set from the measurement with margin (the
  numbers are printed). bench/check_kquant_bytes.py checks many more
  Q4_K / Q6_K bytes against llama.cpp itself where its venv exists;
- tfx-quant-tool's errors (unknown format, a row its blocks do not divide,
  a file of partial rows) are clear messages with exit status 1.
- TQ2_0 (issue #13): tfxc's bytes identical to gguf.quants.quantize and its
  decoder to gguf's; `ternary` (BitNet b1.58, one scale per tensor) and the
  2:4 formats s24_f32 / s24_q8_0 identical to numpy oracles written here
  from their definitions (docs/quantization.md);
Exits 1 with a message on the first failure, 0 when all pass."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np

    np.seterr(all="ignore")  # the rows overflow f16 on purpose
    from gguf import GGMLQuantizationType as QT
    from gguf import quants
except ImportError as e:
    sys.exit(f"test_quant_bytes: {e}: this test needs the venv of scripts/pyenv.sh (numpy, gguf)")

TOOL = sys.argv[1] if len(sys.argv) > 1 else None
if not TOOL or not os.access(TOOL, os.X_OK):
    sys.exit("usage: test_quant_bytes.py PATH/TO/tfx-quant-tool")

TMP = tempfile.mkdtemp(prefix="tfx_quant_bytes_")
atexit.register(shutil.rmtree, TMP, True)
failures = []


def tool(mode, fmt, K, data):
    src, dst = os.path.join(TMP, "in"), os.path.join(TMP, "out")
    with open(src, "wb") as f:
        f.write(data)
    r = subprocess.run([TOOL, mode, fmt, str(K), src, dst], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"test_quant_bytes: tfx-quant-tool {mode} {fmt} {K} failed: {r.stderr.strip()}")
    with open(dst, "rb") as f:
        return f.read()


def tfx_quantize(fmt, rows):
    rows = np.ascontiguousarray(rows, dtype="<f4")
    return np.frombuffer(tool("quantize", fmt, rows.shape[1], rows.tobytes()), dtype=np.uint8)


def tfx_dequantize(fmt, K, raw):
    return np.frombuffer(tool("dequantize", fmt, K, np.asarray(raw, dtype=np.uint8).tobytes()), dtype="<f4")


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


rng = np.random.default_rng(20261203)

# ---- rows for the byte comparisons (K = 256: 8 blocks of 32) ----
K = 256


def rows_32block(qmax):
    """Rows exercising 32-block quantizers whose scale is amax / qmax."""
    rows = []
    for s in (1.0, 1e-3, 1e3, 0.02):
        rows.append(rng.standard_normal(K) * s)
    rows.append(np.zeros(K))
    rows.append(rng.standard_normal(K) * 1e-30)  # d underflows f16: zero blocks
    rows.append(rng.standard_normal(K) * 1e-7)  # d an f16 subnormal
    # the largest |x| of a block an f32 subnormal: 1 / d overflows to inf
    # and x / d is inf or NaN (ggml's (int8_t) cast of it gives 0 on x86)
    rows.append(rng.standard_normal(K) * 2e-40)
    rows.append(rng.standard_normal(K) * 1e35)  # d overflows f16: inf
    rows.append(rng.standard_normal(K) * 3e5)  # d near f16's max
    r = rng.standard_normal(K)
    r[::32] = -10.0  # negative maxima
    rows.append(r)
    r = rng.standard_normal(K)
    r[5::32] = 7.0  # positive maxima
    rows.append(r)
    one = np.zeros(K)
    one[3::32] = rng.standard_normal(K // 32)  # one value per block
    rows.append(one)
    # exact ties: amax = qmax gives d = 1 and x * id = x; half-integers tie
    t = rng.integers(-qmax, qmax, K).astype(np.float64) + 0.5
    t[::32] = -qmax if qmax in (8, 16) else qmax
    rows.append(t)
    rows.append(-t)
    rows.append(rng.uniform(-1, 1, K) * np.where(rng.random(K) < 0.5, 1e-4, 1.0))
    return np.array(rows, dtype=np.float32)


def rows_elementwise():
    """Rows for f16 / bf16: ties of both, subnormals, overflow, signed zeros."""
    f32 = lambda u: np.array(u, dtype=np.uint32).view(np.float32)
    rows = [rng.standard_normal(K) * s for s in (1.0, 1e-6, 1e4, 1e-40)]
    rows.append(np.zeros(K))
    # f16 ties: 1 + (2k + 1) * 2^-11 lies halfway between two f16 values
    rows.append((1 + (2 * rng.integers(0, 1023, K) + 1) * 2.0 ** -11) * rng.choice([-1, 1], K))
    # bf16 ties: low 16 bits 0x8000
    rows.append(f32((rng.integers(0x3f000000 >> 16, 0x4f000000 >> 16, K) << 16) | 0x8000))
    rows.append(f32(rng.integers(0, 0x7f800000, K)))  # any finite magnitude, subnormals included
    rows.append(f32(rng.integers(0x80000000, 0xff800000, K, dtype=np.uint64).astype(np.uint32)))
    big = np.array([65504, 65519.99, 65520, 65536, 1e9, -65520, 3.4e38, -3.4e38] * (K // 8))
    rows.append(big)  # the edge of f16's range: 65520 rounds to inf
    rows.append(np.array([-0.0, 0.0, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -14, 2.0 ** -15, 5.96e-8] * (K // 8)))
    return np.array(rows, dtype=np.float32)


def gguf_bytes(qt, rows):
    q = quants.quantize(rows, qt)
    return np.ascontiguousarray(q).view(np.uint8).reshape(-1)


for fmt, qt, rows in (("f16", QT.F16, rows_elementwise()), ("bf16", QT.BF16, rows_elementwise()),
                      ("q8_0", QT.Q8_0, rows_32block(127)), ("q4_0", QT.Q4_0, rows_32block(8)),
                      ("q5_0", QT.Q5_0, rows_32block(16))):
    assert not np.isnan(rows).any()
    before = len(failures)
    ours, ref = tfx_quantize(fmt, rows), gguf_bytes(qt, rows)
    check(ours.shape == ref.shape, f"{fmt}: {ours.size} bytes, gguf {ref.size}")
    if ours.shape == ref.shape:
        bad = np.flatnonzero(ours != ref)
        check(bad.size == 0, f"{fmt}: {bad.size} bytes differ from gguf.quants.quantize (first at byte {bad[:1]})")
    # the decoder too: tfxc's dequantization of its bytes equals gguf's of gguf's bytes
    deq, gdeq = tfx_dequantize(fmt, K, ref), quants.dequantize(ref, qt).reshape(-1).astype(np.float32)
    check(np.array_equal(deq, gdeq, equal_nan=True), f"{fmt}: dequantization differs from gguf.quants.dequantize")
    print(f"{fmt}: {rows.shape[0]} rows x {K}: bytes identical to gguf.quants.quantize and "
          f"dequantization equal to gguf's: {len(failures) == before}")

# ---- issue #13: TQ2_0 (gguf), BitNet's ternary and the 2:4 formats (numpy) ----
def rows_tq2():
    """Rows for the ternary formats: Gaussian at several scales, zeros, an
    f16-subnormal scale, exact ties of round(x / d) (x = +-d / 2)."""
    rows = [rng.standard_normal(K) * s for s in (1.0, 1e-3, 1e3, 0.02, 1e-7)]
    rows.append(np.zeros(K))
    t = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], K) * 3.0
    t[0] = 3.0  # amax 3: x / d = +-0.5 ties
    rows.append(t)
    rows.append(rng.uniform(-1, 1, K) * np.where(rng.random(K) < 0.5, 1e-4, 1.0))
    return np.array(rows, dtype=np.float32)


def tq2_pack(codes, d16):
    """TQ2_0 blocks from codes q + 1 (0..2) [nb, 256] and f16 scales [nb]:
    element 128 j + 32 n + m at bits 2 n of byte 32 j + m, then d."""
    c = codes.astype(np.uint8).reshape(-1, 2, 4, 32)
    qs = c[:, :, 0] | c[:, :, 1] << 2 | c[:, :, 2] << 4 | c[:, :, 3] << 6
    return np.concatenate([qs.reshape(-1, 64), d16.astype("<f2").view(np.uint8).reshape(-1, 2)], axis=1).reshape(-1)


rows = rows_tq2()
ours, ref = tfx_quantize("tq2_0", rows), gguf_bytes(QT.TQ2_0, rows)
check(np.array_equal(ours, ref), f"tq2_0: {np.count_nonzero(ours != ref)} bytes differ from gguf.quants.quantize")
deq, gdeq = tfx_dequantize("tq2_0", K, ref), quants.dequantize(ref, QT.TQ2_0).reshape(-1).astype(np.float32)
check(np.array_equal(deq, gdeq), "tq2_0: dequantization differs from gguf.quants.dequantize")
print(f"tq2_0: {rows.shape[0]} rows x {K}: bytes identical to gguf.quants.quantize: {np.array_equal(ours, ref)}")

# ternary: BitNet b1.58's round_clip(W / mean|W|, -1, 1) with the tensor's mean (round half to even, as torch.round)
for x in (rng.standard_normal((16, 512)).astype(np.float32) * np.float32(0.02), rows_tq2()[:4].reshape(2, 512),
          rows_tq2()[6:8]):
    x = np.ascontiguousarray(x)
    s = np.float32(max(float(np.abs(x.astype(np.float64)).mean()), 1e-5))
    q = np.clip(np.round(x * (np.float32(1) / s)), -1, 1)
    nb = x.size // 256
    want = tq2_pack((q + 1).reshape(nb, 256), np.full(nb, np.float16(s)))
    ours = np.frombuffer(tool("quantize", "ternary", x.shape[1], x.astype("<f4").tobytes()), dtype=np.uint8)
    check(np.array_equal(ours, want), f"ternary: {np.count_nonzero(ours != want)} bytes differ from the numpy oracle")
    print(f"ternary: {x.shape[0]} rows x {x.shape[1]} (mean |w| {s:.4g}): bytes identical to the numpy oracle: "
          f"{np.array_equal(ours, want)}")


def s24_oracle(x, fmt):
    """2:4 blocks of 32: per group of 4 the two largest |x| (ties: the lower
    position), kept in position order; s24_f32: 16 f32 values + u32 of
    positions (p0 | p1 << 2 at bits 4 g); s24_q8_0: f16 d = amax / 127, a
    u32 keep mask (bits 4 g + p0 and 4 g + p1), 16 x int8 round(v / d) (ties
    away from zero)."""
    g = x.reshape(-1, 4)
    order = np.argsort(-np.abs(g), axis=1, kind="stable")[:, :2]
    pos = np.sort(order, axis=1)
    vals = np.take_along_axis(g, pos, axis=1).reshape(-1, 16)
    nib = (pos[:, 0] | pos[:, 1] << 2).astype(np.uint32).reshape(-1, 8)
    idx = np.zeros(nib.shape[0], dtype=np.uint32)
    for k in range(8):
        idx |= nib[:, k] << np.uint32(4 * k)
    idxb = idx.astype("<u4").view(np.uint8).reshape(-1, 4)
    if fmt == "s24_f32":
        return np.concatenate([vals.astype("<f4").view(np.uint8).reshape(-1, 64), idxb], axis=1).reshape(-1)
    bits = (np.uint32(1) << pos[:, 0].astype(np.uint32)) | (np.uint32(1) << pos[:, 1].astype(np.uint32))
    mask = np.zeros(nib.shape[0], dtype=np.uint32)
    for k, b in enumerate(bits.reshape(-1, 8).T):
        mask |= b << np.uint32(4 * k)
    maskb = mask.astype("<u4").view(np.uint8).reshape(-1, 4)
    amax = np.abs(vals).max(axis=1, keepdims=True)
    d = amax / np.float32(127)
    with np.errstate(divide="ignore"):
        iv = np.where(d == 0, np.float32(0), np.float32(1) / d)
    qv = quants.np_roundf(vals * iv).astype(np.int8).view(np.uint8)
    return np.concatenate([d.astype("<f2").view(np.uint8).reshape(-1, 2), maskb, qv], axis=1).reshape(-1)


srows = rows_32block(127)[:6]
srows = np.concatenate([srows, np.tile(np.array([1, -1, 1, -1, 2, 2, -2, 0], dtype=np.float32), (1, K // 8))])
srows = np.concatenate([srows, rng.standard_normal((4, K)).astype(np.float32)])
for fmt in ("s24_f32", "s24_q8_0"):
    ours, want = tfx_quantize(fmt, srows), s24_oracle(srows, fmt)
    check(np.array_equal(ours, want), f"{fmt}: {np.count_nonzero(ours != want)} bytes differ from the numpy oracle")
    print(f"{fmt}: {srows.shape[0]} rows x {K}: bytes identical to the numpy oracle: {np.array_equal(ours, want)}")


def same_bits(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def zq_oracle(x, n, bits=8):
    """ZeroQuant's groups of n (docs/quantization.md, "ZeroQuant"): lo, hi
    the group's min and max, s = (hi - lo) / (2^bits - 1) raised to max(|lo|, |hi|) /
    32000, d = the smallest f16 >= s, z = roundf(-lo / d) (an i16), q =
    clamp(roundf(x / d) + z, 0, 255) (ties away from zero, f32 arithmetic);
    d == 0: z = 0, q = 0. Bytes: f16 d, i16 z, the n codes (4 bits: by 32,
    element j in the low nibble of byte j, j + 16 in the high one)."""
    qmax = (1 << bits) - 1
    g = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, n)
    lo, hi = g.min(axis=1), g.max(axis=1)
    s = (hi - lo) / np.float32(qmax)
    m = np.maximum(np.abs(lo), np.abs(hi)) / np.float32(32000)
    s = np.where(s < m, m, s).astype(np.float32)
    d16 = s.astype(np.float16)
    hb = d16.view(np.uint16).copy()
    up = (d16.astype(np.float32) < s) & (hb < 0x7BFF)
    hb[up] += 1
    d16 = hb.view(np.float16)
    ds = d16.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(ds == 0, 0, np.clip(quants.np_roundf(-lo / ds), -32768, 32767)).astype(np.int32)
        q = np.clip(quants.np_roundf(g / ds[:, None]) + z[:, None].astype(np.float32), 0, qmax)
    q = np.where(ds[:, None] == 0, 0, q).astype(np.uint8)
    if bits == 4:
        q = q.reshape(-1, n // 32, 2, 16)
        q = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(-1, n // 2)
    return np.concatenate([d16.astype("<f2").view(np.uint8).reshape(-1, 2),
                           z.astype("<i2").view(np.uint8).reshape(-1, 2), q], axis=1).reshape(-1)


zrng = np.random.default_rng(20261205)  # its own: the rows of the sections below stay as they were
zrows = np.concatenate([zrng.standard_normal((7, K)) * np.array([[1.0], [1e-3], [1e3], [0.02], [0.0], [1e-30], [1e-7]]),
                        zrng.standard_normal((4, K)) + 3.0, -np.abs(zrng.standard_normal((2, K))) * 0.02]).astype(np.float32)
zrows[0, :128] = np.float32(0.75)  # constant groups
zrows[1, 64:192] = np.float32(-2e4)
for fmt, n, bits in (("zq8_64", 64, 8), ("zq8_128", 128, 8), ("zq4_64", 64, 4), ("zq4_128", 128, 4)):
    ours, want = tfx_quantize(fmt, zrows), zq_oracle(zrows, n, bits)
    check(np.array_equal(ours, want), f"{fmt}: {np.count_nonzero(ours != want)} bytes differ from the numpy oracle")
    g = want.reshape(-1, 4 + n * bits // 8)
    d = g[:, :2].copy().view("<f2").astype(np.float32)
    z = g[:, 2:4].copy().view("<i2").astype(np.int32)
    codes = g[:, 4:].astype(np.int32)
    if bits == 4:
        c = codes.reshape(-1, n // 32, 16)
        codes = np.concatenate([c & 15, c >> 4], axis=2).reshape(-1, n)
    ref = (d * (codes - z).astype(np.float32)).reshape(-1)
    deq = tfx_dequantize(fmt, K, want)
    check(same_bits(deq, ref), f"{fmt}: dequantization differs from d * (q - z)")
    err = np.abs(ref.reshape(zrows.shape) - zrows)
    check(bool(np.all(err.reshape(-1, n) <= np.maximum(d, 0) * np.float32(0.5001) + np.float32(1e-30))),
          f"{fmt}: a value decodes further than d / 2 from x")
    print(f"{fmt}: {zrows.shape[0]} rows x {K}: bytes identical to the numpy oracle: {np.array_equal(ours, want)}")


# ---- Q4_K / Q6_K, and Q5_0 against llama.cpp's own bytes too ----
BLOCK = {"q4_k": (QT.Q4_K, 144, 256), "q6_k": (QT.Q6_K, 210, 256), "q5_0": (QT.Q5_0, 22, 32),
         "q3_k": (QT.Q3_K, 110, 256)}

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kquant_rows  # noqa: E402

golden_x = kquant_rows.rows()
for fmt, (qt, nbytes, _) in BLOCK.items():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"golden_{fmt}.bin")
    golden = np.fromfile(path, dtype=np.uint8)
    ours = tfx_quantize(fmt, golden_x)
    check(ours.shape == golden.shape, f"{fmt}: {ours.size} bytes, llama.cpp's golden file {golden.size}")
    if ours.shape == golden.shape:
        bad = np.flatnonzero(ours != golden)
        sb = sorted(set((bad // nbytes).tolist()))
        check(bad.size == 0, f"{fmt}: {bad.size} bytes differ from llama.cpp's ({path}) in super-blocks {sb[:8]}")
    # the golden bytes decode the same in tfxc and gguf (and close to x)
    deq = tfx_dequantize(fmt, kquant_rows.GOLDEN_K, golden)
    check(same_bits(deq, quants.dequantize(golden, qt).reshape(-1).astype(np.float32)),
          f"{fmt}: dequantization of llama.cpp's bytes differs from gguf's")
    print(f"{fmt}: {golden_x.shape[0]} rows x {golden_x.shape[1]}: bytes identical to llama.cpp's: "
          f"{ours.shape == golden.shape and np.array_equal(ours, golden)}")


def random_blocks(fmt, n):
    qt, nbytes, _ = BLOCK[fmt]
    b = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    # finite f16 scales over a wide range (including subnormals and zero)
    d = (rng.standard_normal((n, 2)) * 10.0 ** rng.integers(-8, 4, (n, 2))).astype(np.float16)
    d[0] = 0
    if fmt == "q4_k":
        b[:, 0:4] = d.view(np.uint8)
    elif fmt == "q6_k":
        b[:, 208:210] = d[:, :1].view(np.uint8)
    elif fmt == "q3_k":
        b[:, 108:110] = d[:, :1].view(np.uint8)
    else:  # q5_0: d first
        b[:, 0:2] = d[:, :1].view(np.uint8)
    return b


for fmt, (qt, nbytes, blk) in BLOCK.items():
    blocks = random_blocks(fmt, 4096)
    for K2 in (256, 1024):
        deq = tfx_dequantize(fmt, K2, blocks)
        ref = quants.dequantize(blocks.reshape(-1), qt).reshape(-1).astype(np.float32)
        check(same_bits(deq, ref), f"{fmt}: dequantization of random blocks (K = {K2}) differs from gguf's")
    # rows tfxc quantized, at several scales
    rows = np.concatenate([rng.standard_normal((16, 1024)) * s for s in (1.0, 0.02, 1e-5, 300.0)]).astype(np.float32)
    rows[0, :256] = 0
    q = tfx_quantize(fmt, rows)
    check(q.size == rows.size // blk * nbytes, f"{fmt}: {q.size} bytes for {rows.size // blk} blocks")
    deq = tfx_dequantize(fmt, 1024, q)
    ref = quants.dequantize(q, qt).reshape(-1).astype(np.float32)
    check(same_bits(deq, ref), f"{fmt}: dequantization of tfxc-quantized rows differs from gguf's")
    check(np.all(deq[:256] == 0), f"{fmt}: all-zero blocks do not decode to zeros")
    print(f"{fmt}: dequantization equals gguf.quants.dequantize bit for bit (random blocks, tfxc-quantized rows)")

# ---- quantization error on Gaussian rows: RMS(x - deq(q(x))) / RMS(x) ----
# Measured (this generator, 256 rows x 4096 of N(0, sigma)), sigma 1 / 1e-3:
# q4_k 0.0713 / 0.0715, q6_k 0.0177 / 0.0205, q8_0 0.00535 / 0.00543, q4_0
# 0.0858 / 0.0858, q5_0 0.0426 / 0.0426, q3_k 0.1508 / 0.1508 (at sigma 1e-3 the K-quants' f16 super-block scale d is
# an f16 subnormal and loses bits: ggml's format does the same). Bounds:
# the measured values -10% / +10%; the lower bound catches a format that
# silently stayed f32 (or a comparison of a format with itself).
BOUNDS = {"q3_k": (0.136, 0.166), "q4_k": (0.064, 0.079), "q6_k": (0.016, 0.0226), "q8_0": (0.0048, 0.0060), "q4_0": (0.077, 0.095),
          "q5_0": (0.038, 0.047)}
gauss = rng.standard_normal((256, 4096)).astype(np.float32)
for fmt, (lo, hi) in BOUNDS.items():
    for scale in (1.0, 1e-3):
        x = gauss * np.float32(scale)
        deq = tfx_dequantize(fmt, 4096, tfx_quantize(fmt, x)).reshape(x.shape)
        rel = float(np.sqrt(np.mean((deq.astype(np.float64) - x) ** 2)) / np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        print(f"{fmt}: Gaussian rows (sigma {scale:g}): relative RMS error {rel:.5f} (bounds [{lo}, {hi}])")
        check(lo <= rel <= hi, f"{fmt}: relative RMS error {rel:.5f} outside [{lo}, {hi}] (sigma {scale:g})")

# ---- the tool's errors: clear messages, no crash ----
src = os.path.join(TMP, "bad")
with open(src, "wb") as f:
    f.write(b"\0" * 100)
for args, want in ((["quantize", "q9_9", "32"], "unknown weight format"),
                   (["quantize", "q4_k", "288"], "not a multiple"),
                   (["quantize", "i8", "32"], "scale plane"),
                   (["quantize", "q8_0", "0"], "bad row length"),
                   (["quantize", "q8_0", "32"], "whole rows"),
                   (["dequantize", "q4_k", "256"], "whole rows")):
    r = subprocess.run([TOOL] + args + [src, os.path.join(TMP, "o")], capture_output=True, text=True)
    check(r.returncode == 1 and want in r.stderr, f"tfx-quant-tool {' '.join(args)}: rc {r.returncode}, {r.stderr!r}")

if failures:
    print(f"test_quant_bytes: {len(failures)} failed")
    sys.exit(1)
print("test_quant_bytes: all checks passed")
