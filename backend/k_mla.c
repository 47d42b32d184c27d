/* backend/k_mla.c — MLA_ATTENTION kernels (DeepSeek-V2 multi-head latent
 * attention, causal), in the absorbed form: the KV cache holds only the
 * latent row [c | kr] (r + dr floats per token) and no head's K or V is ever
 * built.
 *  - store (items: rows t, position p = pos + t): c = ckv[t, 0:r], RMS-
 *    normalized with the kv_norm gain when there is one; kr = ckv[t, r:]
 *    rotated by p (interleaved or half pairs, inverse frequencies as
 *    compile-time constants, sin/cos inline in double); [c | kr] goes to row p
 *    of the node's cache.
 *  - attention (items: (t, h)): the query is folded into latent space,
 *    qbuf = [W_uk_h^T q_nope | rope(q_pe, p)] / sqrt(dn + dr) (r + dr floats
 *    on the stack), so a score is one dot product with a cached row; the keys
 *    0..p (narrowed by sliding patterns) are walked in blocks of KB with the
 *    online softmax of k_attention.c (ALiBi, sparse masks, -inf-safe, zeros
 *    for a row without keys), accumulating ctx = sum_j p_j c_j (r floats);
 *    finally y_h[e] = W_uv_h[e] . ctx / l. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

#define MLA_KB 64 /* keys per block; a multiple of every vector width */

/* ---- vector helpers over n floats (chunks of W with a masked tail) ---- */

typedef enum { V_ZERO, V_AXPY, V_SCALE, V_MUL, V_DOT, V_COPY_SCALED } vop_kind;
typedef struct {
  vop_kind op;
  LLVMValueRef y, x; /* y: destination / first operand; x: second operand */
  LLVMValueRef a;    /* splat scalar */
  LLVMValueRef acc;  /* V_DOT: alloca of a vector accumulator */
} vop;

static void vop_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  vop *o = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef yp = tfx_cg_fptr(cg, o->y, col);
  switch (o->op) {
  case V_ZERO: tfx_cg_vstore(cg, LLVMConstNull(cg->t_vf), yp, nvalid); return;
  case V_AXPY: {
    LLVMValueRef x = tfx_cg_vload(cg, tfx_cg_fptr(cg, o->x, col), nvalid);
    tfx_cg_vstore(cg, tfx_cg_fma(cg, o->a, x, tfx_cg_vload(cg, yp, nvalid)), yp, nvalid);
    return;
  }
  case V_SCALE: tfx_cg_vstore(cg, LLVMBuildFMul(b, tfx_cg_vload(cg, yp, nvalid), o->a, ""), yp, nvalid); return;
  case V_MUL: {
    LLVMValueRef x = tfx_cg_vload(cg, tfx_cg_fptr(cg, o->x, col), nvalid);
    tfx_cg_vstore(cg, LLVMBuildFMul(b, tfx_cg_vload(cg, yp, nvalid), x, ""), yp, nvalid);
    return;
  }
  case V_COPY_SCALED: {
    LLVMValueRef x = tfx_cg_vload(cg, tfx_cg_fptr(cg, o->x, col), nvalid);
    tfx_cg_vstore(cg, LLVMBuildFMul(b, x, o->a, ""), yp, nvalid);
    return;
  }
  case V_DOT: {
    LLVMValueRef x = tfx_cg_vload(cg, tfx_cg_fptr(cg, o->x, col), nvalid);
    LLVMValueRef acc = LLVMBuildLoad2(b, cg->t_vf, o->acc, "");
    LLVMBuildStore(b, tfx_cg_fma(cg, tfx_cg_vload(cg, yp, nvalid), x, acc), o->acc);
    return;
  }
  }
}

static void vrun(tfx_cg *cg, vop_kind op, LLVMValueRef y, LLVMValueRef x, LLVMValueRef a_scalar, LLVMValueRef acc,
                 int64_t n) {
  vop o = {op, y, x, a_scalar ? tfx_cg_splat(cg, a_scalar) : NULL, acc};
  tfx_cg_chunks(cg, n, vop_chunk, &o);
}

/* sum y[0..n) * x[0..n) */
static LLVMValueRef vdot(tfx_cg *cg, LLVMValueRef y, LLVMValueRef x, LLVMValueRef acc, int64_t n) {
  LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc);
  vrun(cg, V_DOT, y, x, NULL, acc, n);
  return tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc, ""));
}

/* ---- RoPE of one dr-wide vector ---- */

