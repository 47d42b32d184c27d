/* tests/test_longformer_global.c — Longformer's separate global q/k/v
 * projections (issue #14): `attention(..., sparse = longformer(..),
 * global_q = .., global_k = .., global_v = ..)`, the IR's GLOBAL_ATTENTION
 * after the ATTENTION node (ir/ir.h; the interpreter in ir/interp.c, the
 * kernel in backend/k_attention.c).
 *  - test_vs_transformers: Hugging Face's LongformerModel (transformers
 *    4.44.2, eager, f32; tests/hf/longformer.py: a tiny random config with
 *    every bias and LayerNorm gain randomized, globals at 0 and 9, the last 3
 *    tokens padding, T = 23 not a multiple of the attention window) against
 *    examples/longformer/longformer_global.tfx bound to the checkpoint as
 *    saved: the interpreter and the JIT at -O0 and -O3, every kept row within
 *    1e-4 relative to the output's scale. The oracle also saves the output of
 *    the same model with the global projections replaced by the regular ones,
 *    which the result must NOT match (the projections are used). And the
 *    same call with no global token (`global = 0`) at -O3.
 *  - test_interp_vs_jit: graphs of ATTENTION + GLOBAL_ATTENTION against the
 *    interpreter at -O0/-O3 on calls of 1..40 rows (not multiples of the
 *    tile), globals at the start and in the middle (some beyond a call's
 *    rows), a count with a listed duplicate, zero globals, GQA, a head size
 *    not a multiple of the vector width, the result the graph's output (a
 *    copy) or updated in place; every schedule of the ATTENTION.
 *  - test_ir_checks: the IR's refusals of a malformed node.
 *  - test_errors: the frontend's located errors. */
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
#include "../include/tfx/tfx.h"
#include "support/frontend_capture.h"
#include "support/graphs.h"
#include "support/jit_harness.h"
#include "support/testutil.h"

#define TOL 1e-4

static char *workdir;

static int setup(void **state) {
  (void)state;
  workdir = tfx_test_tmpdir();
  if (!workdir) return -1;
  char script[1024];
  snprintf(script, sizeof script, "%s/tests/hf/longformer.py", TFX_SOURCE_DIR);
  char *argv[] = {TFX_HF_PYTHON, script, workdir, NULL};
  return tfx_test_run_oracle(argv, "scripts/hfenv.sh");
}

static int teardown(void **state) {
  (void)state;
  if (getenv("TFX_TORCH_KEEP"))
    fprintf(stderr, "kept %s\n", workdir);
  else
    tfx_test_rmdir(workdir);
  free(workdir);
  return 0;
}

static void *read_case(const char *name, size_t *size) {
  char path[1100];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  void *p = tfx_test_read_file(path, size);
  if (!p) fail_msg("cannot read %s", path);
  return p;
}

/* max |got - want| over the first n floats, and the output's scale */
static double diff_of(const float *got, const float *want, size_t n, double *scale) {
  *scale = 1;
  for (size_t i = 0; i < n; i++) *scale = fabs(want[i]) > *scale ? fabs(want[i]) : *scale;
  return tfx_test_max_abs_diff(got, want, n);
}

/* got against want within TOL of the scale; and, when shared is given, NOT
 * against the output of the model whose global projections are the regular
 * ones */
static void compare(const char *what, const float *got, const float *want, const float *shared, size_t n) {
  double scale, d = diff_of(got, want, n, &scale), ss = 1, ds = shared ? diff_of(got, shared, n, &ss) : 0;
  print_message("  %-34s max |diff| %.3g (scale %.3g)", what, d, scale);
  print_message(shared ? "; vs shared projections %.3g\n" : "\n", ds);
  if (!(d <= TOL * scale)) fail_msg("%s: max |diff| %g > %g", what, d, TOL * scale);
  if (shared && !(ds > 100 * TOL * ss)) fail_msg("%s: matches the model without global projections (%g)", what, ds);
}

