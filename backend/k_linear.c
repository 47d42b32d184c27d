/* backend/k_linear.c — the GEMM y[M, N] = x[M, K] @ w[N, K]^T behind LINEAR
 * and FUSED_LINEAR (k_fused_linear.c), and the LINEAR kernel itself.
 * Work items are panels of TFX_CG_LIN_NB = 32 weight rows (output columns) of
 * one segment, so each weight row is streamed by exactly one item.
 * Packed weights (pack_weights: k-major panels) run the register-blocked
 * micro-kernel of k_microkernel.c: rows of x in blocks of its main tile
 * (12 on AVX-512), the rest in remainder tiles, one row at a time when the
 * rows are known to be few (decode). Row-major weights (a weight shared with
 * an embedding; pipelines without pack_weights) run dot-product tiles: rows of
 * x in tiles of 4 against 4 output columns (16 vector accumulators; a GLU tile
 * is 4 rows x 2 columns, each column reading its gate and up rows), leftover
 * rows a 1 x 8 tile (8 weight rows at once, 8 independent accumulators), the
 * dot products along K in chunks of kc floats with vector FMAs, then a masked
 * tail, reduced horizontally at the end of the tile (2:4 sparse s24_f32
 * weights: the kept values against gathered x, block by block,
 * k_linear_s24.c; s24_q8_0 runs the int8 path of k_linear_q8.c).
 * Either way the finished sums go to a block buffer that the epilogue reads
 * row by row. The prologue
 * hook transforms each x vector as loaded (norm), the epilogue hook consumes
 * each finished row (bias, RoPE, activation, GLU, residual, store). */
#include <stdio.h>

#include "cg.h"

#define NB TFX_CG_LIN_NB
#define MR TFX_CG_LIN_MR
#define MAX_ACC 16
#define BLK_FLOATS ((int64_t)TFX_CG_GEMM_MAX_MR * NB + 16)

static int64_t seg_base(const tfx_cg_gemm *G, int s) {
  int64_t b = 0;
  for (int i = 0; i < s; i++) b += G->segs[i];
  return b;
}

static int64_t seg_cols(const tfx_cg_gemm *G, int s) { return G->glu ? G->segs[0] : G->segs[s]; }

int64_t tfx_cg_gemm_items(const tfx_cg_gemm *G) {
  if (G->unroll) return 1;
  if (G->glu) return (G->segs[0] + NB - 1) / NB;
  int64_t items = 0;
  for (int s = 0; s < G->n_segs; s++) items += (G->segs[s] + NB - 1) / NB;
  return items;
}

void tfx_cg_gemm_kernel_call(tfx_cg *cg, const tfx_cg_gemm *G, int stage, const tfx_cg_ptr *ptrs) {
  if (stage == TFX_CG_Q8_QUANT) { /* a work item per row of x */
    int64_t per_t, fixed;
    tfx_cg_rows_split(&cg->g->nodes[G->n->inputs[0]], &per_t, &fixed);
    tfx_cg_kernel_call_n(cg, G->n, "q8rows", per_t, fixed, ptrs, TFX_CG_BODY_PTRS);
  } else {
    tfx_cg_kernel_call_n(cg, G->n, NULL, 0, tfx_cg_gemm_items(G), ptrs, TFX_CG_BODY_PTRS);
  }
}

int tfx_cg_row_lanes(const tfx_cg *cg, const tfx_cg_row *r, int g) {
  int left = r->nb - g * cg->W;
  return left < cg->W ? left : cg->W;
}

void tfx_cg_gemm_store(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_row *r) {
  int64_t base = seg_base(G, r->seg);
  for (int g = 0; g < r->ngrp; g++) {
    int lanes = tfx_cg_row_lanes(cg, r, g);
    LLVMValueRef col = tfx_cg_addc(cg, r->col, (int64_t)g * cg->W), v = r->acc[g];
    if (G->bias)
      v = LLVMBuildFAdd(cg->b, v, tfx_cg_vload(cg, tfx_cg_fptr(cg, G->bias, tfx_cg_addc(cg, col, base)), lanes), "");
    tfx_cg_vstore(cg, v, tfx_cg_fptr(cg, r->y, col), lanes);
  }
}

