/* tfx/tfx.h — the runtime API for models compiled by tfxc: open a model,
 * create sessions (arena and KV cache allocated once), run forward passes,
 * sample tokens. Every function reports failure as a negative tfx_status and
 * never aborts or exits; the runtime has no global mutable state. */
#ifndef TFX_TFX_H
#define TFX_TFX_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tfx_status {
  TFX_OK = 0,
  TFX_ERR_INVALID_ARGUMENT = -1, /* NULL pointer, n <= 0, bad option */
  TFX_ERR_OUT_OF_MEMORY = -2,
  TFX_ERR_OPEN = -3,         /* the model file could not be loaded */
  TFX_ERR_NOT_A_MODEL = -4,  /* no descriptor, or a bad magic */
  TFX_ERR_ABI_VERSION = -5,  /* compiled for another runtime ABI */
  TFX_ERR_TOKEN_RANGE = -6,  /* a token id outside [0, vocab) */
  TFX_ERR_CONTEXT_FULL = -7, /* position + n would exceed max_seq */
  TFX_ERR_WRONG_INPUT = -8,  /* tokens given to a model taking f32 input or vice versa */
  TFX_ERR_INTERNAL = -9,     /* e.g. libffi or thread creation failed */
  TFX_ERR_COMPILE = -10,     /* (JIT API) the model did not compile; diagnostics were printed */
  TFX_ERR_CHECKSUM = -11,    /* the descriptor (or with TFX_OPEN_VERIFY the weights) differs from its checksum */
  TFX_ERR_CPU = -12,         /* the model's code needs CPU features this CPU (or its OS) lacks; see TFX_CPU_MASK */
  TFX_ERR_KV_FULL = -13,     /* (batch) no free block left in the KV block pool for this sequence */
  TFX_ERR_NO_BATCH = -14     /* (batch) the model has no batch entry (see tfx_batch_create) */
} tfx_status;

typedef struct tfx_model tfx_model;
typedef struct tfx_session tfx_session;

/* A short English message for a status code; never NULL. */
const char *tfx_error_message(int code);

/* Opens a model compiled to a shared library (dlopen, descriptor and ABI
 * checks, and the CPU check: of the model's code variants, the one with the
 * most features this CPU has is used; a model none of whose variants this
 * CPU runs is TFX_ERR_CPU, as for tfx_model_from_descriptor). */
int tfx_model_open(const char *path, tfx_model **out);
/* The same, writing the detail of a failure (dlerror text, the check that
 * failed) into errbuf when it is non-NULL. */
int tfx_model_open_ex(const char *path, tfx_model **out, char *errbuf, size_t errlen);
/* Flags of tfx_model_open_flags. */
enum {
  /* Also recompute the checksum of every weight byte the compiler recorded
   * in the descriptor (tfx/checksum.h) and refuse the model with
   * TFX_ERR_CHECKSUM when it differs. Reads the whole weights blob once
   * (several GB/s). (The descriptor's own checksum, a few hundred bytes, is
   * checked on every open.) */
  TFX_OPEN_VERIFY = 1,
  /* Keep the weights where the dynamic loader mapped them: no copy, opening
   * reads no weights, and processes that open the same file share its page
   * cache. Without it, a model whose weights are 16 MiB or more is copied
   * once at open into memory advised to 2 MiB pages (Linux transparent huge
   * pages), which decodes large models 10-20% faster (TLB misses); see
   * tfx_model_info.weights_pages and TFX_HUGE_PAGES in docs/embedding.md. */
  TFX_OPEN_MAP_WEIGHTS = 2
};
/* tfx_model_open_ex with flags (TFX_OPEN_*; unknown bits are
 * TFX_ERR_INVALID_ARGUMENT). Every open, with or without flags, opens exactly
 * `path` (never a library of that name on the library path), refuses what is
 * not a regular file (TFX_ERR_OPEN: "is a directory", a FIFO, a device) and
 * checks the ELF headers and the loader's tables against the file before
 * dlopen, and the descriptor's pointers against the loaded library after it
 * (TFX_ERR_NOT_A_MODEL for a truncated or corrupted file). */
