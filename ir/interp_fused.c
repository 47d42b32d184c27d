/* ir/interp_fused.c — the reference interpreter's naive implementation of the
 * optimizer's ops: NORM_STATS (also of one segment of a planar value),
 * FUSED_LINEAR (prologue, packed or row-major weights, epilogue with the
 * residual's norm, planar output), SLICE (a copy of one planar segment),
 * CONCAT and PACK. Accumulates in double; the oracle of fused graphs. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fused.h"
#include "interp_ops.h"

double tfx_interp_act(int kind, double v) {
  switch (kind) {
  case TFX_ACT_SILU: return v / (1.0 + exp(-v));
  case TFX_ACT_GELU: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
  case TFX_ACT_GELU_TANH: return 0.5 * v * (1.0 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v)));
  case TFX_ACT_RELU: return v > 0 ? v : 0.0;
  case TFX_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
  default: return v;
  }
}

static void norm_stats(const tfx_node *nd, const float *x, float *y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double mean = 0.0, ss = 0.0;
    if (nd->fx.norm == TFX_NORM_LAYER) {
      for (int64_t i = 0; i < cols; i++) mean += xr[i];
      mean /= (double)cols;
    }
    for (int64_t i = 0; i < cols; i++) ss += (xr[i] - mean) * (xr[i] - mean);
    y[2 * r] = (float)mean;
    y[2 * r + 1] = (float)(1.0 / sqrt(ss / (double)cols + nd->eps));
  }
}

/* Rotates the pairs of one row segment z[0..cols) (whole heads) at position p. */
static void rope_row(const tfx_node *nd, double *z, int64_t cols, double p) {
  for (int64_t h = 0; h < cols / nd->head_dim; h++)
    tfx_rope_rotate(z + h * nd->head_dim, nd->rotary_dim, p, nd->theta, nd->rope_style);
}

