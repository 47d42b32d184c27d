/* passes/fold_weights.c — constant folding of weight transforms: every CONCAT
 * and PACK whose operands are parameters (or folded ones) is computed at
 * compile time and becomes a PARAM of the weights blob (a PACK result keeps
 * its packed layout as the param's `layout`; a CONCAT's name joins its
 * sources' with '+'). The blob is then rebuilt with only the parameters the
 * output still needs (64-byte aligned, in node order), so parameters folded
 * away or no longer used cost nothing. Without a weights blob (tfxc
 * --emit=ir with no weights) the transforms stay in the graph as ops. */
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

#define BLOB_ALIGN 64

typedef struct {
  const tfx_node *orig; /* the nodes before folding */
  const uint8_t *old;
} fold_src;

/* Element (r, k) of the original value of node id (k = 0 for rank 1). */
static float value_at(const fold_src *s, int id, int64_t r, int64_t k) {
  const tfx_node *n = &s->orig[id];
  if (n->op == TFX_OP_CONCAT) {
    for (int i = 0; i < n->n_inputs; i++) {
      int64_t rows = s->orig[n->inputs[i]].type.dims[0];
      if (r < rows || i == n->n_inputs - 1) return value_at(s, n->inputs[i], r, k);
      r -= rows;
    }
    return 0;
  }
  if (n->op == TFX_OP_PACK) return value_at(s, n->inputs[0], r, k);
  /* a PARAM (the folder only reads FOLDED ops of params) */
  const float *base = (const float *)(s->old + n->weight_offset);
  if (n->type.rank == 1) return base[r];
  int64_t R = n->type.dims[0], K = n->type.dims[1];
  return base[n->fx.panel ? tfx_packed_index(&n->fx, R, K, r, k) : r * K + k];
}

static char *join_names(const tfx_graph *g, const tfx_node *n) {
  size_t len = 1;
  for (int i = 0; i < n->n_inputs; i++) len += strlen(g->nodes[n->inputs[i]].name) + 1;
  char *s = malloc(len);
  if (!s) return NULL;
  s[0] = 0;
  for (int i = 0; i < n->n_inputs; i++) {
    if (i) strcat(s, "+");
    strcat(s, g->nodes[n->inputs[i]].name);
  }
  return s;
}

int tfx_pass_fold_weights(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  if (!c->weights || !*c->weights) return 0;
  int nn = g->n_nodes, rc = 0;
  for (int i = 0; i < nn; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op == TFX_OP_PARAM &&
        (n->weight_offset < 0 || n->weight_offset + tfx_type_bytes(&n->type, 1) > (int64_t)*c->weights_size))
      return tfx_pass_errf(c->err, c->errlen, "fold_weights: param '%s' is not bound to the weights blob",
                           n->name ? n->name : "?");
  }
  tfx_node *orig = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *orig);
  char *live = calloc((size_t)nn + 1, 1);
  int *stack = malloc(((size_t)nn * TFX_MAX_INPUTS + 2) * sizeof *stack);
  int64_t *off = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *off);
  uint8_t *blob = NULL;
  if (!orig || !live || !stack || !off) {
    rc = tfx_pass_errf(c->err, c->errlen, "fold_weights: out of memory");
    goto done;
  }
  memcpy(orig, g->nodes, (size_t)nn * sizeof *orig);
  /* which transforms fold: in order, so a PACK of a CONCAT folds too */
  for (int i = 0; i < nn; i++) {
    tfx_node *n = &g->nodes[i];
    if (!tfx_op_has(n->op, TFX_TRAIT_FOLDED)) continue;
    int all = 1;
    for (int j = 0; j < n->n_inputs; j++) all &= g->nodes[n->inputs[j]].op == TFX_OP_PARAM;
    if (!all) continue;
    char *name = n->op == TFX_OP_CONCAT ? join_names(g, n) : strdup(g->nodes[n->inputs[0]].name);
    if (!name) {
      rc = tfx_pass_errf(c->err, c->errlen, "fold_weights: out of memory");
      goto done;
    }
    free(n->name);
    n->name = name;
    if (n->op == TFX_OP_CONCAT) memset(&n->fx, 0, sizeof n->fx);
    n->op = TFX_OP_PARAM;
    n->n_inputs = 0;
  }
  /* the parameters the output needs, and their place in the new blob */
  int sp = 0;
  if (g->output >= 0) stack[sp++] = g->output;
  while (sp) {
    int v = stack[--sp];
    if (live[v]) continue;
    live[v] = 1;
    for (int j = 0; j < g->nodes[v].n_inputs; j++) stack[sp++] = g->nodes[v].inputs[j];
  }
  int64_t total = 0;
  for (int i = 0; i < nn; i++) {
    off[i] = -1;
    if (!live[i] || g->nodes[i].op != TFX_OP_PARAM) continue;
    total = (total + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
    off[i] = total;
    total += tfx_type_bytes(&g->nodes[i].type, 1);
  }
  size_t cap = (size_t)((total + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN);
  blob = aligned_alloc(BLOB_ALIGN, cap ? cap : BLOB_ALIGN);
  if (!blob) {
    rc = tfx_pass_errf(c->err, c->errlen, "fold_weights: cannot allocate %lld bytes for the weights", (long long)total);
    goto done;
  }
  memset(blob, 0, cap ? cap : BLOB_ALIGN);
  fold_src src = {orig, *c->weights};
  for (int i = 0; i < nn; i++) {
    if (off[i] < 0) continue;
    const tfx_node *o = &orig[i];
    const tfx_node *n = &g->nodes[i];
    if (o->op == TFX_OP_PARAM) {
      memcpy(blob + off[i], *c->weights + o->weight_offset, (size_t)tfx_type_bytes(&o->type, 1));
      continue;
    }
    float *dst = (float *)(blob + off[i]);
    int64_t R = n->type.dims[0], K = n->type.rank == 2 ? n->type.dims[1] : 1;
    for (int64_t r = 0; r < R; r++)
      for (int64_t k = 0; k < K; k++)
        dst[n->fx.panel ? tfx_packed_index(&n->fx, R, K, r, k) : r * K + k] = value_at(&src, i, r, k);
  }
  for (int i = 0; i < nn; i++)
    if (g->nodes[i].op == TFX_OP_PARAM) g->nodes[i].weight_offset = off[i];
  free(*c->weights);
  *c->weights = blob;
  *c->weights_size = (size_t)total;
  g->weights_bytes = total;
  blob = NULL;
done:
  free(orig);
  free(live);
  free(stack);
  free(off);
  free(blob);
  if (rc) return rc;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
