/* tests/test_op_table.c — the op table of ir/ops.h and what is derived from
 * it: every op has a unique name, a sane arity, an interpreter entry (or is a
 * source, documented as having none) and an emitter; the attribute
 * descriptors are consistent; CSE (through tfx_node_attrs_equal) refuses to
 * merge two nodes differing in any single attribute their op reads, for every
 * attribute of every CSE-able op (generated from the table), and merges them
 * when equal; tfx_node_attr_key tells them apart; and, run through the
 * reference interpreter, an attribute the table says an op does NOT read
 * indeed leaves its result unchanged (so an attribute missing from an op's
 * row, which CSE and the body keys would ignore, fails here). Also the
 * frontend's builtin specs: each lowers to an IR op that takes its operands,
 * and each keyword sets an attribute its op reads, with one typed default.
 * And the ir/ columns: every row names its type inference, verifier check,
 * printer and cost; tfx_infer_type checks every op's arity from its row; the
 * generic printer prints exactly the row's attributes (changing one the op
 * reads changes the text, changing another does not) in their print forms;
 * the verifier runs the check the row names. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../frontend/sema.h"
#include "../ir/ir.h"
#include "../passes/passes.h"

/* ---- the table itself ---- */

static void test_every_op_is_described(void **state) {
  (void)state;
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    assert_non_null(d->name);
    assert_true(d->name[0] != 0 && strcmp(d->name, "?"));
    assert_string_equal(tfx_op_name((tfx_op)o), d->name);
    for (int p = 0; p < o; p++)
      if (!strcmp(tfx_op_info((tfx_op)p)->name, d->name)) fail_msg("ops %d and %d share the name %s", p, o, d->name);
    assert_true(d->min_inputs >= 0 && d->min_inputs <= d->max_inputs && d->max_inputs <= TFX_MAX_INPUTS);
    assert_non_null(d->roles);
    assert_true(d->interp && d->interp[0] && d->emit && d->emit[0]);
    /* sources have no interpreter entry or kernel of their own (documented as "source"); every other op has both */
    int source = (d->traits & TFX_TRAIT_SOURCE) != 0;
    if (source != !strcmp(d->interp, "source")) fail_msg("%s: interpreter entry %s", d->name, d->interp);
    if (source != !strcmp(d->emit, "source")) fail_msg("%s: emitter %s", d->name, d->emit);
    if (source) assert_true(d->min_inputs == 0 && d->max_inputs == 0 && (d->traits & TFX_TRAIT_NO_KERNEL));
    /* launching no kernel is a source, a view or a folded weight transform */
    if (d->traits & TFX_TRAIT_NO_KERNEL)
      assert_true(d->traits & (TFX_TRAIT_SOURCE | TFX_TRAIT_VIEW | TFX_TRAIT_FOLDED));
    if (d->traits & (TFX_TRAIT_VIEW | TFX_TRAIT_FOLDED)) assert_true(d->traits & TFX_TRAIT_NO_KERNEL);
    if (d->traits & TFX_TRAIT_VIEW) assert_string_equal(d->emit, "view");
    if (d->traits & TFX_TRAIT_FOLDED) assert_string_equal(d->emit, "folded");
    /* a value with a KV cache is stateful: never merged */
    if (d->traits & TFX_TRAIT_KV_CACHE) assert_false(d->traits & TFX_TRAIT_CSE);
    assert_false((d->traits & TFX_TRAIT_ROW_WISE) && (d->traits & TFX_TRAIT_ROW_WISE_IF));
    /* fixed in-place candidates need the operands */
    if (d->inplace == TFX_INPLACE_FIRST) assert_true(d->min_inputs >= 1);
    if (d->inplace == TFX_INPLACE_EITHER) assert_true(d->min_inputs >= 2);
    assert_true(d->attrs < (TFX_ATTR_COUNT == 64 ? ~UINT64_C(0) : (UINT64_C(1) << TFX_ATTR_COUNT)));
  }
  assert_string_equal(tfx_op_name(TFX_OP_COUNT), "?");
  assert_string_equal(tfx_op_name(TFX_OP_RMSNORM), "rmsnorm");
  assert_int_equal(tfx_op_info(TFX_OP_RMSNORM)->attrs, TFX_A(EPS) | TFX_A(HEADS));
}

