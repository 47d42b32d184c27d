#!/usr/bin/env python3
"""bench/encdec_decode.py — decode speed of an encoder-decoder with a source
(issue #14's source cache): a t5-small-shaped checkpoint with random weights
(transformers' T5Config: d_model 512, d_ff 2048, 6 + 6 layers, 8 heads,
vocab 32128), imported with `tfxc import`, max_src set to the source's rows
N, compiled at -O3, then token-by-token decode with the same source of S
rows passed with every call (the runtime's usage). Prints tokens/s.

  ~/.cache/tfxc/hfenv/bin/python bench/encdec_decode.py --tfxc build/tfxc \
      --python python --src 128 --steps 48

--tfxc and --python pick the compiler and the binding (the model .so
carries its own runtime), so the same script measures an older tree."""
import argparse
import os
import re
import subprocess
import sys
import time


def make_checkpoint(path):
    if os.path.exists(os.path.join(path, "config.json")):
        return
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(d_model=512, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8, d_kv=64,
                   vocab_size=32128, feed_forward_proj="relu", tie_word_embeddings=True)
    T5ForConditionalGeneration(cfg).eval().save_pretrained(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfxc", required=True)
    ap.add_argument("--python", required=True, help="the directory holding the tfx package")
    ap.add_argument("--dir", default="/tmp/tfx_t5_small")
    ap.add_argument("--src", type=int, default=128, help="source rows N = S")
    ap.add_argument("--max-seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    ck = os.path.join(a.dir, "ckpt")
    make_checkpoint(ck)
    tfx = os.path.join(a.dir, "t5%s.tfx" % a.tag)
    so = os.path.join(a.dir, "t5%s.so" % a.tag)
    subprocess.run([a.tfxc, "import", ck, "-o", tfx], check=True)
    text = open(tfx).read()
    text = re.sub(r"max_seq = \d+", "max_seq = %d" % a.max_seq, text)
    text = re.sub(r"max_src = [A-Za-z_0-9]+", "max_src = %d" % a.src, text)
    open(tfx, "w").write(text)
    subprocess.run([a.tfxc, "-O3", tfx, "-o", so], check=True)
    sys.path.insert(0, a.python)
    import numpy as np
    import tfx as T

    m = T.Model(so)
    s = m.session(threads=a.threads)
    rng = np.random.default_rng(0)
    src = rng.integers(2, 32000, size=a.src).astype(np.int32)
    toks = rng.integers(2, 32000, size=a.steps + 8).astype(np.int32)
    best = None
    for rep in range(3):
        s.reset()
        s.forward_inputs({"tokens": toks[:1], "src": src}, last_only=True)  # the first call encodes
        t0 = time.perf_counter()
        for i in range(a.steps):
            out = s.forward_inputs({"tokens": toks[1 + i:2 + i], "src": src}, last_only=True)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    print("%s: S = N = %d, %d decode steps after one token: %.2f tokens/s (best of 3, %.2f ms/token, threads %d); "
          "last logits %.6f %.6f %.6f" % (a.tag or "model", a.src, a.steps, a.steps / best, 1e3 * best / a.steps,
                                          s.threads, out[0], out[1], out[2]))


if __name__ == "__main__":
    main()
