/* backend/k_linear_q8.c — the int8 dot-product path of the GEMM (k_linear.c)
 * for LINEAR and FUSED_LINEAR nodes whose weight is q8_0, q4_0, q5_0, q3_k, q4_k, q6_k, tq2_0, tq2_t, s24_q8_0, i8
 * or zq*
 * (tfx_node_act_quant, ir/quantize.c), row-major as pack_weights leaves them.
 *
 * Many rows (a prefill; tfx_cg_q8_staged) run as two kernels: the first's
 * work items are the rows of x, each quantized once into the node's arena
 * workspace (tfx_node_work_bytes, planned by plan_memory); the second's are
 * the panels, each decoded once (the repacked tiles below) and run against
 * every row. Before, the rows were quantized in chunks of 256 KiB of stack
 * (30 rows at K = 5632), every panel decoded again for each chunk and every
 * thread quantizing every row: the TinyLlama-1.1B shape's Q4_K_M prefill
 * spent ~80% of its down projection decoding. Few rows (decode), or a node
 * without a workspace, keep the one-kernel form: the rows quantized in
 * chunks of at most Q8_CHUNK_BYTES of stack buffers.
 *
 * Each row goes through the prologue hooks (norm) and is quantized
 * per TFX_ACT_QBLOCK = 32 values exactly as tfx_act_quant_block
 * defines it (d = amax / 127 in f32, id = d ? 1 / d : 0, q = rint(x * id)),
 * with what the tiles need of the sums of q. Then the item loop of k_linear.c
 * runs the chunk against each panel of TFX_CG_LIN_NB weight rows
 * (tfx_cg_q8_panel): tiles into the block buffer, then the epilogue of each
 * block of rows (k_linear.c's tfx_cg_gemm_rows: bias, RoPE, activation, GLU,
 * residual, stores, all unchanged; block_begin runs again for the rows'
 * statistics).
 *
 * Four kinds of tiles:
 * - prefill on AVX512-VNNI (rp): the panel repacked per work item into
 *   4-byte-interleaved unsigned codes, 6 rows of x x 32 columns of 512-bit
 *   vpdpbusd with x's 4 bytes broadcast (see "the repacked prefill tiles");
 * - decode on AVX512-VNNI (dz): one weight row (a GLU column: two) at a
 *   time, so a panel streams through memory in order, two 32-element
 *   blocks per 512-bit vpdpbusd with per-lane scale vectors (dz_rows,
 *   dzk_rows; q4_0 by groups of 4 blocks, dz4_rows), each row's 16 lanes
 *   summed 16 rows at a time (dz_reduce); dz_rows and dz4_rows take up to
 *   QFX = 4 rows of x per pass (a batch step of 2 to 4 rows: each weight
 *   pair or group loaded and decoded once, then per row of x a vpdpbusd, a
 *   conversion, a scale multiply and an FMA; few_group); tq2_t (BitNet
 *   b1.58: one weight scale per tensor, activations per token) by
 *   super-blocks of 256 accumulated over the whole row in i32, one
 *   conversion and multiply per row (dzt_rows), up to QFX rows per pass too;
 * - q8_0 decode on AVX512-VNNI at small K (64 .. 512, K / 32 even: tiny_rows): 16 weight
 *   rows at a time, their vpdpbusd lanes summed per block in i32 before one
 *   f32 scale per row and block (the weights' d gathered); no software
 *   prefetch (its rows are short; measured in cache only);
 * - otherwise (AVX2, AVX-VNNI, plain IR; and decode where K / 32 is odd):
 *   row-major tiles of mr rows of x x nc weight rows (decode 1 x 1, prefill
 *   4 x 4): per 32-element sub-block, the weight's integers decoded into 32
 *   bytes and dotted with the activation's in 8 i32 lanes (lane l: bytes
 *   4l .. 4l + 3), scaled by the block scales into <8 x float> accumulators
 *   (ggml's scheme), reduced once per output; a one-row tile (decode)
 *   prefetches its weight rows as dz does (every 64-byte line of a trip,
 *   tfx_cg_decode_prefetch bytes ahead: on the stories110M shape compiled
 *   for haswell, 2 threads, q8_0's decode took 2.6 s of CPU against 4.7
 *   without, sparse24(q8_0)'s 2.4 against 5.0).
 *
 * Formats (ir/dtype.c's layouts): q8_0 w = d * q (row-major tiles: |q|
 * dotted with sign(q) * x on x86; rp/dz: codes q ^ 0x80 = q + 128, dot -
 * 128 * sum x), q4_0 w = d * (q - 8) (dot - 8 * sum x), q5_0 w = d * (q -
 * 16) (q4_0's nibbles with qh's bit as bit 4; dot - 16 * sum x), q4_k w = d * sc * q -
 * dmin * m per 32 (dot * d * sc - sum x * dmin * m), q6_k w = d * sc * (q -
 * 32) per 16 (dot - 32 * sum x, each 16 its scale), q3_k w = d (sc - 32)
 * (u - 4) per 16 (dot - 4 * sum x; u: 2 bits of qs and the hmask bit as
 * bit 2, q3_k_codes; the 16 6-bit scales unpacked as ggml's kmask,
 * q3_k_scales; dz: as q6_k's pairs), tq2_0 w = d * (u - 1)
 * per 256 (dot - sum x; the 2-bit codes u of sub-block s are bits 2 (s % 4)
 * of bytes 32 (s / 4) ..; tq2_t: the same bytes and d in every block, x
 * per token, so dzt_rows dots whole rows), zq8_64 / zq8_128 (ZeroQuant) w = d * (u - z)
 * per group of 64 / 128 (dot - z * sum x, u unsigned as vpdpbusd takes it;
 * AVX2: (u - 128) signed and z - 128, vpmaddubsw would saturate on u up to
 * 255; activations per token as w8a8's), s24_q8_0 (2:4 sparse: f16 d, a
 * u32 keep mask, the 16 kept q in position order) w = d * q with the kept
 * bytes expanded to a q8_0 block's 32 codes under the mask (the pruned 0),
 * then read as q8_0 everywhere (s24_codes; dz: s24_pair, one 512-bit
 * vpexpandb per pair of blocks): vpexpandb where the target has
 * AVX512_VBMI2 with VL, else tfx_cg_s24_codes (k_linear_s24.c: with AVX2,
 * so also AVX-512 without VBMI2, a vpermd table lookup of each group's
 * mask nibble and one vpshufb of the kept bytes; else byte compares and
 * and / or, tfx_cg_s24_expand);
 * per pair of blocks the dz loop reads 44 bytes instead of q8_0's 68, for
 * a kmovq, a vinserti128 and a vpexpandb more. The integer offsets are
 * exact (i32 lanes); only the f32 accumulation order differs from the
 * reference interpreter's.
 * Instructions (tfx_cg_target.i8dot): vpdpbusd zmm/ymm (AVX512-VNNI with VL,
 * or AVX-VNNI ymm), AVX2 vpmaddubsw + vpmaddwd (|u| * |s| <= 128 * 127: pairs
 * never saturate), else plain IR (extend, multiply, add). f16 scales are
 * widened by vcvtph2ps on those x86 paths (F16C), else with integer ops and
 * one multiply (an inf or NaN scale is not preserved there). */
#include <stdlib.h>
#include <string.h>

#include "../include/tfx/abi.h"
#include "cg.h"

#define NB TFX_CG_LIN_NB
#define QB TFX_ACT_QBLOCK
#define QMR 4 /* rows of x per tile when the rows are not known to be few */
/* rows of x per pass of the decode kernels (dz_rows, dz4_rows: each weight
 * pair or group loaded and decoded once for up to QFX rows). 8 measured
 * about 12% faster than two passes of 4 at 8 rows and 12 but, with the
 * passes of 4, 2 and 1 beside it, cost 50% more compile CPU (stories110M
 * q8_0: 3.9 s against 2.6 s; passes of 4 and 1: 3.15 s), and 8 rows run
 * as fast through the repacked tiles (below) */
#define QFX 4
/* the most rows a GEMM of run-time M takes through the decode kernels (M <=
 * QFEW; more: the repacked tiles). Per row of x and pair of blocks the dz
 * kernels spend 4 vector operations (vpdpbusd, conversion, scale, FMA), the
 * repacked tiles about 1.4 (one conversion and FMA per 8 vpdpbusd) after a
 * decode of each panel per step that does not shrink with the rows: on the
 * stories110M shape in q8_0 (2 threads, bench.c batch, paired runs on a
 * loaded machine) the decode kernels ran batches of 4 at 1.5x the repacked
 * tiles, 5 at 0.9-1.1x, 6 to 8 at 0.87-0.97x, 12 and 16 at 0.6-0.7x */
#define QFEW 4
/* the 32-element formats whose codes are nibbles (dz's pairs take their
 * low nibbles, then their high ones: x's bytes stored to match) */
#define NIBBLES(c) ((c)->dt == TFX_DT_Q4_0 || (c)->dt == TFX_DT_Q5_0)

typedef struct {
  const tfx_cg_gemm *G;
  const tfx_cg_panel *P;
  tfx_dtype dt;
  int64_t K, nqb;       /* activation blocks per row */
  int64_t wblk, wbytes; /* elements and bytes of a weight block */
  int64_t row_bytes;    /* bytes of a weight row */
  LLVMTypeRef t_i8, t_i16, t_b16, t_b32, t_i8x8, t_f8;
  /* the chunk's quantized rows: [mc][K] i8, [mc][nqb] f32, [mc][nqb][8] i32
   * (lane sums: the row-major tiles only), [mc][nsb] i32 and f32 (the
   * repacked tiles: -cw * sum, d * sum per sub-block) */
  LLVMValueRef xq, xd, xs, xc, xm;
  int64_t mc;                               /* rows of a chunk (static) */
  LLVMValueRef m0, mrows;                   /* the chunk's first row and its rows (i64) */
  LLVMValueRef slot[QFX > QMR ? QFX : QMR]; /* chunk rows of the row-major tile's rows (i64) */
  int few;                                  /* the decode kernels (rows few), quantized into the stack */
  int nx;                                   /* rows of x (slots 0 .. nx - 1) of a dz pass */
  int vnni, maddubs;
  int f16c; /* vcvtph2ps for the f16 scales (every AVX2-class x86 CPU has F16C) */
  /* the repacked prefill tiles (AVX512-VNNI, W = 16): sub-block S (32, or
   * 16 for q6_k and q3_k), nsb = K / S, the codes' offset cw (w = s * (u - cw) + o) */
  int rp, cw;
  int64_t S, nsb;
  LLVMValueRef rq[2], rs[2], ro[2]; /* repacked panels (GLU: gate, up) */
  /* decode with 512-bit vpdpbusd over pairs of blocks (q8_0, q4_0 on
   * AVX512-VNNI, K / 32 even): per pair of x blocks, 16 i32 lanes of
   * -cw * (lane sums) and 16 f32 lanes of x's block scales, in the lane
   * order of the weights' codes (q4_0: x's bytes stored permuted to match) */
  int dz;
  LLVMValueRef xz, xv;
  LLVMValueRef zr[2]; /* the panel's rows' 16-lane sums before reduction ([QFX][NB][16] f32; GLU: gate, up) */
  /* q4_0 decode over groups of 4 blocks (dz and K / 32 % 4 == 0): one
   * two-source word permutation (vpermt2w) gathers the 4 blocks' 64 nibble bytes from the stored
   * 72, their low and high nibbles dotted into the same 16 lanes (lane l:
   * block l / 4); x's bytes stored in that order (group g, block h: bytes
   * 0-15 at 128g + 16h, 16-31 at 128g + 64 + 16h), xz / xv per lane */
  int dz4;
  /* i8 (w8a8): 32-byte "blocks" of codes with no scale of their own (qoff
   * 0: the codes at the block's start, q8_0's at 2), the row's f32 scale in
   * the scale plane after the R_all rows' values; the activations quantized
   * per token (tok: one d for the row, stored for each of its blocks) */
  int i8, tok, qoff;
  int64_t R_all;
  /* the decode kernels' software prefetch distance in bytes (0: none;
   * tfx_cg_decode_prefetch) */
  int64_t prefetch;
  /* two streams in a panel (rm_tiles): a row's prefetch that would land
   * past the end of its stream's rows in the panel (pf_end bytes from the
   * row's start, NULL: one stream) lands pf_skip bytes further, at the
   * stream's rows in the next panel (dz_prefetch) */
  LLVMValueRef pf_end;
  int64_t pf_skip;
  /* zq8_64 / zq8_128 (ZeroQuant): groups of 64 / 128 with an f16 scale d
   * and an i16 zero point z, u8 codes (w = d * (u - z)), activations per
   * token; the zero point's term -z * sum(x_q) in i32 (row-major tiles: the
   * lane sums; repacked tiles: z per row and sub-block in rz, times x's
   * -sum(x_q) in xc, cw = 1); no dz decode kernel (decode: the row-major
   * tiles) */
  int zq, zq4; /* zq4: zq4_64 / zq4_128, 4-bit codes by 32 as q4_0's nibbles */
  LLVMValueRef rz[2];
  /* q8_0 decode at small K (dz, K / 32 even, at most 16): 16 rows at a time,
   * integer sums per block before any float (tiny_rows) */
  int tiny;
  /* s24_q8_0's kept bytes expanded by vpexpandb (AVX512_VBMI2 with VL;
   * else tfx_cg_s24_expand) */
  int vbmi2;
  /* tq2_t (BitNet b1.58: one weight scale per tensor, activations per
   * token): dz decode accumulates whole rows in i32 (dzt_rows); x's bytes
   * stored in the order of the weights' 2-bit fields (super-block s, sub-block
   * b: at 256 s + 64 (b % 4) + 32 (b / 4)), each row's -sum(q) in xt ([mc] i32) */
  int tq2t;
  LLVMValueRef xt;
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

/* The constant <4 x i32> (a, b, c, d). */
static LLVMValueRef i32x4(tfx_cg *cg, int a, int b, int c, int d) {
  LLVMValueRef e[4] = {tfx_cg_i32(cg, a), tfx_cg_i32(cg, b), tfx_cg_i32(cg, c), tfx_cg_i32(cg, d)};
  return LLVMConstVector(e, 4);
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

/* Row `row` of x through the prologue (tile slot 0 of the hooks) into the
 * chunk's buffers at slot (i64): the q bytes, d per block of 32, the lane
 * sums (when the row-major tiles read them) and, for the repacked tiles, per
 * sub-block of S: -cw * sum(q) (i32) and d * sum(q) (f32, q4_k's mins). */
static void quant_row(tfx_cg *cg, qctx *c, LLVMValueRef slot, LLVMValueRef row) {
  const tfx_cg_gemm *G = c->G;
  LLVMBuilderRef b = cg->b;
  int W = cg->W, nv = QB / W;
  LLVMValueRef xrow = tfx_cg_fptr(cg, G->x, tfx_cg_mulc(cg, row, c->K));
  LLVMValueRef qrow = bptr(cg, c->xq, tfx_cg_mulc(cg, slot, c->K));
  LLVMValueRef tok_d = NULL, tok_id = NULL;
  if (c->tok) { /* w8a8: the row's largest |x| first (through the prologue, as below) */
    LLVMTypeRef vf = cg->t_vf;
    LLVMValueRef mx = tfx_cg_alloca(cg, vf, "tokmax");
    LLVMBuildStore(b, LLVMConstNull(vf), mx);
    tfx_cg_loop la;
    tfx_cg_for(cg, &la, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, c->nqb), 1, "tokmax");
    LLVMValueRef m = LLVMBuildLoad2(b, vf, mx, "");
    for (int v = 0; v < nv; v++) {
      LLVMValueRef k = tfx_cg_addc(cg, tfx_cg_mulc(cg, la.iv, QB), (int64_t)v * W);
      LLVMValueRef xv = tfx_cg_vload(cg, tfx_cg_fptr(cg, xrow, k), W);
      if (G->hooks && G->hooks->x_load) xv = G->hooks->x_load(cg, G, 0, xv, k, W);
      LLVMValueRef a = tfx_cg_intrinsic(cg, "llvm.fabs", &vf, 1, &xv, 1);
      m = tfx_cg_fmax(cg, m, a);
    }
    LLVMBuildStore(b, m, mx);
    tfx_cg_for_end(cg, &la);
    LLVMValueRef mm = LLVMBuildLoad2(b, vf, mx, "");
    LLVMValueRef isnan = LLVMBuildFCmp(b, LLVMRealUNO, mm, mm, "");
    LLVMValueRef mi = LLVMBuildBitCast(b, LLVMBuildSelect(b, isnan, LLVMConstNull(vf), mm, ""), cg->t_vi, "");
    LLVMTypeRef vit = cg->t_vi;
    LLVMValueRef amax = tfx_cg_intrinsic(cg, "llvm.vector.reduce.umax", &vit, 1, &mi, 1);
    amax = LLVMBuildBitCast(b, amax, cg->t_f32, "amax");
    tok_d = LLVMBuildFDiv(b, amax, LLVMConstReal(cg->t_f32, 127.0), "d");
    LLVMValueRef nz = LLVMBuildFCmp(b, LLVMRealUNE, tok_d, LLVMConstReal(cg->t_f32, 0.0), "");
    tok_id = LLVMBuildSelect(b, nz, LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), tok_d, ""),
                             LLVMConstReal(cg->t_f32, 0.0), "id");
  }
  LLVMValueRef xt = c->xt ? LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xt, &slot, 1, "") : NULL;
  if (xt) LLVMBuildStore(b, tfx_cg_i32(cg, 0), xt);
  tfx_cg_loop lb;
  tfx_cg_for(cg, &lb, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, c->nqb), 1, "qblk");
  LLVMValueRef k0 = tfx_cg_mulc(cg, lb.iv, QB), xv[QB], m = NULL;
  LLVMTypeRef vf = cg->t_vf;
  for (int v = 0; v < nv; v++) {
    LLVMValueRef k = tfx_cg_addc(cg, k0, (int64_t)v * W);
    xv[v] = tfx_cg_vload(cg, tfx_cg_fptr(cg, xrow, k), W);
    if (G->hooks && G->hooks->x_load) xv[v] = G->hooks->x_load(cg, G, 0, xv[v], k, W);
    if (c->tok) continue;
    LLVMValueRef a = tfx_cg_intrinsic(cg, "llvm.fabs", &vf, 1, &xv[v], 1);
    m = m ? tfx_cg_fmax(cg, m, a) : a;
  }
  LLVMValueRef d = tok_d, id = tok_id;
  if (!c->tok) {
    /* the largest |x| (NaN lanes ignored, as fmaxf does): the bits of
     * non-negative floats order as unsigned integers, so one integer max
     * reduction (a float maxnum reduction is a serial scalar chain) */
    LLVMValueRef isnan = LLVMBuildFCmp(b, LLVMRealUNO, m, m, "");
    LLVMValueRef mi = LLVMBuildBitCast(b, LLVMBuildSelect(b, isnan, LLVMConstNull(vf), m, ""), cg->t_vi, "");
    LLVMTypeRef vit = cg->t_vi;
    LLVMValueRef amax = tfx_cg_intrinsic(cg, "llvm.vector.reduce.umax", &vit, 1, &mi, 1);
    amax = LLVMBuildBitCast(b, amax, cg->t_f32, "amax");
    d = LLVMBuildFDiv(b, amax, LLVMConstReal(cg->t_f32, 127.0), "d");
    LLVMValueRef nz = LLVMBuildFCmp(b, LLVMRealUNE, d, LLVMConstReal(cg->t_f32, 0.0), "");
    id = LLVMBuildSelect(b, nz, LLVMBuildFDiv(b, LLVMConstReal(cg->t_f32, 1.0), d, ""), LLVMConstReal(cg->t_f32, 0.0),
                         "id");
  }
  LLVMValueRef ids = tfx_cg_splat(cg, id);
  LLVMTypeRef vi8 = LLVMVectorType(c->t_i8, (unsigned)W);
  /* where the block's 32 bytes go: in order, but for q4_k decode, whose
   * pairs of blocks are (4h + i, 4h + i + 2): blocks 1 and 2 of each 4 swap */
  LLVMValueRef pos = lb.iv;
  if (c->dz && c->dt == TFX_DT_Q4_K) {
    LLVMValueRef r4 = LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, 3), "");
    LLVMValueRef one = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntEQ, r4, tfx_cg_i64(cg, 1), ""), cg->t_i64, "");
    LLVMValueRef two = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntEQ, r4, tfx_cg_i64(cg, 2), ""), cg->t_i64, "");
    pos = tfx_cg_sub(cg, tfx_cg_add(cg, lb.iv, one), two);
  }
  LLVMValueRef tq2at = NULL; /* tq2_t decode: block b of super-block s at 256 s + 64 (b % 4) + 32 (b / 4) */
  if (xt)
    tq2at = tfx_cg_add(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, ~(int64_t)7), ""), QB),
                       tfx_cg_add(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, 3), ""), 64),
                                  tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, 4), ""), 8)));
  for (int v = 0; v < nv; v++) {
    LLVMValueRef s = LLVMBuildFMul(b, xv[v], ids, "");
    s = tfx_cg_intrinsic(cg, "llvm.rint", &vf, 1, &s, 1);
    LLVMValueRef q = LLVMBuildTrunc(b, LLVMBuildFPToSI(b, s, cg->t_vi, ""), vi8, "");
    LLVMValueRef at = tfx_cg_addc(cg, tfx_cg_mulc(cg, pos, QB), (int64_t)v * W);
    if (tq2at)
      at = tfx_cg_addc(cg, tq2at, (int64_t)v * W);
    else if (c->dz4)
      at = tfx_cg_add(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, ~(int64_t)3), ""), QB),
                      tfx_cg_addc(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, 3), ""), 16), 64 * v));
    else if (c->dz && NIBBLES(c)) /* pair p, block h: bytes 0-15 at 64p + 16h, 16-31 at 64p + 32 + 16h */
      at = tfx_cg_add(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, ~(int64_t)1), ""), QB),
                      tfx_cg_addc(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, 1), ""), 16), 32 * v));
    LLVMSetAlignment(LLVMBuildStore(b, q, bptr(cg, qrow, at)), 1);
  }
  LLVMValueRef bslot = tfx_cg_add(cg, lb.iv, tfx_cg_mulc(cg, slot, c->nqb));
  tfx_cg_storef(cg, d, tfx_cg_fptr(cg, c->xd, bslot));
  LLVMValueRef q32 = NULL;
  if (c->dz && NIBBLES(c)) { /* the block's bytes back in order */
    LLVMTypeRef b16t = c->t_b16;
    int64_t gm = c->dz4 ? 3 : 1;
    LLVMValueRef base = tfx_cg_add(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, ~gm), ""), QB),
                                   tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, gm), ""), 16));
    LLVMValueRef lo = load_a(cg, b16t, bptr(cg, qrow, base), 1);
    LLVMValueRef hi = load_a(cg, b16t, bptr(cg, qrow, tfx_cg_addc(cg, base, c->dz4 ? 64 : 32)), 1);
    int seq[32];
    for (int l = 0; l < 32; l++) seq[l] = l;
    q32 = shuf(cg, lo, hi, seq, 32);
  } else {
    q32 = load_a(cg, c->t_b32, bptr(cg, qrow, tq2at ? tq2at : tfx_cg_mulc(cg, pos, QB)), 1);
  }
  LLVMValueRef sums = idot(cg, c, ivec(c->t_i8, 32, 1), q32, LLVMConstNull(c->t_i8x8), 0);
  if (xt) { /* tq2_t: the row's -sum(q) */
    LLVMValueRef sum = tfx_cg_intrinsic(cg, "llvm.vector.reduce.add", &c->t_i8x8, 1, &sums, 1);
    LLVMBuildStore(b, LLVMBuildSub(b, LLVMBuildLoad2(b, cg->t_i32, xt, ""), sum, ""), xt);
  }
  if (c->dz && !xt) { /* lanes of the pair: q8_0 block h at 8h..8h+7; q4_0 halves at 4h.., 8 + 4h.. */
    LLVMValueRef h = LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, 1), "");
    LLVMValueRef pb = tfx_cg_add(cg, tfx_cg_mulc(cg, LLVMBuildAnd(b, lb.iv, tfx_cg_i64(cg, ~(int64_t)1), ""), 8),
                                 tfx_cg_mulc(cg, slot, c->nqb * 8));
    LLVMValueRef neg = LLVMBuildMul(b, sums, ivec(cg->t_i32, 8, -c->cw), "");
    LLVMValueRef dv = splat8(cg, c, d);
    if (c->dz4) { /* lanes 4 (b % 4) .. of group b / 4: the low and the high nibbles' lane sums added */
      int i0[4] = {0, 1, 2, 3}, i1[4] = {4, 5, 6, 7};
      LLVMValueRef p4 = LLVMBuildAdd(b, shuf(cg, neg, neg, i0, 4), shuf(cg, neg, neg, i1, 4), "");
      LLVMValueRef at = tfx_cg_add(cg, tfx_cg_mulc(cg, lb.iv, 4), tfx_cg_mulc(cg, slot, c->nqb * 8));
      LLVMSetAlignment(LLVMBuildStore(b, p4, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xz, &at, 1, "")), 4);
      LLVMSetAlignment(LLVMBuildStore(b, shuf(cg, dv, dv, i0, 4), tfx_cg_fptr(cg, c->xv, at)), 4);
    } else if (!NIBBLES(c)) {
      LLVMValueRef at = tfx_cg_add(cg, tfx_cg_mulc(cg, pos, 8), tfx_cg_mulc(cg, slot, c->nqb * 8));
      LLVMSetAlignment(LLVMBuildStore(b, neg, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xz, &at, 1, "")), 4);
      LLVMSetAlignment(LLVMBuildStore(b, dv, tfx_cg_fptr(cg, c->xv, at)), 4);
    } else {
      for (int q = 0; q < 2; q++) {
        int idx[4] = {4 * q, 4 * q + 1, 4 * q + 2, 4 * q + 3};
        LLVMValueRef at = tfx_cg_add(cg, pb, tfx_cg_addc(cg, tfx_cg_mulc(cg, h, 4), 8 * q));
        LLVMValueRef p4 = shuf(cg, neg, neg, idx, 4);
        LLVMSetAlignment(LLVMBuildStore(b, p4, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xz, &at, 1, "")), 4);
        LLVMValueRef d4 = shuf(cg, dv, dv, idx, 4);
        LLVMSetAlignment(LLVMBuildStore(b, d4, tfx_cg_fptr(cg, c->xv, at)), 4);
      }
    }
  }
  if (c->xs) {
    LLVMValueRef sp = LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xs, (LLVMValueRef[]){tfx_cg_mulc(cg, bslot, 8)}, 1, "");
    LLVMSetAlignment(LLVMBuildStore(b, sums, sp), 4);
  }
  if (c->dz && c->xm) { /* q4_k: d * sum(q) per block */
    LLVMValueRef sum = tfx_cg_intrinsic(cg, "llvm.vector.reduce.add", &c->t_i8x8, 1, &sums, 1);
    tfx_cg_storef(cg, LLVMBuildFMul(b, d, LLVMBuildSIToFP(b, sum, cg->t_f32, ""), ""), tfx_cg_fptr(cg, c->xm, bslot));
  }
  if (c->rp) { /* the sub-blocks' sums: S = 32 one, S = 16 two (lanes 0-3, 4-7) */
    int per = QB / (int)c->S, ln = 8 / per;
    for (int h = 0; h < per; h++) {
      int idx[8];
      for (int l = 0; l < ln; l++) idx[l] = h * ln + l;
      LLVMValueRef part = shuf(cg, sums, sums, idx, ln);
      LLVMTypeRef pt = LLVMTypeOf(part);
      LLVMValueRef sum = tfx_cg_intrinsic(cg, "llvm.vector.reduce.add", &pt, 1, &part, 1);
      LLVMValueRef t = tfx_cg_addc(cg, tfx_cg_mulc(cg, bslot, per), h);
      LLVMValueRef neg = LLVMBuildMul(b, sum, tfx_cg_i32(cg, -c->cw), "");
      LLVMSetAlignment(LLVMBuildStore(b, neg, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xc, &t, 1, "")), 4);
      if (c->xm)
        tfx_cg_storef(cg, LLVMBuildFMul(b, d, LLVMBuildSIToFP(b, sum, cg->t_f32, ""), ""), tfx_cg_fptr(cg, c->xm, t));
    }
  }
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
  LLVMValueRef slot = tfx_cg_add(cg, xb, tfx_cg_mulc(cg, c->slot[i], c->nqb));
  *q = load_a(cg, c->t_b32, bptr(cg, c->xq, tfx_cg_add(cg, tfx_cg_mulc(cg, xb, QB), tfx_cg_mulc(cg, c->slot[i], c->K))),
              1);
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

