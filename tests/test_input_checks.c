/* tests/test_input_checks.c — issue #17's input checks, a table of rows each
 * asserting the place, the text and (on the command line) the exit status:
 * - non-finite weights (f32, f16, bf16 and the block formats' scales, from
 *   safetensors and GGUF files the test writes) are an error at the param
 *   naming the tensor, the count and the first element; --allow-nonfinite,
 *   tfx_frontend_options.allow_nonfinite and tfx_compile_options.
 *   allow_nonfinite accept them, bit for bit;
 * - a llama2.c header that disagrees with the program names the field, the
 *   file's value and the program's (heads with the same tensor shapes,
 *   n_layers, dim, vocab_size and its sign, seq_len);
 * - safetensors with overlapping data_offsets are refused; control bytes and
 *   invalid UTF-8 in tensor names are escaped (\xNN) in messages;
 * - source: `weights ""`, reserved model names (tfx_…, __x, _X), an odd head
 *   dim under rope with no rotary_dim: located errors; every other kind of
 *   model name gives a header that compiles (cc -fsyntax-only) with tfx.h;
 * - the command line: every numeric option checked right after conversion
 *   (usage error, exit 2, naming the option, the value and the range),
 *   --weights= empty, -O levels.
 * Every row would fail if its check were removed. */
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

#include "../driver/compile.h"
#include "../include/tfx/jit.h"
#include "frontend.h"
#include "support/bytebuf.h"
#include "support/cli_cases.h"
#include "support/frontend_capture.h"
#include "support/testutil.h"
#include "weights.h"

static char *tmpdir; /* per run, removed at the end */

static const char *tpath(const char *name) {
  static char buf[8][4200];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
  return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  if (n) assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* Compiles src (as file `path`) with the frontend; returns the diagnostics
 * (tests/support/frontend_capture.c). */
static char *compile_capture(const char *path, const char *src, const char *weights, int no_weights,
                             int allow_nonfinite, int *errors, tfx_weights *keep, tfx_graph **keep_g) {
  tfx_frontend_options o = {.weights = weights, .no_weights = no_weights, .allow_nonfinite = allow_nonfinite};
  return tfx_test_compile_capture(path, src, &o, errors, keep_g, keep);
}

/* diag has "FILE:WHERE: error: ..." whose line holds frag1 and frag2. */
static void expect_error_at(const char *diag, const char *file, const char *where, const char *frag1, const char *frag2,
                            const char *name) {
  char head[4400];
  snprintf(head, sizeof head, "%s:%s: error: ", file, where);
  for (const char *at = strstr(diag, head); at; at = strstr(at + 1, head)) {
    const char *eol = strchr(at, '\n');
    size_t n = eol ? (size_t)(eol - at) : strlen(at);
    char *line = strndup(at, n);
    int ok = strstr(line, frag1) && (!frag2 || strstr(line, frag2));
    free(line);
    if (ok) return;
  }
  fail_msg("%s: want '%s...%s...%s' in:\n%s", name, head, frag1, frag2 ? frag2 : "", diag);
}

/* ==== source ============================================================ */

typedef struct src_case {
  const char *name;
  const char *file; /* the source's file name */
  const char *src;
  const char *where, *frag;
} src_case;

#define MINI_BODY                                                                                                      \
  "const dim = 16, vocab = 8, max_seq = 8\n"                                                                           \
  "param emb : f32[vocab, dim]\n"                                                                                      \
  "forward(tokens : i32[T]) -> f32[T, vocab] {\n"                                                                      \
  "  return linear(embedding(emb, tokens), emb)\n"                                                                     \
  "}\n"

#define ODD_ATTN(POS)                                                                                                  \
  "model odd\n"                                                                                                        \
  "const dim = 34, vocab = 8, max_seq = 8\n"                                                                           \
  "param emb : f32[vocab, dim]\n"                                                                                      \
  "param wq : f32[dim, dim]\n"                                                                                         \
  "forward(tokens : i32[T]) -> f32[T, vocab] {\n"                                                                      \
  "  x = embedding(emb, tokens)\n"                                                                                     \
  "  x = x + attention(x, wq, wq, wq, wq, heads = 2, mask = causal, position = " POS ")\n"                             \
  "  return linear(x, emb)\n"                                                                                          \
  "}\n"

static const src_case src_cases[] = {
    {"src: weights \"\"", "t.tfx", "model m\nweights \"\"\n" MINI_BODY, "2:9", "empty weights path"},
    {"src: model tfx_model", "t.tfx", "model tfx_model\n" MINI_BODY, "1:7",
     "model name 'tfx_model' is reserved: the 'tfx' prefix belongs to the runtime API"},
    {"src: model TFX_Session (any case)", "t.tfx", "model TFX_Session\n" MINI_BODY, "1:7",
     "model name 'TFX_Session' is reserved"},
    {"src: model tfx", "t.tfx", "model tfx\n" MINI_BODY, "1:7", "model name 'tfx' is reserved"},
    {"src: model __x", "t.tfx", "model __x\n" MINI_BODY, "1:7",
     "model name '__x' is reserved: C reserves names beginning with '__' or '_' and a capital letter"},
    {"src: model _Bool", "t.tfx", "model _Bool\n" MINI_BODY, "1:7", "model name '_Bool' is reserved"},
    {"src: a reserved name from the file name", "tfx_model.tfx", MINI_BODY, "1:1",
     "the model's name 'tfx_model', taken from the file name, is reserved"},
    {"src: odd head dim under attention's rope", "t.tfx", ODD_ATTN("rope()"), "7:77",
     "rope: the head dim is odd (17 = 34 columns / heads = 2) and rope rotates pairs of dimensions: give "
     "rotary_dim = N (even, 2..16)"},
    {"src: odd head dim under rope()", "t.tfx",
     "const dim = 6, vocab = 8, max_seq = 8\n"
     "param emb : f32[vocab, dim]\n"
     "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
     "  return linear(rope(embedding(emb, tokens), heads = 2), emb)\n"
     "}\n",
     "4:17", "rope: the head dim is odd (3 = 6 columns / heads = 2)"},
    {"src: head dim 1 under rope()", "t.tfx",
     "const dim = 4, vocab = 8, max_seq = 8\n"
     "param emb : f32[vocab, dim]\n"
     "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
     "  return linear(rope(embedding(emb, tokens), heads = 4), emb)\n"
     "}\n",
     "4:17", "rope: the head dim is 1 (4 columns / heads = 4): rope needs pairs of dimensions to rotate"},
    {"src: an odd rotary_dim written keeps the IR's message", "t.tfx", ODD_ATTN("rope(rotary_dim = 5)"), "7:77",
     "rotary_dim 5 must be even and in 2..17"},
};

static void test_source(void **state) {
  const src_case *c = *state;
  const char *path = tpath(c->file);
  int errors = 0;
  char *diag = compile_capture(path, c->src, "random", 0, 0, &errors, NULL, NULL);
  if (errors < 1) fail_msg("%s: expected an error, got none", c->name);
  expect_error_at(diag, path, c->where, c->frag, NULL, c->name);
  free(diag);
}

/* the odd head dim compiles with an even rotary_dim, and an even head dim without one */
static void test_source_controls(void **state) {
  (void)state;
  static const char *const good[] = {ODD_ATTN("rope(rotary_dim = 16)"), ODD_ATTN("none"), "model tfxa\n" MINI_BODY,
                                     "model _x\n" MINI_BODY, "model x_tfx_\n" MINI_BODY};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int errors = 0;
    char *diag = compile_capture(tpath("t.tfx"), good[i], "random", 0, 0, &errors, NULL, NULL);
    if (errors) fail_msg("case %zu: unexpected errors:\n%s", i, diag);
    free(diag);
  }
  /* the API's empty weights path */
  int errors = 0;
  char *diag = compile_capture(tpath("t.tfx"), "model m\n" MINI_BODY, "", 0, 0, &errors, NULL, NULL);
  assert_int_equal(errors, 1);
  assert_non_null(strstr(diag, "empty weights path"));
  free(diag);
}

