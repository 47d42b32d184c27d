/* tests/support/graphs.c — builders of small test graphs with random bound
 * parameters (see graphs.h). */
#include "graphs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tfx_tg *tfx_tg_new(const char *name, int64_t max_seq, uint64_t seed) {
  tfx_tg *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->g = tfx_graph_new(name, max_seq);
  t->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
  if (!t->g) {
    free(t);
    return NULL;
  }
  return t;
}

void tfx_tg_free(tfx_tg *t) {
  if (!t) return;
  tfx_graph_free(t->g);
  free(t->blob);
  free(t);
}

float tfx_tg_rand(tfx_tg *t) {
  t->rng ^= t->rng << 13;
  t->rng ^= t->rng >> 7;
  t->rng ^= t->rng << 17;
  return (float)((double)(t->rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

int tfx_tg_input_tokens(tfx_tg *t) {
  return tfx_graph_add_input(t->g, "tokens", tfx_type_make(TFX_DT_I32, 1, (int64_t[]){TFX_DIM_T}));
}

int tfx_tg_input_f32(tfx_tg *t, int64_t d) {
  return tfx_graph_add_input(t->g, "x", tfx_type_make(TFX_DT_F32, 2, (int64_t[]){TFX_DIM_T, d}));
}

static int grow(tfx_tg *t, size_t need) {
  if (need <= t->cap) return 0;
  size_t cap = t->cap ? t->cap : 4096;
  while (cap < need) cap *= 2;
  void *p = NULL;
  if (posix_memalign(&p, 64, cap)) return -1;
  if (t->size) memcpy(p, t->blob, t->size);
  free(t->blob);
  t->blob = p;
  t->cap = cap;
  return 0;
}

int tfx_tg_param(tfx_tg *t, const char *name, int rank, const int64_t *dims, float scale, float offset) {
  tfx_type ty = tfx_type_make(TFX_DT_F32, rank, dims);
  int id = tfx_graph_add_param(t->g, name, ty);
  if (id < 0) return -1;
  int64_t n = tfx_type_numel(&ty, 1);
  if (grow(t, t->size + (size_t)n * 4)) return -1;
  float *p = (float *)(t->blob + t->size);
  for (int64_t i = 0; i < n; i++) p[i] = offset + scale * tfx_tg_rand(t);
  t->g->nodes[id].weight_offset = (int64_t)t->size;
  t->size += (size_t)n * 4;
  t->g->weights_bytes = (int64_t)t->size;
  return id;
}

int tfx_tg_param1(tfx_tg *t, const char *name, int64_t n, float scale, float offset) {
  return tfx_tg_param(t, name, 1, (int64_t[]){n}, scale, offset);
}

int tfx_tg_param2(tfx_tg *t, const char *name, int64_t rows, int64_t cols, float scale) {
  return tfx_tg_param(t, name, 2, (int64_t[]){rows, cols}, scale, 0.0f);
}

int tfx_tg_add(tfx_tg *t, const tfx_node *proto) {
  char err[256];
  int id = tfx_graph_add(t->g, proto, err, sizeof err);
  if (id < 0) fprintf(stderr, "tfx_tg_add: %s\n", err);
  return id;
}

int tfx_tg_op1(tfx_tg *t, tfx_op op, int a) {
  tfx_node n = tfx_node_proto(op, 1, (int[]){a});
  return tfx_tg_add(t, &n);
}

int tfx_tg_op2(tfx_tg *t, tfx_op op, int a, int b) {
  tfx_node n = tfx_node_proto(op, 2, (int[]){a, b});
  return tfx_tg_add(t, &n);
}

int tfx_tg_op3(tfx_tg *t, tfx_op op, int a, int b, int c) {
  tfx_node n = tfx_node_proto(op, 3, (int[]){a, b, c});
  return tfx_tg_add(t, &n);
}

tfx_tg *tfx_tg_attn_graph(int H, int G, int d, tfx_mask_kind mask, int alibi, const tfx_sparse *sp, int64_t max_seq,
                          uint64_t seed) {
  const int64_t dim = 24;
  tfx_tg *t = tfx_tg_new("attn", max_seq, seed);
  if (!t) return NULL;
  int x = tfx_tg_input_f32(t, dim);
  int q = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wq", (int64_t)H * d, dim, 0.5f));
  int k = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wk", (int64_t)G * d, dim, 0.5f));
  int v = tfx_tg_op2(t, TFX_OP_LINEAR, x, tfx_tg_param2(t, "wv", (int64_t)G * d, dim, 0.5f));
  tfx_node a = tfx_node_proto(TFX_OP_ATTENTION, 3, (int[]){q, k, v});
  a.heads = H;
  a.kv_heads = G;
  a.head_dim = d;
  a.mask = mask;
  a.alibi = alibi;
  if (sp) a.sparse = *sp;
  t->g->output = tfx_tg_add(t, &a);
  return t;
}
