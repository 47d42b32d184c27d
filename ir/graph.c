/* ir/graph.c — tensor types, the graph builder and type inference:
 * tfx_infer_type is the one entry point that says which shapes an op accepts
 * and what it produces; it does the common work (arity from the op's row,
 * the operands' types) and dispatches through the infer column of ir/ops.h
 * to tfx_infer_<token>: the core ops' are here, ATTENTION's and
 * MLA_ATTENTION's in ir/attention.c, the optimizer's ops' in ir/fused.c
 * (which also checks the operands fusion adds to EMBEDDING and the MoE ops). */
#include "fused.h"
#include "ir.h"
#include "op_fns.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

tfx_type tfx_type_make(tfx_dtype dt, int rank, const int64_t *dims) {
  tfx_type t;
  memset(&t, 0, sizeof t);
  t.dtype = dt;
  t.rank = rank;
  for (int i = 0; i < rank && i < TFX_MAX_RANK; i++) t.dims[i] = dims[i];
  return t;
}

int tfx_type_equal(const tfx_type *a, const tfx_type *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return 0;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

int tfx_type_has_t(const tfx_type *t) {
  for (int i = 0; i < t->rank; i++)
    if (t->dims[i] == TFX_DIM_T) return 1;
  return 0;
}

int64_t tfx_type_numel(const tfx_type *t, int64_t t_value) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dims[i] == TFX_DIM_T ? t_value : t->dims[i];
  return n;
}

char *tfx_type_str(const tfx_type *t, char *buf, size_t len) {
  size_t used = (size_t)snprintf(buf, len, "%s[", tfx_dtype_name(t->dtype));
  for (int i = 0; i < t->rank && used < len; i++) {
    if (t->dims[i] == TFX_DIM_T)
      used += (size_t)snprintf(buf + used, len - used, "%sT", i ? ", " : "");
    else
      used += (size_t)snprintf(buf + used, len - used, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
  }
  if (used < len) snprintf(buf + used, len - used, "]");
  return buf;
}

int64_t tfx_node_cols(const tfx_node *n) { return n->type.rank ? n->type.dims[n->type.rank - 1] : 1; }

int64_t tfx_node_rows(const tfx_node *n, int64_t t_value) {
  int64_t cols = tfx_node_cols(n);
  return cols > 0 ? tfx_type_numel(&n->type, t_value) / cols : 0;
}

tfx_graph *tfx_graph_new(const char *name, int64_t max_seq) {
  tfx_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->name = strdup(name ? name : "model");
  g->input = -1;
  g->output = -1;
  g->max_seq = max_seq;
  g->bos_id = g->eos_id = g->pad_id = -1;
  return g;
}

void tfx_graph_free(tfx_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_nodes; i++) free(g->nodes[i].name);
  tfx_graph_free_quant(g);
  free(g->nodes);
  free(g->name);
  free(g->symbol_name);
  free(g->tokenizer);
  free(g->tokenizer_path);
  free(g);
}

int tfx_graph_set_tokenizer(tfx_graph *g, const void *data, int64_t bytes) {
  if (!g || bytes < 0 || (bytes > 0 && !data)) return -1;
  uint8_t *copy = bytes > 0 ? malloc((size_t)bytes) : NULL;
  if (bytes > 0 && !copy) return -1;
  if (bytes > 0) memcpy(copy, data, (size_t)bytes);
  free(g->tokenizer);
  g->tokenizer = copy;
  g->tokenizer_bytes = bytes;
  return 0;
}

