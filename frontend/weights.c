/* frontend/weights.c — binding PARAM nodes to weights: lays out the blob (one
 * 64-byte-aligned slot per distinct param name, in node order), then either
 * reads each tensor straight from a weights file into its slot (matching by
 * name — after the weights statement's renaming rules — and shape, reporting
 * missing, mis-shaped and unused tensors) or fills every slot
 * deterministically for `random[:SEED]`. A param read only as a weight
 * operand keeps the tensor's storage format (f16, bf16, q8_0, q4_0, q4_k,
 * q6_k) as stored; any other is decoded to f32 through the format table.
 * When the caller plans the formats the params end in (--quantize:
 * tfx_bind_options.plan_formats), each slot is laid out in its final format
 * and each tensor is quantized into it as it is read: one tensor in the
 * bound format at a time, never the whole blob (issue #17). */
#include "weights.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOB_ALIGN 64
#define MAX_UNUSED_REPORTS 8              /* then one summary line */
#define MAX_BLOB_BYTES ((int64_t)1 << 46) /* 64 TiB: anything larger is a bogus shape */

void tfx_weights_free(tfx_weights *w) {
  if (!w) return;
  free(w->data);
  w->data = NULL;
  w->size = 0;
}

typedef struct {
  tfx_bind_error_fn fn;
  void *ctx;
  int count;
} reporter;

static void report(reporter *r, int node_id, const char *fmt, ...) {
  char msg[1024], shown[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tfx_wfile_escape(msg, shown, sizeof shown); /* names from files: invalid UTF-8 as \xNN */
  r->count++;
  if (r->fn) r->fn(r->ctx, node_id, shown);
}

/* Bytes of a static f32 type, or -1 if it has T or is absurdly large. */
static int64_t param_bytes(const tfx_type *t) {
  int64_t n = 4;
  for (int i = 0; i < t->rank; i++) {
    if (t->dims[i] <= 0 || t->dims[i] > MAX_BLOB_BYTES / n) return -1;
    n *= t->dims[i];
  }
  return n;
}

/* only_w[i] = 1 when PARAM i is used and every use of every param of its
 * name reads it as a weight operand (then it may keep a storage format). */
static void weight_only(const tfx_graph *g, char *only_w) {
  size_t n = (size_t)(g->n_nodes > 0 ? g->n_nodes : 1);
  char *w_use = calloc(n, 1), *other = calloc(n, 1);
  for (int i = 0; i < g->n_nodes; i++) only_w[i] = 0;
  if (w_use && other) {
    for (int j = 0; j < g->n_nodes; j++)
      for (int i = 0; i < g->nodes[j].n_inputs; i++) {
        int p = g->nodes[j].inputs[i];
        if (p < 0 || p >= g->n_nodes || g->nodes[p].op != TFX_OP_PARAM) continue;
        if (tfx_node_weight_operand(&g->nodes[j], i))
          w_use[p] = 1;
        else
          other[p] = 1;
      }
    if (g->output >= 0 && g->output < g->n_nodes) other[g->output] = 1;
    for (int i = 0; i < g->n_nodes; i++) {
      const tfx_node *p = &g->nodes[i];
      if (p->op != TFX_OP_PARAM || !p->name) continue;
      int any_w = 0, any_other = 0;
      for (int j = 0; j < g->n_nodes; j++)
        if (g->nodes[j].op == TFX_OP_PARAM && g->nodes[j].name && strcmp(g->nodes[j].name, p->name) == 0) {
          any_w |= w_use[j];
          any_other |= other[j];
        }
      only_w[i] = (char)(any_w && !any_other);
    }
  }
  free(w_use);
  free(other);
}

static int is_storage(tfx_dtype dt) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  return f && f->storage;
}

static int64_t align_up(int64_t v) { return (v + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN; }

/* ---- names ---- */

/* A map of names to indices (open addressing; the first index put for a
 * name stays): binding looks names up in constant time, so a model of
 * 65,536 params binds in linear time (issue #17). */
typedef struct {
  const char **names;
  int *idx;
  size_t mask;
} name_map;

static uint64_t name_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
  return h;
}

static int nm_init(name_map *m, int n) {
  size_t cap = 16;
  while (cap < 2 * (size_t)(n > 0 ? n : 0) + 2) cap <<= 1;
  m->names = calloc(cap, sizeof *m->names);
  m->idx = malloc(cap * sizeof *m->idx);
  m->mask = cap - 1;
  return m->names && m->idx ? 0 : -1;
}

static void nm_free(name_map *m) {
  free(m->names);
  free(m->idx);
  m->names = NULL;
  m->idx = NULL;
}

/* The index put for name, or -1. */
static int nm_get(const name_map *m, const char *name) {
  for (size_t h = name_hash(name) & m->mask;; h = (h + 1) & m->mask) {
    if (!m->names[h]) return -1;
    if (strcmp(m->names[h], name) == 0) return m->idx[h];
  }
}

/* Puts name -> i unless the name is there; returns the index it maps to. */
static int nm_put(name_map *m, const char *name, int i) {
  size_t h = name_hash(name) & m->mask;
  for (; m->names[h]; h = (h + 1) & m->mask)
    if (strcmp(m->names[h], name) == 0) return m->idx[h];
  m->names[h] = name;
  m->idx[h] = i;
  return i;
}

/* ---- layout ---- */

/* slot_of[i] = index of the first PARAM with the same name as node i (itself
 * when it is the first); offsets assigned to first occurrences only, each
 * slot sized for the format plan gives it (bo->plan_formats; else its bound
 * format). Returns the blob size or -1 after reporting errors. */
static int64_t layout(tfx_graph *g, int *first, const tfx_dtype *stored, const tfx_bind_options *bo,
                      tfx_quant_target *plan, reporter *r) {
  char s0[64], s1[64];
  int64_t off = 0;
  int errors = r->count;
  name_map names;
  if (nm_init(&names, g->n_nodes)) {
    nm_free(&names);
    report(r, -1, "out of memory");
    return -1;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    n->weight_offset = -1;
    first[i] = -1;
    if (n->op != TFX_OP_PARAM) continue;
    if (!n->name || !n->name[0]) {
      report(r, i, "param %%%d has no name", i);
      continue;
    }
    int64_t bytes = param_bytes(&n->type);
    if (n->type.dtype != TFX_DT_F32 || bytes < 0) {
      report(r, i, "param '%s' has an unsupported type %s", n->name, tfx_type_str(&n->type, s0, sizeof s0));
      continue;
    }
    if (stored && stored[i] != TFX_DT_F32) n->type.dtype = stored[i]; /* the format the file stores it in, kept */
    first[i] = nm_put(&names, n->name, i);
    if (first[i] != i && !tfx_type_equal(&g->nodes[first[i]].type, &n->type))
      report(r, i, "param '%s' is declared as %s and as %s", n->name,
             tfx_type_str(&g->nodes[first[i]].type, s0, sizeof s0), tfx_type_str(&n->type, s1, sizeof s1));
  }
  nm_free(&names);
  if (r->count > errors) return -1;
  for (int i = 0; i < g->n_nodes; i++) plan[i] = (tfx_quant_target){g->nodes[i].type.dtype};
  if (bo && bo->plan_formats) {
    char msg[512] = "";
    if (bo->plan_formats(bo->plan_ctx, g, plan, msg, sizeof msg) < 0) {
      report(r, -1, "%s", msg);
      return -1;
    }
  }
  for (int i = 0; i < g->n_nodes; i++) {
    tfx_node *n = &g->nodes[i];
    if (first[i] != i) continue;
    tfx_type t = n->type;
    t.dtype = plan[i].dtype;
    int64_t bytes = tfx_type_bytes(&t, 1);
    if (off > MAX_BLOB_BYTES - align_up(bytes)) {
      report(r, i, "the weights blob exceeds %lld bytes at param '%s'", (long long)MAX_BLOB_BYTES, n->name);
      return -1;
    }
    n->weight_offset = off;
    off += align_up(bytes);
  }
  return off;
}

