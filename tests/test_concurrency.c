/* tests/test_concurrency.c — concurrency and determinism of compiled models
 * (JIT, the real stories260K weights from ../shared/models):
 * - 4 threads, each with its own session on one model and its own prompt,
 *   produce bit for bit the logits a single session produced for that prompt;
 * - two different models used from two threads at once give the results
 *   each gives alone;
 * - repeated runs (a new session, or after tfx_session_reset; prefill and
 *   decode) give bitwise-identical logits for a fixed thread count, and a
 *   session's pool of 1 or 2 threads gives the same logits;
 * - overlapping calls on ONE session from two threads never corrupt it: each
 *   call either runs or is refused with TFX_ERR_INVALID_ARGUMENT;
 * - a session's thread count: the options, else TFX_NUM_THREADS, else the
 *   model's schedule { threads = N }, else the cores.
 * cmocka's assertions are not thread-safe: threads record, main asserts. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../include/tfx/jit.h"
#include "support/testutil.h"

#define VOCAB 512
#define STEPS 24 /* decode steps per run after the prompt */
#define N_THREADS 4
#define PROMPT_LEN 5 /* BOS + 4 ids */

static tfx_model *stories;
static tfx_model *small; /* a second, different model (random weights) */

/* A small causal model with other shapes than stories260K. */
static const char small_source[] = "model small\n"
                                   "const dim = 32, vocab = 40, max_seq = 64\n"
                                   "param emb : f32[vocab, dim]\n"
                                   "param g : f32[dim]\n"
                                   "param wq : f32[dim, dim]; param wk : f32[dim, dim]\n"
                                   "param wv : f32[dim, dim]; param wo : f32[dim, dim]\n"
                                   "param w : f32[vocab, dim]\n"
                                   "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
                                   "  x = embedding(emb, tokens)\n"
                                   "  x = x + attention(rmsnorm(x, g), wq, wk, wv, wo, heads = 4, mask = causal,\n"
                                   "                    position = rope())\n"
                                   "  return linear(rmsnorm(x, g, eps = 1e-5), w)\n"
                                   "}\n";

static int setup(void **state) {
  (void)state;
  char bin[4096], tfx[4096];
  tfx_test_model_path("stories260K.bin", bin, sizeof bin);
  snprintf(tfx, sizeof tfx, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  if (access(bin, R_OK) != 0) {
    fprintf(stderr, "test_concurrency: the real model is missing: %s (set TFX_MODELS_DIR)\n", bin);
    return -1;
  }
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = bin;
  if (tfx_jit_compile_file(tfx, &co, &stories) != TFX_OK) return -1;
  co.weights = "random:11";
  if (tfx_jit_compile_source("small.tfx", small_source, &co, &small) != TFX_OK) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tfx_model_close(stories);
  tfx_model_close(small);
  return 0;
}

/* One run: the prompt in one call (prefill), then STEPS greedy decode steps.
 * logits receives (1 + STEPS) rows of the model's width. Returns TFX_OK or
 * the first failing status. */
typedef struct run_spec {
  tfx_model *model;
  int threads;
  int32_t prompt[PROMPT_LEN];
  float *logits; /* (1 + STEPS) * width */
  int rc;
} run_spec;

static int run_in(tfx_session *s, run_spec *r) {
  int width = tfx_model_descriptor(r->model)->output_width;
  int rc = tfx_forward(s, r->prompt, PROMPT_LEN, r->logits);
  for (int i = 0; rc == TFX_OK && i < STEPS; i++) {
    int32_t next = (int32_t)tfx_test_argmax(r->logits + (size_t)i * width, width);
    rc = tfx_forward(s, &next, 1, r->logits + (size_t)(i + 1) * width);
  }
  return rc;
}

static void *run_thread(void *arg) {
  run_spec *r = arg;
  tfx_session_options so = {.threads = r->threads};
  tfx_session *s = NULL;
  r->rc = tfx_session_create(r->model, &so, &s);
  if (r->rc == TFX_OK) r->rc = run_in(s, r);
  tfx_session_free(s);
  return NULL;
}

static void spec_init(run_spec *r, tfx_model *m, int threads, int seed) {
  memset(r, 0, sizeof *r);
  r->model = m;
  r->threads = threads;
  int width = tfx_model_descriptor(m)->output_width;
  r->prompt[0] = 1;
  for (int i = 1; i < PROMPT_LEN; i++) r->prompt[i] = (int32_t)((seed * 131 + i * 37) % width);
  r->logits = calloc((size_t)(1 + STEPS) * (size_t)width, sizeof(float));
  assert_non_null(r->logits);
}

static size_t spec_bytes(const run_spec *r) {
  return (size_t)(1 + STEPS) * (size_t)tfx_model_descriptor(r->model)->output_width * sizeof(float);
}

/* 4 threads, each with its own session and prompt, reproduce bit for bit the
 * logits one session computed for each prompt, alone. */
static void test_four_sessions_match_one(void **state) {
  (void)state;
  run_spec ref[N_THREADS], got[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) {
    spec_init(&ref[i], stories, 1, i);
    run_thread(&ref[i]);
    assert_int_equal(ref[i].rc, TFX_OK);
    spec_init(&got[i], stories, 1, i);
  }
  /* the prompts differ, so a session reading another's state would show */
  assert_memory_not_equal(ref[0].logits, ref[1].logits, spec_bytes(&ref[0]));
  pthread_t th[N_THREADS];
  for (int i = 0; i < N_THREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, run_thread, &got[i]), 0);
  for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < N_THREADS; i++) {
    assert_int_equal(got[i].rc, TFX_OK);
    assert_memory_equal(got[i].logits, ref[i].logits, spec_bytes(&ref[i]));
    free(ref[i].logits);
    free(got[i].logits);
  }
}

