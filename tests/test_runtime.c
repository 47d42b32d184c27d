/* tests/test_runtime.c — the runtime (tfx/tfx.h) without the compiler: fake
 * model descriptors whose entry points are ordinary C functions (one uses
 * exec->parallel_for to fill its rows), fake model .so files built with cc,
 * and the sampler. Outputs are small integers and halves, exact in float, so
 * comparisons are exact unless a tolerance is stated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tfx/seal.h"
#include "tfx/tfx.h"

/* ---- the fake token model ------------------------------------------------
 * output[t][j] = token_t + 1000 * (pos + t) + 0.5 * j + weights[0]  (j < W-1)
 * output[t][W-1] = sum of the tokens cached at positions 0 .. pos + t
 * The KV cache is int32[max_seq] holding the tokens. The forward entry fills
 * its rows with exec->parallel_for over n * W items and checks, per call,
 * that every item was visited exactly once (hit counters in the arena). */
enum { FAKE_VOCAB = 50, FAKE_W = 6, FAKE_MAX_SEQ = 16 };

static atomic_int g_forward_calls, g_decode_calls, g_coverage_errors, g_kernel_chunks;

static alignas(64) const float g_weights[16] = {0.5f};
static alignas(64) const float g_other_weights[16] = {0.25f};

typedef struct fake_args {
  const int32_t *tokens;
  const int32_t *kv;
  int64_t pos;
  float *out;
  float bias;
  atomic_int *hits;
} fake_args;

static float fake_value(const int32_t *kv, int32_t token, int64_t p, int64_t j, float bias) {
  if (j < FAKE_W - 1) return (float)token + 1000.0f * (float)p + 0.5f * (float)j + bias;
  float sum = 0;
  for (int64_t q = 0; q <= p; q++) sum += (float)kv[q];
  return sum;
}

/* When g_split_threads > 0 (a test of the pool's split), the thread ranges
 * of a parallel_for of g_split_items items on that many threads: a chunk
 * lies in one range (range_of its first and last item agree), or
 * g_coverage_errors counts it. */
static int64_t g_split_items;
static int g_split_threads;

static int64_t range_of(int64_t i) {
  int64_t a = g_split_items < g_split_threads ? g_split_items : g_split_threads;
  for (int64_t t = 0; t < a; t++)
    if (i < g_split_items * (t + 1) / a) return t;
  return -1;
}

static void fake_kernel(const void *argp, int64_t begin, int64_t end) {
  const fake_args *a = argp;
  atomic_fetch_add(&g_kernel_chunks, 1);
  if (g_split_threads > 1 && range_of(begin) != range_of(end - 1)) atomic_fetch_add(&g_coverage_errors, 1);
  for (int64_t i = begin; i < end; i++) {
    int64_t t = i / FAKE_W, j = i % FAKE_W;
    a->out[i] = fake_value(a->kv, a->tokens[t], a->pos + t, j, a->bias);
    atomic_fetch_add(&a->hits[i], 1);
  }
}

static void fake_forward(const void *in, int64_t n, int64_t pos, void *out, void *arena, void *kv, const void *weights,
                         tfx_exec *exec) {
  atomic_fetch_add(&g_forward_calls, 1);
  if (((uintptr_t)arena % 64) != 0 || ((uintptr_t)kv % 64) != 0) atomic_fetch_add(&g_coverage_errors, 1000);
  const int32_t *tokens = in;
  int32_t *cache = kv;
  for (int64_t t = 0; t < n; t++) cache[pos + t] = tokens[t];
  atomic_int *hits = arena;
  for (int64_t i = 0; i < n * FAKE_W; i++) atomic_init(&hits[i], 0);
  fake_args a = {tokens, cache, pos, out, ((const float *)weights)[0], hits};
  exec->parallel_for(exec, fake_kernel, &a, n * FAKE_W);
  for (int64_t i = 0; i < n * FAKE_W; i++)
    if (atomic_load(&hits[i]) != 1) atomic_fetch_add(&g_coverage_errors, 1);
}

/* decode takes its arguments in another order, to exercise arg_kinds. */
static void fake_decode(tfx_exec *exec, const void *weights, void *kv, void *arena, void *out, int64_t pos, int64_t n,
                        const void *in) {
  (void)exec;
  (void)arena;
  atomic_fetch_add(&g_decode_calls, 1);
  if (n != 1) atomic_fetch_add(&g_coverage_errors, 1000);
  int32_t *cache = kv;
  int32_t token = ((const int32_t *)in)[0];
  cache[pos] = token;
  for (int64_t j = 0; j < FAKE_W; j++)
    ((float *)out)[j] = fake_value(cache, token, pos, j, ((const float *)weights)[0]);
}

static const int32_t k_fwd_kinds[8] = {TFX_ARG_INPUT, TFX_ARG_NTOKENS, TFX_ARG_POS,     TFX_ARG_OUTPUT,
                                       TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};
static const int32_t k_dec_kinds[8] = {TFX_ARG_EXEC,   TFX_ARG_WEIGHTS, TFX_ARG_KV,      TFX_ARG_ARENA,
                                       TFX_ARG_OUTPUT, TFX_ARG_POS,     TFX_ARG_NTOKENS, TFX_ARG_INPUT};

static const tfx_entry_desc k_entries[2] = {
    {"forward", (void *)fake_forward, 1, FAKE_MAX_SEQ, 8, k_fwd_kinds, 0, 0},
    {"decode", (void *)fake_decode, 1, 1, 8, k_dec_kinds, 0, 0},
};

