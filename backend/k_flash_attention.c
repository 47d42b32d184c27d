/* backend/k_flash_attention.c — the tiled (FlashAttention) schedule of
 * ATTENTION for the forward entry: a work item is a tile of W query rows (W
 * the vector width) of one head, walking its keys in groups of KG with the
 * online softmax of k_attn_softmax.c, lane-wise (running max m, sum l,
 * output O rescaled by e^(m_old - m_new)), so the T x T scores are never
 * stored and each key and value row is loaded once for W queries.
 *
 * Everything is vectorized across the tile's rows, so nothing is reduced
 * horizontally: the tile's queries are gathered transposed (Qt[c] = the W
 * rows' c-th dims, scaled by 1/sqrt(d)); for a key j the scores of all rows
 * are one vector s_j = sum_c Qt[c] * k_j[c] (an FMA with k_j[c] broadcast,
 * KG accumulators for KG keys); masks (causal: key j <= the row's position;
 * a key mask operand: key j is dropped for every row when its value is 0),
 * ALiBi (-slope * |i - j|) and the softmax update are lane-wise; the output is
 * kept transposed too (Ot[c] += p_j * v_j[c], p_j broadcast-free: a vector,
 * v_j[c] broadcast) and scattered to the rows at the end. Rows past the last
 * query are computed on a clamped row and not stored.
 *
 * The FLASH schedule (tfx_attn_sched): attention without a sparse pattern,
 * in the forward entry; the decode entry (one query) runs ROW.
 * The BLOCK_SPARSE schedule (attention with a sparse pattern) is the same
 * tile, with two changes: tiles hold the query positions of one aligned
 * tile of W absolute positions (the first tile of a chunk that starts
 * mid-tile is shorter), and the key groups walked are the runs of
 * k_block_sparse.c's table for that tile: empty groups are never visited,
 * full ones skip the pattern's mask, partial ones apply it lane-wise
 * (tfx_cg_attn_allowed_v).
 * A dilated pattern (k >= 2, ir/'s tfx_attn_gather) runs gathered tiles:
 * W query rows of one residue class mod k (rows p, p + k, ..., p + (W-1)k:
 * the row addressing is strided, nothing is copied), within one aligned
 * span of W * k positions, against key groups of that class (key rows
 * c, c + k, ... read with a stride of k), walking the runs of the gathered
 * table (k_block_sparse.c) at the compressed positions p / k: a causal,
 * windowed tile of a k-times smaller problem, masked only at the window's
 * and the causal edge's groups (the mask, ALiBi and a key mask see the real
 * positions). A chunk starting mid-span starts a tile at its first row of
 * each class.
 * The item space is (row, head) pairs like the per-row kernel's: the item of
 * row r does the tile starting at r when r is a multiple of W (gathered: at
 * the tile's first row) and returns at once otherwise. */
#include <math.h>

#include "cg.h"

/* Keys per group: the score accumulators (the target description's: 16 of
 * 32 zmm, 8 of 16 ymm/xmm). */
static int key_group(const tfx_cg *cg) { return cg->tgt->flash.keys; }
/* Output dims per chunk of the P.V update (its accumulators). */
static int dim_chunk(const tfx_cg *cg) { return cg->tgt->flash.dims; }

static LLVMValueRef iota(tfx_cg *cg) {
  LLVMValueRef lanes[64];
  for (int i = 0; i < cg->W; i++) lanes[i] = LLVMConstInt(cg->t_i32, (unsigned long long)i, 0);
  return LLVMConstVector(lanes, (unsigned)cg->W);
}

/* A vector of W pointers: base + offs (i64 elements, floats). */
static LLVMValueRef ptr_vec(tfx_cg *cg, LLVMValueRef base, LLVMValueRef offs) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->t_f32, base, &offs, 1, "");
}

