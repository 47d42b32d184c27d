/* backend/k_norm.c — RMSNORM and LAYERNORM kernels. Work items are rows;
 * each row is reduced with vector accumulators (masked tails read as 0 and are
 * masked out of centred sums), then scaled by the gain (and shifted by the
 * bias) in vectors. LayerNorm uses the biased variance of the centred row.
 * tfx_cg_norm_row is the same row code for the embedding kernel's norm. */
#include <stdio.h>

#include "cg.h"

typedef struct {
  LLVMValueRef x, y, g, b; /* row of x and y, gain, bias */
  LLVMValueRef acc;        /* alloca <W x float> */
  LLVMValueRef mean, inv;  /* splats */
  int pass;
} norm_ctx;

enum { PASS_SUMSQ, PASS_SUM, PASS_VAR, PASS_RMS_OUT, PASS_LN_OUT };

static void norm_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  norm_ctx *c = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef v = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col), nvalid);
  switch (c->pass) {
  case PASS_SUMSQ:
  case PASS_SUM:
  case PASS_VAR: {
    LLVMValueRef acc = LLVMBuildLoad2(b, cg->t_vf, c->acc, "");
    if (c->pass == PASS_SUMSQ) {
      acc = tfx_cg_fma(cg, v, v, acc);
    } else if (c->pass == PASS_SUM) {
      acc = LLVMBuildFAdd(b, acc, v, "");
    } else {
      LLVMValueRef d = LLVMBuildFSub(b, v, c->mean, "");
      if (nvalid < cg->W) d = LLVMBuildSelect(b, tfx_cg_mask_const(cg, nvalid), d, LLVMConstNull(cg->t_vf), "");
      acc = tfx_cg_fma(cg, d, d, acc);
    }
    LLVMBuildStore(b, acc, c->acc);
    return;
  }
  case PASS_RMS_OUT: {
    LLVMValueRef gv = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->g, col), nvalid);
    LLVMValueRef r = LLVMBuildFMul(b, LLVMBuildFMul(b, v, c->inv, ""), gv, "");
    tfx_cg_vstore(cg, r, tfx_cg_fptr(cg, c->y, col), nvalid);
    return;
  }
  default: {
    LLVMValueRef gv = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->g, col), nvalid);
    LLVMValueRef bv = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->b, col), nvalid);
    LLVMValueRef d = LLVMBuildFMul(b, LLVMBuildFSub(b, v, c->mean, ""), c->inv, "");
    tfx_cg_vstore(cg, tfx_cg_fma(cg, d, gv, bv), tfx_cg_fptr(cg, c->y, col), nvalid);
    return;
  }
  }
}

/* acc <- 0; run pass over the row; return the horizontal sum. */
static LLVMValueRef reduce_pass(tfx_cg *cg, norm_ctx *c, int pass, int64_t cols) {
  LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), c->acc);
  c->pass = pass;
  tfx_cg_chunks(cg, cols, norm_chunk, c);
  return tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, c->acc, ""));
}

/* 1 / sqrt(sum / cols + eps) */
static LLVMValueRef inv_std(tfx_cg *cg, LLVMValueRef sum, int64_t cols, double eps) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef m = LLVMBuildFDiv(b, sum, LLVMConstReal(cg->t_f32, (double)cols), "");
  m = LLVMBuildFAdd(b, m, LLVMConstReal(cg->t_f32, (float)eps), "");
  return LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), tfx_cg_sqrt(cg, m), "inv");
}

void tfx_cg_norm_row(tfx_cg *cg, LLVMValueRef x, LLVMValueRef y, LLVMValueRef g, LLVMValueRef bias, int64_t cols,
                     double eps, int layer) {
  norm_ctx c = {0};
  c.x = x;
  c.y = y;
  c.g = g;
  c.b = bias;
  c.acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
  if (!layer) {
    LLVMValueRef ss = reduce_pass(cg, &c, PASS_SUMSQ, cols);
    c.inv = tfx_cg_splat(cg, inv_std(cg, ss, cols, eps));
    c.pass = PASS_RMS_OUT;
  } else {
    LLVMValueRef s = reduce_pass(cg, &c, PASS_SUM, cols);
    LLVMValueRef mean = LLVMBuildFDiv(cg->b, s, LLVMConstReal(cg->t_f32, (double)cols), "mean");
    c.mean = tfx_cg_splat(cg, mean);
    LLVMValueRef var = reduce_pass(cg, &c, PASS_VAR, cols);
    c.inv = tfx_cg_splat(cg, inv_std(cg, var, cols, eps));
    c.pass = PASS_LN_OUT;
  }
  tfx_cg_chunks(cg, cols, norm_chunk, &c);
}

/* A per-head norm (heads > 0) normalizes each group of cols / heads columns
 * of a row on its own: the row loop runs over rows * heads groups. */
static int emit_norm(tfx_cg *cg, const tfx_node *n, int layer) {
  int64_t cols = tfx_node_cols(n), per_t, fixed, h = n->heads > 0 ? n->heads : 1, gc = cols / h;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[96];
  snprintf(key, sizeof key, "%s_c%lld_eps%.17g", tfx_op_name(n->op), (long long)cols, n->eps);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef px = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 3);
    tfx_cg_loop row;
    LLVMValueRef begin = h > 1 ? tfx_cg_mulc(cg, cg->kbegin, h) : cg->kbegin;
    LLVMValueRef end = h > 1 ? tfx_cg_mulc(cg, cg->kend, h) : cg->kend;
    tfx_cg_for(cg, &row, begin, end, 1, "row");
    LLVMValueRef off = tfx_cg_mulc(cg, row.iv, gc);
    tfx_cg_norm_row(cg, tfx_cg_fptr(cg, px, off), tfx_cg_fptr(cg, py, off), tfx_cg_body_ptr(cg, 1),
                    tfx_cg_body_ptr(cg, 2), gc, n->eps, layer);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->inputs[1]),
                                     layer ? TFX_CG_VAL(n->inputs[2]) : TFX_CG_NONE, TFX_CG_VAL(n->id)});
  return 0;
}

int tfx_cg_emit_rmsnorm(tfx_cg *cg, const tfx_node *n) { return emit_norm(cg, n, 0); }
int tfx_cg_emit_layernorm(tfx_cg *cg, const tfx_node *n) { return emit_norm(cg, n, 1); }
