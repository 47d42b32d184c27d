/* frontend/sema.c — semantic checks of a parsed program: declarations and
 * duplicates, constants (in order) and max_seq, param and signature types,
 * name resolution and call arguments in every block body (used or not), the
 * forward function and the schedule. Shapes are checked later, by lowering. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sema.h"

#define ERR(s, loc, ...) tfx_fe_error((s)->diag, (loc).line, (loc).col, __VA_ARGS__)
#define NOTE(s, loc, ...) tfx_fe_note((s)->diag, (loc).line, (loc).col, __VA_ARGS__)

static const tfx_fe_loc file_start = {1, 1};

#define MAX_REPEAT 65536 /* copies made by one repeat(n) */
#define MAX_ARGS 64      /* arguments of one call */

/* ---- declarations ---- */

/* Adds a global name; a second definition is an error with a note. */
static int declare(tfx_fe_sema *s, const char *name, const tfx_fe_loc *loc, const char *what) {
  tfx_fe_sym *prev = tfx_fe_sym_find(&s->globals, name);
  if (prev) {
    const tfx_fe_loc *p = prev->ptr;
    ERR(s, *loc, "duplicate definition of %s '%s'", what, name);
    NOTE(s, *p, "previous definition of '%s' is here", name);
    return -1;
  }
  tfx_fe_sym_put(&s->globals, name, (void *)loc, 0);
  return 0;
}

static const tfx_fe_item *once(tfx_fe_sema *s, const tfx_fe_item *prev, const tfx_fe_item *it, const char *what) {
  if (!prev) return it;
  ERR(s, it->loc, "duplicate %s", what);
  NOTE(s, prev->loc, "previous %s is here", what);
  return prev;
}

static tfx_fe_blocksym *new_block(tfx_fe_sema *s, const tfx_fe_item *it) {
  tfx_fe_blocksym *b = tfx_fe_alloc(s->arena, sizeof *b);
  if (!b) return NULL;
  b->item = it;
  return b;
}

static void declare_items(tfx_fe_sema *s, const tfx_fe_program *p) {
  for (const tfx_fe_item *it = p->items; it; it = it->next) {
    switch (it->kind) {
    case TFX_FE_ITEM_MODEL: s->model = once(s, s->model, it, "'model' statement"); break;
    case TFX_FE_ITEM_WEIGHTS: s->weights = once(s, s->weights, it, "'weights' statement"); break;
    case TFX_FE_ITEM_SCHEDULE: s->schedule = once(s, s->schedule, it, "'schedule' section"); break;
    case TFX_FE_ITEM_QUANTIZE: s->quantize_rules = once(s, s->quantize_rules, it, "'quantize' section"); break;
    case TFX_FE_ITEM_TOKENS: s->tokens = once(s, s->tokens, it, "'tokens' section"); break;
    case TFX_FE_ITEM_TOKENIZER:
      s->tokenizer = once(s, s->tokenizer, it, "'tokenizer' statement");
      if (!it->name[0]) ERR(s, it->name_loc, "empty tokenizer path: give a file (relative to this source)");
      break;
    case TFX_FE_ITEM_FORWARD:
      if (s->forward) {
        ERR(s, it->loc, "duplicate forward: a model has exactly one");
        NOTE(s, s->forward->item->loc, "previous forward is here");
      } else {
        s->forward = new_block(s, it);
      }
      break;
    case TFX_FE_ITEM_CONST:
      for (const tfx_fe_const *c = it->consts; c; c = c->next) {
        if (!strcmp(c->name, "T")) {
          ERR(s, c->loc, "'T' is reserved for the number of tokens and cannot be a constant");
          continue;
        }
        if (!declare(s, c->name, &c->loc, "constant")) tfx_fe_sym_put(&s->all_consts, c->name, (void *)c, 0);
      }
      break;
    case TFX_FE_ITEM_PARAM: {
      const tfx_fe_param *pd = it->param;
      if (declare(s, pd->name, &pd->loc, "parameter")) break;
      tfx_fe_paramsym *ps = tfx_fe_alloc(s->arena, sizeof *ps);
      if (!ps) break;
      ps->decl = pd;
      tfx_fe_sym_put(&s->params, pd->name, ps, 0);
      break;
    }
    case TFX_FE_ITEM_BLOCK:
      if (tfx_fe_builtin(it->name)) {
        ERR(s, it->name_loc, "'%s' is a builtin op; a block needs another name", it->name);
        break;
      }
      if (declare(s, it->name, &it->name_loc, "block")) break;
      tfx_fe_blocksym *b = new_block(s, it);
      if (!b) break;
      tfx_fe_sym_put(&s->blocks, it->name, b, 0);
      tfx_fe_blocksym **list = tfx_fe_alloc(s->arena, (size_t)(s->n_blocks + 1) * sizeof *list);
      if (!list) break;
      if (s->n_blocks) memcpy(list, s->block_list, (size_t)s->n_blocks * sizeof *list);
      list[s->n_blocks++] = b;
      s->block_list = list;
      break;
    }
  }
}

/* ---- constants, max_seq, the model's name ---- */

