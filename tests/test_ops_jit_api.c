/* tests/test_ops_jit_api.c — every op of the language, written as a small
 * .tfx program, compiled through the public JIT API (tfx/jit.h) and compared
 * with the reference interpreter running the graph the frontend builds from
 * the same source and the same random weights; also the fused forms the
 * optimizer makes of small blocks (at -O3). Inputs are random; causal
 * programs are run as a prefill and then token by token. Tolerance: max abs
 * error <= 1e-4 * max(1, max |reference|). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../include/tfx/jit.h"
#include "support/testutil.h"

#define TOL 1e-4
#define WEIGHTS "random:11"

typedef struct op_case {
  const char *name;
  const char *body; /* statements of forward(x : f32[T, 24]) ending in a return */
  const char *params;
  int out_cols;
  int causal; /* has a KV cache: also run token by token */
} op_case;

/* D = 24 columns (not a multiple of the vector width), max_seq 32. */
static const op_case cases[] = {
    {"linear", "return linear(x, w)", "param w : f32[37, 24]", 37, 0},
    {"linear_bias", "return linear(x, w, b)", "param w : f32[37, 24]\nparam b : f32[37]", 37, 0},
    {"matmul", "return matmul(x, m)", "param m : f32[24, 19]", 19, 0},
    {"add", "return x + linear(x, w)", "param w : f32[24, 24]", 24, 0},
    {"sub_row", "return x - g", "param g : f32[24]", 24, 0},
    {"mul_row", "return x * g", "param g : f32[24]", 24, 0},
    {"mul", "return x * linear(x, w)", "param w : f32[24, 24]", 24, 0},
    {"rmsnorm", "return rmsnorm(x, g, eps = 1e-5)", "param g : f32[24]", 24, 0},
    {"layernorm", "return layernorm(x, g, b, eps = 1e-5)", "param g : f32[24]\nparam b : f32[24]", 24, 0},
    {"silu", "return silu(x)", "", 24, 0},
    {"gelu_erf", "return gelu(x)", "", 24, 0},
    {"gelu_tanh", "return gelu(x, approximate = tanh)", "", 24, 0},
    {"relu", "return relu(x)", "", 24, 0},
    {"softmax", "return softmax(x)", "", 24, 0},
    {"rope_interleaved", "return rope(x, heads = 3, theta = 10000, style = interleaved)", "", 24, 0},
    {"rope_half_partial", "return rope(x, heads = 2, theta = 500, style = half, rotary_dim = 8)", "", 24, 0},
    {"attention_mha_causal",
     "return attention(x, wq, wk, wv, wo, heads = 4, position = rope(theta = 10000, style = interleaved), mask = "
     "causal)",
     "param wq : f32[24, 24]\nparam wk : f32[24, 24]\nparam wv : f32[24, 24]\nparam wo : f32[24, 24]", 24, 1},
    {"attention_gqa_causal",
     "return attention(x, wq, wk, wv, wo, heads = 4, kv_heads = 2, position = rope(theta = 10000, style = half), "
     "mask = causal)",
     "param wq : f32[24, 24]\nparam wk : f32[12, 24]\nparam wv : f32[12, 24]\nparam wo : f32[24, 24]", 24, 1},
    {"attention_mqa_causal", "return attention(x, wq, wk, wv, wo, heads = 4, kv_heads = 1, mask = causal)",
     "param wq : f32[24, 24]\nparam wk : f32[6, 24]\nparam wv : f32[6, 24]\nparam wo : f32[24, 24]", 24, 1},
    {"attention_bidirectional", "return attention(x, wq, wk, wv, wo, heads = 2, mask = none)",
     "param wq : f32[24, 24]\nparam wk : f32[24, 24]\nparam wv : f32[24, 24]\nparam wo : f32[24, 24]", 24, 0},
    /* the optimizer's fused forms at -O3 (docs/passes.md), on 40 columns (two
     * statistics groups of 32): post-norm blocks (a norm into a prologue and
     * into a later residual's epilogue), the residual's norm on a half-RoPE
     * segment (gathered gain and bias), the statistics of one segment of a
     * planar projection, the MoE kernels with the router, norm prologues,
     * GLU, residual and statistics, and Switch's activation with dropped
     * slots */
    {"post_layernorm",
     "u = linear(x, wu)\n  h = layernorm(u + linear(u, w1), g, b)\n"
     "  return layernorm(h + linear(relu(linear(h, w2)), w3), g2, b2)",
     "param wu : f32[40, 24]\nparam w1 : f32[40, 40]\nparam g : f32[40]\nparam b : f32[40]\n"
     "param w2 : f32[56, 40]\nparam w3 : f32[40, 56]\nparam g2 : f32[40]\nparam b2 : f32[40]",
     40, 0},
    {"post_rmsnorm",
     "u = linear(x, wu)\n  h = rmsnorm(u + linear(u, w1), g)\n  return rmsnorm(h + linear(gelu(linear(h, w2)), w3), "
     "g2)",
     "param wu : f32[40, 24]\nparam w1 : f32[40, 40]\nparam g : f32[40]\nparam w2 : f32[56, 40]\n"
     "param w3 : f32[40, 56]\nparam g2 : f32[40]",
     40, 0},
    {"residual_norm_half_rope",
     "u = linear(x, wu)\n  n = layernorm(u + linear(u, w1), g, b)\n"
     "  return n + rope(linear(relu(u), w2), heads = 5, theta = 100, style = half)",
     "param wu : f32[40, 24]\nparam w1 : f32[40, 40]\nparam g : f32[40]\nparam b : f32[40]\nparam w2 : f32[40, 40]", 40,
     0},
    {"segment_statistics", "return linear(layernorm(linear(x, wa), g, b), wq) + linear(linear(x, wb), wc)",
     "param wa : f32[40, 24]\nparam wb : f32[12, 24]\nparam g : f32[40]\nparam b : f32[40]\nparam wq : f32[24, 40]\n"
     "param wc : f32[24, 12]",
     24, 0},
    {"moe_glu_fused",
     "y = linear(x, w0)\n  h = y + moe(rmsnorm(y, g), r, w1, w2, w3, top_k = 2)\n"
     "  return linear(layernorm(h, g2, b2), wo)",
     "param w0 : f32[40, 24]\nparam g : f32[40]\nparam r : f32[4, 40]\nparam w1 : f32[4, 20, 40]\n"
     "param w2 : f32[4, 40, 20]\nparam w3 : f32[4, 20, 40]\nparam g2 : f32[40]\nparam b2 : f32[40]\n"
     "param wo : f32[24, 40]",
     24, 0},
    {"moe_switch_capacity",
     "return x + moe(layernorm(x, g, b), r, w1, w2, top_k = 1, act = sigmoid, gate = softmax, capacity = 1.0)",
     "param g : f32[24]\nparam b : f32[24]\nparam r : f32[4, 24]\nparam w1 : f32[4, 20, 24]\n"
     "param w2 : f32[4, 24, 20]",
     24, 0},
};

