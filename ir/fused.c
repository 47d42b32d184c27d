/* ir/fused.c — the optimizer's ops in the IR: NORM_STATS, FUSED_LINEAR,
 * SLICE, CONCAT, PACK, the packed layout of weights, and the operands and
 * attributes the optimizer adds to EMBEDDING and the MoE ops. Owns their
 * operand roles, type inference, attribute checks and text form (the infer,
 * check and print columns of their rows in ir/ops.h: tfx_infer_<op>,
 * tfx_check_<op>, tfx_print_<op>), the checks of the fused forms
 * (tfx_fused_<op>_extra, called by ir/graph.c's inference) and the use
 * rules (called by the verifier). The passes that create them
 * live in passes/; their semantics are documented in ir.h and
 * docs/passes.md. */
#include "fused.h"
#include "op_fns.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

static int norm_operands(int norm) { return norm == TFX_NORM_RMS ? 2 : norm == TFX_NORM_LAYER ? 3 : 0; }

int tfx_fl_n_operands(const tfx_fused *fx) {
  return 2 + (fx->has_bias ? 1 : 0) + norm_operands(fx->norm) + (fx->residual ? 1 : 0) + norm_operands(fx->rnorm);
}

/* The index of role `k` (0 stats, 1 gain, 2 bias) of a norm starting at i. */
static int norm_role(int norm, int i, int k) {
  if (norm == TFX_NORM_NONE || (k == 2 && norm != TFX_NORM_LAYER)) return -1;
  return i + k;
}

int tfx_fl_operand(const tfx_node *n, tfx_fl_role role) {
  const tfx_fused *fx = &n->fx;
  int i = 2;
  switch (role) {
  case TFX_FL_X: return 0;
  case TFX_FL_W: return 1;
  case TFX_FL_BIAS: return fx->has_bias ? 2 : -1;
  default: break;
  }
  i += fx->has_bias ? 1 : 0;
  if (role >= TFX_FL_STATS && role <= TFX_FL_NBIAS) return norm_role(fx->norm, i, (int)role - TFX_FL_STATS);
  i += norm_operands(fx->norm);
  if (role == TFX_FL_RESIDUAL) return fx->residual ? i : -1;
  i += fx->residual ? 1 : 0;
  return norm_role(fx->rnorm, i, (int)role - TFX_FL_RSTATS);
}

int tfx_emb_n_operands(const tfx_fused *fx) {
  return 2 + (fx->pos_add == TFX_EMB_POS_TABLE ? 1 : 0) + (fx->has_bias ? 1 : 0) +
         (fx->norm ? norm_operands(fx->norm) - 1 : 0);
}

int tfx_emb_operand(const tfx_node *n, tfx_emb_role role) {
  const tfx_fused *fx = &n->fx;
  int i = 2;
  if (role == TFX_EMB_TABLE) return 0;
  if (role == TFX_EMB_IDS) return 1;
  if (role == TFX_EMB_POS) return fx->pos_add == TFX_EMB_POS_TABLE ? i : -1;
  i += fx->pos_add == TFX_EMB_POS_TABLE ? 1 : 0;
  if (role == TFX_EMB_ROW) return fx->has_bias ? i : -1;
  i += fx->has_bias ? 1 : 0;
  if (role == TFX_EMB_GAIN) return fx->norm != TFX_NORM_NONE ? i : -1;
  return fx->norm == TFX_NORM_LAYER ? i + 1 : -1;
}

int tfx_moe_operand(const tfx_node *n, tfx_moe_role role) {
  const tfx_fused *fx = &n->fx;
  int route = n->op == TFX_OP_MOE_ROUTE;
  if (route && !fx->router) return role == TFX_MOE_X ? 0 : -1;
  if (role == TFX_MOE_X) return 0;
  if (role == TFX_MOE_W1) return route ? 1 : 2;
  int i = route ? 2 : 3;
  if (role == TFX_MOE_W3) return !route && fx->glu ? i : -1;
  i += !route && fx->glu ? 1 : 0;
  return norm_role(fx->norm, i, (int)role - TFX_MOE_STATS);
}

int tfx_stats_writer(const tfx_node *n) {
  if (tfx_op_info(n->op)->attrs & TFX_A(STATS_OUT)) return n->fx.stats_out; /* ir/ops.h */
  return TFX_NORM_NONE;
}

int64_t tfx_stats_cols(const tfx_node *n) {
  if (tfx_fl_planar(n) && n->fx.stats_seg >= 0 && n->fx.stats_seg < n->fx.n_segs) return n->fx.segs[n->fx.stats_seg];
  return tfx_node_cols(n);
}

int tfx_fl_planar(const tfx_node *n) { return n->op == TFX_OP_FUSED_LINEAR && n->fx.n_segs > 1 && !n->fx.glu; }

int64_t tfx_node_slot_bytes(const tfx_graph *g, const tfx_node *n, int64_t t) {
  if (n->op == TFX_OP_NORM_STATS && n->fx.index == 1) {
    const tfx_node *x = &g->nodes[n->inputs[0]];
    int64_t groups = (tfx_stats_cols(x) + TFX_STATS_GROUP - 1) / TFX_STATS_GROUP;
    return tfx_node_rows(x, t) * groups * 2 * 4;
  }
  return tfx_type_bytes(&n->type, t);
}

