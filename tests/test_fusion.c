/* tests/test_fusion.c — the optimizer's passes on small graphs: golden IR
 * text after each fusion pattern (what fuses: GLU, Q/K/V + RoPE, epilogue
 * chains, norm prologues, post-norm residual norms, a planar segment's
 * statistics, the embedding's epilogue, the MoE fusions) and the cases that
 * must not fuse (a value with another use, a norm read as both the x and
 * the residual of one linear or by a norm or an activation, an activation
 * before a bias, a row before the positions, a shared router, a K/V group
 * across an attention); canonicalize, CSE, DCE; weight folding with real
 * data (no transform op left, packed layouts, the blob rebuilt) checked
 * numerically through the interpreter; the pass manager's options; and, on
 * every example model, kernels per decode step (-O3 at most half of -O0),
 * the arena against the liveness peak and the naive sum, and tfxc's
 * optimizer flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>

#include "../driver/compile.h"
#include "../passes/passes.h"
#include "support/testutil.h"

/* The IR text right after the last pass of `passes` (no weights: weight
 * transforms stay visible as concat/pack). */
static char *ir_after(const char *src, const char *passes) {
  tfx_frontend_options fo = {.no_weights = 1};
  tfx_graph *g = NULL;
  tfx_weights w = {0};
  if (tfx_frontend_compile("test.tfx", src, &fo, &g, &w)) fail_msg("the test source does not compile");
  const char *last = strrchr(passes, ',');
  last = last ? last + 1 : passes;
  char *text = NULL;
  size_t len = 0;
  FILE *dump = open_memstream(&text, &len);
  tfx_pass_options o;
  tfx_pass_options_init(&o, 2);
  o.passes = passes;
  o.print_after = last;
  o.verify_each = 1;
  o.dump = dump;
  char err[512] = "";
  int rc = tfx_run_passes(g, &o, err, sizeof err);
  fclose(dump);
  tfx_graph_free(g);
  if (rc) fail_msg("passes %s: %s", passes, err);
  /* drop the "; ---- IR after X ----" header */
  char *body = strchr(text, '\n');
  char *out = strdup(body ? body + 1 : text);
  free(text);
  return out;
}

static void expect_ir(const char *src, const char *passes, const char *want) {
  char *got = ir_after(src, passes);
  if (strcmp(got, want)) {
    fprintf(stderr, "---- after %s, got:\n%s---- expected:\n%s", passes, got, want);
    free(got);
    fail_msg("IR differs from the golden text");
  }
  free(got);
}

/* ---- GLU ---- */

static const char glu_src[] = "model glu\n"
                              "const max_seq = 8\n"
                              "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
                              "  param g : f32[4]\n"
                              "  param w1 : f32[6, 4]\n"
                              "  param w3 : f32[6, 4]\n"
                              "  param w2 : f32[4, 6]\n"
                              "  f = rmsnorm(x, g)\n"
                              "  return x + linear(silu(linear(f, w1)) * linear(f, w3), w2)\n"
                              "}\n";

static void test_glu_golden(void **state) {
  (void)state;
  expect_ir(glu_src, "fuse_glu",
            "graph glu (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"g\" : f32[4]\n"
            "  %2 = rmsnorm(%0, %1) {eps = 1e-05} : f32[T, 4]\n"
            "  %3 = param \"w1\" : f32[6, 4]\n"
            "  %4 = param \"w3\" : f32[6, 4]\n"
            "  %5 = concat(%3, %4) : f32[12, 4]\n"
            "  %6 = fused_linear(%2, %5) {segs = [6, 6], act = silu, glu} : f32[T, 6]\n"
            "  %7 = param \"w2\" : f32[4, 6]\n"
            "  %8 = linear(%6, %7) : f32[T, 4]\n"
            "  %9 = add(%0, %8) : f32[T, 4]\n"
            "  return %9\n");
  /* the whole chain: norm prologue, GLU, residual epilogue, packed weights */
  expect_ir(glu_src, "fuse_glu,fuse_epilogue,fuse_norm,pack_weights",
            "graph glu (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"g\" : f32[4]\n"
            "  %2 = norm_stats(%0) {norm = rms, eps = 1e-05} : f32[T, 2]\n"
            "  %3 = param \"w1\" : f32[6, 4]\n"
            "  %4 = param \"w3\" : f32[6, 4]\n"
            "  %5 = concat(%3, %4) : f32[12, 4]\n"
            "  %6 = pack(%5) {panel = 32, kc = 1, segs = [6, 6]} : f32[12, 4]\n"
            "  %7 = fused_linear(%0, %6, %2, %1) {prologue = rmsnorm, segs = [6, 6], act = silu, glu} : f32[T, 6]\n"
            "  %8 = param \"w2\" : f32[4, 6]\n"
            "  %9 = pack(%8) {panel = 32, kc = 1, segs = [4]} : f32[4, 6]\n"
            "  %10 = fused_linear(%7, %9, %0) {segs = [4], residual} : f32[T, 4]\n"
            "  return %10\n");
}

/* The up projection used twice, and a gate activation used twice: no GLU. */
static void test_glu_must_not(void **state) {
  (void)state;
  expect_ir("model neg\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 6] {\n"
            "  param w1 : f32[6, 4]\n"
            "  param w3 : f32[6, 4]\n"
            "  param w5 : f32[6, 4]\n"
            "  param w6 : f32[6, 4]\n"
            "  u = linear(x, w3)\n"
            "  g = silu(linear(x, w1))\n"
            "  v = sigmoid(linear(x, w5))\n"
            "  return g * u + u + v * linear(x, w6) + v\n"
            "}\n",
            "fuse_glu",
            "graph neg (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w3\" : f32[6, 4]\n"
            "  %2 = linear(%0, %1) : f32[T, 6]\n"
            "  %3 = param \"w1\" : f32[6, 4]\n"
            "  %4 = linear(%0, %3) : f32[T, 6]\n"
            "  %5 = silu(%4) : f32[T, 6]\n"
            "  %6 = param \"w5\" : f32[6, 4]\n"
            "  %7 = linear(%0, %6) : f32[T, 6]\n"
            "  %8 = sigmoid(%7) : f32[T, 6]\n"
            "  %9 = mul(%5, %2) : f32[T, 6]\n"
            "  %10 = add(%9, %2) : f32[T, 6]\n"
            "  %11 = param \"w6\" : f32[6, 4]\n"
            "  %12 = linear(%0, %11) : f32[T, 6]\n"
            "  %13 = mul(%8, %12) : f32[T, 6]\n"
            "  %14 = add(%10, %13) : f32[T, 6]\n"
            "  %15 = add(%14, %8) : f32[T, 6]\n"
            "  return %15\n");
}

/* ---- Q/K/V and RoPE ---- */

