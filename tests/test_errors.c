/* tests/test_errors.c — a table of malformed inputs, one row each, across the
 * four ways tfxc is used, each asserting the exact place and text of the
 * error it gives:
 * - source programs: `t.tfx:L:C: error: ...`, then the source line quoted
 *   and a caret under column C, plus the `note:` (with its location) where
 *   the error has a second place, and the error count where recovery matters;
 * - weights files (llama2.c and safetensors, written by the test): missing,
 *   extra, mis-shaped, wrong-dtype tensors at the param's declaration naming
 *   the param and the file's tensor; truncated or malformed files at the
 *   `weights` statement, or without a location when --weights named the file;
 * - the tfxc command line (TFXC_PATH): exit status 2 for usage errors, 1 for
 *   compile and run errors, and the message on stderr;
 * - the runtime and JIT API: the status returned, tfx_error_message's text
 *   and the detail (tfx_model_open_ex's buffer, tfx_session_last_error).
 * Every row would fail if its check were removed from tfxc. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../include/tfx/jit.h"
#include "../include/tfx/tokenizer.h"
#include "frontend.h"
#include "support/cli_cases.h"
#include "support/frontend_capture.h"
#include "support/testutil.h"

static char *tmpdir; /* per run, removed at the end */

/* ==== source programs ==================================================== */

typedef struct src_case {
  const char *name;
  const char *src;
  const char *where;    /* "L:C" of the first error */
  const char *fragment; /* part of its message */
  const char *note;     /* "L:C: note: text" that must follow, or NULL */
  int count;            /* the number of errors, or 0 (not checked) */
} src_case;

/* lines 1-4 */
#define HDR                                                                                                            \
  "model m\n"                                                                                                          \
  "const dim = 16, max_seq = 8, vocab = 32\n"                                                                          \
  "param emb : f32[vocab, dim]\n"                                                                                      \
  "param g : f32[dim]\n"
/* lines 5-6 after HDR */
#define FWD                                                                                                            \
  "forward(t : i32[T]) -> f32[T, dim] {\n"                                                                             \
  "  x = embedding(emb, t)\n"
#define END "  return x\n}\n"
#define BLOCK_B "block b(y : f32[T, dim]) -> f32[T, dim] {\n  return silu(y)\n}\n"
#define WQ "param wq : f32[dim, dim]\n"

