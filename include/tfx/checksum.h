/* tfx/checksum.h — the checksums a compiled model records in its descriptor
 * (tfx_model_desc.desc_checksum and .weights_checksum, ABI 3) and that the
 * runtime recomputes when asked to verify a file (TFX_OPEN_VERIFY, `tfxc
 * verify`). Header-only so that the compiler (backend/descriptor.c, at emit
 * time) and the runtime compute exactly the same values.
 *
 * tfx_checksum64 is a fast non-cryptographic 64-bit hash written for tfxc:
 * four independent multiply-rotate lanes over 32-byte stripes (several GB/s,
 * so verifying a large model costs a fraction of reading it), then the
 * length, the tail and a final avalanche. It detects corruption (truncated
 * copies, flipped bits), not tampering. Words are read little-endian, as
 * every target tfxc supports is. Never 0: 0 means "not recorded". It can be
 * computed in pieces (tfx_ck_init / tfx_ck_update / tfx_ck_final), e.g. while
 * a blob is streamed to a file.
 *
 * tfx_desc_checksum covers every field of a descriptor that is not a
 * pointer (pointers are relocated at load time) and the strings and arrays
 * they point to (the model name; each entry's name, token range, argument
 * kinds and flags), (ABI 4) the CPU architecture and features and
 * whether another variant follows, and (ABI 5) the special token ids and the
 * embedded tokenizer's bytes, never the two checksum fields themselves. */
#ifndef TFX_CHECKSUM_H
#define TFX_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "abi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFX_CK_P1 0x9E3779B185EBCA87ull
#define TFX_CK_P2 0xC2B2AE3D27D4EB4Full
#define TFX_CK_P3 0x165667B19E3779F9ull
#define TFX_CK_P4 0x85EBCA77C2B2AE63ull

typedef struct tfx_ck_state {
  uint64_t lane[4];
  uint64_t total;    /* bytes consumed */
  uint8_t buf[32];   /* a partial stripe */
  uint32_t buffered; /* bytes in buf */
} tfx_ck_state;

static inline uint64_t tfx_ck_rotl(uint64_t x, unsigned r) { return (x << r) | (x >> (64u - r)); }

static inline uint64_t tfx_ck_load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static inline uint64_t tfx_ck_round(uint64_t acc, uint64_t w) {
  acc += w * TFX_CK_P2;
  acc = tfx_ck_rotl(acc, 31);
  return acc * TFX_CK_P1;
}

static inline void tfx_ck_init(tfx_ck_state *s) {
  memset(s, 0, sizeof *s);
  s->lane[0] = TFX_CK_P1 + TFX_CK_P2;
  s->lane[1] = TFX_CK_P2;
  s->lane[2] = TFX_CK_P3;
  s->lane[3] = TFX_CK_P4;
}

static inline void tfx_ck_stripe(tfx_ck_state *s, const uint8_t *p) {
  s->lane[0] = tfx_ck_round(s->lane[0], tfx_ck_load64(p));
  s->lane[1] = tfx_ck_round(s->lane[1], tfx_ck_load64(p + 8));
  s->lane[2] = tfx_ck_round(s->lane[2], tfx_ck_load64(p + 16));
  s->lane[3] = tfx_ck_round(s->lane[3], tfx_ck_load64(p + 24));
}

static inline void tfx_ck_update(tfx_ck_state *s, const void *data, size_t n) {
  const uint8_t *p = (const uint8_t *)data;
  if (n == 0) return;
  s->total += n;
  if (s->buffered) {
    size_t take = 32u - s->buffered < n ? 32u - s->buffered : n;
    memcpy(s->buf + s->buffered, p, take);
    s->buffered += (uint32_t)take;
    p += take;
    n -= take;
    if (s->buffered < 32) return;
    tfx_ck_stripe(s, s->buf);
    s->buffered = 0;
  }
  for (; n >= 32; p += 32, n -= 32) tfx_ck_stripe(s, p);
  if (n) {
    memcpy(s->buf, p, n);
    s->buffered = (uint32_t)n;
  }
}

static inline uint64_t tfx_ck_final(const tfx_ck_state *s) {
  uint64_t h = tfx_ck_rotl(s->lane[0], 1) + tfx_ck_rotl(s->lane[1], 7) + tfx_ck_rotl(s->lane[2], 12) +
               tfx_ck_rotl(s->lane[3], 18);
  h ^= s->total * TFX_CK_P3;
  const uint8_t *p = s->buf;
  uint32_t n = s->buffered;
  for (; n >= 8; p += 8, n -= 8) h = tfx_ck_rotl(h ^ tfx_ck_round(0, tfx_ck_load64(p)), 27) * TFX_CK_P1 + TFX_CK_P4;
  for (; n > 0; p++, n--) h = tfx_ck_rotl(h ^ ((uint64_t)*p * TFX_CK_P3), 11) * TFX_CK_P1;
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return h ? h : 1;
}