int tfx_fl_stats_node(const tfx_graph *g, int id) {
  for (int i = id + 1; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_NORM_STATS && g->nodes[i].fx.index == 1 && g->nodes[i].inputs[0] == id) return i;
  return -1;
}

int64_t tfx_pair_pos(int64_t i, int hd, int rd) {
  int64_t h = i / hd, ih = i % hd;
  if (ih < rd) ih = ih < rd / 2 ? 2 * ih : 2 * (ih - rd / 2) + 1;
  return h * hd + ih;
}

int64_t tfx_pair_row(int64_t q, int hd, int rd) {
  int64_t h = q / hd, iq = q % hd;
  if (iq < rd) iq = iq % 2 ? rd / 2 + iq / 2 : iq / 2;
  return h * hd + iq;
}

double tfx_rope_inv_freq(double theta, int64_t k, int64_t rd) { return pow(theta, -2.0 * (double)k / (double)rd); }

void tfx_rope_rotate(double *x, int64_t rd, double p, double theta, tfx_rope_style style) {
  for (int64_t k = 0; k < rd / 2; k++) {
    double angle = p * tfx_rope_inv_freq(theta, k, rd), c = cos(angle), s = sin(angle);
    int64_t i0 = style == TFX_ROPE_INTERLEAVED ? 2 * k : k;
    int64_t i1 = style == TFX_ROPE_INTERLEAVED ? 2 * k + 1 : k + rd / 2;
    double x0 = x[i0], x1 = x[i1];
    x[i0] = x0 * c - x1 * s;
    x[i1] = x0 * s + x1 * c;
  }
}

int64_t tfx_packed_index(const tfx_fused *fx, int64_t R, int64_t K, int64_t r, int64_t k) {
  int ns = fx->n_segs > 0 ? fx->n_segs : 1, seg = 0;
  int64_t base = 0, rows = R;
  for (int s = 0; s < ns; s++) {
    rows = fx->n_segs > 0 ? fx->segs[s] : R;
    seg = s;
    if (r < base + rows || s == ns - 1) break;
    base += rows;
  }
  int64_t lr = r - base, P = fx->panel, kc = fx->kc;
  if (fx->perm >> seg & 1u) lr = tfx_pair_pos(lr, fx->perm_hd, fx->perm_rd);
  int64_t p0 = lr / P * P;                    /* first row of the panel */
  int64_t pr = rows - p0 < P ? rows - p0 : P; /* rows of this panel */
  int64_t jj = lr - p0, kf = K - K % kc;      /* row in the panel; columns in full chunks */
  int64_t off = (base + p0) * K;              /* panels are stored one after another */
  if (k < kf) return off + (k / kc) * pr * kc + jj * kc + k % kc;
  return off + kf * pr + jj * (K - kf) + (k - kf);
}

const char *tfx_act_name(int act) {
  switch (act) {
  case TFX_ACT_NONE: return "none";
  case TFX_ACT_SILU: return "silu";
  case TFX_ACT_GELU: return "gelu";
  case TFX_ACT_GELU_TANH: return "gelu_tanh";
  case TFX_ACT_RELU: return "relu";
  case TFX_ACT_SIGMOID: return "sigmoid";
  default: return "?";
  }
}

static int f32_rank(const tfx_type *t, int rank) { return t->dtype == TFX_DT_F32 && t->rank == rank; }
static int w_rank(const tfx_type *t, int rank) { return tfx_dtype_weight_ok(t->dtype) && t->rank == rank; }

static int segs_sum(const tfx_fused *fx, int64_t rows, char *err, size_t errlen, const char *on) {
  if (fx->n_segs < 1 || fx->n_segs > TFX_MAX_SEGS)
    return tfx_errf(err, errlen, "%s: %d segments (expected 1..%d)", on, fx->n_segs, TFX_MAX_SEGS);
  int64_t sum = 0;
  for (int s = 0; s < fx->n_segs; s++) {
    if (fx->segs[s] < 1) return tfx_errf(err, errlen, "%s: segment %d has %lld rows", on, s, (long long)fx->segs[s]);
    sum += fx->segs[s];
  }
  if (sum != rows)
    return tfx_errf(err, errlen, "%s: segments add up to %lld rows, the weight has %lld", on, (long long)sum,
                    (long long)rows);
  return 0;
}

