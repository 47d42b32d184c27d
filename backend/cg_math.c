/* backend/cg_math.c — transcendental functions emitted inline as polynomials
 * (never libm calls), generic over an f32 scalar or an f32 vector:
 *  - exp: Cody-Waite reduction by ln 2, Cephes' degree-7 polynomial, 2^n
 *    applied as two factors; x > ln(FLT_MAX) -> +inf, x < -86.5 -> 0 (no
 *    denormal result or intermediate: their arithmetic costs a microcode
 *    assist, and e^-inf of every masked attention score made one), NaN -> NaN
 *    (<= 2 ulp);
 *  - sigmoid 1/(1+e^-x); GELU tanh form as x*sigmoid(2u) (the same function,
 *    without the cancellation of 1 + tanh(u));
 *  - tanh: its odd Taylor series through x^15 for |x| < 0.5 (~1e-8 relative
 *    from the series), else sign(x) (1 - e) / (1 + e), e = exp(-2|x|) <= 1/e,
 *    so no cancellation anywhere; soft-capping c tanh(x / c) on it;
 *  - erf: Taylor series (|z| < 1, ~2e-7 relative) and 1 - erfc with the
 *    Numerical-Recipes erfc Chebyshev fit, e^-z^2 split exactly (|z| >= 1);
 *    GELU erf form uses erfc directly for negative inputs (no cancellation);
 *  - sin/cos of a scalar double (fdlibm kernels, 3-part pi/2 reduction), for
 *    RoPE angles.
 * Worst relative errors against libm in double over dense sweeps, checked by
 * tests/test_vector_math.c (docs/performance.md, "Vector math"): sigmoid and
 * silu 1.6e-7, softmax 1.5e-7, gelu (erf) 7.9e-7 (4.1e-6 without FMA, in the
 * tail near x = -11), gelu (tanh) 1.1e-5 (at x ~ -9, where exp's argument of
 * ~66 amplifies its own f32 rounding; 1.3e-6 for |x| < 4). */
#include <math.h>

#include "cg.h"

static LLVMValueRef K(tfx_cg *cg, LLVMTypeRef ty, double v) { return tfx_cg_fconst(cg, ty, v); }

static LLVMTypeRef int_type_like(tfx_cg *cg, LLVMTypeRef ty) {
  if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind) return LLVMVectorType(cg->t_i32, LLVMGetVectorSize(ty));
  return cg->t_i32;
}

static LLVMValueRef iconst(LLVMTypeRef ity, int64_t v) {
  if (LLVMGetTypeKind(ity) == LLVMVectorTypeKind) {
    unsigned n = LLVMGetVectorSize(ity);
    LLVMValueRef s = LLVMConstInt(LLVMGetElementType(ity), (unsigned long long)v, 1);
    LLVMValueRef e[64];
    for (unsigned i = 0; i < n && i < 64; i++) e[i] = s;
    return LLVMConstVector(e, n);
  }
  return LLVMConstInt(ity, (unsigned long long)v, 1);
}

static LLVMValueRef sel(tfx_cg *cg, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b, LLVMValueRef t,
                        LLVMValueRef f) {
  return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, p, a, b, ""), t, f, "");
}

/* Horner: c[0] + x*(c[1] + x*(... c[n-1])) */
static LLVMValueRef horner(tfx_cg *cg, LLVMValueRef x, const double *c, int n) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef p = K(cg, ty, c[n - 1]);
  for (int i = n - 2; i >= 0; i--) p = tfx_cg_fma(cg, p, x, K(cg, ty, c[i]));
  return p;
}

