/* tests/test_ir.c — the IR: golden text of the printer (before and after
 * planning), and the verifier accepting good graphs and rejecting each kind
 * of malformed one with a "%id (op): ..." message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../ir/ir.h"
#include "../passes/passes.h"

static int gadd(tfx_graph *g, tfx_node p) {
  char err[256] = "";
  int id = tfx_graph_add(g, &p, err, sizeof err);
  if (id < 0) fail_msg("tfx_graph_add: %s", err);
  return id;
}

static tfx_type ty(tfx_dtype dt, int rank, int64_t d0, int64_t d1) {
  return tfx_type_make(dt, rank, (int64_t[]){d0, d1});
}

/* A small decoder-like graph touching every printed attribute kind. */
static tfx_graph *golden_graph(void) {
  tfx_graph *g = tfx_graph_new("golden", 8);
  int tok = tfx_graph_add_input(g, "tokens", ty(TFX_DT_I32, 1, TFX_DIM_T, 0));
  int emb = tfx_graph_add_param(g, "tok_embeddings", ty(TFX_DT_F32, 2, 32, 16));
  int x = gadd(g, tfx_node_proto(TFX_OP_EMBEDDING, 2, (int[]){emb, tok}));
  int gain = tfx_graph_add_param(g, "g", ty(TFX_DT_F32, 1, 16, 0));
  tfx_node p = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, gain});
  p.eps = 1e-5;
  int a = gadd(g, p);
  int wq = tfx_graph_add_param(g, "wq", ty(TFX_DT_F32, 2, 16, 16));
  int q = gadd(g, tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){a, wq}));
  p = tfx_node_proto(TFX_OP_ROPE, 1, &q);
  p.heads = 4, p.head_dim = 4, p.rotary_dim = 2, p.theta = 10000, p.rope_style = TFX_ROPE_HALF;
  q = gadd(g, p);
  int wk = tfx_graph_add_param(g, "wk", ty(TFX_DT_F32, 2, 8, 16));
  int k = gadd(g, tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){a, wk}));
  p = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, k});
  p.heads = 4, p.kv_heads = 2, p.head_dim = 4, p.mask = TFX_MASK_CAUSAL;
  int att = gadd(g, p);
  p = tfx_node_proto(TFX_OP_GELU, 1, &att);
  p.gelu_tanh = 1;
  int ge = gadd(g, p);
  p = tfx_node_proto(TFX_OP_LAYERNORM, 3, (int[]){ge, gain, gain});
  p.eps = 0.001;
  int ln = gadd(g, p);
  g->output = gadd(g, tfx_node_proto(TFX_OP_SOFTMAX, 1, &ln));
  return g;
}

static char *print_to_string(const tfx_graph *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  tfx_print_graph(g, f);
  fclose(f);
  return buf;
}

