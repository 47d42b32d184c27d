/* tests/test_backend_ops.c — the LLVM backend against the reference
 * interpreter. Every op and option (embedding; linear with and without bias;
 * matmul; add/sub/mul same-shape and row-broadcast; rmsnorm; layernorm; silu;
 * gelu erf and tanh; relu; softmax; rope interleaved / half / partial;
 * attention MHA / GQA / MQA, causal with the KV cache and unmasked) is built
 * as a small graph with odd sizes (37, 43, 172, ...) so vector tails are hit,
 * planned, JIT-compiled at -O0 and -O3 and run through the runtime API
 * (tfx_model_from_descriptor, sessions with 2 threads, tfx_forward_ex /
 * tfx_forward_f32) on random inputs. Causal graphs run a prefill of 7 rows
 * then single-token decode steps (the `decode` entry) and more chunks, with
 * the interpreter doing the same calls.
 * Tolerance everywhere: max |jit - ref| <= 1e-4 * max(1, max |ref|).
 * Also: the descriptor read through the C struct (every field, and the
 * struct layout the backend assumes), AOT object + shared library opened with
 * tfx_model_open, two JIT models alive at once, the transcendental kernels'
 * relative precision, and errors returned (not crashes) on bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../backend/backend.h"
#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/jit_harness.h"
#include "support/testutil.h"
#include "tfx/tfx.h"

/* ---- the harness (tests/support/jit_harness.c) ---- */

static void compare_runs(tfx_tg *t, tfx_model *m, const int *ns, int n_calls, float in_scale, const char *what) {
  tfx_tg_compare_runs(t, m, ns, n_calls, &(tfx_tg_run_opts){.in_scale = in_scale}, what);
}

/* Plans the graph, then checks it at -O0 and -O3. */
static void check_graph_scaled(tfx_tg *t, const int *ns, int n_calls, float in_scale, const char *what) {
  tfx_tg_check_levels(t, ns, n_calls, &(tfx_tg_run_opts){.in_scale = in_scale}, what);
}

static const int k_stateless_calls[] = {7, 1, 4, 16, 3};
#define N_STATELESS (int)(sizeof k_stateless_calls / sizeof k_stateless_calls[0])

static void check_graph(tfx_tg *t, const char *what) {
  check_graph_scaled(t, k_stateless_calls, N_STATELESS, 2.0f, what);
}

static int linear(tfx_tg *t, int x, int64_t out, int64_t in, const char *wname, float scale) {
  int w = tfx_tg_param2(t, wname, out, in, scale);
  return tfx_tg_op2(t, TFX_OP_LINEAR, x, w);
}

/* ---- ops ---- */

static void test_embedding(void **state) {
  (void)state;
  static const int64_t widths[] = {20, 172, 16};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = tfx_tg_new("emb", 16, 11 + i);
    int tok = tfx_tg_input_tokens(t);
    int table = tfx_tg_param2(t, "table", 37, widths[i], 1.0f);
    t->g->output = tfx_tg_op2(t, TFX_OP_EMBEDDING, table, tok);
    assert_true(t->g->output >= 0);
    check_graph(t, "embedding");
    tfx_tg_free(t);
  }
}

static void check_linear(int64_t K, int64_t N, int bias, const char *what) {
  tfx_tg *t = tfx_tg_new("lin", 16, (uint64_t)(K * 1000 + N));
  int x = tfx_tg_input_f32(t, K);
  int w = tfx_tg_param2(t, "w", N, K, 0.3f);
  if (bias) {
    int b = tfx_tg_param1(t, "b", N, 1.0f, 0.0f);
    t->g->output = tfx_tg_op3(t, TFX_OP_LINEAR, x, w, b);
  } else {
    t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, x, w);
  }
  assert_true(t->g->output >= 0);
  check_graph(t, what);
  tfx_tg_free(t);
}

static void test_linear(void **state) {
  (void)state;
  check_linear(37, 43, 0, "linear 37->43");
  check_linear(64, 8, 0, "linear 64->8");
  check_linear(16, 5, 0, "linear 16->5");
  check_linear(3, 17, 0, "linear 3->17");
}

static void test_linear_bias(void **state) {
  (void)state;
  check_linear(172, 21, 1, "linear+bias 172->21");
  check_linear(33, 64, 1, "linear+bias 33->64");
}

static void check_matmul(int64_t K, int64_t N, int b_from_param) {
  tfx_tg *t = tfx_tg_new("mm", 16, (uint64_t)(K * 77 + N));
  int x = tfx_tg_input_f32(t, K);
  int b;
  if (b_from_param) {
    b = tfx_tg_param2(t, "b", K, N, 0.5f);
  } else { /* b = an activation-independent static value: linear of a param */
    int p = tfx_tg_param2(t, "p", K, 7, 0.5f);
    int w = tfx_tg_param2(t, "w", N, 7, 0.5f);
    b = tfx_tg_op2(t, TFX_OP_LINEAR, p, w);
  }
  t->g->output = tfx_tg_op2(t, TFX_OP_MATMUL, x, b);
  assert_true(t->g->output >= 0);
  check_graph(t, "matmul");
  tfx_tg_free(t);
}

static void test_matmul(void **state) {
  (void)state;
  check_matmul(37, 23, 1);
  check_matmul(16, 40, 1);
  check_matmul(5, 32, 0);
}

