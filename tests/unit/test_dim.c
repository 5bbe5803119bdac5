/* test_dim.c — the symbolic dimension algebra: canonical form and interning, arithmetic,
 * floor-division folding, exact division, evaluation, printing, and randomized identities
 * checked against a direct integer evaluation of the same expression tree. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dim.h"

static DimCtx *c;
static int sN, sH, sW;
static Dim *N, *H, *W;

static void setup(void) {
  c = dim_ctx_new();
  sN = dim_sym_declare(c, "N", 64);
  sH = dim_sym_declare(c, "H", 28);
  sW = dim_sym_declare(c, "W", 5);
  N = dim_sym(c, sN);
  H = dim_sym(c, sH);
  W = dim_sym(c, sW);
}

static void teardown(void) { dim_ctx_free(c); }

static Dim *K(int64_t v) { return dim_const(c, v); }
static Dim *add(Dim *a, Dim *b) { return dim_add(c, a, b); }
static Dim *sub(Dim *a, Dim *b) { return dim_sub(c, a, b); }
static Dim *mul(Dim *a, Dim *b) { return dim_mul(c, a, b); }

static int64_t ref_floordiv(int64_t a, int64_t k) {
  int64_t q = a / k;
  if (a % k != 0 && a < 0) q--;
  return q;
}

#define ck_str(d, s) ck_assert_str_eq(dim_str(c, (d)), (s))

/* ---- symbols ---------------------------------------------------------------------------- */

START_TEST(test_symbols) {
  ck_assert_int_eq(sN, 0);
  ck_assert_int_eq(sH, 1);
  ck_assert_int_eq(dim_sym_count(c), 3);
  ck_assert_int_eq(dim_sym_find(c, "H"), sH);
  ck_assert_int_eq(dim_sym_find(c, "Q"), -1);
  ck_assert_str_eq(dim_sym_name(c, sW), "W");
  ck_assert_int_eq(dim_sym_value(c, sN), 64);
  ck_assert_int_eq(dim_sym_declare(c, "N", 3), -1); /* redeclaration */
  for (int i = 3; i < DIM_MAX_SYMS; i++) {
    char name[16];
    snprintf(name, sizeof name, "S%d", i);
    ck_assert_int_eq(dim_sym_declare(c, name, i), i);
  }
  ck_assert_int_eq(dim_sym_declare(c, "Z", 1), -1); /* full */
  ck_assert_int_eq(dim_sym_count(c), DIM_MAX_SYMS);
}
END_TEST

/* ---- canonical form and interning ------------------------------------------------------- */

START_TEST(test_interning) {
  ck_assert_ptr_eq(K(5), K(5));
  ck_assert_ptr_ne(K(5), K(6));
  ck_assert_ptr_eq(dim_sym(c, sN), N);
  ck_assert(dim_eq(add(N, H), add(H, N)));
  ck_assert_ptr_eq(add(add(N, H), W), add(N, add(W, H)));
  ck_assert_ptr_eq(mul(mul(N, H), W), mul(W, mul(H, N)));
  ck_assert_ptr_eq(sub(N, N), K(0));
  ck_assert_ptr_eq(add(N, K(0)), N);
  ck_assert_ptr_eq(mul(N, K(1)), N);
  ck_assert_ptr_eq(mul(N, K(0)), K(0));
  /* (N + 1)(N - 1) = N^2 - 1 */
  ck_assert_ptr_eq(mul(add(N, K(1)), sub(N, K(1))), sub(mul(N, N), K(1)));
  /* terms that cancel vanish entirely */
  ck_assert_ptr_eq(sub(add(mul(N, H), W), mul(H, N)), W);
  ck_assert_ptr_ne(add(N, H), add(N, W));
  int64_t v;
  ck_assert(dim_is_const(K(0), &v) && v == 0);
  ck_assert(dim_is_const(sub(add(N, K(7)), N), &v) && v == 7);
  ck_assert(!dim_is_const(N, &v));
  ck_assert(!dim_is_const(dim_floordiv(c, N, 2), NULL));
}
END_TEST

