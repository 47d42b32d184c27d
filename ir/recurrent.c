/* ir/recurrent.c — the ops whose session state is not a KV cache: RETENTION
 * (RetNet's multi-scale retention, state S_h = sum gamma^(p-m) k_m^T v_m),
 * INFINI_ATTENTION (local attention in a segment plus a compressive memory)
 * and GROUPNORM (RetNet's per-head norm): their type inference, the bytes of
 * their state (tfx_node_kv_bytes, ir/attention.c, asks here) and their
 * interpreter entries (naive recurrent forms, double accumulators; the
 * state lives in the interpreter's per-node cache, zeroed when a call starts
 * at position 0). Semantics: ir/ir.h, above tfx_node.segment. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_ops.h"
#include "ir.h"

double tfx_retention_gamma(int h) { return 1.0 - ldexp(1.0, -5 - h); }

int64_t tfx_recurrent_state_bytes(const tfx_node *n) {
  int64_t H = n->heads, d = n->head_dim, dv = n->v_dim;
  if (n->op == TFX_OP_RETENTION) return H * d * dv * 4;
  if (n->op == TFX_OP_INFINI_ATTENTION) return H * ((int64_t)n->segment * (d + dv) + d * dv + d) * 4;
  return 0;
}

static int is_t_rows(const tfx_type *t) { return t->dtype == TFX_DT_F32 && t->rank == 2 && t->dims[0] == TFX_DIM_T; }

/* q, k of heads x head_dim columns, v of heads x v_dim, all with T rows */
static int infer_qkv(const tfx_node *n, const tfx_type *const *a, char *err, size_t errlen) {
  const char *on = tfx_op_name(n->op);
  char s0[64];
  if (n->heads <= 0 || n->head_dim <= 0 || n->v_dim <= 0)
    return tfx_errf(err, errlen, "%s: heads %d, head_dim %d and v_dim %d must be > 0", on, n->heads, n->head_dim,
                    n->v_dim);
  /* the kernels keep a head's query on the stack */
  if (n->head_dim > 4096 || n->v_dim > 4096 || (int64_t)n->heads * n->head_dim > (1 << 20) ||
      (int64_t)n->heads * n->v_dim > (1 << 20) || (int64_t)n->head_dim * n->v_dim > (1 << 20))
    return tfx_errf(err, errlen, "%s: heads %d x head_dim %d x v_dim %d is too large", on, n->heads, n->head_dim,
                    n->v_dim);
  static const char *const names[3] = {"q", "k", "v"};
  for (int i = 0; i < 3; i++) {
    int64_t want = (int64_t)n->heads * (i == 2 ? n->v_dim : n->head_dim);
    if (!is_t_rows(a[i]) || a[i]->dims[1] != want)
      return tfx_errf(err, errlen, "%s: %s is %s, expected f32[T, %lld] (%d heads of %d)", on, names[i],
                      tfx_type_str(a[i], s0, sizeof s0), (long long)want, n->heads, i == 2 ? n->v_dim : n->head_dim);
  }
  return 0;
}

int tfx_infer_retention(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                        size_t errlen) {
  (void)g;
  char s0[64];
  if (infer_qkv(n, a, err, errlen)) return -1;
  if (n->n_inputs == 4 && (a[3]->dtype != TFX_DT_F32 || a[3]->rank != 1 || a[3]->dims[0] != n->heads))
    return tfx_errf(err, errlen, "retention: gamma is %s, expected f32[%d] (one decay per head)",
                    tfx_type_str(a[3], s0, sizeof s0), n->heads);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, (int64_t)n->heads * n->v_dim});
  return 0;
}

int tfx_infer_infini(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                     size_t errlen) {
  (void)g;
  char s0[64];
  if (infer_qkv(n, a, err, errlen)) return -1;
  if (n->segment < 1 || n->segment > 4096) /* the kernel keeps a segment's scores on the stack */
    return tfx_errf(err, errlen, "infini_attention: segment = %d must be in 1..4096", n->segment);
  if (a[3]->dtype != TFX_DT_F32 || a[3]->rank != 1 || a[3]->dims[0] != n->heads)
    return tfx_errf(err, errlen, "infini_attention: beta is %s, expected f32[%d] (one gate per head)",
                    tfx_type_str(a[3], s0, sizeof s0), n->heads);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, (int64_t)n->heads * n->v_dim});
  return 0;
}

int tfx_infer_groupnorm(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                        size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  if (a[0]->dtype != TFX_DT_F32 || a[0]->rank != 2 || a[0]->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "groupnorm expects x : f32[M, C], got %s", tfx_type_str(a[0], s0, sizeof s0));
  int64_t C = a[0]->dims[1];
  if (n->heads <= 0 || C % n->heads)
    return tfx_errf(err, errlen, "groupnorm: groups = %d does not divide the %lld columns of x", n->heads,
                    (long long)C);
  for (int i = 1; i < 3; i++)
    if (a[i]->dtype != TFX_DT_F32 || a[i]->rank != 1 || a[i]->dims[0] != C)
      return tfx_errf(err, errlen, "groupnorm: %s is %s, expected f32[%lld] to match x %s", i == 1 ? "gain" : "bias",
                      tfx_type_str(a[i], s1, sizeof s1), (long long)C, tfx_type_str(a[0], s0, sizeof s0));
  if (!(n->eps >= 0 && isfinite(n->eps))) return tfx_errf(err, errlen, "groupnorm: eps must be finite and >= 0");
  *out = *a[0];
  return 0;
}

/* ---- the interpreter ---- */

#define OPERAND(c, i) ((const float *)(c)->val[(c)->nd->inputs[i]])