static void test_attribute_descriptors(void **state) {
  (void)state;
  for (int i = 0; i < TFX_ATTR_COUNT; i++) {
    const tfx_attr_desc *a = tfx_attr_info((tfx_attr_id)i);
    assert_non_null(a);
    assert_true(a->name && a->name[0]);
    assert_true(a->size > 0 && a->offset + a->size <= sizeof(tfx_node));
    if (a->kind == TFX_ATTR_KIND_DOUBLE) assert_int_equal(a->size, sizeof(double));
    if (a->kind == TFX_ATTR_KIND_INT || a->kind == TFX_ATTR_KIND_UINT) assert_int_equal(a->size, sizeof(int));
    for (int j = 0; j < i; j++) {
      const tfx_attr_desc *b = tfx_attr_info((tfx_attr_id)j);
      if (!strcmp(a->name, b->name)) fail_msg("attributes %d and %d share the name %s", j, i, a->name);
      /* no two descriptors overlap */
      assert_true(a->offset + a->size <= b->offset || b->offset + b->size <= a->offset);
    }
    /* the graph's bookkeeping is not an attribute */
    assert_true(a->offset >= offsetof(tfx_node, eps) && a->offset < offsetof(tfx_node, weight_offset));
  }
  assert_string_equal(tfx_attr_info(TFX_ATTR_THETA)->name, "theta");
  assert_int_equal(tfx_attr_info(TFX_ATTR_THETA)->offset, offsetof(tfx_node, theta));
  assert_int_equal(tfx_attr_info(TFX_ATTR_NORM)->offset, offsetof(tfx_node, fx.norm));
  assert_null(tfx_attr_info(TFX_ATTR_COUNT));
}

/* ---- perturbing one attribute ---- */

/* Sets attribute a of n to a value different from its current one. */
static void perturb(tfx_node *n, int a) {
  const tfx_attr_desc *d = tfx_attr_info((tfx_attr_id)a);
  char *p = (char *)n + d->offset;
  if (d->kind == TFX_ATTR_KIND_DOUBLE) {
    double v;
    memcpy(&v, p, sizeof v);
    v = v * 0.5 + 0.25;
    memcpy(p, &v, sizeof v);
  } else if (d->kind == TFX_ATTR_KIND_INT || d->kind == TFX_ATTR_KIND_UINT) {
    int v;
    memcpy(&v, p, sizeof v);
    v = v + 1;
    memcpy(p, &v, sizeof v);
  } else {
    p[0] ^= 1; /* a struct or an array: its first byte */
  }
}

/* ---- CSE, generated from the table ---- */

/* A graph [x, a, b, add(a, b)] where a and b are raw nodes of op `op` (all
 * operands x, type f32[T, 8]), b's attribute `attr` perturbed (attr < 0:
 * none). Runs CSE and returns 1 when a and b were merged. */
static int cse_merges(tfx_op op, int attr) {
  tfx_graph *g = tfx_graph_new("cse", 16);
  tfx_type t = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 8});
  int x = tfx_graph_add_input(g, "x", t);
  assert_int_equal(x, 0);
  tfx_node *nodes = realloc(g->nodes, 8 * sizeof *nodes);
  assert_non_null(nodes);
  g->nodes = nodes;
  g->cap = 8;
  const tfx_op_desc *d = tfx_op_info(op);
  int n_in = d->min_inputs > 0 ? d->min_inputs : 1;
  int ins[TFX_MAX_INPUTS] = {0};
  tfx_node a = tfx_node_proto(op, n_in, ins);
  a.type = t;
  a.id = 1;
  tfx_node b = a;
  b.id = 2;
  if (attr >= 0) perturb(&b, attr);
  tfx_node sum = tfx_node_proto(TFX_OP_ADD, 2, (int[]){1, 2});
  sum.type = t;
  sum.id = 3;
  g->nodes[1] = a;
  g->nodes[2] = b;
  g->nodes[3] = sum;
  g->n_nodes = 4;
  g->output = 3;
  char err[256] = "";
  tfx_pass_ctx c = {.g = g, .err = err, .errlen = sizeof err};
  if (tfx_pass_cse(&c)) fail_msg("cse: %s", err);
  const tfx_node *out = &g->nodes[g->output];
  assert_int_equal(out->op, TFX_OP_ADD);
  int merged = out->inputs[0] == out->inputs[1];
  tfx_graph_free(g);
  return merged;
}

