/* tfx/jit.h — compile a .tfx model in-process with LLVM's ORC JIT and get a
 * tfx_model usable with every function of tfx/tfx.h. This is how tests and
 * `tfxc run model.tfx` execute models without writing files. */
#ifndef TFX_JIT_H
#define TFX_JIT_H

#include <stdio.h>

#include "tfx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfx_compile_options {
  int opt_level;       /* 0..3 (default 2) */
  const char *weights; /* NULL: the model's `weights` statement; a path; "random" or "random:SEED" */
  const char *cpu;     /* NULL: the host CPU */
  FILE *diagnostics;   /* where errors are printed; NULL: stderr */
  /* NULL: the model's schedule; else the weights' default format, as tfxc
   * --quantize: f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, q4_k_m or none */
  const char *quantize;
  /* 0 (default): a NaN or inf in the weights is a compile error naming the
   * tensor and the element; 1: accepted (tfxc --allow-nonfinite) */
  int allow_nonfinite;
} tfx_compile_options;

void tfx_compile_options_init(tfx_compile_options *o);

/* Compiles the model in `path`. On failure returns TFX_ERR_COMPILE (the
 * diagnostics went to o->diagnostics) or another tfx_status. Closing the
 * model (tfx_model_close) frees the JIT code and the weights. A source's
 * `tokenizer "FILE"` statement puts that file in the model, as in a compiled
 * .so (tfx_model_tokenizer); a file that is not a tokenizer is a compile
 * error. */
int tfx_jit_compile_file(const char *path, const tfx_compile_options *o, tfx_model **out);
/* The same for source text in memory; `filename` is used in diagnostics and
 * to resolve a relative weights path. */
int tfx_jit_compile_source(const char *filename, const char *source, const tfx_compile_options *o, tfx_model **out);

#ifdef __cplusplus
}
#endif
#endif
