/* backend/k_moe.c — the mixture-of-experts kernels (semantics in ir/ir.h):
 *  - MOE_ROUTE: per row, top-k of the router logits by repeated argmax (the
 *    lowest index wins ties), the softmax gates (over the k chosen or over all
 *    E), and with a capacity the per-expert token counts walked in token
 *    order. Items are rows, or one item for the whole call when a capacity
 *    makes rows depend on earlier rows. Scalar code: E and k are small. With
 *    the router fused (fuse_moe) the item first computes its row's E logits
 *    (vector FMAs along D, x normalized by the norm prologue as it is
 *    loaded) into a stack array: no [T, E] logits in memory.
 *  - MOE_UP: items are (column block of NB = 8 weight rows, expert) pairs,
 *    block-major so that a decode call's few active experts spread over the
 *    threads. An item walks the call's rows and slots and, for each slot
 *    routed to its expert, computes the 1 x NB tile x[t] . w[e, n0 + j] (NB
 *    vector accumulators along K, masked tail, llvm.fma, horizontal sums):
 *    each weight block is read from memory once per call. The fused forms:
 *    the norm prologue (x * gain, 1/rms on the sums; or (x - mean) * inv *
 *    gain + bias), the activation, and GLU (the same tile against w3's rows:
 *    act(gate) * up is stored). Empty slots are written by the items of
 *    expert 0 (act(0), 0 with GLU).
 *  - MOE_DOWN: items are column blocks of NB; an item starts its block of
 *    every row from the residual (or 0), then for each expert, row and slot
 *    routed to it adds weight * (h[t, slot] . w[e, n0 + j]). Writing the
 *    statistics of its rows for the next norm (stats_out), an item owns a
 *    whole group of TFX_STATS_GROUP columns (sub-blocks of NB) and writes the
 *    group's partial statistics of every row once they are final.
 *  - int8 experts (tfx_node_act_quant: q8_0, q4_0, q5_0, q3_k, q4_k, q6_k,
 *    tq2_0; GLU with w1 and w3 in one format): the same items and fusions,
 *    but each thread's body first quantizes the call's rows per block of 32
 *    into stack slots (k_linear_q8.c's tfx_cg_q8rows; MOE_UP: x[t] through
 *    the norm prologue as the quantization's x_load hook, RMS's 1/rms still
 *    on the sums; MOE_DOWN: h[t, s], k slots per row), in chunks when the
 *    rows exceed the slots (the items then walk the chunk's rows); the 1 x
 *    NB tile of a routed row is the int8 linears' decode kernel (dz on
 *    AVX512-VNNI, else the one-row tiles) over the expert's NB weight rows.
 *    In prefill bodies an item lists the chunk's slots routed to its expert
 *    and runs them through that kernel up to 4 rows per pass (each weight
 *    pair decoded once for them; every row's sums as alone: `groups`). No
 *    repacked tiles. */
#include <math.h>
#include <stdio.h>

#include "cg.h"

#define MOE_NB 8

/* ---- the norm prologue of MOE_ROUTE (router) and MOE_UP ---- */

typedef struct {
  int norm; /* tfx_norm_kind of the prologue */
  LLVMValueRef stats, gain, nbias;
  int64_t parts, K; /* stats from an epilogue: groups per row (0: plain [T, 2]); x's columns */
  double eps;
  LLVMValueRef mean, inv; /* the current row's, splatted (inv: f32 scalar for RMS) */
} moe_pro;

/* The prologue of x : f32[T, K] of node n reading its stats operand. */
static moe_pro pro_for(tfx_cg *cg, const tfx_node *n, int64_t K, LLVMValueRef stats, LLVMValueRef gain,
                       LLVMValueRef nbias) {
  moe_pro p = {.norm = n->fx.norm, .stats = stats, .gain = gain, .nbias = nbias, .K = K};
  int i = tfx_moe_operand(n, TFX_MOE_STATS);
  if (i >= 0) {
    const tfx_node *s = &cg->g->nodes[n->inputs[i]];
    p.parts = s->fx.index == 1 ? (K + TFX_STATS_GROUP - 1) / TFX_STATS_GROUP : 0;
    p.eps = s->eps;
  }
  return p;
}

/* The row's statistics (once per row, before its dot products). */
static void pro_row(tfx_cg *cg, moe_pro *p, LLVMValueRef row) {
  if (!p->norm) return;
  LLVMValueRef mean, inv;
  tfx_cg_norm_row_stats(cg, p->stats, row, p->parts, p->K, p->norm == TFX_NORM_LAYER, p->eps, &mean, &inv);
  p->mean = tfx_cg_splat(cg, mean);
  p->inv = p->norm == TFX_NORM_LAYER ? tfx_cg_splat(cg, inv) : inv;
}

/* An x vector as loaded at column col: x * gain (RMS: the 1/rms factor is
 * applied to the finished dot product, pro_sum) or (x - mean) * inv * gain
 * + bias (LayerNorm). Lanes past nvalid stay 0 (gain and bias load 0). */
static LLVMValueRef pro_apply(tfx_cg *cg, const moe_pro *p, LLVMValueRef xv, LLVMValueRef col, int nvalid) {
  return tfx_cg_norm_x_load(cg, p->norm, xv, col, nvalid, p->gain, p->nbias, p->mean, p->inv);
}

