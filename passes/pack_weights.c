/* passes/pack_weights.c — weight layout: the weight of every fused_linear
 * that is a parameter (or a concatenation of parameters) used by that node
 * alone is replaced by PACK(w) {panel = 32, kc = 1, segs = the node's
 * segments}: each segment's rows in panels of 32 (the output columns one
 * kernel item computes), K-major inside the panel (for each k, the panel's 32
 * weights are contiguous: what the micro-kernel's outer products load), so an
 * item streams its weights from one contiguous block (segments with
 * half-split RoPE in the pair order the kernel computes). fold_weights computes
 * the packed data at compile time. A weight shared with other uses (a tied
 * embedding table) stays row-major; the kernel reads both layouts. */
#include "rewrite.h"

int tfx_pass_pack_weights(tfx_pass_ctx *c) {
  if (!c->weight_transforms) return 0;
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes;
  for (int i = 0; i < nn; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_FUSED_LINEAR) continue;
    int w = n->inputs[1];
    const tfx_node *wn = &g->nodes[w];
    int constant = wn->op == TFX_OP_PARAM || wn->op == TFX_OP_CONCAT;
    if (!constant || wn->fx.panel || rw.uses[w] != 1) continue;
    tfx_node p = tfx_node_proto(TFX_OP_PACK, 1, &w);
    p.fx.panel = TFX_PACK_PANEL;
    p.fx.kc = TFX_PACK_KC;
    p.fx.n_segs = n->fx.n_segs;
    for (int s = 0; s < n->fx.n_segs; s++) p.fx.segs[s] = n->fx.segs[s];
    p.fx.perm = tfx_fl_perm(n); /* half-RoPE segments: rows in pair order */
    if (p.fx.perm) {
      p.fx.perm_hd = n->head_dim;
      p.fx.perm_rd = n->rotary_dim;
    }
    int pk = tfx_rw_add(&rw, &p, rw.key[i] - 0.25, c->err, c->errlen);
    if (pk < 0) {
      tfx_rw_abort(&rw);
      return -1;
    }
    int in[TFX_MAX_INPUTS];
    n = &g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++) in[j] = n->inputs[j];
    in[1] = pk;
    if (tfx_rw_set_inputs(&rw, i, n->n_inputs, in, c->err, c->errlen)) {
      tfx_rw_abort(&rw);
      return -1;
    }
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
