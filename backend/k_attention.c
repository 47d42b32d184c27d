/* backend/k_attention.c — ATTENTION kernels (scaled dot-product, MHA / GQA /
 * MQA: query head h reads KV head h / (H/G), scale 1/sqrt(d)), with the
 * options of ir/attention.c: ALiBi, sparse patterns, cross-attention, score
 * soft-capping (every schedule applies it to the scaled score).
 * tfx_cg_emit_attention is the KV store plus the body of the node's schedule
 * (tfx_attn_schedule_of: the node's attn_schedule, written by the
 * schedule_attention pass, in the forward entry; ROW in the decode entry):
 *  - causal: a first kernel (items: rows t) stores this call's K and V rows at
 *    positions pos..pos+T-1 of the node's cache (K at kv + kv_offset,
 *    [max_seq, G*d]; V right after it); then query t (position i = pos + t)
 *    attends keys 0..i.
 *  - mask none: query row t (i = t) attends the rows of k and v of this call
 *    (T rows, or a static count for cross-attention to a memory), no cache;
 *    q may have static rows too. With segment ids (packed sequences) the
 *    ROW body narrows the key range to the query's segment (k_segments.c);
 *    such a node is ROW-only (flash and block-sparse take q, k, v alone).
 * The attention kernel's items are (row, head) pairs; a schedule's body
 * decides what an item does:
 *  - ROW (this file): the item walks its key range (k_attn_mask.c: narrowed
 *    to the window of sliding patterns) in blocks of KB with the online
 *    softmax of k_attn_softmax.c, so its scratch is KB floats whatever the
 *    context length: the q . k_j of a block go to a stack buffer, ALiBi and
 *    the mask applied, are exponentiated in vectors, then accumulate
 *    p_j * v_j into o in vectors of W.
 *    In the decode entry, a pattern other than sliding and dilated walks
 *    only the runs of key groups k_block_sparse.c's table keeps for the
 *    query's tile. A dilated pattern (ir/'s tfx_attn_gather) walks the keys
 *    of the query's residue class only, i mod k, i - k, ..., with a stride
 *    of k rows and no mask, in every entry.
 *  - FLASH (k_flash_attention.c): tiles of W query rows of one head.
 *  - BLOCK_SPARSE (k_flash_attention.c + k_block_sparse.c): the flash tiles
 *    over the non-empty key groups of a sparse pattern.
 *  - split decode (the decode entry of a node with attn_split >= 2,
 *    k_split_decode.c): the row body's items are (head, part) pairs, each
 *    walking one part of the query's keys into a partial record; a second
 *    kernel merges the parts.
 *  - tiny heads (the decode entry of a causal dense node with d <= 16 under
 *    schedule { decode = tiny }, k_tiny_heads.c): items heads, scores vectorized across
 *    keys.
 * In the batch entry (k_paged.c) the store and the ROW schedule take each
 * row's position from its tfx_kv_row and address K and V through its block
 * table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg.h"

#define ATT_KB 128 /* keys per block; a multiple of every vector width */

typedef struct {
  LLVMValueRef src, dst;
} kv_copy;

static void copy_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  kv_copy *c = vctx;
  tfx_cg_vstore(cg, tfx_cg_vload(cg, tfx_cg_fptr(cg, c->src, col), nvalid), tfx_cg_fptr(cg, c->dst, col), nvalid);
}

/* The node's K rows in the KV argument and the bytes from K to V: its slot
 * of the session's cache, or (batch entry) its part of block 0 of the pool
 * (k_paged.c). */
static void kv_layout(tfx_cg *cg, const tfx_node *n, int64_t *k_off, int64_t *half_bytes) {
  int64_t ks = (int64_t)n->kv_heads * n->head_dim;
  *k_off = cg->batch ? tfx_cg_kv_block_offset(cg->g, n) : n->kv_offset;
  *half_bytes = (cg->batch ? TFX_KV_BLOCK_TOKENS : cg->g->max_seq) * ks * 4;
}

/* &rows[p] of a node's K or V (rows of ks floats from base): contiguous, or
 * through the row's block table (batch entry). */
static LLVMValueRef kv_row_ptr(tfx_cg *cg, LLVMValueRef base, LLVMValueRef blocks, LLVMValueRef p, int64_t ks) {
  return blocks ? tfx_cg_paged_row(cg, base, blocks, p, ks * 4) : tfx_cg_fptr(cg, base, tfx_cg_mulc(cg, p, ks));
}