static LLVMValueRef pro_sum(tfx_cg *cg, const moe_pro *p, LLVMValueRef sum) {
  return p->norm == TFX_NORM_RMS ? LLVMBuildFMul(cg->b, sum, p->inv, "") : sum;
}

/* ---- the router's logits (MOE_ROUTE with fx.router) ---- */

typedef struct {
  const moe_pro *pro;
  LLVMValueRef x, acc;
  const tfx_cg_wstream *ws;
  tfx_cg_wrow w; /* the expert's router row */
} logit_ctx;

static void logit_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  logit_ctx *c = vctx;
  LLVMValueRef xv = pro_apply(cg, c->pro, tfx_cg_vload(cg, tfx_cg_fptr(cg, c->x, col), nvalid), col, nvalid);
  LLVMValueRef wv = tfx_cg_ws_row_vec(cg, c->ws, &c->w, col, nvalid);
  LLVMBuildStore(cg->b, tfx_cg_fma(cg, xv, wv, LLVMBuildLoad2(cg->b, cg->t_vf, c->acc, "")), c->acc);
}

/* logits[e] = prologue(x row) . router[e] for e < E (a loop over the experts,
 * vector FMAs along D). */
static void router_logits(tfx_cg *cg, moe_pro *pro, LLVMValueRef xrow, const tfx_cg_wstream *ws, int64_t E, int64_t D,
                          LLVMValueRef acc, LLVMValueRef logits) {
  tfx_cg_loop le;
  tfx_cg_for(cg, &le, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, E), 1, "le");
  logit_ctx c = {pro, xrow, acc, ws, tfx_cg_ws_row(cg, ws, le.iv)};
  LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc);
  tfx_cg_chunks(cg, D, logit_chunk, &c);
  LLVMValueRef sum = pro_sum(cg, pro, tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc, "")));
  tfx_cg_storef(cg, sum, tfx_cg_fptr(cg, logits, le.iv));
  tfx_cg_for_end(cg, &le);
}

/* ---- MOE_ROUTE ---- */

int tfx_cg_emit_moe_route(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  const tfx_node *lg = &cg->g->nodes[n->inputs[0]]; /* the logits, or x with the router */
  int router = n->fx.router;
  int64_t D = tfx_node_cols(lg), E = router ? cg->g->nodes[n->inputs[1]].type.dims[0] : D, k = n->top_k;
  int cap = n->capacity > 0, all = n->moe_gate == TFX_MOE_GATE_SOFTMAX;
  moe_pro pro0 = pro_for(cg, n, D, NULL, NULL, NULL);
  char key[176];
  snprintf(key, sizeof key, "moe_route_E%lld_k%lld_g%d_c%.17g_r%d_D%lld_n%d_%lld_%.17g%s", (long long)E, (long long)k,
           all, cap ? n->capacity : 0.0, router, (long long)(router ? D : 0), n->fx.norm, (long long)pro0.parts,
           pro0.eps, router ? tfx_cg_ws_key(&cg->g->nodes[n->inputs[1]]) : "");
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pl = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    moe_pro pro = pro_for(cg, n, D, tfx_cg_body_ptr(cg, 3), tfx_cg_body_ptr(cg, 4), tfx_cg_body_ptr(cg, 5));
    LLVMValueRef logits = router ? tfx_cg_alloca_array(cg, cg->t_f32, E, "logits") : NULL;
    LLVMValueRef lacc = router ? tfx_cg_alloca(cg, cg->t_vf, "lacc") : NULL;
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
    if (router) { /* the row's logits, computed here (prologue(x) @ router^T) */
      pro_row(cg, &pro, row.iv);
      tfx_cg_wstream ws;
      tfx_cg_ws_init(cg, &ws, &cg->g->nodes[n->inputs[1]], tfx_cg_body_ptr(cg, 2));
      router_logits(cg, &pro, tfx_cg_fptr(cg, pl, tfx_cg_mulc(cg, row.iv, D)), &ws, E, D, lacc,
                    tfx_cg_fptrc(cg, logits, 0));
      l = tfx_cg_fptrc(cg, logits, 0);
    }
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
  tfx_cg_ptr ptrs[6] = {TFX_CG_VAL(lg->id), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE, TFX_CG_NONE, TFX_CG_NONE};
  static const tfx_moe_role roles[4] = {TFX_MOE_W1, TFX_MOE_STATS, TFX_MOE_GAIN, TFX_MOE_NBIAS};
  for (int i = 0; i < 4; i++) {
    int op = tfx_moe_operand(n, roles[i]);
    if (op >= 0) ptrs[2 + i] = TFX_CG_VAL(n->inputs[op]);
  }
  tfx_cg_kernel_call_n(cg, n, NULL, cap ? 0 : 1, cap ? 1 : 0, ptrs, 6);
  return 0;
}

/* ---- the 1 x nr dot-product tile shared by MOE_UP and MOE_DOWN ---- */

typedef struct {
  int nr;
  const moe_pro *pro; /* MOE_UP's prologue (NULL: none) */
  LLVMValueRef a, acc[MOE_NB];
  const tfx_cg_wstream *ws, *ws3; /* the weights; GLU: the up projection's (NULL: none) */
  tfx_cg_wrow w[MOE_NB], w3[MOE_NB];
  LLVMValueRef acc3[MOE_NB];
} dot_tile;

