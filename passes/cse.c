/* passes/cse.c — common-subexpression elimination: two nodes of the same
 * pure op with the same operands and equal attributes compute the same value;
 * the later one's uses read the earlier one. Only ops whose attributes this
 * pass compares are merged (others, stateful attention included, never). */
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

/* 1 if op is merged by CSE; the attributes compared are those same_attrs reads. */
static int cse_op(tfx_op op) {
  switch (op) {
  case TFX_OP_EMBEDDING:
  case TFX_OP_LINEAR:
  case TFX_OP_MATMUL:
  case TFX_OP_ADD:
  case TFX_OP_SUB:
  case TFX_OP_MUL:
  case TFX_OP_RMSNORM:
  case TFX_OP_LAYERNORM:
  case TFX_OP_SILU:
  case TFX_OP_GELU:
  case TFX_OP_RELU:
  case TFX_OP_SIGMOID:
  case TFX_OP_SOFTMAX:
  case TFX_OP_ROPE:
  case TFX_OP_NORM_STATS:
  case TFX_OP_SLICE: return 1;
  default: return 0;
  }
}

static int same_attrs(const tfx_node *a, const tfx_node *b) {
  switch (a->op) {
  case TFX_OP_RMSNORM:
  case TFX_OP_LAYERNORM: return a->eps == b->eps;
  case TFX_OP_GELU: return a->gelu_tanh == b->gelu_tanh;
  case TFX_OP_ROPE:
    return a->heads == b->heads && a->head_dim == b->head_dim && a->rotary_dim == b->rotary_dim &&
           a->theta == b->theta && a->rope_style == b->rope_style;
  case TFX_OP_NORM_STATS: return a->fx.norm == b->fx.norm && a->eps == b->eps && a->fx.index == b->fx.index;
  case TFX_OP_SLICE: return a->fx.index == b->fx.index;
  case TFX_OP_EMBEDDING: /* the fused forms (fuse_embedding); one writing statistics has its own reader */
    return a->fx.pos_add == b->fx.pos_add && a->fx.has_bias == b->fx.has_bias && a->fx.norm == b->fx.norm &&
           !a->fx.stats_out && !b->fx.stats_out && (!a->fx.norm || a->eps == b->eps) &&
           (a->fx.pos_add != TFX_EMB_POS_SINUSOIDAL || a->theta == b->theta);
  default: return 1;
  }
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
    return tfx_pass_errf(c->err, c->errlen, "cse: out of memory");
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
    if (!cse_op(n->op)) continue;
    size_t h = (size_t)node_hash(n) & (cap - 1);
    for (;; h = (h + 1) & (cap - 1)) {
      int o = table[h];
      if (o < 0) {
        table[h] = i;
        break;
      }
      const tfx_node *m = &g->nodes[o];
      if (m->op == n->op && m->n_inputs == n->n_inputs && !memcmp(m->inputs, n->inputs, sizeof(int) * n->n_inputs) &&
          tfx_type_equal(&m->type, &n->type) && same_attrs(m, n)) {
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
