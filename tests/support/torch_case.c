/* tests/support/torch_case.c — the PyTorch harness: runs a reference script,
 * compiles the .tfx with its weights at -O0 and -O3 through the JIT, and
 * compares prefill, token-by-token decode and chunked prefill with the
 * script's expected outputs (tfx_test_torch_case of torch_case.h). */
#include "torch_case.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../frontend/json.h"
#include "testutil.h"
#include "tfx/jit.h"
#include "tfx/tfx.h"

#define PYTHON "/usr/bin/python3"

typedef struct {
  int T, in_width, out_width, causal, tokens;
  int32_t *ids;  /* [T] when tokens */
  float *x;      /* [T, in_width] otherwise */
  float *expect; /* [T, out_width] */
  double scale;  /* max(1, max |expected|) */
} torch_case;

static int meta_int(const tfx_fe_json *m, const char *key, int *out) {
  const tfx_fe_json *v = tfx_fe_json_get(m, key);
  if (!v || v->kind != TFX_FE_JSON_NUMBER || !v->is_uint || v->uval > (1u << 30)) return -1;
  *out = (int)v->uval;
  return 0;
}

static char failure[2048]; /* the message of the first failure */

static int failf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(failure, sizeof failure, fmt, ap);
  va_end(ap);
  return -1;
}

static void *read_exact_file(const char *dir, const char *name, size_t want) {
  char path[2048];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t size = 0;
  char *data = tfx_test_read_file(path, &size);
  if (!data) {
    failf("torch case: cannot read %s", path);
    return NULL;
  }
  if (size != want) {
    free(data);
    failf("torch case: %s has %zu bytes, expected %zu", path, size, want);
    return NULL;
  }
  return data;
}

static int load_case(const char *dir, torch_case *c) {
  char path[2048];
  memset(c, 0, sizeof *c);
  snprintf(path, sizeof path, "%s/meta.json", dir);
  size_t size = 0;
  char *text = tfx_test_read_file(path, &size);
  if (!text) return failf("torch case: cannot read %s", path);
  char err[256];
  tfx_fe_json *m = tfx_fe_json_parse(text, size, err, sizeof err);
  free(text);
  if (!m) return failf("torch case: %s: %s", path, err);
  const tfx_fe_json *kind = tfx_fe_json_get(m, "input"), *causal = tfx_fe_json_get(m, "causal");
  if (m->kind != TFX_FE_JSON_OBJECT || meta_int(m, "T", &c->T) || meta_int(m, "in_width", &c->in_width) ||
      meta_int(m, "out_width", &c->out_width) || !kind || kind->kind != TFX_FE_JSON_STRING || !causal ||
      (causal->kind != TFX_FE_JSON_TRUE && causal->kind != TFX_FE_JSON_FALSE) || c->T < 1 || c->out_width < 1) {
    tfx_fe_json_free(m);
    return failf("torch case: %s lacks T, input, in_width, out_width or causal", path);
  }
  c->tokens = strcmp(kind->str, "tokens") == 0;
  c->causal = causal->kind == TFX_FE_JSON_TRUE;
  int f32 = strcmp(kind->str, "f32") == 0;
  tfx_fe_json_free(m);
  if (!c->tokens && !f32) return failf("torch case: %s: input must be \"tokens\" or \"f32\"", path);
  if (c->tokens)
    c->ids = read_exact_file(dir, "input.bin", (size_t)c->T * 4);
  else
    c->x = read_exact_file(dir, "input.bin", (size_t)c->T * (size_t)c->in_width * 4);
  if (!c->ids && !c->x) return -1;
  c->expect = read_exact_file(dir, "expected.bin", (size_t)c->T * (size_t)c->out_width * 4);
  if (!c->expect) return -1;
  c->scale = 1.0;
  for (size_t i = 0; i < (size_t)c->T * (size_t)c->out_width; i++) {
    if (!isfinite(c->expect[i])) return failf("torch case: expected.bin has a non-finite value at %zu", i);
    if (fabs(c->expect[i]) > c->scale) c->scale = fabs(c->expect[i]);
  }
  return 0;
}

/* Runs rows [t0, t0 + n) in one call into out + t0 * out_width. */
static int run_rows(tfx_session *s, const torch_case *c, int t0, int n, float *out) {
  float *dst = out + (size_t)t0 * (size_t)c->out_width;
  if (c->tokens) return tfx_forward_ex(s, c->ids + t0, n, dst, 0);
  return tfx_forward_f32(s, c->x + (size_t)t0 * (size_t)c->in_width, n, dst);
}

/* Max abs error over all rows; 0 when within the limit, else -1 naming the
 * worst element. */
static int compare(const torch_case *c, const float *got, const char *what, int opt, const char *script, double tol) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < (size_t)c->T * (size_t)c->out_width; i++) {
    double d = fabs((double)got[i] - (double)c->expect[i]);
    if (!(d <= worst)) { /* also catches NaN */
      worst = isnan(d) ? INFINITY : d;
      at = i;
    }
  }
  double limit = tol * c->scale;
  printf("torch %s -O%d %-8s max abs err %.3g (output scale %.3g, limit %.3g)\n", script, opt, what, worst, c->scale,
         limit);
  fflush(stdout);
  if (!(worst <= limit))
    return failf("torch %s -O%d %s: max abs err %.4g > %.4g at row %zu col %zu (got %.6g, expected %.6g)", script, opt,
                 what, worst, limit, at / (size_t)c->out_width, at % (size_t)c->out_width, (double)got[at],
                 (double)c->expect[at]);
  return 0;
}

