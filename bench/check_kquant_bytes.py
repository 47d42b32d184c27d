#!/usr/bin/env python3
"""bench/check_kquant_bytes.py — checks that tfxc's Q4_K and Q6_K quantizers
(ir/quantize.c; and Q8_0, Q4_0, Q5_0) give the same bytes as llama.cpp's own
quantizer. Not a test
(it needs the bench venv of bench/setup_peers.sh: llama-cpp-python + gguf).

  ~/.cache/tfxc-bench/venv/bin/python bench/check_kquant_bytes.py [--tool TOOL] [--seed N]
      TOOL: tfx-quant-tool (default build/tests/tfx-quant-tool); N: the
      random weights' seed (default 11)
  ... bench/check_kquant_bytes.py --write-golden tests/quant
      (re)writes the golden files of test_quant_bytes: llama.cpp's Q4_K,
      Q6_K and Q5_0 bytes of the rows of tests/quant/kquant_rows.py

It writes an f32 GGUF of a small random llama (dim 256, 2 layers, hidden 768,
vocab 512, so every weight row holds 256 or 768 elements) with the gguf
package's GGUFWriter, quantizes it with llama.cpp (llama_model_quantize, no
importance matrix: ggml's quantize_row_q4_K_ref / quantize_row_q6_K_ref) to
Q4_K_M (a mix of Q4_K and Q6_K tensors) and to Q6_K (and to Q8_0, Q4_0 and
Q5_0, whose output.weight is Q6_K), reads the results with gguf.GGUFReader, and
compares each Q4_K / Q6_K / Q8_0 / Q4_0 / Q5_0 / F16 tensor's bytes with tfxc's
quantization of the same f32 rows (tfx-quant-tool quantize). It also
quantizes models whose ffn_down rows hold 288 and 176 elements and compares
the format llama.cpp falls back to with tfx_quantize_fallback. The weights mix
distributions that reach the quantizers' corner cases: Gaussian and
heavy-tailed rows, rows with outliers, all-positive and all-negative rows,
all-zero and constant sub-blocks, tiny rows whose scales are f16 subnormals,
and rows on a coarse grid (ties). Prints one line per tensor and a summary;
exits 1 when any byte differs."""
import argparse
import atexit
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

try:
    import gguf
    import llama_cpp
except ImportError as e:
    sys.exit(f"check_kquant_bytes: {e}: run with the bench venv (bench/setup_peers.sh)")

HERE = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser(description="tfxc's Q4_K / Q6_K bytes against llama.cpp's quantizer")
ap.add_argument("--tool", default=os.path.join(HERE, "..", "build", "tests", "tfx-quant-tool"))
ap.add_argument("--seed", type=int, default=11)
ap.add_argument("--write-golden", metavar="DIR",
                help="write llama.cpp's Q4_K / Q6_K / Q5_0 bytes of tests/quant/kquant_rows.py's rows into DIR "
                     "(golden_q4_k.bin, golden_q6_k.bin, golden_q5_0.bin: the files test_quant_bytes compares "
                     "with)")
ARGS = ap.parse_args()
TOOL = ARGS.tool
if not os.access(TOOL, os.X_OK):
    sys.exit(f"check_kquant_bytes: {TOOL} not found: build the tests first")

DIM, LAYERS, HIDDEN, VOCAB, HEADS = 256, 2, 768, 512, 4
rng = np.random.default_rng(ARGS.seed)


