/* tests/test_attention_frontend.c — the attention options in the language:
 * `position = alibi`, `sparse = <pattern>` (every pattern, positional and
 * named arguments, defaults), `memory = m` (cross-attention, static and T
 * rows), and mla_attention (dimensions derived from the weights, the
 * low-rank query path, kv_norm, its rope), checked on the lowered graph's
 * node attributes; and the errors bad options give, at their source
 * location. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

typedef struct result {
  int errors;
  tfx_graph *g;
  tfx_weights w;
  char *diag;
} result;

static result compile(const char *src) {
  result r;
  memset(&r, 0, sizeof r);
  size_t len = 0;
  FILE *f = open_memstream(&r.diag, &len);
  assert_non_null(f);
  tfx_frontend_options o = {0};
  o.no_weights = 1;
  o.diag = f;
  r.errors = tfx_frontend_compile("t.tfx", src, &o, &r.g, &r.w);
  fclose(f);
  return r;
}

static void result_free(result *r) {
  tfx_graph_free(r->g);
  tfx_weights_free(&r->w);
  free(r->diag);
}

static const tfx_node *first_op(const tfx_graph *g, tfx_op op) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == op) return &g->nodes[i];
  return NULL;
}

static int count_op(const tfx_graph *g, tfx_op op) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
  return n;
}

/* A one-attention model; OPTS is spliced into the call. */
static char *attn_src(const char *opts, const char *extra_params, const char *mem_expr) {
  static char buf[4096];
  snprintf(buf, sizeof buf,
           "const dim = 16, max_seq = 32\n"
           "param wq : f32[16, 16]\n"
           "param wk : f32[8, 16]\n"
           "param wv : f32[8, 16]\n"
           "param wo : f32[16, 16]\n"
           "param src : f32[5, 16]\n"
           "%s"
           "forward(x : f32[T, dim]) -> f32[T, dim] {\n"
           "  m = %s\n"
           "  return attention(x, wq, wk, wv, wo, heads = 4, kv_heads = 2, %s)\n"
           "}\n",
           extra_params, mem_expr, opts);
  return buf;
}

static const tfx_node *compile_attention(result *r, const char *opts) {
  *r = compile(attn_src(opts, "", "x"));
  if (r->errors) fail_msg("%s\n%s", opts, r->diag);
  const tfx_node *n = first_op(r->g, TFX_OP_ATTENTION);
  assert_non_null(n);
  return n;
}

static void test_sparse_patterns(void **state) {
  (void)state;
  result r;
  const tfx_node *n = compile_attention(&r, "mask = causal, sparse = sliding(4)");
  assert_int_equal(n->sparse.kind, TFX_SPARSE_SLIDING);
  assert_int_equal(n->sparse.window, 4);
  assert_int_equal(n->mask, TFX_MASK_CAUSAL);
  result_free(&r);
  n = compile_attention(&r, "mask = none, sparse = sliding(window = 5)");
  assert_int_equal(n->sparse.window, 5);
  assert_int_equal(n->mask, TFX_MASK_NONE);
  result_free(&r);
  n = compile_attention(&r, "mask = causal, sparse = dilated(2, window = 8)");
  assert_int_equal(n->sparse.kind, TFX_SPARSE_DILATED);
  assert_int_equal(n->sparse.dilation, 2);
  assert_int_equal(n->sparse.window, 8);
  result_free(&r);
  n = compile_attention(&r, "mask = causal, sparse = dilated(dilation = 3)");
  assert_int_equal(n->sparse.dilation, 3);
  assert_int_equal(n->sparse.window, 0);
  result_free(&r);
  n = compile_attention(&r, "mask = causal, sparse = strided(stride = 3)");
  assert_int_equal(n->sparse.kind, TFX_SPARSE_STRIDED);
  assert_int_equal(n->sparse.stride, 3);
  result_free(&r);
  n = compile_attention(&r, "mask = none, sparse = fixed(4)");
  assert_int_equal(n->sparse.kind, TFX_SPARSE_FIXED);
  assert_int_equal(n->sparse.stride, 4);
  assert_int_equal(n->sparse.summary, 1);
  result_free(&r);
  n = compile_attention(&r, "mask = none, sparse = fixed(8, 3)");
  assert_int_equal(n->sparse.summary, 3);
  result_free(&r);
  n = compile_attention(&r, "mask = none, sparse = longformer(3, global = 2)");
  assert_int_equal(n->sparse.kind, TFX_SPARSE_LONGFORMER);
  assert_int_equal(n->sparse.window, 3);
  assert_int_equal(n->sparse.n_global, 2);
  assert_int_equal(n->sparse.n_global_list, 0);
  assert_int_equal(n->sparse.dilation, 1);
  result_free(&r);
  n = compile_attention(&r, "mask = none, sparse = longformer(window = 3, global = tokens(0, 7, 2 * 5), dilation = 2)");
  assert_int_equal(n->sparse.n_global, 0);
  assert_int_equal(n->sparse.n_global_list, 3);
  assert_int_equal(n->sparse.global_list[0], 0);
  assert_int_equal(n->sparse.global_list[1], 7);
  assert_int_equal(n->sparse.global_list[2], 10);
  assert_int_equal(n->sparse.dilation, 2);
  result_free(&r);
  n = compile_attention(&r, "mask = none, sparse = bigbird(block_size = 4, global = 0, random = 3, seed = 99)");
  assert_int_equal(n->sparse.kind, TFX_SPARSE_BIGBIRD);
  assert_int_equal(n->sparse.block, 4);
  assert_int_equal(n->sparse.n_global, 0);
  assert_int_equal(n->sparse.random, 3);
  assert_true(n->sparse.seed == 99);
  result_free(&r);
  n = compile_attention(&r, "mask = causal, sparse = bigbird(4)");
  assert_int_equal(n->sparse.n_global, 1);
  assert_int_equal(n->sparse.random, 1);
  assert_true(n->sparse.seed == 0);
  result_free(&r);
  n = compile_attention(&r, "mask = causal, sparse = none");
  assert_int_equal(n->sparse.kind, TFX_SPARSE_NONE);
  result_free(&r);
}

