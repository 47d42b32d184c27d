/* runtime/cpu.c — the CPU check of tfx_model_open: which of the features a
 * model records (tfx_model_desc.cpu_features, tfx/cpu_features.h) this CPU
 * has, detected with cpuid and, for the AVX and AVX-512 register state, with
 * xgetbv (the OS must save those registers: a CPU with AVX-512 under an OS
 * that does not enable its state cannot run AVX-512 code). The environment
 * variable TFX_CPU_MASK removes features from the detected set (a
 * comma-separated list of feature names, e.g. "avx512f": a CPU without
 * them, and without whatever builds on them), so that the refusal can be
 * tested on a newer CPU. Of a model's code variants (--mcpu=A,B) the one
 * with the most features the CPU has is chosen; a model none of whose
 * variants the CPU can run is refused with TFX_ERR_CPU naming the missing
 * features, before any of its code runs. On AArch64 and riscv64 the
 * features come from the kernel's hwcaps (getauxval: AT_HWCAP, AT_HWCAP2);
 * riscv64's zfh and zvfh have no hwcap bit and count as absent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"
#include "tfx/cpu_features.h"

/* the architecture this runtime runs on, as enum tfx_cpu_arch (numbers:
 * the preprocessor tests them) */
#if defined(__x86_64__)
#define HOST_ARCH 1 /* TFX_CPU_ARCH_X86_64 */
#elif defined(__aarch64__)
#define HOST_ARCH 2 /* TFX_CPU_ARCH_AARCH64 */
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_ARCH 3 /* TFX_CPU_ARCH_RISCV64 */
#else
#define HOST_ARCH 0 /* TFX_CPU_ARCH_UNKNOWN */
#endif
_Static_assert(TFX_CPU_ARCH_X86_64 == 1 && TFX_CPU_ARCH_AARCH64 == 2 && TFX_CPU_ARCH_RISCV64 == 3,
               "HOST_ARCH's numbers");

static const char *arch_name(uint32_t arch) {
  return arch == TFX_CPU_ARCH_X86_64    ? "x86-64"
         : arch == TFX_CPU_ARCH_AARCH64 ? "aarch64"
         : arch == TFX_CPU_ARCH_RISCV64 ? "riscv64"
                                        : "an unknown architecture";
}

#if HOST_ARCH == 2 || HOST_ARCH == 3
#include <sys/auxv.h>

static uint64_t detect_hwcaps(void) {
  unsigned long h = getauxval(AT_HWCAP);
  uint64_t f = 0;
#if HOST_ARCH == 2
  unsigned long h2 = getauxval(AT_HWCAP2);
  if (h & (1ul << 20)) f |= TFX_CPU_A64_DOTPROD;  /* HWCAP_ASIMDDP */
  if (h & (1ul << 10)) f |= TFX_CPU_A64_FULLFP16; /* HWCAP_ASIMDHP */
  if (h & (1ul << 22)) f |= TFX_CPU_A64_SVE;      /* HWCAP_SVE */
  if (h2 & (1ul << 13)) f |= TFX_CPU_A64_I8MM;    /* HWCAP2_I8MM */
  if (h2 & (1ul << 14)) f |= TFX_CPU_A64_BF16;    /* HWCAP2_BF16 */
#else
  if (h & (1ul << ('V' - 'A'))) f |= TFX_CPU_RV64_V; /* single-letter extensions, as in misa */
#endif
  return f;
}
#endif

#if defined(__x86_64__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static uint64_t detect_x86(void) {
  unsigned a, b, c, d, max;
  if (!__get_cpuid(0, &max, &b, &c, &d)) return 0;
  uint64_t f = 0;
  unsigned c1 = 0;
  if (__get_cpuid(1, &a, &b, &c1, &d)) {
    if (c1 & (1u << 0)) f |= TFX_CPU_SSE3;
    if (c1 & (1u << 9)) f |= TFX_CPU_SSSE3;
    if (c1 & (1u << 19)) f |= TFX_CPU_SSE4_1;
    if (c1 & (1u << 20)) f |= TFX_CPU_SSE4_2;
    if (c1 & (1u << 22)) f |= TFX_CPU_MOVBE;
    if (c1 & (1u << 23)) f |= TFX_CPU_POPCNT;
  }
  /* AVX state (xmm and ymm upper halves, XCR0 bits 1-2), AVX-512 state
   * (opmask, zmm upper halves, zmm16-31: bits 5-7), saved by the OS */
  uint64_t xcr0 = (c1 & (1u << 27)) ? xgetbv0() : 0; /* OSXSAVE */
  int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  if (os_avx && (c1 & (1u << 28))) f |= TFX_CPU_AVX;
  if (os_avx && (c1 & (1u << 12))) f |= TFX_CPU_FMA;
  if (os_avx && (c1 & (1u << 29))) f |= TFX_CPU_F16C;
  if (max >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    unsigned max7 = a;
    if (b & (1u << 3)) f |= TFX_CPU_BMI1;
    if (b & (1u << 8)) f |= TFX_CPU_BMI2;
    if (os_avx && (b & (1u << 5))) f |= TFX_CPU_AVX2;
    if (os_avx512) {
      if (b & (1u << 16)) f |= TFX_CPU_AVX512F;
      if (b & (1u << 17)) f |= TFX_CPU_AVX512DQ;
      if (b & (1u << 28)) f |= TFX_CPU_AVX512CD;
      if (b & (1u << 30)) f |= TFX_CPU_AVX512BW;
      if (b & (1u << 31)) f |= TFX_CPU_AVX512VL;
      if (b & (1u << 21)) f |= TFX_CPU_AVX512IFMA;
      if (c & (1u << 1)) f |= TFX_CPU_AVX512VBMI;
      if (c & (1u << 6)) f |= TFX_CPU_AVX512VBMI2;
      if (c & (1u << 11)) f |= TFX_CPU_AVX512VNNI;
      if (c & (1u << 12)) f |= TFX_CPU_AVX512BITALG;
      if (c & (1u << 14)) f |= TFX_CPU_AVX512VPOPCNTDQ;
      if (d & (1u << 23)) f |= TFX_CPU_AVX512FP16;
    }
    if (c & (1u << 8)) f |= TFX_CPU_GFNI;
    if (max7 >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      if (os_avx && (a & (1u << 4))) f |= TFX_CPU_AVXVNNI;
      if (os_avx512 && (a & (1u << 5))) f |= TFX_CPU_AVX512BF16;
    }
  }
  unsigned emax;
  if (__get_cpuid(0x80000000u, &emax, &b, &c, &d) && emax >= 0x80000001u) {
    __cpuid(0x80000001u, a, b, c, d);
    if (c & (1u << 5)) f |= TFX_CPU_LZCNT; /* ABM */
  }
  return f;
}
#endif