static void eval_consts(tfx_fe_sema *s, const tfx_fe_program *p) {
  for (const tfx_fe_item *it = p->items; it; it = it->next) {
    if (it->kind != TFX_FE_ITEM_CONST) continue;
    for (const tfx_fe_const *c = it->consts; c; c = c->next) {
      tfx_fe_sym *decl = tfx_fe_sym_find(&s->all_consts, c->name);
      if (!decl || decl->ptr != c) continue; /* a duplicate or T: reported */
      tfx_fe_constsym *cs = tfx_fe_alloc(s->arena, sizeof *cs);
      if (!cs) return;
      cs->decl = c;
      cs->ok = tfx_fe_eval(s, c->value, &cs->value) == 0;
      tfx_fe_sym_put(&s->consts, c->name, cs, 0);
    }
  }
}

static void check_max_seq(tfx_fe_sema *s) {
  tfx_fe_sym *m = tfx_fe_sym_find(&s->consts, "max_seq");
  if (!m) {
    tfx_fe_loc at = s->model ? s->model->loc : file_start;
    if (!tfx_fe_sym_find(&s->globals, "max_seq"))
      ERR(s, at, "missing constant max_seq: add `const max_seq = N` (the most tokens a session holds)");
    return;
  }
  const tfx_fe_constsym *cs = m->ptr;
  if (!cs->ok) return;
  if (cs->value.is_float || cs->value.i < 1 || cs->value.i > INT32_MAX) {
    ERR(s, cs->decl->loc, "max_seq must be a positive integer (at most %d)", INT32_MAX);
    return;
  }
  s->max_seq = cs->value.i;
}

/* Why a model name cannot name the generated C symbols (<name>_descriptor,
 * <name>_open, <NAME>_VOCAB, ...), or NULL: the `tfx_` prefix (any case) is
 * the runtime API's, which the generated header includes (a model
 * `tfx_model` would redeclare tfx_model_open); `__x` and `_X` are reserved
 * in C. Every other identifier gives a header that compiles (tests/
 * test_input_checks.c compiles one per kind of name). */
static const char *reserved_model_name(const char *name) {
  if (tolower((unsigned char)name[0]) == 't' && tolower((unsigned char)name[1]) == 'f' &&
      tolower((unsigned char)name[2]) == 'x' && (name[3] == 0 || name[3] == '_'))
    return "the 'tfx' prefix belongs to the runtime API (<tfx/tfx.h>) that the generated header includes";
  if (name[0] == '_' && (name[1] == '_' || isupper((unsigned char)name[1])))
    return "C reserves names beginning with '__' or '_' and a capital letter";
  return NULL;
}

/* The model's name: `model NAME`, else the file's base name made into an
 * identifier, else "model". */
static void model_name(tfx_fe_sema *s, const char *path) {
  if (s->model) {
    s->name = s->model->name;
    const char *why = reserved_model_name(s->name);
    if (why) ERR(s, s->model->name_loc, "model name '%s' is reserved: %s; choose another name", s->name, why);
    return;
  }
  const char *base = path ? strrchr(path, '/') : NULL;
  base = base ? base + 1 : path ? path : "";
  size_t n = strcspn(base, ".");
  char *name = tfx_fe_alloc(s->arena, n + 2);
  if (!name || n == 0) {
    s->name = "model";
    return;
  }
  size_t k = 0;
  if (isdigit((unsigned char)base[0])) name[k++] = '_';
  for (size_t i = 0; i < n; i++) name[k++] = isalnum((unsigned char)base[i]) ? base[i] : '_';
  name[k] = 0;
  s->name = name;
  const char *why = reserved_model_name(name);
  if (why)
    ERR(s, file_start,
        "the model's name '%s', taken from the file name, is reserved: %s; add `model NAME` with another name", name,
        why);
}

/* ---- types of params and signatures ---- */

static void param_type(tfx_fe_sema *s, tfx_fe_paramsym *ps) {
  if (tfx_fe_eval_type(s, ps->decl->type, 0, "a parameter's shape", &ps->type)) return;
  if (ps->type.dtype != TFX_DT_F32) {
    ERR(s, ps->decl->type->loc, "parameters are f32 tensors, got %s", tfx_dtype_name(ps->type.dtype));
    return;
  }
  ps->ok = 1;
}

static void global_param_types(tfx_fe_sema *s, const tfx_fe_program *p) {
  for (const tfx_fe_item *it = p->items; it; it = it->next) {
    if (it->kind != TFX_FE_ITEM_PARAM) continue;
    tfx_fe_sym *sym = tfx_fe_sym_find(&s->params, it->param->name);
    if (sym && ((tfx_fe_paramsym *)sym->ptr)->decl == it->param) param_type(s, sym->ptr);
  }
}

static void signature(tfx_fe_sema *s, tfx_fe_blocksym *b) {
  const tfx_fe_item *it = b->item;
  int ok = 1;
  for (const tfx_fe_param *in = it->inputs; in; in = in->next) b->n_inputs++;
  if (b->n_inputs > TFX_FE_MAX_BLOCK_INPUTS) {
    ERR(s, it->name_loc, "too many inputs (%d; at most %d)", b->n_inputs, TFX_FE_MAX_BLOCK_INPUTS);
    return;
  }
  b->in_types = tfx_fe_alloc(s->arena, (size_t)(b->n_inputs + 1) * sizeof *b->in_types);
  if (!b->in_types) return;
  int i = 0;
  for (const tfx_fe_param *in = it->inputs; in; in = in->next, i++) {
    for (const tfx_fe_param *prev = it->inputs; prev != in; prev = prev->next)
      if (!strcmp(prev->name, in->name)) {
        ERR(s, in->loc, "duplicate input '%s'", in->name);
        NOTE(s, prev->loc, "previous definition of '%s' is here", in->name);
        ok = 0;
      }
    if (tfx_fe_eval_type(s, in->type, 1, "this type", &b->in_types[i])) ok = 0;
  }
  if (tfx_fe_eval_type(s, it->ret, 1, "this type", &b->ret)) ok = 0;
  b->sig_ok = ok;
}

