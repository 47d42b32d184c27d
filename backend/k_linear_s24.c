/* backend/k_linear_s24.c — the 2:4 sparse weights (layouts in ir/dtype.c
 * and docs/quantization.md) in the kernels: the gathering dot products of
 * s24_f32 for the row-major tiles of k_linear.c (LINEAR and FUSED_LINEAR,
 * decode and prefill), and the expansion of a block's kept values under
 * s24_q8_0's keep mask (tfx_cg_s24_expand: the int8 kernels of
 * k_linear_q8.c where the target has no vpexpandb, and the dequantizing
 * stream of backend/weight_stream.c; tfx_cg_s24_codes, the int8 kernels'
 * 32 codes of a block at its address).
 *
 * s24_f32: instead of expanding the kept values to dense vectors (the
 * weight stream), a tile reads only the kept values and their 2-bit
 * positions, and gathers the activations at the kept positions: kept value
 * j of a block of 32 inputs (group j / 2) sits at input 4 (j / 2) + ((idx
 * >> 2 j) & 3), so one vector of W kept values multiplies W gathered
 * activations, half the fused multiply-adds of the dense product and about
 * half its bytes.
 *
 * The gather: with AVX-512 (W = 16, one vector of kept values per block)
 * the block's 32 activations are two registers and vpermi2ps picks the 16
 * kept positions (the index vector built once per weight row and block,
 * shared by the tile's rows of x); AVX2 (W = 8, two vectors of kept values
 * per block, each from 16 inputs) permutes both registers of its 16 inputs
 * with vpermps and blends on the index's bit 3; other targets store the
 * block's activations (after the prologue) to a small stack buffer and
 * gather from it (llvm.masked.gather: scalar loads).
 *
 * s24_q8_0 runs on int8 activations (tfx_node_act_quant) in k_linear_q8.c:
 * its kept bytes expanded to q8_0-like blocks (vpexpandb under the keep
 * mask with AVX512_VBMI2, else tfx_cg_s24_codes: with AVX2 expand_permd,
 * a table lookup and a byte shuffle, else tfx_cg_s24_expand) and dotted
 * as q8_0's;
 * with act_f32 it takes the dequantizing stream. */
#include "../include/tfx/abi.h"
#include "cg.h"

#define S24_BLOCK 32
#define MAX_ROWS TFX_CG_LIN_MR
#define MAX_W 16

int tfx_cg_s24_gathers(const tfx_cg *cg, const tfx_cg_wstream *s) {
  return s->w->type.dtype == TFX_DT_S24_F32 && s->block == S24_BLOCK && !s->panel && cg->W <= MAX_W &&
         S24_BLOCK % (2 * cg->W) == 0;
}

/* tfx_cg_s24_expand for 32 bytes without mask registers (AVX2, SSE,
 * NEON): the mask's bytes spread to the lanes (byte i / 8 to lane i: a
 * broadcast and a byte shuffle), each lane's bit tested (and, compare: 0 or
 * -1), a lane's lower lanes in its group by shifts of the i32 holding the
 * group, then and / or of the two constant shuffles of v: no variable
 * blend (an AVX2 vpblendvb is 2 port-5 uops on Haswell; with it this path
 * decoded stories110M at 12-13 t/s, without at 15-17). */
