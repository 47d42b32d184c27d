/* tests/test_tokens.c — the tokens { bos = .., eos = .., pad = .. } section:
 * the ids in the graph and in the generated header (NAME_BOS_ID ...), its
 * errors (unknown or repeated keys, ids outside the vocabulary, a model that
 * takes activations), and `tfxc run` feeding the model's BOS (or none with
 * --no-bos) and stopping at its EOS, checked against the reference
 * interpreter's logits of the same ids; the ids and a tokenizer embedded in
 * a compiled .so (tfxc --tokenizer, tfx_model_info, tfx_model_tokenizer,
 * `tfxc run model.so -p TEXT`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../include/tfx/jit.h"
#include "../include/tfx/tokenizer.h"
#include "support/testutil.h"

#define VOCAB 16

static const char *model_src(const char *tokens) {
  static char buf[2048];
  snprintf(buf, sizeof buf,
           "model tk\n"
           "const dim = 8, vocab = %d, max_seq = 16\n"
           "weights \"random:7\"\n"
           "%s\n"
           "param emb : f32[vocab, dim]\n"
           "param g : f32[dim]\n"
           "param w : f32[dim, dim]\n"
           "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
           "  x = embedding(emb, tokens)\n"
           "  x = x + attention(rmsnorm(x, g), w, w, w, w, heads = 2, mask = causal)\n"
           "  return linear(x, emb)\n"
           "}\n",
           VOCAB, tokens);
  return buf;
}

/* Builds src; returns the number of errors, their text in *diag (malloc'd). */
static int build(const char *src, tfx_build *b, char **diag) {
  char *text = NULL;
  size_t len = 0;
  FILE *d = open_memstream(&text, &len);
  tfx_build_options bo = {.opt_level = 0, .diag = d};
  int rc = tfx_build_source("tk.tfx", src, &bo, b);
  fclose(d);
  if (diag)
    *diag = text;
  else
    free(text);
  return rc;
}

static void test_ids_in_graph_and_header(void **state) {
  (void)state;
  tfx_build b;
  char *diag;
  assert_int_equal(build(model_src("tokens { bos = 3, eos = 2 * 2,\n  pad = 0 }"), &b, &diag), 0);
  free(diag);
  assert_int_equal(b.graph->bos_id, 3);
  assert_int_equal(b.graph->eos_id, 4);
  assert_int_equal(b.graph->pad_id, 0);
  char *h = NULL;
  size_t hl = 0;
  FILE *f = open_memstream(&h, &hl);
  assert_int_equal(tfx_write_header(b.graph, "tk.tfx", f), 0);
  fclose(f);
  assert_non_null(strstr(h, "#define TK_BOS_ID 3\n"));
  assert_non_null(strstr(h, "#define TK_EOS_ID 4\n"));
  assert_non_null(strstr(h, "#define TK_PAD_ID 0\n"));
  free(h);
  tfx_build_free(&b);

  /* one per line, and none at all: -1 */
  assert_int_equal(build(model_src("tokens {\n  eos = 5\n}"), &b, NULL), 0);
  assert_int_equal(b.graph->bos_id, -1);
  assert_int_equal(b.graph->eos_id, 5);
  assert_int_equal(b.graph->pad_id, -1);
  tfx_build_free(&b);
  assert_int_equal(build(model_src(""), &b, NULL), 0);
  assert_int_equal(b.graph->bos_id, -1);
  f = open_memstream(&h, &hl);
  assert_int_equal(tfx_write_header(b.graph, "tk.tfx", f), 0);
  fclose(f);
  assert_non_null(strstr(h, "#define TK_BOS_ID -1\n"));
  free(h);
  tfx_build_free(&b);
}

