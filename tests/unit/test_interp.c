/* test_interp.c — the reference interpreter against hand-computed values, naive direct
 * implementations written with a different loop structure, and central finite differences
 * (every backward op against its forward op). Graphs are built with ir_add and explicit
 * result types, so these tests do not depend on the shape rules. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../ir/interp.h"

/* exported by interp.c for the known-answer test, not part of interp.h */
#include "../../runtime/rt_program.h"

static Arena *A;
static IrGraph *G;
static const SrcLoc NOLOC = {0};

static void setup(void) {
  A = arena_new();
  G = ir_graph_new(A, "t");
}
static void teardown(void) {
  dim_ctx_free(G->dims);
  arena_free(A);
}

/* ---- graph helpers ---------------------------------------------------------------------- */

static IrType ty_n(DType dt, int rank, const int64_t *d) {
  IrType t = {.dt = dt, .rank = rank};
  for (int k = 0; k < rank; k++) t.dims[k] = dim_const(G->dims, d[k]);
  return t;
}
#define T(dt, ...) \
  ty_n(dt, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define F(...) T(DT_F32, __VA_ARGS__)
static IrType scalar(DType dt) { return (IrType){.dt = dt, .rank = 0}; }

static int input(IrType t, const char *name) {
  int id = ir_add(G, OP_INPUT, NULL, 0, NULL, t, NOLOC);
  G->nodes[id].name = name;
  return id;
}
static int op1(OpKind op, const IrAttr *a, IrType t, int x) {
  return ir_add(G, op, (int[]){x}, 1, a, t, NOLOC);
}
static int op2(OpKind op, const IrAttr *a, IrType t, int x, int y) {
  return ir_add(G, op, (int[]){x, y}, 2, a, t, NOLOC);
}
static int op3(OpKind op, const IrAttr *a, IrType t, int x, int y, int z) {
  return ir_add(G, op, (int[]){x, y, z}, 3, a, t, NOLOC);
}

static int64_t numel_of(int id) { return ir_type_numel(G, &G->nodes[id].type); }

/* deterministic values in [lo, hi) */
static uint64_t rng_state = 88172645463325252ull;
static double rnd(double lo, double hi) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1p-53;
}
static double *rnd_vec(int64_t n, double lo, double hi) {
  double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
  for (int64_t i = 0; i < n; i++) v[i] = rnd(lo, hi);
  return v;
}
/* random values at least `gap` apart and away from zero: max/relu kinks stay outside FD */
static double *distinct_vec(int64_t n) {
  double *v = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++) v[i] = (double)(i + 1) * 0.01 * (i % 2 ? 1 : -1);
  for (int64_t i = n - 1; i > 0; i--) { /* shuffle */
    int64_t j = (int64_t)rnd(0, (double)(i + 1));
    double t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
  return v;
}

static void set(Interp *I, int id, const double *v) {
  ck_assert_int_eq(interp_set(I, id, v, numel_of(id)), 0);
}

static void run_ok(Interp *I) {
  char err[512];
  int r = interp_run(I, err, sizeof err);
  ck_assert_msg(r == 0, "interp_run failed: %s", err);
}

static const double *val(Interp *I, int id) { return interp_value(I, id, NULL); }

/* |got - ref| <= atol + rtol*|ref| everywhere, reporting the worst element */
static void expect_close(const double *got, const double *ref, int64_t n, double atol,
                         double rtol, const char *what) {
  double worst = 0;
  int64_t at = -1;
  for (int64_t i = 0; i < n; i++) {
    if (got[i] == ref[i]) continue; /* also equal infinities */
    double d = fabs(got[i] - ref[i]), excess = d - (atol + rtol * fabs(ref[i]));
    if (!(excess <= worst) || isnan(got[i]) != isnan(ref[i])) {
      worst = isnan(excess) ? INFINITY : excess;
      at = i;
    }
  }
  ck_assert_msg(at < 0, "%s: element %lld got %.17g, expected %.17g (max diff over tol %g)",
                what, (long long)at, at >= 0 ? got[at] : 0, at >= 0 ? ref[at] : 0, worst);
}

/* Checks that node bwd equals the gradient of L = sum(dy * fwd) with respect to input wrt,
 * by central differences with step 1e-6, tolerance 1e-7 + 1e-6*|fd|. Every input of the
 * graph must have been set. */
static void grad_check(Interp *I, int wrt, int fwd, int dy, int bwd, const char *what) {
  int64_t n = numel_of(wrt), nf = numel_of(fwd);
  ck_assert_int_eq(numel_of(bwd), n);
  run_ok(I);
  double *analytic = malloc((size_t)n * sizeof(double)), *fd = malloc((size_t)n * sizeof(double));
  double *x = malloc((size_t)n * sizeof(double));
  memcpy(analytic, val(I, bwd), (size_t)n * sizeof(double));
  memcpy(x, val(I, wrt), (size_t)n * sizeof(double));
  const double eps = 1e-6;
  for (int64_t j = 0; j < n; j++) {
    double L[2], x0 = x[j];
    for (int s = 0; s < 2; s++) {
      x[j] = x0 + (s ? -eps : eps);
      set(I, wrt, x);
      run_ok(I);
      const double *y = val(I, fwd), *g = val(I, dy);
      L[s] = 0;
      for (int64_t i = 0; i < nf; i++) L[s] += g[numel_of(dy) == 1 ? 0 : i] * y[i];
    }
    x[j] = x0;
    fd[j] = (L[0] - L[1]) / (2 * eps);
  }
  set(I, wrt, x);
  expect_close(analytic, fd, n, 1e-7, 1e-6, what);
  free(analytic);
  free(fd);
  free(x);
}

/* ---- elementwise ------------------------------------------------------------------------ */

START_TEST(test_unary_values) {
  int x = input(F(6), "x");
  int nneg = op1(OP_NEG, NULL, F(6), x), nexp = op1(OP_EXP, NULL, F(6), x);
  int nrelu = op1(OP_RELU, NULL, F(6), x), ngelu = op1(OP_GELU, NULL, F(6), x);
  int nsig = op1(OP_SIGMOID, NULL, F(6), x), nsilu = op1(OP_SILU, NULL, F(6), x);
  int ntanh = op1(OP_TANH, NULL, F(6), x);
  IrAttr pw = {.value = 3};
  int npow = op1(OP_POWC, &pw, F(6), x);
  Interp *I = interp_new(G, NULL);
  double xv[6] = {-2, -1, -0.5, 0, 1, 800};
  set(I, x, xv);
  run_ok(I);
  /* GELU(1) = Phi(1) = 0.8413447460685429, GELU(-1) = -(1 - Phi(1)) (tables of the normal cdf) */
  const double gelu_ref[6] = {-2 * 0.022750131948179195, -0.15865525393145707,
                              -0.5 * 0.3085375387259869, 0, 0.8413447460685429, 800};
  expect_close(val(I, ngelu), gelu_ref, 6, 1e-15, 1e-14, "gelu");
  const double relu_ref[6] = {0, 0, 0, 0, 1, 800};
  expect_close(val(I, nrelu), relu_ref, 6, 0, 0, "relu");
  const double neg_ref[6] = {2, 1, 0.5, 0, -1, -800};
  expect_close(val(I, nneg), neg_ref, 6, 0, 0, "neg");
  const double pow_ref[6] = {-8, -1, -0.125, 0, 1, 512e6};
  expect_close(val(I, npow), pow_ref, 6, 0, 1e-15, "powc");
  double sig_ref[6], silu_ref[6], exp_ref[6], tanh_ref[6];
  for (int i = 0; i < 6; i++) {
    sig_ref[i] = 1 / (1 + exp(-xv[i]));
    silu_ref[i] = xv[i] * sig_ref[i];
    exp_ref[i] = exp(xv[i]);
    tanh_ref[i] = tanh(xv[i]);
  }
  expect_close(val(I, nsig), sig_ref, 6, 1e-16, 1e-15, "sigmoid");
  expect_close(val(I, nsilu), silu_ref, 6, 1e-16, 1e-15, "silu");
  expect_close(val(I, nexp), exp_ref, 6, 0, 1e-15, "exp");
  expect_close(val(I, ntanh), tanh_ref, 6, 0, 1e-15, "tanh");
  ck_assert(val(I, nsig)[0] > 0.1192 && val(I, nsig)[0] < 0.1193);
  interp_free(I);
}
END_TEST

START_TEST(test_sigmoid_extremes) {
  int x = input(F(2), "x");
  int s = op1(OP_SIGMOID, NULL, F(2), x);
  Interp *I = interp_new(G, NULL);
  set(I, x, (double[]){-1000, 1000});
  run_ok(I);
  ck_assert(val(I, s)[0] == 0.0 && val(I, s)[1] == 1.0);
  interp_free(I);
}
END_TEST

