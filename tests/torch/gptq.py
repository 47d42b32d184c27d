"""The NumPy oracle of GPTQ (tests/test_torch_gptq.c; issue #13).

Written from the paper's equations (Frantar et al. 2022, "GPTQ: Accurate
Post-Training Quantization for Generative Pre-trained Transformers",
Algorithm 1) and docs/quantization.md's choice of grid, not from tfxc's C
code. It differs from ir/gptq.c on purpose where the mathematics allows:
  - H^-1 by numpy.linalg.inv and its Cholesky factor by numpy (LAPACK's
    dpotrf/dpotri there),
  - no lazy batches: after each column every later column is updated at once,
    W[:, i:] -= e U[i, i:] (the paper's equation before its blocking trick),
so the bytes agree up to rounding ties (a value within ~1e-9 of a
quantization boundary may round the other way, and its error then moves
the later columns a little).

The grid (q4_0 blocks of 32, the group's scale from its current weights when
its first column is reached; with act_order, from the original weights):
  max = the group's value of largest |w| (the first on ties), in float32,
  d = float16(max / -8), q = clip(floor(w / d + 8.5), 0, 15) (d = 0: 8),
  dequantized d (q - 8); one block = f16 d + 16 bytes, byte j holding q_j
  (low nibble) and q_(j+16) (high nibble); a group of 64 or 128 repeats its d
  in each of its blocks.

usage: python gptq.py OUTDIR  writes, for each case c of CASES,
  OUTDIR/c.dims (N K group damp act_order), c.w.bin (f32 [N, K]),
  c.h.bin (f64 [K, K]), c.q.bin (the q4_0 bytes), c.x.bin (f32 [T, K]) and
  prints the layer loss tr((W - Q) H (W - Q)^T) of GPTQ and of
  round-to-nearest q4_0.
"""
import os
import sys

import numpy as np

# name, N, K, group, damp, act_order, dead input channels
CASES = [
    ("g32", 48, 256, 32, 0.01, False, [7, 200]),
    ("g64", 40, 192, 64, 0.01, False, []),
    ("g128", 24, 320, 128, 0.05, False, [3]),
    ("act", 40, 160, 32, 0.01, True, [9]),
]
T = 24  # rows of x for the kernel check


def scale_of(v):
    v = v.astype(np.float32)
    m = v[np.argmax(np.abs(v))] if v.size else np.float32(0)
    return float(np.float16(np.float32(m) / np.float32(-8.0)))


def quant_col(w, d):
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.floor(w / d + 8.5)
    q = np.where(d == 0, 8, np.clip(q, 0, 15))
    return q.astype(np.int64)


def gptq(W, H, group, damp, act_order):
    W = W.astype(np.float64).copy()
    H = H.copy()
    N, K = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    S = np.zeros((N, K))  # the scale of each weight
    if act_order:  # static groups: scales from the original weights
        for g0 in range(0, K, group):
            for r in range(N):
                S[r, g0:g0 + group] = scale_of(W[r, g0:g0 + group])
        perm = np.argsort(-np.diag(H), kind="stable")
    else:
        perm = np.arange(K)
    W = W[:, perm]
    H = H[np.ix_(perm, perm)]
    S = S[:, perm]
    H[np.diag_indices(K)] += damp * np.mean(np.diag(H))
    U = np.linalg.cholesky(np.linalg.inv(H)).T  # upper: H^-1 = U^T U
    Q = np.zeros((N, K), np.int64)
    for i in range(K):
        if not act_order and i % group == 0:
            for r in range(N):
                S[r, i:i + group] = scale_of(W[r, i:i + group])
        d = S[:, i]
        q = quant_col(W[:, i], d)
        Q[:, i] = q
        e = (W[:, i] - d * (q - 8)) / U[i, i]
        W[:, i:] -= np.outer(e, U[i, i:])
    inv = np.argsort(perm)
    return Q[:, inv], S[:, inv]


def rtn(W, group):
    N, K = W.shape
    S = np.zeros((N, K))
    for g0 in range(0, K, group):
        for r in range(N):
            S[r, g0:g0 + group] = scale_of(W[r, g0:g0 + group])
    Q = np.stack([quant_col(W[:, j].astype(np.float64), S[:, j]) for j in range(K)], 1)
    return Q, S


def blocks(Q, S):
    N, K = Q.shape
    out = bytearray()
    for r in range(N):
        for b in range(K // 32):
            out += np.float16(S[r, b * 32]).tobytes()
            q = Q[r, b * 32:(b + 1) * 32]
            out += bytes((q[:16] | (q[16:] << 4)).astype(np.uint8))
    return bytes(out)


def loss(W, Q, S, H):
    D = W.astype(np.float64) - S * (Q - 8)
    return float(np.einsum("ij,jk,ik->", D, H, D))


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(20261204)
    for name, N, K, group, damp, act, dead in CASES:
        # correlated inputs with uneven channel scales, as a layer's activations
        mix = rng.standard_normal((K, K)) / np.sqrt(K) + np.eye(K)
        X = rng.standard_normal((4 * K, K)) @ mix * rng.uniform(0.2, 3.0, K)
        X[:, dead] = 0.0
        H = X.T @ X
        W = (rng.standard_normal((N, K)) * 0.05).astype(np.float32)
        W[:, : K // 4] *= 3.0
        Q, S = gptq(W, H, group, damp, act)
        Qr, Sr = rtn(W, group)
        Hd = H.copy()
        print(f"{name}: N {N} K {K} group {group} damp {damp} act_order {act}: layer loss gptq "
              f"{loss(W, Q, S, Hd):.5g}, round-to-nearest {loss(W, Qr, Sr, Hd):.5g}")
        x = (rng.standard_normal((T, K)) @ mix).astype(np.float32)
        with open(os.path.join(out, name + ".dims"), "w") as f:
            f.write(f"{N} {K} {group} {damp} {int(act)} {T}\n")
        W.astype("<f4").tofile(os.path.join(out, name + ".w.bin"))
        H.astype("<f8").tofile(os.path.join(out, name + ".h.bin"))
        x.astype("<f4").tofile(os.path.join(out, name + ".x.bin"))
        with open(os.path.join(out, name + ".q.bin"), "wb") as f:
            f.write(blocks(Q, S))


if __name__ == "__main__":
    main()
