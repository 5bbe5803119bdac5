/* llvm_math.c — exp, log, tanh, sigmoid and the normal CDF of f32 values (scalars or
 * vectors) as inline polynomial code, so that elementwise groups stay vectorized instead of
 * calling libm once per lane (see llvm_emit.h).
 *
 * Each function widens its f32 lanes to f64, evaluates in f64 and rounds once to f32:
 * - exp: Cody-Waite reduction x = n·ln2 + r (|r| <= ln2/2), Taylor series of e^r to r^12
 *   (truncation < 2e-16 relative), scaled by 2^n built in the exponent bits; arguments
 *   are clamped to [-708, 709] first, so overflow gives +inf and underflow 0 after
 *   rounding to f32 (through the f32 subnormals). Error before rounding < 1e-15 relative:
 *   the f32 result is the correctly rounded one except in double-rounding ties, <= 1 ulp.
 * - log: x = 2^k·m with m in [sqrt(1/2), sqrt 2), log m = 2·atanh(s), s = (m-1)/(m+1),
 *   series to s^13 (|s| < 0.172: truncation < 1e-11 relative); <= 1 ulp in f32. log(±0) =
 *   -inf, log(x < 0) = NaN, log(+inf) = +inf.
 * - tanh: odd Taylor series to x^11 for |x| < 1/16, else 1 - 2/(e^{2|x|} + 1) with the
 *   argument capped at 20 (tanh(20) rounds to 1); <= 1 ulp, tanh(±0) = ±0.
 * - sigmoid: 1/(1 + e^-x) in f64; <= 1 ulp.
 * - Phi(x) = erfc(-x/sqrt 2)/2 and GELU x·Phi(x): erfc by the Chebyshev fit erfc(z) =
 *   t·exp(-z² + P(t)), t = 1/(1 + z/2), whose relative error is below 1.2e-7 for all
 *   z >= 0 (Numerical Recipes' erfcc), erfc(-z) = 2 - erfc(z); GELU's product is taken in
 *   f64 and rounded once; <= 3 ulp in f32.
 * NaN inputs give NaN. The measured maxima over a dense range are checked by the unit test
 * test_codegen (transcendental_ulp) and listed in docs/architecture.md.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llvm_emit.h"

/* the f64 type with x's shape, and constants of it */
static LLVMTypeRef m_dty(LLVMValueRef x, LLVMTypeRef scalar) {
  LLVMTypeRef t = LLVMTypeOf(x);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return scalar;
  return LLVMVectorType(scalar, LLVMGetVectorSize(t));
}

static LLVMValueRef m_const(LLVMTypeRef t, double v) {
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return LLVMConstReal(t, v);
  unsigned n = LLVMGetVectorSize(t);
  LLVMValueRef *lanes = xmalloc((size_t)n * sizeof *lanes);
  for (unsigned i = 0; i < n; i++) lanes[i] = LLVMConstReal(LLVMGetElementType(t), v);
  LLVMValueRef c = LLVMConstVector(lanes, n);
  free(lanes);
  return c;
}

static LLVMValueRef m_iconst(LLVMTypeRef t, long long v) {
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
    return LLVMConstInt(t, (unsigned long long)v, 1);
  unsigned n = LLVMGetVectorSize(t);
  LLVMValueRef *lanes = xmalloc((size_t)n * sizeof *lanes);
  for (unsigned i = 0; i < n; i++)
    lanes[i] = LLVMConstInt(LLVMGetElementType(t), (unsigned long long)v, 1);
  LLVMValueRef c = LLVMConstVector(lanes, n);
  free(lanes);
  return c;
}

static LLVMValueRef m_intr(CgEmit *e, const char *name, LLVMValueRef *args, unsigned n) {
  LLVMTypeRef t = LLVMTypeOf(args[0]);
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(e->mod, id, &t, 1);
  return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->ctx, id, &t, 1), f, args, n, "");
}

static LLVMValueRef m_fma(CgEmit *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return m_intr(e, "llvm.fma", args, 3);
}

/* c[0] + x·(c[1] + x·(... c[n-1])) */
static LLVMValueRef m_horner(CgEmit *e, LLVMValueRef x, const double *c, int n) {
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef p = m_const(t, c[n - 1]);
  for (int i = n - 2; i >= 0; i--) p = m_fma(e, p, x, m_const(t, c[i]));
  return p;
}

static LLVMValueRef m_sel(CgEmit *e, LLVMRealPredicate pr, LLVMValueRef a, LLVMValueRef b,
                          LLVMValueRef yes, LLVMValueRef no) {
  return LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, pr, a, b, ""), yes, no, "");
}

