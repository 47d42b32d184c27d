"""tests/torch/masks_bidir.py — the reference for
examples/sparse/masks_bidir.tfx: masks.py's model with bidirectional
attention (d = |i - j|, no causal mask) and multi-query attention (one
key/value head).

Usage: /usr/bin/python3 tests/torch/masks_bidir.py OUTDIR
"""
from masks import main

if __name__ == "__main__":
    main(causal=False, seed=6061, kv_heads=1)