static const src_case src_cases[] = {
    /* lexical */
    {"lex: bad character", HDR FWD "  y = x @ x\n" END, "7:9", "unexpected character '@'", NULL, 0},
    {"lex: control byte", HDR "const k = 2\x7f\n" FWD END, "5:12", "unexpected character '\\x7F'", NULL, 0},
    {"lex: unterminated string", HDR "weights \"w.bin\n" FWD END, "5:9", "unterminated string", NULL, 0},
    /* syntax, with recovery */
    {"syntax: unclosed call", HDR FWD "  y = silu(x\n  return y\n}\n", "8:3",
     "unexpected 'return', expected ')' or ','", NULL, 0},
    {"syntax: unclosed shape", HDR "param w : f32[dim\n" FWD END, "6:1", "unexpected 'forward', expected ',' or ']'",
     NULL, 0},
    {"syntax: keyword as a name", HDR "const model = 3\n" FWD END, "5:7", "unexpected 'model', expected identifier",
     NULL, 0},
    {"syntax: body without brace", HDR "forward(t : i32[T]) -> f32[T, dim]\n  return embedding(emb, t)\n}\n", "5:35",
     "unexpected end of line, expected '{'", NULL, 0},
    {"syntax: three errors, all reported", HDR "param a f32[3]\nparam b : [3]\nconst = 4\n" FWD END, "5:9",
     "unexpected identifier 'f32', expected ':'", NULL, 3},
    /* names */
    {"name: undefined, with a suggestion", HDR FWD "  return silu(xx)\n}\n", "7:15",
     "undefined name 'xx'; did you mean 'x'?", NULL, 1},
    {"name: unknown op, with a suggestion", HDR FWD "  return layernrom(x, g, g)\n}\n", "7:10",
     "unknown op or block 'layernrom'; did you mean 'layernorm'?", NULL, 1},
    {"name: a block used as a tensor", HDR BLOCK_B FWD "  return x + b\n}\n", "10:14", "'b' is a block: call it", NULL,
     1},
    {"name: a constant used as a tensor", HDR FWD "  return silu(dim)\n}\n", "7:15",
     "'dim' is a constant, not a tensor", NULL, 1},
    /* types */
    {"type: an i32 param", HDR "param k : i32[dim]\n" FWD END, "5:11", "parameters are f32 tensors, got i32", NULL, 1},
    {"type: forward returning i32", HDR "forward(t : i32[T]) -> i32[T] {\n  return t\n}\n", "5:24",
     "forward must return f32[T, N], got i32[T]", NULL, 0},
    {"type: f32 ids for embedding", HDR FWD "  return embedding(emb, x)\n}\n", "7:10", "embedding", NULL, 1},
    /* shapes: both shapes shown */
    {"shape: add", HDR "param h : f32[5]\n" FWD "  return x + h\n}\n", "8:12", "add: shapes f32[T, 16] and f32[5]",
     NULL, 1},
    {"shape: linear", HDR "param w : f32[dim, 3]\n" FWD "  return linear(x, w)\n}\n", "8:10",
     "linear: x is f32[T, 16] but w is f32[16, 3]", NULL, 1},
    {"shape: layernorm gain", HDR "param h : f32[3]\n" FWD "  return layernorm(x, h, g)\n}\n", "8:10", "f32[3]", NULL,
     1},
    {"shape: matmul", HDR "param w : f32[3, dim]\n" FWD "  return matmul(x, w)\n}\n", "8:10", "f32[T, 16]", NULL, 1},
    /* keyword arguments */
    {"kwarg: unknown, listing the allowed", HDR FWD "  return rmsnorm(x, g, epsilon = 1e-5)\n}\n", "7:24",
     "unknown keyword 'epsilon' for rmsnorm (allowed: eps)", NULL, 1},
    {"kwarg: missing required", HDR WQ FWD "  return attention(x, wq, wq, wq, wq, mask = causal)\n}\n", "8:10",
     "missing keyword 'heads'", NULL, 1},
    {"kwarg: bad enum value", HDR FWD "  return rope(x, heads = 2, style = spiral)\n}\n", "7:37",
     "bad value 'spiral' for rope's style: expected interleaved or half", NULL, 1},
    {"kwarg: non-integer heads", HDR WQ FWD "  return attention(x, wq, wq, wq, wq, heads = 1.5, mask = none)\n}\n",
     "8:47", "attention's heads must be an integer, got 1.5", NULL, 1},
    /* schedules */
    {"schedule: unknown key", HDR FWD END "schedule {\n  tile = 4\n}\n", "10:3", "unknown schedule key 'tile'", NULL,
     1},
    {"schedule: threads too many", HDR FWD END "schedule {\n  threads = 5000\n}\n", "10:13",
     "threads = 5000 is too many (at most 4096)", NULL, 1},
    {"schedule: prefetch not a multiple of 64", HDR FWD END "schedule {\n  prefetch = 100\n}\n", "10:14",
     "prefetch = 100 must be a multiple of 64 bytes in 0..65536", NULL, 1},
    {"schedule: three streams", HDR FWD END "schedule {\n  streams = 3\n}\n", "10:13",
     "streams = 3: the decode kernels read 1 or 2 weight streams (or auto)", NULL, 1},
    {"schedule: no streams", HDR FWD END "schedule {\n  streams = 0\n}\n", "10:13", "streams must be >= 1, got 0",
     NULL, 1},
    {"schedule: prefill_chunk of 0 rows", HDR FWD END "schedule {\n  prefill_chunk = 0\n}\n", "10:19",
     "prefill_chunk must be >= 1, got 0", NULL, 1},
    {"schedule: prefill_chunk too many rows", HDR FWD END "schedule {\n  prefill_chunk = 33554432\n}\n", "10:19",
     "prefill_chunk = 33554432 is too many rows (at most 16777216; none runs whole calls)", NULL, 1},
    {"schedule: bad unroll", HDR FWD END "schedule {\n  unroll = yes\n}\n", "10:12",
     "bad value for unroll: expected auto, on or off", NULL, 1},
    {"schedule: key set twice (note)", HDR FWD END "schedule {\n  threads = 2\n  threads = 4\n}\n", "11:3",
     "schedule key 'threads' is set twice", "10:3: note: previous setting of 'threads' is here", 1},
    /* quantize { } rules */
    {"quantize: duplicate rule (note)", HDR FWD END "quantize {\n  \"emb\" = q8_0\n  \"emb\" = f16\n}\n", "11:3",
     "duplicate quantize rule for \"emb\"", "10:3: note: previous rule for \"emb\" is here", 1},
    {"quantize: every bad rule reported",
     HDR FWD END "quantize {\n  \"emb\" = q2_k\n  \"\" = f16\n  \"g\" = q4_k_m\n}\n", "10:11", "unknown format 'q2_k'",
     NULL, 3},
    {"quantize: section twice (note)", HDR FWD END "quantize { \"emb\" = f16 }\nquantize { \"emb\" = bf16 }\n", "10:1",
     "duplicate 'quantize' section", "9:1: note: previous 'quantize' section is here", 1},
    {"quantize: schedule format", HDR FWD END "schedule {\n  quantize = q8\n}\n", "10:14",
     "unknown format 'q8' for quantize", NULL, 1},
    /* llm_int8(threshold = t) (issue #13) */
    {"quantize: llm_int8 threshold not positive", HDR FWD END "schedule {\n  quantize = llm_int8(threshold = 0)\n}\n",
     "10:14", "llm_int8(threshold = 0): threshold is a number > 0 (e.g. 6)", NULL, 1},
    {"quantize: llm_int8 threshold not a number", HDR FWD END "schedule {\n  quantize = llm_int8(threshold = six)\n}\n",
     "10:14", "llm_int8(threshold = six): threshold is a number > 0", NULL, 1},
    {"quantize: llm_int8 unknown key", HDR FWD END "schedule {\n  quantize = llm_int8(alpha = 0.5)\n}\n", "10:14",
     "llm_int8 takes threshold = T (e.g. llm_int8(threshold = 6)), not 'alpha = 0.5'", NULL, 1},
    {"quantize: llm_int8 in a rule", HDR FWD END "quantize {\n  \"emb\" = llm_int8(threshold = 4)\n}\n", "10:11",
     "llm_int8 is a whole-model option", NULL, 1},
    {"quantize: llm_int8 plain in a rule", HDR FWD END "quantize {\n  \"emb\" = llm_int8\n}\n", "10:11",
     "llm_int8 is a whole-model option", NULL, 1},
    /* constants */
    {"const: division by zero", HDR "const z = dim / (dim - 16)\n" FWD END, "5:15",
     "division by zero in constant expression", NULL, 1},
    {"const: T in a param", HDR "param w : f32[T, 3]\n" FWD END, "5:15",
     "T (the number of tokens) is not allowed in a parameter's shape", NULL, 1},
    {"const: missing max_seq", "const dim = 16\nparam emb : f32[4, dim]\n" FWD END, "1:1", "missing constant max_seq",
     NULL, 1},
    /* notes: the second place */
    {"note: duplicate constant", HDR "const dim = 3\n" FWD END, "5:7", "duplicate definition of constant 'dim'",
     "2:7: note: previous definition of 'dim' is here", 1},
    {"note: block argument count", HDR BLOCK_B FWD "  return b(x, x)\n}\n", "10:10",
     "block 'b' takes 1 argument, got 2", "5:7: note: block 'b' is declared here", 1},
    {"note: block argument type", HDR "block c(y : f32[T, 4]) -> f32[T, 4] {\n  return y\n}\n" FWD "  y = c(x)\n" END,
     "10:9", "argument 'y' of block 'c' is f32[T, 16], expected f32[T, 4]",
     "5:9: note: input 'y' of block 'c' is declared here", 1},
    {"note: block return type", HDR "block c(y : f32[T, dim]) -> f32[T, 4] {\n  return y\n}\n" FWD "  y = c(x)\n" END,
     "6:10", "block 'c' returns f32[T, 16], but its declared type is f32[T, 4]",
     "5:29: note: the declared return type is here", 1},
    {"note: repeat of a shape-changing block",
     HDR "block c(y : f32[T, dim]) -> f32[T, 4] {\n  return linear(y, emb)\n}\n" FWD "  return repeat(2) c(x)\n}\n",
     "10:20", "repeat needs block 'c' to return the type of its first input", "5:7: note: block 'c' is declared here",
     1},
    {"note: duplicate rename rule",
     HDR "weights \"w.safetensors\" rename {\n  \"a.{i}\" = \"x{i}\"\n  \"a.{i}\" = \"y{i}\"\n}\n" FWD END, "7:3",
     "duplicate rename rule for \"a.{i}\"", "6:3: note: the first rule for it is here", 1},
    {"rename: bad placeholder", HDR "weights \"w.safetensors\" rename {\n  \"a.{1}\" = \"x\"\n}\n" FWD END, "6:3",
     "bad rename rule: bad placeholder", NULL, 1},
};

/* The text of line `line` (1-based) of src, in a static buffer. */
static const char *source_line(const char *src, int line) {
  static char buf[512];
  const char *p = src;
  for (int l = 1; l < line && p; l++) {
    p = strchr(p, '\n');
    if (p) p++;
  }
  if (!p) return "";
  size_t n = strcspn(p, "\n");
  if (n >= sizeof buf) n = sizeof buf - 1;
  memcpy(buf, p, n);
  buf[n] = 0;
  return buf;
}

/* Checks that diag holds `prefix` + "L:C: <kind>: ...fragment..." followed by
 * the quoted line and the caret; returns the end of what it matched. */
static const char *expect_located(const char *diag, const char *file, const char *src, const char *where,
                                  const char *kind, const char *fragment, const char *case_name) {
  char head[600];
  snprintf(head, sizeof head, "%s:%s: %s: ", file, where, kind);
  const char *at = strstr(diag, head);
  if (!at) fail_msg("%s: no '%s' in:\n%s", case_name, head, diag);
  const char *eol = strchr(at, '\n');
  assert_non_null(eol);
  char *msg = strndup(at, (size_t)(eol - at));
  if (!strstr(msg, fragment)) fail_msg("%s:\n want %s...%s\n got  %s", case_name, head, fragment, msg);
  free(msg);
  int line = atoi(where), col = atoi(strchr(where, ':') + 1);
  char quoted[600];
  snprintf(quoted, sizeof quoted, "\n  %s\n", source_line(src, line));
  if (strncmp(eol, quoted, strlen(quoted)) != 0)
    fail_msg("%s: the line quoted after '%s' is wrong:\n%s", case_name, head, diag);
  const char *caret_line = eol + strlen(quoted);
  const char *caret = strchr(caret_line, '^');
  assert_non_null(caret);
  assert_int_equal((int)(caret - caret_line), 2 + col - 1);
  return caret + 1;
}

