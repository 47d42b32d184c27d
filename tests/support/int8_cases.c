/* tests/support/int8_cases.c — the case graphs, pass runs and JIT-vs-
 * interpreter checks of the int8-linear tests (test_int8_linear,
 * test_lowbit, test_w8a8); see int8_cases.h. */
#include "int8_cases.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backend/backend.h"
#include "../../passes/passes.h"
#include "jit_harness.h"
#include "tfx/tfx.h"
#include "weight_tests.h"

/* ---- the weights ---- */

/* Room for a [rows, cols] param of format dt at a 64-byte aligned offset of
 * t's blob (zero padding after it): its bytes, rb per row. */
static uint8_t *param_room(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, int *id,
                           int64_t *rb) {
  tfx_type ty = tfx_type_make(dt, 2, (int64_t[]){rows, cols});
  *id = tfx_graph_add_param(t->g, name, ty);
  assert_true(*id >= 0);
  int64_t bytes = tfx_type_bytes(&ty, 1);
  *rb = bytes / rows;
  size_t off = (t->size + 63) / 64 * 64;
  tfx_wt_reserve(t, off + (size_t)bytes + 64);
  t->g->nodes[*id].weight_offset = (int64_t)off;
  t->size = (off + (size_t)bytes + 63) / 64 * 64; /* the next param at an aligned offset */
  memset(t->blob + off + bytes, 0, t->size - off - (size_t)bytes);
  t->g->weights_bytes = (int64_t)t->size;
  return t->blob + off;
}

int tfx_i8c_rows_param(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, float scale,
                       float shift) {
  int id;
  int64_t rb;
  uint8_t *p = param_room(t, dt, name, rows, cols, &id, &rb);
  float *x = malloc((size_t)cols * sizeof *x);
  assert_non_null(x);
  for (int64_t r = 0; r < rows; r++) {
    float off = (float)(r % 5 - 2) * shift * scale;
    for (int64_t k = 0; k < cols; k++) x[k] = scale * tfx_tg_rand(t) + off;
    assert_int_equal(tfx_quantize_row(dt, x, cols, p + r * rb), rb);
  }
  free(x);
  return id;
}

int tfx_i8c_qparam(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, float scale) {
  if (dt == TFX_DT_Q8_0 || dt == TFX_DT_Q4_0 || dt == TFX_DT_Q5_0)
    return tfx_i8c_rows_param(t, dt, name, rows, cols, scale, 0.0f);
  int id;
  int64_t rb;
  uint8_t *p = param_room(t, dt, name, rows, cols, &id, &rb);
  for (int64_t r = 0; r < rows; r++) {
    uint8_t *row = p + r * rb;
    for (int64_t i = 0; i < rb; i++) row[i] = (uint8_t)((t->rng = t->rng * 6364136223846793005ull + 1) >> 56);
    for (int64_t b = 0; b < cols / 256; b++) {
      uint8_t *blk = row + b * tfx_dtype_info_of(dt)->block_bytes;
      /* |w| up to about scale: q4_k d * 63 * 15 - dmin * m, q6_k d * 128 * 32, q3_k d * 32 * 4 */
      float d = scale * (0.5f + 0.25f * tfx_tg_rand(t)) /
                (dt == TFX_DT_Q4_K   ? 32.0f * 15.0f
                 : dt == TFX_DT_Q3_K ? 32.0f * 4.0f
                                     : 32.0f * 64.0f);
      uint16_t h = tfx_wt_f16(d), hm = tfx_wt_f16(d * (1.5f + 0.5f * tfx_tg_rand(t)) * 4.0f);
      if (dt == TFX_DT_Q4_K) {
        memcpy(blk, &h, 2);
        memcpy(blk + 2, &hm, 2);
      } else {
        memcpy(blk + (dt == TFX_DT_Q3_K ? 108 : 208), &h, 2);
      }
    }
  }
  return id;
}

/* ---- the graphs ---- */