/* The 32 4-bit codes of 16 nibble bytes at p (byte j: element j low,
 * j + 16 high): the low nibbles, then the high ones. q4_0's at byte 2 of
 * its block, q5_0's (bits 0-3) at byte 6, zq4's per sub-block. */
static LLVMValueRef nibble_codes(tfx_cg *cg, qctx *c, LLVMValueRef p) {
  int seq[32];
  for (int l = 0; l < 32; l++) seq[l] = l;
  LLVMValueRef raw = load_a(cg, c->t_b16, p, 1);
  LLVMValueRef lo = LLVMBuildAnd(cg->b, raw, ivec(c->t_i8, 16, 0x0f), "");
  LLVMValueRef hi = LLVMBuildLShr(cg->b, raw, ivec(c->t_i8, 16, 4), "");
  return shuf(cg, lo, hi, seq, 32);
}

/* The 32 5-bit codes of a q5_0 block at wp (22 bytes: f16 d, the u32 qh
 * of fifth bits, then q4_0's 16 nibble bytes): q4_0's codes with bit e of
 * qh as bit 4 of element e (the u32's bits as a <32 x i1> mask, widened to
 * bytes: kmovd + vpmovm2b on AVX-512BW). */
static LLVMValueRef q5_0_codes(tfx_cg *cg, qctx *c, LLVMValueRef wp) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef qh = load_a(cg, cg->t_i32, tfx_cg_byteptr(cg, wp, 2), 1);
  LLVMValueRef bits = LLVMBuildBitCast(b, qh, LLVMVectorType(LLVMInt1TypeInContext(cg->ctx), 32), "");
  LLVMValueRef fifth = LLVMBuildSelect(b, bits, ivec(c->t_i8, 32, 0x10), LLVMConstNull(c->t_b32), "");
  return LLVMBuildOr(b, nibble_codes(cg, c, tfx_cg_byteptr(cg, wp, 6)), fifth, "");
}

/* The fifth bits (0x10 or 0) of a pair of q5_0 blocks at wp and wp1 in
 * the decode pair's byte order (bytes 0-15: block 0's elements 0-15,
 * 16-31: block 1's, 32-47: block 0's 16-31, 48-63: block 1's): the two
 * u32 qh as the halves of one u64 mask of 64 lanes. */
static LLVMValueRef q5_0_pair_bits(tfx_cg *cg, qctx *c, LLVMValueRef wp, LLVMValueRef wp1) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef i64 = cg->t_i64;
  LLVMValueRef h0 = LLVMBuildZExt(b, load_a(cg, cg->t_i32, tfx_cg_byteptr(cg, wp, 2), 1), i64, "");
  LLVMValueRef h1 = LLVMBuildZExt(b, load_a(cg, cg->t_i32, tfx_cg_byteptr(cg, wp1, 2), 1), i64, "");
  LLVMValueRef lo16 = LLVMConstInt(i64, 0xffff, 0);
  LLVMValueRef m = LLVMBuildOr(b, LLVMBuildAnd(b, h0, lo16, ""),
                               LLVMBuildShl(b, LLVMBuildAnd(b, h1, lo16, ""), LLVMConstInt(i64, 16, 0), ""), "");
  m = LLVMBuildOr(
      b, m, LLVMBuildShl(b, LLVMBuildLShr(b, h0, LLVMConstInt(i64, 16, 0), ""), LLVMConstInt(i64, 32, 0), ""), "");
  m = LLVMBuildOr(
      b, m, LLVMBuildShl(b, LLVMBuildLShr(b, h1, LLVMConstInt(i64, 16, 0), ""), LLVMConstInt(i64, 48, 0), ""), "");
  LLVMValueRef bits = LLVMBuildBitCast(b, m, LLVMVectorType(LLVMInt1TypeInContext(cg->ctx), 64), "");
  return LLVMBuildSelect(b, bits, ivec(c->t_i8, 64, 0x10), LLVMConstNull(LLVMVectorType(c->t_i8, 64)), "");
}

/* The 32 4-bit codes of sub-block sb of the q4_k super-block at wp, and its
 * 6-bit scale and min as i32 (the IR of tfx_q4_k_scale_min). */
static LLVMValueRef q4_k_codes(tfx_cg *cg, qctx *c, LLVMValueRef wp, int sb, LLVMValueRef *scale, LLVMValueRef *min) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef raw = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 16 + 32 * (sb / 2)), 1);
  LLVMValueRef codes =
      sb & 1 ? LLVMBuildLShr(b, raw, ivec(c->t_i8, 32, 4), "") : LLVMBuildAnd(b, raw, ivec(c->t_i8, 32, 0x0f), "");
#define SB(j) LLVMBuildZExt(b, load_a(cg, c->t_i8, tfx_cg_byteptr(cg, wp, 4 + (j)), 1), cg->t_i32, "")
  if (sb < 4) {
    *scale = LLVMBuildAnd(b, SB(sb), tfx_cg_i32(cg, 63), "");
    *min = LLVMBuildAnd(b, SB(sb + 4), tfx_cg_i32(cg, 63), "");
  } else {
    LLVMValueRef hi = SB(sb + 4);
    *scale =
        LLVMBuildOr(b, LLVMBuildAnd(b, hi, tfx_cg_i32(cg, 15), ""),
                    LLVMBuildShl(b, LLVMBuildLShr(b, SB(sb - 4), tfx_cg_i32(cg, 6), ""), tfx_cg_i32(cg, 4), ""), "");
    *min = LLVMBuildOr(b, LLVMBuildLShr(b, hi, tfx_cg_i32(cg, 4), ""),
                       LLVMBuildShl(b, LLVMBuildLShr(b, SB(sb), tfx_cg_i32(cg, 6), ""), tfx_cg_i32(cg, 4), ""), "");
  }
#undef SB
  return codes;
}

/* The 32 6-bit codes (0..63) of sub-block sb of the q6_k super-block at wp. */
static LLVMValueRef q6_k_codes(tfx_cg *cg, qctx *c, LLVMValueRef wp, int sb) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef lo4 = ivec(c->t_i8, 32, 0x0f), sh4 = ivec(c->t_i8, 32, 4);
  int h = sb / 4, q = sb % 4;
  LLVMValueRef ql = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 64 * h + 32 * (q & 1)), 1);
  LLVMValueRef qh = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 128 + 32 * h), 1);
  LLVMValueRef low = q < 2 ? LLVMBuildAnd(b, ql, lo4, "") : LLVMBuildLShr(b, ql, sh4, "");
  LLVMValueRef high = q ? LLVMBuildLShr(b, qh, ivec(c->t_i8, 32, 2 * q), "") : qh;
  high = LLVMBuildShl(b, LLVMBuildAnd(b, high, ivec(c->t_i8, 32, 3), ""), sh4, "");
  return LLVMBuildOr(b, low, high, "");
}

/* The 32 3-bit codes u (0 .. 7) of sub-block sb of the q3_k super-block at
 * wp (ir/dtype.c's dq_q3_k): bits 2 (sb % 4) of the qs bytes 32 + 32 (sb /
 * 4) .. as bits 0-1, bit sb of the 32 hmask bytes (at 0) as bit 2; w = d *
 * (sc - 32) * (u - 4) (ggml subtracts 4 where the hmask bit is clear). */
static LLVMValueRef q3_k_codes(tfx_cg *cg, qctx *c, LLVMValueRef wp, int sb) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef qs = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 32 + 32 * (sb / 4)), 1);
  if (sb % 4) qs = LLVMBuildLShr(b, qs, ivec(c->t_i8, 32, 2 * (sb % 4)), "");
  LLVMValueRef hm = load_a(cg, c->t_b32, wp, 1);
  if (sb > 2) hm = LLVMBuildLShr(b, hm, ivec(c->t_i8, 32, sb - 2), "");
  if (sb < 2) hm = LLVMBuildShl(b, hm, ivec(c->t_i8, 32, 2 - sb), "");
  return LLVMBuildOr(b, LLVMBuildAnd(b, qs, ivec(c->t_i8, 32, 3), ""), LLVMBuildAnd(b, hm, ivec(c->t_i8, 32, 4), ""),
                     "");
}

/* The 16 signed scales sc - 32 (-32 .. 31, one per 16 elements) of the
 * q3_k super-block at wp, as <16 x i8>: its 12 scale bytes (at 96) as three
 * u32 unpacked with 32-bit integer ops (ggml's kmask1 / kmask2: scale j has
 * the low 4 bits of byte j % 8 >> 4 (j / 8) and bits 2 (j / 4) of byte 8 +
 * j % 4 as bits 4-5; tfx_q3_k_scale). */
static LLVMValueRef q3_k_scales(tfx_cg *cg, qctx *c, LLVMValueRef wp) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef u[3];
  for (int q = 0; q < 3; q++) u[q] = load_a(cg, cg->t_i32, tfx_cg_byteptr(cg, wp, 96 + 4 * q), 1);
  LLVMValueRef k0f = tfx_cg_i32(cg, 0x0f0f0f0f), k03 = tfx_cg_i32(cg, 0x03030303);
  LLVMValueRef v4 = LLVMGetPoison(LLVMVectorType(cg->t_i32, 4));
  for (int q = 0; q < 4; q++) { /* scales 4q .. 4q + 3 */
    LLVMValueRef lo = u[q % 2];
    if (q >= 2) lo = LLVMBuildLShr(b, lo, tfx_cg_i32(cg, 4), "");
    LLVMValueRef hi = q ? LLVMBuildLShr(b, u[2], tfx_cg_i32(cg, 2 * q), "") : u[2];
    hi = LLVMBuildShl(b, LLVMBuildAnd(b, hi, k03, ""), tfx_cg_i32(cg, 4), "");
    v4 = LLVMBuildInsertElement(b, v4, LLVMBuildOr(b, LLVMBuildAnd(b, lo, k0f, ""), hi, ""), tfx_cg_i32(cg, q), "");
  }
  return LLVMBuildSub(b, LLVMBuildBitCast(b, v4, c->t_b16, ""), ivec(c->t_i8, 16, 32), "");
}