static char *program(const op_case *c) {
  static char src[4096];
  snprintf(src, sizeof src,
           "model op_%s\nconst max_seq = 32\n%s\nforward(x : f32[T, 24]) -> f32[T, %d] {\n  %s\n}\n", c->name,
           c->params, c->out_cols, c->body);
  return src;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 40) / (double)(1 << 24)) * 4.0f - 2.0f;
}

static double ref_scale(const float *v, size_t n) {
  double m = 1;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
  return m;
}

static void run_case(const op_case *c, int opt) {
  const char *src = program(c);
  enum { T = 9, D = 24 };
  float x[T * D];
  for (int i = 0; i < T * D; i++) x[i] = frand();
  size_t out_n = (size_t)T * c->out_cols;
  float *ref = calloc(out_n, sizeof *ref), *got = calloc(out_n, sizeof *got);

  tfx_build_options bo = {.weights = WEIGHTS, .opt_level = 0};
  tfx_build b;
  assert_int_equal(tfx_build_source("op.tfx", src, &bo, &b), 0);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  char err[256];
  assert_int_equal(tfx_interp_forward(it, x, T, ref, err, sizeof err), 0);

  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = opt;
  co.weights = WEIGHTS;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("op.tfx", src, &co, &m), TFX_OK);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  assert_int_equal(tfx_forward_f32(s, x, T, got), TFX_OK);
  double tol = TOL * ref_scale(ref, out_n);
  double diff = tfx_test_max_abs_diff(got, ref, out_n);
  if (!(diff <= tol)) fprintf(stderr, "%s -O%d prefill: max abs error %g > %g\n", c->name, opt, diff, tol);
  assert_true(diff <= tol);
  if (c->causal) {
    /* the same rows one token at a time through the KV cache */
    tfx_session_reset(s);
    for (int t = 0; t < T; t++) assert_int_equal(tfx_forward_f32(s, x + t * D, 1, got + t * c->out_cols), TFX_OK);
    diff = tfx_test_max_abs_diff(got, ref, out_n);
    if (!(diff <= tol)) fprintf(stderr, "%s -O%d decode: max abs error %g > %g\n", c->name, opt, diff, tol);
    assert_true(diff <= tol);
  }
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_interp_free(it);
  tfx_build_free(&b);
  free(ref);
  free(got);
}