static void test_vs_transformers(void **state) {
  (void)state;
  size_t n_ids = 0, n_mask = 0, n_exp = 0, n_sh = 0;
  int32_t *ids = read_case("ids.bin", &n_ids), *mask = read_case("mask.bin", &n_mask);
  float *want = read_case("expected.bin", &n_exp), *shared = read_case("expected_shared.bin", &n_sh);
  int T = (int)(n_ids / 4), pad = 3, dim = 32;
  assert_int_equal(n_mask, n_ids);
  assert_int_equal(n_exp, (size_t)T * dim * 4);
  assert_int_equal(n_sh, n_exp);
  for (int t = 0; t < T; t++) assert_int_equal(mask[t], t < T - pad);
  size_t kept = (size_t)(T - pad) * dim, total = (size_t)T * dim; /* padded rows: Longformer zeroes their attention */
  float *got = calloc(total, sizeof *got);
  char tfx[1024], weights[1100], err[512], what[64];
  snprintf(tfx, sizeof tfx, "%s/examples/longformer/longformer_global.tfx", TFX_SOURCE_DIR);
  snprintf(weights, sizeof weights, "%s/model.safetensors", workdir);
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    memset(&b, 0, sizeof b);
    tfx_build_options o = {.weights = weights, .opt_level = opt};
    if (tfx_build_source(tfx, NULL, &o, &b)) fail_msg("longformer_global.tfx does not build at -O%d", opt);
    int n_global = 0;
    for (int i = 0; i < b.graph->n_nodes; i++) n_global += b.graph->nodes[i].op == TFX_OP_GLOBAL_ATTENTION;
    assert_int_equal(n_global, 2);               /* one per layer */
    for (int i = 0; i < b.graph->n_nodes; i++) { /* -O3 plans it in the attention's slot (-O0: a copy) */
      const tfx_node *n = &b.graph->nodes[i];
      if (n->op == TFX_OP_GLOBAL_ATTENTION && opt == 3)
        assert_int_equal(n->arena_offset, b.graph->nodes[n->inputs[0]].arena_offset);
    }
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    const void *in[2] = {ids, mask};
    if (tfx_interp_forward_inputs(it, in, 2, T, got, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    snprintf(what, sizeof what, "longformer -O%d interpreter", opt);
    compare(what, got, want, shared, kept);
    tfx_interp_free(it);
    tfx_model *m = NULL;
    if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    const tfx_input jin[2] = {{"tokens", ids, 0}, {"mask", mask, 0}};
    memset(got, 0, total * sizeof *got);
    assert_int_equal(tfx_forward_inputs(s, jin, 2, T, got, 0), TFX_OK);
    snprintf(what, sizeof what, "longformer -O%d JIT", opt);
    compare(what, got, want, shared, kept);
    float last[32]; /* the last-row entry: the same row as the whole call's */
    assert_int_equal(tfx_forward_inputs(s, jin, 2, T, last, 1), TFX_OK);
    assert_true(tfx_test_max_abs_diff(last, got + (size_t)(T - 1) * dim, (size_t)dim) <= 1e-6);
    tfx_session_free(s);
    tfx_model_close(m);
    tfx_build_free(&b);
  }
  /* no global token (Hugging Face without global_attention_mask): the source with global = 0, -O3 */
  size_t n_none = 0;
  float *none = read_case("expected_noglobal.bin", &n_none);
  assert_int_equal(n_none, n_exp);
  char *src = tfx_test_read_file(tfx, NULL);
  assert_non_null(src);
  char *at = strstr(src, "global = tokens(0, 9)");
  assert_non_null(at);
  memcpy(at, "global = 0           ", 21);
  tfx_build b;
  memset(&b, 0, sizeof b);
  tfx_build_options o = {.weights = weights, .opt_level = 3};
  if (tfx_build_source(tfx, src, &o, &b)) fail_msg("longformer_global.tfx with global = 0 does not build");
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  const void *in[2] = {ids, mask};
  if (tfx_interp_forward_inputs(it, in, 2, T, got, err, sizeof err)) fail_msg("global = 0: %s", err);
  compare("no global token -O3 interpreter", got, none, NULL, kept);
  tfx_interp_free(it);
  tfx_model *m = NULL;
  if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("global = 0: %s", err);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  const tfx_input jin[2] = {{"tokens", ids, 0}, {"mask", mask, 0}};
  memset(got, 0, total * sizeof *got);
  assert_int_equal(tfx_forward_inputs(s, jin, 2, T, got, 0), TFX_OK);
  compare("no global token -O3 JIT", got, none, NULL, kept);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_build_free(&b);
  free(src);
  free(none);
  free(got);
  free(ids);
  free(mask);
  free(want);
  free(shared);
}

/* ---- the interpreter against the JIT ---- */

static int linear(tfx_tg *t, int x, int64_t out, int64_t in, const char *name) {
  return tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, name, out, in, 0.5f));
}

/* x f32[T, 24]; ATTENTION(q, k, v) with the pattern, then GLOBAL_ATTENTION
 * with qg, kg, vg (other linears of x); then_add: the result is added to a
 * linear of x (an arena value), else it is the graph's output (the
 * attention's rows copied into the output first). */