static void expect_error(const char *tokens, const char *message) {
  tfx_build b;
  char *diag = NULL;
  int n = build(model_src(tokens), &b, &diag);
  if (n == 0 || !strstr(diag, message)) fprintf(stderr, "%s\n-> %s\n(expected %s)\n", tokens, diag, message);
  assert_true(n > 0);
  assert_non_null(strstr(diag, message));
  free(diag);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("tokens { bos = 1, unk = 2 }", "tk.tfx:4:19: error: unknown tokens key 'unk' (known: bos, eos, pad)");
  expect_error("tokens { bos = 1, bos = 2 }", "tk.tfx:4:19: error: tokens key 'bos' is set twice");
  expect_error("tokens { bos = -1 }", "tk.tfx:4:16: error:");
  expect_error("tokens { eos = 16 }", "tk.tfx:4:16: error: eos = 16 is not below the vocabulary size 16");
  expect_error("tokens { bos = 1.5 }", "tk.tfx:4:16: error:");
  expect_error("tokens { bos = 1 }\ntokens { eos = 2 }", "tk.tfx:5:1: error: duplicate 'tokens' section");
  expect_error("tokenz { bos = 1 }", "tk.tfx:4:1: error: unknown section 'tokenz'");
  expect_error("tokenizer \"\"", "tk.tfx:4:11: error: empty tokenizer path");
  expect_error("tokenizer \"a.bin\"\ntokenizer \"b.bin\"", "tk.tfx:5:1: error: duplicate 'tokenizer' statement");
  expect_error("tokeniser \"a.bin\"", "tk.tfx:4:1: error: unknown statement 'tokeniser' (expected tokenizer \"FILE\")");
  /* a model of activations has no token ids */
  tfx_build b;
  char *diag = NULL;
  const char *src = "const max_seq = 4\nweights \"random\"\ntokens { bos = 1 }\nparam w : f32[4, 4]\n"
                    "forward(x : f32[T, 4]) -> f32[T, 4] { return linear(x, w) }\n";
  assert_true(build(src, &b, &diag) > 0);
  assert_non_null(strstr(diag, "tk.tfx:3:1: error: a tokens { } section needs a forward that takes token ids"));
  free(diag);
  const char *src2 = "const max_seq = 4\nweights \"random\"\ntokenizer \"t.bin\"\nparam w : f32[4, 4]\n"
                     "forward(x : f32[T, 4]) -> f32[T, 4] { return linear(x, w) }\n";
  assert_true(build(src2, &b, &diag) > 0);
  assert_non_null(strstr(diag, "tk.tfx:3:1: error: a tokenizer needs a forward that takes token ids"));
  free(diag);
}

