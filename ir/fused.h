/* ir/fused.h — private to ir/: type inference, attribute checks, use rules,
 * printing and interpretation of the optimizer's ops (NORM_STATS,
 * FUSED_LINEAR, SLICE, CONCAT, PACK) and of packed PARAMs (ir/fused.c,
 * ir/interp_fused.c). */
#ifndef TFX_IR_FUSED_H
#define TFX_IR_FUSED_H

#include "ir.h"

/* a[i] is the type of operand i (already range-checked). */
int tfx_fused_infer(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                    size_t errlen);
/* The optimizer's operands and attributes of EMBEDDING, MOE_ROUTE (with the
 * router), MOE_UP and MOE_DOWN, after the base checks of graph.c (*out is
 * the base result type): operand count, shapes, attribute ranges. */
int tfx_fused_infer_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                          char *err, size_t errlen);
/* Attribute ranges of one node (also a PARAM's layout); 0 or -1 with a message. */
int tfx_fused_check_attrs(const tfx_node *n, char *err, size_t errlen);
/* Rules that need the consumers: planar outputs only read by SLICE, packed
 * weights only read as the weight of a FUSED_LINEAR with the same segments,
 * neither being the graph output. */
int tfx_fused_check_uses(const tfx_graph *g, char *err, size_t errlen);
/* " {...}" for the owned ops, packed params and the fused forms of
 * EMBEDDING, MOE_UP and MOE_DOWN; nothing otherwise. */
void tfx_fused_print_attrs(const tfx_node *n, FILE *out);
/* ", router, prologue = rmsnorm, ..." of a MOE op into buf ("" when plain). */
void tfx_fused_moe_attrs(const tfx_node *n, char *buf, size_t len);

/* The activation of kind `kind` (tfx_act_kind) in double. */
double tfx_interp_act(int kind, double v);

#endif
