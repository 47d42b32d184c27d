/* frontend/lower_ffn.c — lowering of the FFN-variant builtins that expand to
 * several IR nodes: an activation chosen by name (glu's and moe's `act`),
 * glu(x, w1, w3, act) = act(linear(x, w1)) * linear(x, w3) (GLU, ReGLU, GeGLU,
 * SwiGLU, bilinear), and moe(...) = router linear, MOE_ROUTE, the experts'
 * MOE_UP / activation / MOE_DOWN, and the optional shared experts. Shapes are
 * checked here with messages in the language's terms; the IR's type inference
 * checks them again. */
#include "lower_ffn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int add(tfx_graph *g, tfx_node *n, int line, int col, char *err, size_t errlen) {
  n->line = line;
  n->col = col;
  return tfx_graph_add(g, n, err, errlen);
}

static int add_op(tfx_graph *g, tfx_op op, int n_in, const int *in, int line, int col, char *err, size_t errlen) {
  tfx_node n = tfx_node_proto(op, n_in, in);
  return add(g, &n, line, col, err, errlen);
}

static int add_linear(tfx_graph *g, int x, int w, int b, int line, int col, char *err, size_t errlen) {
  return add_op(g, TFX_OP_LINEAR, b >= 0 ? 3 : 2, (int[]){x, w, b}, line, col, err, errlen);
}

int tfx_fe_lower_act(tfx_graph *g, int x, const char *act, int line, int col, char *err, size_t errlen) {
  if (x < 0) return -1;
  if (!strcmp(act, "none")) return x;
  tfx_node n = tfx_node_proto(TFX_OP_SILU, 1, (int[]){x});
  if (!strcmp(act, "sigmoid"))
    n.op = TFX_OP_SIGMOID;
  else if (!strcmp(act, "relu"))
    n.op = TFX_OP_RELU;
  else if (!strcmp(act, "gelu") || !strcmp(act, "gelu_tanh")) {
    n.op = TFX_OP_GELU;
    n.gelu_tanh = !strcmp(act, "gelu_tanh");
  } else if (strcmp(act, "silu"))
    return tfx_errf(err, errlen, "unknown activation '%s'", act);
  return add(g, &n, line, col, err, errlen);
}

int tfx_fe_lower_glu(tfx_graph *g, int x, int w1, int w3, int b1, int b3, const char *act, int line, int col, char *err,
                     size_t errlen) {
  char s1[64], s3[64];
  const tfx_type *t1 = &g->nodes[w1].type, *t3 = &g->nodes[w3].type;
  if (!tfx_type_equal(t1, t3))
    return tfx_errf(err, errlen, "glu: w1 is %s but w3 is %s; both are [hidden, in]", tfx_type_str(t1, s1, sizeof s1),
                 tfx_type_str(t3, s3, sizeof s3));
  int a = add_linear(g, x, w1, b1, line, col, err, errlen);
  a = tfx_fe_lower_act(g, a, act, line, col, err, errlen);
  int b = a < 0 ? -1 : add_linear(g, x, w3, b3, line, col, err, errlen);
  return b < 0 ? -1 : add_op(g, TFX_OP_MUL, 2, (int[]){a, b}, line, col, err, errlen);
}

/* w : f32[E, rows, cols] */
static int check_experts(const tfx_graph *g, int w, const char *name, int64_t E, int64_t rows, int64_t cols, char *err,
                         size_t errlen) {
  const tfx_type *t = &g->nodes[w].type;
  char s[64];
  if (t->dtype != TFX_DT_F32 || t->rank != 3 || t->dims[0] != E || t->dims[1] != rows || t->dims[2] != cols)
    return tfx_errf(err, errlen, "moe: %s is %s, expected f32[%lld, %lld, %lld] (experts, %s)", name,
                 tfx_type_str(t, s, sizeof s), (long long)E, (long long)rows, (long long)cols,
                 !strcmp(name, "w2") ? "dim, hidden" : "hidden, dim");
  return 0;
}

