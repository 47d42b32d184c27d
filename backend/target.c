/* backend/target.c — the target description: LLVM's one-time native target
 * initialization (pthread_once), the triple/cpu/features to compile for (the
 * host by default), and everything derived from them that the kernels and the
 * object writer assume (tfx_cg_target in cg.h): vector width and register
 * count, FMA, int8 dot-product and bf16 instructions, the micro-kernel's and
 * the flash attention's tile shapes, the packed weight layout, and the ELF
 * identity of the objects LLVM writes; and target machines.
 *
 * Features come from LLVM's feature string: the host's
 * (LLVMGetHostCPUFeatures, complete) or the one given with the cpu. LLVM's C
 * API cannot expand a named cpu (--mcpu NAME) into its features, so for a
 * named x86 cpu the features it implies are listed here (x86_levels) and the
 * given feature string is applied over them. */
#include <elf.h>
#include <llvm-c/Target.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../include/tfx/cpu_features.h"
#include "cg.h"
#include "cpu_names.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = -1;

static void init_llvm(void) {
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter() || LLVMInitializeNativeAsmParser()) return;
  /* the targets tfxc cross-compiles for (--target) */
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
  LLVMInitializeAArch64AsmParser();
  LLVMInitializeRISCVTargetInfo();
  LLVMInitializeRISCVTarget();
  LLVMInitializeRISCVTargetMC();
  LLVMInitializeRISCVAsmPrinter();
  LLVMInitializeRISCVAsmParser();
  init_status = 0;
}

