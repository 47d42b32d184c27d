"""tests/gguf/check_roundtrip.py — checks a GGUF that `tfxc --emit-gguf`
wrote from stories260k_gguf.tfx against the GGUF it was bound from, with the
`gguf` package: every source tensor appears under its param's name (the
example's rename table) with the same ggml type, shape and bytes, and
nothing else; the metadata names the writer.

Usage: python3 tests/gguf/check_roundtrip.py EMITTED.gguf SOURCE.gguf
"""
import re
import sys

import numpy as np
import gguf

RENAMES = [
    (r"token_embd\.weight", "tok_embeddings"),
    (r"output_norm\.weight", "norm"),
    (r"blk\.(\d+)\.attn_norm\.weight", r"layers.\1.attention_norm"),
    (r"blk\.(\d+)\.attn_q\.weight", r"layers.\1.wq"),
    (r"blk\.(\d+)\.attn_k\.weight", r"layers.\1.wk"),
    (r"blk\.(\d+)\.attn_v\.weight", r"layers.\1.wv"),
    (r"blk\.(\d+)\.attn_output\.weight", r"layers.\1.wo"),
    (r"blk\.(\d+)\.ffn_norm\.weight", r"layers.\1.ffn_norm"),
    (r"blk\.(\d+)\.ffn_gate\.weight", r"layers.\1.w1"),
    (r"blk\.(\d+)\.ffn_down\.weight", r"layers.\1.w2"),
    (r"blk\.(\d+)\.ffn_up\.weight", r"layers.\1.w3"),
]


def renamed(name):
    for pat, to in RENAMES:
        if re.fullmatch(pat, name):
            return re.sub(pat, to, name)
    raise SystemExit(f"no rename rule for {name}")


def main():
    emitted, source = gguf.GGUFReader(sys.argv[1]), gguf.GGUFReader(sys.argv[2])
    arch = emitted.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "tfxc", "general.architecture"
    al = emitted.fields["general.alignment"]
    assert int(al.parts[al.data[0]][0]) == 32
    got = {t.name: t for t in emitted.tensors}
    want = {renamed(t.name): t for t in source.tensors}
    assert set(got) == set(want), (sorted(set(got) ^ set(want)))
    for name, s in want.items():
        e = got[name]
        assert e.tensor_type == s.tensor_type, (name, e.tensor_type, s.tensor_type)
        assert list(e.shape) == list(s.shape), (name, e.shape, s.shape)
        assert np.array_equal(np.asarray(e.data).view(np.uint8), np.asarray(s.data).view(np.uint8)), name
        assert e.data_offset % 32 == 0, name
    # and the (dequantized) values, through the gguf package's own decoder
    for name, s in want.items():
        if s.tensor_type not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            a = gguf.quants.dequantize(np.asarray(got[name].data), got[name].tensor_type)
            b = gguf.quants.dequantize(np.asarray(s.data), s.tensor_type)
            assert np.array_equal(a, b), name
    print(f"round trip: {len(got)} tensors, same names (renamed), types, shapes and bytes")


if __name__ == "__main__":
    main()
