#!/usr/bin/env python3
"""bench/decode_cost.py — calibrates the decode part of the attention cost
model (passes/attn_cost.c, docs/performance.md "The attention cost model"):
F, the cost of a launch through the thread pool, and R, the cost of one
split-decode merge record, both in units of one key visited by one head.
Never run by the tests.

The model is bench/decode.py's (dim 64, 2 layers, causal, RoPE; H heads of
64 / H), compiled at max_seq = L for each L of --kv with `schedule { decode
= row }` and `split(S)` for each S of --splits, timed with `bench decode
MODEL THREADS REPS L TG` (TG one-token decodes at KV lengths L-TG+1..L
after an untimed prefill; median of REPS), the variants alternated in
--rounds rounds.

1. One thread, row: the time per token is base + layers * H * L * c; the
   slope between the KV lengths gives c, the ns of one key unit (the
   model's unit).
2. --threads P (2), every variant and L: the model's estimate of a variant
   is U = A + n_f F + n_r R with A its key term (row: ceil(H / P) L;
   split(S): ceil(H S / P) ceil(L / S)), n_f its launches (1 or 2) and n_r
   = H S / P its merge records; the time per token is
   base_P(L) + layers * c * U. A least-squares fit over every (variant, L)
   of the round medians gives base_P(L) per L, F and R (in key units).

Prints the measurements, c, the fit and its residuals, and the decode
choice the fitted constants would make against those of attn_cost.c.

usage: bench/decode_cost.py TFXC BENCH_BIN [--kv 1024,4096] [--heads 1]
       [--splits 2,4,8,16] [--threads 2] [--tg 32] [--reps 5] [--rounds 2]
BENCH_BIN is bench/bench.c built as bench/run.sh builds it."""
import argparse
import math
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decode  # noqa: E402  (bench/decode.py: the model and the runner)

LAYERS = 2  # decode.source's model


def key_units(H, L, P, S):
    """A, n_f, n_r of attn_cost.c's decode estimate (S < 2: row)."""
    if S < 2:
        return math.ceil(H / P) * L, 1, 0.0
    return math.ceil(H * S / P) * math.ceil(L / S), 2, H * S / P


def lstsq(rows, ys):
    """Least squares by the normal equations (a few unknowns; no NumPy needed)."""
    n = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    b = [sum(r[i] * y for r, y in zip(rows, ys)) for i in range(n)]
    for i in range(n):  # Gauss-Jordan with partial pivoting
        p = max(range(i, n), key=lambda k: abs(a[k][i]))
        a[i], a[p], b[i], b[p] = a[p], a[i], b[p], b[i]
        for k in range(n):
            if k != i and a[i][i]:
                f = a[k][i] / a[i][i]
                a[k] = [x - f * y for x, y in zip(a[k], a[i])]
                b[k] -= f * b[i]
    return [b[i] / a[i][i] for i in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tfxc")
    ap.add_argument("bench")
    ap.add_argument("--kv", default="1024,4096")
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--splits", default="2,4,8,16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tg", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    kvs = [int(x) for x in a.kv.split(",")]
    splits = [1] + [int(s) for s in a.splits.split(",") if s]
    H, P = a.heads, a.threads
    with tempfile.TemporaryDirectory() as work:
        sos = {}
        for L in kvs:
            for S in splits:
                d = "row" if S < 2 else f"split({S})"
                sos[(L, S)] = decode.compile_model(a.tfxc, work, f"L{L}_S{S}", decode.source(L, H, d))
        one = {L: [] for L in kvs}
        many = {k: [] for k in sos}
        for r in range(a.rounds):
            for L in kvs:
                t = decode.tg_tps(a.bench, sos[(L, 1)], 1, a.reps, L, a.tg)
                one[L].append(1e9 / t)
                print(f"[decode_cost] round {r} L {L} row 1 thread: {t:.0f} t/s", file=sys.stderr)
                for S in splits:
                    t = decode.tg_tps(a.bench, sos[(L, S)], P, a.reps, L, a.tg)
                    many[(L, S)].append(1e9 / t)
                    print(f"[decode_cost] round {r} L {L} S {S} {P} threads: {t:.0f} t/s", file=sys.stderr)
    ns1 = {L: statistics.median(v) for L, v in one.items()}
    nsP = {k: statistics.median(v) for k, v in many.items()}
    L0, L1 = min(kvs), max(kvs)
    # the decode keys run at KV lengths L - TG + 1 .. L: their mean is L - (TG - 1) / 2
    eff = {L: L - (a.tg - 1) / 2 for L in kvs}
    c = (ns1[L1] - ns1[L0]) / (LAYERS * H * (eff[L1] - eff[L0]))
    print(f"decode cost calibration: dim 64, {H} head(s) of {64 // H}, {LAYERS} layers, KV {a.kv}, "
          f"{a.tg} decodes per run, median of {a.reps}, {a.rounds} rounds; ns per token (median over rounds)")
    print()
    print("| KV | variant | 1 thread | " + f"{P} threads |")
    print("| ---: | --- | ---: | ---: |")
    for L in kvs:
        for S in splits:
            v = "row" if S < 2 else f"split({S})"
            print(f"| {L} | {v} | {ns1[L]:.0f} |" if S < 2 else f"| {L} | {v} | |", end="")
            print(f" {nsP[(L, S)]:.0f} |")
    print()
    print(f"c (one key of one head, 1 thread) = {c:.3f} ns")
    rows, ys = [], []
    for (L, S), y in nsP.items():
        A, nf, nr = key_units(H, eff[L], P, S)
        rows.append([1.0 if L == L_ else 0.0 for L_ in kvs] + [LAYERS * c * nf, LAYERS * c * nr])
        ys.append(y - LAYERS * c * A)
    sol = lstsq(rows, ys)
    F, R = sol[-2], sol[-1]
    print(f"fit at {P} threads: F = {F:.0f} key units ({F * c / 1000:.2f} us), R = {R:.1f} key units; "
          + ", ".join(f"base({L}) = {b:.0f} ns" for L, b in zip(kvs, sol)))
    print()
    print("| KV | variant | measured ns | fitted ns | residual |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for (L, S), y in nsP.items():
        A, nf, nr = key_units(H, eff[L], P, S)
        fit = sol[kvs.index(L)] + LAYERS * c * (A + nf * F + nr * R)
        v = "row" if S < 2 else f"split({S})"
        print(f"| {L} | {v} | {y:.0f} | {fit:.0f} | {100 * (y - fit) / fit:+.1f}% |")


if __name__ == "__main__":
    main()
