/* backend/module.c — builds the LLVM module of a planned graph: checks that
 * the graph is one the kernels can run (types, planning, bindings), emits the
 * kernels of every live node twice (entry `forward` with T an argument, entry
 * `decode` with T the constant 1 so LLVM specializes it), and a third time for
 * the last-row entry `forward_last` when the output is computed row by row
 * after the last token-mixing op (the tail: those nodes run for the last row
 * only, with the decode bodies); the entry points that fill the argument
 * block and run each kernel inline or through exec->parallel_for (a long
 * call of `forward` / `forward_last` in runs of g->prefill_chunk rows where
 * that computes the same rows: tfx_backend_prefill_chunk); the
 * descriptor; then optimizes with default<On>. */
#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

/* ---- graph checks ---- */

static int node_fail(char *err, size_t errlen, const tfx_node *n, const char *what) {
  return tfx_errf(err, errlen, "backend: %%%d (%s): %s", n->id, tfx_op_name(n->op), what);
}

static int check_value_type(const tfx_graph *g, const tfx_node *n, char *err, size_t errlen) {
  if (n->type.rank < 1 || n->type.rank > TFX_MAX_RANK) return node_fail(err, errlen, n, "values must have rank 1..4");
  double numel = 1;
  for (int i = 0; i < n->type.rank; i++) {
    int64_t d = n->type.dims[i];
    if (d == TFX_DIM_T) {
      if (i != 0) return node_fail(err, errlen, n, "T may only be the first dimension");
      d = g->max_seq;
    } else if (d <= 0 || d > INT32_MAX) {
      return node_fail(err, errlen, n, "dimensions must be in 1..2^31-1");
    }
    numel *= (double)d;
  }
  if (numel > (double)(INT64_C(1) << 40)) return node_fail(err, errlen, n, "value too large (more than 2^40 elements)");
  return 0;
}