/* ==== generated headers compile ========================================= */

/* Every accepted kind of model name: C and C++ keywords, standard library
 * names and macros, prefixes of reserved ones, a long name. */
static void test_header_names_compile(void **state) {
  (void)state;
  static const char *const names[] = {
      "int",
      "while",
      "static",
      "struct",
      "main",
      "errno",
      "stdin",
      "NULL",
      "size_t",
      "int32_t",
      "INT32",
      "UINT8",
      "SIZE",
      "PTRDIFF",
      "FILE",
      "assert",
      "printf",
      "bool",
      "true",
      "class",
      "new",
      "a", /* not also "A": a header's macros are upper case, so two models whose names differ only in case
            * share them and cannot be included in one translation unit (this test includes all) */
      "_x",
      "_1",
      "tf",
      "tfxmodel",
      "TfxA",
      "x_tfx_",
      "descriptor",
      "open",
      "VOCAB",
      "MAX_SEQ",
      "INPUT",
      "offsetof",
      "a_very_long_model_name_of_more_than_one_hundred_and_twenty_eight_characters_which_the_header_truncates_"
      "consistently_in_every_symbol_xyz"};
  const size_t n = sizeof names / sizeof names[0];
  char src[2048], cfile[4200], hfile[4200], cmd[9000];
  snprintf(cfile, sizeof cfile, "%s/use.c", tmpdir);
  for (size_t i = 0; i < n; i++) {
    snprintf(src, sizeof src, "model %s\n" MINI_BODY, names[i]);
    tfx_build_options bo = {.weights = "random", .opt_level = 1};
    char *diag = NULL;
    size_t dl = 0;
    bo.diag = open_memstream(&diag, &dl);
    tfx_build b;
    int errors = tfx_build_source(tpath("m.tfx"), src, &bo, &b);
    fclose(bo.diag);
    if (errors) fail_msg("model %s: %s", names[i], diag);
    free(diag);
    snprintf(hfile, sizeof hfile, "%s/m%zu.h", tmpdir, i);
    FILE *h = fopen(hfile, "w");
    assert_non_null(h);
    assert_int_equal(tfx_write_header(b.graph, "m.tfx", h), 0);
    assert_int_equal(fclose(h), 0);
    tfx_build_free(&b);
  }
  /* one translation unit includes every header twice (the guards) and uses
   * each one's symbols; -Werror -pedantic: any clash or redeclaration fails */
  FILE *c = fopen(cfile, "w");
  assert_non_null(c);
  fprintf(c, "#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <errno.h>\n");
  fprintf(c, "#include <assert.h>\n#include <stdbool.h>\n");
  for (size_t i = 0; i < n; i++) fprintf(c, "#include \"m%zu.h\"\n#include \"m%zu.h\"\n", i, i);
  fprintf(c, "int use_all(void);\nint use_all(void) {\n  tfx_model *m = NULL;\n  long s = 0;\n");
  for (size_t i = 0; i < n; i++) {
    char lower[128], upper[128];
    snprintf(lower, sizeof lower, "%.127s", names[i]);
    snprintf(upper, sizeof upper, "%.127s", names[i]);
    for (char *p = upper; *p; p++)
      if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    fprintf(c, "  s += %s_open(&m) + %s_VOCAB + %s_MAX_SEQ + (long)%s_WEIGHTS_SIZE + %s_descriptor.vocab;\n", lower,
            upper, upper, upper, lower);
  }
  fprintf(c, "  return (int)s;\n}\n");
  assert_int_equal(fclose(c), 0);
  snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I'%s/include' -I'%s' '%s' 2>&1",
           TFX_SOURCE_DIR, tmpdir, cfile);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[8192];
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = 0;
  int rc = pclose(p);
  if (rc != 0) fail_msg("the generated headers do not compile (%s):\n%s", cmd, out);
  /* as C++ too, when there is a compiler */
  if (system("command -v c++ >/dev/null 2>&1") == 0) {
    snprintf(cmd, sizeof cmd,
             "c++ -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only -I'%s/include' -I'%s' '%s' 2>&1",
             TFX_SOURCE_DIR, tmpdir, cfile);
    p = popen(cmd, "r");
    assert_non_null(p);
    got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    if (pclose(p) != 0) fail_msg("the generated headers do not compile as C++ (%s):\n%s", cmd, out);
  }
}

/* ==== non-finite weights ================================================ */

/* safetensors: the header (padded to 8) then data */
static void write_st(const char *path, const char *json, const void *data, size_t n) {
  size_t jl = strlen(json), padded = (jl + 7) / 8 * 8;
  uint8_t *buf = calloc(1, 8 + padded + n + 1);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  memcpy(buf + 8, json, jl);
  memset(buf + 8 + jl, ' ', padded - jl);
  if (n) memcpy(buf + 8 + padded, data, n);
  write_bytes(path, buf, 8 + padded + n);
  free(buf);
}

