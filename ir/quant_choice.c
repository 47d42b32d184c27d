/* ir/quant_choice.c — what is asked of the weights' formats: the names of
 * the choices (schedule { quantize = ... }, quantize { } rules, --quantize),
 * their spelling NAME(key = value, ...) (tfx_quant_spec_parse), the rules' name patterns, and the graph's record of the
 * rules and of the fallbacks the quantize_weights pass made (passes/quantize_weights.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static const struct {
  const char *name;
  tfx_quant_mode mode;
  tfx_dtype dtype;
} choices[] = {
    {"f16", TFX_QUANT_FORMAT, TFX_DT_F16},          {"bf16", TFX_QUANT_FORMAT, TFX_DT_BF16},
    {"q8_0", TFX_QUANT_FORMAT, TFX_DT_Q8_0},        {"q4_0", TFX_QUANT_FORMAT, TFX_DT_Q4_0},
    {"q4_k", TFX_QUANT_FORMAT, TFX_DT_Q4_K},        {"q6_k", TFX_QUANT_FORMAT, TFX_DT_Q6_K},
    {"none", TFX_QUANT_KEEP, TFX_DT_F32},           {"q4_k_m", TFX_QUANT_Q4_K_M, TFX_DT_Q4_K},
    {"q5_0", TFX_QUANT_FORMAT, TFX_DT_Q5_0},        {"w8a8", TFX_QUANT_FORMAT, TFX_DT_I8},
    {"tq2_0", TFX_QUANT_FORMAT, TFX_DT_TQ2_0},      {"ternary", TFX_QUANT_TERNARY, TFX_DT_TQ2_T},
    {"sparse24", TFX_QUANT_FORMAT, TFX_DT_S24_F32}, /* sparse24(FMT): sparse24_format */
    {"llm_int8", TFX_QUANT_FORMAT, TFX_DT_I8},      /* llm_int8(threshold = t): llm_int8_choice */
    {"gptq", TFX_QUANT_FORMAT, TFX_DT_Q4_0},        /* gptq(bits, group, damp, act_order): gptq_choice */
    {"zeroquant", TFX_QUANT_FORMAT, TFX_DT_ZQ8_64}, /* zeroquant(bits, group): zeroquant_choice */
    {"q3_k", TFX_QUANT_FORMAT, TFX_DT_Q3_K},
};
#define N_CHOICES ((int)(sizeof choices / sizeof choices[0]))

/* ---- the generic spelling: NAME or NAME(key = value, ...) ---- */

static const char *skip_blank(const char *p) {
  while (*p == ' ' || *p == '\t') p++;
  return p;
}

static int word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == '-' || c == '+';
}

/* A word (a name or a number) at *pp into out[cap]; 0, or -1. */
static int word(const char **pp, char *out, size_t cap) {
  const char *p = skip_blank(*pp), *s = p;
  while (word_char(*p)) p++;
  size_t n = (size_t)(p - s);
  if (n == 0 || n >= cap) return -1;
  memcpy(out, s, n);
  out[n] = 0;
  *pp = skip_blank(p);
  return 0;
}

int tfx_quant_spec_parse(const char *text, tfx_quant_spec *out, char *msg, size_t msglen) {
  memset(out, 0, sizeof *out);
  const char *p = text ? text : "";
  if (word(&p, out->name, sizeof out->name)) {
    if (msg) snprintf(msg, msglen, "bad quantize choice '%s': expected a name, or name(key = value, ...)", p);
    return -1;
  }
  if (*p == '(') {
    p = skip_blank(p + 1);
    while (*p != ')') {
      if (out->n_args == TFX_QUANT_MAX_ARGS) {
        if (msg) snprintf(msg, msglen, "%s(...): at most %d arguments", out->name, TFX_QUANT_MAX_ARGS);
        return -1;
      }
      char a[32], b[32] = "";
      if (word(&p, a, sizeof a)) {
        if (msg) snprintf(msg, msglen, "%s(...): expected key = value at '%s'", out->name, p);
        return -1;
      }
      if (*p == '=') {
        p++;
        if (word(&p, b, sizeof b)) {
          if (msg) snprintf(msg, msglen, "%s(%s = ...): expected a value at '%s'", out->name, a, p);
          return -1;
        }
        strcpy(out->args[out->n_args].key, a);
        strcpy(out->args[out->n_args].value, b);
      } else { /* positional */
        strcpy(out->args[out->n_args].value, a);
      }
      out->n_args++;
      if (*p == ',') {
        p = skip_blank(p + 1);
      } else if (*p != ')') {
        if (msg) snprintf(msg, msglen, "%s(...): expected ',' or ')' at '%s'", out->name, p);
        return -1;
      }
    }
    p = skip_blank(p + 1);
  }
  if (*p) {
    if (msg) snprintf(msg, msglen, "bad quantize choice '%s': unexpected '%s'", text, p);
    return -1;
  }
  return 0;
}

