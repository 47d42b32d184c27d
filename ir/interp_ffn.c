/* ir/interp_ffn.c — the reference interpreter's FFN-variant, position and
 * mixture-of-experts ops: SIGMOID, AFFINE, SOFTCAP, POSITIONS (learned absolute positions),
 * SINUSOIDAL (the fixed sin/cos table), MOE_ROUTE (top-k routing with the
 * softmax gates and the optional capacity limit), MOE_UP and MOE_DOWN (the
 * experts' projections by slot), COL_SLICE and CONCAT_COLS (column ranges of a
 * value's rows, and rows side by side). Naive C with double accumulators: the test
 * oracle of the backend's kernels (backend/k_elementwise.c,
 * backend/k_positions.c, backend/k_moe.c). */
#include "interp_ops.h"

#include "fused.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The expert index of a route entry, -1 when the slot is empty (or the value
 * is not an index in [0, E)). */
static int64_t slot_expert(float v, int64_t E) {
  if (!(v >= 0.0f && v < (float)E)) return -1;
  return (int64_t)v;
}

static int op_route(const tfx_node *nd, const float *logits, float *y, int64_t rows, int64_t E, char *err,
                    size_t errlen) {
  int64_t k = nd->top_k;
  char *chosen = malloc((size_t)E);
  int64_t *count = calloc((size_t)E, sizeof *count), *idx = malloc((size_t)k * sizeof *idx);
  if (!chosen || !count || !idx) {
    free(chosen);
    free(count);
    free(idx);
    return tfx_errf(err, errlen, "%%%d (moe_route): out of memory", nd->id);
  }
  int64_t cap = -1;
  if (nd->capacity > 0) cap = (int64_t)ceil(nd->capacity * (double)rows * (double)k / (double)E);
  for (int64_t t = 0; t < rows; t++) {
    const float *l = logits + t * E;
    float *r = y + t * 2 * k;
    memset(chosen, 0, (size_t)E);
    /* top-k: the largest remaining logit, the lowest index on ties */
    for (int64_t s = 0; s < k; s++) {
      int64_t best = -1;
      for (int64_t e = 0; e < E; e++)
        if (!chosen[e] && (best < 0 || l[e] > l[best])) best = e;
      chosen[best] = 1;
      idx[s] = best;
    }
    double m = -INFINITY, z = 0.0;
    if (nd->moe_gate == TFX_MOE_GATE_SOFTMAX) {
      for (int64_t e = 0; e < E; e++) m = l[e] > m ? l[e] : m;
      for (int64_t e = 0; e < E; e++) z += exp((double)l[e] - m);
    } else {
      for (int64_t s = 0; s < k; s++) m = l[idx[s]] > m ? l[idx[s]] : m;
      for (int64_t s = 0; s < k; s++) z += exp((double)l[idx[s]] - m);
    }
    for (int64_t s = 0; s < k; s++) {
      double w = exp((double)l[idx[s]] - m) / z;
      if (cap >= 0 && count[idx[s]] >= cap) {
        r[s] = -1.0f;
        r[k + s] = 0.0f;
        continue;
      }
      count[idx[s]]++;
      r[s] = (float)idx[s];
      r[k + s] = (float)w;
    }
  }
  free(chosen);
  free(count);
  free(idx);
  return 0;
}

/* The row x (K floats) normalized by a prologue (stats row st, gain g,
 * norm bias b) into xr, in double. */
static void prologue_row(int norm, const float *x, const float *st, const float *g, const float *b, double *xr,
                         int64_t K) {
  for (int64_t i = 0; i < K; i++) {
    double v = x[i];
    if (norm == TFX_NORM_RMS) v = v * st[1] * g[i];
    if (norm == TFX_NORM_LAYER) v = (v - st[0]) * st[1] * g[i] + b[i];
    xr[i] = v;
  }
}

/* The operands of a norm prologue of a MOE op (NULL when it has none). */
static void moe_norm_operands(const tfx_node *nd, void *const *val, const float **st, const float **g,
                              const float **b) {
  int i;
  *st = (i = tfx_moe_operand(nd, TFX_MOE_STATS)) >= 0 ? val[nd->inputs[i]] : NULL;
  *g = (i = tfx_moe_operand(nd, TFX_MOE_GAIN)) >= 0 ? val[nd->inputs[i]] : NULL;
  *b = (i = tfx_moe_operand(nd, TFX_MOE_NBIAS)) >= 0 ? val[nd->inputs[i]] : NULL;
}

