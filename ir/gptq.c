/* ir/gptq.c — GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training
 * Quantization for Generative Pre-trained Transformers"): a linear's weight
 * W [N, K] quantized column by column, the error of each column spread over
 * the columns not yet quantized through the inverse of H = sum x x^T (the
 * calibration's Hessian of the layer's squared error), into q4_0 blocks.
 *
 * The paper's algorithm (its Algorithm 1 with lazy batch updates):
 *   dead columns (H_jj = 0) get H_jj = 1 and W[:, j] = 0;
 *   act_order: columns in order of decreasing H_jj;
 *   H += damp * mean(diag H) * I;
 *   U = chol(H^-1), upper (H^-1 = U^T U): dpotrf, dpotri, dpotrf (LAPACKE);
 *   for each block of 128 columns [i1, i2), for each column i in it:
 *     q = quant(W[:, i]); e = (W[:, i] - q) / U_ii;
 *     W[:, i+1 .. i2) -= e U[i, i+1 .. i2)   (inside the block)
 *   then W[:, i2 ..) -= E U[i1 .. i2, i2 ..)  (E: the block's errors).
 * The quantizer is q4_0's grid with the group's stored scale: d = f16(max /
 * -8) (max: the group's value of largest |w|, the first on ties, as ggml),
 * q = clamp(floor(w / d + 8.5), 0, 15), dequantized d (q - 8); a group's d
 * is taken from its current (already compensated) weights when its first
 * column is reached, or with act_order from the original weights (GPTQ's
 * static groups: the stored blocks need groups of consecutive columns). A
 * group of 64 or 128 columns writes its one scale in each of its q4_0
 * blocks. Everything in f64. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

#define GPTQ_BLOCK 128

/* q4_0's scale of the n values at x (stride s), stored as f16 and read back */
static double group_scale(const double *x, int64_t n, int64_t s) {
  float amax = 0.0f, max = 0.0f;
  for (int64_t j = 0; j < n; j++) {
    float v = (float)x[j * s];
    if (amax < fabsf(v)) {
      amax = fabsf(v);
      max = v;
    }
  }
  float d = max / -8.0f;
  uint8_t h[2];
  tfx_quantize_row(TFX_DT_F16, &d, 1, h);
  return tfx_f16_to_f32((uint16_t)(h[0] | h[1] << 8));
}

static int quant(double w, double d) {
  if (d == 0.0) return 8;
  double v = floor(w / d + 8.5);
  return v < 0 ? 0 : v > 15 ? 15 : (int)v;
}

typedef struct {
  int64_t j;
  double h;
} col_key;
static int cmp_key(const void *a, const void *b) {
  const col_key *x = a, *y = b;
  if (x->h != y->h) return x->h > y->h ? -1 : 1;
  return x->j < y->j ? -1 : x->j > y->j; /* stable */
}

/* q3_k's scales of the 256 values at x (f64, stride 1) of a row's super-block
 * blk: stored into blk's scale bytes and d as round-to-nearest q3_k would,
 * and the 16 group scales d (sc - 32) read back from them into s. */
static void q3_k_scales(const double *x, uint8_t *blk, double *s) {
  float xf[256], sc[16], max_scale;
  for (int j = 0; j < 256; j++) xf[j] = (float)x[j];
  tfx_q3_k_fit_scales(xf, sc, &max_scale);
  tfx_q3_k_put_scales(sc, max_scale, blk);
  float dd = tfx_f16_to_f32((uint16_t)(blk[108] | blk[109] << 8));
  for (int j = 0; j < 16; j++) s[j] = (double)(dd * (float)(tfx_q3_k_scale(blk + 96, j) - 32));
}

static int quant3(double w, double s) {
  if (s == 0.0) return 4;
  double v = rint(w / s);
  return v < -4 ? 0 : v > 3 ? 7 : (int)v + 4;
}

