/* passes/llm_int8.c — LLM.int8() for quantize = llm_int8(threshold = t)
 * (issue #13; Dettmers et al. 2022): a linear's input channels whose
 * calibrated max|x| (g->calib, `tfxc calibrate`) exceeds the threshold are
 * outliers and stay f32, the rest run as W8A8 (int8 weights per output row,
 * int8 activations per token). Each such linear y = x W^T (+ b) becomes
 *   y = linear(x * mask, W_reg) (+ b) + linear(x P, W_out)
 * where mask[K] is 1 on the regular channels and 0 on the outliers (so the
 * per-token absmax of the int8 part sees only regular channels), W_reg is W
 * with the outlier columns zeroed (in place; quantize_weights then makes it
 * i8 per row), P[K, n] the 0/1 matrix that gathers the n outlier columns of
 * x (a MATMUL: exact, x_j * 1 plus zeros) and W_out[N, n] the outlier
 * columns of W, kept f32 (a `none` rule the pass adds for it and P). The
 * linears that read one value with the same outlier set (Q, K and V of a
 * layer) share the mask and the gather, so fuse_qkv can still join them.
 *
 * A linear is split when its weight is an f32 param bound in the blob and
 * read by it alone, its K is a multiple of TFX_ACT_QBLOCK (other linears
 * never quantize their activations: w8a8 streams their i8 weights with f32
 * activations), its weight's name is in the calibration data with K
 * channels, and it has at least one outlier; when every channel is an
 * outlier its weight just stays f32. Without calibration data it is an
 * error (the paper finds outliers in the activations; the weights alone do
 * not show them). Runs first (before quantize_weights) when the schedule
 * asks for llm_int8; without a weights blob (types only) nothing changes.
 * --print-after=llm_int8 shows the split graph. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

#define BLOB_ALIGN 64

/* 1 when node id is read by `by` alone, once. */
static int read_once_by(const tfx_graph *g, int id, int by) {
  int uses = 0;
  for (int i = id + 1; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++)
      if (g->nodes[i].inputs[j] == id) {
        if (i != by) return 0;
        uses++;
      }
  return uses == 1;
}

/* 1 when node p is an f32 PARAM bound in the blob, read by node `by` alone
 * (once), with no other PARAM node sharing its slot. */
static int own_param(const tfx_graph *g, int p, int by, size_t blob) {
  const tfx_node *n = &g->nodes[p];
  if (n->op != TFX_OP_PARAM || n->type.dtype != TFX_DT_F32 || n->fx.panel || n->weight_offset < 0 || !n->name ||
      (size_t)(n->weight_offset + tfx_type_bytes(&n->type, 1)) > blob || g->output == p || n->type.rank != 2)
    return 0;
  if (!read_once_by(g, p, by)) return 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (i != p && g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].weight_offset == n->weight_offset) return 0;
  return 1;
}

typedef struct split {
  int lin, x, w, group; /* group: index of the split that owns the mask and gather (itself or an earlier one) */
  int64_t K, N, n_out;
  int *idx;               /* the outlier channels, ascending */
  size_t off_mask, off_p; /* the group's params (owner only) */
  size_t off_wout;
} split;

