/* tests/test_e2e.c — end to end on the real stories260K model: the reference
 * interpreter, the JIT (-O0 and -O3, decode and prefill) and the AOT .so (API
 * and CLI) all reproduce llama2.c's 200 greedy tokens exactly and its logits at
 * positions 0..15 within LOGIT_TOL; sessions on two threads and two models in
 * one process give the same results. The model files are required: a missing
 * ../shared/models is a failure, not a skip. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../include/tfx/jit.h"
#include "support/testutil.h"

#define VOCAB 512
#define STEPS 200
#define REF_LOGIT_ROWS 16
/* llama2.c (float32) vs an f32 implementation with other summation orders:
 * logits are about 14 in scale; a float64 implementation differs from the
 * reference by at most 3e-5. */
#define LOGIT_TOL 1e-4

static int32_t ref_ids[256];
static float ref_logits[REF_LOGIT_ROWS * VOCAB];
static char model_bin[4096];
static char example_tfx[4096];

static int load_references(void **state) {
  (void)state;
  char path[4096];
  if (tfx_test_stories260k("test_e2e", model_bin, sizeof model_bin, example_tfx, sizeof example_tfx, ref_ids, 256))
    return -1;
  size_t size = 0;
  char *raw = tfx_test_read_file(tfx_test_model_path("stories260K.logits16.f32", path, sizeof path), &size);
  if (!raw || size != sizeof ref_logits) {
    free(raw);
    return -1;
  }
  memcpy(ref_logits, raw, sizeof ref_logits);
  free(raw);
  return 0;
}

/* One decode step: feed `token`, get the logits of its position. */
typedef int (*step_fn)(void *ctx, int32_t token, float *logits);

/* Greedy generation from BOS; checks every id against the reference and the
 * first REF_LOGIT_ROWS logits rows. Returns the number of ids that matched. */
static int greedy_matches(const char *what, step_fn step, void *ctx, int steps) {
  float logits[VOCAB];
  int32_t token = 1;
  for (int i = 0; i < steps; i++) {
    if (step(ctx, token, logits) != 0) {
      fprintf(stderr, "%s: step %d failed\n", what, i);
      return i;
    }
    if (i < REF_LOGIT_ROWS) {
      double diff = tfx_test_max_abs_diff(logits, ref_logits + i * VOCAB, VOCAB);
      if (!(diff <= LOGIT_TOL)) {
        fprintf(stderr, "%s: logits at position %d differ by %g (tolerance %g)\n", what, i, diff, LOGIT_TOL);
        return i;
      }
    }
    token = tfx_test_argmax(logits, VOCAB);
    if (token != ref_ids[i]) {
      fprintf(stderr, "%s: token %d is %d, reference %d\n", what, i, token, ref_ids[i]);
      return i;
    }
  }
  return steps;
}

static int interp_step(void *ctx, int32_t token, float *logits) {
  char err[256];
  return tfx_interp_forward(ctx, &token, 1, logits, err, sizeof err);
}

static int session_step(void *ctx, int32_t token, float *logits) { return tfx_forward(ctx, &token, 1, logits); }

static void test_interpreter_reproduces_llama2c(void **state) {
  (void)state;
  tfx_build_options bo = {.weights = model_bin, .opt_level = 0};
  tfx_build b;
  assert_int_equal(tfx_build_source(example_tfx, NULL, &bo, &b), 0);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  assert_non_null(it);
  assert_int_equal(greedy_matches("interpreter", interp_step, it, STEPS), STEPS);
  tfx_interp_free(it);
  tfx_build_free(&b);
}

static tfx_model *jit_model_for(int opt, const char *cpu) {
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = opt;
  co.weights = model_bin;
  co.cpu = cpu;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_file(example_tfx, &co, &m), TFX_OK);
  return m;
}

static tfx_model *jit_model(int opt) { return jit_model_for(opt, NULL); }

static void check_model_greedy(const char *what, tfx_model *m, int threads) {
  tfx_session_options so = {.threads = threads};
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  assert_int_equal(greedy_matches(what, session_step, s, STEPS), STEPS);
  /* reset starts over: the first step again equals position 0 */
  tfx_session_reset(s);
  assert_int_equal(tfx_session_position(s), 0);
  assert_int_equal(greedy_matches(what, session_step, s, 20), 20);
  tfx_session_free(s);
}

static void test_jit_O0_reproduces_llama2c(void **state) {
  (void)state;
  tfx_model *m = jit_model(0);
  check_model_greedy("jit -O0", m, 1);
  tfx_model_close(m);
}

static void test_jit_O3_reproduces_llama2c(void **state) {
  (void)state;
  tfx_model *m = jit_model(3);
  check_model_greedy("jit -O3", m, 2);
  tfx_model_close(m);
}

/* schedule { unroll = on }: the fully unrolled decode linears (every fused
 * linear of stories260K, K 64 and 172) reproduce llama2.c's ids too. */
