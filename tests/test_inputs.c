/* tests/test_inputs.c — a forward with several inputs (issue #14): per-row
 * ids read by an embedding (BERT's token_type_ids) and a key mask for
 * attention (`key_mask = m`, BERT's attention_mask), run by the reference
 * interpreter (tfx_interp_forward_inputs) after the -O0 and -O3 pipelines.
 * The oracle is Hugging Face `transformers` (4.44.2, eager, f32):
 * tests/hf/bert_inputs.py saves a tiny random BertModel and one padded batch
 * row, tests/hf/bert_inputs.tfx binds it; every row's last hidden state
 * within 1e-4 relative to the output's scale. Plus the errors: the
 * frontend's with their locations, the interpreter's for a wrong call, the
 * verifier's, and the backend's refusal (compiled code takes one input so
 * far). The oracle's python is TFX_HF_PYTHON (scripts/hfenv.sh). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../passes/passes.h"
#include "support/testutil.h"

#define TOL 1e-4

static char *workdir;

static int setup(void **state) {
  (void)state;
  workdir = tfx_test_tmpdir();
  if (!workdir) return -1;
  char script[1024];
  snprintf(script, sizeof script, "%s/tests/hf/bert_inputs.py", TFX_SOURCE_DIR);
  char *argv[] = {TFX_HF_PYTHON, script, workdir, NULL};
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc)
    fprintf(stderr, "%s failed (%d): is scripts/hfenv.sh run?\n%s%s\n", TFX_HF_PYTHON, rc, out ? out : "",
            err ? err : "");
  free(out);
  free(err);
  return rc ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  if (getenv("TFX_TORCH_KEEP"))
    fprintf(stderr, "kept %s\n", workdir);
  else
    tfx_test_rmdir(workdir);
  free(workdir);
  return 0;
}

static void *read_case(const char *name, size_t *size) {
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  void *p = tfx_test_read_file(path, size);
  if (!p) fail_msg("cannot read %s", path);
  return p;
}

/* Builds src (the file's text when NULL) with the oracle's weights at -Oopt. */
static void build(const char *src, int opt, tfx_build *b) {
  char tfx[1024], weights[1100];
  snprintf(tfx, sizeof tfx, "%s/tests/hf/bert_inputs.tfx", TFX_SOURCE_DIR);
  snprintf(weights, sizeof weights, "%s/model.safetensors", workdir);
  tfx_build_options o = {.weights = weights, .opt_level = opt};
  memset(b, 0, sizeof *b);
  if (tfx_build_source(tfx, src, &o, b)) fail_msg("bert_inputs.tfx does not build at -O%d", opt);
}

