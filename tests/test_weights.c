/* tests/test_weights.c — weight files and binding: the real stories260K
 * checkpoint's tensor table and data, corrupt files (truncated, garbage
 * header, trailing bytes), the random[:SEED] fill, binding errors
 * reported with the param's node id, and the views of binding rules
 * (weights_view.c) against index arithmetic written out per layout. */
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

#include "../frontend/weights.h"
#include "../ir/ir.h"

static const char *models_dir(void) {
  const char *d = getenv("TFX_MODELS_DIR");
  return d && *d ? d : TFX_MODELS_DIR_DEFAULT;
}

static void model_path(char *buf, size_t len) { snprintf(buf, len, "%s/stories260K.bin", models_dir()); }

static const tfx_wfile_tensor *find(const tfx_wfile *f, const char *name) {
  for (int i = 0; i < f->n_tensors; i++)
    if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
  return NULL;
}

static void expect_shape(const tfx_wfile *f, const char *name, int rank, int64_t d0, int64_t d1) {
  const tfx_wfile_tensor *t = find(f, name);
  if (!t) fail_msg("tensor %s missing", name);
  int64_t dims[2] = {d0, d1};
  tfx_type want = tfx_type_make(TFX_DT_F32, rank, dims);
  char a[64], b[64];
  if (!tfx_type_equal(&t->type, &want))
    fail_msg("%s is %s, want %s", name, tfx_type_str(&t->type, a, sizeof a), tfx_type_str(&want, b, sizeof b));
}

/* Collects binding errors. */
typedef struct {
  int n;
  int node[16];
  char msg[16][512];
} errors;

static void collect(void *ctx, int node, const char *msg) {
  errors *e = ctx;
  if (e->n < 16) {
    e->node[e->n] = node;
    snprintf(e->msg[e->n], sizeof e->msg[e->n], "%s", msg);
  }
  e->n++;
}

static int find_error(const errors *e, const char *needle) {
  for (int i = 0; i < e->n && i < 16; i++)
    if (strstr(e->msg[i], needle)) return i;
  return -1;
}

/* A graph with one param per tensor of f (freq_cis skipped), plus an input
 * and an output so that it verifies. */
static tfx_graph *graph_for(const tfx_wfile *f) {
  tfx_graph *g = tfx_graph_new("all", 8);
  int in = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 64}));
  for (int i = 0; i < f->n_tensors; i++)
    if (strncmp(f->tensors[i].name, "freq_cis", 8) != 0)
      assert_true(tfx_graph_add_param(g, f->tensors[i].name, f->tensors[i].type) >= 0);
  tfx_node p = tfx_node_proto(TFX_OP_RELU, 1, &in);
  g->output = tfx_graph_add(g, &p, NULL, 0);
  return g;
}

