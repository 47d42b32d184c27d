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

and, for the encoders (BERT's three inputs, as `tfxc import` writes them):

  types.bin     int32 token_type_ids [T] (written when type_vocab_size > 1)
  mask.bin      int32 attention_mask [T], zeros at the start, inside and at
                the end, where input_ids are the pad token (RoBERTa's position
                ids skip them)

transformers 4.44.2 has no Qwen3 and no OLMo 2 (4.51 and 4.47 added them):
their oracles are transformers' Mistral (Qwen3: head_dim != hidden / heads)
and Llama with the q/k norms and OLMo 2's norm placement put around the
projections with transformers' own RMSNorm, exactly as modeling_qwen3.py and
modeling_olmo2.py compute them (q_norm per head before RoPE in Qwen3; over
the whole projection in OLMo 2, whose post_attention_layernorm and
post_feedforward_layernorm norm each sublayer's output before its residual
add); they are saved under those files' tensor names with the config.json
their Config classes write.
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
from transformers.models.llama.modeling_llama import LlamaRMSNorm

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
    # transformers 4.44.2 applies Phi's per-head q/k LayerNorm before splitting the heads: one head only
    "phi_qkln": ("phi", dict(partial_rotary_factor=0.5, qk_layernorm=True, num_attention_heads=1), False),
    "gpt2": ("gpt2", dict(n_embd=32, n_layer=2, n_head=4, n_positions=64, vocab_size=VOCAB, bos_token_id=1,
                          eos_token_id=2), False),
    "bloom": ("bloom", dict(hidden_size=48, n_layer=2, n_head=6, vocab_size=VOCAB), False),
    "gpt_neox": ("gpt_neox", dict(rotary_pct=0.5), False),
    "falcon": ("falcon", dict(), False),
    "falcon_new": ("falcon", dict(new_decoder_architecture=True, num_kv_heads=2, bias=True), False),
    "bert": ("bert", dict(), True),
    "roberta": ("roberta", dict(), True),
    # type_vocab_size 1, as the real checkpoints: type 0's row, no `types` input
    "xlm_roberta": ("xlm-roberta", dict(max_position_embeddings=40, pad_token_id=3, type_vocab_size=1), True),
    "gemma": ("gemma", dict(num_key_value_heads=1, head_dim=16, hidden_activation="gelu_pytorch_tanh"), False),
    # window 5 < T: layer 0 slides, layer 1 attends globally; caps low enough to bite on random weights
    "gemma2": ("gemma2", dict(num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=12, sliding_window=5,
                              attn_logit_softcapping=2.0, final_logit_softcapping=5.0,
                              hidden_activation="gelu_pytorch_tanh"), False),
    # built from mistral / llama below (not in transformers 4.44.2)
    "qwen3": ("qwen3", dict(num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6), False),
    "olmo2": ("olmo2", dict(num_key_value_heads=2, rms_norm_eps=1e-5), False),
}


class Normed(torch.nn.Module):
    """proj, then an RMSNorm of its output: over each head of width `group`
    (Qwen3's q_norm/k_norm) or over the whole output (group None)."""

    def __init__(self, proj, width, eps, group=None):
        super().__init__()
        self.proj = proj
        self.group = group
        self.norm = LlamaRMSNorm(group or width, eps=eps)

    def forward(self, x):
        y = self.proj(x)
        if self.group is None:
            return self.norm(y)
        return self.norm(y.view(*y.shape[:-1], -1, self.group)).view(y.shape)