static void test_binary_same_shape(void **state) {
  (void)state;
  static const tfx_op ops[3] = {TFX_OP_ADD, TFX_OP_SUB, TFX_OP_MUL};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = tfx_tg_new("bin", 16, 21 + i);
    int x = tfx_tg_input_f32(t, 37);
    int y = linear(t, x, 37, 37, "w", 0.3f);
    t->g->output = tfx_tg_op2(t, ops[i], x, y);
    assert_true(t->g->output >= 0);
    check_graph(t, tfx_op_name(ops[i]));
    tfx_tg_free(t);
  }
}

static void test_binary_broadcast(void **state) {
  (void)state;
  static const tfx_op ops[3] = {TFX_OP_ADD, TFX_OP_SUB, TFX_OP_MUL};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = tfx_tg_new("bcast", 16, 31 + i);
    int x = tfx_tg_input_f32(t, 37);
    int p = tfx_tg_param1(t, "row", 37, 1.5f, 0.5f);
    t->g->output = tfx_tg_op2(t, ops[i], x, p);
    assert_true(t->g->output >= 0);
    check_graph(t, tfx_op_name(ops[i]));
    tfx_tg_free(t);
  }
}

static void test_rmsnorm(void **state) {
  (void)state;
  static const int64_t widths[] = {172, 64, 5};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = tfx_tg_new("rms", 16, 41 + i);
    int x = tfx_tg_input_f32(t, widths[i]);
    int g = tfx_tg_param1(t, "g", widths[i], 0.5f, 1.0f);
    tfx_node n = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, g});
    n.eps = 1e-5;
    t->g->output = tfx_tg_add(t, &n);
    assert_true(t->g->output >= 0);
    check_graph(t, "rmsnorm");
    tfx_tg_free(t);
  }
}

static void test_layernorm(void **state) {
  (void)state;
  static const int64_t widths[] = {37, 64};
  for (int i = 0; i < 2; i++) {
    tfx_tg *t = tfx_tg_new("ln", 16, 51 + i);
    int x = tfx_tg_input_f32(t, widths[i]);
    int shift = tfx_tg_param1(t, "shift", widths[i], 0.5f, 3.0f); /* a mean far from 0 */
    int xs = tfx_tg_op2(t, TFX_OP_ADD, x, shift);
    int g = tfx_tg_param1(t, "g", widths[i], 0.5f, 1.0f);
    int b = tfx_tg_param1(t, "b", widths[i], 0.5f, 0.0f);
    tfx_node n = tfx_node_proto(TFX_OP_LAYERNORM, 3, (int[]){xs, g, b});
    n.eps = 1e-5;
    t->g->output = tfx_tg_add(t, &n);
    assert_true(t->g->output >= 0);
    check_graph(t, "layernorm");
    tfx_tg_free(t);
  }
}

/* unary op over x * [0.5 .. 6.5] so inputs span about [-13, 13] */
static void check_unary(tfx_op op, int gelu_tanh, const char *what) {
  tfx_tg *t = tfx_tg_new("act", 16, 61 + (uint64_t)op * 3 + (uint64_t)gelu_tanh);
  int x = tfx_tg_input_f32(t, 37);
  int s = tfx_tg_param1(t, "scale", 37, 3.0f, 3.5f);
  int xs = tfx_tg_op2(t, TFX_OP_MUL, x, s);
  tfx_node n = tfx_node_proto(op, 1, (int[]){xs});
  n.gelu_tanh = gelu_tanh;
  t->g->output = tfx_tg_add(t, &n);
  assert_true(t->g->output >= 0);
  check_graph(t, what);
  tfx_tg_free(t);
}

static void test_activations(void **state) {
  (void)state;
  check_unary(TFX_OP_SILU, 0, "silu");
  check_unary(TFX_OP_GELU, 0, "gelu erf");
  check_unary(TFX_OP_GELU, 1, "gelu tanh");
  check_unary(TFX_OP_RELU, 0, "relu");
}

static void test_softmax(void **state) {
  (void)state;
  static const int64_t widths[] = {37, 16, 3};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = tfx_tg_new("sm", 16, 71 + i);
    int x = tfx_tg_input_f32(t, widths[i]);
    int s = tfx_tg_param1(t, "scale", widths[i], 2.0f, 3.0f);
    t->g->output = tfx_tg_op1(t, TFX_OP_SOFTMAX, tfx_tg_op2(t, TFX_OP_MUL, x, s));
    assert_true(t->g->output >= 0);
    check_graph(t, "softmax");
    tfx_tg_free(t);
  }
}

static void check_rope(int heads, int head_dim, int rotary_dim, tfx_rope_style style, double theta, const char *what) {
  tfx_tg *t = tfx_tg_new("rope", 16, (uint64_t)(heads * 100 + head_dim * 10 + rotary_dim));
  int x = tfx_tg_input_f32(t, (int64_t)heads * head_dim);
  tfx_node n = tfx_node_proto(TFX_OP_ROPE, 1, (int[]){x});
  n.heads = heads;
  n.head_dim = head_dim;
  n.rotary_dim = rotary_dim;
  n.rope_style = style;
  n.theta = theta;
  t->g->output = tfx_tg_add(t, &n);
  assert_true(t->g->output >= 0);
  check_graph(t, what);
  tfx_tg_free(t);
}

static void test_rope(void **state) {
  (void)state;
  check_rope(4, 8, 8, TFX_ROPE_INTERLEAVED, 10000.0, "rope interleaved");
  check_rope(3, 10, 10, TFX_ROPE_HALF, 10000.0, "rope half");
  check_rope(2, 20, 12, TFX_ROPE_INTERLEAVED, 10000.0, "rope interleaved partial");
  check_rope(2, 20, 6, TFX_ROPE_HALF, 500000.0, "rope half partial");
  check_rope(1, 64, 40, TFX_ROPE_HALF, 10000.0, "rope half partial wide");
  check_rope(2, 36, 34, TFX_ROPE_INTERLEAVED, 100.0, "rope interleaved 34/36");
}

