/* passes/manager.c — the pass manager: the table of named passes, the -O
 * pipelines, custom pipelines (--passes=a,b,c), the verifier after every
 * pass when asked, printing the graph after chosen passes, and per-pass
 * timing. fold_weights (when weight transforms are left and a blob is given)
 * and plan_memory always end a pipeline. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rewrite.h"

typedef struct {
  const char *name;
  tfx_pass_fn fn;
} pass_info;

static const pass_info pass_table[] = {
    {"canonicalize", tfx_pass_canonicalize},
    {"cse", tfx_pass_cse},
    {"dce", tfx_pass_dce},
    {"fuse_moe", tfx_pass_fuse_moe},
    {"fuse_embedding", tfx_pass_fuse_embedding},
    {"fuse_glu", tfx_pass_fuse_glu},
    {"fuse_qkv", tfx_pass_fuse_qkv},
    {"fuse_rope", tfx_pass_fuse_rope},
    {"fuse_epilogue", tfx_pass_fuse_epilogue},
    {"fuse_norm", tfx_pass_fuse_norm},
    {"pack_weights", tfx_pass_pack_weights},
    {"fold_weights", tfx_pass_fold_weights},
    {"schedule_attention", tfx_pass_schedule_attention},
    {"plan_memory", tfx_pass_plan},
    {"quantize_weights", tfx_pass_quantize_weights},
    {"smooth_quant", tfx_pass_smooth_quant},
    {"llm_int8", tfx_pass_llm_int8},
    {"permute_channels", tfx_pass_permute_channels},
};
#define N_PASSES ((int)(sizeof pass_table / sizeof pass_table[0]))

/* -O2 and -O3 run the same graph pipeline (no graph pass is reserved for
 * -O3). The levels differ in LLVM's pipeline only (the backend runs
 * default<O2> or default<O3> and code generation at Default or Aggressive),
 * which does give different code (docs/passes.md; tests/test_cli.c checks
 * it). */
static const char *const pipelines[4] = {
    "plan_memory",
    "quantize_weights,canonicalize,cse,dce,fold_weights,schedule_attention,plan_memory",
    "quantize_weights,canonicalize,cse,dce,fuse_moe,fuse_embedding,fuse_glu,fuse_qkv,fuse_rope,fuse_epilogue,"
    "fuse_norm,pack_weights,fold_weights,dce,schedule_attention,plan_memory",
    "quantize_weights,canonicalize,cse,dce,fuse_moe,fuse_embedding,fuse_glu,fuse_qkv,fuse_rope,fuse_epilogue,"
    "fuse_norm,pack_weights,fold_weights,dce,schedule_attention,plan_memory",
};
/* -O0 when the graph asks for weight formats (tfx_graph_asks_quant): the
 * formats are chosen and the blob rebuilt compactly, nothing else changes */
static const char *const pipeline0_quant = "quantize_weights,fold_weights,plan_memory";

const char *const *tfx_pass_names(void) {
  static const char *names[N_PASSES + 1];
  for (int i = 0; i < N_PASSES; i++) names[i] = pass_table[i].name;
  names[N_PASSES] = NULL;
  return names;
}

const char *tfx_pass_pipeline(int opt_level) { return opt_level >= 0 && opt_level <= 3 ? pipelines[opt_level] : NULL; }

const char *tfx_pass_pipeline_of(const tfx_graph *g, int opt_level) {
  return opt_level == 0 && g && tfx_graph_asks_quant(g) ? pipeline0_quant : tfx_pass_pipeline(opt_level);
}

void tfx_pass_options_init(tfx_pass_options *o, int opt_level) {
  memset(o, 0, sizeof *o);
  o->opt_level = opt_level;
  o->pack = (tfx_pack_layout){.panel = TFX_STATS_GROUP, .kc = 1};
#ifndef NDEBUG
  o->verify_each = 1;
#endif
}

static const pass_info *find_pass(const char *name, size_t len) {
  for (int i = 0; i < N_PASSES; i++)
    if (strlen(pass_table[i].name) == len && !strncmp(pass_table[i].name, name, len)) return &pass_table[i];
  return NULL;
}

/* Is `name` in the comma-separated list? */
static int in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n)) return 1;
    p = e ? e + 1 : NULL;
  }
  return 0;
}

/* Checks every name of a comma-separated list; -1 naming the first unknown. */
static int check_names(const char *list, const char *what, char *err, size_t errlen) {
  if (!list) return 0;
  if (!*list) return tfx_errf(err, errlen, "%s: empty pass list", what);
  for (const char *p = list; p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (!find_pass(p, len)) {
      char known[512] = "";
      for (int i = 0; i < N_PASSES; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, pass_table[i].name, sizeof known - strlen(known) - 1);
      }
      return tfx_errf(err, errlen, "%s: unknown pass '%.*s' (passes: %s)", what, (int)len, p, known);
    }
    p = e ? e + 1 : NULL;
  }
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int has_weight_ops(const tfx_graph *g) {
  for (int i = 0; i < g->n_nodes; i++)
    if (tfx_op_has(g->nodes[i].op, TFX_TRAIT_FOLDED) ||
        (g->nodes[i].op == TFX_OP_AFFINE && g->nodes[g->nodes[i].inputs[0]].op == TFX_OP_PARAM))
      return 1;
  return 0;
}

static int any_bound(const tfx_graph *g) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && g->nodes[i].weight_offset >= 0) return 1;
  return 0;
}

#define MAX_RUN 64
typedef struct {
  const char *name;
  double ms;
  int before, after;
} run_record;