static void test_alibi_and_memory(void **state) {
  (void)state;
  result r;
  const tfx_node *n = compile_attention(&r, "position = alibi, mask = causal");
  assert_int_equal(n->alibi, 1);
  assert_int_equal(count_op(r.g, TFX_OP_ROPE), 0);
  result_free(&r);
  n = compile_attention(&r, "position = rope(theta = 500), mask = causal");
  assert_int_equal(n->alibi, 0);
  assert_int_equal(count_op(r.g, TFX_OP_ROPE), 2);
  result_free(&r);
  /* static memory: k and v have the memory's 5 rows, q keeps T */
  r = compile(attn_src("memory = m, mask = none, position = alibi", "", "linear(src, wo)"));
  if (r.errors) fail_msg("%s", r.diag);
  n = first_op(r.g, TFX_OP_ATTENTION);
  assert_non_null(n);
  assert_int_equal(r.g->nodes[n->inputs[0]].type.dims[0], TFX_DIM_T);
  assert_int_equal(r.g->nodes[n->inputs[1]].type.dims[0], 5);
  assert_int_equal(r.g->nodes[n->inputs[2]].type.dims[0], 5);
  assert_int_equal(n->type.dims[0], TFX_DIM_T);
  result_free(&r);
  /* a memory of T rows may be causal */
  r = compile(attn_src("memory = m, mask = causal", "", "linear(x, wo)"));
  if (r.errors) fail_msg("%s", r.diag);
  n = first_op(r.g, TFX_OP_ATTENTION);
  assert_int_equal(r.g->nodes[n->inputs[1]].type.dims[0], TFX_DIM_T);
  assert_int_equal(r.g->nodes[r.g->nodes[n->inputs[1]].inputs[0]].op, TFX_OP_LINEAR); /* k from m, not x */
  assert_int_not_equal(r.g->nodes[n->inputs[1]].inputs[0], r.g->input);
  result_free(&r);
}

static const char *const k_mla_src =
    "const dim = 32, max_seq = 16, heads = 2, dn = 8, dr = 4, dv = 6, r = 12, rq = 10\n"
    "param wq_a : f32[rq, dim]\n"
    "param q_norm : f32[rq]\n"
    "param wq_lr : f32[heads * (dn + dr), rq]\n"
    "param wq : f32[heads * (dn + dr), dim]\n"
    "param wkv_a : f32[r + dr, dim]\n"
    "param kv_norm : f32[r]\n"
    "param wkv_b : f32[heads * (dn + dv), r]\n"
    "param wo : f32[dim, heads * dv]\n"
    "forward(x : f32[T, dim]) -> f32[T, dim] {\n"
    "  return %s\n"
    "}\n";

