/* tests/test_weight_streams.c — the dequantizing weight streams
 * (backend/weight_stream.c) of every weight format the frontend can make:
 * f16, bf16 (element formats: row loads, packed panel columns, scalars) and
 * the GGUF block formats q8_0, q4_0, q4_k, q6_k, q5_0, q3_k (row-major blocks
 * decoded W elements at a time), in every kernel that reads weights (q3_k,
 * the last added, at -O2 only, and for haswell / x86-64 in the linear only:
 * CI time; its stream's code is the same in every kernel).
 *
 * Each case graph is built with its weights in one format: f16, bf16, q8_0
 * and q4_0 rows are tfx_quantize_row of random f32 rows (the bytes gguf's
 * quantizer gives), q4_k, q6_k, q5_0 and q3_k rows random valid blocks (random
 * quants, high bits, scales and mins; small positive f16 scales). The same graph
 * is built a second time as an f32 twin holding each row's reference
 * decoding (tfx_weight_dequant_row). Both run through the pass pipeline
 * (-O0: row-major kernels; -O2: fused linears with the norm prologue and the
 * GLU / residual epilogues, packed f16 / bf16 panels, the packed tied
 * embedding table, moe_route reading the router, GLU experts) and the JIT
 * (LLVM at the same level, 2 threads, prefill and one-row calls); the JIT of
 * the format must match the interpreter of the format (which decodes the
 * same bytes through the format table), and that interpreter the twin's:
 * 1e-4 relative to the output's largest magnitude (f32 sums in another
 * order; the decoders are exact, so only the summation order differs).
 * Linears with block weights run with f32 activations (schedule.act_f32 =
 * 1: the dequantizing path; the int8 kernels are another path).
 * Cases: linear + bias (K with a tail past the GEMM's K chunks), SwiGLU FFN
 * with a residual, MoE (router, top-2, GLU experts, down), embedding tied to
 * the classifier, matmul with b in the format, MLA with wkv_b in the format.
 * With schedule { streams = 2 }, f32, f16 and bf16 linears with and without
 * the norm prologue, the FFN and the tied classifier check the packed
 * one-row tile's two streams (test_two_streams).
 * The linear, FFN and embedding cases also run for --mcpu haswell (AVX2:
 * 8-wide vectors, two per 16-element group of the block formats), and the
 * linear for x86-64 (SSE2, 4-wide, no F16C: f16 through LLVM's soft
 * conversion). */
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
#define MAXW 1024 /* widest input row of a case */

static const tfx_dtype formats[] = {TFX_DT_F16,  TFX_DT_BF16, TFX_DT_Q8_0, TFX_DT_Q4_0,
                                    TFX_DT_Q4_K, TFX_DT_Q6_K, TFX_DT_Q5_0, TFX_DT_Q3_K};
#define N_FORMATS (sizeof formats / sizeof formats[0])

typedef struct {
  tfx_dtype dt;
  int twin; /* 1: the f32 twin holding the decoded rows */
} variant;

static uint8_t rbyte(tfx_tg *t) { return (uint8_t)((tfx_tg_rand(t) + 1.0f) * 128.0f); }

/* One row of K elements in format dt into dst: quantized random values
 * (scale * U[-1, 1)) or random valid K-quant super-blocks / Q5_0 blocks. */
