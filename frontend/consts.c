/* frontend/consts.c — constant expressions and types: evaluation of
 * `const` definitions, keyword values and dimensions (numbers, constants,
 * + - * /, sqrt(x)), with integer
 * arithmetic for integers, overflow and division-by-zero errors, and the
 * checks on T and on dimensions. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sema.h"

double tfx_fe_value_f(tfx_fe_value v) { return v.is_float ? v.f : (double)v.i; }

/* A float for messages, "8.0" rather than "8" so it reads as one. */
static const char *float_str(double f, char *buf, size_t len) {
  snprintf(buf, len, f == floor(f) && fabs(f) < 1e15 ? "%.1f" : "%g", f);
  return buf;
}

/* Reports an error at loc and evaluates to -1. */
#define ERR(s, loc, ...) (tfx_fe_error((s)->diag, (loc).line, (loc).col, __VA_ARGS__), -1)

static int eval_name(tfx_fe_sema *s, const tfx_fe_expr *e, tfx_fe_value *out) {
  tfx_fe_sym *c = tfx_fe_sym_find(&s->consts, e->str);
  if (c) {
    tfx_fe_constsym *cs = c->ptr;
    if (!cs->ok) return -1; /* its own error was reported */
    *out = cs->value;
    return 0;
  }
  if (!strcmp(e->str, "T")) return ERR(s, e->loc, "T (the number of tokens) can only be a whole dimension of a type");
  tfx_fe_sym *later = tfx_fe_sym_find(&s->all_consts, e->str);
  if (later) {
    const tfx_fe_const *d = later->ptr;
    tfx_fe_error(s->diag, e->loc.line, e->loc.col, "constant '%s' is used before its definition", e->str);
    tfx_fe_note(s->diag, d->loc.line, d->loc.col, "'%s' is defined here", e->str);
    return -1;
  }
  if (tfx_fe_sym_find(&s->globals, e->str))
    return ERR(s, e->loc, "'%s' is not a constant (a constant expression is expected here)", e->str);
  return ERR(s, e->loc, "undefined constant '%s'", e->str);
}

int tfx_fe_eval(tfx_fe_sema *s, const tfx_fe_expr *e, tfx_fe_value *out) {
  memset(out, 0, sizeof *out);
  if (!e) return -1;
  switch (e->kind) {
  case TFX_FE_EXPR_INT: out->i = e->ival; return 0;
  case TFX_FE_EXPR_FLOAT:
    out->is_float = 1;
    out->f = e->fval;
    if (!isfinite(e->fval)) return ERR(s, e->loc, "number out of range");
    return 0;
  case TFX_FE_EXPR_NAME: return eval_name(s, e, out);
  case TFX_FE_EXPR_STRING: return ERR(s, e->loc, "expected a number, got a string");
  case TFX_FE_EXPR_CALL:
    if (!strcmp(e->str, "sqrt")) { /* sqrt(x): a float, x >= 0 */
      tfx_fe_value v;
      if (!e->args || e->args->next || e->args->key) return ERR(s, e->loc, "sqrt takes one argument: sqrt(x)");
      if (tfx_fe_eval(s, e->args->value, &v)) return -1;
      double x = tfx_fe_value_f(v);
      if (x < 0) return ERR(s, e->args->value->loc, "sqrt of a negative number (%g)", x);
      out->is_float = 1;
      out->f = sqrt(x);
      return 0;
    }
    /* fall through */
  case TFX_FE_EXPR_INDEX: return ERR(s, e->loc, "expected a constant expression, got a slice of a tensor");
  case TFX_FE_EXPR_REPEAT:
    return ERR(s, e->loc, "expected a constant expression, got a call of '%s'",
               e->kind == TFX_FE_EXPR_CALL ? e->str : "repeat");
  case TFX_FE_EXPR_NEG: {
    tfx_fe_value v;
    if (tfx_fe_eval(s, e->lhs, &v)) return -1;
    if (v.is_float) {
      out->is_float = 1;
      out->f = -v.f;
    } else if (v.i == INT64_MIN) {
      return ERR(s, e->loc, "integer overflow in constant expression");
    } else {
      out->i = -v.i;
    }
    return 0;
  }
  case TFX_FE_EXPR_BINARY: {
    tfx_fe_value a, b;
    int ra = tfx_fe_eval(s, e->lhs, &a), rb = tfx_fe_eval(s, e->rhs, &b);
    if (ra || rb) return -1;
    if (a.is_float || b.is_float) {
      double x = tfx_fe_value_f(a), y = tfx_fe_value_f(b), r;
      switch (e->op) {
      case '+': r = x + y; break;
      case '-': r = x - y; break;
      case '*': r = x * y; break;
      default:
        if (y == 0) return ERR(s, e->loc, "division by zero in constant expression");
        r = x / y;
        break;
      }
      if (!isfinite(r)) return ERR(s, e->loc, "floating-point overflow in constant expression");
      out->is_float = 1;
      out->f = r;
      return 0;
    }
    int64_t r = 0;
    int overflow = 0;
    switch (e->op) {
    case '+': overflow = __builtin_add_overflow(a.i, b.i, &r); break;
    case '-': overflow = __builtin_sub_overflow(a.i, b.i, &r); break;
    case '*': overflow = __builtin_mul_overflow(a.i, b.i, &r); break;
    default:
      if (b.i == 0) return ERR(s, e->loc, "division by zero in constant expression");
      if (a.i == INT64_MIN && b.i == -1)
        overflow = 1;
      else
        r = a.i / b.i;
      break;
    }
    if (overflow) return ERR(s, e->loc, "integer overflow in constant expression");
    out->i = r;
    return 0;
  }
  }
  return -1;
}

