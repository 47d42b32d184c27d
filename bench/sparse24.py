#!/usr/bin/env python3
"""bench/sparse24.py — 2:4 sparse weights against dense at the same value
format (issue #13): decode (tg) and prefill (pp) of the stories110M shape
with random weights (examples/llama/stories110m.tfx, a llama2.c checkpoint
from bench/weights.py). Never run by the tests.

Models, compiled by TFXC from the same checkpoint: f32, sparse24(f32),
q8_0 and sparse24(q8_0); the tied token embedding / classifier keeps the
dense format of its pair (f32; q8_0 by a `quantize { "tok_embeddings" =
q8_0 }` rule in both q8 models: the 2:4 formats go to linears only). With
--before TFXC_OLD (a tfxc whose 2:4 linears read the dequantizing stream)
the two sparse models again from it. The runs alternate between the models,
ROUNDS times, each `bench model SO THREADS REPS PP TG` (median of REPS after
a warm-up); the table gives the median over the rounds and each sparse
model's ratio to its dense pair, per round (min..max) and of the medians.

With --ternary the pair is q4_0 and `ternary` (BitNet b1.58, both with a
q4_0 classifier) instead; --before then runs `ternary` from TFXC_OLD too.

usage: bench/sparse24.py TFXC BENCH_BIN [--ckpt FILE] [--rounds 5]
       [--reps 3] [--threads 2] [--pp 128] [--tg 64] [--before TFXC_OLD]
       [--ternary] [--mcpu NAME] [--no-f32]
--mcpu compiles every model for that CPU (tfxc --mcpu, e.g. haswell);
--no-f32 leaves out the f32 pair.
BENCH_BIN is bench/bench.c built as bench/run.sh builds it."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# name, --quantize, classifier rule, dense pair
MODELS = [
    ("f32", None, None, None),
    ("sparse24(f32)", "sparse24(f32)", None, "f32"),
    ("q8_0", "q8_0", "q8_0", None),
    ("sparse24(q8_0)", "sparse24(q8_0)", "q8_0", "q8_0"),
]
# --ternary: BitNet b1.58's ternary weights against q4_0, the classifier q4_0 in both
TERNARY_MODELS = [
    ("q4_0", "q4_0", "q4_0", None),
    ("ternary", "ternary", "q4_0", "q4_0"),
]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: {p.stderr.strip()[-600:]}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tfxc")
    ap.add_argument("bench")
    ap.add_argument("--ckpt")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pp", type=int, default=128)
    ap.add_argument("--tg", type=int, default=64)
    ap.add_argument("--before")
    ap.add_argument("--ternary", action="store_true")
    ap.add_argument("--mcpu")
    ap.add_argument("--no-f32", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tfx_sparse24_")
    ckpt = a.ckpt or os.path.join(work, "stories110m.bin")
    if not a.ckpt:
        run([sys.executable, os.path.join(HERE, "weights.py"), "random", ckpt])
    src = open(os.path.join(ROOT, "examples", "llama", "stories110m.tfx")).read()
    pairs = TERNARY_MODELS if a.ternary else MODELS
    pairs = [m for m in pairs if not (a.no_f32 and "f32" in m[0])]
    models = [(n, q, c, p, a.tfxc) for n, q, c, p in pairs]
    if a.before:
        models += [(n + " before", q, c, p, a.before) for n, q, c, p in pairs if p]
    sos = {}
    for name, quant, cls, _, tfxc in models:
        tfx = os.path.join(work, f"m{len(sos)}.tfx")
        with open(tfx, "w") as f:
            f.write(src + (f'\nquantize {{\n  "tok_embeddings" = {cls}\n}}\n' if cls else ""))
        so = os.path.join(work, f"m{len(sos)}.so")
        run([tfxc, tfx, "--weights", ckpt, "-o", so] + (["--quantize", quant] if quant else []) +
            (["--mcpu", a.mcpu] if a.mcpu else []))
        sos[name] = (so, os.path.getsize(so))
    res = {name: {"pp": [], "tg": []} for name in sos}
    for r in range(a.rounds):
        for name, (so, _) in sos.items():
            out = json.loads(run([a.bench, "model", so, str(a.threads), str(a.reps), str(a.pp), str(a.tg)]))
            res[name]["pp"].append(out["pp_tps"])
            res[name]["tg"].append(out["tg_tps"])
            print(f"round {r + 1} {name}: pp {out['pp_tps']:.1f} tg {out['tg_tps']:.1f}", file=sys.stderr)
    pair = {n: p for n, _, _, p, _ in models}
    print(f"stories110M shape, {a.threads} threads, pp{a.pp} / tg{a.tg}, {a.rounds} alternated rounds "
          f"(median of {a.reps} each); load average after: {os.getloadavg()[0]:.2f}\n")
    print("| model | .so MB | pp t/s | pp × dense (rounds) | tg t/s | tg × dense (rounds) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (so, size) in sos.items():
        cells = [name, f"{size / 1e6:.0f}"]
        for k in ("pp", "tg"):
            v = res[name][k]
            cells.append(f"{statistics.median(v):.1f}")
            d = pair[name]
            if d:
                rr = [x / y for x, y in zip(v, res[d][k])]
                med = statistics.median(v) / statistics.median(res[d][k])
                cells.append(f"**{med:.2f}×** ({min(rr):.2f}..{max(rr):.2f})")
            else:
                cells.append("1")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
