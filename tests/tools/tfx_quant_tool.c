/* tests/tools/tfx_quant_tool.c — tfx-quant-tool, built for the tests only:
 * quantizes raw little-endian f32 rows from a file into a weight format's
 * bytes (tfx_quantize_row) and decodes such bytes back into f32 rows (the
 * format table's reference decoder, tfx_weight_dequant_row), so that Python
 * oracles (tests/quant/test_quant_bytes.py, bench/check_kquant_bytes.py) can
 * compare tfxc's formats with the gguf package and llama.cpp.
 *
 *   tfx-quant-tool quantize   FORMAT K IN.f32 OUT.bin   (FORMAT ternary: tq2_0 with
 *                             BitNet's scale, the mean |x| of the whole input)
 *   tfx-quant-tool dequantize FORMAT K IN.bin OUT.f32
 *   tfx-quant-tool fallback   FORMAT K      the format a row of K gets (tfx_quantize_fallback)
 *   tfx-quant-tool formats
 *
 * K is the row length (elements); the input holds whole rows. Errors go to
 * stderr with exit status 1 (2 for usage). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ir/ir.h"

static int fail(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "tfx-quant-tool: error: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
  return 1;
}

static int usage(void) {
  fprintf(stderr, "usage: tfx-quant-tool quantize FORMAT K IN.f32 OUT.bin\n"
                  "       tfx-quant-tool dequantize FORMAT K IN.bin OUT.f32\n"
                  "       tfx-quant-tool fallback FORMAT K\n"
                  "       tfx-quant-tool formats\n");
  return 2;
}

static int find_format(const char *name, tfx_dtype *dt) {
  for (int i = 0; i < TFX_DT_COUNT; i++) {
    const tfx_dtype_info *f = tfx_dtype_info_of((tfx_dtype)i);
    if (f && f->name && f->storage && strcmp(f->name, name) == 0) {
      *dt = (tfx_dtype)i;
      return 0;
    }
  }
  return -1;
}

/* The whole file at path (NULL on error, message printed). */
static uint8_t *slurp(const char *path, size_t *size) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fail("cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) break;
    n += fread(buf + n, 1, cap - n, fp);
    if (n < cap) break;
    uint8_t *nb = realloc(buf, cap * 2);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  int err = ferror(fp);
  fclose(fp);
  if (!buf || err) {
    free(buf);
    fail("cannot read %s%s", path, buf ? "" : ": out of memory");
    return NULL;
  }
  *size = n;
  return buf;
}

static int spill(const char *path, const void *data, size_t size) {
  FILE *fp = fopen(path, "wb");
  if (!fp) return fail("cannot create %s: %s", path, strerror(errno));
  size_t w = fwrite(data, 1, size, fp);
  if (fclose(fp) != 0 || w != size) return fail("cannot write %s%s", path, "");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "formats") == 0) {
    for (int i = 0; i < TFX_DT_COUNT; i++) {
      const tfx_dtype_info *f = tfx_dtype_info_of((tfx_dtype)i);
      if (f && f->storage)
        printf("%s block %d bytes %d quantize %s\n", f->name, f->block, f->block_bytes,
               tfx_quantize_supported((tfx_dtype)i) ? "yes" : "no");
    }
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "fallback") == 0) {
    tfx_dtype dt;
    if (find_format(argv[2], &dt)) return fail("unknown weight format '%s'%s", argv[2], "");
    char *end;
    errno = 0;
    long long K = strtoll(argv[3], &end, 10);
    if (errno || *end || K <= 0) return fail("bad row length '%s'%s", argv[3], "");
    printf("%s\n", tfx_dtype_name(tfx_quantize_fallback(dt, K)));
    return 0;
  }
  if (argc != 6) return usage();
  int quant = strcmp(argv[1], "quantize") == 0;
  if (!quant && strcmp(argv[1], "dequantize") != 0) return usage();
  tfx_dtype dt;
  int ternary = quant && strcmp(argv[2], "ternary") == 0; /* tq2_0 with the whole input's mean |x| */
  if (ternary)
    dt = TFX_DT_TQ2_0;
  else if (find_format(argv[2], &dt))
    return fail("unknown weight format '%s'%s", argv[2], "");
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  char *end;
  errno = 0;
  long long K = strtoll(argv[3], &end, 10);
  if (errno || *end || K <= 0 || K > (1LL << 30)) return fail("bad row length '%s'%s", argv[3], "");
  if (f->row_bytes) return fail("format %s has a per-row scale plane: not a row-by-row format%s", f->name, "");
  if (K % f->block) return fail("row length %s is not a multiple of %s's block", argv[3], f->name);
  if (quant && !tfx_quantize_supported(dt)) return fail("no quantizer for %s%s", f->name, "");
  size_t in_row = quant ? (size_t)K * 4 : (size_t)(K / f->block * f->block_bytes);
  size_t out_row = quant ? (size_t)(K / f->block * f->block_bytes) : (size_t)K * 4;
  size_t size = 0;
  uint8_t *in = slurp(argv[4], &size);
  if (!in) return 1;
  if (size % in_row) {
    free(in);
    return fail("%s does not hold whole rows of the given length (K = %s)", argv[4], argv[3]);
  }
  size_t R = size / in_row;
  uint8_t *out = malloc(R * out_row + 1);
  float *row = malloc((size_t)K * 4);
  int rc = !out || !row ? fail("out of memory%s%s", "", "") : 0;
  if (!rc) {
    tfx_node w;
    memset(&w, 0, sizeof w);
    w.op = TFX_OP_PARAM;
    int64_t dims[2] = {(int64_t)R, K};
    w.type = tfx_type_make(dt, 2, dims);
    float mean_abs = 0.0f;
    if (ternary) {
      double sum = 0.0;
      for (size_t i = 0; i < R * (size_t)K; i++) {
        float v;
        memcpy(&v, in + 4 * i, 4);
        sum += v < 0 ? -(double)v : (double)v;
      }
      mean_abs = R ? (float)(sum / (double)(R * (size_t)K)) : 0.0f;
    }
    for (size_t r = 0; r < R && !rc; r++) {
      if (quant) {
        memcpy(row, in + r * in_row, in_row);
        int64_t wrote = ternary ? tfx_quantize_ternary_row(row, K, mean_abs, out + r * out_row)
                                : tfx_quantize_row(dt, row, K, out + r * out_row);
        if (wrote != (int64_t)out_row) rc = fail("quantizing a row to %s failed%s", f->name, "");
      } else {
        if (tfx_weight_dequant_row(&w, in, (int64_t)r, row)) rc = fail("format %s has no decoder%s", f->name, "");
        memcpy(out + r * out_row, row, out_row);
      }
    }
  }
  if (!rc) rc = spill(argv[5], out, R * out_row);
  free(row);
  free(out);
  free(in);
  return rc;
}
