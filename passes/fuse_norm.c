/* passes/fuse_norm.c — a norm into the kernels that read it: an RMSNORM or
 * LAYERNORM of x[M, K] whose every use is one of
 *   - the x operand of a linear (LINEAR, or FUSED_LINEAR without a prologue
 *     or a residual norm): a prologue that normalizes x's rows as they are
 *     loaded;
 *   - the x operand of a MOE_UP or of a MOE_ROUTE with its router (without
 *     a prologue): the same prologue;
 *   - the residual operand of a FUSED_LINEAR without a prologue or a
 *     residual norm, whose other operands are not the norm (the residual
 *     stream of a post-norm block): the epilogue normalizes the residual
 *     (rnorm) before adding it;
 * is replaced by one NORM_STATS of x (per row: mean and 1/sqrt(var + eps),
 * computed once per row) read by all of them. The normalized tensor is
 * never written. When x itself is made by a kernel that can write the
 * statistics of its rows as it stores them (a fused linear, also one
 * segment of a planar one, an embedding or a moe_down, not the graph
 * output), that kernel's epilogue writes them in parts per TFX_STATS_GROUP
 * output columns and the NORM_STATS launches nothing: the readers combine
 * the parts. A norm with any other kind of use (an activation, the graph
 * output, both the x and the residual of one linear, ...) stays as it is. */
#include <stdlib.h>

#include "rewrite.h"

typedef enum { USE_BAD, USE_PROLOGUE, USE_RESIDUAL } use_kind;

/* How node u uses the norm n (every operand of u that is n). */
static use_kind classify(const tfx_graph *g, int u, int n) {
  const tfx_node *c = &g->nodes[u];
  int at_x = 0, elsewhere = 0, at_res = 0;
  int res = c->op == TFX_OP_FUSED_LINEAR ? tfx_fl_operand(c, TFX_FL_RESIDUAL) : -1;
  for (int j = 0; j < c->n_inputs; j++) {
    if (c->inputs[j] != n) continue;
    if (j == 0)
      at_x++;
    else if (j == res)
      at_res++;
    else
      elsewhere++;
  }
  if (elsewhere || (at_x && at_res)) return USE_BAD;
  /* the consumers that take a norm prologue (or a normalized residual) */
  if (c->op == TFX_OP_LINEAR) return at_x && tfx_rw_fusable_linear(g, u) ? USE_PROLOGUE : USE_BAD;
  if (c->op == TFX_OP_FUSED_LINEAR) {
    if (c->fx.norm != TFX_NORM_NONE || c->fx.rnorm != TFX_NORM_NONE) return USE_BAD;
    return at_x ? USE_PROLOGUE : USE_RESIDUAL;
  }
  if (c->op == TFX_OP_MOE_UP) return at_x && c->fx.norm == TFX_NORM_NONE ? USE_PROLOGUE : USE_BAD;
  if (c->op == TFX_OP_MOE_ROUTE) return at_x && c->fx.router && c->fx.norm == TFX_NORM_NONE ? USE_PROLOGUE : USE_BAD;
  return USE_BAD;
}

/* The kernel that may write the statistics of x's rows in its epilogue (x
 * itself, or the planar producer of the slice x, *seg its segment), or -1. */
static int stats_writer_of(const tfx_graph *g, int x, int *seg) {
  const tfx_node *p = &g->nodes[x];
  *seg = 0;
  if (p->op == TFX_OP_SLICE) {
    const tfx_node *src = &g->nodes[p->inputs[0]];
    if (!tfx_fl_planar(src) || src->fx.stats_out || src->id == g->output) return -1;
    *seg = p->fx.index;
    return src->id;
  }
  if (p->id == g->output || p->fx.stats_out) return -1;
  if (p->op == TFX_OP_FUSED_LINEAR && !tfx_fl_planar(p)) return x;
  if (p->op == TFX_OP_EMBEDDING || p->op == TFX_OP_MOE_DOWN) return x;
  return -1;
}