int tfx_model_open_flags(const char *path, unsigned flags, tfx_model **out, char *errbuf, size_t errlen);
/* Wraps a descriptor already in this process (a linked model.o/model.so, or a
 * JIT-compiled module). weights overrides desc->weights when non-NULL;
 * release(release_arg) runs when the model is closed (may be NULL). */
int tfx_model_from_descriptor(const tfx_model_desc *desc, const void *weights, void (*release)(void *),
                              void *release_arg, tfx_model **out);
/* The same in the caller's memory, for programs that allocate nothing
 * (with tfx_session_create_static; libtfxrt_min.a, the minimal runtime,
 * has only these): the model structure and its entry table in *storage,
 * which must outlive the model. The weights are desc->weights (a linked
 * `tfxc -c` object's). The descriptor is checked as tfx_model_open checks
 * one (TFX_ERR_NOT_A_MODEL, TFX_ERR_ABI_VERSION, TFX_ERR_CPU, ... with the
 * detail in errbuf when non-NULL); tfx_model_close clears the storage. */
#define TFX_MODEL_STORAGE_BYTES 8192 /* sizeof(tfx_model_storage) */
typedef union tfx_model_storage {
  unsigned char bytes[TFX_MODEL_STORAGE_BYTES];
  void *align_ptr;
  uint64_t align_u64;
  double align_double;
} tfx_model_storage;
int tfx_model_from_descriptor_static(const tfx_model_desc *desc, tfx_model_storage *storage, tfx_model **out,
                                     char *errbuf, size_t errlen);
void tfx_model_close(tfx_model *model);
/* The descriptor of the code variant the open chose. */
const tfx_model_desc *tfx_model_descriptor(const tfx_model *model);

/* ---- what a model is, through accessors (runtime/info.c) ----
 * For bindings (python/tfx) and tools that should not copy the descriptor's
 * layout. Added in ABI 4 without changing any structure the descriptor
 * uses: a binding only needs these functions. */

/* The model's name ("stories260k"); "" for NULL. */
const char *tfx_model_name(const tfx_model *model);

/* What tfx_model_info fills (like `struct stat` and stat(), the structure
 * has the function's name). Set struct_size to sizeof(struct
 * tfx_model_info) before the call: fields past it are not written, so a
 * newer runtime may add fields at the end. */
struct tfx_model_info {
  uint32_t struct_size;   /* in: the caller's sizeof(struct tfx_model_info) */
  uint32_t abi_version;   /* the descriptor's TFX_ABI_VERSION */
  int32_t input_kind;     /* enum tfx_input_kind */
  int32_t input_width;    /* 1 for tokens, D for f32[T, D] */
  int32_t output_width;   /* floats per output row (the vocabulary for a language model) */
  int32_t vocab;          /* token ids are in [0, vocab); 0 without tokens */
  int32_t max_seq;        /* a session's capacity in positions */
  int32_t has_kv_cache;   /* 1: calls append to a KV cache */
  int32_t threads;        /* schedule { threads = N }, 0 = automatic */
  int32_t has_batch;      /* 1: tfx_batch_create accepts the model */
  uint64_t arena_bytes;   /* scratch of one session */
  uint64_t kv_bytes;      /* the KV cache of one session */
  uint64_t weights_bytes; /* the weights blob */
  uint32_t cpu_arch;      /* enum tfx_cpu_arch */
  uint32_t reserved;      /* 0 */
  uint64_t cpu_features;  /* TFX_CPU_* bits the code needs (x86-64) */
  /* since ABI 5 */
  int32_t bos_id, eos_id, pad_id; /* the model's tokens { bos, eos, pad }; -1 when not given */
  uint32_t reserved2;             /* 0 */
  uint64_t tokenizer_bytes;       /* the embedded tokenizer's size (tfx_model_tokenizer); 0: none */
  /* since ABI 6 */
  int32_t n_inputs;   /* the forward's inputs (1, or 2..8: tfx_model_input, tfx_forward_inputs) */
  uint32_t reserved3; /* 0 */
  /* since ABI 7 (a runtime older than the field leaves it as the caller set it) */
  int32_t weights_pages; /* enum tfx_weights_pages: where the weights are in memory */
  uint32_t reserved4;    /* 0 */
};
/* Where a model's weights are in memory (tfx_model_info.weights_pages). The
 * runtime moves a blob of 16 MiB or more to 2 MiB pages when the system has
 * transparent huge pages: TFX_HUGE_PAGES=0 in the environment never does,
 * TFX_HUGE_PAGES=1 does for any size. Whether the kernel found huge pages
 * for the memory, /proc/PID/smaps says (AnonHugePages). */
