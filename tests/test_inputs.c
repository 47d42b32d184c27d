/* tests/test_inputs.c — a forward with several inputs (issue #14): per-row
 * ids read by an embedding (BERT's token_type_ids) and a key mask for
 * attention (`key_mask = m`, BERT's attention_mask), run by the reference
 * interpreter (tfx_interp_forward_inputs) after the -O0 and -O3 pipelines.
 * The oracle is Hugging Face `transformers` (4.44.2, eager, f32):
 * tests/hf/bert_inputs.py saves a tiny random BertModel and one padded batch
 * row, tests/hf/bert_inputs.tfx binds it; every row's last hidden state
 * within 1e-4 relative to the output's scale. Plus the errors: the
 * frontend's with their locations, the interpreter's for a wrong call, the
 * verifier's, and the backend's refusal (compiled code takes one input so
 * far). Packed variable-length batches (issue #16): tests/hf/bert_packed.tfx
 * on four sequences in one call against BertModel on each sequence alone.
 * The key mask in the flash, block-sparse and per-row schedules against the
 * interpreter (test_key_mask_schedules). The oracle's python is TFX_HF_PYTHON (scripts/hfenv.sh). */
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
#include "support/small_models.h"
#include "support/testutil.h"

#define TOL 1e-4

static char *workdir;

