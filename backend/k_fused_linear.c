/* backend/k_fused_linear.c — the FUSED_LINEAR kernel: the GEMM of
 * k_linear.c with hooks. Prologue: each x vector is normalized as it is
 * loaded, with the row's statistics from NORM_STATS (RMS: x * gain, the
 * 1/rms factor applied once to the finished dot product; LayerNorm:
 * (x - mean) * inv * gain + bias). Epilogue, per finished tile element:
 * + bias, RoPE (interleaved pairs of the segment's heads, angle
 * (pos + row) * theta^(-2k/rotary_dim) from a table of inverse frequencies,
 * sin/cos inline), activation, GLU gating act(gate) * up, + residual (the
 * residual normalized first with its row's statistics, rnorm: the residual
 * stream of post-norm blocks), then one store (planar segments at their own
 * offsets), then (stats_out) the partial statistics of the row's group of
 * output columns (for a planar output, of the segment stats_seg only). Also
 * the NORM_STATS kernel (one item per row: mean and 1/sqrt(var + eps)), and
 * the norm helpers the embedding and MoE kernels share (loading or combining
 * a row's statistics; one group's partial statistics; the prologue of an x
 * vector). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

typedef struct {
  const tfx_node *n;
  LLVMValueRef stats, gain, nbias, res, inv_freq; /* rnorm: stats, gain, nbias are the residual's norm */
  LLVMValueRef sout;                              /* stats_out: the partial statistics this kernel writes */
  int64_t sout_groups;                            /* their groups per row */
  const tfx_node *snode;                          /* the stats operand's node */
  int64_t parts;       /* stats from an epilogue: groups per row to combine (0: plain [M, 2]) */
  LLVMValueRef rowbuf; /* (mean, inv) of each row of the block, combined from the parts */
  int64_t K;           /* columns of the normalized value: x's (prologue) or the residual's (rnorm) */
  int norm;            /* the norm of the stats operand: fx.norm, or fx.rnorm */
  LLVMValueRef mean[TFX_CG_GEMM_MAX_MR], inv[TFX_CG_GEMM_MAX_MR]; /* splats of the tile's rows (layer) */
} fl_ctx;

/* mean and 1/sqrt(var + eps) of a row from the partial statistics the
 * producer's epilogue wrote: RMS sums the groups' sums of squares; LayerNorm
 * merges the groups' (mean, sum of squared deviations) one by one (Chan et
 * al.), which keeps the centred form. */
static void combine_parts(tfx_cg *cg, LLVMValueRef stats, LLVMValueRef row, int64_t parts, int64_t len, int layer,
                          double eps, LLVMValueRef *mean, LLVMValueRef *inv) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef base = tfx_cg_fptr(cg, stats, tfx_cg_mulc(cg, row, parts * 2));
  LLVMValueRef a_n = tfx_cg_alloca(cg, cg->t_f32, "cn"), a_mean = tfx_cg_alloca(cg, cg->t_f32, "cmean");
  LLVMValueRef a_m2 = tfx_cg_alloca(cg, cg->t_f32, "cm2");
  LLVMValueRef zero = LLVMConstReal(cg->t_f32, 0.0);
  LLVMBuildStore(b, zero, a_n);
  LLVMBuildStore(b, zero, a_mean);
  LLVMBuildStore(b, zero, a_m2);
  tfx_cg_loop lp;
  tfx_cg_for(cg, &lp, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, parts), 1, "part");
  LLVMValueRef at = tfx_cg_fptr(cg, base, tfx_cg_mulc(cg, lp.iv, 2));
  LLVMValueRef p0 = tfx_cg_loadf(cg, at), p1 = tfx_cg_loadf(cg, tfx_cg_fptrc(cg, at, 1));
  if (!layer) {
    LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->t_f32, a_m2, ""), p0, ""), a_m2);
  } else {
    LLVMValueRef left = tfx_cg_sub(cg, tfx_cg_i64(cg, len), tfx_cg_mulc(cg, lp.iv, TFX_STATS_GROUP));
    LLVMValueRef cb = LLVMBuildSIToFP(b, tfx_cg_smin(cg, tfx_cg_i64(cg, TFX_STATS_GROUP), left), cg->t_f32, "");
    LLVMValueRef na = LLVMBuildLoad2(b, cg->t_f32, a_n, ""), ma = LLVMBuildLoad2(b, cg->t_f32, a_mean, "");
    LLVMValueRef m2 = LLVMBuildLoad2(b, cg->t_f32, a_m2, "");
    LLVMValueRef nn = LLVMBuildFAdd(b, na, cb, "");
    LLVMValueRef delta = LLVMBuildFSub(b, p0, ma, "");
    LLVMValueRef w = LLVMBuildFDiv(b, cb, nn, "");
    LLVMBuildStore(b, LLVMBuildFAdd(b, ma, LLVMBuildFMul(b, delta, w, ""), ""), a_mean);
    LLVMValueRef corr = LLVMBuildFMul(b, LLVMBuildFMul(b, delta, delta, ""), LLVMBuildFMul(b, na, w, ""), "");
    LLVMBuildStore(b, LLVMBuildFAdd(b, m2, LLVMBuildFAdd(b, p1, corr, ""), ""), a_m2);
    LLVMBuildStore(b, nn, a_n);
  }
  tfx_cg_for_end(cg, &lp);
  LLVMValueRef var =
      LLVMBuildFDiv(b, LLVMBuildLoad2(b, cg->t_f32, a_m2, ""), LLVMConstReal(cg->t_f32, (double)len), "");
  var = LLVMBuildFAdd(b, var, LLVMConstReal(cg->t_f32, (float)eps), "");
  *inv = LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), tfx_cg_sqrt(cg, var), "inv");
  *mean = layer ? LLVMBuildLoad2(b, cg->t_f32, a_mean, "") : zero;
}

