/* passes/quantize_weights.c — choosing the weights' formats: every PARAM of
 * rank >= 2 read only as a weight operand (an embedding table, the weight of
 * a linear / fused_linear / matmul, the experts' weights of moe_up /
 * moe_down, MLA's wkv_b; not a MoE router, fused into moe_route or a linear
 * read only by it: llama.cpp keeps ffn_gate_inp in f32) gets the format the graph's schedule asks
 * (g->schedule.quantize, set by schedule { quantize = ... } or --quantize; the quantize { } rules matched against the
 * param's name, the last matching rule winning), after tfx_quantize_fallback for its rows (each fallback recorded in
 * g->quant_fallbacks for --stats). Params read any other way (norm gains,
 * biases, positions) and 1-D params keep their format, and so does a param
 * asked `none`. The formats of issue #13 (tq2_0, `ternary`, the 2:4
 * s24_f32 / s24_q8_0) go only to params read only as the weight of linears
 * (linear_only); another weight asked for them keeps its format, recorded
 * as a fallback. `ternary` quantizes with the tensor's mean |w|
 * (tfx_quantize_ternary_row). The preset q4_k_m reproduces llama.cpp's Q4_K_M mix
 * (llama_tensor_get_type), finding the tensors' roles from the graph, not
 * from names (q4_k_m_choice).
 *
 * With a weights blob the data is converted: each row decoded to f32
 * (tfx_weight_dequant_row: the source may be f32 or a stored format) and
 * quantized (tfx_quantize_row); the result goes back in the param's slot
 * when it fits (it always does from f32), else at the end of a grown blob.
 * fold_weights rebuilds the blob compactly later. Without a blob (and no
 * param bound) only the types change. It runs first (before the fusions,
 * so the rules see the params of the source and concatenations never mix
 * formats); the manager runs it at -O0 too when the graph asks for a
 * format (passes/manager.c). A param already in the chosen format is left
 * untouched, so running it twice changes nothing. tfx_quantize_plan makes
 * the same choices before binding, which then quantizes each tensor as it
 * reads it (issue #17: the blob is never held in f32); the pass then finds
 * every format chosen and only records the fallbacks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

#define BLOB_ALIGN 64

/* 1 when node id (a linear) is read only by moe_route: it computes router logits. */
static int router_logits(const tfx_graph *g, int id) {
  int uses = 0;
  for (int i = id + 1; i < g->n_nodes; i++)
    for (int j = 0; j < g->nodes[i].n_inputs; j++)
      if (g->nodes[i].inputs[j] == id) {
        if (g->nodes[i].op != TFX_OP_MOE_ROUTE) return 0;
        uses++;
      }
  return uses > 0;
}

/* Is operand j of node c a weight operand the pass may quantize? Any
 * operand that accepts a storage format (tfx_node_weight_operand) except a
 * MoE router's (llama.cpp never quantizes ffn_gate_inp) and the operands of
 * CONCAT / PACK (the pass runs before the fusions build them; their
 * operands must share one format). */
static int weight_operand(const tfx_graph *g, const tfx_node *c, int j) {
  if (c->op == TFX_OP_MOE_ROUTE || c->op == TFX_OP_CONCAT || c->op == TFX_OP_PACK) return 0;
  if ((c->op == TFX_OP_LINEAR || c->op == TFX_OP_FUSED_LINEAR) && router_logits(g, c->id)) return 0;
  return tfx_node_weight_operand(c, j);
}

/* 1 when param p is read, at least once, and only as a weight operand. */
static int weight_only(const tfx_graph *g, int p) {
  int uses = 0;
  if (g->output == p) return 0;
  for (int i = p + 1; i < g->n_nodes; i++) {
    const tfx_node *c = &g->nodes[i];
    for (int j = 0; j < c->n_inputs; j++)
      if (c->inputs[j] == p) {
        if (!weight_operand(g, c, j)) return 0;
        uses++;
      }
  }
  return uses > 0;
}

/* 1 when param p is read only as the weight of linears (operand 1 of
 * LINEAR / FUSED_LINEAR): the formats only the linears read (tq2_0, the
 * 2:4 sparse formats: lowbit_format) go to no other weight. */
