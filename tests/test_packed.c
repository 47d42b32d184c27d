/* tests/test_packed.c — packed variable-length batches (EffectiveTransformer,
 * issue #16): several sequences of different lengths in one encoder call,
 * a forward input `seq : i32[T]` of segment ids, `attention(..., segments =
 * seq)` keeping each query within its sequence and `positions(P, x,
 * segments = seq)` restarting at each sequence. examples/packed (a BERT-style
 * encoder, random weights) at -O0 and -O3:
 *  - the reference interpreter on a packed call == the interpreter on each
 *    sequence alone (1e-6 relative to the output's scale);
 *  - the JIT (tfx_forward_inputs) on the packed call == the interpreter's
 *    packed call, and == the JIT on each sequence alone (1e-5 relative: the
 *    linear kernels block rows differently for another T);
 *  - ids that are not sorted (0 0 1 1 0 0: three segments) and a full call
 *    of max_seq rows in 7 sequences;
 *  - a rotary encoder (attention with position = rope(), attend on rope(...,
 *    segments = seq) projections, an attention with ALiBi and softcap);
 *  - tfxc --stats and the frontend's errors with their locations.
 * The comparison with Hugging Face's BertModel run per sequence is in
 * test_inputs (tests/hf/bert_inputs.py writes the packed case). */
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
#include "../include/tfx/tfx.h"
#include "../passes/passes.h"
#include "support/frontend_capture.h"
#include "support/testutil.h"

#define DIM 32
#define TOL_INTERP 1e-6
#define TOL_JIT 1e-5

static double scale_of(const float *x, size_t n) {
  double s = 1;
  for (size_t i = 0; i < n; i++) s = fabs(x[i]) > s ? fabs(x[i]) : s;
  return s;
}

static void compare(const char *what, const float *got, const float *want, size_t n, double tol) {
  double scale = scale_of(want, n), d = tfx_test_max_abs_diff(got, want, n);
  print_message("  %-44s max |diff| %.3g (scale %.3g)\n", what, d, scale);
  if (!(d <= tol * scale)) fail_msg("%s: max |diff| %g > %g", what, d, tol * scale);
}

/* A rotary encoder: attention with position = rope() and attend on rope(...)
 * projections, both with segment ids (the rotations restart per sequence);
 * then an attention with ALiBi and softcap and segment ids. */
static const char *const rope_src =
    "model rope_packed\n"
    "const dim = 32, heads = 4, vocab = 100, max_seq = 64\n"
    "param emb : f32[vocab, dim]\n"
    "param g1 : f32[dim]\n"
    "param g2 : f32[dim]\n"
    "param wq : f32[dim, dim]\n"
    "param wk : f32[16, dim]\n"
    "param wv : f32[16, dim]\n"
    "param wo : f32[dim, dim]\n"
    "param wq2 : f32[dim, dim]\n"
    "param wk2 : f32[dim, dim]\n"
    "param wv2 : f32[dim, dim]\n"
    "param wo2 : f32[dim, dim]\n"
    "forward(tokens : i32[T], seq : i32[T]) -> f32[T, dim] {\n"
    "  x = embedding(emb, tokens)\n"
    "  x = x + attention(rmsnorm(x, g1), wq, wk, wv, wo, heads = heads, kv_heads = 2, position = rope(),\n"
    "                    mask = none, segments = seq)\n"
    "  q = rope(linear(x, wq2), heads = heads, style = half, segments = seq)\n"
    "  k = rope(linear(x, wk2), heads = heads, style = half, segments = seq)\n"
    "  x = x + linear(attend(q, k, linear(x, wv2), heads = heads, mask = none, segments = seq), wo2)\n"
    "  x = x + attention(x, wq2, wk2, wv2, wo2, heads = heads, position = alibi, softcap = 5, mask = none,\n"
    "                    segments = seq)\n"
    "  return rmsnorm(x, g2)\n"
    "}\n";

/* examples/packed (src NULL) or rope_src */
static void build(const char *src, int opt, tfx_build *b) {
  tfx_build_options o = {.weights = "random:7", .opt_level = opt};
  memset(b, 0, sizeof *b);
  if (tfx_build_source(src ? "rope_packed.tfx" : TFX_SOURCE_DIR "/examples/packed/packed.tfx", src, &o, b))
    fail_msg("%s does not build at -O%d", src ? "rope_packed" : "examples/packed", opt);
}