static void test_jit_unrolled_reproduces_llama2c(void **state) {
  (void)state;
  char *src = tfx_test_read_file(example_tfx, NULL);
  assert_non_null(src);
  const char *at = strstr(src, "schedule {\n");
  assert_non_null(at);
  size_t head = (size_t)(at - src) + strlen("schedule {\n");
  char *patched = malloc(strlen(src) + 32);
  assert_non_null(patched);
  memcpy(patched, src, head);
  strcpy(patched + head, "  unroll = on\n");
  strcat(patched, src + head);
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = 3;
  co.weights = model_bin;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source(example_tfx, patched, &co, &m), TFX_OK);
  check_model_greedy("jit -O3, unroll = on", m, 1);
  tfx_model_close(m);
  free(patched);
  free(src);
}

/* Prefill: BOS and the first 15 greedy ids in one call give the 16 reference
 * rows; then decoding continues from position 16 with the reference ids. */
static void check_prefill_rows(tfx_model *m) {
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  int32_t tokens[REF_LOGIT_ROWS];
  tokens[0] = 1;
  memcpy(tokens + 1, ref_ids, (REF_LOGIT_ROWS - 1) * sizeof *tokens);
  float *logits = malloc(sizeof ref_logits);
  assert_int_equal(tfx_forward_ex(s, tokens, REF_LOGIT_ROWS, logits, 0), TFX_OK);
  double diff = tfx_test_max_abs_diff(logits, ref_logits, REF_LOGIT_ROWS * VOCAB);
  fprintf(stderr, "prefill of 16: max abs logit error %g\n", diff);
  assert_true(diff <= LOGIT_TOL);
  assert_int_equal(tfx_session_position(s), REF_LOGIT_ROWS);
  int32_t next = tfx_test_argmax(logits + (REF_LOGIT_ROWS - 1) * VOCAB, VOCAB);
  for (int i = REF_LOGIT_ROWS - 1; i < 64; i++) {
    assert_int_equal(next, ref_ids[i]);
    assert_int_equal(tfx_forward(s, &next, 1, logits), TFX_OK);
    next = tfx_test_argmax(logits, VOCAB);
  }
  /* the last-row entry: the same prefill asking for the last row only */
  tfx_session_reset(s);
  float last[VOCAB];
  assert_int_equal(tfx_forward(s, tokens, REF_LOGIT_ROWS, last), TFX_OK);
  diff = tfx_test_max_abs_diff(last, ref_logits + (REF_LOGIT_ROWS - 1) * VOCAB, VOCAB);
  fprintf(stderr, "prefill of 16, last row only: max abs logit error %g\n", diff);
  assert_true(diff <= LOGIT_TOL);
  free(logits);
  tfx_session_free(s);
}

static void test_jit_prefill_matches_reference_rows(void **state) {
  (void)state;
  tfx_model *m = jit_model(2);
  check_prefill_rows(m);
  tfx_model_close(m);
}

/* The code for other x86 levels (which this machine also runs): AVX2 (6 x 16
 * micro-kernel tiles on 16 ymm registers) and SSE only (4-wide vectors, no
 * FMA) reproduce the reference too. */
static void test_jit_other_cpu_levels(void **state) {
  (void)state;
  static const char *const cpus[2] = {"x86-64-v3", "x86-64-v2"};
  for (int k = 0; k < 2; k++) {
    tfx_model *m = jit_model_for(2, cpus[k]);
    check_model_greedy(cpus[k], m, 2);
    check_prefill_rows(m);
    tfx_model_close(m);
  }
}

typedef struct thread_job {
  tfx_model *model;
  int matched;
} thread_job;

static void *generate_in_thread(void *arg) {
  thread_job *job = arg;
  tfx_session_options so = {.threads = 1};
  tfx_session *s = NULL;
  if (tfx_session_create(job->model, &so, &s) == TFX_OK) {
    job->matched = greedy_matches("thread", session_step, s, 100);
    tfx_session_free(s);
  }
  return NULL;
}

