/* frontend/weights_gguf.c — reads the tensor table of a GGUF file (v2 and
 * v3; the layout is in gguf.h) and holds the ggml type table gguf.h
 * declares. Every field is validated before any tensor data is read, each
 * error naming the file and the field: the magic and version, the counts
 * against what the file can hold, every string's and array's length, every
 * metadata value type (arrays of arrays included), general.alignment (a u32
 * power of two), each tensor's name (non-empty, no NUL, unique), n_dims,
 * dims (their product overflow-checked), ggml type (ne0 a multiple of its
 * block) and offset (aligned, inside the data section, not overlapping
 * another tensor). GGUF dims are innermost first: ne = [K, N] is the [N, K]
 * row-major tensor of a .tfx param. Tensors whose ggml type tfxc cannot read
 * are listed (TFX_WF_UNSUPPORTED): binding one is an error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "weights.h"

static const tfx_gguf_type gguf_types[] = {
    {0, "F32", 1, 4, TFX_DT_F32},           {1, "F16", 1, 2, TFX_DT_F16},
    {2, "Q4_0", 32, 18, TFX_DT_Q4_0},       {3, "Q4_1", 32, 20, TFX_DT_COUNT},
    {6, "Q5_0", 32, 22, TFX_DT_Q5_0},       {7, "Q5_1", 32, 24, TFX_DT_COUNT},
    {8, "Q8_0", 32, 34, TFX_DT_Q8_0},       {9, "Q8_1", 32, 40, TFX_DT_COUNT},
    {10, "Q2_K", 256, 84, TFX_DT_COUNT},    {11, "Q3_K", 256, 110, TFX_DT_Q3_K},
    {12, "Q4_K", 256, 144, TFX_DT_Q4_K},    {13, "Q5_K", 256, 176, TFX_DT_COUNT},
    {14, "Q6_K", 256, 210, TFX_DT_Q6_K},    {15, "Q8_K", 256, 292, TFX_DT_COUNT},
    {16, "IQ2_XXS", 256, 66, TFX_DT_COUNT}, {17, "IQ2_XS", 256, 74, TFX_DT_COUNT},
    {18, "IQ3_XXS", 256, 98, TFX_DT_COUNT}, {19, "IQ1_S", 256, 50, TFX_DT_COUNT},
    {20, "IQ4_NL", 32, 18, TFX_DT_COUNT},   {21, "IQ3_S", 256, 110, TFX_DT_COUNT},
    {22, "IQ2_S", 256, 82, TFX_DT_COUNT},   {23, "IQ4_XS", 256, 136, TFX_DT_COUNT},
    {24, "I8", 1, 1, TFX_DT_COUNT},         {25, "I16", 1, 2, TFX_DT_COUNT},
    {26, "I32", 1, 4, TFX_DT_COUNT},        {27, "I64", 1, 8, TFX_DT_COUNT},
    {28, "F64", 1, 8, TFX_DT_COUNT},        {29, "IQ1_M", 256, 56, TFX_DT_COUNT},
    {30, "BF16", 1, 2, TFX_DT_BF16},        {34, "TQ1_0", 256, 54, TFX_DT_COUNT},
    {35, "TQ2_0", 256, 66, TFX_DT_TQ2_0},   {39, "MXFP4", 32, 17, TFX_DT_COUNT},
};
#define N_GGUF_TYPES (sizeof gguf_types / sizeof gguf_types[0])

const tfx_gguf_type *tfx_gguf_type_of(uint32_t id) {
  for (size_t i = 0; i < N_GGUF_TYPES; i++)
    if (gguf_types[i].id == id) return &gguf_types[i];
  return NULL;
}

const tfx_gguf_type *tfx_gguf_type_for(tfx_dtype dt) {
  if (dt == TFX_DT_TQ2_T) dt = TFX_DT_TQ2_0; /* ternary: TQ2_0's bytes, its one d in every block */
  for (size_t i = 0; i < N_GGUF_TYPES; i++)
    if (gguf_types[i].dtype == dt && dt != TFX_DT_COUNT) return &gguf_types[i];
  return NULL;
}

int tfx_gguf_value_size(uint32_t vtype) {
  static const int sizes[TFX_GGUF_VALUE_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  return vtype < TFX_GGUF_VALUE_TYPES ? sizes[vtype] : 0;
}

const char *tfx_gguf_value_name(uint32_t vtype) {
  static const char *const names[TFX_GGUF_VALUE_TYPES] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                          "int32",  "float32", "bool",   "string", "array",
                                                          "uint64", "int64",   "float64"};
  return vtype < TFX_GGUF_VALUE_TYPES ? names[vtype] : "?";
}

