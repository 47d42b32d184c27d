/* backend/k_attn_softmax.c — the online softmax every attention schedule
 * shares (ATTENTION's row and flash bodies, MLA): the running max m, the
 * running sum l and the rescaling of the output accumulator, for one query
 * (f32 state, the row schedules) or W queries lane-wise (<W x float>, the
 * flash tiles); and the row schedules' key walk built on it (blocks of
 * scores in a stack buffer, ALiBi, T5's relative bias and the sparse mask, the exponentials in
 * vectors), used by k_attention.c's row body and k_mla.c. A gathered walk
 * (a dilated pattern) visits the keys of the query's residue class only,
 * kres + m * kstride for m of its range, with no mask (the range is exact).
 *
 * One step over a block of keys whose scores s_j (masked keys -inf) have the
 * maximum bmax:
 *   m_new = max(m, bmax); m_use = m_new, or 0 while every key so far is
 *   masked (so no exponent is -inf - -inf = NaN); corr = e^(m - m_use);
 *   l = l * corr + sum_j p_j with p_j = e^(s_j - m_use);
 *   o = o * corr + sum_j p_j v_j; m = m_new.
 * A query with no allowed key ends with l = 0 and writes zeros. */
#include <math.h>

#include "cg.h"

void tfx_cg_osm_init(tfx_cg *cg, tfx_cg_osm *s, LLVMTypeRef ty) {
  s->ty = ty;
  s->m = tfx_cg_alloca(cg, ty, "m");
  s->l = tfx_cg_alloca(cg, ty, "l");
}

void tfx_cg_osm_reset(tfx_cg *cg, const tfx_cg_osm *s) {
  LLVMBuildStore(cg->b, tfx_cg_fconst(cg, s->ty, -INFINITY), s->m);
  LLVMBuildStore(cg->b, LLVMConstNull(s->ty), s->l);
}

void tfx_cg_osm_step(tfx_cg *cg, const tfx_cg_osm *s, const tfx_cg_osm_block *blk) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef ninf = tfx_cg_fconst(cg, s->ty, -INFINITY), zero = LLVMConstNull(s->ty);
  LLVMValueRef m_old = LLVMBuildLoad2(b, s->ty, s->m, "");
  LLVMValueRef m_new = tfx_cg_fmax(cg, m_old, blk->bmax);
  LLVMValueRef m_use = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, m_new, ninf, ""), zero, m_new, "m_use");
  LLVMValueRef corr = tfx_cg_exp(cg, LLVMBuildFSub(b, m_old, m_use, ""));
  LLVMValueRef lsum = LLVMBuildFMul(b, LLVMBuildLoad2(b, s->ty, s->l, ""), corr, "");
  if (blk->rescale) blk->rescale(cg, blk->ctx, corr);
  LLVMBuildStore(b, blk->probs(cg, blk->ctx, m_use, lsum), s->l);
  blk->accumulate(cg, blk->ctx, corr);
  LLVMBuildStore(b, m_new, s->m);
}

LLVMValueRef tfx_cg_osm_denominator(tfx_cg *cg, const tfx_cg_osm *s, LLVMValueRef *any) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef l = LLVMBuildLoad2(b, s->ty, s->l, "");
  *any = LLVMBuildFCmp(b, LLVMRealOGT, l, LLVMConstNull(s->ty), "any");
  return LLVMBuildSelect(b, *any, l, tfx_cg_fconst(cg, s->ty, 1.0), "");
}

/* ---- the row schedules' key walk ---- */

void tfx_cg_attn_row_init(tfx_cg *cg, tfx_cg_attn_row *r, int64_t kb) {
  tfx_cg_osm_init(cg, &r->sm, cg->t_f32);
  r->kb = kb;
  r->bmax = tfx_cg_alloca(cg, cg->t_f32, "bmax");
  r->lsum = tfx_cg_alloca(cg, cg->t_vf, "lsum");
  r->buf = tfx_cg_alloca_array(cg, cg->t_f32, kb, "scores");
}