/* 1 when the plan gives param i's slot another format than it is bound in:
 * the tensor is read into a buffer, checked, then quantized into the slot. */
static int converts(const tfx_graph *g, const tfx_quant_target *plan, int i) {
  return plan[i].dtype != g->nodes[i].type.dtype;
}

/* Quantizes param i's data src (its bound format) into its slot in the
 * plan's format, unless binding reported an error since errors_before. */
static void quantize_into(const tfx_graph *g, int i, const tfx_quant_target *plan, const uint8_t *src, tfx_weights *out,
                          int errors_before, reporter *r) {
  char msg[512];
  if (r->count > errors_before) return;
  const tfx_node *n = &g->nodes[i];
  if (tfx_quantize_param(n, src, plan[i].dtype, out->data + n->weight_offset, msg, sizeof msg)) report(r, i, "%s", msg);
}

/* The slot's bytes in the format it ends in. */
static int64_t slot_bytes(const tfx_node *n, const tfx_quant_target *plan, int i) {
  tfx_type t = n->type;
  t.dtype = plan[i].dtype;
  return tfx_type_bytes(&t, 1);
}

/* Every param takes the format the plan gives it (after a successful bind). */
static void apply_plan(tfx_graph *g, const tfx_quant_target *plan) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM) g->nodes[i].type.dtype = plan[i].dtype;
}

/* Allocates the blob; copies offsets to duplicate params. */
static int alloc_blob(tfx_graph *g, const int *first, int64_t total, tfx_weights *out, reporter *r) {
  size_t cap = (size_t)(total > 0 ? total : BLOB_ALIGN);
  out->data = aligned_alloc(BLOB_ALIGN, cap);
  if (!out->data) {
    report(r, -1, "cannot allocate %lld bytes for the weights blob", (long long)total);
    return -1;
  }
  out->size = (size_t)total;
  for (int i = 0; i < g->n_nodes; i++)
    if (first[i] >= 0 && first[i] != i) g->nodes[i].weight_offset = g->nodes[first[i]].weight_offset;
  g->weights_bytes = total;
  return 0;
}

/* zero the padding after a slot so the blob's bytes are deterministic */
static void zero_pad(tfx_weights *w, int64_t off, int64_t bytes) {
  int64_t end = align_up(off + bytes);
  if (end > (int64_t)w->size) end = (int64_t)w->size;
  if (end > off + bytes) memset(w->data + off + bytes, 0, (size_t)(end - off - bytes));
}

/* ---- random[:SEED] ---- */

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

/* rank-2+ params: uniform in [-1/sqrt(cols), 1/sqrt(cols)); rank-1 params
 * (norm gains, biases): 1 + uniform in [-0.1, 0.1). */
static void fill_random(float *dst, const tfx_type *t, const char *name, uint64_t seed) {
  int64_t n = tfx_type_numel(t, 1), cols = t->dims[t->rank - 1];
  float scale = 1.0f, base = 0.0f;
  if (t->rank == 1) {
    scale = 0.1f;
    base = 1.0f;
  } else {
    scale = (float)(1.0 / sqrt((double)cols));
  }
  uint64_t s = seed ^ fnv1a(name);
  splitmix64(&s);
  const float k = 2.0f / 16777216.0f; /* 2 * 2^-24 */
  int64_t i = 0;
  for (; i + 1 < n; i += 2) {
    uint64_t z = splitmix64(&s);
    dst[i] = base + scale * ((float)(uint32_t)(z >> 40) * k - 1.0f);
    dst[i + 1] = base + scale * ((float)(uint32_t)((z >> 8) & 0xffffff) * k - 1.0f);
  }
  if (i < n) dst[i] = base + scale * ((float)(uint32_t)(splitmix64(&s) >> 40) * k - 1.0f);
}

static int parse_seed(const char *spec, uint64_t *seed) {
  *seed = 0;
  if (spec[6] == 0) return 0;
  const char *p = spec + 7;
  if (!*p) return -1;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    uint64_t d = (uint64_t)(*p - '0');
    if (*seed > (UINT64_MAX - d) / 10) return -1;
    *seed = *seed * 10 + d;
  }
  return 0;
}

static int bind_random(tfx_graph *g, const char *spec, const tfx_bind_options *bo, tfx_quant_target *plan,
                       tfx_weights *out, reporter *r, int *first) {
  uint64_t seed;
  if (parse_seed(spec, &seed)) {
    report(r, -1, "bad weights spec '%s': expected random or random:SEED with a decimal SEED", spec);
    return -1;
  }
  int64_t total = layout(g, first, NULL, bo, plan, r);
  if (total < 0 || alloc_blob(g, first, total, out, r)) return -1;
  int errors = r->count;
  for (int i = 0; i < g->n_nodes; i++) {
    if (first[i] != i) continue;
    const tfx_node *n = &g->nodes[i];
    if (converts(g, plan, i)) { /* filled in f32, then quantized into the slot */
      float *tmp = malloc((size_t)(tfx_type_bytes(&n->type, 1) > 0 ? tfx_type_bytes(&n->type, 1) : 1));
      if (!tmp) {
        report(r, i, "out of memory");
        return -1;
      }
      fill_random(tmp, &n->type, n->name, seed);
      quantize_into(g, i, plan, (const uint8_t *)tmp, out, errors, r);
      free(tmp);
      if (r->count > errors) return -1;
    } else {
      fill_random((float *)(out->data + n->weight_offset), &n->type, n->name, seed);
    }
    zero_pad(out, n->weight_offset, slot_bytes(n, plan, i));
  }
  apply_plan(g, plan);
  return 0;
}

/* ---- weights files ---- */

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_freq_cis(const char *name) {
  return strcmp(name, "freq_cis_real") == 0 || strcmp(name, "freq_cis_imag") == 0;
}

/* "a, b, c, … (N tensors)"; names[i] is tensor i's name after renaming
 * (NULL: ignored) */
static void list_names(const tfx_wfile *f, char *const *names, char *buf, size_t len) {
  size_t used = 0;
  int shown = 0;
  buf[0] = 0;
  for (int i = 0; i < f->n_tensors && shown < 6 && used < len; i++) {
    if (!names[i] || is_freq_cis(names[i])) continue;
    int k = snprintf(buf + used, len - used, "%s%s", shown ? ", " : "", names[i]);
    if (k < 0) break;
    used += (size_t)k;
    shown++;
  }
  if (used < len) snprintf(buf + used, len - used, "%s(%d tensors)", shown ? ", … " : "", f->n_tensors);
}

