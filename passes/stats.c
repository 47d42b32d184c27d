/* passes/stats.c — static cost of one decode step (T = 1) of a graph, for
 * `tfxc --stats`: floating-point operations (a multiply-add counts 2; the
 * elementwise, norm and RoPE costs are per element estimates; each op's is
 * the cost_<token> its row's cost column names in ir/ops.h, "element" (one
 * operation per output element) for an op without a model of its own), and bytes
 * moved: every weight a node reads (an embedding reads one row), every
 * activation read and written; attention's work and KV reads per cached
 * context position are reported apart, and the fused plan and the attention
 * schedules (tfx_attn_schedule_of, forward entry) are counted. */
#include "rewrite.h"

/* ---- the cost column of ir/ops.h: flops (and counts) of one node at T = 1;
 * a = operand 0, b = operand 1 (NULL when absent), out its output elements */
typedef struct {
  const tfx_node *n, *a, *b;
  int64_t out;
} cost_args;

static void cost_none(const cost_args *c, tfx_graph_stats *s) { (void)c, (void)s; }

/* one operation per output element */
static void cost_element(const cost_args *c, tfx_graph_stats *s) { s->flops_per_token += c->out; }

/* a reduction over the row and a pass over it (norms, softmax) */
static void cost_reduce_row(const cost_args *c, tfx_graph_stats *s) { s->flops_per_token += 5 * c->out; }

static void cost_rope(const cost_args *c, tfx_graph_stats *s) { s->flops_per_token += 6 * c->out; }

static void cost_linear(const cost_args *c, tfx_graph_stats *s) {
  s->flops_per_token += 2 * tfx_node_rows(c->a, 1) * tfx_node_cols(c->a) * tfx_node_cols(c->n) + c->out;
}

static void cost_matmul(const cost_args *c, tfx_graph_stats *s) {
  s->flops_per_token += 2 * tfx_node_rows(c->a, 1) * tfx_node_cols(c->a) * tfx_node_cols(c->n);
}

/* SEQ_PROJECT: one row of x (T = 1) into the k rows */
static void cost_seq_project(const cost_args *c, tfx_graph_stats *s) { s->flops_per_token += 2 * c->out; }

static void cost_fused_linear(const cost_args *c, tfx_graph_stats *s) {
  const tfx_node *n = c->n;
  int64_t rows = tfx_node_rows(c->a, 1), K = tfx_node_cols(c->a), R = c->b->type.dims[0];
  s->flops_per_token += 2 * rows * K * R + (n->fx.norm ? 3 * rows * K : 0) + 4 * rows * R;
  s->fused_linears++;
  if (n->fx.norm) s->norm_prologues++;
}

static void cost_norm_stats(const cost_args *c, tfx_graph_stats *s) {
  s->flops_per_token += 3 * tfx_type_numel(&c->a->type, 1);
}

static void cost_attention(const cost_args *c, tfx_graph_stats *s) {
  const tfx_node *n = c->n;
  int64_t per = 4 * (int64_t)n->heads * n->head_dim + 5 * n->heads;
  if (n->mask == TFX_MASK_CAUSAL) {
    s->attn_flops_per_ctx += per;
    s->kv_bytes_per_ctx += 2 * (int64_t)n->kv_heads * n->head_dim * 4;
  } else {
    s->flops_per_token += per;
  }
}

/* GLOBAL_ATTENTION: per token of a call, every global row's query against it (its score and value) */
static void cost_global_attn(const cost_args *c, tfx_graph_stats *s) {
  const tfx_node *n = c->n;
  int64_t ng = tfx_attn_global_rows(&n->sparse, INT64_MAX / 2, NULL, 0);
  s->flops_per_token += ng * (4 * (int64_t)n->heads * n->head_dim + 5 * n->heads);
}

/* RETENTION, one decode step: S = gamma S + k^T v and q S, per head */
static void cost_retention(const cost_args *c, tfx_graph_stats *s) {
  const tfx_node *n = c->n;
  s->flops_per_token += 5 * (int64_t)n->heads * n->head_dim * n->v_dim;
}