/* MOE_ROUTE with the router: logits[t, e] = prologue(x[t]) . router[e]. */
static int route_logits(const tfx_node *nd, void *const *val, float *logits, int64_t rows, int64_t E, int64_t D,
                        char *err, size_t errlen) {
  const float *x = val[nd->inputs[0]], *w = val[nd->inputs[1]], *st, *g, *b;
  moe_norm_operands(nd, val, &st, &g, &b);
  double *xr = malloc((size_t)D * sizeof *xr);
  if (!xr) return tfx_errf(err, errlen, "%%%d (moe_route): out of memory", nd->id);
  for (int64_t t = 0; t < rows; t++) {
    prologue_row(nd->fx.norm, x + t * D, st ? st + 2 * t : NULL, g, b, xr, D);
    for (int64_t e = 0; e < E; e++) {
      double acc = 0.0;
      for (int64_t i = 0; i < D; i++) acc += xr[i] * w[e * D + i];
      logits[t * E + e] = (float)acc;
    }
  }
  free(xr);
  return 0;
}

/* MOE_UP: y[t, s*N + j] = x[t] . w[e_s, j] (zeros for an empty slot); with
 * the optimizer's attributes x normalized by the prologue and
 * act(x . w[e_s, j]) [* (x . w3[e_s, j])] (act(0) [* 0] for an empty slot,
 * what the unfused activation and product give). */
static int op_moe_up(const tfx_interp_call *c, float *y, int64_t rows, int64_t k, int64_t E, int64_t N, int64_t K,
                     char *err, size_t errlen) {
  const tfx_node *nd = c->nd;
  void *const *val = c->val;
  const float *x = val[nd->inputs[0]], *route = val[nd->inputs[1]], *w = val[nd->inputs[2]], *st, *g, *b;
  int i3 = tfx_moe_operand(nd, TFX_MOE_W3);
  const float *w3 = i3 >= 0 ? val[nd->inputs[i3]] : NULL;
  moe_norm_operands(nd, val, &st, &g, &b);
  int aq = tfx_node_act_quant(c->g, nd);
  double *xr = malloc((size_t)K * sizeof *xr);
  float *xf = malloc((size_t)K * sizeof *xf);
  if (!xr || !xf) {
    free(xr);
    free(xf);
    return tfx_errf(err, errlen, "%%%d (moe_up): out of memory", nd->id);
  }
  for (int64_t t = 0; t < rows; t++) {
    double post = 1.0;
    if (aq) { /* int8 experts: the prologue in f32 as the kernel computes it (RMS: its 1/rms applied to the
               * finished dot products), then the activation quantization (tfx_act_quant_block) */
      int norm = nd->fx.norm;
      for (int64_t i = 0; i < K; i++) {
        float v = x[t * K + i];
        if (norm == TFX_NORM_RMS) v = v * g[i];
        if (norm == TFX_NORM_LAYER) v = fmaf((v - st[2 * t]) * st[2 * t + 1], g[i], b[i]);
        xf[i] = v;
      }
      tfx_interp_act_quant_row(xf, K, 0);
      for (int64_t i = 0; i < K; i++) xr[i] = xf[i];
      if (norm == TFX_NORM_RMS) post = st[2 * t + 1];
    } else {
      prologue_row(nd->fx.norm, x + t * K, st ? st + 2 * t : NULL, g, b, xr, K);
    }
    for (int64_t s = 0; s < k; s++) {
      int64_t e = slot_expert(route[t * 2 * k + s], E);
      float *yr = y + t * k * N + s * N;
      for (int64_t j = 0; j < N; j++) {
        double acc = 0.0, up = 0.0;
        if (e >= 0) {
          const float *wr = w + (e * N + j) * K;
          for (int64_t i = 0; i < K; i++) acc += xr[i] * wr[i];
          if (w3)
            for (int64_t i = 0; i < K; i++) up += xr[i] * w3[(e * N + j) * K + i];
          acc *= post;
          up *= post;
        }
        /* the unfused graph rounds the projections to f32 before the act */
        double v = nd->fx.act ? tfx_interp_act(nd->fx.act, (float)acc) : acc;
        yr[j] = (float)(w3 ? (float)v * (double)(float)up : v);
      }
    }
  }
  free(xr);
  free(xf);
  return 0;
}

