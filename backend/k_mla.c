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
 *    0..p (narrowed by sliding patterns) are walked in blocks of KB by the
 *    row schedules' key walk and online softmax of k_attn_softmax.c (ALiBi,
 *    sparse masks, -inf-safe, zeros for a row without keys), accumulating
 *    ctx = sum_j p_j c_j (r floats); finally y_h[e] = W_uv_h[e] . ctx / l.
 *    MLA has one schedule, ROW (tfx_attn_sched); with a sparse pattern whose
 *    key range is not exact already (every one but sliding) its rows walk
 *    only the key groups the block-sparse table (k_block_sparse.c, ir/'s
 *    block rule) keeps for the query's tile, in prefill and decode alike: an
 *    empty group is never visited; a dilated pattern (k >= 2, ir/'s
 *    tfx_attn_gather) walks the keys of the query's residue class instead,
 *    p mod k, ..., p - k, p, with a stride of k and no mask. */
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
  LLVMValueRef y, x;        /* y: destination / first operand; x: second operand */
  LLVMValueRef a;           /* splat scalar */
  LLVMValueRef acc;         /* V_DOT: alloca of a vector accumulator */
  const tfx_cg_wstream *ws; /* V_AXPY, V_DOT: x is the weight row w read through ws (else NULL) */
  tfx_cg_wrow w;
} vop;

/* The x operand's vector at col: x, or the weight row. */
static LLVMValueRef vop_x(tfx_cg *cg, const vop *o, LLVMValueRef col, int nvalid) {
  if (o->ws) return tfx_cg_ws_row_vec(cg, o->ws, &o->w, col, nvalid);
  return tfx_cg_vload(cg, tfx_cg_fptr(cg, o->x, col), nvalid);
}

static void vop_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  vop *o = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef yp = tfx_cg_fptr(cg, o->y, col);
  switch (o->op) {
  case V_ZERO: tfx_cg_vstore(cg, LLVMConstNull(cg->t_vf), yp, nvalid); return;
  case V_AXPY: {
    LLVMValueRef x = vop_x(cg, o, col, nvalid);
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
    LLVMValueRef x = vop_x(cg, o, col, nvalid);
    LLVMValueRef acc = LLVMBuildLoad2(b, cg->t_vf, o->acc, "");
    LLVMValueRef yv = tfx_cg_vload(cg, yp, nvalid); /* a weight row is the first factor */
    LLVMBuildStore(b, o->ws ? tfx_cg_fma(cg, x, yv, acc) : tfx_cg_fma(cg, yv, x, acc), o->acc);
    return;
  }
  }
}

static void vrun(tfx_cg *cg, vop_kind op, LLVMValueRef y, LLVMValueRef x, LLVMValueRef a_scalar, LLVMValueRef acc,
                 int64_t n) {
  vop o = {op, y, x, a_scalar ? tfx_cg_splat(cg, a_scalar) : NULL, acc, NULL, {0}};
  tfx_cg_chunks(cg, n, vop_chunk, &o);
}

/* V_AXPY (acc NULL) or V_DOT (returns the sum) with x a weight row. */
static LLVMValueRef vrun_w(tfx_cg *cg, vop_kind op, LLVMValueRef y, const tfx_cg_wstream *ws, tfx_cg_wrow w,
                           LLVMValueRef a_scalar, LLVMValueRef acc, int64_t n) {
  vop o = {op, y, NULL, a_scalar ? tfx_cg_splat(cg, a_scalar) : NULL, acc, ws, w};
  if (acc) LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc);
  tfx_cg_chunks(cg, n, vop_chunk, &o);
  return acc ? tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc, "")) : NULL;
}

/* sum y[0..n) * x[0..n) */
static LLVMValueRef vdot(tfx_cg *cg, LLVMValueRef y, LLVMValueRef x, LLVMValueRef acc, int64_t n) {
  LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc);
  vrun(cg, V_DOT, y, x, NULL, acc, n);
  return tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc, ""));
}

/* ---- RoPE of one dr-wide vector ---- */

typedef struct {
  LLVMValueRef src, dst, scale;
  int64_t half;
  int inter;
} mla_rope;