static LLVMValueRef expand_bytes(tfx_cg *cg, LLVMValueRef mask, LLVMValueRef v) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef i8 = LLVMInt8TypeInContext(cg->ctx), b32 = LLVMVectorType(i8, 32);
  LLVMTypeRef d8 = LLVMVectorType(cg->t_i32, 8);
  LLVMValueRef spread[32], bit[32], e0[32], e1[32], sh[3][8];
  for (int i = 0; i < 32; i++) {
    spread[i] = tfx_cg_i32(cg, i / 8);
    bit[i] = LLVMConstInt(i8, 1u << (i % 8), 0);
    e0[i] = tfx_cg_i32(cg, 2 * (i / 4));
    e1[i] = tfx_cg_i32(cg, 2 * (i / 4) + 1);
  }
  for (int s = 0; s < 3; s++)
    for (int l = 0; l < 8; l++) sh[s][l] = tfx_cg_i32(cg, 8 * (s + 1));
  LLVMValueRef m4 = LLVMBuildBitCast(b, mask, LLVMVectorType(i8, 4), "");
  LLVMValueRef mb = LLVMBuildShuffleVector(b, m4, LLVMGetPoison(LLVMTypeOf(m4)), LLVMConstVector(spread, 32), "");
  LLVMValueRef bits = LLVMConstVector(bit, 32);
  LLVMValueRef keep =
      LLVMBuildSExt(b, LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildAnd(b, mb, bits, ""), bits, ""), b32, "s24.keep");
  LLVMValueRef k32 = LLVMBuildBitCast(b, keep, d8, ""), below = NULL;
  for (int s = 0; s < 3; s++) {
    LLVMValueRef t = LLVMBuildShl(b, k32, LLVMConstVector(sh[s], 8), "");
    below = below ? LLVMBuildOr(b, below, t, "") : t;
  }
  LLVMValueRef second = LLVMBuildAnd(b, keep, LLVMBuildBitCast(b, below, b32, ""), "");
  LLVMValueRef first = LLVMBuildXor(b, keep, second, "");
  LLVMValueRef pv = LLVMGetPoison(LLVMTypeOf(v));
  LLVMValueRef v0 = LLVMBuildShuffleVector(b, v, pv, LLVMConstVector(e0, 32), "");
  LLVMValueRef v1 = LLVMBuildShuffleVector(b, v, pv, LLVMConstVector(e1, 32), "");
  return LLVMBuildOr(b, LLVMBuildAnd(b, v0, first, ""), LLVMBuildAnd(b, v1, second, ""), "s24.x");
}

/* The 32 codes of the s24_q8_0 block at blk with AVX2 in 2 shuffle-port
 * operations: a group's 4 lane indices are a function of its nibble of
 * the mask, and the 6 valid nibbles (two bits set: 3, 5, 6, 9, 10, 12) are
 * distinct in their low 3 bits, so a table of 8 dwords (per lane p: the
 * number of lower bits set, where bit p is, else 0x80) looked up by vpermd
 * (which reads only an index's low 3 bits) at the mask shifted right by 4g
 * in dword g (vpbroadcastd from memory, vpsrlvd) gives every lane its
 * in-group index; plus 2g, the index of the 16 kept bytes (in both
 * 128-bit lanes: vbroadcasti128 from memory) for one vpshufb (bit 7: a
 * pruned lane's 0). Per block: 2 loads, vpsrlvd, vpermd, vpaddb, vpshufb
 * (expand_bytes: 8 shuffles and 10 other operations). */
static unsigned bits4(unsigned n) { return (n & 1) + (n >> 1 & 1) + (n >> 2 & 1) + (n >> 3 & 1); }

static LLVMValueRef expand_permd(tfx_cg *cg, LLVMValueRef blk) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef i8 = LLVMInt8TypeInContext(cg->ctx), b16 = LLVMVectorType(i8, 16), b32 = LLVMVectorType(i8, 32);
  LLVMTypeRef d8 = LLVMVectorType(cg->t_i32, 8);
  LLVMValueRef table[8], shift[8], base[32], dup[32], z[8];
  for (int key = 0; key < 8; key++) {
    /* the valid nibble with these low 3 bits (key 0 and 7: none) */
    unsigned nib = 0, w = 0;
    for (unsigned n = 0; n < 16; n++)
      if ((n & 7) == (unsigned)key && bits4(n) == 2) nib = n;
    for (int p = 0; p < 4; p++) {
      unsigned ix = nib >> p & 1 ? bits4(nib & ((1u << p) - 1)) : 0x80;
      w |= ix << (8 * p);
    }
    table[key] = LLVMConstInt(cg->t_i32, w, 0);
    shift[key] = tfx_cg_i32(cg, 4 * key);
    z[key] = tfx_cg_i32(cg, 0);
  }
  for (int i = 0; i < 32; i++) {
    base[i] = LLVMConstInt(i8, (unsigned)(2 * (i / 4)), 0);
    dup[i] = tfx_cg_i32(cg, i % 16);
  }
  LLVMValueRef mask = LLVMBuildLoad2(b, cg->t_i32, tfx_cg_byteptr(cg, blk, 2), "");
  LLVMValueRef v = LLVMBuildLoad2(b, b16, tfx_cg_byteptr(cg, blk, 6), "");
  LLVMSetAlignment(mask, 1);
  LLVMSetAlignment(v, 1);
  LLVMValueRef m = LLVMBuildInsertElement(b, LLVMGetPoison(d8), mask, tfx_cg_i32(cg, 0), "");
  m = LLVMBuildShuffleVector(b, m, LLVMGetPoison(d8), LLVMConstVector(z, 8), "");
  m = LLVMBuildLShr(b, m, LLVMConstVector(shift, 8), "s24.nib");
  LLVMValueRef a1[2] = {LLVMConstVector(table, 8), m};
  LLVMValueRef ix = tfx_cg_intrinsic(cg, "llvm.x86.avx2.permd", NULL, 0, a1, 2);
  ix = LLVMBuildAdd(b, LLVMBuildBitCast(b, ix, b32, ""), LLVMConstVector(base, 32), "s24.ix");
  LLVMValueRef a2[2] = {LLVMBuildShuffleVector(b, v, LLVMGetPoison(b16), LLVMConstVector(dup, 32), ""), ix};
  return tfx_cg_intrinsic(cg, "llvm.x86.avx2.pshuf.b", NULL, 0, a2, 2);
}

