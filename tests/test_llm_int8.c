/* tests/test_llm_int8.c — quantize = llm_int8(threshold = t) (issue #13,
 * passes/llm_int8.c): the input channels whose calibrated max|x| exceeds t
 * stay f32, the rest run as W8A8.
 *
 * - the spelling: llm_int8 (threshold 6), llm_int8(threshold = 3.5), and
 *   the errors (a threshold that is not a number > 0, another key, a
 *   quantize { } rule);
 * - the pass: an error naming --calibration without calibration data; the
 *   split (mask, gather MATMUL, f32 outlier linear, add) leaves the f32
 *   function unchanged (interpreter before and after, 1e-5 of the range);
 *   Q, K and V of one input share one mask and gather; a second run changes
 *   nothing; a linear without outliers, without a calibration entry or with K
 *   not a multiple of 32 is left alone;
 * - kernel vs interpreter: the split graphs (one linear + bias; x +
 *   linear(rmsnorm(x)) + b; three linears of one norm) quantized at -O0 and
 *   -O2, the JIT (2 threads, calls of 1, 2, 5, 40, 3 and 100 rows, host and
 *   the --mcpu targets this machine runs) against the reference interpreter,
 *   which emulates the per-token quantization of the int8 part: max |jit -
 *   ref| <= 1e-4 * max(1, max |ref|) (TFX_TG_TOL); the check must not be
 *   blind (the interpreter without the emulation is further away). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/int8_cases.h"
#include "support/jit_harness.h"
#include "tfx/tfx.h"

static const int calls[] = {1, 2, 5, 40, 3, 100};

static tfx_quant_choice llm_int8(float threshold) {
  return (tfx_quant_choice){.mode = TFX_QUANT_FORMAT,
                            .dtype = TFX_DT_I8,
                            .smooth_set = 0,
                            .smooth = 0.0f,
                            .llm_int8 = 1,
                            .threshold = threshold};
}

/* calibration entries for the names, K channels: channel j's range is 10 for
 * j in outliers (a -1-terminated list), else 1 + j / 100 */
static void set_calib(tfx_tg *t, const char *const *names, int64_t K, const int *outliers) {
  tfx_calib *cal = calloc(1, sizeof *cal);
  assert_non_null(cal);
  for (int n = 0; names[n]; n++) assert_non_null(tfx_calib_entry_get(cal, names[n], K));
  for (int n = 0; n < cal->n; n++)
    for (int64_t j = 0; j < K; j++) {
      float v = 1.0f + 0.01f * (float)j;
      for (int o = 0; outliers[o] >= 0; o++)
        if (outliers[o] == j) v = 10.0f;
      cal->e[n].absmax[j] = v;
    }
  t->g->calib = cal;
}

static int count_op(const tfx_graph *g, tfx_op op) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
  return n;
}

static void forward_ref(tfx_tg *t, const float *x, int n, float *y) {
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  char err[256];
  if (tfx_interp_forward(it, x, n, y, err, sizeof err)) fail_msg("interpreter: %s", err);
  tfx_interp_free(it);
}

/* ---- the graphs ---- */

static const int outl[] = {3, 17, 40, -1};

static tfx_tg *g_linear(int64_t K, int64_t N) {
  tfx_tg *t = tfx_tg_new("li8_linear", 128, 51 + (uint64_t)K);
  int x = tfx_tg_input_f32(t, K);
  int w = tfx_tg_param2(t, "w", N, K, 0.3f);
  t->g->output = tfx_tg_op3(t, TFX_OP_LINEAR, x, w, tfx_tg_param1(t, "b", N, 1.0f, 0.0f));
  set_calib(t, (const char *const[]){"w", NULL}, K, outl);
  return t;
}

static tfx_tg *g_res(int64_t D) {
  tfx_tg *t = tfx_tg_new("li8_res", 128, 53 + (uint64_t)D);
  int x = tfx_tg_input_f32(t, D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int f = tfx_tg_add(t, &nn);
  int y = tfx_tg_op3(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "w", D, D, 0.3f), tfx_tg_param1(t, "b", D, 1.0f, 0.0f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, y);
  set_calib(t, (const char *const[]){"w", NULL}, D, outl);
  return t;
}

/* x -> rmsnorm -> wq, wk, wv (the same outliers): (q + k) * v */
static tfx_tg *g_qkv(int64_t D) {
  tfx_tg *t = tfx_tg_new("li8_qkv", 128, 57 + (uint64_t)D);
  int x = tfx_tg_input_f32(t, D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int f = tfx_tg_add(t, &nn);
  int q = tfx_tg_op2(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "wq", 32, D, 0.3f));
  int k = tfx_tg_op2(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "wk", 32, D, 0.3f));
  int v = tfx_tg_op2(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "wv", 32, D, 0.3f));
  t->g->output = tfx_tg_op2(t, TFX_OP_MUL, tfx_tg_op2(t, TFX_OP_ADD, q, k), v);
  set_calib(t, (const char *const[]){"wq", "wk", "wv", NULL}, D, outl);
  return t;
}