static tfx_model_desc fake_desc(void) {
  tfx_model_desc d;
  memset(&d, 0, sizeof d);
  d.magic = TFX_DESC_MAGIC;
  d.abi_version = TFX_ABI_VERSION;
  d.name = "fake";
  d.input_kind = TFX_INPUT_TOKENS;
  d.input_width = 1;
  d.output_width = FAKE_W;
  d.vocab = FAKE_VOCAB;
  d.max_seq = FAKE_MAX_SEQ;
  d.has_kv_cache = 1;
  d.arena_bytes = sizeof(atomic_int) * FAKE_MAX_SEQ * FAKE_W;
  d.kv_bytes = sizeof(int32_t) * FAKE_MAX_SEQ;
  d.weights_bytes = sizeof g_weights;
  d.weights = g_weights;
  d.n_entries = 2;
  d.entries = k_entries;
  return d;
}

/* The expected rows for a token sequence starting at position 0, row p. */
static float expected(const int32_t *seq, int64_t p, int64_t j, float bias) {
  return fake_value(seq, seq[p], p, j, bias);
}

static void reset_counters(void) {
  atomic_store(&g_forward_calls, 0);
  atomic_store(&g_decode_calls, 0);
  atomic_store(&g_coverage_errors, 0);
  atomic_store(&g_kernel_chunks, 0);
}

static tfx_model *open_fake(tfx_model_desc *storage) {
  *storage = fake_desc();
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(storage, NULL, NULL, NULL, &m), TFX_OK);
  assert_non_null(m);
  return m;
}

static tfx_session *make_session(tfx_model *m, int32_t threads) {
  tfx_session_options o = {threads};
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &o, &s), TFX_OK);
  assert_non_null(s);
  return s;
}

/* ---- descriptor checks ---- */

static int g_release_count;
static void count_release(void *arg) { *(int *)arg += 1; }

static void test_descriptor_checks(void **state) {
  (void)state;
  tfx_model *m = (tfx_model *)1;
  tfx_model_desc d = fake_desc();
  d.magic = 0x12345678u;
  assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m), TFX_ERR_NOT_A_MODEL);
  assert_null(m);
  d = fake_desc();
  d.abi_version = TFX_ABI_VERSION + 1;
  assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m), TFX_ERR_ABI_VERSION);
  assert_int_equal(tfx_model_from_descriptor(NULL, NULL, NULL, NULL, &m), TFX_ERR_INVALID_ARGUMENT);
  d = fake_desc();
  assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, NULL), TFX_ERR_INVALID_ARGUMENT);

  /* malformed descriptors */
  tfx_entry_desc bad_entries[2];
  int32_t bad_kinds[8];
  for (int what = 0; what <= 8; what++) {
    d = fake_desc();
    memcpy(bad_entries, k_entries, sizeof bad_entries);
    memcpy(bad_kinds, k_fwd_kinds, sizeof bad_kinds);
    bad_entries[0].arg_kinds = bad_kinds;
    d.entries = bad_entries;
    switch (what) {
    case 0: bad_entries[1].fn = NULL; break;
    case 1: bad_entries[0].n_args = 0; break;
    case 2: bad_kinds[3] = 99; break;
    case 3: d.max_seq = 0; break;
    case 4: d.weights = NULL; break; /* weights_bytes > 0 */
    case 5: d.entries = NULL; break;
    case 6: d.n_entries = 0; break;
    case 7: bad_entries[0].max_tokens = 0; break;
    case 8: d.input_kind = 7; break;
    }
    m = (tfx_model *)1;
    assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m), TFX_ERR_NOT_A_MODEL);
    assert_null(m);
  }

  /* weights supplied by the loader (JIT style), and the release callback */
  d = fake_desc();
  d.weights = NULL;
  g_release_count = 0;
  assert_int_equal(tfx_model_from_descriptor(&d, g_other_weights, count_release, &g_release_count, &m), TFX_OK);
  assert_ptr_equal(tfx_model_descriptor(m)->weights, g_other_weights);
  assert_int_equal(tfx_model_descriptor(m)->vocab, FAKE_VOCAB);
  tfx_session *s = make_session(m, 1);
  float row[FAKE_W];
  int32_t tok = 7;
  assert_int_equal(tfx_forward(s, &tok, 1, row), TFX_OK);
  assert_true(row[0] == 7.25f); /* bias from the override weights */
  tfx_session_free(s);
  assert_int_equal(g_release_count, 0);
  tfx_model_close(m);
  assert_int_equal(g_release_count, 1);
  tfx_model_close(NULL);
  assert_null(tfx_model_descriptor(NULL));
}

/* ---- forward ---- */

static void test_argument_errors(void **state) {
  (void)state;
  tfx_model_desc storage;
  tfx_model *m = open_fake(&storage);
  tfx_session *s = NULL;
  tfx_session_options bad = {-1};
  assert_int_equal(tfx_session_create(NULL, NULL, &s), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_session_create(m, NULL, NULL), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_session_create(m, &bad, &s), TFX_ERR_INVALID_ARGUMENT);
  s = make_session(m, 2);
  int32_t toks[4] = {1, 2, 3, 4};
  float out[FAKE_MAX_SEQ * FAKE_W];
  assert_int_equal(tfx_forward(NULL, toks, 1, out), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_forward(s, NULL, 1, out), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_forward(s, toks, 0, out), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_forward(s, toks, -3, out), TFX_ERR_INVALID_ARGUMENT);
  int32_t big[2] = {1, FAKE_VOCAB};
  assert_int_equal(tfx_forward(s, big, 2, out), TFX_ERR_TOKEN_RANGE);
  int32_t neg = -1;
  assert_int_equal(tfx_forward(s, &neg, 1, out), TFX_ERR_TOKEN_RANGE);
  float x[4] = {0};
  assert_int_equal(tfx_forward_f32(s, x, 1, out), TFX_ERR_WRONG_INPUT);
  assert_int_equal(tfx_forward_f32(s, NULL, 1, out), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_session_position(s), 0); /* nothing ran */
  /* NULL logits is allowed: the model still runs and the position advances */
  assert_int_equal(tfx_forward(s, toks, 4, NULL), TFX_OK);
  assert_int_equal(tfx_session_position(s), 4);
  assert_int_equal(tfx_session_position(NULL), 0);
  tfx_session_reset(NULL);
  tfx_session_free(NULL);
  tfx_session_free(s);
  tfx_model_close(m);
}

