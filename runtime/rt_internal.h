/* runtime/rt_internal.h — the runtime's private types shared by its files:
 * the model (descriptor copy, libffi call interfaces, dlopen handle), the
 * session (arena, KV cache, output buffer, thread pool) and the internal
 * functions one file offers another. Never included outside runtime/. */
#ifndef TFX_RT_INTERNAL_H
#define TFX_RT_INTERNAL_H

#ifndef TFX_RT_NO_FFI
#include <ffi.h>
#endif
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tfx/tfx.h"

#define TFX_RT_MAX_ARGS 32            /* an entry takes at most this many arguments */
#define TFX_RT_MAX_THREADS 64         /* a session's thread pool is capped here */
#define TFX_RT_ALIGN TFX_BUFFER_ALIGN /* every buffer a session hands to generated code */
#define TFX_RT_MAX_ENTRIES 16         /* a descriptor has at most this many entry points */

/* The C types of an entry point whose arguments are abi.h's usual eight,
 * in TFX_ARG_* order (INPUT, NTOKENS, POS, OUTPUT, ARENA, KV, WEIGHTS,
 * EXEC; the batch entry ROWS in place of POS): every entry tfxc generates.
 * Called through them, without libffi. */
typedef void (*tfx_rt_entry_fn)(const void *input, int64_t n, int64_t pos, void *output, void *arena, void *kv,
                                const void *weights, tfx_exec *exec);
typedef void (*tfx_rt_batch_fn)(const void *input, int64_t n, const tfx_kv_row *rows, void *output, void *arena,
                                void *kv, const void *weights, tfx_exec *exec);

/* One entry point, ready for a direct call or ffi_call. */
typedef struct tfx_rt_entry {
  const tfx_entry_desc *desc;
  int direct;         /* 1: the usual arguments, called through tfx_rt_entry_fn / tfx_rt_batch_fn; 0: libffi */
#ifndef TFX_RT_NO_FFI /* a runtime built without libffi (TFX_RUNTIME_FFI=OFF) has only direct entries */
  ffi_cif cif;
  ffi_type *types[TFX_RT_MAX_ARGS];
#endif
  int is_decode; /* named "decode" */
  int last_row;  /* TFX_ENTRY_LAST_ROW: writes the last output row only */
  int batch;     /* TFX_ENTRY_BATCH: rows of several sequences over a block pool (batch.c) */
} tfx_rt_entry;

struct tfx_model {
  tfx_model_desc desc; /* a copy; desc.weights is the effective weights blob */
  const tfx_model_desc *orig;
  tfx_rt_entry *entries;    /* desc.n_entries */
  int32_t max_entry_tokens; /* the largest max_tokens over all entries */
  void *dl_handle;          /* dlopen handle, or NULL */
  void (*release)(void *);
  void *release_arg;
  int is_static;             /* tfx_model_from_descriptor_static: the caller's storage, nothing to free */
  int32_t weights_pages;     /* enum tfx_weights_pages: where desc.weights is (weights_pages.c) */
  void *weights_copy;        /* the weights' copy in 2 MiB pages, or NULL */
  size_t weights_copy_bytes; /* its mapping's length */
};

/* weights_pages.c: blobs of at least this size go to 2 MiB pages unless
 * TFX_HUGE_PAGES says otherwise */
#define TFX_RT_HUGE_MIN_BYTES ((uint64_t)16 << 20)
/* Puts m->desc.weights in 2 MiB pages where the system has them: a copy
 * when from_file (the blob is a loaded file's: a .so, or a program linked
 * with the model), else the caller's memory collapsed where it is; sets
 * m->weights_pages. Never fails: the weights stay where they were. */
void tfx_rt_place_weights(tfx_model *m, int from_file);
/* Unmaps the copy tfx_rt_place_weights made, if any. */
void tfx_rt_free_weights_copy(tfx_model *m);

