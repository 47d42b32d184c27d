/* tests/test_gguf_model.c — stories260K read from GGUF files that the `gguf`
 * package from PyPI writes (tests/gguf/stories260k_gguf.py: llama.cpp's
 * tensor names and Q/K permutation; F32, F16, Q8_0, Q4_0 and Q5_0 with llama.cpp's
 * F16 fallback for rows 32 does not divide), bound by
 * examples/llama/stories260k_gguf.tfx with its `rename` table:
 *  - binding keeps each weight in its stored format (Q8_0 stays Q8_0, the
 *    172-input ffn_down F16) and decodes the norm gains to f32;
 *  - the reference interpreter's logits (f32 activations) equal those of a
 *    float64 numpy forward of the dequantized tensors within 1e-4 relative,
 *    for every file, and the JIT's with f32 activations (dequantizing
 *    weight streams) for every file too; the F32 file
 *    reproduces llama2.c's own logits (stories260K.logits16.f32);
 *  - `style = half` instead of the example's `interleaved` is wrong;
 *  - --emit-gguf writes the params back (from the Q8_0 and the Q5_0 file):
 *    the gguf package reads the same
 *    bytes, types and shapes under the params' names
 *    (tests/gguf/check_roundtrip.py), and tfxc reads it again to the same
 *    logits.
 * The python with the gguf package is TFX_PYENV_PYTHON (scripts/pyenv.sh
 * creates it); a missing one is a failure, not a skip. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../passes/passes.h"
#include "support/testutil.h"

#ifndef TFX_PYENV_PYTHON
#define TFX_PYENV_PYTHON "python3"
#endif

#define VOCAB 512
#define NTOK 16
/* f32 activations against a float64 forward of the same (dequantized)
 * weights: logits ≈ 14 in scale, f32 rounding ≈ 1e-5 */
#define TOL 1e-4

static const int32_t tokens[NTOK] = {1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456, 435, 299, 362, 409, 283};
static const char *const fmts[] = {"f32", "f16", "q8_0", "q4_0", "q5_0"};
#define N_FMTS (int)(sizeof fmts / sizeof fmts[0])
static char *dir;
static char example[4096];

static const char *python(void) {
  const char *env = getenv("TFX_PYENV_PYTHON");
  return env && env[0] ? env : TFX_PYENV_PYTHON;
}

static int setup(void **state) {
  (void)state;
  snprintf(example, sizeof example, "%s/examples/llama/stories260k_gguf.tfx", TFX_SOURCE_DIR);
  if (access(python(), X_OK) != 0) {
    fprintf(stderr,
            "test_gguf_model: FAILED: %s (the python with the gguf package) is missing: run scripts/pyenv.sh, or "
            "set TFX_PYENV_PYTHON\n",
            python());
    return -1;
  }
  char bin[4096];
  tfx_test_model_path("stories260K.bin", bin, sizeof bin);
  if (access(bin, R_OK) != 0) {
    fprintf(stderr, "test_gguf_model: FAILED: the real model is missing: %s (set TFX_MODELS_DIR)\n", bin);
    return -1;
  }
  dir = tfx_test_tmpdir();
  char script[4096];
  snprintf(script, sizeof script, "%s/tests/gguf/stories260k_gguf.py", TFX_SOURCE_DIR);
  char *argv[] = {(char *)python(), script, dir, (char *)tfx_test_models_dir(), NULL};
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  fprintf(stderr, "%s", out ? out : "");
  if (rc != 0) fprintf(stderr, "test_gguf_model: FAILED: %s exited with %d:\n%s\n", script, rc, err ? err : "");
  free(out);
  free(err);
  return rc == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  if (dir && !getenv("TFX_GGUF_KEEP")) tfx_test_rmdir(dir);
  free(dir);
  return 0;
}

static float *read_ref(const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  size_t size = 0;
  char *raw = tfx_test_read_file(path, &size);
  if (!raw || size != (size_t)NTOK * VOCAB * 4) fail_msg("cannot read %s (%zu bytes)", path, size);
  return (float *)raw;
}

