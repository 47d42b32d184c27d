/* backend/cg_ir.c — IR-building helpers shared by every kernel emitter:
 * constants and constant globals, entry-block allocas, index arithmetic, loops and conditionals,
 * vector loads/stores with masked tails, intrinsic calls, reductions and the
 * chunked iteration over a static number of floats. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

int tfx_cg_fail(tfx_cg *cg, const char *fmt, ...) {
  if (!cg->failed && cg->err && cg->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cg->err, cg->errlen, fmt, ap);
    va_end(ap);
  }
  cg->failed = 1;
  return -1;
}

LLVMValueRef tfx_cg_i64(tfx_cg *cg, int64_t v) { return LLVMConstInt(cg->t_i64, (unsigned long long)v, 1); }
LLVMValueRef tfx_cg_i32(tfx_cg *cg, int32_t v) { return LLVMConstInt(cg->t_i32, (unsigned long long)(int64_t)v, 1); }

LLVMValueRef tfx_cg_fconst(tfx_cg *cg, LLVMTypeRef ty, double v) {
  if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind) {
    unsigned n = LLVMGetVectorSize(ty);
    LLVMValueRef s = LLVMConstReal(LLVMGetElementType(ty), v);
    LLVMValueRef elems[64];
    for (unsigned i = 0; i < n && i < 64; i++) elems[i] = s;
    return LLVMConstVector(elems, n);
  }
  (void)cg;
  return LLVMConstReal(ty, v);
}

LLVMValueRef tfx_cg_splat(tfx_cg *cg, LLVMValueRef scalar) {
  LLVMTypeRef vty = LLVMVectorType(LLVMTypeOf(scalar), (unsigned)cg->W);
  LLVMValueRef undef = LLVMGetPoison(vty);
  LLVMValueRef ins = LLVMBuildInsertElement(cg->b, undef, scalar, tfx_cg_i32(cg, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(cg->t_i32, (unsigned)cg->W));
  return LLVMBuildShuffleVector(cg->b, ins, undef, zeros, "splat");
}

LLVMValueRef tfx_cg_alloca(tfx_cg *cg, LLVMTypeRef ty, const char *name) {
  LLVMBuilderRef tb = LLVMCreateBuilderInContext(cg->ctx);
  LLVMValueRef first = LLVMGetFirstInstruction(cg->entry_bb);
  if (first)
    LLVMPositionBuilderBefore(tb, first);
  else
    LLVMPositionBuilderAtEnd(tb, cg->entry_bb);
  LLVMValueRef a = LLVMBuildAlloca(tb, ty, name);
  LLVMSetAlignment(a, 64);
  LLVMDisposeBuilder(tb);
  return a;
}

LLVMValueRef tfx_cg_alloca_array(tfx_cg *cg, LLVMTypeRef elem, int64_t count, const char *name) {
  return tfx_cg_alloca(cg, LLVMArrayType2(elem, (uint64_t)count), name);
}

LLVMValueRef tfx_cg_add(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->b, a, b, ""); }
LLVMValueRef tfx_cg_sub(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWSub(cg->b, a, b, ""); }
LLVMValueRef tfx_cg_mul(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWMul(cg->b, a, b, ""); }
LLVMValueRef tfx_cg_addc(tfx_cg *cg, LLVMValueRef a, int64_t c) {
  return c == 0 ? a : tfx_cg_add(cg, a, tfx_cg_i64(cg, c));
}
LLVMValueRef tfx_cg_mulc(tfx_cg *cg, LLVMValueRef a, int64_t c) {
  return c == 1 ? a : tfx_cg_mul(cg, a, tfx_cg_i64(cg, c));
}
LLVMValueRef tfx_cg_smin(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b, "min");
}

LLVMValueRef tfx_cg_fptr(tfx_cg *cg, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->t_f32, base, &idx, 1, "");
}
LLVMValueRef tfx_cg_fptrc(tfx_cg *cg, LLVMValueRef base, int64_t idx) {
  return idx == 0 ? base : tfx_cg_fptr(cg, base, tfx_cg_i64(cg, idx));
}
LLVMValueRef tfx_cg_byteptr(tfx_cg *cg, LLVMValueRef base, int64_t bytes) {
  if (bytes == 0) return base;
  LLVMValueRef idx = tfx_cg_i64(cg, bytes);
  return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), base, &idx, 1, "");
}

void tfx_cg_prefetch(tfx_cg *cg, LLVMValueRef base, int64_t bytes) {
  LLVMValueRef idx = tfx_cg_i64(cg, bytes);
  LLVMValueRef at = bytes ? LLVMBuildGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), base, &idx, 1, "") : base;
  LLVMTypeRef over = cg->t_ptr;
  LLVMValueRef args[4] = {at, tfx_cg_i32(cg, 0), tfx_cg_i32(cg, 3), tfx_cg_i32(cg, 1)};
  tfx_cg_intrinsic(cg, "llvm.prefetch", &over, 1, args, 4);
}

int64_t tfx_cg_decode_prefetch(const tfx_cg *cg) {
  int p = cg->g->schedule.prefetch;
  if (p > 0) return p;
  if (p != TFX_PREFETCH_AUTO) return 0;
  return tfx_cg_decode_streams(cg) == 2 ? TFX_CG_INT8_PREFETCH_DRAM : TFX_CG_INT8_PREFETCH;
}

int tfx_cg_decode_streams(const tfx_cg *cg) {
  int s = cg->g->schedule.streams;
  return s > 0 ? s : cg->g->weights_bytes >= TFX_STREAMS_AUTO_BYTES ? 2 : 1;
}

int64_t tfx_cg_panel_prefetch(const tfx_cg *cg, int64_t elem_bytes) {
  int p = cg->g->schedule.prefetch;
  return p > 0 ? p : p == TFX_PREFETCH_AUTO && elem_bytes == 2 ? TFX_CG_HALF_PREFETCH : 0;
}

LLVMValueRef tfx_cg_loadf(tfx_cg *cg, LLVMValueRef ptr) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_f32, ptr, "");
  LLVMSetAlignment(v, 4);
  return v;
}
void tfx_cg_storef(tfx_cg *cg, LLVMValueRef v, LLVMValueRef ptr) {
  LLVMValueRef s = LLVMBuildStore(cg->b, v, ptr);
  LLVMSetAlignment(s, 4);
}

LLVMValueRef tfx_cg_const_global(tfx_cg *cg, const char *name, LLVMValueRef init, unsigned align) {
  LLVMValueRef gv = LLVMGetNamedGlobal(cg->mod, name);
  if (gv && LLVMGetInitializer(gv) == init && LLVMIsGlobalConstant(gv)) return gv;
  gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  if (align) LLVMSetAlignment(gv, align);
  return gv;
}

void tfx_cg_for(tfx_cg *cg, tfx_cg_loop *l, LLVMValueRef start, LLVMValueRef end, int64_t step, const char *name) {
  char buf[64];
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  snprintf(buf, sizeof buf, "%s.head", name);
  l->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
  snprintf(buf, sizeof buf, "%s.body", name);
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
  snprintf(buf, sizeof buf, "%s.exit", name);
  l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
  l->step = step;
  LLVMBuildBr(cg->b, l->header);
  LLVMPositionBuilderAtEnd(cg->b, l->header);
  l->iv = LLVMBuildPhi(cg->b, cg->t_i64, name);
  LLVMAddIncoming(l->iv, &start, &pre, 1);
  LLVMValueRef cond = LLVMBuildICmp(cg->b, LLVMIntSLT, l->iv, end, "");
  LLVMBuildCondBr(cg->b, cond, body, l->exit);
  LLVMPositionBuilderAtEnd(cg->b, body);
}

void tfx_cg_for_end(tfx_cg *cg, tfx_cg_loop *l) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMValueRef next = tfx_cg_addc(cg, l->iv, l->step);
  LLVMBuildBr(cg->b, l->header);
  LLVMAddIncoming(l->iv, &next, &cur, 1);
  LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

void tfx_cg_if_begin(tfx_cg *cg, tfx_cg_if *c, LLVMValueRef cond, const char *name) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s.then", name);
  c->then_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
  snprintf(buf, sizeof buf, "%s.else", name);
  c->else_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
  snprintf(buf, sizeof buf, "%s.end", name);
  c->merge = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, buf);
  c->has_else = 0;
  LLVMBuildCondBr(cg->b, cond, c->then_bb, c->else_bb);
  LLVMPositionBuilderAtEnd(cg->b, c->then_bb);
}

void tfx_cg_if_else(tfx_cg *cg, tfx_cg_if *c) {
  LLVMBuildBr(cg->b, c->merge);
  LLVMPositionBuilderAtEnd(cg->b, c->else_bb);
  c->has_else = 1;
}

void tfx_cg_if_end(tfx_cg *cg, tfx_cg_if *c) {
  LLVMBuildBr(cg->b, c->merge);
  if (!c->has_else) {
    LLVMPositionBuilderAtEnd(cg->b, c->else_bb);
    LLVMBuildBr(cg->b, c->merge);
  }
  LLVMPositionBuilderAtEnd(cg->b, c->merge);
}

LLVMValueRef tfx_cg_mask_const(tfx_cg *cg, int nvalid) {
  LLVMValueRef lanes[64];
  for (int i = 0; i < cg->W; i++) lanes[i] = LLVMConstInt(cg->t_i1, i < nvalid, 0);
  return LLVMConstVector(lanes, (unsigned)cg->W);
}

LLVMValueRef tfx_cg_mask_dyn(tfx_cg *cg, LLVMValueRef n) {
  LLVMValueRef lanes[64];
  for (int i = 0; i < cg->W; i++) lanes[i] = LLVMConstInt(cg->t_i32, (unsigned long long)i, 0);
  LLVMValueRef iota = LLVMConstVector(lanes, (unsigned)cg->W);
  /* clamp n into [0, W] before narrowing so large counts stay "all lanes" */
  LLVMValueRef nc = tfx_cg_smin(cg, n, tfx_cg_i64(cg, cg->W));
  LLVMValueRef n32 = LLVMBuildTrunc(cg->b, nc, cg->t_i32, "");
  return LLVMBuildICmp(cg->b, LLVMIntSLT, iota, tfx_cg_splat(cg, n32), "mask");
}

