/* ir/interp_attention.c — the reference interpreter's ATTENTION (self and
 * cross, causal with its KV cache or not, ALiBi, T5's relative bias, sparse masks,
 * key padding masks, packed sequences' segment ids, Longformer's per-call global tokens) and
 * MLA_ATTENTION (rebuilding K and V of every head from the cached latent,
 * not the absorbed form the backend uses). Naive loops, double accumulators:
 * the test oracle. */
#include "interp_attention.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Softmax in place over the allowed scores sc[0..n) (allowed[j] != 0); the
 * others become 0, and all become 0 when nothing is allowed. */
static void softmax_rows(double *sc, const char *allowed, int64_t n) {
  double mx = -INFINITY, sum = 0.0;
  for (int64_t j = 0; j < n; j++)
    if (allowed[j] && sc[j] > mx) mx = sc[j];
  for (int64_t j = 0; j < n; j++) {
    sc[j] = allowed[j] ? exp(sc[j] - mx) : 0.0;
    sum += sc[j];
  }
  for (int64_t j = 0; j < n; j++) sc[j] = sum > 0 ? sc[j] / sum : 0.0;
}

int tfx_interp_attention(const tfx_node *n, const float *q, const float *k, const float *v, const float *relb,
                         int64_t n_buckets, tfx_interp_key_mask km, float *kc, float *vc, float *y, int64_t q_rows,
                         int64_t k_rows, int64_t pos, int64_t max_seq, char *err, size_t errlen) {
  int64_t H = n->heads, G = n->kv_heads, d = n->head_dim, group = H / G;
  int64_t qs = H * d, ks = G * d;
  int causal = n->mask == TFX_MASK_CAUSAL;
  const float *keys = k, *vals = v;
  int64_t n_keys = k_rows;
  if (causal) {
    memcpy(kc + pos * ks, k, (size_t)(q_rows * ks) * sizeof(float));
    memcpy(vc + pos * ks, v, (size_t)(q_rows * ks) * sizeof(float));
    if (km.data) { /* the key mask's values are kept after V, one per position (4 bytes: i32 or f32) */
      float *kept = vc + max_seq * ks;
      memcpy(kept + pos, km.data, (size_t)q_rows * sizeof(float));
      km.data = kept;
    }
    keys = kc;
    vals = vc;
    n_keys = pos + q_rows;
  }
  double scale = tfx_attn_scale(n);
  double *sc = malloc((size_t)(n_keys > 0 ? n_keys : 1) * sizeof *sc);
  char *ok = malloc((size_t)(n_keys > 0 ? n_keys : 1));
  if (!sc || !ok) {
    free(sc);
    free(ok);
    return tfx_errf(err, errlen, "%%%d (attention): out of memory", n->id);
  }
  for (int64_t t = 0; t < q_rows; t++) {
    int64_t i = causal ? pos + t : t;
    int64_t seg_lo = 0, seg_hi = n_keys; /* packed sequences: the query's segment */
    if (km.seg) tfx_segment_bounds(km.seg, n_keys, i, &seg_lo, &seg_hi);
    for (int64_t h = 0; h < H; h++) {
      int64_t kh = h / group;
      double slope = n->alibi ? tfx_alibi_slope((int)h, (int)H) : 0.0;
      const float *qr = q + t * qs + h * d;
      for (int64_t j = 0; j < n_keys; j++) {
        ok[j] = (char)((tfx_attn_allowed(n, i, j, max_seq) || (km.gmask && (km.gmask[i] || km.gmask[j]))) &&
                       j >= seg_lo && j < seg_hi);
        if (km.data && ok[j])
          ok[j] = km.is_i32 ? ((const int32_t *)km.data)[j] != 0 : ((const float *)km.data)[j] != 0.0f;
        if (!ok[j]) continue;
        const float *kr = keys + j * ks + kh * d;
        double s = 0.0;
        for (int64_t c = 0; c < d; c++) s += (double)qr[c] * kr[c];
        s *= scale;
        if (n->softcap > 0) s = n->softcap * tanh(s / n->softcap); /* Gemma 2's score soft-capping */
        sc[j] = s - slope * (double)(i > j ? i - j : j - i);
        if (relb)
          sc[j] +=
              relb[(int64_t)tfx_t5_bucket(j - i, n->rel_bidirectional, (int)n_buckets, n->rel_max_distance) * H + h];
      }
      softmax_rows(sc, ok, n_keys);
      for (int64_t c = 0; c < d; c++) {
        double acc = 0.0;
        for (int64_t j = 0; j < n_keys; j++) acc += sc[j] * vals[j * ks + kh * d + c];
        y[t * qs + h * d + c] = (float)acc;
      }
    }
  }
  free(sc);
  free(ok);
  return 0;
}

