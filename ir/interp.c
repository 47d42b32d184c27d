/* ir/interp.c — the reference interpreter: naive, obviously-correct C over the
 * graph, with double accumulators. It is the test oracle for the JIT and the
 * `--interpret` path; it owns its buffers (one per value, allocated at the
 * value's definition and freed after its last use) and its own KV cache per
 * causal ATTENTION node (or state: ir/recurrent.c), and never depends on
 * planning. */
#include "fused.h"
#include "interp_attention.h"
#include "interp_ops.h"
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct tfx_interp {
  const tfx_graph *g;
  const uint8_t *weights;
  int64_t pos; /* tokens in the KV cache; stays 0 without one */
  int has_causal;
  int *last_use;  /* per node: id of the last node reading it (or itself) */
  float **kcache; /* per node: [max_seq, G*d] for causal ATTENTION, [max_seq, r+dr] for MLA, else NULL */
  float **vcache;
  char init_err[256];           /* non-empty when the graph cannot be interpreted */
  tfx_interp_observer observer; /* tfx_interp_set_observer */
  void *observer_user;
};

void tfx_interp_set_observer(tfx_interp *it, tfx_interp_observer fn, void *user) {
  it->observer = fn;
  it->observer_user = user;
}

/* Checks the graph and the parameters once; records the first problem. */
static void check_graph(tfx_interp *it) {
  const tfx_graph *g = it->g;
  char msg[200];
  if (tfx_verify(g, 0, msg, sizeof msg)) {
    snprintf(it->init_err, sizeof it->init_err, "interpreter: invalid graph: %s", msg);
    return;
  }
  const tfx_node *in = &g->nodes[g->input];
  if (!((in->type.dtype == TFX_DT_I32 && in->type.rank == 1) || (in->type.dtype == TFX_DT_F32 && in->type.rank == 2))) {
    snprintf(it->init_err, sizeof it->init_err, "interpreter: unsupported input type");
    return;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_PARAM) continue;
    int64_t bytes = tfx_type_bytes(&n->type, 1);
    const tfx_dtype_info *f = tfx_dtype_info_of(n->type.dtype);
    if (n->type.dtype != TFX_DT_F32 && !f->dequant_row) {
      snprintf(it->init_err, sizeof it->init_err,
               "interpreter: %%%d (param '%s') is stored as %s, which it cannot decode yet", i, n->name ? n->name : "?",
               f->name);
      return;
    }
    if (!it->weights || n->weight_offset < 0 || n->weight_offset % 4 ||
        (g->weights_bytes > 0 && n->weight_offset + bytes > g->weights_bytes)) {
      snprintf(it->init_err, sizeof it->init_err, "interpreter: %%%d (param '%s') is not bound to the weights blob", i,
               n->name ? n->name : "?");
      return;
    }
  }
}

tfx_interp *tfx_interp_new(const tfx_graph *g, const uint8_t *weights) {
  if (!g) return NULL;
  tfx_interp *it = calloc(1, sizeof *it);
  if (!it) return NULL;
  it->g = g;
  it->weights = weights;
  int nn = g->n_nodes > 0 ? g->n_nodes : 1;
  it->last_use = calloc((size_t)nn, sizeof *it->last_use);
  it->kcache = calloc((size_t)nn, sizeof *it->kcache);
  it->vcache = calloc((size_t)nn, sizeof *it->vcache);
  if (!it->last_use || !it->kcache || !it->vcache) {
    tfx_interp_free(it);
    return NULL;
  }
  check_graph(it);
  if (it->init_err[0]) return it;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    it->last_use[i] = i;
    for (int j = 0; j < n->n_inputs; j++) it->last_use[n->inputs[j]] = i;
    if (tfx_node_kv_bytes(n, g->max_seq) > 0) { /* causal ATTENTION: K and V; MLA: its latent (kcache) */
      size_t cnt = (size_t)(tfx_node_kv_bytes(n, g->max_seq) / 4);
      int mla = n->op != TFX_OP_ATTENTION; /* MLA's latent, a recurrent state (ir/recurrent.c): one buffer */
      size_t half = (size_t)(g->max_seq * n->kv_heads * n->head_dim); /* a key mask's values follow V */
      it->kcache[i] = calloc(mla ? cnt : half, sizeof(float));
      it->vcache[i] = calloc(mla ? 1 : cnt - half, sizeof(float));
      if (!it->kcache[i] || !it->vcache[i]) {
        snprintf(it->init_err, sizeof it->init_err, "interpreter: out of memory for the KV cache of %%%d", i);
        return it;
      }
      it->has_causal = 1;
    }
  }
  return it;
}