/* The frontend on src with weights (NULL: the source's own) or none. */
static char *compile_capture(const char *path, const char *src, const char *weights, int no_weights, int *errors) {
  tfx_frontend_options o = {.weights = weights, .no_weights = no_weights};
  return tfx_test_compile_capture(path, src, &o, errors, NULL, NULL);
}

static void test_source(void **state) {
  const src_case *c = *state;
  int errors = 0;
  char *diag = compile_capture("t.tfx", c->src, NULL, 1, &errors);
  if (errors < 1) fail_msg("%s: expected an error, got none:\n%s", c->name, diag);
  /* the first error is the one in the table */
  const char *first = strstr(diag, ": error: ");
  const char *line = first;
  while (line > diag && line[-1] != '\n') line--;
  char head[64];
  snprintf(head, sizeof head, "t.tfx:%s: error: ", c->where);
  if (strncmp(line, head, strlen(head)) != 0)
    fail_msg("%s: the first error is not at %s:\n%s", c->name, c->where, diag);
  const char *after = expect_located(diag, "t.tfx", c->src, c->where, "error", c->fragment, c->name);
  if (c->note) {
    char where[32], text[256];
    const char *sep = strstr(c->note, ": note: ");
    snprintf(where, sizeof where, "%.*s", (int)(sep - c->note), c->note);
    snprintf(text, sizeof text, "%s", sep + 8);
    /* the note follows its error */
    char want[64];
    snprintf(want, sizeof want, "t.tfx:%s: note: ", where);
    if (strncmp(after, "\n", 1) != 0 || strncmp(after + 1, want, strlen(want)) != 0)
      fail_msg("%s: the note '%s' does not follow the error:\n%s", c->name, c->note, diag);
    expect_located(after, "t.tfx", c->src, where, "note", text, c->name);
  }
  if (c->count && errors != c->count) fail_msg("%s: %d errors, expected %d:\n%s", c->name, errors, c->count, diag);
  free(diag);
}

/* ==== weights files ====================================================== */

/* A tiny LLaMA: dim 8, hidden HIDDEN, 1 layer, 2 heads, vocab 4, seq_len 4;
 * EXTRA is added after the norm param. */
#define TINY_TFX(WEIGHTS, HIDDEN, EXTRA, LAYER)                                                                        \
  "const dim = 8, hidden = " HIDDEN ", vocab = 4, max_seq = 4\n" /* 1 */                                               \
      WEIGHTS "\n"                                               /* 2 */                                               \
  "param tok_embeddings : f32[vocab, dim]\n"                     /* 3 */                                               \
  "param norm : f32[dim]\n"                                      /* 4 */                                               \
  "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"              /* 5 */                                               \
  "  param attention_norm : f32[dim]\n"                          /* 6 */                                               \
  "  param wq : f32[dim, dim]; param wk : f32[dim, dim]; param wv : f32[dim, dim]; param wo : f32[dim, dim]\n"         \
  "  param ffn_norm : f32[dim]\n"   /* 8 */                                                                            \
  "  param w1 : f32[hidden, dim]\n" /* 9 */                                                                            \
  "  param w2 : f32[dim, hidden]\n" /* 10 */                                                                           \
  "  param w3 : f32[hidden, dim]\n" /* 11 */                                                                           \
  "  h = x + attention(rmsnorm(x, attention_norm), wq, wk, wv, wo, heads = 2, mask = causal, position = rope())\n"     \
  "  f = rmsnorm(h, ffn_norm)\n"                                                                                       \
  "  return h + linear(silu(linear(f, w1)) * linear(f, w3), w2)\n"                                                     \
  "}\n" EXTRA "forward(tokens : i32[T]) -> f32[T, vocab] {\n"                                                          \
  "  x = embedding(tok_embeddings, tokens)\n" LAYER "  return linear(rmsnorm(x, norm), tok_embeddings)\n"              \
  "}\n"

#define L2C "weights \"w.bin\" format llama2c"
#define WITH_LAYER "  x = repeat(1) layer(x)\n"
#define WITH_EXTRA_PARAM "param extra : f32[3, dim]\nparam extra2 : f32[dim, 3]\n" /* lines 16, 17 */
#define USE_EXTRA "  x = repeat(1) layer(x) + linear(linear(x, extra), extra2)\n"

/* Writes the tiny llama2.c checkpoint: header[7] (NULL: the standard one),
 * then `floats` values (-1: the right number), then `extra` zero bytes. */
static void write_llama2c(const char *path, const int32_t *header, long floats, int extra) {
  static const int32_t std_hdr[7] = {8, 4, 1, 2, 2, 4, 4};
  const int32_t *h = header ? header : std_hdr;
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(h, sizeof(int32_t), 7, f), 7);
  long n = floats >= 0 ? floats : 4 * 8 + (8 + 4 * 64 + 8 + 3 * 32) + 8 + 4 * 4;
  for (long i = 0; i < n; i++) {
    float v = (float)(i % 7) * 0.125f;
    assert_int_equal(fwrite(&v, sizeof v, 1, f), 1);
  }
  for (int i = 0; i < extra; i++) fputc(0, f);
  fclose(f);
}

/* Writes a safetensors file: the JSON header (padded with spaces to a
 * multiple of 8 unless raw_len is given) then `data` zero bytes. raw_len
 * (when > 0) is written as the header length instead of the real one. */
static void write_safetensors(const char *path, const char *json, size_t data, uint64_t raw_len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  size_t n = strlen(json), padded = (n + 7) / 8 * 8;
  uint64_t len = raw_len ? raw_len : padded;
  unsigned char le[8];
  for (int i = 0; i < 8; i++) le[i] = (unsigned char)(len >> (8 * i));
  assert_int_equal(fwrite(le, 1, 8, f), 8);
  assert_int_equal(fwrite(json, 1, n, f), n);
  for (size_t i = n; i < padded; i++) fputc(' ', f);
  for (size_t i = 0; i < data; i++) fputc(0, f);
  fclose(f);
}

/* the safetensors model: emb [16, 8], g [8], w [4, 8] */
#define ST_TFX(WEIGHTS)                                                                                                \
  "const d = 8, max_seq = 4\n" /* 1 */                                                                                 \
      WEIGHTS "\n"             /* 2 */                                                                                 \
  "param emb : f32[16, d]\n"   /* 3 */                                                                                 \
  "param g : f32[d]\n"         /* 4 */                                                                                 \
  "param w : f32[4, d]\n"      /* 5 */                                                                                 \
  "forward(t : i32[T]) -> f32[T, 4] {\n"                                                                               \
  "  return linear(rmsnorm(embedding(emb, t), g), w)\n"                                                                \
  "}\n"

#define ST "weights \"w.safetensors\""
#define ST_EMB "\"emb\": {\"dtype\": \"F32\", \"shape\": [16, 8], \"data_offsets\": [0, 512]}"
#define ST_G "\"g\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [512, 544]}"
#define ST_W "\"w\": {\"dtype\": \"F32\", \"shape\": [4, 8], \"data_offsets\": [544, 672]}"
#define ST_GOOD "{" ST_EMB ", " ST_G ", " ST_W "}"

enum wkind { W_L2C, W_ST, W_DIR, W_NONE };

typedef struct w_case {
  const char *name;
  const char *tfx;
  enum wkind kind;
  /* llama2c: header (NULL = standard), float count (-1 = right), extra bytes */
  const int32_t *header;
  long floats;
  int extra;
  /* safetensors: JSON, data bytes, forced header length */
  const char *json;
  size_t data;
  uint64_t raw_len;
  const char *override; /* --weights FILE (in the temp dir), or NULL */
  const char *where;    /* "L:C" of the error, or NULL: no location */
  const char *frag1;    /* parts of its message */
  const char *frag2;
} w_case;

