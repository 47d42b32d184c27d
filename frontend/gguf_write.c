/* frontend/gguf_write.c — writes the bound params of a graph as a GGUF v3
 * file (tfxc --emit-gguf; the layout is in gguf.h): one tensor per distinct
 * weights slot, in node order, named as the param, in its stored format
 * (f32, f16, bf16, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k), dims innermost first, offsets
 * aligned to 32. The file is built beside its destination under a temporary
 * name and renamed into place only when complete, so a failed or interrupted
 * write never leaves a partial file at the destination. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"

typedef struct {
  FILE *fp;
  uint64_t pos;
  int failed; /* the errno of the first failed write, or 0 */
} wr;

static void put(wr *w, const void *p, size_t n) {
  if (!w->failed && n && fwrite(p, 1, n, w->fp) != n) w->failed = errno ? errno : EIO;
  w->pos += n;
}

static void put_u32(wr *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(w, b, 4);
}

static void put_u64(wr *w, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
  put(w, b, 8);
}

static void put_str(wr *w, const char *s) {
  put_u64(w, strlen(s));
  put(w, s, strlen(s));
}

static void put_kv_str(wr *w, const char *key, const char *val) {
  put_str(w, key);
  put_u32(w, TFX_GGUF_STRING);
  put_str(w, val);
}

static void pad_to(wr *w, uint64_t align) {
  static const uint8_t zeros[64];
  while (w->pos % align) put(w, zeros, (size_t)(align - w->pos % align < 64 ? align - w->pos % align : 64));
}

/* slot[i]: 1 when param i is the first of its weights slot (the one written) */
static int collect(const tfx_graph *g, size_t weights_size, char *slot, char *err, size_t errlen) {
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *p = &g->nodes[i];
    slot[i] = 0;
    if (p->op != TFX_OP_PARAM || p->weight_offset < 0) continue;
    int j = 0;
    while (j < i && !(slot[j] && g->nodes[j].weight_offset == p->weight_offset)) j++;
    if (j < i) continue;
    const char *name = p->name ? p->name : "";
    if (!name[0] || strlen(name) > TFX_GGUF_MAX_NAME)
      return tfx_errf(err, errlen, "param %%%d: its name '%.64s' cannot name a GGUF tensor (1..%d bytes)", i, name,
                      TFX_GGUF_MAX_NAME);
    const tfx_gguf_type *gt = tfx_gguf_type_for(p->type.dtype);
    const tfx_dtype_info *fi = tfx_dtype_info_of(p->type.dtype);
    if (!gt || !fi || fi->row_bytes)
      return tfx_errf(err, errlen, "param '%s' is stored as %s, which GGUF cannot hold", name,
                      tfx_dtype_name(p->type.dtype));
    if (p->fx.panel > 0)
      return tfx_errf(err, errlen, "param '%s' is packed in panels of %d rows, a layout GGUF cannot express", name,
                      p->fx.panel);
    if (p->type.rank < 1 || p->type.rank > TFX_GGUF_MAX_DIMS || tfx_type_has_t(&p->type))
      return tfx_errf(err, errlen, "param '%s' has rank %d (GGUF holds 1..%d)", name, p->type.rank, TFX_GGUF_MAX_DIMS);
    int64_t bytes = tfx_type_bytes(&p->type, 1);
    if (bytes < 0 || (uint64_t)p->weight_offset > weights_size ||
        (uint64_t)bytes > weights_size - (uint64_t)p->weight_offset)
      return tfx_errf(err, errlen, "param '%s' lies outside the weights blob", name);
    for (int k = 0; k < i; k++)
      if (slot[k] && strcmp(g->nodes[k].name, name) == 0)
        return tfx_errf(err, errlen, "two weights slots are both named '%s'", name);
    slot[i] = 1;
  }
  return 0;
}

