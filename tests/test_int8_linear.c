/* tests/test_int8_linear.c — the int8 dot-product linears (backend/
 * k_linear_q8.c) for weights in q8_0, q4_0, q4_k, q6_k, q5_0 and q3_k (issue
 * #11).
 *
 * Graphs are built with the IR builder, their weights quantized from random
 * f32 rows by tfx_quantize_row (q8_0, q4_0, q5_0) or made of random valid blocks
 * (q4_k, q6_k, q3_k: small positive f16 scales, any other byte: every code,
 * hmask bit and 6-bit scale). Cases: LINEAR +
 * bias at -O0 (K = 256, 512, 768; 256, 768, 1024 for the K-quants; N = 45);
 * at -O2 a pre-norm SwiGLU (one FUSED_LINEAR: RMSNorm prologue, w1 and w3
 * interleaved as GLU; its w2 stays f32, see tfx_i8c_ffn) and x + linear(
 * rmsnorm(x)) + b (prologue, bias, residual epilogue). The JIT runs them with
 * 2 threads on calls of 1, 2, 5, 40 and 3 rows (the decode entry, prefill
 * blocks of 4 with remainders) on the host (AVX-512 VNNI here) and, for the
 * first size of each case, at --mcpu haswell (AVX2 vpmaddubsw) and x86-64
 * (SSE2: the plain-IR path), where this machine runs them.
 * The oracle is the reference interpreter on the same optimized graph, which
 * emulates the activation quantization (tfx_act_quant_block): max |jit - ref|
 * <= 1e-4 * max(1, max |ref|) (the harness's tolerance; f32 accumulation
 * order is all that differs). The same outputs are checked to differ from
 * the interpreter without the emulation (schedule act_f32) by more than that
 * tolerance, so the comparison would catch kernels that skip or get the
 * quantization wrong. With act_f32 the linears must not run the int8
 * kernels: either the backend refuses the format with a clear error (no
 * dequantizing stream yet) or its output matches the interpreter without
 * emulation. Not covered yet: QKV segments with pair-order rows. */
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
#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/int8_cases.h"
#include "support/jit_harness.h"
#include "support/weight_tests.h"
#include "tfx/tfx.h"

#define N_FORMATS 6
static const tfx_dtype FORMATS[N_FORMATS] = {TFX_DT_Q8_0, TFX_DT_Q4_0, TFX_DT_Q4_K,
                                             TFX_DT_Q6_K, TFX_DT_Q5_0, TFX_DT_Q3_K};

#define NCALLS 5
static const int CALLS[NCALLS] = {1, 2, 5, 40, 3};

/* the weights and calls of the case being checked (test_shapes changes the calls) */
static tfx_i8c_opts opts = {tfx_i8c_qparam, CALLS, NCALLS, 0};

/* levels: 1 (-O0), 2 (-O2) or 3 (both); ncpu: the first ncpu of tfx_i8c_cpus */
static void check_graph(tfx_tg *(*build)(tfx_i8c_param_fn, tfx_dtype, int64_t, int64_t), tfx_dtype dt, int64_t a,
                        int64_t b, const char *name, int levels, int ncpu) {
  tfx_i8c_check_graph(&opts, build, dt, a, b, name, levels, ncpu, 1);
}

/* every K on the host; the first on the AVX2 and plain-IR paths too */
static void test_linear(void **state) {
  (void)state;
  for (int f = 0; f < N_FORMATS; f++) {
    int kq = tfx_dtype_info_of(FORMATS[f])->block == 256;
    static const int64_t Ks[2][3] = {{256, 512, 768}, {256, 768, 1024}};
    for (int k = 0; k < 3; k++) check_graph(tfx_i8c_linear, FORMATS[f], Ks[kq][k], 0, "linear", 1, k ? 1 : 3);
  }
}

static void test_ffn(void **state) {
  (void)state;
  for (int f = 0; f < N_FORMATS; f++) {
    check_graph(tfx_i8c_ffn, FORMATS[f], 256, 512, "ffn", 2, 3);
    check_graph(tfx_i8c_ffn, FORMATS[f], 512, 768, "ffn", 2, 1);
  }
}

