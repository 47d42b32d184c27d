/* ir/ir.h — the typed dataflow graph: dtypes, tensor types with the one dynamic
 * dimension T, ops with their attributes, the graph and its builder, type
 * inference, the verifier, the text printer and the reference interpreter.
 *
 * This layer knows nothing of LLVM, of the .tfx syntax or of the runtime. */
#ifndef TFX_IR_H
#define TFX_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TFX_MAX_RANK 4
#define TFX_MAX_INPUTS 4
#define TFX_DIM_T (-1) /* the dynamic token dimension, 1 <= T <= max_seq */

typedef enum { TFX_DT_F32, TFX_DT_I32, TFX_DT_COUNT } tfx_dtype;

typedef struct {
  tfx_dtype dtype;
  int rank;
  int64_t dims[TFX_MAX_RANK]; /* a dim is > 0, or TFX_DIM_T */
} tfx_type;

typedef enum {
  TFX_OP_INPUT,     /* the graph input: tokens i32[T] or activations f32[T, D] */
  TFX_OP_PARAM,     /* a weight tensor in the weights blob; name, weight_offset */
  TFX_OP_EMBEDDING, /* (table f32[V, D], ids i32[T]) -> f32[T, D] */
  TFX_OP_LINEAR,    /* (x[M, K], w[N, K] [, b[N]]) -> [M, N] = x @ w^T + b */
  TFX_OP_MATMUL,    /* (a[M, K], b[K, N]) -> [M, N] */
  TFX_OP_ADD,       /* (a[M, N], b[M, N] or b[N]) -> [M, N]; b[N] broadcasts over rows */
  TFX_OP_SUB,
  TFX_OP_MUL,
  TFX_OP_RMSNORM,   /* (x[M, N], g[N]) eps -> x / sqrt(mean(x^2) + eps) * g */
  TFX_OP_LAYERNORM, /* (x[M, N], g[N], b[N]) eps -> (x - mean) / sqrt(var + eps) * g + b */
  TFX_OP_SILU,      /* x * sigmoid(x) */
  TFX_OP_GELU,      /* gelu_tanh selects the tanh form, else the erf form */
  TFX_OP_RELU,
  TFX_OP_SOFTMAX,   /* over the last dimension */
  TFX_OP_ROPE,      /* (x[T, heads * head_dim]) rotated by angle (pos + t) * theta^(-2i/rotary_dim) */
  TFX_OP_ATTENTION, /* (q[T, H*d], k[T, G*d], v[T, G*d]) -> [T, H*d]; see below */
  TFX_OP_COUNT
} tfx_op;

typedef enum { TFX_ROPE_INTERLEAVED, TFX_ROPE_HALF } tfx_rope_style;
typedef enum { TFX_MASK_NONE, TFX_MASK_CAUSAL } tfx_mask_kind;

/* One node = one op = one value (%id). Attributes are plain fields; an op reads
 * only those its comment in tfx_op names. */
typedef struct tfx_node {
  int id;
  tfx_op op;
  tfx_type type; /* the result type */
  int n_inputs;
  int inputs[TFX_MAX_INPUTS]; /* ids of earlier nodes */

  char *name; /* PARAM: binding name ("layers.0.wq"); INPUT: "tokens"/"x"; else NULL */

  /* attributes */
  double eps;        /* RMSNORM, LAYERNORM */
  int gelu_tanh;     /* GELU */
  int heads;         /* ROPE, ATTENTION: query heads H */
  int kv_heads;      /* ATTENTION: key/value heads G (H % G == 0) */
  int head_dim;      /* ROPE, ATTENTION: d */
  int rotary_dim;    /* ROPE: dims of each head rotated (even, <= head_dim) */
  double theta;      /* ROPE: base */
  tfx_rope_style rope_style;
  tfx_mask_kind mask; /* ATTENTION */
  /* ATTENTION with mask CAUSAL keeps K and V in the session's KV cache: each
   * forward call stores its T rows at positions pos..pos+T-1 and query t
   * attends keys 0..pos+t. With mask NONE it attends the T keys of this call
   * and keeps nothing. Scale is 1/sqrt(head_dim); query head h uses KV head
   * h / (H / G). */

  /* filled by binding and planning */
  int64_t weight_offset; /* PARAM: byte offset in the weights blob, -1 unbound */
  int64_t kv_offset;     /* ATTENTION (causal): byte offset of its K cache
                            [max_seq, G*d] f32; V cache follows at + kv_bytes/2
                            of this node, i.e. kv_offset + max_seq*G*d*4 */
  int64_t arena_offset;  /* intermediate values: byte offset in the arena, -1 unplanned */

  int line, col; /* source location that produced it, 0 if none */
} tfx_node;