enum tfx_weights_pages {
  TFX_WEIGHTS_IN_PLACE = 0,     /* where they were loaded: the file's mapping, or the caller's memory */
  TFX_WEIGHTS_HUGE_COPY = 1,    /* copied at open into memory advised to 2 MiB pages (MADV_HUGEPAGE) */
  TFX_WEIGHTS_HUGE_IN_PLACE = 2 /* the caller's memory (a JIT model's) collapsed into 2 MiB pages (MADV_COLLAPSE) */
};
/* Fills *info (up to info->struct_size bytes); TFX_OK, or
 * TFX_ERR_INVALID_ARGUMENT for NULL or a struct_size below 8. */
int tfx_model_info(const tfx_model *model, struct tfx_model_info *info);
/* Input i (0 .. n_inputs - 1) of the model's forward: its name, kind (enum
 * tfx_input_kind: TOKENS or I32 take int32 values, F32 floats), values per
 * row, and for ids the range [0, vocab) they must be in (0: any value, a key
 * mask). A model of one input reports it as input 0 (named "input").
 * TFX_OK, or TFX_ERR_INVALID_ARGUMENT for NULL or i out of range. */
typedef struct tfx_input_info {
  const char *name; /* owned by the model */
  int32_t kind;     /* enum tfx_input_kind */
  int32_t width;    /* values per row */
  int32_t vocab;    /* ids must be in [0, vocab); 0: not checked */
  int32_t rows;     /* TFX_INPUT_ROWS_T: one row per token of the call; N > 0: a source of 1..N rows (tfx_input.rows) */
} tfx_input_info;
int tfx_model_input(const tfx_model *model, int32_t i, tfx_input_info *info);
/* The CPU features the model's code needs as LLVM names separated by
 * spaces ("avx avx2 fma ..."; "" when none beyond the architecture's
 * baseline), written like snprintf: returns the length it needs. */
int tfx_model_cpu_features(const tfx_model *model, char *buf, size_t len);

typedef struct tfx_session_options {
  int32_t threads; /* 0: TFX_NUM_THREADS, else the model's schedule { threads = N }, else the number of cores */
} tfx_session_options;

int tfx_session_create(const tfx_model *model, const tfx_session_options *opts, tfx_session **out);
/* Runs n tokens at the session's position and appends them to its KV cache
 * (n > 1 prefill, n == 1 decode). logits receives the [n, output_width] rows,
 * or only the last row when last_only is nonzero; it may be NULL. With
 * last_only the model's last-row entry runs when it has one: the nodes after
 * the last attention (final norm, classifier, ...) compute the last token
 * alone, which is what a generation loop needs. */