static const int32_t hdr_heads3[7] = {8, 4, 1, 3, 3, 4, 4};
static const int32_t hdr_hidden5[7] = {8, 5, 1, 2, 2, 4, 4};
static const int32_t hdr_huge[7] = {1 << 20, 1 << 20, 4096, 1, 1, -(1 << 24), 1 << 24};

static const w_case w_cases[] = {
    /* llama2.c */
    {"l2c: missing tensor", TINY_TFX(L2C, "4", WITH_EXTRA_PARAM, USE_EXTRA), W_L2C, NULL, -1, 0, NULL, 0, 0, NULL,
     "16:7", "param 'extra' f32[3, 8] not found in", "(it has: tok_embeddings, layers.0.attention_norm"},
    {"l2c: mis-shaped tensor", TINY_TFX(L2C, "5", "", WITH_LAYER), W_L2C, NULL, -1, 0, NULL, 0, 0, NULL, "9:9",
     "the llama2c header does not match the program: hidden_dim = 4 in the file, 5 in the program",
     "(param 'layers.0.w1' f32[5, 8])"},
    {"l2c: extra tensors", TINY_TFX(L2C, "4", "", ""), W_L2C, NULL, -1, 0, NULL, 0, 0, NULL, "2:9",
     "tensor 'layers.0.attention_norm' of", "is not used by any param"},
    {"l2c: truncated", TINY_TFX(L2C, "4", "", WITH_LAYER), W_L2C, NULL, 400, 0, NULL, 0, 0, NULL, "2:9",
     "truncated llama2c checkpoint", "needs 1724 bytes, file has 1628"},
    {"l2c: trailing bytes", TINY_TFX(L2C, "4", "", WITH_LAYER), W_L2C, NULL, -1, 12, NULL, 0, 0, NULL, "2:9",
     "llama2c checkpoint has 12 unexpected trailing bytes", NULL},
    {"l2c: short header", TINY_TFX(L2C, "4", "", WITH_LAYER), W_L2C, NULL, 0, 0, NULL, 0, 0, NULL, "2:9",
     "truncated llama2c header: expected at least 28 bytes, file has 10", NULL},
    {"l2c: heads do not divide dim", TINY_TFX(L2C, "4", "", WITH_LAYER), W_L2C, hdr_heads3, -1, 0, NULL, 0, 0, NULL,
     "2:9", "n_heads = 3 does not divide dim = 8", NULL},
    {"l2c: huge header, small file", TINY_TFX(L2C, "4", "", WITH_LAYER), W_L2C, hdr_huge, 16, 0, NULL, 0, 0, NULL,
     "2:9", "truncated llama2c checkpoint", "file has 92"},
    {"l2c: header of another model", TINY_TFX(L2C, "4", "", WITH_LAYER), W_L2C, hdr_hidden5, -1, 0, NULL, 0, 0, NULL,
     "2:9", "truncated llama2c checkpoint", "hidden 5"},
    {"l2c: via --weights, no location", TINY_TFX(L2C, "4", "", WITH_LAYER), W_L2C, NULL, 100, 0, NULL, 0, 0,
     "other.bin", NULL, "other.bin: truncated llama2c checkpoint", NULL},
    {"file: missing", TINY_TFX("weights \"nosuch.bin\"", "4", "", WITH_LAYER), W_NONE, NULL, 0, 0, NULL, 0, 0, NULL,
     "2:9", "nosuch.bin: cannot open: No such file or directory", NULL},
    {"file: a directory", TINY_TFX("weights \"adir.bin\"", "4", "", WITH_LAYER), W_DIR, NULL, 0, 0, NULL, 0, 0, NULL,
     "2:9", "adir.bin: is a directory", NULL},
    {"file: unknown format", TINY_TFX("weights \"w.bin\" format onnx", "4", "", WITH_LAYER), W_L2C, NULL, -1, 0, NULL,
     0, 0, NULL, "2:9", "unknown weights format 'onnx' (supported: llama2c, safetensors, gguf)", NULL},
    {"file: gguf format, llama2c file", TINY_TFX("weights \"w.bin\" format gguf", "4", "", WITH_LAYER), W_L2C, NULL, -1,
     0, NULL, 0, 0, NULL, "2:9", "w.bin: not a GGUF file (it does not start with \"GGUF\")", NULL},
    {"file: bad random seed", TINY_TFX("weights \"random:12x\"", "4", "", WITH_LAYER), W_NONE, NULL, 0, 0, NULL, 0, 0,
     NULL, "2:9", "bad weights spec 'random:12x'", NULL},
    /* safetensors */
    {"st: wrong dtype", ST_TFX(ST), W_ST, NULL, 0, 0,
     "{" ST_EMB ", \"g\": {\"dtype\": \"F64\", \"shape\": [8], \"data_offsets\": [512, 576]}, "
     "\"w\": {\"dtype\": \"F32\", \"shape\": [4, 8], \"data_offsets\": [576, 704]}}",
     704, 0, NULL, "4:7", "param 'g': tensor 'g' of", "has dtype F64, which cannot be bound"},
    {"st: mis-shaped tensor", ST_TFX(ST), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"w\": {\"dtype\": \"F32\", \"shape\": [8, 4], \"data_offsets\": [544, 672]}}", 672, 0,
     NULL, "5:7", "param 'w' is f32[4, 8] but tensor 'w' of", "is f32[8, 4]"},
    {"st: missing tensor", ST_TFX(ST), W_ST, NULL, 0, 0, "{" ST_EMB ", " ST_G "}", 544, 0, NULL, "5:7",
     "param 'w' f32[4, 8] not found in", "(it has"},
    {"st: extra tensor", ST_TFX(ST), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", " ST_W ", \"bias\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [672, 688]}}",
     688, 0, NULL, "2:9", "tensor 'bias' of", "is not used by any param"},
    {"st: renamed tensor mis-shaped", ST_TFX(ST " rename { \"lm_head.weight\" = \"w\" }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G
     ", \"lm_head.weight\": {\"dtype\": \"F32\", \"shape\": [2, 16], \"data_offsets\": [544, 672]}}",
     672, 0, NULL, "5:7", "param 'w' is f32[4, 8] but tensor 'w' (renamed from 'lm_head.weight')", "is f32[2, 16]"},
    {"st: truncated JSON", ST_TFX(ST), W_ST, NULL, 0, 0, "{" ST_EMB ", \"g\": {\"dtype\"", 0, 0, NULL, "2:9",
     "bad safetensors header: invalid JSON", NULL},
    {"st: JSON not an object", ST_TFX(ST), W_ST, NULL, 0, 0, "[1, 2, 3]", 0, 0, NULL, "2:9",
     "bad safetensors header: expected a JSON object, got", NULL},
    {"st: header length beyond the file", ST_TFX(ST), W_ST, NULL, 0, 0, ST_GOOD, 0, 100000, NULL, "2:9",
     "the header length 100000 exceeds the file size", NULL},
    {"st: offsets out of range", ST_TFX(ST), W_ST, NULL, 0, 0, ST_GOOD, 600, 0, NULL, "2:9",
     "tensor 'w': data_offsets [544, 672] are out of range", NULL},
    {"st: offsets disagree with the shape", ST_TFX(ST), W_ST, NULL, 0, 0,
     "{\"emb\": {\"dtype\": \"F32\", \"shape\": [16, 8], \"data_offsets\": [0, 500]}}", 500, 0, NULL, "2:9",
     "tensor 'emb': data_offsets [0, 500] hold 500 bytes but shape", "needs 512"},
    {"st: unknown dtype", ST_TFX(ST), W_ST, NULL, 0, 0,
     "{\"emb\": {\"dtype\": \"F128\", \"shape\": [16, 8], \"data_offsets\": [0, 512]}}", 512, 0, NULL, "2:9",
     "tensor 'emb' has unknown dtype 'F128'", NULL},
    {"st: duplicate tensor", ST_TFX(ST), W_ST, NULL, 0, 0, "{" ST_EMB ", " ST_EMB "}", 512, 0, NULL, "2:9",
     "tensor 'emb' appears twice in the header", NULL},
    {"st: missing field", ST_TFX(ST), W_ST, NULL, 0, 0, "{\"emb\": {\"dtype\": \"F32\", \"shape\": [16, 8]}}", 0, 0,
     NULL, "2:9", "tensor 'emb': missing field 'data_offsets'", NULL},
    /* binding rules (views and stacks): errors at the rule's file name (2:34) */
    {"view: slice out of range", ST_TFX(ST " rename { \"fused\"[4:12] = \"w\" }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"fused\": {\"dtype\": \"F32\", \"shape\": [8, 8], \"data_offsets\": [544, 800]}}", 800, 0,
     NULL, "2:34", "tensor 'fused' of", "slice 4:12 of axis 0 is out of range: the tensor is [8, 8]"},
    {"view: index out of range", ST_TFX(ST " rename { \"fused\".view(2, 4, 8)[:, 4] = \"w\" }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"fused\": {\"dtype\": \"F32\", \"shape\": [8, 8], \"data_offsets\": [544, 800]}}", 800, 0,
     NULL, "2:34", "tensor 'fused' of", "index 4 of axis 1 is out of range: the tensor is [2, 4, 8]"},
    {"view: transpose of a 1-D tensor", ST_TFX(ST " rename { \"fused\".T = \"w\" }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"fused\": {\"dtype\": \"F32\", \"shape\": [32], \"data_offsets\": [544, 672]}}", 672, 0,
     NULL, "2:34", "tensor 'fused' of", ".T transposes a 2-D tensor, but this one is [32]"},
    {"view: view of another element count", ST_TFX(ST " rename { \"fused\".view(3, 8) = \"w\" }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"fused\": {\"dtype\": \"F32\", \"shape\": [4, 8], \"data_offsets\": [544, 672]}}", 672, 0,
     NULL, "2:34", "tensor 'fused' of", ".view[3, 8]: the tensor [4, 8] has 32 elements, the view 24"},
    {"view: result of another shape", ST_TFX(ST " rename { \"fused\"[:, 0:4] = \"w\" }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"fused\": {\"dtype\": \"F32\", \"shape\": [4, 8], \"data_offsets\": [544, 672]}}", 672, 0,
     NULL, "2:34", "param 'w' f32[4, 8] needs f32[4, 8]", "through this rule, is f32[4, 4]"},
    {"stack: missing expert", ST_TFX(ST " rename { \"w.{e}\" = \"w\"[e] }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"w.0\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [544, 576]}, "
     "\"w.1\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [576, 608]}, "
     "\"w.3\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [608, 640]}}",
     640, 0, NULL, "2:34", "param 'w' f32[4, 8]: no tensor of", "for {e} = 2"},
    {"stack: index out of range", ST_TFX(ST " rename { \"w.{e}\" = \"w\"[e] }"), W_ST, NULL, 0, 0,
     "{" ST_EMB ", " ST_G ", \"w.0\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [544, 576]}, "
     "\"w.1\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [576, 608]}, "
     "\"w.2\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [608, 640]}, "
     "\"w.3\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [640, 672]}, "
     "\"w.4\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [672, 704]}}",
     704, 0, NULL, "2:34", "tensor 'w.4' of", "{e} = 4 is out of range: param 'w' f32[4, 8] stacks 4"},
    {"view: unknown view", ST_TFX(ST " rename { \"fused\".X = \"w\" }"), W_ST, NULL, 0, 0, ST_GOOD, 672, 0, NULL,
     "2:42", "unknown view '.X' of a file tensor", NULL},
    {"view: empty slice", ST_TFX(ST " rename { \"fused\"[4:2] = \"w\" }"), W_ST, NULL, 0, 0, ST_GOOD, 672, 0, NULL,
     "2:42", "empty slice 4:2", NULL},
    {"stack: index in the param name", ST_TFX(ST " rename { \"w.{e}\" = \"w.{e}\"[e] }"), W_ST, NULL, 0, 0, ST_GOOD,
     672, 0, NULL, "2:52", "the stack index {e} also appears in the param name", NULL},
    {"rename: '*' in the param name", ST_TFX(ST " rename { \"a.*\" = \"w*\" }"), W_ST, NULL, 0, 0, ST_GOOD, 672, 0,
     NULL, "2:42", "'*' in the param name", NULL},
    {"st: negative dimension", ST_TFX(ST), W_ST, NULL, 0, 0,
     "{\"emb\": {\"dtype\": \"F32\", \"shape\": [-16, 8], \"data_offsets\": [0, 512]}}", 512, 0, NULL, "2:9",
     "tensor 'emb': shape[0] must be a non-negative integer", NULL},
};

static void test_weights(void **state) {
  const w_case *c = *state;
  char tfx[4096], file[4096], other[4096];
  snprintf(tfx, sizeof tfx, "%s/t.tfx", tmpdir);
  snprintf(other, sizeof other, "%s/%s", tmpdir, c->override ? c->override : "");
  const char *target = c->override ? other : file;
  if (c->kind == W_L2C) {
    snprintf(file, sizeof file, "%s/w.bin", tmpdir);
    write_llama2c(file, NULL, -1, 0); /* the statement's file is a good one when --weights overrides */
    write_llama2c(target, c->header, c->floats, c->extra);
    if (c->floats == 0 && !c->header) { /* 10 bytes: shorter than the header */
      FILE *f = fopen(target, "wb");
      fwrite("0123456789", 1, 10, f);
      fclose(f);
    }
  } else if (c->kind == W_ST) {
    snprintf(file, sizeof file, "%s/w.safetensors", tmpdir);
    write_safetensors(target, c->json, c->data, c->raw_len);
  } else if (c->kind == W_DIR) {
    snprintf(file, sizeof file, "%s/adir.bin", tmpdir);
    mkdir(file, 0700);
  }
  int errors = 0;
  char *diag = compile_capture(tfx, c->tfx, c->override ? other : NULL, 0, &errors);
  if (errors < 1) fail_msg("%s: expected an error, got none:\n%s", c->name, diag);
  if (c->where) {
    const char *after = expect_located(diag, tfx, c->tfx, c->where, "error", c->frag1, c->name);
    (void)after;
  } else {
    char head[4200];
    snprintf(head, sizeof head, "%s: error: ", tfx);
    const char *at = strstr(diag, head);
    if (!at || !strstr(at, c->frag1)) fail_msg("%s: want '%s...%s' in:\n%s", c->name, head, c->frag1, diag);
  }
  /* both sides named: the second fragment is on the same line */
  if (c->frag2) {
    const char *at = strstr(diag, c->frag1);
    const char *eol = strchr(at, '\n');
    const char *f2 = strstr(at, c->frag2);
    if (!f2 || f2 > eol) fail_msg("%s: want '%s' on the line of '%s':\n%s", c->name, c->frag2, c->frag1, diag);
  }
  free(diag);
  if (c->kind == W_DIR)
    rmdir(file);
  else if (c->kind != W_NONE)
    unlink(file);
  if (c->override) unlink(other);
}

/* ==== the command line =================================================== */

typedef tfx_cli_case cli_case;

static const cli_case cli_cases[] = {
    {"cli: no arguments", {NULL}, 2, "usage: tfxc"},
    {"cli: unknown option", {"@T", "--fast", NULL}, 2, "tfxc: error: unknown option '--fast'"},
    {"cli: bad -O level", {"@T", "-O9", NULL}, 2, "tfxc: error: unknown option '-O9'"},
    {"cli: bad --emit",
     {"@T", "--emit=bytecode", NULL},
     2,
     "unknown --emit kind 'bytecode' (expected ir, llvm or asm)"},
    {"cli: two inputs", {"@T", "@T", NULL}, 2, "more than one input file"},
    {"cli: --weights without value", {"@T", "--weights", NULL}, 2, "--weights needs a value"},
    {"cli: --emit with -o", {"@T", "--emit=ir", "-o", "x.so", NULL}, 2, "--emit prints to stdout"},
    {"cli: run --threads 0", {"run", "@T", "--threads", "0", NULL}, 2, "--threads needs a number from 1 to 64"},
    {"cli: run --top-p 0", {"run", "@T", "--top-p", "0", NULL}, 2, "--top-p needs a number in (0, 1]"},
    {"cli: run --prompt-ids", {"run", "@T", "--prompt-ids", "1 -2", NULL}, 2, "bad --prompt-ids '1 -2'"},
    {"cli: run a .txt", {"run", "model.txt", NULL}, 2, "the model 'model.txt' is neither a .tfx nor a .so"},
    {"cli: source error", {"@B", "--weights", "random", NULL}, 1, "bad.tfx:3:10: error: unknown op or block 'nosuch'"},
    {"cli: missing input", {"@D/none.tfx", NULL}, 1, "cannot read '"},
    {"cli: unknown --cpu",
     {"@T", "--weights", "random", "--cpu", "pentium4", "--emit=asm", NULL},
     1,
     "unknown CPU 'pentium4'"},
    {"cli: output directory missing",
     {"@T", "--weights", "random", "-o", "@D/no/such/dir/m.so", NULL},
     1,
     "cannot write '"},
    {"cli: weights file error", {"@T", "--weights", "@D/none.bin", NULL}, 1, "none.bin: cannot open"},
    {"cli: run a token outside the vocabulary",
     {"run", "@T", "--weights", "random", "--prompt-ids", "3 40", "-n", "2", NULL},
     1,
     "forward failed: token 40 (at index 2) is outside the vocabulary [0, 40)"},
    {"cli: run a .so that is not a model", {"run", "@D/fake.so", NULL}, 1, "cannot open '"},
};

/* a causal model: its calls append to the session's KV cache */
static const char tiny_model[] = "model tiny\n"
                                 "const dim = 16, vocab = 40, max_seq = 16\n"
                                 "param emb : f32[vocab, dim]\n"
                                 "param g : f32[dim]\n"
                                 "param wq : f32[dim, dim]\n"
                                 "forward(tokens : i32[T]) -> f32[T, vocab] {\n"
                                 "  x = embedding(emb, tokens)\n"
                                 "  x = x + attention(x, wq, wq, wq, wq, heads = 2, mask = causal)\n"
                                 "  return linear(rmsnorm(x, g), emb)\n"
                                 "}\n";
static const char bad_model[] = "const max_seq = 8\n"
                                "forward(tokens : i32[T]) -> f32[T, 4] {\n"
                                "  return nosuch(tokens)\n"
                                "}\n";

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_cli(void **state) {
  static const tfx_cli_alias aliases[] = {{"@T", "tiny.tfx"}, {"@B", "bad.tfx"}, {NULL, NULL}};
  tfx_cli_case_run(*state, tmpdir, aliases);
}

/* ==== the API ============================================================ */

static tfx_model *jit_tiny; /* tiny_model, random weights */

/* A hand-made model whose entry blocks until released, to make one call run
 * while another arrives. */
static atomic_int entry_entered, entry_release;
static void blocking_entry(const void *in, int64_t n, int64_t pos, void *out, void *arena, void *kv, const void *w,
                           tfx_exec *exec) {
  (void)in, (void)n, (void)pos, (void)arena, (void)kv, (void)w, (void)exec;
  atomic_store(&entry_entered, 1);
  while (!atomic_load(&entry_release)) sched_yield();
  memset(out, 0, (size_t)n * 2 * sizeof(float));
}
static const int32_t blocking_args[] = {TFX_ARG_INPUT, TFX_ARG_NTOKENS, TFX_ARG_POS,     TFX_ARG_OUTPUT,
                                        TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};
static tfx_entry_desc blocking_entries[1] = {{"forward", (void *)blocking_entry, 1, 8, 8, blocking_args, 0, 0}};
static tfx_model_desc fake_desc(void) {
  tfx_model_desc d;
  memset(&d, 0, sizeof d);
  d.magic = TFX_DESC_MAGIC;
  d.abi_version = TFX_ABI_VERSION;
  d.name = "blocker";
  d.input_kind = TFX_INPUT_TOKENS;
  d.input_width = 1;
  d.output_width = 2;
  d.vocab = 4;
  d.max_seq = 8;
  d.has_kv_cache = 1;
  d.arena_bytes = 64;
  d.kv_bytes = 64;
  d.n_entries = 1;
  d.entries = blocking_entries;
  return d;
}

typedef struct api_result {
  int rc;
  char detail[512]; /* errbuf, tfx_session_last_error or the diagnostics */
} api_result;

typedef void (*api_fn)(api_result *r);

typedef struct api_case {
  const char *name;
  api_fn fn;
  int status;
  const char *detail; /* in r.detail, or NULL */
} api_case;

static void api_open_null(api_result *r) {
  tfx_model *m = (tfx_model *)1;
  r->rc = tfx_model_open_ex(NULL, &m, r->detail, sizeof r->detail);
  if (m) r->rc = 99; /* *out must be cleared */
}
static void api_open_missing(api_result *r) {
  tfx_model *m = NULL;
  r->rc = tfx_model_open_ex("/nonexistent/m.so", &m, r->detail, sizeof r->detail);
}
static void api_open_not_a_model(api_result *r) {
  /* the process's libm by its full path (a bare "libm.so.6" is a file of the
   * working directory, never a search of the library path) */
  char lib[4096] = "libm.so.6", line[4400];
  FILE *maps = fopen("/proc/self/maps", "r");
  while (maps && fgets(line, sizeof line, maps)) {
    char *p = strchr(line, '/');
    if (p && strstr(p, "/libm.so")) {
      p[strcspn(p, "\n")] = 0;
      snprintf(lib, sizeof lib, "%s", p);
      break;
    }
  }
  if (maps) fclose(maps);
  tfx_model *m = NULL;
  r->rc = tfx_model_open_ex(lib, &m, r->detail, sizeof r->detail);
  tfx_model_close(m);
}
static void api_open_bare_name(api_result *r) {
  tfx_model *m = NULL;
  r->rc = tfx_model_open_ex("libm.so.6", &m, r->detail, sizeof r->detail);
  tfx_model_close(m);
}
static void api_open_garbage(api_result *r) {
  char path[4200];
  snprintf(path, sizeof path, "%s/fake.so", tmpdir);
  tfx_model *m = NULL;
  r->rc = tfx_model_open_ex(path, &m, r->detail, sizeof r->detail);
}
static void api_wrong_abi(api_result *r) {
  tfx_model_desc d = fake_desc();
  d.abi_version = TFX_ABI_VERSION + 1;
  tfx_model *m = NULL;
  r->rc = tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
}
static void api_bad_magic(api_result *r) {
  tfx_model_desc d = fake_desc();
  d.magic = 0x12345678;
  tfx_model *m = NULL;
  r->rc = tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
}
static void api_bos_outside_vocab(api_result *r) {
  tfx_model_desc d = fake_desc();
  d.bos_id = d.vocab;
  tfx_model *m = NULL;
  r->rc = tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
}
static void api_tokenizer_size_without_bytes(api_result *r) {
  tfx_model_desc d = fake_desc();
  d.tokenizer_bytes = 16;
  tfx_model *m = NULL;
  r->rc = tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
}
static void api_tokenizer_not_a_tokenizer(api_result *r) {
  tfx_model_desc d = fake_desc();
  d.tokenizer = "\x01\x00";
  d.tokenizer_bytes = 2;
  tfx_model *m = NULL;
  r->rc = tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m);
  if (r->rc != TFX_OK) return;
  tfx_tokenizer *tok = (tfx_tokenizer *)1;
  r->rc = tfx_model_tokenizer(m, &tok, r->detail, sizeof r->detail);
  if (tok) r->rc = 99; /* *out must be cleared */
  tfx_model_close(m);
}
static void api_session_null_model(api_result *r) {
  tfx_session *s = NULL;
  r->rc = tfx_session_create(NULL, NULL, &s);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
}
static void api_session_negative_threads(api_result *r) {
  tfx_session_options so = {.threads = -2};
  tfx_session *s = NULL;
  r->rc = tfx_session_create(jit_tiny, &so, &s);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
  tfx_session_free(s);
}
static void api_forward_null_session(api_result *r) {
  int32_t t = 1;
  r->rc = tfx_forward(NULL, &t, 1, NULL);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_session_last_error(NULL));
}

/* Runs fn on a fresh session of the tiny model; the detail is the session's
 * last error. */
static void with_session(api_result *r, int (*fn)(tfx_session *s)) {
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(jit_tiny, NULL, &s), TFX_OK);
  r->rc = fn(s);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_session_last_error(s));
  tfx_session_free(s);
}
static int fwd_null_tokens(tfx_session *s) { return tfx_forward(s, NULL, 1, NULL); }
static int fwd_zero(tfx_session *s) {
  int32_t t = 1;
  return tfx_forward(s, &t, 0, NULL);
}
static int fwd_negative_token(tfx_session *s) {
  int32_t t[3] = {1, 2, -1};
  return tfx_forward(s, t, 3, NULL);
}
static int fwd_token_vocab(tfx_session *s) {
  int32_t t[2] = {39, 40};
  float logits[40];
  return tfx_forward(s, t, 2, logits);
}
/* fills 12 of 16 positions, then asks for 5 more; a refused call changes
 * nothing (4 still fit) */
static int fwd_beyond_room(tfx_session *s) {
  int32_t t[12] = {0};
  if (tfx_forward(s, t, 12, NULL) != TFX_OK) return 99;
  int rc = tfx_forward(s, t, 5, NULL);
  if (tfx_session_position(s) != 12) return 98;
  return rc;
}
static int fwd_after_refusal(tfx_session *s) {
  int32_t t[16] = {0};
  if (tfx_forward(s, t, 12, NULL) != TFX_OK || tfx_forward(s, t, 5, NULL) != TFX_ERR_CONTEXT_FULL) return 99;
  int rc = tfx_forward(s, t, 4, NULL); /* exactly the room left */
  if (rc == TFX_OK && tfx_session_position(s) != 16) return 98;
  return rc;
}
/* n larger than the array: the room is checked before any token is read
 * (under ASan, reading past the one-element array would be reported) */
static int fwd_n_beyond_array(tfx_session *s) {
  int32_t *one = malloc(sizeof *one);
  *one = 1;
  int rc = tfx_forward(s, one, 1000, NULL);
  free(one);
  return rc;
}
static int fwd_f32_on_tokens(tfx_session *s) {
  float x[16] = {0};
  return tfx_forward_f32(s, x, 1, NULL);
}
static void api_fwd_null_tokens(api_result *r) { with_session(r, fwd_null_tokens); }
static void api_fwd_zero(api_result *r) { with_session(r, fwd_zero); }
static void api_fwd_negative_token(api_result *r) { with_session(r, fwd_negative_token); }
static void api_fwd_token_vocab(api_result *r) { with_session(r, fwd_token_vocab); }
static void api_fwd_beyond_room(api_result *r) { with_session(r, fwd_beyond_room); }
static void api_fwd_after_refusal(api_result *r) { with_session(r, fwd_after_refusal); }
static void api_fwd_f32_on_tokens(api_result *r) { with_session(r, fwd_f32_on_tokens); }
static void api_fwd_n_beyond_array(api_result *r) { with_session(r, fwd_n_beyond_array); }

static void api_tokens_on_f32_model(api_result *r) {
  static const char enc[] = "const d = 8, max_seq = 4\nparam w : f32[d, d]\n"
                            "forward(x : f32[T, d]) -> f32[T, d] { return linear(x, w) }\n";
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = "random";
  co.opt_level = 0;
  tfx_model *m = NULL;
  assert_int_equal(tfx_jit_compile_source("enc.tfx", enc, &co, &m), TFX_OK);
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, NULL, &s), TFX_OK);
  int32_t t = 0;
  r->rc = tfx_forward(s, &t, 1, NULL);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_session_last_error(s));
  tfx_session_free(s);
  tfx_model_close(m);
}

