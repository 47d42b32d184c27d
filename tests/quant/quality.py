"""tests/quant/quality.py — test_quant_quality: the quality of each weight
format on the real stories260K weights, measured like `llama-perplexity
--kl-divergence`.

  python3 tests/quant/quality.py TFXC SOURCE_DIR MODELS_DIR [--measure] [--formats=f16,q8_0,..]

(TFX_MODELS_DIR, when set, overrides MODELS_DIR.)

The sequence: stories260K's f32 greedy generation from BOS, 511 tokens
(`tfxc run -n 511 --temperature 0 --print-ids`; it never emits BOS, so BOS +
511 ids fill max_seq = 512). Each model is run teacher-forced on BOS + those
ids (`tfxc run --eval-ids`, one call) and its 512 next-token distributions are
compared with tfxc's f32 ones: mean KL(p_f32 || p_fmt) (natural log) and the
top-1 agreement (argmax equal), over all 512 rows.

Checks:
1. tfxc's f32 logits equal an independent float64 numpy forward pass of the
   checkpoint (max |diff| <= 2e-4 of the logit range, mean KL <= 1e-7), and
   their argmax reproduces the greedy ids (>= 99%: generation and teacher
   forcing agree).
2. For each format (f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k, q4_k_m), with the
   activations quantized to int8 blocks (the default) and with
   `schedule { activations = f32 }` (block formats only): tfxc --quantize FMT
   stays within BOUNDS below. For f16, bf16, q8_0, q4_0, q5_0 and q4_k_m
   (llama.cpp's mix on this model) it is also
   compared with the float64 forward of the same scheme emulated here in
   numpy (every 2-D weight quantized and dequantized, rows that 32 does not
   divide kept in f16, and for int8 activations each quantized linear's input
   through tfx_act_quant_block's rule): tfxc's KL is at most 1.5x + 0.01 of
   the emulation's. The emulated q8_0/q4_0/q5_0 weights are ggml's reference
   quantizers (equal to the gguf package's quants.quantize).

3. GPTQ at 3 and 4 bits on the project's trained demo model
   (examples/fortune: dim 256, hidden 768, every row a multiple of 256, so
   q3_k really is q3_k there, unlike on stories260K): FORTUNE_EVAL_SEEDS'
   samples of its f32 model teacher-forced, calibrated on
   FORTUNE_CALIB_SEEDS' other samples; gptq(bits = 3) at most
   FORTUNE_GPTQ_RATIO of round-to-nearest q3_k's KL, gptq (4 bits) of
   q4_0's, and q3_k within its bound. Skipped when --formats= is given.

--measure prints the table (also for formats without bounds) and asserts
nothing of parts 2 and 3: how the bounds below were chosen.
"""
import os
import atexit
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    sys.exit("test_quant_quality: FAIL: this python has no numpy (Debian: apt-get install python3-numpy)")

FORMATS = ["f16", "bf16", "q8_0", "q4_0", "q5_0", "q4_k", "q6_k", "q4_k_m", "w8a8", "w8a8(smooth=0.5)", "llm_int8",
           "gptq", "zeroquant"]