/* ---- a bounded reader over the header ---- */

typedef struct {
  FILE *fp;
  const char *path;
  uint64_t pos, size; /* the next byte's offset; the file's size */
  char *err;
  size_t errlen;
} rd;

/* Reads n bytes (dst NULL: skips them); what names the field for the error. */
static int rd_bytes(rd *r, void *dst, uint64_t n, const char *what) {
  if (n > r->size - r->pos)
    return tfx_errf(r->err, r->errlen,
                    "%s: bad GGUF file: %s (%llu bytes at offset %llu) runs past the end of the file (%llu bytes)",
                    r->path, what, (unsigned long long)n, (unsigned long long)r->pos, (unsigned long long)r->size);
  if (dst ? fread(dst, 1, (size_t)n, r->fp) != n : fseeko(r->fp, (off_t)n, SEEK_CUR) != 0)
    return tfx_errf(r->err, r->errlen, "%s: cannot read %s at offset %llu", r->path, what, (unsigned long long)r->pos);
  r->pos += n;
  return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) {
  uint8_t b[4];
  if (rd_bytes(r, b, 4, what)) return -1;
  *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return 0;
}

static int rd_u64(rd *r, uint64_t *v, const char *what) {
  uint8_t b[8];
  if (rd_bytes(r, b, 8, what)) return -1;
  *v = 0;
  for (int i = 7; i >= 0; i--) *v = *v << 8 | b[i];
  return 0;
}

/* A string: u64 length (at most max) then the bytes; *out (when out is not
 * NULL) gets a malloc'd, NUL-terminated copy, which must hold no NUL byte. */
static int rd_string(rd *r, const char *what, uint64_t max, char **out) {
  char buf[160];
  uint64_t n;
  snprintf(buf, sizeof buf, "the length of %s", what);
  if (rd_u64(r, &n, buf)) return -1;
  if (n > max)
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: %s is %llu bytes long (at most %llu)", r->path, what,
                    (unsigned long long)n, (unsigned long long)max);
  if (!out) return rd_bytes(r, NULL, n, what);
  if (n > r->size - r->pos) return rd_bytes(r, NULL, n, what); /* the error */
  char *s = malloc((size_t)n + 1);
  if (!s) return tfx_errf(r->err, r->errlen, "%s: out of memory", r->path);
  if (rd_bytes(r, s, n, what)) {
    free(s);
    return -1;
  }
  s[n] = 0;
  if (strlen(s) != n) {
    free(s);
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: %s holds a NUL byte", r->path, what);
  }
  *out = s;
  return 0;
}

/* One metadata value of type vt (depth: arrays nested so far). */
static int rd_value(rd *r, uint32_t vt, const char *key, int depth) {
  char what[400];
  if (vt >= TFX_GGUF_VALUE_TYPES)
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: metadata '%s' has an unknown value type %u (0..12)", r->path,
                    key, vt);
  if (vt == TFX_GGUF_STRING) {
    snprintf(what, sizeof what, "the string value of metadata '%s'", key);
    return rd_string(r, what, UINT64_MAX, NULL);
  }
  if (vt != TFX_GGUF_ARRAY) {
    snprintf(what, sizeof what, "the %s value of metadata '%s'", tfx_gguf_value_name(vt), key);
    return rd_bytes(r, NULL, (uint64_t)tfx_gguf_value_size(vt), what);
  }
  if (depth >= TFX_GGUF_MAX_DEPTH)
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: metadata '%s' nests arrays more than %d deep", r->path, key,
                    TFX_GGUF_MAX_DEPTH);
  uint32_t et;
  uint64_t n;
  snprintf(what, sizeof what, "the element type of array metadata '%s'", key);
  if (rd_u32(r, &et, what)) return -1;
  if (et >= TFX_GGUF_VALUE_TYPES)
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: array metadata '%s' has an unknown element type %u (0..12)",
                    r->path, key, et);
  snprintf(what, sizeof what, "the length of array metadata '%s'", key);
  if (rd_u64(r, &n, what)) return -1;
  /* every element takes at least one byte (a string or an array at least 8) */
  uint64_t least = et == TFX_GGUF_STRING ? 8 : et == TFX_GGUF_ARRAY ? 12 : (uint64_t)tfx_gguf_value_size(et);
  if (n > (r->size - r->pos) / least)
    return tfx_errf(r->err, r->errlen,
                    "%s: bad GGUF file: array metadata '%s' has %llu %s elements, more than the %llu bytes left in "
                    "the file can hold",
                    r->path, key, (unsigned long long)n, tfx_gguf_value_name(et),
                    (unsigned long long)(r->size - r->pos));
  if (et != TFX_GGUF_STRING && et != TFX_GGUF_ARRAY) {
    snprintf(what, sizeof what, "the elements of array metadata '%s'", key);
    return rd_bytes(r, NULL, n * least, what);
  }
  for (uint64_t i = 0; i < n; i++)
    if (rd_value(r, et, key, depth + 1)) return -1;
  return 0;
}