static void make_row(tfx_tg *t, tfx_dtype dt, int64_t K, float scale, uint8_t *dst) {
  if (dt == TFX_DT_Q5_0) { /* random quants and fifth bits; d * 16 ~ scale */
    for (int64_t b = 0; b < K / 32; b++) {
      uint8_t *blk = dst + b * 22;
      for (int i = 2; i < 22; i++) blk[i] = rbyte(t);
      uint16_t d = tfx_wt_f16(scale * (0.75f + 0.25f * tfx_tg_rand(t)) / 16.0f);
      memcpy(blk, &d, 2);
    }
    return;
  }
  if (dt == TFX_DT_Q4_K || dt == TFX_DT_Q6_K || dt == TFX_DT_Q3_K) {
    int bb = tfx_dtype_info_of(dt)->block_bytes;
    for (int64_t b = 0; b < K / 256; b++) {
      uint8_t *blk = dst + b * bb;
      for (int i = 0; i < bb; i++) blk[i] = rbyte(t);
      float u = 0.75f + 0.25f * tfx_tg_rand(t);
      if (dt == TFX_DT_Q4_K) { /* d * 63 * 15 ~ scale; dmin * 63 ~ scale / 2 */
        uint16_t d = tfx_wt_f16(scale * u / 945.0f), dmin = tfx_wt_f16(scale * u / 126.0f);
        memcpy(blk, &d, 2);
        memcpy(blk + 2, &dmin, 2);
      } else if (dt == TFX_DT_Q3_K) { /* d * 32 * 4 ~ scale */
        uint16_t d = tfx_wt_f16(scale * u / 128.0f);
        memcpy(blk + 108, &d, 2);
      } else { /* d * 128 * 32 ~ scale */
        uint16_t d = tfx_wt_f16(scale * u / 4096.0f);
        memcpy(blk + 208, &d, 2);
      }
    }
    return;
  }
  float x[MAXW];
  assert_true(K <= MAXW);
  for (int64_t k = 0; k < K; k++) x[k] = scale * tfx_tg_rand(t);
  if (dt == TFX_DT_F32) { /* the two-stream cases' f32 weights */
    memcpy(dst, x, (size_t)K * 4);
    return;
  }
  assert_true(tfx_quantize_row(dt, x, K, dst) > 0);
}

/* A weight of the given shape in v's format (or its twin). */
static int wparam(tfx_tg *t, variant v, const char *name, int rank, const int64_t *dims, float scale) {
  tfx_type fty = tfx_type_make(v.dt, rank, dims), ty = fty;
  if (v.twin) ty.dtype = TFX_DT_F32;
  int id = tfx_graph_add_param(t->g, name, ty);
  assert_true(id >= 0);
  int64_t K = dims[rank - 1], R = tfx_type_numel(&ty, 1) / K, bytes = tfx_type_bytes(&ty, 1);
  int64_t fbytes = tfx_type_bytes(&fty, 1), rb = fbytes / R;
  uint8_t *q = malloc((size_t)fbytes);
  assert_non_null(q);
  for (int64_t r = 0; r < R; r++) make_row(t, v.dt, K, scale, q + r * rb);
  size_t off = (t->size + 63) / 64 * 64, end = off + ((size_t)bytes + 63) / 64 * 64; /* f32 params follow, aligned */
  tfx_wt_reserve(t, end);
  memset(t->blob + t->size, 0, end - t->size);
  if (v.twin) {
    tfx_node fn = t->g->nodes[id];
    fn.type = fty;
    for (int64_t r = 0; r < R; r++)
      assert_int_equal(tfx_weight_dequant_row(&fn, q, r, (float *)(t->blob + off) + r * K), 0);
  } else {
    memcpy(t->blob + off, q, (size_t)bytes);
  }
  free(q);
  t->g->nodes[id].weight_offset = (int64_t)off;
  t->size = end;
  t->g->weights_bytes = (int64_t)t->size;
  return id;
}

/* A K dimension of the format: odd for element formats, whole blocks (two
 * or more, a tail past the GEMM's chunks) for block formats. */
static int64_t kdim(tfx_dtype dt, int64_t elem, int mult) {
  int blk = tfx_dtype_info_of(dt)->block;
  return blk == 1 ? elem : (int64_t)blk * mult;
}

static tfx_tg *new_graph(const char *name, int64_t max_seq, uint64_t seed, variant v) {
  tfx_tg *t = tfx_tg_new(name, max_seq, seed);
  t->g->schedule.act_f32 = 1; /* block-format linears dequantize (this path), both variants alike */
  (void)v;
  return t;
}

/* The weight maker of the shared case graphs: ctx points to the variant. */
static int wparam_of(tfx_tg *t, const void *ctx, const char *name, int rank, const int64_t *dims, float scale) {
  return wparam(t, *(const variant *)ctx, name, rank, dims, scale);
}

/* ---- the cases (tests/support/weight_tests.c builds their graphs) ---- */

typedef tfx_tg *(*build_fn)(variant v);

static tfx_tg *build_linear(variant v) {
  tfx_tg *t = new_graph("ws_linear", 16, 7, v);
  tfx_wt_case_linear(t, (tfx_wt_weights){wparam_of, &v},
                     kdim(v.dt, 70, v.dt == TFX_DT_Q4_K || v.dt == TFX_DT_Q6_K || v.dt == TFX_DT_Q3_K ? 3 : 7));
  return t;
}

