/* tests/test_ffn_variants.c — the FFN-variant, position and mixture-of-experts
 * ops (sigmoid, positions, sinusoidal, moe_route, moe_up, moe_down) and the
 * builtins that expand to them (glu, moe): the LLVM backend against the
 * reference interpreter, and the interpreter's semantics against values
 * computed by hand.
 *  - IR graphs with odd sizes (24, 37, 43, ...) so vector tails and partial
 *    8-row blocks are hit, planned, JIT-compiled at -O0 and -O3 and run
 *    through the runtime API with 2 threads on random inputs, calls of 7, 1,
 *    4, 16, 3 rows (1 row uses the `decode` entry). Graphs with positions run
 *    with a causal attention so that pos > 0 (prefill, then decode steps).
 *  - .tfx programs using each builtin and option, compiled with the JIT API
 *    (at -O0 or -O3, alternating) and compared with the interpreter on the
 *    graph built from the same source and random weights (causal ones also
 *    token by token).
 *  - moe_route on hand-made logits: top-k order, ties (lowest index first),
 *    both gates, capacity dropping in token order, and the route of a T = 1
 *    call; positions and sinusoidal tables against their formulas.
 *  - type errors and source diagnostics.
 * Tolerance everywhere: max |jit - ref| <= 1e-4 * max(1, max |ref|); the
 * hand-computed checks allow 1e-6 (the interpreter works in double). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/backend.h"
#include "../driver/compile.h"
#include "../include/tfx/jit.h"
#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/jit_harness.h"
#include "support/testutil.h"
#include "tfx/tfx.h"

/* ---- the IR harness: interpreter vs JIT (tests/support/jit_harness.c) ---- */

/* Token inputs come from a generator seeded with 99 in every run. */
static void check_graph_calls(tfx_tg *t, const int *ns, int n_calls, float in_scale, const char *what) {
  tfx_tg_check_levels(t, ns, n_calls, &(tfx_tg_run_opts){.in_scale = in_scale, .tok_seed = 99}, what);
}

static const int k_calls[] = {7, 1, 4, 16, 3};
#define N_CALLS (int)(sizeof k_calls / sizeof k_calls[0])
static const int k_causal_calls[] = {7, 1, 1, 5, 1, 2, 1};
#define N_CAUSAL_CALLS (int)(sizeof k_causal_calls / sizeof k_causal_calls[0])

static int param3(tfx_tg *t, const char *name, int64_t a, int64_t b, int64_t c, float scale) {
  return tfx_tg_param(t, name, 3, (int64_t[]){a, b, c}, scale, 0.0f);
}

/* A causal single-head attention of x on itself: gives the model a KV cache
 * so that calls run at pos > 0. */
static int self_attention(tfx_tg *t, int x, int64_t D) {
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){x, x, x});
  a.heads = 1;
  a.kv_heads = 1;
  a.head_dim = (int)D;
  a.mask = TFX_MASK_CAUSAL;
  return tfx_tg_add(t, &a);
}

/* ---- activations ---- */

static void test_sigmoid(void **state) {
  (void)state;
  static const int64_t widths[] = {37, 16, 5};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = tfx_tg_new("sigmoid", 16, 3 + i);
    int x = tfx_tg_input_f32(t, widths[i]);
    t->g->output = tfx_tg_op1(t, TFX_OP_SIGMOID, x);
    assert_true(t->g->output >= 0);
    check_graph_calls(t, k_calls, N_CALLS, 12.0f, "sigmoid"); /* saturates both ways */
    tfx_tg_free(t);
  }
}

/* ---- positions ---- */

static void test_positions(void **state) {
  (void)state;
  static const int64_t rows[] = {32, 45};
  for (int i = 0; i < 2; i++) {
    const int64_t D = 24;
    tfx_tg *t = tfx_tg_new("positions", 32, 7 + i);
    int x = tfx_tg_input_f32(t, D);
    int table = tfx_tg_param2(t, "wpe", rows[i], D, 1.0f);
    int p = tfx_tg_op2(t, TFX_OP_POSITIONS, table, x);
    t->g->output = tfx_tg_op2(t, TFX_OP_ADD, self_attention(t, x, D), p);
    assert_true(t->g->output >= 0);
    check_graph_calls(t, k_causal_calls, N_CAUSAL_CALLS, 1.0f, "positions + causal attention");
    tfx_tg_free(t);
  }
  /* without a KV cache every call starts at position 0 */
  tfx_tg *t = tfx_tg_new("positions_enc", 16, 5);
  int tok = tfx_tg_input_tokens(t);
  int emb = tfx_tg_param2(t, "wte", 11, 40, 1.0f);
  int table = tfx_tg_param2(t, "wpe", 16, 40, 1.0f);
  t->g->output =
      tfx_tg_op2(t, TFX_OP_ADD, tfx_tg_op2(t, TFX_OP_EMBEDDING, emb, tok), tfx_tg_op2(t, TFX_OP_POSITIONS, table, tok));
  assert_true(t->g->output >= 0);
  static const int full[] = {16, 1, 9};
  check_graph_calls(t, full, 3, 1.0f, "positions, tokens, no cache");
  tfx_tg_free(t);
}