typedef struct tfx_rt_pool tfx_rt_pool;

struct tfx_session {
  const tfx_model *model;
  int32_t pos;
  int32_t threads;
  void *arena;
  void *kv;
  size_t kv_map;    /* bytes of kv's anonymous mapping (0: kv is from posix_memalign) */
  float *out;       /* out_rows * output_width floats: the rows of a call whose caller wants one */
  int64_t out_rows; /* grown by tfx_rt_session_out to the largest call that needed it */
  tfx_rt_pool *pool;
  tfx_exec exec;
  atomic_flag busy; /* set while a forward call runs (a second thread is refused) */
  int is_static;    /* tfx_session_create_static: every buffer is the caller's, one thread, no pool */
  int32_t *src;     /* a model with a source: its inputs padded to N rows, then the row mask (n_inputs * N) */
  char error[256];  /* the detail of the last failed call, "" after a success */
};

/* The inputs a caller passes: the descriptor's input table without the
 * hidden row mask of the sources (the last entry, TFX_INPUT_ROWS_MASK); 1
 * for a model of one input. */
static inline int32_t tfx_rt_caller_inputs(const tfx_model_desc *d) {
  if (d->n_inputs < 2) return 1;
  return d->n_inputs - (d->inputs[d->n_inputs - 1].kind == TFX_INPUT_ROWS_MASK ? 1 : 0);
}

/* The rows of a model's sources (the row mask's rows; 0: no source). */
static inline int32_t tfx_rt_source_rows(const tfx_model_desc *d) {
  if (d->n_inputs < 2 || d->inputs[d->n_inputs - 1].kind != TFX_INPUT_ROWS_MASK) return 0;
  return d->inputs[d->n_inputs - 1].rows;
}

/* Calls on one session (or batch) must not overlap: the busy flag refuses
 * a second one (tfx_rt_enter returns -1); a call that enters clears the
 * detail of the last failure. */
static inline int tfx_rt_enter(atomic_flag *busy, char *error) {
  if (atomic_flag_test_and_set_explicit(busy, memory_order_acquire)) return -1;
  error[0] = 0;
  return 0;
}
static inline int tfx_rt_leave(atomic_flag *busy, int rc) {
  atomic_flag_clear_explicit(busy, memory_order_release);
  return rc;
}

/* errors.c: formats a message into errbuf (when non-NULL and errlen > 0) and
 * returns code. */
