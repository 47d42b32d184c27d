/* tests/fuzz/fuzz_common.h — helpers shared by the libFuzzer targets: a null
 * diagnostics stream, an in-memory file (memfd) that the weights loaders open
 * by path, and the small fixed graphs the loaders bind against. */
#ifndef TFX_FUZZ_COMMON_H
#define TFX_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "frontend.h"

/* A stream that discards everything (opened once). */
FILE *tfx_fuzz_null_stream(void);

/* Replaces the content of the target's in-memory file with data[0..size) and
 * returns a path that opens it ("/proc/self/fd/N"), or NULL on failure. */
const char *tfx_fuzz_write_file(const uint8_t *data, size_t size);

/* Compiles `source` (no weights) once; aborts the fuzzer if it does not
 * compile, which is a bug of the target, not a finding. */
tfx_graph *tfx_fuzz_graph(const char *source);

#endif