static void dot_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  dot_tile *t = vctx;
  LLVMValueRef av = tfx_cg_vload(cg, tfx_cg_fptr(cg, t->a, col), nvalid);
  if (t->pro) av = pro_apply(cg, t->pro, av, col, nvalid);
  for (int j = 0; j < t->nr; j++) {
    LLVMValueRef wv = tfx_cg_ws_row_vec(cg, t->ws, &t->w[j], col, nvalid);
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->t_vf, t->acc[j], "");
    LLVMBuildStore(cg->b, tfx_cg_fma(cg, av, wv, v), t->acc[j]);
    if (!t->ws3) continue;
    LLVMValueRef uv = tfx_cg_ws_row_vec(cg, t->ws3, &t->w3[j], col, nvalid);
    LLVMValueRef u = LLVMBuildLoad2(cg->b, cg->t_vf, t->acc3[j], "");
    LLVMBuildStore(cg->b, tfx_cg_fma(cg, av, uv, u), t->acc3[j]);
  }
}

/* sums[j] = a[0..K) . (row j from the cursor w) for j < nr (and ups[j] with
 * the rows of w3 when ws3 is not NULL); acc, acc3: nr vector allocas each. */
static void emit_dots(tfx_cg *cg, const moe_pro *pro, LLVMValueRef a, const tfx_cg_wstream *ws, const tfx_cg_wrow *w,
                      const tfx_cg_wstream *ws3, const tfx_cg_wrow *w3, int64_t K, int nr, LLVMValueRef *acc,
                      LLVMValueRef *acc3, LLVMValueRef *sums, LLVMValueRef *ups) {
  dot_tile t = {.nr = nr, .pro = pro, .a = a, .ws = ws, .ws3 = ws3};
  for (int j = 0; j < nr; j++) {
    t.w[j] = tfx_cg_ws_row_next(cg, ws, w, j);
    t.acc[j] = acc[j];
    LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc[j]);
    if (ws3) {
      t.w3[j] = tfx_cg_ws_row_next(cg, ws3, w3, j);
      t.acc3[j] = acc3[j];
      LLVMBuildStore(cg->b, LLVMConstNull(cg->t_vf), acc3[j]);
    }
  }
  tfx_cg_chunks(cg, K, dot_chunk, &t);
  for (int j = 0; j < nr; j++) {
    sums[j] = tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc[j], ""));
    if (ws3) ups[j] = tfx_cg_hsum(cg, LLVMBuildLoad2(cg->b, cg->t_vf, acc3[j], ""));
  }
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
  const tfx_node *n;
  LLVMValueRef x, route, w, y; /* base pointers */
  LLVMValueRef w3;             /* MOE_UP with GLU: the up projection (else NULL) */
  tfx_cg_wstream ws, ws3;      /* the streams of w and w3 */
  LLVMValueRef res, sout;      /* MOE_DOWN: the residual, the statistics written (else NULL) */
  moe_pro pro;                 /* MOE_UP's prologue */
  int64_t E, k, N, K, groups;  /* groups: MOE_DOWN's statistics groups per row */
  LLVMValueRef acc[MOE_NB], acc3[MOE_NB];
  tfx_cg_q8rows *q8;   /* int8 experts (tfx_node_act_quant): the chunk's rows quantized, else NULL */
  LLVMValueRef t0, t1; /* the rows an item walks: the chunk's (int8: slot 0 is row t0), else 0 .. T */
  /* int8 experts in a prefill body: the chunk's (row, slot) pairs routed to
   * the item's expert, t * k + s in row order (i64 [rows * k]), and their
   * count (see routed) */
  LLVMValueRef list, count;
} moe_op;

/* ---- int8 experts in prefill: the routed rows in passes of several ----
 * An item first lists the chunk's slots routed to its expert (routed), then
 * takes them up to tfx_cg_q8rows_batch at a time (groups): each weight pair
 * of the expert's block is decoded once for the pass's rows, and every
 * row's sums are those it has alone (so the result equals one row at a
 * time, bit for bit). A pass of 4 takes 3 or 4 rows (the fourth repeats the
 * third when only 3 are left: computed, not stored), a pass of 2 two, a
 * pass of 1 the last one. */

/* One pass over listed entries g .. g + nx - 1 (clamped to the last): per
 * entry its row t[i] and slot s[i], then the caller's body, which stores
 * entry i only when i < left (the others repeat the last). */
typedef void (*moe_pass_fn)(tfx_cg *cg, moe_op *o, const LLVMValueRef *t, const LLVMValueRef *s, int nx,
                            LLVMValueRef left, void *ctx);

static void group_pass(tfx_cg *cg, moe_op *o, LLVMValueRef g, LLVMValueRef left, int nx, moe_pass_fn fn, void *ctx) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef last = tfx_cg_addc(cg, LLVMBuildLoad2(b, cg->t_i64, o->count, "cnt"), -1), t[4], sl[4];
  for (int i = 0; i < nx; i++) {
    LLVMValueRef at = tfx_cg_smin(cg, tfx_cg_addc(cg, g, i), last);
    LLVMValueRef v = LLVMBuildLoad2(b, cg->t_i64, LLVMBuildInBoundsGEP2(b, cg->t_i64, o->list, &at, 1, ""), "ts");
    t[i] = LLVMBuildSDiv(b, v, tfx_cg_i64(cg, o->k), "t");
    sl[i] = LLVMBuildSRem(b, v, tfx_cg_i64(cg, o->k), "s");
  }
  fn(cg, o, t, sl, nx, left, ctx);
}

