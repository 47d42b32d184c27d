/* tests/test_value_slices.c — columns of values and values side by side
 * (issue #14): the language's x[:, a:b] (COL_SLICE) and concat(a, b, ...)
 * (CONCAT_COLS).
 * - the frontend: what each spelling lowers to (the bounds, defaults and
 *   constant expressions; x[:, :] is x itself), and every error (bounds,
 *   rank, dtype, row slices, one-column indexing, non-constant bounds,
 *   concat's leading dims and arity, .T / .view on values);
 * - the interpreter against values computed here by index arithmetic, and
 *   the IR's inference and verifier refusing bad ranges;
 * - the kernels: JIT at -O0 and -O3 against the interpreter (unaligned
 *   offsets, widths below and above a vector, 8 operands, a GPT-2 style
 *   fused c_attn whose q, k, v slices feed a causal attention) through a
 *   prefill, decode steps and chunks;
 * - a GPT-2 style model written in the language (a fused c_attn, column
 *   slices into a grouped-query `attend`, a concat of parts of two values
 *   into a linear): built at -O0 and -O3, the interpreter on both graphs,
 *   the JIT at both levels, the last-row entry and the AOT shared library,
 *   all against the interpreter on the -O0 graph, through a prefill,
 *   decode steps and chunks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../driver/compile.h"
#include "../passes/passes.h"
#include "support/jit_harness.h"
#include "support/testutil.h"
#include "tfx/tfx.h"

/* ---- the frontend ---- */

/* Builds src (path "v.tfx") with random weights; the diagnostics into *msgs
 * (malloc'd). 0 when it built. */
static int build_text(const char *src, int opt, tfx_build *b, char **msgs) {
  FILE *diag = tmpfile();
  assert_non_null(diag);
  tfx_build_options bo = {.weights = "random:5", .opt_level = opt, .diag = diag, .verify_passes = 1};
  memset(b, 0, sizeof *b);
  int rc = tfx_build_source("v.tfx", src, &bo, b);
  long n = ftell(diag);
  char *text = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
  rewind(diag);
  if (n > 0 && fread(text, 1, (size_t)n, diag) != (size_t)n) text[0] = 0;
  fclose(diag);
  if (msgs)
    *msgs = text;
  else
    free(text);
  return rc;
}

static void expect_error(const char *src, const char *msg) {
  tfx_build b;
  char *msgs = NULL;
  int rc = build_text(src, 0, &b, &msgs);
  if (rc == 0 || !strstr(msgs, msg)) fail_msg("expected '%s', got rc %d:\n%s\nfor:\n%s", msg, rc, msgs, src);
  free(msgs);
  tfx_build_free(&b);
}

#define PRELUDE "model m\nconst max_seq = 16, d = 64\nparam w : f32[8, 40]\nparam src : f32[4, 8]\nparam g : f32[64]\n"

/* forward(x : f32[T, d]) -> f32[T, 8] { return linear(EXPR, w) } (line 7) */
#define FWD(expr) PRELUDE "forward(x : f32[T, d]) -> f32[T, 8] {\n  y = x\n  return linear(" expr ", w)\n}\n"

static const tfx_node *find_op(const tfx_graph *g, tfx_op op, int nth) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == op && nth-- == 0) return &g->nodes[i];
  return NULL;
}

