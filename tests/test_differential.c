/* tests/test_differential.c — differential testing of the optimizer and the
 * backend on random models (tests/support/tfx_gen.c: norms, pre/post-norm,
 * MHA/GQA/MQA, MLA, retention, infini_attention, RoPE, ALiBi, every sparse pattern, causal or not,
 * cross-attention to a static encoder output or a T-row tensor, GLU
 * variants, MLPs, MoE with capacity and shared experts, learned and
 * sinusoidal positions, the rope op, a YOCO cross-decoder (attends sharing
 * one KV cache), column slices and concat of values (a fused GLU
 * projection split by x[:, a:b], an MLP reading concat(..)), schedule { unroll = on }, packed sequences (a second input
 * `seq`, `segments = seq`); see tfx_gen.h): for each seed, the
 * model is compiled at -O0 and -O3 (random weights from the same seed) and
 * run on a prefill of random length, then single-token steps, then a
 * two-row chunk (a model with packed sequences gets, with each call, segment
 * ids packing sequences of random lengths into the call's rows, ids
 * non-decreasing: 2-4 in a prefill of at least 3 rows, 1-2 in the chunk,
 * through tfx_interp_forward_inputs / tfx_forward_inputs) through
 *   the interpreter on the -O0 graph (the reference),
 *   the interpreter on the -O3 graph (fused ops, packed and folded weights),
 *   the JIT at -O0 and at -O3,
 *   the JIT at -O3 asking for the last row only (the last-row entry, when
 *   the model has one),
 *   the AOT shared library at -O3 (object file, linked .so, dlopen), on
 *   every 4th seed (every TFX_DIFF_AOT_EVERY-th; 0: none), in place of the
 *   JIT at -O3 on those seeds: the .so runs the -O3 calls and the last-row
 *   calls (the same module through LLVM's same -O3 pipeline; the JIT's own
 *   part, ORC and the in-memory descriptor, runs on the other seeds);
 * every output must match the reference within
 *   |y - ref| <= TOL * (1 + max |ref| of the call)
 * (f32 kernels with other summation orders and inline exp/erf/sin/cos
 * against a float64 interpreter; observed differences are ~1e-6 relative).
 * TFX_DIFF_SEEDS=N runs seeds 1..N (default 100) on TFX_DIFF_THREADS worker
 * threads (default 2: LLVM's code generation dominates the time, and the
 * compiler and runtime keep no global state); TFX_DIFF_SEED=S runs only
 * seed S (with the AOT library) and prints its model. A failure prints the
 * seed and the model. TFX_DIFF_TIMES=1 prints where the time went.
 *
 * The cost of the AOT library, measured on the 2-core development machine
 * (shared with other jobs, hence the spread), 100 seeds, 2 worker threads,
 * the test alone (wall / user CPU seconds):
 *   without AOT                     49.5, 49.7, 111 / 96, 98, 111
 *   AOT on every seed              107, 123, 147 / 185, 192, 201
 * so AOT adds ~90 s of CPU, 0.9 s a seed (writing the object is an LLVM -O3
 * compile as long as the JIT's; linking the .so ~0.17 s). It checks what the
 * JIT does not (the object writer, the link, the descriptor, dlopen), which
 * depends little on the random model: it runs on every 4th seed (25 of 100,
 * 5 of the sanitizer suite's 20), which keeps the suite inside CI's time;
 * TFX_DIFF_AOT_EVERY=1 runs it on every seed. Since the .so replaces the
 * JIT -O3 compile on its seeds (rather than adding a second -O3 compile of
 * the same module), the AOT seeds cost about what the others do.
 * In the sanitizer build LLVM compiles at -O0 only (tfx_test_llvm_level in
 * tests/support/testutil.h): LLVM and the kernels are not instrumented,
 * while the -O3 graph (passes, fused ops) is still built, emitted and run. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "support/testutil.h"
#include "support/tfx_gen.h"

#define TOL 2e-4
#define AOT_EVERY 4 /* the default of TFX_DIFF_AOT_EVERY (see above) */
#define MAX_CALLS 4

typedef struct {
  int n_calls;
  int rows[MAX_CALLS];
  float *out[MAX_CALLS]; /* [rows, out_width] */
} run_result;

typedef struct {
  uint64_t seed;
  tfx_gen_info info;
  char src[32768];
  int n_calls, rows[MAX_CALLS];
  void *input[MAX_CALLS];  /* int32 tokens or float rows */
  int32_t *seq[MAX_CALLS]; /* info.segments: the rows' sequence ids */
} case_t;

