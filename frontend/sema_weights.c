/* frontend/sema_weights.c — checks the `weights` statement at compile time:
 * its path is not empty, its rename rules are well formed and consistent
 * (placeholders, no rule repeated),
 * so a bad rule is reported at its string even when no weights are bound. */
#include <stdio.h>
#include <string.h>

#include "sema.h"
#include "weights.h"

void tfx_fe_check_weights_stmt(tfx_fe_sema *s, const tfx_fe_item *it) {
  char err[512];
  if (it->name && !it->name[0])
    tfx_fe_error(s->diag, it->name_loc.line, it->name_loc.col,
                 "empty weights path: give a file (relative to this source), random or random:SEED");
  for (const tfx_fe_rename *r = it->renames; r; r = r->next) {
    tfx_wrename rule = {r->from, r->to};
    int bad = tfx_wrename_check(&rule, err, sizeof err);
    if (bad) {
      tfx_fe_loc at = bad == -2 ? r->to_loc : r->loc;
      tfx_fe_error(s->diag, at.line, at.col, "bad rename rule: %s", err);
      continue;
    }
    for (const tfx_fe_rename *q = it->renames; q != r; q = q->next)
      if (strcmp(q->from, r->from) == 0) {
        tfx_fe_error(s->diag, r->loc.line, r->loc.col, "duplicate rename rule for \"%s\"", r->from);
        tfx_fe_note(s->diag, q->loc.line, q->loc.col, "the first rule for it is here");
        break;
      }
  }
}