static inline uint64_t tfx_checksum64(const void *data, size_t n) {
  tfx_ck_state s;
  tfx_ck_init(&s);
  tfx_ck_update(&s, data, n);
  return tfx_ck_final(&s);
}

static inline void tfx_ck_u64(tfx_ck_state *s, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  tfx_ck_update(s, b, 8);
}

static inline void tfx_ck_str(tfx_ck_state *s, const char *str) {
  size_t n = str ? strlen(str) : 0;
  tfx_ck_u64(s, n);
  tfx_ck_update(s, str, n);
}

/* The descriptor's checksum. Its pointers must be valid (the runtime checks
 * them before calling this on a loaded file). */
static inline uint64_t tfx_desc_checksum(const tfx_model_desc *d) {
  tfx_ck_state s;
  tfx_ck_init(&s);
  tfx_ck_u64(&s, d->magic);
  tfx_ck_u64(&s, d->abi_version);
  tfx_ck_str(&s, d->name);
  tfx_ck_u64(&s, (uint32_t)d->input_kind);
  tfx_ck_u64(&s, (uint32_t)d->input_width);
  tfx_ck_u64(&s, (uint32_t)d->output_width);
  tfx_ck_u64(&s, (uint32_t)d->vocab);
  tfx_ck_u64(&s, (uint32_t)d->max_seq);
  tfx_ck_u64(&s, (uint32_t)d->has_kv_cache);
  tfx_ck_u64(&s, d->arena_bytes);
  tfx_ck_u64(&s, d->kv_bytes);
  tfx_ck_u64(&s, d->weights_bytes);
  tfx_ck_u64(&s, d->weights != NULL);
  tfx_ck_u64(&s, (uint32_t)d->n_entries);
  tfx_ck_u64(&s, (uint32_t)d->threads);
  for (int32_t i = 0; d->entries && i < d->n_entries; i++) {
    const tfx_entry_desc *e = &d->entries[i];
    tfx_ck_str(&s, e->name);
    tfx_ck_u64(&s, (uint32_t)e->min_tokens);
    tfx_ck_u64(&s, (uint32_t)e->max_tokens);
    tfx_ck_u64(&s, (uint32_t)e->n_args);
    for (int32_t a = 0; e->arg_kinds && a < e->n_args; a++) tfx_ck_u64(&s, (uint32_t)e->arg_kinds[a]);
    tfx_ck_u64(&s, (uint32_t)e->flags);
    tfx_ck_u64(&s, (uint32_t)e->kv_block_bytes);
  }
  tfx_ck_u64(&s, d->cpu_arch);
  tfx_ck_u64(&s, d->cpu_reserved);
  tfx_ck_u64(&s, d->cpu_features);
  tfx_ck_u64(&s, d->variant_next != NULL);
  tfx_ck_u64(&s, (uint32_t)d->bos_id);
  tfx_ck_u64(&s, (uint32_t)d->eos_id);
  tfx_ck_u64(&s, (uint32_t)d->pad_id);
  tfx_ck_u64(&s, (uint32_t)d->tokenizer_reserved);
  tfx_ck_u64(&s, d->tokenizer_bytes);
  if (d->tokenizer) tfx_ck_update(&s, d->tokenizer, (size_t)d->tokenizer_bytes);
  tfx_ck_u64(&s, (uint32_t)d->n_inputs);
  tfx_ck_u64(&s, (uint32_t)d->inputs_reserved);
  for (int32_t i = 0; d->inputs && i < d->n_inputs && i < TFX_MAX_MODEL_INPUTS; i++) {
    const tfx_input_desc *in = &d->inputs[i];
    tfx_ck_str(&s, in->name);
    tfx_ck_u64(&s, (uint32_t)in->kind);
    tfx_ck_u64(&s, (uint32_t)in->width);
    tfx_ck_u64(&s, (uint32_t)in->vocab);
    tfx_ck_u64(&s, (uint32_t)in->rows);
  }
  tfx_ck_u64(&s, d->src_cache_bytes); /* ABI 7 */
  return tfx_ck_final(&s);
}

#ifdef __cplusplus
}
#endif
#endif