/* positions(..., offset = 2, pad = 1): tokens of a 3-id vocabulary, so about
 * a third are pad tokens (not counted, row 1), in every call. */
static int pad_positions(tfx_tg *t, int table, int tok) {
  tfx_node p = tfx_node_proto(TFX_OP_POSITIONS, 2, (int[]){table, tok});
  p.pos_offset = 2;
  p.pad_skip = 1;
  p.pad_id = 1;
  return tfx_tg_add(t, &p);
}

static void test_positions_pad(void **state) {
  (void)state;
  const int64_t D = 24;
  /* with a KV cache: prefill, decode and chunks count from pos (as transformers' past length) */
  tfx_tg *t = tfx_tg_new("positions_pad", 32, 9);
  int tok = tfx_tg_input_tokens(t);
  int x = tfx_tg_op2(t, TFX_OP_EMBEDDING, tfx_tg_param2(t, "wte", 3, D, 1.0f), tok);
  x = tfx_tg_op2(t, TFX_OP_ADD, x, pad_positions(t, tfx_tg_param2(t, "wpe", 34, D, 1.0f), tok));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, self_attention(t, x, D), x);
  assert_true(t->g->output >= 0);
  check_graph_calls(t, k_causal_calls, N_CAUSAL_CALLS, 1.0f, "positions with pad + causal attention");
  tfx_tg_free(t);
  /* without a KV cache (an encoder): every call from 0 */
  t = tfx_tg_new("positions_pad_enc", 16, 5);
  tok = tfx_tg_input_tokens(t);
  int emb = tfx_tg_op2(t, TFX_OP_EMBEDDING, tfx_tg_param2(t, "wte", 3, 40, 1.0f), tok);
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, emb, pad_positions(t, tfx_tg_param2(t, "wpe", 18, 40, 1.0f), tok));
  assert_true(t->g->output >= 0);
  static const int full[] = {16, 1, 9};
  check_graph_calls(t, full, 3, 1.0f, "positions with pad, no cache");
  /* the interpreter's rows by hand: ids 1 2 1 0 2 -> rows 1 2 1 3 4 (pad 1, offset 2) */
  const float *wte = (const float *)(t->blob + t->g->nodes[t->g->nodes[emb].inputs[0]].weight_offset);
  const tfx_node *pn = &t->g->nodes[t->g->nodes[t->g->output].inputs[1]];
  const float *table = (const float *)(t->blob + t->g->nodes[pn->inputs[0]].weight_offset);
  static const int32_t ids[5] = {1, 2, 1, 0, 2};
  static const int rows[5] = {1, 2, 1, 3, 4};
  float out[5 * 40];
  char err[256];
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_int_equal(tfx_interp_forward(it, ids, 5, out, err, sizeof err), 0);
  for (int r = 0; r < 5; r++)
    for (int c = 0; c < 40; c++)
      assert_true(fabsf(out[r * 40 + c] - (wte[ids[r] * 40 + c] + table[rows[r] * 40 + c])) <= 1e-6f);
  tfx_interp_free(it);
  tfx_node bad = *pn; /* pad tokens read row offset - 1: offset 0 has none */
  bad.pos_offset = 0;
  assert_int_equal(tfx_graph_add(t->g, &bad, err, sizeof err), -1);
  assert_non_null(strstr(err, "pad = 1 needs offset >= 1"));
  tfx_tg_free(t);
}

static void test_sinusoidal(void **state) {
  (void)state;
  static const int64_t widths[] = {24, 37, 8};
  static const double bases[] = {10000.0, 10000.0, 100.0};
  static const int calls[] = {200, 1, 1, 57, 1};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = tfx_tg_new("sinusoidal", 300, 17 + i);
    int x = tfx_tg_input_f32(t, widths[i]);
    tfx_node s = tfx_node_proto(TFX_OP_SINUSOIDAL, 1, (int[]){x});
    s.theta = bases[i];
    int pe = tfx_tg_add(t, &s);
    t->g->output = tfx_tg_op2(t, TFX_OP_ADD, self_attention(t, x, widths[i]), pe);
    assert_true(t->g->output >= 0);
    check_graph_calls(t, calls, 5, 1.0f, "sinusoidal + causal attention");
    tfx_tg_free(t);
  }
}

