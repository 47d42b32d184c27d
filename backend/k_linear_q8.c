/* backend/k_linear_q8.c — the int8 dot-product path of the GEMM (k_linear.c)
 * for LINEAR and FUSED_LINEAR nodes whose weight is q8_0, q4_0, q4_k or q6_k
 * (tfx_node_act_quant, ir/quantize.c), row-major as pack_weights leaves them.
 *
 * A work item is a panel of TFX_CG_LIN_NB weight rows, as in k_linear.c.
 * Its rows of x are taken in blocks (one row when the rows are known to be
 * few: decode; else blocks of QMR, the last one clamped). Each row of the
 * block goes through the prologue hooks (norm) and is quantized into stack
 * buffers per TFX_ACT_QBLOCK = 32 values exactly as tfx_act_quant_block
 * defines it (d = amax / 127 in f32, id = d ? 1 / d : 0, q = rint(x * id)),
 * with the lane sums of q (groups of 4 bytes, the offsets of unsigned weight
 * codes). Then tiles of mr rows of x x nc weight rows stream the weight
 * blocks once: per 32-element sub-block, the weight's integers are decoded
 * into 32 bytes and dotted with the activation's in 8 i32 lanes (lane l: bytes
 * 4l .. 4l + 3), scaled by the block scales into <8 x float> accumulators
 * (one per row pair, across all blocks: ggml's scheme; a decode tile is one
 * weight row, or a GLU column's two, so a panel streams through memory in
 * order, with two accumulator sets), reduced once per
 * output into the block buffer the epilogue reads (k_linear.c's
 * tfx_cg_gemm_rows: bias, RoPE, activation, GLU, residual, stores, all
 * unchanged).
 *
 * Formats (ir/dtype.c's layouts): q8_0 w = d * q (signed q: |q| dotted with
 * sign(q) * x on x86), q4_0 w = d * (q - 8) (dot - 8 * sum x), q4_k
 * w = d * sc * q - dmin * m per 32 (dot * d * sc - sum x * dmin * m), q6_k
 * w = d * sc * (q - 32) per 16 (lanes 0-3 and 4-7 take the two scales).
 * Instructions (tfx_cg_target.i8dot): vpdpbusd ymm (AVX512-VNNI with VL, or
 * AVX-VNNI), AVX2 vpmaddubsw + vpmaddwd (|u| * |s| <= 128 * 127: pairs never
 * saturate), else plain IR (extend, multiply, add). f16 scales are widened
 * by vcvtph2ps on those x86 paths (F16C), else with integer ops and one
 * multiply (an inf or NaN scale is not preserved there). */
#include "cg.h"

#define NB TFX_CG_LIN_NB
#define QB TFX_ACT_QBLOCK
#define QMR 4 /* rows of x per tile when the rows are not known to be few */

typedef struct {
  const tfx_cg_gemm *G;
  const tfx_cg_panel *P;
  tfx_dtype dt;
  int64_t K, nqb;       /* activation blocks per row */
  int64_t wblk, wbytes; /* elements and bytes of a weight block */
  int64_t row_bytes;    /* bytes of a weight row */
  LLVMTypeRef t_i8, t_i16, t_b16, t_b32, t_i8x8, t_f8;
  LLVMValueRef xq, xd, xs; /* [QMR][K] i8, [QMR][nqb] f32, [QMR][nqb][8] i32 */
  int vnni, maddubs;
  int f16c; /* vcvtph2ps for the f16 scales (every AVX2-class x86 CPU has F16C) */
} qctx;

static LLVMValueRef bptr(tfx_cg *cg, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), base, &off, 1, "");
}

static LLVMValueRef load_a(tfx_cg *cg, LLVMTypeRef ty, LLVMValueRef ptr, unsigned align) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, ty, ptr, "");
  LLVMSetAlignment(v, align);
  return v;
}

static LLVMValueRef ivec(LLVMTypeRef elem, int n, long long v) {
  LLVMValueRef e[64];
  for (int i = 0; i < n; i++) e[i] = LLVMConstInt(elem, (unsigned long long)v, 1);
  return LLVMConstVector(e, (unsigned)n);
}

static LLVMValueRef shuf(tfx_cg *cg, LLVMValueRef a, LLVMValueRef b, const int *idx, int n) {
  LLVMValueRef e[64];
  for (int i = 0; i < n; i++) e[i] = tfx_cg_i32(cg, idx[i]);
  return LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(e, (unsigned)n), "");
}