/* The interpreter's logits of ids (every row). */
static float *reference(const char *src, const int32_t *ids, int n) {
  tfx_build b;
  assert_int_equal(build(src, &b, NULL), 0);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  assert_non_null(it);
  float *out = malloc((size_t)n * VOCAB * sizeof *out);
  char err[256];
  assert_int_equal(tfx_interp_forward(it, ids, n, out, err, sizeof err), 0);
  tfx_interp_free(it);
  tfx_build_free(&b);
  return out;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* tfxc run --eval-ids FILE --dump-logits OUT [extra]: OUT's rows against the
 * interpreter's rows for expect_ids. */
static void check_eval(const char *dir, const char *src, const char *extra, const int32_t *expect_ids, int n) {
  char tfx[512], ids[512], out[512];
  snprintf(tfx, sizeof tfx, "%s/tk.tfx", dir);
  snprintf(ids, sizeof ids, "%s/ids.txt", dir);
  snprintf(out, sizeof out, "%s/logits.bin", dir);
  write_text(tfx, src);
  write_text(ids, "5 6 7");
  char *so = NULL, *se = NULL;
  char *argv[] = {TFXC_PATH, "run", tfx, "-O0", "--eval-ids", ids, "--dump-logits", out, (char *)extra, NULL};
  int rc = tfx_test_run(argv, &so, &se);
  if (rc) fprintf(stderr, "%s%s", so, se);
  assert_int_equal(rc, 0);
  free(so);
  free(se);
  size_t size = 0;
  float *got = (float *)tfx_test_read_file(out, &size);
  assert_non_null(got);
  assert_int_equal(size, (size_t)n * VOCAB * sizeof(float));
  float *want = reference(src, expect_ids, n);
  double d = tfx_test_max_abs_diff(got, want, (size_t)n * VOCAB);
  if (d > 1e-4) fprintf(stderr, "max |diff| %g\n", d);
  assert_true(d <= 1e-4);
  free(got);
  free(want);
}

static void test_run_feeds_model_bos(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  const char *with = model_src("tokens { bos = 3, eos = 4 }");
  check_eval(dir, with, NULL, (const int32_t[]){3, 5, 6, 7}, 4);
  check_eval(dir, with, "--no-bos", (const int32_t[]){5, 6, 7}, 3);
  check_eval(dir, model_src(""), NULL, (const int32_t[]){1, 5, 6, 7}, 4); /* no tokens { }: id 1 */

  /* generation stops at the model's EOS: make EOS the greedy first id */
  char tfx[512];
  snprintf(tfx, sizeof tfx, "%s/tk.tfx", dir);
  write_text(tfx, model_src("tokens { bos = 3, eos = 0 }"));
  char *so = NULL, *se = NULL;
  char *argv[] = {TFXC_PATH, "run", tfx, "-O0", "-n", "4", "--temperature", "0", "--print-ids", NULL};
  assert_int_equal(tfx_test_run(argv, &so, &se), 0);
  assert_true(so[0] >= '1' && so[0] <= '9'); /* something other than 0 was generated */
  int first = atoi(so);
  free(so);
  free(se);
  char tokens[64];
  snprintf(tokens, sizeof tokens, "tokens { bos = 3, eos = %d }", first);
  write_text(tfx, model_src(tokens));
  assert_int_equal(tfx_test_run(argv, &so, &se), 0);
  assert_string_equal(so, "\n"); /* nothing generated before EOS */
  free(so);
  free(se);

  /* --no-bos without a prompt has nothing to feed */
  char *argv2[] = {TFXC_PATH, "run", tfx, "-O0", "--no-bos", NULL};
  assert_int_equal(tfx_test_run(argv2, &so, &se), 2);
  assert_non_null(strstr(se, "--no-bos"));
  free(so);
  free(se);
  tfx_test_rmdir(dir);
  free(dir);
}

/* A llama2.c tokenizer.bin of n pieces: <unk>, <s>, </s>, then the
 * letters and merges below (scores favour longer pieces). */
static void write_tokenizer_bin(const char *path, int n) {
  static const char *const pieces[] = {"<unk>", "<s>", "</s>", " ",  "a",   "b",   "c",    " a",
                                       " b",    " c",  "ab",   "bc", " ab", "abc", " abc", "cab"};
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  int32_t max_len = 5;
  fwrite(&max_len, 4, 1, f);
  for (int i = 0; i < n; i++) {
    float score = (float)strlen(pieces[i]) - (float)i * 0.01f;
    int32_t len = (int32_t)strlen(pieces[i]);
    fwrite(&score, 4, 1, f);
    fwrite(&len, 4, 1, f);
    fwrite(pieces[i], 1, (size_t)len, f);
  }
  fclose(f);
}

/* tfxc ARGS...: its exit status, stdout in *out (malloc'd), stderr freed
 * after being printed when the status is not want. */
static int tfxc(int want, char **out, char *const *args) {
  char *argv[24] = {TFXC_PATH};
  int n = 1;
  for (; args[n - 1] && n < 23; n++) argv[n] = args[n - 1];
  argv[n] = NULL;
  char *so = NULL, *se = NULL;
  int rc = tfx_test_run(argv, &so, &se);
  if (rc != want) fprintf(stderr, "tfxc exit %d:\n%s%s", rc, so, se);
  if (out) *out = want == 0 ? so : se;
  if (!out || want != 0) free(so);
  if (!out || want == 0) free(se);
  return rc;
}

static void test_embedded_tokenizer(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char tfx[512], so[512], plain[512], tok[512], small[512];
  snprintf(tfx, sizeof tfx, "%s/tk.tfx", dir);
  snprintf(so, sizeof so, "%s/tk.so", dir);
  snprintf(plain, sizeof plain, "%s/plain.so", dir);
  snprintf(tok, sizeof tok, "%s/tok.bin", dir);
  snprintf(small, sizeof small, "%s/small.bin", dir);
  write_tokenizer_bin(tok, VOCAB);
  write_tokenizer_bin(small, 4);
  write_text(tfx, model_src("tokens { bos = 1, eos = 2 }"));
  assert_int_equal(tfxc(0, NULL, (char *[]){tfx, "-O0", "-o", so, "--tokenizer", tok, NULL}), 0);
  assert_int_equal(tfxc(0, NULL, (char *[]){tfx, "-O0", "-o", plain, NULL}), 0);

  /* the descriptor's ids and bytes, and the tokenizer opened from them */
  tfx_model *m = NULL;
  char err[512];
  assert_int_equal(tfx_model_open_flags(so, TFX_OPEN_VERIFY, &m, err, sizeof err), TFX_OK);
  struct tfx_model_info info = {.struct_size = sizeof info};
  assert_int_equal(tfx_model_info(m, &info), TFX_OK);
  assert_int_equal(info.bos_id, 1);
  assert_int_equal(info.eos_id, 2);
  assert_int_equal(info.pad_id, -1);
  size_t tok_size = 0;
  char *tok_bytes = tfx_test_read_file(tok, &tok_size);
  assert_int_equal(info.tokenizer_bytes, tok_size);
  assert_memory_equal(tfx_model_descriptor(m)->tokenizer, tok_bytes, tok_size);
  free(tok_bytes);
  tfx_tokenizer *embedded = NULL, *file = NULL;
  assert_int_equal(tfx_model_tokenizer(m, &embedded, err, sizeof err), TFX_OK);
  tfx_model_close(m); /* the tokenizer does not depend on the model */
  assert_int_equal(tfx_tokenizer_open(tok, &file, err, sizeof err), TFX_OK);
  assert_non_null(embedded);
  assert_int_equal(tfx_tokenizer_vocab_size(embedded), VOCAB);
  int32_t a[16], b[16];
  int na = tfx_tokenizer_encode(embedded, "abc cab ab", 10, TFX_TOKENIZE_BOS, a, 16);
  int nb = tfx_tokenizer_encode(file, "abc cab ab", 10, TFX_TOKENIZE_BOS, b, 16);
  assert_true(na > 1 && na <= 16);
  assert_int_equal(na, nb);
  assert_memory_equal(a, b, (size_t)na * sizeof *a);
  tfx_tokenizer_close(embedded);
  tfx_tokenizer_close(file);

  /* a model without one: no tokenizer, no ids */
  assert_int_equal(tfx_model_open_ex(plain, &m, err, sizeof err), TFX_OK);
  embedded = (tfx_tokenizer *)1;
  assert_int_equal(tfx_model_tokenizer(m, &embedded, err, sizeof err), TFX_OK);
  assert_null(embedded);
  assert_int_equal(tfx_model_info(m, &info), TFX_OK);
  assert_int_equal(info.tokenizer_bytes, 0);
  assert_int_equal(info.bos_id, 1);
  tfx_model_close(m);

  /* tfxc run -p: the embedded tokenizer encodes and decodes as the file does */
  char *with_file = NULL, *embedded_out = NULL, *ids = NULL, *ids_file = NULL;
  assert_int_equal(tfxc(0, &embedded_out, (char *[]){"run", so, "-p", "ab c", "-n", "6", "--temperature", "0", NULL}),
                   0);
  assert_int_equal(
      tfxc(0, &with_file,
           (char *[]){"run", plain, "--tokenizer", tok, "-p", "ab c", "-n", "6", "--temperature", "0", NULL}),
      0);
  assert_string_equal(embedded_out, with_file);
  assert_int_equal(
      tfxc(0, &ids, (char *[]){"run", so, "-p", "ab c", "-n", "6", "--temperature", "0", "--print-ids", NULL}), 0);
  assert_int_equal(tfxc(0, &ids_file,
                        (char *[]){"run", plain, "--tokenizer", tok, "-p", "ab c", "-n", "6", "--temperature", "0",
                                   "--print-ids", NULL}),
                   0);
  assert_string_equal(ids, ids_file);
  assert_true(strlen(ids) > 1);
  free(with_file), free(embedded_out), free(ids), free(ids_file);

  /* the source's tokenizer statement (beside the .tfx): the same, with no option */
  char stmt_so[512];
  snprintf(stmt_so, sizeof stmt_so, "%s/stmt.so", dir);
  write_text(tfx, model_src("tokenizer \"tok.bin\"\ntokens { bos = 1, eos = 2 }"));
  assert_int_equal(tfxc(0, NULL, (char *[]){tfx, "-O0", "-o", stmt_so, NULL}), 0);
  assert_int_equal(tfx_model_open_ex(stmt_so, &m, err, sizeof err), TFX_OK);
  assert_int_equal(tfx_model_info(m, &info), TFX_OK);
  assert_int_equal(info.tokenizer_bytes, tok_size);
  tfx_model_close(m);
  char *from_tfx = NULL;
  assert_int_equal(
      tfxc(0, &embedded_out, (char *[]){"run", stmt_so, "-p", "ab c", "-n", "6", "--temperature", "0", NULL}), 0);
  assert_int_equal(
      tfxc(0, &from_tfx, (char *[]){"run", tfx, "-O0", "-p", "ab c", "-n", "6", "--temperature", "0", NULL}), 0);
  assert_string_equal(embedded_out, from_tfx);
  free(embedded_out), free(from_tfx);
  /* the JIT API puts it in the model too */
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = 0;
  assert_int_equal(tfx_jit_compile_file(tfx, &co, &m), TFX_OK);
  assert_int_equal(tfx_model_info(m, &info), TFX_OK);
  assert_int_equal(info.tokenizer_bytes, tok_size);
  assert_int_equal(tfx_model_tokenizer(m, &embedded, err, sizeof err), TFX_OK);
  assert_non_null(embedded);
  assert_int_equal(tfx_tokenizer_vocab_size(embedded), VOCAB);
  tfx_tokenizer_close(embedded);
  tfx_model_close(m);

  /* errors */
  char *e = NULL;
  write_text(tfx, model_src("tokenizer \"missing.bin\""));
  assert_int_equal(tfxc(1, &e, (char *[]){tfx, "-O0", "-o", so, NULL}), 1);
  assert_non_null(strstr(e, "tokenizer "));
  assert_non_null(strstr(e, "missing.bin: cannot open"));
  free(e);
  char *diag_text = NULL;
  size_t diag_len = 0;
  co.diagnostics = open_memstream(&diag_text, &diag_len);
  assert_int_equal(tfx_jit_compile_file(tfx, &co, &m), TFX_ERR_COMPILE);
  fclose(co.diagnostics);
  assert_non_null(strstr(diag_text, "missing.bin: cannot open"));
  free(diag_text);
  assert_int_equal(tfxc(0, NULL, (char *[]){tfx, "-O0", "--stats", NULL}), 0); /* not read without an output */
  write_text(tfx, model_src(""));
  assert_int_equal(tfxc(2, &e, (char *[]){"run", tfx, "-O0", "-p", "ab", NULL}), 2);
  assert_non_null(strstr(e, "has no tokenizer statement"));
  free(e);
  assert_int_equal(tfxc(2, &e, (char *[]){"run", plain, "-p", "ab", NULL}), 2);
  assert_non_null(strstr(e, "embeds no tokenizer"));
  free(e);
  write_text(tfx, model_src("tokens { bos = 1, eos = 9 }"));
  assert_int_equal(tfxc(1, &e, (char *[]){tfx, "-O0", "-o", so, "--tokenizer", small, NULL}), 1);
  assert_non_null(strstr(e, "tokens { eos = 9 } is not one of its 4 ids"));
  free(e);
  assert_int_equal(tfxc(1, &e, (char *[]){tfx, "-O0", "-o", so, "--tokenizer", dir, NULL}), 1);
  assert_non_null(strstr(e, "--tokenizer"));
  free(e);
  assert_int_equal(tfxc(2, &e, (char *[]){tfx, "--stats", "--tokenizer", tok, NULL}), 2);
  assert_non_null(strstr(e, "applies to -o or -c"));
  free(e);
  assert_int_equal(tfxc(2, &e, (char *[]){tfx, "-o", tok, "--tokenizer", tok, NULL}), 2);
  free(e);
  tfx_test_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids_in_graph_and_header),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_run_feeds_model_bos),
      cmocka_unit_test(test_embedded_tokenizer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