static LLVMValueRef inv_freq_table(tfx_cg *cg, const tfx_node *n) {
  int64_t half = n->rope_dim / 2;
  char name[96];
  snprintf(name, sizeof name, "tfx_mla_inv_freq_%d_%a", n->rope_dim, n->theta);
  LLVMValueRef gv = LLVMGetNamedGlobal(cg->mod, name);
  if (gv) return gv;
  LLVMValueRef *vals = malloc((size_t)(half > 0 ? half : 1) * sizeof *vals);
  if (!vals) {
    tfx_cg_fail(cg, "backend: out of memory");
    return NULL;
  }
  for (int64_t k = 0; k < half; k++)
    vals[k] = LLVMConstReal(cg->t_f64, pow(n->theta, -2.0 * (double)k / (double)n->rope_dim));
  LLVMValueRef init = LLVMConstArray2(cg->t_f64, vals, (uint64_t)half);
  free(vals);
  gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  return gv;
}

/* dst[0..dr) = scale * rope(src[0..dr), position p (i64)); dst may not alias src. */
static void emit_rope(tfx_cg *cg, const tfx_node *n, LLVMValueRef table, LLVMValueRef src, LLVMValueRef dst,
                      LLVMValueRef p, double scale) {
  LLVMBuilderRef b = cg->b;
  int64_t dr = n->rope_dim, half = dr / 2;
  int inter = n->rope_style == TFX_ROPE_INTERLEAVED;
  LLVMValueRef pf = LLVMBuildSIToFP(b, p, cg->t_f64, "p");
  LLVMValueRef sc = LLVMConstReal(cg->t_f32, scale);
  tfx_cg_loop lk;
  tfx_cg_for(cg, &lk, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, half), 1, "rk");
  LLVMValueRef ix[2] = {tfx_cg_i64(cg, 0), lk.iv};
  LLVMValueRef fp = LLVMBuildInBoundsGEP2(b, LLVMGlobalGetValueType(table), table, ix, 2, "");
  LLVMValueRef ang = LLVMBuildFMul(b, pf, LLVMBuildLoad2(b, cg->t_f64, fp, ""), "angle");
  LLVMValueRef s, c;
  tfx_cg_sincos_f64(cg, ang, &s, &c);
  s = LLVMBuildFPTrunc(b, s, cg->t_f32, "");
  c = LLVMBuildFPTrunc(b, c, cg->t_f32, "");
  LLVMValueRef i0 = inter ? tfx_cg_mulc(cg, lk.iv, 2) : lk.iv;
  LLVMValueRef i1 = inter ? tfx_cg_addc(cg, i0, 1) : tfx_cg_addc(cg, lk.iv, half);
  LLVMValueRef x0 = tfx_cg_loadf(cg, tfx_cg_fptr(cg, src, i0)), x1 = tfx_cg_loadf(cg, tfx_cg_fptr(cg, src, i1));
  LLVMValueRef y0 = LLVMBuildFSub(b, LLVMBuildFMul(b, x0, c, ""), LLVMBuildFMul(b, x1, s, ""), "");
  LLVMValueRef y1 = LLVMBuildFAdd(b, LLVMBuildFMul(b, x0, s, ""), LLVMBuildFMul(b, x1, c, ""), "");
  tfx_cg_storef(cg, LLVMBuildFMul(b, y0, sc, ""), tfx_cg_fptr(cg, dst, i0));
  tfx_cg_storef(cg, LLVMBuildFMul(b, y1, sc, ""), tfx_cg_fptr(cg, dst, i1));
  tfx_cg_for_end(cg, &lk);
}

/* ---- the latent store ---- */

static int emit_store(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t r = n->rank, dr = n->rope_dim, cs = r + dr, max_seq = cg->g->max_seq;
  int norm = n->n_inputs == 4;
  char key[192];
  snprintf(key, sizeof key, "mla_store_r%lld_dr%lld_n%d_e%a_th%a_s%d_S%lld", (long long)r, (long long)dr, norm, n->eps,
           n->theta, (int)n->rope_style, (long long)max_seq);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pc = tfx_cg_body_ptr(cg, 0), pg = tfx_cg_body_ptr(cg, 1), cache = tfx_cg_body_ptr(cg, 2);
    LLVMValueRef acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
    LLVMValueRef table = dr > 0 ? inv_freq_table(cg, n) : NULL;
    if (dr > 0 && !table) return -1;
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef p = tfx_cg_add(cg, cg->pos, row.iv);
    tfx_cg_if fits;
    tfx_cg_if_begin(cg, &fits, LLVMBuildICmp(b, LLVMIntULT, p, tfx_cg_i64(cg, max_seq), ""), "fits");
    LLVMValueRef src = tfx_cg_fptr(cg, pc, tfx_cg_mulc(cg, row.iv, cs));
    LLVMValueRef dst = tfx_cg_fptr(cg, cache, tfx_cg_mulc(cg, p, cs));
    if (norm) {
      LLVMValueRef ss = vdot(cg, src, src, acc, r);
      LLVMValueRef ms = LLVMBuildFAdd(b, LLVMBuildFMul(b, ss, LLVMConstReal(cg->t_f32, 1.0 / (double)r), ""),
                                      LLVMConstReal(cg->t_f32, n->eps), "");
      LLVMValueRef inv = LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), tfx_cg_sqrt(cg, ms), "inv");
      vrun(cg, V_COPY_SCALED, dst, src, inv, NULL, r);
      vrun(cg, V_MUL, dst, pg, NULL, NULL, r); /* times the gain */
    } else {
      vrun(cg, V_COPY_SCALED, dst, src, LLVMConstReal(cg->t_f32, 1.0), NULL, r);
    }
    if (dr > 0) emit_rope(cg, n, table, tfx_cg_fptrc(cg, src, r), tfx_cg_fptrc(cg, dst, r), p, 1.0);
    tfx_cg_if_end(cg, &fits);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, "store", 1, 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[1]), norm ? TFX_CG_VAL(n->inputs[3]) : TFX_CG_NONE,
                                     TFX_CG_KVAT(n->kv_offset), TFX_CG_NONE});
  return 0;
}

