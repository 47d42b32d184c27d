/* backend/k_elementwise.c — kernels of the elementwise ops: ADD/SUB/MUL
 * (same shape, or a row [N] broadcast over the rows), SILU, GELU (erf and
 * tanh forms), RELU, SIGMOID, AFFINE (x * scale + shift, when not folded into a
 * param), SOFTCAP (c * tanh(x / c)), and the plain row copy used when the graph's
 * output is its input. Work items are rows; each row is processed in vectors of W
 * floats with a masked tail. */
#include <stdio.h>

#include "cg.h"

/* the vector operation of one op: (a) or (a, b) -> result */
typedef LLVMValueRef (*ew_fn)(tfx_cg *cg, const tfx_node *n, LLVMValueRef a, LLVMValueRef b);

typedef struct {
  const tfx_node *n;
  ew_fn fn;
  LLVMValueRef a, b, y; /* row pointers */
} ew_ctx;

static LLVMValueRef v_silu(tfx_cg *cg, const tfx_node *n, LLVMValueRef v, LLVMValueRef unused) {
  (void)n, (void)unused;
  return LLVMBuildFMul(cg->b, v, tfx_cg_sigmoid(cg, v), "");
}

static LLVMValueRef v_gelu(tfx_cg *cg, const tfx_node *n, LLVMValueRef v, LLVMValueRef unused) {
  (void)unused;
  return n->gelu_tanh ? tfx_cg_gelu_tanh(cg, v) : tfx_cg_gelu_erf(cg, v);
}

static LLVMValueRef v_sigmoid(tfx_cg *cg, const tfx_node *n, LLVMValueRef v, LLVMValueRef unused) {
  (void)n, (void)unused;
  return tfx_cg_sigmoid(cg, v);
}

static LLVMValueRef v_relu(tfx_cg *cg, const tfx_node *n, LLVMValueRef v, LLVMValueRef unused) {
  (void)n, (void)unused;
  LLVMValueRef zero = LLVMConstNull(LLVMTypeOf(v));
  return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGT, v, zero, ""), v, zero, "");
}

static LLVMValueRef v_affine(tfx_cg *cg, const tfx_node *n, LLVMValueRef v, LLVMValueRef unused) {
  (void)unused;
  LLVMValueRef r = LLVMBuildFMul(cg->b, v, tfx_cg_splat(cg, LLVMConstReal(cg->t_f32, n->scale)), "");
  return LLVMBuildFAdd(cg->b, r, tfx_cg_splat(cg, LLVMConstReal(cg->t_f32, n->shift)), "");
}

static LLVMValueRef v_softcap(tfx_cg *cg, const tfx_node *n, LLVMValueRef v, LLVMValueRef unused) {
  (void)unused;
  return tfx_cg_softcap(cg, v, n->softcap);
}

static LLVMValueRef v_copy(tfx_cg *cg, const tfx_node *n, LLVMValueRef v, LLVMValueRef unused) {
  (void)cg, (void)n, (void)unused;
  return v;
}

static LLVMValueRef v_add(tfx_cg *cg, const tfx_node *n, LLVMValueRef a, LLVMValueRef b) {
  (void)n;
  return LLVMBuildFAdd(cg->b, a, b, "");
}

static LLVMValueRef v_sub(tfx_cg *cg, const tfx_node *n, LLVMValueRef a, LLVMValueRef b) {
  (void)n;
  return LLVMBuildFSub(cg->b, a, b, "");
}

static LLVMValueRef v_mul(tfx_cg *cg, const tfx_node *n, LLVMValueRef a, LLVMValueRef b) {
  (void)n;
  return LLVMBuildFMul(cg->b, a, b, "");
}

static void binary_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  ew_ctx *c = vctx;
  LLVMValueRef va = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->a, col), nvalid);
  LLVMValueRef vb = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->b, col), nvalid);
  LLVMValueRef r = c->fn(cg, c->n, va, vb); /* before the store's address (as it always was emitted) */
  tfx_cg_vstore(cg, r, tfx_cg_fptr(cg, c->y, col), nvalid);
}

static void unary_chunk(tfx_cg *cg, void *vctx, LLVMValueRef col, int nvalid) {
  ew_ctx *c = vctx;
  LLVMValueRef v = tfx_cg_vload(cg, tfx_cg_fptr(cg, c->a, col), nvalid);
  tfx_cg_vstore(cg, c->fn(cg, c->n, v, NULL), tfx_cg_fptr(cg, c->y, col), nvalid);
}

