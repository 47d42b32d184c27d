"""tests/torch/retnet_gamma.py — retnet.py's RetNet with the decay of each
head given in the program (`retention(q, k, v, heads = H, gamma = g)`, g a
param f32[H] of each layer) instead of the paper's gamma_h = 1 - 2^(-5-h):
the same three forms (parallel, recurrent, chunkwise; the script checks they
agree) with other decays per layer and head. The model is
tests/torch/retnet_gamma.tfx.
"""
import torch

import retnet
from attn_common import F64, as_f32, make_gen
from common import outdir_from_argv, write_case

GAMMAS = [[0.9, 0.5, 0.99, 0.75], [0.96875, 0.8, 0.999, 0.6]]  # per layer, per head


def main():
    gen = make_gen(4343)
    w = retnet.make_weights(gen)
    for i, g in enumerate(GAMMAS):
        w["layers.%d.gamma" % i] = torch.tensor(g, dtype=F64)
    w = as_f32(w)  # the decays as the file stores them (f32)
    tokens = torch.randint(0, retnet.C["vocab"], (retnet.C["T"],), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), w, tokens, retnet.forward(w, tokens), causal=True)


if __name__ == "__main__":
    main()
