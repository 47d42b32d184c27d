/* ir/verify.c — the graph verifier: structure (ids, topological order, arity),
 * types equal to what inference gives, attribute ranges (the check column of
 * ir/ops.h: tfx_check_<token>, the core ops' here), the input/output
 * contract of the ABI, and, when asked, bound parameters and consistent
 * planning results. Messages read "%<id> (<op>): <what is wrong>". */
#include "fused.h"
#include "ir.h"
#include "op_fns.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

static int vfail(char *err, size_t errlen, const tfx_node *n, const char *fmt, ...) {
  if (err && errlen) {
    size_t used = 0;
    if (n) {
      int k = snprintf(err, errlen, "%%%d (%s): ", n->id, tfx_op_name(n->op));
      used = k > 0 ? (size_t)k : 0;
      if (used >= errlen) return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + used, errlen - used, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int check_type_shape(const tfx_node *n, char *err, size_t errlen) {
  if (n->type.rank < 1 || n->type.rank > TFX_MAX_RANK)
    return vfail(err, errlen, n, "rank %d is out of range 1..%d", n->type.rank, TFX_MAX_RANK);
  if (n->type.dtype < 0 || n->type.dtype >= TFX_DT_COUNT) return vfail(err, errlen, n, "unknown dtype");
  const tfx_dtype_info *f = tfx_dtype_info_of(n->type.dtype);
  if (f->storage && n->op != TFX_OP_PARAM && n->op != TFX_OP_PACK && n->op != TFX_OP_CONCAT)
    return vfail(err, errlen, n, "only weights are stored as %s", f->name);
  if (f->block > 1 && (n->type.dims[n->type.rank - 1] == TFX_DIM_T || n->type.dims[n->type.rank - 1] % f->block))
    return vfail(err, errlen, n, "%s stores blocks of %d elements; the last dimension %lld is not a multiple", f->name,
                 f->block, (long long)n->type.dims[n->type.rank - 1]);
  for (int d = 0; d < n->type.rank; d++)
    if (n->type.dims[d] <= 0 && n->type.dims[d] != TFX_DIM_T)
      return vfail(err, errlen, n, "dimension %d is %lld; dims must be > 0 or T", d, (long long)n->type.dims[d]);
  return 0;
}

/* ---- the check column of ir/ops.h: attribute ranges beyond inference ---- */

int tfx_check_none(const tfx_node *n, char *err, size_t errlen) {
  (void)n, (void)err, (void)errlen;
  return 0;
}

/* RMSNORM, LAYERNORM */
int tfx_check_norm(const tfx_node *n, char *err, size_t errlen) {
  if (!(n->eps >= 0) || !isfinite(n->eps)) return tfx_errf(err, errlen, "eps = %g must be finite and >= 0", n->eps);
  if (n->heads == 1 || n->heads < 0)
    return tfx_errf(err, errlen, "heads = %d must be 0 (the whole row) or >= 2 (per head)", n->heads);
  return 0;
}

int tfx_check_affine(const tfx_node *n, char *err, size_t errlen) {
  if (!isfinite(n->scale) || !isfinite(n->shift)) return tfx_errf(err, errlen, "scale and shift must be finite");
  return 0;
}

int tfx_check_col_slice(const tfx_node *n, char *err, size_t errlen) {
  if (n->col_lo < 0 || n->col_lo >= n->col_hi)
    return tfx_errf(err, errlen, "columns %d:%d: expected 0 <= lo < hi", n->col_lo, n->col_hi);
  return 0;
}

int tfx_check_softcap(const tfx_node *n, char *err, size_t errlen) {
  if (!(n->softcap > 0) || !isfinite(n->softcap))
    return tfx_errf(err, errlen, "softcap = %g must be finite and > 0", n->softcap);
  return 0;
}

int tfx_check_gelu(const tfx_node *n, char *err, size_t errlen) {
  if (n->gelu_tanh != 0 && n->gelu_tanh != 1) return tfx_errf(err, errlen, "gelu_tanh must be 0 or 1");
  return 0;
}

int tfx_check_rope(const tfx_node *n, char *err, size_t errlen) {
  if (n->rope_style != TFX_ROPE_INTERLEAVED && n->rope_style != TFX_ROPE_HALF)
    return tfx_errf(err, errlen, "unknown rope style %d", (int)n->rope_style);
  if (!isfinite(n->theta)) return tfx_errf(err, errlen, "theta must be finite");
  return 0;
}

int tfx_check_sinusoidal(const tfx_node *n, char *err, size_t errlen) {
  if (!isfinite(n->theta)) return tfx_errf(err, errlen, "base must be finite");
  return 0;
}

int tfx_check_moe_route(const tfx_node *n, char *err, size_t errlen) {
  if (n->moe_gate != TFX_MOE_GATE_SOFTMAX_TOPK && n->moe_gate != TFX_MOE_GATE_SOFTMAX)
    return tfx_errf(err, errlen, "unknown gate kind %d", (int)n->moe_gate);
  if (!isfinite(n->capacity)) return tfx_errf(err, errlen, "capacity must be finite");
  return 0;
}

static const tfx_check_fn check_fns[TFX_OP_COUNT] = {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  [TFX_OP_##NAME] = tfx_check_##check,
#include "ops.h"
#undef TFX_OP
};

static int check_planning(const tfx_graph *g, const tfx_node *n, char *err, size_t errlen) {
  if (n->arena_offset >= 0) {
    if (n->op == TFX_OP_INPUT || n->op == TFX_OP_PARAM || n->id == g->output)
      return vfail(err, errlen, n, "has an arena slot but is an input, a param or the output");
    int64_t bytes = tfx_type_bytes(&n->type, g->max_seq);
    if (n->arena_offset % 64 || n->arena_offset + bytes > g->arena_bytes)
      return vfail(err, errlen, n, "arena slot +%lld (%lld bytes) is unaligned or outside the arena of %lld bytes",
                   (long long)n->arena_offset, (long long)bytes, (long long)g->arena_bytes);
  }
  if (n->kv_offset >= 0 && n->src_cached == TFX_SRC_KEPT) { /* the source cache (passes/cache_source.c) */
    int64_t bytes = tfx_node_slot_bytes(g, n, g->max_seq);
    if (n->arena_offset >= 0 || n->kv_offset < 64 || n->kv_offset % 64 || n->kv_offset + bytes > g->src_cache_bytes ||
        g->src_cache_bytes > g->kv_bytes)
      return vfail(err, errlen, n,
                   "source cache slot +%lld (%lld bytes) is unaligned or outside the cache of %lld bytes",
                   (long long)n->kv_offset, (long long)bytes, (long long)g->src_cache_bytes);
  } else if (n->kv_offset >= 0) {
    int64_t bytes = tfx_node_kv_bytes(n, g->max_seq);
    if (bytes <= 0) return vfail(err, errlen, n, "has a KV cache slot but is not a causal attention");
    if (n->kv_offset % 64 || n->kv_offset + bytes > g->kv_bytes)
      return vfail(err, errlen, n, "KV slot +%lld (%lld bytes) is unaligned or outside the KV cache of %lld bytes",
                   (long long)n->kv_offset, (long long)bytes, (long long)g->kv_bytes);
  }
  return 0;
}

int tfx_verify(const tfx_graph *g, int require_bound, char *err, size_t errlen) {
  char s0[64], s1[64], msg[200];
  if (!g) return vfail(err, errlen, NULL, "no graph");
  if (g->n_nodes < 0 || (g->n_nodes > 0 && !g->nodes)) return vfail(err, errlen, NULL, "graph has no node array");
  if (g->max_seq < 1) return vfail(err, errlen, NULL, "max_seq = %lld must be >= 1", (long long)g->max_seq);
  if (g->rows_mask < 0 ||
      (g->rows_mask > 0 && (g->rows_mask != g->n_fwd_inputs - 1 || g->rows_mask < 1 ||
                            g->fwd_inputs[g->rows_mask] < 0 || g->fwd_inputs[g->rows_mask] >= g->n_nodes)))
    return vfail(err, errlen, NULL, "row mask index %d is not the last of %d inputs", g->rows_mask, g->n_fwd_inputs);
  int n_input = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->id != i) return vfail(err, errlen, NULL, "node at index %d has id %d", i, n->id);
    if (n->op < 0 || n->op >= TFX_OP_COUNT) return vfail(err, errlen, n, "unknown op %d", (int)n->op);
    if (n->n_inputs < 0 || n->n_inputs > TFX_MAX_INPUTS)
      return vfail(err, errlen, n, "%d operands (at most %d)", n->n_inputs, TFX_MAX_INPUTS);
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j] < 0 || n->inputs[j] >= i)
        return vfail(err, errlen, n, "operand %d is %%%d; operands must be earlier nodes", j, n->inputs[j]);
    if (check_type_shape(n, err, errlen)) return -1;
    tfx_type t;
    if (tfx_infer_type(g, n, &t, msg, sizeof msg)) return vfail(err, errlen, n, "%s", msg);
    if (!tfx_type_equal(&t, &n->type))
      return vfail(err, errlen, n, "type is %s but its operands give %s", tfx_type_str(&n->type, s0, sizeof s0),
                   tfx_type_str(&t, s1, sizeof s1));
    if (check_fns[n->op](n, msg, sizeof msg)) return vfail(err, errlen, n, "%s", msg); /* ir/ops.h */

    if (n->op == TFX_OP_INPUT) {
      int k = 0;
      while (k < g->n_fwd_inputs && g->fwd_inputs[k] != i) k++;
      if (g->n_fwd_inputs < 1 || g->n_fwd_inputs > TFX_MAX_FWD_INPUTS || k == g->n_fwd_inputs)
        return vfail(err, errlen, n, "an input that is not in the graph's input list");
      if (k > 0 && n_input == 0) return vfail(err, errlen, n, "an extra input before the first input");
      n_input++;
      if (k == 0 && g->input != i) return vfail(err, errlen, n, "is the input but g->input is %d", g->input);
      int tok = n->type.dtype == TFX_DT_I32 && n->type.rank == 1 && n->type.dims[0] == TFX_DIM_T;
      int act = n->type.dtype == TFX_DT_F32 && n->type.rank == 2 && n->type.dims[0] == TFX_DIM_T &&
                n->type.dims[1] != TFX_DIM_T;
      int row = n->type.dtype == TFX_DT_F32 && n->type.rank == 1 && n->type.dims[0] == TFX_DIM_T;
      /* a source (static rows N: the call gives 1..N of them) or its hidden row mask */
      int src =
          (n->type.dtype == TFX_DT_F32 || n->type.dtype == TFX_DT_I32) && n->type.rank == 1 && n->type.dims[0] > 0;
      if (k > 0 && g->rows_mask > 0 && k == g->rows_mask &&
          (k != g->n_fwd_inputs - 1 || n->type.dtype != TFX_DT_I32 || !src))
        return vfail(err, errlen, n, "the row mask must be the last input, i32[N]");
      if (k > 0 && src && g->rows_mask <= 0)
        return vfail(err, errlen, n, "an input of static rows (a source) without the graph's row mask");
      if (k > 0 && src && n->type.dims[0] != g->nodes[g->fwd_inputs[g->rows_mask]].type.dims[0])
        return vfail(err, errlen, n, "a source of %lld rows and a row mask of %lld", (long long)n->type.dims[0],
                     (long long)g->nodes[g->fwd_inputs[g->rows_mask]].type.dims[0]);
      row = row || src;
      if (k == 0 && !tok && !act)
        return vfail(err, errlen, n, "input must be i32[T] or f32[T, D], got %s",
                     tfx_type_str(&n->type, s0, sizeof s0));
      if (k > 0 && !tok && !row)
        return vfail(err, errlen, n, "an extra input must be i32[T] or f32[T] (or a source i32[N] / f32[N]), got %s",
                     tfx_type_str(&n->type, s0, sizeof s0));
    }
    if (n->op == TFX_OP_PARAM) {
      if (!n->name || !n->name[0]) return vfail(err, errlen, n, "param has no name");
      if (!tfx_dtype_weight_ok(n->type.dtype) || tfx_type_has_t(&n->type))
        return vfail(err, errlen, n, "param '%s' must be f32 (or a weight format) with static dims, got %s", n->name,
                     tfx_type_str(&n->type, s0, sizeof s0));
      if (require_bound) {
        int64_t bytes = tfx_type_bytes(&n->type, 1);
        if (n->weight_offset < 0) return vfail(err, errlen, n, "param '%s' is not bound to weights", n->name);
        if (n->weight_offset % 64)
          return vfail(err, errlen, n, "param '%s' weight offset %lld is not 64-byte aligned", n->name,
                       (long long)n->weight_offset);
        if (n->weight_offset > g->weights_bytes || bytes > g->weights_bytes - n->weight_offset)
          return vfail(err, errlen, n, "param '%s' (%lld bytes at +%lld) lies outside the weights blob of %lld bytes",
                       n->name, (long long)bytes, (long long)n->weight_offset, (long long)g->weights_bytes);
      }
    } else if (n->op != TFX_OP_INPUT && n->type.rank >= 1) {
      for (int d = 1; d < n->type.rank; d++)
        if (n->type.dims[d] == TFX_DIM_T)
          return vfail(err, errlen, n, "T may only be the first dimension, got %s",
                       tfx_type_str(&n->type, s0, sizeof s0));
    }
    if (check_planning(g, n, err, errlen)) return -1;
  }
  if (n_input < 1 || n_input != g->n_fwd_inputs || g->input < 0 || g->input >= g->n_nodes ||
      g->fwd_inputs[0] != g->input)
    return vfail(err, errlen, NULL, "graph '%s' has no input", g->name ? g->name : "?");
  if (g->output < 0 || g->output >= g->n_nodes)
    return vfail(err, errlen, NULL, "graph '%s' has no output (output = %d)", g->name ? g->name : "?", g->output);
  const tfx_node *o = &g->nodes[g->output];
  if (o->type.dtype != TFX_DT_F32 || o->type.dims[0] != TFX_DIM_T)
    return vfail(err, errlen, o, "the output must be f32[T, ...], got %s", tfx_type_str(&o->type, s0, sizeof s0));
  if (tfx_fused_check_uses(g, err, errlen)) return -1;
  return 0;
}
