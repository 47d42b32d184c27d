/* tests/test_lowbit.c — issue #13's ternary and 2:4 sparse weights in the
 * kernels: tq2_0 (ggml's TQ2_0 blocks, read by the int8 dot-product linears
 * of backend/k_linear_q8.c) and the 2:4 formats s24_f32 and s24_q8_0 (read
 * by the gathering kernel of backend/k_linear_s24.c).
 *
 * Weights: random f32 rows quantized by tfx_quantize_row (tq2_0: ggml's
 * per-block absmax quantizer; the BitNet per-tensor quantizer,
 * tfx_quantize_ternary_row, in test_ternary_rows). Cases as
 * tests/test_int8_linear.c's (harness shared: tests/support/int8_cases.c): LINEAR +
 * bias at -O0 (K = 256, 768, 1024; N = 45), at -O2 a pre-norm SwiGLU (one
 * GLU FUSED_LINEAR) and x + linear(rmsnorm(x)) + b, run by the JIT with 2
 * threads on calls of 1, 2, 5, 40 and 3 rows on the host (AVX-512 VNNI
 * here: the repacked prefill tiles and the 512-bit decode) and, for the
 * first size, at --mcpu haswell (AVX2) and x86-64 (plain IR); edges (K =
 * 256 with N = 20, K = 4096 with 100-row calls). The s24 formats run the
 * first of each (the linear, and the FFN of s24_f32, on all three targets:
 * vectors of 16, 8 and 4, each with its own gather), and test_sparse24_gather the
 * kernel's edges. Oracle: the reference
 * interpreter on the same optimized graph (it emulates the int8
 * activations of tq2_0 linears; the s24 formats run f32 activations): max
 * |jit - ref| <= 1e-4 * max(1, max |ref|). For tq2_0 the outputs must also
 * differ from the interpreter without the emulation by more than that (the
 * check is not blind to the activation quantization). tq2_t (`ternary`:
 * tq2_0's bytes with one scale per tensor, activations per token, the
 * whole-row decode kernel dzt_rows) runs the same cases, and
 * test_ternary_token checks it tighter (below).
 *
 * Bytes: the decoders against an independent decoding written here from
 * the layouts (docs/quantization.md), the 2:4 quantizer's kept positions
 * (the two largest |w| of every 4), the ternary quantizer against
 * round_clip(w / mean|w|, -1, 1) (the oracles against the gguf package and
 * numpy are in tests/quant/test_quant_bytes.py); a GGUF file written with a
 * tq2_0 param reads back as tq2_0 with the same bytes (GGUF type 35), and
 * the s24 formats, which GGUF has no type for, are refused with a clear
 * error. */
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
#include "../frontend/gguf.h"
#include "../frontend/weights.h"
#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/int8_cases.h"
#include "support/jit_harness.h"
#include "support/testutil.h"
#include "support/weight_tests.h"
#include "tfx/tfx.h"

/* tq2_t: `ternary` (one scale per tensor, activations per token: dzt_rows) */
static const tfx_dtype FORMATS[4] = {TFX_DT_TQ2_0, TFX_DT_S24_F32, TFX_DT_S24_Q8_0, TFX_DT_TQ2_T};
#define NFMT 4

/* the int8 kernels read the format (else a dequantizing stream) */
static int int8_format(tfx_dtype dt) { return dt == TFX_DT_TQ2_0 || dt == TFX_DT_S24_Q8_0 || dt == TFX_DT_TQ2_T; }

/* A [rows, cols] weight in format dt, from random f32 rows. */
static int qparam(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, float scale) {
  return tfx_i8c_rows_param(t, dt, name, rows, cols, scale, 0.0f);
}

#define NCALLS 5
static const int CALLS[NCALLS] = {1, 2, 5, 40, 3};

/* the weights and calls of the case being checked (test_shapes changes the calls) */
static tfx_i8c_opts opts = {qparam, CALLS, NCALLS, 0};

/* levels: 1 (-O0), 2 (-O2) or 3 (both); ncpu: the first ncpu of tfx_i8c_cpus */
static void check_graph(tfx_tg *(*build)(tfx_i8c_param_fn, tfx_dtype, int64_t, int64_t), tfx_dtype dt, int64_t a,
                        int64_t b, const char *name, int levels, int ncpu) {
  tfx_i8c_check_graph(&opts, build, dt, a, b, name, levels, ncpu, int8_format(dt));
}

