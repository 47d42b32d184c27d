/* passes/passes.h — graph-to-graph passes, the pass manager and the -O
 * pipelines. Each pass is one file; docs/passes.md describes what each one
 * matches and guarantees. The verifier runs after every pass when asked
 * (debug builds, tests, --verify-passes, TFX_VERIFY_PASSES=1). */
#ifndef TFX_PASSES_H
#define TFX_PASSES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../ir/ir.h"

/* ---- the pass manager (manager.c) ---- */

typedef struct tfx_pass_options {
  int opt_level;           /* 0..3: the pipeline when `passes` is NULL; -O0 plans without in-place reuse */
  const char *passes;      /* "a,b,c": run exactly these passes, then fold_weights (when weight
                              transforms are left and weights are given) and plan_memory; a graph
                              that asks for weight formats (tfx_graph_asks_quant) runs
                              quantize_weights first when the list does not name it */
  const char *print_after; /* comma-separated pass names: print the graph after each of them */
  int print_after_all;     /* print the graph after every pass */
  int time_passes;         /* print each pass's wall time and node counts at the end */
  int verify_each;         /* run tfx_verify after every pass (forced on by TFX_VERIFY_PASSES=1) */
  FILE *dump;              /* where printing and timing go; NULL: stderr */
  /* The bound weights blob (64-byte aligned, from malloc/aligned_alloc), or
   * NULL. With it, fold_weights computes derived weights (concatenated,
   * packed) and rewrites the blob: *weights may be replaced (the old one
   * freed) and *weights_size changes; g->weights_bytes follows. */
  uint8_t **weights;
  size_t *weights_size;
  /* The packed layout pack_weights uses: the target's (the driver asks the
   * backend, tfx_backend_pack_layout); tfx_pass_options_init sets the
   * default, panels of TFX_STATS_GROUP rows with kc = 1 (every current
   * target's: the fused linear kernel writes one partial statistic per panel). */
  tfx_pack_layout pack;
} tfx_pass_options;

void tfx_pass_options_init(tfx_pass_options *o, int opt_level);
/* Runs the pipeline o describes (memory planning always last). 0, or -1 with
 * a message naming the pass. */
int tfx_run_passes(tfx_graph *g, const tfx_pass_options *o, char *err, size_t errlen);
/* The -O<opt_level> pipeline without weights (weight transforms are only
 * made when no parameter is bound, so a bound graph stays runnable). */
int tfx_run_pipeline(tfx_graph *g, int opt_level, char *err, size_t errlen);
/* The names of the passes, NULL-terminated; and the comma-separated pass list
 * of -O<level> (a static string). */
const char *const *tfx_pass_names(void);
const char *tfx_pass_pipeline(int opt_level);
/* The -O<opt_level> list that runs on graph g (-O0 quantizes when g asks for
 * weight formats; tfx_graph_asks_quant). */
const char *tfx_pass_pipeline_of(const tfx_graph *g, int opt_level);

/* ---- what each pass gets (passes written as tfx_pass_fn) ---- */

typedef struct tfx_pass_ctx {
  tfx_graph *g;
  uint8_t **weights; /* may be NULL (see tfx_pass_options) */
  size_t *weights_size;
  int weight_transforms; /* passes may add CONCAT/PACK (weights given, or no param bound) */
  int in_place;          /* plan_memory may reuse a dying operand's slot */
  tfx_pack_layout pack;  /* pack_weights' layout (tfx_pass_options.pack) */
  char *err;
  size_t errlen;
} tfx_pass_ctx;
typedef int (*tfx_pass_fn)(tfx_pass_ctx *c);

int tfx_pass_quantize_weights(tfx_pass_ctx *c);
/* The formats quantize_weights would give g's params, chosen before they
 * are bound (every weight_offset -1; each param's type its bound format):
 * plan[i] (one per node) is node i's format after the pass (tq2_t: by
 * tfx_quantize_ternary_row, the tensor's mean |w|). The graph is left as it
 * was. Binding then quantizes each tensor into its slot as it reads it
 * (tfx_bind_options.plan_formats), and the pass, finding every format
 * chosen, converts nothing. 1 when some param changes format, 0 when none
 * does, -1 with a message. */
