/* ir/dtype.c — the format table: every element type and weight storage
 * format with its name, block size (elements per block along the last
 * dimension, bytes per block), scale plane and reference decoder, and the
 * byte sizes derived from it (tfx_type_bytes). A new weight format is an
 * entry here (plus its packing, passes/fold_weights.c, and one stream
 * implementation in backend/weight_stream.c). Layout rules: ir.h
 * (tfx_dtype_info). */
#include "ir.h"

#include <string.h>

/* Element e of row r of an [R, K] tensor: its index in the values plane. */
static int64_t elem_index(const tfx_fused *layout, int64_t R, int64_t K, int64_t r, int64_t k) {
  return layout && layout->panel > 0 ? tfx_packed_index(layout, R, K, r, k) : r * K + k;
}

float tfx_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = h >> 10 & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | man << 13; /* inf, nan */
  } else if (exp) {
    bits = sign | (exp + 112) << 23 | man << 13;
  } else if (man) { /* subnormal: normalize */
    int e = -1;
    do {
      e++;
      man <<= 1;
    } while (!(man & 0x400u));
    bits = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ffu) << 13;
  } else {
    bits = sign;
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float rdf32(const uint8_t *p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

/* The row's scale-plane entry as an f32 (formats whose row_bytes is 4). */
static float row_scale(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, int elem_bytes) {
  return rdf32(data + R * K * elem_bytes + tfx_packed_row(layout, R, r) * 4);
}

static void dq_f32(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  for (int64_t k = 0; k < K; k++) out[k] = rdf32(data + 4 * elem_index(layout, R, K, r, k));
}

static void dq_f16(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  for (int64_t k = 0; k < K; k++) out[k] = tfx_f16_to_f32(rd16(data + 2 * elem_index(layout, R, K, r, k)));
}

static void dq_bf16(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  for (int64_t k = 0; k < K; k++) {
    uint32_t bits = (uint32_t)rd16(data + 2 * elem_index(layout, R, K, r, k)) << 16;
    memcpy(&out[k], &bits, 4);
  }
}

static void dq_i8(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  float s = row_scale(data, layout, R, K, r, 1);
  for (int64_t k = 0; k < K; k++) out[k] = (float)(int8_t)data[elem_index(layout, R, K, r, k)] * s;
}

/* GGUF Q8_0: per block of 32, an f16 scale d then 32 x i8: x = d * q. Row-major only. */
static void dq_q8_0(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 32) * 34;
  for (int64_t b = 0; b < K / 32; b++) {
    float d = tfx_f16_to_f32(rd16(row + b * 34));
    for (int j = 0; j < 32; j++) out[b * 32 + j] = d * (float)(int8_t)row[b * 34 + 2 + j];
  }
}

/* GGUF Q4_0: per block of 32, an f16 scale d then 16 bytes: element j < 16 is
 * the low nibble of byte j, element j + 16 its high nibble; x = d * (q - 8). */
static void dq_q4_0(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 32) * 18;
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *blk = row + b * 18;
    float d = tfx_f16_to_f32(rd16(blk));
    for (int j = 0; j < 16; j++) {
      out[b * 32 + j] = d * (float)((blk[2 + j] & 0xf) - 8);
      out[b * 32 + j + 16] = d * (float)((blk[2 + j] >> 4) - 8);
    }
  }
}

/* GGUF Q5_0 (ggml's block_q5_0): per block of 32, an f16 scale d, 4 bytes
 * qh (a little-endian u32: bit e is the fifth bit of element e), then 16
 * bytes of nibbles as Q4_0's (element j < 16 the low nibble of byte j,
 * j + 16 its high nibble); x = d * (q - 16), q in 0 .. 31. */
