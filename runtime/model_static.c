/* runtime/model_static.c — a model in the caller's memory
 * (tfx_model_from_descriptor_static): a descriptor linked into the program
 * (a `tfxc -c` object), checked as every descriptor is, its entries
 * prepared, the model structure and its entry table in a tfx_model_storage.
 * Nothing is allocated; closing it clears the storage. In the minimal
 * runtime (TFX_RT_MINIMAL: libtfxrt_min.a, without model.c, dlopen or
 * malloc) this file also closes models and answers tfx_model_descriptor. */
#include <stdalign.h>
#include <string.h>

#include "rt_internal.h"

/* the model, then its entry table, in the caller's storage */
typedef struct static_model {
  struct tfx_model model;
  tfx_rt_entry entries[TFX_RT_MAX_ENTRIES];
} static_model;
_Static_assert(sizeof(static_model) <= sizeof(tfx_model_storage), "TFX_MODEL_STORAGE_BYTES is too small");
_Static_assert(alignof(static_model) <= alignof(tfx_model_storage), "tfx_model_storage is under-aligned");

int tfx_model_from_descriptor_static(const tfx_model_desc *desc, tfx_model_storage *storage, tfx_model **out,
                                     char *errbuf, size_t errlen) {
  if (errbuf && errlen > 0) errbuf[0] = '\0';
  if (out) *out = NULL;
  if (!desc || !storage || !out)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT,
                        "tfx_model_from_descriptor_static: NULL descriptor, storage or output pointer");
  const tfx_model_desc *chosen = desc;
  int rc = tfx_rt_check_variants(desc, desc->weights, NULL, NULL, 0, 0, errbuf, errlen);
  if (rc == TFX_OK) rc = tfx_rt_choose_variant(desc, &chosen, errbuf, errlen);
  if (rc != TFX_OK) return rc;
  static_model *sm = (static_model *)(void *)storage;
  memset(sm, 0, sizeof *sm);
  tfx_model *m = &sm->model;
  m->desc = *chosen;
  m->orig = chosen;
  m->entries = sm->entries;
  m->is_static = 1;
  rc = tfx_rt_prepare_entries(m, errbuf, errlen);
  if (rc != TFX_OK) {
    memset(sm, 0, sizeof *sm);
    return rc;
  }
  *out = m;
  return TFX_OK;
}

#ifdef TFX_RT_MINIMAL
void tfx_model_close(tfx_model *model) {
  if (model && model->is_static) memset(model, 0, sizeof(static_model));
}

const tfx_model_desc *tfx_model_descriptor(const tfx_model *model) { return model ? &model->desc : NULL; }
#endif