int tfx_cg_init_llvm(char *err, size_t errlen) {
  pthread_once(&init_once, init_llvm);
  if (init_status) return tfx_errf(err, errlen, "backend: LLVM has no native target for this machine");
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

/* ---- x86-64 ---- */

/* The features a named x86 cpu implies (LLVM 19's X86TargetParser): its
 * vector ISA, which chooses the kernels, and every feature the descriptor
 * records (tfx_cpu_features, docs/portability.md); the cpus of the x86-64
 * levels have at least that level's features. */
typedef struct {
  const char *features;
  const char *const *cpus;
} x86_level;

static const char *const spr_cpus[] = {"sapphirerapids",  "emeraldrapids",   "graniterapids",
                                       "graniterapids-d", "graniterapids_d", NULL};
static const char *const znver5_cpus[] = {"znver5", NULL};
static const char *const znver4_cpus[] = {"znver4", NULL};
static const char *const cooperlake_cpus[] = {"cooperlake", NULL};
static const char *const icelake_cpus[] = {
    "icelake-client", "icelake-server", "icelake_client", "icelake_server", "tigerlake", "rocketlake", NULL};
static const char *const cascadelake_cpus[] = {"cascadelake", NULL};
static const char *const cannonlake_cpus[] = {"cannonlake", NULL};
static const char *const avx512_cpus[] = {"skylake-avx512", "skylake_avx512", "skx", "x86-64-v4", NULL};
static const char *const knl_cpus[] = {"knl", "mic_avx512", NULL};
static const char *const knm_cpus[] = {"knm", NULL};
static const char *const avxvnni_cpus[] = {
    "alderlake", "raptorlake",  "meteorlake",   "arrowlake",  "arrowlake-s",      "arrowlake_s", "lunarlake",
    "gracemont", "pantherlake", "sierraforest", "grandridge", "clearwaterforest", NULL};
static const char *const avx2_cpus[] = {"haswell",
                                        "broadwell",
                                        "skylake",
                                        "core-avx2",
                                        "core_4th_gen_avx",
                                        "core_4th_gen_avx_tsx",
                                        "core_5th_gen_avx",
                                        "core_5th_gen_avx_tsx",
                                        "znver1",
                                        "znver2",
                                        "znver3",
                                        "x86-64-v3",
                                        NULL};
static const char *const bdver4_cpus[] = {"bdver4", NULL};
static const char *const bdver2_cpus[] = {"bdver2", "bdver3", NULL};
static const char *const btver2_cpus[] = {"btver2", NULL};
static const char *const ivybridge_cpus[] = {"ivybridge", "core-avx-i", "core_3rd_gen_avx", NULL};
static const char *const avx_cpus[] = {"sandybridge", "corei7-avx", "core_2nd_gen_avx", NULL};
static const char *const bdver1_cpus[] = {"bdver1", NULL};
static const char *const tremont_cpus[] = {"tremont", NULL};
static const char *const slm_cpus[] = {"silvermont",        "slm", "goldmont", "goldmont-plus", "goldmont_plus",
                                       "atom_sse4_2_movbe", NULL};
static const char *const sse42_cpus[] = {"x86-64-v2",          "nehalem",     "westmere", "corei7", "core_i7_sse4_2",
                                         "core_aes_pclmulqdq", "atom_sse4_2", NULL};
static const char *const sse41_cpus[] = {"penryn", "core_2_duo_sse4_1", NULL};
static const char *const ssse3_cpus[] = {"core2", "core_2_duo_ssse3", "atom", "bonnell", NULL};
static const char *const btver1_cpus[] = {"btver1", NULL};
static const char *const amdfam10_cpus[] = {"amdfam10", "barcelona", NULL};
static const char *const sse3_cpus[] = {"nocona", "k8-sse3", "athlon64-sse3", "opteron-sse3", NULL};

#define V2 "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt"
#define V3 V2 ",+avx,+avx2,+fma,+f16c,+bmi,+bmi2,+lzcnt,+movbe"
#define AVX512_BASE V3 ",+avx512f,+avx512cd"
#define SKX AVX512_BASE ",+avx512bw,+avx512dq,+avx512vl"
/* Ice Lake's AVX-512 extensions and GFNI (LLVM shifts bytes with gf2p8affineqb) */
#define ICL SKX ",+avx512vnni,+avx512vbmi,+avx512vbmi2,+avx512bitalg,+avx512vpopcntdq,+avx512ifma,+gfni"
static const x86_level x86_levels[] = {
    {ICL ",+avx512bf16,+avxvnni,+avx512fp16", spr_cpus},
    {ICL ",+avx512bf16,+avxvnni", znver5_cpus},
    {ICL ",+avx512bf16", znver4_cpus},
    {SKX ",+avx512vnni,+avx512bf16", cooperlake_cpus},
    {ICL, icelake_cpus},
    {SKX ",+avx512vnni", cascadelake_cpus},
    {SKX ",+avx512vbmi,+avx512ifma", cannonlake_cpus},
    {SKX, avx512_cpus},
    {AVX512_BASE, knl_cpus},
    {AVX512_BASE ",+avx512vpopcntdq", knm_cpus},
    {V3 ",+avxvnni,+gfni", avxvnni_cpus},
    {V3, avx2_cpus},
    {V2 ",+avx,+fma,+f16c,+lzcnt,+bmi,+bmi2,+movbe", bdver4_cpus},
    {V2 ",+avx,+fma,+f16c,+lzcnt,+bmi", bdver2_cpus},
    {V2 ",+avx,+f16c,+lzcnt,+bmi,+movbe", btver2_cpus},
    {V2 ",+avx,+f16c", ivybridge_cpus},
    {V2 ",+avx", avx_cpus},
    {V2 ",+avx,+lzcnt", bdver1_cpus},
    {V2 ",+movbe,+gfni", tremont_cpus},
    {V2 ",+movbe", slm_cpus},
    {V2, sse42_cpus},
    {"+sse3,+ssse3,+sse4.1", sse41_cpus},
    {"+sse3,+ssse3", ssse3_cpus},
    {"+sse3,+ssse3,+popcnt,+lzcnt", btver1_cpus},
    {"+sse3,+popcnt,+lzcnt", amdfam10_cpus},
    {"+sse3", sse3_cpus},
};

static const char *x86_implied(const char *cpu) {
  for (size_t l = 0; l < sizeof x86_levels / sizeof x86_levels[0]; l++)
    for (int i = 0; x86_levels[l].cpus[i]; i++)
      if (!strcmp(cpu, x86_levels[l].cpus[i])) return x86_levels[l].features;
  return "";
}

/* A feature as the given list says, else as the cpu implies, else off. */
static int x86_feature(const char *features, const char *implied, const char *name) {
  int f = feature_on(features, name);
  if (f < 0) f = feature_on(implied, name);
  return f > 0;
}

static void describe_x86(tfx_cg_target *t) {
  const char *fs = t->features, *im = x86_implied(t->cpu);
  int avx512 = x86_feature(fs, im, "avx512f"), avx = x86_feature(fs, im, "avx"), fma = x86_feature(fs, im, "fma");
  if (feature_on(fs, "avx2") == 1) avx = 1;
  /* LLVM: avx512f implies avx2 and fma; turning avx off turns avx512f off */
  if (feature_on(fs, "avx") == 0) avx512 = 0;
  if (avx512) avx = fma = 1;
  int avx2 = avx && (avx512 || x86_feature(fs, im, "avx2"));
  t->width = avx512 ? 16 : avx ? 8 : 4;
  t->vregs = avx512 ? 32 : 16; /* zmm0-31, else ymm0-15 / xmm0-15 */
  t->has_fma = fma;
  int maddubs = avx512 ? x86_feature(fs, im, "avx512bw") : avx ? avx2 : x86_feature(fs, im, "ssse3");
  t->i8dot = (maddubs ? TFX_CG_I8_MADDUBS : 0) | (avx2 && x86_feature(fs, im, "avxvnni") ? TFX_CG_I8_AVXVNNI : 0) |
             (avx512 && x86_feature(fs, im, "avx512vnni") ? TFX_CG_I8_VNNI512 : 0);
  t->has_bf16 = avx512 && x86_feature(fs, im, "avx512bf16");
  /* what the descriptor records: every listed feature the target enables,
   * consistent with the vector ISA chosen above */
  uint64_t set = 0;
  for (size_t i = 0; i < TFX_CPU_FEATURE_COUNT; i++)
    if (x86_feature(fs, im, tfx_cpu_features[i].name)) set |= tfx_cpu_features[i].bit;
  set &= ~(uint64_t)(TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_FMA | TFX_CPU_AVX512F);
  set |= (avx ? TFX_CPU_AVX : 0) | (avx2 ? TFX_CPU_AVX2 : 0) | (fma ? TFX_CPU_FMA : 0) | (avx512 ? TFX_CPU_AVX512F : 0);
  if (avx) set |= TFX_CPU_SSE42_CHAIN; /* LLVM: avx implies sse4.2; avx512f implies f16c */
  if (avx512) set |= TFX_CPU_F16C;
  t->cpu_arch = TFX_CPU_ARCH_X86_64;
  t->cpu_features = tfx_cpu_closure(set);
}

/* What the descriptor records for AArch64 and riscv64: the features of
 * arch's table (tfx/cpu_features.h) the target's feature list enables (what
 * the kernels choose from: dotprod, bf16, v). A named CPU's implied
 * features are not read: the kernels use only listed ones. */
static uint64_t listed_features(uint32_t arch, const char *features) {
  size_t n;
  const tfx_cpu_feature_info *table = tfx_cpu_feature_table(arch, &n);
  uint64_t set = 0;
  for (size_t i = 0; i < n; i++)
    if (feature_on(features, table[i].name) == 1) set |= table[i].bit;
  return set;
}

/* ---- AArch64: NEON (SVE is not used) ---- */

static void describe_aarch64(tfx_cg_target *t) {
  t->width = 4;
  t->vregs = 32; /* v0-v31 */
  t->has_fma = 1;
  t->i8dot = feature_on(t->features, "dotprod") == 1 ? TFX_CG_I8_SDOT : 0;
  t->has_bf16 = feature_on(t->features, "bf16") == 1;
  t->cpu_arch = TFX_CPU_ARCH_AARCH64;
  t->cpu_features = listed_features(t->cpu_arch, t->features);
}

/* ---- RISC-V 64 (Linux: rv64gc, the lp64d ABI), with the vector extension ---- */

/* The features a riscv64 target compiles with when none are given:
 * rv64gv (Debian's riscv64 is rv64gc; V for the kernels' vectors), without
 * C: the generated code's instructions are then all 4-byte aligned, so none
 * crosses a page. QEMU before 8.0 (Debian 12's qemu-user is 7.2) aborts
 * translating a vector instruction that crosses a page ("decode_save_opc:
 * Assertion `ctx->insn_start != NULL' failed", its issue 1441), and with
 * compressed instructions where that happens moves with every change of
 * the code's layout: test_cross's riscv64 .so hit it in a `vfadd.vf` at a
 * page's last 2 bytes after an unrelated runtime change. The runtime and
 * libc around it stay rv64gc. */
#define RISCV64_DEFAULT_FEATURES "+m,+a,+f,+d,+v"

static void describe_riscv64(tfx_cg_target *t) {
  int v = feature_on(t->features, "v") == 1;
  /* with V (VLEN >= 128), fixed vectors of 4 floats are one register of
   * the 32; without it LLVM splits them into scalars (32 f registers) */
  t->width = 4;
  t->vregs = 32;
  t->has_fma = feature_on(t->features, "f") == 1 || v;
  t->i8dot = 0;
  t->has_bf16 = 0;
  t->cpu_arch = TFX_CPU_ARCH_RISCV64;
  t->cpu_features = listed_features(t->cpu_arch, t->features);
}

/* ---- what the kernels derive from the registers ---- */

/* The micro-kernel's tile: per row of x, 2 vectors of columns (1 for GLU
 * with 16 registers); rows to fill the registers, leaving room for the
 * weight vectors and a broadcast: 12 x 32 on AVX-512 (24 accumulators of 32
 * zmm), 6 x 2W with 16 registers; GLU 6 x 32 on AVX-512, 6 x W otherwise. */
static tfx_cg_tile mk_tile(int regs, int width, int glu) {
  int nv = glu && regs < 32 ? 1 : 2;       /* vectors of columns per tile */
  int per_row = glu ? 2 * nv : nv;         /* accumulators per row */
  int mr = (regs - 2 - per_row) / per_row; /* room for the weight vectors and a broadcast */
  if (mr > 12) mr = 12;
  if (mr < 1) mr = 1;
  return (tfx_cg_tile){mr, mr / 3 > 0 ? mr / 3 : 1, nv * width};
}

/* The ELF identity of the objects LLVM writes for t: an empty module
 * emitted by LLVM, its header read back. */
static int elf_identity(tfx_cg_target *t, char *err, size_t errlen) {
  LLVMTargetMachineRef tm = tfx_cg_target_machine(t, 1, 0, err, errlen);
  if (!tm) return -1;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("tfx_elf_probe", ctx);
  LLVMSetTarget(mod, t->triple);
  LLVMMemoryBufferRef buf = NULL;
  char *msg = NULL;
  int rc = 0;
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &msg, &buf)) {
    rc = tfx_errf(err, errlen, "backend: LLVM cannot write objects for %s: %s", t->triple, msg ? msg : "?");
  } else {
    const unsigned char *p = (const unsigned char *)LLVMGetBufferStart(buf);
    Elf64_Ehdr eh;
    memset(&t->elf, 0, sizeof t->elf);
    if (LLVMGetBufferSize(buf) >= sizeof eh && !memcmp(p, ELFMAG, SELFMAG) && p[EI_CLASS] == ELFCLASS64 &&
        p[EI_DATA] == ELFDATA2LSB) {
      memcpy(&eh, p, sizeof eh);
      t->elf.machine = eh.e_machine;
      t->elf.flags = eh.e_flags;
      t->elf.osabi = p[EI_OSABI];
    }
    LLVMDisposeMemoryBuffer(buf);
  }
  LLVMDisposeMessage(msg);
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  return rc;
}

