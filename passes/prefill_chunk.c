/* passes/prefill_chunk.c — the prefill chunk size (g->prefill_chunk), set
 * by plan_memory at -O1 and above: a call of many rows (a prefill of
 * thousands of tokens) runs the forward entries' kernels over runs of C
 * rows, one run after the other, so that each layer's activations (the
 * planned arena's bytes per row times C) stay in the core's L2 cache
 * between the kernel that writes them and the next that reads them. With
 * every row at once, a prefill of 4,096 tokens of the issue #12 small
 * model (dim 64, 1,296 arena bytes per row) moves 5 MB of activations per
 * layer through memory and runs 4-5% slower per token than a prefill of
 * 1,024; the stories110M shape (15 KB per row) 18% slower than in runs of
 * 256 rows (docs/performance.md, issue #12, "Linear in T").
 *
 *   C = the largest power of two with C * arena_bytes / max_seq <= TFX_PREFILL_CHUNK_BYTES,
 *       at least TFX_PREFILL_CHUNK_MIN_ROWS (a linear's weights are read once per run: 256 rows keep
 *       its GEMM compute-bound); 0 (no runs) when the arena (max_seq rows) fits in
 *       TFX_PREFILL_CHUNK_BYTES already or C >= max_seq.
 *
 * `schedule { prefill_chunk = N | none | auto }` overrides the size at every
 * -O level (tfx_prefill_chunk_choice): N rows, no runs, or the rule above
 * (-O1 and above; -O0 runs whole calls).
 *
 * Whether the runs compute the same rows is the backend's check
 * (tfx_backend_prefill_chunk: a KV-cache model whose only ops mixing rows
 * read earlier rows through the cache, as decode does); this pass only
 * sizes them, and an asked N the backend cannot honour runs whole calls
 * (`--stats` says so). */
#include "passes.h"

int64_t tfx_prefill_chunk_rows(const tfx_graph *g) {
  if (!g || g->max_seq <= TFX_PREFILL_CHUNK_MIN_ROWS || g->kv_bytes <= 0 || g->arena_bytes <= 0) return 0;
  int64_t per_row = (g->arena_bytes + g->max_seq - 1) / g->max_seq;
  if (g->arena_bytes <= TFX_PREFILL_CHUNK_BYTES) return 0; /* max_seq rows fit already */
  int64_t c = TFX_PREFILL_CHUNK_MIN_ROWS;
  while (c * 2 * per_row <= TFX_PREFILL_CHUNK_BYTES && c * 2 < g->max_seq) c *= 2;
  return c < g->max_seq ? c : 0;
}

int64_t tfx_prefill_chunk_choice(const tfx_graph *g, int optimizing) {
  if (!g) return 0;
  int64_t asked = g->schedule.prefill_chunk;
  if (asked == TFX_PREFILL_CHUNK_NONE) return 0;
  if (asked > 0) return asked < g->max_seq ? asked : 0;
  return optimizing ? tfx_prefill_chunk_rows(g) : 0;
}
