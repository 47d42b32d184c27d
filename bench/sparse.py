#!/usr/bin/env python3
"""bench/sparse.py — sparse attention patterns as a fraction of dense causal
flash attention (issue 12's small model: dim 64, 4 heads, head_dim 16, 2
layers, causal, prefill of T tokens, one thread; or, with --shape
stories110m, the stories110M shape: dim 768, 12 layers, 12 heads of 64,
SwiGLU hidden 2048, vocab 32000, interleaved RoPE, random weights).
Never run by the tests.

For each pattern it compiles the model twice with tfxc: the default schedule
(block_sparse for a pattern, flash without one) and `schedule { attention =
dense }` (the per-row kernel every pattern ran before the block-sparse
schedule), then times one prefill of T tokens with `bench model` (median of
REPS after a warm-up). Prints a markdown table: tokens/s and time / time of
dense causal flash in the same run.

usage: bench/sparse.py TFXC BENCH_BIN [--shape small|stories110m] [--T 4096]
       [--max-seq N] [--reps 3] [--threads 1] [--only sliding,...] [--no-before]
       [--attention-only]
BENCH_BIN is bench/bench.c built as bench/run.sh builds it.

The stories110M shape at T = max_seq = 4,096 (one prefill of 4,096 tokens
per pattern; 2 threads: each .so holds 440 MB of random weights, compiled
one at a time into a temporary directory):

    bench/sparse.py build/tfxc BENCH --shape stories110m --threads 2 --reps 1 --no-before --attention-only

takes ~5 minutes on a quiet 2-vCPU machine (the per-row "before" column
would add the dense per-row kernel at 4,096 keys for every pattern: leave
it out). Its linears cost more than dense causal attention, so the whole
model's × dense cannot reach the issue's 0.3 (sliding(256) at the same
efficiency as dense would be ~0.7 by FLOPs); --attention-only adds the
model with sliding(16) as the floor of the non-attention work and the
column (t - t_floor) / (t_dense - t_floor), the attention alone (an
estimate: sliding(16) still visits 1-2 key tiles per query tile)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

PATTERNS = [
    ("dense causal", None),
    ("sliding(256)", "sliding(window = 256)"),
    ("dilated(2, window 512)", "dilated(2, window = 512)"),
    ("strided(64)", "strided(stride = 64)"),
    ("fixed(256, summary 8)", "fixed(stride = 256, summary = 8)"),
    ("longformer(256, 2 globals)", "longformer(window = 256, global = 2)"),
    ("bigbird(64, 1 global, 2 random)", "bigbird(block_size = 64, global = 1, random = 2, seed = 7)"),
]


def source(sparse, max_seq, dense, shape="small"):
    sp = f", sparse = {sparse}" if sparse else ""
    sched = "schedule {\n  attention = dense\n}\n" if dense else ""
    if shape == "stories110m":
        return f"""model sparse_bench_110m
const dim = 768, layers = 12, heads = 12, hidden = 2048, vocab = 32000, max_seq = {max_seq}, eps = 1e-5
param tok_embeddings : f32[vocab, dim]
param norm : f32[dim]
block layer(x : f32[T, dim]) -> f32[T, dim] {{
  param attention_norm : f32[dim]
  param wq : f32[dim, dim]
  param wk : f32[dim, dim]
  param wv : f32[dim, dim]
  param wo : f32[dim, dim]
  param ffn_norm : f32[dim]
  param w1 : f32[hidden, dim]
  param w2 : f32[dim, hidden]
  param w3 : f32[hidden, dim]
  h = x + attention(rmsnorm(x, attention_norm, eps = eps), wq, wk, wv, wo, heads = heads,
                    position = rope(theta = 10000, style = interleaved), mask = causal{sp})
  f = rmsnorm(h, ffn_norm, eps = eps)
  return h + linear(silu(linear(f, w1)) * linear(f, w3), w2)
}}
forward(tokens : i32[T]) -> f32[T, vocab] {{
  x = embedding(tok_embeddings, tokens)
  x = repeat(layers) layer(x)
  return linear(rmsnorm(x, norm, eps = eps), tok_embeddings)
}}
{sched}"""
    return f"""model sparse_bench
