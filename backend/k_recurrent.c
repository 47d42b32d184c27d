/* backend/k_recurrent.c — kernels of the ops that keep a recurrent state in
 * the session's KV storage instead of a KV cache (ir/recurrent.c has their
 * semantics and the reference), and RetNet's per-head GROUPNORM.
 *  - RETENTION (items: heads h): the chunkwise form of RetNet. The T rows of
 *    the call are cut into chunks of RET_CHUNK rows; inside a chunk the
 *    parallel form (Q K^T ⊙ D) V with D_ij = gamma^(i-j), i >= j, plus the
 *    state's contribution gamma^(i+1) q_i S; after the chunk S = gamma^L S +
 *    sum_j gamma^(L-1-j) k_j^T v_j. A prompt of at most RET_CHUNK rows is the
 *    parallel form, a decode step (T = 1) the recurrent form
 *    S = gamma S + k^T v, o = q S. The powers of gamma are a compile-time
 *    table per head (RetNet's gamma_h = 1 - 2^(-5-h)), or, with gamma = g
 *    given (a 4th operand f32[H]), computed per head at the kernel's start
 *    in double; q is scaled by 1/sqrt(dk) on the stack. A call at
 *    position 0 starts from S = 0 (a reset session).
 *  - INFINI_ATTENTION (items: heads h): per row, at a segment's start the
 *    previous segment's cached K, V go into the memory (M += sig(K)^T V,
 *    z += sum sig(K), sig = elu + 1); the row's k, v go to its slot of the
 *    segment cache; the local causal softmax attention over the segment's
 *    keys (two passes: max, then weights) and the memory read
 *    sig(q) M / (sig(q) . z) are mixed by sigmoid(beta_h).
 *  - GROUPNORM (items: rows): tfx_cg_norm_row (k_norm.c) on each group. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg.h"

#define RET_CHUNK 64 /* rows of the parallel form inside one chunk */

/* ---- vector helpers over n floats (chunks of W with a masked tail) ---- */

typedef enum { V_ZERO, V_AXPY, V_SCALE, V_DOT, V_COPY } vop_kind;
typedef struct {
  vop_kind op;
  LLVMValueRef y, x, a, acc;
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
  case V_COPY: {
    LLVMValueRef x = tfx_cg_vload(cg, tfx_cg_fptr(cg, o->x, col), nvalid);
    tfx_cg_vstore(cg, o->a ? LLVMBuildFMul(b, x, o->a, "") : x, yp, nvalid);
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

static void vrun(tfx_cg *cg, vop_kind op, LLVMValueRef y, LLVMValueRef x, LLVMValueRef a_scalar, int64_t n) {
  vop o = {op, y, x, a_scalar ? tfx_cg_splat(cg, a_scalar) : NULL, NULL};
  tfx_cg_chunks(cg, n, vop_chunk, &o);
}

/* sum y[0..n) * x[0..n) */
static LLVMValueRef vdot(tfx_cg *cg, LLVMValueRef y, LLVMValueRef x, LLVMValueRef acc, int64_t n) {
  LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc);
  vop o = {V_DOT, y, x, NULL, acc};
  tfx_cg_chunks(cg, n, vop_chunk, &o);
  return tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc, ""));
}

static LLVMValueRef fk(tfx_cg *cg, double v) { return LLVMConstReal(cg->t_f32, v); }

/* ---- RETENTION ---- */

/* gamma_h^i for h < H, i <= RET_CHUNK: a constant [H][RET_CHUNK + 1] f32 array */
static LLVMValueRef gamma_table(tfx_cg *cg, int64_t H) {
  int64_t per = RET_CHUNK + 1;
  LLVMValueRef *vals = malloc((size_t)(H * per) * sizeof *vals);
  if (!vals) {
    tfx_cg_fail(cg, "backend: out of memory");
    return NULL;
  }
  for (int64_t h = 0; h < H; h++) {
    double g = tfx_retention_gamma((int)h), p = 1.0;
    for (int64_t i = 0; i < per; i++, p *= g) vals[h * per + i] = LLVMConstReal(cg->t_f32, p);
  }
  LLVMValueRef init = LLVMConstArray2(cg->t_f32, vals, (uint64_t)(H * per));
  free(vals);
  char name[64];
  snprintf(name, sizeof name, "tfx_retention_gamma_%lld_%d", (long long)H, RET_CHUNK);
  return tfx_cg_const_global(cg, name, init, 0);
}

