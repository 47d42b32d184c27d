/* driver/stats.c — `tfxc FILE.tfx --stats`: what the compiled plan costs:
 * kernels launched per call of each entry (counted in the generated module),
 * arena bytes against the liveness peak and the naive sum, KV-cache and
 * weight bytes, FLOPs and bytes moved per decoded token, the attention
 * schedules, the weights' formats (bits per weight, bytes read per token,
 * the quantization fallbacks), and the fused plan (one line per fused
 * linear). */
#include <stdlib.h>
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
  fprintf(out, "  weights=%s%s", w->name ? w->name : "?", w->fx.panel ? " (packed)" : "");
  fprintf(out, "%s\n", tfx_fl_unrolled(g, n) ? "  decode=unrolled" : "");
}

/* The weights section: bytes and tensors per format, bits per weight, the
 * bytes one decoded token reads (weights: a table read only by embeddings
 * costs one row; KV: per cached position), and the quantize_weights pass's
 * fallbacks with their reason. */
static void weight_stats(const tfx_graph *g, int64_t kv_per_ctx, FILE *out) {
  int64_t bytes[TFX_DT_COUNT] = {0}, elems = 0, total = 0, per_token = 0;
  int count[TFX_DT_COUNT] = {0};
  /* per node: 1 = used, 2 = used other than as an embedding table (one
   * pass over the uses: linear in the graph's size) */
  unsigned char *use = calloc((size_t)g->n_nodes + 1, 1);
  if (!use) {
    fprintf(out, "  weights: (out of memory)\n");
    return;
  }
  for (int j = 0; j < g->n_nodes; j++)
    for (int k = 0; k < g->nodes[j].n_inputs; k++) {
      int in = g->nodes[j].inputs[k];
      if (in < 0 || in >= g->n_nodes) continue;
      use[in] |= 1;
      if (!(g->nodes[j].op == TFX_OP_EMBEDDING && k == 0)) use[in] |= 2;
    }
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (n->op != TFX_OP_PARAM || n->type.dtype < 0 || n->type.dtype >= TFX_DT_COUNT) continue;
    int64_t b = tfx_type_bytes(&n->type, 1);
    bytes[n->type.dtype] += b;
    count[n->type.dtype]++;
    elems += tfx_type_numel(&n->type, 1);
    total += b;
    int used = use[i] & 1, table_only = !(use[i] & 2); /* read only as an embedding table: one row per token */
    if (used) per_token += table_only && tfx_node_rows(n, 1) > 0 ? b / tfx_node_rows(n, 1) : b;
  }
  free(use);
  fprintf(out, "  weights by format:");
  for (int d = 0, first = 1; d < TFX_DT_COUNT; d++)
    if (count[d]) {
      fprintf(out, "%s %s %lld bytes (%d tensor%s)", first ? "" : ",", tfx_dtype_name((tfx_dtype)d),
              (long long)bytes[d], count[d], count[d] == 1 ? "" : "s");
      first = 0;
    }
  fprintf(out, "\n  bits per weight:   %.3f (%lld bytes for %lld weights)\n",
          elems ? 8.0 * (double)total / (double)elems : 0.0, (long long)total, (long long)elems);
  fprintf(out,
          "  read per token:    %lld bytes of weights + %lld bytes of KV cache per cached position (%lld at max_seq)\n",
          (long long)per_token, (long long)kv_per_ctx, (long long)(per_token + kv_per_ctx * g->max_seq));
  if (g->schedule.quantize.mode != TFX_QUANT_KEEP || g->schedule.n_quant_rules)
    fprintf(out, "  quantize:          %s%s, %d fallback%s\n", tfx_quant_choice_name(g->schedule.quantize),
            g->schedule.n_quant_rules ? " with quantize { } rules" : "", g->n_quant_fallbacks,
            g->n_quant_fallbacks == 1 ? "" : "s");
  for (int i = 0; i < g->n_quant_fallbacks; i++) {
    const tfx_quant_fallback *f = &g->quant_fallbacks[i];
    const tfx_dtype_info *fi = tfx_dtype_info_of(f->asked);
    if (f->gptq_rtn) {
      fprintf(out, "    %s: gptq -> %s rounded to nearest: no calibration H for it\n", f->name, tfx_dtype_name(f->got));
      continue;
    }
    if (fi && fi->block > 0 && f->K % fi->block == 0) /* a format for linears only (tq2_0, s24_*) */
      fprintf(out, "    %s: %s -> %s: read by more than linears (an embedding table, a tied classifier, experts)\n",
              f->name, tfx_dtype_name(f->asked), tfx_dtype_name(f->got));
    else
      fprintf(out, "    %s: %s -> %s: rows of %lld are not a multiple of %d\n", f->name, tfx_dtype_name(f->asked),
              tfx_dtype_name(f->got), (long long)f->K, fi ? fi->block : 0);
  }
  if (g->n_permutes)
    fprintf(out, "  permuted channels: %d weight%s (2:4 keeps of |w|)\n", g->n_permutes, g->n_permutes == 1 ? "" : "s");
  for (int i = 0; i < g->n_permutes; i++) {
    const tfx_channel_permute *p = &g->permutes[i];
    fprintf(out, "    %s: %.6g -> %.6g (%+.2f%%)\n", p->name, p->kept_before, p->kept_after,
            p->kept_before > 0 ? 100.0 * (p->kept_after / p->kept_before - 1.0) : 0.0);
  }
}