int tfx_rt_error(char *errbuf, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* validate.c: checks a descriptor (magic, ABI version, fields, entries);
 * weights is the effective weights blob. Returns TFX_OK or a status with the
 * detail in errbuf. */
int tfx_rt_validate_desc(const tfx_model_desc *desc, const void *weights, char *errbuf, size_t errlen);

/* elf_check.c: opens path without blocking and checks that it is a regular
 * file (a FIFO, a directory or a device is TFX_ERR_OPEN); *fd_out is the
 * descriptor to close, *size_out the file's size. */
int tfx_rt_open_model_file(const char *path, int *fd_out, uint64_t *size_out, char *errbuf, size_t errlen);
/* Checks the ELF headers and the dynamic loader's tables of an open file
 * before dlopen: TFX_ERR_NOT_A_MODEL for a truncated or corrupted one. */
int tfx_rt_check_elf(int fd, uint64_t size, const char *path, char *errbuf, size_t errlen);
/* Checks the seal tfxc appends to a model it links (tfx/seal.h): run before
 * tfx_rt_check_elf; TFX_ERR_NOT_A_MODEL when it is missing or differs. */
int tfx_rt_check_seal(int fd, uint64_t size, const char *path, char *errbuf, size_t errlen);
/* Checks that the descriptor a dlopen'ed library exports, and every pointer
 * in it, lies inside that library's segments (functions in code). */
int tfx_rt_check_loaded(void *handle, const tfx_model_desc *d, const char *path, char *errbuf, size_t errlen);
/* validate.c: recomputes the descriptor's checksum (when one is recorded)
 * and, with with_weights, the weights' (tfx/checksum.h; both must then be
 * recorded) and compares them with the recorded ones (TFX_ERR_CHECKSUM). */
int tfx_rt_verify_checksums(const tfx_model_desc *d, const void *weights, int with_weights, char *errbuf,
                            size_t errlen);

/* cpu.c: the CPU features (TFX_CPU_*) this CPU has and its OS enables,
 * less those TFX_CPU_MASK names (TFX_ERR_INVALID_ARGUMENT for an unknown
 * name); and the choice among d and its variants (checked by
 * tfx_rt_check_variants) of the one with the most features this CPU has
 * (TFX_ERR_CPU naming the missing ones when there is none). */
int tfx_rt_cpu_features(uint64_t *out, char *errbuf, size_t errlen);
int tfx_rt_choose_variant(const tfx_model_desc *d, const tfx_model_desc **out, char *errbuf, size_t errlen);
/* validate.c: checks d and every variant it lists (at most
 * TFX_RT_MAX_VARIANTS): with handle, their pointers inside the library
 * (tfx_rt_check_loaded); each descriptor (tfx_rt_validate_desc); the
 * variants' shape, name and weights against d's; with checksums, each
 * descriptor's checksum and, with with_weights, d's weights checksum. */
#define TFX_RT_MAX_VARIANTS 8
int tfx_rt_check_variants(const tfx_model_desc *d, const void *weights, void *handle, const char *path, int checksums,
                          int with_weights, char *errbuf, size_t errlen);

/* ffi_call.c: prepares every entry of m->desc: a direct call when its
 * arguments are the usual eight (tfx_rt_entry_fn), else a libffi call
 * interface. */
int tfx_rt_prepare_entries(tfx_model *m, char *errbuf, size_t errlen);
/* session.c: the session's output scratch, grown to hold `rows` output rows
 * (NULL when out of memory, or more than the one row of a static session).
 * Only the calling thread of a forward call uses it. */
float *tfx_rt_session_out(tfx_session *s, int64_t rows);

/* Calls one entry with the session's buffers; input and output as given. */
void tfx_rt_call_entry(tfx_session *s, const tfx_rt_entry *e, const void *input, int64_t n, int64_t pos, void *output);
/* The same with the KV argument and (batch entry) the rows given. */
void tfx_rt_call_entry_kv(tfx_session *s, const tfx_rt_entry *e, const void *input, int64_t n, int64_t pos,
                          const tfx_kv_row *rows, void *kv, void *output);
/* session.c: tfx_session_create, with or without the session's KV cache
 * (the batch's sessions have none: their KV is the block pool). */
int tfx_rt_session_new(const tfx_model *model, const tfx_session_options *opts, int with_kv, tfx_session **out);
/* session.c: the session's KV-cache allocation (an anonymous mapping, zero
 * pages until written; *map_bytes its length, 0 for a posix_memalign block)
 * and its release. */
void *tfx_rt_alloc_kv(uint64_t bytes, size_t *map_bytes);
void tfx_rt_free_kv(void *kv, size_t map_bytes);

/* session.c: the tfx_exec.parallel_for of a static session: the whole
 * range in one call on the calling thread. */
void tfx_rt_serial_for(tfx_exec *self, tfx_kernel_fn fn, const void *args, int64_t n_items);

/* threadpool.c: a persistent pool of threads - 1 workers (the caller is the
 * other thread). Returns NULL on failure. */
tfx_rt_pool *tfx_rt_pool_create(int32_t threads);
void tfx_rt_pool_destroy(tfx_rt_pool *pool);
/* The tfx_exec.parallel_for of a session whose exec->impl is a pool. */
void tfx_rt_pool_parallel_for(tfx_exec *self, tfx_kernel_fn fn, const void *args, int64_t n_items);

#endif
