/* backend/weight_stream.c — the weight streams (cg.h): how every kernel
 * reads a weight operand, whatever its storage format and layout. A format
 * is one tfx_cg_wformat: its per-row state (a scale, loaded once per row
 * cursor), its per-panel state (the panel rows' scales) and its loads,
 * which decode and scale what the common code addresses (element formats:
 * element i of the values plane at byte i * block_bytes; the scale plane
 * after it, ir/dtype.c). The kernels never see the format.
 *
 * Formats with a stream: f32 (exactly the loads the kernels always had),
 * f16 (fpext <W x half>: vcvtph2ps) and bf16 (zext, shl 16, bitcast),
 * packed or row-major; the GGUF block formats q8_0, q4_0, q5_0, q3_k, q4_k, q6_k
 * and tq2_0, the 2:4 sparse s24_f32 and s24_q8_0 (W / 2 kept values expanded
 * by their positions / keep mask), ZeroQuant's zq8_64, zq8_128, zq4_64 and zq4_128 (d * (q - z)),
 * row-major only (pack_weights leaves them so): a row is K / block blocks,
 * and a vector at column c decodes the W elements c .. of the one block
 * holding them (every kernel reads weight rows in vectors at multiples of W,
 * which divides the blocks of 32 and 256); and f32_rowscale, the toy format
 * of tests/test_weight_format.c (values divided by a per-row f32 scale: the
 * seam's test, never made by the frontend); and i8 (w8a8's per-channel int8
 * with f32_rowscale's scale plane: embedding tables, and linears whose K is
 * not a multiple of 32 or with activations = f32). Any other format is
 * refused by tfx_cg_ws_check with its name. */
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
  /* block formats (NULL for element formats): elements o .. o + nvalid - 1
   * (o i64, a multiple of W: they lie in this block) of the block at blk */
  LLVMValueRef (*block_load)(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid);
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

static const tfx_cg_wformat fmt_f32 = {TFX_DT_F32, 0, NULL, NULL, f32_row_load, f32_cols_load, NULL, f32_scalar, NULL};

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
    TFX_DT_F32_ROWSCALE, 1, rs_state, rs_panel_state, rs_row_load, rs_cols_load, rs_panel_row_state, rs_scalar, NULL};

/* ---- f16 and bf16: 2-byte elements, no state ---- */

static LLVMTypeRef vec_of(tfx_cg *cg, LLVMTypeRef elem) { return LLVMVectorType(elem, (unsigned)cg->W); }

/* nvalid 2-byte elements at ptr as a <W x ty> (ty: half or i16); lanes past
 * nvalid are 0 (a masked load: the row may end there). */
static LLVMValueRef load16(tfx_cg *cg, LLVMTypeRef ty, LLVMValueRef ptr, int nvalid) {
  LLVMTypeRef vt = vec_of(cg, ty);
  if (nvalid >= cg->W) {
    LLVMValueRef v = LLVMBuildLoad2(cg->b, vt, ptr, "");
    LLVMSetAlignment(v, 2);
    return v;
  }
  LLVMTypeRef over[2] = {vt, cg->t_ptr};
  LLVMValueRef args[4] = {ptr, tfx_cg_i32(cg, 2), tfx_cg_mask_const(cg, nvalid), LLVMConstNull(vt)};
  return tfx_cg_intrinsic(cg, "llvm.masked.load", over, 2, args, 4);
}

static LLVMValueRef load16s(tfx_cg *cg, LLVMTypeRef ty, LLVMValueRef ptr) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, ty, ptr, "");
  LLVMSetAlignment(v, 2);
  return v;
}

static LLVMValueRef f16_row_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state, int nvalid) {
  (void)state;
  return LLVMBuildFPExt(cg->b, load16(cg, LLVMHalfTypeInContext(cg->ctx), ptr, nvalid), cg->t_vf, "");
}

static LLVMValueRef f16_cols_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef pstate, int64_t j, int nvalid) {
  (void)j;
  return f16_row_load(cg, ptr, pstate, nvalid);
}

static LLVMValueRef f16_scalar(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state) {
  (void)state;
  return LLVMBuildFPExt(cg->b, load16s(cg, LLVMHalfTypeInContext(cg->ctx), ptr), cg->t_f32, "");
}

static const tfx_cg_wformat fmt_f16 = {TFX_DT_F16, 0, NULL, NULL, f16_row_load, f16_cols_load, NULL, f16_scalar, NULL};

/* bf16 bits as f32: the 16 bits become the high half. */
static LLVMValueRef bf16_widen(tfx_cg *cg, LLVMValueRef bits, int vec) {
  LLVMValueRef w = LLVMBuildZExt(cg->b, bits, vec ? cg->t_vi : cg->t_i32, "");
  LLVMValueRef sh = LLVMConstInt(cg->t_i32, 16, 0), lanes[64];
  if (vec) {
    for (int i = 0; i < cg->W; i++) lanes[i] = sh;
    sh = LLVMConstVector(lanes, (unsigned)cg->W);
  }
  w = LLVMBuildShl(cg->b, w, sh, "");
  return LLVMBuildBitCast(cg->b, w, vec ? cg->t_vf : cg->t_f32, "");
}

static LLVMValueRef bf16_row_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state, int nvalid) {
  (void)state;
  return bf16_widen(cg, load16(cg, LLVMInt16TypeInContext(cg->ctx), ptr, nvalid), 1);
}

static LLVMValueRef bf16_cols_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef pstate, int64_t j, int nvalid) {
  (void)j;
  return bf16_row_load(cg, ptr, pstate, nvalid);
}

static LLVMValueRef bf16_scalar(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state) {
  (void)state;
  return bf16_widen(cg, load16s(cg, LLVMInt16TypeInContext(cg->ctx), ptr), 0);
}

static const tfx_cg_wformat fmt_bf16 = {TFX_DT_BF16,    0,    NULL,        NULL, bf16_row_load,
                                        bf16_cols_load, NULL, bf16_scalar, NULL};