/* The file's bytes to fp (not flushed); path names it in messages. */
int tfx_gguf_write_stream(const tfx_graph *g, const uint8_t *weights, size_t weights_size, FILE *fp, const char *path,
                          const tfx_gguf_meta *meta, char *err, size_t errlen) {
  if (!g || !fp || !path) return tfx_errf(err, errlen, "--emit-gguf: no graph or no output");
  if (!weights) return tfx_errf(err, errlen, "%s: no weights are bound, nothing to write", path);
  char *slot = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1));
  if (!slot) return tfx_errf(err, errlen, "out of memory");
  if (collect(g, weights_size, slot, err, errlen)) {
    free(slot);
    return -1;
  }
  uint64_t n_tensors = 0;
  for (int i = 0; i < g->n_nodes; i++) n_tensors += (uint64_t)slot[i];
  const uint64_t align = TFX_GGUF_DEFAULT_ALIGNMENT;
  wr w = {fp, 0, 0};
  const char *name = meta && meta->name && meta->name[0] ? meta->name : NULL;
  const char *source = meta && meta->source && meta->source[0] ? meta->source : NULL;
  const char *version = meta && meta->version && meta->version[0] ? meta->version : NULL;
  put(&w, TFX_GGUF_MAGIC, 4);
  put_u32(&w, TFX_GGUF_VERSION);
  put_u64(&w, n_tensors);
  put_u64(&w, 2 + (name != NULL) + (source != NULL) + (version != NULL));
  put_kv_str(&w, "general.architecture", "tfxc");
  if (name) put_kv_str(&w, "general.name", name);
  put_str(&w, "general.alignment");
  put_u32(&w, TFX_GGUF_UINT32);
  put_u32(&w, (uint32_t)align);
  if (version) put_kv_str(&w, "tfxc.version", version);
  if (source) put_kv_str(&w, "tfxc.source", source);
  uint64_t off = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    if (!slot[i]) continue;
    const tfx_node *p = &g->nodes[i];
    put_str(&w, p->name);
    put_u32(&w, (uint32_t)p->type.rank);
    for (int d = p->type.rank - 1; d >= 0; d--) put_u64(&w, (uint64_t)p->type.dims[d]);
    put_u32(&w, tfx_gguf_type_for(p->type.dtype)->id);
    put_u64(&w, off);
    uint64_t bytes = (uint64_t)tfx_type_bytes(&p->type, 1);
    off += (bytes + align - 1) / align * align;
  }
  pad_to(&w, align);
  for (int i = 0; i < g->n_nodes; i++) {
    if (!slot[i]) continue;
    const tfx_node *p = &g->nodes[i];
    put(&w, weights + p->weight_offset, (size_t)tfx_type_bytes(&p->type, 1));
    pad_to(&w, align);
  }
  free(slot);
  return w.failed ? tfx_errf(err, errlen, "%s: cannot write the GGUF file: %s", path, strerror(w.failed)) : 0;
}

int tfx_gguf_write(const tfx_graph *g, const uint8_t *weights, size_t weights_size, const char *path,
                   const tfx_gguf_meta *meta, char *err, size_t errlen) {
  if (!g || !path || !path[0]) return tfx_errf(err, errlen, "--emit-gguf: no graph or no output path");
  if (!weights) return tfx_errf(err, errlen, "%s: no weights are bound, nothing to write", path);
  size_t pl = strlen(path);
  char *tmp = malloc(pl + 16);
  if (!tmp) return tfx_errf(err, errlen, "out of memory");
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd >= 0) { /* mkstemp makes it 0600: give it the mode a plain fopen would */
    mode_t um = umask(0);
    umask(um);
    (void)fchmod(fd, 0666 & ~um);
  }
  FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
  if (!fp) {
    int e = errno;
    if (fd >= 0) {
      close(fd);
      unlink(tmp);
    }
    free(tmp);
    return tfx_errf(err, errlen, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
  }
  if (tfx_gguf_write_stream(g, weights, weights_size, fp, path, meta, err, errlen)) {
    fclose(fp);
    unlink(tmp);
    free(tmp);
    return -1;
  }
  int bad = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
  int e = errno;
  if (fclose(fp) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  if (!bad && rename(tmp, path) != 0) {
    bad = 1;
    e = errno;
  }
  if (bad) unlink(tmp);
  free(tmp);
  return bad ? tfx_errf(err, errlen, "%s: cannot write the GGUF file: %s", path, strerror(e)) : 0;
}