static void test_every_op_through_the_jit_api(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    run_case(&cases[i], 0);
    run_case(&cases[i], 3);
  }
}

static void test_embedding_through_the_jit_api(void **state) {
  (void)state;
  static const char src[] = "model emb\nconst max_seq = 16\nparam e : f32[50, 20]\n"
                            "forward(tokens : i32[T]) -> f32[T, 20] {\n  return embedding(e, tokens)\n}\n";
  int32_t tokens[5] = {0, 49, 7, 7, 23};
  float ref[5 * 20], got[5 * 20];
  tfx_build_options bo = {.weights = WEIGHTS};
  tfx_build b;
  assert_int_equal(tfx_build_source("emb.tfx", src, &bo, &b), 0);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  char err[256];
  assert_int_equal(tfx_interp_forward(it, tokens, 5, ref, err, sizeof err), 0);
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = WEIGHTS;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("emb.tfx", src, &co, &m), TFX_OK);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  assert_int_equal(tfx_forward_ex(s, tokens, 5, got, 0), TFX_OK);
  assert_true(tfx_test_max_abs_diff(got, ref, 100) == 0.0); /* a copy is exact */
  int32_t bad = 50;
  assert_int_equal(tfx_forward(s, &bad, 1, got), TFX_ERR_TOKEN_RANGE);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_interp_free(it);
  tfx_build_free(&b);
}

/* The embedding's fused epilogue (fuse_embedding) through the JIT at -O0 and
 * -O3 against the interpreter: learned positions, a token-type row and a
 * layernorm before a causal layer (prefill, then token by token: the
 * positions follow the session), sinusoidal positions with the first
 * pre-norm's statistics, and models without attention whose every node is
 * in the last-row entry (the embedding computes the last token at pos + n -
 * 1, with the statistics of a pre-norm or with the norm applied) with a
 * tied, packed table. */
static const char *const emb_programs[] = {
    "model emb_ln\nconst max_seq = 16\nparam e : f32[50, 40]\nparam pe : f32[20, 40]\nparam typ : f32[40]\n"
    "param g : f32[40]\nparam b : f32[40]\nparam ga : f32[40]\nparam wq : f32[40, 40]\nparam wk : f32[40, 40]\n"
    "param wv : f32[40, 40]\nparam wo : f32[40, 40]\n"
    "forward(tokens : i32[T]) -> f32[T, 40] {\n"
    "  x = layernorm(embedding(e, tokens) + positions(pe, tokens) + typ, g, b)\n"
    "  return x + attention(rmsnorm(x, ga), wq, wk, wv, wo, heads = 4, mask = causal)\n}\n",
    "model emb_sin\nconst max_seq = 16\nparam e : f32[50, 40]\nparam ga : f32[40]\nparam wq : f32[40, 40]\n"
    "param wk : f32[40, 40]\nparam wv : f32[40, 40]\nparam wo : f32[40, 40]\n"
    "forward(tokens : i32[T]) -> f32[T, 40] {\n"
    "  x = embedding(e, tokens)\n  x = x + sinusoidal(x, base = 1000)\n"
    "  return x + attention(rmsnorm(x, ga), wq, wk, wv, wo, heads = 4, mask = causal)\n}\n",
    "model emb_tail\nconst max_seq = 16\nparam e : f32[50, 40]\nparam pe : f32[16, 40]\nparam typ : f32[40]\n"
    "param g : f32[40]\nparam w : f32[50, 40]\n"
    "forward(tokens : i32[T]) -> f32[T, 50] {\n"
    "  x = embedding(e, tokens) + positions(pe, tokens) + typ\n"
    "  return linear(rmsnorm(x, g), e) + linear(x, w)\n}\n",
    "model emb_tail_norm\nconst max_seq = 16\nparam e : f32[50, 40]\nparam pe : f32[16, 40]\nparam g : f32[40]\n"
    "param b : f32[40]\n"
    "forward(tokens : i32[T]) -> f32[T, 50] {\n"
    "  return linear(layernorm(embedding(e, tokens) + positions(pe, tokens), g, b), e)\n}\n",
};