/* The panel being computed (cg.h). */
typedef tfx_cg_panel panel_ctx;

LLVMValueRef tfx_cg_pair_row(tfx_cg *cg, LLVMValueRef q, int hd, int rd) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef iq = LLVMBuildURem(b, q, tfx_cg_i64(cg, hd), "");
  LLVMValueRef head = tfx_cg_sub(cg, q, iq);
  LLVMValueRef half = LLVMBuildLShr(b, iq, tfx_cg_i64(cg, 1), "");
  LLVMValueRef odd = LLVMBuildTrunc(b, iq, cg->t_i1, "");
  LLVMValueRef pair = LLVMBuildSelect(b, odd, tfx_cg_addc(cg, half, rd / 2), half, "");
  LLVMValueRef in = LLVMBuildICmp(b, LLVMIntSLT, iq, tfx_cg_i64(cg, rd), "");
  return tfx_cg_add(cg, head, LLVMBuildSelect(b, in, pair, iq, ""));
}

/* Base pointers of row-major weight row `jj` of the panel whose first local
 * row is first (i64) in the segment starting at global row sb: for the full
 * chunks and for the K tail; a pair-order segment is read at the row each
 * position computes. */
static void wrow_ptrs(tfx_cg *cg, const tfx_cg_gemm *G, LLVMValueRef first, int64_t sb, int seg, int jj,
                      tfx_cg_wrow *full, tfx_cg_wrow *tail) {
  int64_t K = G->K, kf = K - K % G->kc;
  LLVMValueRef q = tfx_cg_addc(cg, first, jj);
  if (G->perm >> seg & 1u) q = tfx_cg_pair_row(cg, q, G->perm_hd, G->perm_rd);
  *full = tfx_cg_ws_row(cg, G->ws, tfx_cg_addc(cg, q, sb));
  *tail = tfx_cg_ws_row_skip(cg, G->ws, full, kf);
}

typedef struct {
  const tfx_cg_gemm *G;
  int mr, nw;
  LLVMValueRef xrow[MR];
  tfx_cg_wrow wfull[MAX_ACC], wtail[MAX_ACC]; /* weight row cursors: full chunks, K tail */
  LLVMValueRef acc[MR * MAX_ACC];
} tile_state;

/* acc[i][j] += x_i[k..] * w_j[k..] for one vector at x offset xk. */
static void fma_step(tfx_cg *cg, tile_state *t, LLVMValueRef xk, const tfx_cg_wrow *wp, LLVMValueRef woff, int nvalid) {
  const tfx_cg_gemm *G = t->G;
  LLVMValueRef xv[MR], wv[MAX_ACC];
  for (int i = 0; i < t->mr; i++) {
    xv[i] = tfx_cg_vload(cg, tfx_cg_fptr(cg, t->xrow[i], xk), nvalid);
    if (G->hooks && G->hooks->x_load) xv[i] = G->hooks->x_load(cg, G, i, xv[i], xk, nvalid);
  }
  for (int j = 0; j < t->nw; j++) wv[j] = tfx_cg_ws_row_vec(cg, G->ws, &wp[j], woff, nvalid);
  for (int i = 0; i < t->mr; i++)
    for (int j = 0; j < t->nw; j++) {
      LLVMValueRef a = t->acc[i * t->nw + j];
      LLVMBuildStore(cg->b, tfx_cg_fma(cg, xv[i], wv[j], LLVMBuildLoad2(cg->b, cg->t_vf, a, "")), a);
    }
}