/* q, k, v = linears of x; optional rope on q and k; attention. */
static tfx_tg *attention_graph(int H, int G, int d, tfx_mask_kind mask, int rope, int64_t max_seq, int64_t dim,
                               float qk_scale) {
  tfx_tg *t = tfx_tg_new("attn", max_seq, (uint64_t)(H * 1000 + G * 100 + d + mask));
  int x = tfx_tg_input_f32(t, dim);
  int q = linear(t, x, (int64_t)H * d, dim, "wq", qk_scale);
  int k = linear(t, x, (int64_t)G * d, dim, "wk", qk_scale);
  int v = linear(t, x, (int64_t)G * d, dim, "wv", 0.5f);
  if (rope) {
    tfx_node r = tfx_node_proto(TFX_OP_ROPE, 1, (int[]){q});
    r.heads = H;
    r.head_dim = d;
    r.rotary_dim = d;
    r.theta = 10000.0;
    r.rope_style = TFX_ROPE_INTERLEAVED;
    q = tfx_tg_add(t, &r);
    r.inputs[0] = k;
    r.heads = G;
    k = tfx_tg_add(t, &r);
  }
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  a.heads = H;
  a.kv_heads = G;
  a.head_dim = d;
  a.mask = mask;
  t->g->output = tfx_tg_add(t, &a);
  assert_true(t->g->output >= 0);
  return t;
}

static void test_attention_unmasked(void **state) {
  (void)state;
  static const int cfg[3][3] = {{4, 4, 8}, {6, 2, 12}, {4, 1, 20}}; /* MHA, GQA, MQA */
  static const char *names[3] = {"attention none MHA", "attention none GQA", "attention none MQA"};
  for (int i = 0; i < 3; i++) {
    tfx_tg *t = attention_graph(cfg[i][0], cfg[i][1], cfg[i][2], TFX_MASK_NONE, 0, 16, 24, 0.5f);
    check_graph(t, names[i]);
    tfx_tg_free(t);
  }
}

static void test_attention_causal(void **state) {
  (void)state;
  static const int cfg[3][3] = {{4, 4, 8}, {8, 4, 8}, {4, 1, 20}}; /* MHA, GQA (stories260K), MQA */
  static const char *names[3] = {"attention causal MHA", "attention causal GQA", "attention causal MQA"};
  static const int calls[] = {7, 1, 1, 1, 5, 1, 2, 1};
  for (int i = 0; i < 3; i++) {
    for (int rope = 0; rope < 2; rope++) {
      tfx_tg *t = attention_graph(cfg[i][0], cfg[i][1], cfg[i][2], TFX_MASK_CAUSAL, rope, 32, 24, 0.5f);
      char label[96];
      snprintf(label, sizeof label, "%s%s", names[i], rope ? " + rope" : "");
      check_graph_scaled(t, calls, (int)(sizeof calls / sizeof calls[0]), 2.0f, label);
      tfx_tg_free(t);
    }
  }
}

/* More keys than one block of the online softmax, with peaky scores. */
static void test_attention_long_context(void **state) {
  (void)state;
  static const int calls[] = {200, 1, 1, 60, 1};
  tfx_tg *t = attention_graph(4, 2, 16, TFX_MASK_CAUSAL, 1, 300, 24, 1.0f);
  check_graph_scaled(t, calls, 5, 2.0f, "attention causal long");
  tfx_tg_free(t);
  static const int calls2[] = {150, 150};
  t = attention_graph(2, 2, 16, TFX_MASK_NONE, 0, 150, 24, 1.0f);
  check_graph_scaled(t, calls2, 2, 2.0f, "attention none long");
  tfx_tg_free(t);
}

/* A two-layer LLaMA-style decoder with every op of stories260K, of any shape. */
static tfx_tg *llama_shape(const char *name, int64_t V, int64_t D, int64_t H, int64_t G, int64_t F, int64_t max_seq,
                           uint64_t seed) {
  const int64_t hd = D / H;
  tfx_tg *t = tfx_tg_new(name, max_seq, seed);
  int tok = tfx_tg_input_tokens(t);
  int emb = tfx_tg_param2(t, "tok_embeddings", V, D, 1.0f);
  int x = tfx_tg_op2(t, TFX_OP_EMBEDDING, emb, tok);
  for (int l = 0; l < 2; l++) {
    tfx_node n = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "attention_norm", D, 0.3f, 1.0f)});
    n.eps = 1e-5;
    int a = tfx_tg_add(t, &n);
    int q = linear(t, a, H * hd, D, "wq", 0.4f), k = linear(t, a, G * hd, D, "wk", 0.4f);
    int v = linear(t, a, G * hd, D, "wv", 0.4f);
    tfx_node r = tfx_node_proto(TFX_OP_ROPE, 1, (int[]){q});
    r.heads = (int)H;
    r.head_dim = (int)hd;
    r.rotary_dim = (int)hd;
    r.theta = 10000.0;
    q = tfx_tg_add(t, &r);
    r.inputs[0] = k;
    r.heads = (int)G;
    k = tfx_tg_add(t, &r);
    tfx_node at = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
    at.heads = (int)H;
    at.kv_heads = (int)G;
    at.head_dim = (int)hd;
    at.mask = TFX_MASK_CAUSAL;
    int o = linear(t, tfx_tg_add(t, &at), D, H * hd, "wo", 0.3f);
    int h = tfx_tg_op2(t, TFX_OP_ADD, x, o);
    n = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){h, tfx_tg_param1(t, "ffn_norm", D, 0.3f, 1.0f)});
    n.eps = 1e-5;
    int f = tfx_tg_add(t, &n);
    int g1 = tfx_tg_op1(t, TFX_OP_SILU, linear(t, f, F, D, "w1", 0.3f));
    int up = linear(t, f, F, D, "w3", 0.3f);
    int down = linear(t, tfx_tg_op2(t, TFX_OP_MUL, g1, up), D, F, "w2", 0.3f);
    x = tfx_tg_op2(t, TFX_OP_ADD, h, down);
  }
  tfx_node n = tfx_node_proto(TFX_OP_RMSNORM, 2, (int[]){x, tfx_tg_param1(t, "norm", D, 0.3f, 1.0f)});
  n.eps = 1e-5;
  t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, tfx_tg_add(t, &n), emb);
  assert_true(t->g->output >= 0);
  return t;
}