int tfx_interp_op_groupnorm(const tfx_interp_call *c) {
  const tfx_node *n = c->nd;
  const float *x = OPERAND(c, 0), *g = OPERAND(c, 1), *b = OPERAND(c, 2);
  int64_t rows = tfx_node_rows(n, c->n), C = tfx_node_cols(n), gs = C / n->heads;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t grp = 0; grp < n->heads; grp++) {
      const float *xr = x + r * C + grp * gs;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < gs; i++) mean += xr[i];
      mean /= (double)gs;
      for (int64_t i = 0; i < gs; i++) var += (xr[i] - mean) * (xr[i] - mean);
      var /= (double)gs;
      double inv = 1.0 / sqrt(var + n->eps);
      for (int64_t i = 0; i < gs; i++) {
        int64_t col = grp * gs + i;
        c->y[r * C + col] = (float)((xr[i] - mean) * inv * g[col] + b[col]);
      }
    }
  return 0;
}

/* the recurrent form: S = gamma S + k^T v, o = q S / sqrt(dk) */
int tfx_interp_op_retention(const tfx_interp_call *c) {
  const tfx_node *n = c->nd;
  const float *q = OPERAND(c, 0), *k = OPERAND(c, 1), *v = OPERAND(c, 2);
  int64_t H = n->heads, dk = n->head_dim, dv = n->v_dim, T = c->n;
  float *S = c->kc;
  if (!S) return tfx_errf(c->err, c->errlen, "%%%d (retention): no state", n->id);
  if (c->pos == 0) memset(S, 0, (size_t)(H * dk * dv) * sizeof(float));
  double scale = 1.0 / sqrt((double)dk);
  for (int64_t h = 0; h < H; h++) {
    double gamma = n->n_inputs == 4 ? (double)OPERAND(c, 3)[h] : tfx_retention_gamma((int)h); /* gamma = g */
    float *Sh = S + h * dk * dv;
    for (int64_t t = 0; t < T; t++) {
      const float *qt = q + t * H * dk + h * dk, *kt = k + t * H * dk + h * dk, *vt = v + t * H * dv + h * dv;
      for (int64_t e = 0; e < dk; e++)
        for (int64_t f = 0; f < dv; f++) Sh[e * dv + f] = (float)(gamma * Sh[e * dv + f] + (double)kt[e] * vt[f]);
      for (int64_t f = 0; f < dv; f++) {
        double s = 0;
        for (int64_t e = 0; e < dk; e++) s += (double)qt[e] * Sh[e * dv + f];
        c->y[t * H * dv + h * dv + f] = (float)(s * scale);
      }
    }
  }
  return 0;
}

static double elu1(double x) { return x > 0 ? x + 1.0 : exp(x); }

int tfx_interp_op_infini(const tfx_interp_call *c) {
  const tfx_node *n = c->nd;
  const float *q = OPERAND(c, 0), *k = OPERAND(c, 1), *v = OPERAND(c, 2), *beta = OPERAND(c, 3);
  int64_t H = n->heads, d = n->head_dim, dv = n->v_dim, N = n->segment, T = c->n;
  int64_t per = N * (d + dv) + d * dv + d;
  if (!c->kc) return tfx_errf(c->err, c->errlen, "%%%d (infini_attention): no state", n->id);
  double *sc = malloc((size_t)N * sizeof *sc), *acc = malloc((size_t)dv * sizeof *acc);
  if (!sc || !acc) {
    free(sc);
    free(acc);
    return tfx_errf(c->err, c->errlen, "%%%d (infini_attention): out of memory", n->id);
  }
  double scale = 1.0 / sqrt((double)d);
  for (int64_t h = 0; h < H; h++) {
    float *Kl = c->kc + h * per, *Vl = Kl + N * d, *M = Vl + N * dv, *z = M + d * dv;
    double gate = 1.0 / (1.0 + exp(-(double)beta[h]));
    if (c->pos == 0) memset(M, 0, (size_t)(d * dv + d) * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
      int64_t p = c->pos + t, slot = p % N;
      const float *qt = q + t * H * d + h * d, *kt = k + t * H * d + h * d, *vt = v + t * H * dv + h * dv;
      if (slot == 0 && p > 0) /* the previous segment goes into the memory */
        for (int64_t j = 0; j < N; j++)
          for (int64_t e = 0; e < d; e++) {
            double sk = elu1(Kl[j * d + e]);
            z[e] = (float)(z[e] + sk);
            for (int64_t f = 0; f < dv; f++) M[e * dv + f] = (float)(M[e * dv + f] + sk * Vl[j * dv + f]);
          }
      memcpy(Kl + slot * d, kt, (size_t)d * sizeof(float));
      memcpy(Vl + slot * dv, vt, (size_t)dv * sizeof(float));
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j <= slot; j++) {
        double s = 0;
        for (int64_t e = 0; e < d; e++) s += (double)qt[e] * Kl[j * d + e];
        sc[j] = s * scale;
        if (sc[j] > mx) mx = sc[j];
      }
      for (int64_t f = 0; f < dv; f++) acc[f] = 0;
      for (int64_t j = 0; j <= slot; j++) {
        double w = exp(sc[j] - mx);
        sum += w;
        for (int64_t f = 0; f < dv; f++) acc[f] += w * Vl[j * dv + f];
      }
      double den = 0;
      for (int64_t e = 0; e < d; e++) den += elu1(qt[e]) * z[e];
      for (int64_t f = 0; f < dv; f++) {
        double mem = 0;
        if (den > 0) {
          for (int64_t e = 0; e < d; e++) mem += elu1(qt[e]) * M[e * dv + f];
          mem /= den;
        }
        c->y[t * H * dv + h * dv + f] = (float)(gate * mem + (1.0 - gate) * acc[f] / sum);
      }
    }
  }
  free(sc);
  free(acc);
  return 0;
}
