/* passes/rewrite.c — in-place graph editing for the passes (see rewrite.h):
 * appending keyed nodes, redirecting uses, changing operands with use counts
 * kept current, consumer lists, and the commit that reorders the nodes
 * topologically by key, drops what the output does not need and renumbers. */
#include "rewrite.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int rw_grow(tfx_rw *rw, int need) {
  if (need <= rw->cap) return 0;
  int cap = rw->cap ? rw->cap : 64;
  while (cap < need) cap *= 2;
  double *key = realloc(rw->key, (size_t)cap * sizeof *key);
  if (key) rw->key = key;
  int *uses = key ? realloc(rw->uses, (size_t)cap * sizeof *uses) : NULL;
  if (uses) rw->uses = uses;
  if (!key || !uses) return -1;
  rw->cap = cap;
  return 0;
}

int tfx_rw_begin(tfx_rw *rw, tfx_graph *g, char *err, size_t errlen) {
  memset(rw, 0, sizeof *rw);
  rw->g = g;
  if (rw_grow(rw, g->n_nodes + 1)) {
    tfx_rw_abort(rw);
    return tfx_errf(err, errlen, "out of memory");
  }
  for (int i = 0; i < g->n_nodes; i++) {
    rw->key[i] = i;
    rw->uses[i] = 0;
  }
  for (int i = 0; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++) rw->uses[g->nodes[i].inputs[j]]++;
  if (g->output >= 0 && g->output < g->n_nodes) rw->uses[g->output]++;
  return 0;
}

void tfx_rw_abort(tfx_rw *rw) {
  free(rw->key);
  free(rw->uses);
  rw->key = NULL;
  rw->uses = NULL;
  rw->cap = 0;
}

int tfx_rw_add(tfx_rw *rw, const tfx_node *proto, double key, char *err, size_t errlen) {
  tfx_graph *g = rw->g;
  if (rw_grow(rw, g->n_nodes + 1)) return tfx_errf(err, errlen, "out of memory");
  char msg[256];
  int id = tfx_graph_add(g, proto, msg, sizeof msg);
  if (id < 0) return tfx_errf(err, errlen, "cannot add a %s node: %s", tfx_op_name(proto->op), msg);
  rw->key[id] = key;
  rw->uses[id] = 0;
  for (int j = 0; j < g->nodes[id].n_inputs; j++) rw->uses[g->nodes[id].inputs[j]]++;
  rw->changed = 1;
  return id;
}

void tfx_rw_replace_uses(tfx_rw *rw, int from, int to) {
  tfx_graph *g = rw->g;
  if (from == to) return;
  for (int i = 0; i < g->n_nodes; i++) {
    if (i == to) continue; /* `to` may read `from` (e.g. a slice of it) */
    tfx_node *n = &g->nodes[i];
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j] == from) {
        n->inputs[j] = to;
        rw->uses[from]--;
        rw->uses[to]++;
      }
  }
  if (g->output == from) {
    g->output = to;
    rw->uses[from]--;
    rw->uses[to]++;
  }
  rw->changed = 1;
}

void tfx_rw_detach(tfx_rw *rw, int id) {
  tfx_node *n = &rw->g->nodes[id];
  for (int j = 0; j < n->n_inputs; j++) rw->uses[n->inputs[j]]--;
  n->n_inputs = 0;
  rw->changed = 1;
}

int tfx_rw_set_inputs(tfx_rw *rw, int id, int n, const int *inputs, char *err, size_t errlen) {
  tfx_graph *g = rw->g;
  tfx_node *nd = &g->nodes[id];
  if (n < 0 || n > TFX_MAX_INPUTS) return tfx_errf(err, errlen, "%%%d: %d operands", id, n);
  tfx_node old = *nd;
  for (int j = 0; j < nd->n_inputs; j++) rw->uses[nd->inputs[j]]--;
  nd->n_inputs = n;
  for (int j = 0; j < n; j++) {
    nd->inputs[j] = inputs[j];
    rw->uses[inputs[j]]++;
  }
  tfx_type t;
  char msg[256] = "the result type changes";
  if (tfx_infer_type(g, nd, &t, msg, sizeof msg) || !tfx_type_equal(&t, &nd->type)) {
    for (int j = 0; j < nd->n_inputs; j++) rw->uses[nd->inputs[j]]--;
    *nd = old;
    for (int j = 0; j < nd->n_inputs; j++) rw->uses[nd->inputs[j]]++;
    return tfx_errf(err, errlen, "internal error: rewriting %%%d (%s) changes its type or breaks it: %s", id,
                    tfx_op_name(nd->op), msg);
  }
  rw->changed = 1;
  return 0;
}

