/* frontend/sema.h — what semantic analysis learns about a program (its
 * constants, params, blocks, forward, schedule) and the interfaces between
 * the checking files (consts.c, builtins.c, sema.c) and lowering (lower.c). */
#ifndef TFX_FE_SEMA_H
#define TFX_FE_SEMA_H

#include <stdint.h>

#include "../ir/ir.h"
#include "ast.h"
#include "diag.h"
#include "symtab.h"

/* ---- constant values (consts.c) ---- */
typedef struct tfx_fe_value {
  int is_float;
  int64_t i;
  double f;
} tfx_fe_value;

typedef struct tfx_fe_constsym {
  const tfx_fe_const *decl;
  tfx_fe_value value;
  int ok; /* evaluated without error */
} tfx_fe_constsym;

/* A param declaration with its evaluated type. */
typedef struct tfx_fe_paramsym {
  const tfx_fe_param *decl;
  tfx_type type;
  int ok;
} tfx_fe_paramsym;

#define TFX_FE_MAX_BLOCK_INPUTS 16

/* A block, or the forward function. */
typedef struct tfx_fe_blocksym {
  const tfx_fe_item *item;
  int n_inputs;
  tfx_type *in_types; /* [n_inputs], from the arena */
  tfx_type ret;
  int sig_ok;           /* input and return types evaluated */
  tfx_fe_symtab params; /* local params: name -> tfx_fe_paramsym */
  int active;           /* being instantiated (recursion check) */
} tfx_fe_blocksym;

typedef struct tfx_fe_sema {
  tfx_fe_diag *diag;
  tfx_fe_arena *arena;
  const char *name; /* the model's name */
  const tfx_fe_item *model, *weights, *schedule;
  tfx_fe_blocksym *forward;
  tfx_fe_symtab consts;     /* name -> tfx_fe_constsym, as evaluated so far */
  tfx_fe_symtab all_consts; /* name -> tfx_fe_const: every const declared */
  tfx_fe_symtab globals;    /* consts, params and blocks: name -> declaration loc (ptr: tfx_fe_loc) */
  tfx_fe_symtab params;     /* top-level params: name -> tfx_fe_paramsym */
  tfx_fe_symtab blocks;     /* name -> tfx_fe_blocksym */
  tfx_fe_blocksym **block_list;
  int n_blocks;
  int64_t max_seq;
  int threads;
  int prefetch;          /* schedule { prefetch = N }: bytes, or TFX_PREFETCH_AUTO (0) / TFX_PREFETCH_NONE */
  int streams;           /* schedule { streams = N }: 1, 2, or TFX_STREAMS_AUTO (0) */
  int attention;         /* tfx_sched_attention */
  int unroll;            /* schedule { unroll }: tfx_schedule.unroll (TFX_SCHED_UNROLL_*) */
  int64_t prefill_chunk; /* schedule { prefill_chunk }: tfx_schedule.prefill_chunk (TFX_PREFILL_CHUNK_*, N rows) */
  int decode;            /* schedule { decode }: tfx_schedule.decode (TFX_SCHED_DECODE_*, N >= 2 split(N)) */
  /* schedule { quantize = ..., activations = ... } and the quantize { } section
   * (its rules are checked here; lowering copies them into the graph and
   * reports a pattern that matches no param) */
  tfx_quant_choice quantize;
  int act_f32;
  const tfx_fe_item *quantize_rules;
  /* tokens { bos = .., eos = .., pad = .. }: the model's special ids, -1 when not given */
  const tfx_fe_item *tokens;
  int64_t bos_id, eos_id, pad_id;
  /* tokenizer "FILE": the model's tokenizer, beside the source */
  const tfx_fe_item *tokenizer;
} tfx_fe_sema;

/* ---- consts.c ---- */
/* Evaluates a constant expression: numbers, earlier constants, + - * / and
 * parentheses; integer arithmetic for integers. 0, or -1 after an error. */
