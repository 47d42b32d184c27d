/* tests/test_frontend.c — the frontend: valid programs lower to the expected
 * graph (ops, attributes, param names, types), and malformed programs each
 * give one exact diagnostic (message fragment and line:col). Diagnostics
 * are captured with open_memstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "frontend.h"

/* ---- helpers ---- */

typedef struct result {
  int errors;
  tfx_graph *g;
  tfx_weights w;
  char *diag; /* everything printed */
} result;

static result compile_with(const char *path, const char *src, const char *weights, int no_weights, int max_errors) {
  result r;
  memset(&r, 0, sizeof r);
  size_t len = 0;
  FILE *f = open_memstream(&r.diag, &len);
  assert_non_null(f);
  tfx_frontend_options o = {0};
  o.no_weights = no_weights;
  o.weights = weights;
  o.diag = f;
  o.max_errors = max_errors;
  r.errors = tfx_frontend_compile(path, src, &o, &r.g, &r.w);
  fclose(f);
  return r;
}

static result compile(const char *src) { return compile_with("t.tfx", src, NULL, 1, 0); }

static void result_free(result *r) {
  tfx_graph_free(r->g);
  tfx_weights_free(&r->w);
  free(r->diag);
}

static int count_op(const tfx_graph *g, tfx_op op) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == op;
  return n;
}

static const tfx_node *param(const tfx_graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && !strcmp(g->nodes[i].name, name)) return &g->nodes[i];
  return NULL;
}

static int count_param(const tfx_graph *g, const char *name) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].op == TFX_OP_PARAM && !strcmp(g->nodes[i].name, name);
  return n;
}

static const tfx_node *first_op(const tfx_graph *g, tfx_op op) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == op) return &g->nodes[i];
  return NULL;
}

static char *type_str(const tfx_type *t) {
  static char buf[64];
  return tfx_type_str(t, buf, sizeof buf);
}

static const char *models_dir(void) {
  const char *d = getenv("TFX_MODELS_DIR");
  return d && d[0] ? d : TFX_MODELS_DIR_DEFAULT;
}

/* ---- malformed programs: the first error's location and text ---- */

/* lines 1-4 */
#define HDR                                                                                                            \
  "model m\n"                                                                                                          \
  "const dim = 64, max_seq = 16, vocab = 32, heads = 8\n"                                                              \
  "param emb : f32[vocab, dim]\n"                                                                                      \
  "param g : f32[dim]\n"
/* lines 5-6 after HDR */
#define FWD                                                                                                            \
  "forward(t : i32[T]) -> f32[T, dim] {\n"                                                                             \
  "  x = embedding(emb, t)\n"
#define END "  return x\n}\n"
/* lines 5-6: attention weights */
#define ATTN_PARAMS                                                                                                    \
  "param wq : f32[dim, dim]\n"                                                                                         \
  "param wk : f32[32, dim]\n"
#define ATTN(kw) FWD "  return attention(x, wq, wk, wk, wq, " kw ")\n}\n"

typedef struct bad_case {
  const char *name;
  const char *src;
  const char *where;    /* "line:col" of the first error */
  const char *fragment; /* part of its message */
} bad_case;

