/* passes/pack_weights.c — weight layout: the weight of every fused_linear
 * that is a parameter (or a concatenation of parameters) used by that node
 * alone is replaced by PACK(w) {panel, kc = the target's layout (the pass
 * context's `pack`: 32 and 1 on every current target), segs = the node's
 * segments}: each segment's rows in panels of `panel` rows (the output
 * columns one kernel item computes), K-major inside the panel (kc = 1: for
 * each k, the panel's weights are contiguous: what the micro-kernel's outer
 * products load), so an item streams its weights from one contiguous block
 * (segments with half-split RoPE in the pair order the kernel computes).
 * fold_weights computes the packed data at compile time. A weight whose other uses are all
 * embedding lookups (a tied embedding table read by the classifier) is packed
 * too when the linear has one segment: the embedding kernel reads rows of the
 * packed table. A weight with any other use stays row-major; the linear
 * kernel reads both layouts. Block formats and i8 stay row-major. */
#include <stdlib.h>

#include "rewrite.h"

/* 1 when every use of w other than the fused linear fl (one segment, no
 * pair order) is the table operand of an embedding. */
static int shared_with_embeddings_only(const tfx_graph *g, const tfx_rw *rw, const int *start, const int *list, int w,
                                       int fl) {
  const tfx_node *n = &g->nodes[fl];
  if (n->fx.n_segs > 1 || tfx_fl_perm(n) || rw->uses[w] != start[w + 1] - start[w] || w == g->output) return 0;
  int fl_uses = 0;
  for (int u = start[w]; u < start[w + 1]; u++) {
    const tfx_node *c = &g->nodes[list[u]];
    if (list[u] == fl)
      fl_uses++;
    else if (c->op != TFX_OP_EMBEDDING || c->inputs[0] != w)
      return 0;
    else
      for (int j = 1; j < c->n_inputs; j++)
        if (c->inputs[j] == w) return 0; /* only as the table */
  }
  return fl_uses == 1;
}

int tfx_pass_pack_weights(tfx_pass_ctx *c) {
  if (!c->weight_transforms) return 0;
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int *start = NULL, *list = NULL;
  if (tfx_rw_consumers(g, &start, &list)) {
    tfx_rw_abort(&rw);
    return tfx_errf(c->err, c->errlen, "pack_weights: out of memory");
  }
  int nn = g->n_nodes;
  for (int i = 0; i < nn; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_FUSED_LINEAR) continue;
    int w = n->inputs[1];
    const tfx_node *wn = &g->nodes[w];
    int constant = wn->op == TFX_OP_PARAM || wn->op == TFX_OP_CONCAT;
    /* a block format has no packed layout yet (tfx_dtype_info): it stays row-major */
    if (!constant || wn->fx.panel || tfx_dtype_info_of(wn->type.dtype)->block != 1) continue;
    /* i8 (w8a8) neither: the int8 kernel (k_linear_q8.c) reads its rows as stored */
    if (wn->type.dtype == TFX_DT_I8) continue;
    int shared = rw.uses[w] != 1;
    if (shared && !shared_with_embeddings_only(g, &rw, start, list, w, i)) continue;
    tfx_node p = tfx_node_proto(TFX_OP_PACK, 1, &w);
    p.fx.panel = c->pack.panel;
    p.fx.kc = c->pack.kc;
    p.fx.n_segs = n->fx.n_segs;
    for (int s = 0; s < n->fx.n_segs; s++) p.fx.segs[s] = n->fx.segs[s];
    p.fx.perm = tfx_fl_perm(n); /* half-RoPE segments: rows in pair order */
    if (p.fx.perm) {
      p.fx.perm_hd = n->head_dim;
      p.fx.perm_rd = n->rotary_dim;
    }
    /* before its first use (a shared table: before the embeddings) */
    int pk = tfx_rw_add(&rw, &p, shared ? rw.key[w] + 0.5 : rw.key[i] - 0.25, c->err, c->errlen);
    if (pk < 0) goto fail;
    if (shared) {
      tfx_rw_replace_uses(&rw, w, pk); /* the embeddings and the linear */
      continue;
    }
    int in[TFX_MAX_INPUTS];
    n = &g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++) in[j] = n->inputs[j];
    in[1] = pk;
    if (tfx_rw_set_inputs(&rw, i, n->n_inputs, in, c->err, c->errlen)) goto fail;
  }
  free(start);
  free(list);
  return tfx_rw_commit(&rw, c->err, c->errlen);
fail:
  free(start);
  free(list);
  tfx_rw_abort(&rw);
  return -1;
}
