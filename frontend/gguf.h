/* frontend/gguf.h — the GGUF container format shared by its reader
 * (weights_gguf.c) and writer (gguf_write.c): the magic, the metadata value
 * types, ggml's tensor types with their block sizes, and which of them map to
 * a tfxc storage format. Layout (little-endian, GGUF v2/v3):
 *   "GGUF", u32 version, u64 tensor_count, u64 kv_count,
 *   kv_count x (string key, u32 value type, value),
 *   tensor_count x (string name, u32 n_dims, u64 ne[n_dims] (innermost first),
 *                   u32 ggml type, u64 offset into the data section),
 *   padding to general.alignment (u32, default 32), the data section.
 * A string is a u64 byte count then the bytes (no terminating zero); an
 * array is u32 element type, u64 count, the elements. */
#ifndef TFX_GGUF_H
#define TFX_GGUF_H

#include <stdint.h>
#include <stdio.h>

#include "../ir/ir.h"

#define TFX_GGUF_MAGIC "GGUF"
#define TFX_GGUF_VERSION 3
#define TFX_GGUF_DEFAULT_ALIGNMENT 32
#define TFX_GGUF_MAX_DIMS 4    /* GGML_MAX_DIMS */
#define TFX_GGUF_MAX_NAME 256  /* tensor names (ggml's limit is 64; converters stay below) */
#define TFX_GGUF_MAX_KEY 65535 /* metadata keys */
#define TFX_GGUF_MAX_DEPTH 4   /* arrays of arrays */

typedef enum {
  TFX_GGUF_UINT8 = 0,
  TFX_GGUF_INT8 = 1,
  TFX_GGUF_UINT16 = 2,
  TFX_GGUF_INT16 = 3,
  TFX_GGUF_UINT32 = 4,
  TFX_GGUF_INT32 = 5,
  TFX_GGUF_FLOAT32 = 6,
  TFX_GGUF_BOOL = 7,
  TFX_GGUF_STRING = 8,
  TFX_GGUF_ARRAY = 9,
  TFX_GGUF_UINT64 = 10,
  TFX_GGUF_INT64 = 11,
  TFX_GGUF_FLOAT64 = 12,
  TFX_GGUF_VALUE_TYPES
} tfx_gguf_vtype;

/* A ggml tensor type: its id in the file, name, block (elements per block
 * along ne0) and bytes per block, and the tfxc format it is read as
 * (TFX_DT_COUNT: known to ggml, not readable by tfxc). */
typedef struct {
  uint32_t id;
  const char *name;
  int block, block_bytes;
  tfx_dtype dtype;
} tfx_gguf_type;

/* The entry of ggml type id, NULL when ggml has no such type. */
const tfx_gguf_type *tfx_gguf_type_of(uint32_t id);
/* The ggml type a tfxc storage format is written as, NULL when GGUF cannot
 * hold it (i8 with a row scale, f32_rowscale). */
const tfx_gguf_type *tfx_gguf_type_for(tfx_dtype dt);
/* Bytes of one element of a fixed-size value type (0: string, array, unknown). */
int tfx_gguf_value_size(uint32_t vtype);
const char *tfx_gguf_value_name(uint32_t vtype);

/* What tfxc writes besides the tensors (gguf_write.c). */
typedef struct tfx_gguf_meta {
  const char *name;    /* general.name (the model's name), or NULL */
  const char *source;  /* tfxc.source: the .tfx file it was compiled from, or NULL */
  const char *version; /* tfxc.version, or NULL */
} tfx_gguf_meta;

/* Writes every distinct bound PARAM of g (weight_offset >= 0; its bytes at
 * weights + weight_offset, in its stored format) as a GGUF v3 file at path:
 * general.architecture = "tfxc", general.name, general.alignment = 32,
 * general.file_type, tfxc.version, tfxc.source; tensors named as the params,
 * dims reversed (innermost first). The file is written to "path.tmp.XXXXXX"
 * beside it and renamed into place when complete. A param GGUF cannot express
 * (a packed layout, fx.panel > 0, or a format with a row-scale plane) is an
 * error naming it. 0, or -1 with a message. */
int tfx_gguf_write(const tfx_graph *g, const uint8_t *weights, size_t weights_size, const char *path,
                   const tfx_gguf_meta *meta, char *err, size_t errlen);
/* The same file's bytes written to an open stream (not flushed or closed),
 * for a caller that owns the temporary file and its renaming (tfxc, which
 * renames every output into place only when all are complete); path names the
 * file in messages. 0, or -1 with a message. */
int tfx_gguf_write_stream(const tfx_graph *g, const uint8_t *weights, size_t weights_size, FILE *fp, const char *path,
                          const tfx_gguf_meta *meta, char *err, size_t errlen);

#endif
