/* backend/k_block_sparse.c — what the block-sparse schedule of ATTENTION
 * (TFX_ATTN_SCHED_BLOCK_SPARSE) knows of a sparse pattern: the table of key
 * groups each query tile visits, built at compile time with ir/'s block
 * rule (tfx_attn_block_allowed) (the pattern's mask lane-wise for the
 * partial tiles is k_attn_mask.c's tfx_cg_attn_allowed_v).
 *
 * The table: query positions in aligned tiles of QT = W (absolute
 * positions, so a chunked prefill after earlier calls reads the same rows:
 * a flash tile never straddles two of them), keys in aligned groups of KG
 * (the flash key group); for each query tile the runs of consecutive key
 * groups that are not empty and share one class, in order: off[qb] ..
 * off[qb + 1] index lo[] (the run's first group) and hi[] (one past its
 * last group, bit 31 set when every group of the run is FULL). A tile
 * that holds fewer positions (the first tile of a chunk, the last rows)
 * keeps its classes: empty and full stay true for a subset of the queries.
 * The flash body (k_flash_attention.c) walks the runs of its tile, the
 * decode entry's row body (k_attention.c) the runs of its query.
 * A dilated pattern (k >= 2) has a gathered table instead (globals
 * tfx_bsg_*): ir/'s tfx_attn_gather turns one residue class mod k into a
 * k-times smaller problem (sliding(ceil(w / k)) or no pattern on the class's
 * compressed indices a = i / k), and the table is that problem's, over
 * ceil(max_seq / k) compressed positions: the same table for every class.
 * The flash body's gathered tiles (W query rows of one class, keys of the
 * class) look it up with compressed positions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

/* ---- the table ---- */

static uint64_t fnv(const char *p) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  return h;
}

/* appends v to a growing array of constants */
static int push(tfx_cg *cg, LLVMValueRef **a, int64_t *n, int64_t *cap, int32_t v) {
  if (*n == *cap) {
    int64_t nc = *cap ? *cap * 2 : 256;
    LLVMValueRef *p = realloc(*a, (size_t)nc * sizeof *p);
    if (!p) return tfx_cg_fail(cg, "backend: out of memory");
    *a = p, *cap = nc;
  }
  (*a)[(*n)++] = tfx_cg_i32(cg, v);
  return 0;
}

static LLVMValueRef table_global(tfx_cg *cg, const char *name, LLVMValueRef *vals, int64_t n) {
  LLVMValueRef gv = LLVMGetNamedGlobal(cg->mod, name);
  if (gv) return gv;
  return tfx_cg_const_global(cg, name, LLVMConstArray2(cg->t_i32, vals, (uint64_t)n), 0);
}

/* The table of node n (its rule) over query positions [0, maxq) and keys [0, maxk); max_seq: the rule's
 * (BigBird's draw); prefix: the globals' name prefix. */
static int table_build(tfx_cg *cg, const tfx_node *n, int64_t maxq, int64_t maxk, int64_t max_seq, const char *prefix,
                       tfx_cg_bs_table *t) {
  const int causal = n->mask == TFX_MASK_CAUSAL;
  t->qt = cg->W, t->kg = cg->tgt->flash.keys;
  t->nqb = (maxq + t->qt - 1) / t->qt;
  int64_t nkg = (maxk + t->kg - 1) / t->kg;
  char opts[160], name[224];
  tfx_cg_attn_key(n, max_seq, opts, sizeof opts);
  snprintf(name, sizeof name, "m%d_q%lld_k%lld_t%dx%d_%s", causal, (long long)maxq, (long long)maxk, t->qt, t->kg,
           opts);
  snprintf(name, sizeof name, "%s%016llx", prefix, (unsigned long long)fnv(name));
  size_t len = strlen(name);
  snprintf(name + len, sizeof name - len, "_off");
  if ((t->off = LLVMGetNamedGlobal(cg->mod, name))) {
    snprintf(name + len, sizeof name - len, "_lo");
    t->lo = LLVMGetNamedGlobal(cg->mod, name);
    snprintf(name + len, sizeof name - len, "_hi");
    t->hi = LLVMGetNamedGlobal(cg->mod, name);
    return 0;
  }
  LLVMValueRef *off = NULL, *lo = NULL, *hi = NULL;
  int64_t noff = 0, coff = 0, nlo = 0, clo = 0, nhi = 0, chi = 0;
  int rc = push(cg, &off, &noff, &coff, 0);
  for (int64_t qb = 0; qb < t->nqb && !rc; qb++) {
    int64_t i0 = qb * t->qt, i1 = i0 + t->qt < maxq ? i0 + t->qt : maxq;
    int64_t start = -1;
    tfx_attn_block cur = TFX_ATTN_BLOCK_NONE;
    for (int64_t g = 0; g <= nkg && !rc; g++) {
      tfx_attn_block c = TFX_ATTN_BLOCK_NONE;
      if (g < nkg) {
        int64_t j0 = g * t->kg, j1 = j0 + t->kg < maxk ? j0 + t->kg : maxk;
        c = tfx_attn_block_allowed(n, i0, i1, j0, j1, max_seq);
      }
      if (c == cur) continue;
      if (cur != TFX_ATTN_BLOCK_NONE) { /* close the run [start, g) */
        rc = push(cg, &lo, &nlo, &clo, (int32_t)start);
        if (!rc) rc = push(cg, &hi, &nhi, &chi, (int32_t)((uint32_t)g | (cur == TFX_ATTN_BLOCK_FULL ? 1u << 31 : 0u)));
      }
      cur = c, start = g;
    }
    if (!rc) rc = push(cg, &off, &noff, &coff, (int32_t)nlo);
  }
  if (!rc && !nlo) { /* no allowed pair at all: one empty entry keeps the arrays non-empty */
    rc = push(cg, &lo, &nlo, &clo, 0);
    if (!rc) rc = push(cg, &hi, &nhi, &chi, 0);
  }
  if (!rc) {
    t->off = table_global(cg, name, off, noff);
    snprintf(name + len, sizeof name - len, "_lo");
    t->lo = table_global(cg, name, lo, nlo);
    snprintf(name + len, sizeof name - len, "_hi");
    t->hi = table_global(cg, name, hi, nhi);
  }
  free(off);
  free(lo);
  free(hi);
  return rc ? -1 : 0;
}