static const bad_case bad_cases[] = {
    {"bad character", HDR "const y = 3 $ 4\n" FWD END, "5:13", "unexpected character '$'"},
    {"bad byte", HDR "const y = 3\x01\n" FWD END, "5:12", "unexpected character '\\x01'"},
    {"unterminated string", HDR "weights \"abc\n" FWD END, "5:9", "unterminated string"},
    {"syntax: missing comma", HDR FWD "  y = linear(x g)\n" END, "7:16",
     "unexpected identifier 'g', expected ')' or ','"},
    {"syntax: missing colon", HDR "param w f32[3]\n" FWD END, "5:9", "unexpected identifier 'f32', expected ':'"},
    {"syntax: end of file", HDR FWD, "7:1", "unexpected end of file, expected '}' or a statement"},
    {"syntax: no expression", HDR FWD "  y = )\n" END, "7:7", "unexpected ')', expected an expression"},
    {"syntax: ';' inside parentheses", HDR FWD "  y = silu(x;)\n" END, "7:13", "unexpected ';'"},
    {"undefined name", HDR FWD "  y = silu(xx)\n" END, "7:12", "undefined name 'xx'; did you mean 'x'?"},
    {"undefined constant", HDR "param w : f32[dimm]\n" FWD END, "5:15", "undefined constant 'dimm'"},
    {"duplicate constant", HDR "const dim = 3\n" FWD END, "5:7", "duplicate definition of constant 'dim'"},
    {"duplicate param", HDR "param g : f32[2]\n" FWD END, "5:7", "duplicate definition of parameter 'g'"},
    {"duplicate block",
     HDR "block b(y : f32[T, dim]) -> f32[T, dim] { return y }\n"
         "block b(y : f32[T, dim]) -> f32[T, dim] { return y }\n" FWD END,
     "6:7", "duplicate definition of block 'b'"},
    {"duplicate local param",
     HDR
     "block b(y : f32[T, dim]) -> f32[T, dim] {\n  param w : f32[dim]\n  param w : f32[dim]\n  return y\n}\n" FWD END,
     "7:9", "duplicate definition of 'w'"},
    {"block named like an op", HDR "block silu(y : f32[T, dim]) -> f32[T, dim] { return y }\n" FWD END, "5:7",
     "'silu' is a builtin op"},
    {"unknown op", HDR FWD "  return rmsnrom(x, g)\n}\n", "7:10",
     "unknown op or block 'rmsnrom'; did you mean 'rmsnorm'?"},
    {"unknown keyword", HDR FWD "  return rmsnorm(x, g, epsilon = 1e-5)\n}\n", "7:24",
     "unknown keyword 'epsilon' for rmsnorm (allowed: eps)"},
    {"keyword given twice", HDR FWD "  return rmsnorm(x, g, eps = 1e-5, eps = 1e-6)\n}\n", "7:36",
     "keyword 'eps' is given twice"},
    {"missing argument", HDR FWD "  return rmsnorm(x)\n}\n", "7:10",
     "missing argument 'g' of rmsnorm(x, g, eps = 1e-5)"},
    {"too many arguments", HDR FWD "  return silu(x, x)\n}\n", "7:18", "too many arguments: silu takes 1 positional"},
    {"positional after keyword", HDR FWD "  return rmsnorm(x, eps = 1e-5, g)\n}\n", "7:33",
     "positional argument after keyword arguments"},
    {"shape mismatch in +", HDR "param h : f32[3]\n" FWD "  return x + h\n}\n", "8:12",
     "add: shapes f32[T, 64] and f32[3] do not match"},
    {"linear in-dim mismatch", HDR "param w : f32[dim, 3]\n" FWD "  return linear(x, w)\n}\n", "8:10",
     "linear: x is f32[T, 64] but w is f32[64, 3]"},
    {"rmsnorm gain shape", HDR "param h : f32[3]\n" FWD "  return rmsnorm(x, h)\n}\n", "8:10",
     "rmsnorm: gain is f32[3], expected f32[64]"},
    {"T in a param", HDR "param w : f32[T, 3]\n" FWD END, "5:15",
     "T (the number of tokens) is not allowed in a parameter's shape"},
    {"T not first", HDR "block b(y : f32[dim, T]) -> f32[T, dim] { return y }\n" FWD END, "5:22",
     "T (the number of tokens) can only be the first dimension"},
    {"non-integer dim", HDR "param w : f32[dim / 2.5]\n" FWD END, "5:19", "a dimension must be an integer, got 25.6"},
    {"zero dim", HDR "param w : f32[dim - 64]\n" FWD END, "5:19", "a dimension must be positive, got 0"},
    {"unknown dtype", HDR "param w : f16[dim]\n" FWD END, "5:11", "unknown element type 'f16' (expected f32 or i32)"},
    {"division by zero in const", HDR "const z = dim / (dim - 64)\n" FWD END, "5:15",
     "division by zero in constant expression"},
    {"integer overflow in const", HDR "const z = 4611686018427387904 * 4\n" FWD END, "5:31",
     "integer overflow in constant expression"},
    {"const used before definition", "const a = b + 1, b = 2\n" HDR FWD END, "1:11",
     "constant 'b' is used before its definition"},
    {"T as a constant", HDR "const T = 4\n" FWD END, "5:7", "'T' is reserved"},
    {"missing max_seq", "model m\nconst dim = 64, vocab = 32\nparam emb : f32[vocab, dim]\n" FWD END, "1:1",
     "missing constant max_seq"},
    {"missing forward", HDR, "1:1", "missing forward"},
    {"two forwards", HDR FWD END FWD END, "9:1", "duplicate forward"},
    {"forward extra input of two dims",
     HDR "forward(t : i32[T], u : f32[T, 4]) -> f32[T, dim] { return embedding(emb, t) }\n", "5:25",
     "forward input 'u' must be i32[T] (per-row ids, a key mask) or f32[T] (a key mask), or a source i32[N] / f32[N] "
     "of up to N rows per call, got f32[T, 4]"},
    {"forward input without T", HDR "forward(t : i32[4]) -> f32[4, dim] { return embedding(emb, t) }\n", "5:13",
     "the forward input must be i32[T] (token ids) or f32[T, D], got i32[4]"},
    {"wrong block return type",
     HDR "block b(y : f32[T, dim]) -> f32[T, dim] {\n  return linear(y, emb)\n}\n" FWD "  return b(x)\n}\n", "6:10",
     "block 'b' returns f32[T, 32], but its declared type is f32[T, 64]"},
    {"wrong forward return type", HDR "forward(t : i32[T]) -> f32[T, vocab] {\n  return embedding(emb, t)\n}\n", "6:10",
     "forward returns f32[T, 64], but its declared type is f32[T, 32]"},
    {"block without return", HDR "block b(y : f32[T, dim]) -> f32[T, dim] {\n  z = y\n}\n" FWD END, "7:1",
     "block 'b' has no return statement"},
    {"statement after return", HDR FWD "  return x\n  y = x\n}\n", "8:3", "statement after return"},
    {"block argument type", HDR "block b(y : f32[T, 32]) -> f32[T, 32] { return y }\n" FWD "  return b(x)\n}\n", "8:12",
     "argument 'y' of block 'b' is f32[T, 64], expected f32[T, 32]"},
    {"block argument count", HDR "block b(y : f32[T, dim]) -> f32[T, dim] { return y }\n" FWD "  return b(x, x)\n}\n",
     "8:10", "block 'b' takes 1 argument, got 2"},
    {"assignment to a param", HDR FWD "  g = x\n" END, "7:3", "cannot assign to 'g': it is a parameter"},
    {"constant as a tensor", HDR FWD "  return dim\n}\n", "7:10", "'dim' is a constant, not a tensor"},
    {"constant expression as a tensor", HDR FWD "  return 2 * dim\n}\n", "7:12",
     "expected a tensor, got a constant expression"},
    {"tensor divided by a tensor", HDR FWD "  return x / x\n}\n", "7:12", "'/' divides a tensor by a constant"},
    {"tensor divided by zero", HDR FWD "  return x / (dim - 64)\n}\n", "7:19", "division of a tensor by zero"},
    {"sqrt of a negative number", HDR "const z = sqrt(1 - dim)\n" FWD END, "5:18", "sqrt of a negative number"},
    {"sqrt with two arguments", HDR "const z = sqrt(1, 2)\n" FWD END, "5:11", "sqrt takes one argument"},
    {"tensor arithmetic shape", HDR FWD "  return x * 2 + g * emb\n}\n", "7:20", "mul: shapes f32[64] and f32[32, 64]"},
    {"positions offset too large", HDR "param pt : f32[20, dim]\n" FWD "  return x + positions(pt, t, offset = 5)\n}\n",
     "8:14", "the table f32[20, 64] has 20 rows but max_seq is 16 and the offset > 0"},
    {"positions offset negative", HDR "param pt : f32[20, dim]\n" FWD "  return x + positions(pt, t, offset = -1)\n}\n",
     "8:40", "positions's offset must be >= 0, got -1"},
    {"bad mask value", HDR ATTN_PARAMS ATTN("heads = 8, kv_heads = 4, mask = causall"), "9:71",
     "bad value 'causall' for attention's mask: expected causal or none"},
    {"missing mask", HDR ATTN_PARAMS ATTN("heads = 8, kv_heads = 4"), "9:10",
     "missing keyword 'mask' of attention (causal or none)"},
    {"heads not dividing", HDR ATTN_PARAMS ATTN("heads = 3, mask = none"), "9:10",
     "attention: heads = 3 does not divide the rows of wq f32[64, 64]"},
    {"kv_heads not dividing", HDR ATTN_PARAMS ATTN("heads = 8, kv_heads = 3, mask = none"), "9:10",
     "attention: kv_heads = 3 must divide heads = 8"},
    {"attention wk rows", HDR ATTN_PARAMS ATTN("heads = 8, mask = none"), "9:10",
     "attention: wk is f32[32, 64], expected 64 rows"},
    {"bad position", HDR ATTN_PARAMS ATTN("heads = 8, kv_heads = 4, mask = none, position = xpos"), "9:88",
     "bad value for attention's position"},
    {"heads not an integer", HDR ATTN_PARAMS ATTN("heads = 2.5, mask = none"), "9:47",
     "attention's heads must be an integer, got 2.5"},
    {"gelu bad approximate", HDR FWD "  return gelu(x, approximate = fast)\n}\n", "7:32",
     "bad value 'fast' for gelu's approximate: expected none or tanh"},
    {"schedule unknown key", HDR FWD END "schedule {\n  tiles = 4\n}\n", "10:3", "unknown schedule key 'tiles'"},
    {"schedule bad attention", HDR FWD END "schedule {\n  attention = sparse\n}\n", "10:15",
     "bad value for attention: expected auto, dense, flash or block_sparse"},
    {"schedule flash with tiles", HDR FWD END "schedule {\n  attention = flash(q_tile = 32)\n}\n", "10:15",
     "attention = flash(...) takes no tile sizes"},
    {"schedule unsupported quantize", HDR FWD END "schedule {\n  quantize = int8\n}\n", "10:14",
     "quantize = int8 is not supported yet (supported: f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, w8a8, llm_int8, "
     "gptq, "
     "zeroquant, "
     "tq2_0, "
     "ternary, "
     "sparse24(f32), sparse24(q8_0), q4_k_m or none)"},
    {"schedule unknown quantize format", HDR FWD END "schedule {\n  quantize = q5_k\n}\n", "10:14",
     "unknown format 'q5_k' for quantize (expected f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, w8a8, llm_int8, "
     "gptq, "
     "zeroquant, "
     "tq2_0, "
     "ternary, "
     "sparse24(f32), sparse24(q8_0), q4_k_m or none)"},
    {"schedule quantize not a name", HDR FWD END "schedule {\n  quantize = 8\n}\n", "10:14",
     "bad value for quantize: expected f16"},
    {"schedule bad activations", HDR FWD END "schedule {\n  activations = int4\n}\n", "10:17",
     "bad value for activations: expected q8"},
    {"quantize rule unknown format", HDR FWD END "quantize {\n  \"emb\" = q5_1\n}\n", "10:11",
     "unknown format 'q5_1' (expected f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, w8a8, gptq, zeroquant, tq2_0, "
     "ternary, "
     "sparse24(f32), "
     "sparse24(q8_0) or none)"},
    {"quantize rule with the preset", HDR FWD END "quantize {\n  \"emb\" = q4_k_m\n}\n", "10:11",
     "q4_k_m is a preset for the whole model"},
    {"quantize empty pattern", HDR FWD END "quantize {\n  \"\" = q8_0\n}\n", "10:3", "bad pattern \"\""},
    {"quantize pattern with a blank", HDR FWD END "quantize { \"layers.* w2\" = q8_0 }\n", "9:12",
     "bad pattern \"layers.* w2\""},
    {"quantize duplicate rule", HDR FWD END "quantize {\n  \"emb\" = q8_0, \"e*\" = f16\n  \"emb\" = f16\n}\n", "11:3",
     "duplicate quantize rule for \"emb\""},
    {"quantize pattern matching nothing", HDR FWD END "quantize {\n  \"emb\" = none\n  \"layers.*.w9\" = q8_0\n}\n",
     "11:3", "quantize rule \"layers.*.w9\" matches no param"},
    {"quantize section twice", HDR FWD END "quantize { \"emb\" = f16 }\nquantize { \"g\" = f16 }\n", "10:1",
     "duplicate 'quantize' section"},
    {"quantize rule syntax", HDR FWD END "quantize {\n  emb = q8_0\n}\n", "10:3", "unexpected identifier 'emb'"},
    {"schedule bad value", HDR FWD END "schedule {\n  attention = fast\n}\n", "10:15", "bad value for attention"},
    {"schedule bad threads", HDR FWD END "schedule {\n  threads = 0\n}\n", "10:13", "threads must be >= 1, got 0"},
    {"schedule key twice", HDR FWD END "schedule {\n  threads = 2\n  threads = 4\n}\n", "11:3",
     "schedule key 'threads' is set twice"},
    {"repeat of an op", HDR FWD "  return repeat(2) silu(x)\n}\n", "7:20",
     "repeat needs a block; 'silu' is a builtin op"},
    {"repeat count zero",
     HDR "block b(y : f32[T, dim]) -> f32[T, dim] { return y }\n" FWD "  return repeat(0) b(x)\n}\n", "8:17",
     "the repeat count must be >= 1, got 0"},
    {"repeat count too large",
     HDR "block b(y : f32[T, dim]) -> f32[T, dim] { return y }\n" FWD "  return repeat(100000) b(x)\n}\n", "8:17",
     "the repeat count 100000 is too large"},
    {"repeat of a shape-changing block",
     HDR "block b(y : f32[T, dim]) -> f32[T, 32] { return linear(y, emb) }\n" FWD "  return repeat(2) b(x)\n}\n",
     "8:20", "repeat needs block 'b' to return the type of its first input"},
    {"recursion", HDR "block b(y : f32[T, dim]) -> f32[T, dim] {\n  return b(y)\n}\n" FWD "  return b(x)\n}\n", "6:10",
     "block 'b' calls itself"},
    {"integer literal too large", HDR "const z = 99999999999999999999\n" FWD END, "5:11", "integer literal"},
};

