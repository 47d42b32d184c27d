/* tests/support/int8_cases.h — the harness the int8-linear tests share
 * (test_int8_linear, test_lowbit, test_w8a8): the case graphs (LINEAR +
 * bias, pre-norm SwiGLU, x + linear(rmsnorm(x)) + b) with their weights from
 * the test's own maker, the -O0 / -O2 pass run, the count of linears on
 * int8 activations, which --mcpu targets this machine runs, and the check
 * of a JIT model against the interpreter (emulating the activation
 * quantization) that also fails when the comparison is blind to it. */
#ifndef TFX_TEST_INT8_CASES_H
#define TFX_TEST_INT8_CASES_H

#include <stdint.h>

#include "graphs.h"

/* Adds a [rows, cols] weight param in format dt, from random values of
 * magnitude about scale; returns its node id. */
typedef int (*tfx_i8c_param_fn)(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, float scale);

/* A [rows, cols] weight in format dt (q8_0, q4_0, q5_0: tfx_quantize_row of
 * random f32 rows of magnitude scale; q4_k, q6_k, q3_k: random valid blocks,
 * every code, hmask bit and 6-bit scale, small positive f16 scales giving
 * |w| up to about scale), at a 64-byte aligned offset of t's blob. */
int tfx_i8c_qparam(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, float scale);
/* A [rows, cols] weight in format dt: tfx_quantize_row of random rows
 * scale * U[-1, 1) + (r % 5 - 2) * shift * scale (shift 0: centred; else
 * some rows all positive, some all negative). */
int tfx_i8c_rows_param(tfx_tg *t, tfx_dtype dt, const char *name, int64_t rows, int64_t cols, float scale, float shift);

/* What a test checks its cases with: its weight maker and the calls (rows
 * per call) the models run. */
typedef struct tfx_i8c_opts {
  tfx_i8c_param_fn param;
  const int *calls;
  int ncalls;
  int streams; /* the graphs' schedule { streams } (0: auto) */
} tfx_i8c_opts;

/* The case graphs, weights by qp. x -> linear(w, b), N = 45 (b unused) */
tfx_tg *tfx_i8c_linear(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t K, int64_t unused);
/* x -> linear(w, b) with N output columns */
tfx_tg *tfx_i8c_linear_n(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t K, int64_t N);
/* pre-norm SwiGLU of width D, hidden H: -O2 fuses the norm into the prologue
 * of one GLU linear (w1 and w3 interleaved); w2 stays f32 */
tfx_tg *tfx_i8c_ffn(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t D, int64_t H);
/* x + linear(rmsnorm(x), w) + b: -O2 makes one FUSED_LINEAR with the norm
 * prologue, the bias and the residual epilogue */
tfx_tg *tfx_i8c_res(tfx_i8c_param_fn qp, tfx_dtype dt, int64_t D, int64_t unused);

/* The passes at level (verifying each) over t's blob; fails the test on an
 * error. */
void tfx_i8c_run_passes(tfx_tg *t, int level, const char *what);
/* Nodes of op that run on quantized activations (tfx_node_act_quant). */
int tfx_i8c_count_op(const tfx_graph *g, tfx_op op);
/* Does this machine run code for cpu? (NULL: the host, always; haswell,
 * skylake-avx512, cascadelake, icelake-server as their features say; other
 * names: yes) */
int tfx_i8c_runs_here(const char *cpu);

/* The --mcpu targets: the host (NULL), "haswell" (AVX2), "x86-64" (SSE2). */
extern const char *const tfx_i8c_cpus[3];

/* JITs t for cpu (2 threads) and compares it on calls[0..ncalls) with the
 * interpreter on the same graph (TFX_TG_TOL). With blind_check, the same
 * inputs also run through the interpreter without the emulation (act_f32),
 * and the JIT must be further from that than the tolerance. */
void tfx_i8c_check_model(tfx_tg *t, const char *cpu, const int *calls, int ncalls, int blind_check, const char *what);
/* The same with the JIT at LLVM level llvm_level (0 .. 3; the check above: 2). */
void tfx_i8c_check_model_at(tfx_tg *t, const char *cpu, int llvm_level, const int *calls, int ncalls, int blind_check,
                            const char *what);

/* build(o->param, dt, a, b) at -O0 (levels bit 0) and -O2 (bit 1), planned,
 * checked on the first ncpu of tfx_i8c_cpus that run here. int8: the
 * format runs the int8 kernels (a linear on quantized activations must be
 * in the graph, and the check must not be blind); else none may be. */
void tfx_i8c_check_graph(const tfx_i8c_opts *o, tfx_tg *(*build)(tfx_i8c_param_fn, tfx_dtype, int64_t, int64_t),
                         tfx_dtype dt, int64_t a, int64_t b, const char *name, int levels, int ncpu, int int8);

#endif
