/* frontend/weights_llama2c.c — reads the tensor table of a llama2.c legacy
 * checkpoint: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len), then f32 arrays, each kind stored for all
 * layers contiguously. Validates the header and the total size against the
 * file (overflow-safe) before naming any tensor. */
#include "weights.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Limits that no real checkpoint reaches; they keep every product below 2^63. */
#define L2C_MAX_DIM (1 << 20)
#define L2C_MAX_LAYERS 4096
#define L2C_MAX_VOCAB (1 << 24)
#define L2C_MAX_SEQ (1 << 24)

void tfx_wfile_close(tfx_wfile *f) {
  if (!f) return;
  for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
  free(f->tensors);
  free(f->path);
  for (int i = 0; i < f->n_shards; i++) free(f->shards[i]);
  free(f->shards);
  memset(f, 0, sizeof *f);
}

/* a*b with overflow detection against UINT64_MAX */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *out) {
  if (a && b > UINT64_MAX / a) return 0;
  *out = a * b;
  return 1;
}

typedef struct {
  tfx_wfile *f;
  uint64_t cursor; /* file offset of the next array */
  int cap;
  int oom;
} table;

/* Appends one tensor of shape dims at the cursor and advances it. */
static void add_tensor(table *t, const char *name, int rank, int64_t d0, int64_t d1) {
  if (t->oom) return;
  if (t->f->n_tensors == t->cap) {
    int cap = t->cap ? t->cap * 2 : 64;
    tfx_wfile_tensor *nt = realloc(t->f->tensors, (size_t)cap * sizeof *nt);
    if (!nt) {
      t->oom = 1;
      return;
    }
    t->f->tensors = nt;
    t->cap = cap;
  }
  tfx_wfile_tensor *w = &t->f->tensors[t->f->n_tensors];
  w->name = strdup(name);
  if (!w->name) {
    t->oom = 1;
    return;
  }
  int64_t dims[2] = {d0, d1};
  w->type = tfx_type_make(TFX_DT_F32, rank, dims);
  w->file_offset = t->cursor;
  w->dtype = TFX_WF_F32;
  w->dtype_name = "F32";
  w->storage = TFX_DT_F32;
  t->cursor += (uint64_t)tfx_type_bytes(&w->type, 1);
  t->f->n_tensors++;
}

