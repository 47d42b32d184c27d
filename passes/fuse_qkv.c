/* passes/fuse_qkv.c — horizontal linear fusion (Q/K/V): 2 to 4 linears that
 * read the same x (all with a bias or none; weights and biases parameters
 * with no other use; weights of one format) become ONE fused_linear over concat(w_0, .., w_k) whose
 * output is PLANAR (segment i is the [M, N_i] result of linear i, stored one
 * after another), and one SLICE view per former linear (no copy: the slice
 * addresses its segment in the fused node's memory). The attention's q, k
 * and v projections are the main case; fuse_rope then moves their RoPE into
 * the epilogue. Linears that are the graph output are left alone. A group
 * ends at an attention that reads one of its members (or its rope): the
 * cross-attention K/V projections of one encoder memory in two decoder
 * layers stay two matmuls, because fusing the second layer's into the first
 * would keep its [S, 2 * d] output live across the whole first layer (the
 * arena grows by it; the saved kernel reads a few rows). */
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

static int single_param(const tfx_rw *rw, int id) {
  return rw->g->nodes[id].op == TFX_OP_PARAM && rw->uses[id] == 1 && rw->g->nodes[id].fx.panel == 0;
}

static int candidate(const tfx_rw *rw, int id) {
  const tfx_node *n = &rw->g->nodes[id];
  if (n->op != TFX_OP_LINEAR || id == rw->g->output || rw->uses[id] < 1) return 0;
  if (!single_param(rw, n->inputs[1])) return 0;
  return n->n_inputs == 2 || single_param(rw, n->inputs[2]);
}

typedef struct {
  int n, member[TFX_MAX_SEGS];
} group;

static int fuse_group(tfx_rw *rw, const group *gr, char *err, size_t errlen) {
  tfx_graph *g = rw->g;
  const tfx_node *first = &g->nodes[gr->member[0]];
  int x = first->inputs[0], has_bias = first->n_inputs == 3;
  double key = rw->key[gr->member[0]];
  int ws[TFX_MAX_SEGS] = {0}, bs[TFX_MAX_SEGS] = {0}; /* = {0}: GCC -O3 cannot see that n >= 1 */
  for (int i = 0; i < gr->n; i++) {
    ws[i] = g->nodes[gr->member[i]].inputs[1];
    bs[i] = has_bias ? g->nodes[gr->member[i]].inputs[2] : -1;
  }
  tfx_node cat = tfx_node_proto(TFX_OP_CONCAT, gr->n, ws);
  int w = tfx_rw_add(rw, &cat, key - 0.5, err, errlen), b = -1;
  if (w < 0) return -1;
  if (has_bias) {
    cat = tfx_node_proto(TFX_OP_CONCAT, gr->n, bs);
    if ((b = tfx_rw_add(rw, &cat, key - 0.5, err, errlen)) < 0) return -1;
  }
  tfx_node f = tfx_node_proto(TFX_OP_FUSED_LINEAR, has_bias ? 3 : 2, (int[]){x, w, b});
  f.fx.has_bias = has_bias;
  f.fx.n_segs = gr->n;
  for (int i = 0; i < gr->n; i++) f.fx.segs[i] = g->nodes[ws[i]].type.dims[0];
  f.line = g->nodes[gr->member[0]].line, f.col = g->nodes[gr->member[0]].col;
  int id = tfx_rw_add(rw, &f, key, err, errlen);
  if (id < 0) return -1;
  for (int i = 0; i < gr->n; i++) {
    tfx_node s = tfx_node_proto(TFX_OP_SLICE, 1, &id);
    s.fx.index = i;
    int m = gr->member[i];
    s.line = g->nodes[m].line, s.col = g->nodes[m].col;
    int sid = tfx_rw_add(rw, &s, rw->key[m], err, errlen);
    if (sid < 0) return -1;
    tfx_rw_replace_uses(rw, m, sid);
  }
  return 0;
}

int tfx_pass_fuse_qkv(tfx_pass_ctx *c) {
  if (!c->weight_transforms) return 0;
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes, ng = 0, rc = 0;
  group *groups = calloc((size_t)(nn > 0 ? nn : 1), sizeof *groups);
  int *open_of = malloc((size_t)(nn > 0 ? nn : 1) * 2 * sizeof *open_of); /* [x * 2 + has_bias] -> group */
  int *group_of = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *group_of);   /* a member's group */
  if (!groups || !open_of || !group_of) {
    free(groups);
    free(open_of);
    free(group_of);
    tfx_rw_abort(&rw);
    return tfx_errf(c->err, c->errlen, "fuse_qkv: out of memory");
  }
  for (int i = 0; i < 2 * nn; i++) open_of[i] = -1;
  for (int i = 0; i < nn; i++) group_of[i] = -1;
  for (int i = 0; i < nn; i++) {
    const tfx_node *a = &g->nodes[i];
    if (a->op == TFX_OP_ATTENTION || a->op == TFX_OP_MLA_ATTENTION) {
      /* an attention that reads members (or their rope) ends their group:
       * a later linear of the same x joining it would only live longer */
      for (int j = 0; j < a->n_inputs; j++) {
        int v = a->inputs[j];
        if (g->nodes[v].op == TFX_OP_ROPE) v = g->nodes[v].inputs[0];
        int gi = group_of[v];
        if (gi < 0) continue;
        int x = g->nodes[groups[gi].member[0]].inputs[0], slot = x * 2 + (g->nodes[groups[gi].member[0]].n_inputs == 3);
        if (open_of[slot] == gi) open_of[slot] = -1;
      }
      continue;
    }
    if (!candidate(&rw, i)) continue;
    const tfx_node *n = &g->nodes[i];
    int slot = n->inputs[0] * 2 + (n->n_inputs == 3);
    int gi = open_of[slot];
    /* only weights of one format concatenate: a weight in another format than
     * the open group's starts a new group (Q4_K_M: q4_k Q and K fuse, a q6_k V stays apart) */
    if (gi < 0 || groups[gi].n == TFX_MAX_SEGS ||
        g->nodes[g->nodes[groups[gi].member[0]].inputs[1]].type.dtype != g->nodes[n->inputs[1]].type.dtype)
      open_of[slot] = gi = ng++;
    groups[gi].member[groups[gi].n++] = i;
    group_of[i] = gi;
  }
  for (int gi = 0; gi < ng && rc == 0; gi++)
    if (groups[gi].n >= 2) rc = fuse_group(&rw, &groups[gi], c->err, c->errlen);
  free(groups);
  free(open_of);
  free(group_of);
  if (rc) {
    tfx_rw_abort(&rw);
    return -1;
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