/* The listed entries by groups of 4: a pass of tfx_cg_q8rows_batch (4)
 * rows when 3 or more are left, of 2 when 2 are, else of 1. */
static void groups(tfx_cg *cg, moe_op *o, moe_pass_fn fn, void *ctx) {
  LLVMBuilderRef b = cg->b;
  int B = tfx_cg_q8rows_batch(o->q8);
  LLVMValueRef cnt = LLVMBuildLoad2(b, cg->t_i64, o->count, "cnt");
  tfx_cg_loop lg;
  tfx_cg_for(cg, &lg, tfx_cg_i64(cg, 0), cnt, B >= 4 ? 4 : 1, "grp");
  LLVMValueRef left = LLVMBuildSub(b, cnt, lg.iv, "left");
  if (B >= 4) {
    tfx_cg_if c4, c2;
    tfx_cg_if_begin(cg, &c4, LLVMBuildICmp(b, LLVMIntSGE, left, tfx_cg_i64(cg, 3), ""), "four");
    group_pass(cg, o, lg.iv, left, 4, fn, ctx);
    tfx_cg_if_else(cg, &c4);
    tfx_cg_if_begin(cg, &c2, LLVMBuildICmp(b, LLVMIntEQ, left, tfx_cg_i64(cg, 2), ""), "two");
    group_pass(cg, o, lg.iv, left, 2, fn, ctx);
    tfx_cg_if_else(cg, &c2);
    group_pass(cg, o, lg.iv, left, 1, fn, ctx);
    tfx_cg_if_end(cg, &c2);
    tfx_cg_if_end(cg, &c4);
  } else {
    group_pass(cg, o, lg.iv, left, 1, fn, ctx);
  }
  tfx_cg_for_end(cg, &lg);
}

/* Entry i of a pass is stored when i < left: rows 0 .. 2 always (a pass of
 * 4 runs with 3 or more left), row 3 under a guard. */
static int guard_begin(tfx_cg *cg, tfx_cg_if *c, int i, LLVMValueRef left) {
  if (i < 3) return 0;
  tfx_cg_if_begin(cg, c, LLVMBuildICmp(cg->b, LLVMIntSGT, left, tfx_cg_i64(cg, i), ""), "stored");
  return 1;
}

/* An empty slot (se < 0) is written by expert 0's items: act(0) (* 0 with
 * GLU), what the unfused activation and product give; yb: the slot's block
 * of nr outputs. */
static void empty_slot(tfx_cg *cg, const moe_op *o, LLVMValueRef se, LLVMValueRef e, LLVMValueRef yb, int nr) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef empty = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSLT, se, tfx_cg_i64(cg, 0), ""),
                                    LLVMBuildICmp(b, LLVMIntEQ, e, tfx_cg_i64(cg, 0), ""), "");
  double ev = o->n->fx.act == TFX_ACT_SIGMOID && !o->w3 ? 0.5 : 0.0;
  tfx_cg_if zero;
  tfx_cg_if_begin(cg, &zero, empty, "empty");
  for (int j = 0; j < nr; j++) tfx_cg_storef(cg, LLVMConstReal(cg->t_f32, ev), tfx_cg_fptrc(cg, yb, j));
  tfx_cg_if_end(cg, &zero);
}

/* MOE_UP: the item's expert e and column block n0 (nr columns), all rows:
 * act(x[t] . w[e]) (* x[t] . w3[e]) for each slot routed to e. */
static void up_block_listed(tfx_cg *cg, moe_op *o, LLVMValueRef e, LLVMValueRef n0, int nr);