int tfx_cg_target_describe(tfx_cg_target *t, const char *triple, const char *cpu, const char *features, int opt_level,
                           char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  if (opt_level < 0 || opt_level > 3)
    return tfx_errf(err, errlen, "backend: optimization level %d is not in 0..3", opt_level);
  t->opt_level = opt_level;
  t->triple = strdup(triple ? triple : "");
  t->cpu = strdup(cpu ? cpu : "");
  t->features = strdup(features ? features : "");
  if (!t->triple || !t->cpu || !t->features) {
    tfx_cg_target_free(t);
    return tfx_errf(err, errlen, "backend: out of memory");
  }
  LLVMTargetRef target;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &msg)) {
    tfx_errf(err, errlen, "backend: LLVM has no target for '%s': %s", t->triple, msg ? msg : "?");
    LLVMDisposeMessage(msg);
    tfx_cg_target_free(t);
    return -1;
  }
  LLVMDisposeMessage(msg);
  t->arch = LLVMGetTargetName(target);
  if (!strcmp(t->arch, "x86-64")) {
    describe_x86(t);
  } else if (!strcmp(t->arch, "aarch64")) {
    describe_aarch64(t);
  } else if (!strcmp(t->arch, "riscv64")) {
    describe_riscv64(t);
  } else {
    tfx_errf(err, errlen,
             "backend: no target description for '%s' (LLVM target %s; tfxc describes x86-64, aarch64 and riscv64)",
             t->triple, t->arch);
    tfx_cg_target_free(t);
    return -1;
  }
  t->mk[0] = mk_tile(t->vregs, t->width, 0);
  t->mk[1] = mk_tile(t->vregs, t->width, 1);
  t->flash.rows = t->width;
  /* the score accumulators: half the registers; the P.V chunk: a quarter
   * (the kernel's arrays hold at most 16 and 8) */
  t->flash.keys = t->vregs / 2 < 16 ? t->vregs / 2 : 16;
  t->flash.dims = t->vregs / 4 < 8 ? t->vregs / 4 : 8;
  t->pack = (tfx_pack_layout){.panel = TFX_CG_LIN_NB, .kc = 1}; /* the micro-kernel reads kc = 1 */
  if (t->pack.panel % t->width || t->mk[0].cols > t->pack.panel || t->mk[1].cols > t->pack.panel ||
      t->mk[0].mr > TFX_CG_GEMM_MAX_MR) {
    tfx_errf(err, errlen, "backend: internal error: the panel (%d) does not hold the tiles of width %d", t->pack.panel,
             t->width);
    tfx_cg_target_free(t);
    return -1;
  }
  if (elf_identity(t, err, errlen)) {
    tfx_cg_target_free(t);
    return -1;
  }
  return 0;
}

