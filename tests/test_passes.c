/* tests/test_passes.c — memory planning and the pass pipeline: no two values
 * live at the same time share bytes (operands of a node included), slots are
 * 64-byte aligned and inside the arena, reuse makes a chain's arena smaller
 * than the naive sum, and causal attention gets its KV cache slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../ir/ir.h"
#include "../passes/passes.h"

static int gadd(tfx_graph *g, tfx_node p) {
  char err[256] = "";
  int id = tfx_graph_add(g, &p, err, sizeof err);
  if (id < 0) fail_msg("tfx_graph_add: %s", err);
  return id;
}

static int op1(tfx_graph *g, tfx_op o, int a) { return gadd(g, tfx_node_proto(o, 1, &a)); }
static int op2(tfx_graph *g, tfx_op o, int a, int b) { return gadd(g, tfx_node_proto(o, 2, (int[]){a, b})); }

static int p2(tfx_graph *g, const char *name, int64_t a, int64_t b) {
  return tfx_graph_add_param(g, name, tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a, b}));
}

static int p1(tfx_graph *g, const char *name, int64_t a) {
  return tfx_graph_add_param(g, name, tfx_type_make(TFX_DT_F32, 1, (int64_t[]){a}));
}

static int input(tfx_graph *g, int64_t cols) {
  return tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, cols}));
}

/* A small LLaMA-style decoder on f32 input: `layers` layers, each with a
 * causal GQA attention (H = 4, G = 2, d = 8) and a SwiGLU FFN. */
static tfx_graph *decoder(int layers, int64_t max_seq) {
  tfx_graph *g = tfx_graph_new("dec", max_seq);
  const int D = 32, H = 4, G = 2, HD = 8, F = 48;
  int x = input(g, D);
  char n[32];
  for (int l = 0; l < layers; l++) {
    snprintf(n, sizeof n, "l%d.an", l);
    int an = p1(g, n, D);
    tfx_node p = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, an});
    p.eps = 1e-5;
    int a = gadd(g, p);
    snprintf(n, sizeof n, "l%d.wq", l);
    int q = op2(g, TFX_OP_LINEAR, a, p2(g, n, H * HD, D));
    snprintf(n, sizeof n, "l%d.wk", l);
    int k = op2(g, TFX_OP_LINEAR, a, p2(g, n, G * HD, D));
    snprintf(n, sizeof n, "l%d.wv", l);
    int v = op2(g, TFX_OP_LINEAR, a, p2(g, n, G * HD, D));
    p = tfx_node_proto(TFX_OP_ROPE, 1, &q);
    p.heads = H, p.head_dim = HD, p.rotary_dim = HD, p.theta = 10000;
    q = gadd(g, p);
    p = tfx_node_proto(TFX_OP_ROPE, 1, &k);
    p.heads = G, p.head_dim = HD, p.rotary_dim = HD, p.theta = 10000;
    k = gadd(g, p);
    p = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
    p.heads = H, p.kv_heads = G, p.head_dim = HD, p.mask = TFX_MASK_CAUSAL;
    int att = gadd(g, p);
    snprintf(n, sizeof n, "l%d.wo", l);
    int h = op2(g, TFX_OP_ADD, x, op2(g, TFX_OP_LINEAR, att, p2(g, n, D, H * HD)));
    snprintf(n, sizeof n, "l%d.w1", l);
    int g1 = op1(g, TFX_OP_SILU, op2(g, TFX_OP_LINEAR, h, p2(g, n, F, D)));
    snprintf(n, sizeof n, "l%d.w3", l);
    int up = op2(g, TFX_OP_LINEAR, h, p2(g, n, F, D));
    snprintf(n, sizeof n, "l%d.w2", l);
    x = op2(g, TFX_OP_ADD, h, op2(g, TFX_OP_LINEAR, op2(g, TFX_OP_MUL, g1, up), p2(g, n, D, F)));
  }
  g->output = op1(g, TFX_OP_RELU, x);
  return g;
}

/* May node j (elementwise, or a fused linear's residual) write over its
 * operand i in place? */