static void test_print_golden(void **state) {
  (void)state;
  tfx_graph *g = golden_graph();
  char *text = print_to_string(g);
  const char *want = "graph golden (max_seq = 8)\n"
                     "  %0 = input \"tokens\" : i32[T]\n"
                     "  %1 = param \"tok_embeddings\" : f32[32, 16]\n"
                     "  %2 = embedding(%1, %0) : f32[T, 16]\n"
                     "  %3 = param \"g\" : f32[16]\n"
                     "  %4 = rmsnorm(%2, %3) {eps = 1e-05} : f32[T, 16]\n"
                     "  %5 = param \"wq\" : f32[16, 16]\n"
                     "  %6 = linear(%4, %5) : f32[T, 16]\n"
                     "  %7 = rope(%6) {heads = 4, head_dim = 4, rotary_dim = 2, theta = 10000, style = half} : f32[T, "
                     "16]\n"
                     "  %8 = param \"wk\" : f32[8, 16]\n"
                     "  %9 = linear(%4, %8) : f32[T, 8]\n"
                     "  %10 = attention(%7, %9, %9) {heads = 4, kv_heads = 2, head_dim = 4, mask = causal} : f32[T, "
                     "16]\n"
                     "  %11 = gelu(%10) {approximate = tanh} : f32[T, 16]\n"
                     "  %12 = layernorm(%11, %3, %3) {eps = 0.001} : f32[T, 16]\n"
                     "  %13 = softmax(%12) : f32[T, 16]\n"
                     "  return %13\n";
  assert_string_equal(text, want);
  free(text);

  /* after binding offsets and planning: deterministic @ annotations. With
   * T = 8, [T, 16] is 512 bytes and [T, 8] 256: %2 at 0, %4 at 512, %6 reuses
   * 0, %7 at 1024, %9 reuses 0, %10 fits the gap at 256, %11 after it, %12
   * back at 0; the output %13 has no slot. */
  int64_t off = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM) {
      g->nodes[i].weight_offset = off;
      off += (tfx_type_bytes(&g->nodes[i].type, 1) + 63) / 64 * 64;
    }
  g->weights_bytes = off;
  char err[256] = "";
  if (tfx_run_pipeline(g, 0, err, sizeof err)) fail_msg("pipeline: %s", err);
  if (tfx_verify(g, 1, err, sizeof err)) fail_msg("verify: %s", err);
  text = print_to_string(g);
  want = "graph golden (max_seq = 8, arena = 1536, kv = 512, weights = 3648)\n"
         "  %0 = input \"tokens\" : i32[T]\n"
         "  %1 = param \"tok_embeddings\" : f32[32, 16] @weights+0\n"
         "  %2 = embedding(%1, %0) : f32[T, 16] @arena+0\n"
         "  %3 = param \"g\" : f32[16] @weights+2048\n"
         "  %4 = rmsnorm(%2, %3) {eps = 1e-05} : f32[T, 16] @arena+512\n"
         "  %5 = param \"wq\" : f32[16, 16] @weights+2112\n"
         "  %6 = linear(%4, %5) : f32[T, 16] @arena+0\n"
         "  %7 = rope(%6) {heads = 4, head_dim = 4, rotary_dim = 2, theta = 10000, style = half} : f32[T, 16] "
         "@arena+1024\n"
         "  %8 = param \"wk\" : f32[8, 16] @weights+3136\n"
         "  %9 = linear(%4, %8) : f32[T, 8] @arena+0\n"
         "  %10 = attention(%7, %9, %9) {heads = 4, kv_heads = 2, head_dim = 4, mask = causal} : f32[T, 16] "
         "@arena+256 @kv+0\n"
         "  %11 = gelu(%10) {approximate = tanh} : f32[T, 16] @arena+768\n"
         "  %12 = layernorm(%11, %3, %3) {eps = 0.001} : f32[T, 16] @arena+0\n"
         "  %13 = softmax(%12) : f32[T, 16]\n"
         "  return %13\n";
  assert_string_equal(text, want);
  free(text);
  tfx_graph_free(g);
}

static void test_print_misc(void **state) {
  (void)state;
  /* erf gelu, non-causal attention, interleaved rope, names with quotes are escaped */
  tfx_graph *g = tfx_graph_new("m", 4);
  int x = tfx_graph_add_input(g, "x\"1", ty(TFX_DT_F32, 2, TFX_DIM_T, 4));
  int ge = gadd(g, tfx_node_proto(TFX_OP_GELU, 1, &x));
  tfx_node p = tfx_node_proto(TFX_OP_ROPE, 1, &ge);
  p.heads = 1, p.head_dim = 4, p.rotary_dim = 4, p.theta = 500000.5;
  int r = gadd(g, p);
  p = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){r, r, r});
  p.heads = 2, p.kv_heads = 2, p.head_dim = 2;
  g->output = gadd(g, p);
  char *text = print_to_string(g);
  const char *want = "graph m (max_seq = 4)\n"
                     "  %0 = input \"x\\\"1\" : f32[T, 4]\n"
                     "  %1 = gelu(%0) {approximate = erf} : f32[T, 4]\n"
                     "  %2 = rope(%1) {heads = 1, head_dim = 4, rotary_dim = 4, theta = 500000.5, style = interleaved} "
                     ": f32[T, 4]\n"
                     "  %3 = attention(%2, %2, %2) {heads = 2, kv_heads = 2, head_dim = 2, mask = none} : f32[T, 4]\n"
                     "  return %3\n";
  assert_string_equal(text, want);
  free(text);
  tfx_graph_free(g);
}

