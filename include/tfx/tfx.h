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
  TFX_ERR_CPU = -12          /* the model's code needs CPU features this CPU (or its OS) lacks; see TFX_CPU_MASK */
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
   * (several GB/s); without it, opening reads no weights. (The descriptor's
   * own checksum, a few hundred bytes, is checked on every open.) */
  TFX_OPEN_VERIFY = 1
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
void tfx_model_close(tfx_model *model);
/* The descriptor of the code variant the open chose. */
const tfx_model_desc *tfx_model_descriptor(const tfx_model *model);

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
void tfx_session_reset(tfx_session *s);
void tfx_session_free(tfx_session *s);

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