START_TEST(test_log_sqrt) {
  int x = input(F(3), "x");
  int l = op1(OP_LOG, NULL, F(3), x), s = op1(OP_SQRT, NULL, F(3), x);
  Interp *I = interp_new(G, NULL);
  set(I, x, (double[]){1, M_E * M_E, 0.25});
  run_ok(I);
  expect_close(val(I, l), (double[]){0, 2, -2 * M_LN2}, 3, 1e-15, 1e-15, "log");
  expect_close(val(I, s), (double[]){1, M_E, 0.5}, 3, 0, 1e-15, "sqrt");
  interp_free(I);
}
END_TEST

START_TEST(test_broadcast_binary) {
  /* [2,1,3] op [4,1] -> [2,4,3] */
  int a = input(F(2, 1, 3), "a"), b = input(F(4, 1), "b");
  int add = op2(OP_ADD, NULL, F(2, 4, 3), a, b), sub = op2(OP_SUB, NULL, F(2, 4, 3), a, b);
  int mul = op2(OP_MUL, NULL, F(2, 4, 3), a, b), dv = op2(OP_DIV, NULL, F(2, 4, 3), a, b);
  int c = input(scalar(DT_F32), "c");
  int addc = op2(OP_ADD, NULL, F(2, 1, 3), c, a);
  Interp *I = interp_new(G, NULL);
  double av[6] = {1, 2, 3, 4, 5, 6}, bv[4] = {10, 20, 30, 40};
  set(I, a, av);
  set(I, b, bv);
  set(I, c, (double[]){0.5});
  run_ok(I);
  double r[4][24];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) {
        double x = av[i * 3 + k], y = bv[j];
        int o = (i * 4 + j) * 3 + k;
        r[0][o] = x + y;
        r[1][o] = x - y;
        r[2][o] = x * y;
        r[3][o] = x / y;
      }
  expect_close(val(I, add), r[0], 24, 0, 0, "add");
  expect_close(val(I, sub), r[1], 24, 0, 0, "sub");
  expect_close(val(I, mul), r[2], 24, 0, 0, "mul");
  expect_close(val(I, dv), r[3], 24, 0, 0, "div");
  expect_close(val(I, addc), (double[]){1.5, 2.5, 3.5, 4.5, 5.5, 6.5}, 6, 0, 0, "scalar add");
  interp_free(I);
}
END_TEST

START_TEST(test_broadcast_mismatch_is_error) {
  int a = input(F(3), "a"), b = input(F(4), "b");
  op2(OP_ADD, NULL, F(4), a, b);
  Interp *I = interp_new(G, NULL);
  set(I, a, (double[]){1, 2, 3});
  set(I, b, (double[]){1, 2, 3, 4});
  char err[256];
  ck_assert_int_eq(interp_run(I, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "%2 add") && strstr(err, "broadcast"), "message: %s", err);
  interp_free(I);
}
END_TEST

START_TEST(test_cast_rounding) {
  int x = input(T(DT_F32, 8), "x");
  int h = op1(OP_CAST, NULL, T(DT_F16, 8), x), b = op1(OP_CAST, NULL, T(DT_BF16, 8), x);
  int i = op1(OP_CAST, NULL, T(DT_I32, 8), x), f = op1(OP_CAST, NULL, T(DT_F32, 8), x);
  Interp *I = interp_new(G, NULL);
  double one = 1.0;
  double xv[8] = {one + 0x1p-11,     /* f16 tie -> even (1) */
                  one + 3 * 0x1p-11, /* f16 tie -> even (1 + 2^-9) */
                  65519.0,           /* below the f16 overflow threshold */
                  65520.0,           /* rounds to inf in f16 */
                  0x1p-25 * 3,       /* f16 subnormal: 1.5 quanta -> 2 quanta */
                  -2.7,
                  one + 0x1p-8 + 0x1p-30, /* bf16: above the tie -> up */
                  0.1};
  set(I, x, xv);
  run_ok(I);
  const double h_ref[8] = {1, 1 + 0x1p-9, 65504, INFINITY, 0x1p-23, -2.69921875, 1 + 0x1p-8,
                           0.0999755859375};
  expect_close(val(I, h), h_ref, 8, 0, 0, "f16");
  const double b_ref[8] = {1, 1, 65536, 65536, 0x1p-25 * 3, -2.703125, 1 + 0x1p-7, 0.10009765625};
  expect_close(val(I, b), b_ref, 8, 0, 0, "bf16");
  const double i_ref[8] = {1, 1, 65519, 65520, 0, -2, 1, 0};
  expect_close(val(I, i), i_ref, 8, 0, 0, "i32");
  double f_ref[8];
  for (int k = 0; k < 8; k++) f_ref[k] = (double)(float)xv[k];
  expect_close(val(I, f), f_ref, 8, 0, 0, "f32");
  interp_free(I);
}
END_TEST

START_TEST(test_round_storage) {
  int x = input(T(DT_F16, 2), "x");
  int y = op2(OP_ADD, NULL, T(DT_F16, 2), x, x);
  int z = ir_add(G, OP_CONST, NULL, 0, &(IrAttr){.value = 0.1}, T(DT_BF16, 1), NOLOC);
  InterpOptions o = {.round_storage = true};
  Interp *I = interp_new(G, &o);
  set(I, x, (double[]){1 + 0x1p-12, 1000.3});
  run_ok(I);
  /* the input is rounded to f16 on entry (1, 1000.5), the sum stays representable */
  expect_close(val(I, x), (double[]){1, 1000.5}, 2, 0, 0, "input rounded");
  expect_close(val(I, y), (double[]){2, 2001}, 2, 0, 0, "sum");
  ck_assert(val(I, z)[0] == 0.10009765625);
  interp_free(I);
}
END_TEST

START_TEST(test_const) {
  int c = ir_add(G, OP_CONST, NULL, 0, &(IrAttr){.value = -2.5}, F(2, 2), NOLOC);
  Interp *I = interp_new(G, NULL);
  run_ok(I);
  expect_close(val(I, c), (double[]){-2.5, -2.5, -2.5, -2.5}, 4, 0, 0, "const");
  interp_free(I);
}
END_TEST

/* ---- matmul ----------------------------------------------------------------------------- */

/* naive reference: C[b,i,j] = sum_k A(b,i,k) B(b,k,j) with explicit index functions */
static double mat_at(const double *m, int64_t rows, int64_t cols, bool trans, int64_t i,
                     int64_t k) {
  return trans ? m[k * rows + i] : m[i * cols + k];
}

START_TEST(test_matmul_2d_and_transposes) {
  const int M = 3, K = 4, N = 5;
  int a = input(F(M, K), "a"), b = input(F(K, N), "b");
  int at = input(F(K, M), "at"), bt = input(F(N, K), "bt");
  int c = op2(OP_MATMUL, NULL, F(M, N), a, b);
  int ct = op2(OP_MATMUL, &(IrAttr){.trans_a = true, .trans_b = true}, F(M, N), at, bt);
  Interp *I = interp_new(G, NULL);
  double *av = rnd_vec(M * K, -1, 1), *bv = rnd_vec(K * N, -1, 1);
  double atv[12], btv[20], ref[15];
  for (int i = 0; i < M; i++)
    for (int k = 0; k < K; k++) atv[k * M + i] = av[i * K + k];
  for (int k = 0; k < K; k++)
    for (int j = 0; j < N; j++) btv[j * K + k] = bv[k * N + j];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      ref[i * N + j] = 0;
      for (int k = 0; k < K; k++)
        ref[i * N + j] += mat_at(av, M, K, false, i, k) * mat_at(bv, K, N, false, k, j);
    }
  set(I, a, av);
  set(I, b, bv);
  set(I, at, atv);
  set(I, bt, btv);
  run_ok(I);
  expect_close(val(I, c), ref, 15, 1e-15, 1e-14, "matmul");
  expect_close(val(I, ct), ref, 15, 1e-15, 1e-14, "matmul trans_a trans_b");
  free(av);
  free(bv);
  interp_free(I);
}
END_TEST

START_TEST(test_matmul_batched_broadcast) {
  /* [2,1,3,4] @ [5,4,2] -> [2,5,3,2] */
  int a = input(F(2, 1, 3, 4), "a"), b = input(F(5, 4, 2), "b");
  int c = op2(OP_MATMUL, NULL, F(2, 5, 3, 2), a, b);
  Interp *I = interp_new(G, NULL);
  double *av = rnd_vec(24, -1, 1), *bv = rnd_vec(40, -1, 1), ref[60];
  for (int p = 0; p < 2; p++)
    for (int q = 0; q < 5; q++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
          double s = 0;
          for (int k = 0; k < 4; k++) s += av[p * 12 + i * 4 + k] * bv[q * 8 + k * 2 + j];
          ref[((p * 5 + q) * 3 + i) * 2 + j] = s;
        }
  set(I, a, av);
  set(I, b, bv);
  run_ok(I);
  expect_close(val(I, c), ref, 60, 1e-15, 1e-14, "batched matmul");
  free(av);
  free(bv);
  interp_free(I);
}
END_TEST

