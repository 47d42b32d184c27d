/* frontend/builtins.c — the table of builtin ops (their positional
 * arguments, keywords with kinds and typed defaults, and how each lowers: the
 * IR op with the attribute each keyword sets, or a lowering of lower.c) and
 * the checking of a call's arguments against it. Lowering (lower.c) reads the
 * same table: a default is written once, here. */
#include <stdio.h>
#include <string.h>

#include "sema.h"

static const char *const mask_values[] = {"causal", "none", NULL};
static const char *const style_values[] = {"interleaved", "half", NULL};
static const char *const approx_values[] = {"none", "tanh", NULL};
static const char *const glu_act_values[] = {"sigmoid", "relu", "gelu", "gelu_tanh", "silu", "none", NULL};
static const char *const moe_act_values[] = {"silu", "sigmoid", "relu", "gelu", "gelu_tanh", "none", NULL};
static const char *const moe_gate_values[] = {"softmax_topk", "softmax", NULL};
static const char *const qk_norm_values[] = {"rmsnorm", "layernorm", NULL};

#define TENSOR(n)                                                                                                      \
  { n, TFX_FE_KW_TENSOR, 0, NULL, NULL, 0, 0, 0 }
/* a keyword with no typed default and no attribute (lowered by a lowering of lower.c) */
#define KW(name, kind, required, values, dflt)                                                                         \
  { name, kind, required, values, dflt, 0, 0, 0 }

