/* backend/k_embedding.c — the EMBEDDING kernel: row t of the result is row
 * ids[t] of the table. Work items are rows (tokens); ids outside [0, V) (which
 * the runtime rejects before calling) read row 0 instead of out of bounds. A
 * row-major table is copied in vectors; a table packed for the classifier
 * that shares it (pack_weights: panels of P rows, K in chunks of kc) is read
 * element by element at tfx_packed_index (one token: D scattered loads). */
#include <stdio.h>

#include "cg.h"

typedef struct {
  LLVMValueRef src, dst;
} copy_ctx;

static void copy_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  copy_ctx *c = vctx;
  LLVMValueRef v = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->src, col), nvalid);
  tfx_cg_vstore(cg, v, tfx_cg_fptr(cg, c->dst, col), nvalid);
}

/* Row id of a packed table (one segment) into dst: element k of the row is
 * at tfx_packed_index(fx, V, D, id, k). */
static void packed_row(tfx_cg *cg, const tfx_fused *fx, int64_t V, int64_t D, LLVMValueRef tab, LLVMValueRef id,
                       LLVMValueRef dst) {
  LLVMBuilderRef b = cg->b;
  int64_t P = fx->panel, kc = fx->kc, kf = D - D % kc, last = V - V % P;
  LLVMValueRef p0 = tfx_cg_mulc(cg, LLVMBuildUDiv(b, id, tfx_cg_i64(cg, P), ""), P); /* first row of the panel */
  LLVMValueRef jj = tfx_cg_sub(cg, id, p0);
  /* rows of this panel: P, or V % P for the last, shorter one */
  LLVMValueRef pr = last < V ? LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, p0, tfx_cg_i64(cg, last), ""),
                                               tfx_cg_i64(cg, V - last), tfx_cg_i64(cg, P), "")
                             : tfx_cg_i64(cg, P);
  LLVMValueRef base = tfx_cg_fptr(cg, tab, tfx_cg_mulc(cg, p0, D));
  if (kf > 0) { /* full chunks: chunk c at c * pr * kc, the row's kc floats at jj * kc */
    tfx_cg_loop l;
    tfx_cg_for(cg, &l, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, kf), 1, "k");
    LLVMValueRef c = LLVMBuildUDiv(b, l.iv, tfx_cg_i64(cg, kc), ""), r = LLVMBuildURem(b, l.iv, tfx_cg_i64(cg, kc), "");
    LLVMValueRef at =
        tfx_cg_add(cg, tfx_cg_mulc(cg, tfx_cg_mul(cg, c, pr), kc), tfx_cg_add(cg, tfx_cg_mulc(cg, jj, kc), r));
    tfx_cg_storef(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, base, at)), tfx_cg_fptr(cg, dst, l.iv));
    tfx_cg_for_end(cg, &l);
  }
  if (kf < D) { /* the last D % kc columns: pr rows of D - kf floats */
    tfx_cg_loop l;
    tfx_cg_for(cg, &l, tfx_cg_i64(cg, kf), tfx_cg_i64(cg, D), 1, "kt");
    LLVMValueRef at = tfx_cg_add(cg, tfx_cg_addc(cg, tfx_cg_mulc(cg, pr, kf), -kf),
                                 tfx_cg_add(cg, tfx_cg_mulc(cg, jj, D - kf), l.iv));
    tfx_cg_storef(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, base, at)), tfx_cg_fptr(cg, dst, l.iv));
    tfx_cg_for_end(cg, &l);
  }
}

int tfx_cg_emit_embedding(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *table = &cg->g->nodes[n->inputs[0]];
  int64_t V = table->type.dims[0], D = table->type.dims[1], per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  const tfx_fused *fx = table->op == TFX_OP_PARAM && table->fx.panel > 0 ? &table->fx : NULL;
  if (fx && ((fx->n_segs > 1 && fx->segs[0] != V) || fx->perm || fx->kc < 1))
    return tfx_cg_fail(cg, "backend: %%%d (embedding): the table's packed layout has several segments", n->id);
  char key[96];
  snprintf(key, sizeof key, "embedding_V%lld_D%lld_p%dx%d", (long long)V, (long long)D, fx ? fx->panel : 0,
           fx ? fx->kc : 0);
  int fresh = tfx_cg_body_begin(cg, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef ptab = tfx_cg_body_ptr(cg, 0), pids = tfx_cg_body_ptr(cg, 1), py = tfx_cg_body_ptr(cg, 2);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef idp = LLVMBuildInBoundsGEP2(cg->b, cg->t_i32, pids, &row.iv, 1, "");
    LLVMValueRef id32 = LLVMBuildLoad2(cg->b, cg->t_i32, idp, "id");
    LLVMSetAlignment(id32, 4);
    LLVMValueRef id = LLVMBuildSExt(cg->b, id32, cg->t_i64, "");
    LLVMValueRef ok = LLVMBuildICmp(cg->b, LLVMIntULT, id, tfx_cg_i64(cg, V), "");
    id = LLVMBuildSelect(cg->b, ok, id, tfx_cg_i64(cg, 0), "");
    if (fx) {
      packed_row(cg, fx, V, D, ptab, id, tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, D)));
    } else {
      copy_ctx c = {tfx_cg_fptr(cg, ptab, tfx_cg_mulc(cg, id, D)), tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, D))};
      tfx_cg_chunks(cg, D, copy_chunk, &c);
    }
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(table->id), TFX_CG_VAL(n->inputs[1]), TFX_CG_VAL(n->id), TFX_CG_NONE});
  return 0;
}