static void dq_q5_0(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 32) * 22;
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *blk = row + b * 22;
    float d = tfx_f16_to_f32(rd16(blk));
    uint32_t qh = (uint32_t)blk[2] | (uint32_t)blk[3] << 8 | (uint32_t)blk[4] << 16 | (uint32_t)blk[5] << 24;
    for (int j = 0; j < 16; j++) {
      int q0 = (blk[6 + j] & 0xf) | (int)(qh >> j & 1u) << 4, q1 = (blk[6 + j] >> 4) | (int)(qh >> (j + 16) & 1u) << 4;
      out[b * 32 + j] = d * (float)(q0 - 16);
      out[b * 32 + j + 16] = d * (float)(q1 - 16);
    }
  }
}

/* GGUF Q4_K: super-blocks of 256: f16 d, f16 dmin, 12 bytes of 6-bit scales
 * and mins for 8 sub-blocks of 32, then 128 bytes of nibbles (bytes 32c ..
 * 32c + 31: low nibbles are sub-block 2c, high nibbles sub-block 2c + 1);
 * x = d * sc * q - dmin * m. */
void tfx_q4_k_scale_min(const uint8_t *scales, int j, int *sc, int *m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0xf) | (scales[j - 4] >> 6) << 4;
    *m = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4;
  }
}

static void dq_q4_k(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 256) * 144;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *blk = row + b * 144, *q = blk + 16;
    float d = tfx_f16_to_f32(rd16(blk)), dmin = tfx_f16_to_f32(rd16(blk + 2));
    float *y = out + b * 256;
    for (int c = 0; c < 4; c++) {
      int sc0, m0, sc1, m1;
      tfx_q4_k_scale_min(blk + 4, 2 * c, &sc0, &m0);
      tfx_q4_k_scale_min(blk + 4, 2 * c + 1, &sc1, &m1);
      float d0 = d * (float)sc0, mm0 = dmin * (float)m0, d1 = d * (float)sc1, mm1 = dmin * (float)m1;
      for (int l = 0; l < 32; l++) y[64 * c + l] = d0 * (float)(q[32 * c + l] & 0xf) - mm0;
      for (int l = 0; l < 32; l++) y[64 * c + 32 + l] = d1 * (float)(q[32 * c + l] >> 4) - mm1;
    }
  }
}

/* GGUF Q6_K: super-blocks of 256: 128 bytes ql (low 4 bits), 64 bytes qh
 * (high 2 bits), 16 int8 scales (one per 16 elements), f16 d; per half of
 * 128: element l (< 32) + 32i takes ql[l + 32 (i & 1)] >> 4 (i >> 1) and
 * qh[l] >> 2i; x = d * sc * (q - 32). */
static void dq_q6_k(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 256) * 210;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *blk = row + b * 210;
    float d = tfx_f16_to_f32(rd16(blk + 208));
    for (int h = 0; h < 2; h++) {
      const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
      const int8_t *sc = (const int8_t *)(blk + 192 + 8 * h);
      float *y = out + b * 256 + 128 * h;
      for (int l = 0; l < 32; l++) {
        int is = l / 16;
        int q1 = ((ql[l] & 0xf) | (qh[l] >> 0 & 3) << 4) - 32, q2 = ((ql[l + 32] & 0xf) | (qh[l] >> 2 & 3) << 4) - 32;
        int q3 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32, q4 = ((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32;
        y[l] = d * (float)sc[is] * (float)q1;
        y[l + 32] = d * (float)sc[is + 2] * (float)q2;
        y[l + 64] = d * (float)sc[is + 4] * (float)q3;
        y[l + 96] = d * (float)sc[is + 6] * (float)q4;
      }
    }
  }
}

