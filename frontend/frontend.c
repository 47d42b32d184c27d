/* frontend/frontend.c — the frontend pipeline: read the source, parse, check,
 * lower to a graph, bind its weights (reporting bind errors at the params'
 * declarations) and verify the result. */
#include "frontend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"
#include "sema.h"
#include "weights.h"

char *tfx_frontend_read_file(const char *path, size_t *len, char *why, size_t whylen) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(why, whylen, "%s", strerror(errno));
    if (fd >= 0) close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(why, whylen, "%s",
             S_ISDIR(st.st_mode)    ? "is a directory"
             : S_ISFIFO(st.st_mode) ? "is a FIFO, not a regular file"
                                    : "not a regular file");
    close(fd);
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    snprintf(why, whylen, "%s", strerror(errno));
    close(fd);
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *bigger = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
      errno = ENOMEM;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  if (buf && ferror(f)) {
    free(buf);
    buf = NULL;
    errno = EIO;
  }
  if (!buf) snprintf(why, whylen, "%s", strerror(errno));
  fclose(f);
  if (buf) {
    buf[n] = 0;
    *len = n;
  }
  return buf;
}

#define TFX_FE_MAX_RENAMES 256

typedef struct bind_ctx {
  tfx_fe_diag *diag;
  const tfx_graph *g;
  tfx_fe_loc at;                          /* the weights statement, or 1:1 */
  tfx_fe_loc rule_at[TFX_FE_MAX_RENAMES]; /* each rename rule's file name */
  int n_rule_at;
} bind_ctx;

static void on_bind_error(void *ctx, int node_id, const char *message) {
  bind_ctx *b = ctx;
  tfx_fe_loc at = b->at;
  if (node_id >= 0 && node_id < b->g->n_nodes && b->g->nodes[node_id].line > 0)
    at = (tfx_fe_loc){b->g->nodes[node_id].line, b->g->nodes[node_id].col};
  int rule = -2 - node_id; /* TFX_BIND_RULE(rule): at the rule, when it is the statement's */
  if (node_id <= -2 && rule < b->n_rule_at) at = b->rule_at[rule];
  tfx_fe_error(b->diag, at.line, at.col, "%s", message);
}

/* A statement's path (weights, tokenizer) made relative to the directory of
 * the .tfx file; for weights, "random" and "random:SEED" pass through. NULL
 * when out of memory. */
static char *resolve_path(const char *source_path, const char *spec, int is_weights) {
  int keep = spec[0] == '/' || (is_weights && (!strcmp(spec, "random") || !strncmp(spec, "random:", 7)));
  const char *slash = source_path ? strrchr(source_path, '/') : NULL;
  if (keep || !slash) return strdup(spec);
  size_t dir = (size_t)(slash - source_path) + 1, n = strlen(spec);
  char *out = malloc(dir + n + 1);
  if (!out) return NULL;
  memcpy(out, source_path, dir);
  memcpy(out + dir, spec, n + 1);
  return out;
}