int tfx_rw_consumers(const tfx_graph *g, int **start_out, int **list_out) {
  int nn = g->n_nodes;
  int *start = calloc((size_t)nn + 1, sizeof *start);
  int total = 0;
  for (int i = 0; i < nn; i++) total += g->nodes[i].n_inputs;
  int *list = malloc((size_t)(total > 0 ? total : 1) * sizeof *list);
  int *fill = calloc((size_t)nn + 1, sizeof *fill);
  if (!start || !list || !fill) {
    free(start);
    free(list);
    free(fill);
    return -1;
  }
  for (int i = 0; i < nn; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++) start[g->nodes[i].inputs[j] + 1]++;
  for (int i = 0; i < nn; i++) start[i + 1] += start[i];
  for (int i = 0; i < nn; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++) {
      int v = g->nodes[i].inputs[j];
      list[start[v] + fill[v]++] = i;
    }
  free(fill);
  *start_out = start;
  *list_out = list;
  return 0;
}

typedef struct {
  double key;
  int id;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  if (x->key < y->key) return -1;
  if (x->key > y->key) return 1;
  return (x->id > y->id) - (x->id < y->id);
}

int tfx_rw_commit(tfx_rw *rw, char *err, size_t errlen) {
  tfx_graph *g = rw->g;
  int nn = g->n_nodes, rc = 0;
  char *live = calloc((size_t)nn + 1, 1), *state = calloc((size_t)nn + 1, 1);
  int *stack = malloc(((size_t)nn * (TFX_MAX_INPUTS + 1) + 2 + TFX_MAX_FWD_INPUTS) * sizeof *stack);
  int *order = malloc(((size_t)nn + 1) * sizeof *order), *newid = malloc(((size_t)nn + 1) * sizeof *newid);
  keyed *ks = malloc(((size_t)nn + 1) * sizeof *ks);
  tfx_node *nodes = malloc(((size_t)nn + 1) * sizeof *nodes);
  if (!live || !state || !stack || !order || !newid || !ks || !nodes) {
    rc = tfx_errf(err, errlen, "out of memory");
    goto done;
  }
  /* liveness from the output (operands may have larger ids after appends) */
  int sp = 0;
  if (g->output >= 0 && g->output < nn) stack[sp++] = g->output;
  if (g->input >= 0 && g->input < nn) stack[sp++] = g->input;
  for (int i = 1; i < g->n_fwd_inputs; i++) /* every forward input stays: the caller passes it */
    if (g->fwd_inputs[i] >= 0 && g->fwd_inputs[i] < nn) stack[sp++] = g->fwd_inputs[i];
  while (sp) {
    int v = stack[--sp];
    if (live[v]) continue;
    live[v] = 1;
    for (int j = 0; j < g->nodes[v].n_inputs; j++)
      if (!live[g->nodes[v].inputs[j]]) stack[sp++] = g->nodes[v].inputs[j];
  }
  /* a kernel whose statistics nobody reads any more stops writing them */
  for (int i = 0; i < nn; i++)
    if (live[i] && g->nodes[i].op == TFX_OP_NORM_STATS && g->nodes[i].fx.index == 1) state[g->nodes[i].inputs[0]] = 1;
  for (int i = 0; i < nn; i++) {
    if (tfx_stats_writer(&g->nodes[i]) && !state[i]) g->nodes[i].fx.stats_out = g->nodes[i].fx.stats_seg = 0;
    state[i] = 0;
  }
  int nk = 0;
  for (int i = 0; i < nn; i++)
    if (live[i]) ks[nk++] = (keyed){rw->key[i], i};
  qsort(ks, (size_t)nk, sizeof *ks, cmp_keyed);
  /* stable topological placement: each node in key order, its unplaced
   * operands first (depth first, explicit stack) */
  int no = 0;
  for (int k = 0; k < nk && rc == 0; k++) {
    if (state[ks[k].id]) continue;
    sp = 0;
    stack[sp++] = ks[k].id;
    while (sp && rc == 0) {
      int u = stack[sp - 1];
      if (state[u] == 2) {
        sp--;
      } else if (state[u] == 0) {
        state[u] = 1;
        for (int j = g->nodes[u].n_inputs - 1; j >= 0; j--) {
          int v = g->nodes[u].inputs[j];
          if (state[v] == 1) rc = tfx_errf(err, errlen, "internal error: the rewrite made a cycle at %%%d", v);
          if (state[v] == 0) stack[sp++] = v;
        }
      } else {
        state[u] = 2;
        order[no++] = u;
        sp--;
      }
    }
  }
  if (rc) goto done;
  for (int i = 0; i < nn; i++) newid[i] = -1;
  for (int k = 0; k < no; k++) newid[order[k]] = k;
  for (int k = 0; k < no; k++) {
    nodes[k] = g->nodes[order[k]];
    nodes[k].id = k;
    for (int j = 0; j < nodes[k].n_inputs; j++) nodes[k].inputs[j] = newid[nodes[k].inputs[j]];
  }
  for (int i = 0; i < nn; i++)
    if (!live[i]) free(g->nodes[i].name);
  memcpy(g->nodes, nodes, (size_t)no * sizeof *nodes);
  if (no != nn) rw->changed = 1;
  g->n_nodes = no;
  g->input = g->input >= 0 && g->input < nn ? newid[g->input] : g->input;
  for (int i = 0; i < g->n_fwd_inputs; i++)
    if (g->fwd_inputs[i] >= 0 && g->fwd_inputs[i] < nn) g->fwd_inputs[i] = newid[g->fwd_inputs[i]];
  g->output = g->output >= 0 && g->output < nn ? newid[g->output] : g->output;
done:
  free(live);
  free(state);
  free(stack);
  free(order);
  free(newid);
  free(ks);
  free(nodes);
  tfx_rw_abort(rw);
  return rc;
}