/* The mr x nc tile at rows m.., panel columns c0.. (static). */
static void emit_tile(tfx_cg *cg, const tfx_cg_gemm *G, const panel_ctx *P, LLVMValueRef m, int mr, int c0, int nc) {
  tile_state t = {.G = G, .mr = mr, .nw = G->glu ? 2 * nc : nc};
  int64_t K = G->K, kf = K - K % G->kc;
  LLVMValueRef first = tfx_cg_mulc(cg, P->p, NB); /* first local row of the panel */
  for (int j = 0; j < nc; j++) {
    for (int h = 0; h < (G->glu ? 2 : 1); h++) {
      int64_t sb = G->glu ? h * G->segs[0] : seg_base(G, P->seg);
      int k = G->glu ? 2 * j + h : j;
      wrow_ptrs(cg, G, first, sb, G->glu ? h : P->seg, c0 + j, &t.wfull[k], &t.wtail[k]);
    }
  }
  for (int i = 0; i < mr; i++) {
    /* rows past the end of x (the last block of a prefill) reread the last
     * row; their results are not stored */
    LLVMValueRef row = mr > 1 ? tfx_cg_smin(cg, tfx_cg_addc(cg, m, i), tfx_cg_addc(cg, P->M, -1)) : m;
    t.xrow[i] = tfx_cg_fptr(cg, G->x, tfx_cg_mulc(cg, row, K));
    if (G->hooks && G->hooks->row_begin) G->hooks->row_begin(cg, G, i, row);
  }
  for (int k = 0; k < mr * t.nw; k++) {
    t.acc[k] = tfx_cg_alloca(cg, cg->t_vf, "acc");
    LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), t.acc[k]);
  }
  if (tfx_cg_s24_gathers(cg, G->ws)) { /* 2:4 sparse: the kept values against gathered x (k_linear_s24.c) */
    tfx_cg_s24_dots(cg, G, mr, t.xrow, t.nw, t.wfull, t.acc);
    kf = K;
  } else if (kf > 0) { /* full chunks: x and weights at k from the row bases */
    tfx_cg_loop lk;
    int loop = kf > G->kc;
    LLVMValueRef k0 = tfx_cg_i64(cg, 0);
    if (loop) {
      tfx_cg_for(cg, &lk, k0, tfx_cg_i64(cg, kf), G->kc, "k");
      k0 = lk.iv;
    }
    for (int v = 0; v < G->kc; v += cg->W)
      fma_step(cg, &t, tfx_cg_addc(cg, k0, v), t.wfull, tfx_cg_addc(cg, k0, v), cg->W);
    if (loop) tfx_cg_for_end(cg, &lk);
  }
  for (int64_t q = kf; q < K; q += cg->W) {
    int nvalid = (int)(K - q < cg->W ? K - q : cg->W);
    fma_step(cg, &t, tfx_cg_i64(cg, q), t.wtail, tfx_cg_i64(cg, q - kf), nvalid);
  }
  /* the sums go to the block buffer; the epilogue reads them back by rows */
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nc; j++) {
      int k = G->glu ? 2 * j : j;
      LLVMValueRef at = tfx_cg_fptrc(cg, P->blk, (int64_t)i * NB + c0 + j);
      tfx_cg_storef(cg, tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, t.acc[i * t.nw + k], "")), at);
      if (G->glu) {
        at = tfx_cg_fptrc(cg, P->blku, (int64_t)i * NB + c0 + j);
        tfx_cg_storef(cg, tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, t.acc[i * t.nw + k + 1], "")), at);
      }
    }
}

/* The epilogue of rows m .. m + rows - 1 of the block (one code site: a
 * loop); rows is NULL for the single row m. */
static void emit_rows(tfx_cg *cg, const tfx_cg_gemm *G, const panel_ctx *P, LLVMValueRef m, LLVMValueRef rows) {
  tfx_cg_loop li;
  LLVMValueRef i = tfx_cg_i64(cg, 0);
  if (rows) {
    tfx_cg_for(cg, &li, i, rows, 1, "erow");
    i = li.iv;
  }
  tfx_cg_row r = {.seg = P->seg, .nb = P->nb, .ngrp = (P->nb + cg->W - 1) / cg->W};
  r.row = tfx_cg_add(cg, m, i);
  r.i = i;
  r.col = tfx_cg_mulc(cg, P->p, NB);
  r.y = tfx_cg_fptr(cg, P->y, tfx_cg_mulc(cg, r.row, P->ld));
  LLVMValueRef off = tfx_cg_mulc(cg, i, NB);
  for (int g = 0; g < r.ngrp; g++) {
    int lanes = tfx_cg_row_lanes(cg, &r, g);
    LLVMValueRef at = tfx_cg_addc(cg, off, (int64_t)g * cg->W);
    r.acc[g] = tfx_cg_vload(cg, tfx_cg_fptr(cg, P->blk, at), lanes);
    if (G->glu) r.up[g] = tfx_cg_vload(cg, tfx_cg_fptr(cg, P->blku, at), lanes);
  }
  if (G->hooks && G->hooks->epilogue)
    G->hooks->epilogue(cg, G, &r);
  else
    tfx_cg_gemm_store(cg, G, &r);
  if (rows) tfx_cg_for_end(cg, &li);
}

