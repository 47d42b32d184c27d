/* backend/k_microkernel.c — the register-blocked GEMM tile on packed
 * weights, the inner loop of every LINEAR / FUSED_LINEAR whose weight
 * pack_weights laid out in k-major panels (for each k, the panel's weights of
 * all its output columns are contiguous).
 *
 * A tile is mr rows of x by nc output columns of one panel: mr x ceil(nc / W)
 * vector accumulators (twice with GLU: gate and up columns) live in
 * registers for the whole reduction. For each k the tile loads its weight
 * vectors once and broadcasts x[row][k] of each row into FMAs (an outer
 * product: no horizontal reductions, ~1 load per mr FMAs). The tile sizes
 * are the target description's (tfx_cg_target.mk, from its register file:
 * 12 x 32 on AVX-512 (24 accumulators of 32 zmm), 6 x 2W with 16 registers
 * (6 x 16 on AVX2, 6 x 8 on SSE: 12 accumulators); GLU tiles read gate and up
 * columns, 6 x 32 on AVX-512 and 6 x W otherwise).
 * One row (decode) keeps two independent accumulator sets so the FMA latency
 * does not bound the weight stream. Where the decode reads two streams per
 * core (tfx_cg_decode_streams: the weights come from DRAM), a linear that is
 * not a GLU (a GLU reads two panels already) gives each set its own half of
 * k, so two places of the panel stream together (the TinyLlama-1.1B shape
 * in bf16: qkv, wo and w2 10-11% faster per job, 27-29 -> 31-34 GB/s; the
 * stories110M shape 8% faster in f32 and bf16; the sums in another order).
 * The one row also prefetches the panel ahead
 * (llvm.prefetch, one per 64-byte line; tfx_cg_panel_prefetch: N bytes with
 * schedule { prefetch = N }; under `auto`, 2-byte panels (f16, bf16) 2 KiB
 * ahead and f32 panels not at all: on the Zen 4 machine of
 * docs/performance.md the hardware prefetchers do as well on f32 weights
 * streamed from DRAM, and the extra instructions cost 8-25% when the weights
 * sit in L2/L3; bf16 weights of the TinyLlama-1.1B shape decoded 17-25%
 * faster with it on the Intel machine of docs/quantization.md).
 *
 * x goes through a stack buffer in chunks of TFX_CG_MK_KC floats per row:
 * the prologue hook (the fused norm) runs there once per element, the rows
 * sit at a stride that is not a multiple of 4 KiB (no L1 set aliasing when
 * K * 4 is), and the broadcasts read L1. A single row without a prologue
 * broadcasts straight from x. (Tiles of several rows broadcasting straight
 * from x, measured at K = 768 where the rows do not alias, ran at 64-78
 * instead of 101 GFLOP/s on one core: the copy pays.) */
#include "cg.h"

/* Floats between rows of the x buffer: a chunk plus 64 bytes. */
#define LDA (TFX_CG_MK_KC + 16)
/* k steps per unrolled iteration. */
#define UNROLL 4

tfx_cg_mk_shape tfx_cg_mk_shape_for(const tfx_cg *cg, int glu) {
  const tfx_cg_tile *t = &cg->tgt->mk[glu != 0];
  tfx_cg_mk_shape s = {t->mr, t->mr_rem, t->cols};
  return s;
}

typedef struct {
  const tfx_cg_gemm *G;
  const tfx_cg_mk_tile *t;
  int nh, nvec, sets;
  int64_t half; /* two streams (one row, not a GLU): k and k + half together, or 0 */
  int lanes[TFX_CG_LIN_NB];
  tfx_cg_wpanel base[2];                 /* gate, up panels */
  LLVMValueRef xrow[TFX_CG_GEMM_MAX_MR]; /* x rows (direct broadcast, and the pack) */
  LLVMValueRef abuf;                     /* [mr][LDA] or NULL (direct) */
  /* acc[((s * mr + i) * nh + h) * nvec + v] */
  LLVMValueRef acc[2 * TFX_CG_GEMM_MAX_MR * 2 * 4];
} mk_state;

