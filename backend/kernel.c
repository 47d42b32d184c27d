/* backend/kernel.c — the frame every kernel shares: the shared bodies
 * (created once per key, holding the loops) and the per-node kernels
 * `void k(const void *args, int64_t begin, int64_t end)` that compute the
 * node's pointers from the argument block and compile-time offsets, then call
 * their body; registering each kernel (and its work-range size) with the entry
 * being built; reading the argument block; locating each node's value (input,
 * output, weights, arena slot, or a SLICE's view into its producer) and its
 * number of rows for the current T. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

static void add_enum_attr(tfx_cg *cg, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  if (kind) LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

void tfx_cg_set_fn_attrs(tfx_cg *cg, LLVMValueRef fn) {
  for (int i = 0; i < cg->n_fn_attrs; i++) LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, cg->fn_attrs[i]);
  add_enum_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
}

/* ---- bodies ---- */

#define BODY_KEY_MAX 1024

int tfx_cg_body_begin_node(tfx_cg *cg, const tfx_node *n, const char *key) {
  char attrs[BODY_KEY_MAX / 2], full[BODY_KEY_MAX];
  int need = tfx_node_attr_key(n, attrs, sizeof attrs);
  if (need < 0 || (size_t)need >= sizeof attrs)
    return tfx_cg_fail(cg, "backend: %%%d (%s): attribute key too long", n->id, tfx_op_name(n->op));
  /* "name=value;..." as a symbol-friendly "name_value_..." (values hold no '_'; the
   * '+' of a double's exponent, "0x1p+0", becomes 'P' so the name needs no quotes in LLVM IR) */
  for (char *p = attrs; *p; p++)
    if (*p == '=' || *p == ';')
      *p = '_';
    else if (*p == '+')
      *p = 'P';
  int len = snprintf(full, sizeof full, "%s_%s", key, attrs);
  if (len < 0 || (size_t)len >= sizeof full)
    return tfx_cg_fail(cg, "backend: %%%d (%s): body key too long", n->id, tfx_op_name(n->op));
  return tfx_cg_body_begin(cg, full);
}

int tfx_cg_body_begin(tfx_cg *cg, const char *key) {
  char full[BODY_KEY_MAX + 32];
  int len = snprintf(full, sizeof full, "tfx_body_%s_%s", cg->mode, key);
  if (len < 0 || (size_t)len >= sizeof full) return tfx_cg_fail(cg, "backend: body key too long: %.64s", key);
  for (int i = 0; i < cg->n_bodies; i++)
    if (!strcmp(cg->body_keys[i], full)) {
      cg->body = cg->body_fns[i];
      return 0;
    }
  if (cg->n_bodies == cg->cap_bodies) {
    int cap = cg->cap_bodies ? cg->cap_bodies * 2 : 32;
    char **keys = realloc(cg->body_keys, (size_t)cap * sizeof *keys);
    if (keys) cg->body_keys = keys;
    LLVMValueRef *fns = keys ? realloc(cg->body_fns, (size_t)cap * sizeof *fns) : NULL;
    if (fns) cg->body_fns = fns;
    if (!keys || !fns) return tfx_cg_fail(cg, "backend: out of memory");
    cg->cap_bodies = cap;
  }
  char *k = strdup(full);
  if (!k) return tfx_cg_fail(cg, "backend: out of memory");
  LLVMValueRef fn = LLVMAddFunction(cg->mod, full, cg->t_body);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  tfx_cg_set_fn_attrs(cg, fn);
  /* a body is compiled once, not inlined into every node's kernel that
   * calls it: the call costs nothing next to the loops, and code size (thus
   * compile time) no longer grows with the number of nodes sharing a body */
  add_enum_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  cg->body_keys[cg->n_bodies] = k;
  cg->body_fns[cg->n_bodies++] = fn;
  cg->body = fn;
  cg->mk_abuf = NULL;
  cg->fn = fn;
  cg->args = NULL;
  cg->entry_bb = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry_bb);
  cg->T = cg->decode ? tfx_cg_i64(cg, 1) : LLVMGetParam(fn, TFX_CG_BODY_PTRS);
  cg->pos = LLVMGetParam(fn, TFX_CG_BODY_PTRS + 1);
  cg->kbegin = LLVMGetParam(fn, TFX_CG_BODY_PTRS + 2);
  cg->kend = LLVMGetParam(fn, TFX_CG_BODY_PTRS + 3);
  return 1;
}