const dim = 64, heads = 4, vocab = 256, max_seq = {max_seq}, eps = 1e-5
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
                    position = rope(theta = 10000), mask = causal{sp})
  return h + linear(gelu(linear(rmsnorm(h, ffn_norm, eps = eps), w1)), w2)
}}
forward(tokens : i32[T]) -> f32[T, vocab] {{
  x = embedding(tok_embeddings, tokens)
  x = layer(x, prefix = "layers.0")
  x = layer(x, prefix = "layers.1")
  return linear(rmsnorm(x, norm, eps = eps), output)
}}
{sched}"""


KEPT = {}  # label -> the share of (query, key) pairs the pattern keeps at max_seq (tfxc --stats)


def kept_share(tfxc, tfx):
    """The '% of pairs kept' of the model's first attention (tfxc --stats), or None."""
    out = subprocess.run([tfxc, tfx, "-O3", "--weights", "random:1", "--stats"], capture_output=True, text=True).stdout
    m = re.search(r"prefill \w+ \([^,]*, (\d+)% of pairs kept", out)
    return int(m.group(1)) if m else None


def pp_tps(tfxc, bench, work, name, src, T, reps, threads, label=None):
    tfx = os.path.join(work, name + ".tfx")
    so = os.path.join(work, name + ".so")
    with open(tfx, "w") as f:
        f.write(src)
    if label:
        KEPT[label] = kept_share(tfxc, tfx)
    subprocess.run([tfxc, tfx, "-O3", "--weights", "random:1", "-o", so], check=True)
    try:
        out = subprocess.run([bench, "model", so, str(threads), str(reps), str(T), "0"], check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.remove(so)  # 440 MB each for the stories110M shape
    return json.loads(out.strip().splitlines()[-1])["pp_tps"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tfxc")
    ap.add_argument("bench")
    ap.add_argument("--shape", choices=["small", "stories110m"], default="small")
    ap.add_argument("--T", type=int, default=4096)
    ap.add_argument("--max-seq", type=int, default=0, help="default: T")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-before", action="store_true", help="skip the per-row (before) column")
    ap.add_argument("--attention-only", action="store_true",
                    help="also time the model with sliding(16) (attention nearly free) and give each pattern's "
                         "attention time, (t - t_sliding16) / (t_dense - t_sliding16)")
    a = ap.parse_args()
    max_seq = a.max_seq or a.T
    only = [s for s in a.only.split(",") if s]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        base = pp_tps(a.tfxc, a.bench, work, "dense", source(None, max_seq, False, a.shape), a.T, a.reps, a.threads,
                      "dense causal")
        floor = None
        if a.attention_only:
            floor = pp_tps(a.tfxc, a.bench, work, "floor", source("sliding(window = 16)", max_seq, False, a.shape), a.T,
                           a.reps, a.threads)
            print(f"[sparse] sliding(16) (the non-attention floor): {floor} t/s", file=sys.stderr)
        for k, (label, sp) in enumerate(PATTERNS):
            if sp is None or (only and not any(o in label for o in only)):
                continue
            after = pp_tps(a.tfxc, a.bench, work, f"p{k}", source(sp, max_seq, False, a.shape), a.T, a.reps, a.threads,
                           label)
            before = None
            if not a.no_before:
                before = pp_tps(a.tfxc, a.bench, work, f"p{k}r", source(sp, max_seq, True, a.shape), a.T, a.reps, a.threads)
            rows.append((label, before, after))
            print(f"[sparse] {label}: before {before} after {after} dense {base} t/s", file=sys.stderr)
    print(f"{a.shape} shape, prefill of {a.T} tokens (max_seq {max_seq}), {a.threads} thread(s), median of {a.reps}; "
          f"dense causal flash: {base:.0f} tokens/s")
    if floor:
        print(f"sliding(16), the attention-only floor: {floor:.0f} tokens/s")
    print()
    extra = " attention alone × dense |" if floor else ""
    print(f"| pattern | pairs kept | before (row) t/s | × dense | after (block_sparse) t/s | × dense |{extra}")
    print("| --- | --- | --- | --- | --- | --- |" + (" --- |" if floor else ""))
    for label, before, after in rows:
        b = f"{before:.0f} | {base / before:.2f}" if before else "— | —"
        kept = KEPT.get(label)
        kept = f"{kept}%" if kept is not None else "?"
        att = f" {(1 / after - 1 / floor) / (1 / base - 1 / floor):.2f} |" if floor else ""
        print(f"| {label} | {kept} | {b} | {after:.0f} | {base / after:.2f} |{att}")


if __name__ == "__main__":
    main()