/* pre-norm SwiGLU with a residual: at -O2 a norm prologue, gate and up
 * concatenated (GLU panels when packed), a residual epilogue */
static tfx_tg *build_ffn(variant v) {
  tfx_tg *t = new_graph("ws_ffn", 16, 11, v);
  tfx_wt_case_ffn(t, (tfx_wt_weights){wparam_of, &v}, kdim(v.dt, 48, 2), kdim(v.dt, 67, 3));
  return t;
}

static tfx_tg *build_moe(variant v) {
  tfx_tg *t = new_graph("ws_moe", 16, 13, v);
  tfx_wt_case_moe(t, (tfx_wt_weights){wparam_of, &v}, kdim(v.dt, 40, 2), kdim(v.dt, 37, 1));
  return t;
}

/* tokens -> embedding(table) -> classifier tied to the table (at -O2 an
 * element-format table is packed for the classifier and the embedding reads
 * scalars of its panels; a block-format table stays row-major) */
static tfx_tg *build_embedding(variant v) {
  tfx_tg *t = new_graph("ws_embedding", 16, 17, v);
  tfx_wt_case_embedding(t, (tfx_wt_weights){wparam_of, &v}, 77, kdim(v.dt, 36, 2));
  return t;
}

static tfx_tg *build_matmul(variant v) {
  tfx_tg *t = new_graph("ws_matmul", 16, 19, v);
  tfx_wt_case_matmul(t, (tfx_wt_weights){wparam_of, &v}, kdim(v.dt, 35, 2));
  return t;
}

static tfx_tg *build_mla(variant v) {
  tfx_tg *t = new_graph("ws_mla", 32, 23, v);
  tfx_wt_case_mla(t, (tfx_wt_weights){wparam_of, &v}, kdim(v.dt, 20, 1));
  return t;
}

/* ---- running them ---- */

static void run_passes(tfx_tg *t, int level, const char *cpu, const char *what) {
  tfx_pass_options o;
  tfx_pass_options_init(&o, level);
  tfx_target_options to = {.opt_level = level, .cpu = cpu};
  char err[512];
  if (tfx_backend_pack_layout(&to, &o.pack, err, sizeof err)) fail_msg("%s: pack layout: %s", what, err);
  o.weights = &t->blob;
  o.weights_size = &t->size;
  o.verify_each = 1;
  if (tfx_run_passes(t->g, &o, err, sizeof err)) fail_msg("%s -O%d: passes: %s", what, level, err);
  t->cap = t->size;
}

typedef struct {
  int params, packed; /* params of the format after the passes; packed ones */
} fmt_count;

static fmt_count count_format(const tfx_graph *g, tfx_dtype dt) {
  fmt_count c = {0, 0};
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_PARAM || n->type.dtype != dt) continue;
    c.params++;
    c.packed += n->fx.panel > 0;
  }
  return c;
}

/* Builds the case in format dt and as its twin at -O<level> for cpu (NULL:
 * the host), checks JIT against interpreter against twin. */
static fmt_count check_case(build_fn build, tfx_dtype dt, int level, const char *cpu, const char *what) {
  char label[160];
  snprintf(label, sizeof label, "%s %s -O%d%s%s", what, tfx_dtype_name(dt), level, cpu ? " --mcpu " : "",
           cpu ? cpu : "");
  tfx_tg *tq = build((variant){dt, 0}), *tw = build((variant){dt, 1});
  assert_true(tq->g->output >= 0 && tw->g->output >= 0);
  run_passes(tq, level, cpu, label);
  run_passes(tw, level, cpu, label);
  fmt_count cnt = count_format(tq->g, dt);
  if (cnt.params == 0) fail_msg("%s: no %s param left after the passes", label, tfx_dtype_name(dt));
  const tfx_graph *g = tq->g;
  const tfx_node *in = &g->nodes[g->input], *outn = &g->nodes[g->output];
  tfx_wt_plan p = {{7, 1, 4, 16, 3}, 5, in->type.dtype == TFX_DT_I32 ? 0 : tfx_node_cols(in), tfx_node_cols(outn), 0};
  if (in->type.dtype == TFX_DT_I32)
    for (int i = 0; i < g->n_nodes; i++)
      if (g->nodes[i].op == TFX_OP_EMBEDDING) p.vocab = g->nodes[g->nodes[i].inputs[0]].type.dims[0];
  assert_true(p.in_w <= MAXW);
  size_t nf = tfx_wt_plan_floats(&p);
  float *jit = calloc(nf, 4), *ref = calloc(nf, 4), *twin = calloc(nf, 4);
  assert_true(jit && ref && twin);
  tfx_wt_run_jit(tq, &p, level, cpu, jit, label);
  tfx_wt_run_interp(tq, tq->blob, &p, ref, label);
  tfx_wt_run_interp(tw, tw->blob, &p, twin, label);
  double d_ref = tfx_wt_rel_diff(jit, ref, nf), d_it = tfx_wt_rel_diff(ref, twin, nf);
  if (!(d_ref <= TOL)) fail_msg("%s: JIT vs interpreter: %g (allowed %g)", label, d_ref, TOL);
  if (!(d_it <= 1e-5)) fail_msg("%s: interpreter vs the f32 twin: %g (allowed 1e-5)", label, d_it);
  free(jit);
  free(ref);
  free(twin);
  tfx_tg_free(tq);
  tfx_tg_free(tw);
  return cnt;
}