static void interp_run(tfx_interp *it, const int32_t *ids, const int32_t *seq, int T, float *out) {
  char err[512];
  const void *in[2] = {ids, seq};
  if (tfx_interp_forward_inputs(it, in, 2, T, out, err, sizeof err)) fail_msg("interpreter: %s", err);
}

static void jit_run(tfx_session *s, const int32_t *ids, const int32_t *seq, int T, float *out) {
  const tfx_input in[2] = {{"tokens", ids, 0}, {"seq", seq, 0}};
  assert_int_equal(tfx_forward_inputs(s, in, 2, T, out, 0), TFX_OK);
}

/* One packed case: ids and seq ids of T rows; the segments (runs of one id)
 * run alone with seq all 0 must give the same rows. */
static void check_case(int opt, tfx_interp *it, tfx_session *s, const int32_t *ids, const int32_t *seq, int T,
                       const char *name) {
  size_t n = (size_t)T * DIM;
  float *ref = calloc(n, 4), *got = calloc(n, 4), *alone = calloc(n, 4), *jalone = calloc(n, 4);
  int32_t *zeros = calloc((size_t)T, 4);
  assert_non_null(ref), assert_non_null(got), assert_non_null(alone), assert_non_null(jalone);
  assert_non_null(zeros);
  interp_run(it, ids, seq, T, ref);
  jit_run(s, ids, seq, T, got);
  for (int lo = 0, hi; lo < T; lo = hi) {
    for (hi = lo + 1; hi < T && seq[hi] == seq[lo];) hi++;
    interp_run(it, ids + lo, zeros, hi - lo, alone + (size_t)lo * DIM);
    jit_run(s, ids + lo, zeros, hi - lo, jalone + (size_t)lo * DIM);
  }
  char what[96];
  snprintf(what, sizeof what, "-O%d %s: interp packed vs alone", opt, name);
  compare(what, ref, alone, n, TOL_INTERP);
  snprintf(what, sizeof what, "-O%d %s: JIT packed vs interp packed", opt, name);
  compare(what, got, ref, n, TOL_JIT);
  snprintf(what, sizeof what, "-O%d %s: JIT packed vs JIT alone", opt, name);
  compare(what, got, jalone, n, TOL_JIT);
  /* the last row only (the last-row entry) */
  float last[DIM];
  const tfx_input in[2] = {{"tokens", ids, 0}, {"seq", seq, 0}};
  assert_int_equal(tfx_forward_inputs(s, in, 2, T, last, 1), TFX_OK);
  assert_true(tfx_test_max_abs_diff(last, got + (size_t)(T - 1) * DIM, DIM) <= 1e-6);
  /* the packing matters: the rows differ from one unsegmented call */
  interp_run(it, ids, zeros, T, alone);
  assert_true(tfx_test_max_abs_diff(alone, ref, n) > 1e-3);
  free(ref), free(got), free(alone), free(jalone), free(zeros);
}

static void packed_vs_alone(const char *src) {
  enum { T1 = 28, T2 = 10, T3 = 64 };
  int32_t ids[T3], seq1[T1], seq2[T2] = {0, 0, 0, 1, 1, 0, 0, 7, 7, 7}, seq3[T3];
  for (int i = 0; i < T3; i++) ids[i] = (int32_t)((i * 37 + 11) % 100);
  static const int lens1[] = {5, 1, 13, 9}; /* 4 sequences, 28 rows */
  for (int k = 0, r = 0; k < 4; k++)
    for (int i = 0; i < lens1[k]; i++) seq1[r++] = k;
  static const int lens3[] = {17, 3, 1, 20, 8, 2, 13}; /* 7 sequences, max_seq rows */
  for (int k = 0, r = 0; k < 7; k++)
    for (int i = 0; i < lens3[k]; i++) seq3[r++] = 100 + 3 * k;
  char err[512];
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    build(src, opt, &b);
    assert_int_equal(b.graph->n_fwd_inputs, 2);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    assert_non_null(it);
    tfx_model *m = NULL;
    if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    const tfx_model_desc *d = tfx_model_descriptor(m);
    assert_int_equal(d->n_inputs, 2);
    assert_string_equal(d->inputs[1].name, "seq");
    assert_int_equal(d->inputs[1].kind, TFX_INPUT_I32);
    assert_int_equal(d->inputs[1].vocab, 0); /* segment ids: any value */
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    check_case(opt, it, s, ids, seq1, T1, "4 sequences (5 1 13 9)");
    check_case(opt, it, s, ids, seq2, T2, "unsorted ids 0 0 0 1 1 0 0 7 7 7");
    check_case(opt, it, s, ids, seq3, T3, "7 sequences, 64 rows");
    tfx_session_free(s);
    tfx_model_close(m);
    tfx_interp_free(it);
    tfx_build_free(&b);
  }
}