/* Two different models driven from two threads at once (two sessions each,
 * with 2-thread pools) give exactly what each gives alone. */
static void test_two_models_concurrently(void **state) {
  (void)state;
  enum { N = 4 };
  run_spec ref[N], got[N];
  for (int i = 0; i < N; i++) {
    tfx_model *m = i % 2 ? small : stories;
    spec_init(&ref[i], m, 2, 10 + i);
    run_thread(&ref[i]);
    assert_int_equal(ref[i].rc, TFX_OK);
    spec_init(&got[i], m, 2, 10 + i);
  }
  assert_int_equal(tfx_model_descriptor(small)->output_width, 40);
  pthread_t th[N];
  for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&th[i], NULL, run_thread, &got[i]), 0);
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < N; i++) {
    assert_int_equal(got[i].rc, TFX_OK);
    assert_memory_equal(got[i].logits, ref[i].logits, spec_bytes(&ref[i]));
    free(ref[i].logits);
    free(got[i].logits);
  }
}

/* Repeated runs are bitwise identical: in a new session and after a reset,
 * for pools of 1 and 2 threads; and the two pool sizes agree. Also the
 * prefill of all rows (last_only = 0). */
static void test_repeatable_and_thread_count_independent(void **state) {
  (void)state;
  run_spec first[2], again;
  for (int t = 0; t < 2; t++) {
    spec_init(&first[t], stories, t + 1, 3);
    run_thread(&first[t]);
    assert_int_equal(first[t].rc, TFX_OK);
    /* a new session */
    spec_init(&again, stories, t + 1, 3);
    run_thread(&again);
    assert_int_equal(again.rc, TFX_OK);
    assert_memory_equal(again.logits, first[t].logits, spec_bytes(&again));
    /* the same session after a reset, three times */
    tfx_session_options so = {.threads = t + 1};
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(stories, &so, &s), TFX_OK);
    for (int k = 0; k < 3; k++) {
      memset(again.logits, 0, spec_bytes(&again));
      assert_int_equal(run_in(s, &again), TFX_OK);
      assert_memory_equal(again.logits, first[t].logits, spec_bytes(&again));
      tfx_session_reset(s);
    }
    tfx_session_free(s);
    free(again.logits);
  }
  double diff = tfx_test_max_abs_diff(first[0].logits, first[1].logits, spec_bytes(&first[0]) / sizeof(float));
  fprintf(stderr, "1 vs 2 pool threads: max abs logit difference %g\n", diff);
  assert_memory_equal(first[0].logits, first[1].logits, spec_bytes(&first[0]));
  free(first[0].logits);
  free(first[1].logits);

  /* prefill of 16 rows, every row: identical across runs and pool sizes */
  int32_t tokens[16];
  for (int i = 0; i < 16; i++) tokens[i] = (int32_t)(1 + i * 29 % (VOCAB - 1));
  float *rows[3];
  for (int k = 0; k < 3; k++) {
    tfx_session_options so = {.threads = k == 2 ? 2 : 1};
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(stories, &so, &s), TFX_OK);
    rows[k] = malloc(16 * VOCAB * sizeof(float));
    assert_int_equal(tfx_forward_ex(s, tokens, 16, rows[k], 0), TFX_OK);
    tfx_session_free(s);
  }
  assert_memory_equal(rows[0], rows[1], 16 * VOCAB * sizeof(float));
  assert_memory_equal(rows[0], rows[2], 16 * VOCAB * sizeof(float));
  for (int k = 0; k < 3; k++) free(rows[k]);
}