static int check_graph(const tfx_graph *g, const char *live, char *err, size_t errlen) {
  char msg[256];
  if (g->max_seq < 1 || g->max_seq > INT32_MAX)
    return tfx_errf(err, errlen, "backend: max_seq = %lld must be in 1..%d", (long long)g->max_seq, INT32_MAX);
  if (g->arena_bytes < 0 || g->kv_bytes < 0 || g->weights_bytes < 0)
    return tfx_errf(err, errlen, "backend: negative memory sizes in the plan");
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (!live[i]) continue;
    if (n->id != i) return tfx_errf(err, errlen, "backend: node %d has id %d", i, n->id);
    for (int j = 0; j < n->n_inputs; j++)
      if (n->inputs[j] < 0 || n->inputs[j] >= i) return node_fail(err, errlen, n, "operand is not an earlier node");
    if (check_value_type(g, n, err, errlen)) return -1;
    if (n->op != TFX_OP_INPUT && n->op != TFX_OP_PARAM) {
      tfx_type t;
      if (tfx_infer_type(g, n, &t, msg, sizeof msg)) return node_fail(err, errlen, n, msg);
      if (!tfx_type_equal(&t, &n->type)) return node_fail(err, errlen, n, "result type differs from the inferred one");
    }
    if (n->op == TFX_OP_INPUT) {
      int k = 0;
      while (k < g->n_fwd_inputs && g->fwd_inputs[k] != i) k++;
      if (k == g->n_fwd_inputs || g->n_fwd_inputs > TFX_MAX_MODEL_INPUTS)
        return node_fail(err, errlen, n, "an input outside the graph's input list");
      if (k == 0 && !((n->type.dtype == TFX_DT_I32 && n->type.rank == 1 && n->type.dims[0] == TFX_DIM_T) ||
                      (n->type.dtype == TFX_DT_F32 && n->type.rank == 2 && n->type.dims[0] == TFX_DIM_T)))
        return node_fail(err, errlen, n, "the input must be i32[T] tokens or f32[T, D]");
      if (k > 0 && !((n->type.dtype == TFX_DT_I32 || n->type.dtype == TFX_DT_F32) && n->type.rank == 1 &&
                     (n->type.dims[0] == TFX_DIM_T || n->type.dims[0] > 0)))
        return node_fail(err, errlen, n, "an extra input must be i32[T] or f32[T] (or a source of static rows)");
    } else if (n->op == TFX_OP_PARAM) {
      if (tfx_type_has_t(&n->type)) return node_fail(err, errlen, n, "a parameter cannot have the dimension T");
      if (n->type.dtype != TFX_DT_F32 && tfx_cg_ws_check(n, msg, sizeof msg)) /* a format no stream reads */
        return node_fail(err, errlen, n, msg);
      int64_t bytes = tfx_type_bytes(&n->type, 1);
      if (n->weight_offset < 0 || n->weight_offset % 4 || n->weight_offset + bytes > g->weights_bytes) {
        snprintf(msg, sizeof msg,
                 "param '%s' is not bound inside the weights blob (offset %lld, %lld bytes, blob %lld)",
                 n->name ? n->name : "?", (long long)n->weight_offset, (long long)bytes, (long long)g->weights_bytes);
        return node_fail(err, errlen, n, msg);
      }
    } else {
      if (n->type.dtype != TFX_DT_F32 && n->type.dtype != TFX_DT_I32) /* an unfolded CONCAT / PACK of weights */
        return node_fail(err, errlen, n, "weights stored as another format than f32 must be folded (fold_weights)");
      /* a view (SLICE) addresses its producer's slot */
      if (n->src_cached == TFX_SRC_KEPT) { /* in the source cache (passes/cache_source.c) */
        int64_t bytes = tfx_node_slot_bytes(g, n, g->max_seq);
        if (n->kv_offset < 64 || n->kv_offset % 4 || n->kv_offset + bytes > g->src_cache_bytes ||
            g->src_cache_bytes > g->kv_bytes)
          return node_fail(err, errlen, n, "no source cache slot: the graph is not planned");
      } else if (i != g->output && !tfx_op_has(n->op, TFX_TRAIT_VIEW)) {
        int64_t bytes = tfx_type_bytes(&n->type, g->max_seq);
        if (n->arena_offset < 0 || n->arena_offset % 4 || n->arena_offset + bytes > g->arena_bytes)
          return node_fail(err, errlen, n, "no arena slot: the graph is not planned (run tfx_pass_plan_memory)");
      }
      if (tfx_node_kv_bytes(n, g->max_seq) > 0) { /* causal ATTENTION, MLA_ATTENTION */
        int64_t bytes = tfx_node_kv_bytes(n, g->max_seq);
        if (n->kv_offset < 0 || n->kv_offset % 4 || n->kv_offset + bytes > g->kv_bytes)
          return node_fail(err, errlen, n, "no KV cache slot: the graph is not planned (run tfx_pass_plan_memory)");
      }
      if (n->op < 0 || n->op >= TFX_OP_COUNT) return node_fail(err, errlen, n, "unsupported op");
    }
  }
  if (g->nodes[g->input].op != TFX_OP_INPUT) return node_fail(err, errlen, &g->nodes[g->input], "is not the input");
  const tfx_node *out = &g->nodes[g->output];
  if (out->type.dtype != TFX_DT_F32) return node_fail(err, errlen, out, "the graph output must be f32");
  if (out->type.dims[0] != TFX_DIM_T || out->type.rank < 2)
    return node_fail(err, errlen, out, "the graph output must be f32[T, N] (one row per token)");
  if (out->op == TFX_OP_PARAM) return node_fail(err, errlen, out, "the graph output cannot be a parameter");
  return 0;
}

/* ---- the last-row entry's tail ---- */

/* 1 when row t of n's value depends only on row t of its operands with T
 * rows (and on operands without T), each such value being [T, ...]. */
static int row_wise(const tfx_graph *g, const tfx_node *n) {
  if (!tfx_node_row_wise(g, n)) return 0; /* the op's trait (ir/ops.h) */
  if (n->type.dims[0] != TFX_DIM_T) return 0;
  int64_t per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  if (n->type.rank >= 2 && (per_t != 1 || fixed != 0)) return 0;
  for (int j = 0; j < n->n_inputs; j++) {
    const tfx_type *t = &g->nodes[n->inputs[j]].type;
    if (!tfx_type_has_t(t)) continue;
    if (t->dims[0] != TFX_DIM_T) return 0;
    for (int d = 1; d < t->rank; d++)
      if (t->dims[d] == TFX_DIM_T) return 0;
  }
  return 1;
}

/* tail[i] = 1 for the live nodes that are row-wise and whose consumers are
 * all tail nodes (the output's own rows). Returns 1 when the output is a
 * tail node (the last-row entry is worth emitting). */