static LLVMValueRef gather(tfx_cg *cg, LLVMValueRef ptrs, LLVMValueRef mask) {
  LLVMTypeRef pv = LLVMVectorType(cg->t_ptr, (unsigned)cg->W);
  LLVMTypeRef over[2] = {cg->t_vf, pv};
  LLVMValueRef args[4] = {ptrs, tfx_cg_i32(cg, 4), mask, LLVMConstNull(cg->t_vf)};
  return tfx_cg_intrinsic(cg, "llvm.masked.gather", over, 2, args, 4);
}

static void scatter(tfx_cg *cg, LLVMValueRef v, LLVMValueRef ptrs, LLVMValueRef mask) {
  LLVMTypeRef pv = LLVMVectorType(cg->t_ptr, (unsigned)cg->W);
  LLVMTypeRef over[2] = {cg->t_vf, pv};
  LLVMValueRef args[4] = {v, ptrs, tfx_cg_i32(cg, 4), mask};
  tfx_cg_intrinsic(cg, "llvm.masked.scatter", over, 2, args, 4);
}

static LLVMValueRef vload_at(tfx_cg *cg, LLVMValueRef buf, int64_t row) {
  return tfx_cg_vload(cg, tfx_cg_fptrc(cg, buf, row * cg->W), cg->W);
}
static LLVMValueRef vload_dyn(tfx_cg *cg, LLVMValueRef buf, LLVMValueRef row) {
  return tfx_cg_vload(cg, tfx_cg_fptr(cg, buf, tfx_cg_mulc(cg, row, cg->W)), cg->W);
}

/* One key group's softmax work (tfx_cg_osm_step): its scores s[jj], the
 * probabilities' buffer, the transposed output Ot and its chunk accumulators. */
typedef struct {
  int KG, CH;
  int64_t d;
  LLVMValueRef *s, *vrow, *oacc;
  LLVMValueRef pbuf, ot;
} flash_group;

/* p_j = e^(s_j - m_use) per lane, stored for the P.V update; summed onto lsum */
static LLVMValueRef flash_probs(tfx_cg *cg, void *vctx, LLVMValueRef m_use, LLVMValueRef lsum) {
  flash_group *f = vctx;
  for (int jj = 0; jj < f->KG; jj++) {
    LLVMValueRef p = tfx_cg_exp(cg, LLVMBuildFSub(cg->b, f->s[jj], m_use, ""));
    lsum = LLVMBuildFAdd(cg->b, lsum, p, "");
    tfx_cg_vstore(cg, p, tfx_cg_fptrc(cg, f->pbuf, (int64_t)jj * cg->W), cg->W);
  }
  return lsum;
}

/* Ot[c] = Ot[c] * corr + sum_j p_j * v_j[c], CH dims at a time */
static void flash_accumulate(tfx_cg *cg, void *vctx, LLVMValueRef corr) {
  flash_group *f = vctx;
  LLVMBuilderRef b = cg->b;
  const int W = cg->W;
  tfx_cg_loop lc;
  tfx_cg_for(cg, &lc, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, f->d), f->CH, "oc");
  for (int cc = 0; cc < f->CH; cc++) {
    /* dims past d (d not a multiple of CH) recompute dim d - 1: the same value */
    LLVMValueRef c = tfx_cg_smin(cg, tfx_cg_addc(cg, lc.iv, cc), tfx_cg_i64(cg, f->d - 1));
    LLVMBuildStore(b, LLVMBuildFMul(b, vload_dyn(cg, f->ot, c), corr, ""), f->oacc[cc]);
  }
  for (int jj = 0; jj < f->KG; jj++) {
    LLVMValueRef p = vload_at(cg, f->pbuf, jj);
    for (int cc = 0; cc < f->CH; cc++) {
      LLVMValueRef c = tfx_cg_smin(cg, tfx_cg_addc(cg, lc.iv, cc), tfx_cg_i64(cg, f->d - 1));
      LLVMValueRef vv = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, f->vrow[jj], c)));
      LLVMBuildStore(b, tfx_cg_fma(cg, p, vv, LLVMBuildLoad2(b, cg->t_vf, f->oacc[cc], "")), f->oacc[cc]);
    }
  }
  for (int cc = 0; cc < f->CH; cc++) {
    LLVMValueRef c = tfx_cg_smin(cg, tfx_cg_addc(cg, lc.iv, cc), tfx_cg_i64(cg, f->d - 1));
    tfx_cg_vstore(cg, LLVMBuildLoad2(b, cg->t_vf, f->oacc[cc], ""), tfx_cg_fptr(cg, f->ot, tfx_cg_mulc(cg, c, W)), W);
  }
  tfx_cg_for_end(cg, &lc);
}

