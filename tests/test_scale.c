/* tests/test_scale.c — scale (issue #17, items 15 to 17): a session touches
 * only the KV rows it uses (a child process with a huge max_seq generating a
 * few tokens stays far below the KV cache's size, by getrusage's maxrss), a
 * reset session after a long run gives bitwise the logits of a fresh one;
 * folding and packing the weights does not hold the blob twice (the peak RSS
 * of tfxc with the folds against without, by wait4's rusage); a
 * repeat(2048) model (4096 kernel launches per entry, so the entries are
 * split into parts) compiles and computes what the reference interpreter
 * computes on the same graph; --quantize quantizes each tensor as binding
 * reads it, giving the blob, formats and fallbacks of quantizing the whole
 * bound blob after (from random weights, an f32 GGUF and a Q8_0 GGUF; every
 * format, rules, -O0 and -O2), and so holds far less than the f32 blob
 * (tfxc's peak RSS with --quantize q8_0 against the f32 compile's). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../include/tfx/jit.h"
#include "support/llama_src.h"
#include "support/testutil.h"

/* The stories260K shape (random weights) with max_seq given. */
static char *llama_source(long long max_seq) {
  tfx_llama_shape sh = {"scale", 64, 5, 8, 4, 172, 512, max_seq, 1};
  char *s = malloc(4096);
  if (s && tfx_test_llama_source(s, 4096, &sh)) {
    free(s);
    return NULL;
  }
  return s;
}

static tfx_model *compile_llama(long long max_seq) {
  char *src = llama_source(max_seq);
  if (!src) return NULL;
  tfx_compile_options o;
  tfx_compile_options_init(&o);
  o.weights = "random:7";
  tfx_model *m = NULL;
  int rc = tfx_jit_compile_source("scale.tfx", src, &o, &m);
  free(src);
  return rc == TFX_OK ? m : NULL;
}

#define VOCAB 512

/* Feeds `n` tokens as a prefill of `pre` then one-token decodes; writes the
 * logits of every position into logits[n * VOCAB] (NULL: not kept). */
static int feed(tfx_session *s, const int32_t *tokens, int n, int pre, float *logits) {
  if (pre > n) pre = n;
  float *buf = malloc((size_t)(pre > 0 ? pre : 1) * VOCAB * sizeof(float));
  if (!buf) return -1;
  int rc = 0;
  /* every row of the prefill (tfx_forward writes only the last one) */
  if (pre > 0) rc = tfx_forward_ex(s, tokens, pre, buf, 0) == TFX_OK ? 0 : -1;
  if (!rc && pre > 0 && logits) memcpy(logits, buf, (size_t)pre * VOCAB * sizeof(float));
  for (int i = pre; i < n && !rc; i++) {
    rc = tfx_forward(s, &tokens[i], 1, buf) == TFX_OK ? 0 : -1;
    if (!rc && logits) memcpy(logits + (size_t)i * VOCAB, buf, VOCAB * sizeof(float));
  }
  free(buf);
  return rc;
}

/* After 450 positions (a prefill of 200 and decodes), a reset session run
 * on another sequence (a prefill of 9 then decodes to 40) gives bitwise the
 * logits of a fresh session on that sequence: nothing of the old run's KV
 * rows leaks into the new one. */
static void test_reset_equals_fresh(void **state) {
  (void)state;
  tfx_model *m = compile_llama(512);
  assert_non_null(m);
  enum { LONG = 450, SHORT = 40, PRE = 9 };
  int32_t long_ids[LONG], short_ids[SHORT];
  for (int i = 0; i < LONG; i++) long_ids[i] = (int32_t)((7919 * i + 13) % VOCAB);
  for (int i = 0; i < SHORT; i++) short_ids[i] = (int32_t)((104729 * i + 5) % VOCAB);
  float *fresh = malloc((size_t)SHORT * VOCAB * sizeof(float));
  float *again = malloc((size_t)SHORT * VOCAB * sizeof(float));
  assert_non_null(fresh);
  assert_non_null(again);
  tfx_session_options so = {.threads = 2};
  tfx_session *a = NULL, *b = NULL;
  assert_int_equal(tfx_session_create(m, &so, &a), TFX_OK);
  assert_int_equal(tfx_session_create(m, &so, &b), TFX_OK);
  assert_int_equal(feed(a, long_ids, LONG, 200, NULL), 0);
  assert_int_equal(tfx_session_position(a), LONG);
  tfx_session_reset(a);
  assert_int_equal(tfx_session_position(a), 0);
  assert_int_equal(feed(a, short_ids, SHORT, PRE, again), 0);
  assert_int_equal(feed(b, short_ids, SHORT, PRE, fresh), 0);
  assert_memory_equal(fresh, again, (size_t)SHORT * VOCAB * sizeof(float));
  /* and the logits are not trivially equal (a model that computes something) */
  assert_true(memcmp(fresh, fresh + VOCAB, VOCAB * sizeof(float)) != 0);
  tfx_session_free(a);
  tfx_session_free(b);
  tfx_model_close(m);
  free(fresh);
  free(again);
}