int tfx_fe_lower_moe(tfx_graph *g, const tfx_fe_moe_spec *s, char *err, size_t errlen) {
  char a[64], b[64];
  const tfx_type *xt = &g->nodes[s->x].type, *rt = &g->nodes[s->router].type, *w1t = &g->nodes[s->w1].type;
  if (xt->dtype != TFX_DT_F32 || xt->rank != 2 || xt->dims[0] != TFX_DIM_T)
    return tfx_errf(err, errlen, "moe: x must be f32[T, dim], got %s", tfx_type_str(xt, a, sizeof a));
  int64_t D = xt->dims[1];
  if (rt->dtype != TFX_DT_F32 || rt->rank != 2 || rt->dims[1] != D)
    return tfx_errf(err, errlen, "moe: router is %s, expected f32[experts, %lld] for x %s", tfx_type_str(rt, a, sizeof a),
                 (long long)D, tfx_type_str(xt, b, sizeof b));
  int64_t E = rt->dims[0];
  if (s->experts > 0 && s->experts != E)
    return tfx_errf(err, errlen, "moe: experts = %d but the router %s has %lld rows", s->experts,
                 tfx_type_str(rt, a, sizeof a), (long long)E);
  if (s->top_k < 1 || s->top_k > E)
    return tfx_errf(err, errlen, "moe: top_k = %d must be in 1..%lld (the number of experts)", s->top_k, (long long)E);
  if (!(s->capacity >= 0 && s->capacity <= 1e6))
    return tfx_errf(err, errlen, "moe: capacity = %g must be > 0 and at most 1e6", s->capacity);
  if (w1t->rank != 3)
    return tfx_errf(err, errlen, "moe: w1 is %s, expected f32[%lld, hidden, %lld] (experts, hidden, dim)",
                 tfx_type_str(w1t, a, sizeof a), (long long)E, (long long)D);
  int64_t H = w1t->dims[1];
  if (check_experts(g, s->w1, "w1", E, H, D, err, errlen) || check_experts(g, s->w2, "w2", E, D, H, err, errlen) ||
      (s->w3 >= 0 && check_experts(g, s->w3, "w3", E, H, D, err, errlen)))
    return -1;
  if ((s->shared_w1 >= 0) != (s->shared_w2 >= 0))
    return tfx_errf(err, errlen, "moe: shared experts need both shared_w1 and shared_w2");
  if (s->shared_w3 >= 0 && s->shared_w1 < 0) return tfx_errf(err, errlen, "moe: shared_w3 needs shared_w1 and shared_w2");

  int logits = add_linear(g, s->x, s->router, -1, s->line, s->col, err, errlen);
  if (logits < 0) return -1;
  tfx_node r = tfx_node_proto(TFX_OP_MOE_ROUTE, 1, (int[]){logits});
  r.top_k = s->top_k;
  r.moe_gate = s->gate && !strcmp(s->gate, "softmax") ? TFX_MOE_GATE_SOFTMAX : TFX_MOE_GATE_SOFTMAX_TOPK;
  r.capacity = s->capacity;
  int route = add(g, &r, s->line, s->col, err, errlen);
  if (route < 0) return -1;
  int h = add_op(g, TFX_OP_MOE_UP, 3, (int[]){s->x, route, s->w1}, s->line, s->col, err, errlen);
  h = tfx_fe_lower_act(g, h, s->act, s->line, s->col, err, errlen);
  if (h >= 0 && s->w3 >= 0) {
    int u = add_op(g, TFX_OP_MOE_UP, 3, (int[]){s->x, route, s->w3}, s->line, s->col, err, errlen);
    h = u < 0 ? -1 : add_op(g, TFX_OP_MUL, 2, (int[]){h, u}, s->line, s->col, err, errlen);
  }
  int y = h < 0 ? -1 : add_op(g, TFX_OP_MOE_DOWN, 3, (int[]){h, route, s->w2}, s->line, s->col, err, errlen);
  if (y < 0 || s->shared_w1 < 0) return y;

  const tfx_type *s1 = &g->nodes[s->shared_w1].type, *s2 = &g->nodes[s->shared_w2].type;
  if (s1->rank != 2 || s1->dims[1] != D || s2->rank != 2 || s2->dims[0] != D || s2->dims[1] != s1->dims[0])
    return tfx_errf(err, errlen,
                 "moe: shared_w1 %s and shared_w2 %s must be [shared_hidden, %lld] and [%lld, shared_hidden]",
                 tfx_type_str(s1, a, sizeof a), tfx_type_str(s2, b, sizeof b), (long long)D, (long long)D);
  int sh;
  if (s->shared_w3 >= 0) {
    sh = tfx_fe_lower_glu(g, s->x, s->shared_w1, s->shared_w3, -1, -1, s->act, s->line, s->col, err, errlen);
  } else {
    sh = add_linear(g, s->x, s->shared_w1, -1, s->line, s->col, err, errlen);
    sh = tfx_fe_lower_act(g, sh, s->act, s->line, s->col, err, errlen);
  }
  sh = sh < 0 ? -1 : add_linear(g, sh, s->shared_w2, -1, s->line, s->col, err, errlen);
  return sh < 0 ? -1 : add_op(g, TFX_OP_ADD, 2, (int[]){y, sh}, s->line, s->col, err, errlen);
}