/* GGUF Q3_K (ggml's block_q3_K): super-blocks of 256: 32 bytes hmask, 64
 * bytes qs, 12 bytes of 16 6-bit scales, f16 d. Element e (< 256) has the
 * 2 low bits (qs[32 (e / 128) + e % 32] >> 2 ((e / 32) % 4)) & 3, the high
 * bit (hmask[e % 32] >> (e / 32)) & 1, and the scale of group e / 16;
 * x = (d * (sc - 32)) * (q - 4), q = low | high << 2 in 0 .. 7 (ggml's
 * dequantize_row_q3_K: the offset 4 is subtracted where the high bit is 0).
 * Scale j: low 4 bits scales[j % 8] >> 4 (j / 8), high 2 bits
 * scales[8 + j % 4] >> 2 (j / 4). */
int tfx_q3_k_scale(const uint8_t *scales, int j) {
  return (scales[j % 8] >> (4 * (j / 8)) & 0xf) | (scales[8 + j % 4] >> (2 * (j / 4)) & 3) << 4;
}

static void dq_q3_k(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 256) * 110;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *blk = row + b * 110, *hm = blk, *qs = blk + 32;
    float d = tfx_f16_to_f32(rd16(blk + 108));
    for (int g = 0; g < 16; g++) {
      float dl = d * (float)(tfx_q3_k_scale(blk + 96, g) - 32);
      for (int i = 0; i < 16; i++) {
        int e = 16 * g + i;
        int q = (qs[32 * (e / 128) + e % 32] >> (2 * (e / 32 % 4)) & 3) | (hm[e % 32] >> (e / 32) & 1) << 2;
        out[b * 256 + e] = dl * (float)(q - 4);
      }
    }
  }
}

/* GGUF TQ2_0 (ggml's block_tq2_0): super-blocks of 256: 64 bytes qs, then
 * f16 d; element 128 j + 32 n + m (j < 2, n < 4, m < 32) is bits 2 n of
 * qs[32 j + m]: x = d * (q - 1), q in 0 .. 2 (3 decodes as 2). */
static void dq_tq2_0(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 256) * 66;
  for (int64_t b = 0; b < K / 256; b++) {
    const uint8_t *blk = row + b * 66;
    float d = tfx_f16_to_f32(rd16(blk + 64));
    for (int j = 0; j < 2; j++)
      for (int n = 0; n < 4; n++)
        for (int m = 0; m < 32; m++)
          out[b * 256 + 128 * j + 32 * n + m] = d * (float)((blk[32 * j + m] >> (2 * n) & 3) - 1);
  }
}

/* ZeroQuant (tfxc's own, tfx_quantize_zq8_group): groups of n = 64 or 128
 * along K, each 4 + n bytes: f16 d, i16 z (little-endian), n u8 codes q:
 * x = d * (float)(q - z). Row-major only. */
static void dq_zq8(const uint8_t *data, int64_t K, int64_t r, int n, float *out) {
  const uint8_t *row = data + r * (K / n) * (4 + n);
  for (int64_t b = 0; b < K / n; b++) {
    const uint8_t *blk = row + b * (4 + n);
    float d = tfx_f16_to_f32(rd16(blk));
    int z = (int16_t)rd16(blk + 2);
    for (int i = 0; i < n; i++) out[b * n + i] = d * (float)((int)blk[4 + i] - z);
  }
}

/* zq4_64 / zq4_128: the same with 4 + n / 2 bytes, 4-bit codes by 32
 * (byte j of a 32: element j low nibble, j + 16 high). */
static void dq_zq4(const uint8_t *data, int64_t K, int64_t r, int n, float *out) {
  const uint8_t *row = data + r * (K / n) * (4 + n / 2);
  for (int64_t b = 0; b < K / n; b++) {
    const uint8_t *blk = row + b * (4 + n / 2);
    float d = tfx_f16_to_f32(rd16(blk));
    int z = (int16_t)rd16(blk + 2);
    for (int i = 0; i < n; i++)
      out[b * n + i] = d * (float)((blk[4 + 16 * (i / 32) + i % 16] >> (4 * (i % 32 / 16)) & 15) - z);
  }
}

static void dq_zq4_64(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  dq_zq4(data, K, r, 64, out);
}

static void dq_zq4_128(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  dq_zq4(data, K, r, 128, out);
}