static void check_case(int H, int G, int d, const tfx_sparse *sp, int sched, int then_add, uint64_t seed,
                       const char *what) {
  const int64_t dim = 24;
  tfx_tg *t = tfx_tg_new("lfg", 48, seed);
  int x = tfx_tg_input_f32(t, dim);
  int q = linear(t, x, (int64_t)H * d, dim, "wq"), k = linear(t, x, (int64_t)G * d, dim, "wk");
  int v = linear(t, x, (int64_t)G * d, dim, "wv");
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  a.heads = H, a.kv_heads = G, a.head_dim = d, a.mask = TFX_MASK_NONE, a.sparse = *sp, a.attn_schedule = sched;
  int y = tfx_tg_add(t, &a);
  int qg = linear(t, x, (int64_t)H * d, dim, "wqg"), kg = linear(t, x, (int64_t)G * d, dim, "wkg");
  int vg = linear(t, x, (int64_t)G * d, dim, "wvg");
  tfx_node gn = tfx_node_proto(TFX_OP_GLOBAL_ATTENTION, 4, (int[]){y, qg, kg, vg});
  gn.heads = H, gn.kv_heads = G, gn.head_dim = d, gn.sparse = *sp;
  int o = tfx_tg_add(t, &gn);
  assert_true(o >= 0);
  t->g->output = then_add ? tfx_tg_op2(t, TFX_OP_ADD, o, linear(t, x, (int64_t)H * d, dim, "wr")) : o;
  static const int ns[] = {1, 5, 17, 40, 33, 10, 16, 23};
  tfx_tg_check_levels(t, ns, (int)(sizeof ns / sizeof ns[0]), &(tfx_tg_run_opts){.in_scale = 2.0f}, what);
  tfx_tg_free(t);
}

static tfx_sparse lf(int window, int count, int n_list, const int *list) {
  tfx_sparse s = {0};
  s.kind = TFX_SPARSE_LONGFORMER, s.window = window, s.dilation = 1, s.n_global = count;
  s.n_global_list = n_list;
  for (int i = 0; i < n_list; i++) s.global_list[i] = list[i];
  return s;
}

static void test_interp_vs_jit(void **state) {
  (void)state;
  tfx_sparse start_mid = lf(4, 0, 3, (int[]){0, 20, 9}), none = lf(3, 0, 0, NULL);
  tfx_sparse count_list = lf(5, 3, 3, (int[]){17, 1, 35});
  static const int sched[3] = {TFX_ATTN_SCHED_UNSET, TFX_ATTN_SCHED_ROW, TFX_ATTN_SCHED_BLOCK_SPARSE};
  for (int s = 0; s < 3; s++) check_case(4, 2, 8, &start_mid, sched[s], 0, 11 + (uint64_t)s, "globals 0, 9, 20");
  check_case(2, 2, 12, &start_mid, TFX_ATTN_SCHED_UNSET, 1, 21, "globals 0, 9, 20 then add, d = 12");
  check_case(4, 1, 8, &none, TFX_ATTN_SCHED_UNSET, 0, 31, "zero globals");
  check_case(2, 2, 12, &none, TFX_ATTN_SCHED_UNSET, 1, 32, "zero globals then add");
  check_case(4, 4, 6, &count_list, TFX_ATTN_SCHED_UNSET, 0, 41, "global 3 + tokens(17, 1, 35)");
}

/* the global rows of tfx_attn_global_rows: ascending, distinct, below rows */
static void test_global_rows(void **state) {
  (void)state;
  tfx_sparse s = lf(3, 3, 4, (int[]){17, 1, 35, 17});
  int64_t r[8];
  assert_int_equal(tfx_attn_global_rows(&s, 40, r, 8), 5);
  static const int64_t want[5] = {0, 1, 2, 17, 35};
  for (int i = 0; i < 5; i++) assert_int_equal(r[i], want[i]);
  assert_int_equal(tfx_attn_global_rows(&s, 18, r, 8), 4);
  assert_int_equal(tfx_attn_global_rows(&s, 2, r, 8), 2);
  s.kind = TFX_SPARSE_SLIDING;
  assert_int_equal(tfx_attn_global_rows(&s, 40, r, 8), 0);
}

/* The IR's checks of a GLOBAL_ATTENTION node (type inference, as the
 * verifier runs it): each refusal with its message. */