static void test_entry_choice_position_and_rows(void **state) {
  (void)state;
  tfx_model_desc storage;
  tfx_model *m = open_fake(&storage);
  tfx_session *s = make_session(m, 2);
  reset_counters();
  int32_t seq[FAKE_MAX_SEQ] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
  float all[FAKE_MAX_SEQ * FAKE_W];
  /* prefill 5 tokens, all rows */
  assert_int_equal(tfx_forward_ex(s, seq, 5, all, 0), TFX_OK);
  assert_int_equal(atomic_load(&g_forward_calls), 1);
  assert_int_equal(atomic_load(&g_decode_calls), 0);
  assert_int_equal(tfx_session_position(s), 5);
  for (int p = 0; p < 5; p++)
    for (int j = 0; j < FAKE_W; j++) assert_true(all[p * FAKE_W + j] == expected(seq, p, j, 0.5f));
  /* decode: n == 1 uses the decode entry and sees the cache */
  float last[FAKE_W];
  assert_int_equal(tfx_forward(s, &seq[5], 1, last), TFX_OK);
  assert_int_equal(atomic_load(&g_decode_calls), 1);
  assert_int_equal(atomic_load(&g_forward_calls), 1);
  for (int j = 0; j < FAKE_W; j++) assert_true(last[j] == expected(seq, 5, j, 0.5f));
  assert_int_equal(tfx_session_position(s), 6);
  /* last_only: only the last row is copied, nothing beyond it */
  float guard[FAKE_W * 2];
  for (int i = 0; i < FAKE_W * 2; i++) guard[i] = -7.0f;
  assert_int_equal(tfx_forward_ex(s, &seq[6], 4, guard, 1), TFX_OK);
  for (int j = 0; j < FAKE_W; j++) assert_true(guard[j] == expected(seq, 9, j, 0.5f));
  for (int i = FAKE_W; i < FAKE_W * 2; i++) assert_true(guard[i] == -7.0f);
  assert_int_equal(tfx_session_position(s), 10);
  /* fill to max_seq exactly, then overflow */
  assert_int_equal(tfx_forward(s, &seq[10], 6, last), TFX_OK);
  assert_int_equal(tfx_session_position(s), FAKE_MAX_SEQ);
  for (int j = 0; j < FAKE_W; j++) assert_true(last[j] == expected(seq, 15, j, 0.5f));
  int calls = atomic_load(&g_forward_calls) + atomic_load(&g_decode_calls);
  assert_int_equal(tfx_forward(s, seq, 1, last), TFX_ERR_CONTEXT_FULL);
  assert_int_equal(atomic_load(&g_forward_calls) + atomic_load(&g_decode_calls), calls);
  assert_int_equal(tfx_session_position(s), FAKE_MAX_SEQ);
  /* reset: positions restart at 0 and the cache is rewritten before use */
  tfx_session_reset(s);
  assert_int_equal(tfx_session_position(s), 0);
  int32_t seq2[3] = {11, 12, 13};
  assert_int_equal(tfx_forward_ex(s, seq2, 3, all, 0), TFX_OK);
  for (int p = 0; p < 3; p++)
    for (int j = 0; j < FAKE_W; j++) assert_true(all[p * FAKE_W + j] == expected(seq2, p, j, 0.5f));
  /* a call of more than max_seq tokens from position 0 */
  tfx_session_reset(s);
  int32_t many[FAKE_MAX_SEQ + 1] = {0};
  assert_int_equal(tfx_forward(s, many, FAKE_MAX_SEQ + 1, last), TFX_ERR_CONTEXT_FULL);
  assert_int_equal(atomic_load(&g_coverage_errors), 0);
  tfx_session_free(s);
  tfx_model_close(m);
}

/* The chunks one parallel_for of n items is cut into on a pool of `threads`
 * (runtime/threadpool.c): one call without workers, else one range per
 * thread, [t n / a, (t + 1) n / a) for a = min(threads, n), each cut into
 * chunks of a grain of n / (a * 4) items (at least 1). */
static int expected_chunks(int64_t n, int threads) {
  if (threads == 1) return 1;
  int64_t active = n < threads ? n : threads, grain = n / (active * 4), chunks = 0;
  if (grain < 1) grain = 1;
  for (int64_t t = 0; t < active; t++) {
    int64_t len = n * (t + 1) / active - n * t / active;
    chunks += (len + grain - 1) / grain;
  }
  return (int)chunks;
}

/* Outputs with threads 1/2/4 are identical; each kernel invocation is cut
 * into the pool's chunks, covering every item exactly once, no chunk
 * crossing from one thread's range into the next. */
