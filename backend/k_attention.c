/* backend/k_attention.c — ATTENTION kernels (scaled dot-product, MHA / GQA /
 * MQA: query head h reads KV head h / (H/G), scale 1/sqrt(d)), with the
 * options of ir/attention.c: ALiBi, sparse patterns, cross-attention.
 *  - causal: a first kernel (items: rows t) stores this call's K and V rows at
 *    positions pos..pos+T-1 of the node's cache (K at kv + kv_offset,
 *    [max_seq, G*d]; V right after it); then query t (position i = pos + t)
 *    attends keys 0..i.
 *  - mask none: query row t (i = t) attends the rows of k and v of this call
 *    (T rows, or a static count for cross-attention to a memory), no cache;
 *    q may have static rows too.
 * The attention kernel's items are (row, head) pairs. Each walks its key
 * range (k_attn_mask.c: narrowed to the window of sliding patterns) in blocks
 * of KB with an online softmax (running max m, sum l, output accumulator o
 * rescaled by e^(m_old - m_new)), so its scratch is KB floats whatever the
 * context length: scores of a block go to a stack buffer (ALiBi's
 * -slope_h * |i - j| added, masked keys set to -inf), are exponentiated in
 * vectors, then accumulate p_j * v_j into o in vectors of W. While every key
 * seen so far is masked, m stays -inf and exponents are taken against 0 so
 * no NaN appears; a row with no allowed key ends with l = 0 and writes zeros.
 * In the forward entry, attention without a sparse pattern runs the tiled
 * schedule of k_flash_attention.c instead (unless schedule attention = dense). */
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
    LLVMValueRef r = tfx_cg_add(cg, cg->pos, row.iv);
    tfx_cg_if in_range;
    tfx_cg_if_begin(cg, &in_range, LLVMBuildICmp(cg->b, LLVMIntULT, r, tfx_cg_i64(cg, max_seq), ""), "fits");
    LLVMValueRef src_off = tfx_cg_mulc(cg, row.iv, ks), dst_off = tfx_cg_mulc(cg, r, ks);
    kv_copy c = {tfx_cg_fptr(cg, pk, src_off), tfx_cg_fptr(cg, kc, dst_off)};
    tfx_cg_chunks(cg, ks, copy_chunk, &c);
    c = (kv_copy){tfx_cg_fptr(cg, pv, src_off), tfx_cg_fptr(cg, vc, dst_off)};
    tfx_cg_chunks(cg, ks, copy_chunk, &c);
    tfx_cg_if_end(cg, &in_range);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, "kvstore", 1, 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[1]), TFX_CG_VAL(n->inputs[2]), TFX_CG_KVAT(n->kv_offset),
                                     TFX_CG_KVAT(n->kv_offset + max_seq * ks * 4)});
  return 0;
}

static int nvalid_of(tfx_cg *cg, int64_t d, int c) {
  int64_t left = d - (int64_t)c * cg->W;
  return left >= cg->W ? cg->W : (int)left;
}

/* The node's kernel: q, keys, values (the cache when causal), output; items
 * are (row, head) pairs of q. */
static int kernel_call(tfx_cg *cg, const tfx_node *n, int causal, int64_t half_bytes) {
  tfx_cg_ptr k = causal ? TFX_CG_KVAT(n->kv_offset) : TFX_CG_VAL(n->inputs[1]);
  tfx_cg_ptr v = causal ? TFX_CG_KVAT(n->kv_offset + half_bytes) : TFX_CG_VAL(n->inputs[2]);
  int64_t per_t, fixed;
  tfx_cg_rows_split(&cg->g->nodes[n->inputs[0]], &per_t, &fixed);
  tfx_cg_kernel_call(cg, n, NULL, per_t * n->heads, fixed * n->heads,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), k, v, TFX_CG_VAL(n->id)});
  return 0;
}

