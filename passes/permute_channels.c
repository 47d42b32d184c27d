/* passes/permute_channels.c — the channel permutation of 2:4 sparsity
 * (issue #13, `sparse24(FMT, permute = true)`): before the weights are
 * pruned (quantize_weights keeps the 2 largest |w| of every 4 consecutive
 * inputs), the input channels of a sparse24 linear are reordered so that
 * the groups of 4 keep more of the weights' magnitude, and the linears that
 * produce those channels get the same order on their output rows, so the
 * model's function is unchanged in exact arithmetic.
 *
 * Two shapes are permuted:
 * - a chain: the consumer `linear(m, w)` whose input m is computed only by
 *   element-wise ops (silu, gelu, relu, sigmoid, affine, softcap, and add /
 *   sub / mul of two operands of m's shape) from producer linears
 *   (`linear(x, w1 [, b1])`), every node of the chain read only inside it:
 *   the FFN's hidden channels (W1's and W3's rows with W2's columns, GLU
 *   or not);
 * - attention: the consumer `linear(o, wo)` of `o = attention(q, k, v)`
 *   whose v is `linear(x, wv [, bv])` read by that attention alone: the
 *   value dims of each KV head g are reordered (rows g·d .. g·d + d − 1 of
 *   wv and bv), and wo's columns of every query head of g follow.
 * Queries and keys are not permuted: their order changes no group of 4
 * inputs of any weight (the technique's "Q's with K's" matters when the
 * sparsity runs along the outputs, which tfxc's formats do not).
 *
 * Every weight and bias involved must be a param bound in the blob and read
 * by its linear alone, stored row-major without a scale plane (the
 * producers' rows are moved as bytes, so a q8_0 producer is fine), the
 * consumer's in an element format (f32, or f16 / bf16 kept as stored: its
 * columns are moved); the consumer's weight must be asked a sparse24
 * format with permute (the schedule's choice or its quantize { } rule) and
 * keep it (K a multiple of 32). The search (Pool and Yu's channel swaps):
 * the objective is the sum over rows of the 2 largest |w| of every group of
 * 4 columns; starting from the identity, swaps of one column of a group with
 * one of another group are tried (the best of the 16 of a pair of groups,
 * taken when it gains), sweep after sweep over every pair of groups until a
 * sweep gains nothing, or over random pairs when a sweep would cost more
 * than the work budget (so the result is never worse than no permutation,
 * and compile time stays bounded: at most PERMUTE_BUDGET row evaluations
 * per weight). Deterministic (a fixed seed). The graph's nodes do not change,
 * only the weights; --stats prints each weight's kept magnitude before and
 * after (g->permutes). Runs first, before quantize_weights; the choice is
 * then marked done (permute = 2) so a second run changes nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

#define MAX_PRODUCERS 8
#define MAX_CHAIN 32
#define PERMUTE_BUDGET (1LL << 28) /* row evaluations of the objective per weight */

/* Readers of node id: their ids in out[] (at most cap, each once); the count. */
static int readers(const tfx_graph *g, int id, int *out, int cap) {
  int n = 0;
  for (int i = id + 1; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++)
      if (g->nodes[i].inputs[j] == id) {
        if (n < cap) out[n] = i;
        n++;
        break;
      }
  return n;
}

/* 1 when node p is a PARAM bound in the blob, read by node `by` alone
 * (once), with no other PARAM node sharing its slot, stored row-major
 * without a scale plane: rows of bytes the pass can reorder; with
 * `elements`, in an element format (f32, f16, bf16: columns too). */
static int own_param(const tfx_graph *g, int p, int by, size_t blob, int elements) {
  const tfx_node *n = &g->nodes[p];
  const tfx_dtype_info *fi = tfx_dtype_info_of(n->type.dtype);
  if (n->op != TFX_OP_PARAM || !fi || fi->row_bytes || !fi->dequant_row || n->fx.panel || n->weight_offset < 0 ||
      (size_t)(n->weight_offset + tfx_type_bytes(&n->type, 1)) > blob || g->output == p ||
      (elements && fi->block != 1) || (n->type.rank == 1 && fi->block != 1))
    return 0;
  int r[2];
  if (readers(g, p, r, 2) != 1 || r[0] != by) return 0;
  int uses = 0;
  for (int j = 0; j < g->nodes[by].n_inputs; j++) uses += g->nodes[by].inputs[j] == p;
  if (uses != 1) return 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (i != p && g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].weight_offset == n->weight_offset) return 0;
  return 1;
}