/* A MOE_UP or MOE_ROUTE (router) gets the prologue (stats, gain, nbias) on x. */
static int moe_prologue(tfx_rw *rw, int u, int xin, int st, int gain, int nbias, char *err, size_t errlen) {
  const tfx_node *c = &rw->g->nodes[u];
  tfx_fused fx = c->fx;
  int in[TFX_MAX_INPUTS], k = 0;
  for (int j = 0; j < c->n_inputs; j++) in[k++] = j == 0 ? xin : c->inputs[j];
  in[k++] = st;
  in[k++] = gain;
  if (nbias >= 0) in[k++] = nbias;
  fx.norm = nbias >= 0 ? TFX_NORM_LAYER : TFX_NORM_RMS;
  return tfx_rw_set_node(rw, u, &fx, k, in, err, errlen);
}

int tfx_pass_fuse_norm(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int *start = NULL, *list = NULL, nn = g->n_nodes, rc = 0;
  if (tfx_rw_consumers(g, &start, &list)) {
    tfx_rw_abort(&rw);
    return tfx_errf(c->err, c->errlen, "fuse_norm: out of memory");
  }
  for (int i = 0; i < nn && rc == 0; i++) {
    const tfx_node *n = &g->nodes[i];
    if ((n->op != TFX_OP_RMSNORM && n->op != TFX_OP_LAYERNORM) || i == g->output || start[i] == start[i + 1] ||
        n->heads > 0) /* a per-head norm stays a kernel */
      continue;
    const tfx_node *x = &g->nodes[n->inputs[0]];
    if (x->type.rank != 2) continue;
    int ok = 1;
    for (int k = start[i]; k < start[i + 1] && ok; k++) ok = classify(g, list[k], i) != USE_BAD;
    if (!ok) continue;
    int layer = n->op == TFX_OP_LAYERNORM;
    int xin = n->inputs[0], gain = n->inputs[1], nbias = layer ? n->inputs[2] : -1, seg = 0;
    tfx_node s = tfx_node_proto(TFX_OP_NORM_STATS, 1, &xin);
    s.fx.norm = layer ? TFX_NORM_LAYER : TFX_NORM_RMS;
    s.eps = n->eps;
    s.line = n->line, s.col = n->col;
    /* x made by a kernel that can write its rows' statistics: no kernel of
     * the norm_stats's own (a planar producer's stats node reads the
     * producer, the values are those of the segment) */
    int w = stats_writer_of(g, xin, &seg);
    if (w >= 0) {
      s.fx.index = 1;
      s.inputs[0] = w;
      g->nodes[w].fx.stats_out = s.fx.norm;
      g->nodes[w].fx.stats_seg = seg;
    }
    int st = tfx_rw_add(&rw, &s, rw.key[i], c->err, c->errlen);
    if (st < 0) {
      rc = -1;
      break;
    }
    for (int k = start[i]; k < start[i + 1] && rc == 0; k++) {
      int u = list[k];
      if (k > start[i] && list[k - 1] == u) continue; /* listed once per operand use */
      use_kind kind = classify(g, u, i);
      const tfx_node *un = &g->nodes[u];
      if (un->op == TFX_OP_MOE_UP || un->op == TFX_OP_MOE_ROUTE) {
        rc = moe_prologue(&rw, u, xin, st, gain, nbias, c->err, c->errlen);
        continue;
      }
      if (tfx_rw_to_fused(&rw, u, c->err, c->errlen)) {
        rc = -1;
        break;
      }
      int op[TFX_FL_RNBIAS + 1];
      tfx_rw_fl_get(g, u, op);
      if (kind == USE_PROLOGUE) {
        op[TFX_FL_X] = xin, op[TFX_FL_STATS] = st, op[TFX_FL_GAIN] = gain, op[TFX_FL_NBIAS] = nbias;
      } else {
        op[TFX_FL_RESIDUAL] = xin, op[TFX_FL_RSTATS] = st, op[TFX_FL_RGAIN] = gain, op[TFX_FL_RNBIAS] = nbias;
      }
      rc = tfx_rw_fl_set(&rw, u, op, c->err, c->errlen);
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
