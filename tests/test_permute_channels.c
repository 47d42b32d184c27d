/* tests/test_permute_channels.c — sparse24(FMT, permute = true) (issue #13,
 * passes/permute_channels.c): the channel permutation of 2:4 sparsity.
 *
 * - the spelling: sparse24(f32, permute = true), sparse24(q8_0, permute =
 *   false), the errors (another key, a value other than true / false);
 * - the function is kept: the pass alone on an FFN (rmsnorm -> w1 with a
 *   bias, w3 -> silu(a) * b -> w2, + x) and on attention (wv with a bias
 *   -> attention with GQA -> wo) leaves the graph's output equal to the
 *   unpermuted graph's on the reference interpreter (max |diff| <= 1e-5 *
 *   max(1, max |ref|): only the order of the sums changes), while the
 *   weights did change;
 * - the objective: what 2:4 keeps of |w| (the 2 largest of every 4 inputs,
 *   recomputed here from the weights) grows, and equals the pass's record
 *   (--stats) before and after;
 * - what is not permuted: a chain whose hidden value is also the output, a
 *   weight not asked permute (the rule's choice), and a second run (done);
 * - the whole pipeline: the JIT against the interpreter at -O0 and -O2 with
 *   sparse24(f32, permute = true) and sparse24(q8_0, permute = true). */
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

#define D 64
#define HID 128
#define ROWS 7

static const int calls[] = {1, 3, 7, 2};

static tfx_quant_choice permuted(tfx_dtype dt) {
  return (tfx_quant_choice){.mode = TFX_QUANT_FORMAT, .dtype = dt, .permute = 1};
}

/* x -> rmsnorm -> silu(w1 x + b1) * (w3 x) -> w2 -> + x; with `leak`, the
 * hidden product is the output as well (so it cannot be permuted). */
static tfx_tg *g_ffn(int leak) {
  tfx_tg *t = tfx_tg_new("ffn", 64, 91);
  int x = tfx_tg_input_f32(t, D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int h = tfx_tg_add(t, &nn);
  int a = tfx_tg_op3(t, TFX_OP_LINEAR, h, tfx_tg_param2(t, "w1", HID, D, 0.3f), tfx_tg_param1(t, "b1", HID, 0.5f, 0));
  int b = tfx_tg_op2(t, TFX_OP_LINEAR, h, tfx_tg_param2(t, "w3", HID, D, 0.3f));
  int m = tfx_tg_op2(t, TFX_OP_MUL, tfx_tg_op1(t, TFX_OP_SILU, a), b);
  int y = tfx_tg_op2(t, TFX_OP_LINEAR, m, tfx_tg_param2(t, "w2", D, HID, 0.3f));
  t->g->output = leak ? m : tfx_tg_op2(t, TFX_OP_ADD, x, y);
  return t;
}

/* x -> q, k, v (v with a bias) -> causal attention, 4 heads over 2 KV heads of 16 -> wo */
static tfx_tg *g_attn(int leak) {
  (void)leak;
  tfx_tg *t = tfx_tg_new("attn", 64, 93);
  int x = tfx_tg_input_f32(t, D);
  int q = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wq", 64, D, 0.3f));
  int k = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wk", 32, D, 0.3f));
  int v = tfx_tg_op3(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wv", 32, D, 0.3f), tfx_tg_param1(t, "bv", 32, 0.5f, 0));
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  a.heads = 4;
  a.kv_heads = 2;
  a.head_dim = 16;
  a.mask = TFX_MASK_CAUSAL;
  int o = tfx_tg_add(t, &a);
  t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, o, tfx_tg_param2(t, "wo", D, 64, 0.3f));
  return t;
}

static const float *param(const tfx_tg *t, const char *name, int64_t *R, int64_t *K) {
  for (int i = 0; i < t->g->n_nodes; i++) {
    const tfx_node *n = &t->g->nodes[i];
    if (n->op == TFX_OP_PARAM && n->name && !strcmp(n->name, name)) {
      *R = n->type.dims[0];
      *K = n->type.rank > 1 ? n->type.dims[1] : 1;
      return (const float *)(t->blob + n->weight_offset);
    }
  }
  fail_msg("no param %s", name);
  return NULL;
}

/* What 2:4 keeps of |w|: per row, the 2 largest |w| of every 4 inputs. */
static double kept24(const tfx_tg *t, const char *name) {
  int64_t R = 0, K = 0;
  const float *w = param(t, name, &R, &K);
  double s = 0;
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = 0; k < K; k += 4) {
      float v[4];
      for (int i = 0; i < 4; i++) v[i] = fabsf(w[r * K + k + i]);
      for (int i = 0; i < 2; i++) { /* the two largest, by selection */
        int m = i;
        for (int j = i + 1; j < 4; j++)
          if (v[j] > v[m]) m = j;
        float tmp = v[i];
        v[i] = v[m];
        v[m] = tmp;
        s += v[i];
      }
    }
  return s;
}