static int in_place_ok(const tfx_graph *g, int j, int i) {
  const tfx_node *n = &g->nodes[j];
  int reads = 0;
  for (int k = 0; k < n->n_inputs; k++) reads += n->inputs[k] == i;
  switch (n->op) {
  case TFX_OP_ADD:
  case TFX_OP_SUB:
  case TFX_OP_MUL:
  case TFX_OP_SILU:
  case TFX_OP_GELU:
  case TFX_OP_RELU: return reads > 0;
  case TFX_OP_FUSED_LINEAR: {
    int r = tfx_fl_operand(n, TFX_FL_RESIDUAL);
    return r >= 0 && n->inputs[r] == i && reads == 1;
  }
  default: return 0;
  }
}

/* Independent check of a plan: liveness recomputed here (a slice's readers
 * keep its producer live); any two values whose lifetimes intersect (one is
 * defined while the other is live) have disjoint byte ranges, except a value
 * written in place over an operand that dies at it (same slot, same size);
 * alignment; bounds; no slot for input/params/output/slices. */
static void check_plan(const tfx_graph *g) {
  int nn = g->n_nodes;
  int *last = malloc((size_t)nn * sizeof *last);
  for (int i = 0; i < nn; i++) last[i] = i;
  for (int i = 0; i < nn; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++) {
      int v = g->nodes[i].inputs[j];
      last[v] = i;
      if (g->nodes[v].op == TFX_OP_SLICE) last[g->nodes[v].inputs[0]] = i;
    }
  for (int i = 0; i < nn; i++) {
    const tfx_node *a = &g->nodes[i];
    int no_slot = a->op == TFX_OP_INPUT || a->op == TFX_OP_PARAM || a->op == TFX_OP_SLICE || i == g->output;
    if (no_slot) {
      assert_int_equal(a->arena_offset, -1);
      continue;
    }
    assert_true(a->arena_offset >= 0);
    assert_int_equal(a->arena_offset % 64, 0);
    int64_t asz = tfx_type_bytes(&a->type, g->max_seq);
    assert_true(a->arena_offset + asz <= g->arena_bytes);
    for (int j = i + 1; j < nn && j <= last[i]; j++) { /* j is defined while i is live */
      const tfx_node *b = &g->nodes[j];
      if (b->arena_offset < 0) continue;
      int64_t bsz = tfx_type_bytes(&b->type, g->max_seq);
      int disjoint = a->arena_offset + asz <= b->arena_offset || b->arena_offset + bsz <= a->arena_offset;
      int in_place = j == last[i] && a->arena_offset == b->arena_offset && asz == bsz && in_place_ok(g, j, i);
      if (!disjoint && !in_place)
        fail_msg("%%%d [%lld, +%lld) and %%%d [%lld, +%lld) are live together but overlap", i,
                 (long long)a->arena_offset, (long long)asz, j, (long long)b->arena_offset, (long long)bsz);
    }
  }
  free(last);
}

static void test_chain_reuses_memory(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("chain", 100);
  int x = input(g, 10); /* 100 * 10 * 4 = 4000 bytes, slot 4032 */
  for (int i = 0; i < 8; i++) x = op1(g, TFX_OP_RELU, x);
  g->output = x;
  char err[256] = "";
  assert_int_equal(tfx_pass_plan_memory(g, err, sizeof err), 0);
  check_plan(g);
  /* 7 intermediates, but a chain needs only two alternating slots */
  assert_int_equal(g->arena_bytes, 2 * 4032);
  int64_t naive = 0;
  for (int i = 1; i < 8; i++) naive += 4032;
  assert_true(g->arena_bytes < naive);
  assert_int_equal(g->nodes[1].arena_offset, 0);
  assert_int_equal(g->nodes[2].arena_offset, 4032);
  assert_int_equal(g->nodes[3].arena_offset, 0); /* first fit: %1's slot is free again */
  assert_int_equal(g->kv_bytes, 0);
  /* planning twice gives the same plan */
  int64_t before = g->arena_bytes;
  assert_int_equal(tfx_pass_plan_memory(g, err, sizeof err), 0);
  assert_int_equal(g->arena_bytes, before);
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0);
  tfx_graph_free(g);
}

/* A value never shares memory with the operands of its node (no in place),
 * and a long-lived value blocks its range. */