LLVMValueRef tfx_cg_exp(tfx_cg *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef ty = LLVMTypeOf(x), ity = int_type_like(cg, ty);
  LLVMValueRef xc = sel(cg, LLVMRealOGT, x, K(cg, ty, 88.8), K(cg, ty, 88.8), x);
  /* held at -86.5, where y * 2^n is still a normal float: below, the result is 0 (as under
   * flush-to-zero) instead of a denormal, whose arithmetic costs a microcode assist (~100+ cycles
   * per instruction; the exponent of every masked score, -inf, took one) */
  xc = sel(cg, LLVMRealOLT, xc, K(cg, ty, -86.5), K(cg, ty, -86.5), xc);
  /* n = round(x / ln2): adding and subtracting 1.5 * 2^23 rounds to nearest */
  LLVMValueRef fx = LLVMBuildFMul(b, xc, K(cg, ty, 1.44269504088896341), "");
  fx = LLVMBuildFAdd(b, fx, K(cg, ty, 12582912.0), "");
  fx = LLVMBuildFSub(b, fx, K(cg, ty, 12582912.0), "");
  /* r = x - n*ln2 with ln2 = 0.693359375 - 2.12194440e-4 (first part exact) */
  LLVMValueRef r = tfx_cg_fma(cg, fx, K(cg, ty, -0.693359375), xc);
  r = tfx_cg_fma(cg, fx, K(cg, ty, 2.12194440e-4), r);
  static const double P[6] = {5.0000001201E-1, 1.6666665459E-1, 4.1665795894E-2,
                              8.3334519073E-3, 1.3981999507E-3, 1.9875691500E-4};
  LLVMValueRef p = horner(cg, r, P, 6);
  LLVMValueRef z = LLVMBuildFMul(b, r, r, "");
  LLVMValueRef y = tfx_cg_fma(cg, p, z, r);
  y = LLVMBuildFAdd(b, y, K(cg, ty, 1.0), "");
  /* y * 2^n as y * 2^n1 * 2^n2, both factors normal for n in [-150, 128] */
  LLVMValueRef n = LLVMBuildFPToSI(b, fx, ity, "");
  LLVMValueRef n1 = LLVMBuildAShr(b, n, iconst(ity, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(b, n, n1, "");
  LLVMValueRef s1 = LLVMBuildShl(b, LLVMBuildAdd(b, n1, iconst(ity, 127), ""), iconst(ity, 23), "");
  LLVMValueRef s2 = LLVMBuildShl(b, LLVMBuildAdd(b, n2, iconst(ity, 127), ""), iconst(ity, 23), "");
  y = LLVMBuildFMul(b, y, LLVMBuildBitCast(b, s1, ty, ""), "");
  y = LLVMBuildFMul(b, y, LLVMBuildBitCast(b, s2, ty, ""), "");
  y = sel(cg, LLVMRealOGT, x, K(cg, ty, 88.72283935546875), K(cg, ty, INFINITY), y);
  y = sel(cg, LLVMRealOLT, x, K(cg, ty, -86.5), K(cg, ty, 0.0), y);
  return sel(cg, LLVMRealUNO, x, x, x, y);
}

LLVMValueRef tfx_cg_sigmoid(tfx_cg *cg, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef e = tfx_cg_exp(cg, LLVMBuildFNeg(cg->b, x, ""));
  return LLVMBuildFDiv(cg->b, K(cg, ty, 1.0), LLVMBuildFAdd(cg->b, K(cg, ty, 1.0), e, ""), "");
}

LLVMValueRef tfx_cg_gelu_tanh(tfx_cg *cg, LLVMValueRef x) {
  /* 0.5x(1 + tanh(u)) = x * sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3) */
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef x2 = LLVMBuildFMul(b, x, x, "");
  LLVMValueRef inner = tfx_cg_fma(cg, LLVMBuildFMul(b, x2, K(cg, ty, 0.044715), ""), x, x);
  LLVMValueRef m2u = LLVMBuildFMul(b, inner, K(cg, ty, -2.0 * 0.79788456080286535588), "");
  LLVMValueRef e = tfx_cg_exp(cg, m2u);
  return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, K(cg, ty, 1.0), e, ""), "");
}

LLVMValueRef tfx_cg_tanh(tfx_cg *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef ty = LLVMTypeOf(x);
  /* tanh(x) / x = 1 - x^2/3 + 2x^4/15 - ...: the Taylor coefficients in x^2 */
  static const double T[8] = {1.0,           -1.0 / 3.0,         2.0 / 15.0,          -17.0 / 315.0,
                              62.0 / 2835.0, -1382.0 / 155925.0, 21844.0 / 6081075.0, -929569.0 / 638512875.0};
  LLVMValueRef a = tfx_cg_intrinsic(cg, "llvm.fabs", &ty, 1, &x, 1);
  LLVMValueRef small = LLVMBuildFMul(b, x, horner(cg, LLVMBuildFMul(b, x, x, ""), T, 8), "");
  LLVMValueRef e = tfx_cg_exp(cg, LLVMBuildFMul(b, a, K(cg, ty, -2.0), ""));
  LLVMValueRef big =
      LLVMBuildFDiv(b, LLVMBuildFSub(b, K(cg, ty, 1.0), e, ""), LLVMBuildFAdd(b, K(cg, ty, 1.0), e, ""), "");
  LLVMValueRef args[2] = {big, x};
  big = tfx_cg_intrinsic(cg, "llvm.copysign", &ty, 1, args, 2);
  return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, a, K(cg, ty, 0.5), ""), small, big, "tanh");
}

LLVMValueRef tfx_cg_softcap(tfx_cg *cg, LLVMValueRef x, double cap) {
  if (!(cap > 0)) return x;
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef t = tfx_cg_tanh(cg, LLVMBuildFMul(cg->b, x, K(cg, ty, 1.0 / cap), ""));
  return LLVMBuildFMul(cg->b, t, K(cg, ty, cap), "softcap");
}