/* ---- verifier ---- */

static void expect_invalid(const tfx_graph *g, int require_bound, const char *prefix, const char *needle) {
  char err[512] = "";
  assert_int_equal(tfx_verify(g, require_bound, err, sizeof err), -1);
  if (prefix && strncmp(err, prefix, strlen(prefix)) != 0)
    fail_msg("message '%s' does not start with '%s'", err, prefix);
  if (needle && !strstr(err, needle)) fail_msg("message '%s' does not mention '%s'", err, needle);
}

static void test_verify_accepts(void **state) {
  (void)state;
  tfx_graph *g = golden_graph();
  char err[256] = "";
  if (tfx_verify(g, 0, err, sizeof err)) fail_msg("verify: %s", err);
  expect_invalid(g, 1, "%1 (param): ", "not bound"); /* unbound params only matter when required */
  tfx_graph_free(g);
}

static void test_verify_structure(void **state) {
  (void)state;
  tfx_graph *g = golden_graph();
  /* operand not earlier (topological order) */
  g->nodes[6].inputs[0] = 7;
  expect_invalid(g, 0, "%6 (linear): ", "earlier");
  g->nodes[6].inputs[0] = 4;
  /* a self reference */
  g->nodes[13].inputs[0] = 13;
  expect_invalid(g, 0, "%13 (softmax): ", "earlier");
  g->nodes[13].inputs[0] = 12;
  /* stored type differs from the inferred one */
  g->nodes[9].type.dims[1] = 16;
  expect_invalid(g, 0, "%9 (linear): ", "f32[T, 8]");
  g->nodes[9].type.dims[1] = 8;
  /* arity */
  g->nodes[11].n_inputs = 2;
  g->nodes[11].inputs[1] = 3;
  expect_invalid(g, 0, "%11 (gelu): ", "operand");
  g->nodes[11].n_inputs = 1;
  /* ids */
  g->nodes[5].id = 4;
  expect_invalid(g, 0, NULL, "id 4");
  g->nodes[5].id = 5;
  /* output */
  g->output = -1;
  expect_invalid(g, 0, NULL, "no output");
  g->output = 99;
  expect_invalid(g, 0, NULL, "no output");
  g->output = 8; /* a param: not f32[T, ...] */
  expect_invalid(g, 0, "%8 (param): ", "output");
  g->output = 13;
  /* input */
  g->input = 2;
  expect_invalid(g, 0, "%0 (input): ", "g->input");
  g->input = 0;
  g->nodes[0].type = ty(TFX_DT_I32, 2, TFX_DIM_T, 3);
  expect_invalid(g, 0, "%0 (input): ", "i32[T] or f32[T, D]");
  g->nodes[0].type = ty(TFX_DT_I32, 1, TFX_DIM_T, 0);
  /* param without a name, param with T */
  char *name = g->nodes[5].name;
  g->nodes[5].name = NULL;
  expect_invalid(g, 0, "%5 (param): ", "no name");
  g->nodes[5].name = name;
  g->nodes[5].type.dims[0] = TFX_DIM_T;
  expect_invalid(g, 0, "%5 (param): ", NULL);
  g->nodes[5].type.dims[0] = 16;
  /* bad dims and op */
  g->nodes[8].type.dims[0] = 0;
  expect_invalid(g, 0, "%8 (param): ", "dims must be > 0");
  g->nodes[8].type.dims[0] = 8;
  g->nodes[13].op = TFX_OP_COUNT;
  expect_invalid(g, 0, NULL, "unknown op");
  g->nodes[13].op = TFX_OP_SOFTMAX;
  char err[256];
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0); /* every mutation was undone */

  /* a second input */
  int second = tfx_graph_add_input(g, "x2", ty(TFX_DT_F32, 2, TFX_DIM_T, 4));
  assert_true(second > 0);
  expect_invalid(g, 0, NULL, "input");
  tfx_graph_free(g);

  /* no input at all */
  g = tfx_graph_new("none", 4);
  tfx_graph_add_param(g, "w", ty(TFX_DT_F32, 1, 4, 0));
  g->output = 0;
  expect_invalid(g, 0, NULL, NULL);
  tfx_graph_free(g);
  expect_invalid(NULL, 0, NULL, "no graph");
}