int tfx_infer_fused_linear(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                           size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  const tfx_fused *fx = &n->fx;
  const char *on = "fused_linear";
  if (n->n_inputs != tfx_fl_n_operands(fx))
    return tfx_errf(err, errlen, "%s takes %d operands with these attributes, got %d", on, tfx_fl_n_operands(fx),
                    n->n_inputs);
  const tfx_type *x = a[0], *w = a[1];
  if (!f32_rank(x, 2) || !w_rank(w, 2) || tfx_type_has_t(w) || x->dims[1] != w->dims[1] || x->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "%s expects x : f32[M, K] and w : f32[R, K], got %s and %s", on,
                    tfx_type_str(x, s0, sizeof s0), tfx_type_str(w, s1, sizeof s1));
  int64_t M = x->dims[0], K = x->dims[1], R = w->dims[0];
  if (segs_sum(fx, R, err, errlen, on)) return -1;
  if (fx->glu && (fx->n_segs != 2 || fx->segs[0] != fx->segs[1]))
    return tfx_errf(err, errlen, "%s: glu needs two equal segments (gate, up)", on);
  if (fx->glu && fx->rope) return tfx_errf(err, errlen, "%s: glu and rope do not combine", on);
  if (fx->stats_out && (fx->stats_out < TFX_NORM_NONE || fx->stats_out > TFX_NORM_LAYER))
    return tfx_errf(err, errlen, "%s: stats_out must be rms or layer", on);
  if (fx->stats_out && tfx_fl_planar(n) ? fx->stats_seg < 0 || fx->stats_seg >= fx->n_segs : fx->stats_seg != 0)
    return tfx_errf(err, errlen, "%s: stats segment %d is not a segment of the planar output (or not 0)", on,
                    fx->stats_seg);
  if (fx->rnorm < TFX_NORM_NONE || fx->rnorm > TFX_NORM_LAYER) return tfx_errf(err, errlen, "%s: unknown rnorm", on);
  if (fx->rnorm && (!fx->residual || fx->norm))
    return tfx_errf(err, errlen, "%s: a residual norm needs a residual and no prologue", on);
  int64_t N = fx->glu ? R / 2 : R;
  if (fx->act < TFX_ACT_NONE || fx->act > TFX_ACT_SIGMOID) return tfx_errf(err, errlen, "%s: unknown activation", on);
  if (fx->norm < TFX_NORM_NONE || fx->norm > TFX_NORM_LAYER) return tfx_errf(err, errlen, "%s: unknown norm", on);
  int i = tfx_fl_operand(n, TFX_FL_BIAS);
  if (i >= 0 && (!f32_rank(a[i], 1) || a[i]->dims[0] != R))
    return tfx_errf(err, errlen, "%s: bias is %s, expected f32[%lld]", on, tfx_type_str(a[i], s0, sizeof s0),
                    (long long)R);
  if ((i = tfx_fl_operand(n, TFX_FL_STATS)) >= 0 && (!f32_rank(a[i], 2) || a[i]->dims[0] != M || a[i]->dims[1] != 2))
    return tfx_errf(err, errlen, "%s: stats are %s, expected f32[%s, 2]", on, tfx_type_str(a[i], s0, sizeof s0),
                    M == TFX_DIM_T ? "T" : "M");
  for (int role = TFX_FL_GAIN; role <= TFX_FL_NBIAS; role++)
    if ((i = tfx_fl_operand(n, (tfx_fl_role)role)) >= 0 && (!f32_rank(a[i], 1) || a[i]->dims[0] != K))
      return tfx_errf(err, errlen, "%s: norm %s is %s, expected f32[%lld]", on, role == TFX_FL_GAIN ? "gain" : "bias",
                      tfx_type_str(a[i], s0, sizeof s0), (long long)K);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){M, N});
  if ((i = tfx_fl_operand(n, TFX_FL_RESIDUAL)) >= 0 && !tfx_type_equal(a[i], out))
    return tfx_errf(err, errlen, "%s: residual is %s, expected %s", on, tfx_type_str(a[i], s0, sizeof s0),
                    tfx_type_str(out, s1, sizeof s1));
  if (fx->residual && fx->n_segs > 1 && !fx->glu)
    return tfx_errf(err, errlen, "%s: a planar output takes no residual", on);
  if ((i = tfx_fl_operand(n, TFX_FL_RSTATS)) >= 0 && (!f32_rank(a[i], 2) || a[i]->dims[0] != M || a[i]->dims[1] != 2))
    return tfx_errf(err, errlen, "%s: residual stats are %s, expected f32[%s, 2]", on,
                    tfx_type_str(a[i], s0, sizeof s0), M == TFX_DIM_T ? "T" : "M");
  for (int role = TFX_FL_RGAIN; role <= TFX_FL_RNBIAS; role++)
    if ((i = tfx_fl_operand(n, (tfx_fl_role)role)) >= 0 && (!f32_rank(a[i], 1) || a[i]->dims[0] != N))
      return tfx_errf(err, errlen, "%s: residual norm %s is %s, expected f32[%lld]", on,
                      role == TFX_FL_RGAIN ? "gain" : "bias", tfx_type_str(a[i], s0, sizeof s0), (long long)N);
  if (fx->rope) {
    if (fx->rope >> fx->n_segs) return tfx_errf(err, errlen, "%s: rope names a missing segment", on);
    if (M != TFX_DIM_T) return tfx_errf(err, errlen, "%s: rope needs x with T rows", on);
    if (n->head_dim <= 0 || n->rotary_dim <= 0 || n->rotary_dim > n->head_dim || n->rotary_dim % 2)
      return tfx_errf(err, errlen, "%s: rope head_dim %d / rotary_dim %d are invalid", on, n->head_dim, n->rotary_dim);
    if (!(n->theta > 0) || !isfinite(n->theta)) return tfx_errf(err, errlen, "%s: rope theta must be > 0", on);
    for (int s = 0; s < fx->n_segs; s++)
      if ((fx->rope >> s & 1u) && fx->segs[s] % n->head_dim)
        return tfx_errf(err, errlen, "%s: rope segment %d (%lld columns) is not whole heads of %d", on, s,
                        (long long)fx->segs[s], n->head_dim);
  }
  return 0;
}