START_TEST(test_matmul_vectors) {
  int v = input(F(3), "v"), m = input(F(3, 2), "m"), m2 = input(F(2, 3), "m2");
  int vm = op2(OP_MATMUL, NULL, F(2), v, m);          /* [3] @ [3,2] -> [2] */
  int mv = op2(OP_MATMUL, NULL, F(2), m2, v);         /* [2,3] @ [3] -> [2] */
  int vv = op2(OP_MATMUL, NULL, scalar(DT_F32), v, v); /* [3] @ [3] -> [] */
  Interp *I = interp_new(G, NULL);
  set(I, v, (double[]){1, 2, 3});
  set(I, m, (double[]){1, 2, 3, 4, 5, 6});
  set(I, m2, (double[]){1, 2, 3, 4, 5, 6});
  run_ok(I);
  expect_close(val(I, vm), (double[]){22, 28}, 2, 0, 0, "vec @ mat");
  expect_close(val(I, mv), (double[]){14, 32}, 2, 0, 0, "mat @ vec");
  expect_close(val(I, vv), (double[]){14}, 1, 0, 0, "vec @ vec");
  interp_free(I);
}
END_TEST

START_TEST(test_matmul_inner_mismatch) {
  int a = input(F(2, 3), "a"), b = input(F(4, 2), "b");
  op2(OP_MATMUL, NULL, F(2, 2), a, b);
  Interp *I = interp_new(G, NULL);
  set(I, a, (double[]){1, 2, 3, 4, 5, 6});
  set(I, b, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
  char err[256];
  ck_assert_int_eq(interp_run(I, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "matmul") && strstr(err, "3 vs 4"), "message: %s", err);
  interp_free(I);
}
END_TEST

/* ---- data movement ---------------------------------------------------------------------- */

START_TEST(test_transpose_reshape_broadcast) {
  int x = input(F(2, 3, 4), "x");
  IrAttr perm = {.naxes = 3, .axes = {2, 0, 1}};
  int t = op1(OP_TRANSPOSE, &perm, F(4, 2, 3), x);
  int r = op1(OP_RESHAPE, NULL, F(6, 4), x);
  int s = input(F(3, 1), "s");
  int b = op1(OP_BROADCAST, NULL, F(2, 3, 4), s);
  Interp *I = interp_new(G, NULL);
  double xv[24];
  for (int i = 0; i < 24; i++) xv[i] = i;
  set(I, x, xv);
  set(I, s, (double[]){7, 8, 9});
  run_ok(I);
  double tref[24], bref[24];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        tref[(k * 2 + i) * 3 + j] = xv[(i * 3 + j) * 4 + k];
        bref[(i * 3 + j) * 4 + k] = 7 + j;
      }
  expect_close(val(I, t), tref, 24, 0, 0, "transpose");
  expect_close(val(I, r), xv, 24, 0, 0, "reshape");
  expect_close(val(I, b), bref, 24, 0, 0, "broadcast");
  int64_t shp[IR_MAX_RANK];
  ck_assert_int_eq(interp_shape(I, t, shp), 3);
  ck_assert(shp[0] == 4 && shp[1] == 2 && shp[2] == 3);
  interp_free(I);
}
END_TEST

START_TEST(test_concat_slice) {
  int a = input(F(2, 2), "a"), b = input(F(2, 3), "b");
  int c = ir_add(G, OP_CONCAT, (int[]){a, b, a}, 3, &(IrAttr){.axis = 1}, F(2, 7), NOLOC);
  int c0 = ir_add(G, OP_CONCAT, (int[]){a, a}, 2, &(IrAttr){.axis = -2}, F(4, 2), NOLOC);
  IrAttr sl = {.axis = 1, .start = dim_const(G->dims, 2), .end = dim_const(G->dims, 5)};
  int s = op1(OP_SLICE, &sl, F(2, 3), c);
  int sb = op1(OP_SLICE_BWD, &sl, F(2, 7), s);
  Interp *I = interp_new(G, NULL);
  set(I, a, (double[]){1, 2, 3, 4});
  set(I, b, (double[]){5, 6, 7, 8, 9, 10});
  run_ok(I);
  expect_close(val(I, c), (double[]){1, 2, 5, 6, 7, 1, 2, 3, 4, 8, 9, 10, 3, 4}, 14, 0, 0, "concat");
  expect_close(val(I, c0), (double[]){1, 2, 3, 4, 1, 2, 3, 4}, 8, 0, 0, "concat axis 0");
  expect_close(val(I, s), (double[]){5, 6, 7, 8, 9, 10}, 6, 0, 0, "slice");
  expect_close(val(I, sb), (double[]){0, 0, 5, 6, 7, 0, 0, 0, 0, 8, 9, 10, 0, 0}, 14, 0, 0,
               "slice_bwd");
  interp_free(I);
}
END_TEST

START_TEST(test_slice_bwd_grad) {
  int x = input(F(3, 5), "x");
  IrAttr sl = {.axis = 1, .start = dim_const(G->dims, 1), .end = dim_const(G->dims, 4)};
  int s = op1(OP_SLICE, &sl, F(3, 3), x);
  int dy = input(F(3, 3), "dy");
  int dx = op1(OP_SLICE_BWD, &sl, F(3, 5), dy);
  Interp *I = interp_new(G, NULL);
  double *xv = rnd_vec(15, -1, 1), *dv = rnd_vec(9, -1, 1);
  set(I, x, xv);
  set(I, dy, dv);
  grad_check(I, x, s, dy, dx, "slice_bwd");
  free(xv);
  free(dv);
  interp_free(I);
}
END_TEST

/* ---- reductions ------------------------------------------------------------------------- */

START_TEST(test_reductions) {
  int x = input(F(2, 3, 2), "x");
  IrAttr ax1 = {.naxes = 1, .axes = {1}};
  IrAttr ax02k = {.naxes = 2, .axes = {0, -1}, .keepdim = true};
  IrAttr all = {0};
  IrAttr var1 = {.naxes = 1, .axes = {1}, .correction = 1};
  int s1 = op1(OP_SUM, &ax1, F(2, 2), x), m02 = op1(OP_MEAN, &ax02k, F(1, 3, 1), x);
  int mx = op1(OP_MAX, &ax1, F(2, 2), x), sa = op1(OP_SUM, &all, scalar(DT_F32), x);
  int v0 = op1(OP_VAR, &ax1, F(2, 2), x), v1 = op1(OP_VAR, &var1, F(2, 2), x);
  Interp *I = interp_new(G, NULL);
  /* x[i][j][k] */
  double xv[12] = {1, 2, 3, 4, 5, 9, /* i = 0 */ -1, 0, -7, 2, 4, 1};
  set(I, x, xv);
  run_ok(I);
  expect_close(val(I, s1), (double[]){9, 15, -4, 3}, 4, 0, 0, "sum axis 1");
  expect_close(val(I, m02), (double[]){(1 + 2 - 1 + 0) / 4.0, (3 + 4 - 7 + 2) / 4.0,
                                       (5 + 9 + 4 + 1) / 4.0}, 3, 0, 1e-15, "mean axes 0,2");
  expect_close(val(I, mx), (double[]){5, 9, 4, 2}, 4, 0, 0, "max");
  expect_close(val(I, sa), (double[]){23}, 1, 0, 0, "sum all");
  /* column (1,3,5): mean 3, squared deviations 4+0+4 = 8 */
  double ss[4] = {8, 0, 0, 0};
  double cols[4][3] = {{1, 3, 5}, {2, 4, 9}, {-1, -7, 4}, {0, 2, 1}};
  for (int c = 0; c < 4; c++) {
    double m = (cols[c][0] + cols[c][1] + cols[c][2]) / 3;
    ss[c] = 0;
    for (int k = 0; k < 3; k++) ss[c] += (cols[c][k] - m) * (cols[c][k] - m);
  }
  expect_close(val(I, v0), (double[]){ss[0] / 3, ss[1] / 3, ss[2] / 3, ss[3] / 3}, 4, 1e-15,
               1e-14, "var biased");
  expect_close(val(I, v1), (double[]){ss[0] / 2, ss[1] / 2, ss[2] / 2, ss[3] / 2}, 4, 1e-15,
               1e-14, "var unbiased");
  ck_assert(fabs(val(I, v0)[0] - 8.0 / 3) < 1e-15);
  interp_free(I);
}
END_TEST