/* The 32 2-bit codes (0 .. 2) of sub-block sb of the tq2_0 super-block at
 * wp: bits 2 (sb % 4) of bytes 32 (sb / 4) ... */
static LLVMValueRef tq2_0_codes(tfx_cg *cg, qctx *c, LLVMValueRef wp, int sb) {
  LLVMValueRef raw = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 32 * (sb / 4)), 1);
  if (sb % 4) raw = LLVMBuildLShr(cg->b, raw, ivec(c->t_i8, 32, 2 * (sb % 4)), "");
  return LLVMBuildAnd(cg->b, raw, ivec(c->t_i8, 32, 3), "");
}

/* The 32 signed codes of the s24_q8_0 block at wp (22 bytes: f16 d, the
 * u32 keep mask, the 16 kept q in position order), the pruned elements 0:
 * the kept bytes spread under the mask (vpexpandb, the register form: a
 * mask of more than 16 bits reads no byte past the block). */
static LLVMValueRef s24_codes(tfx_cg *cg, qctx *c, LLVMValueRef wp) {
  if (!c->vbmi2) return tfx_cg_s24_codes(cg, wp);
  LLVMValueRef mask = load_a(cg, cg->t_i32, tfx_cg_byteptr(cg, wp, 2), 1);
  LLVMValueRef kept = load_a(cg, c->t_b16, tfx_cg_byteptr(cg, wp, 6), 1);
  int seq[32];
  for (int l = 0; l < 32; l++) seq[l] = l % 16;
  LLVMValueRef args[3] = {shuf(cg, kept, kept, seq, 32), LLVMConstNull(c->t_b32),
                          LLVMBuildBitCast(cg->b, mask, LLVMVectorType(cg->t_i1, 32), "")};
  return tfx_cg_intrinsic(cg, "llvm.x86.avx512.mask.expand", &c->t_b32, 1, args, 3);
}

/* Sub-block sb (0 .. wblk / 32 - 1) of the weight block at wp, for weight
 * row k of the tile, against activation block xb of every tile row. */
static void sub_block(tfx_cg *cg, qctx *c, qtile *t, int k, LLVMValueRef wp, LLVMValueRef wblock, int sb,
                      const LLVMValueRef *wscal, int set) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef xb = tfx_cg_addc(cg, tfx_cg_mulc(cg, wblock, c->wblk / QB), sb), wq = NULL, wsc = NULL, wmin = NULL;
  switch (c->dt) {
  case TFX_DT_I8:
  case TFX_DT_Q8_0: wq = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, c->qoff), 1); break;
  case TFX_DT_S24_Q8_0: wq = s24_codes(cg, c, wp); break;
  case TFX_DT_Q4_0: wq = nibble_codes(cg, c, tfx_cg_byteptr(cg, wp, 2)); break;
  case TFX_DT_Q5_0: wq = q5_0_codes(cg, c, wp); break;
  case TFX_DT_TQ2_0:
  case TFX_DT_TQ2_T: wq = tq2_0_codes(cg, c, wp, sb); break;
  case TFX_DT_ZQ8_64:
  case TFX_DT_ZQ8_128: wq = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 4 + 32 * sb), 1); break;
  case TFX_DT_ZQ4_64:
  case TFX_DT_ZQ4_128: wq = nibble_codes(cg, c, tfx_cg_byteptr(cg, wp, 4 + 16 * sb)); break;
  case TFX_DT_Q4_K: {
    LLVMValueRef sc, m;
    wq = q4_k_codes(cg, c, wp, sb, &sc, &m);
    wsc = LLVMBuildFMul(b, wscal[0], LLVMBuildSIToFP(b, sc, cg->t_f32, ""), "");
    wmin = LLVMBuildFNeg(b, LLVMBuildFMul(b, wscal[1], LLVMBuildSIToFP(b, m, cg->t_f32, ""), ""), "");
    break;
  }
  case TFX_DT_Q3_K:
  case TFX_DT_Q6_K: {
    LLVMTypeRef v2i8 = LLVMVectorType(c->t_i8, 2);
    LLVMValueRef sc2;
    if (c->dt == TFX_DT_Q3_K) { /* wscal[1]: the 16 scales (q3_k_scales) */
      wq = q3_k_codes(cg, c, wp, sb);
      int two[2] = {2 * sb, 2 * sb + 1};
      sc2 = shuf(cg, wscal[1], wscal[1], two, 2);
    } else {
      wq = q6_k_codes(cg, c, wp, sb);
      sc2 = load_a(cg, v2i8, tfx_cg_byteptr(cg, wp, 192 + 2 * sb), 1);
    }
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
    case TFX_DT_I8:
    case TFX_DT_Q8_0:
    case TFX_DT_S24_Q8_0:
      acc_fma(cg, t, a, idot_signed(cg, c, wq, xq), splat8(cg, c, LLVMBuildFMul(b, wscal[0], xd, "")));
      break;
    case TFX_DT_Q4_0: {
      LLVMValueRef dot =
          LLVMBuildSub(b, idot(cg, c, wq, xq, zero, 0), LLVMBuildShl(b, xs, ivec(cg->t_i32, 8, 3), ""), "");
      acc_fma(cg, t, a, dot, splat8(cg, c, LLVMBuildFMul(b, wscal[0], xd, "")));
      break;
    }
    case TFX_DT_Q5_0: { /* w = d * (u - 16) */
      LLVMValueRef dot =
          LLVMBuildSub(b, idot(cg, c, wq, xq, zero, 0), LLVMBuildShl(b, xs, ivec(cg->t_i32, 8, 4), ""), "");
      acc_fma(cg, t, a, dot, splat8(cg, c, LLVMBuildFMul(b, wscal[0], xd, "")));
      break;
    }
    case TFX_DT_TQ2_0:
    case TFX_DT_TQ2_T: { /* w = d * (u - 1) */
      LLVMValueRef dot = LLVMBuildSub(b, idot(cg, c, wq, xq, zero, 0), xs, "");
      acc_fma(cg, t, a, dot, splat8(cg, c, LLVMBuildFMul(b, wscal[0], xd, "")));
      break;
    }
    case TFX_DT_ZQ8_64:
    case TFX_DT_ZQ8_128:
    case TFX_DT_ZQ4_64:
    case TFX_DT_ZQ4_128: { /* w = d * (u - z): dot(u, x) - z * sum(x); wscal[1] is z (i32) */
      LLVMValueRef zi = LLVMBuildInsertElement(b, LLVMGetPoison(c->t_i8x8), wscal[1], tfx_cg_i32(cg, 0), "");
      LLVMValueRef zv = LLVMBuildShuffleVector(b, zi, zi, LLVMConstNull(c->t_i8x8), ""), dot;
      if (c->maddubs && !c->zq4) { /* u up to 255 would saturate vpmaddubsw's pairs: u - 128 as signed, z - 128 */
        LLVMValueRef ws = LLVMBuildXor(b, wq, ivec(c->t_i8, 32, 0x80), "");
        zv = LLVMBuildSub(b, zv, ivec(cg->t_i32, 8, 128), "");
        dot = idot_signed(cg, c, ws, xq);
      } else {
        dot = idot(cg, c, wq, xq, zero, 0);
      }
      dot = LLVMBuildSub(b, dot, LLVMBuildMul(b, zv, xs, ""), "");
      acc_fma(cg, t, a, dot, splat8(cg, c, LLVMBuildFMul(b, wscal[0], xd, "")));
      break;
    }
    case TFX_DT_Q4_K:
      acc_fma(cg, t, a, idot(cg, c, wq, xq, zero, 0), splat8(cg, c, LLVMBuildFMul(b, wsc, xd, "")));
      acc_fma(cg, t, a, xs, splat8(cg, c, LLVMBuildFMul(b, wmin, xd, "")));
      break;
    case TFX_DT_Q3_K: /* dot - 4 * sum x; q6_k: dot - 32 * sum x */
    case TFX_DT_Q6_K: {
      LLVMValueRef dot = LLVMBuildSub(b, idot(cg, c, wq, xq, zero, 0),
                                      LLVMBuildShl(b, xs, ivec(cg->t_i32, 8, c->dt == TFX_DT_Q3_K ? 2 : 5), ""), "");
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

/* i8: the f32 scale of the stored weight row wrow points to (its values
 * start at G->w + row * K: the scale plane follows the R_all rows). */
static LLVMValueRef wrow_scale(tfx_cg *cg, qctx *c, LLVMValueRef wrow) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef off = LLVMBuildPtrDiff2(b, c->t_i8, wrow, c->G->w, "");
  LLVMValueRef r = LLVMBuildSDiv(b, off, tfx_cg_i64(cg, c->K), "");
  LLVMValueRef plane = tfx_cg_byteptr(cg, c->G->w, c->R_all * c->K);
  return tfx_cg_loadf(cg, tfx_cg_fptr(cg, plane, r));
}

/* The decode kernels' software prefetch of weight row k: wp is off bytes
 * (i64) into the row, plus extra; c->prefetch bytes ahead, or, with two
 * streams in a panel (c->pf_end), as far ahead in the stream: past the
 * end of the stream's rows in this panel the next panel's rows of the same
 * stream (the other stream's rows in between, which it reads itself, are
 * skipped). */
static void dz_prefetch(tfx_cg *cg, qctx *c, LLVMValueRef wp, LLVMValueRef off, int64_t extra) {
  if (!c->prefetch) return;
  if (!c->pf_end) {
    tfx_cg_prefetch(cg, wp, c->prefetch + extra);
    return;
  }
  LLVMValueRef ahead = tfx_cg_addc(cg, off, c->prefetch + extra);
  LLVMValueRef past = LLVMBuildICmp(cg->b, LLVMIntSGE, ahead, c->pf_end, "");
  LLVMValueRef skip = LLVMBuildSelect(cg->b, past, tfx_cg_i64(cg, c->pf_skip), tfx_cg_i64(cg, 0), "");
  tfx_cg_prefetch(cg, bptr(cg, wp, skip), c->prefetch + extra);
}

/* The decode kernels' start: sets x c->nx x nw zeroed f32 accumulators
 * (v16f allocas, [set][row of x * nw + weight row]), each row of x's
 * quantized bytes and the index of its block scales. */
static void dz_start(tfx_cg *cg, qctx *c, int sets, int nw, LLVMValueRef acc[2][QFX * 2], LLVMValueRef *xrow,
                     LLVMValueRef *xbase) {
  LLVMTypeRef v16f = LLVMVectorType(cg->t_f32, 16);
  for (int st = 0; st < sets; st++)
    for (int k = 0; k < c->nx * nw; k++) {
      acc[st][k] = tfx_cg_alloca(cg, v16f, "dzacc");
      LLVMBuildStore(cg->b, LLVMConstNull(v16f), acc[st][k]);
    }
  for (int i = 0; i < c->nx; i++) {
    xrow[i] = bptr(cg, c->xq, tfx_cg_mulc(cg, c->slot[i], c->K));
    xbase[i] = tfx_cg_mulc(cg, c->slot[i], c->nqb * 8);
  }
}

/* The decode kernels' end: out[i * nw + k] = the sum of the accumulator
 * sets of row i of x and weight row k. */
static void dz_finish(tfx_cg *cg, qctx *c, int sets, int nw, LLVMValueRef acc[2][QFX * 2], LLVMValueRef *out) {
  LLVMTypeRef v16f = LLVMVectorType(cg->t_f32, 16);
  for (int k = 0; k < c->nx * nw; k++) {
    LLVMValueRef a = LLVMBuildLoad2(cg->b, v16f, acc[0][k], "");
    if (sets > 1) a = LLVMBuildFAdd(cg->b, a, LLVMBuildLoad2(cg->b, v16f, acc[1][k], ""), "");
    out[k] = a;
  }
}

/* One decoded weight pair or group (u: codes as i32 lanes, wd: its 16
 * lanes' f32 scales) against the c->nx rows of x at pair / group index at
 * (x's bytes xb[] as 1 or 2 zmm per row: the group's low and high nibbles):
 * per row, vpdpbusd from x's -cw * lane sums, converted, times wd * x's
 * lane scales into the row's accumulator acc[i * nw + k]. The weight's
 * loads and decoding are shared by the rows (the small-M batch: each block
 * loaded from memory feeds every row). */
static void dz_dot_rows(tfx_cg *cg, qctx *c, LLVMValueRef *u, int nu, LLVMValueRef wd, LLVMValueRef *xrow,
                        LLVMValueRef *xbase, LLVMValueRef xoff, LLVMValueRef at, LLVMValueRef *acc, int nw, int k) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  for (int i = 0; i < c->nx; i++) {
    LLVMValueRef ai = tfx_cg_add(cg, xbase[i], at);
    LLVMValueRef dot = load_a(cg, v16i, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xz, &ai, 1, ""), 4);
    LLVMValueRef xs = load_a(cg, v16f, tfx_cg_fptr(cg, c->xv, ai), 4);
    for (int q = 0; q < nu; q++) {
      LLVMValueRef xv = load_a(cg, v16i, bptr(cg, xrow[i], tfx_cg_addc(cg, xoff, 64 * q)), 1);
      LLVMValueRef args[3] = {dot, u[q], xv};
      dot = tfx_cg_intrinsic(cg, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3);
    }
    LLVMValueRef a = acc[i * nw + k], a0 = LLVMBuildLoad2(b, v16f, a, "");
    LLVMBuildStore(b, tfx_cg_fma(cg, LLVMBuildSIToFP(b, dot, v16f, ""), LLVMBuildFMul(b, wd, xs, ""), a0), a);
  }
}

/* Decode (the c->nx rows of x in c->slot[]) of the nw weight rows wrow[]
 * into 16-lane f32 vectors out[i * nw + k] whose lane sums are the dot
 * products (summed 16 rows at a time by dz_reduce), with
 * 512-bit vpdpbusd over pairs of blocks: the codes of blocks 2p and 2p + 1
 * in one zmm (q8_0: q ^ 0x80; q4_0: the low nibbles of both, then the high
 * ones), the i32 lanes starting at x's -cw * lane sums, their f32 scale the
 * two f16 d (one vcvtph2ps) times x's per-lane block scales; every row of x
 * alternates two accumulator sets over the pairs (an even count), so a row
 * computed in a pass of 2-4 rows has the same sums, bit for bit, as alone
 * (a batch step and a session's decode agree). */
static void dzk_rows(tfx_cg *cg, qctx *c, LLVMValueRef *wrow, int nw, LLVMValueRef *out);

static void dz4_rows(tfx_cg *cg, qctx *c, LLVMValueRef *wrow, int nw, LLVMValueRef *out);

static void dzt_rows(tfx_cg *cg, qctx *c, LLVMValueRef *wrow, int nw, LLVMValueRef *out);

/* The 64 signed codes of the s24_q8_0 blocks at wp and wp1 (a decode
 * pair): with VBMI2 one vpexpandb of their 32 kept bytes (two 16-byte
 * loads) under the two masks as one 64-bit mask; else s24_codes twice. */
static LLVMValueRef s24_pair(tfx_cg *cg, qctx *c, LLVMValueRef wp, LLVMValueRef wp1) {
  LLVMBuilderRef b = cg->b;
  int seq[64];
  for (int l = 0; l < 64; l++) seq[l] = l;
  if (!c->vbmi2) return shuf(cg, s24_codes(cg, c, wp), s24_codes(cg, c, wp1), seq, 64);
  LLVMValueRef k0 = load_a(cg, c->t_b16, tfx_cg_byteptr(cg, wp, 6), 1);
  LLVMValueRef k1 = load_a(cg, c->t_b16, tfx_cg_byteptr(cg, wp1, 6), 1);
  LLVMValueRef kept = shuf(cg, k0, k1, seq, 32);
  LLVMTypeRef i64 = cg->t_i64, v64b = LLVMVectorType(c->t_i8, 64);
  LLVMValueRef m0 = LLVMBuildZExt(b, load_a(cg, cg->t_i32, tfx_cg_byteptr(cg, wp, 2), 1), i64, "");
  LLVMValueRef m1 = LLVMBuildZExt(b, load_a(cg, cg->t_i32, tfx_cg_byteptr(cg, wp1, 2), 1), i64, "");
  LLVMValueRef m = LLVMBuildOr(b, m0, LLVMBuildShl(b, m1, LLVMConstInt(i64, 32, 0), ""), "");
  LLVMValueRef wide[64]; /* the 32 kept bytes in a zmm (the upper half read only for a mask of more than 32 bits) */
  for (int l = 0; l < 64; l++) wide[l] = l < 32 ? tfx_cg_i32(cg, l) : LLVMGetUndef(cg->t_i32);
  kept = LLVMBuildShuffleVector(b, kept, LLVMGetPoison(LLVMTypeOf(kept)), LLVMConstVector(wide, 64), "");
  LLVMValueRef args[3] = {kept, LLVMConstNull(v64b), LLVMBuildBitCast(b, m, LLVMVectorType(cg->t_i1, 64), "")};
  return tfx_cg_intrinsic(cg, "llvm.x86.avx512.mask.expand", &v64b, 1, args, 3);
}