/* Appends the names of the bits of set (features of arch) to buf (comma-separated). */
static void feature_names(uint32_t arch, uint64_t set, char *buf, size_t len) {
  size_t n = 0, count = 0;
  const tfx_cpu_feature_info *table = tfx_cpu_feature_table(arch, &count);
  buf[0] = '\0';
  for (size_t i = 0; i < count && n + 1 < len; i++) {
    if (!(set & table[i].bit)) continue;
    size_t k = strlen(table[i].name) + (n ? 2 : 0);
    if (n + k + 1 > len) break;
    memcpy(buf + n, n ? ", " : "", n ? 2 : 0);
    memcpy(buf + n + (n ? 2 : 0), table[i].name, strlen(table[i].name) + 1);
    n += k;
  }
}

int tfx_rt_cpu_features(uint64_t *out, char *errbuf, size_t errlen) {
  uint64_t f = 0;
#if defined(__x86_64__)
  f = detect_x86();
#elif HOST_ARCH != 0
  f = detect_hwcaps();
#endif
  const char *mask = getenv("TFX_CPU_MASK");
  for (const char *p = mask; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0) {
      uint64_t bit = tfx_cpu_feature_bit_of(HOST_ARCH, p, len);
      if (!bit)
        return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT,
                            "TFX_CPU_MASK: unknown CPU feature '%.*s' of %s (expected names such as %s)", (int)len, p,
                            arch_name(HOST_ARCH),
                            HOST_ARCH == TFX_CPU_ARCH_X86_64    ? "avx512f, avx2, fma"
                            : HOST_ARCH == TFX_CPU_ARCH_AARCH64 ? "dotprod, i8mm, bf16"
                                                                : "v");
      f &= ~bit;
    }
    p = end ? end + 1 : NULL;
  }
  *out = tfx_cpu_closure_of(HOST_ARCH, f);
  return TFX_OK;
}

static int popcount64(uint64_t v) {
  int n = 0;
  for (; v; v &= v - 1) n++;
  return n;
}

int tfx_rt_choose_variant(const tfx_model_desc *d, const tfx_model_desc **out, char *errbuf, size_t errlen) {
  *out = d;
  int recorded = 0;
  for (const tfx_model_desc *v = d; v; v = v->variant_next) recorded |= v->cpu_features != 0;
  if (!recorded) return TFX_OK; /* nothing recorded to check */
  if (d->cpu_arch != HOST_ARCH)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_CPU, "model '%s' was compiled for %s, this runtime runs on %s", d->name,
                        arch_name(d->cpu_arch), arch_name(HOST_ARCH));
  uint64_t have = 0;
  int rc = tfx_rt_cpu_features(&have, errbuf, errlen);
  if (rc != TFX_OK) return rc;
  /* the variant with the most features this CPU has (the first on a tie);
   * failing that, the one missing the fewest, for the message */
  const tfx_model_desc *best = NULL, *closest = d;
  for (const tfx_model_desc *v = d; v; v = v->variant_next) {
    uint64_t missing = v->cpu_features & ~have;
    if (!missing && (!best || popcount64(v->cpu_features) > popcount64(best->cpu_features))) best = v;
    if (popcount64(missing) < popcount64(closest->cpu_features & ~have)) closest = v;
  }
  if (best) {
    *out = best;
    return TFX_OK;
  }
  char names[256];
  feature_names(HOST_ARCH, closest->cpu_features & ~have, names, sizeof names);
  if (HOST_ARCH != TFX_CPU_ARCH_X86_64)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_CPU,
                        "model '%s' needs CPU features this CPU does not have: %s (recompile it for this CPU, "
                        "without them: --mcpu names the CPU)",
                        d->name, names);
  const char *level = (have & TFX_CPU_LEVEL_V3) == TFX_CPU_LEVEL_V3   ? "x86-64-v3"
                      : (have & TFX_CPU_LEVEL_V2) == TFX_CPU_LEVEL_V2 ? "x86-64-v2"
                                                                      : "x86-64";
  return tfx_rt_error(errbuf, errlen, TFX_ERR_CPU,
                      "model '%s' needs CPU features this CPU does not have: %s (recompile it for this CPU with "
                      "--mcpu=native, or with a lower level such as --mcpu=%s)",
                      d->name, names, level);
}
