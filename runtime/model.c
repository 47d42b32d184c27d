/* runtime/model.c — opening models: the file checks (elf_check.c), dlopen
 * of a compiled model.so, its descriptor checks and, on request, its
 * checksums and the choice of a code variant the CPU runs (cpu.c)
 * (tfx_model_open[_ex|_flags]), wrapping a descriptor already in
 * the process (tfx_model_from_descriptor, for linked and JIT models), and
 * closing them. Where the weights then live (2 MiB pages) is
 * weights_pages.c's. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../include/tfx/seal.h"
#include "rt_internal.h"

/* Builds the model from a descriptor; on failure releases nothing the caller
 * owns (the dl handle and release callback stay with the caller). */
static int make_model(const tfx_model_desc *desc, const void *weights, tfx_model **out, char *errbuf, size_t errlen) {
  const void *w = weights ? weights : (desc ? desc->weights : NULL);
  int rc = tfx_rt_validate_desc(desc, w, errbuf, errlen);
  if (rc != TFX_OK) return rc;
  tfx_model *m = calloc(1, sizeof *m);
  if (!m) return tfx_rt_error(errbuf, errlen, TFX_ERR_OUT_OF_MEMORY, "out of memory allocating the model");
  m->desc = *desc;
  m->desc.weights = w;
  m->orig = desc;
  m->entries = calloc((size_t)desc->n_entries, sizeof *m->entries);
  if (!m->entries) {
    free(m);
    return tfx_rt_error(errbuf, errlen, TFX_ERR_OUT_OF_MEMORY, "out of memory allocating the model");
  }
  rc = tfx_rt_prepare_entries(m, errbuf, errlen);
  if (rc != TFX_OK) {
    free(m->entries);
    free(m);
    return rc;
  }
  *out = m;
  return TFX_OK;
}

int tfx_model_open_flags(const char *path, unsigned flags, tfx_model **out, char *errbuf, size_t errlen) {
  if (errbuf && errlen > 0) errbuf[0] = '\0';
  if (out) *out = NULL;
  if (!path || !out)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT, "tfx_model_open: NULL path or output pointer");
  const unsigned known = (unsigned)TFX_OPEN_VERIFY | (unsigned)TFX_OPEN_MAP_WEIGHTS;
  if (flags & ~known)
    return tfx_rt_error(errbuf, errlen, TFX_ERR_INVALID_ARGUMENT, "tfx_model_open: unknown flags 0x%x", flags & ~known);
  if (!path[0]) return tfx_rt_error(errbuf, errlen, TFX_ERR_OPEN, "tfx_model_open: empty path");
  /* The file itself first: a regular file (opened without blocking, so a
   * FIFO cannot hang), sealed by tfxc and unchanged since, whose ELF headers
   * and loader tables lie inside it; the dynamic loader trusts them and would
   * crash on a truncated file. */
  int fd = -1;
  uint64_t size = 0;
  int rc = tfx_rt_open_model_file(path, &fd, &size, errbuf, errlen);
  if (rc != TFX_OK) return rc;
  rc = tfx_rt_check_seal(fd, size, path, errbuf, errlen);
  /* the ELF file ends where its seal begins: a segment may not reach into it */
  if (rc == TFX_OK) rc = tfx_rt_check_elf(fd, size - TFX_SEAL_BYTES, path, errbuf, errlen);
  close(fd);
  if (rc != TFX_OK) return rc;
  /* dlopen searches the library path for names without a slash; the file
   * just checked, relative to the working directory, is what callers mean. */
  const char *open_path = path;
  char *local = NULL;
  if (!strchr(path, '/')) {
    size_t len = strlen(path);
    local = malloc(len + 3);
    if (!local) return tfx_rt_error(errbuf, errlen, TFX_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(local, "./", 2);
    memcpy(local + 2, path, len + 1);
    open_path = local;
  }
  void *h = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
  free(local);
  if (!h) {
    const char *e = dlerror();
    return tfx_rt_error(errbuf, errlen, TFX_ERR_OPEN, "cannot load '%s': %s", path, e ? e : "unknown dlopen error");
  }
  dlerror();
  const tfx_model_desc *desc = (const tfx_model_desc *)dlsym(h, TFX_DESC_SYMBOL);
  if (!desc) {
    dlclose(h);
    return tfx_rt_error(errbuf, errlen, TFX_ERR_NOT_A_MODEL, "'%s' is not a tfx model: no symbol %s", path,
                        TFX_DESC_SYMBOL);
  }
  /* Every code variant's pointers, fields and descriptor checksum (a few
   * hundred bytes each, well under a microsecond: a field changed to another
   * valid-looking value, an output width or a KV size, would make generated
   * code write outside the session's buffers); the weights are hashed only
   * on request. Then the CPU, before any of the model's code runs: a
   * corrupted feature set is a checksum error, not a CPU refusal. */
  rc = tfx_rt_check_variants(desc, desc->weights, h, path, 1, (flags & TFX_OPEN_VERIFY) != 0, errbuf, errlen);
  const tfx_model_desc *chosen = desc;
  if (rc == TFX_OK) rc = tfx_rt_choose_variant(desc, &chosen, errbuf, errlen);
  tfx_model *m = NULL;
  if (rc == TFX_OK) rc = make_model(chosen, NULL, &m, errbuf, errlen);
  if (rc != TFX_OK) {
    dlclose(h);
    return rc;
  }
  m->dl_handle = h;
  if (!(flags & TFX_OPEN_MAP_WEIGHTS)) tfx_rt_place_weights(m, 1); /* the library's file pages */
  *out = m;
  return TFX_OK;
}

int tfx_model_open_ex(const char *path, tfx_model **out, char *errbuf, size_t errlen) {
  return tfx_model_open_flags(path, 0, out, errbuf, errlen);
}

int tfx_model_open(const char *path, tfx_model **out) { return tfx_model_open_ex(path, out, NULL, 0); }

int tfx_model_from_descriptor(const tfx_model_desc *desc, const void *weights, void (*release)(void *),
                              void *release_arg, tfx_model **out) {
  if (out) *out = NULL;
  if (!desc || !out) return TFX_ERR_INVALID_ARGUMENT;
  tfx_model *m = NULL;
  const tfx_model_desc *chosen = desc;
  int rc = tfx_rt_check_variants(desc, weights ? weights : desc->weights, NULL, NULL, 0, 0, NULL, 0);
  if (rc == TFX_OK) rc = tfx_rt_choose_variant(desc, &chosen, NULL, 0);
  if (rc == TFX_OK) rc = make_model(chosen, weights, &m, NULL, 0);
  if (rc != TFX_OK) return rc;
  m->release = release;
  m->release_arg = release_arg;
  /* the caller's blob is collapsed where it is; a linked model's (in a
   * loaded file: the program or a library) is copied, as an opened one's */
  Dl_info where;
  tfx_rt_place_weights(m, !weights && dladdr(m->desc.weights, &where) != 0);
  *out = m;
  return TFX_OK;
}

void tfx_model_close(tfx_model *model) {
  if (!model) return;
  if (model->is_static) { /* model_static.c: the caller's storage */
    memset(model, 0, sizeof *model);
    return;
  }
  tfx_rt_free_weights_copy(model);
  if (model->release) model->release(model->release_arg);
  if (model->dl_handle) dlclose(model->dl_handle);
  free(model->entries);
  free(model);
}

const tfx_model_desc *tfx_model_descriptor(const tfx_model *model) { return model ? &model->desc : NULL; }