static void run_interp(tfx_tg *t, const float *x, float *out) {
  char err[256];
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  if (tfx_interp_forward(it, x, ROWS, out, err, sizeof err)) fail_msg("%s", err);
  tfx_interp_free(it);
}

static int run_pass(tfx_tg *t, char *err, size_t errlen) {
  tfx_pass_ctx c = {t->g, &t->blob, &t->size, 1, 0, {1, 1}, err, errlen};
  return tfx_pass_permute_channels(&c);
}

static int same_param(const tfx_tg *a, const tfx_tg *b, const char *name) {
  int64_t R = 0, K = 0;
  const float *pa = param(a, name, &R, &K), *pb = param(b, name, &R, &K);
  return !memcmp(pa, pb, (size_t)(R * K) * sizeof *pa);
}

/* The pass alone keeps the function; the objective and the record. */
static void keeps_function(tfx_tg *(*build)(int), const char *consumer, const char *const *moved) {
  tfx_tg *a = build(0), *b = build(0);
  float x[ROWS * D], ya[ROWS * D], yb[ROWS * D];
  for (int i = 0; i < ROWS * D; i++) x[i] = tfx_tg_rand(a);
  run_interp(a, x, ya);
  b->g->schedule.quantize = permuted(TFX_DT_S24_F32);
  char err[256];
  if (run_pass(b, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(b->g->n_permutes, 1);
  assert_string_equal(b->g->permutes[0].name, consumer);
  for (int i = 0; moved[i]; i++)
    if (same_param(a, b, moved[i])) fail_msg("%s: %s did not change", consumer, moved[i]);
  double before = kept24(a, consumer), after = kept24(b, consumer);
  assert_true(after > before * 1.001);
  assert_true(fabs(b->g->permutes[0].kept_before - before) <= 1e-4 * before);
  assert_true(fabs(b->g->permutes[0].kept_after - after) <= 1e-4 * after);
  run_interp(b, x, yb);
  float scale = 1, diff = 0;
  for (int i = 0; i < ROWS * D; i++) {
    scale = fmaxf(scale, fabsf(ya[i]));
    diff = fmaxf(diff, fabsf(ya[i] - yb[i]));
  }
  if (diff > 1e-5f * scale) fail_msg("%s: permuted output differs by %g (scale %g)", consumer, diff, scale);
  /* a second run changes nothing */
  assert_int_equal(b->g->schedule.quantize.permute, 2);
  uint8_t *copy = malloc(b->size);
  assert_non_null(copy);
  memcpy(copy, b->blob, b->size);
  if (run_pass(b, err, sizeof err)) fail_msg("%s", err);
  assert_memory_equal(copy, b->blob, b->size);
  assert_int_equal(b->g->n_permutes, 1);
  free(copy);
  tfx_tg_free(a);
  tfx_tg_free(b);
}

static void test_spelling(void **state) {
  (void)state;
  tfx_quant_choice c;
  char msg[256];
  assert_int_equal(tfx_quant_choice_parse_msg("sparse24(f32, permute = true)", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_S24_F32);
  assert_int_equal(c.permute, 1);
  assert_string_equal(tfx_quant_choice_name(c), "sparse24(f32, permute = true)");
  assert_int_equal(tfx_quant_choice_parse_msg("sparse24(q8_0, permute = false)", 0, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_S24_Q8_0);
  assert_int_equal(c.permute, 0);
  assert_int_equal(tfx_quant_choice_parse_msg("sparse24(f32)", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.permute, 0);
  assert_int_equal(tfx_quant_choice_parse_msg("sparse24(f32, permute = maybe)", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "permute = true"));
  assert_int_equal(tfx_quant_choice_parse_msg("sparse24(f32, order = true)", 1, &c, msg, sizeof msg), -1);
  assert_int_equal(tfx_quant_choice_parse_msg("sparse24(permute = true)", 1, &c, msg, sizeof msg), -1);
}

static void test_ffn(void **state) {
  (void)state;
  keeps_function(g_ffn, "w2", (const char *const[]){"w1", "b1", "w3", "w2", NULL});
}

static void test_attention(void **state) {
  (void)state;
  keeps_function(g_attn, "wo", (const char *const[]){"wv", "bv", "wo", NULL});
}

static void test_not_permuted(void **state) {
  (void)state;
  char err[256];
  /* the hidden value is also the graph's output */
  tfx_tg *a = g_ffn(1), *b = g_ffn(1);
  b->g->schedule.quantize = permuted(TFX_DT_S24_F32);
  if (run_pass(b, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(b->g->n_permutes, 0);
  assert_memory_equal(a->blob, b->blob, a->size);
  tfx_tg_free(b);
  /* a rule asks w2 without permute: nothing to do */
  b = g_ffn(0);
  tfx_tg_free(a);
  a = g_ffn(0);
  b->g->schedule.quantize = permuted(TFX_DT_S24_F32);
  tfx_quant_choice plain = permuted(TFX_DT_S24_F32);
  plain.permute = 0;
  assert_int_equal(tfx_graph_add_quant_rule(b->g, "w*", plain, 0, 0), 0);
  assert_int_equal(tfx_graph_asks_permute(b->g), 1);
  if (run_pass(b, err, sizeof err)) fail_msg("%s", err);
  assert_int_equal(b->g->n_permutes, 0);
  assert_memory_equal(a->blob, b->blob, a->size);
  tfx_tg_free(a);
  tfx_tg_free(b);
}

/* the whole pipeline, JIT against the interpreter */
static void test_pipeline(void **state) {
  (void)state;
  const tfx_dtype fmts[2] = {TFX_DT_S24_F32, TFX_DT_S24_Q8_0};
  for (int f = 0; f < 2; f++)
    for (int level = 0; level <= 2; level += 2) {
      tfx_tg *(*builds[2])(int) = {g_ffn, g_attn};
      for (int b = 0; b < 2; b++) {
        tfx_tg *t = builds[b](0);
        t->g->schedule.quantize = permuted(fmts[f]);
        char what[96];
        snprintf(what, sizeof what, "%s %s -O%d", b ? "attention" : "ffn", tfx_dtype_name(fmts[f]), level);
        tfx_i8c_run_passes(t, level, what);
        assert_int_equal(t->g->n_permutes, 1);
        int s24 = 0;
        for (int i = 0; i < t->g->n_nodes; i++) s24 += t->g->nodes[i].type.dtype == fmts[f];
        assert_true(s24 >= 1);
        tfx_i8c_check_model(t, NULL, calls, (int)(sizeof calls / sizeof calls[0]), 0, what);
        tfx_tg_free(t);
      }
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_spelling), cmocka_unit_test(test_ffn),
                                     cmocka_unit_test(test_attention), cmocka_unit_test(test_not_permuted),
                                     cmocka_unit_test(test_pipeline)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
