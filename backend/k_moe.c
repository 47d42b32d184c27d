/* backend/k_moe.c — the mixture-of-experts kernels (semantics in ir/ir.h):
 *  - MOE_ROUTE: per row, top-k of the router logits by repeated argmax (the
 *    lowest index wins ties), the softmax gates (over the k chosen or over all
 *    E), and with a capacity the per-expert token counts walked in token
 *    order. Items are rows, or one item for the whole call when a capacity
 *    makes rows depend on earlier rows. Scalar code: E and k are small.
 *  - MOE_UP: items are (column block of NB = 8 weight rows, expert) pairs,
 *    block-major so that a decode call's few active experts spread over the
 *    threads. An item walks the call's rows and slots and, for each slot
 *    routed to its expert, computes the 1 x NB tile x[t] . w[e, n0 + j] (NB
 *    vector accumulators along K, masked tail, llvm.fma, horizontal sums):
 *    each weight block is read from memory once per call. Empty slots are
 *    zeroed by the items of expert 0.
 *  - MOE_DOWN: items are column blocks of NB; an item zeroes its block of
 *    every row, then for each expert, row and slot routed to it adds
 *    weight * (h[t, slot] . w[e, n0 + j]). */
#include <math.h>
#include <stdio.h>

#include "cg.h"

#define MOE_NB 8

/* ---- MOE_ROUTE ---- */

