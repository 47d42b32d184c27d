/* tests/test_yoco.c — attention nodes sharing one KV cache (YOCO's
 * cross-decoder: causal attends of the same k and v, tfx_attn_kv_owner):
 * the plan gives them one slot; the JIT (one cache, stored by the first
 * node, read by the others) against the reference interpreter (a cache per
 * node) at -O0 and -O3 through calls of several sizes, with GQA and a
 * sliding pattern on a reader; examples/yoco through the token API (prompt
 * + decode, chunks, the last-row entry, the descriptor's KV bytes);
 * `--stats`' comparison with a standard decoder; the frontend's `attend`
 * diagnostics. The comparison with a PyTorch model written from the paper
 * is test_torch_retention (tests/torch/yoco.py). */
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

static int linear(tfx_tg *t, int x, int64_t out, int64_t in, const char *wname) {
  return tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, wname, out, in, 0.5f));
}

static int attend(tfx_tg *t, int q, int k, int v, int H, int G, int d, int window) {
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  a.heads = H, a.kv_heads = G, a.head_dim = d, a.mask = TFX_MASK_CAUSAL;
  if (window) a.sparse = (tfx_sparse){.kind = TFX_SPARSE_SLIDING, .window = window};
  return tfx_tg_add(t, &a);
}

/* x f32[T, 24]; one k and v (G heads of d); three causal attentions on them
 * with their own queries (the third with a sliding window of 5), chained
 * through residual linears; plus one attention with a cache of its own */
static tfx_tg *shared_graph(int H, int G, int d, uint64_t seed) {
  const int64_t D = 24;
  tfx_tg *t = tfx_tg_new("shared_kv", 64, seed);
  int x = tfx_tg_input_f32(t, D);
  int k = linear(t, x, (int64_t)G * d, D, "wk"), v = linear(t, x, (int64_t)G * d, D, "wv");
  int own = attend(t, linear(t, x, (int64_t)H * d, D, "wq_own"), linear(t, x, (int64_t)G * d, D, "wk_own"),
                   linear(t, x, (int64_t)G * d, D, "wv_own"), H, G, d, 0);
  int h = tfx_tg_op2(t, TFX_OP_ADD, x, linear(t, own, D, (int64_t)H * d, "wo_own"));
  static const char *const wq[] = {"wq0", "wq1", "wq2"}, *const wo[] = {"wo0", "wo1", "wo2"};
  for (int l = 0; l < 3; l++) {
    int o = attend(t, linear(t, h, (int64_t)H * d, D, wq[l]), k, v, H, G, d, l == 2 ? 5 : 0);
    h = tfx_tg_op2(t, TFX_OP_ADD, h, linear(t, o, D, (int64_t)H * d, wo[l]));
  }
  t->g->output = h;
  assert_true(h >= 0);
  return t;
}

static const tfx_tg_run_opts k_opts = {.in_scale = 1.0f};

static void test_one_slot(void **state) {
  (void)state;
  tfx_tg *t = shared_graph(4, 2, 8, 11);
  char err[256];
  if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("plan: %s", err);
  int64_t one = 2 * 64 * 2 * 8 * 4;          /* K and V, max_seq 64, G 2, d 8 */
  assert_int_equal(t->g->kv_bytes, 2 * one); /* the own cache and the shared one */
  int readers = 0, owner = -1;
  for (int i = 0; i < t->g->n_nodes; i++) {
    const tfx_node *n = &t->g->nodes[i];
    int o = tfx_attn_kv_owner(t->g, n);
    if (o < 0 || o == i) continue;
    if (owner < 0) owner = o;
    assert_int_equal(o, owner);
    assert_int_equal(n->kv_offset, t->g->nodes[owner].kv_offset);
    readers++;
  }
  assert_int_equal(readers, 2);
  tfx_graph_stats gs;
  tfx_pass_graph_stats(t->g, &gs);
  assert_int_equal(gs.kv_readers, 2);
  assert_int_equal(gs.kv_shared_caches, 1);
  assert_int_equal(gs.kv_layers, 4);
  assert_int_equal(gs.standard_kv_bytes, 4 * one);
  tfx_tg_free(t);
}

static void test_shared_vs_interpreter(void **state) {
  (void)state;
  static const int ns[] = {9, 1, 1, 3, 20, 1};
  static const int shapes[][3] = {{4, 2, 8}, {2, 2, 16}, {3, 1, 5}};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = shared_graph(shapes[i][0], shapes[i][1], shapes[i][2], 40 + (uint64_t)i);
    char what[64];
    snprintf(what, sizeof what, "shared kv H%d G%d d%d", shapes[i][0], shapes[i][1], shapes[i][2]);
    tfx_tg_check_levels(t, ns, 6, &k_opts, what);
    tfx_tg_free(t);
  }
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

/* examples/yoco: the descriptor's KV bytes (two retention states and one
 * cache), one prompt == prompt + decode == chunks, the last-row entry */
