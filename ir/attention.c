/* ir/attention.c — what the attention variants mean, in one place: type
 * inference of ATTENTION (self- and cross-attention) and MLA_ATTENTION, the
 * checks of their options, ALiBi slopes, the sparse patterns' rule
 * (tfx_attn_allowed, with BigBird's documented random draw) and its block
 * form (tfx_attn_block_allowed) and the dilated patterns' gathered form
 * (tfx_attn_gather: one residue class as a smaller problem), the attention schedules (today's automatic
 * rule, shared by the schedule_attention pass and the backend), the size of
 * their KV cache slots, and their attributes in the IR's text form. The
 * interpreter (interp_attention.c) and the backend evaluate exactly these. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "ir.h"
#include "op_fns.h"

#define MAX_RANDOM 64 /* BigBird random blocks per query block */
#define MAX_PARAM (1 << 30)

static int is_f32_2(const tfx_type *t) { return t->dtype == TFX_DT_F32 && t->rank == 2; }

/* ---- options ---- */

double tfx_alibi_slope(int h, int heads) {
  int n = 1;
  while (n * 2 <= heads) n *= 2;
  if (h < n) return pow(2.0, -8.0 * (double)(h + 1) / (double)n);
  return pow(2.0, -8.0 * (double)(2 * (h - n) + 1) / (2.0 * (double)n));
}

double tfx_attn_scale(const tfx_node *n) { return n->scale > 0 ? n->scale : 1.0 / sqrt((double)n->head_dim); }

int tfx_t5_bucket(int64_t rel, int bidirectional, int buckets, int max_distance) {
  int nb = buckets, ret = 0;
  if (bidirectional) {
    nb /= 2;
    if (rel > 0) ret += nb;
    rel = rel < 0 ? -rel : rel;
  } else {
    rel = rel < 0 ? -rel : 0;
  }
  int max_exact = nb / 2;
  if (rel < max_exact) return ret + (int)rel;
  /* f32 as torch: log(rel / max_exact) / log(max_distance / max_exact) * (nb - max_exact) */
  float x = logf((float)rel / (float)max_exact);
  x = x / (float)log((double)max_distance / (double)max_exact);
  x = x * (float)(nb - max_exact);
  int64_t large = max_exact + (int64_t)x;
  if (large > nb - 1) large = nb - 1;
  return ret + (int)large;
}

int64_t tfx_bigbird_blocks(const tfx_sparse *s, int64_t max_seq) {
  return s->block > 0 ? (max_seq + s->block - 1) / s->block : 0;
}

void tfx_bigbird_random_blocks(const tfx_sparse *s, int causal, int64_t max_seq, int64_t qb, int64_t *out) {
  const uint64_t golden = 0x9E3779B97F4A7C15ull;
  uint64_t x = s->seed + golden * (uint64_t)(qb + 1);
  if (!x) x = golden;
  uint64_t range = causal ? (uint64_t)(qb + 1) : (uint64_t)tfx_bigbird_blocks(s, max_seq);
  if (!range) range = 1;
  for (int k = 0; k < s->random; k++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[k] = (int64_t)(x % range);
  }
}

static int is_global(const tfx_sparse *s, int64_t p) {
  if (p < s->n_global) return 1;
  for (int k = 0; k < s->n_global_list; k++)
    if (s->global_list[k] == p) return 1;
  return 0;
}

int tfx_attn_allowed(const tfx_node *n, int64_t i, int64_t j, int64_t max_seq) {
  int causal = n->mask == TFX_MASK_CAUSAL;
  if (causal && j > i) return 0;
  int64_t d = i >= j ? i - j : j - i;
  const tfx_sparse *s = &n->sparse;
  switch (s->kind) {
  case TFX_SPARSE_NONE: return 1;
  case TFX_SPARSE_SLIDING: return d < s->window;
  case TFX_SPARSE_DILATED: return d % s->dilation == 0 && (s->window == 0 || d < s->window);
  case TFX_SPARSE_STRIDED: return d < s->stride || d % s->stride == 0;
  case TFX_SPARSE_FIXED: return i / s->stride == j / s->stride || j % s->stride >= s->stride - s->summary;
  case TFX_SPARSE_LONGFORMER: return (d < s->window && d % s->dilation == 0) || is_global(s, i) || is_global(s, j);
  case TFX_SPARSE_BIGBIRD: {
    int64_t qb = i / s->block, kb = j / s->block;
    if (qb - kb <= 1 && kb - qb <= 1) return 1;
    if (qb < s->n_global || kb < s->n_global) return 1;
    int64_t r[MAX_RANDOM];
    tfx_bigbird_random_blocks(s, causal, max_seq, qb, r);
    for (int k = 0; k < s->random; k++)
      if (r[k] == kb) return 1;
    return 0;
  }
  }
  return 0;
}

/* ---- the block rule ----
 * Within a block, d = i - j takes every integer of [i0 - (j1 - 1), (i1 - 1) - j0];
 * so the distances of the pairs a mask keeps form one contiguous range
 * [a, b] (all values reached), over which the distance-only rules are
 * decided exactly. */

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* dilated(dil, window w; 0 = unbounded) over distances [a, b]: some / every e allowed */
static int dilated_any(int64_t a, int64_t b, int64_t dil, int64_t w) {
  int64_t hi = w ? min64(b, w - 1) : b;
  return hi >= a && hi / dil * dil >= a;
}
static int dilated_all(int64_t a, int64_t b, int64_t dil, int64_t w) {
  return (w == 0 || b < w) && (a == b ? a % dil == 0 : dil == 1);
}