static tfx_tg *tiny_llama(const char *name) { return llama_shape(name, 37, 32, 4, 2, 43, 24, 1234); }

static const int k_decoder_calls[] = {7, 1, 1, 1, 4, 1};
#define N_DECODER_CALLS (int)(sizeof k_decoder_calls / sizeof k_decoder_calls[0])

static void test_tiny_decoder(void **state) {
  (void)state;
  tfx_tg *t = tiny_llama("tiny_llama");
  check_graph_scaled(t, k_decoder_calls, N_DECODER_CALLS, 1.0f, "tiny decoder");
  tfx_tg_free(t);
}

/* The small-model decode kernel (backend/k_tiny_heads.c, chosen by the cost model for head_dim <= 16)
 * on and off (schedule { decode = row }): stories260K's shape (D 64, GQA 8 / 4 heads of 8, hidden 172,
 * vocab 512) and an MHA one (4 heads of 16, hidden 44), prefill, decodes past a 16-key block and a
 * chunk, against the interpreter at -O0 and -O3. */
static const int k_small_calls[] = {7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1, 1, 1, 1, 1, 9, 1};
#define N_SMALL_CALLS (int)(sizeof k_small_calls / sizeof k_small_calls[0])

static void test_small_model_decode(void **state) {
  (void)state;
  static const int64_t shapes[2][5] = {{512, 64, 8, 4, 172}, {61, 64, 4, 4, 44}};
  for (int sh = 0; sh < 2; sh++)
    for (int on = 0; on < 2; on++) {
      tfx_tg *t = llama_shape("small_llama", shapes[sh][0], shapes[sh][1], shapes[sh][2], shapes[sh][3], shapes[sh][4],
                              48, 77 + (uint64_t)sh);
      t->g->schedule.decode = on ? TFX_SCHED_DECODE_AUTO : TFX_SCHED_DECODE_ROW;
      int chosen = 0;
      for (int i = 0; i < t->g->n_nodes; i++)
        if (t->g->nodes[i].op == TFX_OP_ATTENTION) chosen += tfx_attn_tiny_chosen(t->g, &t->g->nodes[i]);
      assert_int_equal(chosen, on ? 2 : 0);
      char what[64];
      snprintf(what, sizeof what, "small model %s, tiny kernel %s", sh ? "MHA d16" : "stories260K shape",
               on ? "on" : "off");
      check_graph_scaled(t, k_small_calls, N_SMALL_CALLS, 1.0f, what);
      tfx_tg_free(t);
    }
}

/* ---- descriptor ---- */