/* Grows *arr (of *cap elements of size) to hold n + 1: the counts in the
 * header are only claims, so arrays grow with what is actually read. */
static int grow(void **arr, uint64_t *cap, uint64_t n, size_t size) {
  if (n < *cap) return 0;
  uint64_t c = *cap ? *cap * 2 : 64;
  void *p = realloc(*arr, (size_t)c * size);
  if (!p) return -1;
  memset((char *)p + *cap * size, 0, (size_t)(c - *cap) * size);
  *arr = p;
  *cap = c;
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The first duplicate of names[0 .. n) (sorted in place), or NULL. */
static const char *find_duplicate(char **names, uint64_t n) {
  qsort(names, (size_t)n, sizeof *names, cmp_str);
  for (uint64_t i = 1; i < n; i++)
    if (strcmp(names[i - 1], names[i]) == 0) return names[i];
  return NULL;
}

typedef struct {
  uint64_t off, bytes;
  int index;
} extent;

static int cmp_extent(const void *a, const void *b) {
  const extent *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off ? 1 : x->index - y->index;
}

int tfx_wfile_looks_gguf(const char *path) {
  uint64_t size = 0;
  char e[8];
  FILE *fp = tfx_wfile_fopen(path, &size, e, sizeof e);
  if (!fp) return 0;
  char m[4];
  int ok = fread(m, 1, 4, fp) == 4 && memcmp(m, TFX_GGUF_MAGIC, 4) == 0;
  fclose(fp);
  return ok;
}

/* The metadata section: checks every key and value; *alignment from
 * general.alignment. */
static int read_metadata(rd *r, uint64_t n_kv, uint64_t *alignment) {
  char **keys = NULL;
  uint64_t cap = 0, i = 0;
  int rc = 0;
  for (; i < n_kv && rc == 0; i++) {
    if (grow((void **)&keys, &cap, i, sizeof *keys)) {
      rc = tfx_errf(r->err, r->errlen, "%s: out of memory", r->path);
      break;
    }
    char what[64];
    snprintf(what, sizeof what, "metadata key %llu", (unsigned long long)i);
    if ((rc = rd_string(r, what, TFX_GGUF_MAX_KEY, &keys[i]))) break;
    if (!keys[i][0]) {
      rc = tfx_errf(r->err, r->errlen, "%s: bad GGUF file: metadata key %llu is empty", r->path, (unsigned long long)i);
      break;
    }
    uint32_t vt;
    char vwhat[TFX_GGUF_MAX_KEY / 256 + 128];
    snprintf(vwhat, sizeof vwhat, "the value type of metadata '%.64s'", keys[i]);
    if ((rc = rd_u32(r, &vt, vwhat))) break;
    if (strcmp(keys[i], "general.alignment") == 0) {
      if (vt != TFX_GGUF_UINT32) {
        rc = tfx_errf(r->err, r->errlen, "%s: bad GGUF file: general.alignment must be a uint32, got %s", r->path,
                      tfx_gguf_value_name(vt));
        break;
      }
      uint32_t a;
      if ((rc = rd_u32(r, &a, "the value of general.alignment"))) break;
      if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 30)) {
        rc = tfx_errf(r->err, r->errlen,
                      "%s: bad GGUF file: general.alignment = %u is not a power of two (at most 2^30)", r->path, a);
        break;
      }
      *alignment = a;
      continue;
    }
    rc = rd_value(r, vt, keys[i], 0);
  }
  if (rc == 0 && n_kv > 1) {
    const char *dup = find_duplicate(keys, n_kv);
    if (dup) rc = tfx_errf(r->err, r->errlen, "%s: bad GGUF file: metadata key '%.200s' appears twice", r->path, dup);
  }
  for (uint64_t k = 0; k < cap; k++) free(keys[k]);
  free(keys);
  return rc;
}

/* One tensor info into t (name, shape, storage, offset relative to the data
 * section; bytes into *bytes). */