/* gamma = g (RETENTION's 4th operand): head h's powers g[h]^i, i <= RET_CHUNK,
 * computed in double (as the constant table) into the f32 array tab */
static void gamma_powers(tfx_cg *cg, LLVMValueRef tab, LLVMValueRef pg, LLVMValueRef h) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef g = LLVMBuildFPExt(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, pg, h)), cg->t_f64, "gamma");
  LLVMValueRef p = tfx_cg_alloca(cg, cg->t_f64, "gpow");
  LLVMBuildStore(b, LLVMConstReal(cg->t_f64, 1.0), p);
  tfx_cg_loop l;
  tfx_cg_for(cg, &l, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, RET_CHUNK + 1), 1, "pow");
  LLVMValueRef pv = LLVMBuildLoad2(b, cg->t_f64, p, "");
  tfx_cg_storef(cg, LLVMBuildFPTrunc(b, pv, cg->t_f32, ""), tfx_cg_fptr(cg, tab, l.iv));
  LLVMBuildStore(b, LLVMBuildFMul(b, pv, g, ""), p);
  tfx_cg_for_end(cg, &l);
}

/* gp[i] as f32 (gp: the head's row of the table, i: i64) */
static LLVMValueRef gpow(tfx_cg *cg, LLVMValueRef gp, LLVMValueRef i) {
  return tfx_cg_loadf(cg, tfx_cg_fptr(cg, gp, i));
}

