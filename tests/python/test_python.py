"""tests/python/test_python.py — the `tfx` Python package (python/tfx) against
tfxc: the real stories260K compiled to a .so, opened from Python, reads its
name and sizes through tfx_model_info, generates llama2.c's greedy ids
(stories260K.greedy.ids) and the same sampled ids as `tfxc run`; a forward
of all rows equals prefill + decode (1e-4 absolute); errors are tfx.Error
with the runtime's message; a tokenizer round-trips a text; two models
(different libraries) live in one process.

usage: test_python.py TFXC SOURCE_DIR MODELS_DIR
Not run in the sanitizer build (ctypes would load an instrumented library
into a Python without the sanitizer runtime)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

TFXC, SOURCE_DIR, MODELS_DIR = sys.argv[1:4]
sys.path.insert(0, os.path.join(SOURCE_DIR, "python"))

import numpy as np  # noqa: E402

import tfx  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tfx_python_")
SO = os.path.join(TMP, "stories260k.so")
TINY = os.path.join(TMP, "tiny.so")


def tfxc(*args):
    r = subprocess.run([TFXC] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("tfxc %s: exit %d\n%s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def setUpModule():
    bin_ = os.path.join(MODELS_DIR, "stories260K.bin")
    if not os.path.exists(bin_):
        raise AssertionError("the real model is missing: %s (set TFX_MODELS_DIR)" % bin_)
    tfxc(os.path.join(SOURCE_DIR, "examples/llama/stories260k.tfx"), "--weights", bin_, "-o", SO)
    tfxc(os.path.join(SOURCE_DIR, "examples/llama/tiny.tfx"), "--weights", "random:3", "-O1", "-o", TINY)


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def run_ids(so, *args):
    return [int(x) for x in tfxc("run", so, "--print-ids", *args).split()]


class TestModel(unittest.TestCase):
    def test_info(self):
        with tfx.Model(SO, verify=True) as m:
            self.assertEqual(m.name, "stories260k")
            i = m.info
            self.assertEqual((i.vocab, i.output_width, i.input_kind, i.input_width), (512, 512, tfx.INPUT_TOKENS, 1))
            self.assertEqual(i.max_seq, 512)
            self.assertEqual(i.has_kv_cache, 1)
            self.assertEqual(i.abi_version, 7)
            self.assertEqual(i.n_inputs, 1)
            self.assertEqual(m.inputs, [{"name": "input", "kind": tfx.INPUT_TOKENS, "width": 1, "vocab": 512, "rows": 0}])
            # the sizes tfxc verify and --emit-header state
            out = tfxc("verify", SO)
            self.assertIn("%d weight bytes" % i.weights_bytes, out)
            hdr = os.path.join(TMP, "s.h")
            tfxc(os.path.join(SOURCE_DIR, "examples/llama/stories260k.tfx"), "--weights",
                 os.path.join(MODELS_DIR, "stories260K.bin"), "--emit-header", hdr)
            text = open(hdr).read()
            self.assertIn("#define STORIES260K_KV_CACHE_SIZE %du" % i.kv_bytes, text)
            self.assertIn("#define STORIES260K_ACTIVATIONS_SIZE %du" % i.arena_bytes, text)
            # the CPU features are LLVM names the bits stand for
            feats = m.cpu_features
            self.assertEqual(len(feats), bin(i.cpu_features).count("1"))
            self.assertTrue(all(f.isalnum() or "." in f for f in feats), feats)

    def test_greedy_ids_are_llama2c(self):
        ref = [int(x) for x in open(os.path.join(MODELS_DIR, "stories260K.greedy.ids")).read().split()][:32]
        with tfx.Model(SO) as m:
            self.assertEqual(m.generate([1], 32, temperature=0), ref)

    def test_sampling_as_tfxc_run(self):
        expect = run_ids(SO, "-n", "24", "--temperature", "0.8", "--top-p", "0.9", "--seed", "7",
                         "--prompt-ids", "5 9")
        with tfx.Model(SO) as m:
            got = m.generate([1, 5, 9], 24, temperature=0.8, top_p=0.9, seed=7)
        self.assertEqual(got, expect)

    def test_all_rows_equal_prefill_then_decode(self):
        ids = [1, 461, 401, 378, 455, 473]
        with tfx.Model(SO) as m, m.session(threads=1) as s:
            rows = s.forward(ids, last_only=False)
            self.assertEqual(rows.shape, (len(ids), 512))
            self.assertEqual(s.position, len(ids))
            s.reset()
            self.assertEqual(s.position, 0)
            step = [s.forward(ids[:3], last_only=False)[-1]] + [s.forward([t]) for t in ids[3:]]
            np.testing.assert_allclose(rows[2:], np.stack(step), atol=1e-4, rtol=0)
            self.assertEqual(s.threads, 1)

    def test_errors(self):
        with self.assertRaises(tfx.Error) as e:
            tfx.Model(os.path.join(TMP, "none.so"))
        self.assertIn("cannot load", str(e.exception))
        with tfx.Model(SO) as m, m.session() as s:
            with self.assertRaises(tfx.Error) as e:
                s.forward([1, 600])
            self.assertEqual(e.exception.code, -6)
            self.assertIn("600", str(e.exception))
            with self.assertRaises(tfx.Error):
                s.forward([])

    def test_several_inputs(self):
        """A .so whose forward takes tokens and per-row type ids (ABI 6):
        Session.forward_inputs by name; prefill = decode row by row."""
        src = os.path.join(TMP, "two.tfx")
        with open(src, "w") as f:
            f.write("model two\nconst dim = 16, vocab = 20, max_seq = 16\n"
                    "param emb : f32[vocab, dim]\nparam temb : f32[3, dim]\nparam w : f32[dim, dim]\n"
                    "param head : f32[vocab, dim]\n"
                    "forward(tokens : i32[T], types : i32[T]) -> f32[T, vocab] {\n"
                    "  x = embedding(emb, tokens) + embedding(temb, types)\n"
                    "  x = x + attention(x, w, w, w, w, heads = 2, mask = causal)\n"
                    "  return linear(x, head)\n}\n")
        so = os.path.join(TMP, "two.so")
        tfxc(src, "--weights", "random:4", "-o", so)
        ids, types = [3, 7, 1, 19, 4], [0, 2, 1, 1, 0]
        with tfx.Model(so, verify=True) as m, m.session() as s:
            self.assertEqual(m.info.n_inputs, 2)
            self.assertEqual([i["name"] for i in m.inputs], ["tokens", "types"])
            self.assertEqual(m.inputs[1]["vocab"], 3)
            full = s.forward_inputs({"types": types, "tokens": ids})
            self.assertEqual(full.shape, (5, 20))
            s.reset()
            rows = [s.forward_inputs({"tokens": [t], "types": [y]}) for t, y in zip(ids, types)]
            np.testing.assert_allclose(np.concatenate(rows), full, atol=1e-5)
            s.reset()
            with self.assertRaises(tfx.Error) as e:
                s.forward(ids)
            self.assertIn("missing 'types'", str(e.exception))
            with self.assertRaises(tfx.Error) as e:
                s.forward_inputs({"tokens": ids, "types": [0, 0, 3, 0, 0]})
            self.assertEqual(e.exception.code, -6)
            self.assertIn("input 'types': id 3", str(e.exception))

    def test_source_input(self):
        """A .so with a source of its own rows (src : i32[6]): its rows from
        the array's length; prefill = decode row by row; a shorter source
        gives other logits; the same source as a source of 6 rows."""
        src = os.path.join(TMP, "src.tfx")
        with open(src, "w") as f:
            f.write("model srcm\nconst dim = 16, vocab = 20, max_seq = 16, nsrc = 6\n"
                    "param emb : f32[vocab, dim]\nparam w : f32[dim, dim]\nparam head : f32[vocab, dim]\n"
                    "forward(tokens : i32[T], src : i32[nsrc]) -> f32[T, vocab] {\n"
                    "  e = embedding(emb, src)\n"
                    "  e = e + attention(e, w, w, w, w, heads = 2, mask = none)\n"
                    "  x = embedding(emb, tokens)\n"
                    "  x = x + attention(x, w, w, w, w, heads = 2, mask = causal)\n"
                    "  x = x + attention(x, w, w, w, w, heads = 2, memory = e, mask = none)\n"
                    "  return linear(x, head)\n}\n")
        so = os.path.join(TMP, "src.so")
        tfxc(src, "--weights", "random:4", "-o", so)
        ids, sent = [3, 7, 1, 19, 4], [5, 6, 7]
        with tfx.Model(so, verify=True) as m, m.session() as s:
            self.assertEqual(m.info.n_inputs, 2)
            self.assertEqual(m.inputs[1]["rows"], 6)
            full = s.forward_inputs({"src": sent, "tokens": ids})
            self.assertEqual(full.shape, (5, 20))
            s.reset()
            rows = [s.forward_inputs({"tokens": [t], "src": sent}) for t in ids]
            np.testing.assert_allclose(np.concatenate(rows), full, atol=1e-5)
            s.reset()
            other = s.forward_inputs({"src": sent[:2], "tokens": ids})
            self.assertGreater(np.abs(other - full).max(), 1e-3)
            s.reset()
            with self.assertRaises(tfx.Error) as e:
                s.forward_inputs({"tokens": ids, "src": list(range(7))})
            self.assertIn("source of 1 to 6 rows", str(e.exception))

    def test_tokenizer_round_trip(self):
        tokbin = os.path.join(MODELS_DIR, "llama2c-tokenizer.bin")
        with tfx.Model(SO) as m, m.tokenizer(tokbin) as t:
            self.assertEqual(t.vocab_size, 32000)
            ids = t.encode("Once upon a time, there was a little dog.")
            self.assertEqual(ids[0], t.bos)
            self.assertGreater(len(ids), 5)
            self.assertEqual(t.decode(ids[1:]), "Once upon a time, there was a little dog.")
            self.assertEqual(t.encode("hi", bos=False)[0:1] != [t.bos], True)

    def test_embedded_tokenizer(self):
        tokbin = os.path.join(MODELS_DIR, "llama2c-tokenizer.bin")
        with_tok = os.path.join(TMP, "tiny_tok.so")
        tfxc(os.path.join(SOURCE_DIR, "examples/llama/tiny.tfx"), "--weights", "random:3", "-O1", "-o", with_tok,
             "--tokenizer", tokbin)
        with tfx.Model(TINY) as m:
            self.assertIsNone(m.tokenizer())
            self.assertEqual((m.info.bos_id, m.info.eos_id, m.info.tokenizer_bytes), (-1, -1, 0))
        with tfx.Model(with_tok) as m, m.tokenizer() as t, m.tokenizer(tokbin) as f:
            self.assertEqual(m.info.tokenizer_bytes, os.path.getsize(tokbin))
            self.assertEqual(t.vocab_size, 32000)
            text = "Once upon a time, there was a little dog."
            self.assertEqual(t.encode(text), f.encode(text))

    def test_two_models_in_one_process(self):
        with tfx.Model(SO) as a, tfx.Model(TINY) as b:
            self.assertNotEqual(a.name, b.name)
            ga = a.generate([1], 8, temperature=0)
            gb = b.generate([1], 8, temperature=0)
            self.assertEqual(ga, run_ids(SO, "-n", "8", "--temperature", "0"))
            self.assertEqual(gb, run_ids(TINY, "-n", "8", "--temperature", "0"))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