int tfx_forward_ex(tfx_session *s, const int32_t *tokens, int32_t n, float *logits, int last_only);
/* tfx_forward_ex with last_only = 1: logits is [output_width]. */
int tfx_forward(tfx_session *s, const int32_t *tokens, int32_t n, float *logits);
/* A forward with several inputs (tfx_model_input lists them): one tfx_input
 * per input of the model, each found by its name (or, with name NULL, by its
 * position in the array), whose data holds n rows of the input's width:
 * int32 for token and I32 inputs, float for F32 ones. Every extra input
 * comes with the call's rows (decode: one row each). out and last_only as
 * tfx_forward_ex. TFX_ERR_WRONG_INPUT names a missing, unknown or repeated
 * input or a wrong count; TFX_ERR_TOKEN_RANGE an id outside its input's
 * vocabulary (with the input's name); TFX_ERR_INVALID_ARGUMENT a NULL
 * pointer. tfx_forward and tfx_forward_f32 on such a model are
 * TFX_ERR_WRONG_INPUT naming the inputs they cannot pass. Works for a model
 * of one input too.
 * A source (tfx_input_info.rows = N > 0: `src : i32[N]` in the forward, the
 * source sentence of an encoder-decoder) has its own rows: rows = S, 1..N,
 * the same S for every source of the call, given in full with every call
 * (decode and chunked calls too); the runtime pads it to N rows and hides
 * the rows past S from attention. A source with rows 0, or more than N, is
 * TFX_ERR_INVALID_ARGUMENT. A model with a source needs a session of
 * tfx_session_create (not a static one).
 * The source cache (ABI 7): the session keeps what the source alone gives
 * (the encoder's output, every cross-attention's K and V) and a call whose
 * sources (S and the S rows of each) equal the previous call's skips
 * computing them: the runtime compares them (S values per source, memcmp)
 * with the previous call's, and a different source is recomputed, never
 * read stale; tfx_session_reset forgets the cache. Pass the same source
 * with every call of a sequence; a new source without a reset is allowed
 * and computed afresh (the decoder's KV cache still holds the rows of the
 * earlier calls, as the reference interpreter computes it). */
typedef struct tfx_input {
  const char *name; /* the forward's name of the input ("token_type_ids"), or NULL: by position */
  const void *data; /* [n, width] int32 or float values ([rows] for a source) */
  int32_t rows;     /* a source's rows S (1..N); 0 for the other inputs (n, the call's rows) */
} tfx_input;
int tfx_forward_inputs(tfx_session *s, const tfx_input *inputs, int32_t n_inputs, int32_t n, float *out, int last_only);
/* For models whose input is f32[T, D]: x is [n, input_width], out [n, output_width]. */
int tfx_forward_f32(tfx_session *s, const float *x, int32_t n, float *out);
/* tfx_forward_f32 with the choice of tfx_forward_ex: with last_only, out is
 * [output_width] (the last row); out may be NULL. */
int tfx_forward_f32_ex(tfx_session *s, const float *x, int32_t n, float *out, int last_only);
int32_t tfx_session_position(const tfx_session *s);
/* The threads of the session's pool (the calling thread included). */
int32_t tfx_session_threads(const tfx_session *s);
/* The detail of the last failed call on this session (which token, which
 * limit), or "" after a successful call; never NULL. Calls on one session
 * must not overlap: a call made while another thread's call on the same
 * session runs is refused with TFX_ERR_INVALID_ARGUMENT. */
const char *tfx_session_last_error(const tfx_session *s);
/* Starts a new sequence: position 0 (the KV cache is overwritten as it is
 * filled again) and, for a model with a source, the source cache forgotten. */
void tfx_session_reset(tfx_session *s);
/* Frees a session (a static one: releases nothing, the memory is the
 * caller's, which may reuse it afterwards). */
void tfx_session_free(tfx_session *s);

/* ---- static sessions: the caller provides every buffer ----
 * For programs that allocate nothing at run time (small devices, static
 * memory budgets), as IREE's static library loader and Glow's bundles do:
 * the application owns the memory, sized by macros of the model's generated
 * header (tfxc --emit-header), and the runtime only checks it:
 *
 *   static tfx_session_storage storage;
 *   static _Alignas(TFX_BUFFER_ALIGN) unsigned char arena[STORIES260K_ARENA_BYTES];
 *   static _Alignas(TFX_BUFFER_ALIGN) unsigned char kv[STORIES260K_KV_BYTES];
 *   tfx_session_create_static(m, arena, sizeof arena, kv, sizeof kv, &storage, &s, err, sizeof err);
 *
 * A static session runs on the calling thread alone (no thread pool, no
 * pthreads: tfx_session_threads is 1), calls the model's entry points
 * directly (no libffi) and allocates nothing, at creation or after; its
 * logits are bitwise those of a tfx_session_create session (results never
 * depend on the thread count). Every tfx_forward* function, the position,
 * reset and last error work on it as on any session. Its output scratch is
 * one row (in the arena): a call that wants only the last row of a model
 * without a last-row entry for that n (tfx_forward_ex documents the entry
 * choice; every causal language model tfxc compiles has one) is refused with
 * TFX_ERR_INVALID_ARGUMENT; pass an output of n rows with last_only = 0. */
