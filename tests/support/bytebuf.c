/* tests/support/bytebuf.c — see bytebuf.h. */
#include "bytebuf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

void tfx_bb_put(tfx_bb *b, const void *src, size_t n) {
  if (!n) return; /* memcpy of nothing into a buffer not yet allocated */
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    assert_non_null(b->p);
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}

void tfx_bb_u32(tfx_bb *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  tfx_bb_put(b, x, 4);
}

void tfx_bb_u64(tfx_bb *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
  tfx_bb_put(b, x, 8);
}

void tfx_bb_str_n(tfx_bb *b, const char *s, uint64_t len) {
  tfx_bb_u64(b, len);
  tfx_bb_put(b, s, strlen(s));
}

void tfx_bb_str(tfx_bb *b, const char *s) { tfx_bb_str_n(b, s, strlen(s)); }

void tfx_bb_pad(tfx_bb *b, size_t align) {
  static const uint8_t zero[1];
  while (b->n % align) tfx_bb_put(b, zero, 1);
}