static int mark_tail(const tfx_graph *g, const char *live, char *tail) {
  memset(tail, 1, (size_t)g->n_nodes);
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const tfx_node *n = &g->nodes[i];
    if (!live[i] || n->op == TFX_OP_INPUT || n->op == TFX_OP_PARAM || !row_wise(g, n)) tail[i] = 0;
    if (live[i] && !tail[i])
      for (int j = 0; j < n->n_inputs; j++) tail[n->inputs[j]] = 0;
  }
  return tail[g->output];
}

/* ---- prefill runs ---- */

/* g->prefill_chunk when runs of that many rows compute the rows of the whole
 * call: a KV-cache model of one input and no source whose live nodes are
 * row-wise but for those that read the earlier rows through their KV cache
 * or state (what a decode step relies on); else 0. */
static int64_t chunk_rows(const tfx_graph *g, const char *live) {
  int64_t c = g->prefill_chunk;
  if (c <= 0 || c >= g->max_seq || g->kv_bytes <= 0 || g->src_cache_bytes > 0 || g->n_fwd_inputs > 1) return 0;
  const tfx_node *out = &g->nodes[g->output];
  if (out->type.dims[0] != TFX_DIM_T || out->op == TFX_OP_INPUT) return 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (!live[i] || tfx_op_has(n->op, TFX_TRAIT_SOURCE) || tfx_op_has(n->op, TFX_TRAIT_VIEW) || row_wise(g, n))
      continue;
    if (tfx_node_kv_bytes(n, g->max_seq) <= 0 || n->type.dims[0] != TFX_DIM_T) return 0;
  }
  return c;
}

int64_t tfx_backend_prefill_chunk(const tfx_graph *g) {
  if (!g || g->n_nodes < 1 || g->output < 0 || g->output >= g->n_nodes || g->prefill_chunk <= 0) return 0;
  char *live = malloc((size_t)g->n_nodes);
  char err[256];
  int64_t c = live && !tfx_cg_mark_live(g, live, err, sizeof err) ? chunk_rows(g, live) : 0;
  free(live);
  return c;
}

/* ---- emission ---- */

/* The emitters of the ops without a kernel of their own (the emit column of
 * ir/ops.h): a source is never emitted, a view addresses its producer's
 * slot, a weight transform must have been folded into a PARAM. */
int tfx_cg_emit_source(tfx_cg *cg, const tfx_node *n) {
  return tfx_cg_fail(cg, "backend: %%%d (%s): no kernel for this op", n->id, tfx_op_name(n->op));
}

int tfx_cg_emit_view(tfx_cg *cg, const tfx_node *n) {
  (void)cg;
  (void)n;
  return 0;
}

int tfx_cg_emit_folded(tfx_cg *cg, const tfx_node *n) {
  return tfx_cg_fail(cg, "backend: %%%d (%s): a weight transform was not folded (compile with weights)", n->id,
                     tfx_op_name(n->op));
}