/* Pair k of the vector: (2k, 2k+1) or (k, k + dr/2), rotated and scaled. */
static void rope_pair(tfx_cg *cg, void *vctx, LLVMValueRef k, LLVMValueRef s, LLVMValueRef c) {
  mla_rope *r = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef i0 = r->inter ? tfx_cg_mulc(cg, k, 2) : k;
  LLVMValueRef i1 = r->inter ? tfx_cg_addc(cg, i0, 1) : tfx_cg_addc(cg, k, r->half);
  LLVMValueRef x0 = tfx_cg_loadf(cg, tfx_cg_fptr(cg, r->src, i0)), x1 = tfx_cg_loadf(cg, tfx_cg_fptr(cg, r->src, i1));
  LLVMValueRef y0 = LLVMBuildFSub(b, LLVMBuildFMul(b, x0, c, ""), LLVMBuildFMul(b, x1, s, ""), "");
  LLVMValueRef y1 = LLVMBuildFAdd(b, LLVMBuildFMul(b, x0, s, ""), LLVMBuildFMul(b, x1, c, ""), "");
  tfx_cg_storef(cg, LLVMBuildFMul(b, y0, r->scale, ""), tfx_cg_fptr(cg, r->dst, i0));
  tfx_cg_storef(cg, LLVMBuildFMul(b, y1, r->scale, ""), tfx_cg_fptr(cg, r->dst, i1));
}

/* dst[0..dr) = scale * rope(src[0..dr), position p (i64)); dst may not alias
 * src. table: tfx_cg_rope_table of the node. */