static int is_element(tfx_dtype dt) { return tfx_dtype_info_of(dt)->block == 1; }

static void all_formats(build_fn build, const char *what, int packed_elem) {
  for (size_t f = 0; f < N_FORMATS; f++) {
    tfx_dtype dt = formats[f];
    if (dt != TFX_DT_Q3_K) check_case(build, dt, 0, NULL, what); /* q3_k: -O2 only (CI time; the same stream) */
    fmt_count c = check_case(build, dt, 2, NULL, what);
    /* -O2 packs element-format weights for the micro-kernel; block formats stay row-major */
    if (packed_elem >= 0) assert_int_equal(c.packed, is_element(dt) ? packed_elem : 0);
  }
}

static void test_linear(void **state) {
  (void)state;
  all_formats(build_linear, "linear", 1);
}

static void test_ffn(void **state) {
  (void)state;
  all_formats(build_ffn, "swiglu ffn", 2); /* w1 + w3 concatenated (GLU panels), w2 */
}

static void test_moe(void **state) {
  (void)state;
  all_formats(build_moe, "moe", -1);
  /* at -O2 the router is read by moe_route itself and w3 by moe_up (GLU) */
  tfx_tg *t = build_moe((variant){TFX_DT_Q4_K, 0});
  run_passes(t, 2, NULL, "moe");
  int lin = 0, glu = 0;
  for (int i = 0; i < t->g->n_nodes; i++) {
    lin += t->g->nodes[i].op == TFX_OP_LINEAR || t->g->nodes[i].op == TFX_OP_FUSED_LINEAR;
    glu |= t->g->nodes[i].op == TFX_OP_MOE_UP && t->g->nodes[i].fx.glu;
  }
  assert_int_equal(lin, 0);
  assert_true(glu);
  tfx_tg_free(t);
}

static void test_embedding(void **state) {
  (void)state;
  all_formats(build_embedding, "tied embedding", 1); /* the shared table, packed: the embedding reads its panels */
}

static void test_matmul(void **state) {
  (void)state;
  all_formats(build_matmul, "matmul", -1);
}

static void test_mla(void **state) {
  (void)state;
  all_formats(build_mla, "mla", -1);
}

/* schedule { streams = 2 } (what auto gives a model of 128 MiB of weights
 * or more): the packed one-row tile of a linear that is not a GLU reads k
 * in [0, half) and [half, 2 half) together, then the k past 2 half
 * (k_microkernel.c). f32, f16 and bf16 panels at -O2, a linear with the norm
 * prologue (its x chunks packed twice) and one without (x read in place),
 * K = 70 (a tail chunk only; 6 k after the streams), 1022 (a whole chunk
 * and a tail; 6 k after) and 1024 (a loop of two chunks; none after); the
 * SwiGLU FFN's w2 and the tied classifier beside them. */
static int64_t streams_K;
static tfx_tg *build_streams(variant v) {
  tfx_tg *t = new_graph("ws_streams", 16, 29, v);
  t->g->schedule.streams = 2;
  tfx_wt_case_norm_linear(t, (tfx_wt_weights){wparam_of, &v}, streams_K);
  return t;
}
static tfx_tg *build_streams_ffn(variant v) {
  tfx_tg *t = build_ffn(v);
  t->g->schedule.streams = 2;
  return t;
}
static tfx_tg *build_streams_embedding(variant v) {
  tfx_tg *t = build_embedding(v);
  t->g->schedule.streams = 2;
  return t;
}

