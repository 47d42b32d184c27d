/* runtime/info.c — what a model is, through accessors (tfx_model_name,
 * tfx_model_info, tfx_model_cpu_features, tfx_model_tokenizer): the stable
 * way for bindings (python/tfx) to read a model without copying the
 * descriptor's layout. */
#include <stdio.h>
#include <string.h>

#include "../include/tfx/cpu_features.h"
#include "../include/tfx/tokenizer.h"
#include "rt_internal.h"

const char *tfx_model_name(const tfx_model *model) { return model && model->desc.name ? model->desc.name : ""; }

int tfx_model_info(const tfx_model *model, struct tfx_model_info *info) {
  if (!model || !info || info->struct_size < 8) return TFX_ERR_INVALID_ARGUMENT;
  const tfx_model_desc *d = &model->desc;
  struct tfx_model_info v;
  memset(&v, 0, sizeof v);
  v.struct_size = info->struct_size < sizeof v ? info->struct_size : (uint32_t)sizeof v;
  v.abi_version = d->abi_version;
  v.input_kind = d->input_kind;
  v.input_width = d->input_width;
  v.output_width = d->output_width;
  v.vocab = d->vocab;
  v.max_seq = d->max_seq;
  v.has_kv_cache = d->has_kv_cache;
  v.threads = d->threads;
  for (int32_t i = 0; i < d->n_entries; i++)
    if (d->entries[i].flags & TFX_ENTRY_BATCH) v.has_batch = 1;
  v.arena_bytes = d->arena_bytes;
  v.kv_bytes = d->kv_bytes;
  v.weights_bytes = d->weights_bytes;
  v.cpu_arch = d->cpu_arch;
  v.cpu_features = d->cpu_features;
  v.bos_id = d->bos_id;
  v.eos_id = d->eos_id;
  v.pad_id = d->pad_id;
  v.tokenizer_bytes = d->tokenizer_bytes;
  v.n_inputs = tfx_rt_caller_inputs(d);
  v.weights_pages = model->weights_pages;
  memcpy(info, &v, v.struct_size);
  return TFX_OK;
}

int tfx_model_input(const tfx_model *model, int32_t i, tfx_input_info *info) {
  if (!model || !info) return TFX_ERR_INVALID_ARGUMENT;
  const tfx_model_desc *d = &model->desc;
  int32_t n = tfx_rt_caller_inputs(d);
  if (i < 0 || i >= n) return TFX_ERR_INVALID_ARGUMENT;
  if (d->n_inputs >= 2) {
    const tfx_input_desc *in = &d->inputs[i];
    *info = (tfx_input_info){in->name, in->kind, in->width, in->vocab, in->rows};
  } else {
    *info = (tfx_input_info){"input", d->input_kind, d->input_width, d->input_kind == TFX_INPUT_TOKENS ? d->vocab : 0,
                             TFX_INPUT_ROWS_T};
  }
  return TFX_OK;
}

int tfx_model_cpu_features(const tfx_model *model, char *buf, size_t len) {
  uint64_t f = model ? model->desc.cpu_features : 0;
  size_t n = 0, count = 0;
  const tfx_cpu_feature_info *table = tfx_cpu_feature_table(model ? model->desc.cpu_arch : 0, &count);
  int fits = buf && len;
  if (fits) buf[0] = 0;
  for (size_t i = 0; i < count; i++) {
    if (!(f & table[i].bit)) continue;
    const char *name = table[i].name;
    size_t l = strlen(name) + (n > 0);
    if (fits && n + l < len)
      snprintf(buf + n, len - n, "%s%s", n > 0 ? " " : "", name);
    else
      fits = 0; /* nothing more: the text stays a prefix of whole names */
    n += l;
  }
  return (int)n;
}

#ifndef TFX_RT_MINIMAL /* the minimal runtime has no tokenizers */
int tfx_model_tokenizer(const tfx_model *model, tfx_tokenizer **out, char *err, size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!out) return TFX_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!model) return TFX_ERR_INVALID_ARGUMENT;
  const tfx_model_desc *d = &model->desc;
  if (!d->tokenizer || d->tokenizer_bytes == 0) return TFX_OK;
  char name[256];
  snprintf(name, sizeof name, "the tokenizer embedded in '%s'", d->name ? d->name : "");
  return tfx_tokenizer_open_memory(d->tokenizer, (size_t)d->tokenizer_bytes, name, out, err, errlen);
}
#endif
