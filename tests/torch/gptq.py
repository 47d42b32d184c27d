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

bits = 3 (the cases with group 0): q3_k super-blocks of 256 columns, 16
groups of 16 with 6-bit scales under an f16 d (docs/quantization.md,
"K-quant quantizers" and "GPTQ"). A row's super-block gets its scales when
its first column is reached, from its columns' current values (with
act_order: from the original weights), as round-to-nearest q3_k chooses
them (ggml's quantize_row_q3_K_ref, written here from its description in
float32 arithmetic in the same order: q3_fit, q3_scales); a column's code is
L = clip(rint(w / s), -4, 3) + 4 with s = d (sc - 32) its group's stored
scale (s = 0: L = 4), dequantized s (L - 4).

usage: python gptq.py OUTDIR  writes, for each case c of CASES,
  OUTDIR/c.dims (N K group damp act_order T bits), c.w.bin (f32 [N, K]),
  c.h.bin (f64 [K, K]), c.q.bin (the q4_0 or q3_k bytes), c.x.bin (f32
  [T, K]) and prints the layer loss tr((W - Q) H (W - Q)^T) of GPTQ and of
  round-to-nearest q4_0 / q3_k.
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
    ("b3", 32, 512, 0, 0.01, False, [5, 300]),  # group 0: bits = 3 (q3_k)
    ("b3act", 24, 256, 0, 0.01, True, [11]),
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


# ---- q3_k's scales (float32, in ggml's order of operations) ----
F = np.float32


def nint(v):
    """ggml's nearest_int: v + 1.5 * 2^23 in float32, the low mantissa bits."""
    i = (np.asarray(v, F) + F(12582912.0)).astype(F).view(np.int32)
    return ((i & 0x007FFFFF) - 0x00400000).astype(np.int64)


def q3_fit(X):
    """The signed scale of each group of 16 (rows of X, float32): L in
    [-4, 3] from -4 / max, then up to 5 sweeps moving single L to
    nint(x * sum w l^2 / sum w x l) (its own term left out) while
    (sum w x l)^2 / sum w l^2 grows, w = x^2; scale sum w x l / sum w l^2."""
    X = X.astype(F)
    G = X.shape[0]
    ax = np.abs(X)
    j = np.argmax(ax, axis=1)
    mx = X[np.arange(G), j]
    zero = ax[np.arange(G), j] < F(1e-15)
    mx = np.where(zero, F(1), mx)
    iscale = (F(-4) / mx).astype(F)
    L = np.clip(nint(iscale[:, None] * X), -4, 3).astype(F)
    w = (X * X).astype(F)
    sumlx = np.zeros(G, F)
    suml2 = np.zeros(G, F)
    for i in range(16):
        sumlx = (sumlx + (w[:, i] * X[:, i]) * L[:, i]).astype(F)
        suml2 = (suml2 + (w[:, i] * L[:, i]) * L[:, i]).astype(F)
    alive = ~zero
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(5):
            changed = np.zeros(G, bool)
            for i in range(16):
                wi, xi, li = w[:, i], X[:, i], L[:, i]
                slx = (sumlx - (wi * xi) * li).astype(F)
                ok = alive & (slx > 0)
                sl2 = (suml2 - (wi * li) * li).astype(F)
                nl = np.clip(nint(np.where(ok, (xi * sl2) / np.where(ok, slx, F(1)), F(0))), -4, 3).astype(F)
                ok &= nl != li
                slx2 = (slx + (wi * xi) * nl).astype(F)
                sl22 = (sl2 + (wi * nl) * nl).astype(F)
                ok &= (sl22 > 0) & ((slx2 * slx2) * suml2 > (sumlx * sumlx) * sl22)
                L[:, i] = np.where(ok, nl, li)
                sumlx = np.where(ok, slx2, sumlx)
                suml2 = np.where(ok, sl22, suml2)
                changed |= ok
            alive &= changed
        sc = np.where(zero, F(0), (sumlx / np.where(zero, F(1), suml2)).astype(F))
    return sc


