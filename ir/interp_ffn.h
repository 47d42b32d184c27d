/* ir/interp_ffn.h — private to ir/: the reference implementations of the FFN
 * variant, position and mixture-of-experts ops (ir/interp_ffn.c), called by
 * the interpreter's dispatch in ir/interp.c. */
#ifndef TFX_IR_INTERP_FFN_H
#define TFX_IR_INTERP_FFN_H

#include "ir.h"

/* 1 when op is one of SIGMOID, POSITIONS, SINUSOIDAL, MOE_ROUTE, MOE_UP,
 * MOE_DOWN. */
int tfx_interp_ffn_handles(tfx_op op);
/* Computes node nd into y (sized for its type with T = n); val[i] is the
 * value of node i; pos is the position of the call's first row (the
 * interpreter passes 0 for graphs without a causal attention, as the runtime
 * does). 0, or -1 with a message. */
int tfx_interp_ffn_eval(const tfx_graph *g, const tfx_node *nd, void *const *val, float *y, int64_t n, int64_t pos,
                        char *err, size_t errlen);

#endif