static void test_qkv_rope_golden(void **state) {
  (void)state;
  expect_ir("model qkv\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
            "  param g : f32[8]\n"
            "  param wq : f32[8, 8]\n"
            "  param wk : f32[4, 8]\n"
            "  param wv : f32[4, 8]\n"
            "  param wo : f32[8, 8]\n"
            "  a = rmsnorm(x, g)\n"
            "  return x + attention(a, wq, wk, wv, wo, heads = 2, kv_heads = 1, position = rope(theta = 10000),\n"
            "                       mask = causal)\n"
            "}\n",
            "fuse_qkv,fuse_rope",
            "graph qkv (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 8]\n"
            "  %1 = param \"g\" : f32[8]\n"
            "  %2 = rmsnorm(%0, %1) {eps = 1e-05} : f32[T, 8]\n"
            "  %3 = param \"wq\" : f32[8, 8]\n"
            "  %4 = param \"wk\" : f32[4, 8]\n"
            "  %5 = param \"wv\" : f32[4, 8]\n"
            "  %6 = param \"wo\" : f32[8, 8]\n"
            "  %7 = concat(%3, %4, %5) : f32[16, 8]\n"
            "  %8 = fused_linear(%2, %7) {segs = [8, 4, 4], rope = [0, 1] (head_dim = 4, rotary_dim = 4, theta = "
            "10000, style = interleaved), planar} : f32[T, 16]\n"
            "  %9 = slice(%8) {index = 0} : f32[T, 8]\n"
            "  %10 = slice(%8) {index = 1} : f32[T, 4]\n"
            "  %11 = slice(%8) {index = 2} : f32[T, 4]\n"
            "  %12 = attention(%9, %10, %11) {heads = 2, kv_heads = 1, head_dim = 4, mask = causal} : f32[T, 8]\n"
            "  %13 = linear(%12, %6) : f32[T, 8]\n"
            "  %14 = add(%0, %13) : f32[T, 8]\n"
            "  return %14\n");
}

/* A rope whose input has another use stays a ROPE node; so does a
 * projection shared with another use (no horizontal fusion of it). */
static void test_rope_must_not(void **state) {
  (void)state;
  expect_ir("model r\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
            "  param w : f32[8, 8]\n"
            "  q = linear(x, w)\n"
            "  return rope(q, heads = 2) + q\n"
            "}\n",
            "fuse_qkv,fuse_rope",
            "graph r (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 8]\n"
            "  %1 = param \"w\" : f32[8, 8]\n"
            "  %2 = linear(%0, %1) : f32[T, 8]\n"
            "  %3 = rope(%2) {heads = 2, head_dim = 4, rotary_dim = 4, theta = 10000, style = interleaved} : "
            "f32[T, 8]\n"
            "  %4 = add(%3, %2) : f32[T, 8]\n"
            "  return %4\n");
}

/* ---- the linear epilogue ---- */

static void test_epilogue_golden(void **state) {
  (void)state;
  /* bias (written as + b) and act fuse; an act followed by a bias cannot take
   * the bias (the epilogue adds it before the act), so that add stays, and
   * so does the residual add of a value that is not a linear */
  expect_ir("model epi\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param w1 : f32[6, 4]\n"
            "  param b1 : f32[6]\n"
            "  param w2 : f32[4, 6]\n"
            "  param b2 : f32[4]\n"
            "  param w3 : f32[4, 4]\n"
            "  h = gelu(linear(x, w1) + b1, approximate = tanh)\n"
            "  y = relu(linear(h, w2)) + b2\n"
            "  return (y + x) + linear(y, w3)\n"
            "}\n",
            "canonicalize,fuse_epilogue",
            "graph epi (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w1\" : f32[6, 4]\n"
            "  %2 = param \"b1\" : f32[6]\n"
            "  %3 = fused_linear(%0, %1, %2) {segs = [6], bias, act = gelu_tanh} : f32[T, 6]\n"
            "  %4 = param \"w2\" : f32[4, 6]\n"
            "  %5 = fused_linear(%3, %4) {segs = [4], act = relu} : f32[T, 4]\n"
            "  %6 = param \"b2\" : f32[4]\n"
            "  %7 = add(%5, %6) : f32[T, 4]\n"
            "  %8 = add(%0, %7) : f32[T, 4]\n"
            "  %9 = param \"w3\" : f32[4, 4]\n"
            "  %10 = fused_linear(%7, %9, %8) {segs = [4], residual} : f32[T, 4]\n"
            "  return %10\n");
}

/* A chain of absorptions on one linear: bias, then the activation, then
 * the residual, without canonicalize's help (each absorbed node lets go of
 * its operand, so the linear's only use is the next consumer). */
static void test_epilogue_chain(void **state) {
  (void)state;
  expect_ir("model chain\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param w : f32[4, 4]\n"
            "  param b : f32[4]\n"
            "  return x + gelu(linear(x, w) + b)\n"
            "}\n",
            "fuse_epilogue",
            "graph chain (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w\" : f32[4, 4]\n"
            "  %2 = param \"b\" : f32[4]\n"
            "  %3 = fused_linear(%0, %1, %2, %0) {segs = [4], bias, act = gelu, residual} : f32[T, 4]\n"
            "  return %3\n");
}

/* ---- norm prologue ---- */

static void test_norm_golden_and_must_not(void **state) {
  (void)state;
  /* the layernorm's output is read by a linear AND as a residual: it stays;
   * the rmsnorm only feeds a linear: it becomes stats + prologue */
  expect_ir("model post\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param g : f32[4]\n"
            "  param b : f32[4]\n"
            "  param w : f32[4, 4]\n"
            "  param g2 : f32[4]\n"
            "  n = layernorm(x, g, b)\n"
            "  m = rmsnorm(x, g2)\n"
            "  return n + linear(n, w) + linear(m, w)\n"
            "}\n",
            "fuse_epilogue,fuse_norm",
            "graph post (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"g\" : f32[4]\n"
            "  %2 = param \"b\" : f32[4]\n"
            "  %3 = layernorm(%0, %1, %2) {eps = 1e-05} : f32[T, 4]\n"
            "  %4 = param \"g2\" : f32[4]\n"
            "  %5 = norm_stats(%0) {norm = rms, eps = 1e-05} : f32[T, 2]\n"
            "  %6 = param \"w\" : f32[4, 4]\n"
            "  %7 = fused_linear(%3, %6, %3) {segs = [4], residual} : f32[T, 4]\n"
            "  %8 = fused_linear(%0, %6, %5, %4, %7) {prologue = rmsnorm, segs = [4], residual} : f32[T, 4]\n"
            "  return %8\n");
  /* a layernorm into two linears: one stats node, both take the prologue */
  char *ir = ir_after("model ln2\n"
                      "const max_seq = 8\n"
                      "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
                      "  param g : f32[4]\n"
                      "  param b : f32[4]\n"
                      "  param w : f32[4, 4]\n"
                      "  param v : f32[4, 4]\n"
                      "  n = layernorm(x, g, b, eps = 1e-6)\n"
                      "  return linear(n, w) * linear(n, v)\n"
                      "}\n",
                      "fuse_norm");
  assert_non_null(strstr(ir, "norm_stats(%0) {norm = layer, eps = 1e-06}"));
  assert_null(strstr(ir, "layernorm("));
  const char *p = strstr(ir, "prologue = layernorm");
  assert_non_null(p);
  assert_non_null(strstr(p + 1, "prologue = layernorm"));
  free(ir);
  /* x made by a fused linear: its epilogue writes the statistics (no
   * kernel of the norm_stats's own) */
  expect_ir("model pre\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param w : f32[4, 4]\n"
            "  param g : f32[4]\n"
            "  param b : f32[4]\n"
            "  param v : f32[4, 4]\n"
            "  h = x + linear(x, w)\n"
            "  return h + linear(layernorm(h, g, b), v)\n"
            "}\n",
            "fuse_epilogue,fuse_norm",
            "graph pre (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w\" : f32[4, 4]\n"
            "  %2 = fused_linear(%0, %1, %0) {segs = [4], residual, stats = layer} : f32[T, 4]\n"
            "  %3 = param \"g\" : f32[4]\n"
            "  %4 = param \"b\" : f32[4]\n"
            "  %5 = norm_stats(%2) {norm = layer, eps = 1e-05, from = epilogue} : f32[T, 2]\n"
            "  %6 = param \"v\" : f32[4, 4]\n"
            "  %7 = fused_linear(%2, %6, %5, %3, %4, %2) {prologue = layernorm, segs = [4], residual} : f32[T, 4]\n"
            "  return %7\n");
}

