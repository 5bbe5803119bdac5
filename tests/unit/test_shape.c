/* test_shape.c — the shape/dtype rules of ir/shape.c: for every op a success case with its
 * exact result type, and failure cases with their exact messages and the operand indices at
 * fault. Conv/pool sizes are also checked numerically: the symbolic result evaluated at many
 * input sizes must equal the output-size formula computed here with plain integers. */
#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "shape.h"

static Arena *A;
static IrGraph *G;

static void setup(void) {
  A = arena_new();
  G = ir_graph_new(A, "t");
}

static void teardown(void) {
  dim_ctx_free(G->dims);
  arena_free(A);
}

/* ---- building operands from type strings ------------------------------------------------ */

/* one factor of a dim: an integer, or a symbol (declared on first use with value 8) */
static Dim *factor(const char **p) {
  const char *s = *p;
  if (isdigit((unsigned char)*s)) {
    int64_t v = strtoll(s, (char **)p, 10);
    return dim_const(G->dims, v);
  }
  char name[32];
  int n = 0;
  while (isalnum((unsigned char)*s) || *s == '_') name[n++] = *s++;
  name[n] = 0;
  ck_assert_msg(n > 0, "bad dim at '%s'", *p);
  *p = s;
  int sym = dim_sym_find(G->dims, name);
  if (sym < 0) sym = dim_sym_declare(G->dims, name, 8);
  return dim_sym(G->dims, sym);
}

/* "f32[N,784]", "i32[N]", "f32[]", "f32[N,C*H*W]" */
static IrType tp(const char *spec) {
  IrType t = {0};
  const char *s = strchr(spec, '[');
  ck_assert_ptr_nonnull(s);
  char dt[8] = {0};
  memcpy(dt, spec, (size_t)(s - spec));
  int k;
  for (k = 0; k < DT_COUNT; k++)
    if (!strcmp(dt_name((DType)k), dt)) break;
  ck_assert_int_lt(k, DT_COUNT);
  t.dt = (DType)k;
  s++;
  while (*s != ']') {
    Dim *d = factor(&s);
    while (*s == '*') {
      s++;
      d = dim_mul(G->dims, d, factor(&s));
    }
    t.dims[t.rank++] = d;
    if (*s == ',') s++;
  }
  return t;
}

static const char *tstr(const IrType *t) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  ir_type_str(G, t, buf[k], sizeof buf[k]);
  return buf[k];
}

static int leaf(OpKind op, const char *spec) {
  IrType t = tp(spec);
  ShapeErr e;
  int id = ir_build(G, op, NULL, 0, NULL, &t, (SrcLoc){0}, &e);
  ck_assert_msg(id >= 0, "%s %s: %s", ir_op_name(op), spec, e.msg);
  return id;
}
static int in(const char *spec) { return leaf(OP_INPUT, spec); }
static int par(const char *spec) { return leaf(OP_PARAM, spec); }

static IrAttr none;

/* expect success; the result type printed */
static const char *ok_(OpKind op, const int *ins, int nin, const IrAttr *a, const char *hint) {
  IrType t = hint ? tp(hint) : (IrType){0};
  ShapeErr e;
  int r = ir_infer(G, op, ins, nin, a ? a : &none, &t, &e);
  ck_assert_msg(r == 0, "%s failed: %s", ir_op_name(op), e.msg);
  return tstr(&t);
}

/* expect failure with exactly msg and arg_a/arg_b */
static void bad_(OpKind op, const int *ins, int nin, const IrAttr *a, const char *hint,
                 const char *msg, int arg_a, int arg_b) {
  IrType t = hint ? tp(hint) : (IrType){0};
  IrType before = t;
  ShapeErr e;
  int r = ir_infer(G, op, ins, nin, a ? a : &none, &t, &e);
  ck_assert_msg(r == -1, "%s unexpectedly gave %s", ir_op_name(op), tstr(&t));
  ck_assert_str_eq(e.msg, msg);
  ck_assert_int_eq(e.arg_a, arg_a);
  ck_assert_int_eq(e.arg_b, arg_b);
  ck_assert(ir_type_eq(&t, &before)); /* *out untouched on error */
}

#define OPS(...) ((const int[]){__VA_ARGS__}), (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int))
#define OPS0 NULL, 0
#define OK(op, ops, attr, hint, want) ck_assert_str_eq(ok_(op, ops, attr, hint), want)
#define BAD(op, ops, attr, hint, msg, a, b) bad_(op, ops, attr, hint, msg, a, b)
#define AT(...) (&(IrAttr){__VA_ARGS__})

/* ---- the table -------------------------------------------------------------------------- */

START_TEST(test_table_complete) {
  for (int op = 0; op < OP_COUNT; op++)
    ck_assert_msg(ir_shape_rule_defined((OpKind)op), "no shape rule for %s", ir_op_name(op));
  ck_assert(!ir_shape_rule_defined(OP_COUNT));
}
END_TEST

START_TEST(test_arity_and_operands) {
  int x = in("f32[N,4]");
  BAD(OP_ADD, OPS(x), NULL, NULL, "add takes 2 operands, got 1", -1, -1);
  BAD(OP_RELU, OPS(x, x), NULL, NULL, "relu takes 1 operand, got 2", -1, -1);
  BAD(OP_CONCAT, OPS0, AT(.axis = 0), NULL, "concat takes at least 1 operand, got 0", -1, -1);
  BAD(OP_ADD, OPS(x, 7), NULL, NULL, "add: operand 1 refers to %7, which does not exist", 1, -1);
}
END_TEST

/* ---- leaves ----------------------------------------------------------------------------- */

