/* frontend/weights_safetensors.c — reads the tensor table of a safetensors
 * file: an 8-byte little-endian header length N, N bytes of JSON mapping each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
 * relative to the byte after the header; "__metadata__" is ignored), then the
 * data. Everything is validated before any data is read: the header length
 * against the file size, the JSON, each dtype, shape and offset pair (in range,
 * end - begin = numel × element size, overflow-safe), duplicate names. */
#include "weights.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's limit: 100 MB */

typedef struct {
  const char *name;
  tfx_wfile_dtype dtype;
  unsigned size; /* bytes per element */
} st_dtype;

/* every dtype of the safetensors specification; only the first three bind */
static const st_dtype dtypes[] = {
    {"F32", TFX_WF_F32, 4},
    {"F16", TFX_WF_F16, 2},
    {"BF16", TFX_WF_BF16, 2},
    {"F64", TFX_WF_UNSUPPORTED, 8},
    {"I64", TFX_WF_UNSUPPORTED, 8},
    {"U64", TFX_WF_UNSUPPORTED, 8},
    {"I32", TFX_WF_UNSUPPORTED, 4},
    {"U32", TFX_WF_UNSUPPORTED, 4},
    {"I16", TFX_WF_UNSUPPORTED, 2},
    {"U16", TFX_WF_UNSUPPORTED, 2},
    {"I8", TFX_WF_UNSUPPORTED, 1},
    {"U8", TFX_WF_UNSUPPORTED, 1},
    {"BOOL", TFX_WF_UNSUPPORTED, 1},
    {"F8_E4M3", TFX_WF_UNSUPPORTED, 1},
    {"F8_E5M2", TFX_WF_UNSUPPORTED, 1},
};

static const st_dtype *find_dtype(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (strcmp(dtypes[i].name, name) == 0) return &dtypes[i];
  return NULL;
}

/* Reads exactly n bytes at the current position. */
static int read_all(FILE *fp, void *dst, size_t n) { return fread(dst, 1, n, fp) == n ? 0 : -1; }

int tfx_wfile_looks_safetensors(const char *path) {
  uint64_t size = 0;
  char e[8];
  FILE *fp = tfx_wfile_fopen(path, &size, e, sizeof e);
  if (!fp) return 0;
  unsigned char h[9];
  int ok = 0;
  if (read_all(fp, h, sizeof h) == 0) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | h[i];
    ok = n >= 2 && n <= ST_MAX_HEADER && n <= size - 8 && h[8] == '{';
  }
  fclose(fp);
  return ok;
}