/* The interpreter's tables against the formulas, at pos > 0. */
static void test_position_tables_by_hand(void **state) {
  (void)state;
  const int64_t D = 6, S = 8;
  tfx_tg *t = tfx_tg_new("tables", S, 1);
  int x = tfx_tg_input_f32(t, D);
  int table = tfx_tg_param2(t, "wpe", S, D, 1.0f);
  tfx_node s = tfx_node_proto(TFX_OP_SINUSOIDAL, 1, (int[]){x});
  s.theta = 10000.0;
  int pe = tfx_tg_add(t, &s);
  int both = tfx_tg_op2(t, TFX_OP_SUB, pe, tfx_tg_op2(t, TFX_OP_POSITIONS, table, x));
  /* attention * 0 keeps the KV cache (pos advances) without changing values */
  int zero = tfx_tg_param1(t, "zero", D, 0.0f, 0.0f);
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, both, tfx_tg_op2(t, TFX_OP_MUL, self_attention(t, x, D), zero));
  assert_true(t->g->output >= 0);
  const float *wpe = (const float *)(t->blob + t->g->nodes[table].weight_offset);
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  float in[3 * 6] = {0}, out[3 * 6];
  char err[256];
  assert_int_equal(tfx_interp_forward(it, in, 2, out, err, sizeof err), 0);
  assert_int_equal(tfx_interp_forward(it, in, 3, out, err, sizeof err), 0); /* positions 2, 3, 4 */
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < D; c++) {
      double p = 2 + r, ang = p / pow(10000.0, (double)(2 * (c / 2)) / (double)D);
      double want = (c % 2 ? cos(ang) : sin(ang)) - wpe[(2 + r) * D + c];
      assert_true(fabs(out[r * D + c] - want) <= 1e-6);
    }
  tfx_interp_free(it);
  tfx_tg_free(t);
}

/* ---- mixture of experts ---- */

typedef struct moe_cfg {
  int64_t D, H, E;
  int k, gated, gate;
  double capacity;
  const char *name;
} moe_cfg;