/* N = 45: not a multiple of 32 */
tfx_tg *tfx_i8c_linear(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t K, int64_t unused) {
  (void)unused;
  tfx_tg *t = tfx_tg_new("q8_linear", 64, 7 + (uint64_t)K);
  int x = tfx_tg_input_f32(t, K);
  int w = qp(t, dt, "w", 45, K, 0.3f);
  t->g->output = tfx_tg_op3(t, TFX_OP_LINEAR, x, w, tfx_tg_param1(t, "b", 45, 1.0f, 0.0f));
  return t;
}

tfx_tg *tfx_i8c_linear_n(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t K, int64_t N) {
  tfx_tg *t = tfx_tg_new("q8_linear_n", 128, 17 + (uint64_t)K + (uint64_t)N);
  int x = tfx_tg_input_f32(t, K);
  int w = qp(t, dt, "w", N, K, 0.3f);
  t->g->output = tfx_tg_op3(t, TFX_OP_LINEAR, x, w, tfx_tg_param1(t, "b", N, 1.0f, 0.0f));
  return t;
}

/* w2 stays f32: its input, silu(g) * u, is not bit-equal between the JIT and
 * the interpreter, and rounding to int8 would turn those last-bit
 * differences into whole steps */
tfx_tg *tfx_i8c_ffn(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t D, int64_t H) {
  tfx_tg *t = tfx_tg_new("q8_ffn", 64, 11 + (uint64_t)D);
  int x = tfx_tg_input_f32(t, D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int f = tfx_tg_add(t, &nn);
  int g = tfx_tg_op2(t, TFX_OP_LINEAR, f, qp(t, dt, "w1", H, D, 0.3f));
  int u = tfx_tg_op2(t, TFX_OP_LINEAR, f, qp(t, dt, "w3", H, D, 0.3f));
  int h = tfx_tg_op2(t, TFX_OP_MUL, tfx_tg_op1(t, TFX_OP_SILU, g), u);
  t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, h, tfx_tg_param2(t, "w2", 40, H, 0.05f));
  return t;
}

