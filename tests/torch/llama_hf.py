"""tests/torch/llama_hf.py — the reference for examples/llama/tiny_hf.tfx: the
tiny LLaMA with half-split RoPE (Hugging Face's rotate_half pairing), its
weights saved under Hugging Face's LlamaForCausalLM names (plus an unused
rotary_emb.inv_freq buffer per layer), which the .tfx binds through its
`weights ... rename { }` table.

Usage: /usr/bin/python3 tests/torch/llama_hf.py OUTDIR
"""
import torch

from common import outdir_from_argv
from llama import CONFIG, build_case

HF = {"attention_norm": "input_layernorm.weight", "ffn_norm": "post_attention_layernorm.weight",
      "wq": "self_attn.q_proj.weight", "wk": "self_attn.k_proj.weight", "wv": "self_attn.v_proj.weight",
      "wo": "self_attn.o_proj.weight", "w1": "mlp.gate_proj.weight", "w2": "mlp.down_proj.weight",
      "w3": "mlp.up_proj.weight"}


def hf_names(stored):
    out = {"model.embed_tokens.weight": stored["tok_embeddings"], "model.norm.weight": stored["norm"],
           "lm_head.weight": stored["output"]}
    d = CONFIG["dim"] // CONFIG["heads"]
    for i in range(CONFIG["layers"]):
        for ours, theirs in HF.items():
            out["model.layers.%d.%s" % (i, theirs)] = stored["layers.%d.%s" % (i, ours)]
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        out["model.layers.%d.self_attn.rotary_emb.inv_freq" % i] = inv_freq
    return out


if __name__ == "__main__":
    c = dict(CONFIG, style="half")
    build_case(outdir_from_argv(), c, seed=2024, file_names=hf_names)