START_TEST(test_leaves) {
  OK(OP_INPUT, OPS0, NULL, "i32[N]", "i32[N]");
  OK(OP_PARAM, OPS0, NULL, "bf16[512,784]", "bf16[512,784]");
  OK(OP_CONST, OPS0, AT(.value = 2), "f32[]", "f32[]");
  BAD(OP_PARAM, OPS0, NULL, "i32[10]",
      "param: a parameter must be float (f32, f16 or bf16), got i32[10]", -1, -1);
  BAD(OP_INPUT, OPS0, NULL, "f32[N,0]",
      "input: dimension 1 of f32[N,0] is 0; dimensions must be positive", -1, -1);
  BAD(OP_INPUT, OPS0, NULL, "i64[N]", "input: result dtype i64 is not one of f32, f16, bf16, i32",
      -1, -1);
}
END_TEST

/* ---- elementwise -------------------------------------------------------------------------- */

START_TEST(test_unary) {
  static const OpKind ops[] = {OP_NEG, OP_EXP,  OP_LOG,  OP_SQRT, OP_TANH,
                               OP_SIGMOID, OP_RELU, OP_GELU, OP_SILU, OP_POWC};
  int x = in("f16[N,T,64]"), l = in("i32[N]");
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    OK(ops[i], OPS(x), AT(.value = 2), NULL, "f16[N,T,64]");
  BAD(OP_EXP, OPS(l), NULL, NULL, "exp: the operand must be float (f32, f16 or bf16), got i32[N]",
      0, -1);
}
END_TEST

START_TEST(test_cast) {
  int l = in("i32[N]");
  OK(OP_CAST, OPS(l), NULL, "f32[N]", "f32[N]");
  BAD(OP_CAST, OPS(l), NULL, "f32[N,1]",
      "cast: shape of the result f32[N,1] differs from the operand i32[N]; cast changes only "
      "the dtype", 0, -1);
}
END_TEST

START_TEST(test_broadcast_binary) {
  int a = in("f32[N,784]"), b = in("f32[784]"), c = in("f32[N,748]"), d = in("f32[N,1]"),
      e = in("f32[1,M]"), f = in("f32[M,784]"), h = in("f16[N,784]"), s = in("f32[]"),
      l = in("i32[N]");
  OK(OP_ADD, OPS(a, b), NULL, NULL, "f32[N,784]");
  OK(OP_SUB, OPS(b, a), NULL, NULL, "f32[N,784]");
  OK(OP_MUL, OPS(d, e), NULL, NULL, "f32[N,M]");
  OK(OP_DIV, OPS(a, s), NULL, NULL, "f32[N,784]");
  OK(OP_ADD, OPS(a, d), NULL, NULL, "f32[N,784]");
  BAD(OP_ADD, OPS(a, c), NULL, NULL,
      "operands of 'add' do not broadcast: f32[N,784] and f32[N,748] (dim 1: 784 vs 748)", 0, 1);
  BAD(OP_MUL, OPS(a, f), NULL, NULL,
      "operands of 'mul' do not broadcast: f32[N,784] and f32[M,784] (dim 0: N vs M)", 0, 1);
  BAD(OP_SUB, OPS(c, b), NULL, NULL,
      "operands of 'sub' do not broadcast: f32[N,748] and f32[784] (dim 1: 748 vs 784)", 0, 1);
  BAD(OP_ADD, OPS(a, h), NULL, NULL, "dtype mismatch: f32 and f16; insert a cast", 0, 1);
  BAD(OP_DIV, OPS(a, l), NULL, NULL,
      "div: operand 1 must be float (f32, f16 or bf16), got i32[N]", 1, -1);
}
END_TEST

/* ---- matmul ------------------------------------------------------------------------------- */

START_TEST(test_matmul) {
  int x = in("f32[N,784]"), w = in("f32[784,512]"), wt = in("f32[512,784]"),
      bad = in("f32[748,512]"), v = in("f32[784]"), q = in("f32[B,1,T,D]"),
      k = in("f32[H,D,T]"), b1 = in("f32[B,T,784]"), b2 = in("f32[C,784,T]"), s = in("f32[]");
  OK(OP_MATMUL, OPS(x, w), NULL, NULL, "f32[N,512]");
  OK(OP_MATMUL, OPS(x, wt), AT(.trans_b = true), NULL, "f32[N,512]");
  OK(OP_MATMUL, OPS(x, x), AT(.trans_a = true), NULL, "f32[784,784]");
  OK(OP_MATMUL, OPS(x, x), AT(.trans_b = true), NULL, "f32[N,N]");
  OK(OP_MATMUL, OPS(x, v), NULL, NULL, "f32[N]");
  OK(OP_MATMUL, OPS(v, w), NULL, NULL, "f32[512]");
  OK(OP_MATMUL, OPS(v, v), NULL, NULL, "f32[]");
  OK(OP_MATMUL, OPS(v, v), AT(.trans_a = true), NULL, "f32[]"); /* rank 1: no-op */
  OK(OP_MATMUL, OPS(q, k), NULL, NULL, "f32[B,H,T,T]");
  OK(OP_MATMUL, OPS(b1, w), NULL, NULL, "f32[B,T,512]");
  BAD(OP_MATMUL, OPS(x, bad), NULL, NULL,
      "matmul: inner dimensions differ: f32[N,784] @ f32[748,512] (784 vs 748)", 0, 1);
  BAD(OP_MATMUL, OPS(x, w), AT(.trans_b = true), NULL,
      "matmul: inner dimensions differ: f32[N,784] @ f32[784,512]^T (784 vs 512)", 0, 1);
  BAD(OP_MATMUL, OPS(v, wt), NULL, NULL,
      "matmul: inner dimensions differ: f32[784] @ f32[512,784] (784 vs 512)", 0, 1);
  BAD(OP_MATMUL, OPS(b1, b2), NULL, NULL,
      "matmul: batch dimensions do not broadcast: f32[B,T,784] @ f32[C,784,T] (dim 0: B vs C)", 0, 1);
  BAD(OP_MATMUL, OPS(s, w), NULL, NULL,
      "matmul: operands must have rank >= 1: f32[] @ f32[784,512]", 0, -1);
}
END_TEST

/* ---- data movement ------------------------------------------------------------------------ */

