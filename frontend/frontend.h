/* frontend/frontend.h — from .tfx source to a verified graph with bound
 * weights: lexer, parser, semantic checks, lowering and weight binding.
 * Errors are printed as `file:line:col: error: message`, the source line and a
 * caret, to the options' diagnostics stream. */
#ifndef TFX_FRONTEND_H
#define TFX_FRONTEND_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../ir/ir.h"

/* The weights blob: every PARAM node's data at its weight_offset (64-byte
 * aligned), float32 little-endian. */
typedef struct tfx_weights {
  uint8_t *data;
  size_t size;
} tfx_weights;

void tfx_weights_free(tfx_weights *w);

typedef struct tfx_frontend_options {
  const char *weights; /* NULL: the source's `weights` statement; a path; "random" / "random:SEED" */
  int no_weights;      /* 1: do not bind weights (for --emit=ir without a file) */
  FILE *diag;          /* NULL: stderr */
  int max_errors;      /* 0: 20 */
  /* called with the path of the weights file about to be bound (--weights, or
   * the weights statement's made relative to the source), not for random:
   * tfxc refuses an output that is the same file (driver/outfile.c) */
  void (*on_weights_path)(void *ctx, const char *path);
  void *on_weights_ctx;

  int allow_nonfinite; /* 1: accept NaN and inf weights (else an error naming the tensor and element) */
  /* NULL, or the formats the params end in, chosen before binding so each
   * tensor is quantized as it is read (tfx_bind_options.plan_formats) */
  int (*plan_formats)(void *ctx, tfx_graph *g, tfx_quant_target *plan, char *err, size_t errlen);
  void *plan_ctx;
} tfx_frontend_options;

/* Reads a whole regular file (NUL-terminated after *len bytes; free it);
 * NULL with the reason in why on failure. The file is opened without
 * blocking and checked with fstat first, so a FIFO is an error, never a
 * hang; a directory says so. */
char *tfx_frontend_read_file(const char *path, size_t *len, char *why, size_t whylen);

/* Parses `source` (read from `path` when NULL), checks it, lowers it to a
 * graph and binds its weights. Returns the number of errors printed; on 0,
 * *out_graph and *out_weights are set and owned by the caller. */
int tfx_frontend_compile(const char *path, const char *source, const tfx_frontend_options *o, tfx_graph **out_graph,
                         tfx_weights *out_weights);

#endif
