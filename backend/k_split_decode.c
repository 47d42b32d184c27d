/* backend/k_split_decode.c — split decode (flash-decoding) of a causal
 * ATTENTION in the decode entry (the node's attn_split >= 2 parts, chosen by
 * the schedule_attention pass with passes/attn_cost.c or by
 * schedule { decode = split(N) }): the one query row's keys are cut into
 * `splits` equal parts so that (head, part) pairs, not only heads, spread
 * over the threads.
 *  - the partials kernel (k_attention.c's ROW body, items (head, part)):
 *    part s of head h walks keys [lo + len*s/S, lo + len*(s+1)/S) of the
 *    query's key range with the online softmax and writes the record
 *    (m, l, o[0..d)) — its running max, sum and unnormalized output;
 *  - the merge kernel (items: heads): M = max_s m_s over the parts with
 *    l_s > 0, w_s = e^(m_s - M), y = sum_s w_s o_s / sum_s w_s l_s; zeros
 *    when no part saw an allowed key.
 * The records live in rows 1.. of the node's own output slot (sized for
 * max_seq rows; the decode entry writes row 0 only): H * S * (d + 2)
 * floats from y + H * d (tfx_attn_split_fits checks that they fit), so
 * split decode needs no memory of its own and sessions stay independent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg.h"

int tfx_cg_split_decode_parts(const tfx_cg *cg, const tfx_node *n) {
  if (!cg->decode || cg->one_row || cg->batch || n->attn_split < 2) return 0;
  return tfx_attn_split_fits(cg->g, n, n->attn_split) ? n->attn_split : 0;
}

void tfx_cg_split_range(tfx_cg *cg, int splits, LLVMValueRef part, LLVMValueRef *jlo, LLVMValueRef *jhi) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef len = tfx_cg_sub(cg, *jhi, *jlo);
  len = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, len, tfx_cg_i64(cg, 0), ""), len, tfx_cg_i64(cg, 0), "len");
  LLVMValueRef S = tfx_cg_i64(cg, splits);
  LLVMValueRef a = LLVMBuildSDiv(b, tfx_cg_mul(cg, len, part), S, "");
  LLVMValueRef e = LLVMBuildSDiv(b, tfx_cg_mul(cg, len, tfx_cg_addc(cg, part, 1)), S, "");
  LLVMValueRef lo = *jlo;
  *jlo = tfx_cg_add(cg, lo, a);
  *jhi = tfx_cg_add(cg, lo, e);
}

LLVMValueRef tfx_cg_split_record(tfx_cg *cg, const tfx_node *n, LLVMValueRef y, LLVMValueRef h, LLVMValueRef part,
                                 int splits) {
  int64_t d = n->head_dim, qs = (int64_t)n->heads * d;
  LLVMValueRef idx = tfx_cg_add(cg, tfx_cg_mulc(cg, h, splits), part);
  return tfx_cg_fptr(cg, y, tfx_cg_addc(cg, tfx_cg_mulc(cg, idx, d + 2), qs));
}

static int nvalid_of(tfx_cg *cg, int64_t d, int c) {
  int64_t left = d - (int64_t)c * cg->W;
  return left >= cg->W ? cg->W : (int)left;
}

/* the merge body: items heads; pointer 0 is y (row 0 and the records after it) */
static int emit_merge_body(tfx_cg *cg, const tfx_node *n, int splits) {
  LLVMBuilderRef b = cg->b;
  int64_t d = n->head_dim;
  int nch = (int)((d + cg->W - 1) / cg->W);
  LLVMValueRef *acc = malloc((size_t)nch * sizeof *acc);
  if (!acc) return tfx_cg_fail(cg, "backend: out of memory");
  for (int k = 0; k < nch; k++) acc[k] = tfx_cg_alloca(cg, cg->t_vf, "acc");
  LLVMValueRef mmax = tfx_cg_alloca(cg, cg->t_f32, "M"), lsum = tfx_cg_alloca(cg, cg->t_f32, "L");
  LLVMValueRef y = tfx_cg_body_ptr(cg, 0), ninf = LLVMConstReal(cg->t_f32, -INFINITY);
  LLVMValueRef zero = LLVMConstReal(cg->t_f32, 0.0);
  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "head");
  LLVMValueRef h = it.iv;
  /* M: the largest max of a part that saw an allowed key */
  LLVMBuildStore(b, ninf, mmax);
  tfx_cg_loop ps;
  tfx_cg_for(cg, &ps, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, splits), 1, "part");
  LLVMValueRef rec = tfx_cg_split_record(cg, n, y, h, ps.iv, splits);
  LLVMValueRef m = tfx_cg_loadf(cg, rec), l = tfx_cg_loadf(cg, tfx_cg_fptrc(cg, rec, 1));
  LLVMValueRef seen = LLVMBuildFCmp(b, LLVMRealOGT, l, zero, "seen");
  LLVMValueRef mo = LLVMBuildLoad2(b, cg->t_f32, mmax, "");
  LLVMBuildStore(b, LLVMBuildSelect(b, seen, tfx_cg_fmax(cg, mo, m), mo, ""), mmax);
  tfx_cg_for_end(cg, &ps);
  /* the weighted sums */
  LLVMValueRef M = LLVMBuildLoad2(b, cg->t_f32, mmax, "");
  LLVMValueRef any = LLVMBuildFCmp(b, LLVMRealONE, M, ninf, "any");
  LLVMValueRef Mu = LLVMBuildSelect(b, any, M, zero, "");
  LLVMBuildStore(b, zero, lsum);
  for (int k = 0; k < nch; k++) LLVMBuildStore(b, LLVMConstNull(cg->t_vf), acc[k]);
  tfx_cg_loop pw;
  tfx_cg_for(cg, &pw, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, splits), 1, "part");
  rec = tfx_cg_split_record(cg, n, y, h, pw.iv, splits);
  m = tfx_cg_loadf(cg, rec), l = tfx_cg_loadf(cg, tfx_cg_fptrc(cg, rec, 1));
  seen = LLVMBuildFCmp(b, LLVMRealOGT, l, zero, "seen");
  LLVMValueRef ms = LLVMBuildSelect(b, seen, m, Mu, "");
  LLVMValueRef w = LLVMBuildSelect(b, seen, tfx_cg_exp(cg, LLVMBuildFSub(b, ms, Mu, "")), zero, "w");
  LLVMBuildStore(b, tfx_cg_fma(cg, w, l, LLVMBuildLoad2(b, cg->t_f32, lsum, "")), lsum);
  LLVMValueRef wv = tfx_cg_splat(cg, w);
  for (int k = 0; k < nch; k++) {
    LLVMValueRef o = tfx_cg_vload(cg, tfx_cg_fptrc(cg, rec, 2 + (int64_t)k * cg->W), nvalid_of(cg, d, k));
    /* a part without an allowed key holds zeros: w = 0 keeps them out */
    LLVMBuildStore(b, tfx_cg_fma(cg, wv, o, LLVMBuildLoad2(b, cg->t_vf, acc[k], "")), acc[k]);
  }
  tfx_cg_for_end(cg, &pw);
  LLVMValueRef L = LLVMBuildLoad2(b, cg->t_f32, lsum, "");
  LLVMValueRef ok = LLVMBuildAnd(b, any, LLVMBuildFCmp(b, LLVMRealOGT, L, zero, ""), "");
  LLVMValueRef Lv = tfx_cg_splat(cg, LLVMBuildSelect(b, ok, L, LLVMConstReal(cg->t_f32, 1.0), ""));
  LLVMValueRef yrow = tfx_cg_fptr(cg, y, tfx_cg_mulc(cg, h, d));
  for (int k = 0; k < nch; k++) {
    LLVMValueRef o = LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->t_vf, acc[k], ""), Lv, "");
    o = LLVMBuildSelect(b, ok, o, LLVMConstNull(cg->t_vf), "");
    tfx_cg_vstore(cg, o, tfx_cg_fptrc(cg, yrow, (int64_t)k * cg->W), nvalid_of(cg, d, k));
  }
  tfx_cg_for_end(cg, &it);
  free(acc);
  return 0;
}