typedef struct {
  const tfx_cg_attn_row *r;
  LLVMValueRef blk, jn; /* the block's first key and its key count */
} row_step;

/* p = e^(s - m_use) in vectors over the buffer (lanes past jn zero), summed onto lsum */
static LLVMValueRef row_probs(tfx_cg *cg, void *vctx, LLVMValueRef m_use, LLVMValueRef lsum0) {
  row_step *st = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef m_use_v = tfx_cg_splat(cg, m_use);
  LLVMBuildStore(b, LLVMConstNull(cg->t_vf), st->r->lsum);
  tfx_cg_loop lv;
  tfx_cg_for(cg, &lv, tfx_cg_i64(cg, 0), st->jn, cg->W, "pexp");
  LLVMValueRef sp = tfx_cg_fptr(cg, st->r->buf, lv.iv);
  LLVMValueRef p = tfx_cg_exp(cg, LLVMBuildFSub(b, tfx_cg_vload(cg, sp, cg->W), m_use_v, ""));
  p = LLVMBuildSelect(b, tfx_cg_mask_dyn(cg, tfx_cg_sub(cg, st->jn, lv.iv)), p, LLVMConstNull(cg->t_vf), "");
  tfx_cg_vstore(cg, p, sp, cg->W);
  LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->t_vf, st->r->lsum, ""), p, ""), st->r->lsum);
  tfx_cg_for_end(cg, &lv);
  return LLVMBuildFAdd(b, lsum0, tfx_cg_hsum(cg, LLVMBuildLoad2(b, cg->t_vf, st->r->lsum, "")), "");
}

static void row_rescale(tfx_cg *cg, void *vctx, LLVMValueRef corr) {
  row_step *st = vctx;
  st->r->rescale(cg, st->r->ctx, corr);
}

/* the key position of walk index j */
static LLVMValueRef walk_key(tfx_cg *cg, const tfx_cg_attn_row *r, LLVMValueRef j) {
  return r->kstride > 1 ? tfx_cg_add(cg, r->kres, tfx_cg_mulc(cg, j, r->kstride)) : j;
}

/* o += p_j v_j for the block's keys */
static void row_accumulate(tfx_cg *cg, void *vctx, LLVMValueRef corr) {
  (void)corr;
  row_step *st = vctx;
  tfx_cg_loop lo;
  tfx_cg_for(cg, &lo, tfx_cg_i64(cg, 0), st->jn, 1, "val");
  LLVMValueRef pj = tfx_cg_loadf(cg, tfx_cg_fptr(cg, st->r->buf, lo.iv));
  st->r->accumulate(cg, st->r->ctx, walk_key(cg, st->r, tfx_cg_add(cg, st->blk, lo.iv)), pj);
  tfx_cg_for_end(cg, &lo);
}

void tfx_cg_attn_row_walk(tfx_cg *cg, const tfx_cg_attn_row *r, LLVMValueRef qi, LLVMValueRef jlo, LLVMValueRef jhi,
                          LLVMValueRef slope) {
  tfx_cg_osm_reset(cg, &r->sm);
  tfx_cg_attn_row_walk_more(cg, r, qi, jlo, jhi, slope);
}

