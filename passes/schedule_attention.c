/* passes/schedule_attention.c — the attention schedule of every ATTENTION and
 * MLA_ATTENTION node: writes the node's attn_schedule (row, flash or
 * block_sparse; ir/attention.c's tfx_attn_schedule_auto: unless the graph's
 * schedule says attention = dense, flash for attention without a sparse
 * pattern and block_sparse for one with a pattern; row otherwise and for
 * MLA), so the choice shows in the IR (--emit=ir, the
 * printed graph) and in --stats, and the backend reads it instead of
 * deciding. A node that already carries a schedule keeps it (a caller may
 * force one; the verifier checks that it applies). The schedule is the
 * forward entry's; the decode entry runs row. */
#include "passes.h"

int tfx_pass_schedule_attention(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    if ((n->op == TFX_OP_ATTENTION || n->op == TFX_OP_MLA_ATTENTION) && n->attn_schedule == TFX_ATTN_SCHED_UNSET)
      n->attn_schedule = tfx_attn_schedule_auto(g, n);
  }
  return 0;
}
