/* ir/quantize.c — the quantizers of the weight formats (tfx_quantize_row:
 * bytes identical to ggml's reference quantizers and the gguf package), the
 * fallback rule for rows a block format cannot hold, and the run-time
 * quantization of activations ahead of int8 dot products (the kernels'
 * definition, which the interpreter emulates). Layouts: ir/dtype.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* ---- f16 / bf16 ---- */

static uint16_t f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = x >> 16 & 0x8000u, ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | (ax >> 13 & 0x3ffu) : 0));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504: inf */
  if (ax < 0x38800000u) {                                   /* f16 subnormal or zero */
    if (ax < 0x33000000u) return (uint16_t)sign;            /* below half the smallest subnormal */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    int shift = (int)(126 - e); /* 14 .. 24 */
    uint32_t v = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (v & 1u))) v++;
    return (uint16_t)(sign | v);
  }
  uint32_t v = ((ax >> 13) - (112u << 10)), rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) v++;
  return (uint16_t)(sign | v);
}

static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 64); /* NaN: keep it quiet */
  return (uint16_t)((u + (0x7fffu + (u >> 16 & 1u))) >> 16);
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

/* ---- 32-element blocks ---- */

/* ggml's (int8_t)v for the 32-block quantizers, as x86 computes it
 * (cvttss2si to i32, then the low byte) without C's undefined behaviour
 * where v is NaN, infinite or out of range: these give 0, as they do in
 * ggml on x86 and in the gguf package. They occur when a block's largest
 * |x| is below about qmax * 2^-128 (an f32 subnormal scale d whose inverse
 * overflows to inf) or the row holds non-finite values. */
static int trunc_i8(float v) {
  int32_t i = v > -2147483648.0f && v < 2147483648.0f ? (int32_t)v : INT32_MIN;
  int b = (int)((uint32_t)i & 0xffu);
  return b >= 128 ? b - 256 : b;
}

/* Q8_0: d = amax / 127, q = round(x / d) (roundf: ties away from zero). */
static void q8_0_block(const float *x, uint8_t *blk) {
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(blk, f32_to_f16(d));
  for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)trunc_i8(roundf(x[j] * id));
}

/* Q4_0: d = (the value of largest magnitude) / -8, q = min(15, (int)(x / d + 8.5)). */
static void q4_0_block(const float *x, uint8_t *blk) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (amax < fabsf(x[j])) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(blk, f32_to_f16(d));
  for (int j = 0; j < 16; j++) {
    int a = trunc_i8(x[j] * id + 8.5f), b = trunc_i8(x[j + 16] * id + 8.5f);
    a = a < 15 ? a : 15;
    b = b < 15 ? b : 15;
    blk[2 + j] = (uint8_t)((uint8_t)a | (uint8_t)b << 4);
  }
}

/* Q5_0 (ggml's quantize_row_q5_0_ref): d = (the value of largest magnitude)
 * / -16, q = min(31, (int8_t)(x / d + 16.5)) kept as a byte; its low 4 bits
 * as Q4_0's nibbles, its fifth bit (element e) in bit e of qh (a
 * little-endian u32). */
static void q5_0_block(const float *x, uint8_t *blk) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; j++)
    if (amax < fabsf(x[j])) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  float d = max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(blk, f32_to_f16(d));
  uint32_t qh = 0;
  for (int j = 0; j < 16; j++) {
    int qa = trunc_i8(x[j] * id + 16.5f), qb = trunc_i8(x[j + 16] * id + 16.5f);
    uint8_t a = (uint8_t)(qa < 31 ? qa : 31), b = (uint8_t)(qb < 31 ? qb : 31);
    blk[6 + j] = (uint8_t)((a & 0xf) | (b & 0xf) << 4);
    qh |= (uint32_t)(a >> 4 & 1) << j | (uint32_t)(b >> 4 & 1) << (j + 16);
  }
  for (int i = 0; i < 4; i++) blk[2 + i] = (uint8_t)(qh >> (8 * i));
}

/* ---- 256-element super-blocks (K-quants) ----
 * ggml's reference quantizers quantize_row_q4_K_ref / quantize_row_q6_K_ref /
 * quantize_row_q3_K_ref (what llama-quantize runs without an importance
 * matrix), re-implemented
 * from their published algorithm. Identical bytes need identical float
 * arithmetic: every expression keeps ggml's evaluation order and f32 types
 * (int operands convert to float where ggml's do), rounding goes through
 * nearest_int's bit trick (round half to even, no float-to-int conversion),
 * and this file is compiled with -ffp-contract=off (CMakeLists.txt) so no
 * a * b + c becomes a fused multiply-add. */