static void test_verify_attributes(void **state) {
  (void)state;
  tfx_graph *g = golden_graph();
  g->nodes[4].eps = -1;
  expect_invalid(g, 0, "%4 (rmsnorm): ", "eps");
  g->nodes[4].eps = 1e-5;
  g->nodes[7].rotary_dim = 3;
  expect_invalid(g, 0, "%7 (rope): ", "rotary_dim");
  g->nodes[7].rotary_dim = 6;
  expect_invalid(g, 0, "%7 (rope): ", "rotary_dim");
  g->nodes[7].rotary_dim = 2;
  g->nodes[7].theta = 0;
  expect_invalid(g, 0, "%7 (rope): ", "theta");
  g->nodes[7].theta = 10000;
  g->nodes[7].rope_style = (tfx_rope_style)7;
  expect_invalid(g, 0, "%7 (rope): ", "style");
  g->nodes[7].rope_style = TFX_ROPE_HALF;
  g->nodes[10].kv_heads = 3;
  expect_invalid(g, 0, "%10 (attention): ", "kv_heads");
  g->nodes[10].kv_heads = 2;
  g->nodes[10].mask = (tfx_mask_kind)5;
  expect_invalid(g, 0, "%10 (attention): ", "mask");
  g->nodes[10].mask = TFX_MASK_CAUSAL;
  g->nodes[11].gelu_tanh = 2;
  expect_invalid(g, 0, "%11 (gelu): ", "gelu_tanh");
  g->nodes[11].gelu_tanh = 0;
  g->max_seq = 0;
  expect_invalid(g, 0, NULL, "max_seq");
  g->max_seq = 8;
  char err[256];
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0);
  tfx_graph_free(g);
}

static void test_verify_bound_and_planned(void **state) {
  (void)state;
  tfx_graph *g = golden_graph();
  int64_t off = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM) {
      g->nodes[i].weight_offset = off;
      off += (tfx_type_bytes(&g->nodes[i].type, 1) + 63) / 64 * 64;
    }
  g->weights_bytes = off;
  char err[256] = "";
  if (tfx_verify(g, 1, err, sizeof err)) fail_msg("verify: %s", err);
  g->nodes[3].weight_offset = 2050;
  expect_invalid(g, 1, "%3 (param): ", "aligned");
  g->nodes[3].weight_offset = off;
  expect_invalid(g, 1, "%3 (param): ", "outside");
  g->nodes[3].weight_offset = 2048;
  g->weights_bytes = off - 64;
  expect_invalid(g, 1, "%8 (param): ", "outside");
  g->weights_bytes = off;

  assert_int_equal(tfx_pass_plan_memory(g, err, sizeof err), 0);
  assert_int_equal(tfx_verify(g, 1, err, sizeof err), 0);
  g->nodes[4].arena_offset += 8;
  expect_invalid(g, 0, "%4 (rmsnorm): ", "arena");
  g->nodes[4].arena_offset = g->arena_bytes;
  expect_invalid(g, 0, "%4 (rmsnorm): ", "arena");
  g->nodes[4].arena_offset = 512;
  g->nodes[13].arena_offset = 0; /* the output never gets a slot */
  expect_invalid(g, 0, "%13 (softmax): ", "output");
  g->nodes[13].arena_offset = -1;
  g->nodes[6].kv_offset = 0;
  expect_invalid(g, 0, "%6 (linear): ", "KV");
  g->nodes[6].kv_offset = -1;
  g->kv_bytes = 256;
  expect_invalid(g, 0, "%10 (attention): ", "KV");
  tfx_graph_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_print_golden),      cmocka_unit_test(test_print_misc),
      cmocka_unit_test(test_verify_accepts),    cmocka_unit_test(test_verify_structure),
      cmocka_unit_test(test_verify_attributes), cmocka_unit_test(test_verify_bound_and_planned),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