int tfx_cg_split_cpus(const tfx_target_options *o, tfx_target_options *v, char *buf, size_t buflen, char *err,
                      size_t errlen) {
  v[0] = o ? *o : (tfx_target_options){.opt_level = 2};
  if (!o || !o->cpu || !strchr(o->cpu, ',')) return 1;
  if (strlen(o->cpu) >= buflen) return tfx_errf(err, errlen, "backend: --mcpu '%s' is too long", o->cpu);
  strcpy(buf, o->cpu);
  int n = 0;
  for (char *p = buf; p;) {
    char *end = strchr(p, ',');
    if (end) *end = '\0';
    if (!*p) return tfx_errf(err, errlen, "backend: --mcpu '%s' has an empty CPU name", o->cpu);
    if (n == TFX_CG_MAX_VARIANTS)
      return tfx_errf(err, errlen, "backend: --mcpu '%s' names more than %d CPUs", o->cpu, TFX_CG_MAX_VARIANTS);
    v[n] = *o;
    v[n++].cpu = p;
    p = end ? end + 1 : NULL;
  }
  return n;
}

/* o->triple, normalized by LLVM (aarch64-linux-gnu becomes
 * aarch64-unknown-linux-gnu); NULL when it is not given or is the host's
 * (the same triple, or the host's architecture on Linux: compile for the
 * host). *err set when it names no architecture tfxc
 * cross-compiles for. */