BLOCK = {"q8_0", "q4_0", "q5_0", "q4_k", "q6_k", "q4_k_m", "w8a8", "w8a8(smooth=0.5)"}
# w8a8(smooth = ALPHA) is calibrated (tfxc calibrate) on CALIB_SEEDS sampled
# sequences of the model (temperature 0.9), never on the evaluation sequence
CALIB_SEEDS = (11, 12, 13, 14, 15, 16, 17, 18)
# (max mean KL, min top-1 agreement) per (format, activations): tfxc's own
# measurement (--measure) x 1.5 + 0.002, top-1 minus 5 points. tfxc measured:
# f16 0.0000 / 99.2%, bf16 0.0024 / 97.1%, q8_0 0.0339 / 89.8% (int8
# activation blocks) and 0.0220 / 91.2% (f32 activations), q4_0 2.115 / 35.5%
# and 2.111 / 35.9%. The float64 emulation of the same schemes: f16 0.0001 / 98.4%, bf16 0.0038 / 96.1%, q8_0
# 0.0253 / 91.0% (f32 activations) and 0.0358 / 88.9% (int8 blocks), q4_0
# 2.257 / 33.2% and 2.264 / 32.6%. On stories260K the K-quants hold no row
# (dim 64 and hidden 172 are not multiples of 256): as in llama.cpp, q4_k
# falls back to q5_0 and q6_k to q8_0 (rows of 64), both to f16 (rows of
# 172), so q6_k gets q8_0's bounds and q4_k q5_0's; q4_k_m is llama.cpp's mix
# (Q5_0, the tied embedding and two attn_v Q8_0, w2 F16). tfxc measured q5_0
# (= q4_k) 0.889 / 54.5% and q4_k_m 0.617 / 60.0% (q5_0 weights read with f32
# activations either way: no int8 kernel for q5_0 yet); the float64
# emulation q5_0 0.992 / 51.0% (f32 activations), the Q4_K_M mix 0.740 /
# 56.8% (f32) and 0.752 / 55.5% (int8 blocks).
# For the comparison, llama.cpp 0.3.x on the same sequence against its own F32
# (bench/quant.py; its Q4_0 keeps the tied embedding in Q8_0, its K-quants
# fall back to Q5_0/Q8_0 here): F16 0.0001 / 99.4%, BF16 0.0032 / 95.1%,
# Q8_0 0.034 / 89.8%, Q6_K = Q8_0, Q4_0 1.66 / 41.6%, Q4_K_M 0.62 / 60.5%.
# w8a8 (i8 weights per output channel, activations int8 per token; w2's rows
# of 172 and the embedding read as i8 with f32 activations) measured 0.0466 /
# 88.1%, and 0.0306 / 90.2% with activations = f32; w8a8(smooth = 0.5),
# calibrated on 8 sampled sequences apart from the evaluation one, 0.0385 /
# 90.0% and 0.0262 / 91.0%. The test also asks SmoothQuant's KL to stay below
# plain w8a8's (issue #13's target). llm_int8 (threshold 6, calibrated on the
# same sequences: the outlier input channels of the attention inputs of
# layers 1-4 stay f32, 1 to 3 of 64) measured 0.0436 / 88.5%, also asked to
# stay below plain w8a8's; with threshold 4 0.0334 / 90.0%, 3 0.0303 / 90.0%,
# 2 0.0204 / 91.2% (--formats='llm_int8(threshold=2)' --measure).
BOUNDS = {  # measured here (--measure) x 1.5 + 0.002, top-1 - 5 points
    ("f16", "q8"): (0.00205, 0.94),
    ("bf16", "q8"): (0.00558, 0.92),
    ("q8_0", "q8"): (0.0528, 0.85),
    ("q8_0", "f32"): (0.0349, 0.86),
    ("q4_0", "q8"): (3.17, 0.31),
    ("q4_0", "f32"): (3.17, 0.31),
    ("q4_k", "q8"): (1.34, 0.49),
    ("q4_k", "f32"): (1.34, 0.49),
    ("q6_k", "q8"): (0.0528, 0.85),
    ("q6_k", "f32"): (0.0349, 0.86),
    ("q4_k_m", "q8"): (0.927, 0.55),
    ("q4_k_m", "f32"): (0.927, 0.55),
    ("q5_0", "q8"): (1.34, 0.49),
    ("q5_0", "f32"): (1.34, 0.49),
    ("w8a8", "q8"): (0.0719, 0.83),
    ("w8a8", "f32"): (0.0478, 0.85),
    ("w8a8(smooth=0.5)", "q8"): (0.0597, 0.85),
    ("w8a8(smooth=0.5)", "f32"): (0.0414, 0.86),
    ("llm_int8", "q8"): (0.0673, 0.83),
    ("gptq", "q8"): (3.04, 0.34),
    ("zeroquant", "q8"): (0.0552, 0.85),
}
# zeroquant (group 64: zq8_64, asymmetric 8-bit groups with zero points,
# activations int8 per token; w2's rows of 172 fall back to f16) measured
# 0.0354 / 89.8%, and 0.0215 / 93.8% with activations = f32 (not run here);
# zeroquant(group = 128) is the same model here (every other row is 64 long:
# its groups fall back to 64).
# gptq (4 bits, group 32, damp 0.01, calibrated on CALIB_SEEDS' sequences:
# H = sum x x^T of each linear's input) measured 2.026 / 39.3% against q4_0's
# 2.113 / 36.1% with every weight 4-bit, the tied embedding / classifier
# included (GPTQ cannot help an embedding lookup: the embedding alone in q4_0
# costs 1.11 of KL). With the tied embedding in q8_0 for both (llama.cpp's
# Q4_0 mix; GPTQ's paper leaves embeddings and the head unquantized), q4_0
# round-to-nearest 1.669 / 41.8%, gptq 1.392 / 44.3% and
# gptq(act_order = true) 1.190 / 51.0% (0.71x). The test asks gptq below
# q4_0 in both settings, and gptq(act_order = true) with the q8_0 embedding
# at most 0.8x q4_0's.
GPTQ_EMB8_RATIO = 0.8
# Part 3, fortune (4 sampled sequences, 4 calibration ones; measured on
# 2026-12-05 with 12 / 24 sequences by bench/sparse24_quality.py: q4_0
# 0.0057, q3_k 0.0171 / 0.0175, gptq 0.0030, gptq(bits = 3) 0.0096, i.e.
# 0.53x and 0.56x of round to nearest; see docs/quantization.md, "GPTQ").
FORTUNE_EVAL_SEEDS = (1, 2, 3, 4)
FORTUNE_CALIB_SEEDS = (1001, 1002, 1003, 1004)
FORTUNE_GPTQ_RATIO = 0.75
FORTUNE_Q3_K_BOUND = 0.03
N_IDS = 511