void tfx_interp_reset(tfx_interp *it) {
  if (it) it->pos = 0;
}

void tfx_interp_free(tfx_interp *it) {
  if (!it) return;
  if (it->kcache)
    for (int i = 0; i < it->g->n_nodes; i++) free(it->kcache[i]);
  if (it->vcache)
    for (int i = 0; i < it->g->n_nodes; i++) free(it->vcache[i]);
  free(it->kcache);
  free(it->vcache);
  free(it->last_use);
  free(it);
}

/* ---- the ops; x/y are row-major [rows, cols] ---- */

static void op_linear(const float *x, const float *w, const float *b, float *y, int64_t m, int64_t k, int64_t n) {
  for (int64_t r = 0; r < m; r++)
    for (int64_t c = 0; c < n; c++) {
      double s = b ? b[c] : 0.0;
      for (int64_t i = 0; i < k; i++) s += (double)x[r * k + i] * w[c * k + i];
      y[r * n + c] = (float)s;
    }
}

static void op_matmul(const float *a, const float *b, float *y, int64_t m, int64_t k, int64_t n) {
  for (int64_t r = 0; r < m; r++)
    for (int64_t c = 0; c < n; c++) {
      double s = 0.0;
      for (int64_t i = 0; i < k; i++) s += (double)a[r * k + i] * b[i * n + c];
      y[r * n + c] = (float)s;
    }
}

/* b has either numel elements (same shape) or one row of bn elements. */
static void op_binary(tfx_op op, const float *a, const float *b, int64_t bn, float *y, int64_t numel) {
  for (int64_t i = 0; i < numel; i++) {
    float bv = b[i % bn];
    y[i] = op == TFX_OP_ADD ? a[i] + bv : op == TFX_OP_SUB ? a[i] - bv : a[i] * bv;
  }
}

static void op_rmsnorm(const float *x, const float *g, double eps, float *y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double ss = 0.0;
    for (int64_t i = 0; i < cols; i++) ss += (double)xr[i] * xr[i];
    double inv = 1.0 / sqrt(ss / (double)cols + eps);
    for (int64_t i = 0; i < cols; i++) y[r * cols + i] = (float)(xr[i] * inv * g[i]);
  }
}

static void op_layernorm(const float *x, const float *g, const float *b, double eps, float *y, int64_t rows,
                         int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double mean = 0.0, var = 0.0;
    for (int64_t i = 0; i < cols; i++) mean += xr[i];
    mean /= (double)cols;
    for (int64_t i = 0; i < cols; i++) var += (xr[i] - mean) * (xr[i] - mean);
    var /= (double)cols;
    double inv = 1.0 / sqrt(var + eps);
    for (int64_t i = 0; i < cols; i++) y[r * cols + i] = (float)((xr[i] - mean) * inv * g[i] + b[i]);
  }
}

static void op_softmax(const float *x, float *y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double mx = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < cols; i++) mx = xr[i] > mx ? xr[i] : mx;
    for (int64_t i = 0; i < cols; i++) sum += exp(xr[i] - mx);
    for (int64_t i = 0; i < cols; i++) y[r * cols + i] = (float)(exp(xr[i] - mx) / sum);
  }
}

/* What fuse_embedding adds to an embedding's rows y (tfx_fused): the
 * positions (a table, or the sinusoidal table in double rounded to f32, at
 * p = pos + t with pos as for POSITIONS), then the row, each an f32 add as
 * the unfused adds; then the norm (in double, as the norm ops). */