static void api_sample_bad_top_p(api_result *r) {
  tfx_sampler sm;
  tfx_sampler_init(&sm, 1.0f, 1.5f, 1);
  float logits[4] = {0, 1, 2, 3};
  r->rc = tfx_sample(&sm, logits, 4);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
}

static void api_jit_bad_opt_level(api_result *r) {
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.opt_level = 7;
  tfx_model *m = NULL;
  r->rc = tfx_jit_compile_source("x.tfx", tiny_model, &co, &m);
  snprintf(r->detail, sizeof r->detail, "%s", tfx_error_message(r->rc));
}

/* JIT compiles with diagnostics captured into r->detail */
static void jit_capture(api_result *r, const char *src, const char *cpu) {
  char *diag = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&diag, &len);
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = "random";
  co.cpu = cpu;
  co.diagnostics = f;
  tfx_model *m = NULL;
  r->rc = tfx_jit_compile_source("x.tfx", src, &co, &m);
  fclose(f);
  snprintf(r->detail, sizeof r->detail, "%s", diag);
  free(diag);
  tfx_model_close(m);
}
static void api_jit_source_error(api_result *r) { jit_capture(r, bad_model, NULL); }
static void api_jit_bad_cpu(api_result *r) { jit_capture(r, tiny_model, "i486"); }