/* the dispatch: the emit column of ir/ops.h */
static int (*const emitters[TFX_OP_COUNT])(tfx_cg *cg, const tfx_node *n) = {
#define TFX_OP(NAME, text, lo, hi, roles, traits, inplace, attrs, interp, emit, infer, check, print, cost)             \
  [TFX_OP_##NAME] = tfx_cg_emit_##emit,
#include "../ir/ops.h"
#undef TFX_OP
};

static int emit_node(tfx_cg *cg, const tfx_node *n) {
  if (n->op < 0 || n->op >= TFX_OP_COUNT) return tfx_cg_fail(cg, "backend: %%%d: no kernel for this op", n->id);
  return emitters[n->op](cg, n);
}

/* The entries get at most this many launches inline; more go to parts
 * (internal noinline functions) of this many launches each. */
#define ENTRY_PART_KERNELS 256

/* The source cache's flag (the first int32 of the KV storage, passes/cache_source.c) is set: the
 * source-invariant values kept there are the current source's. args: the entry's argument block. */
static LLVMValueRef src_cache_flag_ptr(tfx_cg *cg, LLVMValueRef args) {
  LLVMValueRef kv =
      LLVMBuildLoad2(cg->b, cg->t_ptr, LLVMBuildStructGEP2(cg->b, cg->t_args, args, TFX_CG_ARG_KV, ""), "kv");
  LLVMSetAlignment(kv, 8);
  return kv;
}

static LLVMValueRef src_cache_valid(tfx_cg *cg, LLVMValueRef args) {
  LLVMValueRef flag = LLVMBuildLoad2(cg->b, cg->t_i32, src_cache_flag_ptr(cg, args), "src_cache_flag");
  LLVMSetAlignment(flag, 4);
  return LLVMBuildICmp(cg->b, LLVMIntNE, flag, LLVMConstInt(cg->t_i32, 0, 0), "src_cache_valid");
}

/* Launches kernels [k0, k1) of the entry being built into cg->fn at the
 * builder's position: each runs inline on [0, items) when its work is small,
 * else through exec->parallel_for (pf); args is the argument block, n the
 * call's T (a run's rows); final (NULL: always true) is true in the last run
 * of a call, the only one whose tail (one_row) kernels run. */
static void emit_launches(tfx_cg *cg, int k0, int k1, LLVMValueRef args, LLVMValueRef exec, LLVMValueRef pf,
                          LLVMValueRef n, LLVMValueRef final) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef fn = cg->fn;
  int decode = cg->decode;
  LLVMTypeRef pf_params[4] = {cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_i64};
  LLVMTypeRef pf_ty = LLVMFunctionType(cg->t_void, pf_params, 4, 0);
  for (int k = k0; k < k1; k++) {
    const tfx_cg_kernel *kn = &cg->kernels[k];
    LLVMValueRef T = decode || kn->one_row ? tfx_cg_i64(cg, 1) : n;
    LLVMValueRef items = tfx_cg_i64(cg, kn->fixed);
    if (kn->per_t) items = tfx_cg_addc(cg, tfx_cg_mulc(cg, T, kn->per_t), kn->fixed);
    /* compile-time grain: small work runs inline on [0, items), large through the pool */
    LLVMValueRef work = tfx_cg_mulc(cg, T, kn->work);
    LLVMValueRef small = LLVMBuildICmp(b, LLVMIntSLT, work, tfx_cg_i64(cg, TFX_CG_INLINE_WORK), "");
    LLVMBasicBlockRef bb_in = LLVMAppendBasicBlockInContext(cg->ctx, fn, "inline");
    LLVMBasicBlockRef bb_pf = LLVMAppendBasicBlockInContext(cg->ctx, fn, "fork");
    LLVMBasicBlockRef bb_next = LLVMAppendBasicBlockInContext(cg->ctx, fn, "next");
    if (kn->src) { /* computed once per source: skipped while the source cache's flag is set */
      LLVMBasicBlockRef bb_run = LLVMAppendBasicBlockInContext(cg->ctx, fn, "src_run");
      LLVMBuildCondBr(b, src_cache_valid(cg, args), bb_next, bb_run);
      LLVMPositionBuilderAtEnd(b, bb_run);
    }
    if (kn->one_row && final) { /* the last row of the call: in its last run only */
      LLVMBasicBlockRef bb_run = LLVMAppendBasicBlockInContext(cg->ctx, fn, "tail_run");
      LLVMBuildCondBr(b, final, bb_run, bb_next);
      LLVMPositionBuilderAtEnd(b, bb_run);
    }
    LLVMBuildCondBr(b, small, bb_in, bb_pf);
    LLVMPositionBuilderAtEnd(b, bb_in);
    LLVMValueRef dargs[3] = {args, tfx_cg_i64(cg, 0), items};
    LLVMBuildCall2(b, cg->t_kernel, kn->fn, dargs, 3, "");
    LLVMBuildBr(b, bb_next);
    LLVMPositionBuilderAtEnd(b, bb_pf);
    LLVMValueRef cargs[4] = {exec, kn->fn, args, items};
    LLVMBuildCall2(b, pf_ty, pf, cargs, 4, "");
    LLVMBuildBr(b, bb_next);
    LLVMPositionBuilderAtEnd(b, bb_next);
  }
}

/* Stores v into field i of the argument block args. */
static void store_arg(tfx_cg *cg, LLVMValueRef args, unsigned i, LLVMValueRef v) {
  LLVMValueRef st = LLVMBuildStore(cg->b, v, LLVMBuildStructGEP2(cg->b, cg->t_args, args, i, ""));
  LLVMSetAlignment(st, 8);
}

/* void entry(input, n, pos, output, arena, kv, weights, exec); chunk > 0:
 * a call of n rows runs the kernels over runs of chunk rows (the input,
 * position and, but in the last-row entry, output advanced run by run) */