/* x -> rmsnorm -> router logits -> route -> experts (-> + x) */
static tfx_tg *moe_graph(const moe_cfg *c, int output_route, int act) {
  tfx_tg *t = tfx_tg_new("moe", 32, 101 + (uint64_t)c->E * 7 + (uint64_t)c->k);
  int x = tfx_tg_input_f32(t, c->D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "norm", c->D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int f = tfx_tg_add(t, &nn);
  int logits = tfx_tg_op2(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "router", c->E, c->D, 0.6f));
  tfx_node r = tfx_node_proto(TFX_OP_MOE_ROUTE, 1, (int[]){logits});
  r.top_k = c->k;
  r.moe_gate = (tfx_moe_gate)c->gate;
  r.capacity = c->capacity;
  int route = tfx_tg_add(t, &r);
  if (output_route) {
    t->g->output = route;
    return t;
  }
  int w1 = param3(t, "w1", c->E, c->H, c->D, 0.3f);
  int h = tfx_tg_op3(t, TFX_OP_MOE_UP, f, route, w1);
  h = tfx_tg_op1(t, (tfx_op)act, h);
  if (c->gated)
    h = tfx_tg_op2(t, TFX_OP_MUL, h, tfx_tg_op3(t, TFX_OP_MOE_UP, f, route, param3(t, "w3", c->E, c->H, c->D, 0.3f)));
  int y = tfx_tg_op3(t, TFX_OP_MOE_DOWN, h, route, param3(t, "w2", c->E, c->D, c->H, 0.3f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, y);
  return t;
}

static const moe_cfg k_moe_cfgs[] = {
    {37, 43, 4, 2, 1, TFX_MOE_GATE_SOFTMAX_TOPK, 0.0, "moe E4 k2 swiglu"},
    {24, 16, 8, 2, 1, TFX_MOE_GATE_SOFTMAX_TOPK, 1.25, "moe E8 k2 capacity 1.25"},
    {20, 21, 6, 1, 0, TFX_MOE_GATE_SOFTMAX, 0.0, "moe E6 k1 (switch) ungated softmax"},
    {16, 9, 5, 3, 1, TFX_MOE_GATE_SOFTMAX, 0.5, "moe E5 k3 capacity 0.5 softmax"},
    {8, 8, 3, 3, 1, TFX_MOE_GATE_SOFTMAX_TOPK, 0.0, "moe E3 k3 (all experts)"},
};
#define N_MOE_CFGS (int)(sizeof k_moe_cfgs / sizeof k_moe_cfgs[0])

static void test_moe_route(void **state) {
  (void)state;
  for (int i = 0; i < N_MOE_CFGS; i++) {
    tfx_tg *t = moe_graph(&k_moe_cfgs[i], 1, 0);
    assert_true(t->g->output >= 0);
    char label[128];
    snprintf(label, sizeof label, "%s: route", k_moe_cfgs[i].name);
    check_graph_calls(t, k_calls, N_CALLS, 2.0f, label);
    tfx_tg_free(t);
  }
}

static void test_moe_layer(void **state) {
  (void)state;
  static const tfx_op acts[] = {TFX_OP_SILU, TFX_OP_SILU, TFX_OP_RELU, TFX_OP_GELU, TFX_OP_SIGMOID};
  for (int i = 0; i < N_MOE_CFGS; i++) {
    tfx_tg *t = moe_graph(&k_moe_cfgs[i], 0, acts[i]);
    assert_true(t->g->output >= 0);
    check_graph_calls(t, k_calls, N_CALLS, 2.0f, k_moe_cfgs[i].name);
    tfx_tg_free(t);
  }
}

/* The route of hand-made logits (the input is the logits, E = 4). */
static tfx_tg *route_graph(int k, int gate, double capacity) {
  tfx_tg *t = tfx_tg_new("route", 16, 1);
  int x = tfx_tg_input_f32(t, 4);
  tfx_node r = tfx_node_proto(TFX_OP_MOE_ROUTE, 1, (int[]){x});
  r.top_k = k;
  r.moe_gate = (tfx_moe_gate)gate;
  r.capacity = capacity;
  t->g->output = tfx_tg_add(t, &r);
  assert_true(t->g->output >= 0);
  return t;
}

/* Runs the interpreter and the JIT (-O3) on n rows of logits; both must give
 * want (2k columns) within 1e-6. */
static void check_route(tfx_tg *t, const float *logits, int n, const float *want, int k) {
  float got[16 * 8];
  char err[256];
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_int_equal(tfx_interp_forward(it, logits, n, got, err, sizeof err), 0);
  for (int i = 0; i < n * 2 * k; i++)
    if (!(fabs(got[i] - want[i]) <= 1e-6))
      fail_msg("interpreter route[%d][%d] = %g, expected %g", i / (2 * k), i % (2 * k), got[i], want[i]);
  tfx_interp_free(it);
  if (!t->g->arena_bytes) assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  tfx_model *m = tfx_tg_jit_model(t, 3);
  assert_non_null(m);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  memset(got, 0, sizeof got);
  assert_int_equal(tfx_forward_f32(s, logits, n, got), TFX_OK);
  for (int i = 0; i < n * 2 * k; i++)
    if (!(fabs(got[i] - want[i]) <= 1e-6))
      fail_msg("jit route[%d][%d] = %g, expected %g", i / (2 * k), i % (2 * k), got[i], want[i]);
  tfx_session_free(s);
  tfx_model_close(m);
}

static void test_moe_route_by_hand(void **state) {
  (void)state;
  const double e1 = exp(-1.0), e2 = exp(-2.0);
  static const float logits[4 * 4] = {
      1, 3, 3, 0, /* tie between experts 1 and 2: 1 first */
      5, 5, 5, 5, /* all equal: 0, 1 */
      0, 1, 2, 3, /* 3, 2 */
      2, 0, 1, 2, /* tie between 0 and 3: 0 first */
  };
  /* top-2, softmax over the two chosen */
  tfx_tg *t = route_graph(2, TFX_MOE_GATE_SOFTMAX_TOPK, 0.0);
  float want[4 * 4] = {1, 2, 0.5f, 0.5f, 0, 1, 0.5f, 0.5f, 3, 2, (float)(1 / (1 + e1)), (float)(e1 / (1 + e1)),
                       0, 3, 0.5f, 0.5f};
  check_route(t, logits, 4, want, 2);
  tfx_tg_free(t);

  /* top-2, softmax over all four, not renormalized */
  t = route_graph(2, TFX_MOE_GATE_SOFTMAX, 0.0);
  double z0 = exp(-2.0) + 1 + 1 + exp(-3.0), z2 = exp(-3.0) + exp(-2.0) + exp(-1.0) + 1, z3 = 1 + e2 + e1 + 1;
  float want2[4 * 4] = {1, 2, (float)(1 / z0), (float)(1 / z0),  0, 1, 0.25f,           0.25f,
                        3, 2, (float)(1 / z2), (float)(e1 / z2), 0, 3, (float)(1 / z3), (float)(1 / z3)};
  check_route(t, logits, 4, want2, 2);
  tfx_tg_free(t);

  /* capacity 0.5: cap = ceil(0.5 * 4 * 2 / 4) = 1 token per expert, in token
   * order: row 0 takes 1 and 2; row 1 wants 0, 1 (1 is full); row 2 wants 3, 2
   * (2 is full); row 3 wants 0, 3 (both full). Kept weights are not renormalized. */
  t = route_graph(2, TFX_MOE_GATE_SOFTMAX_TOPK, 0.5);
  float want3[4 * 4] = {1, 2, 0.5f, 0.5f, 0, -1, 0.5f, 0, 3, -1, (float)(1 / (1 + e1)), 0, -1, -1, 0, 0};
  check_route(t, logits, 4, want3, 2);
  /* the same model on one row (a decode call): cap = ceil(0.25) = 1, no drop */
  float want4[4] = {0, 3, 0.5f, 0.5f};
  check_route(t, logits + 12, 1, want4, 2);
  tfx_tg_free(t);

  /* top-1 with capacity 1.0: cap = 1; experts 1, 0, 3 are taken, row 3 (0) is dropped */
  t = route_graph(1, TFX_MOE_GATE_SOFTMAX, 1.0);
  float want5[4 * 2] = {1, (float)(1 / z0), 0, 0.25f, 3, (float)(1 / z2), -1, 0};
  check_route(t, logits, 4, want5, 1);
  tfx_tg_free(t);
}

/* moe_up / moe_down on a hand-made route (input = [x | route]) are checked
 * by the layer tests; here: empty slots give zeros in moe_up and nothing in
 * moe_down. */
static void test_moe_empty_slots(void **state) {
  (void)state;
  tfx_tg *t = route_graph(2, TFX_MOE_GATE_SOFTMAX_TOPK, 0.5);
  /* x = the logits themselves (D = 4), two experts' weights of 3 x 4 */
  int route = t->g->output;
  int w = param3(t, "w", 4, 3, 4, 1.0f);
  int up = tfx_tg_op3(t, TFX_OP_MOE_UP, t->g->input, route, w);
  t->g->output = up;
  assert_true(up >= 0);
  static const float logits[2 * 4] = {1, 3, 3, 0, 0, 1, 2, 3};
  /* cap = ceil(0.5 * 2 * 2 / 4) = 1: row 0 -> (1, 2), row 1 -> (3, 2 dropped) */
  float ref[2 * 6];
  char err[256];
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_int_equal(tfx_interp_forward(it, logits, 2, ref, err, sizeof err), 0);
  tfx_interp_free(it);
  const float *wv = (const float *)(t->blob + t->g->nodes[w].weight_offset);
  for (int s = 0; s < 2; s++)
    for (int j = 0; j < 3; j++) {
      int e = s == 0 ? 1 : 2;
      double dot = 0;
      for (int i = 0; i < 4; i++) dot += logits[i] * wv[(e * 3 + j) * 4 + i];
      assert_true(fabs(ref[s * 3 + j] - dot) <= 1e-5);
    }
  for (int j = 0; j < 3; j++) assert_true(ref[6 + 3 + j] == 0.0f); /* row 1, slot 1 is empty */
  static const int calls[] = {2, 1, 7, 16};
  check_graph_calls(t, calls, 4, 3.0f, "moe_up with empty slots");
  tfx_tg_free(t);
}

/* ---- type errors ---- */

static void test_type_errors(void **state) {
  (void)state;
  char err[512];
  tfx_tg *t = tfx_tg_new("errors", 32, 1);
  int x = tfx_tg_input_f32(t, 8);
  int short_table = tfx_tg_param2(t, "wpe", 31, 8, 1.0f);
  tfx_node n = tfx_node_proto(TFX_OP_POSITIONS, 2, (int[]){short_table, x});
  assert_int_equal(tfx_graph_add(t->g, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "max_pos >= max_seq"));
  int wide_table = tfx_tg_param2(t, "wpe2", 40, 9, 1.0f);
  n = tfx_node_proto(TFX_OP_POSITIONS, 2, (int[]){wide_table, x});
  assert_int_equal(tfx_graph_add(t->g, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "positions: x must be"));

  n = tfx_node_proto(TFX_OP_MOE_ROUTE, 1, (int[]){x});
  n.top_k = 9;
  assert_int_equal(tfx_graph_add(t->g, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "top_k = 9 must be in 1..8"));
  n.top_k = 2;
  n.capacity = -1;
  assert_int_equal(tfx_graph_add(t->g, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "capacity"));
  n.capacity = 0;
  int route = tfx_graph_add(t->g, &n, err, sizeof err);
  assert_true(route >= 0);
  int w = param3(t, "w", 8, 5, 7, 1.0f); /* K = 7 does not match x's 8 */
  n = tfx_node_proto(TFX_OP_MOE_UP, 3, (int[]){x, route, w});
  assert_int_equal(tfx_graph_add(t->g, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "moe_up: x is f32[T, 8], expected f32[T, 7]"));
  n = tfx_node_proto(TFX_OP_MOE_DOWN, 3, (int[]){x, x, w});
  assert_int_equal(tfx_graph_add(t->g, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "moe_down"));
  n = tfx_node_proto(TFX_OP_MOE_UP, 3, (int[]){x, route, short_table});
  assert_int_equal(tfx_graph_add(t->g, &n, err, sizeof err), -1);
  assert_non_null(strstr(err, "f32[E, N, K]"));

  /* the printer shows the attributes */
  n = tfx_node_proto(TFX_OP_MOE_ROUTE, 1, (int[]){x});
  n.top_k = 2;
  n.moe_gate = TFX_MOE_GATE_SOFTMAX;
  n.capacity = 1.25;
  assert_true(tfx_graph_add(t->g, &n, err, sizeof err) >= 0);
  n = tfx_node_proto(TFX_OP_SINUSOIDAL, 1, (int[]){x});
  n.theta = 500;
  t->g->output = tfx_graph_add(t->g, &n, err, sizeof err);
  assert_true(t->g->output >= 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tfx_print_graph(t->g, f);
  fclose(f);
  assert_non_null(strstr(buf, "= moe_route(%0) {top_k = 2, gate = softmax, capacity = 1.25} : f32[T, 4]"));
  assert_non_null(strstr(buf, "= moe_route(%0) {top_k = 2, gate = softmax_topk} : f32[T, 4]"));
  assert_non_null(strstr(buf, "= sinusoidal(%0) {base = 500} : f32[T, 8]"));
  free(buf);
  tfx_tg_free(t);
}

/* ---- the builtins, from source through the JIT API ---- */

#define WEIGHTS "random:5"

typedef struct src_case {
  const char *name;
  const char *params;
  const char *body; /* statements of forward(x : f32[T, 24]) ending in a return */
  int out_cols;
  int causal;
} src_case;

#define ATT_PARAMS "param wq : f32[24, 24]\nparam wk : f32[24, 24]\nparam wv : f32[24, 24]\nparam wo : f32[24, 24]\n"
#define ATT "attention(x, wq, wk, wv, wo, heads = 2, mask = causal)"
#define GLU_PARAMS "param w1 : f32[40, 24]\nparam w3 : f32[40, 24]\nparam w2 : f32[24, 40]\n"
#define MOE_PARAMS                                                                                                     \
  "param router : f32[6, 24]\nparam e1 : f32[6, 20, 24]\nparam e3 : f32[6, 20, 24]\nparam e2 : f32[6, 24, 20]\n"

static const src_case k_src_cases[] = {
    {"sigmoid", "", "return sigmoid(x)", 24, 0},
    {"glu", GLU_PARAMS, "return linear(glu(x, w1, w3), w2)", 24, 0},
    {"reglu", GLU_PARAMS, "return linear(glu(x, w1, w3, act = relu), w2)", 24, 0},
    {"geglu", GLU_PARAMS, "return linear(glu(x, w1, w3, act = gelu), w2)", 24, 0},
    {"geglu_tanh", GLU_PARAMS, "return linear(glu(x, w1, w3, act = gelu_tanh), w2)", 24, 0},
    {"swiglu", GLU_PARAMS, "return linear(glu(x, w1, w3, act = silu), w2)", 24, 0},
    {"bilinear", GLU_PARAMS, "return linear(glu(x, w1, w3, act = none), w2)", 24, 0},
    {"glu_bias", GLU_PARAMS "param b1 : f32[40]\nparam b3 : f32[40]\n",
     "return glu(x, w1, w3, act = silu, b1 = b1, b3 = b3)", 40, 0},
    {"positions", ATT_PARAMS "param wpe : f32[40, 24]\n", "return " ATT " + positions(wpe, x)", 24, 1},
    {"sinusoidal", ATT_PARAMS, "return " ATT " + sinusoidal(x)", 24, 1},
    {"sinusoidal_base", ATT_PARAMS, "return " ATT " + sinusoidal(x, base = 100)", 24, 1},
    {"moe_swiglu", MOE_PARAMS, "return x + moe(x, router, e1, e2, e3, top_k = 2)", 24, 0},
    {"moe_causal", ATT_PARAMS MOE_PARAMS,
     "h = x + " ATT "\n  return h + moe(h, router, e1, e2, e3, top_k = 2, experts = 6)", 24, 1},
    {"moe_switch", MOE_PARAMS, "return moe(x, router, e1, e2, top_k = 1, act = relu, gate = softmax)", 24, 0},
    {"moe_capacity", MOE_PARAMS, "return moe(x, router, e1, e2, e3, top_k = 2, capacity = 1.0)", 24, 0},
    {"moe_shared", MOE_PARAMS "param s1 : f32[12, 24]\nparam s3 : f32[12, 24]\nparam s2 : f32[24, 12]\n",
     "return moe(x, router, e1, e2, e3, top_k = 3, act = gelu, gate = softmax, shared_w1 = s1, shared_w2 = s2, "
     "shared_w3 = s3)",
     24, 0},
    {"moe_shared_ungated", MOE_PARAMS "param s1 : f32[12, 24]\nparam s2 : f32[24, 12]\n",
     "return moe(x, router, e1, e2, top_k = 2, act = none, shared_w1 = s1, shared_w2 = s2)", 24, 0},
};

static char *program(const src_case *c, char *src, size_t len) {
  snprintf(src, len, "model ffn_%s\nconst max_seq = 32\n%s\nforward(x : f32[T, 24]) -> f32[T, %d] {\n  %s\n}\n",
           c->name, c->params, c->out_cols, c->body);
  return src;
}

static void run_src_case(const src_case *c, int opt) {
  char src[4096], label[96];
  program(c, src, sizeof src);
  snprintf(label, sizeof label, "%s -O%d", c->name, opt);
  enum { T = 9, D = 24 };
  float x[T * D];
  uint64_t r = 12345;
  for (int i = 0; i < T * D; i++) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    x[i] = (float)((r >> 40) / (double)(1 << 24)) * 4.0f - 2.0f;
  }
  size_t out_n = (size_t)T * c->out_cols;
  float *ref = calloc(out_n, sizeof *ref), *got = calloc(out_n, sizeof *got);
  tfx_build_options bo = {.weights = WEIGHTS, .opt_level = 0};
  tfx_build b;
  if (tfx_build_source("ffn.tfx", src, &bo, &b)) fail_msg("%s: does not compile:\n%s", label, src);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  char err[256];
  if (tfx_interp_forward(it, x, T, ref, err, sizeof err)) fail_msg("%s: interpreter: %s", label, err);
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = opt;
  co.weights = WEIGHTS;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("ffn.tfx", src, &co, &m), TFX_OK);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  assert_int_equal(tfx_forward_f32(s, x, T, got), TFX_OK);
  tfx_tg_check_close(ref, got, out_n, (size_t)c->out_cols, label, 0);
  if (c->causal) {
    tfx_session_reset(s);
    for (int t = 0; t < T; t++) assert_int_equal(tfx_forward_f32(s, x + t * D, 1, got + t * c->out_cols), TFX_OK);
    tfx_tg_check_close(ref, got, out_n, (size_t)c->out_cols, label, 1);
  }
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_interp_free(it);
  tfx_build_free(&b);
  free(ref);
  free(got);
}