static int embedding_epilogue(const tfx_interp_call *c, float *y, int64_t rows, int64_t cols) {
  const tfx_node *nd = c->nd;
  void *const *val = c->val;
  char *err = c->err;
  size_t errlen = c->errlen;
  const tfx_fused *fx = &nd->fx;
  int64_t pos = c->pos; /* 0 without a KV cache */
  int i = tfx_emb_operand(nd, TFX_EMB_POS);
  const float *ptab = i >= 0 ? val[nd->inputs[i]] : NULL;
  int64_t max_pos = i >= 0 ? c->g->nodes[nd->inputs[i]].type.dims[0] : 0;
  const float *row = (i = tfx_emb_operand(nd, TFX_EMB_ROW)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *gain = (i = tfx_emb_operand(nd, TFX_EMB_GAIN)) >= 0 ? val[nd->inputs[i]] : NULL;
  const float *nbias = (i = tfx_emb_operand(nd, TFX_EMB_NBIAS)) >= 0 ? val[nd->inputs[i]] : NULL;
  if (ptab && pos + rows > max_pos)
    return tfx_errf(err, errlen, "%%%d (embedding): positions %lld..%lld are outside the table of %lld rows", nd->id,
                    (long long)pos, (long long)(pos + rows - 1), (long long)max_pos);
  for (int64_t t = 0; t < rows; t++) {
    float *yr = y + t * cols;
    for (int64_t j = 0; j < cols; j++) {
      float p = 0.0f;
      if (ptab) p = ptab[(pos + t) * cols + j];
      if (fx->pos_add == TFX_EMB_POS_SINUSOIDAL) {
        double angle = (double)(pos + t) / pow(nd->theta, (double)(2 * (j / 2)) / (double)cols);
        p = (float)(j % 2 ? cos(angle) : sin(angle));
      }
      if (fx->pos_add) yr[j] = yr[j] + p;
      if (row) yr[j] = yr[j] + row[j];
    }
    if (fx->norm == TFX_NORM_RMS) op_rmsnorm(yr, gain, nd->eps, yr, 1, cols);
    if (fx->norm == TFX_NORM_LAYER) op_layernorm(yr, gain, nbias, nd->eps, yr, 1, cols);
  }
  return 0;
}

/* ---- the interpreter entries of ir/ops.h (tfx_interp_op_<token>) ---- */

#define OPERAND(c, i) ((c)->nd->n_inputs > (i) ? (const float *)(c)->val[(c)->nd->inputs[i]] : NULL)
#define IN_NODE(c, i) (&(c)->g->nodes[(c)->nd->inputs[i]])
#define ROWS(c) tfx_node_rows((c)->nd, (c)->n)
#define COLS(c) tfx_node_cols((c)->nd)

int tfx_interp_op_source(const tfx_interp_call *c) {
  return tfx_errf(c->err, c->errlen, "%%%d (%s): not supported by the interpreter", c->nd->id, tfx_op_name(c->nd->op));
}

int tfx_interp_op_embedding(const tfx_interp_call *c) {
  const tfx_node *nd = c->nd, *in0 = IN_NODE(c, 0);
  const float *a = OPERAND(c, 0);
  float *y = c->y;
  const int32_t *ids = c->val[nd->inputs[1]];
  int64_t rows = ROWS(c), cols = COLS(c), vocab = in0->type.dims[0];
  int packed = (in0->op == TFX_OP_PARAM && in0->fx.panel > 0) || in0->op == TFX_OP_PACK;
  for (int64_t t = 0; t < rows; t++) {
    if (ids[t] < 0 || ids[t] >= vocab)
      return tfx_errf(c->err, c->errlen, "%%%d (embedding): token id %d at row %lld is out of range [0, %lld)", nd->id,
                      (int)ids[t], (long long)t, (long long)vocab);
    if (!packed)
      memcpy(y + t * cols, a + (int64_t)ids[t] * cols, (size_t)cols * sizeof(float));
    else /* a table packed for the classifier (pack_weights) */
      for (int64_t k = 0; k < cols; k++) y[t * cols + k] = a[tfx_packed_index(&in0->fx, vocab, cols, ids[t], k)];
  }
  return embedding_epilogue(c, y, rows, cols);
}

void tfx_interp_act_quant_row(float *x, int64_t K, int per_token) {
  int8_t q[TFX_ACT_QBLOCK];
  float d;
  if (per_token) { /* w8a8: one scale for the row, q rebuilt block by block as the kernel reads it */
    float amax = 0;
    for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(x[k]));
    d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int64_t k = 0; k < K; k++) x[k] = (float)(int8_t)rintf(x[k] * id) * d;
    return;
  }
  for (int64_t b = 0; b + TFX_ACT_QBLOCK <= K; b += TFX_ACT_QBLOCK) {
    tfx_act_quant_block(x + b, q, &d);
    for (int j = 0; j < TFX_ACT_QBLOCK; j++) x[b + j] = (float)q[j] * d;
  }
}

