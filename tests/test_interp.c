/* tests/test_interp.c — the reference interpreter: hand-checkable cases per op,
 * KV-cache behaviour (decode equals prefill), errors, and the real stories260K
 * model against llama2.c's recorded logits and greedy tokens. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../frontend/weights.h"
#include "../ir/ir.h"

/* ---- helpers: a graph with a hand-filled weights blob ---- */

typedef struct {
  tfx_graph *g;
  uint8_t *blob;
  int64_t used, cap;
} model;

static model model_new(int64_t max_seq) {
  model m = {tfx_graph_new("t", max_seq), NULL, 0, 1 << 20};
  m.blob = aligned_alloc(64, (size_t)m.cap);
  assert_non_null(m.g);
  assert_non_null(m.blob);
  return m;
}

static void model_free(model *m) {
  tfx_graph_free(m->g);
  free(m->blob);
}

static int param(model *m, const char *name, int rank, int64_t d0, int64_t d1, const float *data) {
  int64_t dims[2] = {d0, d1};
  int id = tfx_graph_add_param(m->g, name, tfx_type_make(TFX_DT_F32, rank, dims));
  assert_true(id >= 0);
  int64_t bytes = tfx_type_bytes(&m->g->nodes[id].type, 1);
  assert_true(m->used + bytes <= m->cap);
  m->g->nodes[id].weight_offset = m->used;
  memcpy(m->blob + m->used, data, (size_t)bytes);
  m->used += (bytes + 63) / 64 * 64;
  m->g->weights_bytes = m->used;
  return id;
}

static int input_f32(model *m, int64_t cols) {
  return tfx_graph_add_input(m->g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, cols}));
}

static int add_node(model *m, tfx_node *p) {
  char err[256] = "";
  int id = tfx_graph_add(m->g, p, err, sizeof err);
  if (id < 0) fail_msg("tfx_graph_add: %s", err);
  return id;
}

static int op(model *m, tfx_op o, int n, int a, int b, int c) {
  tfx_node p = tfx_node_proto(o, n, (int[]){a, b, c});
  return add_node(m, &p);
}

static int rope(model *m, int x, int heads, int head_dim, int rotary_dim, double theta, tfx_rope_style style) {
  tfx_node p = tfx_node_proto(TFX_OP_ROPE, 1, &x);
  p.heads = heads, p.head_dim = head_dim, p.rotary_dim = rotary_dim, p.theta = theta, p.rope_style = style;
  return add_node(m, &p);
}

static int attention(model *m, int q, int k, int v, int heads, int kv_heads, int head_dim, tfx_mask_kind mask) {
  tfx_node p = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  p.heads = heads, p.kv_heads = kv_heads, p.head_dim = head_dim, p.mask = mask;
  return add_node(m, &p);
}

static int norm(model *m, tfx_op o, int x, int g, int b, double eps) {
  tfx_node p = tfx_node_proto(o, o == TFX_OP_LAYERNORM ? 3 : 2, (int[]){x, g, b});
  p.eps = eps;
  return add_node(m, &p);
}

/* runs one forward, failing the test on error */
static void run(tfx_interp *it, const void *in, int64_t n, float *out) {
  char err[256] = "";
  if (tfx_interp_forward(it, in, n, out, err, sizeof err)) fail_msg("forward: %s", err);
}

static void expect_near(const float *got, const float *want, int n, double tol) {
  for (int i = 0; i < n; i++)
    if (!(fabs((double)got[i] - want[i]) <= tol))
      fail_msg("element %d: got %.9g, want %.9g (tolerance %g)", i, got[i], want[i], tol);
}

/* ---- per-op cases (tolerance 1e-6 unless stated) ---- */