def weight(rows, cols):
    """Rows of varied distributions, in blocks of 8 rows."""
    w = np.empty((rows, cols), dtype=np.float32)
    for r in range(rows):
        kind = r % 12
        if kind == 0:
            x = rng.standard_normal(cols) * 0.02
        elif kind == 1:
            x = rng.laplace(size=cols) * 0.05
        elif kind == 2:
            x = rng.standard_normal(cols) * 0.02
            x[rng.integers(0, cols, 4)] *= 50  # outliers
        elif kind == 3:
            x = np.abs(rng.standard_normal(cols)) + 0.1  # all positive: min > 0
        elif kind == 4:
            x = -np.abs(rng.standard_normal(cols)) - 0.1  # all negative
        elif kind == 5:
            x = rng.standard_normal(cols)
            x[:32] = 0  # an all-zero sub-block
            x[64:96] = 0.25  # a constant sub-block
            x[128:144] = 0  # an all-zero Q6_K group
        elif kind == 6:
            x = rng.standard_normal(cols) * 1e-6  # f16-subnormal scales
        elif kind == 7:
            x = rng.integers(-8, 8, cols) * 0.125  # a coarse grid: ties
        elif kind == 8:
            x = np.zeros(cols)
        elif kind == 9:
            x = rng.uniform(-1, 1, cols) * 10.0 ** rng.integers(-3, 3)
        elif kind == 10:
            x = rng.standard_normal(cols) * np.repeat(10.0 ** rng.uniform(-3, 1, cols // 16 + 1), 16)[:cols]
        else:
            x = rng.standard_t(3, cols) * 0.1
        w[r] = x
    return w


def make_tensors(hidden=HIDDEN):
    """The random model's f32 tensors by GGUF name."""
    tensors = {"token_embd.weight": weight(VOCAB, DIM), "output_norm.weight": np.ones(DIM, np.float32),
               "output.weight": weight(VOCAB, DIM)}
    for i in range(LAYERS):
        p = f"blk.{i}."
        tensors[p + "attn_norm.weight"] = np.ones(DIM, np.float32)
        tensors[p + "ffn_norm.weight"] = np.ones(DIM, np.float32)
        for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensors[p + n + ".weight"] = weight(DIM, DIM)
        tensors[p + "ffn_gate.weight"] = weight(hidden, DIM)
        tensors[p + "ffn_up.weight"] = weight(hidden, DIM)
        tensors[p + "ffn_down.weight"] = weight(DIM, hidden)
    return tensors


def write_f32_gguf(path, hidden=HIDDEN):
    tensors = make_tensors(hidden)
    write_f32_gguf_tensors(path, tensors, hidden)
    return tensors


def write_f32_gguf_tensors(path, tensors, hidden=HIDDEN):
    """The GGUF at path: the model's metadata and these f32 tensors."""
    wr = gguf.GGUFWriter(path, "llama")
    wr.add_name("kquant-check")
    wr.add_context_length(256)
    wr.add_embedding_length(DIM)
    wr.add_block_count(LAYERS)
    wr.add_feed_forward_length(hidden)
    wr.add_head_count(HEADS)
    wr.add_head_count_kv(HEADS)
    wr.add_rope_dimension_count(DIM // HEADS)
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_file_type(gguf.LlamaFileType.ALL_F32)
    wr.add_tokenizer_model("llama")
    wr.add_token_list([b"<unk>", b"<s>", b"</s>"] + [f"t{i}".encode() for i in range(VOCAB - 3)])
    wr.add_token_scores([0.0] * VOCAB)
    wr.add_token_types([2, 3, 3] + [1] * (VOCAB - 3))
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)
    for name, t in tensors.items():
        wr.add_tensor(name, t)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def llama_quantize(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"check_kquant_bytes: llama_model_quantize failed ({rc})")


def tfx_quantize(fmt, rows, tmp):
    src, dst = os.path.join(tmp, "rows.f32"), os.path.join(tmp, "rows.bin")
    np.ascontiguousarray(rows, dtype="<f4").tofile(src)
    subprocess.run([TOOL, "quantize", fmt, str(rows.shape[-1]), src, dst], check=True)
    return np.fromfile(dst, dtype=np.uint8)


QT = gguf.GGMLQuantizationType
FMTS = {QT.Q3_K: "q3_k", QT.Q4_K: "q4_k", QT.Q6_K: "q6_k", QT.Q8_0: "q8_0", QT.Q4_0: "q4_0", QT.Q5_0: "q5_0", QT.F16: "f16"}
TOTAL = {f: [0, 0, 0] for f in FMTS.values()}  # tensors, blocks, differing bytes


def compare(label, path, tensors, tmp, only=None):
    """Compares each quantized tensor of the GGUF at path with tfxc's
    quantization of its f32 rows (only: the tensor names to look at)."""
    for t in gguf.GGUFReader(path).tensors:
        if only is not None and t.name not in only:
            continue
        fmt = FMTS.get(t.tensor_type)
        if fmt is None:
            print(f"{label:7s} {t.name:24s} {t.tensor_type.name:5s} (not compared)")
            continue
        theirs = np.asarray(t.data).view(np.uint8).reshape(-1)
        ours = tfx_quantize(fmt, tensors[t.name], tmp)
        nblk = tensors[t.name].size // {"q3_k": 256, "q4_k": 256, "q6_k": 256, "q8_0": 32, "q4_0": 32, "q5_0": 32, "f16": 1}[fmt]
        diff = int(np.count_nonzero(ours != theirs)) if ours.size == theirs.size else max(ours.size, theirs.size)
        TOTAL[fmt][0] += 1
        TOTAL[fmt][1] += nblk
        TOTAL[fmt][2] += diff
        print(f"{label:7s} {t.name:24s} {fmt:5s} {nblk:6d} blocks: {'identical' if diff == 0 else f'{diff} bytes differ'}")


def check_fallback(tmp):
    """The format llama.cpp gives ffn_down (rows of `hidden` elements) when
    the asked format's blocks do not divide its rows, against
    tfx_quantize_fallback (tfx-quant-tool fallback), and the fallback
    tensor's bytes (Q4_K falls to Q5_0, Q6_K to Q8_0, all of them to F16
    when 32 does not divide the rows)."""
    ok = True
    for hidden in (288, 176):  # 288: 32 divides it, 256 does not; 176: neither
        f32 = os.path.join(tmp, f"fallback-{hidden}.gguf")
        tensors = write_f32_gguf(f32, hidden)
        for label, ftype, want in (("Q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q8_0"),
                                   ("Q4_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q4_0"),
                                   ("Q6_K", llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K, "q6_k"),
                                   ("Q4_K_M", llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, "q4_k")):
            out = os.path.join(tmp, f"fallback-{hidden}-{label}.gguf")
            llama_quantize(f32, out, ftype)
            t = {t.name: t for t in gguf.GGUFReader(out).tensors}["blk.0.ffn_down.weight"]
            theirs = t.tensor_type.name.lower()
            ours = subprocess.run([TOOL, "fallback", want, str(hidden)], check=True, capture_output=True,
                                  text=True).stdout.strip()
            same = theirs == ours
            if not same:
                ok = False
            note = "same" if same else "MISMATCH"
            print(f"fallback: {label:6s} rows of {hidden}: llama.cpp {theirs}, tfxc {ours}: {note}")
            if same:
                compare(f"{label}/{hidden}", out, tensors, tmp, only={"blk.0.ffn_down.weight"})
    return ok


@llama_cpp.llama_log_callback
def _quiet(level, text, user_data):  # llama.cpp's loader logs every key: keep the report readable
    pass


def write_golden(tmp, outdir):
    """llama.cpp's Q4_K, Q6_K and Q5_0 bytes of kquant_rows.rows(), as the
    token embedding of a model with that many tokens (Q4_K_M makes it Q4_K)."""
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "quant"))
    import kquant_rows

    global VOCAB
    x = kquant_rows.rows()
    VOCAB = x.shape[0]
    f32 = os.path.join(tmp, "golden-f32.gguf")
    tensors = make_tensors()
    tensors["token_embd.weight"] = x
    write_f32_gguf_tensors(f32, tensors)
    ok = True
    for label, fmt in (("Q4_K_M", "q4_k"), ("Q6_K", "q6_k"), ("Q5_0", "q5_0"), ("Q3_K_S", "q3_k")):
        out = os.path.join(tmp, f"golden-{label}.gguf")
        llama_quantize(f32, out, getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{label}"))
        t = {t.name: t for t in gguf.GGUFReader(out).tensors}["token_embd.weight"]
        if FMTS.get(t.tensor_type) != fmt:
            sys.exit(f"check_kquant_bytes: llama.cpp made token_embd {t.tensor_type.name}, not {fmt}")
        theirs = np.asarray(t.data).view(np.uint8).reshape(-1)
        theirs.tofile(os.path.join(outdir, f"golden_{fmt}.bin"))
        same = np.array_equal(theirs, tfx_quantize(fmt, x, tmp))
        ok = ok and same
        print(f"golden_{fmt}.bin: {theirs.size} bytes from llama.cpp {llama_cpp.__version__}; "
              f"tfxc {'identical' if same else 'DIFFERS'}")
    return 0 if ok else 1


def main():
    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))
    tmp = tempfile.mkdtemp(prefix="tfx_kquant_")
    atexit.register(shutil.rmtree, tmp, True)
    if ARGS.write_golden:
        return write_golden(tmp, ARGS.write_golden)
    f32 = os.path.join(tmp, "model-f32.gguf")
    tensors = write_f32_gguf(f32)
    for label in ("Q4_K_M", "Q6_K", "Q8_0", "Q4_0", "Q5_0", "Q3_K_S"):
        out = os.path.join(tmp, f"model-{label}.gguf")
        llama_quantize(f32, out, getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{label}"))
        compare(label, out, tensors, tmp)
    ok = check_fallback(tmp)
    ok = ok and all(v[2] == 0 for v in TOTAL.values()) and all(v[0] > 0 for v in TOTAL.values())
    for fmt, (n, nblk, diff) in TOTAL.items():
        print(f"{fmt}: {n} tensors, {nblk} blocks, {diff} differing bytes")
    print(f"llama.cpp {llama_cpp.__version__} (llama-cpp-python), seed {ARGS.seed}: "
          f"{'tfxc bytes identical, fallbacks as expected' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
