/* tests/test_safetensors.c — safetensors weights and renaming: a file written
 * here round-trips through the binder (f32, and f16/bf16 values that convert
 * exactly, subnormals and infinities included); the format is guessed from the
 * extension or the header; rename rules with {i} placeholders map HF-style
 * names to params (also through the `weights … rename { }` statement, and
 * kept with --weights); malformed files (short, bad lengths, bad JSON of many
 * kinds, offsets out of range or inconsistent with the shape, unknown or
 * unbindable dtypes, duplicates) each fail with a precise message, and random
 * corruptions of a valid file never crash. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../frontend/frontend.h"
#include "../frontend/weights.h"
#include "../ir/ir.h"
#include "support/testutil.h"

/* ---- helpers ---- */

static char *tmp_dir;

static int setup(void **state) {
  (void)state;
  tmp_dir = tfx_test_tmpdir();
  return tmp_dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_test_rmdir(tmp_dir);
  free(tmp_dir);
  return 0;
}

static const char *tpath(const char *name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
  return buf[k];
}

/* Writes an 8-byte LE length (header_len, or strlen(header) when < 0), the
 * header and n data bytes. */
static void write_st_len(const char *path, const char *header, int64_t header_len, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  uint64_t len = header_len < 0 ? strlen(header) : (uint64_t)header_len;
  uint8_t le[8];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(len >> (8 * i));
  assert_int_equal(fwrite(le, 1, 8, f), 8);
  size_t hl = strlen(header);
  if (hl) assert_int_equal(fwrite(header, 1, hl, f), hl);
  if (n) assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

static void write_st(const char *path, const char *header, const void *data, size_t n) {
  write_st_len(path, header, -1, data, n);
}

typedef struct {
  int n;
  int node[16];
  char msg[16][768];
} errors;

static void collect(void *ctx, int node, const char *msg) {
  errors *e = ctx;
  if (e->n < 16) {
    e->node[e->n] = node;
    snprintf(e->msg[e->n], sizeof e->msg[e->n], "%s", msg);
  }
  e->n++;
}

static int has_error(const errors *e, const char *needle) {
  for (int i = 0; i < e->n && i < 16; i++)
    if (strstr(e->msg[i], needle)) return 1;
  return 0;
}

static void print_errors(const errors *e) {
  for (int i = 0; i < e->n && i < 16; i++) fprintf(stderr, "  bind error: %s\n", e->msg[i]);
}

static tfx_graph *new_graph(void) {
  tfx_graph *g = tfx_graph_new("st", 8);
  int in = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 4}));
  tfx_node p = tfx_node_proto(TFX_OP_RELU, 1, &in);
  g->output = tfx_graph_add(g, &p, NULL, 0);
  return g;
}

static int add_param(tfx_graph *g, const char *name, int rank, int64_t d0, int64_t d1) {
  int id = tfx_graph_add_param(g, name, tfx_type_make(TFX_DT_F32, rank, (int64_t[]){d0, d1}));
  assert_true(id >= 0);
  return id;
}

static const float *param_data(const tfx_graph *g, const tfx_weights *w, int id) {
  assert_true(g->nodes[id].weight_offset >= 0);
  return (const float *)(w->data + g->nodes[id].weight_offset);
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}

/* Asserts that opening `path` fails with a message containing each needle. */
static void expect_open_error(const char *path, const char *n1, const char *n2) {
  tfx_wfile f;
  char err[512] = "";
  int rc = tfx_wfile_open_safetensors(path, &f, err, sizeof err);
  if (rc != -1) fail_msg("%s: opened, expected an error containing '%s'", path, n1);
  if (!strstr(err, n1) || (n2 && !strstr(err, n2)))
    fail_msg("%s: error '%s' lacks '%s'%s%s", path, err, n1, n2 ? " or " : "", n2 ? n2 : "");
  assert_non_null(strstr(err, path)); /* every message names the file */
  assert_null(f.tensors);
}

/* Writes header + data and expects the open error. */
static void expect_bad(const char *header, size_t data_bytes, const char *n1, const char *n2) {
  static uint8_t zeros[4096];
  const char *p = tpath("bad.safetensors");
  write_st(p, header, zeros, data_bytes);
  expect_open_error(p, n1, n2);
  unlink(p);
}

/* ---- round trip ---- */