static void emit_rope(tfx_cg *cg, const tfx_node *n, LLVMValueRef table, LLVMValueRef src, LLVMValueRef dst,
                      LLVMValueRef p, double scale) {
  mla_rope r = {src, dst, LLVMConstReal(cg->t_f32, scale), n->rope_dim / 2, n->rope_style == TFX_ROPE_INTERLEAVED};
  LLVMValueRef pf = LLVMBuildSIToFP(cg->b, p, cg->t_f64, "p");
  tfx_cg_rope_pairs(cg, table, pf, r.half, rope_pair, &r);
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
    LLVMValueRef table = dr > 0 ? tfx_cg_rope_table(cg, n->theta, dr) : NULL;
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

typedef struct {
  int64_t r, cs;
  LLVMValueRef qbuf, ctx, cache, acc;
} mla_row;

/* q . [c_j | kr_j], the query folded into latent space and scaled */
static LLVMValueRef mla_score(tfx_cg *cg, void *vctx, LLVMValueRef j) {
  mla_row *m = vctx;
  return vdot(cg, m->qbuf, tfx_cg_fptr(cg, m->cache, tfx_cg_mulc(cg, j, m->cs)), m->acc, m->cs);
}

static void mla_rescale(tfx_cg *cg, void *vctx, LLVMValueRef corr) {
  mla_row *m = vctx;
  vrun(cg, V_SCALE, m->ctx, NULL, corr, NULL, m->r);
}

/* ctx += p_j * c_j */
static void mla_accumulate(tfx_cg *cg, void *vctx, LLVMValueRef j, LLVMValueRef pj) {
  mla_row *m = vctx;
  vrun(cg, V_AXPY, m->ctx, tfx_cg_fptr(cg, m->cache, tfx_cg_mulc(cg, j, m->cs)), pj, NULL, m->r);
}

int tfx_cg_emit_mla(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, dn = n->head_dim, dr = n->rope_dim, dv = n->v_dim, r = n->rank;
  int64_t cs = r + dr, qs = H * (dn + dr), max_seq = cg->g->max_seq;
  if (tfx_attn_schedule_of(cg->g, n, cg->decode) != TFX_ATTN_SCHED_ROW)
    return tfx_cg_fail(cg, "backend: %%%d (mla_attention): only the row schedule is available", n->id);
  if (emit_store(cg, n)) return -1;
  char key[256], opts[160];
  tfx_cg_attn_key(n, max_seq, opts, sizeof opts);
  snprintf(key, sizeof key, "mla_H%lld_dn%lld_dr%lld_dv%lld_r%lld_th%a_s%d_%s%s", (long long)H, (long long)dn,
           (long long)dr, (long long)dv, (long long)r, n->theta, (int)n->rope_style, opts,
           tfx_cg_ws_key(&cg->g->nodes[n->inputs[2]]));
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), pw = tfx_cg_body_ptr(cg, 1), cache = tfx_cg_body_ptr(cg, 2);
    LLVMValueRef py = tfx_cg_body_ptr(cg, 3);
    tfx_cg_wstream ws; /* wkv_b: the absorbed projections W_uk, W_uv */
    tfx_cg_ws_init(cg, &ws, &cg->g->nodes[n->inputs[2]], pw);
    LLVMValueRef qbuf = tfx_cg_alloca_array(cg, cg->t_f32, cs, "qbuf");
    LLVMValueRef ctx = tfx_cg_alloca_array(cg, cg->t_f32, r, "ctx");
    LLVMValueRef acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
    mla_row mr = {r, cs, qbuf, ctx, cache, acc};
    tfx_cg_attn_row walk = {
        .n = n, .score = mla_score, .rescale = mla_rescale, .accumulate = mla_accumulate, .ctx = &mr};
    tfx_cg_attn_row_init(cg, &walk, MLA_KB);
    LLVMValueRef table = dr > 0 ? tfx_cg_rope_table(cg, n->theta, dr) : NULL;
    if (dr > 0 && !table) return -1;
    /* a pattern the key range does not make exact: the block-sparse table's runs */
    tfx_cg_bs_table bs;
    tfx_node sub;
    int64_t gather = tfx_attn_gather(n, &sub); /* dilated: the query's residue class only, no table */
    int bs_rows = n->sparse.kind != TFX_SPARSE_NONE && n->sparse.kind != TFX_SPARSE_SLIDING && gather < 2;
    if (bs_rows && tfx_cg_bs_table_get(cg, n, TFX_DIM_T, TFX_DIM_T, &bs)) return -1;
    double scale = 1.0 / sqrt((double)(dn + dr));
    LLVMValueRef fzero = LLVMConstReal(cg->t_f32, 0.0);

    tfx_cg_loop it;
    tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
    LLVMValueRef t = LLVMBuildUDiv(b, it.iv, tfx_cg_i64(cg, H), "t");
    LLVMValueRef h = LLVMBuildURem(b, it.iv, tfx_cg_i64(cg, H), "h");
    LLVMValueRef qi = tfx_cg_add(cg, cg->pos, t);
    LLVMValueRef qn = tfx_cg_fptr(cg, pq, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, dn + dr)));
    tfx_cg_wrow wuk = tfx_cg_ws_row(cg, &ws, tfx_cg_mulc(cg, h, dn + dv)); /* W_uk_h's first row */
    tfx_cg_wrow wuv = tfx_cg_ws_row_next(cg, &ws, &wuk, dn);
    /* qbuf[0..r) = scale * sum_e q_nope[e] * W_uk_h[e, :] */
    vrun(cg, V_ZERO, qbuf, NULL, NULL, NULL, r);
    tfx_cg_loop le;
    tfx_cg_for(cg, &le, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, dn), 1, "absorb");
    LLVMValueRef qe =
        LLVMBuildFMul(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, qn, le.iv)), LLVMConstReal(cg->t_f32, scale), "");
    vrun_w(cg, V_AXPY, qbuf, &ws, tfx_cg_ws_row_nextv(cg, &ws, &wuk, le.iv), qe, NULL, r);
    tfx_cg_for_end(cg, &le);
    if (dr > 0) emit_rope(cg, n, table, tfx_cg_fptrc(cg, qn, dn), tfx_cg_fptrc(cg, qbuf, r), qi, scale);
    LLVMValueRef jlo, jhi;
    tfx_cg_attn_key_range(cg, n, qi, tfx_cg_addc(cg, qi, 1), &jlo, &jhi);
    if (gather >= 2) tfx_cg_attn_row_gather(cg, &walk, gather, qi, &jlo, &jhi); /* the query's residue class */
    LLVMValueRef slope = tfx_cg_attn_slope(cg, n, h);
    vrun(cg, V_ZERO, ctx, NULL, NULL, NULL, r);
    if (bs_rows) /* only the runs of key groups the table keeps for the query's tile */
      tfx_cg_bs_row_walk(cg, &bs, &walk, qi, jlo, jhi, slope);
    else
      tfx_cg_attn_row_walk(cg, &walk, qi, jlo, jhi, slope);

    /* y_h[e] = W_uv_h[e] . ctx / l (zeros when no key was allowed) */
    LLVMValueRef any;
    LLVMValueRef l = tfx_cg_osm_denominator(cg, &walk.sm, &any);
    LLVMValueRef inv = LLVMBuildSelect(b, any, LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), l, ""), fzero, "inv");
    LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_add(cg, tfx_cg_mulc(cg, t, H * dv), tfx_cg_mulc(cg, h, dv)));
    tfx_cg_loop lout;
    tfx_cg_for(cg, &lout, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, dv), 1, "out");
    LLVMValueRef o = vrun_w(cg, V_DOT, ctx, &ws, tfx_cg_ws_row_nextv(cg, &ws, &wuv, lout.iv), NULL, acc, r);
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