/* A second call on a session whose first call is running is refused. */
typedef struct blocked {
  tfx_session *s;
  int rc;
} blocked;
static void *blocked_call(void *arg) {
  blocked *b = arg;
  int32_t t[2] = {1, 2};
  b->rc = tfx_forward(b->s, t, 2, NULL);
  return NULL;
}
static void api_overlapping_call(api_result *r) {
  tfx_model_desc d = fake_desc();
  tfx_model *m = NULL;
  assert_int_equal(tfx_model_from_descriptor(&d, NULL, NULL, NULL, &m), TFX_OK);
  tfx_session_options so = {.threads = 1};
  tfx_session *s = NULL;
  assert_int_equal(tfx_session_create(m, &so, &s), TFX_OK);
  atomic_store(&entry_entered, 0);
  atomic_store(&entry_release, 0);
  blocked b = {s, -100};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, blocked_call, &b), 0);
  while (!atomic_load(&entry_entered)) sched_yield();
  int32_t t = 1;
  r->rc = tfx_forward(s, &t, 1, NULL); /* while the first call runs */
  atomic_store(&entry_release, 1);
  pthread_join(th, NULL);
  /* the first call completed; the refused one changed nothing */
  snprintf(r->detail, sizeof r->detail, "first %d, position %d", b.rc, tfx_session_position(s));
  tfx_session_free(s);
  tfx_model_close(m);
}