static void test_frontend_lowering(void **state) {
  (void)state;
  static const struct {
    const char *expr;
    int lo, hi;
  } cases[] = {
      {"x[:, 3:43]", 3, 43},
      {"x[:, 24:]", 24, 64},
      {"x[:, :40]", 0, 40},
      {"x[:, d - 40:d]", 24, 64},
      {"x[:, 2 * 4:(d / 2) + 16]", 8, 48},
      {"(x * 2)[:, 1:41]", 1, 41},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[1024];
    snprintf(src, sizeof src, FWD("%s"), cases[i].expr);
    tfx_build b;
    char *msgs = NULL;
    if (build_text(src, 0, &b, &msgs)) fail_msg("%s: %s", cases[i].expr, msgs);
    free(msgs);
    const tfx_node *n = find_op(b.graph, TFX_OP_COL_SLICE, 0);
    assert_non_null(n);
    assert_int_equal(n->col_lo, cases[i].lo);
    assert_int_equal(n->col_hi, cases[i].hi);
    assert_int_equal(n->type.dims[0], TFX_DIM_T);
    assert_int_equal(n->type.dims[1], cases[i].hi - cases[i].lo);
    assert_null(find_op(b.graph, TFX_OP_COL_SLICE, 1));
    tfx_build_free(&b);
  }
  /* all the columns: x itself, no node */
  tfx_build b;
  char *msgs = NULL;
  if (build_text(PRELUDE "forward(x : f32[T, d]) -> f32[T, d] {\n  return x[:, :] + x[:, 0:d]\n}\n", 0, &b, &msgs))
    fail_msg("%s", msgs);
  free(msgs);
  assert_null(find_op(b.graph, TFX_OP_COL_SLICE, 0));
  const tfx_node *add = find_op(b.graph, TFX_OP_ADD, 0);
  assert_non_null(add);
  assert_int_equal(add->inputs[0], b.graph->input);
  assert_int_equal(add->inputs[1], b.graph->input);
  tfx_build_free(&b);
  /* a slice of a slice: one COL_SLICE of x (the first is dead) */
  if (build_text(FWD("x[:, 10:60][:, 5:45]"), 3, &b, &msgs)) fail_msg("%s", msgs);
  free(msgs);
  const tfx_node *s2 = find_op(b.graph, TFX_OP_COL_SLICE, 0);
  assert_non_null(s2);
  assert_null(find_op(b.graph, TFX_OP_COL_SLICE, 1));
  assert_int_equal(s2->inputs[0], b.graph->input);
  assert_int_equal(s2->col_lo, 15);
  assert_int_equal(s2->col_hi, 55);
  tfx_build_free(&b);
  expect_error(FWD("x[:, 10:60][:, 5:45][:, 30:41]"), "columns 30:41 are not a range of the value's f32[T, 40]");
  /* concat of slices and values, in a block: the operands in order */
  if (build_text(PRELUDE "block f(a : f32[T, d]) -> f32[T, 8] {\n"
                         "  return linear(concat(a[:, 0:4], rmsnorm(a, g)[:, 60:], a[:, 10:42]), w)\n}\n"
                         "forward(x : f32[T, d]) -> f32[T, 8] {\n  return f(x)\n}\n",
                 0, &b, &msgs))
    fail_msg("%s", msgs);
  free(msgs);
  const tfx_node *c = find_op(b.graph, TFX_OP_CONCAT_COLS, 0);
  assert_non_null(c);
  assert_int_equal(c->n_inputs, 3);
  assert_int_equal(c->type.dims[1], 40);
  static const int lo[] = {0, 60, 10}, hi[] = {4, 64, 42};
  for (int i = 0; i < 3; i++) {
    const tfx_node *s = &b.graph->nodes[c->inputs[i]];
    assert_int_equal(s->op, TFX_OP_COL_SLICE);
    assert_int_equal(s->col_lo, lo[i]);
    assert_int_equal(s->col_hi, hi[i]);
  }
  assert_int_equal(b.graph->nodes[b.graph->nodes[c->inputs[1]].inputs[0]].op, TFX_OP_RMSNORM);
  tfx_build_free(&b);
}