int tfx_print_stats(const tfx_graph *g, const tfx_target_options *t, const char *pipeline, FILE *out, char *err,
                    size_t errlen) {
  int fwd = 0, dec = 0;
  char target[512], kernels[600];
  /* a graph the backend cannot compile yet (a weight format without a
   * kernel stream) still gets its statistics */
  if (tfx_backend_kernel_counts(g, t, &fwd, &dec, err, errlen))
    snprintf(kernels, sizeof kernels, "unavailable: %s", err);
  else
    snprintf(kernels, sizeof kernels, "prefill (forward) %d, decode %d", fwd, dec);
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
  fprintf(out, "  kernels per call:  %s\n", kernels);
  int64_t chunk = tfx_backend_prefill_chunk(g);
  int64_t asked = g->schedule.prefill_chunk;
  if (chunk > 0)
    fprintf(out, "  prefill runs:      a call of more than %lld rows runs the forward kernels %lld rows at a time%s\n",
            (long long)chunk, (long long)chunk, asked > 0 ? " (schedule { prefill_chunk })" : "");
  else if (asked > 0)
    fprintf(out, "  prefill runs:      none: schedule { prefill_chunk = %lld } is %s; whole calls run\n",
            (long long)asked,
            asked >= g->max_seq ? "not below max_seq"
                                : "not possible here (runs need a KV-cache model of one input and no source whose "
                                  "only row-mixing ops read earlier rows through the cache)");
  fprintf(out, "  arena:             %lld bytes (liveness peak %lld, naive sum of %d values %lld)\n",
          (long long)g->arena_bytes, (long long)ms.peak_live, ms.values, (long long)ms.naive_sum);
  fprintf(out, "  kv cache:          %lld bytes\n", (long long)g->kv_bytes);
  if (g->src_cache_bytes > 0)
    fprintf(out,
            "  source cache:      %lld bytes of the kv cache: %d value%s kept of %d nodes computed once per source "
            "(%lld FLOPs), not per token\n",
            (long long)g->src_cache_bytes, gs.src_kept, gs.src_kept == 1 ? "" : "s", gs.src_nodes,
            (long long)gs.src_flops);
  if (gs.state_nodes)
    fprintf(out,
            "  recurrent state:   %lld bytes in %d retention/infini_attention nodes (a KV cache of their heads at "
            "max_seq: %lld bytes)\n",
            (long long)gs.state_bytes, gs.state_nodes, (long long)gs.state_kv_bytes);
  if (gs.kv_readers) {
    fprintf(out,
            "  kv sharing:        %d attention node%s %d shared cache%s (YOCO); a standard decoder of the same "
            "depth (%d attention layers, each with its own KV cache at max_seq) would keep %lld bytes, %.2fx\n",
            gs.kv_readers, gs.kv_readers == 1 ? " reads" : "s read", gs.kv_shared_caches,
            gs.kv_shared_caches == 1 ? "" : "s", gs.kv_layers, (long long)gs.standard_kv_bytes,
            g->kv_bytes > 0 ? (double)gs.standard_kv_bytes / (double)g->kv_bytes : 0.0);
  }
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
    fprintf(out, " (prefill)\n");
    for (int i = 0; i < g->n_nodes; i++) {
      const tfx_node *n = &g->nodes[i];
      if (!tfx_op_has(n->op, TFX_TRAIT_KV_CACHE)) continue;
      tfx_attn_cost c;
      tfx_attn_cost_eval(g, n, &c);
      char dsched[32];
      if (n->attn_split >= 2)
        snprintf(dsched, sizeof dsched, "split(%d)", n->attn_split);
      else if (tfx_attn_tiny_chosen(g, n))
        snprintf(dsched, sizeof dsched, "tiny");
      else
        snprintf(dsched, sizeof dsched, "row");
      char tiled[32] = "n/a";
      if (c.prefill_tiled_ns > 0) snprintf(tiled, sizeof tiled, "%.3g", c.prefill_tiled_ns / 1e6);
      fprintf(out,
              "    %%%d: prefill %s (%.3g GFLOP at T = max_seq, %.0f%% of pairs kept; estimate %.3g ms, row %.3g, "
              "tiled %s); decode %s (KV %.3g MB at max_seq, %.0f keys visited per head; estimate %.3g units on %d "
              "threads, row %.3g)%s\n",
              i, tfx_attn_schedule_name(tfx_attn_schedule_of(g, n, 0)), c.prefill_flops / 1e9, 100.0 * c.kept,
              (tfx_attn_schedule_of(g, n, 0) == TFX_ATTN_SCHED_ROW ? c.prefill_row_ns : c.prefill_tiled_ns) / 1e6,
              c.prefill_row_ns / 1e6, tiled, dsched, c.decode_kv_bytes / 1e6, c.decode_keys,
              tfx_attn_cost_split_units(g, n, n->attn_split), c.threads, c.row_units,
              n->op == TFX_OP_ATTENTION && n->segments
                  ? "; segment ids: row, each query visits only its sequence's keys (at most all of them)"
                  : "");
    }
  }
  weight_stats(g, gs.kv_bytes_per_ctx, out);
  fprintf(out, "  fused plan:        %d fused linears, %d with a norm prologue\n", gs.fused_linears, gs.norm_prologues);
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_FUSED_LINEAR) describe_fused(g, &g->nodes[i], out);
  return ferror(out) ? -1 : 0;
}