START_TEST(test_max_bwd_grad) {
  int x = input(F(3, 4, 2), "x");
  IrAttr ax = {.naxes = 2, .axes = {0, 2}, .keepdim = true};
  int m = op1(OP_MAX, &ax, F(1, 4, 1), x);
  int dy = input(F(1, 4, 1), "dy");
  int dx = op3(OP_MAX_BWD, &ax, F(3, 4, 2), dy, x, m);
  Interp *I = interp_new(G, NULL);
  double *xv = distinct_vec(24), *dv = rnd_vec(4, -1, 1);
  set(I, x, xv);
  set(I, dy, dv);
  grad_check(I, x, m, dy, dx, "max_bwd");
  /* ties: dy goes to every maximal position */
  double tie[24] = {0};
  tie[1] = tie[8] = 5; /* x[0,0,1] and x[1,0,0]: both maxima of column 0 */
  set(I, x, tie);
  run_ok(I);
  const double *g = val(I, dx);
  ck_assert(g[1] == dv[0] && g[8] == dv[0] && g[0] == 0 && g[9] == 0);
  ck_assert(g[2] == dv[1] && g[3] == dv[1] && g[10] == dv[1]); /* column 1 is all zeros */
  free(xv);
  free(dv);
  interp_free(I);
}
END_TEST

START_TEST(test_softmax) {
  int x = input(F(2, 3), "x");
  int s1 = op1(OP_SOFTMAX, &(IrAttr){.axis = 1}, F(2, 3), x);
  int s0 = op1(OP_SOFTMAX, &(IrAttr){.axis = 0}, F(2, 3), x);
  int l1 = op1(OP_LOG_SOFTMAX, &(IrAttr){.axis = -1}, F(2, 3), x);
  Interp *I = interp_new(G, NULL);
  set(I, x, (double[]){0, 0, M_LN2, 1000, 1001, 1002});
  run_ok(I);
  expect_close(val(I, s1), (double[]){0.25, 0.25, 0.5, 0, 0, 0}, 3, 1e-16, 1e-15, "softmax row 0");
  double e = exp(1), z = 1 + e + e * e;
  expect_close(val(I, s1) + 3, (double[]){1 / z, e / z, e * e / z}, 3, 1e-16, 1e-14,
               "softmax large logits");
  expect_close(val(I, l1) + 3, (double[]){-log(z), 1 - log(z), 2 - log(z)}, 3, 1e-13, 1e-14,
               "log_softmax large logits");
  expect_close(val(I, l1), (double[]){-log(4), -log(4), -log(2)}, 3, 1e-15, 1e-15, "log_softmax");
  ck_assert(val(I, s0)[0] == 0 && val(I, s0)[3] == 1);
  interp_free(I);
}
END_TEST

START_TEST(test_softmax_bwd_grads) {
  for (int lg = 0; lg < 2; lg++)
    for (int axis = 0; axis < 3; axis++) {
      teardown();
      setup();
      int x = input(F(2, 3, 4), "x");
      IrAttr a = {.axis = axis};
      int y = op1(lg ? OP_LOG_SOFTMAX : OP_SOFTMAX, &a, F(2, 3, 4), x);
      int dy = input(F(2, 3, 4), "dy");
      int dx = op2(lg ? OP_LOG_SOFTMAX_BWD : OP_SOFTMAX_BWD, &a, F(2, 3, 4), dy, y);
      Interp *I = interp_new(G, NULL);
      double *xv = rnd_vec(24, -2, 2), *dv = rnd_vec(24, -1, 1);
      set(I, x, xv);
      set(I, dy, dv);
      grad_check(I, x, y, dy, dx, lg ? "log_softmax_bwd" : "softmax_bwd");
      free(xv);
      free(dv);
      interp_free(I);
    }
}
END_TEST

START_TEST(test_activation_bwd_grads) {
  struct { OpKind f, b; bool takes_y; } cases[] = {
      {OP_RELU, OP_RELU_BWD, true},       {OP_GELU, OP_GELU_BWD, false},
      {OP_SILU, OP_SILU_BWD, false},      {OP_SIGMOID, OP_SIGMOID_BWD, true},
      {OP_TANH, OP_TANH_BWD, true}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    teardown();
    setup();
    int x = input(F(3, 4), "x");
    int y = op1(cases[c].f, NULL, F(3, 4), x);
    int dy = input(F(3, 4), "dy");
    int dx = op2(cases[c].b, NULL, F(3, 4), dy, cases[c].takes_y ? y : x);
    Interp *I = interp_new(G, NULL);
    double *xv = distinct_vec(12), *dv = rnd_vec(12, -1, 1);
    for (int i = 0; i < 12; i++) xv[i] *= 30; /* spread over [-3.6, 3.6] */
    set(I, x, xv);
    set(I, dy, dv);
    grad_check(I, x, y, dy, dx, ir_op_name(cases[c].b));
    free(xv);
    free(dv);
    interp_free(I);
  }
}
END_TEST

/* ---- convolution and pooling ------------------------------------------------------------ */

typedef struct ConvCase {
  int N, C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dw, groups;
} ConvCase;

static int conv_out(int in, int k, int s, int p, int d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

/* direct gather form, one output element at a time */
static void naive_conv(const ConvCase *c, const double *x, const double *w, double *y) {
  int OH = conv_out(c->H, c->KH, c->sh, c->ph, c->dh), OW = conv_out(c->W, c->KW, c->sw, c->pw, c->dw);
  int Cg = c->C / c->groups, Og = c->O / c->groups;
  for (int n = 0; n < c->N; n++)
    for (int o = 0; o < c->O; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          double s = 0;
          for (int cc = 0; cc < Cg; cc++)
            for (int kh = 0; kh < c->KH; kh++)
              for (int kw = 0; kw < c->KW; kw++) {
                int ih = oh * c->sh - c->ph + kh * c->dh, iw = ow * c->sw - c->pw + kw * c->dw;
                if (ih < 0 || iw < 0 || ih >= c->H || iw >= c->W) continue;
                int ci = (o / Og) * Cg + cc;
                s += x[((n * c->C + ci) * c->H + ih) * c->W + iw] *
                     w[((o * Cg + cc) * c->KH + kh) * c->KW + kw];
              }
          y[((n * c->O + o) * OH + oh) * OW + ow] = s;
        }
}

static const ConvCase conv_cases[] = {
    {2, 3, 7, 6, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1},   /* plain */
    {2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 2, 1, 1, 1},   /* stride and asymmetric pad */
    {1, 2, 9, 8, 3, 3, 3, 1, 2, 2, 1, 2, 3, 1},   /* dilation */
    {2, 4, 6, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2},   /* groups 2 */
    {1, 4, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4},   /* depthwise */
    {1, 2, 4, 5, 2, 1, 1, 3, 2, 0, 0, 1, 1, 1},   /* 1x1 with stride */
};

static IrAttr conv_attr(const ConvCase *c) {
  return (IrAttr){.stride = {c->sh, c->sw}, .pad = {c->ph, c->pw}, .dilation = {c->dh, c->dw},
                  .groups = c->groups};
}

START_TEST(test_conv2d_vs_naive) {
  for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
    teardown();
    setup();
    const ConvCase *c = &conv_cases[k];
    int OH = conv_out(c->H, c->KH, c->sh, c->ph, c->dh), OW = conv_out(c->W, c->KW, c->sw, c->pw, c->dw);
    int x = input(F(c->N, c->C, c->H, c->W), "x");
    int w = input(F(c->O, c->C / c->groups, c->KH, c->KW), "w");
    IrAttr a = conv_attr(c);
    int y = op2(OP_CONV2D, &a, F(c->N, c->O, OH, OW), x, w);
    Interp *I = interp_new(G, NULL);
    double *xv = rnd_vec(numel_of(x), -1, 1), *wv = rnd_vec(numel_of(w), -1, 1);
    double *ref = malloc((size_t)numel_of(y) * sizeof(double));
    naive_conv(c, xv, wv, ref);
    set(I, x, xv);
    set(I, w, wv);
    run_ok(I);
    char what[64];
    snprintf(what, sizeof what, "conv2d case %zu", k);
    expect_close(val(I, y), ref, numel_of(y), 1e-14, 1e-13, what);
    free(xv);
    free(wv);
    free(ref);
    interp_free(I);
  }
}
END_TEST

