/* passes/cse.c — common-subexpression elimination: two nodes of the same
 * pure op with the same operands and equal attributes compute the same value;
 * the later one's uses read the earlier one. Only the ops the op table marks
 * CSE-able are merged (others, stateful attention included, never). */
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

/* The ops CSE merges are those with TFX_TRAIT_CSE (ir/ops.h); their
 * attributes are compared through the op table (tfx_node_attrs_equal: every
 * attribute the op reads). A node whose kernel also writes statistics for a
 * NORM_STATS (tfx_stats_writer) has its own reader and is never merged. */
static int cse_node(const tfx_node *n) {
  return tfx_op_has(n->op, TFX_TRAIT_CSE) && tfx_stats_writer(n) == TFX_NORM_NONE;
}

static uint64_t node_hash(const tfx_node *n) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)n->op;
  for (int j = 0; j < n->n_inputs; j++) h = (h ^ (uint64_t)(n->inputs[j] + 1)) * 1099511628211ull;
  return h ^ (uint64_t)n->n_inputs;
}

int tfx_pass_cse(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  size_t cap = 16;
  while (cap < (size_t)g->n_nodes * 2) cap *= 2;
  int *table = malloc(cap * sizeof *table);
  int *repl = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *repl);
  if (!table || !repl) {
    free(table);
    free(repl);
    tfx_rw_abort(&rw);
    return tfx_errf(c->err, c->errlen, "cse: out of memory");
  }
  for (size_t i = 0; i < cap; i++) table[i] = -1;
  /* one walk in order: operands are rewritten to their representatives first */
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    repl[i] = i;
    for (int j = 0; j < n->n_inputs; j++)
      if (repl[n->inputs[j]] != n->inputs[j]) {
        rw.uses[n->inputs[j]]--;
        n->inputs[j] = repl[n->inputs[j]];
        rw.uses[n->inputs[j]]++;
      }
    if (!cse_node(n)) continue;
    size_t h = (size_t)node_hash(n) & (cap - 1);
    for (;; h = (h + 1) & (cap - 1)) {
      int o = table[h];
      if (o < 0) {
        table[h] = i;
        break;
      }
      const tfx_node *m = &g->nodes[o];
      if (m->op == n->op && m->n_inputs == n->n_inputs && !memcmp(m->inputs, n->inputs, sizeof(int) * n->n_inputs) &&
          tfx_type_equal(&m->type, &n->type) && tfx_node_attrs_equal(m, n)) {
        repl[i] = o;
        break;
      }
    }
  }
  if (g->output >= 0 && repl[g->output] != g->output) g->output = repl[g->output];
  free(table);
  free(repl);
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
