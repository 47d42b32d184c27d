/* tests/test_gguf.c — the GGUF reader and writer without python: a GGUF file
 * built here (metadata of every value type, arrays of strings and of arrays,
 * F16, F32, Q8_0 and Q4_0 tensors) opens with the right table (names, dims
 * reversed to row-major, formats, absolute aligned offsets) in v2 and v3,
 * and binds keeping weight operands as stored (the bytes of the file) and
 * decoding the rest to f32; the format is detected by the magic; every
 * header field broken in turn gives its own clear error; every truncation
 * and random corruptions never crash; tfx_gguf_write writes back what it
 * read (byte for byte), refuses a packed param and leaves nothing behind on
 * failure; tfx_weights_widen decodes exactly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../frontend/frontend.h"
#include "../frontend/gguf.h"
#include "../frontend/weights.h"
#include "../ir/ir.h"
#include "support/bytebuf.h"
#include "support/testutil.h"

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

/* ---- building GGUF files ---- */

/* The faults the builder can plant, one at a time. */
enum {
  OK,
  V2,
  BAD_MAGIC,
  V1,
  V4,
  BYTE_SWAPPED,
  HUGE_TENSOR_COUNT,
  HUGE_KV_COUNT,
  HUGE_KEY,
  KEY_PAST_END,
  EMPTY_KEY,
  BAD_VTYPE,
  STRING_PAST_END,
  BAD_ARRAY_TYPE,
  HUGE_ARRAY,
  DEEP_ARRAYS,
  ALIGN_NOT_U32,
  ALIGN_3,
  DUP_KEY,
  EMPTY_NAME,
  LONG_NAME,
  NUL_IN_NAME,
  NDIMS_0,
  NDIMS_5,
  DIM_0,
  DIMS_OVERFLOW,
  BAD_GGML_TYPE,
  Q8_ROW_33,
  OFFSET_MISALIGNED,
  OFFSET_PAST_END,
  OVERLAP,
  DUP_TENSOR,
  TRUNCATED_DATA,
  ALIGN_64,
  N_FAULTS
};

/* Tensor data: emb F16 [16, 32] (ne 32, 16), g F16 [32], w Q8_0 [4, 32], b F32 [4]. */
#define D 32
static uint16_t emb16[16 * D], g16[D];
static uint8_t wq8[4 * 34];
static float bias[4] = {0.5f, -1.0f, 2.0f, 0.25f};

static void make_data(void) {
  for (int i = 0; i < 16 * D; i++) emb16[i] = (uint16_t)(0x3000 + (i * 37) % 0x0c00); /* 0.125 .. 1 */
  for (int i = 0; i < D; i++) g16[i] = (uint16_t)(0x3c00 + i);                        /* 1 + i/1024 */
  for (int r = 0; r < 4; r++) {
    uint8_t *blk = wq8 + 34 * r;
    blk[0] = 0x00, blk[1] = (uint8_t)(0x20 + r); /* f16 d = 2^-7 * (1 + ...) */
    for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)(int8_t)(j * 7 - 100 + r);
  }
}

typedef struct {
  const char *name;
  uint32_t type, n_dims;
  uint64_t ne[5]; /* 5: room for the NDIMS_5 fault */
  const void *data;
  size_t bytes;
} tinfo;