START_TEST(test_conv2d_by_hand) {
  /* 1x1x3x3 input 1..9, 2x2 filter of ones, pad 0: window sums */
  int x = input(F(1, 1, 3, 3), "x"), w = input(F(1, 1, 2, 2), "w");
  int y = op2(OP_CONV2D, &(IrAttr){0}, F(1, 1, 2, 2), x, w);
  int yp = op2(OP_CONV2D, &(IrAttr){.pad = {1, 1}, .stride = {2, 2}}, F(1, 1, 2, 2), x, w);
  Interp *I = interp_new(G, NULL);
  set(I, x, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
  set(I, w, (double[]){1, 1, 1, 1});
  run_ok(I);
  expect_close(val(I, y), (double[]){12, 16, 24, 28}, 4, 0, 0, "conv by hand");
  /* windows at (-1,-1), (-1,1), (1,-1), (1,1) */
  expect_close(val(I, yp), (double[]){1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9}, 4, 0, 0, "padded strided");
  interp_free(I);
}
END_TEST

START_TEST(test_conv2d_bwd_grads) {
  for (size_t k = 0; k < sizeof conv_cases / sizeof conv_cases[0]; k++) {
    teardown();
    setup();
    const ConvCase *c = &conv_cases[k];
    int OH = conv_out(c->H, c->KH, c->sh, c->ph, c->dh), OW = conv_out(c->W, c->KW, c->sw, c->pw, c->dw);
    int x = input(F(c->N, c->C, c->H, c->W), "x");
    int w = input(F(c->O, c->C / c->groups, c->KH, c->KW), "w");
    IrAttr a = conv_attr(c);
    int y = op2(OP_CONV2D, &a, F(c->N, c->O, OH, OW), x, w);
    int dy = input(F(c->N, c->O, OH, OW), "dy");
    int dx = op2(OP_CONV2D_BWD_DATA, &a, F(c->N, c->C, c->H, c->W), dy, w);
    int dw = op2(OP_CONV2D_BWD_FILTER, &a, F(c->O, c->C / c->groups, c->KH, c->KW), x, dy);
    Interp *I = interp_new(G, NULL);
    double *xv = rnd_vec(numel_of(x), -1, 1), *wv = rnd_vec(numel_of(w), -1, 1);
    double *dv = rnd_vec(numel_of(dy), -1, 1);
    set(I, x, xv);
    set(I, w, wv);
    set(I, dy, dv);
    char what[64];
    snprintf(what, sizeof what, "conv2d_bwd_data case %zu", k);
    grad_check(I, x, y, dy, dx, what);
    snprintf(what, sizeof what, "conv2d_bwd_filter case %zu", k);
    grad_check(I, w, y, dy, dw, what);
    free(xv);
    free(wv);
    free(dv);
    interp_free(I);
  }
}
END_TEST

START_TEST(test_pool_by_hand) {
  /* 4x4 input 0..15; maxpool 2x2 stride 2; avgpool 3x3 stride 1 pad 1 (divides by 9) */
  int x = input(F(1, 1, 4, 4), "x");
  int mp = op1(OP_MAXPOOL, &(IrAttr){.kernel = {2, 2}}, F(1, 1, 2, 2), x);
  IrAttr ap = {.kernel = {3, 3}, .stride = {1, 1}, .pad = {1, 1}};
  int av = op1(OP_AVGPOOL, &ap, F(1, 1, 4, 4), x);
  IrAttr mpp = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}};
  int mp2 = op1(OP_MAXPOOL, &mpp, F(1, 1, 2, 2), x);
  Interp *I = interp_new(G, NULL);
  double xv[16];
  for (int i = 0; i < 16; i++) xv[i] = i - 20; /* all negative: padding must not win */
  set(I, x, xv);
  run_ok(I);
  expect_close(val(I, mp), (double[]){5 - 20, 7 - 20, 13 - 20, 15 - 20}, 4, 0, 0, "maxpool");
  expect_close(val(I, mp2), (double[]){5 - 20, 7 - 20, 13 - 20, 15 - 20}, 4, 0, 0, "maxpool pad");
  /* corner (0,0): elements 0,1,4,5 -> (0+1+4+5 - 80)/9 */
  ck_assert(fabs(val(I, av)[0] - (10.0 - 80) / 9) < 1e-14);
  /* centre (1,1): 0,1,2,4,5,6,8,9,10 */
  ck_assert(fabs(val(I, av)[5] - (45.0 - 180) / 9) < 1e-14);
  interp_free(I);
}
END_TEST

/* naive pools in gather form for random cases */
static void naive_pool(bool is_max, const ConvCase *c, const double *x, double *y) {
  int OH = conv_out(c->H, c->KH, c->sh, c->ph, c->dh), OW = conv_out(c->W, c->KW, c->sw, c->pw, c->dw);
  for (int p = 0; p < c->N * c->C; p++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        double acc = is_max ? -INFINITY : 0;
        for (int kh = 0; kh < c->KH; kh++)
          for (int kw = 0; kw < c->KW; kw++) {
            int ih = oh * c->sh - c->ph + kh * c->dh, iw = ow * c->sw - c->pw + kw * c->dw;
            double v = (ih < 0 || iw < 0 || ih >= c->H || iw >= c->W)
                           ? (is_max ? -INFINITY : 0) : x[(p * c->H + ih) * c->W + iw];
            acc = is_max ? fmax(acc, v) : acc + v;
          }
        y[(p * OH + oh) * OW + ow] = is_max ? acc : acc / (c->KH * c->KW);
      }
}

static const ConvCase pool_cases[] = {
    {2, 3, 6, 6, 3, 2, 2, 2, 2, 0, 0, 1, 1, 1},
    {1, 2, 7, 5, 2, 3, 3, 2, 1, 1, 1, 1, 1, 1},
    {1, 2, 8, 7, 2, 3, 2, 1, 2, 1, 0, 2, 1, 1}, /* dilated */
};

START_TEST(test_pools_vs_naive_and_grads) {
  for (size_t k = 0; k < sizeof pool_cases / sizeof pool_cases[0]; k++)
    for (int is_max = 0; is_max < 2; is_max++) {
      if (!is_max && pool_cases[k].dh > 1) continue;
      teardown();
      setup();
      const ConvCase *c = &pool_cases[k];
      int OH = conv_out(c->H, c->KH, c->sh, c->ph, c->dh), OW = conv_out(c->W, c->KW, c->sw, c->pw, c->dw);
      IrAttr a = {.kernel = {c->KH, c->KW}, .stride = {c->sh, c->sw}, .pad = {c->ph, c->pw},
                  .dilation = {c->dh, c->dw}};
      int x = input(F(c->N, c->C, c->H, c->W), "x");
      int y = op1(is_max ? OP_MAXPOOL : OP_AVGPOOL, &a, F(c->N, c->C, OH, OW), x);
      int dy = input(F(c->N, c->C, OH, OW), "dy");
      int dx = is_max ? op2(OP_MAXPOOL_BWD, &a, F(c->N, c->C, c->H, c->W), dy, x)
                      : op1(OP_AVGPOOL_BWD, &a, F(c->N, c->C, c->H, c->W), dy);
      Interp *I = interp_new(G, NULL);
      double *xv = distinct_vec(numel_of(x)), *dv = rnd_vec(numel_of(dy), -1, 1);
      double *ref = malloc((size_t)numel_of(y) * sizeof(double));
      naive_pool(is_max, c, xv, ref);
      set(I, x, xv);
      set(I, dy, dv);
      run_ok(I);
      char what[64];
      snprintf(what, sizeof what, "%s case %zu", is_max ? "maxpool" : "avgpool", k);
      expect_close(val(I, y), ref, numel_of(y), 1e-15, 1e-14, what);
      grad_check(I, x, y, dy, dx, what);
      free(xv);
      free(dv);
      free(ref);
      interp_free(I);
    }
}
END_TEST

START_TEST(test_maxpool_bwd_first_max) {
  /* a window of equal values sends the gradient to its first element only */
  int x = input(F(1, 1, 2, 2), "x");
  int dy = input(F(1, 1, 1, 1), "dy");
  int dx = op2(OP_MAXPOOL_BWD, &(IrAttr){.kernel = {2, 2}}, F(1, 1, 2, 2), dy, x);
  Interp *I = interp_new(G, NULL);
  set(I, x, (double[]){1, 3, 3, 3});
  set(I, dy, (double[]){2});
  run_ok(I);
  expect_close(val(I, dx), (double[]){0, 2, 0, 0}, 4, 0, 0, "first max");
  interp_free(I);
}
END_TEST

/* ---- normalization ---------------------------------------------------------------------- */