/* ---- the spelling ---- */

static void test_parser(void **state) {
  (void)state;
  tfx_quant_choice c;
  char msg[256];
  assert_int_equal(tfx_quant_choice_parse_msg("llm_int8", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.mode, TFX_QUANT_FORMAT);
  assert_int_equal(c.dtype, TFX_DT_I8);
  assert_int_equal(c.llm_int8, 1);
  assert_true(c.threshold == 6.0f);
  assert_string_equal(tfx_quant_choice_name(c), "llm_int8");
  assert_int_equal(tfx_quant_choice_parse_msg("llm_int8( threshold = 3.5 )", 1, &c, msg, sizeof msg), 0);
  assert_true(c.threshold == 3.5f);
  static const char *const bad[] = {"llm_int8(threshold = 0)", "llm_int8(threshold = -1)", "llm_int8(threshold = abc)",
                                    "llm_int8(threshold = nan)", "llm_int8(threshold = inf)"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    msg[0] = 0;
    assert_int_equal(tfx_quant_choice_parse_msg(bad[i], 1, &c, msg, sizeof msg), -1);
    if (!strstr(msg, "threshold is a number > 0")) fail_msg("%s: %s", bad[i], msg);
  }
  assert_int_equal(tfx_quant_choice_parse_msg("llm_int8(alpha = 1)", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "llm_int8 takes threshold = T"));
  assert_int_equal(tfx_quant_choice_parse_msg("llm_int8(6)", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "llm_int8 takes threshold = T"));
  assert_int_equal(tfx_quant_choice_parse_msg("llm_int8", 0, &c, msg, sizeof msg), -1); /* not a rule */
  assert_non_null(strstr(msg, "whole-model option"));
  assert_int_equal(tfx_quant_choice_parse_msg("llm_int9", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "llm_int8"));
}

/* ---- the pass ---- */

static void test_split(void **state) {
  (void)state;
  const int64_t D = 64;
  tfx_tg *t = g_qkv(D);
  tfx_calib *cal = t->g->calib;
  t->g->calib = NULL;
  char err[512] = "";
  tfx_pass_ctx c = {t->g, &t->blob, &t->size, 1, 0, {1, 1}, err, sizeof err};
  t->g->schedule.quantize = llm_int8(6.0f);
  assert_int_equal(tfx_pass_llm_int8(&c), -1); /* no calibration data */
  assert_non_null(strstr(err, "--calibration"));
  assert_non_null(strstr(err, "llm_int8(threshold = 6)"));
  t->g->calib = cal;
  float x[4 * 64], y0[4 * 32], y1[4 * 32];
  for (int i = 0; i < 4 * D; i++) x[i] = 2.0f * tfx_tg_rand(t) * (i % 64 == 17 ? 30.0f : 1.0f);
  forward_ref(t, x, 4, y0);
  assert_int_equal(tfx_pass_llm_int8(&c), 0);
  t->cap = t->size;
  assert_int_equal(t->g->schedule.quantize.llm_int8, 2);
  /* one mask and one gather for the three, an f32 linear and an add each */
  assert_int_equal(count_op(t->g, TFX_OP_MATMUL), 1);
  assert_int_equal(count_op(t->g, TFX_OP_LINEAR), 6);
  assert_int_equal(count_op(t->g, TFX_OP_ADD), 4);
  for (int i = 0; i < t->g->n_nodes; i++) {
    const tfx_node *n = &t->g->nodes[i];
    if (n->op == TFX_OP_MATMUL) assert_int_equal(n->type.dims[1], 3); /* three outlier channels */
  }
  forward_ref(t, x, 4, y1);
  double worst = 0, maxref = 1;
  for (int i = 0; i < 4 * 32; i++) {
    worst = fmax(worst, fabs((double)y0[i] - y1[i]));
    maxref = fmax(maxref, fabs(y0[i]));
  }
  if (worst > 1e-5 * maxref) fail_msg("the split changed the f32 function: %g", worst);
  int nodes = t->g->n_nodes;
  assert_int_equal(tfx_pass_llm_int8(&c), 0); /* a second run changes nothing */
  assert_int_equal(t->g->n_nodes, nodes);
  /* the quantized pipeline: the regular weights i8, the outlier ones and the gather f32 */
  tfx_i8c_run_passes(t, 0, "qkv");
  int i8 = 0, f32 = 0;
  for (int i = 0; i < t->g->n_nodes; i++) {
    const tfx_node *n = &t->g->nodes[i];
    if (n->op != TFX_OP_PARAM || n->type.rank != 2) continue;
    if (strstr(n->name, "llm_int8"))
      f32 += n->type.dtype == TFX_DT_F32;
    else
      i8 += n->type.dtype == TFX_DT_I8;
  }
  assert_int_equal(i8, 3);
  assert_int_equal(f32, 4);
  tfx_tg_free(t);

  /* left alone: no outliers; no calibration entry; K = 40 (not a multiple of 32) */
  for (int k = 0; k < 3; k++) {
    t = k == 2 ? g_linear(40, 8) : g_linear(D, 8);
    if (k == 0) {
      for (int64_t j = 0; j < D; j++) t->g->calib->e[0].absmax[j] = 1.0f;
    } else if (k == 1) {
      free(t->g->calib->e[0].name);
      t->g->calib->e[0].name = strdup("other");
      assert_non_null(t->g->calib->e[0].name);
    }
    t->g->schedule.quantize = llm_int8(6.0f);
    c = (tfx_pass_ctx){t->g, &t->blob, &t->size, 1, 0, {1, 1}, err, sizeof err};
    nodes = t->g->n_nodes;
    assert_int_equal(tfx_pass_llm_int8(&c), 0);
    assert_int_equal(t->g->n_nodes, nodes);
    assert_int_equal(count_op(t->g, TFX_OP_MATMUL), 0);
    tfx_tg_free(t);
  }
  /* every channel an outlier: the weight stays f32 */
  t = g_linear(D, 8);
  for (int64_t j = 0; j < D; j++) t->g->calib->e[0].absmax[j] = 100.0f;
  t->g->schedule.quantize = llm_int8(6.0f);
  tfx_i8c_run_passes(t, 0, "all outliers");
  for (int i = 0; i < t->g->n_nodes; i++)
    if (t->g->nodes[i].op == TFX_OP_PARAM && t->g->nodes[i].type.rank == 2)
      assert_int_equal(t->g->nodes[i].type.dtype, TFX_DT_F32);
  assert_int_equal(count_op(t->g, TFX_OP_MATMUL), 0);
  tfx_tg_free(t);
}

/* ---- the JIT against the interpreter ---- */

static void check(tfx_tg *(*build)(int64_t), int64_t D, const char *name) {
  for (int level = 0; level <= 2; level += 2) {
    tfx_tg *t = build(D);
    t->g->schedule.quantize = llm_int8(6.0f);
    char what[128];
    snprintf(what, sizeof what, "%s D%lld", name, (long long)D);
    tfx_i8c_run_passes(t, level, what);
    char err[256];
    if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
    if (count_op(t->g, TFX_OP_MATMUL) != 1) fail_msg("%s -O%d: not split", what, level);
    if (tfx_i8c_count_op(t->g, TFX_OP_LINEAR) + tfx_i8c_count_op(t->g, TFX_OP_FUSED_LINEAR) == 0)
      fail_msg("%s -O%d: no linear on int8 activations", what, level);
    for (int c = 0; c < 3; c++) {
      if (!tfx_i8c_runs_here(tfx_i8c_cpus[c])) continue;
      char label[192];
      snprintf(label, sizeof label, "%s -O%d cpu %s", what, level, tfx_i8c_cpus[c] ? tfx_i8c_cpus[c] : "host");
      tfx_i8c_check_model(t, tfx_i8c_cpus[c], calls, (int)(sizeof calls / sizeof calls[0]), 1, label);
    }
    tfx_tg_free(t);
  }
}

static tfx_tg *g_linear_45(int64_t K) { return g_linear(K, 45); }

static void test_jit(void **state) {
  (void)state;
  check(g_linear_45, 64, "linear");
  check(g_linear_45, 256, "linear");
  check(g_res, 64, "residual");
  check(g_qkv, 96, "qkv");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parser),
      cmocka_unit_test(test_split),
      cmocka_unit_test(test_jit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
