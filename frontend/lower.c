/* frontend/lower.c — lowering a checked program to the graph IR: forward's
 * input, block instantiation (plain calls and repeat(n), with parameter
 * names prefixed per instance), builtin ops (by their spec in builtins.c: one
 * IR node with the keywords' attributes, or a lowering here: attention
 * expands to its projections, RoPE and the ATTENTION node), and shape errors
 * from the IR's type inference reported at the expression that caused them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower_ffn.h"
#include "sema.h"

#define ERR(L, loc, ...) tfx_fe_error((L)->s->diag, (loc).line, (loc).col, __VA_ARGS__)

/* Limits that keep hostile programs from exhausting the stack or memory. */
#define MAX_BLOCK_NESTING 32 /* block calls inside block calls */
#define MAX_NODES (1 << 20)  /* nodes of the graph */

typedef struct lower {
  tfx_fe_sema *s;
  tfx_graph *g;
  tfx_fe_symtab param_nodes; /* full binding name -> node id (num) */
  int nesting;               /* block instances being lowered */
  int oom;
  /* the sources (extra inputs of static rows): the hidden row mask's node
   * (-1: no source), and per node 1 when its rows are a source's (computed
   * in node order up to src_done) */
  int rows_mask;
  char *src_flag;
  int src_done, src_cap;
} lower;

/* One instance of a block being lowered. */
typedef struct frame {
  tfx_fe_blocksym *b;
  const char *prefix; /* NULL at the top level, else "layers.3" ... */
  tfx_fe_symtab vars; /* name -> node id (num), -1 after an error */
} frame;

static const char *join(lower *L, const char *prefix, const char *a, const char *b) {
  size_t n = (prefix ? strlen(prefix) + 1 : 0) + strlen(a) + (b ? strlen(b) + 1 : 0) + 1;
  char *out = tfx_fe_alloc(L->s->arena, n);
  if (!out) {
    L->oom = 1;
    return "";
  }
  snprintf(out, n, "%s%s%s%s%s", prefix ? prefix : "", prefix ? "." : "", a, b ? "." : "", b ? b : "");
  return out;
}

/* Adds a node built from proto; a type error is reported at loc. */
static int add(lower *L, tfx_node *proto, tfx_fe_loc loc) {
  char err[512];
  if (L->g->n_nodes >= MAX_NODES) {
    ERR(L, loc, "the model is too large (more than %d graph nodes)", MAX_NODES);
    return -1;
  }
  proto->line = loc.line;
  proto->col = loc.col;
  int id = tfx_graph_add(L->g, proto, err, sizeof err);
  if (id < 0) ERR(L, loc, "%s", err);
  return id;
}

static int add2(lower *L, tfx_op op, int a, int b, tfx_fe_loc loc) {
  tfx_node n = tfx_node_proto(op, 2, (int[]){a, b});
  return add(L, &n, loc);
}

/* x * scale + shift (AFFINE); an AFFINE of an AFFINE is composed into one
 * node, so that `w * c + b` is one op (folded into a param when w is one) */
static int add_affine(lower *L, int x, double scale, double shift, tfx_fe_loc loc) {
  const tfx_node *xn = &L->g->nodes[x];
  if (xn->op == TFX_OP_AFFINE) {
    shift = xn->shift * scale + shift;
    scale = xn->scale * scale;
    x = xn->inputs[0];
  }
  if (!isfinite(scale) || !isfinite(shift)) {
    ERR(L, loc, "the constant of this expression is not a finite number");
    return -1;
  }
  tfx_node n = tfx_node_proto(TFX_OP_AFFINE, 1, &x);
  n.scale = scale;
  n.shift = shift;
  return add(L, &n, loc);
}

/* linear(x, w) or linear(x, w, b) when b >= 0 */
static int add_linear(lower *L, int x, int w, int b, tfx_fe_loc loc) {
  tfx_node n = tfx_node_proto(TFX_OP_LINEAR, b >= 0 ? 3 : 2, (int[]){x, w, b});
  return add(L, &n, loc);
}

/* The node of a param: one node per full name, created on first use. */
static int param_node(lower *L, const char *full, const tfx_fe_paramsym *ps) {
  if (!ps->ok) return -1;
  tfx_fe_sym *sym = tfx_fe_sym_find(&L->param_nodes, full);
  if (sym) {
    const tfx_node *n = &L->g->nodes[sym->num];
    if (!tfx_type_equal(&n->type, &ps->type)) {
      char a[64], b[64];
      ERR(L, ps->decl->loc, "parameter '%s' is declared %s here but %s elsewhere", full,
          tfx_type_str(&ps->type, a, sizeof a), tfx_type_str(&n->type, b, sizeof b));
      tfx_fe_note(L->s->diag, n->line, n->col, "'%s' is first declared here", full);
      return -1;
    }
    return sym->num;
  }
  int id = tfx_graph_add_param(L->g, full, ps->type);
  if (id < 0 || !tfx_fe_sym_put(&L->param_nodes, full, NULL, id)) {
    L->oom = 1;
    return -1;
  }
  L->g->nodes[id].line = ps->decl->loc.line;
  L->g->nodes[id].col = ps->decl->loc.col;
  return id;
}

static int lower_expr(lower *L, frame *f, const tfx_fe_expr *e);
static int instantiate(lower *L, tfx_fe_blocksym *b, const int *args, const tfx_fe_arg *const *arg_exprs,
                       const char *prefix, tfx_fe_loc loc);

static int lower_name(lower *L, frame *f, const tfx_fe_expr *e) {
  tfx_fe_sym *v = tfx_fe_sym_find(&f->vars, e->str);
  if (v) return v->num;
  tfx_fe_sym *p = tfx_fe_sym_find(&f->b->params, e->str);
  if (p) return param_node(L, f->prefix ? join(L, f->prefix, e->str, NULL) : e->str, p->ptr);
  p = tfx_fe_sym_find(&L->s->params, e->str);
  if (p) return param_node(L, e->str, p->ptr);
  ERR(L, e->loc, "undefined name '%s'", e->str); /* sema lets none through */
  return -1;
}

/* ---- builtin ops ---- */

/* The numeric keyword `key` of call, or its typed default in spec (builtins.c). */
static double num_kw(lower *L, const tfx_fe_opspec *spec, const tfx_fe_expr *call, const char *key) {
  const tfx_fe_arg *a = tfx_fe_kwarg(call->args, key);
  const tfx_fe_kwspec *k = tfx_fe_kwspec_of(spec, key);
  double dflt = k ? k->num : 0.0;
  tfx_fe_value v;
  if (!a || tfx_fe_eval(L->s, a->value, &v)) return dflt;
  return tfx_fe_value_f(v);
}

static int int_kw(lower *L, const tfx_fe_expr *call, const char *key, int dflt) {
  const tfx_fe_arg *a = tfx_fe_kwarg(call->args, key);
  tfx_fe_value v;
  if (!a || tfx_fe_eval(L->s, a->value, &v) || v.is_float) return dflt;
  return (int)v.i;
}

/* attention's and attend's `softcap = c | none` into *out (absent or none: 0). */
static int softcap_kw(lower *L, const tfx_fe_expr *call, double *out) {
  const tfx_fe_arg *a = tfx_fe_kwarg(call->args, "softcap");
  tfx_fe_value v;
  *out = 0;
  if (!a || (a->value->kind == TFX_FE_EXPR_NAME && !strcmp(a->value->str, "none"))) return 0;
  if (tfx_fe_eval(L->s, a->value, &v)) return -1;
  *out = tfx_fe_value_f(v);
  return 0;
}

/* The enum keyword `key` of call, or its default in spec (the first of its values). */
static const char *enum_kw(const tfx_fe_opspec *spec, const tfx_fe_expr *call, const char *key) {
  const tfx_fe_arg *a = tfx_fe_kwarg(call->args, key);
  const tfx_fe_kwspec *k = tfx_fe_kwspec_of(spec, key);
  const char *dflt = k && k->values ? k->values[0] : "";
  return a && a->value->kind == TFX_FE_EXPR_NAME ? a->value->str : dflt;
}

/* The tensor keyword `key` lowered, -1 when absent, -2 after an error. */
static int tensor_kw(lower *L, frame *f, const tfx_fe_expr *call, const char *key) {
  const tfx_fe_arg *a = tfx_fe_kwarg(call->args, key);
  if (!a) return -1;
  int id = lower_expr(L, f, a->value);
  return id < 0 ? -2 : id;
}

