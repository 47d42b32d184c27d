/* backend/k_attn_mask.c — the options of ATTENTION and MLA_ATTENTION in
 * LLVM IR, shared by their kernels: the key range a query row needs to visit
 * (0..i under a causal mask, narrowed to the window of sliding and windowed
 * dilated patterns), the predicate "key j is allowed for query i" of every
 * sparse pattern (ir/attention.c's tfx_attn_allowed, in integer IR, for one
 * pair or lane-wise for a flash tile's W queries; BigBird's
 * random blocks come from a constant table built at compile time with
 * tfx_bigbird_random_blocks), the ALiBi slope of a head (a constant table),
 * T5's relative position buckets (a constant table),
 * a row schedule's score with both applied, and the string that keys the
 * shared kernel bodies on all of these. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

static LLVMValueRef icmp(tfx_cg *cg, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildICmp(cg->b, p, a, b, "");
}

static LLVMValueRef or1(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b) { return a ? LLVMBuildOr(cg->b, a, b, "") : b; }

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}

void tfx_cg_attn_key(const tfx_node *n, int64_t max_seq, char *buf, size_t len) {
  const tfx_sparse *s = &n->sparse;
  uint64_t h = 0xcbf29ce484222325ull;
  h = fnv(h, s->global_list, sizeof(int) * (size_t)(s->n_global_list > 0 ? s->n_global_list : 0));
  snprintf(buf, len, "al%d_sp%d_%d_%d_%d_%d_%d_%d_%d_gi%d_%d_%llu_%016llx_S%lld", n->alibi, (int)s->kind, s->window,
           s->dilation, s->stride, s->summary, s->block, s->n_global, s->n_global_list, s->global_input, s->random,
           (unsigned long long)s->seed, (unsigned long long)h, (long long)max_seq);
}

static int windowed(const tfx_sparse *s) {
  return s->kind == TFX_SPARSE_SLIDING || (s->kind == TFX_SPARSE_DILATED && s->window > 0);
}

void tfx_cg_attn_key_range(tfx_cg *cg, const tfx_node *n, LLVMValueRef i, LLVMValueRef nkeys, LLVMValueRef *lo,
                           LLVMValueRef *hi) {
  *lo = tfx_cg_i64(cg, 0);
  *hi = nkeys;
  if (!windowed(&n->sparse)) return;
  int64_t w = n->sparse.window;
  LLVMValueRef first = tfx_cg_addc(cg, i, 1 - w);
  *lo = LLVMBuildSelect(cg->b, icmp(cg, LLVMIntSGT, first, *lo), first, *lo, "lo");
  if (n->mask != TFX_MASK_CAUSAL) *hi = tfx_cg_smin(cg, nkeys, tfx_cg_addc(cg, i, w));
}

/* A private constant array of i32 or f32 values named `name` (reused when it
 * exists already). */
static LLVMValueRef const_table(tfx_cg *cg, const char *name, LLVMTypeRef elem, LLVMValueRef *vals, int64_t n) {
  LLVMValueRef gv = LLVMGetNamedGlobal(cg->mod, name);
  if (gv) return gv;
  return tfx_cg_const_global(cg, name, LLVMConstArray2(elem, vals, (uint64_t)n), 0);
}

static LLVMValueRef load_table(tfx_cg *cg, LLVMValueRef gv, LLVMTypeRef elem, LLVMValueRef idx) {
  LLVMValueRef ix[2] = {tfx_cg_i64(cg, 0), idx};
  LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->b, LLVMGlobalGetValueType(gv), gv, ix, 2, "");
  return LLVMBuildLoad2(cg->b, elem, p, "");
}

LLVMValueRef tfx_cg_attn_slope(tfx_cg *cg, const tfx_node *n, LLVMValueRef h) {
  if (!n->alibi) return NULL;
  char name[64];
  snprintf(name, sizeof name, "tfx_alibi_slopes_H%d", n->heads);
  LLVMValueRef *vals = malloc((size_t)n->heads * sizeof *vals);
  if (!vals) {
    tfx_cg_fail(cg, "backend: out of memory");
    return NULL;
  }
  for (int k = 0; k < n->heads; k++) vals[k] = LLVMConstReal(cg->t_f32, tfx_alibi_slope(k, n->heads));
  LLVMValueRef gv = const_table(cg, name, cg->t_f32, vals, n->heads);
  free(vals);
  return load_table(cg, gv, cg->t_f32, h);
}