LLVMValueRef tfx_cg_vload_masked(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef mask) {
  LLVMTypeRef over[2] = {cg->t_vf, cg->t_ptr};
  LLVMValueRef args[4] = {ptr, tfx_cg_i32(cg, 4), mask, LLVMConstNull(cg->t_vf)};
  return tfx_cg_intrinsic(cg, "llvm.masked.load", over, 2, args, 4);
}

void tfx_cg_vstore_masked(tfx_cg *cg, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask) {
  LLVMTypeRef over[2] = {cg->t_vf, cg->t_ptr};
  LLVMValueRef args[4] = {v, ptr, tfx_cg_i32(cg, 4), mask};
  tfx_cg_intrinsic(cg, "llvm.masked.store", over, 2, args, 4);
}

LLVMValueRef tfx_cg_vload(tfx_cg *cg, LLVMValueRef ptr, int nvalid) {
  if (nvalid >= cg->W) {
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, ptr, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  return tfx_cg_vload_masked(cg, ptr, tfx_cg_mask_const(cg, nvalid));
}

void tfx_cg_vstore(tfx_cg *cg, LLVMValueRef v, LLVMValueRef ptr, int nvalid) {
  if (nvalid >= cg->W) {
    LLVMValueRef s = LLVMBuildStore(cg->b, v, ptr);
    LLVMSetAlignment(s, 4);
    return;
  }
  tfx_cg_vstore_masked(cg, v, ptr, tfx_cg_mask_const(cg, nvalid));
}

LLVMValueRef tfx_cg_intrinsic(tfx_cg *cg, const char *name, LLVMTypeRef *over, int n_over, LLVMValueRef *args,
                              int n_args) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) {
    tfx_cg_fail(cg, "backend: unknown LLVM intrinsic %s", name);
    return LLVMGetPoison(cg->t_f32);
  }
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, over, (size_t)n_over);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, over, (size_t)n_over);
  return LLVMBuildCall2(cg->b, fty, fn, args, (unsigned)n_args, "");
}