START_TEST(test_transpose) {
  int x = in("f32[N,T,D]");
  OK(OP_TRANSPOSE, OPS(x), AT(.naxes = 3, .axes = {0, 2, 1}), NULL, "f32[N,D,T]");
  OK(OP_TRANSPOSE, OPS(x), AT(.naxes = 3, .axes = {2, 0, 1}), NULL, "f32[D,N,T]");
  BAD(OP_TRANSPOSE, OPS(x), AT(.naxes = 2, .axes = {1, 0}), NULL,
      "transpose: the permutation has 2 axes but f32[N,T,D] has rank 3", 0, -1);
  BAD(OP_TRANSPOSE, OPS(x), AT(.naxes = 3, .axes = {0, 1, 1}), NULL,
      "transpose: axis 1 appears twice in the permutation", 0, -1);
  BAD(OP_TRANSPOSE, OPS(x), AT(.naxes = 3, .axes = {0, 3, 1}), NULL,
      "transpose: axis 3 is out of range for f32[N,T,D] (rank 3)", 0, -1);
}
END_TEST

START_TEST(test_reshape) {
  int x = in("f32[N,784]"), y = in("f32[N,C,H,W]"), z = in("f32[N,4,T]");
  OK(OP_RESHAPE, OPS(x), NULL, "f32[N,28,28]", "f32[N,28,28]");
  OK(OP_RESHAPE, OPS(x), NULL, "f32[N*784]", "f32[784*N]");
  OK(OP_RESHAPE, OPS(y), NULL, "f32[N,C*H*W]", "f32[N,C*H*W]");
  OK(OP_RESHAPE, OPS(z), NULL, "f32[2,N,T,2]", "f32[2,N,T,2]");
  OK(OP_RESHAPE, OPS(z), NULL, "f32[N*T,4]", "f32[N*T,4]");
  BAD(OP_RESHAPE, OPS(x), NULL, "f32[N,748]",
      "reshape: f32[N,784] has 784*N elements but f32[N,748] has 748*N", 0, -1);
  BAD(OP_RESHAPE, OPS(y), NULL, "f32[N,C*H]",
      "reshape: f32[N,C,H,W] has N*C*H*W elements but f32[N,C*H] has N*C*H", 0, -1);
  BAD(OP_RESHAPE, OPS(x), NULL, "f16[N,784]",
      "reshape: cannot change the dtype (f32 to f16); insert a cast", 0, -1);
}
END_TEST

START_TEST(test_broadcast_op) {
  int x = in("f32[1,784]"), b = in("f32[C,1,1]");
  OK(OP_BROADCAST, OPS(x), NULL, "f32[N,784]", "f32[N,784]");
  OK(OP_BROADCAST, OPS(b), NULL, "f32[N,C,H,W]", "f32[N,C,H,W]");
  BAD(OP_BROADCAST, OPS(x), NULL, "f32[N,748]",
      "broadcast: f32[1,784] cannot be broadcast to f32[N,748] (dim 1: 784 vs 748)", 0, -1);
  BAD(OP_BROADCAST, OPS(b), NULL, "f32[C,H]",
      "broadcast: f32[C,1,1] has more dims than the target f32[C,H]", 0, -1);
}
END_TEST

START_TEST(test_concat) {
  int a = in("f32[N,64,H,W]"), b = in("f32[N,32,H,W]"), c = in("f32[N,D]"), d = in("f32[N,E]"),
      e = in("f32[N,32,W,W]"), h = in("f16[N,32,H,W]");
  OK(OP_CONCAT, OPS(a, b, b, a), AT(.axis = 1), NULL, "f32[N,192,H,W]");
  OK(OP_CONCAT, OPS(c, d, c), AT(.axis = 1), NULL, "f32[N,2*D + E]");
  OK(OP_CONCAT, OPS(a, a), AT(.axis = 0), NULL, "f32[2*N,64,H,W]");
  OK(OP_CONCAT, OPS(c), AT(.axis = 0), NULL, "f32[N,D]");
  BAD(OP_CONCAT, OPS(a, b, e), AT(.axis = 1), NULL,
      "concat: operands 0 and 2 differ outside axis 1: f32[N,64,H,W] and f32[N,32,W,W] "
      "(dim 2: H vs W)", 0, 2);
  BAD(OP_CONCAT, OPS(a, c), AT(.axis = 1), NULL,
      "concat: operands 0 and 1 have different ranks: f32[N,64,H,W] and f32[N,D]", 0, 1);
  BAD(OP_CONCAT, OPS(a, h), AT(.axis = 1), NULL, "dtype mismatch: f32 and f16; insert a cast", 0, 1);
  BAD(OP_CONCAT, OPS(c, d), AT(.axis = 2), NULL, "concat: axis 2 is out of range for f32[N,D] (rank 2)",
      0, -1);
}
END_TEST