void tfx_cg_norm_row_stats(tfx_cg *cg, LLVMValueRef stats, LLVMValueRef row, int64_t parts, int64_t len, int layer,
                           double eps, LLVMValueRef *mean, LLVMValueRef *inv) {
  if (parts) {
    combine_parts(cg, stats, row, parts, len, layer, eps, mean, inv);
    return;
  }
  LLVMValueRef at = tfx_cg_fptr(cg, stats, tfx_cg_mulc(cg, row, 2));
  *mean = tfx_cg_loadf(cg, at);
  *inv = tfx_cg_loadf(cg, tfx_cg_fptrc(cg, at, 1));
}

/* The (mean, 1/std) of each row of the block into rowbuf, once per block
 * (one code site: a loop): loaded from the stats, or combined from the
 * parts an epilogue wrote. */
static void fl_block_begin(tfx_cg *cg, const tfx_cg_gemm *G, LLVMValueRef m, int mr) {
  fl_ctx *c = G->ctx;
  if (c->norm == TFX_NORM_NONE) return;
  tfx_cg_loop li;
  tfx_cg_for(cg, &li, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, mr), 1, "srow");
  LLVMValueRef row = tfx_cg_smin(cg, tfx_cg_add(cg, m, li.iv), tfx_cg_addc(cg, G->M, -1)), mean, inv;
  tfx_cg_norm_row_stats(cg, c->stats, row, c->parts, c->K, c->norm == TFX_NORM_LAYER, c->snode->eps, &mean, &inv);
  LLVMValueRef slot = tfx_cg_fptr(cg, c->rowbuf, tfx_cg_mulc(cg, li.iv, 2));
  tfx_cg_storef(cg, mean, slot);
  tfx_cg_storef(cg, inv, tfx_cg_fptrc(cg, slot, 1));
  tfx_cg_for_end(cg, &li);
}

static void fl_row_begin(tfx_cg *cg, const tfx_cg_gemm *G, int i, LLVMValueRef row) {
  fl_ctx *c = G->ctx;
  (void)row;
  if (c->n->fx.norm != TFX_NORM_LAYER) return; /* RMS: 1/rms is applied in the epilogue */
  c->mean[i] = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptrc(cg, c->rowbuf, 2 * i)));
  c->inv[i] = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptrc(cg, c->rowbuf, 2 * i + 1)));
}

/* stats_out: the partial statistics of one output row of a panel (one group
 * of TFX_STATS_GROUP columns), from its final values. */
