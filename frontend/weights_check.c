/* frontend/weights_check.c — the one check of bound weights for non-finite
 * values (issue #17): every slot read from a weights file is scanned once, in
 * the format it is bound in: f32 words, f16 and bf16 halves by their exponent
 * bits, and the block formats by their f16 scales (Q8_0 and Q4_0: d; Q4_K: d
 * and dmin; Q6_K, Q3_K: d; the quantized values themselves are small integers and
 * always finite). A block format without a known scale layout is decoded row
 * by row through the format table and its values checked. The scans count
 * with integer compares only, which the compiler vectorizes: one linear pass
 * over the weights, at memory speed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

/* The scans. An element is non-finite when its exponent bits are all set:
 * adding the exponent's lowest bit to them carries into the bit above, so
 * the test is an OR-reduction of one add per element, over chunks of a
 * constant 64 elements (which the compiler vectorizes even at -O2); a chunk
 * that hits is counted exactly. */
#define CHUNK 64

static int64_t count_f32(const uint8_t *p, int64_t n) {
  int64_t bad = 0, i = 0;
  for (; i + CHUNK <= n; i += CHUNK) {
    uint32_t acc = 0;
    for (int j = 0; j < CHUNK; j++) {
      uint32_t w;
      memcpy(&w, p + 4 * (i + j), 4);
      acc |= (w & 0x7f800000u) + 0x00800000u;
    }
    if (!(acc & 0x80000000u)) continue;
    for (int j = 0; j < CHUNK; j++) {
      uint32_t w;
      memcpy(&w, p + 4 * (i + j), 4);
      bad += (w & 0x7f800000u) == 0x7f800000u;
    }
  }
  for (; i < n; i++) {
    uint32_t w;
    memcpy(&w, p + 4 * i, 4);
    bad += (w & 0x7f800000u) == 0x7f800000u;
  }
  return bad;
}

/* halves: exp_mask 0x7c00 (f16) or 0x7f80 (bf16); exp_low its lowest bit */
static int64_t count_half(const uint8_t *p, int64_t n, uint16_t exp_mask) {
  const uint32_t low = (uint32_t)(exp_mask & -exp_mask);
  int64_t bad = 0, i = 0;
  for (; i + CHUNK <= n; i += CHUNK) {
    uint32_t acc = 0;
    for (int j = 0; j < CHUNK; j++) {
      uint16_t h;
      memcpy(&h, p + 2 * (i + j), 2);
      acc |= (uint32_t)(h & exp_mask) + low;
    }
    if (!(acc & 0x8000u)) continue;
    for (int j = 0; j < CHUNK; j++) {
      uint16_t h;
      memcpy(&h, p + 2 * (i + j), 2);
      bad += (h & exp_mask) == exp_mask;
    }
  }
  for (; i < n; i++) {
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    bad += (h & exp_mask) == exp_mask;
  }
  return bad;
}

static float f32_at(const uint8_t *p, int64_t i) {
  float f;
  memcpy(&f, p + 4 * i, 4);
  return f;
}

static uint16_t u16_at(const uint8_t *p, int64_t off) { return (uint16_t)(p[off] | p[off + 1] << 8); }

/* "NaN", "inf" or "-inf" */
static const char *kind_of(float f) { return isnan(f) ? "NaN" : f > 0 ? "inf" : "-inf"; }

static float bf16_to_f32(uint16_t h) {
  uint32_t w = (uint32_t)h << 16;
  float f;
  memcpy(&f, &w, 4);
  return f;
}

/* Offsets of the f16 scales inside one block of a GGUF block format, or 0
 * scales when the layout is not known here. */
static int block_scales(tfx_dtype dt, int off[2]) {
  switch (dt) {
  case TFX_DT_Q8_0:
  case TFX_DT_Q4_0: off[0] = 0; return 1;             /* d, then the quants */
  case TFX_DT_Q4_K: off[0] = 0, off[1] = 2; return 2; /* d, dmin, scales[12], qs[128] */
  case TFX_DT_Q6_K: off[0] = 208; return 1;           /* ql[128], qh[64], scales[16], d */
  case TFX_DT_Q3_K: off[0] = 108; return 1;           /* hmask[32], qs[64], scales[12], d */
  case TFX_DT_TQ2_0:
  case TFX_DT_TQ2_T: off[0] = 64; return 1;   /* qs[64], d */
  case TFX_DT_S24_Q8_0: off[0] = 0; return 1; /* d, idx, q[16] */
  case TFX_DT_ZQ8_64:
  case TFX_DT_ZQ8_128:
  case TFX_DT_ZQ4_64:
  case TFX_DT_ZQ4_128: off[0] = 0; return 1; /* d, z, q[64 | 128] */
  default: return 0;
  }
}

