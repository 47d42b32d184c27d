/* ir/quant_choice.c — what is asked of the weights' formats: the names of
 * the choices (schedule { quantize = ... }, quantize { } rules, --quantize),
 * the rules' name patterns, and the graph's record of the rules and of the
 * fallbacks the quantize_weights pass made (passes/quantize_weights.c). */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static const struct {
  const char *name;
  tfx_quant_mode mode;
  tfx_dtype dtype;
} choices[] = {
    {"f16", TFX_QUANT_FORMAT, TFX_DT_F16},        {"bf16", TFX_QUANT_FORMAT, TFX_DT_BF16},
    {"q8_0", TFX_QUANT_FORMAT, TFX_DT_Q8_0},      {"q4_0", TFX_QUANT_FORMAT, TFX_DT_Q4_0},
    {"q4_k", TFX_QUANT_FORMAT, TFX_DT_Q4_K},      {"q6_k", TFX_QUANT_FORMAT, TFX_DT_Q6_K},
    {"none", TFX_QUANT_KEEP, TFX_DT_F32},         {"q4_k_m", TFX_QUANT_Q4_K_M, TFX_DT_Q4_K},
    {"q5_0", TFX_QUANT_FORMAT, TFX_DT_Q5_0},      {"tq2_0", TFX_QUANT_FORMAT, TFX_DT_TQ2_0},
    {"ternary", TFX_QUANT_TERNARY, TFX_DT_TQ2_0},
};
#define N_CHOICES ((int)(sizeof choices / sizeof choices[0]))

/* `sparse24(FMT)` (blanks allowed around the parentheses and FMT): 2:4
 * sparsity over the value format FMT, f32 or q8_0. 0, or -1 when name is not
 * such a choice. */
static int sparse24_parse(const char *name, tfx_quant_choice *out) {
  static const char head[] = "sparse24";
  if (strncmp(name, head, sizeof head - 1)) return -1;
  const char *p = name + sizeof head - 1;
  while (*p == ' ' || *p == '\t') p++;
  if (*p++ != '(') return -1;
  while (*p == ' ' || *p == '\t') p++;
  const char *f = p;
  while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') p++;
  size_t n = (size_t)(p - f);
  while (*p == ' ' || *p == '\t') p++;
  if (*p != ')' || p[1]) return -1;
  tfx_dtype dt;
  if (n == 3 && !strncmp(f, "f32", 3))
    dt = TFX_DT_S24_F32;
  else if (n == 4 && !strncmp(f, "q8_0", 4))
    dt = TFX_DT_S24_Q8_0;
  else
    return -1;
  out->mode = TFX_QUANT_FORMAT;
  out->dtype = dt;
  return 0;
}

int tfx_quant_choice_parse(const char *name, int allow_preset, tfx_quant_choice *out) {
  if (name && !sparse24_parse(name, out)) return 0;
  for (int i = 0; name && i < N_CHOICES; i++)
    if (!strcmp(name, choices[i].name) && (allow_preset || choices[i].mode != TFX_QUANT_Q4_K_M)) {
      out->mode = choices[i].mode;
      out->dtype = choices[i].dtype;
      return 0;
    }
  return -1;
}

const char *tfx_quant_choice_name(tfx_quant_choice c) {
  if (c.mode == TFX_QUANT_KEEP) return "none";
  if (c.mode == TFX_QUANT_Q4_K_M) return "q4_k_m";
  if (c.mode == TFX_QUANT_TERNARY) return "ternary";
  if (c.dtype == TFX_DT_S24_F32) return "sparse24(f32)";
  if (c.dtype == TFX_DT_S24_Q8_0) return "sparse24(q8_0)";
  return tfx_dtype_name(c.dtype);
}

const char *tfx_quant_choice_names(int allow_preset) {
  return allow_preset
             ? "f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k, tq2_0, ternary, sparse24(f32), sparse24(q8_0), "
               "q4_k_m or none"
             : "f16, bf16, q8_0, q4_0, q5_0, q4_k, q6_k, tq2_0, ternary, sparse24(f32), sparse24(q8_0) or none";
}

int tfx_quant_pattern_match(const char *p, const char *s) {
  /* iterative glob with backtracking to the last '*' */
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*p == '*') {
      star = p++;
      resume = s;
    } else if (*p == *s) {
      p++;
      s++;
    } else if (star) {
      p = star + 1;
      s = ++resume;
    } else {
      return 0;
    }
  }
  while (*p == '*') p++;
  return *p == 0;
}

int tfx_graph_add_quant_rule(tfx_graph *g, const char *pattern, tfx_quant_choice c, int line, int col) {
  tfx_schedule *s = &g->schedule;
  tfx_quant_rule *r = realloc(s->quant_rules, (size_t)(s->n_quant_rules + 1) * sizeof *r);
  if (!r) return -1;
  s->quant_rules = r;
  char *p = strdup(pattern);
  if (!p) return -1;
  r[s->n_quant_rules++] = (tfx_quant_rule){p, c, line, col};
  return 0;
}

int tfx_graph_add_quant_fallback(tfx_graph *g, const char *name, tfx_dtype asked, tfx_dtype got, int64_t K) {
  tfx_quant_fallback *f = realloc(g->quant_fallbacks, (size_t)(g->n_quant_fallbacks + 1) * sizeof *f);
  if (!f) return -1;
  g->quant_fallbacks = f;
  char *n = strdup(name ? name : "?");
  if (!n) return -1;
  f[g->n_quant_fallbacks++] = (tfx_quant_fallback){n, asked, got, K};
  return 0;
}

int tfx_graph_asks_quant(const tfx_graph *g) {
  return g->schedule.quantize.mode != TFX_QUANT_KEEP || g->schedule.n_quant_rules > 0;
}

void tfx_graph_free_quant(tfx_graph *g) {
  for (int i = 0; i < g->schedule.n_quant_rules; i++) free(g->schedule.quant_rules[i].pattern);
  free(g->schedule.quant_rules);
  g->schedule.quant_rules = NULL;
  g->schedule.n_quant_rules = 0;
  for (int i = 0; i < g->n_quant_fallbacks; i++) free(g->quant_fallbacks[i].name);
  free(g->quant_fallbacks);
  g->quant_fallbacks = NULL;
  g->n_quant_fallbacks = 0;
}
