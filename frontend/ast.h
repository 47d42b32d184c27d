/* frontend/ast.h — the syntax tree of a .tfx program and the arena that owns
 * it. The parser builds it; sema checks it; lowering turns it into IR. Every
 * node records the line and column (1-based) of the token that names it. */
#ifndef TFX_FE_AST_H
#define TFX_FE_AST_H

#include <stddef.h>
#include <stdint.h>

/* ---- arena: every AST node and string lives here, freed at once ---- */
typedef struct tfx_fe_arena_block tfx_fe_arena_block;
typedef struct tfx_fe_arena {
  tfx_fe_arena_block *blocks;
  int failed; /* an allocation failed */
} tfx_fe_arena;

/* Zeroed memory from the arena, NULL when out of memory (a->failed is set). */
void *tfx_fe_alloc(tfx_fe_arena *a, size_t size);
char *tfx_fe_strndup(tfx_fe_arena *a, const char *s, size_t n);
void tfx_fe_arena_free(tfx_fe_arena *a);

typedef struct tfx_fe_loc {
  int line, col;
} tfx_fe_loc;

/* Nesting limit of expressions: deeper trees are rejected by the parser so
 * the recursive passes over them stay within the stack. */
#define TFX_FE_MAX_EXPR_DEPTH 128

/* ---- expressions ---- */
typedef enum {
  TFX_FE_EXPR_INT,    /* ival */
  TFX_FE_EXPR_FLOAT,  /* fval */
  TFX_FE_EXPR_STRING, /* str */
  TFX_FE_EXPR_NAME,   /* str */
  TFX_FE_EXPR_BINARY, /* lhs op rhs, op in + - * / */
  TFX_FE_EXPR_NEG,    /* - lhs */
  TFX_FE_EXPR_CALL,   /* str(args) */
  TFX_FE_EXPR_REPEAT, /* repeat(rargs) lhs, lhs a CALL */
  TFX_FE_EXPR_INDEX   /* lhs[slices]: a value's columns, lhs[:, a:b] (frontend/lower.c) */
} tfx_fe_expr_kind;

typedef struct tfx_fe_arg tfx_fe_arg;
struct tfx_fe_slice;

typedef struct tfx_fe_expr {
  struct tfx_fe_expr *next; /* list link (dimensions of a type); must be first */
  tfx_fe_expr_kind kind;
  tfx_fe_loc loc; /* the literal, the name, the operator or the callee */
  int depth;      /* nesting depth of this tree, 1 for a leaf */
  int64_t ival;
  double fval;
  const char *str;
  char op;
  struct tfx_fe_expr *lhs, *rhs;
  tfx_fe_arg *args;            /* CALL: its arguments */
  tfx_fe_arg *rargs;           /* REPEAT: the arguments of repeat(...) */
  struct tfx_fe_slice *slices; /* INDEX: the axes, in order (loc: the '[') */
} tfx_fe_expr;

/* One argument of a call: positional (key NULL) or `key = value`. */
struct tfx_fe_arg {
  struct tfx_fe_arg *next; /* must be first */
  tfx_fe_loc loc;          /* the key, or the value when positional */
  const char *key;
  tfx_fe_expr *value;
};

/* `f32[dim, T]` */
typedef struct tfx_fe_type {
  tfx_fe_loc loc; /* the dtype name */
  const char *dtype;
  tfx_fe_expr *dims; /* list */
  int n_dims;
} tfx_fe_type;

/* `name : type` — a param declaration or a block / forward input. */
typedef struct tfx_fe_param {
  struct tfx_fe_param *next; /* must be first */
  tfx_fe_loc loc;            /* the name */
  const char *name;
  tfx_fe_type *type;
} tfx_fe_param;

typedef enum { TFX_FE_STMT_PARAM, TFX_FE_STMT_ASSIGN, TFX_FE_STMT_RETURN } tfx_fe_stmt_kind;

/* A statement of a block body; also a `key = value` entry of a schedule. */
typedef struct tfx_fe_stmt {
  struct tfx_fe_stmt *next; /* must be first */
  tfx_fe_stmt_kind kind;
  tfx_fe_loc loc; /* ASSIGN: the name; RETURN: the keyword */
  const char *name;
  tfx_fe_expr *value;
  tfx_fe_param *param; /* PARAM */
} tfx_fe_stmt;

/* `name = expr` in a const statement. */
typedef struct tfx_fe_const {
  struct tfx_fe_const *next; /* must be first */
  tfx_fe_loc loc;
  const char *name;
  tfx_fe_expr *value;
} tfx_fe_const;

/* One axis of a binding rule's slice: `a:b`, `a:`, `:b`, `:` or an index `i`. */
typedef struct tfx_fe_slice {
  struct tfx_fe_slice *next; /* must be first */
  tfx_fe_loc loc;
  tfx_fe_expr *lo, *hi; /* NULL: from the start / to the end */
  int range;            /* 0: an index (lo), the axis is dropped */
} tfx_fe_slice;

/* One operation of a binding rule's view of a file tensor (`.T`,
 * `.view(d, ...)`, `[slices]`), in the order written. */