static void test_linear_2x3(void **state) {
  (void)state;
  model m = model_new(8);
  int x = input_f32(&m, 3);
  int w = param(&m, "w", 2, 2, 3, (float[]){1, 0, -1, 0.5f, 0.5f, 0.5f});
  int b = param(&m, "b", 1, 2, 0, (float[]){0.1f, -0.2f});
  m.g->output = op(&m, TFX_OP_LINEAR, 3, x, w, b);
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  float out[4];
  run(it, (float[]){1, 2, 3, 4, 5, 6}, 2, out);
  expect_near(out, (float[]){-1.9f, 2.8f, -1.9f, 7.3f}, 4, 1e-6);
  tfx_interp_free(it);
  model_free(&m);
}

static void test_matmul_and_binary(void **state) {
  (void)state;
  model m = model_new(8);
  int x = input_f32(&m, 2);
  int b = param(&m, "b", 2, 2, 3, (float[]){1, 2, 3, 4, 5, 6});
  int row = param(&m, "row", 1, 3, 0, (float[]){10, 20, 30});
  int mm = op(&m, TFX_OP_MATMUL, 2, x, b, 0);      /* [T, 3] */
  int add = op(&m, TFX_OP_ADD, 2, mm, row, 0);     /* broadcast row */
  int sub = op(&m, TFX_OP_SUB, 2, add, mm, 0);     /* = row on every row */
  int mul = op(&m, TFX_OP_MUL, 2, sub, row, 0);    /* = row^2 */
  m.g->output = op(&m, TFX_OP_ADD, 2, mul, mm, 0); /* row^2 + x b */
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  float out[6];
  run(it, (float[]){1, 0, 1, 1}, 2, out);
  /* x b = [[1,2,3],[5,7,9]] */
  expect_near(out, (float[]){101, 402, 903, 105, 407, 909}, 6, 1e-4);
  tfx_interp_free(it);
  model_free(&m);
}

static void test_norms(void **state) {
  (void)state;
  model m = model_new(8);
  int x = input_f32(&m, 4);
  int g = param(&m, "g", 1, 4, 0, (float[]){1, 1, 1, 2});
  int one = param(&m, "one", 1, 4, 0, (float[]){1, 1, 1, 1});
  int half = param(&m, "half", 1, 4, 0, (float[]){0.5f, 0.5f, 0.5f, 0.5f});
  int rms = norm(&m, TFX_OP_RMSNORM, x, g, 0, 0.0);
  int ln = norm(&m, TFX_OP_LAYERNORM, x, one, half, 0.0);
  m.g->output = op(&m, TFX_OP_ADD, 2, rms, ln, 0);
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  float out[4];
  run(it, (float[]){1, 2, 3, 4}, 1, out);
  /* rms: x / sqrt(7.5) * g; layernorm: (x - 2.5) / sqrt(1.25) + 0.5 */
  double r = 1.0 / sqrt(7.5), l = 1.0 / sqrt(1.25);
  float want[4];
  for (int i = 0; i < 4; i++) want[i] = (float)((i + 1) * r * (i == 3 ? 2 : 1) + (i + 1 - 2.5) * l + 0.5);
  expect_near(out, want, 4, 1e-6);
  tfx_interp_free(it);

  /* eps matters: rmsnorm of a zero row with eps = 1 is 0, of [1, 1, 1, 1] is 1/sqrt(2) */
  model m2 = model_new(8);
  x = input_f32(&m2, 4);
  g = param(&m2, "g", 1, 4, 0, (float[]){1, 1, 1, 1});
  m2.g->output = norm(&m2, TFX_OP_RMSNORM, x, g, 0, 1.0);
  it = tfx_interp_new(m2.g, m2.blob);
  float o8[8];
  run(it, (float[]){1, 1, 1, 1, 0, 0, 0, 0}, 2, o8);
  float s = (float)(1 / sqrt(2.0));
  expect_near(o8, (float[]){s, s, s, s, 0, 0, 0, 0}, 8, 1e-6);
  tfx_interp_free(it);
  model_free(&m);
  model_free(&m2);
}

