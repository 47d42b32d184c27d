"""bench/run.py — measures every row of the benchmark in one run and reports
it (started by bench/run.sh, which builds and prepares everything first).

Each measurement is its own process (bench/bench.c for tfxc, OpenBLAS and the
triad; bench/peers.py for llama.cpp, ONNX Runtime and PyTorch) at one thread
count, so no engine's idle workers compete with another's. Every figure is
the median of REPS repetitions after a warm-up. Prints the markdown tables and
writes bench/results.json (and bench/results.md, the same tables).

The roofline is reported twice: against the best triad / read-only bandwidth
of the run (measured at its start and again after the model rows), and
paired: `bench roofline` measures one triad and one read-only pass right
before each of REPS tg runs, and the fraction is the median over those pairs
(the memory bandwidth of this shared host drifts by ±30% from minute to
minute, so a tg figure is best compared with the bandwidth of its moment).

Options: --reps N, --threads "1 2", --only triad,gemm,model,quant,batch
(default triad,gemm,model; also from TFXC_BENCH_REPS / TFXC_BENCH_THREADS /
TFXC_BENCH_ONLY). `quant` adds the weight-format rows of bench/quant.py
(TFXC_BENCH_QUANT_THREADS "2", TFXC_BENCH_QUANT_SHAPES "stories110m tinyllama",
TFXC_BENCH_QUANT_FORMATS "f32 q8_0 q4_0 q4_k_m bf16 q3_k", and issue #13's methods,
TFXC_BENCH_QUANT_METHODS "w8a8 ... sparse24(q8_0)" or "none").
`batch` adds the batched-decoding rows of issue #12 on the stories110M shape:
tfxc's `tfx_batch_step` (bench.c `batch`) and llama.cpp's `llama_decode` of a
`llama_batch` with one token per sequence (bench/peers.py `batch`), B
sequences for B in TFXC_BENCH_BATCH_SIZES ("1 4 16"), TFXC_BENCH_BATCH_TG (64)
steps, at TFXC_BENCH_BATCH_THREADS ("2"), for each of TFXC_BENCH_BATCH_FORMATS
("f32 q8_0": tfxc `--quantize q8_0` against llama.cpp's own Q8_0 of the same
F32 GGUF), plus tfxc's session decode (tg) of the same .so for reference.
TFXC_BENCH_WAIT_QUIET (15): before each measurement, wait up to this many
seconds for the CPUs to be at least 90% idle (a shared machine); the idle
fractions seen are reported. A measurement during which other processes used
more than 0.1 CPU is taken again (3 attempts at most, the least disturbed
kept); what the others used is kept with each result.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.environ.get("TFXC_BENCH_WORK", os.path.join(HERE, "work"))
BUILD = os.environ.get("TFXC_BENCH_BUILD", os.path.join(ROOT, "build-bench"))
BENCH = os.path.join(WORK, "bench")
PP, TG = 128, 64
TRIAD_MIB = 256  # per array: 3 × 256 MiB, far beyond the 32 MiB L3
# (N, K) of y = x · w^T; T values measured for each
GEMM_SHAPES = [((1024, 1024), [1024], "1024³"),
               ((768, 768), [1, 128], "q/k/v/o 768×768"),
               ((2048, 768), [1, 128], "w1/w3 2048×768"),
               ((768, 2048), [1, 128], "w2 768×2048"),
               ((32000, 768), [1, 128], "classifier 32000×768")]
PEERS = ["llamacpp", "onnxruntime", "torch"]
ENGINE_NAMES = {"tfxc": "tfxc", "llamacpp": "llama.cpp", "onnxruntime": "ONNX Runtime", "torch": "PyTorch"}

errors = []
quiet = []  # the idle fraction of the CPUs before each measurement
disturbed = []  # the CPUs other processes used during each kept measurement
OTHERS_MAX = 0.1
WAIT_QUIET = float(os.environ.get("TFXC_BENCH_WAIT_QUIET", "15"))


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def cpu_idle(seconds=0.5):
    """The fraction of the machine's CPU time that was idle over `seconds`."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)  # idle + iowait, total
    i0, t0 = snap()
    time.sleep(seconds)
    i1, t1 = snap()
    return (i1 - i0) / max(1, t1 - t0)