typedef struct tfx_schedule {
  int threads; /* 0 = auto */
} tfx_schedule;

typedef struct tfx_graph {
  char *name;
  int n_nodes, cap;
  tfx_node *nodes; /* topological order: inputs of node i are < i */
  int input;       /* id of the INPUT node, -1 if none yet */
  int output;      /* id of the returned value, -1 if none yet */
  int64_t max_seq; /* upper bound of T */
  tfx_schedule schedule;

  /* results of planning (passes/) */
  int64_t arena_bytes;   /* 0 until planned */
  int64_t kv_bytes;      /* total KV cache bytes */
  int64_t weights_bytes; /* size of the bound weights blob */
} tfx_graph;

/* ---- types ---- */
const char *tfx_dtype_name(tfx_dtype dt);
int64_t tfx_dtype_size(tfx_dtype dt);
tfx_type tfx_type_make(tfx_dtype dt, int rank, const int64_t *dims);
int tfx_type_equal(const tfx_type *a, const tfx_type *b);
int tfx_type_has_t(const tfx_type *t);
/* number of elements / bytes with T bound to `t_value` */
int64_t tfx_type_numel(const tfx_type *t, int64_t t_value);
int64_t tfx_type_bytes(const tfx_type *t, int64_t t_value);
/* "f32[T, 64]"; returns buf */
char *tfx_type_str(const tfx_type *t, char *buf, size_t len);

/* ---- graph and builder ---- */
tfx_graph *tfx_graph_new(const char *name, int64_t max_seq);
void tfx_graph_free(tfx_graph *g);
const char *tfx_op_name(tfx_op op);
/* Appends a node with its attributes taken from *proto (op, inputs, attrs;
 * id/type are ignored), infers the result type and returns the new id. On a
 * type error returns -1 and writes a message naming both shapes to err. */
int tfx_graph_add(tfx_graph *g, const tfx_node *proto, char *err, size_t errlen);
int tfx_graph_add_input(tfx_graph *g, const char *name, tfx_type type);
int tfx_graph_add_param(tfx_graph *g, const char *name, tfx_type type);
tfx_node tfx_node_proto(tfx_op op, int n_inputs, const int *inputs);
/* Infers node->type from its inputs; 0 on success, -1 with a message. */
int tfx_infer_type(const tfx_graph *g, const tfx_node *n, tfx_type *out, char *err, size_t errlen);
/* Number of floats of one row of a value (its last dim) and number of rows
 * with T bound to t_value. */
int64_t tfx_node_cols(const tfx_node *n);
int64_t tfx_node_rows(const tfx_node *n, int64_t t_value);

/* ---- verifier (ir/verify.c) ---- */
/* 0 if g is well formed (topological order, input arity, types equal the
 * inferred ones, attributes in range, params bound when require_bound);
 * otherwise -1 and a message "%id (op): what is wrong". */
int tfx_verify(const tfx_graph *g, int require_bound, char *err, size_t errlen);

/* ---- printer (ir/print.c) ---- */
void tfx_print_graph(const tfx_graph *g, FILE *out);

/* ---- reference interpreter (ir/interp.c) ---- */
typedef struct tfx_interp tfx_interp;
/* weights: the bound blob (param data at node->weight_offset). */
tfx_interp *tfx_interp_new(const tfx_graph *g, const uint8_t *weights);
/* Runs one forward over n tokens (or n rows of f32 input) at the session's
 * position, appending to its KV cache; out receives [n, out_cols] floats. */
int tfx_interp_forward(tfx_interp *it, const void *input, int64_t n, float *out, char *err, size_t errlen);
void tfx_interp_reset(tfx_interp *it);
void tfx_interp_free(tfx_interp *it);

#endif
