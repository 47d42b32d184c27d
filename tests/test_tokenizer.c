/* tests/test_tokenizer.c — the tokenizers (tfx/tokenizer.h) against the
 * reference packages: tests/tokenizer/oracle.py writes, for a list of varied
 * texts (Unicode, emoji, runs of spaces and newlines, digits, characters that
 * need byte fallback), the ids that `sentencepiece` gives with Llama 2's
 * model and with a BPE and a Unigram model it trains here, and that
 * `tokenizers` gives with a GPT-2 byte-level BPE and a Llama-style BPE it
 * trains here; every id must be identical. Decoding gives the text back
 * (where the tokenizer keeps it: not after Unigram's removal of extra
 * spaces), piece by piece as in streaming; broken files give clear errors.
 * The python with the packages is TFX_PYENV_PYTHON (scripts/pyenv.sh); a
 * missing one is a failure. Without ../shared/models the Llama 2 cases are
 * skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/testutil.h"
#include "tfx/tfx.h"
#include "tfx/tokenizer.h"

#ifndef TFX_PYENV_PYTHON
#define TFX_PYENV_PYTHON "python3"
#endif

static char *dir;
static int have_models;

static const char *python(void) {
  const char *env = getenv("TFX_PYENV_PYTHON");
  return env && env[0] ? env : TFX_PYENV_PYTHON;
}

static int setup(void **state) {
  (void)state;
  if (access(python(), X_OK) != 0) {
    fprintf(stderr,
            "test_tokenizer: FAILED: %s (the python with sentencepiece and tokenizers) is missing: run "
            "scripts/pyenv.sh, or set TFX_PYENV_PYTHON\n",
            python());
    return -1;
  }
  char model[4096];
  tfx_test_model_path("llama2-tokenizer.model", model, sizeof model);
  have_models = access(model, R_OK) == 0;
  if (!have_models) fprintf(stderr, "test_tokenizer: %s is missing: the Llama 2 vocabulary cases are skipped\n", model);
  dir = tfx_test_tmpdir();
  char script[4096], c1[4096], c2[4096], held[4096];
  snprintf(script, sizeof script, "%s/tests/tokenizer/oracle.py", TFX_SOURCE_DIR);
  snprintf(c1, sizeof c1, "%s/README.md", TFX_SOURCE_DIR);
  snprintf(c2, sizeof c2, "%s/docs/language.md", TFX_SOURCE_DIR);
  snprintf(held, sizeof held, "%s/docs/passes.md", TFX_SOURCE_DIR);
  char *argv[] = {(char *)python(), script, dir, have_models ? (char *)tfx_test_models_dir() : "", held, c1, c2, NULL};
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != 0) fprintf(stderr, "test_tokenizer: FAILED: %s exited with %d:\n%s\n", script, rc, err ? err : "");
  free(out);
  free(err);
  return rc == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  if (dir && !getenv("TFX_TOKENIZER_KEEP")) tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

static const char *tpath(const char *name, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", dir, name);
  return buf;
}

static tfx_tokenizer *open_ok(const char *path) {
  tfx_tokenizer *t = NULL;
  char err[512];
  int rc = tfx_tokenizer_open(path, &t, err, sizeof err);
  if (rc) fail_msg("%s: %d %s", path, rc, err);
  return t;
}

/* Every line of NAME.expect: hex text, tab, ids, tab, the package's decoding
 * in hex. Compares the ids, and the decoding of them (whole and piece by
 * piece, as streamed) with the package's; with roundtrip, that is also the
 * text (except texts with special tokens, which decode to nothing, or with
 * U+2581, which decodes to a space). */