int tfx_errf(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

tfx_node tfx_node_proto(tfx_op op, int n_inputs, const int *inputs) {
  tfx_node n;
  memset(&n, 0, sizeof n);
  n.op = op;
  n.n_inputs = n_inputs;
  for (int i = 0; i < n_inputs && i < TFX_MAX_INPUTS; i++) n.inputs[i] = inputs[i];
  n.weight_offset = -1;
  n.kv_offset = -1;
  n.arena_offset = -1;
  n.work_offset = -1;
  return n;
}

static int is_f32_rank(const tfx_type *t, int rank) { return t->dtype == TFX_DT_F32 && t->rank == rank; }
/* a weight operand: f32 or a storage format (tfx_dtype_weight_ok) */
static int is_w_rank(const tfx_type *t, int rank) { return tfx_dtype_weight_ok(t->dtype) && t->rank == rank; }

/* ---- type inference: the infer column of ir/ops.h ---- */

static const tfx_infer_fn infer_fns[TFX_OP_COUNT] = {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  [TFX_OP_##NAME] = tfx_infer_##infer,
#include "ops.h"
#undef TFX_OP
};

int tfx_infer_type(const tfx_graph *g, const tfx_node *n, tfx_type *out, char *err, size_t errlen) {
  const char *on = tfx_op_name(n->op);
  int lo, hi;
  if (n->op < 0 || n->op >= TFX_OP_COUNT) return tfx_errf(err, errlen, "unknown op %d", (int)n->op);
  lo = tfx_op_info(n->op)->min_inputs; /* ir/ops.h */
  hi = tfx_op_info(n->op)->max_inputs;
  if (n->n_inputs < lo || n->n_inputs > hi) {
    if (lo == hi)
      return tfx_errf(err, errlen, "%s takes %d operand%s, got %d", on, lo, lo == 1 ? "" : "s", n->n_inputs);
    return tfx_errf(err, errlen, "%s takes %d to %d operands, got %d", on, lo, hi, n->n_inputs);
  }
  const tfx_type *a[TFX_MAX_INPUTS] = {0};
  for (int i = 0; i < n->n_inputs; i++) {
    if (n->inputs[i] < 0 || n->inputs[i] >= g->n_nodes)
      return tfx_errf(err, errlen, "%s: operand %d refers to a missing value", on, i);
    a[i] = &g->nodes[n->inputs[i]].type;
  }
  return infer_fns[n->op](g, n, a, out, err, errlen);
}

/* INPUT, PARAM: the type they were given */
int tfx_infer_source(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                     size_t errlen) {
  (void)g, (void)a, (void)err, (void)errlen;
  *out = n->type;
  return 0;
}

int tfx_infer_embedding(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                        size_t errlen) {
  char s0[64], s1[64];
  if (!is_w_rank(a[0], 2) || tfx_type_has_t(a[0]))
    return tfx_errf(err, errlen, "embedding table must be f32[V, D], got %s", tfx_type_str(a[0], s0, sizeof s0));
  if (a[1]->dtype != TFX_DT_I32 || a[1]->rank != 1)
    return tfx_errf(err, errlen, "embedding ids must be i32[T], got %s", tfx_type_str(a[1], s1, sizeof s1));
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a[1]->dims[0], a[0]->dims[1]});
  return tfx_fused_embedding_extra(g, n, a, out, err, errlen);
}

int tfx_infer_linear(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                     size_t errlen) {
  (void)g;
  char s0[64], s1[64], s2[64];
  if (!is_f32_rank(a[0], 2) || !is_w_rank(a[1], 2) || tfx_type_has_t(a[1]))
    return tfx_errf(err, errlen, "linear expects x : f32[M, K] and w : f32[N, K], got %s and %s",
                    tfx_type_str(a[0], s0, sizeof s0), tfx_type_str(a[1], s1, sizeof s1));
  if (a[0]->dims[1] != a[1]->dims[1])
    return tfx_errf(err, errlen, "linear: x is %s but w is %s (w is [out, in]; in must equal x's last dim)",
                    tfx_type_str(a[0], s0, sizeof s0), tfx_type_str(a[1], s1, sizeof s1));
  if (n->n_inputs == 3 && (!is_f32_rank(a[2], 1) || a[2]->dims[0] != a[1]->dims[0]))
    return tfx_errf(err, errlen, "linear: bias is %s, expected f32[%lld] for w %s", tfx_type_str(a[2], s2, sizeof s2),
                    (long long)a[1]->dims[0], tfx_type_str(a[1], s1, sizeof s1));
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a[0]->dims[0], a[1]->dims[0]});
  return 0;
}

int tfx_infer_matmul(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                     size_t errlen) {
  (void)g, (void)n;
  char s0[64], s1[64];
  if (!is_f32_rank(a[0], 2) || !is_w_rank(a[1], 2) || a[0]->dims[1] != a[1]->dims[0] || a[0]->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "matmul expects a : f32[M, K] and b : f32[K, N] with static K, got %s and %s",
                    tfx_type_str(a[0], s0, sizeof s0), tfx_type_str(a[1], s1, sizeof s1));
  if (a[1]->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "matmul: the columns of b (%s) cannot be T", tfx_type_str(a[1], s1, sizeof s1));
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a[0]->dims[0], a[1]->dims[1]});
  return 0;
}