static int setup(void **state) {
  (void)state;
  workdir = tfx_test_hf_oracle_dir(TFX_HF_PYTHON, "bert_inputs.py");
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

/* Builds src (the file's text when NULL) with the oracle's weights at -Oopt. */
static void build(const char *src, int opt, tfx_build *b) {
  char tfx[1024], weights[1100];
  snprintf(tfx, sizeof tfx, "%s/tests/hf/bert_inputs.tfx", TFX_SOURCE_DIR);
  snprintf(weights, sizeof weights, "%s/model.safetensors", workdir);
  tfx_build_options o = {.weights = weights, .opt_level = opt};
  memset(b, 0, sizeof *b);
  if (tfx_build_source(tfx, src, &o, b)) fail_msg("bert_inputs.tfx does not build at -O%d", opt);
}

static void compare(const char *what, const float *got, const float *want, size_t n) {
  double scale = 1;
  for (size_t i = 0; i < n; i++) scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
  double d = tfx_test_max_abs_diff(got, want, n);
  print_message("  %-34s max |diff| %.3g (scale %.3g)\n", what, d, scale);
  if (!(d <= TOL * scale)) fail_msg("%s: max |diff| %g > %g", what, d, TOL * scale);
}

static void break_count(tfx_model_desc *c, tfx_input_desc *t) {
  (void)t;
  c->n_inputs = 1;
}
static void break_kind(tfx_model_desc *c, tfx_input_desc *t) {
  (void)c;
  t[0].kind = TFX_INPUT_I32;
}
static void break_name(tfx_model_desc *c, tfx_input_desc *t) {
  (void)c;
  t[2].name = "types";
}
static void break_width(tfx_model_desc *c, tfx_input_desc *t) {
  (void)c;
  t[1].width = 2;
}
static void break_f32_vocab(tfx_model_desc *c, tfx_input_desc *t) {
  (void)c;
  t[2].kind = TFX_INPUT_F32;
  t[2].vocab = 4;
}
static void break_entry(tfx_model_desc *c, tfx_input_desc *t) {
  (void)t;
  ((int32_t *)c->entries[0].arg_kinds)[0] = TFX_ARG_INPUT;
}

/* The JIT model of bert_inputs.tfx: the descriptor's input table, the
 * queries, tfx_forward_inputs against the oracle, and every bad call. */
static void check_model(tfx_model *m, const void *weights, const int32_t *ids, const int32_t *types,
                        const int32_t *mask, int T, const float *want, size_t total, int opt) {
  char what[64];
  const tfx_model_desc *d = tfx_model_descriptor(m);
  assert_int_equal(d->abi_version, 7);
  assert_int_equal(d->n_inputs, 3);
  assert_string_equal(d->inputs[0].name, "tokens");
  assert_int_equal(d->inputs[0].kind, TFX_INPUT_TOKENS);
  assert_int_equal(d->inputs[0].vocab, 100);
  assert_string_equal(d->inputs[1].name, "types");
  assert_int_equal(d->inputs[1].kind, TFX_INPUT_I32);
  assert_int_equal(d->inputs[1].vocab, 2);
  assert_string_equal(d->inputs[2].name, "mask");
  assert_int_equal(d->inputs[2].kind, TFX_INPUT_I32);
  assert_int_equal(d->inputs[2].vocab, 0); /* a mask: any value */
  for (int32_t e = 0; e < d->n_entries; e++) assert_int_equal(d->entries[e].arg_kinds[0], TFX_ARG_INPUTS);
  struct tfx_model_info info = {.struct_size = sizeof info};
  assert_int_equal(tfx_model_info(m, &info), TFX_OK);
  assert_int_equal(info.n_inputs, 3);
  tfx_input_info ii;
  assert_int_equal(tfx_model_input(m, 1, &ii), TFX_OK);
  assert_string_equal(ii.name, "types");
  assert_int_equal(ii.vocab, 2);
  assert_int_equal(tfx_model_input(m, 3, &ii), TFX_ERR_INVALID_ARGUMENT);

  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  float *got = calloc(total, sizeof *got);
  const tfx_input by_name[3] = {{"mask", mask, 0}, {"tokens", ids, 0}, {"types", types, 0}};
  assert_int_equal(tfx_forward_inputs(s, by_name, 3, T, got, 0), TFX_OK);
  snprintf(what, sizeof what, "bert -O%d JIT by name", opt);
  compare(what, got, want, total);
  const tfx_input by_pos[3] = {{NULL, ids, 0}, {NULL, types, 0}, {NULL, mask, 0}};
  memset(got, 0, total * sizeof *got);
  assert_int_equal(tfx_forward_inputs(s, by_pos, 3, T, got, 0), TFX_OK);
  snprintf(what, sizeof what, "bert -O%d JIT by position", opt);
  compare(what, got, want, total);
  /* the last row only */
  float last[64];
  assert_int_equal(tfx_forward_inputs(s, by_pos, 3, T, last, 1), TFX_OK);
  assert_true(tfx_test_max_abs_diff(last, got + (size_t)(T - 1) * 32, 32) <= 1e-6);

  /* bad calls: error codes with messages, no crash */
  assert_int_equal(tfx_forward(s, ids, T, got), TFX_ERR_WRONG_INPUT);
  assert_non_null(strstr(tfx_session_last_error(s), "missing 'types', 'mask'"));
  assert_int_equal(tfx_forward_f32(s, (const float *)want, T, got), TFX_ERR_WRONG_INPUT);
  assert_int_equal(tfx_forward_inputs(s, by_name, 2, T, got, 0), TFX_ERR_WRONG_INPUT);
  assert_non_null(strstr(tfx_session_last_error(s), "takes 3 inputs, 2 given"));
  const tfx_input unknown[3] = {{"tokens", ids, 0}, {"segment", types, 0}, {"mask", mask, 0}};
  assert_int_equal(tfx_forward_inputs(s, unknown, 3, T, got, 0), TFX_ERR_WRONG_INPUT);
  assert_non_null(strstr(tfx_session_last_error(s), "has no input 'segment'"));
  const tfx_input twice[3] = {{"tokens", ids, 0}, {"tokens", types, 0}, {"mask", mask, 0}};
  assert_int_equal(tfx_forward_inputs(s, twice, 3, T, got, 0), TFX_ERR_WRONG_INPUT);
  assert_non_null(strstr(tfx_session_last_error(s), "'tokens' is given twice"));
  const tfx_input null_data[3] = {{"tokens", ids, 0}, {"types", NULL, 0}, {"mask", mask, 0}};
  assert_int_equal(tfx_forward_inputs(s, null_data, 3, T, got, 0), TFX_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(tfx_session_last_error(s), "'types' has no data"));
  assert_int_equal(tfx_forward_inputs(s, NULL, 3, T, got, 0), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_forward_inputs(s, by_pos, 3, 0, got, 0), TFX_ERR_INVALID_ARGUMENT);
  assert_int_equal(tfx_forward_inputs(s, by_pos, 3, 33, got, 0), TFX_ERR_CONTEXT_FULL);
  int32_t bad[64];
  memcpy(bad, types, (size_t)T * 4);
  bad[3] = 2;
  const tfx_input bad_ids[3] = {{"tokens", ids, 0}, {"types", bad, 0}, {"mask", mask, 0}};
  assert_int_equal(tfx_forward_inputs(s, bad_ids, 3, T, got, 0), TFX_ERR_TOKEN_RANGE);
  assert_non_null(strstr(tfx_session_last_error(s), "input 'types': id 2 (at index 3) is outside [0, 2)"));
  memcpy(bad, ids, (size_t)T * 4);
  bad[0] = -1;
  const tfx_input bad_tok[3] = {{"tokens", bad, 0}, {"types", types, 0}, {"mask", mask, 0}};
  assert_int_equal(tfx_forward_inputs(s, bad_tok, 3, T, got, 0), TFX_ERR_TOKEN_RANGE);
  /* the session still works */
  memset(got, 0, total * sizeof *got);
  assert_int_equal(tfx_forward_inputs(s, by_pos, 3, T, got, 0), TFX_OK);
  compare("  after the errors", got, want, total);
  tfx_session_free(s);
  free(got);

  /* descriptor validation: copies of the descriptor, each broken once */
  tfx_model_desc c = *d;
  tfx_input_desc tab[3];
  memcpy(tab, d->inputs, sizeof tab);
  c.inputs = tab;
  c.desc_checksum = 0;
  c.variant_next = NULL;
  tfx_model *m2 = NULL;
  assert_int_equal(tfx_model_from_descriptor(&c, weights, NULL, NULL, &m2), TFX_OK); /* the copy as it is */
  tfx_model_close(m2);
  struct {
    const char *what;
    void (*apply)(tfx_model_desc *c, tfx_input_desc *tab);
  } breaks[] = {
      {"one input in a table", break_count},
      {"a kind against input_kind", break_kind},
      {"a repeated name", break_name},
      {"an extra input of width 2", break_width},
      {"an f32 input with a vocab", break_f32_vocab},
      {"a one-input entry", break_entry},
  };
  for (size_t k = 0; k < sizeof breaks / sizeof breaks[0]; k++) {
    tfx_model_desc b2 = c;
    tfx_input_desc t2[3];
    memcpy(t2, tab, sizeof t2);
    b2.inputs = t2;
    tfx_entry_desc ents[8];
    int32_t kinds[8][16];
    for (int32_t e = 0; e < b2.n_entries && e < 8; e++) {
      ents[e] = b2.entries[e];
      memcpy(kinds[e], ents[e].arg_kinds, (size_t)ents[e].n_args * 4);
      ents[e].arg_kinds = kinds[e];
    }
    b2.entries = ents;
    breaks[k].apply(&b2, t2);
    m2 = NULL;
    int rc = tfx_model_from_descriptor(&b2, weights, NULL, NULL, &m2);
    if (rc != TFX_ERR_NOT_A_MODEL) fail_msg("%s: rc %d, expected TFX_ERR_NOT_A_MODEL", breaks[k].what, rc);
    assert_null(m2);
  }
}

/* BertModel(input_ids, token_type_ids, attention_mask) with three padded
 * rows, at -O0 and -O3; then the same program with an f32 mask. */
static void test_bert_vs_transformers(void **state) {
  (void)state;
  size_t n_ids = 0, n_types = 0, n_mask = 0, n_exp = 0;
  int32_t *ids = read_case("ids.bin", &n_ids), *types = read_case("types.bin", &n_types);
  int32_t *mask = read_case("mask.bin", &n_mask);
  float *want = read_case("expected.bin", &n_exp);
  int T = (int)(n_ids / 4);
  assert_int_equal(n_types, n_ids);
  assert_int_equal(n_mask, n_ids);
  size_t total = n_exp / 4;
  float *got = calloc(total, sizeof *got), *fmask = calloc((size_t)T, sizeof *fmask);
  char err[512], what[64];
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    build(NULL, opt, &b);
    assert_int_equal(b.graph->n_fwd_inputs, 3);
    assert_int_equal((int)(total / (size_t)T), (int)b.graph->nodes[b.graph->output].type.dims[1]);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    const void *in[3] = {ids, types, mask};
    if (tfx_interp_forward_inputs(it, in, 3, T, got, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    snprintf(what, sizeof what, "bert -O%d ids+types+mask", opt);
    compare(what, got, want, total);
    /* the one-input call names what is missing */
    assert_int_not_equal(tfx_interp_forward(it, ids, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "takes 3 inputs"));
    assert_int_not_equal(tfx_interp_forward_inputs(it, in, 2, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "2 inputs given, the forward takes 3"));
    const void *null_in[3] = {ids, NULL, mask};
    assert_int_not_equal(tfx_interp_forward_inputs(it, null_in, 3, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "NULL input 'types'"));
    /* a token type id outside the table of 2 rows */
    int32_t bad[64];
    memcpy(bad, types, (size_t)T * 4);
    bad[2] = 2;
    const void *bad_in[3] = {ids, bad, mask};
    assert_int_not_equal(tfx_interp_forward_inputs(it, bad_in, 3, T, got, err, sizeof err), 0);
    assert_non_null(strstr(err, "token id 2 at row 2 is out of range [0, 2)"));
    tfx_interp_free(it);
    /* compiled (JIT): the runtime's tfx_forward_inputs, by name in any order */
    tfx_model *m = NULL;
    if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    check_model(m, b.weights.data, ids, types, mask, T, want, total, opt);
    tfx_model_close(m);
    tfx_build_free(&b);
  }
  /* the mask as f32[T] (1.0 keeps a key, 0.0 drops it) */
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/hf/bert_inputs.tfx", TFX_SOURCE_DIR);
  char *src = tfx_test_read_file(path, NULL);
  assert_non_null(src);
  char *at = strstr(src, "mask : i32[T]");
  assert_non_null(at);
  memcpy(at, "mask : f32[T]", 13);
  at = strstr(src, "m : i32[T]"); /* the block's input */
  assert_non_null(at);
  memcpy(at, "m : f32[T]", 10);
  for (int t = 0; t < T; t++) fmask[t] = (float)mask[t];
  tfx_build b;
  build(src, 3, &b);
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  const void *in[3] = {ids, types, fmask};
  if (tfx_interp_forward_inputs(it, in, 3, T, got, err, sizeof err)) fail_msg("f32 mask: %s", err);
  compare("bert -O3 f32 mask", got, want, total);
  tfx_interp_free(it);
  tfx_model *m = NULL;
  if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("f32 mask: %s", err);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  const tfx_input fin[3] = {{"tokens", ids, 0}, {"types", types, 0}, {"mask", fmask, 0}};
  memset(got, 0, total * sizeof *got);
  assert_int_equal(tfx_forward_inputs(s, fin, 3, T, got, 0), TFX_OK);
  compare("bert -O3 JIT f32 mask", got, want, total);
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_build_free(&b);
  free(src);
  free(got);
  free(fmask);
  free(ids);
  free(types);
  free(mask);
  free(want);
}

/* Packed variable-length batches (issue #16, tests/hf/bert_packed.tfx): four
 * sequences in one call with segment ids against BertModel run on each
 * sequence alone, interpreter and JIT at -O0 and -O3 (1e-4 relative). */
static void test_packed_vs_transformers(void **state) {
  (void)state;
  size_t n_ids = 0, n_seq = 0, n_exp = 0;
  int32_t *ids = read_case("packed_ids.bin", &n_ids), *seq = read_case("packed_seq.bin", &n_seq);
  float *want = read_case("packed_expected.bin", &n_exp);
  int T = (int)(n_ids / 4);
  assert_int_equal(n_seq, n_ids);
  size_t total = n_exp / 4;
  assert_int_equal((int)total, T * 32);
  int32_t *types = calloc((size_t)T, sizeof *types);
  float *got = calloc(total, sizeof *got);
  char path[1024], err[512], what[64];
  snprintf(path, sizeof path, "%s/tests/hf/bert_packed.tfx", TFX_SOURCE_DIR);
  char *src = tfx_test_read_file(path, NULL);
  assert_non_null(src);
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    build(src, opt, &b);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    const void *in[3] = {ids, types, seq};
    if (tfx_interp_forward_inputs(it, in, 3, T, got, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    snprintf(what, sizeof what, "bert packed -O%d interpreter", opt);
    compare(what, got, want, total);
    tfx_interp_free(it);
    tfx_model *m = NULL;
    if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    const tfx_input jin[3] = {{"tokens", ids, 0}, {"types", types, 0}, {"seq", seq, 0}};
    memset(got, 0, total * sizeof *got);
    assert_int_equal(tfx_forward_inputs(s, jin, 3, T, got, 0), TFX_OK);
    snprintf(what, sizeof what, "bert packed -O%d JIT", opt);
    compare(what, got, want, total);
    tfx_session_free(s);
    tfx_model_close(m);
    tfx_build_free(&b);
  }
  free(src);
  free(got);
  free(types);
  free(ids);
  free(seq);
  free(want);
}

/* ---- frontend errors, with their locations ---- */

#define HDR                                                                                                            \
  "model m\n"                                                                                                          \
  "const dim = 8, max_seq = 16\n"                                                                                      \
  "param emb : f32[10, dim]\n"                                                                                         \
  "param w : f32[dim, dim]\n"

static void test_errors(void **state) {
  (void)state;
  /* an extra input of two dimensions */
  tfx_test_expect_compile_error(
      HDR "forward(t : i32[T], x : f32[T, dim]) -> f32[T, dim] { return embedding(emb, t) }\n", ":5:25:",
      "forward input 'x' must be i32[T] (per-row ids, a key mask) or f32[T] (a key mask), or a source i32[N] "
      "/ f32[N] of up to N rows per call, got f32[T, 8]");
  /* nine inputs */
  tfx_test_expect_compile_error(
      HDR "forward(a : i32[T], b : i32[T], c : i32[T], d : i32[T], e : i32[T], f : i32[T], g : i32[T], "
          "h : i32[T], i : i32[T]) -> f32[T, dim] { return embedding(emb, a) }\n",
      ":5:105:", "forward takes at most 8 inputs, got 9");
  /* a key mask whose length is not the keys' */
  tfx_test_expect_compile_error(HDR "param km : f32[3]\n"
                                    "forward(t : i32[T]) -> f32[T, dim] {\n"
                                    "  x = embedding(emb, t)\n"
                                    "  return attention(x, w, w, w, w, heads = 2, mask = none, key_mask = km)\n}\n",
                                ":8:70:", "attention: key_mask is f32[3], expected f32[T] or i32[T]");
  /* an extra input used where a tensor of rows is expected */
  tfx_test_expect_compile_error(HDR "forward(t : i32[T], m : f32[T]) -> f32[T, dim] {\n"
                                    "  return embedding(emb, t) + m\n}\n",
                                ":6:", "add: shapes");
}

/* The verifier: an INPUT node outside the graph's input list, a bad extra
 * input type. */
static void test_verify(void **state) {
  (void)state;
  tfx_graph *g = tfx_graph_new("v", 8);
  int t = tfx_graph_add_input(g, "t", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T}));
  int m = tfx_graph_add_input(g, "m", tfx_type_make(TFX_DT_F32, 1, (int64_t[]){TFX_DIM_T}));
  int e = tfx_graph_add_param(g, "e", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){10, 4}));
  tfx_node n = tfx_node_proto(TFX_OP_EMBEDDING, 2, (int[]){e, t});
  char err[256];
  g->output = tfx_graph_add(g, &n, err, sizeof err);
  assert_true(g->output > m);
  assert_int_equal(g->n_fwd_inputs, 2);
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0);
  g->n_fwd_inputs = 1; /* m is no longer listed */
  assert_int_not_equal(tfx_verify(g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "not in the graph's input list"));
  g->n_fwd_inputs = 2;
  g->nodes[m].type = tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 3});
  assert_int_not_equal(tfx_verify(g, 0, err, sizeof err), 0);
  assert_non_null(strstr(err, "an extra input must be i32[T] or f32[T]"));
  g->nodes[m].type = tfx_type_make(TFX_DT_F32, 1, (int64_t[]){TFX_DIM_T});
  /* dce keeps an unused extra input (the caller passes it) */
  tfx_pass_options o;
  tfx_pass_options_init(&o, 2);
  o.passes = "dce";
  assert_int_equal(tfx_run_passes(g, &o, err, sizeof err), 0);
  assert_int_equal(g->n_fwd_inputs, 2);
  assert_int_equal(g->nodes[g->fwd_inputs[1]].op, TFX_OP_INPUT);
  assert_string_equal(g->nodes[g->fwd_inputs[1]].name, "m");
  tfx_graph_free(g);
}

