/* backend/k_tiny_heads.c — the tiny-head decode kernel: a causal dense
 * ATTENTION (MHA / GQA / MQA, no ALiBi, no sparse pattern, no relative bias)
 * with head_dim d <= TFX_ATTN_TINY_D in the decode entry
 * (tfx_attn_tiny_fits), chosen by schedule { decode = tiny } (not by the
 * cost model: on stories260K it measured no faster than the row kernel, see
 * docs/performance.md).
 * The row body reduces each score across d, a fraction of a vector when d
 * is small; this one vectorizes across keys instead. Items: heads of the
 * one query row. A block of W keys j0..j0+W-1:
 *   s = scale * sum_c q[c] * K[j, c]   (lane = key; K's c components read
 *                                       strided, lanes past the range clamped
 *                                       to the last key and masked to -inf)
 * with the online softmax kept lane-wise (m, l and o[0..d) are <W x float>:
 * m_new = max(m, s), m_use = m_new or 0 while -inf, corr = e^(m - m_use),
 * p = e^(s - m_use), l = l corr + p, o[c] = o[c] corr + p V[j, c]); at the
 * end the lanes merge: M = max of m over lanes with l > 0, w = e^(m - M),
 * y[c] = sum(w o[c]) / sum(w l); zeros when no key was allowed. */
#include <math.h>
#include <stdio.h>

#include "cg.h"

int tfx_cg_tiny_heads_chosen(const tfx_cg *cg, const tfx_node *n) {
  return cg->decode && !cg->one_row && !cg->batch && tfx_attn_tiny_chosen(cg->g, n);
}

/* <W x float> of base[vidx[l]] (vidx: <W x i64> element offsets), one masked gather */
static LLVMValueRef gather_col(tfx_cg *cg, LLVMValueRef base, LLVMValueRef vidx) {
  LLVMValueRef ptrs = LLVMBuildGEP2(cg->b, cg->t_f32, base, &vidx, 1, "");
  LLVMTypeRef over[2] = {cg->t_vf, LLVMTypeOf(ptrs)};
  LLVMValueRef args[4] = {ptrs, LLVMConstInt(cg->t_i32, 4, 0), LLVMConstAllOnes(cg->t_vm), LLVMGetUndef(cg->t_vf)};
  return tfx_cg_intrinsic(cg, "llvm.masked.gather", over, 2, args, 4);
}

static LLVMValueRef splat64(tfx_cg *cg, LLVMTypeRef vt, LLVMValueRef x) {
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vt), x, LLVMConstInt(cg->t_i32, 0, 0), "");
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vt),
                                LLVMConstNull(LLVMVectorType(cg->t_i32, LLVMGetVectorSize(vt))), "");
}