static void test_descriptor(void **state) {
  (void)state;
  /* the layout the backend emits as LLVM structs */
  assert_int_equal(offsetof(tfx_model_desc, magic), 0);
  assert_int_equal(offsetof(tfx_model_desc, abi_version), 4);
  assert_int_equal(offsetof(tfx_model_desc, name), 8);
  assert_int_equal(offsetof(tfx_model_desc, input_kind), 16);
  assert_int_equal(offsetof(tfx_model_desc, input_width), 20);
  assert_int_equal(offsetof(tfx_model_desc, output_width), 24);
  assert_int_equal(offsetof(tfx_model_desc, vocab), 28);
  assert_int_equal(offsetof(tfx_model_desc, max_seq), 32);
  assert_int_equal(offsetof(tfx_model_desc, has_kv_cache), 36);
  assert_int_equal(offsetof(tfx_model_desc, arena_bytes), 40);
  assert_int_equal(offsetof(tfx_model_desc, kv_bytes), 48);
  assert_int_equal(offsetof(tfx_model_desc, weights_bytes), 56);
  assert_int_equal(offsetof(tfx_model_desc, weights), 64);
  assert_int_equal(offsetof(tfx_model_desc, n_entries), 72);
  assert_int_equal(offsetof(tfx_model_desc, threads), 76);
  assert_int_equal(offsetof(tfx_model_desc, entries), 80);
  assert_int_equal(offsetof(tfx_model_desc, desc_checksum), 88);
  assert_int_equal(offsetof(tfx_model_desc, weights_checksum), 96);
  assert_int_equal(offsetof(tfx_model_desc, cpu_arch), 104);
  assert_int_equal(offsetof(tfx_model_desc, cpu_reserved), 108);
  assert_int_equal(offsetof(tfx_model_desc, cpu_features), 112);
  assert_int_equal(offsetof(tfx_model_desc, variant_next), 120);
  assert_int_equal(offsetof(tfx_model_desc, bos_id), 128);
  assert_int_equal(offsetof(tfx_model_desc, eos_id), 132);
  assert_int_equal(offsetof(tfx_model_desc, pad_id), 136);
  assert_int_equal(offsetof(tfx_model_desc, tokenizer_reserved), 140);
  assert_int_equal(offsetof(tfx_model_desc, tokenizer), 144);
  assert_int_equal(offsetof(tfx_model_desc, tokenizer_bytes), 152);
  assert_int_equal(offsetof(tfx_model_desc, n_inputs), 160);
  assert_int_equal(offsetof(tfx_model_desc, inputs_reserved), 164);
  assert_int_equal(offsetof(tfx_model_desc, inputs), 168);
  assert_int_equal(offsetof(tfx_model_desc, src_cache_bytes), 176);
  assert_int_equal(sizeof(tfx_model_desc), 184);
  assert_int_equal(offsetof(tfx_input_desc, name), 0);
  assert_int_equal(offsetof(tfx_input_desc, kind), 8);
  assert_int_equal(offsetof(tfx_input_desc, width), 12);
  assert_int_equal(offsetof(tfx_input_desc, vocab), 16);
  assert_int_equal(offsetof(tfx_input_desc, rows), 20);
  assert_int_equal(sizeof(tfx_input_desc), 24);
  assert_int_equal(offsetof(tfx_entry_desc, name), 0);
  assert_int_equal(offsetof(tfx_entry_desc, fn), 8);
  assert_int_equal(offsetof(tfx_entry_desc, min_tokens), 16);
  assert_int_equal(offsetof(tfx_entry_desc, max_tokens), 20);
  assert_int_equal(offsetof(tfx_entry_desc, n_args), 24);
  assert_int_equal(offsetof(tfx_entry_desc, arg_kinds), 32);
  assert_int_equal(offsetof(tfx_entry_desc, flags), 40);
  assert_int_equal(offsetof(tfx_entry_desc, kv_block_bytes), 44);
  assert_int_equal(sizeof(tfx_entry_desc), 48);

  tfx_tg *t = tiny_llama("tiny_llama");
  char err[256];
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  tfx_target_options o = {.opt_level = 2};
  tfx_jit_module *jm = NULL;
  const tfx_model_desc *d = NULL;
  assert_int_equal(tfx_backend_jit(t->g, &o, &jm, &d, err, sizeof err), 0);
  assert_non_null(d);
  assert_int_equal(d->magic, TFX_DESC_MAGIC);
  assert_int_equal(d->abi_version, TFX_ABI_VERSION);
  assert_string_equal(d->name, "tiny_llama");
  assert_int_equal(d->input_kind, TFX_INPUT_TOKENS);
  assert_int_equal(d->input_width, 1);
  assert_int_equal(d->output_width, 37);
  assert_int_equal(d->vocab, 37);
  assert_int_equal(d->max_seq, 24);
  assert_int_equal(d->has_kv_cache, 1);
  assert_int_equal(d->arena_bytes, (uint64_t)t->g->arena_bytes);
  assert_true(d->arena_bytes > 0);
  assert_int_equal(d->kv_bytes, (uint64_t)t->g->kv_bytes);
  assert_int_equal(d->kv_bytes, 2 * 2 * 24 * 2 * 8 * 4); /* 2 layers, K and V, [max_seq 24, G 2 x hd 8] floats */
  assert_int_equal(d->weights_bytes, (uint64_t)t->g->weights_bytes);
  assert_null(d->weights);
  assert_int_equal(d->bos_id, -1); /* no tokens { } */
  assert_int_equal(d->eos_id, -1);
  assert_int_equal(d->pad_id, -1);
  assert_null(d->tokenizer);
  assert_int_equal(d->tokenizer_bytes, 0);
  assert_int_equal(d->n_inputs, 0); /* one input: no table (ABI 6) */
  assert_null(d->inputs);
  /* the output (the classifier) comes after the last attention: the
   * model has a last-row entry; its rows meet only in causal attention: a
   * batch entry (docs/batching.md) */
  assert_int_equal(d->n_entries, 4);
  assert_int_equal(d->threads, 0); /* no schedule: automatic */
  static const char *names[4] = {"forward", "decode", "forward_last", "batch"};
  static const int32_t maxt[4] = {24, 1, 24, 24};
  static const int32_t flags[4] = {0, 0, TFX_ENTRY_LAST_ROW, TFX_ENTRY_BATCH};
  for (int e = 0; e < 4; e++) {
    const tfx_entry_desc *en = &d->entries[e];
    assert_string_equal(en->name, names[e]);
    assert_non_null(en->fn);
    assert_int_equal(en->min_tokens, 1);
    assert_int_equal(en->max_tokens, maxt[e]);
    assert_int_equal(en->n_args, 8);
    assert_int_equal(en->flags, flags[e]);
    for (int a = 0; a < 8; a++) assert_int_equal(en->arg_kinds[a], e == 3 && a == 2 ? TFX_ARG_ROWS : TFX_ARG_INPUT + a);
    /* a KV block: 2 layers, K and V, [16 positions, G 2 x hd 8] floats */
    assert_int_equal(en->kv_block_bytes, e == 3 ? 2 * 2 * TFX_KV_BLOCK_TOKENS * 2 * 8 * 4 : 0);
  }
  assert_true(d->entries[0].fn != d->entries[1].fn);
  assert_true(d->entries[0].fn != d->entries[2].fn);
  tfx_backend_jit_free(jm);
  tfx_tg_free(t);

  /* an f32-input model without a cache */
  t = tfx_tg_new("enc", 9, 5);
  int x = tfx_tg_input_f32(t, 12);
  t->g->output = linear(t, x, 5, 12, "w", 1.0f);
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  assert_int_equal(tfx_backend_jit(t->g, &o, &jm, &d, err, sizeof err), 0);
  assert_int_equal(d->input_kind, TFX_INPUT_F32);
  assert_int_equal(d->input_width, 12);
  assert_int_equal(d->output_width, 5);
  assert_int_equal(d->vocab, 0);
  assert_int_equal(d->max_seq, 9);
  assert_int_equal(d->has_kv_cache, 0);
  assert_int_equal(d->kv_bytes, 0);
  assert_int_equal(d->weights_bytes, 5 * 12 * 4);
  assert_int_equal(d->entries[0].max_tokens, 9);
  tfx_backend_jit_free(jm);
  tfx_tg_free(t);
}