def fail(msg):
    print(f"test_quant_quality: FAIL: {msg}", flush=True)
    sys.exit(1)


def run(cmd, what):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{what}: exit {p.returncode}: {' '.join(cmd)}\n{p.stderr.strip()[-2000:]}")
    return p.stdout


# ---- the independent oracle: a float64 forward pass of a llama2.c checkpoint ----
def read_llama2c(path):
    with open(path, "rb") as f:
        hdr = np.frombuffer(f.read(28), "<i4")
        data = np.frombuffer(f.read(), "<f4")
    dim, hidden, layers, heads, kv_heads, vocab, seq = (int(x) for x in hdr)
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=abs(vocab), seq=seq)
    hd, kv = dim // heads, kv_heads * (dim // heads)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = data[pos:pos + n].reshape(shape)
        pos += n
        return a

    w = {"tok_embeddings": take(abs(vocab), dim), "attention_norm": take(layers, dim),
         "wq": take(layers, dim, dim), "wk": take(layers, kv, dim), "wv": take(layers, kv, dim),
         "wo": take(layers, dim, dim), "ffn_norm": take(layers, dim), "w1": take(layers, hidden, dim),
         "w2": take(layers, dim, hidden), "w3": take(layers, hidden, dim), "norm": take(dim)}
    take(seq, hd // 2)
    take(seq, hd // 2)
    w["output"] = w["tok_embeddings"] if vocab > 0 else take(abs(vocab), dim)
    return cfg, w


def act_quant(x):
    """x through tfx_act_quant_block and back: per row and block of 32,
    d = amax / 127 and q = rint(x / d) in f32, x' = q d."""
    b = np.asarray(x, np.float32).reshape(x.shape[0], -1, 32)
    d = (np.abs(b).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    idd = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    return (np.rint(b * idd) * d).reshape(x.shape).astype(np.float64)


def forward64(cfg, w, tokens, qact=()):
    """The logits of tokens, in float64; the inputs of the linears whose
    weight is named in qact go through act_quant first."""
    D, H, G, L = cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["layers"]
    hd, T = D // H, len(tokens)
    f = {k: np.asarray(v, np.float64) for k, v in w.items()}

    def lin(x, name, i=None):
        wt = f[name] if i is None else f[name][i]
        return (act_quant(x) if name in qact else x) @ wt.T

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * g

    ang = np.outer(np.arange(T), 1.0 / (10000.0 ** (np.arange(0, hd, 2) / hd)))
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]

    def rope(x, n):  # interleaved pairs (2i, 2i+1)
        x = x.reshape(T, n, hd // 2, 2)
        a, b = x[..., 0], x[..., 1]
        return np.stack((a * cos - b * sin, a * sin + b * cos), -1).reshape(T, n, hd)

    mask = np.triu(np.full((T, T), -np.inf), 1)
    x = f["tok_embeddings"][tokens]
    for i in range(L):
        a = rms(x, f["attention_norm"][i])
        q = rope(lin(a, "wq", i), H)
        k = rope(lin(a, "wk", i), G)
        v = lin(a, "wv", i).reshape(T, G, hd)
        o = np.empty((T, H, hd))
        for h in range(H):
            g = h // (H // G)
            s = q[:, h] @ k[:, g].T / np.sqrt(hd) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            o[:, h] = (p / p.sum(-1, keepdims=True)) @ v[:, g]
        x = x + lin(o.reshape(T, D), "wo", i)
        r = rms(x, f["ffn_norm"][i])
        g1 = lin(r, "w1", i)
        x = x + lin((g1 / (1 + np.exp(-g1))) * lin(r, "w3", i), "w2", i)
    return lin(rms(x, f["norm"]), "output")


# ---- weight-only quantization emulated in numpy (ggml's reference rules) ----
def qdq_q8_0(a):
    b = a.reshape(-1, 32).astype(np.float32)
    d = (np.abs(b).max(1) / 127).astype(np.float32)
    idd = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.rint(b * idd[:, None])
    return (q * d.astype(np.float16).astype(np.float32)[:, None]).reshape(a.shape)


def qdq_q5_0(a):
    b = a.reshape(-1, 32).astype(np.float32)
    mx = b[np.arange(len(b)), np.abs(b).argmax(1)]
    d = (mx / -16).astype(np.float32)
    idd = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.clip(np.floor(b * idd[:, None] + np.float32(16.5)), 0, 31)
    return ((q - 16) * d.astype(np.float16).astype(np.float32)[:, None]).reshape(a.shape)


def qdq_q4_0(a):
    b = a.reshape(-1, 32).astype(np.float32)
    mx = b[np.arange(len(b)), np.abs(b).argmax(1)]
    d = (mx / -8).astype(np.float32)
    idd = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.clip(np.floor(b * idd[:, None] + np.float32(8.5)), 0, 15)
    return ((q - 8) * d.astype(np.float16).astype(np.float32)[:, None]).reshape(a.shape)


def to_bf16(a):  # round to nearest even, as ggml's fp32_to_bf16 (no NaN here)
    u = np.ascontiguousarray(a, np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)


def emulate(w, fmt, embd=None):
    """(weights, names of the linears with quantized activations): every 2-D
    weight in fmt; a block format's rows that 32 does not divide in f16
    (llama.cpp's fallback; on stories260K: w2, 172 inputs); the classifier
    is the token embedding."""
    out, qact = dict(w), set()
    for k, v in w.items():
        if v.ndim < 2 or k == "output":
            continue
        if k == "tok_embeddings" and embd == "q8_0":
            out[k] = qdq_q8_0(v)
            qact.add(k)
            continue
        if fmt == "f16":
            out[k] = v.astype(np.float16).astype(np.float32)
        elif fmt == "bf16":
            out[k] = to_bf16(v)
        elif v.shape[-1] % 32 == 0:
            out[k] = {"q8_0": qdq_q8_0, "q4_0": qdq_q4_0, "q5_0": qdq_q5_0}[fmt](v)
            qact.add(k)
        else:
            out[k] = v.astype(np.float16).astype(np.float32)
    out["output"] = out["tok_embeddings"]
    if "tok_embeddings" in qact:
        qact.add("output")
    return out, qact


def emulate_q4_k_m(w):
    """llama.cpp's Q4_K_M mix on stories260K (rows of 64 and 172 hold no
    super-block): the tied token embedding the output's rule Q6_K -> Q8_0,
    attn_v Q6_K -> Q8_0 in the layers of use_more_bits (2 and 4 of 5) and
    Q4_K -> Q5_0 in the others, wq wk wo w1 w3 Q4_K -> Q5_0, w2 F16. Every
    quantized linear's input through the int8 activation blocks."""
    out, qact = emulate(w, "q5_0", embd="q8_0")
    L = w["wv"].shape[0]
    more = [i < L // 8 or i >= 7 * L // 8 or (i - L // 8) % 3 == 2 for i in range(L)]
    out["wv"] = np.stack([(qdq_q8_0 if more[i] else qdq_q5_0)(w["wv"][i]) for i in range(L)])
    return out, qact


# ---- the measure ----
def log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def compare(ref, got):
    """mean KL(p_ref || p_got) and top-1 agreement over the rows."""
    lp, lq = log_softmax(ref), log_softmax(got)
    kl = (np.exp(lp) * (lp - lq)).sum(-1)
    return float(kl.mean()), float((ref.argmax(-1) == got.argmax(-1)).mean())


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    measure = "--measure" in sys.argv
    formats = FORMATS
    for a in sys.argv[1:]:
        if a.startswith("--formats="):
            formats = a.split("=", 1)[1].split(",")
    if len(args) != 3:
        sys.exit(__doc__)
    tfxc, src, models = args
    models = os.environ.get("TFX_MODELS_DIR") or models
    ckpt = os.path.join(models, "stories260K.bin")
    if not os.path.exists(ckpt):
        fail(f"no {ckpt} (set TFX_MODELS_DIR to the folder holding stories260K.bin)")
    tfx = os.path.join(src, "examples", "llama", "stories260k.tfx")
    tmp = tempfile.mkdtemp(prefix="tfx_quant_quality_")
    atexit.register(shutil.rmtree, tmp, True)
    ids_path = os.path.join(tmp, "ids.txt")
    ids = run([tfxc, "run", tfx, "--weights", ckpt, "-n", str(N_IDS), "--temperature", "0", "--print-ids"],
              "f32 greedy generation").split()
    if len(ids) != N_IDS:
        fail(f"the f32 greedy generation gave {len(ids)} ids, not {N_IDS}")
    with open(ids_path, "w") as f:
        f.write(" ".join(ids) + "\n")
    ids = np.array(ids, np.int64)
    cfg, w = read_llama2c(ckpt)
    vocab = cfg["vocab"]

    def evaluate(model, extra, what):
        out = os.path.join(tmp, "logits.bin")
        txt = run([tfxc, "run", model, "--weights", ckpt, "--eval-ids", ids_path, "--dump-logits", out] + extra,
                  what)
        if not re.search(r"evaluated 511 tokens: mean nll [0-9.]+", txt):
            fail(f"{what}: unexpected output {txt!r}")
        lg = np.fromfile(out, np.float32)
        if lg.size != (N_IDS + 1) * vocab:
            fail(f"{what}: {lg.size} logits, expected {(N_IDS + 1) * vocab}")
        return lg.reshape(N_IDS + 1, vocab)

    # 1. f32 against the float64 oracle and against generation
    f32 = evaluate(tfx, [], "f32 teacher forcing")
    tokens = np.concatenate(([1], ids))
    ref = forward64(cfg, w, tokens)
    err = float(np.abs(f32 - ref).max())
    scale = float(ref.max() - ref.min())
    kl, top1 = compare(ref, f32)
    greedy = float((f32[:-1].argmax(-1) == ids).mean())
    print(f"f32 vs float64 numpy: max |diff| {err:.3g} (logit range {scale:.3g}), mean KL {kl:.3g}, "
          f"top-1 {100 * top1:.1f}%; argmax = greedy ids: {100 * greedy:.1f}%")
    if not err <= 2e-4 * scale or not kl <= 1e-7:
        fail("tfxc's f32 logits differ from the float64 forward pass")
    if greedy < 0.99:
        fail("the teacher-forced f32 logits do not reproduce the greedy generation")

    # the float64 emulation of weight-only Q8_0 / Q4_0 (the reference numbers)
    emul = {}
    for fmt in ("f16", "bf16", "q8_0", "q4_0"):
        wq, qact = emulate(w, fmt)
        for act in ("f32", "q8") if qact else ("f32",):
            emul[fmt, act] = compare(ref, forward64(cfg, wq, tokens, qact if act == "q8" else ()))
            print(f"float64 emulation, {fmt} weights{' (rows of 172: f16)' if qact else ''}, activations {act}: "
                  f"mean KL {emul[fmt, act][0]:.4f}, top-1 {100 * emul[fmt, act][1]:.1f}%")

    for fmt in ("q5_0",):
        wq, qact = emulate(w, fmt)
        for act in ("f32", "q8"):
            emul[fmt, act] = compare(ref, forward64(cfg, wq, tokens, qact if act == "q8" else ()))
            print(f"float64 emulation, {fmt} weights (rows of 172: f16), activations {act}: "
                  f"mean KL {emul[fmt, act][0]:.4f}, top-1 {100 * emul[fmt, act][1]:.1f}%")
    wq, qact = emulate_q4_k_m(w)
    for act in ("f32", "q8"):
        emul["q4_k_m", act] = compare(ref, forward64(cfg, wq, tokens, qact if act == "q8" else ()))
        print(f"float64 emulation, llama.cpp's Q4_K_M mix here (Q5_0, Q8_0, F16), activations {act}: "
              f"mean KL {emul['q4_k_m', act][0]:.4f}, top-1 {100 * emul['q4_k_m', act][1]:.1f}%")

    wq, qact = emulate(w, "q4_0", embd="q8_0")
    e = compare(ref, forward64(cfg, wq, tokens, qact))
    print(f"float64 emulation, q4_0 weights with the tied embedding in q8_0 (llama.cpp's Q4_0 mix here), "
          f"activations q8: mean KL {e[0]:.4f}, top-1 {100 * e[1]:.1f}%")

    # 2. the formats
    with open(tfx) as f:
        src_text = f.read()
    act_f32 = os.path.join(tmp, "stories260k_act_f32.tfx")
    with open(act_f32, "w") as f:  # the same model with f32 activations
        f.write(src_text.replace("schedule {", "schedule {\n  activations = f32", 1))
    rows, failed = [], []
    calib = None
    if any("smooth" in f or "llm_int8" in f or "gptq" in f for f in formats):
        seqs = []
        for seed in CALIB_SEEDS:
            out = run([tfxc, "run", tfx, "--weights", ckpt, "-n", "255", "--temperature", "0.9", "--seed", str(seed),
                       "--print-ids"], "calibration sequence")
            path = os.path.join(tmp, f"calib{seed}.txt")
            with open(path, "w") as f:
                f.write(out.split("\n")[-2] if out.endswith("\n") else out.split("\n")[-1])
            seqs.append(path)
        calib = os.path.join(tmp, "stories260k.calib")
        run([tfxc, "calibrate", tfx, "--weights", ckpt, "--tokens"] + seqs + ["-o", calib], "tfxc calibrate")
    for fmt in formats:
        for act in (["q8", "f32"] if fmt in BLOCK else ["q8"]):
            model = act_f32 if act == "f32" else tfx
            extra = ["--quantize", fmt] + (["--calibration", calib]
                                           if "smooth" in fmt or "llm_int8" in fmt or "gptq" in fmt else [])
            lg = evaluate(model, extra, f"--quantize {fmt}, activations {act}")
            kl, top1 = compare(f32, lg)
            lim = BOUNDS.get((fmt, act), (float("inf"), 0.0))
            ok = kl <= lim[0] and top1 >= lim[1]
            note = ""
            if (fmt, "f32" if fmt in ("f16", "bf16") else act) in emul:
                ek = emul[fmt, "f32" if fmt in ("f16", "bf16") else act][0]
                ok = ok and kl <= 1.5 * ek + 0.01
                note = f"; emulation {ek:.4f}, bound 1.5x + 0.01"
            rows.append((fmt, act, kl, top1))
            print(f"{fmt:7s} activations {act:3s}: mean KL {kl:.4f}, top-1 {100 * top1:.1f}% "
                  f"(bounds KL <= {lim[0]}, top-1 >= {100 * lim[1]:.0f}%{note})" + ("" if ok else "  <-- FAIL"),
                  flush=True)
            if not ok:
                failed.append(f"{fmt}/{act}")
    klof = {(f, a): k for f, a, k, _ in rows}
    if ("w8a8", "q8") in klof and ("llm_int8", "q8") in klof:
        ok = klof["llm_int8", "q8"] < klof["w8a8", "q8"]
        print(f"llm_int8 below plain w8a8: {klof['llm_int8', 'q8']:.4f} < {klof['w8a8', 'q8']:.4f}"
              + ("" if ok else "  <-- FAIL"))
        if not ok:
            failed.append("llm_int8 not below w8a8")
    if ("w8a8", "q8") in klof and ("w8a8(smooth=0.5)", "q8") in klof:
        ok = klof["w8a8(smooth=0.5)", "q8"] < klof["w8a8", "q8"]
        print(f"SmoothQuant below plain w8a8: {klof['w8a8(smooth=0.5)', 'q8']:.4f} < {klof['w8a8', 'q8']:.4f}"
              + ("" if ok else "  <-- FAIL"))
        if not ok:
            failed.append("w8a8(smooth=0.5) not below w8a8")
    if ("q4_0", "q8") in klof and ("gptq", "q8") in klof:
        ok = klof["gptq", "q8"] < klof["q4_0", "q8"]
        print(f"gptq below round-to-nearest q4_0: {klof['gptq', 'q8']:.4f} < {klof['q4_0', 'q8']:.4f}"
              + ("" if ok else "  <-- FAIL"))
        if not ok:
            failed.append("gptq not below q4_0")
        # the tied embedding / classifier in q8_0 for both (llama.cpp's Q4_0 mix)
        emb8 = os.path.join(tmp, "stories260k_emb_q8_0.tfx")
        with open(emb8, "w") as f:
            f.write(src_text + '\nquantize {\n  "tok_embeddings" = q8_0\n}\n')
        kls = {}
        for fmt in ("q4_0", "gptq", "gptq(act_order=true)"):
            extra = ["--quantize", fmt] + (["--calibration", calib] if "gptq" in fmt else [])
            kls[fmt], top1 = compare(f32, evaluate(emb8, extra, f"--quantize {fmt}, tok_embeddings q8_0"))
            print(f"{fmt}, tok_embeddings q8_0, activations q8: mean KL {kls[fmt]:.4f}, top-1 {100 * top1:.1f}%")
        r = kls["gptq(act_order=true)"] / kls["q4_0"]
        ok = kls["gptq"] < kls["q4_0"] and r <= GPTQ_EMB8_RATIO
        print(f"gptq with the tied embedding in q8_0: {kls['gptq']:.4f} and (act_order) {kls['gptq(act_order=true)']:.4f}"
              f" against q4_0's {kls['q4_0']:.4f}: {r:.3f}x (bound {GPTQ_EMB8_RATIO}x)" + ("" if ok else "  <-- FAIL"))
        if not ok:
            failed.append("gptq with a q8_0 embedding")
    if not any(a.startswith("--formats=") for a in sys.argv[1:]):
        failed += fortune_low_bits(tfxc, src, tmp, measure)
    if measure:
        print("\nsuggested BOUNDS (measured KL x 1.5 + 0.002, top-1 - 5 points):")
        for fmt, act, kl, top1 in rows:
            print(f'    ("{fmt}", "{act}"): ({kl * 1.5 + 0.002:.3g}, {max(0.0, top1 - 0.05):.2f}),')
        return
    if failed:
        fail("out of bounds: " + ", ".join(failed))
    print(f"test_quant_quality: {1 + len(rows)} passed, 0 failed")


def fortune_low_bits(tfxc, src, tmp, measure):
    """Part 3: GPTQ against round to nearest at 3 and 4 bits on examples/fortune."""
    tfx = os.path.join(src, "examples", "fortune", "fortune.tfx")
    so = os.path.join(tmp, "fortune_f32.so")
    run([tfxc, tfx, "-o", so], "fortune: compile f32")

    def sample(seed):
        path = os.path.join(tmp, f"fortune_{seed}.txt")
        with open(path, "w") as f:
            f.write(run([tfxc, "run", so, "-n", "255", "--temperature", "0.9", "--seed", str(seed), "--print-ids"],
                        "fortune: sample"))
        return path

    evals = [sample(s) for s in FORTUNE_EVAL_SEEDS]
    calib = os.path.join(tmp, "fortune.calib")
    run([tfxc, "calibrate", tfx, "--tokens"] + [sample(s) for s in FORTUNE_CALIB_SEEDS] + ["-o", calib],
        "fortune: tfxc calibrate")

    def log_probs(model, what):
        out, rows = os.path.join(tmp, "fortune_logits.bin"), []
        for path in evals:
            run([tfxc, "run", model, "--eval-ids", path, "--dump-logits", out], what)
            rows.append(log_softmax(np.fromfile(out, np.float32).reshape(-1, 1024)))
        return np.concatenate(rows)

    ref = log_probs(so, "fortune: f32")
    kl = {}
    for fmt in ("q4_0", "gptq", "q3_k", "gptq(bits = 3)"):
        qso = os.path.join(tmp, "fortune_q.so")
        run([tfxc, tfx, "-o", qso, "--quantize", fmt] + (["--calibration", calib] if "gptq" in fmt else []),
            f"fortune: compile {fmt}")
        lq = log_probs(qso, f"fortune: {fmt}")
        kl[fmt] = float((np.exp(ref) * (ref - lq)).sum(-1).mean())
        top1 = float((ref.argmax(-1) == lq.argmax(-1)).mean())
        print(f"fortune {fmt:15s}: mean KL {kl[fmt]:.5f}, top-1 {100 * top1:.1f}% ({len(ref)} rows)", flush=True)
    failed = []
    for gptq, rtn in (("gptq", "q4_0"), ("gptq(bits = 3)", "q3_k")):
        r = kl[gptq] / kl[rtn]
        ok = r <= FORTUNE_GPTQ_RATIO
        print(f"fortune: {gptq} {r:.3f}x of round-to-nearest {rtn} (bound {FORTUNE_GPTQ_RATIO}x)"
              + ("" if ok else "  <-- FAIL"))
        if not ok and not measure:
            failed.append(f"fortune {gptq}")
    if kl["q3_k"] > FORTUNE_Q3_K_BOUND and not measure:
        print(f"fortune: q3_k mean KL {kl['q3_k']:.5f} above {FORTUNE_Q3_K_BOUND}  <-- FAIL")
        failed.append("fortune q3_k")
    return failed


if __name__ == "__main__":
    main()
