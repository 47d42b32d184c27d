/* tests/test_quantize.c — the quantizers of ir/quantize.c in C (the bytes
 * against the gguf package and llama.cpp are checked by test_quant_bytes and
 * bench/check_kquant_bytes.py):
 * - tfx_quantize_row's errors (-1 for a row length its blocks do not divide,
 *   a format without a quantizer, K <= 0) and its byte counts;
 * - tfx_quantize_supported and tfx_quantize_fallback (the rule for rows a
 *   block format cannot hold);
 * - tfx_act_quant_block: zeros, one value, exact ties (round half to even,
 *   unlike Q8_0's roundf), the error bound on random blocks;
 * - tfx_node_act_quant: which linears take int8 activations;
 * - round trips through each format's reference decoder on Gaussian rows:
 *   per-element bounds for f16, bf16, q8_0, q4_0, q5_0 derived from the formats,
 *   relative RMS error bounds for q4_k and q6_k (measured, with margin),
 *   exact round trips for values on a format's grid, all-zero rows, and
 *   non-finite inputs that must not crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/ir.h"

/* ---- a deterministic Gaussian generator ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double urand(void) { /* (0, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static float gauss(void) { return (float)(sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand())); }

/* Quantizes n rows of K from x, decodes them into y through the format
 * table's reference decoder (tfx_weight_dequant_row on a PARAM [n, K]). */
static void round_trip(tfx_dtype dt, const float *x, int64_t n, int64_t K, float *y) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  int64_t row = K / f->block * f->block_bytes;
  uint8_t *q = malloc((size_t)(n * row));
  assert_non_null(q);
  for (int64_t r = 0; r < n; r++) assert_int_equal(tfx_quantize_row(dt, x + r * K, K, q + r * row), row);
  tfx_node w;
  memset(&w, 0, sizeof w);
  w.op = TFX_OP_PARAM;
  int64_t dims[2] = {n, K};
  w.type = tfx_type_make(dt, 2, dims);
  for (int64_t r = 0; r < n; r++) assert_int_equal(tfx_weight_dequant_row(&w, q, r, y + r * K), 0);
  free(q);
}

/* ---- tfx_quantize_row's contract ---- */

static void test_quantize_row_errors(void **state) {
  (void)state;
  float x[512] = {0};
  uint8_t out[1024];
  /* K not a multiple of the block */
  assert_int_equal(tfx_quantize_row(TFX_DT_Q8_0, x, 48, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q4_0, x, 33, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q4_K, x, 288, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q6_K, x, 32, out), -1);
  /* K <= 0 */
  assert_int_equal(tfx_quantize_row(TFX_DT_F16, x, 0, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q4_K, x, -256, out), -1);
  /* formats without a quantizer, and out of range */
  assert_int_equal(tfx_quantize_row(TFX_DT_F32, x, 32, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_I32, x, 32, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_F32_ROWSCALE, x, 32, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_COUNT, x, 32, out), -1);
  assert_int_equal(tfx_quantize_row((tfx_dtype)-1, x, 32, out), -1);
  /* byte counts of the supported formats (i8, w8a8's: the K values, then the row's f32 scale) */
  assert_int_equal(tfx_quantize_row(TFX_DT_I8, x, 32, out), 36);
  assert_int_equal(tfx_quantize_row(TFX_DT_F16, x, 7, out), 14);
  assert_int_equal(tfx_quantize_row(TFX_DT_BF16, x, 7, out), 14);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q8_0, x, 64, out), 68);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q4_0, x, 64, out), 36);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q4_K, x, 512, out), 288);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q6_K, x, 512, out), 420);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q3_K, x, 512, out), 220);
  assert_int_equal(tfx_quantize_row(TFX_DT_Q3_K, x, 288, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_TQ2_0, x, 512, out), 132);
  assert_int_equal(tfx_quantize_row(TFX_DT_S24_F32, x, 64, out), 136);
  assert_int_equal(tfx_quantize_row(TFX_DT_S24_Q8_0, x, 64, out), 44);
  assert_int_equal(tfx_quantize_row(TFX_DT_ZQ8_64, x, 128, out), 136);
  assert_int_equal(tfx_quantize_row(TFX_DT_ZQ8_128, x, 256, out), 264);
  assert_int_equal(tfx_quantize_row(TFX_DT_ZQ4_64, x, 128, out), 72);
  assert_int_equal(tfx_quantize_row(TFX_DT_ZQ4_128, x, 256, out), 136);
  assert_int_equal(tfx_quantize_row(TFX_DT_TQ2_0, x, 288, out), -1);
  assert_int_equal(tfx_quantize_row(TFX_DT_TQ2_T, x, 512, out), 132); /* the row's mean |x| as the tensor's */
  assert_int_equal(tfx_quantize_row(TFX_DT_TQ2_T, x, 288, out), -1);
  assert_int_equal(tfx_quantize_ternary_row(x, 288, 1.0f, out), -1);

  int want[TFX_DT_COUNT] = {
      [TFX_DT_F16] = 1,      [TFX_DT_BF16] = 1,   [TFX_DT_Q8_0] = 1,    [TFX_DT_Q4_0] = 1,   [TFX_DT_Q4_K] = 1,
      [TFX_DT_Q6_K] = 1,     [TFX_DT_Q5_0] = 1,   [TFX_DT_I8] = 1,      [TFX_DT_TQ2_0] = 1,  [TFX_DT_S24_F32] = 1,
      [TFX_DT_S24_Q8_0] = 1, [TFX_DT_ZQ8_64] = 1, [TFX_DT_ZQ8_128] = 1, [TFX_DT_ZQ4_64] = 1, [TFX_DT_ZQ4_128] = 1,
      [TFX_DT_Q3_K] = 1,     [TFX_DT_TQ2_T] = 1};
  for (int dt = 0; dt < TFX_DT_COUNT; dt++) assert_int_equal(tfx_quantize_supported((tfx_dtype)dt), want[dt]);
}

