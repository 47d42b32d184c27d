"""bench/peers.py — the peers' side of the model rows: llama.cpp (through
llama-cpp-python's low-level API, i.e. libllama itself), ONNX Runtime and
PyTorch eager, on the same llama2.c checkpoint tfxc compiles.

  python bench/peers.py ENGINE CHECKPOINT.bin WORKDIR THREADS REPS PP TG
      ENGINE: llamacpp | onnxruntime | torch
  python bench/peers.py export CHECKPOINT.bin OUT.onnx
  python bench/peers.py greedy CHECKPOINT.bin GGUF N     llama.cpp's greedy ids from BOS
  python bench/peers.py batch GGUF THREADS REPS B TG     llama.cpp's batched decoding of B sequences

Prints one JSON object: ppPP (one call on PP tokens from an empty cache;
logits of the last token only, as llama-bench does) and tgTG (TG one-token
calls from an empty cache), tokens/s, each the median of REPS repetitions
after a warm-up (a repetition repeats a short test for at least 0.25 s). The token ids are (7919·i + 13) mod vocab, as in bench.c.

The PyTorch model below is the reference LLaMA block (RMSNorm, interleaved
RoPE, GQA, SwiGLU, tied classifier) with an explicit KV cache passed in and
out; ONNX Runtime runs the same module exported with torch.onnx (dynamic T and
past length), so its tg row is a real KV-cache decode.
"""
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weights import read_llama2c  # noqa: E402


def token_ids(n, vocab):
    t = [(7919 * i + 13) % vocab for i in range(n)]
    return [2 if x == 1 else x for x in t]


