/* passes/canonicalize.c — canonical forms the other passes and CSE rely on:
 * the operands of a commutative ADD or MUL of two same-shaped values are put
 * in id order (so `a + b` and `b + a` look alike), and `linear(x, w) + b`
 * with b a row [N] becomes linear(x, w, b) when the linear has no bias and
 * no other use (the bias is then added in the linear's epilogue). */
#include "rewrite.h"

int tfx_pass_canonicalize(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    if ((n->op == TFX_OP_ADD || n->op == TFX_OP_MUL) &&
        tfx_type_equal(&g->nodes[n->inputs[0]].type, &g->nodes[n->inputs[1]].type) && n->inputs[0] > n->inputs[1]) {
      int t = n->inputs[0];
      n->inputs[0] = n->inputs[1];
      n->inputs[1] = t;
      rw.changed = 1;
    }
    if (n->op != TFX_OP_ADD) continue;
    int l = n->inputs[0], b = n->inputs[1];
    const tfx_node *ln = &g->nodes[l], *bn = &g->nodes[b];
    if (ln->op != TFX_OP_LINEAR || ln->n_inputs != 2 || rw.uses[l] != 1 || bn->type.rank != 1 ||
        tfx_type_equal(&ln->type, &bn->type) || l == g->output)
      continue;
    /* y = linear(x, w, b), placed where the add was */
    if (tfx_rw_set_inputs(&rw, l, 3, (int[]){ln->inputs[0], ln->inputs[1], b}, c->err, c->errlen)) {
      tfx_rw_abort(&rw);
      return -1;
    }
    rw.key[l] = rw.key[i];
    tfx_rw_replace_uses(&rw, i, l);
  }
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