static void check_expect(tfx_tokenizer *t, const char *name, int roundtrip) {
  char path[4096];
  char *data = tfx_test_read_file(tpath(name, path, sizeof path), NULL);
  if (!data) fail_msg("cannot read %s", path);
  int lines = 0, bad = 0;
  for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n"), lines++) {
    char *tab = strchr(line, '\t');
    assert_non_null(tab);
    size_t tl = (size_t)(tab - line) / 2;
    char *text = malloc(tl + 1);
    for (size_t i = 0; i < tl; i++) {
      unsigned v;
      sscanf(line + 2 * i, "%2x", &v);
      text[i] = (char)v;
    }
    text[tl] = 0;
    char *tab2 = strchr(tab + 1, '\t');
    assert_non_null(tab2);
    *tab2 = 0;
    size_t rl = strlen(tab2 + 1) / 2;
    char *ref = malloc(rl + 1);
    for (size_t i = 0; i < rl; i++) {
      unsigned v;
      sscanf(tab2 + 1 + 2 * i, "%2x", &v);
      ref[i] = (char)v;
    }
    ref[rl] = 0;
    int32_t *want = malloc((strlen(tab + 1) / 2 + 2) * sizeof *want);
    int nw = 0;
    for (char *p = tab + 1; *p;) {
      char *e;
      long v = strtol(p, &e, 10);
      if (e == p) break;
      want[nw++] = (int32_t)v;
      p = e;
    }
    int n = tfx_tokenizer_encode(t, text, tl, 0, NULL, 0);
    assert_true(n >= 0);
    int32_t *got = malloc(((size_t)n + 1) * sizeof *got);
    assert_int_equal(tfx_tokenizer_encode(t, text, tl, 0, got, n), n);
    int same = n == nw;
    for (int i = 0; same && i < n; i++) same = got[i] == want[i];
    if (!same) {
      bad++;
      fprintf(stderr, "%s: text %d \"%s\":\n  want", name, lines, text);
      for (int i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
      fprintf(stderr, "\n  got ");
      for (int i = 0; i < n; i++) fprintf(stderr, " %d", got[i]);
      fprintf(stderr, "\n");
    } else {
      int dl = tfx_tokenizer_decode(t, got, n, NULL, 0);
      assert_true(dl >= 0);
      char *dec = malloc((size_t)dl + 1);
      assert_int_equal(tfx_tokenizer_decode(t, got, n, dec, (size_t)dl + 1), dl);
      char *stream = malloc((size_t)dl + 64);
      size_t sl = 0;
      for (int i = 0; i < n; i++) {
        int r = tfx_tokenizer_decode_piece(t, i ? got[i - 1] : -1, got[i], stream + sl, (size_t)dl + 64 - sl);
        assert_true(r >= 0);
        sl += (size_t)r;
      }
      if ((size_t)dl != rl || memcmp(dec, ref, rl) != 0 || sl != rl || memcmp(stream, ref, rl) != 0 ||
          (roundtrip && !strstr(text, "<s>") && !strstr(text, "\xE2\x96\x81") &&
           (rl != tl || memcmp(ref, text, tl) != 0))) {
        bad++;
        fprintf(stderr, "%s: text %d \"%s\" decodes to \"%.*s\" (streamed \"%.*s\"), the package's \"%s\"\n", name,
                lines, text, dl, dec, (int)sl, stream, ref);
      }
      free(dec);
      free(stream);
    }
    free(got);
    free(want);
    free(text);
    free(ref);
  }
  free(data);
  assert_true(lines >= 20);
  if (bad) fail_msg("%s: %d of %d texts differ", name, bad, lines);
}