static size_t build(tfx_bb *b, int fault) {
  b->n = 0;
  uint64_t align = fault == ALIGN_64 ? 64 : 32;
  tinfo t[5] = {
      {"emb", 1, 2, {D, 16}, emb16, sizeof emb16}, {"g", 1, 1, {D}, g16, sizeof g16},
      {"w", 8, 2, {D, 4}, wq8, sizeof wq8},        {"b", 0, 1, {4}, bias, sizeof bias},
      {"unused_q5k", 13, 1, {256}, NULL, 176},
  };
  int nt = 5;
  if (fault == EMPTY_NAME) t[1].name = "";
  if (fault == DUP_TENSOR) t[3].name = "w";
  if (fault == NDIMS_0) t[1].n_dims = 0;
  if (fault == NDIMS_5) t[1].n_dims = 5, t[1].ne[2] = t[1].ne[3] = t[1].ne[4] = 1;
  if (fault == DIM_0) t[0].ne[1] = 0;
  if (fault == DIMS_OVERFLOW) t[0].ne[0] = (uint64_t)1 << 40, t[0].ne[1] = (uint64_t)1 << 40;
  if (fault == BAD_GGML_TYPE) t[3].type = 99;
  if (fault == Q8_ROW_33) t[2].ne[0] = 33;
  tfx_bb_put(b, fault == BAD_MAGIC ? "GGUG" : "GGUF", 4);
  tfx_bb_u32(b, fault == V2 ? 2 : fault == V1 ? 1 : fault == V4 ? 4 : fault == BYTE_SWAPPED ? 0x03000000u : 3);
  tfx_bb_u64(b, fault == HUGE_TENSOR_COUNT ? (uint64_t)1 << 40 : (uint64_t)nt);
  int nkv = 7 + (fault == DUP_KEY);
  tfx_bb_u64(b, fault == HUGE_KV_COUNT ? UINT64_MAX / 2 : (uint64_t)nkv);
  /* 1: a string */
  if (fault == HUGE_KEY)
    tfx_bb_str_n(b, "general.architecture", 1000000);
  else if (fault == KEY_PAST_END)
    tfx_bb_str_n(b, "general.architecture", (uint64_t)1 << 50);
  else
    tfx_bb_str(b, fault == EMPTY_KEY ? "" : "general.architecture");
  tfx_bb_u32(b, fault == BAD_VTYPE ? 13 : TFX_GGUF_STRING);
  if (fault == STRING_PAST_END)
    tfx_bb_str_n(b, "llama", (uint64_t)1 << 40);
  else
    tfx_bb_str(b, "llama");
  /* 2: the alignment */
  tfx_bb_str(b, "general.alignment");
  if (fault == ALIGN_NOT_U32) {
    tfx_bb_u32(b, TFX_GGUF_UINT64);
    tfx_bb_u64(b, 32);
  } else {
    tfx_bb_u32(b, TFX_GGUF_UINT32);
    tfx_bb_u32(b, fault == ALIGN_3 ? 3 : (uint32_t)align);
  }
  /* 3: every scalar type in an array of arrays */
  tfx_bb_str(b, "test.arrays");
  tfx_bb_u32(b, TFX_GGUF_ARRAY);
  tfx_bb_u32(b, TFX_GGUF_ARRAY);
  tfx_bb_u64(b, 2);
  tfx_bb_u32(b, TFX_GGUF_UINT8), tfx_bb_u64(b, 3), tfx_bb_put(b, "abc", 3);
  tfx_bb_u32(b, TFX_GGUF_FLOAT64), tfx_bb_u64(b, 1), tfx_bb_u64(b, 0x3ff0000000000000ull);
  /* 4: an array of strings */
  tfx_bb_str(b, "tokenizer.ggml.tokens");
  tfx_bb_u32(b, TFX_GGUF_ARRAY);
  tfx_bb_u32(b, fault == BAD_ARRAY_TYPE ? 99 : TFX_GGUF_STRING);
  tfx_bb_u64(b, fault == HUGE_ARRAY ? (uint64_t)1 << 60 : 3);
  tfx_bb_str(b, "<s>"), tfx_bb_str(b, "</s>"), tfx_bb_str(b, "hello");
  /* 5: scalars */
  tfx_bb_str(b, "test.scalars");
  tfx_bb_u32(b, TFX_GGUF_ARRAY);
  tfx_bb_u32(b, TFX_GGUF_INT16);
  tfx_bb_u64(b, 2);
  tfx_bb_u32(b, 0xffff0001u);
  tfx_bb_str(b, "test.bool"), tfx_bb_u32(b, TFX_GGUF_BOOL), tfx_bb_put(b, "\1", 1);
  /* 7: nested deep, or a float */
  tfx_bb_str(b, fault == DUP_KEY ? "test.bool" : "test.f32");
  if (fault == DEEP_ARRAYS) {
    tfx_bb_u32(b, TFX_GGUF_ARRAY);
    for (int d = 0; d < 6; d++) tfx_bb_u32(b, TFX_GGUF_ARRAY), tfx_bb_u64(b, 1);
    tfx_bb_u32(b, TFX_GGUF_UINT8), tfx_bb_u64(b, 0);
  } else {
    tfx_bb_u32(b, TFX_GGUF_FLOAT32), tfx_bb_u32(b, 0x3f800000u);
  }
  if (fault == DUP_KEY) tfx_bb_str(b, "test.extra"), tfx_bb_u32(b, TFX_GGUF_INT64), tfx_bb_u64(b, 7);
  /* tensor infos */
  uint64_t off = 0, offs[5];
  for (int i = 0; i < nt; i++) {
    offs[i] = off;
    off += (t[i].bytes + align - 1) / align * align;
  }
  if (fault == OFFSET_MISALIGNED) offs[3] += 4;
  if (fault == OFFSET_PAST_END) offs[3] = off + 4096;
  if (fault == OVERLAP) offs[3] = offs[2] + 32;
  for (int i = 0; i < nt; i++) {
    if (fault == LONG_NAME && i == 1) {
      char name[301];
      memset(name, 'a', 300);
      name[300] = 0;
      tfx_bb_str(b, name);
    } else if (fault == NUL_IN_NAME && i == 1) {
      tfx_bb_u64(b, 3);
      tfx_bb_put(b, "g\0x", 3);
    } else {
      tfx_bb_str(b, t[i].name);
    }
    tfx_bb_u32(b, t[i].n_dims);
    for (uint32_t d = 0; d < t[i].n_dims; d++) tfx_bb_u64(b, t[i].ne[d]);
    tfx_bb_u32(b, t[i].type);
    tfx_bb_u64(b, offs[i]);
  }
  tfx_bb_pad(b, align);
  size_t data_start = b->n;
  for (int i = 0; i < nt; i++) {
    if (t[i].data)
      tfx_bb_put(b, t[i].data, t[i].bytes);
    else
      for (size_t k = 0; k < t[i].bytes; k++) tfx_bb_put(b, "\x55", 1);
    tfx_bb_pad(b, align);
  }
  if (fault == TRUNCATED_DATA) b->n -= 40;
  return data_start;
}