/* A causal decoder with per-row type ids: the extra input comes with each
 * call's rows, so decode (one row per call) and chunks give the prefill's
 * rows; JIT vs the interpreter at -O0 and -O3; the generated header names
 * the inputs; no batch entry (the batch API passes tokens only). */

static void test_decode_with_types(void **state) {
  (void)state;
  enum { T = 11, V = 20 };
  int32_t ids[T], types[T];
  for (int t = 0; t < T; t++) ids[t] = (t * 7 + 3) % V, types[t] = (t * 5) % 3;
  float ref[T * V], got[T * V];
  char err[512];
  for (int opt = 0; opt <= 3; opt += 3) {
    tfx_build b;
    tfx_build_options o = {.opt_level = opt};
    if (tfx_build_source("dec.tfx", tfx_test_typed_decoder, &o, &b)) fail_msg("dec.tfx does not build at -O%d", opt);
    tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
    const void *in[2] = {ids, types};
    if (tfx_interp_forward_inputs(it, in, 2, T, ref, err, sizeof err)) fail_msg("%s", err);
    tfx_interp_free(it);
    if (opt == 3) { /* the generated header */
      char *text = NULL;
      size_t len = 0;
      FILE *f = open_memstream(&text, &len);
      assert_int_equal(tfx_write_header(b.graph, "dec.tfx", f), 0);
      fclose(f);
      assert_non_null(strstr(text, "#define DEC_N_INPUTS 2"));
      assert_non_null(strstr(text, "#define DEC_INPUT_TOKENS_INDEX 0"));
      assert_non_null(strstr(text, "#define DEC_INPUT_TYPES_INDEX 1"));
      assert_non_null(strstr(text, "#define DEC_INPUT_TYPES_VOCAB 3"));
      free(text);
    }
    tfx_model *m = NULL;
    if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
    tfx_batch *bt = NULL;
    assert_int_equal(tfx_batch_create(m, NULL, &bt), TFX_ERR_NO_BATCH);
    tfx_session *s = NULL;
    assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
    char what[64];
    const tfx_input all[2] = {{"tokens", ids, 0}, {"types", types, 0}};
    assert_int_equal(tfx_forward_inputs(s, all, 2, T, got, 0), TFX_OK);
    snprintf(what, sizeof what, "dec -O%d prefill", opt);
    compare(what, got, ref, T * V);
    tfx_session_reset(s);
    for (int t = 0; t < T; t++) {
      const tfx_input one[2] = {{"types", types + t, 0}, {"tokens", ids + t, 0}};
      assert_int_equal(tfx_forward_inputs(s, one, 2, 1, got + t * V, 0), TFX_OK);
    }
    snprintf(what, sizeof what, "dec -O%d decode", opt);
    compare(what, got, ref, T * V);
    tfx_session_reset(s);
    const tfx_input c1[2] = {{NULL, ids, 0}, {NULL, types, 0}}, c2[2] = {{NULL, ids + 4, 0}, {NULL, types + 4, 0}};
    assert_int_equal(tfx_forward_inputs(s, c1, 2, 4, got, 0), TFX_OK);
    assert_int_equal(tfx_forward_inputs(s, c2, 2, T - 4, got + 4 * V, 0), TFX_OK);
    snprintf(what, sizeof what, "dec -O%d chunks", opt);
    compare(what, got, ref, T * V);
    /* the last row only, after a reset */
    tfx_session_reset(s);
    float last[V];
    assert_int_equal(tfx_forward_inputs(s, all, 2, T, last, 1), TFX_OK);
    compare("  last row", last, ref + (T - 1) * V, V);
    tfx_session_free(s);
    tfx_model_close(m);
    tfx_build_free(&b);
  }
}