tfx_tg *tfx_i8c_res(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t D, int64_t unused) {
  (void)unused;
  tfx_tg *t = tfx_tg_new("q8_res", 64, 13 + (uint64_t)D);
  int x = tfx_tg_input_f32(t, D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int f = tfx_tg_add(t, &nn);
  int y = tfx_tg_op3(t, TFX_OP_LINEAR, f, qp(t, dt, "w", D, D, 0.3f), tfx_tg_param1(t, "b", D, 1.0f, 0.0f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, y);
  return t;
}

/* ---- running them ---- */

void tfx_i8c_run_passes(tfx_tg *t, int level, const char *what) {
  tfx_pass_options o;
  tfx_pass_options_init(&o, level);
  o.weights = &t->blob;
  o.weights_size = &t->size;
  o.verify_each = 1;
  char err[512];
  if (tfx_run_passes(t->g, &o, err, sizeof err)) fail_msg("%s -O%d: passes: %s", what, level, err);
  t->cap = t->size;
}

int tfx_i8c_count_op(const tfx_graph *g, tfx_op op) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op && tfx_node_act_quant(g, &g->nodes[i]);
  return n;
}

int tfx_i8c_runs_here(const char *cpu) {
  if (!cpu) return 1;
  if (!strcmp(cpu, "haswell")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  /* the AVX-512 levels: skylake-avx512 (F, BW, DQ, VL), cascadelake (+ VNNI), icelake-server (+ VBMI2) */
  int skx = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (!strcmp(cpu, "skylake-avx512")) return skx;
  if (!strcmp(cpu, "cascadelake")) return skx && __builtin_cpu_supports("avx512vnni");
  if (!strcmp(cpu, "icelake-server"))
    return skx && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi2");
  return 1; /* x86-64: SSE2 */
}

const char *const tfx_i8c_cpus[3] = {NULL, "haswell", "x86-64"};

void tfx_i8c_check_model(tfx_tg *t, const char *cpu, const int *calls, int ncalls, int blind_check, const char *what) {
  tfx_i8c_check_model_at(t, cpu, 2, calls, ncalls, blind_check, what);
}

void tfx_i8c_check_model_at(tfx_tg *t, const char *cpu, int llvm_level, const int *calls, int ncalls, int blind_check,
                            const char *what) {
  tfx_model *m = tfx_tg_jit_model_cpu(t, llvm_level, cpu);
  if (!m) fail_msg("%s: JIT failed", what);
  tfx_tg_run_opts o = {.in_scale = 2.0f};
  uint64_t rng0 = t->rng;
  tfx_tg_compare_runs(t, m, calls, ncalls, &o, what);
  if (!blind_check) {
    tfx_model_close(m);
    return;
  }
  /* the same inputs again against the interpreter without the emulation:
   * the comparison must be able to fail */
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  t->rng = rng0;
  t->g->schedule.act_f32 = 1;
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  double worst = 0.0, maxref = 1.0;
  for (int c = 0; c < ncalls; c++) {
    int n = calls[c];
    size_t ow = (size_t)d->output_width;
    float *ref = calloc((size_t)n * ow, 4), *out = calloc((size_t)n * ow, 4),
          *x = calloc((size_t)n * d->input_width, 4);
    assert_true(ref && out && x);
    for (int i = 0; i < n * d->input_width; i++) x[i] = o.in_scale * tfx_tg_rand(t);
    char err[256];
    tfx_interp_reset(it);
    if (tfx_interp_forward(it, x, n, ref, err, sizeof err)) fail_msg("%s: interpreter: %s", what, err);
    assert_int_equal(tfx_forward_f32(s, x, n, out), TFX_OK);
    for (size_t i = 0; i < (size_t)n * ow; i++) {
      if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
      double e = fabs((double)ref[i] - out[i]);
      if (e > worst) worst = e;
    }
    free(ref);
    free(out);
    free(x);
  }
  t->g->schedule.act_f32 = 0;
  tfx_interp_free(it);
  tfx_session_free(s);
  tfx_model_close(m);
  if (!(worst > TFX_TG_TOL * maxref))
    fail_msg("%s: the JIT is as close to f32 activations (%g) as the tolerance allows (%g): the check is blind", what,
             worst, TFX_TG_TOL * maxref);
}

void tfx_i8c_check_graph(const tfx_i8c_opts *o, tfx_tg *(*build)(tfx_i8c_param_fn, tfx_dtype, int64_t, int64_t),
                         tfx_dtype dt, int64_t a, int64_t b, const char *name, int levels, int ncpu, int int8) {
  for (int level = 0; level <= 2; level += 2) {
    if (!(levels >> (level / 2) & 1)) continue;
    tfx_tg *t = build(o->param, dt, a, b);
    t->g->schedule.streams = o->streams;
    char what[192];
    snprintf(what, sizeof what, "%s %s K%lld", name, tfx_dtype_name(dt), (long long)a);
    tfx_i8c_run_passes(t, level, what);
    char err[256];
    if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
    int nl = tfx_i8c_count_op(t->g, TFX_OP_LINEAR), nf = tfx_i8c_count_op(t->g, TFX_OP_FUSED_LINEAR);
    if (int8 && (level == 0 ? nl == 0 : nf == 0)) fail_msg("%s -O%d: no int8 linear in the graph", what, level);
    if (!int8 && nl + nf) fail_msg("%s -O%d: a dequantizing-stream linear on int8 activations", what, level);
    for (int c = 0; c < ncpu; c++) {
      if (!tfx_i8c_runs_here(tfx_i8c_cpus[c])) continue;
      char label[256];
      snprintf(label, sizeof label, "%s -O%d cpu %s", what, level, tfx_i8c_cpus[c] ? tfx_i8c_cpus[c] : "host");
      tfx_i8c_check_model(t, tfx_i8c_cpus[c], o->calls, o->ncalls, int8, label);
    }
    tfx_tg_free(t);
  }
}
