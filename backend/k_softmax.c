/* backend/k_softmax.c — the SOFTMAX kernel over the last dimension. Work
 * items are rows; per row: vector max (tail lanes -inf), exp(x - max) written
 * to the output and summed (tail lanes excluded), then division by the sum. */
#include <math.h>
#include <stdio.h>

#include "cg.h"

typedef struct {
  LLVMValueRef x, y, acc, max, sum;
  int pass; /* 0 max, 1 exp+sum, 2 normalize */
} sm_ctx;

static void sm_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  sm_ctx *c = vctx;
  LLVMBuilderRef b = cg->b;
  LLVMValueRef acc = c->pass < 2 ? LLVMBuildLoad2(b, cg->t_vf, c->acc, "") : NULL;
  if (c->pass == 0) {
    LLVMValueRef v = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col), nvalid);
    if (nvalid < cg->W)
      v = LLVMBuildSelect(b, tfx_cg_mask_const(cg, nvalid), v, tfx_cg_fconst(cg, cg->t_vf, -INFINITY), "");
    LLVMBuildStore(b, tfx_cg_fmax(cg, acc, v), c->acc);
  } else if (c->pass == 1) {
    LLVMValueRef v = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col), nvalid);
    LLVMValueRef e = tfx_cg_exp(cg, LLVMBuildFSub(b, v, c->max, ""));
    if (nvalid < cg->W) e = LLVMBuildSelect(b, tfx_cg_mask_const(cg, nvalid), e, LLVMConstNull(cg->t_vf), "");
    tfx_cg_vstore(cg, e, tfx_cg_fptr(cg, c->y, col), nvalid);
    LLVMBuildStore(b, LLVMBuildFAdd(b, acc, e, ""), c->acc);
  } else {
    LLVMValueRef e = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->y, col), nvalid);
    tfx_cg_vstore(cg, LLVMBuildFDiv(b, e, c->sum, ""), tfx_cg_fptr(cg, c->y, col), nvalid);
  }
}

int tfx_cg_emit_softmax(tfx_cg *cg, const tfx_node *n) {
  int64_t cols = tfx_node_cols(n), per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[64];
  snprintf(key, sizeof key, "softmax_c%lld", (long long)cols);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef px = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    sm_ctx c = {0};
    c.acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef off = tfx_cg_mulc(cg, row.iv, cols);
    c.x = tfx_cg_fptr(cg, px, off);
    c.y = tfx_cg_fptr(cg, py, off);
    LLVMBuildStore(cg->b, tfx_cg_fconst(cg, cg->t_vf, -INFINITY), c.acc);
    c.pass = 0;
    tfx_cg_chunks(cg, cols, sm_chunk, &c);
    c.max = tfx_cg_splat(cg, tfx_cg_hmax(cg, LLVMBuildLoad2(cg->b, cg->t_vf, c.acc, "")));
    LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), c.acc);
    c.pass = 1;
    tfx_cg_chunks(cg, cols, sm_chunk, &c);
    c.sum = tfx_cg_splat(cg, tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, c.acc, "")));
    c.pass = 2;
    tfx_cg_chunks(cg, cols, sm_chunk, &c);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}