static int read_tensor_info(rd *r, uint64_t i, uint64_t alignment, tfx_wfile_tensor *t, uint64_t *bytes) {
  char what[160];
  snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
  if (rd_string(r, what, TFX_GGUF_MAX_NAME, &t->name)) return -1;
  const char *nm = t->name;
  if (!nm[0])
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: tensor %llu has an empty name", r->path,
                    (unsigned long long)i);
  uint32_t n_dims, type;
  snprintf(what, sizeof what, "n_dims of tensor '%s'", nm);
  if (rd_u32(r, &n_dims, what)) return -1;
  if (n_dims < 1 || n_dims > TFX_GGUF_MAX_DIMS)
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: tensor '%s' has n_dims = %u (1..%d)", r->path, nm, n_dims,
                    TFX_GGUF_MAX_DIMS);
  uint64_t ne[TFX_GGUF_MAX_DIMS], numel = 1;
  for (uint32_t d = 0; d < n_dims; d++) {
    snprintf(what, sizeof what, "ne[%u] of tensor '%s'", d, nm);
    if (rd_u64(r, &ne[d], what)) return -1;
    if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX)
      return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: tensor '%s' has ne[%u] = %llu (1..2^63-1)", r->path, nm, d,
                      (unsigned long long)ne[d]);
    if (ne[d] > (uint64_t)INT64_MAX / numel)
      return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: tensor '%s' has more than 2^63 elements", r->path, nm);
    numel *= ne[d];
  }
  snprintf(what, sizeof what, "the type of tensor '%s'", nm);
  if (rd_u32(r, &type, what)) return -1;
  const tfx_gguf_type *gt = tfx_gguf_type_of(type);
  if (!gt)
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: tensor '%s' has an unknown ggml type %u", r->path, nm, type);
  if (ne[0] % (uint64_t)gt->block)
    return tfx_errf(r->err, r->errlen,
                    "%s: bad GGUF file: tensor '%s' is %s but its row length ne[0] = %llu is not a multiple of the "
                    "%s block (%d)",
                    r->path, nm, gt->name, (unsigned long long)ne[0], gt->name, gt->block);
  uint64_t blocks = numel / (uint64_t)gt->block;
  if (blocks > UINT64_MAX / (uint64_t)gt->block_bytes)
    return tfx_errf(r->err, r->errlen, "%s: bad GGUF file: tensor '%s' needs more than 2^64 bytes", r->path, nm);
  *bytes = blocks * (uint64_t)gt->block_bytes;
  snprintf(what, sizeof what, "the offset of tensor '%s'", nm);
  if (rd_u64(r, &t->file_offset, what)) return -1;
  if (t->file_offset % alignment)
    return tfx_errf(r->err, r->errlen,
                    "%s: bad GGUF file: tensor '%s' has offset %llu, not a multiple of the alignment %llu", r->path, nm,
                    (unsigned long long)t->file_offset, (unsigned long long)alignment);
  int64_t dims[TFX_MAX_RANK];
  if (n_dims > TFX_MAX_RANK)
    return tfx_errf(r->err, r->errlen, "%s: tensor '%s' has %u dims (at most %d is supported)", r->path, nm, n_dims,
                    TFX_MAX_RANK);
  for (uint32_t d = 0; d < n_dims; d++) dims[d] = (int64_t)ne[n_dims - 1 - d]; /* innermost last */
  t->type = tfx_type_make(TFX_DT_F32, (int)n_dims, dims);
  t->dtype_name = gt->name;
  t->storage = gt->dtype == TFX_DT_COUNT ? TFX_DT_F32 : gt->dtype;
  t->dtype = gt->dtype == TFX_DT_COUNT  ? TFX_WF_UNSUPPORTED
             : gt->dtype == TFX_DT_F32  ? TFX_WF_F32
             : gt->dtype == TFX_DT_F16  ? TFX_WF_F16
             : gt->dtype == TFX_DT_BF16 ? TFX_WF_BF16
                                        : TFX_WF_BLOCK;
  return 0;
}