static void test_builtins_from_source(void **state) {
  (void)state;
  /* the kernels are checked at -O0 and -O3 above; here the lowering, each
   * case at one level (alternating) to keep the suite fast */
  for (size_t i = 0; i < sizeof k_src_cases / sizeof k_src_cases[0]; i++) run_src_case(&k_src_cases[i], i % 2 ? 3 : 0);
}

/* The graph glu and moe lower to. */
static void test_lowering_shape(void **state) {
  (void)state;
  static const char src[] = "model m\nconst max_seq = 8\n" MOE_PARAMS "param s1 : f32[12, 24]\nparam s2 : f32[24, 12]\n"
                            "forward(x : f32[T, 24]) -> f32[T, 24] {\n"
                            "  return moe(x, router, e1, e2, e3, top_k = 2, capacity = 1.5, shared_w1 = s1, "
                            "shared_w2 = s2)\n}\n";
  tfx_build_options bo = {.no_weights = 1};
  tfx_build b;
  assert_int_equal(tfx_build_source("m.tfx", src, &bo, &b), 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tfx_print_graph(b.graph, f);
  fclose(f);
  assert_non_null(strstr(buf, "moe_route("));
  assert_non_null(strstr(buf, "{top_k = 2, gate = softmax_topk, capacity = 1.5} : f32[T, 4]"));
  assert_non_null(strstr(buf, "moe_up(")); /* x, route, e1 and x, route, e3 */
  assert_non_null(strstr(buf, "silu("));
  assert_non_null(strstr(buf, "moe_down("));
  int ups = 0;
  for (const char *p = buf; (p = strstr(p, "moe_up(")); p++) ups++;
  assert_int_equal(ups, 2);
  free(buf);
  tfx_build_free(&b);
}

/* Source errors: the message and where it points. */
static void expect_error(const char *body, const char *params, const char *want) {
  char src[2048];
  snprintf(src, sizeof src, "model m\nconst max_seq = 16\n%s\nforward(x : f32[T, 24]) -> f32[T, 24] {\n  %s\n}\n",
           params, body);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tfx_build_options bo = {.no_weights = 1, .diag = f};
  tfx_build b;
  int rc = tfx_build_source("bad.tfx", src, &bo, &b);
  fclose(f);
  if (rc == 0) {
    tfx_build_free(&b);
    fail_msg("expected an error containing '%s' for:\n%s", want, src);
  }
  if (!strstr(buf, want)) fail_msg("expected '%s' in:\n%s", want, buf);
  assert_non_null(strstr(buf, "bad.tfx:"));
  free(buf);
}

static void test_source_errors(void **state) {
  (void)state;
  expect_error("return moe(x, router, e1, e2, e3, top_k = 7)", MOE_PARAMS, "top_k = 7 must be in 1..6");
  expect_error("return moe(x, router, e1, e2, e3)", MOE_PARAMS, "missing keyword 'top_k' of moe");
  expect_error("return moe(x, router, e1, e1, e3, top_k = 2)", MOE_PARAMS,
               "moe: w2 is f32[6, 20, 24], expected f32[6, 24, 20]");
  expect_error("return moe(x, router, e1, e2, e3, top_k = 2, experts = 8)", MOE_PARAMS,
               "experts = 8 but the router f32[6, 24] has 6 rows");
  expect_error("return moe(x, router, e1, e2, e3, top_k = 2, capacity = 0)", MOE_PARAMS, "moe's capacity must be > 0");
  expect_error("return moe(x, router, e1, e2, e3, top_k = 2, act = tanh)", MOE_PARAMS,
               "bad value 'tanh' for moe's act");
  expect_error("return moe(x, router, e1, e2, e3, top_k = 2, shared_w1 = router)", MOE_PARAMS,
               "shared experts need both shared_w1 and shared_w2");
  expect_error("return positions(wpe, x)", "param wpe : f32[15, 24]", "need max_pos >= max_seq");
  expect_error("return positions(wpe, x, offset = 2, pad = 1)", "param wpe : f32[40, 24]",
               "positions: pad = 1 needs x to be the token ids i32[T], got f32[T, 24]");
  expect_error("return positions(wpe, x, pad = -1)", "param wpe : f32[40, 24]", "positions's pad");
  expect_error("return glu(x, w1, w3, act = swish)", GLU_PARAMS, "bad value 'swish' for glu's act");
  expect_error("return glu(x, w1, w2)", GLU_PARAMS, "glu: w1 is f32[40, 24] but w3 is f32[24, 40]");
  expect_error("return x + sinusoidal(x, base = -1)", "", "sinusoidal's base must be > 0");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sigmoid),
      cmocka_unit_test(test_positions),
      cmocka_unit_test(test_positions_pad),
      cmocka_unit_test(test_sinusoidal),
      cmocka_unit_test(test_position_tables_by_hand),
      cmocka_unit_test(test_moe_route),
      cmocka_unit_test(test_moe_layer),
      cmocka_unit_test(test_moe_route_by_hand),
      cmocka_unit_test(test_moe_empty_slots),
      cmocka_unit_test(test_type_errors),
      cmocka_unit_test(test_builtins_from_source),
      cmocka_unit_test(test_lowering_shape),
      cmocka_unit_test(test_source_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
