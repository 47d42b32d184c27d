/* backend/jit.c — in-process compilation with ORC LLJIT (C API): one LLJIT
 * per module (no shared state between compiled models), built for the same
 * triple/cpu/features as the optimization pipeline, with a process-symbol
 * generator for the memcpy/memset calls LLVM may emit; returns the JIT'd
 * descriptor TFX_DESC_SYMBOL (whose weights is NULL: the caller supplies them). */
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>

#include "cg.h"

struct tfx_jit_module {
  LLVMOrcLLJITRef jit;
};

static int llvm_error(LLVMErrorRef e, const char *what, char *err, size_t errlen) {
  char *m = LLVMGetErrorMessage(e);
  tfx_errf(err, errlen, "backend: %s: %s", what, m ? m : "?");
  LLVMDisposeErrorMessage(m);
  return -1;
}

int tfx_backend_jit(const tfx_graph *g, const tfx_target_options *o, tfx_jit_module **out, const tfx_model_desc **desc,
                    char *err, size_t errlen) {
  if (out) *out = NULL;
  if (desc) *desc = NULL;
  if (!g || !out || !desc) return tfx_errf(err, errlen, "backend: tfx_backend_jit: NULL argument");
  tfx_cg_target t;
  if (tfx_cg_target_resolve(o, &t, err, errlen)) return -1;

  int rc = -1;
  LLVMTargetMachineRef opt_tm = NULL, jit_tm = NULL;
  LLVMOrcThreadSafeContextRef tsc = NULL;
  LLVMOrcLLJITRef jit = NULL;
  LLVMModuleRef mod = NULL;
  tfx_jit_module *m = NULL;

  opt_tm = tfx_cg_target_machine(&t, 0, 1, err, errlen);
  jit_tm = opt_tm ? tfx_cg_target_machine(&t, 0, 1, err, errlen) : NULL;
  if (!jit_tm) goto done;
  tsc = LLVMOrcCreateNewThreadSafeContext();
  if (tfx_cg_build_module(g, &t, LLVMOrcThreadSafeContextGetContext(tsc), opt_tm, NULL, &mod, err, errlen)) goto done;
  if (tfx_cg_optimize(mod, opt_tm, t.opt_level, err, errlen)) goto done;

  LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm));
  jit_tm = NULL;                                 /* owned by the builder now */
  LLVMErrorRef e = LLVMOrcCreateLLJIT(&jit, jb); /* consumes jb */
  if (e) {
    jit = NULL;
    llvm_error(e, "cannot create the JIT", err, errlen);
    goto done;
  }
  LLVMOrcDefinitionGeneratorRef gen = NULL;
  e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL);
  if (e) {
    llvm_error(e, "cannot create the process symbol generator", err, errlen);
    goto done;
  }
  LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(jit), gen);
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
  mod = NULL; /* owned by tsm */
  e = LLVMOrcLLJITAddLLVMIRModule(jit, LLVMOrcLLJITGetMainJITDylib(jit), tsm);
  if (e) {
    LLVMOrcDisposeThreadSafeModule(tsm);
    llvm_error(e, "cannot add the module to the JIT", err, errlen);
    goto done;
  }
  LLVMOrcExecutorAddress addr = 0;
  e = LLVMOrcLLJITLookup(jit, &addr, TFX_DESC_SYMBOL);
  if (e) {
    llvm_error(e, "JIT compilation failed", err, errlen);
    goto done;
  }
  if (!addr) {
    tfx_errf(err, errlen, "backend: the JIT'd module has no " TFX_DESC_SYMBOL);
    goto done;
  }
  m = calloc(1, sizeof *m);
  if (!m) {
    tfx_errf(err, errlen, "backend: out of memory");
    goto done;
  }
  m->jit = jit;
  jit = NULL;
  *out = m;
  *desc = (const tfx_model_desc *)(uintptr_t)addr;
  rc = 0;

done:
  if (mod) LLVMDisposeModule(mod);
  if (jit) {
    LLVMErrorRef de = LLVMOrcDisposeLLJIT(jit);
    if (de) LLVMConsumeError(de);
  }
  if (tsc) LLVMOrcDisposeThreadSafeContext(tsc);
  if (opt_tm) LLVMDisposeTargetMachine(opt_tm);
  if (jit_tm) LLVMDisposeTargetMachine(jit_tm);
  tfx_cg_target_free(&t);
  return rc;
}

void tfx_backend_jit_free(tfx_jit_module *m) {
  if (!m) return;
  if (m->jit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(m->jit);
    if (e) LLVMConsumeError(e);
  }
  free(m);
}
