/* ir/print.c — the stable text form of a graph, used by --emit=ir,
 * --print-after and golden tests:
 *   graph NAME (max_seq = N[, arena = A][, kv = K][, weights = W])
 *     %ID = OP(%a, %b) {attr = value, ...} : TYPE [@arena+OFF] [@kv+OFF] [@weights+OFF]
 *     return %ID
 * Only the attributes an op uses are printed, by the function the print
 * column of its row names (ir/ops.h): the generic tfx_print_attrs prints
 * the row's attributes in their print forms; doubles use %.9g. */
#include "fused.h"
#include "ir.h"
#include "op_fns.h"

#include <string.h>

static void print_quoted(const char *s, FILE *out) {
  fputc('"', out);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(out, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f)
      fprintf(out, "\\x%02x", c);
    else
      fputc(c, out);
  }
  fputc('"', out);
}

/* ---- the print column of ir/ops.h ---- */

/* The generic form: " {name = value, ...}" of every attribute of the op's
 * row, in TFX_ATTR order, each in its print form (ir/ops.h); nothing for an
 * op reading none. BYTES attributes have no generic form (an op reading one
 * names a printer of its own; tests/test_op_table.c checks it). */
void tfx_print_attrs(const tfx_node *n, FILE *out) {
  uint64_t mask = tfx_op_info(n->op)->attrs;
  const char *sep = " {";
  for (int i = 0; i < TFX_ATTR_COUNT; i++) {
    const tfx_attr_desc *d = tfx_attr_info((tfx_attr_id)i);
    if (!(mask >> i & 1) || d->kind == TFX_ATTR_KIND_BYTES) continue;
    const char *p = (const char *)n + d->offset;
    fprintf(out, "%s%s = ", sep, d->print);
    sep = ", ";
    if (d->kind == TFX_ATTR_KIND_DOUBLE) {
      double v;
      memcpy(&v, p, sizeof v);
      fprintf(out, "%.9g", v);
      continue;
    }
    int v, k = 0;
    memcpy(&v, p, sizeof v);
    if (d->values)
      while (d->values[k] && k < v) k++;
    if (d->values && v >= 0 && d->values[k])
      fputs(d->values[k], out);
    else if (d->kind == TFX_ATTR_KIND_UINT)
      fprintf(out, "%u", (unsigned)v);
    else
      fprintf(out, "%d", v);
  }
  if (sep[0] == ',') fputc('}', out);
}

/* its attribute theta is the base here */
void tfx_print_sinusoidal(const tfx_node *n, FILE *out) { fprintf(out, " {base = %.9g}", n->theta); }

/* RMSNORM, LAYERNORM: eps, and heads when the norm is per head */
void tfx_print_norm(const tfx_node *n, FILE *out) {
  fprintf(out, " {eps = %.9g", n->eps);
  if (n->heads) fprintf(out, ", heads = %d", n->heads);
  fputc('}', out);
}

/* POSITIONS: the offset when there is one */
void tfx_print_positions(const tfx_node *n, FILE *out) {
  if (n->pad_skip)
    fprintf(out, " {offset = %d, pad = %d}", n->pos_offset, n->pad_id);
  else if (n->pos_offset && n->n_inputs == 3)
    fprintf(out, " {offset = %d, segments = %%%d}", n->pos_offset, n->inputs[2]);
  else if (n->pos_offset)
    fprintf(out, " {offset = %d}", n->pos_offset);
  else if (n->n_inputs == 3)
    fprintf(out, " {segments = %%%d}", n->inputs[2]);
}

void tfx_print_moe_route(const tfx_node *n, FILE *out) {
  fprintf(out, " {top_k = %d, gate = %s", n->top_k, n->moe_gate == TFX_MOE_GATE_SOFTMAX ? "softmax" : "softmax_topk");
  if (n->capacity > 0) fprintf(out, ", capacity = %.9g", n->capacity);
  char more[160];
  tfx_fused_moe_attrs(n, more, sizeof more);
  fprintf(out, "%s}", more);
}

static const tfx_print_fn print_fns[TFX_OP_COUNT] = {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  [TFX_OP_##NAME] = tfx_print_##print,
#include "ops.h"
#undef TFX_OP
};

static void print_attrs(const tfx_node *n, FILE *out) {
  if (n->op >= 0 && n->op < TFX_OP_COUNT) print_fns[n->op](n, out);
}

void tfx_print_graph(const tfx_graph *g, FILE *out) {
  char ts[96];
  if (!g || !out) return;
  fprintf(out, "graph %s (max_seq = %lld", g->name ? g->name : "?", (long long)g->max_seq);
  if (g->arena_bytes) fprintf(out, ", arena = %lld", (long long)g->arena_bytes);
  if (g->kv_bytes) fprintf(out, ", kv = %lld", (long long)g->kv_bytes);
  if (g->weights_bytes) fprintf(out, ", weights = %lld", (long long)g->weights_bytes);
  fprintf(out, ")\n");
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    fprintf(out, "  %%%d = %s", n->id, tfx_op_name(n->op));
    if (n->op == TFX_OP_INPUT || n->op == TFX_OP_PARAM) {
      fputc(' ', out);
      print_quoted(n->name, out);
      print_attrs(n, out); /* a packed param's layout */
    } else {
      fputc('(', out);
      for (int j = 0; j < n->n_inputs; j++) fprintf(out, "%s%%%d", j ? ", " : "", n->inputs[j]);
      fputc(')', out);
      print_attrs(n, out);
    }
    fprintf(out, " : %s", tfx_type_str(&n->type, ts, sizeof ts));
    if (n->arena_offset >= 0) fprintf(out, " @arena+%lld", (long long)n->arena_offset);
    if (n->kv_offset >= 0) fprintf(out, " @kv+%lld", (long long)n->kv_offset);
    /* computed once per source (passes/cache_source.c); kept: in the source cache */
    if (n->src_cached) fprintf(out, n->src_cached == TFX_SRC_KEPT ? " ; source, kept" : " ; source");
    if (n->op == TFX_OP_PARAM && n->weight_offset >= 0) fprintf(out, " @weights+%lld", (long long)n->weight_offset);
    fputc('\n', out);
  }
  if (g->output >= 0) fprintf(out, "  return %%%d\n", g->output);
}