START_TEST(test_arith) {
  Dim *a = add(mul(K(2), mul(N, H)), K(3));
  ck_str(a, "2*N*H + 3");
  ck_assert_ptr_eq(dim_scale(c, N, 3), add(add(N, N), N));
  ck_assert_ptr_eq(dim_scale(c, a, 0), K(0));
  ck_assert_ptr_eq(dim_scale(c, a, -1), sub(K(0), a));
  ck_str(dim_scale(c, a, -2), "-4*N*H - 6");
  ck_str(sub(K(5), N), "-N + 5");
  ck_str(mul(add(N, H), add(N, H)), "N^2 + 2*N*H + H^2");
  ck_str(mul(mul(N, N), mul(H, W)), "N^2*H*W");
  ck_str(add(mul(N, K(784)), K(-10)), "784*N - 10");
  /* degree first, then declaration order, constant last */
  ck_str(add(add(K(1), W), add(mul(H, H), N)), "H^2 + N + W + 1");
  ck_str(K(0), "0");
  ck_str(K(-42), "-42");
}
END_TEST

/* ---- floor division ---------------------------------------------------------------------- */

START_TEST(test_floordiv_fold) {
  ck_assert_ptr_eq(dim_floordiv(c, K(7), 2), K(3));
  ck_assert_ptr_eq(dim_floordiv(c, K(-7), 2), K(-4));
  ck_assert_ptr_eq(dim_floordiv(c, K(-8), 2), K(-4));
  ck_assert_ptr_eq(dim_floordiv(c, N, 1), N);
  /* exact: every coefficient divisible */
  ck_assert_ptr_eq(dim_floordiv(c, add(mul(K(4), N), K(8)), 4), add(N, K(2)));
  ck_assert_ptr_eq(dim_floordiv(c, mul(K(12), mul(N, H)), 4), mul(K(3), mul(N, H)));
  /* divisible non-constant terms: floor((4N + 3)/4) = N */
  ck_assert_ptr_eq(dim_floordiv(c, add(mul(K(4), N), K(3)), 4), N);
  ck_assert_ptr_eq(dim_floordiv(c, add(mul(K(4), N), K(-1)), 4), sub(N, K(1)));
  /* conv-style size keeps its written shape */
  Dim *conv = add(dim_floordiv(c, sub(H, K(3)), 2), K(1));
  ck_str(conv, "floor((H - 3)/2) + 1");
  ck_assert_ptr_eq(conv, add(dim_floordiv(c, sub(H, K(3)), 2), K(1)));
  ck_str(dim_floordiv(c, H, 2), "floor(H/2)");
  /* pulling out divisible terms: floor((2N + H - 3)/2) = N + floor((H - 3)/2) */
  ck_assert_ptr_eq(dim_floordiv(c, add(mul(K(2), N), sub(H, K(3))), 2),
                   add(N, dim_floordiv(c, sub(H, K(3)), 2)));
  /* common factor: floor((2H - 6)/4) = floor((H - 3)/2); floor((2H - 3)/4) = floor((H - 2)/2) */
  ck_assert_ptr_eq(dim_floordiv(c, sub(mul(K(2), H), K(6)), 4), dim_floordiv(c, sub(H, K(3)), 2));
  ck_assert_ptr_eq(dim_floordiv(c, sub(mul(K(2), H), K(3)), 4), dim_floordiv(c, sub(H, K(2)), 2));
  /* nested: floor(floor(H/2)/3) = floor(H/6) */
  ck_assert_ptr_eq(dim_floordiv(c, dim_floordiv(c, H, 2), 3), dim_floordiv(c, H, 6));
  /* nested with a remainder: floor((floor((H - 3)/2) + 1)/2) = floor((H - 1)/4) */
  ck_assert_ptr_eq(dim_floordiv(c, conv, 2), dim_floordiv(c, sub(H, K(1)), 4));
  ck_str(dim_floordiv(c, conv, 2), "floor((H - 1)/4)");
  /* not foldable stays a floor atom, and is interned */
  Dim *f = dim_floordiv(c, add(N, H), 3);
  ck_assert_ptr_eq(f, dim_floordiv(c, add(H, N), 3));
  ck_assert_ptr_ne(f, dim_floordiv(c, add(N, H), 5));
  ck_str(mul(K(2), f), "2*floor((N + H)/3)");
  ck_str(mul(f, N), "N*floor((N + H)/3)");
  ck_str(mul(f, f), "floor((N + H)/3)^2");
}
END_TEST