/* Overlapping calls on one session: two threads hammer the same session
 * with 4-token calls; every call returns TFX_OK or is refused with
 * TFX_ERR_INVALID_ARGUMENT, and the position counts exactly the calls that
 * ran (a refused call changes nothing). */
typedef struct hammer {
  tfx_session *s;
  int ok, refused, other;
} hammer;

static void *hammer_thread(void *arg) {
  hammer *h = arg;
  float logits[VOCAB];
  for (int i = 0; i < 24; i++) {
    int32_t tokens[4] = {1, (int32_t)i, 7, 9};
    int rc = tfx_forward(h->s, tokens, 4, logits);
    if (rc == TFX_OK)
      h->ok++;
    else if (rc == TFX_ERR_INVALID_ARGUMENT)
      h->refused++;
    else
      h->other++;
  }
  return NULL;
}

static void test_overlapping_calls_on_one_session(void **state) {
  (void)state;
  tfx_session_options so = {.threads = 1};
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(stories, &so, &s), TFX_OK);
  hammer h[2] = {{s, 0, 0, 0}, {s, 0, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &h[i]), 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  fprintf(stderr, "overlapping calls: %d + %d ran, %d + %d refused\n", h[0].ok, h[1].ok, h[0].refused, h[1].refused);
  assert_int_equal(h[0].other + h[1].other, 0);
  assert_int_equal(h[0].ok + h[0].refused, 24);
  assert_int_equal(h[1].ok + h[1].refused, 24);
  assert_int_equal(tfx_session_position(s), 4 * (h[0].ok + h[1].ok));
  tfx_session_free(s);
}

static void test_thread_count_precedence(void **state) {
  (void)state;
  static const char src[] = "model sched\n"
                            "const dim = 8, max_seq = 4\n"
                            "param w : f32[dim, dim]\n"
                            "forward(x : f32[T, dim]) -> f32[T, dim] { return linear(x, w) }\n"
                            "schedule { threads = 3 }\n";
  tfx_compile_options co = {.opt_level = 2, .weights = "random:1"};
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("sched.tfx", src, &co, &m), TFX_OK);
  assert_int_equal(tfx_model_descriptor(m)->threads, 3);
  assert_int_equal(tfx_model_descriptor(small)->threads, 0); /* no schedule: automatic */
  const char *saved = getenv("TFX_NUM_THREADS");
  char *keep = saved ? strdup(saved) : NULL;
  int expect[3] = {3, 2, 1};
  for (int k = 0; k < 3; k++) {
    if (k == 0) unsetenv("TFX_NUM_THREADS");
    if (k >= 1) setenv("TFX_NUM_THREADS", "2", 1);
    tfx_session_options so = {.threads = k == 2 ? 1 : 0};
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
    assert_int_equal(tfx_session_threads(s), expect[k]);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
    assert_int_equal(tfx_forward_f32(s, x, 1, y), TFX_OK);
    tfx_session_free(s);
  }
  if (keep)
    setenv("TFX_NUM_THREADS", keep, 1);
  else
    unsetenv("TFX_NUM_THREADS");
  free(keep);
  tfx_model_close(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_thread_count_precedence),
      cmocka_unit_test(test_four_sessions_match_one),
      cmocka_unit_test(test_two_models_concurrently),
      cmocka_unit_test(test_repeatable_and_thread_count_independent),
      cmocka_unit_test(test_overlapping_calls_on_one_session),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