/* The key mask in every schedule of the forward entry: flash (attention
 * without a pattern) and block-sparse (a bidirectional sliding window),
 * forced with `schedule { attention = flash }`, and the per-row kernel
 * (`schedule { attention = dense }`, and the decode entry
 * of a one-row call), JIT at -O0 and -O3 against the interpreter: a call of
 * 37 rows whose mask drops keys in several tiles and key groups and all of
 * keys 16..31 (whole tiles and groups for W and KG of 8 or 16), calls of 5
 * and 1 rows, and a call of 20 rows that drops every key (zeros); an i32
 * mask, and an f32 one at -O3. */
static const char k_masked_src[] =
    "model km\n"
    "const dim = 16, vocab = 20, max_seq = 40, heads = 2\n"
    "weights \"random:9\"\n"
    "param emb : f32[vocab, dim]\n"
    "param wq : f32[dim, dim]\n"
    "param wk : f32[dim, dim]\n"
    "param wv : f32[dim, dim]\n"
    "param wo : f32[dim, dim]\n"
    "forward(tokens : i32[T], m : %s[T]) -> f32[T, dim] {\n"
    "  x = embedding(emb, tokens)\n"
    "  x = x + attention(x, wq, wk, wv, wo, heads = heads, mask = none, key_mask = m)\n"
    "  return x + attention(x, wq, wk, wv, wo, heads = heads, mask = none, key_mask = m,\n"
    "                       sparse = sliding(window = 6))\n"
    "}\n%s";

