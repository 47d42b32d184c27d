/* frontend/ast.c — the AST's arena, its list helpers and its node
 * constructors. Grammar rules that use each constructor are named above it. */
#include "ast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tfx_fe_arena_block {
  tfx_fe_arena_block *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
};

#define TFX_FE_ARENA_CHUNK 16384

void *tfx_fe_alloc(tfx_fe_arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  tfx_fe_arena_block *b = a->blocks;
  if (!b || b->cap - b->used < size) {
    size_t cap = size > TFX_FE_ARENA_CHUNK ? size : TFX_FE_ARENA_CHUNK;
    b = malloc(sizeof *b + cap);
    if (!b) {
      a->failed = 1;
      return NULL;
    }
    b->cap = cap;
    b->used = 0;
    b->next = a->blocks;
    a->blocks = b;
  }
  void *p = b->data + b->used;
  b->used += size;
  memset(p, 0, size);
  return p;
}

char *tfx_fe_strndup(tfx_fe_arena *a, const char *s, size_t n) {
  char *p = tfx_fe_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void tfx_fe_arena_free(tfx_fe_arena *a) {
  tfx_fe_arena_block *b = a->blocks;
  while (b) {
    tfx_fe_arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->blocks = NULL;
}

struct link {
  struct link *next;
};

void *tfx_fe_list_append(void *tail, void *item) {
  struct link *t = tail, *it = item;
  if (!it) return t;
  if (!t) {
    it->next = it;
    return it;
  }
  it->next = t->next;
  t->next = it;
  return it;
}

void *tfx_fe_list_head(void *tail) {
  struct link *t = tail;
  if (!t) return NULL;
  struct link *head = t->next;
  t->next = NULL;
  return head;
}

/* primary: INT | FLOAT | STRING | IDENT ; expr: '-' expr */
tfx_fe_expr *tfx_fe_expr_new(tfx_fe_arena *a, tfx_fe_expr_kind kind, tfx_fe_loc loc) {
  tfx_fe_expr *e = tfx_fe_alloc(a, sizeof *e);
  if (!e) return NULL;
  e->kind = kind;
  e->loc = loc;
  e->depth = 1;
  return e;
}

/* expr: expr '+' expr | expr '-' expr | expr '*' expr | expr '/' expr */
tfx_fe_expr *tfx_fe_expr_binary(tfx_fe_arena *a, char op, tfx_fe_loc loc, tfx_fe_expr *lhs, tfx_fe_expr *rhs) {
  tfx_fe_expr *e = tfx_fe_expr_new(a, TFX_FE_EXPR_BINARY, loc);
  if (!e) return NULL;
  e->op = op;
  e->lhs = lhs;
  e->rhs = rhs;
  int d = lhs && lhs->depth > 0 ? lhs->depth : 0;
  if (rhs && rhs->depth > d) d = rhs->depth;
  e->depth = d + 1;
  return e;
}

int tfx_fe_args_depth(const tfx_fe_arg *args) {
  int d = 0;
  for (const tfx_fe_arg *g = args; g; g = g->next)
    if (g->value && g->value->depth > d) d = g->value->depth;
  return d;
}

/* primary: IDENT '(' args ')' */
tfx_fe_expr *tfx_fe_expr_call(tfx_fe_arena *a, const char *callee, tfx_fe_loc loc, tfx_fe_arg *args) {
  tfx_fe_expr *e = tfx_fe_expr_new(a, TFX_FE_EXPR_CALL, loc);
  if (!e) return NULL;
  e->str = callee;
  e->args = args;
  e->depth = tfx_fe_args_depth(args) + 1;
  return e;
}

/* The text of a value: a name, a number (a negated one too), else "?". */
static void value_text(const tfx_fe_expr *v, char *buf, size_t cap) {
  if (!v) {
    snprintf(buf, cap, "?");
  } else if (v->kind == TFX_FE_EXPR_NAME) {
    snprintf(buf, cap, "%s", v->str);
  } else if (v->kind == TFX_FE_EXPR_INT) {
    snprintf(buf, cap, "%lld", (long long)v->ival);
  } else if (v->kind == TFX_FE_EXPR_FLOAT) {
    snprintf(buf, cap, "%.9g", v->fval);
  } else if (v->kind == TFX_FE_EXPR_NEG && v->lhs &&
             (v->lhs->kind == TFX_FE_EXPR_INT || v->lhs->kind == TFX_FE_EXPR_FLOAT)) {
    if (cap < 2) return;
    buf[0] = '-';
    value_text(v->lhs, buf + 1, cap - 1);
  } else {
    snprintf(buf, cap, "?");
  }
}

char *tfx_fe_call_text(tfx_fe_arena *a, const char *callee, const tfx_fe_arg *args) {
  char buf[512];
  size_t n = (size_t)snprintf(buf, sizeof buf, "%s(", callee ? callee : "?");
  for (const tfx_fe_arg *g = args; g && n < sizeof buf; g = g->next) {
    char v[64];
    value_text(g->value, v, sizeof v);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s%s%s", g == args ? "" : ", ", g->key ? g->key : "",
                          g->key ? " = " : "", v);
  }
  if (n < sizeof buf) snprintf(buf + n, sizeof buf - n, ")");
  return tfx_fe_strndup(a, buf, strlen(buf));
}

/* arg: expr | IDENT '=' expr */
tfx_fe_arg *tfx_fe_arg_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *key, tfx_fe_expr *value) {
  tfx_fe_arg *g = tfx_fe_alloc(a, sizeof *g);
  if (!g) return NULL;
  g->loc = loc;
  g->key = key;
  g->value = value;
  return g;
}