static void test_llama2c_bin(void **state) {
  (void)state;
  if (!have_models) skip();
  char path[4096];
  tfx_tokenizer *t = open_ok(tfx_test_model_path("llama2c-tokenizer.bin", path, sizeof path));
  assert_int_equal(tfx_tokenizer_vocab_size(t), 32000);
  assert_int_equal(tfx_tokenizer_bos(t), 1);
  assert_int_equal(tfx_tokenizer_eos(t), 2);
  check_expect(t, "llama2.expect", 1);
  /* BOS first on request; the count sizes the buffer and a short buffer is not overrun */
  int32_t ids[8] = {0}, few[3] = {-7, -7, -7};
  int n = tfx_tokenizer_encode(t, "Once upon a time", 16, TFX_TOKENIZE_BOS, ids, 8);
  assert_int_equal(n, 5);
  assert_int_equal(ids[0], 1);
  assert_int_equal(tfx_tokenizer_encode(t, "Once upon a time", 16, TFX_TOKENIZE_BOS, few, 2), 5);
  assert_int_equal(few[2], -7);
  /* the space after BOS is dropped, not the one after another piece */
  char buf[32];
  assert_int_equal(tfx_tokenizer_decode_piece(t, 1, ids[1], buf, sizeof buf), 4);
  assert_memory_equal(buf, "Once", 4);
  assert_int_equal(tfx_tokenizer_decode_piece(t, ids[1], ids[2], buf, sizeof buf), 5);
  assert_memory_equal(buf, " upon", 5);
  assert_int_equal(tfx_tokenizer_decode_piece(t, 1, 32000, buf, sizeof buf), TFX_ERR_TOKEN_RANGE);
  assert_int_equal(tfx_tokenizer_decode_piece(t, 1, 0x0A + 3, buf, sizeof buf), 1); /* <0x0A> */
  assert_int_equal(buf[0], '\n');
  tfx_tokenizer_close(t);
}

/* tfx_tokenizer_open_memory: the bytes of a file give the same ids as the
 * file, and may be freed once it returns */
static void test_open_memory(void **state) {
  (void)state;
  static const char *const files[] = {"hf_bytelevel.json", "spm_unigram.model", "hf_llama3.gguf"};
  static const char text[] = "Once upon a time, 12345 caf\xC3\xA9s \xF0\x9F\x98\x80  it's\n";
  for (int f = 0; f < 3; f++) {
    char path[4096], err[512];
    size_t size = 0;
    char *bytes = tfx_test_read_file(tpath(files[f], path, sizeof path), &size);
    assert_non_null(bytes);
    tfx_tokenizer *a = open_ok(path), *b = NULL;
    if (tfx_tokenizer_open_memory(bytes, size, files[f], &b, err, sizeof err)) fail_msg("%s", err);
    memset(bytes, 0, size);
    free(bytes);
    int32_t x[128], y[128];
    int nx = tfx_tokenizer_encode(a, text, sizeof text - 1, TFX_TOKENIZE_BOS, x, 128);
    assert_true(nx > 5 && nx <= 128);
    assert_int_equal(tfx_tokenizer_encode(b, text, sizeof text - 1, TFX_TOKENIZE_BOS, y, 128), nx);
    assert_memory_equal(x, y, (size_t)nx * sizeof *x);
    tfx_tokenizer_close(a);
    tfx_tokenizer_close(b);
  }
  tfx_tokenizer *t = NULL;
  char err[512];
  assert_int_equal(tfx_tokenizer_open_memory("{\"model\": 1", 11, "inline.json", &t, err, sizeof err),
                   TFX_ERR_TOKENIZER);
  assert_non_null(strstr(err, "inline.json: bad JSON"));
}

/* One tokenizer file against its .expect: the vocabulary size and BOS/EOS
 * (-2: not checked), then check_expect. */
typedef struct {
  const char *file; /* shared: 1 in ../shared/models, 2 written by the oracle from them, 0 written by it */
  int shared, vocab, bos, eos, roundtrip;
  const char *expect;
} case_t;

static void check_case(const case_t *c) {
  if (c->shared && !have_models) skip();
  char path[4096];
  tfx_tokenizer *t =
      open_ok(c->shared == 1 ? tfx_test_model_path(c->file, path, sizeof path) : tpath(c->file, path, sizeof path));
  if (c->vocab != -2) assert_int_equal(tfx_tokenizer_vocab_size(t), c->vocab);
  if (c->bos != -2) assert_int_equal(tfx_tokenizer_bos(t), c->bos);
  if (c->eos != -2) assert_int_equal(tfx_tokenizer_eos(t), c->eos);
  check_expect(t, c->expect, c->roundtrip);
  tfx_tokenizer_close(t);
}