/* One tile's state, for the key walk. */
typedef struct {
  const tfx_node *n;
  int causal;
  int64_t d, ks;
  LLVMValueRef kh, vh, qt, ot, pbuf, nkeys, valid, qi_v, slope_v;
  LLVMValueRef *acc, *oacc;
  LLVMValueRef *allowed; /* block-sparse: the KG keys' lane masks (allocas of <W x i1>) */
  LLVMValueRef kmask;    /* the key mask (one i32 or f32 per key), or NULL */
  int kmask_i32;
  const tfx_cg_osm *sm;
  int64_t kstride;   /* gathered tiles: keys j of the walk are positions kres + j * kstride; 1: j itself */
  LLVMValueRef kres; /* the tile's residue class (i64), gathered tiles only */
} flash_tile;

/* the key position of walk index j (i64) */
static LLVMValueRef key_pos(tfx_cg *cg, const flash_tile *t, LLVMValueRef j) {
  return t->kstride > 1 ? tfx_cg_add(cg, t->kres, tfx_cg_mulc(cg, j, t->kstride)) : j;
}

/* The key groups of [jlo, jhi) (jlo a multiple of KG; keys past nkeys
 * masked; walk indices, key_pos gives the positions); full (i1,
 * block-sparse only): the groups are wholly allowed, else the sparse
 * pattern's mask is applied lane-wise. */
