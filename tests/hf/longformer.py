"""tests/hf/longformer.py — the oracle of tests/test_longformer_global.c:
Hugging Face's LongformerModel (transformers 4.44.2, eager, f32) with its
separate global query/key/value projections, against
examples/longformer/longformer_global.tfx bound to the checkpoint as saved.

Run as `$TFX_HF_PYTHON longformer.py OUTDIR`. Builds a tiny random
LongformerModel (every parameter randomized: weights N(0, 0.2), biases and
LayerNorm gains uniform around 0 and 1), saves it with save_pretrained into
OUTDIR and writes one batch row of T tokens whose last PAD are padding
(attention_mask 0) and whose global tokens (global_attention_mask 1) are the
positions the .tfx lists, tokens(0, 9):

  ids.bin, mask.bin  int32 [T]: input_ids and attention_mask (1, then PAD zeros)
  expected.bin       f32 [T, dim]: last_hidden_state of every row (the padded
                     rows are not compared: Longformer zeroes their attention)
  expected_noglobal.bin  the same call with no global token (global_attention_mask
                     absent): the .tfx with `global = 0`
  meta.json          {"T", "out_width", "pad", "globals", "window"}

Per-call global tokens (examples/longformer/longformer_call.tfx, `global = g`
with g an i32[T] input): the same model called with a DIFFERENT
global_attention_mask each time, CALLS below (none, one, several, one in the
padding, many):

  gmask_K.bin            int32 [T]: call K's global_attention_mask
  expected_call_K.bin    f32 [T, dim]: its last_hidden_state
  expected_call_shared_K.bin  the same call of the model whose global projections
                         are the regular ones (= the pattern alone, the .tfx
                         without global_q/k/v)

T is not a multiple of attention_window, so LongformerModel also pads the call
to the window itself (pad_token_id, attention_mask 0) and trims the output.
The script checks that the global projections matter: the same model with
query_global/key_global/value_global copied from query/key/value gives other
hidden states on the kept rows.
"""
import copy
import json
import os
import sys

import torch
import transformers
from transformers import LongformerConfig, LongformerModel

T, PAD, GLOBALS, WINDOW = 23, 3, (0, 9), 6
# per-call global tokens: none, one, several, one in the padding (HF: padding wins), many
CALLS = ((), (5,), (0, 9, 14), (2, 21), (0, 1, 4, 9, 10, 16, 19, 22))


def main():
    out = sys.argv[1]
    torch.manual_seed(2024)
    cfg = LongformerConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                           vocab_size=100, max_position_embeddings=64, type_vocab_size=1,
                           attention_window=WINDOW, layer_norm_eps=1e-5, pad_token_id=1)
    cfg._attn_implementation = "eager"
    model = LongformerModel(cfg, add_pooling_layer=False).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.rand_like(p) - 0.5 + (1.0 if name.endswith("LayerNorm.weight") else 0.0))
            else:
                p.normal_(0.0, 0.2)
    model.save_pretrained(out, safe_serialization=True)
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(3, 100, (1, T), generator=g)  # no pad id (1): positions count every row
    mask = torch.tensor([[1] * (T - PAD) + [0] * PAD])
    gmask = torch.zeros(1, T, dtype=torch.long)
    for p in GLOBALS:
        gmask[0, p] = 1
    with torch.no_grad():
        y = model(input_ids=ids, attention_mask=mask, global_attention_mask=gmask).last_hidden_state[0].float()
        shared = copy.deepcopy(model)
        for layer in shared.encoder.layer:
            a = layer.attention.self
            for gl, loc in ((a.query_global, a.query), (a.key_global, a.key), (a.value_global, a.value)):
                gl.load_state_dict(loc.state_dict())
        y_shared = shared(input_ids=ids, attention_mask=mask, global_attention_mask=gmask).last_hidden_state[0]
        y_none = model(input_ids=ids, attention_mask=mask).last_hidden_state[0].float()  # no global token
        for c, glob in enumerate(CALLS):
            gm = torch.zeros(1, T, dtype=torch.long)
            for p in glob:
                gm[0, p] = 1
            yc = model(input_ids=ids, attention_mask=mask, global_attention_mask=gm).last_hidden_state[0]
            ys = shared(input_ids=ids, attention_mask=mask, global_attention_mask=gm).last_hidden_state[0]
            gm[0].to(torch.int32).numpy().tofile(os.path.join(out, "gmask_%d.bin" % c))
            yc.float().contiguous().numpy().tofile(os.path.join(out, "expected_call_%d.bin" % c))
            ys.float().contiguous().numpy().tofile(os.path.join(out, "expected_call_shared_%d.bin" % c))
    kept = T - PAD
    assert (y[:kept] - y_shared[:kept]).abs().max() > 1e-2, "the global projections do not matter"
    ids[0].to(torch.int32).numpy().tofile(os.path.join(out, "ids.bin"))
    mask[0].to(torch.int32).numpy().tofile(os.path.join(out, "mask.bin"))
    y.contiguous().numpy().tofile(os.path.join(out, "expected.bin"))
    y_shared.float().contiguous().numpy().tofile(os.path.join(out, "expected_shared.bin"))
    y_none.contiguous().numpy().tofile(os.path.join(out, "expected_noglobal.bin"))
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"T": T, "out_width": y.shape[1], "pad": PAD, "globals": list(GLOBALS), "window": WINDOW,
                   "calls": len(CALLS),
                   "transformers": transformers.__version__}, f)


if __name__ == "__main__":
    main()