/* the distinct global positions (Longformer) in [lo, hi) */
static int64_t global_count(const tfx_sparse *s, int64_t lo, int64_t hi) {
  if (lo >= hi) return 0;
  int64_t c = max64(0, min64(hi, s->n_global) - lo);
  for (int k = 0; k < s->n_global_list; k++) {
    int64_t p = s->global_list[k];
    int dup = p < s->n_global;
    for (int e = 0; e < k && !dup; e++) dup = s->global_list[e] == p;
    if (!dup && p >= lo && p < hi) c++;
  }
  return c;
}

/* FIXED: some / every key column of [lo, hi) is a summary column (j % l >= l - c) */
static int summary_any(const tfx_sparse *s, int64_t lo, int64_t hi) {
  if (lo >= hi) return 0;
  int64_t l = s->stride, r = lo % l, first = r >= l - s->summary ? lo : lo + (l - s->summary - r);
  return first < hi;
}
static int summary_all(const tfx_sparse *s, int64_t lo, int64_t hi) {
  if (lo >= hi) return 1;
  int64_t l = s->stride;
  if (s->summary >= l) return 1;
  return lo / l == (hi - 1) / l && lo % l >= l - s->summary;
}

/* BigBird, query block qb (its positions [ia, ib) of the block), keys [j0, j1) */
static tfx_attn_block bigbird_qblock(const tfx_node *n, int64_t qb, int64_t ia, int64_t ib, int64_t j0, int64_t j1,
                                     int64_t max_seq) {
  const tfx_sparse *s = &n->sparse;
  int causal = n->mask == TFX_MASK_CAUSAL;
  int64_t B = s->block, jb = causal ? min64(j1, ib) : j1; /* keys some query of the block may see */
  if (j0 >= jb) return TFX_ATTN_BLOCK_NONE;
  int causal_full = !causal || j1 - 1 <= ia;
  if (qb < s->n_global) return causal_full ? TFX_ATTN_BLOCK_FULL : TFX_ATTN_BLOCK_PARTIAL;
  int64_t r[MAX_RANDOM];
  tfx_bigbird_random_blocks(s, causal, max_seq, qb, r);
  /* any: a key of [j0, jb) in a global block, a neighbour block or a random block */
  int any = j0 < (int64_t)s->n_global * B || (max64(j0, (qb - 1) * B) < min64(jb, (qb + 2) * B));
  for (int k = 0; k < s->random && !any; k++) any = max64(j0, r[k] * B) < min64(jb, r[k] * B + B);
  if (!any) return TFX_ATTN_BLOCK_NONE;
  if (!causal_full) return TFX_ATTN_BLOCK_PARTIAL;
  /* all: every key block of [j0, j1) is allowed (a disallowed one comes within 4 + random blocks) */
  for (int64_t kb = max64(j0 / B, s->n_global); kb <= (j1 - 1) / B; kb++) {
    int ok = kb >= qb - 1 && kb <= qb + 1;
    for (int k = 0; k < s->random && !ok; k++) ok = r[k] == kb;
    if (!ok) return TFX_ATTN_BLOCK_PARTIAL;
  }
  return TFX_ATTN_BLOCK_FULL;
}

tfx_attn_block tfx_attn_block_allowed(const tfx_node *n, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                                      int64_t max_seq) {
  if (i0 >= i1 || j0 >= j1) return TFX_ATTN_BLOCK_NONE;
  int causal = n->mask == TFX_MASK_CAUSAL;
  if (causal && j0 > i1 - 1) return TFX_ATTN_BLOCK_NONE; /* every key after every query */
  int causal_full = !causal || j1 - 1 <= i0;
  /* the distances [a, b] of the pairs the mask keeps */
  int64_t dmin = i0 - (j1 - 1), dmax = (i1 - 1) - j0, a, b;
  if (causal) {
    a = max64(dmin, 0), b = dmax;
  } else if (dmin <= 0 && dmax >= 0) {
    a = 0, b = max64(-dmin, dmax);
  } else {
    a = dmin > 0 ? dmin : -dmax, b = dmin > 0 ? dmax : -dmin;
  }
  const tfx_sparse *s = &n->sparse;
  int any = 0, all = 0;
  switch (s->kind) {
  case TFX_SPARSE_NONE: any = 1, all = 1; break;
  case TFX_SPARSE_SLIDING: any = a < s->window, all = b < s->window; break;
  case TFX_SPARSE_DILATED:
    any = dilated_any(a, b, s->dilation, s->window), all = dilated_all(a, b, s->dilation, s->window);
    break;
  case TFX_SPARSE_STRIDED: {
    int64_t l = s->stride, lo = max64(a, l);
    any = a < l || b / l * l >= a;
    all = lo > b || l == 1 || (lo == b && b % l == 0);
    break;
  }
  case TFX_SPARSE_FIXED: {
    int64_t l = s->stride, jb = causal ? min64(j1, i1) : j1;
    /* a common stride-block (under a causal mask its pairs include one with j <= i) or a summary column */
    any = max64(i0 / l, j0 / l) <= min64((i1 - 1) / l, (j1 - 1) / l) || summary_any(s, j0, jb);
    if (i0 / l == (i1 - 1) / l) {
      int64_t qb = i0 / l; /* the queries' block: every other key must be a summary column */
      all = summary_all(s, j0, min64(j1, qb * l)) && summary_all(s, max64(j0, qb * l + l), j1);
    } else {
      all = summary_all(s, j0, j1);
    }
    break;
  }
  case TFX_SPARSE_LONGFORMER: {
    int64_t w = s->window, dil = s->dilation;
    int64_t gi = causal ? global_count(s, max64(i0, j0), i1) : global_count(s, i0, i1);
    int64_t gj = causal ? global_count(s, j0, min64(j1, i1)) : global_count(s, j0, j1);
    any = dilated_any(a, b, dil, w) || gi > 0 || gj > 0;
    all = dilated_all(a, b, dil, w) || global_count(s, i0, i1) == i1 - i0 || global_count(s, j0, j1) == j1 - j0;
    break;
  }
  case TFX_SPARSE_BIGBIRD: {
    int64_t B = s->block;
    int none = 1, full = 1;
    for (int64_t qb = i0 / B; qb <= (i1 - 1) / B; qb++) {
      tfx_attn_block r = bigbird_qblock(n, qb, max64(i0, qb * B), min64(i1, qb * B + B), j0, j1, max_seq);
      none &= r == TFX_ATTN_BLOCK_NONE;
      full &= r == TFX_ATTN_BLOCK_FULL;
      if (!none && !full) break;
    }
    return none ? TFX_ATTN_BLOCK_NONE : full ? TFX_ATTN_BLOCK_FULL : TFX_ATTN_BLOCK_PARTIAL;
  }
  }
  if (!any) return TFX_ATTN_BLOCK_NONE;
  return all && causal_full ? TFX_ATTN_BLOCK_FULL : TFX_ATTN_BLOCK_PARTIAL;
}