/* where a seed's time goes (TFX_DIFF_TIMES=1 prints the totals) */
enum { T_BUILD, T_INTERP, T_JIT0, T_JIT3, T_AOT, N_TIMES };
static const char *const time_names[N_TIMES] = {"build -O0 + -O3", "interpreter x2", "JIT -O0", "JIT -O3 (+ last rows)",
                                                "AOT .so"};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void free_result(run_result *r) {
  for (int i = 0; i < r->n_calls; i++) free(r->out[i]);
  memset(r, 0, sizeof *r);
}

static uint64_t xs(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* n rows' sequence ids: min_k-4 sequences (at most n) of random lengths,
 * each id 1-3 above the one before (a segment is a run of one id) */
static int32_t *pack_ids(uint64_t *s, int n, int min_k) {
  int32_t *ids = malloc((size_t)n * sizeof *ids);
  int most = n < 4 ? n : 4, cut[64] = {0}; /* n <= 64; cut[i]: a sequence starts at row i */
  if (min_k > most) min_k = most;
  int k = min_k + (int)(xs(s) % (uint64_t)(most - min_k + 1));
  for (int made = 1; made < k;) {
    int at = 1 + (int)(xs(s) % (uint64_t)(n - 1));
    if (!cut[at]) cut[at] = 1, made++;
  }
  int32_t id = (int32_t)(xs(s) % 4);
  for (int i = 0; i < n; i++) {
    if (cut[i]) id += 1 + (int32_t)(xs(s) % 3);
    ids[i] = id;
  }
  return ids;
}

static void make_inputs(case_t *c) {
  uint64_t s = c->seed * 0x2545f4914f6cdd1dull + 77;
  xs(&s);
  int left = c->info.max_seq;
  c->n_calls = 0;
  int first = 1 + (int)(xs(&s) % (uint64_t)(c->info.max_seq / 2));
  if (c->info.segments && first < 3) first = 3; /* packed: a prefill of 2-4 sequences */
  for (int k = 0; k < MAX_CALLS && left > 0; k++) {
    int n = k == 0 ? first : k == MAX_CALLS - 1 ? 2 : 1; /* prefill, decode steps, a short chunk */
    if (n > left) n = left;
    c->rows[c->n_calls] = n;
    if (c->info.tokens) {
      int32_t *t = malloc((size_t)n * sizeof *t);
      for (int i = 0; i < n; i++) t[i] = (int32_t)(xs(&s) % (uint64_t)c->info.vocab);
      c->input[c->n_calls] = t;
    } else {
      float *x = malloc((size_t)n * (size_t)c->info.width * sizeof *x);
      for (int i = 0; i < n * c->info.width; i++) x[i] = (float)((double)(xs(&s) >> 11) / 9007199254740992.0 * 2 - 1);
      c->input[c->n_calls] = x;
    }
    if (c->info.segments) c->seq[c->n_calls] = pack_ids(&s, n, k == 0 ? 2 : 1); /* a prefill of 2+ rows packs 2-4 */
    c->n_calls++;
    left -= n;
  }
}

static void free_case(case_t *c) {
  for (int i = 0; i < c->n_calls; i++) free(c->input[i]), free(c->seq[i]);
}

static int build(const case_t *c, int opt, tfx_build *b) {
  char weights[64];
  snprintf(weights, sizeof weights, "random:%llu", (unsigned long long)c->seed);
  FILE *diag = tmpfile();
  tfx_build_options bo = {.weights = weights, .opt_level = opt, .diag = diag, .verify_passes = 1};
  int rc = tfx_build_source("gen.tfx", c->src, &bo, b);
  if (rc && diag) {
    rewind(diag);
    char line[512];
    while (fgets(line, sizeof line, diag)) fprintf(stderr, "  %s", line);
  }
  if (diag) fclose(diag);
  return rc;
}

static int run_interp(const case_t *c, const tfx_build *b, run_result *r) {
  char err[512] = "";
  tfx_interp *it = tfx_interp_new(b->graph, b->weights.data);
  if (!it) return -1;
  int rc = 0;
  r->n_calls = c->n_calls;
  for (int k = 0; k < c->n_calls && rc == 0; k++) {
    r->rows[k] = c->rows[k];
    r->out[k] = malloc((size_t)c->rows[k] * (size_t)c->info.out_width * sizeof(float));
    const void *ins[2] = {c->input[k], c->seq[k]};
    rc = c->info.segments ? tfx_interp_forward_inputs(it, ins, 2, c->rows[k], r->out[k], err, sizeof err)
                          : tfx_interp_forward(it, c->input[k], c->rows[k], r->out[k], err, sizeof err);
    if (rc) fprintf(stderr, "  interpreter: %s\n", err);
  }
  tfx_interp_free(it);
  return rc;
}

/* Runs the calls; with last_only each output is its call's last row. */
static int run_model(const case_t *c, tfx_model *m, run_result *r, int last_only) {
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  if (tfx_session_create(m, &so, &s) != TFX_OK) return -1;
  int rc = 0;
  r->n_calls = c->n_calls;
  for (int k = 0; k < c->n_calls && rc == 0; k++) {
    r->rows[k] = last_only ? 1 : c->rows[k];
    r->out[k] = malloc((size_t)r->rows[k] * (size_t)c->info.out_width * sizeof(float));
    tfx_input ins[2] = {{c->info.tokens ? "tokens" : "x", c->input[k], 0}, {"seq", c->seq[k], 0}};
    if (c->info.segments)
      rc = tfx_forward_inputs(s, ins, 2, c->rows[k], r->out[k], last_only);
    else
      rc = c->info.tokens ? tfx_forward_ex(s, c->input[k], c->rows[k], r->out[k], last_only)
                          : tfx_forward_f32_ex(s, c->input[k], c->rows[k], r->out[k], last_only);
    if (rc) fprintf(stderr, "  forward: %s (%s)\n", tfx_error_message(rc), tfx_session_last_error(s));
  }
  tfx_session_free(s);
  return rc;
}

/* 0 when r matches ref (or, for the calls where r has one row, ref's last
 * row); else prints where it differs. */
static int compare(const case_t *c, const char *what, const run_result *ref, const run_result *r) {
  for (int k = 0; k < ref->n_calls; k++) {
    size_t n = (size_t)ref->rows[k] * (size_t)c->info.out_width, first = 0;
    if (r->rows[k] == 1) first = n - (size_t)c->info.out_width;
    double scale = 0, worst = 0;
    size_t at = first;
    for (size_t i = 0; i < n; i++) scale = fabs(ref->out[k][i]) > scale ? fabs(ref->out[k][i]) : scale;
    for (size_t i = first; i < n; i++) {
      double d = fabs((double)r->out[k][i - first] - ref->out[k][i]);
      if (!(d <= worst)) worst = d, at = i;
    }
    if (!(worst <= TOL * (1 + scale))) {
      fprintf(stderr, "  %s: call %d (%d rows), element %zu: %.9g vs reference %.9g (|diff| %.3g > %.3g)\n", what, k,
              ref->rows[k], at, r->out[k][at - first], ref->out[k][at], worst, TOL * (1 + scale));
      return -1;
    }
  }
  return 0;
}

/* The -O3 graph as a shared library: every call, then the last rows only,
 * against ref; *stage names the step that failed. */
static int aot_run(const case_t *c, const tfx_build *b, const run_result *ref, run_result *r, const char **stage) {
  char *dir = tfx_test_tmpdir(), obj[4096], so[4096], err[1024] = "";
  if (!dir) return -1;
  snprintf(obj, sizeof obj, "%s/m.o", dir);
  snprintf(so, sizeof so, "%s/m.so", dir);
  tfx_target_options t = {.opt_level = tfx_test_llvm_level(3)};
  int rc = -1;
  tfx_model *m = NULL;
  if (tfx_backend_write_object(b->graph, b->weights.data, b->weights.size, &t, obj, err, sizeof err) ||
      tfx_backend_link_shared(obj, so, err, sizeof err) || tfx_model_open_ex(so, &m, err, sizeof err) != TFX_OK) {
    fprintf(stderr, "  aot: %s\n", err);
  } else {
    *stage = "AOT .so -O3";
    rc = run_model(c, m, r, 0) || compare(c, *stage, ref, r);
    free_result(r);
    if (!rc) {
      *stage = "AOT .so -O3, last rows only";
      rc = run_model(c, m, r, 1) || compare(c, *stage, ref, r);
    }
  }
  tfx_model_close(m);
  tfx_test_rmdir(dir);
  free(dir);
  return rc;
}

/* Runs one seed; 0 when every engine agrees. Adds the time of each stage to
 * times[N_TIMES]. */
static int check_seed(uint64_t seed, int aot, int verbose, double *times) {
  case_t *c = calloc(1, sizeof *c);
  c->seed = seed;
  if (tfx_gen_model(seed, c->src, sizeof c->src, &c->info)) {
    fprintf(stderr, "seed %llu: the generated model does not fit the buffer\n", (unsigned long long)seed);
    free(c);
    return -1;
  }
  if (verbose) fprintf(stderr, "%s\n", c->src);
  make_inputs(c);
  int rc = 0;
  run_result ref = {0}, r = {0};
  tfx_build b0, b3;
  memset(&b0, 0, sizeof b0);
  memset(&b3, 0, sizeof b3);
  const char *stage = "build -O0";
  double t = now_s(), t1;
#define LAP(k) (t1 = now_s(), times[k] += t1 - t, t = t1)
  if (build(c, 0, &b0)) goto fail;
  stage = "build -O3";
  if (build(c, 3, &b3)) goto fail;
  LAP(T_BUILD);
  stage = "interpreter -O0";
  if (run_interp(c, &b0, &ref)) goto fail;
  stage = "interpreter on the -O3 graph";
  if (run_interp(c, &b3, &r) || compare(c, stage, &ref, &r)) goto fail;
  free_result(&r);
  LAP(T_INTERP);
  if (aot) {
    stage = "AOT .so -O3";
    if (aot_run(c, &b3, &ref, &r, &stage)) goto fail;
    free_result(&r);
    LAP(T_AOT);
  }
  tfx_target_options t0 = {.opt_level = 0}, t3 = {.opt_level = tfx_test_llvm_level(3)};
  char err[1024] = "";
  for (int k = 0; k < (aot ? 1 : 2); k++) { /* the .so ran the -O3 module on AOT seeds */
    tfx_model *m = NULL;
    stage = k ? "JIT -O3" : "JIT -O0";
    if (tfx_build_jit(k ? &b3 : &b0, k ? &t3 : &t0, &m, err, sizeof err) != TFX_OK) {
      fprintf(stderr, "  %s\n", err);
      goto fail;
    }
    rc = run_model(c, m, &r, 0) || compare(c, stage, &ref, &r);
    free_result(&r);
    if (!rc && k) {
      stage = "JIT -O3, last rows only";
      rc = run_model(c, m, &r, 1) || compare(c, stage, &ref, &r);
      free_result(&r);
    }
    tfx_model_close(m);
    if (rc) goto fail;
    LAP(k ? T_JIT3 : T_JIT0);
  }
#undef LAP
  goto done;
fail:
  rc = -1;
  fprintf(stderr, "differential: seed %llu fails at %s (rerun: TFX_DIFF_SEED=%llu); the model:\n%s\n",
          (unsigned long long)seed, stage, (unsigned long long)seed, c->src);
done:
  free_result(&ref);
  free_result(&r);
  tfx_build_free(&b0);
  tfx_build_free(&b3);
  free_case(c);
  free(c);
  return rc;
}

/* Seeds are handed out one at a time to the worker threads. */
typedef struct {
  pthread_mutex_t lock;
  int n, next, failed, aot_every;
  double times[N_TIMES];
} work;

static void *worker(void *arg) {
  work *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->lock);
    int s = w->next <= w->n ? w->next++ : 0;
    pthread_mutex_unlock(&w->lock);
    if (!s) return NULL;
    double times[N_TIMES] = {0};
    int rc = check_seed((uint64_t)s, w->aot_every > 0 && s % w->aot_every == 0, 0, times);
    pthread_mutex_lock(&w->lock);
    w->failed += rc != 0;
    for (int k = 0; k < N_TIMES; k++) w->times[k] += times[k];
    pthread_mutex_unlock(&w->lock);
  }
}