static void test_round_trip_dtypes(void **state) {
  (void)state;
  /* a: f32 [2, 3]; h: f16 [6]; b: bf16 [2, 2] */
  const float a[6] = {1.0f, -2.5f, 3.25f, 0.0f, 1e-30f, -123456.78f};
  const uint16_t h_bits[6] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8400, 0x7C00};
  const float h_want[6] = {1.0f, -2.0f, 65504.0f, 5.9604644775390625e-8f, -6.103515625e-5f, INFINITY};
  const uint16_t b_bits[4] = {0x3F80, 0xC049, 0x0000, 0x4780};
  const float b_want[4] = {1.0f, -3.140625f, 0.0f, 65536.0f};
  uint8_t data[24 + 12 + 8];
  memcpy(data, a, 24);
  for (int i = 0; i < 6; i++) put16(data + 24 + 2 * i, h_bits[i]);
  for (int i = 0; i < 4; i++) put16(data + 36 + 2 * i, b_bits[i]);
  const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[24,36]},"
                    "\"b\":{\"data_offsets\":[36,44],\"dtype\":\"BF16\",\"shape\":[2,2]}}   ";
  const char *path = tpath("rt.safetensors");
  write_st(path, hdr, data, sizeof data);

  tfx_wfile f;
  char err[512];
  if (tfx_wfile_open_safetensors(path, &f, err, sizeof err)) fail_msg("open: %s", err);
  assert_int_equal(f.n_tensors, 3);
  assert_string_equal(f.format, "safetensors");
  assert_string_equal(f.tensors[0].name, "a");
  assert_int_equal(f.tensors[0].dtype, TFX_WF_F32);
  assert_int_equal(f.tensors[1].dtype, TFX_WF_F16);
  assert_int_equal(f.tensors[2].dtype, TFX_WF_BF16);
  assert_int_equal(f.tensors[2].type.rank, 2);
  size_t hl = strlen(hdr);
  assert_int_equal(f.tensors[1].file_offset, 8 + hl + 24);
  tfx_wfile_close(&f);

  tfx_graph *g = new_graph();
  int ia = add_param(g, "a", 2, 2, 3), ih = add_param(g, "h", 1, 6, 0), ib = add_param(g, "b", 2, 2, 2);
  tfx_weights w;
  errors e = {0};
  /* h holds an inf: refused by default, naming the tensor and the element */
  assert_int_equal(tfx_weights_bind(g, path, NULL, &w, collect, &e), 1);
  assert_true(has_error(&e, "tensor 'h' of"));
  assert_true(has_error(&e, "holds 1 non-finite value; the first, inf, at element 5"));
  assert_null(w.data);
  memset(&e, 0, sizeof e);
  const tfx_bind_options allow = {.allow_nonfinite = 1};
  int n = tfx_weights_bind_opts(g, path, NULL, NULL, 0, &allow, &w, collect, &e); /* guessed from the extension */
  print_errors(&e);
  assert_int_equal(n, 0);
  assert_memory_equal(param_data(g, &w, ia), a, sizeof a);
  for (int i = 0; i < 6; i++) assert_true(param_data(g, &w, ih)[i] == h_want[i]);
  for (int i = 0; i < 4; i++) assert_true(param_data(g, &w, ib)[i] == b_want[i]);
  /* the sign of -0.0 and NaN payloads survive too */
  tfx_weights_free(&w);

  /* another name, no extension: the header's shape says safetensors */
  const char *other = tpath("rt.weights");
  write_st(other, hdr, data, sizeof data);
  memset(&e, 0, sizeof e);
  assert_int_equal(tfx_weights_bind_opts(g, other, NULL, NULL, 0, &allow, &w, collect, &e), 0);
  for (int i = 0; i < 4; i++) assert_true(param_data(g, &w, ib)[i] == b_want[i]);
  tfx_weights_free(&w);
  /* and an explicit format */
  memset(&e, 0, sizeof e);
  assert_int_equal(tfx_weights_bind_opts(g, other, "safetensors", NULL, 0, &allow, &w, collect, &e), 0);
  tfx_weights_free(&w);
  /* a shape mismatch names both sides */
  tfx_graph *g2 = new_graph();
  add_param(g2, "a", 2, 3, 2);
  add_param(g2, "h", 1, 6, 0);
  add_param(g2, "b", 2, 2, 2);
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind(g2, path, NULL, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "param 'a' is f32[3, 2] but tensor 'a' of"));
  assert_true(has_error(&e, "is f32[2, 3]"));
  assert_null(w.data);
  tfx_graph_free(g2);
  tfx_graph_free(g);
  unlink(path);
  unlink(other);
}

