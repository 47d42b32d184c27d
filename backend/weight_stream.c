/* backend/weight_stream.c — the weight streams (cg.h): how every kernel
 * reads a weight operand, whatever its storage format and layout. A format
 * is one tfx_cg_wformat: its per-row state (a scale, loaded once per row
 * cursor), its per-panel state (the panel rows' scales) and its loads,
 * which decode and scale what the common code addresses (element formats:
 * element i of the values plane at byte i * block_bytes; the scale plane
 * after it, ir/dtype.c). The kernels never see the format.
 *
 * Formats with a stream: f32 (exactly the loads the kernels always had) and
 * f32_rowscale, the toy format of tests/test_weight_format.c (values
 * divided by a per-row f32 scale: the seam's test, never made by the
 * frontend). Any other format is refused by tfx_cg_ws_check with its name. */
#include <stdio.h>

#include "cg.h"

struct tfx_cg_wformat {
  tfx_dtype dtype;
  int row_state; /* 1: row cursors keep their stored row and state */
  /* the state of stored row r (i64), and of a panel whose first stored row is first */
  LLVMValueRef (*state)(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r);
  LLVMValueRef (*panel_state)(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef first);
  /* nvalid values at ptr of a row with that state, decoded and scaled */
  LLVMValueRef (*row_load)(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state, int nvalid);
  /* nvalid values at ptr: panel columns j .. at one k, with the panel's state */
  LLVMValueRef (*cols_load)(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef pstate, int64_t j, int nvalid);
  /* the state of row jj (i64) of a panel with state pstate */
  LLVMValueRef (*panel_row_state)(tfx_cg *cg, LLVMValueRef pstate, LLVMValueRef jj);
  /* one value at ptr of a row with that state */
  LLVMValueRef (*scalar_load)(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state);
};

/* ---- f32 ---- */

static LLVMValueRef f32_row_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state, int nvalid) {
  (void)state;
  return tfx_cg_vload(cg, ptr, nvalid);
}

static LLVMValueRef f32_cols_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef pstate, int64_t j, int nvalid) {
  (void)pstate;
  (void)j;
  return tfx_cg_vload(cg, ptr, nvalid);
}

static LLVMValueRef f32_scalar(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state) {
  (void)state;
  return tfx_cg_loadf(cg, ptr);
}

static const tfx_cg_wformat fmt_f32 = {TFX_DT_F32, 0, NULL, NULL, f32_row_load, f32_cols_load, NULL, f32_scalar};

/* ---- f32_rowscale (the toy format): value = stored * scale[stored row] ---- */

static LLVMValueRef scale_plane(tfx_cg *cg, const tfx_cg_wstream *s) {
  return tfx_cg_byteptr(cg, s->base, tfx_type_values_bytes(&s->w->type, 1));
}

static LLVMValueRef rs_state(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r) {
  return tfx_cg_loadf(cg, tfx_cg_fptr(cg, scale_plane(cg, s), r));
}

static LLVMValueRef rs_panel_state(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef first) {
  return tfx_cg_fptr(cg, scale_plane(cg, s), first); /* the panel's rows' scales, contiguous */
}

static LLVMValueRef rs_row_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state, int nvalid) {
  return LLVMBuildFMul(cg->b, tfx_cg_vload(cg, ptr, nvalid), tfx_cg_splat(cg, state), "");
}

static LLVMValueRef rs_cols_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef pstate, int64_t j, int nvalid) {
  LLVMValueRef sc = tfx_cg_vload(cg, tfx_cg_fptrc(cg, pstate, j), nvalid);
  return LLVMBuildFMul(cg->b, tfx_cg_vload(cg, ptr, nvalid), sc, "");
}

static LLVMValueRef rs_panel_row_state(tfx_cg *cg, LLVMValueRef pstate, LLVMValueRef jj) {
  return tfx_cg_loadf(cg, tfx_cg_fptr(cg, pstate, jj));
}

static LLVMValueRef rs_scalar(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state) {
  return LLVMBuildFMul(cg->b, tfx_cg_loadf(cg, ptr), state, "");
}

static const tfx_cg_wformat fmt_rowscale = {
    TFX_DT_F32_ROWSCALE, 1, rs_state, rs_panel_state, rs_row_load, rs_cols_load, rs_panel_row_state, rs_scalar};

/* ---- the streams ---- */

static const tfx_cg_wformat *format_of(tfx_dtype dt) {
  switch (dt) {
  case TFX_DT_F32: return &fmt_f32;
  case TFX_DT_F32_ROWSCALE: return &fmt_rowscale;
  default: return NULL;
  }
}

int tfx_cg_ws_check(const tfx_node *w, char *err, size_t errlen) {
  if (format_of(w->type.dtype)) return 0;
  return tfx_errf(err, errlen,
                  "param '%s' is stored as %s, which the backend cannot read yet (weight formats with a "
                  "stream: f32, f32_rowscale)",
                  w->name ? w->name : "?", tfx_dtype_name(w->type.dtype));
}

const char *tfx_cg_ws_key(const tfx_node *w) {
  switch (w->type.dtype) {
  case TFX_DT_F32: return "";
  case TFX_DT_F32_ROWSCALE: return "_wf32rs";
  case TFX_DT_Q8_0: return "_wq8_0"; /* (the int8 linears of k_linear_q8.c) */
  case TFX_DT_Q4_0: return "_wq4_0";
  case TFX_DT_Q4_K: return "_wq4_k";
  case TFX_DT_Q6_K: return "_wq6_k";
  default: return "_w?";
  }
}