static LLVMValueRef splat8(tfx_cg *cg, qctx *c, LLVMValueRef s) {
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetPoison(c->t_f8), s, tfx_cg_i32(cg, 0), "");
  int z[8] = {0};
  return shuf(cg, v, v, z, 8);
}

/* The f16 at ptr as f32: magnitude bits moved to f32's place and scaled by
 * 2^112 (exact for normal and subnormal halves), then the sign. */
static LLVMValueRef half_at(tfx_cg *cg, int f16c, LLVMValueRef ptr) {
  LLVMBuilderRef b = cg->b;
  if (f16c) return LLVMBuildFPExt(b, load_a(cg, LLVMHalfTypeInContext(cg->ctx), ptr, 1), cg->t_f32, "half");
  LLVMValueRef h = LLVMBuildZExt(b, load_a(cg, LLVMInt16TypeInContext(cg->ctx), ptr, 1), cg->t_i32, "");
  LLVMValueRef mag = LLVMBuildShl(b, LLVMBuildAnd(b, h, tfx_cg_i32(cg, 0x7fff), ""), tfx_cg_i32(cg, 13), "");
  LLVMValueRef f = LLVMBuildFMul(b, LLVMBuildBitCast(b, mag, cg->t_f32, ""), LLVMConstReal(cg->t_f32, 0x1p112), "");
  LLVMValueRef sign = LLVMBuildShl(b, LLVMBuildAnd(b, h, tfx_cg_i32(cg, 0x8000), ""), tfx_cg_i32(cg, 16), "");
  LLVMValueRef bits = LLVMBuildOr(b, LLVMBuildBitCast(b, f, cg->t_i32, ""), sign, "");
  return LLVMBuildBitCast(b, bits, cg->t_f32, "half");
}

/* acc (<8 x i32>) + the dot products of 32 bytes u and s in 8 lanes (lane l:
 * bytes 4l .. 4l + 3); u unsigned (or signed when u_signed: only the plain
 * IR path takes it), s signed. */
static LLVMValueRef idot(tfx_cg *cg, qctx *c, LLVMValueRef u, LLVMValueRef s, LLVMValueRef acc, int u_signed) {
  LLVMBuilderRef b = cg->b;
  if (c->vnni && !u_signed) {
    LLVMValueRef args[3] = {acc, LLVMBuildBitCast(b, u, c->t_i8x8, ""), LLVMBuildBitCast(b, s, c->t_i8x8, "")};
    return tfx_cg_intrinsic(cg, "llvm.x86.avx512.vpdpbusd.256", NULL, 0, args, 3);
  }
  if (c->maddubs && !u_signed) {
    LLVMValueRef a2[2] = {u, s};
    LLVMValueRef p = tfx_cg_intrinsic(cg, "llvm.x86.avx2.pmadd.ub.sw", NULL, 0, a2, 2);
    LLVMValueRef w2[2] = {p, ivec(c->t_i16, 16, 1)};
    return LLVMBuildAdd(b, acc, tfx_cg_intrinsic(cg, "llvm.x86.avx2.pmadd.wd", NULL, 0, w2, 2), "");
  }
  LLVMTypeRef v32 = LLVMVectorType(cg->t_i32, 32);
  LLVMValueRef ue = u_signed ? LLVMBuildSExt(b, u, v32, "") : LLVMBuildZExt(b, u, v32, "");
  LLVMValueRef p = LLVMBuildMul(b, ue, LLVMBuildSExt(b, s, v32, ""), "");
  for (int t = 0; t < 4; t++) {
    int idx[8];
    for (int l = 0; l < 8; l++) idx[l] = 4 * l + t;
    acc = LLVMBuildAdd(b, acc, shuf(cg, p, p, idx, 8), "");
  }
  return acc;
}

/* The dot products of signed weight bytes w with activation bytes x: on x86
 * |w| against x with w's signs (psignb), else signed x signed. */
