/* driver/stats.c — `tfxc FILE.tfx --stats`: what the compiled plan costs:
 * kernels launched per call of each entry (counted in the generated module),
 * arena bytes against the liveness peak and the naive sum, KV-cache and
 * weight bytes, FLOPs and bytes moved per decoded token, the attention
 * schedules, and the fused plan (one line per fused linear). */
#include <string.h>

#include "../passes/passes.h"
#include "compile.h"

static void describe_fused(const tfx_graph *g, const tfx_node *n, FILE *out) {
  const tfx_fused *fx = &n->fx;
  const tfx_node *x = &g->nodes[n->inputs[0]], *w = &g->nodes[n->inputs[1]];
  fprintf(out, "    %%%-4d fused_linear %lld -> %lld", n->id, (long long)tfx_node_cols(x), (long long)tfx_node_cols(n));
  if (fx->n_segs > 1 && !fx->glu) {
    fprintf(out, " (%d projections:", fx->n_segs);
    for (int s = 0; s < fx->n_segs; s++) fprintf(out, " %lld", (long long)fx->segs[s]);
    fputc(')', out);
  }
  if (fx->norm) fprintf(out, "  prologue=%s", fx->norm == TFX_NORM_LAYER ? "layernorm" : "rmsnorm");
  char epi[160] = "";
  if (fx->has_bias) strcat(epi, ",bias");
  if (fx->rope) strcat(epi, ",rope");
  if (fx->act) {
    strcat(epi, ",");
    strcat(epi, tfx_act_name(fx->act));
  }
  if (fx->glu) strcat(epi, ",glu");
  if (fx->residual) strcat(epi, ",residual");
  if (fx->stats_out) strcat(epi, fx->stats_out == TFX_NORM_LAYER ? ",layernorm-stats" : ",rmsnorm-stats");
  if (epi[0]) fprintf(out, "  epilogue=%s", epi + 1);
  fprintf(out, "  weights=%s%s\n", w->name ? w->name : "?", w->fx.panel ? " (packed)" : "");
}

int tfx_print_stats(const tfx_graph *g, const tfx_target_options *t, const char *pipeline, FILE *out, char *err,
                    size_t errlen) {
  int fwd = 0, dec = 0;
  char target[512];
  if (tfx_backend_kernel_counts(g, t, &fwd, &dec, err, errlen)) return -1;
  if (tfx_backend_target_summary(t, target, sizeof target, err, errlen)) return -1;
  tfx_mem_stats ms;
  if (tfx_pass_mem_stats(g, &ms)) {
    snprintf(err, errlen, "cannot compute the liveness statistics");
    return -1;
  }
  tfx_graph_stats gs;
  tfx_pass_graph_stats(g, &gs);
  int params = 0;
  for (int i = 0; i < g->n_nodes; i++) params += g->nodes[i].op == TFX_OP_PARAM;
  fprintf(out, "model %s: %d nodes, max_seq %lld\n", g->name ? g->name : "?", g->n_nodes, (long long)g->max_seq);
  fprintf(out, "  passes:            %s\n", pipeline ? pipeline : "?");
  fprintf(out, "  target:            %s\n", target);
  fprintf(out, "  kernels per call:  prefill (forward) %d, decode %d\n", fwd, dec);
  fprintf(out, "  arena:             %lld bytes (liveness peak %lld, naive sum of %d values %lld)\n",
          (long long)g->arena_bytes, (long long)ms.peak_live, ms.values, (long long)ms.naive_sum);
  fprintf(out, "  kv cache:          %lld bytes\n", (long long)g->kv_bytes);
  fprintf(out, "  weights:           %lld bytes in %d tensors (%d packed)\n", (long long)g->weights_bytes, params,
          gs.packed_weights);
  fprintf(out, "  per decoded token: %lld FLOPs + %lld per cached position (attention)\n",
          (long long)gs.flops_per_token, (long long)gs.attn_flops_per_ctx);
  fprintf(out, "                     %lld bytes moved + %lld per cached position (KV reads)\n",
          (long long)gs.bytes_per_token, (long long)gs.kv_bytes_per_ctx);
  if (gs.attn_nodes) {
    fprintf(out, "  attention:         %d nodes, schedules", gs.attn_nodes);
    for (int s = TFX_ATTN_SCHED_UNSET + 1; s < TFX_ATTN_SCHED_COUNT; s++)
      fprintf(out, "%s %s %d", s > TFX_ATTN_SCHED_UNSET + 1 ? "," : "", tfx_attn_schedule_name(s),
              gs.attn_schedules[s]);
    fprintf(out, " (prefill; decode runs row)\n");
  }
  fprintf(out, "  fused plan:        %d fused linears, %d with a norm prologue\n", gs.fused_linears, gs.norm_prologues);
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_FUSED_LINEAR) describe_fused(g, &g->nodes[i], out);
  return ferror(out) ? -1 : 0;
}