/* ---- the GGUF block formats: row-major blocks, decoded W elements at a time ---- */

static LLVMTypeRef t_i8(tfx_cg *cg) { return LLVMInt8TypeInContext(cg->ctx); }

static LLVMValueRef at_byte(tfx_cg *cg, LLVMValueRef p, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->b, t_i8(cg), p, &off, 1, "");
}

/* The f16 at byte off of p, as f32. */
static LLVMValueRef half_at(tfx_cg *cg, LLVMValueRef p, int64_t off) {
  return LLVMBuildFPExt(cg->b, load16s(cg, LLVMHalfTypeInContext(cg->ctx), tfx_cg_byteptr(cg, p, off)), cg->t_f32, "");
}

/* The f16 at p splat to <W x float>: the 16 bits splat, then widened as a
 * vector (vpbroadcastw + vcvtph2ps instead of a scalar conversion and a
 * broadcast). */
static LLVMValueRef half_splat(tfx_cg *cg, LLVMValueRef p) {
  LLVMTypeRef h = LLVMHalfTypeInContext(cg->ctx), vt = vec_of(cg, h);
  LLVMValueRef ins = LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), load16s(cg, h, p), tfx_cg_i32(cg, 0), "");
  LLVMValueRef sp = LLVMBuildShuffleVector(cg->b, ins, LLVMGetPoison(vt), LLVMConstNull(cg->t_vi), "");
  return LLVMBuildFPExt(cg->b, sp, cg->t_vf, "");
}

/* The byte at p + off (off i64) as i32 (zero-extended). */
static LLVMValueRef byte_at(tfx_cg *cg, LLVMValueRef p, LLVMValueRef off) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, t_i8(cg), at_byte(cg, p, off), "");
  LLVMSetAlignment(v, 1);
  return LLVMBuildZExt(cg->b, v, cg->t_i32, "");
}

/* W bytes at p + off (off i64): <W x i8>. The W bytes always lie in the
 * block (o + W <= the block's elements), so the load is whole. */
static LLVMValueRef bytes_at(tfx_cg *cg, LLVMValueRef p, LLVMValueRef off) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, vec_of(cg, t_i8(cg)), at_byte(cg, p, off), "");
  LLVMSetAlignment(v, 1);
  return v;
}

/* <W x i8> splat of an i8 value (given as i32 / i64). */
static LLVMValueRef splat8(tfx_cg *cg, LLVMValueRef v) {
  LLVMValueRef t = LLVMBuildTrunc(cg->b, v, t_i8(cg), "");
  LLVMTypeRef vt = vec_of(cg, t_i8(cg));
  LLVMValueRef ins = LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), t, tfx_cg_i32(cg, 0), "");
  return LLVMBuildShuffleVector(cg->b, ins, LLVMGetPoison(vt), LLVMConstNull(cg->t_vi), "");
}

static LLVMValueRef splat8c(tfx_cg *cg, int v) { return splat8(cg, LLVMConstInt(cg->t_i32, (unsigned)v, 0)); }

/* <W x i8> of small signed integers as floats, lanes past nvalid 0. */
static LLVMValueRef i8_to_f32(tfx_cg *cg, LLVMValueRef q, int nvalid) {
  LLVMValueRef f = LLVMBuildSIToFP(cg->b, q, cg->t_vf, "");
  if (nvalid < cg->W) f = LLVMBuildSelect(cg->b, tfx_cg_mask_const(cg, nvalid), f, LLVMConstNull(cg->t_vf), "");
  return f;
}

/* Q8_0 (34 bytes: f16 d, 32 x i8): x = d * q. */
static LLVMValueRef q8_0_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMValueRef q = i8_to_f32(cg, bytes_at(cg, blk, tfx_cg_addc(cg, o, 2)), nvalid);
  return LLVMBuildFMul(cg->b, half_splat(cg, blk), q, "");
}

/* ---- i8 (w8a8): value = (int8) stored * scale[stored row], the scale
 * plane as f32_rowscale's (the states are rs_*) ---- */

/* nvalid bytes at ptr as <W x i8>, lanes past nvalid 0 (a masked load: the
 * row may end there). */
static LLVMValueRef load8(tfx_cg *cg, LLVMValueRef ptr, int nvalid) {
  LLVMTypeRef vt = vec_of(cg, t_i8(cg));
  if (nvalid >= cg->W) {
    LLVMValueRef v = LLVMBuildLoad2(cg->b, vt, ptr, "");
    LLVMSetAlignment(v, 1);
    return v;
  }
  LLVMTypeRef over[2] = {vt, cg->t_ptr};
  LLVMValueRef args[4] = {ptr, tfx_cg_i32(cg, 1), tfx_cg_mask_const(cg, nvalid), LLVMConstNull(vt)};
  return tfx_cg_intrinsic(cg, "llvm.masked.load", over, 2, args, 4);
}

static LLVMValueRef i8_row_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state, int nvalid) {
  return LLVMBuildFMul(cg->b, i8_to_f32(cg, load8(cg, ptr, nvalid), nvalid), tfx_cg_splat(cg, state), "");
}

static LLVMValueRef i8_cols_load(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef pstate, int64_t j, int nvalid) {
  LLVMValueRef sc = tfx_cg_vload(cg, tfx_cg_fptrc(cg, pstate, j), nvalid);
  return LLVMBuildFMul(cg->b, i8_to_f32(cg, load8(cg, ptr, nvalid), nvalid), sc, "");
}

static LLVMValueRef i8_scalar(tfx_cg *cg, LLVMValueRef ptr, LLVMValueRef state) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, t_i8(cg), ptr, "");
  LLVMSetAlignment(v, 1);
  return LLVMBuildFMul(cg->b, LLVMBuildSIToFP(cg->b, v, cg->t_f32, ""), state, "");
}

static const tfx_cg_wformat fmt_i8 = {
    TFX_DT_I8, 1, rs_state, rs_panel_state, i8_row_load, i8_cols_load, rs_panel_row_state, i8_scalar, NULL};