void tfx_cg_gemm_rows(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_panel *P, LLVMValueRef m, LLVMValueRef rows) {
  emit_rows(cg, G, P, m, rows);
}

/* Packed weights: the micro-kernel's tiles over the panel's columns for
 * rows m .. m + mr - 1. */
static void mk_block(tfx_cg *cg, const tfx_cg_gemm *G, const panel_ctx *P, const tfx_cg_mk_shape *sh, LLVMValueRef m,
                     int mr, int clamp) {
  if (G->hooks && G->hooks->block_begin) G->hooks->block_begin(cg, G, m, mr);
  int64_t sb = G->glu ? 0 : seg_base(G, P->seg);
  tfx_cg_mk_tile t = {.pr = P->nb, .m = m, .mr = mr, .clamp = clamp, .blk = P->blk, .blku = P->blku};
  t.gate = tfx_cg_ws_panel(cg, G->ws, P->p, sb, P->nb); /* the panel width is the weight's fx.panel */
  if (G->glu) t.up = tfx_cg_ws_panel(cg, G->ws, P->p, G->segs[0], P->nb);
  for (t.c0 = 0; t.c0 < P->nb; t.c0 += sh->cols) {
    t.nc = P->nb - t.c0 < sh->cols ? P->nb - t.c0 : sh->cols;
    tfx_cg_mk_emit_tile(cg, G, &t);
  }
}

static void emit_panel_packed(tfx_cg *cg, const tfx_cg_gemm *G, panel_ctx *P) {
  tfx_cg_mk_shape sh = tfx_cg_mk_shape_for(cg, G->glu);
  tfx_cg_loop lm;
  if (LLVMIsAConstantInt(P->M) && LLVMConstIntGetSExtValue(P->M) < sh.mr) { /* decode: one row at a time */
    tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), P->M, 1, "m1");
    mk_block(cg, G, P, &sh, lm.iv, 1, 0);
    emit_rows(cg, G, P, lm.iv, NULL);
    tfx_cg_for_end(cg, &lm);
    return;
  }
  /* whole tiles of sh.mr rows, then remainder tiles of sh.mr_rem (clamped) */
  tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), tfx_cg_addc(cg, P->M, 1 - sh.mr), sh.mr, "m");
  mk_block(cg, G, P, &sh, lm.iv, sh.mr, 0);
  emit_rows(cg, G, P, lm.iv, tfx_cg_i64(cg, sh.mr));
  tfx_cg_for_end(cg, &lm);
  LLVMValueRef done = tfx_cg_mulc(cg, LLVMBuildSDiv(cg->b, P->M, tfx_cg_i64(cg, sh.mr), ""), sh.mr);
  tfx_cg_for(cg, &lm, done, P->M, sh.mr_rem, "mrem");
  mk_block(cg, G, P, &sh, lm.iv, sh.mr_rem, 1);
  emit_rows(cg, G, P, lm.iv, tfx_cg_smin(cg, tfx_cg_i64(cg, sh.mr_rem), tfx_cg_sub(cg, P->M, lm.iv)));
  tfx_cg_for_end(cg, &lm);
}