/* MOE_DOWN: y[t, j] = sum over non-empty slots of weight_s * (h[t, s] . w[e_s, j]) (+ residual[t, j]);
 * with int8 experts (aq) each h[t, s] quantized first (tfx_act_quant_block). */
static void op_moe_down(const float *h, const float *route, const float *w, const float *res, float *y, int64_t rows,
                        int64_t k, int64_t E, int64_t N, int64_t K, float *hq) {
  if (hq) {
    memcpy(hq, h, (size_t)(rows * k * K) * sizeof *hq);
    for (int64_t r = 0; r < rows * k; r++) tfx_interp_act_quant_row(hq + r * K, K, 0);
    h = hq;
  }
  for (int64_t t = 0; t < rows; t++)
    for (int64_t j = 0; j < N; j++) {
      double acc = res ? res[t * N + j] : 0.0;
      for (int64_t s = 0; s < k; s++) {
        int64_t e = slot_expert(route[t * 2 * k + s], E);
        if (e < 0) continue;
        const float *hr = h + t * k * K + s * K, *wr = w + (e * N + j) * K;
        double dot = 0.0;
        for (int64_t i = 0; i < K; i++) dot += (double)hr[i] * wr[i];
        acc += (double)route[t * 2 * k + k + s] * dot;
      }
      y[t * N + j] = (float)acc;
    }
}

/* ---- the interpreter entries of ir/ops.h ---- */

#define OPERAND(c, i) ((c)->nd->n_inputs > (i) ? (const float *)(c)->val[(c)->nd->inputs[i]] : NULL)
#define IN_NODE(c, i) (&(c)->g->nodes[(c)->nd->inputs[i]])

int tfx_interp_op_sigmoid(const tfx_interp_call *c) {
  const float *a = OPERAND(c, 0);
  int64_t numel = tfx_type_numel(&c->nd->type, c->n);
  for (int64_t i = 0; i < numel; i++) c->y[i] = (float)(1.0 / (1.0 + exp(-(double)a[i])));
  return 0;
}

/* AFFINE: x * scale + shift */
int tfx_interp_op_affine(const tfx_interp_call *c) {
  const float *a = OPERAND(c, 0);
  int64_t numel = tfx_type_numel(&c->nd->type, c->n);
  for (int64_t i = 0; i < numel; i++) c->y[i] = (float)((double)a[i] * c->nd->scale + c->nd->shift);
  return 0;
}

/* SOFTCAP: c * tanh(x / c) */
int tfx_interp_op_softcap(const tfx_interp_call *c) {
  const float *a = OPERAND(c, 0);
  int64_t numel = tfx_type_numel(&c->nd->type, c->n);
  double cap = c->nd->softcap;
  for (int64_t i = 0; i < numel; i++) c->y[i] = (float)(cap * tanh((double)a[i] / cap));
  return 0;
}

/* COL_SLICE: y[r, j] = x[r, lo + j] */
int tfx_interp_op_col_slice(const tfx_interp_call *c) {
  const float *x = OPERAND(c, 0);
  int64_t rows = tfx_node_rows(c->nd, c->n), w = tfx_node_cols(c->nd), N = tfx_node_cols(IN_NODE(c, 0));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < w; j++) c->y[r * w + j] = x[r * N + c->nd->col_lo + j];
  return 0;
}

/* CONCAT_COLS: row r of y is row r of each operand in turn */
int tfx_interp_op_concat_cols(const tfx_interp_call *c) {
  int64_t rows = tfx_node_rows(c->nd, c->n), W = tfx_node_cols(c->nd), at = 0;
  for (int i = 0; i < c->nd->n_inputs; i++) {
    const float *x = OPERAND(c, i);
    int64_t w = tfx_node_cols(IN_NODE(c, i));
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < w; j++) c->y[r * W + at + j] = x[r * w + j];
    at += w;
  }
  return 0;
}