/* each folding rule must preserve the value: compare against direct integer floors */
START_TEST(test_floordiv_values) {
  Dim *conv = add(dim_floordiv(c, sub(H, K(3)), 2), K(1));
  Dim *nested = dim_floordiv(c, conv, 2);
  Dim *gcd = dim_floordiv(c, sub(mul(K(2), H), K(3)), 4);
  Dim *part = dim_floordiv(c, add(mul(K(6), N), add(mul(K(4), H), K(-7))), 6);
  Dim *deep = dim_floordiv(c, add(dim_floordiv(c, add(N, mul(K(3), H)), 4), N), 3);
  for (int64_t n = -9; n <= 9; n++) {
    for (int64_t h = -20; h <= 40; h++) {
      int64_t vals[3] = {n, h, 0};
      int64_t cv = ref_floordiv(h - 3, 2) + 1;
      ck_assert_int_eq(dim_eval(c, conv, vals), cv);
      ck_assert_int_eq(dim_eval(c, nested, vals), ref_floordiv(cv, 2));
      ck_assert_int_eq(dim_eval(c, gcd, vals), ref_floordiv(2 * h - 3, 4));
      ck_assert_int_eq(dim_eval(c, part, vals), ref_floordiv(6 * n + 4 * h - 7, 6));
      ck_assert_int_eq(dim_eval(c, deep, vals), ref_floordiv(ref_floordiv(n + 3 * h, 4) + n, 3));
      ck_assert(dim_evalf(c, deep, vals) == (double)ref_floordiv(ref_floordiv(n + 3 * h, 4) + n, 3));
    }
  }
}
END_TEST

/* ---- exact division ---------------------------------------------------------------------- */

START_TEST(test_div_exact) {
  ck_assert_ptr_eq(dim_div_exact(c, mul(N, K(784)), N), K(784));
  ck_assert_ptr_eq(dim_div_exact(c, mul(K(12), N), K(4)), mul(K(3), N));
  ck_assert_ptr_eq(dim_div_exact(c, add(mul(N, N), N), N), add(N, K(1)));
  ck_assert_ptr_eq(dim_div_exact(c, mul(mul(N, H), W), mul(W, N)), H);
  ck_assert_ptr_eq(dim_div_exact(c, sub(mul(N, N), K(1)), sub(N, K(1))), add(N, K(1)));
  ck_assert_ptr_eq(dim_div_exact(c, add(N, H), add(N, H)), K(1));
  ck_assert_ptr_eq(dim_div_exact(c, K(0), N), K(0));
  ck_assert_ptr_eq(dim_div_exact(c, K(12), K(-3)), K(-4));
  Dim *f = dim_floordiv(c, H, 2);
  ck_assert_ptr_eq(dim_div_exact(c, mul(f, mul(K(6), N)), mul(K(3), f)), mul(K(2), N));
  ck_assert_ptr_null(dim_div_exact(c, mul(K(3), N), K(2)));
  ck_assert_ptr_null(dim_div_exact(c, N, H));
  ck_assert_ptr_null(dim_div_exact(c, add(N, K(1)), N));
  ck_assert_ptr_null(dim_div_exact(c, N, mul(N, N)));
  ck_assert_ptr_null(dim_div_exact(c, N, K(0)));
  ck_assert_ptr_null(dim_div_exact(c, K(7), K(2)));
  ck_assert_ptr_null(dim_div_exact(c, add(mul(N, N), K(1)), add(N, K(1))));
}
END_TEST

/* ---- evaluation -------------------------------------------------------------------------- */