static int linear_only(const tfx_graph *g, int p) {
  for (int i = p + 1; i < g->n_nodes; i++) {
    const tfx_node *c = &g->nodes[i];
    for (int j = 0; j < c->n_inputs; j++)
      if (c->inputs[j] == p && !((c->op == TFX_OP_LINEAR || c->op == TFX_OP_FUSED_LINEAR) && j == 1)) return 0;
  }
  return 1;
}

/* The formats of issue #13's ternary and 2:4 choices. */
static int lowbit_format(tfx_dtype dt) {
  return dt == TFX_DT_TQ2_0 || dt == TFX_DT_TQ2_T || dt == TFX_DT_S24_F32 || dt == TFX_DT_S24_Q8_0;
}

/* ---- llama.cpp's Q4_K_M mix ---- */

/* The tensor roles llama_tensor_get_type distinguishes, found in the graph. */
typedef struct {
  int classifier;        /* the param of the linear producing the output, or -1 */
  int tok_embd;          /* the table of the embedding of the input tokens, or -1 */
  int *attn_v, n_attn_v; /* attn_v index of each param (-1: none), and their count */
  int *ffn_down, n_down; /* the same for the FFN down projections */
} roles;

static int param_weight_of(const tfx_graph *g, int id) {
  const tfx_node *n = &g->nodes[id];
  if ((n->op == TFX_OP_LINEAR || n->op == TFX_OP_FUSED_LINEAR) && g->nodes[n->inputs[1]].op == TFX_OP_PARAM)
    return n->inputs[1];
  return -1;
}

static int is_act(tfx_op op) {
  return op == TFX_OP_SILU || op == TFX_OP_GELU || op == TFX_OP_RELU || op == TFX_OP_SIGMOID;
}

/* The FFN's hidden value: act(linear(..)), or a product with one (GLU). */
static int ffn_hidden(const tfx_graph *g, int id) {
  const tfx_node *n = &g->nodes[id];
  if (is_act(n->op)) return param_weight_of(g, n->inputs[0]) >= 0;
  if (n->op == TFX_OP_MUL)
    for (int j = 0; j < 2; j++) {
      const tfx_node *a = &g->nodes[n->inputs[j]];
      if (is_act(a->op) && param_weight_of(g, a->inputs[0]) >= 0) return 1;
    }
  return 0;
}