/* Q4_0 (18 bytes: f16 d, 16 bytes): element e < 16 is the low nibble of
 * byte e, e + 16 the high one: x = d * (nibble - 8). */
static LLVMValueRef q4_0_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef byte = tfx_cg_addc(cg, LLVMBuildAnd(b, o, tfx_cg_i64(cg, 15), ""), 2);
  LLVMValueRef shift = LLVMBuildShl(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 4), ""), tfx_cg_i64(cg, 2), "");
  LLVMValueRef q = LLVMBuildLShr(b, bytes_at(cg, blk, byte), splat8(cg, shift), "");
  q = LLVMBuildSub(b, LLVMBuildAnd(b, q, splat8c(cg, 15), ""), splat8c(cg, 8), "");
  return LLVMBuildFMul(b, half_splat(cg, blk), i8_to_f32(cg, q, nvalid), "");
}

/* Q5_0 (22 bytes: f16 d, u32 qh, 16 bytes): the low 4 bits of element e as
 * Q4_0's nibbles (at byte 6), its fifth bit bit e of qh (little-endian):
 * x = d * (q - 16). Lane i of the vector at o takes bit o + i of qh. */
static LLVMValueRef q5_0_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef byte = tfx_cg_addc(cg, LLVMBuildAnd(b, o, tfx_cg_i64(cg, 15), ""), 6);
  LLVMValueRef shift = LLVMBuildShl(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 4), ""), tfx_cg_i64(cg, 2), "");
  LLVMValueRef lo = LLVMBuildLShr(b, bytes_at(cg, blk, byte), splat8(cg, shift), "");
  lo = LLVMBuildAnd(b, lo, splat8c(cg, 15), "");
  LLVMValueRef qh = LLVMBuildLoad2(b, cg->t_i32, tfx_cg_byteptr(cg, blk, 2), "");
  LLVMSetAlignment(qh, 1);
  qh = LLVMBuildLShr(b, qh, LLVMBuildTrunc(b, o, cg->t_i32, ""), "");
  LLVMValueRef ins = LLVMBuildInsertElement(b, LLVMGetPoison(cg->t_vi), qh, tfx_cg_i32(cg, 0), "");
  LLVMValueRef v = LLVMBuildShuffleVector(b, ins, LLVMGetPoison(cg->t_vi), LLVMConstNull(cg->t_vi), "");
  LLVMValueRef lanes[64], ones[64];
  for (int i = 0; i < cg->W; i++) {
    lanes[i] = LLVMConstInt(cg->t_i32, (unsigned)i, 0);
    ones[i] = LLVMConstInt(cg->t_i32, 1, 0);
  }
  v = LLVMBuildLShr(b, v, LLVMConstVector(lanes, (unsigned)cg->W), "");
  v = LLVMBuildAnd(b, v, LLVMConstVector(ones, (unsigned)cg->W), "");
  LLVMValueRef hi = LLVMBuildShl(b, LLVMBuildTrunc(b, v, vec_of(cg, t_i8(cg)), ""), splat8c(cg, 4), "");
  LLVMValueRef q = LLVMBuildSub(b, LLVMBuildOr(b, lo, hi, ""), splat8c(cg, 16), "");
  return LLVMBuildFMul(b, half_splat(cg, blk), i8_to_f32(cg, q, nvalid), "");
}

static LLVMValueRef sel_i32(tfx_cg *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef bb) {
  return LLVMBuildSelect(cg->b, c, a, bb, "");
}

/* Q4_K (144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and mins of 8
 * sub-blocks of 32, 128 bytes of nibbles: bytes 32c .. 32c + 31 hold
 * sub-block 2c in their low nibbles, 2c + 1 in their high ones):
 * x = (d * sc) * q - dmin * m, as the reference decoder (ir/dtype.c). */
static LLVMValueRef q4_k_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef j = LLVMBuildLShr(b, o, tfx_cg_i64(cg, 5), ""); /* the sub-block, 0 .. 7 */
  /* ggml's get_scale_min_k4 with j dynamic: scales[j], [j + 4], [j & 3] */
  LLVMValueRef sa = byte_at(cg, blk, tfx_cg_addc(cg, j, 4)), sb = byte_at(cg, blk, tfx_cg_addc(cg, j, 8));
  LLVMValueRef sc3 = byte_at(cg, blk, tfx_cg_addc(cg, LLVMBuildAnd(b, j, tfx_cg_i64(cg, 3), ""), 4));
  LLVMValueRef c63 = LLVMConstInt(cg->t_i32, 63, 0), c15 = LLVMConstInt(cg->t_i32, 15, 0);
  LLVMValueRef c4 = LLVMConstInt(cg->t_i32, 4, 0), c6 = LLVMConstInt(cg->t_i32, 6, 0);
  LLVMValueRef lo = LLVMBuildICmp(b, LLVMIntULT, j, tfx_cg_i64(cg, 4), "");
  LLVMValueRef sc_hi =
      LLVMBuildOr(b, LLVMBuildAnd(b, sb, c15, ""), LLVMBuildShl(b, LLVMBuildLShr(b, sc3, c6, ""), c4, ""), "");
  LLVMValueRef m_hi =
      LLVMBuildOr(b, LLVMBuildLShr(b, sb, c4, ""), LLVMBuildShl(b, LLVMBuildLShr(b, sa, c6, ""), c4, ""), "");
  LLVMValueRef sc = sel_i32(cg, lo, LLVMBuildAnd(b, sa, c63, ""), sc_hi);
  LLVMValueRef m = sel_i32(cg, lo, LLVMBuildAnd(b, sb, c63, ""), m_hi);
  LLVMValueRef ds = LLVMBuildFMul(b, half_at(cg, blk, 0), LLVMBuildUIToFP(b, sc, cg->t_f32, ""), "");
  LLVMValueRef dm = LLVMBuildFMul(b, half_at(cg, blk, 2), LLVMBuildUIToFP(b, m, cg->t_f32, ""), "");
  /* the nibbles: bytes 16 + 32 (o / 64) + o % 32, high nibbles for odd j */
  LLVMValueRef byte = tfx_cg_add(cg, LLVMBuildShl(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 6), ""), tfx_cg_i64(cg, 5), ""),
                                 LLVMBuildAnd(b, o, tfx_cg_i64(cg, 31), ""));
  LLVMValueRef shift = LLVMBuildShl(b, LLVMBuildAnd(b, j, tfx_cg_i64(cg, 1), ""), tfx_cg_i64(cg, 2), "");
  LLVMValueRef q = LLVMBuildLShr(b, bytes_at(cg, blk, tfx_cg_addc(cg, byte, 16)), splat8(cg, shift), "");
  q = LLVMBuildAnd(b, q, splat8c(cg, 15), "");
  LLVMValueRef x = LLVMBuildFMul(b, tfx_cg_splat(cg, ds), i8_to_f32(cg, q, nvalid), "");
  x = LLVMBuildFSub(b, x, tfx_cg_splat(cg, dm), "");
  if (nvalid < cg->W) x = LLVMBuildSelect(b, tfx_cg_mask_const(cg, nvalid), x, LLVMConstNull(cg->t_vf), "");
  return x;
}

