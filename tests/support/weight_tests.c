/* tests/support/weight_tests.c — helpers and case graphs of the
 * weight-format tests (see weight_tests.h). */
#include "weight_tests.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../backend/backend.h"
#include "testutil.h"
#include "tfx/tfx.h"

void tfx_wt_reserve(tfx_tg *t, size_t need) {
  if (need <= t->cap) return;
  size_t cap = t->cap ? t->cap : 4096;
  while (cap < need) cap *= 2;
  void *p = NULL;
  assert_int_equal(posix_memalign(&p, 64, cap), 0);
  if (t->size) memcpy(p, t->blob, t->size);
  free(t->blob);
  t->blob = p;
  t->cap = cap;
}

uint16_t tfx_wt_f16(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return (uint16_t)((b >> 16 & 0x8000u) | (((b >> 23 & 0xffu) - 112) << 10) | (b >> 13 & 0x3ffu));
}

size_t tfx_wt_plan_floats(const tfx_wt_plan *p) {
  size_t s = 0;
  for (int c = 0; c < p->n_calls; c++) s += (size_t)p->ns[c] * (size_t)p->out_w;
  return s;
}

/* The inputs of call c: token ids below vocab, and in_w floats in [-2, 2) per row. */
static void make_input(const tfx_wt_plan *p, int c, uint64_t *rng, int32_t *tok, float *x) {
  for (int i = 0; i < p->ns[c]; i++) {
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    if (p->vocab > 0) tok[i] = (int32_t)((*rng >> 33) % (uint64_t)p->vocab);
    for (int64_t j = 0; j < p->in_w; j++) {
      *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
      x[i * p->in_w + j] = (float)((double)(*rng >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }
  }
}

/* Room for the inputs of the plan's largest call. */
static float *input_buffer(const tfx_wt_plan *p) {
  int most = 1;
  for (int c = 0; c < p->n_calls; c++) most = p->ns[c] > most ? p->ns[c] : most;
  float *x = calloc((size_t)most * (size_t)(p->in_w > 0 ? p->in_w : 1), sizeof *x);
  assert_non_null(x);
  return x;
}

void tfx_wt_run_interp(tfx_tg *t, const uint8_t *blob, const tfx_wt_plan *p, float *out, const char *what) {
  tfx_interp *it = tfx_interp_new(t->g, blob);
  assert_non_null(it);
  uint64_t rng = 12345;
  int32_t tok[16];
  float *x = input_buffer(p);
  char err[256];
  for (int c = 0; c < p->n_calls; c++) {
    assert_true(p->ns[c] <= 16);
    make_input(p, c, &rng, tok, x);
    if (t->g->kv_bytes == 0) tfx_interp_reset(it); /* (with a KV cache the calls run on, as the session's) */
    if (tfx_interp_forward(it, p->vocab > 0 ? (const void *)tok : (const void *)x, p->ns[c], out, err, sizeof err))
      fail_msg("%s: interpreter: %s", what, err);
    out += (size_t)p->ns[c] * (size_t)p->out_w;
  }
  free(x);
  tfx_interp_free(it);
}

static void release_jit(void *m) { tfx_backend_jit_free(m); }

void tfx_wt_run_jit(tfx_tg *t, const tfx_wt_plan *p, int opt_level, const char *cpu, float *out, const char *what) {
  tfx_target_options o = {.opt_level = tfx_test_llvm_level(opt_level), .cpu = cpu};
  tfx_jit_module *jm = NULL;
  const tfx_model_desc *desc = NULL;
  char err[512] = "";
  if (tfx_backend_jit(t->g, &o, &jm, &desc, err, sizeof err)) fail_msg("%s: JIT: %s", what, err);
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(desc, t->blob, release_jit, jm, &m), TFX_OK);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  uint64_t rng = 12345;
  int32_t tok[16];
  float *x = input_buffer(p);
  for (int c = 0; c < p->n_calls; c++) {
    assert_true(p->ns[c] <= 16);
    make_input(p, c, &rng, tok, x);
    int rc = p->vocab > 0 ? tfx_forward_ex(s, tok, p->ns[c], out, 0) : tfx_forward_f32(s, x, p->ns[c], out);
    assert_int_equal(rc, TFX_OK);
    out += (size_t)p->ns[c] * (size_t)p->out_w;
  }
  free(x);
  tfx_session_free(s);
  tfx_model_close(m);
}

double tfx_wt_rel_diff(const float *a, const float *b, size_t n) {
  double d = 0, m = 1;
  for (size_t i = 0; i < n; i++) {
    if (fabs(b[i]) > m) m = fabs(b[i]);
    double e = fabs((double)a[i] - (double)b[i]);
    if (!(e <= d)) d = e;
  }
  return d / m;
}

/* ---- the case graphs ---- */

static int wparam(tfx_tg *t, tfx_wt_weights w, const char *name, int rank, const int64_t *dims, float scale) {
  return w.param(t, w.ctx, name, rank, dims, scale);
}

static int wparam2(tfx_tg *t, tfx_wt_weights w, const char *name, int64_t rows, int64_t cols, float scale) {
  return wparam(t, w, name, 2, (int64_t[]){rows, cols}, scale);
}

/* rmsnorm with a gain from t's generator (the same in a graph and its twin) */
static int norm(tfx_tg *t, int x, int64_t d) {
  tfx_node n = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", d, 0.2f, 1.0f)});
  n.eps = 1e-5;
  return tfx_tg_add(t, &n);
}

void tfx_wt_case_linear(tfx_tg *t, tfx_wt_weights w, int64_t K) {
  int x = tfx_tg_input_f32(t, K);
  int wt = wparam2(t, w, "w", 45, K, 0.4f);
  t->g->output = tfx_tg_op3(t, TFX_OP_LINEAR, x, wt, tfx_tg_param1(t, "b", 45, 1.0f, 0.0f));
}

void tfx_wt_case_norm_linear(tfx_tg *t, tfx_wt_weights w, int64_t K) {
  int x = tfx_tg_input_f32(t, K);
  int a = tfx_tg_op2(t, TFX_OP_LINEAR, norm(t, x, K), wparam2(t, w, "wa", 45, K, 0.4f));
  int b = tfx_tg_op2(t, TFX_OP_LINEAR, x, wparam2(t, w, "wb", 45, K, 0.4f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, a, b);
}

void tfx_wt_case_ffn(tfx_tg *t, tfx_wt_weights w, int64_t D, int64_t H) {
  int x = tfx_tg_input_f32(t, D);
  int f = norm(t, x, D);
  int g = tfx_tg_op2(t, TFX_OP_LINEAR, f, wparam2(t, w, "w1", H, D, 0.3f));
  int u = tfx_tg_op2(t, TFX_OP_LINEAR, f, wparam2(t, w, "w3", H, D, 0.3f));
  int h = tfx_tg_op2(t, TFX_OP_MUL, tfx_tg_op1(t, TFX_OP_SILU, g), u);
  int y = tfx_tg_op2(t, TFX_OP_LINEAR, h, wparam2(t, w, "w2", D, H, 0.3f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, y);
}

void tfx_wt_case_moe(tfx_tg *t, tfx_wt_weights w, int64_t D, int64_t H) {
  int64_t E = 4;
  int x = tfx_tg_input_f32(t, D);
  int f = norm(t, x, D);
  int logits = tfx_tg_op2(t, TFX_OP_LINEAR, f, wparam2(t, w, "router", E, D, 0.6f));
  tfx_node r = tfx_node_proto(TFX_OP_MOE_ROUTE, 1, (int[]){logits});
  r.top_k = 2;
  r.moe_gate = TFX_MOE_GATE_SOFTMAX_TOPK;
  int route = tfx_tg_add(t, &r);
  int w1 = wparam(t, w, "w1", 3, (int64_t[]){E, H, D}, 0.3f);
  int w3 = wparam(t, w, "w3", 3, (int64_t[]){E, H, D}, 0.3f);
  int h = tfx_tg_op1(t, TFX_OP_SILU, tfx_tg_op3(t, TFX_OP_MOE_UP, f, route, w1));
  h = tfx_tg_op2(t, TFX_OP_MUL, h, tfx_tg_op3(t, TFX_OP_MOE_UP, f, route, w3));
  int y = tfx_tg_op3(t, TFX_OP_MOE_DOWN, h, route, wparam(t, w, "w2", 3, (int64_t[]){E, D, H}, 0.3f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, y);
}

void tfx_wt_case_embedding(tfx_tg *t, tfx_wt_weights w, int64_t V, int64_t D) {
  int tok = tfx_tg_input_tokens(t);
  int table = wparam2(t, w, "table", V, D, 1.0f);
  int e = tfx_tg_op2(t, TFX_OP_EMBEDDING, table, tok);
  t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, e, table); /* (no norm between: it would hide a row's scale) */
}

void tfx_wt_case_matmul(tfx_tg *t, tfx_wt_weights w, int64_t N) {
  int x = tfx_tg_input_f32(t, 29);
  t->g->output = tfx_tg_op2(t, TFX_OP_MATMUL, x, wparam2(t, w, "b", 29, N, 0.5f));
}

void tfx_wt_case_mla(tfx_tg *t, tfx_wt_weights w, int64_t r) {
  int64_t D = 24, H = 2, dn = 8, dr = 4, dv = 8;
  int x = tfx_tg_input_f32(t, D);
  int q = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wq", H * (dn + dr), D, 0.5f));
  int ckv = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wkv_a", r + dr, D, 0.5f));
  tfx_node a = tfx_node_proto(TFX_OP_MLA_ATTENTION, 3, (int[]){q, ckv, wparam2(t, w, "wkv_b", H * (dn + dv), r, 0.5f)});
  a.heads = (int)H, a.head_dim = (int)dn, a.rope_dim = (int)dr, a.v_dim = (int)dv, a.rank = (int)r;
  a.theta = 10000.0, a.rope_style = TFX_ROPE_HALF, a.eps = 1e-6;
  a.mask = TFX_MASK_CAUSAL;
  t->g->output = tfx_tg_add(t, &a);
}
