/* passes/schedule_attention.c — the attention schedules of every ATTENTION
 * and MLA_ATTENTION node: writes the node's attn_schedule, the forward
 * entry's (row, flash or block_sparse: the cheaper prefill estimate of the
 * cost model, attn_cost.c, among those that apply — flash without a sparse
 * pattern, block_sparse with one, row always, MLA row only; schedule {
 * attention = dense } forces row and attention = flash the tiled ones where
 * they apply), and its attn_split, the
 * decode entry's (0: row; N: split decode in N parts), from the cost model
 * (attn_cost.c) unless schedule { decode = row | split | split(N) } says;
 * so the choice shows in the IR (--emit=ir, the printed graph) and in
 * --stats, and the backend reads it instead of deciding. A node that
 * already carries a schedule keeps it (a caller may force one; the
 * verifier checks that it applies). Split decode is never given to a node
 * it does not fit (tfx_attn_split_fits: causal self-attention of q, k, v
 * whose output slot holds the partials). */
#include "passes.h"

static int decode_split(const tfx_graph *g, const tfx_node *n) {
  int want = g->schedule.decode;
  if (want == TFX_SCHED_DECODE_ROW || want == TFX_SCHED_DECODE_TINY) return 0; /* tiny: k_tiny_heads.c, or row */
  if (want >= 2) return tfx_attn_split_fits(g, n, want) ? want : 0;
  if (want == TFX_SCHED_DECODE_SPLIT) return tfx_attn_cost_split_count(g, n);
  tfx_attn_cost c;
  tfx_attn_cost_eval(g, n, &c);
  return c.split;
}

int tfx_pass_schedule_attention(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_ATTENTION && n->op != TFX_OP_MLA_ATTENTION) continue;
    if (n->attn_schedule == TFX_ATTN_SCHED_UNSET) {
      tfx_attn_cost cost;
      tfx_attn_cost_eval(g, n, &cost);
      n->attn_schedule = cost.forward;
    }
    if (n->attn_split == 0 && n->op == TFX_OP_ATTENTION) n->attn_split = decode_split(g, n);
  }
  return 0;
}
