/* frontend/attn_options.c — the `sparse = ...` option of attention and
 * mla_attention: the table of sparse patterns (their arguments, positional or
 * by name, with minimums and defaults), checking a pattern expression with
 * errors at the offending argument, and turning a checked one into the IR's
 * tfx_sparse. The patterns' meaning is ir/attention.c's. */
#include <stdio.h>
#include <string.h>

#include "sema.h"

#define MAX_ARGS 4
#define MAX_RANDOM 64 /* as ir/attention.c */

typedef struct {
  const char *name;
  int n; /* arguments, in positional order; the first is required */
  const char *arg[MAX_ARGS];
  int64_t min[MAX_ARGS];
  int64_t dflt[MAX_ARGS];
} pattern_spec;

static const pattern_spec patterns[] = {
    {"sliding", 1, {"window"}, {1}, {0}},
    {"dilated", 2, {"dilation", "window"}, {1, 0}, {0, 0}},
    {"strided", 1, {"stride"}, {1}, {0}},
    {"fixed", 2, {"stride", "summary"}, {1, 1}, {0, 1}},
    {"longformer", 3, {"window", "global", "dilation"}, {1, 0, 1}, {0, 0, 1}},
    {"bigbird", 4, {"block_size", "global", "random", "seed"}, {1, 0, 0, 0}, {0, 1, 1, 0}},
};
#define N_PATTERNS (int)(sizeof patterns / sizeof patterns[0])

static const char *const k_expected =
    "none, sliding(window), dilated(dilation, window = 0), strided(stride), fixed(stride, summary = 1), "
    "longformer(window, global = 0 | tokens(p, ...), dilation = 1) or bigbird(block_size, global = 1, random = 1, "
    "seed = 0)";

static const pattern_spec *find_pattern(const char *name) {
  for (int i = 0; i < N_PATTERNS; i++)
    if (!strcmp(patterns[i].name, name)) return &patterns[i];
  return NULL;
}

/* The argument expressions of a pattern call by index (NULL when absent);
 * reports unknown, repeated and missing arguments. Returns the errors. */
static int collect(tfx_fe_sema *s, const pattern_spec *p, const tfx_fe_expr *call, const tfx_fe_expr **val) {
  int errors = 0, npos = 0, seen_kw = 0;
  for (int i = 0; i < MAX_ARGS; i++) val[i] = NULL;
  for (const tfx_fe_arg *a = call->args; a; a = a->next) {
    int idx = -1;
    if (!a->key) {
      if (seen_kw) {
        tfx_fe_error(s->diag, a->loc.line, a->loc.col, "positional argument after keyword arguments in %s(...)",
                     p->name);
        errors++;
        continue;
      }
      if (npos >= p->n) {
        tfx_fe_error(s->diag, a->loc.line, a->loc.col, "too many arguments: %s takes at most %d", p->name, p->n);
        errors++;
        continue;
      }
      idx = npos++;
    } else {
      seen_kw = 1;
      for (int i = 0; i < p->n; i++)
        if (!strcmp(p->arg[i], a->key)) idx = i;
      if (idx < 0) {
        char allowed[96] = "";
        size_t used = 0;
        for (int i = 0; i < p->n && used < sizeof allowed; i++)
          used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? ", " : "", p->arg[i]);
        tfx_fe_error(s->diag, a->loc.line, a->loc.col, "unknown argument '%s' of %s (allowed: %s)", a->key, p->name,
                     allowed);
        errors++;
        continue;
      }
    }
    if (val[idx]) {
      tfx_fe_error(s->diag, a->loc.line, a->loc.col, "argument '%s' of %s is given twice", p->arg[idx], p->name);
      errors++;
      continue;
    }
    val[idx] = a->value;
  }
  if (!val[0] && !errors) {
    tfx_fe_error(s->diag, call->loc.line, call->loc.col, "missing argument '%s' of %s", p->arg[0], p->name);
    errors++;
  }
  return errors;
}

/* An integer argument in [min, max]. */
static int check_int(tfx_fe_sema *s, const pattern_spec *p, int i, const tfx_fe_expr *e, int64_t max, int64_t *out) {
  char what[64];
  snprintf(what, sizeof what, "%s's %s", p->name, p->arg[i]);
  if (tfx_fe_eval_int(s, e, p->min[i], what, out)) return 1;
  if (*out > max) {
    tfx_fe_error(s->diag, e->loc.line, e->loc.col, "%s must be at most %lld, got %lld", what, (long long)max,
                 (long long)*out);
    return 1;
  }
  return 0;
}

/* tokens(p0, p1, ...): 1..TFX_MAX_GLOBAL_TOKENS positions >= 0. */
static int check_tokens(tfx_fe_sema *s, const tfx_fe_expr *e, int *list, int *n) {
  int errors = 0, count = 0;
  for (const tfx_fe_arg *a = e->args; a; a = a->next) {
    if (a->key) {
      tfx_fe_error(s->diag, a->loc.line, a->loc.col, "tokens(...) takes positions, not '%s = ...'", a->key);
      errors++;
      continue;
    }
    if (count == TFX_MAX_GLOBAL_TOKENS) {
      tfx_fe_error(s->diag, a->loc.line, a->loc.col, "tokens(...) takes at most %d positions", TFX_MAX_GLOBAL_TOKENS);
      return errors + 1;
    }
    int64_t v;
    if (tfx_fe_eval_int(s, a->value, 0, "a global token position", &v)) {
      errors++;
      continue;
    }
    if (v > INT32_MAX) {
      tfx_fe_error(s->diag, a->value->loc.line, a->value->loc.col, "global token position %lld is too large",
                   (long long)v);
      errors++;
      continue;
    }
    if (list) list[count] = (int)v;
    count++;
  }
  if (!count && !errors) {
    tfx_fe_error(s->diag, e->loc.line, e->loc.col, "tokens(...) needs at least one position");
    errors++;
  }
  *n = count;
  return errors;
}

