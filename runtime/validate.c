/* runtime/validate.c — checks a model descriptor before the runtime trusts
 * it: magic, ABI version, dimensions, memory sizes, weights and every entry
 * point (function, token range, argument kinds), the fields against each
 * other (widths, KV cache, entry count, token ranges against max_seq), a
 * model's code variants against each other, and on request the checksums
 * the compiler recorded. */
#include <stdint.h>
#include <string.h>

#include "../include/tfx/cpu_features.h"
#include "rt_internal.h"
#include "tfx/checksum.h"

static int bad(char *errbuf, size_t errlen, const char *what) {
  return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "malformed model descriptor: %s", what);
}

static int check_entry(const tfx_entry_desc *e, int32_t i, char *errbuf, size_t errlen) {
  if (!e->fn)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "malformed model descriptor: entry %d has no function", i);
  if (!e->name)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "malformed model descriptor: entry %d has no name", i);
  if (e->min_tokens < 1 || e->max_tokens < e->min_tokens)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "malformed model descriptor: entry '%s' accepts tokens [%d, %d]", e->name, e->min_tokens,
                        e->max_tokens);
  if (e->n_args < 1 || e->n_args > TFX_RT_MAX_ARGS || !e->arg_kinds)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "malformed model descriptor: entry '%s' has %d arguments (1..%d allowed)", e->name, e->n_args,
                        TFX_RT_MAX_ARGS);
  if ((e->flags & ~(int32_t)(TFX_ENTRY_LAST_ROW | TFX_ENTRY_BATCH)) ||
      e->flags == (TFX_ENTRY_LAST_ROW | TFX_ENTRY_BATCH))
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "malformed model descriptor: entry '%s' has flags 0x%x",
                        e->name, (unsigned)e->flags);
  int batch = (e->flags & TFX_ENTRY_BATCH) != 0;
  for (int32_t a = 0; a < e->n_args; a++) {
    int32_t k = e->arg_kinds[a];
    if (k < TFX_ARG_INPUT || k > TFX_ARG_INPUTS)
      return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                          "malformed model descriptor: entry '%s' argument %d has unknown kind %d", e->name, a, k);
    /* the rows (and the block pool) are the batch entry's; the position is the others' */
    if ((k == TFX_ARG_ROWS && !batch) || (k == TFX_ARG_POS && batch))
      return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                          "malformed model descriptor: entry '%s' argument %d: kind %d in a %sbatch entry", e->name, a,
                          k, batch ? "" : "non-");
  }
  if (batch != (e->kv_block_bytes != 0) || e->kv_block_bytes < 0)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "malformed model descriptor: entry '%s' has kv_block_bytes %d", e->name, e->kv_block_bytes);
  return TFX_OK;
}