#define TFX_BUFFER_ALIGN 64           /* the alignment of the arena and KV buffers */
#define TFX_SESSION_STORAGE_BYTES 512 /* sizeof(tfx_session_storage) */
/* Room for the session structure (opaque; any alignment the runtime needs). */
typedef union tfx_session_storage {
  unsigned char bytes[TFX_SESSION_STORAGE_BYTES];
  void *align_ptr;
  uint64_t align_u64;
  double align_double;
} tfx_session_storage;
/* The bytes a session keeps for a model with a source (an input of up to
 * `rows` rows padded per call: an encoder-decoder's source; n_inputs counts
 * the descriptor's inputs, the sources' row mask included): every input
 * padded to `rows` int32 or float values, twice (this call's, then the
 * previous call's, which the source cache compares with). */
#define TFX_SOURCE_BUFFER_BYTES(n_inputs, rows) ((uint64_t)(n_inputs) * 2u * (uint64_t)(rows) * 4u)
/* The arena and KV-cache bytes a static session of the model needs: the
 * generated header's <NAME>_ARENA_BYTES (the model's activations rounded up
 * to TFX_BUFFER_ALIGN, then one output row, rounded up likewise, then for a
 * model with a source TFX_SOURCE_BUFFER_BYTES, rounded up likewise) and
 * <NAME>_KV_BYTES (0 for a model without a KV cache). Either pointer may be
 * NULL. TFX_OK, or TFX_ERR_INVALID_ARGUMENT for a NULL model. */
int tfx_session_static_sizes(const tfx_model *model, size_t *arena_bytes, size_t *kv_bytes);
/* Creates a session in the caller's memory: the session structure in
 * *storage, the model's activations and one output row in arena, its KV
 * cache in kv (zeroed here, as every session's is). Both buffers must be
 * TFX_BUFFER_ALIGN-aligned and at least the sizes above (kv may be NULL
 * when the model needs none). A NULL, misaligned or too small buffer is
 * TFX_ERR_INVALID_ARGUMENT with the detail (which buffer, its size and the
 * size needed) in errbuf when it is non-NULL. The buffers must outlive the
 * session and not be shared with another live session. */
int tfx_session_create_static(const tfx_model *model, void *arena, size_t arena_bytes, void *kv, size_t kv_bytes,
                              tfx_session_storage *storage, tfx_session **out, char *errbuf, size_t errlen);

/* ---- batched decoding over a paged KV cache (continuous batching) ----
 * A tfx_batch runs up to max_seqs sequences of one model together: each
 * tfx_batch_step appends tokens to any subset of them (one token to a
 * decoding sequence, a chunk of its prompt to one that just joined) in one
 * call of the model's batch entry, so each weight is read once for all the
 * rows of the step (the linear layers run as one GEMM over them). Every row
 * has its own position; attention reads each sequence's own keys. The KV
 * cache is a pool of blocks of TFX_KV_BLOCK_TOKENS positions (vLLM's
 * PagedAttention layout) shared by the sequences: a sequence holds
 * ceil(position / TFX_KV_BLOCK_TOKENS) blocks, taken when a step needs them
 * and returned by tfx_batch_remove / tfx_batch_reset_seq. Sequences join
 * (tfx_batch_add) and leave (tfx_batch_remove) between steps. Logits equal
 * those of a tfx_session fed the same tokens (same kernels, row order of
 * the reductions unchanged). Only causal token models whose rows meet only
 * in attention (no MLA, no bidirectional attention over the input) have a
 * batch entry; tfx_batch_create reports TFX_ERR_NO_BATCH for the others.
 * All memory is allocated at creation; calls on one batch must not overlap. */
