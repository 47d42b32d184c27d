#!/usr/bin/env python3
"""bench/attn_cost.py — calibrates the prefill part of the attention cost
model (passes/attn_cost.c, docs/performance.md "The attention cost model"):
the CPU time of one visited (query, key) pair of one head under the row
schedule and of one visited lane pair (a query lane of a W-row tile against a
key of a 16-key group, masked lanes included) under the flash schedule, as
a + b * d for head dim d. Never run by the tests.

For each head dim d (heads H = DIM / d, so every model does the same
attention FLOPs) and schedule (row: `schedule { attention = dense }`; flash:
the default), it compiles a one-layer attention model
(x + attention(x, ...), causal, no position encoding, vocab 16) at max_seq
= T and measures the CPU seconds of one prefill of T tokens and of TS = T / 8
tokens at one thread: `tfxc bench MODEL.so -p T -n 0 -r R --threads 1`, its
user + system time minus that of `-r 1` (load and warm-up cancel), divided
by R - 1 (8 R runs for TS). CPU time, not wall clock: a shared machine's
other processes disturb it less. The rest of the model (the embedding, the
projections, the classifier) grows with T and the attention with T^2:
t = a T + c T^2 through the two points gives the attention's c T^2.
Units of work: row visits H T (T + 1) / 2
pairs; flash visits H times the W x 16 lane pairs of every (query tile, key
group) that holds an allowed pair. Prints per (d, schedule) the ns per unit
and the fit a + b d over d (least squares), the constants attn_cost.c
takes.

usage: bench/attn_cost.py [--tfxc build/tfxc] [--dim 256] [--dims 8,16,32,64,128]
       [--T 2048] [--reps 6] [--W 16]"""
import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def source(dim, heads, max_seq, dense, window=0):
    sp = f", sparse = sliding(window = {window})" if window else ""
    attn = f"attention(x, wq, wk, wv, wo, heads = heads, mask = causal{sp})"
    sched = "schedule {\n  attention = dense\n}\n" if dense else ""
    return f"""model attn_cost
const dim = {dim}, heads = {heads}, vocab = 16, max_seq = {max_seq}
param tok_embeddings : f32[vocab, dim]
param wq : f32[dim, dim]
param wk : f32[dim, dim]
param wv : f32[dim, dim]
param wo : f32[dim, dim]
param output : f32[vocab, dim]
forward(tokens : i32[T]) -> f32[T, vocab] {{
  x = embedding(tok_embeddings, tokens)
  h = x + {attn}
  return linear(h, output)
}}
{sched}"""


def cpu_of(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def prefill_cpu(tfxc, so, T, reps):
    """CPU seconds of one prefill: R runs minus one run, over R - 1; R grows
    from `reps` until the R - 1 runs take at least 0.5 CPU seconds."""
    base = [tfxc, "bench", so, "-p", str(T), "-n", "0", "--threads", "1"]
    one = cpu_of(base + ["-r", "1"])
    while True:
        many = cpu_of(base + ["-r", str(reps)])
        if many - one >= 0.5 or reps >= 1000:
            return max(0.0, many - one) / (reps - 1)
        reps = min(1000, reps * max(2, int(0.6 / max(many - one, 1e-3))))


def flash_units(H, T, W, KG=16, window=0):
    """H times the lane pairs of the (W-row tile, KG-key group) cells a causal
    prefill of T visits (with a sliding window: the groups holding a key of
    the window of one of the tile's rows)."""
    u = 0
    for q0 in range(0, T, W):
        q1 = min(q0 + W, T)
        last = (q1 - 1) // KG  # key groups holding a key <= the tile's last query
        first = max(0, q0 - window + 1) // KG if window else 0
        u += W * KG * (last - first + 1)
    return H * u


def row_units(H, T, window=0):
    """H times the (query, key) pairs the per-row kernel visits."""
    if not window:
        return H * T * (T + 1) / 2
    return H * sum(min(i + 1, window) for i in range(T))


def fit_line(xs, ys):
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfxc", default=os.path.join(ROOT, "build", "tfxc"))
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--dims", default="16,64")
    ap.add_argument("--T", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--W", type=int, default=16)
    ap.add_argument("--window", type=int, default=16, help="the narrow workload: sliding(window = N)")
    a = ap.parse_args()
    T, TS, W = a.T, a.T // 8, a.W
    rows = []
    fits = {"row": [], "flash": []}
    with tempfile.TemporaryDirectory() as work:

        def build(name, d, H, dense, window):
            tfx, so = os.path.join(work, name + ".tfx"), os.path.join(work, name + ".so")
            with open(tfx, "w") as f:
                f.write(source(a.dim, H, T, dense, window))
            subprocess.run([a.tfxc, tfx, "-O3", "--weights", "random:1", "-o", so], check=True)
            return so

        for d in [int(x) for x in a.dims.split(",")]:
            H = a.dim // d
            for sched in ("row", "flash"):
                # the full causal workload: t = a T + c T^2 through T / 8 and T
                so = build(f"f{d}{sched}", d, H, sched == "row", 0)
                t1 = prefill_cpu(a.tfxc, so, TS, 8 * a.reps)
                t2 = prefill_cpu(a.tfxc, so, T, a.reps)
                c = (t2 - T / TS * t1) / (T * T - T * TS)
                full, rest = c * T * T, t2 - c * T * T
                # the narrow workload: the same rest, the attention of a sliding window
                so = build(f"w{d}{sched}", d, H, sched == "row", a.window)
                narrow = prefill_cpu(a.tfxc, so, T, a.reps) - rest
                if sched == "row":
                    u_full, u_narrow, items = row_units(H, T), row_units(H, T, a.window), H * T
                else:
                    u_full, u_narrow, items = flash_units(H, T, W), flash_units(H, T, W, window=a.window), \
                        H * ((T + W - 1) // W)
                # full = u_full x + items y, narrow = u_narrow x + items y
                x = (full - narrow) / (u_full - u_narrow)
                y = (narrow - u_narrow * x) / items
                rows.append((d, sched, 1e3 * full, 1e3 * narrow, 1e9 * x, 1e9 * y))
                fits[sched].append((d, 1e9 * x, 1e9 * y))
                print(f"[attn_cost] d {d:4d} H {H:3d} {sched:5s}: attention {1e3 * full:7.2f} ms causal, "
                      f"{1e3 * narrow:6.2f} ms sliding({a.window}); {1e9 * x:.3f} ns per unit, "
                      f"{1e9 * y:.1f} ns per item", file=sys.stderr, flush=True)
    print(f"prefill of T = {T} at one thread, CPU time; dim {a.dim} = H x d; units: row (query, key) pairs, "
          f"flash W x 16 lane pairs (W = {W}); items: row (row, head), flash (tile of W rows, head)")
    print()
    print(f"| d | schedule | attention ms, causal | attention ms, sliding({a.window}) | ns per unit | ns per item |")
    print("|---:|---|---:|---:|---:|---:|")
    for d, sched, f, n, x, y in rows:
        print(f"| {d} | {sched} | {f:.2f} | {n:.2f} | {x:.3f} | {y:.1f} |")
    for sched in ("row", "flash"):
        ds = [d for d, _, _ in fits[sched]]
        a0, b0 = fit_line(ds, [x for _, x, _ in fits[sched]])
        per_d = sum(y for _, _, y in fits[sched]) / sum(ds)
        print(f"fit {sched}: {a0:.3f} + {b0:.4f} d ns per unit, {per_d:.2f} d ns per item")


if __name__ == "__main__":
    main()