int tfx_cg_emit_moe_route(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  const tfx_node *lg = &cg->g->nodes[n->inputs[0]];
  int64_t E = tfx_node_cols(lg), k = n->top_k;
  int cap = n->capacity > 0, all = n->moe_gate == TFX_MOE_GATE_SOFTMAX;
  char key[128];
  snprintf(key, sizeof key, "moe_route_E%lld_k%lld_g%d_c%.17g", (long long)E, (long long)k, all,
           cap ? n->capacity : 0.0);
  int fresh = tfx_cg_body_begin(cg, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pl = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    LLVMValueRef chosen = tfx_cg_alloca_array(cg, cg->t_i32, E, "chosen");
    LLVMValueRef count = tfx_cg_alloca_array(cg, cg->t_i64, E, "count");
    LLVMValueRef idx = tfx_cg_alloca_array(cg, cg->t_i64, k, "idx");
    LLVMValueRef best = tfx_cg_alloca(cg, cg->t_i64, "best"), bestv = tfx_cg_alloca(cg, cg->t_f32, "bestv");
    LLVMValueRef acc = tfx_cg_alloca(cg, cg->t_f32, "acc");
    LLVMTypeRef tci = LLVMArrayType2(cg->t_i32, (uint64_t)E), tcl = LLVMArrayType2(cg->t_i64, (uint64_t)E);
    LLVMTypeRef tix = LLVMArrayType2(cg->t_i64, (uint64_t)k);
#define AT(arr, ty, i) LLVMBuildInBoundsGEP2(b, ty, arr, (LLVMValueRef[]){tfx_cg_i64(cg, 0), (i)}, 2, "")
    LLVMValueRef capv = NULL;
    if (cap) {
      /* cap = ceil(C * T * k / E) in double, left to right, as the interpreter */
      LLVMValueRef c =
          LLVMBuildFMul(b, LLVMConstReal(cg->t_f64, n->capacity), LLVMBuildSIToFP(b, cg->T, cg->t_f64, ""), "");
      c = LLVMBuildFMul(b, c, LLVMConstReal(cg->t_f64, (double)k), "");
      c = LLVMBuildFDiv(b, c, LLVMConstReal(cg->t_f64, (double)E), "");
      LLVMTypeRef f64 = cg->t_f64;
      c = tfx_cg_intrinsic(cg, "llvm.ceil", &f64, 1, &c, 1);
      capv = LLVMBuildFPToSI(b, c, cg->t_i64, "cap");
      tfx_cg_loop lz;
      tfx_cg_for(cg, &lz, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, E), 1, "zc");
      LLVMBuildStore(b, tfx_cg_i64(cg, 0), AT(count, tcl, lz.iv));
      tfx_cg_for_end(cg, &lz);
    }
    tfx_cg_loop row; /* with a capacity the one item runs every row */
    LLVMValueRef all_rows =
        LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, cg->kbegin, cg->kend, ""), cg->T, tfx_cg_i64(cg, 0), "");
    tfx_cg_for(cg, &row, cap ? tfx_cg_i64(cg, 0) : cg->kbegin, cap ? all_rows : cg->kend, 1, "row");
    LLVMValueRef l = tfx_cg_fptr(cg, pl, tfx_cg_mulc(cg, row.iv, E));
    LLVMValueRef y = tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, 2 * k));
    tfx_cg_loop lz;
    tfx_cg_for(cg, &lz, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, E), 1, "zch");
    LLVMBuildStore(b, tfx_cg_i32(cg, 0), AT(chosen, tci, lz.iv));
    tfx_cg_for_end(cg, &lz);

    /* top-k by repeated argmax over the experts not chosen yet */
    tfx_cg_loop ls;
    tfx_cg_for(cg, &ls, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, k), 1, "slot");
    LLVMBuildStore(b, tfx_cg_i64(cg, -1), best);
    LLVMBuildStore(b, LLVMConstReal(cg->t_f32, 0.0), bestv);
    tfx_cg_loop le;
    tfx_cg_for(cg, &le, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, E), 1, "e");
    LLVMValueRef v = tfx_cg_loadf(cg, tfx_cg_fptr(cg, l, le.iv));
    LLVMValueRef free_ =
        LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildLoad2(b, cg->t_i32, AT(chosen, tci, le.iv), ""), tfx_cg_i32(cg, 0), "");
    LLVMValueRef none = LLVMBuildICmp(b, LLVMIntSLT, LLVMBuildLoad2(b, cg->t_i64, best, ""), tfx_cg_i64(cg, 0), "");
    LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, v, LLVMBuildLoad2(b, cg->t_f32, bestv, ""), "");
    tfx_cg_if better;
    tfx_cg_if_begin(cg, &better, LLVMBuildAnd(b, free_, LLVMBuildOr(b, none, gt, ""), ""), "better");
    LLVMBuildStore(b, le.iv, best);
    LLVMBuildStore(b, v, bestv);
    tfx_cg_if_end(cg, &better);
    tfx_cg_for_end(cg, &le);
    LLVMValueRef bi = LLVMBuildLoad2(b, cg->t_i64, best, "");
    LLVMBuildStore(b, tfx_cg_i32(cg, 1), AT(chosen, tci, bi));
    LLVMBuildStore(b, bi, AT(idx, tix, ls.iv));
    tfx_cg_for_end(cg, &ls);

    /* the gates' max and normalizer */
    LLVMBuildStore(b, LLVMConstReal(cg->t_f32, -INFINITY), bestv);
    tfx_cg_loop lm;
    tfx_cg_for(cg, &lm, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, all ? E : k), 1, "m");
    LLVMValueRef mi = all ? lm.iv : LLVMBuildLoad2(b, cg->t_i64, AT(idx, tix, lm.iv), "");
    LLVMValueRef mv = tfx_cg_loadf(cg, tfx_cg_fptr(cg, l, mi));
    LLVMValueRef cur = LLVMBuildLoad2(b, cg->t_f32, bestv, "");
    LLVMBuildStore(b, LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, mv, cur, ""), mv, cur, ""), bestv);
    tfx_cg_for_end(cg, &lm);
    LLVMValueRef m = LLVMBuildLoad2(b, cg->t_f32, bestv, "max");
    LLVMBuildStore(b, LLVMConstReal(cg->t_f32, 0.0), acc);
    tfx_cg_loop lzs;
    tfx_cg_for(cg, &lzs, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, all ? E : k), 1, "z");
    LLVMValueRef zi = all ? lzs.iv : LLVMBuildLoad2(b, cg->t_i64, AT(idx, tix, lzs.iv), "");
    LLVMValueRef ez = tfx_cg_exp(cg, LLVMBuildFSub(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, l, zi)), m, ""));
    LLVMBuildStore(b, LLVMBuildFAdd(b, LLVMBuildLoad2(b, cg->t_f32, acc, ""), ez, ""), acc);
    tfx_cg_for_end(cg, &lzs);
    LLVMValueRef z = LLVMBuildLoad2(b, cg->t_f32, acc, "z");

    /* the slots: index and weight, or empty when the expert is full */
    tfx_cg_loop lo;
    tfx_cg_for(cg, &lo, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, k), 1, "out");
    LLVMValueRef ei = LLVMBuildLoad2(b, cg->t_i64, AT(idx, tix, lo.iv), "");
    LLVMValueRef w = tfx_cg_exp(cg, LLVMBuildFSub(b, tfx_cg_loadf(cg, tfx_cg_fptr(cg, l, ei)), m, ""));
    w = LLVMBuildFDiv(b, w, z, "w");
    LLVMValueRef ef = LLVMBuildSIToFP(b, ei, cg->t_f32, "");
    LLVMValueRef yi = tfx_cg_fptr(cg, y, lo.iv), yw = tfx_cg_fptr(cg, y, tfx_cg_addc(cg, lo.iv, k));
    if (cap) {
      LLVMValueRef cp = AT(count, tcl, ei);
      LLVMValueRef c = LLVMBuildLoad2(b, cg->t_i64, cp, "");
      tfx_cg_if room;
      tfx_cg_if_begin(cg, &room, LLVMBuildICmp(b, LLVMIntSLT, c, capv, ""), "room");
      LLVMBuildStore(b, LLVMBuildAdd(b, c, tfx_cg_i64(cg, 1), ""), cp);
      tfx_cg_storef(cg, ef, yi);
      tfx_cg_storef(cg, w, yw);
      tfx_cg_if_else(cg, &room);
      tfx_cg_storef(cg, LLVMConstReal(cg->t_f32, -1.0), yi);
      tfx_cg_storef(cg, LLVMConstReal(cg->t_f32, 0.0), yw);
      tfx_cg_if_end(cg, &room);
    } else {
      tfx_cg_storef(cg, ef, yi);
      tfx_cg_storef(cg, w, yw);
    }
    tfx_cg_for_end(cg, &lo);
    tfx_cg_for_end(cg, &row);
