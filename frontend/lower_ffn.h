/* frontend/lower_ffn.h — lowering of the FFN-variant builtins that expand to
 * several IR nodes: activations by name, glu(...) and moe(...). Private to
 * frontend/ (called from lower.c). */
#ifndef TFX_FE_LOWER_FFN_H
#define TFX_FE_LOWER_FFN_H

#include <stddef.h>

#include "../ir/ir.h"

/* Node ids of operands are earlier nodes of g; -1 marks an absent optional
 * one. Every function returns the id of the result, or -1 with a message in
 * err (the caller reports it at line:col, which the new nodes record). */

/* act(x) for act in sigmoid, relu, gelu, gelu_tanh, silu; x itself for none. */
int tfx_fe_lower_act(tfx_graph *g, int x, const char *act, int line, int col, char *err, size_t errlen);

/* act(linear(x, w1[, b1])) * linear(x, w3[, b3]) */
int tfx_fe_lower_glu(tfx_graph *g, int x, int w1, int w3, int b1, int b3, const char *act, int line, int col, char *err,
                     size_t errlen);

typedef struct tfx_fe_moe_spec {
  int x, router, w1, w2, w3;           /* w3 -1: experts act(x W1^T) W2^T */
  int shared_w1, shared_w2, shared_w3; /* shared experts, -1 when absent */
  int top_k, experts;                  /* experts 0: not given (checked when given) */
  const char *act;                     /* as tfx_fe_lower_act */
  const char *gate;                    /* softmax_topk | softmax */
  double capacity;                     /* 0: no capacity limit */
  int line, col;
} tfx_fe_moe_spec;

/* router logits = linear(x, router); route = moe_route(logits); the experts
 * moe_down(act(moe_up(x, route, w1)) * moe_up(x, route, w3), route, w2); plus
 * linear(glu(x, shared_w1, shared_w3, act), shared_w2) with shared experts. */
int tfx_fe_lower_moe(tfx_graph *g, const tfx_fe_moe_spec *s, char *err, size_t errlen);

#endif