/* one keyword per line */
/* clang-format off */
static const tfx_fe_opspec ops[] = {
    {"embedding", 2, 2, {"table", "ids"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_EMBEDDING},
    {"linear", 2, 3, {"x", "w", "b"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_LINEAR},
    {"matmul", 2, 2, {"a", "b"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_MATMUL},
    {"rmsnorm", 2, 2, {"x", "g"}, {TFX_FE_NUM_ATTR("eps", 1e-5, EPS)}, 1, TFX_FE_LOWER_OP, TFX_OP_RMSNORM},
    {"layernorm", 3, 3, {"x", "g", "b"}, {TFX_FE_NUM_ATTR("eps", 1e-5, EPS)}, 1, TFX_FE_LOWER_OP, TFX_OP_LAYERNORM},
    {"silu", 1, 1, {"x"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_SILU},
    {"gelu", 1, 1, {"x"}, {TFX_FE_ENUM_ATTR("approximate", approx_values, GELU_TANH)}, 1, TFX_FE_LOWER_OP, TFX_OP_GELU},
    {"relu", 1, 1, {"x"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_RELU},
    {"softmax", 1, 1, {"x"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_SOFTMAX},
    {"rope",
     1,
     1,
     {"x"},
     {KW("heads", TFX_FE_KW_INT, 1, NULL, "H"),
      TFX_FE_NUM_KW("theta", 10000),
      KW("style", TFX_FE_KW_ENUM, 0, style_values, "interleaved"),
      KW("rotary_dim", TFX_FE_KW_INT, 0, NULL, "head_dim"),
      TENSOR("segments")},
     5,
     TFX_FE_LOWER_ROPE,
     TFX_OP_COUNT},
    {"attention",
     5,
     5,
     {"x", "wq", "wk", "wv", "wo"},
     {KW("heads", TFX_FE_KW_INT, 1, NULL, "H"),
      KW("kv_heads", TFX_FE_KW_INT, 0, NULL, "heads"),
      KW("position", TFX_FE_KW_POSITION, 0, NULL, "none"),
      KW("mask", TFX_FE_KW_ENUM, 1, mask_values, "causal|none"),
      TENSOR("bq"),
      TENSOR("bk"),
      TENSOR("bv"),
      TENSOR("bo"),
      TENSOR("memory"),
      KW("sparse", TFX_FE_KW_SPARSE, 0, NULL, "none"),
      KW("scale", TFX_FE_KW_NUM_OR_NONE, 0, NULL, "1/sqrt(head_dim)"),
      TENSOR("q_norm"),
      TENSOR("k_norm"),
      KW("qk_norm", TFX_FE_KW_ENUM, 0, qk_norm_values, "rmsnorm"),
      TENSOR("q_norm_b"),
      TENSOR("k_norm_b"),
      TFX_FE_NUM_KW("norm_eps", 1e-6),
      KW("softcap", TFX_FE_KW_NUM_OR_NONE, 0, NULL, "none"),
      TENSOR("key_mask"),
      TENSOR("segments"),
      TENSOR("global_q"),
      TENSOR("global_k"),
      TENSOR("global_v")},
     23,
     TFX_FE_LOWER_ATTENTION,
     TFX_OP_COUNT},
    {"attend",
     3,
     3,
     {"q", "k", "v"},
     {KW("heads", TFX_FE_KW_INT, 1, NULL, "H"),
      KW("kv_heads", TFX_FE_KW_INT, 0, NULL, "heads"),
      KW("mask", TFX_FE_KW_ENUM, 1, mask_values, "causal|none"),
      KW("sparse", TFX_FE_KW_SPARSE, 0, NULL, "none"),
      KW("scale", TFX_FE_KW_NUM_OR_NONE, 0, NULL, "1/sqrt(head_dim)"),
      KW("softcap", TFX_FE_KW_NUM_OR_NONE, 0, NULL, "none"),
      TENSOR("key_mask"),
      TENSOR("segments"),
      TENSOR("global_q"),
      TENSOR("global_k"),
      TENSOR("global_v")},
     11,
     TFX_FE_LOWER_ATTEND,
     TFX_OP_COUNT},
    {"mla_attention",
     5,
     5,
     {"x", "wq", "wkv_a", "wkv_b", "wo"},
     {KW("heads", TFX_FE_KW_INT, 1, NULL, "H"),
      KW("rope_dim", TFX_FE_KW_INT, 1, NULL, "dr"),
      KW("position", TFX_FE_KW_POSITION, 0, NULL, "rope()"),
      KW("mask", TFX_FE_KW_ENUM, 1, mask_values, "causal"),
      KW("sparse", TFX_FE_KW_SPARSE, 0, NULL, "none"),
      TENSOR("kv_norm"),
      TFX_FE_NUM_KW("eps", 1e-6),
      TENSOR("wq_a"),
      TENSOR("q_norm")},
     9,
     TFX_FE_LOWER_MLA,
     TFX_OP_COUNT},
    {"sigmoid", 1, 1, {"x"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_SIGMOID},
    {"softcap", 1, 1, {"x"}, {{"cap", TFX_FE_KW_NUM, 1, NULL, "c", 0, 1, TFX_ATTR_SOFTCAP}}, 1, TFX_FE_LOWER_OP, TFX_OP_SOFTCAP},
    /* tanh(x) is softcap(x, cap = 1): 1 * tanh(x / 1) is tanh(x) exactly (lower_ir_op sets the cap) */
    {"tanh", 1, 1, {"x"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_SOFTCAP},
    {"glu",
     3,
     3,
     {"x", "w1", "w3"},
     {KW("act", TFX_FE_KW_ENUM, 0, glu_act_values, "sigmoid"), TENSOR("b1"), TENSOR("b3")},
     3,
     TFX_FE_LOWER_GLU,
     TFX_OP_COUNT},
    {"positions", 2, 2, {"table", "x"}, {{"offset", TFX_FE_KW_INT, 0, NULL, "0", 0, 1, TFX_ATTR_POS_OFFSET}, TENSOR("segments"), {"pad", TFX_FE_KW_INT, 0, NULL, "none", 0, 0, TFX_ATTR_PAD_ID}}, 3, TFX_FE_LOWER_OP, TFX_OP_POSITIONS},
    {"sinusoidal", 1, 1, {"x"}, {TFX_FE_NUM_ATTR("base", 10000, THETA)}, 1, TFX_FE_LOWER_OP, TFX_OP_SINUSOIDAL},
    {"moe",
     4,
     5,
     {"x", "router", "w1", "w2", "w3"},
     {KW("top_k", TFX_FE_KW_INT, 1, NULL, "k"),
      KW("experts", TFX_FE_KW_INT, 0, NULL, "rows of router"),
      KW("act", TFX_FE_KW_ENUM, 0, moe_act_values, "silu"),
      KW("gate", TFX_FE_KW_ENUM, 0, moe_gate_values, "softmax_topk"),
      KW("capacity", TFX_FE_KW_NUM, 0, NULL, "none"),
      TENSOR("shared_w1"),
      TENSOR("shared_w2"),
      TENSOR("shared_w3")},
     8,
     TFX_FE_LOWER_MOE,
     TFX_OP_COUNT},
    {"seq_project", 2, 2, {"e", "x"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_SEQ_PROJECT},
    /* concat(a, b, ...): the rows side by side (the IR's concat_cols; its inference checks the leading dims) */
    {"concat", 2, TFX_FE_MAX_POS, {"a", "b", "c", "d", "e", "f", "g", "h"}, {{0}}, 0, TFX_FE_LOWER_OP, TFX_OP_CONCAT_COLS},
    {"retention", 3, 3, {"q", "k", "v"}, {KW("heads", TFX_FE_KW_INT, 1, NULL, "H"), TENSOR("gamma")}, 2, TFX_FE_LOWER_HEADS, TFX_OP_RETENTION},
    {"infini_attention",
     4,
     4,
     {"q", "k", "v", "beta"},
     {KW("heads", TFX_FE_KW_INT, 1, NULL, "H"),
      KW("segment", TFX_FE_KW_INT, 1, NULL, "N")},
     2,
     TFX_FE_LOWER_HEADS,
     TFX_OP_INFINI_ATTENTION},
    {"groupnorm",
     3,
     3,
     {"x", "g", "b"},
     {KW("groups", TFX_FE_KW_INT, 1, NULL, "G"),
      TFX_FE_NUM_KW("eps", 1e-5)},
     2,
     TFX_FE_LOWER_HEADS,
     TFX_OP_GROUPNORM},
};
/* clang-format on */

static const tfx_fe_opspec position_rope = {"rope",
                                            0,
                                            0,
                                            {NULL},
                                            {TFX_FE_NUM_KW("theta", 10000),
                                             KW("style", TFX_FE_KW_ENUM, 0, style_values, "interleaved"),
                                             KW("rotary_dim", TFX_FE_KW_INT, 0, NULL, "head_dim")},
                                            3,
                                            TFX_FE_LOWER_ROPE,
                                            TFX_OP_COUNT};

static const char *const bool_values[] = {"true", "false", NULL};
/* position = t5(table, buckets = .., max_distance = 128, bidirectional = ..):
 * T5's relative position bias, table f32[buckets, heads] */
static const tfx_fe_opspec position_t5 = {"t5",
                                          1,
                                          1,
                                          {"table"},
                                          {KW("buckets", TFX_FE_KW_INT, 0, NULL, "rows of table"),
                                           KW("max_distance", TFX_FE_KW_INT, 0, NULL, "128"),
                                           KW("bidirectional", TFX_FE_KW_ENUM, 0, bool_values, "mask = none")},
                                          3,
                                          TFX_FE_LOWER_OP,
                                          TFX_OP_COUNT};

const tfx_fe_opspec *tfx_fe_position_t5(void) { return &position_t5; }

const tfx_fe_opspec *tfx_fe_builtin(const char *name) {
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(ops[i].name, name)) return &ops[i];
  return NULL;
}

const char *tfx_fe_builtin_at(int i) { return i >= 0 && (size_t)i < sizeof ops / sizeof ops[0] ? ops[i].name : NULL; }

const tfx_fe_opspec *tfx_fe_position_rope(void) { return &position_rope; }

const tfx_fe_kwspec *tfx_fe_kwspec_of(const tfx_fe_opspec *op, const char *key) {
  for (int i = 0; i < op->n_kw; i++)
    if (!strcmp(op->kw[i].name, key)) return &op->kw[i];
  return NULL;
}

void tfx_fe_signature(const tfx_fe_opspec *op, char *buf, size_t len) {
  size_t used = (size_t)snprintf(buf, len, "%s(", op->name);
  int first = 1;
  for (int i = 0; i < op->max_pos && used < len; i++, first = 0)
    used += (size_t)snprintf(buf + used, len - used, "%s%s%s%s", first ? "" : ", ", i >= op->min_pos ? "[" : "",
                             op->pos[i], i >= op->min_pos ? "]" : "");
  for (int i = 0; i < op->n_kw && used < len; i++, first = 0) {
    const tfx_fe_kwspec *k = &op->kw[i];
    if (k->kind == TFX_FE_KW_TENSOR) continue;
    const char *d = k->dflt ? k->dflt : k->values ? k->values[0] : "?"; /* an enum: its first value */
    used += (size_t)snprintf(buf + used, len - used, "%s%s = %s", first ? "" : ", ", k->name, d);
  }
  if (used < len) snprintf(buf + used, len - used, ")");
}

const tfx_fe_arg *tfx_fe_kwarg(const tfx_fe_arg *args, const char *key) {
  for (const tfx_fe_arg *a = args; a; a = a->next)
    if (a->key && !strcmp(a->key, key)) return a;
  return NULL;
}

const tfx_fe_arg *tfx_fe_posarg(const tfx_fe_arg *args, int i) {
  for (const tfx_fe_arg *a = args; a; a = a->next)
    if (!a->key && i-- == 0) return a;
  return NULL;
}

int tfx_fe_count_pos(const tfx_fe_arg *args) {
  int n = 0;
  for (const tfx_fe_arg *a = args; a; a = a->next) n += !a->key;
  return n;
}

static void list_values(const char *const *values, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = 0;
  for (int i = 0; values[i] && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i == 0 ? "" : values[i + 1] ? ", " : " or ", values[i]);
}

static int check_value(tfx_fe_sema *s, const tfx_fe_opspec *op, const tfx_fe_kwspec *k, const tfx_fe_arg *a,
                       tfx_fe_check_tensor_fn check_tensor, void *ctx) {
  const tfx_fe_expr *v = a->value;
  char buf[256];
  switch (k->kind) {
  case TFX_FE_KW_TENSOR: return check_tensor(ctx, v);
  case TFX_FE_KW_INT: {
    int64_t i;
    snprintf(buf, sizeof buf, "%s's %s", op->name, k->name);
    if (tfx_fe_eval_int(s, v, !strcmp(k->name, "offset") || !strcmp(k->name, "pad") ? 0 : 1, buf, &i)) return 1;
    if (i > INT32_MAX) {
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "%s is too large", buf);
      return 1;
    }
    return 0;
  }
  case TFX_FE_KW_NUM_OR_NONE:
    if (v->kind == TFX_FE_EXPR_NAME && !strcmp(v->str, "none")) return 0;
    if (!strcmp(k->name, "scale") || !strcmp(k->name, "softcap")) {
      tfx_fe_value val;
      if (tfx_fe_eval(s, v, &val)) return 1;
      double f = tfx_fe_value_f(val);
      if (!(f > 0 && f < 1e30)) {
        tfx_fe_error(s->diag, v->loc.line, v->loc.col, "%s's %s must be > 0 (or none: %s), got %g", op->name, k->name,
                     strcmp(k->name, "scale") ? "no soft-capping" : "no scaling", f);
        return 1;
      }
    }
    return 0;
  case TFX_FE_KW_NUM: {
    tfx_fe_value val;
    if (tfx_fe_eval(s, v, &val)) return 1;
    double f = tfx_fe_value_f(val);
    if (!strcmp(k->name, "theta") && !(f > 0)) {
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "%s's theta must be > 0, got %g", op->name, f);
      return 1;
    }
    if (!strcmp(k->name, "base") && !(f > 0 && f <= 1e300)) {
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "%s's base must be > 0, got %g", op->name, f);
      return 1;
    }
    if (!strcmp(k->name, "capacity") && !(f > 0 && f <= 1e6)) {
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "%s's capacity must be > 0 and at most 1e6, got %g", op->name, f);
      return 1;
    }
    if (!strcmp(k->name, "cap") && !(f > 0 && f < 1e30)) {
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "%s's cap must be > 0, got %g", op->name, f);
      return 1;
    }
    if (!strcmp(k->name, "eps") && !(f >= 0)) {
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "%s's eps must be >= 0, got %g", op->name, f);
      return 1;
    }
    return 0;
  }
  case TFX_FE_KW_ENUM: {
    list_values(k->values, buf, sizeof buf);
    if (v->kind == TFX_FE_EXPR_NAME)
      for (int i = 0; k->values[i]; i++)
        if (!strcmp(v->str, k->values[i])) return 0;
    if (v->kind == TFX_FE_EXPR_NAME)
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "bad value '%s' for %s's %s: expected %s", v->str, op->name,
                   k->name, buf);
    else
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "bad value for %s's %s: expected %s", op->name, k->name, buf);
    return 1;
  }
  case TFX_FE_KW_POSITION:
    if (v->kind == TFX_FE_EXPR_NAME && (!strcmp(v->str, "none") || !strcmp(v->str, "alibi"))) return 0;
    if (v->kind == TFX_FE_EXPR_CALL && !strcmp(v->str, "rope"))
      return tfx_fe_check_call(s, &position_rope, v, check_tensor, ctx);
    if (v->kind == TFX_FE_EXPR_CALL && !strcmp(v->str, "t5") && !strcmp(op->name, "attention"))
      return tfx_fe_check_call(s, &position_t5, v, check_tensor, ctx);
    tfx_fe_error(
        s->diag, v->loc.line, v->loc.col,
        "bad value for %s's position: expected none, alibi, rope(theta = .., style = .., rotary_dim = ..)%s", op->name,
        strcmp(op->name, "attention") ? "" : " or t5(table, buckets = .., max_distance = .., bidirectional = ..)");
    return 1;
  case TFX_FE_KW_SPARSE: return tfx_fe_check_sparse(s, op->name, v);
  }
  return 0;
}