/* emb [16, 8] (a weight operand: keeps F16/BF16), g [8] (decoded to f32), w [4, 8] */
#define ST_TFX                                                                                                         \
  "const d = 8, max_seq = 4\n"  /* 1 */                                                                                \
  "weights \"w.safetensors\"\n" /* 2 */                                                                                \
  "param emb : f32[16, d]\n"    /* 3 */                                                                                \
  "param g : f32[d]\n"          /* 4 */                                                                                \
  "param w : f32[4, d]\n"       /* 5 */                                                                                \
  "forward(t : i32[T]) -> f32[T, 4] {\n"                                                                               \
  "  return linear(rmsnorm(embedding(emb, t), g), w)\n"                                                                \
  "}\n"

typedef enum { NF_F32, NF_F16, NF_BF16 } nf_dtype;

typedef struct nf_case {
  const char *name;
  const char *tensor; /* "emb", "g" or "w" */
  nf_dtype dt;
  int bad[2];    /* element indices made non-finite (-1: none) */
  uint32_t kind; /* 0: NaN, 1: inf, 2: -inf */
  const char *where, *frag1, *frag2;
} nf_case;

static const nf_case nf_cases[] = {
    {"nonfinite: f32 NaN",
     "w",
     NF_F32,
     {19, 30},
     0,
     "5:7",
     "param 'w': tensor 'w' of",
     "(F32) holds 2 non-finite values; the first, NaN, at element 19, index [2, 3] (--allow-nonfinite accepts them)"},
    {"nonfinite: f16 inf, kept as f16",
     "emb",
     NF_F16,
     {40, -1},
     1,
     "3:7",
     "param 'emb': tensor 'emb' of",
     "(F16) holds 1 non-finite value; the first, inf, at element 40, index [5, 0]"},
    {"nonfinite: bf16 -inf, decoded to f32",
     "g",
     NF_BF16,
     {7, -1},
     2,
     "4:7",
     "param 'g': tensor 'g' of",
     "(BF16) holds 1 non-finite value; the first, -inf, at element 7 ("},
    {"nonfinite: f16 NaN, last element",
     "emb",
     NF_F16,
     {127, -1},
     0,
     "3:7",
     "tensor 'emb'",
     "the first, NaN, at element 127, index [15, 7]"},
};

/* Writes w.safetensors for a case: emb, g, w in dtype dt (the others F32). */
static void write_nf_file(const char *path, const nf_case *c) {
  static const char *const names[3] = {"emb", "g", "w"};
  static const int numel[3] = {128, 8, 32};
  char json[1024];
  uint8_t data[4 * (128 + 8 + 32)];
  size_t off = 0, jl = 0;
  jl += (size_t)snprintf(json + jl, sizeof json - jl, "{");
  for (int t = 0; t < 3; t++) {
    int mine = !strcmp(names[t], c->tensor);
    nf_dtype dt = mine ? c->dt : NF_F32;
    size_t es = dt == NF_F32 ? 4 : 2;
    for (int i = 0; i < numel[t]; i++) {
      int bad = mine && (i == c->bad[0] || i == c->bad[1]);
      float v = 0.25f * (float)(i % 5) - 0.5f;
      if (dt == NF_F32) {
        uint32_t u;
        memcpy(&u, &v, 4);
        if (bad) u = c->kind == 0 ? 0x7fc00000u : c->kind == 1 ? 0x7f800000u : 0xff800000u;
        memcpy(data + off + 4 * (size_t)i, &u, 4);
      } else {
        uint16_t h = dt == NF_F16 ? 0x3c00 : 0x3f80; /* 1.0 */
        if (bad && dt == NF_F16) h = c->kind == 0 ? 0x7e00 : c->kind == 1 ? 0x7c00 : 0xfc00;
        if (bad && dt == NF_BF16) h = c->kind == 0 ? 0x7fc0 : c->kind == 1 ? 0x7f80 : 0xff80;
        memcpy(data + off + 2 * (size_t)i, &h, 2);
      }
    }
    jl += (size_t)snprintf(json + jl, sizeof json - jl,
                           "%s\"%s\": {\"dtype\": \"%s\", \"shape\": %s, \"data_offsets\": [%zu, %zu]}", t ? ", " : "",
                           names[t],
                           dt == NF_F32   ? "F32"
                           : dt == NF_F16 ? "F16"
                                          : "BF16",
                           t == 0   ? "[16, 8]"
                           : t == 1 ? "[8]"
                                    : "[4, 8]",
                           off, off + es * (size_t)numel[t]);
    off += es * (size_t)numel[t];
  }
  snprintf(json + jl, sizeof json - jl, "}");
  write_st(path, json, data, off);
}

static void test_nonfinite(void **state) {
  const nf_case *c = *state;
  const char *tfx = tpath("t.tfx");
  write_nf_file(tpath("w.safetensors"), c);
  int errors = 0;
  char *diag = compile_capture(tfx, ST_TFX, NULL, 0, 0, &errors, NULL, NULL);
  assert_int_equal(errors, 1);
  expect_error_at(diag, tfx, c->where, c->frag1, c->frag2, c->name);
  free(diag);
  /* accepted when allowed, the value bound as it is in the file */
  tfx_weights w;
  tfx_graph *g = NULL;
  diag = compile_capture(tfx, ST_TFX, NULL, 0, 1, &errors, &w, &g);
  if (errors) fail_msg("%s: allowed, yet:\n%s", c->name, diag);
  free(diag);
  int found = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_PARAM || strcmp(n->name, c->tensor)) continue;
    found = 1;
    const uint8_t *p = w.data + n->weight_offset;
    int64_t at = c->bad[0];
    float v;
    if (n->type.dtype == TFX_DT_F32)
      memcpy(&v, p + 4 * at, 4);
    else if (n->type.dtype == TFX_DT_F16)
      v = tfx_f16_to_f32((uint16_t)(p[2 * at] | p[2 * at + 1] << 8));
    else
      fail_msg("%s: unexpected dtype %s", c->name, tfx_dtype_name(n->type.dtype));
    if (c->kind == 0)
      assert_true(isnan(v));
    else
      assert_true(isinf(v) && (v > 0) == (c->kind == 1));
  }
  assert_true(found);
  tfx_graph_free(g);
  tfx_weights_free(&w);
}

/* The scans against isfinite() element by element: 1000 elements (chunks of
 * 64 and a tail), every finite class around the boundary (the largest
 * finite, subnormals, -0), non-finite values placed at chunk edges, inside
 * chunks and in the tail. */
