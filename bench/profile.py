"""bench/profile.py — where a tfxc model's time goes: samples one benchmark
process (bench/work/bench) with `perf record` (or, where perf cannot count,
valgrind's callgrind on the same command, though valgrind cannot run
AVX-512 code) and sums the samples by kernel
kind: every generated function is named tfx_<entry>_<node>_<op> (the call
of one node) or tfx_body_<entry>_<op>_<shape> (a parallel body run by the
thread pool), so the op names group them; runtime symbols (thread pool,
libffi calls), the OS kernel and libc are kept apart.

  python3 bench/profile.py BENCH-ARGUMENTS...       (those of bench/bench.c)
      model bench/work/stories110m.so 2 5 0 64   → the decode (tg64) profile
      model bench/work/stories110m.so 2 5 128 0  → the prefill (pp128) profile
      gemm bench/work/gemm_1024x1024.so 1024 2 5 → one GEMM
"""
import collections
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.environ.get("TFXC_BENCH_WORK", os.path.join(HERE, "work"))
BENCH = os.path.join(WORK, "bench")

RUNTIME_SYMS = {"worker_main", "run", "fail", "stop_workers.part.0"}


def kind(dso, sym):
    m = re.match(r"tfx_body_(?:fwd|dec)_([a-z_]+?)(?:_[A-Z0-9].*)?$", sym)
    if m:
        return "kernel: " + m.group(1)
    m = re.match(r"tfx_(?:fwd|dec)_\d+_(\w+)$", sym)
    if m:
        return "kernel: " + m.group(1)
    if "kernel" in dso or sym.startswith("[k]"):
        return "OS kernel (scheduling, futex, page faults)"
    if sym.startswith("tfx_rt_") or sym in RUNTIME_SYMS:
        return "runtime: thread pool / calls"
    if "ffi" in dso:
        return "runtime: libffi"
    if "libc" in dso:
        return "libc (memcpy, memset, …)"
    return f"other ({dso})"


def perf_works():
    """perf can sample: with hardware counters, or (in a VM without a PMU,
    where `perf stat -e instructions` says <not supported>) with the cpu-clock
    software timer, which still says where the time goes."""
    try:
        p = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", "/dev/null", "true"],
                           capture_output=True, text=True)
        return p.returncode == 0
    except FileNotFoundError:
        return False


def profile_perf(cmd):
    data = os.path.join(WORK, "perf.data")
    subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-o", data] + cmd, check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "dso,sym", "-F", "overhead,dso,sym"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*\S)", line)
        if m:
            pct, dso, lvl, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
            rows.append((pct, dso if lvl != "k" else "[kernel]", sym))
    return rows


def profile_callgrind(cmd):
    out = os.path.join(WORK, "callgrind.out")
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"] + cmd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    txt = subprocess.run(["callgrind_annotate", "--threshold=100", out], capture_output=True, text=True).stdout
    rows, total = [], 0.0
    for line in txt.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+?):(\S+)", line)
        if m:
            n = float(m.group(1).replace(",", ""))
            rows.append((n, os.path.basename(m.group(2)), m.group(3)))
            total += n
    return [(100.0 * n / total, dso, sym) for n, dso, sym in rows] if total else []


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("model", "gemm"):
        sys.exit(__doc__)
    cmd = [BENCH] + sys.argv[1:]
    tool = "perf" if perf_works() else "callgrind"
    rows = profile_perf(cmd) if tool == "perf" else profile_callgrind(cmd)
    by_kind = collections.Counter()
    for pct, dso, sym in rows:
        by_kind[kind(dso, sym)] += pct
    print(f"{tool}: {' '.join(os.path.basename(c) for c in cmd)}")
    print("| where | share of samples |\n|---|---:|")
    for k, v in by_kind.most_common():
        if v >= 0.3:
            print(f"| {k} | {v:.1f}% |")
    print("\ntop symbols:")
    for pct, dso, sym in sorted(rows, reverse=True)[:12]:
        print(f"  {pct:5.2f}%  {dso:22s} {sym}")


if __name__ == "__main__":
    main()
