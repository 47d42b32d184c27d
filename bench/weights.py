"""bench/weights.py — the benchmark's weights: one llama2.c checkpoint per
model, read by every engine, so tfxc, llama.cpp, ONNX Runtime and PyTorch run
the same numbers.

  python3 bench/weights.py random OUT.bin [--seed S]   stories110M-shape random weights
  python3 bench/weights.py gguf IN.bin OUT.gguf        llama2.c checkpoint -> GGUF F32

llama2.c's .bin (legacy format): 7 little-endian int32 (dim, hidden_dim,
n_layers, n_heads, n_kv_heads, vocab_size (negative: unshared classifier),
seq_len), then f32 arrays, each kind for all layers: tok_embeddings, rms_att,
wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real, freq_cis_imag
[, wcls].

RoPE pairing: llama2.c keeps Meta's interleaved pairs (2i, 2i+1), and so does
GGUF for the `llama` architecture (llama.cpp's LLAMA_ROPE_TYPE_NORM; Hugging
Face's half-split layout is permuted back by llama.cpp's converters), so wq and
wk are written to GGUF without a permutation. The stories260K check in
bench/peers.py (greedy tokens of llama.cpp equal tfxc's) confirms it.
"""
import argparse
import struct
import sys

import numpy as np

# stories110M shape (TECHNIQUES.md, "Reference shapes")
CFG_110M = dict(dim=768, hidden=2048, layers=12, heads=12, kv_heads=12, vocab=32000, seq_len=1024)


def read_llama2c(path):
    """Returns (cfg dict, dict of numpy arrays named as tfxc names them), memory-mapped."""
    with open(path, "rb") as f:
        hdr = struct.unpack("<7i", f.read(28))
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = hdr
    shared = vocab > 0
    vocab = abs(vocab)
    hd = dim // heads
    kv = kv_heads * hd
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab,
               seq_len=seq_len, shared=shared)
    data = np.memmap(path, dtype="<f4", mode="r", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = data[pos:pos + n].reshape(shape)
        pos += n
        return a

    w = {}
    w["tok_embeddings"] = take(vocab, dim)
    w["attention_norm"] = take(layers, dim)
    w["wq"] = take(layers, dim, dim)
    w["wk"] = take(layers, kv, dim)
    w["wv"] = take(layers, kv, dim)
    w["wo"] = take(layers, dim, dim)
    w["ffn_norm"] = take(layers, dim)
    w["w1"] = take(layers, hidden, dim)
    w["w2"] = take(layers, dim, hidden)
    w["w3"] = take(layers, hidden, dim)
    w["norm"] = take(dim)
    take(seq_len, hd // 2)  # freq_cis_real
    take(seq_len, hd // 2)  # freq_cis_imag
    w["output"] = w["tok_embeddings"] if shared else take(vocab, dim)
    if pos != data.size:
        sys.exit(f"{path}: {data.size - pos} floats left over: not a llama2.c checkpoint of this header")
    return cfg, w


def write_random_llama2c(path, cfg, seed):
    """Random weights of the given shape (normal, std 0.02; norm gains 1), shared classifier."""
    rng = np.random.default_rng(seed)
    d, h, L = cfg["dim"], cfg["hidden"], cfg["layers"]
    hd = d // cfg["heads"]
    kv = cfg["kv_heads"] * hd

    def rnd(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)).astype("<f4")

    with open(path, "wb") as f:
        f.write(struct.pack("<7i", d, h, L, cfg["heads"], cfg["kv_heads"], cfg["vocab"], cfg["seq_len"]))
        for arr in (rnd(cfg["vocab"], d), np.ones((L, d), "<f4"), rnd(L, d, d), rnd(L, kv, d), rnd(L, kv, d),
                    rnd(L, d, d), np.ones((L, d), "<f4"), rnd(L, h, d), rnd(L, d, h), rnd(L, h, d),
                    np.ones(d, "<f4")):
            arr.tofile(f)
        # freq_cis_real / imag, as llama2.c writes them (ignored by every engine here)
        freqs = 1.0 / (10000.0 ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        ang = np.outer(np.arange(cfg["seq_len"]), freqs)
        np.cos(ang).astype("<f4").tofile(f)
        np.sin(ang).astype("<f4").tofile(f)


def write_gguf(bin_path, out_path):
    import gguf  # from the bench venv

    cfg, w = read_llama2c(bin_path)
    d, L, V = cfg["dim"], cfg["layers"], cfg["vocab"]
    hd = d // cfg["heads"]
    wr = gguf.GGUFWriter(out_path, "llama")
    wr.add_name("tfxc-bench")
    wr.add_context_length(cfg["seq_len"])
    wr.add_embedding_length(d)
    wr.add_block_count(L)
    wr.add_feed_forward_length(cfg["hidden"])
    wr.add_rope_dimension_count(hd)
    wr.add_head_count(cfg["heads"])
    wr.add_head_count_kv(cfg["kv_heads"])
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_rope_freq_base(10000.0)
    wr.add_file_type(gguf.LlamaFileType.ALL_F32)
    # A placeholder SentencePiece vocabulary (the bench feeds token ids, never
    # text): <unk>, <s>, </s>, the 256 byte tokens llama.cpp looks up, fillers.
    toks, types = [b"<unk>", b"<s>", b"</s>"], [2, 3, 3]
    for b in range(256):
        toks.append(f"<0x{b:02X}>".encode())
        types.append(6)
    while len(toks) < V:
        toks.append(f"\u2581t{len(toks)}".encode())
        types.append(1)
    toks, types = toks[:V], types[:V]
    wr.add_tokenizer_model("llama")
    wr.add_token_list(toks)
    wr.add_token_scores([float(-i) for i in range(V)])
    wr.add_token_types(types)
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)
    wr.add_unk_token_id(0)

    def t(name, a):
        wr.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))

    t("token_embd.weight", w["tok_embeddings"])
    for i in range(L):
        t(f"blk.{i}.attn_norm.weight", w["attention_norm"][i])
        t(f"blk.{i}.attn_q.weight", w["wq"][i])
        t(f"blk.{i}.attn_k.weight", w["wk"][i])
        t(f"blk.{i}.attn_v.weight", w["wv"][i])
        t(f"blk.{i}.attn_output.weight", w["wo"][i])
        t(f"blk.{i}.ffn_norm.weight", w["ffn_norm"][i])
        t(f"blk.{i}.ffn_gate.weight", w["w1"][i])
        t(f"blk.{i}.ffn_down.weight", w["w2"][i])
        t(f"blk.{i}.ffn_up.weight", w["w3"][i])
    t("output_norm.weight", w["norm"])
    if not cfg["shared"]:
        t("output.weight", w["output"])
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("random")
    r.add_argument("out")
    r.add_argument("--seed", type=int, default=110)
    g = sub.add_parser("gguf")
    g.add_argument("bin")
    g.add_argument("out")
    a = ap.parse_args()
    if a.cmd == "random":
        write_random_llama2c(a.out, CFG_110M, a.seed)
    else:
        write_gguf(a.bin, a.out)


if __name__ == "__main__":
    main()