static void test_find_nonfinite_scan(void **state) {
  (void)state;
  enum { N = 1000 };
  static const uint32_t f32_finite[] = {0x7f7fffffu, 0xff7fffffu, 0x00000001u, 0x80000000u, 0x3f800000u, 0x007fffffu};
  static const uint32_t f32_bad[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffffffffu};
  static const uint16_t f16_finite[] = {0x7bff, 0xfbff, 0x0001, 0x8000, 0x3c00, 0x03ff};
  static const uint16_t f16_bad[] = {0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff};
  static const uint16_t bf_finite[] = {0x7f7f, 0xff7f, 0x0001, 0x8000, 0x3f80, 0x007f};
  static const uint16_t bf_bad[] = {0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffff};
  static const int places[][3] = {{-1, -1, -1},    {0, -1, -1},    {63, 64, -1},
                                  {127, 500, 999}, {960, 998, -1}, {999, -1, -1}};
  uint8_t buf[4 * N];
  int64_t dims[1] = {N};
  for (int fmt = 0; fmt < 3; fmt++)
    for (size_t pl = 0; pl < sizeof places / sizeof places[0]; pl++) {
      tfx_type t = tfx_type_make(fmt == 0 ? TFX_DT_F32 : fmt == 1 ? TFX_DT_F16 : TFX_DT_BF16, 1, dims);
      int64_t want_count = 0, want_first = -1;
      for (int i = 0; i < N; i++) {
        int bad = i == places[pl][0] || i == places[pl][1] || i == places[pl][2];
        if (bad) {
          want_count++;
          if (want_first < 0) want_first = i;
        }
        if (fmt == 0) {
          uint32_t w = bad ? f32_bad[i % 5] : f32_finite[i % 6];
          memcpy(buf + 4 * i, &w, 4);
        } else {
          uint16_t h = fmt == 1 ? (bad ? f16_bad[i % 5] : f16_finite[i % 6]) : (bad ? bf_bad[i % 5] : bf_finite[i % 6]);
          memcpy(buf + 2 * i, &h, 2);
        }
      }
      tfx_nonfinite nf;
      int rc = tfx_weights_find_nonfinite(&t, buf, &nf);
      if (rc != (want_count > 0) || (rc && (nf.count != want_count || nf.index != want_first)))
        fail_msg("format %d, places %zu: rc %d count %lld first %lld (want %lld, %lld)", fmt, pl, rc,
                 (long long)nf.count, (long long)nf.index, (long long)want_count, (long long)want_first);
    }
}

/* ---- GGUF: the block formats' scales ---- */

typedef struct gtensor {
  const char *name;
  uint32_t type; /* ggml type id */
  uint64_t rows, cols;
  const uint8_t *data;
  size_t bytes;
} gtensor;

/* A GGUF v3 file, no metadata, alignment 32. */
static void write_gguf(const char *path, const gtensor *t, int n) {
  tfx_bb b = {0};
  tfx_bb_put(&b, "GGUF", 4);
  tfx_bb_u32(&b, 3);
  tfx_bb_u64(&b, (uint64_t)n);
  tfx_bb_u64(&b, 0);
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    tfx_bb_u64(&b, strlen(t[i].name));
    tfx_bb_put(&b, t[i].name, strlen(t[i].name));
    tfx_bb_u32(&b, t[i].rows > 1 ? 2 : 1);
    tfx_bb_u64(&b, t[i].cols);
    if (t[i].rows > 1) tfx_bb_u64(&b, t[i].rows);
    tfx_bb_u32(&b, t[i].type);
    tfx_bb_u64(&b, off);
    off += (t[i].bytes + 31) / 32 * 32;
  }
  static const uint8_t zero[32];
  tfx_bb_put(&b, zero, (32 - b.n % 32) % 32);
  for (int i = 0; i < n; i++) {
    tfx_bb_put(&b, t[i].data, t[i].bytes);
    tfx_bb_put(&b, zero, (32 - t[i].bytes % 32) % 32);
  }
  write_bytes(path, b.p, b.n);
  free(b.p);
}

/* model: emb [16, 256] f32, g [256] (gg->g_type), w [4, 256] (the block format) */
#define GG_TFX                                                                                                         \
  "const d = 256, max_seq = 4\n"                                                                                       \
  "weights \"w.gguf\"\n"                                                                                               \
  "param emb : f32[16, d]\n"                                                                                           \
  "param g : f32[d]\n"                                                                                                 \
  "param w : f32[4, d]\n"                                                                                              \
  "forward(t : i32[T]) -> f32[T, 4] {\n"                                                                               \
  "  return linear(rmsnorm(embedding(emb, t), g), w)\n"                                                                \
  "}\n"

typedef struct gg_case {
  const char *name;
  uint32_t type;               /* of w, or of g when on_gain */
  int block, block_bytes;      /* elements and bytes of one block */
  int scale_offs[2], n_scales; /* where its f16 scales are */
  int bad_block, bad_scale;    /* which block's which scale is made non-finite */
  uint16_t bad_bits;
  int on_gain; /* the block tensor is g (decoded to f32), not w */
  const char *where, *frag;
} gg_case;

static const gg_case gg_cases[] = {
    {"gguf: Q8_0 scale NaN",
     8,
     32,
     34,
     {0, 0},
     1,
     13,
     0,
     0x7e00,
     0,
     "5:7",
     "(Q8_0) holds 1 non-finite block scale; the first, d = NaN, scales elements 416..447, index [1, 160..191]"},
    {"gguf: Q4_0 scale inf",
     2,
     32,
     18,
     {0, 0},
     1,
     31,
     0,
     0x7c00,
     0,
     "5:7",
     "(Q4_0) holds 1 non-finite block scale; the first, d = inf, scales elements 992..1023, index [3, 224..255]"},
    {"gguf: Q4_K dmin inf",
     12,
     256,
     144,
     {0, 2},
     2,
     2,
     1,
     0x7c00,
     0,
     "5:7",
     "(Q4_K) holds 1 non-finite block scale; the first, dmin = inf, scales elements 512..767, index [2, 0..255]"},
    {"gguf: Q6_K d -inf",
     14,
     256,
     210,
     {208, 0},
     1,
     3,
     0,
     0xfc00,
     0,
     "5:7",
     "(Q6_K) holds 1 non-finite block scale; the first, d = -inf, scales elements 768..1023, index [3, 0..255]"},
    {"gguf: Q8_0 gain decoded to f32",
     8,
     32,
     34,
     {0, 0},
     1,
     1,
     0,
     0x7e00,
     1,
     "4:7",
     "(Q8_0) holds 32 non-finite values; the first, NaN, at element 32 ("},
};

