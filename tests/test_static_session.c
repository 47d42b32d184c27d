/* tests/test_static_session.c — static sessions (tfx_session_create_static)
 * and the generated header's typed entry points.
 *
 * - On the real stories260K (JIT), a session in the caller's buffers gives
 *   bitwise the logits of a tfx_session_create session with 2 threads: a
 *   prefill of every row, a prefill of the last row, decode steps, a reset.
 * - Between its creation and its free, through prefill and decode, a static
 *   session calls no allocator (malloc, calloc, realloc, posix_memalign,
 *   aligned_alloc, mmap), creates no thread and makes no libffi call: this
 *   test is linked with -Wl,--wrap for each (tests/CMakeLists.txt) and counts
 *   them; a tfx_session_create session, counted the same way, does allocate
 *   (the counters work).
 * - NULL, misaligned and too small buffers (by one byte) are
 *   TFX_ERR_INVALID_ARGUMENT with a message naming the buffer and the size
 *   needed; a model without a KV cache takes kv = NULL; a call needing more
 *   than the one output row a static session keeps (a model without a
 *   last-row entry) is refused, position unchanged.
 * - tfx_model_from_descriptor_static puts the model in the caller's storage,
 *   counted as above (nothing allocated), with errors for bad arguments.
 * - libtfxrt_min.a (the minimal runtime) needs no allocator, thread, libffi
 *   or dlopen, and has at most 16 KB of code.
 * - A -c object of stories260K with its header: examples/embed/static_session.c
 *   (static buffers and model from the header's macros; linked with the
 *   runtime, then with the minimal runtime and libm alone) and
 *   examples/embed/no_runtime.c (only the header's <name>_call: linked with
 *   no runtime archive, no libffi, no pthread) print llama2.c's 16 greedy
 *   ids; the header's sizes equal tfx_session_static_sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>
#include <ffi.h>
#include <pthread.h>

#include "support/testutil.h"
#include "tfx/jit.h"
#include "tfx/tfx.h"

#ifdef TFX_SANITIZE_FLAGS
#define SANITIZE_ARG TFX_SANITIZE_FLAGS,
#else
#define SANITIZE_ARG
#endif

/* ---- counting the allocator, threads and libffi (-Wl,--wrap=...) ---- */
static int counting;
static long n_alloc, n_threads, n_ffi;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
void __real_ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue);

void *__wrap_malloc(size_t n) {
  if (counting) n_alloc++;
  return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
  if (counting) n_alloc++;
  return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
  if (counting) n_alloc++;
  return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
  if (counting) n_alloc++;
  return __real_posix_memalign(p, align, n);
}
void *__wrap_aligned_alloc(size_t align, size_t n) {
  if (counting) n_alloc++;
  return __real_aligned_alloc(align, n);
}
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (counting) n_alloc++;
  return __real_mmap(addr, len, prot, flags, fd, off);
}
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
  if (counting) n_threads++;
  return __real_pthread_create(t, a, fn, arg);
}
void __wrap_ffi_call(ffi_cif *cif, void (*fn)(void), void *rvalue, void **avalue) {
  if (counting) n_ffi++;
  __real_ffi_call(cif, fn, rvalue, avalue);
}

static void count_start(void) {
  n_alloc = n_threads = n_ffi = 0;
  counting = 1;
}
static void count_stop(void) { counting = 0; }

/* ---- the model ---- */
static tfx_model *stories;
static int32_t ref_ids[16];
static char model_bin[4096], stories_tfx[4200];

static int setup(void **state) {
  (void)state;
  if (tfx_test_stories260k("test_static_session", model_bin, sizeof model_bin, stories_tfx, sizeof stories_tfx, ref_ids,
                           16))
    return -1;
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = model_bin;
  return tfx_jit_compile_file(stories_tfx, &co, &stories) == TFX_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_model_close(stories);
  return 0;
}

/* Buffers of the sizes a static session needs, TFX_BUFFER_ALIGN-aligned
 * (plus `extra` bytes, for the misalignment cases). */
