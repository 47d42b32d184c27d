/* backend/k_columns.c — kernels of COL_SLICE (columns lo .. hi - 1 of every
 * row of a value: the language's x[:, a:b]) and CONCAT_COLS (the operands'
 * rows side by side: concat(a, b, ...)). Both are copies into the node's own
 * value (not views with a stride: every other kernel reads its operands as
 * dense rows), one work item per row, each run of columns copied in vectors
 * of W floats with a masked tail. Row-wise, so the decode, chunked and
 * last-row entries need nothing of their own. */
#include <stdio.h>

#include "cg.h"

typedef struct {
  LLVMValueRef src, dst; /* the run's first source and destination elements */
} run_ctx;

static void copy_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  run_ctx *c = vctx;
  LLVMValueRef v = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->src, col), nvalid);
  tfx_cg_vstore(cg, v, tfx_cg_fptr(cg, c->dst, col), nvalid);
}

/* dst[0 .. w) = src[0 .. w) */
static void copy_run(tfx_cg *cg, LLVMValueRef src, LLVMValueRef dst, int64_t w) {
  run_ctx c = {src, dst};
  tfx_cg_chunks(cg, w, copy_chunk, &c);
}

int tfx_cg_emit_col_slice(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *x = &cg->g->nodes[n->inputs[0]];
  int64_t N = tfx_node_cols(x), w = tfx_node_cols(n), per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[96];
  snprintf(key, sizeof key, "col_slice_n%lld_w%lld", (long long)N, (long long)w); /* + lo, hi (the node's attributes) */
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef px = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef src = tfx_cg_fptr(cg, px, tfx_cg_addc(cg, tfx_cg_mulc(cg, row.iv, N), n->col_lo));
    copy_run(cg, src, tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, w)), w);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(x->id), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}

int tfx_cg_emit_concat_cols(tfx_cg *cg, const tfx_node *n) {
  int k = n->n_inputs;
  if (k + 1 > TFX_CG_BODY_PTRS) return tfx_cg_fail(cg, "%%%d (concat_cols): %d operands are too many", n->id, k);
  int64_t W = tfx_node_cols(n), per_t, fixed, w[TFX_MAX_INPUTS];
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[256];
  int used = snprintf(key, sizeof key, "concat_cols_w");
  for (int i = 0; i < k; i++) {
    w[i] = tfx_node_cols(&cg->g->nodes[n->inputs[i]]);
    used += snprintf(key + used, sizeof key - (size_t)used, "%s%lld", i ? "_" : "", (long long)w[i]);
  }
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef py = tfx_cg_body_ptr(cg, k);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef yrow = tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, W));
    int64_t at = 0;
    for (int i = 0; i < k; i++) {
      copy_run(cg, tfx_cg_fptr(cg, tfx_cg_body_ptr(cg, i), tfx_cg_mulc(cg, row.iv, w[i])), tfx_cg_fptrc(cg, yrow, at),
               w[i]);
      at += w[i];
    }
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_ptr ptrs[TFX_MAX_INPUTS + 1];
  for (int i = 0; i < k; i++) ptrs[i] = TFX_CG_VAL(n->inputs[i]);
  ptrs[k] = TFX_CG_VAL(n->id);
  tfx_cg_kernel_call_n(cg, n, NULL, per_t, fixed, ptrs, k + 1);
  return 0;
}
