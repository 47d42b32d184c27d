"""tests/torch/llama_neox.py — the reference for examples/llama/tiny_neox.tfx:
the tiny LLaMA of llama.py with half-split RoPE pairs (i, i + r/2) on the
first r = 8 of 16 dims of each head (partial rotary), base 500000.

Usage: /usr/bin/python3 tests/torch/llama_neox.py OUTDIR
"""
from common import outdir_from_argv
from llama import CONFIG, build_case

if __name__ == "__main__":
    c = dict(CONFIG, theta=500000.0, style="half", rotary_dim=8)
    build_case(outdir_from_argv(), c, seed=4321)
