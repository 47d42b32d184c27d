/* runtime/session.c — sessions: everything a model's calls need, allocated
 * once at creation (arena, zeroed KV cache, output buffer, thread pool), the
 * position, reset and free. Nothing is allocated after creation. The KV cache
 * is an anonymous mapping: its pages are zero and cost nothing until a
 * position writes them, so a huge max_seq generating a few tokens touches
 * only the rows it uses. Static sessions (tfx_session_create_static) take
 * all of it from the caller instead: the session structure in a
 * tfx_session_storage, the arena (the model's activations, then one output
 * row) and the KV cache; they run on the calling thread alone and allocate
 * nothing. */
#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rt_internal.h"

/* 64-byte aligned, at least 64 bytes so generated code always gets a valid
 * pointer. */
static void *alloc_aligned(uint64_t bytes, int zero) {
  size_t size = (size_t)((bytes + TFX_RT_ALIGN - 1) & ~(uint64_t)(TFX_RT_ALIGN - 1));
  if (size == 0) size = TFX_RT_ALIGN;
  void *p = NULL;
  if (posix_memalign(&p, TFX_RT_ALIGN, size) != 0) return NULL;
  if (zero) memset(p, 0, size);
  return p;
}

/* The zeroed KV cache: an anonymous private mapping (page-aligned, zero
 * pages until written); *map_bytes is its length. Where mmap fails, a
 * zeroed posix_memalign block (*map_bytes = 0). */
void *tfx_rt_alloc_kv(uint64_t bytes, size_t *map_bytes) {
  *map_bytes = 0;
  long page = sysconf(_SC_PAGESIZE);
  if (page < TFX_RT_ALIGN) page = TFX_RT_ALIGN;
  if (bytes > 0 && bytes <= SIZE_MAX - (size_t)page) {
    size_t size = (size_t)((bytes + (uint64_t)page - 1) & ~(uint64_t)(page - 1));
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      *map_bytes = size;
      return p;
    }
  }
  return alloc_aligned(bytes, 1);
}

void tfx_rt_free_kv(void *kv, size_t map_bytes) {
  if (map_bytes)
    munmap(kv, map_bytes);
  else
    free(kv);
}

/* TFX_NUM_THREADS when it is a positive integer, else the model's schedule
 * (threads = N), else the online CPUs. */
static int32_t default_threads(const tfx_model_desc *d) {
  const char *env = getenv("TFX_NUM_THREADS");
  if (env && *env) {
    char *end = NULL;
    errno = 0;
    long v = strtol(env, &end, 10);
    if (errno == 0 && end != env && *end == '\0' && v > 0)
      return v > TFX_RT_MAX_THREADS ? TFX_RT_MAX_THREADS : (int32_t)v;
  }
  if (d->threads > 0) return d->threads > TFX_RT_MAX_THREADS ? TFX_RT_MAX_THREADS : d->threads;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n > TFX_RT_MAX_THREADS ? TFX_RT_MAX_THREADS : (int32_t)n;
}

/* The caller's storage holds the session structure. */
_Static_assert(sizeof(struct tfx_session) <= sizeof(tfx_session_storage), "TFX_SESSION_STORAGE_BYTES is too small");
_Static_assert(alignof(struct tfx_session) <= alignof(tfx_session_storage), "tfx_session_storage is under-aligned");

static uint64_t round_up(uint64_t v) { return (v + TFX_BUFFER_ALIGN - 1) & ~(uint64_t)(TFX_BUFFER_ALIGN - 1); }

int tfx_session_static_sizes(const tfx_model *model, size_t *arena_bytes, size_t *kv_bytes) {
  if (!model) return TFX_ERR_INVALID_ARGUMENT;
  const tfx_model_desc *d = &model->desc;
  /* validated at open: arena and KV sizes are far below SIZE_MAX */
  uint64_t arena = round_up(d->arena_bytes) + round_up((uint64_t)d->output_width * sizeof(float));
  if (arena_bytes) *arena_bytes = (size_t)arena;
  if (kv_bytes) *kv_bytes = (size_t)d->kv_bytes;
  return TFX_OK;
}

/* Checks one caller buffer: present, aligned, large enough. */
static int check_buffer(const char *what, const void *p, size_t have, size_t need, const char *macro, char *errbuf,
                        size_t errlen) {
  if (need == 0) return TFX_OK;
  if (!p)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT,
                        "tfx_session_create_static: the %s is NULL (the model needs %zu bytes, <NAME>_%s)", what, need,
                        macro);
  if ((uintptr_t)p % TFX_BUFFER_ALIGN != 0)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT,
                        "tfx_session_create_static: the %s at %p is not %d-byte aligned (TFX_BUFFER_ALIGN)", what, p,
                        TFX_BUFFER_ALIGN);
  if (have < need)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT,
                        "tfx_session_create_static: the %s has %zu bytes; the model needs %zu (<NAME>_%s)", what, have,
                        need, macro);
  return TFX_OK;
}