static void test_ir_checks(void **state) {
  (void)state;
  tfx_tg *t = tfx_tg_new("chk", 16, 5);
  int x = tfx_tg_input_f32(t, 8), x4 = linear(t, x, 4, 8, "w4");
  tfx_sparse ok = lf(3, 1, 0, NULL);
  struct {
    int in[4], kv_heads, n_inputs, key_mask;
    tfx_sparse_kind kind;
    const char *msg;
  } cases[] = {
      {{x, x, x, x}, 2, 4, 0, TFX_SPARSE_SLIDING, "its global tokens come from a longformer pattern"},
      {{x, x, x4, x}, 2, 4, 0, TFX_SPARSE_LONGFORMER, "the global k is f32[T, 4], expected f32[T, 8]"},
      {{x, x4, x, x}, 2, 4, 0, TFX_SPARSE_LONGFORMER, "the global q is f32[T, 4], expected f32[T, 8]"},
      {{x, x, x, x}, 3, 4, 0, TFX_SPARSE_LONGFORMER, "must be a positive multiple of kv_heads"},
      {{x, x, x, x}, 2, 4, 1, TFX_SPARSE_LONGFORMER, "4 operands, expected 5 (y, q, k, v, key mask)"},
  };
  char err[256];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    tfx_node n = tfx_node_proto(TFX_OP_GLOBAL_ATTENTION, cases[c].n_inputs, cases[c].in);
    n.heads = 2, n.kv_heads = cases[c].kv_heads, n.head_dim = 4, n.sparse = ok, n.key_mask = cases[c].key_mask;
    n.sparse.kind = cases[c].kind;
    if (n.sparse.kind == TFX_SPARSE_SLIDING) n.sparse.n_global = 0;
    err[0] = 0;
    assert_true(tfx_graph_add(t->g, &n, err, sizeof err) < 0);
    if (!strstr(err, cases[c].msg)) fail_msg("case %zu: '%s' lacks '%s'", c, err, cases[c].msg);
  }
  tfx_node n = tfx_node_proto(TFX_OP_GLOBAL_ATTENTION, 4, (int[]){x, x, x, x});
  n.heads = 2, n.kv_heads = 2, n.head_dim = 4, n.sparse = ok;
  assert_true(tfx_graph_add(t->g, &n, err, sizeof err) >= 0);
  tfx_tg_free(t);
}

/* ---- errors ---- */

#define HDR                                                                                                            \
  "model m\n"                                                                                                          \
  "const dim = 8, max_seq = 16\n"                                                                                      \
  "param emb : f32[10, dim]\n"                                                                                         \
  "param w : f32[dim, dim]\n"                                                                                          \
  "param w4 : f32[4, dim]\n"                                                                                           \
  "forward(t : i32[T]) -> f32[T, dim] {\n"                                                                             \
  "  x = embedding(emb, t)\n"

static void test_errors(void **state) {
  (void)state;
  /* all three or none */
  tfx_test_expect_compile_error(HDR "  return attention(x, w, w, w, w, heads = 2, mask = none,\n"
                                    "    sparse = longformer(3, global = 1), global_q = x, global_k = x)\n}\n",
                                ":8:10:",
                                "attention: Longformer's global projections need all of global_q, "
                                "global_k and global_v (global_v is missing)");
  /* another pattern */
  tfx_test_expect_compile_error(HDR "  return attention(x, w, w, w, w, heads = 2, mask = none, sparse = sliding(3),\n"
                                    "    global_q = x, global_k = x, global_v = x)\n}\n",
                                ":9:16:", "attention: global_q, global_k, global_v need sparse = longformer(...)");
  /* causal */
  tfx_test_expect_compile_error(
      HDR "  return attention(x, w, w, w, w, heads = 2, mask = causal,\n"
          "    sparse = longformer(3, global = 1), global_q = x, global_k = x, global_v = x)\n}\n",
      ":9:52:", "attention: global_q, global_k, global_v need mask = none");
  /* the shapes of the projections */
  tfx_test_expect_compile_error(
      HDR "  return attention(x, w, w, w, w, heads = 2, mask = none,\n"
          "    sparse = longformer(3, global = 1), global_q = x, global_k = linear(x, w4),\n"
          "    global_v = x)\n}\n",
      ":9:66:", "attention: global_k is f32[T, 4], expected f32[T, 8] (2 kv_heads of 4, like k)");
  tfx_test_expect_compile_error(
      HDR "  return attention(x, w, w, w, w, heads = 2, mask = none,\n"
          "    sparse = longformer(3, global = 1), global_q = emb, global_k = x, global_v = x)\n}\n",
      ":9:52:", "attention: global_q is f32[10, 8], expected f32[T, 8] (2 heads of 4, like q)");
  /* attend: the same checks */
  tfx_test_expect_compile_error(HDR
                                "  return attend(x, x, x, heads = 2, mask = none, sparse = longformer(3, global = 1),\n"
                                "    global_q = x, global_k = x, global_v = linear(x, w4))\n}\n",
                                ":9:44:", "attend: global_v is f32[T, 4], expected f32[T, 8]");
  tfx_test_expect_compile_error(HDR "  return attend(x, x, x, heads = 2, mask = none,\n"
                                    "    global_q = x, global_k = x, global_v = x)\n}\n",
                                ":9:16:", "attend: global_q, global_k, global_v need sparse = longformer(...)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_global_rows),
      cmocka_unit_test(test_ir_checks),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_interp_vs_jit),
      cmocka_unit_test_setup_teardown(test_vs_transformers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