/* e^x of f64 lanes (NaN -> NaN, clamped to [-708, 709]) */
static LLVMValueRef m_dexp(CgEmit *e, LLVMValueRef x) {
  LLVMBuilderRef b = e->b;
  LLVMTypeRef dt = LLVMTypeOf(x), it = m_dty(x, e->i64);
  LLVMValueRef xs = m_sel(e, LLVMRealUNO, x, x, m_const(dt, 0), x);
  xs = m_sel(e, LLVMRealOGT, xs, m_const(dt, 709), m_const(dt, 709), xs);
  xs = m_sel(e, LLVMRealOLT, xs, m_const(dt, -708), m_const(dt, -708), xs);
  LLVMValueRef t = LLVMBuildFMul(b, xs, m_const(dt, 1.4426950408889634), "");
  LLVMValueRef n = m_intr(e, "llvm.rint", &t, 1);
  LLVMValueRef nn = LLVMBuildFNeg(b, n, "");
  LLVMValueRef r = m_fma(e, nn, m_const(dt, 6.93147180369123816490e-01), xs);
  r = m_fma(e, nn, m_const(dt, 1.90821492927058770002e-10), r);
  static const double c[13] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720,
                               1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800,
                               1.0 / 39916800, 1.0 / 479001600};
  LLVMValueRef p = m_horner(e, r, c, 13);
  LLVMValueRef k = LLVMBuildFPToSI(b, n, it, "");
  LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildAdd(b, k, m_iconst(it, 1023), ""), m_iconst(it, 52), "");
  LLVMValueRef y = LLVMBuildFMul(b, p, LLVMBuildBitCast(b, bits, dt, ""), "");
  return m_sel(e, LLVMRealUNO, x, x, x, y);
}

static LLVMValueRef m_widen(CgEmit *e, LLVMValueRef x) {
  return LLVMBuildFPExt(e->b, x, m_dty(x, e->f64), "");
}

static LLVMValueRef m_narrow(CgEmit *e, LLVMValueRef x) {
  return LLVMBuildFPTrunc(e->b, x, m_dty(x, e->f32), "");
}

LLVMValueRef llvm_math_exp(CgEmit *e, LLVMValueRef x) {
  return m_narrow(e, m_dexp(e, m_widen(e, x)));
}

LLVMValueRef llvm_math_log(CgEmit *e, LLVMValueRef x) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef xd = m_widen(e, x);
  LLVMTypeRef dt = LLVMTypeOf(xd), it = m_dty(xd, e->i64);
  LLVMValueRef bits = LLVMBuildBitCast(b, xd, it, "");
  LLVMValueRef k = LLVMBuildSub(b, LLVMBuildAShr(b, bits, m_iconst(it, 52), ""), m_iconst(it, 1023), "");
  LLVMValueRef mb = LLVMBuildOr(b, LLVMBuildAnd(b, bits, m_iconst(it, 0x000fffffffffffffLL), ""),
                                m_iconst(it, 0x3ff0000000000000LL), "");
  LLVMValueRef m = LLVMBuildBitCast(b, mb, dt, "");
  LLVMValueRef big = LLVMBuildFCmp(b, LLVMRealOGT, m, m_const(dt, 1.4142135623730951), "");
  m = LLVMBuildSelect(b, big, LLVMBuildFMul(b, m, m_const(dt, 0.5), ""), m, "");
  k = LLVMBuildSelect(b, big, LLVMBuildAdd(b, k, m_iconst(it, 1), ""), k, "");
  LLVMValueRef f = LLVMBuildFSub(b, m, m_const(dt, 1), "");
  LLVMValueRef s = LLVMBuildFDiv(b, f, LLVMBuildFAdd(b, f, m_const(dt, 2), ""), "");
  LLVMValueRef s2 = LLVMBuildFMul(b, s, s, "");
  static const double c[7] = {2.0, 2.0 / 3, 2.0 / 5, 2.0 / 7, 2.0 / 9, 2.0 / 11, 2.0 / 13};
  LLVMValueRef lm = LLVMBuildFMul(b, s, m_horner(e, s2, c, 7), "");
  LLVMValueRef kd = LLVMBuildSIToFP(b, k, dt, "");
  LLVMValueRef y = m_fma(e, kd, m_const(dt, 0.69314718055994531), lm);
  /* x = ±0: -inf; x = +inf: +inf; x < 0 or NaN: NaN */
  LLVMValueRef inf = m_const(dt, INFINITY);
  LLVMValueRef sp = m_sel(e, LLVMRealOEQ, xd, m_const(dt, 0), LLVMBuildFNeg(b, inf, ""),
                          m_sel(e, LLVMRealOEQ, xd, inf, inf, m_const(dt, NAN)));
  LLVMValueRef ok = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealOGT, xd, m_const(dt, 0), ""),
                                 LLVMBuildFCmp(b, LLVMRealOLT, xd, inf, ""), "");
  return m_narrow(e, LLVMBuildSelect(b, ok, y, sp, ""));
}