/* ---- the gathered form (dilated) ----
 * i = c + a k, j = c + b k: |i - j| = |a - b| k is a multiple of k, and
 * |a - b| k < w <=> |a - b| < ceil(w / k); i, j of different residues have a
 * distance no multiple of k. */
int tfx_attn_gather(const tfx_node *n, tfx_node *sub) {
  const tfx_sparse *s = &n->sparse;
  if ((n->op != TFX_OP_ATTENTION && n->op != TFX_OP_MLA_ATTENTION) || s->kind != TFX_SPARSE_DILATED ||
      s->dilation < 2 || s->window < 0)
    return 0;
  *sub = *n;
  memset(&sub->sparse, 0, sizeof sub->sparse);
  sub->sparse.kind = s->window ? TFX_SPARSE_SLIDING : TFX_SPARSE_NONE;
  sub->sparse.window = s->window ? (s->window + s->dilation - 1) / s->dilation : 0;
  return s->dilation;
}

/* ---- schedules ---- */

tfx_attn_sched tfx_attn_schedule_auto(const tfx_graph *g, const tfx_node *n) {
  if (g->schedule.attention == TFX_SCHED_ATTN_DENSE) return TFX_ATTN_SCHED_ROW;
  if (tfx_attn_schedule_applicable(n, TFX_ATTN_SCHED_FLASH)) return TFX_ATTN_SCHED_FLASH;
  if (tfx_attn_schedule_applicable(n, TFX_ATTN_SCHED_BLOCK_SPARSE)) return TFX_ATTN_SCHED_BLOCK_SPARSE;
  return TFX_ATTN_SCHED_ROW;
}

int tfx_attn_schedule_applicable(const tfx_node *n, int s) {
  if (n->op != TFX_OP_ATTENTION && n->op != TFX_OP_MLA_ATTENTION) return 0;
  switch (s) {
  case TFX_ATTN_SCHED_ROW: return 1;
  /* a relative bias table (4th operand) and segment ids are read on the ROW schedule's per-key score path
     only; a key mask by every schedule */
  case TFX_ATTN_SCHED_FLASH:
    return n->op == TFX_OP_ATTENTION && n->sparse.kind == TFX_SPARSE_NONE && n->n_inputs - !!n->key_mask == 3;
  case TFX_ATTN_SCHED_BLOCK_SPARSE:
    return n->op == TFX_OP_ATTENTION && n->sparse.kind != TFX_SPARSE_NONE && n->n_inputs - !!n->key_mask == 3;
  default: return 0;
  }
}

tfx_attn_sched tfx_attn_schedule_of(const tfx_graph *g, const tfx_node *n, int decode) {
  if (decode) return TFX_ATTN_SCHED_ROW;
  return n->attn_schedule != TFX_ATTN_SCHED_UNSET ? (tfx_attn_sched)n->attn_schedule : tfx_attn_schedule_auto(g, n);
}

int tfx_attn_split_fits(const tfx_graph *g, const tfx_node *n, int splits) {
  if (n->op != TFX_OP_ATTENTION || n->mask != TFX_MASK_CAUSAL || n->n_inputs != 3 || n->id == g->output) return 0;
  if (splits < 2 || splits > TFX_ATTN_MAX_SPLITS || n->head_dim <= 0 || n->heads <= 0) return 0;
  return (g->max_seq - 1) * (int64_t)n->head_dim >= (int64_t)splits * (n->head_dim + 2);
}

int tfx_attn_tiny_fits(const tfx_graph *g, const tfx_node *n) {
  (void)g;
  return n->op == TFX_OP_ATTENTION && n->mask == TFX_MASK_CAUSAL && n->n_inputs == 3 &&
         n->sparse.kind == TFX_SPARSE_NONE && !n->alibi && n->head_dim > 0 && n->head_dim <= TFX_ATTN_TINY_D &&
         n->heads > 0 && n->kv_heads > 0 && n->heads % n->kv_heads == 0;
}

int tfx_attn_tiny_auto(const tfx_graph *g, const tfx_node *n) {
  int64_t d = n->head_dim;
  return tfx_attn_tiny_fits(g, n) && d <= TFX_ATTN_TINY_AUTO_D && (d & (d - 1)) == 0;
}

