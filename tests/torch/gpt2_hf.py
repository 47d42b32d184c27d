"""tests/torch/gpt2_hf.py — tests/torch/gpt2.py's model (the reference of
examples/gpt2/gpt2.tfx) with its weights written as Hugging Face's GPT-2
checkpoints store them (openai-community/gpt2's model.safetensors): Conv1D
weights [in, out] (c_attn fuses q, k and v by columns, its bias too), names
h.{i}.attn.c_attn.weight, ..., wte.weight, wpe.weight, ln_f.weight, and the
causal-mask buffers h.{i}.attn.bias that the example's rename block ignores.

Usage: /usr/bin/python3 tests/torch/gpt2_hf.py OUTDIR
"""
import torch

import gpt2
import hf_layout
from common import outdir_from_argv


def repack(w):
    out = {"wte.weight": w.pop("wte"), "wpe.weight": w.pop("wpe"),
           "ln_f.weight": w.pop("ln_f_g"), "ln_f.bias": w.pop("ln_f_b")}
    P = gpt2.C["max_pos"]
    for i in range(gpt2.C["layers"]):
        p, h = "h.%d." % i, "h.%d." % i
        g = lambda n: w.pop(p + n)  # noqa: E731
        out[h + "ln_1.weight"], out[h + "ln_1.bias"] = g("ln_1_g"), g("ln_1_b")
        out[h + "attn.c_attn.weight"] = torch.cat([g("wq"), g("wk"), g("wv")], 0).t().contiguous()
        out[h + "attn.c_attn.bias"] = torch.cat([g("bq"), g("bk"), g("bv")], 0)
        out[h + "attn.c_proj.weight"] = g("wo").t().contiguous()
        out[h + "attn.c_proj.bias"] = g("bo")
        out[h + "ln_2.weight"], out[h + "ln_2.bias"] = g("ln_2_g"), g("ln_2_b")
        out[h + "mlp.c_fc.weight"] = g("fc_w").t().contiguous()
        out[h + "mlp.c_fc.bias"] = g("fc_b")
        out[h + "mlp.c_proj.weight"] = g("proj_w").t().contiguous()
        out[h + "mlp.c_proj.bias"] = g("proj_b")
        out[h + "attn.bias"] = torch.tril(torch.ones(P, P)).view(1, 1, P, P)
    assert not w, "weights left unpacked: %s" % sorted(w)
    return out


if __name__ == "__main__":
    hf_layout.run(gpt2, outdir_from_argv(), repack)