int tfx_rw_is_act(tfx_op op) {
  return op == TFX_OP_SILU || op == TFX_OP_GELU || op == TFX_OP_RELU || op == TFX_OP_SIGMOID;
}

/* the activation ops an epilogue can apply (the others: TFX_ACT_NONE) */
int tfx_rw_act_kind(const tfx_node *n) {
  if (n->op == TFX_OP_SILU) return TFX_ACT_SILU;
  if (n->op == TFX_OP_GELU) return n->gelu_tanh ? TFX_ACT_GELU_TANH : TFX_ACT_GELU;
  if (n->op == TFX_OP_RELU) return TFX_ACT_RELU;
  if (n->op == TFX_OP_SIGMOID) return TFX_ACT_SIGMOID;
  return TFX_ACT_NONE;
}

int tfx_rw_fl_set(tfx_rw *rw, int id, const int *op, char *err, size_t errlen) {
  tfx_node *n = &rw->g->nodes[id];
  tfx_fused saved = n->fx;
  int in[TFX_MAX_INPUTS], k = 0;
  for (int r = TFX_FL_X; r <= TFX_FL_RNBIAS; r++) {
    if (op[r] < 0) continue;
    if (k == TFX_MAX_INPUTS) return tfx_errf(err, errlen, "internal error: %%%d: too many operands", id);
    in[k++] = op[r];
  }
  n->fx.has_bias = op[TFX_FL_BIAS] >= 0;
  n->fx.norm = op[TFX_FL_STATS] < 0 ? TFX_NORM_NONE : op[TFX_FL_NBIAS] >= 0 ? TFX_NORM_LAYER : TFX_NORM_RMS;
  n->fx.residual = op[TFX_FL_RESIDUAL] >= 0;
  n->fx.rnorm = op[TFX_FL_RSTATS] < 0 ? TFX_NORM_NONE : op[TFX_FL_RNBIAS] >= 0 ? TFX_NORM_LAYER : TFX_NORM_RMS;
  if (tfx_rw_set_inputs(rw, id, k, in, err, errlen)) {
    rw->g->nodes[id].fx = saved;
    return -1;
  }
  return 0;
}

void tfx_rw_fl_get(const tfx_graph *g, int id, int *op) {
  const tfx_node *n = &g->nodes[id];
  for (int r = TFX_FL_X; r <= TFX_FL_RNBIAS; r++) {
    int i = tfx_fl_operand(n, (tfx_fl_role)r);
    op[r] = i >= 0 ? n->inputs[i] : -1;
  }
}

