/* tests/test_moe_int8.c — the MoE experts on the int8 dot-product kernels
 * (backend/k_moe.c through k_linear_q8.c's tfx_cg_q8rows; issue #11):
 * MOE_UP and MOE_DOWN whose experts are q8_0, q4_0, q4_k or q6_k quantize
 * their rows per block of 32 (tfx_act_quant_block) and run the int8 linears'
 * decode kernels per (expert, column block).
 *
 * Graphs (IR builder; weights from tfx_i8c_qparam, the [E * N, K] rows
 * retyped [E, N, K]; the router and the other weights f32):
 *  - up: x -> [rmsnorm] -> router -> moe_route (top-k) -> moe_up(w1) ->
 *    act [* moe_up(w3)] -> moe_down(w2 f32) -> + x. At -O0 without the
 *    norm (an unfused rmsnorm's output differs from the interpreter's in
 *    the last bits, which the rounding to int8 would make whole steps); at
 *    -O2 with it, fused as moe_up's prologue (RMS: x * gain quantized, 1 /
 *    rms on the sums) with the activation and GLU.
 *  - down: x : f32[T, k * H] is h itself -> router -> moe_route ->
 *    moe_down(x, w2 [E, k * H, H]) + silu(x) [-> rmsnorm -> linear f32]: at -O2
 *    the residual and the statistics (stats_out) fused into moe_down.
 * Cases: E = 4 and 8, top-1 and top-2, GLU (silu) and not (gelu, relu), K
 * a multiple of 32 (q8_0, q4_0: 96, an odd K / 32, runs the one-row tiles
 * even on AVX512-VNNI; 64 the dz pairs; 128 q4_0's groups of 4 blocks) and
 * of 256 (the k-formats: 256, 512), N not a multiple of 8; -O0 (the
 * experts unfused) and -O2; calls of 1 (the decode kernels), 2, 5, 40 and
 * 3 rows; K = 2048 with 40 rows fills more than one chunk of stack slots
 * (k_moe.c quantizes at most 256 KiB of rows at once: 39 rows at K = 2048, 19 rows of 2 slots for
 * moe_down). Run on the host (AVX512-VNNI here: the dz kernels) and, for
 * the first shape of each format at -O2, at --mcpu haswell (AVX2) and
 * x86-64 (plain IR). Mutations this caught: h's slot without + s in
 * moe_down, the prologue hook left out of the quantization, a chunk's
 * slots not relative to its first row (test_chunks only).
 * The oracle is the reference interpreter on the same optimized graph, which
 * emulates the activation quantization of the experts (ir/interp_ffn.c):
 * max |jit - ref| <= 1e-4 * max(1, max |ref|) (TFX_TG_TOL), and the same
 * outputs must be further than that from the interpreter without the
 * emulation (act_f32), so a kernel that skipped the quantization would
 * fail. With act_f32 the experts leave the int8 path (tfx_node_act_quant
 * 0) and the JIT matches the plain interpreter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/int8_cases.h"
#include "support/jit_harness.h"
#include "tfx/tfx.h"

typedef struct moe_case {
  int64_t E, k, K, N; /* experts, slots, reduction length of the int8 experts, their output columns */
  int glu, act;       /* act: the activation op after moe_up */
} moe_case;

/* an [E, N, K] expert weight in format dt */
static int qparam3(tfx_tg *t, tfx_dtype dt, const char *name, int64_t E, int64_t N, int64_t K) {
  int id = tfx_i8c_qparam(t, dt, name, E * N, K, 0.3f);
  t->g->nodes[id].type = tfx_type_make(dt, 3, (int64_t[]){E, N, K});
  return id;
}

static int route_of(tfx_tg *t, int f, int64_t E, int64_t D, int64_t k) {
  int logits = tfx_tg_op2(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "router", E, D, 0.6f));
  tfx_node r = tfx_node_proto(TFX_OP_MOE_ROUTE, 1, (int[]){logits});
  r.top_k = (int)k;
  r.moe_gate = TFX_MOE_GATE_SOFTMAX_TOPK;
  return tfx_tg_add(t, &r);
}