static void test_bad_program(void **state) {
  const bad_case *c = *state;
  result r = compile(c->src);
  char want[128];
  snprintf(want, sizeof want, "t.tfx:%s: error: ", c->where);
  /* the first error line */
  const char *first = strstr(r.diag, ": error: ");
  if (r.errors < 1 || !first) fail_msg("%s: expected an error, got none:\n%s", c->name, r.diag);
  const char *line = first;
  while (line > r.diag && line[-1] != '\n') line--;
  const char *eol = strchr(line, '\n');
  size_t n = eol ? (size_t)(eol - line) : strlen(line);
  char *msg = strndup(line, n);
  if (strncmp(msg, want, strlen(want)) || !strstr(msg, c->fragment))
    fail_msg("%s:\n want %s...%s\n got  %s\n(all: %s)", c->name, want, c->fragment, msg, r.diag);
  /* followed by the source line and a caret under the column (none at the
   * end of the file, where there is no line to quote) */
  assert_non_null(eol);
  if (strstr(c->fragment, "unexpected end of file")) {
    assert_string_equal(eol, "\n");
    free(msg);
    result_free(&r);
    return;
  }
  const char *caret_line = strchr(eol + 1, '\n');
  assert_non_null(caret_line);
  int col = atoi(strchr(c->where, ':') + 1);
  const char *caret = strchr(caret_line + 1, '^');
  assert_non_null(caret);
  assert_int_equal((int)(caret - (caret_line + 1)), 2 + col - 1); /* two spaces of indent */
  assert_null(r.g);
  free(msg);
  result_free(&r);
}