static int32_t le32(const unsigned char *p) {
  return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

int tfx_wfile_open_llama2c(const char *path, tfx_wfile *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  uint64_t file_size = 0;
  FILE *fp = tfx_wfile_fopen(path, &file_size, err, errlen);
  if (!fp) return -1;
  unsigned char hb[28];
  size_t got = fread(hb, 1, sizeof hb, fp);
  fclose(fp);
  if (got != sizeof hb)
    return tfx_errf(err, errlen, "%s: truncated llama2c header: expected at least 28 bytes, file has %llu", path,
                    (unsigned long long)file_size);
  int32_t dim = le32(hb), hidden = le32(hb + 4), layers = le32(hb + 8), heads = le32(hb + 12);
  int32_t kv_heads = le32(hb + 16), vocab_raw = le32(hb + 20), seq = le32(hb + 24);
  int shared = vocab_raw > 0;
  int64_t vocab = vocab_raw < 0 ? -(int64_t)vocab_raw : vocab_raw;

  if (dim <= 0 || dim > L2C_MAX_DIM || hidden <= 0 || hidden > L2C_MAX_DIM)
    return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: dim = %d, hidden_dim = %d (expected 1..%d)", path, dim,
                    hidden, L2C_MAX_DIM);
  if (layers <= 0 || layers > L2C_MAX_LAYERS)
    return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: n_layers = %d (expected 1..%d)", path, layers,
                    L2C_MAX_LAYERS);
  if (heads <= 0 || heads > dim || dim % heads)
    return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: n_heads = %d does not divide dim = %d", path, heads,
                    dim);
  if (kv_heads <= 0 || kv_heads > heads || heads % kv_heads)
    return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: n_kv_heads = %d does not divide n_heads = %d", path,
                    kv_heads, heads);
  if (vocab == 0 || vocab > L2C_MAX_VOCAB)
    return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: vocab_size = %d (expected 1..%d in magnitude)", path,
                    vocab_raw, L2C_MAX_VOCAB);
  if (seq <= 0 || seq > L2C_MAX_SEQ)
    return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: seq_len = %d (expected 1..%d)", path, seq, L2C_MAX_SEQ);
  int64_t head_dim = dim / heads, kv_dim = head_dim * kv_heads;
  if (head_dim % 2)
    return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: head_dim = %lld (dim / n_heads) must be even", path,
                    (long long)head_dim);

  /* Total bytes. The header limits bound every factor (dims <= 2^20, layers
   * <= 2^12, vocab and seq_len <= 2^24), so the sum stays below 2^60; the
   * products are still checked so that a change of limits cannot overflow. */
  uint64_t L = (uint64_t)layers, D = (uint64_t)dim, Hd = (uint64_t)hidden, V = (uint64_t)vocab;
  uint64_t dd = 0, kd = 0, hd = 0, vd = 0, per_layer, total = 0;
  int ok = mul_ok(D, D, &dd) && mul_ok((uint64_t)kv_dim, D, &kd) && mul_ok(Hd, D, &hd) && mul_ok(V, D, &vd);
  per_layer = 2 * dd + 2 * kd + 3 * hd + 2 * D; /* wq wo, wk wv, w1 w2 w3, the two norms */
  ok = ok && mul_ok(per_layer, L, &total);
  if (ok) {
    total += vd * (shared ? 1 : 2) + D + (uint64_t)seq * (uint64_t)head_dim; /* embeddings (+ output), norm, freq_cis */
    ok = mul_ok(total, 4, &total);
    total += 28;
  }
  if (!ok) return tfx_errf(err, errlen, "%s: not a llama2c checkpoint: sizes overflow", path);
  if (file_size < total)
    return tfx_errf(
        err, errlen,
        "%s: truncated llama2c checkpoint: the header (dim %d, hidden %d, %d layers, %d heads, %d kv heads, "
        "vocab %d, seq_len %d) needs %llu bytes, file has %llu",
        path, dim, hidden, layers, heads, kv_heads, vocab_raw, seq, (unsigned long long)total,
        (unsigned long long)file_size);
  if (file_size > total)
    return tfx_errf(err, errlen,
                    "%s: llama2c checkpoint has %llu unexpected trailing bytes (the header needs %llu bytes, file has "
                    "%llu; is vocab_size's sign right?)",
                    path, (unsigned long long)(file_size - total), (unsigned long long)total,
                    (unsigned long long)file_size);

  table t = {out, 28, 0, 0};
  char name[64];
  add_tensor(&t, "tok_embeddings", 2, vocab, dim);
  static const char *const kinds[] = {"attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"};
  for (int k = 0; k < 9; k++)
    for (int l = 0; l < layers; l++) {
      snprintf(name, sizeof name, "layers.%d.%s", l, kinds[k]);
      switch (k) {
      case 0:
      case 5: add_tensor(&t, name, 1, dim, 0); break;
      case 1:
      case 4: add_tensor(&t, name, 2, dim, dim); break;
      case 2:
      case 3: add_tensor(&t, name, 2, kv_dim, dim); break;
      case 6:
      case 8: add_tensor(&t, name, 2, hidden, dim); break;
      default: add_tensor(&t, name, 2, dim, hidden); break;
      }
    }
  add_tensor(&t, "norm", 1, dim, 0);
  add_tensor(&t, "freq_cis_real", 2, seq, head_dim / 2);
  add_tensor(&t, "freq_cis_imag", 2, seq, head_dim / 2);
  if (!shared) add_tensor(&t, "output", 2, vocab, dim);
  if (t.oom) {
    tfx_wfile_close(out);
    return tfx_errf(err, errlen, "%s: out of memory", path);
  }
  if (t.cursor != total) { /* the table and the size formula disagree: a bug, not bad input */
    tfx_wfile_close(out);
    return tfx_errf(err, errlen, "%s: internal error: tensor table covers %llu bytes, expected %llu", path,
                    (unsigned long long)t.cursor, (unsigned long long)total);
  }
  const int32_t fields[7] = {dim, hidden, layers, heads, kv_heads, vocab_raw, seq};
  memcpy(out->llama2c, fields, sizeof fields);
  out->path = strdup(path);
  out->format = "llama2c";
  out->file_size = file_size;
  if (!out->path) {
    tfx_wfile_close(out);
    return tfx_errf(err, errlen, "%s: out of memory", path);
  }
  return 0;
}