/* ---- AOT ---- */

static void test_aot_shared_library(void **state) {
  (void)state;
  tfx_tg *t = tiny_llama("tiny_aot");
  char err[512];
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  char *dir = tfx_test_tmpdir();
  assert_non_null(dir);
  char obj[512], so[512];
  snprintf(obj, sizeof obj, "%s/model.o", dir);
  snprintf(so, sizeof so, "%s/model.so", dir);
  tfx_target_options o = {.opt_level = 2};
  if (tfx_backend_write_object(t->g, t->blob, t->size, &o, obj, err, sizeof err)) fail_msg("write_object: %s", err);
  if (tfx_backend_link_shared(obj, so, err, sizeof err)) fail_msg("link_shared: %s", err);

  /* the descriptor, its alias and the runtime API are exported; the blob is not */
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!h) fail_msg("dlopen: %s", dlerror());
  const tfx_model_desc *d = dlsym(h, TFX_DESC_SYMBOL);
  assert_non_null(d);
  assert_ptr_equal(d, dlsym(h, "tiny_aot_descriptor"));
  assert_non_null(dlsym(h, "tfx_session_create"));
  assert_non_null(dlsym(h, "tfx_model_descriptor")); /* the runtime function, not shadowed */
  assert_true(dlsym(h, "tfx_model_descriptor") != (void *)d);
  assert_null(dlsym(h, "tiny_aot_weights_blob")); /* hidden: never interposed across models */
  assert_string_equal(d->name, "tiny_aot");
  assert_non_null(d->weights); /* the embedded blob */
  assert_int_equal(d->weights_bytes, (uint64_t)t->size);
  assert_memory_equal(d->weights, t->blob, t->size);
  /* the .so's descriptor and blob through the runtime linked into this test */
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(d, NULL, NULL, NULL, &m), TFX_OK);
  compare_runs(t, m, k_decoder_calls, N_DECODER_CALLS, 1.0f, "AOT tiny decoder (dlsym)");
  tfx_model_close(m);
  dlclose(h);

  m = NULL;
  char oerr[512] = "";
  int rc = tfx_model_open_ex(so, &m, oerr, sizeof oerr);
  if (rc != TFX_OK)
    fail_msg("tfx_model_open: %s (%s); the runtime must look the descriptor up as TFX_DESC_SYMBOL (" TFX_DESC_SYMBOL
             ")",
             tfx_error_message(rc), oerr);
  assert_string_equal(tfx_model_descriptor(m)->name, "tiny_aot");
  compare_runs(t, m, k_decoder_calls, N_DECODER_CALLS, 1.0f, "AOT tiny decoder");
  tfx_model_close(m);

  unlink(obj);
  unlink(so);
  tfx_test_rmdir(dir);
  free(dir);
  tfx_tg_free(t);
}

/* ---- independence of JIT modules ---- */

static void test_two_jit_models(void **state) {
  (void)state;
  char err[256];
  tfx_tg *a = tiny_llama("model_a");
  tfx_tg *b = attention_graph(8, 4, 8, TFX_MASK_CAUSAL, 1, 32, 24, 0.5f);
  assert_int_equal(tfx_pass_plan_memory(a->g, err, sizeof err), 0);
  assert_int_equal(tfx_pass_plan_memory(b->g, err, sizeof err), 0);
  /* many create/free cycles must not leak state between modules */
  for (int i = 0; i < 6; i++) {
    tfx_model *m = tfx_tg_jit_model(i % 2 ? a : b, i % 4);
    assert_non_null(m);
    tfx_model_close(m);
  }
  tfx_model *ma = tfx_tg_jit_model(a, 2), *mb = tfx_tg_jit_model(b, 2);
  assert_non_null(ma);
  assert_non_null(mb);
  assert_string_equal(tfx_model_descriptor(ma)->name, "model_a");
  assert_string_equal(tfx_model_descriptor(mb)->name, "attn");
  compare_runs(a, ma, k_decoder_calls, N_DECODER_CALLS, 1.0f, "model a");
  static const int calls[] = {3, 1, 1};
  compare_runs(b, mb, calls, 3, 2.0f, "model b");
  compare_runs(a, ma, k_decoder_calls, 3, 1.0f, "model a again");
  tfx_model_close(ma);
  tfx_model_close(mb);
  tfx_tg_free(a);
  tfx_tg_free(b);
}

/* ---- precision of the inline transcendental functions ---- */