/* ---- valid programs ---- */

/* examples/llama/stories260k.tfx lowers to the llama2.c graph. */
static void test_stories260k_graph(void **state) {
  (void)state;
  result r = compile_with(TFX_SOURCE_DIR "/examples/llama/stories260k.tfx", NULL, NULL, 1, 0);
  if (r.errors) fail_msg("%s", r.diag);
  tfx_graph *g = r.g;
  assert_non_null(g);
  assert_string_equal(g->name, "stories260k");
  assert_int_equal(g->max_seq, 512);
  assert_int_equal(g->schedule.threads, 0);
  assert_string_equal(type_str(&g->nodes[g->output].type), "f32[T, 512]");
  assert_string_equal(type_str(&g->nodes[g->input].type), "i32[T]");
  assert_string_equal(g->nodes[g->input].name, "tokens");
  assert_int_equal(count_op(g, TFX_OP_ATTENTION), 5);
  assert_int_equal(count_op(g, TFX_OP_ROPE), 10);
  assert_int_equal(count_op(g, TFX_OP_RMSNORM), 11);
  assert_int_equal(count_op(g, TFX_OP_LINEAR), 5 * 7 + 1);
  assert_int_equal(count_op(g, TFX_OP_PARAM), 1 + 5 * 9 + 1);
  assert_int_equal(count_param(g, "tok_embeddings"), 1); /* tied: one node used twice */
  const tfx_node *w3 = param(g, "layers.4.w3");
  assert_non_null(w3);
  assert_string_equal(type_str(&w3->type), "f32[172, 64]");
  assert_int_equal(w3->line, 29); /* its declaration in the block */
  assert_string_equal(type_str(&param(g, "layers.0.wk")->type), "f32[32, 64]");
  assert_non_null(param(g, "layers.2.attention_norm"));
  assert_non_null(param(g, "norm"));
  assert_null(param(g, "layers.5.wq"));
  const tfx_node *a = first_op(g, TFX_OP_ATTENTION);
  assert_int_equal(a->heads, 8);
  assert_int_equal(a->kv_heads, 4);
  assert_int_equal(a->head_dim, 8);
  assert_int_equal(a->mask, TFX_MASK_CAUSAL);
  const tfx_node *rope = first_op(g, TFX_OP_ROPE);
  assert_int_equal(rope->heads, 8);
  assert_int_equal(rope->head_dim, 8);
  assert_int_equal(rope->rotary_dim, 8);
  assert_true(rope->theta == 10000.0);
  assert_int_equal(rope->rope_style, TFX_ROPE_INTERLEAVED);
  assert_true(first_op(g, TFX_OP_RMSNORM)->eps == 1e-5);
  /* the classifier reads the embedding table */
  const tfx_node *out = &g->nodes[g->output];
  assert_int_equal(out->op, TFX_OP_LINEAR);
  assert_string_equal(g->nodes[out->inputs[1]].name, "tok_embeddings");
  char err[256];
  assert_int_equal(tfx_verify(g, 0, err, sizeof err), 0);
  result_free(&r);
}