START_TEST(test_batchnorm_values) {
  /* x [2,2,1,2]: channel 0 = {1,2,5,6}, channel 1 = {0,0,4,4} */
  int x = input(F(2, 2, 1, 2), "x");
  int g = input(F(2), "g"), b = input(F(2), "b"), rm = input(F(2), "rm"), rv = input(F(2), "rv");
  IrAttr tr = {.train = true, .value = 1e-5}, ev = {.value = 1e-5};
  int yt = ir_add(G, OP_BATCHNORM, (int[]){x, g, b, rm, rv}, 5, &tr, F(2, 2, 1, 2), NOLOC);
  int ye = ir_add(G, OP_BATCHNORM, (int[]){x, g, b, rm, rv}, 5, &ev, F(2, 2, 1, 2), NOLOC);
  Interp *I = interp_new(G, NULL);
  set(I, x, (double[]){1, 2, 0, 0, 5, 6, 4, 4});
  set(I, g, (double[]){2, 1});
  set(I, b, (double[]){0.5, -1});
  set(I, rm, (double[]){1, 2});
  set(I, rv, (double[]){4, 0.25});
  run_ok(I);
  /* channel 0: mean 3.5, var (6.25+2.25+2.25+6.25)/4 = 4.25; channel 1: mean 2, var 4 */
  double s0 = 1 / sqrt(4.25 + 1e-5), s1 = 1 / sqrt(4 + 1e-5);
  double ref[8] = {2 * -2.5 * s0 + 0.5, 2 * -1.5 * s0 + 0.5, -2 * s1 - 1, -2 * s1 - 1,
                   2 * 1.5 * s0 + 0.5,  2 * 2.5 * s0 + 0.5,  2 * s1 - 1,  2 * s1 - 1};
  expect_close(val(I, yt), ref, 8, 1e-15, 1e-14, "batchnorm train");
  double e0 = 1 / sqrt(4 + 1e-5), e1 = 1 / sqrt(0.25 + 1e-5);
  double eref[8] = {0.5, 2 * e0 + 0.5, -2 * e1 - 1, -2 * e1 - 1,
                    8 * e0 + 0.5, 10 * e0 + 0.5, 2 * e1 - 1, 2 * e1 - 1};
  expect_close(val(I, ye), eref, 8, 1e-15, 1e-14, "batchnorm eval");
  interp_free(I);
}
END_TEST

START_TEST(test_batchnorm_grads) {
  for (int rank4 = 0; rank4 < 2; rank4++) {
    teardown();
    setup();
    IrType tx = rank4 ? F(3, 2, 2, 3) : F(5, 3);
    int C = rank4 ? 2 : 3;
    int x = input(tx, "x"), g = input(F(C), "g"), b = input(F(C), "b");
    int rm = input(F(C), "rm"), rv = input(F(C), "rv");
    IrAttr tr = {.train = true, .value = 1e-3};
    int y = ir_add(G, OP_BATCHNORM, (int[]){x, g, b, rm, rv}, 5, &tr, tx, NOLOC);
    int dy = input(tx, "dy");
    int dx = op3(OP_BATCHNORM_BWD, &tr, tx, dy, x, g);
    int dg = op2(OP_BN_DGAMMA, &tr, F(C), dy, x);
    Interp *I = interp_new(G, NULL);
    int64_t n = numel_of(x);
    double *xv = rnd_vec(n, -2, 2), *dv = rnd_vec(n, -1, 1), *gv = rnd_vec(C, 0.5, 1.5);
    double *bv = rnd_vec(C, -1, 1), *rmv = rnd_vec(C, -1, 1), *rvv = rnd_vec(C, 0.5, 2);
    set(I, x, xv);
    set(I, g, gv);
    set(I, b, bv);
    set(I, rm, rmv);
    set(I, rv, rvv);
    set(I, dy, dv);
    grad_check(I, x, y, dy, dx, "batchnorm_bwd");
    grad_check(I, g, y, dy, dg, "bn_dgamma");
    free(xv), free(dv), free(gv), free(bv), free(rmv), free(rvv);
    interp_free(I);
  }
}
END_TEST

START_TEST(test_layernorm_values_and_grads) {
  int x = input(F(3, 2, 4), "x"), g = input(F(2, 4), "g"), b = input(F(2, 4), "b");
  IrAttr a = {.naxes = 2, .value = 1e-5};
  int y = op3(OP_LAYERNORM, &a, F(3, 2, 4), x, g, b);
  int dy = input(F(3, 2, 4), "dy");
  int dx = op3(OP_LAYERNORM_BWD, &a, F(3, 2, 4), dy, x, g);
  int dg = op2(OP_LN_DGAMMA, &a, F(2, 4), dy, x);
  Interp *I = interp_new(G, NULL);
  double *xv = rnd_vec(24, -2, 2), *dv = rnd_vec(24, -1, 1), *gv = rnd_vec(8, 0.5, 1.5);
  double *bv = rnd_vec(8, -1, 1);
  set(I, x, xv);
  set(I, g, gv);
  set(I, b, bv);
  set(I, dy, dv);
  run_ok(I);
  double ref[24];
  for (int r = 0; r < 3; r++) {
    double m = 0, v = 0;
    for (int j = 0; j < 8; j++) m += xv[r * 8 + j] / 8;
    for (int j = 0; j < 8; j++) v += (xv[r * 8 + j] - m) * (xv[r * 8 + j] - m) / 8;
    for (int j = 0; j < 8; j++) ref[r * 8 + j] = (xv[r * 8 + j] - m) / sqrt(v + 1e-5) * gv[j] + bv[j];
  }
  expect_close(val(I, y), ref, 24, 1e-14, 1e-14, "layernorm");
  grad_check(I, x, y, dy, dx, "layernorm_bwd");
  grad_check(I, g, y, dy, dg, "ln_dgamma");
  free(xv), free(dv), free(gv), free(bv);
  interp_free(I);
}
END_TEST

/* ---- dropout ---------------------------------------------------------------------------- */

START_TEST(test_dropout) {
  const int n = 20000;
  int x = input(F(n), "x");
  IrAttr a = {.train = true, .value = 0.3, .seed = 17};
  int y = op1(OP_DROPOUT, &a, F(n), x);
  int dy = input(F(n), "dy");
  int dx = op1(OP_DROPOUT_BWD, &a, F(n), dy);
  int ye = op1(OP_DROPOUT, &(IrAttr){.value = 0.3, .seed = 17}, F(n), x);
  InterpOptions o = {.seed = 5, .step = 3};
  Interp *I = interp_new(G, &o);
  double *xv = rnd_vec(n, 1, 2), *dv = rnd_vec(n, 1, 2);
  set(I, x, xv);
  set(I, dy, dv);
  run_ok(I);
  int kept = 0;
  for (int i = 0; i < n; i++) {
    double yi = val(I, y)[i], gi = val(I, dx)[i];
    bool keep = interp_philox_uniform(5, 17 + (3ull << 32), (uint64_t)i) >= 0.3;
    ck_assert(keep == (yi != 0));
    ck_assert((yi != 0) == (gi != 0));
    if (keep) {
      kept++;
      ck_assert(fabs(yi - xv[i] / 0.7) < 1e-15 && fabs(gi - dv[i] / 0.7) < 1e-15);
    }
  }
  /* binomial(20000, 0.7): sd ~ 65 */
  ck_assert_msg(abs(kept - 14000) < 400, "kept %d of %d", kept, n);
  expect_close(val(I, ye), xv, n, 0, 0, "dropout eval is identity");
  interp_free(I);
  /* another step draws another mask */
  o.step = 4;
  I = interp_new(G, &o);
  set(I, x, xv);
  set(I, dy, dv);
  run_ok(I);
  int same = 0;
  for (int i = 0; i < n; i++) {
    bool keep3 = interp_philox_uniform(5, 17 + (3ull << 32), (uint64_t)i) >= 0.3;
    same += keep3 == (val(I, y)[i] != 0);
  }
  ck_assert_msg(same < n * 0.7, "masks of steps 3 and 4 agree on %d of %d", same, n);
  free(xv);
  free(dv);
  interp_free(I);
}
END_TEST

START_TEST(test_dropout_bwd_grad) {
  int x = input(F(40), "x");
  IrAttr a = {.train = true, .value = 0.5, .seed = 3};
  int y = op1(OP_DROPOUT, &a, F(40), x);
  int dy = input(F(40), "dy");
  int dx = op1(OP_DROPOUT_BWD, &a, F(40), dy);
  InterpOptions o = {.seed = 9};
  Interp *I = interp_new(G, &o);
  double *xv = rnd_vec(40, -1, 1), *dv = rnd_vec(40, -1, 1);
  set(I, x, xv);
  set(I, dy, dv);
  grad_check(I, x, y, dy, dx, "dropout_bwd");
  free(xv);
  free(dv);
  interp_free(I);
}
END_TEST

/* ---- embedding and losses --------------------------------------------------------------- */

START_TEST(test_embedding) {
  int tab = input(F(4, 3), "table"), idx = input(T(DT_I32, 2, 2), "idx");
  int e = op2(OP_EMBEDDING, NULL, F(2, 2, 3), tab, idx);
  int dy = input(F(2, 2, 3), "dy");
  int dt = op2(OP_EMBEDDING_BWD, NULL, F(4, 3), dy, idx);
  Interp *I = interp_new(G, NULL);
  double tv[12];
  for (int i = 0; i < 12; i++) tv[i] = i;
  set(I, tab, tv);
  set(I, idx, (double[]){3, 0, 3, 1});
  double *dv = rnd_vec(12, -1, 1);
  set(I, dy, dv);
  run_ok(I);
  expect_close(val(I, e), (double[]){9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5}, 12, 0, 0, "embedding");
  double ref[12] = {0};
  for (int j = 0; j < 3; j++) {
    ref[0 * 3 + j] = dv[3 + j];
    ref[1 * 3 + j] = dv[9 + j];
    ref[3 * 3 + j] = dv[j] + dv[6 + j];
  }
  expect_close(val(I, dt), ref, 12, 0, 1e-15, "embedding_bwd");
  grad_check(I, tab, e, dy, dt, "embedding_bwd vs fd");
  set(I, idx, (double[]){3, 0, 4, 1});
  char err[256];
  ck_assert_int_eq(interp_run(I, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "%2 embedding") && strstr(err, "index 4 at position 2") &&
                    strstr(err, "[0, 4)"),
                "message: %s", err);
  free(dv);
  interp_free(I);
}
END_TEST