static int read_exact(int fd, uint8_t *dst, uint64_t bytes, uint64_t off) {
  while (bytes > 0) {
    size_t chunk = bytes > (1u << 30) ? (1u << 30) : (size_t)bytes;
    ssize_t k = pread(fd, dst, chunk, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    dst += k;
    off += (uint64_t)k;
    bytes -= (uint64_t)k;
  }
  return 0;
}

/* Opens path in the given format, or guesses it (GGUF's magic, the
 * extension, then the header's shape). Returns 0, or -1 after reporting. */
static int open_wfile(const char *path, const char *format, tfx_wfile *f, reporter *r) {
  char msg[512];
  if (format && strcmp(format, "llama2c") != 0 && strcmp(format, "safetensors") != 0 && strcmp(format, "gguf") != 0) {
    report(r, -1, "%s: unknown weights format '%s' (supported: llama2c, safetensors, gguf)", path, format);
    return -1;
  }
  if (tfx_wfile_is_shard_index(path) && (!format || !strcmp(format, "safetensors"))) {
    if (tfx_wfile_open_sharded(path, f, msg, sizeof msg) == 0) return 0;
    report(r, -1, "%s", msg);
    return -1;
  }
  int gg = format ? strcmp(format, "gguf") == 0 : ends_with(path, ".gguf") || tfx_wfile_looks_gguf(path);
  int st = format ? strcmp(format, "safetensors") == 0
                  : !gg && (ends_with(path, ".safetensors") ||
                            (!ends_with(path, ".bin") && tfx_wfile_looks_safetensors(path)));
  int rc = gg   ? tfx_wfile_open_gguf(path, f, msg, sizeof msg)
           : st ? tfx_wfile_open_safetensors(path, f, msg, sizeof msg)
                : tfx_wfile_open_llama2c(path, f, msg, sizeof msg);
  if (rc == 0) return 0;
  if (format || st || gg || ends_with(path, ".bin"))
    report(r, -1, "%s", msg);
  else {
    size_t pl = strlen(path);
    const char *why = strncmp(msg, path, pl) == 0 && msg[pl] == ':' && msg[pl + 1] == ' ' ? msg + pl + 2 : msg;
    report(r, -1, "%s: cannot tell the weights format (supported: llama2c, safetensors, gguf); as llama2c: %s", path,
           why);
  }
  return -1;
}

/* A tensor bound through a binding rule (a view or a stack): the param
 * name the rule gives it, the tensor, the rule, the index along the param's
 * first axis (stacking rules, else -1) and the next binding of that name. */
typedef struct {
  char *name;
  int k, rule, next;
  int64_t index;
} vbinding;

typedef struct {
  vbinding *b;
  int n, cap;
  char *viewed; /* viewed[k]: tensor k matched a binding rule */
} vbindings;

static void vb_free(vbindings *v) {
  for (int i = 0; i < v->n; i++) free(v->b[i].name);
  free(v->b);
  free(v->viewed);
}

/* Records tensor k's matches of binding rules; -1 on failure (reported). */
static int bind_rules_of(const tfx_wfile *f, int k, const char *path, const tfx_wrename *rules, const tfx_wview *views,
                         int n_rules, vbindings *v, reporter *r) {
  char buf[1024];
  for (int i = 0; i < n_rules; i++) {
    if (!views || !tfx_wview_binds(&views[i])) continue;
    int64_t index;
    int m = tfx_wrename_match(&rules[i], views[i].stack, f->tensors[k].name, buf, sizeof buf, &index);
    if (m == 0) continue;
    if (m < 0) {
      report(r, TFX_BIND_RULE(i), "tensor '%s' of %s: its renamed name is too long", f->tensors[k].name, path);
      return -1;
    }
    if (v->n == v->cap) {
      int cap = v->cap ? 2 * v->cap : 16;
      vbinding *nb = realloc(v->b, (size_t)cap * sizeof *nb);
      if (!nb) return report(r, -1, "%s: out of memory", path), -1;
      v->b = nb;
      v->cap = cap;
    }
    vbinding *b = &v->b[v->n];
    b->name = strdup(buf);
    if (!b->name) return report(r, -1, "%s: out of memory", path), -1;
    b->k = k, b->rule = i, b->index = index, b->next = -1;
    v->n++;
    v->viewed[k] = 1;
  }
  return 0;
}

/* names[k] = tensor k's name after renaming (malloc'd), NULL when a rule
 * ignores it or when only binding rules match it (those are recorded in
 * v). Reports two tensors renamed to one name. */
static int rename_tensors(const tfx_wfile *f, const char *path, const tfx_wrename *rules, const tfx_wview *views,
                          int n_rules, const tfx_wrename *plain, int n_plain, char **names, vbindings *v, reporter *r) {
  char buf[1024];
  int errors = r->count;
  for (int k = 0; k < f->n_tensors; k++) {
    names[k] = NULL;
    if (bind_rules_of(f, k, path, rules, views, n_rules, v, r)) return -1;
    int m = tfx_wrename_apply(plain, n_plain, f->tensors[k].name, buf, sizeof buf);
    if (m < 0) {
      report(r, -1, "tensor '%s' of %s: its renamed name is too long", f->tensors[k].name, path);
      continue;
    }
    if (m == 1 && !buf[0]) continue;      /* ignored */
    if (m == 0 && v->viewed[k]) continue; /* bound through its views only */
    names[k] = strdup(buf);
    if (!names[k]) {
      report(r, -1, "%s: out of memory", path);
      return -1;
    }
  }
  if (n_rules > 0) {
    name_map seen;
    if (nm_init(&seen, f->n_tensors)) {
      nm_free(&seen);
      report(r, -1, "%s: out of memory", path);
      return -1;
    }
    for (int k = 0; k < f->n_tensors; k++) {
      int j = names[k] ? nm_put(&seen, names[k], k) : k;
      if (j != k)
        report(r, -1, "tensors '%s' and '%s' of %s are both renamed to '%s'", f->tensors[j].name, f->tensors[k].name,
               path, names[k]);
    }
    nm_free(&seen);
  }
  return r->count > errors ? -1 : 0;
}

/* Reads tensor t into dst as param type pt: the bytes as stored when pt has
 * t's format, else decoded to f32 row by row through the format table. */
static int read_tensor(int fd, const tfx_wfile_tensor *t, uint8_t *dst, const tfx_type *pt) {
  tfx_type st = *pt;
  st.dtype = t->storage;
  uint64_t bytes = (uint64_t)tfx_type_bytes(&st, 1);
  if (pt->dtype == t->storage) return read_exact(fd, dst, bytes, t->file_offset);
  const tfx_dtype_info *fi = tfx_dtype_info_of(t->storage);
  if (pt->dtype != TFX_DT_F32 || !fi || !fi->dequant_row) return -1;
  uint8_t *raw = malloc(bytes ? (size_t)bytes : 1);
  if (!raw) return -1;
  int rc = read_exact(fd, raw, bytes, t->file_offset);
  int64_t K = pt->dims[pt->rank - 1], R = K > 0 ? tfx_type_numel(pt, 1) / K : 0;
  for (int64_t r = 0; rc == 0 && r < R; r++) fi->dequant_row(raw, NULL, R, K, r, (float *)dst + r * K);
  free(raw);
  return rc;
}

/* Rows [r0, r0 + nr) of tensor t (file_row bytes each as stored) into dst
 * as type pt ([nr, K]): as stored when pt has t's format, else decoded to
 * f32 (read_tensor on a range of rows). */
static int read_tensor_rows(int fd, const tfx_wfile_tensor *t, int64_t r0, int64_t file_row, uint8_t *dst,
                            const tfx_type *pt) {
  tfx_wfile_tensor part = *t;
  part.file_offset = t->file_offset + (uint64_t)(r0 * file_row);
  return read_tensor(fd, &part, dst, pt);
}

/* The index of the (first) tensor renamed to name, or n_tensors; names maps
 * the renamed names to their tensors. */
static int find_tensor(const tfx_wfile *f, const name_map *names, const char *name) {
  int k = nm_get(names, name);
  return k < 0 ? f->n_tensors : k;
}

/* The shapes of a and b are equal (their element types aside). */
static int same_shape(const tfx_type *a, const tfx_type *b) {
  tfx_type x = *a, y = *b;
  x.dtype = y.dtype = TFX_DT_F32;
  return tfx_type_equal(&x, &y);
}

static tfx_dtype view_storage(const tfx_node *n, const tfx_wfile *f, const vbindings *v, int head,
                              const tfx_wview *views);

/* stored[i]: the format param i keeps (its tensor's storage format when every
 * use reads it as a weight and the shapes agree; for a param bound through
 * binding rules, see view_storage), else f32. */
static int choose_formats(const tfx_graph *g, const tfx_wfile *f, const name_map *names, const name_map *dmap,
                          const vbindings *v, const tfx_wview *views, tfx_dtype *stored) {
  char *only_w = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1));
  if (!only_w) return -1;
  weight_only(g, only_w);
  for (int i = 0; i < g->n_nodes; i++) {
    const tfx_node *n = &g->nodes[i];
    stored[i] = TFX_DT_F32;
    if (n->op != TFX_OP_PARAM || !n->name || !only_w[i] || n->type.dtype != TFX_DT_F32) continue;
    int k = find_tensor(f, names, n->name), head = k == f->n_tensors ? nm_get(dmap, n->name) : -1;
    if (head >= 0) stored[i] = view_storage(n, f, v, head, views);
    if (k == f->n_tensors || f->tensors[k].dtype == TFX_WF_UNSUPPORTED || !same_shape(&f->tensors[k].type, &n->type))
      continue;
    tfx_dtype dt = f->tensors[k].storage;
    const tfx_dtype_info *fi = tfx_dtype_info_of(dt);
    if (fi && tfx_dtype_weight_ok(dt) && n->type.dims[n->type.rank - 1] % fi->block == 0) stored[i] = dt;
  }
  free(only_w);
  return 0;
}

