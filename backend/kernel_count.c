/* backend/kernel_count.c — how many kernels each entry point launches: the
 * module of a planned graph is built (not optimized) and the
 * exec->parallel_for calls of `forward` and `decode` are counted, so the
 * number is exactly what the generated code runs (for `tfxc --stats` and the
 * optimizer's tests). */
#include <stdlib.h>

#include "cg.h"

static int count_launches(LLVMModuleRef mod, const char *name) {
  LLVMValueRef fn = LLVMGetNamedFunction(mod, name);
  if (!fn) return -1;
  int n = 0;
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
      if (LLVMIsACallInst(in) && !LLVMIsAFunction(LLVMGetCalledValue(in))) n++; /* exec->parallel_for */
  return n;
}

int tfx_backend_kernel_counts(const tfx_graph *g, const tfx_target_options *o, int *forward, int *decode, char *err,
                              size_t errlen) {
  *forward = *decode = -1;
  tfx_cg_target t;
  if (tfx_cg_target_resolve(o, &t, err, errlen)) return -1;
  int rc = -1;
  LLVMTargetMachineRef tm = tfx_cg_target_machine(&t, 1, 0, err, errlen);
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = NULL;
  if (tm && !tfx_cg_build_module(g, &t, ctx, tm, NULL, &mod, err, errlen)) {
    *forward = count_launches(mod, "tfx_entry_forward");
    *decode = count_launches(mod, "tfx_entry_decode");
    rc = *forward >= 0 && *decode >= 0 ? 0 : tfx_errf(err, errlen, "backend: the module has no entry points");
    LLVMDisposeModule(mod);
  }
  LLVMContextDispose(ctx);
  if (tm) LLVMDisposeTargetMachine(tm);
  tfx_cg_target_free(&t);
  return rc;
}