static void dz_rows(tfx_cg *cg, qctx *c, LLVMValueRef *wrow, const LLVMValueRef *wsc, int nw, LLVMValueRef *out) {
  if (c->tq2t) {
    dzt_rows(cg, c, wrow, nw, out);
    return;
  }
  if (c->wblk == 256) {
    dzk_rows(cg, c, wrow, nw, out);
    return;
  }
  if (c->dz4) {
    dz4_rows(cg, c, wrow, nw, out);
    return;
  }
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  LLVMTypeRef th = LLVMHalfTypeInContext(cg->ctx);
  int64_t np = c->nqb / 2;
  int sets = np % 2 == 0 ? 2 : 1;
  LLVMValueRef acc[2][QFX * 2], xrow[QFX], xbase[QFX];
  dz_start(cg, c, sets, nw, acc, xrow, xbase);
  int seq[64], hidx[16];
  for (int l = 0; l < 64; l++) seq[l] = l;
  int q8 = c->dt == TFX_DT_Q8_0 || c->i8 || c->dt == TFX_DT_S24_Q8_0; /* 32 codes per block, in order */
  for (int l = 0; l < 16; l++) hidx[l] = q8 ? l / 8 : (l / 4) & 1;
  tfx_cg_loop lp;
  tfx_cg_for(cg, &lp, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, np / sets), 1, "dzpair");
  for (int st = 0; st < sets; st++) {
    LLVMValueRef p = tfx_cg_addc(cg, tfx_cg_mulc(cg, lp.iv, sets), st);
    LLVMValueRef at = tfx_cg_mulc(cg, p, 16), xoff = tfx_cg_mulc(cg, p, 64);
    for (int k = 0; k < nw; k++) {
      LLVMValueRef wp = bptr(cg, wrow[k], tfx_cg_mulc(cg, p, 2 * c->wbytes)), u;
      LLVMValueRef wp1 = tfx_cg_byteptr(cg, wp, c->wbytes);
      dz_prefetch(cg, c, wp, tfx_cg_mulc(cg, p, 2 * c->wbytes), 0);
      if (c->dt == TFX_DT_S24_Q8_0) {
        u = LLVMBuildXor(b, s24_pair(cg, c, wp, wp1), ivec(c->t_i8, 64, 0x80), "");
      } else if (q8) {
        LLVMValueRef a = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, c->qoff), 1);
        LLVMValueRef a1 = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp1, c->qoff), 1);
        u = LLVMBuildXor(b, shuf(cg, a, a1, seq, 64), ivec(c->t_i8, 64, 0x80), "");
      } else { /* q4_0, q5_0: the nibbles (q5_0's after its 4 bytes of fifth bits) */
        int64_t nib = c->dt == TFX_DT_Q5_0 ? 6 : 2;
        LLVMValueRef a = load_a(cg, c->t_b16, tfx_cg_byteptr(cg, wp, nib), 1);
        LLVMValueRef a1 = load_a(cg, c->t_b16, tfx_cg_byteptr(cg, wp1, nib), 1);
        LLVMValueRef raw = shuf(cg, a, a1, seq, 32);
        LLVMValueRef lo = LLVMBuildAnd(b, raw, ivec(c->t_i8, 32, 0x0f), "");
        LLVMValueRef hi = LLVMBuildLShr(b, raw, ivec(c->t_i8, 32, 4), "");
        u = shuf(cg, lo, hi, seq, 64);
        if (c->dt == TFX_DT_Q5_0) /* bit 4 of each code from the blocks' qh, in the bytes' order */
          u = LLVMBuildOr(b, u, q5_0_pair_bits(cg, c, wp, wp1), "");
      }
      u = LLVMBuildBitCast(b, u, v16i, "");
      LLVMValueRef wd;
      if (c->i8) {
        wd = LLVMBuildInsertElement(b, LLVMGetPoison(v16f), wsc[k], tfx_cg_i32(cg, 0), "");
        wd = LLVMBuildShuffleVector(b, wd, LLVMGetPoison(v16f), LLVMConstNull(v16i), "");
      } else {
        LLVMValueRef h2 = LLVMBuildInsertElement(b, LLVMGetPoison(LLVMVectorType(th, 2)), load_a(cg, th, wp, 1),
                                                 tfx_cg_i32(cg, 0), "");
        h2 = LLVMBuildInsertElement(b, h2, load_a(cg, th, wp1, 1), tfx_cg_i32(cg, 1), "");
        wd = LLVMBuildFPExt(b, shuf(cg, h2, h2, hidx, 16), v16f, "");
      }
      dz_dot_rows(cg, c, &u, 1, wd, xrow, xbase, xoff, at, acc[st], nw, k);
    }
  }
  tfx_cg_for_end(cg, &lp);
  dz_finish(cg, c, sets, nw, acc, out);
}

/* dz_rows for q4_0 by groups of 4 blocks (72 bytes; c->dz4): the 64
 * nibble bytes gathered from two loads (bytes 0-63 and 8-71) by one
 * permutation (vpermt2w: the blocks' nibbles start at even offsets), their low nibbles against x's first 64 bytes of
 * the group and the high ones against the next 64 into the same i32 lanes
 * (lane l: block l / 4, starting at x's -8 * lane sums), the four f16 d
 * taken from the first load by one word permutation and widened
 * (vcvtph2ps) as the lanes' scales; two accumulator sets alternate (every
 * row of x, as dz_rows). Per 72 bytes and row: 2 loads, 1 vpermt2w, 2 vpdpbusd, 5 for
 * the nibbles and the scales, 3 for the f32 accumulation (the pairs' path:
 * about twice that); the rows of a pass share the loads, the permutation,
 * the nibbles and the scales. */
static void dz4_rows(tfx_cg *cg, qctx *c, LLVMValueRef *wrow, int nw, LLVMValueRef *out) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  LLVMTypeRef v64b = LLVMVectorType(c->t_i8, 64), v32w = LLVMVectorType(c->t_i16, 32);
  LLVMTypeRef v16h = LLVMVectorType(LLVMHalfTypeInContext(cg->ctx), 16);
  int64_t ng = c->nqb / 4;
  int sets = ng % 2 == 0 ? 2 : 1;
  LLVMValueRef acc[2][QFX * 2], xrow[QFX], xbase[QFX];
  dz_start(cg, c, sets, nw, acc, xrow, xbase);
  int gidx[64], sidx[16];
  for (int h = 0; h < 4; h++)
    for (int i = 0; i < 16; i++) {
      int off = 18 * h + 2 + i; /* block h's byte i in the group */
      gidx[16 * h + i] = off < 64 ? off : 64 + off - 8;
    }
  for (int l = 0; l < 16; l++) sidx[l] = 9 * (l / 4); /* block l / 4's d: the word at byte 18 (l / 4) */
  tfx_cg_loop lp;
  tfx_cg_for(cg, &lp, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, ng / sets), 1, "dzgroup");
  for (int st = 0; st < sets; st++) {
    LLVMValueRef g = tfx_cg_addc(cg, tfx_cg_mulc(cg, lp.iv, sets), st);
    LLVMValueRef at = tfx_cg_mulc(cg, g, 16), xoff = tfx_cg_mulc(cg, g, 128);
    for (int k = 0; k < nw; k++) {
      LLVMValueRef wp = bptr(cg, wrow[k], tfx_cg_mulc(cg, g, 4 * c->wbytes));
      dz_prefetch(cg, c, wp, tfx_cg_mulc(cg, g, 4 * c->wbytes), 0);
      LLVMValueRef a = load_a(cg, v64b, wp, 1), a1 = load_a(cg, v64b, tfx_cg_byteptr(cg, wp, 8), 1);
      LLVMValueRef raw = shuf(cg, a, a1, gidx, 64);
      LLVMValueRef u[2] = {LLVMBuildBitCast(b, LLVMBuildAnd(b, raw, ivec(c->t_i8, 64, 0x0f), ""), v16i, ""),
                           LLVMBuildBitCast(b, LLVMBuildLShr(b, raw, ivec(c->t_i8, 64, 4), ""), v16i, "")};
      LLVMValueRef aw = LLVMBuildBitCast(b, a, v32w, "");
      LLVMValueRef wd = LLVMBuildFPExt(b, LLVMBuildBitCast(b, shuf(cg, aw, aw, sidx, 16), v16h, ""), v16f, "");
      dz_dot_rows(cg, c, u, 2, wd, xrow, xbase, xoff, at, acc[st], nw, k);
    }
  }
  tfx_cg_for_end(cg, &lp);
  dz_finish(cg, c, sets, nw, acc, out);
}

/* dz_rows for q4_k, q6_k, q3_k and tq2_0, per super-block of 256: four pairs of 32-element
 * sub-blocks, each one 512-bit vpdpbusd. q4_k: 64 nibble bytes (chunks 2h,
 * 2h + 1) per load, whose low nibbles are sub-blocks 4h and 4h + 2 and high
 * ones 4h + 1 and 4h + 3 (x's blocks stored in that order); the eight 6-bit
 * scales and mins unpacked in the 4 lanes of one vector (ggml's utmp; one
 * thread, the TinyLlama-1.1B shape's gate and up projections took 786 us
 * instead of 818 with 32-bit integer ops and inserts), widened as one vector
 * times (d, dmin), the eight d * sc times x's eight d once per super-block,
 * each pair's lanes taking theirs by a constant shuffle; the mins add dmin *
 * m . (x's d * sum) as one 8-lane FMA per super-block into a second
 * accumulator. q6_k: per half h of 128, the 64 ql bytes in one load (low
 * nibbles: sub-blocks 4h, 4h + 1; high: 4h + 2, 4h + 3) and the 32 qh bytes
 * in both halves of a zmm, whose 2-bit fields are moved to bits 4-5 by one
 * 16-bit shift per pair with a shift count per 256-bit half (the bits
 * crossing into a byte are masked off); the 16 int8 scales widened as one
 * vector, each lane's taken by a constant shuffle. q3_k: the 32 hmask bytes
 * in both halves of a zmm once per super-block, the 32 qs bytes of each half
 * of 128 likewise; per pair j (sub-blocks 2j, 2j + 1) one 16-bit shift of
 * each with a count per 256-bit half moves the qs fields 2 (2j mod 4), 2 (2j
 * mod 4) + 1 to bits 0-1 and the hmask bits 2j, 2j + 1 to bit 2 (left shifts
 * for j = 0), masked and or-ed; the 16 scales (q3_k_scales) times d as
 * q6_k's. */
static void dzk_rows(tfx_cg *cg, qctx *c, LLVMValueRef *wrow, int nw, LLVMValueRef *out) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  LLVMTypeRef v4i = LLVMVectorType(cg->t_i32, 4), f8 = c->t_f8;
  int q4k = c->dt == TFX_DT_Q4_K, tq2 = c->dt == TFX_DT_TQ2_0, q3k = c->dt == TFX_DT_Q3_K;
  LLVMValueRef acc[2][8], macc[8];
  for (int k = 0; k < nw; k++) {
    for (int st = 0; st < 2; st++) {
      acc[st][k] = tfx_cg_alloca(cg, v16f, "dzacc");
      LLVMBuildStore(b, LLVMConstNull(v16f), acc[st][k]);
    }
    if (q4k) {
      macc[k] = tfx_cg_alloca(cg, f8, "dzmin");
      LLVMBuildStore(b, LLVMConstNull(f8), macc[k]);
    }
  }
  LLVMValueRef xrow = bptr(cg, c->xq, tfx_cg_mulc(cg, c->slot[0], c->K));
  LLVMValueRef xbase = tfx_cg_mulc(cg, c->slot[0], c->nqb * 8);
  int seq[64];
  for (int l = 0; l < 64; l++) seq[l] = l;
  tfx_cg_loop ls;
  tfx_cg_for(cg, &ls, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, c->K / 256), 1, "dzsup");
  LLVMValueRef xv[4], init[4], xb[4];
  for (int j = 0; j < 4; j++) {
    LLVMValueRef pr = tfx_cg_addc(cg, tfx_cg_mulc(cg, ls.iv, 4), j);
    xb[j] = load_a(cg, v16i, bptr(cg, xrow, tfx_cg_mulc(cg, pr, 64)), 1);
    LLVMValueRef at = tfx_cg_add(cg, xbase, tfx_cg_mulc(cg, pr, 16));
    xv[j] = q4k ? NULL : load_a(cg, v16f, tfx_cg_fptr(cg, c->xv, at), 4);
    init[j] = q4k ? LLVMConstNull(v16i) : load_a(cg, v16i, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xz, &at, 1, ""), 4);
  }
  LLVMValueRef xsum = NULL, xd8 = NULL;
  if (q4k) { /* x's d * sum(q) and d of the super-block's 8 blocks (in order) */
    LLVMValueRef at = tfx_cg_add(cg, tfx_cg_mulc(cg, c->slot[0], c->nqb), tfx_cg_mulc(cg, ls.iv, 8));
    xsum = load_a(cg, f8, tfx_cg_fptr(cg, c->xm, at), 4);
    xd8 = load_a(cg, f8, tfx_cg_fptr(cg, c->xd, at), 4);
  }
  for (int k = 0; k < nw; k++) {
    LLVMValueRef wp = bptr(cg, wrow[k], tfx_cg_mulc(cg, ls.iv, c->wbytes)), sv, q4lh[4];
    for (int64_t off = 0; off < c->wbytes; off += 64) dz_prefetch(cg, c, wp, tfx_cg_mulc(cg, ls.iv, c->wbytes), off);
    if (q4k) {
      /* the 12 scale bytes as dwords u0 u1 u2 (one 16-byte load; its last
       * dword, the first codes, unused), unpacked in 4 lanes at once:
       * (sc_lo, sc_hi, m_lo, m_hi) = (u0 & 0x3f.., (u2 & 0x0f..) | hi2(u0),
       * u1 & 0x3f.., ((u2 >> 4) & 0x0f..) | hi2(u1)), hi2(v) = ((v >> 6) &
       * 0x03..) << 4 */
      LLVMValueRef u = load_a(cg, v4i, tfx_cg_byteptr(cg, wp, 4), 1);
      int ia[4] = {0, 2, 1, 2}, ib[4] = {0, 0, 1, 1};
      LLVMValueRef lo = LLVMBuildLShr(b, shuf(cg, u, u, ia, 4), i32x4(cg, 0, 0, 0, 4), "");
      lo = LLVMBuildAnd(b, lo, i32x4(cg, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f), "");
      LLVMValueRef hi = LLVMBuildLShr(b, shuf(cg, u, u, ib, 4), ivec(cg->t_i32, 4, 6), "");
      hi = LLVMBuildAnd(b, hi, i32x4(cg, 0, 0x03030303, 0, 0x03030303), "");
      LLVMValueRef v4 = LLVMBuildOr(b, lo, LLVMBuildShl(b, hi, ivec(cg->t_i32, 4, 4), ""), "");
      LLVMValueRef sm = LLVMBuildUIToFP(b, LLVMBuildBitCast(b, v4, c->t_b16, ""), v16f, "");
      LLVMValueRef dd =
          LLVMBuildInsertElement(b, LLVMGetPoison(LLVMVectorType(LLVMHalfTypeInContext(cg->ctx), 2)),
                                 load_a(cg, LLVMHalfTypeInContext(cg->ctx), wp, 1), tfx_cg_i32(cg, 0), "");
      dd = LLVMBuildInsertElement(b, dd, load_a(cg, LLVMHalfTypeInContext(cg->ctx), tfx_cg_byteptr(cg, wp, 2), 1),
                                  tfx_cg_i32(cg, 1), "");
      int hidx[16];
      for (int l = 0; l < 16; l++) hidx[l] = l / 8;
      sv = LLVMBuildFMul(b, sm, LLVMBuildFPExt(b, shuf(cg, dd, dd, hidx, 16), v16f, ""), "");
      int mi[8];
      for (int l = 0; l < 8; l++) mi[l] = 8 + l;
      LLVMValueRef mins = shuf(cg, sv, sv, mi, 8);
      LLVMBuildStore(b, tfx_cg_fma(cg, mins, xsum, LLVMBuildLoad2(b, f8, macc[k], "")), macc[k]);
      for (int l = 0; l < 8; l++) mi[l] = l; /* each block's d * sc times x's d */
      sv = LLVMBuildFMul(b, shuf(cg, sv, sv, mi, 8), xd8, "");
      for (int h = 0; h < 2; h++) { /* sub-blocks 4h, 4h + 2 (low nibbles), 4h + 1, 4h + 3 (high) */
        LLVMValueRef raw = load_a(cg, LLVMVectorType(c->t_i8, 64), tfx_cg_byteptr(cg, wp, 16 + 64 * h), 1);
        q4lh[2 * h] = LLVMBuildAnd(b, raw, ivec(c->t_i8, 64, 0x0f), "");
        q4lh[2 * h + 1] = LLVMBuildLShr(b, raw, ivec(c->t_i8, 64, 4), "");
      }
    } else if (tq2) { /* one scale: d in every lane */
      LLVMValueRef d =
          LLVMBuildFPExt(b, load_a(cg, LLVMHalfTypeInContext(cg->ctx), tfx_cg_byteptr(cg, wp, 64), 1), cg->t_f32, "");
      sv = LLVMBuildShuffleVector(b, LLVMBuildInsertElement(b, LLVMGetPoison(v16f), d, tfx_cg_i32(cg, 0), ""),
                                  LLVMGetPoison(v16f), LLVMConstNull(v16i), "");
    } else { /* q6_k, q3_k: 16 int8 scales times d */
      LLVMValueRef s8 = q3k ? q3_k_scales(cg, c, wp) : load_a(cg, c->t_b16, tfx_cg_byteptr(cg, wp, 192), 1);
      LLVMValueRef d = LLVMBuildFPExt(
          b, load_a(cg, LLVMHalfTypeInContext(cg->ctx), tfx_cg_byteptr(cg, wp, q3k ? 108 : 208), 1), cg->t_f32, "");
      LLVMValueRef dv =
          LLVMBuildShuffleVector(b, LLVMBuildInsertElement(b, LLVMGetPoison(v16f), d, tfx_cg_i32(cg, 0), ""),
                                 LLVMGetPoison(v16f), LLVMConstNull(v16i), "");
      sv = LLVMBuildFMul(b, LLVMBuildSIToFP(b, s8, v16f, ""), dv, "");
    }
    LLVMValueRef q6[4];
    if (q3k) { /* pair j = 2h + p: sub-blocks 4h + 2p (bytes 0-31), 4h + 2p + 1 (32-63) */
      LLVMTypeRef v64b = LLVMVectorType(c->t_i8, 64), v32w = LLVMVectorType(c->t_i16, 32);
      int bc[64];
      for (int l = 0; l < 64; l++) bc[l] = l % 32;
      LLVMValueRef hm = load_a(cg, c->t_b32, wp, 1);
      hm = LLVMBuildBitCast(b, shuf(cg, hm, hm, bc, 64), v32w, "");
      for (int j = 0; j < 4; j++) {
        LLVMValueRef qs = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 32 + 32 * (j / 2)), 1);
        qs = LLVMBuildBitCast(b, shuf(cg, qs, qs, bc, 64), v32w, "");
        /* 16-bit shifts, a count per 256-bit half: the qs fields 2 (2j % 4), + 1 to bits 0-1, hmask bits 2j,
         * 2j + 1 to bit 2 (left for j = 0); the bits crossing into a byte are masked off */
        LLVMValueRef sq[32], sh[32];
        for (int l = 0; l < 32; l++) {
          int sb = 2 * j + l / 16;
          sq[l] = LLVMConstInt(c->t_i16, 2 * (sb % 4), 0);
          sh[l] = LLVMConstInt(c->t_i16, j ? sb - 2 : 2 - sb, 0);
        }
        LLVMValueRef lo = LLVMBuildLShr(b, qs, LLVMConstVector(sq, 32), "");
        LLVMValueRef hi =
            j ? LLVMBuildLShr(b, hm, LLVMConstVector(sh, 32), "") : LLVMBuildShl(b, hm, LLVMConstVector(sh, 32), "");
        q6[j] = LLVMBuildOr(b, LLVMBuildAnd(b, LLVMBuildBitCast(b, lo, v64b, ""), ivec(c->t_i8, 64, 3), ""),
                            LLVMBuildAnd(b, LLVMBuildBitCast(b, hi, v64b, ""), ivec(c->t_i8, 64, 4), ""), "");
      }
    } else if (!q4k && !tq2)
      for (int h = 0; h < 2; h++) { /* pair 2h: sub-blocks 4h, 4h + 1; pair 2h + 1: 4h + 2, 4h + 3 */
        LLVMTypeRef v64b = LLVMVectorType(c->t_i8, 64), v32w = LLVMVectorType(c->t_i16, 32);
        LLVMValueRef ql = load_a(cg, v64b, tfx_cg_byteptr(cg, wp, 64 * h), 1);
        LLVMValueRef qh = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 128 + 32 * h), 1);
        int bc[64];
        for (int l = 0; l < 64; l++) bc[l] = l % 32;
        LLVMValueRef qw = LLVMBuildBitCast(b, shuf(cg, qh, qh, bc, 64), v32w, "");
        LLVMValueRef sl[32], sr[32];
        for (int l = 0; l < 32; l++) { /* fields 0, 1 to bits 4-5 (<< 4, << 2); fields 2, 3 (>> 0, >> 2) */
          sl[l] = LLVMConstInt(c->t_i16, l < 16 ? 4 : 2, 0);
          sr[l] = LLVMConstInt(c->t_i16, l < 16 ? 0 : 2, 0);
        }
        LLVMValueRef m30 = ivec(c->t_i8, 64, 0x30);
        LLVMValueRef ha =
            LLVMBuildAnd(b, LLVMBuildBitCast(b, LLVMBuildShl(b, qw, LLVMConstVector(sl, 32), ""), v64b, ""), m30, "");
        LLVMValueRef hb =
            LLVMBuildAnd(b, LLVMBuildBitCast(b, LLVMBuildLShr(b, qw, LLVMConstVector(sr, 32), ""), v64b, ""), m30, "");
        q6[2 * h] = LLVMBuildOr(b, LLVMBuildAnd(b, ql, ivec(c->t_i8, 64, 0x0f), ""), ha, "");
        q6[2 * h + 1] = LLVMBuildOr(b, LLVMBuildLShr(b, ql, ivec(c->t_i8, 64, 4), ""), hb, "");
      }
    for (int j = 0; j < 4; j++) {
      LLVMValueRef u, lanes;
      int sidx[16];
      if (q4k) { /* pair j: sub-blocks 4 (j / 2) + j % 2 and that + 2 */
        u = q4lh[j];
        for (int l = 0; l < 16; l++) sidx[l] = 4 * (j / 2) + j % 2 + 2 * (l / 8);
      } else if (tq2) { /* sub-blocks 2j, 2j + 1: the 2-bit fields 2 (j % 2), 2 (j % 2) + 1 of bytes 32 (j / 2) .. */
        u = shuf(cg, tq2_0_codes(cg, c, wp, 2 * j), tq2_0_codes(cg, c, wp, 2 * j + 1), seq, 64);
        for (int l = 0; l < 16; l++) sidx[l] = 0;
      } else { /* q6_k, q3_k: pair j: sub-blocks 2j, 2j + 1, two scales each */
        u = q6[j];
        for (int l = 0; l < 16; l++) sidx[l] = 2 * (2 * j + l / 8) + (l / 4) % 2;
      }
      LLVMValueRef args[3] = {init[j], LLVMBuildBitCast(b, u, v16i, ""), xb[j]};
      LLVMValueRef dot = tfx_cg_intrinsic(cg, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3);
      lanes = q4k ? shuf(cg, sv, sv, sidx, 16) : LLVMBuildFMul(b, shuf(cg, sv, sv, sidx, 16), xv[j], "");
      LLVMValueRef a0 = LLVMBuildLoad2(b, v16f, acc[j % 2][k], "");
      LLVMBuildStore(b, tfx_cg_fma(cg, LLVMBuildSIToFP(b, dot, v16f, ""), lanes, a0), acc[j % 2][k]);
    }
  }
  tfx_cg_for_end(cg, &ls);
  for (int k = 0; k < nw; k++) {
    LLVMValueRef a =
        LLVMBuildFAdd(b, LLVMBuildLoad2(b, v16f, acc[0][k], ""), LLVMBuildLoad2(b, v16f, acc[1][k], ""), "");
    if (q4k) { /* the mins' 8 lanes subtracted from the first 8 */
      int wi[16];
      for (int l = 0; l < 16; l++) wi[l] = l < 8 ? l : 8;
      LLVMValueRef m8 = LLVMBuildLoad2(b, f8, macc[k], "");
      a = LLVMBuildFSub(b, a, shuf(cg, m8, LLVMConstNull(f8), wi, 16), "");
    }
    out[k] = a;
  }
}