/* With the real checkpoint: --weights binds every param; the example's
 * weights statement resolves next to the .tfx file. */
static void check_stories_weights(result *r, const float *first) {
  if (r->errors) fail_msg("%s", r->diag);
  assert_true(r->w.size >= 1040128);
  const tfx_node *emb = param(r->g, "tok_embeddings");
  assert_true(emb->weight_offset >= 0);
  float got[2];
  memcpy(got, r->w.data + emb->weight_offset, sizeof got);
  assert_memory_equal(got, first, sizeof got);
  for (int i = 0; i < r->g->n_nodes; i++)
    if (r->g->nodes[i].op == TFX_OP_PARAM) assert_true(r->g->nodes[i].weight_offset >= 0);
}

static void test_stories260k_weights(void **state) {
  (void)state;
  char bin[1024];
  snprintf(bin, sizeof bin, "%s/stories260K.bin", models_dir());
  FILE *f = fopen(bin, "rb");
  if (!f) skip();
  float first[2];
  assert_int_equal(fseek(f, 28, SEEK_SET), 0); /* after the 7-int header: token_embedding[0][0..1] */
  assert_int_equal(fread(first, sizeof first[0], 2, f), 2);
  fclose(f);
  const char *path = TFX_SOURCE_DIR "/examples/llama/stories260k.tfx";
  result r = compile_with(path, NULL, bin, 0, 0);
  check_stories_weights(&r, first);
  result_free(&r);
  f = fopen(TFX_MODELS_DIR_DEFAULT "/stories260K.bin", "rb"); /* where the statement points */
  if (!f) return;
  fclose(f);
  r = compile_with(path, NULL, NULL, 0, 0);
  check_stories_weights(&r, first);
  result_free(&r);
}

/* An encoder-style program with an f32 input exercises the other ops and
 * attributes. */
static void test_f32_input_ops(void **state) {
  (void)state;
  const char *src =
      "model enc\n"
      "const d = 16, max_seq = 8, ff = 4 * d, eps = 1e-6\n"
      "param ln_g : f32[d]\nparam ln_b : f32[d]\n"
      "param wq : f32[d, d]; param wk : f32[d, d]; param wv : f32[d, d]; param wo : f32[d, d]\n"
      "param bq : f32[d]\n"
      "param w_up : f32[ff, d]; param b_up : f32[ff]; param w_down : f32[d, ff]\n"
      "param m : f32[d, d]\n"
      "forward(x : f32[T, d]) -> f32[T, d] {\n"
      "  h = layernorm(x, ln_g, ln_b, eps = eps)\n"
      "  h = x + attention(h, wq, wk, wv, wo, heads = 2, mask = none, bq = bq,\n"
      "                    position = rope(theta = 500000.0, style = half, rotary_dim = 4))\n"
      "  u = gelu(linear(h, w_up, b_up), approximate = tanh)\n"
      "  h = h - linear(relu(u) * gelu(u), w_down)\n"
      "  return softmax(matmul(rope(h, heads = 4), m))\n"
      "}\n"
      "schedule { threads = 3; attention = dense; prefetch = 4096; unroll = on; prefill_chunk = 2 * 64; streams = 2 "
      "}\n";
  result r = compile(src);
  if (r.errors) fail_msg("%s", r.diag);
  tfx_graph *g = r.g;
  assert_string_equal(g->name, "enc");
  assert_int_equal(g->max_seq, 8);
  assert_int_equal(g->schedule.threads, 3);
  assert_int_equal(g->schedule.prefetch, 4096);
  assert_int_equal(g->schedule.unroll, TFX_SCHED_UNROLL_ON);
  assert_int_equal(g->schedule.prefill_chunk, 128);
  assert_int_equal(g->schedule.streams, 2);
  assert_string_equal(type_str(&g->nodes[g->input].type), "f32[T, 16]");
  assert_string_equal(type_str(&g->nodes[g->output].type), "f32[T, 16]");
  assert_int_equal(g->nodes[g->output].op, TFX_OP_SOFTMAX);
  const tfx_node *ln = first_op(g, TFX_OP_LAYERNORM);
  assert_true(ln->eps == 1e-6);
  const tfx_node *a = first_op(g, TFX_OP_ATTENTION);
  assert_int_equal(a->heads, 2);
  assert_int_equal(a->kv_heads, 2); /* defaults to heads */
  assert_int_equal(a->head_dim, 8);
  assert_int_equal(a->mask, TFX_MASK_NONE);
  const tfx_node *q = &g->nodes[a->inputs[0]];
  assert_int_equal(q->op, TFX_OP_ROPE);
  assert_int_equal(q->rope_style, TFX_ROPE_HALF);
  assert_int_equal(q->rotary_dim, 4);
  assert_true(q->theta == 500000.0);
  assert_int_equal(g->nodes[q->inputs[0]].n_inputs, 3);       /* linear with the bias bq */
  assert_int_equal(g->nodes[a->inputs[2]].op, TFX_OP_LINEAR); /* v: no rope */
  assert_int_equal(count_op(g, TFX_OP_GELU), 2);
  int tanh_forms = 0;
  for (int i = 0; i < g->n_nodes; i++) tanh_forms += g->nodes[i].op == TFX_OP_GELU && g->nodes[i].gelu_tanh;
  assert_int_equal(tanh_forms, 1);
  assert_int_equal(count_op(g, TFX_OP_RELU), 1);
  assert_int_equal(count_op(g, TFX_OP_SUB), 1);
  assert_int_equal(count_op(g, TFX_OP_MUL), 1);
  assert_int_equal(count_op(g, TFX_OP_MATMUL), 1);
  assert_int_equal(count_op(g, TFX_OP_ROPE), 3);
  const tfx_node *standalone = &g->nodes[first_op(g, TFX_OP_MATMUL)->inputs[0]];
  assert_int_equal(standalone->op, TFX_OP_ROPE);
  assert_int_equal(standalone->heads, 4);
  assert_int_equal(standalone->head_dim, 4);
  assert_int_equal(standalone->rotary_dim, 4);
  assert_true(standalone->theta == 10000.0);
  assert_int_equal(standalone->rope_style, TFX_ROPE_INTERLEAVED);
  result_free(&r);
}