static int emit_body(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim, group = H / G, ks = G * d;
  int64_t max_seq = cg->g->max_seq;
  int W = cg->W;
  LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), keys = tfx_cg_body_ptr(cg, 1), vals = tfx_cg_body_ptr(cg, 2);
  LLVMValueRef py = tfx_cg_body_ptr(cg, 3);
  LLVMValueRef ninf = tfx_cg_fconst(cg, cg->t_vf, -INFINITY), vzero = LLVMConstNull(cg->t_vf);
  LLVMValueRef scale = tfx_cg_splat(cg, LLVMConstReal(cg->t_f32, tfx_attn_scale(n)));
  LLVMValueRef m = tfx_cg_alloca(cg, cg->t_vf, "m"), l = tfx_cg_alloca(cg, cg->t_vf, "l");
  LLVMValueRef o[TFX_ATTN_TINY_D], qc[TFX_ATTN_TINY_D];
  LLVMTypeRef t_vi64 = LLVMVectorType(cg->t_i64, (unsigned)W);
  LLVMValueRef lanes[64];
  for (int ln = 0; ln < W; ln++) lanes[ln] = LLVMConstInt(cg->t_i64, (unsigned long long)ln, 0);
  LLVMValueRef iota = LLVMConstVector(lanes, (unsigned)W);
  for (int c = 0; c < d; c++) o[c] = tfx_cg_alloca(cg, cg->t_vf, "o");

  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "head");
  LLVMValueRef h = it.iv;
  LLVMValueRef g = LLVMBuildUDiv(b, h, tfx_cg_i64(cg, group), "g");
  LLVMValueRef qrow = tfx_cg_fptr(cg, pq, tfx_cg_mulc(cg, h, d));
  for (int c = 0; c < d; c++) qc[c] = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptrc(cg, qrow, c)));
  LLVMValueRef qi = tfx_cg_row_pos(cg, tfx_cg_i64(cg, 0));
  LLVMValueRef nkeys = tfx_cg_smin(cg, tfx_cg_addc(cg, qi, 1), tfx_cg_i64(cg, max_seq));
  LLVMValueRef last = tfx_cg_addc(cg, nkeys, -1);
  LLVMValueRef kh = tfx_cg_fptr(cg, keys, tfx_cg_mulc(cg, g, d));
  LLVMValueRef vh = tfx_cg_fptr(cg, vals, tfx_cg_mulc(cg, g, d));
  LLVMBuildStore(b, ninf, m);
  LLVMBuildStore(b, vzero, l);
  for (int c = 0; c < d; c++) LLVMBuildStore(b, vzero, o[c]);

  tfx_cg_loop blk;
  tfx_cg_for(cg, &blk, tfx_cg_i64(cg, 0), nkeys, W, "blk");
  /* the lanes' keys j0 + l, clamped to the last key, as element offsets j * ks */
  LLVMValueRef vj = LLVMBuildAdd(b, splat64(cg, t_vi64, blk.iv), iota, "");
  LLVMValueRef vlast = splat64(cg, t_vi64, last);
  vj = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, vj, vlast, ""), vj, vlast, "");
  LLVMValueRef vidx = LLVMBuildMul(b, vj, splat64(cg, t_vi64, tfx_cg_i64(cg, ks)), "");
  LLVMValueRef valid = tfx_cg_mask_dyn(cg, tfx_cg_sub(cg, nkeys, blk.iv));
  LLVMValueRef s = NULL;
  for (int c = 0; c < d; c++) {
    LLVMValueRef kc = gather_col(cg, tfx_cg_fptrc(cg, kh, c), vidx);
    s = s ? tfx_cg_fma(cg, qc[c], kc, s) : LLVMBuildFMul(b, qc[c], kc, "");
  }
  s = LLVMBuildSelect(b, valid, tfx_cg_softcap(cg, LLVMBuildFMul(b, s, scale, "score"), n->softcap), ninf, "");
  LLVMValueRef m_old = LLVMBuildLoad2(b, cg->t_vf, m, "");
  LLVMValueRef m_new = tfx_cg_fmax(cg, m_old, s);
  LLVMValueRef m_use = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, m_new, ninf, ""), vzero, m_new, "m_use");
  LLVMValueRef corr = tfx_cg_exp(cg, LLVMBuildFSub(b, m_old, m_use, ""));
  LLVMValueRef p = LLVMBuildSelect(b, valid, tfx_cg_exp(cg, LLVMBuildFSub(b, s, m_use, "")), vzero, "p");
  LLVMBuildStore(b, tfx_cg_fma(cg, LLVMBuildLoad2(b, cg->t_vf, l, ""), corr, p), l);
  for (int c = 0; c < d; c++) {
    LLVMValueRef vc = gather_col(cg, tfx_cg_fptrc(cg, vh, c), vidx);
    LLVMValueRef oc = LLVMBuildFMul(b, LLVMBuildLoad2(b, cg->t_vf, o[c], ""), corr, "");
    LLVMBuildStore(b, tfx_cg_fma(cg, p, vc, oc), o[c]);
  }
  LLVMBuildStore(b, m_new, m);
  tfx_cg_for_end(cg, &blk);

  /* merge the lanes */
  LLVMValueRef mv = LLVMBuildLoad2(b, cg->t_vf, m, ""), lv = LLVMBuildLoad2(b, cg->t_vf, l, "");
  LLVMValueRef seen = LLVMBuildFCmp(b, LLVMRealOGT, lv, vzero, "seen");
  LLVMValueRef M = tfx_cg_hmax(cg, LLVMBuildSelect(b, seen, mv, ninf, ""));
  LLVMValueRef any = LLVMBuildFCmp(b, LLVMRealONE, M, LLVMConstReal(cg->t_f32, -INFINITY), "any");
  LLVMValueRef Mu = tfx_cg_splat(cg, LLVMBuildSelect(b, any, M, LLVMConstReal(cg->t_f32, 0.0), ""));
  LLVMValueRef ms = LLVMBuildSelect(b, seen, mv, Mu, "");
  LLVMValueRef w = LLVMBuildSelect(b, seen, tfx_cg_exp(cg, LLVMBuildFSub(b, ms, Mu, "")), vzero, "w");
  LLVMValueRef L = tfx_cg_hsum(cg, LLVMBuildFMul(b, w, lv, ""));
  LLVMValueRef ok = LLVMBuildAnd(b, any, LLVMBuildFCmp(b, LLVMRealOGT, L, LLVMConstReal(cg->t_f32, 0.0), ""), "");
  LLVMValueRef Ld = LLVMBuildSelect(b, ok, L, LLVMConstReal(cg->t_f32, 1.0), "");
  LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, h, d));
  for (int c = 0; c < d; c++) {
    LLVMValueRef y =
        LLVMBuildFDiv(b, tfx_cg_hsum(cg, LLVMBuildFMul(b, w, LLVMBuildLoad2(b, cg->t_vf, o[c], ""), "")), Ld, "");
    tfx_cg_storef(cg, LLVMBuildSelect(b, ok, y, LLVMConstReal(cg->t_f32, 0.0), ""), tfx_cg_fptrc(cg, yrow, c));
  }
  tfx_cg_for_end(cg, &it);
  return 0;
}

int tfx_cg_emit_tiny_heads(tfx_cg *cg, const tfx_node *n, tfx_cg_ptr keys, tfx_cg_ptr vals) {
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim;
  if (cg->W > 64) return tfx_cg_fail(cg, "backend: tiny-head decode: vector width %d", cg->W);
  char key[96];
  snprintf(key, sizeof key, "tinydec_H%lld_G%lld_d%lld_S%lld_%.9g", (long long)H, (long long)G, (long long)d,
           (long long)cg->g->max_seq, tfx_attn_scale(n));
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    int rc = emit_body(cg, n);
    tfx_cg_body_end(cg);
    if (rc) return -1;
  }
  tfx_cg_kernel_call(cg, n, NULL, 0, H, (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), keys, vals, TFX_CG_VAL(n->id)});
  return 0;
}