static char *foreign_triple(const tfx_target_options *o, const char *host, char *err, size_t errlen) {
  if (!o || !o->triple || !o->triple[0]) return NULL;
  char *norm = LLVMNormalizeTargetTriple(o->triple);
  if (!norm) {
    tfx_errf(err, errlen, "backend: out of memory");
    return NULL;
  }
  size_t arch = strcspn(norm, "-");
  if (!strcmp(norm, host) || (arch == strcspn(host, "-") && !strncmp(norm, host, arch) && strstr(norm, "-linux"))) {
    LLVMDisposeMessage(norm);
    return NULL;
  }
  if ((strncmp(norm, "aarch64-", 8) && strncmp(norm, "riscv64-", 8)) || !strstr(norm, "-linux")) {
    tfx_errf(err, errlen,
             "backend: --target '%s' is not supported (tfxc compiles for the host, %s, and cross-compiles for "
             "aarch64-linux-gnu and riscv64-linux-gnu)",
             o->triple, host);
    LLVMDisposeMessage(norm);
    return NULL;
  }
  return norm;
}

int tfx_cg_target_resolve(const tfx_target_options *o, tfx_cg_target *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  if (o && o->cpu && strchr(o->cpu, ','))
    return tfx_errf(err, errlen,
                    "backend: --mcpu '%s' names several CPUs, which make code variants of a model: only for -o and -c",
                    o->cpu);
  if (tfx_cg_init_llvm(err, errlen)) return -1;
  char *triple = LLVMGetDefaultTargetTriple(), *cpu = NULL, *feat = NULL;
  if (err && errlen) err[0] = 0;
  char *cross = foreign_triple(o, triple, err, errlen);
  int rc = -1;
  if (!cross && err && errlen && err[0]) {
    /* an unsupported --target: err says why */
  } else if (cross) {
    /* another machine: its CPU is named (native is the host's), generic by default */
    const char *c = o->cpu && strcmp(o->cpu, "native") ? o->cpu : NULL;
    if (o->cpu && !c)
      tfx_errf(err, errlen,
               "backend: --mcpu native names the host's CPU; with --target %s name the target's "
               "(e.g. cortex-a72) or leave it out (generic)",
               o->triple);
    else if (!c || !tfx_cg_cpu_check(cross, c, err, errlen)) {
      int rv = !strncmp(cross, "riscv64", 7);
      const char *f = o->features ? o->features : rv ? RISCV64_DEFAULT_FEATURES : "";
      rc = tfx_cg_target_describe(t, cross, c ? c : rv ? "generic-rv64" : "generic", f, o->opt_level, err, errlen);
    }
  } else if (o && o->cpu && strcmp(o->cpu, "native") != 0) {
    if (!tfx_cg_cpu_check(triple, o->cpu, err, errlen))
      rc = tfx_cg_target_describe(t, triple, o->cpu, o->features ? o->features : "", o->opt_level, err, errlen);
  } else {
    cpu = LLVMGetHostCPUName();
    feat = LLVMGetHostCPUFeatures();
    rc = tfx_cg_target_describe(t, triple, cpu, o && o->features ? o->features : feat, o ? o->opt_level : 2, err,
                                errlen);
  }
  LLVMDisposeMessage(triple);
  if (cross) LLVMDisposeMessage(cross);
  if (cpu) LLVMDisposeMessage(cpu);
  if (feat) LLVMDisposeMessage(feat);
  return rc;
}