static void write_buf(const char *path, const tfx_bb *b) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (b->n) assert_int_equal(fwrite(b->p, 1, b->n, f), b->n);
  fclose(f);
}

typedef struct {
  int n;
  char msg[16][768];
} errors;

static void collect(void *ctx, int node, const char *msg) {
  (void)node;
  errors *e = ctx;
  if (e->n < 16) snprintf(e->msg[e->n++], sizeof e->msg[0], "%s", msg);
}

static int has_error(const errors *e, const char *needle) {
  for (int i = 0; i < e->n; i++)
    if (strstr(e->msg[i], needle)) return 1;
  for (int i = 0; i < e->n; i++) fprintf(stderr, "  error: %s\n", e->msg[i]);
  return 0;
}

static const char model_src[] = "const d = 32, vocab = 16, max_seq = 4\n"
                                "param emb : f32[vocab, d]\n"
                                "param g : f32[d]\n"
                                "param w : f32[4, d]\n"
                                "param b : f32[4]\n"
                                "forward(t : i32[T]) -> f32[T, 4] {\n"
                                "  return linear(rmsnorm(embedding(emb, t), g), w, b)\n"
                                "}\n";

static tfx_graph *model_graph(void) {
  tfx_frontend_options o = {.no_weights = 1};
  tfx_graph *g = NULL;
  assert_int_equal(tfx_frontend_compile("m.tfx", model_src, &o, &g, NULL), 0);
  return g;
}

static const tfx_node *param(const tfx_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
  fail_msg("no param %s", name);
  return NULL;
}

/* ---- tests ---- */

