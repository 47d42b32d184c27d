#!/usr/bin/env python3
"""bench/ab.py — an A/B comparison of two tfxc builds (say, before and after a
refactor) on the benchmark's tfxc rows, measured alternately in one run so a
machine whose speed drifts from minute to minute drifts for both.

    bench/ab.py BUILD_A BUILD_B [ROUNDS]

BUILD_A and BUILD_B are build folders holding `tfxc` (build one of an older
revision with `git worktree add /tmp/old REV` and CMake, Release). Run
`bench/run.sh` once first: this script reuses its work folder (the bench
program, the random stories110M-shape weights). For every model (stories110m,
stories260k from ../shared/models, the GEMM shapes of run.sh) it compiles
the model with both compilers, then runs ROUNDS (default 3) rounds of
A then B (B then A in every other round), each `bench model`/`bench gemm` at
2 threads with 5 repetitions, and prints the medians of the rounds and
B / A. Never part of the tests."""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.environ.get("TFXC_BENCH_WORK", os.path.join(HERE, "work"))
MODELS = os.environ.get("TFX_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))
BENCH = os.path.join(WORK, "bench")
THREADS, REPS = "2", "5"
GEMMS = [("1024x1024", [1024]), ("768x768", [1, 128]), ("2048x768", [1, 128]), ("32000x768", [1])]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        sys.exit(f"ab: failed: {' '.join(cmd)}\n{p.stderr[-800:]}")
    for line in reversed(p.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    sys.exit(f"ab: no result from {' '.join(cmd)}")


def compile_model(tfxc, src, weights, out):
    subprocess.run([tfxc, src, "--weights", weights, "-o", out], check=True)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    builds = {"A": sys.argv[1], "B": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    if not os.path.exists(BENCH):
        sys.exit(f"ab: {BENCH} is missing: run bench/run.sh once first")
    rows = []  # (label, kind, {A: path, B: path}, extra args, metric keys)
    for stem, src, w in (("stories110m", "examples/llama/stories110m.tfx", os.path.join(WORK, "stories110m.bin")),
                         ("stories260k", "examples/llama/stories260k.tfx", os.path.join(MODELS, "stories260K.bin"))):
        if not os.path.exists(w):
            print(f"ab: no {w}: {stem} skipped", file=sys.stderr)
            continue
        sos = {k: os.path.join(WORK, f"ab_{k}_{stem}.so") for k in builds}
        for k, b in builds.items():
            compile_model(os.path.join(b, "tfxc"), os.path.join(ROOT, src), w, sos[k])
        rows.append((stem, ["model", None, THREADS, REPS, "128", "64"], sos, ("pp_tps", "tg_tps")))
    for nk, Ts in GEMMS:
        src = os.path.join(WORK, f"gemm_{nk}.tfx")
        if not os.path.exists(src):
            continue
        sos = {k: os.path.join(WORK, f"ab_{k}_gemm_{nk}.so") for k in builds}
        for k, b in builds.items():
            compile_model(os.path.join(b, "tfxc"), src, "random:7", sos[k])
        for T in Ts:
            rows.append((f"gemm {nk} T={T}", ["gemm", None, str(T), THREADS, REPS], sos, ("gflops",)))
    print(f"| row | metric | A | B | B / A |\n|---|---|---:|---:|---:|")
    for label, args, sos, keys in rows:
        got = {k: {m: [] for m in keys} for k in builds}
        for r in range(rounds):
            for k in ("A", "B") if r % 2 == 0 else ("B", "A"):
                cmd = [BENCH] + [sos[k] if a is None else a for a in args]
                res = run(cmd)
                for m in keys:
                    got[k][m].append(res[m])
        for m in keys:
            a, b = statistics.median(got["A"][m]), statistics.median(got["B"][m])
            print(f"| {label} | {m} | {a:,.1f} | {b:,.1f} | {b / a:.3f} |", flush=True)


if __name__ == "__main__":
    main()
