/* backend/k_matmul.c — the MATMUL kernel y[M, N] = a[M, K] @ b[K, N] (b not
 * transposed). Work items are vectors of W output columns (masked on the last
 * one when N % W != 0); each item walks the rows of a in tiles of 4, keeping 4
 * vector accumulators and broadcasting a[m, k] against row k of b (read
 * through its weight stream: b may be a weight in any format). */
#include <stdio.h>

#include "cg.h"

#define MM_MR 4

typedef struct {
  LLVMValueRef a, b, y;
  int64_t K, N;
  tfx_cg_wstream ws; /* b's (a weight, or any static value) */
} mm_op;

static void emit_rows(tfx_cg *cg, const mm_op *op, LLVMValueRef m, LLVMValueRef n0, int mr, int nvalid) {
  LLVMValueRef acc[MM_MR], arow[MM_MR];
  for (int i = 0; i < mr; i++) {
    acc[i] = tfx_cg_alloca(cg, cg->t_vf, "acc");
    LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc[i]);
    arow[i] = tfx_cg_fptr(cg, op->a, tfx_cg_mulc(cg, tfx_cg_addc(cg, m, i), op->K));
  }
  tfx_cg_loop lk;
  tfx_cg_for(cg, &lk, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, op->K), 1, "k");
  LLVMValueRef bv = tfx_cg_ws_vec(cg, &op->ws, lk.iv, n0, nvalid); /* row k of b, columns n0.. */
  for (int i = 0; i < mr; i++) {
    LLVMValueRef as = tfx_cg_splat(cg, tfx_cg_loadf(cg, tfx_cg_fptr(cg, arow[i], lk.iv)));
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, acc[i], "");
    LLVMBuildStore(cg->b, tfx_cg_fma(cg, as, bv, v), acc[i]);
  }
  tfx_cg_for_end(cg, &lk);
  for (int i = 0; i < mr; i++) {
    LLVMValueRef yp = tfx_cg_fptr(cg, op->y, tfx_cg_add(cg, tfx_cg_mulc(cg, tfx_cg_addc(cg, m, i), op->N), n0));
    tfx_cg_vstore(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc[i], ""), yp, nvalid);
  }
}

static void emit_column(tfx_cg *cg, const mm_op *op, LLVMValueRef M, LLVMValueRef n0, int nvalid) {
  LLVMValueRef m4 = LLVMBuildAnd(cg->b, M, tfx_cg_i64(cg, ~(int64_t)(MM_MR - 1)), "m4");
  tfx_cg_loop lm;
  tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), m4, MM_MR, "m");
  emit_rows(cg, op, lm.iv, n0, MM_MR, nvalid);
  tfx_cg_for_end(cg, &lm);
  tfx_cg_loop l1;
  tfx_cg_for(cg, &l1, m4, M, 1, "mtail");
  emit_rows(cg, op, l1.iv, n0, 1, nvalid);
  tfx_cg_for_end(cg, &l1);
}

int tfx_cg_emit_matmul(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *a = &cg->g->nodes[n->inputs[0]];
  const tfx_node *b = &cg->g->nodes[n->inputs[1]];
  int64_t K = b->type.dims[0], N = b->type.dims[1], m_per_t, m_fixed;
  int64_t full = N / cg->W;
  int tail = (int)(N % cg->W);
  tfx_cg_rows_split(a, &m_per_t, &m_fixed);
  char key[128];
  snprintf(key, sizeof key, "matmul_K%lld_N%lld_M%s%lld%s", (long long)K, (long long)N, m_per_t ? "T" : "",
           (long long)(m_per_t ? m_per_t : m_fixed), tfx_cg_ws_key(b));
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    mm_op op = {tfx_cg_body_ptr(cg, 0), tfx_cg_body_ptr(cg, 1), tfx_cg_body_ptr(cg, 2), K, N, {0}};
    tfx_cg_ws_init(cg, &op.ws, b, op.b);
    LLVMValueRef M = tfx_cg_rows(cg, a);
    tfx_cg_loop it;
    tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
    LLVMValueRef n0 = tfx_cg_mulc(cg, it.iv, cg->W);
    if (!tail) {
      emit_column(cg, &op, M, n0, cg->W);
    } else if (full == 0) {
      emit_column(cg, &op, M, n0, tail);
    } else {
      tfx_cg_if c;
      tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, it.iv, tfx_cg_i64(cg, full), ""), "full");
      emit_column(cg, &op, M, n0, cg->W);
      tfx_cg_if_else(cg, &c);
      emit_column(cg, &op, M, n0, tail);
      tfx_cg_if_end(cg, &c);
    }
    tfx_cg_for_end(cg, &it);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, 0, full + (tail ? 1 : 0),
                     (tfx_cg_ptr[4]){TFX_CG_VAL(a->id), TFX_CG_VAL(b->id), TFX_CG_VAL(n->id), TFX_CG_NONE});
  return 0;
}