/* every f16 bit pattern converts as the hardware/torch does: compare a few
 * classes against values computed with ldexp */
static void test_f16_all_patterns(void **state) {
  (void)state;
  uint8_t *data = malloc(65536 * 2);
  for (uint32_t i = 0; i < 65536; i++) put16(data + 2 * i, (uint16_t)i);
  const char *path = tpath("all16.safetensors");
  write_st(path, "{\"all\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}", data, 65536 * 2);
  tfx_graph *g = new_graph();
  int id = add_param(g, "all", 1, 65536, 0);
  tfx_weights w;
  errors e = {0};
  const tfx_bind_options allow = {.allow_nonfinite = 1}; /* the inf and NaN patterns */
  assert_int_equal(tfx_weights_bind_opts(g, path, NULL, NULL, 0, &allow, &w, collect, &e), 0);
  const float *v = param_data(g, &w, id);
  for (uint32_t i = 0; i < 65536; i++) {
    int sign = i >> 15, exp = (i >> 10) & 31, man = i & 1023;
    double want;
    if (exp == 31)
      want = man ? NAN : INFINITY;
    else if (exp == 0)
      want = ldexp(man, -24);
    else
      want = ldexp(1024 + man, exp - 25);
    if (sign) want = -want;
    if (isnan(want)) {
      if (!isnan(v[i])) fail_msg("f16 0x%04X: got %g, want NaN", i, (double)v[i]);
    } else if ((double)v[i] != want || (signbit(v[i]) != 0) != (sign != 0)) {
      fail_msg("f16 0x%04X: got %.10g, want %.10g", i, (double)v[i], want);
    }
  }
  tfx_weights_free(&w);
  tfx_graph_free(g);
  free(data);
  unlink(path);
}

/* ---- renaming ---- */