START_TEST(test_slice) {
  int x = in("f32[N,10]"), dy = in("f32[N,3]");
  DimCtx *c = G->dims;
  Dim *N = dim_sym(c, dim_sym_find(c, "N"));
  OK(OP_SLICE, OPS(x), AT(.axis = 1, .start = dim_const(c, 2), .end = dim_const(c, 5)), NULL,
     "f32[N,3]");
  OK(OP_SLICE, OPS(x), AT(.axis = 1, .start = dim_const(c, 0), .end = dim_const(c, 10)), NULL,
     "f32[N,10]");
  OK(OP_SLICE, OPS(x), AT(.axis = 0, .start = dim_const(c, 1), .end = N), NULL, "f32[N - 1,10]");
  BAD(OP_SLICE, OPS(x), AT(.axis = 1, .start = dim_const(c, 5), .end = dim_const(c, 5)), NULL,
      "slice: empty range [5, 5) on axis 1 of f32[N,10]", 0, -1);
  BAD(OP_SLICE, OPS(x), AT(.axis = 1, .start = dim_const(c, 4), .end = dim_const(c, 12)), NULL,
      "slice: range [4, 12) exceeds axis 1 of f32[N,10] (extent 10)", 0, -1);
  BAD(OP_SLICE, OPS(x), AT(.axis = 0, .start = dim_const(c, 0), .end = dim_add(c, N, dim_const(c, 1))),
      NULL, "slice: range [0, N + 1) exceeds axis 0 of f32[N,10] (extent N)", 0, -1);
  BAD(OP_SLICE, OPS(x), AT(.axis = 1, .start = dim_const(c, -1), .end = dim_const(c, 2)), NULL,
      "slice: start -1 is negative (axis 1 of f32[N,10])", 0, -1);
  BAD(OP_SLICE, OPS(x), AT(.axis = 1), NULL, "slice: start and end are required", -1, -1);
  OK(OP_SLICE_BWD, OPS(dy), AT(.axis = 1, .start = dim_const(c, 2), .end = dim_const(c, 5)),
     "f32[N,10]", "f32[N,10]");
  BAD(OP_SLICE_BWD, OPS(dy), AT(.axis = 1, .start = dim_const(c, 2), .end = dim_const(c, 6)),
      "f32[N,10]", "slice_bwd: slicing f32[N,10] on axis 1 gives f32[N,4], but the gradient is f32[N,3]",
      0, -1);
}
END_TEST

/* ---- reductions ----------------------------------------------------------------------------- */

START_TEST(test_reductions) {
  int x = in("f32[N,C,H,W]"), l = in("i32[N]");
  OK(OP_SUM, OPS(x), AT(.naxes = 1, .axes = {1}), NULL, "f32[N,H,W]");
  OK(OP_MEAN, OPS(x), AT(.naxes = 2, .axes = {3, 2}, .keepdim = true), NULL, "f32[N,C,1,1]");
  OK(OP_MAX, OPS(x), AT(.naxes = 4, .axes = {0, 1, 2, 3}), NULL, "f32[]");
  OK(OP_VAR, OPS(x), AT(.naxes = 1, .axes = {0}, .correction = 1), NULL, "f32[C,H,W]");
  BAD(OP_SUM, OPS(x), AT(.naxes = 1, .axes = {4}), NULL,
      "sum: axis 4 is out of range for f32[N,C,H,W] (rank 4)", 0, -1);
  BAD(OP_MEAN, OPS(x), AT(.naxes = 2, .axes = {2, 2}), NULL, "mean: axis 2 appears twice in axes",
      0, -1);
  BAD(OP_SUM, OPS(x), AT(.naxes = 0), NULL,
      "sum: no axes given (a reduction over all axes lists them all)", -1, -1);
  BAD(OP_VAR, OPS(x), AT(.naxes = 1, .axes = {0}, .correction = 2), NULL,
      "var: correction must be 0 or 1, got 2", -1, -1);
  BAD(OP_SUM, OPS(l), AT(.naxes = 1, .axes = {0}), NULL,
      "sum: the operand must be float (f32, f16 or bf16), got i32[N]", 0, -1);
}
END_TEST

START_TEST(test_softmax) {
  int x = in("f32[N,10]");
  OK(OP_SOFTMAX, OPS(x), AT(.axis = 1), NULL, "f32[N,10]");
  OK(OP_LOG_SOFTMAX, OPS(x), AT(.axis = 0), NULL, "f32[N,10]");
  BAD(OP_SOFTMAX, OPS(x), AT(.axis = 2), NULL,
      "softmax: axis 2 is out of range for f32[N,10] (rank 2)", 0, -1);
}
END_TEST

/* ---- convolution and pooling -------------------------------------------------------------- */

static int64_t ref_floordiv(int64_t a, int64_t k) { return a / k - (a % k != 0 && a < 0); }

/* the output-size formula, computed independently */
static int64_t ref_out(int64_t n, int k, int p, int s, int d) {
  return ref_floordiv(n + 2 * p - d * (k - 1) - 1, s) + 1;
}

START_TEST(test_conv_symbolic) {
  int x = in("f32[N,3,H,W]"), w = in("f32[16,3,3,3]"), w5 = in("f32[8,3,5,5]");
  OK(OP_CONV2D, OPS(x, w), AT(.stride = {1, 1}, .pad = {1, 1}), NULL, "f32[N,16,H,W]");
  OK(OP_CONV2D, OPS(x, w), AT(.stride = {1, 1}), NULL, "f32[N,16,H - 2,W - 2]");
  OK(OP_CONV2D, OPS(x, w), AT(.stride = {2, 2}, .pad = {1, 1}), NULL,
     "f32[N,16,floor((H - 1)/2) + 1,floor((W - 1)/2) + 1]");
  OK(OP_CONV2D, OPS(x, w5), AT(.stride = {3, 1}, .pad = {1, 2}, .dilation = {2, 1}), NULL,
     "f32[N,8,floor((H - 7)/3) + 1,W]");

  /* evaluate the symbolic sizes at many H and compare with the formula */
  static const int cfg[][4] = {{1, 0, 1, 3}, {2, 1, 1, 3}, {2, 0, 2, 3}, {3, 2, 2, 5},
                               {1, 2, 3, 5}, {4, 1, 1, 3}};
  int sH = dim_sym_find(G->dims, "H");
  for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
    int s = cfg[i][0], p = cfg[i][1], d = cfg[i][2], k = cfg[i][3];
    char wt[32];
    snprintf(wt, sizeof wt, "f32[4,3,%d,%d]", k, k);
    int wk = in(wt);
    IrType t = {0};
    ShapeErr e;
    ck_assert_int_eq(ir_infer(G, OP_CONV2D, OPS(x, wk),
                              AT(.stride = {s, s}, .pad = {p, p}, .dilation = {d, d}), &t, &e),
                     0);
    for (int64_t h = d * (k - 1) + 1 - 2 * p; h < 80; h++) {
      if (h < 1) continue;
      int64_t vals[DIM_MAX_SYMS] = {0};
      vals[sH] = h;
      ck_assert_int_eq(dim_eval(G->dims, t.dims[2], vals), ref_out(h, k, p, s, d));
    }
  }
}
END_TEST