int tfx_interp_op_linear(const tfx_interp_call *c) {
  const float *x = OPERAND(c, 0);
  int64_t M = ROWS(c), K = tfx_node_cols(IN_NODE(c, 0));
  float *xq = NULL;
  int aq = tfx_node_act_quant(c->g, c->nd);
  if (aq) { /* the int8 kernels' activations (ir.h, TFX_ACT_QBLOCK; per token for w8a8) */
    if (!(xq = malloc((size_t)(M * K) * sizeof *xq))) return tfx_errf(c->err, c->errlen, "out of memory");
    memcpy(xq, x, (size_t)(M * K) * sizeof *xq);
    for (int64_t m = 0; m < M; m++) tfx_interp_act_quant_row(xq + m * K, K, aq == 2);
    x = xq;
  }
  op_linear(x, OPERAND(c, 1), OPERAND(c, 2), c->y, M, K, COLS(c));
  free(xq);
  return 0;
}

int tfx_interp_op_matmul(const tfx_interp_call *c) {
  op_matmul(OPERAND(c, 0), OPERAND(c, 1), c->y, ROWS(c), tfx_node_cols(IN_NODE(c, 0)), COLS(c));
  return 0;
}

/* y[i, :] = sum over the call's rows t of e[i, t] x[t, :] */
int tfx_interp_op_seq_project(const tfx_interp_call *c) {
  const float *e = OPERAND(c, 0), *x = OPERAND(c, 1);
  int64_t k = ROWS(c), C = COLS(c), n = tfx_node_cols(IN_NODE(c, 0)), T = tfx_node_rows(IN_NODE(c, 1), c->n);
  for (int64_t i = 0; i < k; i++)
    for (int64_t col = 0; col < C; col++) {
      double s = 0.0;
      for (int64_t t = 0; t < T; t++) s += (double)e[i * n + t] * x[t * C + col];
      c->y[i * C + col] = (float)s;
    }
  return 0;
}

int tfx_interp_op_binary(const tfx_interp_call *c) {
  op_binary(c->nd->op, OPERAND(c, 0), OPERAND(c, 1), tfx_type_numel(&IN_NODE(c, 1)->type, c->n), c->y,
            tfx_type_numel(&c->nd->type, c->n));
  return 0;
}

/* a per-head norm (heads > 0) normalizes rows * heads groups of cols / heads */
int tfx_interp_op_rmsnorm(const tfx_interp_call *c) {
  int64_t h = c->nd->heads > 0 ? c->nd->heads : 1;
  op_rmsnorm(OPERAND(c, 0), OPERAND(c, 1), c->nd->eps, c->y, ROWS(c) * h, COLS(c) / h);
  return 0;
}

int tfx_interp_op_layernorm(const tfx_interp_call *c) {
  int64_t h = c->nd->heads > 0 ? c->nd->heads : 1;
  op_layernorm(OPERAND(c, 0), OPERAND(c, 1), OPERAND(c, 2), c->nd->eps, c->y, ROWS(c) * h, COLS(c) / h);
  return 0;
}

int tfx_interp_op_silu(const tfx_interp_call *c) {
  const float *x = OPERAND(c, 0);
  int64_t numel = tfx_type_numel(&c->nd->type, c->n);
  for (int64_t i = 0; i < numel; i++) c->y[i] = (float)((double)x[i] / (1.0 + exp(-(double)x[i])));
  return 0;
}