static void test_gguf_scales(void **state) {
  const gg_case *c = *state;
  const int K = 256;
  float *emb = malloc(16 * (size_t)K * 4), gain[256], wf[4 * 256];
  assert_non_null(emb);
  for (int i = 0; i < 16 * K; i++) emb[i] = 0.01f * (float)(i % 13);
  for (int i = 0; i < K; i++) gain[i] = 1.0f;
  for (int i = 0; i < 4 * K; i++) wf[i] = 0.02f * (float)(i % 7) - 0.05f;
  int rows = c->on_gain ? 1 : 4, blocks = rows * K / c->block;
  size_t qbytes = (size_t)blocks * (size_t)c->block_bytes;
  uint8_t *q = malloc(qbytes);
  assert_non_null(q);
  for (size_t i = 0; i < qbytes; i++) q[i] = (uint8_t)(i * 37 + 11);
  for (int b = 0; b < blocks; b++)
    for (int s = 0; s < c->n_scales; s++) { /* finite scales: 0.01 */
      q[(size_t)b * (size_t)c->block_bytes + (size_t)c->scale_offs[s]] = 0x1f;
      q[(size_t)b * (size_t)c->block_bytes + (size_t)c->scale_offs[s] + 1] = 0x21;
    }
  size_t at = (size_t)c->bad_block * (size_t)c->block_bytes + (size_t)c->scale_offs[c->bad_scale];
  q[at] = (uint8_t)c->bad_bits;
  q[at + 1] = (uint8_t)(c->bad_bits >> 8);
  gtensor t[3] = {{"emb", 0, 16, (uint64_t)K, (const uint8_t *)emb, 16 * (size_t)K * 4},
                  {"g", 0, 1, (uint64_t)K, (const uint8_t *)gain, sizeof gain},
                  {"w", 0, 4, (uint64_t)K, (const uint8_t *)wf, sizeof wf}};
  gtensor *bt = &t[c->on_gain ? 1 : 2];
  bt->type = c->type;
  bt->data = q;
  bt->bytes = qbytes;
  write_gguf(tpath("w.gguf"), t, 3);
  const char *tfx = tpath("t.tfx");
  int errors = 0;
  char *diag = compile_capture(tfx, GG_TFX, NULL, 0, 0, &errors, NULL, NULL);
  assert_int_equal(errors, 1);
  expect_error_at(diag, tfx, c->where, c->on_gain ? "param 'g': tensor 'g' of" : "param 'w': tensor 'w' of", c->frag,
                  c->name);
  free(diag);
  diag = compile_capture(tfx, GG_TFX, NULL, 0, 1, &errors, NULL, NULL);
  if (errors) fail_msg("%s: allowed, yet:\n%s", c->name, diag);
  free(diag);
  /* the same bytes with the scale finite: no error (the check reads the scale, not the quants) */
  q[at] = 0x1f;
  q[at + 1] = 0x21;
  write_gguf(tpath("w.gguf"), t, 3);
  diag = compile_capture(tfx, GG_TFX, NULL, 0, 0, &errors, NULL, NULL);
  if (errors) fail_msg("%s: finite scales, yet:\n%s", c->name, diag);
  free(diag);
  free(q);
  free(emb);
}

/* the JIT API's option */
static void test_nonfinite_jit_api(void **state) {
  (void)state;
  write_nf_file(tpath("w.safetensors"), &nf_cases[0]);
  tfx_compile_options o;
  tfx_compile_options_init(&o);
  assert_int_equal(o.allow_nonfinite, 0);
  o.opt_level = 0;
  char *diag = NULL;
  size_t dl = 0;
  o.diagnostics = open_memstream(&diag, &dl);
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source(tpath("t.tfx"), ST_TFX, &o, &m), TFX_ERR_COMPILE);
  assert_null(m);
  fflush(o.diagnostics);
  assert_non_null(strstr(diag, "holds 2 non-finite values; the first, NaN, at element 19"));
  o.allow_nonfinite = 1;
  assert_int_equal(tfx_jit_compile_source(tpath("t.tfx"), ST_TFX, &o, &m), TFX_OK);
  assert_non_null(m);
  tfx_model_close(m);
  fclose(o.diagnostics);
  free(diag);
}

/* ==== llama2.c headers against the program ============================== */

/* dim 8, hidden 4; heads H, kv_heads G, layers L, max_seq S; OUTPUT: line 19 */
static void tiny_llama(char *buf, size_t len, int heads, int kv_heads, int layers, int max_seq, int own_output) {
  int kv_rows = 8 / heads * kv_heads;
  snprintf(buf, len,
           "const dim = 8, hidden = 4, vocab = 4, max_seq = %d\n" /* 1 */
           "weights \"w.bin\" format llama2c\n"                   /* 2 */
           "param tok_embeddings : f32[vocab, dim]\n"             /* 3 */
           "param norm : f32[dim]\n"                              /* 4 */
           "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"      /* 5 */
           "  param attention_norm : f32[dim]\n"                  /* 6 */
           "  param wq : f32[dim, dim]\n"                         /* 7 */
           "  param wk : f32[%d, dim]\n"                          /* 8 */
           "  param wv : f32[%d, dim]\n"                          /* 9 */
           "  param wo : f32[dim, dim]\n"                         /* 10 */
           "  param ffn_norm : f32[dim]\n"                        /* 11 */
           "  param w1 : f32[hidden, dim]\n"                      /* 12 */
           "  param w2 : f32[dim, hidden]\n"                      /* 13 */
           "  param w3 : f32[hidden, dim]\n"                      /* 14 */
           "  h = x + attention(rmsnorm(x, attention_norm), wq, wk, wv, wo, heads = %d, kv_heads = %d, mask = causal, "
           "position = rope())\n"                                           /* 15 */
           "  f = rmsnorm(h, ffn_norm)\n"                                   /* 16 */
           "  return h + linear(silu(linear(f, w1)) * linear(f, w3), w2)\n" /* 17 */
           "}\n"                                                            /* 18 */
           "%s\n"                                                           /* 19 */
           "forward(tokens : i32[T]) -> f32[T, vocab] {\n"                  /* 20 */
           "  x = repeat(%d) layer(embedding(tok_embeddings, tokens))\n"    /* 21 */
           "  return linear(rmsnorm(x, norm), %s)\n"                        /* 22 */
           "}\n",
           max_seq, kv_rows, kv_rows, heads, kv_heads, own_output ? "param output : f32[vocab, dim]" : "# shared",
           layers, own_output ? "output" : "tok_embeddings");
}

/* A llama2.c checkpoint for header h (its sizes from the header). */
static void write_l2c(const char *path, const int32_t h[7]) {
  int64_t D = h[0], Hd = h[1], L = h[2], hd = D / h[3], kvd = hd * h[4], V = h[5] < 0 ? -h[5] : h[5], S = h[6];
  int64_t n = V * D + L * (2 * D + 2 * D * D + 2 * kvd * D + 3 * Hd * D) + D + S * hd + (h[5] < 0 ? V * D : 0);
  size_t bytes = 28 + 4 * (size_t)n;
  uint8_t *buf = malloc(bytes);
  assert_non_null(buf);
  memcpy(buf, h, 28);
  for (int64_t i = 0; i < n; i++) {
    float v = 0.125f * (float)(i % 7) - 0.25f;
    memcpy(buf + 28 + 4 * i, &v, 4);
  }
  write_bytes(path, buf, bytes);
  free(buf);
}

