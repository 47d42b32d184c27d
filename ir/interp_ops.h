/* ir/interp_ops.h — private to ir/: the interpreter's per-op entries, one per
 * distinct token of the interp column of ir/ops.h (tfx_interp_op_<token>),
 * declared from the table; ir/interp.c dispatches through a table built
 * from the same column. Defined in ir/interp.c, ir/interp_ffn.c,
 * ir/interp_fused.c and ir/recurrent.c. */
#ifndef TFX_IR_INTERP_OPS_H
#define TFX_IR_INTERP_OPS_H

#include "ir.h"

/* One node's evaluation: computes nd into y (sized for its type with T = n);
 * val[i] is the value of node i; pos the session's position (0 without a KV
 * cache); kc/vc the node's KV cache (NULL unless it owns one). */
typedef struct tfx_interp_call {
  const tfx_graph *g;
  const tfx_node *nd;
  void *const *val;
  float *y;
  int64_t n, pos;
  float *kc, *vc;
  char *err;
  size_t errlen;
} tfx_interp_call;

/* The activation quantization of the int8 linears (tfx_node_act_quant), emulated
 * in place on one row of K values: each whole block of TFX_ACT_QBLOCK becomes
 * q * d (tfx_act_quant_block); per_token (w8a8): the row's values with one
 * scale (tfx_act_quant_token). */
void tfx_interp_act_quant_row(float *x, int64_t K, int per_token);

typedef int (*tfx_interp_fn)(const tfx_interp_call *c);

/* the same token may serve several ops (binary, unary): declared once each,
 * redundant declarations are fine in C */
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  int tfx_interp_op_##interp(const tfx_interp_call *c);
#include "ops.h"
#undef TFX_OP

#endif