static LLVMValueRef emit_entry(tfx_cg *cg, const char *name, int has_kv, int64_t chunk) {
  /* the last-row entry has the checks and T of the forward entry */
  int decode = cg->decode;
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef params[TFX_CG_ARG_COUNT] = {cg->t_ptr, cg->t_i64, cg->t_i64, cg->t_ptr,
                                          cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_ptr};
  if (cg->batch) params[TFX_CG_ARG_POS] = cg->t_ptr; /* the tfx_kv_row array, kept as i64 in the block */
  LLVMTypeRef fty = LLVMFunctionType(cg->t_void, params, TFX_CG_ARG_COUNT, 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  tfx_cg_set_fn_attrs(cg, fn);
  cg->fn = fn;
  cg->entry_bb = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(cg->ctx, fn, "run");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done");
  LLVMPositionBuilderAtEnd(b, cg->entry_bb);
  LLVMValueRef n = LLVMGetParam(fn, TFX_CG_ARG_N), pos = LLVMGetParam(fn, TFX_CG_ARG_POS);
  LLVMValueRef max_seq = tfx_cg_i64(cg, cg->g->max_seq);
  /* a call outside the contract does nothing rather than touch memory it must not */
  LLVMValueRef bad = decode ? LLVMBuildICmp(b, LLVMIntNE, n, tfx_cg_i64(cg, 1), "")
                            : LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntSLT, n, tfx_cg_i64(cg, 1), ""),
                                          LLVMBuildICmp(b, LLVMIntSGT, n, max_seq, ""), "");
  if (cg->batch) /* the rows' positions and tables are the runtime's to check */
    bad = LLVMBuildOr(b, bad, LLVMBuildIsNull(b, pos, ""), "");
  else
    bad = LLVMBuildOr(b, bad, LLVMBuildICmp(b, LLVMIntSLT, pos, tfx_cg_i64(cg, 0), ""), "");
  if (has_kv && !cg->batch)
    bad = LLVMBuildOr(b, bad, LLVMBuildICmp(b, LLVMIntSGT, pos, LLVMBuildSub(b, max_seq, n, ""), ""), "");
  LLVMBuildCondBr(b, bad, done, run);
  LLVMPositionBuilderAtEnd(b, run);
  LLVMValueRef args = LLVMBuildAlloca(b, cg->t_args, "args");
  LLVMSetAlignment(args, 16);
  for (unsigned i = 0; i < TFX_CG_ARG_COUNT; i++) {
    LLVMValueRef v = LLVMGetParam(fn, i);
    if (cg->batch && i == TFX_CG_ARG_POS) v = LLVMBuildPtrToInt(b, v, cg->t_i64, "rows");
    LLVMValueRef st = LLVMBuildStore(b, v, LLVMBuildStructGEP2(b, cg->t_args, args, i, ""));
    LLVMSetAlignment(st, 8);
  }
  LLVMValueRef exec = LLVMGetParam(fn, TFX_CG_ARG_EXEC);
  LLVMValueRef pf = LLVMBuildLoad2(b, cg->t_ptr, exec, "parallel_for");
  LLVMSetAlignment(pf, 8);
  LLVMValueRef final = NULL, c0 = NULL;
  LLVMBasicBlockRef loop = NULL;
  if (chunk > 0) { /* for (c0 = 0; c0 < n; c0 += chunk): a run of min(chunk, n - c0) rows */
    const tfx_graph *g = cg->g;
    int64_t in_row = tfx_type_bytes(&g->nodes[g->input].type, 1),
            out_row = tfx_type_bytes(&g->nodes[g->output].type, 1);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
    loop = LLVMAppendBasicBlockInContext(cg->ctx, fn, "run_rows");
    LLVMBuildBr(b, loop);
    LLVMPositionBuilderAtEnd(b, loop);
    c0 = LLVMBuildPhi(b, cg->t_i64, "c0");
    LLVMValueRef zero = tfx_cg_i64(cg, 0);
    LLVMAddIncoming(c0, &zero, &pre, 1);
    LLVMValueRef left = LLVMBuildSub(b, n, c0, "left");
    LLVMValueRef more = LLVMBuildICmp(b, LLVMIntSGT, left, tfx_cg_i64(cg, chunk), "");
    final = LLVMBuildNot(b, more, "final");
    LLVMValueRef rows = LLVMBuildSelect(b, more, tfx_cg_i64(cg, chunk), left, "rows");
    LLVMValueRef in = LLVMBuildGEP2(b, LLVMInt8TypeInContext(cg->ctx), LLVMGetParam(fn, TFX_CG_ARG_INPUT),
                                    (LLVMValueRef[]){tfx_cg_mulc(cg, c0, in_row)}, 1, "in_run");
    store_arg(cg, args, TFX_CG_ARG_INPUT, in);
    store_arg(cg, args, TFX_CG_ARG_N, rows);
    store_arg(cg, args, TFX_CG_ARG_POS, LLVMBuildAdd(b, pos, c0, "pos_run"));
    if (!cg->tail) { /* the last-row entry: every run writes its last row to row 0, the last run's stays */
      LLVMValueRef o = LLVMBuildGEP2(b, LLVMInt8TypeInContext(cg->ctx), LLVMGetParam(fn, TFX_CG_ARG_OUTPUT),
                                     (LLVMValueRef[]){tfx_cg_mulc(cg, c0, out_row)}, 1, "out_run");
      store_arg(cg, args, TFX_CG_ARG_OUTPUT, o);
    }
    n = rows;
  }
  if (cg->n_kernels <= ENTRY_PART_KERNELS) {
    emit_launches(cg, 0, cg->n_kernels, args, exec, pf, n, final);
  } else {
    /* one call per part of ENTRY_PART_KERNELS launches: no function's size
     * (so no LLVM pass's time) grows with the number of layers */
    /* and each kernel is inlined where it is called directly by LLVM's
     * first inliner, before GlobalsAA tracks it: deleting thousands of
     * tracked functions later costs a scan of all functions each */
    unsigned always = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    for (int k = 0; k < cg->n_kernels; k++)
      LLVMAddAttributeAtIndex(cg->kernels[k].fn, LLVMAttributeFunctionIndex,
                              LLVMCreateEnumAttribute(cg->ctx, always, 0));
    LLVMTypeRef part_params[4] = {cg->t_ptr, cg->t_ptr, cg->t_i64, cg->t_i1}; /* args, exec, n, final */
    LLVMTypeRef part_ty = LLVMFunctionType(cg->t_void, part_params, 4, 0);
    for (int k0 = 0; k0 < cg->n_kernels; k0 += ENTRY_PART_KERNELS) {
      char pname[96];
      snprintf(pname, sizeof pname, "%s_part%d", name, k0 / ENTRY_PART_KERNELS);
      LLVMValueRef part = LLVMAddFunction(cg->mod, pname, part_ty);
      LLVMSetLinkage(part, LLVMInternalLinkage);
      tfx_cg_set_fn_attrs(cg, part);
      unsigned noinline = LLVMGetEnumAttributeKindForName("noinline", 8);
      LLVMAddAttributeAtIndex(part, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, noinline, 0));
      LLVMBasicBlockRef here = LLVMGetInsertBlock(b);
      LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(cg->ctx, part, "entry"));
      LLVMValueRef saved = cg->fn;
      cg->fn = part;
      int k1 = k0 + ENTRY_PART_KERNELS < cg->n_kernels ? k0 + ENTRY_PART_KERNELS : cg->n_kernels;
      LLVMValueRef ppf = LLVMBuildLoad2(b, cg->t_ptr, LLVMGetParam(part, 1), "parallel_for");
      LLVMSetAlignment(ppf, 8);
      emit_launches(cg, k0, k1, LLVMGetParam(part, 0), LLVMGetParam(part, 1), ppf, LLVMGetParam(part, 2),
                    final ? LLVMGetParam(part, 3) : NULL);
      LLVMBuildRetVoid(b);
      cg->fn = saved;
      LLVMPositionBuilderAtEnd(b, here);
      LLVMValueRef pargs[4] = {args, exec, n, final ? final : LLVMConstInt(cg->t_i1, 1, 0)};
      LLVMBuildCall2(b, part_ty, part, pargs, 4, "");
    }
  }
  if (chunk > 0) { /* the next run, or done */
    LLVMValueRef next = tfx_cg_addc(cg, c0, chunk);
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(b), after = LLVMAppendBasicBlockInContext(cg->ctx, fn, "runs_done");
    LLVMAddIncoming(c0, &next, &latch, 1);
    LLVMBuildCondBr(b, final, after, loop);
    LLVMPositionBuilderAtEnd(b, after);
  }
  if (cg->g->src_cache_bytes > 0) { /* the kept values now hold this call's source */
    LLVMValueRef st = LLVMBuildStore(b, LLVMConstInt(cg->t_i32, 1, 0), src_cache_flag_ptr(cg, args));
    LLVMSetAlignment(st, 4);
  }
  LLVMBuildBr(b, done);
  LLVMPositionBuilderAtEnd(b, done);
  LLVMBuildRetVoid(b);
  return fn;
}