static void test_rename_rules(void **state) {
  (void)state;
  const tfx_wrename rules[] = {
      {"model.layers.{i}.self_attn.q_proj.weight", "layers.{i}.wq"},
      {"model.layers.{i}.experts.{e}.w1", "layers.{i}.e{e}.w1"},
      {"model.embed_tokens.weight", "tok_embeddings"},
      {"model.rotary_emb.inv_freq", ""},
      {"x{n}1", "y{n}"},
  };
  int n = (int)(sizeof rules / sizeof rules[0]);
  char out[128];
  assert_int_equal(tfx_wrename_apply(rules, n, "model.layers.12.self_attn.q_proj.weight", out, sizeof out), 1);
  assert_string_equal(out, "layers.12.wq");
  assert_int_equal(tfx_wrename_apply(rules, n, "model.layers.3.experts.07.w1", out, sizeof out), 1);
  assert_string_equal(out, "layers.3.e07.w1");
  assert_int_equal(tfx_wrename_apply(rules, n, "model.embed_tokens.weight", out, sizeof out), 1);
  assert_string_equal(out, "tok_embeddings");
  assert_int_equal(tfx_wrename_apply(rules, n, "model.rotary_emb.inv_freq", out, sizeof out), 1);
  assert_string_equal(out, "");
  /* {i} needs at least one digit and matches digits only; the whole name must match */
  assert_int_equal(tfx_wrename_apply(rules, n, "model.layers..self_attn.q_proj.weight", out, sizeof out), 0);
  assert_string_equal(out, "model.layers..self_attn.q_proj.weight");
  assert_int_equal(tfx_wrename_apply(rules, n, "model.layers.a.self_attn.q_proj.weight", out, sizeof out), 0);
  assert_int_equal(tfx_wrename_apply(rules, n, "model.layers.1.self_attn.q_proj.weight.x", out, sizeof out), 0);
  /* backtracking: {n} gives back the last digit to the literal "1" */
  assert_int_equal(tfx_wrename_apply(rules, n, "x2311", out, sizeof out), 1);
  assert_string_equal(out, "y231");
  /* too small an output buffer */
  assert_int_equal(tfx_wrename_apply(rules, n, "model.layers.12.self_attn.q_proj.weight", out, 5), -1);

  char err[256];
  for (int i = 0; i < n; i++) assert_int_equal(tfx_wrename_check(&rules[i], err, sizeof err), 0);
  struct {
    tfx_wrename r;
    const char *msg;
  } bad[] = {
      {{"a.{i}.b", "x.{j}"}, "placeholder {j} of \"x.{j}\" does not appear in the file name"},
      {{"a.{i}.{i}", "x.{i}"}, "placeholder {i} appears twice"},
      {{"a.{}.b", "x"}, "bad placeholder in the file name"},
      {{"a.{i", "x"}, "bad placeholder in the file name"},
      {{"a.{1x}", "x"}, "bad placeholder"},
      {{"a}", "x"}, "unmatched '}'"},
      {{"a.{i}{j}", "x{i}{j}"}, "two placeholders in a row"},
      {{"", "x"}, "empty"},
      {{"a{i}.{j}.{k}.{l}.{m}", "x"}, "too many placeholders"},
      {{"a", "x.{"}, "bad placeholder in the param name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = 0;
    assert_int_equal(tfx_wrename_check(&bad[i].r, err, sizeof err), i == 0 || i == 9 ? -2 : -1);
    if (!strstr(err, bad[i].msg)) fail_msg("rule %zu: '%s' lacks '%s'", i, err, bad[i].msg);
  }
}

/* HF-style names bound through rules, one tensor ignored */
static const char *hf_header = "{\"model.layers.0.self_attn.q_proj.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                               "\"data_offsets\":[0,16]},"
                               "\"model.layers.1.self_attn.q_proj.weight\":{\"dtype\":\"BF16\",\"shape\":[2,2],"
                               "\"data_offsets\":[16,24]},"
                               "\"model.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[24,"
                               "40]},"
                               "\"model.rotary_emb.inv_freq\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[40,"
                               "48]}}";

static void write_hf(const char *path) {
  uint8_t data[48] = {0};
  float l0[4] = {1, 2, 3, 4}, emb[4] = {5, 6, 7, 8};
  memcpy(data, l0, 16);
  const uint16_t l1[4] = {0x4110, 0x4120, 0x4130, 0x4140}; /* 9, 10, 11, 12 */
  for (int i = 0; i < 4; i++) put16(data + 16 + 2 * i, l1[i]);
  memcpy(data + 24, emb, 16);
  write_st(path, hf_header, data, sizeof data);
}

static void test_rename_bind(void **state) {
  (void)state;
  const char *path = tpath("hf.safetensors");
  write_hf(path);
  const tfx_wrename rules[] = {{"model.layers.{i}.self_attn.q_proj.weight", "layers.{i}.wq"},
                               {"model.embed_tokens.weight", "tok_embeddings"},
                               {"model.rotary_emb.inv_freq", ""}};
  tfx_graph *g = new_graph();
  int q0 = add_param(g, "layers.0.wq", 2, 2, 2), q1 = add_param(g, "layers.1.wq", 2, 2, 2),
      te = add_param(g, "tok_embeddings", 2, 2, 2);
  tfx_weights w;
  errors e = {0};
  int n = tfx_weights_bind_renamed(g, path, NULL, rules, 3, &w, collect, &e);
  print_errors(&e);
  assert_int_equal(n, 0);
  for (int i = 0; i < 4; i++) {
    assert_true(param_data(g, &w, q0)[i] == (float)(1 + i));
    assert_true(param_data(g, &w, q1)[i] == (float)(9 + i));
    assert_true(param_data(g, &w, te)[i] == (float)(5 + i));
  }
  tfx_weights_free(&w);

  /* without the ignore rule: the I64 tensor is unused; bound to a param, its dtype is refused */
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind_renamed(g, path, NULL, rules, 2, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "tensor 'model.rotary_emb.inv_freq' of"));
  assert_true(has_error(&e, "is not used by any param"));
  tfx_graph *g2 = new_graph();
  add_param(g2, "model.rotary_emb.inv_freq", 1, 1, 0);
  const tfx_wrename only_inv[] = {{"model.layers.{i}.self_attn.q_proj.weight", ""}, {"model.embed_tokens.weight", ""}};
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind_renamed(g2, path, NULL, only_inv, 2, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "has dtype I64, which cannot be bound (supported: F32, F16, BF16)"));
  tfx_graph_free(g2);

  /* a missing param lists the renamed names */
  tfx_graph *g3 = new_graph();
  add_param(g3, "layers.2.wq", 2, 2, 2);
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind_renamed(g3, path, NULL, rules, 3, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "param 'layers.2.wq' f32[2, 2] not found in"));
  assert_true(has_error(&e, "it has, after renaming: layers.0.wq, layers.1.wq, tok_embeddings"));
  assert_true(has_error(&e, "(renamed to 'layers.0.wq') is not used by any param"));
  tfx_graph_free(g3);

  /* two tensors renamed to one name */
  const tfx_wrename clash[] = {{"model.layers.{i}.self_attn.q_proj.weight", "wq"},
                               {"model.embed_tokens.weight", "tok_embeddings"},
                               {"model.rotary_emb.inv_freq", ""}};
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind_renamed(g, path, NULL, clash, 3, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "tensors 'model.layers.0.self_attn.q_proj.weight' and "
                            "'model.layers.1.self_attn.q_proj.weight' of"));
  assert_true(has_error(&e, "are both renamed to 'wq'"));
  assert_null(w.data);
  tfx_graph_free(g);
  unlink(path);
}