int tfx_quantize_plan(tfx_graph *g, tfx_quant_target *plan, char *err, size_t errlen);
int tfx_pass_smooth_quant(tfx_pass_ctx *c);
int tfx_pass_llm_int8(tfx_pass_ctx *c);
int tfx_pass_permute_channels(tfx_pass_ctx *c);
int tfx_pass_canonicalize(tfx_pass_ctx *c);
int tfx_pass_cse(tfx_pass_ctx *c);
int tfx_pass_dce(tfx_pass_ctx *c);
int tfx_pass_fuse_moe(tfx_pass_ctx *c);
int tfx_pass_fuse_embedding(tfx_pass_ctx *c);
int tfx_pass_fuse_glu(tfx_pass_ctx *c);
int tfx_pass_fuse_qkv(tfx_pass_ctx *c);
int tfx_pass_fuse_rope(tfx_pass_ctx *c);
int tfx_pass_fuse_epilogue(tfx_pass_ctx *c);
int tfx_pass_fuse_norm(tfx_pass_ctx *c);
int tfx_pass_pack_weights(tfx_pass_ctx *c);
int tfx_pass_schedule_attention(tfx_pass_ctx *c);
int tfx_pass_fold_weights(tfx_pass_ctx *c);
int tfx_pass_plan(tfx_pass_ctx *c);
/* ---- prefill chunks (prefill_chunk.c) ----
 * The rows per run of the forward entries' kernels for a planned graph
 * (g->prefill_chunk): the largest power of two, at least
 * TFX_PREFILL_CHUNK_MIN_ROWS, whose activations (the plan's arena bytes per
 * row) fit in TFX_PREFILL_CHUNK_BYTES; 0 when that is max_seq or more (or
 * the graph has no KV cache: its rows are never split). plan_memory sets it
 * from -O1 on. */
#define TFX_PREFILL_CHUNK_BYTES ((int64_t)1 << 20) /* half of a 2 MiB L2 (one core of this Xeon) */
#define TFX_PREFILL_CHUNK_MIN_ROWS 256             /* keeps a GEMM's weights reused over >= 256 rows */
int64_t tfx_prefill_chunk_rows(const tfx_graph *g);
/* g->prefill_chunk as planned: schedule { prefill_chunk } when set (N rows
 * below max_seq, or none: 0), else tfx_prefill_chunk_rows when optimizing
 * (-O1 and above), else 0 */
int64_t tfx_prefill_chunk_choice(const tfx_graph *g, int optimizing);

/* ---- memory planning (plan_memory.c) ---- */

/* Gives every intermediate value an arena_offset (64-byte aligned) from
 * liveness over the node order, sized for T = max_seq, and sets
 * g->arena_bytes; gives every causal ATTENTION node its kv_offset and sets
 * g->kv_bytes. The graph's output, its input, params and SLICE views get no
 * slot (a view lives in its producer's slot, which stays live as long as
 * the view). Without in-place reuse (this function, and -O0) a value never
 * shares memory with its node's operands. */
int tfx_pass_plan_memory(tfx_graph *g, char *err, size_t errlen);
/* The same with in-place reuse: an elementwise node (add, sub, mul, silu,
 * gelu, relu, sigmoid; fused_linear and moe_down on their residual) may take the slot of an
 * operand of the same size that dies at it. */
int tfx_pass_plan_memory_ex(tfx_graph *g, int in_place, char *err, size_t errlen);
/* passes/cache_source.c, run by plan_memory first: in a graph with a
 * source, marks the nodes computed only from params and sources
 * (tfx_node.src_cached), gives the kept ones their kv_offset in the source
 * cache at the start of the KV storage and sets g->src_cache_bytes (0: no
 * source, or nothing to keep). */
int tfx_pass_cache_source_mark(tfx_graph *g, char *err, size_t errlen);

