/* backend/k_tiny_heads.c — the tiny-head decode kernel: a causal dense
 * ATTENTION (MHA / GQA / MQA, no ALiBi, no sparse pattern, no relative bias)
 * with head_dim d <= TFX_ATTN_TINY_D in the decode entry
 * (tfx_attn_tiny_fits), chosen by schedule { decode = tiny }, or by the cost
 * model under decode = auto where d is a power of two <= 16 and the packed
 * body below applies (tfx_attn_tiny_auto; docs/performance.md "Small
 * models": 1.4x stories260K's decode).
 * The row body reduces each score across d, a fraction of a vector when d
 * is small; these vectorize across keys instead. Items: heads of the one
 * query row. Two bodies:
 *  - packed (d a power of two dividing W; emit_body_packed below): whole key
 *    rows loaded as vectors, a transposing reduction to one vector of W
 *    scores, one running max per head;
 *  - gather (any d <= 16, e.g. 6 or 12, or d > W): a block of W keys
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

static int packed_fits(const tfx_cg *cg, int64_t d);

int tfx_cg_tiny_heads_chosen(const tfx_cg *cg, const tfx_node *n) {
  if (!cg->decode || cg->one_row || cg->batch || !tfx_attn_tiny_chosen(cg->g, n)) return 0;
  /* chosen by the cost model: only where the packed body applies (the gather body does not pay) */
  return cg->g->schedule.decode == TFX_SCHED_DECODE_TINY || packed_fits(cg, n->head_dim);
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

/* ---- the packed body: d a power of two dividing W (stories260K: d 8, W 16) ----
 * A block of W keys is read as d vectors of R = W / d whole key rows each
 * (row j of head g is K[j * ks + g * d .. + d), one contiguous <d x float>
 * load per key, R of them concatenated), multiplied by q repeated R times, and
 * reduced to one vector of W scores by log2(d) steps that each add the halves
 * of every segment of two vectors into one (a transposing reduction: no score
 * is reduced horizontally on its own); a constant permutation puts the scores
 * in key order. The softmax keeps one running max per head (the block's max
 * merged once per block), p = e^(s - m) lane-wise, and o accumulates in the
 * same R-rows-per-vector layout: o = o corr + sum_i bcast_i(p) * Vrows_i; at
 * the end the R segments of o are added and divided by the sum of p. */
static LLVMValueRef shuf(tfx_cg *cg, LLVMValueRef a, LLVMValueRef bv, const int *idx, int n) {
  LLVMValueRef m[128];
  for (int i = 0; i < n; i++) m[i] = LLVMConstInt(cg->t_i32, (unsigned long long)idx[i], 0);
  return LLVMBuildShuffleVector(cg->b, a, bv ? bv : LLVMGetPoison(LLVMTypeOf(a)), LLVMConstVector(m, (unsigned)n), "");
}

/* <n x float> rows[0..cnt) concatenated into one <cnt * n x float> */
static LLVMValueRef concat(tfx_cg *cg, LLVMValueRef *rows, int cnt, int n) {
  while (cnt > 1) {
    int idx[128];
    for (int i = 0; i < 2 * n; i++) idx[i] = i;
    for (int i = 0; i < cnt / 2; i++) rows[i] = shuf(cg, rows[2 * i], rows[2 * i + 1], idx, 2 * n);
    cnt /= 2;
    n *= 2;
  }
  return rows[0];
}

static int packed_fits(const tfx_cg *cg, int64_t d) {
  return d >= 1 && d <= cg->W && (d & (d - 1)) == 0 && (cg->W & (cg->W - 1)) == 0 && cg->W <= 64;
}

/* a splat of v's largest lane (maxnum butterfly: every lane ends with the max) */
static LLVMValueRef splat_max(tfx_cg *cg, LLVMValueRef v) {
  for (int st = cg->W / 2; st >= 1; st /= 2) {
    int idx[64];
    for (int ln = 0; ln < cg->W; ln++) idx[ln] = ln ^ st;
    v = tfx_cg_fmax(cg, v, shuf(cg, v, NULL, idx, cg->W));
  }
  return v;
}