static void report_cb(void *ctx, int node_id, const char *message) { report(ctx, node_id, "%s", message); }

/* The non-finite check of param i's slot (weights_check.c), unless allowed. */
static void check_finite(const tfx_graph *g, int i, const tfx_wfile_tensor *t, const char *path, const uint8_t *data,
                         const tfx_bind_options *bo, reporter *r) {
  if (bo && bo->allow_nonfinite) return;
  const tfx_node *n = &g->nodes[i];
  tfx_nonfinite nf;
  char what[256];
  int rc = tfx_weights_find_nonfinite(&n->type, data, &nf);
  if (rc == 0) return;
  if (rc < 0) {
    report(r, i, "param '%s': cannot check tensor '%s' of %s (%s) for non-finite values", n->name, t->name, path,
           tfx_dtype_name(n->type.dtype));
    return;
  }
  tfx_weights_nonfinite_message(&n->type, &nf, what, sizeof what);
  report(r, i, "param '%s': tensor '%s' of %s (%s) holds %s (--allow-nonfinite accepts them)", n->name, t->name, path,
         t->dtype_name, what);
}

/* ---- binding rules: views and stacks (weights_view.c) ---- */

static tfx_wview_shape wshape(const tfx_type *t, int skip) {
  tfx_wview_shape w = {t->rank - skip, {0}};
  for (int j = skip; j < t->rank; j++) w.d[j - skip] = t->dims[j];
  return w;
}

static int64_t wnumel(const tfx_wview_shape *w) {
  int64_t n = 1;
  for (int j = 0; j < w->rank; j++) n *= w->d[j];
  return n;
}

static void wshape_str(const tfx_wview_shape *w, char *buf, size_t len) {
  tfx_type t = {.dtype = TFX_DT_F32, .rank = w->rank};
  for (int j = 0; j < w->rank; j++) t.dims[j] = w->d[j];
  tfx_type_str(&t, buf, len);
}

/* A view's result binds a param (or one stacked slice) of shape want when
 * the shapes are equal, or of another rank with as many elements (read
 * row-major: `[H, d]` binds `[H * d]`). */
static int view_fits(const tfx_wview_shape *got, const tfx_wview_shape *want) {
  if (got->rank != want->rank) return wnumel(got) == wnumel(want);
  for (int j = 0; j < got->rank; j++)
    if (got->d[j] != want->d[j]) return 0;
  return 1;
}

/* A view that only selects whole rows: none, or one range of the first axis
 * (the rows [*lo, *hi) of a tensor of `rows` rows). */
static int rows_only(const tfx_wview *vw, int64_t rows, int64_t *lo, int64_t *hi) {
  const tfx_wview_op *o = vw->ops;
  *lo = 0;
  *hi = rows;
  if (vw->n_ops == 0) return 1;
  if (vw->n_ops > 1 || o->kind != TFX_WV_SLICE || o->n != 1 || o->index[0]) return 0;
  *lo = o->lo[0];
  *hi = o->hi[0] == TFX_WVIEW_END ? rows : o->hi[0];
  return 1;
}

/* The storage format a param bound through binding rules keeps: its
 * tensors' common format when each binding copies whole rows (a stack, a
 * range of rows, or both) into a slice of exactly the param's shape (per
 * index) and the format can be a weight's; else f32 (decoded). */
static tfx_dtype view_storage(const tfx_node *n, const tfx_wfile *f, const vbindings *v, int head,
                              const tfx_wview *views) {
  tfx_dtype dt = f->tensors[v->b[head].k].storage;
  const tfx_dtype_info *fi = tfx_dtype_info_of(dt);
  if (dt == TFX_DT_F32 || !fi || !tfx_dtype_weight_ok(dt) || n->type.dims[n->type.rank - 1] % fi->block)
    return TFX_DT_F32;
  int stacked = views[v->b[head].rule].stack != NULL;
  tfx_wview_shape want = wshape(&n->type, stacked), out;
  char err[64];
  for (int e = head; e >= 0; e = v->b[e].next) {
    const vbinding *b = &v->b[e];
    const tfx_wfile_tensor *t = &f->tensors[b->k];
    const tfx_wview *vw = &views[b->rule];
    tfx_wview_shape in = wshape(&t->type, 0);
    int64_t lo, hi;
    if (t->dtype == TFX_WF_UNSUPPORTED || t->storage != dt || (vw->stack != NULL) != stacked ||
        !rows_only(vw, in.d[0], &lo, &hi) || tfx_wview_shape_of(vw->ops, vw->n_ops, &in, &out, err, sizeof err) ||
        out.rank != want.rank || (stacked && b->index >= n->type.dims[0]))
      return TFX_DT_F32;
    for (int j = 0; j < out.rank; j++)
      if (out.d[j] != want.d[j]) return TFX_DT_F32;
  }
  return dt;
}

