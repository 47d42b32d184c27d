/* backend/k_paged.c — what the batch entry (module.c, TFX_ENTRY_BATCH)
 * changes in the kernels: every row has its own position and its own KV
 * block table (the tfx_kv_row array of include/tfx/abi.h, passed where other
 * entries pass the scalar position), and a causal attention's K and V rows
 * live in the blocks of a shared pool (TFX_KV_BLOCK_TOKENS positions per
 * block; a block holds, for every causal attention node in graph order, its
 * K rows then its V rows). Also the check that a graph can run batched: rows
 * of different sequences may only meet in the paged attention. */
#include <string.h>

#include "cg.h"

/* {i32 pos, i32 reserved, ptr blocks}: tfx_kv_row */
static LLVMTypeRef row_type(tfx_cg *cg) {
  LLVMTypeRef f[3] = {cg->t_i32, cg->t_i32, cg->t_ptr};
  return LLVMStructTypeInContext(cg->ctx, f, 3, 0);
}

static LLVMValueRef row_field(tfx_cg *cg, LLVMValueRef row, unsigned field) {
  LLVMTypeRef rt = row_type(cg);
  LLVMValueRef rows = LLVMBuildIntToPtr(cg->b, cg->pos, cg->t_ptr, "rows");
  LLVMValueRef idx[2] = {row, LLVMConstInt(cg->t_i32, field, 0)};
  return LLVMBuildGEP2(cg->b, rt, rows, idx, 2, "");
}

int tfx_cg_batch_positional(const tfx_node *n) {
  switch (n->op) {
  case TFX_OP_ATTENTION:
  case TFX_OP_ROPE:
  case TFX_OP_POSITIONS:
  case TFX_OP_SINUSOIDAL:
  case TFX_OP_EMBEDDING: return 1;
  case TFX_OP_FUSED_LINEAR: return n->fx.rope != 0;
  default: return 0;
  }
}

/* A body shared with the forward entry must not read the rows: a node
 * missing from tfx_cg_batch_positional fails the compile, never runs with
 * the rows pointer taken for a position. */
static int check_own_body(tfx_cg *cg) {
  if (!strcmp(cg->mode, "bat")) return 0;
  tfx_cg_fail(cg, "backend: internal error: a per-row position in a body the batch entry shares with forward");
  return -1;
}

LLVMValueRef tfx_cg_row_pos(tfx_cg *cg, LLVMValueRef row) {
  if (!cg->batch || check_own_body(cg)) return tfx_cg_add(cg, cg->pos, row);
  LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_i32, row_field(cg, row, 0), "row_pos");
  LLVMSetAlignment(v, 4);
  return LLVMBuildSExt(cg->b, v, cg->t_i64, "");
}

LLVMValueRef tfx_cg_row_blocks(tfx_cg *cg, LLVMValueRef row) {
  if (check_own_body(cg)) return LLVMConstNull(cg->t_ptr);
  LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_ptr, row_field(cg, row, 2), "blocks");
  LLVMSetAlignment(v, 8);
  return v;
}

LLVMValueRef tfx_cg_paged_row(tfx_cg *cg, LLVMValueRef pool_part, LLVMValueRef blocks, LLVMValueRef p,
                              int64_t row_bytes) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef bi = LLVMBuildLShr(b, p, tfx_cg_i64(cg, __builtin_ctz(TFX_KV_BLOCK_TOKENS)), "");
  LLVMValueRef in = LLVMBuildAnd(b, p, tfx_cg_i64(cg, TFX_KV_BLOCK_TOKENS - 1), "");
  LLVMValueRef blk = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildGEP2(b, cg->t_i32, blocks, &bi, 1, ""), "block");
  LLVMSetAlignment(blk, 4);
  LLVMValueRef off = tfx_cg_add(cg, tfx_cg_mulc(cg, LLVMBuildZExt(b, blk, cg->t_i64, ""), cg->kv_block_bytes),
                                tfx_cg_mulc(cg, in, row_bytes));
  LLVMTypeRef i8 = LLVMInt8TypeInContext(cg->ctx);
  return LLVMBuildGEP2(b, i8, pool_part, &off, 1, "");
}

static int paged_node(const tfx_node *n) { return n->op == TFX_OP_ATTENTION && n->mask == TFX_MASK_CAUSAL; }

static int64_t block_part(const tfx_node *n) {
  return 2 * (int64_t)TFX_KV_BLOCK_TOKENS * n->kv_heads * n->head_dim * 4;
}

int64_t tfx_cg_kv_block_offset(const tfx_graph *g, const tfx_node *n) {
  int64_t off = 0;
  for (int i = 0; i < n->id && i < g->n_nodes; i++)
    if (paged_node(&g->nodes[i]) && g->nodes[i].kv_offset >= 0) off += block_part(&g->nodes[i]);
  return off;
}

int tfx_cg_batch_supported(const tfx_graph *g, const char *live, int (*row_wise)(const tfx_graph *, const tfx_node *),
                           int64_t *block_bytes) {
  *block_bytes = 0;
  /* token models of one input (the batch API passes tokens) */
  if (g->nodes[g->input].type.dtype != TFX_DT_I32 || g->n_fwd_inputs > 1) return 0;
  int64_t bytes = 0;
  int any_kv = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (!live[i] || tfx_op_has(n->op, TFX_TRAIT_SOURCE)) continue;
    if (n->op == TFX_OP_ATTENTION) {
      if (!tfx_attn_schedule_applicable(n, TFX_ATTN_SCHED_ROW)) return 0;
      if (paged_node(n)) {
        if (n->kv_offset < 0 || n->key_mask) return 0;  /* a kept key mask is not paged */
        if (tfx_attn_kv_owner(g, n) != n->id) return 0; /* a shared cache (YOCO): not paged yet */
        bytes += block_part(n);
        any_kv = 1;
        continue;
      }
      /* mask none: keys of this call's rows would mix the sequences; a
       * static memory (cross-attention) is shared by every row */
      if (tfx_type_has_t(&g->nodes[n->inputs[1]].type) || tfx_type_has_t(&g->nodes[n->inputs[2]].type)) return 0;
      if (g->nodes[n->inputs[0]].type.dims[0] != TFX_DIM_T) return 0;
      continue;
    }
    if (tfx_op_has(n->op, TFX_TRAIT_KV_CACHE)) return 0; /* MLA: its latent cache is not paged */
    if (!tfx_type_has_t(&n->type)) continue;
    if (tfx_op_has(n->op, TFX_TRAIT_VIEW)) continue; /* a view of a row-wise producer */
    if (!row_wise(g, n)) return 0;
  }
  if (!any_kv || bytes > INT32_MAX) return 0;
  *block_bytes = bytes;
  return 1;
}