/* 1 when node id is read only by `by` (as operand `operand` alone) and is not the output. */
static int read_only_by(const tfx_graph *g, int id, int by, int operand) {
  int r[2];
  if (g->output == id || readers(g, id, r, 2) != 1 || r[0] != by) return 0;
  for (int j = 0; j < g->nodes[by].n_inputs; j++)
    if ((g->nodes[by].inputs[j] == id) != (j == operand)) return 0;
  return 1;
}

/* A producer linear: weight [N, K'] (and bias [N]) owned. */
static int producer_ok(const tfx_graph *g, int id, int64_t N, size_t blob) {
  const tfx_node *n = &g->nodes[id];
  if (n->op != TFX_OP_LINEAR || n->inputs[0] == n->inputs[1]) return 0;
  const tfx_node *w = &g->nodes[n->inputs[1]];
  if (w->type.rank != 2 || w->type.dims[0] != N || !own_param(g, n->inputs[1], id, blob, 0)) return 0;
  if (n->n_inputs > 2) {
    const tfx_node *b = &g->nodes[n->inputs[2]];
    if (b->type.rank != 1 || b->type.dims[0] != N || !own_param(g, n->inputs[2], id, blob, 0)) return 0;
  }
  return 1;
}

typedef struct {
  int chain[MAX_CHAIN], n_chain; /* the chain's nodes (producers included) */
  int prod[MAX_PRODUCERS], n_prod;
} chain;

static int in_chain(const chain *ch, int id) {
  for (int i = 0; i < ch->n_chain; i++)
    if (ch->chain[i] == id) return 1;
  return 0;
}

static int elementwise(tfx_op op) {
  return tfx_rw_is_act(op) || op == TFX_OP_AFFINE || op == TFX_OP_SOFTCAP || op == TFX_OP_ADD || op == TFX_OP_SUB ||
         op == TFX_OP_MUL;
}

/* Collects the chain computing node id (m's channels, N of them); 0 when it
 * is not one the pass can permute. */
static int collect(const tfx_graph *g, int id, int64_t N, size_t blob, chain *ch) {
  if (in_chain(ch, id)) return 1;
  const tfx_node *n = &g->nodes[id];
  if (n->type.rank != 2 || n->type.dims[1] != N || n->type.dtype != TFX_DT_F32 || ch->n_chain == MAX_CHAIN) return 0;
  ch->chain[ch->n_chain++] = id;
  if (n->op == TFX_OP_LINEAR) {
    if (ch->n_prod == MAX_PRODUCERS || !producer_ok(g, id, N, blob)) return 0;
    ch->prod[ch->n_prod++] = id;
    return 1;
  }
  if (!elementwise(n->op)) return 0;
  for (int j = 0; j < n->n_inputs; j++) {
    const tfx_node *in = &g->nodes[n->inputs[j]];
    if (in->type.rank != n->type.rank || in->type.dims[0] != n->type.dims[0] || !collect(g, n->inputs[j], N, blob, ch))
      return 0;
  }
  return 1;
}

/* Every node of the chain but the head is read only by chain nodes; the
 * head only by the consumer (as its input). */
static int chain_closed(const tfx_graph *g, const chain *ch, int head, int consumer) {
  for (int i = 0; i < ch->n_chain; i++) {
    int id = ch->chain[i];
    if (g->output == id) return 0;
    for (int r = id + 1; r < g->n_nodes; r++)
      for (int j = 0; j < g->nodes[r].n_inputs; j++)
        if (g->nodes[r].inputs[j] == id) {
          if (id == head ? r != consumer || j != 0 : !in_chain(ch, r)) return 0;
          for (int p = 0; p < ch->n_prod; p++) /* a producer's input would change too */
            if (ch->prod[p] == r) return 0;
        }
  }
  return 1;
}

/* ---- the search ---- */

/* The objective over R rows of one group of 4 columns: the sum of each
 * row's 2 largest of |a|, |b|, |c|, |d| (the values are already absolute:
 * the largest is max(p, u) and the second max(min(p, u), max(q, v)) for p,
 * q the max and min of a, b and u, v those of c, d). Written with
 * comparisons (no NaN here) and 16 partial sums so that it vectorizes. */