static void dq_zq8_64(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  dq_zq8(data, K, r, 64, out);
}

static void dq_zq8_128(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  dq_zq8(data, K, r, 128, out);
}

/* The 2:4 sparse formats (tfxc's own): a block of 32 elements is 8 groups
 * of 4, of which two are kept, at positions p0 < p1; kept value 2g + i is
 * the element at 4g + p_i, the two others are 0.
 * s24_f32: 16 f32 values, then idx (68 bytes): p0 and p1 at bits 4g .. 4g
 * + 1 and 4g + 2 .. 4g + 3 of the little-endian u32 idx.
 * s24_q8_0: f16 d, a little-endian u32 keep mask (bit 4g + p set for a
 * kept element: exactly two bits of each nibble), 16 x i8 q, value = d * q
 * (22 bytes): the kept values in position order are what vpexpandb spreads
 * under the mask (backend/k_linear_q8.c). */
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void s24_expand(const float *vals, uint32_t idx, float *out) {
  for (int g = 0; g < 8; g++) {
    unsigned nib = idx >> (4 * g) & 15u;
    for (int k = 0; k < 4; k++) out[4 * g + k] = 0.0f;
    out[4 * g + (nib & 3u)] = vals[2 * g];
    out[4 * g + (nib >> 2)] = vals[2 * g + 1];
  }
}

static void dq_s24_f32(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 32) * 68;
  for (int64_t b = 0; b < K / 32; b++) {
    float v[16];
    for (int i = 0; i < 16; i++) v[i] = rdf32(row + b * 68 + 4 * i);
    s24_expand(v, rd32(row + b * 68 + 64), out + b * 32);
  }
}

static void dq_s24_q8_0(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  (void)layout;
  (void)R;
  const uint8_t *row = data + r * (K / 32) * 22;
  for (int64_t b = 0; b < K / 32; b++) {
    const uint8_t *blk = row + b * 22;
    float d = tfx_f16_to_f32(rd16(blk));
    uint32_t mask = rd32(blk + 2);
    int j = 0; /* the kept values in order, at the set bits (at most 16 read) */
    for (int i = 0; i < 32; i++) out[b * 32 + i] = mask >> i & 1u && j < 16 ? d * (float)(int8_t)blk[6 + j++] : 0.0f;
  }
}

/* The toy format: the stored values times the row's scale. */
static void dq_rowscale(const uint8_t *data, const tfx_fused *layout, int64_t R, int64_t K, int64_t r, float *out) {
  float s = row_scale(data, layout, R, K, r, 4);
  for (int64_t k = 0; k < K; k++) out[k] = rdf32(data + 4 * elem_index(layout, R, K, r, k)) * s;
}

static const tfx_dtype_info formats[TFX_DT_COUNT] = {
    [TFX_DT_F32] = {"f32", 1, 4, 0, 0, dq_f32},
    [TFX_DT_I32] = {"i32", 1, 4, 0, 0, NULL},
    [TFX_DT_F16] = {"f16", 1, 2, 0, 1, dq_f16},
    [TFX_DT_BF16] = {"bf16", 1, 2, 0, 1, dq_bf16},
    [TFX_DT_I8] = {"i8", 1, 1, 4, 1, dq_i8},
    [TFX_DT_Q8_0] = {"q8_0", 32, 34, 0, 1, dq_q8_0},
    [TFX_DT_Q4_0] = {"q4_0", 32, 18, 0, 1, dq_q4_0},
    [TFX_DT_Q4_K] = {"q4_k", 256, 144, 0, 1, dq_q4_k},
    [TFX_DT_Q6_K] = {"q6_k", 256, 210, 0, 1, dq_q6_k},
    [TFX_DT_Q5_0] = {"q5_0", 32, 22, 0, 1, dq_q5_0},
    [TFX_DT_F32_ROWSCALE] = {"f32_rowscale", 1, 4, 4, 1, dq_rowscale},
    [TFX_DT_TQ2_0] = {"tq2_0", 256, 66, 0, 1, dq_tq2_0},
    [TFX_DT_S24_F32] = {"s24_f32", 32, 68, 0, 1, dq_s24_f32},
    [TFX_DT_S24_Q8_0] = {"s24_q8_0", 32, 22, 0, 1, dq_s24_q8_0},
    [TFX_DT_ZQ8_64] = {"zq8_64", 64, 68, 0, 1, dq_zq8_64},
    [TFX_DT_ZQ8_128] = {"zq8_128", 128, 132, 0, 1, dq_zq8_128},
    [TFX_DT_ZQ4_64] = {"zq4_64", 64, 36, 0, 1, dq_zq4_64},
    [TFX_DT_ZQ4_128] = {"zq4_128", 128, 68, 0, 1, dq_zq4_128},
    [TFX_DT_Q3_K] = {"q3_k", 256, 110, 0, 1, dq_q3_k},
    [TFX_DT_TQ2_T] = {"tq2_t", 256, 66, 0, 1, dq_tq2_0},
};

