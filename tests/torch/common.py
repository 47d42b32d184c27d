"""tests/torch/common.py — shared helpers of the PyTorch reference scripts.

Each script tests/torch/<name>.py is run as `/usr/bin/python3 <script> OUTDIR`
by tests/support/torch_case.c. It builds a model from the math of
TECHNIQUES.md (never from tfxc's code) with deterministic random weights named
exactly as the .tfx params, and writes a test case into OUTDIR with
write_case():

  weights.safetensors  the weights (F32, or F16/BF16 for tensors of that dtype)
  input.bin            int32 tokens [T] or f32 [T, in_width], raw little-endian
  expected.bin         f32 [T, out_width], raw little-endian: the outputs of the
                       whole sequence in one pass
  meta.json            {"T", "input": "tokens"|"f32", "in_width", "out_width", "causal"}

torch 1.13 has no safetensors package, so save_safetensors() writes the format
by hand: an 8-byte little-endian header length, a JSON header mapping each
name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
the end of the header), then the raw little-endian data.
"""
import json
import os
import struct
import sys

import torch

_DTYPES = {
    torch.float32: ("F32", 4),
    torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2),
}


def _raw_bytes(t):
    """The tensor's raw little-endian bytes (bf16 through an int16 view)."""
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    b = t.numpy().tobytes()
    if sys.byteorder != "little":
        raise RuntimeError("save_safetensors: big-endian hosts are not supported")
    return b


def save_safetensors(path, tensors):
    """Writes {name: tensor} as a safetensors file. float16 and bfloat16
    tensors keep their dtype (F16, BF16); everything else is stored as F32."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            t = torch.tensor(t)
        if t.dtype not in (torch.float16, torch.bfloat16):
            t = t.to(torch.float32)
        dtype, size = _DTYPES[t.dtype]
        data = _raw_bytes(t)
        assert len(data) == t.numel() * size
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # align the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def outdir_from_argv():
    """The output directory given on the command line (created if needed)."""
    if len(sys.argv) != 2:
        sys.stderr.write("usage: %s OUTDIR\n" % sys.argv[0])
        sys.exit(2)
    os.makedirs(sys.argv[1], exist_ok=True)
    return sys.argv[1]


def write_case(outdir, weights, inputs, expected, causal):
    """Writes one test case (see the module comment).

    weights:  {param name: tensor}
    inputs:   an integer tensor of tokens [T] or a float tensor [T, D]
    expected: the model's outputs for the whole sequence, [T, out]
    causal:   True when the model is a decoder whose outputs for a prefix do
              not depend on later tokens (the C side then also checks
              token-by-token decode and chunked prefill through the KV cache)
    """
    os.makedirs(outdir, exist_ok=True)
    save_safetensors(os.path.join(outdir, "weights.safetensors"), weights)
    inputs = torch.as_tensor(inputs).detach().cpu()
    expected = torch.as_tensor(expected).detach().cpu()
    if expected.dim() != 2:
        raise ValueError("expected must be [T, out], got shape %s" % (tuple(expected.shape),))
    T = expected.shape[0]
    if inputs.is_floating_point():
        if inputs.dim() != 2 or inputs.shape[0] != T:
            raise ValueError("f32 inputs must be [T, D], got shape %s" % (tuple(inputs.shape),))
        kind, in_width = "f32", int(inputs.shape[1])
        data = inputs.to(torch.float32).contiguous().numpy().tobytes()
    else:
        if inputs.dim() != 1 or inputs.shape[0] != T:
            raise ValueError("token inputs must be [T], got shape %s" % (tuple(inputs.shape),))
        kind, in_width = "tokens", 1
        data = inputs.to(torch.int32).contiguous().numpy().tobytes()
    with open(os.path.join(outdir, "input.bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(outdir, "expected.bin"), "wb") as f:
        f.write(expected.to(torch.float32).contiguous().numpy().tobytes())
    meta = {"T": int(T), "input": kind, "in_width": in_width,
            "out_width": int(expected.shape[1]), "causal": bool(causal)}
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f)