/* the up graph: D = c->K, hidden H = c->N */
static tfx_tg *up_graph(const moe_case *c, tfx_dtype dt, int norm) {
  tfx_tg *t = tfx_tg_new("moe_q8_up", 64, 31 + (uint64_t)c->K * 3 + (uint64_t)c->E);
  int64_t D = c->K, H = c->N;
  int x = tfx_tg_input_f32(t, D), f = x;
  if (norm) {
    tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
    nn.eps = 1e-5;
    f = tfx_tg_add(t, &nn);
  }
  int route = route_of(t, f, c->E, D, c->k);
  int h = tfx_tg_op1(t, (tfx_op)c->act, tfx_tg_op3(t, TFX_OP_MOE_UP, f, route, qparam3(t, dt, "w1", c->E, H, D)));
  if (c->glu)
    h = tfx_tg_op2(t, TFX_OP_MUL, h, tfx_tg_op3(t, TFX_OP_MOE_UP, f, route, qparam3(t, dt, "w3", c->E, H, D)));
  int w2 = tfx_tg_param(t, "w2", 3, (int64_t[]){c->E, D, H}, 0.3f, 0.0f);
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, tfx_tg_op3(t, TFX_OP_MOE_DOWN, h, route, w2));
  return t;
}

/* the down graph: H = c->K, D = k * H; stats: a norm and an f32 linear after it */
static tfx_tg *down_graph(const moe_case *c, tfx_dtype dt, int stats) {
  tfx_tg *t = tfx_tg_new("moe_q8_down", 64, 37 + (uint64_t)c->K * 5 + (uint64_t)c->E);
  int64_t H = c->K, D = c->k * H;
  int x = tfx_tg_input_f32(t, D);
  int route = route_of(t, x, c->E, D, c->k);
  /* (the residual a value of its own: moe_down may write in place over it, and x is read as h) */
  int res = tfx_tg_op1(t, TFX_OP_SILU, x);
  int y = tfx_tg_op2(t, TFX_OP_ADD, res, tfx_tg_op3(t, TFX_OP_MOE_DOWN, x, route, qparam3(t, dt, "w2", c->E, D, H)));
  if (stats) {
    tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){y, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
    nn.eps = 1e-5;
    y = tfx_tg_op2(t, TFX_OP_LINEAR, tfx_tg_add(t, &nn), tfx_tg_param2(t, "wo", 24, D, 0.3f));
  }
  t->g->output = y;
  return t;
}

static const int CALLS[5] = {1, 2, 5, 40, 3};

/* The graph at -O0 (levels bit 0: on the host) and -O2 (bit 1: on the
 * first ncpu targets): its experts (op) must run on int8 activations, and
 * at -O2 carry the fusions `fused` checks. */
static void check_case(const moe_case *c, tfx_dtype dt, int up, int levels, int ncpu, const char *name) {
  for (int level = 0; level <= 2; level += 2) {
    if (!(levels >> (level / 2) & 1)) continue;
    tfx_tg *t = up ? up_graph(c, dt, level > 0) : down_graph(c, dt, level > 0);
    char what[192];
    snprintf(what, sizeof what, "%s %s E%lld k%lld K%lld", name, tfx_dtype_name(dt), (long long)c->E, (long long)c->k,
             (long long)c->K);
    tfx_i8c_run_passes(t, level, what);
    char err[256];
    if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
    tfx_op op = up ? TFX_OP_MOE_UP : TFX_OP_MOE_DOWN;
    int n8 = tfx_i8c_count_op(t->g, op), fused = 0;
    for (int i = 0; i < t->g->n_nodes; i++) {
      const tfx_node *n = &t->g->nodes[i];
      if (n->op != op) continue;
      fused |= up ? n->fx.norm == TFX_NORM_RMS && n->fx.act && n->fx.glu == c->glu
                  : n->fx.residual && n->fx.stats_out == TFX_NORM_RMS;
    }
    if (n8 != (up && level == 0 && c->glu ? 2 : 1)) fail_msg("%s -O%d: %d int8 experts", what, level, n8);
    if (level > 0 && !fused) fail_msg("%s -O2: the experts lost a fusion", what);
    for (int cpu = 0; cpu < (level ? ncpu : 1); cpu++) {
      if (!tfx_i8c_runs_here(tfx_i8c_cpus[cpu])) continue;
      char label[256];
      snprintf(label, sizeof label, "%s -O%d cpu %s", what, level, tfx_i8c_cpus[cpu] ? tfx_i8c_cpus[cpu] : "host");
      tfx_i8c_check_model(t, tfx_i8c_cpus[cpu], CALLS, 5, 1, label);
    }
    tfx_tg_free(t);
  }
}