/* a[i] must be f32[len] (i < 0: the role is absent). */
static int check_vec(const tfx_type *const *a, int i, int64_t len, const char *on, const char *what, char *err,
                     size_t errlen) {
  char s0[64];
  if (i < 0 || (f32_rank(a[i], 1) && a[i]->dims[0] == len)) return 0;
  return tfx_errf(err, errlen, "%s: %s is %s, expected f32[%lld]", on, what, tfx_type_str(a[i], s0, sizeof s0),
                  (long long)len);
}

/* a[i] must be the [rows, 2] statistics of a value of `rows` rows. */
static int check_stats(const tfx_type *const *a, int i, int64_t rows, const char *on, char *err, size_t errlen) {
  char s0[64];
  if (i < 0 || (f32_rank(a[i], 2) && a[i]->dims[0] == rows && a[i]->dims[1] == 2)) return 0;
  return tfx_errf(err, errlen, "%s: stats are %s, expected f32[%s, 2]", on, tfx_type_str(a[i], s0, sizeof s0),
                  rows == TFX_DIM_T ? "T" : "M");
}

static int check_norm_attrs(const tfx_node *n, const char *on, char *err, size_t errlen) {
  if (n->fx.norm < TFX_NORM_NONE || n->fx.norm > TFX_NORM_LAYER) return tfx_errf(err, errlen, "%s: unknown norm", on);
  if (n->fx.stats_out < TFX_NORM_NONE || n->fx.stats_out > TFX_NORM_LAYER)
    return tfx_errf(err, errlen, "%s: stats_out must be rms or layer", on);
  return 0;
}

/* the optimizer's operands and attributes of EMBEDDING, MOE_ROUTE (with the
 * router), MOE_UP and MOE_DOWN: after their base checks (ir/graph.c) */
static int operand_count(const tfx_node *n, int want, char *err, size_t errlen) {
  return tfx_errf(err, errlen, "%s takes %d operands with these attributes, got %d", tfx_op_name(n->op), want,
                  n->n_inputs);
}

int tfx_fused_embedding_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                              char *err, size_t errlen) {
  char s0[64];
  const tfx_fused *fx = &n->fx;
  const char *on = tfx_op_name(n->op);
  if (check_norm_attrs(n, on, err, errlen)) return -1;
  int64_t D = out->dims[1];
  int want = tfx_emb_n_operands(fx);
  if (n->n_inputs != want) return operand_count(n, want, err, errlen);
  if (fx->act || fx->glu || fx->residual || fx->rope || fx->rnorm || fx->router)
    return tfx_errf(err, errlen, "embedding: only positions, a row, a norm and statistics fuse into it");
  if (fx->pos_add < TFX_EMB_POS_NONE || fx->pos_add > TFX_EMB_POS_SINUSOIDAL)
    return tfx_errf(err, errlen, "embedding: unknown positions kind %d", fx->pos_add);
  int i = tfx_emb_operand(n, TFX_EMB_POS);
  if (i >= 0) {
    if (!f32_rank(a[i], 2) || tfx_type_has_t(a[i]) || a[i]->dims[1] != D)
      return tfx_errf(err, errlen, "embedding: the positions table is %s, expected f32[max_pos, %lld]",
                      tfx_type_str(a[i], s0, sizeof s0), (long long)D);
    if (a[i]->dims[0] < g->max_seq)
      return tfx_errf(err, errlen, "embedding: the positions table %s has fewer rows than max_seq = %lld",
                      tfx_type_str(a[i], s0, sizeof s0), (long long)g->max_seq);
  }
  if (fx->pos_add == TFX_EMB_POS_SINUSOIDAL && (!(n->theta > 0) || !isfinite(n->theta)))
    return tfx_errf(err, errlen, "embedding: the sinusoidal base must be > 0");
  if (check_vec(a, tfx_emb_operand(n, TFX_EMB_ROW), D, on, "the row", err, errlen) ||
      check_vec(a, tfx_emb_operand(n, TFX_EMB_GAIN), D, on, "the norm gain", err, errlen) ||
      check_vec(a, tfx_emb_operand(n, TFX_EMB_NBIAS), D, on, "the norm bias", err, errlen))
    return -1;
  if (fx->norm && (!(n->eps >= 0) || !isfinite(n->eps)))
    return tfx_errf(err, errlen, "embedding: eps must be finite and >= 0");
  return 0;
}