/* SEQ_PROJECT: e f32[k, n] static with n >= max_seq, x f32[T, C] */
int tfx_infer_seq_project(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                          size_t errlen) {
  (void)n;
  char s0[64], s1[64];
  if (!is_f32_rank(a[0], 2) || tfx_type_has_t(a[0]) || !is_f32_rank(a[1], 2) || a[1]->dims[0] != TFX_DIM_T ||
      a[1]->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "seq_project expects e : f32[k, n] and x : f32[T, C], got %s and %s",
                    tfx_type_str(a[0], s0, sizeof s0), tfx_type_str(a[1], s1, sizeof s1));
  if (a[0]->dims[1] < g->max_seq)
    return tfx_errf(err, errlen, "seq_project: e is %s, needs at least max_seq = %lld columns (one per position)",
                    tfx_type_str(a[0], s0, sizeof s0), (long long)g->max_seq);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a[0]->dims[0], a[1]->dims[1]});
  return 0;
}

/* ADD, SUB, MUL: equal shapes, or the right operand one row */
int tfx_infer_binary(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                     size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  const char *on = tfx_op_name(n->op);
  if (a[0]->dtype != TFX_DT_F32 || a[1]->dtype != TFX_DT_F32 || a[0]->rank < 1)
    return tfx_errf(err, errlen, "%s expects f32 operands, got %s and %s", on, tfx_type_str(a[0], s0, sizeof s0),
                    tfx_type_str(a[1], s1, sizeof s1));
  int64_t last = a[0]->dims[a[0]->rank - 1];
  if (tfx_type_equal(a[0], a[1]) || (a[1]->rank == 1 && a[1]->dims[0] == last && last != TFX_DIM_T) ||
      (a[1]->rank == 2 && a[0]->rank >= 2 && a[1]->dims[0] == 1 && a[1]->dims[1] == last && last != TFX_DIM_T)) {
    *out = *a[0];
    return 0;
  }
  return tfx_errf(
      err, errlen, "%s: shapes %s and %s do not match (the right operand may also be one row [%s] or [1, %s])", on,
      tfx_type_str(a[0], s0, sizeof s0), tfx_type_str(a[1], s1, sizeof s1),
      a[0]->dims[a[0]->rank - 1] == TFX_DIM_T ? "T" : "N", a[0]->dims[a[0]->rank - 1] == TFX_DIM_T ? "T" : "N");
}