int tfx_backend_target_is_host(const tfx_target_options *o, char *err, size_t errlen) {
  if (tfx_cg_init_llvm(err, errlen)) return -1;
  char *host = LLVMGetDefaultTargetTriple();
  if (err && errlen) err[0] = 0;
  char *cross = foreign_triple(o, host, err, errlen);
  int rc = cross ? 0 : err && errlen && err[0] ? -1 : 1;
  LLVMDisposeMessage(host);
  if (cross) LLVMDisposeMessage(cross);
  return rc;
}

int tfx_backend_pack_layout(const tfx_target_options *o, tfx_pack_layout *out, char *err, size_t errlen) {
  char cpus[512];
  tfx_target_options v[TFX_CG_MAX_VARIANTS];
  int n = tfx_cg_split_cpus(o, v, cpus, sizeof cpus, err, errlen);
  for (int i = 0; i < n; i++) { /* the variants share the weights: one layout */
    tfx_cg_target t;
    if (tfx_cg_target_resolve(&v[i], &t, err, errlen)) return -1;
    int differs = i > 0 && memcmp(&t.pack, out, sizeof t.pack);
    *out = t.pack;
    tfx_cg_target_free(&t);
    if (differs)
      return tfx_errf(err, errlen,
                      "backend: --mcpu %s and %s need different weight layouts; a model's variants share one", v[0].cpu,
                      v[i].cpu);
  }
  return n < 0 ? -1 : 0;
}