static void test_cse_every_attribute(void **state) {
  (void)state;
  int ops = 0, cases = 0;
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    if (!(d->traits & TFX_TRAIT_CSE)) continue;
    ops++;
    if (!cse_merges((tfx_op)o, -1)) fail_msg("cse does not merge two equal %s nodes", d->name);
    for (int a = 0; a < TFX_ATTR_COUNT; a++) {
      if (!(d->attrs >> a & 1)) continue;
      cases++;
      if (cse_merges((tfx_op)o, a))
        fail_msg("cse merged two %s nodes differing in %s", d->name, tfx_attr_info((tfx_attr_id)a)->name);
    }
  }
  /* the table marks these CSE-able today; each with its attributes */
  assert_true(ops >= 16);
  assert_true(cases >= 14);
}

/* The mutation that survived before the table: rope(x, theta = 10000) and
 * rope(x, theta = 100) are different values. */
static void test_cse_keeps_rope_thetas_apart(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("rope", 16);
  int x = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 8}));
  int r[3];
  double thetas[3] = {10000, 100, 10000};
  char err[256] = "";
  for (int i = 0; i < 3; i++) {
    tfx_node p = tfx_node_proto(TFX_OP_ROPE, 1, &x);
    p.heads = 2, p.head_dim = 4, p.rotary_dim = 4, p.theta = thetas[i];
    r[i] = tfx_graph_add(g, &p, err, sizeof err);
    assert_true(r[i] >= 0);
  }
  tfx_node p = tfx_node_proto(TFX_OP_ADD, 2, (int[]){r[0], r[1]});
  int s = tfx_graph_add(g, &p, err, sizeof err);
  p = tfx_node_proto(TFX_OP_ADD, 2, (int[]){s, r[2]});
  g->output = tfx_graph_add(g, &p, err, sizeof err);
  tfx_pass_ctx c = {.g = g, .err = err, .errlen = sizeof err};
  if (tfx_pass_cse(&c)) fail_msg("cse: %s", err);
  int ropes = 0;
  for (int i = 0; i < g->n_nodes; i++) ropes += g->nodes[i].op == TFX_OP_ROPE;
  assert_int_equal(ropes, 2); /* the two theta = 10000 merged, theta = 100 kept */
  tfx_graph_free(g);
}

/* ---- the attribute key ---- */

static void test_attr_key(void **state) {
  (void)state;
  char k0[512], k1[512];
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    tfx_node a = tfx_node_proto((tfx_op)o, 0, NULL);
    int need = tfx_node_attr_key(&a, k0, sizeof k0);
    assert_true(need >= 0 && (size_t)need < sizeof k0);
    for (int i = 0; i < TFX_ATTR_COUNT; i++) {
      tfx_node b = a;
      perturb(&b, i);
      tfx_node_attr_key(&b, k1, sizeof k1);
      int read = (int)(d->attrs >> i & 1);
      if (read != (strcmp(k0, k1) != 0))
        fail_msg("%s: the key %s of attribute %s", d->name, read ? "ignores" : "depends on",
                 tfx_attr_info((tfx_attr_id)i)->name);
      assert_int_equal(read, !tfx_node_attrs_equal(&a, &b));
    }
  }
  /* exact doubles: 1e-5 and 1.00000000001e-5 differ */
  tfx_node a = tfx_node_proto(TFX_OP_RMSNORM, 0, NULL), b = a;
  a.eps = 1e-5;
  b.eps = 1.00000000001e-5;
  tfx_node_attr_key(&a, k0, sizeof k0);
  tfx_node_attr_key(&b, k1, sizeof k1);
  assert_string_not_equal(k0, k1);
  /* a short buffer reports the length it needs */
  char small[4];
  assert_true(tfx_node_attr_key(&a, small, sizeof small) > (int)sizeof small);
}