/* the weights statement's rename { } through the frontend, kept with --weights */
static int compile_src(const char *src, const char *weights, tfx_graph **g, tfx_weights *w, char **diag) {
  size_t len = 0;
  FILE *f = open_memstream(diag, &len);
  assert_non_null(f);
  tfx_frontend_options o = {0};
  o.weights = weights;
  o.diag = f;
  int n = tfx_frontend_compile(tpath("m.tfx"), src, &o, g, w);
  fclose(f);
  return n;
}

static void test_rename_statement(void **state) {
  (void)state;
  write_hf(tpath("hf.safetensors"));
  const char *src = "model m\n"
                    "const max_seq = 8\n"
                    "weights \"hf.safetensors\" format safetensors rename {\n"
                    "  \"model.layers.{i}.self_attn.q_proj.weight\" = \"layers.{i}.wq\"\n"
                    "  \"model.embed_tokens.weight\" = \"emb\", \"model.rotary_emb.inv_freq\" = \"\",\n"
                    "}\n"
                    "param emb : f32[2, 2]\n"
                    "block b(x : f32[T, 2]) -> f32[T, 2] {\n"
                    "  param wq : f32[2, 2]\n"
                    "  return linear(x, wq)\n"
                    "}\n"
                    "forward(x : f32[T, 2]) -> f32[T, 2] {\n"
                    "  return linear(repeat(2) b(x), emb)\n"
                    "}\n";
  tfx_graph *g = NULL;
  tfx_weights w = {0};
  char *diag = NULL;
  int n = compile_src(src, NULL, &g, &w, &diag);
  if (n) fail_msg("compile: %s", diag);
  free(diag);
  int found = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *nd = &g->nodes[i];
    if (nd->op != TFX_OP_PARAM) continue;
    const float *v = (const float *)(w.data + nd->weight_offset);
    if (!strcmp(nd->name, "layers.1.wq")) { /* BF16, read only by linear: kept as stored (2 bytes each) */
      found++;
      assert_int_equal(nd->type.dtype, TFX_DT_BF16);
      float r0[2], r1[2];
      assert_int_equal(tfx_weight_dequant_row(nd, w.data + nd->weight_offset, 0, r0), 0);
      assert_int_equal(tfx_weight_dequant_row(nd, w.data + nd->weight_offset, 1, r1), 0);
      assert_true(r0[0] == 9.0f && r1[1] == 12.0f);
      continue;
    }
    if (!strcmp(nd->name, "layers.0.wq")) found++, assert_true(v[0] == 1.0f && v[3] == 4.0f);
    if (!strcmp(nd->name, "emb")) found++, assert_true(v[0] == 5.0f && v[3] == 8.0f);
  }
  assert_int_equal(found, 3);
  tfx_graph_free(g);
  tfx_weights_free(&w);

  /* --weights: another file (no extension: format guessed), same rules */
  const char *other = tpath("other-weights");
  write_hf(other);
  g = NULL;
  n = compile_src(src, other, &g, &w, &diag);
  if (n) fail_msg("compile with --weights: %s", diag);
  free(diag);
  tfx_graph_free(g);
  tfx_weights_free(&w);

  /* a bad rule is a compile error at its string, even before binding */
  const char *bad = "model m\nconst max_seq = 8\n"
                    "weights \"hf.safetensors\" rename { \"a.{i}\" = \"b.{j}\" }\n"
                    "forward(x : f32[T, 2]) -> f32[T, 2] {\n"
                    "  return x\n"
                    "}\n";
  n = compile_src(bad, NULL, &g, &w, &diag);
  assert_true(n >= 1);
  if (!strstr(diag, "m.tfx:3:45: error: bad rename rule: placeholder {j} of \"b.{j}\" does not appear"))
    fail_msg("diagnostic: %s", diag);
  free(diag);
  const char *dup = "model m\nconst max_seq = 8\n"
                    "weights \"hf.safetensors\" rename {\n  \"a\" = \"b\"\n  \"a\" = \"c\"\n}\n"
                    "forward(x : f32[T, 2]) -> f32[T, 2] {\n"
                    "  return x\n"
                    "}\n";
  n = compile_src(dup, NULL, &g, &w, &diag);
  assert_true(n >= 1);
  if (!strstr(diag, "m.tfx:5:3: error: duplicate rename rule for \"a\"")) fail_msg("diagnostic: %s", diag);
  free(diag);
  const char *syntax = "model m\nconst max_seq = 8\n"
                       "weights \"hf.safetensors\" rename { \"a\" \"b\" }\n"
                       "forward(x : f32[T, 2]) -> f32[T, 2] {\n"
                       "  return x\n"
                       "}\n";
  n = compile_src(syntax, NULL, &g, &w, &diag);
  assert_true(n >= 1);
  if (!strstr(diag, "m.tfx:3:39: error: unexpected string")) fail_msg("diagnostic: %s", diag);
  free(diag);
  unlink(other);
  unlink(tpath("hf.safetensors"));
}

