/* backend/descriptor.c — the model descriptor global TFX_DESC_SYMBOL
 * (`tfx_model_descriptor_data`, and the alias `<name>_descriptor`), laid out exactly as tfx_model_desc and
 * tfx_entry_desc of include/tfx/abi.h on x86-64: magic, ABI version, name,
 * input kind/width, output width, vocab, max_seq, KV flag, memory sizes, the
 * weights blob (AOT: the address of the blob symbol; JIT: NULL), the CPU
 * architecture and features the code needs (the target's) and the
 * entries `forward` (1..max_seq tokens), `decode` (exactly 1) and, when the
 * module has one, `forward_last` (1..max_seq tokens, TFX_ENTRY_LAST_ROW) and
 * `batch` (TFX_ENTRY_BATCH: the rows argument, the KV block size).
 * Also what the graph determines of it (tfx_cg_model_shape: input kind and
 * width, output width, vocabulary, KV flag, from the nodes the output
 * depends on, tfx_cg_mark_live), which module.c checks before emitting. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/tfx/checksum.h"
#include "cg.h"

static LLVMValueRef const_string(tfx_cg *cg, const char *s, const char *name) {
  return tfx_cg_const_global(cg, name, LLVMConstStringInContext2(cg->ctx, s, strlen(s), 0), 0);
}

static LLVMValueRef c32(tfx_cg *cg, int64_t v) { return LLVMConstInt(cg->t_i32, (unsigned long long)v, 1); }
static LLVMValueRef c64(tfx_cg *cg, int64_t v) { return LLVMConstInt(cg->t_i64, (unsigned long long)v, 0); }

/* The C identifier the generated header uses for the model name (the same
 * rule as the driver: non-alphanumerics become '_', a leading digit gets a
 * '_' prefix). */
void tfx_cg_c_identifier(const char *name, char *buf, size_t len) {
  size_t j = 0;
  if (name && isdigit((unsigned char)name[0]) && j + 1 < len) buf[j++] = '_';
  for (size_t i = 0; name && name[i] && j + 1 < len; i++) {
    unsigned char c = (unsigned char)name[i];
    buf[j++] = (char)(isalnum(c) ? c : '_');
  }
  buf[j] = 0;
}

/* ---- the graph's shape, as the descriptor states it ---- */

static int live_fail(char *err, size_t errlen, const tfx_node *n, const char *what) {
  return tfx_errf(err, errlen, "backend: %%%d (%s): %s", n->id, tfx_op_name(n->op), what);
}

/* Marks the nodes the output depends on; -1 when an operand is not an
 * earlier node (nothing else may be trusted then). */
int tfx_cg_mark_live(const tfx_graph *g, char *live, char *err, size_t errlen) {
  memset(live, 0, (size_t)g->n_nodes);
  live[g->output] = 1;
  for (int i = g->output; i >= 0; i--) {
    if (!live[i]) continue;
    const tfx_node *n = &g->nodes[i];
    if (n->n_inputs < 0 || n->n_inputs > TFX_MAX_INPUTS) return live_fail(err, errlen, n, "bad operand count");
    for (int j = 0; j < n->n_inputs; j++) {
      if (n->inputs[j] < 0 || n->inputs[j] >= i) return live_fail(err, errlen, n, "operand is not an earlier node");
      live[n->inputs[j]] = 1;
    }
  }
  return 0;
}