int tfx_cg_emit_retention(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, dk = n->head_dim, dv = n->v_dim, qs = H * dk, vs = H * dv;
  if (n->kv_offset < 0) return tfx_cg_fail(cg, "backend: %%%d (retention) has no state slot", n->id);
  int given = n->n_inputs == 4; /* gamma = g: the powers per head at run time */
  char key[128];
  snprintf(key, sizeof key, "retention_H%lld_dk%lld_dv%lld_B%d%s", (long long)H, (long long)dk, (long long)dv,
           RET_CHUNK, given ? "_g" : "");
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), pk = tfx_cg_body_ptr(cg, 1), pv = tfx_cg_body_ptr(cg, 2);
    LLVMValueRef state = tfx_cg_body_ptr(cg, 3), py = tfx_cg_body_ptr(cg, 4);
    LLVMValueRef table = given ? tfx_cg_alloca_array(cg, cg->t_f32, RET_CHUNK + 1, "gpow") : gamma_table(cg, H);
    if (!table) return -1;
    LLVMValueRef qbuf = tfx_cg_alloca_array(cg, cg->t_f32, dk, "qbuf");
    LLVMValueRef acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
    LLVMValueRef zero = tfx_cg_i64(cg, 0);

    tfx_cg_loop hl;
    tfx_cg_for(cg, &hl, cg->kbegin, cg->kend, 1, "head");
    LLVMValueRef h = hl.iv;
    LLVMValueRef S = tfx_cg_fptr(cg, state, tfx_cg_mulc(cg, h, dk * dv));
    LLVMValueRef gp = table;
    if (given)
      gamma_powers(cg, table, tfx_cg_body_ptr(cg, 5), h);
    else
      gp = tfx_cg_fptr(cg, table, tfx_cg_mulc(cg, h, RET_CHUNK + 1));
    tfx_cg_if first;
    tfx_cg_if_begin(cg, &first, LLVMBuildICmp(b, LLVMIntEQ, cg->pos, zero, ""), "fresh");
    vrun(cg, V_ZERO, S, NULL, NULL, dk * dv);
    tfx_cg_if_end(cg, &first);

    tfx_cg_loop cl;
    tfx_cg_for(cg, &cl, zero, cg->T, RET_CHUNK, "chunk");
    LLVMValueRef c0 = cl.iv;
    LLVMValueRef len = tfx_cg_smin(cg, tfx_cg_sub(cg, cg->T, c0), tfx_cg_i64(cg, RET_CHUNK));
    /* the rows of the chunk: the state's part, then the parallel form */
    tfx_cg_loop il;
    tfx_cg_for(cg, &il, zero, len, 1, "row");
    LLVMValueRef t = tfx_cg_add(cg, c0, il.iv);
    LLVMValueRef qrow = tfx_cg_fptr(cg, pq, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, dk)));
    LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_add(cg, tfx_cg_mulc(cg, t, vs), tfx_cg_mulc(cg, h, dv)));
    vrun(cg, V_COPY, qbuf, qrow, fk(cg, 1.0 / sqrt((double)dk)), dk);
    vrun(cg, V_ZERO, yrow, NULL, NULL, dv);
    tfx_cg_loop el;
    tfx_cg_for(cg, &el, zero, tfx_cg_i64(cg, dk), 1, "e");
    vrun(cg, V_AXPY, yrow, tfx_cg_fptr(cg, S, tfx_cg_mulc(cg, el.iv, dv)),
         tfx_cg_loadf(cg, tfx_cg_fptr(cg, qbuf, el.iv)), dv);
    tfx_cg_for_end(cg, &el);
    vrun(cg, V_SCALE, yrow, NULL, gpow(cg, gp, tfx_cg_addc(cg, il.iv, 1)), dv);
    tfx_cg_loop jl;
    tfx_cg_for(cg, &jl, zero, tfx_cg_addc(cg, il.iv, 1), 1, "key");
    LLVMValueRef tj = tfx_cg_add(cg, c0, jl.iv);
    LLVMValueRef krow = tfx_cg_fptr(cg, pk, tfx_cg_add(cg, tfx_cg_mulc(cg, tj, qs), tfx_cg_mulc(cg, h, dk)));
    LLVMValueRef vrow = tfx_cg_fptr(cg, pv, tfx_cg_add(cg, tfx_cg_mulc(cg, tj, vs), tfx_cg_mulc(cg, h, dv)));
    LLVMValueRef w = LLVMBuildFMul(b, vdot(cg, qbuf, krow, acc, dk), gpow(cg, gp, tfx_cg_sub(cg, il.iv, jl.iv)), "w");
    vrun(cg, V_AXPY, yrow, vrow, w, dv);
    tfx_cg_for_end(cg, &jl);
    tfx_cg_for_end(cg, &il);
    /* the state after the chunk */
    vrun(cg, V_SCALE, S, NULL, gpow(cg, gp, len), dk * dv);
    tfx_cg_loop sl;
    tfx_cg_for(cg, &sl, zero, len, 1, "fold");
    LLVMValueRef ts = tfx_cg_add(cg, c0, sl.iv);
    LLVMValueRef ks = tfx_cg_fptr(cg, pk, tfx_cg_add(cg, tfx_cg_mulc(cg, ts, qs), tfx_cg_mulc(cg, h, dk)));
    LLVMValueRef vsr = tfx_cg_fptr(cg, pv, tfx_cg_add(cg, tfx_cg_mulc(cg, ts, vs), tfx_cg_mulc(cg, h, dv)));
    LLVMValueRef decay = gpow(cg, gp, tfx_cg_sub(cg, tfx_cg_addc(cg, len, -1), sl.iv));
    tfx_cg_loop fl;
    tfx_cg_for(cg, &fl, zero, tfx_cg_i64(cg, dk), 1, "e");
    LLVMValueRef a = LLVMBuildFMul(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, ks, fl.iv)), decay, "");
    vrun(cg, V_AXPY, tfx_cg_fptr(cg, S, tfx_cg_mulc(cg, fl.iv, dv)), vsr, a, dv);
    tfx_cg_for_end(cg, &fl);
    tfx_cg_for_end(cg, &sl);
    tfx_cg_for_end(cg, &cl);
    tfx_cg_for_end(cg, &hl);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call_n(cg, n, NULL, 0, H,
                       (tfx_cg_ptr[6]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->inputs[1]), TFX_CG_VAL(n->inputs[2]),
                                       TFX_CG_KVAT(n->kv_offset), TFX_CG_VAL(n->id),
                                       given ? TFX_CG_VAL(n->inputs[3]) : TFX_CG_NONE},
                       6);
  return 0;
}