/* A causal node's key mask: the call's values (4 bytes each, i32 or f32) at
 * their positions in the KV storage after V (kernel_call passes them to
 * every schedule), so keys of earlier calls keep theirs. */
static int emit_key_mask_store(tfx_cg *cg, const tfx_node *n, int mi, int64_t at) {
  int64_t max_seq = cg->g->max_seq;
  char key[64];
  snprintf(key, sizeof key, "kvmask_S%lld", (long long)max_seq);
  int fresh = tfx_cg_body_begin(cg, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef pm = tfx_cg_body_ptr(cg, 0), kept = tfx_cg_body_ptr(cg, 1);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef r = tfx_cg_row_pos(cg, row.iv);
    tfx_cg_if in_range;
    tfx_cg_if_begin(cg, &in_range, LLVMBuildICmp(b, LLVMIntULT, r, tfx_cg_i64(cg, max_seq), ""), "fits");
    LLVMValueRef v = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildInBoundsGEP2(b, cg->t_i32, pm, &row.iv, 1, ""), "");
    LLVMBuildStore(b, v, LLVMBuildInBoundsGEP2(b, cg->t_i32, kept, &r, 1, ""));
    tfx_cg_if_end(cg, &in_range);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, "kvmask", 1, 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[mi]), TFX_CG_KVAT(at), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}

static int emit_kv_store(tfx_cg *cg, const tfx_node *n) {
  int64_t ks = (int64_t)n->kv_heads * n->head_dim, max_seq = cg->g->max_seq;
  char key[96];
  snprintf(key, sizeof key, "kvstore_ks%lld_S%lld", (long long)ks, (long long)max_seq);
  int fresh = tfx_cg_body_begin(cg, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pk = tfx_cg_body_ptr(cg, 0), pv = tfx_cg_body_ptr(cg, 1);
    LLVMValueRef kc = tfx_cg_body_ptr(cg, 2), vc = tfx_cg_body_ptr(cg, 3);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef r = tfx_cg_row_pos(cg, row.iv);
    tfx_cg_if in_range;
    tfx_cg_if_begin(cg, &in_range, LLVMBuildICmp(cg->b, LLVMIntULT, r, tfx_cg_i64(cg, max_seq), ""), "fits");
    LLVMValueRef src_off = tfx_cg_mulc(cg, row.iv, ks);
    LLVMValueRef blocks = cg->batch ? tfx_cg_row_blocks(cg, row.iv) : NULL;
    kv_copy c = {tfx_cg_fptr(cg, pk, src_off), kv_row_ptr(cg, kc, blocks, r, ks)};
    tfx_cg_chunks(cg, ks, copy_chunk, &c);
    c = (kv_copy){tfx_cg_fptr(cg, pv, src_off), kv_row_ptr(cg, vc, blocks, r, ks)};
    tfx_cg_chunks(cg, ks, copy_chunk, &c);
    tfx_cg_if_end(cg, &in_range);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  int64_t k_off, half;
  kv_layout(cg, n, &k_off, &half);
  tfx_cg_kernel_call(cg, n, "kvstore", 1, 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[1]), TFX_CG_VAL(n->inputs[2]), TFX_CG_KVAT(k_off),
                                     TFX_CG_KVAT(k_off + half)});
  int mi = tfx_attn_key_mask_operand(n);
  return mi >= 0 ? emit_key_mask_store(cg, n, mi, k_off + 2 * half) : 0;
}

static int nvalid_of(tfx_cg *cg, int64_t d, int c) {
  int64_t left = d - (int64_t)c * cg->W;
  return left >= cg->W ? cg->W : (int)left;
}

/* The node's kernel: q, keys, values (the cache when causal), output; items
 * are (row, head) pairs of q. */