/* RMSNORM (x, gain), LAYERNORM (x, gain, bias) */
int tfx_infer_norm(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                   size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  const char *on = tfx_op_name(n->op);
  if (a[0]->dtype != TFX_DT_F32 || a[0]->rank < 1 || a[0]->dims[a[0]->rank - 1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "%s expects x : f32[..., N], got %s", on, tfx_type_str(a[0], s0, sizeof s0));
  int64_t N = a[0]->dims[a[0]->rank - 1];
  if (n->heads < 0 || (n->heads > 0 && N % n->heads))
    return tfx_errf(err, errlen, "%s: heads = %d does not divide the %lld columns of x", on, n->heads, (long long)N);
  if (n->heads > 0) N /= n->heads; /* per-head norm: groups of N / heads columns */
  for (int i = 1; i < n->n_inputs; i++)
    if (!is_f32_rank(a[i], 1) || a[i]->dims[0] != N)
      return tfx_errf(err, errlen, "%s: %s is %s, expected f32[%lld] to match x %s%s", on, i == 1 ? "gain" : "bias",
                      tfx_type_str(a[i], s1, sizeof s1), (long long)N, tfx_type_str(a[0], s0, sizeof s0),
                      n->heads > 0 ? " per head" : "");
  if (!(n->eps >= 0)) return tfx_errf(err, errlen, "%s: eps must be >= 0", on);
  *out = *a[0];
  return 0;
}

/* SILU, GELU, RELU, SIGMOID: any f32 tensor, the same type */
int tfx_infer_unary(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                    size_t errlen) {
  (void)g;
  char s0[64];
  if (a[0]->dtype != TFX_DT_F32 || a[0]->rank < 1)
    return tfx_errf(err, errlen, "%s expects an f32 tensor, got %s", tfx_op_name(n->op),
                    tfx_type_str(a[0], s0, sizeof s0));
  *out = *a[0];
  return 0;
}

/* COL_SLICE: x f32[..., N] -> f32[..., hi - lo], 0 <= lo < hi <= N */
int tfx_infer_col_slice(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                        size_t errlen) {
  (void)g;
  char s0[64];
  int64_t cols = a[0]->rank >= 1 ? a[0]->dims[a[0]->rank - 1] : 0;
  if (a[0]->dtype != TFX_DT_F32 || a[0]->rank < 1 || cols <= 0)
    return tfx_errf(err, errlen, "col_slice expects an f32 tensor with a static last dimension, got %s",
                    tfx_type_str(a[0], s0, sizeof s0));
  if (n->col_lo < 0 || n->col_lo >= n->col_hi || n->col_hi > cols)
    return tfx_errf(err, errlen, "col_slice: columns %d:%d are not a range of %s (0 <= lo < hi <= %lld)", n->col_lo,
                    n->col_hi, tfx_type_str(a[0], s0, sizeof s0), (long long)cols);
  *out = *a[0];
  out->dims[out->rank - 1] = n->col_hi - n->col_lo;
  return 0;
}

/* CONCAT_COLS: f32[..., N0], f32[..., N1], ... (the same leading dims) -> f32[..., N0 + N1 + ...] */
int tfx_infer_concat_cols(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                          size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  int64_t cols = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    const tfx_type *t = a[i];
    int same = t->dtype == TFX_DT_F32 && t->rank == a[0]->rank && t->rank >= 1 && t->dims[t->rank - 1] > 0;
    for (int d = 0; same && d + 1 < t->rank; d++) same = t->dims[d] == a[0]->dims[d];
    if (!same)
      return tfx_errf(err, errlen,
                      "concat: operand %d is %s; every operand must be f32 with the leading dimensions of "
                      "operand 0 (%s) and a static last one",
                      i, tfx_type_str(t, s1, sizeof s1), tfx_type_str(a[0], s0, sizeof s0));
    cols += t->dims[t->rank - 1];
  }
  if (cols > INT32_MAX) return tfx_errf(err, errlen, "concat: %lld columns are too many", (long long)cols);
  *out = *a[0];
  out->dims[out->rank - 1] = cols;
  return 0;
}