static void test_threads_identical(void **state) {
  (void)state;
  tfx_model_desc storage;
  tfx_model *m = open_fake(&storage);
  int32_t seq[13] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  float ref[13 * FAKE_W], got[13 * FAKE_W];
  const int32_t counts[3] = {1, 2, 4};
  for (int c = 0; c < 3; c++) {
    tfx_session *s = make_session(m, counts[c]);
    reset_counters();
    g_split_items = 13 * FAKE_W;
    g_split_threads = counts[c];
    for (int rep = 0; rep < 20; rep++) {
      tfx_session_reset(s);
      assert_int_equal(tfx_forward_ex(s, seq, 13, c == 0 ? ref : got, 0), TFX_OK);
    }
    assert_int_equal(atomic_load(&g_coverage_errors), 0);
    assert_int_equal(tfx_session_threads(s), counts[c]);
    assert_int_equal(atomic_load(&g_kernel_chunks), 20 * expected_chunks(13 * FAKE_W, counts[c]));
    g_split_threads = 0;
    if (c > 0) assert_memory_equal(ref, got, sizeof ref);
    /* n == 1 goes to the decode entry, which launches no kernel */
    tfx_session_reset(s);
    reset_counters();
    assert_int_equal(tfx_forward_ex(s, seq, 1, got, 0), TFX_OK);
    assert_int_equal(atomic_load(&g_kernel_chunks), 0);
    assert_int_equal(atomic_load(&g_decode_calls), 1);
    tfx_session_free(s);
  }
  for (int p = 0; p < 13; p++)
    for (int j = 0; j < FAKE_W; j++) assert_true(ref[p * FAKE_W + j] == expected(seq, p, j, 0.5f));
  /* TFX_NUM_THREADS chooses the pool size when opts is NULL or threads 0 */
  setenv("TFX_NUM_THREADS", "3", 1);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  reset_counters();
  assert_int_equal(tfx_forward_ex(s, seq, 2, got, 0), TFX_OK);
  assert_int_equal(tfx_session_threads(s), 3);
  assert_int_equal(atomic_load(&g_kernel_chunks), expected_chunks(2 * FAKE_W, 3));
  tfx_session_free(s);
  setenv("TFX_NUM_THREADS", "1", 1);
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  reset_counters();
  assert_int_equal(tfx_forward_ex(s, seq, 13, got, 0), TFX_OK);
  assert_int_equal(tfx_session_threads(s), 1);
  assert_int_equal(atomic_load(&g_kernel_chunks), 1);
  tfx_session_free(s);
  setenv("TFX_NUM_THREADS", "junk", 1); /* ignored: falls back to the CPUs */
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  reset_counters();
  assert_int_equal(tfx_forward_ex(s, seq, 13, got, 0), TFX_OK);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int pool = cpus < 1 ? 1 : (cpus > 64 ? 64 : (int)cpus);
  assert_int_equal(tfx_session_threads(s), pool);
  assert_int_equal(atomic_load(&g_kernel_chunks), expected_chunks(13 * FAKE_W, pool));
  assert_memory_equal(ref, got, sizeof ref);
  tfx_session_free(s);
  unsetenv("TFX_NUM_THREADS");
  assert_int_equal(atomic_load(&g_coverage_errors), 0);
  tfx_model_close(m);
}

/* A model whose forward takes at most 4 tokens: a KV-cache model runs longer
 * inputs in chunks with identical results. */
static void test_chunked_prefill(void **state) {
  (void)state;
  tfx_model_desc d = fake_desc();
  tfx_entry_desc e[1] = {{"forward", (void *)fake_forward, 1, 4, 8, k_fwd_kinds, 0, 0}};
  d.entries = e;
  d.n_entries = 1;
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m), TFX_OK);
  tfx_session *s = make_session(m, 2);
  reset_counters();
  int32_t seq[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  float all[10 * FAKE_W], last[FAKE_W];
  assert_int_equal(tfx_forward_ex(s, seq, 10, all, 0), TFX_OK);
  assert_int_equal(atomic_load(&g_forward_calls), 3);
  for (int p = 0; p < 10; p++)
    for (int j = 0; j < FAKE_W; j++) assert_true(all[p * FAKE_W + j] == expected(seq, p, j, 0.5f));
  tfx_session_reset(s);
  assert_int_equal(tfx_forward(s, seq, 10, last), TFX_OK);
  for (int j = 0; j < FAKE_W; j++) assert_true(last[j] == expected(seq, 9, j, 0.5f));
  assert_int_equal(tfx_session_position(s), 10);
  assert_int_equal(atomic_load(&g_coverage_errors), 0);
  tfx_session_free(s);
  tfx_model_close(m);
}

/* ---- an f32-input model without KV cache: out[t][j] = x[t][j] + x[t][j+1] ---- */
enum { F32_IN = 3, F32_OUT = 2, F32_MAX = 4 };

static void f32_forward(const void *in, int64_t n, void *out) {
  const float *x = in;
  float *y = out;
  for (int64_t t = 0; t < n; t++)
    for (int j = 0; j < F32_OUT; j++) y[t * F32_OUT + j] = x[t * F32_IN + j] + x[t * F32_IN + j + 1];
}