static void test_residual(void **state) {
  (void)state;
  for (int f = 0; f < N_FORMATS; f++) check_graph(tfx_i8c_res, FORMATS[f], 768, 0, "residual", 2, 3);
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
  for (int f = 0; f < N_FORMATS; f++) {
    int64_t kmin = tfx_dtype_info_of(FORMATS[f])->block;
    check_graph(tfx_i8c_linear_n, FORMATS[f], kmin, 20, "edge", 1, 2);
    check_graph(tfx_i8c_linear_n, FORMATS[f], 4096, 45, "chunks", 1, 2);
  }
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* The decode kernels' block counts (AVX-512 VNNI): q8_0, q4_0 and q5_0 at
 * K = 192 (6 blocks: pairs of blocks, an odd number of pairs; q4_0's groups
 * of 4 need K / 32 % 4 == 0) and K = 384 (q4_0: 3 groups of 4, one
 * accumulator set), one row and then 2. */
static void test_decode_blocks(void **state) {
  (void)state;
  static const int dec_calls[2] = {1, 2};
  opts.calls = dec_calls;
  opts.ncalls = 2;
  static const tfx_dtype pairs[3] = {TFX_DT_Q8_0, TFX_DT_Q4_0, TFX_DT_Q5_0};
  for (int f = 0; f < 3; f++) {
    check_graph(tfx_i8c_linear_n, pairs[f], 192, 20, "dec192", 1, 1);
    check_graph(tfx_i8c_linear_n, pairs[f], 384, 20, "dec384", 1, 1);
  }
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* Tiny K (stories260K's linears: K = 64), the 16-row tiny_rows kernel of
 * q8_0 decode on AVX-512 VNNI (K = 64, 128) and the shapes beside it (K =
 * 96: an odd number of blocks, the row-major tiles): N = 20 and 45 (not
 * multiples of 16: a panel's last 4 and 13 rows), a pre-norm SwiGLU (norm
 * prologue, GLU pairs; hidden 172) and the residual epilogue, 1, 2 and 3
 * rows (every decode row count); K = 64 also at --mcpu haswell and x86-64.
 * (tiny_rows' larger K, up to 512, run in test_linear, test_ffn and
 * test_decode_blocks: K = 192, 256, 384, 512.) */
static void test_tiny_k(void **state) {
  (void)state;
  static const int tiny_calls[3] = {1, 2, 3};
  opts.calls = tiny_calls;
  opts.ncalls = 3;
  check_graph(tfx_i8c_linear_n, TFX_DT_Q8_0, 64, 20, "tiny20", 1, 3);
  check_graph(tfx_i8c_linear_n, TFX_DT_Q8_0, 64, 45, "tiny45", 1, 3);
  check_graph(tfx_i8c_ffn, TFX_DT_Q8_0, 64, 172, "tinyffn", 2, 3);
  check_graph(tfx_i8c_res, TFX_DT_Q8_0, 64, 0, "tinyres", 2, 1);
  check_graph(tfx_i8c_linear_n, TFX_DT_Q8_0, 96, 45, "tiny45", 1, 1);
  check_graph(tfx_i8c_linear_n, TFX_DT_Q8_0, 128, 45, "tiny45", 1, 1);
  check_graph(tfx_i8c_ffn, TFX_DT_Q8_0, 128, 172, "tinyffn", 2, 1);
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* Small batches of run-time rows (a batch step, a short prompt chunk): M <=
 * 4 (k_linear_q8.c's QFEW) take the decode kernels with up to 4 rows of x
 * per pass of the weights (dz_rows, dz4_rows; 2 and 3 rows: one pass of 4,
 * the last rows clamped and not stored), more the repacked tiles: calls of
 * 2, 3, 4, 5, 8 and 17 rows against the same oracle, q8_0 (K = 768: above
 * tiny_rows' 512) and q5_0 in pairs of blocks, q4_0 in pairs (K = 192) and in
 * groups of 4 (K = 256), N = 45 (a
 * partial panel; not a multiple of 16, the reduction's rows), a pre-norm
 * SwiGLU (norm prologue, GLU: two weight rows per pass) and the residual
 * epilogue; q8_0 also at --mcpu haswell and x86-64 (no decode kernels: the
 * row-major tiles). */
static void test_small_m(void **state) {
  (void)state;
  static const int m_calls[6] = {2, 3, 4, 5, 8, 17};
  opts.calls = m_calls;
  opts.ncalls = 6;
  check_graph(tfx_i8c_linear_n, TFX_DT_Q8_0, 768, 45, "smallm", 1, 3);
  check_graph(tfx_i8c_linear_n, TFX_DT_Q4_0, 256, 45, "smallm", 1, 1);
  check_graph(tfx_i8c_linear_n, TFX_DT_Q4_0, 192, 45, "smallm", 1, 1);
  check_graph(tfx_i8c_linear_n, TFX_DT_Q5_0, 192, 45, "smallm", 1, 1);
  check_graph(tfx_i8c_ffn, TFX_DT_Q8_0, 768, 96, "smallmffn", 2, 1);
  check_graph(tfx_i8c_ffn, TFX_DT_Q4_0, 256, 96, "smallmffn", 2, 1);
  check_graph(tfx_i8c_res, TFX_DT_Q4_0, 256, 0, "smallmres", 2, 1);
  check_graph(tfx_i8c_res, TFX_DT_Q8_0, 768, 0, "smallmres", 2, 1);
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* schedule { streams = 2 } (what auto gives a model of 128 MiB of weights
 * or more): the decode kernels read rows j and j + nb / 2 of each panel
 * together. Every format, K = 768 (1024 for the K-quants), N = 45 (a whole
 * panel, then 13 rows: 6 pairs and a last row alone) and 20 (10 pairs),
 * calls of 1, 2 and 3 rows (the decode kernels, one or a pass of 2 or 4
 * rows of x) and 5 (the prefill tiles, beside them), and the residual
 * epilogue (norm prologue, bias, residual) at -O2. */
static void test_two_streams(void **state) {
  (void)state;
  static const int s_calls[4] = {1, 2, 3, 5};
  opts.calls = s_calls;
  opts.ncalls = 4;
  opts.streams = 2;
  for (int f = 0; f < N_FORMATS; f++) {
    int64_t K = tfx_dtype_info_of(FORMATS[f])->block == 256 ? 1024 : 768;
    check_graph(tfx_i8c_linear_n, FORMATS[f], K, 45, "streams45", 1, 1);
    check_graph(tfx_i8c_linear_n, FORMATS[f], K, 20, "streams20", 1, 1);
    check_graph(tfx_i8c_res, FORMATS[f], K, 0, "streamsres", 2, 1);
  }
  opts.streams = 0;
  opts.calls = CALLS;
  opts.ncalls = NCALLS;
}

/* act_f32: the linears leave the int8 kernels */
static void test_act_f32(void **state) {
  (void)state;
  for (int f = 0; f < N_FORMATS; f++) {
    tfx_tg *t = tfx_i8c_linear(tfx_i8c_qparam, FORMATS[f], 256, 0);
    tfx_i8c_run_passes(t, 0, "act_f32");
    char err[512] = "";
    assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
    t->g->schedule.act_f32 = 1;
    assert_int_equal(tfx_i8c_count_op(t->g, TFX_OP_LINEAR), 0);
    tfx_target_options o = {.opt_level = 2};
    tfx_jit_module *jm = NULL;
    const tfx_model_desc *desc = NULL;
    if (tfx_backend_jit(t->g, &o, &jm, &desc, err, sizeof err)) {
      /* no dequantizing stream yet: a clear error naming the param and its format */
      if (!strstr(err, "'w'") || !strstr(err, tfx_dtype_name(FORMATS[f])))
        fail_msg("act_f32 %s: unclear error: %s", tfx_dtype_name(FORMATS[f]), err);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear),  cmocka_unit_test(test_ffn),           cmocka_unit_test(test_residual),
      cmocka_unit_test(test_shapes),  cmocka_unit_test(test_decode_blocks), cmocka_unit_test(test_tiny_k),
      cmocka_unit_test(test_small_m), cmocka_unit_test(test_two_streams),   cmocka_unit_test(test_act_f32),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