static void test_open_valid(void **state) {
  (void)state;
  make_data();
  tfx_bb b = {0};
  for (int v = 0; v < 3; v++) { /* v3, v2, v3 with alignment 64 */
    int fault = v == 0 ? OK : v == 1 ? V2 : ALIGN_64;
    size_t data_start = build(&b, fault);
    write_buf(tpath("ok.gguf"), &b);
    tfx_wfile f;
    char err[512];
    if (tfx_wfile_open_gguf(tpath("ok.gguf"), &f, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(f.format, "gguf");
    assert_int_equal(f.n_tensors, 5);
    assert_string_equal(f.tensors[0].name, "emb");
    assert_int_equal(f.tensors[0].type.rank, 2);
    assert_int_equal(f.tensors[0].type.dims[0], 16); /* ne = [32, 16]: 16 rows of 32 */
    assert_int_equal(f.tensors[0].type.dims[1], D);
    assert_int_equal(f.tensors[0].storage, TFX_DT_F16);
    assert_int_equal(f.tensors[0].dtype, TFX_WF_F16);
    assert_int_equal(f.tensors[0].file_offset, data_start);
    assert_int_equal(f.tensors[2].storage, TFX_DT_Q8_0);
    assert_int_equal(f.tensors[2].dtype, TFX_WF_BLOCK);
    assert_string_equal(f.tensors[2].dtype_name, "Q8_0");
    assert_int_equal(f.tensors[3].storage, TFX_DT_F32);
    assert_int_equal(f.tensors[4].dtype, TFX_WF_UNSUPPORTED);
    assert_string_equal(f.tensors[4].dtype_name, "Q5_K");
    for (int i = 0; i < f.n_tensors; i++) assert_int_equal(f.tensors[i].file_offset % (fault == ALIGN_64 ? 64 : 32), 0);
    assert_memory_equal(b.p + f.tensors[2].file_offset, wq8, sizeof wq8);
    tfx_wfile_close(&f);
  }
  free(b.p);
}

static int keep_q8_0(tfx_dtype dt) { return dt == TFX_DT_Q8_0; }
static int keep_none(tfx_dtype dt) {
  (void)dt;
  return 0;
}

static void test_bind_keeps_weights_as_stored(void **state) {
  (void)state;
  make_data();
  tfx_bb b = {0};
  build(&b, OK);
  /* no extension, no format: detected by the magic */
  write_buf(tpath("model.weights"), &b);
  tfx_graph *g = model_graph();
  tfx_weights w;
  errors e = {0};
  static const tfx_wrename ignore[] = {{"unused_q5k", ""}};
  int n = tfx_weights_bind_renamed(g, tpath("model.weights"), NULL, ignore, 1, &w, collect, &e);
  if (n) fail_msg("bind: %s", e.msg[0]);
  const tfx_node *emb = param(g, "emb"), *gain = param(g, "g"), *wq = param(g, "w"), *bn = param(g, "b");
  assert_int_equal(emb->type.dtype, TFX_DT_F16);  /* embedding table: kept */
  assert_int_equal(wq->type.dtype, TFX_DT_Q8_0);  /* linear weight: kept */
  assert_int_equal(gain->type.dtype, TFX_DT_F32); /* a norm gain: decoded */
  assert_int_equal(bn->type.dtype, TFX_DT_F32);
  assert_memory_equal(w.data + emb->weight_offset, emb16, sizeof emb16);
  assert_memory_equal(w.data + wq->weight_offset, wq8, sizeof wq8);
  const float *gv = (const float *)(w.data + gain->weight_offset);
  for (int i = 0; i < D; i++) assert_true(gv[i] == tfx_f16_to_f32(g16[i]));
  assert_memory_equal(w.data + bn->weight_offset, bias, sizeof bias);
  assert_int_equal(g->weights_bytes, 1024 + 192 + 128 + 64);
  char err[512];
  assert_int_equal(tfx_verify(g, 1, err, sizeof err), 0);
  /* the interpreter reads the stored formats: compare with the same graph widened */
  int32_t ids[3] = {3, 0, 15};
  float out1[12], out2[12];
  tfx_interp *it = tfx_interp_new(g, w.data);
  assert_non_null(it);
  g->schedule.act_f32 = 1;
  assert_int_equal(tfx_interp_forward(it, ids, 3, out1, err, sizeof err), 0);
  tfx_interp_free(it);
  assert_int_equal(tfx_weights_widen(g, &w, keep_q8_0, err, sizeof err), 1); /* q8_0 kept, f16 decoded */
  assert_int_equal(param(g, "emb")->type.dtype, TFX_DT_F32);
  assert_int_equal(param(g, "w")->type.dtype, TFX_DT_Q8_0);
  const float *ef = (const float *)(w.data + param(g, "emb")->weight_offset);
  for (int i = 0; i < 16 * D; i++) assert_true(ef[i] == tfx_f16_to_f32(emb16[i]));
  assert_int_equal(tfx_weights_widen(g, &w, keep_none, err, sizeof err), 1);
  assert_int_equal(param(g, "emb")->type.dtype, TFX_DT_F32);
  assert_int_equal(param(g, "w")->type.dtype, TFX_DT_F32);
  const float *wf = (const float *)(w.data + param(g, "w")->weight_offset);
  for (int r = 0; r < 4; r++)
    for (int j = 0; j < 32; j++) {
      uint16_t dh = (uint16_t)(wq8[34 * r] | wq8[34 * r + 1] << 8);
      assert_true(wf[r * 32 + j] == tfx_f16_to_f32(dh) * (float)(int8_t)wq8[34 * r + 2 + j]);
    }
  assert_int_equal(tfx_verify(g, 1, err, sizeof err), 0);
  it = tfx_interp_new(g, w.data);
  assert_int_equal(tfx_interp_forward(it, ids, 3, out2, err, sizeof err), 0);
  tfx_interp_free(it);
  for (int i = 0; i < 12; i++) assert_true(fabsf(out1[i] - out2[i]) <= 1e-5f * (1 + fabsf(out2[i])));
  tfx_weights_free(&w);
  tfx_graph_free(g);
  free(b.p);
}

static void test_bind_errors(void **state) {
  (void)state;
  make_data();
  tfx_bb b = {0};
  build(&b, OK);
  write_buf(tpath("b.gguf"), &b);
  tfx_graph *g = model_graph();
  tfx_weights w;
  errors e = {0};
  /* the Q5_K tensor renamed onto a param: a clear error */
  static const tfx_wrename onto_b[] = {{"unused_q5k", "b"}, {"b", ""}};
  assert_true(tfx_weights_bind_renamed(g, tpath("b.gguf"), "gguf", onto_b, 2, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "unsupported GGUF tensor type Q5_K"));
  /* unused tensors are reported like any format's */
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind(g, tpath("b.gguf"), "gguf", &w, collect, &e) >= 1);
  assert_true(has_error(&e, "tensor 'unused_q5k' of"));
  /* a failed bind leaves every param f32 and unbound */
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM) {
      assert_int_equal(g->nodes[i].type.dtype, TFX_DT_F32);
      assert_int_equal(g->nodes[i].weight_offset, -1);
    }
  assert_null(w.data);
  /* format gguf on a file that is not one */
  write_buf(tpath("no.gguf"), &(tfx_bb){(uint8_t *)"GGML....", 8, 8});
  memset(&e, 0, sizeof e);
  assert_true(tfx_weights_bind(g, tpath("no.gguf"), NULL, &w, collect, &e) >= 1);
  assert_true(has_error(&e, "not a GGUF file"));
  tfx_graph_free(g);
  free(b.p);
}