/* All rows of x against one panel of nb (static) rows. */
static void emit_panel(tfx_cg *cg, const tfx_cg_gemm *G, panel_ctx *P, int nb) {
  P->nb = nb;
  if (G->aq) { /* int8-block weights: int8 dot products (k_linear_q8.c) */
    tfx_cg_q8_panel(cg, G, P);
    return;
  }
  if (G->packed) {
    emit_panel_packed(cg, G, P);
    return;
  }
  int ncf = G->glu ? 2 : 4; /* columns of a full-row tile: 16 accumulators */
  int nc1 = G->glu ? 4 : 8; /* columns of a one-row tile: 8 weight rows */
  /* rows known to be fewer than a block (the decode entry): one row at a
   * time, 1 x 8 tiles; otherwise blocks of MR rows, the last one partial */
  int few = LLVMIsAConstantInt(P->M) && LLVMConstIntGetSExtValue(P->M) < MR;
  tfx_cg_loop lm;
  if (few) {
    tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), P->M, 1, "m1");
    if (G->hooks && G->hooks->block_begin) G->hooks->block_begin(cg, G, lm.iv, 1);
    for (int c0 = 0; c0 < nb; c0 += nc1) emit_tile(cg, G, P, lm.iv, 1, c0, nb - c0 < nc1 ? nb - c0 : nc1);
    emit_rows(cg, G, P, lm.iv, NULL);
  } else {
    tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), P->M, MR, "m");
    if (G->hooks && G->hooks->block_begin) G->hooks->block_begin(cg, G, lm.iv, MR);
    for (int c0 = 0; c0 < nb; c0 += ncf) emit_tile(cg, G, P, lm.iv, MR, c0, nb - c0 < ncf ? nb - c0 : ncf);
    emit_rows(cg, G, P, lm.iv, tfx_cg_smin(cg, tfx_cg_i64(cg, MR), tfx_cg_sub(cg, P->M, lm.iv)));
  }
  tfx_cg_for_end(cg, &lm);
}

/* Segment s, panel p (i64): full panels of NB rows and the last, shorter one. */
static void emit_segment(tfx_cg *cg, const tfx_cg_gemm *G, int s, LLVMValueRef p) {
  int64_t rows = seg_cols(G, s), full = rows / NB;
  int part = (int)(rows % NB);
  panel_ctx P = {.seg = s, .p = p, .M = G->M};
  P.blk = tfx_cg_alloca_array(cg, cg->t_f32, BLK_FLOATS, "blk");
  if (G->glu) P.blku = tfx_cg_alloca_array(cg, cg->t_f32, BLK_FLOATS, "blku");
  if (G->planar) {
    P.y = tfx_cg_fptr(cg, G->y, tfx_cg_mulc(cg, G->M, seg_base(G, s)));
    P.ld = G->segs[s];
  } else {
    P.y = G->y;
    P.ld = G->glu ? G->segs[0] : G->R;
  }
  if (!part) {
    emit_panel(cg, G, &P, NB);
  } else if (full == 0) {
    emit_panel(cg, G, &P, part);
  } else {
    tfx_cg_if c;
    tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, p, tfx_cg_i64(cg, full), ""), "full");
    emit_panel(cg, G, &P, NB);
    tfx_cg_if_else(cg, &c);
    emit_panel(cg, G, &P, part);
    tfx_cg_if_end(cg, &c);
  }
}

/* item -> (segment, panel): a chain of ifs over the segments' item ranges */
static void emit_segments(tfx_cg *cg, const tfx_cg_gemm *G, LLVMValueRef item, int s, int64_t start) {
  int ns = G->glu ? 1 : G->n_segs;
  LLVMValueRef p = tfx_cg_addc(cg, item, -start);
  if (s == ns - 1) {
    emit_segment(cg, G, s, p);
    return;
  }
  int64_t items = (seg_cols(G, s) + NB - 1) / NB;
  tfx_cg_if c;
  tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, item, tfx_cg_i64(cg, start + items), ""), "seg");
  emit_segment(cg, G, s, p);
  tfx_cg_if_else(cg, &c);
  emit_segments(cg, G, item, s + 1, start + items);
  tfx_cg_if_end(cg, &c);
}

void tfx_cg_gemm_items_emit(tfx_cg *cg, const tfx_cg_gemm *G) {
  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
  emit_segments(cg, G, it.iv, 0, 0);
  tfx_cg_for_end(cg, &it);
}

/* One row, fully unrolled (G->unroll: tfx_fl_unrolled; the decode of small
 * models): one work item computes every panel of every segment in
 * straight-line code. The row's statistics are read once (block_begin), x
 * goes through the prologue once into the micro-kernel's buffer (volatile
 * stores: the buffer stays in memory, so each k is one broadcast load
 * rather than a lane shuffle), then each panel runs the micro-kernel's one-
 * row tile with its K steps unrolled (constant offsets into the packed
 * panel: no loop, no address arithmetic) and hands the accumulators straight
 * to the epilogue (no block buffer round trip). */