/* The tokenizer files and what they are checked for (-2: not checked). */
static case_t cases[] = {
    {"llama2-tokenizer.model", 1, 32000, 1, 2, 1, "llama2.expect"},
    {"spm_bpe.model", 0, 600, -2, -2, 1, "spm_bpe.expect"},
    /* trained with remove_extra_whitespaces: no round trip */
    {"spm_unigram.model", 0, 600, -2, -2, 0, "spm_unigram.expect"},
    /* nmt_nfkc: the normalizer's precompiled character map (no round trip) */
    {"spm_nfkc.model", 0, 600, -2, -2, 0, "spm_nfkc.expect"},
    {"hf_bytelevel.json", 0, 800, 0, 1, 1, "hf_bytelevel.expect"},
    {"hf_llama.json", 0, -2, 1, 2, 1, "hf_llama.expect"},
    /* add_prefix_space (decoding keeps the added space), and BOS from the
     * post-processor's template (</s> here) */
    {"hf_bytelevel_prefix.json", 0, 800, 1, 1, 0, "hf_bytelevel_prefix.expect"},
    /* a leading space is not prepended again, and decoding drops it: no round trip */
    {"hf_metaspace.json", 0, -2, 1, 2, 0, "hf_metaspace.expect"},
    /* a Unigram tokenizer.json (Metaspace; unknown characters fuse into one <unk>) */
    {"hf_unigram.json", 0, 600, -2, 1, 0, "hf_unigram.expect"},
    /* T5-like: Precompiled normalizer (nmt_nfkc's map), WhitespaceSplit + Metaspace, Unigram */
    {"hf_t5.json", 0, 600, -2, -2, 0, "hf_t5.expect"},
    /* Llama 3's and Qwen2's pre-tokenizer: a Split by their regex, then ByteLevel */
    {"hf_llama3.json", 0, 800, 0, 1, 1, "hf_llama3.expect"},
    {"hf_qwen2.json", 0, 800, 0, 1, 1, "hf_qwen2.expect"},
    /* the vocabularies embedded in GGUF files (written by the gguf package):
     * Llama 2's ("llama") and the byte-level BPE's ("gpt2", with merges) */
    {"llama2.gguf", 2, 32000, 1, 2, 1, "llama2.expect"},
    {"hf_bytelevel.gguf", 0, 800, 0, 1, 1, "hf_bytelevel.expect"},
    {"hf_llama3.gguf", 0, 800, 0, 1, 1, "hf_llama3.expect"},
};

static void test_case(void **state) { check_case(*state); }

static void write_bytes(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(p, 1, n, f), n);
  fclose(f);
}

/* a file that is not a tokenizer: the status and a message naming the file and the problem */
static void expect_error(const char *path, int code, const char *needle) {
  tfx_tokenizer *t = (tfx_tokenizer *)(uintptr_t)1;
  char err[512];
  int rc = tfx_tokenizer_open(path, &t, err, sizeof err);
  if (rc != code || t != NULL || !strstr(err, needle) || !strstr(err, path))
    fail_msg("%s: %d (want %d), \"%s\" (want \"%s\")", path, rc, code, err, needle);
}

/* every step-th truncation of a tokenizer file written by the oracle: an
 * error with a message, or a tokenizer that encodes */
static void truncations(const char *name, size_t step) {
  char p[4096], src[4096];
  size_t size = 0;
  char *m = tfx_test_read_file(tpath(name, src, sizeof src), &size);
  assert_non_null(m);
  for (size_t n = 1; n < size; n += step) {
    write_bytes(tpath("cut.tok", p, sizeof p), m, n);
    tfx_tokenizer *t = NULL;
    char err[512];
    int rc = tfx_tokenizer_open(p, &t, err, sizeof err);
    if (rc == 0) {
      int32_t ids[64];
      assert_true(tfx_tokenizer_encode(t, "abc def", 7, TFX_TOKENIZE_BOS, ids, 64) >= 0);
      tfx_tokenizer_close(t);
    } else {
      assert_null(t);
      if (!err[0]) fail_msg("%s cut at %zu bytes: status %d without a message", name, n, rc);
    }
  }
  free(m);
}

