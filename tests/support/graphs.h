/* tests/support/graphs.h — small test graphs built with the IR builder, with
 * random parameters bound into a weights blob that grows as parameters are
 * added (64-byte aligned base, parameters packed at 4-byte offsets like
 * llama2.c files), and a deterministic random generator. */
#ifndef TFX_TEST_GRAPHS_H
#define TFX_TEST_GRAPHS_H

#include <stddef.h>
#include <stdint.h>

#include "../../ir/ir.h"

typedef struct tfx_tg {
  tfx_graph *g;
  uint8_t *blob; /* 64-byte aligned */
  size_t size, cap;
  uint64_t rng;
} tfx_tg;

tfx_tg *tfx_tg_new(const char *name, int64_t max_seq, uint64_t seed);
void tfx_tg_free(tfx_tg *t);
/* Uniform in [-1, 1). */
float tfx_tg_rand(tfx_tg *t);
int tfx_tg_input_tokens(tfx_tg *t);
int tfx_tg_input_f32(tfx_tg *t, int64_t d);
/* A parameter of the given shape filled with offset + scale * U[-1, 1). */
int tfx_tg_param(tfx_tg *t, const char *name, int rank, const int64_t *dims, float scale, float offset);
int tfx_tg_param1(tfx_tg *t, const char *name, int64_t n, float scale, float offset);
int tfx_tg_param2(tfx_tg *t, const char *name, int64_t rows, int64_t cols, float scale);
/* Adds a node; prints the builder's message and returns -1 on a type error. */
int tfx_tg_add(tfx_tg *t, const tfx_node *proto);
/* Shorthands for ops without attributes. */
int tfx_tg_op1(tfx_tg *t, tfx_op op, int a);
int tfx_tg_op2(tfx_tg *t, tfx_op op, int a, int b);
int tfx_tg_op3(tfx_tg *t, tfx_op op, int a, int b, int c);
/* A graph "attn" of an ATTENTION over q, k, v = linears of x (f32[T, 24],
 * weights "wq", "wk", "wv" at scale 0.5) with the given options (sp may be
 * NULL); the graph's output is the attention's (tests/test_attention_variants.c,
 * tests/test_split_decode.c). */
tfx_tg *tfx_tg_attn_graph(int H, int G, int d, tfx_mask_kind mask, int alibi, const tfx_sparse *sp, int64_t max_seq,
                          uint64_t seed);

#endif