int tfx_backend_target_summary(const tfx_target_options *o, char *buf, size_t len, char *err, size_t errlen) {
  tfx_cg_target t;
  if (tfx_cg_target_resolve(o, &t, err, errlen)) return -1;
  char i8[64] = "";
  static const struct {
    unsigned bit;
    const char *name;
  } dots[] = {{TFX_CG_I8_VNNI512, "avx512-vnni"},
              {TFX_CG_I8_AVXVNNI, "avx-vnni"},
              {TFX_CG_I8_MADDUBS, "maddubs"},
              {TFX_CG_I8_SDOT, "sdot"}};
  for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++)
    if (t.i8dot & dots[i].bit) {
      if (i8[0]) strcat(i8, ",");
      strcat(i8, dots[i].name);
    }
  snprintf(buf, len,
           "%s %s: %d floats x %d vector registers, fma %s, int8 dot %s, bf16 %s; micro-kernel %dx%d (glu %dx%d), "
           "flash %d rows x %d keys, panel %dx%d, ELF machine %u",
           t.triple, t.cpu, t.width, t.vregs, t.has_fma ? "yes" : "no", i8[0] ? i8 : "none", t.has_bf16 ? "yes" : "no",
           t.mk[0].mr, t.mk[0].cols, t.mk[1].mr, t.mk[1].cols, t.flash.rows, t.flash.keys, t.pack.panel, t.pack.kc,
           (unsigned)t.elf.machine);
  tfx_cg_target_free(&t);
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
    tfx_errf(err, errlen, "backend: no LLVM target for %s: %s", t->triple, msg ? msg : "?");
    LLVMDisposeMessage(msg);
    return NULL;
  }
  static const LLVMCodeGenOptLevel levels[4] = {LLVMCodeGenLevelNone, LLVMCodeGenLevelLess, LLVMCodeGenLevelDefault,
                                                LLVMCodeGenLevelAggressive};
  LLVMTargetMachineOptionsRef opts = LLVMCreateTargetMachineOptions();
  LLVMTargetMachineOptionsSetCPU(opts, t->cpu);
  LLVMTargetMachineOptionsSetFeatures(opts, t->features);
  LLVMTargetMachineOptionsSetCodeGenOptLevel(opts, levels[t->opt_level]);
  LLVMTargetMachineOptionsSetRelocMode(opts, pic ? LLVMRelocPIC : LLVMRelocDefault);
  LLVMTargetMachineOptionsSetCodeModel(opts, jit ? LLVMCodeModelJITDefault : LLVMCodeModelDefault);
  /* riscv64 Linux passes floats in f registers (lp64d), as its libc does */
  if (!strcmp(t->arch ? t->arch : "", "riscv64") && feature_on(t->features, "d") == 1)
    LLVMTargetMachineOptionsSetABI(opts, "lp64d");
  LLVMTargetMachineRef tm = LLVMCreateTargetMachineWithOptions(target, t->triple, opts);
  LLVMDisposeTargetMachineOptions(opts);
  if (!tm) tfx_errf(err, errlen, "backend: cannot create a target machine for %s (cpu %s)", t->triple, t->cpu);
  return tm;
}