static void write_parts(tfx_cg *cg, const fl_ctx *c, const tfx_cg_row *r, LLVMValueRef *v) {
  LLVMBuilderRef b = cg->b;
  int layer = c->n->fx.stats_out == TFX_NORM_LAYER;
  LLVMValueRef sum = LLVMConstReal(cg->t_f32, 0.0), zero = LLVMConstNull(cg->t_vf), mv[TFX_CG_LIN_NB];
  for (int g = 0; g < r->ngrp; g++) {
    int lanes = tfx_cg_row_lanes(cg, r, g);
    mv[g] = lanes < cg->W ? LLVMBuildSelect(b, tfx_cg_mask_const(cg, lanes), v[g], zero, "") : v[g];
    if (layer) sum = LLVMBuildFAdd(b, sum, tfx_cg_hsum(cg, mv[g]), "");
  }
  LLVMValueRef mean = LLVMBuildFDiv(b, sum, LLVMConstReal(cg->t_f32, (double)r->nb), "");
  LLVMValueRef ms = layer ? tfx_cg_splat(cg, mean) : zero, ss = LLVMConstReal(cg->t_f32, 0.0);
  for (int g = 0; g < r->ngrp; g++) {
    int lanes = tfx_cg_row_lanes(cg, r, g);
    LLVMValueRef d = LLVMBuildFSub(b, mv[g], ms, "");
    if (lanes < cg->W) d = LLVMBuildSelect(b, tfx_cg_mask_const(cg, lanes), d, zero, "");
    ss = LLVMBuildFAdd(b, ss, tfx_cg_hsum(cg, LLVMBuildFMul(b, d, d, "")), "");
  }
  LLVMValueRef p = LLVMBuildUDiv(b, r->col, tfx_cg_i64(cg, TFX_STATS_GROUP), "");
  LLVMValueRef slot = tfx_cg_add(cg, tfx_cg_mulc(cg, r->row, c->sout_groups), p);
  LLVMValueRef at = tfx_cg_fptr(cg, c->sout, tfx_cg_mulc(cg, slot, 2));
  tfx_cg_storef(cg, layer ? mean : ss, at);
  tfx_cg_storef(cg, layer ? ss : LLVMConstReal(cg->t_f32, 0.0), tfx_cg_fptrc(cg, at, 1));
}

LLVMValueRef tfx_cg_norm_x_load(tfx_cg *cg, int norm, LLVMValueRef xv, LLVMValueRef col, int nvalid, LLVMValueRef gain,
                                LLVMValueRef bias, LLVMValueRef mean, LLVMValueRef inv) {
  if (norm == TFX_NORM_NONE) return xv;
  LLVMValueRef gv = tfx_cg_vload(cg, tfx_cg_fptr(cg, gain, col), nvalid);
  if (norm == TFX_NORM_RMS) return LLVMBuildFMul(cg->b, xv, gv, "");
  LLVMValueRef bv = tfx_cg_vload(cg, tfx_cg_fptr(cg, bias, col), nvalid);
  LLVMValueRef d = LLVMBuildFMul(cg->b, LLVMBuildFSub(cg->b, xv, mean, ""), inv, "");
  return tfx_cg_fma(cg, d, gv, bv);
}

static LLVMValueRef fl_x_load(tfx_cg *cg, const tfx_cg_gemm *G, int i, LLVMValueRef xv, LLVMValueRef k, int nvalid) {
  fl_ctx *c = G->ctx;
  return tfx_cg_norm_x_load(cg, c->n->fx.norm, xv, k, nvalid, c->gain, c->nbias, c->mean[i], c->inv[i]);
}

/* RoPE factors of the tile's columns for one row: cs[c] and sn[c] (stack
 * arrays of the tile's width) get cos and -sin / +sin of the pair's angle
 * (pos + row) * theta^(-2k/rotary_dim), k the pair's index in its head; the
 * dims beyond rotary_dim get 1 and 0. A runtime loop over the pairs keeps the
 * code small. */