START_TEST(test_conv_const) {
  int x = in("f32[N,3,224,224]"), w = in("f32[64,3,7,7]"), x2 = in("f32[1,3,32,32]"),
      w2 = in("f32[16,3,5,5]");
  OK(OP_CONV2D, OPS(x, w), AT(.stride = {2, 2}, .pad = {3, 3}, .dilation = {1, 1}, .groups = 1),
     NULL, "f32[N,64,112,112]");
  OK(OP_CONV2D, OPS(x2, w2), AT(.stride = {1, 1}, .pad = {2, 2}), NULL, "f32[1,16,32,32]");
  OK(OP_CONV2D, OPS(x2, w2), AT(.stride = {1, 1}, .dilation = {2, 2}), NULL, "f32[1,16,24,24]");
  OK(OP_CONV2D, OPS(x2, w2), AT(.stride = {3, 3}), NULL, "f32[1,16,10,10]");
  int small = in("f32[N,3,4,9]");
  BAD(OP_CONV2D, OPS(small, w2), AT(.stride = {1, 1}), NULL,
      "conv2d: output height would be 0: input height 4, kernel 5 (dilation 1), pad 0, stride 1",
      0, -1);
  BAD(OP_CONV2D, OPS(small, w2), AT(.stride = {1, 1}, .dilation = {1, 3}), NULL,
      "conv2d: output height would be 0: input height 4, kernel 5 (dilation 1), pad 0, stride 1",
      0, -1);
  BAD(OP_CONV2D, OPS(small, w2), AT(.stride = {1, 1}, .pad = {1, 0}, .dilation = {1, 3}), NULL,
      "conv2d: output width would be -3: input width 9, kernel 5 (dilation 3), pad 0, stride 1",
      0, -1);
}
END_TEST

START_TEST(test_conv_groups) {
  int x = in("f32[N,32,H,W]"), wg = in("f32[64,8,3,3]"), wd = in("f32[32,1,3,3]"),
      x3 = in("f32[N,3,32,32]"), w4 = in("f32[16,4,3,3]"), x6 = in("f32[N,6,8,8]"),
      w6 = in("f32[6,2,3,3]"), w10 = in("f32[10,8,3,3]"), xh = in("f16[N,3,32,32]"),
      w3 = in("f32[16,3,3,3]"), xr = in("f32[N,784]");
  OK(OP_CONV2D, OPS(x, wg), AT(.stride = {1, 1}, .pad = {1, 1}, .groups = 4), NULL,
     "f32[N,64,H,W]");
  OK(OP_CONV2D, OPS(x, wd), AT(.stride = {1, 1}, .pad = {1, 1}, .groups = 32), NULL,
     "f32[N,32,H,W]");
  BAD(OP_CONV2D, OPS(x3, w4), AT(.stride = {1, 1}, .groups = 1), NULL,
      "conv2d: input has 3 channels but weight expects 4 (groups=1): f32[N,3,32,32] and "
      "f32[16,4,3,3]", 0, 1);
  BAD(OP_CONV2D, OPS(x, wg), AT(.stride = {1, 1}, .groups = 2), NULL,
      "conv2d: input has 32 channels but weight expects 16 (groups=2): f32[N,32,H,W] and "
      "f32[64,8,3,3]", 0, 1);
  BAD(OP_CONV2D, OPS(x6, w6), AT(.stride = {1, 1}, .groups = 4), NULL,
      "conv2d: groups=4 does not divide the 6 input channels of f32[N,6,8,8]", 0, -1);
  BAD(OP_CONV2D, OPS(x, w10), AT(.stride = {1, 1}, .groups = 4), NULL,
      "conv2d: groups=4 does not divide the 10 output channels of f32[10,8,3,3]", 1, -1);
  BAD(OP_CONV2D, OPS(xh, w3), AT(.stride = {1, 1}), NULL,
      "dtype mismatch: f16 and f32; insert a cast", 0, 1);
  BAD(OP_CONV2D, OPS(xr, w3), AT(.stride = {1, 1}), NULL,
      "conv2d: input must be [N,C,H,W], got f32[N,784]", 0, -1);
  BAD(OP_CONV2D, OPS(x3, w3), AT(.stride = {0, 1}), NULL, "conv2d: stride must be >= 1, got [0,1]",
      -1, -1);
  BAD(OP_CONV2D, OPS(x3, w3), AT(.stride = {1, 1}, .kernel = {5, 5}), NULL,
      "conv2d: kernel [5,5] does not match the weight f32[16,3,3,3]", 1, -1);
}
END_TEST

START_TEST(test_pool) {
  int x = in("f32[N,64,112,112]"), xs = in("f32[N,C,H,W]"), small = in("f32[N,C,1,1]");
  OK(OP_MAXPOOL, OPS(x), AT(.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}), NULL,
     "f32[N,64,56,56]");
  OK(OP_AVGPOOL, OPS(xs), AT(.kernel = {2, 2}, .stride = {2, 2}), NULL,
     "f32[N,C,floor((H - 2)/2) + 1,floor((W - 2)/2) + 1]");
  OK(OP_AVGPOOL, OPS(xs), AT(.kernel = {3, 3}, .stride = {1, 1}, .pad = {1, 1}), NULL,
     "f32[N,C,H,W]");
  OK(OP_MAXPOOL, OPS(x), AT(.kernel = {3, 3}, .stride = {1, 1}, .dilation = {2, 2}), NULL,
     "f32[N,64,108,108]");
  BAD(OP_MAXPOOL, OPS(x), AT(.kernel = {3, 3}, .stride = {2, 2}, .pad = {2, 2}), NULL,
      "maxpool: pad 2 must be at most half the kernel size 3", -1, -1);
  BAD(OP_AVGPOOL, OPS(x), AT(.kernel = {2, 2}, .stride = {2, 2}, .dilation = {2, 2}), NULL,
      "avgpool: dilation is not supported, got [2,2]", -1, -1);
  BAD(OP_MAXPOOL, OPS(x), AT(.stride = {2, 2}), NULL, "maxpool: kernel must be >= 1, got [0,0]",
      -1, -1);
  BAD(OP_MAXPOOL, OPS(small), AT(.kernel = {2, 2}, .stride = {2, 2}), NULL,
      "maxpool: output height would be 0: input height 1, kernel 2 (dilation 1), pad 0, stride 2",
      0, -1);
  /* numeric check of the symbolic pool size */
  IrType t = {0};
  ShapeErr e;
  ck_assert_int_eq(ir_infer(G, OP_MAXPOOL, OPS(xs), AT(.kernel = {3, 3}, .stride = {2, 2},
                                                        .pad = {1, 1}), &t, &e), 0);
  int sH = dim_sym_find(G->dims, "H");
  for (int64_t h = 1; h < 100; h++) {
    int64_t vals[DIM_MAX_SYMS] = {0};
    vals[sH] = h;
    ck_assert_int_eq(dim_eval(G->dims, t.dims[2], vals), ref_out(h, 3, 1, 2, 1));
  }
}
END_TEST

