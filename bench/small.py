#!/usr/bin/env python3
"""bench/small.py — small models (issue 16, "Small models fully unrolled";
issue 12, "stories260K tg >= 1.3x"): stories260K's decode speed with and
without the small-model decode kernel (backend/k_tiny_heads.c, which the
cost model chooses under `schedule { decode = auto }` for head_dim <= 16),
measured in one run; with --unroll, with and without the fully unrolled
decode linears instead (backend/k_linear.c emit_unrolled, `schedule {
unroll = on }`; off: `unroll = off`, the looped micro-kernel). Never run by
the tests.

The model (examples/llama/stories260k.tfx, ../shared/models/stories260K.bin)
is compiled twice at -O3: `decode = row` (off: the per-row kernel) and
`decode = auto` (on), or `unroll = off` and `unroll = on`. Each round runs `tfxc bench MODEL -p 0 -n N` for both
(the order alternating between rounds: the machine is shared and its speed
drifts), at each thread count, and records
  - wall: tfxc bench's tokens/s (mean over -r runs of N decodes from an
    empty cache, so the KV length grows 1..N);
  - cpu: tokens per CPU-second of the process (its user + system time for
    `-r R` runs minus that of `-r R/10`, so compiling-free setup cancels),
    which a busy machine's other processes disturb less.
Prints a markdown table: medians over the rounds, the spread (min-max),
and on / off.

usage: bench/small.py [--tfxc build/tfxc] [--tg 64,256] [--threads 1,2]
       [--rounds 5] [--reps 200] [--unroll]"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = os.environ.get("TFX_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))


def compile_variant(tfxc, work, key, value):
    src = open(os.path.join(ROOT, "examples", "llama", "stories260k.tfx")).read()
    src = re.sub(r"^weights .*$", "", src, flags=re.M)
    src = src.replace("  threads   = auto", f"  threads   = auto\n  {key} = {value}")
    tfx, so = os.path.join(work, f"s260_{key}_{value}.tfx"), os.path.join(work, f"s260_{key}_{value}.so")
    with open(tfx, "w") as f:
        f.write(src)
    subprocess.run([tfxc, tfx, "-O3", "--weights", os.path.join(MODELS, "stories260K.bin"), "-o", so], check=True)
    stats = subprocess.run([tfxc, tfx, "-O3", "--weights", os.path.join(MODELS, "stories260K.bin"), "--stats"],
                           check=True, capture_output=True, text=True).stdout
    if key == "unroll":
        return so, f"{stats.count('decode=unrolled')} unrolled fused linears"
    chosen = sorted(set(re.findall(r"; decode (\w+)", stats)))
    return so, "decode " + ",".join(chosen)


def run_bench(tfxc, so, tg, reps, threads):
    """(wall t/s from tfxc bench, CPU seconds of the process)"""
    p = subprocess.Popen([tfxc, "bench", so, "-p", "0", "-n", str(tg), "-r", str(reps), "--threads", str(threads)],
                         stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"small: tfxc bench failed on {so}")
    m = re.search(r"\| tg\d+ +\| +([0-9.]+)", out)
    return float(m.group(1)), ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfxc", default=os.path.join(ROOT, "build", "tfxc"))
    ap.add_argument("--tg", default="64,256")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--unroll", action="store_true", help="off = unroll = off, on = unroll = on")
    a = ap.parse_args()
    key, values = ("unroll", ("off", "on")) if a.unroll else ("decode", ("row", "auto"))
    tgs = [int(x) for x in a.tg.split(",")]
    threads = [int(x) for x in a.threads.split(",")]
    with tempfile.TemporaryDirectory() as work:
        so = {}
        for v in values:
            so[v], chosen = compile_variant(a.tfxc, work, key, v)
            print(f"[small] {key} = {v}: --stats says {chosen}", file=sys.stderr)
        res = {}
        for r in range(a.rounds):
            for tg in tgs:
                for t in threads:
                    order = values if r % 2 == 0 else values[::-1]
                    for v in order:
                        reps = max(10, a.reps * 64 // tg)
                        wall, cpu_hi = run_bench(a.tfxc, so[v], tg, reps, t)
                        _, cpu_lo = run_bench(a.tfxc, so[v], tg, reps // 10, t)
                        cpu_tps = (reps - reps // 10) * tg / max(cpu_hi - cpu_lo, 1e-9)
                        res.setdefault((tg, t, v), []).append((wall, cpu_tps))
                        print(f"[small] round {r} tg{tg} {t} thr {v}: {wall:.0f} t/s wall, {cpu_tps:.0f} t/s cpu",
                              file=sys.stderr)
    what = ("off = `unroll = off` (the looped micro-kernel), on = `unroll = on` (the fully unrolled decode linears)"
            if a.unroll else "off = `decode = row`, on = `decode = auto` (the small-model kernel)")
    print(f"stories260K decode (tg N from an empty cache), tokens/s: median of {a.rounds} rounds (min-max); {what}")
    print()
    print("| test | threads | off wall | on wall | on / off wall | off cpu | on cpu | on / off cpu |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for tg in tgs:
        for t in threads:
            cells = []
            for k in (0, 1):
                off = [x[k] for x in res[(tg, t, values[0])]]
                on = [x[k] for x in res[(tg, t, values[1])]]
                ratios = [b / c for b, c in zip(on, off)]
                cells += [f"{statistics.median(off):,.0f} ({min(off):,.0f}-{max(off):,.0f})",
                          f"{statistics.median(on):,.0f} ({min(on):,.0f}-{max(on):,.0f})",
                          f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}-{max(ratios):.2f})"]
            print(f"| tg{tg} | {t} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