static int kernel_call(tfx_cg *cg, const tfx_node *n, int causal) {
  int64_t k_off, half_bytes;
  kv_layout(cg, n, &k_off, &half_bytes);
  tfx_cg_ptr k = causal ? TFX_CG_KVAT(k_off) : TFX_CG_VAL(n->inputs[1]);
  tfx_cg_ptr v = causal ? TFX_CG_KVAT(k_off + half_bytes) : TFX_CG_VAL(n->inputs[2]);
  int64_t per_t, fixed;
  tfx_cg_rows_split(&cg->g->nodes[n->inputs[0]], &per_t, &fixed);
  tfx_cg_ptr ptrs[7] = {TFX_CG_VAL(n->inputs[0]), k, v, TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE, TFX_CG_NONE};
  int bi = tfx_attn_bias_operand(n), mi = tfx_attn_key_mask_operand(n), si = tfx_attn_segments_operand(n);
  if (bi >= 0) ptrs[4] = TFX_CG_VAL(n->inputs[bi]); /* T5's relative bias table */
  if (mi >= 0) /* the key mask: a causal node's kept values of every position (after V), else the call's */
    ptrs[5] = causal ? TFX_CG_KVAT(k_off + 2 * half_bytes) : TFX_CG_VAL(n->inputs[mi]);
  if (si >= 0) ptrs[6] = TFX_CG_VAL(n->inputs[si]); /* the segment ids */
  int gi = tfx_attn_global_operand(n);
  if (gi >= 0) ptrs[6] = TFX_CG_VAL(n->inputs[gi]); /* per-call global tokens (never with segment ids) */
  tfx_cg_kernel_call_n(cg, n, NULL, per_t * n->heads, fixed * n->heads, ptrs, 7);
  return 0;
}

/* ---- the ROW schedule ---- */

typedef struct {
  int64_t d, ks;
  int nch;
  LLVMValueRef *qv, *oa; /* the query's chunks; the output accumulator's allocas */
  LLVMValueRef kh, vh;   /* the head's keys and values */
  LLVMValueRef blocks;   /* batch entry: the row's KV block table; NULL: contiguous */
  LLVMValueRef scale;
  double softcap; /* > 0: the scores soft-capped (Gemma 2) */
} row_ctx;

static LLVMValueRef row_score(tfx_cg *cg, void *vctx, LLVMValueRef j) {
  row_ctx *c = vctx;
  LLVMValueRef kp = kv_row_ptr(cg, c->kh, c->blocks, j, c->ks);
  LLVMValueRef acc = NULL;
  for (int k = 0; k < c->nch; k++) {
    LLVMValueRef kv = tfx_cg_vload(cg, tfx_cg_fptrc(cg, kp, (int64_t)k * cg->W), nvalid_of(cg, c->d, k));
    acc = acc ? tfx_cg_fma(cg, c->qv[k], kv, acc) : LLVMBuildFMul(cg->b, c->qv[k], kv, "");
  }
  return tfx_cg_softcap(cg, LLVMBuildFMul(cg->b, tfx_cg_hsum(cg, acc), c->scale, "score"), c->softcap);
}

static void row_rescale(tfx_cg *cg, void *vctx, LLVMValueRef corr) {
  row_ctx *c = vctx;
  LLVMValueRef corr_v = tfx_cg_splat(cg, corr);
  for (int k = 0; k < c->nch; k++)
    LLVMBuildStore(cg->b, LLVMBuildFMul(cg->b, LLVMBuildLoad2(cg->b, cg->t_vf, c->oa[k], ""), corr_v, ""), c->oa[k]);
}

static void row_accumulate(tfx_cg *cg, void *vctx, LLVMValueRef j, LLVMValueRef pj) {
  row_ctx *c = vctx;
  LLVMValueRef pv = tfx_cg_splat(cg, pj);
  LLVMValueRef vp = kv_row_ptr(cg, c->vh, c->blocks, j, c->ks);
  for (int k = 0; k < c->nch; k++) {
    LLVMValueRef vv = tfx_cg_vload(cg, tfx_cg_fptrc(cg, vp, (int64_t)k * cg->W), nvalid_of(cg, c->d, k));
    LLVMBuildStore(cg->b, tfx_cg_fma(cg, pv, vv, LLVMBuildLoad2(cg->b, cg->t_vf, c->oa[k], "")), c->oa[k]);
  }
}

/* per-call Longformer globals: each key j of [lo, hi) outside the window [wlo, whi) whose mask value is nonzero
 * joins the row's walk, one at a time */