int tfx_fe_eval_int(tfx_fe_sema *s, const tfx_fe_expr *e, int64_t min, const char *what, int64_t *out) {
  tfx_fe_value v;
  char buf[32];
  if (tfx_fe_eval(s, e, &v)) return -1;
  if (v.is_float) {
    tfx_fe_error(s->diag, e->loc.line, e->loc.col, "%s must be an integer, got %s", what,
                 float_str(v.f, buf, sizeof buf));
    return -1;
  }
  if (v.i < min) {
    tfx_fe_error(s->diag, e->loc.line, e->loc.col, "%s must be >= %lld, got %lld", what, (long long)min,
                 (long long)v.i);
    return -1;
  }
  *out = v.i;
  return 0;
}

#define MAX_DIM ((int64_t)INT32_MAX)
#define MAX_NUMEL ((int64_t)1 << 40)

int tfx_fe_eval_type(tfx_fe_sema *s, const tfx_fe_type *t, int allow_t, const char *what, tfx_type *out) {
  memset(out, 0, sizeof *out);
  int bad = 0;
  tfx_dtype dt = TFX_DT_F32;
  if (!strcmp(t->dtype, "f32")) {
    dt = TFX_DT_F32;
  } else if (!strcmp(t->dtype, "i32")) {
    dt = TFX_DT_I32;
  } else {
    tfx_fe_error(s->diag, t->loc.line, t->loc.col, "unknown element type '%s' (expected f32 or i32)", t->dtype);
    bad = 1;
  }
  if (t->n_dims < 1 || t->n_dims > TFX_MAX_RANK) {
    tfx_fe_error(s->diag, t->loc.line, t->loc.col, "a type has 1 to %d dimensions, got %d", TFX_MAX_RANK, t->n_dims);
    return -1;
  }
  int64_t dims[TFX_MAX_RANK], numel = 1;
  char buf[32];
  int i = 0;
  for (const tfx_fe_expr *d = t->dims; d; d = d->next, i++) {
    if (d->kind == TFX_FE_EXPR_NAME && !strcmp(d->str, "T")) {
      if (!allow_t) {
        tfx_fe_error(s->diag, d->loc.line, d->loc.col, "T (the number of tokens) is not allowed in %s", what);
        bad = 1;
      } else if (i != 0) {
        tfx_fe_error(s->diag, d->loc.line, d->loc.col, "T (the number of tokens) can only be the first dimension");
        bad = 1;
      }
      dims[i] = TFX_DIM_T;
      continue;
    }
    tfx_fe_value v;
    if (tfx_fe_eval(s, d, &v)) {
      bad = 1;
      continue;
    }
    if (v.is_float) {
      tfx_fe_error(s->diag, d->loc.line, d->loc.col, "a dimension must be an integer, got %s",
                   float_str(v.f, buf, sizeof buf));
      bad = 1;
    } else if (v.i <= 0) {
      tfx_fe_error(s->diag, d->loc.line, d->loc.col, "a dimension must be positive, got %lld", (long long)v.i);
      bad = 1;
    } else if (v.i > MAX_DIM) {
      tfx_fe_error(s->diag, d->loc.line, d->loc.col, "dimension %lld is too large (at most %lld)", (long long)v.i,
                   (long long)MAX_DIM);
      bad = 1;
    } else {
      dims[i] = v.i;
      numel *= v.i;
      if (numel > MAX_NUMEL) {
        tfx_fe_error(s->diag, d->loc.line, d->loc.col, "tensor too large (more than 2^40 elements)");
        bad = 1;
        numel = 1;
      }
    }
  }
  if (bad) return -1;
  *out = tfx_type_make(dt, t->n_dims, dims);
  return 0;
}

int tfx_fe_is_const_expr(tfx_fe_sema *s, const tfx_fe_expr *e, const tfx_fe_symtab *locals,
                         const tfx_fe_symtab *locals2) {
  if (!e) return 0;
  switch (e->kind) {
  case TFX_FE_EXPR_INT:
  case TFX_FE_EXPR_FLOAT: return 1;
  case TFX_FE_EXPR_NAME:
    if ((locals && tfx_fe_sym_find(locals, e->str)) || (locals2 && tfx_fe_sym_find(locals2, e->str)) ||
        tfx_fe_sym_find(&s->params, e->str))
      return 0;
    return tfx_fe_sym_find(&s->all_consts, e->str) != NULL;
  case TFX_FE_EXPR_NEG: return tfx_fe_is_const_expr(s, e->lhs, locals, locals2);
  case TFX_FE_EXPR_BINARY:
    return tfx_fe_is_const_expr(s, e->lhs, locals, locals2) && tfx_fe_is_const_expr(s, e->rhs, locals, locals2);
  case TFX_FE_EXPR_CALL: /* sqrt(constant expression) */
    return !strcmp(e->str, "sqrt") && !tfx_fe_sym_find(&s->blocks, e->str) && e->args && !e->args->key &&
           tfx_fe_is_const_expr(s, e->args->value, locals, locals2);
  default: return 0;
  }
}