/* Q6_K (210 bytes: 128 bytes ql, 64 bytes qh, 16 int8 scales, f16 d): in
 * half h (o / 128), element l + 32 i (l < 32) takes the nibble i >> 1 of
 * ql[64 h + l + 32 (i & 1)] and the 2 bits 2 i of qh[32 h + l], its scale
 * sc[8 h + l / 16 + 2 i]: x = (d * sc) * (q - 32). */
static LLVMValueRef q6_k_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef h = LLVMBuildLShr(b, o, tfx_cg_i64(cg, 7), "");
  LLVMValueRef i = LLVMBuildAnd(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 5), ""), tfx_cg_i64(cg, 3), "");
  LLVMValueRef l = LLVMBuildAnd(b, o, tfx_cg_i64(cg, 31), "");
  LLVMValueRef one = tfx_cg_i64(cg, 1);
  LLVMValueRef qlo =
      tfx_cg_add(cg, tfx_cg_add(cg, tfx_cg_mulc(cg, h, 64), l), tfx_cg_mulc(cg, LLVMBuildAnd(b, i, one, ""), 32));
  LLVMValueRef qho = tfx_cg_addc(cg, tfx_cg_add(cg, tfx_cg_mulc(cg, h, 32), l), 128);
  LLVMValueRef s1 = LLVMBuildShl(b, LLVMBuildLShr(b, i, one, ""), tfx_cg_i64(cg, 2), "");
  LLVMValueRef s2 = LLVMBuildShl(b, i, one, "");
  LLVMValueRef lo4 = LLVMBuildAnd(b, LLVMBuildLShr(b, bytes_at(cg, blk, qlo), splat8(cg, s1), ""), splat8c(cg, 15), "");
  LLVMValueRef hi2 = LLVMBuildAnd(b, LLVMBuildLShr(b, bytes_at(cg, blk, qho), splat8(cg, s2), ""), splat8c(cg, 3), "");
  LLVMValueRef q = LLVMBuildOr(b, lo4, LLVMBuildShl(b, hi2, splat8c(cg, 4), ""), "");
  q = LLVMBuildSub(b, q, splat8c(cg, 32), "");
  LLVMValueRef so =
      tfx_cg_addc(cg,
                  tfx_cg_add(cg, tfx_cg_add(cg, tfx_cg_mulc(cg, h, 8), LLVMBuildLShr(b, l, tfx_cg_i64(cg, 4), "")),
                             tfx_cg_mulc(cg, i, 2)),
                  192);
  LLVMValueRef sc = LLVMBuildLoad2(b, t_i8(cg), at_byte(cg, blk, so), "");
  LLVMSetAlignment(sc, 1);
  LLVMValueRef ds = LLVMBuildFMul(b, half_at(cg, blk, 208), LLVMBuildSIToFP(b, sc, cg->t_f32, ""), "");
  return LLVMBuildFMul(b, tfx_cg_splat(cg, ds), i8_to_f32(cg, q, nvalid), "");
}

/* Q3_K (110 bytes: 32 bytes hmask, 64 bytes qs, 12 scale bytes, f16 d):
 * element e has the 2 bits 2 ((e / 32) % 4) of qs[32 (e / 128) + e % 32],
 * the high bit e / 32 of hmask[e % 32], the 6-bit scale of group j = e / 16
 * (low 4 bits of scales[j % 8] >> 4 (j / 8), high 2 of scales[8 + j % 4] >>
 * 2 (j / 4)): x = (d * (sc - 32)) * ((lo | hi << 2) - 4), as the reference
 * decoder. The W elements at o lie in one group of 16, so one scale. */