/* ---- block bodies: names and calls ---- */

enum { NAME_INPUT = 1, NAME_PARAM, NAME_VAR };

typedef struct scope {
  tfx_fe_sema *s;
  tfx_fe_blocksym *b;
  tfx_fe_symtab names; /* inputs, local params, variables -> NAME_* */
} scope;

static void suggest_in(const tfx_fe_symtab *t, const char *name, const char **best, int *bestd) {
  for (int i = 0; i < t->cap; i++) {
    if (!t->slots[i].key) continue;
    int d = tfx_fe_edit_distance(name, t->slots[i].key, *bestd);
    if (d < *bestd) {
      *bestd = d;
      *best = t->slots[i].key;
    }
  }
}

static int check_tensor(void *ctx, const tfx_fe_expr *e);

static int check_block_args(scope *sc, const tfx_fe_blocksym *b, const tfx_fe_expr *call, int is_repeat) {
  tfx_fe_sema *s = sc->s;
  int errors = 0, npos = tfx_fe_count_pos(call->args);
  for (const tfx_fe_arg *a = call->args; a; a = a->next) {
    if (!a->key) {
      errors += check_tensor(sc, a->value);
    } else if (strcmp(a->key, "prefix") || is_repeat) {
      ERR(s, a->loc, "unknown keyword '%s' for block '%s' (allowed: %s)", a->key, call->str,
          is_repeat ? "none; give repeat(n, prefix = ..) instead" : "prefix");
      errors++;
    } else if (a->value->kind != TFX_FE_EXPR_STRING) {
      ERR(s, a->value->loc, "prefix must be a string, as in prefix = \"encoder\"");
      errors++;
    } else if (tfx_fe_kwarg(call->args, a->key) != a) {
      ERR(s, a->loc, "keyword '%s' is given twice", a->key);
      errors++;
    }
  }
  if (npos != b->n_inputs) {
    ERR(s, call->loc, "block '%s' takes %d argument%s, got %d", call->str, b->n_inputs, b->n_inputs == 1 ? "" : "s",
        npos);
    NOTE(s, b->item->name_loc, "block '%s' is declared here", call->str);
    errors++;
  }
  return errors;
}

static int check_repeat(scope *sc, const tfx_fe_expr *e) {
  tfx_fe_sema *s = sc->s;
  int errors = 0;
  if (tfx_fe_count_pos(e->rargs) != 1) {
    ERR(s, e->loc, "repeat takes one count: repeat(n) or repeat(n, prefix = \"layers\")");
    errors++;
  }
  for (const tfx_fe_arg *a = e->rargs; a; a = a->next) {
    int64_t n;
    if (!a->key) {
      if (a != tfx_fe_posarg(e->rargs, 0)) continue;
      if (tfx_fe_eval_int(s, a->value, 1, "the repeat count", &n)) {
        errors++;
      } else if (n > MAX_REPEAT) {
        ERR(s, a->value->loc, "the repeat count %lld is too large (at most %d)", (long long)n, MAX_REPEAT);
        errors++;
      }
    } else if (strcmp(a->key, "prefix")) {
      ERR(s, a->loc, "unknown keyword '%s' for repeat (allowed: prefix)", a->key);
      errors++;
    } else if (a->value->kind != TFX_FE_EXPR_STRING || !a->value->str[0]) {
      ERR(s, a->value->loc, "prefix must be a non-empty string, as in prefix = \"layers\"");
      errors++;
    }
  }
  const tfx_fe_expr *call = e->lhs;
  tfx_fe_sym *bs = tfx_fe_sym_find(&s->blocks, call->str);
  if (!bs) {
    if (tfx_fe_builtin(call->str))
      ERR(s, call->loc, "repeat needs a block; '%s' is a builtin op", call->str);
    else
      ERR(s, call->loc, "unknown block '%s'", call->str);
    return errors + 1;
  }
  const tfx_fe_blocksym *b = bs->ptr;
  errors += check_block_args(sc, b, call, 1);
  if (b->sig_ok && b->n_inputs >= 1 && !tfx_type_equal(&b->in_types[0], &b->ret)) {
    char t0[64], t1[64];
    ERR(s, call->loc, "repeat needs block '%s' to return the type of its first input: it takes %s and returns %s",
        call->str, tfx_type_str(&b->in_types[0], t0, sizeof t0), tfx_type_str(&b->ret, t1, sizeof t1));
    NOTE(s, b->item->name_loc, "block '%s' is declared here", call->str);
    errors++;
  }
  return errors;
}