/* ---- attributes an op does not read leave the interpreter's result unchanged ---- */

typedef struct {
  tfx_graph *g;
  float blob[1024];
  int64_t used; /* floats */
} fixture;

static int fparam(fixture *f, const char *name, int rank, int64_t a, int64_t b) {
  int id = tfx_graph_add_param(f->g, name, tfx_type_make(TFX_DT_F32, rank, (int64_t[]){a, b}));
  int64_t n = rank == 1 ? a : a * b;
  f->g->nodes[id].weight_offset = f->used * 4;
  for (int64_t i = 0; i < n; i++) f->blob[f->used + i] = (float)((f->used + i) % 7) * 0.25f - 0.6f;
  f->used += n;
  f->g->weights_bytes = f->used * 4;
  return id;
}

/* A graph computing one node of op from x f32[T, 8] (the output), or NULL
 * when this test has no fixture for the op. */
static tfx_graph *make_fixture(fixture *f, tfx_op op) {
  memset(f, 0, sizeof *f);
  f->g = tfx_graph_new("fix", 16);
  int x = tfx_graph_add_input(f->g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 8}));
  tfx_node p = tfx_node_proto(op, 1, &x);
  switch (op) {
  case TFX_OP_RMSNORM: p = tfx_node_proto(op, 2, (int[]){x, fparam(f, "g", 1, 8, 0)}); break;
  case TFX_OP_LAYERNORM: p = tfx_node_proto(op, 3, (int[]){x, fparam(f, "g", 1, 8, 0), fparam(f, "b", 1, 8, 0)}); break;
  case TFX_OP_LINEAR:
  case TFX_OP_MATMUL: p = tfx_node_proto(op, 2, (int[]){x, fparam(f, "w", 2, 8, 8)}); break;
  case TFX_OP_ADD:
  case TFX_OP_SUB:
  case TFX_OP_MUL: p = tfx_node_proto(op, 2, (int[]){x, fparam(f, "r", 1, 8, 0)}); break;
  case TFX_OP_POSITIONS: p = tfx_node_proto(op, 2, (int[]){fparam(f, "pos", 2, 16, 8), x}); break;
  case TFX_OP_SILU:
  case TFX_OP_GELU:
  case TFX_OP_RELU:
  case TFX_OP_SIGMOID:
  case TFX_OP_SOFTMAX: break;
  case TFX_OP_ROPE: p.heads = 2, p.head_dim = 4, p.rotary_dim = 4, p.theta = 100; break;
  case TFX_OP_SINUSOIDAL: p.theta = 100; break;
  case TFX_OP_SOFTCAP: p.softcap = 2; break;
  case TFX_OP_COL_SLICE: p.col_lo = 2, p.col_hi = 6; break;
  case TFX_OP_CONCAT_COLS: p = tfx_node_proto(op, 2, (int[]){x, x}); break;
  case TFX_OP_NORM_STATS: p.fx.norm = TFX_NORM_LAYER, p.eps = 1e-5; break;
  case TFX_OP_ATTENTION:
    p = tfx_node_proto(op, 3, (int[]){x, x, x});
    p.heads = 2, p.kv_heads = 2, p.head_dim = 4, p.mask = TFX_MASK_CAUSAL;
    break;
  case TFX_OP_RETENTION:
    p = tfx_node_proto(op, 3, (int[]){x, x, x});
    p.heads = 2, p.head_dim = 4, p.v_dim = 4;
    break;
  case TFX_OP_INFINI_ATTENTION:
    p = tfx_node_proto(op, 4, (int[]){x, x, x, fparam(f, "beta", 1, 2, 0)});
    p.heads = 2, p.head_dim = 4, p.v_dim = 4, p.segment = 2;
    break;
  case TFX_OP_GROUPNORM:
    p = tfx_node_proto(op, 3, (int[]){x, fparam(f, "g", 1, 8, 0), fparam(f, "b", 1, 8, 0)});
    p.heads = 2, p.eps = 1e-5;
    break;
  default: tfx_graph_free(f->g); return NULL;
  }
  p.eps = op == TFX_OP_RMSNORM || op == TFX_OP_LAYERNORM ? 1e-5 : p.eps;
  char err[256] = "";
  f->g->output = tfx_graph_add(f->g, &p, err, sizeof err);
  if (f->g->output < 0) fail_msg("%s fixture: %s", tfx_op_name(op), err);
  return f->g;
}