LLVMValueRef tfx_cg_attn_t5_buckets(tfx_cg *cg, const tfx_node *n, int64_t *span) {
  const tfx_graph *g = cg->g;
  int64_t S = g->max_seq, nb = g->nodes[n->inputs[3]].type.dims[0];
  for (int i = 0; i < 2; i++) {
    int64_t r = g->nodes[n->inputs[i]].type.dims[0];
    if (r != TFX_DIM_T && r > S) S = r;
  }
  *span = S;
  char name[128];
  snprintf(name, sizeof name, "tfx_t5_buckets_S%lld_B%lld_M%d_b%d", (long long)S, (long long)nb, n->rel_max_distance,
           n->rel_bidirectional);
  if (LLVMGetNamedGlobal(cg->mod, name)) return LLVMGetNamedGlobal(cg->mod, name);
  LLVMValueRef *vals = malloc((size_t)(2 * S - 1) * sizeof *vals);
  if (!vals) {
    tfx_cg_fail(cg, "backend: out of memory");
    return NULL;
  }
  for (int64_t k = 0; k < 2 * S - 1; k++)
    vals[k] = tfx_cg_i32(cg, tfx_t5_bucket(k - (S - 1), n->rel_bidirectional, (int)nb, n->rel_max_distance));
  LLVMValueRef gv = const_table(cg, name, cg->t_i32, vals, 2 * S - 1);
  free(vals);
  return gv;
}

/* BigBird's random blocks: [blocks x random] i32, row qb = the draws of qb (cg.h). */
LLVMValueRef tfx_cg_attn_bigbird_table(tfx_cg *cg, const tfx_node *n, int64_t *nb_out) {
  const tfx_sparse *s = &n->sparse;
  /* a row per query block: positions are < max_seq, rows of a static q fewer than its rows */
  const tfx_type *qt = &cg->g->nodes[n->inputs[0]].type;
  int64_t maxq = qt->dims[0] != TFX_DIM_T && qt->dims[0] > cg->g->max_seq ? qt->dims[0] : cg->g->max_seq;
  int64_t nb = (maxq + s->block - 1) / s->block;
  *nb_out = nb;
  int causal = n->mask == TFX_MASK_CAUSAL;
  char name[96];
  int64_t f[5] = {s->block, s->n_global, s->random, (int64_t)s->seed, (int64_t)s->kind};
  uint64_t h = fnv(0xcbf29ce484222325ull, f, sizeof f);
  snprintf(name, sizeof name, "tfx_bigbird_%016llx_c%d_S%lld_n%lld", (unsigned long long)h, causal,
           (long long)cg->g->max_seq, (long long)nb);
  if (LLVMGetNamedGlobal(cg->mod, name)) return LLVMGetNamedGlobal(cg->mod, name);
  int64_t cnt = nb * s->random;
  LLVMValueRef *vals = malloc((size_t)cnt * sizeof *vals);
  int64_t *r = malloc((size_t)s->random * sizeof *r);
  if (!vals || !r) {
    free(vals);
    free(r);
    tfx_cg_fail(cg, "backend: out of memory");
    return NULL;
  }
  for (int64_t qb = 0; qb < nb; qb++) {
    tfx_bigbird_random_blocks(s, causal, cg->g->max_seq, qb, r);
    for (int k = 0; k < s->random; k++) vals[qb * s->random + k] = tfx_cg_i32(cg, (int32_t)r[k]);
  }
  LLVMValueRef gv = const_table(cg, name, cg->t_i32, vals, cnt);
  free(vals);
  free(r);
  return gv;
}

/* A constant for the rule's operands: i64 (one pair), or a <W x i32> splat
 * (vec: the W query lanes of a flash tile). */
