"""tests/torch/alibi_bidir.py — the reference for tests/torch/alibi_bidir.tfx:
alibi_pow2.py's model as an encoder (mask = none): the bias is the symmetric
-m_h * |i - j|, with H = 16 query heads (slopes 2^-0.5 ... 2^-8) sharing one
key/value head (MQA).

Usage: /usr/bin/python3 tests/torch/alibi_bidir.py OUTDIR
"""
from alibi_pow2 import main

if __name__ == "__main__":
    main(causal=False, seed=8081, heads=16, kv_heads=1)