static int check_name(scope *sc, const tfx_fe_expr *e) {
  tfx_fe_sema *s = sc->s;
  if (tfx_fe_sym_find(&sc->names, e->str) || tfx_fe_sym_find(&s->params, e->str)) return 0;
  if (tfx_fe_sym_find(&s->all_consts, e->str))
    ERR(s, e->loc, "'%s' is a constant, not a tensor", e->str);
  else if (tfx_fe_sym_find(&s->blocks, e->str))
    ERR(s, e->loc, "'%s' is a block: call it, as in %s(x)", e->str, e->str);
  else if (tfx_fe_builtin(e->str))
    ERR(s, e->loc, "'%s' is an op: call it, as in %s(x)", e->str, e->str);
  else {
    const char *best = NULL;
    int bestd = strlen(e->str) > 3 ? 3 : 2;
    suggest_in(&sc->names, e->str, &best, &bestd);
    suggest_in(&s->params, e->str, &best, &bestd);
    if (best)
      ERR(s, e->loc, "undefined name '%s'; did you mean '%s'?", e->str, best);
    else
      ERR(s, e->loc, "undefined name '%s'", e->str);
  }
  return 1;
}

static int check_call(scope *sc, const tfx_fe_expr *e) {
  tfx_fe_sema *s = sc->s;
  const tfx_fe_opspec *op = tfx_fe_builtin(e->str);
  if (op) return tfx_fe_check_call(s, op, e, check_tensor, sc);
  tfx_fe_sym *bs = tfx_fe_sym_find(&s->blocks, e->str);
  if (bs) return check_block_args(sc, bs->ptr, e, 0);
  const char *best = NULL;
  int bestd = strlen(e->str) > 3 ? 3 : 2;
  for (int i = 0; tfx_fe_builtin_at(i); i++) {
    int d = tfx_fe_edit_distance(e->str, tfx_fe_builtin_at(i), bestd);
    if (d < bestd) {
      bestd = d;
      best = tfx_fe_builtin_at(i);
    }
  }
  suggest_in(&s->blocks, e->str, &best, &bestd);
  if (best)
    ERR(s, e->loc, "unknown op or block '%s'; did you mean '%s'?", e->str, best);
  else
    ERR(s, e->loc, "unknown op or block '%s'", e->str);
  return 1;
}

/* x[:, a:b] (x is checked by the caller): two axes, all the rows, a range of
 * columns whose given bounds are constant integers >= 0 (lowering checks
 * them against x's shape). Returns the number of errors. */
static int check_index(scope *sc, const tfx_fe_expr *e) {
  tfx_fe_sema *s = sc->s;
  int n = 0, errors = 0;
  for (const tfx_fe_slice *c = e->slices; c; c = c->next) n++;
  if (n != 2) {
    ERR(s, e->loc, "a value is sliced by columns as x[:, a:b] (all the rows, then a range of columns); got %d ax%s", n,
        n == 1 ? "is" : "es");
    return 1;
  }
  const tfx_fe_slice *rows = e->slices, *cols = rows->next;
  if (!rows->range || rows->lo || rows->hi) {
    ERR(s, rows->loc,
        "slicing the rows of a value (the T axis) is not supported: values stream through the model by rows "
        "(decode steps, chunked calls and KV caches hold a few rows at a time); take the columns of every row "
        "with x[:, a:b]");
    errors++;
  }
  if (!cols->range) {
    ERR(s, cols->loc, "x[:, i] (one column, dropping the axis) is not supported; x[:, i:i+1] keeps it as f32[T, 1]");
    return errors + 1;
  }
  const tfx_fe_expr *b[2] = {cols->lo, cols->hi};
  for (int i = 0; i < 2; i++) {
    int64_t v;
    if (!b[i]) continue;
    if (!tfx_fe_is_const_expr(s, b[i], &sc->names, NULL)) {
      ERR(s, b[i]->loc, "the slice's %s must be a constant expression (columns are fixed when the model is compiled)",
          i ? "end" : "start");
      errors++;
    } else if (tfx_fe_eval_int(s, b[i], 0, i ? "the slice's end" : "the slice's start", &v)) {
      errors++;
    }
  }
  return errors;
}

/* Checks an expression whose value is a tensor; returns the number of errors. */
static int check_tensor(void *ctx, const tfx_fe_expr *e) {
  scope *sc = ctx;
  tfx_fe_sema *s = sc->s;
  if (!e) return 1;
  switch (e->kind) {
  case TFX_FE_EXPR_INT:
  case TFX_FE_EXPR_FLOAT: ERR(s, e->loc, "expected a tensor, got a number"); return 1;
  case TFX_FE_EXPR_STRING: ERR(s, e->loc, "expected a tensor, got a string"); return 1;
  case TFX_FE_EXPR_NAME: return check_name(sc, e);
  case TFX_FE_EXPR_NEG: return check_tensor(sc, e->lhs);
  case TFX_FE_EXPR_BINARY: {
    /* tensor (op) tensor, or a tensor with a constant expression on one side
     * (lowered to AFFINE); '/' only divides a tensor by a constant */
    int lc = tfx_fe_is_const_expr(s, e->lhs, &sc->names, NULL), rc = tfx_fe_is_const_expr(s, e->rhs, &sc->names, NULL);
    tfx_fe_value v;
    if (lc && rc) {
      ERR(s, e->loc, "expected a tensor, got a constant expression");
      return 1;
    }
    if (e->op == '/' && !rc) {
      ERR(s, e->loc, "'/' divides a tensor by a constant (x / c); dividing by a tensor is not defined");
      return 1;
    }
    if (lc || rc) {
      if (tfx_fe_eval(s, lc ? e->lhs : e->rhs, &v)) return 1;
      if (e->op == '/' && tfx_fe_value_f(v) == 0) {
        ERR(s, e->rhs->loc, "division of a tensor by zero");
        return 1;
      }
      return check_tensor(sc, lc ? e->rhs : e->lhs);
    }
    return check_tensor(sc, e->lhs) + check_tensor(sc, e->rhs);
  }
  case TFX_FE_EXPR_CALL:
  case TFX_FE_EXPR_REPEAT: {
    const tfx_fe_arg *args = e->kind == TFX_FE_EXPR_CALL ? e->args : e->lhs->args;
    int n = 0;
    for (const tfx_fe_arg *a = args; a; a = a->next) n++;
    if (n > MAX_ARGS) {
      ERR(s, e->loc, "too many arguments (%d; at most %d)", n, MAX_ARGS);
      return 1;
    }
    return e->kind == TFX_FE_EXPR_CALL ? check_call(sc, e) : check_repeat(sc, e);
  }
  case TFX_FE_EXPR_INDEX: return check_tensor(sc, e->lhs) + check_index(sc, e);
  }
  return 0;
}