static int param_id(const tfx_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

static void test_llama2c_table(void **state) {
  (void)state;
  char path[1024], err[512] = "";
  model_path(path, sizeof path);
  tfx_wfile f;
  if (tfx_wfile_open_llama2c(path, &f, err, sizeof err)) fail_msg("open: %s", err);
  assert_string_equal(f.format, "llama2c");
  assert_int_equal(f.file_size, 1056540);
  assert_int_equal(f.n_tensors, 1 + 9 * 5 + 1 + 2); /* shared classifier: no output */
  assert_null(find(&f, "output"));
  assert_null(find(&f, "layers.5.wq"));
  expect_shape(&f, "tok_embeddings", 2, 512, 64);
  expect_shape(&f, "layers.0.attention_norm", 1, 64, 0);
  expect_shape(&f, "layers.4.wq", 2, 64, 64);
  expect_shape(&f, "layers.2.wk", 2, 32, 64);
  expect_shape(&f, "layers.2.wv", 2, 32, 64);
  expect_shape(&f, "layers.3.wo", 2, 64, 64);
  expect_shape(&f, "layers.1.ffn_norm", 1, 64, 0);
  expect_shape(&f, "layers.4.w1", 2, 172, 64);
  expect_shape(&f, "layers.4.w2", 2, 64, 172);
  expect_shape(&f, "layers.4.w3", 2, 172, 64);
  expect_shape(&f, "norm", 1, 64, 0);
  expect_shape(&f, "freq_cis_real", 2, 512, 4);
  expect_shape(&f, "freq_cis_imag", 2, 512, 4);

  /* layers.4.w3 by hand: header, embeddings, then every kind for all 5 layers */
  uint64_t D = 64, Hd = 172, KV = 32, L = 5, V = 512;
  uint64_t floats = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 2 * L * Hd * D + 4 * Hd * D;
  uint64_t w3_off = 28 + 4 * floats;
  assert_int_equal(find(&f, "layers.4.w3")->file_offset, w3_off);
  assert_int_equal(find(&f, "tok_embeddings")->file_offset, 28);

  /* bind every tensor; the blob's layers.4.w3 equals the file's floats there */
  tfx_graph *g = graph_for(&f);
  tfx_weights w = {0};
  errors e = {0};
  assert_int_equal(tfx_weights_bind(g, path, NULL, &w, collect, &e), 0);
  assert_int_equal(e.n, 0);
  if (tfx_verify(g, 1, err, sizeof err)) fail_msg("verify: %s", err);
  assert_int_equal(g->weights_bytes, (int64_t)w.size);
  assert_int_equal((uintptr_t)w.data % 64, 0);
  int id = param_id(g, "layers.4.w3");
  assert_true(id >= 0);
  float direct[16];
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  assert_int_equal(fseek(fp, (long)w3_off, SEEK_SET), 0);
  assert_int_equal(fread(direct, sizeof(float), 16, fp), 16);
  fclose(fp);
  assert_memory_equal(w.data + g->nodes[id].weight_offset, direct, sizeof direct);
  assert_true(direct[0] != 0.0f || direct[1] != 0.0f);
  /* the last tensor (norm) is read too */
  id = param_id(g, "norm");
  float last;
  fp = fopen(path, "rb");
  assert_int_equal(fseek(fp, (long)find(&f, "norm")->file_offset, SEEK_SET), 0);
  assert_int_equal(fread(&last, sizeof last, 1, fp), 1);
  fclose(fp);
  assert_memory_equal(w.data + g->nodes[id].weight_offset, &last, sizeof last);
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM) assert_int_equal(g->nodes[i].weight_offset % 64, 0);
  tfx_weights_free(&w);
  assert_null(w.data);
  tfx_graph_free(g);
  tfx_wfile_close(&f);
}

/* writes `len` bytes of src (NULL: garbage) to a fresh temp file */
static void write_temp(char *tmpl, const uint8_t *src, size_t len, int suffix_len) {
  int fd = mkstemps(tmpl, suffix_len);
  assert_true(fd >= 0);
  FILE *fp = fdopen(fd, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(src, 1, len, fp), len);
  fclose(fp);
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  assert_non_null(fp);
  fseek(fp, 0, SEEK_END);
  *len = (size_t)ftell(fp);
  fseek(fp, 0, SEEK_SET);
  uint8_t *buf = malloc(*len + 64);
  assert_int_equal(fread(buf, 1, *len, fp), *len);
  fclose(fp);
  return buf;
}

