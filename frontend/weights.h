/* frontend/weights.h — weight files and binding: reads the tensor table of a
 * weights file (llama2.c's .bin, safetensors, GGUF), binds
 * every PARAM of a graph to a tensor by name and shape, and builds the weights
 * blob, or fills every param deterministically for `random[:SEED]`. */
#ifndef TFX_WEIGHTS_H
#define TFX_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "frontend.h"

/* How a tensor's elements are stored in the file (tfx_wfile_tensor.storage
 * names the format exactly). A param read only as a weight operand keeps
 * the stored format in the blob; any other is decoded to f32 (weights.c). */
typedef enum {
  TFX_WF_F32 = 0,
  TFX_WF_F16,
  TFX_WF_BF16,
  TFX_WF_BLOCK,      /* a block format of the format table (GGUF's Q8_0, Q4_0, Q4_K, Q6_K): see storage */
  TFX_WF_UNSUPPORTED /* a dtype the file format knows but tfxc cannot bind (F64, I64, …) */
} tfx_wfile_dtype;

typedef struct tfx_wfile_tensor {
  char *name;             /* the name the loader gives it, e.g. "layers.3.wq" */
  tfx_type type;          /* f32 and its shape (the type it binds as) */
  uint64_t file_offset;   /* where its data starts in the file */
  tfx_wfile_dtype dtype;  /* how its data is stored */
  const char *dtype_name; /* static: "F32", "F16", "BF16", "F64", "Q8_0", … */
  tfx_dtype storage;      /* the format table's format of its data (f32 when unsupported) */
  int shard;              /* sharded checkpoints only (n_shards > 0): the file holding it, shards[shard] */
} tfx_wfile_tensor;

typedef struct tfx_wfile {
  char *path;
  const char *format; /* "llama2c", "safetensors", "gguf" */
  uint64_t file_size;
  int n_tensors;
  tfx_wfile_tensor *tensors;
  /* llama2c: the header as read (dim, hidden_dim, n_layers, n_heads,
   * n_kv_heads, vocab_size (negative: a separate classifier), seq_len) */
  int32_t llama2c[7];
  /* a sharded safetensors checkpoint (model.safetensors.index.json): the
   * shards' paths, tensors[k].shard indexing them; 0 and NULL otherwise */
  int n_shards;
  char **shards;
} tfx_wfile;

/* Opens a weights file for reading: a regular file (checked without
 * blocking, so a FIFO or a directory is an error, never a hang), its size in
 * *size; NULL with a message. The loaders' one way in. */
FILE *tfx_wfile_fopen(const char *path, uint64_t *size, char *err, size_t errlen);
/* Opens and validates a llama2.c checkpoint: header, sizes, every offset
 * inside the file. 0 on success, else -1 with a message. */
int tfx_wfile_open_llama2c(const char *path, tfx_wfile *out, char *err, size_t errlen);
/* Opens and validates a safetensors file (8-byte little-endian header length,
 * JSON header, data): every tensor's dtype, shape and data_offsets are checked
 * against the file before any data is read. 0 on success, else -1 with a
 * message naming the file (and the tensor concerned). */
int tfx_wfile_open_safetensors(const char *path, tfx_wfile *out, char *err, size_t errlen);
/* 1 when the file starts like a safetensors file (a plausible header length
 * followed by '{'), 0 otherwise (also when it cannot be read). */
int tfx_wfile_looks_safetensors(const char *path);
/* Opens and validates a GGUF file (v2, v3; frontend/gguf.h): header,
 * metadata, tensor infos, alignment and every tensor's extent, each error
 * naming the file and the field (weights_gguf.c). Tensors of ggml types
 * tfxc cannot read are listed as TFX_WF_UNSUPPORTED. 0, or -1 with a message. */
int tfx_wfile_open_gguf(const char *path, tfx_wfile *out, char *err, size_t errlen);
/* Opens a sharded safetensors checkpoint from its index
 * (model.safetensors.index.json: {"weight_map": {tensor: shard file}}): each
 * shard (beside the index) is opened and validated, and their tensors make one
 * table, each naming its shard; a tensor the index and its shard disagree on,
 * or one in two shards, is an error (weights_shards.c). 0, or -1 with a
 * message. */
int tfx_wfile_open_sharded(const char *index_path, tfx_wfile *out, char *err, size_t errlen);
/* 1 when the path names a sharded checkpoint's index (ends with .index.json). */
int tfx_wfile_is_shard_index(const char *path);
/* 1 when the file starts with GGUF's magic "GGUF". */
int tfx_wfile_looks_gguf(const char *path);
void tfx_wfile_close(tfx_wfile *f);