static void test_packed_vs_alone(void **state) {
  (void)state;
  packed_vs_alone(NULL);
}

static void test_rope_packed_vs_alone(void **state) {
  (void)state;
  packed_vs_alone(rope_src);
}

/* tfxc --stats: the segmented attentions run the ROW schedule and say why */
static void test_stats(void **state) {
  (void)state;
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(
      (char *[]){TFXC_PATH, TFX_SOURCE_DIR "/examples/packed/packed.tfx", "--weights", "random", "--stats", NULL}, &out,
      &err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(out, "schedules row 2, flash 0, block_sparse 0"));
  assert_non_null(strstr(out, "segment ids: row, each query visits only its sequence's keys"));
  free(out);
  free(err);
}

/* ---- frontend errors, with their locations ---- */

#define HDR                                                                                                            \
  "model m\n"                                                                                                          \
  "const dim = 8, max_seq = 16\n"                                                                                      \
  "param emb : f32[10, dim]\n"                                                                                         \
  "param pos : f32[16, dim]\n"                                                                                         \
  "param w : f32[dim, dim]\n"

static void test_errors(void **state) {
  (void)state;
  /* segments on a causal attention: its keys stay in the KV cache across calls */
  tfx_test_expect_compile_error(HDR "forward(t : i32[T], s : i32[T]) -> f32[T, dim] {\n"
                                    "  x = embedding(emb, t)\n"
                                    "  return attention(x, w, w, w, w, heads = 2, mask = causal, segments = s)\n}\n",
                                ":8:72:", "attention: segments needs mask = none");
  /* segment ids of f32 */
  tfx_test_expect_compile_error(HDR "forward(t : i32[T], s : f32[T]) -> f32[T, dim] {\n"
                                    "  x = embedding(emb, t)\n"
                                    "  return attention(x, w, w, w, w, heads = 2, mask = none, segments = s)\n}\n",
                                ":8:70:", "attention: segments is f32[T], expected i32[T]");
  /* attend with segment ids of two dimensions */
  tfx_test_expect_compile_error(HDR "forward(t : i32[T]) -> f32[T, dim] {\n"
                                    "  x = embedding(emb, t)\n"
                                    "  return attend(x, x, x, heads = 2, mask = none, segments = x)\n}\n",
                                ":8:61:", "attend: segments is f32[T, 8], expected i32[T]");
  /* positions with f32 segment ids */
  tfx_test_expect_compile_error(HDR "forward(t : i32[T], s : f32[T]) -> f32[T, dim] {\n"
                                    "  return embedding(emb, t) + positions(pos, t, segments = s)\n}\n",
                                ":7:59:", "positions: segments is f32[T], expected i32[T]");
  /* rope with segment ids of f32 */
  tfx_test_expect_compile_error(HDR "forward(t : i32[T], s : f32[T]) -> f32[T, dim] {\n"
                                    "  return rope(embedding(emb, t), heads = 2, segments = s)\n}\n",
                                ":7:", "rope: segments is f32[T], expected i32[T]");
  /* attend to a memory of static rows */
  tfx_test_expect_compile_error(HDR "param mem : f32[4, dim]\n"
                                    "forward(t : i32[T], s : i32[T]) -> f32[T, dim] {\n"
                                    "  x = embedding(emb, t)\n"
                                    "  return attend(x, mem, mem, heads = 2, mask = none, segments = s)\n}\n",
                                ":9:", "attend: segments needs queries and keys of the call's T rows");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_packed_vs_alone),
      cmocka_unit_test(test_rope_packed_vs_alone),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