typedef struct bufs {
  void *arena, *kv;
  size_t arena_bytes, kv_bytes;
} bufs;

static void bufs_alloc(const tfx_model *m, bufs *b, size_t extra) {
  assert_int_equal(tfx_session_static_sizes(m, &b->arena_bytes, &b->kv_bytes), TFX_OK);
  b->arena = aligned_alloc(TFX_BUFFER_ALIGN, (b->arena_bytes + extra + 63) / 64 * 64);
  b->kv = b->kv_bytes ? aligned_alloc(TFX_BUFFER_ALIGN, (b->kv_bytes + extra + 63) / 64 * 64) : NULL;
  assert_non_null(b->arena);
  if (b->kv_bytes) assert_non_null(b->kv);
  memset(b->arena, 0xA5, b->arena_bytes); /* garbage: the session must not rely on zeroed memory */
  if (b->kv) memset(b->kv, 0x5A, b->kv_bytes);
}

static void bufs_free(bufs *b) {
  free(b->arena);
  free(b->kv);
}

#define PROMPT 8
#define STEPS 6

static void test_static_matches_a_normal_session_bitwise(void **state) {
  (void)state;
  const tfx_model_desc *d = tfx_model_descriptor(stories);
  size_t w = (size_t)d->output_width;
  tfx_session_options so = {.threads = 2};
  tfx_session *ref = NULL, *s = NULL;
  assert_int_equal(tfx_session_create(stories, &so, &ref), TFX_OK);
  bufs b;
  bufs_alloc(stories, &b, 0);
  tfx_session_storage st;
  char err[256];
  assert_int_equal(
      tfx_session_create_static(stories, b.arena, b.arena_bytes, b.kv, b.kv_bytes, &st, &s, err, sizeof err), TFX_OK);
  assert_string_equal(err, "");
  assert_int_equal(tfx_session_threads(s), 1);
  assert_int_equal(tfx_session_position(s), 0);

  float *la = malloc(PROMPT * w * sizeof(float)), *lb = malloc(PROMPT * w * sizeof(float));
  assert_non_null(la);
  assert_non_null(lb);
  int32_t prompt[PROMPT] = {1, 403, 407, 261, 378, 400, 354, 430};
  for (int round = 0; round < 2; round++) {
    /* round 0: a prefill of every row; round 1 (after a reset): of the last row */
    int last_only = round == 1;
    size_t rows = last_only ? 1 : PROMPT;
    assert_int_equal(tfx_forward_ex(ref, prompt, PROMPT, la, last_only), TFX_OK);
    assert_int_equal(tfx_forward_ex(s, prompt, PROMPT, lb, last_only), TFX_OK);
    assert_memory_equal(la, lb, rows * w * sizeof(float));
    int32_t tok = tfx_test_argmax(la + (rows - 1) * w, (int)w);
    for (int i = 0; i < STEPS; i++) {
      assert_int_equal(tfx_forward(ref, &tok, 1, la), TFX_OK);
      assert_int_equal(tfx_forward(s, &tok, 1, lb), TFX_OK);
      assert_memory_equal(la, lb, w * sizeof(float));
      tok = tfx_test_argmax(la, (int)w);
    }
    /* a step whose logits nobody wants (the one-row scratch) */
    assert_int_equal(tfx_forward(ref, &tok, 1, NULL), TFX_OK);
    assert_int_equal(tfx_forward(s, &tok, 1, NULL), TFX_OK);
    assert_int_equal(tfx_session_position(s), PROMPT + STEPS + 1);
    assert_int_equal(tfx_session_position(ref), tfx_session_position(s));
    assert_int_equal(tfx_forward(ref, &tok, 1, la), TFX_OK);
    assert_int_equal(tfx_forward(s, &tok, 1, lb), TFX_OK);
    assert_memory_equal(la, lb, w * sizeof(float));
    tfx_session_reset(ref);
    tfx_session_reset(s);
  }
  /* the errors of any session: a token out of range, a full context */
  int32_t bad = d->vocab;
  assert_int_equal(tfx_forward(s, &bad, 1, lb), TFX_ERR_TOKEN_RANGE);
  assert_non_null(strstr(tfx_session_last_error(s), "outside the vocabulary"));
  free(la);
  free(lb);
  tfx_session_free(s);
  tfx_session_free(ref);
  bufs_free(&b);
}