/* Checks the bindings (chain from head) that fill param i: each tensor's
 * dtype, view and shape, and for a stacking rule every index once, none out
 * of range. 0, or -1 after reporting (at the rule). */
static int check_view_param(const tfx_graph *g, int i, const tfx_wfile *f, const vbindings *v, int head,
                            const tfx_wview *views, const char *path, reporter *r) {
  const tfx_node *n = &g->nodes[i];
  const tfx_wview *hr = &views[v->b[head].rule];
  int errors = r->count, stacked = hr->stack != NULL, count = 0;
  char err[512], s0[64], s1[64];
  tfx_type nt = n->type;
  nt.dtype = TFX_DT_F32;
  tfx_type_str(&nt, s0, sizeof s0);
  if (stacked && n->type.rank < 2) {
    report(r, TFX_BIND_RULE(v->b[head].rule),
           "param '%s' %s: a stacking rule ([%s]) fills a param's first axis, "
           "but this param is 1-D",
           n->name, s0, hr->stack);
    return -1;
  }
  int64_t E = stacked ? n->type.dims[0] : 1;
  tfx_wview_shape want = wshape(&n->type, stacked);
  char *seen = calloc((size_t)E, 1);
  if (!seen) return report(r, -1, "out of memory"), -1;
  for (int e = head; e >= 0; e = v->b[e].next) {
    const vbinding *b = &v->b[e];
    const tfx_wfile_tensor *t = &f->tensors[b->k];
    const tfx_wview *ru = &views[b->rule];
    int at = TFX_BIND_RULE(b->rule);
    if ((ru->stack != NULL) != stacked) {
      report(r, at, "param '%s' is bound both by a stacking rule and by a rule that is not", n->name);
      continue;
    }
    if (!stacked && ++count > 1) {
      report(r, at, "param '%s' is bound twice: by tensor '%s' and by tensor '%s' of %s", n->name,
             f->tensors[v->b[head].k].name, t->name, path);
      continue;
    }
    const tfx_dtype_info *fi = tfx_dtype_info_of(t->storage);
    if (t->dtype == TFX_WF_UNSUPPORTED || !fi || (t->storage != TFX_DT_F32 && !fi->dequant_row) ||
        t->type.dims[t->type.rank - 1] % fi->block) {
      report(r, at, "param '%s': tensor '%s' of %s has dtype %s, which a view cannot read", n->name, t->name, path,
             t->dtype_name);
      continue;
    }
    tfx_wview_shape in = wshape(&t->type, 0), out;
    if (tfx_wview_shape_of(ru->ops, ru->n_ops, &in, &out, err, sizeof err)) {
      report(r, at, "tensor '%s' of %s: %s", t->name, path, err);
      continue;
    }
    if (!view_fits(&out, &want)) {
      wshape_str(&want, s1, sizeof s1);
      wshape_str(&out, err, sizeof err);
      report(r, at, "param '%s' %s needs %s%s but tensor '%s' of %s, through this rule, is %s", n->name, s0, s1,
             stacked ? " per index" : "", t->name, path, err);
      continue;
    }
    if (stacked) {
      if (b->index >= E) {
        report(r, at, "tensor '%s' of %s: {%s} = %lld is out of range: param '%s' %s stacks %lld", t->name, path,
               ru->stack, (long long)b->index, n->name, s0, (long long)E);
        continue;
      }
      if (seen[b->index]) {
        report(r, at, "param '%s': two tensors for {%s} = %lld (the second is '%s')", n->name, ru->stack,
               (long long)b->index, t->name);
        continue;
      }
      seen[b->index] = 1;
    }
  }
  if (stacked && r->count == errors) {
    int64_t missing = 0, firstm = -1;
    for (int64_t e = 0; e < E; e++)
      if (!seen[e] && missing++ == 0) firstm = e;
    if (missing)
      report(r, TFX_BIND_RULE(v->b[head].rule), "param '%s' %s: no tensor of %s for {%s} = %lld%s", n->name, s0, path,
             hr->stack, (long long)firstm, missing > 1 ? " (and others)" : "");
  }
  free(seen);
  return r->count > errors ? -1 : 0;
}

/* The descriptor a tensor is read from: its shard's, or the one file's
 * (the loaders of single files leave tfx_wfile_tensor.shard unset). */
static int fd_of(const int *fds, const tfx_wfile *f, const tfx_wfile_tensor *t) {
  return fds[f->n_shards > 0 ? t->shard : 0];
}

/* Reads the tensors of param i's bindings (chain from head) through their
 * views into its f32 slot. 0, or -1 (the tensor that failed in *bad). */
static int read_view_param(const int *fds, const tfx_graph *g, int i, const tfx_wfile *f, const vbindings *v, int head,
                           const tfx_wview *views, uint8_t *slot, int *bad) {
  const tfx_node *n = &g->nodes[i];
  int stacked = views[v->b[head].rule].stack != NULL;
  int64_t per = tfx_type_numel(&n->type, 1) / (stacked ? n->type.dims[0] : 1);
  if (n->type.dtype != TFX_DT_F32) { /* kept as stored: whole rows copied (view_storage) */
    int64_t per_bytes = tfx_type_bytes(&n->type, 1) / (stacked ? n->type.dims[0] : 1), lo, hi;
    for (int e = head; e >= 0; e = v->b[e].next) {
      const vbinding *b = &v->b[e];
      const tfx_wfile_tensor *t = &f->tensors[b->k];
      tfx_type st = t->type;
      st.dtype = t->storage;
      int64_t row_bytes = tfx_type_bytes(&st, 1) / t->type.dims[0];
      rows_only(&views[b->rule], t->type.dims[0], &lo, &hi);
      if (read_exact(fd_of(fds, f, t), slot + (stacked ? b->index * per_bytes : 0), (uint64_t)((hi - lo) * row_bytes),
                     t->file_offset + (uint64_t)(lo * row_bytes))) {
        *bad = b->k;
        return -1;
      }
    }
    return 0;
  }
  for (int e = head; e >= 0; e = v->b[e].next) {
    const vbinding *b = &v->b[e];
    const tfx_wfile_tensor *t = &f->tensors[b->k];
    tfx_type tt = t->type;
    tt.dtype = TFX_DT_F32;
    tfx_wview_shape in = wshape(&t->type, 0);
    float *full = malloc((size_t)(wnumel(&in) > 0 ? wnumel(&in) : 1) * sizeof *full);
    int rc = !full || read_tensor(fd_of(fds, f, t), t, (uint8_t *)full, &tt) ||
             tfx_wview_apply(views[b->rule].ops, views[b->rule].n_ops, &in, full,
                             (float *)slot + (stacked ? b->index * per : 0));
    free(full);
    if (rc) {
      *bad = b->k;
      return -1;
    }
  }
  return 0;
}