/* Parameter names: repeat (default and custom prefix), a plain call, a
 * prefix = "..." call, prefix = "" and nested blocks. */
static void test_param_naming(void **state) {
  (void)state;
  const char *src = "const d = 8, max_seq = 4\n"
                    "param e : f32[16, d]\n"
                    "block mlp(y : f32[T, d]) -> f32[T, d] {\n  param w : f32[d, d]\n  return linear(y, w)\n}\n"
                    "block layer(y : f32[T, d]) -> f32[T, d] {\n  param g : f32[d]\n  return mlp(rmsnorm(y, g))\n}\n"
                    "forward(t : i32[T]) -> f32[T, d] {\n"
                    "  x = embedding(e, t)\n"
                    "  x = repeat(2) layer(x)\n"
                    "  x = repeat(1, prefix = \"enc.h\") layer(x)\n"
                    "  x = layer(x)\n"
                    "  x = layer(x)\n" /* the same instance name: shares layer.* */
                    "  x = mlp(x, prefix = \"head\")\n"
                    "  return mlp(x, prefix = \"\")\n"
                    "}\n";
  result r = compile_with("dir/my-model.v2.tfx", src, NULL, 1, 0);
  if (r.errors) fail_msg("%s", r.diag);
  const char *names[] = {"e",         "layers.0.g",    "layers.0.mlp.w", "layers.1.g",  "layers.1.mlp.w",
                         "enc.h.0.g", "enc.h.0.mlp.w", "layer.g",        "layer.mlp.w", "head.w",
                         "w"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (count_param(r.g, names[i]) != 1) fail_msg("param %s: %d nodes", names[i], count_param(r.g, names[i]));
  }
  assert_int_equal(count_op(r.g, TFX_OP_PARAM), (int)(sizeof names / sizeof names[0]));
  assert_int_equal(count_op(r.g, TFX_OP_LINEAR), 7);
  assert_string_equal(r.g->name, "my_model"); /* no model statement: the file's name */
  result_free(&r);
}

/* Constant expressions: integer division, precedence, unary minus, floats,
 * parentheses, references to earlier constants. */
static void test_const_exprs(void **state) {
  (void)state;
  const char *src = "model c\n"
                    "const a = 7 / 2, b = (a + 1) * 2 - -1, c = 2 + 3 * 4, d = b * 2 / 3\n"
                    "const max_seq = c * 10, e = 1.5e-3 * 2, f = 10 / 4.0\n"
                    "param w : f32[a, b]\nparam g : f32[a]\nparam v : f32[c, a]\nparam u : f32[d, c]\n"
                    "forward(x : f32[T, b]) -> f32[T, d] {\n"
                    "  return linear(linear(rmsnorm(linear(x, w), g, eps = e), v), u)\n"
                    "}\n";
  result r = compile(src);
  if (r.errors) fail_msg("%s", r.diag);
  assert_string_equal(type_str(&param(r.g, "w")->type), "f32[3, 9]");
  assert_string_equal(type_str(&param(r.g, "v")->type), "f32[14, 3]");
  assert_string_equal(type_str(&param(r.g, "u")->type), "f32[6, 14]");
  assert_int_equal(r.g->max_seq, 140);
  assert_true(first_op(r.g, TFX_OP_RMSNORM)->eps == 3e-3);
  result_free(&r);
}

/* Lexical details: comments, ';' separators, statements spanning lines
 * inside parentheses or after an operator, trailing commas, and a tab
 * counting as one column. */
static void test_lexical(void **state) {
  (void)state;
  const char *ok = "# a comment line\n"
                   "const d = 8, max_seq = 4 ; const v = 3 # trailing comment\n"
                   "param e : f32[\n  v,\n  d\n]\n"
                   "forward(t : i32[T]) -> f32[T, d] {\n"
                   "\n  x = embedding(e,\n     t)   # continues\n"
                   "  y = x +\n      x\n"
                   "  return y }";
  result r = compile(ok);
  if (r.errors) fail_msg("%s", r.diag);
  assert_int_equal(count_op(r.g, TFX_OP_ADD), 1);
  result_free(&r);

  result t = compile("const d = 8, max_seq = 4\n\t\tparam w : f32[x]\n");
  assert_non_null(strstr(t.diag, "t.tfx:2:17: error: undefined constant 'x'"));
  assert_non_null(strstr(t.diag, "\n  \t\t              ^\n")); /* tabs repeated under the line */
  result_free(&t);
}