int tfx_interp_mla(const tfx_node *n, const float *q, const float *ckv, const float *wkv_b, const float *g,
                   float *cache, float *y, int64_t rows, int64_t pos, int64_t max_seq, char *err, size_t errlen) {
  int64_t H = n->heads, dn = n->head_dim, dr = n->rope_dim, dv = n->v_dim, r = n->rank;
  int64_t cs = r + dr, qs = H * (dn + dr), n_keys = pos + rows;
  double *tmp = malloc((size_t)(cs + 1) * sizeof *tmp);
  double *sc = malloc((size_t)n_keys * sizeof *sc);
  double *kn = malloc((size_t)(dn > dv ? dn : dv) * sizeof *kn);
  char *ok = malloc((size_t)n_keys);
  if (!tmp || !sc || !kn || !ok) {
    free(tmp);
    free(sc);
    free(kn);
    free(ok);
    return tfx_errf(err, errlen, "%%%d (mla_attention): out of memory", n->id);
  }
  /* the latent [c | kr] of the new rows into the cache */
  for (int64_t t = 0; t < rows; t++) {
    const float *src = ckv + t * cs;
    float *dst = cache + (pos + t) * cs;
    double ss = 0.0, inv = 1.0;
    if (g) {
      for (int64_t c = 0; c < r; c++) ss += (double)src[c] * src[c];
      inv = 1.0 / sqrt(ss / (double)r + n->eps);
    }
    for (int64_t c = 0; c < r; c++) dst[c] = (float)(g ? src[c] * inv * g[c] : src[c]);
    for (int64_t c = 0; c < dr; c++) tmp[c] = src[r + c];
    tfx_rope_rotate(tmp, dr, (double)(pos + t), n->theta, n->rope_style);
    for (int64_t c = 0; c < dr; c++) dst[r + c] = (float)tmp[c];
  }
  double scale = 1.0 / sqrt((double)(dn + dr));
  for (int64_t t = 0; t < rows; t++) {
    int64_t i = pos + t;
    for (int64_t h = 0; h < H; h++) {
      const float *qn = q + t * qs + h * (dn + dr);
      const float *wuk = wkv_b + h * (dn + dv) * r, *wuv = wuk + dn * r;
      double slope = n->alibi ? tfx_alibi_slope((int)h, (int)H) : 0.0;
      for (int64_t c = 0; c < dr; c++) tmp[c] = qn[dn + c];
      tfx_rope_rotate(tmp, dr, (double)i, n->theta, n->rope_style);
      for (int64_t j = 0; j < n_keys; j++) {
        ok[j] = (char)tfx_attn_allowed(n, i, j, max_seq);
        if (!ok[j]) continue;
        const float *cj = cache + j * cs;
        double s = 0.0;
        for (int64_t e = 0; e < dn; e++) { /* k_nope[e] = W_uk_h[e] . c_j */
          double kv = 0.0;
          for (int64_t c = 0; c < r; c++) kv += (double)wuk[e * r + c] * cj[c];
          s += (double)qn[e] * kv;
        }
        for (int64_t c = 0; c < dr; c++) s += tmp[c] * cj[r + c];
        sc[j] = s * scale - slope * (double)(i - j);
      }
      softmax_rows(sc, ok, n_keys);
      for (int64_t e = 0; e < dv; e++) kn[e] = 0.0;
      for (int64_t j = 0; j < n_keys; j++) {
        if (!ok[j] || sc[j] == 0.0) continue;
        const float *cj = cache + j * cs;
        for (int64_t e = 0; e < dv; e++) { /* v[e] = W_uv_h[e] . c_j */
          double vv = 0.0;
          for (int64_t c = 0; c < r; c++) vv += (double)wuv[e * r + c] * cj[c];
          kn[e] += sc[j] * vv;
        }
      }
      for (int64_t e = 0; e < dv; e++) y[t * H * dv + h * dv + e] = (float)kn[e];
    }
  }
  free(tmp);
  free(sc);
  free(kn);
  free(ok);
  return 0;
}