static void test_activations_softmax(void **state) {
  (void)state;
  const tfx_op ops[] = {TFX_OP_SILU, TFX_OP_GELU, TFX_OP_GELU, TFX_OP_RELU, TFX_OP_SOFTMAX};
  const float in[3] = {1, 2, 3}, inneg[3] = {-2, 0, 1};
  const float want[5][3] = {
      {0.731058579f, 1.761594156f, 2.857722380f}, /* silu */
      {0.841344746f, 1.954499736f, 2.995950306f}, /* gelu erf */
      {0.841191991f, 1.954597694f, 2.996362608f}, /* gelu tanh */
      {0, 0, 1},                                  /* relu of [-2, 0, 1] */
      {0.090030573f, 0.244728471f, 0.665240956f}, /* softmax */
  };
  for (int k = 0; k < 5; k++) {
    model m = model_new(4);
    int x = input_f32(&m, 3);
    tfx_node p = tfx_node_proto(ops[k], 1, &x);
    p.gelu_tanh = k == 2;
    m.g->output = add_node(&m, &p);
    tfx_interp *it = tfx_interp_new(m.g, m.blob);
    float out[3];
    run(it, ops[k] == TFX_OP_RELU ? inneg : in, 1, out);
    expect_near(out, want[k], 3, 1e-6);
    tfx_interp_free(it);
    model_free(&m);
  }
  /* softmax subtracts the max: huge inputs stay finite */
  model m = model_new(4);
  int x = input_f32(&m, 3);
  m.g->output = op(&m, TFX_OP_SOFTMAX, 1, x, 0, 0);
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  float out[3];
  run(it, (float[]){1001, 1002, 1003}, 1, out);
  expect_near(out, want[4], 3, 1e-6);
  tfx_interp_free(it);
  model_free(&m);
}

/* Two heads of head_dim 6, rotary_dim 4, theta 100: pair 0 turns by p rad,
 * pair 1 by p * 100^(-1/2) = 0.1 p rad, dims 4 and 5 stay. Row t is at
 * position t (no KV cache: pos is 0 in every call). */
static void rope_case(tfx_rope_style style) {
  model m = model_new(8);
  int x = input_f32(&m, 12);
  m.g->output = rope(&m, x, 2, 6, 4, 100.0, style);
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  /* head 0 = [1, 0, 0, 1, 7, 8] and head 1 = [0, 1, 1, 0, 9, 10] in both rows */
  float row[12] = {1, 0, 0, 1, 7, 8, 0, 1, 1, 0, 9, 10}, in[24], out[24];
  memcpy(in, row, sizeof row);
  memcpy(in + 12, row, sizeof row);
  run(it, in, 2, out);
  expect_near(out, row, 12, 0); /* position 0: no rotation */
  double c1 = cos(1.0), s1 = sin(1.0), c2 = cos(0.1), s2 = sin(0.1);
  float want[12];
  if (style == TFX_ROPE_INTERLEAVED) {
    /* pairs (0,1) angle 1 and (2,3) angle 0.1: (x0 c - x1 s, x0 s + x1 c) */
    float w[12] = {(float)c1,  (float)s1, (float)-s2, (float)c2, 7, 8,
                   (float)-s1, (float)c1, (float)c2,  (float)s2, 9, 10};
    memcpy(want, w, sizeof w);
  } else {
    /* pairs (0,2) angle 1 and (1,3) angle 0.1 */
    float w[12] = {(float)c1,  (float)-s2, (float)s1, (float)c2, 7, 8,
                   (float)-s1, (float)c2,  (float)c1, (float)s2, 9, 10};
    memcpy(want, w, sizeof w);
  }
  expect_near(out + 12, want, 12, 1e-6);
  /* without a KV cache every call is a whole sequence at position 0, as the
   * runtime passes it (a graph with one carries pos: test_decode_equals_prefill) */
  run(it, row, 1, out);
  expect_near(out, row, 12, 0);
  run(it, in, 2, out);
  expect_near(out + 12, want, 12, 1e-6);
  tfx_interp_free(it);
  model_free(&m);
}