static void check_body(tfx_fe_sema *s, tfx_fe_blocksym *b) {
  const tfx_fe_item *it = b->item;
  scope sc = {s, b, {0}};
  const char *what = it->kind == TFX_FE_ITEM_FORWARD ? "forward" : "block";
  for (const tfx_fe_param *in = it->inputs; in; in = in->next) tfx_fe_sym_put(&sc.names, in->name, NULL, NAME_INPUT);
  /* params are visible in the whole body */
  for (const tfx_fe_stmt *st = it->body; st; st = st->next) {
    if (st->kind != TFX_FE_STMT_PARAM) continue;
    const tfx_fe_param *pd = st->param;
    tfx_fe_sym *prev = tfx_fe_sym_find(&sc.names, pd->name);
    if (prev) {
      ERR(s, pd->loc, "duplicate definition of '%s'", pd->name);
      const tfx_fe_param *pp = prev->ptr;
      if (!pp)
        for (pp = it->inputs; pp && strcmp(pp->name, pd->name); pp = pp->next) continue;
      if (pp) NOTE(s, pp->loc, "previous definition of '%s' is here", pd->name);
      continue;
    }
    tfx_fe_paramsym *ps = tfx_fe_alloc(s->arena, sizeof *ps);
    if (!ps) break;
    ps->decl = pd;
    param_type(s, ps);
    tfx_fe_sym_put(&b->params, pd->name, ps, 0);
    tfx_fe_sym_put(&sc.names, pd->name, (void *)pd, NAME_PARAM);
  }
  const tfx_fe_stmt *ret = NULL;
  for (const tfx_fe_stmt *st = it->body; st && !s->diag->stopped; st = st->next) {
    if (ret) {
      ERR(s, st->loc, "statement after return: the return ends the %s", what);
      break;
    }
    if (st->kind == TFX_FE_STMT_PARAM) continue;
    check_tensor(&sc, st->value);
    if (st->kind == TFX_FE_STMT_RETURN) {
      ret = st;
      continue;
    }
    tfx_fe_sym *prev = tfx_fe_sym_find(&sc.names, st->name);
    if ((prev && prev->num == NAME_PARAM) || (!prev && tfx_fe_sym_find(&s->params, st->name))) {
      ERR(s, st->loc, "cannot assign to '%s': it is a parameter", st->name);
      continue;
    }
    if (tfx_fe_sym_find(&s->all_consts, st->name)) {
      ERR(s, st->loc, "cannot assign to '%s': it is a constant", st->name);
      continue;
    }
    tfx_fe_sym_put(&sc.names, st->name, NULL, NAME_VAR);
  }
  if (!ret && !s->diag->stopped) {
    if (it->kind == TFX_FE_ITEM_FORWARD)
      ERR(s, it->end_loc, "forward has no return statement");
    else
      ERR(s, it->end_loc, "block '%s' has no return statement", it->name);
  }
  tfx_fe_symtab_free(&sc.names);
}

/* ---- forward ---- */