static void rope_factors(tfx_cg *cg, const fl_ctx *c, LLVMValueRef row, LLVMValueRef col0, int nc, LLVMValueRef cs,
                         LLVMValueRef sn) {
  LLVMBuilderRef b = cg->b;
  const tfx_node *n = c->n;
  LLVMValueRef p = LLVMBuildSIToFP(b, tfx_cg_row_pos(cg, row), cg->t_f64, "p");
  tfx_cg_loop lq;
  tfx_cg_for(cg, &lq, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, nc), 2, "pair");
  LLVMValueRef ih = LLVMBuildURem(b, tfx_cg_add(cg, col0, lq.iv), tfx_cg_i64(cg, n->head_dim), "ih");
  LLVMValueRef rot = LLVMBuildICmp(b, LLVMIntSLT, ih, tfx_cg_i64(cg, n->rotary_dim), "");
  LLVMValueRef k = LLVMBuildSelect(b, rot, LLVMBuildLShr(b, ih, tfx_cg_i64(cg, 1), ""), tfx_cg_i64(cg, 0), "k");
  LLVMValueRef si, co;
  tfx_cg_rope_sincos(cg, c->inv_freq, p, k, &si, &co);
  si = LLVMBuildSelect(b, rot, si, LLVMConstReal(cg->t_f32, 0.0), "");
  co = LLVMBuildSelect(b, rot, co, LLVMConstReal(cg->t_f32, 1.0), "");
  LLVMValueRef i1 = tfx_cg_addc(cg, lq.iv, 1);
  tfx_cg_storef(cg, co, tfx_cg_fptr(cg, cs, lq.iv));
  tfx_cg_storef(cg, co, tfx_cg_fptr(cg, cs, i1));
  tfx_cg_storef(cg, LLVMBuildFNeg(b, si, ""), tfx_cg_fptr(cg, sn, lq.iv));
  tfx_cg_storef(cg, si, tfx_cg_fptr(cg, sn, i1));
  tfx_cg_for_end(cg, &lq);
}

/* Loads (gather) or stores (scatter) the `lanes` values of a pair-order
 * group: lane l belongs to column tfx_pair_row(q0 + l) of the row at base. */
static LLVMValueRef gather(tfx_cg *cg, const tfx_cg_gemm *G, LLVMValueRef base, LLVMValueRef q0, int lanes) {
  LLVMValueRef v = LLVMConstNull(cg->t_vf);
  for (int l = 0; l < lanes; l++) {
    LLVMValueRef c = tfx_cg_pair_row(cg, tfx_cg_addc(cg, q0, l), G->perm_hd, G->perm_rd);
    v = LLVMBuildInsertElement(cg->b, v, tfx_cg_loadf(cg, tfx_cg_fptr(cg, base, c)), tfx_cg_i32(cg, l), "");
  }
  return v;
}

static void scatter(tfx_cg *cg, const tfx_cg_gemm *G, LLVMValueRef v, LLVMValueRef base, LLVMValueRef q0, int lanes) {
  for (int l = 0; l < lanes; l++) {
    LLVMValueRef c = tfx_cg_pair_row(cg, tfx_cg_addc(cg, q0, l), G->perm_hd, G->perm_rd);
    tfx_cg_storef(cg, LLVMBuildExtractElement(cg->b, v, tfx_cg_i32(cg, l), ""), tfx_cg_fptr(cg, base, c));
  }
}

/* The residual's norm (rnorm): (r - mean) * inv * gain + bias (LAYER) or
 * r * inv * gain (RMS), the row's mean and inv splatted. */
static LLVMValueRef residual_norm(tfx_cg *cg, int norm, LLVMValueRef r, LLVMValueRef mean, LLVMValueRef inv,
                                  LLVMValueRef gain, LLVMValueRef bias) {
  LLVMBuilderRef b = cg->b;
  if (norm == TFX_NORM_RMS) return LLVMBuildFMul(b, LLVMBuildFMul(b, r, inv, ""), gain, "");
  LLVMValueRef d = LLVMBuildFMul(b, LLVMBuildFSub(b, r, mean, ""), inv, "");
  return tfx_cg_fma(cg, d, gain, bias);
}

/* One output row, per group of W columns, in vectors: (x 1/rms), + bias,
 * RoPE on lane pairs, act, GLU, + residual, one masked store (a gather and
 * a scatter for a segment computed in half-RoPE pair order). The row's
 * statistics come from the block's tile rows (row_begin ran for them). */
