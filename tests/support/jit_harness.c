/* tests/support/jit_harness.c — the interpreter-vs-JIT harness the op tests
 * share (jit_harness.h). */
#include "jit_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../backend/backend.h"
#include "../../passes/passes.h"
#include "testutil.h"

static void release_jit(void *m) { tfx_backend_jit_free(m); }

tfx_model *tfx_tg_jit_model(tfx_tg *t, int opt_level) { return tfx_tg_jit_model_cpu(t, opt_level, NULL); }

tfx_model *tfx_tg_jit_model_cpu(tfx_tg *t, int opt_level, const char *cpu) {
  tfx_target_options o = {.opt_level = tfx_test_llvm_level(opt_level), .cpu = cpu};
  tfx_jit_module *jm = NULL;
  const tfx_model_desc *desc = NULL;
  char err[512] = "";
  if (tfx_backend_jit(t->g, &o, &jm, &desc, err, sizeof err)) {
    fprintf(stderr, "tfx_backend_jit: %s\n", err);
    return NULL;
  }
  tfx_model *m = NULL;
  int rc = tfx_model_from_descriptor(desc, t->blob, release_jit, jm, &m);
  if (rc != TFX_OK) {
    fprintf(stderr, "tfx_model_from_descriptor: %s\n", tfx_error_message(rc));
    tfx_backend_jit_free(jm);
    return NULL;
  }
  return m;
}

void tfx_tg_check_close(const float *ref, const float *got, size_t n, size_t width, const char *what, int call) {
  double maxref = 1.0, diff = 0.0;
  size_t worst = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(ref[i]) || !isfinite(got[i]))
      fail_msg("%s: call %d: non-finite output at [%zu, %zu] (jit %g, ref %g)", what, call, i / width, i % width,
               got[i], ref[i]);
    if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    double e = fabs((double)ref[i] - (double)got[i]);
    if (e > diff) {
      diff = e;
      worst = i;
    }
  }
  if (!(diff <= TFX_TG_TOL * maxref))
    fail_msg("%s: call %d: max |err| = %g at [%zu, %zu] (jit %g, ref %g), allowed %g", what, call, diff, worst / width,
             worst % width, got[worst], ref[worst], TFX_TG_TOL * maxref);
}

void tfx_tg_compare_runs(tfx_tg *t, tfx_model *m, const int *ns, int n_calls, const tfx_tg_run_opts *o,
                         const char *what) {
  const tfx_model_desc *d = tfx_model_descriptor(m);
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = o->threads > 0 ? o->threads : 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  uint64_t seeded = o->tok_seed, *rng = o->tok_seed ? &seeded : &t->rng;
  int64_t pos = 0;
  for (int c = 0; c < n_calls; c++) {
    int n = ns[c];
    size_t ow = (size_t)d->output_width;
    float *ref = calloc((size_t)n * ow, sizeof(float)), *out = calloc((size_t)n * ow, sizeof(float));
    int32_t *tok = calloc((size_t)n, sizeof(int32_t));
    float *x = calloc((size_t)n * (size_t)d->input_width, sizeof(float));
    assert_true(ref && out && tok && x);
    for (int i = 0; i < n && d->vocab > 0; i++)
      tok[i] = (int32_t)(((*rng = *rng * 6364136223846793005ull + 1) >> 33) % (uint64_t)d->vocab);
    for (int i = 0; i < n * d->input_width; i++) x[i] = o->in_scale * tfx_tg_rand(t);
    if (!d->has_kv_cache) {
      tfx_interp_reset(it);
      pos = 0;
    }
    char err[256], label[256];
    const void *input = d->input_kind == TFX_INPUT_TOKENS ? (const void *)tok : (const void *)x;
    if (tfx_interp_forward(it, input, n, ref, err, sizeof err)) fail_msg("%s: interpreter: %s", what, err);
    int rc = d->input_kind == TFX_INPUT_TOKENS ? tfx_forward_ex(s, tok, n, out, 0) : tfx_forward_f32(s, x, n, out);
    assert_int_equal(rc, TFX_OK);
    snprintf(label, sizeof label, "%s (n = %d)", what, n);
    tfx_tg_check_close(ref, out, (size_t)n * ow, ow, label, c);
    if (o->row_check) o->row_check(ref, out, n, (int)ow, pos);
    pos += n;
    free(ref);
    free(out);
    free(tok);
    free(x);
  }
  tfx_session_free(s);
  tfx_interp_free(it);
}

void tfx_tg_check_levels(tfx_tg *t, const int *ns, int n_calls, const tfx_tg_run_opts *o, const char *what) {
  char err[256];
  if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
  if (tfx_verify(t->g, 0, err, sizeof err)) fail_msg("%s: verify: %s", what, err);
  static const int levels[2] = {0, 3};
  for (int i = 0; i < 2; i++) {
    /* the sanitizer build compiles at LLVM -O0 only (tfx_test_llvm_level): once */
    if (i && tfx_test_llvm_level(levels[i]) == tfx_test_llvm_level(levels[0])) break;
    char label[192];
    snprintf(label, sizeof label, "%s -O%d", what, tfx_test_llvm_level(levels[i]));
    tfx_model *m = tfx_tg_jit_model(t, levels[i]);
    if (!m) fail_msg("%s: JIT failed", label);
    tfx_tg_compare_runs(t, m, ns, n_calls, o, label);
    tfx_model_close(m);
  }
}
