/* ir/print.c — the stable text form of a graph, used by --emit=ir,
 * --print-after and golden tests:
 *   graph NAME (max_seq = N[, arena = A][, kv = K][, weights = W])
 *     %ID = OP(%a, %b) {attr = value, ...} : TYPE [@arena+OFF] [@kv+OFF] [@weights+OFF]
 *     return %ID
 * Only the attributes an op uses are printed; doubles use %.9g. */
#include "ir.h"
#include "fused.h"

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

static void print_attrs(const tfx_node *n, FILE *out) {
  switch (n->op) {
  case TFX_OP_RMSNORM:
  case TFX_OP_LAYERNORM: fprintf(out, " {eps = %.9g}", n->eps); break;
  case TFX_OP_GELU: fprintf(out, " {approximate = %s}", n->gelu_tanh ? "tanh" : "erf"); break;
  case TFX_OP_ROPE:
    fprintf(out, " {heads = %d, head_dim = %d, rotary_dim = %d, theta = %.9g, style = %s}", n->heads, n->head_dim,
            n->rotary_dim, n->theta, n->rope_style == TFX_ROPE_HALF ? "half" : "interleaved");
    break;
  case TFX_OP_ATTENTION:
  case TFX_OP_MLA_ATTENTION: tfx_print_attention_attrs(n, out); break;
  case TFX_OP_SINUSOIDAL: fprintf(out, " {base = %.9g}", n->theta); break;
  case TFX_OP_MOE_ROUTE:
    fprintf(out, " {top_k = %d, gate = %s", n->top_k,
            n->moe_gate == TFX_MOE_GATE_SOFTMAX ? "softmax" : "softmax_topk");
    if (n->capacity > 0) fprintf(out, ", capacity = %.9g", n->capacity);
    char more[160];
    tfx_fused_moe_attrs(n, more, sizeof more);
    fprintf(out, "%s}", more);
    break;
  /* the optimizer's ops and forms (ir/fused.c) */
  case TFX_OP_PARAM:
  case TFX_OP_EMBEDDING:
  case TFX_OP_MOE_UP:
  case TFX_OP_MOE_DOWN:
  case TFX_OP_NORM_STATS:
  case TFX_OP_FUSED_LINEAR:
  case TFX_OP_SLICE:
  case TFX_OP_PACK: tfx_fused_print_attrs(n, out); break;
  /* no attributes */
  case TFX_OP_INPUT:
  case TFX_OP_LINEAR:
  case TFX_OP_MATMUL:
  case TFX_OP_ADD:
  case TFX_OP_SUB:
  case TFX_OP_MUL:
  case TFX_OP_SILU:
  case TFX_OP_RELU:
  case TFX_OP_SOFTMAX:
  case TFX_OP_SIGMOID:
  case TFX_OP_POSITIONS:
  case TFX_OP_CONCAT:
  case TFX_OP_COUNT: break;
  }
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
      tfx_fused_print_attrs(n, out); /* a packed param's layout */
    } else {
      fputc('(', out);
      for (int j = 0; j < n->n_inputs; j++) fprintf(out, "%s%%%d", j ? ", " : "", n->inputs[j]);
      fputc(')', out);
      print_attrs(n, out);
    }
    fprintf(out, " : %s", tfx_type_str(&n->type, ts, sizeof ts));
    if (n->arena_offset >= 0) fprintf(out, " @arena+%lld", (long long)n->arena_offset);
    if (n->kv_offset >= 0) fprintf(out, " @kv+%lld", (long long)n->kv_offset);
    if (n->op == TFX_OP_PARAM && n->weight_offset >= 0) fprintf(out, " @weights+%lld", (long long)n->weight_offset);
    fputc('\n', out);
  }
  if (g->output >= 0) fprintf(out, "  return %%%d\n", g->output);
}
