/* passes/dce.c — dead-code elimination: drops every node the graph's output
 * does not depend on (computations and parameters no longer used; the input
 * always stays), keeping the order of the rest. */
#include "rewrite.h"

int tfx_pass_dce(tfx_pass_ctx *c) {
  tfx_rw rw;
  if (tfx_rw_begin(&rw, c->g, c->err, c->errlen)) return -1;
  return tfx_rw_commit(&rw, c->err, c->errlen);
}