static void global_keys(tfx_cg *cg, const tfx_cg_attn_row *walk, LLVMValueRef gm, LLVMValueRef qi, LLVMValueRef lo,
                        LLVMValueRef hi, LLVMValueRef wlo, LLVMValueRef whi, LLVMValueRef slope) {
  LLVMBuilderRef b = cg->b;
  tfx_cg_loop kj;
  tfx_cg_for(cg, &kj, lo, hi, 1, "gkey");
  LLVMValueRef gj = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildInBoundsGEP2(b, cg->t_i32, gm, &kj.iv, 1, ""), "gj");
  LLVMValueRef outside =
      LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLT, kj.iv, wlo, ""), LLVMBuildICmp(b, LLVMIntSGE, kj.iv, whi, ""), "");
  tfx_cg_if take;
  tfx_cg_if_begin(cg, &take, LLVMBuildAnd(b, outside, LLVMBuildICmp(b, LLVMIntNE, gj, tfx_cg_i32(cg, 0), ""), ""),
                  "gkey_take");
  tfx_cg_attn_row_walk_more(cg, walk, qi, kj.iv, tfx_cg_addc(cg, kj.iv, 1), slope);
  tfx_cg_if_end(cg, &take);
  tfx_cg_for_end(cg, &kj);
}

/* The ROW body; splits >= 2 (the decode entry's split decode, k_split_decode.c): items (head, part) of the
 * one query row, part s walking the s-th of `splits` equal parts of the row's key range and writing its
 * partial (max, sum, unnormalized output) to the scratch rows of y instead of y. */