/* INFINI_ATTENTION, one decode step: the memory read and the local attention over at most a segment */
static void cost_infini(const cost_args *c, tfx_graph_stats *s) {
  const tfx_node *n = c->n;
  int64_t H = n->heads, d = n->head_dim, dv = n->v_dim;
  s->flops_per_token += H * (2 * d * dv + 2 * d + (int64_t)n->segment * (2 * d + 2 * dv + 5));
}

static void (*const cost_fns[TFX_OP_COUNT])(const cost_args *c, tfx_graph_stats *s) = {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  [TFX_OP_##NAME] = cost_##cost,
#include "../ir/ops.h"
#undef TFX_OP
};

void tfx_pass_graph_stats(const tfx_graph *g, tfx_graph_stats *s) {
  *s = (tfx_graph_stats){0};
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (tfx_op_has(n->op, TFX_TRAIT_KV_CACHE)) { /* the attention ops */
      s->attn_nodes++;
      s->attn_schedules[tfx_attn_schedule_of(g, n, 0)]++;
    }
    int owner = tfx_attn_kv_owner(g, n);
    if (owner >= 0 && owner != i) {
      s->kv_readers++;
      int first = 1; /* the owner's first reader counts its cache */
      for (int j = owner + 1; j < i && first; j++) first = tfx_attn_kv_owner(g, &g->nodes[j]) != owner;
      s->kv_shared_caches += first;
    }
    if (tfx_node_kv_bytes(n, g->max_seq) > 0) s->kv_layers++;
    if (!tfx_op_has(n->op, TFX_TRAIT_STATE)) s->standard_kv_bytes += tfx_node_kv_bytes(n, g->max_seq);
    if (tfx_op_has(n->op, TFX_TRAIT_STATE)) {
      s->state_nodes++;
      s->state_bytes += tfx_node_kv_bytes(n, g->max_seq);
      s->state_kv_bytes += g->max_seq * (int64_t)n->heads * (n->head_dim + n->v_dim) * 4;
      s->standard_kv_bytes += g->max_seq * (int64_t)n->heads * (n->head_dim + n->v_dim) * 4;
    }
    if (tfx_op_has(n->op, TFX_TRAIT_SOURCE | TFX_TRAIT_VIEW)) {
      if (n->op == TFX_OP_PARAM && n->fx.panel) s->packed_weights++;
      continue;
    }
    int64_t out = tfx_type_numel(&n->type, 1);
    if (n->src_cached) { /* computed once per source (cache_source.c), not per token */
      tfx_graph_stats once = {0};
      cost_args c = {n, n->n_inputs > 0 ? &g->nodes[n->inputs[0]] : NULL,
                     n->n_inputs > 1 ? &g->nodes[n->inputs[1]] : NULL, out};
      cost_fns[n->op](&c, &once);
      s->src_nodes++;
      s->src_kept += n->src_cached == TFX_SRC_KEPT;
      s->src_flops += once.flops_per_token + once.attn_flops_per_ctx;
      continue;
    }
    s->bytes_per_token += tfx_type_bytes(&n->type, 1);
    for (int j = 0; j < n->n_inputs; j++) {
      const tfx_node *in = &g->nodes[n->inputs[j]];
      if (in->op == TFX_OP_PARAM)
        s->bytes_per_token += n->op == TFX_OP_EMBEDDING ? tfx_type_bytes(&in->type, 1) / tfx_node_rows(in, 1)
                                                        : tfx_type_bytes(&in->type, 1);
      else
        s->bytes_per_token += tfx_type_bytes(&in->type, 1);
    }
    cost_args c = {n, n->n_inputs > 0 ? &g->nodes[n->inputs[0]] : NULL,
                   n->n_inputs > 1 ? &g->nodes[n->inputs[1]] : NULL, out};
    cost_fns[n->op](&c, s);
  }
}