static int emit_binary(tfx_cg *cg, const tfx_node *n, ew_fn fn) {
  const tfx_node *a = &cg->g->nodes[n->inputs[0]];
  const tfx_node *b = &cg->g->nodes[n->inputs[1]];
  int64_t cols = tfx_node_cols(n), per_t, fixed;
  int bcast = !tfx_type_equal(&a->type, &b->type);
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[96];
  snprintf(key, sizeof key, "%s_c%lld_b%d", tfx_op_name(n->op), (long long)cols, bcast);
  int fresh = tfx_cg_body_begin_node(cg, n, key);
  if (fresh < 0) return -1;
  if (fresh) {
    LLVMValueRef pa = tfx_cg_body_ptr(cg, 0), pb = tfx_cg_body_ptr(cg, 1), py = tfx_cg_body_ptr(cg, 2);
    tfx_cg_loop row;
    tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
    LLVMValueRef off = tfx_cg_mulc(cg, row.iv, cols);
    ew_ctx c = {n, fn, tfx_cg_fptr(cg, pa, off), bcast ? pb : tfx_cg_fptr(cg, pb, off), tfx_cg_fptr(cg, py, off)};
    tfx_cg_chunks(cg, cols, binary_chunk, &c);
    tfx_cg_for_end(cg, &row);
    tfx_cg_body_end(cg);
  }
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(a->id), TFX_CG_VAL(b->id), TFX_CG_VAL(n->id), TFX_CG_NONE});
  return 0;
}

int tfx_cg_emit_add(tfx_cg *cg, const tfx_node *n) { return emit_binary(cg, n, v_add); }
int tfx_cg_emit_sub(tfx_cg *cg, const tfx_node *n) { return emit_binary(cg, n, v_sub); }
int tfx_cg_emit_mul(tfx_cg *cg, const tfx_node *n) { return emit_binary(cg, n, v_mul); }

/* The row loop of a unary op (fn; its body keyed with n's attributes) or of
 * a copy (v_copy: keyed by its width only). */
static int unary_body(tfx_cg *cg, const tfx_node *n, ew_fn fn, const char *key, int64_t cols) {
  int fresh = fn == v_copy ? tfx_cg_body_begin(cg, key) : tfx_cg_body_begin_node(cg, n, key);
  if (fresh <= 0) return fresh;
  LLVMValueRef px = tfx_cg_body_ptr(cg, 0), py = tfx_cg_body_ptr(cg, 1);
  tfx_cg_loop row;
  tfx_cg_for(cg, &row, cg->kbegin, cg->kend, 1, "row");
  LLVMValueRef off = tfx_cg_mulc(cg, row.iv, cols);
  ew_ctx c = {n, fn, tfx_cg_fptr(cg, px, off), NULL, tfx_cg_fptr(cg, py, off)};
  tfx_cg_chunks(cg, cols, unary_chunk, &c);
  tfx_cg_for_end(cg, &row);
  tfx_cg_body_end(cg);
  return 1;
}

static int emit_unary(tfx_cg *cg, const tfx_node *n, ew_fn fn) {
  int64_t cols = tfx_node_cols(n), per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[96];
  snprintf(key, sizeof key, "%s%s_c%lld", tfx_op_name(n->op), n->op == TFX_OP_GELU && n->gelu_tanh ? "tanh" : "",
           (long long)cols);
  if (unary_body(cg, n, fn, key, cols) < 0) return -1;
  tfx_cg_kernel_call(cg, n, NULL, per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(n->inputs[0]), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}

int tfx_cg_emit_silu(tfx_cg *cg, const tfx_node *n) { return emit_unary(cg, n, v_silu); }
int tfx_cg_emit_gelu(tfx_cg *cg, const tfx_node *n) { return emit_unary(cg, n, v_gelu); }
int tfx_cg_emit_relu(tfx_cg *cg, const tfx_node *n) { return emit_unary(cg, n, v_relu); }
int tfx_cg_emit_sigmoid(tfx_cg *cg, const tfx_node *n) { return emit_unary(cg, n, v_sigmoid); }
int tfx_cg_emit_affine(tfx_cg *cg, const tfx_node *n) { return emit_unary(cg, n, v_affine); }
int tfx_cg_emit_softcap(tfx_cg *cg, const tfx_node *n) { return emit_unary(cg, n, v_softcap); }

/* Copies the value of node src (same type as n) into the OUTPUT argument. */
int tfx_cg_emit_copy(tfx_cg *cg, const tfx_node *n, int src_id) {
  int64_t cols = tfx_node_cols(n), per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[64];
  snprintf(key, sizeof key, "copy_c%lld", (long long)cols);
  if (unary_body(cg, n, v_copy, key, cols) < 0) return -1;
  tfx_cg_kernel_call(cg, n, "copy", per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(src_id), TFX_CG_OUT, TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}

/* Copies the value of node src (same shape as n) into n's own value: an op
 * that updates some rows of its first operand in place, when the memory
 * plan gave it a slot of its own (GLOBAL_ATTENTION). */
int tfx_cg_emit_value_copy(tfx_cg *cg, const tfx_node *n, int src_id) {
  int64_t cols = tfx_node_cols(n), per_t, fixed;
  tfx_cg_rows_split(n, &per_t, &fixed);
  char key[64];
  snprintf(key, sizeof key, "copy_c%lld", (long long)cols);
  if (unary_body(cg, n, v_copy, key, cols) < 0) return -1;
  tfx_cg_kernel_call(cg, n, "vcopy", per_t, fixed,
                     (tfx_cg_ptr[4]){TFX_CG_VAL(src_id), TFX_CG_VAL(n->id), TFX_CG_NONE, TFX_CG_NONE});
  return 0;
}