static void up_block(tfx_cg *cg, moe_op *o, LLVMValueRef e, LLVMValueRef n0, int nr) {
  if (o->list) {
    up_block_listed(cg, o, e, n0, nr);
    return;
  }
  LLVMBuilderRef b = cg->b;
  const tfx_fused *fx = &o->n->fx;
  tfx_cg_loop lt;
  tfx_cg_for(cg, &lt, o->t0, o->t1, 1, "t");
  LLVMValueRef rr = tfx_cg_fptr(cg, o->route, tfx_cg_mulc(cg, lt.iv, 2 * o->k));
  LLVMValueRef xr = tfx_cg_fptr(cg, o->x, tfx_cg_mulc(cg, lt.iv, o->K));
  tfx_cg_loop ls;
  tfx_cg_for(cg, &ls, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, o->k), 1, "s");
  LLVMValueRef se = slot_expert(cg, rr, ls.iv, o->E);
  LLVMValueRef yoff = tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->k * o->N), tfx_cg_mulc(cg, ls.iv, o->N));
  LLVMValueRef yb = tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, yoff, n0));
  tfx_cg_if mine;
  tfx_cg_if_begin(cg, &mine, LLVMBuildICmp(b, LLVMIntEQ, se, e, ""), "mine");
  pro_row(cg, &o->pro, lt.iv); /* only for a row routed to this item's expert (at most one slot is) */
  LLVMValueRef wrow = tfx_cg_add(cg, tfx_cg_mulc(cg, e, o->N), n0); /* the block's first row of w[e] */
  LLVMValueRef sums[MOE_NB], ups[MOE_NB];
  if (o->q8) { /* the row's quantized x (its prologue applied as it was quantized) */
    LLVMValueRef slot = tfx_cg_sub(cg, lt.iv, o->t0);
    tfx_cg_q8rows_dots(cg, o->q8, &slot, 1, o->w, wrow, nr, sums);
    if (o->w3) tfx_cg_q8rows_dots(cg, o->q8, &slot, 1, o->w3, wrow, nr, ups);
  } else {
    tfx_cg_wrow w3 = {0}; /* (w3's cursor first: the order the IR always had) */
    if (o->w3) w3 = tfx_cg_ws_row(cg, &o->ws3, wrow);
    tfx_cg_wrow w = tfx_cg_ws_row(cg, &o->ws, wrow);
    emit_dots(cg, &o->pro, xr, &o->ws, &w, o->w3 ? &o->ws3 : NULL, &w3, o->K, nr, o->acc, o->acc3, sums, ups);
  }
  for (int j = 0; j < nr; j++) {
    LLVMValueRef v = tfx_cg_act(cg, fx->act, pro_sum(cg, &o->pro, sums[j]));
    if (o->w3) v = LLVMBuildFMul(b, v, pro_sum(cg, &o->pro, ups[j]), "");
    tfx_cg_storef(cg, v, tfx_cg_fptrc(cg, yb, j));
  }
  tfx_cg_if_else(cg, &mine);
  empty_slot(cg, o, se, e, yb, nr);
  tfx_cg_if_end(cg, &mine);
  tfx_cg_for_end(cg, &ls);
  tfx_cg_for_end(cg, &lt);
}

/* MOE_UP in a prefill body with int8 experts: the chunk's slots routed to
 * expert e listed (empty ones written as up_block does), then the block's
 * nr weight rows of w[e] (and w3[e]) against them in passes (groups). */
typedef struct {
  LLVMValueRef n0, wrow;
  int nr;
} up_ctx;

static void up_pass(tfx_cg *cg, moe_op *o, const LLVMValueRef *t, const LLVMValueRef *s, int nx, LLVMValueRef left,
                    void *vctx) {
  const up_ctx *u = vctx;
  LLVMValueRef slots[4] = {NULL}, sums[4 * MOE_NB], ups[4 * MOE_NB];
  for (int i = 0; i < nx; i++) slots[i] = tfx_cg_sub(cg, t[i], o->t0);
  tfx_cg_q8rows_dots(cg, o->q8, slots, nx, o->w, u->wrow, u->nr, sums);
  if (o->w3) tfx_cg_q8rows_dots(cg, o->q8, slots, nx, o->w3, u->wrow, u->nr, ups);
  for (int i = 0; i < nx; i++) {
    tfx_cg_if c;
    int guarded = guard_begin(cg, &c, i, left);
    pro_row(cg, &o->pro, t[i]);
    LLVMValueRef yoff = tfx_cg_add(cg, tfx_cg_mulc(cg, t[i], o->k * o->N), tfx_cg_mulc(cg, s[i], o->N));
    LLVMValueRef yb = tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, yoff, u->n0));
    for (int j = 0; j < u->nr; j++) {
      LLVMValueRef v = tfx_cg_act(cg, o->n->fx.act, pro_sum(cg, &o->pro, sums[i * u->nr + j]));
      if (o->w3) v = LLVMBuildFMul(cg->b, v, pro_sum(cg, &o->pro, ups[i * u->nr + j]), "");
      tfx_cg_storef(cg, v, tfx_cg_fptrc(cg, yb, j));
    }
    if (guarded) tfx_cg_if_end(cg, &c);
  }
}

/* Appends t * k + s to o->list when slot s of row t (route row rr) is
 * routed to expert e; with up, an empty slot's outputs (block n0, nr
 * columns) are written instead by expert 0's items. */
static void list_slots(tfx_cg *cg, moe_op *o, LLVMValueRef e, int up, LLVMValueRef n0, int nr) {
  LLVMBuilderRef b = cg->b;
  LLVMBuildStore(b, tfx_cg_i64(cg, 0), o->count);
  tfx_cg_loop lt, ls;
  tfx_cg_for(cg, &lt, o->t0, o->t1, 1, "tl");
  LLVMValueRef rr = tfx_cg_fptr(cg, o->route, tfx_cg_mulc(cg, lt.iv, 2 * o->k));
  tfx_cg_for(cg, &ls, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, o->k), 1, "sl");
  LLVMValueRef se = slot_expert(cg, rr, ls.iv, o->E);
  tfx_cg_if mine;
  tfx_cg_if_begin(cg, &mine, LLVMBuildICmp(b, LLVMIntEQ, se, e, ""), "listed");
  LLVMValueRef cnt = LLVMBuildLoad2(b, cg->t_i64, o->count, "cnt");
  LLVMBuildStore(b, tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->k), ls.iv),
                 LLVMBuildInBoundsGEP2(b, cg->t_i64, o->list, &cnt, 1, ""));
  LLVMBuildStore(b, tfx_cg_addc(cg, cnt, 1), o->count);
  if (up) {
    tfx_cg_if_else(cg, &mine);
    LLVMValueRef yoff = tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->k * o->N), tfx_cg_mulc(cg, ls.iv, o->N));
    empty_slot(cg, o, se, e, tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, yoff, n0)), nr);
  }
  tfx_cg_if_end(cg, &mine);
  tfx_cg_for_end(cg, &ls);
  tfx_cg_for_end(cg, &lt);
}

