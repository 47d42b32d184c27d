/* backend/k_embedding.c — the EMBEDDING kernel: row t of the result is row
 * ids[t] of the table. Work items are rows (tokens); ids outside [0, V) (which
 * the runtime rejects before calling) read row 0 instead of out of bounds. A
 * row-major table is copied in vectors; a table packed for the classifier
 * that shares it (pack_weights: panels of P rows, K in chunks of kc) is read
 * element by element at tfx_packed_index (one token: D scattered loads).
 * The epilogue fuse_embedding adds works on the row while it is in the
 * item's hands (L1): + the position row p = pos + t of a table (vectors) or
 * + the sinusoidal table computed in double (one sincos per column pair,
 * rounded to f32 as the SINUSOIDAL kernel), + a row, then the norm of the
 * finished row in place (the norm kernels' row code), then (stats_out) the
 * partial statistics per TFX_STATS_GROUP columns for a pre-norm. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg.h"

typedef struct {
  const tfx_cg_wstream *ws;
  tfx_cg_wrow src; /* the table's row */
  LLVMValueRef dst;
} copy_ctx;

static void copy_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  copy_ctx *c = vctx;
  LLVMValueRef v = tfx_cg_ws_row_vec(cg, c->ws, &c->src, col, nvalid);
  tfx_cg_vstore(cg, v, tfx_cg_fptr(cg, c->dst, col), nvalid);
}

/* Row id of a packed table (one segment) into dst: element k of the row is
 * at tfx_packed_index(fx, V, D, id, k). */
static void packed_row(tfx_cg *cg, const tfx_fused *fx, int64_t V, int64_t D, const tfx_cg_wstream *ws, LLVMValueRef id,
                       LLVMValueRef dst) {
  LLVMBuilderRef b = cg->b;
  int64_t P = fx->panel, kc = fx->kc, kf = D - D % kc, last = V - V % P;
  LLVMValueRef pi = LLVMBuildUDiv(b, id, tfx_cg_i64(cg, P), "");
  LLVMValueRef p0 = tfx_cg_mulc(cg, pi, P); /* first row of the panel */
  LLVMValueRef jj = tfx_cg_sub(cg, id, p0);
  /* rows of this panel: P, or V % P for the last, shorter one */
  LLVMValueRef pr = last < V ? LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, p0, tfx_cg_i64(cg, last), ""),
                                               tfx_cg_i64(cg, V - last), tfx_cg_i64(cg, P), "")
                             : tfx_cg_i64(cg, P);
  tfx_cg_wpanel pan = tfx_cg_ws_panel(cg, ws, pi, 0, 0); /* rows from p0 (pr is dynamic: the scalar reads) */
  if (kf > 0) { /* full chunks: chunk c at c * pr * kc, the row's kc floats at jj * kc */
    tfx_cg_loop l;
    tfx_cg_for(cg, &l, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, kf), 1, "k");
    LLVMValueRef c = LLVMBuildUDiv(b, l.iv, tfx_cg_i64(cg, kc), ""), r = LLVMBuildURem(b, l.iv, tfx_cg_i64(cg, kc), "");
    LLVMValueRef at =
        tfx_cg_add(cg, tfx_cg_mulc(cg, tfx_cg_mul(cg, c, pr), kc), tfx_cg_add(cg, tfx_cg_mulc(cg, jj, kc), r));
    tfx_cg_storef(cg, tfx_cg_ws_panel_scalar(cg, ws, &pan, jj, at), tfx_cg_fptr(cg, dst, l.iv));
    tfx_cg_for_end(cg, &l);
  }
  if (kf < D) { /* the last D % kc columns: pr rows of D - kf floats */
    tfx_cg_loop l;
    tfx_cg_for(cg, &l, tfx_cg_i64(cg, kf), tfx_cg_i64(cg, D), 1, "kt");
    LLVMValueRef at = tfx_cg_add(cg, tfx_cg_addc(cg, tfx_cg_mulc(cg, pr, kf), -kf),
                                 tfx_cg_add(cg, tfx_cg_mulc(cg, jj, D - kf), l.iv));
    tfx_cg_storef(cg, tfx_cg_ws_panel_scalar(cg, ws, &pan, jj, at), tfx_cg_fptr(cg, dst, l.iv));
    tfx_cg_for_end(cg, &l);
  }
}

typedef struct {
  LLVMValueRef src, dst;
} add_ctx;

static void add_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  add_ctx *c = vctx;
  LLVMValueRef d = tfx_cg_fptr(cg, c->dst, col);
  LLVMValueRef v =
      LLVMBuildFAdd(cg->b, tfx_cg_vload(cg, d, nvalid), tfx_cg_vload(cg, tfx_cg_fptr(cg, c->src, col), nvalid), "");
  tfx_cg_vstore(cg, v, d, nvalid);
}

/* stats_out: the partial statistics of the finished row, one per group of
 * TFX_STATS_GROUP columns (a loop over the full groups, then the last). */
static void row_parts(tfx_cg *cg, LLVMValueRef yrow, int64_t D, int layer, LLVMValueRef sout, LLVMValueRef row) {
  int64_t full = D / TFX_STATS_GROUP, tail = D % TFX_STATS_GROUP, groups = full + (tail > 0);
  LLVMValueRef base = tfx_cg_fptr(cg, sout, tfx_cg_mulc(cg, row, groups * 2));
  if (full > 0) {
    tfx_cg_loop lg;
    tfx_cg_for(cg, &lg, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, full), 1, "grp");
    tfx_cg_stats_part(cg, tfx_cg_fptr(cg, yrow, tfx_cg_mulc(cg, lg.iv, TFX_STATS_GROUP)), TFX_STATS_GROUP, layer,
                      tfx_cg_fptr(cg, base, tfx_cg_mulc(cg, lg.iv, 2)));
    tfx_cg_for_end(cg, &lg);
  }
  if (tail > 0)
    tfx_cg_stats_part(cg, tfx_cg_fptrc(cg, yrow, full * TFX_STATS_GROUP), tail, layer,
                      tfx_cg_fptrc(cg, base, full * 2));
}