static LLVMValueRef q3_k_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef l = LLVMBuildAnd(b, o, tfx_cg_i64(cg, 31), "");
  LLVMValueRef i = LLVMBuildLShr(b, o, tfx_cg_i64(cg, 5), ""); /* e / 32: 0 .. 7 */
  LLVMValueRef qo = tfx_cg_addc(
      cg, tfx_cg_add(cg, LLVMBuildShl(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 7), ""), tfx_cg_i64(cg, 5), ""), l), 32);
  LLVMValueRef s2 = LLVMBuildShl(b, LLVMBuildAnd(b, i, tfx_cg_i64(cg, 3), ""), tfx_cg_i64(cg, 1), "");
  LLVMValueRef lo = LLVMBuildAnd(b, LLVMBuildLShr(b, bytes_at(cg, blk, qo), splat8(cg, s2), ""), splat8c(cg, 3), "");
  LLVMValueRef hi = LLVMBuildAnd(b, LLVMBuildLShr(b, bytes_at(cg, blk, l), splat8(cg, i), ""), splat8c(cg, 1), "");
  LLVMValueRef q = LLVMBuildOr(b, lo, LLVMBuildShl(b, hi, splat8c(cg, 2), ""), "");
  q = LLVMBuildSub(b, q, splat8c(cg, 4), "");
  /* the group's scale */
  LLVMValueRef j = LLVMBuildLShr(b, o, tfx_cg_i64(cg, 4), "");
  LLVMValueRef sl = byte_at(cg, blk, tfx_cg_addc(cg, LLVMBuildAnd(b, j, tfx_cg_i64(cg, 7), ""), 96));
  sl = LLVMBuildLShr(b, sl,
                     LLVMBuildTrunc(b,
                                    LLVMBuildShl(b, LLVMBuildLShr(b, j, tfx_cg_i64(cg, 3), ""), tfx_cg_i64(cg, 2), ""),
                                    cg->t_i32, ""),
                     "");
  sl = LLVMBuildAnd(b, sl, LLVMConstInt(cg->t_i32, 15, 0), "");
  LLVMValueRef sh = byte_at(cg, blk, tfx_cg_addc(cg, LLVMBuildAnd(b, j, tfx_cg_i64(cg, 3), ""), 104));
  sh = LLVMBuildLShr(b, sh,
                     LLVMBuildTrunc(b,
                                    LLVMBuildShl(b, LLVMBuildLShr(b, j, tfx_cg_i64(cg, 2), ""), tfx_cg_i64(cg, 1), ""),
                                    cg->t_i32, ""),
                     "");
  sh = LLVMBuildAnd(b, sh, LLVMConstInt(cg->t_i32, 3, 0), "");
  LLVMValueRef sc = LLVMBuildOr(b, sl, LLVMBuildShl(b, sh, LLVMConstInt(cg->t_i32, 4, 0), ""), "");
  sc = LLVMBuildSub(b, sc, LLVMConstInt(cg->t_i32, 32, 0), "");
  LLVMValueRef ds = LLVMBuildFMul(b, half_at(cg, blk, 108), LLVMBuildSIToFP(b, sc, cg->t_f32, ""), "");
  return LLVMBuildFMul(b, tfx_cg_splat(cg, ds), i8_to_f32(cg, q, nvalid), "");
}

/* TQ2_0 (66 bytes: 64 bytes qs, f16 d): element 128 j + 32 n + m is bits
 * 2 n of qs[32 j + m]: x = d * (q - 1). */
static LLVMValueRef tq2_0_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef byte = tfx_cg_add(cg, LLVMBuildShl(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 7), ""), tfx_cg_i64(cg, 5), ""),
                                 LLVMBuildAnd(b, o, tfx_cg_i64(cg, 31), ""));
  LLVMValueRef shift = LLVMBuildShl(
      b, LLVMBuildAnd(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 5), ""), tfx_cg_i64(cg, 3), ""), tfx_cg_i64(cg, 1), "");
  LLVMValueRef q = LLVMBuildLShr(b, bytes_at(cg, blk, byte), splat8(cg, shift), "");
  q = LLVMBuildSub(b, LLVMBuildAnd(b, q, splat8c(cg, 3), ""), splat8c(cg, 1), "");
  return LLVMBuildFMul(b, tfx_cg_splat(cg, half_at(cg, blk, 64)), i8_to_f32(cg, q, nvalid), "");
}

/* s24_f32 (ir/dtype.c): W elements at o (a multiple of 4) of
 * a block of 32 from its W / 2 kept values v (<W / 2 x float>)
 * and its position word at idx_off: lane i (group g = i / 4,
 * position i % 4) takes v[2 g] where the group's first position is i % 4,
 * v[2 g + 1] where its second is, else 0. */
static LLVMValueRef s24_expand(tfx_cg *cg, LLVMValueRef blk, int64_t idx_off, LLVMValueRef o, LLVMValueRef v,
                               int nvalid) {
  LLVMBuilderRef b = cg->b;
  int W = cg->W;
  LLVMValueRef e0[64], e1[64], gsh[64], pos[64];
  for (int i = 0; i < W; i++) {
    e0[i] = tfx_cg_i32(cg, 2 * (i / 4));
    e1[i] = tfx_cg_i32(cg, 2 * (i / 4) + 1);
    gsh[i] = LLVMConstInt(cg->t_i32, (unsigned)(4 * (i / 4)), 0);
    pos[i] = LLVMConstInt(cg->t_i32, (unsigned)(i % 4), 0);
  }
  LLVMValueRef v0 = LLVMBuildShuffleVector(b, v, LLVMGetPoison(LLVMTypeOf(v)), LLVMConstVector(e0, (unsigned)W), "");
  LLVMValueRef v1 = LLVMBuildShuffleVector(b, v, LLVMGetPoison(LLVMTypeOf(v)), LLVMConstVector(e1, (unsigned)W), "");
  LLVMValueRef idx = LLVMBuildLoad2(b, cg->t_i32, tfx_cg_byteptr(cg, blk, idx_off), "");
  LLVMSetAlignment(idx, 1);
  idx = LLVMBuildLShr(b, idx, LLVMBuildTrunc(b, o, cg->t_i32, ""), ""); /* group o / 4 at bit 0 */
  LLVMValueRef ins = LLVMBuildInsertElement(b, LLVMGetPoison(cg->t_vi), idx, tfx_cg_i32(cg, 0), "");
  LLVMValueRef nib = LLVMBuildShuffleVector(b, ins, LLVMGetPoison(cg->t_vi), LLVMConstNull(cg->t_vi), "");
  nib = LLVMBuildLShr(b, nib, LLVMConstVector(gsh, (unsigned)W), "");
  LLVMValueRef three = LLVMBuildShuffleVector(
      b, LLVMBuildInsertElement(b, LLVMGetPoison(cg->t_vi), tfx_cg_i32(cg, 3), tfx_cg_i32(cg, 0), ""),
      LLVMGetPoison(cg->t_vi), LLVMConstNull(cg->t_vi), "");
  LLVMValueRef two = LLVMBuildShuffleVector(
      b, LLVMBuildInsertElement(b, LLVMGetPoison(cg->t_vi), tfx_cg_i32(cg, 2), tfx_cg_i32(cg, 0), ""),
      LLVMGetPoison(cg->t_vi), LLVMConstNull(cg->t_vi), "");
  LLVMValueRef p0 = LLVMBuildAnd(b, nib, three, "");
  LLVMValueRef p1 = LLVMBuildAnd(b, LLVMBuildLShr(b, nib, two, ""), three, "");
  LLVMValueRef pv = LLVMConstVector(pos, (unsigned)W);
  LLVMValueRef x = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, p1, pv, ""), v1, LLVMConstNull(cg->t_vf), "");
  x = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, p0, pv, ""), v0, x, "");
  if (nvalid < W) x = LLVMBuildSelect(b, tfx_cg_mask_const(cg, nvalid), x, LLVMConstNull(cg->t_vf), "");
  return x;
}

