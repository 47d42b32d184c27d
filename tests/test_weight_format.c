/* tests/test_weight_format.c — the weight-format seam (issue #10, item 2).
 *
 * A toy weight format, f32_rowscale (TFX_DT_F32_ROWSCALE: each row's values
 * stored divided by a per-row f32 scale, the scales in a plane after the
 * values; ir/dtype.c), exists only through the seam: its entry in the format
 * table (sizes, the interpreter's dequantize-row), its packing (fold_weights
 * moves the values and the scale plane by the format's sizes) and one stream
 * implementation (backend/weight_stream.c). The frontend never makes it: a
 * test builds graphs with the IR builder and gives its params that dtype.
 *
 * Each graph is built twice from the same random numbers: with the toy
 * format (stored value v / s, scale s in [0.25, 4] per row) and as a plain
 * f32 twin holding (v / s) * s. Both run through the pass pipeline (-O0:
 * row-major kernels; -O2: fused linears, packed panels, the packed tied
 * embedding table, the router fused into moe_route, GLU experts) and the JIT
 * (2 threads, prefill and one-row calls), and the toy JIT must match the toy
 * interpreter and the twin's interpreter (tolerance 1e-4 relative). The
 * same graphs with every scale replaced by 1 (what a stream ignoring the
 * scale computes) are checked to differ from the twin by far more, so the
 * comparisons would catch it. Cases: linear + bias, SwiGLU FFN, MoE (router,
 * up with GLU, down), embedding tied to the classifier, matmul with a toy b,
 * MLA with a toy wkv_b (causal: the calls run on from the KV cache).
 *
 * Also: the byte sizes, names and reference decoders of every format
 * (f16, bf16, i8 with row scales, q8_0, q4_0 on hand-made bytes), the
 * printer, the verifier's block rule, --stats' bytes, and the clear errors
 * of the backend (a format without a stream: i8) and the interpreter (one
 * without a decoder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend/backend.h"
#include "../passes/passes.h"
#include "support/graphs.h"
#include "support/weight_tests.h"
#include "tfx/tfx.h"

#define TOL 1e-4

/* ---- weights in the toy format or its f32 twin ---- */

enum { TOY, TWIN, N_FMT };

/* A weight of the given shape: row values scale * U[-1, 1), per-row scales
 * in [0.25, 4). TOY stores v / s and the scale plane; TWIN stores (v / s) * s. */
static int wparam(tfx_tg *t, int fmt, const char *name, int rank, const int64_t *dims, float scale) {
  tfx_type ty = tfx_type_make(fmt == TOY ? TFX_DT_F32_ROWSCALE : TFX_DT_F32, rank, dims);
  int id = tfx_graph_add_param(t->g, name, ty);
  assert_true(id >= 0);
  int64_t K = dims[rank - 1], R = tfx_type_numel(&ty, 1) / K, bytes = tfx_type_bytes(&ty, 1);
  assert_int_equal(bytes, R * K * 4 + (fmt == TOY ? R * 4 : 0));
  size_t off = (t->size + 63) / 64 * 64;
  tfx_wt_reserve(t, off + (size_t)bytes);
  float *vals = (float *)(t->blob + off), *scales = vals + R * K;
  for (int64_t r = 0; r < R; r++) {
    float s = 0.25f + 3.75f * (0.5f + 0.5f * tfx_tg_rand(t));
    for (int64_t k = 0; k < K; k++) {
      float stored = scale * tfx_tg_rand(t) / s;
      vals[r * K + k] = fmt == TOY ? stored : stored * s;
    }
    if (fmt == TOY) scales[r] = s;
  }
  t->g->nodes[id].weight_offset = (int64_t)off;
  t->size = off + (size_t)bytes;
  t->g->weights_bytes = (int64_t)t->size;
  return id;
}

/* The weight maker of the shared case graphs: ctx points to TOY or TWIN. */
static int wparam_of(tfx_tg *t, const void *ctx, const char *name, int rank, const int64_t *dims, float scale) {
  return wparam(t, *(const int *)ctx, name, rank, dims, scale);
}

static tfx_wt_weights weights_of(int fmt) {
  static const int fmts[N_FMT] = {TOY, TWIN};
  return (tfx_wt_weights){wparam_of, &fmts[fmt]};
}

/* ---- the cases (tests/support/weight_tests.c builds their graphs) ---- */

typedef tfx_tg *(*build_fn)(int fmt);