int tfx_interp_op_relu(const tfx_interp_call *c) {
  const float *x = OPERAND(c, 0);
  int64_t numel = tfx_type_numel(&c->nd->type, c->n);
  for (int64_t i = 0; i < numel; i++) c->y[i] = (float)(x[i] > 0 ? (double)x[i] : 0.0);
  return 0;
}

int tfx_interp_op_gelu(const tfx_interp_call *c) {
  const float *x = OPERAND(c, 0);
  int64_t numel = tfx_type_numel(&c->nd->type, c->n);
  for (int64_t i = 0; i < numel; i++) {
    double v = x[i];
    if (c->nd->gelu_tanh)
      v = 0.5 * v * (1.0 + tanh(0.79788456080286535588 /* sqrt(2/pi) */ * (v + 0.044715 * v * v * v)));
    else
      v = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    c->y[i] = (float)v;
  }
  return 0;
}

int tfx_interp_op_softmax(const tfx_interp_call *c) {
  op_softmax(OPERAND(c, 0), c->y, ROWS(c), COLS(c));
  return 0;
}

int tfx_interp_op_rope(const tfx_interp_call *c) {
  const tfx_node *n = c->nd;
  const float *x = OPERAND(c, 0);
  int64_t hd = n->head_dim, rd = n->rotary_dim, cols = (int64_t)n->heads * hd, rows = ROWS(c);
  double *z = malloc((size_t)(rd > 0 ? rd : 1) * sizeof *z);
  if (!z) return tfx_errf(c->err, c->errlen, "%%%d (rope): out of memory", n->id);
  memcpy(c->y, x, (size_t)(rows * cols) * sizeof(float));
  const int32_t *seg = n->n_inputs == 2 ? (const int32_t *)c->val[n->inputs[1]] : NULL;
  for (int64_t t = 0; t < rows; t++)
    for (int64_t h = 0; h < n->heads; h++) {
      float *row = c->y + t * cols + h * hd;
      int64_t p = c->pos + t, lo, hi;
      if (seg) { /* packed sequences: the position within the row's segment */
        tfx_segment_bounds(seg, rows, t, &lo, &hi);
        p = t - lo;
      }
      for (int64_t i = 0; i < rd; i++) z[i] = row[i];
      tfx_rope_rotate(z, rd, (double)p, n->theta, n->rope_style);
      for (int64_t i = 0; i < rd; i++) row[i] = (float)z[i];
    }
  free(z);
  return 0;
}

int tfx_interp_op_attention(const tfx_interp_call *c) {
  int bi = tfx_attn_bias_operand(c->nd), mi = tfx_attn_key_mask_operand(c->nd);
  const float *relb = bi >= 0 ? OPERAND(c, bi) : NULL;
  int64_t nb = relb ? IN_NODE(c, bi)->type.dims[0] : 0;
  int si = tfx_attn_segments_operand(c->nd);
  tfx_interp_key_mask km = {mi >= 0 ? OPERAND(c, mi) : NULL, mi >= 0 && IN_NODE(c, mi)->type.dtype == TFX_DT_I32,
                            si >= 0 ? (const int32_t *)OPERAND(c, si) : NULL,
                            tfx_attn_global_operand(c->nd) >= 0
                                ? (const int32_t *)c->val[c->nd->inputs[tfx_attn_global_operand(c->nd)]]
                                : NULL};
  return tfx_interp_attention(c->nd, OPERAND(c, 0), OPERAND(c, 1), OPERAND(c, 2), relb, nb, km, c->kc, c->vc, c->y,
                              ROWS(c), tfx_node_rows(IN_NODE(c, 1), c->n), c->pos, c->g->max_seq, c->err, c->errlen);
}

/* GLOBAL_ATTENTION: y's rows, the global tokens' rows replaced by the dense
 * attention of the global projections over every kept key (ir/ir.h) */