def wait_quiet():
    """On a shared machine, waits (at most WAIT_QUIET seconds) until other
    processes leave the CPUs at least 90% idle, so a measurement starts on a
    quiet machine; returns the idle fraction seen last (kept with the row)."""
    deadline = time.time() + WAIT_QUIET
    idle = cpu_idle()
    while idle < 0.9 and time.time() < deadline:
        time.sleep(2)
        idle = cpu_idle()
    quiet.append(idle)
    return idle


def busy_seconds():
    """CPU seconds the whole machine has spent busy (all CPUs) since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def run_json(cmd, threads):
    """Runs one measurement; when other processes took more than
    OTHERS_MAX of a CPU while it ran, runs it again (twice at most) and keeps
    the least disturbed result. The result gets `others_cpu`: the CPUs the
    rest of the machine used meanwhile."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    # OpenBLAS starts its idle workers at load time: only its own rows get them
    env["OPENBLAS_NUM_THREADS"] = str(threads) if cmd[1] in ("blas",) or cmd[0] != BENCH else "1"
    env.pop("TFX_NUM_THREADS", None)
    best = None
    for attempt in range(3):
        wait_quiet()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0, w0 = busy_seconds(), time.time()
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            errors.append(f"timeout: {' '.join(cmd)}")
            return None
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b1, w1 = busy_seconds(), time.time()
        own = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        others = max(0.0, (b1 - b0) - own) / max(w1 - w0, 1e-3)
        if p.returncode != 0:
            errors.append(f"failed ({p.returncode}): {' '.join(cmd)}: {p.stderr.strip()[-400:]}")
            log(errors[-1])
            return None
        res = None
        for line in reversed(p.stdout.strip().splitlines()):
            if line.startswith("{"):
                res = json.loads(line)
                break
        if res is None:
            errors.append(f"no result: {' '.join(cmd)}")
            return None
        res["others_cpu"] = round(others, 3)
        res["attempt"] = attempt + 1
        if best is None or others < best["others_cpu"]:
            best = res
        if others <= OTHERS_MAX:
            break
        log(f"other processes used {others:.2f} CPU during the measurement: again")
    disturbed.append(best["others_cpu"])
    return best


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception:  # noqa: BLE001 - informational only
        return ""


def machine():
    info = {}
    for line in sh("lscpu").splitlines():
        k, _, v = line.partition(":")
        if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L1d cache", "L2 cache", "L3 cache",
                         "Hypervisor vendor", "CPU family", "Model"):
            info[k.strip()] = v.strip()
    flags = sh("grep -m1 '^flags' /proc/cpuinfo")
    info["isa"] = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16") if f" {f}" in flags)
    info["memory"] = sh("free -g | awk '/Mem:/ {print $2 \" GiB\"}'")
    info["kernel"] = platform.release()
    return info


def versions():
    rev = os.environ.get("TFXC_BENCH_REV") or sh(f"cd {ROOT} && git rev-parse --short HEAD 2>/dev/null")
    if rev and not os.environ.get("TFXC_BENCH_REV") and sh(f"cd {ROOT} && git status --porcelain -uno"):
        rev += " (modified tree)"
    v = {"tfxc": rev or "unknown",
         "openblas": sh("dpkg-query -W -f='${Version}' libopenblas0-pthread"),
         "torch": sh("dpkg-query -W -f='${Version}' python3-torch")}
    for mod, key in (("llama_cpp", "llama-cpp-python"), ("onnxruntime", "onnxruntime")):
        try:
            v[key] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            v[key] = None
    if v.get("llama-cpp-python"):
        from peers import llamacpp_extra_bufts

        if not llamacpp_extra_bufts():
            v["llama-cpp-python"] += " (use_extra_bufts off: no AMX or repacked weights, see bench/peers.py)"
    return v


def ckpt_cfg(path):
    with open(path, "rb") as f:
        dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack("<7i", f.read(28))
    return dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=abs(vocab),
                shared=vocab > 0)


