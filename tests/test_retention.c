/* tests/test_retention.c — the ops that keep a recurrent state instead of a
 * KV cache (retention, infini_attention) and RetNet's groupnorm: the JIT
 * against the reference interpreter (ir/recurrent.c) at -O0 and -O3, through
 * one session with calls of several sizes (a prompt longer than a chunk of
 * the chunkwise form, decode steps, chunks crossing chunk and segment
 * boundaries); the forms agreeing with each other (one prompt == token by
 * token == uneven chunks); a reset session starting from an empty state;
 * the state's bytes in the descriptor and `--stats`; the frontend's
 * diagnostics. The comparison with PyTorch models written from the papers is
 * test_torch_retention (tests/torch/retnet.py, infini.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../passes/passes.h"
#include "support/jit_harness.h"
#include "support/testutil.h"
#include "tfx/jit.h"
#include "tfx/tfx.h"

static int linear(tfx_tg *t, int x, int64_t out, int64_t in, const char *wname, float scale) {
  return tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, wname, out, in, scale));
}

/* retention (or infini_attention when segment > 0; retention with gamma = g,
 * g : f32[H] a param of decays in 0.75 .. 0.95, when segment < 0) over
 * linears of x f32[T, 24] */
static tfx_tg *state_graph(int H, int dk, int dv, int segment, int64_t max_seq, uint64_t seed) {
  const int64_t dim = 24;
  tfx_tg *t = tfx_tg_new(segment > 0 ? "infini" : "retention", max_seq, seed);
  int x = tfx_tg_input_f32(t, dim);
  int q = linear(t, x, (int64_t)H * dk, dim, "wq", 0.5f);
  int k = linear(t, x, (int64_t)H * dk, dim, "wk", 0.5f);
  int v = linear(t, x, (int64_t)H * dv, dim, "wv", 0.5f);
  tfx_node a;
  if (segment < 0) {
    a = tfx_node_proto(TFX_OP_RETENTION, 4, (int[]){q, k, v, tfx_tg_param1(t, "gamma", H, 0.1f, 0.85f)});
  } else if (segment) {
    a = tfx_node_proto(TFX_OP_INFINI_ATTENTION, 4, (int[]){q, k, v, tfx_tg_param1(t, "beta", H, 2.0f, 0.0f)});
    a.segment = segment;
  } else {
    a = tfx_node_proto(TFX_OP_RETENTION, 3, (int[]){q, k, v});
  }
  a.heads = H;
  a.head_dim = dk;
  a.v_dim = dv;
  t->g->output = tfx_tg_add(t, &a);
  assert_true(t->g->output >= 0);
  return t;
}

static const tfx_tg_run_opts k_opts = {.in_scale = 1.0f};

/* a prompt of 70 rows (two chunks of the chunkwise form), decode steps, a
 * chunk of 3, one of 130 (three chunks) */
static void test_retention_vs_interpreter(void **state) {
  (void)state;
  static const int ns[] = {70, 1, 1, 3, 130, 1};
  static const int shapes[][3] = {{4, 16, 32}, {2, 8, 8}, {3, 5, 7}, {1, 20, 40}};
  for (int i = 0; i < 4; i++) {
    tfx_tg *t = state_graph(shapes[i][0], shapes[i][1], shapes[i][2], 0, 256, 100 + (uint64_t)i);
    char what[64];
    snprintf(what, sizeof what, "retention H%d dk%d dv%d", shapes[i][0], shapes[i][1], shapes[i][2]);
    tfx_tg_check_levels(t, ns, 6, &k_opts, what);
    tfx_tg_free(t);
  }
  /* gamma = g given in the program (a param f32[H]) instead of 1 - 2^(-5-h) */
  for (int i = 0; i < 2; i++) {
    tfx_tg *t = state_graph(shapes[i][0], shapes[i][1], shapes[i][2], -1, 256, 200 + (uint64_t)i);
    char what[64];
    snprintf(what, sizeof what, "retention gamma = g H%d dk%d dv%d", shapes[i][0], shapes[i][1], shapes[i][2]);
    tfx_tg_check_levels(t, ns, 6, &k_opts, what);
    tfx_tg_free(t);
  }
}

