/* backend/k_segments.c — packed variable-length sequences (EffectiveTransformer):
 * the segment of a row, the maximal run [lo, hi) of consecutive rows with its
 * id in an i32[T] segment ids operand (ir's tfx_segment_bounds), found by
 * walking from the row to both ends of its run. ATTENTION with segments = 1
 * (k_attention.c's ROW schedule) narrows each query's key range to it, so a
 * query visits only its own sequence's keys; POSITIONS with segment ids
 * (k_positions.c) counts positions from lo. */
#include "cg.h"

/* while (cond(p)) p += step, from p = start; cond: p + off in 0..n-1 and
 * seg[p + off] == id. Returns the final p. */
static LLVMValueRef walk(tfx_cg *cg, LLVMValueRef seg, LLVMValueRef id, LLVMValueRef start, LLVMValueRef n, int64_t off,
                         int64_t step, const char *name) {
  LLVMBuilderRef b = cg->b;
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
  LLVMBuildBr(b, head);
  LLVMPositionBuilderAtEnd(b, head);
  LLVMValueRef p = LLVMBuildPhi(b, cg->t_i64, name);
  LLVMAddIncoming(p, &start, &pre, 1);
  LLVMValueRef r = tfx_cg_addc(cg, p, off);
  LLVMValueRef in = LLVMBuildICmp(b, LLVMIntULT, r, n, ""); /* 0 <= r < n */
  LLVMValueRef safe = LLVMBuildSelect(b, in, r, tfx_cg_i64(cg, 0), "");
  LLVMValueRef v = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildGEP2(b, cg->t_i32, seg, &safe, 1, ""), "");
  LLVMValueRef same = LLVMBuildAnd(b, in, LLVMBuildICmp(b, LLVMIntEQ, v, id, ""), "");
  LLVMBuildCondBr(b, same, body, done);
  LLVMPositionBuilderAtEnd(b, body);
  LLVMValueRef next = tfx_cg_addc(cg, p, step);
  LLVMBuildBr(b, head);
  LLVMAddIncoming(p, &next, &body, 1);
  LLVMPositionBuilderAtEnd(b, done);
  return p;
}

void tfx_cg_segment_bounds(tfx_cg *cg, LLVMValueRef seg, LLVMValueRef row, LLVMValueRef n, LLVMValueRef *lo,
                           LLVMValueRef *hi) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef id = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildGEP2(b, cg->t_i32, seg, &row, 1, ""), "seg");
  *lo = walk(cg, seg, id, row, n, -1, -1, "seg.lo");
  *hi = walk(cg, seg, id, tfx_cg_addc(cg, row, 1), n, 0, 1, "seg.hi");
}