static void check_masked_schedules(int opt, int dense, int f32_mask) {
  enum { T = 37, D = 16 };
  static const int calls[4] = {T, 5, 1, 20};
  int32_t ids[T], mi[T];
  float mf[T];
  for (int t = 0; t < T; t++) {
    ids[t] = (t * 7 + 3) % 20;
    mi[t] = !(t == 3 || t == 5 || (t >= 16 && t < 32) || t == 33 || t == 36);
    mf[t] = (float)mi[t] * (t % 2 ? 1.0f : 0.5f); /* any value but 0 keeps the key */
  }
  int32_t zeros_i[T] = {0};
  float zeros_f[T] = {0};
  char src[2048], err[512], what[96];
  snprintf(src, sizeof src, k_masked_src, f32_mask ? "f32" : "i32",
           dense ? "schedule {\n  attention = dense\n}\n" : "schedule {\n  attention = flash\n}\n");
  tfx_build b;
  tfx_build_options o = {.opt_level = opt};
  if (tfx_build_source("km.tfx", src, &o, &b)) fail_msg("km.tfx does not build at -O%d", opt);
  int seen = 0;
  for (int i = 0; i < b.graph->n_nodes; i++) {
    const tfx_node *n = &b.graph->nodes[i];
    if (n->op != TFX_OP_ATTENTION) continue;
    int want = dense                               ? TFX_ATTN_SCHED_ROW
               : n->sparse.kind == TFX_SPARSE_NONE ? TFX_ATTN_SCHED_FLASH
                                                   : TFX_ATTN_SCHED_BLOCK_SPARSE;
    assert_int_equal(tfx_attn_schedule_of(b.graph, n, 0), want);
    seen++;
  }
  assert_int_equal(seen, 2);
  const void *masks[4];
  float ref[4][T * D], got[T * D];
  tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
  for (int c = 0; c < 4; c++) {
    masks[c] = c == 3 ? (f32_mask ? (const void *)zeros_f : zeros_i) : f32_mask ? (const void *)mf : mi;
    const void *in[2] = {ids, masks[c]};
    if (tfx_interp_forward_inputs(it, in, 2, calls[c], ref[c], err, sizeof err)) fail_msg("%s", err);
  }
  tfx_interp_free(it);
  tfx_model *m = NULL;
  if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  for (int c = 0; c < 4; c++) {
    const tfx_input inputs[2] = {{"tokens", ids, 0}, {"m", masks[c], 0}};
    memset(got, 0, sizeof got);
    assert_int_equal(tfx_forward_inputs(s, inputs, 2, calls[c], got, 0), TFX_OK);
    snprintf(what, sizeof what, "key mask %s -O%d %s, %d rows", f32_mask ? "f32" : "i32", opt,
             dense ? "row" : "flash/bsparse", calls[c]);
    compare(what, got, ref[c], (size_t)calls[c] * D);
  }
  tfx_session_free(s);
  tfx_model_close(m);
  tfx_build_free(&b);
}