static int find_roles(const tfx_graph *g, roles *r) {
  int nn = g->n_nodes;
  r->classifier = g->output >= 0 ? param_weight_of(g, g->output) : -1;
  r->tok_embd = -1;
  r->n_attn_v = r->n_down = 0;
  r->attn_v = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *r->attn_v);
  r->ffn_down = malloc((size_t)(nn > 0 ? nn : 1) * sizeof *r->ffn_down);
  if (!r->attn_v || !r->ffn_down) return -1;
  for (int i = 0; i < nn; i++) r->attn_v[i] = r->ffn_down[i] = -1;
  for (int i = 0; i < nn; i++) {
    const tfx_node *n = &g->nodes[i];
    int w = -1;
    if (n->op == TFX_OP_EMBEDDING && n->inputs[1] == g->input && g->nodes[n->inputs[0]].op == TFX_OP_PARAM &&
        r->tok_embd < 0)
      r->tok_embd = n->inputs[0];
    /* attn_v: the V projection, the attention's third operand */
    if (n->op == TFX_OP_ATTENTION && (w = param_weight_of(g, n->inputs[2])) >= 0 && r->attn_v[w] < 0)
      r->attn_v[w] = r->n_attn_v++;
    /* ffn_down: the linear reading the FFN's hidden value, or the experts' down weights */
    w = -1;
    if (n->op == TFX_OP_LINEAR && ffn_hidden(g, n->inputs[0])) w = n->inputs[1];
    if (n->op == TFX_OP_MOE_DOWN && g->nodes[n->inputs[2]].op == TFX_OP_PARAM) w = n->inputs[2];
    if (w >= 0 && g->nodes[w].op == TFX_OP_PARAM && r->ffn_down[w] < 0) r->ffn_down[w] = r->n_down++;
  }
  return 0;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third one between them. */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* The format llama_tensor_get_type gives param p under LLAMA_FTYPE_MOSTLY_Q4_K_M
 * (default Q4_K), before the fallback for rows: the classifier (and a token
 * embedding tied to it: llama.cpp quantizes a shared token_embd with the
 * output's rule) Q6_K, or Q8_0 when its rows are not a multiple of 256; attn_v
 * and ffn_down Q6_K in the layers of use_more_bits; everything else Q4_K (a
 * token embedding of its own included). llama.cpp's rules for 70B models,
 * 8-expert models and Falcon are not reproduced. */
static tfx_dtype q4_k_m_choice(const tfx_graph *g, const roles *r, int p) {
  if (p == r->classifier) return tfx_node_cols(&g->nodes[p]) % 256 ? TFX_DT_Q8_0 : TFX_DT_Q6_K;
  if (r->attn_v[p] >= 0 && use_more_bits(r->attn_v[p], r->n_attn_v)) return TFX_DT_Q6_K;
  if (r->ffn_down[p] >= 0 && use_more_bits(r->ffn_down[p], r->n_down)) return TFX_DT_Q6_K;
  return TFX_DT_Q4_K;
}

/* An earlier PARAM node bound to the same slot as node i (one slot per
 * param name: frontend/weights.c), or NULL. */
static const tfx_node *same_slot(const tfx_graph *g, int i) {
  const tfx_node *n = &g->nodes[i];
  if (n->weight_offset < 0 || !n->name) return NULL;
  for (int j = 0; j < i; j++)
    if (g->nodes[j].op == TFX_OP_PARAM && g->nodes[j].name && !strcmp(g->nodes[j].name, n->name)) return &g->nodes[j];
  return NULL;
}

/* ---- conversion ---- */

/* Converts param n's data in the blob to format dt (its type still the
 * source's; tfx_quantize_param); 0 or -1 with a message. */
static int convert(tfx_pass_ctx *c, tfx_node *n, tfx_dtype dt, const tfx_calib_entry *ge, const tfx_quant_choice *ch) {
  const char *name = n->name ? n->name : "?";
  if (!tfx_quantize_supported(dt))
    return tfx_errf(c->err, c->errlen, "quantize_weights: no quantizer for %s yet (param '%s')", tfx_dtype_name(dt),
                    name);
  tfx_type nt = n->type;
  nt.dtype = dt;
  int64_t old_bytes = tfx_type_bytes(&n->type, 1), new_bytes = tfx_type_bytes(&nt, 1);
  if (n->weight_offset < 0 || n->weight_offset + old_bytes > (int64_t)*c->weights_size)
    return tfx_errf(c->err, c->errlen, "quantize_weights: param '%s' is not bound to the weights blob", name);
  uint8_t *out = malloc((size_t)(new_bytes > 0 ? new_bytes : 1));
  char msg[480];
  int rc = 0;
  if (!out) {
    rc = tfx_errf(c->err, c->errlen, "quantize_weights: out of memory");
    goto done;
  }
  if (ge) { /* gptq: the rows decoded to f32, then GPTQ with the calibration's H */
    int64_t R = tfx_type_numel(&n->type, 1) / ge->K;
    float *w = malloc((size_t)(R * ge->K) * sizeof *w);
    int bad = !w;
    for (int64_t r = 0; r < R && !bad; r++)
      bad = tfx_weight_dequant_row(n, *c->weights + n->weight_offset, r, w + r * ge->K);
    if (bad)
      rc = tfx_errf(c->err, c->errlen, "quantize_weights: param '%s': cannot decode its rows for gptq", name);
    else if (dt == TFX_DT_Q3_K
                 ? tfx_gptq_q3_k(w, R, ge->K, ge->H, ch->gptq_damp, ch->gptq_act_order, out, msg, sizeof msg)
                 : tfx_gptq_q4_0(w, R, ge->K, ge->H, ch->gptq_group, ch->gptq_damp, ch->gptq_act_order, out, msg,
                                 sizeof msg))
      rc = tfx_errf(c->err, c->errlen, "quantize_weights: param '%s': %s", name, msg);
    free(w);
    if (rc) goto done;
  } else if (tfx_quantize_param(n, *c->weights + n->weight_offset, dt, out, msg, sizeof msg)) {
    rc = tfx_errf(c->err, c->errlen, "quantize_weights: %s", msg);
    goto done;
  }
  if (new_bytes <= old_bytes) {
    memcpy(*c->weights + n->weight_offset, out, (size_t)new_bytes);
  } else { /* larger than the slot (from a stored format): at the end of a grown blob */
    size_t off = (*c->weights_size + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
    size_t size = off + (size_t)new_bytes, cap = (size + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
    uint8_t *blob = aligned_alloc(BLOB_ALIGN, cap);
    if (!blob) {
      rc = tfx_errf(c->err, c->errlen, "quantize_weights: cannot allocate %zu bytes for the weights", cap);
      goto done;
    }
    memset(blob, 0, cap);
    memcpy(blob, *c->weights, *c->weights_size);
    memcpy(blob + off, out, (size_t)new_bytes);
    free(*c->weights);
    *c->weights = blob;
    *c->weights_size = size;
    c->g->weights_bytes = (int64_t)size;
    n->weight_offset = (int64_t)off;
  }
  n->type.dtype = dt;
done:
  free(out);
  return rc;
}

/* gptq's calibration entry of param n (rows of K): *ge, or NULL when the
 * data holds no H for it (it is then quantized to nearest, recorded as a
 * fallback); an error without calibration data or without any H (a v1
 * file). 0 or -1. */
static int gptq_entry(tfx_pass_ctx *c, const tfx_node *n, int64_t K, tfx_dtype dt, const tfx_calib_entry **ge) {
  const tfx_graph *g = c->g;
  *ge = NULL;
  int any = 0;
  for (int i = 0; g->calib && i < g->calib->n; i++) any |= g->calib->e[i].H != NULL;
  if (!g->calib)
    return tfx_errf(c->err, c->errlen,
                    "quantize_weights: gptq needs calibration data: --calibration FILE (from tfxc calibrate)");
  if (!any)
    return tfx_errf(c->err, c->errlen,
                    "quantize_weights: gptq needs the calibration's H = sum x x^T of each linear's input, and this "
                    "calibration data has none (a TFXCALIB v1 file? rerun tfxc calibrate)");
  const tfx_calib_entry *e = tfx_calib_find(g->calib, n->name);
  if (e && e->H && e->K == K) {
    *ge = e;
    return 0;
  }
  if (tfx_graph_add_quant_fallback(c->g, n->name, dt, dt, K))
    return tfx_errf(c->err, c->errlen, "quantize_weights: out of memory");
  c->g->quant_fallbacks[c->g->n_quant_fallbacks - 1].gptq_rtn = 1;
  return 0;
}

/* The pass; with plan (one per node), nothing is converted: plan[i] of a
 * param whose slot would be converted gets its format, and
 * every param's type changes as the pass would change it. */
static int choose(tfx_pass_ctx *c, tfx_quant_target *plan) {
  tfx_graph *g = c->g;
  if (!tfx_graph_asks_quant(g)) return 0;
  const tfx_schedule *s = &g->schedule;
  int have_blob = !plan && c->weights && *c->weights;
  roles r = {0};
  int rc = 0;
  if (s->quantize.mode == TFX_QUANT_Q4_K_M && find_roles(g, &r)) {
    rc = tfx_errf(c->err, c->errlen, "quantize_weights: out of memory");
    goto done;
  }
  /* a run after another (or after the fusions) starts its record anew */
  for (int i = 0; i < g->n_quant_fallbacks; i++) free(g->quant_fallbacks[i].name);
  g->n_quant_fallbacks = 0;
  for (int i = 0; i < g->n_nodes && rc == 0; i++) {
    tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_PARAM || n->type.rank < 2 || n->fx.panel || !weight_only(g, i)) continue;
    tfx_quant_choice ch = tfx_graph_param_choice(g, n->name); /* a rule is never the preset */
    if (ch.mode == TFX_QUANT_Q4_K_M)
      ch = (tfx_quant_choice){.mode = TFX_QUANT_FORMAT,
                              .dtype = q4_k_m_choice(g, &r, i),
                              .smooth_set = 0,
                              .smooth = 0.0f,
                              .llm_int8 = 0,
                              .threshold = 0.0f};
    if (ch.mode != TFX_QUANT_FORMAT && ch.mode != TFX_QUANT_TERNARY) continue;
    int64_t K = tfx_node_cols(n);
    if (lowbit_format(ch.dtype) && !linear_only(g, i)) { /* an embedding table, a MoE expert: kept */
      if (tfx_graph_add_quant_fallback(g, n->name, ch.dtype, n->type.dtype, K)) {
        rc = tfx_errf(c->err, c->errlen, "quantize_weights: out of memory");
        break;
      }
      continue;
    }
    tfx_dtype dt = tfx_quantize_fallback(ch.dtype, K);
    if (dt != ch.dtype && tfx_graph_add_quant_fallback(g, n->name, ch.dtype, dt, K)) {
      rc = tfx_errf(c->err, c->errlen, "quantize_weights: out of memory");
      break;
    }
    if (dt == n->type.dtype) continue;
    /* gptq: the weight's H from the calibration data (Q, K, V share one) */
    const tfx_calib_entry *ge = NULL;
    if (ch.gptq && (dt == TFX_DT_Q4_0 || dt == TFX_DT_Q3_K)) { /* bits = 3 on rows 256 does not divide: q4_0 */
      if (plan) continue;                                      /* bound in f32: the pass runs GPTQ on it */
      if ((rc = gptq_entry(c, n, K, dt, &ge))) break;
    }
    const tfx_node *twin = same_slot(g, i);
    if (twin) { /* another PARAM node of this name shares the slot: already converted */
      n->type.dtype = twin->type.dtype;
      n->weight_offset = twin->weight_offset;
      continue;
    }
    if (plan) { /* tfx_quantize_plan: binding converts it */
      plan[i] = (tfx_quant_target){dt};
      n->type.dtype = dt;
    } else if (have_blob)
      rc = convert(c, n, dt, ge, &ch);
    else if (n->weight_offset >= 0)
      rc = tfx_errf(c->err, c->errlen, "quantize_weights: param '%s' is bound but no weights blob was given",
                    n->name ? n->name : "?");
    else
      n->type.dtype = dt; /* types only (--emit=ir without weights) */
  }
done:
  free(r.attn_v);
  free(r.ffn_down);
  return rc;
}

int tfx_pass_quantize_weights(tfx_pass_ctx *c) { return choose(c, NULL); }

int tfx_quantize_plan(tfx_graph *g, tfx_quant_target *plan, char *err, size_t errlen) {
  for (int i = 0; i < g->n_nodes; i++) plan[i] = (tfx_quant_target){g->nodes[i].type.dtype};
  if (!tfx_graph_asks_quant(g)) return 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].weight_offset >= 0)
      return tfx_errf(err, errlen, "quantize_weights: the formats are planned before any param is bound");
  tfx_dtype *was = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *was);
  if (!was) return tfx_errf(err, errlen, "quantize_weights: out of memory");
  for (int i = 0; i < g->n_nodes; i++) was[i] = g->nodes[i].type.dtype;
  tfx_pass_ctx c = {g, NULL, NULL, 0, 0, {1, 1}, err, errlen};
  int rc = choose(&c, plan), changed = 0;
  for (int i = 0; i < g->n_nodes; i++) { /* the types each param ends in; the graph as it was */
    tfx_node *n = &g->nodes[i];
    plan[i].dtype = n->type.dtype;
    changed |= plan[i].dtype != was[i];
    n->type.dtype = was[i];
  }
  for (int i = 0; i < g->n_quant_fallbacks; i++) free(g->quant_fallbacks[i].name);
  g->n_quant_fallbacks = 0; /* the pass records them when it runs */
  free(was);
  return rc ? -1 : changed;
}
