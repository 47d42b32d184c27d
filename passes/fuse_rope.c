/* passes/fuse_rope.c — RoPE into the linear epilogue: rope(v), where v has
 * no other use and is either a SLICE of a planar fused_linear (the rotation
 * is applied to that segment as it is produced; the Q/K/V case) or a linear
 * / one-segment fused_linear with no activation, GLU or residual yet. All
 * rotated segments of one node share head_dim, rotary_dim, theta and style.
 * Both styles fuse: the interleaved pairs (2i, 2i+1) are adjacent output
 * columns; for the half-split style (i, i + d/2) the kernel computes the
 * segment's columns in pair order (pack_weights stores its weight rows that
 * way) and writes each result back to its own column. */
#include "rewrite.h"

static int same_rope(const tfx_node *f, const tfx_node *r) {
  return f->head_dim == r->head_dim && f->rotary_dim == r->rotary_dim && f->theta == r->theta &&
         f->rope_style == r->rope_style;
}

static void set_rope(tfx_node *f, const tfx_node *r, int seg) {
  f->fx.rope |= 1u << seg;
  f->head_dim = r->head_dim;
  f->rotary_dim = r->rotary_dim;
  f->theta = r->theta;
  f->rope_style = r->rope_style;
}

int tfx_pass_fuse_rope(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  int nn = g->n_nodes;
  for (int i = 0; i < nn; i++) {
    const tfx_node *r = &g->nodes[i];
    if (r->op != TFX_OP_ROPE || r->n_inputs != 1) continue; /* segment ids (packed sequences): the ROPE kernel */
    int v = r->inputs[0];
    tfx_node *vn = &g->nodes[v];
    if (rw.uses[v] != 1 || v == g->output) continue;
    if (vn->op == TFX_OP_SLICE) {
      tfx_node *f = &g->nodes[vn->inputs[0]];
      if (r->rope_style == TFX_ROPE_HALF && g->nodes[f->inputs[1]].op != TFX_OP_CONCAT &&
          (g->nodes[f->inputs[1]].fx.panel || g->nodes[f->inputs[1]].op == TFX_OP_PACK))
        continue; /* weights already packed in the plain row order */
      int seg = vn->fx.index;
      if (f->fx.act != TFX_ACT_NONE || (f->fx.rope >> seg & 1u) || (f->fx.rope && !same_rope(f, r))) continue;
      if (f->type.dims[0] != TFX_DIM_T) continue;
      set_rope(f, r, seg);
      tfx_rw_replace_uses(&rw, i, v);
      continue;
    }
    if (tfx_rw_fusable_linear(g, v)) {
      if (tfx_rw_to_fused(&rw, v, c->err, c->errlen)) {
        tfx_rw_abort(&rw);
        return -1;
      }
      vn = &g->nodes[v];
    }
    if (vn->op != TFX_OP_FUSED_LINEAR || vn->fx.n_segs != 1 || vn->fx.rope || vn->fx.act != TFX_ACT_NONE ||
        vn->fx.glu || vn->fx.residual || vn->type.dims[0] != TFX_DIM_T)
      continue;
    set_rope(vn, r, 0);
    rw.key[v] = rw.key[i];
    tfx_rw_replace_uses(&rw, i, v);
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