int tfx_fused_moe_route_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                              char *err, size_t errlen) {
  (void)g, (void)out;
  const tfx_fused *fx = &n->fx;
  const char *on = tfx_op_name(n->op);
  if (check_norm_attrs(n, on, err, errlen)) return -1;
  int64_t D = a[0]->dims[1];
  int want = 2 + (fx->norm == TFX_NORM_RMS ? 2 : fx->norm == TFX_NORM_LAYER ? 3 : 0);
  if (n->n_inputs != want) return operand_count(n, want, err, errlen);
  if (fx->act || fx->glu || fx->residual || fx->stats_out || fx->pos_add)
    return tfx_errf(err, errlen, "moe_route: only the router and a norm prologue fuse into it");
  if (check_stats(a, tfx_moe_operand(n, TFX_MOE_STATS), TFX_DIM_T, on, err, errlen) ||
      check_vec(a, tfx_moe_operand(n, TFX_MOE_GAIN), D, on, "the norm gain", err, errlen) ||
      check_vec(a, tfx_moe_operand(n, TFX_MOE_NBIAS), D, on, "the norm bias", err, errlen))
    return -1;
  return 0;
}

int tfx_fused_moe_up_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                           char *err, size_t errlen) {
  (void)g, (void)out;
  char s0[64], s1[64];
  const tfx_fused *fx = &n->fx;
  const char *on = tfx_op_name(n->op);
  if (check_norm_attrs(n, on, err, errlen)) return -1;
  int64_t K = a[0]->dims[1];
  int want = 3 + (fx->glu ? 1 : 0) + (fx->norm == TFX_NORM_RMS ? 2 : fx->norm == TFX_NORM_LAYER ? 3 : 0);
  if (n->n_inputs != want) return operand_count(n, want, err, errlen);
  if (fx->residual || fx->stats_out || fx->router || fx->pos_add)
    return tfx_errf(err, errlen, "moe_up: only a norm prologue, an activation and GLU fuse into it");
  if (fx->act < TFX_ACT_NONE || fx->act > TFX_ACT_SIGMOID) return tfx_errf(err, errlen, "moe_up: unknown activation");
  int i = tfx_moe_operand(n, TFX_MOE_W3);
  if (i >= 0 && !tfx_type_equal(a[i], a[2]))
    return tfx_errf(err, errlen, "moe_up: the up weights %s differ from the gate weights %s",
                    tfx_type_str(a[i], s0, sizeof s0), tfx_type_str(a[2], s1, sizeof s1));
  if (check_stats(a, tfx_moe_operand(n, TFX_MOE_STATS), TFX_DIM_T, on, err, errlen) ||
      check_vec(a, tfx_moe_operand(n, TFX_MOE_GAIN), K, on, "the norm gain", err, errlen) ||
      check_vec(a, tfx_moe_operand(n, TFX_MOE_NBIAS), K, on, "the norm bias", err, errlen))
    return -1;
  return 0;
}

int tfx_fused_moe_down_extra(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, const tfx_type *out,
                             char *err, size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  const tfx_fused *fx = &n->fx;
  const char *on = tfx_op_name(n->op);
  if (check_norm_attrs(n, on, err, errlen)) return -1;
  int want = 3 + (fx->residual ? 1 : 0);
  if (n->n_inputs != want) return operand_count(n, want, err, errlen);
  if (fx->norm || fx->act || fx->glu || fx->router || fx->pos_add)
    return tfx_errf(err, errlen, "moe_down: only a residual and statistics fuse into it");
  if (fx->residual && !tfx_type_equal(a[3], out))
    return tfx_errf(err, errlen, "moe_down: residual is %s, expected %s", tfx_type_str(a[3], s0, sizeof s0),
                    tfx_type_str(out, s1, sizeof s1));
  return 0;
}

int tfx_infer_norm_stats(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                         size_t errlen) {
  char s0[64];
  if (!f32_rank(a[0], 2) || a[0]->dims[1] == TFX_DIM_T)
    return tfx_errf(err, errlen, "norm_stats expects x : f32[M, K], got %s", tfx_type_str(a[0], s0, sizeof s0));
  if (n->fx.norm != TFX_NORM_RMS && n->fx.norm != TFX_NORM_LAYER)
    return tfx_errf(err, errlen, "norm_stats: norm must be rms or layer");
  if (n->fx.index == 1) {
    const tfx_node *p = &g->nodes[n->inputs[0]];
    if (tfx_stats_writer(p) != n->fx.norm)
      return tfx_errf(err, errlen,
                      "norm_stats from the epilogue: %%%d is not a fused_linear, embedding or moe_down writing %s "
                      "statistics",
                      p->id, n->fx.norm == TFX_NORM_LAYER ? "layer" : "rms");
  } else if (n->fx.index) {
    return tfx_errf(err, errlen, "norm_stats: index must be 0 or 1");
  }
  if (!(n->eps >= 0) || !isfinite(n->eps)) return tfx_errf(err, errlen, "norm_stats: eps must be finite and >= 0");
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a[0]->dims[0], 2});
  return 0;
}

int tfx_infer_slice(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                    size_t errlen) {
  const tfx_node *src = &g->nodes[n->inputs[0]];
  if (!tfx_fl_planar(src)) return tfx_errf(err, errlen, "slice: %%%d is not a planar fused_linear", src->id);
  if (n->fx.index < 0 || n->fx.index >= src->fx.n_segs)
    return tfx_errf(err, errlen, "slice: index %d is not a segment of %%%d (0..%d)", n->fx.index, src->id,
                    src->fx.n_segs - 1);
  *out = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){a[0]->dims[0], src->fx.segs[n->fx.index]});
  return 0;
}