static void test_frontend_errors(void **state) {
  (void)state;
  /* bounds against the shape */
  expect_error(FWD("x[:, 30:70]"), "v.tfx:8:22: error: columns 30:70 are not a range of the value's f32[T, 64] "
                                   "(0 <= a < b <= 64)");
  expect_error(FWD("x[:, 40:40]"), "v.tfx:8:22: error: columns 40:40 are not a range of the value's f32[T, 64]");
  expect_error(FWD("x[:, 50:10]"), "error: columns 50:10 are not a range");
  expect_error(FWD("x[:, 70:]"), "error: columns 70:64 are not a range of the value's f32[T, 64]");
  expect_error(FWD("x[:, -2:38]"), "v.tfx:8:22: error: the slice's start must be >= 0, got -2");
  expect_error(FWD("x[:, 0:2.5]"), "v.tfx:8:24: error: the slice's end must be an integer, got 2.5");
  expect_error(FWD("x[:, 0:y]"), "v.tfx:8:24: error: the slice's end must be a constant expression");
  /* the axes */
  expect_error(FWD("x[0:4, 0:40]"), "v.tfx:8:19: error: slicing the rows of a value (the T axis) is not supported: "
                                    "values stream through the model by rows");
  expect_error(FWD("x[2, 0:40]"), "v.tfx:8:19: error: slicing the rows of a value (the T axis) is not supported");
  expect_error(FWD("x[0:40]"), "v.tfx:8:18: error: a value is sliced by columns as x[:, a:b] (all the rows, then a "
                               "range of columns); got 1 axis");
  expect_error(FWD("x[:, :, 0:40]"), "got 3 axes");
  expect_error(FWD("x[:, 3]"), "v.tfx:8:22: error: x[:, i] (one column, dropping the axis) is not supported; "
                               "x[:, i:i+1] keeps it as f32[T, 1]");
  /* what is sliced */
  expect_error(PRELUDE "param e : f32[10, 40]\nforward(t : i32[T]) -> f32[T, 8] {\n"
                       "  return linear(embedding(e, t[:, 0:1]), w)\n}\n",
               "v.tfx:8:31: error: x[:, a:b] takes columns of a value f32[M, N]; this one is i32[T]");
  /* concat */
  expect_error(FWD("concat(x[:, 0:32], src)"),
               "v.tfx:8:17: error: concat: operand 1 is f32[4, 8]; every operand must be f32 with the leading "
               "dimensions of operand 0 (f32[T, 32])");
  expect_error(FWD("concat(x[:, 0:40])"), "v.tfx:8:17: error: missing argument 'b' of concat(a, b, [c]");
  expect_error(FWD("concat(x, x, x, x, x, x, x, x, x)"),
               "error: too many arguments: concat takes 8 positional arguments");
  /* transposes and reshapes of values, members */
  expect_error(FWD("x.T"), "v.tfx:8:19: error: transposing a value (.T) is not supported: values stream through the "
                           "model by rows");
  expect_error(FWD("x.view(40, 64)"), "v.tfx:8:19: error: reshaping a value (.view) is not supported");
  expect_error(FWD("x.shape"), "v.tfx:8:19: error: unknown '.shape' of a value");
  /* a slice is not a constant */
  expect_error(PRELUDE "forward(x : f32[T, d]) -> f32[T, d] {\n  return rmsnorm(x, g, eps = x[:, 0:1])\n}\n",
               "v.tfx:7:31: error: expected a constant expression, got a slice of a tensor");
}

/* ---- the IR: the interpreter, inference and the verifier ---- */

static int col_slice(tfx_tg *t, int x, int lo, int hi) {
  tfx_node n = tfx_node_proto(TFX_OP_COL_SLICE, 1, &x);
  n.col_lo = lo, n.col_hi = hi;
  return tfx_tg_add(t, &n);
}

static int concat(tfx_tg *t, int n, const int *in) {
  tfx_node p = tfx_node_proto(TFX_OP_CONCAT_COLS, n, in);
  return tfx_tg_add(t, &p);
}

static void test_interp(void **state) {
  (void)state;
  tfx_tg *t = tfx_tg_new("cols", 16, 3);
  int x = tfx_tg_input_f32(t, 10);
  int a = col_slice(t, x, 3, 7), b = col_slice(t, x, 9, 10);
  int y = concat(t, 3, (int[]){b, x, a}); /* [x9 | x0..x9 | x3..x6]: 15 columns */
  assert_true(y >= 0);
  t->g->output = y;
  assert_int_equal(t->g->nodes[y].type.dims[1], 15);
  char err[256] = "";
  if (tfx_verify(t->g, 0, err, sizeof err)) fail_msg("%s", err);
  enum { N = 5 };
  float in[N * 10], out[N * 15];
  for (int i = 0; i < N * 10; i++) in[i] = (float)i * 0.5f - 3;
  tfx_interp *it = tfx_interp_new(t->g, t->blob);
  assert_non_null(it);
  if (tfx_interp_forward(it, in, N, out, err, sizeof err)) fail_msg("%s", err);
  for (int r = 0; r < N; r++)
    for (int j = 0; j < 15; j++) {
      float want = j == 0 ? in[r * 10 + 9] : j <= 10 ? in[r * 10 + j - 1] : in[r * 10 + 3 + j - 11];
      if (out[r * 15 + j] != want) fail_msg("row %d column %d: %g, expected %g", r, j, out[r * 15 + j], want);
    }
  tfx_interp_free(it);
  /* inference refuses ranges outside the columns, and mismatched rows */
  tfx_node bad = tfx_node_proto(TFX_OP_COL_SLICE, 1, &x);
  bad.col_lo = 4, bad.col_hi = 11;
  assert_true(tfx_graph_add(t->g, &bad, err, sizeof err) < 0);
  assert_non_null(strstr(err, "col_slice: columns 4:11 are not a range of f32[T, 10]"));
  int p = tfx_tg_param2(t, "p", 3, 4, 1.0f);
  tfx_node cc = tfx_node_proto(TFX_OP_CONCAT_COLS, 2, (int[]){x, p});
  assert_true(tfx_graph_add(t->g, &cc, err, sizeof err) < 0);
  assert_non_null(strstr(err, "concat: operand 1 is f32[3, 4]"));
  /* the verifier refuses an empty range */
  t->g->nodes[a].col_hi = 3;
  assert_int_not_equal(tfx_verify(t->g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "col_slice"));
  tfx_tg_free(t);
}

