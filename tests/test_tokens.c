/* tests/test_tokens.c — the tokens { bos = .., eos = .., pad = .. } section:
 * the ids in the graph and in the generated header (NAME_BOS_ID ...), its
 * errors (unknown or repeated keys, ids outside the vocabulary, a model that
 * takes activations), and `tfxc run` feeding the model's BOS (or none with
 * --no-bos) and stopping at its EOS, checked against the reference
 * interpreter's logits of the same ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
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
  /* a model of activations has no token ids */
  tfx_build b;
  char *diag = NULL;
  const char *src = "const max_seq = 4\nweights \"random\"\ntokens { bos = 1 }\nparam w : f32[4, 4]\n"
                    "forward(x : f32[T, 4]) -> f32[T, 4] { return linear(x, w) }\n";
  assert_true(build(src, &b, &diag) > 0);
  assert_non_null(strstr(diag, "tk.tfx:3:1: error: a tokens { } section needs a forward that takes token ids"));
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids_in_graph_and_header),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_run_feeds_model_bos),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