LLVMValueRef tfx_cg_s24_expand(tfx_cg *cg, LLVMValueRef mask, LLVMValueRef v, int n) {
  LLVMBuilderRef b = cg->b;
  if (n == 32 && LLVMGetElementType(LLVMTypeOf(v)) == LLVMInt8TypeInContext(cg->ctx) &&
      !(cg->tgt->cpu_arch == TFX_CPU_ARCH_X86_64 && (cg->tgt->cpu_features & TFX_CPU_AVX512BW)))
    return expand_bytes(cg, mask, v);
  /* a kept lane is its group's second when a lower lane of the group is kept */
  LLVMValueRef below = NULL;
  for (int s = 1; s < 4; s++) {
    unsigned m = 0;
    for (int i = 0; i < 32; i++)
      if (i % 4 >= s) m |= 1u << i;
    LLVMValueRef t = LLVMBuildAnd(b, LLVMBuildShl(b, mask, tfx_cg_i32(cg, s), ""), tfx_cg_i32(cg, (int)m), "");
    below = below ? LLVMBuildOr(b, below, t, "") : t;
  }
  LLVMValueRef second = LLVMBuildAnd(b, mask, below, "");
  LLVMValueRef first = LLVMBuildXor(b, mask, second, "");
  LLVMTypeRef in = LLVMIntTypeInContext(cg->ctx, (unsigned)n), bt = LLVMVectorType(cg->t_i1, (unsigned)n);
  if (n < 32) {
    first = LLVMBuildTrunc(b, first, in, "");
    second = LLVMBuildTrunc(b, second, in, "");
  }
  first = LLVMBuildBitCast(b, first, bt, "s24.first");
  second = LLVMBuildBitCast(b, second, bt, "s24.second");
  LLVMValueRef e0[64], e1[64];
  for (int i = 0; i < n; i++) {
    e0[i] = tfx_cg_i32(cg, 2 * (i / 4));
    e1[i] = tfx_cg_i32(cg, 2 * (i / 4) + 1);
  }
  LLVMValueRef pv = LLVMGetPoison(LLVMTypeOf(v));
  LLVMValueRef v0 = LLVMBuildShuffleVector(b, v, pv, LLVMConstVector(e0, (unsigned)n), "");
  LLVMValueRef v1 = LLVMBuildShuffleVector(b, v, pv, LLVMConstVector(e1, (unsigned)n), "");
  LLVMValueRef x = LLVMBuildSelect(b, second, v1, LLVMConstNull(LLVMTypeOf(v1)), "");
  return LLVMBuildSelect(b, first, v0, x, "s24.x");
}

LLVMValueRef tfx_cg_s24_codes(tfx_cg *cg, LLVMValueRef blk) {
  if (cg->tgt->cpu_arch == TFX_CPU_ARCH_X86_64 && (cg->tgt->cpu_features & TFX_CPU_AVX2)) return expand_permd(cg, blk);
  LLVMTypeRef b16 = LLVMVectorType(LLVMInt8TypeInContext(cg->ctx), 16);
  LLVMValueRef mask = LLVMBuildLoad2(cg->b, cg->t_i32, tfx_cg_byteptr(cg, blk, 2), "");
  LLVMValueRef kept = LLVMBuildLoad2(cg->b, b16, tfx_cg_byteptr(cg, blk, 6), "");
  LLVMSetAlignment(mask, 1);
  LLVMSetAlignment(kept, 1);
  return tfx_cg_s24_expand(cg, mask, kept, 32);
}

