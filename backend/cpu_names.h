/* backend/cpu_names.h — checks a `--cpu` name against the CPUs LLVM 19
 * knows for the target architecture (see cpu_names.c). */
#ifndef TFX_CG_CPU_NAMES_H
#define TFX_CG_CPU_NAMES_H

#include <stddef.h>
#include <stdio.h>

/* 0 when `cpu` is a 64-bit CPU LLVM knows for `triple` (or the architecture
 * is not one whose names are listed), else -1 with a message listing the
 * known names (truncated to errlen). */
int tfx_cg_cpu_check(const char *triple, const char *cpu, char *err, size_t errlen);

#endif