static void test_malformed(void **state) {
  (void)state;
  static const struct {
    int fault;
    const char *want;
  } cases[] = {
      {BAD_MAGIC, "not a GGUF file (it does not start with \"GGUF\")"},
      {V1, "GGUF version 1 is not supported (versions 2 and 3 are)"},
      {V4, "GGUF version 4 is not supported"},
      {BYTE_SWAPPED, "a big-endian GGUF file?"},
      {HUGE_TENSOR_COUNT, "tensor_count = 1099511627776 is more than the file can hold"},
      {HUGE_KV_COUNT, "metadata_kv_count = 9223372036854775807 is more than the file can hold"},
      {HUGE_KEY, "metadata key 0 is 1000000 bytes long (at most 65535)"},
      {KEY_PAST_END, "metadata key 0 is 1125899906842624 bytes long"},
      {EMPTY_KEY, "metadata key 0 is empty"},
      {BAD_VTYPE, "metadata 'general.architecture' has an unknown value type 13"},
      {STRING_PAST_END, "the string value of metadata 'general.architecture' (1099511627776 bytes at offset"},
      {BAD_ARRAY_TYPE, "array metadata 'tokenizer.ggml.tokens' has an unknown element type 99"},
      {HUGE_ARRAY, "array metadata 'tokenizer.ggml.tokens' has 1152921504606846976 string elements, more than"},
      {DEEP_ARRAYS, "metadata 'test.f32' nests arrays more than 4 deep"},
      {ALIGN_NOT_U32, "general.alignment must be a uint32, got uint64"},
      {ALIGN_3, "general.alignment = 3 is not a power of two"},
      {DUP_KEY, "metadata key 'test.bool' appears twice"},
      {EMPTY_NAME, "tensor 1 has an empty name"},
      {LONG_NAME, "the name of tensor 1 is 300 bytes long (at most 256)"},
      {NUL_IN_NAME, "the name of tensor 1 holds a NUL byte"},
      {NDIMS_0, "tensor 'g' has n_dims = 0 (1..4)"},
      {NDIMS_5, "tensor 'g' has n_dims = 5 (1..4)"},
      {DIM_0, "tensor 'emb' has ne[1] = 0"},
      {DIMS_OVERFLOW, "tensor 'emb' has more than 2^63 elements"},
      {BAD_GGML_TYPE, "tensor 'b' has an unknown ggml type 99"},
      {Q8_ROW_33, "tensor 'w' is Q8_0 but its row length ne[0] = 33 is not a multiple of the Q8_0 block (32)"},
      {OFFSET_MISALIGNED, "tensor 'b' has offset 1252, not a multiple of the alignment 32"},
      {OFFSET_PAST_END, "tensor 'b' (16 bytes of F32 at offset 5568) runs past the end of the data section"},
      {OVERLAP, "tensors 'w' and 'b' overlap"},
      {DUP_TENSOR, "tensor 'w' appears twice"},
      {TRUNCATED_DATA, "tensor 'unused_q5k' (176 bytes of Q5_K at offset 1280) runs past the end of the data section"},
  };
  make_data();
  tfx_bb b = {0};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    build(&b, cases[i].fault);
    write_buf(tpath("bad.gguf"), &b);
    tfx_wfile f;
    char err[1024] = "";
    int rc = tfx_wfile_open_gguf(tpath("bad.gguf"), &f, err, sizeof err);
    if (rc != -1 || !strstr(err, cases[i].want))
      fail_msg("fault %d: rc %d, error '%s', expected '%s'", cases[i].fault, rc, err, cases[i].want);
    if (strncmp(err, tpath("bad.gguf"), strlen(tpath("bad.gguf"))) != 0) fail_msg("the error names no file: %s", err);
    assert_null(f.tensors);
  }
  free(b.p);
}

