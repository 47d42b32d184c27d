"""tests/quant/kquant_rows.py — the f32 rows of the K-quant golden files
(tests/quant/golden_*.bin), made the same way on every machine: Python's
random.random() stream (stable across Python versions for an int seed) and
exact IEEE arithmetic only (sums, products by powers of two, divisions), no
libm and no numpy generator, so the test and bench/check_kquant_bytes.py
--write-golden (which records llama.cpp's bytes for them) agree bit for bit.

Rows of K elements cycle through kinds that reach the quantizers' corners:
near-Gaussian (Irwin-Hall), heavy tails, outliers, all positive, all
negative, zero and constant sub-blocks, tiny values (f16-subnormal scales),
a coarse grid (exact ties), a zero row, uniform rows of varied magnitude,
and groups of 16 at different scales."""
import random

import numpy as np

GOLDEN_ROWS, GOLDEN_K = 128, 256


def _gauss(r):
    return sum(r.random() for _ in range(12)) - 6.0


def rows(n=GOLDEN_ROWS, K=GOLDEN_K, seed=20261203):
    r = random.Random(seed)
    out = np.empty((n, K), dtype=np.float32)
    for i in range(n):
        kind = i % 12
        if kind == 0:
            x = [_gauss(r) / 50 for _ in range(K)]
        elif kind == 1:
            x = [_gauss(r) * _gauss(r) / 16 for _ in range(K)]  # heavy tails
        elif kind == 2:
            x = [_gauss(r) / 50 for _ in range(K)]
            for _ in range(4):
                x[int(r.random() * K)] *= 64  # outliers
        elif kind == 3:
            x = [abs(_gauss(r)) + 0.125 for _ in range(K)]  # all positive
        elif kind == 4:
            x = [-abs(_gauss(r)) - 0.125 for _ in range(K)]  # all negative
        elif kind == 5:
            x = [_gauss(r) for _ in range(K)]
            x[0:32] = [0.0] * 32  # a zero sub-block
            x[64:96] = [0.25] * 32  # a constant one
            x[128:144] = [0.0] * 16  # a zero Q6_K group
        elif kind == 6:
            x = [_gauss(r) / 1048576 for _ in range(K)]  # f16-subnormal scales
        elif kind == 7:
            x = [(int(r.random() * 16) - 8) / 8 for _ in range(K)]  # a grid: ties
        elif kind == 8:
            x = [0.0] * K
        elif kind == 9:
            s = 2.0 ** int(r.random() * 20 - 10)
            x = [(2 * r.random() - 1) * s for _ in range(K)]
        elif kind == 10:
            x = []
            for _ in range(K // 16):
                s = 2.0 ** int(r.random() * 14 - 10)
                x += [_gauss(r) * s for _ in range(16)]
        else:
            x = [_gauss(r) / 10 for _ in range(K)]
        out[i] = np.array(x, dtype=np.float64).astype(np.float32)
    return out