int tfx_cg_emit_attention(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim, group = H / G;
  int64_t qs = H * d, ks = G * d, max_seq = cg->g->max_seq;
  int causal = n->mask == TFX_MASK_CAUSAL;
  int64_t q_rows = cg->g->nodes[n->inputs[0]].type.dims[0]; /* TFX_DIM_T or static */
  int64_t k_rows = cg->g->nodes[n->inputs[1]].type.dims[0];
  int nch = (int)((d + cg->W - 1) / cg->W);
  LLVMValueRef *qv = malloc((size_t)nch * sizeof *qv), *oa = malloc((size_t)nch * sizeof *oa);
  if (!qv || !oa) {
    free(qv);
    free(oa);
    return tfx_cg_fail(cg, "backend: out of memory");
  }
  if (causal && emit_kv_store(cg, n)) {
    free(qv);
    free(oa);
    return -1;
  }
  char key[256], opts[160];
  tfx_cg_attn_key(n, max_seq, opts, sizeof opts);
  int flash = tfx_cg_flash_eligible(cg, n);
  snprintf(key, sizeof key, "%sattention_H%lld_G%lld_d%lld_m%d_q%lld_k%lld_%s", flash ? "flash_" : "", (long long)H,
           (long long)G, (long long)d, causal, (long long)q_rows, (long long)k_rows, opts);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh <= 0 || flash) {
    free(qv);
    free(oa);
    if (fresh < 0) return -1;
    if (fresh) {
      tfx_cg_emit_flash_body(cg, n, q_rows, k_rows);
      tfx_cg_body_end(cg);
    }
    return kernel_call(cg, n, causal, max_seq * ks * 4);
  }
  LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), keys = tfx_cg_body_ptr(cg, 1), vals = tfx_cg_body_ptr(cg, 2);
  LLVMValueRef py = tfx_cg_body_ptr(cg, 3), pos = cg->pos;
  LLVMValueRef m_a = tfx_cg_alloca(cg, cg->t_f32, "m");
  LLVMValueRef l_a = tfx_cg_alloca(cg, cg->t_f32, "l");
  LLVMValueRef bmax_a = tfx_cg_alloca(cg, cg->t_f32, "bmax");
  LLVMValueRef lsum_a = tfx_cg_alloca(cg, cg->t_vf, "lsum");
  LLVMValueRef buf = tfx_cg_alloca_array(cg, cg->t_f32, ATT_KB, "scores");
  for (int c = 0; c < nch; c++) oa[c] = tfx_cg_alloca(cg, cg->t_vf, "o");
  LLVMValueRef scale = LLVMConstReal(cg->t_f32, 1.0 / sqrt((double)d));
  LLVMValueRef ninf = LLVMConstReal(cg->t_f32, -INFINITY), fzero = LLVMConstReal(cg->t_f32, 0.0);

  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
  LLVMValueRef t = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, H), "t");
  LLVMValueRef h = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, H), "h");
  LLVMValueRef g = LLVMBuildUDiv(b, h, tfx_cg_i64(cg, group), "g");
  LLVMValueRef qrow = tfx_cg_fptr(cg, pq, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, d)));
  for (int c = 0; c < nch; c++)
    qv[c] = tfx_cg_vload(cg, tfx_cg_fptrc(cg, qrow, (int64_t)c * cg->W), nvalid_of(cg, d, c));
  LLVMValueRef qi = causal ? tfx_cg_add(cg, pos, t) : t; /* the query's position */
  LLVMValueRef nkeys = causal ? tfx_cg_smin(cg, tfx_cg_addc(cg, qi, 1), tfx_cg_i64(cg, max_seq))
                              : (k_rows == TFX_DIM_T ? cg->T : tfx_cg_i64(cg, k_rows));
  LLVMValueRef jlo, jhi;
  tfx_cg_attn_key_range(cg, n, qi, nkeys, &jlo, &jhi);
  LLVMValueRef slope = tfx_cg_attn_slope(cg, n, h);
  LLVMValueRef kh = tfx_cg_fptr(cg, keys, tfx_cg_mulc(cg, g, d));
  LLVMValueRef vh = tfx_cg_fptr(cg, vals, tfx_cg_mulc(cg, g, d));
  LLVMBuildStore(b, ninf, m_a);
  LLVMBuildStore(b, fzero, l_a);
  for (int c = 0; c < nch; c++) LLVMBuildStore(b, LLVMConstNull(cg->t_vf), oa[c]);

  tfx_cg_loop blk;
  tfx_cg_for(cg, &blk, jlo, jhi, ATT_KB, "blk");
  LLVMValueRef jn = tfx_cg_smin(cg, tfx_cg_i64(cg, ATT_KB), tfx_cg_sub(cg, jhi, blk.iv));
  /* scores of the block */
  LLVMBuildStore(b, ninf, bmax_a);
  tfx_cg_loop lj;
  tfx_cg_for(cg, &lj, tfx_cg_i64(cg, 0), jn, 1, "key");
  LLVMValueRef j = tfx_cg_add(cg, blk.iv, lj.iv);
  LLVMValueRef kp = tfx_cg_fptr(cg, kh, tfx_cg_mulc(cg, j, ks));
  LLVMValueRef acc = NULL;
  for (int c = 0; c < nch; c++) {
    LLVMValueRef kv = tfx_cg_vload(cg, tfx_cg_fptrc(cg, kp, (int64_t)c * cg->W), nvalid_of(cg, d, c));
    acc = acc ? tfx_cg_fma(cg, qv[c], kv, acc) : LLVMBuildFMul(b, qv[c], kv, "");
  }
  LLVMValueRef s = LLVMBuildFMul(b, tfx_cg_hsum(cg, acc), scale, "score");
  if (slope) {
    LLVMValueRef dist = tfx_cg_sub(cg, qi, j);
    if (!causal) dist = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, qi, j, ""), dist, tfx_cg_sub(cg, j, qi), "");
    s = LLVMBuildFSub(b, s, LLVMBuildFMul(b, slope, LLVMBuildSIToFP(b, dist, cg->t_f32, ""), ""), "alibi");
  }
  LLVMValueRef allowed = tfx_cg_attn_allowed(cg, n, qi, j);
  if (allowed) s = LLVMBuildSelect(b, allowed, s, ninf, "masked");
  tfx_cg_storef(cg, s, tfx_cg_fptr(cg, buf, lj.iv));
  LLVMBuildStore(b, tfx_cg_fmax(cg, LLVMBuildLoad2(b, cg->t_f32, bmax_a, ""), s), bmax_a);
  tfx_cg_for_end(cg, &lj);
  /* rescale the running sums to the new max (exponents against 0 while all is masked) */
  LLVMValueRef m_old = LLVMBuildLoad2(b, cg->t_f32, m_a, "");
  LLVMValueRef m_new = tfx_cg_fmax(cg, m_old, LLVMBuildLoad2(b, cg->t_f32, bmax_a, ""));
  LLVMValueRef m_use = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, m_new, ninf, ""), fzero, m_new, "m_use");
  LLVMValueRef corr = tfx_cg_exp(cg, LLVMBuildFSub(b, m_old, m_use, ""));
  LLVMValueRef corr_v = tfx_cg_splat(cg, corr);
  LLVMBuildStore(b, LLVMBuildFMul(b, LLVMBuildLoad2(b, cg->t_f32, l_a, ""), corr, ""), l_a);
  for (int c = 0; c < nch; c++)
    LLVMBuildStore(b, LLVMBuildFMul(b, LLVMBuildLoad2(b, cg->t_vf, oa[c], ""), corr_v, ""), oa[c]);
  /* p = exp(s - m_use) in vectors; sum into l */
  LLVMValueRef m_use_v = tfx_cg_splat(cg, m_use);
  LLVMBuildStore(b, LLVMConstNull(cg->t_vf), lsum_a);
  tfx_cg_loop lv;
  tfx_cg_for(cg, &lv, tfx_cg_i64(cg, 0), jn, cg->W, "pexp");
  LLVMValueRef sp = tfx_cg_fptr(cg, buf, lv.iv);
  LLVMValueRef p = tfx_cg_exp(cg, LLVMBuildFSub(b, tfx_cg_vload(cg, sp, cg->W), m_use_v, ""));
  p = LLVMBuildSelect(b, tfx_cg_mask_dyn(cg, tfx_cg_sub(cg, jn, lv.iv)), p, LLVMConstNull(cg->t_vf), "");
  tfx_cg_vstore(cg, p, sp, cg->W);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->t_vf, lsum_a, ""), p, ""), lsum_a);
  tfx_cg_for_end(cg, &lv);
  LLVMValueRef lsum = tfx_cg_hsum(cg, LLVMBuildLoad2(b, cg->t_vf, lsum_a, ""));
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->t_f32, l_a, ""), lsum, ""), l_a);
  /* o += p_j * v_j */
  tfx_cg_loop lo;
  tfx_cg_for(cg, &lo, tfx_cg_i64(cg, 0), jn, 1, "val");
  LLVMValueRef pj = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, buf, lo.iv)));
  LLVMValueRef vp = tfx_cg_fptr(cg, vh, tfx_cg_mulc(cg, tfx_cg_add(cg, blk.iv, lo.iv), ks));
  for (int c = 0; c < nch; c++) {
    LLVMValueRef vv = tfx_cg_vload(cg, tfx_cg_fptrc(cg, vp, (int64_t)c * cg->W), nvalid_of(cg, d, c));
    LLVMBuildStore(b, tfx_cg_fma(cg, pj, vv, LLVMBuildLoad2(b, cg->t_vf, oa[c], "")), oa[c]);
  }
  tfx_cg_for_end(cg, &lo);
  LLVMBuildStore(b, m_new, m_a);
  tfx_cg_for_end(cg, &blk);

  /* y = o / l, or zeros when no key was allowed (l = 0) */
  LLVMValueRef l = LLVMBuildLoad2(b, cg->t_f32, l_a, "");
  LLVMValueRef any = LLVMBuildFCmp(b, LLVMRealOGT, l, fzero, "any");
  LLVMValueRef lv_ = tfx_cg_splat(cg, LLVMBuildSelect(b, any, l, LLVMConstReal(cg->t_f32, 1.0), ""));
  LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, d)));
  for (int c = 0; c < nch; c++) {
    LLVMValueRef o = LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->t_vf, oa[c], ""), lv_, "");
    o = LLVMBuildSelect(b, any, o, LLVMConstNull(cg->t_vf), "");
    tfx_cg_vstore(cg, o, tfx_cg_fptrc(cg, yrow, (int64_t)c * cg->W), nvalid_of(cg, d, c));
  }
  tfx_cg_for_end(cg, &it);
  tfx_cg_body_end(cg);
  free(qv);
  free(oa);
  return kernel_call(cg, n, causal, max_seq * ks * 4);
}