int tfx_fe_eval(tfx_fe_sema *s, const tfx_fe_expr *e, tfx_fe_value *out);
/* An integer constant expression >= min; `what` names it in messages. */
int tfx_fe_eval_int(tfx_fe_sema *s, const tfx_fe_expr *e, int64_t min, const char *what, int64_t *out);
/* A type: dtype f32 or i32, 1..4 dims, each a positive integer constant
 * expression; T allowed only as the first dim and only when allow_t. */
int tfx_fe_eval_type(tfx_fe_sema *s, const tfx_fe_type *t, int allow_t, const char *what, tfx_type *out);
double tfx_fe_value_f(tfx_fe_value v);
/* 1 when e is a constant expression in a body whose tensor names are in
 * locals and locals2 (either may be NULL; they and the top-level params
 * hide constants): numbers, constants, sqrt(..), + - * / and unary -. A
 * tensor expression may combine one with a tensor (`w * c + b`: AFFINE). */
int tfx_fe_is_const_expr(tfx_fe_sema *s, const tfx_fe_expr *e, const tfx_fe_symtab *locals,
                         const tfx_fe_symtab *locals2);

/* ---- builtins.c: the builtin ops and their arguments ---- */
typedef enum {
  TFX_FE_KW_TENSOR,      /* a tensor expression */
  TFX_FE_KW_INT,         /* integer constant expression >= 1 */
  TFX_FE_KW_NUM,         /* numeric constant expression */
  TFX_FE_KW_ENUM,        /* one of `values` */
  TFX_FE_KW_POSITION,    /* none | alibi | rope(theta = .., style = .., rotary_dim = ..) */
  TFX_FE_KW_SPARSE,      /* none | a sparse pattern call (attn_options.c) */
  TFX_FE_KW_NUM_OR_NONE, /* a numeric constant expression or none */
} tfx_fe_kw_kind;

typedef struct tfx_fe_kwspec {
  const char *name;
  tfx_fe_kw_kind kind;
  int required;
  const char *const *values; /* ENUM: NULL-terminated, the first is the default */
  const char *dflt;          /* the default, for messages and docs */
  /* NUM: the typed default (written once with the text above by
   * TFX_FE_NUM_KW); sets_attr: the IR attribute the keyword sets in the
   * generic lowering (NUM: the value; ENUM: the index of the value) */
  double num;
  int sets_attr;
  tfx_attr_id attr;
} tfx_fe_kwspec;
/* A numeric keyword whose default is the literal `dflt` (its text shown in
 * messages, its value used by lowering), setting IR attribute ATTR (or none). */