/* ---- the attention ---- */

int tfx_cg_emit_mla(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, dn = n->head_dim, dr = n->rope_dim, dv = n->v_dim, r = n->rank;
  int64_t cs = r + dr, qs = H * (dn + dr), max_seq = cg->g->max_seq;
  if (emit_store(cg, n)) return -1;
  char key[256], opts[160];
  tfx_cg_attn_key(n, max_seq, opts, sizeof opts);
  snprintf(key, sizeof key, "mla_H%lld_dn%lld_dr%lld_dv%lld_r%lld_th%a_s%d_%s", (long long)H, (long long)dn,
           (long long)dr, (long long)dv, (long long)r, n->theta, (int)n->rope_style, opts);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), pw = tfx_cg_body_ptr(cg, 1), cache = tfx_cg_body_ptr(cg, 2);
    LLVMValueRef py = tfx_cg_body_ptr(cg, 3);
    LLVMValueRef qbuf = tfx_cg_alloca_array(cg, cg->t_f32, cs, "qbuf");
    LLVMValueRef ctx = tfx_cg_alloca_array(cg, cg->t_f32, r, "ctx");
    LLVMValueRef buf = tfx_cg_alloca_array(cg, cg->t_f32, MLA_KB, "scores");
    LLVMValueRef acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
    LLVMValueRef lsum_a = tfx_cg_alloca(cg, cg->t_vf, "lsum");
    LLVMValueRef m_a = tfx_cg_alloca(cg, cg->t_f32, "m"), l_a = tfx_cg_alloca(cg, cg->t_f32, "l");
    LLVMValueRef bmax_a = tfx_cg_alloca(cg, cg->t_f32, "bmax");
    LLVMValueRef table = dr > 0 ? inv_freq_table(cg, n) : NULL;
    if (dr > 0 && !table) return -1;
    double scale = 1.0 / sqrt((double)(dn + dr));
    LLVMValueRef ninf = LLVMConstReal(cg->t_f32, -INFINITY), fzero = LLVMConstReal(cg->t_f32, 0.0);

    tfx_cg_loop it;
    tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
    LLVMValueRef t = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, H), "t");
    LLVMValueRef h = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, H), "h");
    LLVMValueRef qi = tfx_cg_add(cg, cg->pos, t);
    LLVMValueRef qn = tfx_cg_fptr(cg, pq, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, dn + dr)));
    LLVMValueRef wuk = tfx_cg_fptr(cg, pw, tfx_cg_mulc(cg, h, (dn + dv) * r));
    LLVMValueRef wuv = tfx_cg_fptrc(cg, wuk, dn * r);
    /* qbuf[0..r) = scale * sum_e q_nope[e] * W_uk_h[e, :] */
    vrun(cg, V_ZERO, qbuf, NULL, NULL, NULL, r);
    tfx_cg_loop le;
    tfx_cg_for(cg, &le, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, dn), 1, "absorb");
    LLVMValueRef qe =
        LLVMBuildFMul(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, qn, le.iv)), LLVMConstReal(cg->t_f32, scale), "");
    vrun(cg, V_AXPY, qbuf, tfx_cg_fptr(cg, wuk, tfx_cg_mulc(cg, le.iv, r)), qe, NULL, r);
    tfx_cg_for_end(cg, &le);
    if (dr > 0) emit_rope(cg, n, table, tfx_cg_fptrc(cg, qn, dn), tfx_cg_fptrc(cg, qbuf, r), qi, scale);
    LLVMValueRef jlo, jhi;
    tfx_cg_attn_key_range(cg, n, qi, tfx_cg_addc(cg, qi, 1), &jlo, &jhi);
    LLVMValueRef slope = tfx_cg_attn_slope(cg, n, h);
    LLVMBuildStore(b, ninf, m_a);
    LLVMBuildStore(b, fzero, l_a);
    vrun(cg, V_ZERO, ctx, NULL, NULL, NULL, r);

    tfx_cg_loop blk;
    tfx_cg_for(cg, &blk, jlo, jhi, MLA_KB, "blk");
    LLVMValueRef jn = tfx_cg_smin(cg, tfx_cg_i64(cg, MLA_KB), tfx_cg_sub(cg, jhi, blk.iv));
    LLVMBuildStore(b, ninf, bmax_a);
    tfx_cg_loop lj;
    tfx_cg_for(cg, &lj, tfx_cg_i64(cg, 0), jn, 1, "key");
    LLVMValueRef j = tfx_cg_add(cg, blk.iv, lj.iv);
    LLVMValueRef s = vdot(cg, qbuf, tfx_cg_fptr(cg, cache, tfx_cg_mulc(cg, j, cs)), acc, cs);
    if (slope)
      s = LLVMBuildFSub(b, s, LLVMBuildFMul(b, slope, LLVMBuildSIToFP(b, tfx_cg_sub(cg, qi, j), cg->t_f32, ""), ""),
                        "alibi");
    LLVMValueRef allowed = tfx_cg_attn_allowed(cg, n, qi, j);
    if (allowed) s = LLVMBuildSelect(b, allowed, s, ninf, "masked");
    tfx_cg_storef(cg, s, tfx_cg_fptr(cg, buf, lj.iv));
    LLVMBuildStore(b, tfx_cg_fmax(cg, LLVMBuildLoad2(b, cg->t_f32, bmax_a, ""), s), bmax_a);
    tfx_cg_for_end(cg, &lj);
    LLVMValueRef m_old = LLVMBuildLoad2(b, cg->t_f32, m_a, "");
    LLVMValueRef m_new = tfx_cg_fmax(cg, m_old, LLVMBuildLoad2(b, cg->t_f32, bmax_a, ""));
    LLVMValueRef m_use = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, m_new, ninf, ""), fzero, m_new, "m_use");
    LLVMValueRef corr = tfx_cg_exp(cg, LLVMBuildFSub(b, m_old, m_use, ""));
    LLVMBuildStore(b, LLVMBuildFMul(b, LLVMBuildLoad2(b, cg->t_f32, l_a, ""), corr, ""), l_a);
    vrun(cg, V_SCALE, ctx, NULL, corr, NULL, r);
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
    /* ctx += p_j * c_j */
    tfx_cg_loop lo;
    tfx_cg_for(cg, &lo, tfx_cg_i64(cg, 0), jn, 1, "val");
    LLVMValueRef pj = tfx_cg_loadf(cg, tfx_cg_fptr(cg, buf, lo.iv));
    vrun(cg, V_AXPY, ctx, tfx_cg_fptr(cg, cache, tfx_cg_mulc(cg, tfx_cg_add(cg, blk.iv, lo.iv), cs)), pj, NULL, r);
    tfx_cg_for_end(cg, &lo);
    LLVMBuildStore(b, m_new, m_a);
    tfx_cg_for_end(cg, &blk);

    /* y_h[e] = W_uv_h[e] . ctx / l (zeros when no key was allowed) */
    LLVMValueRef l = LLVMBuildLoad2(b, cg->t_f32, l_a, "");
    LLVMValueRef any = LLVMBuildFCmp(b, LLVMRealOGT, l, fzero, "any");
    LLVMValueRef inv = LLVMBuildSelect(b, any, LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), l, ""), fzero, "inv");
    LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_add(cg, tfx_cg_mulc(cg, t, H * dv), tfx_cg_mulc(cg, h, dv)));
    tfx_cg_loop lout;
    tfx_cg_for(cg, &lout, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, dv), 1, "out");
    LLVMValueRef o = vdot(cg, tfx_cg_fptr(cg, wuv, tfx_cg_mulc(cg, lout.iv, r)), ctx, acc, r);
    tfx_cg_storef(cg, LLVMBuildFMul(b, o, inv, ""), tfx_cg_fptr(cg, yrow, lout.iv));
    tfx_cg_for_end(cg, &lout);
    tfx_cg_for_end(cg, &it);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, H, 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->inputs[2]), TFX_CG_KVAT(n->kv_offset),
                                     TFX_CG_VAL(n->id)});
  return 0;
}