/* s24_f32 (68 bytes: 16 f32 kept values, u32 positions). */
static LLVMValueRef s24_f32_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef vt = LLVMVectorType(cg->t_f32, (unsigned)(cg->W / 2));
  LLVMValueRef v = LLVMBuildLoad2(b, vt, at_byte(cg, blk, LLVMBuildShl(b, o, tfx_cg_i64(cg, 1), "")), "");
  LLVMSetAlignment(v, 4);
  return s24_expand(cg, blk, 64, o, v, nvalid);
}

/* s24_q8_0 (22 bytes: f16 d, u32 keep mask, 16 x i8 kept values in
 * position order): d * q expanded under the mask's bits o .. o + W - 1
 * (tfx_cg_s24_expand). The linears read it this way only with act_f32
 * (else k_linear_q8.c's int8 kernels). */
static LLVMValueRef s24_q8_0_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  int hw = cg->W / 2;
  LLVMTypeRef vt = LLVMVectorType(t_i8(cg), (unsigned)hw), vf = LLVMVectorType(cg->t_f32, (unsigned)hw);
  LLVMValueRef q =
      LLVMBuildLoad2(b, vt, at_byte(cg, blk, tfx_cg_addc(cg, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 1), ""), 6)), "");
  LLVMSetAlignment(q, 1);
  LLVMValueRef d = half_at(cg, blk, 0);
  LLVMValueRef dv =
      LLVMBuildShuffleVector(b, LLVMBuildInsertElement(b, LLVMGetPoison(vf), d, tfx_cg_i32(cg, 0), ""),
                             LLVMGetPoison(vf), LLVMConstNull(LLVMVectorType(cg->t_i32, (unsigned)hw)), "");
  LLVMValueRef v = LLVMBuildFMul(b, LLVMBuildSIToFP(b, q, vf, ""), dv, "");
  LLVMValueRef mask = LLVMBuildLoad2(b, cg->t_i32, tfx_cg_byteptr(cg, blk, 2), "");
  LLVMSetAlignment(mask, 1);
  mask = LLVMBuildLShr(b, mask, LLVMBuildTrunc(b, o, cg->t_i32, ""), ""); /* lane o at bit 0 */
  LLVMValueRef x = tfx_cg_s24_expand(cg, mask, v, cg->W);
  if (nvalid < cg->W) x = LLVMBuildSelect(b, tfx_cg_mask_const(cg, nvalid), x, LLVMConstNull(cg->t_vf), "");
  return x;
}

/* ZeroQuant's values of the W codes q (i32 lanes) of the block at blk (f16
 * d, i16 z first): d * (q - z), q - z exact in i32; lanes from nvalid on 0. */
static LLVMValueRef zq_values(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef q, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef z =
      LLVMBuildSExt(b, load16s(cg, LLVMInt16TypeInContext(cg->ctx), tfx_cg_byteptr(cg, blk, 2)), cg->t_i32, "");
  LLVMValueRef zi = LLVMBuildInsertElement(b, LLVMGetPoison(cg->t_vi), z, tfx_cg_i32(cg, 0), "");
  LLVMValueRef zv = LLVMBuildShuffleVector(b, zi, LLVMGetPoison(cg->t_vi), LLVMConstNull(cg->t_vi), "");
  LLVMValueRef f = LLVMBuildSIToFP(b, LLVMBuildSub(b, q, zv, ""), cg->t_vf, "");
  if (nvalid < cg->W) f = LLVMBuildSelect(b, tfx_cg_mask_const(cg, nvalid), f, LLVMConstNull(cg->t_vf), "");
  return LLVMBuildFMul(b, half_splat(cg, blk), f, "");
}

/* zq8_64 / zq8_128 (ZeroQuant, 4 + n bytes: f16 d, i16 z, n u8 codes):
 * x = d * (q - z), q - z exact in i32. */
static LLVMValueRef zq8_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef q = LLVMBuildZExt(b, bytes_at(cg, blk, tfx_cg_addc(cg, o, 4)), cg->t_vi, "");
  return zq_values(cg, blk, q, nvalid);
}

/* zq4_64 / zq4_128 (4 + n / 2 bytes: f16 d, i16 z, 4-bit codes by 32:
 * byte j of a 32 holds element j low, j + 16 high): x = d * (q - z). The W
 * elements at o lie in one half of a 32: bytes 4 + 16 (o / 32) + o % 16,
 * shifted by 4 ((o / 16) % 2). */
static LLVMValueRef zq4_block(tfx_cg *cg, LLVMValueRef blk, LLVMValueRef o, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef byte = tfx_cg_add(cg, LLVMBuildShl(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 5), ""), tfx_cg_i64(cg, 4), ""),
                                 LLVMBuildAnd(b, o, tfx_cg_i64(cg, 15), ""));
  LLVMValueRef shift = LLVMBuildShl(
      b, LLVMBuildAnd(b, LLVMBuildLShr(b, o, tfx_cg_i64(cg, 4), ""), tfx_cg_i64(cg, 1), ""), tfx_cg_i64(cg, 2), "");
  LLVMValueRef q = LLVMBuildLShr(b, bytes_at(cg, blk, tfx_cg_addc(cg, byte, 4)), splat8(cg, shift), "");
  q = LLVMBuildZExt(b, LLVMBuildAnd(b, q, splat8c(cg, 15), ""), cg->t_vi, "");
  return zq_values(cg, blk, q, nvalid);
}