static double ref_unary(tfx_op op, int gelu_tanh, double v) {
  if (op == TFX_OP_SILU) return v / (1.0 + exp(-v));
  if (op == TFX_OP_SOFTMAX) return 1.0 / (1.0 + exp(-v)); /* softmax of (v, 0), first column */
  /* the forms without cancellation for negative v: 0.5(1 + tanh u) = 1/(1 + e^-2u), (1 + erf z) = erfc(-z) */
  if (gelu_tanh) return v / (1.0 + exp(-2.0 * 0.79788456080286535588 * (v + 0.044715 * v * v * v)));
  return 0.5 * v * erfc(-v / sqrt(2.0));
}

/* Per element relative error against double-precision references on a dense
 * grid: silu and the softmax of (v, 0) (both exp-based) within 1e-6 for
 * v in [-80, 80]; GELU erf form within 2e-6 on [-12, 12] and tanh form on
 * [-4, 12], where the result is above 1e-30 in magnitude. */
static void check_precision(tfx_op op, int gelu_tanh, double lo, double hi, double rel_tol, const char *what) {
  const int rows = 512, cols = op == TFX_OP_SOFTMAX ? 2 : 32;
  tfx_tg *t = tfx_tg_new("prec", rows, 99);
  int x = tfx_tg_input_f32(t, cols);
  tfx_node n = tfx_node_proto(op, 1, (int[]){x});
  n.gelu_tanh = gelu_tanh;
  t->g->output = tfx_tg_add(t, &n);
  char err[256];
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  tfx_model *m = tfx_tg_jit_model(t, 3);
  assert_non_null(m);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  float *in = calloc((size_t)rows * cols, sizeof(float)), *out = calloc((size_t)rows * cols, sizeof(float));
  assert_true(in && out);
  int per_row = op == TFX_OP_SOFTMAX ? 1 : cols, count = rows * per_row;
  for (int i = 0; i < count; i++) {
    float v = (float)(lo + (hi - lo) * i / (count - 1));
    if (op == TFX_OP_SOFTMAX)
      in[i * 2] = v, in[i * 2 + 1] = 0.0f;
    else
      in[i] = v;
  }
  assert_int_equal(tfx_forward_f32(s, in, rows, out), TFX_OK);
  double worst = 0.0;
  float worst_v = 0;
  for (int i = 0; i < count; i++) {
    int at = op == TFX_OP_SOFTMAX ? i * 2 : i;
    double r = ref_unary(op, gelu_tanh, in[at]);
    if (fabs(r) < 1e-30) continue;
    double e = fabs(out[at] - r) / fabs(r);
    if (e > worst) worst = e, worst_v = in[at];
  }
  print_message("%s: max relative error %.3g at x = %g\n", what, worst, worst_v);
  if (!(worst <= rel_tol)) fail_msg("%s: relative error %g at x = %g (allowed %g)", what, worst, worst_v, rel_tol);
  free(in);
  free(out);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_tg_free(t);
}

static void test_transcendental_precision(void **state) {
  (void)state;
  check_precision(TFX_OP_SILU, 0, -80.0, 80.0, 1e-6, "silu");
  check_precision(TFX_OP_SOFTMAX, 0, -80.0, 80.0, 1e-6, "softmax(v, 0)");
  check_precision(TFX_OP_GELU, 0, -12.0, 12.0, 2e-6, "gelu erf");
  /* below -4 the f32 rounding of u (|2u| > 10) alone exceeds 1e-6 relative */
  check_precision(TFX_OP_GELU, 1, -4.0, 12.0, 2e-6, "gelu tanh");
}

/* ---- other vector widths: AVX2 (8 floats, FMA) and baseline x86-64 (4, no FMA) ---- */

static void check_cpu(tfx_tg *t, const char *cpu, const int *ns, int n_calls, float in_scale, const char *what) {
  char label[128];
  tfx_model *m = tfx_tg_jit_model_cpu(t, 2, cpu);
  if (!m) fail_msg("%s on %s: JIT failed", what, cpu);
  snprintf(label, sizeof label, "%s on %s", what, cpu);
  compare_runs(t, m, ns, n_calls, in_scale, label);
  tfx_model_close(m);
}

static void test_other_vector_widths(void **state) {
  (void)state;
  static const char *cpus[2] = {"haswell", "x86-64"};
  char err[256];
  tfx_tg *dec = tiny_llama("tiny_llama");
  assert_int_equal(tfx_pass_plan_memory(dec->g, err, sizeof err), 0);
  tfx_tg *mm = tfx_tg_new("mm", 16, 5);
  int x = tfx_tg_input_f32(mm, 13);
  int y = tfx_tg_op2(mm, TFX_OP_MATMUL, x, tfx_tg_param2(mm, "b", 13, 11, 0.5f));
  tfx_node ln = tfx_node_proto(
      TFX_OP_LAYERNORM, 3, (int[]){y, tfx_tg_param1(mm, "g", 11, 0.5f, 1.0f), tfx_tg_param1(mm, "b2", 11, 0.5f, 0)});
  ln.eps = 1e-5;
  tfx_node ge = tfx_node_proto(TFX_OP_GELU, 1, (int[]){tfx_tg_add(mm, &ln)});
  mm->g->output = tfx_tg_op1(mm, TFX_OP_SOFTMAX, tfx_tg_add(mm, &ge));
  assert_true(mm->g->output >= 0);
  assert_int_equal(tfx_pass_plan_memory(mm->g, err, sizeof err), 0);
  tfx_tg *att = attention_graph(6, 2, 12, TFX_MASK_CAUSAL, 1, 32, 24, 0.5f);
  assert_int_equal(tfx_pass_plan_memory(att->g, err, sizeof err), 0);
  static const int att_calls[] = {7, 1, 1, 5};
  /* the kernels really use the width of each target */
  static const char *want[2] = {"<8 x float>", "<4 x float>"};
  for (int i = 0; i < 2; i++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tfx_target_options o = {.opt_level = 0, .cpu = cpus[i]};
    assert_int_equal(tfx_backend_emit_text(mm->g, &o, TFX_EMIT_LLVM_IR, f, err, sizeof err), 0);
    fclose(f);
    assert_non_null(strstr(buf, want[i]));
    assert_null(strstr(buf, "<16 x float>"));
    if (i == 1) assert_null(strstr(buf, "@llvm.fma.")); /* no FMA on baseline x86-64: fmuladd */
    free(buf);
  }
  for (int i = 0; i < 2; i++) {
    check_cpu(dec, cpus[i], k_decoder_calls, N_DECODER_CALLS, 1.0f, "tiny decoder");
    check_cpu(mm, cpus[i], k_stateless_calls, N_STATELESS, 2.0f, "matmul/layernorm/gelu/softmax");
    check_cpu(att, cpus[i], att_calls, 4, 2.0f, "GQA attention + rope");
  }
  tfx_tg_free(dec);
  tfx_tg_free(mm);
  tfx_tg_free(att);
}