/* Post-norm blocks: the norm feeds the next linear (prologue) and the
 * residual of a later one (the residual is normalized in that epilogue:
 * residual = layernorm), with the statistics from the producing kernel's
 * epilogue; the graph output's norm keeps its kernel. A norm read by a norm
 * or an activation keeps its kernel; a linear takes one norm (the first
 * norm in node order gives it a residual norm, the second then cannot give
 * it a prologue). */
static void test_post_norm_golden_and_must_not(void **state) {
  (void)state;
  expect_ir("model post\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param w1 : f32[4, 4]\n"
            "  param g1 : f32[4]\n"
            "  param b1 : f32[4]\n"
            "  param w2 : f32[6, 4]\n"
            "  param w3 : f32[4, 6]\n"
            "  param g2 : f32[4]\n"
            "  param b2 : f32[4]\n"
            "  h = layernorm(x + linear(x, w1), g1, b1)\n"
            "  return layernorm(h + linear(relu(linear(h, w2)), w3), g2, b2)\n"
            "}\n",
            "fuse_epilogue,fuse_norm",
            "graph post (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w1\" : f32[4, 4]\n"
            "  %2 = fused_linear(%0, %1, %0) {segs = [4], residual, stats = layer} : f32[T, 4]\n"
            "  %3 = param \"g1\" : f32[4]\n"
            "  %4 = param \"b1\" : f32[4]\n"
            "  %5 = norm_stats(%2) {norm = layer, eps = 1e-05, from = epilogue} : f32[T, 2]\n"
            "  %6 = param \"w2\" : f32[6, 4]\n"
            "  %7 = fused_linear(%2, %6, %5, %3, %4) {prologue = layernorm, segs = [6], act = relu} : f32[T, 6]\n"
            "  %8 = param \"w3\" : f32[4, 6]\n"
            "  %9 = fused_linear(%7, %8, %2, %5, %3, %4) {segs = [4], residual = layernorm} : f32[T, 4]\n"
            "  %10 = param \"g2\" : f32[4]\n"
            "  %11 = param \"b2\" : f32[4]\n"
            "  %12 = layernorm(%9, %10, %11) {eps = 1e-05} : f32[T, 4]\n"
            "  return %12\n");
  expect_ir("model postneg\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param w : f32[4, 4]\n"
            "  param v : f32[4, 4]\n"
            "  param g : f32[4]\n"
            "  param g2 : f32[4]\n"
            "  n = rmsnorm(x + linear(x, w), g)\n"
            "  m = rmsnorm(n, g2)\n"
            "  return silu(m) + linear(n, v)\n"
            "}\n",
            "fuse_epilogue,fuse_norm",
            "graph postneg (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w\" : f32[4, 4]\n"
            "  %2 = fused_linear(%0, %1, %0) {segs = [4], residual} : f32[T, 4]\n"
            "  %3 = param \"g\" : f32[4]\n"
            "  %4 = rmsnorm(%2, %3) {eps = 1e-05} : f32[T, 4]\n"
            "  %5 = param \"g2\" : f32[4]\n"
            "  %6 = rmsnorm(%4, %5) {eps = 1e-05} : f32[T, 4]\n"
            "  %7 = silu(%6) : f32[T, 4]\n"
            "  %8 = param \"v\" : f32[4, 4]\n"
            "  %9 = fused_linear(%4, %8, %7) {segs = [4], residual} : f32[T, 4]\n"
            "  return %9\n");
  expect_ir("model both\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param w : f32[4, 4]\n"
            "  param v : f32[4, 4]\n"
            "  param g : f32[4]\n"
            "  param g2 : f32[4]\n"
            "  n = rmsnorm(x + linear(x, w), g)\n"
            "  m = rmsnorm(x, g2)\n"
            "  return n + linear(m, v)\n"
            "}\n",
            "fuse_epilogue,fuse_norm",
            "graph both (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w\" : f32[4, 4]\n"
            "  %2 = fused_linear(%0, %1, %0) {segs = [4], residual, stats = rms} : f32[T, 4]\n"
            "  %3 = param \"g\" : f32[4]\n"
            "  %4 = norm_stats(%2) {norm = rms, eps = 1e-05, from = epilogue} : f32[T, 2]\n"
            "  %5 = param \"g2\" : f32[4]\n"
            "  %6 = rmsnorm(%0, %5) {eps = 1e-05} : f32[T, 4]\n"
            "  %7 = param \"v\" : f32[4, 4]\n"
            "  %8 = fused_linear(%6, %7, %2, %4, %3) {segs = [4], residual = rmsnorm} : f32[T, 4]\n"
            "  return %8\n");
}

/* A norm of one segment of a planar projection (MLA's q_a beside the
 * latent): the planar kernel writes that segment's statistics (stats = rms
 * (segment 0)) and the norm_stats reads the planar node itself. */
static void test_segment_stats_golden(void **state) {
  (void)state;
  expect_ir("model seg\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
            "  param wa : f32[6, 8]\n"
            "  param wb : f32[4, 8]\n"
            "  param g : f32[6]\n"
            "  param wq : f32[8, 6]\n"
            "  param wc : f32[8, 4]\n"
            "  return linear(rmsnorm(linear(x, wa), g), wq) + linear(linear(x, wb), wc)\n"
            "}\n",
            "fuse_qkv,fuse_epilogue,fuse_norm",
            "graph seg (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 8]\n"
            "  %1 = param \"wa\" : f32[6, 8]\n"
            "  %2 = param \"wb\" : f32[4, 8]\n"
            "  %3 = concat(%1, %2) : f32[10, 8]\n"
            "  %4 = fused_linear(%0, %3) {segs = [6, 4], stats = rms (segment 0), planar} : f32[T, 10]\n"
            "  %5 = slice(%4) {index = 0} : f32[T, 6]\n"
            "  %6 = param \"g\" : f32[6]\n"
            "  %7 = norm_stats(%4) {norm = rms, eps = 1e-05, from = epilogue} : f32[T, 2]\n"
            "  %8 = param \"wq\" : f32[8, 6]\n"
            "  %9 = slice(%4) {index = 1} : f32[T, 4]\n"
            "  %10 = param \"wc\" : f32[8, 4]\n"
            "  %11 = fused_linear(%9, %10) {segs = [8]} : f32[T, 8]\n"
            "  %12 = fused_linear(%5, %8, %7, %6, %11) {prologue = rmsnorm, segs = [8], residual} : f32[T, 8]\n"
            "  return %12\n");
}

