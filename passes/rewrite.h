/* passes/rewrite.h — private to passes/: editing a graph in place. A pass
 * opens a rewrite, appends nodes with a placement key (where in the node
 * order they belong; old node i has key i), redirects uses and changes
 * operands, then commits: the nodes are put back in a topological order that
 * follows the keys wherever the operands allow, nodes the output does not
 * need are dropped (the input always stays), and ids are renumbered. Use
 * counts are kept up to date through every edit. */
#ifndef TFX_PASSES_REWRITE_H
#define TFX_PASSES_REWRITE_H

#include "passes.h"

typedef struct tfx_rw {
  tfx_graph *g;
  double *key; /* placement key per node */
  int *uses;   /* operand uses per node, +1 for the graph output */
  int cap;
  int changed;
} tfx_rw;

int tfx_rw_begin(tfx_rw *rw, tfx_graph *g, char *err, size_t errlen);
/* Appends a node (type inferred); its id, or -1 with a message. */
int tfx_rw_add(tfx_rw *rw, const tfx_node *proto, double key, char *err, size_t errlen);
/* Every use of `from` (operands and the graph output) now reads `to`. */
void tfx_rw_replace_uses(tfx_rw *rw, int from, int to);
/* A node left without uses (its value now made by another node) lets go of
 * its operands, so their use counts are exact again; it is dropped at the
 * commit. */
void tfx_rw_detach(tfx_rw *rw, int id);
/* Sets the operands of node id (counts follow); re-infers its type and
 * fails when it changes (the edit would change the value's type). */
int tfx_rw_set_inputs(tfx_rw *rw, int id, int n, const int *inputs, char *err, size_t errlen);
/* Consumers of every node as CSR arrays (start has n_nodes + 1 entries);
 * the caller frees both. A consumer appears once per operand use. */
int tfx_rw_consumers(const tfx_graph *g, int **start, int **list);
int tfx_rw_commit(tfx_rw *rw, char *err, size_t errlen);
void tfx_rw_abort(tfx_rw *rw);

/* The nodes reading node id (each once, in node order) into out[] (at most
 * cap); returns how many there are. */
int tfx_rw_readers(const tfx_graph *g, int id, int *out, int cap);
/* 1 when PARAM p is bound inside the blob (blob bytes), unpacked, not the
 * output, read by node `by` alone (once), and no other PARAM node shares its
 * slot: a pass may rewrite its data in place. */
int tfx_rw_sole_param(const tfx_graph *g, int p, int by, size_t blob);

/* Shared predicates. */
int tfx_rw_is_act(tfx_op op); /* silu, gelu, relu, sigmoid */
int tfx_rw_act_kind(const tfx_node *n);
/* Sets a FUSED_LINEAR's operands from their roles (-1 = absent) and the
 * matching presence flags of n->fx (the residual's norm operands are kept
 * while there is a residual). */
int tfx_rw_fl_operands(tfx_rw *rw, int id, int x, int w, int bias, int stats, int gain, int nbias, int residual,
                       char *err, size_t errlen);
/* The same with every role (op[r] for r = TFX_FL_X .. TFX_FL_RNBIAS, -1 =
 * absent; sets has_bias, norm, residual and rnorm); and the node's current
 * operands by role. */
int tfx_rw_fl_set(tfx_rw *rw, int id, const int *op, char *err, size_t errlen);
void tfx_rw_fl_get(const tfx_graph *g, int id, int *op);
/* Gives node id the attributes *fx and these operands (type re-inferred and
 * unchanged, as tfx_rw_set_inputs); both are restored on failure. */
int tfx_rw_set_node(tfx_rw *rw, int id, const tfx_fused *fx, int n, const int *inputs, char *err, size_t errlen);
/* Turns a LINEAR into an equivalent FUSED_LINEAR (one segment); no-op on a
 * FUSED_LINEAR. */
int tfx_rw_to_fused(tfx_rw *rw, int id, char *err, size_t errlen);
/* 1 when node id can be a FUSED_LINEAR's weight: a PARAM, or a CONCAT or
 * PACK of such (fold_weights computes those at compile time). A weight
 * computed at run time (`linear(x, a + b)`) keeps its plain LINEAR. */
int tfx_rw_fusable_weight(const tfx_graph *g, int id);
/* 1 when the LINEAR id may become a FUSED_LINEAR (its weight is fusable). */
int tfx_rw_fusable_linear(const tfx_graph *g, int id);

#endif