static void flash_keys(tfx_cg *cg, const flash_tile *t, LLVMValueRef jlo, LLVMValueRef jhi, LLVMValueRef full) {
  LLVMBuilderRef b = cg->b;
  const int KG = key_group(cg), CH = dim_chunk(cg), causal = t->causal;
  const int64_t d = t->d, ks = t->ks;
  LLVMValueRef nkeys = t->nkeys, valid = t->valid, qi_v = t->qi_v, slope_v = t->slope_v;
  LLVMValueRef ninf = tfx_cg_fconst(cg, cg->t_vf, -INFINITY), vzero = LLVMConstNull(cg->t_vf);
  LLVMValueRef *acc = t->acc;
  tfx_cg_loop lg, lc;
  tfx_cg_for(cg, &lg, jlo, jhi, KG, "kgrp");
  LLVMValueRef jg = lg.iv, lastkey = tfx_cg_addc(cg, nkeys, -1);
  LLVMValueRef krow[16], vrow[16];
  for (int jj = 0; jj < KG; jj++) { /* rows past the last key reread it; their scores are masked */
    LLVMValueRef j = key_pos(cg, t, tfx_cg_smin(cg, tfx_cg_addc(cg, jg, jj), lastkey));
    krow[jj] = tfx_cg_fptr(cg, t->kh, tfx_cg_mulc(cg, j, ks));
    vrow[jj] = tfx_cg_fptr(cg, t->vh, tfx_cg_mulc(cg, j, ks));
    LLVMBuildStore(b, vzero, acc[jj]);
  }
  /* scores: s_j = sum_c Qt[c] * k_j[c] */
  tfx_cg_for(cg, &lc, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, d), 1, "sc");
  LLVMValueRef qc = vload_dyn(cg, t->qt, lc.iv);
  for (int jj = 0; jj < KG; jj++) {
    LLVMValueRef kv = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, krow[jj], lc.iv)));
    LLVMBuildStore(b, tfx_cg_fma(cg, qc, kv, LLVMBuildLoad2(b, cg->t_vf, acc[jj], "")), acc[jj]);
  }
  tfx_cg_for_end(cg, &lc);
  /* the pattern's mask, computed only for a group that is not wholly allowed */
  if (full) {
    tfx_cg_if part;
    tfx_cg_if_begin(cg, &part, LLVMBuildNot(b, full, ""), "partial");
    for (int jj = 0; jj < KG; jj++)
      LLVMBuildStore(b, tfx_cg_attn_allowed_v(cg, t->n, qi_v, key_pos(cg, t, tfx_cg_addc(cg, jg, jj))), t->allowed[jj]);
    tfx_cg_if_else(cg, &part);
    for (int jj = 0; jj < KG; jj++) LLVMBuildStore(b, LLVMConstAllOnes(cg->t_vm), t->allowed[jj]);
    tfx_cg_if_end(cg, &part);
  }
  /* masks, ALiBi, the group's max */
  LLVMValueRef s[16], bmax = ninf;
  for (int jj = 0; jj < KG; jj++) {
    LLVMValueRef jw = tfx_cg_addc(cg, jg, jj), j = key_pos(cg, t, jw);
    LLVMValueRef j_v = tfx_cg_splat(cg, LLVMBuildTrunc(b, j, cg->t_i32, ""));
    LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntSLT, jw, nkeys, "");
    LLVMValueRef okv = LLVMBuildSelect(b, ok, valid, LLVMConstNull(cg->t_vm), "");
    if (causal) okv = LLVMBuildAnd(b, okv, LLVMBuildICmp(b, LLVMIntSLE, j_v, qi_v, ""), "");
    if (full) okv = LLVMBuildAnd(b, okv, LLVMBuildLoad2(b, cg->t_vm, t->allowed[jj], ""), "");
    if (t->kmask) { /* the key mask: key j (clamped to the last key, whose lanes ok masks) dropped when 0 */
      LLVMValueRef jc = key_pos(cg, t, tfx_cg_smin(cg, jw, lastkey)), keep;
      if (t->kmask_i32)
        keep = LLVMBuildICmp(
            b, LLVMIntNE, LLVMBuildLoad2(b, cg->t_i32, LLVMBuildInBoundsGEP2(b, cg->t_i32, t->kmask, &jc, 1, ""), ""),
            LLVMConstInt(cg->t_i32, 0, 0), "");
      else
        keep = LLVMBuildFCmp(b, LLVMRealUNE, tfx_cg_loadf(cg, tfx_cg_fptr(cg, t->kmask, jc)),
                             LLVMConstReal(cg->t_f32, 0.0), "");
      okv = LLVMBuildSelect(b, keep, okv, LLVMConstNull(cg->t_vm), "keymask");
    }
    s[jj] = tfx_cg_softcap(cg, LLVMBuildLoad2(b, cg->t_vf, acc[jj], ""), t->n->softcap); /* Qt is scaled */
    if (slope_v) {
      LLVMValueRef dist = LLVMBuildSub(b, qi_v, j_v, "");
      if (!causal) {
        LLVMValueRef neg = LLVMBuildNeg(b, dist, "");
        dist = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, dist, LLVMConstNull(cg->t_vi), ""), dist, neg, "");
      }
      s[jj] = LLVMBuildFSub(b, s[jj], LLVMBuildFMul(b, slope_v, LLVMBuildSIToFP(b, dist, cg->t_vf, ""), ""), "alibi");
    }
    s[jj] = LLVMBuildSelect(b, okv, s[jj], ninf, "masked");
    bmax = tfx_cg_fmax(cg, bmax, s[jj]);
  }
  /* the softmax step; Ot[c] = Ot[c] * corr + sum_j p_j * v_j[c] */
  flash_group fg = {KG, CH, d, s, vrow, t->oacc, t->pbuf, t->ot};
  tfx_cg_osm_step(cg, t->sm, &(tfx_cg_osm_block){bmax, flash_probs, NULL, flash_accumulate, &fg});
  tfx_cg_for_end(cg, &lg);
}