/* every K on the host; the first on the AVX2 and plain-IR paths too */
static void test_linear(void **state) {
  (void)state;
  for (int f = 0; f < NFMT; f++) {
    static const int64_t Ks[3] = {256, 768, 1024};
    /* the s24 streams: one K (their decoding is per vector, whatever K) */
    for (int k = 0; k < (int8_format(FORMATS[f]) ? 3 : 1); k++)
      check_graph(tfx_i8c_linear, FORMATS[f], Ks[k], 0, "linear", 1, k ? 1 : 3);
  }
}

static void test_ffn(void **state) {
  (void)state;
  for (int f = 0; f < NFMT; f++) {
    /* s24_f32 on the three targets: the gathers of the GLU tiles with a norm prologue */
    check_graph(tfx_i8c_ffn, FORMATS[f], 256, 512, "ffn", 2, FORMATS[f] == TFX_DT_S24_Q8_0 ? 1 : 3);
    if (int8_format(FORMATS[f])) check_graph(tfx_i8c_ffn, FORMATS[f], 512, 768, "ffn", 2, 1);
  }
}

static void test_residual(void **state) {
  (void)state;
  for (int f = 0; f < NFMT; f++)
    check_graph(tfx_i8c_res, FORMATS[f], 768, 0, "residual", 2, int8_format(FORMATS[f]) ? 3 : 1);
}

/* schedule { streams = 2 } (test_int8_linear's test_two_streams): the
 * int8 formats' decode kernels (dzk_rows for tq2_0, dzt_rows for tq2_t,
 * dz_rows' 2:4 expansion) over two rows of each panel at once, N = 45 (a
 * panel and 13 rows), calls of 1, 2 and 3 rows, and the residual case. */