LLVMValueRef tfx_cg_fma(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMTypeRef ty = LLVMTypeOf(a);
  LLVMValueRef args[3] = {a, b, c};
  return tfx_cg_intrinsic(cg, cg->tgt->has_fma ? "llvm.fma" : "llvm.fmuladd", &ty, 1, args, 3);
}

LLVMValueRef tfx_cg_hsum(tfx_cg *cg, LLVMValueRef v) {
  LLVMTypeRef ty = LLVMTypeOf(v);
  LLVMValueRef args[2] = {LLVMConstReal(cg->t_f32, -0.0), v};
  LLVMValueRef r = tfx_cg_intrinsic(cg, "llvm.vector.reduce.fadd", &ty, 1, args, 2);
  LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc);
  return r;
}

LLVMValueRef tfx_cg_hmax(tfx_cg *cg, LLVMValueRef v) {
  LLVMTypeRef ty = LLVMTypeOf(v);
  return tfx_cg_intrinsic(cg, "llvm.vector.reduce.fmax", &ty, 1, &v, 1);
}

LLVMValueRef tfx_cg_fmax(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef ty = LLVMTypeOf(a);
  LLVMValueRef args[2] = {a, b};
  return tfx_cg_intrinsic(cg, "llvm.maxnum", &ty, 1, args, 2);
}

LLVMValueRef tfx_cg_sqrt(tfx_cg *cg, LLVMValueRef v) {
  LLVMTypeRef ty = LLVMTypeOf(v);
  return tfx_cg_intrinsic(cg, "llvm.sqrt", &ty, 1, &v, 1);
}

void tfx_cg_chunks(tfx_cg *cg, int64_t n, tfx_cg_chunk_fn fn, void *ctx) {
  int64_t full = n / cg->W;
  int tail = (int)(n % cg->W);
  if (full == 1) {
    fn(cg, ctx, tfx_cg_i64(cg, 0), cg->W);
  } else if (full > 1) {
    tfx_cg_loop l;
    tfx_cg_for(cg, &l, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, full * cg->W), cg->W, "chunk");
    fn(cg, ctx, l.iv, cg->W);
    tfx_cg_for_end(cg, &l);
  }
  if (tail) fn(cg, ctx, tfx_cg_i64(cg, full * cg->W), tail);
}