static LLVMValueRef idot_signed(tfx_cg *cg, qctx *c, LLVMValueRef w, LLVMValueRef x) {
  LLVMValueRef zero = LLVMConstNull(LLVMVectorType(cg->t_i32, 8));
  if (!c->vnni && !c->maddubs) return idot(cg, c, w, x, zero, 1);
  LLVMTypeRef ty = c->t_b32;
  LLVMValueRef a[2] = {w, LLVMConstInt(cg->t_i1, 0, 0)};
  LLVMValueRef aw = tfx_cg_intrinsic(cg, "llvm.abs", &ty, 1, a, 2);
  LLVMValueRef sg[2] = {x, w};
  LLVMValueRef sx = tfx_cg_intrinsic(cg, "llvm.x86.avx2.psign.b", NULL, 0, sg, 2);
  return idot(cg, c, aw, sx, zero, 0);
}

/* ---- the activations ---- */

/* Row `row` of x through the prologue into tile slot i of the buffers. */
static void quant_row(tfx_cg *cg, qctx *c, int i, LLVMValueRef row) {
  const tfx_cg_gemm *G = c->G;
  LLVMBuilderRef b = cg->b;
  int W = cg->W, nv = QB / W;
  LLVMValueRef xrow = tfx_cg_fptr(cg, G->x, tfx_cg_mulc(cg, row, c->K));
  LLVMValueRef qrow = tfx_cg_byteptr(cg, c->xq, (int64_t)i * c->K);
  tfx_cg_loop lb;
  tfx_cg_for(cg, &lb, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, c->nqb), 1, "qblk");
  LLVMValueRef k0 = tfx_cg_mulc(cg, lb.iv, QB), xv[QB], m = NULL;
  LLVMTypeRef vf = cg->t_vf;
  for (int v = 0; v < nv; v++) {
    LLVMValueRef k = tfx_cg_addc(cg, k0, (int64_t)v * W);
    xv[v] = tfx_cg_vload(cg, tfx_cg_fptr(cg, xrow, k), W);
    if (G->hooks && G->hooks->x_load) xv[v] = G->hooks->x_load(cg, G, i, xv[v], k, W);
    LLVMValueRef a = tfx_cg_intrinsic(cg, "llvm.fabs", &vf, 1, &xv[v], 1);
    m = m ? tfx_cg_fmax(cg, m, a) : a;
  }
  LLVMValueRef d = LLVMBuildFDiv(b, tfx_cg_hmax(cg, m), LLVMConstReal(cg->t_f32, 127.0), "d");
  LLVMValueRef nz = LLVMBuildFCmp(b, LLVMRealUNE, d, LLVMConstReal(cg->t_f32, 0.0), "");
  LLVMValueRef id = LLVMBuildSelect(b, nz, LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), d, ""),
                                    LLVMConstReal(cg->t_f32, 0.0), "id");
  LLVMValueRef ids = tfx_cg_splat(cg, id);
  LLVMTypeRef vi8 = LLVMVectorType(c->t_i8, (unsigned)W);
  for (int v = 0; v < nv; v++) {
    LLVMValueRef s = LLVMBuildFMul(b, xv[v], ids, "");
    s = tfx_cg_intrinsic(cg, "llvm.rint", &vf, 1, &s, 1);
    LLVMValueRef q = LLVMBuildTrunc(b, LLVMBuildFPToSI(b, s, cg->t_vi, ""), vi8, "");
    LLVMValueRef st = LLVMBuildStore(b, q, bptr(cg, qrow, tfx_cg_addc(cg, k0, (int64_t)v * W)));
    LLVMSetAlignment(st, 1);
  }
  LLVMValueRef slot = tfx_cg_addc(cg, lb.iv, (int64_t)i * c->nqb);
  tfx_cg_storef(cg, d, tfx_cg_fptr(cg, c->xd, slot));
  LLVMValueRef q32 = load_a(cg, c->t_b32, bptr(cg, qrow, k0), 1);
  LLVMValueRef sums = idot(cg, c, ivec(c->t_i8, 32, 1), q32, LLVMConstNull(c->t_i8x8), 0);
  LLVMValueRef sp = LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xs, (LLVMValueRef[]){tfx_cg_mulc(cg, slot, 8)}, 1, "");
  LLVMSetAlignment(LLVMBuildStore(b, sums, sp), 4);
  tfx_cg_for_end(cg, &lb);
}

/* ---- the tiles ---- */

#define QSETS 2 /* accumulator sets of a one-row tile: independent FMA chains */

typedef struct {
  int mr, nw;
  LLVMValueRef acc[QSETS * QMR * 8]; /* [set][row][weight row] */
} qtile;