/* ---- normalization, dropout, embedding, losses ------------------------------------------------ */

START_TEST(test_batchnorm) {
  int x = in("f32[N,64,H,W]"), g = par("f32[64]"), b = par("f32[64]"), m = par("f32[64]"),
      v = par("f32[64]"), g32 = par("f32[32]"), gh = par("f16[64]"), x2 = in("f32[N,64]"),
      x3 = in("f32[N,64,T]");
  OK(OP_BATCHNORM, OPS(x, g, b, m, v), AT(.value = 1e-5, .momentum = 0.1), NULL,
     "f32[N,64,H,W]");
  OK(OP_BATCHNORM, OPS(x2, g, b, m, v), NULL, NULL, "f32[N,64]");
  BAD(OP_BATCHNORM, OPS(x, g32, b, m, v), NULL, NULL,
      "batchnorm: gamma f32[32] does not match the 64 channels of f32[N,64,H,W]", 1, 0);
  BAD(OP_BATCHNORM, OPS(x, g, b, m, g32), NULL, NULL,
      "batchnorm: running_var f32[32] does not match the 64 channels of f32[N,64,H,W]", 4, 0);
  BAD(OP_BATCHNORM, OPS(x, g, gh, m, v), NULL, NULL, "dtype mismatch: f16 and f32; insert a cast",
      2, 0);
  BAD(OP_BATCHNORM, OPS(x3, g, b, m, v), NULL, NULL,
      "batchnorm: input must be [N,C] or [N,C,H,W], got f32[N,64,T]", 0, -1);
}
END_TEST

START_TEST(test_layernorm) {
  int x = in("f32[N,T,768]"), g = par("f32[768]"), b = par("f32[768]"), g2 = par("f32[T,768]"),
      bad = par("f32[512]");
  OK(OP_LAYERNORM, OPS(x, g, b), AT(.naxes = 1, .value = 1e-5), NULL, "f32[N,T,768]");
  OK(OP_LAYERNORM, OPS(x, g2, g2), AT(.naxes = 2), NULL, "f32[N,T,768]");
  BAD(OP_LAYERNORM, OPS(x, bad, b), AT(.naxes = 1), NULL,
      "layernorm: gamma must be f32[768] (the last 1 dims of f32[N,T,768]), got f32[512]", 1, 0);
  BAD(OP_LAYERNORM, OPS(x, g, b), AT(.naxes = 2), NULL,
      "layernorm: gamma must be f32[T,768] (the last 2 dims of f32[N,T,768]), got f32[768]", 1, 0);
  BAD(OP_LAYERNORM, OPS(x, g, b), AT(.naxes = 4), NULL,
      "layernorm: normalizes the last 4 dims, but f32[N,T,768] has rank 3", 0, -1);
}
END_TEST

START_TEST(test_dropout) {
  int x = in("bf16[N,512]");
  OK(OP_DROPOUT, OPS(x), AT(.value = 0.5, .seed = 3, .train = true), NULL, "bf16[N,512]");
  OK(OP_DROPOUT_BWD, OPS(x), AT(.value = 0.5), NULL, "bf16[N,512]");
  BAD(OP_DROPOUT, OPS(x), AT(.value = 1), NULL, "dropout: p must be in [0, 1), got 1", -1, -1);
}
END_TEST

START_TEST(test_embedding) {
  int t = par("f32[V,D]"), i = in("i32[N,T]"), f = in("f32[N,T]"), t3 = par("f32[V,D,2]");
  OK(OP_EMBEDDING, OPS(t, i), NULL, NULL, "f32[N,T,D]");
  BAD(OP_EMBEDDING, OPS(t, f), NULL, NULL, "embedding: indices must be i32, got f32[N,T]", 1, -1);
  BAD(OP_EMBEDDING, OPS(t3, i), NULL, NULL, "embedding: table must be [V,D], got f32[V,D,2]", 0, -1);
  int dy = in("f32[N,T,D]"), dyb = in("f32[N,D]");
  OK(OP_EMBEDDING_BWD, OPS(dy, i), NULL, "f32[V,D]", "f32[V,D]");
  BAD(OP_EMBEDDING_BWD, OPS(dyb, i), NULL, "f32[V,D]",
      "embedding_bwd: looking up i32[N,T] in f32[V,D] gives f32[N,T,D], but the gradient is "
      "f32[N,D]", 0, 1);
}
END_TEST