void tfx_cg_ws_init(tfx_cg *cg, tfx_cg_wstream *s, const tfx_node *w, LLVMValueRef base) {
  int64_t K = tfx_node_cols(w);
  *s = (tfx_cg_wstream){.w = w, .fmt = format_of(w->type.dtype), .base = base, .K = K};
  s->R = K > 0 ? tfx_type_numel(&w->type, 1) / K : 0;
  s->panel = w->op == TFX_OP_PARAM && w->fx.panel > 0 ? w->fx.panel : 0;
  if (!s->fmt) { /* tfx_cg_ws_check refused it before any kernel was emitted */
    tfx_cg_fail(cg, "backend: %%%d: no stream reads %s weights", w->id, tfx_dtype_name(w->type.dtype));
    s->fmt = &fmt_f32;
  }
}

/* &values[idx] from ptr (element formats). */
static LLVMValueRef elem_ptr(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef ptr, LLVMValueRef idx) {
  int64_t eb = tfx_dtype_size(s->w->type.dtype);
  if (eb == 4) return tfx_cg_fptr(cg, ptr, idx);
  LLVMValueRef off = tfx_cg_mulc(cg, idx, eb);
  return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), ptr, &off, 1, "");
}

tfx_cg_wrow tfx_cg_ws_row(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r) {
  tfx_cg_wrow h = {.ptr = elem_ptr(cg, s, s->base, tfx_cg_mulc(cg, r, s->K))};
  if (s->fmt->row_state) {
    h.row = r;
    h.state = s->fmt->state(cg, s, r);
  }
  return h;
}

tfx_cg_wrow tfx_cg_ws_row_next(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, int64_t j) {
  tfx_cg_wrow n = {.ptr = j ? elem_ptr(cg, s, h->ptr, tfx_cg_i64(cg, j * s->K)) : h->ptr};
  if (s->fmt->row_state) {
    n.row = tfx_cg_addc(cg, h->row, j);
    n.state = j ? s->fmt->state(cg, s, n.row) : h->state;
  }
  return n;
}

tfx_cg_wrow tfx_cg_ws_row_nextv(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, LLVMValueRef j) {
  tfx_cg_wrow n = {.ptr = elem_ptr(cg, s, h->ptr, tfx_cg_mulc(cg, j, s->K))};
  if (s->fmt->row_state) {
    n.row = tfx_cg_add(cg, h->row, j);
    n.state = s->fmt->state(cg, s, n.row);
  }
  return n;
}

tfx_cg_wrow tfx_cg_ws_row_skip(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, int64_t kf) {
  tfx_cg_wrow n = *h;
  if (kf) n.ptr = elem_ptr(cg, s, h->ptr, tfx_cg_i64(cg, kf));
  return n;
}

LLVMValueRef tfx_cg_ws_row_vec(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, LLVMValueRef c, int nvalid) {
  return s->fmt->row_load(cg, elem_ptr(cg, s, h->ptr, c), h->state, nvalid);
}

LLVMValueRef tfx_cg_ws_vec(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r, LLVMValueRef c, int nvalid) {
  LLVMValueRef ptr = elem_ptr(cg, s, s->base, tfx_cg_add(cg, tfx_cg_mulc(cg, r, s->K), c));
  return s->fmt->row_load(cg, ptr, s->fmt->row_state ? s->fmt->state(cg, s, r) : NULL, nvalid);
}

tfx_cg_wpanel tfx_cg_ws_panel(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef p, int64_t sb, int pr) {
  LLVMValueRef first = tfx_cg_addc(cg, tfx_cg_mulc(cg, p, s->panel), sb);
  tfx_cg_wpanel q = {.ptr = elem_ptr(cg, s, s->base, tfx_cg_mulc(cg, first, s->K)), .pr = pr};
  if (s->fmt->panel_state) q.state = s->fmt->panel_state(cg, s, first);
  return q;
}

tfx_cg_wpos tfx_cg_ws_panel_at(tfx_cg *cg, const tfx_cg_wpanel *p, LLVMValueRef k, int64_t j) {
  tfx_cg_wpos at = {tfx_cg_addc(cg, tfx_cg_mulc(cg, k, p->pr), j), j};
  return at;
}

LLVMValueRef tfx_cg_ws_panel_vec(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wpanel *p, const tfx_cg_wpos *at,
                                 int64_t dj, int nvalid) {
  LLVMValueRef ptr = elem_ptr(cg, s, p->ptr, tfx_cg_addc(cg, at->off, dj));
  return s->fmt->cols_load(cg, ptr, p->state, at->j + dj, nvalid);
}

LLVMValueRef tfx_cg_ws_panel_ptr(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wpanel *p, LLVMValueRef off) {
  return elem_ptr(cg, s, p->ptr, off);
}

LLVMValueRef tfx_cg_ws_panel_scalar(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wpanel *p, LLVMValueRef jj,
                                    LLVMValueRef off) {
  LLVMValueRef state = p->state ? s->fmt->panel_row_state(cg, p->state, jj) : NULL;
  return s->fmt->scalar_load(cg, elem_ptr(cg, s, p->ptr, off), state);
}