static tfx_tg *build_linear(int fmt) {
  tfx_tg *t = tfx_tg_new("wf_linear", 16, 7);
  tfx_wt_case_linear(t, weights_of(fmt), 70);
  return t;
}

/* pre-norm SwiGLU with a residual: at -O2 a norm prologue, the gate and up
 * weights concatenated into one packed GLU panel pair, a residual epilogue */
static tfx_tg *build_ffn(int fmt) {
  tfx_tg *t = tfx_tg_new("wf_ffn", 16, 11);
  tfx_wt_case_ffn(t, weights_of(fmt), 48, 67);
  return t;
}

/* x -> rmsnorm -> router -> route -> experts (SwiGLU) -> + x */
static tfx_tg *build_moe(int fmt) {
  tfx_tg *t = tfx_tg_new("wf_moe", 16, 13);
  tfx_wt_case_moe(t, weights_of(fmt), 40, 37);
  return t;
}

/* tokens -> embedding(table) -> classifier tied to the table:
 * at -O2 the table is packed for the classifier and the embedding reads
 * single elements of the packed panels */
static tfx_tg *build_embedding(int fmt) {
  tfx_tg *t = tfx_tg_new("wf_embedding", 16, 17);
  tfx_wt_case_embedding(t, weights_of(fmt), 77, 36);
  return t;
}

static tfx_tg *build_matmul(int fmt) {
  tfx_tg *t = tfx_tg_new("wf_matmul", 16, 19);
  tfx_wt_case_matmul(t, weights_of(fmt), 35);
  return t;
}

/* DeepSeek's latent attention (causal: the calls run on from the KV cache):
 * its absorbed projections W_uk, W_uv are the rows of a toy wkv_b */
static tfx_tg *build_mla(int fmt) {
  tfx_tg *t = tfx_tg_new("wf_mla", 32, 23);
  tfx_wt_case_mla(t, weights_of(fmt), 20);
  return t;
}

/* ---- running them ---- */

static void run_passes(tfx_tg *t, int level, const char *what) {
  tfx_pass_options o;
  tfx_pass_options_init(&o, level);
  o.weights = &t->blob;
  o.weights_size = &t->size;
  o.verify_each = 1;
  char err[512];
  if (tfx_run_passes(t->g, &o, err, sizeof err)) fail_msg("%s -O%d: passes: %s", what, level, err);
  t->cap = t->size;
}

/* The blob of the toy graph with every toy param's scales set to 1. */
static uint8_t *unscaled_blob(const tfx_tg *t, int *n_toy) {
  uint8_t *b = malloc(t->size);
  assert_non_null(b);
  memcpy(b, t->blob, t->size);
  *n_toy = 0;
  for (int i = 0; i < t->g->n_nodes; i++) {
    const tfx_node *n = &t->g->nodes[i];
    if (n->op != TFX_OP_PARAM || n->type.dtype != TFX_DT_F32_ROWSCALE) continue;
    (*n_toy)++;
    float *sc = (float *)(b + n->weight_offset + tfx_type_values_bytes(&n->type, 1));
    for (int64_t r = 0; r < tfx_node_rows(n, 1); r++) sc[r] = 1.0f;
  }
  return b;
}

static int count_op(const tfx_graph *g, tfx_op op) {
  int c = 0;
  for (int i = 0; i < g->n_nodes; i++) c += g->nodes[i].op == op;
  return c;
}

static int count_packed_toy(const tfx_graph *g) {
  int c = 0;
  for (int i = 0; i < g->n_nodes; i++)
    c += g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].type.dtype == TFX_DT_F32_ROWSCALE && g->nodes[i].fx.panel > 0;
  return c;
}

/* Builds the case in both formats at -O<level>, checks the toy JIT against
 * the toy interpreter and the twin; returns the -O2 toy graph's count of
 * packed toy params through *packed. */
