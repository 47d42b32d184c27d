"""tests/torch/llama_halfprec.py — the reference for examples/llama/tiny.tfx
with weights stored in half precision: the attention projections as F16, the
FFN matrices as BF16, the rest as F32. tfxc converts them to f32 at compile
time (exactly), so the f32 model must match the float64 model computed with
the same rounded values.

Usage: /usr/bin/python3 tests/torch/llama_halfprec.py OUTDIR
"""
import torch

from common import outdir_from_argv
from llama import CONFIG, build_case


def storage(name):
    last = name.rsplit(".", 1)[-1]
    if last in ("wq", "wk", "wv", "wo"):
        return torch.float16
    if last in ("w1", "w2", "w3"):
        return torch.bfloat16
    return torch.float32


if __name__ == "__main__":
    build_case(outdir_from_argv(), CONFIG, seed=777, storage=storage)