/* `segments = s` (packed sequences, the op's name in opname): s : i32[T], one
 * segment id per row of the call; checked here for a located error. */
static int check_segments(lower *L, int s, const char *opname, const tfx_fe_expr *call) {
  const tfx_fe_arg *arg = tfx_fe_kwarg(call->args, "segments");
  tfx_fe_loc at = arg ? arg->value->loc : call->loc;
  const tfx_type *st = &L->g->nodes[s].type;
  char a[64];
  if (st->dtype != TFX_DT_I32 || st->rank != 1 || st->dims[0] != TFX_DIM_T) {
    ERR(L, at, "%s: segments is %s, expected i32[T] (one sequence id per row of the call, e.g. a forward input)",
        opname, tfx_type_str(st, a, sizeof a));
    return -1;
  }
  return 0;
}

/* rope(x, heads, theta, style, rotary_dim) from the keywords of `spec_call`
 * (rope itself, or the rope(...) of attention's position; the defaults of
 * both are those of tfx_fe_position_rope). */
static int add_rope(lower *L, int x, int heads, int head_dim, const tfx_fe_expr *spec_call, tfx_fe_loc loc, int segs) {
  const tfx_fe_opspec *rs = tfx_fe_position_rope();
  if (head_dim % 2 && !tfx_fe_kwarg(spec_call->args, "rotary_dim")) { /* rotary_dim defaults to the head dim */
    if (head_dim > 1)
      ERR(L, loc,
          "rope: the head dim is odd (%d = %lld columns / heads = %d) and rope rotates pairs of dimensions: "
          "give rotary_dim = N (even, 2..%d) or make the head dim even",
          head_dim, (long long)head_dim * heads, heads, head_dim - 1);
    else
      ERR(L, loc, "rope: the head dim is 1 (%d columns / heads = %d): rope needs pairs of dimensions to rotate", heads,
          heads);
    return -1;
  }
  tfx_node n = tfx_node_proto(TFX_OP_ROPE, segs >= 0 ? 2 : 1, (int[]){x, segs}); /* segs: positions per segment */
  n.heads = heads;
  n.head_dim = head_dim;
  n.theta = num_kw(L, rs, spec_call, "theta");
  n.rope_style = strcmp(enum_kw(rs, spec_call, "style"), "half") ? TFX_ROPE_INTERLEAVED : TFX_ROPE_HALF;
  n.rotary_dim = int_kw(L, spec_call, "rotary_dim", head_dim);
  return add(L, &n, loc);
}

static int lower_rope(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n_in, const tfx_fe_expr *call) {
  (void)op, (void)n_in;
  int x = in[0];
  int segs = tensor_kw(L, f, call, "segments");
  if (segs == -2 || (segs >= 0 && check_segments(L, segs, "rope", call))) return -1;
  const tfx_type *t = &L->g->nodes[x].type;
  int heads = int_kw(L, call, "heads", 1);
  char buf[64];
  if (t->rank != 2 || t->dims[1] <= 0 || t->dims[1] % heads) {
    ERR(L, call->loc, "rope: heads = %d does not divide the columns of x %s", heads, tfx_type_str(t, buf, sizeof buf));
    return -1;
  }
  return add_rope(L, x, heads, (int)(t->dims[1] / heads), call, call->loc, segs);
}

/* attention's and attend's `key_mask = m`: m, one value per key (f32 or i32,
 * 1 keeps the key, 0 drops it; a forward input such as Hugging Face's
 * attention_mask) becomes the node's last operand. With mask = causal the
 * values are kept with the KV cache (a left-padded prompt's pad keys stay
 * dropped in later calls). */
static int attach_key_mask(lower *L, tfx_node *n, int m, int k, const char *opname, const tfx_fe_expr *call) {
  if (m < 0) return 0;
  const tfx_fe_arg *arg = tfx_fe_kwarg(call->args, "key_mask");
  tfx_fe_loc at = arg ? arg->value->loc : call->loc;
  const tfx_type *mt = &L->g->nodes[m].type, *kt = &L->g->nodes[k].type;
  char a[64];
  if ((mt->dtype != TFX_DT_F32 && mt->dtype != TFX_DT_I32) || mt->rank != 1 || mt->dims[0] != kt->dims[0]) {
    char r[32];
    if (kt->dims[0] == TFX_DIM_T)
      snprintf(r, sizeof r, "T");
    else
      snprintf(r, sizeof r, "%lld", (long long)kt->dims[0]);
    ERR(L, at, "%s: key_mask is %s, expected f32[%s] or i32[%s] (one value per key: 1 keeps it, 0 drops it)", opname,
        tfx_type_str(mt, a, sizeof a), r, r);
    return -1;
  }
  n->inputs[n->n_inputs++] = m;
  n->key_mask = 1;
  return 0;
}

/* 1 when node id's rows are a source's: a source input, or a value of the
 * source's static rows computed from one (not a weight). */
static int from_source(lower *L, int id) {
  const tfx_graph *g = L->g;
  if (L->rows_mask < 0 || id < 0 || id >= g->n_nodes) return 0;
  if (g->n_nodes > L->src_cap) {
    int cap = g->n_nodes * 2;
    char *p = realloc(L->src_flag, (size_t)cap);
    if (!p) {
      L->oom = 1;
      return 0;
    }
    L->src_flag = p;
    L->src_cap = cap;
  }
  int64_t N = g->nodes[L->rows_mask].type.dims[0];
  for (; L->src_done < g->n_nodes; L->src_done++) {
    const tfx_node *n = &g->nodes[L->src_done];
    int flag = 0;
    if (n->op == TFX_OP_INPUT)
      flag = n->id != L->rows_mask && n->type.rank == 1 && n->type.dims[0] > 0;
    else if (n->op != TFX_OP_PARAM && n->type.rank >= 1 && n->type.dims[0] == N)
      for (int j = 0; j < n->n_inputs && !flag; j++) flag = L->src_flag[n->inputs[j]];
    L->src_flag[L->src_done] = (char)flag;
  }
  return L->src_flag[id];
}

/* An attention whose keys are a source's rows drops the padding rows past
 * the call's: the hidden row mask is its key mask, unless it has one (a
 * source input too, padded with zeros by the caller). */
static int attach_rows_mask(lower *L, tfx_node *n, int k, const char *opname, const tfx_fe_expr *call) {
  if (!from_source(L, k)) return 0;
  if (n->mask == TFX_MASK_CAUSAL) {
    ERR(L, call->loc, "%s: the keys come from a source input (its rows are given per call): use mask = none", opname);
    return -1;
  }
  if (n->key_mask) return 0;
  n->inputs[n->n_inputs++] = L->rows_mask;
  n->key_mask = 1;
  return 0;
}

/* attention's and attend's `segments = s`: packed sequences, query i attends
 * only the keys of its segment (the run of consecutive rows with its id); s
 * becomes the node's last operand. Only with mask = none (a causal
 * attention's keys are cached across calls) and q, k of the call's rows. */
static int attach_segments(lower *L, tfx_node *n, int s, int q, int k, const char *opname, const tfx_fe_expr *call) {
  if (s < 0) return 0;
  const tfx_fe_arg *arg = tfx_fe_kwarg(call->args, "segments");
  tfx_fe_loc at = arg ? arg->value->loc : call->loc;
  if (n->mask == TFX_MASK_CAUSAL) {
    ERR(L, at,
        "%s: segments needs mask = none (a causal attention's keys stay in the KV cache across calls, so packed "
        "sequences are not defined for it)",
        opname);
    return -1;
  }
  if (check_segments(L, s, opname, call)) return -1;
  if (L->g->nodes[q].type.dims[0] != TFX_DIM_T || L->g->nodes[k].type.dims[0] != TFX_DIM_T) {
    ERR(L, at, "%s: segments needs queries and keys of the call's T rows (not a memory of other rows)", opname);
    return -1;
  }
  n->inputs[n->n_inputs++] = s;
  n->segments = 1;
  return 0;
}

/* longformer(window = w, global = m) with m a tensor (i32[T], nonzero = global; Hugging Face's
 * global_attention_mask): the per-call global tokens become the node's last operand. Needs mask = none
 * (Longformer is bidirectional: a causal row's globals would change with later tokens), dilation 1, no
 * segments, q and k of the call's T rows. Returns the operand's id (also the GLOBAL_ATTENTION's), -1 when
 * none, -2 on error. */