START_TEST(test_cross_entropy) {
  int lg = input(F(2, 3), "logits"), lab = input(T(DT_I32, 2), "label");
  int l = op2(OP_CROSS_ENTROPY, NULL, scalar(DT_F32), lg, lab);
  G->nodes[l].name = "loss";
  Interp *I = interp_new(G, NULL);
  set(I, lg, (double[]){0, 0, 0, 1000, 0, 1000});
  set(I, lab, (double[]){1, 0});
  run_ok(I);
  /* row 0: log 3; row 1: logsumexp = 1000 + log 2, minus 1000 (ulp(1000) ~ 1e-13) */
  ck_assert(fabs(val(I, l)[0] - (log(3) + log(2)) / 2) < 1e-12);
  set(I, lab, (double[]){1, 3});
  char err[256];
  ck_assert_int_eq(interp_run(I, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "cross_entropy 'loss'") && strstr(err, "label 3 at position 1") &&
                    strstr(err, "[0, 3)"),
                "message: %s", err);
  set(I, lab, (double[]){-1, 0});
  ck_assert_int_eq(interp_run(I, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "label -1 at position 0"), "message: %s", err);
  interp_free(I);
}
END_TEST

START_TEST(test_ce_bwd_grad) {
  int lg = input(F(4, 5), "logits"), lab = input(T(DT_I32, 4), "label");
  int l = op2(OP_CROSS_ENTROPY, NULL, scalar(DT_F32), lg, lab);
  int dl = input(scalar(DT_F32), "dloss");
  int dx = op3(OP_CE_BWD, NULL, F(4, 5), dl, lg, lab);
  Interp *I = interp_new(G, NULL);
  double *xv = rnd_vec(20, -3, 3);
  set(I, lg, xv);
  set(I, lab, (double[]){0, 4, 2, 2});
  set(I, dl, (double[]){1.7});
  grad_check(I, lg, l, dl, dx, "cross_entropy_bwd");
  free(xv);
  interp_free(I);
}
END_TEST

START_TEST(test_mse) {
  int a = input(F(2, 2), "a"), b = input(F(2, 2), "b");
  int m = op2(OP_MSE, NULL, scalar(DT_F32), a, b);
  Interp *I = interp_new(G, NULL);
  set(I, a, (double[]){1, 2, 3, 4});
  set(I, b, (double[]){0, 2, 5, 1});
  run_ok(I);
  ck_assert(val(I, m)[0] == (1.0 + 0 + 4 + 9) / 4);
  interp_free(I);
}
END_TEST

/* ---- leaves, assign, errors ------------------------------------------------------------- */

START_TEST(test_missing_input) {
  int x = input(F(2), "images");
  op1(OP_RELU, NULL, F(2), x);
  Interp *I = interp_new(G, NULL);
  char err[256];
  ck_assert_int_eq(interp_run(I, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "%0 input 'images'") && strstr(err, "no value"), "message: %s", err);
  ck_assert_int_eq(interp_set(I, x, (double[]){1, 2, 3}, 3), -1); /* wrong numel */
  ck_assert_int_eq(interp_set(I, 1, (double[]){1, 2}, 2), -1);    /* not a leaf */
  ck_assert_int_eq(interp_set_f32(I, x, (float[]){-1, 2}, 2), 0);
  run_ok(I);
  ck_assert(val(I, 1)[0] == 0 && val(I, 1)[1] == 2);
  interp_free(I);
}
END_TEST

START_TEST(test_assign_commits_after_step) {
  int w = ir_add(G, OP_PARAM, NULL, 0, &(IrAttr){.init = INIT_ONES, .trainable = true}, F(3), NOLOC);
  G->nodes[w].name = "w";
  int g = input(F(3), "g");
  int lr = ir_add(G, OP_CONST, NULL, 0, &(IrAttr){.value = 0.5}, scalar(DT_F32), NOLOC);
  int step = op2(OP_MUL, NULL, F(3), lr, g);
  int nw = op2(OP_SUB, NULL, F(3), w, step);
  int as = op2(OP_ASSIGN, NULL, F(3), w, nw);
  int after = op2(OP_ADD, NULL, F(3), w, w); /* a read after the ASSIGN node sees the old w */
  Interp *I = interp_new(G, NULL);
  char err[256];
  ck_assert_int_eq(interp_run(I, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "param 'w'") && strstr(err, "no value"), "message: %s", err);
  double wv[3];
  interp_init_param(G, w, 1, wv);
  set(I, w, wv);
  set(I, g, (double[]){2, 4, -6});
  run_ok(I);
  expect_close(val(I, after), (double[]){2, 2, 2}, 3, 0, 0, "reads see the old value");
  expect_close(val(I, w), (double[]){0, -1, 4}, 3, 0, 0, "committed");
  expect_close(val(I, as), (double[]){0, -1, 4}, 3, 0, 0, "assign value");
  run_ok(I); /* a second step starts from the committed value */
  expect_close(val(I, w), (double[]){-1, -3, 7}, 3, 0, 0, "second step");
  interp_free(I);
}
END_TEST

START_TEST(test_op_table_complete) {
  for (int op = 0; op < OP_COUNT; op++)
    ck_assert_msg(interp_op_defined((OpKind)op), "no evaluation for %s", ir_op_name((OpKind)op));
  ck_assert(!interp_op_defined(OP_COUNT));
}
END_TEST

/* ---- random numbers and initialization -------------------------------------------------- */

START_TEST(test_philox_known_answers) {
  /* Random123 kat_vectors: counter[4] key[2] -> output[4] */
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
       0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
       0x94fdcceb, 0x5001e420, 0x24126ea1}};
  for (int k = 0; k < 3; k++) {
    uint32_t out[4];
    rt_philox4x32_10(kat[k], kat[k] + 4, out);
    for (int j = 0; j < 4; j++)
      ck_assert_msg(out[j] == kat[k][6 + j], "vector %d word %d: %08x", k, j, out[j]);
    /* the same vector through the public uniform: key = seed, counter = (i, stream) */
    uint64_t seed = kat[k][4] | (uint64_t)kat[k][5] << 32;
    uint64_t i = kat[k][0] | (uint64_t)kat[k][1] << 32;
    uint64_t stream = kat[k][2] | (uint64_t)kat[k][3] << 32;
    ck_assert(interp_philox_uniform(seed, stream, i) == (double)(kat[k][6] >> 8) * 0x1p-24);
  }
}
END_TEST

START_TEST(test_philox_uniform_stats) {
  const int n = 100000;
  double s = 0, s2 = 0, lo = 1, hi = 0;
  for (int i = 0; i < n; i++) {
    double u = interp_philox_uniform(42, 7, (uint64_t)i);
    s += u;
    s2 += u * u;
    lo = fmin(lo, u);
    hi = fmax(hi, u);
  }
  double m = s / n, v = s2 / n - m * m;
  ck_assert_msg(fabs(m - 0.5) < 0.005 && fabs(v - 1.0 / 12) < 0.002, "mean %g var %g", m, v);
  ck_assert(lo >= 0 && hi < 1);
}
END_TEST

static int add_param(const char *name, InitKind init, double a, double b, IrType t) {
  IrAttr at = {.init = init, .init_a = a, .init_b = b, .trainable = true};
  int id = ir_add(G, OP_PARAM, NULL, 0, &at, t, NOLOC);
  G->nodes[id].name = name;
  return id;
}

static void moments(const double *v, int64_t n, double *mean, double *sd, double *maxabs) {
  double s = 0, s2 = 0;
  *maxabs = 0;
  for (int64_t i = 0; i < n; i++) {
    s += v[i];
    s2 += v[i] * v[i];
    *maxabs = fmax(*maxabs, fabs(v[i]));
  }
  *mean = s / (double)n;
  *sd = sqrt(s2 / (double)n - *mean * *mean);
}