#define MAX2(x, y) ((x) > (y) ? (x) : (y))
#define MIN2(x, y) ((x) < (y) ? (x) : (y))
static double kept4(const float *a, const float *b, const float *c, const float *d, int64_t R) {
  float acc[16] = {0};
  int64_t r = 0;
  for (; r + 16 <= R; r += 16)
    for (int l = 0; l < 16; l++) {
      float p = MAX2(a[r + l], b[r + l]), q = MIN2(a[r + l], b[r + l]);
      float u = MAX2(c[r + l], d[r + l]), v = MIN2(c[r + l], d[r + l]);
      acc[l] += MAX2(p, u) + MAX2(MIN2(p, u), MAX2(q, v));
    }
  double s = 0;
  for (int l = 0; l < 16; l++) s += acc[l];
  for (; r < R; r++) {
    float p = MAX2(a[r], b[r]), q = MIN2(a[r], b[r]);
    float u = MAX2(c[r], d[r]), v = MIN2(c[r], d[r]);
    s += MAX2(p, u) + MAX2(MIN2(p, u), MAX2(q, v));
  }
  return s;
}

typedef struct {
  const float *col; /* |w| column-major: column c at col + c * R */
  int64_t R, K;
  int *perm;    /* position -> original column */
  double *kept; /* per group of 4 positions */
  long long work;
} search;

static const float *colp(const search *s, int pos) { return s->col + (int64_t)s->perm[pos] * s->R; }

static double group_kept(search *s, int g) {
  s->work += s->R;
  return kept4(colp(s, 4 * g), colp(s, 4 * g + 1), colp(s, 4 * g + 2), colp(s, 4 * g + 3), s->R);
}

/* Tries the 16 swaps between groups a and b; applies the best when it gains. 1 when it did. */
static int try_pair(search *s, int a, int b) {
  double best = 1e-9 * (s->kept[a] + s->kept[b]) + 1e-12, best_a = 0, best_b = 0;
  int bi = -1, bj = -1;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      int pa = 4 * a + i, pb = 4 * b + j, t = s->perm[pa];
      s->perm[pa] = s->perm[pb];
      s->perm[pb] = t;
      double ka = group_kept(s, a), kb = group_kept(s, b);
      s->perm[pb] = s->perm[pa];
      s->perm[pa] = t;
      double gain = ka + kb - s->kept[a] - s->kept[b];
      if (gain > best) {
        best = gain;
        bi = pa;
        bj = pb;
        best_a = ka;
        best_b = kb;
      }
    }
  if (bi < 0) return 0;
  int t = s->perm[bi];
  s->perm[bi] = s->perm[bj];
  s->perm[bj] = t;
  s->kept[a] = best_a;
  s->kept[b] = best_b;
  return 1;
}

static uint64_t next_rand(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Searches perm[K] (from the identity) for the columns of col (|w|, R rows,
 * column-major); *before and *after get the objective. -1 out of memory. */
static int find_permutation(const float *col, int64_t R, int64_t K, int *perm, double *before, double *after) {
  int G = (int)(K / 4);
  search s = {col, R, K, perm, calloc((size_t)G, sizeof(double)), 0};
  if (!s.kept) return -1;
  for (int64_t c = 0; c < K; c++) perm[c] = (int)c;
  double total = 0;
  for (int g = 0; g < G; g++) total += s.kept[g] = group_kept(&s, g);
  *before = total;
  long long sweep = (long long)G * (G - 1) / 2 * 32 * R;
  if (sweep <= PERMUTE_BUDGET / 2) { /* whole sweeps until one gains nothing */
    for (int gained = 1; gained && s.work + sweep <= PERMUTE_BUDGET;) {
      gained = 0;
      for (int a = 0; a < G; a++)
        for (int b = a + 1; b < G; b++) gained |= try_pair(&s, a, b);
    }
  } else { /* random pairs while the budget lasts, or until 8 rounds of G pairs gain nothing */
    uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)K * 31 ^ (uint64_t)R;
    for (int idle = 0; idle < 8 && s.work + 32 * R * G <= PERMUTE_BUDGET;) {
      int gained = 0;
      for (int a = 0; a < G; a++) {
        int b = (int)(next_rand(&x) % (uint64_t)(G - 1));
        gained |= try_pair(&s, a, b + (b >= a));
      }
      idle = gained ? 0 : idle + 1;
    }
  }
  total = 0;
  for (int g = 0; g < G; g++) total += s.kept[g];
  *after = total;
  free(s.kept);
  return 0;
}

/* ---- applying it ---- */