/* segments of 8 and 5 rows: calls starting mid-segment, a call spanning
 * several segments, decode steps crossing a segment's end */
static void test_infini_vs_interpreter(void **state) {
  (void)state;
  static const int ns[] = {5, 1, 1, 1, 13, 1, 20, 2, 9};
  static const int shapes[][4] = {{4, 16, 16, 8}, {2, 8, 12, 5}, {3, 7, 5, 1}};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = state_graph(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], 64, 200 + (uint64_t)i);
    char what[64];
    snprintf(what, sizeof what, "infini H%d d%d dv%d N%d", shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
    tfx_tg_check_levels(t, ns, 9, &k_opts, what);
    tfx_tg_free(t);
  }
}

static void test_groupnorm_vs_interpreter(void **state) {
  (void)state;
  static const int ns[] = {7, 1, 16};
  static const int shapes[][2] = {{4, 128}, {3, 21}, {1, 24}, {6, 24}};
  for (int i = 0; i < 4; i++) {
    tfx_tg *t = tfx_tg_new("groupnorm", 32, 300 + (uint64_t)i);
    int C = shapes[i][1];
    int x = tfx_tg_input_f32(t, 24);
    int y = linear(t, x, C, 24, "w", 0.5f);
    tfx_node gn = tfx_node_proto(
        TFX_OP_GROUPNORM, 3, (int[]){y, tfx_tg_param1(t, "g", C, 0.2f, 1.0f), tfx_tg_param1(t, "b", C, 0.1f, 0.0f)});
    gn.heads = shapes[i][0];
    gn.eps = 1e-5;
    t->g->output = tfx_tg_add(t, &gn);
    assert_true(t->g->output >= 0);
    char what[64];
    snprintf(what, sizeof what, "groupnorm G%d C%d", shapes[i][0], C);
    tfx_tg_check_levels(t, ns, 3, &k_opts, what);
    tfx_tg_free(t);
  }
}

/* ---- the compiled model: forms, reset, sizes ---- */

static float *run_calls(tfx_session *s, const float *x, int D, const int *ns, int n_calls, int O) {
  int total = 0;
  for (int c = 0; c < n_calls; c++) total += ns[c];
  float *out = calloc((size_t)total * O, sizeof *out);
  assert_non_null(out);
  tfx_session_reset(s);
  for (int c = 0, row = 0; c < n_calls; row += ns[c++])
    assert_int_equal(tfx_forward_f32(s, x + (size_t)row * D, ns[c], out + (size_t)row * O), 0);
  return out;
}

static void check_same(const float *a, const float *b, size_t n, const char *what) {
  double worst = 0, scale = 1;
  for (size_t i = 0; i < n; i++) {
    double d = a[i] - b[i];
    if (d < 0) d = -d;
    if (d > worst) worst = d;
    if (a[i] > scale) scale = a[i];
    if (-a[i] > scale) scale = -a[i];
  }
  print_message("%s: max |diff| %.3g\n", what, worst);
  if (!(worst <= 1e-5 * scale)) fail_msg("%s: max |diff| %g", what, worst);
}

/* parallel (one prompt of 60 rows, one chunk) == chunkwise (a prompt of 150
 * rows; chunks of 1..64) == recurrent (token by token), and a reset session
 * (twice the same run) starts from an empty state */
