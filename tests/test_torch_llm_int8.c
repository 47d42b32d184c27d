/* tests/test_torch_llm_int8.c — LLM.int8() against its PyTorch oracle
 * (tests/torch/llm_int8.py, written from the equations; issue #13).
 *
 * The script draws a random linear (K 256, N 96, no bias) whose input has 4
 * planted outlier channels (about 40x the others), calibration ranges from
 * 64 other rows, and computes y in float64, as plain W8A8 and as LLM.int8()
 * (threshold 6). tfxc compiles the same linear with quantize =
 * llm_int8(threshold = 6) and the ranges as its calibration data, at -O0 and
 * -O2, JIT, 2 threads, one prefill call of 48 rows, and with quantize = w8a8:
 *  - tfxc's llm_int8 equals the oracle's decomposition within 1e-4 of
 *    max |y| (f32 accumulation order; the int8 parts are exact integers);
 *  - tfxc's w8a8 equals the oracle's W8A8 within 1e-4 of max |y|;
 *  - tfxc's llm_int8 error against float64 is below a tenth of its w8a8's
 *    (the script measures about 0.06 against 1.07, max |y| 48).
 * Needs /usr/bin/python3 with torch and numpy (as the other test_torch_*);
 * not in the sanitizer run (scripts/test.sh leaves test_torch_* out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/jit_harness.h"
#include "tfx/tfx.h"

#define PYTHON "/usr/bin/python3"

static float *read_f32(const char *dir, const char *name, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.bin", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  float *v = malloc(n * sizeof *v);
  assert_non_null(v);
  size_t got = fread(v, sizeof *v, n, f);
  int extra = fgetc(f);
  fclose(f);
  if (got != n || extra != EOF) fail_msg("%s: expected %zu floats", path, n);
  return v;
}

/* y = tfxc's linear on x under quantize choice q (calibration ranges absmax) */
static void run_tfxc(int level, tfx_quant_choice q, int T, int K, int N, const float *x, const float *w,
                     const float *absmax, float *y) {
  tfx_tg *t = tfx_tg_new("llm_int8_oracle", 64, 1);
  int in = tfx_tg_input_f32(t, K);
  int wp = tfx_tg_param2(t, "w", N, K, 1.0f);
  memcpy(t->blob + t->g->nodes[wp].weight_offset, w, (size_t)N * (size_t)K * 4);
  t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, in, wp);
  tfx_calib *cal = calloc(1, sizeof *cal);
  assert_non_null(cal);
  tfx_calib_entry *e = tfx_calib_entry_get(cal, "w", K);
  assert_non_null(e);
  memcpy(e->absmax, absmax, (size_t)K * 4);
  t->g->calib = cal;
  t->g->schedule.quantize = q;
  tfx_pass_options o;
  tfx_pass_options_init(&o, level);
  o.weights = &t->blob;
  o.weights_size = &t->size;
  o.verify_each = 1;
  char err[512];
  if (tfx_run_passes(t->g, &o, err, sizeof err)) fail_msg("-O%d: passes: %s", level, err);
  t->cap = t->size;
  int matmuls = 0;
  for (int i = 0; i < t->g->n_nodes; i++) matmuls += t->g->nodes[i].op == TFX_OP_MATMUL;
  assert_int_equal(matmuls, q.llm_int8 ? 1 : 0);
  tfx_model *m = tfx_tg_jit_model(t, 2);
  assert_non_null(m);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  assert_int_equal(tfx_forward_f32(s, x, T, y), TFX_OK);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_tg_free(t);
}

static double max_diff(const float *a, const float *b, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i]));
  return e;
}

static void test_oracle(void **state) {
  (void)state;
  char dir[] = "/tmp/tfx_llm_int8_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/tests/torch/llm_int8.py %s", PYTHON, TFX_SOURCE_DIR, dir);
  if (system(cmd) != 0) fail_msg("the oracle script failed: %s", cmd);
  char path[512];
  snprintf(path, sizeof path, "%s/dims.txt", dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  int T = 0, K = 0, N = 0;
  assert_int_equal(fscanf(f, "%d %d %d", &T, &K, &N), 3);
  fclose(f);
  assert_true(T > 0 && K > 0 && N > 0);
  size_t ny = (size_t)T * (size_t)N;
  float *x = read_f32(dir, "x", (size_t)T * K), *w = read_f32(dir, "w", (size_t)N * K),
        *absmax = read_f32(dir, "absmax", (size_t)K), *y64 = read_f32(dir, "y_f64", ny),
        *yw = read_f32(dir, "y_w8a8", ny), *yl = read_f32(dir, "y_llm", ny);
  double ymax = 1;
  for (size_t i = 0; i < ny; i++) ymax = fmax(ymax, fabs(y64[i]));
  float *got = malloc(ny * sizeof *got);
  assert_non_null(got);
  const tfx_quant_choice li8 = {
      .mode = TFX_QUANT_FORMAT, .dtype = TFX_DT_I8, .smooth_set = 0, .smooth = 0.0f, .llm_int8 = 1, .threshold = 6.0f};
  const tfx_quant_choice w8 = {
      .mode = TFX_QUANT_FORMAT, .dtype = TFX_DT_I8, .smooth_set = 0, .smooth = 0.0f, .llm_int8 = 0, .threshold = 0.0f};
  for (int level = 0; level <= 2; level += 2) {
    run_tfxc(level, w8, T, K, N, x, w, absmax, got);
    double dw = max_diff(got, yw, ny), ew = max_diff(got, y64, ny);
    run_tfxc(level, li8, T, K, N, x, w, absmax, got);
    double dl = max_diff(got, yl, ny), el = max_diff(got, y64, ny);
    printf("-O%d: max |y| %.3f; tfxc vs oracle: w8a8 %.2e, llm_int8 %.2e; vs float64: w8a8 %.4f, llm_int8 %.4f\n",
           level, ymax, dw, dl, ew, el);
    if (dw > 1e-4 * ymax) fail_msg("-O%d: w8a8 differs from the oracle by %g", level, dw);
    if (dl > 1e-4 * ymax) fail_msg("-O%d: llm_int8 differs from the oracle by %g", level, dl);
    if (!(el < 0.1 * ew)) fail_msg("-O%d: llm_int8's error %g is not below a tenth of w8a8's %g", level, el, ew);
  }
  free(got);
  free(x);
  free(w);
  free(absmax);
  free(y64);
  free(yw);
  free(yl);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_oracle)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
