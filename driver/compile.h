/* driver/compile.h — the compilation pipeline as a library: source to a
 * planned graph with its weights (frontend + passes), then to a JIT model, an
 * object, a shared library or a C header (backend). Used by the tfxc command,
 * the JIT API (tfx/jit.h) and the tests. */
#ifndef TFX_DRIVER_COMPILE_H
#define TFX_DRIVER_COMPILE_H

#include <stdio.h>

#include "../backend/backend.h"
#include "../frontend/frontend.h"
#include "../include/tfx/tfx.h"
#include "../ir/ir.h"

typedef struct tfx_build {
  tfx_graph *graph;      /* planned, verified */
  tfx_weights weights;   /* the bound blob (empty when built with no_weights) */
  double parse_seconds;  /* the frontend's time (parse, lower, bind the weights) */
  double passes_seconds; /* the passes' (and the verifier's) */
} tfx_build;

typedef struct tfx_build_options {
  const char *weights; /* NULL: the source's weights statement; path; "random[:SEED]" */
  int no_weights;      /* lower and plan without binding weights */
  int opt_level;       /* 0..3 */
  FILE *diag;          /* NULL: stderr */
  /* the pass manager (passes/passes.h, docs/passes.md) */
  const char *passes;      /* NULL: the -O pipeline; else "a,b,c" */
  const char *print_after; /* comma-separated pass names */
  int print_after_all;
  int time_passes;
  int verify_passes; /* verify after every pass (also TFX_VERIFY_PASSES=1, debug builds) */
  FILE *dump;        /* where printing and timing go; NULL: stderr */
  /* the target the graph is compiled for (NULL: the host): the passes pack
   * weights in its layout (tfx_backend_pack_layout) */
  const tfx_target_options *target;
  /* --quantize: NULL keeps the source's schedule { quantize = ... }; else a
   * name of tfx_quant_choice_parse (q4_k_m included) replacing that default
   * (the source's quantize { } rules still apply over it) */
  const char *quantize;
  /* write the bound params as a GGUF v3 file here (tfxc --emit-gguf;
   * frontend/gguf.h), in their stored formats, before the passes fuse or
   * pack any of them */
  const char *emit_gguf;
  /* when set, the GGUF goes to this open stream (tfxc's temporary file, renamed
   * into place with the other outputs) and emit_gguf only names it */
  FILE *emit_gguf_to;
  /* passed to the frontend (tfx_frontend_options.on_weights_path) */
  void (*on_weights_path)(void *ctx, const char *path);
  void *on_weights_ctx;

  int allow_nonfinite; /* accept NaN and inf weights (tfxc --allow-nonfinite) */
  /* --calibration FILE: calibration data (tfxc calibrate, ir/calib.c) for
   * w8a8(smooth = alpha), loaded and validated onto the graph (g->calib) */
  const char *calibration;
  /* 1: bind every param in its bound format, then let quantize_weights
   * convert the whole blob (as before issue #17; the tests compare the two
   * ways). 0: the formats are planned before binding, which quantizes each
   * tensor as it reads it (plan_formats in compile.c) */
  int quantize_after_binding;
} tfx_build_options;

/* Frontend, then the -O pipeline. Returns 0, or the number of errors (all
 * already printed to o->diag). */
int tfx_build_source(const char *path, const char *source, const tfx_build_options *o, tfx_build *out);
void tfx_build_free(tfx_build *b);

/* tfxc calibrate FILE.tfx [--weights W] --tokens FILE... -o OUT.calib
 * (driver/calibrate.c): argv[0] is "calibrate"; returns the exit code. */
int tfx_drv_calibrate_main(int argc, char **argv);

/* Embeds the tokenizer file at path in the build's model (its descriptor
 * then carries the file's bytes: tfx_model_tokenizer; tfxc --tokenizer or
 * the source's tokenizer statement, named by `what` in messages): 0, or -1
 * with the reason in err (not a token model, not a tokenizer the runtime
 * reads, the model's tokens { } ids outside it). */
int tfx_build_embed_tokenizer(tfx_build *b, const char *what, const char *path, char *err, size_t errlen);

/* JIT-compiles a build into a runtime model; takes ownership of b's weights
 * (b->weights is emptied) and frees them with the model. */
int tfx_build_jit(tfx_build *b, const tfx_target_options *t, tfx_model **out, char *err, size_t errlen);

/* Prints `tfxc --stats` for a planned, bound graph (driver/stats.c);
 * pipeline names the passes that ran. */
int tfx_print_stats(const tfx_graph *g, const tfx_target_options *t, const char *pipeline, FILE *out, char *err,
                    size_t errlen);

/* Writes the C header of a compiled model (descriptor declaration, sizes). */
int tfx_write_header(const tfx_graph *g, const char *source_name, FILE *out);

#endif
