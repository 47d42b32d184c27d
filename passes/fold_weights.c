/* passes/fold_weights.c — constant folding of weight transforms: every CONCAT,
 * PACK and AFFINE whose operands are parameters (or folded ones; AFFINE: an
 * f32 row-major one) is computed at
 * compile time and becomes a PARAM of the weights blob (a PACK result keeps
 * its packed layout as the param's `layout`; a CONCAT's name joins its
 * sources' with '+'). The blob is then rebuilt with only the parameters the
 * output still needs (64-byte aligned, in node order), so parameters folded
 * away or no longer used cost nothing. Weights in other formats fold
 * byte-wise by their format (tfx_dtype_info: values and scale planes).
 * Without a weights blob (tfxc --emit=ir with no weights) the transforms
 * stay in the graph as ops. The new blob is never held beside the whole old
 * one: its pages are first touched as each param is written, and each old
 * param's pages are handed back to the system (madvise) once the last new
 * param reading them is written, so folding peaks at about one blob, not two
 * (issue #17). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rewrite.h"

#define BLOB_ALIGN 64

typedef struct {
  const tfx_node *orig; /* the nodes before folding */
  const uint8_t *old;
} fold_src;

/* The original PARAM holding row r of node id's value (through CONCATs and
 * PACKs); *r becomes the row within it. */
static const tfx_node *source_row(const fold_src *s, int id, int64_t *r) {
  const tfx_node *n = &s->orig[id];
  while (n->op != TFX_OP_PARAM) {
    int next = n->inputs[0];
    if (n->op == TFX_OP_CONCAT)
      for (int i = 0; i < n->n_inputs; i++) {
        int64_t rows = s->orig[n->inputs[i]].type.dims[0];
        next = n->inputs[i];
        if (*r < rows || i == n->n_inputs - 1) break;
        *r -= rows;
      }
    n = &s->orig[next];
  }
  return n;
}

/* Row r of the folded weight n (R rows of K elements, its format and
 * layout) copied from its source PARAM: the values plane element by element
 * (element formats; a packed layout at tfx_packed_index), or as whole rows
 * of blocks (block formats, row-major only), and the row's scale-plane
 * entry (tfx_packed_row). */