/* ---- malformed files ---- */

/* Binding rules that only pick whole rows keep a storage format: a row
 * range of a fused BF16 tensor and BF16 rows stacked into a param read only
 * as linear weights stay BF16, their bytes those of the file's rows; a
 * transposed view of the same tensor is decoded to f32. */
static void test_views_keep_rows_as_stored(void **state) {
  (void)state;
  /* fused: bf16 [4, 2] = 1..8; row.0, row.1: bf16 [2] = 9, 10 and 11, 12 */
  static const uint16_t bf[12] = {0x3F80, 0x4000, 0x4040, 0x4080, 0x40A0, 0x40C0,
                                  0x40E0, 0x4100, 0x4110, 0x4120, 0x4130, 0x4140};
  uint8_t data[24];
  for (int i = 0; i < 12; i++) put16(data + 2 * i, bf[i]);
  write_st(tpath("views.safetensors"),
           "{\"fused\":{\"dtype\":\"BF16\",\"shape\":[4,2],\"data_offsets\":[0,16]},"
           "\"row.0\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]},"
           "\"row.1\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[20,24]}}",
           data, sizeof data);
  const char *src = "model m\n"
                    "const max_seq = 8\n"
                    "weights \"views.safetensors\" rename {\n"
                    "  \"fused\"[2:4] = \"wq\"\n"
                    "  \"fused\".T[:, 0:2] = \"wt\"\n"
                    "  \"row.{r}\" = \"w2\"[r]\n"
                    "}\n"
                    "param wq : f32[2, 2]\n"
                    "param wt : f32[2, 2]\n"
                    "param w2 : f32[2, 2]\n"
                    "forward(x : f32[T, 2]) -> f32[T, 2] {\n"
                    "  return linear(linear(linear(x, wq), w2), wt)\n"
                    "}\n";
  tfx_graph *g = NULL;
  tfx_weights w = {0};
  char *diag = NULL;
  if (compile_src(src, NULL, &g, &w, &diag)) fail_msg("compile: %s", diag);
  free(diag);
  int found = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *nd = &g->nodes[i];
    if (nd->op != TFX_OP_PARAM) continue;
    float r0[2], r1[2];
    if (!strcmp(nd->name, "wt")) { /* [[1, 3], [2, 4]], decoded */
      const float *v = (const float *)(w.data + nd->weight_offset);
      assert_int_equal(nd->type.dtype, TFX_DT_F32);
      assert_true(v[0] == 1.0f && v[1] == 3.0f && v[2] == 2.0f && v[3] == 4.0f);
      found++;
      continue;
    }
    assert_int_equal(nd->type.dtype, TFX_DT_BF16);
    assert_int_equal(tfx_weight_dequant_row(nd, w.data + nd->weight_offset, 0, r0), 0);
    assert_int_equal(tfx_weight_dequant_row(nd, w.data + nd->weight_offset, 1, r1), 0);
    if (!strcmp(nd->name, "wq")) found++, assert_true(r0[0] == 5.0f && r0[1] == 6.0f && r1[0] == 7.0f && r1[1] == 8.0f);
    if (!strcmp(nd->name, "w2"))
      found++, assert_true(r0[0] == 9.0f && r0[1] == 10.0f && r1[0] == 11.0f && r1[1] == 12.0f);
  }
  assert_int_equal(found, 3);
  tfx_graph_free(g);
  tfx_weights_free(&w);
}

