/* passes/passes.h — graph-to-graph passes and the -O pipelines. Each pass is
 * one file; the verifier runs after each in debug builds and tests. */
#ifndef TFX_PASSES_H
#define TFX_PASSES_H

#include <stddef.h>

#include "../ir/ir.h"

/* Memory planning (plan_memory.c): gives every intermediate value an
 * arena_offset (64-byte aligned) from liveness over the node order, sized for
 * T = max_seq, and sets g->arena_bytes; gives every causal ATTENTION node its
 * kv_offset and sets g->kv_bytes. The graph's output, its input and params get
 * no arena slot. */
int tfx_pass_plan_memory(tfx_graph *g, char *err, size_t errlen);

/* Runs the pipeline of -O<opt_level> (planning always last). */
int tfx_run_pipeline(tfx_graph *g, int opt_level, char *err, size_t errlen);

#endif