/* The interpreter's output for 3 rows; 0, or -1 when the graph is rejected. */
static int interpret(fixture *f, float *out) {
  static const float in[24] = {0.5f, -1, 2,     0.25f, -0.75f, 1.5f, 3, -2, 1,      0,     -0.5f, 0.125f,
                               2.5f, -3, 0.75f, 1,     -1.25f, 0.5f, 0, 2,  -0.25f, 1.75f, -2.5f, 0.375f};
  tfx_interp *it = tfx_interp_new(f->g, (const uint8_t *)f->blob);
  char err[256] = "";
  int rc = tfx_interp_forward(it, in, 3, out, err, sizeof err);
  tfx_interp_free(it);
  return rc;
}

static void test_unread_attributes_do_not_matter(void **state) {
  (void)state;
  int ops = 0, checked = 0;
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    fixture f;
    if (!make_fixture(&f, (tfx_op)o)) continue;
    ops++;
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    int id = f.g->output;
    float want[64], got[64];
    size_t bytes = (size_t)tfx_type_bytes(&f.g->nodes[id].type, 3);
    assert_true(bytes <= sizeof want);
    if (interpret(&f, want)) fail_msg("%s fixture does not run", d->name);
    tfx_node saved = f.g->nodes[id];
    for (int a = 0; a < TFX_ATTR_COUNT; a++) {
      if (d->attrs >> a & 1) continue;
      perturb(&f.g->nodes[id], a);
      memset(got, 0, sizeof got);
      /* a perturbation the verifier rejects cannot give a wrong value */
      if (interpret(&f, got) == 0) {
        checked++;
        if (memcmp(got, want, bytes))
          fail_msg("%s reads %s, which its row of ir/ops.h does not list", d->name,
                   tfx_attr_info((tfx_attr_id)a)->name);
      }
      f.g->nodes[id] = saved;
    }
    tfx_graph_free(f.g);
  }
  assert_true(ops >= 17);
  assert_true(checked > 17 * 20);
}

/* And the other way: the attributes listed for these ops change their result. */
static void test_read_attributes_matter(void **state) {
  (void)state;
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    fixture f;
    if (!make_fixture(&f, (tfx_op)o)) continue;
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    int id = f.g->output;
    float want[64], got[64];
    size_t bytes = (size_t)tfx_type_bytes(&f.g->nodes[id].type, 3);
    if (interpret(&f, want)) fail_msg("%s fixture does not run", d->name);
    tfx_node saved = f.g->nodes[id];
    for (int a = 0; a < TFX_ATTR_COUNT; a++) {
      if (!(d->attrs >> a & 1)) continue;
      perturb(&f.g->nodes[id], a);
      /* rejected by the verifier, or a different value */
      if (interpret(&f, got) == 0 && !memcmp(got, want, bytes) && a != TFX_ATTR_MASK && a != TFX_ATTR_SPARSE &&
          a != TFX_ATTR_ATTN_SCHEDULE && a != TFX_ATTR_ATTN_SPLIT && /* a schedule changes how, never what */
          a != TFX_ATTR_PAD_ID) /* read only with pad_skip (positions' fixture has f32 rows) */
        fail_msg("%s: changing %s changes nothing", d->name, tfx_attr_info((tfx_attr_id)a)->name);
      f.g->nodes[id] = saved;
    }
    tfx_graph_free(f.g);
  }
}

/* ---- the ir/ columns: type inference, the verifier's checks, the printer; the cost ---- */

static int is_token(const char *t) {
  if (!t || !t[0]) return 0;
  for (; *t; t++)
    if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '_')) return 0;
  return 1;
}

