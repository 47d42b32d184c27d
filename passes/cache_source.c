/* passes/cache_source.c — the source cache of an encoder-decoder (a graph
 * with a source input, g->rows_mask > 0): marks the nodes whose value
 * depends only on the params and the sources (the source inputs and their
 * row mask) — the encoder and every cross-attention's K and V projections —
 * as TFX_SRC_INVARIANT, and those of them read by another node as
 * TFX_SRC_KEPT, and lays the kept values out in the source cache at the
 * start of the KV storage (g->src_cache_bytes: a 64-byte header whose first
 * int32 says the cache holds the current source's values, then one 64-byte
 * aligned slot per kept value, its kv_offset). plan_memory runs it first
 * (so `--print-after=plan_memory` shows the marks) and gives kept values
 * no arena slot; the backend runs the invariant nodes' kernels only when
 * the header's flag is 0 and then sets it; the runtime zeroes the flag when
 * a call's source differs from the previous call's, and on reset.
 *
 * A node is invariant when it is computed (not an input or param), every
 * operand is a param, a source, the row mask or an invariant node, its type
 * has no T, it keeps no KV cache or state, and it does not read the call's
 * position (RoPE, positions, sinusoidal tables, a fused RoPE epilogue or
 * positional embedding are left out even on static rows). */
#include <stdlib.h>

#include "rewrite.h"

#define CACHE_ALIGN 64

static int64_t align_up(int64_t v) { return (v + CACHE_ALIGN - 1) / CACHE_ALIGN * CACHE_ALIGN; }

static int reads_position(const tfx_node *n) {
  switch (n->op) {
  case TFX_OP_ROPE:
  case TFX_OP_POSITIONS:
  case TFX_OP_SINUSOIDAL: return 1;
  case TFX_OP_FUSED_LINEAR: return n->fx.rope != 0;
  case TFX_OP_EMBEDDING: return n->fx.pos_add != 0;
  default: return 0;
  }
}

/* 1 when input node id is a source or the row mask */
static int source_input(const tfx_graph *g, int id) {
  for (int k = 1; k < g->n_fwd_inputs; k++)
    if (g->fwd_inputs[k] == id) return k == g->rows_mask || tfx_graph_input_is_source(g, k);
  return 0;
}

int tfx_pass_cache_source_mark(tfx_graph *g, char *err, size_t errlen) {
  if (!g) return tfx_errf(err, errlen, "cache_source: no graph");
  g->src_cache_bytes = 0;
  for (int i = 0; i < g->n_nodes; i++) g->nodes[i].src_cached = TFX_SRC_NONE;
  if (g->rows_mask <= 0) return 0;
  /* leaf[i]: a param or a source input (invariant, never computed) */
  char *leaf = calloc((size_t)g->n_nodes + 1, 1);
  if (!leaf) return tfx_errf(err, errlen, "cache_source: out of memory");
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    if (n->op == TFX_OP_PARAM) {
      leaf[i] = 1;
      continue;
    }
    if (n->op == TFX_OP_INPUT) {
      leaf[i] = (char)source_input(g, i);
      continue;
    }
    int ok = !tfx_type_has_t(&n->type) && tfx_node_kv_bytes(n, g->max_seq) == 0 &&
             !tfx_op_has(n->op, TFX_TRAIT_STATE) && !reads_position(n) && i != g->output;
    for (int j = 0; ok && j < n->n_inputs; j++) {
      int v = n->inputs[j];
      ok = v >= 0 && v < i && (leaf[v] || g->nodes[v].src_cached);
    }
    if (ok) n->src_cached = TFX_SRC_INVARIANT;
  }
  /* kept: an invariant value read by a node that runs every call (a view's
   * value lives in its producer's slot: the producer is kept) */
  int any = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->src_cached || n->op == TFX_OP_PARAM || n->op == TFX_OP_INPUT) continue;
    for (int j = 0; j < n->n_inputs; j++) {
      int v = n->inputs[j];
      while (g->nodes[v].src_cached && tfx_op_has(g->nodes[v].op, TFX_TRAIT_VIEW)) v = g->nodes[v].inputs[0];
      if (g->nodes[v].src_cached) g->nodes[v].src_cached = TFX_SRC_KEPT, any = 1;
    }
  }
  free(leaf);
  if (!any) { /* nothing a call could skip */
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].src_cached = TFX_SRC_NONE;
    return 0;
  }
  int64_t off = CACHE_ALIGN; /* the header: the valid flag */
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    if (n->src_cached != TFX_SRC_KEPT) continue;
    int64_t bytes = tfx_node_slot_bytes(g, n, g->max_seq);
    if (bytes < 0 || bytes > INT64_MAX / 4 - off)
      return tfx_errf(err, errlen, "cache_source: %%%d (%s) is too large to keep", i, tfx_op_name(n->op));
    n->kv_offset = off;
    off += align_up(bytes > 0 ? bytes : 1);
  }
  g->src_cache_bytes = off;
  return 0;
}
