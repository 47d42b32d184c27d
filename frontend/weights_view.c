/* frontend/weights_view.c — views of file tensors for binding rules
 * (`"c_attn.weight".T[0:64]`, `"query_key_value.weight".view(H, 3, d, D)[:, 0]`):
 * the shape a view gives a tensor (with the errors: a slice out of range, a
 * transpose of a tensor that is not 2-D, a view of another element count)
 * and the copy of the elements it selects, done once at load time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

static void shape_str(const tfx_wview_shape *s, char *buf, size_t len) {
  size_t n = 0;
  n += (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < s->rank && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)s->d[i]);
  if (n < len) snprintf(buf + n, len - n, "]");
}

/* The shape after one op; 0, or -1 with a message. */
static int op_shape(const tfx_wview_op *op, const tfx_wview_shape *in, tfx_wview_shape *out, char *err, size_t errlen) {
  char s0[96];
  shape_str(in, s0, sizeof s0);
  switch (op->kind) {
  case TFX_WV_TRANSPOSE:
    if (in->rank != 2) {
      snprintf(err, errlen, ".T transposes a 2-D tensor, but this one is %s", s0);
      return -1;
    }
    out->rank = 2;
    out->d[0] = in->d[1];
    out->d[1] = in->d[0];
    return 0;
  case TFX_WV_VIEW: {
    int64_t a = 1, b = 1;
    for (int i = 0; i < in->rank; i++) a *= in->d[i];
    for (int i = 0; i < op->n; i++) b = op->lo[i] > 0 && b <= INT64_MAX / op->lo[i] ? b * op->lo[i] : -1;
    tfx_wview_shape v = {op->n, {0}};
    for (int i = 0; i < op->n; i++) v.d[i] = op->lo[i];
    if (a != b) {
      char s1[96];
      shape_str(&v, s1, sizeof s1);
      snprintf(err, errlen, ".view%s: the tensor %s has %lld elements, the view %lld", s1, s0, (long long)a,
               (long long)b);
      return -1;
    }
    *out = v;
    return 0;
  }
  case TFX_WV_SLICE:
    if (op->n > in->rank) {
      snprintf(err, errlen, "a slice of %d axes of a tensor of %d (%s)", op->n, in->rank, s0);
      return -1;
    }
    out->rank = 0;
    for (int i = 0; i < in->rank; i++) {
      int64_t lo = i < op->n ? op->lo[i] : 0, hi = i < op->n ? op->hi[i] : TFX_WVIEW_END;
      int idx = i < op->n && op->index[i];
      if (hi == TFX_WVIEW_END) hi = idx ? lo + 1 : in->d[i];
      if (lo < 0 || lo >= hi || hi > in->d[i]) {
        if (idx)
          snprintf(err, errlen, "index %lld of axis %d is out of range: the tensor is %s", (long long)lo, i, s0);
        else
          snprintf(err, errlen, "slice %lld:%lld of axis %d is out of range: the tensor is %s", (long long)lo,
                   (long long)hi, i, s0);
        return -1;
      }
      if (!idx) out->d[out->rank++] = hi - lo;
    }
    if (out->rank == 0) {
      snprintf(err, errlen, "the slice selects a single element of %s (a param is at least 1-D)", s0);
      return -1;
    }
    return 0;
  }
  snprintf(err, errlen, "unknown view operation");
  return -1;
}

int tfx_wview_shape_of(const tfx_wview_op *ops, int n_ops, const tfx_wview_shape *in, tfx_wview_shape *out, char *err,
                       size_t errlen) {
  tfx_wview_shape cur = *in;
  for (int i = 0; i < n_ops; i++) {
    tfx_wview_shape next;
    if (op_shape(&ops[i], &cur, &next, err, errlen)) return -1;
    cur = next;
  }
  *out = cur;
  return 0;
}

static int64_t numel(const tfx_wview_shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->d[i];
  return n;
}

/* dst = the slice op of src (shape in): an odometer over the kept extents,
 * copying whole runs of the last axis. */
static void slice(const tfx_wview_op *op, const tfx_wview_shape *in, const float *src, float *dst) {
  int r = in->rank;
  int64_t lo[TFX_WVIEW_MAX_RANK], ext[TFX_WVIEW_MAX_RANK], stride[TFX_WVIEW_MAX_RANK], at[TFX_WVIEW_MAX_RANK] = {0};
  int64_t st = 1;
  for (int i = r - 1; i >= 0; i--) {
    stride[i] = st;
    st *= in->d[i];
  }
  for (int i = 0; i < r; i++) {
    int64_t l = i < op->n ? op->lo[i] : 0, h = i < op->n ? op->hi[i] : TFX_WVIEW_END;
    int idx = i < op->n && op->index[i];
    if (h == TFX_WVIEW_END) h = idx ? l + 1 : in->d[i];
    lo[i] = l;
    ext[i] = h - l;
  }
  int64_t run = ext[r - 1];
  for (;;) {
    int64_t off = 0;
    for (int i = 0; i < r; i++) off += (lo[i] + at[i]) * stride[i];
    memcpy(dst, src + off, (size_t)run * sizeof *dst);
    dst += run;
    int i = r - 2;
    while (i >= 0 && ++at[i] == ext[i]) at[i--] = 0;
    if (i < 0) return;
  }
}

int tfx_wview_apply(const tfx_wview_op *ops, int n_ops, const tfx_wview_shape *in, const float *src, float *dst) {
  tfx_wview_shape cur = *in;
  int64_t n = numel(in);
  float *buf[2] = {malloc((size_t)(n > 0 ? n : 1) * sizeof(float)), malloc((size_t)(n > 0 ? n : 1) * sizeof(float))};
  if (!buf[0] || !buf[1]) {
    free(buf[0]);
    free(buf[1]);
    return -1;
  }
  memcpy(buf[0], src, (size_t)n * sizeof(float));
  int k = 0;
  char err[256];
  for (int i = 0; i < n_ops; i++) {
    tfx_wview_shape next;
    if (op_shape(&ops[i], &cur, &next, err, sizeof err)) break; /* checked before: cannot happen */
    if (ops[i].kind == TFX_WV_TRANSPOSE) {
      for (int64_t a = 0; a < cur.d[0]; a++)
        for (int64_t b = 0; b < cur.d[1]; b++) buf[1 - k][b * cur.d[0] + a] = buf[k][a * cur.d[1] + b];
      k = 1 - k;
    } else if (ops[i].kind == TFX_WV_SLICE) {
      slice(&ops[i], &cur, buf[k], buf[1 - k]);
      k = 1 - k;
    }
    cur = next;
  }
  memcpy(dst, buf[k], (size_t)numel(&cur) * sizeof(float));
  free(buf[0]);
  free(buf[1]);
  return 0;
}