static void init_types(tfx_cg *cg) {
  LLVMContextRef c = cg->ctx;
  cg->t_void = LLVMVoidTypeInContext(c);
  cg->t_i1 = LLVMInt1TypeInContext(c);
  cg->t_i32 = LLVMInt32TypeInContext(c);
  cg->t_i64 = LLVMInt64TypeInContext(c);
  cg->t_f32 = LLVMFloatTypeInContext(c);
  cg->t_f64 = LLVMDoubleTypeInContext(c);
  cg->t_ptr = LLVMPointerTypeInContext(c, 0);
  cg->t_vf = LLVMVectorType(cg->t_f32, (unsigned)cg->W);
  cg->t_vi = LLVMVectorType(cg->t_i32, (unsigned)cg->W);
  cg->t_vm = LLVMVectorType(cg->t_i1, (unsigned)cg->W);
  LLVMTypeRef kp[3] = {cg->t_ptr, cg->t_i64, cg->t_i64};
  cg->t_kernel = LLVMFunctionType(cg->t_void, kp, 3, 0);
  LLVMTypeRef fields[TFX_CG_ARG_COUNT] = {cg->t_ptr, cg->t_i64, cg->t_i64, cg->t_ptr,
                                          cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_ptr};
  cg->t_args = LLVMStructTypeInContext(c, fields, TFX_CG_ARG_COUNT, 0);
  LLVMTypeRef bp[TFX_CG_BODY_PTRS + 4]; /* TFX_CG_BODY_PTRS pointers, then T, pos, begin, end */
  for (int i = 0; i < TFX_CG_BODY_PTRS + 4; i++) bp[i] = i < TFX_CG_BODY_PTRS ? cg->t_ptr : cg->t_i64;
  cg->t_body = LLVMFunctionType(cg->t_void, bp, TFX_CG_BODY_PTRS + 4, 0);
}

