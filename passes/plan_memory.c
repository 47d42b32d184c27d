/* passes/plan_memory.c — memory planning: liveness over the node order, one
 * 64-byte-aligned arena slot per intermediate value sized for T = max_seq,
 * first-fit reuse of ranges freed by dead values (never in place: a value does
 * not share memory with anything live while it is defined, its operands
 * included), and the KV cache layout of causal ATTENTION nodes. */
#include "passes.h"

#include <stdarg.h>
#include <stdlib.h>

#define PLAN_ALIGN 64

static int pfail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int64_t align_up(int64_t v) { return (v + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN; }

/* A live slot: [off, off + size). */
typedef struct {
  int64_t off, size;
  int node;
} slot;

/* First fit among the gaps between live slots (kept sorted by offset). */
static int64_t first_fit(const slot *live, int n_live, int64_t size) {
  int64_t cursor = 0;
  for (int i = 0; i < n_live; i++) {
    if (live[i].off - cursor >= size) return cursor;
    if (live[i].off + live[i].size > cursor) cursor = live[i].off + live[i].size;
  }
  return cursor;
}

static void insert_sorted(slot *live, int *n_live, slot s) {
  int i = *n_live;
  while (i > 0 && live[i - 1].off > s.off) {
    live[i] = live[i - 1];
    i--;
  }
  live[i] = s;
  (*n_live)++;
}

static int needs_slot(const tfx_graph *g, const tfx_node *n) {
  return n->op != TFX_OP_INPUT && n->op != TFX_OP_PARAM && n->id != g->output;
}

int tfx_pass_plan_memory(tfx_graph *g, char *err, size_t errlen) {
  if (!g) return pfail(err, errlen, "plan_memory: no graph");
  if (g->max_seq < 1) return pfail(err, errlen, "plan_memory: max_seq = %lld must be >= 1", (long long)g->max_seq);
  int nn = g->n_nodes;
  int *last = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *last);
  slot *live = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *live);
  if (!last || !live) {
    free(last);
    free(live);
    return pfail(err, errlen, "plan_memory: out of memory");
  }
  for (int i = 0; i < nn; i++) {
    last[i] = i;
    g->nodes[i].arena_offset = -1;
    g->nodes[i].kv_offset = -1;
  }
  for (int i = 0; i < nn; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++) {
      int v = g->nodes[i].inputs[j];
      if (v < 0 || v >= i) {
        free(last);
        free(live);
        return pfail(err, errlen, "plan_memory: %%%d (%s): operand %%%d is not an earlier node", i,
                     tfx_op_name(g->nodes[i].op), v);
      }
      last[v] = i;
    }

  int n_live = 0;
  int64_t top = 0, kv = 0;
  for (int i = 0; i < nn; i++) {
    tfx_node *n = &g->nodes[i];
    /* release values whose last reader ran before this node */
    for (int k = 0; k < n_live;) {
      if (last[live[k].node] < i) {
        for (int m = k + 1; m < n_live; m++) live[m - 1] = live[m];
        n_live--;
      } else {
        k++;
      }
    }
    if (needs_slot(g, n)) {
      int64_t bytes = tfx_type_bytes(&n->type, g->max_seq);
      if (bytes < 0 || bytes > INT64_MAX / 4) {
        free(last);
        free(live);
        return pfail(err, errlen, "plan_memory: %%%d (%s) is too large to plan", i, tfx_op_name(n->op));
      }
      int64_t size = align_up(bytes > 0 ? bytes : 1);
      int64_t off = first_fit(live, n_live, size);
      n->arena_offset = off;
      insert_sorted(live, &n_live, (slot){off, size, i});
      if (off + size > top) top = off + size;
    }
    if (n->op == TFX_OP_ATTENTION && n->mask == TFX_MASK_CAUSAL) {
      int64_t half = g->max_seq * (int64_t)n->kv_heads * n->head_dim * 4;
      kv = align_up(kv);
      n->kv_offset = kv;
      kv += 2 * half;
    }
  }
  g->arena_bytes = top;
  g->kv_bytes = align_up(kv);
  free(last);
  free(live);
  return 0;
}