/* ---- the kernels: JIT at -O0 and -O3 against the interpreter ---- */

static const tfx_tg_run_opts k_opts = {.in_scale = 1.0f};
static const int k_calls[] = {9, 1, 1, 3, 20, 1};

/* x f32[T, 37]; slices at unaligned offsets (one column, under a vector,
 * over several vectors), a concat of 8 operands, then a linear */
static void test_kernels(void **state) {
  (void)state;
  tfx_tg *t = tfx_tg_new("cols", 64, 21);
  int x = tfx_tg_input_f32(t, 37);
  int s[8] = {col_slice(t, x, 0, 1),
              col_slice(t, x, 5, 8),
              col_slice(t, x, 3, 36),
              col_slice(t, x, 36, 37),
              col_slice(t, x, 1, 18),
              col_slice(t, x, 17, 37),
              x,
              col_slice(t, x, 9, 26)};
  int c = concat(t, 8, s);
  assert_true(c >= 0);
  int w = tfx_tg_param2(t, "w", 19, t->g->nodes[c].type.dims[1], 0.5f);
  int y = tfx_tg_op2(t, TFX_OP_LINEAR, c, w);
  t->g->output = concat(t, 2, (int[]){y, col_slice(t, c, 11, 120)});
  assert_true(t->g->output >= 0);
  tfx_tg_check_levels(t, k_calls, 6, &k_opts, "slices and an 8-operand concat");
  tfx_tg_free(t);
}

/* GPT-2's fused c_attn: qkv = linear(x, c_attn, b), q, k, v its column
 * ranges, a causal attention (grouped-query), its output concatenated with
 * a part of x into the output projection: decode steps and chunks read the
 * KV cache the slices filled */
static void test_fused_qkv_attention(void **state) {
  (void)state;
  static const int shapes[][3] = {{4, 2, 6}, {2, 2, 16}, {3, 1, 5}};
  for (int i = 0; i < 3; i++) {
    int H = shapes[i][0], G = shapes[i][1], d = shapes[i][2];
    const int64_t D = 20;
    tfx_tg *t = tfx_tg_new("gpt2_qkv", 64, 30 + (uint64_t)i);
    int x = tfx_tg_input_f32(t, D);
    int64_t Q = (int64_t)H * d, KV = (int64_t)G * d;
    int qkv = tfx_tg_op3(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "c_attn", Q + 2 * KV, D, 0.5f),
                         tfx_tg_param1(t, "c_attn_b", Q + 2 * KV, 0.2f, 0));
    tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3,
                                (int[]){col_slice(t, qkv, 0, (int)Q), col_slice(t, qkv, (int)Q, (int)(Q + KV)),
                                        col_slice(t, qkv, (int)(Q + KV), (int)(Q + 2 * KV))});
    a.heads = H, a.kv_heads = G, a.head_dim = d, a.mask = TFX_MASK_CAUSAL;
    int o = tfx_tg_add(t, &a);
    int cat = concat(t, 2, (int[]){o, col_slice(t, x, 3, 10)});
    int y = tfx_tg_op2(t, TFX_OP_LINEAR, cat, tfx_tg_param2(t, "c_proj", D, Q + 7, 0.5f));
    t->g->output = tfx_tg_op2(t, TFX_OP_ADD, x, y);
    assert_true(t->g->output >= 0);
    char what[64];
    snprintf(what, sizeof what, "fused qkv H%d G%d d%d", H, G, d);
    tfx_tg_check_levels(t, k_calls, 6, &k_opts, what);
    tfx_tg_free(t);
  }
}

/* ---- fuse_qkv: a linear split by col_slices becomes planar ---- */

