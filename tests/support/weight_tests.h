/* tests/support/weight_tests.h — helpers the weight-format tests share
 * (test_weight_format, test_weight_streams, test_int8_linear): room in a test
 * graph's blob for weights written by hand, half-precision bits of small
 * scales, and a plan of calls (rows per call, input and output widths) run
 * through the reference interpreter and through the JIT (one session, 2
 * threads) on the same fixed inputs, with the relative difference of two
 * outputs; and the case graphs both weight-stream tests build (every kernel
 * that reads a weight), with their weights from the test's own maker. */
#ifndef TFX_TEST_WEIGHT_TESTS_H
#define TFX_TEST_WEIGHT_TESTS_H

#include <stddef.h>
#include <stdint.h>

#include "graphs.h"

/* Grows t's blob (64-byte aligned, contents kept) to hold need bytes; fails
 * the test when it cannot. */
void tfx_wt_reserve(tfx_tg *t, size_t need);
/* The IEEE half bits of a normal f32 in f16's normal range, its mantissa
 * truncated (exact for values with at most 11 significant bits; elsewhere
 * the rounding does not matter to the callers: random scales). */
uint16_t tfx_wt_f16(float f);

/* Calls of ns[c] rows (c < n_calls) on inputs of in_w floats per row, or on
 * token ids below vocab when vocab > 0; outputs of out_w floats per row. */
typedef struct tfx_wt_plan {
  int ns[5];
  int n_calls;
  int64_t in_w, out_w, vocab;
} tfx_wt_plan;

/* The floats of all the plan's outputs, concatenated. */
size_t tfx_wt_plan_floats(const tfx_wt_plan *p);
/* The interpreter's outputs of the plan over t's graph with weights blob
 * (the calls run on from the KV cache when the graph has one, else each at
 * position 0), concatenated into out. */
void tfx_wt_run_interp(tfx_tg *t, const uint8_t *blob, const tfx_wt_plan *p, float *out, const char *what);
/* The same through the JIT at opt_level for cpu (NULL: the host), one session
 * of 2 threads, with t's blob. */
void tfx_wt_run_jit(tfx_tg *t, const tfx_wt_plan *p, int opt_level, const char *cpu, float *out, const char *what);
/* max |a - b| / max(1, max |b|) over n floats (a NaN counts as a difference). */
double tfx_wt_rel_diff(const float *a, const float *b, size_t n);

/* ---- the case graphs: every kernel that reads a weight ----
 * Each builds its graph into t (fresh from tfx_tg_new) and sets its output;
 * its weights come from w (the test's format, or its f32 twin), its other
 * params (norm gains, biases, MLA's f32 projections) from t's generator. */

/* A weight param of the given shape in the test's format: its node id. */
typedef int (*tfx_wt_param_fn)(tfx_tg *t, const void *ctx, const char *name, int rank, const int64_t *dims,
                               float scale);
typedef struct tfx_wt_weights {
  tfx_wt_param_fn param;
  const void *ctx;
} tfx_wt_weights;

/* x [T, K] -> linear(w [45, K], b [45]) */
void tfx_wt_case_linear(tfx_tg *t, tfx_wt_weights w, int64_t K);
/* x [T, K] -> linear(rmsnorm(x), wa [45, K]) + linear(x, wb [45, K]): one
 * linear with the norm prologue at -O2, one without */
void tfx_wt_case_norm_linear(tfx_tg *t, tfx_wt_weights w, int64_t K);
/* pre-norm SwiGLU with a residual (w1, w3 [H, D], w2 [D, H]): at -O2 a norm
 * prologue, gate and up concatenated (GLU panels when packed), a residual
 * epilogue */
void tfx_wt_case_ffn(tfx_tg *t, tfx_wt_weights w, int64_t D, int64_t H);
/* x -> rmsnorm -> router [4, D] -> route (top-2 softmax) -> SwiGLU experts
 * (w1, w3 [4, H, D], w2 [4, D, H]) -> + x */
void tfx_wt_case_moe(tfx_tg *t, tfx_wt_weights w, int64_t D, int64_t H);
/* tokens -> embedding(table [V, D]) -> classifier tied to the table */
void tfx_wt_case_embedding(tfx_tg *t, tfx_wt_weights w, int64_t V, int64_t D);
/* x [T, 29] -> matmul(x, b [29, N]) */
void tfx_wt_case_matmul(tfx_tg *t, tfx_wt_weights w, int64_t N);
/* DeepSeek's latent attention (dim 24, 2 heads, causal: calls run on from the
 * KV cache) with wkv_b [2 * 16, r] from w */
void tfx_wt_case_mla(tfx_tg *t, tfx_wt_weights w, int64_t r);

#endif
