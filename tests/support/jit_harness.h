/* tests/support/jit_harness.h — the interpreter-vs-JIT harness of the op
 * tests (test_backend_ops, test_ffn_variants, test_attention_variants): a
 * test graph JIT-compiled into a runtime model, calls of several sizes run
 * through one session (2 threads) and compared with the reference
 * interpreter doing the same calls, at -O0 and -O3 (LLVM's levels, capped
 * by tfx_test_llvm_level: -O0 only in the sanitizer build). */
#ifndef TFX_TEST_JIT_HARNESS_H
#define TFX_TEST_JIT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "graphs.h"
#include "tfx/tfx.h"

/* The tolerance of every comparison: max |jit - ref| <= TFX_TG_TOL * max(1, max |ref|). */
#define TFX_TG_TOL 1e-4

/* Inspects a call's outputs (interpreter's and JIT's, n rows of ow; pos the
 * call's first position). */
typedef void (*tfx_tg_row_check)(const float *ref, const float *out, int n, int ow, int64_t pos);

typedef struct tfx_tg_run_opts {
  float in_scale;             /* f32 inputs: in_scale * U[-1, 1) from the graph's generator (tfx_tg_rand) */
  uint64_t tok_seed;          /* token inputs: an LCG seeded with it per run; 0: the graph's generator t->rng */
  tfx_tg_row_check row_check; /* optional, after each call's comparison */
  int threads;                /* the session's threads; 0: 2 */
} tfx_tg_run_opts;

/* JIT-compiles the (planned) graph at opt_level into a runtime model that
 * owns the JIT module; NULL on failure (the message is printed). */
tfx_model *tfx_tg_jit_model(tfx_tg *t, int opt_level);
/* The same for a target CPU (--mcpu's names; NULL: the host). */
tfx_model *tfx_tg_jit_model_cpu(tfx_tg *t, int opt_level, const char *cpu);
/* Fails the test unless every value of got and ref is finite and
 * max |got - ref| <= TFX_TG_TOL * max(1, max |ref|) over n floats (rows of
 * width, for the message). */
void tfx_tg_check_close(const float *ref, const float *got, size_t n, size_t width, const char *what, int call);
/* Runs calls of ns[c] rows on the interpreter and on model m (one session)
 * and checks every call's output. Models without a KV cache always run at
 * position 0, so the interpreter is reset before each of their calls. */
void tfx_tg_compare_runs(tfx_tg *t, tfx_model *m, const int *ns, int n_calls, const tfx_tg_run_opts *o,
                         const char *what);
/* Plans and verifies the graph, then runs tfx_tg_compare_runs with the
 * model JIT-compiled at -O0 and at -O3. */
void tfx_tg_check_levels(tfx_tg *t, const int *ns, int n_calls, const tfx_tg_run_opts *o, const char *what);

#endif