LLVMValueRef tfx_cg_body_ptr(tfx_cg *cg, int i) { return LLVMGetParam(cg->fn, (unsigned)i); }

void tfx_cg_body_end(tfx_cg *cg) { LLVMBuildRetVoid(cg->b); }

void tfx_cg_bodies_free(tfx_cg *cg) {
  for (int i = 0; i < cg->n_bodies; i++) free(cg->body_keys[i]);
  free(cg->body_keys);
  free(cg->body_fns);
  cg->body_keys = NULL;
  cg->body_fns = NULL;
  cg->n_bodies = cg->cap_bodies = 0;
}

/* ---- per-node kernels ---- */

static LLVMValueRef resolve_ptr(tfx_cg *cg, const tfx_cg_ptr *p) {
  switch (p->kind) {
  case TFX_CG_PTR_VALUE: return tfx_cg_value_ptr(cg, p->node);
  case TFX_CG_PTR_KV: return tfx_cg_byteptr(cg, tfx_cg_arg(cg, TFX_CG_ARG_KV), p->offset);
  case TFX_CG_PTR_OUTPUT: return tfx_cg_arg(cg, TFX_CG_ARG_OUTPUT);
  case TFX_CG_PTR_ARENA: return tfx_cg_byteptr(cg, tfx_cg_arg(cg, TFX_CG_ARG_ARENA), p->offset);
  default: return LLVMConstNull(cg->t_ptr);
  }
}

void tfx_cg_kernel_call(tfx_cg *cg, const tfx_node *n, const char *what, int64_t per_t, int64_t fixed,
                        const tfx_cg_ptr ptrs[4]) {
  tfx_cg_kernel_call_n(cg, n, what, per_t, fixed, ptrs, 4);
}