static void check_forward(tfx_fe_sema *s) {
  tfx_fe_blocksym *f = s->forward;
  if (!f) {
    ERR(s, s->model ? s->model->loc : file_start,
        "missing forward: add `forward(tokens : i32[T]) -> f32[T, vocab] { ... }`");
    return;
  }
  const tfx_fe_item *it = f->item;
  char buf[64];
  if (f->n_inputs < 1) {
    ERR(s, it->loc, "forward takes at least one input (tokens : i32[T] or x : f32[T, D]), got none");
  } else if (f->n_inputs > TFX_MAX_FWD_INPUTS) {
    const tfx_fe_param *p = it->inputs;
    for (int i = 0; i < TFX_MAX_FWD_INPUTS; i++) p = p->next;
    ERR(s, p->loc, "forward takes at most %d inputs, got %d", TFX_MAX_FWD_INPUTS, f->n_inputs);
  } else if (f->sig_ok) {
    const tfx_type *in = &f->in_types[0];
    int ok = in->dtype == TFX_DT_I32 ? in->rank == 1 && in->dims[0] == TFX_DIM_T
                                     : in->rank == 2 && in->dims[0] == TFX_DIM_T && in->dims[1] > 0;
    if (!ok)
      ERR(s, it->inputs->type->loc, "the forward input must be i32[T] (token ids) or f32[T, D], got %s",
          tfx_type_str(in, buf, sizeof buf));
    /* the extra inputs: one value per row of the call (ids, a key mask) */
    /* or a source: i32[N] / f32[N], N a constant, of 1..N rows given per call */
    int i = 1;
    int64_t src_rows = 0;
    for (const tfx_fe_param *p = it->inputs->next; p; p = p->next, i++) {
      const tfx_type *t = &f->in_types[i];
      if ((t->dtype != TFX_DT_I32 && t->dtype != TFX_DT_F32) || t->rank != 1)
        ERR(s, p->type->loc,
            "forward input '%s' must be i32[T] (per-row ids, a key mask) or f32[T] (a key mask), or a source "
            "i32[N] / f32[N] of up to N rows per call, got %s",
            p->name, tfx_type_str(t, buf, sizeof buf));
      else if (t->dims[0] != TFX_DIM_T && src_rows > 0 && t->dims[0] != src_rows)
        ERR(s, p->type->loc,
            "forward input '%s' is a source of %lld rows and an earlier one has %lld: the sources of a forward share "
            "their rows (given per call)",
            p->name, (long long)t->dims[0], (long long)src_rows);
      else if (t->dims[0] != TFX_DIM_T)
        src_rows = t->dims[0];
    }
    if (src_rows > 0 && f->n_inputs >= TFX_MAX_FWD_INPUTS)
      ERR(s, it->loc, "forward takes at most %d inputs with a source (its row mask is one more), got %d",
          TFX_MAX_FWD_INPUTS - 1, f->n_inputs);
  }
  if (f->sig_ok && (f->ret.dtype != TFX_DT_F32 || f->ret.rank != 2 || f->ret.dims[0] != TFX_DIM_T))
    ERR(s, it->ret->loc, "forward must return f32[T, N], got %s", tfx_type_str(&f->ret, buf, sizeof buf));
}

/* ---- schedule ---- */

static int is_value(const tfx_fe_expr *v, const char *name) {
  return (v->kind == TFX_FE_EXPR_NAME || v->kind == TFX_FE_EXPR_CALL) && !strcmp(v->str, name);
}

static int one_of(const tfx_fe_expr *v, const char *const *names) {
  for (int i = 0; names[i]; i++)
    if (is_value(v, names[i])) return 1;
  return 0;
}