/* Panel p (static) of nb columns of segment s, its epilogue included
 * (the fully unrolled decode below). */
static void unrolled_panel(tfx_cg *cg, const tfx_cg_gemm *G, int s, int64_t p, int nb, LLVMValueRef y) {
  LLVMValueRef zero = tfx_cg_i64(cg, 0), pv = tfx_cg_i64(cg, p);
  tfx_cg_mk_shape sh = tfx_cg_mk_shape_for(cg, G->glu);
  tfx_cg_row r = {.seg = s, .nb = nb, .ngrp = (nb + cg->W - 1) / cg->W, .row = zero, .i = zero, .y = y};
  r.col = tfx_cg_i64(cg, p * NB);
  tfx_cg_mk_tile t = {.pr = nb, .m = zero, .mr = 1, .xbuf = cg->mk_abuf, .unroll = 1};
  t.gate = tfx_cg_ws_panel(cg, G->ws, pv, G->glu ? 0 : seg_base(G, s), nb);
  if (G->glu) t.up = tfx_cg_ws_panel(cg, G->ws, pv, G->segs[0], nb);
  for (t.c0 = 0; t.c0 < nb; t.c0 += sh.cols) {
    LLVMValueRef out[8]; /* a tile has at most 2 vectors of gate (and of up) columns */
    t.nc = nb - t.c0 < sh.cols ? nb - t.c0 : sh.cols;
    t.out = out;
    tfx_cg_mk_emit_tile(cg, G, &t);
    int nvec = (t.nc + cg->W - 1) / cg->W, g0 = t.c0 / cg->W;
    for (int v = 0; v < nvec; v++) {
      r.acc[g0 + v] = out[v];
      if (G->glu) r.up[g0 + v] = out[nvec + v];
    }
  }
  if (G->hooks && G->hooks->epilogue)
    G->hooks->epilogue(cg, G, &r);
  else
    tfx_cg_gemm_store(cg, G, &r);
}

/* One row, fully unrolled (G->unroll: tfx_fl_unrolled, schedule { unroll =
 * on }): one work item computes every panel of every segment in
 * straight-line code. The row's statistics are read once (block_begin), x
 * goes through the prologue once into the micro-kernel's buffer (volatile
 * stores: the buffer stays in memory, so each k is one broadcast load
 * rather than a lane shuffle), then each panel runs the micro-kernel's
 * one-row tile with its K steps unrolled (constant offsets into the packed
 * panel: no loop, no address arithmetic) and hands the accumulators
 * straight to the epilogue (no block buffer round trip). Measured slower
 * than the looped micro-kernel on stories260K (docs/performance.md): not
 * chosen by auto. */
static void emit_unrolled(tfx_cg *cg, const tfx_cg_gemm *G) {
  LLVMValueRef zero = tfx_cg_i64(cg, 0);
  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item"); /* the one item */
  if (G->hooks && G->hooks->block_begin) G->hooks->block_begin(cg, G, zero, 1);
  if (G->hooks && G->hooks->row_begin) G->hooks->row_begin(cg, G, 0, zero);
  if (!cg->mk_abuf)
    cg->mk_abuf = tfx_cg_alloca_array(cg, cg->t_f32, (int64_t)TFX_CG_GEMM_MAX_MR * (TFX_CG_MK_KC + 16), "mk_x");
  for (int64_t k = 0; k < G->K; k += cg->W) {
    int nvalid = (int)(G->K - k < cg->W ? G->K - k : cg->W);
    LLVMValueRef kk = tfx_cg_i64(cg, k), xv = tfx_cg_vload(cg, tfx_cg_fptr(cg, G->x, kk), nvalid);
    if (G->prologue && G->hooks && G->hooks->x_load) xv = G->hooks->x_load(cg, G, 0, xv, kk, nvalid);
    LLVMValueRef st = LLVMBuildStore(cg->b, xv, tfx_cg_fptr(cg, cg->mk_abuf, kk)); /* lanes past nvalid are 0 */
    LLVMSetAlignment(st, 4);
    LLVMSetVolatile(st, 1);
  }
  for (int s = 0; s < (G->glu ? 1 : G->n_segs); s++) {
    int64_t rows = seg_cols(G, s);
    LLVMValueRef y = G->planar ? tfx_cg_fptr(cg, G->y, tfx_cg_mulc(cg, G->M, seg_base(G, s))) : G->y;
    for (int64_t p = 0; p * NB < rows; p++)
      unrolled_panel(cg, G, s, p, (int)(rows - p * NB < NB ? rows - p * NB : NB), y);
  }
  tfx_cg_for_end(cg, &it);
}