int tfx_cg_model_shape(const tfx_graph *g, int32_t *input_kind, int32_t *input_width, int32_t *output_width,
                       int32_t *vocab, int32_t *has_kv, char *err, size_t errlen) {
  if (!g || g->n_nodes < 1 || g->input < 0 || g->input >= g->n_nodes || g->output < 0 || g->output >= g->n_nodes)
    return tfx_errf(err, errlen, "backend: the graph has no input or no output");
  char *live = malloc((size_t)g->n_nodes);
  if (!live) return tfx_errf(err, errlen, "backend: out of memory");
  if (tfx_cg_mark_live(g, live, err, errlen)) {
    free(live);
    return -1;
  }
  const tfx_node *in = &g->nodes[g->input], *out = &g->nodes[g->output];
  int64_t per_t, fixed;
  tfx_cg_rows_split(out, &per_t, &fixed);
  int64_t ow = per_t * tfx_node_cols(out);
  int64_t iw = in->type.dtype == TFX_DT_I32 ? 1 : tfx_node_cols(in);
  int64_t voc = -1;
  int kv = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    if (!live[i]) continue;
    if (n->op == TFX_OP_EMBEDDING && n->inputs[1] == g->input) {
      int64_t v = g->nodes[n->inputs[0]].type.dims[0];
      if (voc < 0 || v < voc) voc = v;
    }
    if (tfx_node_kv_bytes(n, g->max_seq) > 0) kv = 1;
  }
  free(live);
  if (ow < 1 || ow > INT32_MAX || iw < 1 || iw > INT32_MAX || voc > INT32_MAX)
    return tfx_errf(err, errlen, "backend: input or output width out of range");
  *input_kind = in->type.dtype == TFX_DT_I32 ? TFX_INPUT_TOKENS : TFX_INPUT_F32;
  *input_width = (int32_t)iw;
  *output_width = (int32_t)ow;
  /* a token input no embedding reads accepts any id */
  *vocab = in->type.dtype == TFX_DT_I32 ? (voc < 0 ? INT32_MAX : (int32_t)voc) : 0;
  *has_kv = kv;
  return 0;
}

int tfx_backend_model_inputs(const tfx_graph *g, tfx_input_desc out[TFX_MAX_MODEL_INPUTS], int32_t *n_inputs, char *err,
                             size_t errlen) {
  *n_inputs = 0;
  if (g->n_fwd_inputs <= 1) return 0;
  if (g->n_fwd_inputs > TFX_MAX_MODEL_INPUTS)
    return tfx_errf(err, errlen, "backend: %d forward inputs (at most %d)", g->n_fwd_inputs, TFX_MAX_MODEL_INPUTS);
  char *live = malloc((size_t)g->n_nodes);
  if (!live) return tfx_errf(err, errlen, "backend: out of memory");
  if (tfx_cg_mark_live(g, live, err, errlen)) {
    free(live);
    return -1;
  }
  int rc = 0;
  for (int k = 0; k < g->n_fwd_inputs && rc == 0; k++) {
    int id = g->fwd_inputs[k];
    if (id < 0 || id >= g->n_nodes || g->nodes[id].op != TFX_OP_INPUT) {
      rc = tfx_errf(err, errlen, "backend: forward input %d is not an input node", k);
      break;
    }
    const tfx_node *in = &g->nodes[id];
    int i32 = in->type.dtype == TFX_DT_I32;
    int64_t voc = -1;
    for (int i = 0; i < g->n_nodes; i++)
      if (live[i] && g->nodes[i].op == TFX_OP_EMBEDDING && g->nodes[i].inputs[1] == id) {
        int64_t v = g->nodes[g->nodes[i].inputs[0]].type.dims[0];
        if (voc < 0 || v < voc) voc = v;
      }
    int64_t w = k == 0 && !i32 ? tfx_node_cols(in) : 1;
    if (w < 1 || w > INT32_MAX || voc > INT32_MAX) {
      rc = tfx_errf(err, errlen, "backend: input width out of range");
      break;
    }
    /* a source (static rows N) gives its N as rows; the hidden row mask is ROWS_MASK */
    int64_t rows = k > 0 && in->type.rank == 1 && in->type.dims[0] > 0 ? in->type.dims[0] : 0;
    if (rows > INT32_MAX) {
      rc = tfx_errf(err, errlen, "backend: source rows out of range");
      break;
    }
    int mask = g->rows_mask > 0 && k == g->rows_mask;
    out[k] = (tfx_input_desc){.name = in->name ? in->name : "input",
                              .kind = mask     ? TFX_INPUT_ROWS_MASK
                                      : k == 0 ? (i32 ? TFX_INPUT_TOKENS : TFX_INPUT_F32)
                                               : (i32 ? TFX_INPUT_I32 : TFX_INPUT_F32),
                              .width = (int32_t)w,
                              /* the first input's as the descriptor's vocab (any id when no embedding reads it) */
                              .vocab = !i32 || mask ? 0
                                       : voc >= 0   ? (int32_t)voc
                                       : k == 0     ? INT32_MAX
                                                    : 0,
                              .rows = (int32_t)rows};
  }
  free(live);
  if (rc == 0) *n_inputs = g->n_fwd_inputs;
  return rc;
}