static result compile_mla(const char *call) {
  static char buf[2048];
  snprintf(buf, sizeof buf, k_mla_src, call);
  return compile(buf);
}

static void test_mla(void **state) {
  (void)state;
  result r = compile_mla("mla_attention(x, wq_lr, wkv_a, wkv_b, wo, heads = heads, rope_dim = dr, wq_a = wq_a, "
                         "q_norm = q_norm, kv_norm = kv_norm, eps = 1e-5, position = rope(theta = 500, style = half), "
                         "mask = causal, sparse = sliding(6))");
  if (r.errors) fail_msg("%s", r.diag);
  const tfx_node *n = first_op(r.g, TFX_OP_MLA_ATTENTION);
  assert_non_null(n);
  assert_int_equal(n->heads, 2);
  assert_int_equal(n->head_dim, 8);
  assert_int_equal(n->rope_dim, 4);
  assert_int_equal(n->v_dim, 6);
  assert_int_equal(n->rank, 12);
  assert_int_equal(n->n_inputs, 4);
  assert_true(n->eps == 1e-5);
  assert_true(n->theta == 500.0);
  assert_int_equal(n->rope_style, TFX_ROPE_HALF);
  assert_int_equal(n->sparse.kind, TFX_SPARSE_SLIDING);
  assert_int_equal(count_op(r.g, TFX_OP_RMSNORM), 1); /* q_norm; kv_norm is inside the op */
  assert_int_equal(count_op(r.g, TFX_OP_LINEAR), 4);  /* wq_a, wq, wkv_a, wo */
  result_free(&r);
  r = compile_mla("mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = dr, mask = causal)");
  if (r.errors) fail_msg("%s", r.diag);
  n = first_op(r.g, TFX_OP_MLA_ATTENTION);
  assert_int_equal(n->n_inputs, 3);
  assert_true(n->theta == 10000.0);
  assert_int_equal(n->rope_style, TFX_ROPE_INTERLEAVED);
  assert_int_equal(count_op(r.g, TFX_OP_RMSNORM), 0);
  result_free(&r);
}

typedef struct bad_case {
  const char *opts; /* attention options, or a whole mla call when mla */
  int mla;
  const char *expect;
} bad_case;