static void test_every_op_names_its_functions(void **state) {
  (void)state;
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    /* every row names an inference function, a check, a printer and a cost */
    if (!is_token(d->infer) || !is_token(d->check) || !is_token(d->print) || !is_token(d->cost))
      fail_msg("%s: infer %s, check %s, print %s, cost %s", d->name, d->infer, d->check, d->print, d->cost);
    /* the sources share one inference (the type they were given), and only they */
    int source = (d->traits & TFX_TRAIT_SOURCE) != 0;
    if (source != !strcmp(d->infer, "source")) fail_msg("%s: inference %s", d->name, d->infer);
    /* an op reading no attribute has none to check or to print by itself */
    if (!d->attrs) {
      assert_string_equal(d->check, "none");
      assert_string_equal(d->print, "attrs");
    }
    /* the generic printer has no form for a struct or an array */
    if (!strcmp(d->print, "attrs"))
      for (int a = 0; a < TFX_ATTR_COUNT; a++)
        if ((d->attrs >> a & 1) && tfx_attr_info((tfx_attr_id)a)->kind == TFX_ATTR_KIND_BYTES)
          fail_msg("%s prints with the generic printer but reads %s", d->name, tfx_attr_info((tfx_attr_id)a)->name);
    /* sources and views are no work of their own (passes/stats.c skips them) */
    if (d->traits & (TFX_TRAIT_SOURCE | TFX_TRAIT_VIEW)) assert_string_equal(d->cost, "none");
  }
  assert_string_equal(tfx_op_info(TFX_OP_RMSNORM)->infer, "norm");
  assert_string_equal(tfx_op_info(TFX_OP_LAYERNORM)->infer, "norm");
  assert_string_equal(tfx_op_info(TFX_OP_FUSED_LINEAR)->infer, "fused_linear");
  assert_string_equal(tfx_op_info(TFX_OP_COUNT)->infer, "");
  for (int i = 0; i < TFX_ATTR_COUNT; i++) {
    const tfx_attr_desc *a = tfx_attr_info((tfx_attr_id)i);
    assert_true(a->print && a->print[0]);
    if (a->values) {
      assert_true(a->kind == TFX_ATTR_KIND_INT && a->values[0]);
      for (int k = 0; a->values[k]; k++) assert_true(a->values[k][0] != 0 && k < 64);
    }
  }
}

/* The common work of tfx_infer_type: the row's arity, for every op. */
static void test_inference_checks_arity_from_the_row(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("arity", 16);
  int x = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 8}));
  int ins[TFX_MAX_INPUTS + 1] = {0};
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    int bad[2] = {d->min_inputs - 1, d->max_inputs + 1};
    for (int k = 0; k < 2; k++) {
      if (bad[k] < 0 || bad[k] > TFX_MAX_INPUTS) continue;
      for (int i = 0; i < bad[k]; i++) ins[i] = x;
      tfx_node n = tfx_node_proto((tfx_op)o, bad[k], ins);
      tfx_type t;
      char err[256] = "";
      assert_int_equal(tfx_infer_type(g, &n, &t, err, sizeof err), -1);
      if (strncmp(err, d->name, strlen(d->name)) || !strstr(err, " takes "))
        fail_msg("%s with %d operands: %s", d->name, bad[k], err);
    }
  }
  tfx_node n = tfx_node_proto(TFX_OP_COUNT, 0, NULL);
  tfx_type t;
  char err[256] = "";
  assert_int_equal(tfx_infer_type(g, &n, &t, err, sizeof err), -1);
  assert_non_null(strstr(err, "unknown op"));
  tfx_graph_free(g);
}

/* The text of node 1 of a graph [x, n] (n raw, its operands x). */
static void print_node(const tfx_node *proto, char *buf, size_t len) {
  tfx_graph *g = tfx_graph_new("p", 16);
  tfx_type t = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 8});
  tfx_graph_add_input(g, "x", t);
  tfx_node *nodes = realloc(g->nodes, 4 * sizeof *nodes);
  assert_non_null(nodes);
  g->nodes = nodes;
  g->cap = 4;
  g->nodes[1] = *proto;
  g->nodes[1].id = 1;
  g->nodes[1].type = t;
  g->nodes[1].name = NULL;
  g->n_nodes = 2;
  g->output = 1;
  FILE *f = tmpfile();
  assert_non_null(f);
  tfx_print_graph(g, f);
  rewind(f);
  size_t got = fread(buf, 1, len - 1, f);
  buf[got] = 0;
  fclose(f);
  tfx_graph_free(g);
  char *line = strstr(buf, "%1 = ");
  assert_non_null(line);
  memmove(buf, line, strlen(line) + 1);
}