int tfx_attn_tiny_chosen(const tfx_graph *g, const tfx_node *n) {
  if (n->attn_split != 0) return 0;
  if (g->schedule.decode == TFX_SCHED_DECODE_TINY) return tfx_attn_tiny_fits(g, n);
  return g->schedule.decode == TFX_SCHED_DECODE_AUTO && tfx_attn_tiny_auto(g, n);
}

const char *tfx_attn_schedule_name(int s) {
  switch (s) {
  case TFX_ATTN_SCHED_ROW: return "row";
  case TFX_ATTN_SCHED_FLASH: return "flash";
  case TFX_ATTN_SCHED_BLOCK_SPARSE: return "block_sparse";
  default: return "unset";
  }
}

/* ---- checks ---- */

int tfx_attn_bias_operand(const tfx_node *n) {
  return n->op == TFX_OP_ATTENTION &&
                 n->n_inputs - (n->key_mask ? 1 : 0) - (n->segments ? 1 : 0) - (n->sparse.global_input ? 1 : 0) == 4
             ? 3
             : -1;
}

int tfx_attn_key_mask_operand(const tfx_node *n) {
  int last = n->n_inputs - 1 - (n->segments ? 1 : 0) - (n->sparse.global_input ? 1 : 0);
  return n->op == TFX_OP_ATTENTION && n->key_mask && last >= 3 ? last : -1;
}

int tfx_attn_segments_operand(const tfx_node *n) {
  return n->op == TFX_OP_ATTENTION && n->segments && !n->sparse.global_input && n->n_inputs >= 4 ? n->n_inputs - 1 : -1;
}

int tfx_attn_global_operand(const tfx_node *n) {
  if (!n->sparse.global_input || n->sparse.kind != TFX_SPARSE_LONGFORMER) return -1;
  if (n->op == TFX_OP_ATTENTION) return n->n_inputs >= 4 ? n->n_inputs - 1 : -1;
  if (n->op == TFX_OP_GLOBAL_ATTENTION) return n->n_inputs == 5 + n->key_mask ? n->n_inputs - 1 : -1;
  return -1;
}

/* the per-call global tokens' operand: i32[T] on a longformer node of mask none, dilation 1, no segments */
static int check_global_input(const tfx_node *n, const tfx_type *const *a, int qrows_t, char *err, size_t errlen) {
  const char *on = tfx_op_name(n->op);
  char s0[64];
  if (!n->sparse.global_input) return 0;
  if (n->sparse.global_input != 1 || n->sparse.kind != TFX_SPARSE_LONGFORMER || n->sparse.n_global ||
      n->sparse.n_global_list)
    return tfx_errf(err, errlen, "%s: per-call global tokens need a longformer pattern without compile-time ones", on);
  if (n->mask != TFX_MASK_NONE || n->sparse.dilation != 1 || n->segments || !qrows_t)
    return tfx_errf(err, errlen,
                    "%s: per-call global tokens need mask = none, dilation 1, no segments and q, k of the call's rows",
                    on);
  int gi = tfx_attn_global_operand(n);
  if (gi < 0) return tfx_errf(err, errlen, "%s: per-call global tokens need their operand", on);
  const tfx_type *m = a[gi];
  if (m->dtype != TFX_DT_I32 || m->rank != 1 || m->dims[0] != TFX_DIM_T)
    return tfx_errf(err, errlen, "%s: the global token mask is %s, expected i32[T] (nonzero = global)", on,
                    tfx_type_str(m, s0, sizeof s0));
  return 0;
}

void tfx_segment_bounds(const int32_t *seg, int64_t n, int64_t i, int64_t *lo, int64_t *hi) {
  int64_t a = i, b = i + 1;
  while (a > 0 && seg[a - 1] == seg[i]) a--;
  while (b < n && seg[b] == seg[i]) b++;
  *lo = a;
  *hi = b;
}