/* What liveness gives for a planned graph: the peak over nodes of the bytes
 * (64-byte aligned slots, each counted once) live while the node runs, and
 * the naive sum of every slot. */
typedef struct tfx_mem_stats {
  int64_t peak_live, naive_sum;
  int values; /* values with a slot */
} tfx_mem_stats;
int tfx_pass_mem_stats(const tfx_graph *g, tfx_mem_stats *out);

/* ---- the attention cost model (attn_cost.c) ---- */
/* One attention node's schedules and their estimates at a context of max_seq. */
typedef struct tfx_attn_cost {
  int forward;                   /* tfx_attn_sched of the prefill (forward entry): the cheaper estimate */
  double kept;                   /* the fraction of (query, key) pairs of a max_seq prefill its tiles keep */
  double prefill_flops;          /* attention FLOPs of a prefill of max_seq tokens under that schedule */
  double prefill_row_ns;         /* estimates of a max_seq prefill (CPU ns, one thread): row, */
  double prefill_tiled_ns;       /* flash / block_sparse (0 where neither applies), */
  double prefill_ns;             /* and the chosen one's */
  double decode_kv_bytes;        /* KV bytes one decode step reads at L = max_seq */
  int threads;                   /* threads the decode estimate assumes (1: its kernels run inline) */
  int forks;                     /* the decode kernels go through the pool (their work reaches the grain) */
  double decode_keys;            /* keys one head's decode row visits at max_seq (the pattern's, not L) */
  double row_units, split_units; /* decode estimates (key units): row, and split with `split` parts */
  int split;                     /* the decode entry: 0 row, N split decode in N parts */
} tfx_attn_cost;
void tfx_attn_cost_eval(const tfx_graph *g, const tfx_node *n, tfx_attn_cost *c);
/* the decode estimate (key units) of row (splits < 2) or split decode in `splits` parts */
double tfx_attn_cost_split_units(const tfx_graph *g, const tfx_node *n, int splits);
/* schedule { decode = split }: the model's part count, or the largest of 8, 4, 2 that fits; 0 when none fits */
int tfx_attn_cost_split_count(const tfx_graph *g, const tfx_node *n);

/* ---- model statistics (stats.c) ---- */
typedef struct tfx_graph_stats {
  int64_t flops_per_token;    /* decode step (T = 1), attention over one context position excluded */
  int64_t attn_flops_per_ctx; /* added per cached context position by the attentions */
  int64_t bytes_per_token;    /* weights read + activations read/written by one decode step */
  int64_t kv_bytes_per_ctx;   /* KV cache bytes read per cached context position */
  int fused_linears, packed_weights, norm_prologues;
  int attn_nodes;                           /* ATTENTION and MLA_ATTENTION nodes */
  int attn_schedules[TFX_ATTN_SCHED_COUNT]; /* of those, by the schedule of the forward entry */
  int state_nodes;                          /* RETENTION, INFINI_ATTENTION (TFX_TRAIT_STATE) */
  int64_t state_bytes;                      /* their state in the session (tfx_node_kv_bytes) */
  int64_t state_kv_bytes; /* what a causal attention's K and V of the same heads would take at max_seq */
  /* causal ATTENTION nodes reading the KV cache of an earlier node's k and v
   * (tfx_attn_kv_owner: YOCO's cross-decoder), the caches they read, and
   * the KV bytes of a standard decoder of the same depth: every causal
   * attention with a cache of its own, every state node with a KV cache of
   * its heads (state_kv_bytes), MLA with its latent */
  int kv_readers, kv_shared_caches, kv_layers; /* kv_layers: the nodes standard_kv_bytes counts */
  int64_t standard_kv_bytes;
  /* the source cache (cache_source.c): nodes computed once per source (not
   * counted per token above), those kept in the cache, their FLOPs */
  int src_nodes, src_kept;
  int64_t src_flops;
} tfx_graph_stats;
void tfx_pass_graph_stats(const tfx_graph *g, tfx_graph_stats *out);

#endif