/* Several errors in one run; max_errors stops the count. */
static void test_many_errors(void **state) {
  (void)state;
  const char *src = HDR FWD "  y = silu(a)\n  z = silu(b)\n  w = silu(c)\n" END "param p : f32[T]\n";
  result r = compile(src);
  assert_int_equal(r.errors, 4);
  assert_non_null(strstr(r.diag, "t.tfx:7:12: error: undefined name 'a'"));
  assert_non_null(strstr(r.diag, "t.tfx:8:12: error: undefined name 'b'"));
  assert_non_null(strstr(r.diag, "t.tfx:9:12: error: undefined name 'c'"));
  assert_non_null(strstr(r.diag, "t.tfx:12:15: error: T (the number of tokens)"));
  result_free(&r);

  /* syntax errors on several lines are all reported */
  result s = compile(HDR "param a f32[3]\nparam b : [3]\nconst = 4\n" FWD END);
  assert_int_equal(s.errors, 3);
  assert_non_null(strstr(s.diag, "t.tfx:5:9: error:"));
  assert_non_null(strstr(s.diag, "t.tfx:6:11: error:"));
  assert_non_null(strstr(s.diag, "t.tfx:7:7: error:"));
  result_free(&s);

  char big[2048] = HDR;
  for (int i = 0; i < 40; i++) strcat(big, "const $\n");
  result m = compile_with("t.tfx", big, NULL, 1, 5);
  assert_int_equal(m.errors, 5);
  assert_non_null(strstr(m.diag, "too many errors"));
  result_free(&m);
  result d = compile_with("t.tfx", big, NULL, 1, 0);
  assert_int_equal(d.errors, 20); /* the default limit */
  result_free(&d);
}

/* An error inside a block is reported once, not once per instance. */
static void test_error_once_per_location(void **state) {
  (void)state;
  const char *src = HDR "param h : f32[3]\n"
                        "block b(y : f32[T, dim]) -> f32[T, dim] {\n  return y + h\n}\n" FWD
                        "  x = repeat(4) b(x)\n  return b(embedding(emb, t))\n}\n";
  result r = compile(src);
  assert_int_equal(r.errors, 1);
  assert_non_null(strstr(r.diag, "t.tfx:7:12: error: add: shapes f32[T, 64] and f32[3]"));
  result_free(&r);
}

/* A note points at the previous definition. */
static void test_note(void **state) {
  (void)state;
  result r = compile(HDR "const dim = 3\n" FWD END);
  assert_non_null(strstr(r.diag, "t.tfx:5:7: error: duplicate definition of constant 'dim'\n"
                                 "  const dim = 3\n"
                                 "        ^\n"
                                 "t.tfx:2:7: note: previous definition of 'dim' is here\n"));
  assert_int_equal(r.errors, 1); /* notes are not errors */
  result_free(&r);
}

/* Source given in memory: the path only names it. Reading a missing file
 * is an error; so is compiling without weights. */
static void test_paths_and_weights(void **state) {
  (void)state;
  result r = compile_with("/nonexistent/dir/m.tfx", HDR FWD END, NULL, 1, 0);
  assert_int_equal(r.errors, 0);
  assert_non_null(r.g);
  result_free(&r);

  result m = compile_with("/nonexistent/dir/m.tfx", NULL, NULL, 1, 0);
  assert_int_equal(m.errors, 1);
  assert_non_null(strstr(m.diag, "/nonexistent/dir/m.tfx: error: cannot read the file"));
  result_free(&m);

  result n = compile_with("t.tfx", HDR FWD END, NULL, 0, 0);
  assert_int_equal(n.errors, 1);
  assert_non_null(strstr(n.diag, "t.tfx:1:1: error: no weights: add a `weights` statement or pass --weights"));
  result_free(&n);

  /* --weights random binds every param */
  result w = compile_with("t.tfx", HDR "param unused : f32[5]\n" FWD "  return rmsnorm(x, g)\n}\n", "random:7", 0, 0);
  if (w.errors) fail_msg("%s", w.diag);
  assert_true(w.w.size > 0);
  assert_true(param(w.g, "g")->weight_offset >= 0);
  assert_null(param(w.g, "unused")); /* params nothing uses are not in the graph */
  result_free(&w);

  /* a weights statement of "random:SEED" is not made relative to the file */
  result s = compile_with("some/dir/t.tfx", HDR "weights \"random:3\"\n" FWD END, NULL, 0, 0);
  if (s.errors) fail_msg("%s", s.diag);
  result_free(&s);
}

/* Writes a tiny llama2.c checkpoint: dim 8, hidden 4, 1 layer, 2 heads,
 * 2 kv heads, vocab 4 (shared classifier), seq_len 4; float i at index i. */
static void write_tiny_llama2c(const char *path) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  int32_t hdr[7] = {8, 4, 1, 2, 2, 4, 4};
  assert_int_equal(fwrite(hdr, sizeof hdr, 1, f), 1);
  size_t n = 4 * 8 + 8 + 4 * 64 + 8 + 3 * 32 + 8 + 2 * 4 * 2;
  for (size_t i = 0; i < n; i++) {
    float v = (float)i;
    assert_int_equal(fwrite(&v, sizeof v, 1, f), 1);
  }
  fclose(f);
}

