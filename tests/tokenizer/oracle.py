#!/usr/bin/env python3
"""tests/tokenizer/oracle.py OUTDIR MODELS_DIR HELDOUT CORPUS...

The expected ids of tests/test_tokenizer.c, from the reference packages:
`sentencepiece` (Llama 2's model from MODELS_DIR, and a BPE and a Unigram
model trained here with byte fallback on the CORPUS files) and `tokenizers`
(a GPT-2 byte-level BPE and a Llama-style BPE with byte fallback trained here).
The texts are a list of varied ones, 1000-character chunks of HELDOUT (a
file not in the corpus) and the whole of it. Writes OUTDIR/NAME.expect for each tokenizer: one line per text, the text's
UTF-8 bytes in hex, a tab, its ids (no BOS) space-separated, a tab, the
package's decoding of those ids in hex. The tokenizer
files trained here go beside them (NAME.model, NAME.json)."""
import json
import os
import sys

import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

TEXTS = [
    "Once upon a time",
    "Hello world",
    " leading space",
    "trailing space ",
    "two  spaces and   three",
    "     ",
    "a\nb\n\nc\n\n\n",
    "\ttabs\tand\r\nCRLF",
    "digits 0123456789 3.14159 1,000,000 2026-12-04",
    "Ünïcödé: héllo wörld, naïve café, Straße, Ørsted",
    "Русский текст и ελληνικά",
    "中文字符和日本語のテキスト、한국어",
    "emoji 😀🎉👍🏽 and ZWJ 👨‍👩‍👧",
    "rare: ꙮ 𓀀 ᚠᛇᚻ 🜁 ⟁",
    "mixed-Case CamelCaseWords snake_case_words UPPER",
    "punctuation!!! ??? ... --- ((()))[]{}<>@#$%^&*",
    "<s> and </s> are text here, <unk> too",
    "x",
    "the space piece \u2581 itself: (\"\u2581\") \u2581\u2581x",
    "NFKC: \ufb01ne \u2460 \uff21\uff22\uff23\u3000\u5168\u89d2 \uff76\uff80\uff76\uff85 \u337b \u216b \u2122 x\u00b2 a\u200bb",
    "",
    "it's we're they've I'm you'll he'd IT'S WE'RE 'hello",
    "numbers 1 12 123 1234 12345 123456789 ١٢٣ ½ x2 2x",
    "\n\n  \n\t\n   x\r\n\r\n  y  \n",
    "    indented code:\n        return x + 1;\n",
    "The quick brown fox jumps over the lazy dog. " * 6,
]


def write_expect(path, encode, decode):
    with open(path, "w") as f:
        for t in TEXTS:
            ids = encode(t)
            f.write(t.encode("utf-8").hex() + "\t" + " ".join(str(i) for i in ids) + "\t" +
                    decode(ids).encode("utf-8").hex() + "\n")


def read_spm(path):
    """The pieces (piece, score, type) and the normalizer's precompiled_charsmap of a .model (protobuf by hand)."""
    data = open(path, "rb").read()

    def fields(b):
        i = 0
        while i < len(b):
            key, i = varint(b, i)
            f, w = key >> 3, key & 7
            if w == 0:
                v, i = varint(b, i)
            elif w == 5:
                v, i = b[i:i + 4], i + 4
            elif w == 1:
                v, i = b[i:i + 8], i + 8
            else:
                n, i = varint(b, i)
                v, i = b[i:i + n], i + n
            yield f, v

    def varint(b, i):
        v = s = 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return v, i

    import struct
    pieces, charsmap = [], b""
    for f, v in fields(data):
        if f == 1:
            d = dict(fields(v))
            pieces.append((d.get(1, b"").decode(), struct.unpack("<f", d.get(2, b"\0\0\0\0"))[0], d.get(3, 1)))
        elif f == 3:
            charsmap = dict(fields(v)).get(2, b"")
    return pieces, charsmap