typedef struct l2c_case {
  const char *name;
  int32_t header[7];                                /* dim, hidden, layers, heads, kv_heads, vocab, seq_len */
  int heads, kv_heads, layers, max_seq, own_output; /* the program */
  int errors;                                       /* expected count (0: binds) */
  const char *where, *frag1, *frag2;
} l2c_case;

#define HDR_MSG "the llama2c header does not match the program: "

static const l2c_case l2c_cases[] = {
    {"l2c: a matching header binds", {8, 4, 1, 2, 2, 4, 4}, 2, 2, 1, 4, 0, 0, NULL, NULL, NULL},
    {"l2c: a separate classifier binds", {8, 4, 1, 2, 1, -4, 4}, 2, 1, 1, 4, 1, 0, NULL, NULL, NULL},
    {"l2c: seq_len above max_seq binds", {8, 4, 2, 2, 2, 4, 16}, 2, 2, 2, 4, 0, 0, NULL, NULL, NULL},
    {"l2c: heads differ, same shapes",
     {8, 4, 1, 4, 4, 4, 4},
     2,
     2,
     1,
     4,
     0,
     2,
     "15:11",
     HDR_MSG "n_heads = 4 in the file, 2 in the program",
     "(this attention's heads; head dim 4)"},
    {"l2c: kv_heads differ, same shapes",
     {8, 4, 1, 4, 4, 4, 4},
     2,
     2,
     1,
     4,
     0,
     2,
     "15:11",
     HDR_MSG "n_kv_heads = 4 in the file, 2 in the program",
     NULL},
    {"l2c: seq_len below max_seq",
     {8, 4, 1, 2, 2, 4, 4},
     2,
     2,
     1,
     8,
     0,
     1,
     "2:9",
     HDR_MSG "seq_len = 4 in the file, but the program's max_seq = 8 is larger (at most 4)",
     NULL},
    {"l2c: shared in the file, not in the program",
     {8, 4, 1, 2, 2, 4, 4},
     2,
     2,
     1,
     4,
     1,
     1,
     "19:7",
     HDR_MSG "vocab_size = 4 in the file is positive",
     "but the program has a separate classifier param 'output'"},
    {"l2c: separate in the file, shared in the program",
     {8, 4, 1, 2, 2, -4, 4},
     2,
     2,
     1,
     4,
     0,
     1,
     "3:7",
     HDR_MSG "vocab_size = -4 in the file is negative",
     "which no param of the program binds"},
    {"l2c: dim differs (one error, not one per tensor)",
     {16, 4, 1, 2, 2, 4, 4},
     2,
     2,
     1,
     4,
     0,
     1,
     "3:7",
     HDR_MSG "dim = 16 in the file, 8 in the program",
     "(param 'tok_embeddings' f32[4, 8])"},
    {"l2c: vocab differs",
     {8, 4, 1, 2, 2, 6, 4},
     2,
     2,
     1,
     4,
     0,
     1,
     "3:7",
     HDR_MSG "vocab_size = 6 in the file (6 tokens), 4 in the program",
     NULL},
    {"l2c: more layers in the file",
     {8, 4, 3, 2, 2, 4, 4},
     2,
     2,
     2,
     4,
     0,
     1,
     "2:9",
     HDR_MSG "n_layers = 3 in the file, 2 in the program (params layers.0.* to layers.1.*)",
     NULL},
    {"l2c: more layers in the program",
     {8, 4, 1, 2, 2, 4, 4},
     2,
     2,
     3,
     4,
     0,
     1,
     "2:9",
     HDR_MSG "n_layers = 1 in the file, more than 1 in the program",
     NULL},
};

static void test_l2c(void **state) {
  const l2c_case *c = *state;
  char src[4096];
  tiny_llama(src, sizeof src, c->heads, c->kv_heads, c->layers, c->max_seq, c->own_output);
  write_l2c(tpath("w.bin"), c->header);
  const char *tfx = tpath("t.tfx");
  int errors = 0;
  char *diag = compile_capture(tfx, src, NULL, 0, 0, &errors, NULL, NULL);
  if (errors != c->errors) fail_msg("%s: %d errors, expected %d:\n%s", c->name, errors, c->errors, diag);
  if (c->where) expect_error_at(diag, tfx, c->where, c->frag1, c->frag2, c->name);
  free(diag);
}

/* ==== safetensors: overlaps, names ======================================= */

typedef struct st_case {
  const char *name;
  const char *json;
  size_t data;
  const char *frag; /* the open error, or NULL: opens */
} st_case;

static const st_case st_cases[] = {
    {"st: overlapping, in order",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}, "
     "\"b\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [16, 48]}}",
     48, "tensors 'a' and 'b' overlap: data_offsets [0, 32] and [16, 48]"},
    {"st: overlapping, out of order",
     "{\"b\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [32, 64]}, "
     "\"a\": {\"dtype\": \"F32\", \"shape\": [10], \"data_offsets\": [0, 40]}}",
     64, "tensors 'a' and 'b' overlap: data_offsets [0, 40] and [32, 64]"},
    {"st: two tensors sharing bytes",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}, "
     "\"b\": {\"dtype\": \"F16\", \"shape\": [16], \"data_offsets\": [0, 32]}}",
     32, "tensors 'a' and 'b' overlap: data_offsets [0, 32] and [0, 32]"},
    {"st: one inside another",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [0, 64]}, "
     "\"c\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [64, 80]}, "
     "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}",
     80, "tensors 'a' and 'b' overlap: data_offsets [0, 64] and [8, 16]"},
    {"st: adjacent, a gap, an empty tensor inside another: open",
     "{\"a\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}, "
     "\"b\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [32, 64]}, "
     "\"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 8]}, "
     "\"c\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [72, 80]}}",
     80, NULL},
};

static void test_st_open(void **state) {
  const st_case *c = *state;
  static const uint8_t zeros[128];
  const char *path = tpath("o.safetensors");
  write_st(path, c->json, zeros, c->data);
  tfx_wfile f;
  char err[512] = "";
  int rc = tfx_wfile_open_safetensors(path, &f, err, sizeof err);
  if (!c->frag) {
    if (rc) fail_msg("%s: %s", c->name, err);
    tfx_wfile_close(&f);
    return;
  }
  if (rc != -1 || !strstr(err, c->frag)) fail_msg("%s: rc %d, '%s' (want '%s')", c->name, rc, err, c->frag);
  assert_non_null(strstr(err, path));
}