int tfx_interp_op_positions(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd;
  int64_t rows = tfx_node_rows(nd, c->n), cols = tfx_node_cols(nd), pos = c->pos + nd->pos_offset;
  int64_t max_pos = IN_NODE(c, 0)->type.dims[0];
  if (nd->n_inputs == 3) { /* packed sequences: row t's position counts from its segment's first row */
    const int32_t *seg = (const int32_t *)c->val[nd->inputs[2]];
    for (int64_t t = 0; t < rows; t++) {
      int64_t lo, hi, p;
      tfx_segment_bounds(seg, rows, t, &lo, &hi);
      p = t - lo + nd->pos_offset;
      if (p >= max_pos) p = max_pos - 1; /* as the backend (impossible: max_pos >= max_seq + offset) */
      memcpy(c->y + t * cols, OPERAND(c, 0) + p * cols, (size_t)cols * sizeof(float));
    }
    return 0;
  }
  if (nd->pad_skip) { /* transformers' RoBERTa position ids: pad tokens are not counted, they read row offset - 1 */
    const int32_t *ids = (const int32_t *)c->val[nd->inputs[1]];
    int64_t counted = 0;
    for (int64_t t = 0; t < rows; t++) {
      int64_t p = ids[t] == nd->pad_id ? nd->pos_offset - 1 : pos + counted++;
      if (p >= max_pos)
        return tfx_errf(c->err, c->errlen, "%%%d (positions): position %lld is outside the table of %lld rows", nd->id,
                        (long long)p, (long long)max_pos);
      memcpy(c->y + t * cols, OPERAND(c, 0) + p * cols, (size_t)cols * sizeof(float));
    }
    return 0;
  }
  if (pos < 0 || pos + rows > max_pos)
    return tfx_errf(c->err, c->errlen, "%%%d (positions): positions %lld..%lld are outside the table of %lld rows",
                    nd->id, (long long)pos, (long long)(pos + rows - 1), (long long)max_pos);
  memcpy(c->y, OPERAND(c, 0) + pos * cols, (size_t)(rows * cols) * sizeof(float));
  return 0;
}

int tfx_interp_op_sinusoidal(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd;
  int64_t rows = tfx_node_rows(nd, c->n), cols = tfx_node_cols(nd);
  for (int64_t t = 0; t < rows; t++) {
    double p = (double)(c->pos + t);
    for (int64_t j = 0; j < cols; j++) {
      double angle = p / pow(nd->theta, (double)(2 * (j / 2)) / (double)cols);
      c->y[t * cols + j] = (float)(j % 2 ? cos(angle) : sin(angle));
    }
  }
  return 0;
}

int tfx_interp_op_moe_route(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd;
  int64_t rows = tfx_node_rows(nd, c->n);
  const tfx_node *in0 = IN_NODE(c, 0);
  if (!nd->fx.router) return op_route(nd, OPERAND(c, 0), c->y, rows, tfx_node_cols(in0), c->err, c->errlen);
  int64_t E = IN_NODE(c, 1)->type.dims[0];
  float *logits = malloc((size_t)(rows * E > 0 ? rows * E : 1) * sizeof *logits);
  if (!logits) return tfx_errf(c->err, c->errlen, "%%%d (moe_route): out of memory", nd->id);
  int rc = route_logits(nd, c->val, logits, rows, E, tfx_node_cols(in0), c->err, c->errlen);
  if (!rc) rc = op_route(nd, logits, c->y, rows, E, c->err, c->errlen);
  free(logits);
  return rc;
}

int tfx_interp_op_moe_up(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd, *in2 = IN_NODE(c, 2);
  return op_moe_up(c, c->y, tfx_node_rows(nd, c->n), tfx_node_cols(IN_NODE(c, 1)) / 2, in2->type.dims[0],
                   in2->type.dims[1], in2->type.dims[2], c->err, c->errlen);
}

int tfx_interp_op_moe_down(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd, *in2 = IN_NODE(c, 2);
  int64_t rows = tfx_node_rows(nd, c->n), k = tfx_node_cols(IN_NODE(c, 1)) / 2, K = in2->type.dims[2];
  float *hq = NULL;
  if (tfx_node_act_quant(c->g, nd) && !(hq = malloc((size_t)(rows * k * K > 0 ? rows * k * K : 1) * sizeof *hq)))
    return tfx_errf(c->err, c->errlen, "%%%d (moe_down): out of memory", nd->id);
  op_moe_down(OPERAND(c, 0), OPERAND(c, 1), OPERAND(c, 2), nd->fx.residual ? c->val[nd->inputs[3]] : NULL, c->y, rows,
              k, in2->type.dims[0], in2->type.dims[1], K, hq);
  free(hq);
  return 0;
}