static const api_case api_cases[] = {
    {"api: open NULL path", api_open_null, TFX_ERR_INVALID_ARGUMENT, "tfx_model_open: NULL path or output pointer"},
    {"api: open a missing file", api_open_missing, TFX_ERR_OPEN, "cannot load '/nonexistent/m.so'"},
    {"api: open a library that is not a model", api_open_not_a_model, TFX_ERR_NOT_A_MODEL,
     "libm.so.6' is not a loadable model (truncated or corrupted?): no tfxc seal at its end"},
    {"api: a bare name is not looked up on the library path", api_open_bare_name, TFX_ERR_OPEN,
     "cannot load 'libm.so.6': No such file or directory"},
    {"api: open a file that is not a library", api_open_garbage, TFX_ERR_NOT_A_MODEL,
     "fake.so' is not a loadable model (truncated or corrupted?): no tfxc seal at its end"},
    {"api: wrong ABI version", api_wrong_abi, TFX_ERR_ABI_VERSION, "compiled for another runtime ABI version"},
    {"api: bad descriptor magic", api_bad_magic, TFX_ERR_NOT_A_MODEL, "not a tfx model"},
    {"api: BOS id outside the vocabulary", api_bos_outside_vocab, TFX_ERR_NOT_A_MODEL, "not a tfx model"},
    {"api: tokenizer size without bytes", api_tokenizer_size_without_bytes, TFX_ERR_NOT_A_MODEL, "not a tfx model"},
    {"api: embedded tokenizer that is not one", api_tokenizer_not_a_tokenizer, TFX_ERR_TOKENIZER,
     "the tokenizer embedded in 'blocker'"},
    {"api: session of NULL model", api_session_null_model, TFX_ERR_INVALID_ARGUMENT, "invalid argument"},
    {"api: negative threads", api_session_negative_threads, TFX_ERR_INVALID_ARGUMENT, "invalid argument"},
    {"api: forward on NULL session", api_forward_null_session, TFX_ERR_INVALID_ARGUMENT, "no session (NULL)"},
    {"api: NULL tokens", api_fwd_null_tokens, TFX_ERR_INVALID_ARGUMENT, "tokens is NULL"},
    {"api: n = 0", api_fwd_zero, TFX_ERR_INVALID_ARGUMENT, "n = 0: a call needs at least one token"},
    {"api: negative token id", api_fwd_negative_token, TFX_ERR_TOKEN_RANGE,
     "token -1 (at index 2) is outside the vocabulary [0, 40)"},
    {"api: token id = vocab", api_fwd_token_vocab, TFX_ERR_TOKEN_RANGE,
     "token 40 (at index 1) is outside the vocabulary [0, 40)"},
    {"api: n beyond the cache's room", api_fwd_beyond_room, TFX_ERR_CONTEXT_FULL,
     "5 tokens do not fit: the session is at position 12 of max_seq = 16 (4 left"},
    {"api: n beyond max_seq, tokens not read", api_fwd_n_beyond_array, TFX_ERR_CONTEXT_FULL,
     "1000 tokens do not fit: the session is at position 0 of max_seq = 16 (16 left"},
    {"api: the room left still fits", api_fwd_after_refusal, TFX_OK, ""},
    {"api: f32 input to a token model", api_fwd_f32_on_tokens, TFX_ERR_WRONG_INPUT,
     "model 'tiny' takes token ids, not f32 activations: use tfx_forward"},
    {"api: tokens to an f32 model", api_tokens_on_f32_model, TFX_ERR_WRONG_INPUT,
     "takes f32 activations [n, 8], not tokens: use tfx_forward_f32"},
    {"api: sampler top_p > 1", api_sample_bad_top_p, TFX_ERR_INVALID_ARGUMENT, "invalid argument"},
    {"api: JIT opt level 7", api_jit_bad_opt_level, TFX_ERR_INVALID_ARGUMENT, "invalid argument"},
    {"api: JIT source error", api_jit_source_error, TFX_ERR_COMPILE, "x.tfx:3:10: error: unknown op or block 'nosuch'"},
    {"api: JIT unknown cpu", api_jit_bad_cpu, TFX_ERR_COMPILE, "unknown CPU 'i486'"},
    {"api: overlapping call refused", api_overlapping_call, TFX_ERR_INVALID_ARGUMENT, "first 0, position 2"},
};

