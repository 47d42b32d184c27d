#!/usr/bin/env python3
"""bench/decode.py — split decode (issue 12): one-token decodes at a long KV
on the issue's small model (dim 64, 4 heads of 16, 2 layers, causal, RoPE,
max_seq KV) where attention dominates a decode step. Never run by the tests.

The model is compiled with `schedule { decode = row }` (one work item per
head) and `decode = split(N)` for each N of --splits (items (head, part),
backend/k_split_decode.c), and `decode = auto` (the cost model's choice);
each is timed with `bench decode MODEL THREADS REPS KV TG` (TG decodes at KV
lengths KV-TG+1..KV after an untimed prefill, median of REPS) at every
thread count of --threads, in rounds that alternate the variants (a loaded
machine drifts; compare within a round). Prints a markdown table: tokens/s
and the ratio to row on one thread of the same round.

usage: bench/decode.py TFXC BENCH_BIN [--kv 4096] [--tg 64] [--reps 5]
       [--threads 1,2] [--splits 2,4,8] [--rounds 2] [--heads 4]
BENCH_BIN is bench/bench.c built as bench/run.sh builds it."""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def source(max_seq, heads, decode):
    return f"""model decode_bench
const dim = 64, heads = {heads}, vocab = 256, max_seq = {max_seq}, eps = 1e-5
param tok_embeddings : f32[vocab, dim]
param norm : f32[dim]
param output : f32[vocab, dim]
block layer(x : f32[T, dim]) -> f32[T, dim] {{
  param attention_norm : f32[dim]
  param wq : f32[dim, dim]
  param wk : f32[dim, dim]
  param wv : f32[dim, dim]
  param wo : f32[dim, dim]
  param ffn_norm : f32[dim]
  param w1 : f32[4 * dim, dim]
  param w2 : f32[dim, 4 * dim]
  h = x + attention(rmsnorm(x, attention_norm, eps = eps), wq, wk, wv, wo, heads = heads,
                    position = rope(theta = 10000), mask = causal)
  return h + linear(gelu(linear(rmsnorm(h, ffn_norm, eps = eps), w1)), w2)
}}
forward(tokens : i32[T]) -> f32[T, vocab] {{
  x = embedding(tok_embeddings, tokens)
  x = layer(x, prefix = "layers.0")
  x = layer(x, prefix = "layers.1")
  return linear(rmsnorm(x, norm, eps = eps), output)
}}
schedule {{
  decode = {decode}
}}
"""


def compile_model(tfxc, work, name, src):
    tfx = os.path.join(work, name + ".tfx")
    so = os.path.join(work, name + ".so")
    with open(tfx, "w") as f:
        f.write(src)
    subprocess.run([tfxc, tfx, "-O3", "--weights", "random:1", "-o", so], check=True)
    return so


def tg_tps(bench, so, threads, reps, kv, tg):
    out = subprocess.run([bench, "decode", so, str(threads), str(reps), str(kv), str(tg)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["tg_tps"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tfxc")
    ap.add_argument("bench")
    ap.add_argument("--kv", type=int, default=4096)
    ap.add_argument("--tg", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--splits", default="2,4,8")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    variants = [("row", "row")] + [(f"split({s})", f"split({s})") for s in a.splits.split(",") if s] + [("auto", "auto")]
    with tempfile.TemporaryDirectory() as work:
        sos = {label: compile_model(a.tfxc, work, f"v{k}", source(a.kv, a.heads, d))
               for k, (label, d) in enumerate(variants)}
        print(f"decode at KV {a.kv - a.tg + 1}..{a.kv} (max_seq {a.kv}), dim 64, {a.heads} heads, 2 layers; "
              f"tokens/s, median of {a.reps}; ratio to row on {threads[0]} thread(s) of the same round")
        print()
        print("| round | variant | " + " | ".join(f"{t} thr t/s | ×" for t in threads) + " |")
        print("| --- | --- | " + " | ".join("--- | ---" for _ in threads) + " |")
        for r in range(a.rounds):
            res = {}
            for label, _ in variants:
                for t in threads:
                    res[(label, t)] = tg_tps(a.bench, sos[label], t, a.reps, a.kv, a.tg)
                    print(f"[decode] round {r} {label} {t} threads: {res[(label, t)]:.0f} t/s", file=sys.stderr)
            base = res[("row", threads[0])]
            for label, _ in variants:
                cells = " | ".join(f"{res[(label, t)]:.0f} | {res[(label, t)] / base:.2f}" for t in threads)
                print(f"| {r} | {label} | {cells} |")


if __name__ == "__main__":
    main()
