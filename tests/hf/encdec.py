"""tests/hf/encdec.py — the oracle of tests/test_import_encdec.c: T5 and BART.

Run as `$TFX_HF_PYTHON encdec.py OUTDIR FAMILY...` (the venv of
scripts/hfenv.sh: Debian's torch, transformers 4.44.2 from PyPI). For each
family a tiny random T5ForConditionalGeneration or
BartForConditionalGeneration made by `transformers` itself (eager
attention, f32), every parameter randomized (norm gains around 1, biases and
weights around 0; BART's final_logits_bias too), saved with save_pretrained
into OUTDIR/FAMILY/ exactly as `transformers` writes it, with the case:

  src.bin       int32 source ids [S] (the encoder's input_ids)
  input.bin     int32 decoder ids [T] (decoder_input_ids)
  expected.bin  f32 [T, vocab]: model(input_ids=src, decoder_input_ids=tgt).logits
  meta.json     {"S", "T", "out_width"}
"""
import json
import os
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForSeq2SeqLM

S, T, VOCAB = 7, 9, 64
T5 = dict(d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2, num_heads=4, vocab_size=VOCAB,
          relative_attention_num_buckets=8, relative_attention_max_distance=16, decoder_start_token_id=0,
          pad_token_id=0, eos_token_id=1)
CONFIGS = {
    # T5 v1.0: ReLU, the classifier tied to the embedding (rescaled by d_model^-0.5); d_kv * heads != d_model
    "t5": ("t5", dict(T5, d_kv=6, feed_forward_proj="relu", tie_word_embeddings=True)),
    # T5 v1.1: gated-gelu (gelu_new), an untied lm_head
    "t5_v11": ("t5", dict(T5, feed_forward_proj="gated-gelu", tie_word_embeddings=False)),
    # BART: learned positions offset 2, layernorm_embedding, post-norm, gelu, scaled embeddings
    "bart": ("bart", dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                          decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, vocab_size=VOCAB,
                          max_position_embeddings=40, scale_embedding=True, activation_function="gelu",
                          pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                          forced_eos_token_id=2)),
}


def main():
    out, fams = sys.argv[1], sys.argv[2:]
    for fam in fams:
        model_type, kw = CONFIGS[fam]
        torch.manual_seed(1234)
        cfg = AutoConfig.for_model(model_type, **kw)
        model = AutoModelForSeq2SeqLM.from_config(cfg, attn_implementation="eager").float().eval()
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 1:
                    p.copy_(torch.rand_like(p) - 0.5 + (1.0 if name.endswith("weight") else 0.0))
                else:
                    p.normal_(0.0, 0.2)
            if hasattr(model, "final_logits_bias"):
                model.final_logits_bias.normal_(0.0, 0.5)
        d = os.path.join(out, fam)
        model.save_pretrained(d, safe_serialization=True)
        g = torch.Generator().manual_seed(7)
        src = torch.randint(3, VOCAB, (1, S), generator=g)
        tgt = torch.randint(3, VOCAB, (1, T), generator=g)
        with torch.no_grad():
            y = model(input_ids=src, decoder_input_ids=tgt).logits
        y = y[0].float().contiguous()
        src[0].to(torch.int32).numpy().tofile(os.path.join(d, "src.bin"))
        tgt[0].to(torch.int32).numpy().tofile(os.path.join(d, "input.bin"))
        y.numpy().tofile(os.path.join(d, "expected.bin"))
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"S": S, "T": T, "out_width": y.shape[1], "transformers": transformers.__version__}, f)


if __name__ == "__main__":
    main()
