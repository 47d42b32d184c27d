/* frontend/import.h — `tfxc import`: a readable .tfx for a checkpoint as it
 * is saved, from a Hugging Face folder (config.json + model.safetensors or a
 * sharded model.safetensors.index.json) or a llama GGUF file (its metadata).
 * The .tfx binds the file's tensors through a rename { } block (views, slices,
 * stacks) and carries the config's special ids in tokens { }. */
#ifndef TFX_FE_IMPORT_H
#define TFX_FE_IMPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct tfx_import_options {
  int64_t max_seq;       /* 0: min(the model's context, 4096) */
  const char *weights;   /* the path the weights statement names (relative to the .tfx), NULL: the absolute path */
  const char *name;      /* the model's name, NULL: from the checkpoint's file or folder name */
  const char *tokenizer; /* the tokenizer statement's path (relative to the .tfx), NULL: none */
} tfx_import_options;

/* The model types import writes, and those it refuses with the reason. */
extern const char *const tfx_import_families;

/* The path of the weights file of a checkpoint (DIR/model.safetensors, the
 * index of a sharded one, or the .gguf itself) into buf. 0, or -1 with a
 * message. */
int tfx_import_weights_path(const char *path, char *buf, size_t len, char *err, size_t errlen);

/* Writes the .tfx for the checkpoint at path into *text (malloc'd,
 * NUL-terminated). 0, or -1 with a message "PATH: ..." in err. */
int tfx_import(const char *path, const tfx_import_options *o, char **text, char *err, size_t errlen);

#endif