/* The generic printer prints exactly the attributes of the row: changing one
 * the op reads changes the text, changing any other does not. */
static void test_generic_printer_prints_the_row(void **state) {
  (void)state;
  int ops = 0;
  for (int o = 0; o < TFX_OP_COUNT; o++) {
    const tfx_op_desc *d = tfx_op_info((tfx_op)o);
    if (strcmp(d->print, "attrs")) continue;
    ops++;
    int ins[TFX_MAX_INPUTS] = {0};
    tfx_node n = tfx_node_proto((tfx_op)o, d->min_inputs, ins);
    char base[512], got[512];
    print_node(&n, base, sizeof base);
    for (int a = 0; a < TFX_ATTR_COUNT; a++) {
      tfx_node m = n;
      perturb(&m, a);
      print_node(&m, got, sizeof got);
      int read = d->attrs >> a & 1;
      if (read != (strcmp(base, got) != 0))
        fail_msg("%s: changing %s %s the text (%s)", d->name, tfx_attr_info((tfx_attr_id)a)->name,
                 read ? "does not change" : "changes", got);
      if (read && !strstr(got, tfx_attr_info((tfx_attr_id)a)->print))
        fail_msg("%s: %s is not printed as %s", d->name, tfx_attr_info((tfx_attr_id)a)->name,
                 tfx_attr_info((tfx_attr_id)a)->print);
    }
  }
  assert_true(ops >= 10);
  /* the print forms: names of values, %.9g */
  char buf[512];
  tfx_node n = tfx_node_proto(TFX_OP_GELU, 1, (int[]){0});
  n.gelu_tanh = 1;
  print_node(&n, buf, sizeof buf);
  assert_non_null(strstr(buf, "gelu(%0) {approximate = tanh} :"));
  n.gelu_tanh = 0;
  print_node(&n, buf, sizeof buf);
  assert_non_null(strstr(buf, "{approximate = erf} :"));
  n = tfx_node_proto(TFX_OP_ROPE, 1, (int[]){0});
  n.heads = 2, n.head_dim = 4, n.rotary_dim = 4, n.theta = 10000, n.rope_style = TFX_ROPE_HALF;
  print_node(&n, buf, sizeof buf);
  assert_non_null(strstr(buf, "{heads = 2, head_dim = 4, rotary_dim = 4, theta = 10000, style = half} :"));
  n = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){0, 0});
  n.eps = 1e-5;
  print_node(&n, buf, sizeof buf);
  assert_non_null(strstr(buf, "rmsnorm(%0, %0) {eps = 1e-05} :"));
  n = tfx_node_proto(TFX_OP_ADD, 2, (int[]){0, 0});
  print_node(&n, buf, sizeof buf);
  assert_non_null(strstr(buf, "add(%0, %0) :"));
}

/* The check column: the verifier rejects a node breaking its op's check
 * (values inference lets through), naming the node. */
