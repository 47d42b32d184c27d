/* tfx/cpu_features.h — the names of the CPU features a compiled model
 * records (tfx_model_desc.cpu_features: TFX_CPU_* of tfx/abi.h for x86-64,
 * TFX_CPU_A64_* for AArch64, TFX_CPU_RV64_* for riscv64), in LLVM's spelling
 * ("avx512f", "bmi", "dotprod", "v"), and what each one requires (a feature
 * is usable only with the ones it builds on: avx2 needs avx, every AVX-512
 * extension needs avx512f, zvfh needs v and zfh). Header-only so that the
 * compiler (backend/target.c, which reads LLVM feature strings) and the
 * runtime (runtime/cpu.c: error messages, TFX_CPU_MASK) use the same tables. */
#ifndef TFX_CPU_FEATURES_H
#define TFX_CPU_FEATURES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfx_cpu_feature_info {
  uint64_t bit;
  const char *name; /* LLVM's feature name */
  uint64_t needs;   /* TFX_CPU_* bits this feature builds on */
} tfx_cpu_feature_info;

#define TFX_CPU_SSE42_CHAIN (TFX_CPU_SSE3 | TFX_CPU_SSSE3 | TFX_CPU_SSE4_1 | TFX_CPU_SSE4_2)
/* The x86-64 micro-architecture levels (--mcpu=x86-64-v2/v3/v4), as recorded */
#define TFX_CPU_LEVEL_V2 (TFX_CPU_SSE42_CHAIN | TFX_CPU_POPCNT)
#define TFX_CPU_LEVEL_V3                                                                                               \
  (TFX_CPU_LEVEL_V2 | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_FMA | TFX_CPU_F16C | TFX_CPU_BMI1 | TFX_CPU_BMI2 |          \
   TFX_CPU_LZCNT | TFX_CPU_MOVBE)
#define TFX_CPU_LEVEL_V4                                                                                               \
  (TFX_CPU_LEVEL_V3 | TFX_CPU_AVX512F | TFX_CPU_AVX512BW | TFX_CPU_AVX512VL | TFX_CPU_AVX512DQ | TFX_CPU_AVX512CD)
#define TFX_CPU_AVX512_CHAIN (TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_AVX512F)

static const tfx_cpu_feature_info tfx_cpu_features[TFX_CPU_FEATURE_COUNT] = {
    {TFX_CPU_SSE3, "sse3", 0},
    {TFX_CPU_SSSE3, "ssse3", TFX_CPU_SSE3},
    {TFX_CPU_SSE4_1, "sse4.1", TFX_CPU_SSE3 | TFX_CPU_SSSE3},
    {TFX_CPU_SSE4_2, "sse4.2", TFX_CPU_SSE3 | TFX_CPU_SSSE3 | TFX_CPU_SSE4_1},
    {TFX_CPU_POPCNT, "popcnt", 0},
    {TFX_CPU_AVX, "avx", TFX_CPU_SSE42_CHAIN},
    {TFX_CPU_AVX2, "avx2", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX},
    {TFX_CPU_FMA, "fma", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX},
    {TFX_CPU_F16C, "f16c", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX},
    {TFX_CPU_BMI1, "bmi", 0},
    {TFX_CPU_BMI2, "bmi2", 0},
    {TFX_CPU_LZCNT, "lzcnt", 0},
    {TFX_CPU_MOVBE, "movbe", 0},
    {TFX_CPU_AVX512F, "avx512f", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_FMA | TFX_CPU_F16C},
    {TFX_CPU_AVX512BW, "avx512bw", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_AVX512F},
    {TFX_CPU_AVX512VL, "avx512vl", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_AVX512F},
    {TFX_CPU_AVX512DQ, "avx512dq", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_AVX512F},
    {TFX_CPU_AVX512CD, "avx512cd", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_AVX512F},
    {TFX_CPU_AVX512VNNI, "avx512vnni", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_AVX512F},
    {TFX_CPU_AVXVNNI, "avxvnni", TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2},
    {TFX_CPU_AVX512BF16, "avx512bf16",
     TFX_CPU_SSE42_CHAIN | TFX_CPU_AVX | TFX_CPU_AVX2 | TFX_CPU_AVX512F | TFX_CPU_AVX512BW},
    {TFX_CPU_AVX512FP16, "avx512fp16", TFX_CPU_AVX512_CHAIN | TFX_CPU_AVX512BW},
    {TFX_CPU_AVX512VBMI, "avx512vbmi", TFX_CPU_AVX512_CHAIN | TFX_CPU_AVX512BW},
    {TFX_CPU_AVX512VBMI2, "avx512vbmi2", TFX_CPU_AVX512_CHAIN | TFX_CPU_AVX512BW},
    {TFX_CPU_AVX512BITALG, "avx512bitalg", TFX_CPU_AVX512_CHAIN | TFX_CPU_AVX512BW},
    {TFX_CPU_AVX512VPOPCNTDQ, "avx512vpopcntdq", TFX_CPU_AVX512_CHAIN},
    {TFX_CPU_AVX512IFMA, "avx512ifma", TFX_CPU_AVX512_CHAIN},
    {TFX_CPU_GFNI, "gfni", 0}, /* its VEX and EVEX forms also need avx and avx512f, recorded as such */
};