#define TFX_FE_NUM_KW(name, dflt)                                                                                      \
  { name, TFX_FE_KW_NUM, 0, NULL, #dflt, dflt, 0, 0 }
#define TFX_FE_NUM_ATTR(name, dflt, ATTR)                                                                              \
  { name, TFX_FE_KW_NUM, 0, NULL, #dflt, dflt, 1, TFX_ATTR_##ATTR }
/* An enum keyword (default: the first of values) setting IR attribute ATTR to the value's index. */
#define TFX_FE_ENUM_ATTR(name, values, ATTR)                                                                           \
  { name, TFX_FE_KW_ENUM, 0, values, NULL, 0, 1, TFX_ATTR_##ATTR }

/* How a builtin lowers to the IR (frontend/lower.c): OP is one node of the
 * spec's IR op on the positional operands, with the keywords' attributes;
 * the others expand to several nodes. */
typedef enum {
  TFX_FE_LOWER_OP,
  TFX_FE_LOWER_ROPE,
  TFX_FE_LOWER_ATTENTION,
  TFX_FE_LOWER_ATTEND, /* attend(q, k, v, ...): the IR's attention node on the program's projections */
  TFX_FE_LOWER_MLA,
  TFX_FE_LOWER_GLU,
  TFX_FE_LOWER_MOE,
  TFX_FE_LOWER_HEADS, /* retention, infini_attention, groupnorm: one node, per-head sizes from the operands */
  TFX_FE_LOWER_COUNT
} tfx_fe_lowering;

#define TFX_FE_MAX_KW 24
#define TFX_FE_MAX_POS 8 /* positional arguments of a builtin (concat's tensors) */

typedef struct tfx_fe_opspec {
  const char *name;
  int min_pos, max_pos;
  const char *pos[TFX_FE_MAX_POS]; /* names of the positional arguments */
  tfx_fe_kwspec kw[TFX_FE_MAX_KW];
  int n_kw;
  tfx_fe_lowering lowering;
  tfx_op ir; /* LOWER_OP: the IR op */
} tfx_fe_opspec;
/* The spec of keyword `key` of op, NULL if it has none. */
const tfx_fe_kwspec *tfx_fe_kwspec_of(const tfx_fe_opspec *op, const char *key);

const tfx_fe_opspec *tfx_fe_builtin(const char *name);
/* The spec of the arguments of `rope(...)` given as attention's position. */
const tfx_fe_opspec *tfx_fe_position_rope(void);
/* ... and of `t5(table, ...)` (attention only). */
const tfx_fe_opspec *tfx_fe_position_t5(void);
/* The name of the i-th builtin, NULL past the end. */
const char *tfx_fe_builtin_at(int i);
/* "rmsnorm(x, g, eps = 1e-05)" */
void tfx_fe_signature(const tfx_fe_opspec *op, char *buf, size_t len);
/* The argument `key = ...` of a call, or NULL. */
const tfx_fe_arg *tfx_fe_kwarg(const tfx_fe_arg *args, const char *key);
/* The i-th positional argument, or NULL. */
const tfx_fe_arg *tfx_fe_posarg(const tfx_fe_arg *args, int i);
int tfx_fe_count_pos(const tfx_fe_arg *args);

/* Checks the arguments of `call` against `op`: positional count, keywords
 * known, given once, required ones present, values of the right kind
 * (constants evaluated, enum values known). Tensor arguments are passed to
 * check_tensor(ctx, expr). Returns the number of errors. */
typedef int (*tfx_fe_check_tensor_fn)(void *ctx, const tfx_fe_expr *e);
int tfx_fe_check_call(tfx_fe_sema *s, const tfx_fe_opspec *op, const tfx_fe_expr *call,
                      tfx_fe_check_tensor_fn check_tensor, void *ctx);

/* ---- attn_options.c: attention's `sparse = ...` ---- */
/* Checks a sparse pattern value of op `opname` (errors reported); returns
 * the number of errors. */
int tfx_fe_check_sparse(tfx_fe_sema *s, const char *opname, const tfx_fe_expr *v);
/* Converts a checked pattern value; 0, or the number of errors. */
int tfx_fe_lower_sparse(tfx_fe_sema *s, const char *opname, const tfx_fe_expr *v, tfx_sparse *out);
/* longformer(..., global = m) with m a tensor's name (per-call global tokens, out->global_input): that
 * expression, else NULL. */
const tfx_fe_expr *tfx_fe_sparse_global_expr(tfx_fe_sema *s, const tfx_fe_expr *v);

/* ---- sema.c ---- */
/* Checks the program; fills *s (which the caller frees with
 * tfx_fe_sema_free). Returns the number of errors. */
int tfx_fe_sema_run(tfx_fe_sema *s, const tfx_fe_program *p, tfx_fe_diag *diag, tfx_fe_arena *arena, const char *path);
/* sema_weights.c: checks a WEIGHTS item's rename rules (errors reported). */
void tfx_fe_check_weights_stmt(tfx_fe_sema *s, const tfx_fe_item *it);
void tfx_fe_sema_free(tfx_fe_sema *s);

/* ---- lower.c ---- */
/* Lowers a checked program to a graph; NULL after errors (reported). */
tfx_graph *tfx_fe_lower(tfx_fe_sema *s);

#endif