/* sparse24(FMT) or sparse24(FMT, permute = true|false): 2:4 sparsity over
 * the value format FMT, f32 or q8_0, with the channel permutation
 * (passes/permute_channels.c) or not. 0 with *dt and *permute, or -1. */
static int sparse24_format(const tfx_quant_spec *sp, tfx_dtype *dt, int *permute) {
  if (sp->n_args < 1 || sp->n_args > 2 || sp->args[0].key[0]) return -1;
  if (!strcmp(sp->args[0].value, "f32"))
    *dt = TFX_DT_S24_F32;
  else if (!strcmp(sp->args[0].value, "q8_0"))
    *dt = TFX_DT_S24_Q8_0;
  else
    return -1;
  *permute = 0;
  if (sp->n_args == 2) {
    if (strcmp(sp->args[1].key, "permute")) return -1;
    if (!strcmp(sp->args[1].value, "true"))
      *permute = 1;
    else if (strcmp(sp->args[1].value, "false"))
      return -1;
  }
  return 0;
}

/* llm_int8 or llm_int8(threshold = t), t a finite number > 0 (default 6,
 * the paper's); a whole-model option. 0 with *c, or -1 with a message. */
static int llm_int8_choice(const tfx_quant_spec *sp, int allow_preset, tfx_quant_choice *c, char *msg, size_t msglen) {
  c->llm_int8 = 1;
  c->threshold = 6.0f;
  for (int a = 0; a < sp->n_args; a++) {
    const char *k = sp->args[a].key, *v = sp->args[a].value;
    if (strcmp(k, "threshold")) {
      if (msg)
        snprintf(msg, msglen, "llm_int8 takes threshold = T (e.g. llm_int8(threshold = 6)), not '%s%s%s'", k,
                 *k ? " = " : "", v);
      return -1;
    }
    char *end;
    double t = strtod(v, &end);
    if (*end || !(t > 0.0 && t <= 1e30)) {
      if (msg) snprintf(msg, msglen, "llm_int8(threshold = %s): threshold is a number > 0 (e.g. 6)", v);
      return -1;
    }
    c->threshold = (float)t;
  }
  if (!allow_preset) {
    if (msg)
      snprintf(msg, msglen,
               "llm_int8 is a whole-model option (schedule { quantize = ... } or --quantize); a rule takes w8a8");
    return -1;
  }
  return 0;
}

/* gptq(bits = 4, group = 32|64|128, damp = d, act_order = true|false),
 * every argument optional (defaults 4, 32, 0.01, false). 0 with *c, or -1
 * with a message. */
static int gptq_choice(const tfx_quant_spec *sp, tfx_quant_choice *c, char *msg, size_t msglen) {
  c->gptq = 1;
  c->gptq_group = 32;
  c->gptq_damp = 0.01f;
  c->gptq_act_order = 0;
  int group_set = 0;
  for (int a = 0; a < sp->n_args; a++) {
    const char *k = sp->args[a].key, *v = sp->args[a].value;
    char *end;
    double x = strtod(v, &end);
    int num = *v && !*end;
    if (!strcmp(k, "bits")) {
      if (!num || (x != 4.0 && x != 3.0)) {
        if (msg) snprintf(msg, msglen, "gptq(bits = %s): bits is 4 (q4_0 blocks) or 3 (q3_k super-blocks)", v);
        return -1;
      }
      c->dtype = x == 3.0 ? TFX_DT_Q3_K : TFX_DT_Q4_0;
    } else if (!strcmp(k, "group")) {
      if (!num || (x != 32.0 && x != 64.0 && x != 128.0)) {
        if (msg) snprintf(msg, msglen, "gptq(group = %s): group is 32, 64 or 128", v);
        return -1;
      }
      c->gptq_group = (int)x;
      group_set = 1;
    } else if (!strcmp(k, "damp")) {
      if (!num || !(x > 0.0 && x <= 1.0)) {
        if (msg) snprintf(msg, msglen, "gptq(damp = %s): damp is a number in (0, 1] (e.g. 0.01)", v);
        return -1;
      }
      c->gptq_damp = (float)x;
    } else if (!strcmp(k, "act_order")) {
      if (!strcmp(v, "true") || !strcmp(v, "1"))
        c->gptq_act_order = 1;
      else if (!strcmp(v, "false") || !strcmp(v, "0"))
        c->gptq_act_order = 0;
      else {
        if (msg) snprintf(msg, msglen, "gptq(act_order = %s): act_order is true or false", v);
        return -1;
      }
    } else {
      if (msg)
        snprintf(msg, msglen,
                 "gptq takes bits = 4|3, group = 32|64|128, damp = D, act_order = true|false; not '%s%s%s'", k,
                 *k ? " = " : "", v);
      return -1;
    }
  }
  if (group_set && c->dtype == TFX_DT_Q3_K) {
    if (msg)
      snprintf(msg, msglen,
               "gptq(bits = 3) takes no group: q3_k's scales are per 16 columns of a 256-column super-block");
    return -1;
  }
  return 0;
}