static int fused_linear(const tfx_graph *g, const tfx_node *nd, void *const *val, float *y, int64_t n, int64_t pos,
                        char *err, size_t errlen) {
  const tfx_fused *fx = &nd->fx;
  const tfx_node *xn = &g->nodes[nd->inputs[0]], *wn = &g->nodes[nd->inputs[1]];
  const float *x = val[xn->id], *w = val[wn->id];
  int i;
  const float *bias = (i = tfx_fl_operand(nd, TFX_FL_BIAS)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *stats = (i = tfx_fl_operand(nd, TFX_FL_STATS)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *gain = (i = tfx_fl_operand(nd, TFX_FL_GAIN)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *nbias = (i = tfx_fl_operand(nd, TFX_FL_NBIAS)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *res = (i = tfx_fl_operand(nd, TFX_FL_RESIDUAL)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *rstats = (i = tfx_fl_operand(nd, TFX_FL_RSTATS)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *rgain = (i = tfx_fl_operand(nd, TFX_FL_RGAIN)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *rnbias = (i = tfx_fl_operand(nd, TFX_FL_RNBIAS)) >= 0 ? val[nd->inputs[i]] : NULL;
  int64_t M = tfx_node_rows(xn, n), K = tfx_node_cols(xn), R = wn->type.dims[0], N = tfx_node_cols(nd);
  const tfx_fused *layout = (wn->op == TFX_OP_PARAM && wn->fx.panel > 0) || wn->op == TFX_OP_PACK ? &wn->fx : NULL;
  double *xr = malloc((size_t)K * sizeof *xr), *z = malloc((size_t)R * sizeof *z);
  if (!xr || !z) {
    free(xr);
    free(z);
    return tfx_errf(err, errlen, "%%%d (fused_linear): out of memory", nd->id);
  }
  int planar = tfx_fl_planar(nd);
  /* int8 linears (tfx_node_act_quant): the prologue in f32 as the kernel
   * computes it (RMS: x * gain, its 1/rms applied to the finished dot
   * product), then the activation quantization */
  int aq = tfx_node_act_quant(g, nd);
  float *xf = aq ? malloc((size_t)K * sizeof *xf) : NULL;
  if (aq && !xf) {
    free(xr);
    free(z);
    return tfx_errf(err, errlen, "%%%d (fused_linear): out of memory", nd->id);
  }
  for (int64_t m = 0; m < M; m++) {
    double post = 1.0;
    for (int64_t k = 0; k < K && !aq; k++) {
      double v = x[m * K + k];
      if (fx->norm == TFX_NORM_RMS) v = v * stats[2 * m + 1] * gain[k];
      if (fx->norm == TFX_NORM_LAYER) v = (v - stats[2 * m]) * stats[2 * m + 1] * gain[k] + nbias[k];
      xr[k] = v;
    }
    if (aq) {
      for (int64_t k = 0; k < K; k++) {
        float v = x[m * K + k];
        if (fx->norm == TFX_NORM_RMS) v = v * gain[k];
        if (fx->norm == TFX_NORM_LAYER) v = fmaf((v - stats[2 * m]) * stats[2 * m + 1], gain[k], nbias[k]);
        xf[k] = v;
      }
      tfx_interp_act_quant_row(xf, K, aq == 2);
      for (int64_t k = 0; k < K; k++) xr[k] = xf[k];
      if (fx->norm == TFX_NORM_RMS) post = stats[2 * m + 1];
    }
    for (int64_t r = 0; r < R; r++) {
      double s = 0.0;
      for (int64_t k = 0; k < K; k++) s += xr[k] * w[layout ? tfx_packed_index(layout, R, K, r, k) : r * K + k];
      s *= post;
      z[r] = bias ? s + bias[r] : s;
    }
    int64_t base = 0;
    for (int s = 0; s < fx->n_segs; s++) {
      if (fx->rope >> s & 1u) rope_row(nd, z + base, fx->segs[s], (double)(pos + m));
      base += fx->segs[s];
    }
    if (planar) {
      base = 0;
      for (int s = 0; s < fx->n_segs; s++) {
        float *seg = y + M * base + m * fx->segs[s];
        for (int64_t c = 0; c < fx->segs[s]; c++) seg[c] = (float)tfx_interp_act(fx->act, z[base + c]);
        base += fx->segs[s];
      }
      continue;
    }
    for (int64_t c = 0; c < N; c++) {
      double v = tfx_interp_act(fx->act, z[c]);
      if (fx->glu) v *= z[N + c];
      if (res) {
        double r = res[m * N + c];
        if (fx->rnorm == TFX_NORM_RMS) r = r * rstats[2 * m + 1] * rgain[c];
        if (fx->rnorm == TFX_NORM_LAYER) r = (r - rstats[2 * m]) * rstats[2 * m + 1] * rgain[c] + rnbias[c];
        v += r;
      }
      y[m * N + c] = (float)v;
    }
  }
  free(xr);
  free(z);
  free(xf);
  return 0;
}

/* ---- the interpreter entries of ir/ops.h ---- */

int tfx_interp_op_norm_stats(const tfx_interp_call *c) {
  /* from a planar producer's epilogue: the statistics of segment stats_seg */
  const tfx_node *in0 = &c->g->nodes[c->nd->inputs[0]];
  const float *a = c->val[c->nd->inputs[0]];
  int64_t M = tfx_node_rows(in0, c->n), before = 0;
  if (tfx_fl_planar(in0))
    for (int s = 0; s < in0->fx.stats_seg; s++) before += in0->fx.segs[s];
  norm_stats(c->nd, a + M * before, c->y, M, tfx_stats_cols(in0));
  return 0;
}

int tfx_interp_op_fused_linear(const tfx_interp_call *c) {
  return fused_linear(c->g, c->nd, c->val, c->y, c->n, c->pos, c->err, c->errlen);
}

int tfx_interp_op_slice(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd, *in0 = &c->g->nodes[nd->inputs[0]];
  const float *a = c->val[nd->inputs[0]];
  int64_t M = tfx_node_rows(nd, c->n), before = 0;
  for (int s = 0; s < nd->fx.index; s++) before += in0->fx.segs[s];
  memcpy(c->y, a + M * before, (size_t)tfx_type_bytes(&nd->type, c->n));
  return 0;
}

int tfx_interp_op_concat(const tfx_interp_call *c) {
  float *dst = c->y;
  for (int i = 0; i < c->nd->n_inputs; i++) {
    const tfx_node *src = &c->g->nodes[c->nd->inputs[i]];
    size_t bytes = (size_t)tfx_type_bytes(&src->type, c->n);
    memcpy(dst, c->val[src->id], bytes);
    dst += bytes / sizeof(float);
  }
  return 0;
}

int tfx_interp_op_pack(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd;
  const float *a = c->val[nd->inputs[0]];
  int64_t R = nd->type.dims[0], K = nd->type.dims[1];
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = 0; k < K; k++) c->y[tfx_packed_index(&nd->fx, R, K, r, k)] = a[r * K + k];
  return 0;
}