static void init_fn_attrs(tfx_cg *cg) {
  char buf[32];
  const char *cpu = cg->tgt->cpu ? cg->tgt->cpu : "";
  const char *feat = cg->tgt->features ? cg->tgt->features : "";
  cg->n_fn_attrs = 0;
  cg->fn_attrs[cg->n_fn_attrs++] = LLVMCreateStringAttribute(cg->ctx, "target-cpu", 10, cpu, (unsigned)strlen(cpu));
  if (feat[0])
    cg->fn_attrs[cg->n_fn_attrs++] =
        LLVMCreateStringAttribute(cg->ctx, "target-features", 15, feat, (unsigned)strlen(feat));
  snprintf(buf, sizeof buf, "%d", cg->W * 32);
  cg->fn_attrs[cg->n_fn_attrs++] =
      LLVMCreateStringAttribute(cg->ctx, "min-legal-vector-width", 22, buf, (unsigned)strlen(buf));
  /* no libc calls made up by LLVM: the copy loops (the micro-kernel's x
   * buffer) stay inline vector moves instead of memcpy calls of 1 KiB */
  cg->fn_attrs[cg->n_fn_attrs++] = LLVMCreateStringAttribute(cg->ctx, "no-builtins", 11, "", 0);
}

int tfx_cg_build_module(const tfx_graph *g, const tfx_cg_target *t, LLVMContextRef ctx, LLVMTargetMachineRef tm,
                        const char *weights_symbol, LLVMModuleRef *out, char *err, size_t errlen) {
  *out = NULL;
  if (!g) return tfx_errf(err, errlen, "backend: no graph");
  if (g->n_nodes < 1 || !g->nodes || g->input < 0 || g->input >= g->n_nodes || g->output < 0 || g->output >= g->n_nodes)
    return tfx_errf(err, errlen, "backend: the graph has no input or no output");
  char *live = malloc((size_t)g->n_nodes * 2);
  if (!live) return tfx_errf(err, errlen, "backend: out of memory");
  char *tail = live + g->n_nodes;
  if (tfx_cg_mark_live(g, live, err, errlen) || check_graph(g, live, err, errlen)) {
    free(live);
    return -1;
  }
  int32_t ik, iw, ow, voc, has_kv;
  if (tfx_cg_model_shape(g, &ik, &iw, &ow, &voc, &has_kv, err, errlen)) {
    free(live);
    return -1;
  }
  int has_last = mark_tail(g, live, tail);
  int64_t chunk = chunk_rows(g, live);
  int64_t block_bytes = 0;
  int has_batch = has_kv && tfx_cg_batch_supported(g, live, row_wise, &block_bytes);

  tfx_cg cg;
  memset(&cg, 0, sizeof cg);
  cg.ctx = ctx;
  cg.g = g;
  cg.tgt = t;
  cg.W = t->width;
  cg.err = err;
  cg.errlen = errlen;
  char modname[160];
  snprintf(modname, sizeof modname, "tfx_%s", g->name ? g->name : "model");
  cg.mod = LLVMModuleCreateWithNameInContext(modname, ctx);
  LLVMSetTarget(cg.mod, t->triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(cg.mod, td);
  LLVMDisposeTargetData(td);
  cg.b = LLVMCreateBuilderInContext(ctx);
  init_types(&cg);
  init_fn_attrs(&cg);

  tfx_cg_entry_fns entries = {0};
  /* mode 0: forward, 1: decode, 2: the last-row entry (tail nodes one-row
   * with the decode bodies, the others as in forward), 3: the batch entry
   * (forward's shapes, per-row positions, the paged KV cache: k_paged.c) */
  for (int mode = 0; mode < 4 && !cg.failed; mode++) {
    static const char *const kmodes[4] = {"fwd", "dec", "lst", "bat"};
    static const char *const names[4] = {"tfx_entry_forward", "tfx_entry_decode", "tfx_entry_last", "tfx_entry_batch"};
    if ((mode == 2 && !has_last) || (mode == 3 && !has_batch)) continue;
    cg.kmode = kmodes[mode];
    cg.tail = mode == 2 ? tail : NULL;
    cg.batch = mode == 3;
    cg.kv_block_bytes = block_bytes;
    cg.n_kernels = 0;
    for (int i = 0; i < g->n_nodes && !cg.failed; i++) {
      const tfx_node *n = &g->nodes[i];
      if (!live[i] || tfx_op_has(n->op, TFX_TRAIT_SOURCE)) continue;
      cg.one_row = mode == 2 && tail[i];
      cg.src_node = n->src_cached != TFX_SRC_NONE;
      cg.decode = mode == 1 || cg.one_row;
      cg.mode = cg.batch && tfx_cg_batch_positional(n) ? "bat" : cg.decode ? "dec" : "fwd";
      emit_node(&cg, n);
    }
    cg.one_row = 0;
    cg.src_node = 0;
    cg.decode = mode == 1;
    cg.mode = cg.decode ? "dec" : "fwd";
    if (!cg.failed && g->nodes[g->output].op == TFX_OP_INPUT) tfx_cg_emit_copy(&cg, &g->nodes[g->output], g->output);
    if (cg.failed) break;
    LLVMValueRef fn = emit_entry(&cg, names[mode], has_kv, mode == 0 || mode == 2 ? chunk : 0);
    if (mode == 0) entries.forward = fn;
    if (mode == 1) entries.decode = fn;
    if (mode == 2) entries.last = fn;
    if (mode == 3) entries.batch = fn;
  }
  cg.batch = 0;
  free(live);
  if (!cg.failed) tfx_cg_emit_descriptor(&cg, &entries, weights_symbol);
  LLVMDisposeBuilder(cg.b);
  free(cg.kernels);
  tfx_cg_bodies_free(&cg);
  if (cg.failed) {
    LLVMDisposeModule(cg.mod);
    return -1;
  }
  char *msg = NULL;
  if (LLVMVerifyModule(cg.mod, LLVMReturnStatusAction, &msg)) {
    tfx_errf(err, errlen, "backend: internal error, invalid LLVM module: %.400s", msg ? msg : "?");
    LLVMDisposeMessage(msg);
    LLVMDisposeModule(cg.mod);
    return -1;
  }
  LLVMDisposeMessage(msg);
  *out = cg.mod;
  return 0;
}

int tfx_cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level, char *err, size_t errlen) {
  char pipeline[32];
  if (opt_level < 0) opt_level = 0;
  if (opt_level > 3) opt_level = 3;
  snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *m = LLVMGetErrorMessage(e);
    tfx_errf(err, errlen, "backend: LLVM optimization failed: %s", m);
    LLVMDisposeErrorMessage(m);
    return -1;
  }
  return 0;
}