static void test_rope_interleaved(void **state) {
  (void)state;
  rope_case(TFX_ROPE_INTERLEAVED);
}

static void test_rope_half(void **state) {
  (void)state;
  rope_case(TFX_ROPE_HALF);
}

/* GQA with H = 4, G = 2, d = 2, no mask: keys of kv head 0 are [10,0] (row 0)
 * and [0,10] (row 1); kv head 1 has them swapped. Every query is [10, 0], so
 * each query head picks (weight 1 - e^-70) the row whose key of ITS kv head
 * (h / 2) is [10, 0]: heads 0, 1 read row 0, heads 2, 3 read row 1. */
static void test_attention_gqa(void **state) {
  (void)state;
  model m = model_new(8);
  int x = input_f32(&m, 8 + 4 + 4);
  float eye[16 * 16] = {0};
  for (int i = 0; i < 16; i++) eye[i * 16 + i] = 1;
  /* slice x into q [T, 8], k [T, 4], v [T, 4] with selector weights */
  int wq = param(&m, "wq", 2, 8, 16, eye), wk = param(&m, "wk", 2, 4, 16, eye + 8 * 16),
      wv = param(&m, "wv", 2, 4, 16, eye + 12 * 16);
  int q = op(&m, TFX_OP_LINEAR, 2, x, wq, 0), k = op(&m, TFX_OP_LINEAR, 2, x, wk, 0),
      v = op(&m, TFX_OP_LINEAR, 2, x, wv, 0);
  m.g->output = attention(&m, q, k, v, 4, 2, 2, TFX_MASK_NONE);
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  float in[2 * 16] = {
      10, 0,  10, 0,  10, 0, 10, 0, /* q row 0 */
      10, 0,  0,  10,               /* k row 0: kv head 0 = [10,0], kv head 1 = [0,10] */
      1,  2,  3,  4,                /* v row 0 */
      10, 0,  10, 0,  10, 0, 10, 0, /* q row 1 */
      0,  10, 10, 0,                /* k row 1 */
      5,  6,  7,  8,                /* v row 1 */
  };
  float out[16];
  run(it, in, 2, out);
  /* heads 0,1 (kv head 0) -> v row 0 kv head 0 = [1,2]; heads 2,3 (kv head 1) -> v row 1 kv head 1 = [7,8] */
  float want[8] = {1, 2, 1, 2, 7, 8, 7, 8};
  expect_near(out, want, 8, 1e-5);
  expect_near(out + 8, want, 8, 1e-5); /* no mask: row 1 sees the same keys */
  tfx_interp_free(it);
  model_free(&m);
}

/* Causal, zero queries: row t averages the values of positions 0..t, and a
 * later call sees the cached rows of earlier calls. */
static void test_attention_causal_uniform(void **state) {
  (void)state;
  model m = model_new(4);
  int x = input_f32(&m, 2);
  float zero[4] = {0}, id[4] = {1, 0, 0, 1};
  int wq = param(&m, "wq", 2, 2, 2, zero), wkv = param(&m, "wkv", 2, 2, 2, id);
  int q = op(&m, TFX_OP_LINEAR, 2, x, wq, 0), kv = op(&m, TFX_OP_LINEAR, 2, x, wkv, 0);
  m.g->output = attention(&m, q, kv, kv, 1, 1, 2, TFX_MASK_CAUSAL);
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  float out[6];
  run(it, (float[]){2, 4, 4, 8, 6, 0}, 3, out);
  expect_near(out, (float[]){2, 4, 3, 6, 4, 4}, 6, 1e-6);
  run(it, (float[]){8, 4}, 1, out); /* pos 3: mean of 4 rows */
  expect_near(out, (float[]){5, 4}, 2, 1e-6);
  char err[256] = "";
  assert_int_equal(tfx_interp_forward(it, (float[]){1, 1}, 1, out, err, sizeof err), -1); /* pos 4 = max_seq */
  assert_non_null(strstr(err, "max_seq"));
  tfx_interp_reset(it);
  run(it, (float[]){8, 4}, 1, out); /* after reset: only itself */
  expect_near(out, (float[]){8, 4}, 2, 1e-6);
  tfx_interp_free(it);
  model_free(&m);
}