static void test_static_path_allocates_nothing(void **state) {
  (void)state;
  size_t w = (size_t)tfx_model_descriptor(stories)->output_width;
  float *logits = malloc(w * sizeof(float));
  assert_non_null(logits);
  bufs b;
  bufs_alloc(stories, &b, 0);
  tfx_model_storage ms;
  tfx_session_storage st;
  tfx_model *m = NULL;
  tfx_session *s = NULL;
  int32_t prompt[4] = {1, 403, 407, 261};
  char err[256] = "";
  count_start();
  /* the model too, from its descriptor into the caller's storage */
  int rc = tfx_model_from_descriptor_static(tfx_model_descriptor(stories), &ms, &m, err, sizeof err);
  if (rc == TFX_OK) rc = tfx_session_create_static(m, b.arena, b.arena_bytes, b.kv, b.kv_bytes, &st, &s, NULL, 0);
  int rc1 = rc == TFX_OK ? tfx_forward(s, prompt, 4, logits) : rc;
  int rc2 = rc1 == TFX_OK ? tfx_forward(s, prompt + 1, 1, logits) : rc1;
  int rc3 = rc2 == TFX_OK ? tfx_forward_ex(s, prompt, 2, NULL, 1) : rc2;
  tfx_session_reset(s);
  tfx_session_free(s);
  tfx_model_close(m);
  count_stop();
  if (rc3 != TFX_OK) fail_msg("rc %d: %s", rc3, err);
  assert_int_equal(n_alloc, 0);
  assert_int_equal(n_threads, 0);
  assert_int_equal(n_ffi, 0);
  /* the counters see a normal session's allocations and its pool's threads */
  tfx_session_options so = {.threads = 2};
  count_start();
  rc = tfx_session_create(stories, &so, &s);
  rc1 = rc == TFX_OK ? tfx_forward(s, prompt, 4, logits) : rc;
  tfx_session_free(s);
  count_stop();
  assert_int_equal(rc1, TFX_OK);
  assert_true(n_alloc >= 3); /* session, arena, KV cache, output row */
  assert_int_equal(n_threads, 1);
  assert_int_equal(n_ffi, 0); /* generated entries are called through their C type */
  free(logits);
  bufs_free(&b);
}

/* tfx_session_create_static with the given buffers: the status, and the
 * message must contain `want` (when non-NULL); *out stays NULL on failure. */
static void expect_create(const tfx_model *m, void *arena, size_t arena_bytes, void *kv, size_t kv_bytes, int want_rc,
                          const char *want) {
  tfx_session_storage st;
  tfx_session *s = (tfx_session *)&st; /* overwritten with NULL on failure */
  char err[256] = "junk";
  int rc = tfx_session_create_static(m, arena, arena_bytes, kv, kv_bytes, &st, &s, err, sizeof err);
  assert_int_equal(rc, want_rc);
  if (rc != TFX_OK) {
    assert_null(s);
    if (!strstr(err, want)) fail_msg("message '%s' lacks '%s'", err, want);
  }
  tfx_session_free(s);
}

/* tfx_model_from_descriptor_static: NULL arguments, and a descriptor that
 * is not a model, are errors with messages; *out stays NULL. */
