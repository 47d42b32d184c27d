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
 *  - per-call global tokens (examples/longformer/longformer_call.tfx,
 *    `longformer(window, global = gmask)` with gmask an i32[T] forward input):
 *    in test_vs_transformers, LongformerModel called with a different
 *    global_attention_mask each time (none, one, several, one in the padding,
 *    many) against the same calls of one session / interpreter, -O0 and -O3,
 *    with the global projections and without them (the oracle's model whose
 *    global projections are the regular ones = the pattern alone);
 *    test_runtime_interp_vs_jit: graphs of ATTENTION (+ GLOBAL_ATTENTION) with
 *    a global token input against the interpreter on calls of 1..40 rows, a
 *    different mask each call.
 *  - test_ir_checks: the IR's refusals of a malformed node.
 *    (and of per-call global tokens on a causal / dilated node, a wrong mask type)
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
#include "../passes/passes.h"
#include "support/frontend_capture.h"
#include "support/graphs.h"
#include "support/jit_harness.h"
#include "support/testutil.h"

#define TOL 1e-4

static char *workdir;

static int setup(void **state) {
  (void)state;
  workdir = tfx_test_hf_oracle_dir(TFX_HF_PYTHON, "longformer.py");
  return workdir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_test_hf_oracle_dir_free(workdir);
  return 0;
}