/* dz_rows for tq2_t (BitNet b1.58's ternary weights: one scale d per
 * tensor, the activations quantized per token with one scale x_d per row):
 * the dot product is d * x_d * (sum_i u_i q_i - sum_i q_i) (u in {0, 1, 2}
 * the 2-bit codes, q x's int8 codes), so the whole row accumulates in i32
 * lanes with no per-block conversion, scale or FMA. Per super-block of 256
 * and weight row: one 64-byte load of the codes, whose 2-bit field f of
 * bytes 0-31 is sub-block f and of bytes 32-63 sub-block 4 + f (x's bytes
 * stored in that order by quant_row), then per row of x (c->nx, sharing the
 * decoded codes) one vpdpbusd per field. With one or two accumulator
 * groups (a lone row; a GLU pair) each field has an accumulator of its own
 * (A = 4) and is dotted in place: one byte mask (3 << 2f, so the codes are
 * 4^f u, at most 128 as vpdpbusd's unsigned bytes), the accumulator shifted
 * right by 2f at the end (exact: 4^f divides each of its lanes); measured
 * (bench_q8, CPU time, one thread, 768 -> 2048 and 2048 -> 768) 18% and
 * 32% faster than a 16-bit shift and a mask per field. With more (2-4 rows
 * of x, A = 2 accumulators each for registers) the fields are moved to bits
 * 0-1 by a 16-bit shift and a mask. The first accumulator starts with the
 * row's -sum(q) (quant_row's xt) in lane 0. At the end one i32 sum of the A,
 * one conversion and one multiply by d * x_d (the row's d: its first
 * block's). Bounds: per lane a vpdpbusd adds at most 4 * 128 * 127 (field
 * 3 in place), so |lane| <= 254 K + 127 K < 2^31 for K <= 2^22 (the
 * kernel is taken for those only: qctx_init), and the sum is exact in f32
 * (< 2^24) for K <= 117,000. */
static void dzt_rows(tfx_cg *cg, qctx *c, LLVMValueRef *wrow, int nw, LLVMValueRef *out) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  LLVMTypeRef v64b = LLVMVectorType(c->t_i8, 64), v32w = LLVMVectorType(c->t_i16, 32);
  int nacc = c->nx * nw, A = nacc <= 2 ? 4 : 2;
  LLVMValueRef acc[4][QFX * 2], xrow[QFX];
  for (int i = 0; i < c->nx; i++) {
    xrow[i] = bptr(cg, c->xq, tfx_cg_mulc(cg, c->slot[i], c->K));
    LLVMValueRef ns = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xt, &c->slot[i], 1, ""), "");
    LLVMValueRef init = LLVMBuildInsertElement(b, LLVMConstNull(v16i), ns, tfx_cg_i32(cg, 0), "");
    for (int k = 0; k < nw; k++)
      for (int a = 0; a < A; a++) {
        acc[a][i * nw + k] = tfx_cg_alloca(cg, v16i, "dztacc");
        LLVMBuildStore(b, a ? LLVMConstNull(v16i) : init, acc[a][i * nw + k]);
      }
  }
  tfx_cg_loop ls;
  tfx_cg_for(cg, &ls, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, c->K / 256), 1, "dztsup");
  LLVMValueRef xb[QFX][4];
  for (int i = 0; i < c->nx; i++)
    for (int f = 0; f < 4; f++)
      xb[i][f] = load_a(cg, v16i, bptr(cg, xrow[i], tfx_cg_addc(cg, tfx_cg_mulc(cg, ls.iv, 256), 64 * f)), 1);
  for (int k = 0; k < nw; k++) {
    LLVMValueRef wp = bptr(cg, wrow[k], tfx_cg_mulc(cg, ls.iv, c->wbytes));
    for (int64_t off = 0; off < c->wbytes; off += 64) dz_prefetch(cg, c, wp, tfx_cg_mulc(cg, ls.iv, c->wbytes), off);
    LLVMValueRef raw = load_a(cg, v64b, wp, 1), rw = LLVMBuildBitCast(b, raw, v32w, "");
    for (int f = 0; f < 4; f++) {
      /* A = 4: field f in place (4^f u, at most 128), its accumulator scaled back at the end */
      LLVMValueRef sh =
          f && A < 4 ? LLVMBuildBitCast(b, LLVMBuildLShr(b, rw, ivec(c->t_i16, 32, 2 * f), ""), v64b, "") : raw;
      LLVMValueRef u =
          LLVMBuildBitCast(b, LLVMBuildAnd(b, sh, ivec(c->t_i8, 64, A < 4 ? 3 : 3 << 2 * f), ""), v16i, "");
      for (int i = 0; i < c->nx; i++) {
        LLVMValueRef a = acc[f % A][i * nw + k];
        LLVMValueRef args[3] = {LLVMBuildLoad2(b, v16i, a, ""), u, xb[i][f]};
        LLVMBuildStore(b, tfx_cg_intrinsic(cg, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3), a);
      }
    }
  }
  tfx_cg_for_end(cg, &ls);
  for (int k = 0; k < nw; k++) {
    LLVMValueRef d = LLVMBuildFPExt(b, load_a(cg, LLVMHalfTypeInContext(cg->ctx), tfx_cg_byteptr(cg, wrow[k], 64), 1),
                                    cg->t_f32, "");
    for (int i = 0; i < c->nx; i++) {
      LLVMValueRef a = LLVMBuildLoad2(b, v16i, acc[0][i * nw + k], "");
      for (int j = 1; j < A; j++) {
        LLVMValueRef aj = LLVMBuildLoad2(b, v16i, acc[j][i * nw + k], "");
        if (A == 4) aj = LLVMBuildAShr(b, aj, ivec(cg->t_i32, 16, 2 * j), ""); /* exact: 4^j divides every lane */
        a = LLVMBuildAdd(b, a, aj, "");
      }
      LLVMValueRef xd = tfx_cg_loadf(cg, tfx_cg_fptr(cg, c->xd, tfx_cg_mulc(cg, c->slot[i], c->nqb)));
      LLVMValueRef s =
          LLVMBuildInsertElement(b, LLVMGetPoison(v16f), LLVMBuildFMul(b, d, xd, ""), tfx_cg_i32(cg, 0), "");
      s = LLVMBuildShuffleVector(b, s, LLVMGetPoison(v16f), LLVMConstNull(v16i), "");
      out[i * nw + k] = LLVMBuildFMul(b, LLVMBuildSIToFP(b, a, v16f, ""), s, "");
    }
  }
}

/* The row-major tiles' dot products of the tile rows c->slot[0 .. mr - 1]
 * with the nw weight rows at wrow[] (wsc: i8's row scales, else unused):
 * out[i * nw + k] (f32) for tile row i and weight row k. */
static void rm_dots(tfx_cg *cg, qctx *c, int mr, const LLVMValueRef *wrow, const LLVMValueRef *wsc, int nw,
                    LLVMValueRef *out) {
  LLVMBuilderRef b = cg->b;
  qtile t = {.mr = mr, .nw = nw};
  /* one-row tiles (decode) alternate two accumulator sets (by block and
   * sub-block) so consecutive FMAs do not wait on each other; 32-element
   * formats then take two blocks per iteration */
  int sets = mr == 1 ? QSETS : 1, nblk = (int)(c->K / c->wblk);
  int unroll = sets > 1 && c->wblk == QB && nblk % 2 == 0 ? 2 : 1;
  for (int k = 0; k < sets * mr * t.nw; k++) {
    t.acc[k] = tfx_cg_alloca(cg, c->t_f8, "qacc");
    LLVMBuildStore(b, LLVMConstNull(c->t_f8), t.acc[k]);
  }
  /* decode (one row of x): the weight rows prefetched tfx_cg_decode_prefetch bytes ahead */
  int64_t rm_prefetch = mr == 1 ? tfx_cg_decode_prefetch(cg) : 0;
  tfx_cg_loop lk;
  tfx_cg_for(cg, &lk, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, nblk / unroll), 1, "wblk");
  for (int u = 0; u < unroll; u++) {
    LLVMValueRef blk = tfx_cg_addc(cg, tfx_cg_mulc(cg, lk.iv, unroll), u);
    LLVMValueRef off = tfx_cg_mulc(cg, blk, c->wbytes);
    for (int k = 0; k < t.nw; k++) {
      LLVMValueRef wp = bptr(cg, wrow[k], off), sc[2] = {NULL, NULL};
      if (u == 0) /* every line of the trip's weight bytes */
        for (int64_t o = 0; rm_prefetch && o < unroll * c->wbytes; o += 64) tfx_cg_prefetch(cg, wp, rm_prefetch + o);
      switch (c->dt) {
      case TFX_DT_I8: sc[0] = wsc[k]; break;
      case TFX_DT_Q8_0:
      case TFX_DT_S24_Q8_0:
      case TFX_DT_Q4_0:
      case TFX_DT_Q5_0: sc[0] = half_at(cg, c->f16c, wp); break;
      case TFX_DT_Q4_K:
        sc[0] = half_at(cg, c->f16c, wp);
        sc[1] = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 2));
        break;
      case TFX_DT_Q6_K: sc[0] = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 208)); break;
      case TFX_DT_Q3_K:
        sc[0] = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 108));
        sc[1] = q3_k_scales(cg, c, wp);
        break;
      case TFX_DT_TQ2_0:
      case TFX_DT_TQ2_T: sc[0] = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 64)); break;
      case TFX_DT_ZQ8_64:
      case TFX_DT_ZQ8_128:
      case TFX_DT_ZQ4_64:
      case TFX_DT_ZQ4_128:
        sc[0] = half_at(cg, c->f16c, wp);
        sc[1] = LLVMBuildSExt(b, load_a(cg, c->t_i16, tfx_cg_byteptr(cg, wp, 2), 1), cg->t_i32, "z");
        break;
      default: break;
      }
      for (int sb = 0; sb < c->wblk / QB; sb++) sub_block(cg, c, &t, k, wp, blk, sb, sc, (u + sb) % sets);
    }
  }
  tfx_cg_for_end(cg, &lk);
  for (int k = 0; k < mr * t.nw; k++) { /* the sets summed */
    LLVMValueRef a = LLVMBuildLoad2(b, c->t_f8, t.acc[k], "");
    for (int st = 1; st < sets; st++)
      a = LLVMBuildFAdd(b, a, LLVMBuildLoad2(b, c->t_f8, t.acc[st * mr * t.nw + k], ""), "");
    out[k] = tfx_cg_hsum(cg, a);
  }
}

/* The mr x nc tile at panel columns c0 (i64).. against the quantized rows. */
static void emit_qtile(tfx_cg *cg, qctx *c, int mr, LLVMValueRef c0, int nc, int cstride) {
  const tfx_cg_gemm *G = c->G;
  LLVMBuilderRef b = cg->b;
  int nw = G->glu ? 2 * nc : nc;
  LLVMValueRef wrow[8];
  for (int j = 0; j < nc; j++)
    for (int h = 0; h < (G->glu ? 2 : 1); h++)
      wrow[G->glu ? 2 * j + h : j] = wrow_ptr(cg, c, tfx_cg_addc(cg, c0, (int64_t)j * cstride), h);
  LLVMValueRef wsc[8] = {NULL};
  if (c->i8)
    for (int k = 0; k < nw; k++) wsc[k] = wrow_scale(cg, c, wrow[k]);
  if (c->dz && mr == 1) { /* the c->nx rows of x, row i's sums at zr[h] + i * NB * 16 */
    LLVMValueRef out[QFX * 8];
    dz_rows(cg, c, wrow, wsc, nw, out);
    for (int i = 0; i < c->nx; i++)
      for (int j = 0; j < nc; j++)
        for (int h = 0; h < (G->glu ? 2 : 1); h++) {
          LLVMValueRef at = tfx_cg_fptr(
              cg, c->zr[h],
              tfx_cg_addc(cg, tfx_cg_mulc(cg, tfx_cg_addc(cg, c0, (int64_t)j * cstride), 16), (int64_t)i * NB * 16));
          LLVMSetAlignment(LLVMBuildStore(b, out[i * nw + (G->glu ? 2 * j + h : j)], at), 64);
        }
    return;
  }
  LLVMValueRef sums[QMR * 8];
  rm_dots(cg, c, mr, wrow, wsc, nw, sums);
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < nc; j++) {
      int k = G->glu ? 2 * j : j;
      LLVMValueRef col = tfx_cg_addc(cg, c0, (int64_t)i * NB + j);
      tfx_cg_storef(cg, sums[i * nw + k], tfx_cg_fptr(cg, c->P->blk, col));
      if (G->glu) tfx_cg_storef(cg, sums[i * nw + k + 1], tfx_cg_fptr(cg, c->P->blku, col));
    }
}

/* The row-major tiles of the panel for the tile rows c->slot[0 .. mr - 1]:
 * decode (mr = 1) one weight row at a time (a GLU column: its gate and up
 * rows), so the panel's rows stream through memory in order (tiles of 8
 * rows read 8 strided streams and ran at half the speed); prefill without
 * the repacked tiles: 4 x 4 tiles reusing each weight block across 4 rows.
 * The dz kernels (not a GLU, which already reads two: its gate and up
 * rows) take two rows at a time, row j and row j + nb / 2 of the panel:
 * two streams through memory, 16 rows apart, each prefetched, instead of
 * one. A core's loads reach further ahead over two streams (a read loop at
 * 2 threads with 2 MiB pages: 33.7 GB/s over one, 35.4-37.4 over two); the
 * TinyLlama-1.1B shape's decode, 2 threads: q8_0 27.5 -> 29.9 t/s, q4_0
 * 41-45 -> 47-48, q4_k_m 39-40 -> 42-44 (docs/performance.md). Each row keeps
 * its own accumulators, so the sums are those of one row at a time. Each
 * stream goes on in the next panel (the panels of a chunk are consecutive),
 * so over whole panels stored in order the prefetch of a row's last bytes
 * skips the other stream's rows (c->pf_end, dz_prefetch) instead of fetching
 * lines that stream has read: the TinyLlama-1.1B shape in q4_0, one thread,
 * its attention output projection (2048 x 2048) took 135 us instead of 155,
 * its fused QKV 176 instead of 200; 2 threads, 84 instead of 89. */
static void rm_tiles(tfx_cg *cg, qctx *c, int mr) {
  const tfx_cg_gemm *G = c->G;
  int ncol = mr == 1 ? 1 : (G->glu ? 2 : 4);
  int nb = c->P->nb;
  if (c->dz && mr == 1 && !G->glu && nb >= 4 && tfx_cg_decode_streams(cg) == 2) {
    int half = nb / 2;
    unsigned pm = 1u << c->P->seg;
    tfx_cg_loop lt;
    tfx_cg_for(cg, &lt, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, half), 1, "qtile2");
    if (nb == NB && !(G->perm & pm)) { /* whole panels, stored in order: the streams go on in the next panel */
      c->pf_end = tfx_cg_mulc(cg, tfx_cg_sub(cg, tfx_cg_i64(cg, half), lt.iv), c->row_bytes);
      c->pf_skip = (int64_t)half * c->row_bytes;
    }
    emit_qtile(cg, c, mr, lt.iv, 2, half);
    c->pf_end = NULL;
    tfx_cg_for_end(cg, &lt);
    if (nb % 2) emit_qtile(cg, c, mr, tfx_cg_i64(cg, nb - 1), 1, 1);
    return;
  }
  /* the whole tiles in a loop (one copy of the tile's code), then the rest */
  int full = nb / ncol, rest = nb % ncol;
  if (full > 1) {
    tfx_cg_loop lt;
    tfx_cg_for(cg, &lt, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, (int64_t)full * ncol), ncol, "qtile");
    emit_qtile(cg, c, mr, lt.iv, ncol, 1);
    tfx_cg_for_end(cg, &lt);
  } else if (full == 1) {
    emit_qtile(cg, c, mr, tfx_cg_i64(cg, 0), ncol, 1);
  }
  if (rest) emit_qtile(cg, c, mr, tfx_cg_i64(cg, (int64_t)full * ncol), rest, 1);
}

