/* passes/fuse_norm.c — norm into the prologue of its linears: an RMSNORM or
 * LAYERNORM of x[M, K] whose every use is as the x operand of a linear
 * (LINEAR or FUSED_LINEAR without a prologue) is replaced by one NORM_STATS
 * of x (per row: mean and 1/sqrt(var + eps), computed once per row) and, in
 * each of those linears, a prologue that normalizes x's row as it is loaded
 * ((x - mean) * inv * gain [+ bias]). The normalized tensor is never
 * written. When x itself comes from a fused linear (the residual stream of
 * a pre-norm block), that kernel's epilogue writes the row statistics in
 * parts (per 8 output columns) and the NORM_STATS launches nothing: the
 * prologues combine the parts. A norm with any other kind of use (a
 * residual add, an activation, the graph output, ...) stays as it is. */
#include <stdlib.h>

#include "rewrite.h"

int tfx_pass_fuse_norm(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int *start = NULL, *list = NULL, nn = g->n_nodes, rc = 0;
  if (tfx_rw_consumers(g, &start, &list)) {
    tfx_rw_abort(&rw);
    return tfx_pass_errf(c->err, c->errlen, "fuse_norm: out of memory");
  }
  for (int i = 0; i < nn && rc == 0; i++) {
    const tfx_node *n = &g->nodes[i];
    if ((n->op != TFX_OP_RMSNORM && n->op != TFX_OP_LAYERNORM) || i == g->output || start[i] == start[i + 1]) continue;
    const tfx_node *x = &g->nodes[n->inputs[0]];
    if (x->type.rank != 2) continue;
    int ok = 1;
    for (int k = start[i]; k < start[i + 1] && ok; k++) {
      const tfx_node *u = &g->nodes[list[k]];
      ok = (u->op == TFX_OP_LINEAR || (u->op == TFX_OP_FUSED_LINEAR && u->fx.norm == TFX_NORM_NONE)) &&
           u->inputs[0] == i;
      for (int j = 1; j < u->n_inputs && ok; j++) ok = u->inputs[j] != i;
    }
    if (!ok) continue;
    int layer = n->op == TFX_OP_LAYERNORM;
    tfx_node s = tfx_node_proto(TFX_OP_NORM_STATS, 1, &n->inputs[0]);
    s.fx.norm = layer ? TFX_NORM_LAYER : TFX_NORM_RMS;
    s.eps = n->eps;
    s.line = n->line, s.col = n->col;
    /* x made by a fused linear (a residual add, typically): its epilogue
     * writes the partial statistics, so no kernel of its own */
    tfx_node *p = &g->nodes[n->inputs[0]];
    int from_epilogue = p->op == TFX_OP_FUSED_LINEAR && !tfx_fl_planar(p) && !p->fx.stats_out && p->id != g->output;
    if (from_epilogue) {
      s.fx.index = 1;
      p->fx.stats_out = s.fx.norm;
    }
    int st = tfx_rw_add(&rw, &s, rw.key[i], c->err, c->errlen);
    if (st < 0) {
      rc = -1;
      break;
    }
    n = &g->nodes[i];
    int xin = n->inputs[0], gain = n->inputs[1], nbias = layer ? n->inputs[2] : -1;
    for (int k = start[i]; k < start[i + 1] && rc == 0; k++) {
      int u = list[k];
      if (g->nodes[u].inputs[0] != i) continue; /* already rewritten (listed twice) */
      if (tfx_rw_to_fused(&rw, u, c->err, c->errlen)) {
        rc = -1;
        break;
      }
      const tfx_node *un = &g->nodes[u];
      int bias = un->fx.has_bias ? un->inputs[tfx_fl_operand(un, TFX_FL_BIAS)] : -1;
      int res = un->fx.residual ? un->inputs[tfx_fl_operand(un, TFX_FL_RESIDUAL)] : -1;
      rc = tfx_rw_fl_operands(&rw, u, xin, un->inputs[1], bias, st, gain, nbias, res, c->err, c->errlen);
    }
  }
  free(start);
  free(list);
  if (rc) {
    tfx_rw_abort(&rw);
    return -1;
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