static void test_key_mask_schedules(void **state) {
  (void)state;
  for (int opt = 0; opt <= 3; opt += 3)
    for (int dense = 0; dense < 2; dense++) check_masked_schedules(opt, dense, 0);
  check_masked_schedules(3, 0, 1);
}

/* A key mask on a causal attention (a left-padded prompt): the values are
 * kept with the KV cache, so decode and chunks drop the same keys as the
 * prefill. Oracle: with RoPE only relative positions matter, so the rows
 * after the left padding equal the interpreter's rows of the prompt without
 * it (the inner pad key dropped in both); then JIT (forced flash prefill and the
 * per-row kernel) vs the interpreter at -O0 and -O3: prefill, decode row by
 * row, chunks of 4 + 7. */
static const char k_causal_masked_src[] =
    "model ck\n"
    "const dim = 16, vocab = 20, max_seq = 24, heads = 2\n"
    "weights \"random:5\"\n"
    "param emb : f32[vocab, dim]\n"
    "param wq : f32[dim, dim]\n"
    "param wk : f32[dim, dim]\n"
    "param wv : f32[dim, dim]\n"
    "param wo : f32[dim, dim]\n"
    "param g : f32[dim]\n"
    "param head : f32[vocab, dim]\n"
    "forward(tokens : i32[T], m : i32[T]) -> f32[T, vocab] {\n"
    "  x = embedding(emb, tokens) * 4\n"
    "  x = x + attention(rmsnorm(x, g), wq, wk, wv, wo, heads = heads, mask = causal,\n"
    "                    position = rope(theta = 10000), key_mask = m)\n"
    "  return linear(rmsnorm(x, g), head)\n"
    "}\n%s";