static void fl_epilogue(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_row *r) {
  fl_ctx *c = G->ctx;
  const tfx_fused *fx = &c->n->fx;
  LLVMBuilderRef b = cg->b;
  int64_t base = 0, N = G->glu ? G->segs[0] : G->R;
  for (int s = 0; s < r->seg; s++) base += G->segs[s];
  int rope = (fx->rope >> r->seg) & 1u, perm = (G->perm >> r->seg) & 1u;
  LLVMValueRef cs = NULL, sn = NULL, swap = NULL, inv = NULL, rmean = NULL, rinv = NULL;
  if (fx->norm == TFX_NORM_RMS) { /* 1/rms of this row (block_begin) */
    LLVMValueRef at = tfx_cg_fptr(cg, c->rowbuf, tfx_cg_addc(cg, tfx_cg_mulc(cg, r->i, 2), 1));
    inv = tfx_cg_splat(cg, tfx_cg_loadf(cg, at));
  }
  if (fx->rnorm) { /* the residual row's (mean, 1/std) (block_begin) */
    LLVMValueRef at = tfx_cg_fptr(cg, c->rowbuf, tfx_cg_mulc(cg, r->i, 2));
    rmean = tfx_cg_splat(cg, tfx_cg_loadf(cg, at));
    rinv = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptrc(cg, at, 1)));
  }
  LLVMValueRef final[TFX_CG_LIN_NB];
  if (rope) {
    cs = tfx_cg_alloca_array(cg, cg->t_f32, TFX_CG_LIN_NB + 16, "rope_cos");
    sn = tfx_cg_alloca_array(cg, cg->t_f32, TFX_CG_LIN_NB + 16, "rope_sin");
    LLVMValueRef lanes[64];
    for (int l = 0; l < cg->W; l++) lanes[l] = tfx_cg_i32(cg, l ^ 1);
    swap = LLVMConstVector(lanes, (unsigned)cg->W);
    rope_factors(cg, c, r->row, r->col, r->nb, cs, sn);
  }
  for (int g = 0; g < r->ngrp; g++) {
    int lanes = tfx_cg_row_lanes(cg, r, g);
    LLVMValueRef col = tfx_cg_addc(cg, r->col, (int64_t)g * cg->W);
    LLVMValueRef v = r->acc[g], u = G->glu ? r->up[g] : NULL;
    if (inv) {
      v = LLVMBuildFMul(b, v, inv, "");
      if (u) u = LLVMBuildFMul(b, u, inv, "");
    }
    if (G->bias && perm) {
      v = LLVMBuildFAdd(b, v, gather(cg, G, tfx_cg_fptrc(cg, G->bias, base), col, lanes), "");
    } else if (G->bias) {
      v = LLVMBuildFAdd(b, v, tfx_cg_vload(cg, tfx_cg_fptr(cg, G->bias, tfx_cg_addc(cg, col, base)), lanes), "");
      if (u) u = LLVMBuildFAdd(b, u, tfx_cg_vload(cg, tfx_cg_fptr(cg, G->bias, tfx_cg_addc(cg, col, N)), lanes), "");
    }
    if (rope) {
      LLVMValueRef cv = tfx_cg_vload(cg, tfx_cg_fptrc(cg, cs, (int64_t)g * cg->W), lanes);
      LLVMValueRef sv = tfx_cg_vload(cg, tfx_cg_fptrc(cg, sn, (int64_t)g * cg->W), lanes);
      LLVMValueRef vs = LLVMBuildShuffleVector(b, v, v, swap, "");
      v = LLVMBuildFAdd(b, LLVMBuildFMul(b, v, cv, ""), LLVMBuildFMul(b, vs, sv, ""), "");
    }
    v = tfx_cg_act(cg, fx->act, v);
    if (u) v = LLVMBuildFMul(b, v, u, "");
    if (perm) {
      if (c->res) {
        LLVMValueRef rv = gather(cg, G, tfx_cg_fptr(cg, c->res, tfx_cg_mulc(cg, r->row, N)), col, lanes);
        if (rinv)
          rv = residual_norm(cg, fx->rnorm, rv, rmean, rinv, gather(cg, G, c->gain, col, lanes),
                             fx->rnorm == TFX_NORM_LAYER ? gather(cg, G, c->nbias, col, lanes) : NULL);
        v = LLVMBuildFAdd(b, v, rv, "");
      }
      scatter(cg, G, v, r->y, col, lanes);
    } else {
      if (c->res) {
        LLVMValueRef rp = tfx_cg_fptr(cg, c->res, tfx_cg_add(cg, tfx_cg_mulc(cg, r->row, N), col));
        LLVMValueRef rv = tfx_cg_vload(cg, rp, lanes);
        if (rinv)
          rv = residual_norm(cg, fx->rnorm, rv, rmean, rinv, tfx_cg_vload(cg, tfx_cg_fptr(cg, c->gain, col), lanes),
                             fx->rnorm == TFX_NORM_LAYER ? tfx_cg_vload(cg, tfx_cg_fptr(cg, c->nbias, col), lanes)
                                                         : NULL);
        v = LLVMBuildFAdd(b, v, rv, "");
      }
      tfx_cg_vstore(cg, v, tfx_cg_fptr(cg, r->y, col), lanes);
    }
    final[g] = v;
  }
  if (c->sout && r->seg == fx->stats_seg) write_parts(cg, c, r, final);
}

