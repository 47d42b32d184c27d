/* tests/test_vector_math.c — the accuracy of the inline vector polynomials
 * the backend emits for transcendental functions (backend/cg_math.c), against
 * libm in double precision, over a dense sweep of inputs plus the special
 * values (±0, ±inf, NaN, the overflow and underflow edges). Each function is
 * compiled as a one-op model through the JIT (so it is the vector code the
 * kernels run) for the host and for the x86-64-v3 (AVX2) and x86-64-v2 (SSE)
 * levels the host also runs, and its worst error is checked
 * against the bound documented in docs/performance.md ("Vector math"):
 *   - relative error max |y - f| / |f| where |f| >= 1e-30, and
 *   - absolute error max |y - f| elsewhere (results that underflow).
 * exp is checked through softmax over two columns [x, 0] -> e^x / (e^x + 1),
 * i.e. sigmoid(x); tanh as `tanh(x)` (the IR's softcap with c = 1,
 * c tanh(x / c)) and softcap(x, cap = 3). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../include/tfx/jit.h"
#include "support/testutil.h"

#define COLS 4096
#define ROWS 16
#define N (COLS * ROWS)

typedef struct fn_case {
  const char *name;
  const char *expr;        /* of x */
  double (*ref)(double x); /* libm, double */
  double max_rel;          /* the documented bound */
  double max_rel_nofma;    /* the same without FMA (x86-64-v2: SSE only) */
  double max_abs;          /* where |f| < 1e-30 */
  double lo, hi;           /* the sweep */
} fn_case;

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_silu(double x) { return x / (1.0 + exp(-x)); }
static double ref_gelu(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
/* 0.5 x (1 + tanh(u)) = x / (1 + e^(-2u)): the same function without the
 * cancellation of 1 + tanh(u) for u << 0, which costs even double precision
 * all its digits there */
static double ref_gelu_tanh(double x) {
  double u = sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * u));
}
static double ref_relu(double x) { return x > 0 ? x : 0; }
static double ref_softcap3(double x) { return 3.0 * tanh(x / 3.0); }

static const fn_case cases[] = {
    {"sigmoid", "sigmoid(x)", ref_sigmoid, 4e-7, 4e-7, 1e-35, -110, 110},
    {"silu", "silu(x)", ref_silu, 4e-7, 4e-7, 1e-35, -110, 110},
    {"gelu (erf)", "gelu(x)", ref_gelu, 2e-6, 8e-6, 1e-35, -14, 14},
    {"gelu (tanh)", "gelu(x, approximate = tanh)", ref_gelu_tanh, 2e-5, 2e-5, 1e-35, -14, 14},
    {"relu", "relu(x)", ref_relu, 0, 0, 0, -10, 10},
    {"tanh", "tanh(x)", tanh, 3e-7, 3e-7, 1e-35, -12, 12},
    {"softcap (c = 3)", "softcap(x, cap = 3.0)", ref_softcap3, 3e-7, 3e-7, 1e-35, -36, 36},
};

/* The sweep: evenly spaced over [lo, hi], then the special values. */
static void inputs(const fn_case *c, float *x) {
  static const float special[] = {0.0f,   -0.0f,  1e-30f,  -1e-30f, 1e-45f,  88.7f, -88.7f, 89.0f,
                                  -89.0f, 103.9f, -103.9f, 104.0f,  -104.0f, 1e30f, -1e30f};
  int ns = (int)(sizeof special / sizeof special[0]);
  for (int i = 0; i < N - ns - 3; i++) x[i] = (float)(c->lo + (c->hi - c->lo) * i / (N - ns - 4));
  for (int i = 0; i < ns; i++) x[N - ns - 3 + i] = special[i];
  x[N - 3] = INFINITY;
  x[N - 2] = -INFINITY;
  x[N - 1] = NAN;
}