static void test_quantize_fallback(void **state) {
  (void)state;
  /* a format whose blocks divide the row keeps it */
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q4_K, 256), TFX_DT_Q4_K);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q6_K, 4096), TFX_DT_Q6_K);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q8_0, 64), TFX_DT_Q8_0);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q4_0, 288), TFX_DT_Q4_0);
  /* a K-quant row 256 does not divide, as llama.cpp: Q4_K to Q5_0 and Q6_K
   * to Q8_0 when 32 does, else f16 */
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q4_K, 288), TFX_DT_Q5_0);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q4_K, 64), TFX_DT_Q5_0);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q6_K, 64), TFX_DT_Q8_0);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q6_K, 288), TFX_DT_Q8_0);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q4_K, 172), TFX_DT_F16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q6_K, 100), TFX_DT_F16);
  /* Q3_K: llama.cpp's IQ4_NL, which tfxc has not: Q4_0 (the same block and bits) */
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q3_K, 288), TFX_DT_Q4_0);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q3_K, 64), TFX_DT_Q4_0);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q3_K, 172), TFX_DT_F16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q3_K, 512), TFX_DT_Q3_K);
  /* a 32-block row 32 does not divide: f16 (stories260K's w2 has 172 inputs) */
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q8_0, 172), TFX_DT_F16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q4_0, 48), TFX_DT_F16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q5_0, 172), TFX_DT_F16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_Q5_0, 64), TFX_DT_Q5_0);
  /* element formats hold any row */
  assert_int_equal(tfx_quantize_fallback(TFX_DT_F16, 7), TFX_DT_F16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_BF16, 172), TFX_DT_BF16);
  assert_int_equal(tfx_quantize_fallback(TFX_DT_F32, 3), TFX_DT_F32);
  /* every fallback is a format the quantizer can produce for that row */
  for (int dt = 0; dt < TFX_DT_COUNT; dt++) {
    if (!tfx_quantize_supported((tfx_dtype)dt)) continue;
    for (int64_t K = 1; K <= 1024; K++) {
      tfx_dtype fb = tfx_quantize_fallback((tfx_dtype)dt, K);
      assert_true(tfx_quantize_supported(fb));
      assert_int_equal(K % tfx_dtype_info_of(fb)->block, 0);
    }
  }
}

/* ---- activation blocks ---- */