#define TINY                                                                                                           \
  "const dim = 8, hidden = %d, vocab = 4, max_seq = 4\n"                                                               \
  "weights \"tiny.bin\" format llama2c\n"                                                                              \
  "param tok_embeddings : f32[vocab, dim]\nparam norm : f32[dim]\n"                                                    \
  "block layer(x : f32[T, dim]) -> f32[T, dim] {\n"                                                                    \
  "  param attention_norm : f32[dim]\n"                                                                                \
  "  param wq : f32[dim, dim]; param wk : f32[dim, dim]; param wv : f32[dim, dim]; param wo : f32[dim, dim]\n"         \
  "  param ffn_norm : f32[dim]\n"                                                                                      \
  "  param w1 : f32[hidden, dim]\n"                                                                                    \
  "  param w2 : f32[dim, hidden]\n"                                                                                    \
  "  param w3 : f32[hidden, dim]\n"                                                                                    \
  "  h = x + attention(rmsnorm(x, attention_norm), wq, wk, wv, wo, heads = 2, mask = causal,\n"                        \
  "                    position = rope())\n"                                                                           \
  "  f = rmsnorm(h, ffn_norm)\n"                                                                                       \
  "  return h + linear(silu(linear(f, w1)) * linear(f, w3), w2)\n"                                                     \
  "}\n"                                                                                                                \
  "forward(tokens : i32[T]) -> f32[T, vocab] {\n"                                                                      \
  "  return linear(rmsnorm(repeat(1) layer(embedding(tok_embeddings, tokens)), norm), tok_embeddings)\n"               \
  "}\n"

/* Bind errors are reported at the param's declaration; the weights path is
 * relative to the .tfx file. */
static void test_bind_errors(void **state) {
  (void)state;
  char dir[512], bin[600], tfx[600], src[4096];
  snprintf(dir, sizeof dir, "%s/test_frontend_tmp", TFX_BINARY_DIR);
  snprintf(bin, sizeof bin, "%s/tiny.bin", dir);
  snprintf(tfx, sizeof tfx, "%s/tiny.tfx", dir);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  assert_int_equal(system(cmd), 0);
  write_tiny_llama2c(bin);

  snprintf(src, sizeof src, TINY, 4);
  result ok = compile_with(tfx, src, NULL, 0, 0);
  if (ok.errors) fail_msg("%s", ok.diag);
  const tfx_node *emb = param(ok.g, "tok_embeddings");
  float first[2];
  memcpy(first, ok.w.data + emb->weight_offset, sizeof first);
  assert_true(first[0] == 0.0f && first[1] == 1.0f);
  const tfx_node *w1 = param(ok.g, "layers.0.w1");
  memcpy(first, ok.w.data + w1->weight_offset, sizeof first[0]);
  assert_true(first[0] == (float)(4 * 8 + 8 + 4 * 64 + 8)); /* after emb, rms_att, wq..wo, rms_ffn */
  result_free(&ok);

  snprintf(src, sizeof src, TINY, 5);
  result bad = compile_with(tfx, src, NULL, 0, 0);
  assert_true(bad.errors >= 1);
  char want[700];
  snprintf(want, sizeof want, "%s:9:9: error: ", tfx); /* param w1 */
  const char *at = strstr(bad.diag, want);
  if (!at) fail_msg("want %s in:\n%s", want, bad.diag);
  assert_non_null(strstr(at, "layers.0.w1"));
  assert_null(bad.g);
  result_free(&bad);
  remove(bin);
  rmdir(dir);
}

/* Hostile input never crashes: deep nesting, long lines, NUL-free garbage. */
static void test_hostile_input(void **state) {
  (void)state;
  size_t n = 200000;
  char *s = malloc(n + 64);
  strcpy(s, "const a = ");
  size_t k = strlen(s);
  for (size_t i = 0; i < n / 2; i++) s[k++] = '(';
  s[k] = 0;
  result r = compile(s);
  assert_true(r.errors >= 1);
  result_free(&r);

  strcpy(s, "const a = 1");
  k = strlen(s);
  for (size_t i = 0; i < n / 4; i++) s[k++] = '+', s[k++] = '1';
  s[k] = 0;
  r = compile(s);
  assert_true(r.errors >= 1);
  assert_non_null(strstr(r.diag, "expression nested too deeply"));
  result_free(&r);

  for (size_t i = 0; i < n; i++) s[i] = (char)(1 + (i * 7919) % 255);
  s[n] = 0;
  r = compile(s);
  assert_true(r.errors >= 1);
  assert_true(r.errors <= 20);
  result_free(&r);
  free(s);

  r = compile("");
  assert_int_equal(r.errors, 2); /* no max_seq, no forward */
  result_free(&r);

  /* a chain of 40 blocks, each calling the next */
  char *chain = malloc(8192);
  strcpy(chain, "const max_seq = 4\n");
  for (int i = 0; i < 39; i++)
    sprintf(chain + strlen(chain), "block b%d(y : f32[T, 4]) -> f32[T, 4] { return b%d(y) }\n", i, i + 1);
  strcat(chain, "block b39(y : f32[T, 4]) -> f32[T, 4] { return silu(y) }\n");
  strcat(chain, "forward(x : f32[T, 4]) -> f32[T, 4] { return b0(x) }\n");
  r = compile(chain);
  assert_int_equal(r.errors, 1);
  assert_non_null(strstr(r.diag, "blocks nested too deeply"));
  result_free(&r);
  free(chain);
}

int main(void) {
  enum { N_BAD = sizeof bad_cases / sizeof bad_cases[0] };
  struct CMUnitTest tests[N_BAD + 16];
  int n = 0;
#define ADD(f) tests[n++] = (struct CMUnitTest)cmocka_unit_test(f)
  ADD(test_stories260k_graph);
  ADD(test_stories260k_weights);
  ADD(test_f32_input_ops);
  ADD(test_param_naming);
  ADD(test_const_exprs);
  ADD(test_lexical);
  ADD(test_many_errors);
  ADD(test_error_once_per_location);
  ADD(test_note);
  ADD(test_paths_and_weights);
  ADD(test_bind_errors);
  ADD(test_hostile_input);
  for (int i = 0; i < N_BAD; i++) {
    tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(test_bad_program, (void *)&bad_cases[i]);
    tests[n++].name = bad_cases[i].name;
  }
  return _cmocka_run_group_tests("frontend", tests, (size_t)n, NULL, NULL);
}