static const tfx_cg_wformat fmt_q3_k = {TFX_DT_Q3_K, 0, NULL, NULL, NULL, NULL, NULL, NULL, q3_k_block};
static const tfx_cg_wformat fmt_tq2_0 = {TFX_DT_TQ2_0, 0, NULL, NULL, NULL, NULL, NULL, NULL, tq2_0_block};
static const tfx_cg_wformat fmt_s24_f32 = {TFX_DT_S24_F32, 0, NULL, NULL, NULL, NULL, NULL, NULL, s24_f32_block};
static const tfx_cg_wformat fmt_s24_q8_0 = {TFX_DT_S24_Q8_0, 0, NULL, NULL, NULL, NULL, NULL, NULL, s24_q8_0_block};
static const tfx_cg_wformat fmt_q8_0 = {TFX_DT_Q8_0, 0, NULL, NULL, NULL, NULL, NULL, NULL, q8_0_block};
static const tfx_cg_wformat fmt_q4_0 = {TFX_DT_Q4_0, 0, NULL, NULL, NULL, NULL, NULL, NULL, q4_0_block};
static const tfx_cg_wformat fmt_q4_k = {TFX_DT_Q4_K, 0, NULL, NULL, NULL, NULL, NULL, NULL, q4_k_block};
static const tfx_cg_wformat fmt_q6_k = {TFX_DT_Q6_K, 0, NULL, NULL, NULL, NULL, NULL, NULL, q6_k_block};
static const tfx_cg_wformat fmt_q5_0 = {TFX_DT_Q5_0, 0, NULL, NULL, NULL, NULL, NULL, NULL, q5_0_block};
static const tfx_cg_wformat fmt_zq8_64 = {TFX_DT_ZQ8_64, 0, NULL, NULL, NULL, NULL, NULL, NULL, zq8_block};
static const tfx_cg_wformat fmt_zq8_128 = {TFX_DT_ZQ8_128, 0, NULL, NULL, NULL, NULL, NULL, NULL, zq8_block};
static const tfx_cg_wformat fmt_zq4_64 = {TFX_DT_ZQ4_64, 0, NULL, NULL, NULL, NULL, NULL, NULL, zq4_block};
static const tfx_cg_wformat fmt_zq4_128 = {TFX_DT_ZQ4_128, 0, NULL, NULL, NULL, NULL, NULL, NULL, zq4_block};

/* ---- the streams ---- */

static const tfx_cg_wformat *format_of(tfx_dtype dt) {
  switch (dt) {
  case TFX_DT_F32: return &fmt_f32;
  case TFX_DT_F32_ROWSCALE: return &fmt_rowscale;
  case TFX_DT_F16: return &fmt_f16;
  case TFX_DT_BF16: return &fmt_bf16;
  case TFX_DT_Q8_0: return &fmt_q8_0;
  case TFX_DT_Q4_0: return &fmt_q4_0;
  case TFX_DT_Q4_K: return &fmt_q4_k;
  case TFX_DT_Q6_K: return &fmt_q6_k;
  case TFX_DT_Q5_0: return &fmt_q5_0;
  case TFX_DT_I8: return &fmt_i8;
  case TFX_DT_Q3_K: return &fmt_q3_k;
  case TFX_DT_TQ2_0:
  case TFX_DT_TQ2_T: return &fmt_tq2_0; /* the same bytes (tq2_t: one d per tensor) */
  case TFX_DT_S24_F32: return &fmt_s24_f32;
  case TFX_DT_S24_Q8_0: return &fmt_s24_q8_0;
  case TFX_DT_ZQ8_64: return &fmt_zq8_64;
  case TFX_DT_ZQ8_128: return &fmt_zq8_128;
  case TFX_DT_ZQ4_64: return &fmt_zq4_64;
  case TFX_DT_ZQ4_128: return &fmt_zq4_128;
  default: return NULL;
  }
}

int tfx_cg_ws_check(const tfx_node *w, char *err, size_t errlen) {
  if (format_of(w->type.dtype)) return 0;
  return tfx_errf(
      err, errlen,
      "param '%s' is stored as %s, which the backend cannot read yet (weight formats with a "
      "stream: f32, f16, bf16, i8, q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, tq2_0, tq2_t, s24_f32, s24_q8_0, zq8_64, "
      "zq8_128, zq4_64, zq4_128, "
      "f32_rowscale)",
      w->name ? w->name : "?", tfx_dtype_name(w->type.dtype));
}

const char *tfx_cg_ws_key(const tfx_node *w) {
  switch (w->type.dtype) {
  case TFX_DT_F32: return "";
  case TFX_DT_F32_ROWSCALE: return "_wf32rs";
  case TFX_DT_F16: return "_wf16";
  case TFX_DT_BF16: return "_wbf16";
  case TFX_DT_Q8_0: return "_wq8_0";
  case TFX_DT_Q4_0: return "_wq4_0";
  case TFX_DT_Q4_K: return "_wq4_k";
  case TFX_DT_Q6_K: return "_wq6_k";
  case TFX_DT_Q3_K: return "_wq3_k";
  case TFX_DT_Q5_0: return "_wq5_0";
  case TFX_DT_I8: return "_wi8";
  case TFX_DT_TQ2_0: return "_wtq2_0";
  case TFX_DT_TQ2_T: return "_wtq2_t"; /* tq2_0's bytes, other activations: another int8 kernel body */
  case TFX_DT_S24_F32: return "_ws24f32";
  case TFX_DT_S24_Q8_0: return "_ws24q8_0";
  case TFX_DT_ZQ8_64: return "_wzq8_64";
  case TFX_DT_ZQ8_128: return "_wzq8_128";
  case TFX_DT_ZQ4_64: return "_wzq4_64";
  case TFX_DT_ZQ4_128: return "_wzq4_128";
  default: return "_w?";
  }
}