static void test_static_model_errors(void **state) {
  (void)state;
  tfx_model_storage ms;
  tfx_model *m = (tfx_model *)&ms;
  char err[256] = "junk";
  assert_int_equal(tfx_model_from_descriptor_static(NULL, &ms, &m, err, sizeof err), TFX_ERR_INVALID_ARGUMENT);
  assert_null(m);
  assert_non_null(strstr(err, "NULL descriptor, storage or output pointer"));
  assert_int_equal(tfx_model_from_descriptor_static(tfx_model_descriptor(stories), NULL, &m, err, sizeof err),
                   TFX_ERR_INVALID_ARGUMENT);
  tfx_model_desc bad = *tfx_model_descriptor(stories);
  bad.magic ^= 1;
  m = (tfx_model *)&ms;
  assert_int_equal(tfx_model_from_descriptor_static(&bad, &ms, &m, err, sizeof err), TFX_ERR_NOT_A_MODEL);
  assert_null(m);
  bad = *tfx_model_descriptor(stories);
  bad.abi_version += 1;
  assert_int_equal(tfx_model_from_descriptor_static(&bad, &ms, &m, err, sizeof err), TFX_ERR_ABI_VERSION);
  tfx_model_close(NULL);
}

static void test_bad_buffers_are_errors(void **state) {
  (void)state;
  bufs b;
  bufs_alloc(stories, &b, 64);
  char *a = b.arena, *k = b.kv;
  size_t na = b.arena_bytes, nk = b.kv_bytes;
  char want[128];
  expect_create(stories, a, na, k, nk, TFX_OK, NULL);
  snprintf(want, sizeof want, "the arena has %zu bytes; the model needs %zu", na - 1, na);
  expect_create(stories, a, na - 1, k, nk, TFX_ERR_INVALID_ARGUMENT, want);
  expect_create(stories, a, 0, k, nk, TFX_ERR_INVALID_ARGUMENT, "the arena has 0 bytes");
  snprintf(want, sizeof want, "the KV cache has %zu bytes; the model needs %zu", nk - 1, nk);
  expect_create(stories, a, na, k, nk - 1, TFX_ERR_INVALID_ARGUMENT, want);
  expect_create(stories, a + 8, na, k, nk, TFX_ERR_INVALID_ARGUMENT, "is not 64-byte aligned");
  expect_create(stories, a + 32, na, k, nk, TFX_ERR_INVALID_ARGUMENT, "the arena at");
  expect_create(stories, a, na, k + 1, nk, TFX_ERR_INVALID_ARGUMENT, "the KV cache at");
  expect_create(stories, NULL, na, k, nk, TFX_ERR_INVALID_ARGUMENT, "the arena is NULL");
  expect_create(stories, a, na, NULL, nk, TFX_ERR_INVALID_ARGUMENT, "the KV cache is NULL");
  expect_create(NULL, a, na, k, nk, TFX_ERR_INVALID_ARGUMENT, "NULL model");
  /* NULL storage, output pointer, errbuf */
  tfx_session *s = NULL;
  tfx_session_storage st;
  char err[64];
  assert_int_equal(tfx_session_create_static(stories, a, na, k, nk, NULL, &s, err, sizeof err),
                   TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_session_create_static(stories, a, na, k, nk, &st, NULL, err, sizeof err),
                   TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_session_create_static(stories, a, na - 64, k, nk, &st, &s, NULL, 0), TFX_ERR_INVALID_ARGUMENT);
  /* a message cut to a small errbuf stays terminated */
  assert_int_equal(tfx_session_create_static(stories, a, na - 64, k, nk, &st, &s, err, 8), TFX_ERR_INVALID_ARGUMENT);
  assert_true(strlen(err) < 8);
  assert_int_equal(tfx_session_static_sizes(NULL, NULL, NULL), TFX_ERR_INVALID_ARGUMENT);
  bufs_free(&b);
}

/* A model without a KV cache: kv may be NULL; its static session matches
 * a normal one bitwise, all rows and the last row. */