static void check_schedule(tfx_fe_sema *s) {
  static const char *const keys[] = {"attention", "decode", "quantize",      "activations", "threads",
                                     "prefetch",  "unroll", "prefill_chunk", "streams",     NULL};
  static const char *const attn_future[] = {NULL};
  static const char *const quant_future[] = {"int8", NULL};
  if (!s->schedule) return;
  for (const tfx_fe_stmt *st = s->schedule->body; st; st = st->next) {
    if (st->kind != TFX_FE_STMT_ASSIGN) {
      ERR(s, st->loc, "a schedule holds only `key = value` entries");
      continue;
    }
    const tfx_fe_expr *v = st->value;
    int known = 0;
    for (int i = 0; keys[i]; i++) known |= !strcmp(st->name, keys[i]);
    if (!known) {
      ERR(s, st->loc,
          "unknown schedule key '%s' (known: attention, decode, quantize, activations, threads, prefetch, unroll, "
          "prefill_chunk, streams)",
          st->name);
      continue;
    }
    const tfx_fe_stmt *prev = s->schedule->body;
    while (prev != st && (prev->kind != TFX_FE_STMT_ASSIGN || strcmp(prev->name, st->name))) prev = prev->next;
    if (prev != st) {
      ERR(s, st->loc, "schedule key '%s' is set twice", st->name);
      NOTE(s, prev->loc, "previous setting of '%s' is here", st->name);
      continue;
    }
    if (!strcmp(st->name, "attention")) {
      if (v->kind == TFX_FE_EXPR_NAME && (!strcmp(v->str, "auto") || !strcmp(v->str, "dense") ||
                                          !strcmp(v->str, "flash") || !strcmp(v->str, "block_sparse"))) {
        /* block_sparse: what auto picks for a sparse pattern (flash without one) */
        s->attention = !strcmp(v->str, "dense")   ? TFX_SCHED_ATTN_DENSE
                       : !strcmp(v->str, "flash") ? TFX_SCHED_ATTN_FLASH
                                                  : TFX_SCHED_ATTN_AUTO;
        continue;
      }
      if (is_value(v, "flash"))
        ERR(s, v->loc,
            "attention = flash(...) takes no tile sizes: the tiles follow the target (the vector width of "
            "query rows, 16 or 8 keys); write attention = flash");
      else if (one_of(v, attn_future))
        ERR(s, v->loc, "attention = %s is not supported yet (supported: auto, dense, flash, block_sparse)", v->str);
      else
        ERR(s, v->loc, "bad value for attention: expected auto, dense, flash or block_sparse");
    } else if (!strcmp(st->name, "decode")) {
      int64_t n;
      if (v->kind == TFX_FE_EXPR_NAME &&
          (!strcmp(v->str, "auto") || !strcmp(v->str, "row") || !strcmp(v->str, "split") || !strcmp(v->str, "tiny")))
        s->decode = !strcmp(v->str, "row")     ? TFX_SCHED_DECODE_ROW
                    : !strcmp(v->str, "tiny")  ? TFX_SCHED_DECODE_TINY
                    : !strcmp(v->str, "split") ? TFX_SCHED_DECODE_SPLIT
                                               : TFX_SCHED_DECODE_AUTO;
      else if (v->kind == TFX_FE_EXPR_CALL && !strcmp(v->str, "split") && v->args && !v->args->next && !v->args->key) {
        if (!tfx_fe_eval_int(s, v->args->value, 2, "split", &n)) {
          if (n > TFX_ATTN_MAX_SPLITS)
            ERR(s, v->loc, "decode = split(%lld): at most %d parts", (long long)n, TFX_ATTN_MAX_SPLITS);
          else
            s->decode = (int)n;
        }
      } else if (is_value(v, "split"))
        ERR(s, v->loc, "decode = split(...) takes one number, the parts of each query's keys (2..%d)",
            TFX_ATTN_MAX_SPLITS);
      else
        ERR(s, v->loc, "bad value for decode: expected auto, row, split, split(N) or tiny");
    } else if (!strcmp(st->name, "quantize")) {
      if (v->kind == TFX_FE_EXPR_NAME && !tfx_quant_choice_parse(v->str, 1, &s->quantize)) continue;
      if (v->kind == TFX_FE_EXPR_CALL) { /* w8a8(smooth = 0.5): the generic spelling (ir/quant_choice.c) */
        char msg[512];
        const char *text = tfx_fe_call_text(s->arena, v->str, v->args);
        if (text && !tfx_quant_choice_parse_msg(text, 1, &s->quantize, msg, sizeof msg)) continue;
        ERR(s, v->loc, "%s", text ? msg : "out of memory");
        continue;
      }
      if (one_of(v, quant_future))
        ERR(s, v->loc, "quantize = %s is not supported yet (supported: %s)", v->str, tfx_quant_choice_names(1));
      else if (v->kind == TFX_FE_EXPR_NAME)
        ERR(s, v->loc, "unknown format '%s' for quantize (expected %s)", v->str, tfx_quant_choice_names(1));
      else
        ERR(s, v->loc, "bad value for quantize: expected %s", tfx_quant_choice_names(1));
    } else if (!strcmp(st->name, "activations")) {
      if (v->kind == TFX_FE_EXPR_NAME && (!strcmp(v->str, "q8") || !strcmp(v->str, "f32")))
        s->act_f32 = !strcmp(v->str, "f32");
      else
        ERR(s, v->loc, "bad value for activations: expected q8 (int8 blocks for int8-block weights) or f32");
    } else if (!strcmp(st->name, "unroll")) {
      if (v->kind == TFX_FE_EXPR_NAME && (!strcmp(v->str, "auto") || !strcmp(v->str, "on") || !strcmp(v->str, "off")))
        s->unroll = !strcmp(v->str, "on")    ? TFX_SCHED_UNROLL_ON
                    : !strcmp(v->str, "off") ? TFX_SCHED_UNROLL_OFF
                                             : TFX_SCHED_UNROLL_AUTO;
      else
        ERR(s, v->loc, "bad value for unroll: expected auto, on or off");
    } else if (!strcmp(st->name, "prefill_chunk")) {
      int64_t n;
      if (v->kind == TFX_FE_EXPR_NAME && (!strcmp(v->str, "auto") || !strcmp(v->str, "none"))) {
        s->prefill_chunk = !strcmp(v->str, "auto") ? TFX_PREFILL_CHUNK_AUTO : TFX_PREFILL_CHUNK_NONE;
      } else if (!tfx_fe_eval_int(s, v, 1, "prefill_chunk", &n)) {
        if (n > TFX_PREFILL_CHUNK_MAX_ROWS)
          ERR(s, v->loc, "prefill_chunk = %lld is too many rows (at most %lld; none runs whole calls)", (long long)n,
              (long long)TFX_PREFILL_CHUNK_MAX_ROWS);
        else
          s->prefill_chunk = n;
      }
    } else if (!strcmp(st->name, "streams")) {
      int64_t n;
      if (v->kind == TFX_FE_EXPR_NAME && !strcmp(v->str, "auto")) {
        s->streams = TFX_STREAMS_AUTO;
      } else if (!tfx_fe_eval_int(s, v, 1, "streams", &n)) {
        if (n > 2)
          ERR(s, v->loc, "streams = %lld: the decode kernels read 1 or 2 weight streams (or auto)", (long long)n);
        else
          s->streams = (int)n;
      }
    } else if (!strcmp(st->name, "prefetch")) {
      int64_t n;
      if (v->kind == TFX_FE_EXPR_NAME && (!strcmp(v->str, "auto") || !strcmp(v->str, "none"))) {
        s->prefetch = !strcmp(v->str, "auto") ? TFX_PREFETCH_AUTO : TFX_PREFETCH_NONE;
      } else if (!tfx_fe_eval_int(s, v, 0, "prefetch", &n)) {
        if (n > 65536 || n % 64)
          ERR(s, v->loc, "prefetch = %lld must be a multiple of 64 bytes in 0..65536", (long long)n);
        else
          s->prefetch = n ? (int)n : TFX_PREFETCH_NONE;
      }
    } else {
      int64_t n;
      if (v->kind == TFX_FE_EXPR_NAME && !strcmp(v->str, "auto")) {
        s->threads = 0;
      } else if (!tfx_fe_eval_int(s, v, 1, "threads", &n)) {
        if (n > 4096)
          ERR(s, v->loc, "threads = %lld is too many (at most 4096)", (long long)n);
        else
          s->threads = (int)n;
      }
    }
  }
}

