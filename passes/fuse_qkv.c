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
 * arena grows by it; the saved kernel reads a few rows).
 *
 * First, the same planar output for a linear the program splits itself: a
 * `linear` (weight and bias as above, not the output) read only by
 * `col_slice`s (the language's x[:, a:b]) whose ranges are equal or
 * disjoint cuts it into segments (2 to 4, columns nobody reads being
 * segments of their own); it becomes a fused_linear over its own weight
 * (already the rows of the segments in order) with a planar output, and
 * each col_slice (a copy) a SLICE view of its segment: GPT-2's fused c_attn
 * written as q = qkv[:, :dim], ... costs what three projections fused here
 * cost. */
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

/* The segments of linear id read only through col_slices into segs[]
 * (column widths in order) and seg_of[k] (reader k's segment); the number of
 * segments, or 0 when it does not qualify (a reader that is not a
 * col_slice, overlapping ranges, one segment, more than TFX_MAX_SEGS). */
static int slice_segments(const tfx_rw *rw, int id, const int *rd, int nr, int64_t *segs, int *seg_of) {
  const tfx_graph *g = rw->g;
  int64_t N = tfx_node_cols(&g->nodes[id]), cut[2 * TFX_MAX_SEGS + 2];
  int nc = 0;
  if (nr < 1 || nr > 2 * TFX_MAX_SEGS || rw->uses[id] != nr) return 0;
  for (int k = 0; k < nr; k++) {
    const tfx_node *s = &g->nodes[rd[k]];
    if (s->op != TFX_OP_COL_SLICE) return 0;
    for (int j = 0; j < k; j++) { /* equal or disjoint */
      const tfx_node *o = &g->nodes[rd[j]];
      int same = o->col_lo == s->col_lo && o->col_hi == s->col_hi;
      if (!same && o->col_lo < s->col_hi && s->col_lo < o->col_hi) return 0;
    }
  }
  /* the cuts: 0, N and every bound, sorted, without repeats */
  cut[nc++] = 0;
  cut[nc++] = N;
  for (int k = 0; k < nr; k++) {
    cut[nc++] = g->nodes[rd[k]].col_lo;
    cut[nc++] = g->nodes[rd[k]].col_hi;
  }
  for (int i = 1; i < nc; i++)
    for (int j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
      int64_t t = cut[j];
      cut[j] = cut[j - 1], cut[j - 1] = t;
    }
  int n = 0;
  for (int i = 1; i < nc; i++) {
    if (cut[i] == cut[i - 1]) continue;
    if (n == TFX_MAX_SEGS) return 0;
    segs[n++] = cut[i] - cut[i - 1];
  }
  if (n < 2) return 0;
  for (int k = 0; k < nr; k++) { /* each reader is one whole segment (the ranges are disjoint) */
    int64_t at = 0;
    seg_of[k] = -1;
    for (int i = 0; i < n; at += segs[i++])
      if (at == g->nodes[rd[k]].col_lo) seg_of[k] = segs[i] == g->nodes[rd[k]].col_hi - at ? i : -1;
    if (seg_of[k] < 0) return 0;
  }
  return n;
}

/* Linears split by col_slices into planar fused_linears with SLICE views. */
static int fuse_sliced(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes;
  for (int i = 0; i < nn; i++) {
    int rd[2 * TFX_MAX_SEGS + 1], seg_of[2 * TFX_MAX_SEGS];
    int64_t segs[TFX_MAX_SEGS];
    if (!candidate(&rw, i)) continue;
    int nr = tfx_rw_readers(g, i, rd, 2 * TFX_MAX_SEGS + 1), n = slice_segments(&rw, i, rd, nr, segs, seg_of);
    if (!n) continue;
    const tfx_node *l = &g->nodes[i];
    int has_bias = l->n_inputs == 3;
    tfx_node f = tfx_node_proto(TFX_OP_FUSED_LINEAR, l->n_inputs, l->inputs);
    f.fx.has_bias = has_bias;
    f.fx.n_segs = n;
    for (int k = 0; k < n; k++) f.fx.segs[k] = segs[k];
    f.line = l->line, f.col = l->col;
    int id = tfx_rw_add(&rw, &f, rw.key[i], c->err, c->errlen);
    for (int k = 0; k < nr && id >= 0; k++) {
      tfx_node s = tfx_node_proto(TFX_OP_SLICE, 1, &id);
      s.fx.index = seg_of[k];
      s.line = g->nodes[rd[k]].line, s.col = g->nodes[rd[k]].col;
      int sid = tfx_rw_add(&rw, &s, rw.key[rd[k]], c->err, c->errlen);
      if (sid < 0)
        id = -1;
      else
        tfx_rw_replace_uses(&rw, rd[k], sid);
    }
    if (id < 0) {
      tfx_rw_abort(&rw);
      return -1;
    }
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}

int tfx_pass_fuse_qkv(tfx_pass_ctx *c) {
  if (!c->weight_transforms) return 0;
  if (fuse_sliced(c)) return -1;
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