static void test_random_models(void **state) {
  (void)state;
  const char *one = getenv("TFX_DIFF_SEED"), *count = getenv("TFX_DIFF_SEEDS");
  if (one && *one) {
    uint64_t s = strtoull(one, NULL, 10);
    double times[N_TIMES] = {0};
    assert_int_equal(check_seed(s, 1, 1, times), 0);
    return;
  }
  const char *th = getenv("TFX_DIFF_THREADS");
  int n = count && *count ? atoi(count) : 100, threads = th && *th ? atoi(th) : 2;
  if (threads < 1) threads = 1;
  if (threads > 16) threads = 16;
  const char *ae = getenv("TFX_DIFF_AOT_EVERY");
  work w = {.n = n, .next = 1, .failed = 0, .aot_every = ae && *ae ? atoi(ae) : AOT_EVERY};
  pthread_mutex_init(&w.lock, NULL);
  pthread_t tid[16];
  for (int i = 1; i < threads; i++) pthread_create(&tid[i], NULL, worker, &w);
  worker(&w);
  for (int i = 1; i < threads; i++) pthread_join(tid[i], NULL);
  pthread_mutex_destroy(&w.lock);
  const char *tm = getenv("TFX_DIFF_TIMES");
  if (tm && *tm && *tm != '0')
    for (int k = 0; k < N_TIMES; k++)
      fprintf(stderr, "differential: %-22s %7.1f s (summed over the worker threads)\n", time_names[k], w.times[k]);
  if (w.failed) fail_msg("%d of %d random models differ (seeds printed above)", w.failed, n);
}