/* zeroquant(bits = 8|4, group = 64|128), both optional (defaults 8 and 64):
 * ZeroQuant's group-wise asymmetric weights (zq8_64, zq8_128, zq4_64,
 * zq4_128) with token-wise int8 activations. 0 with c->dtype, or -1 with a
 * message. */
static int zeroquant_choice(const tfx_quant_spec *sp, tfx_quant_choice *c, char *msg, size_t msglen) {
  int bits = 8, group = 64;
  for (int a = 0; a < sp->n_args; a++) {
    const char *k = sp->args[a].key, *v = sp->args[a].value;
    char *end;
    double x = strtod(v, &end);
    int num = *v && !*end;
    if (!strcmp(k, "bits")) {
      if (!num || (x != 8.0 && x != 4.0)) {
        if (msg) snprintf(msg, msglen, "zeroquant(bits = %s): bits is 8 or 4", v);
        return -1;
      }
      bits = (int)x;
    } else if (!strcmp(k, "group")) {
      if (!num || (x != 64.0 && x != 128.0)) {
        if (msg) snprintf(msg, msglen, "zeroquant(group = %s): group is 64 or 128", v);
        return -1;
      }
      group = (int)x;
    } else {
      if (msg)
        snprintf(msg, msglen,
                 "zeroquant takes bits = 8|4 and group = 64|128 (e.g. zeroquant(bits = 4, group = 128)); not '%s%s%s'",
                 k, *k ? " = " : "", v);
      return -1;
    }
  }
  c->dtype =
      bits == 8 ? (group == 64 ? TFX_DT_ZQ8_64 : TFX_DT_ZQ8_128) : (group == 64 ? TFX_DT_ZQ4_64 : TFX_DT_ZQ4_128);
  return 0;
}

int tfx_quant_choice_parse_msg(const char *text, int allow_preset, tfx_quant_choice *out, char *msg, size_t msglen) {
  tfx_quant_spec sp;
  if (tfx_quant_spec_parse(text, &sp, msg, msglen)) return -1;
  for (int i = 0; i < N_CHOICES; i++) {
    if (strcmp(sp.name, choices[i].name)) continue;
    if (!allow_preset && choices[i].mode == TFX_QUANT_Q4_K_M) {
      if (msg)
        snprintf(msg, msglen,
                 "q4_k_m is a preset for the whole model (schedule { quantize = q4_k_m }); a rule takes %s",
                 tfx_quant_choice_names(0));
      return -1;
    }
    tfx_quant_choice c = {.mode = choices[i].mode,
                          .dtype = choices[i].dtype,
                          .smooth_set = 0,
                          .smooth = 0.0f,
                          .llm_int8 = 0,
                          .threshold = 0.0f};
    if (!strcmp(sp.name, "llm_int8")) {
      if (llm_int8_choice(&sp, allow_preset, &c, msg, msglen)) return -1;
      *out = c;
      return 0;
    }
    if (!strcmp(sp.name, "gptq")) {
      if (gptq_choice(&sp, &c, msg, msglen)) return -1;
      *out = c;
      return 0;
    }
    if (!strcmp(sp.name, "zeroquant")) {
      if (zeroquant_choice(&sp, &c, msg, msglen)) return -1;
      *out = c;
      return 0;
    }
    if (!strcmp(sp.name, "sparse24")) {
      if (sparse24_format(&sp, &c.dtype, &c.permute)) {
        if (msg)
          snprintf(msg, msglen,
                   "sparse24 takes a value format and optionally permute: sparse24(f32), sparse24(q8_0), "
                   "sparse24(q8_0, permute = true)");
        return -1;
      }
      *out = c;
      return 0;
    }
    for (int a = 0; a < sp.n_args; a++) {
      const char *k = sp.args[a].key, *v = sp.args[a].value;
      if (c.dtype == TFX_DT_I8 && !strcmp(k, "smooth")) {
        char *end;
        double al = strtod(v, &end);
        if (*end || !(al >= 0.0 && al <= 1.0)) {
          if (msg) snprintf(msg, msglen, "w8a8(smooth = %s): smooth is a number in [0, 1] (e.g. 0.5)", v);
          return -1;
        }
        if (!allow_preset) {
          if (msg)
            snprintf(msg, msglen,
                     "w8a8(smooth = ...) is a whole-model option (schedule { quantize = ... } or --quantize); a "
                     "rule takes w8a8");
          return -1;
        }
        c.smooth_set = 1;
        c.smooth = (float)al;
      } else {
        if (msg) {
          if (c.dtype == TFX_DT_I8)
            snprintf(msg, msglen, "w8a8 takes smooth = ALPHA, not '%s%s%s'", k, *k ? " = " : "", v);
          else
            snprintf(msg, msglen, "%s takes no arguments (expected %s)", sp.name, tfx_quant_choice_names(allow_preset));
        }
        return -1;
      }
    }
    *out = c;
    return 0;
  }
  if (msg)
    snprintf(msg, msglen, "unknown quantize choice '%s' (expected %s)", sp.name, tfx_quant_choice_names(allow_preset));
  return -1;
}