START_TEST(test_losses) {
  int lg = in("f32[N,10]"), lab = in("i32[N]"), labm = in("i32[M]"), labf = in("f32[N]"),
      p = in("f16[N]"), q = in("f16[N]"), r = in("f16[N,1]"), lg3 = in("f32[N,T,10]");
  OK(OP_CROSS_ENTROPY, OPS(lg, lab), NULL, NULL, "f32[]");
  OK(OP_MSE, OPS(p, q), NULL, NULL, "f32[]");
  BAD(OP_CROSS_ENTROPY, OPS(lg, labm), NULL, NULL,
      "cross_entropy: labels must be i32[N] for logits f32[N,10], got i32[M]", 1, 0);
  BAD(OP_CROSS_ENTROPY, OPS(lg, labf), NULL, NULL,
      "cross_entropy: labels must be i32, got f32[N]", 1, -1);
  BAD(OP_CROSS_ENTROPY, OPS(lg3, lab), NULL, NULL,
      "cross_entropy: logits must be [N,C], got f32[N,T,10]", 0, -1);
  BAD(OP_MSE, OPS(p, r), NULL, NULL,
      "mse: operand 0 is f16[N] but operand 1 is f16[N,1]; they must have the same shape", 0, 1);
  int dl = in("f32[]");
  OK(OP_CE_BWD, OPS(dl, lg, lab), NULL, NULL, "f32[N,10]");
  BAD(OP_CE_BWD, OPS(lg, lg, lab), NULL, NULL,
      "cross_entropy_bwd: the loss gradient must be a float scalar, got f32[N,10]", 0, -1);
}
END_TEST

/* ---- backward helpers ----------------------------------------------------------------------- */

START_TEST(test_bwd_pairs) {
  static const OpKind ops[] = {OP_RELU_BWD, OP_GELU_BWD, OP_SILU_BWD, OP_SIGMOID_BWD,
                               OP_TANH_BWD, OP_SOFTMAX_BWD, OP_LOG_SOFTMAX_BWD};
  int dy = in("f32[N,10]"), y = in("f32[N,10]"), z = in("f32[N,11]");
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    OK(ops[i], OPS(dy, y), AT(.axis = 1), NULL, "f32[N,10]");
  BAD(OP_RELU_BWD, OPS(dy, z), NULL, NULL,
      "relu_bwd: operand 0 is f32[N,10] but operand 1 is f32[N,11]; they must have the same "
      "shape", 0, 1);
  BAD(OP_SOFTMAX_BWD, OPS(dy, y), AT(.axis = 2), NULL,
      "softmax_bwd: axis 2 is out of range for f32[N,10] (rank 2)", 1, -1);
}
END_TEST

START_TEST(test_max_bwd) {
  int x = in("f32[N,10]"), y = in("f32[N]"), yk = in("f32[N,1]"), bad = in("f32[10]");
  OK(OP_MAX_BWD, OPS(y, x, y), AT(.naxes = 1, .axes = {1}), NULL, "f32[N,10]");
  OK(OP_MAX_BWD, OPS(yk, x, yk), AT(.naxes = 1, .axes = {1}, .keepdim = true), NULL, "f32[N,10]");
  BAD(OP_MAX_BWD, OPS(bad, x, bad), AT(.naxes = 1, .axes = {1}), NULL,
      "max_bwd: operand 2 f32[10] is not the max of f32[N,10] over the given axes (expected "
      "f32[N])", 2, 1);
  BAD(OP_MAX_BWD, OPS(bad, x, y), AT(.naxes = 1, .axes = {1}), NULL,
      "max_bwd: operand 0 is f32[10] but operand 2 is f32[N]; they must have the same shape", 0, 2);
}
END_TEST

START_TEST(test_conv_bwd) {
  int dy = in("f32[N,16,16,16]"), w = par("f32[16,3,3,3]"), x = in("f32[N,3,32,32]");
  const IrAttr *a = AT(.stride = {2, 2}, .pad = {1, 1});
  /* stride 2 maps 31 and 32 to the same 16: the caller's type decides */
  OK(OP_CONV2D_BWD_DATA, OPS(dy, w), a, "f32[N,3,32,32]", "f32[N,3,32,32]");
  OK(OP_CONV2D_BWD_DATA, OPS(dy, w), a, "f32[N,3,31,31]", "f32[N,3,31,31]");
  BAD(OP_CONV2D_BWD_DATA, OPS(dy, w), a, "f32[N,3,30,30]",
      "conv2d_bwd_data: f32[N,3,30,30] convolved with f32[16,3,3,3] gives f32[N,16,15,15], but "
      "the gradient is f32[N,16,16,16]", 0, -1);
  BAD(OP_CONV2D_BWD_DATA, OPS(dy, w), a, "f32[N,4,32,32]",
      "conv2d_bwd_data: input has 4 channels but weight expects 3 (groups=1): f32[N,4,32,32] and "
      "f32[16,3,3,3]", -1, 1);
  OK(OP_CONV2D_BWD_FILTER, OPS(x, dy), a, "f32[16,3,3,3]", "f32[16,3,3,3]");
  BAD(OP_CONV2D_BWD_FILTER, OPS(x, dy), a, "f32[8,3,3,3]",
      "conv2d_bwd_filter: f32[N,3,32,32] convolved with f32[8,3,3,3] gives f32[N,8,16,16], but "
      "the gradient is f32[N,16,16,16]", 1, -1);
}
END_TEST

START_TEST(test_pool_bwd) {
  int x = in("f32[N,64,112,112]"), dy = in("f32[N,64,56,56]"), dyb = in("f32[N,64,55,55]");
  const IrAttr *a = AT(.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1});
  OK(OP_MAXPOOL_BWD, OPS(dy, x), a, NULL, "f32[N,64,112,112]");
  BAD(OP_MAXPOOL_BWD, OPS(dyb, x), a, NULL,
      "maxpool_bwd: pooling f32[N,64,112,112] gives f32[N,64,56,56], but the gradient is "
      "f32[N,64,55,55]", 0, 1);
  OK(OP_AVGPOOL_BWD, OPS(dy), a, "f32[N,64,112,112]", "f32[N,64,112,112]");
  OK(OP_AVGPOOL_BWD, OPS(dy), a, "f32[N,64,111,111]", "f32[N,64,111,111]");
  BAD(OP_AVGPOOL_BWD, OPS(dy), a, "f32[N,64,120,120]",
      "avgpool_bwd: pooling f32[N,64,120,120] gives f32[N,64,60,60], but the gradient is "
      "f32[N,64,56,56]", 0, -1);
}
END_TEST

