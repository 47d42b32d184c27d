/* backend/k_rope.c — the ROPE kernel. Work items are rows t (position
 * p = pos + t). Per row the rotary_dim/2 angles p * theta^(-2k/rotary_dim) and
 * their sin/cos are computed once in double (inline polynomial, the inverse
 * frequencies are compile-time constants) and shared by every head; each head
 * is then rotated in vectors: interleaved pairs (2k, 2k+1) with a lane swap,
 * or half-split pairs (k, k + rotary_dim/2). Dims beyond rotary_dim are copied
 * unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg.h"

typedef struct {
  LLVMValueRef x, y;   /* this head's input and output */
  LLVMValueRef cs, sn; /* per-row tables (allocas) */
  LLVMValueRef swap;   /* shuffle mask swapping lane pairs */
  int64_t half, rd;
} rope_ctx;

static void interleaved_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  rope_ctx *c = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef x = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col), nvalid);
  LLVMValueRef xs = LLVMBuildShuffleVector(b, x, x, c->swap, "");
  LLVMValueRef cv = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->cs, col), nvalid);
  LLVMValueRef sv = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->sn, col), nvalid);
  LLVMValueRef y = LLVMBuildFAdd(b, LLVMBuildFMul(b, x, cv, ""), LLVMBuildFMul(b, xs, sv, ""), "");
  tfx_cg_vstore(cg, y, tfx_cg_fptr(cg, c->y, col), nvalid);
}

static void half_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  rope_ctx *c = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef col2 = tfx_cg_addc(cg, col, c->half);
  LLVMValueRef x1 = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col), nvalid);
  LLVMValueRef x2 = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col2), nvalid);
  LLVMValueRef cv = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->cs, col), nvalid);
  LLVMValueRef sv = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->sn, col), nvalid);
  LLVMValueRef y1 = LLVMBuildFSub(b, LLVMBuildFMul(b, x1, cv, ""), LLVMBuildFMul(b, x2, sv, ""), "");
  LLVMValueRef y2 = LLVMBuildFAdd(b, LLVMBuildFMul(b, x1, sv, ""), LLVMBuildFMul(b, x2, cv, ""), "");
  tfx_cg_vstore(cg, y1, tfx_cg_fptr(cg, c->y, col), nvalid);
  tfx_cg_vstore(cg, y2, tfx_cg_fptr(cg, c->y, col2), nvalid);
}

static void copy_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  rope_ctx *c = vctx;
  LLVMValueRef at = tfx_cg_addc(cg, col, c->rd);
  tfx_cg_vstore(cg, tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, at), nvalid), tfx_cg_fptr(cg, c->y, at), nvalid);
}

/* A private constant array of the inverse frequencies theta^(-2k/rd). */
static LLVMValueRef inv_freq_table(tfx_cg *cg, const tfx_node *n, int64_t half) {
  LLVMValueRef *vals = malloc((size_t)half * sizeof *vals);
  if (!vals) return NULL;
  for (int64_t k = 0; k < half; k++)
    vals[k] = LLVMConstReal(cg->t_f64, pow(n->theta, -2.0 * (double)k / (double)n->rotary_dim));
  LLVMValueRef init = LLVMConstArray2(cg->t_f64, vals, (uint64_t)half);
  free(vals);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), "tfx_rope_inv_freq");
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  return gv;
}

int tfx_cg_emit_rope(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, d = n->head_dim, rd = n->rotary_dim, half = rd / 2, cols = H * d;
  int inter = n->rope_style == TFX_ROPE_INTERLEAVED;
  char key[128];
  snprintf(key, sizeof key, "rope_H%lld_d%lld_r%lld_s%d_th%.17g", (long long)H, (long long)d, (long long)rd, inter,
           n->theta);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef table = inv_freq_table(cg, n, half);
    if (!table) return tfx_cg_fail(cg, "backend: out of memory");
    LLVMValueRef px = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    int64_t tab_len = inter ? rd : half;
    rope_ctx c = {0};
    c.cs = tfx_cg_alloca_array(cg, cg->t_f32, tab_len, "cos");
    c.sn = tfx_cg_alloca_array(cg, cg->t_f32, tab_len, "sin");
    c.half = half;
    c.rd = rd;
    LLVMValueRef lanes[64];
    for (int i = 0; i < cg->W; i++) lanes[i] = tfx_cg_i32(cg, i ^ 1);
    c.swap = LLVMConstVector(lanes, (unsigned)cg->W);

    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef p = LLVMBuildSIToFP(b, tfx_cg_add(cg, cg->pos, row.iv), cg->t_f64, "p");
    tfx_cg_loop lk;
    tfx_cg_for(cg, &lk, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, half), 1, "k");
    LLVMValueRef fidx[2] = {tfx_cg_i64(cg, 0), lk.iv};
    LLVMValueRef fp = LLVMBuildInBoundsGEP2(b, LLVMGlobalGetValueType(table), table, fidx, 2, "");
    LLVMValueRef ang = LLVMBuildFMul(b, p, LLVMBuildLoad2(b, cg->t_f64, fp, ""), "angle");
    LLVMValueRef s, co;
    tfx_cg_sincos_f64(cg, ang, &s, &co);
    s = LLVMBuildFPTrunc(b, s, cg->t_f32, "");
    co = LLVMBuildFPTrunc(b, co, cg->t_f32, "");
    if (inter) {
      LLVMValueRef i0 = tfx_cg_mulc(cg, lk.iv, 2), i1 = tfx_cg_addc(cg, i0, 1);
      tfx_cg_storef(cg, co, tfx_cg_fptr(cg, c.cs, i0));
      tfx_cg_storef(cg, co, tfx_cg_fptr(cg, c.cs, i1));
      tfx_cg_storef(cg, LLVMBuildFNeg(b, s, ""), tfx_cg_fptr(cg, c.sn, i0));
      tfx_cg_storef(cg, s, tfx_cg_fptr(cg, c.sn, i1));
    } else {
      tfx_cg_storef(cg, co, tfx_cg_fptr(cg, c.cs, lk.iv));
      tfx_cg_storef(cg, s, tfx_cg_fptr(cg, c.sn, lk.iv));
    }
    tfx_cg_for_end(cg, &lk);

    tfx_cg_loop lh;
    tfx_cg_for(cg, &lh, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, H), 1, "head");
    LLVMValueRef base = tfx_cg_add(cg, tfx_cg_mulc(cg, row.iv, cols), tfx_cg_mulc(cg, lh.iv, d));
    c.x = tfx_cg_fptr(cg, px, base);
    c.y = tfx_cg_fptr(cg, py, base);
    if (inter)
      tfx_cg_chunks(cg, rd, interleaved_chunk, &c);
    else
      tfx_cg_chunks(cg, half, half_chunk, &c);
    if (d > rd) tfx_cg_chunks(cg, d - rd, copy_chunk, &c);
    tfx_cg_for_end(cg, &lh);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, 1, 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}