void tfx_cg_kernel_call_n(tfx_cg *cg, const tfx_node *n, const char *what, int64_t per_t, int64_t fixed,
                          const tfx_cg_ptr *ptrs, int n_ptrs) {
  if (cg->failed || !cg->body) return;
  char name[160];
  snprintf(name, sizeof name, "tfx_%s_%d_%s%s%s", cg->kmode ? cg->kmode : cg->mode, n->id, tfx_op_name(n->op),
           what ? "_" : "", what ? what : "");
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, cg->t_kernel);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  tfx_cg_set_fn_attrs(cg, fn);
  add_enum_attr(cg, fn, 1, "noalias");
  add_enum_attr(cg, fn, 1, "nocapture");
  add_enum_attr(cg, fn, 1, "readonly");
  cg->fn = fn;
  cg->entry_bb = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, cg->entry_bb);
  cg->args = LLVMGetParam(fn, 0);
  LLVMValueRef cargs[TFX_CG_BODY_PTRS + 4];
  for (int i = 0; i < TFX_CG_BODY_PTRS; i++)
    cargs[i] = i < n_ptrs ? resolve_ptr(cg, &ptrs[i]) : LLVMConstNull(cg->t_ptr);
  cargs[TFX_CG_BODY_PTRS] = cg->decode ? tfx_cg_i64(cg, 1) : tfx_cg_arg(cg, TFX_CG_ARG_N);
  cargs[TFX_CG_BODY_PTRS + 1] = tfx_cg_arg(cg, TFX_CG_ARG_POS);
  if (cg->one_row) /* the last row's position */
    cargs[TFX_CG_BODY_PTRS + 1] =
        tfx_cg_add(cg, cargs[TFX_CG_BODY_PTRS + 1], tfx_cg_addc(cg, tfx_cg_arg(cg, TFX_CG_ARG_N), -1));
  cargs[TFX_CG_BODY_PTRS + 2] = LLVMGetParam(fn, 1);
  cargs[TFX_CG_BODY_PTRS + 3] = LLVMGetParam(fn, 2);
  LLVMBuildCall2(cg->b, cg->t_body, cg->body, cargs, TFX_CG_BODY_PTRS + 4, "");
  LLVMBuildRetVoid(cg->b);
  cg->body = NULL;

  if (cg->n_kernels == cg->cap_kernels) {
    int cap = cg->cap_kernels ? cg->cap_kernels * 2 : TFX_CG_MAX_KERNELS_GROW;
    tfx_cg_kernel *k = realloc(cg->kernels, (size_t)cap * sizeof *k);
    if (!k) {
      tfx_cg_fail(cg, "backend: out of memory");
      return;
    }
    cg->kernels = k;
    cg->cap_kernels = cap;
  }
  /* the grain: elements read and written at T = 1, plus a causal attention's KV cache at full length */
  int64_t work = tfx_type_numel(&n->type, 1);
  for (int i = 0; i < n->n_inputs; i++)
    if (n->inputs[i] >= 0 && n->inputs[i] < cg->g->n_nodes) work += tfx_type_numel(&cg->g->nodes[n->inputs[i]].type, 1);
  if (tfx_op_has(n->op, TFX_TRAIT_KV_CACHE))
    work += 2 * (int64_t)cg->g->max_seq * (n->kv_heads > 0 ? n->kv_heads : 1) * (n->head_dim > 0 ? n->head_dim : 1);
  cg->kernels[cg->n_kernels++] = (tfx_cg_kernel){fn, per_t, fixed, work, cg->one_row, cg->src_node};
}

LLVMValueRef tfx_cg_arg(tfx_cg *cg, int field) {
  LLVMValueRef p = LLVMBuildStructGEP2(cg->b, cg->t_args, cg->args, (unsigned)field, "");
  LLVMTypeRef ty = (field == TFX_CG_ARG_N || field == TFX_CG_ARG_POS) ? cg->t_i64 : cg->t_ptr;
  static const char *const names[TFX_CG_ARG_COUNT] = {"input", "n", "pos", "output", "arena", "kv", "weights", "exec"};
  LLVMValueRef v = LLVMBuildLoad2(cg->b, ty, p, names[field]);
  LLVMSetAlignment(v, 8);
  return v;
}

int tfx_cg_stored_full(const tfx_cg *cg, int node_id) {
  if (!cg->one_row || !cg->tail) return 0;
  const tfx_node *n = &cg->g->nodes[node_id];
  if (n->type.dims[0] != TFX_DIM_T) return 0;
  /* the kernel that writes the storage: a slice's producer, or the fused
   * linear whose epilogue writes a norm_stats's partials */
  int writer = node_id;
  if (tfx_op_has(n->op, TFX_TRAIT_VIEW) || (n->op == TFX_OP_NORM_STATS && n->fx.index == 1)) writer = n->inputs[0];
  return !cg->tail[writer];
}

/* A SLICE is a view: its producer's value + M * (columns before the segment). */
LLVMValueRef tfx_cg_slice_ptr(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *src = &cg->g->nodes[n->inputs[0]];
  int64_t before = 0, per_t, fixed;
  for (int s = 0; s < n->fx.index && s < src->fx.n_segs; s++) before += src->fx.segs[s];
  tfx_cg_rows_split(src, &per_t, &fixed);
  /* rows with this call's T (the kernel's argument block, not a body's T);
   * a one-row kernel reading a producer written in full: all n rows */
  int one = cg->decode && !tfx_cg_stored_full(cg, n->id);
  LLVMValueRef T = one ? tfx_cg_i64(cg, 1) : tfx_cg_arg(cg, TFX_CG_ARG_N);
  LLVMValueRef rows = per_t ? tfx_cg_addc(cg, tfx_cg_mulc(cg, T, per_t), fixed) : tfx_cg_i64(cg, fixed);
  /* from the producer's first row: in the planar layout its last row is
   * inside the last segment, so the last-row offset of a one-row reader is
   * the slice's own (tfx_cg_value_ptr of the slice adds it) */
  return tfx_cg_fptr(cg, tfx_cg_value_base(cg, src->id), tfx_cg_mulc(cg, rows, before));
}