#define N_FORMATS 4
static const tfx_dtype FORMATS[N_FORMATS] = {TFX_DT_Q8_0, TFX_DT_Q4_0, TFX_DT_Q4_K, TFX_DT_Q6_K};

static int kquant(tfx_dtype dt) { return tfx_dtype_info_of(dt)->block == 256; }

static void test_moe_up(void **state) {
  (void)state;
  for (int f = 0; f < N_FORMATS; f++) {
    tfx_dtype dt = FORMATS[f];
    int64_t K0 = kquant(dt) ? 256 : 96, K1 = kquant(dt) ? 512 : 128;
    moe_case a = {4, 2, K0, 20, 1, TFX_OP_SILU}; /* Mixtral's form: top-2 SwiGLU */
    moe_case b = {8, 1, K1, 13, 0, TFX_OP_GELU}; /* top-1 (switch), no GLU */
    moe_case d = {8, 2, 64, 45, 0, TFX_OP_RELU};
    check_case(&a, dt, 1, 3, 3, "moe_up");
    check_case(&b, dt, 1, 2, 1, "moe_up");
    if (!kquant(dt)) check_case(&d, dt, 1, 1, 1, "moe_up"); /* the dz pairs (q4_0 too: K / 32 = 2) */
  }
}

static void test_moe_down(void **state) {
  (void)state;
  for (int f = 0; f < N_FORMATS; f++) {
    tfx_dtype dt = FORMATS[f];
    moe_case a = {4, 2, kquant(dt) ? 256 : 96, 0, 0, 0};
    moe_case b = {8, 1, kquant(dt) ? 512 : 128, 0, 0, 0};
    check_case(&a, dt, 0, 3, 3, "moe_down");
    check_case(&b, dt, 0, 2, 1, "moe_down");
  }
}

/* K = 2048 with calls of 40 rows: more than one chunk of quantized rows */
static void test_chunks(void **state) {
  (void)state;
  moe_case u = {4, 2, 2048, 11, 1, TFX_OP_SILU}, d = {4, 2, 2048, 0, 0, 0};
  check_case(&u, TFX_DT_Q8_0, 1, 3, 1, "moe_up chunks");
  check_case(&d, TFX_DT_Q4_K, 0, 2, 1, "moe_down chunks");
}

/* act_f32: the experts leave the int8 path and match the plain interpreter */
static void test_act_f32(void **state) {
  (void)state;
  moe_case a = {4, 2, 256, 20, 1, TFX_OP_SILU};
  tfx_tg *t = up_graph(&a, TFX_DT_Q4_K, 1);
  tfx_i8c_run_passes(t, 2, "act_f32");
  char err[256];
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  assert_int_equal(tfx_i8c_count_op(t->g, TFX_OP_MOE_UP), 1);
  t->g->schedule.act_f32 = 1;
  assert_int_equal(tfx_i8c_count_op(t->g, TFX_OP_MOE_UP), 0);
  tfx_i8c_check_model(t, NULL, CALLS, 5, 0, "moe act_f32");
  tfx_tg_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_moe_up),
      cmocka_unit_test(test_moe_down),
      cmocka_unit_test(test_chunks),
      cmocka_unit_test(test_act_f32),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
