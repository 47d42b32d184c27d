/* tests/support/bytebuf.h — a growing byte buffer with little-endian writers,
 * for tests that build binary files (GGUF, safetensors) byte by byte. */
#ifndef TFX_TEST_BYTEBUF_H
#define TFX_TEST_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct tfx_bb {
  uint8_t *p;
  size_t n, cap;
} tfx_bb;

void tfx_bb_put(tfx_bb *b, const void *src, size_t n); /* fails the cmocka test when out of memory */
void tfx_bb_u32(tfx_bb *b, uint32_t v);
void tfx_bb_u64(tfx_bb *b, uint64_t v);
void tfx_bb_str_n(tfx_bb *b, const char *s, uint64_t len); /* GGUF string: u64 len (as given), strlen(s) bytes */
void tfx_bb_str(tfx_bb *b, const char *s);
void tfx_bb_pad(tfx_bb *b, size_t align); /* zero bytes up to a multiple of align */

#endif
