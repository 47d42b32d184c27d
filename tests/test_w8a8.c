/* tests/test_w8a8.c — quantize = w8a8 (issue #13): i8 weights per output
 * channel (scale = amax / 127 per row) with the activations quantized per
 * token (one absmax / 127 per row) in the int8 kernel (backend/
 * k_linear_q8.c), and the choice's spelling (ir/quant_choice.c).
 *
 * - the quantizers against their equations, computed here independently:
 *   tfx_quantize_i8_row (roundf(x / s), s = amax / 127; 32 values make 36
 *   bytes through tfx_quantize_row: the values, then the f32 scale) and
 *   tfx_act_quant_token (rint(x / d), d = amax / 127);
 * - kernel vs interpreter: LINEAR + bias at -O0 (K = 32, 256, 768; N = 45 and
 *   20) and at -O2 x + linear(rmsnorm(x)) + b (norm prologue, bias, residual
 *   epilogue) run by the JIT with 2 threads on calls of 1, 2, 5, 40, 3 and
 *   100 rows (decode, prefill tiles, the repacked AVX-512 tiles, chunks),
 *   on the host and at --mcpu haswell and x86-64 where this machine runs
 *   them; the oracle is the reference interpreter on the same graph, which
 *   emulates the per-token quantization: max |jit - ref| <= 1e-4 *
 *   max(1, max |ref|) (TFX_TG_TOL). The same outputs must differ from the
 *   interpreter without the emulation (act_f32) by more than that, so the
 *   check is not blind. With activations = f32 (and for K = 172, not a
 *   multiple of 32) the i8 weight is read by the dequantizing stream and
 *   matches the interpreter without emulation;
 * - the parser: NAME(key = value, ...) and its errors;
 * - calibration files (ir/calib.c): a round trip, every truncation, bad
 *   magic, version, counts, names, NaN / infinite / negative ranges,
 *   duplicates, trailing bytes: refused with the file named;
 * - SmoothQuant (passes/smooth_quant.c): an error without calibration; the
 *   folded scales leave the f32 function unchanged (interpreter before and
 *   after, 1e-5 of the range) while moving an outlier channel; a second run
 *   changes nothing; a norm whose linears lack calibration is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend/backend.h"
#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/int8_cases.h"
#include "support/jit_harness.h"
#include "support/weight_tests.h"
#include "tfx/tfx.h"

/* A [rows, cols] i8 weight: random f32 rows quantized by tfx_quantize_i8_row
 * into the values plane and the scale plane (ir/dtype.c). */
static int i8param(tfx_tg *t, const char *name, int64_t rows, int64_t cols, float scale) {
  tfx_type ty = tfx_type_make(TFX_DT_I8, 2, (int64_t[]){rows, cols});
  int id = tfx_graph_add_param(t->g, name, ty);
  assert_true(id >= 0);
  int64_t bytes = tfx_type_bytes(&ty, 1);
  assert_int_equal(bytes, rows * cols + rows * 4);
  size_t off = (t->size + 63) / 64 * 64;
  tfx_wt_reserve(t, off + (size_t)bytes + 64);
  uint8_t *p = t->blob + off;
  float *x = malloc((size_t)cols * sizeof *x);
  assert_non_null(x);
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t k = 0; k < cols; k++) x[k] = scale * tfx_tg_rand(t) * (1.0f + (float)(r % 5));
    float s;
    tfx_quantize_i8_row(x, cols, (int8_t *)(p + r * cols), &s);
    memcpy(p + rows * cols + r * 4, &s, 4);
  }
  free(x);
  t->g->nodes[id].weight_offset = (int64_t)off;
  t->size = (off + (size_t)bytes + 63) / 64 * 64;
  memset(t->blob + off + bytes, 0, t->size - off - (size_t)bytes);
  t->g->weights_bytes = (int64_t)t->size;
  return id;
}

/* ---- the quantizers against their equations ---- */