static void up_block_listed(tfx_cg *cg, moe_op *o, LLVMValueRef e, LLVMValueRef n0, int nr) {
  list_slots(cg, o, e, 1, n0, nr);
  up_ctx u = {n0, tfx_cg_add(cg, tfx_cg_mulc(cg, e, o->N), n0), nr};
  groups(cg, o, up_pass, &u);
}

/* MOE_DOWN's pass: y[t] += gate * (h[t, s] . w[e, n0 + j]) for the pass's
 * listed slots. */
typedef up_ctx down_ctx;

static void down_pass(tfx_cg *cg, moe_op *o, const LLVMValueRef *t, const LLVMValueRef *s, int nx, LLVMValueRef left,
                      void *vctx) {
  const down_ctx *d = vctx;
  LLVMValueRef slots[4] = {NULL}, sums[4 * MOE_NB];
  for (int i = 0; i < nx; i++) slots[i] = tfx_cg_add(cg, tfx_cg_mulc(cg, tfx_cg_sub(cg, t[i], o->t0), o->k), s[i]);
  tfx_cg_q8rows_dots(cg, o->q8, slots, nx, o->w, d->wrow, d->nr, sums);
  for (int i = 0; i < nx; i++) {
    tfx_cg_if c;
    int guarded = guard_begin(cg, &c, i, left);
    LLVMValueRef rr = tfx_cg_fptr(cg, o->route, tfx_cg_mulc(cg, t[i], 2 * o->k));
    LLVMValueRef gate = tfx_cg_loadf(cg, tfx_cg_fptr(cg, rr, tfx_cg_addc(cg, s[i], o->k)));
    LLVMValueRef yr = tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, tfx_cg_mulc(cg, t[i], o->N), d->n0));
    for (int j = 0; j < d->nr; j++) {
      LLVMValueRef p = tfx_cg_fptrc(cg, yr, j);
      tfx_cg_storef(cg, tfx_cg_fma(cg, gate, sums[i * d->nr + j], tfx_cg_loadf(cg, p)), p);
    }
    if (guarded) tfx_cg_if_end(cg, &c);
  }
}

/* MOE_DOWN: the item's column block n0 (nr columns), every expert and row;
 * the block starts from the residual (or 0). */
static void down_block(tfx_cg *cg, const moe_op *o, LLVMValueRef n0, int nr) {
  LLVMBuilderRef b = cg->b;
  tfx_cg_loop lz;
  tfx_cg_for(cg, &lz, o->t0, o->t1, 1, "tz");
  LLVMValueRef zoff = tfx_cg_add(cg, tfx_cg_mulc(cg, lz.iv, o->N), n0);
  LLVMValueRef yz = tfx_cg_fptr(cg, o->y, zoff), rz = o->res ? tfx_cg_fptr(cg, o->res, zoff) : NULL;
  for (int j = 0; j < nr; j++)
    tfx_cg_storef(cg, rz ? tfx_cg_loadf(cg, tfx_cg_fptrc(cg, rz, j)) : LLVMConstReal(cg->t_f32, 0.0),
                  tfx_cg_fptrc(cg, yz, j));
  tfx_cg_for_end(cg, &lz);
  tfx_cg_loop le;
  tfx_cg_for(cg, &le, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, o->E), 1, "e");
  LLVMValueRef wrow = tfx_cg_add(cg, tfx_cg_mulc(cg, le.iv, o->N), n0); /* the block's first row of w[e] */
  if (o->list) { /* int8 experts in prefill: the slots routed to e, in passes */
    list_slots(cg, (moe_op *)o, le.iv, 0, n0, nr);
    down_ctx dc = {n0, wrow, nr};
    groups(cg, (moe_op *)o, down_pass, &dc);
    tfx_cg_for_end(cg, &le);
    return;
  }
  tfx_cg_wrow wb = {0};
  if (!o->q8) wb = tfx_cg_ws_row(cg, &o->ws, wrow);
  tfx_cg_loop lt;
  tfx_cg_for(cg, &lt, o->t0, o->t1, 1, "t");
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
  if (o->q8) { /* h[t, s] quantized in slot (t - t0) k + s */
    LLVMValueRef slot = tfx_cg_add(cg, tfx_cg_mulc(cg, tfx_cg_sub(cg, lt.iv, o->t0), o->k), ls.iv);
    tfx_cg_q8rows_dots(cg, o->q8, &slot, 1, o->w, wrow, nr, sums);
  } else
    emit_dots(cg, NULL, hr, &o->ws, &wb, NULL, NULL, o->K, nr, (LLVMValueRef *)o->acc, NULL, sums, NULL);
  for (int j = 0; j < nr; j++) {
    LLVMValueRef p = tfx_cg_fptrc(cg, yr, j);
    tfx_cg_storef(cg, tfx_cg_fma(cg, gate, sums[j], tfx_cg_loadf(cg, p)), p);
  }
  tfx_cg_if_end(cg, &mine);
  tfx_cg_for_end(cg, &ls);
  tfx_cg_for_end(cg, &lt);
  tfx_cg_for_end(cg, &le);
}