static void test_corrupt_files(void **state) {
  (void)state;
  char path[1024], err[512] = "";
  model_path(path, sizeof path);
  size_t len;
  uint8_t *data = slurp(path, &len);
  tfx_wfile f;

  /* truncated: the file open and binding both say so, naming the file */
  char t1[] = "/tmp/tfx_trunc_XXXXXX.bin";
  write_temp(t1, data, len - 1000, 4);
  assert_int_equal(tfx_wfile_open_llama2c(t1, &f, err, sizeof err), -1);
  assert_non_null(strstr(err, "truncated"));
  assert_non_null(strstr(err, t1));
  assert_non_null(strstr(err, "1056540"));
  assert_non_null(strstr(err, "1055540"));
  tfx_graph *g = tfx_graph_new("x", 8);
  tfx_graph_add_param(g, "norm", tfx_type_make(TFX_DT_F32, 1, (int64_t[]){64}));
  tfx_weights w;
  errors e = {0};
  assert_true(tfx_weights_bind(g, t1, NULL, &w, collect, &e) >= 1);
  assert_true(find_error(&e, "truncated") >= 0);
  assert_int_equal(e.node[0], -1);
  assert_null(w.data);
  unlink(t1);

  /* shorter than the header */
  char t2[] = "/tmp/tfx_tiny_XXXXXX.bin";
  write_temp(t2, data, 10, 4);
  assert_int_equal(tfx_wfile_open_llama2c(t2, &f, err, sizeof err), -1);
  assert_non_null(strstr(err, "truncated"));
  unlink(t2);

  /* garbage header */
  uint8_t junk[4096];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 7919u >> 3);
  char t3[] = "/tmp/tfx_junk_XXXXXX.dat";
  write_temp(t3, junk, sizeof junk, 4);
  assert_int_equal(tfx_wfile_open_llama2c(t3, &f, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a llama2c checkpoint"));
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind(g, t3, NULL, &w, collect, &e) >= 1); /* format guessed: fails clearly */
  assert_true(find_error(&e, "cannot tell the weights format") >= 0);
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind(g, t3, "onnx", &w, collect, &e) >= 1);
  assert_true(find_error(&e, "unknown weights format") >= 0);
  unlink(t3);

  /* a header whose n_kv_heads does not divide n_heads */
  uint8_t *bad = malloc(len);
  memcpy(bad, data, len);
  int32_t three = 3;
  memcpy(bad + 16, &three, 4);
  char t4[] = "/tmp/tfx_kv_XXXXXX.bin";
  write_temp(t4, bad, len, 4);
  assert_int_equal(tfx_wfile_open_llama2c(t4, &f, err, sizeof err), -1);
  assert_non_null(strstr(err, "n_kv_heads"));
  unlink(t4);
  /* huge dims: rejected before any arithmetic can overflow */
  int32_t big[7] = {1 << 20, 1 << 20, 4096, 1, 1, -(1 << 24), 1 << 24};
  memcpy(bad, big, sizeof big);
  char t5[] = "/tmp/tfx_big_XXXXXX.bin";
  write_temp(t5, bad, len, 4);
  assert_int_equal(tfx_wfile_open_llama2c(t5, &f, err, sizeof err), -1);
  assert_non_null(strstr(err, "truncated"));
  unlink(t5);
  /* trailing bytes */
  memcpy(bad, data, len);
  char t6[] = "/tmp/tfx_long_XXXXXX.bin";
  uint8_t *longer = calloc(len + 8, 1);
  memcpy(longer, data, len);
  write_temp(t6, longer, len + 8, 4);
  assert_int_equal(tfx_wfile_open_llama2c(t6, &f, err, sizeof err), -1);
  assert_non_null(strstr(err, "trailing"));
  unlink(t6);
  /* missing file */
  assert_int_equal(tfx_wfile_open_llama2c("/nonexistent/x.bin", &f, err, sizeof err), -1);
  assert_non_null(strstr(err, "/nonexistent/x.bin"));
  free(longer);
  free(bad);
  free(data);
  tfx_graph_free(g);
}

static tfx_graph *small_graph(void) {
  tfx_graph *g = tfx_graph_new("small", 8);
  int x = tfx_graph_add_input(g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, 5}));
  int w = tfx_graph_add_param(g, "w", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){3, 5}));
  int b = tfx_graph_add_param(g, "b", tfx_type_make(TFX_DT_F32, 1, (int64_t[]){3}));
  int w2 = tfx_graph_add_param(g, "w2", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){7, 100}));
  (void)w2;
  tfx_node p = tfx_node_proto(TFX_OP_LINEAR, 3, (int[]){x, w, b});
  g->output = tfx_graph_add(g, &p, NULL, 0);
  return g;
}