int tfx_quant_choice_parse(const char *name, int allow_preset, tfx_quant_choice *out) {
  return tfx_quant_choice_parse_msg(name, allow_preset, out, NULL, 0);
}

const char *tfx_quant_choice_name(tfx_quant_choice c) {
  if (c.mode == TFX_QUANT_KEEP) return "none";
  if (c.mode == TFX_QUANT_Q4_K_M) return "q4_k_m";
  if (c.mode == TFX_QUANT_TERNARY) return "ternary";
  if (c.dtype == TFX_DT_S24_F32) return c.permute ? "sparse24(f32, permute = true)" : "sparse24(f32)";
  if (c.dtype == TFX_DT_S24_Q8_0) return c.permute ? "sparse24(q8_0, permute = true)" : "sparse24(q8_0)";
  if (c.dtype == TFX_DT_I8 && c.llm_int8) return "llm_int8";
  if (c.gptq) return c.dtype == TFX_DT_Q3_K ? "gptq(bits = 3)" : "gptq";
  if (c.dtype == TFX_DT_ZQ8_64) return "zeroquant(group = 64)";
  if (c.dtype == TFX_DT_ZQ8_128) return "zeroquant(group = 128)";
  if (c.dtype == TFX_DT_ZQ4_64) return "zeroquant(bits = 4, group = 64)";
  if (c.dtype == TFX_DT_ZQ4_128) return "zeroquant(bits = 4, group = 128)";
  if (c.dtype == TFX_DT_I8) return c.smooth_set ? "w8a8(smooth)" : "w8a8";
  return tfx_dtype_name(c.dtype);
}

const char *tfx_quant_choice_names(int allow_preset) {
  return allow_preset
             ? "f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, w8a8, llm_int8, gptq, zeroquant, tq2_0, ternary, "
               "sparse24(f32), sparse24(q8_0), q4_k_m or none"
             : "f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, w8a8, gptq, zeroquant, tq2_0, ternary, sparse24(f32), "
               "sparse24(q8_0) or none";
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
  f[g->n_quant_fallbacks++] = (tfx_quant_fallback){n, asked, got, K, 0};
  return 0;
}

int tfx_graph_asks_quant(const tfx_graph *g) {
  return g->schedule.quantize.mode != TFX_QUANT_KEEP || g->schedule.n_quant_rules > 0;
}

tfx_quant_choice tfx_graph_param_choice(const tfx_graph *g, const char *name) {
  const tfx_schedule *s = &g->schedule;
  tfx_quant_choice ch = s->quantize;
  for (int k = 0; k < s->n_quant_rules; k++)
    if (name && tfx_quant_pattern_match(s->quant_rules[k].pattern, name)) ch = s->quant_rules[k].choice;
  return ch;
}

int tfx_graph_asks_permute(const tfx_graph *g) {
  int asks = g->schedule.quantize.permute == 1;
  for (int k = 0; k < g->schedule.n_quant_rules; k++) asks |= g->schedule.quant_rules[k].choice.permute == 1;
  return asks;
}

void tfx_graph_permute_done(tfx_graph *g) {
  if (g->schedule.quantize.permute == 1) g->schedule.quantize.permute = 2;
  for (int k = 0; k < g->schedule.n_quant_rules; k++)
    if (g->schedule.quant_rules[k].choice.permute == 1) g->schedule.quant_rules[k].choice.permute = 2;
}

int tfx_graph_add_permute(tfx_graph *g, const char *name, double kept_before, double kept_after) {
  tfx_channel_permute *p = realloc(g->permutes, (size_t)(g->n_permutes + 1) * sizeof *p);
  if (!p) return -1;
  g->permutes = p;
  char *n = strdup(name ? name : "?");
  if (!n) return -1;
  p[g->n_permutes++] = (tfx_channel_permute){n, kept_before, kept_after};
  return 0;
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
  for (int i = 0; i < g->n_permutes; i++) free(g->permutes[i].name);
  free(g->permutes);
  g->permutes = NULL;
  g->n_permutes = 0;
  if (g->calib) {
    tfx_calib_free(g->calib);
    free(g->calib);
    g->calib = NULL;
  }
}