static const tfx_cg_gemm_hooks fl_hooks = {fl_block_begin, fl_row_begin, fl_x_load, fl_epilogue};

int tfx_cg_emit_fused_linear(tfx_cg *cg, const tfx_node *n) {
  const tfx_graph *g = cg->g;
  const tfx_fused *fx = &n->fx;
  const tfx_node *x = &g->nodes[n->inputs[0]], *w = &g->nodes[n->inputs[1]];
  int64_t K = w->type.dims[1], R = w->type.dims[0], m_per_t, m_fixed;
  tfx_cg_rows_split(x, &m_per_t, &m_fixed);
  int packed = w->op == TFX_OP_PARAM && w->fx.panel > 0;
  /* the prologue's statistics: a plain NORM_STATS, or partials written by
   * the epilogue of x's producer (groups of TFX_STATS_GROUP columns) */
  int rn = fx->rnorm != TFX_NORM_NONE; /* the stats normalize the residual (no prologue) */
  int st = tfx_fl_operand(n, rn ? TFX_FL_RSTATS : TFX_FL_STATS), sout = -1;
  const tfx_node *snode = st >= 0 ? &g->nodes[n->inputs[st]] : NULL;
  int64_t nlen = rn ? tfx_node_cols(n) : K; /* columns the statistics describe */
  int64_t parts = snode && snode->fx.index == 1 ? (nlen + TFX_STATS_GROUP - 1) / TFX_STATS_GROUP : 0;
  if (fx->stats_out && (sout = tfx_fl_stats_node(g, n->id)) < 0)
    return tfx_cg_fail(cg, "backend: %%%d (fused_linear): writes statistics no norm_stats reads", n->id);
  if (w->op != TFX_OP_PARAM)
    return tfx_cg_fail(cg, "backend: %%%d (fused_linear): the weight %%%d (%s) is not a parameter", n->id, w->id,
                       tfx_op_name(w->op));
  if (packed && (w->fx.panel != cg->tgt->pack.panel || w->fx.kc != cg->tgt->pack.kc))
    return tfx_cg_fail(cg,
                       "backend: %%%d (fused_linear): packed layout panel%dx%d is not the target's (panel%dx%d: "
                       "pass tfx_backend_pack_layout to the passes)",
                       n->id, w->fx.panel, w->fx.kc, cg->tgt->pack.panel, cg->tgt->pack.kc);
  tfx_cg_gemm G = {.n = n,
                   .K = K,
                   .R = R,
                   .packed = packed,
                   .prologue = fx->norm != TFX_NORM_NONE,
                   .glu = fx->glu,
                   .planar = tfx_fl_planar(n),
                   .n_segs = fx->n_segs,
                   .hooks = &fl_hooks};
  G.kc = 16 > cg->W ? 16 : cg->W; /* the row-major tiles' chunk */
  G.perm = tfx_fl_perm(n);        /* half-split RoPE: columns computed in pair order */
  G.perm_hd = n->head_dim;
  G.perm_rd = n->rotary_dim;
  G.aq = tfx_node_act_quant(g, n); /* int8 dot products (k_linear_q8.c) */
  /* decode of one row with small packed f32 weights: fully unrolled (k_linear.c emit_unrolled) */
  G.unroll = cg->decode && m_per_t == 1 && packed && !G.aq && tfx_fl_unrolled(g, n);
  for (int s = 0; s < fx->n_segs; s++) G.segs[s] = fx->segs[s];

  char key[384], segs[64] = "";
  for (int s = 0; s < fx->n_segs; s++)
    snprintf(segs + strlen(segs), sizeof segs - strlen(segs), "_%lld", (long long)fx->segs[s]);
  tfx_cg_ptr ptrs[TFX_CG_BODY_PTRS] = {TFX_CG_NONE};
  /* a residual norm takes the prologue's pointers (they never combine) */
  tfx_fl_role roles[7] = {TFX_FL_X, TFX_FL_W, TFX_FL_BIAS, TFX_FL_STATS, TFX_FL_GAIN, TFX_FL_NBIAS, TFX_FL_RESIDUAL};
  if (rn) roles[3] = TFX_FL_RSTATS, roles[4] = TFX_FL_RGAIN, roles[5] = TFX_FL_RNBIAS;
  for (int i = 0; i < 7; i++) {
    int op = tfx_fl_operand(n, roles[i]);
    ptrs[i] = op >= 0 ? TFX_CG_VAL(n->inputs[op]) : TFX_CG_NONE;
  }
  ptrs[7] = TFX_CG_VAL(n->id);
  ptrs[8] = sout >= 0 ? TFX_CG_VAL(sout) : TFX_CG_NONE;
  /* an int8 linear over many rows: its rows quantized by a kernel of their own first */
  int staged = G.aq && tfx_cg_q8_staged(cg, n);
  if (staged) ptrs[9] = TFX_CG_ARENAAT(n->work_offset);
  for (int stage = staged ? TFX_CG_Q8_QUANT : TFX_CG_Q8_ONE; stage <= (staged ? TFX_CG_Q8_GEMM : TFX_CG_Q8_ONE);
       stage++) {
    static const char *const stage_keys[3] = {"", "_q8rows", "_q8gemm"};
    snprintf(
        key, sizeof key,
        "fl_K%lld_s%s_M%s%lld_n%d_b%d_a%d_g%d_r%d_rn%d_p%d_kc%d_rope%u_%d_%d_%d_%.17g_so%d_%d_pt%lld_%.17g%s%s%s%s",
        (long long)K, segs, m_per_t ? "T" : "", (long long)(m_per_t ? m_per_t : m_fixed), fx->norm, fx->has_bias,
        fx->act, fx->glu, fx->residual, fx->rnorm, packed, G.kc, fx->rope, fx->rope ? n->head_dim : 0,
        fx->rope ? n->rotary_dim : 0, fx->rope ? (int)n->rope_style : 0, fx->rope ? n->theta : 0.0, fx->stats_out,
        fx->stats_seg, (long long)parts, parts ? snode->eps : 0.0, tfx_cg_ws_key(w), G.aq ? "_aq" : "",
        stage_keys[stage], G.unroll ? "_unrolled" : "");
    int fresh = tfx_cg_body_begin_node(cg, n, key);
    if (fresh < 0) return -1;
    if (fresh) {
      fl_ctx c = {.n = n, .norm = rn ? fx->rnorm : fx->norm};
      G.ctx = &c;
      G.q8_stage = stage;
      G.work = stage ? tfx_cg_body_ptr(cg, 9) : NULL;
      G.x = tfx_cg_body_ptr(cg, 0);
      G.w = tfx_cg_body_ptr(cg, 1);
      G.bias = fx->has_bias ? tfx_cg_body_ptr(cg, 2) : NULL;
      c.stats = tfx_cg_body_ptr(cg, 3);
      c.gain = tfx_cg_body_ptr(cg, 4);
      c.nbias = tfx_cg_body_ptr(cg, 5);
      c.res = fx->residual ? tfx_cg_body_ptr(cg, 6) : NULL;
      G.y = tfx_cg_body_ptr(cg, 7);
      G.M = tfx_cg_rows(cg, x);
      c.K = nlen;
      c.snode = snode;
      c.parts = parts;
      if (c.norm) c.rowbuf = tfx_cg_alloca_array(cg, cg->t_f32, 2 * TFX_CG_GEMM_MAX_MR, "rowstats");
      if (fx->stats_out) {
        c.sout = tfx_cg_body_ptr(cg, 8);
        c.sout_groups = (tfx_stats_cols(n) + TFX_STATS_GROUP - 1) / TFX_STATS_GROUP;
      }
      if (fx->rope && !(c.inv_freq = tfx_cg_rope_table(cg, n->theta, n->rotary_dim))) return -1;
      tfx_cg_gemm_emit(cg, &G);
      tfx_cg_body_end(cg);
    }
    tfx_cg_gemm_kernel_call(cg, &G, stage, ptrs);
  }
  return 0;
}