/* names with control bytes or invalid UTF-8 are escaped in the messages */
static void test_escaped_names(void **state) {
  (void)state;
  const char *tfx = tpath("t.tfx");
  uint8_t data[4 * (128 + 8 + 32 + 4)] = {0};
  for (size_t i = 0; i < 128 + 8 + 32; i++) {
    float v = 0.5f;
    memcpy(data + 4 * i, &v, 4);
  }
  static const char *const extras[][2] = {
      {"bad\xff\xfe"
       "name",
       "tensor 'bad\\xFF\\xFEname' of"},
      {"bell\\u0007 and \\u001b[2J", "tensor 'bell\\x07 and \\x1B[2J' of"},
      {"caf\xc3\xa9 \xe2\x82\xac", "tensor 'caf\xc3\xa9 \xe2\x82\xac' of"}, /* valid UTF-8 kept */
      {"cut\xe2\x82", "tensor 'cut\\xE2\\x82' of"},
      {"overlong\xc0\xaf", "tensor 'overlong\\xC0\\xAF' of"},
  };
  for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"emb\": {\"dtype\": \"F32\", \"shape\": [16, 8], \"data_offsets\": [0, 512]}, "
             "\"g\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [512, 544]}, "
             "\"w\": {\"dtype\": \"F32\", \"shape\": [4, 8], \"data_offsets\": [544, 672]}, "
             "\"%s\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [672, 688]}}",
             extras[i][0]);
    write_st(tpath("w.safetensors"), json, data, sizeof data);
    int errors = 0;
    char *diag = compile_capture(tfx, ST_TFX, NULL, 0, 0, &errors, NULL, NULL);
    assert_int_equal(errors, 1);
    expect_error_at(diag, tfx, "2:9", extras[i][1], "is not used by any param", extras[i][0]);
    for (const unsigned char *p = (const unsigned char *)diag; *p; p++)
      if ((*p < 0x20 && *p != '\n') || *p == 0x7f || *p == 0xff || *p == 0xfe)
        fail_msg("a raw byte 0x%02X in:\n%s", *p, diag);
    free(diag);
  }
  /* GGUF names too */
  float emb[16 * 8], g[8], w[32];
  for (int i = 0; i < 128; i++) emb[i] = 0.5f;
  for (int i = 0; i < 8; i++) g[i] = 1.0f;
  for (int i = 0; i < 32; i++) w[i] = 0.25f;
  gtensor t[4] = {{"emb", 0, 16, 8, (const uint8_t *)emb, sizeof emb},
                  {"g", 0, 1, 8, (const uint8_t *)g, sizeof g},
                  {"w", 0, 4, 8, (const uint8_t *)w, sizeof w},
                  {"x\x80y\n", 0, 1, 8, (const uint8_t *)g, sizeof g}};
  write_gguf(tpath("n.gguf"), t, 4);
  int errors = 0;
  char *diag = compile_capture(tfx, ST_TFX, tpath("n.gguf"), 0, 0, &errors, NULL, NULL);
  assert_int_equal(errors, 1);
  assert_non_null(strstr(diag, "tensor 'x\\x80y\\x0A' of"));
  free(diag);
}

/* ==== the command line =================================================== */

typedef tfx_cli_case cli_case;

#define RUN_T "run", "@T", "--weights", "random"
#define TEMP_RANGE "--temperature needs 0 (greedy) or a number from 1.2e-38 to 3.4e38, got "
#define TOPP_RANGE "--top-p needs a number in (0, 1] (at least 1.2e-38), got "
#define SEED_RANGE "--seed needs an integer from 0 to 18446744073709551615, got "