static void test_no_in_place_and_long_lived(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("diamond", 16);
  int x = input(g, 16);
  int a = op1(g, TFX_OP_RELU, x); /* lives until the end */
  int b = op1(g, TFX_OP_SILU, a); /* b, c, d each die at the next node */
  int c = op1(g, TFX_OP_GELU, b);
  int d = op2(g, TFX_OP_MUL, c, c);
  int e = op2(g, TFX_OP_ADD, d, a);
  g->output = op2(g, TFX_OP_SUB, e, a);
  char err[256];
  assert_int_equal(tfx_pass_plan_memory(g, err, sizeof err), 0);
  check_plan(g);
  for (int i = 0; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++) {
      const tfx_node *in = &g->nodes[g->nodes[i].inputs[j]];
      if (in->arena_offset >= 0 && g->nodes[i].arena_offset >= 0)
        assert_int_not_equal(in->arena_offset, g->nodes[i].arena_offset);
    }
  /* a (1024 bytes) + two alternating slots for b..e */
  assert_int_equal(g->arena_bytes, 3 * 1024);
  tfx_graph_free(g);
}

static void test_decoder_plan_and_kv(void **state) {
  (void)state;
  tfx_graph *g = decoder(3, 40);
  char err[256] = "";
  if (tfx_run_pipeline(g, 2, err, sizeof err)) fail_msg("pipeline: %s", err);
  check_plan(g);
  /* each causal attention: K then V, max_seq * G * d * 4 = 40 * 16 * 4 = 2560 bytes each */
  int seen = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op == TFX_OP_ATTENTION) {
      assert_int_equal(n->kv_offset, (int64_t)seen * 2 * 2560);
      assert_int_equal(n->kv_offset % 64, 0);
      seen++;
    } else {
      assert_int_equal(n->kv_offset, -1);
    }
  }
  assert_int_equal(seen, 3);
  assert_int_equal(g->kv_bytes, 3 * 2 * 2560);
  int64_t naive = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].arena_offset >= 0) naive += tfx_type_bytes(&g->nodes[i].type, g->max_seq);
  assert_true(g->arena_bytes > 0 && g->arena_bytes < naive);
  /* the planned graph still verifies (offsets inside arena and kv) */
  if (tfx_verify(g, 0, err, sizeof err)) fail_msg("verify after planning: %s", err);
  /* non-causal attention keeps nothing */
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_ATTENTION) g->nodes[i].mask = TFX_MASK_NONE;
  assert_int_equal(tfx_pass_plan_memory(g, err, sizeof err), 0);
  assert_int_equal(g->kv_bytes, 0);
  for (int i = 0; i < g->n_nodes; i++) assert_int_equal(g->nodes[i].kv_offset, -1);
  tfx_graph_free(g);
}

/* Odd KV sizes: each node's slot starts 64-aligned and V follows K directly. */
static void test_kv_alignment(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("odd", 3);
  int x = input(g, 6);
  int att = -1;
  for (int l = 0; l < 2; l++) {
    tfx_node p = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){x, x, x});
    p.heads = 2, p.kv_heads = 2, p.head_dim = 3, p.mask = TFX_MASK_CAUSAL;
    att = gadd(g, p);
    x = att;
  }
  g->output = att;
  char err[256];
  assert_int_equal(tfx_run_pipeline(g, 0, err, sizeof err), 0);
  /* 3 * 6 * 4 = 72 bytes each of K and V = 144, next node at 192 */
  assert_int_equal(g->nodes[1].kv_offset, 0);
  assert_int_equal(g->nodes[2].kv_offset, 192);
  assert_true(g->kv_bytes >= 192 + 144);
  assert_int_equal(g->kv_bytes % 64, 0);
  tfx_graph_free(g);
}

static void test_pipeline_rejects_bad_graph(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("bad", 8);
  int x = input(g, 4);
  op1(g, TFX_OP_RELU, x); /* no output set */
  char err[256] = "";
  assert_int_equal(tfx_run_pipeline(g, 1, err, sizeof err), -1);
  assert_non_null(strstr(err, "output"));
  g->output = 1;
  assert_int_equal(tfx_run_pipeline(g, 7, err, sizeof err), -1);
  assert_non_null(strstr(err, "-O7"));
  assert_int_equal(tfx_run_pipeline(g, 3, err, sizeof err), 0);
  assert_int_equal(g->arena_bytes, 0); /* the only value is the output */
  tfx_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_reuses_memory),        cmocka_unit_test(test_no_in_place_and_long_lived),
      cmocka_unit_test(test_decoder_plan_and_kv),        cmocka_unit_test(test_kv_alignment),
      cmocka_unit_test(test_pipeline_rejects_bad_graph),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