static void *read_case(const char *name, size_t *size) {
  void *p = tfx_test_hf_oracle_read(workdir, name, size);
  if (!p) fail_msg("cannot read %s/%s", workdir, name);
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

#define N_CALLS 5 /* tests/hf/longformer.py's CALLS */

/* longformer_call.tfx (with_proj 0: its global_q/k/v removed, the pattern alone) against LongformerModel's calls
 * K = 0..N_CALLS-1, each with its own global_attention_mask, in that order and then call 2 again, on one session
 * (and the interpreter), -O0 and -O3; the kept rows within TOL. */
static void per_call(const int32_t *ids, const int32_t *mask, int T, int dim, int pad, int with_proj) {
  char tfx[1024], weights[1100], err[512], what[96], name[64];
  snprintf(tfx, sizeof tfx, "%s/examples/longformer/longformer_call.tfx", TFX_SOURCE_DIR);
  snprintf(weights, sizeof weights, "%s/model.safetensors", workdir);
  char *src = tfx_test_read_file(tfx, NULL);
  assert_non_null(src);
  if (!with_proj) { /* drop the global projections: the three keywords, their params and their tensors */
    char *a = strstr(src, "global_q = "), *b = a ? strstr(a, "global_v = linear(x, wvg, bvg),") : NULL;
    assert_non_null(b);
    memset(a, ' ', (size_t)(b - a) + strlen("global_v = linear(x, wvg, bvg),"));
    static const char *const gp[6] = {"wqg", "bqg", "wkg", "bkg", "wvg", "bvg"};
    for (int i = 0; i < 6; i++) {
      char pat[64];
      snprintf(pat, sizeof pat, "\"layers.{i}.%s\"", gp[i]); /* the tensor: ignored ("") */
      char *at = strstr(src, pat);
      assert_non_null(at);
      memset(at + 2, ' ', strlen(pat) - 2), at[1] = '"';
      snprintf(pat, sizeof pat, "param %s :", gp[i]); /* the param: a comment */
      at = strstr(src, pat);
      assert_non_null(at);
      at[0] = '#';
    }
  }
  size_t kept = (size_t)(T - pad) * dim, total = (size_t)T * dim;
  int32_t *gm[N_CALLS];
  float *want[N_CALLS], *got = calloc(total, sizeof *got);
  for (int c = 0; c < N_CALLS; c++) {
    size_t n = 0;
    snprintf(name, sizeof name, "gmask_%d.bin", c);
    gm[c] = read_case(name, &n);
    assert_int_equal(n, (size_t)T * 4);
    snprintf(name, sizeof name, with_proj ? "expected_call_%d.bin" : "expected_call_shared_%d.bin", c);
    want[c] = read_case(name, &n);
    assert_int_equal(n, total * 4);
  }
  double sc0, dd = diff_of(want[2], want[0], kept, &sc0); /* the calls' masks matter */
  assert_true(dd > 100 * TOL * sc0);
  static const int order[N_CALLS + 1] = {0, 1, 2, 3, 4, 2};
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    memset(&b, 0, sizeof b);
    tfx_build_options o = {.weights = weights, .opt_level = opt};
    if (tfx_build_source(tfx, src, &o, &b)) fail_msg("longformer_call.tfx does not build at -O%d", opt);
    int n_global = 0;
    for (int i = 0; i < b.graph->n_nodes; i++) n_global += b.graph->nodes[i].op == TFX_OP_GLOBAL_ATTENTION;
    assert_int_equal(n_global, with_proj ? 2 : 0);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    tfx_model *m = NULL;
    if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    for (int k = 0; k < N_CALLS + 1; k++) {
      int c = order[k];
      const void *in[3] = {ids, mask, gm[c]};
      tfx_interp_reset(it);
      if (tfx_interp_forward_inputs(it, in, 3, T, got, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
      snprintf(what, sizeof what, "call %d%s -O%d interpreter", c, with_proj ? "" : " (no proj.)", opt);
      compare(what, got, want[c], NULL, kept);
      const tfx_input jin[3] = {{"tokens", ids, 0}, {"mask", mask, 0}, {"gmask", gm[c], 0}};
      memset(got, 0, total * sizeof *got);
      assert_int_equal(tfx_forward_inputs(s, jin, 3, T, got, 0), TFX_OK);
      snprintf(what, sizeof what, "call %d%s -O%d JIT", c, with_proj ? "" : " (no proj.)", opt);
      compare(what, got, want[c], NULL, kept);
    }
    tfx_session_free(s);
    tfx_model_close(m);
    tfx_interp_free(it);
    tfx_build_free(&b);
  }
  for (int c = 0; c < N_CALLS; c++) free(gm[c]), free(want[c]);
  free(got);
  free(src);
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
  /* per-call global tokens: with the global projections and without them */
  per_call(ids, mask, T, dim, pad, 1);
  per_call(ids, mask, T, dim, pad, 0);
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

/* ---- per-call global tokens: the interpreter against the JIT ---- */

/* call c's global token mask over n rows: none, the first row, the last row, about a fifth at random, every row,
 * rows 3 and 20 (past small calls) */
static void gmask_of(int c, int n, uint64_t *rng, int32_t *gm) {
  for (int i = 0; i < n; i++) {
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    int r = (int)((*rng >> 33) % 5);
    switch (c % 6) {
    case 0: gm[i] = 0; break;
    case 1: gm[i] = i == 0; break;
    case 2: gm[i] = i == n - 1; break;
    case 3: gm[i] = r == 0 ? 7 : 0; break; /* any nonzero value is global */
    case 4: gm[i] = 1; break;
    default: gm[i] = i == 3 || i == 20;
    }
  }
}

/* x f32[T, 24], gmask i32[T] [, key mask i32[T]]: ATTENTION(q, k, v) with longformer(window, global = gmask)
 * [then GLOBAL_ATTENTION with qg, kg, vg], the interpreter against the JIT at -O0 / -O3 on calls of 1..40 rows,
 * each with another global token mask (and key mask: every 4th row dropped, the last kept). */
static void check_runtime_case(int H, int G, int d, int window, int with_proj, int with_kmask, int sched, uint64_t seed,
                               const char *what) {
  const int64_t dim = 24;
  tfx_tg *t = tfx_tg_new("lfc", 48, seed);
  int x = tfx_tg_input_f32(t, dim);
  int gmi = tfx_graph_add_input(t->g, "gmask", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T}));
  int kmi = with_kmask ? tfx_graph_add_input(t->g, "kmask", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T})) : -1;
  assert_true(gmi >= 0);
  int q = linear(t, x, (int64_t)H * d, dim, "wq"), k = linear(t, x, (int64_t)G * d, dim, "wk");
  int v = linear(t, x, (int64_t)G * d, dim, "wv");
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_LONGFORMER, sp.window = window, sp.dilation = 1, sp.global_input = 1;
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  a.heads = H, a.kv_heads = G, a.head_dim = d, a.mask = TFX_MASK_NONE, a.sparse = sp, a.attn_schedule = sched;
  if (kmi >= 0) a.inputs[a.n_inputs++] = kmi, a.key_mask = 1;
  a.inputs[a.n_inputs++] = gmi;
  int o = tfx_tg_add(t, &a);
  assert_true(o >= 0);
  if (with_proj) {
    int qg = linear(t, x, (int64_t)H * d, dim, "wqg"), kg = linear(t, x, (int64_t)G * d, dim, "wkg");
    int vg = linear(t, x, (int64_t)G * d, dim, "wvg");
    tfx_node gn = tfx_node_proto(TFX_OP_GLOBAL_ATTENTION, 4, (int[]){o, qg, kg, vg});
    gn.heads = H, gn.kv_heads = G, gn.head_dim = d, gn.sparse = sp;
    if (kmi >= 0) gn.inputs[gn.n_inputs++] = kmi, gn.key_mask = 1;
    gn.inputs[gn.n_inputs++] = gmi;
    o = tfx_tg_add(t, &gn);
    assert_true(o >= 0);
  }
  t->g->output = with_proj == 2 ? tfx_tg_op2(t, TFX_OP_ADD, o, linear(t, x, (int64_t)H * d, dim, "wr")) : o;
  char err[256];
  if (tfx_pass_plan_memory(t->g, err, sizeof err)) fail_msg("%s: plan: %s", what, err);
  if (tfx_verify(t->g, 0, err, sizeof err)) fail_msg("%s: verify: %s", what, err);
  static const int ns[] = {1, 5, 17, 40, 33, 10, 16, 23, 40, 7};
  const int n_calls = (int)(sizeof ns / sizeof ns[0]), cols = H * d;
  float *xin = malloc(40 * dim * sizeof *xin), *ref = malloc(40 * (size_t)cols * sizeof *ref);
  float *got = malloc(40 * (size_t)cols * sizeof *got);
  int32_t gm[40], km[40];
  for (int lv = 0; lv <= 3; lv += 3) {
    char label[192];
    snprintf(label, sizeof label, "%s -O%d", what, lv);
    tfx_model *m = tfx_tg_jit_model(t, lv);
    if (!m) fail_msg("%s: JIT failed", label);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    tfx_interp *it = tfx_interp_new(t->g, t->blob);
    uint64_t rng = seed;
    for (int c = 0; c < n_calls; c++) {
      int n = ns[c];
      for (int i = 0; i < n * dim; i++) xin[i] = 2.0f * tfx_tg_rand(t);
      gmask_of(c, n, &rng, gm);
      for (int i = 0; i < n; i++) km[i] = i % 4 != 3 || i == n - 1;
      const void *in[3] = {xin, gm, km};
      tfx_interp_reset(it);
      if (tfx_interp_forward_inputs(it, in, with_kmask ? 3 : 2, n, ref, err, sizeof err))
        fail_msg("%s: interpreter: %s", label, err);
      const tfx_input jin[3] = {{"x", xin, 0}, {"gmask", gm, 0}, {"kmask", km, 0}};
      assert_int_equal(tfx_forward_inputs(s, jin, with_kmask ? 3 : 2, n, got, 0), TFX_OK);
      tfx_tg_check_close(ref, got, (size_t)n * cols, (size_t)cols, label, c);
    }
    tfx_interp_free(it);
    tfx_session_free(s);
    tfx_model_close(m);
  }
  free(xin), free(ref), free(got);
  tfx_tg_free(t);
}