int tfx_rw_fl_operands(tfx_rw *rw, int id, int x, int w, int bias, int stats, int gain, int nbias, int residual,
                       char *err, size_t errlen) {
  int op[TFX_FL_RNBIAS + 1];
  tfx_rw_fl_get(rw->g, id, op); /* keeps the residual's norm */
  op[TFX_FL_X] = x, op[TFX_FL_W] = w, op[TFX_FL_BIAS] = bias;
  op[TFX_FL_STATS] = stats, op[TFX_FL_GAIN] = stats >= 0 ? gain : -1, op[TFX_FL_NBIAS] = stats >= 0 ? nbias : -1;
  op[TFX_FL_RESIDUAL] = residual;
  if (residual < 0) op[TFX_FL_RSTATS] = op[TFX_FL_RGAIN] = op[TFX_FL_RNBIAS] = -1;
  return tfx_rw_fl_set(rw, id, op, err, errlen);
}

int tfx_rw_set_node(tfx_rw *rw, int id, const tfx_fused *fx, int n, const int *inputs, char *err, size_t errlen) {
  tfx_node *nd = &rw->g->nodes[id];
  tfx_fused saved = nd->fx;
  nd->fx = *fx;
  if (tfx_rw_set_inputs(rw, id, n, inputs, err, errlen)) {
    rw->g->nodes[id].fx = saved;
    return -1;
  }
  return 0;
}

int tfx_rw_fusable_weight(const tfx_graph *g, int id) {
  if (id < 0 || id >= g->n_nodes) return 0;
  const tfx_node *n = &g->nodes[id];
  if (n->op == TFX_OP_PARAM) return 1;
  if (n->op != TFX_OP_CONCAT && n->op != TFX_OP_PACK) return 0;
  for (int i = 0; i < n->n_inputs; i++)
    if (!tfx_rw_fusable_weight(g, n->inputs[i])) return 0;
  return 1;
}

int tfx_rw_fusable_linear(const tfx_graph *g, int id) {
  const tfx_node *n = &g->nodes[id];
  return n->op == TFX_OP_LINEAR && n->n_inputs > 1 && tfx_rw_fusable_weight(g, n->inputs[1]);
}

int tfx_rw_to_fused(tfx_rw *rw, int id, char *err, size_t errlen) {
  tfx_node *n = &rw->g->nodes[id];
  if (n->op == TFX_OP_FUSED_LINEAR) return 0;
  if (n->op != TFX_OP_LINEAR) return tfx_errf(err, errlen, "internal error: %%%d is not a linear", id);
  int x = n->inputs[0], w = n->inputs[1], b = n->n_inputs > 2 ? n->inputs[2] : -1;
  n->op = TFX_OP_FUSED_LINEAR;
  memset(&n->fx, 0, sizeof n->fx);
  n->fx.n_segs = 1;
  n->fx.segs[0] = rw->g->nodes[w].type.dims[0];
  if (tfx_rw_fl_operands(rw, id, x, w, b, -1, -1, -1, -1, err, errlen)) {
    n = &rw->g->nodes[id];
    n->op = TFX_OP_LINEAR;
    return -1;
  }
  return 0;
}

int tfx_rw_readers(const tfx_graph *g, int id, int *out, int cap) {
  int n = 0;
  for (int i = id + 1; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++)
      if (g->nodes[i].inputs[j] == id) {
        if (n < cap) out[n] = i;
        n++;
        break;
      }
  return n;
}

int tfx_rw_sole_param(const tfx_graph *g, int p, int by, size_t blob) {
  const tfx_node *n = &g->nodes[p];
  if (n->op != TFX_OP_PARAM || n->fx.panel || n->weight_offset < 0 ||
      (size_t)(n->weight_offset + tfx_type_bytes(&n->type, 1)) > blob || g->output == p)
    return 0;
  int r[2];
  if (tfx_rw_readers(g, p, r, 2) != 1 || r[0] != by) return 0;
  int uses = 0;
  for (int j = 0; j < g->nodes[by].n_inputs; j++) uses += g->nodes[by].inputs[j] == p;
  if (uses != 1) return 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (i != p && g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].weight_offset == n->weight_offset) return 0;
  return 1;
}
