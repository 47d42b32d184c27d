/* passes/plan_memory.c — memory planning: liveness over the node order (a
 * SLICE view keeps its producer live), one 64-byte-aligned arena slot per
 * intermediate value sized for T = max_seq, plus the workspace of a linear
 * with int8 activations (tfx_node_work_bytes: live only while it runs),
 * optional in-place reuse (an
 * elementwise node — or a fused linear or moe_down over its residual —
 * takes the slot of a same-sized operand that dies at it,
 * so the two form one buffer), offsets by lowest- or best-fit placement in
 * several orders (definition, size, lifetime, size x lifetime, then size with
 * ties broken by a fixed random stream) until one reaches the liveness peak,
 * then (small graphs) a bounded depth-first search for a placement at the
 * peak; the smallest arena found is kept;
 * the KV cache layout
 * of the nodes that keep one (tfx_node_kv_bytes); and the liveness statistics (peak of bytes live
 * at once, naive sum) that --stats and the tests report. */
#include <stdarg.h>
#include <stdlib.h>

#include "rewrite.h"

#define PLAN_ALIGN 64

static int64_t align_up(int64_t v) { return (v + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN; }

static int needs_slot(const tfx_graph *g, const tfx_node *n) {
  /* a kept source-invariant value lives in the source cache (cache_source.c) */
  return !tfx_op_has(n->op, TFX_TRAIT_SOURCE | TFX_TRAIT_VIEW) && n->id != g->output &&
         n->src_cached != TFX_SRC_KEPT; /* ir/ops.h */
}

/* last[v]: the last node reading v, or v; a slice's readers also read its producer. */
static int liveness(const tfx_graph *g, int *last, char *err, size_t errlen) {
  for (int i = 0; i < g->n_nodes; i++) last[i] = i;
  for (int i = 0; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++) {
      int v = g->nodes[i].inputs[j];
      if (v < 0 || v >= i)
        return tfx_errf(err, errlen, "plan_memory: %%%d (%s): operand %%%d is not an earlier node", i,
                        tfx_op_name(g->nodes[i].op), v);
      last[v] = i;
      if (tfx_op_has(g->nodes[v].op, TFX_TRAIT_VIEW)) { /* a view keeps its producer alive */
        int p = g->nodes[v].inputs[0];
        if (p >= 0 && p < v && last[p] < i) last[p] = i;
      }
    }
  return 0;
}

/* The operand of node n whose slot it may take, or -1. */
static int in_place_operand(const tfx_graph *g, const tfx_node *n, const int *last, const int64_t *size) {
  int cand[2], nc = 0;
  switch (tfx_op_info(n->op)->inplace) { /* ir/ops.h */
  case TFX_INPLACE_NONE: return -1;
  case TFX_INPLACE_EITHER:
    cand[nc++] = n->inputs[0];
    if (tfx_type_equal(&g->nodes[n->inputs[1]].type, &n->type)) cand[nc++] = n->inputs[1];
    break;
  case TFX_INPLACE_FIRST: cand[nc++] = n->inputs[0]; break;
  case TFX_INPLACE_RESIDUAL: {
    /* FUSED_LINEAR, MOE_DOWN (an item reads and writes its own columns of
     * every row): the residual must not also be read as x, stats ... */
    int r = tfx_residual_operand(n);
    if (r < 0) return -1;
    for (int j = 0; j < n->n_inputs; j++)
      if (j != r && n->inputs[j] == n->inputs[r]) return -1;
    cand[nc++] = n->inputs[r];
    break;
  }
  }
  for (int k = 0; k < nc; k++) {
    const tfx_node *v = &g->nodes[cand[k]];
    if (!needs_slot(g, v) || last[v->id] != n->id || size[v->id] != size[n->id]) continue;
    if (!tfx_type_equal(&v->type, &n->type)) continue;
    return v->id;
  }
  return -1;
}

typedef struct {
  int64_t size, off;
  int start, end; /* node range during which the buffer is live */
} buffer;

static int overlaps(const buffer *a, const buffer *b) { return a->start <= b->end && b->start <= a->end; }

/* Where b goes among the placed buffers it overlaps in time: the lowest
 * offset where it fits, or (best) the smallest gap it fits in, lowest first;
 * the top when no gap fits. */
static int64_t lowest_fit(const buffer *bufs, const int *placed, int n_placed, const buffer *b, int64_t *ranges,
                          int best) {
  int nr = 0;
  for (int k = 0; k < n_placed; k++) {
    const buffer *o = &bufs[placed[k]];
    if (!overlaps(o, b)) continue;
    /* insertion sort by offset */
    int at = nr++;
    while (at > 0 && ranges[2 * (at - 1)] > o->off) {
      ranges[2 * at] = ranges[2 * (at - 1)];
      ranges[2 * at + 1] = ranges[2 * (at - 1) + 1];
      at--;
    }
    ranges[2 * at] = o->off;
    ranges[2 * at + 1] = o->off + o->size;
  }
  int64_t cursor = 0, at = -1, gap = INT64_MAX;
  for (int k = 0; k < nr; k++) {
    int64_t free_bytes = ranges[2 * k] - cursor;
    if (free_bytes >= b->size) {
      if (!best) return cursor;
      if (free_bytes < gap) gap = free_bytes, at = cursor;
    }
    if (ranges[2 * k + 1] > cursor) cursor = ranges[2 * k + 1];
  }
  return at >= 0 ? at : cursor;
}

/* Sorting keys of the placement orders (no global state: planning may run
 * on several threads): k1 then k2 decreasing, then definition order. */
typedef struct {
  int64_t k1, k2;
  int start, idx;
} order_key;

static int cmp_keys(const void *a, const void *b) {
  const order_key *x = a, *y = b;
  if (x->k1 != y->k1) return x->k1 > y->k1 ? -1 : 1;
  if (x->k2 != y->k2) return x->k2 > y->k2 ? -1 : 1;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return x->idx - y->idx;
}

/* Places the buffers in `order`; returns the arena size. In definition order
 * (in_order) only the buffers still live are searched, so large graphs plan
 * in time proportional to nodes x live values. */
static int64_t place(buffer *bufs, int nb, const int *order, int *placed, int64_t *ranges, int in_order, int best) {
  int64_t top = 0;
  int n_placed = 0;
  for (int k = 0; k < nb; k++) {
    buffer *b = &bufs[order[k]];
    if (in_order) { /* drop the buffers that ended before this one starts */
      int w = 0;
      for (int j = 0; j < n_placed; j++)
        if (bufs[placed[j]].end >= b->start) placed[w++] = placed[j];
      n_placed = w;
    }
    b->off = lowest_fit(bufs, placed, n_placed, b, ranges, best);
    placed[n_placed++] = order[k];
    if (b->off + b->size > top) top = b->off + b->size;
  }
  return top;
}

/* Bounded depth-first search for offsets with no buffer past `bound`:
 * buffers in order[] (by start), each tried at 0, at the top (bound - size),
 * and against every buffer already placed that it meets in time (just after
 * its end, just before its start), lowest first. Returns 1 when found
 * (offsets in bufs), 0 when not found within *budget steps. */
static int search(buffer *bufs, const int *order, int nb, int k, int64_t bound, long *budget, int64_t *scratch) {
  if (k == nb) return 1;
  buffer *b = &bufs[order[k]];
  int64_t *cand = scratch + (size_t)k * (2 * (size_t)nb + 2); /* this depth's candidates */
  int nc = 0;
  cand[nc++] = 0;
  cand[nc++] = bound - b->size;
  for (int j = 0; j < k; j++) {
    const buffer *o = &bufs[order[j]];
    if (!overlaps(o, b)) continue;
    cand[nc++] = o->off + o->size;
    if (o->off >= b->size) cand[nc++] = o->off - b->size;
  }
  for (int a = 1; a < nc; a++) /* ascending, duplicates dropped below */
    for (int z = a; z > 0 && cand[z - 1] > cand[z]; z--) {
      int64_t t = cand[z];
      cand[z] = cand[z - 1];
      cand[z - 1] = t;
    }
  for (int a = 0; a < nc; a++) {
    if ((a && cand[a] == cand[a - 1]) || cand[a] < 0 || cand[a] + b->size > bound) continue;
    if (--*budget < 0) return 0;
    int ok = 1;
    for (int j = 0; j < k && ok; j++) {
      const buffer *o = &bufs[order[j]];
      ok = !overlaps(o, b) || cand[a] + b->size <= o->off || o->off + o->size <= cand[a];
    }
    if (!ok) continue;
    b->off = cand[a];
    if (search(bufs, order, nb, k + 1, bound, budget, scratch)) return 1;
    if (*budget < 0) return 0;
  }
  return 0;
}

/* The placement's offsets into the nodes: their slots and workspaces. */
static void set_offsets(tfx_graph *g, const int *buf_of, const int *work_of, const buffer *placed) {
  for (int i = 0; i < g->n_nodes; i++) {
    if (buf_of[i] >= 0) g->nodes[i].arena_offset = placed[buf_of[i]].off;
    if (work_of[i] >= 0) g->nodes[i].work_offset = placed[work_of[i]].off;
  }
}

int tfx_pass_plan_memory_ex(tfx_graph *g, int in_place, char *err, size_t errlen) {
  if (!g) return tfx_errf(err, errlen, "plan_memory: no graph");
  if (g->max_seq < 1) return tfx_errf(err, errlen, "plan_memory: max_seq = %lld must be >= 1", (long long)g->max_seq);
  int nn = g->n_nodes, rc = 0;
  size_t cnt = (size_t)(nn > 0 ? nn : 1);
  int *last = malloc(cnt * sizeof *last), *buf_of = malloc(cnt * sizeof *buf_of);
  int64_t *size = malloc(cnt * sizeof *size);
  int *work_of = malloc(cnt * sizeof *work_of); /* the buffer of node i's workspace, or -1 */
  /* a buffer per value, and one per workspace (tfx_node_work_bytes) */
  int *order = calloc(2 * cnt, sizeof *order), *placed = calloc(2 * cnt, sizeof *placed);
  int64_t *ranges = malloc(4 * cnt * sizeof *ranges);
  buffer *bufs = malloc(2 * cnt * sizeof *bufs), *alt = malloc(2 * cnt * sizeof *alt);
  if (!last || !buf_of || !work_of || !order || !placed || !size || !ranges || !bufs || !alt) {
    rc = tfx_errf(err, errlen, "plan_memory: out of memory");
    goto done;
  }
  if ((rc = liveness(g, last, err, errlen))) goto done;
  /* the source cache first: its values' kv_offset, at the start of the KV storage */
  for (int i = 0; i < nn; i++) g->nodes[i].kv_offset = -1;
  if ((rc = tfx_pass_cache_source_mark(g, err, errlen))) goto done;
  int nb = 0;
  int64_t kv = g->src_cache_bytes;
  for (int i = 0; i < nn; i++) {
    tfx_node *n = &g->nodes[i];
    n->arena_offset = -1;
    n->work_offset = -1;
    buf_of[i] = work_of[i] = -1;
    size[i] = 0;
    if (needs_slot(g, n)) {
      int64_t bytes = tfx_node_slot_bytes(g, n, g->max_seq);
      if (bytes < 0 || bytes > INT64_MAX / 4) {
        rc = tfx_errf(err, errlen, "plan_memory: %%%d (%s) is too large to plan", i, tfx_op_name(n->op));
        goto done;
      }
      size[i] = align_up(bytes > 0 ? bytes : 1);
      int v = in_place ? in_place_operand(g, n, last, size) : -1;
      if (v >= 0 && bufs[buf_of[v]].end == i) {
        buf_of[i] = buf_of[v];
        bufs[buf_of[i]].end = last[i];
      } else {
        /* statistics from an epilogue are written by their input's kernel */
        int start = n->op == TFX_OP_NORM_STATS && n->fx.index == 1 ? n->inputs[0] : i;
        buf_of[i] = nb;
        bufs[nb++] = (buffer){size[i], 0, start, last[i]};
      }
    }
    int64_t work = tfx_node_work_bytes(g, n, g->max_seq); /* live while n runs */
    if (work < 0 || work > INT64_MAX / 4) {
      rc = tfx_errf(err, errlen, "plan_memory: %%%d (%s): its workspace is too large to plan", i, tfx_op_name(n->op));
      goto done;
    }
    if (work > 0) {
      work_of[i] = nb;
      bufs[nb++] = (buffer){align_up(work), 0, i, i};
    }
    int64_t kv_need = tfx_node_kv_bytes(n, g->max_seq); /* causal ATTENTION: K then V; MLA: its latent */
    int owner = tfx_attn_kv_owner(g, n);
    if (kv_need > 0 && owner >= 0 && owner != i) { /* reads the cache of an earlier node's k and v (YOCO) */
      n->kv_offset = g->nodes[owner].kv_offset;
    } else if (kv_need > 0) {
      kv = align_up(kv);
      n->kv_offset = kv;
      kv += kv_need;
    }
  }
  /* lowest-offset placement in several orders, keeping the smallest arena:
   * definition order (first fit), largest first, longest-lived first,
   * largest size x lifetime first */
  order_key *keys = malloc((size_t)(nb > 0 ? nb : 1) * sizeof *keys);
  if (!keys) {
    rc = tfx_errf(err, errlen, "plan_memory: out of memory");
    goto done;
  }
  /* no placement beats the bytes live at once (the liveness peak) */
  int64_t bound = 0;
  for (int i = 0; i < nn; i++) {
    int64_t live = 0;
    for (int k = 0; k < nb; k++) live += bufs[k].start <= i && i <= bufs[k].end ? bufs[k].size : 0;
    if (live > bound) bound = live;
    if (nb > 4096) break; /* (huge graphs: the bound is only used to stop early) */
  }
  /* orders: definition, size, lifetime, size x lifetime (each with lowest
   * and best fit), then size order with ties broken at random (a fixed
   * stream: planning is deterministic) until a plan reaches the bound */
  int64_t best_top = -1;
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  int strategies = nb > 4096 ? 1 : nb > 512 ? 8 : 24; /* the reorderings search all placed buffers */
  for (int strategy = 0; strategy < strategies && best_top != bound; strategy++) {
    int kind = strategy < 8 ? strategy / 2 : strategy % 4 < 2 ? 1 : 4; /* 4: a random order */
    for (int k = 0; k < nb; k++) {
      int64_t len = bufs[k].end - bufs[k].start + 1, sz = bufs[k].size;
      int64_t k1 = kind == 0 ? 0 : kind == 1 ? sz : kind == 2 ? len : kind == 3 ? sz * len : 0;
      int64_t k2 = kind == 2 ? sz : 0;
      if (strategy >= 8) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        k2 = (int64_t)(rng >> 1);
      }
      keys[k] = (order_key){k1, k2, bufs[k].start, k};
      alt[k] = bufs[k];
    }
    qsort(keys, (size_t)nb, sizeof *keys, cmp_keys);
    for (int k = 0; k < nb; k++) order[k] = keys[k].idx;
    int64_t top = place(alt, nb, order, placed, ranges, strategy == 0, strategy % 2);
    if (best_top < 0 || top < best_top) {
      best_top = top;
      set_offsets(g, buf_of, work_of, alt);
    }
  }
  /* the heuristics left a hole: search for a placement at the peak itself
   * (small graphs; a fixed step budget keeps planning time bounded) */
  if (best_top > bound && nb <= 512) {
    for (int k = 0; k < nb; k++) {
      keys[k] = (order_key){0, bufs[k].size, bufs[k].start, k};
      alt[k] = bufs[k];
    }
    /* by start, larger first among equal starts */
    for (int k = 0; k < nb; k++) keys[k].k1 = -(int64_t)bufs[k].start;
    qsort(keys, (size_t)nb, sizeof *keys, cmp_keys);
    for (int k = 0; k < nb; k++) order[k] = keys[k].idx;
    long budget = 200000;
    int64_t *scratch = malloc((size_t)nb * (2 * (size_t)nb + 2) * sizeof *scratch);
    if (scratch && search(alt, order, nb, 0, bound, &budget, scratch)) {
      best_top = bound;
      set_offsets(g, buf_of, work_of, alt);
    }
    free(scratch);
  }
  free(keys);
  g->arena_bytes = best_top > 0 ? best_top : 0;
  g->kv_bytes = align_up(kv);
done:
  free(last);
  free(buf_of);
  free(work_of);
  free(order);
  free(placed);
  free(size);
  free(ranges);
  free(bufs);
  free(alt);
  return rc;
}