static void test_two_streams(void **state) {
  (void)state;
  static const tfx_dtype elem[] = {TFX_DT_F32, TFX_DT_F16, TFX_DT_BF16};
  static const int64_t Ks[] = {70, 1022, 1024};
  for (size_t f = 0; f < 3; f++) {
    for (size_t k = 0; k < 3; k++) {
      streams_K = Ks[k];
      fmt_count c = check_case(build_streams, elem[f], 2, NULL, "two streams");
      assert_int_equal(c.packed, 2); /* wa and wb in panels: the packed tile */
    }
    check_case(build_streams_ffn, elem[f], 2, NULL, "two streams, swiglu ffn");
    check_case(build_streams_embedding, elem[f], 2, NULL, "two streams, tied embedding");
  }
}

/* AVX2 (8-wide vectors): the linear, FFN and embedding paths; SSE2 (4-wide) the linear */
static void test_haswell(void **state) {
  (void)state;
  for (size_t f = 0; f < N_FORMATS; f++) check_case(build_linear, formats[f], 2, "x86-64", "linear");
  for (size_t f = 0; f < N_FORMATS; f++) {
    check_case(build_linear, formats[f], 2, "haswell", "linear");
    if (formats[f] == TFX_DT_Q3_K) continue; /* CI time: its stream is the same in every kernel */
    check_case(build_ffn, formats[f], 2, "haswell", "swiglu ffn");
    check_case(build_embedding, formats[f], 0, "haswell", "tied embedding");
    check_case(build_embedding, formats[f], 2, "haswell", "tied embedding");
  }
}

/* Each block format's stream reads the bytes it should: one quant or scale
 * changed in the weight changes the JIT's output as the interpreter's. */
static void test_block_bytes_matter(void **state) {
  (void)state;
  for (size_t f = 2; f < N_FORMATS; f++) {
    tfx_dtype dt = formats[f];
    tfx_tg *t = build_linear((variant){dt, 0});
    run_passes(t, 2, NULL, "bytes");
    const tfx_node *w = NULL;
    for (int i = 0; i < t->g->n_nodes; i++)
      if (t->g->nodes[i].op == TFX_OP_PARAM && t->g->nodes[i].type.dtype == dt) w = &t->g->nodes[i];
    assert_non_null(w);
    tfx_wt_plan p = {{3}, 1, tfx_node_cols(&t->g->nodes[t->g->input]), 45, 0};
    float a[3 * 45], b[3 * 45], r[3 * 45];
    tfx_wt_run_jit(t, &p, 2, NULL, a, "bytes");
    /* the last byte of row 44's last block: a quant of its last elements (q8_0, q4_0, q4_k) or the f16 d's
       high byte (q6_k); flip its low bits. q5_0: the last qh byte of that block (the fifth bits of elements
       24 .. 31), so the high bits are read */
    int64_t bytes = tfx_type_bytes(&w->type, 1);
    if (dt == TFX_DT_Q5_0)
      t->blob[w->weight_offset + bytes - 17] ^= 0x81;
    else
      t->blob[w->weight_offset + bytes - 1] ^= dt == TFX_DT_Q6_K || dt == TFX_DT_Q3_K ? 0x01 : 0x33;
    tfx_wt_run_jit(t, &p, 2, NULL, b, "bytes");
    tfx_wt_run_interp(t, t->blob, &p, r, "bytes");
    assert_true(tfx_wt_rel_diff(b, r, 3 * 45) <= TOL);
    double moved = 0;
    for (int i = 0; i < 3 * 45; i++) moved = fmax(moved, fabs((double)a[i] - (double)b[i]));
    if (!(moved > 1e-3)) fail_msg("%s: changing a byte moved the output by %g", tfx_dtype_name(dt), moved);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 44; j++) assert_true(a[i * 45 + j] == b[i * 45 + j]); /* other rows untouched */
    tfx_tg_free(t);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear),    cmocka_unit_test(test_ffn),         cmocka_unit_test(test_moe),
      cmocka_unit_test(test_embedding), cmocka_unit_test(test_matmul),      cmocka_unit_test(test_mla),
      cmocka_unit_test(test_haswell),   cmocka_unit_test(test_two_streams), cmocka_unit_test(test_block_bytes_matter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