/* One item's block of `width` (static) columns from n0: sub-blocks of
 * MOE_NB; MOE_DOWN with statistics then writes the partial statistics of
 * the finished block (one TFX_STATS_GROUP group) of every row. */
static void block(tfx_cg *cg, moe_op *o, int up, LLVMValueRef e, LLVMValueRef blk, LLVMValueRef n0, int width) {
  for (int off = 0; off < width; off += MOE_NB) {
    int nr = width - off < MOE_NB ? width - off : MOE_NB;
    if (up)
      up_block(cg, o, e, tfx_cg_addc(cg, n0, off), nr);
    else
      down_block(cg, o, tfx_cg_addc(cg, n0, off), nr);
  }
  if (!o->sout) return;
  tfx_cg_loop lt;
  tfx_cg_for(cg, &lt, o->t0, o->t1, 1, "ts");
  LLVMValueRef src = tfx_cg_fptr(cg, o->y, tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->N), n0));
  LLVMValueRef dst =
      tfx_cg_fptr(cg, o->sout, tfx_cg_mulc(cg, tfx_cg_add(cg, tfx_cg_mulc(cg, lt.iv, o->groups), blk), 2));
  tfx_cg_stats_part(cg, src, width, o->n->fx.stats_out == TFX_NORM_LAYER, dst);
  tfx_cg_for_end(cg, &lt);
}

/* The item loop (up: item = block * E + expert; down: item = block) over
 * the rows o->t0 .. o->t1: blocks of bw columns, `full` whole ones, then
 * one of `part` columns. */
static void items(tfx_cg *cg, moe_op *o, int up, int64_t E, int64_t bw, int64_t full, int part) {
  tfx_cg_loop it;
  tfx_cg_for(cg, &it, cg->kbegin, cg->kend, 1, "item");
  LLVMValueRef blk = up ? LLVMBuildSDiv(cg->b, it.iv, tfx_cg_i64(cg, E), "blk") : it.iv;
  LLVMValueRef e = up ? LLVMBuildSRem(cg->b, it.iv, tfx_cg_i64(cg, E), "e") : NULL;
  LLVMValueRef n0 = tfx_cg_mulc(cg, blk, bw);
  tfx_cg_if c;
  int guarded = full > 0 && part > 0;
  for (int variant = 0; variant < 2; variant++) {
    int width = variant == 0 ? (int)bw : part;
    if (variant == 0 && full == 0) continue;
    if (variant == 1 && part == 0) continue;
    if (guarded && variant == 0)
      tfx_cg_if_begin(cg, &c, LLVMBuildICmp(cg->b, LLVMIntSLT, blk, tfx_cg_i64(cg, full), ""), "fullblk");
    block(cg, o, up, e, blk, n0, width);
    if (guarded && variant == 0) tfx_cg_if_else(cg, &c);
    if (guarded && variant == 1) tfx_cg_if_end(cg, &c);
  }
  tfx_cg_for_end(cg, &it);
}

/* MOE_UP's prologue as the int8 rows' x_load hook. */
static LLVMValueRef pro_x_load(tfx_cg *cg, const tfx_cg_gemm *G, int i, LLVMValueRef xv, LLVMValueRef k, int nvalid) {
  (void)i;
  const moe_op *o = G->ctx;
  return pro_apply(cg, &o->pro, xv, k, nvalid);
}
static const tfx_cg_gemm_hooks pro_hooks = {NULL, NULL, pro_x_load, NULL};