/* ---- INFINI_ATTENTION ---- */

/* elu(x) + 1 of a scalar */
static LLVMValueRef elu1(tfx_cg *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef pos = LLVMBuildFCmp(b, LLVMRealOGT, x, fk(cg, 0.0), "");
  return LLVMBuildSelect(b, pos, LLVMBuildFAdd(b, x, fk(cg, 1.0), ""), tfx_cg_exp(cg, x), "elu1");
}

/* dst[0..n) = elu(src) + 1 */
static void elu1_row(tfx_cg *cg, LLVMValueRef dst, LLVMValueRef src, int64_t n) {
  tfx_cg_loop l;
  tfx_cg_for(cg, &l, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, n), 1, "sig");
  tfx_cg_storef(cg, elu1(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, src, l.iv))), tfx_cg_fptr(cg, dst, l.iv));
  tfx_cg_for_end(cg, &l);
}

int tfx_cg_emit_infini(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, d = n->head_dim, dv = n->v_dim, N = n->segment, qs = H * d, vs = H * dv;
  int64_t per = N * (d + dv) + d * dv + d;
  if (n->kv_offset < 0) return tfx_cg_fail(cg, "backend: %%%d (infini_attention) has no state slot", n->id);
  char key[128];
  snprintf(key, sizeof key, "infini_H%lld_d%lld_dv%lld_N%lld", (long long)H, (long long)d, (long long)dv, (long long)N);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), pk = tfx_cg_body_ptr(cg, 1), pv = tfx_cg_body_ptr(cg, 2);
    LLVMValueRef pbeta = tfx_cg_body_ptr(cg, 3), state = tfx_cg_body_ptr(cg, 4), py = tfx_cg_body_ptr(cg, 5);
    LLVMValueRef sig = tfx_cg_alloca_array(cg, cg->t_f32, d, "sig");
    LLVMValueRef sc = tfx_cg_alloca_array(cg, cg->t_f32, N, "scores");
    LLVMValueRef acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
    LLVMValueRef mxv = tfx_cg_alloca(cg, cg->t_f32, "mx"), sumv = tfx_cg_alloca(cg, cg->t_f32, "sum");
    LLVMValueRef zero = tfx_cg_i64(cg, 0);
    double scale = 1.0 / sqrt((double)d);

    tfx_cg_loop hl;
    tfx_cg_for(cg, &hl, cg->kbegin, cg->kend, 1, "head");
    LLVMValueRef h = hl.iv;
    LLVMValueRef Kl = tfx_cg_fptr(cg, state, tfx_cg_mulc(cg, h, per));
    LLVMValueRef Vl = tfx_cg_fptrc(cg, Kl, N * d), M = tfx_cg_fptrc(cg, Vl, N * dv), z = tfx_cg_fptrc(cg, M, d * dv);
    LLVMValueRef gate = tfx_cg_sigmoid(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, pbeta, h)));
    LLVMValueRef lgate = LLVMBuildFSub(b, fk(cg, 1.0), gate, "lgate");
    tfx_cg_if first;
    tfx_cg_if_begin(cg, &first, LLVMBuildICmp(b, LLVMIntEQ, cg->pos, zero, ""), "fresh");
    vrun(cg, V_ZERO, M, NULL, NULL, d * dv + d);
    tfx_cg_if_end(cg, &first);

    tfx_cg_loop tl;
    tfx_cg_for(cg, &tl, zero, cg->T, 1, "row");
    LLVMValueRef t = tl.iv, p = tfx_cg_add(cg, cg->pos, t);
    LLVMValueRef slot = LLVMBuildSRem(b, p, tfx_cg_i64(cg, N), "slot");
    /* a new segment: the previous one goes into the memory */
    tfx_cg_if seg;
    LLVMValueRef start =
        LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, slot, zero, ""), LLVMBuildICmp(b, LLVMIntSGT, p, zero, ""), "");
    tfx_cg_if_begin(cg, &seg, start, "fold");
    tfx_cg_loop jl;
    tfx_cg_for(cg, &jl, zero, tfx_cg_i64(cg, N), 1, "key");
    elu1_row(cg, sig, tfx_cg_fptr(cg, Kl, tfx_cg_mulc(cg, jl.iv, d)), d);
    vrun(cg, V_AXPY, z, sig, fk(cg, 1.0), d);
    LLVMValueRef vj = tfx_cg_fptr(cg, Vl, tfx_cg_mulc(cg, jl.iv, dv));
    tfx_cg_loop el;
    tfx_cg_for(cg, &el, zero, tfx_cg_i64(cg, d), 1, "e");
    vrun(cg, V_AXPY, tfx_cg_fptr(cg, M, tfx_cg_mulc(cg, el.iv, dv)), vj, tfx_cg_loadf(cg, tfx_cg_fptr(cg, sig, el.iv)),
         dv);
    tfx_cg_for_end(cg, &el);
    tfx_cg_for_end(cg, &jl);
    tfx_cg_if_end(cg, &seg);

    LLVMValueRef qrow = tfx_cg_fptr(cg, pq, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, d)));
    LLVMValueRef krow = tfx_cg_fptr(cg, pk, tfx_cg_add(cg, tfx_cg_mulc(cg, t, qs), tfx_cg_mulc(cg, h, d)));
    LLVMValueRef vrow = tfx_cg_fptr(cg, pv, tfx_cg_add(cg, tfx_cg_mulc(cg, t, vs), tfx_cg_mulc(cg, h, dv)));
    LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_add(cg, tfx_cg_mulc(cg, t, vs), tfx_cg_mulc(cg, h, dv)));
    vrun(cg, V_COPY, tfx_cg_fptr(cg, Kl, tfx_cg_mulc(cg, slot, d)), krow, NULL, d);
    vrun(cg, V_COPY, tfx_cg_fptr(cg, Vl, tfx_cg_mulc(cg, slot, dv)), vrow, NULL, dv);
    /* the local attention: scores and their max, then the weights */
    LLVMValueRef nkeys = tfx_cg_addc(cg, slot, 1);
    LLVMBuildStore(b, fk(cg, -INFINITY), mxv);
    tfx_cg_loop sl;
    tfx_cg_for(cg, &sl, zero, nkeys, 1, "score");
    LLVMValueRef s =
        LLVMBuildFMul(b, vdot(cg, qrow, tfx_cg_fptr(cg, Kl, tfx_cg_mulc(cg, sl.iv, d)), acc, d), fk(cg, scale), "s");
    tfx_cg_storef(cg, s, tfx_cg_fptr(cg, sc, sl.iv));
    LLVMBuildStore(b, tfx_cg_fmax(cg, LLVMBuildLoad2(b, cg->t_f32, mxv, ""), s), mxv);
    tfx_cg_for_end(cg, &sl);
    LLVMValueRef mx = LLVMBuildLoad2(b, cg->t_f32, mxv, "mx");
    LLVMBuildStore(b, fk(cg, 0.0), sumv);
    tfx_cg_for(cg, &sl, zero, nkeys, 1, "weight");
    LLVMValueRef sp = tfx_cg_fptr(cg, sc, sl.iv);
    LLVMValueRef e = tfx_cg_exp(cg, LLVMBuildFSub(b, tfx_cg_loadf(cg, sp), mx, ""));
    tfx_cg_storef(cg, e, sp);
    LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->t_f32, sumv, ""), e, ""), sumv);
    tfx_cg_for_end(cg, &sl);
    LLVMValueRef wscale = LLVMBuildFDiv(b, lgate, LLVMBuildLoad2(b, cg->t_f32, sumv, ""), "wscale");
    vrun(cg, V_ZERO, yrow, NULL, NULL, dv);
    tfx_cg_for(cg, &sl, zero, nkeys, 1, "acc");
    LLVMValueRef wj = LLVMBuildFMul(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, sc, sl.iv)), wscale, "");
    vrun(cg, V_AXPY, yrow, tfx_cg_fptr(cg, Vl, tfx_cg_mulc(cg, sl.iv, dv)), wj, dv);
    tfx_cg_for_end(cg, &sl);
    /* the memory read */
    elu1_row(cg, sig, qrow, d);
    LLVMValueRef den = vdot(cg, sig, z, acc, d);
    tfx_cg_if any;
    tfx_cg_if_begin(cg, &any, LLVMBuildFCmp(b, LLVMRealOGT, den, fk(cg, 0.0), ""), "mem");
    LLVMValueRef mscale = LLVMBuildFDiv(b, gate, den, "mscale");
    tfx_cg_loop ml;
    tfx_cg_for(cg, &ml, zero, tfx_cg_i64(cg, d), 1, "e");
    LLVMValueRef a = LLVMBuildFMul(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, sig, ml.iv)), mscale, "");
    vrun(cg, V_AXPY, yrow, tfx_cg_fptr(cg, M, tfx_cg_mulc(cg, ml.iv, dv)), a, dv);
    tfx_cg_for_end(cg, &ml);
    tfx_cg_if_end(cg, &any);
    tfx_cg_for_end(cg, &tl);
    tfx_cg_for_end(cg, &hl);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call_n(cg, n, NULL, 0, H,
                       (tfx_cg_ptr[6]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->inputs[1]), TFX_CG_VAL(n->inputs[2]),
                                       TFX_CG_VAL(n->inputs[3]), TFX_CG_KVAT(n->kv_offset), TFX_CG_VAL(n->id)},
                       6);
  return 0;
}