static int bind(tfx_fe_sema *s, tfx_graph *g, const char *path, const tfx_frontend_options *o, tfx_weights *w) {
  tfx_fe_diag *d = s->diag;
  /* errors about the file as a whole point at the weights statement, unless
   * --weights replaced its file: then they have no place in the source */
  bind_ctx ctx = {d, g, {0, 0}, {{0, 0}}, 0};
  if (s->weights && !o->weights) ctx.at = s->weights->name_loc;
  if (!o->weights && !s->weights) {
    tfx_fe_error(d, 1, 1, "no weights: add a `weights` statement or pass --weights");
    return 1;
  }
  char *spec = o->weights ? strdup(o->weights) : resolve_path(path, s->weights->name, 1);
  if (!spec) {
    tfx_fe_error(d, 0, 0, "out of memory");
    return 1;
  }
  if (o->on_weights_path && strcmp(spec, "random") && strncmp(spec, "random:", 7))
    o->on_weights_path(o->on_weights_ctx, spec);
  /* --weights names another file: its format is guessed from it */
  const char *format = s->weights && !o->weights ? s->weights->format : NULL;
  int before = d->errors, n_rules = 0;
  tfx_wrename rules[TFX_FE_MAX_RENAMES];
  tfx_wview views[TFX_FE_MAX_RENAMES];
  for (const tfx_fe_rename *r = s->weights ? s->weights->renames : NULL; r; r = r->next) {
    if (n_rules == TFX_FE_MAX_RENAMES) {
      tfx_fe_error(d, r->loc.line, r->loc.col, "too many rename rules (at most %d)", TFX_FE_MAX_RENAMES);
      free(spec);
      return 1;
    }
    ctx.rule_at[n_rules] = r->loc;
    ctx.n_rule_at = n_rules + 1;
    views[n_rules] = (tfx_wview){.n_ops = r->n_ops, .ops = r->ops, .stack = r->stack};
    rules[n_rules++] = (tfx_wrename){r->from, r->to};
  }
  /* the statement's renaming applies to --weights files too */
  tfx_bind_options bo = {
      .allow_nonfinite = o->allow_nonfinite, .views = views, .plan_formats = o->plan_formats, .plan_ctx = o->plan_ctx};
  int n = tfx_weights_bind_opts(g, spec, format, rules, n_rules, &bo, w, on_bind_error, &ctx);
  if (n > 0 && d->errors == before) tfx_fe_error(d, ctx.at.line, ctx.at.col, "binding weights from '%s' failed", spec);
  free(spec);
  return n;
}

int tfx_frontend_compile(const char *path, const char *source, const tfx_frontend_options *opts, tfx_graph **out_graph,
                         tfx_weights *out_weights) {
  tfx_frontend_options defaults = {0};
  const tfx_frontend_options *o = opts ? opts : &defaults;
  if (out_graph) *out_graph = NULL;
  if (out_weights) memset(out_weights, 0, sizeof *out_weights);
  if (!path) path = "<input>";

  char *owned = NULL;
  size_t len = 0;
  tfx_fe_diag diag;
  if (!source) {
    char why[128] = "";
    owned = tfx_frontend_read_file(path, &len, why, sizeof why);
    if (!owned) {
      tfx_fe_diag_init(&diag, o->diag, path, NULL, 0, o->max_errors);
      tfx_fe_error(&diag, 0, 0, "cannot read the file: %s", why);
      tfx_fe_diag_free(&diag);
      return 1;
    }
    source = owned;
  } else {
    len = strlen(source);
  }
  tfx_fe_diag_init(&diag, o->diag, path, source, len, o->max_errors);

  tfx_fe_arena arena = {0};
  tfx_fe_program *prog = NULL;
  tfx_fe_sema sema;
  memset(&sema, 0, sizeof sema);
  tfx_graph *g = NULL;
  tfx_weights w = {0};
  if (tfx_fe_parse(source, len, &arena, &diag, &prog) == 0 && tfx_fe_sema_run(&sema, prog, &diag, &arena, path) == 0)
    g = tfx_fe_lower(&sema);
  if (g && sema.tokenizer && !(g->tokenizer_path = resolve_path(path, sema.tokenizer->name, 0)))
    tfx_fe_error(&diag, 0, 0, "out of memory");
  if (g && !o->no_weights) bind(&sema, g, path, o, &w);
  if (g && diag.errors == 0) {
    char err[512];
    if (tfx_verify(g, !o->no_weights, err, sizeof err)) tfx_fe_error(&diag, 0, 0, "internal error: %s", err);
  }

  int errors = diag.errors;
  if (errors == 0 && out_graph) {
    *out_graph = g;
    g = NULL;
    if (out_weights) {
      *out_weights = w;
      memset(&w, 0, sizeof w);
    }
  }
  tfx_weights_free(&w);
  tfx_graph_free(g);
  tfx_fe_sema_free(&sema);
  tfx_fe_arena_free(&arena);
  tfx_fe_diag_free(&diag);
  free(owned);
  return errors;
}