START_TEST(test_norm_bwd) {
  int x = in("f32[N,64,H,W]"), dy = in("f32[N,64,H,W]"), g = par("f32[64]"),
      xl = in("f32[N,T,D]"), dyl = in("f32[N,T,D]"), gl = par("f32[D]"), dyb = in("f32[N,64,H,H]");
  OK(OP_BATCHNORM_BWD, OPS(dy, x, g), NULL, NULL, "f32[N,64,H,W]");
  OK(OP_BN_DGAMMA, OPS(dy, x), NULL, NULL, "f32[64]");
  BAD(OP_BN_DGAMMA, OPS(dyb, x), NULL, NULL,
      "bn_dgamma: operand 0 is f32[N,64,H,H] but operand 1 is f32[N,64,H,W]; they must have the "
      "same shape", 0, 1);
  OK(OP_LAYERNORM_BWD, OPS(dyl, xl, gl), AT(.naxes = 1), NULL, "f32[N,T,D]");
  OK(OP_LN_DGAMMA, OPS(dyl, xl), AT(.naxes = 1), NULL, "f32[D]");
  OK(OP_LN_DGAMMA, OPS(dyl, xl), AT(.naxes = 2), NULL, "f32[T,D]");
  BAD(OP_LAYERNORM_BWD, OPS(dyl, xl, gl), AT(.naxes = 2), NULL,
      "layernorm_bwd: gamma must be f32[T,D] (the last 2 dims of f32[N,T,D]), got f32[D]", 2, 1);
}
END_TEST

START_TEST(test_assign) {
  int p = par("f32[512,784]"), v = in("f32[512,784]"), u = in("f32[784,512]"),
      h = in("f16[512,784]");
  OK(OP_ASSIGN, OPS(p, v), NULL, NULL, "f32[512,784]");
  BAD(OP_ASSIGN, OPS(v, v), NULL, NULL, "assign: operand 0 must be a param, got 'input'", 0, -1);
  BAD(OP_ASSIGN, OPS(p, u), NULL, NULL,
      "assign: value f32[784,512] does not match param f32[512,784]", 1, 0);
  BAD(OP_ASSIGN, OPS(p, h), NULL, NULL, "dtype mismatch: f16 and f32; insert a cast", 1, 0);
}
END_TEST

/* a small network built with ir_build passes the verifier, which re-runs every rule */
START_TEST(test_build_and_verify) {
  int x = in("f32[N,1,28,28]"), lab = in("i32[N]");
  int w1 = par("f32[8,1,5,5]"), w2 = par("f32[10,1152]"), b2 = par("f32[10]");
  ShapeErr e;
  SrcLoc L = {0};
  int c1 = ir_build(G, OP_CONV2D, OPS(x, w1), AT(.stride = {1, 1}), NULL, L, &e);
  int r1 = ir_build(G, OP_RELU, OPS(c1), NULL, NULL, L, &e);
  int p1 = ir_build(G, OP_MAXPOOL, OPS(r1), AT(.kernel = {2, 2}, .stride = {2, 2}), NULL, L, &e);
  IrType flat = tp("f32[N,1152]");
  int f = ir_build(G, OP_RESHAPE, OPS(p1), NULL, &flat, L, &e);
  int mm = ir_build(G, OP_MATMUL, OPS(f, w2), AT(.trans_b = true), NULL, L, &e);
  int lg = ir_build(G, OP_ADD, OPS(mm, b2), NULL, NULL, L, &e);
  int loss = ir_build(G, OP_CROSS_ENTROPY, OPS(lg, lab), NULL, NULL, L, &e);
  ck_assert_msg(loss >= 0, "%s", e.msg);
  ck_assert_str_eq(tstr(&G->nodes[p1].type), "f32[N,8,12,12]");
  ck_assert_str_eq(tstr(&G->nodes[lg].type), "f32[N,10]");
  char buf[4096] = {0};
  FILE *mem = fmemopen(buf, sizeof buf - 1, "w");
  ck_assert_int_eq(ir_verify(G, mem), 0);
  fclose(mem);
  /* a wrong result type is caught */
  G->nodes[r1].type = tp("f32[N,8,24,25]");
  mem = fmemopen(buf, sizeof buf - 1, "w");
  ck_assert_int_gt(ir_verify(G, mem), 0);
  fclose(mem);
  ck_assert_ptr_nonnull(strstr(buf, "type f32[N,8,24,25], but its rule gives f32[N,8,24,24]"));
}
END_TEST

static Suite *shape_suite(void) {
  Suite *s = suite_create("shape");
  struct {
    const char *name;
    const TTest *t;
  } cases[] = {
      {"table", test_table_complete},     {"arity", test_arity_and_operands},
      {"leaves", test_leaves},            {"unary", test_unary},
      {"cast", test_cast},                {"broadcast", test_broadcast_binary},
      {"matmul", test_matmul},            {"transpose", test_transpose},
      {"reshape", test_reshape},          {"broadcast_op", test_broadcast_op},
      {"concat", test_concat},            {"slice", test_slice},
      {"reductions", test_reductions},    {"softmax", test_softmax},
      {"conv_symbolic", test_conv_symbolic}, {"conv_const", test_conv_const},
      {"conv_groups", test_conv_groups},  {"pool", test_pool},
      {"batchnorm", test_batchnorm},      {"layernorm", test_layernorm},
      {"dropout", test_dropout},          {"embedding", test_embedding},
      {"losses", test_losses},            {"bwd_pairs", test_bwd_pairs},
      {"max_bwd", test_max_bwd},          {"conv_bwd", test_conv_bwd},
      {"pool_bwd", test_pool_bwd},        {"norm_bwd", test_norm_bwd},
      {"assign", test_assign},            {"build_verify", test_build_and_verify},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cases[i].t);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(shape_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