/* ---- errors ---- */

static void test_errors(void **state) {
  (void)state;
  char err[512];
  tfx_target_options o = {.opt_level = 2};
  tfx_jit_module *jm = NULL;
  const tfx_model_desc *d = NULL;
  assert_int_equal(tfx_backend_jit(NULL, &o, &jm, &d, err, sizeof err), -1);

  tfx_tg *t = tfx_tg_new("err", 8, 3);
  int x = tfx_tg_input_f32(t, 12);
  t->g->output = tfx_tg_op1(t, TFX_OP_RELU, linear(t, x, 7, 12, "w", 1.0f));
  /* not planned */
  err[0] = 0;
  assert_int_equal(tfx_backend_jit(t->g, &o, &jm, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "plan"));
  assert_null(jm);
  assert_int_equal(tfx_pass_plan_memory(t->g, err, sizeof err), 0);
  /* bad opt level */
  tfx_target_options bad = {.opt_level = 7};
  assert_int_equal(tfx_backend_jit(t->g, &bad, &jm, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "level"));
  /* unbound parameter */
  int64_t saved = t->g->nodes[1].weight_offset;
  t->g->nodes[1].weight_offset = 1 << 20;
  assert_int_equal(tfx_backend_jit(t->g, &o, &jm, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "weights"));
  t->g->nodes[1].weight_offset = saved;
  /* malformed graphs: an operand that is not an earlier node, a wrong type */
  int saved_in = t->g->nodes[2].inputs[0];
  t->g->nodes[2].inputs[0] = 5;
  assert_int_equal(tfx_backend_jit(t->g, &o, &jm, &d, err, sizeof err), -1);
  assert_non_null(strstr(err, "earlier"));
  t->g->nodes[2].inputs[0] = saved_in;
  t->g->nodes[3].type.dims[1] = 8;
  assert_int_equal(tfx_backend_jit(t->g, &o, &jm, &d, err, sizeof err), -1);
  t->g->nodes[3].type.dims[1] = 7;
  /* missing weights for AOT, unwritable paths, missing objects */
  assert_int_equal(tfx_backend_write_object(t->g, NULL, 0, &o, "/tmp/never.o", err, sizeof err), -1);
  assert_int_equal(tfx_backend_write_object(t->g, t->blob, t->size, &o, "/nonexistent-dir/x/model.o", err, sizeof err),
                   -1);
  assert_true(strlen(err) > 0);
  assert_int_equal(tfx_backend_link_shared("/nonexistent-dir/model.o", "/tmp/never.so", err, sizeof err), -1);
  /* emitted text */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  assert_int_equal(tfx_backend_emit_text(t->g, &o, TFX_EMIT_LLVM_IR, f, err, sizeof err), 0);
  fclose(f);
  assert_non_null(strstr(buf, "@" TFX_DESC_SYMBOL " = "));
  assert_non_null(strstr(buf, "@err_descriptor"));
  assert_non_null(strstr(buf, " x float>")); /* explicit vector code */
  free(buf);
  f = open_memstream(&buf, &len);
  assert_int_equal(tfx_backend_emit_text(t->g, &o, TFX_EMIT_ASM, f, err, sizeof err), 0);
  fclose(f);
  assert_non_null(strstr(buf, TFX_DESC_SYMBOL ":"));
  free(buf);
  tfx_tg_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_embedding),
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_linear_bias),
      cmocka_unit_test(test_matmul),
      cmocka_unit_test(test_binary_same_shape),
      cmocka_unit_test(test_binary_broadcast),
      cmocka_unit_test(test_rmsnorm),
      cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_activations),
      cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_rope),
      cmocka_unit_test(test_attention_unmasked),
      cmocka_unit_test(test_attention_causal),
      cmocka_unit_test(test_attention_long_context),
      cmocka_unit_test(test_tiny_decoder),
      cmocka_unit_test(test_small_model_decode),
      cmocka_unit_test(test_descriptor),
      cmocka_unit_test(test_aot_shared_library),
      cmocka_unit_test(test_two_jit_models),
      cmocka_unit_test(test_transcendental_precision),
      cmocka_unit_test(test_other_vector_widths),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