static void test_example(void **state) {
  (void)state;
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = 3;
  co.weights = "random:7";
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_file(TFX_SOURCE_DIR "/examples/yoco/yoco.tfx", &co, &m), TFX_OK);
  const tfx_model_desc *desc = tfx_model_descriptor(m);
  /* 2 x 4 heads x 16 x 32 floats of state + 2 x 256 x 2 x 16 floats of K and V */
  assert_int_equal((int64_t)desc->kv_bytes, 2 * 4 * 16 * 32 * 4 + 2 * 256 * 2 * 16 * 4);
  int V = desc->output_width;
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), 0);
  enum { N = 80 };
  int32_t tok[N];
  for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 37 + 11) % V);
  float *full = malloc((size_t)N * V * sizeof *full), *last = malloc((size_t)V * sizeof *last);
  float *steps = malloc((size_t)N * V * sizeof *steps);
  assert_non_null(full), assert_non_null(last), assert_non_null(steps);
  assert_int_equal(tfx_forward_ex(s, tok, N, full, 0), 0);
  tfx_session_reset(s);
  assert_int_equal(tfx_forward(s, tok, N, last), 0);
  check_same(full + (size_t)(N - 1) * V, last, (size_t)V, "yoco: last-row entry vs the full forward");
  tfx_session_reset(s);
  assert_int_equal(tfx_forward_ex(s, tok, 20, steps, 0), 0);
  for (int i = 20; i < N; i++) assert_int_equal(tfx_forward_ex(s, tok + i, 1, steps + (size_t)i * V, 0), 0);
  check_same(full, steps, (size_t)N * V, "yoco: prompt of 20 + decode vs one prompt");
  tfx_session_reset(s);
  static const int chunks[] = {3, 30, 1, 46};
  for (int c = 0, row = 0; c < 4; row += chunks[c++])
    assert_int_equal(tfx_forward_ex(s, tok + row, chunks[c], steps + (size_t)row * V, 0), 0);
  check_same(full, steps, (size_t)N * V, "yoco: chunks vs one prompt");
  free(full), free(last), free(steps);
  tfx_session_free(s);
  tfx_model_close(m);
}

static void test_stats(void **state) {
  (void)state;
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(
      (char *[]){TFXC_PATH, TFX_SOURCE_DIR "/examples/yoco/yoco.tfx", "--weights", "random", "--stats", NULL}, &out,
      &err);
  assert_int_equal(rc, 0);
  /* 16384 bytes of retention state + 65536 of the shared K and V; a standard
   * decoder: 2 retention layers with K and V of their heads (256 x 4 x
   * (16 + 32) floats each) + 2 attention layers with 65536 each */
  assert_non_null(strstr(out, "kv cache:          81920 bytes"));
  assert_non_null(strstr(out, "kv sharing:        1 attention node reads 1 shared cache (YOCO); a standard decoder of "
                              "the same depth (4 attention layers, each with its own KV cache at max_seq) would keep "
                              "524288 bytes, 6.40x"));
  free(out), free(err);
}

static void expect_error(const char *src, const char *msg) {
  char *err = NULL;
  int rc = tfx_test_compile_text(src, &err);
  if (rc == 0 || !strstr(err, msg)) fail_msg("expected '%s', got rc %d: %s", msg, rc, err);
  free(err);
}

#define PRELUDE                                                                                                        \
  "model m\nconst max_seq = 16\nparam wq : f32[12, 8]\nparam wk : f32[6, 8]\nparam wkv : f32[5, 8]\n"                  \
  "param src : f32[4, 8]\n"

static void test_frontend_errors(void **state) {
  (void)state;
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n"
                       "  return attend(linear(x, wq), linear(x, wk), linear(x, wk), heads = 5, mask = causal)\n}\n",
               ":8:10: error: attend: heads = 5 does not divide the columns of q f32[T, 12]");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n"
                       "  return attend(linear(x, wq), linear(x, wk), linear(x, wk), heads = 4, kv_heads = 3, "
                       "mask = causal)\n}\n",
               ":8:10: error: attend: kv_heads = 3 must divide heads = 4");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n"
                       "  return attend(linear(x, wq), linear(x, wkv), linear(x, wk), heads = 4, kv_heads = 2, "
                       "mask = causal)\n}\n",
               "error: attend: k is f32[T, 5], expected 6 columns (kv_heads 2 x head_dim 3)");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n"
                       "  return attend(linear(x, wq), linear(x, wk), linear(x, wk), heads = 4, kv_heads = 2)\n}\n",
               "error: missing keyword 'mask' of attend");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 12] {\n"
                       "  return attend(linear(x, wq), linear(src, wk), linear(src, wk), heads = 4, kv_heads = 2, "
                       "mask = causal)\n}\n",
               "error: attend: mask = causal needs q, k and v of T rows (the call's tokens), got f32[4, 6]");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_slot), cmocka_unit_test(test_shared_vs_interpreter), cmocka_unit_test(test_example),
      cmocka_unit_test(test_stats),    cmocka_unit_test(test_frontend_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