/* ---- GROUPNORM ---- */

int tfx_cg_emit_groupnorm(tfx_cg *cg, const tfx_node *n) {
  int64_t cols = tfx_node_cols(n), G = n->heads, gs = cols / G, per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[96];
  snprintf(key, sizeof key, "groupnorm_c%lld_g%lld_eps%.17g", (long long)cols, (long long)G, n->eps);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef px = tfx_cg_body_ptr(cg, 0), pg = tfx_cg_body_ptr(cg, 1), pb = tfx_cg_body_ptr(cg, 2);
    LLVMValueRef py = tfx_cg_body_ptr(cg, 3);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    tfx_cg_loop gl;
    tfx_cg_for(cg, &gl, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, G), 1, "group");
    LLVMValueRef col = tfx_cg_mulc(cg, gl.iv, gs);
    LLVMValueRef off = tfx_cg_add(cg, tfx_cg_mulc(cg, row.iv, cols), col);
    tfx_cg_norm_row(cg, tfx_cg_fptr(cg, px, off), tfx_cg_fptr(cg, py, off), tfx_cg_fptr(cg, pg, col),
                    tfx_cg_fptr(cg, pb, col), gs, n->eps, 1);
    tfx_cg_for_end(cg, &gl);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(
      cg, n, NULL, per_t, fixed,
      (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->inputs[1]), TFX_CG_VAL(n->inputs[2]), TFX_CG_VAL(n->id)});
  return 0;
}