static void check_case(build_fn build, int level, const char *what, int *packed) {
  tfx_tg *t[N_FMT];
  for (int f = 0; f < N_FMT; f++) {
    t[f] = build(f);
    assert_true(t[f]->g->output >= 0);
    run_passes(t[f], level, what);
  }
  const tfx_graph *g = t[TOY]->g;
  const tfx_node *in = &g->nodes[g->input], *outn = &g->nodes[g->output];
  tfx_wt_plan p = {{7, 1, 4, 16, 3}, 5, in->type.dtype == TFX_DT_I32 ? 1 : tfx_node_cols(in), tfx_node_cols(outn), 0};
  if (in->type.dtype == TFX_DT_I32) {
    p.in_w = 0;
    for (int i = 0; i < g->n_nodes; i++)
      if (g->nodes[i].op == TFX_OP_EMBEDDING) p.vocab = g->nodes[g->nodes[i].inputs[0]].type.dims[0];
  }
  size_t nf = tfx_wt_plan_floats(&p);
  float *jit = calloc(nf, 4), *ref = calloc(nf, 4), *twin = calloc(nf, 4), *ign = calloc(nf, 4);
  assert_true(jit && ref && twin && ign);
  char label[160];
  snprintf(label, sizeof label, "%s -O%d", what, level);
  tfx_wt_run_jit(t[TOY], &p, 2, NULL, jit, label);
  tfx_wt_run_interp(t[TOY], t[TOY]->blob, &p, ref, label);
  tfx_wt_run_interp(t[TWIN], t[TWIN]->blob, &p, twin, label);
  double d_ref = tfx_wt_rel_diff(jit, ref, nf), d_twin = tfx_wt_rel_diff(jit, twin, nf),
         d_it = tfx_wt_rel_diff(ref, twin, nf);
  if (!(d_ref <= TOL)) fail_msg("%s: toy JIT vs toy interpreter: %g (allowed %g)", label, d_ref, TOL);
  if (!(d_twin <= TOL)) fail_msg("%s: toy JIT vs the f32 twin: %g (allowed %g)", label, d_twin, TOL);
  if (!(d_it <= 1e-5)) fail_msg("%s: toy interpreter vs the f32 twin: %g", label, d_it);
  /* what ignoring the scales computes is far off: the checks above see it */
  int n_toy = 0;
  uint8_t *ub = unscaled_blob(t[TOY], &n_toy);
  assert_true(n_toy > 0);
  tfx_wt_run_interp(t[TOY], ub, &p, ign, label);
  double d_ign = tfx_wt_rel_diff(ign, twin, nf);
  if (!(d_ign > 100 * TOL)) fail_msg("%s: scales of 1 give %g from the twin: the case cannot see them", label, d_ign);
  if (packed) *packed = count_packed_toy(g);
  free(ub);
  free(jit);
  free(ref);
  free(twin);
  free(ign);
  for (int f = 0; f < N_FMT; f++) tfx_tg_free(t[f]);
}

static void test_toy_linear(void **state) {
  (void)state;
  int packed = 0;
  check_case(build_linear, 0, "linear", NULL);
  check_case(build_linear, 2, "linear", &packed);
  assert_int_equal(packed, 1); /* the micro-kernel read a packed toy panel */
}

static void test_toy_ffn(void **state) {
  (void)state;
  int packed = 0;
  check_case(build_ffn, 0, "swiglu ffn", NULL);
  check_case(build_ffn, 2, "swiglu ffn", &packed);
  assert_int_equal(packed, 2); /* w1 + w3 concatenated (GLU panels), w2 */
}

static void test_toy_moe(void **state) {
  (void)state;
  check_case(build_moe, 0, "moe", NULL);
  check_case(build_moe, 2, "moe", NULL);
  /* at -O2 the router is read by moe_route itself and w3 by moe_up (GLU) */
  tfx_tg *t = build_moe(TOY);
  run_passes(t, 2, "moe");
  assert_int_equal(count_op(t->g, TFX_OP_LINEAR) + count_op(t->g, TFX_OP_FUSED_LINEAR), 0);
  int glu = 0;
  for (int i = 0; i < t->g->n_nodes; i++) glu |= t->g->nodes[i].op == TFX_OP_MOE_UP && t->g->nodes[i].fx.glu;
  assert_true(glu);
  tfx_tg_free(t);
}

static void test_toy_embedding(void **state) {
  (void)state;
  int packed = 0;
  check_case(build_embedding, 0, "tied embedding", NULL);
  check_case(build_embedding, 2, "tied embedding", &packed);
  assert_int_equal(packed, 1); /* the shared table, packed: the embedding reads its panels */
}

static void test_toy_mla(void **state) {
  (void)state;
  check_case(build_mla, 0, "mla", NULL);
  check_case(build_mla, 2, "mla", NULL);
}

static void test_toy_matmul(void **state) {
  (void)state;
  check_case(build_matmul, 0, "matmul", NULL);
  check_case(build_matmul, 2, "matmul", NULL);
}

/* ---- the format table ---- */