static void run_embedding_program(const char *src, int opt, int causal) {
  enum { T = 7 };
  int32_t tokens[T] = {3, 49, 0, 17, 17, 8, 31};
  tfx_build_options bo = {.weights = WEIGHTS};
  tfx_build b;
  assert_int_equal(tfx_build_source("emb.tfx", src, &bo, &b), 0);
  int64_t cols = tfx_node_cols(&b.graph->nodes[b.graph->output]);
  float *ref = calloc((size_t)(T * cols), sizeof *ref), *got = calloc((size_t)(T * cols), sizeof *got);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  char err[256];
  assert_int_equal(tfx_interp_forward(it, tokens, T, ref, err, sizeof err), 0);
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = opt;
  co.weights = WEIGHTS;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("emb.tfx", src, &co, &m), TFX_OK);
  tfx_session *s = NULL;
  tfx_session_options so = {.threads = 2};
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  assert_int_equal(tfx_forward_ex(s, tokens, T, got, 0), TFX_OK);
  double tol = TOL * ref_scale(ref, (size_t)(T * cols));
  double diff = tfx_test_max_abs_diff(got, ref, (size_t)(T * cols));
  if (!(diff <= tol)) fprintf(stderr, "embedding -O%d prefill: max abs error %g > %g\n%s", opt, diff, tol, src);
  assert_true(diff <= tol);
  tfx_session_reset(s);
  if (causal) {
    for (int t = 0; t < T; t++) assert_int_equal(tfx_forward_ex(s, tokens + t, 1, got + t * cols, 0), TFX_OK);
    diff = tfx_test_max_abs_diff(got, ref, (size_t)(T * cols));
  } else { /* the last row only (the last-row entry) */
    assert_int_equal(tfx_forward_ex(s, tokens, T, got, 1), TFX_OK);
    diff = tfx_test_max_abs_diff(got, ref + (T - 1) * cols, (size_t)cols);
  }
  if (!(diff <= tol))
    fprintf(stderr, "embedding -O%d %s: max abs error %g > %g\n%s", opt, causal ? "decode" : "last row", diff, tol,
            src);
  assert_true(diff <= tol);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_interp_free(it);
  tfx_build_free(&b);
  free(ref);
  free(got);
}

static void test_fused_embeddings_through_the_jit_api(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof emb_programs / sizeof emb_programs[0]; i++)
    for (int opt = 0; opt <= 3; opt += 3) run_embedding_program(emb_programs[i], opt, i < 2);
}

/* The last-row entry (tfx_forward_ex(.., last_only = 1)) runs the nodes
 * after the last attention for the last row only; position-dependent ops
 * among them (rope, sinusoidal, positions) must see that row's position
 * pos + n - 1. Each program puts one after a causal attention; a prefill of
 * 7 rows then a chunk of 4, last rows only, against the interpreter. */
static const char *const tail_bodies[] = {
    "o = attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n"
    "  return o + linear(rope(linear(x, r), heads = 2, theta = 500, style = half), ro)",
    "o = attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n"
    "  return o + linear(rope(linear(x, r), heads = 3, theta = 50), ro)",
    "o = attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n"
    "  return linear(rope(o, heads = 2, theta = 100, style = half, rotary_dim = 8), ro)",
    "o = attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n  return o + linear(x, r)",
    "o = attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n  return linear(o, ro) * linear(x, r)",
    "o = attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n  return o + sinusoidal(o, base = 30)",
    "o = attention(x, wq, wk, wv, wo, heads = 4, mask = causal)\n  return o + positions(pt, o)",
};