/* ---- the embedding's epilogue ---- */

static void test_embedding_golden_and_must_not(void **state) {
  (void)state;
  /* BERT's input: word + positions + token type, layernorm: one kernel */
  expect_ir("model emb\n"
            "const max_seq = 8\n"
            "forward(t : i32[T]) -> f32[T, 4] {\n"
            "  param tok : f32[16, 4]\n"
            "  param pos : f32[8, 4]\n"
            "  param typ : f32[4]\n"
            "  param g : f32[4]\n"
            "  param b : f32[4]\n"
            "  param w : f32[4, 4]\n"
            "  n = layernorm(embedding(tok, t) + positions(pos, t) + typ, g, b)\n"
            "  return n + linear(n, w)\n"
            "}\n",
            "fuse_embedding",
            "graph emb (max_seq = 8)\n"
            "  %0 = input \"t\" : i32[T]\n"
            "  %1 = param \"tok\" : f32[16, 4]\n"
            "  %2 = param \"pos\" : f32[8, 4]\n"
            "  %3 = param \"typ\" : f32[4]\n"
            "  %4 = param \"g\" : f32[4]\n"
            "  %5 = param \"b\" : f32[4]\n"
            "  %6 = embedding(%1, %0, %2, %3, %4, %5) {positions = table, row, norm = layernorm, eps = 1e-05} : "
            "f32[T, 4]\n"
            "  %7 = param \"w\" : f32[4, 4]\n"
            "  %8 = linear(%6, %7) : f32[T, 4]\n"
            "  %9 = add(%6, %8) : f32[T, 4]\n"
            "  return %9\n");
  /* sinusoidal positions (reading the embedding for its shape), then the
   * statistics of the first pre-norm written by the embedding kernel */
  expect_ir("model sin\n"
            "const max_seq = 8\n"
            "forward(t : i32[T]) -> f32[T, 4] {\n"
            "  param tok : f32[16, 4]\n"
            "  param g : f32[4]\n"
            "  param w : f32[4, 4]\n"
            "  x = embedding(tok, t)\n"
            "  x = x + sinusoidal(x, base = 100)\n"
            "  return x + linear(rmsnorm(x, g), w)\n"
            "}\n",
            "fuse_embedding,fuse_epilogue,fuse_norm",
            "graph sin (max_seq = 8)\n"
            "  %0 = input \"t\" : i32[T]\n"
            "  %1 = param \"tok\" : f32[16, 4]\n"
            "  %2 = embedding(%1, %0) {positions = sinusoidal (base = 100), stats = rms} : f32[T, 4]\n"
            "  %3 = param \"g\" : f32[4]\n"
            "  %4 = norm_stats(%2) {norm = rms, eps = 1e-05, from = epilogue} : f32[T, 2]\n"
            "  %5 = param \"w\" : f32[4, 4]\n"
            "  %6 = fused_linear(%2, %5, %4, %3, %2) {prologue = rmsnorm, segs = [4], residual} : f32[T, 4]\n"
            "  return %6\n");
  /* must not: a row added before the positions (the positions add stays,
   * the f32 sums keep their order), an embedding with another use, a
   * positions value with another use, a norm of a sum with another use */
  expect_ir("model embneg\n"
            "const max_seq = 8\n"
            "forward(t : i32[T]) -> f32[T, 4] {\n"
            "  param tok : f32[16, 4]\n"
            "  param pos : f32[8, 4]\n"
            "  param typ : f32[4]\n"
            "  param g : f32[4]\n"
            "  param b : f32[4]\n"
            "  param w : f32[4, 4]\n"
            "  a = embedding(tok, t) + typ + positions(pos, t)\n"
            "  e = embedding(tok, t)\n"
            "  p = positions(pos, t)\n"
            "  c = embedding(tok, t) + p\n"
            "  d = embedding(tok, t) + positions(pos, t)\n"
            "  return a + (e + linear(e, w)) + (c + p) + (layernorm(d, g, b) + d)\n"
            "}\n",
            "fuse_embedding",
            "graph embneg (max_seq = 8)\n"
            "  %0 = input \"t\" : i32[T]\n"
            "  %1 = param \"tok\" : f32[16, 4]\n"
            "  %2 = param \"typ\" : f32[4]\n"
            "  %3 = embedding(%1, %0, %2) {row} : f32[T, 4]\n"
            "  %4 = param \"pos\" : f32[8, 4]\n"
            "  %5 = positions(%4, %0) : f32[T, 4]\n"
            "  %6 = add(%3, %5) : f32[T, 4]\n"
            "  %7 = embedding(%1, %0) : f32[T, 4]\n"
            "  %8 = positions(%4, %0) : f32[T, 4]\n"
            "  %9 = embedding(%1, %0) : f32[T, 4]\n"
            "  %10 = add(%9, %8) : f32[T, 4]\n"
            "  %11 = embedding(%1, %0, %4) {positions = table} : f32[T, 4]\n"
            "  %12 = param \"w\" : f32[4, 4]\n"
            "  %13 = linear(%7, %12) : f32[T, 4]\n"
            "  %14 = add(%7, %13) : f32[T, 4]\n"
            "  %15 = add(%6, %14) : f32[T, 4]\n"
            "  %16 = add(%10, %8) : f32[T, 4]\n"
            "  %17 = add(%15, %16) : f32[T, 4]\n"
            "  %18 = param \"g\" : f32[4]\n"
            "  %19 = param \"b\" : f32[4]\n"
            "  %20 = layernorm(%11, %18, %19) {eps = 1e-05} : f32[T, 4]\n"
            "  %21 = add(%20, %11) : f32[T, 4]\n"
            "  %22 = add(%17, %21) : f32[T, 4]\n"
            "  return %22\n");
}

/* ---- mixture of experts ---- */

/* Mixtral's FFN: the router into the route kernel, act and GLU into one
 * moe_up, the residual into moe_down; then fuse_norm moves the norm into
 * the route's and moe_up's prologues (statistics from the producing
 * linear's epilogue) and the next norm's statistics into moe_down's. */
