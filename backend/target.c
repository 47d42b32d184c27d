/* backend/target.c — target selection: LLVM's one-time native target
 * initialization (pthread_once), the triple/cpu/features to compile for (the
 * host by default), the vector width the kernels use (16 floats with
 * AVX-512F, 8 with AVX, else 4) and FMA availability, and target machines. */
#include <llvm-c/Target.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "cpu_names.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = -1;

static void init_llvm(void) {
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter() || LLVMInitializeNativeAsmParser()) return;
  init_status = 0;
}

int tfx_cg_init_llvm(char *err, size_t errlen) {
  pthread_once(&init_once, init_llvm);
  if (init_status) return tfx_cg_errf(err, errlen, "backend: LLVM has no native target for this machine");
  return 0;
}

/* Does the comma-separated feature list enable `name` ("+name")? */
static int feature_on(const char *features, const char *name) {
  size_t n = strlen(name);
  const char *p = features;
  int on = -1;
  while (p && *p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n + 1 && strncmp(p + 1, name, n) == 0) on = p[0] == '+';
    p = end ? end + 1 : NULL;
  }
  return on; /* 1 on, 0 off, -1 not mentioned */
}

/* Vector ISA implied by a CPU name when no feature list is given. */
static void cpu_isa(const char *cpu, int *avx512, int *avx, int *fma) {
  static const char *const v4[] = {"skylake-avx512",
                                   "cascadelake",
                                   "cooperlake",
                                   "cannonlake",
                                   "icelake-client",
                                   "icelake-server",
                                   "tigerlake",
                                   "rocketlake",
                                   "sapphirerapids",
                                   "graniterapids",
                                   "emeraldrapids",
                                   "znver4",
                                   "znver5",
                                   "x86-64-v4",
                                   "knl",
                                   "knm",
                                   NULL};
  static const char *const v3[] = {"haswell",   "broadwell", "skylake",   "alderlake", "raptorlake", "meteorlake",
                                   "arrowlake", "lunarlake", "gracemont", "znver1",    "znver2",     "znver3",
                                   "x86-64-v3", "bdver2",    "bdver3",    "bdver4",    NULL};
  static const char *const avx_only[] = {"sandybridge", "ivybridge", "bdver1", "btver2", NULL};
  *avx512 = *avx = *fma = 0;
  for (int i = 0; v4[i]; i++)
    if (!strcmp(cpu, v4[i])) *avx512 = *avx = *fma = 1;
  for (int i = 0; v3[i]; i++)
    if (!strcmp(cpu, v3[i])) *avx = *fma = 1;
  for (int i = 0; avx_only[i]; i++)
    if (!strcmp(cpu, avx_only[i])) *avx = 1;
}

int tfx_cg_target_resolve(const tfx_target_options *o, tfx_cg_target *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  if (tfx_cg_init_llvm(err, errlen)) return -1;
  char *triple = LLVMGetDefaultTargetTriple();
  t->triple = strdup(triple);
  LLVMDisposeMessage(triple);
  if (o && o->cpu) {
    if (tfx_cg_cpu_check(t->triple, o->cpu, err, errlen)) {
      free(t->triple);
      t->triple = NULL;
      return -1;
    }
    t->cpu = strdup(o->cpu);
    t->features = strdup(o->features ? o->features : "");
  } else {
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    t->cpu = strdup(cpu);
    t->features = strdup(o && o->features ? o->features : feat);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
  }
  if (!t->triple || !t->cpu || !t->features) {
    tfx_cg_target_free(t);
    return tfx_cg_errf(err, errlen, "backend: out of memory");
  }
  t->opt_level = o ? o->opt_level : 2;
  if (t->opt_level < 0 || t->opt_level > 3) {
    int lvl = t->opt_level;
    tfx_cg_target_free(t);
    return tfx_cg_errf(err, errlen, "backend: optimization level %d is not in 0..3", lvl);
  }
  int avx512, avx, fma;
  cpu_isa(t->cpu, &avx512, &avx, &fma);
  int f;
  if ((f = feature_on(t->features, "avx512f")) >= 0) avx512 = f;
  if ((f = feature_on(t->features, "avx")) >= 0) avx = f;
  if ((f = feature_on(t->features, "avx2")) == 1) avx = 1;
  if ((f = feature_on(t->features, "fma")) >= 0) fma = f;
  /* LLVM: avx512f implies avx2 and fma; turning avx off turns avx512f off */
  if (feature_on(t->features, "avx") == 0) avx512 = 0;
  if (avx512) avx = fma = 1;
  t->width = avx512 ? 16 : avx ? 8 : 4;
  t->has_fma = fma;
  return 0;
}

void tfx_cg_target_free(tfx_cg_target *t) {
  if (!t) return;
  free(t->triple);
  free(t->cpu);
  free(t->features);
  memset(t, 0, sizeof *t);
}

LLVMTargetMachineRef tfx_cg_target_machine(const tfx_cg_target *t, int pic, int jit, char *err, size_t errlen) {
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
    tfx_cg_errf(err, errlen, "backend: no LLVM target for %s: %s", t->triple, msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  static const LLVMCodeGenOptLevel levels[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
                                                LLVMCodeGenLevelAggressive};
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features, levels[t->opt_level],
                                                    pic ? LLVMRelocPIC : LLVMRelocDefault,
                                                    jit ? LLVMCodeModelJITDefault : LLVMCodeModelDefault);
  if (!tm) tfx_cg_errf(err, errlen, "backend: cannot create a target machine for %s (cpu %s)", t->triple, t->cpu);
  return tm;
}