int tfx_rt_validate_desc(const tfx_model_desc *d, const void *weights, char *errbuf, size_t errlen) {
  if (!d) return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "no model descriptor");
  if (d->magic != TFX_DESC_MAGIC)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "bad descriptor magic 0x%08x (expected 0x%08x)",
                        (unsigned)d->magic, (unsigned)TFX_DESC_MAGIC);
  if (d->abi_version != TFX_ABI_VERSION)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_ABI_VERSION,
                        "model compiled for runtime ABI version %u, this runtime implements version %u",
                        (unsigned)d->abi_version, (unsigned)TFX_ABI_VERSION);
  if (!d->name) return bad(errbuf, errlen, "no model name");
  if (d->input_kind != TFX_INPUT_TOKENS && d->input_kind != TFX_INPUT_F32)
    return bad(errbuf, errlen, "unknown input kind");
  if (d->input_width < 1) return bad(errbuf, errlen, "input_width < 1");
  if (d->output_width < 1) return bad(errbuf, errlen, "output_width < 1");
  if (d->input_kind == TFX_INPUT_TOKENS && d->vocab < 1) return bad(errbuf, errlen, "a token model with vocab < 1");
  if (d->vocab < 0) return bad(errbuf, errlen, "vocab < 0");
  if (d->max_seq < 1) return bad(errbuf, errlen, "max_seq < 1");
  if (d->has_kv_cache != 0 && d->has_kv_cache != 1) return bad(errbuf, errlen, "has_kv_cache is neither 0 nor 1");
  if (d->threads < 0) return bad(errbuf, errlen, "threads < 0");
  if (d->cpu_arch > TFX_CPU_ARCH_RISCV64 || d->cpu_reserved != 0)
    return bad(errbuf, errlen, "unknown CPU architecture");
  size_t n_features;
  tfx_cpu_feature_table(d->cpu_arch, &n_features);
  if (d->cpu_features >> n_features) return bad(errbuf, errlen, "unknown CPU feature bits");
  /* Sizes must fit comfortably in size_t (the session rounds them up). */
  const uint64_t limit = (uint64_t)(SIZE_MAX / 4);
  if (d->arena_bytes > limit || d->kv_bytes > limit || d->weights_bytes > limit)
    return bad(errbuf, errlen, "a memory size is too large");
  if ((uint64_t)d->max_seq * (uint64_t)d->output_width > limit / sizeof(float))
    return bad(errbuf, errlen, "max_seq * output_width is too large");
  if ((uint64_t)d->max_seq * (uint64_t)d->input_width > limit / sizeof(float))
    return bad(errbuf, errlen, "max_seq * input_width is too large");
  if (d->weights_bytes > 0 && !weights) return bad(errbuf, errlen, "weights_bytes > 0 but no weights");
  const int32_t ids[3] = {d->bos_id, d->eos_id, d->pad_id};
  for (int i = 0; i < 3; i++)
    if (ids[i] < -1 || (d->vocab > 0 && ids[i] >= d->vocab)) /* an f32-input model has no ids to check */
      return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                          "malformed model descriptor: the %s id %d is not below the vocabulary (%d)",
                          i == 0   ? "BOS"
                          : i == 1 ? "EOS"
                                   : "pad",
                          ids[i], d->vocab);
  if (d->tokenizer_reserved != 0 || (d->tokenizer == NULL) != (d->tokenizer_bytes == 0) || d->tokenizer_bytes > limit)
    return bad(errbuf, errlen, "a malformed embedded tokenizer");
  if (d->n_entries < 1 || !d->entries) return bad(errbuf, errlen, "no entry points");
  /* the fields against each other */
  if (d->n_entries > TFX_RT_MAX_ENTRIES)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "malformed model descriptor: %d entry points (at most %d)",
                        d->n_entries, TFX_RT_MAX_ENTRIES);
  if (d->input_kind == TFX_INPUT_TOKENS && d->input_width != 1)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "malformed model descriptor: a token model with input_width %d (expected 1)", d->input_width);
  if (d->input_kind == TFX_INPUT_F32 && d->vocab != 0)
    return bad(errbuf, errlen, "an f32-input model with a vocabulary");
  /* ABI 6: the input table (several inputs) against the one-input fields */
  if (d->inputs_reserved != 0 || d->n_inputs < 0 || d->n_inputs == 1 || d->n_inputs > TFX_MAX_MODEL_INPUTS ||
      (d->n_inputs == 0) != (d->inputs == NULL))
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "malformed model descriptor: an input table of %d inputs (0, or 2..%d with the table)",
                        d->n_inputs, TFX_MAX_MODEL_INPUTS);
  /* a source (rows N > 0) comes with the row mask, the last input, of the same N */
  int32_t mask_rows =
      d->n_inputs >= 2 && d->inputs[d->n_inputs - 1].kind == TFX_INPUT_ROWS_MASK ? d->inputs[d->n_inputs - 1].rows : 0;
  int has_source = 0;
  for (int32_t i = 0; i < d->n_inputs; i++) {
    const tfx_input_desc *in = &d->inputs[i];
    int ok = in->name && in->name[0] && in->vocab >= 0;
    if (i == 0)
      ok = ok && in->rows == TFX_INPUT_ROWS_T && in->kind == d->input_kind && in->width == d->input_width &&
           in->vocab == d->vocab;
    else if (in->kind == TFX_INPUT_ROWS_MASK)
      ok = ok && i == d->n_inputs - 1 && in->rows > 0 && in->rows <= (1 << 24) && in->width == 1 && in->vocab == 0;
    else
      ok = ok && in->width == 1 && (in->kind == TFX_INPUT_F32 ? in->vocab == 0 : in->kind == TFX_INPUT_I32) &&
           (in->rows == TFX_INPUT_ROWS_T || (in->rows > 0 && in->rows == mask_rows));
    if (i > 0 && in->kind != TFX_INPUT_ROWS_MASK && in->rows > 0) has_source = 1;
    if (i == d->n_inputs - 1 && (mask_rows > 0) != has_source) ok = 0; /* a row mask without a source, or none */
    for (int32_t j = 0; ok && j < i; j++)
      if (!strcmp(d->inputs[j].name, in->name)) ok = 0;
    if (!ok)
      return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                          "malformed model descriptor: input %d ('%s') has kind %d, width %d, vocab %d, rows %d", i,
                          in->name ? in->name : "", in->kind, in->width, in->vocab, in->rows);
  }
  /* ABI 7: the source cache, at the start of the KV storage, only with a source */
  if (d->src_cache_bytes % 64 || d->src_cache_bytes > d->kv_bytes || (d->src_cache_bytes > 0 && !has_source))
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "malformed model descriptor: a source cache of %llu bytes (a multiple of 64, at most the KV "
                        "storage's %llu, with a source input)",
                        (unsigned long long)d->src_cache_bytes, (unsigned long long)d->kv_bytes);
  int has_all_rows = 0;
  for (int32_t i = 0; i < d->n_entries; i++) {
    const tfx_entry_desc *e = &d->entries[i];
    int rc = check_entry(e, i, errbuf, errlen);
    if (rc != TFX_OK) return rc;
    for (int32_t a = 0; a < e->n_args; a++)
      if ((e->arg_kinds[a] == TFX_ARG_INPUTS) != (d->n_inputs >= 2) &&
          (e->arg_kinds[a] == TFX_ARG_INPUTS || e->arg_kinds[a] == TFX_ARG_INPUT))
        return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                            "malformed model descriptor: entry '%s' takes %s, the model has %d input%s", e->name,
                            e->arg_kinds[a] == TFX_ARG_INPUTS ? "an input table" : "one input",
                            d->n_inputs >= 2 ? d->n_inputs : 1, d->n_inputs >= 2 ? "s" : "");
    if (e->max_tokens > d->max_seq)
      return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                          "malformed model descriptor: entry '%s' accepts %d tokens, more than max_seq = %d", e->name,
                          e->max_tokens, d->max_seq);
    if (strcmp(e->name, "decode") == 0 && e->min_tokens != 1)
      return bad(errbuf, errlen, "the decode entry does not accept one token");
    if ((e->flags & TFX_ENTRY_BATCH) && !d->has_kv_cache)
      return bad(errbuf, errlen, "a batch entry in a model without a KV cache");
    if (!(e->flags & (TFX_ENTRY_LAST_ROW | TFX_ENTRY_BATCH)) && e->min_tokens == 1) has_all_rows = 1;
  }
  if (!has_all_rows) return bad(errbuf, errlen, "no entry writing every row accepts one token");
  return TFX_OK;
}