void tfx_cg_ws_init(tfx_cg *cg, tfx_cg_wstream *s, const tfx_node *w, LLVMValueRef base) {
  int64_t K = tfx_node_cols(w);
  const tfx_dtype_info *info = tfx_dtype_info_of(w->type.dtype);
  *s = (tfx_cg_wstream){.w = w, .fmt = format_of(w->type.dtype), .base = base, .K = K};
  s->R = K > 0 ? tfx_type_numel(&w->type, 1) / K : 0;
  s->panel = w->op == TFX_OP_PARAM && w->fx.panel > 0 ? w->fx.panel : 0;
  if (!s->fmt) { /* tfx_cg_ws_check refused it before any kernel was emitted */
    tfx_cg_fail(cg, "backend: %%%d: no stream reads %s weights", w->id, tfx_dtype_name(w->type.dtype));
    s->fmt = &fmt_f32;
  } else if (s->fmt->block_load) {
    s->block = info->block;
    s->block_bytes = info->block_bytes;
    if (s->panel || K % s->block || s->block % cg->W)
      tfx_cg_fail(cg, "backend: %%%d: %s weights must be row-major rows of whole blocks", w->id,
                  tfx_dtype_name(w->type.dtype));
  }
}

/* &values[idx] from ptr (element formats). */
static LLVMValueRef elem_ptr(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef ptr, LLVMValueRef idx) {
  int64_t eb = tfx_dtype_size(s->w->type.dtype);
  if (eb == 4) return tfx_cg_fptr(cg, ptr, idx);
  LLVMValueRef off = tfx_cg_mulc(cg, idx, eb);
  return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), ptr, &off, 1, "");
}

/* The start of the row nrows (i64) rows after the one at ptr. */
static LLVMValueRef rows_ptr(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef ptr, LLVMValueRef nrows) {
  if (!s->block) return elem_ptr(cg, s, ptr, tfx_cg_mulc(cg, nrows, s->K));
  LLVMValueRef off = tfx_cg_mulc(cg, nrows, s->K / s->block * s->block_bytes);
  return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), ptr, &off, 1, "");
}

/* Block formats: elements c .. c + nvalid - 1 (c i64, a multiple of W) of
 * the row at ptr: the block holding them, decoded. */
static LLVMValueRef block_vec(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef ptr, LLVMValueRef c, int nvalid) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef bi = LLVMBuildUDiv(b, c, tfx_cg_i64(cg, s->block), "");
  LLVMValueRef o = LLVMBuildURem(b, c, tfx_cg_i64(cg, s->block), "");
  LLVMValueRef off = tfx_cg_mulc(cg, bi, s->block_bytes);
  return s->fmt->block_load(cg, LLVMBuildInBoundsGEP2(b, LLVMInt8TypeInContext(cg->ctx), ptr, &off, 1, ""), o, nvalid);
}

tfx_cg_wrow tfx_cg_ws_row(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r) {
  tfx_cg_wrow h = {.ptr = rows_ptr(cg, s, s->base, r)};
  if (s->fmt->row_state) {
    h.row = r;
    h.state = s->fmt->state(cg, s, r);
  }
  return h;
}

tfx_cg_wrow tfx_cg_ws_row_next(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, int64_t j) {
  tfx_cg_wrow n = {.ptr = h->ptr, .k0 = h->k0};
  if (j && s->block)
    n.ptr = rows_ptr(cg, s, h->ptr, tfx_cg_i64(cg, j));
  else if (j)
    n.ptr = elem_ptr(cg, s, h->ptr, tfx_cg_i64(cg, j * s->K));
  if (s->fmt->row_state) {
    n.row = tfx_cg_addc(cg, h->row, j);
    n.state = j ? s->fmt->state(cg, s, n.row) : h->state;
  }
  return n;
}

tfx_cg_wrow tfx_cg_ws_row_nextv(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, LLVMValueRef j) {
  tfx_cg_wrow n = {.ptr = rows_ptr(cg, s, h->ptr, j), .k0 = h->k0};
  if (s->fmt->row_state) {
    n.row = tfx_cg_add(cg, h->row, j);
    n.state = s->fmt->state(cg, s, n.row);
  }
  return n;
}

tfx_cg_wrow tfx_cg_ws_row_skip(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, int64_t kf) {
  tfx_cg_wrow n = *h;
  if (s->block) /* the cursor stays at the row's start: the loads find the block */
    n.k0 += kf;
  else if (kf)
    n.ptr = elem_ptr(cg, s, h->ptr, tfx_cg_i64(cg, kf));
  return n;
}

LLVMValueRef tfx_cg_ws_row_vec(tfx_cg *cg, const tfx_cg_wstream *s, const tfx_cg_wrow *h, LLVMValueRef c, int nvalid) {
  if (s->block) return block_vec(cg, s, h->ptr, tfx_cg_addc(cg, c, h->k0), nvalid);
  return s->fmt->row_load(cg, elem_ptr(cg, s, h->ptr, c), h->state, nvalid);
}

LLVMValueRef tfx_cg_ws_vec(tfx_cg *cg, const tfx_cg_wstream *s, LLVMValueRef r, LLVMValueRef c, int nvalid) {
  if (s->block) return block_vec(cg, s, rows_ptr(cg, s, s->base, r), c, nvalid);
  LLVMValueRef ptr = elem_ptr(cg, s, s->base, tfx_cg_add(cg, tfx_cg_mulc(cg, r, s->K), c));
  return s->fmt->row_load(cg, ptr, s->fmt->row_state ? s->fmt->state(cg, s, r) : NULL, nvalid);
}

/* Packed panels hold element formats only (pack_weights leaves block formats
 * row-major; tfx_cg_ws_init refuses a packed block weight). */
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