static void test_malformed(void **state) {
  (void)state;
  const char *p = tpath("m.safetensors");
  /* 1. shorter than the length field */
  FILE *f = fopen(p, "wb");
  fwrite("abcde", 1, 5, f);
  fclose(f);
  expect_open_error(p, "5 bytes is too short for the 8-byte header length", NULL);
  /* 2. header length beyond the file */
  write_st_len(p, "{}", 1000, NULL, 0);
  expect_open_error(p, "the header length 1000 exceeds the file size (10 bytes)", NULL);
  /* 3. an absurd header length (would overflow 8 + n) */
  write_st_len(p, "{}", INT64_MAX, NULL, 0);
  expect_open_error(p, "exceeds the file size", NULL);
  /* 4. bad JSON, several ways */
  expect_bad("", 0, "invalid JSON at byte 0: expected a JSON value, got the end of the header", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, "invalid JSON",
             "expected a string (a member name), got '}'");
  expect_bad("{\"a\":{\"dtype\":\"F32}}", 0, "invalid JSON", "unterminated string");
  expect_bad("{\"a\" {}}", 0, "invalid JSON at byte 5: expected ':' after a member name, got '{'", NULL);
  expect_bad("{} x", 0, "invalid JSON at byte 3: unexpected data after the JSON value", NULL);
  expect_bad("{\"a\\q\":1}", 0, "bad escape '\\q'", NULL);
  expect_bad("{\"a\":01}", 0, "leading zero", NULL);
  expect_bad("{\"a\":[1 2]}", 0, "expected ',' or ']', got '2'", NULL);
  expect_bad("{\"a\":\"x\ty\"}", 0, "control character 0x09 in a string", NULL);
  expect_bad("{\"a\":\"\\ud800\"}", 0, "unpaired UTF-16 surrogate", NULL);
  expect_bad("{\"a\":tru}", 0, "expected a JSON value, got 't'", NULL);
  char deep[300];
  size_t k = 0;
  deep[k++] = '{';
  deep[k++] = '"';
  deep[k++] = 'a';
  deep[k++] = '"';
  deep[k++] = ':';
  for (int i = 0; i < 100; i++) deep[k++] = '[';
  deep[k] = 0;
  expect_bad(deep, 0, "nested more than 64 levels deep", NULL);
  /* 5. not an object */
  expect_bad("[1, 2]", 0, "expected a JSON object, got an array", NULL);
  /* 6. entries */
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "tensor 'a'",
             "data_offsets [0, 8] are out of range (the data section has 4 bytes)");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 'a'",
             "data_offsets [0, 8] hold 8 bytes but shape × F32 needs 12");
  expect_bad("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 8,
             "hold 4 bytes but shape × F16 "
             "needs 8",
             NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, "end before they begin", NULL);
  expect_bad("{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
             "tensor 'a' has unknown dtype 'Q7' (supported: F32, F16, BF16)", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             8, "tensor 'a' appears twice in the header", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing field 'shape'", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
             "shape[0] must be a non-negative integer", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
             "shape[0] must be a non-negative integer", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
             "tensor 'a' has rank 5 (at most 4 is supported)", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
             "tensor 'a': shape is too large", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387905],\"data_offsets\":[0,4]}}", 4,
             "shape × F32 needs more than 2^64 bytes", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
             "data_offsets must be an array [begin, end]", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", 4,
             "data_offsets[1] must be a non-negative integer", NULL);
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, "unknown field 'extra'",
             NULL);
  expect_bad("{\"a\":[]}", 0, "tensor 'a': expected an object, got an array", NULL);
  expect_bad("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype must be a string", NULL);
  expect_bad("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "a tensor has an empty name", NULL);
  /* 7. a missing file */
  expect_open_error(tpath("nope.safetensors"), "cannot open", NULL);

  /* binding reports the open error, with the format named or guessed */
  tfx_graph *g = new_graph();
  add_param(g, "a", 1, 1, 0);
  write_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "abcd", 4);
  tfx_weights w;
  errors e = {0};
  assert_true(tfx_weights_bind(g, p, NULL, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "are out of range"));
  assert_int_equal(e.node[0], -1);
  assert_null(w.data);
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind(g, p, "onnx", &w, collect, &e) >= 1);
  assert_true(has_error(&e, "unknown weights format 'onnx' (supported: llama2c, safetensors, gguf)"));
  tfx_graph_free(g);
  unlink(p);
}