static void test_two_streams(void **state) {
  (void)state;
  static const int s_calls[3] = {1, 2, 3};
  opts.calls = s_calls;
  opts.ncalls = 3;
  opts.streams = 2;
  for (int f = 0; f < NFMT; f++) {
    if (!int8_format(FORMATS[f])) continue;
    check_graph(tfx_i8c_linear_n, FORMATS[f], 768, 45, "streams45", 1, 1);
    check_graph(tfx_i8c_res, FORMATS[f], 768, 0, "streamsres", 2, 1);
  }
  opts.streams = 0;
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* The shapes of the tiles' edges: K of one block (32) or one super-block
 * (256); N below one panel (20: a partial panel only) and 45; K = 4096 with
 * calls of 100 rows, more than one chunk of quantized rows (k_linear_q8.c
 * quantizes at most 256 KiB of rows at once: 42 rows of the repacked
 * AVX-512 path at K = 4096, 28 on AVX2), 6 and 7 rows (one repacked tile of
 * 6 rows and one more). */
static void test_shapes(void **state) {
  (void)state;
  static const int shape_calls[4] = {100, 1, 7, 6};
  opts.calls = shape_calls;
  opts.ncalls = 4;
  for (int f = 0; f < NFMT; f++) {
    int64_t kmin = tfx_dtype_info_of(FORMATS[f])->block;
    check_graph(tfx_i8c_linear_n, FORMATS[f], kmin, 20, "edge", 1, int8_format(FORMATS[f]) ? 2 : 1);
    if (int8_format(FORMATS[f])) check_graph(tfx_i8c_linear_n, FORMATS[f], 4096, 45, "chunks", 1, 2);
  }
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* The 2:4 gathering kernel (backend/k_linear_s24.c) at its edges: K of one
 * block (no block loop, the odd block alone), two (one pair) and three (a
 * pair and the odd block) and five; N of 1 and 3 (one tile narrower than
 * the decode tile's 8 rows and the prefill tile's 4), 20 and 45; calls of
 * 1, 2, 5 (one 4-row prefill tile and a clamped one) and 9 rows. All at
 * -O0 on the host (AVX-512 here: vpermi2ps); K = 96 with N = 3 also at -O2
 * and on haswell (AVX2: two vpermps and a blend) and x86-64 (vectors of 4,
 * the gather scalarized). */
static void test_sparse24_gather(void **state) {
  (void)state;
  static const int gather_calls[4] = {1, 2, 5, 9};
  static const int64_t shapes[5][2] = {{96, 3}, {32, 1}, {64, 20}, {160, 45}, {32, 45}};
  opts.calls = gather_calls;
  opts.ncalls = 4;
  /* the first shape at -O0 and -O2 on the three targets, the others at -O0 on the host (CI time) */
  for (int f = 1; f < 3; f++) /* the s24 formats */
    for (int s = 0; s < 5; s++)
      check_graph(tfx_i8c_linear_n, FORMATS[f], shapes[s][0], shapes[s][1], "gather", s ? 1 : 3, s ? 1 : 3);
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* The int8 kernel of s24_q8_0 (backend/k_linear_q8.c): the activations
 * quantized per block of 32 as for q8_0, the kept bytes expanded under the
 * keep mask (vpexpandb on the host here, AVX512_VBMI2; vector selects on
 * cascadelake: AVX512-VNNI without VBMI2, the 512-bit decode pairs and the
 * repacked prefill tiles; skylake-avx512: no VNNI, the row-major tiles on
 * vpmaddubsw; haswell: AVX2; x86-64: plain IR), against the interpreter
 * emulating the activation quantization on the same weights, the JIT at
 * LLVM -O3 on every target and -O0 on the host, and the blindness check
 * (LLVM -O2, host). Pass level -O0: LINEAR with K = 64, 96 (an odd number
 * of blocks: the row-major decode tiles), 256 and 768, N = 45, 3, 45, 20
 * (not multiples of 16); -O2: the pre-norm SwiGLU (one GLU FUSED_LINEAR
 * with the norm prologue, K = 256) and x + linear(rmsnorm(x)) + b (K =
 * 768). Calls of 1, 2 (decode), 5 and 9 rows (prefill). */
static void test_sparse24_int8(void **state) {
  (void)state;
  static const char *const cpus[5] = {NULL, "cascadelake", "skylake-avx512", "haswell", "x86-64"};
  static const int calls[4] = {1, 2, 5, 9};
  static const int64_t shapes[4][2] = {{64, 45}, {96, 3}, {256, 45}, {768, 20}};
  for (int c = 0; c < 6; c++) {
    int level = c < 4 ? 0 : 2;
    tfx_tg *t = c < 4    ? tfx_i8c_linear_n(qparam, TFX_DT_S24_Q8_0, shapes[c][0], shapes[c][1])
                : c == 4 ? tfx_i8c_ffn(qparam, TFX_DT_S24_Q8_0, 256, 512)
                         : tfx_i8c_res(qparam, TFX_DT_S24_Q8_0, 768, 0);
    char what[96];
    snprintf(what, sizeof what, "s24_q8_0 int8 %s K%lld",
             c < 4    ? "linear"
             : c == 4 ? "ffn"
                      : "residual",
             (long long)(c < 4    ? shapes[c][0]
                         : c == 4 ? 256
                                  : 768));
    tfx_i8c_run_passes(t, level, what);
    char err[256];
    if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
    if (!tfx_i8c_count_op(t->g, level ? TFX_OP_FUSED_LINEAR : TFX_OP_LINEAR))
      fail_msg("%s: no linear on int8 activations", what);
    for (int k = 0; k < 5; k++) {
      if (!tfx_i8c_runs_here(cpus[k])) continue;
      for (int o = 0; o < (k ? 1 : 2); o++) {
        char label[160];
        snprintf(label, sizeof label, "%s cpu %s LLVM -O%d", what, cpus[k] ? cpus[k] : "host", o ? 0 : 3);
        tfx_i8c_check_model_at(t, cpus[k], o ? 0 : 3, calls, 4, 0, label);
      }
    }
    tfx_i8c_check_model(t, NULL, calls, 4, 1, what); /* not blind to the activations' quantization */
    tfx_tg_free(t);
  }
}

/* act_f32: the tq2_0 linears leave the int8 kernels for the dequantizing stream */
static void test_act_f32(void **state) {
  (void)state;
  for (int f = 0; f < NFMT; f++) {
    tfx_tg *t = tfx_i8c_linear(qparam, FORMATS[f], 256, 0);
    tfx_i8c_run_passes(t, 0, "act_f32");
    char err[512] = "";
    assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
    t->g->schedule.act_f32 = 1;
    assert_int_equal(tfx_i8c_count_op(t->g, TFX_OP_LINEAR), 0);
    tfx_target_options o = {.opt_level = tfx_test_llvm_level(2)};
    tfx_jit_module *jm = NULL;
    const tfx_model_desc *desc = NULL;
    if (tfx_backend_jit(t->g, &o, &jm, &desc, err, sizeof err)) {
      fail_msg("act_f32 %s: %s", tfx_dtype_name(FORMATS[f]), err);
    } else {
      tfx_backend_jit_free(jm);
      tfx_model *m = tfx_tg_jit_model(t, 2);
      assert_non_null(m);
      tfx_tg_run_opts ro = {.in_scale = 2.0f};
      tfx_tg_compare_runs(t, m, CALLS, NCALLS, &ro, "act_f32");
      tfx_model_close(m);
    }
    tfx_tg_free(t);
  }
}

/* tq2_t (`ternary`) on per-token int8 activations (dzt_rows on the host's
 * AVX-512 VNNI decode, the row-major tiles and repacked prefill tiles
 * otherwise): LINEAR (N = 45, not a multiple of 16) with K = 256, 768 and
 * 2048 at JIT LLVM -O0 and -O3, calls of 1, 2, 5 and 40 rows, against the
 * interpreter on the same graph, which quantizes each row per token as the
 * kernel does: both sides dot the same int8 codes, so the tolerance is
 * 2e-6 * max(1, max |ref|) (measured: at most 3e-7 here; the f32 rounding
 * of the interpreter's K products and of the kernel's lane sums). Not
 * blind: the same weight bytes read as tq2_0 (per-block activations, what a
 * GGUF TQ2_0 file keeps) and with f32 activations (act_f32) must both give
 * results further from the JIT than 100 times that tolerance. */
static void ternary_compare(tfx_tg *t, tfx_session *s, int n, const tfx_model_desc *d, double *worst, double *maxref) {
  float *ref = calloc((size_t)n * d->output_width, 4), *out = calloc((size_t)n * d->output_width, 4),
        *x = calloc((size_t)n * d->input_width, 4);
  assert_true(ref && out && x);
  for (int i = 0; i < n * d->input_width; i++) x[i] = 2.0f * tfx_tg_rand(t);
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  char err[256];
  if (tfx_interp_forward(it, x, n, ref, err, sizeof err)) fail_msg("interpreter: %s", err);
  assert_int_equal(tfx_forward_f32(s, x, n, out), TFX_OK);
  for (int i = 0; i < n * d->output_width; i++) {
    if (fabs(ref[i]) > *maxref) *maxref = fabs(ref[i]);
    double e = fabs((double)ref[i] - out[i]);
    if (e > *worst) *worst = e;
  }
  tfx_interp_free(it);
  free(ref);
  free(out);
  free(x);
}

static void test_ternary_token(void **state) {
  (void)state;
  static const int64_t Ks[3] = {256, 768, 2048};
  static const int calls[4] = {1, 2, 5, 40};
  const double tol = 2e-6;
  for (int k = 0; k < 3; k++)
    for (int o = 0; o < 2; o++) {
      tfx_tg *t = tfx_i8c_linear(qparam, TFX_DT_TQ2_T, Ks[k], 0);
      tfx_i8c_run_passes(t, 0, "ternary token");
      char err[256];
      assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
      tfx_node *w = NULL;
      for (int i = 0; i < t->g->n_nodes; i++)
        if (t->g->nodes[i].op == TFX_OP_PARAM && t->g->nodes[i].type.dtype == TFX_DT_TQ2_T) w = &t->g->nodes[i];
      assert_non_null(w);
      for (int i = 0; i < t->g->n_nodes; i++)
        if (t->g->nodes[i].op == TFX_OP_LINEAR) assert_int_equal(tfx_node_act_quant(t->g, &t->g->nodes[i]), 2);
      tfx_model *m = tfx_tg_jit_model_cpu(t, o ? 0 : 3, NULL);
      assert_non_null(m);
      tfx_session *s = NULL;
      tfx_session_options so = {.threads = 2};
      assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
      const tfx_model_desc *d = tfx_model_descriptor(m);
      for (int c = 0; c < 4; c++) {
        double worst[3] = {0, 0, 0}, maxref = 1.0;
        uint64_t rng0 = t->rng;
        for (int v = 0; v < 3; v++) { /* per token; per block of 32 (tq2_0); f32 activations */
          t->rng = rng0;
          w->type.dtype = v == 1 ? TFX_DT_TQ2_0 : TFX_DT_TQ2_T;
          t->g->schedule.act_f32 = v == 2;
          ternary_compare(t, s, calls[c], d, &worst[v], &maxref);
        }
        w->type.dtype = TFX_DT_TQ2_T;
        t->g->schedule.act_f32 = 0;
        if (!(worst[0] <= tol * maxref))
          fail_msg("tq2_t K%lld -O%d, %d rows: max |jit - ref| %g > %g", (long long)Ks[k], o ? 0 : 3, calls[c],
                   worst[0], tol * maxref);
        for (int v = 1; v < 3; v++)
          if (!(worst[v] > 100 * tol * maxref))
            fail_msg("tq2_t K%lld, %d rows: as close to %s activations (%g) as to per-token ones: blind",
                     (long long)Ks[k], calls[c], v == 1 ? "per-block" : "f32", worst[v]);
      }
      tfx_session_free(s);
      tfx_model_close(m);
      tfx_tg_free(t);
    }
}

/* A tq2_0 and a tq2_t linear of the same shape in one model (a GGUF TQ2_0
 * file with `ternary` rules, say): the same bytes but other activations,
 * so the backend must not share one kernel body between them (its body
 * key names the format: tfx_cg_ws_key). Both against the interpreter, on
 * the host, LLVM -O2, -O0 and -O2 graphs. */
static void test_ternary_beside_tq2_0(void **state) {
  (void)state;
  for (int level = 0; level <= 2; level += 2) {
    tfx_tg *t = tfx_tg_new("tq2_pair", 64, 23);
    int x = tfx_tg_input_f32(t, 256);
    int a = tfx_tg_op2(t, TFX_OP_LINEAR, x, qparam(t, TFX_DT_TQ2_0, "wa", 45, 256, 0.3f));
    int b = tfx_tg_op2(t, TFX_OP_LINEAR, x, qparam(t, TFX_DT_TQ2_T, "wb", 45, 256, 0.3f));
    t->g->output = tfx_tg_op2(t, TFX_OP_ADD, a, b);
    tfx_i8c_run_passes(t, level, "tq2_0 beside tq2_t");
    tfx_i8c_check_model(t, NULL, CALLS, NCALLS, 1, "tq2_0 beside tq2_t");
    tfx_tg_free(t);
  }
}

/* A GGUF TQ2_0 weight keeps ggml's per-block activations; tq2_t's are per token. */
static void test_ternary_act_mode(void **state) {
  (void)state;
  for (int f = 0; f < 2; f++) {
    tfx_dtype dt = f ? TFX_DT_TQ2_T : TFX_DT_TQ2_0;
    tfx_tg *t = tfx_i8c_linear(qparam, dt, 256, 0);
    tfx_i8c_run_passes(t, 0, "act mode");
    int seen = 0;
    for (int i = 0; i < t->g->n_nodes; i++)
      if (t->g->nodes[i].op == TFX_OP_LINEAR) {
        assert_int_equal(tfx_node_act_quant(t->g, &t->g->nodes[i]), f ? 2 : 1);
        seen = 1;
      }
    assert_true(seen);
    tfx_tg_free(t);
  }
}

/* ---- bytes ---- */

/* tq2_0 decoded from the layout (64 bytes qs: element 128 j + 32 n + m at
 * bits 2n of byte 32 j + m; f16 d at 64; value d * (q - 1)) */
static float tq2_ref(const uint8_t *blk, int e) {
  uint16_t h = (uint16_t)(blk[64] | blk[65] << 8);
  int j = e / 128, n = e % 128 / 32, m = e % 32;
  return tfx_f16_to_f32(h) * (float)((blk[32 * j + m] >> (2 * n) & 3) - 1);
}

/* BitNet b1.58's quantizer: s = mean |w| over the tensor, q =
 * clamp(round(w / s), -1, 1) (round half to even), d = f16(s) in every
 * block; tfx_quantize_ternary_row and the decoder agree with it, and
 * tfx_quantize_row(tq2_0) is ggml's per-block absmax (d = the block's max |w|). */
static void test_ternary_rows(void **state) {
  (void)state;
  enum { R = 6, K = 512 };
  float *w = malloc(sizeof(float) * R * K), *deq = malloc(sizeof(float) * K);
  uint8_t *q = malloc((size_t)R * K / 256 * 66);
  assert_true(w && q && deq);
  uint64_t rng = 99;
  double sum = 0;
  for (int i = 0; i < R * K; i++) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    w[i] = ((float)(rng >> 40) / (float)(1 << 24) - 0.5f) * 0.2f;
    sum += fabs(w[i]);
  }
  float s = (float)(sum / (R * K));
  w[3] = 0.5f * s; /* ties: round half to even gives 0 and -0 */
  w[4] = -0.5f * s;
  w[5] = 1.5f * s; /* 2 clamps to 1 */
  tfx_node n;
  memset(&n, 0, sizeof n);
  n.op = TFX_OP_PARAM;
  n.type = tfx_type_make(TFX_DT_TQ2_0, 2, (int64_t[]){R, K});
  for (int r = 0; r < R; r++)
    assert_int_equal(tfx_quantize_ternary_row(w + r * K, K, s, q + r * (K / 256 * 66)), K / 256 * 66);
  /* d: s rounded to f16 (to nearest: within half an f16 ulp, 2^-11 relative) */
  float d = tfx_f16_to_f32((uint16_t)(q[64] | q[65] << 8));
  if (!(fabsf(d - s) <= s * 0x1p-11f)) fail_msg("ternary: d %g for s %g", d, s);
  for (int r = 0; r < R; r++) {
    assert_int_equal(tfx_weight_dequant_row(&n, q, r, deq), 0);
    for (int k = 0; k < K; k++) {
      float v = w[r * K + k] / s, t = nearbyintf(v);
      t = t > 1 ? 1 : t < -1 ? -1 : t;
      if (deq[k] != d * t) fail_msg("ternary [%d, %d]: %g, want %g", r, k, deq[k], d * t);
      const uint8_t *blk = q + r * (K / 256 * 66) + k / 256 * 66;
      assert_true(tq2_ref(blk, k % 256) == deq[k]);
    }
  }
  /* ggml's per-block quantizer: d the block's max |w|, q = round(w / d) */
  assert_int_equal(tfx_quantize_row(TFX_DT_TQ2_0, w, K, q), K / 256 * 66);
  for (int b = 0; b < K / 256; b++) {
    float amax = 0;
    for (int e = 0; e < 256; e++) amax = fmaxf(amax, fabsf(w[b * 256 + e]));
    float db = tfx_f16_to_f32((uint16_t)(q[b * 66 + 64] | q[b * 66 + 65] << 8));
    if (!(fabsf(db - amax) <= amax * 0x1p-11f)) fail_msg("tq2_0: d %g for amax %g", db, amax);
    for (int e = 0; e < 256; e++) {
      float t = roundf(w[b * 256 + e] / amax);
      if (tq2_ref(q + b * 66, e) != db * t) fail_msg("tq2_0 block %d elem %d", b, e);
    }
  }
  free(w);
  free(q);
  free(deq);
}

/* 2:4: of every 4 consecutive inputs the two largest |w| are kept (values
 * exact in s24_f32, q8_0's rounding in s24_q8_0), the others are 0. */
static void test_sparse24_rows(void **state) {
  (void)state;
  enum { K = 256 };
  float w[K], deq[K];
  uint64_t rng = 5;
  for (int i = 0; i < K; i++) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    w[i] = (float)(rng >> 40) / (float)(1 << 24) - 0.5f;
  }
  w[8] = w[9] = w[10] = w[11] = 0.25f; /* ties: the first two positions */
  static uint8_t buf[K / 32 * 68];
  for (int f = 1; f < 3; f++) {
    tfx_dtype dt = FORMATS[f];
    assert_int_equal(tfx_quantize_row(dt, w, K, buf), K / 32 * tfx_dtype_info_of(dt)->block_bytes);
    tfx_node n;
    memset(&n, 0, sizeof n);
    n.op = TFX_OP_PARAM;
    n.type = tfx_type_make(dt, 2, (int64_t[]){1, K});
    assert_int_equal(tfx_weight_dequant_row(&n, buf, 0, deq), 0);
    for (int g = 0; g < K / 4; g++) {
      int kept = 0;
      for (int k = 0; k < 4; k++) {
        int larger = 0;
        for (int o = 0; o < 4; o++)
          larger += fabsf(w[4 * g + o]) > fabsf(w[4 * g + k]) || (fabsf(w[4 * g + o]) == fabsf(w[4 * g + k]) && o < k);
        int keep = larger < 2;
        kept += keep;
        float want = keep ? w[4 * g + k] : 0.0f, got = deq[4 * g + k];
        float tol = dt == TFX_DT_S24_F32 ? 0.0f : 0.5f / 127.0f + 1e-6f;
        if (fabsf(got - want) > tol || (!keep && got != 0.0f))
          fail_msg("%s group %d pos %d: %g, want %g", tfx_dtype_name(dt), g, k, got, want);
      }
      assert_int_equal(kept, 2);
    }
  }
}

/* GGUF: a tq2_0 param is written as type 35 (TQ2_0) and reads back as
 * stored; an s24 param cannot be written. */
static void test_gguf_tq2_0(void **state) {
  (void)state;
  for (int f = 0; f < NFMT; f++) {
    tfx_tg *t = tfx_tg_new("lb_gguf", 16, 3);
    int x = tfx_tg_input_f32(t, 256);
    int w = qparam(t, FORMATS[f], "w", 8, 256, 0.3f);
    t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, x, w);
    char *dir = tfx_test_tmpdir(), path[4096], err[512];
    snprintf(path, sizeof path, "%s/lb.gguf", dir);
    tfx_gguf_meta meta = {"lb", "lb.tfx", "test"};
    int rc = tfx_gguf_write(t->g, t->blob, t->size, path, &meta, err, sizeof err);
    if (FORMATS[f] != TFX_DT_TQ2_0 && FORMATS[f] != TFX_DT_TQ2_T) {
      assert_int_equal(rc, -1);
      if (!strstr(err, tfx_dtype_name(FORMATS[f]))) fail_msg("unclear error: %s", err);
    } else {
      if (rc) fail_msg("%s", err);
      tfx_wfile wf;
      if (tfx_wfile_open_gguf(path, &wf, err, sizeof err)) fail_msg("%s", err);
      assert_int_equal(wf.n_tensors, 1);
      assert_int_equal(wf.tensors[0].storage, TFX_DT_TQ2_0);
      size_t size = 0;
      char *raw = tfx_test_read_file(path, &size);
      assert_non_null(raw);
      assert_memory_equal(raw + wf.tensors[0].file_offset, t->blob + t->g->nodes[w].weight_offset, 8 * 66);
      free(raw);
      tfx_wfile_close(&wf);
    }
    tfx_test_rmdir(dir);
    free(dir);
    tfx_tg_free(t);
  }
}

int main(int argc, char **argv) {
  if (argc > 1) cmocka_set_test_filter(argv[1]); /* one test by name (timing) */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ternary_rows),
      cmocka_unit_test(test_sparse24_rows),
      cmocka_unit_test(test_gguf_tq2_0),
      cmocka_unit_test(test_ternary_act_mode),
      cmocka_unit_test(test_ternary_beside_tq2_0),
      cmocka_unit_test(test_ternary_token),
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_ffn),
      cmocka_unit_test(test_residual),
      cmocka_unit_test(test_two_streams),
      cmocka_unit_test(test_shapes),
      cmocka_unit_test(test_act_f32),
      cmocka_unit_test(test_sparse24_gather),
      cmocka_unit_test(test_sparse24_int8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