int tfx_infer_softmax(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                      size_t errlen) {
  char s0[64];
  if (tfx_infer_unary(g, n, a, out, err, errlen)) return -1;
  if (a[0]->dims[a[0]->rank - 1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "softmax over a dimension of size T is not supported (%s)",
                    tfx_type_str(a[0], s0, sizeof s0));
  return 0;
}

int tfx_infer_rope(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                   size_t errlen) {
  (void)g;
  char s0[64];
  if (!is_f32_rank(a[0], 2) || a[0]->dims[0] != TFX_DIM_T)
    return tfx_errf(err, errlen, "rope expects f32[T, heads * head_dim], got %s", tfx_type_str(a[0], s0, sizeof s0));
  if (n->heads <= 0 || n->head_dim <= 0 || (int64_t)n->heads * n->head_dim != a[0]->dims[1])
    return tfx_errf(err, errlen, "rope: %d heads of %d do not tile %s", n->heads, n->head_dim,
                    tfx_type_str(a[0], s0, sizeof s0));
  if (n->rotary_dim <= 0 || n->rotary_dim > n->head_dim || n->rotary_dim % 2)
    return tfx_errf(err, errlen, "rope: rotary_dim %d must be even and in 2..%d", n->rotary_dim, n->head_dim);
  if (!(n->theta > 0)) return tfx_errf(err, errlen, "rope: theta must be > 0");
  if (n->n_inputs == 2 && (a[1]->dtype != TFX_DT_I32 || a[1]->rank != 1 || a[1]->dims[0] != TFX_DIM_T))
    return tfx_errf(err, errlen, "rope: the segment ids are %s, expected i32[T] (one id per row)",
                    tfx_type_str(a[1], s0, sizeof s0));
  *out = *a[0];
  return 0;
}

int tfx_infer_positions(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                        size_t errlen) {
  char s0[64], s1[64];
  if (!is_f32_rank(a[0], 2) || tfx_type_has_t(a[0]))
    return tfx_errf(err, errlen, "positions: table must be f32[max_pos, D], got %s", tfx_type_str(a[0], s0, sizeof s0));
  if (a[1]->rank < 1 || a[1]->dims[0] != TFX_DIM_T ||
      (a[1]->dtype == TFX_DT_F32 && (a[1]->rank != 2 || a[1]->dims[1] != a[0]->dims[1])))
    return tfx_errf(err, errlen, "positions: x must be i32[T] or f32[T, %lld] to match the table %s, got %s",
                    (long long)a[0]->dims[1], tfx_type_str(a[0], s0, sizeof s0), tfx_type_str(a[1], s1, sizeof s1));
  if (n->pos_offset < 0) return tfx_errf(err, errlen, "positions: offset = %d must be >= 0", n->pos_offset);
  if (n->pad_skip && (a[1]->dtype != TFX_DT_I32 || a[1]->rank != 1))
    return tfx_errf(err, errlen, "positions: pad = %d needs x to be the token ids i32[T], got %s", n->pad_id,
                    tfx_type_str(a[1], s1, sizeof s1));
  if (n->pad_skip && n->pos_offset < 1)
    return tfx_errf(
        err, errlen,
        "positions: pad = %d needs offset >= 1 (pad tokens read row offset - 1, Hugging Face's padding_idx)",
        n->pad_id);
  if (n->pad_skip && n->n_inputs == 3) return tfx_errf(err, errlen, "positions: pad and segments cannot be combined");
  if (n->n_inputs == 3 && (a[2]->dtype != TFX_DT_I32 || a[2]->rank != 1 || a[2]->dims[0] != TFX_DIM_T))
    return tfx_errf(err, errlen, "positions: the segment ids are %s, expected i32[T] (one id per row)",
                    tfx_type_str(a[2], s0, sizeof s0));
  if (a[0]->dims[0] < g->max_seq + n->pos_offset)
    return tfx_errf(err, errlen,
                    "positions: the table %s has %lld rows but max_seq is %lld%s (need max_pos >= max_seq + offset)",
                    tfx_type_str(a[0], s0, sizeof s0), (long long)a[0]->dims[0], (long long)g->max_seq,
                    n->pos_offset ? " and the offset > 0" : "");
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, a[0]->dims[1]});
  return 0;
}

int tfx_infer_sinusoidal(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                         size_t errlen) {
  (void)g;
  char s0[64];
  if (!is_f32_rank(a[0], 2) || a[0]->dims[0] != TFX_DIM_T || a[0]->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "sinusoidal expects x : f32[T, D], got %s", tfx_type_str(a[0], s0, sizeof s0));
  if (!(n->theta > 0)) return tfx_errf(err, errlen, "sinusoidal: base must be > 0");
  *out = *a[0];
  return 0;
}

int tfx_infer_moe_route(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                        size_t errlen) {
  char s0[64], s1[64];
  if (!is_f32_rank(a[0], 2) || a[0]->dims[0] != TFX_DIM_T || a[0]->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "moe_route expects router logits f32[T, E], got %s",
                    tfx_type_str(a[0], s0, sizeof s0));
  if (n->fx.router && (!is_w_rank(a[1], 2) || tfx_type_has_t(a[1]) || a[1]->dims[1] != a[0]->dims[1]))
    return tfx_errf(err, errlen, "moe_route: the router is %s, expected f32[E, %lld] for x %s",
                    tfx_type_str(a[1], s1, sizeof s1), (long long)a[0]->dims[1], tfx_type_str(a[0], s0, sizeof s0));
  if (!n->fx.router && n->n_inputs != 1) return tfx_errf(err, errlen, "moe_route takes 1 operand (the logits)");
  int64_t E = n->fx.router ? a[1]->dims[0] : a[0]->dims[1];
  if (n->top_k < 1 || n->top_k > E)
    return tfx_errf(err, errlen, "moe_route: top_k = %d must be in 1..%lld (the number of experts)", n->top_k,
                    (long long)E);
  if (!(n->capacity >= 0 && n->capacity <= 1e6))
    return tfx_errf(err, errlen, "moe_route: capacity = %g must be in (0, 1e6] (or 0 for none)", n->capacity);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 2 * (int64_t)n->top_k});
  return n->fx.router ? tfx_fused_moe_route_extra(g, n, a, out, err, errlen) : 0;
}