int tfx_session_create_static(const tfx_model *model, void *arena, size_t arena_bytes, void *kv, size_t kv_bytes,
                              tfx_session_storage *storage, tfx_session **out, char *errbuf, size_t errlen) {
  if (errbuf && errlen > 0) errbuf[0] = '\0';
  if (out) *out = NULL;
  if (!model || !storage || !out)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT,
                        "tfx_session_create_static: NULL model, storage or output pointer");
  size_t need_arena = 0, need_kv = 0;
  tfx_session_static_sizes(model, &need_arena, &need_kv);
  int rc = check_buffer("arena", arena, arena_bytes, need_arena, "ARENA_BYTES", errbuf, errlen);
  if (rc == TFX_OK) rc = check_buffer("KV cache", kv, kv_bytes, need_kv, "KV_BYTES", errbuf, errlen);
  if (rc != TFX_OK) return rc;
  const tfx_model_desc *d = &model->desc;
  tfx_session *s = (tfx_session *)(void *)storage;
  memset(s, 0, sizeof *s);
  s->model = model;
  s->threads = 1;
  s->is_static = 1;
  atomic_flag_clear(&s->busy);
  s->arena = arena;
  /* generated code gets a valid pointer even where it has no KV cache */
  s->kv = need_kv ? kv : arena;
  if (need_kv) memset(kv, 0, need_kv); /* abi.h: the KV cache starts zeroed */
  s->out = (float *)(void *)((char *)arena + round_up(d->arena_bytes));
  s->out_rows = 1;
  s->exec.parallel_for = tfx_rt_serial_for;
  s->exec.impl = NULL;
  *out = s;
  return TFX_OK;
}

void tfx_rt_serial_for(tfx_exec *self, tfx_kernel_fn fn, const void *args, int64_t n_items) {
  (void)self;
  if (n_items > 0) fn(args, 0, n_items);
}

int tfx_session_create(const tfx_model *model, const tfx_session_options *opts, tfx_session **out) {
  return tfx_rt_session_new(model, opts, 1, out);
}

int tfx_rt_session_new(const tfx_model *model, const tfx_session_options *opts, int with_kv, tfx_session **out) {
  if (out) *out = NULL;
  if (!model || !out) return TFX_ERR_INVALID_ARGUMENT;
  if (opts && opts->threads < 0) return TFX_ERR_INVALID_ARGUMENT;
  int32_t threads = (opts && opts->threads > 0) ? opts->threads : default_threads(&model->desc);
  if (threads > TFX_RT_MAX_THREADS) threads = TFX_RT_MAX_THREADS;

  const tfx_model_desc *d = &model->desc;
  tfx_session *s = calloc(1, sizeof *s);
  if (!s) return TFX_ERR_OUT_OF_MEMORY;
  s->model = model;
  s->threads = threads;
  atomic_flag_clear(&s->busy);
  s->arena = alloc_aligned(d->arena_bytes, 0);
  if (with_kv) s->kv = tfx_rt_alloc_kv(d->kv_bytes, &s->kv_map);
  if (!s->arena || (with_kv && !s->kv) || !tfx_rt_session_out(s, 1)) {
    tfx_session_free(s);
    return TFX_ERR_OUT_OF_MEMORY;
  }
  s->pool = tfx_rt_pool_create(threads);
  if (!s->pool) {
    tfx_session_free(s);
    return TFX_ERR_INTERNAL;
  }
  s->exec.parallel_for = tfx_rt_pool_parallel_for;
  s->exec.impl = s->pool;
  *out = s;
  return TFX_OK;
}

float *tfx_rt_session_out(tfx_session *s, int64_t rows) {
  if (rows <= s->out_rows) return s->out;
  if (s->is_static) return NULL; /* its one row is the caller's memory */
  uint64_t width = (uint64_t)s->model->desc.output_width;
  if (rows < 1 || width > UINT64_MAX / sizeof(float) / (uint64_t)rows) return NULL;
  float *p = alloc_aligned((uint64_t)rows * width * sizeof(float), 0);
  if (!p) return NULL;
  free(s->out);
  s->out = p;
  s->out_rows = rows;
  return p;
}

int32_t tfx_session_position(const tfx_session *s) { return s ? s->pos : 0; }

int32_t tfx_session_threads(const tfx_session *s) { return s ? s->threads : 0; }

void tfx_session_reset(tfx_session *s) {
  if (s) s->pos = 0;
}

void tfx_session_free(tfx_session *s) {
  if (!s) return;
  if (s->is_static) { /* every byte is the caller's */
    memset(s, 0, sizeof *s);
    return;
  }
  tfx_rt_pool_destroy(s->pool);
  free(s->arena);
  tfx_rt_free_kv(s->kv, s->kv_map);
  free(s->out);
  free(s);
}