static int attach_global_tokens(lower *L, frame *f, tfx_node *n, const char *opname, const tfx_fe_expr *call) {
  if (!n->sparse.global_input) return -1;
  const tfx_fe_arg *sparse = tfx_fe_kwarg(call->args, "sparse");
  const tfx_fe_expr *e = sparse ? tfx_fe_sparse_global_expr(L->s, sparse->value) : NULL;
  if (!e) return -2; /* convert() accepted it: cannot happen */
  const char *why =
      n->mask != TFX_MASK_NONE  ? "mask = none (Longformer is bidirectional: a causal row's global tokens "
                                  "would change with later calls)"
      : n->sparse.dilation != 1 ? "dilation = 1"
      : n->segments             ? "no segments (packed sequences)"
      : L->g->nodes[n->inputs[0]].type.dims[0] != TFX_DIM_T || L->g->nodes[n->inputs[1]].type.dims[0] != TFX_DIM_T
          ? "queries and keys of the call's T rows (not a memory)"
          : NULL;
  if (why) {
    ERR(L, e->loc, "%s: per-call global tokens (global = %s) need %s", opname, e->str, why);
    return -2;
  }
  int m = lower_expr(L, f, e);
  if (m < 0) return -2;
  const tfx_type *mt = &L->g->nodes[m].type;
  char a[64];
  if (mt->dtype != TFX_DT_I32 || mt->rank != 1 || mt->dims[0] != TFX_DIM_T) {
    ERR(L, e->loc,
        "%s: longformer's global = %s is %s, expected i32[T] (one value per row of the call: nonzero = a global "
        "token, as Hugging Face's global_attention_mask)",
        opname, e->str, tfx_type_str(mt, a, sizeof a));
    return -2;
  }
  n->inputs[n->n_inputs++] = m;
  return m;
}

/* attention's and attend's `global_q = qg, global_k = kg, global_v = vg`:
 * Longformer's separate global projections. The attention node n (already
 * added as id o) computes every row; a GLOBAL_ATTENTION after it replaces
 * the rows of the pattern's global tokens by the dense attention of qg over
 * kg, vg (every key of the call, n's key mask). Returns the result's id, o
 * when there are no global projections, -1 on error. */
static int add_global_qkv(lower *L, frame *f, const tfx_node *n, int o, int kmask, int gtok, const char *opname,
                          const tfx_fe_expr *call) {
  static const char *const names[3] = {"global_q", "global_k", "global_v"};
  const tfx_fe_arg *arg[3];
  int any = 0;
  for (int i = 0; i < 3; i++) any |= (arg[i] = tfx_fe_kwarg(call->args, names[i])) != NULL;
  if (!any) return o;
  for (int i = 0; i < 3; i++)
    if (!arg[i]) {
      ERR(L, call->loc,
          "%s: Longformer's global projections need all of global_q, global_k and global_v (%s is missing)", opname,
          names[i]);
      return -1;
    }
  tfx_fe_loc at = arg[0]->value->loc;
  if (n->sparse.kind != TFX_SPARSE_LONGFORMER) {
    ERR(L, at, "%s: global_q, global_k, global_v need sparse = longformer(...) (its global tokens take them)", opname);
    return -1;
  }
  if (n->mask != TFX_MASK_NONE) {
    ERR(L, at,
        "%s: global_q, global_k, global_v need mask = none (Longformer's global rows attend every token of the call; "
        "a causal model's global rows would change with later tokens)",
        opname);
    return -1;
  }
  const tfx_graph *g = L->g;
  if (g->nodes[n->inputs[0]].type.dims[0] != TFX_DIM_T || g->nodes[n->inputs[1]].type.dims[0] != TFX_DIM_T) {
    ERR(L, at, "%s: global_q, global_k, global_v need queries and keys of the call's T rows (not a memory)", opname);
    return -1;
  }
  if (n->segments) {
    ERR(L, at, "%s: global_q, global_k, global_v do not take segments (packed sequences)", opname);
    return -1;
  }
  int gi[3];
  for (int i = 0; i < 3; i++) {
    gi[i] = tensor_kw(L, f, call, names[i]);
    if (gi[i] < 0) return -1;
    g = L->g;
    const tfx_type *t = &g->nodes[gi[i]].type;
    int64_t cols = (int64_t)(i ? n->kv_heads : n->heads) * n->head_dim;
    char a[64];
    if (t->dtype != TFX_DT_F32 || t->rank != 2 || t->dims[0] != TFX_DIM_T || t->dims[1] != cols) {
      ERR(L, arg[i]->value->loc, "%s: %s is %s, expected f32[T, %lld] (%d %s of %d, like %s)", opname, names[i],
          tfx_type_str(t, a, sizeof a), (long long)cols, i ? n->kv_heads : n->heads, i ? "kv_heads" : "heads",
          n->head_dim,
          i == 0   ? "q"
          : i == 1 ? "k"
                   : "v");
      return -1;
    }
  }
  tfx_node gn = tfx_node_proto(TFX_OP_GLOBAL_ATTENTION, 4, (int[]){o, gi[0], gi[1], gi[2]});
  gn.heads = n->heads;
  gn.kv_heads = n->kv_heads;
  gn.head_dim = n->head_dim;
  gn.sparse = n->sparse;
  gn.scale = n->scale;
  if (kmask >= 0) {
    gn.inputs[gn.n_inputs++] = kmask;
    gn.key_mask = 1;
  }
  if (gtok >= 0) gn.inputs[gn.n_inputs++] = gtok; /* per-call global tokens */
  return add(L, &gn, call->loc);
}

