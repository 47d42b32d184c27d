/* runtime/session_static.c — static sessions (tfx_session_create_static):
 * the session structure in the caller's tfx_session_storage, the arena (the
 * model's activations, then one output row) and the KV cache all the
 * caller's; they run on the calling thread alone (tfx_rt_serial_for) and
 * allocate nothing. Also what every session has that allocates nothing:
 * the position, the thread count, reset. In the minimal runtime
 * (TFX_RT_MINIMAL: libtfxrt_min.a, no malloc, pthreads, libffi or dlopen)
 * this file is all there is of sessions (tfx_session_create is not in it: a
 * program calling it does not link): freeing one clears it, and a session's
 * output rows never grow. */
#include <stdalign.h>
#include <string.h>

#include "rt_internal.h"

/* The caller's storage holds the session structure. */
_Static_assert(sizeof(struct tfx_session) <= sizeof(tfx_session_storage), "TFX_SESSION_STORAGE_BYTES is too small");
_Static_assert(alignof(struct tfx_session) <= alignof(tfx_session_storage), "tfx_session_storage is under-aligned");

static uint64_t round_up(uint64_t v) { return (v + TFX_BUFFER_ALIGN - 1) & ~(uint64_t)(TFX_BUFFER_ALIGN - 1); }

int tfx_session_static_sizes(const tfx_model *model, size_t *arena_bytes, size_t *kv_bytes) {
  if (!model) return TFX_ERR_INVALID_ARGUMENT;
  const tfx_model_desc *d = &model->desc;
  /* validated at open: arena and KV sizes are far below SIZE_MAX */
  uint64_t arena = round_up(d->arena_bytes) + round_up((uint64_t)d->output_width * sizeof(float));
  int32_t src_rows = tfx_rt_source_rows(d);
  if (src_rows > 0) arena += round_up(TFX_SOURCE_BUFFER_BYTES(d->n_inputs, src_rows));
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
  /* a model with a source: its padded inputs after the output row (zeroed:
   * the previous call's source starts as none) */
  int32_t src_rows = tfx_rt_source_rows(d);
  if (src_rows > 0) {
    s->src = (int32_t *)(void *)((char *)s->out + round_up((uint64_t)d->output_width * sizeof(float)));
    memset(s->src, 0, (size_t)TFX_SOURCE_BUFFER_BYTES(d->n_inputs, src_rows));
  }
  s->exec.parallel_for = tfx_rt_serial_for;
  s->exec.impl = NULL;
  *out = s;
  return TFX_OK;
}

void tfx_rt_serial_for(tfx_exec *self, tfx_kernel_fn fn, const void *args, int64_t n_items) {
  (void)self;
  if (n_items > 0) fn(args, 0, n_items);
}

int32_t tfx_session_position(const tfx_session *s) { return s ? s->pos : 0; }

int32_t tfx_session_threads(const tfx_session *s) { return s ? s->threads : 0; }

void tfx_session_reset(tfx_session *s) {
  if (!s) return;
  s->pos = 0;
  /* a new sequence: the source cache (tfx/abi.h) is computed again by the next call */
  if (s->kv && s->model && s->model->desc.src_cache_bytes > 0) *(int32_t *)s->kv = 0;
}

#ifdef TFX_RT_MINIMAL
float *tfx_rt_session_out(tfx_session *s, int64_t rows) { return rows <= s->out_rows ? s->out : NULL; }

void tfx_session_free(tfx_session *s) {
  if (s) memset(s, 0, sizeof *s); /* every byte is the caller's */
}
#endif