/* ---- the quantize { } section ---- */

/* Each rule: a pattern (a param name, '*' any run of characters; no blank or
 * control character), a format or none (not the q4_k_m preset: it chooses
 * for the whole model), each pattern once. Whether a pattern matches a param
 * is checked by lowering, which knows the params' full names. */
static void check_quantize(tfx_fe_sema *s) {
  if (!s->quantize_rules) return;
  for (const tfx_fe_rename *r = s->quantize_rules->renames; r; r = r->next) {
    int bad = !r->from[0];
    for (const char *c = r->from; *c; c++) bad |= (unsigned char)*c <= ' ' || *c == 0x7f;
    if (bad) {
      ERR(s, r->loc,
          "bad pattern \"%s\": a pattern is a param name (e.g. \"layers.*.w2\"), '*' matching any characters", r->from);
      continue;
    }
    const tfx_fe_rename *prev = s->quantize_rules->renames;
    while (prev != r && strcmp(prev->from, r->from)) prev = prev->next;
    if (prev != r) {
      ERR(s, r->loc, "duplicate quantize rule for \"%s\"", r->from);
      NOTE(s, prev->loc, "previous rule for \"%s\" is here", r->from);
      continue;
    }
    tfx_quant_choice c;
    char msg[512];
    if (!strcmp(r->to, "q4_k_m"))
      ERR(s, r->to_loc, "q4_k_m is a preset for the whole model (schedule { quantize = q4_k_m }); a rule takes %s",
          tfx_quant_choice_names(0));
    else if (!strcmp(r->to, "llm_int8"))
      ERR(s, r->to_loc,
          "llm_int8 is a whole-model option (schedule { quantize = llm_int8 } or --quantize); a rule takes %s",
          tfx_quant_choice_names(0));
    else if (!strchr(r->to, '(') && tfx_quant_choice_parse(r->to, 0, &c))
      ERR(s, r->to_loc, "unknown format '%s' (expected %s)", r->to, tfx_quant_choice_names(0));
    else if (tfx_quant_choice_parse_msg(r->to, 0, &c, msg, sizeof msg))
      ERR(s, r->to_loc, "%s", msg);
  }
}

/* ---- the tokens { } section ---- */

/* bos, eos and pad: integer constant expressions >= 0, each at most once,
 * each below the vocabulary (checked by lowering, which knows it). */
static void check_tokens(tfx_fe_sema *s) {
  static const char *const keys[] = {"bos", "eos", "pad", NULL};
  s->bos_id = s->eos_id = s->pad_id = -1;
  if (!s->tokens) return;
  for (const tfx_fe_stmt *st = s->tokens->body; st; st = st->next) {
    int k = 0;
    while (keys[k] && strcmp(st->name, keys[k])) k++;
    if (!keys[k]) {
      ERR(s, st->loc, "unknown tokens key '%s' (known: bos, eos, pad)", st->name);
      continue;
    }
    const tfx_fe_stmt *prev = s->tokens->body;
    while (prev != st && strcmp(prev->name, st->name)) prev = prev->next;
    if (prev != st) {
      ERR(s, st->loc, "tokens key '%s' is set twice", st->name);
      NOTE(s, prev->loc, "previous setting of '%s' is here", st->name);
      continue;
    }
    int64_t n;
    if (tfx_fe_eval_int(s, st->value, 0, st->name, &n)) continue;
    if (n > INT32_MAX) {
      ERR(s, st->value->loc, "%s = %lld is not a token id (at most %d)", st->name, (long long)n, INT32_MAX);
      continue;
    }
    *(k == 0 ? &s->bos_id : k == 1 ? &s->eos_id : &s->pad_id) = n;
  }
}

/* ---- entry ---- */

int tfx_fe_sema_run(tfx_fe_sema *s, const tfx_fe_program *p, tfx_fe_diag *diag, tfx_fe_arena *arena, const char *path) {
  memset(s, 0, sizeof *s);
  s->diag = diag;
  s->arena = arena;
  int before = diag->errors;
  declare_items(s, p);
  eval_consts(s, p);
  for (const tfx_fe_item *it = p->items; it; it = it->next) /* after the constants: views use them */
    if (it->kind == TFX_FE_ITEM_WEIGHTS) tfx_fe_check_weights_stmt(s, it);
  check_max_seq(s);
  model_name(s, path);
  global_param_types(s, p);
  for (int i = 0; i < s->n_blocks; i++) signature(s, s->block_list[i]);
  if (s->forward) signature(s, s->forward);
  for (int i = 0; i < s->n_blocks && !diag->stopped; i++) check_body(s, s->block_list[i]);
  if (s->forward && !diag->stopped) check_body(s, s->forward);
  check_forward(s);
  check_schedule(s);
  check_quantize(s);
  check_tokens(s);
  if (arena->failed) ERR(s, file_start, "out of memory");
  return diag->errors - before;
}

void tfx_fe_sema_free(tfx_fe_sema *s) {
  for (int i = 0; i < s->n_blocks; i++) tfx_fe_symtab_free(&s->block_list[i]->params);
  if (s->forward) tfx_fe_symtab_free(&s->forward->params);
  tfx_fe_symtab_free(&s->consts);
  tfx_fe_symtab_free(&s->all_consts);
  tfx_fe_symtab_free(&s->globals);
  tfx_fe_symtab_free(&s->params);
  tfx_fe_symtab_free(&s->blocks);
}