/* The three modes on one session; 0 or -1 with the failure set. */
static int run_modes(const torch_case *c, tfx_session *s, int has_kv, const char *script, int opt, double tol) {
  size_t n = (size_t)c->T * (size_t)c->out_width;
  float *got = malloc(n * sizeof *got);
  if (!got) return failf("out of memory");
  int rc = 0;
  for (size_t i = 0; i < n; i++) got[i] = NAN;
  int st = run_rows(s, c, 0, c->T, got);
  if (st != TFX_OK) rc = failf("torch %s -O%d prefill: %s", script, opt, tfx_error_message(st));
  if (rc == 0) rc = compare(c, got, "prefill", opt, script, tol);
  if (rc == 0 && c->causal && !has_kv)
    rc = failf("torch %s: the case is causal but the model keeps no KV cache", script);
  if (rc == 0 && c->causal) {
    tfx_session_reset(s);
    for (size_t i = 0; i < n; i++) got[i] = NAN;
    for (int t = 0; t < c->T && rc == 0; t++) {
      st = run_rows(s, c, t, 1, got);
      if (st != TFX_OK) rc = failf("torch %s -O%d decode at %d: %s", script, opt, t, tfx_error_message(st));
    }
    if (rc == 0 && tfx_session_position(s) != c->T)
      rc = failf("torch %s -O%d decode: position %d after %d tokens", script, opt, tfx_session_position(s), c->T);
    if (rc == 0) rc = compare(c, got, "decode", opt, script, tol);
  }
  if (rc == 0 && c->causal && c->T > 3) {
    tfx_session_reset(s);
    for (size_t i = 0; i < n; i++) got[i] = NAN;
    st = run_rows(s, c, 0, 3, got);
    if (st == TFX_OK) st = run_rows(s, c, 3, c->T - 3, got);
    if (st != TFX_OK) rc = failf("torch %s -O%d chunked: %s", script, opt, tfx_error_message(st));
    if (rc == 0) rc = compare(c, got, "chunked", opt, script, tol);
  }
  free(got);
  return rc;
}

static int check_opt(const torch_case *c, const char *dir, const char *tfx_path, const char *script, int opt,
                     double tol) {
  char weights[2048];
  snprintf(weights, sizeof weights, "%s/weights.safetensors", dir);
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = opt;
  co.weights = weights;
  tfx_model *m = NULL;
  int st = tfx_jit_compile_file(tfx_path, &co, &m);
  if (st != TFX_OK)
    return failf("torch %s -O%d: compiling %s failed: %s (diagnostics above)", script, opt, tfx_path,
                 tfx_error_message(st));
  const tfx_model_desc *d = tfx_model_descriptor(m);
  if (d->output_width != c->out_width || d->input_width != (c->tokens ? 1 : c->in_width) ||
      d->input_kind != (c->tokens ? TFX_INPUT_TOKENS : TFX_INPUT_F32) || d->max_seq < c->T) {
    int rc = failf("torch %s: the model (input %s width %d, output width %d, max_seq %d) does not fit the case (input "
                   "%s width %d, output width %d, T %d)",
                   script, d->input_kind == TFX_INPUT_TOKENS ? "tokens" : "f32", d->input_width, d->output_width,
                   d->max_seq, c->tokens ? "tokens" : "f32", c->in_width, c->out_width, c->T);
    tfx_model_close(m);
    return rc;
  }
  tfx_session *s = NULL;
  tfx_session_options so = {0};
  st = tfx_session_create(m, &so, &s);
  if (st != TFX_OK) {
    tfx_model_close(m);
    return failf("torch %s -O%d: session: %s", script, opt, tfx_error_message(st));
  }
  int rc = run_modes(c, s, d->has_kv_cache, script, opt, tol);
  tfx_session_free(s);
  tfx_model_close(m);
  return rc;
}

void tfx_test_torch_case(const char *script, const char *tfx, double tol) {
  tfx_test_torch_case_levels(script, tfx, tol, (1u << 0) | (1u << 3));
}

void tfx_test_torch_case_levels(const char *script, const char *tfx, double tol, unsigned levels) {
  char script_path[2048], tfx_path[2048];
  snprintf(script_path, sizeof script_path, "%s/tests/torch/%s.py", TFX_SOURCE_DIR, script);
  snprintf(tfx_path, sizeof tfx_path, "%s/%s", TFX_SOURCE_DIR, tfx);
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char *argv[] = {PYTHON, script_path, dir, NULL};
  char *out = NULL, *err = NULL;
  int status = tfx_test_run(argv, &out, &err);
  torch_case c;
  memset(&c, 0, sizeof c);
  int rc = 0;
  if (status != 0) {
    const char *e = err ? err : "";
    size_t len = strlen(e);
    rc = failf("torch %s: `%s %s %s` failed (status %d):\n%s%s", script, PYTHON, script_path, dir, status,
               len > 1500 ? "…" : "", len > 1500 ? e + len - 1500 : e);
  }
  free(out);
  free(err);
  if (rc == 0) rc = load_case(dir, &c);
  for (int opt = 0; opt <= 3; opt++)
    if (rc == 0 && (levels >> opt & 1u)) rc = check_opt(&c, dir, tfx_path, script, opt, tol);
  free(c.ids);
  free(c.x);
  free(c.expect);
  int keep = getenv("TFX_TORCH_KEEP") != NULL;
  if (keep)
    printf("torch %s: case kept in %s\n", script, dir);
  else
    tfx_test_rmdir(dir);
  free(dir);
  if (rc) fail_msg("%s%s", failure, keep ? "" : " (set TFX_TORCH_KEEP=1 to keep the case's files)");
}