LLVMValueRef llvm_math_tanh(CgEmit *e, LLVMValueRef x) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef xd = m_widen(e, x);
  LLVMTypeRef dt = LLVMTypeOf(xd);
  LLVMValueRef a = m_intr(e, "llvm.fabs", &xd, 1);
  LLVMValueRef x2 = LLVMBuildFMul(b, xd, xd, "");
  static const double c[6] = {-1.0 / 3, 2.0 / 15, -17.0 / 315, 62.0 / 2835, -1382.0 / 155925,
                              21844.0 / 6081075};
  LLVMValueRef small = m_fma(e, LLVMBuildFMul(b, xd, x2, ""), m_horner(e, x2, c, 6), xd);
  LLVMValueRef ac = m_sel(e, LLVMRealOGT, a, m_const(dt, 20), m_const(dt, 20), a);
  LLVMValueRef t = m_dexp(e, LLVMBuildFAdd(b, ac, ac, ""));
  LLVMValueRef one = m_const(dt, 1);
  LLVMValueRef big = LLVMBuildFSub(b, one, LLVMBuildFDiv(b, m_const(dt, 2), LLVMBuildFAdd(b, t, one, ""), ""), "");
  LLVMValueRef args[2] = {big, xd};
  big = m_intr(e, "llvm.copysign", args, 2);
  return m_narrow(e, m_sel(e, LLVMRealOLT, a, m_const(dt, 0.0625), small, big));
}

LLVMValueRef llvm_math_sigmoid(CgEmit *e, LLVMValueRef x) {
  LLVMBuilderRef b = e->b;
  LLVMValueRef xd = m_widen(e, x);
  LLVMTypeRef dt = LLVMTypeOf(xd);
  LLVMValueRef one = m_const(dt, 1);
  LLVMValueRef ex = m_dexp(e, LLVMBuildFNeg(b, xd, ""));
  return m_narrow(e, LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, ex, ""), ""));
}

/* Phi of f64 lanes */
static LLVMValueRef m_dphi(CgEmit *e, LLVMValueRef xd) {
  LLVMBuilderRef b = e->b;
  LLVMTypeRef dt = LLVMTypeOf(xd);
  /* erfc(z) for z = |x|/sqrt 2; Phi(x) = erfc(-x/sqrt 2)/2 */
  LLVMValueRef z = LLVMBuildFMul(b, m_intr(e, "llvm.fabs", &xd, 1), m_const(dt, 0.70710678118654752), "");
  LLVMValueRef t = LLVMBuildFDiv(b, m_const(dt, 1), m_fma(e, z, m_const(dt, 0.5), m_const(dt, 1)), "");
  static const double c[10] = {-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
                               0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277};
  LLVMValueRef arg = LLVMBuildFSub(b, m_horner(e, t, c, 10), LLVMBuildFMul(b, z, z, ""), "");
  LLVMValueRef ec = LLVMBuildFMul(b, t, m_dexp(e, arg), ""); /* erfc(|x|/sqrt 2) */
  LLVMValueRef half = m_const(dt, 0.5);
  LLVMValueRef lo = LLVMBuildFMul(b, ec, half, "");             /* x <= 0 */
  LLVMValueRef hi = LLVMBuildFSub(b, m_const(dt, 1), lo, "");   /* x > 0 */
  return m_sel(e, LLVMRealOGT, xd, m_const(dt, 0), hi, lo);
}

LLVMValueRef llvm_math_phi(CgEmit *e, LLVMValueRef x) { return m_narrow(e, m_dphi(e, m_widen(e, x))); }

/* x·Phi(x) rounded once, so that tiny negative results keep their subnormal bits */
LLVMValueRef llvm_math_gelu(CgEmit *e, LLVMValueRef x) {
  LLVMValueRef xd = m_widen(e, x);
  return m_narrow(e, LLVMBuildFMul(e->b, xd, m_dphi(e, xd), ""));
}