static void test_format_sizes_and_names(void **state) {
  (void)state;
  static const struct {
    tfx_dtype dt;
    const char *name;
    int64_t cols, bytes; /* of a [4, cols] tensor */
  } cases[] = {
      {TFX_DT_F32, "f32", 64, 1024},           {TFX_DT_F16, "f16", 64, 512},
      {TFX_DT_BF16, "bf16", 64, 512},          {TFX_DT_I8, "i8", 64, 256 + 16},
      {TFX_DT_Q8_0, "q8_0", 64, 4 * 2 * 34},   {TFX_DT_Q4_0, "q4_0", 64, 4 * 2 * 18},
      {TFX_DT_Q4_K, "q4_k", 256, 4 * 144},     {TFX_DT_Q6_K, "q6_k", 256, 4 * 210},
      {TFX_DT_Q5_0, "q5_0", 64, 4 * 2 * 22},   {TFX_DT_F32_ROWSCALE, "f32_rowscale", 64, 1024 + 16},
      {TFX_DT_Q3_K, "q3_k", 512, 4 * 2 * 110},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tfx_type ty = tfx_type_make(cases[i].dt, 2, (int64_t[]){4, cases[i].cols});
    assert_string_equal(tfx_dtype_name(cases[i].dt), cases[i].name);
    assert_int_equal(tfx_type_bytes(&ty, 1), cases[i].bytes);
    assert_true(tfx_dtype_weight_ok(cases[i].dt));
  }
  assert_false(tfx_dtype_weight_ok(TFX_DT_I32));
  assert_int_equal(tfx_dtype_info_of(TFX_DT_Q4_K)->block, 256);
  assert_null(tfx_dtype_info_of(TFX_DT_COUNT));

  /* printed, verified, counted by --stats with their real sizes */
  tfx_graph *g = tfx_graph_new("fmt", 8);
  int x = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 64}));
  int w = tfx_graph_add_param(g, "w", tfx_type_make(TFX_DT_Q8_0, 2, (int64_t[]){16, 64}));
  assert_true(w >= 0);
  tfx_node lin = tfx_node_proto(TFX_OP_LINEAR, 2, (int[]){x, w});
  g->output = tfx_graph_add(g, &lin, NULL, 0);
  assert_true(g->output >= 0);
  char err[256];
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  tfx_print_graph(g, f);
  fclose(f);
  assert_non_null(strstr(buf, "q8_0[16, 64]"));
  free(buf);
  tfx_graph_stats st;
  tfx_pass_graph_stats(g, &st);
  /* output row 16 + x row 64 floats, and the weight's 16 * 2 * 34 bytes */
  assert_int_equal(st.bytes_per_token, 16 * 4 + 64 * 4 + 16 * 2 * 34);
  /* a block format's last dimension must be whole blocks */
  g->nodes[w].type.dims[1] = 48;
  g->nodes[x].type.dims[1] = 48;
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), -1);
  assert_non_null(strstr(err, "q8_0 stores blocks of 32 elements"));
  tfx_graph_free(g);
}

