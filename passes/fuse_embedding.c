/* passes/fuse_embedding.c — the embedding's epilogue: an EMBEDDING e whose
 * only use is one of (repeatedly, in this order of the epilogue)
 *   e + positions(table, _)      -> positions = table   (no positions, row or norm yet)
 *   e + sinusoidal(_)            -> positions = sinusoidal (base)
 *   e + r, r a row [D]           -> row (e the left operand; no row or norm yet)
 *   rmsnorm(e, g) / layernorm(e, g, b) -> norm (no norm yet)
 * absorbs it (the positions or sinusoidal node may read e itself: it only
 * gives T and D): one kernel item computes a token's whole row —
 * table row, + position row, + row, then the norm of the finished row in
 * place — so the [T, D] intermediates are never written and read back.
 * Additions keep the source's order (positions, then the row; the epilogue
 * order of ir.h), so the values are the same f32 sums; a row added before
 * the positions stops the chain there. The norm's statistics are those of
 * the norm op. fuse_norm may then make the embedding write the statistics
 * of its rows for the first pre-norm (stats_out). */
#include "rewrite.h"

/* Uses of e other than node `other`'s operand slots (which die with it). */
static int uses_besides(const tfx_rw *rw, int e, int other) {
  int k = rw->uses[e];
  if (other < 0) return k;
  const tfx_node *o = &rw->g->nodes[other];
  for (int j = 0; j < o->n_inputs; j++) k -= o->inputs[j] == e;
  return k;
}

/* The single consumer of e (counted once), or -1. */
static int only_consumer(const tfx_graph *g, int e, int from) {
  int found = -1;
  for (int i = from; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j] == e) {
        if (found >= 0 && found != i) return -2; /* a second consumer */
        found = i;
      }
  }
  return found;
}

/* Tries to absorb e's consumer; 1 when it did, 0 when not, -1 on error. */
static int absorb(tfx_rw *rw, int e, char *err, size_t errlen) {
  tfx_graph *g = rw->g;
  const tfx_node *en = &g->nodes[e];
  if (e == g->output) return 0;
  /* the consumer: the add (or norm); a positions / sinusoidal node reading e
   * for its shape is an operand of that add */
  int u = -1;
  for (int i = e + 1; i < g->n_nodes && u < 0; i++) {
    const tfx_node *n = &g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j] == e && n->op != TFX_OP_SINUSOIDAL && n->op != TFX_OP_POSITIONS) u = i;
  }
  if (u < 0) return 0;
  const tfx_node *un = &g->nodes[u];
  tfx_fused fx = en->fx;
  int in[TFX_MAX_INPUTS], k = 0;
  for (int j = 0; j < en->n_inputs; j++) in[k++] = en->inputs[j];
  double theta = en->theta, eps = en->eps;
  int pos_node = -1;
  if (un->op == TFX_OP_ADD) {
    int side = un->inputs[0] == e ? 0 : 1, other = un->inputs[1 - side];
    const tfx_node *on = &g->nodes[other];
    if (other == e) return 0;
    if ((on->op == TFX_OP_POSITIONS || on->op == TFX_OP_SINUSOIDAL) && tfx_type_equal(&on->type, &en->type) &&
        !on->pos_offset && !on->pad_skip && (on->op != TFX_OP_POSITIONS || on->n_inputs == 2)) {
      /* the fused table read has no offset nor segment ids */
      if (fx.pos_add || fx.has_bias || fx.norm || uses_besides(rw, e, other) != 1 || rw->uses[other] != 1 ||
          only_consumer(g, other, other + 1) != u)
        return 0;
      pos_node = other;
      if (on->op == TFX_OP_POSITIONS) {
        fx.pos_add = TFX_EMB_POS_TABLE;
        /* the table goes before the row and norm operands (there are none yet) */
        in[k++] = on->inputs[0];
      } else {
        fx.pos_add = TFX_EMB_POS_SINUSOIDAL;
        theta = on->theta;
      }
    } else if (side == 0 && on->type.rank == 1 && on->type.dims[0] == tfx_node_cols(en)) {
      if (fx.has_bias || fx.norm || rw->uses[e] != 1) return 0;
      fx.has_bias = 1;
      in[k++] = other;
    } else {
      return 0;
    }
  } else if (un->op == TFX_OP_RMSNORM || un->op == TFX_OP_LAYERNORM) {
    if (fx.norm || un->inputs[0] != e || rw->uses[e] != 1 || un->heads > 0) return 0;
    for (int j = 1; j < un->n_inputs; j++)
      if (un->inputs[j] == e) return 0;
    fx.norm = un->op == TFX_OP_LAYERNORM ? TFX_NORM_LAYER : TFX_NORM_RMS;
    eps = un->eps;
    for (int j = 1; j < un->n_inputs; j++) in[k++] = un->inputs[j];
  } else {
    return 0;
  }
  tfx_node *nd = &g->nodes[e];
  double old_theta = nd->theta, old_eps = nd->eps;
  nd->theta = theta;
  nd->eps = eps;
  if (tfx_rw_set_node(rw, e, &fx, k, in, err, errlen)) {
    nd = &g->nodes[e];
    nd->theta = old_theta;
    nd->eps = old_eps;
    return -1;
  }
  rw->key[e] = rw->key[u];
  tfx_rw_replace_uses(rw, u, e);
  tfx_rw_detach(rw, u);
  if (pos_node >= 0) tfx_rw_detach(rw, pos_node); /* absorbed with the add */
  return 1;
}

int tfx_pass_fuse_embedding(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes;
  for (int i = 0; i < nn; i++) {
    if (g->nodes[i].op != TFX_OP_EMBEDDING) continue;
    int r;
    while ((r = absorb(&rw, i, c->err, c->errlen)) == 1) {
    }
    if (r < 0) {
      tfx_rw_abort(&rw);
      return -1;
    }
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