/* ---- quantizing while reading ---- */

#define ROWS_CHUNK_BYTES ((int64_t)8 << 20) /* of the bound format, read at a time */

/* 1 when a tensor converted by the plan goes through quantize_rows: its
 * rows are independent (not ternary, whose scale is the whole tensor's mean
 * |w|; not i8, whose scales form a plane after all the values). */
static int by_rows(const tfx_node *n, const tfx_quant_target *t) {
  const tfx_dtype_info *fi = tfx_dtype_info_of(t->dtype);
  return t->dtype != TFX_DT_TQ2_T && fi && !fi->row_bytes && n->type.rank >= 1 && !n->fx.panel;
}

/* The non-finite values of a whole tensor from those of its row ranges. */
static void nonfinite_add(tfx_nonfinite *all, const tfx_nonfinite *part, int64_t first_elem) {
  if (all->index < 0) {
    *all = *part;
    all->index += first_elem;
  } else {
    all->count += part->count;
  }
}

/* Param i (bound to tensor t, read as stored or decoded to f32: its type)
 * read ROWS_CHUNK_BYTES at a time, each range of rows checked for
 * non-finite values (reported as check_finite does, for the whole tensor)
 * and quantized into its rows of the slot in the plan's format: the same
 * bytes as reading the tensor whole and quantizing it after, holding only a
 * chunk. 0, or -1 after reporting a read error (binding stops). */
static int quantize_rows(int fd, const tfx_graph *g, int i, const tfx_wfile_tensor *t, const char *path,
                         const tfx_quant_target *plan, const tfx_bind_options *bo, tfx_weights *out, reporter *r) {
  const tfx_node *n = &g->nodes[i];
  int64_t K = n->type.dims[n->type.rank - 1], R = K > 0 ? tfx_type_numel(&n->type, 1) / K : 0;
  tfx_type st = n->type, one; /* a row as stored in the file, as bound, as quantized */
  st.dtype = t->storage;
  int64_t file_row = R > 0 ? tfx_type_bytes(&st, 1) / R : 0, bound_row = R > 0 ? tfx_type_bytes(&n->type, 1) / R : 0;
  one = n->type;
  one.dtype = plan[i].dtype;
  int64_t out_row = R > 0 ? tfx_type_bytes(&one, 1) / R : 0;
  int64_t chunk = bound_row > 0 ? ROWS_CHUNK_BYTES / bound_row : 1;
  if (chunk < 1) chunk = 1;
  if (chunk > R) chunk = R > 0 ? R : 1;
  uint8_t *buf = malloc((size_t)(chunk * bound_row > 0 ? chunk * bound_row : 1));
  if (!buf) {
    report(r, i, "out of memory reading param '%s'", n->name);
    return -1;
  }
  tfx_node part = *n; /* the rows [r0, r0 + nr) as a [nr, K] tensor */
  part.type.rank = 2;
  part.type.dims[1] = K;
  tfx_nonfinite nf = {0, -1, NULL, 0, NULL};
  int bad = 0, errors = r->count;
  char msg[512];
  for (int64_t r0 = 0; r0 < R; r0 += chunk) {
    int64_t nr = R - r0 < chunk ? R - r0 : chunk;
    part.type.dims[0] = nr;
    tfx_type pt = part.type;
    if (read_tensor_rows(fd, t, r0, file_row, buf, &pt)) {
      report(r, i, "%s: cannot read tensor '%s' (%lld elements of %s at offset %llu)", path, t->name,
             (long long)tfx_type_numel(&n->type, 1), t->dtype_name, (unsigned long long)t->file_offset);
      free(buf);
      return -1;
    }
    if (!(bo && bo->allow_nonfinite)) {
      tfx_nonfinite pn;
      int rc = tfx_weights_find_nonfinite(&pt, buf, &pn);
      if (rc < 0) bad = -1;
      if (rc > 0) nonfinite_add(&nf, &pn, r0 * K);
    }
    if (bad || nf.index >= 0 || r->count > errors) continue; /* reported below; the slot no longer matters */
    if (tfx_quantize_param(&part, buf, plan[i].dtype, out->data + n->weight_offset + r0 * out_row, msg, sizeof msg))
      report(r, i, "%s", msg);
  }
  free(buf);
  if (bad)
    report(r, i, "param '%s': cannot check tensor '%s' of %s (%s) for non-finite values", n->name, t->name, path,
           tfx_dtype_name(n->type.dtype));
  else if (nf.index >= 0) {
    char what[256];
    tfx_weights_nonfinite_message(&n->type, &nf, what, sizeof what);
    report(r, i, "param '%s': tensor '%s' of %s (%s) holds %s (--allow-nonfinite accepts them)", n->name, t->name, path,
           t->dtype_name, what);
  }
  return 0;
}