/* How the activations are gathered: 1 vpermi2ps (AVX-512), 2 vpermps
 * pairs (AVX2), 0 masked.gather from a stack buffer (anything else). */
static int permute_kind(const tfx_cg *cg) {
  if (cg->tgt->cpu_arch != TFX_CPU_ARCH_X86_64) return 0;
  if (cg->W == 16 && (cg->tgt->cpu_features & TFX_CPU_AVX512F)) return 1;
  if (cg->W == 8 && (cg->tgt->cpu_features & TFX_CPU_AVX2)) return 2;
  return 0;
}

static LLVMValueRef const_vi(tfx_cg *cg, const int *v) {
  LLVMValueRef lanes[MAX_W];
  for (int i = 0; i < cg->W; i++) lanes[i] = LLVMConstInt(cg->t_i32, (unsigned long long)(unsigned)v[i], 0);
  return LLVMConstVector(lanes, (unsigned)cg->W);
}

/* The input indices (in the block, 0..31) of kept values kv0 .. kv0 + W - 1
 * of the block whose position word is idx (i32). */
static LLVMValueRef kept_index(tfx_cg *cg, LLVMValueRef idx, int kv0) {
  LLVMBuilderRef b = cg->b;
  int sh[MAX_W], base[MAX_W], three[MAX_W];
  for (int l = 0; l < cg->W; l++) {
    sh[l] = 2 * (kv0 + l);
    base[l] = 4 * ((kv0 + l) / 2);
    three[l] = 3;
  }
  LLVMValueRef v = tfx_cg_splat(cg, idx);
  v = LLVMBuildLShr(b, v, const_vi(cg, sh), "");
  v = LLVMBuildAnd(b, v, const_vi(cg, three), "");
  return LLVMBuildOr(b, v, const_vi(cg, base), "s24.ix");
}

/* Kept values kv0 .. kv0 + W - 1 of the s24_f32 block at blk. */
static LLVMValueRef kept_values(tfx_cg *cg, LLVMValueRef blk, int kv0) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, tfx_cg_byteptr(cg, blk, 4 * kv0), "");
  LLVMSetAlignment(v, 4);
  return v;
}

static LLVMValueRef vpermi2(tfx_cg *cg, LLVMValueRef lo, LLVMValueRef ix, LLVMValueRef hi) {
  LLVMValueRef args[3] = {lo, ix, hi};
  return tfx_cg_intrinsic(cg, "llvm.x86.avx512.vpermi2var.ps.512", NULL, 0, args, 3);
}

/* AVX2: the two-register permute as two vpermps (low 3 bits of each index)
 * and a blend on bit 3. */
static LLVMValueRef vperm2x8(tfx_cg *cg, LLVMValueRef lo, LLVMValueRef ix, LLVMValueRef hi) {
  LLVMValueRef a1[2] = {lo, ix}, a2[2] = {hi, ix};
  LLVMValueRef p0 = tfx_cg_intrinsic(cg, "llvm.x86.avx2.permps", NULL, 0, a1, 2);
  LLVMValueRef p1 = tfx_cg_intrinsic(cg, "llvm.x86.avx2.permps", NULL, 0, a2, 2);
  int eight[MAX_W];
  for (int l = 0; l < cg->W; l++) eight[l] = 8;
  LLVMValueRef bit = LLVMBuildAnd(cg->b, ix, const_vi(cg, eight), "");
  LLVMValueRef hi_sel = LLVMBuildICmp(cg->b, LLVMIntNE, bit, LLVMConstNull(cg->t_vi), "");
  return LLVMBuildSelect(cg->b, hi_sel, p1, p0, "");
}