static long maxrss_kb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return ru.ru_maxrss;
}

/* In a child: compile the model with a max_seq of 2^20 (a KV cache of
 * 5 layers x 2 x 2^20 x 32 floats = 1.34 GB), note the peak RSS, create a
 * session and generate 3 tokens; the peak may grow by far less than the KV
 * cache (64 MB here; the used rows are 3 x 1280 bytes). Writes the two
 * peaks and the KV bytes to the pipe. */
static void huge_kv_child(int fd) {
  long vals[3] = {-1, -1, -1};
  tfx_model *m = compile_llama(1 << 20);
  if (m) {
    vals[2] = (long)tfx_model_descriptor(m)->kv_bytes;
    vals[0] = maxrss_kb();
    tfx_session_options so = {.threads = 2};
    tfx_session *s = NULL;
    if (tfx_session_create(m, &so, &s) == TFX_OK) {
      int32_t ids[3] = {1, 100, 200};
      if (feed(s, ids, 3, 1, NULL) == 0) vals[1] = maxrss_kb();
      tfx_session_free(s);
    }
    tfx_model_close(m);
  }
  ssize_t w = write(fd, vals, sizeof vals);
  _exit(w == (ssize_t)sizeof vals ? 0 : 1);
}

static void test_huge_max_seq_touches_used_rows(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    huge_kv_child(fds[1]);
  }
  close(fds[1]);
  long vals[3] = {0, 0, 0};
  ssize_t got = read(fds[0], vals, sizeof vals);
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(got, (ssize_t)sizeof vals);
  print_message("huge max_seq: KV %ld bytes; peak RSS %ld KB after compile, %ld KB after 3 tokens\n", vals[2], vals[0],
                vals[1]);
  assert_true(vals[0] > 0 && vals[1] > 0);
  assert_int_equal(vals[2], 5L * 2 * (1L << 20) * 32 * 4);
#ifndef TFX_SANITIZE_FLAGS
  /* far below the KV cache: at most 64 MB more than the compile's peak */
  assert_true(vals[1] - vals[0] < 64 * 1024);
  assert_true(vals[1] < vals[2] / 1024 / 4);
#else
  /* under ASan large allocations get shadow memory written, so RSS says
   * little here; the plain build checks the bound */
#endif
}

/* Runs argv with stdout and stderr to /dev/null; the child's peak RSS (KB)
 * in *maxrss. Returns its exit status, or -1. */