static void fold_row(const fold_src *s, const tfx_node *n, int64_t R, int64_t K, int64_t r, uint8_t *dst) {
  const tfx_dtype_info *f = tfx_dtype_info_of(n->type.dtype);
  int64_t sr = r;
  const tfx_node *src = source_row(s, n->id, &sr);
  const uint8_t *sdata = s->old + src->weight_offset;
  int64_t SR = src->type.dims[0], eb = f->block_bytes;
  const tfx_fused *dl = n->fx.panel ? &n->fx : NULL, *sl = src->fx.panel ? &src->fx : NULL;
  if (f->block > 1) {
    int64_t rb = K / f->block * eb;
    memcpy(dst + r * rb, sdata + sr * rb, (size_t)rb);
  } else if (!sl && !dl) { /* a row-major row of a row-major source (a CONCAT): one copy */
    memcpy(dst + r * K * eb, sdata + sr * K * eb, (size_t)(K * eb));
  } else if (!sl && dl->kc > 0) {
    /* packing a row-major row: within the row, the layout's positions are
     * runs of kc elements, one run per chunk of kc columns at a fixed
     * stride, then the last K % kc columns in one run (tfx_packed_index),
     * so the positions are computed once per row, not per element */
    const uint8_t *srow = sdata + sr * K * eb;
    int64_t kc = dl->kc, kf = K - K % kc, d0 = tfx_packed_index(dl, R, K, r, 0);
    int64_t step = kf >= 2 * kc ? tfx_packed_index(dl, R, K, r, kc) - d0 : 0;
    if (eb == 4 && kc == 1)
      for (int64_t k = 0; k < kf; k++) ((float *)dst)[d0 + k * step] = ((const float *)srow)[k];
    else
      for (int64_t c = 0; c < kf / kc; c++) memcpy(dst + (d0 + c * step) * eb, srow + c * kc * eb, (size_t)(kc * eb));
    if (kf < K) memcpy(dst + tfx_packed_index(dl, R, K, r, kf) * eb, srow + kf * eb, (size_t)((K - kf) * eb));
  } else if (eb == 4) {
    for (int64_t k = 0; k < K; k++) {
      int64_t di = dl ? tfx_packed_index(dl, R, K, r, k) : r * K + k;
      int64_t si = sl ? tfx_packed_index(sl, SR, K, sr, k) : sr * K + k;
      ((float *)dst)[di] = ((const float *)sdata)[si];
    }
  } else {
    for (int64_t k = 0; k < K; k++) {
      int64_t di = dl ? tfx_packed_index(dl, R, K, r, k) : r * K + k;
      int64_t si = sl ? tfx_packed_index(sl, SR, K, sr, k) : sr * K + k;
      memcpy(dst + di * eb, sdata + si * eb, (size_t)eb);
    }
  }
  if (f->row_bytes) {
    int64_t rb = f->row_bytes;
    memcpy(dst + tfx_type_values_bytes(&n->type, 1) + tfx_packed_row(dl, R, r) * rb,
           sdata + tfx_type_values_bytes(&src->type, 1) + tfx_packed_row(sl, SR, sr) * rb, (size_t)rb);
  }
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

/* "name*scale+shift": a folded AFFINE's own name (its values differ from the source's) */
static char *affine_name(const char *src, const tfx_node *n) {
  size_t len = strlen(src) + 64;
  char *s = malloc(len);
  if (s) snprintf(s, len, "%s*%.9g+%.9g", src, n->scale, n->shift);
  return s;
}

/* Hands the whole pages inside [p, p + bytes) of the old blob back to the
 * system: they read as zero afterwards and cost no memory (the blob is freed
 * after folding, nothing reads them again). */
static void release_range(uint8_t *p, int64_t bytes) {
  static long page;
  if (!page) page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || bytes < page) return;
  uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
  uintptr_t e = ((uintptr_t)p + (uintptr_t)bytes) & ~((uintptr_t)page - 1);
  if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

/* Copies a param's bytes; when nothing reads them after (last), in chunks
 * whose source pages go back at once, so a large tensor is not held twice. */
static void copy_param(uint8_t *dst, uint8_t *src, int64_t bytes, int last) {
  const int64_t chunk = (int64_t)16 << 20;
  for (int64_t at = 0; at < bytes; at += chunk) {
    int64_t n = bytes - at < chunk ? bytes - at : chunk;
    memcpy(dst + at, src + at, (size_t)n);
    if (last) release_range(src + at, n);
  }
}

typedef struct {
  int64_t off;
  int id;
} slot_ref;

static int by_offset(const void *a, const void *b) {
  const slot_ref *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off ? 1 : x->id - y->id;
}

/* last[k]: the last node written to the new blob (off[i] >= 0, in node
 * order) that reads original PARAM k's data, -1 when none; params sharing a
 * slot (one name, one offset) all get the latest reader of any of them.
 * mark and stack are scratch (nn and nn * TFX_MAX_INPUTS + 2 ints). Returns
 * -1 when out of memory. */
static int last_reads(const tfx_node *orig, int nn, const int64_t *off, int *mark, int *stack, int *last) {
  for (int i = 0; i < nn; i++) last[i] = mark[i] = -1;
  for (int i = 0; i < nn; i++) {
    if (off[i] < 0) continue;
    int sp = 0;
    stack[sp++] = i;
    mark[i] = i;
    while (sp) {
      int v = stack[--sp];
      if (orig[v].op == TFX_OP_PARAM) {
        last[v] = i;
        continue;
      }
      for (int j = 0; j < orig[v].n_inputs; j++) {
        int u = orig[v].inputs[j];
        if (mark[u] != i) {
          mark[u] = i;
          stack[sp++] = u;
        }
      }
    }
  }
  slot_ref *refs = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *refs);
  if (!refs) return -1;
  int np = 0;
  for (int i = 0; i < nn; i++)
    if (orig[i].op == TFX_OP_PARAM) refs[np++] = (slot_ref){orig[i].weight_offset, i};
  qsort(refs, (size_t)np, sizeof *refs, by_offset);
  for (int a = 0, b; a < np; a = b) {
    int mx = -1;
    for (b = a; b < np && refs[b].off == refs[a].off; b++)
      if (last[refs[b].id] > mx) mx = last[refs[b].id];
    for (int k = a; k < b; k++) last[refs[k].id] = mx;
  }
  free(refs);
  return 0;
}