START_TEST(test_init_param) {
  int wn = add_param("fc.weight", INIT_NORMAL, 0.02, 0, F(200, 100));
  int wu = add_param("u", INIT_UNIFORM, -2, 3, F(20000));
  int wx = add_param("conv.weight", INIT_XAVIER, 0, 0, F(64, 32, 3, 3));
  int wh = add_param("conv2.weight", INIT_HE, 0, 0, F(64, 32, 3, 3));
  int wc = add_param("c", INIT_CONST, 0.25, 0, F(3));
  int wz = add_param("z", INIT_ZEROS, 0, 0, F(3));
  int wo = add_param("o", INIT_ONES, 0, 0, F(3));
  int wn2 = add_param("fc2.weight", INIT_NORMAL, 0.02, 0, F(200, 100));
  double *a = malloc(20000 * sizeof(double)), *b = malloc(20000 * sizeof(double));
  double *c = malloc(20000 * sizeof(double));
  double m, sd, mx;
  interp_init_param(G, wn, 7, a);
  interp_init_param(G, wn, 7, b);
  ck_assert(memcmp(a, b, 20000 * sizeof(double)) == 0);
  moments(a, 20000, &m, &sd, &mx);
  ck_assert_msg(fabs(m) < 0.001 && fabs(sd - 0.02) < 0.0008, "normal: mean %g sd %g", m, sd);
  interp_init_param(G, wn2, 7, c); /* another name, another stream */
  ck_assert(memcmp(a, c, 20000 * sizeof(double)) != 0);
  interp_init_param(G, wn, 8, c); /* another seed */
  ck_assert(memcmp(a, c, 20000 * sizeof(double)) != 0);
  /* the same name elsewhere in another graph gives the same values */
  teardown();
  setup();
  add_param("x", INIT_ZEROS, 0, 0, F(5));
  int again = add_param("fc.weight", INIT_NORMAL, 0.02, 0, F(200, 100));
  interp_init_param(G, again, 7, c);
  ck_assert(memcmp(a, c, 20000 * sizeof(double)) == 0);
  teardown();
  setup();
  wn = add_param("fc.weight", INIT_NORMAL, 0.02, 0, F(200, 100));
  wu = add_param("u", INIT_UNIFORM, -2, 3, F(20000));
  wx = add_param("conv.weight", INIT_XAVIER, 0, 0, F(64, 32, 3, 3));
  wh = add_param("conv2.weight", INIT_HE, 0, 0, F(64, 32, 3, 3));
  wc = add_param("c", INIT_CONST, 0.25, 0, F(3));
  wz = add_param("z", INIT_ZEROS, 0, 0, F(3));
  wo = add_param("o", INIT_ONES, 0, 0, F(3));
  interp_init_param(G, wu, 1, a);
  moments(a, 20000, &m, &sd, &mx);
  ck_assert_msg(fabs(m - 0.5) < 0.05 && fabs(sd - 5 / sqrt(12)) < 0.02, "uniform %g %g", m, sd);
  for (int i = 0; i < 20000; i++) ck_assert(a[i] >= -2 && a[i] < 3);
  /* xavier: fan_in = 32*9, fan_out = 64*9, bound sqrt(6/864) */
  double bound = sqrt(6.0 / (288 + 576));
  interp_init_param(G, wx, 1, a);
  moments(a, 18432, &m, &sd, &mx);
  ck_assert_msg(mx <= bound && mx > 0.99 * bound && fabs(sd - bound / sqrt(3)) < 0.002,
                "xavier max %g sd %g bound %g", mx, sd, bound);
  /* he: std sqrt(2/288) */
  interp_init_param(G, wh, 1, a);
  moments(a, 18432, &m, &sd, &mx);
  ck_assert_msg(fabs(sd - sqrt(2.0 / 288)) < 0.002 && fabs(m) < 0.002, "he sd %g", sd);
  interp_init_param(G, wc, 1, a);
  interp_init_param(G, wz, 1, a + 3);
  interp_init_param(G, wo, 1, a + 6);
  expect_close(a, (double[]){0.25, 0.25, 0.25, 0, 0, 0, 1, 1, 1}, 9, 0, 0, "const/zeros/ones");
  (void)wn;
  free(a);
  free(b);
  free(c);
}
END_TEST

/* ---- speed: a LeNet forward at batch 4 ---------------------------------------------------- */

START_TEST(test_lenet_forward_speed) {
  const int N = 4;
  int x = input(F(N, 1, 28, 28), "x");
  int w1 = input(F(6, 1, 5, 5), "w1"), w2 = input(F(16, 6, 5, 5), "w2");
  int f1 = input(F(400, 120), "f1"), f2 = input(F(120, 84), "f2"), f3 = input(F(84, 10), "f3");
  int lab = input(T(DT_I32, N), "label");
  IrAttr pad2 = {.pad = {2, 2}}, pool = {.kernel = {2, 2}};
  int c1 = op1(OP_RELU, NULL, F(N, 6, 28, 28), op2(OP_CONV2D, &pad2, F(N, 6, 28, 28), x, w1));
  int p1 = op1(OP_MAXPOOL, &pool, F(N, 6, 14, 14), c1);
  int c2 = op1(OP_RELU, NULL, F(N, 16, 10, 10), op2(OP_CONV2D, &(IrAttr){0}, F(N, 16, 10, 10), p1, w2));
  int p2 = op1(OP_MAXPOOL, &pool, F(N, 16, 5, 5), c2);
  int h = op1(OP_RESHAPE, NULL, F(N, 400), p2);
  h = op1(OP_RELU, NULL, F(N, 120), op2(OP_MATMUL, NULL, F(N, 120), h, f1));
  h = op1(OP_RELU, NULL, F(N, 84), op2(OP_MATMUL, NULL, F(N, 84), h, f2));
  h = op2(OP_MATMUL, NULL, F(N, 10), h, f3);
  int loss = op2(OP_CROSS_ENTROPY, NULL, scalar(DT_F32), h, lab);
  Interp *I = interp_new(G, NULL);
  int ins[] = {x, w1, w2, f1, f2, f3};
  for (int k = 0; k < 6; k++) {
    double *v = rnd_vec(numel_of(ins[k]), -0.3, 0.3);
    set(I, ins[k], v);
    free(v);
  }
  set(I, lab, (double[]){1, 2, 3, 4});
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  run_ok(I);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  ck_assert(isfinite(val(I, loss)[0]) && val(I, loss)[0] > 0);
  /* generous bound: catches accidental quadratic work, not scheduling noise */
  ck_assert_msg(s < 2.0, "LeNet forward took %.3f s", s);
  interp_free(I);
}
END_TEST

static Suite *interp_suite(void) {
  Suite *s = suite_create("interp");
  TCase *t = tcase_create("ops");
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_set_timeout(t, 120);
  tcase_add_test(t, test_unary_values);
  tcase_add_test(t, test_sigmoid_extremes);
  tcase_add_test(t, test_log_sqrt);
  tcase_add_test(t, test_broadcast_binary);
  tcase_add_test(t, test_broadcast_mismatch_is_error);
  tcase_add_test(t, test_cast_rounding);
  tcase_add_test(t, test_round_storage);
  tcase_add_test(t, test_const);
  tcase_add_test(t, test_matmul_2d_and_transposes);
  tcase_add_test(t, test_matmul_batched_broadcast);
  tcase_add_test(t, test_matmul_vectors);
  tcase_add_test(t, test_matmul_inner_mismatch);
  tcase_add_test(t, test_transpose_reshape_broadcast);
  tcase_add_test(t, test_concat_slice);
  tcase_add_test(t, test_slice_bwd_grad);
  tcase_add_test(t, test_reductions);
  tcase_add_test(t, test_max_bwd_grad);
  tcase_add_test(t, test_softmax);
  tcase_add_test(t, test_softmax_bwd_grads);
  tcase_add_test(t, test_activation_bwd_grads);
  tcase_add_test(t, test_conv2d_by_hand);
  tcase_add_test(t, test_conv2d_vs_naive);
  tcase_add_test(t, test_conv2d_bwd_grads);
  tcase_add_test(t, test_pool_by_hand);
  tcase_add_test(t, test_pools_vs_naive_and_grads);
  tcase_add_test(t, test_maxpool_bwd_first_max);
  tcase_add_test(t, test_batchnorm_values);
  tcase_add_test(t, test_batchnorm_grads);
  tcase_add_test(t, test_layernorm_values_and_grads);
  tcase_add_test(t, test_dropout);
  tcase_add_test(t, test_dropout_bwd_grad);
  tcase_add_test(t, test_embedding);
  tcase_add_test(t, test_cross_entropy);
  tcase_add_test(t, test_ce_bwd_grad);
  tcase_add_test(t, test_mse);
  tcase_add_test(t, test_missing_input);
  tcase_add_test(t, test_assign_commits_after_step);
  tcase_add_test(t, test_op_table_complete);
  tcase_add_test(t, test_philox_known_answers);
  tcase_add_test(t, test_philox_uniform_stats);
  tcase_add_test(t, test_init_param);
  tcase_add_test(t, test_lenet_forward_speed);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(interp_suite());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