static void check(const fn_case *c, const char *cpu) {
  char src[512];
  snprintf(src, sizeof src,
           "model vm\nconst n = %d, max_seq = %d\nforward(x : f32[T, n]) -> f32[T, n] {\n  return %s\n}\n", COLS, ROWS,
           c->expr);
  tfx_compile_options o;
  tfx_compile_options_init(&o);
  o.opt_level = 2;
  o.weights = "random";
  o.cpu = cpu;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("vm.tfx", src, &o, &m), TFX_OK);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
  assert_non_null(x);
  assert_non_null(y);
  inputs(c, x);
  assert_int_equal(tfx_forward_f32(s, x, ROWS, y), TFX_OK);
  double worst_rel = 0, worst_abs = 0;
  float at_rel = 0, at_abs = 0;
  for (int i = 0; i < N; i++) {
    double f = c->ref((double)x[i]);
    if (isinf(x[i]) && x[i] < 0 && isnan(f)) {
      /* x * (something -> 0) at -inf: NaN, as in PyTorch (silu, gelu); 0 is the limit */
      if (!isnan(y[i]) && y[i] != 0.0f) fail_msg("%s(-inf) = %g, expected NaN or 0", c->name, y[i]);
      continue;
    }
    if (isnan(f)) {
      if (!isnan(y[i])) fail_msg("%s(%g) = %g, expected NaN", c->name, x[i], y[i]);
      continue;
    }
    if (isinf(f)) {
      if (y[i] != (float)f) fail_msg("%s(%g) = %g, expected %g", c->name, x[i], y[i], f);
      continue;
    }
    double d = fabs((double)y[i] - f);
    if (fabs(f) >= 1e-30) {
      if (!(d / fabs(f) <= worst_rel)) worst_rel = d / fabs(f), at_rel = x[i];
    } else if (!(d <= worst_abs)) {
      worst_abs = d, at_abs = x[i];
    }
  }
  fprintf(stderr,
          "%-12s %-10s max relative error %.3g (at x = %.9g, bound %.3g); max absolute error %.3g below 1e-30 "
          "(at x = %.9g, bound %.3g)\n",
          c->name, cpu ? cpu : "host", worst_rel, at_rel,
          cpu && !strcmp(cpu, "x86-64-v2") ? c->max_rel_nofma : c->max_rel, worst_abs, at_abs, c->max_abs);
  assert_true(worst_rel <= (cpu && !strcmp(cpu, "x86-64-v2") ? c->max_rel_nofma : c->max_rel));
  assert_true(worst_abs <= c->max_abs);
  free(x);
  free(y);
  tfx_session_free(s);
  tfx_model_close(m);
}

/* exp through softmax([x, 0]) = e^x / (e^x + 1): the columns are x and 0. */
static void test_exp_via_softmax(void **state) {
  (void)state;
  static const char src[] = "model sm\nconst max_seq = 8192\n"
                            "forward(x : f32[T, 2]) -> f32[T, 2] {\n  return softmax(x)\n}\n";
  tfx_compile_options o;
  tfx_compile_options_init(&o);
  o.weights = "random";
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("sm.tfx", src, &o, &m), TFX_OK);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  enum { R = 8192 };
  float *x = malloc(2 * R * sizeof *x), *y = malloc(2 * R * sizeof *y);
  for (int i = 0; i < R; i++) {
    x[2 * i] = (float)(-100.0 + 200.0 * i / (R - 1));
    x[2 * i + 1] = 0.0f;
  }
  assert_int_equal(tfx_forward_f32(s, x, R, y), TFX_OK);
  double worst = 0;
  for (int i = 0; i < R; i++)
    for (int k = 0; k < 2; k++) {
      double a = x[2 * i], f = k == 0 ? 1.0 / (1.0 + exp(-a)) : 1.0 / (1.0 + exp(a));
      if (f < 1e-30) continue;
      double d = fabs((double)y[2 * i + k] - f) / f;
      worst = d > worst ? d : worst;
    }
  fprintf(stderr, "%-12s max relative error %.3g (bound %.3g)\n", "softmax", worst, 4e-7);
  assert_true(worst <= 4e-7);
  free(x);
  free(y);
  tfx_session_free(s);
  tfx_model_close(m);
}

static void test_functions(void **state) {
  (void)state;
  static const char *const cpus[3] = {NULL, "x86-64-v3", "x86-64-v2"};
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check(&cases[i], cpus[k]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_functions),
      cmocka_unit_test(test_exp_via_softmax),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
