"""tests/torch/mixtral_hf.py — tests/torch/mixtral.py's model (the reference
of examples/mixtral/mixtral.tfx) with its weights written as Hugging Face's
Mixtral checkpoints store them: one tensor per expert
(model.layers.{i}.block_sparse_moe.experts.{e}.w1.weight, [hidden, dim]),
stacked by the example's rename block into its [experts, ...] params, and
the Hugging Face names of everything else.

Usage: /usr/bin/python3 tests/torch/mixtral_hf.py OUTDIR
"""
import hf_layout
import mixtral
from common import outdir_from_argv


def repack(w):
    out = {"model.embed_tokens.weight": w.pop("tok_embeddings"), "model.norm.weight": w.pop("norm"),
           "lm_head.weight": w.pop("output")}
    for i in range(mixtral.C["layers"]):
        p, h = "layers.%d." % i, "model.layers.%d." % i
        g = lambda n: w.pop(p + n)  # noqa: E731
        out[h + "input_layernorm.weight"] = g("attention_norm")
        for n, hf in (("wq", "q_proj"), ("wk", "k_proj"), ("wv", "v_proj"), ("wo", "o_proj")):
            out[h + "self_attn.%s.weight" % hf] = g(n)
        out[h + "post_attention_layernorm.weight"] = g("ffn_norm")
        out[h + "block_sparse_moe.gate.weight"] = g("gate")
        for n in ("w1", "w2", "w3"):
            for e, t in enumerate(g(n)):
                out[h + "block_sparse_moe.experts.%d.%s.weight" % (e, n)] = t.contiguous()
    assert not w, "weights left unpacked: %s" % sorted(w)
    return out


if __name__ == "__main__":
    hf_layout.run(mixtral, outdir_from_argv(), repack)
