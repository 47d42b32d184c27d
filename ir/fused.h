/* ir/fused.h — private to ir/: the fused forms' checks, use rules and
 * interpretation of the optimizer's ops (NORM_STATS,
 * FUSED_LINEAR, SLICE, CONCAT, PACK) and of packed PARAMs (ir/fused.c,
 * ir/interp_fused.c). */
#ifndef TFX_IR_FUSED_H
#define TFX_IR_FUSED_H

#include "ir.h"

/* The optimizer's operands and attributes of EMBEDDING, MOE_ROUTE (with the
 * router), MOE_UP and MOE_DOWN, after the base checks of their inference in
 * graph.c (a[i]: the type of operand i; *out: the base result type):
 * operand count, shapes, attribute ranges. The optimizer's own ops' type
 * inference, attribute checks and printers are the tfx_infer_, tfx_check_
 * and tfx_print_ functions their rows name (ir/op_fns.h). */
int tfx_fused_embedding_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                              char *err, size_t errlen);
int tfx_fused_moe_route_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                              char *err, size_t errlen);
int tfx_fused_moe_up_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                           char *err, size_t errlen);
int tfx_fused_moe_down_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                             char *err, size_t errlen);
/* Rules that need the consumers: planar outputs only read by SLICE, packed
 * weights only read as the weight of a FUSED_LINEAR with the same segments,
 * neither being the graph output. */
int tfx_fused_check_uses(const tfx_graph *g, char *err, size_t errlen);
/* ", router, prologue = rmsnorm, ..." of a MOE op into buf ("" when plain). */
void tfx_fused_moe_attrs(const tfx_node *n, char *buf, size_t len);

/* The activation of kind `kind` (tfx_act_kind) in double. */
double tfx_interp_act(int kind, double v);

#endif