#undef AT
    tfx_cg_body_end(cg);
  }
  /* with a capacity the rows depend on the earlier rows: one item */
  tfx_cg_kernel_call(cg, n, NULL, cap ? 0 : 1, cap ? 1 : 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(lg->id), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}

/* ---- the 1 x nr dot-product tile shared by MOE_UP and MOE_DOWN ---- */

typedef struct {
  int nr;
  LLVMValueRef a, w[MOE_NB], acc[MOE_NB];
} dot_tile;

static void dot_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  dot_tile *t = vctx;
  LLVMValueRef av = tfx_cg_vload(cg, tfx_cg_fptr(cg, t->a, col), nvalid);
  for (int j = 0; j < t->nr; j++) {
    LLVMValueRef wv = tfx_cg_vload(cg, tfx_cg_fptr(cg, t->w[j], col), nvalid);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, t->acc[j], "");
    LLVMBuildStore(cg->b, tfx_cg_fma(cg, av, wv, v), t->acc[j]);
  }
}

/* sums[j] = a[0..K) . w[j*K .. j*K + K) for j < nr; acc: nr vector allocas. */
static void emit_dots(tfx_cg *cg, LLVMValueRef a, LLVMValueRef w, int64_t K, int nr, LLVMValueRef *acc,
                      LLVMValueRef *sums) {
  dot_tile t = {.nr = nr, .a = a};
  for (int j = 0; j < nr; j++) {
    t.w[j] = tfx_cg_fptrc(cg, w, (int64_t)j * K);
    t.acc[j] = acc[j];
    LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc[j]);
  }
  tfx_cg_chunks(cg, K, dot_chunk, &t);
  for (int j = 0; j < nr; j++) sums[j] = tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc[j], ""));
}

/* The expert of slot s of a route row: its index, or -1 when the entry is
 * not an index in [0, E). */
static LLVMValueRef slot_expert(tfx_cg *cg, LLVMValueRef route_row, LLVMValueRef s, int64_t E) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef v = tfx_cg_loadf(cg, tfx_cg_fptr(cg, route_row, s));
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOGE, v, LLVMConstReal(cg->t_f32, 0.0), ""),
                                 LLVMBuildFCmp(b, LLVMRealOLT, v, LLVMConstReal(cg->t_f32, (double)E), ""), "");
  LLVMValueRef safe = LLVMBuildSelect(b, ok, v, LLVMConstReal(cg->t_f32, -1.0), "");
  return LLVMBuildFPToSI(b, safe, cg->t_i64, "expert");
}