static void test_model_without_kv_cache(void **state) {
  (void)state;
  static const char src[] = "model nokv\n"
                            "const dim = 8, max_seq = 4\n"
                            "param w : f32[dim, dim]\n"
                            "forward(x : f32[T, dim]) -> f32[T, dim] { return linear(x, w) }\n";
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = "random:7";
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("nokv.tfx", src, &co, &m), TFX_OK);
  size_t na = 0, nk = 1;
  assert_int_equal(tfx_session_static_sizes(m, &na, &nk), TFX_OK);
  assert_int_equal(nk, 0);
  assert_true(na >= 64 && na % 64 == 0);
  void *arena = aligned_alloc(TFX_BUFFER_ALIGN, na);
  assert_non_null(arena);
  tfx_session_storage st;
  tfx_session *s = NULL, *ref = NULL;
  assert_int_equal(tfx_session_create_static(m, arena, na, NULL, 0, &st, &s, NULL, 0), TFX_OK);
  assert_int_equal(tfx_session_create(m, NULL, &ref), TFX_OK);
  float x[4 * 8], ya[4 * 8], yb[4 * 8];
  for (int i = 0; i < 32; i++) x[i] = (float)(i % 7) - 3.0f;
  for (int last_only = 0; last_only < 2; last_only++)
    for (int32_t n = 1; n <= 4; n++) {
      assert_int_equal(tfx_forward_f32_ex(ref, x, n, ya, last_only), TFX_OK);
      assert_int_equal(tfx_forward_f32_ex(s, x, n, yb, last_only), TFX_OK);
      assert_memory_equal(ya, yb, (last_only ? 1 : (size_t)n) * 8 * sizeof(float));
      assert_int_equal(tfx_forward_f32_ex(s, x, n, NULL, last_only), TFX_OK);
    }
  tfx_session_free(s);
  tfx_session_free(ref);
  free(arena);
  tfx_model_close(m);
}

/* A model whose output is its input (not computed row by row, so no
 * last-row entry): a static session's call wanting the last of n > 1 rows
 * needs n rows of output scratch, and is refused with nothing run; with
 * every row, or one row (decode), it matches a normal session. */
static void test_model_without_last_row_entry(void **state) {
  (void)state;
  static const char src[] = "model identity\n"
                            "const dim = 16, max_seq = 8\n"
                            "forward(x : f32[T, dim]) -> f32[T, dim] { return x }\n";
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = "random:3";
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("identity.tfx", src, &co, &m), TFX_OK);
  const tfx_model_desc *d = tfx_model_descriptor(m);
  for (int32_t i = 0; i < d->n_entries; i++) assert_int_equal(d->entries[i].flags & TFX_ENTRY_LAST_ROW, 0);
  bufs b;
  bufs_alloc(m, &b, 0);
  tfx_session_storage st;
  tfx_session *s = NULL, *ref = NULL;
  assert_int_equal(tfx_session_create_static(m, b.arena, b.arena_bytes, b.kv, b.kv_bytes, &st, &s, NULL, 0), TFX_OK);
  assert_int_equal(tfx_session_create(m, NULL, &ref), TFX_OK);
  float x[4 * 16], ya[4 * 16], yb[4 * 16];
  for (int i = 0; i < 64; i++) x[i] = (float)(i % 5) * 0.25f - 0.5f;
  memset(yb, 0, sizeof yb);
  assert_int_equal(tfx_forward_f32_ex(s, x, 3, yb, 1), TFX_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(tfx_session_last_error(s), "a static session keeps one output row and this call writes 3"));
  assert_int_equal(tfx_forward_f32_ex(s, x, 3, NULL, 1), TFX_ERR_INVALID_ARGUMENT);
  for (int i = 0; i < 16; i++) assert_true(yb[i] == 0.0f); /* nothing ran */
  assert_int_equal(tfx_forward_f32_ex(ref, x, 3, ya, 0), TFX_OK);
  assert_int_equal(tfx_forward_f32_ex(s, x, 3, yb, 0), TFX_OK);
  assert_memory_equal(ya, yb, 3 * 16 * sizeof(float));
  assert_memory_equal(x, yb, 3 * 16 * sizeof(float));
  assert_int_equal(tfx_forward_f32_ex(ref, x + 48, 1, ya, 1), TFX_OK);
  assert_int_equal(tfx_forward_f32_ex(s, x + 48, 1, yb, 1), TFX_OK);
  assert_memory_equal(ya, yb, 16 * sizeof(float));
  tfx_session_free(s);
  tfx_session_free(ref);
  bufs_free(&b);
  tfx_model_close(m);
}