/* ---- the repacked prefill tiles (AVX512-VNNI) ----
 * Per work item the panel's 32 weight rows (GLU: its gate rows and its up
 * rows, two buffers) are decoded once into unsigned 8-bit codes u (w = s * (u
 * - cw) + o per sub-block of S elements) and interleaved by groups of 4: for
 * each group G of 4 elements along K, the 32 rows' 4 bytes are 128
 * contiguous bytes, so one 64-byte load holds 16 rows' group and a vpdpbusd
 * with x's 4 bytes broadcast adds 16 output columns' partial dot products at
 * once (no horizontal sums). Per sub-block and row of x, the i32 lanes start
 * at -cw * sum(x_q) (exact integer offset), and are scaled once by the
 * per-row scale vector s (f32, [nsb][32]) times x's block scale; q4_k adds
 * o (= -dmin * m) times x's d * sum(q). tq2_t (one weight scale per
 * tensor, x per token): the i32 lanes run over the whole row, -sum(x_q)
 * added per sub-block, converted and scaled once at the end (rp_tile's
 * `whole`; measured 13-24% faster than per sub-block, bench_q8 M = 128,
 * CPU time). Rows past the panel's last (a
 * partial panel) repeat it; their columns are not stored. Tiles: RPMR rows
 * of x x 32 columns (2 x 2 x RPMR zmm: the f32 sums and a sub-block's i32
 * sums), a GLU panel as two such tiles (gate, up). */
#define RPMR 6

/* The unsigned codes (32 bytes) of 32-element sub-block sb of the weight
 * block at wp, its scale(s) (one per S) and q4_k's offset. */
static LLVMValueRef decode_u(tfx_cg *cg, qctx *c, LLVMValueRef wp, int sb, LLVMValueRef rowsc, LLVMValueRef *sc,
                             LLVMValueRef *off) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef u = NULL;
  switch (c->dt) {
  case TFX_DT_I8:
    u = LLVMBuildXor(b, load_a(cg, c->t_b32, wp, 1), ivec(c->t_i8, 32, 0x80), "");
    sc[0] = rowsc;
    break;
  case TFX_DT_Q8_0:
    u = LLVMBuildXor(b, load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 2), 1), ivec(c->t_i8, 32, 0x80), "");
    sc[0] = half_at(cg, c->f16c, wp);
    break;
  case TFX_DT_S24_Q8_0:
    u = LLVMBuildXor(b, s24_codes(cg, c, wp), ivec(c->t_i8, 32, 0x80), "");
    sc[0] = half_at(cg, c->f16c, wp);
    break;
  case TFX_DT_Q4_0:
    u = nibble_codes(cg, c, tfx_cg_byteptr(cg, wp, 2));
    sc[0] = half_at(cg, c->f16c, wp);
    break;
  case TFX_DT_Q5_0:
    u = q5_0_codes(cg, c, wp);
    sc[0] = half_at(cg, c->f16c, wp);
    break;
  case TFX_DT_TQ2_0:
  case TFX_DT_TQ2_T:
    u = tq2_0_codes(cg, c, wp, sb);
    sc[0] = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 64));
    break;
  case TFX_DT_ZQ8_64:
  case TFX_DT_ZQ8_128: /* the zero point: repack stores it in rz */
    u = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 4 + 32 * sb), 1);
    sc[0] = half_at(cg, c->f16c, wp);
    break;
  case TFX_DT_ZQ4_64:
  case TFX_DT_ZQ4_128:
    u = nibble_codes(cg, c, tfx_cg_byteptr(cg, wp, 4 + 16 * sb));
    sc[0] = half_at(cg, c->f16c, wp);
    break;
  case TFX_DT_Q4_K: {
    LLVMValueRef s6, m;
    u = q4_k_codes(cg, c, wp, sb, &s6, &m);
    sc[0] = LLVMBuildFMul(b, half_at(cg, c->f16c, wp), LLVMBuildSIToFP(b, s6, cg->t_f32, ""), "");
    *off = LLVMBuildFNeg(
        b, LLVMBuildFMul(b, half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 2)), LLVMBuildSIToFP(b, m, cg->t_f32, ""), ""),
        "");
    break;
  }
  case TFX_DT_Q3_K: {
    u = q3_k_codes(cg, c, wp, sb);
    LLVMValueRef d = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 108)), s16 = q3_k_scales(cg, c, wp);
    for (int k = 0; k < 2; k++) {
      LLVMValueRef s8 = LLVMBuildExtractElement(b, s16, tfx_cg_i32(cg, 2 * sb + k), "");
      sc[k] = LLVMBuildFMul(b, d, LLVMBuildSIToFP(b, s8, cg->t_f32, ""), "");
    }
    break;
  }
  case TFX_DT_Q6_K: {
    u = q6_k_codes(cg, c, wp, sb);
    LLVMValueRef d = half_at(cg, c->f16c, tfx_cg_byteptr(cg, wp, 208));
    for (int k = 0; k < 2; k++) {
      LLVMValueRef s8 = load_a(cg, c->t_i8, tfx_cg_byteptr(cg, wp, 192 + 2 * sb + k), 1);
      sc[k] = LLVMBuildFMul(b, d, LLVMBuildSIToFP(b, s8, cg->t_f32, ""), "");
    }
    break;
  }
  default: break;
  }
  return u;
}

/* The 16 x 8 transpose of the repack: in[j] holds the i32 groups 0..7 of
 * rows 2j (lanes 0-7) and 2j + 1 (lanes 8-15); out[g] holds group g of rows
 * 0..15. Three rounds of two-source shuffles (vpermt2d), each swapping a
 * bit of the register index (a row bit) with a bit of the lane (a group
 * bit): round s pairs the registers that differ in bit s, the one with bit
 * s clear keeping the elements whose group has bit s clear. */
#define RP_ROWS 16
static void transpose16x8(tfx_cg *cg, LLVMValueRef in[8], LLVMValueRef out[8]) {
  int id[8][16]; /* id[k][l] = row * 8 + group of lane l of register k */
  LLVMValueRef v[8];
  for (int k = 0; k < 8; k++) {
    v[k] = in[k];
    for (int l = 0; l < 16; l++) id[k][l] = (2 * k + l / 8) * 8 + l % 8;
  }
  for (int s = 0; s < 3; s++) {
    int nid[8][16];
    LLVMValueRef nv[8];
    for (int a = 0; a < 8; a++) {
      if (a >> s & 1) continue;
      int bb = a | 1 << s;
      for (int half = 0; half < 2; half++) { /* half 0 -> register a, 1 -> register bb */
        int mask[16], n = 0;
        /* the 32 candidates in (row, group) order, so the last round leaves lanes in row order */
        for (int src = 0; src < 2 && n < 16; src++)
          for (int l = 0; l < 16; l++) {
            int e = src ? id[bb][l] : id[a][l];
            if ((e % 8 >> s & 1) == half && n < 16) { /* exactly 16 qualify */
              mask[n] = src * 16 + l;
              nid[half ? bb : a][n] = e;
              n++;
            }
          }
        /* order by row */
        for (int i = 1; i < 16; i++)
          for (int j = i; j > 0 && nid[half ? bb : a][j - 1] > nid[half ? bb : a][j]; j--) {
            int *q = nid[half ? bb : a], t = q[j];
            q[j] = q[j - 1], q[j - 1] = t;
            t = mask[j], mask[j] = mask[j - 1], mask[j - 1] = t;
          }
        nv[half ? bb : a] = shuf(cg, v[a], v[bb], mask, 16);
      }
    }
    for (int k = 0; k < 8; k++) {
      v[k] = nv[k];
      for (int l = 0; l < 16; l++) id[k][l] = nid[k][l];
    }
  }
  for (int g = 0; g < 8; g++) out[g] = v[g];
}

/* The panel's rows of GLU half / segment h into the repacked buffers h,
 * RP_ROWS rows at a time: each row's 32 codes of a sub-block decoded, the
 * 16 rows' groups of 4 transposed (transpose16x8) and stored as whole
 * vectors, their scales gathered into vectors of 16. */
static void repack(tfx_cg *cg, qctx *c, int h) {
  LLVMBuilderRef b = cg->b;
  int nb = c->P->nb, nsub = (int)(c->wblk / QB), per = QB / (int)c->S;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  for (int r0 = 0; r0 < NB; r0 += RP_ROWS) {
    LLVMValueRef wrow[RP_ROWS], rowsc[RP_ROWS];
    for (int i = 0; i < RP_ROWS; i++) {
      int jj = r0 + i < nb ? r0 + i : nb - 1; /* a partial panel repeats its last row */
      wrow[i] = wrow_ptr(cg, c, tfx_cg_i64(cg, jj), h);
      rowsc[i] = c->i8 ? wrow_scale(cg, c, wrow[i]) : NULL;
    }
    tfx_cg_loop lb;
    tfx_cg_for(cg, &lb, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, c->K / c->wblk), 1, "rpblk");
    LLVMValueRef boff = tfx_cg_mulc(cg, lb.iv, c->wbytes);
    for (int sb = 0; sb < nsub; sb++) {
      LLVMValueRef u[RP_ROWS], sc[RP_ROWS][2], off[RP_ROWS], z[RP_ROWS];
      for (int i = 0; i < RP_ROWS; i++) {
        LLVMValueRef wp = bptr(cg, wrow[i], boff);
        sc[i][0] = sc[i][1] = off[i] = z[i] = NULL;
        u[i] = LLVMBuildBitCast(b, decode_u(cg, c, wp, sb, rowsc[i], sc[i], &off[i]), c->t_i8x8, "");
        if (c->zq) z[i] = LLVMBuildSExt(b, load_a(cg, c->t_i16, tfx_cg_byteptr(cg, wp, 2), 1), cg->t_i32, "z");
      }
      LLVMValueRef pairs[8], groups[8];
      int cat[16];
      for (int l = 0; l < 16; l++) cat[l] = l;
      for (int j = 0; j < 8; j++) pairs[j] = shuf(cg, u[2 * j], u[2 * j + 1], cat, 16);
      transpose16x8(cg, pairs, groups);
      LLVMValueRef sub = tfx_cg_addc(cg, tfx_cg_mulc(cg, lb.iv, nsub), sb); /* 32-element sub-block of the row */
      for (int g = 0; g < 8; g++) {
        LLVMValueRef at = tfx_cg_addc(cg, tfx_cg_mulc(cg, tfx_cg_addc(cg, tfx_cg_mulc(cg, sub, 8), g), NB), r0);
        LLVMSetAlignment(LLVMBuildStore(b, groups[g], LLVMBuildInBoundsGEP2(b, cg->t_i32, c->rq[h], &at, 1, "")), 64);
      }
      for (int k = 0; k < per; k++) {
        LLVMValueRef at = tfx_cg_addc(cg, tfx_cg_mulc(cg, tfx_cg_addc(cg, tfx_cg_mulc(cg, sub, per), k), NB), r0);
        LLVMValueRef vs = LLVMGetPoison(v16f), vo = LLVMGetPoison(v16f), vz = LLVMGetPoison(v16i);
        for (int i = 0; i < RP_ROWS; i++) {
          LLVMValueRef li = tfx_cg_i32(cg, i);
          vs = LLVMBuildInsertElement(b, vs, sc[i][k], li, "");
          if (off[0]) vo = LLVMBuildInsertElement(b, vo, off[i], li, "");
          if (c->zq) vz = LLVMBuildInsertElement(b, vz, z[i], li, "");
        }
        LLVMSetAlignment(LLVMBuildStore(b, vs, tfx_cg_fptr(cg, c->rs[h], at)), 64);
        if (off[0]) LLVMSetAlignment(LLVMBuildStore(b, vo, tfx_cg_fptr(cg, c->ro[h], at)), 64);
        if (c->zq)
          LLVMSetAlignment(LLVMBuildStore(b, vz, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->rz[h], &at, 1, "")), 64);
      }
    }
    tfx_cg_for_end(cg, &lb);
  }
}

/* Rows mb .. mb + mr - 1 of the chunk (clamped to its last) x the 32
 * columns of repacked buffers h, into blk ([mr][NB] floats). */
static void rp_tile(tfx_cg *cg, qctx *c, int h, LLVMValueRef mb, int mr, LLVMValueRef blk) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  int ng = (int)c->S / 4, per = QB / (int)c->S;
  /* tq2_t: the weights' and x's scales are the row's, so the i32 sums run
   * over the whole row (acc holds them) and are scaled once at the end
   * (|lane| <= K / 32 * (8 * 4 * 2 * 127 + 32 * 127) < 2^31 for K <= 2^22) */
  int whole = c->tq2t && c->K <= (1 << 22);
  LLVMValueRef acc[RPMR][2], slot[RPMR], xrow[RPMR];
  for (int i = 0; i < mr; i++) {
    slot[i] = tfx_cg_smin(cg, tfx_cg_addc(cg, mb, i), tfx_cg_addc(cg, c->mrows, -1));
    xrow[i] = bptr(cg, c->xq, tfx_cg_mulc(cg, slot[i], c->K));
    for (int v = 0; v < 2; v++) {
      acc[i][v] = tfx_cg_alloca(cg, whole ? v16i : v16f, "rpacc");
      LLVMBuildStore(b, whole ? LLVMConstNull(v16i) : LLVMConstNull(v16f), acc[i][v]);
    }
  }
  tfx_cg_loop lt;
  tfx_cg_for(cg, &lt, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, c->nsb), 1, "rpsub");
  LLVMValueRef t = lt.iv, ia[RPMR][2], zv[2] = {NULL, NULL};
  if (c->zq) /* the 32 rows' zero points of sub-block t */
    for (int v = 0; v < 2; v++) {
      LLVMValueRef at = tfx_cg_addc(cg, tfx_cg_mulc(cg, t, NB), 16 * v);
      zv[v] = load_a(cg, v16i, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->rz[h], &at, 1, ""), 64);
    }
  for (int i = 0; i < mr; i++) {
    LLVMValueRef at = tfx_cg_add(cg, tfx_cg_mulc(cg, slot[i], c->nsb), t);
    LLVMValueRef x0 = load_a(cg, cg->t_i32, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xc, &at, 1, ""), 4);
    LLVMValueRef sv = LLVMBuildInsertElement(b, LLVMGetPoison(v16i), x0, tfx_cg_i32(cg, 0), "");
    ia[i][0] = ia[i][1] = LLVMBuildShuffleVector(b, sv, sv, LLVMConstNull(v16i), "");
    if (c->zq) /* -z * sum(x_q) per row (cw = 1: xc holds -sum) */
      for (int v = 0; v < 2; v++) ia[i][v] = LLVMBuildMul(b, ia[i][v], zv[v], "");
    for (int v = 0; whole && v < 2; v++)
      ia[i][v] = LLVMBuildAdd(b, LLVMBuildLoad2(b, v16i, acc[i][v], ""), ia[i][v], "");
  }
  for (int gg = 0; gg < ng; gg++) {
    LLVMValueRef grp = tfx_cg_addc(cg, tfx_cg_mulc(cg, t, ng), gg), wv[2];
    for (int v = 0; v < 2; v++) {
      LLVMValueRef at = tfx_cg_addc(cg, tfx_cg_mulc(cg, grp, NB), 16 * v);
      wv[v] = load_a(cg, v16i, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->rq[h], &at, 1, ""), 64);
    }
    for (int i = 0; i < mr; i++) {
      LLVMValueRef x4 = load_a(cg, cg->t_i32, bptr(cg, xrow[i], tfx_cg_mulc(cg, grp, 4)), 1);
      LLVMValueRef xv = LLVMBuildInsertElement(b, LLVMGetPoison(v16i), x4, tfx_cg_i32(cg, 0), "");
      xv = LLVMBuildShuffleVector(b, xv, xv, LLVMConstNull(v16i), "");
      for (int v = 0; v < 2; v++) {
        LLVMValueRef args[3] = {ia[i][v], wv[v], xv};
        ia[i][v] = tfx_cg_intrinsic(cg, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3);
      }
    }
  }
  if (whole) {
    for (int i = 0; i < mr; i++)
      for (int v = 0; v < 2; v++) LLVMBuildStore(b, ia[i][v], acc[i][v]);
    tfx_cg_for_end(cg, &lt);
    for (int i = 0; i < mr; i++) { /* the first sub-block's scales are the row's */
      LLVMValueRef xd = tfx_cg_loadf(cg, tfx_cg_fptr(cg, c->xd, tfx_cg_mulc(cg, slot[i], c->nqb)));
      LLVMValueRef xds =
          LLVMBuildShuffleVector(b, LLVMBuildInsertElement(b, LLVMGetPoison(v16f), xd, tfx_cg_i32(cg, 0), ""),
                                 LLVMGetPoison(v16f), LLVMConstNull(v16i), "");
      for (int v = 0; v < 2; v++) {
        LLVMValueRef s16 = load_a(cg, v16f, tfx_cg_fptrc(cg, c->rs[h], 16 * v), 64);
        LLVMValueRef a = LLVMBuildSIToFP(b, LLVMBuildLoad2(b, v16i, acc[i][v], ""), v16f, "");
        LLVMValueRef st = LLVMBuildStore(b, LLVMBuildFMul(b, a, LLVMBuildFMul(b, s16, xds, ""), ""),
                                         tfx_cg_fptrc(cg, blk, (int64_t)i * NB + 16 * v));
        LLVMSetAlignment(st, 4);
      }
    }
    return;
  }
  LLVMValueRef sv[2], ov[2] = {NULL, NULL};
  for (int v = 0; v < 2; v++) {
    LLVMValueRef at = tfx_cg_addc(cg, tfx_cg_mulc(cg, t, NB), 16 * v);
    sv[v] = load_a(cg, v16f, tfx_cg_fptr(cg, c->rs[h], at), 64);
    if (c->xm) ov[v] = load_a(cg, v16f, tfx_cg_fptr(cg, c->ro[h], at), 64);
  }
  LLVMValueRef xb = per > 1 ? LLVMBuildSDiv(b, t, tfx_cg_i64(cg, per), "") : t;
  for (int i = 0; i < mr; i++) {
    LLVMValueRef xd = tfx_cg_loadf(cg, tfx_cg_fptr(cg, c->xd, tfx_cg_add(cg, tfx_cg_mulc(cg, slot[i], c->nqb), xb)));
    LLVMValueRef xds =
        LLVMBuildShuffleVector(b, LLVMBuildInsertElement(b, LLVMGetPoison(v16f), xd, tfx_cg_i32(cg, 0), ""),
                               LLVMGetPoison(v16f), LLVMConstNull(v16i), "");
    LLVMValueRef xms = NULL;
    if (c->xm) {
      LLVMValueRef xm = tfx_cg_loadf(cg, tfx_cg_fptr(cg, c->xm, tfx_cg_add(cg, tfx_cg_mulc(cg, slot[i], c->nsb), t)));
      xms = LLVMBuildShuffleVector(b, LLVMBuildInsertElement(b, LLVMGetPoison(v16f), xm, tfx_cg_i32(cg, 0), ""),
                                   LLVMGetPoison(v16f), LLVMConstNull(v16i), "");
    }
    for (int v = 0; v < 2; v++) {
      LLVMValueRef a = LLVMBuildLoad2(b, v16f, acc[i][v], "");
      a = tfx_cg_fma(cg, LLVMBuildSIToFP(b, ia[i][v], v16f, ""), LLVMBuildFMul(b, sv[v], xds, ""), a);
      if (xms) a = tfx_cg_fma(cg, ov[v], xms, a);
      LLVMBuildStore(b, a, acc[i][v]);
    }
  }
  tfx_cg_for_end(cg, &lt);
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < 2; v++) {
      LLVMValueRef st =
          LLVMBuildStore(b, LLVMBuildLoad2(b, v16f, acc[i][v], ""), tfx_cg_fptrc(cg, blk, (int64_t)i * NB + 16 * v));
      LLVMSetAlignment(st, 4);
    }
}