/* A random one-layer decoder (f32 input, rope, GQA causal attention): decoding
 * token by token, and prefill 3 + decode 2, equal a prefill of all 5 rows
 * (tolerance 1e-5). */
static void test_decode_equals_prefill(void **state) {
  (void)state;
  model m = model_new(16);
  enum { D = 8, H = 4, G = 2, HD = 2 };
  float w[3][D * D];
  uint32_t s = 12345;
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < D * D; i++) {
      s = s * 1664525u + 1013904223u;
      w[k][i] = (float)((s >> 8) / 16777216.0 - 0.5);
    }
  int x = input_f32(&m, D);
  int wq = param(&m, "wq", 2, H * HD, D, w[0]), wk = param(&m, "wk", 2, G * HD, D, w[1]),
      wv = param(&m, "wv", 2, G * HD, D, w[2]);
  int q = rope(&m, op(&m, TFX_OP_LINEAR, 2, x, wq, 0), H, HD, HD, 10000, TFX_ROPE_INTERLEAVED);
  int k = rope(&m, op(&m, TFX_OP_LINEAR, 2, x, wk, 0), G, HD, HD, 10000, TFX_ROPE_INTERLEAVED);
  int v = op(&m, TFX_OP_LINEAR, 2, x, wv, 0);
  int a = attention(&m, q, k, v, H, G, HD, TFX_MASK_CAUSAL);
  m.g->output = op(&m, TFX_OP_ADD, 2, a, x, 0);
  float in[5 * D], full[5 * D], step[5 * D];
  for (int i = 0; i < 5 * D; i++) in[i] = (float)sin(i * 0.7) * 2;
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  run(it, in, 5, full);
  tfx_interp_reset(it);
  for (int t = 0; t < 5; t++) run(it, in + t * D, 1, step + t * D);
  expect_near(step, full, 5 * D, 1e-5);
  tfx_interp_reset(it);
  run(it, in, 3, step);
  run(it, in + 3 * D, 2, step + 3 * D);
  expect_near(step, full, 5 * D, 1e-5);
  tfx_interp_free(it);
  model_free(&m);
}

static void test_errors(void **state) {
  (void)state;
  char err[256];
  float out[4];
  /* n < 1 */
  model m = model_new(4);
  int x = input_f32(&m, 2);
  m.g->output = op(&m, TFX_OP_RELU, 1, x, 0, 0);
  tfx_interp *it = tfx_interp_new(m.g, m.blob);
  assert_int_equal(tfx_interp_forward(it, (float[]){1, 2}, 0, out, err, sizeof err), -1);
  assert_non_null(strstr(err, "at least 1"));
  assert_int_equal(tfx_interp_forward(it, (float[]){1, 2}, 5, out, err, sizeof err), -1);
  tfx_interp_free(it);
  model_free(&m);

  /* out-of-range token id */
  model e = model_new(4);
  int ids = tfx_graph_add_input(e.g, "tokens", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T}));
  int tab = param(&e, "tab", 2, 3, 1, (float[]){10, 20, 30});
  e.g->output = op(&e, TFX_OP_EMBEDDING, 2, tab, ids, 0);
  it = tfx_interp_new(e.g, e.blob);
  run(it, (int32_t[]){2, 0}, 2, out);
  expect_near(out, (float[]){30, 10}, 2, 0);
  err[0] = 0;
  assert_int_equal(tfx_interp_forward(it, (int32_t[]){1, 3}, 2, out, err, sizeof err), -1);
  assert_non_null(strstr(err, "out of range"));
  assert_int_equal(tfx_interp_forward(it, (int32_t[]){-1}, 1, out, err, sizeof err), -1);
  tfx_interp_free(it);

  /* unbound param: an error at forward, not a crash */
  e.g->nodes[tab].weight_offset = -1;
  it = tfx_interp_new(e.g, e.blob);
  assert_non_null(it);
  assert_int_equal(tfx_interp_forward(it, (int32_t[]){0}, 1, out, err, sizeof err), -1);
  assert_non_null(strstr(err, "not bound"));
  tfx_interp_free(it);
  /* no output: invalid graph */
  e.g->nodes[tab].weight_offset = 0;
  e.g->output = -1;
  it = tfx_interp_new(e.g, e.blob);
  assert_int_equal(tfx_interp_forward(it, (int32_t[]){0}, 1, out, err, sizeof err), -1);
  assert_non_null(strstr(err, "output"));
  tfx_interp_free(it);
  model_free(&e);
}