START_TEST(test_eval) {
  Dim *a = add(mul(K(2), mul(N, H)), K(3)); /* 2*N*H + 3 */
  ck_assert_int_eq(dim_eval(c, a, NULL), 2 * 64 * 28 + 3);
  ck_assert_double_eq(dim_evalf(c, a, NULL), 2.0 * 64 * 28 + 3);
  int64_t vals[3] = {10, 7, 1};
  ck_assert_int_eq(dim_eval(c, a, vals), 2 * 10 * 7 + 3);
  dim_sym_set_value(c, sN, 256);
  ck_assert_int_eq(dim_sym_value(c, sN), 256);
  ck_assert_int_eq(dim_eval(c, a, NULL), 2 * 256 * 28 + 3);
  Dim *conv = add(dim_floordiv(c, sub(H, K(3)), 2), K(1));
  ck_assert_int_eq(dim_eval(c, conv, NULL), (28 - 3) / 2 + 1);
  /* beyond int64: the double evaluation keeps the magnitude */
  Dim *big = mul(mul(N, N), mul(N, N)); /* N^4 */
  int64_t bv[3] = {100000, 0, 0};
  ck_assert_double_eq_tol(dim_evalf(c, big, bv), 1e20, 1e20 * 1e-12);
  ck_assert_int_eq(dim_eval(c, K(-5), NULL), -5);
}
END_TEST

/* ---- printing ---------------------------------------------------------------------------- */

START_TEST(test_print) {
  char buf[64];
  Dim *a = mul(K(1622016), N);
  ck_assert_int_eq(dim_print(c, a, buf, sizeof buf, DIM_PLAIN), 9);
  ck_assert_str_eq(buf, "1622016*N");
  ck_assert_int_eq(dim_print(c, a, buf, sizeof buf, DIM_PRETTY), (int)strlen("1622016\xC2\xB7N"));
  ck_assert_str_eq(buf, "1622016\xC2\xB7N");
  Dim *b = add(mul(K(2), mul(N, H)), K(3));
  dim_print(c, b, buf, sizeof buf, DIM_PRETTY);
  ck_assert_str_eq(buf, "2\xC2\xB7N\xC2\xB7H + 3");
  ck_str(N, "N");
  ck_str(K(784), "784");
  ck_str(sub(N, mul(K(2), H)), "N - 2*H");
  ck_str(sub(K(0), mul(N, H)), "-N*H");
  ck_str(add(mul(N, N), W), "N^2 + W");
  /* snprintf semantics: truncated output, full length returned, always terminated */
  char small[5];
  ck_assert_int_eq(dim_print(c, b, small, sizeof small, DIM_PLAIN), 9);
  ck_assert_str_eq(small, "2*N*");
  ck_assert_int_eq(dim_print(c, b, NULL, 0, DIM_PLAIN), 9);
  /* dim_str keeps the last 16 results valid */
  const char *s[16];
  for (int i = 0; i < 16; i++) s[i] = dim_str(c, K(i));
  for (int i = 0; i < 16; i++) {
    snprintf(buf, sizeof buf, "%d", i);
    ck_assert_str_eq(s[i], buf);
  }
}
END_TEST

/* ---- randomized identities --------------------------------------------------------------- */

/* A random expression tree evaluated two ways: through the Dim algebra, and directly. */
typedef struct Expr {
  int op; /* 0 const, 1 sym, 2 add, 3 sub, 4 mul, 5 scale, 6 floordiv */
  int64_t k;
  struct Expr *a, *b;
} Expr;

static Expr *rand_expr(int depth) {
  Expr *e = calloc(1, sizeof *e);
  e->op = depth == 0 ? rand() % 2 : rand() % 7;
  switch (e->op) {
  case 0: e->k = rand() % 11 - 5; break;
  case 1: e->k = rand() % 3; break;
  case 5: e->k = rand() % 7 - 3; /* fallthrough */
  case 6:
    if (e->op == 6) e->k = rand() % 5 + 1;
    e->a = rand_expr(depth - 1);
    break;
  default:
    e->a = rand_expr(depth - 1);
    e->b = rand_expr(depth - 1);
  }
  return e;
}

static void expr_free(Expr *e) {
  if (!e) return;
  expr_free(e->a);
  expr_free(e->b);
  free(e);
}