void tfx_cg_attn_row_walk_more(tfx_cg *cg, const tfx_cg_attn_row *r, LLVMValueRef qi, LLVMValueRef jlo,
                               LLVMValueRef jhi, LLVMValueRef slope) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef ninf = LLVMConstReal(cg->t_f32, -INFINITY);
  tfx_cg_loop blk;
  tfx_cg_for(cg, &blk, jlo, jhi, r->kb, "blk");
  LLVMValueRef jn = tfx_cg_smin(cg, tfx_cg_i64(cg, r->kb), tfx_cg_sub(cg, jhi, blk.iv));
  /* the block's scores and their max */
  LLVMBuildStore(b, ninf, r->bmax);
  tfx_cg_loop lj;
  tfx_cg_for(cg, &lj, tfx_cg_i64(cg, 0), jn, 1, "key");
  LLVMValueRef j = walk_key(cg, r, tfx_cg_add(cg, blk.iv, lj.iv));
  LLVMValueRef s = r->kstride > 1 ? tfx_cg_attn_alibi(cg, r->n, r->score(cg, r->ctx, j), qi, j, slope) /* gathered */
                                  : tfx_cg_attn_score_adjust(cg, r->n, r->score(cg, r->ctx, j), qi, j, slope);
  if (r->relb) { /* + table[bucket(j - i), h] */
    LLVMValueRef ix[2] = {tfx_cg_i64(cg, 0), tfx_cg_addc(cg, tfx_cg_sub(cg, j, qi), r->rel_span - 1)};
    LLVMValueRef bp = LLVMBuildInBoundsGEP2(b, LLVMGlobalGetValueType(r->buckets), r->buckets, ix, 2, "");
    LLVMValueRef bk = LLVMBuildSExt(b, LLVMBuildLoad2(b, cg->t_i32, bp, "bucket"), cg->t_i64, "");
    s = LLVMBuildFAdd(b, s, tfx_cg_loadf(cg, tfx_cg_fptr(cg, r->relb, tfx_cg_mulc(cg, bk, r->rel_stride))), "relb");
  }
  if (r->kmask) { /* a key whose mask value is 0 is dropped */
    LLVMValueRef keep;
    if (r->kmask_i32) {
      LLVMValueRef mp = LLVMBuildInBoundsGEP2(b, cg->t_i32, r->kmask, &j, 1, "");
      keep =
          LLVMBuildICmp(b, LLVMIntNE, LLVMBuildLoad2(b, cg->t_i32, mp, "keymask"), LLVMConstInt(cg->t_i32, 0, 0), "");
    } else {
      keep = LLVMBuildFCmp(b, LLVMRealUNE, tfx_cg_loadf(cg, tfx_cg_fptr(cg, r->kmask, j)),
                           LLVMConstReal(cg->t_f32, 0.0), "");
    }
    s = LLVMBuildSelect(b, keep, s, ninf, "masked");
  }
  tfx_cg_storef(cg, s, tfx_cg_fptr(cg, r->buf, lj.iv));
  LLVMBuildStore(b, tfx_cg_fmax(cg, LLVMBuildLoad2(b, cg->t_f32, r->bmax, ""), s), r->bmax);
  tfx_cg_for_end(cg, &lj);
  row_step st = {r, blk.iv, jn};
  tfx_cg_osm_block ob = {LLVMBuildLoad2(b, cg->t_f32, r->bmax, ""), row_probs, r->rescale ? row_rescale : NULL,
                         row_accumulate, &st};
  tfx_cg_osm_step(cg, &r->sm, &ob);
  tfx_cg_for_end(cg, &blk);
}

/* the keys c + m * gather of [jlo, jhi), c = qi mod gather: m in [ceil((jlo - c) / gather), ceil((jhi - c) /
 * gather)) (jlo >= 0, jhi >= 1 and c < gather keep both numerators >= 0) */
void tfx_cg_attn_row_gather(tfx_cg *cg, tfx_cg_attn_row *r, int64_t gather, LLVMValueRef qi, LLVMValueRef *jlo,
                            LLVMValueRef *jhi) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef kK = tfx_cg_i64(cg, gather);
  r->kstride = gather;
  r->kres = LLVMBuildURem(b, qi, kK, "gather_res");
  *jlo = LLVMBuildUDiv(b, tfx_cg_sub(cg, tfx_cg_addc(cg, *jlo, gather - 1), r->kres), kK, "");
  *jhi = LLVMBuildUDiv(b, tfx_cg_sub(cg, tfx_cg_addc(cg, *jhi, gather - 1), r->kres), kK, "");
}