int tfx_infer_concat(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                     size_t errlen) {
  (void)g;
  char s0[64], s1[64];
  const tfx_type *t0 = a[0];
  if (!tfx_dtype_weight_ok(t0->dtype) || (t0->rank != 1 && t0->rank != 2) || tfx_type_has_t(t0))
    return tfx_errf(err, errlen, "concat expects static weights (f32 or a storage format) of rank 1 or 2, got %s",
                    tfx_type_str(t0, s0, sizeof s0));
  int64_t rows = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    if (a[i]->dtype != t0->dtype || a[i]->rank != t0->rank || tfx_type_has_t(a[i]) ||
        (t0->rank == 2 && a[i]->dims[1] != t0->dims[1]))
      return tfx_errf(err, errlen, "concat: operand %d is %s, expected rows like %s", i,
                      tfx_type_str(a[i], s1, sizeof s1), tfx_type_str(t0, s0, sizeof s0));
    rows += a[i]->dims[0];
  }
  *out = *t0;
  out->dims[0] = rows;
  return 0;
}

int tfx_infer_pack(const tfx_graph *g, const tfx_node *n, const tfx_type *const *a, tfx_type *out, char *err,
                   size_t errlen) {
  (void)g;
  char s0[64];
  if (!w_rank(a[0], 2) || tfx_type_has_t(a[0]) || tfx_dtype_info_of(a[0]->dtype)->block != 1)
    return tfx_errf(err, errlen, "pack expects a static f32[R, K] (or an element storage format), got %s",
                    tfx_type_str(a[0], s0, sizeof s0));
  if (n->fx.panel < 1 || n->fx.kc < 1) return tfx_errf(err, errlen, "pack: panel and kc must be >= 1");
  if (segs_sum(&n->fx, a[0]->dims[0], err, errlen, "pack")) return -1;
  *out = *a[0];
  return 0;
}

static int check_perm(const tfx_fused *fx, char *err, size_t errlen) {
  if (!fx->perm) return 0;
  if (fx->perm >> fx->n_segs) return tfx_errf(err, errlen, "perm names a missing segment");
  if (fx->perm_hd < 2 || fx->perm_rd < 2 || fx->perm_rd > fx->perm_hd || fx->perm_rd % 2)
    return tfx_errf(err, errlen, "perm head_dim %d / rotary_dim %d are invalid", fx->perm_hd, fx->perm_rd);
  for (int s = 0; s < fx->n_segs; s++)
    if ((fx->perm >> s & 1u) && fx->segs[s] % fx->perm_hd)
      return tfx_errf(err, errlen, "perm segment %d is not whole heads of %d", s, fx->perm_hd);
  return 0;
}

/* the check column: a packed PARAM's layout */
int tfx_check_param(const tfx_node *n, char *err, size_t errlen) {
  if (!n->fx.panel) return 0;
  if (n->fx.panel < 0 || n->fx.kc < 1 || n->type.rank != 2)
    return tfx_errf(err, errlen, "a packed param needs rank 2, panel >= 1 and kc >= 1");
  if (segs_sum(&n->fx, n->type.dims[0], err, errlen, "packed param")) return -1;
  return check_perm(&n->fx, err, errlen);
}

int tfx_check_pack(const tfx_node *n, char *err, size_t errlen) { return check_perm(&n->fx, err, errlen); }

unsigned tfx_fl_perm(const tfx_node *n) {
  return n->op == TFX_OP_FUSED_LINEAR && n->rope_style == TFX_ROPE_HALF ? n->fx.rope : 0u;
}

static int packed_value(const tfx_node *n) {
  return (n->op == TFX_OP_PARAM && n->fx.panel > 0) || n->op == TFX_OP_PACK;
}

int tfx_fl_unrolled(const tfx_graph *g, const tfx_node *n) {
  /* auto: the looped micro-kernel (k_microkernel.c) was as fast or faster at
   * every measured size: the decode linears of stories260K stream their
   * weights at the L2 bandwidth, and straight-line code adds instruction
   * fetch (docs/performance.md, issue 16) */
  if (n->op != TFX_OP_FUSED_LINEAR || n->n_inputs < 2 || g->schedule.unroll != TFX_SCHED_UNROLL_ON) return 0;
  const tfx_node *x = &g->nodes[n->inputs[0]], *w = &g->nodes[n->inputs[1]];
  if (!packed_value(w) || w->fx.kc != 1 || w->type.dtype != TFX_DT_F32 || w->type.rank != 2) return 0;
  if (x->type.rank != 2 || x->type.dims[0] != TFX_DIM_T) return 0; /* one row per token */
  int64_t K = w->type.dims[1];
  return K <= TFX_UNROLL_MAX_K && 4 * K * w->type.dims[0] <= TFX_UNROLL_MAX_BYTES;
}

/* A packed weight w fits the fused linear n: same segments, and rows in the
 * pair order exactly for n's half-RoPE segments. */
static int layout_fits(const tfx_node *n, const tfx_node *w) {
  const tfx_fused *a = &n->fx, *b = &w->fx;
  if (a->n_segs != b->n_segs) return 0;
  for (int s = 0; s < a->n_segs; s++)
    if (a->segs[s] != b->segs[s]) return 0;
  unsigned perm = tfx_fl_perm(n);
  if (perm != b->perm) return 0;
  return !perm || (b->perm_hd == n->head_dim && b->perm_rd == n->rotary_dim);
}