int tfx_pass_fold_weights(tfx_pass_ctx *c) {
  tfx_graph *g = c->g;
  if (!c->weights || !*c->weights) return 0;
  int nn = g->n_nodes, rc = 0;
  for (int i = 0; i < nn; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op == TFX_OP_PARAM &&
        (n->weight_offset < 0 || n->weight_offset + tfx_type_bytes(&n->type, 1) > (int64_t)*c->weights_size))
      return tfx_errf(c->err, c->errlen, "fold_weights: param '%s' is not bound to the weights blob",
                      n->name ? n->name : "?");
  }
  tfx_node *orig = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *orig);
  char *live = calloc((size_t)nn + 1, 1);
  int *stack = malloc(((size_t)nn * TFX_MAX_INPUTS + 2) * sizeof *stack);
  int64_t *off = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *off);
  int *last = NULL, *mark = NULL;
  slot_ref *order = NULL;
  uint8_t *blob = NULL;
  if (!orig || !live || !stack || !off) {
    rc = tfx_errf(c->err, c->errlen, "fold_weights: out of memory");
    goto done;
  }
  memcpy(orig, g->nodes, (size_t)nn * sizeof *orig);
  /* which transforms fold: in order, so a PACK of a CONCAT folds too */
  for (int i = 0; i < nn; i++) {
    tfx_node *n = &g->nodes[i];
    if (!tfx_op_has(n->op, TFX_TRAIT_FOLDED) && n->op != TFX_OP_AFFINE) continue;
    int all = 1;
    for (int j = 0; j < n->n_inputs; j++) all &= g->nodes[n->inputs[j]].op == TFX_OP_PARAM;
    if (n->op == TFX_OP_AFFINE) /* values computed: from an original f32 row-major param */
      all &= orig[n->inputs[0]].op == TFX_OP_PARAM && orig[n->inputs[0]].type.dtype == TFX_DT_F32 &&
             n->type.dtype == TFX_DT_F32 && !orig[n->inputs[0]].fx.panel;
    if (!all) continue;
    char *name = n->op == TFX_OP_CONCAT   ? join_names(g, n)
                 : n->op == TFX_OP_AFFINE ? affine_name(g->nodes[n->inputs[0]].name, n)
                                          : strdup(g->nodes[n->inputs[0]].name);
    if (!name) {
      rc = tfx_errf(c->err, c->errlen, "fold_weights: out of memory");
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
  if (!cap) cap = BLOB_ALIGN;
  blob = aligned_alloc(BLOB_ALIGN, cap);
  last = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *last);
  mark = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *mark);
  order = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *order);
  if (!blob || !last || !mark || !order || last_reads(orig, nn, off, mark, stack, last)) {
    rc = tfx_errf(c->err, c->errlen, "fold_weights: cannot allocate %lld bytes for the weights", (long long)total);
    goto done;
  }
  /* the original params by their last reader: the old pages go back once read */
  int no = 0;
  for (int k = 0; k < nn; k++)
    if (orig[k].op == TFX_OP_PARAM) order[no++] = (slot_ref){last[k], k};
  qsort(order, (size_t)no, sizeof *order, by_offset);
  uint8_t *old = *c->weights;
  int ri = 0;
  for (; ri < no && order[ri].off < 0; ri++) /* read by nothing the output needs */
    release_range(old + orig[order[ri].id].weight_offset, tfx_type_bytes(&orig[order[ri].id].type, 1));
  fold_src src = {orig, old};
  int64_t written = 0; /* the new blob's bytes [0, written) hold their final value */
  for (int i = 0; i < nn; i++) {
    if (off[i] < 0) continue;
    const tfx_node *o = &orig[i];
    const tfx_node *n = &g->nodes[i];
    int64_t bytes = tfx_type_bytes(&n->type, 1);
    if (o->op == TFX_OP_PARAM) { /* the alignment gap before it, then its bytes */
      memset(blob + written, 0, (size_t)(off[i] - written));
      copy_param(blob + off[i], old + o->weight_offset, tfx_type_bytes(&o->type, 1), last[i] == i);
    } else if (o->op == TFX_OP_AFFINE) { /* x * scale + shift, element by element */
      const tfx_node *x = &orig[o->inputs[0]];
      const float *xs = (const float *)(old + x->weight_offset);
      float *dst = (float *)(blob + off[i]);
      memset(blob + written, 0, (size_t)(off[i] - written));
      for (int64_t k = 0, numel = tfx_type_numel(&n->type, 1); k < numel; k++)
        dst[k] = (float)((double)xs[k] * o->scale + o->shift);
    } else { /* a folded transform: zeros first, as a layout may leave holes */
      memset(blob + written, 0, (size_t)(off[i] + bytes - written));
      int64_t R = n->type.dims[0], K = n->type.rank == 2 ? n->type.dims[1] : 1;
      for (int64_t r = 0; r < R; r++) fold_row(&src, n, R, K, r, blob + off[i]);
    }
    written = off[i] + bytes;
    for (; ri < no && order[ri].off == i; ri++)
      release_range(old + orig[order[ri].id].weight_offset, tfx_type_bytes(&orig[order[ri].id].type, 1));
  }
  memset(blob + written, 0, cap - (size_t)written);
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
  free(last);
  free(mark);
  free(order);
  free(blob);
  if (rc) return rc;
  tfx_rw rw;
  if (tfx_rw_begin(&rw, g, c->err, c->errlen)) return -1;
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