static void test_f32_model(void **state) {
  (void)state;
  static const int32_t kinds[3] = {TFX_ARG_INPUT, TFX_ARG_NTOKENS, TFX_ARG_OUTPUT};
  tfx_entry_desc e[1] = {{"forward", (void *)f32_forward, 1, F32_MAX, 3, kinds, 0, 0}};
  tfx_model_desc d;
  memset(&d, 0, sizeof d);
  d.magic = TFX_DESC_MAGIC;
  d.abi_version = TFX_ABI_VERSION;
  d.name = "enc";
  d.input_kind = TFX_INPUT_F32;
  d.input_width = F32_IN;
  d.output_width = F32_OUT;
  d.max_seq = F32_MAX;
  d.n_entries = 1;
  d.entries = e;
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m), TFX_OK);
  tfx_session *s = make_session(m, 1);
  float x[F32_MAX * F32_IN], y[F32_MAX * F32_OUT];
  for (int i = 0; i < F32_MAX * F32_IN; i++) x[i] = (float)i;
  for (int rep = 0; rep < 2; rep++) { /* no KV cache: the position stays 0 */
    assert_int_equal(tfx_forward_f32(s, x, F32_MAX, y), TFX_OK);
    assert_int_equal(tfx_session_position(s), 0);
    for (int t = 0; t < F32_MAX; t++)
      for (int j = 0; j < F32_OUT; j++) assert_true(y[t * F32_OUT + j] == x[t * F32_IN + j] + x[t * F32_IN + j + 1]);
  }
  float big[(F32_MAX + 1) * F32_IN] = {0};
  assert_int_equal(tfx_forward_f32(s, big, F32_MAX + 1, y), TFX_ERR_CONTEXT_FULL);
  int32_t tok = 0;
  assert_int_equal(tfx_forward(s, &tok, 1, y), TFX_ERR_WRONG_INPUT);
  assert_int_equal(tfx_forward_f32(s, x, 0, y), TFX_ERR_INVALID_ARGUMENT);
  tfx_session_free(s);
  tfx_model_close(m);
}

/* ---- the KV cache starts zeroed: an entry checks it, then dirties it ---- */
enum { DIRTY_KV = 4096 };
static atomic_int g_nonzero_kv;

static void dirty_forward(void *kv, void *out) {
  unsigned char *c = kv;
  for (int i = 0; i < DIRTY_KV; i++)
    if (c[i] != 0) atomic_fetch_add(&g_nonzero_kv, 1);
  memset(kv, 0xA5, DIRTY_KV);
  ((float *)out)[0] = 1.0f;
}

static void test_kv_zeroed(void **state) {
  (void)state;
  static const int32_t kinds[2] = {TFX_ARG_KV, TFX_ARG_OUTPUT};
  tfx_entry_desc e[1] = {{"forward", (void *)dirty_forward, 1, 4, 2, kinds, 0, 0}};
  tfx_model_desc d = fake_desc();
  d.entries = e;
  d.n_entries = 1;
  d.kv_bytes = DIRTY_KV;
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m), TFX_OK);
  atomic_store(&g_nonzero_kv, 0);
  for (int i = 0; i < 8; i++) { /* freed caches are likely reused by the allocator */
    tfx_session *s = make_session(m, 1);
    int32_t tok = 1;
    float out[FAKE_W];
    assert_int_equal(tfx_forward(s, &tok, 1, out), TFX_OK);
    tfx_session_free(s);
  }
  assert_int_equal(atomic_load(&g_nonzero_kv), 0);
  tfx_model_close(m);
}

/* ---- concurrency: two sessions on two threads, two models ---- */
typedef struct worker_job {
  tfx_model *model;
  float bias;
  int failures;
} worker_job;

static void *session_worker(void *arg) {
  worker_job *job = arg;
  tfx_session_options o = {2};
  tfx_session *s = NULL;
  if (tfx_session_create(job->model, &o, &s) != TFX_OK) {
    job->failures = 1000;
    return NULL;
  }
  int32_t seq[FAKE_MAX_SEQ];
  float all[FAKE_MAX_SEQ * FAKE_W], last[FAKE_W];
  for (int rep = 0; rep < 200; rep++) {
    for (int i = 0; i < FAKE_MAX_SEQ; i++) seq[i] = (rep * 7 + i * 3) % FAKE_VOCAB;
    tfx_session_reset(s);
    int n = 1 + rep % 8;
    if (tfx_forward_ex(s, seq, n, all, 0) != TFX_OK) job->failures++;
    for (int p = 0; p < n; p++)
      for (int j = 0; j < FAKE_W; j++)
        if (all[p * FAKE_W + j] != expected(seq, p, j, job->bias)) job->failures++;
    for (int p = n; p < FAKE_MAX_SEQ; p++) {
      if (tfx_forward(s, &seq[p], 1, last) != TFX_OK) job->failures++;
      for (int j = 0; j < FAKE_W; j++)
        if (last[j] != expected(seq, p, j, job->bias)) job->failures++;
    }
  }
  tfx_session_free(s);
  return NULL;
}

static void test_concurrent_sessions(void **state) {
  (void)state;
  tfx_model_desc storage;
  tfx_model *m = open_fake(&storage);
  tfx_model_desc d2 = fake_desc();
  d2.name = "fake2";
  tfx_model *m2 = NULL;
  assert_int_equal(tfx_model_from_descriptor(&d2, g_other_weights, NULL, NULL, &m2), TFX_OK);
  reset_counters();
  worker_job jobs[3] = {{m, 0.5f, 0}, {m, 0.5f, 0}, {m2, 0.25f, 0}};
  pthread_t tids[3];
  for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&tids[i], NULL, session_worker, &jobs[i]), 0);
  for (int i = 0; i < 3; i++) pthread_join(tids[i], NULL);
  for (int i = 0; i < 3; i++) assert_int_equal(jobs[i].failures, 0);
  assert_int_equal(atomic_load(&g_coverage_errors), 0);
  tfx_model_close(m2);
  tfx_model_close(m);
}

/* ---- model .so files built with cc ---- */
static char g_tmpdir[256];