/* erf(z) / z as a polynomial in z^2: the Taylor series, 12 terms. */
static LLVMValueRef erf_small(tfx_cg *cg, LLVMValueRef z) {
  double c[12];
  double fact = 1.0;
  for (int n = 0; n < 12; n++) {
    if (n > 0) fact *= n;
    c[n] = (n % 2 ? -1.0 : 1.0) * 1.12837916709551257390 / (fact * (2 * n + 1));
  }
  LLVMValueRef z2 = LLVMBuildFMul(cg->b, z, z, "");
  return LLVMBuildFMul(cg->b, z, horner(cg, z2, c, 12), "");
}

/* erfc(a) for a >= 0: t exp(-a^2 + P(t)), t = 1/(1 + a/2), with exp(-a^2)
 * evaluated on the square split exactly as a^2 = hi + lo (the caller
 * computes it from its own input so the rounding of a does not matter). */
static LLVMValueRef erfc_pos(tfx_cg *cg, LLVMValueRef a, LLVMValueRef hi, LLVMValueRef lo) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef ty = LLVMTypeOf(a);
  static const double P[10] = {-1.26551223, 1.00002368,  0.37409196, 0.09678418,  -0.18628806,
                               0.27886807,  -1.13520398, 1.48851587, -0.82215223, 0.17087277};
  LLVMValueRef t = LLVMBuildFDiv(b, K(cg, ty, 1.0), tfx_cg_fma(cg, a, K(cg, ty, 0.5), K(cg, ty, 1.0)), "");
  LLVMValueRef p = horner(cg, t, P, 10);
  LLVMValueRef e = LLVMBuildFMul(b, tfx_cg_exp(cg, LLVMBuildFNeg(b, hi, "")), tfx_cg_exp(cg, p), "");
  e = LLVMBuildFMul(b, e, LLVMBuildFSub(b, K(cg, ty, 1.0), lo, ""), "");
  return LLVMBuildFMul(b, t, e, "");
}

static LLVMValueRef fabs_(tfx_cg *cg, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  return tfx_cg_intrinsic(cg, "llvm.fabs", &ty, 1, &x, 1);
}

LLVMValueRef tfx_cg_erf(tfx_cg *cg, LLVMValueRef z) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef ty = LLVMTypeOf(z);
  LLVMValueRef a = fabs_(cg, z);
  LLVMValueRef small = erf_small(cg, z);
  LLVMValueRef hi = LLVMBuildFMul(b, a, a, "");
  LLVMValueRef lo = tfx_cg_fma(cg, a, a, LLVMBuildFNeg(b, hi, ""));
  LLVMValueRef big = LLVMBuildFSub(b, K(cg, ty, 1.0), erfc_pos(cg, a, hi, lo), "");
  LLVMValueRef args[2] = {big, z};
  big = tfx_cg_intrinsic(cg, "llvm.copysign", &ty, 1, args, 2);
  return sel(cg, LLVMRealOLT, a, K(cg, ty, 1.0), small, big);
}

LLVMValueRef tfx_cg_gelu_erf(tfx_cg *cg, LLVMValueRef x) {
  /* x * Phi(x), Phi(x) = (1 + erf(x/sqrt2)) / 2 = erfc(-x/sqrt2) / 2 */
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef z = LLVMBuildFMul(b, x, K(cg, ty, 0.70710678118654752440), "");
  LLVMValueRef a = fabs_(cg, z);
  LLVMValueRef half_x = LLVMBuildFMul(b, x, K(cg, ty, 0.5), "");
  LLVMValueRef small = LLVMBuildFMul(b, half_x, LLVMBuildFAdd(b, K(cg, ty, 1.0), erf_small(cg, z), ""), "");
  /* z^2 = x^2 / 2 from x itself: hi + lo exact, halving is exact */
  LLVMValueRef xx = LLVMBuildFMul(b, x, x, "");
  LLVMValueRef lo = LLVMBuildFMul(b, tfx_cg_fma(cg, x, x, LLVMBuildFNeg(b, xx, "")), K(cg, ty, 0.5), "");
  LLVMValueRef hi = LLVMBuildFMul(b, xx, K(cg, ty, 0.5), "");
  LLVMValueRef hc = LLVMBuildFMul(b, erfc_pos(cg, a, hi, lo), K(cg, ty, 0.5), "");
  LLVMValueRef pos = LLVMBuildFMul(b, x, LLVMBuildFSub(b, K(cg, ty, 1.0), hc, ""), "");
  LLVMValueRef neg = LLVMBuildFMul(b, x, hc, "");
  LLVMValueRef big = sel(cg, LLVMRealOGT, x, K(cg, ty, 0.0), pos, neg);
  /* x >= 10: Phi(x) = 1 - 7.6e-24 is 1 in f32, so x itself (also +inf, where
   * the erfc path would compute inf - inf) */
  big = sel(cg, LLVMRealOGE, x, K(cg, ty, 10.0), x, big);
  /* x <= -20: x * Phi(x) underflows (|.| < 1e-87); -0 without forming x^2,
   * which overflows for huge |x| (NaN at -inf, as x * 0 is in PyTorch) */
  big = sel(cg, LLVMRealOLE, x, K(cg, ty, -20.0), LLVMBuildFMul(b, x, K(cg, ty, 0.0), ""), big);
  return sel(cg, LLVMRealOLT, a, K(cg, ty, 1.0), small, big);
}