static int row_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, int splits, LLVMValueRef grows,
                    int gmask_rows) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim, group = H / G;
  int64_t qs = H * d, ks = G * d, max_seq = cg->g->max_seq;
  int causal = n->mask == TFX_MASK_CAUSAL;
  int nch = (int)((d + cg->W - 1) / cg->W);
  row_ctx c = {.d = d,
               .ks = ks,
               .nch = nch,
               .qv = malloc((size_t)nch * sizeof(LLVMValueRef)),
               .oa = malloc((size_t)nch * sizeof(LLVMValueRef)),
               .scale = LLVMConstReal(cg->t_f32, tfx_attn_scale(n)),
               .softcap = n->softcap};
  if (!c.qv || !c.oa) {
    free(c.qv);
    free(c.oa);
    return tfx_cg_fail(cg, "backend: out of memory");
  }
  LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), keys = tfx_cg_body_ptr(cg, 1), vals = tfx_cg_body_ptr(cg, 2);
  LLVMValueRef py = tfx_cg_body_ptr(cg, 3);
  /* per-call Longformer globals: the walk applies no pattern rule (the ranges below are exact) */
  int rt_global = tfx_attn_global_operand(n) >= 0;
  tfx_node dense = *n;
  if (rt_global) dense.sparse = (tfx_sparse){.kind = TFX_SPARSE_NONE};
  tfx_cg_attn_row walk = {
      .n = rt_global ? &dense : n, .score = row_score, .rescale = row_rescale, .accumulate = row_accumulate, .ctx = &c};
  tfx_cg_attn_row_init(cg, &walk, ATT_KB);
  int mi = tfx_attn_key_mask_operand(n);
  if (mi >= 0) { /* the key mask: one value per key of this call */
    walk.kmask = tfx_cg_body_ptr(cg, 5);
    walk.kmask_i32 = cg->g->nodes[n->inputs[mi]].type.dtype == TFX_DT_I32;
  }
  if (tfx_attn_bias_operand(n) >= 0) { /* T5's relative bias: the bucket table; the head's column is set per item */
    walk.buckets = tfx_cg_attn_t5_buckets(cg, n, &walk.rel_span);
    walk.rel_stride = H;
    if (!walk.buckets) {
      free(c.qv);
      free(c.oa);
      return -1;
    }
  }
  /* a dilated pattern: the walk visits the query's residue class only (its keys with a stride) */
  tfx_node sub;
  int64_t gather = tfx_attn_gather(n, &sub);
  /* decode with another pattern the key range does not make exact: walk the block-sparse table's runs */
  tfx_cg_bs_table bs;
  int bs_decode = cg->decode && n->sparse.kind != TFX_SPARSE_NONE && n->sparse.kind != TFX_SPARSE_SLIDING &&
                  gather < 2 && !rt_global;
  if (bs_decode && tfx_cg_bs_table_get(cg, n, q_rows, k_rows, &bs)) {
    free(c.qv);
    free(c.oa);
    return -1;
  }
  for (int k = 0; k < nch; k++) c.oa[k] = tfx_cg_alloca(cg, cg->t_vf, "o");

  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
  LLVMValueRef t, h, part = NULL;
  tfx_cg_if in_call = {0};
  if (grows) { /* GLOBAL_ATTENTION: items (r, h), the query row the r-th global position, if in this call */
    h = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, H), "h");
    LLVMValueRef r = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, H), "r");
    t = LLVMBuildLoad2(b, cg->t_i64, LLVMBuildInBoundsGEP2(b, cg->t_i64, grows, &r, 1, ""), "t");
    tfx_cg_if_begin(cg, &in_call, LLVMBuildICmp(b, LLVMIntSLT, t, cg->T, ""), "in_call");
  } else if (gmask_rows) { /* GLOBAL_ATTENTION, per-call globals: items (t, h), only rows t the mask makes global */
    t = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, H), "t");
    h = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, H), "h");
    LLVMValueRef gv =
        LLVMBuildLoad2(b, cg->t_i32, LLVMBuildInBoundsGEP2(b, cg->t_i32, tfx_cg_body_ptr(cg, 6), &t, 1, ""), "gmask");
    tfx_cg_if_begin(cg, &in_call, LLVMBuildICmp(b, LLVMIntNE, gv, tfx_cg_i32(cg, 0), ""), "global_row");
  } else if (splits) {
    t = tfx_cg_i64(cg, 0);
    h = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, splits), "h");
    part = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, splits), "part");
  } else {
    t = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, H), "t");
    h = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, H), "h");
  }
  LLVMValueRef g = LLVMBuildUDiv(b, h, tfx_cg_i64(cg, group), "g");
  LLVMValueRef qrow = tfx_cg_fptr(cg, pq, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, d)));
  for (int k = 0; k < nch; k++)
    c.qv[k] = tfx_cg_vload(cg, tfx_cg_fptrc(cg, qrow, (int64_t)k * cg->W), nvalid_of(cg, d, k));
  LLVMValueRef qi = causal ? tfx_cg_row_pos(cg, t) : t; /* the query's position */
  c.blocks = causal && cg->batch ? tfx_cg_row_blocks(cg, t) : NULL;
  LLVMValueRef nkeys = causal ? tfx_cg_smin(cg, tfx_cg_addc(cg, qi, 1), tfx_cg_i64(cg, max_seq))
                              : (k_rows == TFX_DIM_T ? cg->T : tfx_cg_i64(cg, k_rows));
  LLVMValueRef jlo, jhi;
  tfx_cg_attn_key_range(cg, n, qi, nkeys, &jlo, &jhi);
  if (tfx_attn_segments_operand(n) >= 0) { /* packed sequences: only the keys of the query's segment */
    LLVMValueRef slo, shi;
    tfx_cg_segment_bounds(cg, tfx_cg_body_ptr(cg, 6), qi, nkeys, &slo, &shi);
    jlo = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, slo, jlo, ""), slo, jlo, "");
    jhi = tfx_cg_smin(cg, jhi, shi);
  }
  if (gather >= 2) tfx_cg_attn_row_gather(cg, &walk, gather, qi, &jlo, &jhi); /* the query's residue class */
  LLVMValueRef gm = NULL, qglobal = NULL, wlo = NULL, whi = NULL;
  if (rt_global) { /* a global query walks every key; a local one its window, then the global keys outside it */
    gm = tfx_cg_body_ptr(cg, 6);
    LLVMValueRef gq = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildInBoundsGEP2(b, cg->t_i32, gm, &qi, 1, ""), "gq");
    qglobal = LLVMBuildICmp(b, LLVMIntNE, gq, tfx_cg_i32(cg, 0), "qglobal");
    int64_t w = n->sparse.window;
    LLVMValueRef first = tfx_cg_addc(cg, qi, 1 - w);
    wlo = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, first, jlo, ""), first, jlo, "wlo");
    whi = tfx_cg_smin(cg, jhi, tfx_cg_addc(cg, qi, w));
    jlo = LLVMBuildSelect(b, qglobal, jlo, wlo, "jlo");
    jhi = LLVMBuildSelect(b, qglobal, jhi, whi, "jhi");
  }
  if (splits) tfx_cg_split_range(cg, splits, part, &jlo, &jhi);
  LLVMValueRef slope = tfx_cg_attn_slope(cg, n, h);
  if (walk.buckets) walk.relb = tfx_cg_fptr(cg, tfx_cg_body_ptr(cg, 4), h);
  c.kh = tfx_cg_fptr(cg, keys, tfx_cg_mulc(cg, g, d));
  c.vh = tfx_cg_fptr(cg, vals, tfx_cg_mulc(cg, g, d));
  for (int k = 0; k < nch; k++) LLVMBuildStore(b, LLVMConstNull(cg->t_vf), c.oa[k]);
  if (bs_decode) /* the decode entry: only the key groups the block-sparse table keeps for the query */
    tfx_cg_bs_row_walk(cg, &bs, &walk, qi, jlo, jhi, slope);
  else
    tfx_cg_attn_row_walk(cg, &walk, qi, jlo, jhi, slope);
  if (rt_global) { /* a local query: each global key j outside its window, one key at a time */
    tfx_cg_if local;
    tfx_cg_if_begin(cg, &local, LLVMBuildNot(b, qglobal, ""), "local_row");
    /* the mask scanned W values at a time: a vector of zeros (no global key) is skipped whole */
    LLVMValueRef nfull = tfx_cg_mulc(cg, LLVMBuildUDiv(b, nkeys, tfx_cg_i64(cg, cg->W), ""), cg->W);
    tfx_cg_loop ch;
    tfx_cg_for(cg, &ch, tfx_cg_i64(cg, 0), nfull, cg->W, "gchunk");
    LLVMValueRef vi = LLVMBuildBitCast(b, tfx_cg_vload(cg, tfx_cg_fptr(cg, gm, ch.iv), cg->W), cg->t_vi, "");
    LLVMValueRef any = tfx_cg_intrinsic(cg, "llvm.vector.reduce.or", &cg->t_vi, 1, &vi, 1);
    tfx_cg_if some;
    tfx_cg_if_begin(cg, &some, LLVMBuildICmp(b, LLVMIntNE, any, tfx_cg_i32(cg, 0), ""), "gchunk_any");
    global_keys(cg, &walk, gm, qi, ch.iv, tfx_cg_addc(cg, ch.iv, cg->W), wlo, whi, slope);
    tfx_cg_if_end(cg, &some);
    tfx_cg_for_end(cg, &ch);
    global_keys(cg, &walk, gm, qi, nfull, nkeys, wlo, whi, slope); /* the tail */
    tfx_cg_if_end(cg, &local);
  }

  if (splits) { /* the part's (max, sum, output) to its scratch record */
    LLVMValueRef rec = tfx_cg_split_record(cg, n, py, h, part, splits);
    tfx_cg_storef(cg, LLVMBuildLoad2(b, cg->t_f32, walk.sm.m, ""), rec);
    tfx_cg_storef(cg, LLVMBuildLoad2(b, cg->t_f32, walk.sm.l, ""), tfx_cg_fptrc(cg, rec, 1));
    for (int k = 0; k < nch; k++)
      tfx_cg_vstore(cg, LLVMBuildLoad2(b, cg->t_vf, c.oa[k], ""), tfx_cg_fptrc(cg, rec, 2 + (int64_t)k * cg->W),
                    nvalid_of(cg, d, k));
    tfx_cg_for_end(cg, &it);
    free(c.qv);
    free(c.oa);
    return 0;
  }
  /* y = o / l, or zeros when no key was allowed (l = 0) */
  LLVMValueRef any;
  LLVMValueRef lv_ = tfx_cg_splat(cg, tfx_cg_osm_denominator(cg, &walk.sm, &any));
  LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, d)));
  for (int k = 0; k < nch; k++) {
    LLVMValueRef o = LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->t_vf, c.oa[k], ""), lv_, "");
    o = LLVMBuildSelect(b, any, o, LLVMConstNull(cg->t_vf), "");
    tfx_cg_vstore(cg, o, tfx_cg_fptrc(cg, yrow, (int64_t)k * cg->W), nvalid_of(cg, d, k));
  }
  if (grows || gmask_rows) tfx_cg_if_end(cg, &in_call);
  tfx_cg_for_end(cg, &it);
  free(c.qv);
  free(c.oa);
  return 0;
}