/* A packed table an embedding may read: one segment of all rows, rows in
 * their order. */
static int table_layout_fits(const tfx_node *w) {
  const tfx_fused *b = &w->fx;
  return (b->n_segs <= 1 || (b->n_segs == 1 && b->segs[0] == w->type.dims[0])) && !b->perm;
}

/* Operand k of n is a statistics operand (of a prologue or a residual norm). */
static int stats_operand(const tfx_node *n, int k) {
  if (n->op == TFX_OP_FUSED_LINEAR)
    return k == tfx_fl_operand(n, TFX_FL_STATS) || k == tfx_fl_operand(n, TFX_FL_RSTATS);
  if (n->op == TFX_OP_MOE_UP || n->op == TFX_OP_MOE_ROUTE) return k == tfx_moe_operand(n, TFX_MOE_STATS);
  return 0;
}

int tfx_fused_check_uses(const tfx_graph *g, char *err, size_t errlen) {
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++) {
      const tfx_node *src = &g->nodes[n->inputs[j]];
      if (tfx_fl_planar(src) && n->op != TFX_OP_SLICE && !(n->op == TFX_OP_NORM_STATS && n->fx.index == 1))
        return tfx_errf(err, errlen, "%%%d (%s): reads the planar output of %%%d; only slice may", i,
                        tfx_op_name(n->op), src->id);
      if (packed_value(src) && !(n->op == TFX_OP_FUSED_LINEAR && j == 1 && layout_fits(n, src)) &&
          !(n->op == TFX_OP_EMBEDDING && j == 0 && table_layout_fits(src)))
        return tfx_errf(err, errlen,
                        "%%%d (%s): reads the packed weight %%%d; only fused_linear with the same segments (or "
                        "embedding, one segment) may",
                        i, tfx_op_name(n->op), src->id);
    }
  }
  /* statistics from an epilogue: exactly one norm_stats reads a producer's,
   * and only fused linears (as their stats) read that norm_stats */
  int *readers = calloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1), sizeof *readers);
  if (!readers) return tfx_errf(err, errlen, "out of memory");
  int rc = 0;
  for (int i = 0; i < g->n_nodes && !rc; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op == TFX_OP_NORM_STATS && n->fx.index == 1) readers[n->inputs[0]]++;
    for (int k = 0; k < n->n_inputs && !rc; k++) {
      const tfx_node *src = &g->nodes[n->inputs[k]];
      if (src->op == TFX_OP_NORM_STATS && src->fx.index == 1 && !stats_operand(n, k))
        rc = tfx_errf(err, errlen,
                      "%%%d (%s): reads the epilogue statistics %%%d; only the statistics operand of a "
                      "fused_linear, moe_up or moe_route may",
                      i, tfx_op_name(n->op), src->id);
    }
  }
  for (int i = 0; i < g->n_nodes && !rc; i++) {
    const tfx_node *n = &g->nodes[i];
    int want = tfx_stats_writer(n) != TFX_NORM_NONE;
    if (readers[i] != want)
      rc = tfx_errf(err, errlen, "%%%d (%s): %d norm_stats read its epilogue statistics (expected %d)", i,
                    tfx_op_name(n->op), readers[i], want);
    else if (want && i == g->output)
      rc = tfx_errf(err, errlen, "%%%d (%s): the output cannot write statistics", i, tfx_op_name(n->op));
  }
  free(readers);
  if (rc) return rc;
  if (g->output >= 0 && g->output < g->n_nodes) {
    const tfx_node *o = &g->nodes[g->output];
    if (tfx_fl_planar(o) || o->op == TFX_OP_SLICE || packed_value(o))
      return tfx_errf(err, errlen, "%%%d (%s): a planar value, a slice or a packed weight cannot be the output", o->id,
                      tfx_op_name(o->op));
  }
  return 0;
}

static void print_segs(const tfx_fused *fx, FILE *out) {
  fprintf(out, "segs = [");
  for (int s = 0; s < fx->n_segs; s++) fprintf(out, "%s%lld", s ? ", " : "", (long long)fx->segs[s]);
  fputc(']', out);
}

static void print_perm(const tfx_fused *fx, FILE *out) {
  if (!fx->perm) return;
  fprintf(out, ", pair_order = [");
  for (int s = 0, k = 0; s < fx->n_segs; s++)
    if (fx->perm >> s & 1u) fprintf(out, "%s%d", k++ ? ", " : "", s);
  fprintf(out, "] (head_dim = %d, rotary_dim = %d)", fx->perm_hd, fx->perm_rd);
}

/* Appends ", what = rmsnorm|layernorm" to buf (used bytes *u). */
static void put_norm(char *buf, size_t len, size_t *u, const char *what, int norm) {
  if (norm && *u < len)
    *u += (size_t)snprintf(buf + *u, len - *u, ", %s = %s", what, norm == TFX_NORM_LAYER ? "layernorm" : "rmsnorm");
}