int tfx_pass_plan_memory(tfx_graph *g, char *err, size_t errlen) { return tfx_pass_plan_memory_ex(g, 0, err, errlen); }

int tfx_pass_plan(tfx_pass_ctx *c) {
  if (tfx_pass_plan_memory_ex(c->g, c->in_place, c->err, c->errlen)) return -1;
  /* the optimizing pipelines (-O1 on) also run a long prefill in chunks; schedule { prefill_chunk } overrides */
  c->g->prefill_chunk = tfx_prefill_chunk_choice(c->g, c->in_place);
  return 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int tfx_pass_mem_stats(const tfx_graph *g, tfx_mem_stats *out) {
  out->peak_live = out->naive_sum = 0;
  out->values = 0;
  int nn = g->n_nodes, rc = 0;
  size_t cnt = (size_t)(nn > 0 ? nn : 1);
  int *last = malloc(cnt * sizeof *last), *ends = malloc(cnt * sizeof *ends), *end_start = calloc(cnt + 1, sizeof(int));
  int *refs = calloc(cnt, sizeof *refs);
  int64_t *offs = malloc(cnt * sizeof *offs);
  if (!last || !ends || !end_start || !refs || !offs || liveness(g, last, NULL, 0)) {
    rc = -1;
    goto done;
  }
  /* each value enters at its definition (statistics from an epilogue: at
   * their input's) and leaves after its last reader */
  int *def = malloc(cnt * sizeof *def), *starts = malloc(cnt * sizeof *starts);
  int *start_at = calloc(cnt + 1, sizeof *start_at), *fill = calloc(cnt, sizeof *fill);
  int *fill2 = calloc(cnt, sizeof *fill2);
  if (!def || !starts || !start_at || !fill || !fill2) {
    free(def), free(starts), free(start_at), free(fill), free(fill2);
    rc = -1;
    goto done;
  }
  int n_offs = 0;
  for (int i = 0; i < nn; i++) {
    const tfx_node *n = &g->nodes[i];
    def[i] = n->op == TFX_OP_NORM_STATS && n->fx.index == 1 ? n->inputs[0] : i;
    if (n->arena_offset < 0) continue;
    out->naive_sum += align_up(tfx_node_slot_bytes(g, n, g->max_seq));
    out->values++;
    offs[n_offs++] = n->arena_offset;
    end_start[last[i] + 1]++;
    start_at[def[i] + 1]++;
  }
  qsort(offs, (size_t)n_offs, sizeof *offs, cmp_i64);
  for (int i = 0; i < nn; i++) {
    end_start[i + 1] += end_start[i];
    start_at[i + 1] += start_at[i];
  }
  for (int i = 0; i < nn; i++)
    if (g->nodes[i].arena_offset >= 0) {
      ends[end_start[last[i]] + fill[last[i]]++] = i;
      starts[start_at[def[i]] + fill2[def[i]]++] = i;
    }
  /* sweep: a slot counts once while any value in it is live (in-place pairs
   * meet at one node) */
  int64_t sum = 0;
  for (int i = 0; i < nn; i++) {
    for (int e = start_at[i]; e < start_at[i + 1]; e++) {
      const tfx_node *n = &g->nodes[starts[e]];
      int64_t *at = bsearch(&n->arena_offset, offs, (size_t)n_offs, sizeof *offs, cmp_i64);
      int k = (int)(at - offs);
      while (k > 0 && offs[k - 1] == n->arena_offset) k--;
      if (refs[k]++ == 0) sum += align_up(tfx_node_slot_bytes(g, n, g->max_seq));
    }
    /* a workspace is live while its node runs */
    int64_t work = g->nodes[i].work_offset >= 0 ? align_up(tfx_node_work_bytes(g, &g->nodes[i], g->max_seq)) : 0;
    out->naive_sum += work;
    if (sum + work > out->peak_live) out->peak_live = sum + work;
    for (int e = end_start[i]; e < end_start[i + 1]; e++) {
      const tfx_node *d = &g->nodes[ends[e]];
      int64_t *at = bsearch(&d->arena_offset, offs, (size_t)n_offs, sizeof *offs, cmp_i64);
      int k = (int)(at - offs);
      while (k > 0 && offs[k - 1] == d->arena_offset) k--;
      if (--refs[k] == 0) sum -= align_up(tfx_node_slot_bytes(g, d, g->max_seq));
    }
  }
  free(def), free(starts), free(start_at), free(fill), free(fill2);
done:
  free(last);
  free(ends);
  free(end_start);
  free(refs);
  free(offs);
  return rc;
}