/* The body: pointers q, keys, values (the cache when causal), y; bs: the
 * block-sparse table (NULL: the FLASH schedule, every key group); K >= 2:
 * the tiles are gathered (bs is tfx_cg_bs_table_gathered's): W rows of one
 * residue class mod K, its keys. */
static int flash_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows_static, int64_t k_rows_static,
                      const tfx_cg_bs_table *bs, int64_t K) {
  LLVMBuilderRef b = cg->b;
  const int W = cg->W, KG = key_group(cg), CH = dim_chunk(cg);
  const int64_t H = n->heads, G = n->kv_heads, d = n->head_dim, group = H / G;
  const int64_t qs = H * d, ks = G * d, max_seq = cg->g->max_seq;
  const int causal = n->mask == TFX_MASK_CAUSAL;
  LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), keys = tfx_cg_body_ptr(cg, 1), vals = tfx_cg_body_ptr(cg, 2);
  LLVMValueRef py = tfx_cg_body_ptr(cg, 3);
  LLVMValueRef qt = tfx_cg_alloca_array(cg, cg->t_f32, d * W, "qt");
  LLVMValueRef ot = tfx_cg_alloca_array(cg, cg->t_f32, d * W, "ot");
  LLVMValueRef pbuf = tfx_cg_alloca_array(cg, cg->t_f32, (int64_t)KG * W, "p");
  tfx_cg_osm sm;
  tfx_cg_osm_init(cg, &sm, cg->t_vf);
  LLVMValueRef acc[16];
  for (int jj = 0; jj < KG; jj++) acc[jj] = tfx_cg_alloca(cg, cg->t_vf, "s");
  LLVMValueRef oacc[8];
  for (int cc = 0; cc < CH; cc++) oacc[cc] = tfx_cg_alloca(cg, cg->t_vf, "o");
  LLVMValueRef allowed[16];
  for (int jj = 0; jj < KG && bs; jj++) allowed[jj] = tfx_cg_alloca(cg, cg->t_vm, "allowed");
  LLVMValueRef vzero = LLVMConstNull(cg->t_vf);
  LLVMValueRef lane = iota(cg);

  LLVMValueRef Mq = q_rows_static == TFX_DIM_T ? cg->T : tfx_cg_i64(cg, q_rows_static);
  LLVMValueRef Mk = k_rows_static == TFX_DIM_T ? cg->T : tfx_cg_i64(cg, k_rows_static);
  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
  LLVMValueRef r0 = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, H), "r0");
  LLVMValueRef h = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, H), "h");
  /* a tile starts at rows r0 = 0 mod W; block-sparse: at the rows whose absolute position p0 is 0 mod W
     (and at row 0), so a tile's positions lie in one tile of the table */
  LLVMValueRef p0 = causal && bs ? tfx_cg_add(cg, cg->pos, r0) : r0;
  const int gathered = bs && K >= 2;
  if (!gathered) K = 1;
  /* gathered: the tile of rows p0, p0 + K, ... (lanes) within one aligned span of W * K positions starts at its
     first position in the span (phase < K) or at the chunk's first row of the class (r0 < K) */
  LLVMValueRef phase = LLVMBuildURem(b, p0, tfx_cg_i64(cg, (int64_t)W * K), "phase");
  LLVMValueRef starts =
      LLVMBuildICmp(b, gathered ? LLVMIntULT : LLVMIntEQ, phase, tfx_cg_i64(cg, gathered ? K : 0), "");
  if (bs) starts = LLVMBuildOr(b, starts, LLVMBuildICmp(b, LLVMIntULT, r0, tfx_cg_i64(cg, gathered ? K : 1), ""), "");
  tfx_cg_if lead;
  tfx_cg_if_begin(cg, &lead, starts, "tile");
  LLVMValueRef g = LLVMBuildUDiv(b, h, tfx_cg_i64(cg, group), "g");
  LLVMValueRef lane0 = gathered ? LLVMBuildUDiv(b, phase, tfx_cg_i64(cg, K), "") : phase; /* p0's lane in its tile */
  LLVMValueRef left = tfx_cg_sub(cg, Mq, r0); /* rows of this call from r0 on, of the class when gathered */
  if (gathered) left = LLVMBuildUDiv(b, tfx_cg_addc(cg, left, K - 1), tfx_cg_i64(cg, K), "");
  LLVMValueRef rows = tfx_cg_smin(cg, tfx_cg_sub(cg, tfx_cg_i64(cg, W), lane0), left); /* valid rows */
  LLVMValueRef valid = LLVMBuildICmp(b, LLVMIntSLT, lane, tfx_cg_splat(cg, LLVMBuildTrunc(b, rows, cg->t_i32, "")), "");
  /* the rows (clamped to the last) and their query positions */
  LLVMValueRef lane_rows = gathered ? LLVMBuildMul(b, lane, tfx_cg_splat(cg, tfx_cg_i32(cg, (int32_t)K)), "") : lane;
  LLVMValueRef row_v = LLVMBuildAdd(b, tfx_cg_splat(cg, LLVMBuildTrunc(b, r0, cg->t_i32, "")), lane_rows, "");
  LLVMValueRef last_v = tfx_cg_splat(cg, LLVMBuildTrunc(b, tfx_cg_addc(cg, Mq, -1), cg->t_i32, ""));
  row_v = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLE, row_v, last_v, ""), row_v, last_v, "");
  LLVMValueRef row64 = LLVMBuildSExt(b, row_v, LLVMVectorType(cg->t_i64, (unsigned)W), "");
  LLVMValueRef qi_v = row_v; /* i32 positions */
  if (causal) qi_v = LLVMBuildAdd(b, row_v, tfx_cg_splat(cg, LLVMBuildTrunc(b, cg->pos, cg->t_i32, "")), "qi");
  LLVMValueRef nkeys =
      causal ? tfx_cg_smin(cg, tfx_cg_add(cg, cg->pos, tfx_cg_add(cg, r0, rows)), tfx_cg_i64(cg, max_seq)) : Mk;
  LLVMValueRef kres = NULL, qpos = p0; /* gathered: the class, p0's compressed position and the class's keys */
  if (gathered) {
    LLVMValueRef kK = tfx_cg_i64(cg, K);
    kres = LLVMBuildURem(b, p0, kK, "gather_res");
    qpos = LLVMBuildUDiv(b, p0, kK, "gather_q");
    /* keys c, c + K, ... below max_seq (causal) or the call's keys: ceil((count - c) / K) */
    LLVMValueRef cnt = tfx_cg_sub(cg, tfx_cg_addc(cg, causal ? tfx_cg_i64(cg, max_seq) : Mk, K - 1), kres);
    cnt = LLVMBuildUDiv(b, cnt, kK, "");
    nkeys = causal ? tfx_cg_smin(cg, tfx_cg_add(cg, qpos, rows), cnt) : cnt; /* causal: up to the last row's */
  }
  LLVMValueRef slope = tfx_cg_attn_slope(cg, n, h);
  LLVMValueRef slope_v = slope ? tfx_cg_splat(cg, slope) : NULL;

  /* Qt[c] = q[row][h * d + c] * scale (1/sqrt(d) by default) for the tile's rows */
  LLVMValueRef all = LLVMConstAllOnes(cg->t_vm);
  LLVMValueRef qrow = LLVMBuildMul(b, row64, tfx_cg_splat(cg, tfx_cg_i64(cg, qs)), "");
  LLVMValueRef qbase = tfx_cg_fptr(cg, pq, tfx_cg_mulc(cg, h, d));
  LLVMValueRef scale = tfx_cg_fconst(cg, cg->t_vf, tfx_attn_scale(n));
  tfx_cg_loop lc;
  tfx_cg_for(cg, &lc, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, d), 1, "qc");
  LLVMValueRef qv = gather(cg, ptr_vec(cg, tfx_cg_fptr(cg, qbase, lc.iv), qrow), all);
  tfx_cg_vstore(cg, LLVMBuildFMul(b, qv, scale, ""), tfx_cg_fptr(cg, qt, tfx_cg_mulc(cg, lc.iv, W)), W);
  tfx_cg_vstore(cg, vzero, tfx_cg_fptr(cg, ot, tfx_cg_mulc(cg, lc.iv, W)), W);
  tfx_cg_for_end(cg, &lc);
  tfx_cg_osm_reset(cg, &sm);
  flash_tile tile = {n,
                     causal,
                     d,
                     ks,
                     tfx_cg_fptr(cg, keys, tfx_cg_mulc(cg, g, d)),
                     tfx_cg_fptr(cg, vals, tfx_cg_mulc(cg, g, d)),
                     qt,
                     ot,
                     pbuf,
                     nkeys,
                     valid,
                     qi_v,
                     slope_v,
                     acc,
                     oacc,
                     allowed,
                     NULL,
                     0,
                     &sm,
                     K,
                     kres};
  int mi = tfx_attn_key_mask_operand(n);
  if (mi >= 0) { /* kernel_call's 6th pointer (k_attention.c) */
    tile.kmask = tfx_cg_body_ptr(cg, 5);
    tile.kmask_i32 = cg->g->nodes[n->inputs[mi]].type.dtype == TFX_DT_I32;
  }
  if (!bs) {
    flash_keys(cg, &tile, tfx_cg_i64(cg, 0), nkeys, NULL);
  } else { /* the runs of the tile: full ones without the pattern's mask */
    LLVMValueRef rbeg, rend, jlo, jhi, full;
    tfx_cg_bs_runs(cg, bs, qpos, &rbeg, &rend);
    tfx_cg_loop lr;
    tfx_cg_for(cg, &lr, rbeg, rend, 1, "run");
    tfx_cg_bs_run(cg, bs, lr.iv, &jlo, &jhi, &full);
    flash_keys(cg, &tile, jlo, tfx_cg_smin(cg, jhi, nkeys), full);
    tfx_cg_for_end(cg, &lr);
  }
  /* y[row][h * d + c] = Ot[c] / l, zeros for a row that saw no key */
  LLVMValueRef any;
  LLVMValueRef inv = LLVMBuildFDiv(b, tfx_cg_fconst(cg, cg->t_vf, 1.0), tfx_cg_osm_denominator(cg, &sm, &any), "");
  inv = LLVMBuildSelect(b, any, inv, vzero, "");
  LLVMValueRef ybase = tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, h, d));
  tfx_cg_for(cg, &lc, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, d), 1, "yc");
  LLVMValueRef o = LLVMBuildFMul(b, vload_dyn(cg, ot, lc.iv), inv, "");
  scatter(cg, o, ptr_vec(cg, tfx_cg_fptr(cg, ybase, lc.iv), qrow), valid);
  tfx_cg_for_end(cg, &lc);
  tfx_cg_if_end(cg, &lead);
  tfx_cg_for_end(cg, &it);
  return 0;
}

int tfx_cg_emit_flash_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows) {
  return flash_body(cg, n, q_rows, k_rows, NULL, 1);
}

int tfx_cg_emit_block_sparse_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows) {
  tfx_cg_bs_table bs;
  tfx_node sub;
  int K = tfx_attn_gather(n, &sub); /* a dilated pattern: gathered tiles */
  if (K >= 2 ? tfx_cg_bs_table_gathered(cg, n, q_rows, k_rows, &bs) : tfx_cg_bs_table_get(cg, n, q_rows, k_rows, &bs))
    return -1;
  return flash_body(cg, n, q_rows, k_rows, &bs, K);
}