static void put(char *buf, size_t len, size_t *u, const char *text) {
  if (*u < len) *u += (size_t)snprintf(buf + *u, len - *u, "%s", text);
}

void tfx_fused_moe_attrs(const tfx_node *n, char *buf, size_t len) {
  const tfx_fused *fx = &n->fx;
  size_t u = 0;
  buf[0] = 0;
  if (n->op == TFX_OP_MOE_ROUTE && fx->router) put(buf, len, &u, ", router");
  put_norm(buf, len, &u, "prologue", fx->norm);
  if (fx->act) {
    put(buf, len, &u, ", act = ");
    put(buf, len, &u, tfx_act_name(fx->act));
  }
  if (fx->glu) put(buf, len, &u, ", glu");
  if (fx->residual) put(buf, len, &u, ", residual");
  if (fx->stats_out) put(buf, len, &u, fx->stats_out == TFX_NORM_LAYER ? ", stats = layer" : ", stats = rms");
}

/* ---- the print column of the optimizer's ops and fused forms ---- */

void tfx_print_embedding(const tfx_node *n, FILE *out) {
  const tfx_fused *fx = &n->fx;
  char buf[160] = "";
  size_t u = 0;
  if (fx->pos_add == TFX_EMB_POS_TABLE) u += (size_t)snprintf(buf + u, sizeof buf - u, ", positions = table");
  if (fx->pos_add == TFX_EMB_POS_SINUSOIDAL)
    u += (size_t)snprintf(buf + u, sizeof buf - u, ", positions = sinusoidal (base = %.9g)", n->theta);
  if (fx->has_bias) u += (size_t)snprintf(buf + u, sizeof buf - u, ", row");
  if (fx->norm)
    u += (size_t)snprintf(buf + u, sizeof buf - u, ", norm = %s, eps = %.9g",
                          fx->norm == TFX_NORM_LAYER ? "layernorm" : "rmsnorm", n->eps);
  if (fx->stats_out)
    u += (size_t)snprintf(buf + u, sizeof buf - u, ", stats = %s", fx->stats_out == TFX_NORM_LAYER ? "layer" : "rms");
  if (u) fprintf(out, " {%s}", buf + 2);
}

/* MOE_UP, MOE_DOWN */
void tfx_print_moe(const tfx_node *n, FILE *out) {
  char buf[160];
  tfx_fused_moe_attrs(n, buf, sizeof buf);
  if (buf[0]) fprintf(out, " {%s}", buf + 2);
}

/* a packed PARAM's layout (nothing for a plain one) */
void tfx_print_param(const tfx_node *n, FILE *out) {
  const tfx_fused *fx = &n->fx;
  if (fx->panel > 0) {
    fprintf(out, " {layout = panel%dx%d, ", fx->panel, fx->kc);
    print_segs(fx, out);
    print_perm(fx, out);
    fputc('}', out);
  }
}

void tfx_print_norm_stats(const tfx_node *n, FILE *out) {
  const tfx_fused *fx = &n->fx;
  fprintf(out, " {norm = %s, eps = %.9g%s}", fx->norm == TFX_NORM_LAYER ? "layer" : "rms", n->eps,
          fx->index == 1 ? ", from = epilogue" : "");
}

void tfx_print_fused_linear(const tfx_node *n, FILE *out) {
  const tfx_fused *fx = &n->fx;
  fprintf(out, " {");
  if (fx->norm != TFX_NORM_NONE) fprintf(out, "prologue = %s, ", fx->norm == TFX_NORM_LAYER ? "layernorm" : "rmsnorm");
  print_segs(fx, out);
  if (fx->has_bias) fprintf(out, ", bias");
  if (fx->rope) {
    fprintf(out, ", rope = [");
    for (int s = 0, k = 0; s < fx->n_segs; s++)
      if (fx->rope >> s & 1u) fprintf(out, "%s%d", k++ ? ", " : "", s);
    fprintf(out, "] (head_dim = %d, rotary_dim = %d, theta = %.9g, style = %s)", n->head_dim, n->rotary_dim, n->theta,
            n->rope_style == TFX_ROPE_HALF ? "half" : "interleaved");
  }
  if (fx->act != TFX_ACT_NONE) fprintf(out, ", act = %s", tfx_act_name(fx->act));
  if (fx->glu) fprintf(out, ", glu");
  if (fx->residual && fx->rnorm) fprintf(out, ", residual = %s", fx->rnorm == TFX_NORM_LAYER ? "layernorm" : "rmsnorm");
  if (fx->residual && !fx->rnorm) fprintf(out, ", residual");
  if (fx->stats_out) fprintf(out, ", stats = %s", fx->stats_out == TFX_NORM_LAYER ? "layer" : "rms");
  if (fx->stats_out && tfx_fl_planar(n)) fprintf(out, " (segment %d)", fx->stats_seg);
  if (tfx_fl_planar(n)) fprintf(out, ", planar");
  fputc('}', out);
}

void tfx_print_pack(const tfx_node *n, FILE *out) {
  const tfx_fused *fx = &n->fx;
  fprintf(out, " {panel = %d, kc = %d, ", fx->panel, fx->kc);
  print_segs(fx, out);
  print_perm(fx, out);
  fputc('}', out);
}