/* Activation block xb (i64) of tile row i: q bytes, d, lane sums. */
static void xblock(tfx_cg *cg, qctx *c, int i, LLVMValueRef xb, LLVMValueRef *q, LLVMValueRef *d, LLVMValueRef *s) {
  LLVMValueRef slot = tfx_cg_addc(cg, xb, (int64_t)i * c->nqb);
  *q = load_a(cg, c->t_b32, bptr(cg, c->xq, tfx_cg_addc(cg, tfx_cg_mulc(cg, xb, QB), (int64_t)i * c->K)), 1);
  *d = tfx_cg_loadf(cg, tfx_cg_fptr(cg, c->xd, slot));
  LLVMValueRef sp = LLVMBuildInBoundsGEP2(cg->b, cg->t_i32, c->xs, (LLVMValueRef[]){tfx_cg_mulc(cg, slot, 8)}, 1, "");
  *s = load_a(cg, c->t_i8x8, sp, 4);
}

static void acc_fma(tfx_cg *cg, qtile *t, int k, LLVMValueRef lanes, LLVMValueRef scale) {
  LLVMValueRef a = t->acc[k];
  LLVMTypeRef f8 = LLVMTypeOf(scale);
  LLVMValueRef fl = LLVMBuildSIToFP(cg->b, lanes, f8, "");
  LLVMBuildStore(cg->b, tfx_cg_fma(cg, fl, scale, LLVMBuildLoad2(cg->b, f8, a, "")), a);
}

/* Sub-block sb (0 .. wblk / 32 - 1) of the weight block at wp, for weight
 * row k of the tile, against activation block xb of every tile row. */
static void sub_block(tfx_cg *cg, qctx *c, qtile *t, int k, LLVMValueRef wp, LLVMValueRef wblock, int sb,
                      const LLVMValueRef *wscal, int set) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef xb = tfx_cg_addc(cg, tfx_cg_mulc(cg, wblock, c->wblk / QB), sb), wq = NULL, wsc = NULL, wmin = NULL;
  LLVMValueRef lo4 = ivec(c->t_i8, 32, 0x0f), sh4 = ivec(c->t_i8, 32, 4);
  int seq[32];
  for (int l = 0; l < 32; l++) seq[l] = l;
  switch (c->dt) {
  case TFX_DT_Q8_0: wq = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 2), 1); break;
  case TFX_DT_Q4_0: {
    LLVMValueRef raw = load_a(cg, c->t_b16, tfx_cg_byteptr(cg, wp, 2), 1);
    LLVMValueRef lo = LLVMBuildAnd(b, raw, ivec(c->t_i8, 16, 0x0f), "");
    LLVMValueRef hi = LLVMBuildLShr(b, raw, ivec(c->t_i8, 16, 4), "");
    wq = shuf(cg, lo, hi, seq, 32);
    break;
  }
  case TFX_DT_Q4_K: {
    LLVMValueRef raw = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 16 + 32 * (sb / 2)), 1);
    wq = sb & 1 ? LLVMBuildLShr(b, raw, sh4, "") : LLVMBuildAnd(b, raw, lo4, "");
    /* the 6-bit scale and min of sub-block sb (tfx_q4_k_scale_min) */
    LLVMValueRef sc, m;
#define SB(j) LLVMBuildZExt(b, load_a(cg, c->t_i8, tfx_cg_byteptr(cg, wp, 4 + (j)), 1), cg->t_i32, "")
    if (sb < 4) {
      sc = LLVMBuildAnd(b, SB(sb), tfx_cg_i32(cg, 63), "");
      m = LLVMBuildAnd(b, SB(sb + 4), tfx_cg_i32(cg, 63), "");
    } else {
      LLVMValueRef hi = SB(sb + 4);
      sc = LLVMBuildOr(b, LLVMBuildAnd(b, hi, tfx_cg_i32(cg, 15), ""),
                       LLVMBuildShl(b, LLVMBuildLShr(b, SB(sb - 4), tfx_cg_i32(cg, 6), ""), tfx_cg_i32(cg, 4), ""), "");
      m = LLVMBuildOr(b, LLVMBuildLShr(b, hi, tfx_cg_i32(cg, 4), ""),
                      LLVMBuildShl(b, LLVMBuildLShr(b, SB(sb), tfx_cg_i32(cg, 6), ""), tfx_cg_i32(cg, 4), ""), "");
    }