int tfx_cg_emit_split_decode(tfx_cg *cg, const tfx_node *n, int64_t q_rows, int64_t k_rows, tfx_cg_ptr keys,
                             tfx_cg_ptr vals) {
  int splits = tfx_cg_split_decode_parts(cg, n);
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim;
  char key[256], opts[160];
  tfx_cg_attn_key(n, cg->g->max_seq, opts, sizeof opts);
  snprintf(key, sizeof key, "splitdec%d_attention_H%lld_G%lld_d%lld_q%lld_k%lld_%s", splits, (long long)H, (long long)G,
           (long long)d, (long long)q_rows, (long long)k_rows, opts);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    int rc = tfx_cg_emit_split_partials_body(cg, n, q_rows, k_rows, splits);
    tfx_cg_body_end(cg);
    if (rc) return -1;
  }
  tfx_cg_kernel_call(cg, n, NULL, 0, H * splits,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), keys, vals, TFX_CG_VAL(n->id)});
  snprintf(key, sizeof key, "splitmerge_H%lld_d%lld_S%d", (long long)H, (long long)d, splits);
  fresh = tfx_cg_body_begin(cg, key);
  if (fresh < 0) return -1;
  if (fresh) {
    int rc = emit_merge_body(cg, n, splits);
    tfx_cg_body_end(cg);
    if (rc) return -1;
  }
  tfx_cg_kernel_call(cg, n, "merge", 0, H, (tfx_cg_ptr[4]){TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}