/* ---- the panel and the call ---- */

/* 1 for the weight formats this path reads. */
static int q8_supported(tfx_dtype dt) {
  return dt == TFX_DT_Q8_0 || dt == TFX_DT_Q4_0 || dt == TFX_DT_Q5_0 || dt == TFX_DT_Q3_K || dt == TFX_DT_Q4_K ||
         dt == TFX_DT_Q6_K || dt == TFX_DT_I8 || dt == TFX_DT_TQ2_0 || dt == TFX_DT_TQ2_T || dt == TFX_DT_ZQ8_64 ||
         dt == TFX_DT_ZQ8_128 || dt == TFX_DT_ZQ4_64 || dt == TFX_DT_ZQ4_128 || dt == TFX_DT_S24_Q8_0;
}

/* The dz rows' 16-lane sums in zr (rows 0 .. nb - 1 of the panel) reduced
 * into the block buffer blk (nb floats), 16 rows at a time: four levels of two
 * shuffles and an add halve the lanes per row and double the rows per
 * vector (row r's sum in lane r), 45 operations for 16 rows instead of 8
 * per row and a scalar store. */
static void dz_reduce(tfx_cg *cg, LLVMValueRef zr, int nb, LLVMValueRef blk) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16f = LLVMVectorType(cg->t_f32, 16);
  for (int r0 = 0; r0 < nb; r0 += 16) {
    int nr = nb - r0 < 16 ? nb - r0 : 16;
    LLVMValueRef v[16];
    for (int i = 0; i < 16; i++)
      v[i] = i < nr ? load_a(cg, v16f, tfx_cg_fptr(cg, zr, tfx_cg_i64(cg, 16 * (r0 + i))), 64) : LLVMConstNull(v16f);
    /* level w (8, 4, 2, 1 lanes per group): v[i] and v[i + n] -> lanes of
     * width w alternate between them, the two halves of each 2w summed */
    int n = 8;
    for (int w = 8; w >= 1; w /= 2, n /= 2)
      for (int i = 0; i < n; i++) {
        int lo[16], hi[16];
        for (int l = 0; l < 16; l++) {
          int grp = l / w, from_b = grp % 2, base = (grp / 2) * 2 * w + l % w;
          lo[l] = base + (from_b ? 16 : 0);
          hi[l] = base + w + (from_b ? 16 : 0);
        }
        v[i] = LLVMBuildFAdd(b, shuf(cg, v[i], v[i + n], lo, 16), shuf(cg, v[i], v[i + n], hi, 16), "");
      }
    if (nr == 16) {
      LLVMSetAlignment(LLVMBuildStore(b, v[0], tfx_cg_fptr(cg, blk, tfx_cg_i64(cg, r0))), 4);
    } else {
      for (int i = 0; i < nr; i++)
        tfx_cg_storef(cg, LLVMBuildExtractElement(b, v[0], tfx_cg_i32(cg, i), ""),
                      tfx_cg_fptr(cg, blk, tfx_cg_i64(cg, r0 + i)));
    }
  }
}

/* q8_0 decode at small K (c->tiny: K = 64 .. 512, 1 to 8 pairs of blocks
 * per row, the pairs unrolled; AVX512-VNNI) of the panel's rows for GLU half / segment
 * h into blk, 16 rows at a time. The dz kernel spends per row: two loads
 * and a vpdpbusd, then a per-lane f32 scale (two f16 d widened, times x's
 * lane scales), a conversion and an FMA into 16 lanes, then a 16-lane
 * reduction (dz_reduce); at K = 64 that is the whole row, and the linears
 * ran at 1.3-1.6x the f32 ones. Here, per pair of blocks p, the 16 rows'
 * vpdpbusd (the i32 lanes starting at x's -128 * lane sums, as dz) are
 * summed in i32 (exact) by three levels of two shuffles and an add (lanes
 * per row and block 8 -> 1, two vectors of 16 (row, block) sums), then
 * converted and scaled once per (row, block): the weights' f16 d gathered
 * for the 16 rows (vpgatherdd at each row's block start, the low halves
 * widened) times x's block scales; pairs accumulate in f32; a last level
 * adds each row's two blocks, the rows in order (the slots' rows are
 * chosen so, tracked below at compile time). Rows past the panel's
 * (nb % 16) run as zeros, gather row 0's scales and are not stored.
 * One LINEAR at one thread in cache (bench_q8), GB/s of weights against the
 * dz kernel: K = 64 1.4-1.5x, 128 1.3-1.4x, 192-512 1.15-1.35x. */
static void tiny_rows(tfx_cg *cg, qctx *c, int h, LLVMValueRef blk) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef v16i = LLVMVectorType(cg->t_i32, 16), v16f = LLVMVectorType(cg->t_f32, 16);
  LLVMTypeRef v16h = LLVMVectorType(LLVMHalfTypeInContext(cg->ctx), 16);
  LLVMTypeRef v16s = LLVMVectorType(c->t_i16, 16), pty = LLVMPointerTypeInContext(cg->ctx, 0);
  LLVMTypeRef v16p = LLVMVectorType(pty, 16);
  int nb = c->P->nb, np = (int)(c->nqb / 2);
  /* compile-time labels: which slot (input vector) and block each lane
   * holds after the levels w = 4, 2, 1 (i32) and 8 (f32) */
  int lslot[16][16], lblk[16][16], gslot[2][16], gblk[2][16];
  for (int s = 0; s < 16; s++)
    for (int l = 0; l < 16; l++) lslot[s][l] = s, lblk[s][l] = l / 8;
  int lo[4][16], hi[4][16], ws[4] = {4, 2, 1, 8}, ns[4] = {8, 4, 2, 1};
  for (int lv = 0; lv < 4; lv++) {
    int w = ws[lv], n = ns[lv];
    for (int l = 0; l < 16; l++) {
      int grp = l / w, from_b = grp % 2, base = (grp / 2) * 2 * w + l % w;
      lo[lv][l] = base + (from_b ? 16 : 0);
      hi[lv][l] = base + w + (from_b ? 16 : 0);
    }
    for (int i = 0; i < n; i++) {
      int ns_[16], nbk[16];
      for (int l = 0; l < 16; l++) {
        int a = lo[lv][l];
        ns_[l] = a < 16 ? lslot[i][a] : lslot[i + n][a - 16];
        nbk[l] = lv == 3 ? 0 : a < 16 ? lblk[i][a] : lblk[i + n][a - 16];
      }
      for (int l = 0; l < 16; l++) lslot[i][l] = ns_[l], lblk[i][l] = nbk[l];
    }
    if (lv == 2) memcpy(gslot, lslot, sizeof gslot), memcpy(gblk, lblk, sizeof gblk);
  }
  int rowof[16]; /* the panel row (of the 16) slot s takes: lane r of the result is row r */
  for (int l = 0; l < 16; l++) rowof[lslot[0][l]] = l;
  /* x: per pair, 64 bytes, the i32 lanes' start and the lane scales */
  LLVMValueRef xrow = bptr(cg, c->xq, tfx_cg_mulc(cg, c->slot[0], c->K));
  LLVMValueRef xbase = tfx_cg_mulc(cg, c->slot[0], c->nqb * 8), xq[8], xi[8], xs[8];
  for (int p = 0; p < np; p++) {
    xq[p] = load_a(cg, v16i, bptr(cg, xrow, tfx_cg_i64(cg, 64 * p)), 1);
    LLVMValueRef at = tfx_cg_addc(cg, xbase, 16 * p);
    xi[p] = load_a(cg, v16i, LLVMBuildInBoundsGEP2(b, cg->t_i32, c->xz, &at, 1, ""), 4);
    xs[p] = load_a(cg, v16f, tfx_cg_fptr(cg, c->xv, at), 4);
  }
  int seq[64];
  for (int l = 0; l < 64; l++) seq[l] = l;
  LLVMValueRef ones[16];
  for (int l = 0; l < 16; l++) ones[l] = LLVMConstInt(LLVMInt1TypeInContext(cg->ctx), 1, 0);
  LLVMValueRef all = LLVMConstVector(ones, 16);
  for (int r0 = 0; r0 < nb; r0 += 16) {
    int nr = nb - r0 < 16 ? nb - r0 : 16;
    LLVMValueRef base = wrow_ptr(cg, c, tfx_cg_i64(cg, r0), h), f[2] = {NULL, NULL};
    for (int p = 0; p < np; p++) {
      LLVMValueRef v[16];
      for (int s = 0; s < 16; s++) {
        if (rowof[s] >= nr) {
          v[s] = LLVMConstNull(v16i);
          continue;
        }
        LLVMValueRef wp = tfx_cg_byteptr(cg, base, rowof[s] * c->row_bytes + 2 * p * c->wbytes);
        LLVMValueRef a = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, 2), 1);
        LLVMValueRef a1 = load_a(cg, c->t_b32, tfx_cg_byteptr(cg, wp, c->wbytes + 2), 1);
        LLVMValueRef u = LLVMBuildXor(b, shuf(cg, a, a1, seq, 64), ivec(c->t_i8, 64, 0x80), "");
        LLVMValueRef args[3] = {xi[p], LLVMBuildBitCast(b, u, v16i, ""), xq[p]};
        v[s] = tfx_cg_intrinsic(cg, "llvm.x86.avx512.vpdpbusd.512", NULL, 0, args, 3);
      }
      for (int lv = 0; lv < 3; lv++)
        for (int i = 0; i < ns[lv]; i++)
          v[i] =
              LLVMBuildAdd(b, shuf(cg, v[i], v[i + ns[lv]], lo[lv], 16), shuf(cg, v[i], v[i + ns[lv]], hi[lv], 16), "");
      for (int i = 0; i < 2; i++) { /* the (row, block) sums' weight scales, gathered */
        LLVMValueRef off[16];
        for (int l = 0; l < 16; l++) {
          int r = rowof[gslot[i][l]];
          off[l] = tfx_cg_i64(cg, (r < nr ? r : 0) * c->row_bytes + (2 * p + gblk[i][l]) * c->wbytes);
        }
        LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(b, c->t_i8, base, (LLVMValueRef[]){LLVMConstVector(off, 16)}, 1, "");
        LLVMTypeRef gt[2] = {v16i, v16p};
        LLVMValueRef gargs[4] = {ptrs, tfx_cg_i32(cg, 1), all, LLVMGetPoison(v16i)};
        LLVMValueRef g = tfx_cg_intrinsic(cg, "llvm.masked.gather", gt, 2, gargs, 4);
        LLVMValueRef wd = LLVMBuildFPExt(b, LLVMBuildBitCast(b, LLVMBuildTrunc(b, g, v16s, ""), v16h, ""), v16f, "");
        LLVMValueRef sc = LLVMBuildFMul(b, wd, xs[p], "");
        LLVMValueRef fv = LLVMBuildSIToFP(b, v[i], v16f, "");
        f[i] = f[i] ? tfx_cg_fma(cg, fv, sc, f[i]) : LLVMBuildFMul(b, fv, sc, "");
      }
    }
    LLVMValueRef out = LLVMBuildFAdd(b, shuf(cg, f[0], f[1], lo[3], 16), shuf(cg, f[0], f[1], hi[3], 16), "");
    if (nr == 16) {
      LLVMSetAlignment(LLVMBuildStore(b, out, tfx_cg_fptr(cg, blk, tfx_cg_i64(cg, r0))), 4);
    } else {
      for (int i = 0; i < nr; i++)
        tfx_cg_storef(cg, LLVMBuildExtractElement(b, out, tfx_cg_i32(cg, i), ""),
                      tfx_cg_fptr(cg, blk, tfx_cg_i64(cg, r0 + i)));
    }
  }
}

/* Row slots lm .. lm + g - 1 of the few rows (decode, a small batch step)
 * against the panel, the last ones clamped to the chunk's last row when
 * fewer are left (their sums computed, not stored): g rows of x per pass of
 * the dz kernels (each weight pair or group decoded once for them), or one
 * row at a time (g = 1: tiny_rows, the row-major tiles, dzk_rows); then the
 * epilogue of the rows. */
static void few_group(tfx_cg *cg, qctx *c, LLVMValueRef lm, int g, int tiny) {
  const tfx_cg_gemm *G = c->G;
  const tfx_cg_panel *P = c->P;
  LLVMValueRef m = tfx_cg_add(cg, c->m0, lm);
  if (G->hooks && G->hooks->block_begin) G->hooks->block_begin(cg, G, m, g);
  LLVMValueRef last = tfx_cg_addc(cg, c->mrows, -1);
  for (int i = 0; i < g; i++) c->slot[i] = i ? tfx_cg_smin(cg, tfx_cg_addc(cg, lm, i), last) : lm;
  if (tiny) { /* g is 1 */
    tiny_rows(cg, c, 0, P->blk);
    if (G->glu) tiny_rows(cg, c, 1, P->blku);
  } else {
    c->nx = g;
    rm_tiles(cg, c, 1);
    for (int i = 0; c->dz && i < g; i++) {
      dz_reduce(cg, tfx_cg_fptrc(cg, c->zr[0], (int64_t)i * NB * 16), P->nb, tfx_cg_fptrc(cg, P->blk, (int64_t)i * NB));
      if (G->glu)
        dz_reduce(cg, tfx_cg_fptrc(cg, c->zr[1], (int64_t)i * NB * 16), P->nb,
                  tfx_cg_fptrc(cg, P->blku, (int64_t)i * NB));
    }
    c->nx = 1;
  }
  tfx_cg_gemm_rows(cg, G, P, m, g == 1 ? NULL : tfx_cg_smin(cg, tfx_cg_i64(cg, g), tfx_cg_sub(cg, c->mrows, lm)));
}

/* The panel P against the chunk's quantized rows (c->m0 ..): tiles into the
 * block buffers, then the epilogue of each block of rows. */
void tfx_cg_q8_panel(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_panel *P) {
  qctx *c = G->q8;
  c->P = P;
  tfx_cg_loop lm;
  int hb = G->hooks && G->hooks->block_begin;
  if (c->few) { /* decode, a small batch step: passes of fx rows of x */
    /* tiny_rows reads the 16 rows at one stride: not for rows in pair order */
    unsigned pm = G->glu ? 3u : 1u << P->seg;
    int tiny = c->tiny && !(G->perm & pm);
    /* rows of x per pass: the dz kernels of the 32-element formats and tq2_t (dzk_rows: one) */
    int fx = c->dz && (c->wblk != 256 || c->tq2t) && !tiny ? QFX : 1;
    if (LLVMIsAConstantInt(c->mrows) && LLVMConstIntGetSExtValue(c->mrows) == 1) fx = 1; /* a decode kernel */
    if (c->dz)
      for (int h = 0; h < (G->glu ? 2 : 1); h++)
        c->zr[h] = tfx_cg_alloca_array(cg, cg->t_f32, (int64_t)fx * NB * 16, "dzsum");
    if (fx == 1) {
      tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), c->mrows, 1, "qm1");
      few_group(cg, c, lm.iv, 1, tiny);
      tfx_cg_for_end(cg, &lm);
      return;
    }
    /* passes of fx rows, the last of 2 .. fx - 1 rows clamped (costs as much
     * as passes of fewer rows would, and is one more copy of the kernel
     * instead of log2(fx)); a last row alone (rows % fx == 1) one pass of 1 */
    LLVMValueRef one = LLVMBuildICmp(cg->b, LLVMIntEQ, LLVMBuildAnd(cg->b, c->mrows, tfx_cg_i64(cg, fx - 1), ""),
                                     tfx_cg_i64(cg, 1), "");
    LLVMValueRef end = tfx_cg_sub(cg, c->mrows, LLVMBuildZExt(cg->b, one, cg->t_i64, ""));
    tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), end, fx, "qfew");
    few_group(cg, c, lm.iv, fx, tiny);
    tfx_cg_for_end(cg, &lm);
    if (LLVMIsAConstantInt(one)) { /* rows known */
      if (LLVMConstIntGetZExtValue(one)) few_group(cg, c, end, 1, tiny);
      return;
    }
    tfx_cg_if fi;
    tfx_cg_if_begin(cg, &fi, one, "qfewlast");
    few_group(cg, c, end, 1, tiny);
    tfx_cg_if_end(cg, &fi);
    return;
  }
  int mr = c->rp ? RPMR : QMR;
  if (c->rp) {
    repack(cg, c, 0);
    if (G->glu) repack(cg, c, 1);
  }
  tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), c->mrows, mr, "qm");
  LLVMValueRef m = tfx_cg_add(cg, c->m0, lm.iv);
  if (hb) G->hooks->block_begin(cg, G, m, mr);
  if (c->rp) {
    rp_tile(cg, c, 0, lm.iv, mr, P->blk);
    if (G->glu) rp_tile(cg, c, 1, lm.iv, mr, P->blku);
  } else {
    for (int i = 0; i < mr; i++) c->slot[i] = tfx_cg_smin(cg, tfx_cg_addc(cg, lm.iv, i), tfx_cg_addc(cg, c->mrows, -1));
    rm_tiles(cg, c, mr);
  }
  tfx_cg_gemm_rows(cg, G, P, m, tfx_cg_smin(cg, tfx_cg_i64(cg, mr), tfx_cg_sub(cg, c->mrows, lm.iv)));
  tfx_cg_for_end(cg, &lm);
}

/* Rows m0 .. m0 + rows - 1 of x through the prologue, quantized into the
 * chunk's slots 0 .. rows - 1 (absolute: slots m0 .. of the workspace). */
static void quant_chunk(tfx_cg *cg, qctx *c, int absolute) {
  const tfx_cg_gemm *G = c->G;
  tfx_cg_loop lr;
  tfx_cg_for(cg, &lr, tfx_cg_i64(cg, 0), c->mrows, 1, "qrow");
  LLVMValueRef row = tfx_cg_add(cg, c->m0, lr.iv);
  if (G->hooks && G->hooks->block_begin) G->hooks->block_begin(cg, G, row, 1);
  if (G->hooks && G->hooks->row_begin) G->hooks->row_begin(cg, G, 0, row);
  quant_row(cg, c, absolute ? row : lr.iv, row);
  tfx_cg_for_end(cg, &lr);
}