static size_t align_up(size_t v) { return (v + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN; }

static int add_param(tfx_rw *rw, const char *name, int64_t d0, int64_t d1, size_t off, double key, char *err,
                     size_t errlen) {
  tfx_node p = tfx_node_proto(TFX_OP_PARAM, 0, NULL);
  p.type.dtype = TFX_DT_F32;
  p.type.rank = d1 ? 2 : 1;
  p.type.dims[0] = d0;
  p.type.dims[1] = d1;
  p.name = (char *)name;
  p.weight_offset = (int64_t)off;
  return tfx_rw_add(rw, &p, key, err, errlen);
}

static int keep_rule(tfx_graph *g, const char *name) {
  tfx_quant_choice keep = {
      .mode = TFX_QUANT_KEEP, .dtype = TFX_DT_F32, .smooth_set = 0, .smooth = 0.0f, .llm_int8 = 0, .threshold = 0.0f};
  return tfx_graph_add_quant_rule(g, name, keep, 0, 0);
}

int tfx_pass_llm_int8(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  tfx_quant_choice q = g->schedule.quantize;
  if (q.llm_int8 != 1) return 0; /* not asked, or already split (2) */
  if (!g->calib)
    return tfx_errf(c->err, c->errlen,
                    "llm_int8(threshold = %g) needs calibration data: --calibration FILE (written by tfxc "
                    "calibrate)",
                    (double)q.threshold);
  if (!c->weights || !*c->weights) return 0; /* types only: nothing to split */
  size_t size = *c->weights_size;
  int n0 = g->n_nodes, ns = 0, rc = 0;
  split *sp = calloc((size_t)n0 + 1, sizeof *sp);
  if (!sp) return tfx_errf(c->err, c->errlen, "llm_int8: out of memory");
  size_t extra = 0;
  for (int i = 0; i < n0 && rc == 0; i++) {
    const tfx_node *l = &g->nodes[i];
    if (l->op != TFX_OP_LINEAR || l->n_inputs < 2 || g->output == l->inputs[1]) continue;
    int w = l->inputs[1];
    if (!own_param(g, w, i, size)) continue;
    const tfx_node *wn = &g->nodes[w];
    int64_t K = wn->type.dims[1], N = wn->type.dims[0];
    if (K % TFX_ACT_QBLOCK || tfx_node_cols(&g->nodes[l->inputs[0]]) != K) continue;
    const tfx_calib_entry *ce = tfx_calib_find(g->calib, wn->name);
    if (!ce || ce->K != K) continue;
    int64_t n_out = 0;
    for (int64_t j = 0; j < K; j++) n_out += ce->absmax[j] > q.threshold;
    if (n_out == 0) continue;
    if (n_out == K) { /* every channel an outlier: the whole weight stays f32 */
      if (keep_rule(g, wn->name)) rc = tfx_errf(c->err, c->errlen, "llm_int8: out of memory");
      continue;
    }
    split *s = &sp[ns];
    *s = (split){i, l->inputs[0], w, ns, K, N, n_out, NULL, 0, 0, 0};
    s->idx = malloc((size_t)n_out * sizeof *s->idx);
    if (!s->idx) {
      rc = tfx_errf(c->err, c->errlen, "llm_int8: out of memory");
      break;
    }
    for (int64_t j = 0, k = 0; j < K; j++)
      if (ce->absmax[j] > q.threshold) s->idx[k++] = (int)j;
    for (int o = 0; o < ns; o++) /* a linear of the same input and outliers shares the mask and gather */
      if (sp[o].group == o && sp[o].x == s->x && sp[o].n_out == n_out &&
          !memcmp(sp[o].idx, s->idx, (size_t)n_out * sizeof *s->idx)) {
        s->group = o;
        break;
      }
    if (s->group == ns) extra += align_up((size_t)K * 4) + align_up((size_t)(K * n_out) * 4);
    extra += align_up((size_t)(N * n_out) * 4);
    ns++;
  }
  if (rc || ns == 0) goto done;

  /* the new params at the end of one grown blob */
  size_t off = align_up(size), total = off + extra;
  uint8_t *blob = aligned_alloc(BLOB_ALIGN, align_up(total));
  if (!blob) {
    rc = tfx_errf(c->err, c->errlen, "llm_int8: cannot allocate %zu bytes for the weights", align_up(total));
    goto done;
  }
  memset(blob, 0, align_up(total));
  memcpy(blob, *c->weights, size);
  free(*c->weights);
  *c->weights = blob;
  *c->weights_size = total;
  g->weights_bytes = (int64_t)total;
  for (int k = 0; k < ns; k++) {
    split *s = &sp[k];
    if (s->group == k) {
      s->off_mask = off;
      off += align_up((size_t)s->K * 4);
      s->off_p = off;
      off += align_up((size_t)(s->K * s->n_out) * 4);
      float *mask = (float *)(blob + s->off_mask), *p = (float *)(blob + s->off_p);
      for (int64_t j = 0; j < s->K; j++) mask[j] = 1.0f;
      for (int64_t o = 0; o < s->n_out; o++) {
        mask[s->idx[o]] = 0.0f;
        p[s->idx[o] * s->n_out + o] = 1.0f;
      }
    }
    s->off_wout = off;
    off += align_up((size_t)(s->N * s->n_out) * 4);
    float *wd = (float *)(blob + g->nodes[s->w].weight_offset), *wo = (float *)(blob + s->off_wout);
    for (int64_t r = 0; r < s->N; r++)
      for (int64_t o = 0; o < s->n_out; o++) {
        wo[r * s->n_out + o] = wd[r * s->K + s->idx[o]];
        wd[r * s->K + s->idx[o]] = 0.0f; /* W_reg: the outlier columns are in W_out */
      }
  }

  /* the nodes */
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) {
    rc = -1;
    goto done;
  }
  size_t nsz = (size_t)(unsigned)ns; /* ns >= 1 here */
  int *xm = calloc(nsz, sizeof *xm), *xo = calloc(nsz, sizeof *xo);
  if (!xm || !xo) {
    free(xm);
    free(xo);
    tfx_rw_abort(&rw);
    rc = tfx_errf(c->err, c->errlen, "llm_int8: out of memory");
    goto done;
  }
  for (int k = 0; k < ns && rc == 0; k++) {
    split *s = &sp[k];
    const char *wname = g->nodes[s->w].name;
    size_t nl = strlen(wname) + 32;
    char *name = malloc(nl);
    if (!name) {
      rc = tfx_errf(c->err, c->errlen, "llm_int8: out of memory");
      break;
    }
    double key = s->lin - 0.5 + 0.001 * k;
    if (s->group == k) {
      snprintf(name, nl, "%s.llm_int8_mask", wname);
      int pm = add_param(&rw, name, s->K, 0, s->off_mask, key, c->err, c->errlen);
      snprintf(name, nl, "%s.llm_int8_gather", wname);
      int pp = pm < 0 ? -1 : add_param(&rw, name, s->K, s->n_out, s->off_p, key, c->err, c->errlen);
      if (pp >= 0 && keep_rule(g, name)) pp = tfx_errf(c->err, c->errlen, "llm_int8: out of memory");
      tfx_node mul = tfx_node_proto(TFX_OP_MUL, 2, (int[]){s->x, pm});
      tfx_node mm = tfx_node_proto(TFX_OP_MATMUL, 2, (int[]){s->x, pp});
      mul.line = mm.line = g->nodes[s->lin].line;
      mul.col = mm.col = g->nodes[s->lin].col;
      xm[k] = pp < 0 ? -1 : tfx_rw_add(&rw, &mul, key, c->err, c->errlen);
      xo[k] = xm[k] < 0 ? -1 : tfx_rw_add(&rw, &mm, key, c->err, c->errlen);
      if (xo[k] < 0) {
        free(name);
        rc = -1;
        break;
      }
    } else {
      xm[k] = xm[s->group];
      xo[k] = xo[s->group];
    }
    snprintf(name, nl, "%s.llm_int8_outliers", wname);
    int pw = add_param(&rw, name, s->N, s->n_out, s->off_wout, key, c->err, c->errlen);
    if (pw >= 0 && keep_rule(g, name)) pw = tfx_errf(c->err, c->errlen, "llm_int8: out of memory");
    free(name);
    if (pw < 0) {
      rc = -1;
      break;
    }
    tfx_node lo = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){xo[k], pw});
    lo.line = g->nodes[s->lin].line;
    lo.col = g->nodes[s->lin].col;
    int y2 = tfx_rw_add(&rw, &lo, s->lin + 0.5, c->err, c->errlen);
    tfx_node add = tfx_node_proto(TFX_OP_ADD, 2, (int[]){s->lin, y2});
    add.line = lo.line;
    add.col = lo.col;
    int y = y2 < 0 ? -1 : tfx_rw_add(&rw, &add, s->lin + 0.6, c->err, c->errlen);
    if (y < 0) {
      rc = -1;
      break;
    }
    tfx_rw_replace_uses(&rw, s->lin, y);
    int in[3];
    for (int j = 0; j < g->nodes[s->lin].n_inputs; j++) in[j] = g->nodes[s->lin].inputs[j];
    in[0] = xm[k];
    if (tfx_rw_set_inputs(&rw, s->lin, g->nodes[s->lin].n_inputs, in, c->err, c->errlen)) {
      rc = -1;
      break;
    }
  }
  free(xm);
  free(xo);
  if (rc) {
    tfx_rw_abort(&rw);
    goto done;
  }
  if (tfx_rw_commit(&rw, c->err, c->errlen)) rc = -1;
done:
  for (int k = 0; k < ns; k++) free(sp[k].idx);
  free(sp);
  if (rc == 0) g->schedule.quantize.llm_int8 = 2; /* split: a second run changes nothing */
  return rc;
}