/* y = linear(x f32[T, 12], w f32[20, 12]) read by col_slices of the ranges
 * given ({lo, hi} pairs, -1 ends), their sum the output (through a concat
 * when the widths differ); runs fuse_qkv and returns the segments of the
 * fused_linear (0: none), the widths into segs */
static int fused_segments(const int (*ranges)[2], int64_t *segs) {
  tfx_tg *t = tfx_tg_new("split", 16, 9);
  int x = tfx_tg_input_f32(t, 12);
  int y = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "w", 20, 12, 0.5f));
  int s[8], n = 0;
  for (; ranges[n][0] >= 0; n++) s[n] = col_slice(t, y, ranges[n][0], ranges[n][1]);
  t->g->output = concat(t, n, s);
  assert_true(t->g->output >= 0);
  char err[256] = "";
  tfx_pass_ctx c = {.g = t->g, .weight_transforms = 1, .err = err, .errlen = sizeof err};
  if (tfx_pass_fuse_qkv(&c)) fail_msg("fuse_qkv: %s", err);
  if (tfx_verify(t->g, 0, err, sizeof err)) fail_msg("verify: %s", err);
  int segs_n = 0;
  const tfx_node *f = find_op(t->g, TFX_OP_FUSED_LINEAR, 0);
  if (f) {
    segs_n = f->fx.n_segs;
    for (int i = 0; i < segs_n; i++) segs[i] = f->fx.segs[i];
    /* every col_slice of it became a view */
    for (int i = 0; i < t->g->n_nodes; i++)
      if (t->g->nodes[i].op == TFX_OP_COL_SLICE) assert_int_not_equal(t->g->nodes[i].inputs[0], f->id);
  }
  tfx_tg_free(t);
  return segs_n;
}

static void test_fuse_sliced(void **state) {
  (void)state;
  int64_t s[TFX_MAX_SEGS];
  /* q, k, v in any order, one read twice */
  assert_int_equal(fused_segments((const int[][2]){{12, 16}, {0, 12}, {16, 20}, {0, 12}, {-1, -1}}, s), 3);
  assert_true(s[0] == 12 && s[1] == 4 && s[2] == 4);
  /* columns nobody reads are a segment of their own */
  assert_int_equal(fused_segments((const int[][2]){{3, 10}, {14, 20}, {-1, -1}}, s), 4);
  assert_true(s[0] == 3 && s[1] == 7 && s[2] == 4 && s[3] == 6);
  /* overlapping ranges, a single range of all the columns but one, too many segments: left alone */
  assert_int_equal(fused_segments((const int[][2]){{0, 12}, {8, 20}, {-1, -1}}, s), 0);
  assert_int_equal(fused_segments((const int[][2]){{0, 19}, {-1, -1}}, s), 2); /* [19 | 1 unread] */
  assert_int_equal(fused_segments((const int[][2]){{0, 2}, {4, 6}, {8, 10}, {12, 14}, {-1, -1}}, s), 0);
}

/* examples/gpt2/gpt2.tfx (separate wq, wk, wv) and tests/torch/gpt2_qkv.tfx
 * (one c_attn, q, k, v its slices) give the same -O3 graph: as many nodes
 * of every op, the same arena, KV and weight bytes */
static void test_gpt2_same_graph(void **state) {
  (void)state;
  static const char *const files[2] = {TFX_SOURCE_DIR "/examples/gpt2/gpt2.tfx",
                                       TFX_SOURCE_DIR "/tests/torch/gpt2_qkv.tfx"};
  tfx_build b[2];
  for (int i = 0; i < 2; i++) {
    char *src = tfx_test_read_file(files[i], NULL), *msgs = NULL;
    assert_non_null(src);
    if (build_text(src, 3, &b[i], &msgs)) fail_msg("%s: %s", files[i], msgs);
    free(msgs);
    free(src);
  }
  const tfx_graph *g0 = b[0].graph, *g1 = b[1].graph;
  int count[2][TFX_OP_COUNT] = {{0}};
  for (int i = 0; i < g0->n_nodes; i++) count[0][g0->nodes[i].op]++;
  for (int i = 0; i < g1->n_nodes; i++) count[1][g1->nodes[i].op]++;
  for (int o = 0; o < TFX_OP_COUNT; o++)
    if (count[0][o] != count[1][o]) fail_msg("%s: %d nodes vs %d", tfx_op_name((tfx_op)o), count[0][o], count[1][o]);
  assert_int_equal(count[1][TFX_OP_SLICE], 6); /* q, k, v views of 2 layers */
  assert_null(find_op(g1, TFX_OP_COL_SLICE, 0));
  assert_int_equal(g0->arena_bytes, g1->arena_bytes);
  assert_int_equal(g0->kv_bytes, g1->kv_bytes);
  assert_int_equal(b[0].weights.size, b[1].weights.size);
  tfx_build_free(&b[0]);
  tfx_build_free(&b[1]);
}