static void test_moe_golden_and_must_not(void **state) {
  (void)state;
  expect_ir(
      "model moe\n"
      "const max_seq = 8\n"
      "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
      "  param w0 : f32[4, 4]\n"
      "  param g : f32[4]\n"
      "  param r : f32[3, 4]\n"
      "  param w1 : f32[3, 6, 4]\n"
      "  param w2 : f32[3, 4, 6]\n"
      "  param w3 : f32[3, 6, 4]\n"
      "  param g2 : f32[4]\n"
      "  param wout : f32[4, 4]\n"
      "  h = x + linear(x, w0)\n"
      "  y = h + moe(rmsnorm(h, g), r, w1, w2, w3, top_k = 2)\n"
      "  return linear(rmsnorm(y, g2), wout)\n"
      "}\n",
      "fuse_moe,fuse_epilogue,fuse_norm",
      "graph moe (max_seq = 8)\n"
      "  %0 = input \"x\" : f32[T, 4]\n"
      "  %1 = param \"w0\" : f32[4, 4]\n"
      "  %2 = fused_linear(%0, %1, %0) {segs = [4], residual, stats = rms} : f32[T, 4]\n"
      "  %3 = param \"g\" : f32[4]\n"
      "  %4 = norm_stats(%2) {norm = rms, eps = 1e-05, from = epilogue} : f32[T, 2]\n"
      "  %5 = param \"r\" : f32[3, 4]\n"
      "  %6 = param \"w1\" : f32[3, 6, 4]\n"
      "  %7 = param \"w2\" : f32[3, 4, 6]\n"
      "  %8 = param \"w3\" : f32[3, 6, 4]\n"
      "  %9 = moe_route(%2, %5, %4, %3) {top_k = 2, gate = softmax_topk, router, prologue = rmsnorm} : f32[T, 4]\n"
      "  %10 = moe_up(%2, %9, %6, %8, %4, %3) {prologue = rmsnorm, act = silu, glu} : f32[T, 12]\n"
      "  %11 = moe_down(%10, %9, %7, %2) {residual, stats = rms} : f32[T, 4]\n"
      "  %12 = param \"g2\" : f32[4]\n"
      "  %13 = norm_stats(%11) {norm = rms, eps = 1e-05, from = epilogue} : f32[T, 2]\n"
      "  %14 = param \"wout\" : f32[4, 4]\n"
      "  %15 = fused_linear(%11, %14, %13, %12) {prologue = rmsnorm, segs = [4]} : f32[T, 4]\n"
      "  return %15\n");
  /* must not: a router linear shared by two routes (after CSE) stays a
   * linear; a moe output with another use takes no residual; Switch's
   * single projection takes its activation (no GLU); without an activation
   * the product is a GLU with act = none */
  expect_ir("model moeneg\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param r : f32[3, 4]\n"
            "  param w1 : f32[3, 6, 4]\n"
            "  param w2 : f32[3, 4, 6]\n"
            "  param v1 : f32[3, 6, 4]\n"
            "  param v2 : f32[3, 4, 6]\n"
            "  param v3 : f32[3, 6, 4]\n"
            "  y = moe(x, r, w1, w2, top_k = 1, act = sigmoid, gate = softmax)\n"
            "  z = moe(x, r, v1, v2, v3, top_k = 2, act = none)\n"
            "  return y * y + z\n"
            "}\n",
            "cse,fuse_moe",
            "graph moeneg (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"r\" : f32[3, 4]\n"
            "  %2 = param \"w1\" : f32[3, 6, 4]\n"
            "  %3 = param \"w2\" : f32[3, 4, 6]\n"
            "  %4 = linear(%0, %1) : f32[T, 3]\n"
            "  %5 = moe_route(%4) {top_k = 1, gate = softmax} : f32[T, 2]\n"
            "  %6 = moe_up(%0, %5, %2) {act = sigmoid} : f32[T, 6]\n"
            "  %7 = moe_down(%6, %5, %3) : f32[T, 4]\n"
            "  %8 = param \"v1\" : f32[3, 6, 4]\n"
            "  %9 = param \"v2\" : f32[3, 4, 6]\n"
            "  %10 = param \"v3\" : f32[3, 6, 4]\n"
            "  %11 = moe_route(%4) {top_k = 2, gate = softmax_topk} : f32[T, 4]\n"
            "  %12 = moe_up(%0, %11, %8, %10) {glu} : f32[T, 12]\n"
            "  %13 = mul(%7, %7) : f32[T, 4]\n"
            "  %14 = moe_down(%12, %11, %9, %13) {residual} : f32[T, 4]\n"
            "  return %14\n");
}

/* Horizontal fusion stops at an attention that reads the group: the K/V
 * projections of one memory in two cross-attention layers are two matmuls
 * (the second layer's are not computed, and kept live, before the first
 * layer's attention). */
static void test_qkv_group_ends_at_attention(void **state) {
  (void)state;
  expect_ir("model kv\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 8]) -> f32[T, 8] {\n"
            "  param src : f32[3, 8]\n"
            "  param q1 : f32[8, 8]\n"
            "  param k1 : f32[8, 8]\n"
            "  param v1 : f32[8, 8]\n"
            "  param o1 : f32[8, 8]\n"
            "  param q2 : f32[8, 8]\n"
            "  param k2 : f32[8, 8]\n"
            "  param v2 : f32[8, 8]\n"
            "  param o2 : f32[8, 8]\n"
            "  h = x + attention(x, q1, k1, v1, o1, heads = 2, memory = src, mask = none)\n"
            "  return h + attention(h, q2, k2, v2, o2, heads = 2, memory = src, mask = none)\n"
            "}\n",
            "fuse_qkv",
            "graph kv (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 8]\n"
            "  %1 = param \"q1\" : f32[8, 8]\n"
            "  %2 = param \"k1\" : f32[8, 8]\n"
            "  %3 = param \"v1\" : f32[8, 8]\n"
            "  %4 = param \"o1\" : f32[8, 8]\n"
            "  %5 = param \"src\" : f32[3, 8]\n"
            "  %6 = linear(%0, %1) : f32[T, 8]\n"
            "  %7 = concat(%2, %3) : f32[16, 8]\n"
            "  %8 = fused_linear(%5, %7) {segs = [8, 8], planar} : f32[3, 16]\n"
            "  %9 = slice(%8) {index = 0} : f32[3, 8]\n"
            "  %10 = slice(%8) {index = 1} : f32[3, 8]\n"
            "  %11 = attention(%6, %9, %10) {heads = 2, kv_heads = 2, head_dim = 4, mask = none} : f32[T, 8]\n"
            "  %12 = linear(%11, %4) : f32[T, 8]\n"
            "  %13 = add(%0, %12) : f32[T, 8]\n"
            "  %14 = param \"q2\" : f32[8, 8]\n"
            "  %15 = param \"k2\" : f32[8, 8]\n"
            "  %16 = param \"v2\" : f32[8, 8]\n"
            "  %17 = param \"o2\" : f32[8, 8]\n"
            "  %18 = linear(%13, %14) : f32[T, 8]\n"
            "  %19 = concat(%15, %16) : f32[16, 8]\n"
            "  %20 = fused_linear(%5, %19) {segs = [8, 8], planar} : f32[3, 16]\n"
            "  %21 = slice(%20) {index = 0} : f32[3, 8]\n"
            "  %22 = slice(%20) {index = 1} : f32[3, 8]\n"
            "  %23 = attention(%18, %21, %22) {heads = 2, kv_heads = 2, head_dim = 4, mask = none} : f32[T, 8]\n"
            "  %24 = linear(%23, %17) : f32[T, 8]\n"
            "  %25 = add(%13, %24) : f32[T, 8]\n"
            "  return %25\n");
}

/* ---- canonicalize, CSE, DCE ---- */