static Dim *expr_dim(const Expr *e) {
  Dim *syms[3] = {N, H, W};
  switch (e->op) {
  case 0: return K(e->k);
  case 1: return syms[e->k];
  case 2: return add(expr_dim(e->a), expr_dim(e->b));
  case 3: return sub(expr_dim(e->a), expr_dim(e->b));
  case 4: return mul(expr_dim(e->a), expr_dim(e->b));
  case 5: return dim_scale(c, expr_dim(e->a), e->k);
  default: return dim_floordiv(c, expr_dim(e->a), e->k);
  }
}

static int64_t expr_eval(const Expr *e, const int64_t *v) {
  switch (e->op) {
  case 0: return e->k;
  case 1: return v[e->k];
  case 2: return expr_eval(e->a, v) + expr_eval(e->b, v);
  case 3: return expr_eval(e->a, v) - expr_eval(e->b, v);
  case 4: return expr_eval(e->a, v) * expr_eval(e->b, v);
  case 5: return e->k * expr_eval(e->a, v);
  default: return ref_floordiv(expr_eval(e->a, v), e->k);
  }
}

START_TEST(test_random_eval) {
  srand(12345);
  for (int iter = 0; iter < 1000; iter++) {
    Expr *e = rand_expr(3);
    Dim *d = expr_dim(e);
    for (int t = 0; t < 10; t++) {
      int64_t v[3] = {rand() % 15 - 7, rand() % 15 - 7, rand() % 15 - 7};
      int64_t want = expr_eval(e, v);
      int64_t got = dim_eval(c, d, v);
      if (got != want)
        ck_abort_msg("iter %d: %s at N=%lld H=%lld W=%lld: got %lld want %lld", iter, dim_str(c, d),
                     (long long)v[0], (long long)v[1], (long long)v[2], (long long)got,
                     (long long)want);
      ck_assert_double_eq_tol(dim_evalf(c, d, v), (double)want, 1e-9 * (1.0 + llabs(want)));
    }
    expr_free(e);
  }
}
END_TEST

/* algebraic laws hold as pointer equality, and exact division inverts multiplication */
START_TEST(test_random_identities) {
  srand(777);
  for (int iter = 0; iter < 300; iter++) {
    Expr *ea = rand_expr(3), *eb = rand_expr(3), *ec = rand_expr(2);
    Dim *a = expr_dim(ea), *b = expr_dim(eb), *x = expr_dim(ec);
    ck_assert_ptr_eq(add(a, b), add(b, a));
    ck_assert_ptr_eq(mul(a, b), mul(b, a));
    ck_assert_ptr_eq(mul(add(a, b), x), add(mul(a, x), mul(b, x)));
    ck_assert_ptr_eq(add(sub(a, b), b), a);
    ck_assert_ptr_eq(mul(mul(a, b), x), mul(a, mul(b, x)));
    ck_assert_ptr_eq(dim_scale(c, add(a, b), 3), add(dim_scale(c, a, 3), dim_scale(c, b, 3)));
    if (b != K(0)) {
      ck_assert_ptr_eq(dim_div_exact(c, mul(a, b), b), a);
    }
    /* a printed form is a function of the pointer: equal prints only for equal Dims */
    char pa[512], pb[512];
    dim_print(c, a, pa, sizeof pa, DIM_PLAIN);
    dim_print(c, b, pb, sizeof pb, DIM_PLAIN);
    ck_assert_int_eq(strcmp(pa, pb) == 0, a == b);
    expr_free(ea);
    expr_free(eb);
    expr_free(ec);
  }
}
END_TEST

static Suite *dim_suite(void) {
  Suite *s = suite_create("dim");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_symbols);
  tcase_add_test(tc, test_interning);
  tcase_add_test(tc, test_arith);
  tcase_add_test(tc, test_floordiv_fold);
  tcase_add_test(tc, test_floordiv_values);
  tcase_add_test(tc, test_div_exact);
  tcase_add_test(tc, test_eval);
  tcase_add_test(tc, test_print);
  tcase_add_test(tc, test_random_eval);
  tcase_add_test(tc, test_random_identities);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(dim_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