/* Every prefix of a valid file, and random corruptions: never a crash; an
 * open that succeeds keeps every tensor inside the file. */
static void test_corruptions_never_crash(void **state) {
  (void)state;
  make_data();
  tfx_bb b = {0};
  size_t data_start = build(&b, OK);
  tfx_bb c = {0};
  tfx_graph *g = model_graph();
  int opened = 0, rejected = 0;
  for (size_t len = 0; len < b.n; len++) {
    c.n = 0;
    tfx_bb_put(&c, b.p, len);
    write_buf(tpath("cut.gguf"), &c);
    tfx_wfile f;
    char err[512] = "";
    if (len < data_start + 1280 + 176) { /* before the last tensor's end */
      assert_int_equal(tfx_wfile_open_gguf(tpath("cut.gguf"), &f, err, sizeof err), -1);
      assert_true(err[0] != 0);
    } else {
      assert_int_equal(tfx_wfile_open_gguf(tpath("cut.gguf"), &f, err, sizeof err), 0);
      tfx_wfile_close(&f);
    }
  }
  uint64_t s = 12345;
  for (int iter = 0; iter < 600; iter++) {
    c.n = 0;
    tfx_bb_put(&c, b.p, b.n);
    int flips = 1 + iter % 4;
    for (int k = 0; k < flips; k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      size_t at = (size_t)(s >> 33) % (iter % 2 ? 200 : c.n);
      c.p[at] ^= (uint8_t)(1u << ((s >> 20) & 7));
      if (iter % 5 == 0) c.p[at] = 0xff;
    }
    write_buf(tpath("flip.gguf"), &c);
    tfx_wfile f;
    char err[512];
    if (tfx_wfile_open_gguf(tpath("flip.gguf"), &f, err, sizeof err) == 0) {
      opened++;
      for (int i = 0; i < f.n_tensors; i++) assert_true(f.tensors[i].file_offset <= f.file_size);
      tfx_wfile_close(&f);
    } else {
      rejected++;
    }
    tfx_weights w;
    if (tfx_weights_bind(g, tpath("flip.gguf"), NULL, &w, NULL, NULL) == 0) tfx_weights_free(&w);
  }
  fprintf(stderr, "corruptions: %d opened, %d rejected\n", opened, rejected);
  assert_true(opened > 0 && rejected > 0);
  tfx_graph_free(g);
  free(b.p);
  free(c.p);
}