typedef struct tfx_batch tfx_batch;
typedef struct tfx_batch_options {
  int32_t threads;   /* as tfx_session_options.threads */
  int32_t max_seqs;  /* sequences alive at once; 0: 16 */
  int32_t kv_blocks; /* blocks in the pool; 0: enough for max_seqs sequences of max_seq positions */
  int32_t max_step;  /* rows (tokens) a step may carry in all; 0: max_seq. Steps run in calls of <= max_seq rows */
} tfx_batch_options;

int tfx_batch_create(const tfx_model *model, const tfx_batch_options *opts, tfx_batch **out);
/* A new empty sequence (position 0, no block): *seq gets its id, an index
 * in [0, max_seqs) reused after tfx_batch_remove. TFX_ERR_INVALID_ARGUMENT
 * when max_seqs sequences are alive. */
int tfx_batch_add(tfx_batch *b, int32_t *seq);
/* Prefix sharing: a new sequence (*seq) continuing from src's tokens, which
 * shares src's blocks (no KV memory, no compute); when either appends to a
 * partly filled block they share, that block is copied first
 * (copy-on-write), so the two diverge without touching each other. */
int tfx_batch_fork(tfx_batch *b, int32_t src, int32_t *seq);
/* The sequence leaves: its blocks return to the pool (those shared with a
 * fork when their last holder leaves), its id is free. */
int tfx_batch_remove(tfx_batch *b, int32_t seq);
/* Back to position 0 (its blocks return to the pool); the id stays. */
int tfx_batch_reset_seq(tfx_batch *b, int32_t seq);
/* Appends n_tokens[i] tokens to sequence seqs[i] for i < n_seqs (tokens: the
 * sequences' tokens one after another, sum n_tokens[i] <= max_step) and
 * writes the logits of each sequence's last new token to row i of logits
 * ([n_seqs, output_width]; may be NULL). status (may be NULL) receives each
 * sequence's outcome: TFX_OK (it advanced), or TFX_ERR_KV_FULL (the pool
 * has too few free blocks for its new positions), TFX_ERR_CONTEXT_FULL
 * (position + n > max_seq), TFX_ERR_TOKEN_RANGE, TFX_ERR_INVALID_ARGUMENT
 * (unknown id, n < 1, the id twice in one step): such a sequence is left
 * exactly as it was (its logits row untouched) while the others run.
 * Returns TFX_OK when every sequence advanced, else the first failure's
 * status (tfx_batch_last_error names it); a bad call (NULL arrays, n_seqs
 * < 1, too many rows) runs nothing. */
int tfx_batch_step(tfx_batch *b, int32_t n_seqs, const int32_t *seqs, const int32_t *n_tokens, const int32_t *tokens,
                   float *logits, int32_t *status);
/* The sequence's position (tokens appended so far), or -1 for a free id. */
int32_t tfx_batch_position(const tfx_batch *b, int32_t seq);
/* Free blocks of the pool, and its size. */
int32_t tfx_batch_free_blocks(const tfx_batch *b);
int32_t tfx_batch_total_blocks(const tfx_batch *b);
/* The detail of the last failure ("" after a successful call); never NULL. */
const char *tfx_batch_last_error(const tfx_batch *b);
void tfx_batch_free(tfx_batch *b);

/* ---- sampling ---- */
typedef struct tfx_sampler {
  float temperature;  /* 0: greedy (argmax, lowest id on ties) */
  float top_p;        /* in (0, 1]; 1 disables nucleus sampling */
  uint64_t rng_state; /* xorshift state; seeded by tfx_sampler_init */
} tfx_sampler;

void tfx_sampler_init(tfx_sampler *s, float temperature, float top_p, uint64_t seed);
/* Picks a token from logits[0..n); modifies logits in place when sampling.
 * Returns the id, or a negative tfx_status. */
int32_t tfx_sample(tfx_sampler *s, float *logits, int32_t n);

#ifdef __cplusplus
}
#endif
#endif
