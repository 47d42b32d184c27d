/* runtime/session.c — sessions: everything a model's calls need, allocated
 * once at creation (arena, zeroed KV cache, output buffer, thread pool), the
 * position, reset and free. Nothing is allocated after creation. The KV cache
 * is an anonymous mapping: its pages are zero and cost nothing until a
 * position writes them, so a huge max_seq generating a few tokens touches
 * only the rows it uses. Static sessions are session_static.c's. */
#include <errno.h>
#include <limits.h>
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
  free(s->src);
  free(s);
}