const tfx_dtype_info *tfx_dtype_info_of(tfx_dtype dt) {
  return dt >= 0 && dt < TFX_DT_COUNT && formats[dt].name ? &formats[dt] : NULL;
}

const char *tfx_dtype_name(tfx_dtype dt) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  return f ? f->name : "?";
}

int64_t tfx_dtype_size(tfx_dtype dt) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  return f && f->block == 1 ? f->block_bytes : 0;
}

int tfx_dtype_weight_ok(tfx_dtype dt) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  return dt == TFX_DT_F32 || (f && f->storage);
}

int64_t tfx_type_values_bytes(const tfx_type *t, int64_t t_value) {
  const tfx_dtype_info *f = tfx_dtype_info_of(t->dtype);
  if (!f) return 0;
  return tfx_type_numel(t, t_value) / f->block * f->block_bytes;
}

int64_t tfx_type_bytes(const tfx_type *t, int64_t t_value) {
  const tfx_dtype_info *f = tfx_dtype_info_of(t->dtype);
  if (!f) return 0;
  int64_t bytes = tfx_type_values_bytes(t, t_value);
  if (f->row_bytes && t->rank > 0) {
    int64_t cols = t->dims[t->rank - 1] == TFX_DIM_T ? t_value : t->dims[t->rank - 1];
    bytes += cols > 0 ? tfx_type_numel(t, t_value) / cols * f->row_bytes : 0;
  }
  return bytes;
}

int64_t tfx_packed_row(const tfx_fused *fx, int64_t R, int64_t r) {
  if (!fx || fx->panel <= 0) return r;
  int ns = fx->n_segs > 0 ? fx->n_segs : 1, seg = 0;
  int64_t base = 0, rows = R;
  for (int s = 0; s < ns; s++) { /* as tfx_packed_index */
    rows = fx->n_segs > 0 ? fx->segs[s] : R;
    seg = s;
    if (r < base + rows || s == ns - 1) break;
    base += rows;
  }
  int64_t lr = r - base;
  if (fx->perm >> seg & 1u) lr = tfx_pair_pos(lr, fx->perm_hd, fx->perm_rd);
  return base + lr;
}

int tfx_weight_dequant_row(const tfx_node *w, const uint8_t *data, int64_t r, float *out) {
  const tfx_dtype_info *f = tfx_dtype_info_of(w->type.dtype);
  if (!f || !f->dequant_row || w->type.rank < 1) return -1;
  int64_t K = w->type.dims[w->type.rank - 1], R = K > 0 ? tfx_type_numel(&w->type, 1) / K : 0;
  f->dequant_row(data, w->op == TFX_OP_PARAM && w->fx.panel > 0 ? &w->fx : NULL, R, K, r, out);
  return 0;
}