/* ---- a model in the language, through the whole pipeline ---- */

static const char *const k_model =
    "model gpt2_fused\n"
    "const dim = 24, heads = 4, kv_heads = 2, hd = 6, vocab = 40, max_seq = 48, hidden = 40\n"
    "param wte : f32[vocab, dim]\n"
    "param wpe : f32[max_seq, dim]\n"
    "param lnf_g : f32[dim]\n"
    "param lnf_b : f32[dim]\n"
    "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"
    "  param ln1_g : f32[dim]\n"
    "  param ln1_b : f32[dim]\n"
    "  param c_attn : f32[dim + 2 * kv_heads * hd, dim]\n"
    "  param c_attn_b : f32[dim + 2 * kv_heads * hd]\n"
    "  param c_proj : f32[dim, dim]\n"
    "  param ln2_g : f32[dim]\n"
    "  param ln2_b : f32[dim]\n"
    "  param c_fc : f32[hidden, dim]\n"
    "  param c_fc2 : f32[dim, hidden + dim]\n"
    "  h = layernorm(x, ln1_g, ln1_b)\n"
    "  qkv = linear(h, c_attn, c_attn_b)\n"
    "  q = qkv[:, :dim]\n"
    "  k = qkv[:, dim:dim + kv_heads * hd]\n"
    "  v = qkv[:, dim + kv_heads * hd:]\n"
    "  y = x + linear(attend(q, k, v, heads = heads, kv_heads = kv_heads, mask = causal), c_proj)\n"
    "  m = layernorm(y, ln2_g, ln2_b)\n"
    "  u = gelu(linear(m, c_fc))\n"
    "  return y + linear(concat(u[:, :hidden / 2], m, u[:, hidden / 2:]), c_fc2)\n"
    "}\n"
    "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
    "  x = embedding(wte, tokens) + positions(wpe, tokens)\n"
    "  x = repeat(2) layer(x)\n"
    "  return linear(layernorm(x, lnf_g, lnf_b), wte)\n"
    "}\n";

enum { VOCAB = 40, N_CALLS = 5 };
static const int k_rows[N_CALLS] = {11, 1, 1, 4, 2}; /* a prefill, decode steps, chunks */

/* The calls' outputs (every row, or each call's last row) on the
 * interpreter (m NULL) or a model. */
static float *run_all(const tfx_build *b, tfx_model *m, const int32_t *tok, int last_only) {
  int total = 0;
  for (int k = 0; k < N_CALLS; k++) total += k_rows[k];
  float *out = calloc((size_t)total * VOCAB, sizeof *out);
  char err[256] = "";
  tfx_interp *it = m ? NULL : tfx_interp_new(b->graph, b->weights.data);
  tfx_session *s = NULL;
  if (m) assert_int_equal(tfx_session_create(m, &(tfx_session_options){.threads = 2}, &s), TFX_OK);
  for (int k = 0, row = 0; k < N_CALLS; row += k_rows[k++]) {
    float *y = out + (size_t)(last_only ? row + k_rows[k] - 1 : row) * VOCAB;
    int rc = m ? tfx_forward_ex(s, tok + row, k_rows[k], y, last_only)
               : tfx_interp_forward(it, tok + row, k_rows[k], y, err, sizeof err);
    if (rc) fail_msg("call %d: %s", k, m ? tfx_session_last_error(s) : err);
  }
  tfx_session_free(s);
  tfx_interp_free(it);
  return out;
}

/* max |got - ref| <= 2e-4 * (1 + max |ref|) over the rows compared (with
 * last_only, each call's last row) */