int tfx_rt_verify_checksums(const tfx_model_desc *d, const void *weights, int with_weights, char *errbuf,
                            size_t errlen) {
  /* 0 is "not recorded" (a descriptor not written by tfxc): an error only
   * when the caller asked for verification */
  if (with_weights && (!d->desc_checksum || (d->weights_bytes > 0 && !d->weights_checksum)))
    return tfx_rt_error(errbuf, errlen, TFX_ERR_CHECKSUM, "model '%s' records no checksums to verify", d->name);
  uint64_t ds = d->desc_checksum ? tfx_desc_checksum(d) : 0;
  if (ds != d->desc_checksum)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_CHECKSUM,
                        "model '%s': the descriptor's checksum is %016llx, the descriptor records %016llx", d->name,
                        (unsigned long long)ds, (unsigned long long)d->desc_checksum);
  if (with_weights && d->weights_bytes > 0) {
    uint64_t ws = tfx_checksum64(weights, (size_t)d->weights_bytes);
    if (ws != d->weights_checksum)
      return tfx_rt_error(errbuf, errlen, TFX_ERR_CHECKSUM,
                          "model '%s': the weights' checksum (%llu bytes) is %016llx, the descriptor records %016llx",
                          d->name, (unsigned long long)d->weights_bytes, (unsigned long long)ws,
                          (unsigned long long)d->weights_checksum);
  }
  return TFX_OK;
}

/* A variant against the first descriptor: everything but the code and the
 * CPU fields must agree (one weights blob, one session layout). */
static int same_model(const tfx_model_desc *d, const tfx_model_desc *v) {
  return !strcmp(d->name, v->name) && d->input_kind == v->input_kind && d->input_width == v->input_width &&
         d->output_width == v->output_width && d->vocab == v->vocab && d->max_seq == v->max_seq &&
         d->has_kv_cache == v->has_kv_cache && d->arena_bytes == v->arena_bytes && d->kv_bytes == v->kv_bytes &&
         d->weights_bytes == v->weights_bytes && d->weights == v->weights &&
         d->weights_checksum == v->weights_checksum && d->cpu_arch == v->cpu_arch && d->bos_id == v->bos_id &&
         d->eos_id == v->eos_id && d->pad_id == v->pad_id && d->tokenizer_bytes == v->tokenizer_bytes &&
         d->n_inputs == v->n_inputs && d->src_cache_bytes == v->src_cache_bytes;
}

int tfx_rt_check_variants(const tfx_model_desc *d, const void *weights, void *handle, const char *path, int checksums,
                          int with_weights, char *errbuf, size_t errlen) {
  int n = 0;
  for (const tfx_model_desc *v = d; v; v = v->variant_next, n++) {
    if (n == TFX_RT_MAX_VARIANTS)
      return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "malformed model descriptor: more than %d code variants",
                          TFX_RT_MAX_VARIANTS);
#ifdef TFX_RT_MINIMAL /* no dlopen: never a handle */
    (void)handle;
    (void)path;
    int rc = TFX_OK;
#else
    int rc = handle ? tfx_rt_check_loaded(handle, v, path, errbuf, errlen) : TFX_OK;
#endif
    if (rc == TFX_OK) rc = tfx_rt_validate_desc(v, weights, errbuf, errlen);
    if (rc == TFX_OK && v != d && !same_model(d, v))
      rc = tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL,
                        "malformed model descriptor: code variant %d of '%s' is not the same model", n, d->name);
    if (rc == TFX_OK && checksums) rc = tfx_rt_verify_checksums(v, weights, with_weights && v == d, errbuf, errlen);
    if (rc != TFX_OK) return rc;
  }
  return TFX_OK;
}