void tfx_cg_sincos_f64(tfx_cg *cg, LLVMValueRef x, LLVMValueRef *s_out, LLVMValueRef *c_out) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef ty = cg->t_f64;
  static const double S[6] = {-1.66666666666666324348e-01, 8.33333333332248946124e-03,  -1.98412698298579493134e-04,
                              2.75573137070700676789e-06,  -2.50507602534068634195e-08, 1.58969099521155010221e-10};
  static const double C[6] = {4.16666666666666019037e-02,  -1.38888888888741095749e-03, 2.48015872894767294178e-05,
                              -2.75573143513906633035e-07, 2.08757232129817482790e-09,  -1.13596475577881948265e-11};
  LLVMValueRef n = LLVMBuildFMul(b, x, K(cg, ty, 0.63661977236758134308), "");
  n = LLVMBuildFAdd(b, n, K(cg, ty, 6755399441055744.0), "");
  n = LLVMBuildFSub(b, n, K(cg, ty, 6755399441055744.0), "");
  LLVMValueRef r = LLVMBuildFSub(b, x, LLVMBuildFMul(b, n, K(cg, ty, 1.57079632673412561417e+00), ""), "");
  r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, n, K(cg, ty, 6.07710050630396597660e-11), ""), "");
  r = LLVMBuildFSub(b, r, LLVMBuildFMul(b, n, K(cg, ty, 2.02226624879595063154e-21), ""), "");
  LLVMValueRef z = LLVMBuildFMul(b, r, r, "");
  LLVMValueRef ps = horner(cg, z, S, 6);
  LLVMValueRef sr = tfx_cg_fma(cg, LLVMBuildFMul(b, r, z, ""), ps, r);
  LLVMValueRef pc = horner(cg, z, C, 6);
  LLVMValueRef cr = tfx_cg_fma(cg, LLVMBuildFMul(b, z, z, ""), pc, tfx_cg_fma(cg, z, K(cg, ty, -0.5), K(cg, ty, 1.0)));
  LLVMValueRef q = LLVMBuildFPToSI(b, n, cg->t_i64, "");
  LLVMValueRef odd = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, q, tfx_cg_i64(cg, 1), ""), tfx_cg_i64(cg, 0), "");
  LLVMValueRef sneg = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, q, tfx_cg_i64(cg, 2), ""), tfx_cg_i64(cg, 0), "");
  LLVMValueRef q1 = LLVMBuildAdd(b, q, tfx_cg_i64(cg, 1), "");
  LLVMValueRef cneg = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildAnd(b, q1, tfx_cg_i64(cg, 2), ""), tfx_cg_i64(cg, 0), "");
  LLVMValueRef s = LLVMBuildSelect(b, odd, cr, sr, "");
  LLVMValueRef c = LLVMBuildSelect(b, odd, sr, cr, "");
  *s_out = LLVMBuildSelect(b, sneg, LLVMBuildFNeg(b, s, ""), s, "sin");
  *c_out = LLVMBuildSelect(b, cneg, LLVMBuildFNeg(b, c, ""), c, "cos");
}

/* A fused epilogue's activation (tfx_act_kind) of v: silu, gelu (erf or
 * tanh form), sigmoid, relu, or v itself. */
LLVMValueRef tfx_cg_act(tfx_cg *cg, int act, LLVMValueRef v) {
  switch (act) {
  case TFX_ACT_SILU: return LLVMBuildFMul(cg->b, v, tfx_cg_sigmoid(cg, v), "");
  case TFX_ACT_GELU: return tfx_cg_gelu_erf(cg, v);
  case TFX_ACT_GELU_TANH: return tfx_cg_gelu_tanh(cg, v);
  case TFX_ACT_SIGMOID: return tfx_cg_sigmoid(cg, v);
  case TFX_ACT_RELU: {
    LLVMValueRef zero = LLVMConstNull(LLVMTypeOf(v));
    return LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGT, v, zero, ""), v, zero, "");
  }
  default: return v;
  }
}