static void test_causal_key_mask(void **state) {
  (void)state;
  enum { T = 11, V = 20, PAD = 3 };
  int32_t ids[T], mask[T], ones[T];
  for (int t = 0; t < T; t++) ids[t] = (t * 7 + 3) % V, mask[t] = t >= PAD && t != 6, ones[t] = 1;
  float ref[T * V], unpadded[T * V], got[T * V];
  char src[2048], err[512], what[96];
  for (int opt = 0; opt <= 3; opt += 3)
    for (int dense = 0; dense < 2; dense++) {
      snprintf(src, sizeof src, k_causal_masked_src,
               dense ? "schedule {\n  attention = dense\n}\n" : "schedule {\n  attention = flash\n}\n");
      tfx_build b;
      tfx_build_options o = {.opt_level = opt};
      if (tfx_build_source("ck.tfx", src, &o, &b)) fail_msg("ck.tfx does not build at -O%d", opt);
      tfx_interp *it = tfx_interp_new(b.graph, b.weights.data);
      const void *in[2] = {ids, mask};
      if (tfx_interp_forward_inputs(it, in, 2, T, ref, err, sizeof err)) fail_msg("%s", err);
      if (opt == 0 && !dense) { /* the prompt without its left padding */
        tfx_interp_reset(it);
        const void *in2[2] = {ids + PAD, mask + PAD};
        if (tfx_interp_forward_inputs(it, in2, 2, T - PAD, unpadded, err, sizeof err)) fail_msg("%s", err);
        compare("causal key mask: left padding", ref + PAD * V, unpadded, (size_t)(T - PAD) * V);
        /* and the mask matters: without it the rows differ */
        tfx_interp_reset(it);
        const void *in3[2] = {ids, ones};
        if (tfx_interp_forward_inputs(it, in3, 2, T, got, err, sizeof err)) fail_msg("%s", err);
        assert_true(tfx_test_max_abs_diff(got + PAD * V, ref + PAD * V, (size_t)(T - PAD) * V) > 1e-2);
      }
      tfx_interp_free(it);
      tfx_model *m = NULL;
      if (tfx_build_jit(&b, NULL, &m, err, sizeof err)) fail_msg("-O%d: %s", opt, err);
      tfx_session *s = NULL;
      assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
      const char *sched = dense ? "row" : "flash";
      const tfx_input all[2] = {{"tokens", ids, 0}, {"m", mask, 0}};
      assert_int_equal(tfx_forward_inputs(s, all, 2, T, got, 0), TFX_OK);
      snprintf(what, sizeof what, "causal key mask -O%d %s prefill", opt, sched);
      compare(what, got, ref, T * V);
      tfx_session_reset(s);
      for (int t = 0; t < T; t++) {
        const tfx_input one[2] = {{"tokens", ids + t, 0}, {"m", mask + t, 0}};
        assert_int_equal(tfx_forward_inputs(s, one, 2, 1, got + t * V, 0), TFX_OK);
      }
      snprintf(what, sizeof what, "causal key mask -O%d %s decode", opt, sched);
      compare(what, got, ref, T * V);
      tfx_session_reset(s);
      const tfx_input c1[2] = {{NULL, ids, 0}, {NULL, mask, 0}}, c2[2] = {{NULL, ids + 4, 0}, {NULL, mask + 4, 0}};
      assert_int_equal(tfx_forward_inputs(s, c1, 2, 4, got, 0), TFX_OK);
      assert_int_equal(tfx_forward_inputs(s, c2, 2, T - 4, got + 4 * V, 0), TFX_OK);
      snprintf(what, sizeof what, "causal key mask -O%d %s chunks", opt, sched);
      compare(what, got, ref, T * V);
      tfx_session_free(s);
      tfx_model_close(m);
      tfx_build_free(&b);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_verify),
      cmocka_unit_test(test_bert_vs_transformers),
      cmocka_unit_test(test_packed_vs_transformers),
      cmocka_unit_test(test_decode_with_types),
      cmocka_unit_test(test_key_mask_schedules),
      cmocka_unit_test(test_causal_key_mask),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