static void forms_agree(int segment) {
  const int D = 24, T = 150;
  tfx_tg *t = state_graph(4, 16, 32, segment, 256, 77);
  char err[256];
  if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("plan: %s", err);
  int O = (int)tfx_node_cols(&t->g->nodes[t->g->output]);
  float *x = malloc((size_t)T * D * sizeof *x);
  assert_non_null(x);
  for (int i = 0; i < T * D; i++) x[i] = tfx_tg_rand(t);
  for (int lv = 0; lv < 2; lv++) {
    tfx_model *m = tfx_tg_jit_model(t, lv ? 3 : 0);
    assert_non_null(m);
    const tfx_model_desc *d = tfx_model_descriptor(m);
    assert_int_equal(d->has_kv_cache, 1);
    assert_int_equal((int64_t)d->kv_bytes, tfx_node_kv_bytes(&t->g->nodes[t->g->output], 256));
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), 0);
    int one[1] = {T}, *tok = malloc(T * sizeof *tok);
    assert_non_null(tok);
    for (int i = 0; i < T; i++) tok[i] = 1;
    static const int uneven[] = {60, 1, 64, 2, 17, 6};
    float *whole = run_calls(s, x, D, one, 1, O);
    float *again = run_calls(s, x, D, one, 1, O);
    float *steps = run_calls(s, x, D, tok, T, O);
    float *chunks = run_calls(s, x, D, uneven, 6, O);
    float *prefix = run_calls(s, x, D, (int[]){60}, 1, O);
    assert_memory_equal(whole, again, (size_t)T * O * sizeof(float)); /* reset clears the state */
    const char *kind = segment > 0 ? "infini" : segment ? "retention gamma = g" : "retention";
    char what[3][80];
    snprintf(what[0], sizeof what[0], "%s: %s", kind,
             segment > 0 ? "prompt vs token by token" : "chunkwise vs recurrent");
    snprintf(what[1], sizeof what[1], "%s: %s", kind, segment > 0 ? "prompt vs chunks" : "chunkwise vs uneven chunks");
    snprintf(what[2], sizeof what[2], "%s: %s", kind, segment > 0 ? "60-row prompt" : "parallel vs chunkwise");
    check_same(whole, steps, (size_t)T * O, what[0]);
    check_same(whole, chunks, (size_t)T * O, what[1]);
    check_same(prefix, whole, (size_t)60 * O, what[2]);
    free(whole), free(again), free(steps), free(chunks), free(prefix), free(tok);
    tfx_session_free(s);
    tfx_model_close(m);
  }
  free(x);
  tfx_tg_free(t);
}

static void test_retention_forms_agree(void **state) {
  (void)state;
  forms_agree(0);
  forms_agree(-1); /* gamma = g */
}

static void test_infini_forms_agree(void **state) {
  (void)state;
  forms_agree(16);
}

/* The examples through the token API: a prompt's last row from the last-row
 * entry (tfx_forward, the nodes after the last token mixer for one row) equals
 * the full forward's; a reset session gives the same rows again; generation
 * after a prompt (decode steps) matches a prompt of the same tokens. */
static void example_entries(const char *path) {
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = 3;
  co.weights = "random:7";
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_file(path, &co, &m), TFX_OK);
  int V = tfx_model_descriptor(m)->output_width;
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), 0);
  enum { N = 90 };
  int32_t tok[N];
  for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 11) % V);
  float *full = malloc((size_t)N * V * sizeof *full), *last = malloc((size_t)V * sizeof *last);
  float *steps = malloc((size_t)N * V * sizeof *steps);
  assert_non_null(full), assert_non_null(last), assert_non_null(steps);
  assert_int_equal(tfx_forward_ex(s, tok, N, full, 0), 0);
  tfx_session_reset(s);
  assert_int_equal(tfx_forward(s, tok, N, last), 0);
  check_same(full + (size_t)(N - 1) * V, last, (size_t)V, "last-row entry vs the full forward");
  tfx_session_reset(s);
  assert_int_equal(tfx_forward_ex(s, tok, 20, steps, 0), 0);
  for (int i = 20; i < N; i++) assert_int_equal(tfx_forward_ex(s, tok + i, 1, steps + (size_t)i * V, 0), 0);
  check_same(full, steps, (size_t)N * V, "prompt of 20 + decode vs one prompt");
  free(full), free(last), free(steps);
  tfx_session_free(s);
  tfx_model_close(m);
}