static void compare(const char *what, const float *got, const float *want, size_t n) {
  double scale = 1;
  for (size_t i = 0; i < n; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
  double d = tfx_test_max_abs_diff(got, want, n);
  print_message("  %-34s max |diff| %.3g (scale %.3g)\n", what, d, scale);
  if (!(d <= TOL * scale)) fail_msg("%s: max |diff| %g > %g", what, d, TOL * scale);
}

/* BertModel(input_ids, token_type_ids, attention_mask) with three padded
 * rows, at -O0 and -O3; then the same program with an f32 mask. */
static void test_bert_vs_transformers(void **state) {
  (void)state;
  size_t n_ids = 0, n_types = 0, n_mask = 0, n_exp = 0;
  int32_t *ids = read_case("ids.bin", &n_ids), *types = read_case("types.bin", &n_types);
  int32_t *mask = read_case("mask.bin", &n_mask);
  float *want = read_case("expected.bin", &n_exp);
  int T = (int)(n_ids / 4);
  assert_int_equal(n_types, n_ids);
  assert_int_equal(n_mask, n_ids);
  size_t total = n_exp / 4;
  float *got = calloc(total, sizeof *got), *fmask = calloc((size_t)T, sizeof *fmask);
  char err[512], what[64];
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    build(NULL, opt, &b);
    assert_int_equal(b.graph->n_fwd_inputs, 3);
    assert_int_equal((int)(total / (size_t)T), (int)b.graph->nodes[b.graph->output].type.dims[1]);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    const void *in[3] = {ids, types, mask};
    if (tfx_interp_forward_inputs(it, in, 3, T, got, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    snprintf(what, sizeof what, "bert -O%d ids+types+mask", opt);
    compare(what, got, want, total);
    /* the one-input call names what is missing */
    assert_int_not_equal(tfx_interp_forward(it, ids, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "takes 3 inputs"));
    assert_int_not_equal(tfx_interp_forward_inputs(it, in, 2, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "2 inputs given, the forward takes 3"));
    const void *null_in[3] = {ids, NULL, mask};
    assert_int_not_equal(tfx_interp_forward_inputs(it, null_in, 3, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "NULL input 'types'"));
    /* a token type id outside the table of 2 rows */
    int32_t bad[64];
    memcpy(bad, types, (size_t)T * 4);
    bad[2] = 2;
    const void *bad_in[3] = {ids, bad, mask};
    assert_int_not_equal(tfx_interp_forward_inputs(it, bad_in, 3, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "token id 2 at row 2 is out of range [0, 2)"));
    tfx_interp_free(it);
    /* compiled code takes one input so far: a clear refusal, no crash */
    tfx_model *m = NULL;
    assert_int_not_equal(tfx_build_jit(&b, NULL, &m, err, sizeof err), 0);
    assert_null(m);
    assert_non_null(strstr(err, "not compiled yet"));
    tfx_build_free(&b);
  }
  /* the mask as f32[T] (1.0 keeps a key, 0.0 drops it) */
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/hf/bert_inputs.tfx", TFX_SOURCE_DIR);
  char *src = tfx_test_read_file(path, NULL);
  assert_non_null(src);
  char *at = strstr(src, "mask : i32[T]");
  assert_non_null(at);
  memcpy(at, "mask : f32[T]", 13);
  at = strstr(src, "m : i32[T]"); /* the block's input */
  assert_non_null(at);
  memcpy(at, "m : f32[T]", 10);
  for (int t = 0; t < T; t++) fmask[t] = (float)mask[t];
  tfx_build b;
  build(src, 3, &b);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  const void *in[3] = {ids, types, fmask};
  if (tfx_interp_forward_inputs(it, in, 3, T, got, err, sizeof err)) fail_msg("f32 mask: %s", err);
  compare("bert -O3 f32 mask", got, want, total);
  tfx_interp_free(it);
  tfx_build_free(&b);
  free(src);
  free(got);
  free(fmask);
  free(ids);
  free(types);
  free(mask);
  free(want);
}

/* ---- frontend errors, with their locations ---- */

#define HDR                                                                                                            \
  "model m\n"                                                                                                          \
  "const dim = 8, max_seq = 16\n"                                                                                      \
  "param emb : f32[10, dim]\n"                                                                                         \
  "param w : f32[dim, dim]\n"

static void expect_error(const char *src, const char *where, const char *msg) {
  char *err = NULL;
  int rc = tfx_test_compile_text(src, &err);
  if (rc == 0 || !err || !strstr(err, where) || !strstr(err, msg))
    fail_msg("expected '%s' at %s, got (rc %d):\n%s", msg, where, rc, err ? err : "");
  free(err);
}

static void test_errors(void **state) {
  (void)state;
  /* an extra input of two dimensions */
  expect_error(HDR "forward(t : i32[T], x : f32[T, dim]) -> f32[T, dim] { return embedding(emb, t) }\n", ":5:25:",
               "forward input 'x' must be i32[T] (per-row ids, a key mask) or f32[T] (a key mask), got f32[T, 8]");
  /* nine inputs */
  expect_error(HDR "forward(a : i32[T], b : i32[T], c : i32[T], d : i32[T], e : i32[T], f : i32[T], g : i32[T], "
                   "h : i32[T], i : i32[T]) -> f32[T, dim] { return embedding(emb, a) }\n",
               ":5:105:", "forward takes at most 8 inputs, got 9");
  /* a key mask on a causal attention */
  expect_error(HDR "forward(t : i32[T], m : i32[T]) -> f32[T, dim] {\n"
                   "  x = embedding(emb, t)\n"
                   "  return attention(x, w, w, w, w, heads = 2, mask = causal, key_mask = m)\n}\n",
               ":7:72:", "attention: key_mask needs mask = none");
  /* a key mask whose length is not the keys' */
  expect_error(HDR "param km : f32[3]\n"
                   "forward(t : i32[T]) -> f32[T, dim] {\n"
                   "  x = embedding(emb, t)\n"
                   "  return attention(x, w, w, w, w, heads = 2, mask = none, key_mask = km)\n}\n",
               ":8:70:", "attention: key_mask is f32[3], expected f32[T] or i32[T]");
  expect_error(HDR "forward(t : i32[T], m : i32[T]) -> f32[T, dim] {\n"
                   "  x = embedding(emb, t)\n"
                   "  return attend(x, x, x, heads = 2, mask = causal, key_mask = m)\n}\n",
               ":7:63:", "attend: key_mask needs mask = none");
  /* an extra input used where a tensor of rows is expected */
  expect_error(HDR "forward(t : i32[T], m : f32[T]) -> f32[T, dim] {\n"
                   "  return embedding(emb, t) + m\n}\n",
               ":6:", "add: shapes");
}

/* The verifier: an INPUT node outside the graph's input list, a bad extra
 * input type. */
static void test_verify(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("v", 8);
  int t = tfx_graph_add_input(g, "t", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T}));
  int m = tfx_graph_add_input(g, "m", tfx_type_make(TFX_DT_F32, 1, (int64_t[]){TFX_DIM_T}));
  int e = tfx_graph_add_param(g, "e", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){10, 4}));
  tfx_node n = tfx_node_proto(TFX_OP_EMBEDDING, 2, (int[]){e, t});
  char err[256];
  g->output = tfx_graph_add(g, &n, err, sizeof err);
  assert_true(g->output > m);
  assert_int_equal(g->n_fwd_inputs, 2);
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0);
  g->n_fwd_inputs = 1; /* m is no longer listed */
  assert_int_not_equal(tfx_verify(g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "not in the graph's input list"));
  g->n_fwd_inputs = 2;
  g->nodes[m].type = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 3});
  assert_int_not_equal(tfx_verify(g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "an extra input must be i32[T] or f32[T]"));
  g->nodes[m].type = tfx_type_make(TFX_DT_F32, 1, (int64_t[]){TFX_DIM_T});
  /* dce keeps an unused extra input (the caller passes it) */
  tfx_pass_options o;
  tfx_pass_options_init(&o, 2);
  o.passes = "dce";
  assert_int_equal(tfx_run_passes(g, &o, err, sizeof err), 0);
  assert_int_equal(g->n_fwd_inputs, 2);
  assert_int_equal(g->nodes[g->fwd_inputs[1]].op, TFX_OP_INPUT);
  assert_string_equal(g->nodes[g->fwd_inputs[1]].name, "m");
  tfx_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_verify),
      cmocka_unit_test(test_bert_vs_transformers),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
