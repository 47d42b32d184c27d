/* frontend/weights.h — weight files and binding: reads the tensor table of a
 * weights file (llama2.c's .bin today; safetensors and GGUF later), binds
 * every PARAM of a graph to a tensor by name and shape, and builds the weights
 * blob, or fills every param deterministically for `random[:SEED]`. */
#ifndef TFX_WEIGHTS_H
#define TFX_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "frontend.h"

typedef struct tfx_wfile_tensor {
  char *name;           /* the name the loader gives it, e.g. "layers.3.wq" */
  tfx_type type;        /* f32 and its shape */
  uint64_t file_offset; /* where its data starts in the file */
} tfx_wfile_tensor;

typedef struct tfx_wfile {
  char *path;
  const char *format; /* "llama2c" */
  uint64_t file_size;
  int n_tensors;
  tfx_wfile_tensor *tensors;
} tfx_wfile;

/* Opens and validates a llama2.c checkpoint: header, sizes, every offset
 * inside the file. 0 on success, else -1 with a message. */
int tfx_wfile_open_llama2c(const char *path, tfx_wfile *out, char *err, size_t errlen);
void tfx_wfile_close(tfx_wfile *f);

/* Reports one binding error: node_id is the PARAM concerned, or -1. */
typedef void (*tfx_bind_error_fn)(void *ctx, int node_id, const char *message);

/* Binds every PARAM node of g: spec is a file path or "random" / "random:SEED";
 * format is "llama2c" or NULL (guessed from the file). Sets each param's
 * weight_offset, g->weights_bytes, and fills *out (64-byte aligned offsets).
 * Returns the number of errors reported through on_error (0 on success). */
int tfx_weights_bind(tfx_graph *g, const char *spec, const char *format, tfx_weights *out,
                     tfx_bind_error_fn on_error, void *ctx);

#endif