static void test_act_quant_block(void **state) {
  (void)state;
  float x[TFX_ACT_QBLOCK], d;
  int8_t q[TFX_ACT_QBLOCK];
  /* zeros: d = 0, q = 0 (id = 0, no division by zero) */
  memset(x, 0, sizeof x);
  memset(q, 0x55, sizeof q);
  tfx_act_quant_block(x, q, &d);
  assert_true(d == 0.0f);
  for (int j = 0; j < TFX_ACT_QBLOCK; j++) assert_int_equal(q[j], 0);
  /* one value: it maps to +-127, the rest to 0 */
  x[5] = -3.0f;
  tfx_act_quant_block(x, q, &d);
  assert_true(d == 3.0f / 127.0f);
  for (int j = 0; j < TFX_ACT_QBLOCK; j++) assert_int_equal(q[j], j == 5 ? -127 : 0);
  /* ties: amax 127 gives d = 1, id = 1, and x.5 rounds to even (rintf),
   * where Q8_0's roundf would round away from zero */
  static const float tx[] = {127, 0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 3.5f, 126.5f, -126.5f};
  static const int tq[] = {127, 0, 2, 2, -2, 0, 4, 126, -126};
  memset(x, 0, sizeof x);
  for (int j = 0; j < 9; j++) x[j] = tx[j];
  tfx_act_quant_block(x, q, &d);
  assert_true(d == 1.0f);
  for (int j = 0; j < 9; j++) assert_int_equal(q[j], tq[j]);
  /* random blocks: |q| <= 127, and q * d within d / 2 of x (rounding of x * id,
   * id = 1 / d correctly rounded: a relative 2^-23 slack on top) */
  for (int it = 0; it < 2000; it++) {
    float s = powf(10.0f, (float)(urand() * 12 - 6));
    for (int j = 0; j < TFX_ACT_QBLOCK; j++) x[j] = gauss() * s;
    tfx_act_quant_block(x, q, &d);
    float amax = 0;
    for (int j = 0; j < TFX_ACT_QBLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
    assert_true(d == amax / 127.0f);
    for (int j = 0; j < TFX_ACT_QBLOCK; j++) {
      assert_true(q[j] >= -127 && q[j] <= 127);
      assert_true(fabs((double)x[j] - (double)q[j] * d) <= 0.5 * d * (1 + 1e-5));
    }
  }
}

/* A linear whose weight is stored as q8_0, q4_0, q5_0, q3_k, q4_k or q6_k takes
 * int8 activations unless the schedule asks for f32; f16 and f32 weights
 * never do. */
static void test_act_quant_formats(void **state) {
  (void)state;
  static const struct {
    tfx_dtype dt;
    int act;
  } cases[] = {{TFX_DT_Q8_0, 1}, {TFX_DT_Q4_0, 1}, {TFX_DT_Q4_K, 1}, {TFX_DT_Q6_K, 1},
               {TFX_DT_Q5_0, 1}, {TFX_DT_Q3_K, 1}, {TFX_DT_F16, 0},  {TFX_DT_F32, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tfx_graph *g = tfx_graph_new("aq", 8);
    assert_non_null(g);
    int x = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 256}));
    int w = tfx_graph_add_param(g, "w", tfx_type_make(cases[i].dt, 2, (int64_t[]){4, 256}));
    assert_true(x >= 0 && w >= 0);
    tfx_node lin = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){x, w});
    char err[256];
    int y = tfx_graph_add(g, &lin, err, sizeof err);
    if (y < 0) fail_msg("%s: %s", tfx_dtype_name(cases[i].dt), err);
    assert_int_equal(tfx_node_act_quant(g, &g->nodes[y]), cases[i].act);
    g->schedule.act_f32 = 1;
    assert_int_equal(tfx_node_act_quant(g, &g->nodes[y]), 0);
    assert_int_equal(tfx_node_act_quant(g, &g->nodes[w]), 0); /* not a linear */
    tfx_graph_free(g);
  }
}

/* ---- round trips ---- */

enum { RT_ROWS = 64, RT_K = 1024 };

static float *gauss_rows(float scale) {
  float *x = malloc(sizeof(float) * RT_ROWS * RT_K);
  assert_non_null(x);
  for (int i = 0; i < RT_ROWS * RT_K; i++) x[i] = gauss() * scale;
  return x;
}

/* f16 / bf16: relative error <= half an ulp (2^-11 / 2^-8) for normal values */
static void test_round_trip_halfs(void **state) {
  (void)state;
  float *x = gauss_rows(1.0f), *y = malloc(sizeof(float) * RT_ROWS * RT_K);
  assert_non_null(y);
  round_trip(TFX_DT_F16, x, RT_ROWS, RT_K, y);
  for (int i = 0; i < RT_ROWS * RT_K; i++)
    if (fabsf(x[i]) >= 6.2e-5f) assert_true(fabs((double)y[i] - x[i]) <= ldexp(fabs(x[i]), -11));
  round_trip(TFX_DT_BF16, x, RT_ROWS, RT_K, y);
  for (int i = 0; i < RT_ROWS * RT_K; i++) assert_true(fabs((double)y[i] - x[i]) <= ldexp(fabs(x[i]), -8));
  free(x);
  free(y);
}

/* max |x| and its signed value over x[0 .. n) */
static float block_amax(const float *x, int n, float *max) {
  float a = 0;
  *max = 0;
  for (int j = 0; j < n; j++)
    if (fabsf(x[j]) > a) {
      a = fabsf(x[j]);
      *max = x[j];
    }
  return a;
}