int tfx_cg_emit_row_attention_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows) {
  return row_body(cg, n, q_rows, k_rows, 0, NULL, 0);
}

int tfx_cg_emit_split_partials_body(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, int splits) {
  return row_body(cg, n, q_rows, k_rows, splits, NULL, 0);
}

/* ---- the node: KV store, then the body of its schedule ---- */

typedef int (*attn_body_fn)(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows);
static const struct {
  const char *key; /* the body key's prefix */
  attn_body_fn emit;
} k_schedules[TFX_ATTN_SCHED_COUNT] = {
    [TFX_ATTN_SCHED_ROW] = {"", tfx_cg_emit_row_attention_body},
    [TFX_ATTN_SCHED_FLASH] = {"flash_", tfx_cg_emit_flash_body},
    [TFX_ATTN_SCHED_BLOCK_SPARSE] = {"bsparse_", tfx_cg_emit_block_sparse_body},
};

int tfx_cg_emit_attention(tfx_cg *cg, const tfx_node *n) {
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim;
  int64_t max_seq = cg->g->max_seq;
  int causal = n->mask == TFX_MASK_CAUSAL;
  int64_t q_rows = cg->g->nodes[n->inputs[0]].type.dims[0]; /* TFX_DIM_T or static */
  int64_t k_rows = cg->g->nodes[n->inputs[1]].type.dims[0];
  tfx_attn_sched sched = tfx_attn_schedule_of(cg->g, n, cg->decode || cg->batch); /* batch: ROW */
  if (sched <= TFX_ATTN_SCHED_UNSET || sched >= TFX_ATTN_SCHED_COUNT || !k_schedules[sched].emit ||
      !tfx_attn_schedule_applicable(n, sched))
    return tfx_cg_fail(cg, "backend: %%%d (attention): schedule %s is not available", n->id,
                       tfx_attn_schedule_name(sched));
  /* a node sharing an earlier node's cache (same k and v: tfx_attn_kv_owner) only reads it */
  if (causal && tfx_attn_kv_owner(cg->g, n) == n->id && emit_kv_store(cg, n)) return -1;
  int splits = tfx_cg_split_decode_parts(cg, n);
  if (splits) { /* the decode entry's split decode (k_split_decode.c) */
    int64_t k_off, half_bytes;
    kv_layout(cg, n, &k_off, &half_bytes);
    return tfx_cg_emit_split_decode(cg, n, q_rows, k_rows, TFX_CG_KVAT(k_off), TFX_CG_KVAT(k_off + half_bytes));
  }
  if (tfx_cg_tiny_heads_chosen(cg, n)) { /* the decode entry's tiny-head kernel (k_tiny_heads.c) */
    int64_t k_off, half_bytes;
    kv_layout(cg, n, &k_off, &half_bytes);
    return tfx_cg_emit_tiny_heads(cg, n, TFX_CG_KVAT(k_off), TFX_CG_KVAT(k_off + half_bytes));
  }
  char key[256], opts[160];
  tfx_cg_attn_key(n, max_seq, opts, sizeof opts);
  int bi = tfx_attn_bias_operand(n), mi = tfx_attn_key_mask_operand(n);
  int km = mi < 0 ? 0 : cg->g->nodes[n->inputs[mi]].type.dtype == TFX_DT_I32 ? 2 : 1;
  snprintf(key, sizeof key, "%sattention_H%lld_G%lld_d%lld_m%d_q%lld_k%lld_rb%lld_km%d_sg%d_%s", k_schedules[sched].key,
           (long long)H, (long long)G, (long long)d, causal, (long long)q_rows, (long long)k_rows,
           (long long)(bi >= 0 ? cg->g->nodes[n->inputs[bi]].type.dims[0] : 0), km, tfx_attn_segments_operand(n) >= 0,
           opts);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    int rc = k_schedules[sched].emit(cg, n, q_rows, k_rows);
    tfx_cg_body_end(cg);
    if (rc) return -1;
  }
  return kernel_call(cg, n, causal);
}