#undef SB
    wsc = LLVMBuildFMul(b, wscal[0], LLVMBuildSIToFP(b, sc, cg->t_f32, ""), "");
    wmin = LLVMBuildFNeg(b, LLVMBuildFMul(b, wscal[1], LLVMBuildSIToFP(b, m, cg->t_f32, ""), ""), "");
    break;
  }
  case TFX_DT_Q6_K: {
    int h = sb / 4, q = sb % 4;
    LLVMValueRef ql = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 64 * h + 32 * (q & 1)), 1);
    LLVMValueRef qh = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 128 + 32 * h), 1);
    LLVMValueRef low = q < 2 ? LLVMBuildAnd(b, ql, lo4, "") : LLVMBuildLShr(b, ql, sh4, "");
    LLVMValueRef high = q ? LLVMBuildLShr(b, qh, ivec(c->t_i8, 32, 2 * q), "") : qh;
    high = LLVMBuildShl(b, LLVMBuildAnd(b, high, ivec(c->t_i8, 32, 3), ""), sh4, "");
    wq = LLVMBuildOr(b, low, high, "");
    LLVMTypeRef v2i8 = LLVMVectorType(c->t_i8, 2);
    LLVMValueRef sc2 = load_a(cg, v2i8, tfx_cg_byteptr(cg, wp, 192 + 2 * sb), 1);
    sc2 = LLVMBuildSIToFP(b, sc2, LLVMVectorType(cg->t_f32, 2), "");
    int idx[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    wsc = LLVMBuildFMul(b, shuf(cg, sc2, sc2, idx, 8), splat8(cg, c, wscal[0]), "");
    break;
  }
  default: break;
  }
  for (int i = 0; i < t->mr; i++) {
    LLVMValueRef xq, xd, xs;
    xblock(cg, c, i, xb, &xq, &xd, &xs);
    int a = set * t->mr * t->nw + i * t->nw + k;
    LLVMValueRef zero = LLVMConstNull(c->t_i8x8);
    switch (c->dt) {
    case TFX_DT_Q8_0:
      acc_fma(cg, t, a, idot_signed(cg, c, wq, xq), splat8(cg, c, LLVMBuildFMul(b, wscal[0], xd, "")));
      break;
    case TFX_DT_Q4_0: {
      LLVMValueRef dot =
          LLVMBuildSub(b, idot(cg, c, wq, xq, zero, 0), LLVMBuildShl(b, xs, ivec(cg->t_i32, 8, 3), ""), "");
      acc_fma(cg, t, a, dot, splat8(cg, c, LLVMBuildFMul(b, wscal[0], xd, "")));
      break;
    }
    case TFX_DT_Q4_K:
      acc_fma(cg, t, a, idot(cg, c, wq, xq, zero, 0), splat8(cg, c, LLVMBuildFMul(b, wsc, xd, "")));
      acc_fma(cg, t, a, xs, splat8(cg, c, LLVMBuildFMul(b, wmin, xd, "")));
      break;
    case TFX_DT_Q6_K: {
      LLVMValueRef dot =
          LLVMBuildSub(b, idot(cg, c, wq, xq, zero, 0), LLVMBuildShl(b, xs, ivec(cg->t_i32, 8, 5), ""), "");
      acc_fma(cg, t, a, dot, LLVMBuildFMul(b, wsc, splat8(cg, c, xd), ""));
      break;
    }
    default: break;
    }
  }
}

/* Stored weight row of the panel's local row jj for segment / GLU half h. */
static LLVMValueRef wrow_ptr(tfx_cg *cg, qctx *c, LLVMValueRef jj, int h) {
  const tfx_cg_gemm *G = c->G;
  int seg = G->glu ? h : c->P->seg;
  int64_t sb = 0;
  if (G->glu)
    sb = h * G->segs[0];
  else
    for (int s = 0; s < c->P->seg; s++) sb += G->segs[s];
  LLVMValueRef q = tfx_cg_add(cg, tfx_cg_mulc(cg, c->P->p, NB), jj);
  if (G->perm >> seg & 1u) q = tfx_cg_pair_row(cg, q, G->perm_hd, G->perm_rd);
  return bptr(cg, G->w, tfx_cg_mulc(cg, tfx_cg_addc(cg, q, sb), c->row_bytes));
}