typedef struct {
  LLVMValueRef x, route, w, y; /* base pointers */
  int64_t E, k, N, K;
  LLVMValueRef acc[MOE_NB];
} moe_op;

/* MOE_UP: the item's expert e and column block n0 (nr columns), all rows. */
static void up_block(tfx_cg *cg, const moe_op *o, LLVMValueRef e, LLVMValueRef n0, int nr) {
  LLVMBuilderRef b = cg->b;
  tfx_cg_loop lt;
  tfx_cg_for(cg, &lt, tfx_cg_i64(cg, 0), cg->T, 1, "t");
  LLVMValueRef rr = tfx_cg_fptr(cg, o->route, tfx_cg_mulc(cg, lt.iv, 2 * o->k));
  LLVMValueRef xr = tfx_cg_fptr(cg, o->x, tfx_cg_mulc(cg, lt.iv, o->K));
  tfx_cg_loop ls;
  tfx_cg_for(cg, &ls, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, o->k), 1, "s");
  LLVMValueRef se = slot_expert(cg, rr, ls.iv, o->E);
  LLVMValueRef yoff = tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->k * o->N), tfx_cg_mulc(cg, ls.iv, o->N));
  LLVMValueRef yb = tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, yoff, n0));
  tfx_cg_if mine;
  tfx_cg_if_begin(cg, &mine, LLVMBuildICmp(b, LLVMIntEQ, se, e, ""), "mine");
  LLVMValueRef wb = tfx_cg_fptr(cg, o->w, tfx_cg_mulc(cg, tfx_cg_add(cg, tfx_cg_mulc(cg, e, o->N), n0), o->K));
  LLVMValueRef sums[MOE_NB];
  emit_dots(cg, xr, wb, o->K, nr, (LLVMValueRef *)o->acc, sums);
  for (int j = 0; j < nr; j++) tfx_cg_storef(cg, sums[j], tfx_cg_fptrc(cg, yb, j));
  tfx_cg_if_else(cg, &mine);
  /* an empty slot is zeroed by expert 0's items */
  LLVMValueRef empty = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSLT, se, tfx_cg_i64(cg, 0), ""),
                                    LLVMBuildICmp(b, LLVMIntEQ, e, tfx_cg_i64(cg, 0), ""), "");
  tfx_cg_if zero;
  tfx_cg_if_begin(cg, &zero, empty, "empty");
  for (int j = 0; j < nr; j++) tfx_cg_storef(cg, LLVMConstReal(cg->t_f32, 0.0), tfx_cg_fptrc(cg, yb, j));
  tfx_cg_if_end(cg, &zero);
  tfx_cg_if_end(cg, &mine);
  tfx_cg_for_end(cg, &ls);
  tfx_cg_for_end(cg, &lt);
}

/* MOE_DOWN: the item's column block n0 (nr columns), every expert and row. */
static void down_block(tfx_cg *cg, const moe_op *o, LLVMValueRef n0, int nr) {
  LLVMBuilderRef b = cg->b;
  tfx_cg_loop lz;
  tfx_cg_for(cg, &lz, tfx_cg_i64(cg, 0), cg->T, 1, "tz");
  LLVMValueRef yz = tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, tfx_cg_mulc(cg, lz.iv, o->N), n0));
  for (int j = 0; j < nr; j++) tfx_cg_storef(cg, LLVMConstReal(cg->t_f32, 0.0), tfx_cg_fptrc(cg, yz, j));
  tfx_cg_for_end(cg, &lz);
  tfx_cg_loop le;
  tfx_cg_for(cg, &le, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, o->E), 1, "e");
  LLVMValueRef wb = tfx_cg_fptr(cg, o->w, tfx_cg_mulc(cg, tfx_cg_add(cg, tfx_cg_mulc(cg, le.iv, o->N), n0), o->K));
  tfx_cg_loop lt;
  tfx_cg_for(cg, &lt, tfx_cg_i64(cg, 0), cg->T, 1, "t");
  LLVMValueRef rr = tfx_cg_fptr(cg, o->route, tfx_cg_mulc(cg, lt.iv, 2 * o->k));
  LLVMValueRef yr = tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->N), n0));
  tfx_cg_loop ls;
  tfx_cg_for(cg, &ls, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, o->k), 1, "s");
  LLVMValueRef se = slot_expert(cg, rr, ls.iv, o->E);
  tfx_cg_if mine;
  tfx_cg_if_begin(cg, &mine, LLVMBuildICmp(b, LLVMIntEQ, se, le.iv, ""), "mine");
  LLVMValueRef gate = tfx_cg_loadf(cg, tfx_cg_fptr(cg, rr, tfx_cg_addc(cg, ls.iv, o->k)));
  LLVMValueRef hr =
      tfx_cg_fptr(cg, o->x, tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->k * o->K), tfx_cg_mulc(cg, ls.iv, o->K)));
  LLVMValueRef sums[MOE_NB];
  emit_dots(cg, hr, wb, o->K, nr, (LLVMValueRef *)o->acc, sums);
  for (int j = 0; j < nr; j++) {
    LLVMValueRef p = tfx_cg_fptrc(cg, yr, j);
    tfx_cg_storef(cg, tfx_cg_fma(cg, gate, sums[j], tfx_cg_loadf(cg, p)), p);
  }
  tfx_cg_if_end(cg, &mine);
  tfx_cg_for_end(cg, &ls);
  tfx_cg_for_end(cg, &lt);
  tfx_cg_for_end(cg, &le);
}