int tfx_check_attention(const tfx_node *n, char *err, size_t errlen) {
  const char *on = tfx_op_name(n->op);
  const tfx_sparse *s = &n->sparse;
  if (n->mask != TFX_MASK_NONE && n->mask != TFX_MASK_CAUSAL)
    return tfx_errf(err, errlen, "%s: unknown mask kind %d", on, (int)n->mask);
  if (n->attn_schedule != TFX_ATTN_SCHED_UNSET && !tfx_attn_schedule_applicable(n, n->attn_schedule))
    return tfx_errf(err, errlen, "%s: schedule %s (%d) does not apply to this node", on,
                    tfx_attn_schedule_name(n->attn_schedule), n->attn_schedule);
  if (n->alibi != 0 && n->alibi != 1) return tfx_errf(err, errlen, "%s: alibi must be 0 or 1", on);
  if (n->op == TFX_OP_ATTENTION && (!(n->scale >= 0) || !isfinite(n->scale)))
    return tfx_errf(err, errlen, "%s: scale = %g must be finite and > 0 (0: 1/sqrt(head_dim))", on, n->scale);
  if (n->op == TFX_OP_ATTENTION && (!(n->softcap >= 0) || !isfinite(n->softcap)))
    return tfx_errf(err, errlen, "%s: softcap = %g must be finite and > 0 (0: none)", on, n->softcap);
  if (n->op == TFX_OP_ATTENTION && tfx_attn_bias_operand(n) < 0 && (n->rel_max_distance || n->rel_bidirectional))
    return tfx_errf(err, errlen, "%s: max_distance and bidirectional need a relative bias table", on);
  if (n->attn_split != 0 && (n->op != TFX_OP_ATTENTION || n->mask != TFX_MASK_CAUSAL || n->n_inputs != 3 ||
                             n->attn_split < 2 || n->attn_split > TFX_ATTN_MAX_SPLITS))
    return tfx_errf(err, errlen, "%s: decode = split(%d) needs a causal attention of q, k, v and 2..%d parts", on,
                    n->attn_split, TFX_ATTN_MAX_SPLITS);
  switch (s->kind) {
  case TFX_SPARSE_NONE: return 0;
  case TFX_SPARSE_SLIDING:
    if (s->window < 1 || s->window > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: sliding window %d must be >= 1", on, s->window);
    return 0;
  case TFX_SPARSE_DILATED:
    if (s->dilation < 1 || s->dilation > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: dilation %d must be >= 1", on, s->dilation);
    if (s->window < 0 || s->window > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: dilated window %d must be >= 0 (0: unbounded)", on, s->window);
    return 0;
  case TFX_SPARSE_STRIDED:
  case TFX_SPARSE_FIXED:
    if (s->stride < 1 || s->stride > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: stride %d must be >= 1", on, s->stride);
    if (s->kind == TFX_SPARSE_FIXED && (s->summary < 1 || s->summary > s->stride))
      return tfx_errf(err, errlen, "%s: fixed summary %d must be in 1..%d (the stride)", on, s->summary, s->stride);
    return 0;
  case TFX_SPARSE_LONGFORMER:
    if (s->window < 1 || s->window > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: longformer window %d must be >= 1", on, s->window);
    if (s->dilation < 1 || s->dilation > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: longformer dilation %d must be >= 1", on, s->dilation);
    if (s->n_global < 0 || s->n_global > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: longformer global %d must be >= 0", on, s->n_global);
    if (s->n_global_list < 0 || s->n_global_list > TFX_MAX_GLOBAL_TOKENS)
      return tfx_errf(err, errlen, "%s: at most %d listed global tokens", on, TFX_MAX_GLOBAL_TOKENS);
    for (int k = 0; k < s->n_global_list; k++)
      if (s->global_list[k] < 0) return tfx_errf(err, errlen, "%s: global token %d is negative", on, s->global_list[k]);
    return 0;
  case TFX_SPARSE_BIGBIRD:
    if (s->block < 1 || s->block > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: bigbird block_size %d must be >= 1", on, s->block);
    if (s->n_global < 0 || s->n_global > MAX_PARAM)
      return tfx_errf(err, errlen, "%s: bigbird global %d must be >= 0", on, s->n_global);
    if (s->random < 0 || s->random > MAX_RANDOM)
      return tfx_errf(err, errlen, "%s: bigbird random %d must be in 0..%d", on, s->random, MAX_RANDOM);
    return 0;
  }
  return tfx_errf(err, errlen, "%s: unknown sparse pattern %d", on, (int)s->kind);
}

/* ---- type inference ---- */

int tfx_infer_attention(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                        size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  if (n->heads <= 0 || n->kv_heads <= 0 || n->head_dim <= 0 || n->heads % n->kv_heads)
    return tfx_errf(err, errlen, "attention: heads (%d) must be a positive multiple of kv_heads (%d)", n->heads,
                    n->kv_heads);
  if (tfx_check_attention(n, err, errlen)) return -1;
  int causal = n->mask == TFX_MASK_CAUSAL;
  int64_t qd = (int64_t)n->heads * n->head_dim, kd = (int64_t)n->kv_heads * n->head_dim;
  if (!is_f32_2(a[0]) || a[0]->dims[1] != qd || (causal && a[0]->dims[0] != TFX_DIM_T))
    return tfx_errf(err, errlen, "attention: q is %s, expected f32[%s, %lld] (%d heads of %d)",
                    tfx_type_str(a[0], s0, sizeof s0), causal ? "T" : "rows", (long long)qd, n->heads, n->head_dim);
  for (int i = 1; i < 3; i++)
    if (!is_f32_2(a[i]) || a[i]->dims[1] != kd || (causal && a[i]->dims[0] != TFX_DIM_T))
      return tfx_errf(err, errlen, "attention: %s is %s, expected f32[%s, %lld] (%d kv_heads of %d)",
                      i == 1 ? "k" : "v", tfx_type_str(a[i], s1, sizeof s1), causal ? "T" : "rows", (long long)kd,
                      n->kv_heads, n->head_dim);
  if (a[1]->dims[0] != a[2]->dims[0])
    return tfx_errf(err, errlen, "attention: k %s and v %s must have the same rows", tfx_type_str(a[1], s0, sizeof s0),
                    tfx_type_str(a[2], s1, sizeof s1));
  if (n->key_mask != 0 && n->key_mask != 1) return tfx_errf(err, errlen, "attention: key_mask must be 0 or 1");
  if (n->segments != 0 && n->segments != 1) return tfx_errf(err, errlen, "attention: segments must be 0 or 1");
  int extra = (n->key_mask ? 1 : 0) + (n->segments ? 1 : 0) + (n->sparse.global_input ? 1 : 0);
  if (n->n_inputs < 3 + extra)
    return tfx_errf(err, errlen, "attention: key_mask = %d and segments = %d need their operands", n->key_mask,
                    n->segments);
  if (n->n_inputs - extra > 4)
    return tfx_errf(err, errlen,
                    "attention: operands past the bias table are the key mask (key_mask = 1), the "
                    "segment ids (segments = 1) and the global tokens (a longformer pattern's global_input)");
  if (check_global_input(n, a, a[0]->dims[0] == TFX_DIM_T && a[1]->dims[0] == TFX_DIM_T, err, errlen)) return -1;
  int si = tfx_attn_segments_operand(n);
  if (si >= 0) {
    const tfx_type *m = a[si];
    if (m->dtype != TFX_DT_I32 || m->rank != 1 || m->dims[0] != TFX_DIM_T)
      return tfx_errf(err, errlen, "attention: the segment ids are %s, expected i32[T] (one id per row)",
                      tfx_type_str(m, s0, sizeof s0));
    if (causal || a[0]->dims[0] != TFX_DIM_T || a[1]->dims[0] != TFX_DIM_T)
      return tfx_errf(err, errlen, "attention: segment ids need mask = none and q, k of the call's T rows");
  }
  int km = tfx_attn_key_mask_operand(n);
  if (km >= 0) {
    const tfx_type *m = a[km];
    if ((m->dtype != TFX_DT_F32 && m->dtype != TFX_DT_I32) || m->rank != 1 || m->dims[0] != a[1]->dims[0])
      return tfx_errf(err, errlen, "attention: the key mask is %s, expected f32[%s] or i32[%s] (one value per key)",
                      tfx_type_str(m, s0, sizeof s0), a[1]->dims[0] == TFX_DIM_T ? "T" : "rows of k",
                      a[1]->dims[0] == TFX_DIM_T ? "T" : "rows of k");
  }
  if (tfx_attn_bias_operand(n) == 3) {
    int64_t minb = n->rel_bidirectional ? 4 : 2;
    if (a[3]->dtype != TFX_DT_F32 || a[3]->rank != 2 || a[3]->dims[1] != n->heads || a[3]->dims[0] < minb ||
        a[3]->dims[0] > 1024 || (n->rel_bidirectional && a[3]->dims[0] % 2))
      return tfx_errf(
          err, errlen, "attention: the relative bias table is %s, expected f32[buckets, %d] with %s buckets",
          tfx_type_str(a[3], s0, sizeof s0), n->heads, n->rel_bidirectional ? "an even number of 4..1024" : "2..1024");
    if (n->rel_max_distance < 1 || n->rel_bidirectional < 0 || n->rel_bidirectional > 1 || n->alibi)
      return tfx_errf(err, errlen, "attention: a relative bias needs max_distance >= 1 and no ALiBi");
    int64_t half = n->rel_bidirectional ? a[3]->dims[0] / 2 : a[3]->dims[0];
    if (n->rel_max_distance <= half / 2)
      return tfx_errf(err, errlen, "attention: max_distance = %d must exceed the exact buckets (%lld)",
                      n->rel_max_distance, (long long)(half / 2));
  }
  *out = *a[0];
  return 0;
}

int tfx_infer_mla(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                  size_t errlen) {
  (void)g;
  char s0[64];
  int64_t H = n->heads, dn = n->head_dim, dr = n->rope_dim, dv = n->v_dim, r = n->rank;
  if (H <= 0 || dn <= 0 || dv <= 0 || r <= 0 || dr < 0 || dr % 2)
    return tfx_errf(err, errlen,
                    "mla_attention: heads %lld, head_dim %lld, v_dim %lld and rank %lld must be >= 1 and rope_dim %lld "
                    "even and >= 0",
                    (long long)H, (long long)dn, (long long)dv, (long long)r, (long long)dr);
  if (n->mask != TFX_MASK_CAUSAL)
    return tfx_errf(err, errlen, "mla_attention needs mask = causal (its KV cache holds the latent)");
  if (tfx_check_attention(n, err, errlen)) return -1;
  if (dr > 0 && !(n->theta > 0 && isfinite(n->theta)))
    return tfx_errf(err, errlen, "mla_attention: theta must be finite and > 0");
  if (!(n->eps >= 0 && isfinite(n->eps))) return tfx_errf(err, errlen, "mla_attention: eps must be finite and >= 0");
  if (!is_f32_2(a[0]) || a[0]->dims[0] != TFX_DIM_T || a[0]->dims[1] != H * (dn + dr))
    return tfx_errf(err, errlen, "mla_attention: q is %s, expected f32[T, %lld] (%lld heads of %lld + %lld)",
                    tfx_type_str(a[0], s0, sizeof s0), (long long)(H * (dn + dr)), (long long)H, (long long)dn,
                    (long long)dr);
  if (!is_f32_2(a[1]) || a[1]->dims[0] != TFX_DIM_T || a[1]->dims[1] != r + dr)
    return tfx_errf(err, errlen, "mla_attention: ckv is %s, expected f32[T, %lld] (rank %lld + rope_dim %lld)",
                    tfx_type_str(a[1], s0, sizeof s0), (long long)(r + dr), (long long)r, (long long)dr);
  if (!tfx_dtype_weight_ok(a[2]->dtype) || a[2]->rank != 2 || a[2]->dims[0] != H * (dn + dv) || a[2]->dims[1] != r)
    return tfx_errf(err, errlen,
                    "mla_attention: wkv_b is %s, expected f32[%lld, %lld] (%lld heads of %lld + %lld, rank %lld)",
                    tfx_type_str(a[2], s0, sizeof s0), (long long)(H * (dn + dv)), (long long)r, (long long)H,
                    (long long)dn, (long long)dv, (long long)r);
  if (n->n_inputs == 4 && (a[3]->dtype != TFX_DT_F32 || a[3]->rank != 1 || a[3]->dims[0] != r))
    return tfx_errf(err, errlen, "mla_attention: kv_norm is %s, expected f32[%lld]", tfx_type_str(a[3], s0, sizeof s0),
                    (long long)r);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, H * dv});
  return 0;
}

int64_t tfx_node_kv_bytes(const tfx_node *n, int64_t max_seq) {
  if (n->op == TFX_OP_ATTENTION && n->mask == TFX_MASK_CAUSAL) /* K, V, and a key mask's values */
    return 2 * max_seq * (int64_t)n->kv_heads * n->head_dim * 4 + (n->key_mask ? max_seq * 4 : 0);
  if (n->op == TFX_OP_MLA_ATTENTION) return max_seq * ((int64_t)n->rank + n->rope_dim) * 4;
  if (tfx_op_has(n->op, TFX_TRAIT_STATE)) return tfx_recurrent_state_bytes(n); /* ir/recurrent.c */
  return 0;
}

int tfx_attn_kv_owner(const tfx_graph *g, const tfx_node *n) {
  if (n->op != TFX_OP_ATTENTION || n->mask != TFX_MASK_CAUSAL || n->n_inputs < 3) return -1;
  for (int i = 0; i < n->id && i < g->n_nodes; i++) {
    const tfx_node *o = &g->nodes[i];
    if (o->op == TFX_OP_ATTENTION && o->mask == TFX_MASK_CAUSAL && o->n_inputs >= 3 && o->inputs[1] == n->inputs[1] &&
        o->inputs[2] == n->inputs[2] && o->kv_heads == n->kv_heads && o->head_dim == n->head_dim &&
        o->key_mask == n->key_mask && /* a key mask is kept with the cache: the same one */
        (!n->key_mask || o->inputs[tfx_attn_key_mask_operand(o)] == n->inputs[tfx_attn_key_mask_operand(n)]))
      return i;
  }
  return n->id;
}

/* ---- printing ---- */

static void print_sparse(const tfx_node *n, const tfx_sparse *s, FILE *out) {
  switch (s->kind) {
  case TFX_SPARSE_NONE: return;
  case TFX_SPARSE_SLIDING: fprintf(out, ", sparse = sliding(window = %d)", s->window); return;
  case TFX_SPARSE_DILATED:
    fprintf(out, ", sparse = dilated(dilation = %d, window = %d)", s->dilation, s->window);
    return;
  case TFX_SPARSE_STRIDED: fprintf(out, ", sparse = strided(stride = %d)", s->stride); return;
  case TFX_SPARSE_FIXED: fprintf(out, ", sparse = fixed(stride = %d, summary = %d)", s->stride, s->summary); return;
  case TFX_SPARSE_LONGFORMER:
    fprintf(out, ", sparse = longformer(window = %d, dilation = %d, global = ", s->window, s->dilation);
    if (s->global_input && tfx_attn_global_operand(n) >= 0) {
      fprintf(out, "%%%d", n->inputs[tfx_attn_global_operand(n)]);
    } else if (s->n_global_list) {
      fprintf(out, "tokens(");
      for (int k = 0; k < s->n_global_list; k++) fprintf(out, "%s%d", k ? ", " : "", s->global_list[k]);
      fprintf(out, ")");
      if (s->n_global) fprintf(out, ", global_first = %d", s->n_global);
    } else {
      fprintf(out, "%d", s->n_global);
    }
    fprintf(out, ")");
    return;
  case TFX_SPARSE_BIGBIRD:
    fprintf(out, ", sparse = bigbird(block_size = %d, global = %d, random = %d, seed = %llu)", s->block, s->n_global,
            s->random, (unsigned long long)s->seed);
    return;
  }
}

/* the print column of ATTENTION and MLA_ATTENTION */
void tfx_print_attention(const tfx_node *n, FILE *out) {
  if (n->op == TFX_OP_MLA_ATTENTION) {
    fprintf(out, " {heads = %d, head_dim = %d, rope_dim = %d, v_dim = %d, rank = %d", n->heads, n->head_dim,
            n->rope_dim, n->v_dim, n->rank);
    if (n->rope_dim > 0)
      fprintf(out, ", theta = %.9g, style = %s", n->theta, n->rope_style == TFX_ROPE_HALF ? "half" : "interleaved");
    if (n->n_inputs == 4) fprintf(out, ", eps = %.9g", n->eps);
  } else {
    fprintf(out, " {heads = %d, kv_heads = %d, head_dim = %d", n->heads, n->kv_heads, n->head_dim);
  }
  fprintf(out, ", mask = %s", n->mask == TFX_MASK_CAUSAL ? "causal" : "none");
  if (n->alibi) fprintf(out, ", position = alibi");
  if (n->op == TFX_OP_ATTENTION && n->scale > 0) fprintf(out, ", scale = %.9g", n->scale);
  if (n->op == TFX_OP_ATTENTION && n->softcap > 0) fprintf(out, ", softcap = %.9g", n->softcap);
  if (n->op == TFX_OP_ATTENTION && n->key_mask)
    fprintf(out, ", key_mask = %%%d", n->inputs[tfx_attn_key_mask_operand(n)]);
  if (n->op == TFX_OP_ATTENTION && n->segments)
    fprintf(out, ", segments = %%%d", n->inputs[tfx_attn_segments_operand(n)]);
  if (n->op == TFX_OP_ATTENTION && tfx_attn_bias_operand(n) == 3)
    fprintf(out, ", position = t5(max_distance = %d, bidirectional = %s)", n->rel_max_distance,
            n->rel_bidirectional ? "true" : "false");
  print_sparse(n, &n->sparse, out);
  if (n->attn_schedule != TFX_ATTN_SCHED_UNSET)
    fprintf(out, ", schedule = %s", tfx_attn_schedule_name(n->attn_schedule));
  if (n->attn_split >= 2) fprintf(out, ", decode = split(%d)", n->attn_split);
  fprintf(out, "}");
}

/* ---- GLOBAL_ATTENTION: Longformer's separate global projections ---- */

int64_t tfx_attn_global_rows(const tfx_sparse *s, int64_t rows, int64_t *out, int64_t max) {
  if (s->kind != TFX_SPARSE_LONGFORMER) return 0;
  int64_t c = min64(s->n_global, rows), m = 0;
  for (int64_t p = 0; p < c && out && p < max; p++) out[p] = p;
  int64_t extra[TFX_MAX_GLOBAL_TOKENS];
  for (int k = 0; k < s->n_global_list; k++) { /* the listed ones past the count, distinct, ascending */
    int64_t p = s->global_list[k], at = m;
    if (p < s->n_global || p >= rows) continue;
    int dup = 0;
    for (int64_t e = 0; e < m && !dup; e++) dup = extra[e] == p;
    if (dup) continue;
    while (at > 0 && extra[at - 1] > p) {
      extra[at] = extra[at - 1];
      at--;
    }
    extra[at] = p;
    m++;
  }
  for (int64_t e = 0; e < m && out; e++)
    if (c + e < max) out[c + e] = extra[e];
  return c + m;
}

int tfx_global_attn_key_mask_operand(const tfx_node *n) {
  return n->op == TFX_OP_GLOBAL_ATTENTION && n->key_mask && n->n_inputs == 5 + !!n->sparse.global_input ? 4 : -1;
}

/* the check column of GLOBAL_ATTENTION */
int tfx_check_global_attn(const tfx_node *n, char *err, size_t errlen) {
  if (n->heads <= 0 || n->kv_heads <= 0 || n->head_dim <= 0 || n->heads % n->kv_heads)
    return tfx_errf(err, errlen, "global_attention: heads (%d) must be a positive multiple of kv_heads (%d)", n->heads,
                    n->kv_heads);
  if (n->sparse.kind != TFX_SPARSE_LONGFORMER)
    return tfx_errf(err, errlen, "global_attention: its global tokens come from a longformer pattern");
  if (!(n->scale >= 0) || !isfinite(n->scale))
    return tfx_errf(err, errlen, "global_attention: scale = %g must be finite and > 0 (0: 1/sqrt(head_dim))", n->scale);
  if (n->key_mask != 0 && n->key_mask != 1) return tfx_errf(err, errlen, "global_attention: key_mask must be 0 or 1");
  if (n->sparse.global_input != 0 && n->sparse.global_input != 1)
    return tfx_errf(err, errlen, "global_attention: global_input must be 0 or 1");
  if (n->n_inputs != 4 + n->key_mask + n->sparse.global_input)
    return tfx_errf(err, errlen, "global_attention: %d operands, expected %d (y, q, k, v%s%s)", n->n_inputs,
                    4 + n->key_mask + n->sparse.global_input, n->key_mask ? ", key mask" : "",
                    n->sparse.global_input ? ", global token mask" : "");
  return tfx_check_attention(n, err, errlen); /* the pattern's numbers */
}

/* the infer column of GLOBAL_ATTENTION: y, qg f32[T, H*d]; kg, vg f32[T, G*d]; the key mask [T] */
int tfx_infer_global_attn(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                          size_t errlen) {
  (void)g;
  char s0[64];
  if (tfx_check_global_attn(n, err, errlen)) return -1;
  int64_t qd = (int64_t)n->heads * n->head_dim, kd = (int64_t)n->kv_heads * n->head_dim;
  static const char *const names[4] = {"the local attention", "the global q", "the global k", "the global v"};
  for (int i = 0; i < 4; i++) {
    int64_t cols = i < 2 ? qd : kd;
    if (!is_f32_2(a[i]) || a[i]->dims[0] != TFX_DIM_T || a[i]->dims[1] != cols)
      return tfx_errf(err, errlen, "global_attention: %s is %s, expected f32[T, %lld] (%d %sheads of %d)", names[i],
                      tfx_type_str(a[i], s0, sizeof s0), (long long)cols, i < 2 ? n->heads : n->kv_heads,
                      i < 2 ? "" : "kv_", n->head_dim);
  }
  int km = tfx_global_attn_key_mask_operand(n);
  if (km >= 0) {
    const tfx_type *m = a[km];
    if ((m->dtype != TFX_DT_F32 && m->dtype != TFX_DT_I32) || m->rank != 1 || m->dims[0] != TFX_DIM_T)
      return tfx_errf(err, errlen, "global_attention: the key mask is %s, expected f32[T] or i32[T]",
                      tfx_type_str(m, s0, sizeof s0));
  }
  if (check_global_input(n, a, 1, err, errlen)) return -1;
  *out = *a[0];
  return 0;
}

/* the print column of GLOBAL_ATTENTION */
void tfx_print_global_attn(const tfx_node *n, FILE *out) {
  fprintf(out, " {heads = %d, kv_heads = %d, head_dim = %d", n->heads, n->kv_heads, n->head_dim);
  if (n->scale > 0) fprintf(out, ", scale = %.9g", n->scale);
  if (n->key_mask) fprintf(out, ", key_mask = %%%d", n->inputs[4]);
  print_sparse(n, &n->sparse, out);
  fprintf(out, "}");
}
