/* ir/op_fns.h — private to ir/: the functions the ir/ columns of the op table
 * (ir/ops.h) name, declared from the table, one per distinct token:
 *   tfx_infer_<infer>  type inference; tfx_infer_type (ir/graph.c) does the
 *                      common work (the row's arity, the operands' types a[])
 *                      and dispatches here. Defined in ir/graph.c,
 *                      ir/attention.c and, for the optimizer's ops, ir/fused.c.
 *   tfx_check_<check>  the verifier's attribute checks beyond inference
 *                      (ir/verify.c dispatches; "none" checks nothing); 0, or
 *                      -1 with a message (the verifier adds "%id (op): ").
 *   tfx_print_<print>  " {attr = value, ...}" of a node in the IR's text, or
 *                      nothing (ir/print.c dispatches; "attrs" is the generic
 *                      printer of the row's attributes, ir/print.c).
 * The same token may serve several ops: declared once each, redundant
 * declarations are fine in C. */
#ifndef TFX_IR_OP_FNS_H
#define TFX_IR_OP_FNS_H

#include "ir.h"

#include <stdio.h>

typedef int (*tfx_infer_fn)(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                            size_t errlen);
typedef int (*tfx_check_fn)(const tfx_node *n, char *err, size_t errlen);
typedef void (*tfx_print_fn)(const tfx_node *n, FILE *out);

#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  int tfx_infer_##infer(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,     \
                        size_t errlen);                                                                                \
  int tfx_check_##check(const tfx_node *n, char *err, size_t errlen);                                                  \
  void tfx_print_##print(const tfx_node *n, FILE *out);
#include "ops.h"
#undef TFX_OP

#endif