/* Reports one binding error: node_id is the PARAM concerned, or -1. */
typedef void (*tfx_bind_error_fn)(void *ctx, int node_id, const char *message);

/* Binds every PARAM node of g: spec is a file path or "random" / "random:SEED";
 * format is "llama2c", "safetensors", "gguf" or NULL (guessed from the file:
 * the magic "GGUF", the extension .safetensors / .bin, else the header's
 * shape). Sets each param's weight_offset, g->weights_bytes, and fills *out
 * (64-byte aligned offsets). A param whose every use reads it as a weight
 * operand (linear / fused_linear w, matmul b, embedding table, MoE and router
 * weights, MLA's wkv_b, concat, pack) bound to a tensor stored as f16, bf16,
 * q8_0, q4_0, q4_k or q6_k keeps that format: its type.dtype becomes it and
 * its slot holds the bytes as stored. Every other param is decoded to f32
 * (tfx_weight_dequant_row).
 * Returns the number of errors reported through on_error (0 on success). */
int tfx_weights_bind(tfx_graph *g, const char *spec, const char *format, tfx_weights *out, tfx_bind_error_fn on_error,
                     void *ctx);

/* A renaming rule of the weights statement: a file tensor whose name matches
 * `from` binds to the param named `to`. `{x}` (x an identifier) in
 * `from` matches a decimal index (1 to 9 digits; at most 4 placeholders) and
 * is substituted in `to`; `*` in `from` matches any run of characters; an
 * empty `to` means "ignore this tensor". See docs/language.md. */
/* A view of a file tensor (weights_view.c): the operations a rule applies to
 * the tensor, in order, before it binds (`"c_attn.weight".T[0:64]`). */
#define TFX_WVIEW_MAX_RANK 4
#define TFX_WVIEW_MAX_OPS 8
#define TFX_WVIEW_END INT64_MIN /* a slice's hi: up to the end of the axis */
typedef enum {
  TFX_WV_SLICE,     /* [a:b, i, :]: ranges keep an axis, an index drops it; axes not given are whole */
  TFX_WV_TRANSPOSE, /* .T: a 2-D tensor transposed */
  TFX_WV_VIEW       /* .view(d0, d1, ...): the same elements, row-major, as this shape */
} tfx_wview_kind;

typedef struct tfx_wview_op {
  tfx_wview_kind kind;
  int n;                          /* SLICE: axes given; VIEW: dims */
  int64_t lo[TFX_WVIEW_MAX_RANK]; /* SLICE: first index; VIEW: the dims */
  int64_t hi[TFX_WVIEW_MAX_RANK]; /* SLICE: one past the last, or TFX_WVIEW_END */
  char index[TFX_WVIEW_MAX_RANK]; /* SLICE: 1 when the axis is indexed by lo alone (dropped) */
} tfx_wview_op;

/* The shape of a view: rank and dims. */
typedef struct tfx_wview_shape {
  int rank;
  int64_t d[TFX_WVIEW_MAX_RANK];
} tfx_wview_shape;

/* The shape a tensor of shape in has after ops; 0, or -1 with a message
 * (a slice out of range, a transpose of a tensor that is not 2-D, a view of
 * another element count). */
int tfx_wview_shape_of(const tfx_wview_op *ops, int n_ops, const tfx_wview_shape *in, tfx_wview_shape *out, char *err,
                       size_t errlen);
/* Applies ops (checked by tfx_wview_shape_of) to the f32 tensor src of shape
 * in; writes the result to dst (as many elements as the result has). 0, or
 * -1 when out of memory. */
int tfx_wview_apply(const tfx_wview_op *ops, int n_ops, const tfx_wview_shape *in, const float *src, float *dst);

typedef struct tfx_wrename {
  const char *from;
  const char *to;
} tfx_wrename;

/* What makes a rename rule a binding rule (weights_view.c): the view of the
 * file tensor that binds (n_ops operations), and/or `stack`, a placeholder
 * of `from` whose value is the index along the param's first axis that the
 * tensor fills (`= "layers.{i}.w1"[e]`). A tensor feeds every binding rule
 * it matches; plain rules rename it as before (the first that matches). */
typedef struct tfx_wview {
  int n_ops;
  const tfx_wview_op *ops;
  const char *stack;
} tfx_wview;

/* 1 when v makes a rule a binding rule (a view or a stack). */
int tfx_wview_binds(const tfx_wview *v);
/* Matches one rule against the whole name: 1 and the new name in out (and,
 * when stack names a placeholder, its value in *index, else -1), 0 when it
 * does not match, -1 when the new name does not fit in outlen. */
int tfx_wrename_match(const tfx_wrename *rule, const char *stack, const char *name, char *out, size_t outlen,
                      int64_t *index);