/* max |got - ref| / max(1, max |ref|) */
static double rel_err(const float *got, const float *ref) {
  double scale = 1;
  for (int i = 0; i < NTOK * VOCAB; i++)
    if (fabsf(ref[i]) > scale) scale = fabsf(ref[i]);
  return tfx_test_max_abs_diff(got, ref, (size_t)NTOK * VOCAB) / scale;
}

static const tfx_node *param(const tfx_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
  fail_msg("no param '%s'", name);
  return NULL;
}

/* The interpreter's logits over tokens with the graph straight from binding
 * (f32 activations: no run-time activation quantization). */
static void interp_logits(const char *src_path, const char *src, const char *weights, float *out, tfx_graph **keep) {
  tfx_frontend_options o = {.weights = weights};
  tfx_graph *g = NULL;
  tfx_weights w = {0};
  if (tfx_frontend_compile(src_path, src, &o, &g, &w)) fail_msg("%s does not compile with %s", src_path, weights);
  g->schedule.act_f32 = 1;
  tfx_interp *it = tfx_interp_new(g, w.data);
  assert_non_null(it);
  char err[256];
  if (tfx_interp_forward(it, tokens, NTOK, out, err, sizeof err)) fail_msg("interpreter: %s", err);
  tfx_interp_free(it);
  tfx_weights_free(&w);
  if (keep)
    *keep = g;
  else
    tfx_graph_free(g);
}

/* The JIT's logits; act_f32: linears with int8-block weights keep f32
 * activations (dequantizing streams) instead of int8 dot products. */
static void jit_logits(const char *src_path, const char *weights, int act_f32, float *out) {
  tfx_build_options bo = {.weights = weights, .opt_level = 2};
  tfx_build b;
  assert_int_equal(tfx_build_source(src_path, NULL, &bo, &b), 0);
  b.graph->schedule.act_f32 = act_f32;
  tfx_model *m = NULL;
  tfx_target_options t = {.opt_level = tfx_test_llvm_level(2)};
  char err[512];
  if (tfx_build_jit(&b, &t, &m, err, sizeof err) != TFX_OK) fail_msg("jit: %s", err);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  assert_int_equal(tfx_forward_ex(s, tokens, NTOK, out, 0), TFX_OK);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_build_free(&b);
}

static void gguf_path(const char *fmt, char *buf, size_t len) {
  snprintf(buf, len, "%s/stories260K.%s.gguf", dir, fmt);
}

static void test_binding_keeps_formats(void **state) {
  (void)state;
  static const struct {
    const char *fmt;
    tfx_dtype wq, w2, emb;
  } want[] = {{"f32", TFX_DT_F32, TFX_DT_F32, TFX_DT_F32},
              {"f16", TFX_DT_F16, TFX_DT_F16, TFX_DT_F16},
              {"q8_0", TFX_DT_Q8_0, TFX_DT_F16, TFX_DT_Q8_0},
              {"q4_0", TFX_DT_Q4_0, TFX_DT_F16, TFX_DT_Q4_0},
              {"q5_0", TFX_DT_Q5_0, TFX_DT_F16, TFX_DT_Q5_0}};
  int64_t f32_bytes = 0;
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    char path[4096];
    gguf_path(want[k].fmt, path, sizeof path);
    tfx_frontend_options o = {.weights = path};
    tfx_graph *g = NULL;
    tfx_weights w = {0};
    assert_int_equal(tfx_frontend_compile(example, NULL, &o, &g, &w), 0);
    assert_int_equal(param(g, "layers.3.wq")->type.dtype, want[k].wq);
    assert_int_equal(param(g, "layers.3.wk")->type.dtype, want[k].wq);
    assert_int_equal(param(g, "layers.3.w2")->type.dtype, want[k].w2);
    assert_int_equal(param(g, "tok_embeddings")->type.dtype, want[k].emb);
    assert_int_equal(param(g, "layers.3.ffn_norm")->type.dtype, TFX_DT_F32);
    assert_int_equal(param(g, "norm")->type.dtype, TFX_DT_F32);
    /* the blob holds the bytes as stored: its size follows the formats */
    if (k == 0) f32_bytes = g->weights_bytes;
    fprintf(stderr, "%s: weights blob %lld bytes\n", want[k].fmt, (long long)g->weights_bytes);
    if (k > 0) assert_true(g->weights_bytes < f32_bytes * (k == 1 ? 55 : 36) / 100);
    char err[512];
    assert_int_equal(tfx_verify(g, 1, err, sizeof err), 0);
    tfx_weights_free(&w);
    tfx_graph_free(g);
  }
}