static void test_examples_entries(void **state) {
  (void)state;
  example_entries(TFX_SOURCE_DIR "/examples/retnet/retnet.tfx");
  example_entries(TFX_SOURCE_DIR "/examples/infini/infini.tfx");
}

/* ---- the language ---- */

static void test_stats_show_the_state(void **state) {
  (void)state;
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(
      (char *[]){TFXC_PATH, TFX_SOURCE_DIR "/examples/retnet/retnet.tfx", "--weights", "random", "--stats", NULL}, &out,
      &err);
  assert_int_equal(rc, 0);
  /* 2 layers x 4 heads x 16 x 32 floats; a KV cache: 256 positions x 4 heads x (16 + 32) floats x 2 layers */
  assert_non_null(strstr(out, "recurrent state:   16384 bytes in 2 retention/infini_attention nodes (a KV cache of "
                              "their heads at max_seq: 393216 bytes)"));
  assert_non_null(strstr(out, "kv cache:          16384 bytes"));
  free(out), free(err);
  rc = tfx_test_run(
      (char *[]){TFXC_PATH, TFX_SOURCE_DIR "/examples/infini/infini.tfx", "--weights", "random", "--stats", NULL}, &out,
      &err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "recurrent state:"));
  free(out), free(err);
}

static void expect_error(const char *src, const char *msg) {
  char *err = NULL;
  int rc = tfx_test_compile_text(src, &err);
  if (rc == 0 || !strstr(err, msg)) fail_msg("expected '%s', got rc %d: %s", msg, rc, err);
  free(err);
}

#define PRELUDE                                                                                                        \
  "model m\nconst max_seq = 16\nparam wq : f32[12, 8]\nparam wv : f32[16, 8]\nparam beta : f32[3]\n"                   \
  "param g : f32[12]\nparam b : f32[12]\n"

static void test_frontend_errors(void **state) {
  (void)state;
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 16] {\n  q = linear(x, wq)\n"
                       "  return retention(q, q, linear(x, wv), heads = 5)\n}\n",
               ":10:10: error: retention: heads = 5 does not divide the columns of q f32[T, 12]");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 16] {\n  q = linear(x, wq)\n"
                       "  return retention(q, q, linear(x, wv))\n}\n",
               "error: missing keyword 'heads' of retention");
  /* gamma = g: one decay per head */
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 16] {\n  q = linear(x, wq)\n"
                       "  return retention(q, q, linear(x, wv), heads = 4, gamma = beta)\n}\n",
               ":10:60: error: retention: gamma is f32[3], expected f32[4] (one decay per head)");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 16] {\n  q = linear(x, wq)\n"
                       "  return retention(q, linear(x, wv), linear(x, wv), heads = 4)\n}\n",
               "error: retention: k is f32[T, 16], expected f32[T, 12] (4 heads of 3)");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n  q = linear(x, wq)\n"
                       "  return infini_attention(q, q, q, beta, heads = 3, segment = 0)\n}\n",
               ":10:63: error: infini_attention's segment must be >= 1, got 0");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n  q = linear(x, wq)\n"
                       "  return infini_attention(q, q, q, g, heads = 3, segment = 4)\n}\n",
               "error: infini_attention: beta is f32[12], expected f32[3] (one gate per head)");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n  q = linear(x, wq)\n"
                       "  return groupnorm(q, g, b, groups = 5)\n}\n",
               "error: groupnorm: groups = 5 does not divide the 12 columns of x");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retention_vs_interpreter), cmocka_unit_test(test_infini_vs_interpreter),
      cmocka_unit_test(test_groupnorm_vs_interpreter), cmocka_unit_test(test_retention_forms_agree),
      cmocka_unit_test(test_infini_forms_agree),       cmocka_unit_test(test_stats_show_the_state),
      cmocka_unit_test(test_examples_entries),         cmocka_unit_test(test_frontend_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