/* Binding errors about a rule (a slice out of range, a missing expert, ...)
 * are reported with node_id TFX_BIND_RULE(r), r the rule's index. */
#define TFX_BIND_RULE(r) (-2 - (r))

/* Checks one rule: placeholders well formed, each at most once in `from`,
 * every placeholder of `to` present in `from`. 0 if valid, else a message and
 * -1 (the fault is in `from`) or -2 (in `to`). */
int tfx_wrename_check(const tfx_wrename *rule, char *err, size_t errlen);
/* Applies the first rule whose `from` matches the whole name: 1 and the new
 * name in out (possibly ""), 0 when no rule matches (out = name), -1 when the
 * result does not fit in outlen. */
int tfx_wrename_apply(const tfx_wrename *rules, int n_rules, const char *name, char *out, size_t outlen);

/* tfx_weights_bind with renaming rules applied to the file's tensor names
 * before matching them to params (ignored for random[:SEED]). */
int tfx_weights_bind_renamed(tfx_graph *g, const char *spec, const char *format, const tfx_wrename *rules, int n_rules,
                             tfx_weights *out, tfx_bind_error_fn on_error, void *ctx);

/* ---- checks at binding (weights_check.c, weights_header.c; issue #17) ---- */

typedef struct tfx_bind_options {
  int allow_nonfinite; /* 1: accept NaN and inf weights (tfxc --allow-nonfinite) */
  /* NULL, or one per rename rule: the binding rules' views and stacks (a
   * rule whose entry has neither is a plain rule) */
  const tfx_wview *views;
  /* NULL, or called once each param's bound format is known (its type set
   * to it, no slot laid out yet) with plan[i] = node i's format: it may
   * change plan[i] to the format param i ends in (the driver's --quantize:
   * tfx_quantize_plan). Binding then lays out each slot in that format and
   * quantizes the tensor into it as it reads it (tfx_quantize_param), so the
   * blob is never held in the bound format (issue #17). Returns >= 0, or -1
   * with a message. */
  int (*plan_formats)(void *ctx, tfx_graph *g, tfx_quant_target *plan, char *err, size_t errlen);
  void *plan_ctx;
} tfx_bind_options;

/* tfx_weights_bind_renamed with options (NULL: the defaults, every check on):
 * each slot read from a file is checked for non-finite values. */
int tfx_weights_bind_opts(tfx_graph *g, const char *spec, const char *format, const tfx_wrename *rules, int n_rules,
                          const tfx_bind_options *opts, tfx_weights *out, tfx_bind_error_fn on_error, void *ctx);

/* Cross-checks a llama2c file's header against the program g implies
 * (weights_header.c): each field that disagrees is reported through fn
 * (at the param or attention concerned, or -1) naming the field, the file's
 * value and the program's. Returns the number of errors (0 for other formats). */
int tfx_wfile_check_llama2c(const tfx_graph *g, const tfx_wfile *f, const tfx_wrename *rules, int n_rules,
                            tfx_bind_error_fn fn, void *ctx);

/* Copies a message for display: control bytes and bytes that are no part
 * of a valid UTF-8 sequence (tensor names are the file's bytes) become
 * \xNN; valid UTF-8 is kept. Truncates to outlen. */
void tfx_wfile_escape(const char *in, char *out, size_t outlen);

/* The non-finite values of one bound slot. */
typedef struct tfx_nonfinite {
  int64_t count;     /* non-finite elements, or block scales for a block format */
  int64_t index;     /* the first one's element (a block's first element), -1: none */
  const char *kind;  /* "NaN", "inf", "-inf" */
  int block;         /* elements per block when a block scale is non-finite, else 0 */
  const char *scale; /* that scale's name ("d", "dmin") */
} tfx_nonfinite;

/* Scans the data of a slot of type t (f32, f16, bf16 or a block format):
 * 1 when it holds non-finite values (*out describes them), 0 when it holds
 * none, -1 when the format cannot be checked. One linear pass. */
int tfx_weights_find_nonfinite(const tfx_type *t, const uint8_t *data, tfx_nonfinite *out);
/* "3 non-finite values; the first, NaN, at element 37 (row 4, column 5)" */
void tfx_weights_nonfinite_message(const tfx_type *t, const tfx_nonfinite *nf, char *buf, size_t len);

/* Decodes to f32, in place, every bound PARAM whose format keep(dtype)
 * refuses (a storage format the code generator cannot read yet), rebuilding
 * the blob (64-byte aligned slots, in node order). Returns the number of
 * params decoded, or -1 with a message. */
int tfx_weights_widen(tfx_graph *g, tfx_weights *w, int (*keep)(tfx_dtype dt), char *err, size_t errlen);

#endif
