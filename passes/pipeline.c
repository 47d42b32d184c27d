/* passes/pipeline.c — the pass manager: the pass list of each -O level, the
 * verifier before the passes, and memory planning last. */
#include "passes.h"

#include <stdio.h>

int tfx_run_pipeline(tfx_graph *g, int opt_level, char *err, size_t errlen) {
  char msg[256];
  if (opt_level < 0 || opt_level > 3) {
    if (err && errlen) snprintf(err, errlen, "unknown optimization level -O%d (expected 0..3)", opt_level);
    return -1;
  }
  if (tfx_verify(g, 0, msg, sizeof msg)) {
    if (err && errlen) snprintf(err, errlen, "invalid graph: %s", msg);
    return -1;
  }
  /* optimization passes of -O1..-O3 go here */
  if (tfx_pass_plan_memory(g, msg, sizeof msg)) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return -1;
  }
  return 0;
}