/* MOE_UP (x, route, w, ...) and MOE_DOWN (h, route, w, [residual]): the
 * common checks; `up` selects the shapes */
static int infer_moe(const tfx_node *n, const tfx_type *const *a, int up, tfx_type *out, char *err, size_t errlen) {
  char s0[64], s1[64], s2[64];
  const char *on = tfx_op_name(n->op);
  if (!is_w_rank(a[2], 3) || tfx_type_has_t(a[2]))
    return tfx_errf(err, errlen, "%s: experts' weights must be f32[E, N, K], got %s", on,
                    tfx_type_str(a[2], s2, sizeof s2));
  if (!is_f32_rank(a[1], 2) || a[1]->dims[0] != TFX_DIM_T || a[1]->dims[1] == TFX_DIM_T || a[1]->dims[1] % 2)
    return tfx_errf(err, errlen, "%s: route must be f32[T, 2k] (from moe_route), got %s", on,
                    tfx_type_str(a[1], s1, sizeof s1));
  int64_t k = a[1]->dims[1] / 2, N = a[2]->dims[1], K = a[2]->dims[2];
  if (!is_f32_rank(a[0], 2) || a[0]->dims[0] != TFX_DIM_T || a[0]->dims[1] != (up ? K : k * K))
    return tfx_errf(err, errlen, "%s: x is %s, expected f32[T, %lld] for weights %s and %lld slots", on,
                    tfx_type_str(a[0], s0, sizeof s0), (long long)(up ? K : k * K), tfx_type_str(a[2], s2, sizeof s2),
                    (long long)k);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, up ? k * N : N});
  return 0;
}

int tfx_infer_moe_up(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                     size_t errlen) {
  if (infer_moe(n, a, 1, out, err, errlen)) return -1;
  return tfx_fused_moe_up_extra(g, n, a, out, err, errlen);
}

int tfx_infer_moe_down(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                       size_t errlen) {
  if (infer_moe(n, a, 0, out, err, errlen)) return -1;
  return tfx_fused_moe_down_extra(g, n, a, out, err, errlen);
}

static int grow(tfx_graph *g) {
  if (g->n_nodes < g->cap) return 0;
  int cap = g->cap ? g->cap * 2 : 64;
  tfx_node *nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
  if (!nodes) return -1;
  g->nodes = nodes;
  g->cap = cap;
  return 0;
}

int tfx_graph_add(tfx_graph *g, const tfx_node *proto, char *err, size_t errlen) {
  tfx_type t;
  if (tfx_infer_type(g, proto, &t, err, errlen)) return -1;
  if (grow(g)) return tfx_errf(err, errlen, "out of memory");
  tfx_node *n = &g->nodes[g->n_nodes];
  *n = *proto;
  n->id = g->n_nodes;
  n->type = t;
  n->name = proto->name ? strdup(proto->name) : NULL;
  return g->n_nodes++;
}

int tfx_graph_add_input(tfx_graph *g, const char *name, tfx_type type) {
  tfx_node n = tfx_node_proto(TFX_OP_INPUT, 0, NULL);
  n.type = type;
  n.name = (char *)name;
  if (g->n_fwd_inputs >= TFX_MAX_FWD_INPUTS) return -1;
  int id = tfx_graph_add(g, &n, NULL, 0);
  if (id < 0) return id;
  if (g->input < 0) g->input = id;
  g->fwd_inputs[g->n_fwd_inputs++] = id;
  return id;
}

int tfx_graph_add_param(tfx_graph *g, const char *name, tfx_type type) {
  tfx_node n = tfx_node_proto(TFX_OP_PARAM, 0, NULL);
  n.type = type;
  n.name = (char *)name;
  return tfx_graph_add(g, &n, NULL, 0);
}

int tfx_graph_caller_inputs(const tfx_graph *g) { return g->n_fwd_inputs - (g->rows_mask > 0 ? 1 : 0); }

int tfx_graph_input_is_source(const tfx_graph *g, int k) {
  if (k <= 0 || k >= g->n_fwd_inputs || (g->rows_mask > 0 && k == g->rows_mask)) return 0;
  const tfx_type *t = &g->nodes[g->fwd_inputs[k]].type;
  return t->rank == 1 && t->dims[0] > 0;
}