static int emit_experts(tfx_cg *cg, const tfx_node *n, int up) {
  const tfx_graph *g = cg->g;
  const tfx_fused *fx = &n->fx;
  const tfx_node *x = &g->nodes[n->inputs[0]], *route = &g->nodes[n->inputs[1]];
  const tfx_node *w = &g->nodes[n->inputs[2]];
  int64_t E = w->type.dims[0], N = w->type.dims[1], K = w->type.dims[2], k = tfx_node_cols(route) / 2;
  int sn = !up && fx->stats_out ? tfx_fl_stats_node(g, n->id) : -1;
  if (!up && fx->stats_out && sn < 0)
    return tfx_cg_fail(cg, "backend: %%%d (moe_down): writes statistics no norm_stats reads", n->id);
  /* items: blocks of MOE_NB columns; MOE_DOWN writing statistics: groups of
   * TFX_STATS_GROUP columns (an item finishes a whole group) */
  int64_t bw = sn >= 0 ? TFX_STATS_GROUP : MOE_NB;
  int64_t blocks = (N + bw - 1) / bw, full = N / bw;
  int part = (int)(N % bw), glu = up && fx->glu, q8 = tfx_node_act_quant(g, n);
  moe_pro pro0 = up ? pro_for(cg, n, K, NULL, NULL, NULL) : (moe_pro){0};
  char key[216];
  snprintf(key, sizeof key, "moe_%s_E%lld_N%lld_K%lld_k%lld_a%d_g%d_n%d_%lld_%.17g_r%d_so%d%s%s", up ? "up" : "down",
           (long long)E, (long long)N, (long long)K, (long long)k, fx->act, glu, up ? fx->norm : 0,
           (long long)pro0.parts, pro0.eps, !up && fx->residual, sn >= 0 ? fx->stats_out : 0, tfx_cg_ws_key(w),
           q8 ? "_q8" : "");
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    moe_op o = {.n = n,
                .x = tfx_cg_body_ptr(cg, 0),
                .route = tfx_cg_body_ptr(cg, 1),
                .w = tfx_cg_body_ptr(cg, 2),
                .y = tfx_cg_body_ptr(cg, 3),
                .w3 = glu ? tfx_cg_body_ptr(cg, 4) : NULL,
                .res = !up && fx->residual ? tfx_cg_body_ptr(cg, 4) : NULL,
                .sout = sn >= 0 ? tfx_cg_body_ptr(cg, 5) : NULL,
                .E = E,
                .k = k,
                .N = N,
                .K = K,
                .groups = blocks};
    if (up) o.pro = pro_for(cg, n, K, tfx_cg_body_ptr(cg, 5), tfx_cg_body_ptr(cg, 6), tfx_cg_body_ptr(cg, 7));
    tfx_cg_ws_init(cg, &o.ws, w, o.w);
    if (glu) tfx_cg_ws_init(cg, &o.ws3, &g->nodes[n->inputs[tfx_moe_operand(n, TFX_MOE_W3)]], o.w3);
    for (int j = 0; j < MOE_NB; j++) {
      o.acc[j] = tfx_cg_alloca(cg, cg->t_vf, "acc");
      o.acc3[j] = glu ? tfx_cg_alloca(cg, cg->t_vf, "acc3") : NULL;
    }
    if (q8) {
      /* int8 experts: the rows quantized once per call (per thread) in
       * chunks of stack slots (MOE_UP: x[t] through the prologue; MOE_DOWN:
       * h[t, s], k slots per row), then the items over the chunk's rows */
      const tfx_cg_gemm_hooks *hooks = up && o.pro.norm ? &pro_hooks : NULL;
      int64_t per = up ? 1 : k, most = cg->decode ? 1 : tfx_node_rows(x, g->max_seq);
      o.q8 = tfx_cg_q8rows_new(cg, w, K, (most > 0 ? most : 1) * per, per, o.x, hooks, &o);
      if (!o.q8) {
        tfx_cg_body_end(cg);
        return -1;
      }
      int64_t ct = tfx_cg_q8rows_slots(o.q8) / per;
      if (!cg->decode && tfx_cg_q8rows_batch(o.q8) > 1) { /* prefill: the routed rows in passes of several */
        o.list = tfx_cg_alloca_array(cg, cg->t_i64, ct * k, "moelist");
        o.count = tfx_cg_alloca(cg, cg->t_i64, "moecnt");
      }
      tfx_cg_loop lc;
      tfx_cg_for(cg, &lc, tfx_cg_i64(cg, 0), cg->T, ct, "qchunk");
      o.t0 = lc.iv;
      o.t1 = tfx_cg_smin(cg, tfx_cg_addc(cg, lc.iv, ct), cg->T);
      tfx_cg_loop lq;
      tfx_cg_for(cg, &lq, o.t0, o.t1, 1, "qrow");
      if (up) pro_row(cg, &o.pro, lq.iv);
      for (int64_t sl = 0; sl < per; sl++) {
        LLVMValueRef slot = tfx_cg_addc(cg, tfx_cg_mulc(cg, tfx_cg_sub(cg, lq.iv, o.t0), per), sl);
        tfx_cg_q8rows_quant(cg, o.q8, slot, tfx_cg_addc(cg, tfx_cg_mulc(cg, lq.iv, per), sl));
      }
      tfx_cg_for_end(cg, &lq);
      items(cg, &o, up, E, bw, full, part);
      tfx_cg_for_end(cg, &lc);
      tfx_cg_q8rows_free(o.q8);
    } else {
      o.t0 = tfx_cg_i64(cg, 0);
      o.t1 = cg->T;
      items(cg, &o, up, E, bw, full, part);
    }
    tfx_cg_body_end(cg);
  }
  tfx_cg_ptr ptrs[8] = {TFX_CG_VAL(x->id), TFX_CG_VAL(route->id), TFX_CG_VAL(w->id), TFX_CG_VAL(n->id),
                        TFX_CG_NONE,       TFX_CG_NONE,           TFX_CG_NONE,       TFX_CG_NONE};
  if (up) {
    static const tfx_moe_role roles[4] = {TFX_MOE_W3, TFX_MOE_STATS, TFX_MOE_GAIN, TFX_MOE_NBIAS};
    for (int i = 0; i < 4; i++) {
      int op = tfx_moe_operand(n, roles[i]);
      if (op >= 0) ptrs[4 + i] = TFX_CG_VAL(n->inputs[op]);
    }
  } else {
    if (fx->residual) ptrs[4] = TFX_CG_VAL(n->inputs[3]);
    if (sn >= 0) ptrs[5] = TFX_CG_VAL(sn);
  }
  tfx_cg_kernel_call_n(cg, n, NULL, 0, up ? blocks * E : blocks, ptrs, 8);
  return 0;
}

int tfx_cg_emit_moe_up(tfx_cg *cg, const tfx_node *n) { return emit_experts(cg, n, 1); }
int tfx_cg_emit_moe_down(tfx_cg *cg, const tfx_node *n) { return emit_experts(cg, n, 0); }