int tfx_cg_q8_staged(const tfx_cg *cg, const tfx_node *n) {
  if (!tfx_node_act_quant(cg->g, n) || n->work_offset < 0) return 0;
  int64_t per_t, fixed;
  tfx_cg_rows_split(&cg->g->nodes[n->inputs[0]], &per_t, &fixed);
  /* rows known at compile time (T = 1 in a decode kernel) and few: the stack */
  if ((!per_t || cg->decode) && per_t + fixed < QMR) return 0;
  /* the workspace holds the rows of T = max_seq (tfx_node_work_bytes) */
  return tfx_node_rows(&cg->g->nodes[n->inputs[0]], cg->g->max_seq) >= TFX_ACT_WORK_MIN_ROWS;
}

/* The chunk's arrays carved from the workspace at work, for c->mc rows:
 * each 64-byte aligned, within tfx_node_work_bytes (checked). */
static int work_arrays(tfx_cg *cg, qctx *c, LLVMValueRef work) {
  int64_t off = 0, sizes[4] = {c->mc * c->K, 4 * c->mc * c->nqb, 0, 0};
  if (c->rp) {
    sizes[2] = 4 * c->mc * c->nsb;
    sizes[3] = c->dt == TFX_DT_Q4_K ? 4 * c->mc * c->nsb : 0;
  } else {
    sizes[2] = 32 * c->mc * c->nqb;
  }
  LLVMValueRef at[4];
  for (int i = 0; i < 4; i++) {
    at[i] = bptr(cg, work, tfx_cg_i64(cg, off));
    off += (sizes[i] + 63) / 64 * 64;
  }
  if (off > tfx_node_work_bytes(cg->g, c->G->n, cg->g->max_seq))
    return tfx_cg_fail(cg, "backend: %%%d: the int8 rows need %lld bytes, more than the planned workspace", c->G->n->id,
                       (long long)off);
  c->xq = at[0];
  c->xd = at[1];
  if (c->rp) {
    c->xc = at[2];
    if (sizes[3]) c->xm = at[3];
  } else {
    c->xs = at[2];
  }
  return 0;
}

/* The fields of c for weight w (a format q8_supported takes) and reduction
 * length K; few: the decode kernels (dz on AVX512-VNNI), else the prefill
 * ones (the repacked tiles there). */
static void qctx_init(tfx_cg *cg, qctx *c, const tfx_node *w, int64_t K, int few) {
  const tfx_dtype_info *f = tfx_dtype_info_of(w->type.dtype);
  *c = (qctx){.dt = w->type.dtype, .K = K, .nqb = K / QB, .wblk = f->block, .wbytes = f->block_bytes};
  c->row_bytes = K / f->block * f->block_bytes;
  c->qoff = 2;
  c->nx = 1;                /* one row of x per dz pass unless few_group says more */
  if (c->dt == TFX_DT_I8) { /* w8a8: rows of K codes read as blocks of 32, per-token activations */
    c->i8 = c->tok = 1;
    c->qoff = 0;
    c->wblk = c->wbytes = QB;
    c->row_bytes = K;
    c->R_all = tfx_node_rows(w, 1);
  }
  c->zq4 = c->dt == TFX_DT_ZQ4_64 || c->dt == TFX_DT_ZQ4_128;
  c->zq = c->zq4 || c->dt == TFX_DT_ZQ8_64 || c->dt == TFX_DT_ZQ8_128;
  if (c->zq) c->tok = 1; /* ZeroQuant: token-wise activations */
  c->tq2t = c->dt == TFX_DT_TQ2_T;
  if (c->tq2t) c->tok = 1; /* BitNet b1.58: per-token activations */
  c->t_i8 = LLVMInt8TypeInContext(cg->ctx);
  c->t_i16 = LLVMInt16TypeInContext(cg->ctx);
  c->t_b16 = LLVMVectorType(c->t_i8, 16);
  c->t_b32 = LLVMVectorType(c->t_i8, 32);
  c->t_i8x8 = LLVMVectorType(cg->t_i32, 8);
  c->t_f8 = LLVMVectorType(cg->t_f32, 8);
  unsigned i8 = cg->tgt->i8dot;
  c->vnni = (i8 & (TFX_CG_I8_AVXVNNI | TFX_CG_I8_VNNI512)) != 0;
  c->maddubs = !c->vnni && (i8 & TFX_CG_I8_MADDUBS) && cg->W >= 8; /* the ymm forms: AVX2 */
  c->f16c = c->vnni || c->maddubs;
  c->rp = !few && (i8 & TFX_CG_I8_VNNI512) && cg->W == 16;
  c->S = c->dt == TFX_DT_Q6_K || c->dt == TFX_DT_Q3_K ? 16 : 32;
  c->nsb = K / c->S;
  c->cw = c->dt == TFX_DT_Q8_0 || c->i8 || c->dt == TFX_DT_S24_Q8_0 ? 128
          : c->dt == TFX_DT_Q4_0                                    ? 8
          : c->dt == TFX_DT_Q5_0                                    ? 16
          : c->dt == TFX_DT_Q6_K                                    ? 32
          : c->dt == TFX_DT_Q3_K                                    ? 4
          : c->dt == TFX_DT_TQ2_0 || c->tq2t || c->zq               ? 1
                                                                    : 0;
  c->dz = !c->zq && few && (i8 & TFX_CG_I8_VNNI512) && cg->W == 16 && c->nqb % 2 == 0 &&
          !(c->tq2t && K > (1 << 22)); /* dzt_rows' i32 lanes (its bounds) */
  c->dz4 = c->dz && c->dt == TFX_DT_Q4_0 && c->nqb % 4 == 0;
  c->tiny = c->dz && c->dt == TFX_DT_Q8_0 && c->nqb <= 16;
  c->vbmi2 =
      cg->tgt->cpu_arch == TFX_CPU_ARCH_X86_64 && cg->W == 16 &&
      (cg->tgt->cpu_features & (TFX_CPU_AVX512VBMI2 | TFX_CPU_AVX512VL)) == (TFX_CPU_AVX512VBMI2 | TFX_CPU_AVX512VL);
  c->prefetch = c->dz ? tfx_cg_decode_prefetch(cg) : 0;
}

/* The stack bytes of one quantized row (the buffers qctx_stack allocates). */
static int64_t qctx_row_bytes(const qctx *c) {
  return c->K + 4 * c->nqb + (c->rp ? 8 * c->nsb : c->dz ? 68 * c->nqb : 32 * c->nqb);
}

/* The stack buffers of c->mc quantized rows (the one-kernel forms; the
 * repacked panels' buffers are the caller's). */
static void qctx_stack(tfx_cg *cg, qctx *c) {
  c->xq = tfx_cg_alloca_array(cg, c->t_i8, c->mc * c->K, "xq");
  c->xd = tfx_cg_alloca_array(cg, cg->t_f32, c->mc * c->nqb, "xd");
  if (c->rp) {
    c->xc = tfx_cg_alloca_array(cg, cg->t_i32, c->mc * c->nsb, "xc");
    if (c->dt == TFX_DT_Q4_K) c->xm = tfx_cg_alloca_array(cg, cg->t_f32, c->mc * c->nsb, "xm");
  } else if (c->dz && c->tq2t) {
    c->xt = tfx_cg_alloca_array(cg, cg->t_i32, c->mc, "xt");
  } else if (c->dz) {
    c->xz = tfx_cg_alloca_array(cg, cg->t_i32, c->mc * c->nqb * 8, "xz");
    c->xv = tfx_cg_alloca_array(cg, cg->t_f32, c->mc * c->nqb * 8, "xv");
    if (c->dt == TFX_DT_Q4_K) c->xm = tfx_cg_alloca_array(cg, cg->t_f32, c->mc * c->nqb, "xm");
  } else {
    c->xs = tfx_cg_alloca_array(cg, cg->t_i32, c->mc * c->nqb * 8, "xs");
  }
}

#define Q8_CHUNK_BYTES (256 << 10) /* the quantized rows of a chunk: at most this much stack */

/* tfx_cg_q8_emit with the rows taken as few (the decode kernels, the rows
 * quantized into the stack) or not, whatever G0->M is. */
static void q8_emit_as(tfx_cg *cg, const tfx_cg_gemm *G0, int few) {
  const tfx_node *w = &cg->g->nodes[G0->n->inputs[1]];
  const tfx_dtype_info *f = tfx_dtype_info_of(w->type.dtype);
  if (!f || !q8_supported(w->type.dtype) || G0->K % f->block || G0->packed ||
      (w->type.dtype == TFX_DT_I8 && G0->K % QB)) {
    tfx_cg_fail(cg, "backend: %%%d: int8 linear on a %s weight it cannot read", G0->n->id,
                tfx_dtype_name(w->type.dtype));
    return;
  }
  tfx_cg_gemm G = *G0;
  qctx c;
  qctx_init(cg, &c, w, G.K, few);
  c.G = &G;
  G.q8 = &c;
  /* bytes of one quantized row, and rows per chunk */
  int64_t rowb = qctx_row_bytes(&c);
  int mr = c.rp ? RPMR : QMR;
  if (G.q8_stage != TFX_CG_Q8_ONE && !few) { /* every row of T = max_seq, in the workspace */
    c.mc = tfx_node_rows(&cg->g->nodes[G.n->inputs[0]], cg->g->max_seq);
    if (work_arrays(cg, &c, G.work)) return;
    if (G.q8_stage == TFX_CG_Q8_QUANT) { /* the work items are rows */
      c.m0 = cg->kbegin;
      c.mrows = tfx_cg_sub(cg, cg->kend, cg->kbegin);
      quant_chunk(cg, &c, 1);
      return;
    }
    c.m0 = tfx_cg_i64(cg, 0);
    c.mrows = G.M;
    for (int h = 0; c.rp && h < (G.glu ? 2 : 1); h++) {
      c.rq[h] = tfx_cg_alloca_array(cg, c.t_i8, NB * G.K, "rpq");
      c.rs[h] = tfx_cg_alloca_array(cg, cg->t_f32, NB * c.nsb, "rps");
      if (c.xm) c.ro[h] = tfx_cg_alloca_array(cg, cg->t_f32, NB * c.nsb, "rpo");
      if (c.zq) c.rz[h] = tfx_cg_alloca_array(cg, cg->t_i32, NB * c.nsb, "rpz");
    }
    tfx_cg_gemm_items_emit(cg, &G);
    return;
  }
  c.few = few;
  /* few: the rows known (fewer than QMR) or at most QFEW at run time */
  c.mc = few ? (LLVMIsAConstantInt(G.M) ? QMR - 1 : QFEW) : (Q8_CHUNK_BYTES / rowb) / mr * mr;
  if (!few && c.mc < mr) c.mc = mr;
  if (c.mc > 1024) c.mc = 1024;
  qctx_stack(cg, &c);
  for (int h = 0; c.rp && h < (G.glu ? 2 : 1); h++) {
    c.rq[h] = tfx_cg_alloca_array(cg, c.t_i8, NB * G.K, "rpq");
    c.rs[h] = tfx_cg_alloca_array(cg, cg->t_f32, NB * c.nsb, "rps");
    if (c.xm) c.ro[h] = tfx_cg_alloca_array(cg, cg->t_f32, NB * c.nsb, "rpo");
    if (c.zq) c.rz[h] = tfx_cg_alloca_array(cg, cg->t_i32, NB * c.nsb, "rpz");
  }
  if (few) {
    c.m0 = tfx_cg_i64(cg, 0);
    c.mrows = G.M;
    quant_chunk(cg, &c, 0);
    tfx_cg_gemm_items_emit(cg, &G);
    return;
  }
  tfx_cg_loop lc;
  tfx_cg_for(cg, &lc, tfx_cg_i64(cg, 0), G.M, c.mc, "qchunk");
  c.m0 = lc.iv;
  c.mrows = tfx_cg_smin(cg, tfx_cg_i64(cg, c.mc), tfx_cg_sub(cg, G.M, lc.iv));
  quant_chunk(cg, &c, 0);
  tfx_cg_gemm_items_emit(cg, &G);
  tfx_cg_for_end(cg, &lc);
}

void tfx_cg_q8_emit(tfx_cg *cg, const tfx_cg_gemm *G) {
  int few = LLVMIsAConstantInt(G->M) && LLVMConstIntGetSExtValue(G->M) < QMR;
  if (few && G->q8_stage != TFX_CG_Q8_ONE) {
    tfx_cg_fail(cg, "backend: %%%d: an int8 linear of few rows in two kernels", G->n->id);
    return;
  }
  int repacks = (cg->tgt->i8dot & TFX_CG_I8_VNNI512) && cg->W == 16;
  if (few || !repacks || G->q8_stage == TFX_CG_Q8_QUANT) {
    q8_emit_as(cg, G, few);
    return;
  }
  /* rows known only at run time: when they are few (at most QFEW: a step of
   * the batch entry, a short chunk), the decode kernels read the weights as
   * stored, up to QFX rows per pass, instead of the repacked tiles decoding
   * every panel for them (batch 1 of q8_0 ran at 0.2x the session's decode);
   * the rows the first kernel quantized into the workspace are then not read */
  tfx_cg_if c;
  tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLE, G->M, tfx_cg_i64(cg, QFEW), ""), "q8few");
  q8_emit_as(cg, G, 1);
  tfx_cg_if_else(cg, &c);
  q8_emit_as(cg, G, 0);
  tfx_cg_if_end(cg, &c);
}

/* ---- the int8 dot products of other kernels (k_moe.c's experts) ----
 * The decode kernels above without a GEMM around them: rows of activations
 * quantized into stack slots (quant_row, the caller's x_load hook as the
 * prologue), each dotted with runs of consecutive weight rows of a stored
 * [rows, K] block-format weight (dz_rows and dz_reduce on AVX512-VNNI with
 * K / 32 even, else rm_dots' one-row tiles). */
struct tfx_cg_q8rows {
  qctx c;
  tfx_cg_gemm G; /* what quant_row reads of a GEMM: x, K, the hooks and their ctx */
  LLVMValueRef zr, blk;
};

int tfx_cg_q8rows_reads(tfx_dtype dt, int64_t K) {
  const tfx_dtype_info *f = tfx_dtype_info_of(dt);
  return f && q8_supported(dt) && dt != TFX_DT_I8 && f->block % QB == 0 && K > 0 && K % f->block == 0 &&
         dt != TFX_DT_ZQ8_64 && dt != TFX_DT_ZQ8_128 && dt != TFX_DT_ZQ4_64 && dt != TFX_DT_ZQ4_128 &&
         dt != TFX_DT_S24_Q8_0 && dt != TFX_DT_TQ2_T;
}

tfx_cg_q8rows *tfx_cg_q8rows_new(tfx_cg *cg, const tfx_node *w, int64_t K, int64_t rows, int64_t unit, LLVMValueRef x,
                                 const tfx_cg_gemm_hooks *hooks, void *ctx) {
  if (!tfx_cg_q8rows_reads(w->type.dtype, K)) {
    tfx_cg_fail(cg, "backend: %%%d: no int8 rows read %s weights of K = %lld", w->id, tfx_dtype_name(w->type.dtype),
                (long long)K);
    return NULL;
  }
  tfx_cg_q8rows *q = calloc(1, sizeof *q);
  if (!q) {
    tfx_cg_fail(cg, "backend: out of memory");
    return NULL;
  }
  qctx_init(cg, &q->c, w, K, 1);
  q->c.tiny = 0; /* tiny_rows reads a GEMM's panels */
  q->G = (tfx_cg_gemm){.n = w, .x = x, .K = K, .hooks = hooks, .ctx = ctx, .prologue = hooks && hooks->x_load};
  q->c.G = &q->G;
  q->G.q8 = &q->c;
  int64_t cap = Q8_CHUNK_BYTES / qctx_row_bytes(&q->c) / unit * unit;
  q->c.mc = rows < cap ? rows : cap > unit ? cap : unit;
  qctx_stack(cg, &q->c);
  if (q->c.dz) {
    q->zr = tfx_cg_alloca_array(cg, cg->t_f32, QFX * 8 * 16, "dzsum");
    q->blk = tfx_cg_alloca_array(cg, cg->t_f32, QFX * 8, "dzblk");
  }
  return q;
}

int tfx_cg_q8rows_batch(const tfx_cg_q8rows *q) { return q->c.dz && q->c.wblk != 256 ? QFX : 1; }

int64_t tfx_cg_q8rows_slots(const tfx_cg_q8rows *q) { return q->c.mc; }

void tfx_cg_q8rows_quant(tfx_cg *cg, tfx_cg_q8rows *q, LLVMValueRef slot, LLVMValueRef row) {
  quant_row(cg, &q->c, slot, row);
}

void tfx_cg_q8rows_dots(tfx_cg *cg, tfx_cg_q8rows *q, const LLVMValueRef *slots, int nx, LLVMValueRef w,
                        LLVMValueRef row0, int nw, LLVMValueRef *sums) {
  qctx *c = &q->c;
  LLVMValueRef wrow[8], wsc[8] = {NULL};
  if (nx < 1 || nx > tfx_cg_q8rows_batch(q) || nw < 1 || nw > 8) {
    tfx_cg_fail(cg, "backend: int8 rows: %d rows of x against %d weight rows", nx, nw);
    return;
  }
  for (int k = 0; k < nw; k++) wrow[k] = bptr(cg, w, tfx_cg_mulc(cg, tfx_cg_addc(cg, row0, k), c->row_bytes));
  for (int i = 0; i < nx; i++) c->slot[i] = slots[i];
  if (!c->dz) { /* (one row: tfx_cg_q8rows_batch) */
    rm_dots(cg, c, 1, wrow, wsc, nw, sums);
    return;
  }
  /* a pass of several rows takes the weight rows two at a time (at most 8
   * accumulators per set, as the linears' decode tiles); each row's sums
   * are those it has alone (dz_rows) */
  int step = nx > 1 ? 2 : nw;
  c->nx = nx;
  for (int k0 = 0; k0 < nw; k0 += step) {
    int m = nw - k0 < step ? nw - k0 : step;
    LLVMValueRef out[QFX * 8];
    dz_rows(cg, c, wrow + k0, wsc + k0, m, out);
    for (int i = 0; i < nx; i++)
      for (int k = 0; k < m; k++)
        LLVMSetAlignment(
            LLVMBuildStore(cg->b, out[i * m + k], tfx_cg_fptrc(cg, q->zr, 16 * ((int64_t)i * nw + k0 + k))), 64);
  }
  c->nx = 1;
  for (int i = 0; i < nx; i++) {
    dz_reduce(cg, tfx_cg_fptrc(cg, q->zr, 16 * (int64_t)i * nw), nw, tfx_cg_fptrc(cg, q->blk, (int64_t)i * nw));
    for (int k = 0; k < nw; k++) sums[i * nw + k] = tfx_cg_loadf(cg, tfx_cg_fptrc(cg, q->blk, (int64_t)i * nw + k));
  }
}

void tfx_cg_q8rows_free(tfx_cg_q8rows *q) { free(q); }