int tfx_cg_emit_embedding(tfx_cg *cg, const tfx_node *n) {
  const tfx_graph *g = cg->g;
  const tfx_node *table = &g->nodes[n->inputs[0]];
  const tfx_fused *ex = &n->fx; /* what fuse_embedding added */
  int64_t V = table->type.dims[0], D = table->type.dims[1], per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  const tfx_fused *fx = table->op == TFX_OP_PARAM && table->fx.panel > 0 ? &table->fx : NULL;
  if (fx && ((fx->n_segs > 1 && fx->segs[0] != V) || fx->perm || fx->kc < 1))
    return tfx_cg_fail(cg, "backend: %%%d (embedding): the table's packed layout has several segments", n->id);
  int ip = tfx_emb_operand(n, TFX_EMB_POS), sout = ex->stats_out ? tfx_fl_stats_node(g, n->id) : -1;
  int64_t P = ip >= 0 ? g->nodes[n->inputs[ip]].type.dims[0] : 0;
  if (ex->stats_out && sout < 0)
    return tfx_cg_fail(cg, "backend: %%%d (embedding): writes statistics no norm_stats reads", n->id);
  char key[200];
  snprintf(key, sizeof key, "embedding_V%lld_D%lld_p%dx%d_pos%d_%lld_%.17g_r%d_n%d_%.17g_so%d%s", (long long)V,
           (long long)D, fx ? fx->panel : 0, fx ? fx->kc : 0, ex->pos_add, (long long)P,
           ex->pos_add == TFX_EMB_POS_SINUSOIDAL ? n->theta : 0.0, ex->has_bias, ex->norm, ex->norm ? n->eps : 0.0,
           ex->stats_out, tfx_cg_ws_key(table));
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef ptab = tfx_cg_body_ptr(cg, 0), pids = tfx_cg_body_ptr(cg, 1), py = tfx_cg_body_ptr(cg, 2);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef idp = LLVMBuildInBoundsGEP2(b, cg->t_i32, pids, &row.iv, 1, "");
    LLVMValueRef id32 = LLVMBuildLoad2(b, cg->t_i32, idp, "id");
    LLVMSetAlignment(id32, 4);
    LLVMValueRef id = LLVMBuildSExt(b, id32, cg->t_i64, "");
    LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntULT, id, tfx_cg_i64(cg, V), "");
    id = LLVMBuildSelect(b, ok, id, tfx_cg_i64(cg, 0), "");
    LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, D));
    tfx_cg_wstream ws;
    tfx_cg_ws_init(cg, &ws, table, ptab);
    if (fx) {
      packed_row(cg, fx, V, D, &ws, id, yrow);
    } else {
      copy_ctx c = {&ws, tfx_cg_ws_row(cg, &ws, id), yrow};
      tfx_cg_chunks(cg, D, copy_chunk, &c);
    }
    /* the epilogue, in the order of the unfused adds: positions, row, norm */
    LLVMValueRef p = tfx_cg_row_pos(cg, row.iv);
    if (ex->pos_add == TFX_EMB_POS_TABLE) { /* row p of the table (the last one past its end, as POSITIONS) */
      LLVMValueRef pin = LLVMBuildICmp(b, LLVMIntULT, p, tfx_cg_i64(cg, P), "");
      LLVMValueRef pc = LLVMBuildSelect(b, pin, p, tfx_cg_i64(cg, P - 1), "");
      add_ctx c = {tfx_cg_fptr(cg, tfx_cg_body_ptr(cg, 3), tfx_cg_mulc(cg, pc, D)), yrow};
      tfx_cg_chunks(cg, D, add_chunk, &c);
    }
    if (ex->pos_add == TFX_EMB_POS_SINUSOIDAL &&
        tfx_cg_sinusoidal_row(cg, n->theta, D, LLVMBuildSIToFP(b, p, cg->t_f64, "p"), yrow, 1))
      return -1;
    if (ex->has_bias) {
      add_ctx c = {tfx_cg_body_ptr(cg, 4), yrow};
      tfx_cg_chunks(cg, D, add_chunk, &c);
    }
    if (ex->norm)
      tfx_cg_norm_row(cg, yrow, yrow, tfx_cg_body_ptr(cg, 5), tfx_cg_body_ptr(cg, 6), D, n->eps,
                      ex->norm == TFX_NORM_LAYER);
    if (ex->stats_out) row_parts(cg, yrow, D, ex->stats_out == TFX_NORM_LAYER, tfx_cg_body_ptr(cg, 7), row.iv);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_ptr ptrs[8] = {TFX_CG_VAL(table->id), TFX_CG_VAL(n->inputs[1]),
                        TFX_CG_VAL(n->id),     TFX_CG_NONE,
                        TFX_CG_NONE,           TFX_CG_NONE,
                        TFX_CG_NONE,           TFX_CG_NONE};
  static const tfx_emb_role roles[4] = {TFX_EMB_POS, TFX_EMB_ROW, TFX_EMB_GAIN, TFX_EMB_NBIAS};
  for (int i = 0; i < 4; i++) {
    int op = tfx_emb_operand(n, roles[i]);
    if (op >= 0) ptrs[3 + i] = TFX_CG_VAL(n->inputs[op]);
  }
  if (sout >= 0) ptrs[7] = TFX_CG_VAL(sout);
  tfx_cg_kernel_call_n(cg, n, NULL, per_t, fixed, ptrs, 8);
  return 0;
}