static const char *k_so_source =
    "#include \"tfx/abi.h\"\n"
    "#include <string.h>\n"
    "static void fwd(const void *in, long long n, long long pos, void *out) {\n"
    "  const int *t = in; float *o = out;\n"
    "  for (long long i = 0; i < n; i++) { o[2*i] = (float)t[i] + BIAS; o[2*i+1] = (float)(pos + i); }\n"
    "}\n"
    "static const int kinds[4] = {TFX_ARG_INPUT, TFX_ARG_NTOKENS, TFX_ARG_POS, TFX_ARG_OUTPUT};\n"
    "static const tfx_entry_desc entries[1] = {{\"forward\", (void *)fwd, 1, 8, 4, kinds}};\n"
    "#ifndef NO_DESC\n"
    "const tfx_model_desc tfx_model_descriptor_data = {MAGIC, ABI, NAME, TFX_INPUT_TOKENS, 1, 2, 10, 8, 1,\n"
    "  0, 0, 0, 0, 1, 0, entries};\n"
    "#endif\n"
    "int unrelated_symbol(void) { return 1; }\n";

/* Appends the seal tfxc's link appends (tfx/seal.h), skipping nothing. */
static int seal_file(const char *path) {
  int fd = open(path, O_RDWR);
  struct stat st;
  int rc = fd >= 0 && fstat(fd, &st) == 0 ? tfx_seal_append(fd, (uint64_t)st.st_size, 0, 0) : -1;
  if (fd >= 0) close(fd);
  return rc;
}

/* Builds tmpdir/<name>.so from k_so_source with the given defines, sealed. */
static int build_unsealed_so(const char *name, const char *defines, char *path, size_t len) {
  char src[512], cmd[2048];
  snprintf(src, sizeof src, "%s/model.c", g_tmpdir);
  FILE *f = fopen(src, "w");
  if (!f) return -1;
  fputs(k_so_source, f);
  fclose(f);
  snprintf(path, len, "%s/%s.so", g_tmpdir, name);
  snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O1 -I'%s/include' %s -o '%s' '%s'", TFX_SOURCE_DIR, defines, path, src);
  return system(cmd);
}

static int build_so(const char *name, const char *defines, char *path, size_t len) {
  int rc = build_unsealed_so(name, defines, path, len);
  return rc ? rc : seal_file(path);
}