typedef struct packed_ctx {
  const tfx_node *n;
  int d, R, ks;
  LLVMTypeRef t_vd;
  LLVMValueRef kh, vh, qrep, nkeys, last, scale, m, l, o;
  int perm[64];
} packed_ctx;

/* one block of W keys from j0; clamp: keys past the last read the last one (the tail block) */
static void packed_block(tfx_cg *cg, const packed_ctx *c, LLVMValueRef j0, int clamp) {
  LLVMBuilderRef b = cg->b;
  int W = cg->W, d = c->d, R = c->R;
  LLVMValueRef ninf_v = tfx_cg_fconst(cg, cg->t_vf, -INFINITY), vzero = LLVMConstNull(cg->t_vf);
  LLVMValueRef kb = tfx_cg_fptr(cg, c->kh, tfx_cg_mulc(cg, j0, c->ks));
  LLVMValueRef vb = tfx_cg_fptr(cg, c->vh, tfx_cg_mulc(cg, j0, c->ks));
  LLVMValueRef off[64];
  for (int r = 0; r < W; r++) {
    if (clamp) {
      LLVMValueRef j = tfx_cg_addc(cg, j0, r);
      j = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, j, c->last, ""), j, c->last, "");
      off[r] = tfx_cg_mulc(cg, tfx_cg_sub(cg, j, j0), c->ks);
    } else {
      off[r] = tfx_cg_i64(cg, (int64_t)r * c->ks);
    }
  }
  LLVMValueRef part[64] = {0}, rows[64];
  for (int i = 0; i < d; i++) {
    for (int r = 0; r < R; r++) {
      rows[r] = LLVMBuildLoad2(b, c->t_vd, tfx_cg_fptr(cg, kb, off[i * R + r]), "k");
      LLVMSetAlignment(rows[r], 4);
    }
    part[i] = LLVMBuildFMul(b, concat(cg, rows, R, d), c->qrep, "");
  }
  /* the transposing reduction (its lane order simulated in emit_body_packed) */
  for (int cnt = d, L = d; cnt > 1; cnt /= 2, L /= 2) {
    int nseg = W / L, k = 0, idx_lo[64], idx_hi[64];
    for (int sg = 0; sg < nseg; sg++) {
      for (int t = 0; t < L / 2; t++, k++) idx_lo[k] = sg * L + t, idx_hi[k] = sg * L + L / 2 + t;
      for (int t = 0; t < L / 2; t++, k++) idx_lo[k] = W + sg * L + t, idx_hi[k] = W + sg * L + L / 2 + t;
    }
    for (int pp = 0; pp < cnt / 2; pp++)
      part[pp] = LLVMBuildFAdd(b, shuf(cg, part[2 * pp], part[2 * pp + 1], idx_lo, W),
                               shuf(cg, part[2 * pp], part[2 * pp + 1], idx_hi, W), "");
  }
  LLVMValueRef s = shuf(cg, part[0], NULL, c->perm, W);
  s = tfx_cg_softcap(cg, LLVMBuildFMul(b, s, c->scale, "score"), c->n->softcap);
  LLVMValueRef valid = NULL;
  if (clamp) {
    valid = tfx_cg_mask_dyn(cg, tfx_cg_sub(cg, c->nkeys, j0));
    s = LLVMBuildSelect(b, valid, s, ninf_v, "");
  }
  LLVMValueRef m_old = LLVMBuildLoad2(b, cg->t_vf, c->m, "");
  LLVMValueRef m_new = tfx_cg_fmax(cg, m_old, splat_max(cg, s));
  LLVMValueRef m_use = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, m_new, ninf_v, ""), vzero, m_new, "m_use");
  /* exponents held at >= -80: e^-80 is still a normal float, so no denormal (a microcode assist
   * costing ~100 cycles per instruction) is ever made; it replaces a weight below 2e-35 of the
   * block's largest (1), and the -inf start (m_old, masked lanes) meets l = o = 0 or the mask */
  LLVMValueRef lo80 = tfx_cg_fconst(cg, cg->t_vf, -80.0);
  LLVMValueRef corr = tfx_cg_exp(cg, tfx_cg_fmax(cg, LLVMBuildFSub(b, m_old, m_use, ""), lo80));
  LLVMValueRef p = tfx_cg_exp(cg, tfx_cg_fmax(cg, LLVMBuildFSub(b, s, m_use, ""), lo80));
  if (clamp) p = LLVMBuildSelect(b, valid, p, vzero, "p");
  LLVMBuildStore(b, tfx_cg_fma(cg, LLVMBuildLoad2(b, cg->t_vf, c->l, ""), corr, p), c->l);
  LLVMValueRef acc = LLVMBuildFMul(b, LLVMBuildLoad2(b, cg->t_vf, c->o, ""), corr, "");
  for (int i = 0; i < d; i++) {
    int bc[64];
    for (int ln = 0; ln < W; ln++) bc[ln] = i * R + ln / d;
    for (int r = 0; r < R; r++) {
      rows[r] = LLVMBuildLoad2(b, c->t_vd, tfx_cg_fptr(cg, vb, off[i * R + r]), "v");
      LLVMSetAlignment(rows[r], 4);
    }
    acc = tfx_cg_fma(cg, shuf(cg, p, NULL, bc, W), concat(cg, rows, R, d), acc);
  }
  LLVMBuildStore(b, acc, c->o);
  LLVMBuildStore(b, m_new, c->m);
}