static void test_runtime_interp_vs_jit(void **state) {
  (void)state;
  check_runtime_case(4, 2, 8, 4, 0, 0, TFX_ATTN_SCHED_UNSET, 51, "per-call globals, pattern only");
  check_runtime_case(4, 2, 8, 4, 1, 1, TFX_ATTN_SCHED_UNSET, 52, "per-call globals, projections, key mask");
  check_runtime_case(2, 2, 12, 3, 2, 0, TFX_ATTN_SCHED_ROW, 53, "per-call globals, projections then add, d = 12");
  check_runtime_case(4, 1, 6, 1, 1, 1, TFX_ATTN_SCHED_UNSET, 54, "per-call globals, window 1, MQA, d = 6");
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

#define HDR2                                                                                                           \
  "model m\n"                                                                                                          \
  "const dim = 8, max_seq = 16\n"                                                                                      \
  "param emb : f32[10, dim]\n"                                                                                         \
  "param w : f32[dim, dim]\n"                                                                                          \
  "forward(t : i32[T], g : i32[T], f : f32[T]) -> f32[T, dim] {\n"                                                     \
  "  x = embedding(emb, t)\n"

/* per-call global tokens: the frontend's located errors; the IR's refusals */
static void test_runtime_errors(void **state) {
  (void)state;
  tfx_test_expect_compile_error(
      HDR2 "  return attention(x, w, w, w, w, heads = 2, mask = causal, sparse = longformer(3, global = g))\n}\n",
      ":7:93:", "attention: per-call global tokens (global = g) need mask = none (Longformer is bidirectional");
  tfx_test_expect_compile_error(
      HDR2 "  return attention(x, w, w, w, w, heads = 2, mask = none, sparse = longformer(3, global = x))\n}\n",
      ":7:91:", "attention: longformer's global = x is f32[T, 8], expected i32[T]");
  tfx_test_expect_compile_error(
      HDR2 "  return attend(x, x, x, heads = 2, mask = none, sparse = longformer(3, global = f))\n}\n",
      ":7:82:", "attend: longformer's global = f is f32[T], expected i32[T]");
  tfx_test_expect_compile_error(
      HDR2 "  return attend(x, x, x, heads = 2, mask = none, sparse = longformer(3, global = g, dilation = 2))\n}\n",
      ":7:82:", "attend: per-call global tokens (global = g) need dilation = 1");
  tfx_test_expect_compile_error(
      HDR2 "  return attend(x, x, x, heads = 2, mask = none, sparse = longformer(3, global = nothere))\n}\n",
      ":7:82:", "undefined name 'nothere'");
  /* the IR: a causal node, an f32 mask, a compile-time global with it, GLOBAL_ATTENTION without the operand */
  tfx_tg *t = tfx_tg_new("chk", 16, 5);
  int x = tfx_tg_input_f32(t, 8);
  int g = tfx_graph_add_input(t->g, "g", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T}));
  int f = tfx_graph_add_input(t->g, "f", tfx_type_make(TFX_DT_F32, 1, (int64_t[]){TFX_DIM_T}));
  tfx_sparse sp = {0};
  sp.kind = TFX_SPARSE_LONGFORMER, sp.window = 3, sp.dilation = 1, sp.global_input = 1;
  struct {
    tfx_op op;
    int mask, gin, n_global;
    const char *msg;
  } cases[] = {
      {TFX_OP_ATTENTION, TFX_MASK_CAUSAL, g, 0, "per-call global tokens need mask = none"},
      {TFX_OP_ATTENTION, TFX_MASK_NONE, f, 0, "the global token mask is f32[T], expected i32[T]"},
      {TFX_OP_ATTENTION, TFX_MASK_NONE, g, 2, "without compile-time ones"},
      {TFX_OP_GLOBAL_ATTENTION, TFX_MASK_NONE, -1, 0, "4 operands, expected 5 (y, q, k, v, global token mask)"},
  };
  char err[256];
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int gl = cases[c].op == TFX_OP_GLOBAL_ATTENTION;
    tfx_node n = tfx_node_proto(cases[c].op, 4, gl ? (int[]){x, x, x, x} : (int[]){x, x, x, cases[c].gin});
    n.heads = 2, n.kv_heads = 2, n.head_dim = 4, n.mask = cases[c].mask, n.sparse = sp;
    n.sparse.n_global = cases[c].n_global;
    err[0] = 0;
    assert_true(tfx_graph_add(t->g, &n, err, sizeof err) < 0);
    if (!strstr(err, cases[c].msg)) fail_msg("case %zu: '%s' lacks '%s'", c, err, cases[c].msg);
  }
  tfx_node n = tfx_node_proto(TFX_OP_ATTENTION, 4, (int[]){x, x, x, g});
  n.heads = 2, n.kv_heads = 2, n.head_dim = 4, n.sparse = sp;
  assert_true(tfx_graph_add(t->g, &n, err, sizeof err) >= 0);
  tfx_tg_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_global_rows),
      cmocka_unit_test(test_ir_checks),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_interp_vs_jit),
      cmocka_unit_test(test_runtime_interp_vs_jit),
      cmocka_unit_test(test_runtime_errors),
      cmocka_unit_test_setup_teardown(test_vs_transformers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