/* ---- the -c object with its header ---- */
static char *stdout_of(char *const argv[]) {
  char *out = NULL, *err = NULL;
  int rc = tfx_test_run(argv, &out, &err);
  if (rc != 0) fail_msg("%s exited with %d: %s", argv[0], rc, err ? err : "");
  free(err);
  return out;
}

/* The value of `#define NAME value` in the header text. */
static unsigned long long header_value(const char *text, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "#define %s ", name);
  const char *p = strstr(text, key);
  if (!p) fail_msg("the header has no %s", name);
  return strtoull(p + strlen(key), NULL, 10);
}

/* libtfxrt_min.a: what it needs from outside is libc's string, formatting,
 * getenv and libm's expf, never an allocator, a thread, libffi or the
 * dynamic loader; and its code is at most 16 KB (issue #15; the size is not
 * asserted in the sanitizer build, whose archive is instrumented). */
static void test_minimal_runtime_archive(void **state) {
  (void)state;
  char rt[4200];
  snprintf(rt, sizeof rt, "%s/libtfxrt_min.a", TFX_BINARY_DIR);
  char *out = stdout_of((char *[]){"/usr/bin/nm", "-u", "-P", rt, NULL});
  static const char *const forbidden[] = {"malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc",
                                          "mmap", "pthread_create", "pthread_mutex_lock", "ffi_call", "ffi_prep_cif",
                                          "dlopen", "dlsym", "sysconf"};
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    char name[256] = "";
    if (sscanf(line, "%255s", name) != 1) continue;
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
      if (!strcmp(name, forbidden[i])) fail_msg("libtfxrt_min.a calls %s", name);
  }
  free(out);
#ifndef TFX_SANITIZE_FLAGS
  out = stdout_of((char *[]){"/usr/bin/size", "-A", "-d", rt, NULL});
  unsigned long long code = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    char name[256];
    unsigned long long bytes = 0;
    if (sscanf(line, "%255s %llu", name, &bytes) == 2 && !strncmp(name, ".text", 5)) code += bytes;
  }
  free(out);
  print_message("libtfxrt_min.a: %llu bytes of code\n", code);
  assert_true(code > 1024 && code <= 16 * 1024);
#endif
}