/* The generator is deterministic and its models differ from seed to seed. */
static void test_generator(void **state) {
  (void)state;
  static char a[32768], b[32768];
  tfx_gen_info ia, ib;
  assert_int_equal(tfx_gen_model(42, a, sizeof a, &ia), 0);
  assert_int_equal(tfx_gen_model(42, b, sizeof b, &ib), 0);
  assert_string_equal(a, b);
  assert_int_equal(tfx_gen_model(43, b, sizeof b, &ib), 0);
  assert_true(strcmp(a, b) != 0);
  assert_int_equal(tfx_gen_model(42, a, 64, &ia), -1); /* too small a buffer */
}

/* The default 100 seeds draw every feature of the generator, several times
 * (so a change to the generator cannot silently drop one), and no model of
 * the first 2000 seeds outgrows the case's buffer. */
static void test_generator_coverage(void **state) {
  (void)state;
  static char text[32768];
  enum { SPARSE_KINDS = 6, N_FEATURES = 35 };
  static const char *const names[N_FEATURES] = {
      "tokens",     "f32 input",   "decoder",       "encoder",      "two blocks",    "alibi",        "rope",
      "mla",        "moe",         "moe capacity",  "moe shared",   "cross static",  "cross T rows", "learned pos",
      "sinusoidal", "glu builtin", "layernorm",     "post-norm",    "softmax out",   "matmul",       "any sparse",
      "rope op",    "emb row",     "emb norm",      "retention",    "infini",        "linformer",    "unroll",
      "yoco",       "packed",      "segments attn", "segments pos", "segments rope", "col slice",    "concat"};
  int count[N_FEATURES] = {0}, sparse[SPARSE_KINDS + 1] = {0};
  for (uint64_t s = 1; s <= 2000; s++) {
    tfx_gen_info in;
    assert_int_equal(tfx_gen_model(s, text, sizeof text, &in), 0);
    if (s > 100) continue;
    const int f[N_FEATURES] = {in.tokens,       !in.tokens,       in.causal,
                               !in.causal,      in.n_blocks == 2, in.alibi,
                               in.rope,         in.mla,           in.moe,
                               in.moe_capacity, in.moe_shared,    in.cross_static,
                               in.cross_trows,  in.learned_pos,   in.sinusoidal,
                               in.glu_builtin,  in.layernorm,     in.post_norm,
                               in.softmax_out,  in.matmul,        in.sparse_kinds != 0,
                               in.rope_op,      in.emb_row,       in.emb_norm,
                               in.retention,    in.infini,        in.linformer,
                               in.unroll,       in.yoco,          in.segments,
                               in.seg_attn,     in.seg_pos,       in.seg_rope,
                               in.col_slice,    in.concat};
    for (int k = 0; k < N_FEATURES; k++) count[k] += f[k] != 0;
    for (int k = 1; k <= SPARSE_KINDS; k++) sparse[k] += (in.sparse_kinds >> k & 1) != 0;
  }
  for (int k = 0; k < N_FEATURES; k++)
    if (count[k] < 3) fail_msg("only %d of seeds 1..100 draw '%s'", count[k], names[k]);
  for (int k = 1; k <= SPARSE_KINDS; k++)
    if (sparse[k] < 3) fail_msg("only %d of seeds 1..100 draw sparse pattern %d", sparse[k], k);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_generator), cmocka_unit_test(test_generator_coverage),
                                     cmocka_unit_test(test_random_models)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