static void test_quantizers(void **state) {
  (void)state;
  float x[100];
  for (int i = 0; i < 100; i++) x[i] = sinf(0.37f * (float)i) + (i == 17 ? 9.0f : 0.0f);
  int8_t q[100];
  float s;
  tfx_quantize_i8_row(x, 100, q, &s);
  double amax = 0;
  for (int i = 0; i < 100; i++) amax = fmax(amax, fabs(x[i]));
  assert_float_equal(s, amax / 127.0, 1e-7);
  for (int i = 0; i < 100; i++) {
    assert_true(q[i] >= -127 && q[i] <= 127);
    assert_true(fabs((double)q[i] - (double)x[i] / s) <= 0.5 + 1e-4); /* round to nearest */
  }
  assert_int_equal(q[17], 127);
  /* through tfx_quantize_row: 32 values -> 36 bytes (the values, then the scale) */
  uint8_t row[36];
  assert_true(tfx_quantize_supported(TFX_DT_I8));
  assert_int_equal(tfx_quantize_row(TFX_DT_I8, x, 32, row), 36);
  float s32;
  memcpy(&s32, row + 32, 4);
  float dq[32];
  tfx_type ty = tfx_type_make(TFX_DT_I8, 2, (int64_t[]){1, 32});
  tfx_node n = tfx_node_proto(TFX_OP_PARAM, 0, NULL);
  n.type = ty;
  assert_int_equal(tfx_weight_dequant_row(&n, row, 0, dq), 0);
  for (int i = 0; i < 32; i++) assert_true(fabsf(dq[i] - x[i]) <= 0.5f * s32 * (1 + 1e-5f));
  /* all zero: scale 0, codes 0 */
  float z[8] = {0};
  tfx_quantize_i8_row(z, 8, q, &s);
  assert_true(s == 0.0f && q[0] == 0 && q[7] == 0);
  /* per-token activations */
  float d;
  tfx_act_quant_token(x, 100, q, &d);
  assert_float_equal(d, amax / 127.0, 1e-7);
  for (int i = 0; i < 100; i++) assert_int_equal(q[i], (int)rint((double)(x[i] * (1.0f / d))));
}

/* ---- the graphs ---- */

static tfx_tg *build_linear_n(int64_t K, int64_t N) {
  tfx_tg *t = tfx_tg_new("w8a8_linear", 128, 29 + (uint64_t)K + (uint64_t)N);
  int x = tfx_tg_input_f32(t, K);
  int w = i8param(t, "w", N, K, 0.3f);
  t->g->output = tfx_tg_op3(t, TFX_OP_LINEAR, x, w, tfx_tg_param1(t, "b", N, 1.0f, 0.0f));
  return t;
}

