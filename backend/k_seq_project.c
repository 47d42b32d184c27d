/* backend/k_seq_project.c — the SEQ_PROJECT kernel (Linformer's projection
 * along the sequence): y[k, C] = e[:, 0:T] @ x[T, C], e f32[k, n] with
 * n >= max_seq (the first T columns), T the call's rows. Work items are
 * vectors of W output columns (masked on the last one when C % W != 0);
 * each item walks the k rows of e, accumulating e[i, t] * x[t, cols] over
 * the call's rows in one vector register. */
#include <stdio.h>

#include "cg.h"

typedef struct {
  LLVMValueRef e, x, y, T;
  int64_t k, n, C;
} sp_op;

static void emit_column(tfx_cg *cg, const sp_op *op, LLVMValueRef c0, int nvalid) {
  LLVMValueRef acc = tfx_cg_alloca(cg, cg->t_vf, "acc");
  tfx_cg_loop li;
  tfx_cg_for(cg, &li, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, op->k), 1, "i");
  LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc);
  LLVMValueRef erow = tfx_cg_fptr(cg, op->e, tfx_cg_mulc(cg, li.iv, op->n));
  tfx_cg_loop lt;
  tfx_cg_for(cg, &lt, tfx_cg_i64(cg, 0), op->T, 1, "t");
  LLVMValueRef es = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, erow, lt.iv)));
  LLVMValueRef xv = tfx_cg_vload(cg, tfx_cg_fptr(cg, op->x, tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, op->C), c0)), nvalid);
  LLVMBuildStore(cg->b, tfx_cg_fma(cg, es, xv, LLVMBuildLoad2(cg->b, cg->t_vf, acc, "")), acc);
  tfx_cg_for_end(cg, &lt);
  LLVMValueRef yp = tfx_cg_fptr(cg, op->y, tfx_cg_add(cg, tfx_cg_mulc(cg, li.iv, op->C), c0));
  tfx_cg_vstore(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc, ""), yp, nvalid);
  tfx_cg_for_end(cg, &li);
}

int tfx_cg_emit_seq_project(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *e = &cg->g->nodes[n->inputs[0]], *x = &cg->g->nodes[n->inputs[1]];
  int64_t k = e->type.dims[0], en = e->type.dims[1], C = x->type.dims[1];
  int64_t full = C / cg->W;
  int tail = (int)(C % cg->W);
  char key[128];
  snprintf(key, sizeof key, "seqproj_k%lld_n%lld_C%lld", (long long)k, (long long)en, (long long)C);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    sp_op op = {tfx_cg_body_ptr(cg, 0), tfx_cg_body_ptr(cg, 1), tfx_cg_body_ptr(cg, 2), tfx_cg_rows(cg, x), k, en, C};
    tfx_cg_loop it;
    tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
    LLVMValueRef c0 = tfx_cg_mulc(cg, it.iv, cg->W);
    if (!tail) {
      emit_column(cg, &op, c0, cg->W);
    } else if (full == 0) {
      emit_column(cg, &op, c0, tail);
    } else {
      tfx_cg_if c;
      tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, it.iv, tfx_cg_i64(cg, full), ""), "full");
      emit_column(cg, &op, c0, cg->W);
      tfx_cg_if_else(cg, &c);
      emit_column(cg, &op, c0, tail);
      tfx_cg_if_end(cg, &c);
    }
    tfx_cg_for_end(cg, &it);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, 0, full + (tail ? 1 : 0),
                     (tfx_cg_ptr[4]){TFX_CG_VAL(e->id), TFX_CG_VAL(x->id), TFX_CG_VAL(n->id), TFX_CG_NONE});
  return 0;
}