/* Rows r0 + i (i < n) of param p (rows of bytes; a 1-D param: elements)
 * take rows r0 + perm[i]. */
static int permute_rows(uint8_t *blob, const tfx_graph *g, int p, int64_t r0, const int *perm, int64_t n) {
  const tfx_node *w = &g->nodes[p];
  int64_t R = w->type.dims[0];
  size_t rb = (size_t)(tfx_type_bytes(&w->type, 1) / R);
  uint8_t *data = blob + w->weight_offset, *tmp = malloc((size_t)n * rb);
  if (!tmp) return -1;
  memcpy(tmp, data + (size_t)r0 * rb, (size_t)n * rb);
  for (int64_t i = 0; i < n; i++) memcpy(data + (size_t)(r0 + i) * rb, tmp + (size_t)perm[i] * rb, rb);
  free(tmp);
  return 0;
}

/* Columns c0 + i (i < n) of every row of param p (an element format) take columns c0 + perm[i]. */
static int permute_cols(uint8_t *blob, const tfx_graph *g, int p, int64_t c0, const int *perm, int64_t n) {
  const tfx_node *w = &g->nodes[p];
  int64_t R = w->type.dims[0], K = w->type.dims[1];
  size_t es = (size_t)tfx_dtype_size(w->type.dtype);
  uint8_t *data = blob + w->weight_offset, *tmp = malloc((size_t)n * es);
  if (!tmp) return -1;
  for (int64_t r = 0; r < R; r++) {
    uint8_t *row = data + ((size_t)(r * K + c0)) * es;
    memcpy(tmp, row, (size_t)n * es);
    for (int64_t i = 0; i < n; i++) memcpy(row + (size_t)i * es, tmp + (size_t)perm[i] * es, es);
  }
  free(tmp);
  return 0;
}

/* |w| of param p ([R, K], decoded to f32) into abs[R * K], row-major. */
static int abs_rows(const uint8_t *blob, const tfx_graph *g, int p, float *abs) {
  const tfx_node *w = &g->nodes[p];
  int64_t R = w->type.dims[0], K = w->type.dims[1];
  for (int64_t r = 0; r < R; r++) {
    if (tfx_weight_dequant_row(w, blob + w->weight_offset, r, abs + r * K)) return -1;
    for (int64_t k = 0; k < K; k++) abs[r * K + k] = fabsf(abs[r * K + k]);
  }
  return 0;
}

/* Does the consumer's weight get a sparse24 format with permute? */
static int asks_permute(const tfx_graph *g, const tfx_node *w) {
  tfx_quant_choice ch = tfx_graph_param_choice(g, w->name);
  if (ch.permute != 1 || ch.mode != TFX_QUANT_FORMAT) return 0;
  tfx_dtype dt = tfx_quantize_fallback(ch.dtype, tfx_node_cols(w));
  return dt == TFX_DT_S24_F32 || dt == TFX_DT_S24_Q8_0;
}

/* The FFN-like chain before consumer linear `id`. */
static int permute_chain(tfx_pass_ctx *c, int id, const chain *ch) {
  tfx_graph *g = c->g;
  uint8_t *blob = *c->weights;
  const tfx_node *l = &g->nodes[id];
  int wp = l->inputs[1];
  int64_t R = g->nodes[wp].type.dims[0], K = g->nodes[wp].type.dims[1];
  float *w = malloc((size_t)(R * K) * sizeof *w), *col = malloc((size_t)(R * K) * sizeof *col);
  int *perm = malloc((size_t)K * sizeof *perm);
  int rc = 0;
  double before = 0, after = 0;
  if (!w || !col || !perm || abs_rows(blob, g, wp, w)) goto oom;
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = 0; k < K; k++) col[k * R + r] = w[r * K + k];
  if (find_permutation(col, R, K, perm, &before, &after)) goto oom;
  if (permute_cols(blob, g, wp, 0, perm, K)) goto oom;
  for (int i = 0; i < ch->n_prod; i++) {
    const tfx_node *p = &g->nodes[ch->prod[i]];
    if (permute_rows(blob, g, p->inputs[1], 0, perm, K)) goto oom;
    if (p->n_inputs > 2 && permute_rows(blob, g, p->inputs[2], 0, perm, K)) goto oom;
  }
  rc = tfx_graph_add_permute(g, g->nodes[wp].name, before, after);
  if (rc) goto oom;
  free(w);
  free(col);
  free(perm);
  return 0;