def write_gguf(path, model, tokens, scores, types, merges, bos, eos, unk, pre=None):
    import gguf
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model(model)
    if pre:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    if scores is not None:
        w.add_token_scores(scores)
    w.add_token_types(types)
    if merges is not None:
        w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    if unk is not None:
        w.add_unk_token_id(unk)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out, models_dir, heldout, corpus_files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    text = open(heldout, encoding="utf-8").read()
    TEXTS.extend(text[i:i + 1000] for i in range(0, min(len(text), 12000), 1000))
    TEXTS.append(text)  # whole: long inputs (Unigram's path scores need double precision)
    corpus = "".join(open(p, encoding="utf-8").read() for p in corpus_files)
    corpus_path = os.path.join(out, "corpus.txt")
    with open(corpus_path, "w", encoding="utf-8") as f:
        f.write(corpus)

    if models_dir:  # "" when ../shared/models is missing
        llama = spm.SentencePieceProcessor(model_file=os.path.join(models_dir, "llama2-tokenizer.model"))
        write_expect(os.path.join(out, "llama2.expect"), lambda t: llama.encode(t), llama.decode)
        # the same vocabulary embedded in a GGUF file as llama.cpp's converter writes it
        n = llama.vocab_size()
        types = [3 if llama.is_control(i) else 2 if llama.is_unknown(i) else 6 if llama.is_byte(i)
                 else 5 if llama.is_unused(i) else 1 for i in range(n)]
        write_gguf(os.path.join(out, "llama2.gguf"), "llama", [llama.id_to_piece(i) for i in range(n)],
                   [llama.get_score(i) for i in range(n)], types, None, 1, 2, 0)

    # (the last: SentencePiece's default nmt_nfkc normalization, a precompiled character map)
    for name, mtype, rule in (("spm_bpe", "bpe", "identity"), ("spm_unigram", "unigram", "identity"),
                              ("spm_nfkc", "unigram", "nmt_nfkc")):
        spm.SentencePieceTrainer.train(
            input=corpus_path, model_prefix=os.path.join(out, name), model_type=mtype, vocab_size=600,
            byte_fallback=True, normalization_rule_name=rule, character_coverage=0.9995,
            remove_extra_whitespaces=(mtype == "unigram"), minloglevel=2, num_threads=1)
        sp = spm.SentencePieceProcessor(model_file=os.path.join(out, name + ".model"))
        write_expect(os.path.join(out, name + ".expect"), lambda t, sp=sp: sp.encode(t), sp.decode)

    # GPT-2 byte-level BPE
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train([corpus_path], trainers.BpeTrainer(vocab_size=800, special_tokens=["<s>", "</s>"], show_progress=False,
                                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(os.path.join(out, "hf_bytelevel.json"))
    write_expect(os.path.join(out, "hf_bytelevel.expect"), lambda t: tok.encode(t, add_special_tokens=False).ids, tok.decode)
    # its vocabulary and merges in a GGUF file ("gpt2" model, <s> </s> as control tokens)
    j = json.loads(tok.to_str())
    vocab = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    write_gguf(os.path.join(out, "hf_bytelevel.gguf"), "gpt2", [p for p, _ in vocab], None,
               [3 if p in ("<s>", "</s>") else 1 for p, _ in vocab], merges, 0, 1, None)
    # the same with add_prefix_space and a post-processor putting <s> first
    j = json.loads(tok.to_str())
    j["pre_tokenizer"]["add_prefix_space"] = True
    j["post_processor"] = {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "</s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}}
    tok = Tokenizer.from_str(json.dumps(j))
    tok.save(os.path.join(out, "hf_bytelevel_prefix.json"))
    write_expect(os.path.join(out, "hf_bytelevel_prefix.expect"),
                 lambda t: tok.encode(t, add_special_tokens=False).ids, tok.decode)

    # Unigram (T5-like: Metaspace, split on spaces), no byte fallback: unknown characters are <unk>
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train([corpus_path], trainers.UnigramTrainer(vocab_size=600, special_tokens=["<pad>", "</s>", "<unk>"],
                                                     unk_token="<unk>", show_progress=False))
    tok.save(os.path.join(out, "hf_unigram.json"))
    write_expect(os.path.join(out, "hf_unigram.expect"), lambda t: tok.encode(t, add_special_tokens=False).ids,
                 tok.decode)

    # T5-like: the nmt_nfkc Unigram .model as a tokenizer.json (as transformers converts it): the
    # Precompiled normalizer with its character map, WhitespaceSplit + Metaspace, the Unigram pieces
    pieces, charsmap = read_spm(os.path.join(out, "spm_nfkc.model"))
    tok = Tokenizer(models.Unigram([(p, s) for p, s, _ in pieces], unk_id=next(i for i, x in enumerate(pieces)
                                                                                 if x[2] == 2), byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")])
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.save(os.path.join(out, "hf_t5.json"))
    write_expect(os.path.join(out, "hf_t5.expect"), lambda t: tok.encode(t, add_special_tokens=False).ids,
                 tok.decode)

    # Llama 3 and Qwen2: a Split by their regex, then ByteLevel without GPT-2's regex
    for name, digits in (("hf_llama3", "{1,3}"), ("hf_qwen2", "")):
        pattern = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" + digits +
                   "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        tok.train([corpus_path], trainers.BpeTrainer(vocab_size=800, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
                                                     show_progress=False,
                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok.save(os.path.join(out, name + ".json"))
        write_expect(os.path.join(out, name + ".expect"), lambda t: tok.encode(t, add_special_tokens=False).ids,
                     tok.decode)
        if name == "hf_llama3":  # as a GGUF vocabulary with llama.cpp's pre-tokenizer name
            j = json.loads(tok.to_str())
            vocab = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
            merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
            write_gguf(os.path.join(out, "hf_llama3.gguf"), "gpt2", [p for p, _ in vocab], None,
                       [3 if p.startswith("<|") else 1 for p, _ in vocab], merges, 0, 1, None, "llama-bpe")

    # Llama-style: prepend U+2581, spaces to U+2581, no pre-tokenizer, byte fallback
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    specials = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    tok.train([corpus_path], trainers.BpeTrainer(vocab_size=800, special_tokens=specials, show_progress=False,
                                                 limit_alphabet=120))
    path = os.path.join(out, "hf_llama.json")
    tok.save(path)
    j = json.load(open(path, encoding="utf-8"))
    # the byte pieces are model pieces, not added tokens matched in the text (as Llama's file has them)
    j["added_tokens"] = [a for a in j["added_tokens"] if not a["content"].startswith("<0x")]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    tok = Tokenizer.from_file(path)
    write_expect(os.path.join(out, "hf_llama.expect"), lambda t: tok.encode(t, add_special_tokens=False).ids, tok.decode)
    # the newer Llama form: no normalizer, a Metaspace pre-tokenizer (prepend first, no split), the same decoder
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    tok = Tokenizer.from_str(json.dumps(j))
    tok.save(os.path.join(out, "hf_metaspace.json"))
    write_expect(os.path.join(out, "hf_metaspace.expect"), lambda t: tok.encode(t, add_special_tokens=False).ids, tok.decode)


if __name__ == "__main__":
    main()
