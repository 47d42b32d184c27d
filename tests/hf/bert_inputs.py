"""tests/hf/bert_inputs.py — the oracle of tests/test_inputs.c: a forward with
several inputs against Hugging Face `transformers` (4.44.2, eager, f32).

Run as `$TFX_HF_PYTHON bert_inputs.py OUTDIR`. Builds a tiny random BertModel
(two token types, every parameter randomized as in families.py), saves it with
save_pretrained into OUTDIR, and writes one batch row with padding:

  ids.bin, types.bin, mask.bin  int32 [T]: input_ids, token_type_ids (0 and
                                1) and attention_mask (1, then PAD zeros)
  expected.bin                  f32 [T, dim]: last_hidden_state of every row
                                (padded rows included: their queries still
                                attend the kept keys)
  meta.json                     {"T", "out_width", "pad"}

and a packed batch (tests/hf/bert_packed.tfx, issue #16): four sequences of
different lengths concatenated, each run ALONE through BertModel (token type 0,
no mask):

  packed_ids.bin, packed_seq.bin  int32 [P]: the ids and each row's sequence id
  packed_expected.bin             f32 [P, dim]: each sequence's last hidden
                                  states, concatenated
"""
import json
import os
import sys

import torch
import transformers
from transformers import BertConfig, BertModel

T, PAD = 10, 3


def main():
    out = sys.argv[1]
    torch.manual_seed(4321)
    cfg = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                     vocab_size=100, max_position_embeddings=64, type_vocab_size=2)
    cfg._attn_implementation = "eager"
    model = BertModel(cfg, add_pooling_layer=False).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.rand_like(p) - 0.5 + (1.0 if name.endswith("weight") else 0.0))
            else:
                p.normal_(0.0, 0.2)
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(3, 100, (1, T), generator=g)
    types = torch.tensor([[0] * 4 + [1] * (T - 4)])
    mask = torch.tensor([[1] * (T - PAD) + [0] * PAD])
    with torch.no_grad():
        y = model(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state[0].float()
        # the mask matters: the kept rows differ without it
        y_nomask = model(input_ids=ids, token_type_ids=types).last_hidden_state[0].float()
    assert (y[: T - PAD] - y_nomask[: T - PAD]).abs().max() > 1e-3
    for name, t in (("ids", ids), ("types", types), ("mask", mask)):
        t[0].to(torch.int32).numpy().tofile(os.path.join(out, name + ".bin"))
    y.contiguous().numpy().tofile(os.path.join(out, "expected.bin"))
    # packed: sequences of 6, 1, 11 and 4 rows, each its own BertModel call
    lens = [6, 1, 11, 4]
    pids = torch.randint(3, 100, (1, sum(lens)), generator=g)
    pseq = torch.tensor([[k for k, n in enumerate(lens) for _ in range(n)]])
    ys, at = [], 0
    with torch.no_grad():
        for n in lens:
            ys.append(model(input_ids=pids[:, at:at + n]).last_hidden_state[0].float())
            at += n
    pids[0].to(torch.int32).numpy().tofile(os.path.join(out, "packed_ids.bin"))
    pseq[0].to(torch.int32).numpy().tofile(os.path.join(out, "packed_seq.bin"))
    torch.cat(ys).contiguous().numpy().tofile(os.path.join(out, "packed_expected.bin"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"T": T, "out_width": y.shape[1], "pad": PAD, "transformers": transformers.__version__}, f)


if __name__ == "__main__":
    main()