int tfx_fe_check_call(tfx_fe_sema *s, const tfx_fe_opspec *op, const tfx_fe_expr *call,
                      tfx_fe_check_tensor_fn check_tensor, void *ctx) {
  int errors = 0, npos = 0, seen_kw = 0;
  char sig[256];
  tfx_fe_signature(op, sig, sizeof sig);
  for (const tfx_fe_arg *a = call->args; a; a = a->next) {
    if (!a->key) {
      if (seen_kw) {
        tfx_fe_error(s->diag, a->loc.line, a->loc.col, "positional argument after keyword arguments in %s", sig);
        errors++;
      } else if (npos == op->max_pos) {
        if (op->max_pos == 0)
          tfx_fe_error(s->diag, a->loc.line, a->loc.col, "%s takes only keyword arguments: %s", op->name, sig);
        else
          tfx_fe_error(s->diag, a->loc.line, a->loc.col, "too many arguments: %s takes %d positional argument%s: %s",
                       op->name, op->max_pos, op->max_pos == 1 ? "" : "s", sig);
        errors++;
      } else {
        errors += check_tensor(ctx, a->value);
      }
      npos++;
      continue;
    }
    seen_kw = 1;
    const tfx_fe_kwspec *k = NULL;
    for (int i = 0; i < op->n_kw; i++)
      if (!strcmp(op->kw[i].name, a->key)) k = &op->kw[i];
    if (!k) {
      char allowed[200];
      size_t used = 0;
      allowed[0] = 0;
      for (int i = 0; i < op->n_kw && used < sizeof allowed; i++)
        used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? ", " : "", op->kw[i].name);
      if (op->n_kw)
        tfx_fe_error(s->diag, a->loc.line, a->loc.col, "unknown keyword '%s' for %s (allowed: %s)", a->key, op->name,
                     allowed);
      else
        tfx_fe_error(s->diag, a->loc.line, a->loc.col, "unknown keyword '%s': %s takes no keywords", a->key, op->name);
      errors++;
      continue;
    }
    if (tfx_fe_kwarg(call->args, a->key) != a) {
      tfx_fe_error(s->diag, a->loc.line, a->loc.col, "keyword '%s' is given twice", a->key);
      errors++;
      continue;
    }
    errors += check_value(s, op, k, a, check_tensor, ctx);
  }
  if (npos < op->min_pos) {
    tfx_fe_error(s->diag, call->loc.line, call->loc.col, "missing argument '%s' of %s", op->pos[npos], sig);
    errors++;
  }
  for (int i = 0; i < op->n_kw; i++)
    if (op->kw[i].required && !tfx_fe_kwarg(call->args, op->kw[i].name)) {
      char buf[128] = "";
      if (op->kw[i].values) list_values(op->kw[i].values, buf, sizeof buf);
      tfx_fe_error(s->diag, call->loc.line, call->loc.col, "missing keyword '%s' of %s%s%s%s", op->kw[i].name, op->name,
                   buf[0] ? " (" : "", buf, buf[0] ? ")" : "");
      errors++;
    }
  return errors;
}
