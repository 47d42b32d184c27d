/* backend/k_embedding.c — the EMBEDDING kernel: row t of the result is row
 * ids[t] of the table. Work items are rows (tokens); ids outside [0, V) (which
 * the runtime rejects before calling) read row 0 instead of out of bounds. */
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

int tfx_cg_emit_embedding(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *table = &cg->g->nodes[n->inputs[0]];
  int64_t V = table->type.dims[0], D = table->type.dims[1], per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[96];
  snprintf(key, sizeof key, "embedding_V%lld_D%lld", (long long)V, (long long)D);
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
    copy_ctx c = {tfx_cg_fptr(cg, ptab, tfx_cg_mulc(cg, id, D)), tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, D))};
    tfx_cg_chunks(cg, D, copy_chunk, &c);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(table->id), TFX_CG_VAL(n->inputs[1]), TFX_CG_VAL(n->id), TFX_CG_NONE});
  return 0;
}