int tfx_weights_find_nonfinite(const tfx_type *t, const uint8_t *data, tfx_nonfinite *out) {
  memset(out, 0, sizeof *out);
  out->index = -1;
  int64_t n = tfx_type_numel(t, 1), K = t->rank > 0 ? t->dims[t->rank - 1] : 1;
  if (n <= 0 || K <= 0) return 0;
  const tfx_dtype_info *fi = tfx_dtype_info_of(t->dtype);
  if (t->dtype == TFX_DT_F32 || t->dtype == TFX_DT_F16 || t->dtype == TFX_DT_BF16) {
    int64_t bad = t->dtype == TFX_DT_F32   ? count_f32(data, n)
                  : t->dtype == TFX_DT_F16 ? count_half(data, n, 0x7c00)
                                           : count_half(data, n, 0x7f80);
    if (!bad) return 0;
    out->count = bad;
    for (int64_t i = 0; i < n; i++) {
      float v = t->dtype == TFX_DT_F32   ? f32_at(data, i)
                : t->dtype == TFX_DT_F16 ? tfx_f16_to_f32(u16_at(data, 2 * i))
                                         : bf16_to_f32(u16_at(data, 2 * i));
      if (!isfinite(v)) {
        out->index = i;
        out->kind = kind_of(v);
        break;
      }
    }
    return 1;
  }
  if (!fi || fi->block <= 1 || K % fi->block) return -1;
  int off[2];
  int ns = block_scales(t->dtype, off);
  if (ns > 0) {
    int64_t blocks = n / fi->block, bb = fi->block_bytes;
    int64_t bad = 0;
    for (int64_t b = 0; b < blocks; b++)
      for (int s = 0; s < ns; s++) bad += (u16_at(data, b * bb + off[s]) & 0x7c00) == 0x7c00;
    if (!bad) return 0;
    out->count = bad;
    out->block = fi->block;
    for (int64_t b = 0; b < blocks && out->index < 0; b++)
      for (int s = 0; s < ns; s++) {
        float v = tfx_f16_to_f32(u16_at(data, b * bb + off[s]));
        if (!isfinite(v)) {
          out->index = b * fi->block;
          out->kind = kind_of(v);
          out->scale = s == 0 ? "d" : "dmin";
          break;
        }
      }
    return 1;
  }
  /* another block format: decode and check */
  if (!fi->dequant_row) return -1;
  int64_t R = n / K;
  float *row = malloc((size_t)K * sizeof *row);
  if (!row) return -1;
  for (int64_t r = 0; r < R; r++) {
    fi->dequant_row(data, NULL, R, K, r, row);
    for (int64_t k = 0; k < K; k++)
      if (!isfinite(row[k])) {
        if (out->index < 0) {
          out->index = r * K + k;
          out->kind = kind_of(row[k]);
        }
        out->count++;
      }
  }
  free(row);
  return out->count > 0;
}

/* ", index [a, b, c]" of a flat element index (rank >= 2; last: the last
 * dimension's end of a range, or -1) */
static void multi_index(const tfx_type *t, int64_t flat, int64_t last, char *buf, size_t len) {
  buf[0] = 0;
  if (t->rank < 2) return;
  int64_t idx[TFX_MAX_RANK];
  for (int d = t->rank - 1; d >= 0; d--) {
    idx[d] = flat % t->dims[d];
    flat /= t->dims[d];
  }
  size_t used = (size_t)snprintf(buf, len, ", index [");
  for (int d = 0; d < t->rank && used < len; d++) {
    int k = d == t->rank - 1 && last >= 0
                ? snprintf(buf + used, len - used, "%s%lld..%lld", d ? ", " : "", (long long)idx[d], (long long)last)
                : snprintf(buf + used, len - used, "%s%lld", d ? ", " : "", (long long)idx[d]);
    if (k < 0) break;
    used += (size_t)k;
  }
  if (used < len) snprintf(buf + used, len - used, "]");
}

void tfx_weights_nonfinite_message(const tfx_type *t, const tfx_nonfinite *nf, char *buf, size_t len) {
  char at[160];
  int64_t K = t->rank > 0 ? t->dims[t->rank - 1] : 1;
  if (nf->block > 0) {
    multi_index(t, nf->index, nf->index % K + nf->block - 1, at, sizeof at);
    snprintf(buf, len, "%lld non-finite block scale%s; the first, %s = %s, scales elements %lld..%lld%s",
             (long long)nf->count, nf->count == 1 ? "" : "s", nf->scale, nf->kind, (long long)nf->index,
             (long long)(nf->index + nf->block - 1), at);
  } else {
    multi_index(t, nf->index, -1, at, sizeof at);
    snprintf(buf, len, "%lld non-finite value%s; the first, %s, at element %lld%s", (long long)nf->count,
             nf->count == 1 ? "" : "s", nf->kind, (long long)nf->index, at);
  }
}

/* The length of the valid UTF-8 sequence at s (1..4), or 0 when it is not
 * one (a stray continuation byte, an overlong form, a surrogate, past
 * U+10FFFF, or cut short). */
static int utf8_len(const unsigned char *s) {
  unsigned char c = s[0];
  int n;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else
    return 0;
  if (s[1] < lo || s[1] > hi) return 0;
  for (int i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf) return 0;
  return n;
}

void tfx_wfile_escape(const char *in, char *out, size_t outlen) {
  size_t j = 0;
  if (!outlen) return;
  for (const unsigned char *s = (const unsigned char *)in; *s;) {
    int n = *s >= 0x20 && *s < 0x7f ? 1 : *s >= 0x80 ? utf8_len(s) : 0;
    if (n > 0) {
      if (j + (size_t)n >= outlen) break;
      memcpy(out + j, s, (size_t)n);
      j += (size_t)n;
      s += n;
    } else { /* a control byte or a byte of no valid UTF-8 sequence */
      if (j + 4 >= outlen) break;
      snprintf(out + j, outlen - j, "\\x%02X", *s);
      j += 4;
      s++;
    }
  }
  out[j] = 0;
}