static void test_two_sessions_on_two_threads(void **state) {
  (void)state;
  tfx_model *m = jit_model(2);
  pthread_t th[2];
  thread_job jobs[2] = {{m, -1}, {m, -1}};
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, generate_in_thread, &jobs[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  assert_int_equal(jobs[0].matched, 100);
  assert_int_equal(jobs[1].matched, 100);
  tfx_model_close(m);
}

/* A second, different model in the same process, used between the steps of
 * the first, changes nothing in the first. */
static void test_two_models_in_one_process(void **state) {
  (void)state;
  static const char other[] = "model other\n"
                              "const dim = 32, vocab = 40, max_seq = 64\n"
                              "param emb : f32[vocab, dim]\n"
                              "param g : f32[dim]\n"
                              "param w : f32[vocab, dim]\n"
                              "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
                              "  x = embedding(emb, tokens)\n"
                              "  return linear(rmsnorm(x, g, eps = 1e-5), w)\n"
                              "}\n";
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = "random:7";
  tfx_model *b = NULL;
  assert_int_equal(tfx_jit_compile_source("other.tfx", other, &co, &b), TFX_OK);
  tfx_model *a = jit_model(2);
  assert_int_equal(tfx_model_descriptor(b)->output_width, 40);
  assert_int_equal(tfx_model_descriptor(a)->output_width, VOCAB);
  tfx_session *sa = NULL, *sb = NULL;
  assert_int_equal(tfx_session_create(a, NULL, &sa), TFX_OK);
  assert_int_equal(tfx_session_create(b, NULL, &sb), TFX_OK);
  float la[VOCAB], lb[40];
  int32_t token = 1;
  for (int i = 0; i < 32; i++) {
    int32_t tb = (int32_t)(i % 40);
    assert_int_equal(tfx_forward(sb, &tb, 1, lb), TFX_OK);
    assert_int_equal(tfx_forward(sa, &token, 1, la), TFX_OK);
    token = tfx_test_argmax(la, VOCAB);
    assert_int_equal(token, ref_ids[i]);
  }
  tfx_session_free(sa);
  tfx_session_free(sb);
  tfx_model_close(a);
  tfx_model_close(b);
}

static char *build_so(const char *dir) {
  static char so[4096];
  snprintf(so, sizeof so, "%s/stories260k.so", dir);
  char *argv[] = {TFXC_PATH, example_tfx, "--weights", model_bin, "-O3", "-o", so, NULL};
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != 0) fprintf(stderr, "tfxc failed (%d): %s%s\n", rc, out ? out : "", err ? err : "");
  free(out);
  free(err);
  return rc == 0 ? so : NULL;
}

static void test_aot_so_reproduces_llama2c(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char *so = build_so(dir);
  assert_non_null(so);
  tfx_model *m = NULL;
  char err[512] = "";
  int rc = tfx_model_open_ex(so, &m, err, sizeof err);
  if (rc != TFX_OK) fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, TFX_OK);
  assert_non_null(tfx_model_descriptor(m)->weights);
  check_model_greedy("aot .so", m, 2);
  tfx_model_close(m);
  tfx_test_rmdir(dir);
  free(dir);
}

/* The CLI contract: `tfxc run` on the .tfx (JIT) and on the .so prints the
 * reference ids; --dump-logits writes [steps, vocab] floats. */
static void test_cli_run_prints_reference_ids(void **state) {
  (void)state;
  char expected[4096] = "";
  size_t used = 0;
  for (int i = 0; i < STEPS; i++)
    used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%d", i ? " " : "", ref_ids[i]);
  snprintf(expected + used, sizeof expected - used, "\n");

  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char dump[4096];
  snprintf(dump, sizeof dump, "%s/logits.f32", dir);
  char *so = build_so(dir);
  assert_non_null(so);
  for (int which = 0; which < 2; which++) {
    char *jit_argv[] = {TFXC_PATH,       "run", example_tfx,   "--weights",     model_bin, "-n", "200",
                        "--temperature", "0",   "--print-ids", "--dump-logits", dump,      NULL};
    char *so_argv[] = {TFXC_PATH,     "run",           so,   "-n", "200", "--temperature", "0",
                       "--print-ids", "--dump-logits", dump, NULL};
    char *out = NULL, *err = NULL;
    int rc = tfx_test_run(which ? so_argv : jit_argv, &out, &err);
    if (rc != 0 || strcmp(out, expected) != 0)
      fprintf(stderr, "tfxc run (%s): rc %d\n%s\n%s\n", which ? "so" : "jit", rc, out, err);
    assert_int_equal(rc, 0);
    assert_string_equal(out, expected);
    size_t size = 0;
    char *raw = tfx_test_read_file(dump, &size);
    assert_non_null(raw);
    assert_int_equal(size, (size_t)STEPS * VOCAB * sizeof(float));
    float *rows = malloc(sizeof ref_logits);
    memcpy(rows, raw, sizeof ref_logits);
    assert_true(tfx_test_max_abs_diff(rows, ref_logits, REF_LOGIT_ROWS * VOCAB) <= LOGIT_TOL);
    free(rows);
    free(raw);
    free(out);
    free(err);
  }
  tfx_test_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interpreter_reproduces_llama2c),     cmocka_unit_test(test_jit_O0_reproduces_llama2c),
      cmocka_unit_test(test_jit_O3_reproduces_llama2c),          cmocka_unit_test(test_jit_unrolled_reproduces_llama2c),
      cmocka_unit_test(test_jit_prefill_matches_reference_rows), cmocka_unit_test(test_jit_other_cpu_levels),
      cmocka_unit_test(test_two_sessions_on_two_threads),        cmocka_unit_test(test_two_models_in_one_process),
      cmocka_unit_test(test_aot_so_reproduces_llama2c),          cmocka_unit_test(test_cli_run_prints_reference_ids),
  };
  return cmocka_run_group_tests(tests, load_references, NULL);
}
