/* runtime/errors.c — status messages (tfx_error_message) and the helper that
 * writes the detail of a failure into a caller's error buffer. */
#include <stdarg.h>
#include <stdio.h>

#include "rt_internal.h"
#include "tfx/tokenizer.h"

const char *tfx_error_message(int code) {
  switch (code) {
  case TFX_OK: return "success";
  case TFX_ERR_INVALID_ARGUMENT: return "invalid argument (NULL pointer, n <= 0 or a bad option)";
  case TFX_ERR_OUT_OF_MEMORY: return "out of memory";
  case TFX_ERR_OPEN: return "the model file could not be loaded";
  case TFX_ERR_NOT_A_MODEL: return "not a tfx model (no valid model descriptor)";
  case TFX_ERR_ABI_VERSION: return "the model was compiled for another runtime ABI version";
  case TFX_ERR_TOKEN_RANGE: return "a token id is outside [0, vocab)";
  case TFX_ERR_CONTEXT_FULL: return "the context is full (position + n would exceed max_seq)";
  case TFX_ERR_WRONG_INPUT: return "wrong input kind (tokens given to an f32-input model or vice versa)";
  case TFX_ERR_INTERNAL: return "internal runtime error (libffi or thread creation failed)";
  case TFX_ERR_COMPILE: return "the model did not compile";
  case TFX_ERR_CHECKSUM: return "the model file is corrupted (a checksum differs)";
  case TFX_ERR_TOKENIZER: return "not a tokenizer file this runtime reads (malformed or unsupported)";
  case TFX_ERR_CPU: return "the model needs CPU features this CPU does not have";
  case TFX_ERR_KV_FULL: return "the KV block pool has no free block left for this sequence";
  case TFX_ERR_NO_BATCH: return "the model has no batch entry (it cannot decode several sequences at once)";
  default: return "unknown error";
  }
}

int tfx_rt_error(char *errbuf, size_t errlen, int code, const char *fmt, ...) {
  if (errbuf && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}
