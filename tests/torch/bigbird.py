"""tests/torch/bigbird.py — the reference for examples/bigbird/bigbird.tfx: a
RoBERTa-style post-norm encoder whose attention is BigBird's block-sparse
pattern (bidirectional), written from the BigBird paper's definition in
float64: blocks of block_size tokens, qb = i // b, kb = j // b; query i sees
key j when |qb - kb| <= 1 (window), qb < g or kb < g (global blocks), or kb is
one of the r random blocks of qb. The random blocks follow tfxc's documented
rule (docs/language.md, reimplemented here from that text): per query block
x = seed + 0x9E3779B97F4A7C15 * (qb + 1) mod 2^64 (0 becomes the constant),
then per draw x ^= x << 13; x ^= x >> 7; x ^= x << 17 (mod 2^64) and the
block is x mod ceil(max_seq / b).

Usage: /usr/bin/python3 tests/torch/bigbird.py OUTDIR
"""
import torch

from attn_common import gelu_tanh, make_gen
from common import outdir_from_argv, write_case
from encoder_common import forward, make_weights

C = dict(dim=64, layers=2, heads=4, vocab=128, max_seq=48, eps=1e-12, block=3, n_global=1, random=2, seed=7)
M64 = (1 << 64) - 1


def random_blocks(seed, qb, r, n_range):
    x = (seed + 0x9E3779B97F4A7C15 * (qb + 1)) & M64
    if x == 0:
        x = 0x9E3779B97F4A7C15
    out = []
    for _ in range(r):
        x ^= (x << 13) & M64
        x ^= x >> 7
        x ^= (x << 17) & M64
        out.append(x % n_range)
    return out


def bigbird_mask(T, c):
    b = c["block"]
    n_blocks = -(-c["max_seq"] // b)
    allowed = torch.zeros(T, T, dtype=torch.bool)
    for i in range(T):
        qb = i // b
        rnd = random_blocks(c["seed"], qb, c["random"], n_blocks)
        for j in range(T):
            kb = j // b
            allowed[i, j] = abs(qb - kb) <= 1 or qb < c["n_global"] or kb < c["n_global"] or kb in rnd
    return allowed


if __name__ == "__main__":
    gen = make_gen(888)
    w = make_weights(gen, C)
    T = 20
    tokens = torch.randint(0, C["vocab"], (T,), generator=gen, dtype=torch.int32)
    allowed = bigbird_mask(T, C)
    assert 0 < allowed.sum() < T * T
    write_case(outdir_from_argv(), w, tokens, forward(w, tokens, C, allowed, gelu_tanh), causal=False)