/* ---- GLOBAL_ATTENTION: Longformer's global rows ---- */

/* y's rows (copied unless the plan put the node in y's slot), then a kernel
 * whose items are (global row r, head h): the ROW body of a dense attention
 * (no mask, no pattern; the node's key mask) of qg's row p_r against every
 * key of kg, vg, written to row p_r of the node. The global positions are a
 * compile-time table (tfx_attn_global_rows below max_seq); an item whose
 * position is not in this call (p_r >= T) does nothing. Only the global
 * rows are computed: n_global x T per head, not T x T. */
/* the dense attention GLOBAL_ATTENTION's global rows run: ATTENTION's ROW body on qg, kg, vg [, key mask] */
static tfx_node global_dense_node(const tfx_node *n) {
  tfx_node a = *n;
  a.op = TFX_OP_ATTENTION;
  a.mask = TFX_MASK_NONE;
  a.sparse = (tfx_sparse){0};
  a.sparse.kind = TFX_SPARSE_NONE;
  a.attn_schedule = TFX_ATTN_SCHED_ROW;
  a.n_inputs = 3 + n->key_mask;
  for (int i = 0; i < a.n_inputs; i++) a.inputs[i] = n->inputs[i + 1];
  return a;
}

/* per-call global tokens (operand gi, i32[T]): items (row t, head h) of the call, each doing the dense row only
 * where the mask is nonzero (the others are y's, copied or in place) */
