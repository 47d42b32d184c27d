/* passes/fuse_moe.c — the mixture-of-experts kernels absorb their
 * neighbours (single-use values only, never the graph output):
 *   moe_route(linear(x, router))        -> moe_route(x, router) {router}: the
 *       route kernel computes each token's E logits itself (no bias);
 *   act(moe_up(x, r, w1))               -> moe_up {act}
 *   moe_up{act}(x, r, w1) * moe_up(x, r, w3) (either order; without an act
 *       the left operand is the gate) -> moe_up(x, r, w1, w3) {act, glu}: one
 *       kernel computes both projections of each routed (token, slot) and
 *       writes act(gate) * up, so the two [T, k * hidden] projections are
 *       never written;
 *   moe_down(h, r, w2) + res (either order, res of its shape)
 *                                        -> moe_down(h, r, w2, res) {residual}.
 * The values are the same: the activation and the product act on the f32
 * projections, and the residual and the weighted expert outputs are one f32
 * sum (the kernel starts it from the residual, so it may run in place over
 * it: the order of the float additions is the kernel's). fuse_norm
 * then moves the FFN norm into the route's and moe_up's prologues and the
 * next norm's statistics into moe_down's epilogue. */
#include "rewrite.h"

static int single(const tfx_rw *rw, int id) { return rw->uses[id] == 1 && id != rw->g->output; }

/* A plain MOE_UP (no act, GLU, prologue) whose value only `id`'s consumer reads. */
static int plain_up(const tfx_rw *rw, int id, int allow_act) {
  const tfx_node *n = &rw->g->nodes[id];
  return n->op == TFX_OP_MOE_UP && single(rw, id) && !n->fx.glu && !n->fx.norm && (allow_act || !n->fx.act);
}

static int fuse_router(tfx_rw *rw, int i, char *err, size_t errlen) {
  const tfx_node *n = &rw->g->nodes[i];
  int l = n->inputs[0];
  const tfx_node *ln = &rw->g->nodes[l];
  if (n->fx.router || ln->op != TFX_OP_LINEAR || ln->n_inputs != 2 || !single(rw, l)) return 0;
  tfx_fused fx = n->fx;
  fx.router = 1;
  int in[2] = {ln->inputs[0], ln->inputs[1]};
  if (tfx_rw_set_node(rw, i, &fx, 2, in, err, errlen)) return -1;
  tfx_rw_detach(rw, l);
  return 1;
}

static int fuse_act(tfx_rw *rw, int i, char *err, size_t errlen) {
  const tfx_node *n = &rw->g->nodes[i];
  int u = n->inputs[0];
  if (!plain_up(rw, u, 0)) return 0;
  tfx_fused fx = rw->g->nodes[u].fx;
  fx.act = tfx_rw_act_kind(n);
  const tfx_node *un = &rw->g->nodes[u];
  int in[TFX_MAX_INPUTS];
  for (int j = 0; j < un->n_inputs; j++) in[j] = un->inputs[j];
  if (tfx_rw_set_node(rw, u, &fx, un->n_inputs, in, err, errlen)) return -1;
  rw->key[u] = rw->key[i];
  tfx_rw_replace_uses(rw, i, u);
  tfx_rw_detach(rw, i);
  return 1;
}

static int fuse_glu(tfx_rw *rw, int i, char *err, size_t errlen) {
  const tfx_graph *g = rw->g;
  const tfx_node *n = &g->nodes[i];
  int a = n->inputs[0], b = n->inputs[1];
  if (a == b || !plain_up(rw, a, 1) || !plain_up(rw, b, 1)) return 0;
  if (g->nodes[b].fx.act && g->nodes[a].fx.act) return 0;
  int gate = g->nodes[b].fx.act ? b : a, up = gate == a ? b : a;
  const tfx_node *gn = &g->nodes[gate], *un = &g->nodes[up];
  if (gn->inputs[0] != un->inputs[0] || gn->inputs[1] != un->inputs[1] ||
      !tfx_type_equal(&g->nodes[gn->inputs[2]].type, &g->nodes[un->inputs[2]].type))
    return 0;
  tfx_fused fx = gn->fx;
  fx.glu = 1;
  int in[4] = {gn->inputs[0], gn->inputs[1], gn->inputs[2], un->inputs[2]};
  if (tfx_rw_set_node(rw, gate, &fx, 4, in, err, errlen)) return -1;
  rw->key[gate] = rw->key[i];
  tfx_rw_replace_uses(rw, i, gate);
  tfx_rw_detach(rw, i);
  tfx_rw_detach(rw, up);
  return 1;
}

static int fuse_residual(tfx_rw *rw, int i, char *err, size_t errlen) {
  const tfx_graph *g = rw->g;
  const tfx_node *n = &g->nodes[i];
  for (int side = 0; side < 2; side++) {
    int d = n->inputs[side], r = n->inputs[1 - side];
    const tfx_node *dn = &g->nodes[d];
    if (dn->op != TFX_OP_MOE_DOWN || dn->fx.residual || !single(rw, d) || r == d ||
        !tfx_type_equal(&g->nodes[r].type, &dn->type))
      continue;
    tfx_fused fx = dn->fx;
    fx.residual = 1;
    int in[4] = {dn->inputs[0], dn->inputs[1], dn->inputs[2], r};
    if (tfx_rw_set_node(rw, d, &fx, 4, in, err, errlen)) return -1;
    rw->key[d] = rw->key[i];
    tfx_rw_replace_uses(rw, i, d);
    tfx_rw_detach(rw, i);
    return 1;
  }
  return 0;
}

int tfx_pass_fuse_moe(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes, rc = 0;
  for (int i = 0; i < nn && rc >= 0; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->n_inputs == 0) continue; /* detached */
    if (n->op == TFX_OP_MOE_ROUTE)
      rc = fuse_router(&rw, i, c->err, c->errlen);
    else if (tfx_rw_is_act(n->op))
      rc = fuse_act(&rw, i, c->err, c->errlen);
    else if (n->op == TFX_OP_MUL)
      rc = fuse_glu(&rw, i, c->err, c->errlen);
    else if (n->op == TFX_OP_ADD)
      rc = fuse_residual(&rw, i, c->err, c->errlen);
  }
  if (rc < 0) {
    tfx_rw_abort(&rw);
    return -1;
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