/* type: IDENT '[' dims ']' */
tfx_fe_type *tfx_fe_type_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *dtype, tfx_fe_expr *dims) {
  tfx_fe_type *t = tfx_fe_alloc(a, sizeof *t);
  if (!t) return NULL;
  t->loc = loc;
  t->dtype = dtype;
  t->dims = dims;
  for (tfx_fe_expr *d = dims; d; d = d->next) t->n_dims++;
  return t;
}

/* param_decl: 'param' IDENT ':' type ; input: IDENT ':' type */
tfx_fe_param *tfx_fe_param_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *name, tfx_fe_type *type) {
  tfx_fe_param *p = tfx_fe_alloc(a, sizeof *p);
  if (!p) return NULL;
  p->loc = loc;
  p->name = name;
  p->type = type;
  return p;
}

/* stmt: param_decl | IDENT '=' expr | 'return' expr ; sched_entry: IDENT '=' expr */
tfx_fe_stmt *tfx_fe_stmt_new(tfx_fe_arena *a, tfx_fe_stmt_kind kind, tfx_fe_loc loc, const char *name,
                             tfx_fe_expr *value) {
  tfx_fe_stmt *s = tfx_fe_alloc(a, sizeof *s);
  if (!s) return NULL;
  s->kind = kind;
  s->loc = loc;
  s->name = name;
  s->value = value;
  return s;
}

/* const_def: IDENT '=' expr */
tfx_fe_const *tfx_fe_const_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *name, tfx_fe_expr *value) {
  tfx_fe_const *c = tfx_fe_alloc(a, sizeof *c);
  if (!c) return NULL;
  c->loc = loc;
  c->name = name;
  c->value = value;
  return c;
}

/* item: 'model' IDENT | 'const' ... | 'weights' ... | param_decl | 'block' ... | 'forward' ... | 'schedule' ... */
tfx_fe_item *tfx_fe_item_new(tfx_fe_arena *a, tfx_fe_item_kind kind, tfx_fe_loc loc) {
  tfx_fe_item *it = tfx_fe_alloc(a, sizeof *it);
  if (!it) return NULL;
  it->kind = kind;
  it->loc = loc;
  return it;
}