/* The mr x nc tile at panel columns c0 (i64).. against the quantized rows. */
static void emit_qtile(tfx_cg *cg, qctx *c, int mr, LLVMValueRef c0, int nc) {
  const tfx_cg_gemm *G = c->G;
  LLVMBuilderRef b = cg->b;
  qtile t = {.mr = mr, .nw = G->glu ? 2 * nc : nc};
  LLVMValueRef wrow[8];
  for (int j = 0; j < nc; j++)
    for (int h = 0; h < (G->glu ? 2 : 1); h++)
      wrow[G->glu ? 2 * j + h : j] = wrow_ptr(cg, c, tfx_cg_addc(cg, c0, j), h);
  /* one-row tiles (decode) alternate two accumulator sets (by block and
   * sub-block) so consecutive FMAs do not wait on each other; 32-element
   * formats then take two blocks per iteration */
  int sets = mr == 1 ? QSETS : 1, nblk = (int)(c->K / c->wblk);
  int unroll = sets > 1 && c->wblk == QB && nblk % 2 == 0 ? 2 : 1;
  for (int k = 0; k < sets * mr * t.nw; k++) {
    t.acc[k] = tfx_cg_alloca(cg, c->t_f8, "qacc");
    LLVMBuildStore(b, LLVMConstNull(c->t_f8), t.acc[k]);
  }
  tfx_cg_loop lk;
  tfx_cg_for(cg, &lk, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, nblk / unroll), 1, "wblk");
  for (int u = 0; u < unroll; u++) {
    LLVMValueRef blk = tfx_cg_addc(cg, tfx_cg_mulc(cg, lk.iv, unroll), u);
    LLVMValueRef off = tfx_cg_mulc(cg, blk, c->wbytes);
    for (int k = 0; k < t.nw; k++) {
      LLVMValueRef wp = bptr(cg, wrow[k], off), sc[2] = {NULL, NULL};
      switch (c->dt) {
      case TFX_DT_Q8_0:
      case TFX_DT_Q4_0: sc[0] = half_at(cg, c->f16c, wp); break;
      case TFX_DT_Q4_K:
        sc[0] = half_at(cg, c->f16c, wp);
        sc[1] = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 2));
        break;
      case TFX_DT_Q6_K: sc[0] = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 208)); break;
      default: break;
      }
      for (int sb = 0; sb < c->wblk / QB; sb++) sub_block(cg, c, &t, k, wp, blk, sb, sc, (u + sb) % sets);
    }
  }
  tfx_cg_for_end(cg, &lk);
  for (int k = 0; k < mr * t.nw; k++) /* the sets summed into set 0 */
    for (int st = 1; st < sets; st++) {
      LLVMValueRef a0 = LLVMBuildLoad2(b, c->t_f8, t.acc[k], "");
      LLVMValueRef a1 = LLVMBuildLoad2(b, c->t_f8, t.acc[st * mr * t.nw + k], "");
      LLVMBuildStore(b, LLVMBuildFAdd(b, a0, a1, ""), t.acc[k]);
    }
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nc; j++) {
      int k = G->glu ? 2 * j : j;
      LLVMValueRef col = tfx_cg_addc(cg, c0, (int64_t)i * NB + j);
      LLVMValueRef at = tfx_cg_fptr(cg, c->P->blk, col);
      tfx_cg_storef(cg, tfx_cg_hsum(cg, LLVMBuildLoad2(b, c->t_f8, t.acc[i * t.nw + k], "")), at);
      if (G->glu) {
        at = tfx_cg_fptr(cg, c->P->blku, col);
        tfx_cg_storef(cg, tfx_cg_hsum(cg, LLVMBuildLoad2(b, c->t_f8, t.acc[i * t.nw + k + 1], "")), at);
      }
    }
}