/* A hidden constant defined in another object of the model (the weights
 * blob, the next code variant's descriptor). */
static LLVMValueRef extern_hidden(tfx_cg *cg, const char *name) {
  LLVMValueRef v = LLVMAddGlobal(cg->mod, LLVMInt8TypeInContext(cg->ctx), name);
  LLVMSetLinkage(v, LLVMExternalLinkage);
  LLVMSetVisibility(v, LLVMHiddenVisibility);
  LLVMSetGlobalConstant(v, 1);
  return v;
}

/* The fields of tfx_model_desc (ABI 6), as the LLVM struct below lays them out. */
#define DESC_FIELDS 32

int tfx_cg_emit_descriptor(tfx_cg *cg, const tfx_cg_entry_fns *e, const char *weights_symbol) {
  const tfx_graph *g = cg->g;
  int32_t ik, iw, ow, voc, has_kv;
  if (tfx_cg_model_shape(g, &ik, &iw, &ow, &voc, &has_kv, cg->err, cg->errlen)) {
    cg->failed = 1;
    return -1;
  }
  tfx_input_desc ins[TFX_MAX_MODEL_INPUTS];
  int32_t n_ins = 0;
  if (tfx_backend_model_inputs(g, ins, &n_ins, cg->err, cg->errlen)) {
    cg->failed = 1;
    return -1;
  }
  LLVMTypeRef i32 = cg->t_i32, i64 = cg->t_i64, ptr = cg->t_ptr;
  /* several inputs: the entries take the table of their pointers */
  int32_t in_kind = n_ins ? TFX_ARG_INPUTS : TFX_ARG_INPUT;

  /* argument kinds, shared by both entries */
  LLVMValueRef kinds[TFX_CG_ARG_COUNT];
  const int32_t kind_of[TFX_CG_ARG_COUNT] = {in_kind,       TFX_ARG_NTOKENS, TFX_ARG_POS,     TFX_ARG_OUTPUT,
                                             TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};
  for (int i = 0; i < TFX_CG_ARG_COUNT; i++) kinds[i] = c32(cg, kind_of[i]);
  LLVMValueRef kinds_init = LLVMConstArray2(i32, kinds, TFX_CG_ARG_COUNT);
  LLVMValueRef kinds_gv = tfx_cg_const_global(cg, "tfx_arg_kinds", kinds_init, 4);
  /* the batch entry's: the rows in place of the position */
  kinds[TFX_CG_ARG_POS] = c32(cg, TFX_ARG_ROWS);
  LLVMValueRef bkinds_gv =
      tfx_cg_const_global(cg, "tfx_batch_arg_kinds", LLVMConstArray2(i32, kinds, TFX_CG_ARG_COUNT), 4);

  /* tfx_entry_desc { const char *name; void *fn; i32 min, max, n_args; const i32 *arg_kinds; i32 flags, reserved; } */
  LLVMTypeRef ef[8] = {ptr, ptr, i32, i32, i32, ptr, i32, i32};
  LLVMTypeRef entry_ty = LLVMStructTypeInContext(cg->ctx, ef, 8, 0);
  struct {
    const char *name, *sym;
    LLVMValueRef fn;
    int64_t max;
    int32_t flags;
  } spec[4] = {{"forward", "tfx_str_forward", e->forward, g->max_seq, 0},
               {"decode", "tfx_str_decode", e->decode, 1, 0},
               {"forward_last", "tfx_str_forward_last", e->last, g->max_seq, TFX_ENTRY_LAST_ROW},
               {"batch", "tfx_str_batch", e->batch, g->max_seq, TFX_ENTRY_BATCH}};
  int n_ent = 0;
  for (int i = 0; i < 4; i++) /* the entries the module has, in this order */
    if (spec[i].fn) spec[n_ent++] = spec[i];
  LLVMValueRef ent[4];
  for (int i = 0; i < n_ent; i++) {
    int bat = spec[i].flags == TFX_ENTRY_BATCH;
    LLVMValueRef f[8] = {const_string(cg, spec[i].name, spec[i].sym),
                         spec[i].fn,
                         c32(cg, 1),
                         c32(cg, spec[i].max),
                         c32(cg, TFX_CG_ARG_COUNT),
                         bat ? bkinds_gv : kinds_gv,
                         c32(cg, spec[i].flags),
                         c32(cg, bat ? (int32_t)cg->kv_block_bytes : 0)};
    ent[i] = LLVMConstNamedStruct(entry_ty, f, 8);
  }
  LLVMValueRef ent_init = LLVMConstArray2(entry_ty, ent, (unsigned)n_ent);
  LLVMValueRef ent_gv = tfx_cg_const_global(cg, "tfx_entries", ent_init, 8);

  /* hidden: the descriptor of a .so always points at its own blob */
  LLVMValueRef weights = weights_symbol ? extern_hidden(cg, weights_symbol) : LLVMConstNull(ptr);

  /* the code variants (--mcpu=A,B): this one's symbol and the next's */
  char ident[128], own[160], next_name[160];
  tfx_cg_c_identifier(g->symbol_name ? g->symbol_name : g->name, ident, sizeof ident);
  int variant = cg->tgt->variant, has_next = variant + 1 < cg->tgt->n_variants;
  snprintf(own, sizeof own, "%s_variant_%d", ident, variant);
  snprintf(next_name, sizeof next_name, "%s_variant_%d", ident, variant + 1);
  LLVMValueRef next = has_next ? extern_hidden(cg, next_name) : LLVMConstNull(ptr);

  /* the descriptor's checksum, over the same values as the runtime sees
   * them (tfx/checksum.h); the weights checksum is 0 until
   * tfx_cg_set_weights_checksum records it (AOT) */
  const int32_t kind_vals[TFX_CG_ARG_COUNT] = {in_kind,       TFX_ARG_NTOKENS, TFX_ARG_POS,     TFX_ARG_OUTPUT,
                                               TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};
  const int32_t bkind_vals[TFX_CG_ARG_COUNT] = {in_kind,       TFX_ARG_NTOKENS, TFX_ARG_ROWS,    TFX_ARG_OUTPUT,
                                                TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};
  tfx_entry_desc ck_ent[4];
  for (int i = 0; i < n_ent; i++) {
    int bat = spec[i].flags == TFX_ENTRY_BATCH;
    ck_ent[i] = (tfx_entry_desc){spec[i].name,
                                 NULL,
                                 1,
                                 (int32_t)spec[i].max,
                                 TFX_CG_ARG_COUNT,
                                 bat ? bkind_vals : kind_vals,
                                 spec[i].flags,
                                 bat ? (int32_t)cg->kv_block_bytes : 0};
  }
  tfx_model_desc ck = {.magic = TFX_DESC_MAGIC,
                       .abi_version = TFX_ABI_VERSION,
                       .name = g->name ? g->name : "model",
                       .input_kind = ik,
                       .input_width = iw,
                       .output_width = ow,
                       .vocab = voc,
                       .max_seq = (int32_t)g->max_seq,
                       .has_kv_cache = has_kv,
                       .arena_bytes = (uint64_t)g->arena_bytes,
                       .kv_bytes = (uint64_t)g->kv_bytes,
                       .weights_bytes = (uint64_t)g->weights_bytes,
                       .weights = weights_symbol ? (const void *)ck_ent : NULL, /* only its presence counts */
                       .n_entries = n_ent,
                       .threads = (int32_t)g->schedule.threads,
                       .entries = ck_ent,
                       .cpu_arch = cg->tgt->cpu_arch,
                       .cpu_features = cg->tgt->cpu_features,
                       .variant_next = has_next ? &ck : NULL, /* only its presence counts */
                       .bos_id = (int32_t)g->bos_id,
                       .eos_id = (int32_t)g->eos_id,
                       .pad_id = (int32_t)g->pad_id,
                       .tokenizer = g->tokenizer_bytes > 0 ? g->tokenizer : NULL,
                       .tokenizer_bytes = g->tokenizer_bytes > 0 ? (uint64_t)g->tokenizer_bytes : 0,
                       .n_inputs = n_ins,
                       .inputs = n_ins ? ins : NULL,
                       .src_cache_bytes = (uint64_t)g->src_cache_bytes};
  uint64_t desc_sum = tfx_desc_checksum(&ck);

  /* the input table (ABI 6): tfx_input_desc { const char *name; i32 kind, width, vocab, rows; } */
  LLVMTypeRef inf[5] = {ptr, i32, i32, i32, i32};
  LLVMTypeRef input_ty = LLVMStructTypeInContext(cg->ctx, inf, 5, 0);
  LLVMValueRef inputs_gv = LLVMConstNull(ptr);
  if (n_ins) {
    LLVMValueRef iv[TFX_MAX_MODEL_INPUTS];
    for (int k = 0; k < n_ins; k++) {
      char sym[48];
      snprintf(sym, sizeof sym, "tfx_str_input_%d", k);
      LLVMValueRef f[5] = {const_string(cg, ins[k].name, sym), c32(cg, ins[k].kind), c32(cg, ins[k].width),
                           c32(cg, ins[k].vocab), c32(cg, ins[k].rows)};
      iv[k] = LLVMConstNamedStruct(input_ty, f, 5);
    }
    inputs_gv = tfx_cg_const_global(cg, "tfx_inputs", LLVMConstArray2(input_ty, iv, (unsigned)n_ins), 8);
  }

  /* tfx_model_desc */
  LLVMTypeRef df[DESC_FIELDS] = {i32, i32, ptr, i32, i32, i32, i32, i32, i32, i64, i64, i64, ptr, i32, i32, ptr,
                                 i64, i64, i32, i32, i64, ptr, i32, i32, i32, i32, ptr, i64, i32, i32, ptr, i64};
  /* the embedded tokenizer: its bytes as a private constant */
  LLVMValueRef tokenizer = LLVMConstNull(ptr);
  if (g->tokenizer_bytes > 0)
    tokenizer = tfx_cg_const_global(
        cg, "tfx_tokenizer_bytes",
        LLVMConstStringInContext2(cg->ctx, (const char *)g->tokenizer, (size_t)g->tokenizer_bytes, 1), 16);
  LLVMTypeRef desc_ty = LLVMStructTypeInContext(cg->ctx, df, DESC_FIELDS, 0);
  LLVMValueRef dv[DESC_FIELDS] = {c32(cg, (int32_t)TFX_DESC_MAGIC),
                                  c32(cg, TFX_ABI_VERSION),
                                  const_string(cg, g->name ? g->name : "model", "tfx_str_name"),
                                  c32(cg, ik),
                                  c32(cg, iw),
                                  c32(cg, ow),
                                  c32(cg, voc),
                                  c32(cg, g->max_seq),
                                  c32(cg, has_kv),
                                  c64(cg, g->arena_bytes),
                                  c64(cg, g->kv_bytes),
                                  c64(cg, g->weights_bytes),
                                  weights,
                                  c32(cg, n_ent),
                                  c32(cg, g->schedule.threads),
                                  ent_gv,
                                  c64(cg, (int64_t)desc_sum),
                                  c64(cg, 0),
                                  c32(cg, (int32_t)cg->tgt->cpu_arch),
                                  c32(cg, 0),
                                  c64(cg, (int64_t)cg->tgt->cpu_features),
                                  next,
                                  c32(cg, g->bos_id),
                                  c32(cg, g->eos_id),
                                  c32(cg, g->pad_id),
                                  c32(cg, 0),
                                  tokenizer,
                                  c64(cg, g->tokenizer_bytes > 0 ? g->tokenizer_bytes : 0),
                                  c32(cg, n_ins),
                                  c32(cg, 0),
                                  inputs_gv,
                                  c64(cg, g->src_cache_bytes)};
  LLVMValueRef desc_init = LLVMConstNamedStruct(desc_ty, dv, DESC_FIELDS);
  LLVMValueRef desc = LLVMAddGlobal(cg->mod, desc_ty, variant ? own : TFX_DESC_SYMBOL);
  LLVMSetInitializer(desc, desc_init);
  LLVMSetGlobalConstant(desc, 1);
  LLVMSetAlignment(desc, 8);
  if (variant) { /* reached through the first variant's list only */
    LLVMSetLinkage(desc, LLVMExternalLinkage);
    LLVMSetVisibility(desc, LLVMHiddenVisibility);
    return 0;
  }
  /* weak: any number of models' objects (-c) link into one program, each
   * reached through its own `<name>_descriptor`; dlsym finds it in a .so */
  LLVMSetLinkage(desc, LLVMWeakAnyLinkage);
  LLVMSetVisibility(desc, LLVMDefaultVisibility);

  char alias[160];
  snprintf(alias, sizeof alias, "%s_descriptor", ident);
  /* never shadow the runtime's tfx_model_descriptor() */
  if (strcmp(alias, TFX_DESC_SYMBOL) != 0 && strcmp(alias, "tfx_model_descriptor") != 0) {
    LLVMValueRef a = LLVMAddAlias2(cg->mod, desc_ty, 0, desc, alias);
    LLVMSetLinkage(a, LLVMExternalLinkage);
    LLVMSetVisibility(a, LLVMDefaultVisibility);
  }
  return 0;
}