static int run_rss(char *const argv[], long *maxrss) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid) return -1;
  *maxrss = ru.ru_maxrss;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* 48 layers of two 1 MiB linear weights (96 MiB): at -O0 the blob is bound
 * and planned as is; at -O2 every weight is packed (fold_weights writes a
 * new blob). Folding may add far less than the blob: under half of it here
 * (it added the whole blob when the old one stayed alive beside the new;
 * the margin is for the sanitizers' shadow memory). */
static void test_fold_does_not_hold_the_blob_twice(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char path[512];
  snprintf(path, sizeof path, "%s/fold.tfx", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("model foldmem\n"
        "const dim = 256, hidden = 1024, max_seq = 4\n"
        "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"
        "  param w1 : f32[hidden, dim]\n"
        "  param w2 : f32[dim, hidden]\n"
        "  return x + linear(silu(linear(x, w1)), w2)\n"
        "}\n"
        "forward(x : f32[T, dim]) -> f32[T, dim] {\n"
        "  return repeat(48) layer(x)\n"
        "}\n",
        f);
  assert_int_equal(fclose(f), 0);
  char *o0[] = {TFXC_PATH, path, "-O0", "--weights", "random", "--stats", NULL};
  char *o2[] = {TFXC_PATH, path, "-O2", "--weights", "random", "--stats", NULL};
  long rss0 = 0, rss2 = 0;
  assert_int_equal(run_rss(o0, &rss0), 0);
  assert_int_equal(run_rss(o2, &rss2), 0);
  print_message("fold: peak RSS %ld KB at -O0, %ld KB at -O2 (96 MiB of weights)\n", rss0, rss2);
  assert_true(rss0 > 96 * 1024); /* the blob is resident */
  assert_true(rss2 - rss0 < 48 * 1024);
  tfx_test_rmdir(dir);
  free(dir);
}

/* repeat(2048) of a one-param block, built at -O2: the JIT (prefill of 3
 * rows, then one row through the decode entry) against the reference
 * interpreter on the same planned graph and weights. A smoke test of scale
 * (the suite's TIMEOUT bounds it, no timing is asserted) and a check of the
 * entries split into parts. */
static void test_repeat_2048_matches_interpreter(void **state) {
  (void)state;
  enum { LAYERS = 2048, DIM = 8 };
  char src[512];
  snprintf(src, sizeof src,
           "model rep\n"
           "const dim = %d, max_seq = 16\n"
           "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"
           "  param w : f32[dim]\n"
           "  return x + w\n"
           "}\n"
           "forward(x : f32[T, dim]) -> f32[T, dim] {\n"
           "  return repeat(%d) layer(x)\n"
           "}\n",
           DIM, LAYERS);
  tfx_build b;
  tfx_build_options bo = {.weights = "random:3", .opt_level = 2};
  assert_int_equal(tfx_build_source("rep.tfx", src, &bo, &b), 0);
  float x[3 * DIM], ref[3 * DIM], out[3 * DIM];
  for (int i = 0; i < 3 * DIM; i++) x[i] = (float)(i % 7) * 0.25f - 0.75f;
  char err[256];
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  assert_non_null(it);
  assert_int_equal(tfx_interp_forward(it, x, 3, ref, err, sizeof err), 0);
  tfx_interp_free(it);
  tfx_model *m = NULL;
  assert_int_equal(tfx_build_jit(&b, NULL, &m, err, sizeof err), 0);
  tfx_session_options so = {.threads = 2};
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  assert_int_equal(tfx_forward_f32(s, x, 3, out), TFX_OK);
  double scale = 1;
  for (int i = 0; i < 3 * DIM; i++) scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
  assert_true(tfx_test_max_abs_diff(ref, out, 3 * DIM) <= 1e-4 * scale);
  tfx_session_reset(s);
  assert_int_equal(tfx_forward_f32(s, x + DIM, 1, out), TFX_OK); /* the decode entry */
  assert_true(tfx_test_max_abs_diff(ref + DIM, out, DIM) <= 1e-4 * scale);
  /* the sum of 2048 weights moved every value */
  assert_true(tfx_test_max_abs_diff(x, ref, 3 * DIM) > 1e-3);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_build_free(&b);
}

/* ---- quantizing while binding (issue #17, item 16) ---- */

/* Builds src both ways (formats planned before binding; bound as stored,
 * then the whole blob quantized) and checks that they agree exactly: blob
 * bytes, every node's format and offset, the fallbacks recorded. */
static void same_both_ways(const char *src, const char *weights, const char *quant, int opt) {
  tfx_build a, b;
  tfx_build_options oa = {.weights = weights, .opt_level = opt, .quantize = quant};
  tfx_build_options ob = oa;
  ob.quantize_after_binding = 1;
  if (tfx_build_source("q.tfx", src, &oa, &a)) fail_msg("%s, %s, -O%d: the build failed", weights, quant, opt);
  if (tfx_build_source("q.tfx", src, &ob, &b)) fail_msg("%s, %s, -O%d: the late build failed", weights, quant, opt);
  assert_int_equal(a.weights.size, b.weights.size);
  assert_int_equal(a.graph->weights_bytes, b.graph->weights_bytes);
  assert_memory_equal(a.weights.data, b.weights.data, a.weights.size);
  assert_int_equal(a.graph->n_nodes, b.graph->n_nodes);
  int quantized = 0;
  for (int i = 0; i < a.graph->n_nodes; i++) {
    const tfx_node *x = &a.graph->nodes[i], *y = &b.graph->nodes[i];
    assert_int_equal(x->op, y->op);
    assert_int_equal(x->type.dtype, y->type.dtype);
    assert_int_equal(x->weight_offset, y->weight_offset);
    quantized += x->op == TFX_OP_PARAM && x->type.dtype != TFX_DT_F32;
  }
  assert_int_equal(a.graph->n_quant_fallbacks, b.graph->n_quant_fallbacks);
  for (int i = 0; i < a.graph->n_quant_fallbacks; i++) {
    assert_string_equal(a.graph->quant_fallbacks[i].name, b.graph->quant_fallbacks[i].name);
    assert_int_equal(a.graph->quant_fallbacks[i].got, b.graph->quant_fallbacks[i].got);
  }
  if (strcmp(quant, "none")) assert_true(quantized > 0);
  tfx_build_free(&a);
  tfx_build_free(&b);
}

static void test_quantize_while_binding(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  /* the stories260K shape (rows of 64 and 172: fallbacks), tied, with rules;
   * and rows of 256 and 512 (K-quants without fallback), untied */
  static char srcs[2][4096];
  tfx_llama_shape small = {"qs", 64, 2, 8, 4, 172, 512, 32, 1}, wide = {"qw", 256, 2, 4, 2, 512, 512, 32, 0};
  assert_int_equal(tfx_test_llama_source(srcs[0], sizeof srcs[0], &small), 0);
  assert_int_equal(tfx_test_llama_source(srcs[1], sizeof srcs[1], &wide), 0);
  strcat(srcs[0], "quantize {\n  \"layers.*.w2\" = q6_k, \"layers.0.wq\" = none\n}\n");
  static const char *const quants[] = {"q4_0", "q8_0", "q4_k", "q4_k_m", "q6_k", "f16", "w8a8", "ternary", "none"};
  for (int s = 0; s < 2; s++) {
    /* the same random weights as files: f32, and Q8_0 (a stored format, decoded then quantized again) */
    char f32[512], q8[512];
    snprintf(f32, sizeof f32, "%s/w%d.gguf", dir, s);
    snprintf(q8, sizeof q8, "%s/w%d-q8.gguf", dir, s);
    for (int k = 0; k < 2; k++) {
      tfx_build b;
      tfx_build_options o = {.weights = "random:5", .quantize = k ? "q8_0" : NULL, .emit_gguf = k ? q8 : f32};
      assert_int_equal(tfx_build_source("q.tfx", srcs[s], &o, &b), 0);
      tfx_build_free(&b);
    }
    const char *weights[] = {"random:5", f32, q8};
    for (int w = 0; w < 3; w++)
      for (size_t q = 0; q < sizeof quants / sizeof *quants; q++)
        for (int opt = 0; opt <= 2; opt += 2) same_both_ways(srcs[s], weights[w], quants[q], opt);
  }
  tfx_test_rmdir(dir);
  free(dir);
}

/* 48 layers of two 1 MiB f32 weights in a GGUF file (96 MiB): tfxc -O0
 * binding them as f32 holds the blob; with --quantize q8_0 (25.5 MiB of
 * weights) binding quantizes each tensor as it reads it, so the peak is
 * far below (it was the f32 compile's plus the quantized blob). */
static void test_quantize_does_not_hold_the_f32_blob(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char path[512], gguf[512];
  snprintf(path, sizeof path, "%s/q.tfx", dir);
  snprintf(gguf, sizeof gguf, "%s/q.gguf", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("model quantmem\n"
        "const dim = 256, hidden = 1024, max_seq = 4\n"
        "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"
        "  param w1 : f32[hidden, dim]\n"
        "  param w2 : f32[dim, hidden]\n"
        "  return x + linear(silu(linear(x, w1)), w2)\n"
        "}\n"
        "forward(x : f32[T, dim]) -> f32[T, dim] {\n"
        "  return repeat(48) layer(x)\n"
        "}\n",
        f);
  assert_int_equal(fclose(f), 0);
  char *emit[] = {TFXC_PATH, path, "--weights", "random", "--emit-gguf", gguf, NULL};
  char *f32[] = {TFXC_PATH, path, "-O0", "--weights", gguf, "--stats", NULL};
  char *q8[] = {TFXC_PATH, path, "-O0", "--weights", gguf, "--quantize", "q8_0", "--stats", NULL};
  long rss_emit = 0, rss_f32 = 0, rss_q8 = 0;
  assert_int_equal(run_rss(emit, &rss_emit), 0);
  assert_int_equal(run_rss(f32, &rss_f32), 0);
  assert_int_equal(run_rss(q8, &rss_q8), 0);
  print_message("quantize: peak RSS %ld KB for f32, %ld KB with --quantize q8_0 (96 MiB of f32 weights)\n", rss_f32,
                rss_q8);
  tfx_test_rmdir(dir);
  free(dir);
#ifndef TFX_SANITIZE_FLAGS
  /* a child's peak RSS counts from this process's at the fork (it survives
   * exec): when that floor hides the compiles there is nothing to compare */
  struct rusage self;
  assert_int_equal(getrusage(RUSAGE_SELF, &self), 0);
  if (rss_q8 <= self.ru_maxrss + 8 * 1024) {
    print_message("quantize: this process's own peak (%ld KB) hides the compiles'; not compared\n", self.ru_maxrss);
    return;
  }
  assert_true(rss_f32 > 96 * 1024); /* the f32 blob is resident */
  assert_true(rss_f32 - rss_q8 > 48 * 1024);
#else
  /* under ASan freed buffers stay resident in its quarantine and large
   * allocations get shadow memory: the plain build checks the bound */
  assert_true(rss_f32 > 0 && rss_q8 > 0);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* first: a child's peak RSS counts from this process's (run_rss) */
      cmocka_unit_test(test_quantize_does_not_hold_the_f32_blob),
      cmocka_unit_test(test_reset_equals_fresh),
      cmocka_unit_test(test_huge_max_seq_touches_used_rows),
      cmocka_unit_test(test_fold_does_not_hold_the_blob_twice),
      cmocka_unit_test(test_repeat_2048_matches_interpreter),
      cmocka_unit_test(test_quantize_while_binding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