static void test_random(void **state) {
  (void)state;
  tfx_graph *g = small_graph();
  tfx_weights a, b, c, d;
  errors e = {0};
  assert_int_equal(tfx_weights_bind(g, "random:7", NULL, &a, collect, &e), 0);
  /* offsets: node order, 64-aligned: w (60 B) at 0, b (12 B) at 64, w2 (2800 B) at 128 */
  assert_int_equal(g->nodes[1].weight_offset, 0);
  assert_int_equal(g->nodes[2].weight_offset, 64);
  assert_int_equal(g->nodes[3].weight_offset, 128);
  assert_int_equal(g->weights_bytes, 128 + 2816);
  assert_int_equal(a.size, 128 + 2816);
  assert_int_equal((uintptr_t)a.data % 64, 0);
  char err[256];
  if (tfx_verify(g, 1, err, sizeof err)) fail_msg("verify: %s", err);
  assert_int_equal(tfx_weights_bind(g, "random:7", NULL, &b, collect, &e), 0);
  assert_int_equal(tfx_weights_bind(g, "random:8", NULL, &c, collect, &e), 0);
  assert_int_equal(tfx_weights_bind(g, "random", NULL, &d, collect, &e), 0);
  assert_int_equal(e.n, 0);
  assert_memory_equal(a.data, b.data, a.size); /* same seed: same bytes, padding included */
  assert_memory_not_equal(a.data, c.data, 60);
  assert_memory_not_equal(a.data + 128, c.data + 128, 2800);
  assert_memory_not_equal(a.data, d.data, 60);
  /* ranges: rank 2 within 1/sqrt(cols), rank 1 within 1 +- 0.1, not constant */
  const float *w = (const float *)a.data, *bias = (const float *)(a.data + 64), *w2 = (const float *)(a.data + 128);
  for (int i = 0; i < 15; i++) assert_true(fabsf(w[i]) <= 1.000001f / sqrtf(5.0f));
  for (int i = 0; i < 3; i++) assert_true(bias[i] >= 0.9f && bias[i] <= 1.1f && bias[i] != 1.0f);
  double mean = 0, mx = 0;
  for (int i = 0; i < 700; i++) {
    assert_true(fabsf(w2[i]) <= 0.1f);
    mean += w2[i];
    mx = fabs(w2[i]) > mx ? fabs(w2[i]) : mx;
  }
  assert_true(fabs(mean / 700) < 0.01 && mx > 0.09); /* roughly centred and spread over the range */
  /* the values of a param depend on its name and the seed only, not its position */
  tfx_graph *g2 = tfx_graph_new("other", 4);
  tfx_graph_add_param(g2, "zzz", tfx_type_make(TFX_DT_F32, 1, (int64_t[]){9}));
  tfx_graph_add_param(g2, "w", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){3, 5}));
  tfx_weights a2;
  assert_int_equal(tfx_weights_bind(g2, "random:7", NULL, &a2, collect, &e), 0);
  assert_memory_equal(a2.data + g2->nodes[1].weight_offset, a.data, 60);
  /* a bad seed */
  tfx_weights_free(&c);
  assert_int_equal(tfx_weights_bind(g, "random:x1", NULL, &c, collect, &e), 1);
  assert_true(find_error(&e, "random:SEED") >= 0);
  assert_null(c.data);
  tfx_weights_free(&a);
  tfx_weights_free(&a2);
  tfx_weights_free(&b);
  tfx_weights_free(&d);
  tfx_graph_free(g);
  tfx_graph_free(g2);
}

/* Mis-shaped and missing params name both sides and their node; the file's
 * tensors left unused are reported too. */
static void test_bind_errors(void **state) {
  (void)state;
  char path[1024], err[512];
  model_path(path, sizeof path);
  tfx_wfile f;
  if (tfx_wfile_open_llama2c(path, &f, err, sizeof err)) fail_msg("open: %s", err);
  tfx_graph *g = graph_for(&f);
  int wq = param_id(g, "layers.1.wq");
  int w2 = param_id(g, "layers.2.w2");
  g->nodes[wq].type.dims[0] = 32; /* f32[32, 64] instead of [64, 64] */
  free(g->nodes[w2].name);
  g->nodes[w2].name = strdup("layers.2.w_two");
  tfx_weights w;
  errors e = {0};
  int n = tfx_weights_bind(g, path, "llama2c", &w, collect, &e);
  assert_int_equal(n, e.n);
  assert_int_equal(n, 3);
  int i = find_error(&e, "layers.1.wq");
  assert_true(i >= 0);
  assert_int_equal(e.node[i], wq);
  assert_non_null(strstr(e.msg[i], "f32[32, 64]"));
  assert_non_null(strstr(e.msg[i], "f32[64, 64]"));
  assert_non_null(strstr(e.msg[i], path));
  i = find_error(&e, "layers.2.w_two");
  assert_true(i >= 0);
  assert_int_equal(e.node[i], w2);
  assert_non_null(strstr(e.msg[i], "not found"));
  assert_non_null(strstr(e.msg[i], "f32[64, 172]"));
  assert_non_null(strstr(e.msg[i], "tok_embeddings")); /* lists what the file has */
  i = find_error(&e, "tensor 'layers.2.w2'");
  assert_true(i >= 0);
  assert_non_null(strstr(e.msg[i], "not used by any param"));
  assert_int_equal(e.node[i], -1);
  assert_null(w.data);
  assert_int_equal(g->nodes[wq].weight_offset, -1);
  tfx_graph_free(g);

  /* a graph without `norm` leaves a tensor unused; freq_cis never counts */
  g = graph_for(&f);
  int norm = param_id(g, "norm");
  free(g->nodes[norm].name);
  g->nodes[norm].name = strdup("layers.0.ffn_norm"); /* duplicate name, same shape: shared */
  memset(&e, 0, sizeof e);
  assert_int_equal(tfx_weights_bind(g, path, NULL, &w, collect, &e), 1);
  assert_non_null(strstr(e.msg[0], "tensor 'norm'"));
  assert_null(strstr(e.msg[0], "freq_cis"));
  tfx_graph_free(g);
  tfx_wfile_close(&f);
}