static LLVMValueRef gather(tfx_cg *cg, LLVMValueRef buf, LLVMValueRef ix) {
  LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(cg->b, cg->t_f32, buf, &ix, 1, "");
  LLVMTypeRef over[2] = {cg->t_vf, LLVMVectorType(cg->t_ptr, (unsigned)cg->W)};
  LLVMValueRef ones[MAX_W];
  for (int l = 0; l < cg->W; l++) ones[l] = LLVMConstInt(cg->t_i1, 1, 0);
  LLVMValueRef args[4] = {ptrs, tfx_cg_i32(cg, 4), LLVMConstVector(ones, (unsigned)cg->W), LLVMConstNull(cg->t_vf)};
  return tfx_cg_intrinsic(cg, "llvm.masked.gather", over, 2, args, 4);
}

/* One block (bi, i64) of the tile: acc[i * nw + j] += w_j . x_i over its 32 inputs. */
static void emit_block(tfx_cg *cg, const tfx_cg_gemm *G, int mr, LLVMValueRef *xrow, LLVMValueRef *xbuf, int nw,
                       const tfx_cg_wrow *wrow, LLVMValueRef *acc, LLVMValueRef bi) {
  LLVMBuilderRef b = cg->b;
  int W = cg->W, nx = S24_BLOCK / W, perm = permute_kind(cg);
  int64_t bb = G->ws->block_bytes, idx_off = 64;
  LLVMValueRef k0 = tfx_cg_mulc(cg, bi, S24_BLOCK), xv[MAX_ROWS][S24_BLOCK];
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nx; v++) {
      LLVMValueRef k = tfx_cg_addc(cg, k0, (int64_t)v * W);
      xv[i][v] = tfx_cg_vload(cg, tfx_cg_fptr(cg, xrow[i], k), W);
      if (G->hooks && G->hooks->x_load) xv[i][v] = G->hooks->x_load(cg, G, i, xv[i][v], k, W);
      if (!perm) tfx_cg_vstore(cg, xv[i][v], tfx_cg_fptrc(cg, xbuf[i], (int64_t)v * W), W);
    }
  LLVMValueRef off = tfx_cg_mulc(cg, bi, bb);
  for (int j = 0; j < nw; j++) {
    LLVMValueRef blk = LLVMBuildInBoundsGEP2(b, LLVMInt8TypeInContext(cg->ctx), wrow[j].ptr, &off, 1, "");
    LLVMValueRef idx = LLVMBuildLoad2(b, cg->t_i32, tfx_cg_byteptr(cg, blk, idx_off), "");
    LLVMSetAlignment(idx, 1);
    for (int kv0 = 0; kv0 < S24_BLOCK / 2; kv0 += W) {
      LLVMValueRef ix = kept_index(cg, idx, kv0), wv = kept_values(cg, blk, kv0);
      for (int i = 0; i < mr; i++) {
        LLVMValueRef xg = perm == 1   ? vpermi2(cg, xv[i][0], ix, xv[i][1])
                          : perm == 2 ? vperm2x8(cg, xv[i][kv0 / 4], ix, xv[i][kv0 / 4 + 1])
                                      : gather(cg, xbuf[i], ix);
        LLVMValueRef a = acc[i * nw + j];
        LLVMBuildStore(b, tfx_cg_fma(cg, xg, wv, LLVMBuildLoad2(b, cg->t_vf, a, "")), a);
      }
    }
  }
}

void tfx_cg_s24_dots(tfx_cg *cg, const tfx_cg_gemm *G, int mr, LLVMValueRef *xrow, int nw, const tfx_cg_wrow *wrow,
                     LLVMValueRef *acc) {
  int64_t nblk = G->K / S24_BLOCK;
  LLVMValueRef xbuf[MAX_ROWS] = {0};
  if (!permute_kind(cg))
    for (int i = 0; i < mr; i++) xbuf[i] = tfx_cg_alloca_array(cg, cg->t_f32, S24_BLOCK, "s24.x");
  /* blocks in pairs (two independent chains of loads per trip), then the odd one */
  int64_t pairs = nblk / 2;
  if (pairs > 0) {
    tfx_cg_loop lb;
    tfx_cg_for(cg, &lb, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, 2 * pairs), 2, "s24b");
    emit_block(cg, G, mr, xrow, xbuf, nw, wrow, acc, lb.iv);
    emit_block(cg, G, mr, xrow, xbuf, nw, wrow, acc, tfx_cg_addc(cg, lb.iv, 1));
    tfx_cg_for_end(cg, &lb);
  }
  if (nblk % 2) emit_block(cg, G, mr, xrow, xbuf, nw, wrow, acc, tfx_cg_i64(cg, nblk - 1));
}