#define KQ_MAX_EPS 1e-15f /* ggml's GROUP_MAX_EPS: a group below it is all zero */

/* Round to nearest, ties to even, for |f| <= 2^22 (ggml's nearest_int): adding
 * 1.5 * 2^23 leaves the integer in the low mantissa bits. */
static int nearest_int(float f) {
  float v = f + 12582912.f;
  int32_t i;
  memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* Q4_K's sub-block fit (ggml's make_qkx2_quants with n 32, nmax 15, rmin -1,
 * rdelta 0.1, 20 steps, squared error): x ~ scale * L + min with min <= 0,
 * L in [0, 15], weighted least squares over a sweep of candidate inverse
 * scales. Returns scale; *the_min = -min. */
static float q4_k_fit(const float *x, const float *w, uint8_t *L, float *the_min) {
  enum { N = 32, NMAX = 15, NSTEP = 20 };
  const float rmin = -1.f, rdelta = 0.1f;
  uint8_t Laux[N];
  float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < N; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    memset(L, 0, N);
    *the_min = -min;
    return 0.f;
  }
  float iscale = (float)NMAX / (max - min), scale = 1 / iscale, best_error = 0;
  for (int i = 0; i < N; i++) {
    int l = nearest_int(iscale * (x[i] - min));
    L[i] = (uint8_t)imax(0, imin(NMAX, l));
    float diff = scale * (float)L[i] + min - x[i];
    best_error += w[i] * (diff * diff);
  }
  for (int is = 0; is <= NSTEP; is++) {
    iscale = (rmin + rdelta * (float)is + (float)NMAX) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < N; i++) {
      int l = imax(0, imin(NMAX, nearest_int(iscale * (x[i] - min))));
      Laux[i] = (uint8_t)l;
      float fl = (float)l;
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < N; i++) {
        float diff = this_scale * (float)Laux[i] + this_min - x[i];
        cur_error += w[i] * (diff * diff);
      }
      if (cur_error < best_error) {
        memcpy(L, Laux, N);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

/* Q4_K: f16 d, f16 dmin, 12 bytes of 6-bit sub-block scales and mins (the
 * packing tfx_q4_k_scale_min reads), 128 bytes of nibbles; see ir/dtype.c. */
static void q4_k_block(const float *x, uint8_t *blk) {
  uint8_t L[256], *scales = blk + 4, *q = blk + 16;
  float w[32], mins[8], sc[8], max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; j++) {
    const float *xj = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; l++) sum_x2 += xj[l] * xj[l];
    float av_x = sqrtf(sum_x2 / 32);
    for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xj[l]);
    sc[j] = q4_k_fit(xj, w, L + 32 * j, &mins[j]);
    if (sc[j] > max_scale) max_scale = sc[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  memset(scales, 0, 12);
  for (int j = 0; j < 8; j++) {
    /* ggml stores nearest_int's result in a uint8_t before clamping to 63 */
    uint8_t ls = (uint8_t)nearest_int(inv_scale * sc[j]), lm = (uint8_t)nearest_int(inv_min * mins[j]);
    ls = ls < 63 ? ls : 63;
    lm = lm < 63 ? lm : 63;
    if (j < 4) {
      scales[j] = ls;
      scales[j + 4] = lm;
    } else {
      scales[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
      scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
      scales[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
  uint16_t d16 = f32_to_f16(max_scale / 63.f), dmin16 = f32_to_f16(max_min / 63.f);
  put16(blk, d16);
  put16(blk + 2, dmin16);
  float dd = tfx_f16_to_f32(d16), dmin = tfx_f16_to_f32(dmin16);
  for (int j = 0; j < 8; j++) {
    int s, m;
    tfx_q4_k_scale_min(scales, j, &s, &m);
    float d = dd * (float)s;
    if (d == 0.0f) continue; /* keeps the fit's L */
    float dm = dmin * (float)m;
    for (int i = 0; i < 32; i++) L[32 * j + i] = (uint8_t)imax(0, imin(15, nearest_int((x[32 * j + i] + dm) / d)));
  }
  for (int j = 0; j < 256; j += 64, q += 32)
    for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
}

/* The value of largest magnitude of x[0 .. n) (the first on ties; 0 for
 * none above 0): the signed max the k-quant group fits scale from. */
static float signed_max(const float *x, int n) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; i++) {
    float ax = fabsf(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

/* Q6_K's group fit (ggml's make_qx_quants with n 16, nmax 32, rmse_type 1,
 * no importance weights): L in [0, 63] stands for L - 32, weights x^2, the
 * inverse scale -nmax / max and 18 neighbours -(nmax + 0.1 is) / max tried.
 * Returns the scale (signed: the value of largest magnitude maps to -32). */
static float q6_k_fit(const float *x, int8_t *L) {
  enum { N = 16, NMAX = 32 };
  float max = signed_max(x, N);
  if (fabsf(max) < KQ_MAX_EPS) {
    memset(L, 0, N);
    return 0.f;
  }
  float iscale = (float)-NMAX / max, sumlx = 0, suml2 = 0;
  for (int i = 0; i < N; i++) {
    int l = imax(-NMAX, imin(NMAX - 1, nearest_int(iscale * x[i])));
    L[i] = (int8_t)(l + NMAX);
    float w = x[i] * x[i], fl = (float)l;
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f, best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -((float)NMAX + 0.1f * (float)is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < N; i++) {
      int l = imax(-NMAX, imin(NMAX - 1, nearest_int(iscale * x[i])));
      float w = x[i] * x[i], fl = (float)l;
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < N; i++) L[i] = (int8_t)(NMAX + imax(-NMAX, imin(NMAX - 1, nearest_int(iscale * x[i]))));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/* Q6_K: 128 bytes ql, 64 bytes qh, 16 int8 group scales, f16 d; see ir/dtype.c. */
static void q6_k_block(const float *x, uint8_t *blk) {
  int8_t L[256];
  float sc[16], max_scale = 0, max_abs_scale = 0;
  for (int g = 0; g < 16; g++) {
    sc[g] = q6_k_fit(x + 16 * g, L + 16 * g);
    if (fabsf(sc[g]) > max_abs_scale) {
      max_abs_scale = fabsf(sc[g]);
      max_scale = sc[g];
    }
  }
  memset(blk, 0, 210);
  if (max_abs_scale < KQ_MAX_EPS) return; /* all zero, d = 0 */
  int8_t *scales = (int8_t *)(blk + 192);
  float iscale = -128.f / max_scale;
  uint16_t d16 = f32_to_f16(1 / iscale);
  put16(blk + 208, d16);
  for (int g = 0; g < 16; g++) scales[g] = (int8_t)imin(127, nearest_int(iscale * sc[g]));
  float dd = tfx_f16_to_f32(d16);
  for (int g = 0; g < 16; g++) {
    float d = dd * (float)scales[g];
    if (d == 0.0f) continue; /* keeps the fit's L */
    for (int i = 0; i < 16; i++) L[16 * g + i] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * g + i] / d))) + 32);
  }
  uint8_t *ql = blk, *qh = blk + 128;
  for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
    for (int l = 0; l < 32; l++) {
      const uint8_t *u = (const uint8_t *)L + j + l;
      ql[l] = (uint8_t)((u[0] & 0xf) | (u[64] & 0xf) << 4);
      ql[l + 32] = (uint8_t)((u[32] & 0xf) | (u[96] & 0xf) << 4);
      qh[l] = (uint8_t)(u[0] >> 4 | (u[32] >> 4) << 2 | (u[64] >> 4) << 4 | (u[96] >> 4) << 6);
    }
}

/* Q3_K's group fit (ggml's make_q3_quants with n 16, nmax 4, do_rmse): L
 * in [-4, 3] from the inverse scale -4 / max (max: the value of largest
 * magnitude), then up to 5 sweeps that move one L at a time to
 * nearest_int(x * sum w l^2 / sum w x l) (without its own term) while that
 * raises (sum w x l)^2 / sum w l^2, weights x^2. Returns sum w x l / sum w l^2
 * (signed); L is stored + 4 (0 .. 7). An all-zero group (every |x| below
 * 1e-15) is L = 0 and scale 0. */
static float q3_k_fit(const float *x, int8_t *L) {
  enum { N = 16, NMAX = 4 };
  float max = signed_max(x, N);
  if (fabsf(max) < KQ_MAX_EPS) {
    memset(L, 0, N);
    return 0.f;
  }
  float iscale = (float)-NMAX / max, sumlx = 0, suml2 = 0;
  for (int i = 0; i < N; i++) {
    int l = imax(-NMAX, imin(NMAX - 1, nearest_int(iscale * x[i])));
    L[i] = (int8_t)l;
    float w = x[i] * x[i];
    sumlx += w * x[i] * (float)l;
    suml2 += w * (float)l * (float)l;
  }
  for (int itry = 0; itry < 5; itry++) {
    int n_changed = 0;
    for (int i = 0; i < N; i++) {
      float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * (float)L[i];
      if (slx > 0) {
        float sl2 = suml2 - w * (float)L[i] * (float)L[i];
        int new_l = imax(-NMAX, imin(NMAX - 1, nearest_int(x[i] * sl2 / slx)));
        if (new_l != L[i]) {
          slx += w * x[i] * (float)new_l;
          sl2 += w * (float)new_l * (float)new_l;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = (int8_t)new_l;
            sumlx = slx;
            suml2 = sl2;
            n_changed++;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < N; i++) L[i] = (int8_t)(L[i] + NMAX);
  return sumlx / suml2;
}

void tfx_q3_k_pack(const int8_t *L, uint8_t *blk) {
  uint8_t *hm = blk, *qs = blk + 32;
  memset(hm, 0, 32);
  for (int j = 0; j < 256; j++)
    if (L[j] > 3) hm[j % 32] |= (uint8_t)(1u << (j / 32));
  for (int j = 0; j < 256; j += 128)
    for (int l = 0; l < 32; l++) {
      const int8_t *u = L + j + l;
      qs[j / 4 + l] = (uint8_t)((u[0] & 3) | (u[32] & 3) << 2 | (u[64] & 3) << 4 | (u[96] & 3) << 6);
    }
}

void tfx_q3_k_put_scales(const float *sc, float max_scale, uint8_t *blk) {
  uint8_t *scales = blk + 96;
  memset(scales, 0, 12);
  if (max_scale != 0.0f) {
    float iscale = -32.f / max_scale;
    for (int j = 0; j < 16; j++) {
      int l = imax(-32, imin(31, (int)(int8_t)nearest_int(iscale * sc[j]))) + 32;
      if (j < 8)
        scales[j] = (uint8_t)(l & 0xf);
      else
        scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
      scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    put16(blk + 108, f32_to_f16(1 / iscale));
  } else {
    put16(blk + 108, f32_to_f16(0.f));
  }
}

/* Q3_K (ggml's quantize_row_q3_K_ref): hmask[32], qs[64], 12 scale bytes,
 * f16 d; see ir/dtype.c. Each group of 16 fitted by q3_k_fit; the 16 scales
 * stored in 6 bits relative to the one of largest magnitude (d = max / -32,
 * l = clamp(nearest_int(-32 sc / max), -32, 31) + 32), then every element
 * requantized against the stored (f16, 6-bit) scale: L = clamp(nearest_int(x
 * / (d (l - 32))), -4, 3) + 4; a group whose stored scale is 0 keeps the
 * fit's L. */
static void q3_k_fits(const float *x, int8_t *L, float *sc, float *max_scale) {
  float amax = 0;
  *max_scale = 0;
  for (int j = 0; j < 16; j++) {
    sc[j] = q3_k_fit(x + 16 * j, L + 16 * j);
    if (fabsf(sc[j]) > amax) {
      amax = fabsf(sc[j]);
      *max_scale = sc[j];
    }
  }
}

void tfx_q3_k_fit_scales(const float *x, float *sc, float *max_scale) {
  int8_t L[256];
  q3_k_fits(x, L, sc, max_scale);
}

static void q3_k_block(const float *x, uint8_t *blk) {
  int8_t L[256];
  float sc[16], max_scale;
  q3_k_fits(x, L, sc, &max_scale);
  tfx_q3_k_put_scales(sc, max_scale, blk);
  float dd = tfx_f16_to_f32((uint16_t)(blk[108] | blk[109] << 8));
  for (int j = 0; j < 16; j++) {
    float d = dd * (float)(int8_t)(tfx_q3_k_scale(blk + 96, j) - 32);
    if (d == 0.0f) continue; /* keeps the fit's L */
    for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(imax(-4, imin(3, nearest_int(x[16 * j + i] / d))) + 4);
  }
  tfx_q3_k_pack(L, blk);
}

/* ---- ternary (TQ2_0) ---- */

/* The 256 codes q + 1 (0, 1, 2) of a tq2_0 block into its 64 bytes of qs:
 * element 128 j + 32 n + m at bits 2 n of byte 32 j + m. */
static void tq2_0_pack(const int *q, uint8_t *blk) {
  for (int j = 0; j < 2; j++)
    for (int m = 0; m < 32; m++) {
      unsigned v = 0;
      for (int n = 0; n < 4; n++) v |= (unsigned)(q[128 * j + 32 * n + m] & 3) << (2 * n);
      blk[32 * j + m] = (uint8_t)v;
    }
}

/* ggml's quantize_row_tq2_0_ref: d = amax of the block, q = lroundf(x / d) + 1. */
static void tq2_0_block(const float *x, uint8_t *blk) {
  float amax = 0;
  for (int j = 0; j < 256; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax, id = d != 0.0f ? 1.0f / d : 0.0f;
  int q[256];
  for (int j = 0; j < 256; j++) {
    float v = roundf(x[j] * id); /* |v| <= 1 */
    q[j] = (v > 0.0f ? 1 : v < 0.0f ? -1 : 0) + 1;
  }
  tq2_0_pack(q, blk);
  put16(blk + 64, f32_to_f16(d));
}

int64_t tfx_quantize_ternary_row(const float *x, int64_t K, float mean_abs, uint8_t *dst) {
  if (K <= 0 || K % 256) return -1;
  float s = mean_abs > 1e-5f ? mean_abs : 1e-5f, is = 1.0f / s;
  uint16_t d16 = f32_to_f16(s);
  for (int64_t b = 0; b < K / 256; b++) {
    int q[256];
    for (int j = 0; j < 256; j++) {
      float v = rintf(x[b * 256 + j] * is);
      q[j] = (v >= 1.0f ? 1 : v <= -1.0f ? -1 : 0) + 1;
    }
    tq2_0_pack(q, dst + b * 66);
    put16(dst + b * 66 + 64, d16);
  }
  return K / 256 * 66;
}

/* ---- 2:4 sparsity ---- */

/* The two kept positions p0 < p1 of the group of 4 at x: the two largest
 * |x| (on equal magnitudes the lower position wins). */
static void s24_pick(const float *x, int *p0, int *p1) {
  int a = 0;
  for (int k = 1; k < 4; k++)
    if (fabsf(x[k]) > fabsf(x[a])) a = k;
  int b = a == 0 ? 1 : 0;
  for (int k = 0; k < 4; k++)
    if (k != a && fabsf(x[k]) > fabsf(x[b])) b = k;
  *p0 = a < b ? a : b;
  *p1 = a < b ? b : a;
}

/* The block's 16 kept values and its position word (s24_f32: 2-bit
 * positions) and keep mask (s24_q8_0: bit i for input i) (layouts:
 * ir/dtype.c). */
static uint32_t s24_keep(const float *x, float *v, uint32_t *mask) {
  uint32_t idx = 0;
  *mask = 0;
  for (int g = 0; g < 8; g++) {
    int p0, p1;
    s24_pick(x + 4 * g, &p0, &p1);
    v[2 * g] = x[4 * g + p0];
    v[2 * g + 1] = x[4 * g + p1];
    idx |= (uint32_t)(p0 | p1 << 2) << (4 * g);
    *mask |= (1u << (4 * g + p0)) | (1u << (4 * g + p1));
  }
  return idx;
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void s24_f32_block(const float *x, uint8_t *blk) {
  float v[16];
  uint32_t mask, idx = s24_keep(x, v, &mask);
  memcpy(blk, v, sizeof v);
  put32(blk + 64, idx);
}

/* s24_q8_0: the keep mask, the kept values as q8_0 (d = amax / 127, q =
 * roundf(v / d)). */
static void s24_q8_0_block(const float *x, uint8_t *blk) {
  float v[16], amax = 0;
  uint32_t mask;
  s24_keep(x, v, &mask);
  for (int j = 0; j < 16; j++) amax = fmaxf(amax, fabsf(v[j]));
  float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(blk, f32_to_f16(d));
  put32(blk + 2, mask);
  for (int j = 0; j < 16; j++) blk[6 + j] = (uint8_t)trunc_i8(roundf(v[j] * id));
}

/* ---- i8 (w8a8): per output channel ---- */

void tfx_quantize_i8_row(const float *x, int64_t K, int8_t *q, float *scale) {
  float amax = 0;
  for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(x[k]));
  float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int64_t k = 0; k < K; k++) q[k] = (int8_t)trunc_i8(roundf(x[k] * id));
  *scale = d;
}

/* ---- ZeroQuant: group-wise asymmetric 8-bit (zq8_64, zq8_128) ---- */

void tfx_quantize_zq8_group(const float *x, int n, uint8_t *blk) { tfx_quantize_zq_group(x, n, 8, blk); }

void tfx_quantize_zq_group(const float *x, int n, int bits, uint8_t *blk) {
  const int qmax = (1 << bits) - 1;
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; i++) {
    lo = fminf(lo, x[i]);
    hi = fmaxf(hi, x[i]);
  }
  float s = (hi - lo) / (float)qmax, m = fmaxf(fabsf(lo), fabsf(hi)) / 32000.0f;
  if (s < m) s = m; /* the zero point stays an i16 (a constant group: z = -+32000) */
  uint16_t d16 = f32_to_f16(s);
  if (tfx_f16_to_f32(d16) < s && d16 < 0x7bff) d16++; /* rounded up: the codes reach hi */
  float ds = tfx_f16_to_f32(d16);
  int z = 0;
  if (ds != 0.0f) {
    float zf = roundf(-lo / ds);
    z = zf < -32768.0f ? -32768 : zf > 32767.0f ? 32767 : (int)zf;
  }
  put16(blk, d16);
  put16(blk + 2, (uint16_t)(int16_t)z);
  if (bits == 4) memset(blk + 4, 0, (size_t)n / 2);
  for (int i = 0; i < n; i++) {
    int q = 0;
    if (ds != 0.0f) {
      float v = roundf(x[i] / ds) + (float)z;
      q = v < 0.0f ? 0 : v > (float)qmax ? qmax : (int)v;
    }
    if (bits == 8)
      blk[4 + i] = (uint8_t)q;
    else /* by 32: element j at byte j low, j + 16 high */
      blk[4 + 16 * (i / 32) + i % 16] |= (uint8_t)(q << (4 * (i % 32 / 16)));
  }
}

int tfx_quantize_supported(tfx_dtype dt) {
  return dt == TFX_DT_I8 || dt == TFX_DT_F16 || dt == TFX_DT_BF16 || dt == TFX_DT_Q8_0 || dt == TFX_DT_Q4_0 ||
         dt == TFX_DT_Q4_K || dt == TFX_DT_Q6_K || dt == TFX_DT_Q5_0 || dt == TFX_DT_TQ2_0 || dt == TFX_DT_S24_F32 ||
         dt == TFX_DT_S24_Q8_0 || dt == TFX_DT_TQ2_T || dt == TFX_DT_ZQ8_64 || dt == TFX_DT_ZQ8_128 ||
         dt == TFX_DT_ZQ4_64 || dt == TFX_DT_ZQ4_128 || dt == TFX_DT_Q3_K;
}

int64_t tfx_quantize_row(tfx_dtype dt, const float *x, int64_t K, uint8_t *dst) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  if (!f || !tfx_quantize_supported(dt) || K <= 0 || K % f->block) return -1;
  if (dt == TFX_DT_TQ2_T) { /* one row: BitNet's quantization with the row's own mean |x| as the tensor's */
    double sum = 0.0;
    for (int64_t k = 0; k < K; k++) sum += fabs((double)x[k]);
    return tfx_quantize_ternary_row(x, K, (float)(sum / (double)K), dst);
  }
  if (dt == TFX_DT_I8) { /* one row: its K values, then its scale (the planes of ir/dtype.c for R = 1) */
    float sc;
    tfx_quantize_i8_row(x, K, (int8_t *)dst, &sc);
    memcpy(dst + K, &sc, 4);
    return K + 4;
  }
  for (int64_t b = 0; b < K / f->block; b++) {
    const float *xb = x + b * f->block;
    uint8_t *out = dst + b * f->block_bytes;
    switch (dt) {
    case TFX_DT_F16: put16(out, f32_to_f16(xb[0])); break;
    case TFX_DT_BF16: put16(out, f32_to_bf16(xb[0])); break;
    case TFX_DT_Q8_0: q8_0_block(xb, out); break;
    case TFX_DT_Q4_0: q4_0_block(xb, out); break;
    case TFX_DT_Q4_K: q4_k_block(xb, out); break;
    case TFX_DT_Q6_K: q6_k_block(xb, out); break;
    case TFX_DT_Q5_0: q5_0_block(xb, out); break;
    case TFX_DT_Q3_K: q3_k_block(xb, out); break;
    case TFX_DT_TQ2_0: tq2_0_block(xb, out); break;
    case TFX_DT_S24_F32: s24_f32_block(xb, out); break;
    case TFX_DT_S24_Q8_0: s24_q8_0_block(xb, out); break;
    case TFX_DT_ZQ8_64:
    case TFX_DT_ZQ8_128: tfx_quantize_zq8_group(xb, f->block, out); break;
    case TFX_DT_ZQ4_64:
    case TFX_DT_ZQ4_128: tfx_quantize_zq_group(xb, f->block, 4, out); break;
    default: return -1;
    }
  }
  return K / f->block * f->block_bytes;
}

tfx_dtype tfx_quantize_fallback(tfx_dtype dt, int64_t K) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  if (!f || K % f->block == 0) return dt;
  /* zeroquant(group = 128) on rows of a multiple of 64: groups of 64 */
  if (dt == TFX_DT_ZQ8_128 && K % 64 == 0) return TFX_DT_ZQ8_64;
  if (dt == TFX_DT_ZQ4_128 && K % 64 == 0) return TFX_DT_ZQ4_64;
  /* llama.cpp's llama_tensor_get_type: a K-quant row 256 does not divide
   * converts Q4_K -> Q5_0 and Q6_K -> Q8_0, then F16 when 32 does not divide
   * it either; a 32-block format falls to F16. Q3_K: llama.cpp converts it
   * to IQ4_NL, which tfxc has not; Q4_0 has IQ4_NL's block and bits (32
   * elements, 4.5 bits per weight) */
  if (f->block == 256 && K % 32 == 0)
    return dt == TFX_DT_Q4_K ? TFX_DT_Q5_0 : dt == TFX_DT_Q3_K ? TFX_DT_Q4_0 : TFX_DT_Q8_0;
  return TFX_DT_F16;
}

/* ---- whole tensors ---- */

int tfx_quantize_param(const tfx_node *n, const uint8_t *src, tfx_dtype dt, uint8_t *dst, char *err, size_t errlen) {
  const char *name = n->name ? n->name : "?";
  if (!tfx_quantize_supported(dt))
    return tfx_errf(err, errlen, "no quantizer for %s yet (param '%s')", tfx_dtype_name(dt), name);
  int64_t K = tfx_node_cols(n), R = tfx_node_rows(n, 1);
  tfx_type nt = n->type;
  nt.dtype = dt;
  int64_t new_bytes = tfx_type_bytes(&nt, 1), rb = new_bytes / (R > 0 ? R : 1);
  float *row = malloc((size_t)(K > 0 ? K : 1) * sizeof *row);
  if (!row) return tfx_errf(err, errlen, "out of memory");
  int rc = 0;
  float mean_abs = 0.0f;
  int ternary = dt == TFX_DT_TQ2_T;
  if (ternary) { /* BitNet b1.58: the whole tensor's mean |w| */
    double sum = 0.0;
    for (int64_t r = 0; r < R; r++) {
      if (tfx_weight_dequant_row(n, src, r, row)) break;
      for (int64_t k = 0; k < K; k++) sum += fabs((double)row[k]);
    }
    mean_abs = R * K > 0 ? (float)(sum / (double)(R * K)) : 0.0f;
  }
  for (int64_t r = 0; r < R && rc == 0; r++) {
    if (tfx_weight_dequant_row(n, src, r, row)) {
      rc = tfx_errf(err, errlen, "param '%s': no decoder for %s", name, tfx_dtype_name(n->type.dtype));
      break;
    }
    for (int64_t k = 0; k < K; k++)
      if (!isfinite(row[k])) {
        /* worded as the binding's check (frontend/weights_check.c), which
         * only --allow-nonfinite lets such a value past */
        rc = tfx_errf(err, errlen,
                      "param '%s' holds a non-finite value (%s at element %lld, index [%lld, %lld]): "
                      "cannot quantize it to %s (--allow-nonfinite keeps such weights in the format they are bound in)",
                      name,
                      isnan(row[k]) ? "NaN"
                      : row[k] > 0  ? "inf"
                                    : "-inf",
                      (long long)(r * K + k), (long long)r, (long long)k, tfx_dtype_name(dt));
        break;
      }
    if (rc) break;
    if (dt == TFX_DT_I8) { /* the values plane, then the scale plane (ir/dtype.c) */
      float sc;
      tfx_quantize_i8_row(row, K, (int8_t *)(dst + r * K), &sc);
      memcpy(dst + R * K + r * 4, &sc, 4);
    } else if ((ternary ? tfx_quantize_ternary_row(row, K, mean_abs, dst + r * rb)
                        : tfx_quantize_row(dt, row, K, dst + r * rb)) != rb) {
      rc = tfx_errf(err, errlen, "param '%s': cannot quantize rows of %lld to %s", name, (long long)K,
                    tfx_dtype_name(dt));
    }
  }
  free(row);
  return rc;
}

/* ---- activations ---- */

void tfx_act_quant_block(const float *x, int8_t *q, float *d) {
  float amax = 0;
  for (int j = 0; j < TFX_ACT_QBLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
  float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
  for (int j = 0; j < TFX_ACT_QBLOCK; j++) q[j] = (int8_t)rintf(x[j] * id);
  *d = dd;
}

void tfx_act_quant_token(const float *x, int64_t K, int8_t *q, float *d) {
  float amax = 0;
  for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(x[k]));
  float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
  for (int64_t k = 0; k < K; k++) q[k] = (int8_t)rintf(x[k] * id);
  *d = dd;
}

/* The formats whose int8 kernels quantize the activations per block of TFX_ACT_QBLOCK. */
static int act_block_format(tfx_dtype dt) {
  return dt == TFX_DT_Q8_0 || dt == TFX_DT_Q4_0 || dt == TFX_DT_Q5_0 || dt == TFX_DT_Q3_K || dt == TFX_DT_Q4_K ||
         dt == TFX_DT_Q6_K || dt == TFX_DT_TQ2_0 || dt == TFX_DT_S24_Q8_0;
}

int tfx_node_act_quant(const tfx_graph *g, const tfx_node *n) {
  if (g->schedule.act_f32) return 0;
  if (n->op == TFX_OP_MOE_UP || n->op == TFX_OP_MOE_DOWN) { /* the experts (backend/k_moe.c) */
    if (n->n_inputs < 3) return 0;
    const tfx_node *w = &g->nodes[n->inputs[2]];
    int i3 = n->op == TFX_OP_MOE_UP ? tfx_moe_operand(n, TFX_MOE_W3) : -1;
    /* (2:4 sparse experts never occur: quantize_weights keeps lowbit formats to linears) */
    if (w->type.rank != 3 || !act_block_format(w->type.dtype) || w->type.dtype == TFX_DT_S24_Q8_0) return 0;
    /* GLU: w3 in the same format (one activation layout serves both) */
    return i3 < 0 || g->nodes[n->inputs[i3]].type.dtype == w->type.dtype;
  }
  if ((n->op != TFX_OP_LINEAR && n->op != TFX_OP_FUSED_LINEAR) || n->n_inputs < 2) return 0;
  tfx_dtype dt = g->nodes[n->inputs[1]].type.dtype;
  if (dt == TFX_DT_I8) return tfx_node_cols(&g->nodes[n->inputs[1]]) % TFX_ACT_QBLOCK == 0 ? 2 : 0;
  if (dt == TFX_DT_TQ2_T) return 2; /* BitNet b1.58: int8 activations per token (K: a multiple of 256) */
  if (dt == TFX_DT_ZQ8_64 || dt == TFX_DT_ZQ8_128 || dt == TFX_DT_ZQ4_64 || dt == TFX_DT_ZQ4_128)
    return 2; /* ZeroQuant: token-wise activations */
  return act_block_format(dt);
}

int64_t tfx_node_work_bytes(const tfx_graph *g, const tfx_node *n, int64_t t) {
  /* the experts quantize their rows into the kernel's stack */
  if ((n->op != TFX_OP_LINEAR && n->op != TFX_OP_FUSED_LINEAR) || !tfx_node_act_quant(g, n)) return 0;
  int64_t rows = tfx_node_rows(&g->nodes[n->inputs[0]], t), K = tfx_node_cols(&g->nodes[n->inputs[1]]);
  if (rows < TFX_ACT_WORK_MIN_ROWS || K <= 0 || rows > INT64_MAX / 4 / TFX_ACT_WORK_ROW_BYTES(K)) return 0;
  return rows * TFX_ACT_WORK_ROW_BYTES(K) + 4 * 64;
}
