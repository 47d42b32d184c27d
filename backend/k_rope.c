/* backend/k_rope.c — the ROPE kernel. Work items are rows t (position
 * p = pos + t). Per row the rotary_dim/2 angles p * theta^(-2k/rotary_dim) and
 * their sin/cos are computed once in double (inline polynomial, the inverse
 * frequencies are compile-time constants) and shared by every head; each head
 * is then rotated in vectors: interleaved pairs (2k, 2k+1) with a lane swap,
 * or half-split pairs (k, k + rotary_dim/2). Dims beyond rotary_dim are copied
 * unchanged. Also the RoPE helpers the fused linear's epilogue and MLA share:
 * the inverse-frequency table (tfx_rope_inv_freq, a constant global) and,
 * when max_seq * rotary_dim / 2 <= 8192, a (cos, sin) table per position
 * (the sin/cos of a pair then two loads), the sin/cos of one pair's angle,
 * the loop over a row's pairs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg.h"

typedef struct {
  LLVMValueRef x, y;   /* this head's input and output */
  LLVMValueRef cs, sn; /* per-row tables (allocas) */
  LLVMValueRef swap;   /* shuffle mask swapping lane pairs */
  int64_t half, rd;
  int inter;
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

/* ---- the RoPE helpers of every rotating kernel (ROPE, fused linear, MLA) ---- */

/* The per-position table beside it, when small: [max_seq][half] (cos, sin) as f32, computed here in
 * double like the runtime path (then rounded), so the kernels load two floats instead of evaluating
 * a double sin/cos per pair and row (stories260K's decode spent ~10% there). */
#define TFX_ROPE_POS_TABLE_MAX 8192 /* max_seq * half entries (64 KiB) */

static void pos_table_name(char *buf, size_t len, const char *inv_name, int64_t S) {
  snprintf(buf, len, "%s_pos%lld", inv_name, (long long)S);
}

LLVMValueRef tfx_cg_rope_table(tfx_cg *cg, double theta, int64_t rd) {
  int64_t half = rd / 2, S = cg->g->max_seq;
  char name[96];
  snprintf(name, sizeof name, "tfx_rope_inv_freq_%lld_%.17g", (long long)rd, theta);
  LLVMValueRef *vals = malloc((size_t)(half > 0 ? half : 1) * sizeof *vals);
  if (!vals) {
    tfx_cg_fail(cg, "backend: out of memory");
    return NULL;
  }
  for (int64_t k = 0; k < half; k++) vals[k] = LLVMConstReal(cg->t_f64, tfx_rope_inv_freq(theta, k, rd));
  LLVMValueRef init = LLVMConstArray2(cg->t_f64, vals, (uint64_t)half);
  free(vals);
  LLVMValueRef inv = tfx_cg_const_global(cg, name, init, 0);
  if (half > 0 && S > 0 && S * half <= TFX_ROPE_POS_TABLE_MAX) {
    char pname[128];
    pos_table_name(pname, sizeof pname, name, S);
    if (!LLVMGetNamedGlobal(cg->mod, pname)) {
      LLVMValueRef *sc = malloc((size_t)(S * half * 2) * sizeof *sc);
      if (!sc) {
        tfx_cg_fail(cg, "backend: out of memory");
        return NULL;
      }
      for (int64_t p = 0; p < S; p++)
        for (int64_t k = 0; k < half; k++) {
          double ang = (double)p * tfx_rope_inv_freq(theta, k, rd);
          sc[(p * half + k) * 2] = LLVMConstReal(cg->t_f32, (float)cos(ang));
          sc[(p * half + k) * 2 + 1] = LLVMConstReal(cg->t_f32, (float)sin(ang));
        }
      tfx_cg_const_global(cg, pname, LLVMConstArray2(cg->t_f32, sc, (uint64_t)(S * half * 2)), 16);
      free(sc);
    }
  }
  return inv;
}

