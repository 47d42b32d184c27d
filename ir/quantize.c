/* ir/quantize.c — the quantizers of the weight formats (tfx_quantize_row:
 * bytes identical to ggml's reference quantizers and the gguf package), the
 * fallback rule for rows a block format cannot hold, and the run-time
 * quantization of activations ahead of int8 dot products (the kernels'
 * definition, which the interpreter emulates). Layouts: ir/dtype.c. */
#include <math.h>
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

/* Q8_0: d = amax / 127, q = round(x / d) (roundf: ties away from zero). */
static void q8_0_block(const float *x, uint8_t *blk) {
  float amax = 0;
  for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
  float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  put16(blk, f32_to_f16(d));
  for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
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
    int a = (int)(int8_t)(x[j] * id + 8.5f), b = (int)(int8_t)(x[j + 16] * id + 8.5f);
    a = a < 15 ? a : 15;
    b = b < 15 ? b : 15;
    blk[2 + j] = (uint8_t)(a | b << 4);
  }
}

int tfx_quantize_supported(tfx_dtype dt) {
  return dt == TFX_DT_F16 || dt == TFX_DT_BF16 || dt == TFX_DT_Q8_0 || dt == TFX_DT_Q4_0;
}

int64_t tfx_quantize_row(tfx_dtype dt, const float *x, int64_t K, uint8_t *dst) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  if (!f || !tfx_quantize_supported(dt) || K <= 0 || K % f->block) return -1;
  for (int64_t b = 0; b < K / f->block; b++) {
    const float *xb = x + b * f->block;
    uint8_t *out = dst + b * f->block_bytes;
    switch (dt) {
    case TFX_DT_F16: put16(out, f32_to_f16(xb[0])); break;
    case TFX_DT_BF16: put16(out, f32_to_bf16(xb[0])); break;
    case TFX_DT_Q8_0: q8_0_block(xb, out); break;
    case TFX_DT_Q4_0: q4_0_block(xb, out); break;
    default: return -1;
    }
  }
  return K / f->block * f->block_bytes;
}

tfx_dtype tfx_quantize_fallback(tfx_dtype dt, int64_t K) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  if (!f || K % f->block == 0) return dt;
  /* llama.cpp: Q4_K -> Q5_0, Q6_K -> Q8_0; tfxc has no Q5_0, so a K-quant
   * falls to Q8_0 (more bits, never fewer) */
  if (f->block == 256) return K % 32 == 0 ? TFX_DT_Q8_0 : TFX_DT_F16;
  return TFX_DT_F16;
}

/* ---- activations ---- */

void tfx_act_quant_block(const float *x, int8_t *q, float *d) {
  float amax = 0;
  for (int j = 0; j < TFX_ACT_QBLOCK; j++) amax = fmaxf(amax, fabsf(x[j]));
  float dd = amax / 127.0f, id = dd != 0.0f ? 1.0f / dd : 0.0f;
  for (int j = 0; j < TFX_ACT_QBLOCK; j++) q[j] = (int8_t)rintf(x[j] * id);
  *d = dd;
}

int tfx_node_act_quant(const tfx_graph *g, const tfx_node *n) {
  if ((n->op != TFX_OP_LINEAR && n->op != TFX_OP_FUSED_LINEAR) || n->n_inputs < 2 || g->schedule.act_f32) return 0;
  tfx_dtype dt = g->nodes[n->inputs[1]].type.dtype;
  return dt == TFX_DT_Q8_0 || dt == TFX_DT_Q4_0 || dt == TFX_DT_Q4_K || dt == TFX_DT_Q6_K;
}
