/* ir/calib.c — calibration data (what `tfxc calibrate` records for
 * w8a8(smooth = alpha), llm_int8 and gptq): per linear, keyed by its weight
 * param's name, the largest |x| of each input channel and GPTQ's H = sum
 * x x^T of its inputs; the file format "TFXCALIB v2" (v1 still read),
 * written and read back with every field validated.
 *
 * The file, little-endian:
 *   8 bytes  "TFXCALIB"
 *   u32      version (1 or 2)
 *   u32      n, the entries (1 .. 1 << 20)
 *   n times: u32 name length (1 .. 4096), the name (no NUL, printable
 *            ASCII), u32 K (1 .. 1 << 24), K x f32 absmax (finite, >= 0),
 *            and in v2: u32 h, 0 (no H), 1 (K x K f64 H follows, row-major:
 *            finite, diagonal >= 0) or 2 + j (the H of entry j < this one,
 *            which has an H of its own and the same K)
 * and nothing after the last entry. Names are unique. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

#define CALIB_MAGIC "TFXCALIB"
#define CALIB_VERSION 2u
#define CALIB_MAX_ENTRIES (1u << 20)
#define CALIB_MAX_NAME 4096u
#define CALIB_MAX_K (1u << 24)

const tfx_calib_entry *tfx_calib_find(const tfx_calib *c, const char *name) {
  for (int i = 0; c && name && i < c->n; i++)
    if (!strcmp(c->e[i].name, name)) return &c->e[i];
  return NULL;
}

tfx_calib_entry *tfx_calib_entry_get(tfx_calib *c, const char *name, int64_t K) {
  for (int i = 0; i < c->n; i++)
    if (!strcmp(c->e[i].name, name)) return c->e[i].K == K ? &c->e[i] : NULL;
  tfx_calib_entry *e = realloc(c->e, (size_t)(c->n + 1) * sizeof *e);
  if (!e) return NULL;
  c->e = e;
  tfx_calib_entry *n = &c->e[c->n];
  n->name = strdup(name);
  n->K = K;
  n->absmax = calloc((size_t)(K > 0 ? K : 1), sizeof *n->absmax);
  n->H = NULL;
  n->h_owned = 0;
  if (!n->name || !n->absmax) {
    free(n->name);
    free(n->absmax);
    return NULL;
  }
  c->n++;
  return n;
}

int tfx_calib_entry_hessian(tfx_calib_entry *e, const tfx_calib_entry *share) {
  if (e->H) return share && (share->H != e->H) ? -1 : 0;
  if (share) {
    if (share->K != e->K || !share->H) return -1;
    e->H = share->H;
    e->h_owned = 0;
    return 0;
  }
  if (e->K > (int64_t)1 << 16) return -1;
  e->H = calloc((size_t)(e->K * e->K), sizeof *e->H);
  e->h_owned = 1;
  return e->H ? 0 : -1;
}

void tfx_calib_free(tfx_calib *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++) {
    free(c->e[i].name);
    free(c->e[i].absmax);
    if (c->e[i].h_owned) free(c->e[i].H);
  }
  free(c->e);
  c->e = NULL;
  c->n = 0;
}

static void put32(FILE *f, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  fwrite(b, 1, 4, f);
}

int tfx_calib_save(const tfx_calib *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "wb");
  if (!f) return tfx_errf(err, errlen, "%s: cannot open for writing", path);
  fwrite(CALIB_MAGIC, 1, 8, f);
  put32(f, CALIB_VERSION);
  put32(f, (uint32_t)c->n);
  for (int i = 0; i < c->n; i++) {
    size_t len = strlen(c->e[i].name);
    put32(f, (uint32_t)len);
    fwrite(c->e[i].name, 1, len, f);
    put32(f, (uint32_t)c->e[i].K);
    for (int64_t k = 0; k < c->e[i].K; k++) {
      uint32_t u;
      memcpy(&u, &c->e[i].absmax[k], 4);
      put32(f, u);
    }
    /* H: the first entry holding this matrix writes it, later ones refer to it */
    int first = -1;
    for (int j = 0; c->e[i].H && j <= i && first < 0; j++)
      if (c->e[j].H == c->e[i].H) first = j;
    put32(f, first < 0 ? 0u : first == i ? 1u : 2u + (uint32_t)first);
    if (first == i)
      for (int64_t k = 0; k < c->e[i].K * c->e[i].K; k++) {
        uint64_t u;
        memcpy(&u, &c->e[i].H[k], 8);
        put32(f, (uint32_t)u);
        put32(f, (uint32_t)(u >> 32));
      }
  }
  int bad = ferror(f);
  if (fclose(f) || bad) return tfx_errf(err, errlen, "%s: write error", path);
  return 0;
}

static int get32(const uint8_t *d, size_t size, size_t *at, uint32_t *v) {
  if (size - *at < 4) return -1;
  const uint8_t *p = d + *at;
  *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  *at += 4;
  return 0;
}

