/* backend/k_positions.c — kernels of the absolute position ops. Work items
 * are rows t (position p = pos + t).
 *  - POSITIONS: row t of the result is row p + offset of the table, copied in vectors;
 *    with segment ids (packed sequences) p = t - the first row of t's segment;
 *    with pad = id (pad_skip, RoBERTa) p = pos + the ids before row t that are
 *    not the pad id (a loop over them), and a pad token reads row offset - 1;
 *    a p outside the table (impossible through the runtime: max_pos >=
 *    max_seq is checked at compile time) reads the last row instead.
 *  - SINUSOIDAL: PE[p, 2i] = sin(p * f_i), PE[p, 2i+1] = cos(p * f_i) with
 *    f_i = base^(-2i/D) a compile-time table; angles and sin/cos in double
 *    (inline polynomial with a 3-part pi/2 reduction, as RoPE), one sincos per
 *    column pair, rounded to f32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cg.h"

typedef struct {
  LLVMValueRef src, dst;
} pos_copy;

static void copy_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  pos_copy *c = vctx;
  tfx_cg_vstore(cg, tfx_cg_vload(cg, tfx_cg_fptr(cg, c->src, col), nvalid), tfx_cg_fptr(cg, c->dst, col), nvalid);
}

int tfx_cg_emit_positions(tfx_cg *cg, const tfx_node *n) {
  const tfx_node *table = &cg->g->nodes[n->inputs[0]];
  int64_t P = table->type.dims[0], D = table->type.dims[1];
  int segs = n->n_inputs == 3, pad = n->pad_skip;
  char key[96];
  snprintf(key, sizeof key, "positions_P%lld_D%lld%s", (long long)P, (long long)D, segs ? "_seg" : pad ? "_pad" : "");
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef ptab = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef p;
    if (segs) { /* packed sequences: the row's distance from its segment's first row (k_segments.c) */
      LLVMValueRef lo, hi;
      tfx_cg_segment_bounds(cg, tfx_cg_body_ptr(cg, 2), row.iv, cg->T, &lo, &hi);
      p = tfx_cg_sub(cg, row.iv, lo);
    } else if (pad) { /* pos + the tokens before the row that are not pad tokens */
      LLVMBuilderRef b = cg->b;
      LLVMValueRef ids = tfx_cg_body_ptr(cg, 2), pad_id = LLVMConstInt(cg->t_i32, (unsigned long long)n->pad_id, 1);
      LLVMValueRef count = tfx_cg_alloca(cg, cg->t_i64, "counted");
      LLVMBuildStore(b, tfx_cg_i64(cg, 0), count);
      tfx_cg_loop j;
      tfx_cg_for(cg, &j, tfx_cg_i64(cg, 0), row.iv, 1, "before");
      LLVMValueRef id = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildGEP2(b, cg->t_i32, ids, &j.iv, 1, ""), "");
      LLVMValueRef kept = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntNE, id, pad_id, ""), cg->t_i64, "");
      LLVMBuildStore(b, tfx_cg_add(cg, LLVMBuildLoad2(b, cg->t_i64, count, ""), kept), count);
      tfx_cg_for_end(cg, &j);
      p = tfx_cg_add(cg, tfx_cg_row_pos(cg, tfx_cg_i64(cg, 0)), LLVMBuildLoad2(b, cg->t_i64, count, "counted"));
      p = LLVMBuildAdd(b, p, tfx_cg_i64(cg, n->pos_offset), "");
      LLVMValueRef own = LLVMBuildLoad2(b, cg->t_i32, LLVMBuildGEP2(b, cg->t_i32, ids, &row.iv, 1, ""), "");
      p = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, own, pad_id, ""), tfx_cg_i64(cg, n->pos_offset - 1), p, "");
    } else {
      p = tfx_cg_row_pos(cg, row.iv);
    }
    if (n->pos_offset && !pad) p = LLVMBuildAdd(cg->b, p, tfx_cg_i64(cg, n->pos_offset), "");
    LLVMValueRef ok = LLVMBuildICmp(cg->b, LLVMIntULT, p, tfx_cg_i64(cg, P), "");
    p = LLVMBuildSelect(cg->b, ok, p, tfx_cg_i64(cg, P - 1), "");
    pos_copy c = {tfx_cg_fptr(cg, ptab, tfx_cg_mulc(cg, p, D)), tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, D))};
    tfx_cg_chunks(cg, D, copy_chunk, &c);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, 1, 0,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(table->id), TFX_CG_VAL(n->id),
                                     segs  ? TFX_CG_VAL(n->inputs[2])
                                     : pad ? TFX_CG_VAL(n->inputs[1])
                                           : TFX_CG_NONE,
                                     TFX_CG_NONE});
  return 0;
}