static tfx_tg *build_res(int64_t D, int64_t unused) {
  (void)unused;
  tfx_tg *t = tfx_tg_new("w8a8_res", 128, 31 + (uint64_t)D);
  int x = tfx_tg_input_f32(t, D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int f = tfx_tg_add(t, &nn);
  int y = tfx_tg_op3(t, TFX_OP_LINEAR, f, i8param(t, "w", D, D, 0.3f), tfx_tg_param1(t, "b", D, 1.0f, 0.0f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, y);
  return t;
}

/* the passes at level, then the memory plan */
static void run_passes(tfx_tg *t, int level, const char *what) {
  tfx_i8c_run_passes(t, level, what);
  char err[512];
  if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
}

static int count_tok(const tfx_graph *g) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += tfx_node_act_quant(g, &g->nodes[i]) == 2;
  return n;
}

static const int CALLS[6] = {1, 2, 5, 40, 3, 100};

static void check_graph(tfx_tg *(*build)(int64_t, int64_t), int64_t a, int64_t b, const char *name, int level,
                        int ncpu) {
  tfx_tg *t = build(a, b);
  char what[192];
  snprintf(what, sizeof what, "%s i8 K%lld N%lld -O%d", name, (long long)a, (long long)b, level);
  run_passes(t, level, what);
  if (count_tok(t->g) == 0) fail_msg("%s: no per-token int8 linear in the graph", what);
  for (int c = 0; c < ncpu; c++) {
    if (!tfx_i8c_runs_here(tfx_i8c_cpus[c])) continue;
    char label[256];
    snprintf(label, sizeof label, "%s cpu %s", what, tfx_i8c_cpus[c] ? tfx_i8c_cpus[c] : "host");
    /* JIT vs the interpreter (emulating the per-token quantization), and the
     * same JIT further than the tolerance from the interpreter without it */
    tfx_i8c_check_model(t, tfx_i8c_cpus[c], CALLS, 6, 1, label);
  }
  tfx_tg_free(t);
}

static void test_linear(void **state) {
  (void)state;
  check_graph(build_linear_n, 256, 45, "linear", 0, 3);
  check_graph(build_linear_n, 32, 20, "linear", 0, 2);
  check_graph(build_linear_n, 768, 45, "linear", 0, 1);
  check_graph(build_linear_n, 4096, 45, "chunks", 0, 1);
}

static void test_residual(void **state) {
  (void)state;
  check_graph(build_res, 256, 0, "residual", 2, 3);
}

/* activations = f32, and K = 172: the i8 stream, no int8 kernel */
static void test_stream(void **state) {
  (void)state;
  for (int c = 0; c < 2; c++) {
    tfx_tg *t = build_linear_n(c ? 172 : 256, 45);
    if (!c) t->g->schedule.act_f32 = 1;
    run_passes(t, 0, "i8 stream");
    assert_int_equal(count_tok(t->g), 0);
    tfx_model *m = tfx_tg_jit_model(t, 2);
    assert_non_null(m);
    tfx_tg_run_opts ro = {.in_scale = 2.0f};
    tfx_tg_compare_runs(t, m, CALLS, 6, &ro, c ? "i8 stream K172" : "i8 stream act_f32");
    tfx_model_close(m);
    tfx_tg_free(t);
  }
}

/* ---- the spelling ---- */

static void test_parser(void **state) {
  (void)state;
  tfx_quant_spec sp;
  char msg[512];
  assert_int_equal(tfx_quant_spec_parse("w8a8", &sp, msg, sizeof msg), 0);
  assert_string_equal(sp.name, "w8a8");
  assert_int_equal(sp.n_args, 0);
  assert_int_equal(tfx_quant_spec_parse(" gptq( bits = 4 , group=128 ) ", &sp, msg, sizeof msg), 0);
  assert_string_equal(sp.name, "gptq");
  assert_int_equal(sp.n_args, 2);
  assert_string_equal(sp.args[0].key, "bits");
  assert_string_equal(sp.args[0].value, "4");
  assert_string_equal(sp.args[1].key, "group");
  assert_string_equal(sp.args[1].value, "128");
  assert_int_equal(tfx_quant_spec_parse("sparse24(q8_0)", &sp, msg, sizeof msg), 0);
  assert_int_equal(sp.n_args, 1);
  assert_string_equal(sp.args[0].key, "");
  assert_string_equal(sp.args[0].value, "q8_0");
  static const char *const bad[] = {"", "(", "w8a8(", "w8a8(smooth =)", "w8a8(a b)", "w8a8) x", "w8a8(1,2,3,4,5)"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    msg[0] = 0;
    if (!tfx_quant_spec_parse(bad[i], &sp, msg, sizeof msg)) fail_msg("'%s' parsed", bad[i]);
    assert_true(msg[0]);
  }
  tfx_quant_choice c;
  assert_int_equal(tfx_quant_choice_parse_msg("w8a8", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.mode, TFX_QUANT_FORMAT);
  assert_int_equal(c.dtype, TFX_DT_I8);
  assert_string_equal(tfx_quant_choice_name(c), "w8a8");
  assert_int_equal(tfx_quant_choice_parse_msg("w8a8", 0, &c, msg, sizeof msg), 0); /* a rule too */
  assert_int_equal(tfx_quant_choice_parse_msg("q8_0", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_Q8_0);
  /* errors name what is valid */
  assert_int_equal(tfx_quant_choice_parse_msg("w9a9", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "w9a9"));
  assert_non_null(strstr(msg, "w8a8"));
  assert_int_equal(tfx_quant_choice_parse_msg("w8a8(bits = 4)", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "smooth"));
  assert_int_equal(tfx_quant_choice_parse_msg("q8_0(x = 1)", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "no arguments"));
  assert_int_equal(tfx_quant_choice_parse_msg("w8a8(smooth = 2)", 1, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "[0, 1]"));
  /* SmoothQuant (its calibration is checked by the pass) */
  assert_int_equal(tfx_quant_choice_parse_msg("w8a8(smooth = 0.5)", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_I8);
  assert_int_equal(c.smooth_set, 1);
  assert_true(c.smooth == 0.5f);
  assert_int_equal(tfx_quant_choice_parse_msg("w8a8(smooth = 0.5)", 0, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "whole-model"));
  assert_int_equal(tfx_quant_choice_parse_msg("q4_k_m", 0, &c, msg, sizeof msg), -1);
  assert_non_null(strstr(msg, "preset"));
}

/* ---- ZeroQuant: zq8_64 / zq8_128 (quantize = zeroquant) ---- */

/* A [rows, cols] weight in format dt from random rows with an offset per
 * row (some all-positive, some all-negative: the zero point matters). */
static int zqparam(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, float scale) {
  return tfx_i8c_rows_param(t, dt, name, rows, cols, scale, 0.7f);
}

/* The block of a group of n through tfx_quantize_row, decoded by the
 * format's reference decoder; returns max |x - decoded|. */
static float zq_roundtrip(tfx_dtype dt, const float *x, int n, uint8_t *blk, float *dq) {
  assert_int_equal(tfx_quantize_row(dt, x, n, blk), 4 + n);
  tfx_node nd = tfx_node_proto(TFX_OP_PARAM, 0, NULL);
  nd.type = tfx_type_make(dt, 2, (int64_t[]){1, n});
  assert_int_equal(tfx_weight_dequant_row(&nd, blk, 0, dq), 0);
  float e = 0;
  for (int i = 0; i < n; i++) e = fmaxf(e, fabsf(dq[i] - x[i]));
  return e;
}

static uint16_t rd16le(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* The quantizer's equations (the bytes against a numpy oracle: tests/quant/
 * test_quant_bytes.py), its constant and zero groups, the zero point's
 * worth, the formats' sizes and fallbacks. */
static void test_zq_quantizer(void **state) {
  (void)state;
  uint8_t blk[132];
  float x[128], dq[128];
  assert_int_equal(tfx_dtype_info_of(TFX_DT_ZQ8_64)->block_bytes, 68);   /* 8.5 bits per weight */
  assert_int_equal(tfx_dtype_info_of(TFX_DT_ZQ8_128)->block_bytes, 132); /* 8.25 */
  assert_string_equal(tfx_dtype_name(TFX_DT_ZQ8_64), "zq8_64");
  /* an all-positive group in [1, 2]: codes span 0 .. 255 through z */
  for (int i = 0; i < 64; i++) x[i] = 1.0f + (float)i / 63.0f + 0.003f * sinf((float)i);
  float lo = x[0], hi = x[0];
  for (int i = 0; i < 64; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
  float e = zq_roundtrip(TFX_DT_ZQ8_64, x, 64, blk, dq);
  float ds = tfx_f16_to_f32(rd16le(blk));
  int z = (int16_t)rd16le(blk + 2);
  assert_true(ds >= (hi - lo) / 255.0f && ds - (hi - lo) / 255.0f <= 1e-3f * ds); /* f16 of (hi - lo) / 255, up */
  assert_int_equal(z, (int)roundf(-lo / ds));
  for (int i = 0; i < 64; i++) {
    int q = (int)roundf(x[i] / ds) + z;
    q = q < 0 ? 0 : q > 255 ? 255 : q;
    assert_int_equal(blk[4 + i], q);
    assert_true(dq[i] == ds * (float)(q - z));
  }
  /* the zero point's worth: the same 8 bits with z = 0 (s = hi / 255, the
   * range [0, hi]) lose twice the precision on this group */
  float s0 = hi / 255.0f, e0 = 0;
  for (int i = 0; i < 64; i++) e0 = fmaxf(e0, fabsf(s0 * roundf(x[i] / s0) - x[i]));
  assert_true(e <= 0.5f * ds * 1.001f);
  assert_true(e < 0.6f * e0);
  /* a constant group c: s = |c| / 32000, z = -c / s: decoded within s / 2 */
  for (int i = 0; i < 128; i++) x[i] = -3.25f;
  e = zq_roundtrip(TFX_DT_ZQ8_128, x, 128, blk, dq);
  z = (int16_t)rd16le(blk + 2);
  assert_true(z > 31900 && z <= 32000 && blk[4] == 0 && blk[131] == 0);
  assert_true(e <= 3.25f / 32000.0f);
  /* all zero: d = 0, z = 0, codes 0, decoded 0 */
  memset(x, 0, sizeof x);
  assert_true(zq_roundtrip(TFX_DT_ZQ8_64, x, 64, blk, dq) == 0.0f);
  assert_true(rd16le(blk) == 0 && rd16le(blk + 2) == 0 && blk[4] == 0);
  /* 4 bits: an all-positive group, codes 0 .. 15 packed by 32 (element j
   * low nibble of byte j, j + 16 high), decoded within d / 2 */
  for (int i = 0; i < 128; i++) x[i] = 0.5f + (float)((i * 37) % 128) / 127.0f;
  assert_int_equal(tfx_quantize_row(TFX_DT_ZQ4_128, x, 128, blk), 68);
  {
    tfx_node nd = tfx_node_proto(TFX_OP_PARAM, 0, NULL);
    nd.type = tfx_type_make(TFX_DT_ZQ4_128, 2, (int64_t[]){1, 128});
    assert_int_equal(tfx_weight_dequant_row(&nd, blk, 0, dq), 0);
    float d4 = tfx_f16_to_f32(rd16le(blk));
    int z4 = (int16_t)rd16le(blk + 2);
    assert_true(d4 >= 1.0f / 15.0f && z4 == (int)roundf(-0.5f / d4));
    for (int i = 0; i < 128; i++) {
      int q = (int)roundf(x[i] / d4) + z4;
      q = q < 0 ? 0 : q > 15 ? 15 : q;
      assert_int_equal(blk[4 + 16 * (i / 32) + i % 16] >> (4 * (i % 32 / 16)) & 15, q);
      assert_true(dq[i] == d4 * (float)(q - z4));
      assert_true(fabsf(dq[i] - x[i]) <= 0.5f * d4 * 1.001f);
    }
  }
  /* fallbacks: group 128 on rows of 64 k -> groups of 64; else f16 */
  assert_int_equal(tfx_quantize_fallback(TFX_DT_ZQ8_128, 192), TFX_DT_ZQ8_64);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_ZQ8_128, 256), TFX_DT_ZQ8_128);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_ZQ8_64, 172), TFX_DT_F16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_ZQ4_128, 192), TFX_DT_ZQ4_64);
  assert_int_equal(tfx_quantize_row(TFX_DT_ZQ8_64, x, 96, blk), -1);
  /* the spelling */
  char msg[512];
  tfx_quant_choice c;
  assert_int_equal(tfx_quant_choice_parse_msg("zeroquant", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_ZQ8_64);
  assert_string_equal(tfx_quant_choice_name(c), "zeroquant(group = 64)");
  assert_int_equal(tfx_quant_choice_parse_msg("zeroquant(bits = 8, group = 128)", 0, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_ZQ8_128);
  assert_int_equal(tfx_quant_choice_parse_msg("zeroquant(group = 64)", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_ZQ8_64);
  assert_int_equal(tfx_quant_choice_parse_msg("zeroquant(bits = 4)", 1, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_ZQ4_64);
  assert_string_equal(tfx_quant_choice_name(c), "zeroquant(bits = 4, group = 64)");
  assert_int_equal(tfx_quant_choice_parse_msg("zeroquant(group = 128, bits = 4)", 0, &c, msg, sizeof msg), 0);
  assert_int_equal(c.dtype, TFX_DT_ZQ4_128);
  static const struct {
    const char *in, *want;
  } bad[] = {{"zeroquant(bits = 3)", "bits is 8 or 4"},
             {"zeroquant(bits = 7)", "bits is 8 or 4"},
             {"zeroquant(group = 32)", "64 or 128"},
             {"zeroquant(group = x)", "64 or 128"},
             {"zeroquant(scale = 1)", "bits = 8|4 and group = 64|128"},
             {"zeroquant(64)", "bits = 8|4 and group = 64|128"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    msg[0] = 0;
    if (!tfx_quant_choice_parse_msg(bad[i].in, 1, &c, msg, sizeof msg)) fail_msg("'%s' parsed", bad[i].in);
    if (!strstr(msg, bad[i].want)) fail_msg("'%s': '%s' lacks '%s'", bad[i].in, msg, bad[i].want);
  }
}

/* max_seq 64; 60 rows at K = 4096 are two chunks of quantized rows */
static const int ZQ_CALLS[6] = {1, 2, 5, 40, 3, 60};
static tfx_i8c_opts zq_opts = {zqparam, ZQ_CALLS, 6, 0};

/* the int8 kernels (decode: row-major tiles; prefill: the repacked tiles on
 * AVX512-VNNI, else 4 x 4 tiles) against the interpreter emulating the
 * per-token activations, both groups, on the host, haswell and x86-64 */
static void test_zq_kernels(void **state) {
  (void)state;
  tfx_i8c_check_graph(&zq_opts, tfx_i8c_linear, TFX_DT_ZQ8_64, 256, 0, "zq linear", 1, 3, 1);
  tfx_i8c_check_graph(&zq_opts, tfx_i8c_linear, TFX_DT_ZQ8_128, 384, 0, "zq linear", 1, 1, 1);
  tfx_i8c_check_graph(&zq_opts, tfx_i8c_ffn, TFX_DT_ZQ8_64, 256, 512, "zq ffn", 2, 1, 1);
  tfx_i8c_check_graph(&zq_opts, tfx_i8c_res, TFX_DT_ZQ8_128, 256, 0, "zq residual", 2, 1, 1);
  tfx_i8c_check_graph(&zq_opts, tfx_i8c_linear, TFX_DT_ZQ8_64, 4096, 0, "zq chunks", 1, 1, 1);
  tfx_i8c_check_graph(&zq_opts, tfx_i8c_linear, TFX_DT_ZQ4_64, 256, 0, "zq4 linear", 1, 3, 1);
  tfx_i8c_check_graph(&zq_opts, tfx_i8c_ffn, TFX_DT_ZQ4_128, 256, 512, "zq4 ffn", 2, 1, 1);
}

/* activations = f32: the zq8 stream, no int8 kernel */
static void test_zq_stream(void **state) {
  (void)state;
  for (int f = 0; f < 2; f++) {
    tfx_tg *t = tfx_i8c_linear(zqparam, f ? TFX_DT_ZQ4_64 : TFX_DT_ZQ8_128, 256, 0);
    t->g->schedule.act_f32 = 1;
    run_passes(t, 0, "zq stream");
    assert_int_equal(count_tok(t->g), 0);
    tfx_model *m = tfx_tg_jit_model(t, 2);
    assert_non_null(m);
    tfx_tg_run_opts ro = {.in_scale = 2.0f};
    tfx_tg_compare_runs(t, m, ZQ_CALLS, 6, &ro, f ? "zq4 stream act_f32" : "zq8 stream act_f32");
    tfx_model_close(m);
    tfx_tg_free(t);
  }
}

/* ---- calibration files (ir/calib.c) ---- */

static void calib_two(tfx_calib *c) {
  memset(c, 0, sizeof *c);
  assert_non_null(tfx_calib_entry_get(c, "layers.0.wq", 3));
  assert_non_null(tfx_calib_entry_get(c, "w2", 2)); /* (may move the first: entries live in one array) */
  tfx_calib_entry *a = &c->e[0], *b = &c->e[1];
  a->absmax[0] = 1.5f;
  a->absmax[1] = 0.0f;
  a->absmax[2] = 7.25f;
  b->absmax[0] = 2.0f;
  b->absmax[1] = 0.125f;
  assert_null(tfx_calib_entry_get(c, "w2", 5)); /* a channel count mismatch */
}

static uint8_t *file_bytes(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t *buf = malloc(4096);
  assert_non_null(buf);
  *size = fread(buf, 1, 4096, f);
  fclose(f);
  return buf;
}

static void expect_bad(const uint8_t *d, size_t size, const char *want) {
  tfx_calib c;
  char err[512] = "";
  if (!tfx_calib_parse(d, size, "x.calib", &c, err, sizeof err)) fail_msg("accepted (want '%s')", want);
  if (!strstr(err, want) || !strstr(err, "x.calib")) fail_msg("error '%s' does not say '%s'", err, want);
  assert_int_equal(c.n, 0);
}

static void test_calib_file(void **state) {
  (void)state;
  tfx_calib c, back;
  calib_two(&c);
  char path[] = "/tmp/tfx_w8a8_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  char err[512];
  assert_int_equal(tfx_calib_save(&c, path, err, sizeof err), 0);
  assert_int_equal(tfx_calib_load(path, &back, err, sizeof err), 0);
  assert_int_equal(back.n, 2);
  const tfx_calib_entry *e = tfx_calib_find(&back, "layers.0.wq");
  assert_non_null(e);
  assert_int_equal(e->K, 3);
  assert_true(e->absmax[0] == 1.5f && e->absmax[1] == 0.0f && e->absmax[2] == 7.25f);
  assert_true(tfx_calib_find(&back, "w2")->absmax[1] == 0.125f);
  assert_null(tfx_calib_find(&back, "w3"));
  tfx_calib_free(&back);
  size_t size;
  uint8_t *d = file_bytes(path, &size);
  unlink(path);
  /* version 2: each entry ends in a u32 h (0: no GPTQ H here) */
  assert_int_equal(size, 8 + 4 + 4 + (4 + 11 + 4 + 12 + 4) + (4 + 2 + 4 + 8 + 4));
  assert_memory_equal(d, "TFXCALIB", 8);
  /* every truncation is refused */
  for (size_t n = 0; n < size; n++) {
    tfx_calib t;
    if (!tfx_calib_parse(d, n, "x.calib", &t, err, sizeof err)) fail_msg("a prefix of %zu bytes was accepted", n);
  }
  expect_bad(d, 27, "truncated");
  uint8_t *m = malloc(size + 4);
  assert_non_null(m);
#define MUTATE(off, byte, want)                                                                                        \
  do {                                                                                                                 \
    memcpy(m, d, size);                                                                                                \
    m[off] = (uint8_t)(byte);                                                                                          \
    expect_bad(m, size, want);                                                                                         \
  } while (0)
  MUTATE(0, 'X', "magic");
  MUTATE(8, 3, "version 3");
  MUTATE(12, 0, "entries");
  MUTATE(16, 0, "name of 0 bytes");
  MUTATE(20, ' ', "printable");
  MUTATE(31, 0, "channels");
  memcpy(m, d, size); /* NaN in channel 1 of the first entry */
  uint32_t nan = 0x7fc00000u;
  memcpy(m + 35 + 4, &nan, 4);
  expect_bad(m, size, "NaN");
  memcpy(m, d, size);
  float neg = -1.0f, inf = INFINITY;
  memcpy(m + 35, &neg, 4);
  expect_bad(m, size, "negative");
  memcpy(m + 35, &inf, 4);
  expect_bad(m, size, "infinity");
  memcpy(m, d, size);
  m[size] = 0;
  expect_bad(m, size + 1, "after the last entry");
#undef MUTATE
  free(m);
  free(d);
  /* a duplicate name */
  tfx_calib dup = {0};
  assert_non_null(tfx_calib_entry_get(&dup, "ab", 1));
  assert_int_equal(tfx_calib_save(&dup, path, err, sizeof err), 0);
  d = file_bytes(path, &size);
  unlink(path);
  uint8_t *two = malloc(2 * size);
  assert_non_null(two);
  memcpy(two, d, size);
  memcpy(two + size, d + 16, size - 16);
  two[12] = 2;
  expect_bad(two, 2 * size - 16, "twice");
  free(two);
  free(d);
  tfx_calib_free(&dup);
  assert_int_equal(tfx_calib_load("/nonexistent/x.calib", &back, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent/x.calib"));
  tfx_calib_free(&c);
}

/* ---- SmoothQuant (passes/smooth_quant.c) ---- */

/* x -> rmsnorm(g) -> linear(wa) + linear(wb): both linears read the norm */
static tfx_tg *build_smooth(int64_t D) {
  tfx_tg *t = tfx_tg_new("smooth", 16, 41);
  int x = tfx_tg_input_f32(t, D);
  tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "g", D, 0.2f, 1.0f)});
  nn.eps = 1e-5;
  int f = tfx_tg_add(t, &nn);
  int a = tfx_tg_op2(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "wa", 24, D, 0.3f));
  int b = tfx_tg_op2(t, TFX_OP_LINEAR, f, tfx_tg_param2(t, "wb", 24, D, 0.3f));
  t->g->output = tfx_tg_op2(t, TFX_OP_ADD, a, b);
  return t;
}

static float *param_data(tfx_tg *t, const char *name) {
  for (int i = 0; i < t->g->n_nodes; i++)
    if (t->g->nodes[i].op == TFX_OP_PARAM && t->g->nodes[i].name && !strcmp(t->g->nodes[i].name, name))
      return (float *)(t->blob + t->g->nodes[i].weight_offset);
  fail_msg("no param %s", name);
  return NULL;
}

static void forward_ref(tfx_tg *t, const float *x, int n, float *y) {
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  char err[256];
  if (tfx_interp_forward(it, x, n, y, err, sizeof err)) fail_msg("interpreter: %s", err);
  tfx_interp_free(it);
}

static void test_smooth_pass(void **state) {
  (void)state;
  const int64_t D = 64;
  tfx_tg *t = build_smooth(D);
  float x[4 * 64], y0[4 * 24], y1[4 * 24];
  for (int i = 0; i < 4 * D; i++) x[i] = 2.0f * tfx_tg_rand(t) * (i % 64 == 5 ? 30.0f : 1.0f); /* an outlier channel */
  forward_ref(t, x, 4, y0);
  char err[512] = "";
  tfx_pass_ctx c = {t->g, &t->blob, &t->size, 1, 0, {1, 1}, err, sizeof err};
  t->g->schedule.quantize = (tfx_quant_choice){
      .mode = TFX_QUANT_FORMAT, .dtype = TFX_DT_I8, .smooth_set = 1, .smooth = 0.5f, .llm_int8 = 0, .threshold = 0.0f};
  /* no calibration data: a clear error */
  assert_int_equal(tfx_pass_smooth_quant(&c), -1);
  assert_non_null(strstr(err, "--calibration"));
  /* calibration: the channels' ranges as the inputs give them (wb's entry only covers wa's K: both needed) */
  tfx_calib *cal = calloc(1, sizeof *cal);
  assert_non_null(cal);
  assert_non_null(tfx_calib_entry_get(cal, "wa", D));
  assert_non_null(tfx_calib_entry_get(cal, "wb", D));
  tfx_calib_entry *ea = &cal->e[0], *eb = &cal->e[1];
  for (int64_t j = 0; j < D; j++) ea->absmax[j] = eb->absmax[j] = j == 5 ? 40.0f : 1.0f + 0.01f * (float)j;
  t->g->calib = cal; /* owned by the graph now */
  const float *gain = param_data(t, "g");
  float g5 = gain[5];
  assert_int_equal(tfx_pass_smooth_quant(&c), 0);
  assert_true(fabsf(gain[5] - g5) > 1e-3f * fabsf(g5)); /* the outlier channel moved into the weights */
  assert_int_equal(t->g->schedule.quantize.smooth_set, 2);
  forward_ref(t, x, 4, y1);
  double worst = 0, maxref = 1;
  for (int i = 0; i < 4 * 24; i++) {
    worst = fmax(worst, fabs((double)y0[i] - y1[i]));
    maxref = fmax(maxref, fabs(y0[i]));
  }
  if (worst > 1e-5 * maxref) fail_msg("smoothing changed the function: %g", worst);
  /* a second run changes nothing */
  float g5b = gain[5];
  assert_int_equal(tfx_pass_smooth_quant(&c), 0);
  assert_true(gain[5] == g5b);
  tfx_tg_free(t);
  /* a norm whose linear has no calibration entry is left alone */
  t = build_smooth(D);
  cal = calloc(1, sizeof *cal);
  assert_non_null(cal);
  assert_non_null(tfx_calib_entry_get(cal, "wa", D));
  t->g->calib = cal;
  t->g->schedule.quantize = (tfx_quant_choice){
      .mode = TFX_QUANT_FORMAT, .dtype = TFX_DT_I8, .smooth_set = 1, .smooth = 0.5f, .llm_int8 = 0, .threshold = 0.0f};
  c = (tfx_pass_ctx){t->g, &t->blob, &t->size, 1, 0, {1, 1}, err, sizeof err};
  gain = param_data(t, "g");
  g5 = gain[5];
  assert_int_equal(tfx_pass_smooth_quant(&c), 0);
  assert_true(gain[5] == g5);
  tfx_tg_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quantizers),  cmocka_unit_test(test_parser),       cmocka_unit_test(test_linear),
      cmocka_unit_test(test_residual),    cmocka_unit_test(test_stream),       cmocka_unit_test(test_calib_file),
      cmocka_unit_test(test_smooth_pass), cmocka_unit_test(test_zq_quantizer), cmocka_unit_test(test_zq_kernels),
      cmocka_unit_test(test_zq_stream),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