/* bits 4: q4_0 blocks (group: 32, 64, 128); bits 3: q3_k super-blocks */
static int gptq_run(const float *W, int64_t N, int64_t K, const double *H, int bits, int group, double damp,
                    int act_order, uint8_t *dst, char *err, size_t errlen) {
  int bk = bits == 3 ? 256 : 32; /* the stored block */
  if (bits == 3) group = 256;
  if (N < 1 || K < bk || K % bk || K > (int64_t)1 << 15 || group < 1 || !(damp >= 0.0 && damp < 1e6))
    return tfx_errf(err, errlen, "gptq: bad sizes (N %lld, K %lld, group %d; K a multiple of %d)", (long long)N,
                    (long long)K, group, bk);
  size_t nk = (size_t)N * (size_t)K, kk = (size_t)K * (size_t)K;
  /* d: the scale of each q4_0 block of 32, or of each q3_k group of 16 */
  double *w = malloc(nk * sizeof *w), *h = malloc(kk * sizeof *h), *d = malloc(nk / 16 * sizeof *d);
  int64_t *perm = malloc((size_t)K * sizeof *perm);
  col_key *keys = malloc((size_t)K * sizeof *keys);
  double *errb = malloc((size_t)N * GPTQ_BLOCK * sizeof *errb);
  uint8_t *q = malloc(nk);
  int rc = 0;
  if (!w || !h || !d || !perm || !keys || !errb || !q) {
    rc = tfx_errf(err, errlen, "gptq: out of memory (K %lld)", (long long)K);
    goto done;
  }
  for (size_t i = 0; i < nk; i++) {
    if (!isfinite(W[i])) {
      rc = tfx_errf(err, errlen, "gptq: weight [%zu, %zu] is not finite", i / (size_t)K, i % (size_t)K);
      goto done;
    }
    w[i] = W[i];
  }
  memcpy(h, H, kk * sizeof *h);
  /* dead inputs: never active in calibration */
  for (int64_t j = 0; j < K; j++)
    if (h[j * K + j] == 0.0) {
      h[j * K + j] = 1.0;
      for (int64_t r = 0; r < N; r++) w[r * K + j] = 0.0;
    }
  /* static group scales (act_order), from the weights before any update */
  for (int64_t r = 0; r < N && act_order && bits == 3; r++)
    for (int64_t b = 0; b < K / 256; b++)
      q3_k_scales(w + r * K + 256 * b, dst + (r * (K / 256) + b) * 110, d + r * (K / 16) + 16 * b);
  for (int64_t r = 0; r < N && act_order && bits == 4; r++)
    for (int64_t g0 = 0; g0 < K; g0 += group) {
      int64_t n = K - g0 < group ? K - g0 : group;
      double s = group_scale(w + r * K + g0, n, 1);
      for (int64_t b = g0 / 32; b < (g0 + n) / 32; b++) d[r * (K / 32) + b] = s;
    }
  /* the order of the columns */
  for (int64_t j = 0; j < K; j++) keys[j] = (col_key){j, h[j * K + j]};
  if (act_order) qsort(keys, (size_t)K, sizeof *keys, cmp_key);
  for (int64_t j = 0; j < K; j++) perm[j] = keys[j].j;
  /* H and W with their columns in that order */
  double *hp = malloc(kk * sizeof *hp), *wp = malloc(nk * sizeof *wp);
  if (!hp || !wp) {
    free(hp);
    free(wp);
    rc = tfx_errf(err, errlen, "gptq: out of memory (K %lld)", (long long)K);
    goto done;
  }
  double mean = 0.0;
  for (int64_t j = 0; j < K; j++) mean += h[j * K + j];
  mean /= (double)K;
  for (int64_t a = 0; a < K; a++)
    for (int64_t b = 0; b < K; b++) hp[a * K + b] = h[perm[a] * K + perm[b]];
  for (int64_t j = 0; j < K; j++) hp[j * K + j] += damp * mean;
  for (int64_t r = 0; r < N; r++)
    for (int64_t j = 0; j < K; j++) wp[r * K + j] = w[r * K + perm[j]];
  /* U = chol(H^-1) upper */
  lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)K, hp, (lapack_int)K);
  if (info == 0) info = LAPACKE_dpotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)K, hp, (lapack_int)K);
  if (info == 0) {
    for (int64_t a = 0; a < K; a++) /* the inverse is in the lower triangle: mirror it */
      for (int64_t b = a + 1; b < K; b++) hp[a * K + b] = hp[b * K + a];
    info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)K, hp, (lapack_int)K);
  }
  if (info != 0) {
    free(hp);
    free(wp);
    rc = tfx_errf(err, errlen,
                  "gptq: H is not positive definite after dampening (LAPACK info %d; raise damp, or calibrate on "
                  "more tokens)",
                  (int)info);
    goto done;
  }
  const double *U = hp;
  for (int64_t i1 = 0; i1 < K; i1 += GPTQ_BLOCK) {
    int64_t i2 = K - i1 < GPTQ_BLOCK ? K : i1 + GPTQ_BLOCK, nb = i2 - i1;
    for (int64_t i = i1; i < i2; i++) {
      int64_t col = perm[i]; /* the original column */
      double u = U[i * K + i];
      for (int64_t r = 0; r < N; r++) {
        double *row = wp + r * K;
        if (!act_order && i % group == 0 && bits == 3) /* the super-block's scales from its current weights */
          q3_k_scales(row + i, dst + (r * (K / 256) + i / 256) * 110, d + r * (K / 16) + i / 16);
        else if (!act_order && i % group == 0) { /* the group's scale from its current weights */
          int64_t n = K - i < group ? K - i : group;
          double s = group_scale(row + i, n, 1);
          for (int64_t b = i / 32; b < (i + n) / 32; b++) d[r * (K / 32) + b] = s;
        }
        double s, dq;
        int qv;
        if (bits == 3) {
          s = d[r * (K / 16) + col / 16];
          qv = quant3(row[i], s);
          dq = s * (qv - 4);
        } else {
          s = d[r * (K / 32) + col / 32];
          qv = quant(row[i], s);
          dq = s * (qv - 8);
        }
        q[r * K + col] = (uint8_t)qv;
        double e = (row[i] - dq) / u;
        errb[r * GPTQ_BLOCK + (i - i1)] = e;
        for (int64_t j = i + 1; j < i2; j++) row[j] -= e * U[i * K + j];
      }
    }
    /* lazy batch update of the columns after the block */
    for (int64_t r = 0; r < N && i2 < K; r++) {
      double *row = wp + r * K;
      const double *e = errb + r * GPTQ_BLOCK;
      for (int64_t t = 0; t < nb; t++) {
        const double *ut = U + (i1 + t) * K;
        double et = e[t];
        if (et != 0.0)
          for (int64_t j = i2; j < K; j++) row[j] -= et * ut[j];
      }
    }
  }
  free(hp);
  free(wp);
  /* q3_k: the codes into the super-blocks (their scales are already stored) */
  for (int64_t r = 0; r < N && bits == 3; r++)
    for (int64_t b = 0; b < K / 256; b++)
      tfx_q3_k_pack((const int8_t *)(q + r * K + 256 * b), dst + (r * (K / 256) + b) * 110);
  /* the q4_0 blocks: f16 d, byte j holds element j (low nibble) and j + 16 */
  for (int64_t r = 0; r < N && bits == 4; r++)
    for (int64_t b = 0; b < K / 32; b++) {
      uint8_t *blk = dst + (r * (K / 32) + b) * 18;
      float s = (float)d[r * (K / 32) + b];
      tfx_quantize_row(TFX_DT_F16, &s, 1, blk);
      const uint8_t *qb = q + r * K + b * 32;
      for (int j = 0; j < 16; j++) blk[2 + j] = (uint8_t)(qb[j] | qb[j + 16] << 4);
    }
done:
  free(w);
  free(h);
  free(d);
  free(perm);
  free(keys);
  free(errb);
  free(q);
  return rc;
}

int tfx_gptq_q4_0(const float *W, int64_t N, int64_t K, const double *H, int group, double damp, int act_order,
                  uint8_t *dst, char *err, size_t errlen) {
  return gptq_run(W, N, K, H, 4, group, damp, act_order, dst, err, errlen);
}

int tfx_gptq_q3_k(const float *W, int64_t N, int64_t K, const double *H, double damp, int act_order, uint8_t *dst,
                  char *err, size_t errlen) {
  return gptq_run(W, N, K, H, 3, 256, damp, act_order, dst, err, errlen);
}