static LLVMValueRef cst(tfx_cg *cg, int vec, int64_t v) {
  return vec ? tfx_cg_splat(cg, tfx_cg_i32(cg, (int32_t)v)) : tfx_cg_i64(cg, v);
}

static LLVMValueRef is_global(tfx_cg *cg, const tfx_sparse *s, LLVMValueRef p, int vec) {
  LLVMValueRef r = NULL;
  if (s->n_global > 0) r = icmp(cg, LLVMIntSLT, p, cst(cg, vec, s->n_global));
  for (int k = 0; k < s->n_global_list; k++) r = or1(cg, r, icmp(cg, LLVMIntEQ, p, cst(cg, vec, s->global_list[k])));
  return r;
}

/* x mod c == 0 (x >= 0) */
static LLVMValueRef divisible(tfx_cg *cg, LLVMValueRef x, int64_t c, int vec) {
  return icmp(cg, LLVMIntEQ, LLVMBuildURem(cg->b, x, cst(cg, vec, c), ""), cst(cg, vec, 0));
}

/* BigBird's random-table entries idx (i64, or <W x i32> gathered) as i32 */
static LLVMValueRef table_entries(tfx_cg *cg, LLVMValueRef tab, LLVMValueRef idx, int vec) {
  if (!vec) return load_table(cg, tab, cg->t_i32, idx);
  LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(cg->b, cg->t_i32, tab, &idx, 1, "");
  LLVMTypeRef over[2] = {cg->t_vi, LLVMVectorType(cg->t_ptr, (unsigned)cg->W)};
  LLVMValueRef args[4] = {ptrs, tfx_cg_i32(cg, 4), LLVMConstAllOnes(cg->t_vm), LLVMConstNull(cg->t_vi)};
  return tfx_cg_intrinsic(cg, "llvm.masked.gather", over, 2, args, 4);
}

LLVMValueRef tfx_cg_attn_alibi(tfx_cg *cg, const tfx_node *n, LLVMValueRef s, LLVMValueRef i, LLVMValueRef j,
                               LLVMValueRef slope) {
  LLVMBuilderRef b = cg->b;
  if (!slope) return s;
  LLVMValueRef dist = tfx_cg_sub(cg, i, j);
  if (n->mask != TFX_MASK_CAUSAL) dist = LLVMBuildSelect(b, icmp(cg, LLVMIntSGE, i, j), dist, tfx_cg_sub(cg, j, i), "");
  return LLVMBuildFSub(b, s, LLVMBuildFMul(b, slope, LLVMBuildSIToFP(b, dist, cg->t_f32, ""), ""), "alibi");
}

LLVMValueRef tfx_cg_attn_score_adjust(tfx_cg *cg, const tfx_node *n, LLVMValueRef s, LLVMValueRef i, LLVMValueRef j,
                                      LLVMValueRef slope) {
  LLVMBuilderRef b = cg->b;
  s = tfx_cg_attn_alibi(cg, n, s, i, j, slope);
  LLVMValueRef allowed = tfx_cg_attn_allowed(cg, n, i, j);
  if (allowed) s = LLVMBuildSelect(b, allowed, s, LLVMConstReal(cg->t_f32, -INFINITY), "masked");
  return s;
}

/* The pattern's rule for query i and key j: both i64 (vec 0; the window of
 * sliding and dilated patterns left to the key range), or i the W query
 * positions of a tile (<W x i32>) and j one key (i64; vec 1, windows
 * included). */