# ---------------------------------------------------------------- PyTorch ----
def build_torch(ckpt):
    import torch
    import torch.nn as nn

    cfg, w = read_llama2c(ckpt)
    D, H, G, L = cfg["dim"], cfg["heads"], cfg["kv_heads"], cfg["layers"]
    hd = D // H

    def P(a):
        return nn.Parameter(torch.from_numpy(np.array(a, dtype=np.float32)), requires_grad=False)

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = P(w["tok_embeddings"])
            self.out = self.emb if cfg["shared"] else P(w["output"])
            self.norm = P(w["norm"])
            names = ("attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3")
            self.layers = nn.ModuleList()
            for i in range(L):
                m = nn.Module()
                for n in names:
                    setattr(m, n, P(w[n][i]))
                self.layers.append(m)
            freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
            ang = torch.outer(torch.arange(cfg["seq_len"], dtype=torch.float64), freqs)
            self.register_buffer("cos", torch.cos(ang).float(), persistent=False)
            self.register_buffer("sin", torch.sin(ang).float(), persistent=False)

        @staticmethod
        def rms(x, g):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g

        def rope(self, x, cos, sin, heads):
            # x [T, heads*hd]; pairs (2i, 2i+1) rotated by pos*theta_i
            T = x.shape[0]
            x = x.view(T, heads, hd // 2, 2)
            x0, x1 = x[..., 0], x[..., 1]
            c, s = cos[:, None, :], sin[:, None, :]
            return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), -1).view(T, heads, hd)

        def forward(self, tokens, past_k, past_v):
            # tokens [T] int64; past_k/v [L, G, P, hd]; returns last-row logits [1, V]
            # and the new caches [L, G, P+T, hd].
            T = tokens.shape[0]
            Pn = past_k.shape[2]
            x = self.emb[tokens]
            cos, sin = self.cos[Pn:Pn + T], self.sin[Pn:Pn + T]
            qpos = torch.arange(T)[:, None] + Pn
            kpos = torch.arange(Pn + T)[None, :]
            mask = torch.where(kpos <= qpos, torch.zeros(()), torch.full((), float("-inf")))
            ks, vs = [], []
            for i, l in enumerate(self.layers):
                a = self.rms(x, l.attention_norm)
                q = self.rope(a @ l.wq.t(), cos, sin, H).transpose(0, 1)  # [H, T, hd]
                k = self.rope(a @ l.wk.t(), cos, sin, G).transpose(0, 1)  # [G, T, hd]
                v = (a @ l.wv.t()).view(T, G, hd).transpose(0, 1)
                k = torch.cat((past_k[i], k), 1)
                v = torch.cat((past_v[i], v), 1)
                ks.append(k)
                vs.append(v)
                if G != H:
                    # query head h reads kv head h // (H/G); expand+reshape
                    # (repeat_interleave exports with a fixed length)
                    k = k.unsqueeze(1).expand(-1, H // G, -1, -1).reshape(H, -1, hd)
                    v = v.unsqueeze(1).expand(-1, H // G, -1, -1).reshape(H, -1, hd)
                s = q @ k.transpose(1, 2) * (1.0 / math.sqrt(hd)) + mask
                o = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(T, D)
                h = x + o @ l.wo.t()
                f = self.rms(h, l.ffn_norm)
                x = h + (torch.nn.functional.silu(f @ l.w1.t()) * (f @ l.w3.t())) @ l.w2.t()
            x = self.rms(x[-1:], self.norm)
            return x @ self.out.t(), torch.stack(ks), torch.stack(vs)

    return cfg, Llama().eval()


def empty_cache(cfg):
    hd = cfg["dim"] // cfg["heads"]
    z = np.zeros((cfg["layers"], cfg["kv_heads"], 0, hd), np.float32)
    return z, z.copy()


MIN_REP_SECONDS = 0.25  # as bench.c: a short test is repeated within one repetition


def run_reps(reps, pp_fn, tg_fn, pp, tg):
    vpp, vtg = [], []
    for r in range(reps + 1):  # r == 0: warm-up
        n_pp = n_tg = 0
        t0 = time.perf_counter()
        while True:
            pp_fn()
            n_pp += 1
            t1 = time.perf_counter()
            if t1 - t0 >= MIN_REP_SECONDS:
                break
        while True:
            tg_fn()
            n_tg += 1
            t2 = time.perf_counter()
            if t2 - t1 >= MIN_REP_SECONDS:
                break
        if r:
            vpp.append(pp * n_pp / (t1 - t0))
            vtg.append(tg * n_tg / (t2 - t1))
    return float(np.median(vpp)), float(np.median(vtg))


def bench_torch(ckpt, threads, reps, pp, tg):
    import torch

    torch.set_num_threads(threads)
    cfg, m = build_torch(ckpt)
    ids = torch.tensor(token_ids(max(pp, tg), cfg["vocab"]), dtype=torch.int64)
    k0, v0 = (torch.from_numpy(a) for a in empty_cache(cfg))

    def do_pp():
        with torch.no_grad():
            m(ids[:pp], k0, v0)

    def do_tg():
        with torch.no_grad():
            k, v = k0, v0
            for i in range(tg):
                _, k, v = m(ids[i:i + 1], k, v)

    return run_reps(reps, do_pp, do_tg, pp, tg)


# ------------------------------------------------------------ ONNX Runtime ----
def export_onnx(ckpt, out):
    import torch

    cfg, m = build_torch(ckpt)
    hd = cfg["dim"] // cfg["heads"]
    ex = (torch.tensor([5, 6, 7], dtype=torch.int64), torch.zeros(cfg["layers"], cfg["kv_heads"], 2, hd),
          torch.zeros(cfg["layers"], cfg["kv_heads"], 2, hd))
    with torch.no_grad():
        torch.onnx.export(m, ex, out, input_names=["tokens", "past_k", "past_v"],
                          output_names=["logits", "k", "v"],
                          dynamic_axes={"tokens": {0: "T"}, "past_k": {2: "P"}, "past_v": {2: "P"},
                                        "k": {2: "PT"}, "v": {2: "PT"}},
                          opset_version=14, do_constant_folding=True)


def bench_ort(ckpt, onnx_path, threads, reps, pp, tg):
    import onnxruntime as ort

    cfg, _ = read_llama2c(ckpt)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    ids = np.array(token_ids(max(pp, tg), cfg["vocab"]), np.int64)
    k0, v0 = empty_cache(cfg)

    def do_pp():
        sess.run(None, {"tokens": ids[:pp], "past_k": k0, "past_v": v0})

    def do_tg():
        k, v = k0, v0
        for i in range(tg):
            _, k, v = sess.run(None, {"tokens": ids[i:i + 1], "past_k": k, "past_v": v})

    return run_reps(reps, do_pp, do_tg, pp, tg)


# --------------------------------------------------------------- llama.cpp ----
def llamacpp_extra_bufts():
    """Whether llama.cpp may use its extra weight buffers (the AMX and
    CPU-repack layouts). TFXC_BENCH_LLAMA_EXTRA_BUFTS=1/0 decides; by default
    they are off on a CPU that lists AMX: on the 2-vCPU VMs of this project
    llama-cpp-python 0.3.36's AMX path (chosen over the AVX-512 repack when
    the CPU reports amx_int8) dies with SIGSEGV in every batch of more than a
    few tokens (prompt processing) on Q8_0, Q4_0, Q4_K and Q6_K, while decode
    runs. With them off llama.cpp reads GGUF's blocks as stored (its
    vec_dot kernels), as llama.cpp did before runtime repacking."""
    v = os.environ.get("TFXC_BENCH_LLAMA_EXTRA_BUFTS")
    if v in ("0", "1"):
        return v == "1"
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_int8" not in f.read()
    except OSError:
        return True


class LlamaCpp:
    """libllama through llama-cpp-python's ctypes bindings (no Python sampling
    or logits copies: llama_decode only, as llama-bench does)."""

    def __init__(self, gguf_path, threads, n_ctx, n_seq_max=1):
        import llama_cpp as lc

        self.lc = lc
        lc.llama_backend_init()
        mp = lc.llama_model_default_params()
        mp.use_mmap = True
        if hasattr(mp, "use_extra_bufts") and not llamacpp_extra_bufts():
            mp.use_extra_bufts = False
        load = getattr(lc, "llama_model_load_from_file", None) or lc.llama_load_model_from_file
        self.model = load(gguf_path.encode(), mp)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf_path}")
        cp = lc.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_seq_max = n_seq_max
        cp.n_batch = max(512, n_ctx)
        cp.n_ubatch = 512
        cp.n_threads = threads
        cp.n_threads_batch = threads
        init = getattr(lc, "llama_init_from_model", None) or lc.llama_new_context_with_model
        self.ctx = init(self.model, cp)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.vocab = self._n_vocab()

    def _n_vocab(self):
        lc = self.lc
        if hasattr(lc, "llama_model_get_vocab") and hasattr(lc, "llama_vocab_n_tokens"):
            return lc.llama_vocab_n_tokens(lc.llama_model_get_vocab(self.model))
        return lc.llama_n_vocab(self.model)

    def clear(self):
        lc = self.lc
        if hasattr(lc, "llama_get_memory") and hasattr(lc, "llama_memory_clear"):
            lc.llama_memory_clear(lc.llama_get_memory(self.ctx), True)
        else:
            lc.llama_kv_self_clear(self.ctx)

    def decode(self, ids):
        lc = self.lc
        arr = (lc.llama_token * len(ids))(*ids)
        batch = lc.llama_batch_get_one(arr, len(ids))
        rc = lc.llama_decode(self.ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def last_logits(self):
        p = self.lc.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(p, shape=(self.vocab,)).copy()


def bench_llamacpp(gguf_path, threads, reps, pp, tg):
    m = LlamaCpp(gguf_path, threads, n_ctx=max(pp, tg) + 16)
    ids = token_ids(max(pp, tg), m.vocab)

    def do_pp():
        m.clear()
        m.decode(ids[:pp])

    def do_tg():
        m.clear()
        for i in range(tg):
            m.decode(ids[i:i + 1])

    return run_reps(reps, do_pp, do_tg, pp, tg)


def bench_llamacpp_batch(gguf_path, threads, reps, nb, tg):
    """llama.cpp's batched decoding, as bench.c's `batch` runs tfxc's: NB
    sequences (distinct seq_ids 0..NB-1), each given a one-token prompt in one
    llama_decode (not timed), then TG steps of one llama_batch holding one
    token per sequence at its next position, every row's logits requested
    (each sequence samples from its own). Tokens/s summed over the sequences
    (NB * TG per second of the timed steps), the median of REPS repetitions
    after a warm-up; a repetition repeats the run (memory cleared) for at
    least MIN_REP_SECONDS. The context holds n_seq_max = NB sequences of
    TG + 16 positions each, with the library's defaults otherwise (a KV
    stream per sequence, `kv_unified` off; f16 KV cache; flash attention
    auto), as in the model rows."""
    lc_mod = LlamaCpp(gguf_path, threads, n_ctx=nb * (tg + 16), n_seq_max=nb)
    lc = lc_mod.lc
    ids = token_ids(nb * (tg + 1) + 1, lc_mod.vocab)
    batch = lc.llama_batch_init(nb, 0, 1)
    try:
        for i in range(nb):
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = i
            batch.logits[i] = 1

        def step(k):  # step k: every sequence's token at position k (bench.c's ids)
            for i in range(nb):
                batch.token[i] = ids[(k - 1) * nb + i + 1 if k else i]
                batch.pos[i] = k
            batch.n_tokens = nb
            rc = lc.llama_decode(lc_mod.ctx, batch)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc} (batch of {nb}, position {k})")

        v = []
        for r in range(reps + 1):  # r == 0: warm-up
            rounds, spent = 0, 0.0
            while True:
                lc_mod.clear()
                step(0)  # the one-token prompts
                t0 = time.perf_counter()
                for k in range(1, tg + 1):
                    step(k)
                spent += time.perf_counter() - t0
                rounds += 1
                if spent >= MIN_REP_SECONDS:
                    break
            if r:
                v.append(nb * tg * rounds / spent)
        return float(np.median(v))
    finally:
        lc.llama_batch_free(batch)


def greedy_llamacpp(gguf_path, n):
    m = LlamaCpp(gguf_path, 1, n_ctx=n + 16)
    m.clear()
    tok, out = 1, []
    for _ in range(n):
        m.decode([tok])
        tok = int(np.argmax(m.last_logits()))
        out.append(tok)
    return out


def main():
    a = sys.argv[1:]
    if a and a[0] == "export" and len(a) == 3:
        export_onnx(a[1], a[2])
        return
    if a and a[0] == "greedy" and len(a) == 4:
        print(" ".join(str(t) for t in greedy_llamacpp(a[2], int(a[3]))))
        return
    if a and a[0] == "batch" and len(a) == 6:
        threads, reps, nb, tg = (int(x) for x in a[2:])
        tps = bench_llamacpp_batch(a[1], threads, reps, nb, tg)
        print(json.dumps({"engine": "llamacpp", "threads": threads, "reps": reps, "batch": nb, "tg": tg,
                          "tg_tps": tps}))
        return
    if len(a) != 7:
        sys.exit(__doc__)
    engine, ckpt, work, threads, reps, pp, tg = a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]), int(a[6])
    stem = os.path.splitext(os.path.basename(ckpt))[0].lower()
    if engine == "torch":
        r = bench_torch(ckpt, threads, reps, pp, tg)
    elif engine == "onnxruntime":
        r = bench_ort(ckpt, os.path.join(work, stem + ".onnx"), threads, reps, pp, tg)
    elif engine == "llamacpp":
        r = bench_llamacpp(os.path.join(work, stem + ".gguf"), threads, reps, pp, tg)
    else:
        sys.exit(f"unknown engine {engine}")
    print(json.dumps({"engine": engine, "threads": threads, "reps": reps, "pp": pp, "tg": tg,
                      "pp_tps": r[0], "tg_tps": r[1]}))


if __name__ == "__main__":
    main()