static const cli_case cli_cases[] = {
    {"cli: --temperature inf", {RUN_T, "--temperature", "inf", NULL}, 2, TEMP_RANGE "'inf' (not finite)"},
    {"cli: --temperature 1e300",
     {RUN_T, "--temperature", "1e300", NULL},
     2,
     TEMP_RANGE "'1e300' (out of the range of a float)"},
    {"cli: --temperature nan", {RUN_T, "--temperature=nan", NULL}, 2, TEMP_RANGE "'nan' (not a number)"},
    {"cli: --temperature -1", {RUN_T, "--temperature", "-1", NULL}, 2, TEMP_RANGE "'-1' (negative)"},
    {"cli: --temperature 1e-300",
     {RUN_T, "--temperature", "1e-300", NULL},
     2,
     TEMP_RANGE "'1e-300' (out of the range of a float)"},
    {"cli: --temperature 0.5x", {RUN_T, "--temperature", "0.5x", NULL}, 2, TEMP_RANGE "'0.5x' (not a number)"},
    {"cli: --temperature empty", {RUN_T, "--temperature=", NULL}, 2, TEMP_RANGE "'' (an empty value)"},
    {"cli: --top-p 1e-300",
     {RUN_T, "--top-p", "1e-300", NULL},
     2,
     TOPP_RANGE "'1e-300' (below the smallest normal float)"},
    {"cli: --top-p 0", {RUN_T, "--top-p", "0", NULL}, 2, TOPP_RANGE "'0' (out of range)"},
    {"cli: --top-p 1.0001", {RUN_T, "--top-p", "1.0001", NULL}, 2, TOPP_RANGE "'1.0001' (out of range)"},
    {"cli: --top-p -inf", {RUN_T, "--top-p", "-inf", NULL}, 2, TOPP_RANGE "'-inf' (not finite)"},
    {"cli: --seed -1", {RUN_T, "--seed", "-1", NULL}, 2, SEED_RANGE "'-1' (negative)"},
    {"cli: --seed 2^64",
     {RUN_T, "--seed", "18446744073709551616", NULL},
     2,
     SEED_RANGE "'18446744073709551616' (out of range)"},
    {"cli: --seed 12x", {RUN_T, "--seed", "12x", NULL}, 2, SEED_RANGE "'12x' (not an integer)"},
    {"cli: --seed +1", {RUN_T, "--seed", "+1", NULL}, 2, SEED_RANGE "'+1' (not an integer)"},
    {"cli: --threads 65",
     {RUN_T, "--threads", "65", NULL},
     2,
     "--threads needs a number from 1 to 64, got '65' (out of range)"},
    {"cli: --threads 4x",
     {RUN_T, "--threads=4x", NULL},
     2,
     "--threads needs a number from 1 to 64, got '4x' (not an integer)"},
    {"cli: --threads overflow",
     {RUN_T, "--threads", "99999999999999999999", NULL},
     2,
     "--threads needs a number from 1 to 64, got '99999999999999999999' (out of range)"},
    {"cli: -n -3", {RUN_T, "-n", "-3", NULL}, 2, "-n needs a number from 0 to 1073741824, got '-3' (out of range)"},
    {"cli: -n with a blank",
     {RUN_T, "-n", " 5", NULL},
     2,
     "-n needs a number from 0 to 1073741824, got ' 5' (not an integer)"},
    {"cli: --steps=1e3",
     {RUN_T, "--steps=1e3", NULL},
     2,
     "--steps needs a number from 0 to 1073741824, got '1e3' (not an integer)"},
    {"cli: --prompt-ids beyond int32",
     {RUN_T, "--prompt-ids", "3 2147483648", NULL},
     2,
     "bad --prompt-ids '3 2147483648': expected token ids from 0 to 2147483647 separated by blanks or commas"},
    {"cli: --prompt-ids with trailing text", {RUN_T, "--prompt-ids", "3 4x", NULL}, 2, "bad --prompt-ids '3 4x'"},
    {"cli: -n without a value", {RUN_T, "-n", NULL}, 2, "-n needs a value"},
    {"cli: -O4 (compile)", {"@T", "-O4", NULL}, 2, "unknown option '-O4' (optimization levels: -O0, -O1, -O2, -O3)"},
    {"cli: -O (run)", {RUN_T, "-O", NULL}, 2, "unknown option '-O' (optimization levels: -O0, -O1, -O2, -O3)"},
    {"cli: --weights= (compile)", {"@T", "--weights=", NULL}, 2, "--weights: empty weights path"},
    {"cli: --weights= (run)", {"run", "@T", "--weights=", NULL}, 2, "--weights: empty weights path"},
    {"cli: --allow-nonfinite with a .so",
     {"run", "@D/m.so", "--allow-nonfinite", NULL},
     2,
     "--allow-nonfinite applies to a .tfx"},
    /* the accepted extremes run */
    {"cli: extremes accepted",
     {RUN_T, "--temperature", "3.4e38", "--top-p", "1.2e-38", "--seed", "18446744073709551615", "-n", "2"},
     0,
     NULL},
    {"cli: temperature 0, top-p 1", {RUN_T, "--temperature", "0", "--top-p", "1", "--threads", "64", NULL}, 0, NULL},
    /* non-finite weights: an error, unless allowed (compile and run) */
    {"cli: NaN weights (compile)",
     {"@N", "--stats", NULL},
     1,
     "holds 2 non-finite values; the first, NaN, at element 19, index [2, 3] (--allow-nonfinite accepts them)"},
    {"cli: NaN weights allowed (compile)", {"@N", "--stats", "--allow-nonfinite", NULL}, 0, NULL},
    {"cli: NaN weights (run)", {"run", "@N", "-n", "1", NULL}, 1, "holds 2 non-finite values"},
    {"cli: NaN weights allowed (run)",
     {"run", "@N", "-n", "1", "--allow-nonfinite", "--temperature", "0", NULL},
     0,
     NULL},
};

static const char tiny_model[] = "model tiny\n"
                                 "const dim = 16, vocab = 40, max_seq = 16\n"
                                 "param emb : f32[vocab, dim]\n"
                                 "param g : f32[dim]\n"
                                 "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
                                 "  return linear(rmsnorm(embedding(emb, tokens), g), emb)\n"
                                 "}\n";

static void test_cli(void **state) {
  static const tfx_cli_alias aliases[] = {{"@T", "tiny.tfx"}, {"@N", "nan/t.tfx"}, {NULL, NULL}};
  tfx_cli_case_run(*state, tmpdir, aliases);
}

/* ==== main =============================================================== */

/* the NaN model of the CLI rows: nan/t.tfx beside its w.safetensors */
static void write_nan_model(void) {
  char path[4200];
  snprintf(path, sizeof path, "%s/nan/w.safetensors", tmpdir);
  write_nf_file(path, &nf_cases[0]);
}

static int setup(void **state) {
  (void)state;
  tmpdir = tfx_test_tmpdir();
  if (!tmpdir) return -1;
  FILE *f = fopen(tpath("tiny.tfx"), "w");
  if (!f) return -1;
  fputs(tiny_model, f);
  fclose(f);
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/nan", tmpdir);
  if (mkdir(dir, 0700)) return -1;
  snprintf(dir, sizeof dir, "%s/nan/t.tfx", tmpdir);
  f = fopen(dir, "w");
  if (!f) return -1;
  fputs(ST_TFX, f);
  fclose(f);
  write_nan_model();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/nan", tmpdir);
  tfx_test_rmdir(dir);
  tfx_test_rmdir(tmpdir);
  free(tmpdir);
  return 0;
}

#define N_SRC (sizeof src_cases / sizeof src_cases[0])
#define N_NF (sizeof nf_cases / sizeof nf_cases[0])
#define N_GG (sizeof gg_cases / sizeof gg_cases[0])
#define N_L2C (sizeof l2c_cases / sizeof l2c_cases[0])
#define N_ST (sizeof st_cases / sizeof st_cases[0])
#define N_CLI (sizeof cli_cases / sizeof cli_cases[0])

int main(void) {
  enum { N = N_SRC + N_NF + N_GG + N_L2C + N_ST + N_CLI + 8 };
  static struct CMUnitTest tests[N];
  int n = 0;
  for (size_t i = 0; i < N_SRC; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_source, (void *)&src_cases[i]);
    tests[n++].name = src_cases[i].name;
  }
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_source_controls);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_header_names_compile);
  for (size_t i = 0; i < N_NF; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_nonfinite, (void *)&nf_cases[i]);
    tests[n++].name = nf_cases[i].name;
  }
  for (size_t i = 0; i < N_GG; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_gguf_scales, (void *)&gg_cases[i]);
    tests[n++].name = gg_cases[i].name;
  }
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_nonfinite_jit_api);
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_find_nonfinite_scan);
  for (size_t i = 0; i < N_L2C; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_l2c, (void *)&l2c_cases[i]);
    tests[n++].name = l2c_cases[i].name;
  }
  for (size_t i = 0; i < N_ST; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_st_open, (void *)&st_cases[i]);
    tests[n++].name = st_cases[i].name;
  }
  tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_escaped_names);
  for (size_t i = 0; i < N_CLI; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_cli, (void *)&cli_cases[i]);
    tests[n++].name = cli_cases[i].name;
  }
  return _cmocka_run_group_tests("input_checks", tests, (size_t)n, setup, teardown);
}