static void test_verifier_checks_from_the_row(void **state) {
  (void)state;
  static const struct {
    tfx_op op;
    const char *msg;
  } cases[] = {
      {TFX_OP_RMSNORM, "(rmsnorm): eps = inf must be finite"},
      {TFX_OP_LAYERNORM, "(layernorm): eps = inf must be finite"},
      {TFX_OP_GELU, "(gelu): gelu_tanh must be 0 or 1"},
      {TFX_OP_ROPE, "(rope): theta must be finite"},
      {TFX_OP_SINUSOIDAL, "(sinusoidal): base must be finite"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    fixture f;
    assert_non_null(make_fixture(&f, cases[k].op));
    char err[256] = "";
    assert_int_equal(tfx_verify(f.g, 0, err, sizeof err), 0);
    tfx_node *n = &f.g->nodes[f.g->output];
    if (cases[k].op == TFX_OP_GELU)
      n->gelu_tanh = 2;
    else if (cases[k].op == TFX_OP_RMSNORM || cases[k].op == TFX_OP_LAYERNORM)
      n->eps = INFINITY;
    else
      n->theta = INFINITY;
    assert_int_equal(tfx_verify(f.g, 0, err, sizeof err), -1);
    char want[256];
    snprintf(want, sizeof want, "%%%d %s", f.g->output, cases[k].msg);
    if (strncmp(err, want, strlen(want))) fail_msg("%s: %s", tfx_op_name(cases[k].op), err);
    assert_int_equal(strcmp(tfx_op_info(cases[k].op)->check, "none") != 0, 1);
    tfx_graph_free(f.g);
  }
}

/* ---- the frontend's builtin specs (frontend/builtins.c) ---- */

static void test_builtin_specs(void **state) {
  (void)state;
  int direct = 0;
  for (int i = 0; tfx_fe_builtin_at(i); i++) {
    const tfx_fe_opspec *op = tfx_fe_builtin(tfx_fe_builtin_at(i));
    assert_non_null(op);
    assert_true(op->lowering >= 0 && op->lowering < TFX_FE_LOWER_COUNT);
    if (op->lowering == TFX_FE_LOWER_OP) {
      /* one IR node on the positional operands: the IR op takes that many */
      const tfx_op_desc *d = tfx_op_info(op->ir);
      assert_false(d->traits & TFX_TRAIT_SOURCE);
      assert_true(d->min_inputs <= op->min_pos && op->max_pos <= d->max_inputs);
      direct++;
    }
    for (int k = 0; k < op->n_kw; k++) {
      const tfx_fe_kwspec *kw = &op->kw[k];
      if (kw->kind == TFX_FE_KW_ENUM) {
        assert_non_null(kw->values);
        /* the default of an enum is its first value */
        if (kw->dflt && !kw->required) assert_string_equal(kw->dflt, kw->values[0]);
      }
      if (kw->kind == TFX_FE_KW_NUM && kw->dflt && strcmp(kw->dflt, "none") && !kw->required) {
        /* the typed default and its text are one literal (a required one's text only names it) */
        char *end;
        double v = strtod(kw->dflt, &end);
        assert_true(*end == 0);
        assert_true(v == kw->num);
      }
      if (kw->sets_attr) {
        /* a keyword sets an attribute its op reads */
        assert_int_equal(op->lowering, TFX_FE_LOWER_OP);
        if (!(tfx_op_info(op->ir)->attrs >> kw->attr & 1))
          fail_msg("%s's %s sets %s, which %s does not read", op->name, kw->name, tfx_attr_info(kw->attr)->name,
                   tfx_op_name(op->ir));
      }
    }
  }
  assert_true(direct >= 12);
  const tfx_fe_opspec *rms = tfx_fe_builtin("rmsnorm");
  assert_int_equal(rms->ir, TFX_OP_RMSNORM);
  assert_true(tfx_fe_kwspec_of(rms, "eps")->num == 1e-5);
  char sig[128];
  tfx_fe_signature(tfx_fe_builtin("gelu"), sig, sizeof sig);
  assert_string_equal(sig, "gelu(x, approximate = none)");
  tfx_fe_signature(rms, sig, sizeof sig);
  assert_string_equal(sig, "rmsnorm(x, g, eps = 1e-5)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_op_is_described),
      cmocka_unit_test(test_attribute_descriptors),
      cmocka_unit_test(test_cse_every_attribute),
      cmocka_unit_test(test_cse_keeps_rope_thetas_apart),
      cmocka_unit_test(test_attr_key),
      cmocka_unit_test(test_unread_attributes_do_not_matter),
      cmocka_unit_test(test_read_attributes_matter),
      cmocka_unit_test(test_builtin_specs),
      cmocka_unit_test(test_every_op_names_its_functions),
      cmocka_unit_test(test_inference_checks_arity_from_the_row),
      cmocka_unit_test(test_generic_printer_prints_the_row),
      cmocka_unit_test(test_verifier_checks_from_the_row),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