/* ---- NORM_STATS ---- */

typedef struct {
  LLVMValueRef x, acc, mean;
  int centred;
} stats_ctx;

static void stats_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  stats_ctx *c = vctx;
  LLVMValueRef v = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col), nvalid);
  LLVMValueRef acc = LLVMBuildLoad2(cg->b, cg->t_vf, c->acc, "");
  if (c->mean) {
    v = LLVMBuildFSub(cg->b, v, c->mean, "");
    if (nvalid < cg->W) v = LLVMBuildSelect(cg->b, tfx_cg_mask_const(cg, nvalid), v, LLVMConstNull(cg->t_vf), "");
  }
  acc = c->centred ? tfx_cg_fma(cg, v, v, acc) : LLVMBuildFAdd(cg->b, acc, v, "");
  LLVMBuildStore(cg->b, acc, c->acc);
}

static LLVMValueRef row_sum(tfx_cg *cg, stats_ctx *c, int64_t cols) {
  LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), c->acc);
  tfx_cg_chunks(cg, cols, stats_chunk, c);
  return tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, c->acc, ""));
}

void tfx_cg_stats_part(tfx_cg *cg, LLVMValueRef src, int64_t cols, int layer, LLVMValueRef dst) {
  LLVMBuilderRef b = cg->b;
  stats_ctx c = {.acc = tfx_cg_alloca(cg, cg->t_vf, "pacc"), .x = src};
  LLVMValueRef fcols = LLVMConstReal(cg->t_f32, (double)cols), mean = NULL;
  if (layer) {
    mean = LLVMBuildFDiv(b, row_sum(cg, &c, cols), fcols, "pmean");
    c.mean = tfx_cg_splat(cg, mean);
  }
  c.centred = 1;
  LLVMValueRef ss = row_sum(cg, &c, cols);
  tfx_cg_storef(cg, layer ? mean : ss, dst);
  tfx_cg_storef(cg, layer ? ss : LLVMConstReal(cg->t_f32, 0.0), tfx_cg_fptrc(cg, dst, 1));
}