int tfx_calib_parse(const uint8_t *d, size_t size, const char *what, tfx_calib *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  size_t at = 8;
  uint32_t version, n;
  if (size < 8 || memcmp(d, CALIB_MAGIC, 8))
    return tfx_errf(err, errlen, "%s: not a calibration file (no TFXCALIB magic; write one with tfxc calibrate)", what);
  if (get32(d, size, &at, &version) || get32(d, size, &at, &n))
    return tfx_errf(err, errlen, "%s: truncated header", what);
  if (version < 1 || version > CALIB_VERSION)
    return tfx_errf(err, errlen, "%s: calibration file version %u, this tfxc reads versions 1 .. %u", what, version,
                    CALIB_VERSION);
  if (n < 1 || n > CALIB_MAX_ENTRIES)
    return tfx_errf(err, errlen, "%s: %u entries (expected 1 .. %u)", what, n, CALIB_MAX_ENTRIES);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t len, K;
    if (get32(d, size, &at, &len)) goto truncated;
    if (len < 1 || len > CALIB_MAX_NAME) {
      tfx_errf(err, errlen, "%s: entry %u: name of %u bytes (expected 1 .. %u)", what, i, len, CALIB_MAX_NAME);
      goto fail;
    }
    if (size - at < len) goto truncated;
    char name[CALIB_MAX_NAME + 1];
    memcpy(name, d + at, len);
    name[len] = 0;
    at += len;
    for (uint32_t j = 0; j < len; j++)
      if (name[j] <= ' ' || name[j] > '~') {
        tfx_errf(err, errlen, "%s: entry %u: the name holds a byte 0x%02x (printable ASCII only)", what, i,
                 (unsigned)(uint8_t)name[j]);
        goto fail;
      }
    if (tfx_calib_find(out, name)) {
      tfx_errf(err, errlen, "%s: entry %u: '%s' appears twice", what, i, name);
      goto fail;
    }
    if (get32(d, size, &at, &K)) goto truncated;
    if (K < 1 || K > CALIB_MAX_K) {
      tfx_errf(err, errlen, "%s: entry '%s': %u channels (expected 1 .. %u)", what, name, K, CALIB_MAX_K);
      goto fail;
    }
    if ((size - at) / 4 < K) goto truncated;
    tfx_calib_entry *e = tfx_calib_entry_get(out, name, K);
    if (!e) {
      tfx_errf(err, errlen, "%s: out of memory", what);
      goto fail;
    }
    for (uint32_t k = 0; k < K; k++) {
      uint32_t u = 0;
      get32(d, size, &at, &u);
      float v;
      memcpy(&v, &u, 4);
      if (!isfinite(v) || v < 0) {
        tfx_errf(err, errlen, "%s: entry '%s': channel %u holds %s (a range is finite and >= 0)", what, name, k,
                 isnan(v)   ? "NaN"
                 : isinf(v) ? "an infinity"
                            : "a negative value");
        goto fail;
      }
      e->absmax[k] = v;
    }
    if (version < 2) continue;
    uint32_t h;
    if (get32(d, size, &at, &h)) goto truncated;
    if (h == 0) continue;
    if (h >= 2) { /* an earlier entry's H */
      uint32_t j = h - 2;
      if (j >= i || !out->e[j].h_owned || out->e[j].K != K) {
        tfx_errf(err, errlen,
                 "%s: entry '%s': H refers to entry %u (expected an earlier entry with an H of its own and %u "
                 "channels)",
                 what, name, j, K);
        goto fail;
      }
      e = &out->e[out->n - 1];
      e->H = out->e[j].H;
      e->h_owned = 0;
      continue;
    }
    if ((size - at) / 8 / K < K) goto truncated;
    e = &out->e[out->n - 1];
    if (tfx_calib_entry_hessian(e, NULL)) {
      tfx_errf(err, errlen, "%s: entry '%s': out of memory for H (%u x %u)", what, name, K, K);
      goto fail;
    }
    for (uint64_t k = 0; k < (uint64_t)K * K; k++) {
      uint32_t lo = 0, hi = 0;
      get32(d, size, &at, &lo);
      get32(d, size, &at, &hi);
      uint64_t u = (uint64_t)hi << 32 | lo;
      double v;
      memcpy(&v, &u, 8);
      if (!isfinite(v) || (k / K == k % K && v < 0)) {
        tfx_errf(err, errlen, "%s: entry '%s': H[%llu, %llu] holds %s (H is finite, its diagonal >= 0)", what, name,
                 (unsigned long long)(k / K), (unsigned long long)(k % K),
                 isnan(v)   ? "NaN"
                 : isinf(v) ? "an infinity"
                            : "a negative value");
        goto fail;
      }
      e->H[k] = v;
    }
  }
  if (at != size) {
    tfx_errf(err, errlen, "%s: %zu bytes after the last entry", what, size - at);
    goto fail;
  }
  return 0;
truncated:
  tfx_errf(err, errlen, "%s: truncated (the file ends inside entry %d)", what, out->n);
fail:
  tfx_calib_free(out);
  return -1;
}

int tfx_calib_load(const char *path, tfx_calib *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) return tfx_errf(err, errlen, "%s: cannot open the calibration file", path);
  uint8_t *buf = NULL;
  size_t size = 0, cap = 0;
  for (;;) {
    if (size == cap) {
      size_t nc = cap ? 2 * cap : 65536;
      uint8_t *nb = nc > (size_t)1 << 34 ? NULL : realloc(buf, nc);
      if (!nb) {
        free(buf);
        fclose(f);
        return tfx_errf(err, errlen, "%s: too large or out of memory", path);
      }
      buf = nb;
      cap = nc;
    }
    size_t got = fread(buf + size, 1, cap - size, f);
    size += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return tfx_errf(err, errlen, "%s: read error", path);
  }
  int rc = tfx_calib_parse(buf, size, path, out, err, errlen);
  free(buf);
  return rc;
}