static LLVMValueRef *acc_at(mk_state *st, int s, int i, int h, int v) {
  return &st->acc[((s * st->t->mr + i) * st->nh + h) * st->nvec + v];
}

/* The chunk's x rows into the buffer, through the prologue: floats
 * [kb, kb + len) of each row (len static), row i at buffer row i + slot
 * (slot 1: the second stream's chunk of the single row). */
static void pack_chunk(tfx_cg *cg, mk_state *st, LLVMValueRef kb, int64_t len, int slot) {
  const tfx_cg_gemm *G = st->G;
  int64_t full = len / cg->W * cg->W;
  int tail = (int)(len - full);
  for (int part = 0; part < 2; part++) {
    int nvalid = part ? tail : cg->W;
    if (nvalid == 0 || (!part && full == 0)) continue;
    tfx_cg_loop l;
    LLVMValueRef kk = tfx_cg_i64(cg, full);
    if (!part) {
      tfx_cg_for(cg, &l, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, full), cg->W, "pack");
      kk = l.iv;
    }
    LLVMValueRef k = tfx_cg_add(cg, kb, kk);
    for (int i = 0; i < st->t->mr; i++) {
      LLVMValueRef xv = tfx_cg_vload(cg, tfx_cg_fptr(cg, st->xrow[i], k), nvalid);
      if (G->prologue && G->hooks && G->hooks->x_load) xv = G->hooks->x_load(cg, G, i, xv, k, nvalid);
      tfx_cg_vstore(cg, xv, tfx_cg_fptr(cg, st->abuf, tfx_cg_addc(cg, kk, (int64_t)(i + slot) * LDA)), nvalid);
    }
    if (!part) tfx_cg_for_end(cg, &l);
  }
}

/* One k: the tile's weight vectors at kb + kk, each row's broadcast, FMAs
 * into accumulator set s. With two streams, set 1 is the second stream: its
 * k is half further on and its x chunk sits in buffer row 1. */
static void fma_step(tfx_cg *cg, mk_state *st, LLVMValueRef kb, LLVMValueRef kk, int s) {
  const tfx_cg_mk_tile *t = st->t;
  LLVMBuilderRef b = cg->b;
  int slot = st->half && s == 1;
  LLVMValueRef k = tfx_cg_add(cg, slot ? tfx_cg_addc(cg, kb, st->half) : kb, kk), bv[2][4];
  tfx_cg_wpos at = tfx_cg_ws_panel_at(cg, &st->base[0], k, t->c0); /* gate and up panels share the layout */
  for (int h = 0; h < st->nh; h++)
    for (int v = 0; v < st->nvec; v++)
      bv[h][v] = tfx_cg_ws_panel_vec(cg, st->G->ws, &st->base[h], &at, (int64_t)v * cg->W, st->lanes[v]);
  for (int i = 0; i < t->mr; i++) {
    LLVMValueRef a = st->abuf
                         ? tfx_cg_loadf(cg, tfx_cg_fptr(cg, st->abuf, tfx_cg_addc(cg, kk, (int64_t)(i + slot) * LDA)))
                         : tfx_cg_loadf(cg, tfx_cg_fptr(cg, st->xrow[i], k));
    LLVMValueRef as = tfx_cg_splat(cg, a);
    for (int h = 0; h < st->nh; h++)
      for (int v = 0; v < st->nvec; v++) {
        LLVMValueRef p = *acc_at(st, s, i, h, v);
        LLVMBuildStore(b, tfx_cg_fma(cg, as, bv[h][v], LLVMBuildLoad2(b, cg->t_vf, p, "")), p);
      }
  }
}

/* Step u of a range: with two streams, k of both (sets 0 and 1); else k
 * into the sets in turn. */
