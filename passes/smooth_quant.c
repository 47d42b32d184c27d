/* passes/smooth_quant.c — SmoothQuant for w8a8(smooth = alpha) (issue #13):
 * per input channel j of the linears that read a norm's output, the scale
 *   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
 * (max|X_j| from the calibration data, g->calib, the largest over those
 * linears; max|W_j| the largest |w| of column j over all their rows) is
 * folded into the norm and the weights: the norm's gain (and a layernorm's
 * bias) divided by s_j, every row of the weights multiplied by it, so the
 * function is unchanged in exact arithmetic while the activations' outlier
 * channels shrink and the weights take part of their range. A norm is
 * smoothed when its gain (and bias) are f32 params read by it alone and
 * every reader of its output is a linear whose weight is an f32 param read by
 * that linear alone, named in the calibration data with the right channel
 * count; other norms are left as they are (stories260K: the attention and
 * FFN norms of each layer; not the final norm, whose classifier is the tied
 * embedding). A channel whose ranges are zero or give a non-finite scale keeps
 * s_j = 1. Runs first (before quantize_weights, which then quantizes the
 * smoothed weights) when the schedule asks for smooth; without calibration
 * data that is an error. The graph's nodes do not change, only the weights:
 * --print-after=smooth_quant shows the pass ran. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

/* 1 when node p is an f32 PARAM bound in the blob, read by node `by` alone
 * (once), with no other PARAM node sharing its slot. */
static int own_param(const tfx_graph *g, int p, int by, size_t blob) {
  const tfx_node *n = &g->nodes[p];
  return n->op == TFX_OP_PARAM && n->type.dtype == TFX_DT_F32 && tfx_rw_sole_param(g, p, by, blob);
}

#define MAXR 16

int tfx_pass_smooth_quant(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_quant_choice q = g->schedule.quantize;
  if (q.smooth_set != 1) return 0; /* not asked, or already folded (2) */
  if (!g->calib)
    return tfx_errf(c->err, c->errlen,
                    "smooth_quant: w8a8(smooth = %g) needs calibration data: --calibration FILE (written by tfxc "
                    "calibrate)",
                    (double)q.smooth);
  if (!c->weights || !*c->weights) return 0; /* types only: nothing to fold */
  uint8_t *blob = *c->weights;
  size_t size = *c->weights_size;
  double alpha = q.smooth;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *nn = &g->nodes[i];
    if (nn->op != TFX_OP_RMSNORM && nn->op != TFX_OP_LAYERNORM) continue;
    if (g->output == i || !own_param(g, nn->inputs[1], i, size)) continue;
    if (nn->op == TFX_OP_LAYERNORM && !own_param(g, nn->inputs[2], i, size)) continue;
    int64_t D = tfx_node_cols(nn);
    int rd[MAXR], nr = tfx_rw_readers(g, i, rd, MAXR), ok = nr > 0 && nr <= MAXR;
    const tfx_calib_entry *ce[MAXR];
    for (int k = 0; k < nr && ok; k++) {
      const tfx_node *l = &g->nodes[rd[k]];
      ok = l->op == TFX_OP_LINEAR && l->inputs[0] == i && l->inputs[1] != i && own_param(g, l->inputs[1], rd[k], size);
      if (!ok) break;
      const tfx_node *w = &g->nodes[l->inputs[1]];
      ce[k] = tfx_calib_find(g->calib, w->name);
      ok = w->type.rank == 2 && tfx_node_cols(w) == D && ce[k] && ce[k]->K == D;
    }
    if (!ok) continue;
    float *gain = (float *)(blob + g->nodes[nn->inputs[1]].weight_offset);
    float *nbias = nn->op == TFX_OP_LAYERNORM ? (float *)(blob + g->nodes[nn->inputs[2]].weight_offset) : NULL;
    for (int64_t j = 0; j < D; j++) {
      double xm = 0, wm = 0;
      for (int k = 0; k < nr; k++) {
        const tfx_node *w = &g->nodes[g->nodes[rd[k]].inputs[1]];
        const float *wd = (const float *)(blob + w->weight_offset);
        int64_t R = w->type.dims[0];
        if (ce[k]->absmax[j] > xm) xm = ce[k]->absmax[j];
        for (int64_t r = 0; r < R; r++) wm = fmax(wm, fabs(wd[r * D + j]));
      }
      double s = xm > 0 && wm > 0 ? pow(xm, alpha) / pow(wm, 1.0 - alpha) : 1.0;
      if (!isfinite(s) || s <= 0) s = 1.0;
      gain[j] = (float)(gain[j] / s);
      if (nbias) nbias[j] = (float)(nbias[j] / s);
      for (int k = 0; k < nr; k++) {
        const tfx_node *w = &g->nodes[g->nodes[rd[k]].inputs[1]];
        float *wd = (float *)(blob + w->weight_offset);
        for (int64_t r = 0; r < w->type.dims[0]; r++) wd[r * D + j] = (float)(wd[r * D + j] * s);
      }
    }
  }
  g->schedule.quantize.smooth_set = 2; /* folded: a second run (--emit-gguf runs it early) changes nothing */
  return 0;
}
