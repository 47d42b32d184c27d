/* frontend/weights_header.c — cross-checks a llama2.c checkpoint's header
 * against what the program implies (issue #17): tensor shapes alone cannot
 * tell 8 heads of 8 from 4 heads of 16, so every header field the program
 * determines is compared, each error naming the field, the file's value and
 * the program's:
 * - dim and vocab_size's magnitude: the param bound to tok_embeddings;
 * - hidden_dim: the param bound to layers.0.w1;
 * - n_layers: the params bound to layers.N.* (N = 0, 1, ... while any exists);
 * - n_heads, n_kv_heads: every attention of the program;
 * - vocab_size's sign (positive: the classifier shares tok_embeddings): the
 *   program's param bound to `output`, or its absence;
 * - seq_len: the program's max_seq may not exceed it (positions the model was
 *   never given; a smaller max_seq is accepted).
 * A field the program does not determine (no such param, no attention) is not
 * compared. Names go through the weights statement's renaming rules. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

struct named {
  const char *name;
  int node;
};

typedef struct {
  const tfx_graph *g;
  const tfx_wrename *rules;
  int n_rules;
  struct named *by_name; /* the PARAM nodes sorted by name (binary search) */
  int n_params;
  tfx_bind_error_fn fn;
  void *ctx;
  const char *path;
  int errors;
} hdr_check;

static void mismatch(hdr_check *c, int node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void mismatch(hdr_check *c, int node, const char *fmt, ...) {
  char msg[768], head[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(head, sizeof head, "%s: the llama2c header does not match the program: ", c->path);
  char all[1300];
  snprintf(all, sizeof all, "%s%s", head, msg);
  c->errors++;
  if (c->fn) c->fn(c->ctx, node, all);
}

static int cmp_named(const void *a, const void *b) {
  return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

/* The PARAM node the file tensor `name` binds to (after renaming), or -1. */
static int param_for(const hdr_check *c, const char *name) {
  char buf[512];
  int m = tfx_wrename_apply(c->rules, c->n_rules, name, buf, sizeof buf);
  if (m < 0 || (m == 1 && !buf[0])) return -1;
  int lo = 0, hi = c->n_params;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2, d = strcmp(c->by_name[mid].name, buf);
    if (d == 0) return c->by_name[mid].node;
    if (d < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static const char *const layer_kinds[] = {"attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"};

/* The first param of layer l (any kind), or -1. */
static int layer_param(const hdr_check *c, int l) {
  char name[64];
  for (size_t k = 0; k < sizeof layer_kinds / sizeof layer_kinds[0]; k++) {
    snprintf(name, sizeof name, "layers.%d.%s", l, layer_kinds[k]);
    int p = param_for(c, name);
    if (p >= 0) return p;
  }
  return -1;
}

int tfx_wfile_check_llama2c(const tfx_graph *g, const tfx_wfile *f, const tfx_wrename *rules, int n_rules,
                            tfx_bind_error_fn fn, void *ctx) {
  if (!f->format || strcmp(f->format, "llama2c") != 0) return 0;
  hdr_check c = {g, rules, n_rules, NULL, 0, fn, ctx, f->path ? f->path : "?", 0};
  c.by_name = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *c.by_name);
  if (!c.by_name) {
    if (fn) fn(ctx, -1, "out of memory");
    return 1;
  }
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].name)
      c.by_name[c.n_params++] = (struct named){g->nodes[i].name, i};
  qsort(c.by_name, (size_t)c.n_params, sizeof *c.by_name, cmp_named);
  const int32_t *h = f->llama2c;
  int32_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv_heads = h[4], vocab_raw = h[5], seq = h[6];
  int64_t vocab = vocab_raw < 0 ? -(int64_t)vocab_raw : vocab_raw;
  char t0[64];

  int emb = param_for(&c, "tok_embeddings");
  if (emb >= 0 && g->nodes[emb].type.rank == 2) {
    const tfx_type *t = &g->nodes[emb].type;
    if (t->dims[1] != dim)
      mismatch(&c, emb, "dim = %d in the file, %lld in the program (param '%s' %s)", dim, (long long)t->dims[1],
               g->nodes[emb].name, tfx_type_str(t, t0, sizeof t0));
    if (t->dims[0] != vocab)
      mismatch(&c, emb, "vocab_size = %d in the file (%lld tokens), %lld in the program (param '%s' %s)", vocab_raw,
               (long long)vocab, (long long)t->dims[0], g->nodes[emb].name, tfx_type_str(t, t0, sizeof t0));
  }
  int w1 = param_for(&c, "layers.0.w1");
  if (w1 >= 0 && g->nodes[w1].type.rank == 2 && g->nodes[w1].type.dims[0] != hidden)
    mismatch(&c, w1, "hidden_dim = %d in the file, %lld in the program (param '%s' %s)", hidden,
             (long long)g->nodes[w1].type.dims[0], g->nodes[w1].name, tfx_type_str(&g->nodes[w1].type, t0, sizeof t0));
  int l = 0;
  while (l <= layers && layer_param(&c, l) >= 0) l++;
  if (l > 0 && l != layers)
    mismatch(&c, -1, "n_layers = %d in the file, %s%d in the program (params layers.0.* to layers.%d.*)", layers,
             l > layers ? "more than " : "", l > layers ? layers : l, l - 1);
  int bad_heads = 0, bad_kv = 0; /* each field once, at the first attention that disagrees */
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_ATTENTION) continue;
    if (n->heads != heads && !bad_heads++)
      mismatch(&c, i, "n_heads = %d in the file, %d in the program (this attention's heads; head dim %d)", heads,
               n->heads, n->head_dim);
    if (n->kv_heads != kv_heads && !bad_kv++)
      mismatch(&c, i, "n_kv_heads = %d in the file, %d in the program (this attention's kv_heads)", kv_heads,
               n->kv_heads);
  }
  int out = param_for(&c, "output");
  if (vocab_raw > 0 && out >= 0)
    mismatch(&c, out,
             "vocab_size = %d in the file is positive: the classifier shares tok_embeddings and the file has no "
             "'output' tensor, but the program has a separate classifier param '%s'",
             vocab_raw, g->nodes[out].name);
  if (vocab_raw < 0 && out < 0 && emb >= 0)
    mismatch(&c, emb,
             "vocab_size = %d in the file is negative: the file has a separate classifier 'output', which no param "
             "of the program binds (does the program share '%s' as its classifier?)",
             vocab_raw, g->nodes[emb].name);
  if (g->max_seq > seq)
    mismatch(&c, -1, "seq_len = %d in the file, but the program's max_seq = %lld is larger (at most %d)", seq,
             (long long)g->max_seq, seq);
  free(c.by_name);
  return c.errors;
}