/* The rows m .. m + mr - 1 (clamped to M - 1) quantized, then the panel's tiles. */
static void qblock(tfx_cg *cg, qctx *c, LLVMValueRef m, int mr) {
  const tfx_cg_gemm *G = c->G;
  if (G->hooks && G->hooks->block_begin) G->hooks->block_begin(cg, G, m, mr);
  for (int i = 0; i < mr; i++) {
    LLVMValueRef row = mr > 1 ? tfx_cg_smin(cg, tfx_cg_addc(cg, m, i), tfx_cg_addc(cg, G->M, -1)) : m;
    if (G->hooks && G->hooks->row_begin) G->hooks->row_begin(cg, G, i, row);
    quant_row(cg, c, i, row);
  }
  /* decode: one weight row at a time (a GLU column: its gate and up rows),
   * so the panel's rows stream through memory in order (tiles of 8 rows
   * read 8 strided streams and ran at half the speed: docs/quantization.md);
   * prefill: 4 x 4 tiles reusing each weight block across 4 rows of x */
  int ncol = mr == 1 ? 1 : (G->glu ? 2 : 4);
  int nb = c->P->nb;
  /* the whole tiles in a loop (one copy of the tile's code), then the rest */
  int full = nb / ncol, rest = nb % ncol;
  if (full > 1) {
    tfx_cg_loop lt;
    tfx_cg_for(cg, &lt, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, (int64_t)full * ncol), ncol, "qtile");
    emit_qtile(cg, c, mr, lt.iv, ncol);
    tfx_cg_for_end(cg, &lt);
  } else if (full == 1) {
    emit_qtile(cg, c, mr, tfx_cg_i64(cg, 0), ncol);
  }
  if (rest) emit_qtile(cg, c, mr, tfx_cg_i64(cg, (int64_t)full * ncol), rest);
}

/* 1 for the weight formats this path reads. */
static int q8_supported(tfx_dtype dt) {
  return dt == TFX_DT_Q8_0 || dt == TFX_DT_Q4_0 || dt == TFX_DT_Q4_K || dt == TFX_DT_Q6_K;
}

void tfx_cg_q8_panel(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_panel *P) {
  const tfx_node *w = &cg->g->nodes[G->n->inputs[1]];
  const tfx_dtype_info *f = tfx_dtype_info_of(w->type.dtype);
  if (!f || !q8_supported(w->type.dtype) || G->K % f->block || G->packed) {
    tfx_cg_fail(cg, "backend: %%%d: int8 linear on a %s weight it cannot read", G->n->id,
                tfx_dtype_name(w->type.dtype));
    return;
  }
  qctx c = {
      .G = G, .P = P, .dt = w->type.dtype, .K = G->K, .nqb = G->K / QB, .wblk = f->block, .wbytes = f->block_bytes};
  c.row_bytes = G->K / f->block * f->block_bytes;
  c.t_i8 = LLVMInt8TypeInContext(cg->ctx);
  c.t_i16 = LLVMInt16TypeInContext(cg->ctx);
  c.t_b16 = LLVMVectorType(c.t_i8, 16);
  c.t_b32 = LLVMVectorType(c.t_i8, 32);
  c.t_i8x8 = LLVMVectorType(cg->t_i32, 8);
  c.t_f8 = LLVMVectorType(cg->t_f32, 8);
  unsigned i8 = cg->tgt->i8dot;
  c.vnni = (i8 & (TFX_CG_I8_AVXVNNI | TFX_CG_I8_VNNI512)) != 0;
  c.maddubs = !c.vnni && (i8 & TFX_CG_I8_MADDUBS) && cg->W >= 8; /* the ymm forms: AVX2 */
  c.f16c = c.vnni || c.maddubs;
  c.xq = tfx_cg_alloca_array(cg, c.t_i8, QMR * G->K, "xq");
  c.xd = tfx_cg_alloca_array(cg, cg->t_f32, QMR * c.nqb, "xd");
  c.xs = tfx_cg_alloca_array(cg, cg->t_i32, QMR * c.nqb * 8, "xs");
  int few = LLVMIsAConstantInt(P->M) && LLVMConstIntGetSExtValue(P->M) < QMR;
  tfx_cg_loop lm;
  if (few) {
    tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), P->M, 1, "qm1");
    qblock(cg, &c, lm.iv, 1);
    tfx_cg_gemm_rows(cg, G, P, lm.iv, NULL);
  } else {
    tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), P->M, QMR, "qm");
    qblock(cg, &c, lm.iv, QMR);
    tfx_cg_gemm_rows(cg, G, P, lm.iv, tfx_cg_smin(cg, tfx_cg_i64(cg, QMR), tfx_cg_sub(cg, P->M, lm.iv)));
  }
  tfx_cg_for_end(cg, &lm);
}