static void test_reference_decoders(void **state) {
  (void)state;
  float out[64];
  /* f16 and bf16: 1.5, -2, 0.25 */
  uint16_t h[3] = {tfx_wt_f16(1.5f), tfx_wt_f16(-2.0f), tfx_wt_f16(0.25f)}, bf[3] = {0x3fc0, 0xc000, 0x3e80};
  tfx_node n = tfx_node_proto(TFX_OP_PARAM, 0, NULL);
  n.type = tfx_type_make(TFX_DT_F16, 2, (int64_t[]){1, 3});
  assert_int_equal(tfx_weight_dequant_row(&n, (const uint8_t *)h, 0, out), 0);
  assert_true(out[0] == 1.5f && out[1] == -2.0f && out[2] == 0.25f);
  n.type.dtype = TFX_DT_BF16;
  assert_int_equal(tfx_weight_dequant_row(&n, (const uint8_t *)bf, 0, out), 0);
  assert_true(out[0] == 1.5f && out[1] == -2.0f && out[2] == 0.25f);
  /* i8: two rows of 3, scales 0.5 and 2 after the values */
  uint8_t i8[6 + 8] = {1, 2, (uint8_t)-3, (uint8_t)-128, 127, 0};
  float sc[2] = {0.5f, 2.0f};
  memcpy(i8 + 6, sc, 8);
  n.type = tfx_type_make(TFX_DT_I8, 2, (int64_t[]){2, 3});
  assert_int_equal(tfx_type_bytes(&n.type, 1), 14);
  assert_int_equal(tfx_weight_dequant_row(&n, i8, 1, out), 0);
  assert_true(out[0] == -256.0f && out[1] == 254.0f && out[2] == 0.0f);
  /* q8_0: one block, d = 0.5, q = j - 16 */
  uint8_t q8[34];
  uint16_t d = tfx_wt_f16(0.5f);
  memcpy(q8, &d, 2);
  for (int j = 0; j < 32; j++) q8[2 + j] = (uint8_t)(int8_t)(j - 16);
  n.type = tfx_type_make(TFX_DT_Q8_0, 2, (int64_t[]){1, 32});
  assert_int_equal(tfx_weight_dequant_row(&n, q8, 0, out), 0);
  for (int j = 0; j < 32; j++) assert_true(out[j] == 0.5f * (float)(j - 16));
  /* q4_0: d = 2, byte j = (15 - j) << 4 | j: element j is j - 8, element j + 16 is 7 - j */
  uint8_t q4[18];
  d = tfx_wt_f16(2.0f);
  memcpy(q4, &d, 2);
  for (int j = 0; j < 16; j++) q4[2 + j] = (uint8_t)((15 - j) << 4 | j);
  n.type = tfx_type_make(TFX_DT_Q4_0, 2, (int64_t[]){1, 32});
  assert_int_equal(tfx_weight_dequant_row(&n, q4, 0, out), 0);
  for (int j = 0; j < 16; j++) assert_true(out[j] == 2.0f * (float)(j - 8) && out[j + 16] == 2.0f * (float)(7 - j));
  /* no decoder: an integer type is no weight format */
  n.type = tfx_type_make(TFX_DT_I32, 2, (int64_t[]){1, 32});
  assert_int_equal(tfx_weight_dequant_row(&n, q4, 0, out), -1);
}

/* Formats read through their streams with f32 activations: i8 (w8a8's
 * per-row scales; before issue #13 it had no stream and was refused) and the
 * GGUF formats (tests/test_weight_streams.c) compile, and the interpreter
 * decodes them. */
static void test_unsupported_formats(void **state) {
  (void)state;
  for (int pass = 0; pass < 3; pass++) {
    tfx_dtype dt = pass == 0 ? TFX_DT_I8 : pass == 1 ? TFX_DT_Q4_0 : TFX_DT_Q4_K;
    tfx_tg *t = tfx_tg_new("unsupported", 8, 3);
    t->g->schedule.act_f32 = 1; /* (the dequantizing path for q4_0 / q4_k) */
    int x = tfx_tg_input_f32(t, 256);
    int w = tfx_graph_add_param(t->g, "wq", tfx_type_make(dt, 2, (int64_t[]){8, 256}));
    int64_t bytes = tfx_type_bytes(&t->g->nodes[w].type, 1);
    tfx_wt_reserve(t, (size_t)bytes);
    memset(t->blob, 0, (size_t)bytes);
    t->size = (size_t)bytes;
    t->g->nodes[w].weight_offset = 0;
    t->g->weights_bytes = bytes;
    t->g->output = tfx_tg_op2(t, TFX_OP_LINEAR, x, w);
    assert_true(t->g->output >= 0);
    run_passes(t, 2, "unsupported");
    t->g->schedule.act_f32 = 1; /* (else the int8 linears read these blocks: test_int8_linear) */
    tfx_target_options o = {.opt_level = 2};
    tfx_jit_module *jm = NULL;
    const tfx_model_desc *desc = NULL;
    char err[512] = "";
    int rc = tfx_backend_jit(t->g, &o, &jm, &desc, err, sizeof err);
    if (rc) fail_msg("%s: %s", tfx_dtype_name(dt), err);
    tfx_backend_jit_free(jm);
    tfx_interp *it = tfx_interp_new(t->g, t->blob);
    float xin[256] = {0}, y[8];
    rc = tfx_interp_forward(it, xin, 1, y, err, sizeof err);
    assert_int_equal(rc, 0); /* all have reference decoders: zeros give zeros */
    for (int i = 0; i < 8; i++) assert_true(y[i] == 0.0f);
    tfx_interp_free(it);
    tfx_tg_free(t);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format_sizes_and_names),
      cmocka_unit_test(test_reference_decoders),
      cmocka_unit_test(test_unsupported_formats),
      cmocka_unit_test(test_toy_linear),
      cmocka_unit_test(test_toy_ffn),
      cmocka_unit_test(test_toy_moe),
      cmocka_unit_test(test_toy_embedding),
      cmocka_unit_test(test_toy_matmul),
      cmocka_unit_test(test_toy_mla),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