def bytes_per_token(c, tg):
    """Weight bytes one decoded token reads (every matrix once, the norms, one
    embedding row; the tied classifier is the embedding table), and the mean
    KV-cache bytes over tg decodes from an empty cache."""
    d, h, L = c["dim"], c["hidden"], c["layers"]
    kv = c["kv_heads"] * (d // c["heads"])
    per_layer = 2 * d + 2 * d * d + 2 * kv * d + 3 * d * h
    params = L * per_layer + d + c["vocab"] * d + d
    if not c["shared"]:
        params += c["vocab"] * d
    kv_bytes = 2 * L * kv * 4 * (tg + 1) / 2
    return 4 * params, kv_bytes


def fmt(x, nd=1):
    if x is None:
        return "—"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def ratio(a, b):
    return a / b if a and b else None


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=int(os.environ.get("TFXC_BENCH_REPS", "5")))
    ap.add_argument("--threads", default=os.environ.get("TFXC_BENCH_THREADS", "1 2"))
    ap.add_argument("--only", default=os.environ.get("TFXC_BENCH_ONLY", "triad,gemm,model"))
    ap.add_argument("--render", metavar="RESULTS.json", help="only print the tables of a recorded run")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            print(markdown(json.load(f)))
        return
    reps = max(5, a.reps)
    threads = [int(t) for t in a.threads.split()]
    only = set(a.only.split(","))
    ckpts = os.environ.get("TFXC_BENCH_CKPTS", os.path.join(WORK, "stories110m.bin")).split()
    py = sys.executable
    t_start = time.time()
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": machine(),
           "versions": versions(), "reps": reps, "threads": threads, "load_before": os.getloadavg(),
           "bandwidth": [], "gemm": [], "models": [], "roofline": [], "checks": {}}

    if "triad" in only:
        for t in threads:
            log(f"triad, {t} thread(s)")
            r = run_json([BENCH, "triad", str(t), str(reps), str(TRIAD_MIB)], t)
            if r:
                r["when"] = "first"
                res["bandwidth"].append(r)

    if "gemm" in only:
        for (N, K), Ts, label in GEMM_SHAPES:
            so = os.path.join(WORK, f"gemm_{N}x{K}.so")
            for T in Ts:
                for t in threads:
                    log(f"gemm {label} T={T}, {t} thread(s)")
                    mine = run_json([BENCH, "gemm", so, str(T), str(t), str(reps)], t)
                    blas = run_json([BENCH, "blas", str(T), str(N), str(K), str(t), str(reps)], t)
                    g1 = mine["gflops"] if mine else None
                    g2 = blas["gflops"] if blas else None
                    res["gemm"].append({"shape": label, "T": T, "N": N, "K": K, "threads": t, "tfxc_gflops": g1,
                                        "openblas_gflops": g2, "ratio": ratio(g1, g2),
                                        "others_cpu": [x and x["others_cpu"] for x in (mine, blas)]})

    if "model" in only:
        for ck in ckpts:
            stem = os.path.splitext(os.path.basename(ck))[0].lower()
            so = os.path.join(WORK, stem + ".so")
            for t in threads:
                row = {"model": stem, "threads": t, "pp": PP, "tg": TG}
                log(f"{stem}: tfxc, {t} thread(s)")
                r = run_json([BENCH, "model", so, str(t), str(reps), str(PP), str(TG)], t)
                row["tfxc"] = r and {"pp_tps": r["pp_tps"], "tg_tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
                # tg paired with the bandwidth measured right before it, REPS times
                log(f"{stem}: tfxc roofline pairs, {t} thread(s)")
                r = run_json([BENCH, "roofline", so, str(t), str(reps), str(TG), str(TRIAD_MIB)], t)
                row["tfxc_paired"] = r and {k: r[k] for k in ("tg_tps", "triad_gbs", "read_gbs", "others_cpu")}
                for e in PEERS:
                    log(f"{stem}: {e}, {t} thread(s)")
                    r = run_json([py, os.path.join(HERE, "peers.py"), e, ck, WORK, str(t), str(reps), str(PP),
                                  str(TG)], t)
                    row[e] = r and {"pp_tps": r["pp_tps"], "tg_tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
                res["models"].append(row)
            if stem == "stories260k":
                # llama.cpp reads the same GGUF bytes with the same RoPE pairing:
                # its greedy ids from BOS must equal tfxc's.
                n = 32
                mine = sh(f"{BUILD}/tfxc run {so} -n {n} --temperature 0 --print-ids 2>/dev/null")
                theirs = sh(f"{py} {HERE}/peers.py greedy {ck} {WORK}/{stem}.gguf {n} 2>/dev/null")
                res["checks"]["stories260k_greedy_tfxc"] = mine
                res["checks"]["stories260k_greedy_llamacpp"] = theirs
                res["checks"]["stories260k_greedy_equal"] = bool(mine) and mine.split() == theirs.split()

        if "triad" in only:
            # again after the model rows: on a shared machine the bandwidth of
            # one moment can be low; the roofline takes the best of the two,
            # which is the harder bar
            for t in threads:
                log(f"triad again, {t} thread(s)")
                r = run_json([BENCH, "triad", str(t), str(reps), str(TRIAD_MIB)], t)
                if r:
                    r["when"] = "after the models"
                    res["bandwidth"].append(r)
        bw = {}
        for b in res["bandwidth"]:
            best = bw.setdefault(b["threads"], {"threads": b["threads"], "triad_gbs": 0.0, "read_gbs": 0.0})
            best["triad_gbs"] = max(best["triad_gbs"], b["triad_gbs"])
            best["read_gbs"] = max(best["read_gbs"], b["read_gbs"])
        for row in res["models"]:
            ck = next(c for c in ckpts if os.path.splitext(os.path.basename(c))[0].lower() == row["model"])
            wb, kvb = bytes_per_token(ckpt_cfg(ck), TG)
            b = bw.get(row["threads"])
            roof = b["triad_gbs"] * 1e9 / (wb + kvb) if b else None
            roof_read = b["read_gbs"] * 1e9 / (wb + kvb) if b else None
            rr = {"model": row["model"], "threads": row["threads"], "weight_bytes_per_token": wb,
                  "kv_bytes_per_token_mean": kvb, "triad_gbs": b and b["triad_gbs"], "roofline_tps": roof,
                  "read_gbs": b and b["read_gbs"], "read_roofline_tps": roof_read}
            for e in ["tfxc"] + PEERS:
                tg = row[e]["tg_tps"] if row.get(e) else None
                rr[e + "_tg_tps"] = tg
                rr[e + "_fraction"] = ratio(tg, roof)
                rr[e + "_read_fraction"] = ratio(tg, roof_read)
            p = row.get("tfxc_paired")
            if p:  # the median over the pairs of tg / (bandwidth of the moment / bytes per token)
                for key, bwk in (("paired_fraction", "triad_gbs"), ("paired_read_fraction", "read_gbs")):
                    fr = sorted(t * (wb + kvb) / (g * 1e9) for t, g in zip(p["tg_tps"], p[bwk]))
                    rr["tfxc_" + key] = fr[len(fr) // 2]
                rr["tfxc_paired"] = p
            res["roofline"].append(rr)

    if "batch" in only:  # batched decoding, issue #12
        res["batch"] = batch_rows(ckpts, reps, py)

    if "quant" in only:  # the weight formats of issue #11 (bench/quant.py)
        import quant

        res["quant"] = quant.rows({
            "run_json": run_json, "log": log, "errors": errors, "BENCH": BENCH, "BUILD": BUILD, "WORK": WORK,
            "PY": py, "reps": reps, "PP": PP, "TG": TG, "TRIAD_MIB": TRIAD_MIB,
            "threads": [int(t) for t in os.environ.get("TFXC_BENCH_QUANT_THREADS", "2").split()],
            "shapes": os.environ.get("TFXC_BENCH_QUANT_SHAPES", "stories110m tinyllama").split(),
            "models": os.environ.get("TFX_MODELS_DIR", os.path.join(ROOT, "..", "shared", "models"))})

    res["load_after"] = os.getloadavg()
    res["idle_before_measurements"] = {"min": min(quiet, default=None), "median": sorted(quiet)[len(quiet) // 2]
                                       if quiet else None, "count": len(quiet)}
    res["others_cpu_during_measurements"] = {"max": max(disturbed, default=None),
                                             "median": sorted(disturbed)[len(disturbed) // 2]
                                             if disturbed else None, "count": len(disturbed)}
    res["seconds"] = round(time.time() - t_start, 1)
    res["targets"] = targets(res)
    res["errors"] = errors
    md = markdown(res)
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "results.md"), "w") as f:
        f.write(md)
    print(md)


BATCH_LLAMA_FTYPE = {"f32": None, "q8_0": "Q8_0"}  # tfxc's --quantize name -> llama.cpp's file type


def batch_rows(ckpts, reps, py):
    """The batched-decoding rows (issue #12): for each format and thread
    count, tfxc's session decode (tgTG of bench.c `model`), then for each
    batch size B tfxc's `batch` and llama.cpp's batched decode, alternated so
    that both see the same minutes of this host. Same weights (run.sh's
    stories110M checkpoint; q8_0: tfxc quantizes it with --quantize q8_0,
    llama.cpp quantizes the F32 GGUF of the same numbers with its own
    quantizer), same threads, same token ids."""
    sizes = [int(x) for x in os.environ.get("TFXC_BENCH_BATCH_SIZES", "1 4 16").split()]
    tg = int(os.environ.get("TFXC_BENCH_BATCH_TG", str(TG)))
    bthreads = [int(x) for x in os.environ.get("TFXC_BENCH_BATCH_THREADS", "2").split()]
    formats = os.environ.get("TFXC_BENCH_BATCH_FORMATS", "f32 q8_0").split()
    ck = next((c for c in ckpts if os.path.basename(c).lower() == "stories110m.bin"), None)
    rows = []
    if not ck:
        errors.append("batch: no stories110m.bin among the checkpoints: the batch rows were not measured")
        return rows
    tfxc = os.path.join(BUILD, "tfxc")
    tfx = os.path.join(ROOT, "examples", "llama", "stories110m.tfx")
    for fmt in formats:
        if fmt not in BATCH_LLAMA_FTYPE:
            errors.append(f"batch: unknown format {fmt} (f32, q8_0)")
            continue
        ftype = BATCH_LLAMA_FTYPE[fmt]
        so = os.path.join(WORK, "stories110m.so")
        gg = os.path.join(WORK, "stories110m.gguf")
        if ftype:
            so = os.path.join(WORK, f"stories110m.{fmt}.so")
            log(f"batch: tfxc compiles stories110m ({fmt})")
            p = subprocess.run([tfxc, tfx, "--weights", ck, "--quantize", fmt, "-o", so], capture_output=True,
                               text=True)
            if p.returncode != 0:
                errors.append(f"batch: tfxc --quantize {fmt} failed: {p.stderr.strip()[-400:]}")
                continue
            f32 = gg
            gg = os.path.join(WORK, f"stories110m.{ftype}.gguf")
            if not os.path.exists(gg) or os.path.getmtime(gg) < os.path.getmtime(f32):
                log(f"batch: llama.cpp quantizes stories110m to {ftype}")
                p = subprocess.run([py, os.path.join(HERE, "quant.py"), "quantize", f32, gg, ftype],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    errors.append(f"batch: llama.cpp's quantizer ({ftype}) failed: {p.stderr.strip()[-400:]}")
                    continue
        for t in bthreads:
            log(f"batch: stories110m {fmt}: tfxc session decode, {t} thread(s)")
            r = run_json([BENCH, "model", so, str(t), str(reps), "0", str(tg)], t)
            session = r and r["tg_tps"]
            for nb in sizes:
                row = {"model": "stories110m", "format": fmt, "threads": t, "batch": nb, "tg": tg,
                       "tfxc_session_tg_tps": session}
                log(f"batch: stories110m {fmt}: tfxc batch of {nb}, {t} thread(s)")
                r = run_json([BENCH, "batch", so, str(t), str(reps), str(nb), str(tg)], t)
                row["tfxc"] = r and {"tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
                log(f"batch: stories110m {fmt}: llama.cpp batch of {nb}, {t} thread(s)")
                r = run_json([py, os.path.join(HERE, "peers.py"), "batch", gg, str(t), str(reps), str(nb), str(tg)],
                             t)
                row["llamacpp"] = r and {"tps": r["tg_tps"], "others_cpu": r["others_cpu"]}
                rows.append(row)
    # ratios against batch 1 of the same engine, format and thread count
    for row in rows:
        one = next((x for x in rows if x["batch"] == 1 and x["format"] == row["format"]
                    and x["threads"] == row["threads"]), None)
        for e in ("tfxc", "llamacpp"):
            mine, base = row.get(e), one and one.get(e)
            row[e + "_vs_batch1"] = ratio(mine and mine["tps"], base and base["tps"])
        row["tfxc_vs_llamacpp"] = ratio(row["tfxc"] and row["tfxc"]["tps"], row["llamacpp"] and row["llamacpp"]["tps"])
    return rows


def targets(res):
    out = []

    def add(name, value, goal, unit="×"):
        met = None if value is None else value >= goal
        out.append({"target": name, "value": value, "goal": goal, "unit": unit, "met": met})

    T2 = 2
    for g in res["gemm"]:
        if g["threads"] != T2:
            continue
        goal = 0.9 if g["shape"] == "1024³" else 1.0
        add(f"GEMM {g['shape']} T={g['T']} vs OpenBLAS", g["ratio"], goal)
    for m in res["models"]:
        if m["threads"] != T2 or not m.get("tfxc"):
            continue
        mine, lc = m["tfxc"], m.get("llamacpp")
        if m["model"] == "stories110m":
            add("stories110m tg64 vs llama.cpp", ratio(mine["tg_tps"], lc and lc["tg_tps"]), 0.95)
            add("stories110m pp128 vs llama.cpp", ratio(mine["pp_tps"], lc and lc["pp_tps"]), 1.2)
        if m["model"] == "stories260k":
            add("stories260k tg64 vs llama.cpp", ratio(mine["tg_tps"], lc and lc["tg_tps"]), 3.0)
        for e in ("onnxruntime", "torch"):
            for k in ("pp", "tg"):
                p = m.get(e)
                add(f"{m['model']} {k}{m[k]} vs {ENGINE_NAMES[e]}",
                    ratio(mine[k + "_tps"], p and p[k + "_tps"]), 1.0)
    for b in res.get("batch", []):
        if b["threads"] != T2:
            continue
        goal = {4: 3.0, 16: 8.0}.get(b["batch"])
        if goal:
            add(f"stories110m {b['format']} batch {b['batch']} vs batch 1 (tfxc)", b["tfxc_vs_batch1"], goal)
            add(f"stories110m {b['format']} batch {b['batch']} vs llama.cpp's batch {b['batch']}",
                b["tfxc_vs_llamacpp"], 1.2)
    for r in res["roofline"]:
        if r["threads"] == T2 and r["model"] == "stories110m":
            add("stories110m tg64 fraction of the triad roofline (bandwidth at the start and the end)",
                r["tfxc_fraction"], 0.9, "")
            add("stories110m tg64 fraction of the triad roofline (paired with the bandwidth of the moment)",
                r.get("tfxc_paired_fraction"), 0.9, "")
    return out


def markdown(res):
    m = res["machine"]
    L = [f"Run {res['date']} on {m.get('Model name', '?')} ({m.get('CPU(s)', '?')} CPUs, {m.get('isa', '')}; "
         f"L2 {m.get('L2 cache', '?')}, L3 {m.get('L3 cache', '?')}; {m.get('memory', '?')}), "
         f"median of {res['reps']} repetitions; load average before/after "
         f"{res['load_before'][0]:.2f}/{res['load_after'][0]:.2f}; CPUs idle before each measurement: "
         f"median {100 * (res['idle_before_measurements']['median'] or 0):.0f}%, "
         f"min {100 * (res['idle_before_measurements']['min'] or 0):.0f}%"
         + (f"; CPUs used by other processes during a kept measurement: median "
            f"{res['others_cpu_during_measurements']['median']:.2f}, max {res['others_cpu_during_measurements']['max']:.2f}"
            if res.get("others_cpu_during_measurements", {}).get("max") is not None else "")
         + f"; {res['seconds']:.0f} s in all.",
         "Versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()) + ".", ""]
    if res["bandwidth"]:
        L += ["| threads | measured | triad GB/s | read-only GB/s |", "|---:|---|---:|---:|"]
        L += [f"| {b['threads']} | {b.get('when', '')} | {b['triad_gbs']:.1f} | {b['read_gbs']:.1f} |"
              for b in res["bandwidth"]]
        L.append("")
    if res["gemm"]:
        # at T = 1 every weight (4 bytes) is used by 2 flops: GB/s of weights = 2 × GFLOP/s
        L += ["| GEMM (N×K) | T | threads | tfxc GFLOP/s | OpenBLAS GFLOP/s | tfxc / OpenBLAS | "
              "weights GB/s (T=1): tfxc; OpenBLAS |", "|---|---:|---:|---:|---:|---:|---:|"]
        L += [f"| {g['shape']} | {g['T']} | {g['threads']} | {fmt(g['tfxc_gflops'])} | "
              f"{fmt(g['openblas_gflops'])} | {fmt_ratio(g['ratio'])} | "
              + (f"{fmt(g['tfxc_gflops'] and 2 * g['tfxc_gflops'])}; "
                 f"{fmt(g['openblas_gflops'] and 2 * g['openblas_gflops'])}" if g["T"] == 1 else "") + " |"
              for g in res["gemm"]]
        L.append("")
    if res["models"]:
        L += ["| model | test | threads | tfxc t/s | llama.cpp t/s | ONNX Runtime t/s | PyTorch t/s | "
              "tfxc / llama.cpp | tfxc / ORT | tfxc / PyTorch |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in res["models"]:
            for k in ("pp", "tg"):
                key = k + "_tps"
                v = {e: (row[e][key] if row.get(e) else None) for e in ["tfxc"] + PEERS}
                L.append(f"| {row['model']} | {k}{row[k]} | {row['threads']} | {fmt(v['tfxc'])} | "
                         f"{fmt(v['llamacpp'])} | {fmt(v['onnxruntime'])} | {fmt(v['torch'])} | "
                         + " | ".join(fmt_ratio(ratio(v["tfxc"], v[e])) for e in PEERS) + " |")
        L.append("")
    if res["roofline"]:
        L += ["| model | threads | weights MB/token | KV MB/token (mean) | roofline t/s (triad; read-only) | "
              "tfxc tg | fraction (triad; read) | paired: tfxc tg, fraction (triad; read) | llama.cpp tg | "
              "fraction (triad; read) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in res["roofline"]:
            p = r.get("tfxc_paired")
            paired = "—"
            if p:
                tgs = sorted(p["tg_tps"])
                paired = (f"{fmt(tgs[len(tgs) // 2])}, {fmt(r.get('tfxc_paired_fraction'), 2)}; "
                          f"{fmt(r.get('tfxc_paired_read_fraction'), 2)}")
            L.append(f"| {r['model']} | {r['threads']} | {r['weight_bytes_per_token'] / 1e6:.1f} | "
                     f"{r['kv_bytes_per_token_mean'] / 1e6:.2f} | {fmt(r['roofline_tps'])}; "
                     f"{fmt(r['read_roofline_tps'])} | {fmt(r['tfxc_tg_tps'])} | {fmt(r['tfxc_fraction'], 2)}; "
                     f"{fmt(r['tfxc_read_fraction'], 2)} | {paired} | {fmt(r['llamacpp_tg_tps'])} | "
                     f"{fmt(r['llamacpp_fraction'], 2)}; {fmt(r['llamacpp_read_fraction'], 2)} |")
        L.append("")
    if res.get("batch"):
        L += ["| batched decoding | format | threads | batch | tfxc t/s (all sequences) | × tfxc batch 1 | "
              "llama.cpp t/s | × llama.cpp batch 1 | tfxc / llama.cpp | tfxc session tg t/s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for b in res["batch"]:
            v = {e: (b[e]["tps"] if b.get(e) else None) for e in ("tfxc", "llamacpp")}
            L.append(f"| {b['model']} tg{b['tg']} | {b['format']} | {b['threads']} | {b['batch']} | {fmt(v['tfxc'])} | "
                     f"{fmt_ratio(b['tfxc_vs_batch1'])} | {fmt(v['llamacpp'])} | {fmt_ratio(b['llamacpp_vs_batch1'])} | "
                     f"{fmt_ratio(b['tfxc_vs_llamacpp'])} | {fmt(b['tfxc_session_tg_tps'])} |")
        L.append("")
    if res["targets"]:
        L += ["| target (2 threads) | measured | goal | status |", "|---|---:|---:|---|"]
        for t in res["targets"]:
            if t["met"] is None:
                st = "not measured"
            elif t["met"]:
                st = "met"
            else:
                st = f"missed by {100 * (1 - t['value'] / t['goal']):.0f}%"
            val = "—" if t["value"] is None else f"{t['value']:.2f}{t['unit']}"
            L.append(f"| {t['target']} | {val} | ≥ {t['goal']}{t['unit']} | {st} |")
        L.append("")
    if res.get("quant"):
        import quant

        L.append(quant.markdown(res["quant"]))
    c = res["checks"]
    if "stories260k_greedy_equal" in c:
        L.append("Check: llama.cpp's greedy ids on the stories260K GGUF "
                 + ("equal" if c["stories260k_greedy_equal"] else "DIFFER from") + " tfxc's (32 tokens from BOS).")
    if res["errors"]:
        L.append("Errors: " + "; ".join(res["errors"]))
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