/* ---- the real model ---- */

static const char *models_dir(void) {
  const char *d = getenv("TFX_MODELS_DIR");
  return d && *d ? d : TFX_MODELS_DIR_DEFAULT;
}

static int gadd(tfx_graph *g, const tfx_node *p) {
  char err[256] = "";
  int id = tfx_graph_add(g, p, err, sizeof err);
  if (id < 0) fail_msg("tfx_graph_add: %s", err);
  return id;
}

/* stories260K, built with the builder as llama2.c's run.c computes it. */
static tfx_graph *build_llama(int dim, int layers, int heads, int kv_heads, int hidden, int vocab, int max_seq) {
  tfx_graph *g = tfx_graph_new("stories260k", max_seq);
  char name[64];
  int hd = dim / heads;
#define ADD(p) gadd(g, &(p))
#define P2(n, a, b) tfx_graph_add_param(g, n, tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a, b}))
#define P1(n, a) tfx_graph_add_param(g, n, tfx_type_make(TFX_DT_F32, 1, (int64_t[]){a}))
  int tokens = tfx_graph_add_input(g, "tokens", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T}));
  int emb = P2("tok_embeddings", vocab, dim);
  tfx_node p = tfx_node_proto(TFX_OP_EMBEDDING, 2, (int[]){emb, tokens});
  int xcur = ADD(p);
  for (int l = 0; l < layers; l++) {
#define LP(field) (snprintf(name, sizeof name, "layers.%d.%s", l, field), name)
    int an = P1(LP("attention_norm"), dim);
    int wq = P2(LP("wq"), dim, dim), wk = P2(LP("wk"), kv_heads * hd, dim), wv = P2(LP("wv"), kv_heads * hd, dim);
    int wo = P2(LP("wo"), dim, dim), fn = P1(LP("ffn_norm"), dim);
    int w1 = P2(LP("w1"), hidden, dim), w2 = P2(LP("w2"), dim, hidden), w3 = P2(LP("w3"), hidden, dim);
    p = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){xcur, an});
    p.eps = 1e-5;
    int a = ADD(p);
    int proj[3], wts[3] = {wq, wk, wv};
    for (int i = 0; i < 3; i++) {
      p = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){a, wts[i]});
      proj[i] = ADD(p);
    }
    for (int i = 0; i < 2; i++) {
      p = tfx_node_proto(TFX_OP_ROPE, 1, &proj[i]);
      p.heads = i == 0 ? heads : kv_heads, p.head_dim = hd, p.rotary_dim = hd, p.theta = 10000;
      proj[i] = ADD(p);
    }
    p = tfx_node_proto(TFX_OP_ATTENTION, 3, proj);
    p.heads = heads, p.kv_heads = kv_heads, p.head_dim = hd, p.mask = TFX_MASK_CAUSAL;
    int att = ADD(p);
    p = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){att, wo});
    int o = ADD(p);
    p = tfx_node_proto(TFX_OP_ADD, 2, (int[]){xcur, o});
    int h = ADD(p);
    p = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){h, fn});
    p.eps = 1e-5;
    int f = ADD(p);
    p = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){f, w1});
    int g1 = ADD(p);
    p = tfx_node_proto(TFX_OP_SILU, 1, &g1);
    int sg = ADD(p);
    p = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){f, w3});
    int up = ADD(p);
    p = tfx_node_proto(TFX_OP_MUL, 2, (int[]){sg, up});
    int mu = ADD(p);
    p = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){mu, w2});
    int down = ADD(p);
    p = tfx_node_proto(TFX_OP_ADD, 2, (int[]){h, down});
    xcur = ADD(p);