/* Random corruptions of a valid file: every open either succeeds with offsets
 * inside the file or fails with a message; binding never reads out of range
 * (the ASan build checks). */
static void test_corruptions_never_crash(void **state) {
  (void)state;
  uint8_t data[24 + 12 + 8] = {0};
  const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                    "\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[24,36]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[36,44]}}";
  size_t hl = strlen(hdr), total = 8 + hl + sizeof data;
  uint8_t *good = malloc(total), *bad = malloc(total);
  for (int i = 0; i < 8; i++) good[i] = (uint8_t)((uint64_t)hl >> (8 * i));
  memcpy(good + 8, hdr, hl);
  memcpy(good + 8 + hl, data, sizeof data);
  const char *p = tpath("c.safetensors");
  uint64_t s = 0x9e3779b97f4a7c15ull;
  int opened = 0, failed = 0;
  tfx_graph *g = new_graph();
  add_param(g, "a", 2, 2, 3);
  add_param(g, "h", 1, 6, 0);
  add_param(g, "b", 2, 2, 2);
  for (int it = 0; it < 400; it++) {
    memcpy(bad, good, total);
    int flips = 1 + it % 4;
    for (int k = 0; k < flips; k++) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      size_t at = (size_t)(s % (8 + hl));
      if (it % 2 == 0)
        bad[at] = (uint8_t)(s >> 32);
      else if (bad[at] >= '0' && bad[at] <= '9') /* keeps the JSON valid: exercises shapes and offsets */
        bad[at] = (uint8_t)('0' + (s >> 32) % 10);
    }
    size_t len = it % 7 == 6 ? (size_t)(s >> 40) % total : total; /* sometimes truncated */
    FILE *f = fopen(p, "wb");
    fwrite(bad, 1, len, f);
    fclose(f);
    tfx_wfile wf;
    char err[512] = "";
    if (tfx_wfile_open_safetensors(p, &wf, err, sizeof err) == 0) {
      opened++;
      for (int i = 0; i < wf.n_tensors; i++) {
        uint64_t bytes = (uint64_t)tfx_type_numel(&wf.tensors[i].type, 1) * (wf.tensors[i].dtype == TFX_WF_F32 ? 4 : 2);
        if (wf.tensors[i].dtype != TFX_WF_UNSUPPORTED) assert_true(wf.tensors[i].file_offset + bytes <= len);
      }
      tfx_wfile_close(&wf);
    } else {
      failed++;
      assert_true(err[0] != 0);
    }
    tfx_weights w;
    errors e = {0};
    if (tfx_weights_bind(g, p, NULL, &w, collect, &e) == 0) tfx_weights_free(&w);
  }
  printf("corruptions: %d opened, %d rejected\n", opened, failed);
  assert_true(failed > 0);
  tfx_graph_free(g);
  free(good);
  free(bad);
  unlink(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_dtypes), cmocka_unit_test(test_f16_all_patterns),
      cmocka_unit_test(test_rename_rules),      cmocka_unit_test(test_rename_bind),
      cmocka_unit_test(test_rename_statement),  cmocka_unit_test(test_views_keep_rows_as_stored),
      cmocka_unit_test(test_malformed),         cmocka_unit_test(test_corruptions_never_crash),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