int tfx_interp_op_global_attn(const tfx_interp_call *c) {
  const tfx_node *n = c->nd;
  int64_t rows = ROWS(c), H = n->heads, G = n->kv_heads, d = n->head_dim, group = H / G;
  int64_t qs = H * d, ks = G * d;
  const float *y0 = OPERAND(c, 0), *q = OPERAND(c, 1), *k = OPERAND(c, 2), *v = OPERAND(c, 3);
  int mi = tfx_global_attn_key_mask_operand(n);
  const void *km = mi >= 0 ? c->val[n->inputs[mi]] : NULL;
  int km_i32 = mi >= 0 && IN_NODE(c, mi)->type.dtype == TFX_DT_I32;
  if (c->y != y0) memmove(c->y, y0, (size_t)(rows * qs) * sizeof(float));
  int gi = tfx_attn_global_operand(n);
  const int32_t *gm = gi >= 0 ? (const int32_t *)c->val[n->inputs[gi]] : NULL; /* per-call global tokens */
  int64_t ng = gm ? rows : tfx_attn_global_rows(&n->sparse, rows, NULL, 0);
  int64_t *gp = malloc((size_t)(ng > 0 ? ng : 1) * sizeof *gp);
  double *sc = malloc((size_t)(rows > 0 ? rows : 1) * sizeof *sc), *o = malloc((size_t)d * sizeof *o);
  if (!gp || !sc || !o) {
    free(gp), free(sc), free(o);
    return tfx_errf(c->err, c->errlen, "%%%d (global_attention): out of memory", n->id);
  }
  if (gm) { /* the rows whose mask value is nonzero */
    ng = 0;
    for (int64_t p = 0; p < rows; p++)
      if (gm[p]) gp[ng++] = p;
  } else {
    tfx_attn_global_rows(&n->sparse, rows, gp, ng);
  }
  double scale = tfx_attn_scale(n);
  for (int64_t r = 0; r < ng; r++) {
    int64_t p = gp[r];
    for (int64_t h = 0; h < H; h++) {
      const float *qp = q + p * qs + h * d;
      int64_t kh = h / group;
      double mx = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j < rows; j++) {
        int keep = !km || (km_i32 ? ((const int32_t *)km)[j] != 0 : ((const float *)km)[j] != 0.0f);
        double dot = 0.0;
        for (int64_t e = 0; e < d && keep; e++) dot += (double)qp[e] * k[j * ks + kh * d + e];
        sc[j] = keep ? dot * scale : -INFINITY;
        if (sc[j] > mx) mx = sc[j];
      }
      for (int64_t e = 0; e < d; e++) o[e] = 0.0;
      for (int64_t j = 0; j < rows; j++) {
        if (sc[j] == -INFINITY) continue;
        double pj = exp(sc[j] - mx);
        sum += pj;
        for (int64_t e = 0; e < d; e++) o[e] += pj * v[j * ks + kh * d + e];
      }
      for (int64_t e = 0; e < d; e++) c->y[p * qs + h * d + e] = sum > 0 ? (float)(o[e] / sum) : 0.0f;
    }
  }
  free(gp), free(sc), free(o);
  return 0;
}

int tfx_interp_op_mla(const tfx_interp_call *c) {
  return tfx_interp_mla(c->nd, OPERAND(c, 0), OPERAND(c, 1), OPERAND(c, 2), OPERAND(c, 3), c->kc, c->y, ROWS(c), c->pos,
                        c->g->max_seq, c->err, c->errlen);
}