static int lower_attention(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n_in,
                           const tfx_fe_expr *call) {
  (void)n_in;
  tfx_fe_loc loc = call->loc;
  int heads = int_kw(L, call, "heads", 1), kv_heads = int_kw(L, call, "kv_heads", heads);
  char a[64], b[64];
  int bias[4];
  static const char *const bias_names[4] = {"bq", "bk", "bv", "bo"};
  int bad = 0;
  for (int i = 0; i < 4; i++) bad |= (bias[i] = tensor_kw(L, f, call, bias_names[i])) == -2;
  int mem = tensor_kw(L, f, call, "memory"); /* cross-attention: k, v from another tensor */
  int kmask = tensor_kw(L, f, call, "key_mask");
  int segs = tensor_kw(L, f, call, "segments");
  /* q/k norms: a gain of head_dim (per head) or of all the heads' columns */
  static const char *const norm_names[4] = {"q_norm", "k_norm", "q_norm_b", "k_norm_b"};
  int nrm[4];
  for (int i = 0; i < 4; i++) bad |= (nrm[i] = tensor_kw(L, f, call, norm_names[i])) == -2;
  const tfx_fe_arg *pos = tfx_fe_kwarg(call->args, "position");
  const tfx_fe_expr *pv = pos ? pos->value : NULL;
  int is_rope = pv && pv->kind == TFX_FE_EXPR_CALL && !strcmp(pv->str, "rope");
  int is_t5 = pv && pv->kind == TFX_FE_EXPR_CALL && !strcmp(pv->str, "t5");
  int relb = is_t5 ? lower_expr(L, f, tfx_fe_posarg(pv->args, 0)->value) : -1; /* T5's bias table */
  if (bad || mem == -2 || kmask == -2 || segs == -2 || (is_t5 && relb < 0)) return -1;
  /* pointers into the node array only after the keyword tensors (which may add nodes) */
  const tfx_graph *g = L->g;
  const tfx_type *wq = &g->nodes[in[1]].type, *wk = &g->nodes[in[2]].type, *wv = &g->nodes[in[3]].type,
                 *wo = &g->nodes[in[4]].type;
  if (wq->rank != 2 || wq->dims[0] <= 0 || wq->dims[0] % heads) {
    ERR(L, loc, "attention: heads = %d does not divide the rows of wq %s", heads, tfx_type_str(wq, a, sizeof a));
    return -1;
  }
  int64_t head_dim = wq->dims[0] / heads;
  if (heads % kv_heads) {
    ERR(L, loc, "attention: kv_heads = %d must divide heads = %d", kv_heads, heads);
    return -1;
  }
  int64_t kv_rows = kv_heads * head_dim;
  for (int i = 0; i < 2; i++) {
    const tfx_type *w = i ? wv : wk;
    if (w->rank != 2 || w->dims[0] != kv_rows) {
      ERR(L, loc, "attention: %s is %s, expected %lld rows (kv_heads %d x head_dim %lld)", i ? "wv" : "wk",
          tfx_type_str(w, a, sizeof a), (long long)kv_rows, kv_heads, (long long)head_dim);
      return -1;
    }
  }
  if (wo->rank != 2 || wo->dims[1] != wq->dims[0]) {
    ERR(L, loc, "attention: wo is %s, expected %lld columns to match wq %s", tfx_type_str(wo, a, sizeof a),
        (long long)wq->dims[0], tfx_type_str(wq, b, sizeof b));
    return -1;
  }
  int causal = strcmp(enum_kw(op, call, "mask"), "none") != 0;
  int layer = !strcmp(enum_kw(op, call, "qk_norm"), "layernorm");
  for (int i = 0; i < 2; i++) {
    if ((nrm[i + 2] >= 0) != (layer && nrm[i] >= 0)) {
      ERR(L, loc, "attention: %s",
          nrm[i + 2] >= 0 ? (layer ? "a norm bias needs its gain" : "q_norm_b and k_norm_b need qk_norm = layernorm")
                          : "qk_norm = layernorm needs q_norm_b and k_norm_b with the gains");
      return -1;
    }
  }
  if (mem >= 0) {
    const tfx_type *mt = &g->nodes[mem].type;
    if (mt->rank == 2 && mt->dims[0] != TFX_DIM_T && causal) {
      ERR(L, loc, "attention: a memory of static rows (%s) needs mask = none", tfx_type_str(mt, a, sizeof a));
      return -1;
    }
    if (mt->rank == 2 && mt->dims[0] != TFX_DIM_T && is_rope) {
      ERR(L, loc, "attention: position = rope(...) needs a memory of T rows, got %s", tfx_type_str(mt, a, sizeof a));
      return -1;
    }
  }
  tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){0, 0, 0});
  const tfx_fe_arg *sparse = tfx_fe_kwarg(call->args, "sparse");
  if (sparse && tfx_fe_lower_sparse(L->s, "attention", sparse->value, &n.sparse)) return -1;
  int kv_src = mem >= 0 ? mem : in[0];
  int q = add_linear(L, in[0], in[1], bias[0], loc);
  int k = q < 0 ? -1 : add_linear(L, kv_src, in[2], bias[1], loc);
  int v = k < 0 ? -1 : add_linear(L, kv_src, in[3], bias[2], loc);
  if (v < 0) return -1;
  for (int i = 0; i < 2; i++) { /* the q and k norms, before RoPE */
    if (nrm[i] < 0) continue;
    int x = i ? k : q, hh = i ? kv_heads : heads;
    const tfx_type *gt = &g->nodes[nrm[i]].type;
    int per_head = gt->rank == 1 && gt->dims[0] == head_dim && hh > 1;
    tfx_node nn =
        tfx_node_proto(layer ? TFX_OP_LAYERNORM : TFX_OP_RMSNORM, layer ? 3 : 2, (int[]){x, nrm[i], nrm[i + 2]});
    nn.eps = num_kw(L, op, call, "norm_eps");
    nn.heads = per_head ? hh : 0;
    tfx_fe_loc at = tfx_fe_kwarg(call->args, norm_names[i])->value->loc;
    if (gt->rank != 1 || (gt->dims[0] != head_dim && gt->dims[0] != hh * head_dim)) {
      ERR(L, at, "attention: %s is %s, expected f32[%lld] (per head) or f32[%lld] (all %s heads)", norm_names[i],
          tfx_type_str(gt, a, sizeof a), (long long)head_dim, (long long)(hh * head_dim), i ? "key" : "query");
      return -1;
    }
    x = add(L, &nn, at);
    if (x < 0) return -1;
    if (i)
      k = x;
    else
      q = x;
  }
  if (is_rope) {
    /* with segment ids (packed sequences) the rotations restart at each sequence too */
    int rs = segs >= 0 && !causal ? segs : -1;
    if (rs >= 0 && check_segments(L, rs, "attention", call)) return -1;
    q = add_rope(L, q, heads, (int)head_dim, pos->value, pos->value->loc, rs);
    k = q < 0 ? -1 : add_rope(L, k, kv_heads, (int)head_dim, pos->value, pos->value->loc, rs);
    if (k < 0) return -1;
  }
  const tfx_fe_arg *sc = tfx_fe_kwarg(call->args, "scale");
  if (sc) { /* the node's scale (none: 1); absent: 0, the IR's 1/sqrt(d) */
    tfx_fe_value sv = {0, 1, 1.0};
    if (sc->value->kind != TFX_FE_EXPR_NAME || strcmp(sc->value->str, "none"))
      if (tfx_fe_eval(L->s, sc->value, &sv)) return -1;
    n.scale = tfx_fe_value_f(sv);
  }
  if (softcap_kw(L, call, &n.softcap)) return -1;
  n.inputs[0] = q, n.inputs[1] = k, n.inputs[2] = v;
  n.heads = heads;
  n.kv_heads = kv_heads;
  n.head_dim = (int)head_dim;
  n.mask = causal ? TFX_MASK_CAUSAL : TFX_MASK_NONE;
  n.alibi = pos && pos->value->kind == TFX_FE_EXPR_NAME && !strcmp(pos->value->str, "alibi");
  if (is_t5) { /* the table is the 4th operand */
    const tfx_type *tt = &g->nodes[relb].type;
    const tfx_fe_arg *bk = tfx_fe_kwarg(pv->args, "buckets");
    if (bk && (tt->rank != 2 || tt->dims[0] != int_kw(L, pv, "buckets", 0))) {
      ERR(L, bk->value->loc, "attention: t5's table is %s, expected %d rows (buckets)", tfx_type_str(tt, a, sizeof a),
          int_kw(L, pv, "buckets", 0));
      return -1;
    }
    const tfx_fe_arg *bi = tfx_fe_kwarg(pv->args, "bidirectional");
    n.rel_bidirectional = bi ? !strcmp(bi->value->str, "true") : !causal;
    n.rel_max_distance = int_kw(L, pv, "max_distance", 128);
    n.n_inputs = 4;
    n.inputs[3] = relb;
  }
  if (attach_key_mask(L, &n, kmask, k, "attention", call)) return -1;
  if (attach_rows_mask(L, &n, k, "attention", call)) return -1;
  if (attach_segments(L, &n, segs, q, k, "attention", call)) return -1;
  int gtok = attach_global_tokens(L, f, &n, "attention", call);
  if (gtok == -2) return -1;
  int o = add(L, &n, loc);
  if (o >= 0) o = add_global_qkv(L, f, &n, o, kmask, gtok, "attention", call);
  return o < 0 ? -1 : add_linear(L, o, in[4], bias[3], loc);
}

/* attend(q, k, v, heads, kv_heads, mask, sparse, scale): the IR's attention
 * node on projections the program computes (head_dim = columns of q / H).
 * Causal attends of the same k and v share one KV cache
 * (tfx_attn_kv_owner): YOCO's cross-decoder passes one global k and v to
 * every layer. */