/* n copies of a tokenizer file with a few random bytes changed (a fixed
 * seed): each opens and encodes, or fails with a message; never a crash */
static void mutations(const char *name, int n) {
  char p[4096], src[4096];
  size_t size = 0;
  char *m = tfx_test_read_file(tpath(name, src, sizeof src), &size);
  assert_non_null(m);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  static const char text[] = "Once upon a time, \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80 42  \n it's";
  for (int k = 0; k < n; k++) {
    char *c = malloc(size);
    memcpy(c, m, size);
    for (int j = 0; j < 4; j++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      c[(x >> 8) % size] = (char)x;
    }
    write_bytes(tpath("mut.tok", p, sizeof p), c, size);
    free(c);
    tfx_tokenizer *t = NULL;
    char err[512] = "";
    if (tfx_tokenizer_open(p, &t, err, sizeof err) == 0) {
      int32_t ids[256];
      int r = tfx_tokenizer_encode(t, text, sizeof text - 1, TFX_TOKENIZE_BOS, ids, 256);
      assert_true(r >= 0);
      /* every id in the vocabulary (a symbol the mutated vocabulary lacks, with no unknown token, is dropped:
       * hf_bytelevel.gguf's mutation 180 lost a byte's token), so the ids decode */
      for (int i = 0; i < r && i < 256; i++) assert_true(ids[i] >= 0 && ids[i] < tfx_tokenizer_vocab_size(t));
      char out[1024];
      assert_true(tfx_tokenizer_decode(t, ids, r < 256 ? r : 256, out, sizeof out) >= 0);
      tfx_tokenizer_close(t);
    } else if (!err[0]) {
      fail_msg("%s mutation %d: an error without a message", name, k);
    }
  }
  free(m);
}