/* Index of weights_checksum in the descriptor's LLVM struct (above). */
#define DESC_WEIGHTS_CHECKSUM_FIELD 17

int tfx_cg_set_weights_checksum(LLVMModuleRef mod, const tfx_cg_target *t, const char *model_name, uint64_t sum,
                                char *err, size_t errlen) {
  char ident[128], own[160];
  tfx_cg_c_identifier(model_name, ident, sizeof ident);
  snprintf(own, sizeof own, "%s_variant_%d", ident, t->variant);
  LLVMValueRef desc = mod ? LLVMGetNamedGlobal(mod, t->variant ? own : TFX_DESC_SYMBOL) : NULL;
  LLVMValueRef init = desc ? LLVMGetInitializer(desc) : NULL;
  LLVMTypeRef ty = init ? LLVMTypeOf(init) : NULL;
  if (!ty || LLVMGetTypeKind(ty) != LLVMStructTypeKind || LLVMCountStructElementTypes(ty) != DESC_FIELDS)
    return tfx_errf(err, errlen, "backend: the module has no model descriptor to record the weights checksum in");
  LLVMValueRef f[DESC_FIELDS];
  for (unsigned i = 0; i < DESC_FIELDS; i++) f[i] = LLVMGetAggregateElement(init, i);
  f[DESC_WEIGHTS_CHECKSUM_FIELD] =
      LLVMConstInt(LLVMStructGetTypeAtIndex(ty, DESC_WEIGHTS_CHECKSUM_FIELD), (unsigned long long)sum, 0);
  LLVMSetInitializer(desc, LLVMConstNamedStruct(ty, f, DESC_FIELDS));
  return 0;
}