static int lower_attend(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n_in, const tfx_fe_expr *call) {
  (void)n_in;
  tfx_fe_loc loc = call->loc;
  int kmask = tensor_kw(L, f, call, "key_mask");
  int segs = kmask == -2 ? -1 : tensor_kw(L, f, call, "segments");
  if (kmask == -2 || segs == -2) return -1;
  int heads = int_kw(L, call, "heads", 1), kv_heads = int_kw(L, call, "kv_heads", heads);
  const tfx_graph *g = L->g;
  const tfx_type *q = &g->nodes[in[0]].type, *k = &g->nodes[in[1]].type, *v = &g->nodes[in[2]].type;
  char a[64];
  if (heads < 1 || kv_heads < 1 || heads % kv_heads) {
    ERR(L, loc, "attend: kv_heads = %d must divide heads = %d (both >= 1)", kv_heads, heads);
    return -1;
  }
  if (q->rank != 2 || q->dims[1] <= 0 || q->dims[1] % heads) {
    ERR(L, loc, "attend: heads = %d does not divide the columns of q %s", heads, tfx_type_str(q, a, sizeof a));
    return -1;
  }
  int64_t head_dim = q->dims[1] / heads;
  for (int i = 0; i < 2; i++) {
    const tfx_type *t = i ? v : k;
    if (t->rank != 2 || t->dims[1] != kv_heads * head_dim) {
      ERR(L, loc, "attend: %s is %s, expected %lld columns (kv_heads %d x head_dim %lld)", i ? "v" : "k",
          tfx_type_str(t, a, sizeof a), (long long)(kv_heads * head_dim), kv_heads, (long long)head_dim);
      return -1;
    }
  }
  int causal = strcmp(enum_kw(op, call, "mask"), "none") != 0;
  if (causal && (q->dims[0] != TFX_DIM_T || k->dims[0] != TFX_DIM_T || v->dims[0] != TFX_DIM_T)) {
    ERR(L, loc, "attend: mask = causal needs q, k and v of T rows (the call's tokens), got %s",
        tfx_type_str(q->dims[0] != TFX_DIM_T   ? q
                     : k->dims[0] != TFX_DIM_T ? k
                                               : v,
                     a, sizeof a));
    return -1;
  }
  if (k->dims[0] != v->dims[0]) {
    ERR(L, loc, "attend: k and v must have the same rows, got %s and %s", tfx_type_str(k, a, sizeof a),
        tfx_type_str(v, (char[64]){0}, 64));
    return -1;
  }
  tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 3, in);
  const tfx_fe_arg *sparse = tfx_fe_kwarg(call->args, "sparse");
  if (sparse && tfx_fe_lower_sparse(L->s, "attend", sparse->value, &n.sparse)) return -1;
  const tfx_fe_arg *sc = tfx_fe_kwarg(call->args, "scale");
  if (sc) { /* as attention's: none is 1; absent: 0, the IR's 1/sqrt(d) */
    tfx_fe_value sv = {0, 1, 1.0};
    if (sc->value->kind != TFX_FE_EXPR_NAME || strcmp(sc->value->str, "none"))
      if (tfx_fe_eval(L->s, sc->value, &sv)) return -1;
    n.scale = tfx_fe_value_f(sv);
  }
  if (softcap_kw(L, call, &n.softcap)) return -1;
  n.heads = heads;
  n.kv_heads = kv_heads;
  n.head_dim = (int)head_dim;
  n.mask = causal ? TFX_MASK_CAUSAL : TFX_MASK_NONE;
  if (attach_key_mask(L, &n, kmask, in[1], "attend", call)) return -1;
  if (attach_rows_mask(L, &n, in[1], "attend", call)) return -1;
  if (attach_segments(L, &n, segs, in[0], in[1], "attend", call)) return -1;
  int gtok = attach_global_tokens(L, f, &n, "attend", call);
  if (gtok == -2) return -1;
  int o = add(L, &n, loc);
  return o < 0 ? -1 : add_global_qkv(L, f, &n, o, kmask, gtok, "attend", call);
}

/* mla_attention(x, wq, wkv_a, wkv_b, wo, heads, rope_dim, ...): DeepSeek-V2's
 * layout. wq [H*(dn+dr), D] (or [.., rq] after wq_a [rq, D] and q_norm),
 * wkv_a [r+dr, D] (latent, then the shared rope key), wkv_b [H*(dn+dv), r]
 * (per head: dn rows of W_uk, dv rows of W_uv), wo [D_out, H*dv]. */
static int lower_mla(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n_in, const tfx_fe_expr *call) {
  (void)n_in;
  tfx_fe_loc loc = call->loc;
  const tfx_graph *g = L->g;
  char a[64], b[64];
  const tfx_type *wq = &g->nodes[in[1]].type, *wa = &g->nodes[in[2]].type, *wb = &g->nodes[in[3]].type,
                 *wo = &g->nodes[in[4]].type;
  int64_t H = int_kw(L, call, "heads", 1), dr = int_kw(L, call, "rope_dim", 1);
  if (strcmp(enum_kw(op, call, "mask"), "causal")) {
    ERR(L, loc, "mla_attention needs mask = causal (its KV cache holds the latent)");
    return -1;
  }
  if (dr % 2) {
    ERR(L, loc, "mla_attention: rope_dim = %lld must be even", (long long)dr);
    return -1;
  }
  if (wa->rank != 2 || wa->dims[0] <= dr) {
    ERR(L, loc, "mla_attention: wkv_a is %s, expected [rank + rope_dim, D] with rope_dim = %lld",
        tfx_type_str(wa, a, sizeof a), (long long)dr);
    return -1;
  }
  int64_t r = wa->dims[0] - dr;
  if (wq->rank != 2 || wq->dims[0] % H || wq->dims[0] / H <= dr) {
    ERR(L, loc, "mla_attention: wq is %s, expected %lld heads of head_dim + rope_dim (%lld) rows",
        tfx_type_str(wq, a, sizeof a), (long long)H, (long long)dr);
    return -1;
  }
  int64_t dn = wq->dims[0] / H - dr;
  if (wb->rank != 2 || wb->dims[1] != r || wb->dims[0] % H || wb->dims[0] / H <= dn) {
    ERR(L, loc, "mla_attention: wkv_b is %s, expected [%lld * (%lld + v_dim), %lld] (heads * (head_dim + v_dim), rank)",
        tfx_type_str(wb, a, sizeof a), (long long)H, (long long)dn, (long long)r);
    return -1;
  }
  int64_t dv = wb->dims[0] / H - dn;
  if (wo->rank != 2 || wo->dims[1] != H * dv) {
    ERR(L, loc, "mla_attention: wo is %s, expected %lld columns (heads %lld x v_dim %lld) to match wkv_b %s",
        tfx_type_str(wo, a, sizeof a), (long long)(H * dv), (long long)H, (long long)dv, tfx_type_str(wb, b, sizeof b));
    return -1;
  }
  const tfx_fe_arg *pos = tfx_fe_kwarg(call->args, "position");
  if (pos && (pos->value->kind != TFX_FE_EXPR_CALL || strcmp(pos->value->str, "rope"))) {
    ERR(L, pos->value->loc, "mla_attention's position must be rope(theta = .., style = ..)");
    return -1;
  }
  const tfx_fe_expr *rope = pos ? pos->value : call; /* rope's keywords, or the defaults */
  if (pos && tfx_fe_kwarg(rope->args, "rotary_dim") && int_kw(L, rope, "rotary_dim", (int)dr) != dr) {
    ERR(L, pos->value->loc, "mla_attention: rope's rotary_dim must equal rope_dim (%lld)", (long long)dr);
    return -1;
  }
  double eps = num_kw(L, op, call, "eps");
  int kv_norm = tensor_kw(L, f, call, "kv_norm"), wq_a = tensor_kw(L, f, call, "wq_a");
  int q_norm = tensor_kw(L, f, call, "q_norm");
  if (kv_norm == -2 || wq_a == -2 || q_norm == -2) return -1;
  if (q_norm >= 0 && wq_a < 0) {
    ERR(L, loc, "mla_attention: q_norm needs wq_a (the low-rank query path)");
    return -1;
  }
  tfx_node n = tfx_node_proto(TFX_OP_MLA_ATTENTION, kv_norm >= 0 ? 4 : 3, (int[]){0, 0, in[3], kv_norm});
  const tfx_fe_arg *sparse = tfx_fe_kwarg(call->args, "sparse");
  if (sparse && tfx_fe_lower_sparse(L->s, "mla_attention", sparse->value, &n.sparse)) return -1;
  if (n.sparse.global_input) {
    ERR(L, sparse->value->loc,
        "mla_attention: per-call global tokens (longformer's global = a tensor) are for "
        "attention and attend only");
    return -1;
  }
  int qin = in[0];
  if (wq_a >= 0) {
    qin = add_linear(L, in[0], wq_a, -1, loc);
    if (qin >= 0 && q_norm >= 0) {
      tfx_node nn = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){qin, q_norm});
      nn.eps = eps;
      qin = add(L, &nn, loc);
    }
    if (qin < 0) return -1;
  }
  int q = add_linear(L, qin, in[1], -1, loc);
  int ckv = q < 0 ? -1 : add_linear(L, in[0], in[2], -1, loc);
  if (ckv < 0) return -1;
  n.inputs[0] = q, n.inputs[1] = ckv;
  n.heads = (int)H, n.head_dim = (int)dn, n.rope_dim = (int)dr, n.v_dim = (int)dv, n.rank = (int)r;
  n.theta = num_kw(L, tfx_fe_position_rope(), rope, "theta");
  n.rope_style = strcmp(enum_kw(tfx_fe_position_rope(), rope, "style"), "half") ? TFX_ROPE_INTERLEAVED : TFX_ROPE_HALF;
  n.eps = eps;
  n.mask = TFX_MASK_CAUSAL;
  int o = add(L, &n, loc);
  return o < 0 ? -1 : add_linear(L, o, in[4], -1, loc);
}