int tfx_run_passes(tfx_graph *g, const tfx_pass_options *o, char *err, size_t errlen) {
  char msg[512];
  tfx_pass_options defaults;
  if (!o) {
    tfx_pass_options_init(&defaults, 2);
    o = &defaults;
  }
  if (!g) return tfx_errf(err, errlen, "no graph");
  if (!o->passes && (o->opt_level < 0 || o->opt_level > 3))
    return tfx_errf(err, errlen, "unknown optimization level -O%d (expected 0..3)", o->opt_level);
  if (check_names(o->passes, "--passes", err, errlen) || check_names(o->print_after, "--print-after", err, errlen))
    return -1;
  if (tfx_verify(g, 0, msg, sizeof msg)) return tfx_errf(err, errlen, "invalid graph: %s", msg);
  FILE *dump = o->dump ? o->dump : stderr;
  const char *env = getenv("TFX_VERIFY_PASSES");
  int verify = o->verify_each || (env && *env && strcmp(env, "0"));
  if (o->pack.panel < 1 || o->pack.kc < 1)
    return tfx_errf(err, errlen, "packed layout panel %d x kc %d: both must be >= 1", o->pack.panel, o->pack.kc);
  tfx_pass_ctx c = {g, o->weights, o->weights_size, 0, o->opt_level >= 1, o->pack, msg, sizeof msg};
  c.weight_transforms = (o->weights && *o->weights) || !any_bound(g);

  /* the list to run: the given one (then the mandatory tail) or -O's */
  char list[1024];
  if (o->passes && tfx_graph_asks_quant(g) && !in_list(o->passes, "quantize_weights"))
    snprintf(list, sizeof list, "quantize_weights,%s", o->passes); /* the formats asked are always given */
  else if (!o->passes && o->opt_level == 0 && tfx_graph_asks_quant(g))
    snprintf(list, sizeof list, "%s", pipeline0_quant);
  else
    snprintf(list, sizeof list, "%s", o->passes ? o->passes : pipelines[o->opt_level]);
  if (g->schedule.quantize.smooth_set == 1 && !in_list(list, "smooth_quant")) {
    /* w8a8(smooth = alpha): SmoothQuant first, before the weights are quantized */
    size_t len = strlen(list), pre = strlen("smooth_quant,");
    if (len + pre >= sizeof list) return tfx_errf(err, errlen, "pass list too long");
    memmove(list + pre, list, len + 1);
    memcpy(list, "smooth_quant,", pre);
  }
  if (g->schedule.quantize.llm_int8 == 1 && !in_list(list, "llm_int8")) {
    /* llm_int8(threshold = t): the linears split first, before the weights are quantized */
    size_t len = strlen(list), pre = strlen("llm_int8,");
    if (len + pre >= sizeof list) return tfx_errf(err, errlen, "pass list too long");
    memmove(list + pre, list, len + 1);
    memcpy(list, "llm_int8,", pre);
  }
  if (tfx_graph_asks_permute(g) && !in_list(list, "permute_channels")) {
    /* sparse24(FMT, permute = true): the channels reordered first, before the weights are pruned */
    size_t len = strlen(list), pre = strlen("permute_channels,");
    if (len + pre >= sizeof list) return tfx_errf(err, errlen, "pass list too long");
    memmove(list + pre, list, len + 1);
    memcpy(list, "permute_channels,", pre);
  }
  run_record rec[MAX_RUN];
  int n_rec = 0, rc = 0;
  double total = 0;
  for (int stage = 0; stage < 2 && rc == 0; stage++) {
    if (stage == 1) {
      /* a custom list ends like every pipeline: folded weights, then planning */
      if (!o->passes) break;
      const char *lastp = strrchr(o->passes, ',');
      lastp = lastp ? lastp + 1 : o->passes;
      int fold = o->weights && *o->weights && has_weight_ops(g);
      snprintf(list, sizeof list, "%s%s", fold ? "fold_weights," : "",
               fold || strcmp(lastp, "plan_memory") ? "plan_memory" : "");
      if (list[strlen(list) - 1] == ',') list[strlen(list) - 1] = 0;
    }
    for (const char *p = list; p && *p && rc == 0;) {
      const char *e = strchr(p, ',');
      size_t len = e ? (size_t)(e - p) : strlen(p);
      const pass_info *pi = find_pass(p, len);
      p = e ? e + 1 : NULL;
      int before = g->n_nodes;
      double t0 = now_ms();
      msg[0] = 0;
      if (pi->fn(&c)) {
        rc = tfx_errf(err, errlen, "pass %s: %s", pi->name, msg);
        break;
      }
      double ms = now_ms() - t0;
      total += ms;
      if (n_rec < MAX_RUN) rec[n_rec++] = (run_record){pi->name, ms, before, g->n_nodes};
      if (verify && tfx_verify(g, 0, msg, sizeof msg)) {
        rc = tfx_errf(err, errlen, "internal error: the graph does not verify after pass %s: %s", pi->name, msg);
        break;
      }
      if (o->print_after_all || in_list(o->print_after, pi->name)) {
        fprintf(dump, "; ---- IR after %s ----\n", pi->name);
        tfx_print_graph(g, dump);
      }
    }
  }
  if (o->time_passes) {
    fprintf(dump, "; ---- pass timing (%s) ----\n", g->name ? g->name : "?");
    fprintf(dump, ";   %-14s %10s %8s\n", "pass", "ms", "nodes");
    for (int i = 0; i < n_rec; i++)
      fprintf(dump, ";   %-14s %10.3f %4d->%d\n", rec[i].name, rec[i].ms, rec[i].before, rec[i].after);
    fprintf(dump, ";   %-14s %10.3f\n", "total", total);
  }
  return rc;
}

int tfx_run_pipeline(tfx_graph *g, int opt_level, char *err, size_t errlen) {
  tfx_pass_options o;
  tfx_pass_options_init(&o, opt_level);
  return tfx_run_passes(g, &o, err, errlen);
}