static void test_cleanup_passes(void **state) {
  (void)state;
  expect_ir("model canon\n"
            "const max_seq = 8\n"
            "forward(x : f32[T, 4]) -> f32[T, 4] {\n"
            "  param w : f32[4, 4]\n"
            "  param b : f32[4]\n"
            "  y = linear(x, w) + b\n"
            "  return silu(y) * y + silu(y)\n"
            "}\n",
            "canonicalize,cse",
            "graph canon (max_seq = 8)\n"
            "  %0 = input \"x\" : f32[T, 4]\n"
            "  %1 = param \"w\" : f32[4, 4]\n"
            "  %2 = param \"b\" : f32[4]\n"
            "  %3 = linear(%0, %1, %2) : f32[T, 4]\n"
            "  %4 = silu(%3) : f32[T, 4]\n"
            "  %5 = mul(%3, %4) : f32[T, 4]\n"
            "  %6 = add(%5, %4) : f32[T, 4]\n"
            "  return %6\n");
  /* DCE: a dead computation and a parameter only it used disappear */
  tfx_graph *g = tfx_graph_new("dead", 8);
  int x = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 4}));
  int w = tfx_graph_add_param(g, "w", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){4, 4}));
  tfx_node n = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){x, w});
  char err[256];
  assert_true(tfx_graph_add(g, &n, err, sizeof err) >= 0); /* dead */
  n = tfx_node_proto(TFX_OP_RELU, 1, &x);
  g->output = tfx_graph_add(g, &n, err, sizeof err);
  tfx_pass_options o;
  tfx_pass_options_init(&o, 2);
  o.passes = "dce";
  assert_int_equal(tfx_run_passes(g, &o, err, sizeof err), 0);
  assert_int_equal(g->n_nodes, 2);
  assert_int_equal(g->nodes[1].op, TFX_OP_RELU);
  assert_int_equal(g->output, 1);
  tfx_graph_free(g);
}

/* ---- folding with real weights, checked through the interpreter ---- */

static int count_op(const tfx_graph *g, tfx_op op) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
  return n;
}

static void run_interp(const tfx_build *b, const void *input, int rows, float *out) {
  char err[256] = "";
  tfx_interp *it = tfx_interp_new(b->graph, b->weights.data);
  if (tfx_interp_forward(it, input, rows, out, err, sizeof err)) fail_msg("interpreter: %s", err);
  tfx_interp_free(it);
}

static void test_fold_weights(void **state) {
  (void)state;
  static const char src[] = "model folded\n"
                            "const max_seq = 16, dim = 24, hidden = 40\n"
                            "param tok : f32[32, dim]\n"
                            "param fg : f32[dim]\n"
                            "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"
                            "  param g : f32[dim]\n"
                            "  param wq : f32[dim, dim]\n"
                            "  param wk : f32[12, dim]\n"
                            "  param wv : f32[12, dim]\n"
                            "  param wo : f32[dim, dim]\n"
                            "  param g2 : f32[dim]\n"
                            "  param w1 : f32[hidden, dim]\n"
                            "  param w2 : f32[dim, hidden]\n"
                            "  param w3 : f32[hidden, dim]\n"
                            "  a = rmsnorm(x, g)\n"
                            "  h = x + attention(a, wq, wk, wv, wo, heads = 4, kv_heads = 2,\n"
                            "                    position = rope(theta = 10000), mask = causal)\n"
                            "  f = rmsnorm(h, g2)\n"
                            "  return h + linear(gelu(linear(f, w1)) * linear(f, w3), w2)\n"
                            "}\n"
                            "forward(t : i32[T]) -> f32[T, 32] {\n"
                            "  x = repeat(2) layer(embedding(tok, t))\n"
                            "  return linear(rmsnorm(x, fg), tok)\n"
                            "}\n";
  tfx_build b0, b2;
  tfx_build_options bo = {.weights = "random:7", .opt_level = 0, .verify_passes = 1};
  assert_int_equal(tfx_build_source("folded.tfx", src, &bo, &b0), 0);
  bo.opt_level = 2;
  assert_int_equal(tfx_build_source("folded.tfx", src, &bo, &b2), 0);
  const tfx_graph *g = b2.graph;
  assert_int_equal(count_op(g, TFX_OP_CONCAT), 0);
  assert_int_equal(count_op(g, TFX_OP_PACK), 0);
  assert_int_equal(count_op(g, TFX_OP_LINEAR), 0);
  assert_int_equal(count_op(g, TFX_OP_FUSED_LINEAR), 2 * 4 + 1); /* qkv, o, glu, down per layer; classifier */
  /* every linear weight is packed, the tied table too (the embedding reads
   * its rows in the packed layout); the blob holds exactly the live params,
   * each 64-byte aligned, in node order */
  int packed = 0;
  int64_t end = 0;
  tfx_pack_layout lay; /* the host target's layout, which the driver hands to the passes */
  char err[256];
  assert_int_equal(tfx_backend_pack_layout(NULL, &lay, err, sizeof err), 0);
  assert_int_equal(lay.panel, 32);
  assert_int_equal(lay.kc, 1);
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_PARAM) continue;
    packed += n->fx.panel == lay.panel && n->fx.kc == lay.kc;
    assert_int_equal(n->weight_offset % 64, 0);
    assert_true(n->weight_offset >= end);
    end = n->weight_offset + tfx_type_bytes(&n->type, 1);
    if (!strcmp(n->name, "layers.0.wq+layers.0.wk+layers.0.wv")) {
      assert_int_equal(n->fx.n_segs, 3);
      assert_int_equal(n->fx.segs[0], 24);
      assert_int_equal(n->fx.segs[1], 12);
    }
  }
  assert_int_equal(packed, 2 * 4 + 1);
  assert_int_equal(g->weights_bytes, end);
  assert_int_equal((int64_t)b2.weights.size, end);
  /* the fused, folded graph computes what the plain one does (interpreter) */
  int32_t t[5] = {3, 1, 4, 1, 5};
  float r0[5 * 32], r2[5 * 32];
  run_interp(&b0, t, 5, r0);
  run_interp(&b2, t, 5, r2);
  /* both interpret in double; only the f32 rounding of intermediates differs */
  assert_true(tfx_test_max_abs_diff(r0, r2, 5 * 32) < 1e-5);
  tfx_build_free(&b0);
  tfx_build_free(&b2);
}

/* A table shared by embeddings and one classifier is packed; shared with
 * anything else it stays row-major (and nothing else reads a packed value). */
static void test_pack_shared_table(void **state) {
  (void)state;
  static const char *const srcs[2] = {"model tied\nconst max_seq = 8\nparam tok : f32[40, 16]\nparam g : f32[16]\n"
                                      "forward(t : i32[T]) -> f32[T, 40] {\n"
                                      "  x = embedding(tok, t) + embedding(tok, t) * embedding(tok, t)\n"
                                      "  return linear(rmsnorm(x, g), tok)\n}\n",
                                      "model twice\nconst max_seq = 8\nparam tok : f32[40, 16]\nparam g : f32[16]\n"
                                      "forward(t : i32[T]) -> f32[T, 40] {\n"
                                      "  x = embedding(tok, t)\n"
                                      "  return linear(rmsnorm(x, g), tok) + linear(x, tok)\n}\n"};
  for (int k = 0; k < 2; k++) {
    tfx_build b0, b2;
    tfx_build_options bo = {.weights = "random:3", .opt_level = 0, .verify_passes = 1};
    assert_int_equal(tfx_build_source("tied.tfx", srcs[k], &bo, &b0), 0);
    bo.opt_level = 2;
    assert_int_equal(tfx_build_source("tied.tfx", srcs[k], &bo, &b2), 0);
    int packed = 0;
    for (int i = 0; i < b2.graph->n_nodes; i++)
      packed += b2.graph->nodes[i].op == TFX_OP_PARAM && b2.graph->nodes[i].fx.panel > 0;
    assert_int_equal(packed, k == 0 ? 1 : 0);
    int32_t t[4] = {3, 39, 0, 7};
    float r0[4 * 40], r2[4 * 40];
    run_interp(&b0, t, 4, r0);
    run_interp(&b2, t, 4, r2);
    assert_true(tfx_test_max_abs_diff(r0, r2, 4 * 40) < 1e-5);
    tfx_build_free(&b0);
    tfx_build_free(&b2);
  }
}