typedef struct tfx_fe_viewop {
  struct tfx_fe_viewop *next; /* must be first */
  tfx_fe_loc loc;
  char kind;            /* 'T', 'v' (view) or '[' (slice) */
  tfx_fe_expr *dims;    /* 'v': the dims */
  tfx_fe_slice *slices; /* '[': the axes */
} tfx_fe_viewop;

struct tfx_wview_op;

/* `"from" = "to"` in a weights statement's rename { } list; a binding rule
 * also has a view of the file tensor (`"from".T[0:64] = "to"`) and/or
 * stacks it into the param (`= "to"[e]`). */
typedef struct tfx_fe_rename {
  struct tfx_fe_rename *next; /* must be first */
  tfx_fe_loc loc;             /* the `from` string */
  const char *from, *to;
  tfx_fe_loc to_loc;
  tfx_fe_viewop *view; /* the view's operations, or NULL */
  const char *stack;   /* the stack placeholder, or NULL */
  tfx_fe_loc stack_loc;
  /* set by sema (sema_weights.c): the view evaluated */
  int n_ops;
  struct tfx_wview_op *ops;
} tfx_fe_rename;

typedef enum {
  TFX_FE_ITEM_MODEL,
  TFX_FE_ITEM_CONST,
  TFX_FE_ITEM_WEIGHTS,
  TFX_FE_ITEM_PARAM,
  TFX_FE_ITEM_BLOCK,
  TFX_FE_ITEM_FORWARD,
  TFX_FE_ITEM_SCHEDULE,
  TFX_FE_ITEM_QUANTIZE,
  TFX_FE_ITEM_TOKENS,   /* tokens { bos = N, eos = N, pad = N } */
  TFX_FE_ITEM_TOKENIZER /* tokenizer "FILE" (name: the path) */
} tfx_fe_item_kind;

typedef struct tfx_fe_item {
  struct tfx_fe_item *next; /* must be first */
  tfx_fe_item_kind kind;
  tfx_fe_loc loc;   /* the keyword */
  const char *name; /* MODEL, BLOCK: the name; WEIGHTS: the path */
  tfx_fe_loc name_loc;
  const char *format; /* WEIGHTS: the format name or NULL */
  tfx_fe_loc format_loc;
  tfx_fe_rename *renames; /* WEIGHTS: the rename { } rules; QUANTIZE: the rules (to: the format); in order, or NULL */
  tfx_fe_const *consts;   /* CONST */
  tfx_fe_param *param;    /* PARAM */
  tfx_fe_param *inputs;   /* BLOCK, FORWARD */
  tfx_fe_type *ret;       /* BLOCK, FORWARD */
  tfx_fe_stmt *body;      /* BLOCK, FORWARD: statements; SCHEDULE, TOKENS: entries (ASSIGN) */
  tfx_fe_loc end_loc;     /* BLOCK, FORWARD, SCHEDULE, TOKENS: the closing brace */
} tfx_fe_item;

typedef struct tfx_fe_program {
  tfx_fe_item *items;
} tfx_fe_program;

/* ---- lists: a list under construction is its tail, circularly linked to its
 * head, so appending is O(1); tfx_fe_list_head closes it. Every list node
 * starts with its `next` pointer. ---- */
void *tfx_fe_list_append(void *tail, void *item);
void *tfx_fe_list_head(void *tail);

/* ---- constructors (NULL when out of memory) ---- */
tfx_fe_expr *tfx_fe_expr_new(tfx_fe_arena *a, tfx_fe_expr_kind kind, tfx_fe_loc loc);
tfx_fe_expr *tfx_fe_expr_binary(tfx_fe_arena *a, char op, tfx_fe_loc loc, tfx_fe_expr *lhs, tfx_fe_expr *rhs);
tfx_fe_expr *tfx_fe_expr_call(tfx_fe_arena *a, const char *callee, tfx_fe_loc loc, tfx_fe_arg *args);
/* "callee(key = value, ...)" of a call whose values are names or numbers
 * (others print as "?"): the spelling of a quantize choice such as
 * w8a8(smooth = 0.5), for tfx_quant_choice_parse_msg. */
char *tfx_fe_call_text(tfx_fe_arena *a, const char *callee, const tfx_fe_arg *args);
tfx_fe_arg *tfx_fe_arg_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *key, tfx_fe_expr *value);
tfx_fe_type *tfx_fe_type_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *dtype, tfx_fe_expr *dims);
tfx_fe_param *tfx_fe_param_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *name, tfx_fe_type *type);
tfx_fe_stmt *tfx_fe_stmt_new(tfx_fe_arena *a, tfx_fe_stmt_kind kind, tfx_fe_loc loc, const char *name,
                             tfx_fe_expr *value);
tfx_fe_const *tfx_fe_const_new(tfx_fe_arena *a, tfx_fe_loc loc, const char *name, tfx_fe_expr *value);
tfx_fe_item *tfx_fe_item_new(tfx_fe_arena *a, tfx_fe_item_kind kind, tfx_fe_loc loc);

/* The deepest nesting among e and its arguments (0 for NULL). */
int tfx_fe_args_depth(const tfx_fe_arg *args);

#endif
