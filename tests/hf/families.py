"""tests/hf/families.py — the oracle of tests/test_import_families.c.

Run as `$TFX_HF_PYTHON families.py OUTDIR FAMILY...` (the venv of
scripts/hfenv.sh: Debian's torch, transformers 4.44.2 from PyPI). For each
family it builds a tiny random model with `transformers` itself (eager
attention, f32), randomizes every parameter (norm gains around 1, biases and
weights around 0, so that a mistake in any of them shows), saves it with
save_pretrained into OUTDIR/FAMILY/ exactly as `transformers` writes it, and
writes the case beside it (llama in shards of 40 KB, with
model.safetensors.index.json, as save_pretrained writes large models):

  input.bin     int32 tokens [T], raw little-endian
  expected.bin  f32 [T, out_width]: the logits (decoders) or last hidden
                states (encoders) of the whole sequence in one pass
  meta.json     {"T", "out_width", "causal"}
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

T = 12
VOCAB = 100
COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, vocab_size=VOCAB,
              max_position_embeddings=64, bos_token_id=1, eos_token_id=2)

CONFIGS = {
    # model_type, extra config, encoder?
    "llama": ("llama", dict(num_key_value_heads=2, attention_bias=True, mlp_bias=True), False),
    "mistral": ("mistral", dict(num_key_value_heads=2, head_dim=8), False),
    "qwen2": ("qwen2", dict(num_key_value_heads=2), False),
    "mixtral": ("mixtral", dict(num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2), False),
    "phi3": ("phi3", dict(num_key_value_heads=2, pad_token_id=0), False),
    "phi": ("phi", dict(partial_rotary_factor=0.5), False),
    "gpt2": ("gpt2", dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=VOCAB, bos_token_id=1,
                          eos_token_id=2), False),
    "bloom": ("bloom", dict(hidden_size=48, n_layer=2, n_head=6, vocab_size=VOCAB), False),
    "gpt_neox": ("gpt_neox", dict(rotary_pct=0.5), False),
    "falcon": ("falcon", dict(), False),
    "falcon_new": ("falcon", dict(new_decoder_architecture=True, num_kv_heads=2, bias=True), False),
    "bert": ("bert", dict(), True),
}


def main():
    out, fams = sys.argv[1], sys.argv[2:]
    for fam in fams:
        model_type, extra, encoder = CONFIGS[fam]
        kw = {} if model_type in ("gpt2", "bloom") else dict(COMMON)
        kw.update(extra)
        torch.manual_seed(1234)
        cfg = AutoConfig.for_model(model_type, **kw)
        cls = AutoModel if encoder else AutoModelForCausalLM
        model = cls.from_config(cfg, attn_implementation="eager").float().eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 1:
                    p.copy_(torch.rand_like(p) - 0.5 + (1.0 if name.endswith("weight") else 0.0))
                else:
                    p.normal_(0.0, 0.2)
        d = os.path.join(out, fam)
        # llama is saved in shards (model.safetensors.index.json + 3 files)
        shard = dict(max_shard_size="40KB") if fam == "llama" else {}
        model.save_pretrained(d, safe_serialization=True, **shard)
        g = torch.Generator().manual_seed(7)
        ids = torch.randint(3, VOCAB, (1, T), generator=g)
        with torch.no_grad():
            res = model(input_ids=ids)
            y = res.last_hidden_state if encoder else res.logits
        y = y[0].float().contiguous()
        ids[0].to(torch.int32).numpy().tofile(os.path.join(d, "input.bin"))
        y.numpy().tofile(os.path.join(d, "expected.bin"))
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"T": T, "out_width": y.shape[1], "causal": not encoder,
                       "transformers": transformers.__version__}, f)


if __name__ == "__main__":
    main()
