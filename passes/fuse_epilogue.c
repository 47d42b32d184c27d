/* passes/fuse_epilogue.c — the linear epilogue: every LINEAR whose weight
 * is a param (or a CONCAT / PACK of params; a weight computed at run time
 * keeps its plain LINEAR) becomes a FUSED_LINEAR, then, repeatedly, a single-use non-planar fused_linear P
 * absorbs its consumer when the result is unchanged:
 *   P + b, b a row [N]       -> bias   (P has no bias, RoPE, act, GLU, residual)
 *   act(P)                   -> act    (P has no act, GLU, residual)
 *   P + r or r + P, r [M, N] -> residual (P has no residual)
 * in the epilogue order bias, RoPE, act, GLU, residual of ir.h. The fused node
 * takes the place of the absorbed consumer. */
#include "rewrite.h"

static int absorb(tfx_rw *rw, int i, char *err, size_t errlen) {
  tfx_graph *g = rw->g;
  const tfx_node *n = &g->nodes[i];
  for (int side = 0; side < n->n_inputs && side < 2; side++) {
    int p = n->inputs[side];
    tfx_node *pn = &g->nodes[p];
    if (pn->op != TFX_OP_FUSED_LINEAR || rw->uses[p] != 1 || p == g->output || tfx_fl_planar(pn)) continue;
    const tfx_fused *fx = &pn->fx;
    int x = pn->inputs[0], w = pn->inputs[1];
    int bias = fx->has_bias ? pn->inputs[tfx_fl_operand(pn, TFX_FL_BIAS)] : -1;
    int stats = fx->norm ? pn->inputs[tfx_fl_operand(pn, TFX_FL_STATS)] : -1;
    int gain = fx->norm ? pn->inputs[tfx_fl_operand(pn, TFX_FL_GAIN)] : -1;
    int nbias = fx->norm == TFX_NORM_LAYER ? pn->inputs[tfx_fl_operand(pn, TFX_FL_NBIAS)] : -1;
    int res = -1;
    if (tfx_rw_is_act(n->op)) {
      if (fx->act != TFX_ACT_NONE || fx->glu || fx->residual) continue;
      pn->fx.act = tfx_rw_act_kind(n);
    } else if (n->op == TFX_OP_ADD) {
      int other = n->inputs[1 - side];
      const tfx_node *on = &g->nodes[other];
      if (other == p) continue;
      if (side == 0 && on->type.rank == 1 && !tfx_type_equal(&on->type, &pn->type)) {
        if (fx->has_bias || fx->rope || fx->act || fx->glu || fx->residual) continue;
        bias = other;
      } else if (tfx_type_equal(&on->type, &pn->type)) {
        if (fx->residual) continue;
        res = other;
      } else {
        continue;
      }
    } else {
      return 0;
    }
    if (res < 0 && fx->residual) res = pn->inputs[tfx_fl_operand(pn, TFX_FL_RESIDUAL)];
    if (tfx_rw_fl_operands(rw, p, x, w, bias, stats, gain, nbias, res, err, errlen)) return -1;
    rw->key[p] = rw->key[i];
    tfx_rw_replace_uses(rw, i, p);
    tfx_rw_detach(rw, i); /* P's only use is again its new consumer: the chain goes on */
    return 1;
  }
  return 0;
}

int tfx_pass_fuse_epilogue(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes;
  for (int i = 0; i < nn; i++)
    if (tfx_rw_fusable_linear(g, i) && tfx_rw_to_fused(&rw, i, c->err, c->errlen)) {
      tfx_rw_abort(&rw);
      return -1;
    }
  /* one walk in node order: a consumer is visited after its producer has
   * absorbed everything before it, so chains (bias, then act, then the
   * residual add) fold step by step */
  for (int i = 0; i < nn; i++) {
    tfx_op op = g->nodes[i].op;
    if (op != TFX_OP_ADD && !tfx_rw_is_act(op)) continue;
    if (absorb(&rw, i, c->err, c->errlen) < 0) {
      tfx_rw_abort(&rw);
      return -1;
    }
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