static void test_errors(void **state) {
  (void)state;
  char p[4096];
  expect_error(tpath("nothing-here", p, sizeof p), TFX_ERR_OPEN, "cannot open");
  expect_error(dir, TFX_ERR_OPEN, "not a regular file");
  /* small broken files: name, bytes, length, status, a part of the message */
  static const struct {
    const char *name, *bytes;
    size_t len;
    int code;
    const char *needle;
  } bad[] = {
      {"short.bin", "\x01\x00", 2, TFX_ERR_TOKENIZER, "too short"},
      /* max_token_length 4, a piece claiming 9 bytes */
      {"long.bin",
       "\x04\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00"
       "ab",
       14, TFX_ERR_TOKENIZER, "length 9"},
      {"trunc.bin", "\x04\x00\x00\x00\x00\x00", 6, TFX_ERR_TOKENIZER, "truncated"},
      {"empty.bin", "", 0, TFX_ERR_TOKENIZER, "the file is empty"},
      {"bad.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": [1,", 38, TFX_ERR_TOKENIZER, "JSON"},
      {"wordpiece.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", 45, TFX_ERR_TOKENIZER, "WordPiece"},
      {"sparse.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999}, \"merges\": []}}", 66,
       TFX_ERR_TOKENIZER, "token ids up to 99999999 for 1 entries"},
      {"badmerge.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", 64,
       TFX_ERR_TOKENIZER, "merge 0 names a piece that is not in the vocabulary"},
      {"empty.gguf",
       "GGUF\x03\x00\x00\x00"
       "\0\0\0\0\0\0\0\0"
       "\0\0\0\0\0\0\0\0",
       24, TFX_ERR_TOKENIZER, "no vocabulary"},
      {"cut.gguf",
       "GGUF\x03\x00\x00\x00"
       "\0\0\0\0\0\0\0\0"
       "\x05\0\0\0\0\0\0\0",
       24, TFX_ERR_TOKENIZER, "truncated"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (bad[i].len > 2 && bad[i].bytes[0] == '{') assert_int_equal(strlen(bad[i].bytes), bad[i].len);
    write_bytes(tpath(bad[i].name, p, sizeof p), bad[i].bytes, bad[i].len);
    expect_error(p, bad[i].code, bad[i].needle);
  }
  /* truncations of real files fail cleanly or open (never crash) */
  truncations("spm_bpe.model", 97);
  truncations("hf_bytelevel.gguf", 401);
  truncations("hf_bytelevel.json", 997);
  mutations("spm_bpe.model", 200);
  mutations("hf_bytelevel.gguf", 200);
  mutations("hf_bytelevel.json", 200);
  mutations("hf_unigram.json", 100);
  mutations("hf_t5.json", 100);
  assert_int_equal(tfx_tokenizer_encode(NULL, "a", 1, 0, NULL, 0), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_tokenizer_open(NULL, NULL, NULL, 0), TFX_ERR_INVALID_ARGUMENT);
}

/* tfxc run -p TEXT --tokenizer PATH streams the prompt and the generated text:
 * exactly the decoding of BOS, the prompt's ids and the ids that the same run
 * prints with --print-ids (greedy, so both runs generate the same). The
 * prompt's ids are all < 512, stories260K's vocabulary (whose own tokenizer
 * is unavailable: its text in Llama 2's vocabulary reads as noise). */
static void test_cli_stream(void **state) {
  (void)state;
  if (!have_models) skip();
  char tokp[4096], ex[4096];
  tfx_test_model_path("llama2c-tokenizer.bin", tokp, sizeof tokp);
  snprintf(ex, sizeof ex, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  const char *prompt = "in the";
  char *ids_argv[] = {TFXC_PATH,     "run",         ex,   "-p", (char *)prompt,
                      "--tokenizer", tokp,          "-n", "8",  "--temperature",
                      "0",           "--print-ids", NULL};
  char *text_argv[] = {TFXC_PATH, "run",           ex,  "-p", (char *)prompt, "--tokenizer", tokp, "-n",
                       "8",       "--temperature", "0", NULL};
  char *ids_out = NULL, *text_out = NULL, *err = NULL;
  assert_int_equal(tfx_test_run(ids_argv, &ids_out, NULL), 0);
  assert_int_equal(tfx_test_run(text_argv, &text_out, &err), 0);
  assert_non_null(strstr(err, "tok/s")); /* the speed on stderr, not in the text */
  assert_non_null(strstr(err, "the tokenizer has 32000 pieces, the model's vocabulary 512"));
  tfx_tokenizer *t = open_ok(tokp);
  int32_t seq[64];
  int n = tfx_tokenizer_encode(t, prompt, strlen(prompt), TFX_TOKENIZE_BOS, seq, 64);
  assert_int_equal(n, 3); /* BOS, "in", "the" */
  int gen = 0;
  for (char *p = ids_out, *e; n < 64; p = e, gen++) {
    long v = strtol(p, &e, 10);
    if (e == p) break;
    seq[n++] = (int32_t)v;
  }
  assert_int_equal(gen, 8);
  char want[1024];
  int wl = tfx_tokenizer_decode(t, seq, n, want, sizeof want - 1);
  assert_true(wl > 0 && wl < (int)sizeof want - 1);
  want[wl++] = '\n';
  want[wl] = 0;
  if (strlen(text_out) != (size_t)wl || memcmp(text_out, want, (size_t)wl) != 0)
    fail_msg("tfxc printed \"%s\", the ids %s decode to \"%s\"", text_out, ids_out, want);
  assert_memory_equal(text_out, "in the", 6);
  tfx_tokenizer_close(t);
  free(ids_out);
  free(text_out);
  free(err);
  /* -p without a tokenizer is a usage error */
  char *bad_argv[] = {TFXC_PATH, "run", ex, "-p", "x", NULL};
  assert_int_equal(tfx_test_run(bad_argv, NULL, NULL), 2);
}

int main(void) {
  /* one test per tokenizer file, named by it, then the others */
  struct CMUnitTest tests[sizeof cases / sizeof cases[0] + 4];
  size_t n = 0;
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_llama2c_bin);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    tests[n++] = (struct CMUnitTest){cases[i].file, test_case, NULL, NULL, &cases[i]};
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_open_memory);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_errors);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_cli_stream);
  return _cmocka_run_group_tests("test_tokenizer", tests, n, setup, teardown);
}