static void test_write_round_trip(void **state) {
  (void)state;
  make_data();
  tfx_bb b = {0};
  build(&b, OK);
  write_buf(tpath("src.gguf"), &b);
  tfx_graph *g = model_graph();
  tfx_weights w;
  static const tfx_wrename ignore[] = {{"unused_q5k", ""}};
  assert_int_equal(tfx_weights_bind_renamed(g, tpath("src.gguf"), NULL, ignore, 1, &w, NULL, NULL), 0);
  tfx_gguf_meta meta = {"tiny", "m.tfx", "test"};
  char err[512];
  if (tfx_gguf_write(g, w.data, w.size, tpath("out.gguf"), &meta, err, sizeof err)) fail_msg("%s", err);
  tfx_wfile f;
  if (tfx_wfile_open_gguf(tpath("out.gguf"), &f, err, sizeof err)) fail_msg("%s", err);
  size_t size = 0;
  char *raw = tfx_test_read_file(tpath("out.gguf"), &size);
  assert_non_null(raw);
  assert_int_equal(f.n_tensors, 4);
  static const char *const names[] = {"emb", "g", "w", "b"};
  for (int i = 0; i < 4; i++) {
    const tfx_node *p = param(g, names[i]);
    const tfx_wfile_tensor *t = NULL;
    for (int k = 0; k < f.n_tensors; k++)
      if (strcmp(f.tensors[k].name, names[i]) == 0) t = &f.tensors[k];
    assert_non_null(t);
    assert_int_equal(t->storage, p->type.dtype);
    tfx_type shape = p->type;
    shape.dtype = TFX_DT_F32;
    assert_true(tfx_type_equal(&t->type, &shape));
    assert_int_equal(t->file_offset % 32, 0);
    assert_memory_equal(raw + t->file_offset, w.data + p->weight_offset, (size_t)tfx_type_bytes(&p->type, 1));
  }
  free(raw);
  tfx_wfile_close(&f);
  /* the file's mode is a plain file's, not mkstemp's 0600 */
  struct stat st;
  assert_int_equal(stat(tpath("out.gguf"), &st), 0);
  mode_t um = umask(0);
  umask(um);
  assert_int_equal(st.st_mode & 0777, 0666 & ~um);
  /* a packed param: refused, and nothing is left behind */
  tfx_node *wp = (tfx_node *)param(g, "g");
  wp->fx.panel = 4;
  assert_int_equal(tfx_gguf_write(g, w.data, w.size, tpath("packed.gguf"), &meta, err, sizeof err), -1);
  assert_non_null(strstr(err, "param 'g' is packed in panels of 4 rows, a layout GGUF cannot express"));
  wp->fx.panel = 0;
  assert_int_equal(access(tpath("packed.gguf"), F_OK), -1);
  assert_int_equal(tfx_gguf_write(g, w.data, w.size, tpath("nodir/x.gguf"), &meta, err, sizeof err), -1);
  assert_non_null(strstr(err, "cannot create a temporary file beside it"));
  /* no temporary file is left in the folder */
  char *argv[] = {"/bin/ls", tmp_dir, NULL};
  char *ls = NULL;
  assert_int_equal(tfx_test_run(argv, &ls, NULL), 0);
  assert_null(strstr(ls, ".tmp."));
  free(ls);
  tfx_weights_free(&w);
  tfx_graph_free(g);
  free(b.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_valid),
      cmocka_unit_test(test_bind_keeps_weights_as_stored),
      cmocka_unit_test(test_bind_errors),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_corruptions_never_crash),
      cmocka_unit_test(test_write_round_trip),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