static void test_last_row_entry_positions(void **state) {
  (void)state;
  enum { D = 24, N1 = 7, N2 = 4, N = N1 + N2 };
  float x[N * D], ref[N * D], got[D];
  for (int i = 0; i < N * D; i++) x[i] = frand();
  int failures = 0;
  for (size_t c = 0; c < sizeof tail_bodies / sizeof tail_bodies[0]; c++) {
    static char src[4096];
    snprintf(src, sizeof src,
             "model tail\nconst max_seq = 32\nparam wq : f32[24, 24]\nparam wk : f32[24, 24]\nparam wv : f32[24, "
             "24]\nparam wo : f32[24, 24]\nparam r : f32[24, 24]\nparam ro : f32[24, 24]\nparam pt : f32[32, 24]\n"
             "forward(x : f32[T, 24]) -> f32[T, 24] {\n  %s\n}\n",
             tail_bodies[c]);
    tfx_build_options bo = {.weights = WEIGHTS, .opt_level = 0};
    tfx_build b;
    assert_int_equal(tfx_build_source("tail.tfx", src, &bo, &b), 0);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    char err[256];
    assert_int_equal(tfx_interp_forward(it, x, N1, ref, err, sizeof err), 0);
    assert_int_equal(tfx_interp_forward(it, x + N1 * D, N2, ref + N1 * D, err, sizeof err), 0);
    for (int opt = 0; opt <= 3; opt += 3) {
      tfx_compile_options co;
      tfx_compile_options_init(&co);
      co.opt_level = opt;
      co.weights = WEIGHTS;
      tfx_model *m = NULL;
      assert_int_equal(tfx_jit_compile_source("tail.tfx", src, &co, &m), TFX_OK);
      tfx_session *s = NULL;
      assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
      for (int k = 0; k < 2; k++) {
        int t0 = k ? N1 : 0, n = k ? N2 : N1;
        assert_int_equal(tfx_forward_f32_ex(s, x + t0 * D, n, got, 1), TFX_OK);
        const float *want = ref + (t0 + n - 1) * D;
        double tol = TOL * ref_scale(want, D), diff = tfx_test_max_abs_diff(got, want, D);
        if (!(diff <= tol)) {
          fprintf(stderr, "tail case %zu -O%d call %d (last row %d): max abs error %g > %g\n", c, opt, k, t0 + n - 1,
                  diff, tol);
          failures++;
        }
      }
      tfx_session_free(s);
      tfx_model_close(m);
    }
    tfx_interp_free(it);
    tfx_build_free(&b);
  }
  assert_int_equal(failures, 0);
}

/* A model without a KV cache sees every call as a whole sequence at
 * position 0: the rope op, a rope fused into a linear's epilogue (the
 * interpreter runs the -O3 graph too), sinusoidal and positions give a
 * second call the same rows as the first, in the interpreter and the JIT.
 * (The interpreter used to advance its position in such models, so its rope
 * of a later call disagreed with the compiled code.) */
static void test_no_kv_cache_restarts_positions(void **state) {
  (void)state;
  static const char src[] =
      "model enc\nconst max_seq = 16\nparam r : f32[24, 24]\nparam pt : f32[16, 24]\n"
      "forward(x : f32[T, 24]) -> f32[T, 24] {\n"
      "  y = rope(x, heads = 2, theta = 100, style = half) + rope(linear(x, r), heads = 4, theta = 50)\n"
      "  return y + sinusoidal(x, base = 20) + positions(pt, x)\n}\n";
  enum { T = 5, D = 24 };
  float x[T * D], first[T * D], again[T * D];
  for (int i = 0; i < T * D; i++) x[i] = frand();
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build_options bo = {.weights = WEIGHTS, .opt_level = opt};
    tfx_build b;
    assert_int_equal(tfx_build_source("enc.tfx", src, &bo, &b), 0);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    char err[256];
    assert_int_equal(tfx_interp_forward(it, x, T, first, err, sizeof err), 0);
    assert_int_equal(tfx_interp_forward(it, x, T, again, err, sizeof err), 0);
    assert_true(tfx_test_max_abs_diff(again, first, T * D) == 0.0);
    tfx_compile_options co;
    tfx_compile_options_init(&co);
    co.opt_level = opt;
    co.weights = WEIGHTS;
    tfx_model *m = NULL;
    assert_int_equal(tfx_jit_compile_source("enc.tfx", src, &co, &m), TFX_OK);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    for (int k = 0; k < 2; k++) {
      assert_int_equal(tfx_forward_f32(s, x, T, again), TFX_OK);
      assert_true(tfx_test_max_abs_diff(again, first, T * D) <= TOL * ref_scale(first, T * D));
    }
    tfx_session_free(s);
    tfx_model_close(m);
    tfx_interp_free(it);
    tfx_build_free(&b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_op_through_the_jit_api),
      cmocka_unit_test(test_embedding_through_the_jit_api),
      cmocka_unit_test(test_fused_embeddings_through_the_jit_api),
      cmocka_unit_test(test_last_row_entry_positions),
      cmocka_unit_test(test_no_kv_cache_restarts_positions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