/* glu and moe (frontend/lower_ffn.c); in: the n positional operands. */
static int ffn_begin(lower *L, const tfx_fe_expr *call) {
  if (L->g->n_nodes < MAX_NODES - 32) return 0;
  ERR(L, call->loc, "the model is too large (more than %d graph nodes)", MAX_NODES);
  return -1;
}

static int ffn_end(lower *L, const tfx_fe_expr *call, int id, const char *err) {
  if (id < 0) ERR(L, call->loc, "%s", err[0] ? err : "internal error lowering an op");
  return id;
}

static int lower_glu(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n, const tfx_fe_expr *call) {
  (void)n;
  char err[512] = "";
  if (ffn_begin(L, call)) return -1;
  int b1 = tensor_kw(L, f, call, "b1"), b3 = tensor_kw(L, f, call, "b3");
  if (b1 == -2 || b3 == -2) return -1;
  int id = tfx_fe_lower_glu(L->g, in[0], in[1], in[2], b1, b3, enum_kw(op, call, "act"), call->loc.line, call->loc.col,
                            err, sizeof err);
  return ffn_end(L, call, id, err);
}

static int lower_moe(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n, const tfx_fe_expr *call) {
  char err[512] = "";
  if (ffn_begin(L, call)) return -1;
  tfx_fe_moe_spec m = {.x = in[0], .router = in[1], .w1 = in[2], .w2 = in[3], .w3 = n > 4 ? in[4] : -1};
  m.shared_w1 = tensor_kw(L, f, call, "shared_w1");
  m.shared_w2 = tensor_kw(L, f, call, "shared_w2");
  m.shared_w3 = tensor_kw(L, f, call, "shared_w3");
  if (m.shared_w1 == -2 || m.shared_w2 == -2 || m.shared_w3 == -2) return -1;
  m.top_k = int_kw(L, call, "top_k", 1);
  m.experts = int_kw(L, call, "experts", 0);
  m.act = enum_kw(op, call, "act");
  m.gate = enum_kw(op, call, "gate");
  m.capacity = num_kw(L, op, call, "capacity"); /* default "none": 0 */
  m.line = call->loc.line;
  m.col = call->loc.col;
  return ffn_end(L, call, tfx_fe_lower_moe(L->g, &m, err, sizeof err), err);
}

/* A builtin that is one IR node (TFX_FE_LOWER_OP): the spec's IR op on the
 * positional operands, each keyword with an attribute setting it (a number,
 * or an enum's index among its values), absent keywords their defaults. */
static int lower_ir_op(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n, const tfx_fe_expr *call) {
  tfx_node nd = tfx_node_proto(op->ir, n, in);
  if (op->ir == TFX_OP_SOFTCAP) nd.softcap = 1.0; /* tanh(x); softcap's cap keyword (required) sets it below */
  if (op->ir == TFX_OP_POSITIONS) {               /* segments = s: positions restart at each packed sequence */
    int s = tensor_kw(L, f, call, "segments");
    if (s == -2 || (s >= 0 && check_segments(L, s, "positions", call))) return -1;
    if (s >= 0) nd.inputs[nd.n_inputs++] = s;
    if (tfx_fe_kwarg(call->args, "pad")) { /* pad = id: pad tokens are not counted (RoBERTa) */
      nd.pad_skip = 1;
      nd.pad_id = int_kw(L, call, "pad", 0);
    }
  }
  for (int i = 0; i < op->n_kw; i++) {
    const tfx_fe_kwspec *k = &op->kw[i];
    if (!k->sets_attr) continue;
    const tfx_attr_desc *d = tfx_attr_info(k->attr);
    char *field = (char *)&nd + d->offset;
    if (k->kind == TFX_FE_KW_NUM && d->kind == TFX_ATTR_KIND_DOUBLE) {
      double v = num_kw(L, op, call, k->name);
      memcpy(field, &v, sizeof v);
    } else if (k->kind == TFX_FE_KW_INT && d->kind == TFX_ATTR_KIND_INT) {
      int v = int_kw(L, call, k->name, 0);
      memcpy(field, &v, sizeof v);
    } else if (k->kind == TFX_FE_KW_ENUM && d->kind == TFX_ATTR_KIND_INT) {
      const char *s = enum_kw(op, call, k->name);
      int v = 0;
      while (k->values[v] && strcmp(k->values[v], s)) v++;
      memcpy(field, &v, sizeof v);
    } else {
      ERR(L, call->loc, "internal error: %s's keyword %s cannot set %s", op->name, k->name, d->name);
      return -1;
    }
  }
  return add(L, &nd, call->loc);
}

/* retention(q, k, v, heads), infini_attention(q, k, v, beta, heads, segment),
 * groupnorm(x, g, b, groups, eps): one node of the spec's IR op; the head
 * sizes come from the operands' columns (head_dim from q, v_dim from v). */
static int lower_heads(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n, const tfx_fe_expr *call) {
  int groupnorm = op->ir == TFX_OP_GROUPNORM;
  const char *hk = groupnorm ? "groups" : "heads";
  int heads = int_kw(L, call, hk, 0);
  char a[64];
  if (heads < 1) {
    ERR(L, call->loc, "%s: %s = %d must be >= 1", op->name, hk, heads);
    return -1;
  }
  tfx_node nd = tfx_node_proto(op->ir, n, in);
  nd.heads = heads;
  if (groupnorm) {
    nd.eps = num_kw(L, op, call, "eps");
    return add(L, &nd, call->loc);
  }
  for (int i = 0; i < 3; i += 2) { /* q gives head_dim, v gives v_dim (k is checked by the IR) */
    const tfx_type *t = &L->g->nodes[in[i]].type;
    if (t->rank != 2 || t->dims[1] <= 0 || t->dims[1] % heads) {
      ERR(L, call->loc, "%s: heads = %d does not divide the columns of %s %s", op->name, heads, i ? "v" : "q",
          tfx_type_str(t, a, sizeof a));
      return -1;
    }
    *(i ? &nd.v_dim : &nd.head_dim) = (int)(t->dims[1] / heads);
  }
  if (op->ir == TFX_OP_INFINI_ATTENTION) {
    int seg = int_kw(L, call, "segment", 0);
    if (seg < 1 || seg > 4096) {
      ERR(L, call->loc, "infini_attention: segment = %d must be in 1..4096", seg);
      return -1;
    }
    nd.segment = seg;
  }
  if (op->ir == TFX_OP_RETENTION) { /* gamma = g: the decay of each head (default 1 - 2^(-5-h)) */
    int gm = tensor_kw(L, f, call, "gamma");
    if (gm == -2) return -1;
    if (gm >= 0) {
      const tfx_type *gt = &L->g->nodes[gm].type;
      if (gt->dtype != TFX_DT_F32 || gt->rank != 1 || gt->dims[0] != heads) {
        ERR(L, tfx_fe_kwarg(call->args, "gamma")->value->loc,
            "retention: gamma is %s, expected f32[%d] (one decay per head)", tfx_type_str(gt, a, sizeof a), heads);
        return -1;
      }
      nd.inputs[nd.n_inputs++] = gm;
    }
  }
  return add(L, &nd, call->loc);
}

/* the lowering of each kind of builtin (tfx_fe_opspec.lowering) */
typedef int (*lower_fn)(lower *L, frame *f, const tfx_fe_opspec *op, const int *in, int n, const tfx_fe_expr *call);
static const lower_fn lowerings[TFX_FE_LOWER_COUNT] = {
    [TFX_FE_LOWER_OP] = lower_ir_op,
    [TFX_FE_LOWER_ROPE] = lower_rope,
    [TFX_FE_LOWER_ATTENTION] = lower_attention,
    [TFX_FE_LOWER_MLA] = lower_mla,
    [TFX_FE_LOWER_GLU] = lower_glu,
    [TFX_FE_LOWER_MOE] = lower_moe,
    [TFX_FE_LOWER_HEADS] = lower_heads,
    [TFX_FE_LOWER_ATTEND] = lower_attend,
};