static int emit_body_packed(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, G = n->kv_heads, group = H / G;
  int d = (int)n->head_dim, W = cg->W;
  int64_t max_seq = cg->g->max_seq;
  packed_ctx c = {.n = n, .d = d, .R = W / d, .ks = (int)(G * d)};
  c.t_vd = LLVMVectorType(cg->t_f32, (unsigned)d);
  LLVMValueRef pq = tfx_cg_body_ptr(cg, 0), keys = tfx_cg_body_ptr(cg, 1), vals = tfx_cg_body_ptr(cg, 2);
  LLVMValueRef py = tfx_cg_body_ptr(cg, 3);
  LLVMValueRef vzero = LLVMConstNull(cg->t_vf);
  c.scale = tfx_cg_splat(cg, LLVMConstReal(cg->t_f32, tfx_attn_scale(n)));
  c.m = tfx_cg_alloca(cg, cg->t_vf, "m");
  c.l = tfx_cg_alloca(cg, cg->t_vf, "l");
  c.o = tfx_cg_alloca(cg, cg->t_vf, "o");

  /* the reduction's lane order, simulated: lab[0][lane] = the key offset that lane ends with */
  int rep[64];
  {
    int lab[64][64], cnt = d, L = d, R = c.R;
    for (int i = 0; i < d; i++)
      for (int r = 0; r < R; r++) lab[i][r] = i * R + r;
    while (cnt > 1) {
      int nseg = W / L;
      for (int pp = 0; pp < cnt / 2; pp++) {
        int nl[64];
        for (int sg = 0; sg < nseg; sg++) {
          nl[2 * sg] = lab[2 * pp][sg];
          nl[2 * sg + 1] = lab[2 * pp + 1][sg];
        }
        for (int sg = 0; sg < 2 * nseg; sg++) lab[pp][sg] = nl[sg];
      }
      cnt /= 2;
      L /= 2;
    }
    for (int ln = 0; ln < W; ln++) c.perm[lab[0][ln]] = ln;
    for (int ln = 0; ln < W; ln++) rep[ln] = ln % d;
  }

  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "head");
  LLVMValueRef h = it.iv;
  LLVMValueRef g = LLVMBuildUDiv(b, h, tfx_cg_i64(cg, group), "g");
  LLVMValueRef qv = LLVMBuildLoad2(b, c.t_vd, tfx_cg_fptr(cg, pq, tfx_cg_mulc(cg, h, d)), "q");
  LLVMSetAlignment(qv, 4);
  c.qrep = shuf(cg, qv, NULL, rep, W);
  LLVMValueRef qi = tfx_cg_row_pos(cg, tfx_cg_i64(cg, 0));
  c.nkeys = tfx_cg_smin(cg, tfx_cg_addc(cg, qi, 1), tfx_cg_i64(cg, max_seq));
  c.last = tfx_cg_addc(cg, c.nkeys, -1);
  c.kh = tfx_cg_fptr(cg, keys, tfx_cg_mulc(cg, g, d));
  c.vh = tfx_cg_fptr(cg, vals, tfx_cg_mulc(cg, g, d));
  LLVMBuildStore(b, tfx_cg_fconst(cg, cg->t_vf, -INFINITY), c.m);
  LLVMBuildStore(b, vzero, c.l);
  LLVMBuildStore(b, vzero, c.o);

  /* whole blocks, then the tail block (clamped) */
  LLVMValueRef full = tfx_cg_mulc(cg, LLVMBuildSDiv(b, c.nkeys, tfx_cg_i64(cg, W), ""), W);
  tfx_cg_loop blk;
  tfx_cg_for(cg, &blk, tfx_cg_i64(cg, 0), full, W, "blk");
  packed_block(cg, &c, blk.iv, 0);
  tfx_cg_for_end(cg, &blk);
  tfx_cg_if tail;
  tfx_cg_if_begin(cg, &tail, LLVMBuildICmp(b, LLVMIntSLT, full, c.nkeys, ""), "tail");
  packed_block(cg, &c, full, 1);
  tfx_cg_if_end(cg, &tail);

  /* add o's R segments, divide by the sum of p (>= 1: the query's own key is always allowed) */
  LLVMValueRef ov = LLVMBuildLoad2(b, cg->t_vf, c.o, "");
  for (int w = W; w > d; w /= 2) {
    int lo[64], hi[64];
    for (int t = 0; t < w / 2; t++) lo[t] = t, hi[t] = w / 2 + t;
    ov = LLVMBuildFAdd(b, shuf(cg, ov, NULL, lo, w / 2), shuf(cg, ov, NULL, hi, w / 2), "");
  }
  LLVMValueRef L = tfx_cg_hsum(cg, LLVMBuildLoad2(b, cg->t_vf, c.l, ""));
  LLVMValueRef Lv = LLVMBuildInsertElement(b, LLVMGetPoison(c.t_vd), L, tfx_cg_i32(cg, 0), "");
  Lv = LLVMBuildShuffleVector(b, Lv, LLVMGetPoison(c.t_vd), LLVMConstNull(LLVMVectorType(cg->t_i32, (unsigned)d)), "");
  LLVMValueRef st = LLVMBuildStore(b, LLVMBuildFDiv(b, ov, Lv, "y"), tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, h, d)));
  LLVMSetAlignment(st, 4);
  tfx_cg_for_end(cg, &it);
  return 0;
}

int tfx_cg_emit_tiny_heads(tfx_cg *cg, const tfx_node *n, tfx_cg_ptr keys, tfx_cg_ptr vals) {
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim;
  if (cg->W > 64) return tfx_cg_fail(cg, "backend: tiny-head decode: vector width %d", cg->W);
  char key[192];
  int packed = packed_fits(cg, d);
  snprintf(key, sizeof key, "tinydec%s_H%lld_G%lld_d%lld_S%lld_%.9g_c%.9g", packed ? "p" : "", (long long)H,
           (long long)G, (long long)d, (long long)cg->g->max_seq, tfx_attn_scale(n), n->softcap);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    int rc = packed ? emit_body_packed(cg, n) : emit_body(cg, n);
    tfx_cg_body_end(cg);
    if (rc) return -1;
  }
  tfx_cg_kernel_call(cg, n, NULL, 0, H, (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), keys, vals, TFX_CG_VAL(n->id)});
  return 0;
}
