/* frontend/sema_weights.c — checks the `weights` statement at compile time:
 * its path is not empty, its rename rules are well formed and consistent
 * (placeholders, no rule repeated), and evaluates the views of binding rules
 * (`.T`, `.view(...)`, `[slices]` with constant expressions) and checks their
 * stack placeholder, so a bad rule is reported at its string even when no
 * weights are bound. */
#include <stdio.h>
#include <string.h>

#include "sema.h"
#include "weights.h"

/* An integer constant expression >= 0 of a view, or -1 after an error. */
static int view_int(tfx_fe_sema *s, const tfx_fe_expr *e, int64_t min, const char *what, int64_t *out) {
  return tfx_fe_eval_int(s, e, min, what, out) ? -1 : 0;
}

/* Evaluates r's view into r->ops; 0, or -1 after reporting. */
static int eval_view(tfx_fe_sema *s, tfx_fe_rename *r) {
  int n = 0, bad = 0;
  for (const tfx_fe_viewop *o = r->view; o; o = o->next) n++;
  if (n > TFX_WVIEW_MAX_OPS) {
    tfx_fe_error(s->diag, r->loc.line, r->loc.col, "too many view operations in one rule (at most %d)",
                 TFX_WVIEW_MAX_OPS);
    return -1;
  }
  tfx_wview_op *ops = n ? tfx_fe_alloc(s->arena, (size_t)n * sizeof *ops) : NULL;
  if (n && !ops) return -1;
  int i = 0;
  for (const tfx_fe_viewop *o = r->view; o; o = o->next, i++) {
    tfx_wview_op *op = &ops[i];
    memset(op, 0, sizeof *op);
    if (o->kind == 'T') {
      op->kind = TFX_WV_TRANSPOSE;
      continue;
    }
    const void *first = o->kind == 'v' ? (const void *)o->dims : (const void *)o->slices;
    int count = 0;
    if (o->kind == 'v')
      for (const tfx_fe_expr *d = o->dims; d; d = d->next) count++;
    else
      for (const tfx_fe_slice *c = o->slices; c; c = c->next) count++;
    if (!first || count > TFX_WVIEW_MAX_RANK) {
      tfx_fe_error(s->diag, o->loc.line, o->loc.col, "a %s has 1 to %d axes", o->kind == 'v' ? "view" : "slice",
                   TFX_WVIEW_MAX_RANK);
      bad = 1;
      continue;
    }
    op->n = count;
    if (o->kind == 'v') {
      op->kind = TFX_WV_VIEW;
      int j = 0;
      for (const tfx_fe_expr *d = o->dims; d; d = d->next, j++)
        if (view_int(s, d, 1, "a view's dim", &op->lo[j])) bad = 1;
      continue;
    }
    op->kind = TFX_WV_SLICE;
    int j = 0;
    for (const tfx_fe_slice *c = o->slices; c; c = c->next, j++) {
      op->lo[j] = 0;
      op->hi[j] = TFX_WVIEW_END;
      op->index[j] = (char)!c->range;
      if (c->lo && view_int(s, c->lo, 0, "a slice bound", &op->lo[j])) bad = 1;
      if (c->hi && view_int(s, c->hi, 1, "a slice bound", &op->hi[j])) bad = 1;
      if (c->range && c->lo && c->hi && op->hi[j] != TFX_WVIEW_END && op->hi[j] <= op->lo[j] && !bad) {
        tfx_fe_error(s->diag, c->loc.line, c->loc.col, "empty slice %lld:%lld", (long long)op->lo[j],
                     (long long)op->hi[j]);
        bad = 1;
      }
    }
  }
  r->ops = ops;
  r->n_ops = n;
  return bad ? -1 : 0;
}

/* The stack placeholder names a placeholder of the file name that the param
 * name does not have. 0, or -1 after reporting. */
static int check_stack(tfx_fe_sema *s, const tfx_fe_rename *r) {
  char pat[40];
  snprintf(pat, sizeof pat, "{%s}", r->stack);
  if (!strstr(r->from, pat)) {
    tfx_fe_error(s->diag, r->stack_loc.line, r->stack_loc.col,
                 "bad rename rule: the stack index {%s} does not appear in the file name \"%s\"", r->stack, r->from);
    return -1;
  }
  if (strstr(r->to, pat)) {
    tfx_fe_error(s->diag, r->stack_loc.line, r->stack_loc.col,
                 "bad rename rule: the stack index {%s} also appears in the param name \"%s\" (each index would "
                 "name its own param)",
                 r->stack, r->to);
    return -1;
  }
  return 0;
}

void tfx_fe_check_weights_stmt(tfx_fe_sema *s, const tfx_fe_item *it) {
  char err[512];
  if (it->name && !it->name[0])
    tfx_fe_error(s->diag, it->name_loc.line, it->name_loc.col,
                 "empty weights path: give a file (relative to this source), random or random:SEED");
  for (tfx_fe_rename *r = it->renames; r; r = r->next) {
    tfx_wrename rule = {r->from, r->to};
    int bad = tfx_wrename_check(&rule, err, sizeof err);
    if (bad) {
      tfx_fe_loc at = bad == -2 ? r->to_loc : r->loc;
      tfx_fe_error(s->diag, at.line, at.col, "bad rename rule: %s", err);
      continue;
    }
    if (eval_view(s, r) || (r->stack && check_stack(s, r))) continue;
    int binds = r->n_ops > 0 || r->stack;
    for (const tfx_fe_rename *q = it->renames; q != r; q = q->next) {
      int qbinds = q->n_ops > 0 || q->stack || q->view;
      /* binding rules may share a file name (one fused tensor, several params) */
      if (strcmp(q->from, r->from) == 0 && (!binds || !qbinds || strcmp(q->to, r->to) == 0)) {
        tfx_fe_error(s->diag, r->loc.line, r->loc.col, "duplicate rename rule for \"%s\"", r->from);
        tfx_fe_note(s->diag, q->loc.line, q->loc.col, "the first rule for it is here");
        break;
      }
    }
  }
}