static int bind_file(tfx_graph *g, const char *path, const char *format, const tfx_wrename *rules, int n_rules,
                     const tfx_bind_options *bo, tfx_quant_target *plan, tfx_weights *out, reporter *r, int *first) {
  char msg[512], s0[64], s1[64];
  tfx_wfile f;
  if (open_wfile(path, format, &f, r)) return -1;
  int *tensor_of = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *tensor_of);
  tfx_dtype *stored = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *stored);
  char *used = calloc((size_t)(f.n_tensors > 0 ? f.n_tensors : 1), 1);
  char **names = calloc((size_t)(f.n_tensors > 0 ? f.n_tensors : 1), sizeof *names);
  int *vhead = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *vhead);
  tfx_wrename *plain = malloc((size_t)(n_rules > 0 ? n_rules : 1) * sizeof *plain); /* the plain rules */
  name_map tmap = {NULL, NULL, 0}, dmap = {NULL, NULL, 0};
  vbindings vb = {NULL, 0, 0, calloc((size_t)(f.n_tensors > 0 ? f.n_tensors : 1), 1)};
  int rc = -1, errors = r->count;
  if (!tensor_of || !stored || !used || !names || !vhead || !vb.viewed || !plain) {
    report(r, -1, "%s: out of memory", path);
    goto done;
  }
  const tfx_wview *views = bo ? bo->views : NULL;
  int n_plain = 0;
  for (int i = 0; plain && i < n_rules; i++)
    if (!views || !tfx_wview_binds(&views[i])) plain[n_plain++] = rules[i];
  if (rename_tensors(&f, path, rules, views, n_rules, plain, n_plain, names, &vb, r)) goto done;
  if (nm_init(&dmap, vb.n)) {
    report(r, -1, "%s: out of memory", path);
    goto done;
  }
  for (int e = 0; e < vb.n; e++) { /* chains of the bindings of each name, in file order */
    int h = nm_put(&dmap, vb.b[e].name, e);
    while (h != e && vb.b[h].next >= 0) h = vb.b[h].next;
    if (h != e) vb.b[h].next = e;
  }
  /* a header that disagrees with the program says so, field by field,
   * instead of the tensor-by-tensor mismatches it causes */
  if (tfx_wfile_check_llama2c(g, &f, plain, n_plain, report_cb, r)) goto done;
  if (nm_init(&tmap, f.n_tensors)) {
    report(r, -1, "%s: out of memory", path);
    goto done;
  }
  for (int k = 0; k < f.n_tensors; k++)
    if (names[k]) nm_put(&tmap, names[k], k);
  if (choose_formats(g, &f, &tmap, &dmap, &vb, views, stored)) {
    report(r, -1, "%s: out of memory", path);
    goto done;
  }
  int64_t total = layout(g, first, stored, bo, plan, r);
  if (total < 0) goto done;
  for (int i = 0; i < g->n_nodes; i++) {
    tensor_of[i] = -1;
    vhead[i] = -1;
    if (first[i] < 0) continue;
    const tfx_node *n = &g->nodes[i];
    int k = find_tensor(&f, &tmap, n->name);
    int head = k == f.n_tensors ? nm_get(&dmap, n->name) : -1;
    if (head >= 0) { /* bound through binding rules */
      for (int e = head; e >= 0; e = vb.b[e].next) used[vb.b[e].k] = 1;
      if (first[i] == i && check_view_param(g, i, &f, &vb, head, views, path, r) == 0) vhead[i] = head;
      continue;
    }
    if (k == f.n_tensors) {
      list_names(&f, names, msg, sizeof msg);
      report(r, i, "param '%s' %s not found in %s (it has%s: %s)", n->name, tfx_type_str(&n->type, s0, sizeof s0), path,
             n_rules > 0 ? ", after renaming" : "", msg);
      continue;
    }
    used[k] = 1;
    char from[600] = "";
    const tfx_wfile_tensor *t = &f.tensors[k];
    if (strcmp(t->name, names[k]) != 0) snprintf(from, sizeof from, " (renamed from '%s')", t->name);
    if (t->dtype == TFX_WF_UNSUPPORTED) {
      if (strcmp(f.format, "gguf") == 0)
        report(r, i,
               "param '%s': tensor '%s'%s of %s: unsupported GGUF tensor type %s (supported: F32, F16, BF16, Q8_0, "
               "Q4_0, Q5_0, Q3_K, Q4_K, Q6_K, TQ2_0)",
               n->name, names[k], from, path, t->dtype_name);
      else
        report(r, i, "param '%s': tensor '%s'%s of %s has dtype %s, which cannot be bound (supported: F32, F16, BF16)",
               n->name, names[k], from, path, t->dtype_name);
      continue;
    }
    if (!same_shape(&t->type, &n->type)) {
      tfx_type nt = n->type;
      nt.dtype = TFX_DT_F32;
      report(r, i, "param '%s' is %s but tensor '%s'%s of %s is %s", n->name, tfx_type_str(&nt, s0, sizeof s0),
             names[k], from, path, tfx_type_str(&t->type, s1, sizeof s1));
      continue;
    }
    const tfx_dtype_info *fi = tfx_dtype_info_of(t->storage);
    int64_t K = n->type.dims[n->type.rank - 1];
    if (!fi || K % fi->block) {
      report(r, i,
             "param '%s': tensor '%s'%s of %s is %s but its rows of %lld elements do not divide into %s blocks of %d",
             n->name, names[k], from, path, t->dtype_name, (long long)K, t->dtype_name, fi ? fi->block : 0);
      continue;
    }
    if (n->type.dtype != t->storage && !fi->dequant_row) {
      report(r, i, "param '%s': tensor '%s'%s of %s is %s, which tfxc cannot decode to f32", n->name, names[k], from,
             path, t->dtype_name);
      continue;
    }
    tensor_of[i] = k;
  }
  int unused = 0;
  for (int k = 0; k < f.n_tensors; k++) {
    if (used[k] || (!names[k] && !vb.viewed[k]) || (names[k] && is_freq_cis(names[k]))) continue;
    if (unused++ < MAX_UNUSED_REPORTS) {
      if (!names[k])
        report(r, -1, "tensor '%s' of %s is not used by any param (its binding rules name no param)", f.tensors[k].name,
               path);
      else if (strcmp(f.tensors[k].name, names[k]) != 0)
        report(r, -1, "tensor '%s' of %s (renamed to '%s') is not used by any param", f.tensors[k].name, path,
               names[k]);
      else
        report(r, -1, "tensor '%s' of %s is not used by any param", f.tensors[k].name, path);
    }
  }
  if (unused > MAX_UNUSED_REPORTS)
    report(r, -1, "%d more tensor%s of %s %s not used by any param", unused - MAX_UNUSED_REPORTS,
           unused - MAX_UNUSED_REPORTS == 1 ? "" : "s", path, unused - MAX_UNUSED_REPORTS == 1 ? "is" : "are");
  if (r->count > errors || alloc_blob(g, first, total, out, r)) goto done;

  /* one descriptor per file: the checkpoint, or each of its shards */
  int n_fds = f.n_shards > 0 ? f.n_shards : 1, opened = 0;
  int *fds = malloc((size_t)n_fds * sizeof *fds);
  if (!fds) {
    report(r, -1, "%s: out of memory", path);
    goto done;
  }
  for (; opened < n_fds; opened++) {
    const char *fp = f.n_shards > 0 ? f.shards[opened] : path;
    if ((fds[opened] = open(fp, O_RDONLY)) < 0) {
      report(r, -1, "%s: cannot open: %s", fp, strerror(errno));
      break;
    }
  }
  if (opened < n_fds) {
    while (opened > 0) close(fds[--opened]);
    free(fds);
    goto done;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    if (first[i] != i) continue;
    const tfx_node *n = &g->nodes[i];
    int64_t bytes = tfx_type_bytes(&n->type, 1);
    int errors_here = r->count;
    if (vhead[i] < 0 && converts(g, plan, i) && by_rows(n, &plan[i])) {
      if (quantize_rows(fd_of(fds, &f, &f.tensors[tensor_of[i]]), g, i, &f.tensors[tensor_of[i]], path, plan, bo, out,
                        r))
        break;
      zero_pad(out, n->weight_offset, slot_bytes(n, plan, i));
      continue;
    }
    /* a slot the plan quantizes: read in its bound format into a buffer of
     * one tensor, checked there, then quantized into the slot */
    uint8_t *tmp = converts(g, plan, i) ? malloc((size_t)(bytes > 0 ? bytes : 1)) : NULL;
    uint8_t *dst = tmp ? tmp : out->data + n->weight_offset;
    if (converts(g, plan, i) && !tmp) {
      report(r, i, "out of memory reading param '%s'", n->name);
      break;
    }
    const tfx_wfile_tensor *t = vhead[i] >= 0 ? &f.tensors[vb.b[vhead[i]].k] : &f.tensors[tensor_of[i]];
    if (vhead[i] >= 0) {
      int bad = 0;
      if (read_view_param(fds, g, i, &f, &vb, vhead[i], views, dst, &bad)) {
        report(r, i, "%s: cannot read tensor '%s' for param '%s'", path, f.tensors[bad].name, n->name);
        free(tmp);
        break;
      }
    } else if (read_tensor(fd_of(fds, &f, t), t, dst, &n->type)) {
      report(r, i, "%s: cannot read tensor '%s' (%lld elements of %s at offset %llu)", path, t->name,
             (long long)tfx_type_numel(&n->type, 1), t->dtype_name, (unsigned long long)t->file_offset);
      free(tmp);
      break;
    }
    check_finite(g, i, t, path, dst, bo, r);
    if (tmp) quantize_into(g, i, plan, tmp, out, errors_here, r);
    free(tmp);
    zero_pad(out, n->weight_offset, slot_bytes(n, plan, i));
  }
  for (int k = 0; k < n_fds; k++) close(fds[k]);
  free(fds);
  rc = r->count > errors ? -1 : 0;
  if (rc == 0) apply_plan(g, plan);