#undef LP
  }
  int nf = P1("norm", dim);
  p = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){xcur, nf});
  p.eps = 1e-5;
  int xn = ADD(p);
  int cls = P2("tok_embeddings", vocab, dim); /* shared classifier: a second param node of the same name */
  p = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){xn, cls});
  g->output = ADD(p);
#undef ADD
#undef P1
#undef P2
  return g;
}

static void bind_err(void *ctx, int node, const char *msg) {
  (void)ctx;
  fail_msg("bind error at %%%d: %s", node, msg);
}

static void test_stories260k(void **state) {
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s/stories260K.bin", models_dir());
  tfx_graph *g = build_llama(64, 5, 8, 4, 172, 512, 512);
  char err[256];
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0);
  tfx_weights w;
  assert_int_equal(tfx_weights_bind(g, path, NULL, &w, bind_err, NULL), 0);
  if (tfx_verify(g, 1, err, sizeof err)) fail_msg("verify: %s", err);

  /* logits of BOS + 15 greedy ids, prefill of 16 tokens, vs llama2.c within 1e-4 */
  int32_t toks[16] = {1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283};
  float *ref = malloc(16 * 512 * sizeof(float)), *out = malloc(16 * 512 * sizeof(float));
  snprintf(path, sizeof path, "%s/stories260K.logits16.f32", models_dir());
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fread(ref, sizeof(float), 16 * 512, f), 16 * 512);
  fclose(f);
  tfx_interp *it = tfx_interp_new(g, w.data);
  run(it, toks, 16, out);
  expect_near(out, ref, 16 * 512, 1e-4);

  /* greedy decoding token by token from BOS reproduces llama2.c's first 64 ids */
  snprintf(path, sizeof path, "%s/stories260K.greedy.ids", models_dir());
  f = fopen(path, "r");
  assert_non_null(f);
  int want[64];
  for (int i = 0; i < 64; i++) assert_int_equal(fscanf(f, "%d", &want[i]), 1);
  fclose(f);
  tfx_interp_reset(it);
  int32_t tok = 1;
  for (int i = 0; i < 64; i++) {
    run(it, &tok, 1, out);
    int best = 0;
    for (int j = 1; j < 512; j++)
      if (out[j] > out[best]) best = j;
    if (best != want[i]) fail_msg("greedy step %d: got %d, llama2.c gives %d", i, best, want[i]);
    tok = best;
  }
  tfx_interp_free(it);
  free(ref);
  free(out);
  tfx_weights_free(&w);
  tfx_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear_2x3),
      cmocka_unit_test(test_matmul_and_binary),
      cmocka_unit_test(test_norms),
      cmocka_unit_test(test_activations_softmax),
      cmocka_unit_test(test_rope_interleaved),
      cmocka_unit_test(test_rope_half),
      cmocka_unit_test(test_attention_gqa),
      cmocka_unit_test(test_attention_causal_uniform),
      cmocka_unit_test(test_decode_equals_prefill),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_stories260k),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