/* longformer's `global = m`: a name that is no constant names a tensor, the per-call global tokens. */
static int is_tensor_name(tfx_fe_sema *s, const tfx_fe_expr *e) {
  return e->kind == TFX_FE_EXPR_NAME && strcmp(e->str, "T") && !tfx_fe_sym_find(&s->consts, e->str) &&
         !tfx_fe_sym_find(&s->all_consts, e->str);
}

const tfx_fe_expr *tfx_fe_sparse_global_expr(tfx_fe_sema *s, const tfx_fe_expr *v) {
  const pattern_spec *p = v && v->kind == TFX_FE_EXPR_CALL ? find_pattern(v->str) : NULL;
  if (!p || strcmp(p->name, "longformer")) return NULL;
  const tfx_fe_expr *val[MAX_ARGS];
  if (collect(s, p, v, val)) return NULL;
  return val[1] && is_tensor_name(s, val[1]) ? val[1] : NULL;
}

/* Checks (and with out, converts) a pattern expression. */
static int convert(tfx_fe_sema *s, const char *opname, const tfx_fe_expr *v, tfx_sparse *out) {
  tfx_sparse sp;
  memset(&sp, 0, sizeof sp);
  if (v->kind == TFX_FE_EXPR_NAME && !strcmp(v->str, "none")) {
    if (out) *out = sp;
    return 0;
  }
  const pattern_spec *p = v->kind == TFX_FE_EXPR_CALL ? find_pattern(v->str) : NULL;
  if (!p) {
    if (v->kind == TFX_FE_EXPR_CALL || v->kind == TFX_FE_EXPR_NAME)
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "unknown sparse pattern '%s' for %s: expected %s", v->str, opname,
                   k_expected);
    else
      tfx_fe_error(s->diag, v->loc.line, v->loc.col, "bad value for %s's sparse: expected %s", opname, k_expected);
    return 1;
  }
  const tfx_fe_expr *val[MAX_ARGS];
  int errors = collect(s, p, v, val);
  if (errors) return errors;
  int64_t x[MAX_ARGS];
  for (int i = 0; i < p->n; i++) {
    x[i] = p->dflt[i];
    if (!val[i]) continue;
    if (!strcmp(p->name, "longformer") && i == 1 && is_tensor_name(s, val[i])) {
      sp.global_input = 1; /* per-call global tokens: the lowering takes the tensor (tfx_fe_sparse_global_expr) */
      x[i] = 0;
      continue;
    }
    if (!strcmp(p->name, "longformer") && i == 1 && val[i]->kind == TFX_FE_EXPR_CALL) {
      if (strcmp(val[i]->str, "tokens")) {
        tfx_fe_error(s->diag, val[i]->loc.line, val[i]->loc.col,
                     "longformer's global is a count of leading tokens or tokens(p, ...), not %s(...)", val[i]->str);
        errors++;
      } else {
        errors += check_tokens(s, val[i], sp.global_list, &sp.n_global_list);
      }
      x[i] = 0;
      continue;
    }
    int64_t max = !strcmp(p->arg[i], "seed") ? INT64_MAX : !strcmp(p->arg[i], "random") ? MAX_RANDOM : INT32_MAX;
    errors += check_int(s, p, i, val[i], max, &x[i]);
  }
  if (errors) return errors;
  if (!strcmp(p->name, "sliding")) {
    sp.kind = TFX_SPARSE_SLIDING, sp.window = (int)x[0];
  } else if (!strcmp(p->name, "dilated")) {
    sp.kind = TFX_SPARSE_DILATED, sp.dilation = (int)x[0], sp.window = (int)x[1];
  } else if (!strcmp(p->name, "strided")) {
    sp.kind = TFX_SPARSE_STRIDED, sp.stride = (int)x[0];
  } else if (!strcmp(p->name, "fixed")) {
    sp.kind = TFX_SPARSE_FIXED, sp.stride = (int)x[0], sp.summary = (int)x[1];
    if (sp.summary > sp.stride) {
      const tfx_fe_expr *e = val[1] ? val[1] : v;
      tfx_fe_error(s->diag, e->loc.line, e->loc.col, "fixed's summary (%d) must be at most its stride (%d)", sp.summary,
                   sp.stride);
      return 1;
    }
  } else if (!strcmp(p->name, "longformer")) {
    sp.kind = TFX_SPARSE_LONGFORMER, sp.window = (int)x[0], sp.n_global = (int)x[1], sp.dilation = (int)x[2];
  } else {
    sp.kind = TFX_SPARSE_BIGBIRD, sp.block = (int)x[0], sp.n_global = (int)x[1], sp.random = (int)x[2];
    sp.seed = (uint64_t)x[3];
  }
  if (out) *out = sp;
  return 0;
}

int tfx_fe_check_sparse(tfx_fe_sema *s, const char *opname, const tfx_fe_expr *v) {
  return convert(s, opname, v, NULL);
}

int tfx_fe_lower_sparse(tfx_fe_sema *s, const char *opname, const tfx_fe_expr *v, tfx_sparse *out) {
  return convert(s, opname, v, out);
}