int tfx_cg_emit_norm_stats(tfx_cg *cg, const tfx_node *n) {
  if (n->fx.index == 1) return 0; /* written by its input's kernel (stats_out) */
  const tfx_node *x = &cg->g->nodes[n->inputs[0]];
  int64_t cols = tfx_node_cols(x), per_t, fixed;
  int layer = n->fx.norm == TFX_NORM_LAYER;
  tfx_cg_rows_split(x, &per_t, &fixed);
  char key[96];
  snprintf(key, sizeof key, "norm_stats_c%lld_l%d_eps%.17g", (long long)cols, layer, n->eps);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef px = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    stats_ctx c = {.acc = tfx_cg_alloca(cg, cg->t_vf, "acc")};
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    c.x = tfx_cg_fptr(cg, px, tfx_cg_mulc(cg, row.iv, cols));
    LLVMValueRef fcols = LLVMConstReal(cg->t_f32, (double)cols), mean = LLVMConstReal(cg->t_f32, 0.0);
    if (layer) {
      c.centred = 0;
      mean = LLVMBuildFDiv(b, row_sum(cg, &c, cols), fcols, "mean");
      c.mean = tfx_cg_splat(cg, mean);
    }
    c.centred = 1;
    LLVMValueRef var = LLVMBuildFDiv(b, row_sum(cg, &c, cols), fcols, "");
    var = LLVMBuildFAdd(b, var, LLVMConstReal(cg->t_f32, (float)n->eps), "");
    LLVMValueRef inv = LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), tfx_cg_sqrt(cg, var), "inv");
    LLVMValueRef out = tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, 2));
    tfx_cg_storef(cg, mean, out);
    tfx_cg_storef(cg, inv, tfx_cg_fptrc(cg, out, 1));
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(x->id), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}