static int setup_tmpdir(void **state) {
  (void)state;
  snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/tfx_rt_test_XXXXXX");
  return mkdtemp(g_tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state) {
  (void)state;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static void test_model_open(void **state) {
  (void)state;
  char err[512], path[512];
  tfx_model *m = (tfx_model *)1;
  /* missing file */
  assert_int_equal(tfx_model_open_ex("/nonexistent/dir/model.so", &m, err, sizeof err), TFX_ERR_OPEN);
  assert_null(m);
  assert_true(strlen(err) > 0);
  assert_non_null(strstr(err, "/nonexistent/dir/model.so"));
  assert_int_equal(tfx_model_open("/nonexistent/dir/model.so", &m), TFX_ERR_OPEN);
  assert_int_equal(tfx_model_open(NULL, &m), TFX_ERR_INVALID_ARGUMENT);
  /* a file that is not a shared object */
  snprintf(path, sizeof path, "%s/garbage.so", g_tmpdir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("not an ELF file\n", f);
  fclose(f);
  assert_int_equal(tfx_model_open_ex(path, &m, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  assert_non_null(strstr(err, "not a loadable model"));

  const char *common = "-DMAGIC=TFX_DESC_MAGIC -DABI=TFX_ABI_VERSION -DBIAS=0.5f";
  char defs[512];
  /* no descriptor */
  snprintf(defs, sizeof defs, "%s -DNAME='\"x\"' -DNO_DESC", common);
  assert_int_equal(build_so("nodesc", defs, path, sizeof path), 0);
  assert_int_equal(tfx_model_open_ex(path, &m, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  assert_non_null(strstr(err, TFX_DESC_SYMBOL));
  /* bad magic */
  assert_int_equal(
      build_so("badmagic", "-DMAGIC=0x1234 -DABI=TFX_ABI_VERSION -DBIAS=0.5f -DNAME='\"x\"'", path, sizeof path), 0);
  assert_int_equal(tfx_model_open_ex(path, &m, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  /* another ABI version: the message names both */
  assert_int_equal(build_so("badabi", "-DMAGIC=TFX_DESC_MAGIC -DABI=77 -DBIAS=0.5f -DNAME='\"x\"'", path, sizeof path),
                   0);
  assert_int_equal(tfx_model_open_ex(path, &m, err, sizeof err), TFX_ERR_ABI_VERSION);
  assert_non_null(strstr(err, "77"));
  char mine[32];
  snprintf(mine, sizeof mine, "version %d", TFX_ABI_VERSION);
  assert_non_null(strstr(err, mine));

  /* the seal: a model without one is refused (and loads once sealed); a
   * byte changed after sealing is refused before dlopen */
  snprintf(defs, sizeof defs, "%s -DNAME='\"x\"'", common);
  assert_int_equal(build_unsealed_so("unsealed", defs, path, sizeof path), 0);
  assert_int_equal(tfx_model_open_ex(path, &m, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  assert_non_null(strstr(err, "no tfxc seal"));
  assert_int_equal(seal_file(path), 0);
  assert_int_equal(tfx_model_open_ex(path, &m, err, sizeof err), TFX_OK);
  tfx_model_close(m);
  m = NULL;
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  unsigned char byte;
  assert_int_equal(pread(fd, &byte, 1, 64), 1); /* the first program header */
  byte ^= 0x10;
  assert_int_equal(pwrite(fd, &byte, 1, 64), 1);
  close(fd);
  assert_int_equal(tfx_model_open_ex(path, &m, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  assert_non_null(strstr(err, "differ from its seal"));

  /* two valid models with different weights baked in, loaded side by side */
  char p1[512], p2[512];
  snprintf(defs, sizeof defs, "%s -DNAME='\"one\"'", common);
  assert_int_equal(build_so("one", defs, p1, sizeof p1), 0);
  assert_int_equal(
      build_so("two", "-DMAGIC=TFX_DESC_MAGIC -DABI=TFX_ABI_VERSION -DBIAS=100.0f -DNAME='\"two\"'", p2, sizeof p2), 0);
  tfx_model *m1 = NULL, *m2 = NULL;
  assert_int_equal(tfx_model_open_ex(p1, &m1, err, sizeof err), TFX_OK);
  assert_int_equal(tfx_model_open(p2, &m2), TFX_OK);
  assert_string_equal(tfx_model_descriptor(m1)->name, "one");
  assert_string_equal(tfx_model_descriptor(m2)->name, "two");
  tfx_session *s1 = make_session(m1, 1), *s2 = make_session(m2, 2);
  int32_t toks[3] = {4, 5, 6};
  float o1[6], o2[2];
  assert_int_equal(tfx_forward_ex(s1, toks, 3, o1, 0), TFX_OK);
  assert_int_equal(tfx_forward(s2, toks, 3, o2), TFX_OK);
  for (int t = 0; t < 3; t++) {
    assert_true(o1[2 * t] == (float)toks[t] + 0.5f);
    assert_true(o1[2 * t + 1] == (float)t);
  }
  assert_true(o2[0] == 106.0f && o2[1] == 2.0f);
  assert_int_equal(tfx_forward(s1, toks, 1, o1), TFX_OK); /* position continues */
  assert_true(o1[1] == 3.0f);
  tfx_session_free(s1);
  tfx_session_free(s2);
  tfx_model_close(m1);
  tfx_model_close(m2);

  /* a model file named relative to the working directory */
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(g_tmpdir), 0);
  int rc = tfx_model_open("one.so", &m1);
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(rc, TFX_OK);
  tfx_model_close(m1);
}

/* ---- errors ---- */
static void test_error_messages(void **state) {
  (void)state;
  const char *unknown = tfx_error_message(12345);
  assert_string_equal(unknown, "unknown error");
  assert_string_equal(tfx_error_message(1), "unknown error");
  for (int code = TFX_OK; code >= TFX_ERR_NO_BATCH; code--) {
    const char *msg = tfx_error_message(code);
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    assert_string_not_equal(msg, unknown);
    for (int other = TFX_OK; other > code; other--) assert_string_not_equal(msg, tfx_error_message(other));
  }
}

/* ---- sampling ---- */
static void test_sample_greedy(void **state) {
  (void)state;
  tfx_sampler s;
  tfx_sampler_init(&s, 0.0f, 1.0f, 42);
  float a[5] = {1.0f, 3.0f, -2.0f, 3.0f, 2.0f};
  assert_int_equal(tfx_sample(&s, a, 5), 1); /* lowest index on ties */
  float b[3] = {NAN, 1.0f, 2.0f};
  assert_int_equal(tfx_sample(&s, b, 3), 2);
  float c[3] = {-INFINITY, -INFINITY, -5.0f};
  assert_int_equal(tfx_sample(&s, c, 3), 2);
  assert_int_equal(tfx_sample(&s, a, 1), 0);
}

static void test_sample_errors(void **state) {
  (void)state;
  tfx_sampler s;
  float a[3] = {1, 2, 3};
  tfx_sampler_init(&s, 1.0f, 1.0f, 1);
  assert_true(tfx_sample(NULL, a, 3) < 0);
  assert_true(tfx_sample(&s, NULL, 3) < 0);
  assert_true(tfx_sample(&s, a, 0) < 0);
  assert_true(tfx_sample(&s, a, -1) < 0);
  tfx_sampler_init(&s, -0.5f, 1.0f, 1);
  assert_true(tfx_sample(&s, a, 3) < 0);
  tfx_sampler_init(&s, NAN, 1.0f, 1);
  assert_true(tfx_sample(&s, a, 3) < 0);
  tfx_sampler_init(&s, 1.0f, 0.0f, 1);
  assert_true(tfx_sample(&s, a, 3) < 0);
  tfx_sampler_init(&s, 1.0f, 1.5f, 1);
  assert_true(tfx_sample(&s, a, 3) < 0);
  tfx_sampler_init(&s, 1.0f, NAN, 1);
  assert_true(tfx_sample(&s, a, 3) < 0);
  tfx_sampler_init(NULL, 1.0f, 1.0f, 1); /* no crash */
  tfx_sampler_init(&s, 1.0f, 1.0f, 0);   /* seed 0 still gives a nonzero state */
  assert_true(s.rng_state != 0);
}

static void draw(tfx_sampler *s, const float *logits, int n, int count, int32_t *out) {
  float buf[64];
  for (int i = 0; i < count; i++) {
    memcpy(buf, logits, sizeof(float) * (size_t)n);
    out[i] = tfx_sample(s, buf, n);
  }
}

static void test_sample_temperature(void **state) {
  (void)state;
  float logits[8] = {0.1f, 0.3f, -0.2f, 0.0f, 0.25f, 0.05f, -0.1f, 0.2f};
  int32_t x[40], y[40], z[40];
  tfx_sampler s;
  tfx_sampler_init(&s, 1.0f, 1.0f, 1234);
  draw(&s, logits, 8, 40, x);
  tfx_sampler_init(&s, 1.0f, 1.0f, 1234);
  draw(&s, logits, 8, 40, y);
  tfx_sampler_init(&s, 1.0f, 1.0f, 9999);
  draw(&s, logits, 8, 40, z);
  assert_memory_equal(x, y, sizeof x);
  assert_memory_not_equal(x, z, sizeof x);
  for (int i = 0; i < 40; i++) assert_true(x[i] >= 0 && x[i] < 8);

  /* frequencies follow softmax(logits / T): p = {0.1, 0.2, 0.3, 0.4} at T = 1
   * and p ∝ p^2 at T = 0.5; 20000 draws, tolerance 0.02 absolute */
  const float p[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  float lg[4];
  for (int i = 0; i < 4; i++) lg[i] = logf(p[i]) + 3.0f;
  for (int pass = 0; pass < 2; pass++) {
    float t = pass == 0 ? 1.0f : 0.5f;
    double q[4], qs = 0;
    for (int i = 0; i < 4; i++) qs += q[i] = pass == 0 ? p[i] : p[i] * p[i];
    tfx_sampler_init(&s, t, 1.0f, 7 + (uint64_t)pass);
    int hist[4] = {0};
    const int N = 20000;
    for (int i = 0; i < N; i++) {
      float buf[4];
      memcpy(buf, lg, sizeof buf);
      int32_t k = tfx_sample(&s, buf, 4);
      assert_true(k >= 0 && k < 4);
      hist[k]++;
    }
    for (int i = 0; i < 4; i++) assert_true(fabs((double)hist[i] / N - q[i] / qs) < 0.02);
  }
}

static void test_sample_top_p(void **state) {
  (void)state;
  tfx_sampler s;
  /* a small top_p keeps only the argmax (lowest index among ties) */
  float logits[6] = {0.5f, 2.0f, 1.0f, 2.0f, -1.0f, 1.9f};
  for (uint64_t seed = 1; seed < 50; seed++) {
    tfx_sampler_init(&s, 1.0f, 0.05f, seed);
    float buf[6];
    memcpy(buf, logits, sizeof buf);
    assert_int_equal(tfx_sample(&s, buf, 6), 1);
  }
  /* p = {0.1, 0.4, 0.2, 0.3} at indices 0..3: sorted 0.4 (cum 0.4), 0.3 (cum
   * 0.7 >= 0.5): the nucleus is {1, 3}, drawn with 4/7 and 3/7 (tolerance
   * 0.02 absolute over 20000 draws) */
  const float p[4] = {0.1f, 0.4f, 0.2f, 0.3f};
  float lg[4];
  for (int i = 0; i < 4; i++) lg[i] = logf(p[i]);
  tfx_sampler_init(&s, 1.0f, 0.5f, 99);
  int hist[4] = {0};
  const int N = 20000;
  for (int i = 0; i < N; i++) {
    float buf[4];
    memcpy(buf, lg, sizeof buf);
    int32_t k = tfx_sample(&s, buf, 4);
    assert_true(k >= 0 && k < 4);
    hist[k]++;
  }
  assert_int_equal(hist[0], 0);
  assert_int_equal(hist[2], 0);
  assert_true(fabs((double)hist[1] / N - 4.0 / 7.0) < 0.02);
  assert_true(fabs((double)hist[3] / N - 3.0 / 7.0) < 0.02);
  /* ties at the cut are taken lowest index first: uniform over 4 with
   * top_p 0.5 keeps exactly indices 0 and 1 */
  float flat[4] = {1, 1, 1, 1};
  int seen[4] = {0};
  tfx_sampler_init(&s, 1.0f, 0.5f, 5);
  for (int i = 0; i < 2000; i++) {
    float buf[4];
    memcpy(buf, flat, sizeof buf);
    seen[tfx_sample(&s, buf, 4)]++;
  }
  assert_true(seen[0] > 0 && seen[1] > 0);
  assert_int_equal(seen[2] + seen[3], 0);
  /* a large vocabulary with top_p = 0.9 stays within the nucleus */
  enum { V = 4096 };
  static float big[V], buf[V];
  for (int i = 0; i < V; i++) big[i] = (float)((i * 37) % 101) * 0.05f;
  tfx_sampler_init(&s, 0.8f, 0.9f, 3);
  for (int r = 0; r < 20; r++) {
    memcpy(buf, big, sizeof big);
    int32_t k = tfx_sample(&s, buf, V);
    assert_true(k >= 0 && k < V);
    /* p ∝ exp(m * 0.0625) over m = 0..100 (about 41 copies each): the lowest
     * 10% of the mass is m < ~64, so every kept logit is >= 64 * 0.05 */
    assert_true(big[k] > 3.0f);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_checks),
      cmocka_unit_test(test_argument_errors),
      cmocka_unit_test(test_entry_choice_position_and_rows),
      cmocka_unit_test(test_threads_identical),
      cmocka_unit_test(test_chunked_prefill),
      cmocka_unit_test(test_f32_model),
      cmocka_unit_test(test_kv_zeroed),
      cmocka_unit_test(test_concurrent_sessions),
      cmocka_unit_test_setup_teardown(test_model_open, setup_tmpdir, teardown_tmpdir),
      cmocka_unit_test(test_error_messages),
      cmocka_unit_test(test_sample_greedy),
      cmocka_unit_test(test_sample_errors),
      cmocka_unit_test(test_sample_temperature),
      cmocka_unit_test(test_sample_top_p),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
