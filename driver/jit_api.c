/* driver/jit_api.c — the public JIT API (tfx/jit.h): source to a runnable
 * tfx_model in one call (with the tokenizer of the source's tokenizer
 * statement inside, as a compiled .so has it). */
#include <string.h>

#include "../include/tfx/jit.h"
#include "compile.h"

void tfx_compile_options_init(tfx_compile_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->opt_level = 2;
}

int tfx_jit_compile_source(const char *filename, const char *source, const tfx_compile_options *o, tfx_model **out) {
  if (!out) return TFX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!filename && !source) return TFX_ERR_INVALID_ARGUMENT;
  tfx_compile_options defaults;
  tfx_compile_options_init(&defaults);
  if (!o) o = &defaults;
  if (o->opt_level < 0 || o->opt_level > 3) return TFX_ERR_INVALID_ARGUMENT;
  FILE *diag = o->diagnostics ? o->diagnostics : stderr;

  tfx_target_options t = {.opt_level = o->opt_level, .cpu = o->cpu};
  tfx_build_options bo = {.weights = o->weights,
                          .opt_level = o->opt_level,
                          .diag = diag,
                          .target = &t,
                          .quantize = o->quantize,
                          .allow_nonfinite = o->allow_nonfinite};
  tfx_build b;
  if (tfx_build_source(filename, source, &bo, &b)) return TFX_ERR_COMPILE;
  char err[1024] = "";
  /* the source's tokenizer statement: in the model, as in a compiled .so */
  int rc =
      b.graph->tokenizer_path && tfx_build_embed_tokenizer(&b, "tokenizer", b.graph->tokenizer_path, err, sizeof err)
          ? TFX_ERR_COMPILE
          : tfx_build_jit(&b, &t, out, err, sizeof err);
  if (rc != TFX_OK) fprintf(diag, "%s: error: %s\n", filename ? filename : "<source>", err);
  tfx_build_free(&b);
  return rc;
}

int tfx_jit_compile_file(const char *path, const tfx_compile_options *o, tfx_model **out) {
  if (!path) return TFX_ERR_INVALID_ARGUMENT;
  return tfx_jit_compile_source(path, NULL, o, out);
}