static void test_api(void **state) {
  const api_case *c = *state;
  api_result r;
  memset(&r, 0, sizeof r);
  c->fn(&r);
  if (r.rc != c->status || (c->detail && !strstr(r.detail, c->detail)))
    fail_msg("%s: status %d (expected %d), detail '%s' (expected '%s')", c->name, r.rc, c->status, r.detail,
             c->detail ? c->detail : "");
  /* every status has a message */
  assert_non_null(tfx_error_message(r.rc));
}

/* ==== setup ============================================================== */

static int setup(void **state) {
  (void)state;
  tmpdir = tfx_test_tmpdir();
  if (!tmpdir) return -1;
  char path[4200];
  snprintf(path, sizeof path, "%s/tiny.tfx", tmpdir);
  write_text(path, tiny_model);
  snprintf(path, sizeof path, "%s/bad.tfx", tmpdir);
  write_text(path, bad_model);
  snprintf(path, sizeof path, "%s/fake.so", tmpdir);
  write_text(path, "this is not an ELF file\n");
  tfx_compile_options co;
  tfx_compile_options_init(&co);
  co.weights = "random:5";
  return tfx_jit_compile_source("tiny.tfx", tiny_model, &co, &jit_tiny) == TFX_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  tfx_model_close(jit_tiny);
  tfx_test_rmdir(tmpdir);
  free(tmpdir);
  return 0;
}

int main(void) {
  enum {
    N_SRC = sizeof src_cases / sizeof src_cases[0],
    N_W = sizeof w_cases / sizeof w_cases[0],
    N_CLI = sizeof cli_cases / sizeof cli_cases[0],
    N_API = sizeof api_cases / sizeof api_cases[0],
    N = N_SRC + N_W + N_CLI + N_API
  };
  _Static_assert(N >= 60, "the issue asks for at least 60 malformed inputs");
  static struct CMUnitTest tests[N];
  int n = 0;
  for (int i = 0; i < N_SRC; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_source, (void *)&src_cases[i]);
    tests[n++].name = src_cases[i].name;
  }
  for (int i = 0; i < N_W; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_weights, (void *)&w_cases[i]);
    tests[n++].name = w_cases[i].name;
  }
  for (int i = 0; i < N_CLI; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_cli, (void *)&cli_cases[i]);
    tests[n++].name = cli_cases[i].name;
  }
  for (int i = 0; i < N_API; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_api, (void *)&api_cases[i]);
    tests[n++].name = api_cases[i].name;
  }
  return _cmocka_run_group_tests("errors", tests, (size_t)n, setup, teardown);
}