/* ---- the pass manager ---- */

static void test_pass_manager(void **state) {
  (void)state;
  char err[512] = "";
  tfx_build b;
  char *text = NULL;
  size_t len = 0;
  FILE *dump = open_memstream(&text, &len);
  tfx_build_options bo = {.no_weights = 1, .passes = "fuse_nope", .diag = dump};
  assert_int_not_equal(tfx_build_source("glu.tfx", glu_src, &bo, &b), 0);
  fflush(dump);
  assert_non_null(strstr(text, "--passes: unknown pass 'fuse_nope' (passes: canonicalize, cse, dce"));
  fclose(dump);
  free(text);

  /* --print-after-all prints after each pass; --time-passes tabulates */
  dump = open_memstream(&text, &len);
  bo = (tfx_build_options){.no_weights = 1, .opt_level = 3, .print_after_all = 1, .time_passes = 1, .dump = dump};
  assert_int_equal(tfx_build_source("glu.tfx", glu_src, &bo, &b), 0);
  fclose(dump);
  const char *pipeline = tfx_pass_pipeline(3);
  for (const char *p = pipeline; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
    char name[64], header[96];
    size_t n = strcspn(p, ",");
    snprintf(name, sizeof name, "%.*s", (int)n, p);
    snprintf(header, sizeof header, "; ---- IR after %s ----\ngraph glu", name);
    assert_non_null(strstr(text, header));
    snprintf(header, sizeof header, ";   %-14s ", name);
    assert_non_null(strstr(text, header));
  }
  assert_non_null(strstr(text, "; ---- pass timing (glu) ----"));
  assert_non_null(strstr(text, ";   total"));
  free(text);
  /* the planned graph has slots (plan_memory ran last) */
  assert_true(b.graph->arena_bytes > 0);
  tfx_build_free(&b);

  /* a custom list gets plan_memory appended; levels and names */
  bo = (tfx_build_options){.weights = "random", .passes = "fuse_epilogue"};
  assert_int_equal(tfx_build_source("glu.tfx", glu_src, &bo, &b), 0);
  assert_true(b.graph->arena_bytes > 0);
  assert_int_equal(count_op(b.graph, TFX_OP_FUSED_LINEAR), 3);
  tfx_build_free(&b);
  assert_string_equal(tfx_pass_pipeline(0), "plan_memory");
  assert_string_equal(tfx_pass_pipeline(2), tfx_pass_pipeline(3)); /* documented: they differ in LLVM only */
  assert_null(tfx_pass_pipeline(4));
  const char *const *names = tfx_pass_names();
  int n = 0;
  while (names[n]) n++;
  assert_int_equal(n,
                   18); /* schedule_attention, quantize_weights, smooth_quant, llm_int8 and permute_channels included */
  tfx_graph *g = tfx_graph_new("g", 4);
  g->output = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 4}));
  assert_int_equal(tfx_run_pipeline(g, 9, err, sizeof err), -1);
  assert_non_null(strstr(err, "-O9"));
  tfx_graph_free(g);
}

/* ---- the example models ---- */

/* Every example, with its kernels per decode step at -O3 and -O0: at -O3
 * at most half of -O0's for each of them. A listed file that is missing,
 * or an example under examples/ that is not listed, is a failure. */
typedef struct {
  const char *path; /* under examples/ */
  int k3, k0;       /* decode kernels at -O3 and -O0 */
} example;

static const example examples[] = {
    {"llama/stories260k.tfx", 32, 88},
    {"llama/stories110m.tfx", 74, 207},
    {"llama/tiny.tfx", 14, 37},
    {"llama/tiny_hf.tfx", 14, 37},
    {"llama/tiny_neox.tfx", 14, 37},
    {"sparse/masks.tfx", 18, 43},
    {"sparse/masks_bidir.tfx", 14, 39},
    {"deepseek/mla.tfx", 16, 35},
    {"bloom/alibi.tfx", 14, 30},
    {"gpt2/gpt2.tfx", 14, 31},
    {"bert/bert.tfx", 12, 29},
    {"transformer/transformer.tfx", 14, 30},
    {"mixtral/mixtral.tfx", 16, 41},
    {"encdec/encdec.tfx", 33, 69},
    {"longformer/longformer.tfx", 12, 29},
    {"longformer/longformer_global.tfx", 20, 39}, /* + the global_attention kernel per layer (and -O0 its copy) */
    {"longformer/longformer_call.tfx", 20, 39},   /* the same with the global tokens an input */
    {"bigbird/bigbird.tfx", 12, 29},
    {"fortune/fortune.tfx", 26, 71},
    {"llama/stories260k_gguf.tfx", 32, 88}, /* its GGUF is written by test_gguf_model: random weights here */
    {"retnet/retnet.tfx", 18, 39},
    {"infini/infini.tfx", 12, 35},
    {"gemma/gemma.tfx", 16, 43},
    {"t5/t5.tfx", 33, 69},
    {"yoco/yoco.tfx", 31, 74},
    {"linformer/linformer.tfx", 16, 33},
    {"packed/packed.tfx", 16, 29}, /* bert.tfx + 4: positions per segment do not fuse into the embedding */
};
#define N_EXAMPLES ((int)(sizeof examples / sizeof examples[0]))