/* q8_0: |x - y| <= d / 2 plus the f16 rounding of d (127 * d * 2^-11);
 * q4_0: d = max / -8, so the element of largest magnitude is exact up to d's
 * rounding and the rest lie within d / 2, except values above 7.5 d (the
 * opposite sign of max) which clamp to 7 d: within |d|. */
static void test_round_trip_32_blocks(void **state) {
  (void)state;
  float *x = gauss_rows(0.05f), *y = malloc(sizeof(float) * RT_ROWS * RT_K);
  assert_non_null(y);
  round_trip(TFX_DT_Q8_0, x, RT_ROWS, RT_K, y);
  for (int b = 0; b < RT_ROWS * RT_K / 32; b++) {
    float max, d = block_amax(x + 32 * b, 32, &max) / 127.0f;
    for (int j = 0; j < 32; j++) assert_true(fabsf(x[32 * b + j] - y[32 * b + j]) <= d * (0.5f + 127.0f / 2048.0f));
  }
  round_trip(TFX_DT_Q4_0, x, RT_ROWS, RT_K, y);
  for (int b = 0; b < RT_ROWS * RT_K / 32; b++) {
    float max, d = block_amax(x + 32 * b, 32, &max) / 8.0f;
    for (int j = 0; j < 32; j++) assert_true(fabsf(x[32 * b + j] - y[32 * b + j]) <= d * (1.0f + 8.0f / 2048.0f));
  }
  /* q5_0: d = max / -16, the same bound with a grid twice as fine (values
   * above 15.5 |d| clamp to 15 |d|) */
  round_trip(TFX_DT_Q5_0, x, RT_ROWS, RT_K, y);
  for (int b = 0; b < RT_ROWS * RT_K / 32; b++) {
    float max, d = block_amax(x + 32 * b, 32, &max) / 16.0f;
    for (int j = 0; j < 32; j++) assert_true(fabsf(x[32 * b + j] - y[32 * b + j]) <= d * (1.0f + 16.0f / 2048.0f));
  }
  /* and within d / 2 (plus d's rounding) where no clamp applies: the rounding is right */
  for (int b = 0; b < RT_ROWS * RT_K / 32; b++) {
    float max, d = block_amax(x + 32 * b, 32, &max) / 16.0f;
    for (int j = 0; j < 32; j++)
      if (x[32 * b + j] * max >= 0) /* the side of max: never clamped */
        assert_true(fabsf(x[32 * b + j] - y[32 * b + j]) <= d * (0.5f + 16.0f / 2048.0f));
  }
  /* values on the grid come back exactly: q8_0 with amax 127, q4_0 with max -8, q5_0 with max -16 */
  for (int i = 0; i < RT_K; i++) x[i] = (float)((int)(urand() * 255) - 127);
  for (int b = 0; b < RT_K / 32; b++) x[32 * b] = 127;
  round_trip(TFX_DT_Q8_0, x, 1, RT_K, y);
  assert_memory_equal(x, y, RT_K * sizeof(float));
  for (int i = 0; i < RT_K; i++) x[i] = (float)((int)(urand() * 16) - 8);
  for (int b = 0; b < RT_K / 32; b++) x[32 * b + 7] = -8;
  round_trip(TFX_DT_Q4_0, x, 1, RT_K, y);
  assert_memory_equal(x, y, RT_K * sizeof(float));
  for (int i = 0; i < RT_K; i++) x[i] = (float)((int)(urand() * 32) - 16);
  for (int b = 0; b < RT_K / 32; b++) x[32 * b + 21] = -16;
  round_trip(TFX_DT_Q5_0, x, 1, RT_K, y);
  assert_memory_equal(x, y, RT_K * sizeof(float));
  free(x);
  free(y);
}

static double rel_rms(const float *x, const float *y, size_t n) {
  double e = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    s += (double)x[i] * x[i];
  }
  return sqrt(e / s);
}

/* q4_k / q6_k: relative RMS error on Gaussian rows (measured with this
 * generator, sigma 1 / 0.01: q4_k 0.0714 / 0.0713, q6_k 0.0178 / 0.0179;
 * at sigma 0.01 the f16 super-block scales are subnormal) within +-12%, and
 * the worst element of each super-block within about a step of its
 * sub-block grid (measured: q4_k 0.079 / 0.075, q6_k 0.016 / 0.016 of the
 * super-block's max |x|; bounds 0.1 and 0.021). */