def q3_scales(X):
    """X [n, 256] (float32 rows of super-blocks): the 12 scale bytes, d
    (float16) and the 16 stored group scales d (l - 32) of each."""
    n = X.shape[0]
    sc = q3_fit(X.reshape(n * 16, 16)).reshape(n, 16)
    j = np.argmax(np.abs(sc), axis=1)
    ms = sc[np.arange(n), j]
    sb = np.zeros((n, 12), np.uint8)
    d = np.zeros(n, np.float16)
    l = np.zeros((n, 16), np.int64)
    nz = ms != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        isc = (F(-32) / np.where(nz, ms, F(1))).astype(F)
        l = np.where(nz[:, None], np.clip(nint(isc[:, None] * sc), -32, 31) + 32, 0)
        d = np.where(nz, (F(1) / isc).astype(F), F(0)).astype(np.float16)
    for g in range(16):
        lo, hi = (l[:, g] & 15).astype(np.uint8), (l[:, g] >> 4).astype(np.uint8)
        sb[:, g % 8] |= lo << (4 * (g // 8))
        sb[:, 8 + g % 4] |= hi << (2 * (g // 4))
    s = (d.astype(F)[:, None] * (l - 32).astype(F)).astype(F)
    return sb, d, s.astype(np.float64)


def quant3(w, s):
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(np.rint(w / s), -4, 3) + 4
    return np.where(s == 0, 4, q).astype(np.int64)


def gptq3(W, H, damp, act_order):
    W = W.astype(np.float64).copy()
    H = H.copy()
    N, K = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    S = np.zeros((N, K))
    SB = np.zeros((N, K // 256, 12), np.uint8)
    D = np.zeros((N, K // 256), np.float16)

    def fix(b, X):
        SB[:, b], D[:, b], s = q3_scales(X.astype(F))
        return np.repeat(s, 16, axis=1)

    if act_order:  # static: scales from the original weights
        for b in range(K // 256):
            S[:, 256 * b:256 * (b + 1)] = fix(b, W[:, 256 * b:256 * (b + 1)])
        perm = np.argsort(-np.diag(H), kind="stable")
    else:
        perm = np.arange(K)
    W = W[:, perm]
    H = H[np.ix_(perm, perm)]
    S = S[:, perm]
    H[np.diag_indices(K)] += damp * np.mean(np.diag(H))
    U = np.linalg.cholesky(np.linalg.inv(H)).T
    Q = np.zeros((N, K), np.int64)
    for i in range(K):
        if not act_order and i % 256 == 0:
            S[:, i:i + 256] = fix(i // 256, W[:, i:i + 256])
        s = S[:, i]
        q = quant3(W[:, i], s)
        Q[:, i] = q
        e = (W[:, i] - s * (q - 4)) / U[i, i]
        W[:, i:] -= np.outer(e, U[i, i:])
    inv = np.argsort(perm)
    return Q[:, inv], S[:, inv], SB, D


def rtn3(W):
    """Round-to-nearest q3_k's values (the scales of the weights themselves;
    x / s in float32 as the requantization does)."""
    N, K = W.shape
    S = np.zeros((N, K))
    for b in range(K // 256):
        S[:, 256 * b:256 * (b + 1)] = np.repeat(q3_scales(W[:, 256 * b:256 * (b + 1)].astype(F))[2], 16, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(nint(W.astype(F) / S.astype(F)), -4, 3) + 4
    return np.where(S == 0, 4, q), S


def blocks3(Q, SB, D):
    N, K = Q.shape
    out = bytearray()
    for r in range(N):
        for b in range(K // 256):
            L = Q[r, 256 * b:256 * (b + 1)]
            hm = np.zeros(32, np.uint8)
            for j in range(8):
                hm |= ((L[32 * j:32 * (j + 1)] > 3).astype(np.uint8) << j)
            lo = (L & 3).astype(np.uint8)
            qs = np.zeros(64, np.uint8)
            for h in range(2):
                for i in range(4):
                    qs[32 * h:32 * h + 32] |= lo[128 * h + 32 * i:128 * h + 32 * i + 32] << (2 * i)
            out += hm.tobytes() + qs.tobytes() + SB[r, b].tobytes() + D[r, b:b + 1].tobytes()
    return bytes(out)


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


def loss(W, Q, S, H, zero=8):
    D = W.astype(np.float64) - S * (Q - zero)
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
        bits = 3 if group == 0 else 4
        if bits == 3:
            Q, S, SB, D = gptq3(W, H, damp, act)
            Qr, Sr = rtn3(W)
            qbytes, z = blocks3(Q, SB, D), 4
        else:
            Q, S = gptq(W, H, group, damp, act)
            Qr, Sr = rtn(W, group)
            qbytes, z = blocks(Q, S), 8
        print(f"{name}: N {N} K {K} bits {bits} group {group} damp {damp} act_order {act}: layer loss gptq "
              f"{loss(W, Q, S, H, z):.5g}, round-to-nearest {loss(W, Qr, Sr, H, z):.5g}")
        x = (rng.standard_normal((T, K)) @ mix).astype(np.float32)
        with open(os.path.join(out, name + ".dims"), "w") as f:
            f.write(f"{N} {K} {group} {damp} {int(act)} {T} {bits}\n")
        W.astype("<f4").tofile(os.path.join(out, name + ".w.bin"))
        H.astype("<f8").tofile(os.path.join(out, name + ".h.bin"))
        x.astype("<f4").tofile(os.path.join(out, name + ".x.bin"))
        with open(os.path.join(out, name + ".q.bin"), "wb") as f:
            f.write(qbytes)


if __name__ == "__main__":
    main()