def build_qk_norm(model_type, cfg_kw):
    """Qwen3 (on Mistral) or OLMo 2 (on Llama): the model, its config.json
    and the renaming of its state dict to the real family's names."""
    kw = dict(cfg_kw)
    eps = kw["rms_norm_eps"]
    heads, kv, dim = kw["num_attention_heads"], kw["num_key_value_heads"], kw["hidden_size"]
    if model_type == "qwen3":
        base = AutoConfig.for_model("mistral", sliding_window=None, **kw)
        hd = kw["head_dim"]
    else:
        base = AutoConfig.for_model("llama", **kw)
        hd = dim // heads
    model = AutoModelForCausalLM.from_config(base, attn_implementation="eager").float().eval()
    ren = {}
    for i, layer in enumerate(model.model.layers):
        a, p = layer.self_attn, f"model.layers.{i}."
        group = hd if model_type == "qwen3" else None
        a.q_proj = Normed(a.q_proj, heads * hd, eps, group)
        a.k_proj = Normed(a.k_proj, kv * hd, eps, group)
        ren[p + "self_attn.q_proj.proj.weight"] = p + "self_attn.q_proj.weight"
        ren[p + "self_attn.k_proj.proj.weight"] = p + "self_attn.k_proj.weight"
        ren[p + "self_attn.q_proj.norm.weight"] = p + "self_attn.q_norm.weight"
        ren[p + "self_attn.k_proj.norm.weight"] = p + "self_attn.k_norm.weight"
        if model_type == "olmo2":
            layer.input_layernorm = torch.nn.Identity()
            layer.post_attention_layernorm = torch.nn.Identity()
            a.o_proj = Normed(a.o_proj, dim, eps)
            layer.mlp.down_proj = Normed(layer.mlp.down_proj, dim, eps)
            ren[p + "self_attn.o_proj.proj.weight"] = p + "self_attn.o_proj.weight"
            ren[p + "self_attn.o_proj.norm.weight"] = p + "post_attention_layernorm.weight"
            ren[p + "mlp.down_proj.proj.weight"] = p + "mlp.down_proj.weight"
            ren[p + "mlp.down_proj.norm.weight"] = p + "post_feedforward_layernorm.weight"
    config = dict(base.to_dict(), model_type=model_type, architectures=[
        "Qwen3ForCausalLM" if model_type == "qwen3" else "Olmo2ForCausalLM"])
    for k in ("sliding_window", "mlp_bias", "pretraining_tp", "_name_or_path"):
        config.pop(k, None)
    if model_type == "qwen3":
        config.update(head_dim=hd, use_sliding_window=False, sliding_window=None, max_window_layers=28)
    return model, config, ren


def save_renamed(model, config, ren, d):
    os.makedirs(d, exist_ok=True)
    sd = {ren.get(k, k): v.contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def main():
    out, fams = sys.argv[1], sys.argv[2:]
    for fam in fams:
        model_type, extra, encoder = CONFIGS[fam]
        kw = {} if model_type in ("gpt2", "bloom") else dict(COMMON)
        kw.update(extra)
        torch.manual_seed(1234)
        if model_type in ("qwen3", "olmo2"):
            model, config, ren = build_qk_norm(model_type, kw)
        else:
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
        if model_type in ("qwen3", "olmo2"):
            save_renamed(model, config, ren, d)
        else:
            model.save_pretrained(d, safe_serialization=True, **shard)
        g = torch.Generator().manual_seed(7)
        ids = torch.randint(3, VOCAB, (1, T), generator=g)
        extra = {}
        if encoder:  # token types (when the config has more than one) and a mask with dropped keys
            types = cfg.type_vocab_size
            if types > 1:
                extra["token_type_ids"] = torch.randint(0, types, (1, T), generator=g)
            mask = torch.ones((1, T), dtype=torch.long)
            mask[0, [0, 7, T - 2, T - 1]] = 0
            extra["attention_mask"] = mask
            ids[mask == 0] = cfg.pad_token_id
            for name, v in extra.items():
                v[0].to(torch.int32).numpy().tofile(os.path.join(d, "types.bin" if name[0] == "t" else "mask.bin"))
        with torch.no_grad():
            res = model(input_ids=ids, **extra)
            y = res.last_hidden_state if encoder else res.logits
        y = y[0].float().contiguous()
        ids[0].to(torch.int32).numpy().tofile(os.path.join(d, "input.bin"))
        y.numpy().tofile(os.path.join(d, "expected.bin"))
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"T": T, "out_width": y.shape[1], "causal": not encoder,
                       "transformers": transformers.__version__}, f)


if __name__ == "__main__":
    main()