static void test_object_programs(void **state) {
  (void)state;
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char inc[4200], incdir[4200], rt[4200], obj[4300], hdr[4300], app[4300], src[4300];
  snprintf(inc, sizeof inc, "-I%s/include", TFX_SOURCE_DIR);
  snprintf(incdir, sizeof incdir, "-I%s", dir);
  snprintf(rt, sizeof rt, "%s/libtfxrt.a", TFX_BINARY_DIR);
  snprintf(obj, sizeof obj, "%s/stories260k.o", dir);
  snprintf(hdr, sizeof hdr, "%s/stories260k.h", dir);
  free(stdout_of(
      (char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "-c", "-o", obj, "--emit-header", hdr, NULL}));
  char want[512] = "generated:";
  for (int i = 0; i < 16; i++) snprintf(want + strlen(want), sizeof want - strlen(want), " %d", ref_ids[i]);
  strcat(want, "\n");

  /* the header's sizes are the runtime's */
  char *text = tfx_test_read_file(hdr, NULL);
  assert_non_null(text);
  size_t na = 0, nk = 0;
  assert_int_equal(tfx_session_static_sizes(stories, &na, &nk), TFX_OK);
  assert_int_equal(header_value(text, "STORIES260K_ARENA_BYTES"), na);
  assert_int_equal(header_value(text, "STORIES260K_KV_BYTES"), nk);
  assert_int_equal(header_value(text, "STORIES260K_BUFFER_ALIGN"), TFX_BUFFER_ALIGN);
  const tfx_model_desc *d = tfx_model_descriptor(stories);
  assert_int_equal(header_value(text, "STORIES260K_OUTPUT_WIDTH"), d->output_width);
  assert_int_equal(header_value(text, "STORIES260K_INPUT_WIDTH"), d->input_width);
  assert_int_equal(header_value(text, "STORIES260K_MAX_SEQ"), d->max_seq);
  assert_int_equal(header_value(text, "STORIES260K_ACTIVATIONS_SIZE"), d->arena_bytes);
  free(text);

  /* the static session from the header's macros, with the runtime */
  snprintf(app, sizeof app, "%s/static_session", dir);
  snprintf(src, sizeof src, "%s/examples/embed/static_session.c", TFX_SOURCE_DIR);
  free(stdout_of((char *[]){"/usr/bin/cc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", SANITIZE_ARG inc, incdir,
                            "-o", app, src, obj, rt, "-lffi", "-lpthread", "-ldl", "-lm", NULL}));
  char *out = stdout_of((char *[]){app, NULL});
  assert_string_equal(out, want);
  free(out);
  /* and with the minimal runtime: libc and libm only */
  snprintf(rt, sizeof rt, "%s/libtfxrt_min.a", TFX_BINARY_DIR);
  snprintf(app, sizeof app, "%s/static_min", dir);
  free(stdout_of((char *[]){"/usr/bin/cc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", SANITIZE_ARG inc, incdir,
                            "-o", app, src, obj, rt, "-lm", NULL}));
  out = stdout_of((char *[]){app, NULL});
  assert_string_equal(out, want);
  free(out);

  /* a .so linked with the minimal runtime (--runtime minimal): the program
   * links the .so alone; the .so needs libc and libm only */
  char so[4300];
  snprintf(so, sizeof so, "%s/stories260k_min.so", dir);
  free(stdout_of((char *[]){TFXC_PATH, stories_tfx, "--weights", model_bin, "-o", so, "--runtime", "minimal", NULL}));
#ifndef TFX_SANITIZE_FLAGS
  out = stdout_of((char *[]){"/usr/bin/readelf", "-d", so, NULL});
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
    if (strstr(line, "(NEEDED)") && !strstr(line, "[libc.so.6]") && !strstr(line, "[libm.so.6]"))
      fail_msg("the .so with the minimal runtime needs more than libc and libm: %s", line);
  free(out);
#endif
  char rpath[4300];
  snprintf(rpath, sizeof rpath, "-Wl,-rpath,%s", dir);
  snprintf(app, sizeof app, "%s/static_so", dir);
  free(stdout_of((char *[]){"/usr/bin/cc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Werror", SANITIZE_ARG inc, incdir,
                            "-o", app, src, so, rpath, "-lm", NULL}));
  out = stdout_of((char *[]){app, NULL});
  assert_string_equal(out, want);
  free(out);

  /* the typed entry points alone: no runtime archive, no libffi, no
   * pthread, no libm; pedantic C11 */
  snprintf(app, sizeof app, "%s/no_runtime", dir);
  snprintf(src, sizeof src, "%s/examples/embed/no_runtime.c", TFX_SOURCE_DIR);
  free(stdout_of((char *[]){"/usr/bin/cc", "-std=c11", "-O1", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                            SANITIZE_ARG inc, incdir, "-o", app, src, obj, NULL}));
  out = stdout_of((char *[]){app, NULL});
  assert_string_equal(out, want);
  free(out);
  tfx_test_rmdir(dir);
  free(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_static_matches_a_normal_session_bitwise),
                                     cmocka_unit_test(test_static_path_allocates_nothing),
                                     cmocka_unit_test(test_static_model_errors),
                                     cmocka_unit_test(test_bad_buffers_are_errors),
                                     cmocka_unit_test(test_model_without_kv_cache),
                                     cmocka_unit_test(test_model_without_last_row_entry),
                                     cmocka_unit_test(test_minimal_runtime_archive),
                                     cmocka_unit_test(test_object_programs)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
