/* passes/stats.c — static cost of one decode step (T = 1) of a graph, for
 * `tfxc --stats`: floating-point operations (a multiply-add counts 2; the
 * elementwise, norm and RoPE costs are per element estimates, and ops this
 * file does not know count one operation per output element), and bytes
 * moved: every weight a node reads (an embedding reads one row), every
 * activation read and written; attention's work and KV reads per cached
 * context position are reported apart, and the fused plan and the attention
 * schedules (tfx_attn_schedule_of, forward entry) are counted. */
#include "rewrite.h"

void tfx_pass_graph_stats(const tfx_graph *g, tfx_graph_stats *s) {
  *s = (tfx_graph_stats){0};
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op == TFX_OP_ATTENTION || n->op == TFX_OP_MLA_ATTENTION) {
      s->attn_nodes++;
      s->attn_schedules[tfx_attn_schedule_of(g, n, 0)]++;
    }
    if (tfx_op_has(n->op, TFX_TRAIT_SOURCE | TFX_TRAIT_VIEW)) {
      if (n->op == TFX_OP_PARAM && n->fx.panel) s->packed_weights++;
      continue;
    }
    int64_t out = tfx_type_numel(&n->type, 1);
    s->bytes_per_token += tfx_type_bytes(&n->type, 1);
    for (int j = 0; j < n->n_inputs; j++) {
      const tfx_node *in = &g->nodes[n->inputs[j]];
      if (in->op == TFX_OP_PARAM)
        s->bytes_per_token += n->op == TFX_OP_EMBEDDING ? tfx_type_bytes(&in->type, 1) / tfx_node_rows(in, 1)
                                                        : tfx_type_bytes(&in->type, 1);
      else
        s->bytes_per_token += tfx_type_bytes(&in->type, 1);
    }
    const tfx_node *a = n->n_inputs > 0 ? &g->nodes[n->inputs[0]] : NULL;
    const tfx_node *b = n->n_inputs > 1 ? &g->nodes[n->inputs[1]] : NULL;
    switch (n->op) {
    case TFX_OP_EMBEDDING:
    case TFX_OP_CONCAT:
    case TFX_OP_PACK: break;
    case TFX_OP_LINEAR:
      s->flops_per_token += 2 * tfx_node_rows(a, 1) * tfx_node_cols(a) * tfx_node_cols(n) + out;
      break;
    case TFX_OP_MATMUL: s->flops_per_token += 2 * tfx_node_rows(a, 1) * tfx_node_cols(a) * tfx_node_cols(n); break;
    case TFX_OP_FUSED_LINEAR: {
      int64_t rows = tfx_node_rows(a, 1), K = tfx_node_cols(a), R = b->type.dims[0];
      s->flops_per_token += 2 * rows * K * R + (n->fx.norm ? 3 * rows * K : 0) + 4 * rows * R;
      s->fused_linears++;
      if (n->fx.norm) s->norm_prologues++;
      break;
    }
    case TFX_OP_RMSNORM:
    case TFX_OP_LAYERNORM:
    case TFX_OP_SOFTMAX: s->flops_per_token += 5 * out; break;
    case TFX_OP_NORM_STATS: s->flops_per_token += 3 * tfx_type_numel(&a->type, 1); break;
    case TFX_OP_ROPE: s->flops_per_token += 6 * out; break;
    case TFX_OP_ATTENTION: {
      int64_t per = 4 * (int64_t)n->heads * n->head_dim + 5 * n->heads;
      if (n->mask == TFX_MASK_CAUSAL) {
        s->attn_flops_per_ctx += per;
        s->kv_bytes_per_ctx += 2 * (int64_t)n->kv_heads * n->head_dim * 4;
      } else {
        s->flops_per_token += per;
      }
      break;
    }
    /* the others: one operation per output element */
    case TFX_OP_INPUT:
    case TFX_OP_PARAM:
    case TFX_OP_ADD:
    case TFX_OP_SUB:
    case TFX_OP_MUL:
    case TFX_OP_SILU:
    case TFX_OP_GELU:
    case TFX_OP_RELU:
    case TFX_OP_SIGMOID:
    case TFX_OP_POSITIONS:
    case TFX_OP_SINUSOIDAL:
    case TFX_OP_MOE_ROUTE:
    case TFX_OP_MOE_UP:
    case TFX_OP_MOE_DOWN:
    case TFX_OP_MLA_ATTENTION:
    case TFX_OP_SLICE:
    case TFX_OP_COUNT: s->flops_per_token += out; break;
    }
  }
}