LLVMValueRef tfx_cg_value_base(tfx_cg *cg, int node_id) {
  const tfx_node *n = &cg->g->nodes[node_id];
  if (n->op == TFX_OP_INPUT && cg->g->n_fwd_inputs > 1) { /* TFX_ARG_INPUTS: the table of the inputs' pointers */
    int k = 0;
    while (k < cg->g->n_fwd_inputs - 1 && cg->g->fwd_inputs[k] != node_id) k++;
    LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->t_ptr, tfx_cg_arg(cg, TFX_CG_ARG_INPUT),
                                              (LLVMValueRef[]){tfx_cg_i64(cg, k)}, 1, "input_slot");
    LLVMValueRef p = LLVMBuildLoad2(cg->b, cg->t_ptr, slot, n->name ? n->name : "input");
    LLVMSetAlignment(p, 8);
    return p;
  }
  if (n->op == TFX_OP_INPUT) return tfx_cg_arg(cg, TFX_CG_ARG_INPUT);
  if (n->op == TFX_OP_PARAM) return tfx_cg_byteptr(cg, tfx_cg_arg(cg, TFX_CG_ARG_WEIGHTS), n->weight_offset);
  if (tfx_op_has(n->op, TFX_TRAIT_VIEW)) return tfx_cg_slice_ptr(cg, n); /* a view into its producer */
  if (node_id == cg->g->output) return tfx_cg_arg(cg, TFX_CG_ARG_OUTPUT);
  if (n->src_cached == TFX_SRC_KEPT) /* in the source cache, inside the KV storage (passes/cache_source.c) */
    return tfx_cg_byteptr(cg, tfx_cg_arg(cg, TFX_CG_ARG_KV), n->kv_offset);
  return tfx_cg_byteptr(cg, tfx_cg_arg(cg, TFX_CG_ARG_ARENA), n->arena_offset);
}

LLVMValueRef tfx_cg_value_ptr(tfx_cg *cg, int node_id) {
  LLVMValueRef p = tfx_cg_value_base(cg, node_id);
  if (!tfx_cg_stored_full(cg, node_id)) return p;
  /* a one-row kernel reads the last of the n rows a full kernel wrote */
  int64_t row = tfx_node_slot_bytes(cg->g, &cg->g->nodes[node_id], 1);
  LLVMValueRef off = tfx_cg_mulc(cg, tfx_cg_addc(cg, tfx_cg_arg(cg, TFX_CG_ARG_N), -1), row);
  return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), p, &off, 1, "last_row");
}

void tfx_cg_rows_split(const tfx_node *n, int64_t *per_t, int64_t *fixed) {
  int64_t prod = 1;
  int has_t = 0;
  for (int i = 0; i + 1 < n->type.rank; i++) {
    if (n->type.dims[i] == TFX_DIM_T)
      has_t = 1;
    else
      prod *= n->type.dims[i];
  }
  *per_t = has_t ? prod : 0;
  *fixed = has_t ? 0 : prod;
}

LLVMValueRef tfx_cg_rows(tfx_cg *cg, const tfx_node *n) {
  int64_t per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  if (!per_t) return tfx_cg_i64(cg, fixed);
  return tfx_cg_addc(cg, tfx_cg_mulc(cg, cg->T, per_t), fixed);
}