static void test_interpreter_matches_numpy(void **state) {
  (void)state;
  float *got = malloc(sizeof(float) * NTOK * VOCAB);
  for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
    char path[4096], ref_name[64];
    gguf_path(fmts[k], path, sizeof path);
    snprintf(ref_name, sizeof ref_name, "ref.%s.f32", fmts[k]);
    float *ref = read_ref(ref_name);
    interp_logits(example, NULL, path, got, NULL);
    double e = rel_err(got, ref);
    fprintf(stderr, "interpreter, %s GGUF vs float64 numpy of its dequantized weights: %.3g relative\n", fmts[k], e);
    assert_true(e <= TOL);
    free(ref);
  }
  free(got);
}

static void test_jit_matches_numpy_and_llama2c(void **state) {
  (void)state;
  float *got = malloc(sizeof(float) * NTOK * VOCAB);
  for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
    char path[4096], ref_name[64];
    gguf_path(fmts[k], path, sizeof path);
    snprintf(ref_name, sizeof ref_name, "ref.%s.f32", fmts[k]);
    float *ref = read_ref(ref_name);
    jit_logits(example, path, 1, got); /* f32 activations: the logits of the dequantized weights */
    double e = rel_err(got, ref);
    fprintf(stderr, "jit, %s GGUF vs float64 numpy (f32 activations): %.3g relative\n", fmts[k], e);
    assert_true(e <= TOL);
    free(ref);
    if (k == 0) { /* the F32 file is llama2.c's model: its logits */
      char lpath[4096];
      size_t size = 0;
      char *l2c = tfx_test_read_file(tfx_test_model_path("stories260K.logits16.f32", lpath, sizeof lpath), &size);
      assert_non_null(l2c);
      assert_int_equal(size, (size_t)NTOK * VOCAB * 4);
      double d = tfx_test_max_abs_diff(got, (const float *)l2c, (size_t)NTOK * VOCAB);
      fprintf(stderr, "jit, f32 GGUF vs llama2.c's logits: max |diff| %.3g\n", d);
      assert_true(d <= TOL);
      free(l2c);
    }
  }
  free(got);
}

/* The -O2 pipeline (fusions concatenate Q/K/V and gate/up, fold_weights
 * folds them byte-wise, pack_weights leaves block formats row-major) on the
 * params as stored, then the interpreter: the same logits. */
static void test_passes_keep_formats(void **state) {
  (void)state;
  float *got = malloc(sizeof(float) * NTOK * VOCAB);
  for (int k = 1; k < N_FMTS; k++) { /* f16, q8_0, q4_0, q5_0 */
    char path[4096], ref_name[64], err[512];
    gguf_path(fmts[k], path, sizeof path);
    snprintf(ref_name, sizeof ref_name, "ref.%s.f32", fmts[k]);
    float *ref = read_ref(ref_name);
    tfx_frontend_options o = {.weights = path};
    tfx_graph *g = NULL;
    tfx_weights w = {0};
    assert_int_equal(tfx_frontend_compile(example, NULL, &o, &g, &w), 0);
    tfx_pass_options po;
    tfx_pass_options_init(&po, 2);
    po.weights = &w.data;
    po.weights_size = &w.size;
    po.verify_each = 1;
    if (tfx_run_passes(g, &po, err, sizeof err)) fail_msg("%s: passes: %s", fmts[k], err);
    assert_int_equal(tfx_verify(g, 1, err, sizeof err), 0);
    int stored = 0, fused = 0;
    for (int i = 0; i < g->n_nodes; i++) {
      const tfx_node *n = &g->nodes[i];
      stored += n->op == TFX_OP_PARAM && n->type.dtype != TFX_DT_F32 && n->weight_offset >= 0;
      fused += n->op == TFX_OP_FUSED_LINEAR;
    }
    assert_true(stored > 0 && fused > 0);
    g->schedule.act_f32 = 1;
    tfx_interp *it = tfx_interp_new(g, w.data);
    assert_non_null(it);
    if (tfx_interp_forward(it, tokens, NTOK, got, err, sizeof err)) fail_msg("interpreter: %s", err);
    tfx_interp_free(it);
    double e = rel_err(got, ref);
    fprintf(stderr, "-O2 passes on %s params as stored (%d stored-format weights, %d fused linears): %.3g relative\n",
            fmts[k], stored, fused, e);
    assert_true(e <= TOL);
    free(ref);
    tfx_weights_free(&w);
    tfx_graph_free(g);
  }
  free(got);
}