static void check_example(const example *ex) {
  char path[4096], err[1024] = "";
  snprintf(path, sizeof path, "%s/examples/%s", TFX_SOURCE_DIR, ex->path);
  if (access(path, R_OK) != 0) fail_msg("example %s is missing", path);
  int k[4][2];
  int64_t arena[4];
  tfx_target_options t = {.opt_level = 1};
  for (int o = 0; o <= 3; o += 3) {
    tfx_build b;
    /* stories260k binds its real checkpoint; the others random weights */
    tfx_build_options bo = {
        .weights = strstr(ex->path, "stories260k.tfx") ? NULL : "random:3", .opt_level = o, .verify_passes = 1};
    assert_int_equal(tfx_build_source(path, NULL, &bo, &b), 0);
    if (tfx_backend_kernel_counts(b.graph, &t, &k[o][0], &k[o][1], err, sizeof err)) fail_msg("%s", err);
    tfx_mem_stats ms;
    assert_int_equal(tfx_pass_mem_stats(b.graph, &ms), 0);
    arena[o] = b.graph->arena_bytes;
    fprintf(stderr, "%-28s -O%d: kernels prefill %3d decode %3d; arena %9lld = peak %9lld, naive %10lld\n", ex->path, o,
            k[o][0], k[o][1], (long long)b.graph->arena_bytes, (long long)ms.peak_live, (long long)ms.naive_sum);
    /* the plan reaches the liveness peak (slots are 64-aligned in both) */
    assert_int_equal(b.graph->arena_bytes, ms.peak_live);
    assert_true(b.graph->arena_bytes < ms.naive_sum);
    if (o == 3 && strstr(ex->path, "stories260k")) {
      /* 5 layers at max_seq 512: the residual stream [T, 64], the planar
       * q|k|v [T, 128] and the attention output [T, 64] are live together:
       * (64 + 128 + 64) * 512 * 4 bytes */
      assert_int_equal(b.graph->arena_bytes, 524288);
      assert_true(ms.naive_sum > 9 * b.graph->arena_bytes);
      /* per layer: q|k|v, KV append, attention, wo + residual (+ stats),
       * GLU, w2 + residual (+ stats) instead of 17; then the embedding
       * (+ the statistics of the first norm) and the classifier (-O0:
       * embedding, final norm, classifier) */
      assert_int_equal(k[3][1], 5 * 6 + 2);
      assert_int_equal(k[0][1], 5 * 17 + 3);
    }
    tfx_build_free(&b);
  }
  if (k[3][1] != ex->k3 || k[0][1] != ex->k0)
    fail_msg("%s: %d kernels per decode step at -O3 and %d at -O0, expected %d and %d", ex->path, k[3][1], k[0][1],
             ex->k3, ex->k0);
  /* packed: the per-segment positions, their add and the first norm's
   * statistics stay apart from the embedding (16 of 29) */
  /* Longformer's global projections: the global_attention kernel of each layer does not fuse (20 of 39) */
  assert_true(2 * k[3][1] <= k[0][1] || (strstr(ex->path, "packed") && 2 * k[3][1] <= k[0][1] + 3) ||
              (strstr(ex->path, "longformer_") && 2 * k[3][1] <= k[0][1] + 1));
  if (strstr(ex->path, "encdec")) {
    /* the cross-attention K/V of the two decoder layers are two matmuls
     * (was one, whose second half stayed live across the first layer:
     * 53248 bytes); what is left above -O0's 44032 is the partial row
     * statistics of the encoder memory and of the residual stream that the
     * norm prologues read instead of normalized copies (192 + 512 bytes) */
    assert_int_equal(arena[3], 44736);
    assert_int_equal(arena[0], 44032);
  }
}

static void test_examples(void **state) {
  (void)state;
  for (int i = 0; i < N_EXAMPLES; i++) check_example(&examples[i]);
  /* nothing under examples/ escapes the list */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/examples", TFX_SOURCE_DIR);
  DIR *top = opendir(dir);
  assert_non_null(top);
  int found = 0;
  for (struct dirent *d; (d = readdir(top));) {
    if (d->d_name[0] == '.') continue;
    char sub[8192];
    snprintf(sub, sizeof sub, "%s/%.255s", dir, d->d_name);
    DIR *in = opendir(sub);
    if (!in) continue;
    for (struct dirent *f; (f = readdir(in));) {
      size_t n = strlen(f->d_name);
      if (n < 5 || strcmp(f->d_name + n - 4, ".tfx")) continue;
      char rel[600];
      snprintf(rel, sizeof rel, "%.255s/%.255s", d->d_name, f->d_name);
      int listed = 0;
      for (int i = 0; i < N_EXAMPLES; i++) listed |= !strcmp(examples[i].path, rel);
      if (!listed) fail_msg("examples/%s is not in test_examples' list", rel);
      found++;
    }
    closedir(in);
  }
  closedir(top);
  assert_int_equal(found, N_EXAMPLES);
}

/* ---- tfxc's flags ---- */

static void test_cli_flags(void **state) {
  (void)state;
  char ex[4096];
  snprintf(ex, sizeof ex, "%s/examples/llama/stories260k.tfx", TFX_SOURCE_DIR);
  char *out = NULL, *err = NULL;
  char *stats[] = {TFXC_PATH, ex, "--stats", NULL};
  assert_int_equal(tfx_test_run(stats, &out, &err), 0);
  assert_non_null(strstr(out, "kernels per call:  prefill (forward) "));
  assert_non_null(strstr(out, "arena:             524288 bytes (liveness peak 524288"));
  assert_non_null(strstr(out, "prologue=rmsnorm  epilogue=rope  weights=layers.0.wq+layers.0.wk+layers.0.wv (packed)"));
  assert_non_null(strstr(out, "epilogue=silu,glu"));
  free(out);
  free(err);
  char *pa[] = {TFXC_PATH, ex, "--emit=ir", "--passes=fuse_glu", "--print-after=fuse_glu", "--time-passes", NULL};
  assert_int_equal(tfx_test_run(pa, &out, &err), 0);
  assert_non_null(strstr(err, "; ---- IR after fuse_glu ----"));
  assert_non_null(strstr(err, "{segs = [172, 172], act = silu, glu}"));
  assert_non_null(strstr(err, "; ---- pass timing (stories260k) ----"));
  assert_non_null(strstr(out, "concat(")); /* no weights with --emit=ir: the transform stays an op */
  free(out);
  free(err);
  /* an unknown pass name is a usage error (exit 2), for --passes and --print-after */
  char *bad[] = {TFXC_PATH, ex, "--emit=ir", "--passes=cse,nope", NULL};
  assert_int_equal(tfx_test_run(bad, &out, &err), 2);
  assert_non_null(strstr(err, "--passes: unknown pass 'nope' (passes: canonicalize,"));
  assert_non_null(strstr(err, "usage: tfxc"));
  free(out);
  free(err);
  char *bogus[] = {TFXC_PATH, ex, "--passes=bogus", NULL};
  assert_int_equal(tfx_test_run(bogus, &out, &err), 2);
  assert_non_null(strstr(err, "unknown pass 'bogus'"));
  free(out);
  free(err);
  char *empty[] = {TFXC_PATH, ex, "--emit=ir", "--passes=cse,,dce", NULL};
  assert_int_equal(tfx_test_run(empty, &out, &err), 2);
  assert_non_null(strstr(err, "--passes: empty pass name ''"));
  free(out);
  free(err);
  char *pa_bad[] = {TFXC_PATH, ex, "--emit=ir", "--print-after=fuse_nothing", NULL};
  assert_int_equal(tfx_test_run(pa_bad, &out, &err), 2);
  assert_non_null(strstr(err, "--print-after: unknown pass 'fuse_nothing'"));
  free(out);
  free(err);
  char *mix[] = {TFXC_PATH, ex, "--stats", "-c", NULL};
  assert_int_equal(tfx_test_run(mix, &out, &err), 2);
  free(out);
  free(err);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_glu_golden),
      cmocka_unit_test(test_glu_must_not),
      cmocka_unit_test(test_qkv_rope_golden),
      cmocka_unit_test(test_rope_must_not),
      cmocka_unit_test(test_epilogue_golden),
      cmocka_unit_test(test_epilogue_chain),
      cmocka_unit_test(test_norm_golden_and_must_not),
      cmocka_unit_test(test_post_norm_golden_and_must_not),
      cmocka_unit_test(test_segment_stats_golden),
      cmocka_unit_test(test_embedding_golden_and_must_not),
      cmocka_unit_test(test_moe_golden_and_must_not),
      cmocka_unit_test(test_qkv_group_ends_at_attention),
      cmocka_unit_test(test_cleanup_passes),
      cmocka_unit_test(test_fold_weights),
      cmocka_unit_test(test_pack_shared_table),
      cmocka_unit_test(test_pass_manager),
      cmocka_unit_test(test_examples),
      cmocka_unit_test(test_cli_flags),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
