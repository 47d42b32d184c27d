/* backend/descriptor.c — the model descriptor global TFX_DESC_SYMBOL
 * (`tfx_model_descriptor_data`, and the alias `<name>_descriptor`), laid out exactly as tfx_model_desc and
 * tfx_entry_desc of include/tfx/abi.h on x86-64: magic, ABI version, name,
 * input kind/width, output width, vocab, max_seq, KV flag, memory sizes, the
 * weights blob (AOT: the address of the blob symbol; JIT: NULL) and the
 * entries `forward` (1..max_seq tokens), `decode` (exactly 1) and, when the
 * module has one, `forward_last` (1..max_seq tokens, TFX_ENTRY_LAST_ROW). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cg.h"

static LLVMValueRef const_string(tfx_cg *cg, const char *s, const char *name) {
  LLVMValueRef init = LLVMConstStringInContext2(cg->ctx, s, strlen(s), 0);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  return gv;
}

static LLVMValueRef c32(tfx_cg *cg, int64_t v) { return LLVMConstInt(cg->t_i32, (unsigned long long)v, 1); }
static LLVMValueRef c64(tfx_cg *cg, int64_t v) { return LLVMConstInt(cg->t_i64, (unsigned long long)v, 0); }

/* The C identifier the generated header uses for the model name (the same
 * rule as the driver: non-alphanumerics become '_', a leading digit gets a
 * '_' prefix). */
static void c_identifier(const char *name, char *buf, size_t len) {
  size_t j = 0;
  if (name && isdigit((unsigned char)name[0]) && j + 1 < len) buf[j++] = '_';
  for (size_t i = 0; name && name[i] && j + 1 < len; i++) {
    unsigned char c = (unsigned char)name[i];
    buf[j++] = (char)(isalnum(c) ? c : '_');
  }
  buf[j] = 0;
}

int tfx_cg_emit_descriptor(tfx_cg *cg, const tfx_cg_entry_fns *e, const char *weights_symbol) {
  const tfx_graph *g = cg->g;
  int32_t ik, iw, ow, voc, has_kv;
  if (tfx_cg_model_shape(g, &ik, &iw, &ow, &voc, &has_kv, cg->err, cg->errlen)) {
    cg->failed = 1;
    return -1;
  }
  LLVMTypeRef i32 = cg->t_i32, i64 = cg->t_i64, ptr = cg->t_ptr;

  /* argument kinds, shared by both entries */
  LLVMValueRef kinds[TFX_CG_ARG_COUNT];
  static const int32_t kind_of[TFX_CG_ARG_COUNT] = {TFX_ARG_INPUT, TFX_ARG_NTOKENS, TFX_ARG_POS,     TFX_ARG_OUTPUT,
                                                    TFX_ARG_ARENA, TFX_ARG_KV,      TFX_ARG_WEIGHTS, TFX_ARG_EXEC};
  for (int i = 0; i < TFX_CG_ARG_COUNT; i++) kinds[i] = c32(cg, kind_of[i]);
  LLVMValueRef kinds_init = LLVMConstArray2(i32, kinds, TFX_CG_ARG_COUNT);
  LLVMValueRef kinds_gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(kinds_init), "tfx_arg_kinds");
  LLVMSetInitializer(kinds_gv, kinds_init);
  LLVMSetGlobalConstant(kinds_gv, 1);
  LLVMSetLinkage(kinds_gv, LLVMPrivateLinkage);
  LLVMSetAlignment(kinds_gv, 4);

  /* tfx_entry_desc { const char *name; void *fn; i32 min, max, n_args; const i32 *arg_kinds; i32 flags, reserved; } */
  LLVMTypeRef ef[8] = {ptr, ptr, i32, i32, i32, ptr, i32, i32};
  LLVMTypeRef entry_ty = LLVMStructTypeInContext(cg->ctx, ef, 8, 0);
  struct {
    const char *name, *sym;
    LLVMValueRef fn;
    int64_t max;
    int32_t flags;
  } spec[3] = {{"forward", "tfx_str_forward", e->forward, g->max_seq, 0},
               {"decode", "tfx_str_decode", e->decode, 1, 0},
               {"forward_last", "tfx_str_forward_last", e->last, g->max_seq, TFX_ENTRY_LAST_ROW}};
  int n_ent = e->last ? 3 : 2;
  LLVMValueRef ent[3];
  for (int i = 0; i < n_ent; i++) {
    LLVMValueRef f[8] = {const_string(cg, spec[i].name, spec[i].sym),
                         spec[i].fn,
                         c32(cg, 1),
                         c32(cg, spec[i].max),
                         c32(cg, TFX_CG_ARG_COUNT),
                         kinds_gv,
                         c32(cg, spec[i].flags),
                         c32(cg, 0)};
    ent[i] = LLVMConstNamedStruct(entry_ty, f, 8);
  }
  LLVMValueRef ent_init = LLVMConstArray2(entry_ty, ent, (unsigned)n_ent);
  LLVMValueRef ent_gv = LLVMAddGlobal(cg->mod, LLVMTypeOf(ent_init), "tfx_entries");
  LLVMSetInitializer(ent_gv, ent_init);
  LLVMSetGlobalConstant(ent_gv, 1);
  LLVMSetLinkage(ent_gv, LLVMPrivateLinkage);
  LLVMSetAlignment(ent_gv, 8);

  LLVMValueRef weights = LLVMConstNull(ptr);
  if (weights_symbol) {
    weights = LLVMAddGlobal(cg->mod, LLVMInt8TypeInContext(cg->ctx), weights_symbol);
    LLVMSetLinkage(weights, LLVMExternalLinkage);
    /* hidden: the descriptor of a .so always points at its own blob */
    LLVMSetVisibility(weights, LLVMHiddenVisibility);
    LLVMSetGlobalConstant(weights, 1);
  }

  /* tfx_model_desc */
  LLVMTypeRef df[16] = {i32, i32, ptr, i32, i32, i32, i32, i32, i32, i64, i64, i64, ptr, i32, i32, ptr};
  LLVMTypeRef desc_ty = LLVMStructTypeInContext(cg->ctx, df, 16, 0);
  LLVMValueRef dv[16] = {c32(cg, (int32_t)TFX_DESC_MAGIC),
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
                         ent_gv};
  LLVMValueRef desc_init = LLVMConstNamedStruct(desc_ty, dv, 16);
  LLVMValueRef desc = LLVMAddGlobal(cg->mod, desc_ty, TFX_DESC_SYMBOL);
  LLVMSetInitializer(desc, desc_init);
  LLVMSetGlobalConstant(desc, 1);
  LLVMSetLinkage(desc, LLVMExternalLinkage);
  LLVMSetVisibility(desc, LLVMDefaultVisibility);
  LLVMSetAlignment(desc, 8);

  char ident[128], alias[160];
  c_identifier(g->name, ident, sizeof ident);
  snprintf(alias, sizeof alias, "%s_descriptor", ident);
  /* never shadow the runtime's tfx_model_descriptor() */
  if (strcmp(alias, TFX_DESC_SYMBOL) != 0 && strcmp(alias, "tfx_model_descriptor") != 0) {
    LLVMValueRef a = LLVMAddAlias2(cg->mod, desc_ty, 0, desc, alias);
    LLVMSetLinkage(a, LLVMExternalLinkage);
    LLVMSetVisibility(a, LLVMDefaultVisibility);
  }
  return 0;
}