static void check(const float *ref, const float *got, int last_only, const char *what) {
  double worst = 0, scale = 0;
  int n = 0;
  for (int k = 0, row = 0; k < N_CALLS; row += k_rows[k++])
    for (int r = last_only ? k_rows[k] - 1 : 0; r < k_rows[k]; r++)
      for (int j = 0; j < VOCAB; j++, n++) {
        size_t i = (size_t)(row + r) * VOCAB + (size_t)j;
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= worst)) worst = d;
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
      }
  print_message("%s: %d values, max |diff| %.3g (scale %.3g)\n", what, n, worst, scale);
  if (!(worst <= 2e-4 * (1 + scale))) fail_msg("%s: max |diff| %g", what, worst);
}

static void test_model(void **state) {
  (void)state;
  int32_t tok[64];
  for (int i = 0; i < 64; i++) tok[i] = (int32_t)((i * 17 + 5) % VOCAB);
  tfx_build b0, b3;
  char *msgs = NULL;
  if (build_text(k_model, 0, &b0, &msgs)) fail_msg("-O0: %s", msgs);
  free(msgs);
  if (build_text(k_model, 3, &b3, &msgs)) fail_msg("-O3: %s", msgs);
  free(msgs);
  /* -O3: each layer's q, k, v slices of c_attn are views of a planar
   * fused_linear (fuse_qkv), the FFN's two slices stay copies */
  int planar = 0;
  for (int i = 0; i < b3.graph->n_nodes; i++) {
    const tfx_node *f = &b3.graph->nodes[i];
    if (f->op != TFX_OP_FUSED_LINEAR || f->fx.n_segs != 3) continue;
    planar++;
    assert_int_equal(f->fx.segs[0], 24);
    assert_int_equal(f->fx.segs[1], 12);
    assert_int_equal(f->fx.segs[2], 12);
  }
  assert_int_equal(planar, 2);
  assert_non_null(find_op(b3.graph, TFX_OP_SLICE, 5));
  assert_null(find_op(b3.graph, TFX_OP_SLICE, 6));
  assert_non_null(find_op(b3.graph, TFX_OP_COL_SLICE, 3));
  assert_null(find_op(b3.graph, TFX_OP_COL_SLICE, 4));
  assert_non_null(find_op(b3.graph, TFX_OP_CONCAT_COLS, 1));
  float *ref = run_all(&b0, NULL, tok, 0);
  float *got = run_all(&b3, NULL, tok, 0);
  check(ref, got, 0, "interpreter on the -O3 graph");
  free(got);
  /* the AOT shared library of the -O3 graph (before the JIT, which takes the blob) */
  char *dir = tfx_test_tmpdir(), obj[4096], so[4096], err[1024] = "";
  assert_non_null(dir);
  snprintf(obj, sizeof obj, "%s/m.o", dir);
  snprintf(so, sizeof so, "%s/m.so", dir);
  tfx_target_options t3 = {.opt_level = tfx_test_llvm_level(3)};
  tfx_model *m = NULL;
  if (tfx_backend_write_object(b3.graph, b3.weights.data, b3.weights.size, &t3, obj, err, sizeof err) ||
      tfx_backend_link_shared(obj, so, err, sizeof err) || tfx_model_open_ex(so, &m, err, sizeof err) != TFX_OK)
    fail_msg("aot: %s", err);
  got = run_all(NULL, m, tok, 0);
  check(ref, got, 0, "AOT .so -O3");
  free(got);
  tfx_model_close(m);
  tfx_test_rmdir(dir);
  free(dir);
  for (int k = 0; k < 2; k++) {
    tfx_target_options to = {.opt_level = k ? tfx_test_llvm_level(3) : 0};
    m = NULL;
    if (tfx_build_jit(k ? &b3 : &b0, &to, &m, err, sizeof err) != TFX_OK) fail_msg("jit: %s", err);
    got = run_all(NULL, m, tok, 0);
    check(ref, got, 0, k ? "JIT -O3" : "JIT -O0");
    free(got);
    got = run_all(NULL, m, tok, 1);
    check(ref, got, 1, k ? "JIT -O3, last rows only" : "JIT -O0, last rows only");
    free(got);
    tfx_model_close(m);
  }
  free(ref);
  tfx_build_free(&b0);
  tfx_build_free(&b3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frontend_lowering),
      cmocka_unit_test(test_frontend_errors),
      cmocka_unit_test(test_interp),
      cmocka_unit_test(test_kernels),
      cmocka_unit_test(test_fused_qkv_attention),
      cmocka_unit_test(test_fuse_sliced),
      cmocka_unit_test(test_gpt2_same_graph),
      cmocka_unit_test(test_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