static void test_round_trip_k_quants(void **state) {
  (void)state;
  static const struct {
    tfx_dtype dt;
    float sigma;
    double rms, worst;
  } cases[] = {{TFX_DT_Q4_K, 1.0f, 0.0714, 0.1},
               {TFX_DT_Q4_K, 0.01f, 0.0713, 0.1},
               {TFX_DT_Q6_K, 1.0f, 0.0178, 0.021},
               {TFX_DT_Q6_K, 0.01f, 0.0179, 0.021}};
  float *y = malloc(sizeof(float) * RT_ROWS * RT_K);
  assert_non_null(y);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    float *x = gauss_rows(cases[c].sigma);
    round_trip(cases[c].dt, x, RT_ROWS, RT_K, y);
    double r = rel_rms(x, y, (size_t)RT_ROWS * RT_K);
    print_message("%s sigma %g: relative RMS error %.5f\n", tfx_dtype_name(cases[c].dt), cases[c].sigma, r);
    assert_true(r >= cases[c].rms * 0.88 && r <= cases[c].rms * 1.12);
    double worst = 0;
    for (int b = 0; b < RT_ROWS * RT_K / 256; b++) {
      float max, amax = block_amax(x + 256 * b, 256, &max);
      for (int j = 0; j < 256; j++) worst = fmax(worst, fabsf(x[256 * b + j] - y[256 * b + j]) / amax);
    }
    print_message("%s sigma %g: worst element error %.4f of the super-block's max |x|\n", tfx_dtype_name(cases[c].dt),
                  cases[c].sigma, worst);
    assert_true(worst <= cases[c].worst);
    free(x);
  }
  free(y);
}

/* all-zero rows: zero bytes (q8_0, the K-quants) and zero values (every format) */
static void test_zero_rows(void **state) {
  (void)state;
  static const tfx_dtype dts[] = {TFX_DT_F16,  TFX_DT_BF16, TFX_DT_Q8_0, TFX_DT_Q4_0,
                                  TFX_DT_Q4_K, TFX_DT_Q6_K, TFX_DT_Q5_0};
  float x[512] = {0}, y[512];
  uint8_t q[1024];
  for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
    memset(q, 0xa5, sizeof q);
    int64_t n = tfx_quantize_row(dts[i], x, 512, q);
    assert_true(n > 0);
    if (dts[i] == TFX_DT_Q5_0) /* q5_0: d = 0 / -16 = -0 (f16 0x8000, as ggml), zeros stored as 16 */
      for (int64_t j = 0; j < n; j++) assert_int_equal(q[j], j % 22 == 1 ? 0x80 : j % 22 >= 2 && j % 22 < 6 ? 0xff : 0);
    else if (dts[i] != TFX_DT_Q4_0) /* q4_0 stores zeros as the nibble 8 */
      for (int64_t j = 0; j < n; j++) assert_int_equal(q[j], 0);
    round_trip(dts[i], x, 1, 512, y);
    for (int j = 0; j < 512; j++) assert_true(y[j] == 0.0f);
  }
}

/* non-finite inputs: the K-quants, q4_0, q5_0 and the half formats quantize
 * them without crashing (no float-to-int conversion of an out-of-range
 * value: the sanitizer build checks it) and keep the finite blocks intact */
static void test_non_finite_inputs(void **state) {
  (void)state;
  static const tfx_dtype dts[] = {TFX_DT_F16, TFX_DT_BF16, TFX_DT_Q4_K, TFX_DT_Q6_K, TFX_DT_Q4_0, TFX_DT_Q5_0};
  float x[512], y[512], ref[256];
  uint8_t q[1024];
  for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
    for (int j = 0; j < 512; j++) x[j] = gauss();
    x[3] = INFINITY;
    x[40] = -INFINITY;
    x[77] = NAN;
    x[200] = 3e38f;
    int64_t n = tfx_quantize_row(dts[i], x, 512, q);
    assert_true(n > 0);
    round_trip(dts[i], x + 256, 1, 256, ref);
    round_trip(dts[i], x, 1, 512, y);
    assert_memory_equal(y + 256, ref, sizeof ref);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_quantize_row_errors), cmocka_unit_test(test_quantize_fallback),
      cmocka_unit_test(test_act_quant_block),     cmocka_unit_test(test_act_quant_formats),
      cmocka_unit_test(test_round_trip_halfs),    cmocka_unit_test(test_round_trip_32_blocks),
      cmocka_unit_test(test_round_trip_k_quants), cmocka_unit_test(test_zero_rows),
      cmocka_unit_test(test_non_finite_inputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
