/* tests/test_linformer.c — Linformer's projection along the sequence
 * (seq_project(e, x) = e[:, 0:T] @ x) and the encoder attention over the
 * projected keys and values: the JIT against the reference interpreter at
 * -O0 and -O3 for calls of several T up to max_seq (E and F shared by two
 * layers, column counts that are and are not a multiple of the vector
 * width); examples/linformer through the token API (a call of T tokens
 * equals the first T rows' reference only through the first T columns of
 * E: checked by the interpreter comparison; here: the example compiles,
 * runs every T, and a repeated call gives the same rows); the frontend's
 * diagnostics. The comparison with a PyTorch model written from the paper
 * is test_torch_retention (tests/torch/linformer.py). */
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

/* x f32[T, D]; two layers h += attention(q, E k, F v) (mask none) with E and
 * F [kp, max_seq] shared by the layers */
static tfx_tg *linformer_graph(int64_t D, int H, int64_t kp, int64_t max_seq, uint64_t seed) {
  tfx_tg *t = tfx_tg_new("linformer", max_seq, seed);
  int x = tfx_tg_input_f32(t, D);
  int e = tfx_tg_param2(t, "e", kp, max_seq, 0.5f), f = tfx_tg_param2(t, "f", kp, max_seq, 0.5f);
  static const char *const names[2][4] = {{"wq0", "wk0", "wv0", "wo0"}, {"wq1", "wk1", "wv1", "wo1"}};
  int h = x;
  for (int l = 0; l < 2; l++) {
    int k = tfx_tg_op2(t, TFX_OP_SEQ_PROJECT, e, linear(t, h, D, D, names[l][1]));
    int v = tfx_tg_op2(t, TFX_OP_SEQ_PROJECT, f, linear(t, h, D, D, names[l][2]));
    tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){linear(t, h, D, D, names[l][0]), k, v});
    a.heads = H, a.kv_heads = H, a.head_dim = (int)(D / H), a.mask = TFX_MASK_NONE;
    h = tfx_tg_op2(t, TFX_OP_ADD, h, linear(t, tfx_tg_add(t, &a), D, D, names[l][3]));
  }
  t->g->output = h;
  assert_true(h >= 0);
  return t;
}

static const tfx_tg_run_opts k_opts = {.in_scale = 1.0f};

static void test_linformer_vs_interpreter(void **state) {
  (void)state;
  static const int ns[] = {5, 1, 64, 17, 48};
  static const int64_t shapes[][3] = {{24, 2, 8}, {16, 4, 13}, {36, 3, 32}};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = linformer_graph(shapes[i][0], (int)shapes[i][1], shapes[i][2], 64, 60 + (uint64_t)i);
    char what[64];
    snprintf(what, sizeof what, "linformer D%lld H%lld k%lld", (long long)shapes[i][0], (long long)shapes[i][1],
             (long long)shapes[i][2]);
    tfx_tg_check_levels(t, ns, 5, &k_opts, what);
    tfx_tg_free(t);
  }
}

/* examples/linformer: every call is a whole sequence (no KV cache); the
 * same tokens give the same rows whatever ran before; T = max_seq works */
static void test_example(void **state) {
  (void)state;
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = 3;
  co.weights = "random:9";
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_file(TFX_SOURCE_DIR "/examples/linformer/linformer.tfx", &co, &m), TFX_OK);
  const tfx_model_desc *d = tfx_model_descriptor(m);
  assert_int_equal(d->has_kv_cache, 0);
  int V = d->output_width;
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), 0);
  enum { N = 128 };
  int32_t tok[N];
  for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 29 + 5) % V);
  float *a = malloc((size_t)N * V * sizeof *a), *b = malloc((size_t)N * V * sizeof *b);
  assert_non_null(a), assert_non_null(b);
  assert_int_equal(tfx_forward_ex(s, tok, 40, a, 0), 0);
  assert_int_equal(tfx_forward_ex(s, tok, N, b, 0), 0);
  assert_int_equal(tfx_forward_ex(s, tok, 40, b, 0), 0);
  assert_memory_equal(a, b, (size_t)40 * V * sizeof *a);
  for (int i = 0; i < 40 * V; i++) assert_true(a[i] == a[i]); /* finite */
  free(a), free(b);
  tfx_session_free(s);
  tfx_model_close(m);
}

static void expect_error(const char *src, const char *msg) {
  char *err = NULL;
  int rc = tfx_test_compile_text(src, &err);
  if (rc == 0 || !strstr(err, msg)) fail_msg("expected '%s', got rc %d: %s", msg, rc, err);
  free(err);
}

#define PRELUDE "model m\nconst max_seq = 16\nparam e : f32[4, 16]\nparam short : f32[4, 8]\nparam w : f32[8, 8]\n"

static void test_frontend_errors(void **state) {
  (void)state;
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
                       "  k = seq_project(short, x)\n  return attend(x, k, k, heads = 2, mask = none)\n}\n",
               ":7:7: error: seq_project: e is f32[4, 8], needs at least max_seq = 16 columns (one per position)");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
                       "  k = seq_project(e, w)\n  return attend(x, k, k, heads = 2, mask = none)\n}\n",
               ":7:7: error: seq_project expects e : f32[k, n] and x : f32[T, C], got f32[4, 16] and f32[8, 8]");
  expect_error(PRELUDE "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
                       "  k = seq_project(e, x)\n  return attend(x, k, k, heads = 2, mask = causal)\n}\n",
               ":8:10: error: attend: mask = causal needs q, k and v of T rows (the call's tokens), got f32[4, 8]");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linformer_vs_interpreter),
      cmocka_unit_test(test_example),
      cmocka_unit_test(test_frontend_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