/* Validates one header entry and appends it to out->tensors[out->n_tensors]. */
static int add_entry(tfx_wfile *out, const char *path, const char *name, const tfx_fe_json *v, uint64_t data_size,
                     char *err, size_t errlen) {
  if (v->kind != TFX_FE_JSON_OBJECT)
    return tfx_errf(err, errlen, "%s: tensor '%s': expected an object, got %s", path, name,
                    tfx_fe_json_kind_name(v->kind));
  static const char *const known[] = {"dtype", "shape", "data_offsets"};
  for (int i = 0; i < v->n; i++) {
    int k = 0;
    while (k < 3 && strcmp(v->keys[i], known[k]) != 0) k++;
    if (k == 3)
      return tfx_errf(err, errlen, "%s: tensor '%s': unknown field '%s' (expected dtype, shape, data_offsets)", path,
                      name, v->keys[i]);
    for (int j = 0; j < i; j++)
      if (strcmp(v->keys[i], v->keys[j]) == 0)
        return tfx_errf(err, errlen, "%s: tensor '%s': field '%s' appears twice", path, name, v->keys[i]);
  }
  const tfx_fe_json *jd = tfx_fe_json_get(v, "dtype"), *js = tfx_fe_json_get(v, "shape"),
                    *jo = tfx_fe_json_get(v, "data_offsets");
  if (!jd || !js || !jo)
    return tfx_errf(err, errlen, "%s: tensor '%s': missing field '%s'", path, name,
                    !jd   ? "dtype"
                    : !js ? "shape"
                          : "data_offsets");
  if (jd->kind != TFX_FE_JSON_STRING)
    return tfx_errf(err, errlen, "%s: tensor '%s': dtype must be a string, got %s", path, name,
                    tfx_fe_json_kind_name(jd->kind));
  const st_dtype *dt = find_dtype(jd->str);
  if (!dt)
    return tfx_errf(err, errlen, "%s: tensor '%s' has unknown dtype '%.32s' (supported: F32, F16, BF16)", path, name,
                    jd->str);
  if (js->kind != TFX_FE_JSON_ARRAY)
    return tfx_errf(err, errlen, "%s: tensor '%s': shape must be an array, got %s", path, name,
                    tfx_fe_json_kind_name(js->kind));
  if (js->n > TFX_MAX_RANK)
    return tfx_errf(err, errlen, "%s: tensor '%s' has rank %d (at most %d is supported)", path, name, js->n,
                    TFX_MAX_RANK);
  int64_t dims[TFX_MAX_RANK] = {0};
  uint64_t numel = 1;
  for (int i = 0; i < js->n; i++) {
    const tfx_fe_json *d = &js->items[i];
    if (d->kind != TFX_FE_JSON_NUMBER || !d->is_uint || d->uval > (uint64_t)INT64_MAX)
      return tfx_errf(err, errlen, "%s: tensor '%s': shape[%d] must be a non-negative integer", path, name, i);
    dims[i] = (int64_t)d->uval;
    if (numel && d->uval > UINT64_MAX / numel)
      return tfx_errf(err, errlen, "%s: tensor '%s': shape is too large", path, name);
    numel *= d->uval;
  }
  if (jo->kind != TFX_FE_JSON_ARRAY || jo->n != 2)
    return tfx_errf(err, errlen, "%s: tensor '%s': data_offsets must be an array [begin, end]", path, name);
  for (int i = 0; i < 2; i++)
    if (jo->items[i].kind != TFX_FE_JSON_NUMBER || !jo->items[i].is_uint)
      return tfx_errf(err, errlen, "%s: tensor '%s': data_offsets[%d] must be a non-negative integer", path, name, i);
  uint64_t begin = jo->items[0].uval, end = jo->items[1].uval;
  if (begin > end)
    return tfx_errf(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", path, name,
                    (unsigned long long)begin, (unsigned long long)end);
  if (end > data_size)
    return tfx_errf(err, errlen,
                    "%s: tensor '%s': data_offsets [%llu, %llu] are out of range (the data section has %llu bytes)",
                    path, name, (unsigned long long)begin, (unsigned long long)end, (unsigned long long)data_size);
  if (numel > UINT64_MAX / dt->size)
    return tfx_errf(err, errlen,
                    "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape × %s needs more "
                    "than 2^64 bytes",
                    path, name, (unsigned long long)begin, (unsigned long long)end, (unsigned long long)(end - begin),
                    dt->name);
  if (numel * dt->size != end - begin)
    return tfx_errf(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but shape × %s needs %llu",
                    path, name, (unsigned long long)begin, (unsigned long long)end, (unsigned long long)(end - begin),
                    dt->name, (unsigned long long)(numel * dt->size));
  tfx_wfile_tensor *t = &out->tensors[out->n_tensors];
  memset(t, 0, sizeof *t);
  t->name = strdup(name);
  if (!t->name) return tfx_errf(err, errlen, "%s: out of memory", path);
  t->type = tfx_type_make(TFX_DT_F32, js->n, dims);
  t->file_offset = begin; /* made absolute by the caller */
  t->dtype = dt->dtype;
  t->dtype_name = dt->name;
  t->storage = dt->dtype == TFX_WF_F16 ? TFX_DT_F16 : dt->dtype == TFX_WF_BF16 ? TFX_DT_BF16 : TFX_DT_F32;
  out->n_tensors++;
  return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Duplicate names (a JSON object may repeat a key): sorted, O(n log n). */
static int check_duplicates(const tfx_wfile *f, const char *path, char *err, size_t errlen) {
  if (f->n_tensors < 2) return 0;
  const char **names = malloc((size_t)f->n_tensors * sizeof *names);
  if (!names) return tfx_errf(err, errlen, "%s: out of memory", path);
  for (int i = 0; i < f->n_tensors; i++) names[i] = f->tensors[i].name;
  qsort(names, (size_t)f->n_tensors, sizeof *names, cmp_name);
  int rc = 0;
  for (int i = 1; i < f->n_tensors && rc == 0; i++)
    if (strcmp(names[i - 1], names[i]) == 0)
      rc = tfx_errf(err, errlen, "%s: tensor '%s' appears twice in the header", path, names[i]);
  free(names);
  return rc;
}

typedef struct {
  uint64_t begin, end;
  int index;
} st_extent;

static int cmp_extent(const void *a, const void *b) {
  const st_extent *x = a, *y = b;
  return x->begin != y->begin ? (x->begin < y->begin ? -1 : 1) : x->index - y->index;
}

/* Two tensors sharing bytes (data_offsets overlapping, in any order) are
 * refused: sorted by begin, each must start at or after the previous end.
 * Empty tensors hold no bytes. Offsets are still relative to the data. */
static int check_overlaps(const tfx_wfile *f, const char *path, char *err, size_t errlen) {
  if (f->n_tensors < 2) return 0;
  st_extent *e = malloc((size_t)f->n_tensors * sizeof *e);
  if (!e) return tfx_errf(err, errlen, "%s: out of memory", path);
  int n = 0;
  for (int i = 0; i < f->n_tensors; i++) {
    const tfx_wfile_tensor *t = &f->tensors[i];
    uint64_t bytes = (uint64_t)tfx_type_numel(&t->type, 1) * find_dtype(t->dtype_name)->size;
    if (bytes) e[n++] = (st_extent){t->file_offset, t->file_offset + bytes, i};
  }
  qsort(e, (size_t)n, sizeof *e, cmp_extent);
  int rc = 0;
  for (int i = 1; i < n && rc == 0; i++)
    if (e[i].begin < e[i - 1].end)
      rc = tfx_errf(err, errlen, "%s: tensors '%s' and '%s' overlap: data_offsets [%llu, %llu] and [%llu, %llu]", path,
                    f->tensors[e[i - 1].index].name, f->tensors[e[i].index].name, (unsigned long long)e[i - 1].begin,
                    (unsigned long long)e[i - 1].end, (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
  free(e);
  return rc;
}

int tfx_wfile_open_safetensors(const char *path, tfx_wfile *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  uint64_t file_size = 0;
  FILE *fp = tfx_wfile_fopen(path, &file_size, err, errlen);
  if (!fp) return -1;
  unsigned char h8[8];
  if (file_size < 8 || read_all(fp, h8, 8)) {
    fclose(fp);
    return tfx_errf(err, errlen, "%s: not a safetensors file: %llu bytes is too short for the 8-byte header length",
                    path, (unsigned long long)file_size);
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | h8[i];
  if (n > file_size - 8) {
    fclose(fp);
    return tfx_errf(err, errlen,
                    "%s: not a safetensors file: the header length %llu exceeds the file size (%llu bytes)", path,
                    (unsigned long long)n, (unsigned long long)file_size);
  }
  if (n > ST_MAX_HEADER) {
    fclose(fp);
    return tfx_errf(err, errlen, "%s: the safetensors header length %llu exceeds the limit of %u bytes", path,
                    (unsigned long long)n, ST_MAX_HEADER);
  }
  char *text = malloc(n ? (size_t)n : 1);
  if (!text) {
    fclose(fp);
    return tfx_errf(err, errlen, "%s: out of memory", path);
  }
  int rd = read_all(fp, text, (size_t)n);
  fclose(fp);
  if (rd) {
    free(text);
    return tfx_errf(err, errlen, "%s: cannot read the safetensors header", path);
  }
  char jerr[256];
  tfx_fe_json *root = tfx_fe_json_parse(text, (size_t)n, jerr, sizeof jerr);
  free(text);
  if (!root) return tfx_errf(err, errlen, "%s: bad safetensors header: invalid JSON %s", path, jerr);
  int rc = 0;
  if (root->kind != TFX_FE_JSON_OBJECT) {
    rc = tfx_errf(err, errlen, "%s: bad safetensors header: expected a JSON object, got %s", path,
                  tfx_fe_json_kind_name(root->kind));
    goto done;
  }
  out->tensors = calloc((size_t)(root->n > 0 ? root->n : 1), sizeof *out->tensors);
  if (!out->tensors) {
    rc = tfx_errf(err, errlen, "%s: out of memory", path);
    goto done;
  }
  uint64_t data_start = 8 + n, data_size = file_size - data_start;
  for (int i = 0; i < root->n && rc == 0; i++) {
    const char *name = root->keys[i];
    if (strcmp(name, "__metadata__") == 0) continue;
    if (!name[0]) {
      rc = tfx_errf(err, errlen, "%s: a tensor has an empty name", path);
      break;
    }
    rc = add_entry(out, path, name, &root->items[i], data_size, err, errlen);
  }
  if (rc == 0) rc = check_duplicates(out, path, err, errlen);
  if (rc == 0) rc = check_overlaps(out, path, err, errlen);
  if (rc == 0) {
    for (int i = 0; i < out->n_tensors; i++) out->tensors[i].file_offset += data_start;
    out->path = strdup(path);
    out->format = "safetensors";
    out->file_size = file_size;
    if (!out->path) rc = tfx_errf(err, errlen, "%s: out of memory", path);
  }
done:
  tfx_fe_json_free(root);
  if (rc) tfx_wfile_close(out);
  return rc;
}