static LLVMValueRef allowed_rule(tfx_cg *cg, const tfx_node *n, LLVMValueRef i, LLVMValueRef j, int vec) {
  LLVMBuilderRef b = cg->b;
  const tfx_sparse *s = &n->sparse;
  if (s->kind == TFX_SPARSE_NONE || (!vec && s->kind == TFX_SPARSE_SLIDING)) return NULL; /* the key range is exact */
  if (vec) j = tfx_cg_splat(cg, LLVMBuildTrunc(b, j, cg->t_i32, ""));
  LLVMValueRef d = tfx_cg_sub(cg, i, j);
  if (n->mask != TFX_MASK_CAUSAL) d = LLVMBuildSelect(b, icmp(cg, LLVMIntSGE, i, j), d, tfx_cg_sub(cg, j, i), "d");
  switch (s->kind) {
  case TFX_SPARSE_SLIDING: return icmp(cg, LLVMIntSLT, d, cst(cg, vec, s->window));
  case TFX_SPARSE_DILATED: {
    LLVMValueRef ok = divisible(cg, d, s->dilation, vec);
    if (vec && s->window > 0) ok = LLVMBuildAnd(b, ok, icmp(cg, LLVMIntSLT, d, cst(cg, vec, s->window)), "");
    return ok;
  }
  case TFX_SPARSE_STRIDED:
    return LLVMBuildOr(b, icmp(cg, LLVMIntSLT, d, cst(cg, vec, s->stride)), divisible(cg, d, s->stride, vec), "");
  case TFX_SPARSE_FIXED: {
    LLVMValueRef l = cst(cg, vec, s->stride);
    LLVMValueRef same = icmp(cg, LLVMIntEQ, LLVMBuildUDiv(b, i, l, ""), LLVMBuildUDiv(b, j, l, ""));
    LLVMValueRef summ = icmp(cg, LLVMIntSGE, LLVMBuildURem(b, j, l, ""), cst(cg, vec, s->stride - s->summary));
    return LLVMBuildOr(b, same, summ, "");
  }
  case TFX_SPARSE_LONGFORMER: {
    LLVMValueRef win = icmp(cg, LLVMIntSLT, d, cst(cg, vec, s->window));
    if (s->dilation > 1) win = LLVMBuildAnd(b, win, divisible(cg, d, s->dilation, vec), "");
    LLVMValueRef gi = is_global(cg, s, i, vec), gj = is_global(cg, s, j, vec);
    return or1(cg, or1(cg, gi, gj), win);
  }
  case TFX_SPARSE_BIGBIRD: {
    LLVMValueRef bl = cst(cg, vec, s->block);
    LLVMValueRef qb = LLVMBuildUDiv(b, i, bl, "qb"), kb = LLVMBuildUDiv(b, j, bl, "kb");
    /* |qb - kb| <= 1  <=>  (qb - kb + 1) as unsigned < 3 */
    LLVMValueRef ok =
        icmp(cg, LLVMIntULT, LLVMBuildAdd(b, tfx_cg_sub(cg, qb, kb), cst(cg, vec, 1), ""), cst(cg, vec, 3));
    if (s->n_global > 0) {
      LLVMValueRef g = cst(cg, vec, s->n_global);
      ok = LLVMBuildOr(b, ok, LLVMBuildOr(b, icmp(cg, LLVMIntSLT, qb, g), icmp(cg, LLVMIntSLT, kb, g), ""), "");
    }
    if (s->random > 0) {
      int64_t nb;
      LLVMValueRef tab = tfx_cg_attn_bigbird_table(cg, n, &nb);
      if (!tab) return NULL;
      /* the clamp only keeps loads in bounds */
      LLVMValueRef row = LLVMBuildMul(b, tfx_cg_smin(cg, qb, cst(cg, vec, nb - 1)), cst(cg, vec, s->random), "");
      LLVMValueRef kb32 = vec ? kb : LLVMBuildTrunc(b, kb, cg->t_i32, "");
      for (int k = 0; k < s->random; k++) {
        LLVMValueRef e = table_entries(cg, tab, LLVMBuildAdd(b, row, cst(cg, vec, k), ""), vec);
        ok = LLVMBuildOr(b, ok, icmp(cg, LLVMIntEQ, e, kb32), "");
      }
    }
    return ok;
  }
  default: return NULL;
  }
}

LLVMValueRef tfx_cg_attn_allowed(tfx_cg *cg, const tfx_node *n, LLVMValueRef i, LLVMValueRef j) {
  return allowed_rule(cg, n, i, j, 0);
}

LLVMValueRef tfx_cg_attn_allowed_v(tfx_cg *cg, const tfx_node *n, LLVMValueRef qi_v, LLVMValueRef j) {
  return allowed_rule(cg, n, qi_v, j, 1);
}
