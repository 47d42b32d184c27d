/* passes/fuse_glu.c — GLU fusion: act(linear(x, w1)) * linear(x, w3) (either
 * operand order; act one of silu, gelu, relu, sigmoid; both linears with a
 * bias or neither) becomes ONE fused_linear over the weight rows
 * concat(w1, w3) with {glu, act}: each output column's gate and up dot
 * products are computed by the same kernel item and combined in its
 * epilogue. Matches only when the two linears, the activation and the
 * weights have no other use and the weights (and biases) are parameters, so
 * the concatenation is a weight transform (folded by fold_weights), and the
 * two weights have the same format (dtype). */
#include <string.h>

#include "rewrite.h"

static int single_param(const tfx_rw *rw, int id) {
  return rw->g->nodes[id].op == TFX_OP_PARAM && rw->uses[id] == 1 && rw->g->nodes[id].fx.panel == 0;
}

/* A plain linear usable as one half: single use, param weight (and bias). */
static int glu_half(const tfx_rw *rw, int id) {
  const tfx_node *n = &rw->g->nodes[id];
  if (n->op != TFX_OP_LINEAR || rw->uses[id] != 1 || id == rw->g->output) return 0;
  if (!single_param(rw, n->inputs[1])) return 0;
  return n->n_inputs == 2 || single_param(rw, n->inputs[2]);
}

static int try_fuse(tfx_rw *rw, int mul, int a, int b, char *err, size_t errlen) {
  tfx_graph *g = rw->g;
  const tfx_node *act = &g->nodes[a];
  if (!tfx_rw_is_act(act->op) || rw->uses[a] != 1) return 0;
  int gate = act->inputs[0], up = b;
  if (!glu_half(rw, gate) || !glu_half(rw, up)) return 0;
  const tfx_node *gn = &g->nodes[gate], *un = &g->nodes[up];
  if (gn->inputs[0] != un->inputs[0] || gn->n_inputs != un->n_inputs || !tfx_type_equal(&gn->type, &un->type)) return 0;
  /* only weights of one format concatenate (quantize_weights may give w1 and w3 different ones) */
  if (g->nodes[gn->inputs[1]].type.dtype != g->nodes[un->inputs[1]].type.dtype) return 0;
  int x = gn->inputs[0], bias = -1;
  double key = rw->key[mul];
  tfx_node cat = tfx_node_proto(TFX_OP_CONCAT, 2, (int[]){gn->inputs[1], un->inputs[1]});
  int w = tfx_rw_add(rw, &cat, key - 0.5, err, errlen);
  if (w < 0) return -1;
  gn = &g->nodes[gate], un = &g->nodes[up];
  if (gn->n_inputs == 3) {
    cat = tfx_node_proto(TFX_OP_CONCAT, 2, (int[]){gn->inputs[2], un->inputs[2]});
    if ((bias = tfx_rw_add(rw, &cat, key - 0.5, err, errlen)) < 0) return -1;
  }
  int64_t N = g->nodes[gate].type.dims[1];
  tfx_node f = tfx_node_proto(TFX_OP_FUSED_LINEAR, bias >= 0 ? 3 : 2, (int[]){x, w, bias});
  f.fx.has_bias = bias >= 0;
  f.fx.glu = 1;
  f.fx.act = tfx_rw_act_kind(&g->nodes[a]);
  f.fx.n_segs = 2;
  f.fx.segs[0] = f.fx.segs[1] = N;
  f.line = g->nodes[mul].line, f.col = g->nodes[mul].col;
  int id = tfx_rw_add(rw, &f, key, err, errlen);
  if (id < 0) return -1;
  tfx_rw_replace_uses(rw, mul, id);
  return 1;
}

int tfx_pass_fuse_glu(tfx_pass_ctx *c) {
  if (!c->weight_transforms) return 0;
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes;
  for (int i = 0; i < nn; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_MUL || !tfx_type_equal(&g->nodes[n->inputs[0]].type, &g->nodes[n->inputs[1]].type)) continue;
    int a = n->inputs[0], b = n->inputs[1];
    int r = try_fuse(&rw, i, a, b, c->err, c->errlen);
    if (r == 0) r = try_fuse(&rw, i, b, a, c->err, c->errlen);
    if (r < 0) {
      tfx_rw_abort(&rw);
      return -1;
    }
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
