"""tests/torch/bloom_hf.py — tests/torch/alibi.py's BLOOM-style model (the
reference of examples/bloom/alibi.tfx) with its weights written as Hugging
Face's BLOOM checkpoints store them: query_key_value fuses q, k and v per
head ([H, 3, d] rows: head h's q, then its k, then its v), its bias the same
way, under BloomForCausalLM's names (transformer.h.{i}.self_attention...,
transformer.word_embeddings_layernorm, ...).

Usage: /usr/bin/python3 tests/torch/bloom_hf.py OUTDIR
"""
import torch

import alibi
from common import outdir_from_argv, write_case


def interleave(q, k, v, H):
    """[H * d, ...] each -> [H * 3 * d, ...]: per head its q, k, v rows."""
    d = q.shape[0] // H
    parts = [t.reshape(H, d, *t.shape[1:]) for t in (q, k, v)]
    return torch.stack(parts, 1).reshape(3 * q.shape[0], *q.shape[1:]).contiguous()


def repack(w):
    w = dict(w)
    t, H = "transformer.", alibi.C["heads"]
    out = {t + "word_embeddings.weight": w.pop("word_embeddings"),
           t + "word_embeddings_layernorm.weight": w.pop("emb_norm_g"),
           t + "word_embeddings_layernorm.bias": w.pop("emb_norm_b"),
           t + "ln_f.weight": w.pop("ln_f_g"), t + "ln_f.bias": w.pop("ln_f_b")}
    for i in range(alibi.C["layers"]):
        p, h = "layers.%d." % i, t + "h.%d." % i
        g = lambda n: w.pop(p + n)  # noqa: E731
        out[h + "input_layernorm.weight"], out[h + "input_layernorm.bias"] = g("ln1_g"), g("ln1_b")
        out[h + "self_attention.query_key_value.weight"] = interleave(g("wq"), g("wk"), g("wv"), H)
        out[h + "self_attention.query_key_value.bias"] = interleave(g("bq"), g("bk"), g("bv"), H)
        out[h + "self_attention.dense.weight"], out[h + "self_attention.dense.bias"] = g("wo"), g("bo")
        out[h + "post_attention_layernorm.weight"] = g("ln2_g")
        out[h + "post_attention_layernorm.bias"] = g("ln2_b")
        out[h + "mlp.dense_h_to_4h.weight"], out[h + "mlp.dense_h_to_4h.bias"] = g("w_up"), g("b_up")
        out[h + "mlp.dense_4h_to_h.weight"], out[h + "mlp.dense_4h_to_h.bias"] = g("w_down"), g("b_down")
    assert not w, "weights left unpacked: %s" % sorted(w)
    return out


if __name__ == "__main__":
    gen = alibi.make_gen(4242)
    w = alibi.make_weights(gen)
    tokens = torch.randint(0, alibi.C["vocab"], (20,), generator=gen, dtype=torch.int32)
    write_case(outdir_from_argv(), repack(w), tokens, alibi.forward(w, tokens), causal=True)
