/* backend/k_linear.c — the LINEAR kernel y[M, N] = x[M, K] @ w[N, K]^T (+ b).
 * Work items are blocks of NB = 8 output columns (rows of w), so each weight
 * row is streamed by exactly one item. Inside an item, rows of x go in tiles
 * of 4 against two 4-column halves (16 vector accumulators: several tokens per
 * weight row block for prefill); leftover rows use a 1 x 8 tile (the decode
 * matvec: 8 weight rows at once, 8 independent accumulators). The dot
 * products run along K in vectors of W with a masked tail and llvm.fma, and
 * are reduced horizontally at the end of the tile. */
#include <stdio.h>

#include "cg.h"

#define LIN_NB 8
#define LIN_MR 4
#define LIN_MAX_ACC 32

typedef struct {
  LLVMValueRef x, w, bias, y; /* base pointers */
  int64_t K, N;
} lin_op;

typedef struct {
  int mr, nr;
  LLVMValueRef xrow[LIN_MR], wrow[LIN_NB];
  LLVMValueRef acc[LIN_MAX_ACC]; /* allocas, [i * nr + j] */
} tile_ctx;

static void tile_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  tile_ctx *t = vctx;
  LLVMValueRef xv[LIN_MR], wv[LIN_NB];
  for (int i = 0; i < t->mr; i++) xv[i] = tfx_cg_vload(cg, tfx_cg_fptr(cg, t->xrow[i], col), nvalid);
  for (int j = 0; j < t->nr; j++) wv[j] = tfx_cg_vload(cg, tfx_cg_fptr(cg, t->wrow[j], col), nvalid);
  for (int i = 0; i < t->mr; i++)
    for (int j = 0; j < t->nr; j++) {
      LLVMValueRef a = t->acc[i * t->nr + j];
      LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, a, "");
      LLVMBuildStore(cg->b, tfx_cg_fma(cg, xv[i], wv[j], v), a);
    }
}

/* The mr x nr block of y at rows m.., columns n0.. */
static void emit_tile(tfx_cg *cg, const lin_op *L, LLVMValueRef m, LLVMValueRef n0, int mr, int nr) {
  tile_ctx t = {.mr = mr, .nr = nr};
  for (int i = 0; i < mr; i++) t.xrow[i] = tfx_cg_fptr(cg, L->x, tfx_cg_mulc(cg, tfx_cg_addc(cg, m, i), L->K));
  for (int j = 0; j < nr; j++) t.wrow[j] = tfx_cg_fptr(cg, L->w, tfx_cg_mulc(cg, tfx_cg_addc(cg, n0, j), L->K));
  for (int k = 0; k < mr * nr; k++) {
    t.acc[k] = tfx_cg_alloca(cg, cg->t_vf, "acc");
    LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), t.acc[k]);
  }
  tfx_cg_chunks(cg, L->K, tile_chunk, &t);
  for (int i = 0; i < mr; i++) {
    LLVMValueRef yrow = tfx_cg_fptr(cg, L->y, tfx_cg_mulc(cg, tfx_cg_addc(cg, m, i), L->N));
    for (int j = 0; j < nr; j++) {
      LLVMValueRef s = tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, t.acc[i * nr + j], ""));
      LLVMValueRef col = tfx_cg_addc(cg, n0, j);
      if (L->bias) s = LLVMBuildFAdd(cg->b, s, tfx_cg_loadf(cg, tfx_cg_fptr(cg, L->bias, col)), "");
      tfx_cg_storef(cg, s, tfx_cg_fptr(cg, yrow, col));
    }
  }
}

/* All rows of x against nb (<= NB) columns starting at n0. */
static void emit_block(tfx_cg *cg, const lin_op *L, LLVMValueRef M, LLVMValueRef n0, int nb) {
  LLVMValueRef m4 = LLVMBuildAnd(cg->b, M, tfx_cg_i64(cg, ~(int64_t)(LIN_MR - 1)), "m4");
  tfx_cg_loop lm;
  tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), m4, LIN_MR, "m");
  for (int j0 = 0; j0 < nb; j0 += 4)
    emit_tile(cg, L, lm.iv, tfx_cg_addc(cg, n0, j0), LIN_MR, nb - j0 < 4 ? nb - j0 : 4);
  tfx_cg_for_end(cg, &lm);
  tfx_cg_loop l1;
  tfx_cg_for(cg, &l1, m4, M, 1, "mtail");
  emit_tile(cg, L, l1.iv, n0, 1, nb);
  tfx_cg_for_end(cg, &l1);
}

int tfx_cg_emit_linear(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *x = &cg->g->nodes[n->inputs[0]];
  const tfx_node *w = &cg->g->nodes[n->inputs[1]];
  int64_t N = w->type.dims[0], K = w->type.dims[1];
  int64_t items = (N + LIN_NB - 1) / LIN_NB, full = N / LIN_NB, m_per_t, m_fixed;
  int part = (int)(N % LIN_NB), bias = n->n_inputs > 2;
  tfx_cg_rows_split(x, &m_per_t, &m_fixed);
  char key[128];
  snprintf(key, sizeof key, "linear_K%lld_N%lld_b%d_M%s%lld", (long long)K, (long long)N, bias, m_per_t ? "T" : "",
           (long long)(m_per_t ? m_per_t : m_fixed));
  int fresh = tfx_cg_body_begin(cg, key);
  if (fresh < 0) return -1;
  if (fresh) {
    lin_op L = {tfx_cg_body_ptr(cg, 0),
                tfx_cg_body_ptr(cg, 1),
                bias ? tfx_cg_body_ptr(cg, 2) : NULL,
                tfx_cg_body_ptr(cg, 3),
                K,
                N};
    LLVMValueRef M = tfx_cg_rows(cg, x);
    tfx_cg_loop it;
    tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
    LLVMValueRef n0 = tfx_cg_mulc(cg, it.iv, LIN_NB);
    if (!part) {
      emit_block(cg, &L, M, n0, LIN_NB);
    } else if (full == 0) {
      emit_block(cg, &L, M, n0, part);
    } else {
      tfx_cg_if c;
      tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, it.iv, tfx_cg_i64(cg, full), ""), "full");
      emit_block(cg, &L, M, n0, LIN_NB);
      tfx_cg_if_else(cg, &c);
      emit_block(cg, &L, M, n0, part);
      tfx_cg_if_end(cg, &c);
    }
    tfx_cg_for_end(cg, &it);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, 0, items,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(x->id), TFX_CG_VAL(w->id),
                                     bias ? TFX_CG_VAL(n->inputs[2]) : TFX_CG_NONE, TFX_CG_VAL(n->id)});
  return 0;
}