/* A private constant array of the frequencies base^(-2i/D), i < ceil(D/2). */
static LLVMValueRef freq_table(tfx_cg *cg, double base, int64_t D, int64_t pairs) {
  LLVMValueRef *vals = malloc((size_t)pairs * sizeof *vals);
  if (!vals) return NULL;
  for (int64_t i = 0; i < pairs; i++) vals[i] = LLVMConstReal(cg->t_f64, 1.0 / pow(base, (double)(2 * i) / (double)D));
  LLVMValueRef init = LLVMConstArray2(cg->t_f64, vals, (uint64_t)pairs);
  free(vals);
  return tfx_cg_const_global(cg, "tfx_sinusoidal_freq", init, 0);
}

int tfx_cg_sinusoidal_row(tfx_cg *cg, double base, int64_t D, LLVMValueRef p, LLVMValueRef yrow, int add) {
  LLVMBuilderRef b = cg->b;
  int64_t pairs = D / 2, odd = D % 2;
  LLVMValueRef table = freq_table(cg, base, D, pairs + odd);
  if (!table) return tfx_cg_fail(cg, "backend: out of memory");
  for (int last = 0; last < 2; last++) {
    /* pass 0: the full (sin, cos) pairs; pass 1: the lone sin of an odd D */
    if ((last && !odd) || (!last && !pairs)) continue;
    tfx_cg_loop li;
    LLVMValueRef i = tfx_cg_i64(cg, pairs);
    if (!last) {
      tfx_cg_for(cg, &li, tfx_cg_i64(cg, 0), tfx_cg_i64(cg, pairs), 1, "i");
      i = li.iv;
    }
    LLVMValueRef fidx[2] = {tfx_cg_i64(cg, 0), i};
    LLVMValueRef fp = LLVMBuildInBoundsGEP2(b, LLVMGlobalGetValueType(table), table, fidx, 2, "");
    LLVMValueRef si, co;
    tfx_cg_sincos_f64(cg, LLVMBuildFMul(b, p, LLVMBuildLoad2(b, cg->t_f64, fp, ""), "angle"), &si, &co);
    LLVMValueRef v[2] = {LLVMBuildFPTrunc(b, si, cg->t_f32, ""), LLVMBuildFPTrunc(b, co, cg->t_f32, "")};
    LLVMValueRef at = tfx_cg_fptr(cg, yrow, tfx_cg_mulc(cg, i, 2));
    for (int k = 0; k < (last ? 1 : 2); k++) {
      LLVMValueRef ak = tfx_cg_fptrc(cg, at, k);
      tfx_cg_storef(cg, add ? LLVMBuildFAdd(b, tfx_cg_loadf(cg, ak), v[k], "") : v[k], ak);
    }
    if (!last) tfx_cg_for_end(cg, &li);
  }
  return 0;
}

int tfx_cg_emit_sinusoidal(tfx_cg *cg, const tfx_node *n) {
  LLVMBuilderRef b = cg->b;
  int64_t D = tfx_node_cols(n);
  char key[96];
  snprintf(key, sizeof key, "sinusoidal_D%lld_b%.17g", (long long)D, n->theta);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef py = tfx_cg_body_ptr(cg, 0);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef p = LLVMBuildSIToFP(b, tfx_cg_row_pos(cg, row.iv), cg->t_f64, "p");
    if (tfx_cg_sinusoidal_row(cg, n->theta, D, p, tfx_cg_fptr(cg, py, tfx_cg_mulc(cg, row.iv, D)), 0)) return -1;
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, 1, 0, (tfx_cg_ptr[4]){TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}
