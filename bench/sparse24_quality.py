"""bench/sparse24_quality.py — what 2:4 sparsity costs in quality, with and
without the channel permutation (issue #13, passes/permute_channels.c), on
the project's trained demo model (examples/fortune: dim 256, hidden 768,
every row a multiple of 32, unlike stories260K's hidden 172).

  python3 bench/sparse24_quality.py TFXC [--seqs N] [--formats 'F;F;..'] [--calib-seqs N]

The sequences are the model's own samples (`tfxc run -n 255 --temperature
0.9 --seed S --print-ids`, S = 1..N, f32), each run teacher-forced
(`tfxc run --eval-ids`, one call) by the f32 model and by each format; the
table gives the mean KL(p_f32 || p_fmt) (natural log) over every row and the
top-1 agreement, as tests/quant/quality.py measures stories260K. Each model
is compiled once to a .so. Needs numpy.

Formats that need calibration (gptq, w8a8(smooth = ..), llm_int8) get
`--calibration` from `tfxc calibrate` on --calib-seqs (default 8) other
samples of the f32 model (seeds 1001, 1002, ...), never the evaluation ones.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "examples", "fortune", "fortune.tfx")
FORMATS = ["sparse24(f32)", "sparse24(f32, permute = true)", "sparse24(q8_0)", "sparse24(q8_0, permute = true)"]


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tfxc")
    ap.add_argument("--seqs", type=int, default=12)
    ap.add_argument("--formats", default=";".join(FORMATS), help="separated by ;")
    ap.add_argument("--calib-seqs", type=int, default=8, help="calibration samples for gptq / smooth / llm_int8")
    a = ap.parse_args()
    formats = [f.strip() for f in a.formats.split(";") if f.strip()]
    work = tempfile.mkdtemp(prefix="tfx_s24q_")
    try:
        def run(args):
            return subprocess.run([a.tfxc] + args, check=True, capture_output=True, text=True).stdout

        calib = []  # the --calibration option, made on first need

        def calibration(ref_so):
            if not calib:
                files = []
                for s in range(1001, 1001 + a.calib_seqs):
                    p = os.path.join(work, "calib%d.txt" % s)
                    with open(p, "w") as f:
                        f.write(run(["run", ref_so, "-n", "255", "--temperature", "0.9", "--seed", str(s),
                                     "--print-ids"]))
                    files.append(p)
                out = os.path.join(work, "model.calib")
                run(["calibrate", MODEL, "--tokens"] + files + ["-o", out])
                calib.extend(["--calibration", out])
            return calib

        def compile_so(fmt, name):
            so = os.path.join(work, name + ".so")
            extra = []
            if fmt and any(k in fmt for k in ("gptq", "smooth", "llm_int8")):
                extra = calibration(os.path.join(work, "f32.so"))
            run([MODEL, "-o", so] + (["--quantize", fmt] if fmt else []) + extra)
            return so

        ref_so = compile_so(None, "f32")
        seqs = []
        for s in range(1, a.seqs + 1):
            p = os.path.join(work, "ids%d.txt" % s)
            with open(p, "w") as f:
                f.write(run(["run", ref_so, "-n", "255", "--temperature", "0.9", "--seed", str(s), "--print-ids"]))
            seqs.append(p)

        def logits(so, ids):
            out = os.path.join(work, "logits.bin")
            run(["run", so, "--eval-ids", ids, "--dump-logits", out])
            raw = np.fromfile(out, dtype=np.float32)
            return raw.reshape(-1, 1024)

        ref = [log_softmax(logits(ref_so, p)) for p in seqs]
        print("| format | mean KL | top-1 | rows |")
        print("| --- | --- | --- | --- |")
        for i, fmt in enumerate(formats):
            so = compile_so(fmt, "m%d" % i)
            kl, top = [], []
            for p, r in zip(seqs, ref):
                lq = log_softmax(logits(so, p))
                kl.append((np.exp(r) * (r - lq)).sum(-1))
                top.append(r.argmax(-1) == lq.argmax(-1))
            kl, top = np.concatenate(kl), np.concatenate(top)
            print("| `%s` | %.4f | %.1f%% | %d |" % (fmt, kl.mean(), 100 * top.mean(), len(kl)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