void tfx_cg_rope_sincos(tfx_cg *cg, LLVMValueRef table, LLVMValueRef p, LLVMValueRef k, LLVMValueRef *s,
                        LLVMValueRef *c) {
  LLVMBuilderRef b = cg->b;
  size_t len = 0;
  const char *inv_name = LLVMGetValueName2(table, &len);
  char pname[128];
  pos_table_name(pname, sizeof pname, inv_name, cg->g->max_seq);
  LLVMValueRef pos = LLVMGetNamedGlobal(cg->mod, pname);
  if (pos) { /* positions are < max_seq; clamped all the same, so a load never leaves the table */
    int64_t half = (int64_t)LLVMGetArrayLength2(LLVMGlobalGetValueType(table));
    LLVMValueRef ip = LLVMBuildFPToSI(b, p, cg->t_i64, "");
    ip = tfx_cg_smin(cg, ip, tfx_cg_i64(cg, cg->g->max_seq - 1));
    ip = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, ip, tfx_cg_i64(cg, 0), ""), tfx_cg_i64(cg, 0), ip, "");
    LLVMValueRef at = tfx_cg_mulc(cg, tfx_cg_add(cg, tfx_cg_mulc(cg, ip, half), k), 2);
    LLVMValueRef ix[2] = {tfx_cg_i64(cg, 0), at};
    LLVMValueRef cp = LLVMBuildInBoundsGEP2(b, LLVMGlobalGetValueType(pos), pos, ix, 2, "");
    *c = tfx_cg_loadf(cg, cp);
    *s = tfx_cg_loadf(cg, tfx_cg_fptrc(cg, cp, 1));
    return;
  }
  LLVMValueRef ix[2] = {tfx_cg_i64(cg, 0), k};
  LLVMValueRef fp = LLVMBuildInBoundsGEP2(b, LLVMGlobalGetValueType(table), table, ix, 2, "");
  LLVMValueRef ang = LLVMBuildFMul(b, p, LLVMBuildLoad2(b, cg->t_f64, fp, ""), "angle");
  tfx_cg_sincos_f64(cg, ang, s, c);
  *s = LLVMBuildFPTrunc(b, *s, cg->t_f32, "");
  *c = LLVMBuildFPTrunc(b, *c, cg->t_f32, "");
}

void tfx_cg_rope_pairs(tfx_cg *cg, LLVMValueRef table, LLVMValueRef p, int64_t half, tfx_cg_rope_fn fn, void *ctx) {
  tfx_cg_loop lk;
  tfx_cg_for(cg, &lk, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, half), 1, "k");
  LLVMValueRef s, c;
  tfx_cg_rope_sincos(cg, table, p, lk.iv, &s, &c);
  fn(cg, ctx, lk.iv, s, c);
  tfx_cg_for_end(cg, &lk);
}

/* ---- ROPE ---- */

/* The row's factors of pair k: cos and -sin / +sin at both lanes of an
 * interleaved pair, or cos and sin at k (half-split). */
static void row_factors(tfx_cg *cg, void *vctx, LLVMValueRef k, LLVMValueRef s, LLVMValueRef co) {
  rope_ctx *c = vctx;
  if (c->inter) {
    LLVMValueRef i0 = tfx_cg_mulc(cg, k, 2), i1 = tfx_cg_addc(cg, i0, 1);
    tfx_cg_storef(cg, co, tfx_cg_fptr(cg, c->cs, i0));
    tfx_cg_storef(cg, co, tfx_cg_fptr(cg, c->cs, i1));
    tfx_cg_storef(cg, LLVMBuildFNeg(cg->b, s, ""), tfx_cg_fptr(cg, c->sn, i0));
    tfx_cg_storef(cg, s, tfx_cg_fptr(cg, c->sn, i1));
  } else {
    tfx_cg_storef(cg, co, tfx_cg_fptr(cg, c->cs, k));
    tfx_cg_storef(cg, s, tfx_cg_fptr(cg, c->sn, k));
  }
}

int tfx_cg_emit_rope(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t H = n->heads, d = n->head_dim, rd = n->rotary_dim, half = rd / 2, cols = H * d;
  int inter = n->rope_style == TFX_ROPE_INTERLEAVED;
  char key[128];
  int segs = n->n_inputs == 2;
  snprintf(key, sizeof key, "rope_H%lld_d%lld_r%lld_s%d_th%.17g%s", (long long)H, (long long)d, (long long)rd, inter,
           n->theta, segs ? "_seg" : "");
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef table = tfx_cg_rope_table(cg, n->theta, rd);
    if (!table) return -1;
    LLVMValueRef px = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    int64_t tab_len = inter ? rd : half;
    rope_ctx c = {0};
    c.cs = tfx_cg_alloca_array(cg, cg->t_f32, tab_len, "cos");
    c.sn = tfx_cg_alloca_array(cg, cg->t_f32, tab_len, "sin");
    c.half = half;
    c.rd = rd;
    c.inter = inter;
    LLVMValueRef lanes[64];
    for (int i = 0; i < cg->W; i++) lanes[i] = tfx_cg_i32(cg, i ^ 1);
    c.swap = LLVMConstVector(lanes, (unsigned)cg->W);

    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef pi = tfx_cg_row_pos(cg, row.iv);
    if (segs) { /* packed sequences: the row's distance from its segment's first row (k_segments.c) */
      LLVMValueRef lo, hi;
      tfx_cg_segment_bounds(cg, tfx_cg_body_ptr(cg, 2), row.iv, cg->T, &lo, &hi);
      pi = tfx_cg_sub(cg, row.iv, lo);
    }
    LLVMValueRef p = LLVMBuildSIToFP(b, pi, cg->t_f64, "p");
    tfx_cg_rope_pairs(cg, table, p, half, row_factors, &c);

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
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->id),
                                     segs ? TFX_CG_VAL(n->inputs[1]) : TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}