static const tfx_cpu_feature_info tfx_cpu_features_a64[TFX_CPU_A64_FEATURE_COUNT] = {
    {TFX_CPU_A64_DOTPROD, "dotprod", 0},
    {TFX_CPU_A64_BF16, "bf16", 0},
    {TFX_CPU_A64_I8MM, "i8mm", 0},
    {TFX_CPU_A64_FULLFP16, "fullfp16", 0},
    {TFX_CPU_A64_SVE, "sve", TFX_CPU_A64_FULLFP16}, /* LLVM: sve implies fullfp16 */
};

static const tfx_cpu_feature_info tfx_cpu_features_rv64[TFX_CPU_RV64_FEATURE_COUNT] = {
    {TFX_CPU_RV64_V, "v", 0},
    {TFX_CPU_RV64_ZFH, "zfh", 0},
    {TFX_CPU_RV64_ZVFH, "zvfh", TFX_CPU_RV64_V | TFX_CPU_RV64_ZFH},
};

/* The feature table of an architecture (enum tfx_cpu_arch); *n entries (0
 * and NULL for an unknown one). */
static inline const tfx_cpu_feature_info *tfx_cpu_feature_table(uint32_t arch, size_t *n) {
  switch (arch) {
  case TFX_CPU_ARCH_X86_64: *n = TFX_CPU_FEATURE_COUNT; return tfx_cpu_features;
  case TFX_CPU_ARCH_AARCH64: *n = TFX_CPU_A64_FEATURE_COUNT; return tfx_cpu_features_a64;
  case TFX_CPU_ARCH_RISCV64: *n = TFX_CPU_RV64_FEATURE_COUNT; return tfx_cpu_features_rv64;
  default: *n = 0; return NULL;
  }
}

/* The bits a set of arch's features keeps once every feature whose
 * requirement is missing is dropped too (what a CPU without `removed` can
 * still offer). */
static inline uint64_t tfx_cpu_closure_of(uint32_t arch, uint64_t set) {
  size_t n;
  const tfx_cpu_feature_info *t = tfx_cpu_feature_table(arch, &n);
  for (int changed = 1; changed;) {
    changed = 0;
    for (size_t i = 0; i < n; i++)
      if ((set & t[i].bit) && (set & t[i].needs) != t[i].needs) {
        set &= ~t[i].bit;
        changed = 1;
      }
  }
  return set;
}

/* The bit of a feature name of arch (LLVM spelling), or 0. */
static inline uint64_t tfx_cpu_feature_bit_of(uint32_t arch, const char *name, size_t len) {
  size_t n;
  const tfx_cpu_feature_info *t = tfx_cpu_feature_table(arch, &n);
  for (size_t i = 0; i < n; i++)
    if (strlen(t[i].name) == len && !strncmp(t[i].name, name, len)) return t[i].bit;
  return 0;
}

/* The same for x86-64. */
static inline uint64_t tfx_cpu_closure(uint64_t set) { return tfx_cpu_closure_of(TFX_CPU_ARCH_X86_64, set); }

/* The bit of an x86-64 feature name (LLVM spelling), or 0. */
static inline uint64_t tfx_cpu_feature_bit(const char *name, size_t len) {
  return tfx_cpu_feature_bit_of(TFX_CPU_ARCH_X86_64, name, len);
}

#ifdef __cplusplus
}
#endif
#endif