/* the query positions and keys a table of node n covers */
static void table_extent(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, int64_t *maxq, int64_t *maxk) {
  const int64_t max_seq = cg->g->max_seq;
  const int causal = n->mask == TFX_MASK_CAUSAL;
  *maxq = !causal && q_rows != TFX_DIM_T && q_rows > max_seq ? q_rows : max_seq;
  *maxk = !causal && k_rows != TFX_DIM_T ? k_rows : max_seq;
}

int tfx_cg_bs_table_get(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, tfx_cg_bs_table *t) {
  int64_t maxq, maxk;
  table_extent(cg, n, q_rows, k_rows, &maxq, &maxk);
  return table_build(cg, n, maxq, maxk, cg->g->max_seq, "tfx_bs_", t);
}

int tfx_cg_bs_table_gathered(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, tfx_cg_bs_table *t) {
  tfx_node sub;
  int64_t k = tfx_attn_gather(n, &sub), maxq, maxk;
  if (k < 2) return tfx_cg_fail(cg, "backend: %%%d (attention): its pattern has no gathered form", n->id);
  table_extent(cg, n, q_rows, k_rows, &maxq, &maxk);
  /* class 0 holds the most positions: ceil(maxq / k) */
  return table_build(cg, &sub, (maxq + k - 1) / k, (maxk + k - 1) / k, (cg->g->max_seq + k - 1) / k, "tfx_bsg_", t);
}

static LLVMValueRef load_i32(tfx_cg *cg, LLVMValueRef gv, LLVMValueRef idx) {
  LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->b, cg->t_i32, gv, &idx, 1, "");
  return LLVMBuildLoad2(cg->b, cg->t_i32, p, "");
}

void tfx_cg_bs_runs(tfx_cg *cg, const tfx_cg_bs_table *t, LLVMValueRef qpos, LLVMValueRef *rbeg, LLVMValueRef *rend) {
  LLVMValueRef qb = tfx_cg_smin(cg, LLVMBuildUDiv(cg->b, qpos, tfx_cg_i64(cg, t->qt), ""), tfx_cg_i64(cg, t->nqb - 1));
  *rbeg = LLVMBuildSExt(cg->b, load_i32(cg, t->off, qb), cg->t_i64, "rbeg");
  *rend = LLVMBuildSExt(cg->b, load_i32(cg, t->off, tfx_cg_addc(cg, qb, 1)), cg->t_i64, "rend");
}

void tfx_cg_bs_run(tfx_cg *cg, const tfx_cg_bs_table *t, LLVMValueRef r, LLVMValueRef *jlo, LLVMValueRef *jhi,
                   LLVMValueRef *full) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef hf = load_i32(cg, t->hi, r);
  *full = LLVMBuildICmp(b, LLVMIntSLT, hf, tfx_cg_i32(cg, 0), "full");
  LLVMValueRef g1 = LLVMBuildZExt(b, LLVMBuildAnd(b, hf, tfx_cg_i32(cg, 0x7fffffff), ""), cg->t_i64, "");
  *jlo = tfx_cg_mulc(cg, LLVMBuildZExt(b, load_i32(cg, t->lo, r), cg->t_i64, ""), t->kg);
  *jhi = tfx_cg_mulc(cg, g1, t->kg);
}

void tfx_cg_bs_row_walk(tfx_cg *cg, const tfx_cg_bs_table *t, const tfx_cg_attn_row *walk, LLVMValueRef qi,
                        LLVMValueRef jlo, LLVMValueRef jhi, LLVMValueRef slope) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef rbeg, rend, rlo, rhi, full;
  tfx_cg_osm_reset(cg, &walk->sm);
  tfx_cg_bs_runs(cg, t, qi, &rbeg, &rend);
  tfx_cg_loop lr;
  tfx_cg_for(cg, &lr, rbeg, rend, 1, "run");
  tfx_cg_bs_run(cg, t, lr.iv, &rlo, &rhi, &full);
  LLVMValueRef lo = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, rlo, jlo, ""), rlo, jlo, "");
  tfx_cg_attn_row_walk_more(cg, walk, qi, lo, tfx_cg_smin(cg, rhi, jhi), slope);
  tfx_cg_for_end(cg, &lr);
}