int tfx_wfile_open_gguf(const char *path, tfx_wfile *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  uint64_t file_size = 0;
  FILE *fp = tfx_wfile_fopen(path, &file_size, err, errlen);
  if (!fp) return -1;
  rd r = {fp, path, 0, file_size, err, errlen};
  char magic[4];
  uint32_t version;
  uint64_t n_tensors, n_kv, alignment = TFX_GGUF_DEFAULT_ALIGNMENT;
  extent *ext = NULL;
  char **names = NULL;
  int rc = -1;
  if (r.size < 4 || fread(magic, 1, 4, fp) != 4 || memcmp(magic, TFX_GGUF_MAGIC, 4) != 0) {
    tfx_errf(err, errlen, "%s: not a GGUF file (it does not start with \"GGUF\")", path);
    goto done;
  }
  r.pos = 4;
  if (rd_u32(&r, &version, "the version")) goto done;
  if (version != 2 && version != 3) {
    if (version == 1)
      tfx_errf(err, errlen, "%s: GGUF version 1 is not supported (versions 2 and 3 are)", path);
    else if ((version & 0xffff) == 0)
      tfx_errf(err, errlen,
               "%s: GGUF version %u is not supported: a big-endian GGUF file? (little-endian versions 2 "
               "and 3 are)",
               path, version);
    else
      tfx_errf(err, errlen, "%s: GGUF version %u is not supported (versions 2 and 3 are)", path, version);
    goto done;
  }
  if (rd_u64(&r, &n_tensors, "tensor_count") || rd_u64(&r, &n_kv, "metadata_kv_count")) goto done;
  /* a tensor info takes at least 8 + 1 + 4 + 8 + 4 + 8 bytes, a key-value 8 + 1 + 4 + 1 */
  if (n_tensors > (r.size - r.pos) / 33 || n_tensors > (1u << 24)) {
    tfx_errf(err, errlen, "%s: bad GGUF file: tensor_count = %llu is more than the file can hold", path,
             (unsigned long long)n_tensors);
    goto done;
  }
  if (n_kv > (r.size - r.pos) / 14) {
    tfx_errf(err, errlen, "%s: bad GGUF file: metadata_kv_count = %llu is more than the file can hold", path,
             (unsigned long long)n_kv);
    goto done;
  }
  if (read_metadata(&r, n_kv, &alignment)) goto done;
  uint64_t cap_t = 0, cap_e = 0, cap_n = 0;
  for (uint64_t i = 0; i < n_tensors; i++) {
    if (grow((void **)&out->tensors, &cap_t, i, sizeof *out->tensors) || grow((void **)&ext, &cap_e, i, sizeof *ext) ||
        grow((void **)&names, &cap_n, i, sizeof *names)) {
      tfx_errf(err, errlen, "%s: out of memory", path);
      goto done;
    }
    tfx_wfile_tensor *t = &out->tensors[i];
    int bad = read_tensor_info(&r, i, alignment, t, &ext[i].bytes);
    if (t->name) out->n_tensors = (int)i + 1; /* owned: freed by tfx_wfile_close */
    if (bad) goto done;
    ext[i].off = t->file_offset;
    ext[i].index = (int)i;
    names[i] = t->name;
  }
  if (n_tensors > 1) {
    const char *dup = find_duplicate(names, n_tensors);
    if (dup) {
      tfx_errf(err, errlen, "%s: bad GGUF file: tensor '%s' appears twice", path, dup);
      goto done;
    }
  }
  /* the data section starts at the next multiple of the alignment */
  uint64_t data_start = r.pos + (alignment - r.pos % alignment) % alignment;
  if (data_start > r.size) {
    tfx_errf(err, errlen,
             "%s: bad GGUF file: the data section (offset %llu) starts past the end of the file (%llu bytes)", path,
             (unsigned long long)data_start, (unsigned long long)r.size);
    goto done;
  }
  uint64_t data_size = r.size - data_start;
  if (n_tensors > 1) qsort(ext, (size_t)n_tensors, sizeof *ext, cmp_extent);
  for (uint64_t i = 0; i < n_tensors; i++) {
    const tfx_wfile_tensor *t = &out->tensors[ext[i].index];
    if (ext[i].off > data_size || ext[i].bytes > data_size - ext[i].off) {
      tfx_errf(err, errlen,
               "%s: bad GGUF file: tensor '%s' (%llu bytes of %s at offset %llu) runs past the end of the data "
               "section (%llu bytes)",
               path, t->name, (unsigned long long)ext[i].bytes, t->dtype_name, (unsigned long long)ext[i].off,
               (unsigned long long)data_size);
      goto done;
    }
    if (i > 0 && ext[i - 1].off + ext[i - 1].bytes > ext[i].off) {
      tfx_errf(err, errlen, "%s: bad GGUF file: tensors '%s' and '%s' overlap (offsets %llu and %llu)", path,
               out->tensors[ext[i - 1].index].name, t->name, (unsigned long long)ext[i - 1].off,
               (unsigned long long)ext[i].off);
      goto done;
    }
  }
  for (int i = 0; i < out->n_tensors; i++) out->tensors[i].file_offset += data_start;
  out->path = strdup(path);
  out->format = "gguf";
  out->file_size = r.size;
  if (!out->path) {
    tfx_errf(err, errlen, "%s: out of memory", path);
    goto done;
  }
  rc = 0;
done:
  fclose(fp);
  free(ext);
  free(names);
  if (rc) tfx_wfile_close(out);
  return rc;
}