static void range_step(tfx_cg *cg, mk_state *st, LLVMValueRef kb, LLVMValueRef kk, int64_t u) {
  if (!st->half) {
    fma_step(cg, st, kb, kk, (int)(u % st->sets));
    return;
  }
  fma_step(cg, st, kb, kk, 0);
  fma_step(cg, st, kb, kk, 1);
}

/* k steps kb + [0, len) (len static; with two streams also kb + half +
 * [0, len)), unrolled; a single row also prefetches each stream ahead, one
 * line per 64 bytes it consumes. */
static void fma_range(tfx_cg *cg, mk_state *st, LLVMValueRef kb, int64_t len) {
  const tfx_cg_mk_tile *t = st->t;
  int64_t main = len / UNROLL * UNROLL;
  if (main > 0) {
    tfx_cg_loop l;
    tfx_cg_for(cg, &l, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, main), UNROLL, "kk");
    int64_t eb = tfx_dtype_size(st->G->ws->w->type.dtype);
    int64_t ahead = eb > 0 ? tfx_cg_panel_prefetch(cg, eb) / eb : 0; /* elements */
    for (int s = 0; s < (st->half ? 2 : 1) && t->mr == 1 && ahead > 0; s++) {
      LLVMValueRef k = tfx_cg_add(cg, s ? tfx_cg_addc(cg, kb, st->half) : kb, l.iv);
      LLVMValueRef at = tfx_cg_addc(cg, tfx_cg_mulc(cg, k, t->pr), ahead);
      for (int h = 0; h < st->nh; h++)
        for (int64_t f = 0; f < (int64_t)UNROLL * t->pr; f += 64 / eb)
          tfx_cg_prefetch(cg, tfx_cg_ws_panel_ptr(cg, st->G->ws, &st->base[h], tfx_cg_addc(cg, at, f)), 0);
    }
    for (int u = 0; u < UNROLL; u++) range_step(cg, st, kb, tfx_cg_addc(cg, l.iv, u), u);
    tfx_cg_for_end(cg, &l);
  }
  for (int64_t q = main; q < len; q++) range_step(cg, st, kb, tfx_cg_i64(cg, q), q);
}

static void chunk(tfx_cg *cg, mk_state *st, LLVMValueRef kb, int64_t len) {
  if (st->abuf && !st->t->xbuf) {
    pack_chunk(cg, st, kb, len, 0);
    if (st->half) pack_chunk(cg, st, tfx_cg_addc(cg, kb, st->half), len, 1);
  }
  fma_range(cg, st, kb, len);
}

/* Chunks of TFX_CG_MK_KC over k in [k0, k0 + len) (with two streams, also
 * half further on): a loop of whole chunks, then the tail. */
static void chunks(tfx_cg *cg, mk_state *st, int64_t k0, int64_t len) {
  int64_t full = len / TFX_CG_MK_KC, tail = len % TFX_CG_MK_KC;
  if (full == 1) {
    chunk(cg, st, tfx_cg_i64(cg, k0), TFX_CG_MK_KC);
  } else if (full > 1) {
    tfx_cg_loop l;
    tfx_cg_for(cg, &l, tfx_cg_i64(cg, k0), tfx_cg_i64(cg, k0 + full * TFX_CG_MK_KC), TFX_CG_MK_KC, "kb");
    chunk(cg, st, l.iv, TFX_CG_MK_KC);
    tfx_cg_for_end(cg, &l);
  }
  if (tail) chunk(cg, st, tfx_cg_i64(cg, k0 + full * TFX_CG_MK_KC), tail);
}

/* The two-stream split of a one-row tile that is not a GLU (a GLU already
 * reads two panels) when the decode reads two streams per core
 * (tfx_cg_decode_streams: the weights come from DRAM): k in [0, half) and
 * [half, 2 half) together, half a multiple of UNROLL; 0 for one stream.
 * (Splitting a GLU's k as well, four streams, was no faster: TinyLlama bf16
 * tg64 14.9-16.2 t/s against 15.3-15.8.) */