static const bad_case k_bad[] = {
    {"mask = causal, sparse = sliding()", 0, "t.tfx:9:88: error: missing argument 'window' of sliding"},
    {"mask = causal, sparse = sliding(0)", 0, "sliding's window must be >= 1, got 0"},
    {"mask = causal, sparse = banded(3)", 0, "unknown sparse pattern 'banded' for attention: expected none, sliding"},
    {"mask = causal, sparse = 3", 0, "bad value for attention's sparse: expected none"},
    {"mask = causal, sparse = fixed(4, summary = 5)", 0, "fixed's summary (5) must be at most its stride (4)"},
    {"mask = none, sparse = bigbird(4, random = 65)", 0, "bigbird's random must be at most 64, got 65"},
    {"mask = none, sparse = longformer(3, global = tokens())", 0, "tokens(...) needs at least one position"},
    {"mask = none, sparse = longformer(3, global = foo(1))", 0, "longformer's global is a count of leading tokens"},
    {"mask = none, sparse = longformer(3, global = tokens(0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16))", 0,
     "tokens(...) takes at most 16 positions"},
    {"mask = none, sparse = longformer(3, global = tokens(-1))", 0, "a global token position must be >= 0"},
    {"mask = causal, sparse = sliding(4, window = 3)", 0, "argument 'window' of sliding is given twice"},
    {"mask = causal, sparse = dilated(2, size = 3)", 0,
     "unknown argument 'size' of dilated (allowed: dilation, window)"},
    {"mask = causal, sparse = strided(1, 2)", 0, "too many arguments: strided takes at most 1"},
    {"mask = causal, sparse = sliding(2.5)", 0, "sliding's window must be an integer"},
    {"mask = causal, position = alibix", 0, "bad value for attention's position: expected none, alibi, rope"},
    {"mask = causal, scale = 0", 0, "t.tfx:9:87: error: attention's scale must be > 0 (or none: no scaling), got 0"},
    {"mask = causal, scale = fast", 0, "t.tfx:9:87: error: undefined constant 'fast'"},
    {"mask = causal, softcap = -1", 0,
     "t.tfx:9:89: error: attention's softcap must be > 0 (or none: no soft-capping), got -1"},
    {"mask = causal, q_norm = src", 0,
     "t.tfx:9:88: error: attention: q_norm is f32[5, 16], expected f32[4] (per head) or f32[16] (all query heads)"},
    {"mask = causal, k_norm = g16", 0, "attention: k_norm is f32[16], expected f32[4] (per head) or f32[8]"},
    {"mask = causal, qk_norm = layernorm, q_norm = g4, k_norm = g4", 0,
     "t.tfx:9:10: error: attention: qk_norm = layernorm needs q_norm_b and k_norm_b with the gains"},
    {"mask = causal, q_norm = g4, k_norm = g4, q_norm_b = g4, k_norm_b = g4", 0,
     "attention: q_norm_b and k_norm_b need qk_norm = layernorm"},
    {"mask = causal, qk_norm = groupnorm", 0,
     "bad value 'groupnorm' for attention's qk_norm: expected rmsnorm or layernorm"},
    {"mask = causal, position = t5(src)", 0,
     "attention: the relative bias table is f32[5, 16], expected f32[buckets, 4] with 2..1024 buckets"},
    {"mask = causal, position = t5(rel, buckets = 16)", 0,
     "t.tfx:9:108: error: attention: t5's table is f32[8, 4], expected 16 rows (buckets)"},
    {"mask = none, position = t5(rel, max_distance = 2)", 0, "max_distance = 2 must exceed the exact buckets (2)"},
    {"mask = causal, position = t5(rel, bidirectional = maybe)", 0,
     "t.tfx:9:114: error: bad value 'maybe' for t5's bidirectional: expected true or false"},
    {"mask = causal, position = t5()", 0, "missing argument 'table' of t5("},
    {"mask = causal, position = t5(rel, window = 3)", 0,
     "unknown keyword 'window' for t5 (allowed: buckets, max_distance, bidirectional)"},
    {"mask = causal, position = t5(rel), alibi = 1", 0, "unknown keyword 'alibi' for attention"},
    {"mask = causal, memory = m", 0, "attention: a memory of static rows (f32[5, 16]) needs mask = none"},
    {"mask = none, memory = m, position = rope()", 0, "position = rope(...) needs a memory of T rows"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = dr, mask = none)", 1,
     "mla_attention needs mask = causal"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = 2, mask = causal)", 1,
     "mla_attention: wkv_b is f32[28, 12], expected [2 * (10 + v_dim), 14]"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = 3, mask = causal)", 1,
     "rope_dim = 3 must be even"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = dr, q_norm = q_norm, mask = causal)", 1,
     "q_norm needs wq_a"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = dr, position = alibi, mask = causal)", 1,
     "mla_attention's position must be rope"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = dr, position = rope(rotary_dim = 2), "
     "mask = causal)",
     1, "rope's rotary_dim must equal rope_dim (4)"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wo, heads = heads, rope_dim = dr)", 1, "missing keyword 'mask'"},
    {"mla_attention(x, wq, wkv_a, wkv_b, wq_a, heads = heads, rope_dim = dr, mask = causal)", 1,
     "mla_attention: wo is f32[10, 32], expected 12 columns"},
};

static void test_bad_options(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
    const bad_case *c = &k_bad[i];
    char src[8192]; /* params for the q/k norm and t5 cases after the forward: the lines above stay */
    snprintf(src, sizeof src, "%sparam g4 : f32[4]\nparam g16 : f32[16]\nparam rel : f32[8, 4]\n",
             attn_src(c->opts, "", "linear(src, wo)"));
    result r = c->mla ? compile_mla(c->opts) : compile(src);
    if (r.errors == 0) fail_msg("case %zu (%s): compiled without error", i, c->opts);
    if (!strstr(r.diag, c->expect)) fail_msg("case %zu (%s): expected '%s' in:\n%s", i, c->opts, c->expect, r.diag);
    assert_null(r.g);
    result_free(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sparse_patterns),
      cmocka_unit_test(test_alibi_and_memory),
      cmocka_unit_test(test_mla),
      cmocka_unit_test(test_bad_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