done:
  nm_free(&tmap);
  nm_free(&dmap);
  vb_free(&vb);
  free(vhead);
  free(plain);
  if (names)
    for (int k = 0; k < f.n_tensors; k++) free(names[k]);
  free(names);
  free(tensor_of);
  free(stored);
  free(used);
  tfx_wfile_close(&f);
  return rc;
}

int tfx_weights_bind(tfx_graph *g, const char *spec, const char *format, tfx_weights *out, tfx_bind_error_fn on_error,
                     void *ctx) {
  return tfx_weights_bind_renamed(g, spec, format, NULL, 0, out, on_error, ctx);
}

int tfx_weights_bind_renamed(tfx_graph *g, const char *spec, const char *format, const tfx_wrename *rules, int n_rules,
                             tfx_weights *out, tfx_bind_error_fn on_error, void *ctx) {
  return tfx_weights_bind_opts(g, spec, format, rules, n_rules, NULL, out, on_error, ctx);
}

int tfx_weights_bind_opts(tfx_graph *g, const char *spec, const char *format, const tfx_wrename *rules, int n_rules,
                          const tfx_bind_options *bo, tfx_weights *out, tfx_bind_error_fn on_error, void *ctx) {
  reporter r = {on_error, ctx, 0};
  if (out) {
    out->data = NULL;
    out->size = 0;
  }
  if (!g || !spec || !out) {
    report(&r, -1, "no graph, no weights spec or no output blob to bind");
    return r.count;
  }
  if (!spec[0]) {
    report(&r, -1, "empty weights path (expected a file, random or random:SEED)");
    return r.count;
  }
  g->weights_bytes = 0;
  /* binding chooses the params' storage formats: a graph bound before is bound afresh */
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == TFX_OP_PARAM && is_storage(g->nodes[i].type.dtype)) g->nodes[i].type.dtype = TFX_DT_F32;
  int *first = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *first);
  tfx_quant_target *plan = malloc((size_t)(g->n_nodes > 0 ? g->n_nodes : 1) * sizeof *plan);
  if (!first || !plan) {
    free(first);
    free(plan);
    report(&r, -1, "out of memory");
    return r.count;
  }
  int rc;
  if (strncmp(spec, "random", 6) == 0 && (spec[6] == 0 || spec[6] == ':'))
    rc = bind_random(g, spec, bo, plan, out, &r, first);
  else
    rc = bind_file(g, spec, format, rules, n_rules, bo, plan, out, &r, first);
  free(first);
  free(plan);
  if (rc || r.count) {
    tfx_weights_free(out);
    g->weights_bytes = 0;
    for (int i = 0; i < g->n_nodes; i++)
      if (g->nodes[i].op == TFX_OP_PARAM) {
        g->nodes[i].weight_offset = -1;
        if (is_storage(g->nodes[i].type.dtype)) g->nodes[i].type.dtype = TFX_DT_F32;
      }
    if (!r.count) r.count = 1;
  }
  return r.count;
}

int tfx_weights_widen(tfx_graph *g, tfx_weights *w, int (*keep)(tfx_dtype dt), char *err, size_t errlen) {
  int n = g->n_nodes, widened = 0;
  int64_t *newoff = malloc((size_t)(n > 0 ? n : 1) * sizeof *newoff);
  char *wide = calloc((size_t)(n > 0 ? n : 1), 1);
  uint8_t *blob = NULL;
  if (!newoff || !wide) goto oom;
  /* which slots widen; the new layout in node order (params sharing a slot share it) */
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    tfx_node *p = &g->nodes[i];
    newoff[i] = -1;
    if (p->op != TFX_OP_PARAM || p->weight_offset < 0) continue;
    int j = 0;
    while (j < i && !(g->nodes[j].op == TFX_OP_PARAM && g->nodes[j].weight_offset == p->weight_offset)) j++;
    if (j < i) {
      newoff[i] = newoff[j];
      wide[i] = wide[j];
      continue;
    }
    wide[i] = p->type.dtype != TFX_DT_F32 && !keep(p->type.dtype);
    if (wide[i] && p->fx.panel > 0) {
      tfx_errf(err, errlen, "param '%s': a packed %s weight cannot be decoded to f32 in place", p->name,
               tfx_dtype_name(p->type.dtype));
      goto fail;
    }
    tfx_type t = p->type;
    if (wide[i]) t.dtype = TFX_DT_F32;
    newoff[i] = off;
    off += align_up(tfx_type_bytes(&t, 1));
    widened += wide[i];
  }
  if (!widened) goto done;
  blob = aligned_alloc(BLOB_ALIGN, (size_t)(off > 0 ? off : BLOB_ALIGN));
  if (!blob) goto oom;
  memset(blob, 0, (size_t)(off > 0 ? off : BLOB_ALIGN));
  for (int i = 0; i < n; i++) {
    tfx_node *p = &g->nodes[i];
    if (newoff[i] < 0) continue;
    int j = 0;
    while (j < i && newoff[j] != newoff[i]) j++;
    if (j == i) { /* the slot's first param: move or decode its data */
      const uint8_t *src = w->data + p->weight_offset;
      if (!wide[i]) {
        memcpy(blob + newoff[i], src, (size_t)tfx_type_bytes(&p->type, 1));
      } else {
        int64_t K = tfx_node_cols(p), R = K > 0 ? tfx_type_numel(&p->type, 1) / K : 0;
        for (int64_t r = 0; r < R; r++)
          if (tfx_weight_dequant_row(p, src, r, (float *)(blob + newoff[i]) + r * K)) {
            tfx_errf(err, errlen, "param '%s': no decoder for %s", p->name, tfx_dtype_name(p->type.dtype));
            goto fail;
          }
      }
    }
  }
  for (int i = 0; i < n; i++) {
    if (newoff[i] < 0) continue;
    g->nodes[i].weight_offset = newoff[i];
    if (wide[i]) g->nodes[i].type.dtype = TFX_DT_F32;
  }
  free(w->data);
  w->data = blob;
  w->size = (size_t)off;
  g->weights_bytes = off;
  blob = NULL;
  goto done;
oom:
  tfx_errf(err, errlen, "out of memory");
fail:
  widened = -1;
done:
  free(blob);
  free(newoff);
  free(wide);
  return widened;
}

FILE *tfx_wfile_fopen(const char *path, uint64_t *size, char *err, size_t errlen) {
  if (!path) {
    tfx_errf(err, errlen, "no weights file given");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO must not block the open */
  if (fd < 0) {
    tfx_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    tfx_errf(err, errlen, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    close(fd);
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *fp = fdopen(fd, "rb");
  if (!fp) {
    tfx_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  *size = (uint64_t)st.st_size;
  return fp;
}