static int64_t stream_half(const tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_mk_tile *t) {
  if (t->mr != 1 || t->unroll || t->xbuf || G->glu || tfx_cg_decode_streams(cg) != 2) return 0;
  return G->K / 2 / UNROLL * UNROLL;
}

void tfx_cg_mk_emit_tile(tfx_cg *cg, const tfx_cg_gemm *G, const tfx_cg_mk_tile *t) {
  LLVMBuilderRef b = cg->b;
  mk_state st = {.G = G, .t = t, .nh = G->glu ? 2 : 1, .nvec = (t->nc + cg->W - 1) / cg->W};
  st.sets = t->mr == 1 ? 2 : 1;
  st.half = stream_half(cg, G, t);
  for (int v = 0; v < st.nvec; v++) st.lanes[v] = t->nc - v * cg->W < cg->W ? t->nc - v * cg->W : cg->W;
  st.base[0] = t->gate;
  st.base[1] = t->up;
  for (int i = 0; i < t->mr; i++) {
    LLVMValueRef row = tfx_cg_addc(cg, t->m, i);
    if (t->clamp) row = tfx_cg_smin(cg, row, tfx_cg_addc(cg, G->M, -1));
    st.xrow[i] = tfx_cg_fptr(cg, G->x, tfx_cg_mulc(cg, row, G->K));
    if (G->hooks && G->hooks->row_begin) G->hooks->row_begin(cg, G, i, row);
  }
  if (t->xbuf) {
    st.abuf = t->xbuf;
  } else if (t->mr > 1 || G->prologue) {
    if (!cg->mk_abuf) cg->mk_abuf = tfx_cg_alloca_array(cg, cg->t_f32, (int64_t)TFX_CG_GEMM_MAX_MR * LDA, "mk_x");
    st.abuf = cg->mk_abuf;
  }
  for (int s = 0; s < st.sets; s++)
    for (int i = 0; i < t->mr; i++)
      for (int h = 0; h < st.nh; h++)
        for (int v = 0; v < st.nvec; v++) {
          LLVMValueRef *p = acc_at(&st, s, i, h, v);
          *p = tfx_cg_alloca(cg, cg->t_vf, "mk_acc");
          LLVMBuildStore(b, LLVMConstNull(cg->t_vf), *p);
        }

  int64_t K = G->K;
  if (t->unroll) { /* straight-line: x prepared in xbuf, constant offsets */
    for (int64_t k = 0; k < K; k++) fma_step(cg, &st, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, k), (int)(k % st.sets));
  } else if (st.half > 0) { /* two streams, then the few k past 2 half as one */
    int64_t half = st.half;
    chunks(cg, &st, 0, half);
    st.half = 0;
    if (K > 2 * half) chunks(cg, &st, 2 * half, K - 2 * half);
  } else {
    chunks(cg, &st, 0, K);
  }

  /* the finished tile into the block buffers (whole vectors: a row of the
   * buffer is TFX_CG_LIN_NB floats, a multiple of W, and lanes past nc are 0) */
  for (int i = 0; i < t->mr; i++)
    for (int h = 0; h < st.nh; h++)
      for (int v = 0; v < st.nvec; v++) {
        LLVMValueRef sum = LLVMBuildLoad2(b, cg->t_vf, *acc_at(&st, 0, i, h, v), "");
        for (int s = 1; s < st.sets; s++)
          sum = LLVMBuildFAdd(b, sum, LLVMBuildLoad2(b, cg->t_vf, *acc_at(&st, s, i, h, v), ""), "");
        if (t->out) {
          t->out[h * st.nvec + v] = sum;
          continue;
        }
        LLVMValueRef at =
            tfx_cg_fptrc(cg, h ? t->blku : t->blk, (int64_t)i * TFX_CG_LIN_NB + t->c0 + (int64_t)v * cg->W);
        LLVMValueRef stv = LLVMBuildStore(b, sum, at);
        LLVMSetAlignment(stv, 4);
      }
}