oom:
  free(w);
  free(col);
  free(perm);
  return tfx_errf(c->err, c->errlen, "permute_channels: out of memory");
}

/* Attention's value dims before consumer `id` = linear(o, wo), o = attention(q, k, v). */
static int permute_values(tfx_pass_ctx *c, int id) {
  tfx_graph *g = c->g;
  uint8_t *blob = *c->weights;
  const tfx_node *l = &g->nodes[id], *a = &g->nodes[l->inputs[0]];
  int wp = l->inputs[1], vid = a->inputs[2];
  const tfx_node *v = &g->nodes[vid];
  int H = a->heads, G = a->kv_heads, d = a->head_dim;
  int64_t R = g->nodes[wp].type.dims[0], K = g->nodes[wp].type.dims[1];
  int64_t per = H / G, MR = R * per; /* rows of the search: every query head of the group */
  float *w = malloc((size_t)(R * K) * sizeof *w), *col = malloc((size_t)(MR * d) * sizeof *col);
  int *perm = malloc((size_t)d * sizeof *perm);
  double before = 0, after = 0;
  if (!w || !col || !perm || abs_rows(blob, g, wp, w)) goto oom;
  for (int kv = 0; kv < G; kv++) {
    for (int64_t h = 0; h < per; h++) {
      int64_t c0 = (kv * per + h) * d;
      for (int64_t r = 0; r < R; r++)
        for (int64_t k = 0; k < d; k++) col[k * MR + h * R + r] = w[r * K + c0 + k];
    }
    double b0, b1;
    if (find_permutation(col, MR, d, perm, &b0, &b1)) goto oom;
    before += b0;
    after += b1;
    for (int64_t h = 0; h < per; h++)
      if (permute_cols(blob, g, wp, (kv * per + h) * d, perm, d)) goto oom;
    if (permute_rows(blob, g, v->inputs[1], (int64_t)kv * d, perm, d)) goto oom;
    if (v->n_inputs > 2 && permute_rows(blob, g, v->inputs[2], (int64_t)kv * d, perm, d)) goto oom;
  }
  if (tfx_graph_add_permute(g, g->nodes[wp].name, before, after)) goto oom;
  free(w);
  free(col);
  free(perm);
  return 0;
oom:
  free(w);
  free(col);
  free(perm);
  return tfx_errf(c->err, c->errlen, "permute_channels: out of memory");
}

/* 1 when consumer `id` reads an attention whose value dims can be reordered. */
static int values_ok(const tfx_graph *g, int id, size_t blob) {
  const tfx_node *l = &g->nodes[id];
  int aid = l->inputs[0];
  const tfx_node *a = &g->nodes[aid];
  if (a->op != TFX_OP_ATTENTION || !read_only_by(g, aid, id, 0)) return 0;
  int H = a->heads, G = a->kv_heads, d = a->head_dim;
  if (H < 1 || G < 1 || H % G || d % 4 || (int64_t)H * d != tfx_node_cols(&g->nodes[l->inputs[1]])) return 0;
  int vid = a->inputs[2];
  if (vid == a->inputs[0] || vid == a->inputs[1] || !read_only_by(g, vid, aid, 2)) return 0;
  return producer_ok(g, vid, (int64_t)G * d, blob);
}

int tfx_pass_permute_channels(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  if (!tfx_graph_asks_permute(g)) return 0;
  if (!c->weights || !*c->weights) return 0; /* types only: nothing to permute */
  size_t size = *c->weights_size;
  int rc = 0;
  for (int i = 0; i < g->n_nodes && rc == 0; i++) {
    const tfx_node *l = &g->nodes[i];
    if (l->op != TFX_OP_LINEAR || l->inputs[0] == l->inputs[1]) continue;
    int wp = l->inputs[1];
    const tfx_node *w = &g->nodes[wp];
    if (w->type.rank != 2 || !w->name || !own_param(g, wp, i, size, 1) || !asks_permute(g, w)) continue;
    if (values_ok(g, i, size)) {
      rc = permute_values(c, i);
      continue;
    }
    chain ch = {.n_chain = 0, .n_prod = 0};
    if (collect(g, l->inputs[0], w->type.dims[1], size, &ch) && ch.n_prod > 0 && chain_closed(g, &ch, l->inputs[0], i))
      rc = permute_chain(c, i, &ch);
  }
  if (rc == 0) tfx_graph_permute_done(g);
  return rc;
}