static int emit_experts(tfx_cg *cg, const tfx_node *n, int up) {
  const tfx_node *x = &cg->g->nodes[n->inputs[0]], *route = &cg->g->nodes[n->inputs[1]];
  const tfx_node *w = &cg->g->nodes[n->inputs[2]];
  int64_t E = w->type.dims[0], N = w->type.dims[1], K = w->type.dims[2], k = tfx_node_cols(route) / 2;
  int64_t blocks = (N + MOE_NB - 1) / MOE_NB, full = N / MOE_NB;
  int part = (int)(N % MOE_NB);
  char key[128];
  snprintf(key, sizeof key, "moe_%s_E%lld_N%lld_K%lld_k%lld", up ? "up" : "down", (long long)E, (long long)N,
           (long long)K, (long long)k);
  int fresh = tfx_cg_body_begin(cg, key);
  if (fresh < 0) return -1;
  if (fresh) {
    moe_op o = {tfx_cg_body_ptr(cg, 0),
                tfx_cg_body_ptr(cg, 1),
                tfx_cg_body_ptr(cg, 2),
                tfx_cg_body_ptr(cg, 3),
                E,
                k,
                N,
                K,
                {0}};
    for (int j = 0; j < MOE_NB; j++) o.acc[j] = tfx_cg_alloca(cg, cg->t_vf, "acc");
    tfx_cg_loop it;
    tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
    /* up: item = block * E + expert; down: item = block */
    LLVMValueRef blk = up ? LLVMBuildSDiv(cg->b, it.iv, tfx_cg_i64(cg, E), "blk") : it.iv;
    LLVMValueRef e = up ? LLVMBuildSRem(cg->b, it.iv, tfx_cg_i64(cg, E), "e") : NULL;
    LLVMValueRef n0 = tfx_cg_mulc(cg, blk, MOE_NB);
    tfx_cg_if c;
    int guarded = full > 0 && part > 0;
    for (int variant = 0; variant < 2; variant++) {
      int nr = variant == 0 ? MOE_NB : part;
      if (variant == 0 && full == 0) continue;
      if (variant == 1 && part == 0) continue;
      if (guarded && variant == 0)
        tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, blk, tfx_cg_i64(cg, full), ""), "fullblk");
      if (up)
        up_block(cg, &o, e, n0, nr);
      else
        down_block(cg, &o, n0, nr);
      if (guarded && variant == 0) tfx_cg_if_else(cg, &c);
      if (guarded && variant == 1) tfx_cg_if_end(cg, &c);
    }
    tfx_cg_for_end(cg, &it);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, 0, up ? blocks * E : blocks,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(x->id), TFX_CG_VAL(route->id), TFX_CG_VAL(w->id), TFX_CG_VAL(n->id)});
  return 0;
}

int tfx_cg_emit_moe_up(tfx_cg *cg, const tfx_node *n) { return emit_experts(cg, n, 1); }
int tfx_cg_emit_moe_down(tfx_cg *cg, const tfx_node *n) { return emit_experts(cg, n, 0); }