/* Falcon's grouped query_key_value bias [G * (qpk + 2) * d] viewed as
 * [G, qpk + 2, d]: [:, 0:qpk] is the q bias (group g's head j at g * qpk +
 * j), [:, qpk] the k bias, [:, qpk + 1] the v bias; each element checked
 * against its index in the fused tensor. Then GPT-2's Conv1D c_attn
 * [D, 3D]: .T[D:2D] is rows D..2D-1 of the transpose. */
static void test_views(void **state) {
  (void)state;
  enum { G = 3, QPK = 2, HD = 4, N = G * (QPK + 2) * HD };
  float fused[N], got[N];
  for (int i = 0; i < N; i++) fused[i] = (float)i;
  tfx_wview_shape in = {1, {N}}, out;
  char err[256];
  for (int part = 0; part < 3; part++) {
    tfx_wview_op ops[2] = {{.kind = TFX_WV_VIEW, .n = 3, .lo = {G, QPK + 2, HD}},
                           {.kind = TFX_WV_SLICE, .n = 2, .lo = {0, 0}, .hi = {TFX_WVIEW_END, TFX_WVIEW_END}}};
    if (part == 0)
      ops[1].hi[1] = QPK; /* [:, 0:qpk] */
    else
      ops[1].lo[1] = QPK + part - 1, ops[1].index[1] = 1; /* [:, qpk], [:, qpk + 1] */
    assert_int_equal(tfx_wview_shape_of(ops, 2, &in, &out, err, sizeof err), 0);
    int heads = part == 0 ? QPK : 1;
    assert_int_equal(out.rank, part == 0 ? 3 : 2);
    assert_int_equal(out.d[0], G);
    assert_int_equal(tfx_wview_apply(ops, 2, &in, fused, got), 0);
    for (int g = 0; g < G; g++)
      for (int j = 0; j < heads; j++)
        for (int e = 0; e < HD; e++) {
          int slot = part == 0 ? j : QPK + part - 1;
          assert_true(got[(g * heads + j) * HD + e] == (float)((g * (QPK + 2) + slot) * HD + e));
        }
  }
  enum { D = 5 };
  float conv[D * 3 * D], t[D * D];
  for (int i = 0; i < D * 3 * D; i++) conv[i] = (float)i;
  tfx_wview_shape cin = {2, {D, 3 * D}};
  tfx_wview_op ops[2] = {{.kind = TFX_WV_TRANSPOSE}, {.kind = TFX_WV_SLICE, .n = 1, .lo = {D}, .hi = {2 * D}}};
  assert_int_equal(tfx_wview_shape_of(ops, 2, &cin, &out, err, sizeof err), 0);
  assert_int_equal(out.rank, 2);
  assert_int_equal(out.d[0], D);
  assert_int_equal(out.d[1], D);
  assert_int_equal(tfx_wview_apply(ops, 2, &cin, conv, t), 0);
  for (int o = 0; o < D; o++)
    for (int i = 0; i < D; i++) assert_true(t[o * D + i] == conv[i * 3 * D + D + o]); /* w[out][in] = conv[in][out] */
  /* out of range: the message names the axis and the shape */
  ops[1].hi[0] = 4 * D;
  assert_int_equal(tfx_wview_shape_of(ops, 2, &cin, &out, err, sizeof err), -1);
  assert_non_null(strstr(err, "slice 5:20 of axis 0 is out of range: the tensor is [15, 5]"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama2c_table), cmocka_unit_test(test_corrupt_files), cmocka_unit_test(test_random),
      cmocka_unit_test(test_bind_errors),   cmocka_unit_test(test_views),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