static int emit_global_attn_rt(tfx_cg *cg, const tfx_node *n, int gi) {
  const tfx_graph *g = cg->g;
  tfx_node a = global_dense_node(n);
  int mi = tfx_global_attn_key_mask_operand(n);
  int km = mi < 0 ? 0 : g->nodes[n->inputs[mi]].type.dtype == TFX_DT_I32 ? 2 : 1;
  char key[160];
  snprintf(key, sizeof key, "global_attention_rt_H%lld_G%lld_d%lld_km%d_S%lld", (long long)n->heads,
           (long long)n->kv_heads, (long long)n->head_dim, km, (long long)g->max_seq);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    int rc = row_body(cg, &a, TFX_DIM_T, TFX_DIM_T, 0, NULL, 1);
    tfx_cg_body_end(cg);
    if (rc) return -1;
  }
  tfx_cg_ptr ptrs[7] = {TFX_CG_VAL(n->inputs[1]),
                        TFX_CG_VAL(n->inputs[2]),
                        TFX_CG_VAL(n->inputs[3]),
                        TFX_CG_VAL(n->id),
                        TFX_CG_NONE,
                        mi >= 0 ? TFX_CG_VAL(n->inputs[mi]) : TFX_CG_NONE,
                        TFX_CG_VAL(n->inputs[gi])};
  tfx_cg_kernel_call_n(cg, n, NULL, n->heads, 0, ptrs, 7);
  return 0;
}

int tfx_cg_emit_global_attn(tfx_cg *cg, const tfx_node *n) {
  const tfx_graph *g = cg->g;
  int64_t max_seq = g->max_seq, H = n->heads, d = n->head_dim;
  if (g->nodes[n->inputs[0]].arena_offset != n->arena_offset || n->arena_offset < 0)
    if (tfx_cg_emit_value_copy(cg, n, n->inputs[0])) return -1;
  int gi = tfx_attn_global_operand(n);
  if (gi >= 0) return emit_global_attn_rt(cg, n, gi);
  int64_t ng = tfx_attn_global_rows(&n->sparse, max_seq, NULL, 0);
  if (ng == 0) return 0;
  int64_t *rows = malloc((size_t)ng * sizeof *rows);
  if (!rows) return tfx_cg_fail(cg, "backend: out of memory");
  tfx_attn_global_rows(&n->sparse, max_seq, rows, ng);
  tfx_node a = global_dense_node(n);
  int mi = tfx_global_attn_key_mask_operand(n);
  int km = mi < 0 ? 0 : g->nodes[n->inputs[mi]].type.dtype == TFX_DT_I32 ? 2 : 1;
  char key[160];
  snprintf(key, sizeof key, "global_attention_H%lld_G%lld_d%lld_km%d_n%lld_S%lld", (long long)H, (long long)n->kv_heads,
           (long long)d, km, (long long)ng, (long long)max_seq);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) {
    free(rows);
    return -1;
  }
  if (fresh) {
    LLVMValueRef *cv = malloc((size_t)ng * sizeof *cv);
    if (!cv) {
      free(rows);
      return tfx_cg_fail(cg, "backend: out of memory");
    }
    for (int64_t r = 0; r < ng; r++) cv[r] = tfx_cg_i64(cg, rows[r]);
    char gname[200];
    snprintf(gname, sizeof gname, "tfx_grows_%s_%d", cg->kmode, n->id);
    LLVMValueRef table = tfx_cg_const_global(cg, gname, LLVMConstArray2(cg->t_i64, cv, (uint64_t)ng), 8);
    free(cv);
    int rc = row_body(cg, &a, TFX_DIM_T, TFX_DIM_T, 0, table, 0);
    tfx_cg_body_end(cg);
    if (rc) {
      free(rows);
      return -1;
    }
  }
  free(rows);
  tfx_cg_ptr ptrs[7] = {TFX_CG_VAL(n->inputs[1]),
                        TFX_CG_VAL(n->inputs[2]),
                        TFX_CG_VAL(n->inputs[3]),
                        TFX_CG_VAL(n->id),
                        TFX_CG_NONE,
                        mi >= 0 ? TFX_CG_VAL(n->inputs[mi]) : TFX_CG_NONE,
                        TFX_CG_NONE};
  tfx_cg_kernel_call_n(cg, n, NULL, 0, ng * H, ptrs, 7);
  return 0;
}