void tfx_cg_gemm_emit(tfx_cg *cg, const tfx_cg_gemm *G0) {
  if (G0->aq) { /* the int8 path reads the blocks itself, its rows quantized once per call (k_linear_q8.c) */
    tfx_cg_q8_emit(cg, G0);
    return;
  }
  tfx_cg_wstream ws; /* the weight (operand 1 of LINEAR and FUSED_LINEAR) */
  tfx_cg_gemm G = *G0;
  tfx_cg_ws_init(cg, &ws, &cg->g->nodes[G0->n->inputs[1]], G0->w);
  G.ws = &ws;
  if (G.unroll)
    emit_unrolled(cg, &G);
  else
    tfx_cg_gemm_items_emit(cg, &G);
}

int tfx_cg_emit_linear(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *x = &cg->g->nodes[n->inputs[0]];
  const tfx_node *w = &cg->g->nodes[n->inputs[1]];
  int64_t N = w->type.dims[0], K = w->type.dims[1], m_per_t, m_fixed;
  int bias = n->n_inputs > 2;
  tfx_cg_rows_split(x, &m_per_t, &m_fixed);
  tfx_cg_gemm G = {.n = n, .K = K, .R = N, .kc = 16 > cg->W ? 16 : cg->W, .n_segs = 1, .segs = {N}};
  G.aq = tfx_node_act_quant(cg->g, n);
  tfx_cg_ptr ptrs[TFX_CG_BODY_PTRS] = {TFX_CG_VAL(x->id), TFX_CG_VAL(w->id),
                                       bias ? TFX_CG_VAL(n->inputs[2]) : TFX_CG_NONE, TFX_CG_VAL(n->id)};
  for (int i = 4; i < TFX_CG_BODY_PTRS; i++) ptrs[i] = TFX_CG_NONE;
  /* an int8 linear over many rows: its rows quantized by a kernel of their own first */
  int staged = G.aq && tfx_cg_q8_staged(cg, n);
  if (staged) ptrs[9] = TFX_CG_ARENAAT(n->work_offset);
  for (int stage = staged ? TFX_CG_Q8_QUANT : TFX_CG_Q8_ONE; stage <= (staged ? TFX_CG_Q8_GEMM : TFX_CG_Q8_ONE);
       stage++) {
    static const char *const stage_keys[3] = {"", "_q8rows", "_q8gemm"};
    char key[192];
    snprintf(key, sizeof key, "linear_K%lld_N%lld_b%d_M%s%lld%s%s%s", (long long)K, (long long)N, bias,
             m_per_t ? "T" : "", (long long)(m_per_t ? m_per_t : m_fixed), tfx_cg_ws_key(w), G.aq ? "_aq" : "",
             stage_keys[stage]);
    int fresh = tfx_cg_body_begin_node(cg, n, key);
    if (fresh < 0) return -1;
    if (fresh) {
      G.q8_stage = stage;
      G.work = stage ? tfx_cg_body_ptr(cg, 9) : NULL;
      G.x = tfx_cg_body_ptr(cg, 0);
      G.w = tfx_cg_body_ptr(cg, 1);
      G.bias = bias ? tfx_cg_body_ptr(cg, 2) : NULL;
      G.y = tfx_cg_body_ptr(cg, 3);
      G.M = tfx_cg_rows(cg, x);
      tfx_cg_gemm_emit(cg, &G);
      tfx_cg_body_end(cg);
    }
    tfx_cg_gemm_kernel_call(cg, &G, stage, ptrs);
  }
  return 0;
}