/* the dispatch: the interp column of ir/ops.h */
static const tfx_interp_fn interp_fns[TFX_OP_COUNT] = {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  [TFX_OP_##NAME] = tfx_interp_op_##interp,
#include "ops.h"
#undef TFX_OP
};

/* Computes node nd into y (sized for its type with T = n). */
static int eval_node(tfx_interp *it, const tfx_node *nd, void *const *val, float *y, int64_t n, char *err,
                     size_t errlen) {
  tfx_interp_call c = {it->g, nd, val, y, n, it->pos, it->kcache[nd->id], it->vcache[nd->id], err, errlen};
  return interp_fns[nd->op](&c);
}

/* A weight stored in a format other than f32, decoded row by row
 * (tfx_weight_dequant_row) into f32 at the same element positions (a packed
 * layout stays packed); NULL when out of memory. */
static float *dequant_param(const tfx_node *nd, const uint8_t *data) {
  int64_t K = tfx_node_cols(nd), R = tfx_node_rows(nd, 1);
  const tfx_fused *layout = nd->fx.panel > 0 ? &nd->fx : NULL;
  float *buf = malloc((size_t)(R * K > 0 ? R * K : 1) * sizeof(float)), *row = malloc((size_t)(K > 0 ? K : 1) * 4);
  if (!buf || !row) {
    free(buf);
    free(row);
    return NULL;
  }
  for (int64_t r = 0; r < R; r++) {
    tfx_weight_dequant_row(nd, data, r, row);
    for (int64_t k = 0; k < K; k++) buf[layout ? tfx_packed_index(layout, R, K, r, k) : r * K + k] = row[k];
  }
  free(row);
  return buf;
}

int tfx_interp_forward(tfx_interp *it, const void *input, int64_t n, float *out, char *err, size_t errlen) {
  if (it && !it->init_err[0] && it->g->n_fwd_inputs > 1)
    return tfx_errf(err, errlen, "interpreter: the forward takes %d inputs; pass them all (tfx_interp_forward_inputs)",
                    it->g->n_fwd_inputs);
  return tfx_interp_forward_inputs(it, &input, 1, n, out, err, errlen);
}

static int forward_all(tfx_interp *it, const void *const *inputs, int n_inputs, int64_t n, float *out, char *err,
                       size_t errlen);

int tfx_interp_forward_inputs(tfx_interp *it, const void *const *inputs, int n_inputs, int64_t n, float *out, char *err,
                              size_t errlen) {
  return tfx_interp_forward_rows(it, inputs, NULL, n_inputs, n, out, err, errlen);
}

/* The sources padded to their N rows with zeros and the row mask (1 for the
 * call's S rows): one buffer of (sources + 1) * N int32/floats. */
int tfx_interp_forward_rows(tfx_interp *it, const void *const *inputs, const int64_t *rows, int n_inputs, int64_t n,
                            float *out, char *err, size_t errlen) {
  if (!it) return tfx_errf(err, errlen, "interpreter: NULL interpreter");
  if (it->init_err[0]) return tfx_errf(err, errlen, "%s", it->init_err);
  const tfx_graph *g = it->g;
  int want = tfx_graph_caller_inputs(g);
  if (!inputs || n_inputs != want)
    return tfx_errf(err, errlen, "interpreter: %d inputs given, the forward takes %d", inputs ? n_inputs : 0, want);
  if (g->rows_mask <= 0) return forward_all(it, inputs, n_inputs, n, out, err, errlen);
  int64_t N = g->nodes[g->fwd_inputs[g->rows_mask]].type.dims[0], S = -1;
  for (int k = 1; k < n_inputs; k++) {
    if (!tfx_graph_input_is_source(g, k)) continue;
    int64_t r = rows ? rows[k] : N;
    const char *name = g->nodes[g->fwd_inputs[k]].name ? g->nodes[g->fwd_inputs[k]].name : "?";
    if (r < 1 || r > N)
      return tfx_errf(err, errlen, "interpreter: source '%s' has %lld rows (1 to %lld)", name, (long long)r,
                      (long long)N);
    if (S >= 0 && r != S)
      return tfx_errf(err, errlen, "interpreter: source '%s' has %lld rows and another %lld (the sources share theirs)",
                      name, (long long)r, (long long)S);
    S = r;
  }
  if (S < 0) S = N;
  int32_t *buf = calloc((size_t)(n_inputs + 1) * (size_t)N, sizeof(int32_t));
  if (!buf) return tfx_errf(err, errlen, "interpreter: out of memory");
  const void *all[TFX_MAX_FWD_INPUTS];
  for (int k = 0; k < n_inputs; k++) {
    all[k] = inputs[k];
    if (!tfx_graph_input_is_source(g, k) || !inputs[k]) continue;
    memcpy(buf + (size_t)k * (size_t)N, inputs[k], (size_t)S * 4); /* int32 and float: 4 bytes */
    all[k] = buf + (size_t)k * (size_t)N;
  }
  int32_t *mask = buf + (size_t)n_inputs * (size_t)N;
  for (int64_t j = 0; j < S; j++) mask[j] = 1;
  all[n_inputs] = mask;
  int rc = forward_all(it, all, n_inputs + 1, n, out, err, errlen);
  free(buf);
  return rc;
}

static int forward_all(tfx_interp *it, const void *const *inputs, int n_inputs, int64_t n, float *out, char *err,
                       size_t errlen) {
  const tfx_graph *g = it->g;
  for (int i = 0; i < n_inputs; i++)
    if (!inputs[i])
      return tfx_errf(err, errlen, "interpreter: NULL input '%s'",
                      g->nodes[g->fwd_inputs[i]].name ? g->nodes[g->fwd_inputs[i]].name : "?");
  const void *input = inputs[0];
  if (!input || !out) return tfx_errf(err, errlen, "interpreter: NULL input or output buffer");
  if (n < 1) return tfx_errf(err, errlen, "interpreter: n = %lld tokens; need at least 1", (long long)n);
  if (n > g->max_seq)
    return tfx_errf(err, errlen, "interpreter: n = %lld exceeds max_seq = %lld", (long long)n, (long long)g->max_seq);
  if (it->has_causal && it->pos + n > g->max_seq)
    return tfx_errf(err, errlen, "interpreter: position %lld + %lld tokens exceeds max_seq = %lld (reset the session)",
                    (long long)it->pos, (long long)n, (long long)g->max_seq);
  if (g->nodes[g->output].type.dtype != TFX_DT_F32)
    return tfx_errf(err, errlen, "interpreter: the output %%%d is not f32", g->output);

  void **val = calloc((size_t)g->n_nodes, sizeof *val);
  char *owned = calloc((size_t)g->n_nodes, 1);
  int rc = 0;
  if (!val || !owned) {
    rc = tfx_errf(err, errlen, "interpreter: out of memory");
    goto done;
  }
  for (int i = 0; i < g->n_nodes && rc == 0; i++) {
    const tfx_node *nd = &g->nodes[i];
    if (nd->op == TFX_OP_PARAM && nd->type.dtype != TFX_DT_F32) {
      /* a weight in another format: decoded once per call into f32, in its layout */
      val[i] = dequant_param(nd, it->weights + nd->weight_offset);
      if (!val[i]) {
        rc = tfx_errf(err, errlen, "%%%d (param): out of memory", i);
        break;
      }
      owned[i] = 1;
    } else if (nd->op == TFX_OP_PARAM) {
      val[i] = (void *)(it->weights + nd->weight_offset);
    } else if (nd->op == TFX_OP_INPUT) {
      int k = 0;
      while (k < g->n_fwd_inputs - 1 && g->fwd_inputs[k] != i) k++;
      val[i] = (void *)inputs[k];
    } else {
      size_t bytes = (size_t)tfx_type_numel(&nd->type, n) * 4; /* weights too are held as f32 */
      val[i] = malloc(bytes ? bytes : 1);
      if (!val[i]) {
        rc = tfx_errf(err, errlen, "%%%d (%s): out of memory", i, tfx_op_name(nd->op));
        break;
      }
      owned[i] = 1;
      rc = eval_node(it, nd, val, val[i], n, err, errlen);
      if (rc == 0 && it->observer) it->observer(it->observer_user, g, nd, (const void *const *)val, n);
    }
    if (rc == 0 && i == g->output) memcpy(out, val[i], (size_t)tfx_type_bytes(&nd->type, n));
    /* free the operands whose last reader is this node (never the output:
     * it was copied when defined) */
    for (int j = 0; j < nd->n_inputs; j++) {
      int v = nd->inputs[j];
      if (it->last_use[v] == i && owned[v]) {
        free(val[v]);
        owned[v] = 0;
        val[v] = NULL;
      }
    }
  }
  /* the session's position advances only with a KV cache: a model without
   * one sees every call as a whole sequence at position 0 (as the runtime
   * passes it), so rope and fused rope epilogues restart at 0 */
  if (rc == 0 && it->has_causal) it->pos += n;
done:
  if (val && owned)
    for (int i = 0; i < g->n_nodes; i++)
      if (owned[i]) free(val[i]);
  free(val);
  free(owned);
  return rc;
}