static int lower_op(lower *L, frame *f, const tfx_fe_opspec *op, const tfx_fe_expr *call) {
  int in[TFX_FE_MAX_POS], n = 0, bad = 0;
  for (const tfx_fe_arg *a = call->args; a; a = a->next) {
    if (a->key || n >= TFX_FE_MAX_POS) continue;
    in[n] = lower_expr(L, f, a->value);
    bad |= in[n++] < 0;
  }
  if (bad) return -1;
  if (op->lowering < 0 || op->lowering >= TFX_FE_LOWER_COUNT || !lowerings[op->lowering]) {
    ERR(L, call->loc, "internal error: no lowering for op '%s'", op->name);
    return -1;
  }
  return lowerings[op->lowering](L, f, op, in, n, call);
}

/* ---- blocks ---- */

static const char *call_prefix(const tfx_fe_expr *call) {
  const tfx_fe_arg *a = tfx_fe_kwarg(call->args, "prefix");
  return a && a->value->kind == TFX_FE_EXPR_STRING ? a->value->str : NULL;
}

/* Lowers the positional arguments of a block call into args[]; -1 if any failed. */
static int lower_args(lower *L, frame *f, const tfx_fe_expr *call, tfx_fe_blocksym *b, int *args,
                      const tfx_fe_arg **exprs) {
  int bad = 0;
  for (int i = 0; i < b->n_inputs; i++) {
    exprs[i] = tfx_fe_posarg(call->args, i);
    args[i] = exprs[i] ? lower_expr(L, f, exprs[i]->value) : -1;
    bad |= args[i] < 0;
  }
  return bad ? -1 : 0;
}

static int lower_block_call(lower *L, frame *f, const tfx_fe_expr *call) {
  tfx_fe_blocksym *b = tfx_fe_sym_find(&L->s->blocks, call->str)->ptr;
  int args[TFX_FE_MAX_BLOCK_INPUTS];
  const tfx_fe_arg *exprs[TFX_FE_MAX_BLOCK_INPUTS];
  if (lower_args(L, f, call, b, args, exprs)) return -1;
  const char *p = call_prefix(call);
  const char *name = p ? p : call->str; /* prefix = "" keeps the caller's prefix */
  const char *prefix = name[0] ? join(L, f->prefix, name, NULL) : f->prefix;
  return instantiate(L, b, args, exprs, prefix, call->loc);
}

static int lower_repeat(lower *L, frame *f, const tfx_fe_expr *e) {
  const tfx_fe_expr *call = e->lhs;
  tfx_fe_blocksym *b = tfx_fe_sym_find(&L->s->blocks, call->str)->ptr;
  int64_t count = 0;
  if (tfx_fe_eval_int(L->s, tfx_fe_posarg(e->rargs, 0)->value, 1, "the repeat count", &count)) return -1;
  const tfx_fe_arg *pa = tfx_fe_kwarg(e->rargs, "prefix");
  const char *name = pa ? pa->value->str : "layers";
  int args[TFX_FE_MAX_BLOCK_INPUTS];
  const tfx_fe_arg *exprs[TFX_FE_MAX_BLOCK_INPUTS];
  if (lower_args(L, f, call, b, args, exprs)) return -1;
  for (int64_t i = 0; i < count; i++) {
    char idx[24];
    snprintf(idx, sizeof idx, "%lld", (long long)i);
    const char *prefix = join(L, f->prefix, name, idx);
    int out = instantiate(L, b, args, exprs, prefix, call->loc);
    if (out < 0 || L->s->diag->stopped) return -1;
    args[0] = out;
  }
  return args[0];
}

/* Lowers one instance of block b on args; its params are named prefix.<name>
 * (plain <name> when prefix is NULL). Returns the returned value's node. */
static int instantiate(lower *L, tfx_fe_blocksym *b, const int *args, const tfx_fe_arg *const *arg_exprs,
                       const char *prefix, tfx_fe_loc loc) {
  const tfx_fe_item *it = b->item;
  char t0[64], t1[64];
  if (b->active) {
    ERR(L, loc, "block '%s' calls itself (recursion is not allowed)", it->name);
    return -1;
  }
  if (L->nesting >= MAX_BLOCK_NESTING) {
    ERR(L, loc, "blocks nested too deeply (more than %d block calls inside each other)", MAX_BLOCK_NESTING);
    return -1;
  }
  if (!b->sig_ok) return -1;
  for (int i = 0; i < b->n_inputs; i++) {
    const tfx_type *got = &L->g->nodes[args[i]].type;
    if (!tfx_type_equal(got, &b->in_types[i])) {
      tfx_fe_loc at = arg_exprs && arg_exprs[i] ? arg_exprs[i]->loc : loc;
      const tfx_fe_param *in = it->inputs;
      for (int k = 0; k < i; k++) in = in->next;
      ERR(L, at, "argument '%s' of block '%s' is %s, expected %s", in->name, it->name, tfx_type_str(got, t0, sizeof t0),
          tfx_type_str(&b->in_types[i], t1, sizeof t1));
      tfx_fe_note(L->s->diag, in->loc.line, in->loc.col, "input '%s' of block '%s' is declared here", in->name,
                  it->name);
      return -1;
    }
  }
  frame f = {b, prefix, {0}};
  int i = 0;
  for (const tfx_fe_param *in = it->inputs; in; in = in->next, i++) tfx_fe_sym_put(&f.vars, in->name, NULL, args[i]);
  b->active = 1;
  L->nesting++;
  int result = -1;
  for (const tfx_fe_stmt *st = it->body; st && !L->s->diag->stopped; st = st->next) {
    if (st->kind == TFX_FE_STMT_PARAM) continue;
    int id = lower_expr(L, &f, st->value);
    if (st->kind == TFX_FE_STMT_ASSIGN) {
      if (!tfx_fe_sym_put(&f.vars, st->name, NULL, id)) L->oom = 1;
      continue;
    }
    if (id >= 0 && !tfx_type_equal(&L->g->nodes[id].type, &b->ret)) {
      const tfx_type *got = &L->g->nodes[id].type;
      if (it->kind == TFX_FE_ITEM_FORWARD)
        ERR(L, st->value->loc, "forward returns %s, but its declared type is %s", tfx_type_str(got, t0, sizeof t0),
            tfx_type_str(&b->ret, t1, sizeof t1));
      else
        ERR(L, st->value->loc, "block '%s' returns %s, but its declared type is %s", it->name,
            tfx_type_str(got, t0, sizeof t0), tfx_type_str(&b->ret, t1, sizeof t1));
      if (it->ret) tfx_fe_note(L->s->diag, it->ret->loc.line, it->ret->loc.col, "the declared return type is here");
      id = -1;
    }
    result = id;
    break;
  }
  b->active = 0;
  L->nesting--;
  tfx_fe_symtab_free(&f.vars);
  return result;
}

/* x[:, a:b] (axes checked by sema): COL_SLICE of x's columns a .. b - 1; a
 * defaults to 0 and b to x's columns; all of them is x itself; a slice of a
 * COL_SLICE slices its operand (one copy; the first becomes dead when
 * nothing else reads it). */
static int lower_index(lower *L, frame *f, const tfx_fe_expr *e) {
  int x = lower_expr(L, f, e->lhs);
  if (x < 0) return -1;
  const tfx_type *t = &L->g->nodes[x].type;
  const tfx_fe_slice *cols = e->slices->next;
  char s0[64];
  if (t->dtype != TFX_DT_F32 || t->rank != 2 || t->dims[1] <= 0) {
    ERR(L, e->loc, "x[:, a:b] takes columns of a value f32[M, N]; this one is %s", tfx_type_str(t, s0, sizeof s0));
    return -1;
  }
  int64_t N = t->dims[1], lo = 0, hi = N;
  if ((cols->lo && tfx_fe_eval_int(L->s, cols->lo, 0, "the slice's start", &lo)) ||
      (cols->hi && tfx_fe_eval_int(L->s, cols->hi, 0, "the slice's end", &hi)))
    return -1;
  if (!(lo < hi && hi <= N)) {
    ERR(L, cols->loc, "columns %lld:%lld are not a range of the value's %s (0 <= a < b <= %lld)", (long long)lo,
        (long long)hi, tfx_type_str(t, s0, sizeof s0), (long long)N);
    return -1;
  }
  if (lo == 0 && hi == N) return x;
  const tfx_node *xn = &L->g->nodes[x];
  if (xn->op == TFX_OP_COL_SLICE) { /* a slice of a slice: one copy from the first's operand */
    lo += xn->col_lo;
    hi += xn->col_lo;
    x = xn->inputs[0];
  }
  tfx_node n = tfx_node_proto(TFX_OP_COL_SLICE, 1, &x);
  n.col_lo = (int)lo;
  n.col_hi = (int)hi;
  return add(L, &n, e->loc);
}

