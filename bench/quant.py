"""bench/quant.py — the quantized rows of the benchmark (issue #11): tfxc and
llama.cpp at each weight format, on the same random weights, plus llama.cpp's
quality on stories260K. Run by bench/run.sh with TFXC_BENCH_ONLY=quant (or
...,quant), which calls `rows()` from bench/run.py; the subcommands below are
the separate processes each measurement runs in.

Weights. Per shape (SHAPES: stories110M and TinyLlama-1.1B, random normal
weights std 0.02), one llama2.c checkpoint (what tfxc compiles today, with
`--quantize FMT`) and one F32 GGUF of the same numbers (bench/weights.py's
writer: llama metadata and a placeholder vocabulary); llama.cpp's model of
each format is that GGUF through its own quantizer,
`llama_cpp.llama_model_quantize` (ftype Q8_0, Q4_0, Q4_K_M, BF16, Q3_K_S; no imatrix).

Rows, 2 threads (TFXC_BENCH_THREADS): pp128 and tg64 t/s of tfxc
(bench/bench.c `model`) and llama.cpp (libllama through llama-cpp-python, as
bench/peers.py), their ratio, and tfxc's tg against the paired bandwidth
roofline (bench.c `roofline`: a triad and a read-only pass right before each tg
run). Bytes per decoded token: tfxc's weight blob (the model's descriptor,
`weights_bytes`) less the token embedding table when the classifier is
untied (its size taken from llama.cpp's file of the format: one row is
read), plus the mean f32 KV cache over the tg run; llama.cpp's, reported
beside it, every tensor of its GGUF but an untied embedding table.

Quality on stories260K (as `llama-perplexity --kl-divergence`): BOS + the 511
ids of tfxc's f32 greedy generation are evaluated in one batch with every
position's logits (llama.cpp) / `tfxc run --eval-ids` (tfxc), and each format
is compared with the same engine's f32: mean KL(p_f32 || p_fmt) and top-1
agreement over the 512 positions; tfxc also reads llama.cpp's file of each
format (Q4_K_M holds Q5_0 tensors here), and tfxc's own tensors of each format
(`--quantize FMT --emit-gguf`) are compared with llama.cpp's, type and bytes.
And the greedy ids of tfxc and llama.cpp on the same Q8_0 weights.

Issue #13's methods (METHODS: w8a8, w8a8(smooth=0.5), llm_int8, gptq,
gptq(bits=3), zeroquant, ternary, sparse24(f32), sparse24(q8_0)), tfxc only:
pp128 / tg64 on the stories110M shape, each against the row of this run the
issue compares it with (w8a8 and its variants and sparse24(f32): f32; gptq:
q4_0; gptq(bits=3): q3_k; zeroquant and sparse24(q8_0): q8_0; ternary: q4_0),
the tied table in that row's format where the method cannot take it (ternary:
q4_0, sparse24(q8_0): q8_0; a quantize { } rule); the methods that need
calibration are calibrated with `tfxc calibrate` on two sampled sequences of
64 tokens of the random model (for speed only). And mean KL / top-1 on stories260K against
tfxc's f32 over the quality rows' ids, calibrated on 8 sampled sequences
(tests/quant/quality.py's seeds, never the evaluated ids).

Subcommands (each prints one JSON object):
  quant.py random-ckpt SHAPE OUT.bin              random llama2.c checkpoint
  quant.py quantize IN.gguf OUT.gguf FTYPE         llama.cpp's quantizer (Q8_0 ...)
  quant.py bytes GGUF TIED                         bytes one decoded token reads
  quant.py llamacpp GGUF THREADS REPS PP TG        llama.cpp pp/tg
  quant.py logits GGUF IDS.txt OUT.bin             llama.cpp's logits of BOS + ids
  quant.py greedy GGUF N                           llama.cpp's greedy ids from BOS
  quant.py same-tensors TFXC.gguf LLAMA.gguf       tfxc's tensors (--emit-gguf) vs llama.cpp's
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

SHAPES = {
    "stories110m": dict(dim=768, hidden=2048, layers=12, heads=12, kv_heads=12, vocab=32000, seq_len=1024,
                        shared=True),
    "tinyllama": dict(dim=2048, hidden=5632, layers=22, heads=32, kv_heads=4, vocab=32000, seq_len=2048,
                      shared=False),
}
# tfxc's --quantize name -> llama.cpp's file type
# (q3_k against Q3_K_S, llama.cpp's all-Q3_K mix for the layers; its output / tied table goes to Q6_K, tfxc's
# stays q3_k unless a rule says otherwise: each row reports llama.cpp's mix and both engines' bytes per token.)
# TFXC_BENCH_QUANT_FORMATS (e.g. "f32 q8_0") runs a subset.
FORMATS = {"f32": None, "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_k_m": "Q4_K_M", "bf16": "BF16", "q3_k": "Q3_K_S"}
if os.environ.get("TFXC_BENCH_QUANT_FORMATS"):
    FORMATS = {f: FORMATS[f] for f in os.environ["TFXC_BENCH_QUANT_FORMATS"].split() if f in FORMATS}
# issue #13's methods (tfxc only: llama.cpp has no such choice), on the stories110M shape and for quality on
# stories260K: (--quantize, the tied embedding / classifier's format by a quantize { } rule or None, calibration,
# the tfxc row of this run the issue compares it with). The lowbit formats never go to the tied table (it would
# stay f32), so ternary and sparse24(q8_0) take their baseline's table format. TFXC_BENCH_QUANT_METHODS (e.g.
# "w8a8 ternary", or "none") runs a subset.
METHODS = [("w8a8", None, False, "f32"), ("w8a8(smooth=0.5)", None, True, "f32"), ("llm_int8", None, True, "f32"),
           ("gptq", None, True, "q4_0"), ("gptq(bits=3)", None, True, "q3_k"), ("zeroquant", None, False, "q8_0"),
           ("ternary", "q4_0", False, "q4_0"), ("sparse24(f32)", None, False, "f32"),
           ("sparse24(q8_0)", "q8_0", False, "q8_0")]
if os.environ.get("TFXC_BENCH_QUANT_METHODS"):
    METHODS = [m for m in METHODS if m[0] in os.environ["TFXC_BENCH_QUANT_METHODS"].split()]
CALIB_SEEDS = (11, 12, 13, 14, 15, 16, 17, 18)  # tests/quant/quality.py's: sampled, never the evaluated ids
QUALITY_FORMATS = {"f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0", "q5_0": "Q5_0", "q6_k": "Q6_K",
                   "q4_k_m": "Q4_K_M"}
N_QUALITY = 511


# llama.cpp's tensor names -> the params of tfx_source's model
GGUF_RENAME = """rename {
  "token_embd.weight" = "tok_embeddings"
  "blk.{i}.attn_norm.weight" = "layers.{i}.attention_norm"
  "blk.{i}.attn_q.weight" = "layers.{i}.wq"
  "blk.{i}.attn_k.weight" = "layers.{i}.wk"
  "blk.{i}.attn_v.weight" = "layers.{i}.wv"
  "blk.{i}.attn_output.weight" = "layers.{i}.wo"
  "blk.{i}.ffn_norm.weight" = "layers.{i}.ffn_norm"
  "blk.{i}.ffn_gate.weight" = "layers.{i}.w1"
  "blk.{i}.ffn_down.weight" = "layers.{i}.w2"
  "blk.{i}.ffn_up.weight" = "layers.{i}.w3"
  "output_norm.weight" = "norm"
  "output.weight" = "output"
}"""


def tfx_source(shape, cfg, gguf_path=None):
    """The .tfx of a shape (the stories110M example's model, with the shape's
    constants and an untied classifier where the checkpoint has one). With
    gguf_path, it reads that GGUF (llama.cpp's names; the GGUFs here keep
    llama2.c's interleaved RoPE pairs: bench/weights.py)."""
    c = cfg
    out = "tok_embeddings" if c["shared"] else "output"
    extra = "" if c["shared"] else "param output         : f32[vocab, dim]\n"
    wst = f'weights "{gguf_path}" format gguf {GGUF_RENAME}\n' if gguf_path else ""
    return f"""# generated by bench/quant.py: the {shape} shape
model {shape}
const dim = {c['dim']}, layers = {c['layers']}, heads = {c['heads']}, kv_heads = {c['kv_heads']}, hidden = {c['hidden']}
const vocab = {c['vocab']}, max_seq = {c['seq_len']}, head_dim = dim / heads
const eps = 1e-5
{wst}param tok_embeddings : f32[vocab, dim]
param norm           : f32[dim]
{extra}
block layer(x : f32[T, dim]) -> f32[T, dim] {{
  param attention_norm : f32[dim]
  param wq : f32[heads * head_dim, dim]
  param wk : f32[kv_heads * head_dim, dim]
  param wv : f32[kv_heads * head_dim, dim]
  param wo : f32[dim, heads * head_dim]
  param ffn_norm : f32[dim]
  param w1 : f32[hidden, dim]
  param w2 : f32[dim, hidden]
  param w3 : f32[hidden, dim]
  a = rmsnorm(x, attention_norm, eps = eps)
  h = x + attention(a, wq, wk, wv, wo, heads = heads, kv_heads = kv_heads,
                    position = rope(theta = 10000, style = interleaved), mask = causal)
  f = rmsnorm(h, ffn_norm, eps = eps)
  return h + linear(silu(linear(f, w1)) * linear(f, w3), w2)
}}

forward(tokens : i32[T]) -> f32[T, vocab] {{
  x = embedding(tok_embeddings, tokens)
  x = repeat(layers) layer(x)
  return linear(rmsnorm(x, norm, eps = eps), {out})
}}
"""


def write_random_ckpt(path, cfg, seed=1100):
    """A llama2.c checkpoint (negative vocab: untied classifier appended),
    normal weights std 0.02, norm gains 1; written layer-kind by layer-kind
    without holding the whole model in memory."""
    rng = np.random.default_rng(seed)
    d, h, L, V = cfg["dim"], cfg["hidden"], cfg["layers"], cfg["vocab"]
    hd = d // cfg["heads"]
    kv = cfg["kv_heads"] * hd

    def rnd(f, *shape):
        for _ in range(shape[0]):
            (rng.standard_normal(shape[1:], dtype=np.float32) * np.float32(0.02)).astype("<f4").tofile(f)

    with open(path, "wb") as f:
        f.write(struct.pack("<7i", d, h, L, cfg["heads"], cfg["kv_heads"], V if cfg["shared"] else -V,
                            cfg["seq_len"]))
        rnd(f, 1, V, d)
        np.ones((L, d), "<f4").tofile(f)
        rnd(f, L, d, d)
        rnd(f, L, kv, d)
        rnd(f, L, kv, d)
        rnd(f, L, d, d)
        np.ones((L, d), "<f4").tofile(f)
        rnd(f, L, h, d)
        rnd(f, L, d, h)
        rnd(f, L, h, d)
        np.ones(d, "<f4").tofile(f)
        freqs = 1.0 / (10000.0 ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        ang = np.outer(np.arange(cfg["seq_len"]), freqs)
        np.cos(ang).astype("<f4").tofile(f)
        np.sin(ang).astype("<f4").tofile(f)
        if not cfg["shared"]:
            rnd(f, 1, V, d)


def quantize(src, dst, ftype):
    import llama_cpp as lc

    lc.llama_backend_init()
    p = lc.llama_model_quantize_default_params()
    p.ftype = getattr(lc, "LLAMA_FTYPE_MOSTLY_" + ftype)
    p.nthread = 2
    rc = lc.llama_model_quantize(src.encode(), (dst + ".tmp").encode(), p)
    if rc != 0:
        sys.exit(f"llama_model_quantize({src}, {ftype}) returned {rc}")
    os.replace(dst + ".tmp", dst)


def gguf_types(path):
    """{tensor name: (type name, bytes)} of a GGUF file."""
    import gguf

    r = gguf.GGUFReader(path)
    return {t.name: (t.tensor_type.name, int(t.n_bytes)) for t in r.tensors}


def bytes_per_token(path, tied):
    """The weight bytes one decoded token reads from llama.cpp's GGUF: every
    tensor, but the token embedding table only for a tied classifier (else
    one row, negligible)."""
    tt = gguf_types(path)
    total = sum(b for n, (_, b) in tt.items() if n != "token_embd.weight" or tied)
    mix = {}
    for n, (t, b) in tt.items():
        mix[t] = mix.get(t, 0) + b
    return total, mix, tt.get("token_embd.weight", (None, 0))[1]


def so_bytes(path):
    """weights_bytes and kv_bytes of a compiled tfxc model (its descriptor,
    include/tfx/abi.h: tfx_model_desc)."""
    import ctypes

    lib = ctypes.CDLL(os.path.abspath(path))
    d = ctypes.c_char.in_dll(lib, "tfx_model_descriptor_data")
    raw = ctypes.string_at(ctypes.addressof(d), 64)
    magic, abi = struct.unpack_from("<II", raw, 0)
    arena, kv, weights = struct.unpack_from("<QQQ", raw, 40)
    return {"weights_bytes": weights, "kv_bytes": kv, "arena_bytes": arena, "abi": abi}


def renames():
    """GGUF_RENAME as (regex, replacement) pairs: llama.cpp's names -> params'."""
    import re

    out = []
    for line in GGUF_RENAME.splitlines()[1:-1]:
        a, b = re.findall(r'"([^"]*)"', line)
        out.append((re.escape(a).replace(r"\{i\}", r"(\d+)"), b.replace("{i}", r"\1")))
    return out


def same_tensors(tfxc_gguf, llama_gguf):
    """tfxc's --emit-gguf of a model against llama.cpp's GGUF of the same f32
    weights: per tensor (llama.cpp's names renamed to the params'), the same
    ggml type, and the same bytes (both use ggml's reference quantizers)."""
    import re

    import gguf

    ours = {t.name: t for t in gguf.GGUFReader(tfxc_gguf).tensors}
    rn = renames()
    n = same_type = same_bytes = 0
    differ = []
    for t in gguf.GGUFReader(llama_gguf).tensors:
        name = next((re.sub(a, b, t.name) for a, b in rn if re.fullmatch(a, t.name)), t.name)
        n += 1
        o = ours.get(name)
        if o is None:
            differ.append(f"{t.name}: not in tfxc's file")
            continue
        if o.tensor_type != t.tensor_type:
            differ.append(f"{name}: llama.cpp {t.tensor_type.name}, tfxc {o.tensor_type.name}")
            continue
        same_type += 1
        if np.array_equal(np.asarray(o.data).view(np.uint8).reshape(-1), np.asarray(t.data).view(np.uint8).reshape(-1)):
            same_bytes += 1
        else:
            differ.append(f"{name}: {t.tensor_type.name}, other bytes")
    return {"tensors": n, "same_type": same_type, "same_bytes": same_bytes, "tfxc_tensors": len(ours),
            "differ": differ}


def llamacpp_bench(path, threads, reps, pp, tg):
    from peers import bench_llamacpp

    return bench_llamacpp(path, threads, reps, pp, tg)


def llamacpp_logits(path, ids):
    """llama.cpp's logits at every position of BOS + ids, one batch."""
    import llama_cpp as lc
    from peers import LlamaCpp

    toks = [1] + list(ids)
    n = len(toks)
    m = LlamaCpp(path, 2, n_ctx=n)
    m.clear()
    b = lc.llama_batch_init(n, 0, 1)
    try:
        for i, t in enumerate(toks):
            b.token[i] = t
            b.pos[i] = i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1
        b.n_tokens = n
        rc = lc.llama_decode(m.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        out = np.empty((n, m.vocab), np.float32)
        for i in range(n):
            out[i] = np.ctypeslib.as_array(lc.llama_get_logits_ith(m.ctx, i), shape=(m.vocab,))
    finally:
        lc.llama_batch_free(b)
    return out


def compare(ref, got):
    """mean KL(p_ref || p_got) (natural log) and top-1 agreement over the rows."""
    def ls(x):
        x = np.asarray(x, np.float64)
        mx = x.max(-1, keepdims=True)
        return x - mx - np.log(np.exp(x - mx).sum(-1, keepdims=True))
    lp, lq = ls(ref), ls(got)
    return float((np.exp(lp) * (lp - lq)).sum(-1).mean()), float((ref.argmax(-1) == got.argmax(-1)).mean())


# ------------------------------------------------------------ orchestration ----
def tfxc_has_quantize(tfxc):
    p = subprocess.run([tfxc, "--help"], capture_output=True, text=True)
    return "--quantize" in p.stdout


def rows(ctx):
    """The quantized rows, in the run of bench/run.py. ctx: run_json(cmd,
    threads), log(msg), errors (list), BENCH (bench.c binary), BUILD, WORK,
    PY (the bench venv's python), threads, reps, PP, TG, TRIAD_MIB, models
    (TFX_MODELS_DIR), shapes (names). Returns the dict stored as
    results.json's "quant"."""
    run_json, log, errors = ctx["run_json"], ctx["log"], ctx["errors"]
    W, PY, tfxc = ctx["WORK"], ctx["PY"], os.path.join(ctx["BUILD"], "tfxc")
    me = os.path.join(HERE, "quant.py")
    has_q = tfxc_has_quantize(tfxc)
    if not has_q:
        errors.append("quant: this tfxc has no --quantize: the tfxc quantized rows were not measured "
                      "(llama.cpp's rows and tfxc's f32 rows were)")
    out = {"tfxc_has_quantize": has_q, "speed": [], "quality": {}, "greedy_q8_0": {}}

    def sh(cmd, what, timeout=7200):
        log(what)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            errors.append(f"{what} failed ({p.returncode}): {p.stderr.strip()[-400:]}")
            log(errors[-1])
            return None
        return p.stdout

    for shape in ctx["shapes"]:
        cfg = SHAPES[shape]
        ckpt = os.path.join(W, f"q_{shape}.bin")
        f32 = os.path.join(W, f"q_{shape}.f32.gguf")
        tfx = os.path.join(W, f"q_{shape}.tfx")
        if shape == "stories110m" and os.path.exists(os.path.join(W, "stories110m.bin")):
            ckpt = os.path.join(W, "stories110m.bin")  # run.sh's weights: the f32 rows' numbers
        if not os.path.exists(ckpt):
            if sh([PY, me, "random-ckpt", shape, ckpt], f"quant: writing random {shape} weights") is None:
                continue
        if not os.path.exists(f32) or os.path.getmtime(f32) < os.path.getmtime(ckpt):
            if sh([PY, os.path.join(HERE, "weights.py"), "gguf", ckpt, f32], f"quant: writing {shape} F32 GGUF") is None:
                continue
        with open(tfx, "w") as f:
            f.write(tfx_source(shape, cfg))
        for fmt, ftype in FORMATS.items():
            if not ftype and shape != "stories110m":
                continue  # the f32 baseline row: stories110M only (TinyLlama's f32 is 4.4 GB)
            gg = os.path.join(W, f"q_{shape}.{ftype}.gguf") if ftype else f32
            if ftype and (not os.path.exists(gg) or os.path.getmtime(gg) < os.path.getmtime(f32)):
                if sh([PY, me, "quantize", f32, gg, ftype], f"quant: llama.cpp quantizes {shape} to {ftype}") is None:
                    continue
            bpt = sh([PY, me, "bytes", gg, "1" if cfg["shared"] else "0"], f"quant: bytes of {shape} {fmt}")
            bpt = json.loads(bpt) if bpt else None
            so = os.path.join(W, f"q_{shape}.{fmt}.so")
            built = False
            if has_q or not ftype:
                built = sh([tfxc, tfx, "--weights", ckpt, "-o", so] + (["--quantize", fmt] if ftype else []),
                           f"quant: tfxc compiles {shape} ({fmt})") is not None
            tfxc_bpt = None
            if built:  # tfxc's own bytes: its blob, less the embedding table when the classifier is untied
                sb = sh([PY, me, "so-bytes", so], f"quant: weight bytes of tfxc's {shape} {fmt}")
                if sb and bpt:
                    tfxc_bpt = json.loads(sb)["weights_bytes"] - (0 if cfg["shared"] else bpt["token_embd_bytes"])
            for t in ctx["threads"]:
                row = {"model": shape, "format": fmt, "threads": t, "pp": ctx["PP"], "tg": ctx["TG"],
                       "llamacpp_gguf_mix": bpt and bpt["mix"], "weight_bytes_per_token": bpt and bpt["bytes"],
                       "tfxc_weight_bytes_per_token": tfxc_bpt}
                log(f"quant: {shape} {fmt}: llama.cpp {ftype or 'F32'}, {t} thread(s)")
                r = run_json([PY, me, "llamacpp", gg, str(t), str(ctx["reps"]), str(ctx["PP"]), str(ctx["TG"])], t)
                row["llamacpp"] = r and {"pp_tps": r["pp_tps"], "tg_tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
                if built:
                    log(f"quant: {shape} {fmt}: tfxc, {t} thread(s)")
                    r = run_json([ctx["BENCH"], "model", so, str(t), str(ctx["reps"]), str(ctx["PP"]),
                                  str(ctx["TG"])], t)
                    row["tfxc"] = r and {"pp_tps": r["pp_tps"], "tg_tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
                    r = run_json([ctx["BENCH"], "roofline", so, str(t), str(ctx["reps"]), str(ctx["TG"]),
                                  str(ctx["TRIAD_MIB"])], t)
                    row["tfxc_paired"] = r and {k: r[k] for k in ("tg_tps", "triad_gbs", "read_gbs", "others_cpu")}
                    if r and tfxc_bpt:
                        hd = cfg["dim"] // cfg["heads"]
                        kvb = 2 * cfg["layers"] * cfg["kv_heads"] * hd * 4 * (ctx["TG"] + 1) / 2
                        per = tfxc_bpt + kvb
                        fr = sorted(x * per / (g * 1e9) for x, g in zip(r["tg_tps"], r["triad_gbs"]))
                        row["tfxc_paired_fraction"] = fr[len(fr) // 2]
                        row["kv_bytes_per_token_mean"] = kvb
                        row["roofline_tps"] = sorted(g * 1e9 / per for g in r["triad_gbs"])[len(fr) // 2]
                out["speed"].append(row)

    # quality on stories260K: llama.cpp's formats against its own F32
    b260 = os.path.join(ctx["models"], "stories260K.bin")
    if os.path.exists(b260):
        ids = os.path.join(W, "q_stories260k.ids.txt")
        tfx260 = os.path.join(ROOT, "examples", "llama", "stories260k.tfx")
        txt = sh([tfxc, "run", tfx260, "--weights", b260, "-n", str(N_QUALITY), "--temperature", "0",
                  "--print-ids"], "quant: stories260K f32 greedy ids (tfxc)")
        f32 = os.path.join(W, "q_stories260k.f32.gguf")
        if txt and sh([PY, os.path.join(HERE, "weights.py"), "gguf", b260, f32],
                      "quant: stories260K F32 GGUF") is not None:
            with open(ids, "w") as f:
                f.write(txt)
            ref = os.path.join(W, "q_stories260k.F32.logits")
            sh([PY, me, "logits", f32, ids, ref], "quant: llama.cpp F32 logits")
            # tfxc reading llama.cpp's own files (GGUF reader): the same bits
            with open(b260, "rb") as fh:
                d, hdn, nl, nh, nkv, voc, seq = struct.unpack("<7i", fh.read(28))
            c260 = dict(dim=d, hidden=hdn, layers=nl, heads=nh, kv_heads=nkv, vocab=abs(voc), seq_len=seq,
                        shared=voc > 0)
            tfx_gguf = os.path.join(W, "q_stories260k_gguf.tfx")
            with open(tfx_gguf, "w") as fh:
                fh.write(tfx_source("stories260k_gguf", c260, f32))
            gref = os.path.join(W, "q_stories260k.tfxc_gguf_F32.logits")
            reads_gguf = sh([tfxc, "run", tfx_gguf, "--eval-ids", ids, "--dump-logits", gref],
                            "quant: tfxc reads the F32 GGUF") is not None
            out["tfxc_reads_gguf"] = reads_gguf
            for fmt, ftype in QUALITY_FORMATS.items():
                gg = os.path.join(W, f"q_stories260k.{ftype}.gguf")
                lg = os.path.join(W, f"q_stories260k.{ftype}.logits")
                if sh([PY, me, "quantize", f32, gg, ftype], f"quant: llama.cpp quantizes stories260K to {ftype}") \
                        is None or sh([PY, me, "logits", gg, ids, lg], f"quant: llama.cpp {ftype} logits") is None:
                    continue
                q = {"llamacpp": None, "tfxc": None}
                try:
                    a = np.fromfile(ref, np.float32).reshape(N_QUALITY + 1, -1)
                    b = np.fromfile(lg, np.float32).reshape(N_QUALITY + 1, -1)
                    kl, top1 = compare(a, b)
                    q["llamacpp"] = {"kl": kl, "top1": top1}
                    bpt = json.loads(sh([PY, me, "bytes", gg, "1"], "quant: stories260K mix") or "null")
                    q["llamacpp_gguf_mix"] = bpt and bpt["mix"]
                except Exception as e:  # noqa: BLE001
                    errors.append(f"quant: quality {ftype}: {e}")
                if has_q:  # tfxc's tensors of the format (--emit-gguf) against llama.cpp's
                    emitted = os.path.join(W, f"q_stories260k.tfxc_{fmt}.gguf")
                    if sh([tfxc, tfx260, "--weights", b260, "--quantize", fmt, "--emit-gguf", emitted],
                          f"quant: tfxc --quantize {fmt} --emit-gguf") is not None:
                        st = sh([PY, me, "same-tensors", emitted, gg], f"quant: tfxc's {fmt} tensors vs llama.cpp's")
                        q["same_tensors"] = st and json.loads(st)
                    mine = os.path.join(W, f"q_stories260k.tfxc_{fmt}.logits")
                    mref = os.path.join(W, "q_stories260k.tfxc_f32.logits")
                    if not os.path.exists(mref) or os.path.getmtime(mref) < os.path.getmtime(ids):
                        sh([tfxc, "run", tfx260, "--weights", b260, "--eval-ids", ids, "--dump-logits", mref],
                           "quant: tfxc f32 logits")
                    if sh([tfxc, "run", tfx260, "--weights", b260, "--quantize", fmt, "--eval-ids", ids,
                           "--dump-logits", mine], f"quant: tfxc {fmt} logits") is not None:
                        a = np.fromfile(mref, np.float32).reshape(N_QUALITY + 1, -1)
                        b = np.fromfile(mine, np.float32).reshape(N_QUALITY + 1, -1)
                        kl, top1 = compare(a, b)
                        q["tfxc"] = {"kl": kl, "top1": top1}
                if reads_gguf:
                    mine = os.path.join(W, f"q_stories260k.tfxc_gguf_{ftype}.logits")
                    if sh([tfxc, "run", tfx_gguf, "--weights", gg, "--eval-ids", ids, "--dump-logits", mine],
                          f"quant: tfxc reads llama.cpp's {ftype} GGUF") is not None:
                        a = np.fromfile(gref, np.float32).reshape(N_QUALITY + 1, -1)
                        b = np.fromfile(mine, np.float32).reshape(N_QUALITY + 1, -1)
                        kl, top1 = compare(a, b)
                        q["tfxc_gguf"] = {"kl": kl, "top1": top1}
                out["quality"][fmt] = q
            # greedy ids on the same Q8_0 weights: llama.cpp reads its Q8_0 GGUF;
            # tfxc quantizes the same f32 numbers with the same reference Q8_0
            # quantizer (the same bytes where both keep a tensor in Q8_0)
            n = 32
            gg = os.path.join(W, "q_stories260k.Q8_0.gguf")
            theirs = sh([PY, me, "greedy", gg, str(n)], "quant: llama.cpp Q8_0 greedy ids")
            g = {"llamacpp": theirs and theirs.split(), "tfxc": None, "equal": None}
            if reads_gguf:  # the same file
                mine = sh([tfxc, "run", tfx_gguf, "--weights", gg, "-n", str(n), "--temperature", "0",
                           "--print-ids"], "quant: tfxc greedy ids on llama.cpp's Q8_0 GGUF")
                g["tfxc_same_gguf"] = mine and mine.split()
                g["equal_same_gguf"] = bool(mine and theirs) and g["tfxc_same_gguf"] == g["llamacpp"]
            if has_q:
                mine = sh([tfxc, "run", tfx260, "--weights", b260, "--quantize", "q8_0", "-n", str(n),
                           "--temperature", "0", "--print-ids"], "quant: tfxc q8_0 greedy ids")
                g["tfxc"] = mine and mine.split()
                g["equal"] = bool(mine and theirs) and g["tfxc"] == g["llamacpp"]
            out["greedy_q8_0"] = g
            # the issue's "stories260K in Q8_0 decodes no slower than in f32": both in this run
            if has_q:
                t = ctx["threads"][-1]
                sp = {}
                for fmt in ("f32", "q8_0"):
                    so = os.path.join(W, f"q_stories260k.{fmt}.so")
                    if sh([tfxc, tfx260, "--weights", b260, "-o", so] + (["--quantize", fmt] if fmt != "f32" else []),
                          f"quant: tfxc compiles stories260K ({fmt})") is None:
                        continue
                    r = run_json([ctx["BENCH"], "model", so, str(t), str(ctx["reps"]), str(ctx["PP"]),
                                  str(ctx["TG"])], t)
                    sp[fmt] = r and {"pp_tps": r["pp_tps"], "tg_tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
                sp["threads"] = t
                out["stories260k_q8_0_vs_f32"] = sp
    if has_q and METHODS:
        out["methods"] = method_rows(ctx, sh, out)
    return out


def with_table_rule(src, fmt, dst):
    """The model source src with the tied table's format asked by a rule (fmt None: as is), written to dst."""
    with open(src) as f:
        text = f.read()
    with open(dst, "w") as f:
        f.write(text + (f'\nquantize {{\n  "tok_embeddings" = {fmt}\n}}\n' if fmt else ""))
    return dst


def method_rows(ctx, sh, out):
    """Issue #13's methods: tfxc's pp/tg on the stories110M shape against the row of this run each is
    compared with, and mean KL / top-1 on stories260K against tfxc's f32 (the quality rows' ids)."""
    run_json, log, W, tfxc = ctx["run_json"], ctx["log"], ctx["WORK"], os.path.join(ctx["BUILD"], "tfxc")
    t = ctx["threads"][-1]
    rows = []

    def calibrate(tfx, weights, runner, n, length, tag):
        """tfxc calibrate of tfx (with weights) on n sequences sampled from runner (a .so, or tfx)."""
        seqs = []
        for seed in CALIB_SEEDS[:n]:
            ids = sh([tfxc, "run", runner] + (["--weights", weights] if not runner.endswith(".so") else []) +
                     ["-n", str(length), "--temperature", "0.9", "--seed", str(seed), "--print-ids"],
                     f"quant: {tag} calibration sequence {seed}")
            if ids is None:
                return None
            path = os.path.join(W, f"q_{tag}.calib{seed}.txt")
            with open(path, "w") as f:
                f.write(ids.strip().split("\n")[-1])
            seqs.append(path)
        calib = os.path.join(W, f"q_{tag}.calib")
        cmd = [tfxc, "calibrate", tfx, "--weights", weights, "--tokens"] + seqs
        return calib if sh(cmd + ["-o", calib], f"quant: tfxc calibrate {tag}") is not None else None

    # speed: the stories110M shape's checkpoint and f32 model of the rows above
    ckpt = os.path.join(W, "stories110m.bin")
    if not os.path.exists(ckpt):
        ckpt = os.path.join(W, "q_stories110m.bin")
    tfx = os.path.join(W, "q_stories110m.tfx")
    f32so = os.path.join(W, "q_stories110m.f32.so")
    calib = None
    if any(m[2] for m in METHODS) and os.path.exists(f32so):
        calib = calibrate(tfx, ckpt, f32so, 2, 63, "stories110m")  # 2 x 64 tokens: H and ranges (speed only)
    base = {r["format"]: r.get("tfxc") for r in out["speed"] if r["model"] == "stories110m" and r["threads"] == t}
    for name, table, needs, against in METHODS:
        row = {"method": name, "table": table, "against": against, "threads": t, "tfxc": None, "quality": None}
        rows.append(row)
        if needs and not calib:
            continue
        src = with_table_rule(tfx, table, os.path.join(W, "q_stories110m.method.tfx"))
        so = os.path.join(W, "q_stories110m.method.so")
        extra = ["--calibration", calib] if needs else []
        if sh([tfxc, src, "--weights", ckpt, "-o", so, "--quantize", name] + extra,
              f"quant: tfxc compiles stories110m ({name})") is None:
            continue
        sb = sh([ctx["PY"], os.path.join(HERE, "quant.py"), "so-bytes", so], f"quant: bytes of {name}")
        row["tfxc_weight_bytes"] = sb and json.loads(sb)["weights_bytes"]
        log(f"quant: stories110m {name}: tfxc, {t} thread(s)")
        r = run_json([ctx["BENCH"], "model", so, str(t), str(ctx["reps"]), str(ctx["PP"]), str(ctx["TG"])], t)
        row["tfxc"] = r and {"pp_tps": r["pp_tps"], "tg_tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
        row["baseline"] = base.get(against)
    # quality: stories260K, the ids and tfxc f32 logits of the quality rows
    b260 = os.path.join(ctx["models"], "stories260K.bin")
    ids = os.path.join(W, "q_stories260k.ids.txt")
    mref = os.path.join(W, "q_stories260k.tfxc_f32.logits")
    if os.path.exists(b260) and os.path.exists(ids) and os.path.exists(mref):
        tfx260 = os.path.join(ROOT, "examples", "llama", "stories260k.tfx")
        calib = calibrate(tfx260, b260, tfx260, 8, 255, "stories260k") if any(m[2] for m in METHODS) else None
        a = np.fromfile(mref, np.float32).reshape(N_QUALITY + 1, -1)
        for row, (name, table, needs, _) in zip(rows, METHODS):
            if needs and not calib:
                continue
            src = with_table_rule(tfx260, table, os.path.join(W, "q_stories260k.method.tfx"))
            lg = os.path.join(W, "q_stories260k.method.logits")
            if sh([tfxc, "run", src, "--weights", b260, "--quantize", name, "--eval-ids", ids, "--dump-logits", lg]
                  + (["--calibration", calib] if needs else []), f"quant: tfxc {name} logits") is not None:
                kl, top1 = compare(a, np.fromfile(lg, np.float32).reshape(N_QUALITY + 1, -1))
                row["quality"] = {"kl": kl, "top1": top1}
    return rows


def markdown(q):
    """The tables of results.json's "quant"."""
    def f(x, nd=1):
        return "—" if x is None else (f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{nd}f}")

    L = []
    if q.get("speed"):
        L += ["| model | format | threads | weights MB/token: tfxc; llama.cpp | tfxc pp128 | llama.cpp pp128 | tfxc / llama.cpp | "
              "tfxc tg64 | llama.cpp tg64 | tfxc / llama.cpp | tfxc paired roofline fraction |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in q["speed"]:
            m, lc = r.get("tfxc") or {}, r.get("llamacpp") or {}
            rat = [f"{m[k] / lc[k]:.2f}×" if m.get(k) and lc.get(k) else "—" for k in ("pp_tps", "tg_tps")]
            L.append(f"| {r['model']} | {r['format']} | {r['threads']} | "
                     f"{f(r.get('tfxc_weight_bytes_per_token') and r['tfxc_weight_bytes_per_token'] / 1e6)}; "
                     f"{f(r['weight_bytes_per_token'] and r['weight_bytes_per_token'] / 1e6)} | "
                     f"{f(m.get('pp_tps'))} | {f(lc.get('pp_tps'))} | {rat[0]} | {f(m.get('tg_tps'))} | "
                     f"{f(lc.get('tg_tps'))} | {rat[1]} | {f(r.get('tfxc_paired_fraction'), 2)} |")
        L.append("")
    if q.get("quality"):
        L += ["| stories260K, 511 tokens: mean KL / top-1 vs the engine's f32 | llama.cpp | tfxc --quantize | "
              "tfxc on llama.cpp's GGUF | tfxc's tensors = llama.cpp's: type; bytes |", "|---|---:|---:|---:|---:|"]

        def kt(x):
            return "—" if not x else f"{x['kl']:.4f} / {100 * x['top1']:.1f}%"

        def same(x):
            return "—" if not x else f"{x['same_type']}/{x['tensors']}; {x['same_bytes']}/{x['tensors']}"
        for fmt, r in q["quality"].items():
            L.append(f"| {fmt} | {kt(r.get('llamacpp'))} | {kt(r.get('tfxc'))} | {kt(r.get('tfxc_gguf'))} | "
                     f"{same(r.get('same_tensors'))} |")
        L.append("")
        for fmt, r in q["quality"].items():
            d = (r.get("same_tensors") or {}).get("differ")
            if d:
                L.append(f"{fmt}: tensors that differ from llama.cpp's: " + "; ".join(d[:6])
                         + (f" (and {len(d) - 6} more)" if len(d) > 6 else "") + ".")
        L.append("")
    if q.get("methods"):
        L += ["| issue #13 method | tied table | weights MB/token | tfxc pp128 | × | tfxc tg64 | × | against "
              "(this run's tfxc row) | stories260K mean KL / top-1 vs f32 |", "|---|---|---:|---:|---:|---:|---:|---|---:|"]
        for r in q["methods"]:
            m, b = r.get("tfxc") or {}, r.get("baseline") or {}
            rat = [f"{m[k] / b[k]:.2f}×" if m.get(k) and b.get(k) else "—" for k in ("pp_tps", "tg_tps")]
            qq = r.get("quality")
            qual = "—" if not qq else f"{qq['kl']:.4f} / {100 * qq['top1']:.1f}%"
            L.append(f"| {r['method']} | {r['table'] or 'as chosen'} | "
                     f"{f(r.get('tfxc_weight_bytes') and r['tfxc_weight_bytes'] / 1e6)} | {f(m.get('pp_tps'))} | "
                     f"{rat[0]} | {f(m.get('tg_tps'))} | {rat[1]} | {r['against']} | {qual} |")
        L.append("")
    sp = q.get("stories260k_q8_0_vs_f32") or {}
    if sp.get("f32") and sp.get("q8_0"):
        L.append(f"stories260K, {sp['threads']} threads, tfxc: tg64 {f(sp['q8_0']['tg_tps'])} t/s in q8_0 against "
                 f"{f(sp['f32']['tg_tps'])} in f32 ({sp['q8_0']['tg_tps'] / sp['f32']['tg_tps']:.2f}×); pp128 "
                 f"{f(sp['q8_0']['pp_tps'])} against {f(sp['f32']['pp_tps'])}.")
    g = q.get("greedy_q8_0") or {}
    if g.get("tfxc_same_gguf") is not None:
        L.append("Check: tfxc's greedy ids on llama.cpp's Q8_0 GGUF of stories260K "
                 + ("equal" if g.get("equal_same_gguf") else "DIFFER from") + " llama.cpp's (32 from BOS).")
    if g.get("llamacpp"):
        L.append("Check: stories260K Q8_0 greedy ids (32 from BOS): llama.cpp "
                 + " ".join(g["llamacpp"]) + ("; tfxc " + ("equal" if g["equal"] else "DIFFERENT: " +
                                                           " ".join(g["tfxc"] or []))
                                              if g.get("tfxc") is not None else "; tfxc not run (no --quantize)")
                 + ".")
    return "\n".join(L) + "\n"


def main():
    a = sys.argv[1:]
    if a[:1] == ["random-ckpt"] and len(a) == 3:
        write_random_ckpt(a[2] + ".tmp", SHAPES[a[1]])
        os.replace(a[2] + ".tmp", a[2])
    elif a[:1] == ["quantize"] and len(a) == 4:
        quantize(a[1], a[2], a[3])
    elif a[:1] == ["bytes"] and len(a) == 3:
        total, mix, embd = bytes_per_token(a[1], a[2] == "1")
        print(json.dumps({"bytes": total, "mix": mix, "token_embd_bytes": embd}))
    elif a[:1] == ["same-tensors"] and len(a) == 3:
        print(json.dumps(same_tensors(a[1], a[2])))
    elif a[:1] == ["so-bytes"] and len(a) == 2:
        print(json.dumps(so_bytes(a[1])))
    elif a[:1] == ["llamacpp"] and len(a) == 6:
        r = llamacpp_bench(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]))
        print(json.dumps({"engine": "llamacpp", "pp_tps": r[0], "tg_tps": r[1]}))
    elif a[:1] == ["logits"] and len(a) == 4:
        with open(a[2]) as f:
            ids = [int(x) for x in f.read().split()]
        llamacpp_logits(a[1], ids).tofile(a[3])
    elif a[:1] == ["greedy"] and len(a) == 3:
        from peers import greedy_llamacpp

        print(" ".join(str(t) for t in greedy_llamacpp(a[1], int(a[2]))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