/* The example's `style = interleaved` is the one that undoes llama.cpp's
 * permutation: `half` computes something else. */
static void test_half_rope_is_wrong(void **state) {
  (void)state;
  size_t size = 0;
  char *src = tfx_test_read_file(example, &size);
  assert_non_null(src);
  char *at = strstr(src, "style = interleaved), mask");
  assert_non_null(at);
  memcpy(at, "style = half       ", 19);
  char path[4096];
  gguf_path("f32", path, sizeof path);
  float *got = malloc(sizeof(float) * NTOK * VOCAB), *ref = read_ref("ref.f32.f32");
  interp_logits(example, src, path, got, NULL);
  double e = rel_err(got, ref);
  fprintf(stderr, "style = half on the GGUF: %.3g relative (wrong, as expected)\n", e);
  assert_true(e > 1e-2);
  free(got);
  free(ref);
  free(src);
}

static void emit_gguf_round_trip(const char *fmt, tfx_dtype wq) {
  char in[4096], out[4096];
  gguf_path(fmt, in, sizeof in);
  snprintf(out, sizeof out, "%s/emitted.%s.gguf", dir, fmt);
  tfx_build_options bo = {.weights = in, .opt_level = 2, .emit_gguf = out};
  tfx_build b;
  assert_int_equal(tfx_build_source(example, NULL, &bo, &b), 0);
  tfx_build_free(&b);
  /* the gguf package reads what tfxc wrote: same bytes, types, shapes */
  char script[4096];
  snprintf(script, sizeof script, "%s/tests/gguf/check_roundtrip.py", TFX_SOURCE_DIR);
  char *argv[] = {(char *)python(), script, out, in, NULL};
  char *sout = NULL, *serr = NULL;
  int rc = tfx_test_run(argv, &sout, &serr);
  fprintf(stderr, "%s", sout ? sout : "");
  if (rc != 0) fail_msg("check_roundtrip.py: %s", serr ? serr : "?");
  free(sout);
  free(serr);
  /* and tfxc reads it back (names are the params': stories260k.tfx binds it
   * without renaming) to the same logits */
  float *a = malloc(sizeof(float) * NTOK * VOCAB), *c = malloc(sizeof(float) * NTOK * VOCAB);
  tfx_graph *g = NULL;
  char l2c_tfx[4096];
  snprintf(l2c_tfx, sizeof l2c_tfx, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  interp_logits(example, NULL, in, a, NULL);
  interp_logits(l2c_tfx, NULL, out, c, &g);
  assert_int_equal(param(g, "layers.0.wq")->type.dtype, wq);
  assert_int_equal(param(g, "layers.0.w2")->type.dtype, TFX_DT_F16);
  tfx_graph_free(g);
  assert_memory_equal(a, c, sizeof(float) * NTOK * VOCAB);
  free(a);
  free(c);
}

static void test_emit_gguf_round_trip(void **state) {
  (void)state;
  emit_gguf_round_trip("q8_0", TFX_DT_Q8_0);
  emit_gguf_round_trip("q5_0", TFX_DT_Q5_0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_binding_keeps_formats),
      cmocka_unit_test(test_interpreter_matches_numpy),
      cmocka_unit_test(test_jit_matches_numpy_and_llama2c),
      cmocka_unit_test(test_passes_keep_formats),
      cmocka_unit_test(test_half_rope_is_wrong),
      cmocka_unit_test(test_emit_gguf_round_trip),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