static int lower_expr(lower *L, frame *f, const tfx_fe_expr *e) {
  if (L->s->diag->stopped || L->oom) return -1;
  switch (e->kind) {
  case TFX_FE_EXPR_NAME: return lower_name(L, f, e);
  case TFX_FE_EXPR_NEG: {
    int a = lower_expr(L, f, e->lhs);
    return a < 0 ? -1 : add_affine(L, a, -1.0, 0.0, e->loc);
  }
  case TFX_FE_EXPR_BINARY: {
    int lc = tfx_fe_is_const_expr(L->s, e->lhs, &f->vars, &f->b->params);
    int rc = tfx_fe_is_const_expr(L->s, e->rhs, &f->vars, &f->b->params);
    if (lc || rc) { /* a tensor and a constant: AFFINE (checked by sema) */
      tfx_fe_value v;
      if (tfx_fe_eval(L->s, lc ? e->lhs : e->rhs, &v)) return -1;
      double c = tfx_fe_value_f(v);
      int a = lower_expr(L, f, lc ? e->rhs : e->lhs);
      if (a < 0) return -1;
      switch (e->op) {
      case '+': return add_affine(L, a, 1.0, c, e->loc);
      case '-': return lc ? add_affine(L, a, -1.0, c, e->loc) : add_affine(L, a, 1.0, -c, e->loc);
      case '*': return add_affine(L, a, c, 0.0, e->loc);
      default: return add_affine(L, a, 1.0 / c, 0.0, e->loc);
      }
    }
    int a = lower_expr(L, f, e->lhs), b = lower_expr(L, f, e->rhs);
    if (a < 0 || b < 0) return -1;
    return add2(L, e->op == '+' ? TFX_OP_ADD : e->op == '-' ? TFX_OP_SUB : TFX_OP_MUL, a, b, e->loc);
  }
  case TFX_FE_EXPR_CALL: {
    const tfx_fe_opspec *op = tfx_fe_builtin(e->str);
    return op ? lower_op(L, f, op, e) : lower_block_call(L, f, e);
  }
  case TFX_FE_EXPR_REPEAT: return lower_repeat(L, f, e);
  case TFX_FE_EXPR_INDEX: return lower_index(L, f, e);
  default: ERR(L, e->loc, "internal error: expected a tensor"); return -1;
  }
}

/* The quantize { } rules into the graph's schedule; a pattern that matches
 * no param's name is an error (a misspelt rule would quietly do nothing). */
static void lower_quant_rules(lower *L) {
  if (!L->s->quantize_rules) return;
  for (const tfx_fe_rename *r = L->s->quantize_rules->renames; r; r = r->next) {
    tfx_quant_choice c;
    if (tfx_quant_choice_parse(r->to, 0, &c)) continue; /* reported by sema */
    int hit = 0;
    for (int i = 0; i < L->g->n_nodes && !hit; i++)
      hit = L->g->nodes[i].op == TFX_OP_PARAM && tfx_quant_pattern_match(r->from, L->g->nodes[i].name);
    if (!hit) {
      ERR(L, r->loc,
          "quantize rule \"%s\" matches no param the model uses (params in repeated blocks are named like "
          "\"layers.0.wq\"; '*' matches any characters)",
          r->from);
      continue;
    }
    if (tfx_graph_add_quant_rule(L->g, r->from, c, r->loc.line, r->loc.col)) L->oom = 1;
  }
}

/* tokens { }: each id below the vocabulary (the rows of the embedding table
 * the input indexes), and the section (and a tokenizer statement) only for a
 * forward taking token ids. */
static void check_token_ids(lower *L) {
  const tfx_fe_sema *s = L->s;
  const tfx_graph *g = L->g;
  if (s->tokenizer && g->nodes[g->input].type.dtype != TFX_DT_I32)
    tfx_fe_error(s->diag, s->tokenizer->loc.line, s->tokenizer->loc.col,
                 "a tokenizer needs a forward that takes token ids (i32[T])");
  if (!s->tokens) return;
  if (g->nodes[g->input].type.dtype != TFX_DT_I32) {
    tfx_fe_error(s->diag, s->tokens->loc.line, s->tokens->loc.col,
                 "a tokens { } section needs a forward that takes token ids (i32[T])");
    return;
  }
  int64_t vocab = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_EMBEDDING && g->nodes[i].inputs[1] == g->input)
      vocab = g->nodes[g->nodes[i].inputs[0]].type.dims[0];
  for (const tfx_fe_stmt *st = s->tokens->body; st && vocab > 0; st = st->next) {
    int64_t id = !strcmp(st->name, "bos") ? s->bos_id : !strcmp(st->name, "eos") ? s->eos_id : s->pad_id;
    if (id >= vocab)
      tfx_fe_error(s->diag, st->value->loc.line, st->value->loc.col, "%s = %lld is not below the vocabulary size %lld",
                   st->name, (long long)id, (long long)vocab);
  }
}

tfx_graph *tfx_fe_lower(tfx_fe_sema *s) {
  lower L;
  memset(&L, 0, sizeof L);
  L.s = s;
  tfx_fe_blocksym *fwd = s->forward;
  int before = s->diag->errors;
  L.g = tfx_graph_new(s->name, s->max_seq);
  if (!L.g) {
    tfx_fe_error(s->diag, 0, 0, "out of memory");
    return NULL;
  }
  L.g->schedule.threads = s->threads;
  L.g->schedule.prefetch = s->prefetch;
  L.g->schedule.streams = s->streams;
  L.g->schedule.unroll = s->unroll;
  L.g->schedule.prefill_chunk = s->prefill_chunk;
  L.g->schedule.attention = s->attention;
  L.g->schedule.decode = s->decode;
  L.g->schedule.quantize = s->quantize;
  L.g->schedule.act_f32 = s->act_f32;
  L.g->bos_id = s->bos_id;
  L.g->eos_id = s->eos_id;
  L.g->pad_id = s->pad_id;
  /* one INPUT node per forward input, in order (sema allows
   * TFX_MAX_FWD_INPUTS); the first is g->input */
  int ids[TFX_MAX_FWD_INPUTS], input = 0, k = 0;
  for (const tfx_fe_param *in = fwd->item->inputs; in && k < TFX_MAX_FWD_INPUTS && input >= 0; in = in->next, k++) {
    input = ids[k] = tfx_graph_add_input(L.g, in->name, fwd->in_types[k]);
    if (input < 0) break;
    L.g->nodes[input].line = in->loc.line;
    L.g->nodes[input].col = in->loc.col;
  }
  /* the sources' hidden row mask: the last input (sema checked that the
   * sources share their rows N) */
  L.rows_mask = -1;
  for (int j = 1; j < k && input >= 0; j++) {
    const tfx_type *t = &fwd->in_types[j];
    if (t->rank != 1 || t->dims[0] <= 0) continue;
    tfx_type mt = {.dtype = TFX_DT_I32, .rank = 1, .dims = {t->dims[0]}};
    if (k >= TFX_MAX_FWD_INPUTS) {
      tfx_fe_error(s->diag, fwd->item->loc.line, fwd->item->loc.col,
                   "forward takes at most %d inputs with a source (its row mask is one more)", TFX_MAX_FWD_INPUTS - 1);
      input = -2;
      break;
    }
    L.rows_mask = input = tfx_graph_add_input(L.g, "#rows", mt);
    L.g->rows_mask = k;
    break;
  }
  if (input >= 0) L.g->output = instantiate(&L, fwd, ids, NULL, NULL, fwd->item->loc);
  if (s->diag->errors == before && L.g->output >= 0) lower_quant_rules(&L);
  if (s->diag->errors == before && L.g->output >= 0) check_token_ids(&L);
  if (L.oom || input == -1) tfx_fe_error(s->diag, 0, 0, "out of memory");
  tfx_fe_symtab_free(&L.param_nodes);
  free(L.src_flag);
  if (s->diag->errors != before || L.g->output < 0) {
    if (s->diag->errors == before) tfx_fe_error(s->diag, 0, 0, "internal error: forward produced no value");
    tfx_graph_free(L.g);
    return NULL;
  }
  return L.g;
}
