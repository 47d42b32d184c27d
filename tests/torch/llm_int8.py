"""The PyTorch oracle of LLM.int8() (tests/test_torch_llm_int8.c; issue #13).

Written from the equations (Dettmers et al. 2022, and docs/quantization.md's
W8A8), not from tfxc's C code. A random linear y = x W^T (K 256, N 96) whose
input has 4 planted outlier channels (about 40x the others) is computed
  - in float64 (the reference),
  - as plain W8A8: W per output row s = max|W_r| / 127, q = round(W / s)
    (ties away from zero); x per token d = max|x_t| / 127, q = rint(x / d)
    (ties to even); y = (q_x q_W^T) d s,
  - as LLM.int8(): the channels whose calibrated max|x| (over 64 other rows
    of the same distribution) exceeds the threshold 6 are outliers;
    y = W8A8(x[:, regular], W[:, regular]) + x[:, outliers] W[:, outliers]^T
    in float32.
Writes OUTDIR/{dims.txt, x.bin, w.bin, absmax.bin, y_f64.bin, y_w8a8.bin,
y_llm.bin} (little-endian f32; y_f64 rounded to f32) and prints the errors.

usage: python llm_int8.py OUTDIR
"""
import os
import sys

import numpy as np
import torch

T, K, N = 48, 256, 96
OUTLIERS = [5, 77, 130, 201]
THRESHOLD = 6.0


def sample(gen, rows):
    x = torch.randn(rows, K, generator=gen, dtype=torch.float32)
    x[:, OUTLIERS] *= 40.0
    return x


def round_away(v):
    return torch.sign(v) * torch.floor(torch.abs(v) + 0.5)


def w8a8(x, w):
    """x[T, k], w[N, k] float32 -> float32 [T, N]"""
    s = w.abs().amax(dim=1) / 127.0
    iws = torch.where(s != 0, 1.0 / s, torch.zeros_like(s))
    qw = round_away(w * iws[:, None]).clamp(-127, 127)
    d = x.abs().amax(dim=1) / 127.0
    idd = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    qx = torch.round(x * idd[:, None])  # torch.round: ties to even, as rint
    acc = qx.double() @ qw.double().T  # exact integer sums
    return (acc * (d.double()[:, None] * s.double()[None, :])).float()


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(20261204)
    calib = sample(gen, 64)
    x = sample(gen, T)
    w = torch.randn(N, K, generator=gen, dtype=torch.float32) * 0.1
    absmax = calib.abs().amax(dim=0)
    outl = (absmax > THRESHOLD).nonzero().flatten()
    reg = (absmax <= THRESHOLD).nonzero().flatten()
    assert sorted(outl.tolist()) == OUTLIERS, outl.tolist()
    y64 = x.double() @ w.double().T
    yw = w8a8(x, w)
    yl = w8a8(x[:, reg], w[:, reg]) + x[:, outl] @ w[:, outl].T
    ew = (yw.double() - y64).abs().max().item()
    el = (yl.double() - y64).abs().max().item()
    print(f"max |y| {y64.abs().max().item():.3f}; max error vs float64: w8a8 {ew:.4f}, llm_int8 {el:.4f}")
    with open(os.path.join(out, "dims.txt"), "w") as f:
        f.write(f"{T} {K} {N}\n")
    for name, t in (("x", x), ("w", w), ("absmax", absmax), ("y_f64", y64.float()), ("y_w8a8", yw), ("y_llm", yl)):
        np.ascontiguousarray(t.numpy().astype("<f4")).tofile(os.path.join(out, name + ".bin"))


if __name__ == "__main__":
    main()
