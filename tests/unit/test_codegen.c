/* test_codegen.c — the LLVM CPU backend against the reference interpreter.
 *
 * Every op (forward and backward) is run in a tiny graph built with ir_build, compiled with
 * llvm_model_emit + JIT, fed random inputs, and compared with interp_run (round_storage, so
 * the oracle stores f32 results like the compiled code; it still computes each op in
 * double). Each example model that compiles is built at a small batch: its forward pass and
 * one training step (loss, every updated parameter, buffer and optimizer-state tensor) are
 * compared the same way. Every compiled run is repeated from the same state on the same
 * thread pool and must give identical bits.
 *
 * Tolerances, |got - ref| <= atol + rtol*|ref|:
 *   elementwise ops            rtol 2e-6, atol 1e-6 (one f32 rounding per op, libm ulps)
 *   GEMM / conv / reductions   rtol 1e-4, atol 1e-5 (f32 accumulation vs double)
 *   model forward / train step rtol 1e-3, atol 1e-4 (f32 through whole networks)
 */
#include <check.h>

#include "test_env.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../codegen/llvm/codegen.h"
#include "../../codegen/llvm/llvm_emit.h"
#include "../../frontend/frontend.h"
#include "../../ir/interp.h"
#include "../../passes/passes.h"
#include "../../runtime/rt_program.h"
#include "../../runtime/rt_threads.h"
#include "graph_names.h"

/* created lazily in each test process: check forks, and a pool does not survive fork */
static RtPool *pool, *pool1;
static bool g_one_thread; /* run_case on a pool of one thread (else two) */
static RtPool *get_pool(void) {
  if (g_one_thread) return pool1 ? pool1 : (pool1 = rt_pool_create(1));
  if (!pool) pool = rt_pool_create(2);
  return pool;
}

/* ---- graph building --------------------------------------------------------------------- */

static Arena *A;
static IrGraph *G;
static const SrcLoc L0 = {0};

static void g_begin(const char *name) {
  A = arena_new();
  G = ir_graph_new(A, name);
}

static IrType ty(DType dt, int rank, const int64_t *d) {
  Dim *dims[IR_MAX_RANK];
  for (int k = 0; k < rank; k++) dims[k] = dim_const(G->dims, d[k]);
  return ir_type(dt, rank, dims);
}

static int leaf(OpKind op, const char *name, DType dt, int rank, ...) {
  int64_t d[IR_MAX_RANK];
  va_list ap;
  va_start(ap, rank);
  for (int k = 0; k < rank; k++) d[k] = va_arg(ap, int);
  va_end(ap);
  IrType t = ty(dt, rank, d);
  IrAttr at = {.trainable = true};
  ShapeErr err;
  int i = ir_build(G, op, NULL, 0, &at, &t, L0, &err);
  ck_assert_msg(i >= 0, "%s", err.msg);
  G->nodes[i].name = name;
  return i;
}
#define IN(name, ...) leaf(OP_INPUT, name, DT_F32, __VA_ARGS__)
#define PARAM(name, ...) leaf(OP_PARAM, name, DT_F32, __VA_ARGS__)

static int op_h(OpKind op, const int *in, int nin, const IrAttr *at, const IrType *hint) {
  ShapeErr err;
  IrAttr z = {0};
  int i = ir_build(G, op, in, nin, at ? at : &z, hint, L0, &err);
  ck_assert_msg(i >= 0, "%s: %s", ir_op_name(op), err.msg);
  return i;
}
static int op1(OpKind op, int a, const IrAttr *at) { return op_h(op, &a, 1, at, NULL); }
static int op2(OpKind op, int a, int b, const IrAttr *at) {
  int in[2] = {a, b};
  return op_h(op, in, 2, at, NULL);
}
static int op3(OpKind op, int a, int b, int c, const IrAttr *at) {
  int in[3] = {a, b, c};
  return op_h(op, in, 3, at, NULL);
}
static void out(const char *name, int node) { ir_add_output(G, name, node); }

/* ---- running and comparing -------------------------------------------------------------- */

typedef struct Fill {
  double lo, hi;  /* floats uniform in [lo, hi) */
  int64_t int_hi; /* i32 values uniform in [0, int_hi) */
  bool use_init;  /* parameters and buffers from their initializers (interp_init_param) */
} Fill;

#define RNG_SEED 88172645463325252ull
static uint64_t rng = RNG_SEED;
/* every test starts from the same state, so that its data does not depend on the tests run
 * before it in the same process (CK_FORK=no) */
static void rng_reset(void) { rng = RNG_SEED; }
static double urand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) * 0x1p-53;
}

static void *alloc64(int64_t n) {
  void *p = NULL;
  ck_assert_int_eq(posix_memalign(&p, 64, (size_t)(n > 0 ? (n + 63) / 64 * 64 : 64)), 0);
  memset(p, 0, (size_t)(n > 0 ? (n + 63) / 64 * 64 : 64));
  return p;
}

static int64_t numel_of(const RtTensorInfo *t) {
  int64_t n = 1;
  for (int k = 0; k < t->rank; k++) n *= t->shape[k];
  return n;
}

/* max over elements of |got-ref| / (atol + rtol|ref|); <= 1 passes */
/* Whole deep models compare each tensor norm-wise, ||got - ref|| <= atol*sqrt(n) + rtol*||ref||:
 * after dozens of layers with batch statistics over a handful of values, single elements of a
 * gradient are ill-conditioned (f32 vs double rounding is amplified), while the tensor as a
 * whole is not. Single ops compare element by element. */
static bool g_normwise;
/* optimization level for whole models: -O1 compiles the large modules several times faster;
 * every op is also checked at the default -O2 */
static int g_opt_level;
/* --precision bf16 (the bf16_models test) */
static bool g_bf16;
/* --no-winograd: the convolution tests of the implicit GEMM keep it for every shape (the
 * winograd test checks the Winograd path with its own tolerance) */
static bool g_no_wino;
/* > 0: a depthwise convolution fused into its pointwise reader wherever the plan allows, in
 * strips of this many rows (CgOptions.dw_strip: the dw_pw_fused test's strip boundaries) */
static int g_dw_strip;
/* --no-dw-fuse (the plans of host_plan_of only) */
static bool g_no_dw_fuse;
/* the atol of element-wise comparisons is relative to the tensor's largest |value| (the
 * winograd test: F(4,3)'s error scales with the output's magnitude, not each element's) */
static bool g_atol_scaled;

static double compare(const char *what, const char *name, const float *got, const double *ref,
                      int64_t n, double rtol, double atol) {
  if (g_normwise) {
    double dd = 0, rr = 0;
    for (int64_t i = 0; i < n; i++) {
      double d = (double)got[i] - ref[i];
      dd += d * d;
      rr += ref[i] * ref[i];
    }
    double r = sqrt(dd) / (atol * sqrt((double)n) + rtol * sqrt(rr));
    if (!(r <= 1))
      fprintf(stderr, "%s: %s: ||diff|| %.3g vs ||ref|| %.3g (n=%lld)\n", what, name, sqrt(dd),
              sqrt(rr), (long long)n);
    return isnan(r) ? INFINITY : r;
  }
  double worst = 0, maxdiff = 0, scale = 0;
  int64_t at = -1;
  for (int64_t i = 0; g_atol_scaled && i < n; i++) scale = fmax(scale, fabs(ref[i]));
  if (g_atol_scaled) atol *= scale;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - ref[i]);
    if (isnan(ref[i]) && isnan(got[i])) d = 0;
    else if (isinf(ref[i]) && got[i] == ref[i]) d = 0;
    else if (isnan(d)) d = INFINITY;
    /* a NaN reference that the result misses is a failure too (NaN ratios never are) */
    double r = d / (atol + rtol * (isnan(ref[i]) ? 0 : fabs(ref[i])));
    if (r > worst) worst = r, at = i;
    if (d > maxdiff) maxdiff = d;
  }
  if (worst > 1)
    fprintf(stderr, "%s: %s: max |diff| %.3g, worst at [%lld]: got %.9g, want %.9g\n", what,
            name, maxdiff, (long long)at, (double)got[at], ref[at]);
  if (g_atol_scaled && getenv("NNC_TEST_VERBOSE"))
    fprintf(stderr, "%s: %s: max |diff| %.3g = %.3g of max |ref| %.3g\n", what, name, maxdiff,
            scale > 0 ? maxdiff / scale : 0, scale);
  return worst;
}


/* Compiles fwd (and train), runs forward (train == NULL) or one training step on random
 * data, compares every output / updated tensor with the interpreter and checks that a
 * second run from the same state gives the same bits. Returns the worst ratio. */
static double run_case(const char *what, IrGraph *fwd, IrGraph *train, const IrTrain *t,
                       Fill f, double rtol, double atol) {
  Diag *d = diag_new(stderr);
  CgOptions co = {.opt_level = g_opt_level, .bf16 = g_bf16, .no_winograd = g_no_wino,
                  .dw_strip = g_dw_strip};
  CgModel *m = llvm_model_emit(fwd, train, t, &co, d);
  ck_assert_msg(m != NULL, "%s: llvm_model_emit failed", what);
  const RtModelDesc *desc = llvm_model_jit(m, d);
  ck_assert_msg(desc != NULL, "%s: JIT failed (diagnostic above)", what);
  ck_assert_int_eq(desc->abi, RT_MODEL_ABI);
  IrGraph *g = train ? train : fwd;
  char *params = alloc64(desc->params_bytes), *io = alloc64(desc->io_bytes);
  int64_t ab = train ? desc->arena_bytes_train : desc->arena_bytes_forward;
  char *arena = alloc64(ab);
  InterpOptions io_opt = {.round_storage = true, .seed = 1234, .step = 3};
  Interp *I = interp_new(g, &io_opt);
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    if (ti->kind == RT_KIND_OUTPUT || ti->kind == RT_KIND_LOSS) continue;
    char *base = (ti->kind == RT_KIND_INPUT ? io : params) + ti->offset;
    int64_t n = numel_of(ti);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    int node = tg_find_leaf(g, ti->name);
    ck_assert_msg(node >= 0, "%s: no node for tensor %s", what, ti->name);
    bool from_init = f.use_init && (ti->kind == RT_KIND_PARAM || ti->kind == RT_KIND_BUFFER);
    if (ti->kind == RT_KIND_OPTSTATE || from_init) interp_init_param(g, node, 1, v);
    for (int64_t i = 0; i < n; i++) {
      if (from_init) {
        /* keep the initializer's value */
      } else if (ti->kind == RT_KIND_OPTSTATE) {
        /* nonzero moments and step count so the update formulas are exercised */
        v[i] = strstr(ti->name, "step") ? 2 : strstr(ti->name, "adam_v") ? 0.01 * urand() : 0.1 * (urand() - 0.5);
      } else if (ti->dtype == DT_I32) {
        v[i] = (double)(int64_t)(urand() * (double)f.int_hi);
      } else {
        v[i] = f.lo + (f.hi - f.lo) * urand();
      }
      if (ti->dtype == DT_I32) ((int32_t *)base)[i] = (int32_t)v[i];
      else ((float *)base)[i] = (float)v[i];
    }
    ck_assert_int_eq(interp_set(I, node, v, n), 0);
    free(v);
  }
  char ierr[256];
  ck_assert_msg(interp_run(I, ierr, sizeof ierr) == 0, "%s: interpreter: %s", what, ierr);
  char *params0 = alloc64(desc->params_bytes);
  memcpy(params0, params, (size_t)desc->params_bytes);
  RtModelBufs b = {params, io, arena, get_pool(), 3, 1234, NULL, NULL};
  void (*entry)(const RtModelBufs *) = train ? desc->train_step : desc->forward;
  ck_assert_ptr_nonnull(entry);
  entry(&b);
  double worst = 0;
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    if (ti->kind == RT_KIND_INPUT || ti->dtype != DT_F32) continue;
    if (!train && ti->kind != RT_KIND_OUTPUT) continue;
    int node = ti->kind == RT_KIND_OUTPUT ? tg_find_out(g, ti->name)
               : ti->kind == RT_KIND_LOSS ? tg_find_out(g, "loss")
                                          : tg_find_leaf(g, ti->name);
    ck_assert_int_ge(node, 0);
    int64_t n;
    const double *ref = interp_value(I, node, &n);
    ck_assert_int_eq(n, numel_of(ti));
    char *base = (ti->kind <= RT_KIND_OPTSTATE ? params : io) + ti->offset;
    double w = compare(what, ti->name, (const float *)base, ref, n, rtol, atol);
    if (w > worst) worst = w;
  }
  /* the same step again from the same state: identical bits */
  char *io1 = alloc64(desc->io_bytes), *params1 = alloc64(desc->params_bytes);
  memcpy(io1, io, (size_t)desc->io_bytes);
  memcpy(params1, params, (size_t)desc->params_bytes);
  memcpy(params, params0, (size_t)desc->params_bytes);
  memset(arena, 0xff, (size_t)(ab > 0 ? ab : 1));
  if (!train) /* as the runtime does for a changed arena: the packed weights are packed again */
    memset(arena + desc->packed_flags_at, 0, (size_t)desc->packed_flags_bytes);
  entry(&b);
  ck_assert_msg(memcmp(io1, io, (size_t)desc->io_bytes) == 0, "%s: outputs differ between runs", what);
  ck_assert_msg(memcmp(params1, params, (size_t)desc->params_bytes) == 0,
                "%s: parameters differ between runs", what);
  free(io1);
  free(params1);
  free(params0);
  interp_free(I);
  free(params);
  free(io);
  free(arena);
  llvm_model_free(m);
  diag_free(d);
  ck_assert_msg(worst <= 1, "%s: differs from the interpreter (worst ratio %.3g)", what, worst);
  return worst;
}

static const Fill F_SYM = {-2, 2, 4, false}, F_POS = {0.1, 3, 4, false};
#define EW_RTOL 2e-6
#define EW_ATOL 1e-6
#define MM_RTOL 1e-4
#define MM_ATOL 1e-5

static void g_end(void) {
  dim_ctx_free(G->dims);
  arena_free(A);
  A = NULL;
  G = NULL;
}

static void check_fwd(const char *what, Fill f, double rtol, double atol) {
  run_case(what, G, NULL, NULL, f, rtol, atol);
  g_end();
}

/* ---- elementwise ------------------------------------------------------------------------ */

static const OpKind unary_ops[] = {OP_NEG, OP_EXP, OP_LOG, OP_SQRT, OP_TANH, OP_SIGMOID,
                                   OP_RELU, OP_GELU, OP_SILU, OP_POWC};

START_TEST(unary) {
  OpKind op = unary_ops[_i];
  g_begin("unary");
  int x = IN("x", 2, 37, 19); /* a row length that is not a vector multiple */
  IrAttr at = {.value = 2.5};
  out("y", op1(op, x, &at));
  bool pos = op == OP_LOG || op == OP_SQRT || op == OP_POWC;
  check_fwd(ir_op_name(op), pos ? F_POS : (Fill){-6, 6, 4, false}, EW_RTOL, op == OP_GELU || op == OP_SILU ? 1e-5 : EW_ATOL);
}
END_TEST

static const OpKind binary_ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_LT, OP_LE, OP_GT, OP_GE,
                                    OP_EQ, OP_NE, OP_RELU_BWD, OP_GELU_BWD,
                                    OP_SILU_BWD, OP_SIGMOID_BWD, OP_TANH_BWD};

START_TEST(binary_broadcast) {
  OpKind op = binary_ops[_i];
  g_begin("binary");
  bool bwd = ir_ops[op].flags & OPF_BWD; /* the *_bwd ops take equal shapes */
  int a = IN("a", 3, 3, 1, 21), b = bwd ? IN("b", 3, 3, 1, 21) : IN("b", 2, 5, 21);
  out("y", op2(op, a, b, NULL));
  check_fwd(ir_op_name(op), op == OP_DIV ? F_POS : F_SYM, EW_RTOL, 1e-5);
}
END_TEST

/* where over three broadcasting operands, its condition a comparison with an i32 input, and
 * iota index tensors (f32 and i32, start and step) feeding a causal mask */
START_TEST(where_and_iota) {
  g_begin("where");
  int x = IN("x", 3, 3, 5, 5), b = IN("b", 1, 5);
  int lab = leaf(OP_INPUT, "lab", DT_I32, 2, 5, 1);
  IrAttr ra = {.axis = 0, .init_a = 1, .init_b = 1}, ca = {.axis = 1, .init_a = 0, .init_b = 1};
  IrType rt = ty(DT_F32, 2, (int64_t[]){5, 1}), ct = ty(DT_F32, 2, (int64_t[]){1, 5});
  int row = op_h(OP_IOTA, NULL, 0, &ra, &rt), col = op_h(OP_IOTA, NULL, 0, &ca, &ct);
  out("y", op3(OP_WHERE, op2(OP_LE, col, row, NULL), x, b, NULL));
  IrType lt = ty(DT_F32, 2, (int64_t[]){5, 1});
  int labf = op_h(OP_CAST, &lab, 1, NULL, &lt);
  out("z", op3(OP_WHERE, op2(OP_GT, labf, b, NULL), b, x, NULL));
  IrAttr ia = {.axis = 1, .init_a = -3, .init_b = 2};
  IrType it = ty(DT_I32, 3, (int64_t[]){2, 7, 3});
  int idx = op_h(OP_IOTA, NULL, 0, &ia, &it);
  IrType ft = ty(DT_F32, 3, (int64_t[]){2, 7, 3});
  out("w", op_h(OP_CAST, &idx, 1, NULL, &ft));
  check_fwd("where_and_iota", F_SYM, EW_RTOL, EW_ATOL);
}
END_TEST

START_TEST(fused_chain_and_cast) {
  /* a chain of elementwise ops with a scalar constant, a broadcast, an i32 cast */
  g_begin("chain");
  int x = IN("x", 2, 6, 40), s = IN("s", 1, 40);
  int lab = leaf(OP_INPUT, "lab", DT_I32, 2, 6, 40);
  IrType ct = ty(DT_F32, 0, NULL);
  IrAttr cv = {.value = 0.5};
  int c = op_h(OP_CONST, NULL, 0, &cv, &ct);
  int t1 = op2(OP_MUL, x, c, NULL);
  int t2 = op2(OP_ADD, t1, s, NULL);
  int t3 = op1(OP_TANH, t2, NULL);
  IrType ft = ty(DT_F32, 2, (int64_t[]){6, 40});
  int lf = op_h(OP_CAST, &lab, 1, NULL, &ft);
  int t4 = op2(OP_MUL, t3, lf, NULL);
  IrType it = ty(DT_I32, 2, (int64_t[]){6, 40});
  int ti = op_h(OP_CAST, &t4, 1, NULL, &it);
  IrType bt = ty(DT_F32, 3, (int64_t[]){2, 6, 40});
  out("y", t4);
  out("mid", t2);
  out("b", op_h(OP_BROADCAST, &t2, 1, NULL, &bt));
  out("yi", ti);
  check_fwd("chain", (Fill){-2, 2, 7, false}, EW_RTOL, 1e-5);
}
END_TEST

START_TEST(const_output) {
  g_begin("const");
  IrType ct = ty(DT_F32, 2, (int64_t[]){3, 5});
  IrAttr cv = {.value = 1.75};
  int c = op_h(OP_CONST, NULL, 0, &cv, &ct);
  int x = IN("x", 2, 3, 5);
  IrAttr sum = {.naxes = 1, .axes = {0}};
  out("c", c);
  out("s", op1(OP_SUM, op2(OP_MUL, c, x, NULL), &sum));
  out("x", x);
  check_fwd("const", F_SYM, MM_RTOL, MM_ATOL);
}
END_TEST

/* ---- matmul ----------------------------------------------------------------------------- */

START_TEST(matmul_variants) {
  struct {
    int ra, rb;
    int a[4], b[4];
    bool ta, tb;
  } cs[] = {
      {2, 2, {37, 29}, {29, 45}, false, false},
      {2, 2, {29, 37}, {29, 45}, true, false},
      {2, 2, {37, 29}, {45, 29}, false, true},
      {2, 2, {29, 37}, {45, 29}, true, true},
      {1, 2, {29}, {29, 45}, false, false},
      {2, 1, {37, 29}, {29}, false, false},
      {3, 2, {3, 17, 29}, {29, 20}, false, false},         /* batch folded into M */
      {4, 3, {2, 3, 7, 9}, {3, 9, 5}, false, false},       /* broadcast batch */
      {3, 3, {1, 7, 9}, {4, 5, 9}, false, true},           /* broadcast of the left batch */
      {2, 2, {130, 300}, {300, 70}, false, false},         /* several K and M blocks */
      /* at most 4 rows: B streamed, not packed (rt_k_gemv) */
      {2, 2, {1, 1100}, {1100, 45}, false, false},         /* K past a block of sums */
      {2, 2, {3, 1030}, {1037, 1030}, false, true},        /* dot products, odd N */
      {3, 2, {2, 1, 29}, {29, 1100}, false, false},        /* batch folded: 2 rows, N blocks */
      {1, 2, {29}, {45, 29}, false, true},
  };
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    if (getenv("MMCASE") && atoi(getenv("MMCASE")) != (int)c) continue;
    g_begin("mm");
    int64_t da[4], db[4];
    for (int k = 0; k < 4; k++) da[k] = cs[c].a[k], db[k] = cs[c].b[k];
    IrType ta = ty(DT_F32, cs[c].ra, da), tb = ty(DT_F32, cs[c].rb, db);
    ShapeErr err;
    IrAttr z = {0};
    int a = ir_build(G, OP_INPUT, NULL, 0, &z, &ta, L0, &err);
    int b = ir_build(G, OP_INPUT, NULL, 0, &z, &tb, L0, &err);
    G->nodes[a].name = "a";
    G->nodes[b].name = "b";
    IrAttr at = {.trans_a = cs[c].ta, .trans_b = cs[c].tb};
    out("y", op2(OP_MATMUL, a, b, &at));
    char what[64];
    snprintf(what, sizeof what, "matmul case %zu", c);
    /* f32 rounding grows with the sum of |terms|: K terms of up to 4 */
    check_fwd(what, F_SYM, MM_RTOL, 2e-7 * 4 * (cs[c].ta ? cs[c].a[cs[c].ra - 2] : cs[c].a[cs[c].ra - 1]));
  }
}
END_TEST

START_TEST(matmul_bias_relu_epilogue) {
  /* 13 rows: the packed GEMM's epilogue; 1 and 3: the streamed product's */
  int rows[3] = {13, 1, 3};
  for (int r = 0; r < 3; r++) {
    g_begin("dense");
    int x = IN("x", 2, rows[r], 50), w = PARAM("w", 2, 33, 50), bias = PARAM("bias", 1, 33);
    IrAttr tb = {.trans_b = true};
    int y = op1(OP_RELU, op2(OP_ADD, op2(OP_MATMUL, x, w, &tb), bias, NULL), NULL);
    out("y", y);
    check_fwd("dense+bias+relu", F_SYM, MM_RTOL, MM_ATOL);
  }
}
END_TEST

/* G := x[rows, in] -> dense to hid, tanh -> dense to nout (logits) -> cross entropy with
 * the labels (loss); returns the training graph of t */
static IrGraph *small_net(int rows, int in, int hid, int nout, const IrTrain *t) {
  g_begin("net");
  int x = IN("x", 2, rows, in), lab = leaf(OP_INPUT, "label", DT_I32, 1, rows);
  int w1 = PARAM("fc1.weight", 2, hid, in), b1 = PARAM("fc1.bias", 1, hid);
  int w2 = PARAM("fc2.weight", 2, nout, hid), b2 = PARAM("fc2.bias", 1, nout);
  IrAttr tb = {.trans_b = true};
  int h = op1(OP_TANH, op2(OP_ADD, op2(OP_MATMUL, x, w1, &tb), b1, NULL), NULL);
  int logits = op2(OP_ADD, op2(OP_MATMUL, h, w2, &tb), b2, NULL);
  G->nodes[logits].name = "logits";
  int loss = op2(OP_CROSS_ENTROPY, logits, lab, NULL);
  G->nodes[loss].name = "loss";
  out("logits", logits);
  TrainInfo info;
  Diag *d = diag_new(stderr);
  IrGraph *tg = pass_train_graph(G, t, &info, d);
  ck_assert_ptr_nonnull(tg);
  diag_free(d);
  return tg;
}

/* the matmul nodes of g with at most 32 rows a call and at least 32 outputs must have taken
 * the transposed form (the tiles' mm_t) where the host's vectors have 8 lanes or more; the
 * count of those that did */
static int check_mm_t(IrGraph *g, const char *what) {
  HwTarget hw;
  char err[256];
  if (hw_resolve("host", &hw, err, sizeof err) != 0 || hw.vector_bits < 256) {
    fprintf(stderr, "%s: host vectors under 8 lanes, the choice is not checked\n", what);
    return -1;
  }
  TilePlan *tp = pass_tiles(g, &hw, NULL);
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const TileDecision *d = &tp->tiles[i];
    if (g->nodes[i].op != OP_MATMUL || !d->valid) continue;
    int64_t rows = d->gemm.b_shared && !d->gemm.trans_a ? d->gemm.m * d->gemm.batch : d->gemm.m;
    if (rows > 32 || rows <= TILES_CPU_STREAM_M || d->gemm.n < 32) continue;
    ck_assert_msg(d->mm_t, "%s: matmul %%%d (%lld rows) not transposed: %s", what, i,
                  (long long)rows, d->reason);
    n++;
  }
  return n;
}

/* Matmuls of few rows computed with their outputs in the lanes (the tiles' mm_t: a register
 * tile of the rows x vectors of outputs): dense layers x·Wᵀ + b with relu (the weight packed
 * once) of 5 to 31 rows, outputs under, at and past a tile (40 to 1000), K in one to three
 * KC blocks; a batch of 2 x 6 rows folded into one product; B not transposed (an input, not
 * packed); a training step whose forward and data-gradient matmuls take it. Each against
 * the interpreter, the form asserted where the host's vectors have 8 lanes or more. */
START_TEST(matmul_few_rows) {
  static const int cs[][3] = {{8, 1280, 1000}, {5, 70, 40}, {13, 600, 100}, {31, 1100, 70}, {16, 50, 48}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    g_begin("dense_few");
    int x = IN("x", 2, cs[c][0], cs[c][1]), w = PARAM("w", 2, cs[c][2], cs[c][1]);
    int bias = PARAM("bias", 1, cs[c][2]);
    IrAttr tb = {.trans_b = true};
    out("y", op1(OP_RELU, op2(OP_ADD, op2(OP_MATMUL, x, w, &tb), bias, NULL), NULL));
    char what[64];
    snprintf(what, sizeof what, "few-row dense case %zu", c);
    ck_assert(check_mm_t(G, what) != 0);
    check_fwd(what, F_SYM, MM_RTOL, 2e-7 * 4 * cs[c][1]);
  }
  g_begin("mm_few_folded"); /* [2,6,300]·[300,130]: B an input, not packed nor transposed */
  int a = IN("a", 3, 2, 6, 300), b = IN("b", 2, 300, 130);
  out("y", op2(OP_MATMUL, a, b, NULL));
  ck_assert(check_mm_t(G, "folded few-row matmul") != 0);
  check_fwd("folded few-row matmul", F_SYM, MM_RTOL, 2e-7 * 4 * 300);
  /* a classifier's training step: the forward and dx transposed */
  IrTrain t = {.model = "net", .minimize = "loss", .opt = OPT_SGD, .lr = 0.05, .momentum = 0.9};
  IrGraph *tg = small_net(8, 64, 200, 100, &t);
  int nt = check_mm_t(tg, "few-row training step");
  ck_assert(nt < 0 || nt >= 3); /* fc1, fc2 forward and fc2's data gradient */
  run_case("few-row training step", G, tg, &t, (Fill){-1, 1, 100, false}, 1e-3, 1e-4);
  g_end();
}
END_TEST

/* ---- data movement ---------------------------------------------------------------------- */

START_TEST(data_movement) {
  g_begin("move");
  int x = IN("x", 3, 4, 5, 6), y = IN("y", 3, 4, 2, 6);
  IrAttr tp = {.naxes = 3, .axes = {2, 0, 1}};
  out("t", op1(OP_TRANSPOSE, x, &tp));
  IrType rt = ty(DT_F32, 2, (int64_t[]){20, 6});
  int r = op_h(OP_RESHAPE, &x, 1, NULL, &rt);
  out("r", op1(OP_NEG, r, NULL));
  out("r2", r); /* an alias as an output: copied */
  int cin[3] = {x, y, x};
  IrAttr ca = {.axis = 1};
  out("c", op_h(OP_CONCAT, cin, 3, &ca, NULL));
  IrAttr sa = {.axis = 2, .start = dim_const(G->dims, 2), .end = dim_const(G->dims, 5)};
  IrType st = ty(DT_F32, 3, (int64_t[]){4, 5, 3});
  int s = op_h(OP_SLICE, &x, 1, &sa, &st);
  out("s", s);
  IrType sbt = ty(DT_F32, 3, (int64_t[]){4, 5, 6});
  out("sb", op_h(OP_SLICE_BWD, &s, 1, &sa, &sbt));
  IrType bt = ty(DT_F32, 4, (int64_t[]){2, 4, 5, 6});
  out("b", op_h(OP_BROADCAST, &x, 1, NULL, &bt));
  check_fwd("data movement", F_SYM, 0, 0);
}
END_TEST

/* ---- reductions and softmax ------------------------------------------------------------- */

START_TEST(reductions) {
  OpKind ops[] = {OP_SUM, OP_MEAN, OP_MAX, OP_VAR};
  for (int o = 0; o < 4; o++)
    for (int v = 0; v < 4; v++) {
      g_begin("reduce");
      /* v == 3: the per-channel statistics of NCHW activations (axes 0, 2, 3), planes of
       * more than one blocked-sum block */
      int x = v == 3 ? IN("x", 4, 3, 5, 33, 40) : IN("x", 3, 4, 7, 9);
      IrAttr at = {.keepdim = v >= 2, .correction = 1};
      if (v == 2) at.naxes = 3, at.axes[0] = 0, at.axes[1] = 1, at.axes[2] = 2;
      if (v == 3) at.naxes = 3, at.axes[0] = 0, at.axes[1] = 2, at.axes[2] = 3;
      if (v == 0) at.naxes = 1, at.axes[0] = 0;
      else if (v == 1) at.naxes = 2, at.axes[0] = 2, at.axes[1] = 0;
      int y = op1(ops[o], x, &at);
      out("y", y);
      if (ops[o] == OP_MAX) {
        int dy = op1(OP_EXP, y, NULL);
        int in3[3] = {dy, x, y};
        out("dx", op_h(OP_MAX_BWD, in3, 3, &at, NULL));
      }
      char what[64];
      snprintf(what, sizeof what, "%s variant %d", ir_op_name(ops[o]), v);
      check_fwd(what, F_SYM, MM_RTOL, MM_ATOL);
    }
}
END_TEST

START_TEST(softmax_family) {
  for (int axis = 0; axis < 3; axis++) {
    g_begin("softmax");
    int x = IN("x", 3, 3, 17, 5), dy = IN("dy", 3, 3, 17, 5);
    IrAttr at = {.axis = axis};
    int s = op1(OP_SOFTMAX, x, &at), ls = op1(OP_LOG_SOFTMAX, x, &at);
    out("s", s);
    out("ls", ls);
    out("ds", op2(OP_SOFTMAX_BWD, dy, s, &at));
    out("dls", op2(OP_LOG_SOFTMAX_BWD, dy, ls, &at));
    check_fwd("softmax", (Fill){-5, 5, 2, false}, MM_RTOL, MM_ATOL);
  }
}
END_TEST

/* ---- convolution and pooling ------------------------------------------------------------ */

typedef struct ConvCase {
  int C, O, H, W, KH, KW, sh, sw, ph, pw, dh, dw, G;
} ConvCase;

/* the convolution cs on N images in graph G: y, bias+relu, the data and filter gradients */
static void conv_case_outputs(const ConvCase *cs, int N, const char *tag) {
  int OH = (cs->H + 2 * cs->ph - cs->dh * (cs->KH - 1) - 1) / cs->sh + 1;
  int OW = (cs->W + 2 * cs->pw - cs->dw * (cs->KW - 1) - 1) / cs->sw + 1;
  const char *nm[8], *base[8] = {"x", "w", "dy", "b", "y", "yb", "dx", "dw"};
  for (int i = 0; i < 8; i++) nm[i] = arena_printf(A, "%s%s", base[i], tag); /* names live in G */
  int x = IN(nm[0], 4, N, cs->C, cs->H, cs->W);
  int w = PARAM(nm[1], 4, cs->O, cs->C / cs->G, cs->KH, cs->KW);
  int dy = IN(nm[2], 4, N, cs->O, OH, OW);
  int bias = PARAM(nm[3], 3, cs->O, 1, 1);
  IrAttr at = {.kernel = {cs->KH, cs->KW}, .stride = {cs->sh, cs->sw},
               .pad = {cs->ph, cs->pw}, .dilation = {cs->dh, cs->dw}, .groups = cs->G};
  out(nm[4], op2(OP_CONV2D, x, w, &at));
  out(nm[5], op1(OP_RELU, op2(OP_ADD, op2(OP_CONV2D, x, w, &at), bias, NULL), NULL));
  IrType xt = G->nodes[x].type, wt = G->nodes[w].type;
  int in2[2] = {dy, w};
  out(nm[6], op_h(OP_CONV2D_BWD_DATA, in2, 2, &at, &xt));
  int in3[2] = {x, dy};
  out(nm[7], op_h(OP_CONV2D_BWD_FILTER, in3, 2, &at, &wt));
}

START_TEST(conv_variants) {
  g_no_wino = true;
  static const ConvCase cs[] = {
      {3, 8, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {4, 6, 10, 9, 3, 2, 2, 1, 0, 1, 1, 1, 2},
      {6, 6, 8, 8, 3, 3, 1, 1, 2, 2, 2, 2, 6}, /* depthwise, dilated */
      {5, 7, 6, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1}, /* 1x1: no im2col */
      {2, 3, 7, 7, 5, 5, 2, 2, 2, 2, 1, 1, 1},
      {8, 8, 19, 37, 3, 3, 2, 2, 1, 1, 1, 1, 8}, /* depthwise, stride 2, rows past a vector */
      {4, 4, 12, 35, 5, 5, 1, 1, 2, 2, 1, 1, 4}, /* depthwise 5x5 */
      {4, 8, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 4},   /* two outputs per group */
      /* implicit GEMM (the forward and the filter gradient gather from the image while
       * packing; below 256 output positions the two images share one GEMM): OW == W at
       * stride 1 loads vectors that span output rows */
      {3, 5, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {3, 20, 13, 13, 3, 3, 1, 1, 1, 1, 1, 1, 1},
      {64, 16, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* K = 576: more than one K block */
      {3, 8, 23, 21, 7, 7, 2, 2, 3, 3, 1, 1, 1},  /* 7x7 stride 2: gathers */
      {5, 9, 11, 10, 3, 3, 2, 1, 1, 1, 1, 1, 1},  /* stride 2 along columns only: gathers */
      {4, 6, 12, 12, 3, 3, 1, 1, 2, 2, 2, 2, 1},  /* dilated, OW == W */
      {6, 10, 9, 8, 3, 3, 1, 1, 0, 0, 1, 1, 2},   /* unpadded (OW < W), two groups */
  };
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    g_begin("conv");
    conv_case_outputs(&cs[c], 2, "");
    char what[64];
    snprintf(what, sizeof what, "conv case %zu", c);
    /* sums of more than 256 products (K = 576): their rounding error grows with the sums'
     * magnitude, which a fixed absolute part does not follow (5.3e-5 on an output of
     * 0.015 that cancels terms of up to 1, with other data than the suite's first run) */
    g_atol_scaled = cs[c].C / cs[c].G * cs[c].KH * cs[c].KW > 256;
    check_fwd(what, F_SYM, MM_RTOL, MM_ATOL);
    g_atol_scaled = false;
  }
  g_no_wino = false;
}
END_TEST

/* a convolution and its batch size */
typedef struct ConvCaseN {
  ConvCase c;
  int N;
} ConvCaseN;

/* every case of cs against the interpreter, named `what` and its index; plan_check (if
 * any) first asserts what the plan of case c (in G) must choose */
static void check_conv_cases_plan(const char *what, const ConvCaseN *cs, size_t n,
                                  void (*plan_check)(size_t c)) {
  for (size_t c = 0; c < n; c++) {
    g_begin("conv_case");
    conv_case_outputs(&cs[c].c, cs[c].N, "");
    if (plan_check) plan_check(c);
    char nm[64];
    snprintf(nm, sizeof nm, "%s case %zu", what, c);
    check_fwd(nm, F_SYM, MM_RTOL, MM_ATOL);
  }
}

static void check_conv_cases(const char *what, const ConvCaseN *cs, size_t n) {
  check_conv_cases_plan(what, cs, n, NULL);
}

/* more data-gradient shapes (GEMM into the unfold, then col2im): a padded 1x1, 3x3 with
 * more padding than taps, unpadded 3x3 and 7x7 (dx larger than dy), one image and several,
 * images under and over 256 positions (the batched GEMM and one per image), odd sizes,
 * groups and depthwise; the filter gradients of the same cases */
START_TEST(conv_data_grad) {
  g_no_wino = true;
  static const ConvCaseN cs[] = {
      {{5, 7, 9, 11, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 2},    /* 1x1 pad 1: padding -1 */
      {{3, 4, 7, 6, 3, 3, 1, 1, 3, 3, 1, 1, 1}, 2},     /* 3x3 pad 3: padding -1 */
      {{6, 5, 13, 9, 3, 3, 1, 1, 0, 0, 1, 1, 1}, 1},    /* unpadded, one image */
      {{4, 6, 15, 17, 7, 7, 1, 1, 3, 3, 1, 1, 2}, 2},   /* 7x7 pad 3, two groups */
      {{3, 5, 11, 10, 7, 7, 1, 1, 0, 0, 1, 1, 1}, 3},   /* 7x7 unpadded, three images */
      {{8, 8, 23, 19, 3, 3, 1, 1, 1, 1, 1, 1, 8}, 1},   /* depthwise, 437 positions */
      {{12, 12, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, 12}, 3},  /* depthwise, batched */
      {{24, 16, 17, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 1}, /* K = 144 over 272 positions */
      {{7, 9, 5, 5, 3, 3, 1, 1, 1, 1, 2, 1, 1}, 4},     /* dilated rows only */
      {{6, 4, 9, 14, 3, 5, 1, 1, 1, 2, 1, 1, 2}, 2},    /* 3x5 */
      /* 25 positions, three images, two groups: the filter gradient's images share one
       * GEMM per group (K = 75) */
      {{4, 6, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 2}, 3},
      /* col2im by dx rows over the two threads: LeNet's conv2 (the batch's GEMM, 6 x 14
       * rows of 8 images), stride 2 in both directions and along the rows only (phases),
       * a row wider than two vectors; and 9x9 taps, which keep the scalar col2im */
      {{6, 16, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1, 1}, 8},
      {{5, 6, 13, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1}, 4},
      {{3, 4, 12, 9, 3, 4, 2, 1, 1, 2, 1, 1, 1}, 3},
      {{3, 4, 6, 37, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 2},
      {{2, 3, 12, 12, 9, 9, 1, 1, 2, 2, 1, 1, 1}, 2},
  };
  check_conv_cases("conv data-gradient", cs, sizeof cs / sizeof *cs);
  /* two grouped convolutions whose batched forward GEMMs (images of 36 positions) agree in
   * every per-group dim but the image stride (2 and 4 groups of 2 channels): each needs its
   * own GEMM kernel */
  g_begin("conv_pair");
  conv_case_outputs(&(ConvCase){4, 4, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2}, 2, "a");
  conv_case_outputs(&(ConvCase){8, 8, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 4}, 2, "b");
  check_fwd("two grouped convolutions", F_SYM, MM_RTOL, MM_ATOL);
  g_no_wino = false;
}
END_TEST

/* the depthwise data gradient computed directly (stride 1 and 2: rows and columns in
 * phases, dy read with masked loads): kernels 3 and 5, padding 0 to 2, dilation, widths
 * around the vector length (15, 16, 17, 33), one image and three, odd and even heights,
 * and a stride-3 one, which takes the unfold and col2im */
START_TEST(dw_data_grad) {
  g_no_wino = true;
  static const ConvCaseN cs[] = {
      {{4, 4, 9, 15, 3, 3, 1, 1, 1, 1, 1, 1, 4}, 1},  {{4, 4, 8, 16, 3, 3, 1, 1, 0, 0, 1, 1, 4}, 3},
      {{3, 3, 7, 17, 3, 3, 1, 1, 2, 2, 1, 1, 3}, 1},  {{5, 5, 10, 33, 5, 5, 1, 1, 2, 2, 1, 1, 5}, 3},
      {{4, 4, 9, 17, 5, 5, 1, 1, 0, 0, 1, 1, 4}, 1},  {{4, 4, 6, 16, 5, 5, 1, 1, 1, 1, 1, 1, 4}, 3},
      {{4, 4, 9, 15, 3, 3, 2, 2, 1, 1, 1, 1, 4}, 3},  {{4, 4, 8, 16, 3, 3, 2, 2, 0, 0, 1, 1, 4}, 1},
      {{3, 3, 11, 17, 3, 3, 2, 2, 2, 2, 1, 1, 3}, 3}, {{5, 5, 10, 33, 5, 5, 2, 2, 2, 2, 1, 1, 5}, 1},
      {{4, 4, 12, 16, 5, 5, 2, 2, 1, 1, 1, 1, 4}, 3}, {{4, 4, 13, 33, 5, 5, 2, 2, 0, 0, 1, 1, 4}, 1},
      {{4, 4, 9, 17, 3, 3, 1, 1, 2, 2, 2, 2, 4}, 1},  /* dilated */
      {{4, 4, 11, 33, 3, 3, 2, 2, 1, 2, 2, 2, 4}, 3}, /* dilated, stride 2 */
      {{4, 4, 9, 35, 3, 5, 1, 2, 1, 2, 1, 1, 4}, 1},  /* 3x5, stride 2 along columns only */
      {{4, 4, 13, 17, 3, 3, 2, 1, 1, 1, 1, 1, 4}, 3}, /* stride 2 along rows only */
      {{4, 4, 10, 17, 3, 3, 3, 3, 1, 1, 1, 1, 4}, 2}, /* stride 3: unfold and col2im */
  };
  check_conv_cases("depthwise data-gradient", cs, sizeof cs / sizeof *cs);
  g_no_wino = false;
}
END_TEST

/* a convolution cs of N images with an inference batchnorm (folded into its epilogue as a
 * scale and shift a channel) and relu after it, against the interpreter */
static void check_conv_bn(const ConvCase *cs, int N, const char *what) {
  g_begin("conv_bn");
  int x = IN("x", 4, N, cs->C, cs->H, cs->W);
  int w = PARAM("w", 4, cs->O, cs->C / cs->G, cs->KH, cs->KW);
  int gm = IN("g", 1, cs->O), bt = IN("b", 1, cs->O), rm = IN("rm", 1, cs->O);
  int rv = IN("rv", 1, cs->O);
  IrAttr at = {.kernel = {cs->KH, cs->KW}, .stride = {cs->sh, cs->sw}, .pad = {cs->ph, cs->pw},
               .dilation = {cs->dh, cs->dw}, .groups = cs->G};
  IrAttr bn = {.value = 1e-5};
  int in5[5] = {op2(OP_CONV2D, x, w, &at), gm, bt, rm, rv};
  out("y", op1(OP_RELU, op_h(OP_BATCHNORM, in5, 5, &bn, NULL), NULL));
  /* positive statistics; the conv's output has a mean, so relu keeps part of it */
  check_fwd(what, F_POS, MM_RTOL, MM_ATOL);
}

/* an inference batchnorm after a convolution and relu: the regular im2col path, a 1x1
 * convolution and a depthwise one */
START_TEST(conv_bn_fold) {
  g_no_wino = true;
  static const ConvCase cs[] = {{3, 8, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1},
                                {5, 7, 6, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1},
                                {8, 8, 19, 37, 3, 3, 2, 2, 1, 1, 1, 1, 8}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    char what[64];
    snprintf(what, sizeof what, "conv+batchnorm case %zu", c);
    check_conv_bn(&cs[c], 2, what);
  }
  g_no_wino = false;
}
END_TEST

/* the direct depthwise forward in blocks of output rows from a padded, phase-split buffer
 * (strides 1 and 2) and row by row (a stride of 3, rows too long for the buffer): heights 1
 * to 3 and blocks with a remainder of rows, widths under 16 and not multiples of it, padding 0
 * to 3, 3x3 to 7x7, dilation, one image and three; each plain, with bias + relu (and the
 * gradients of conv_case_outputs), and with a folded batchnorm + relu */
START_TEST(dw_forward) {
  g_no_wino = true;
  static const ConvCaseN cs[] = {
      {{3, 3, 1, 5, 3, 3, 1, 1, 1, 1, 1, 1, 3}, 1},     /* one row, 5 wide */
      {{4, 4, 2, 13, 3, 3, 1, 1, 1, 1, 1, 1, 4}, 3},    /* two rows */
      {{4, 4, 3, 16, 3, 3, 1, 1, 0, 0, 1, 1, 4}, 1},    /* three rows unpadded: one output row */
      {{5, 5, 7, 31, 3, 3, 1, 1, 1, 1, 1, 1, 5}, 3},    /* 7 rows: a block and 3 */
      {{4, 4, 10, 40, 3, 3, 1, 1, 0, 0, 1, 1, 4}, 1},   /* 8 rows: two blocks */
      {{2, 2, 6, 300, 3, 3, 1, 1, 1, 1, 1, 1, 2}, 1},   /* inside chunks in a loop */
      {{3, 3, 9, 19, 7, 7, 1, 1, 3, 3, 1, 1, 3}, 3},    /* 7x7 */
      {{4, 4, 3, 7, 3, 3, 2, 2, 1, 1, 1, 1, 4}, 3},     /* stride 2 */
      {{4, 4, 2, 20, 3, 3, 2, 2, 1, 1, 1, 1, 4}, 1},    /* stride 2, one output row */
      {{6, 6, 13, 45, 3, 3, 2, 2, 1, 1, 1, 1, 6}, 3},   /* 7 rows of 23 */
      {{4, 4, 12, 33, 3, 3, 2, 2, 0, 0, 1, 1, 4}, 1},   /* unpadded: 5 rows of 16 */
      {{2, 2, 9, 150, 3, 3, 2, 2, 1, 1, 1, 1, 2}, 1},   /* inside chunks in a loop */
      {{3, 3, 9, 50, 5, 5, 2, 2, 2, 2, 1, 1, 3}, 1},    /* 5x5 */
      {{4, 4, 11, 40, 3, 3, 2, 2, 1, 1, 2, 2, 4}, 1},   /* dilated */
      {{4, 4, 9, 35, 3, 5, 1, 2, 1, 2, 1, 1, 4}, 3},    /* 3x5, stride 2 along columns only */
      {{4, 4, 13, 17, 3, 3, 2, 1, 1, 1, 1, 1, 4}, 1},   /* stride 2 along rows only */
      {{4, 4, 10, 17, 3, 3, 3, 3, 1, 1, 1, 1, 4}, 1},   /* stride 3: row by row */
      {{2, 2, 5, 3000, 3, 3, 2, 2, 1, 1, 1, 1, 2}, 1},  /* too long for the buffer */
  };
  check_conv_cases("depthwise forward", cs, sizeof cs / sizeof *cs);
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    char what[64];
    snprintf(what, sizeof what, "depthwise+batchnorm case %zu", c);
    check_conv_bn(&cs[c].c, cs[c].N, what);
  }
  g_no_wino = false;
}
END_TEST

/* an ungrouped convolution of N images, C -> O channels, KH x KH, stride s, padding p */
typedef struct EpiConv {
  int N, C, O, H, W, KH, s, p;
} EpiConv;

/* a graph with the convolution c three times as outputs (their nodes in conv[]): plain
 * (y), with bias + relu (yb) and with an inference batchnorm + relu (ybn) */
static void conv_epilogue_outputs(const EpiConv *c, int conv[3]) {
  g_begin("conv_form");
  int x = IN("x", 4, c->N, c->C, c->H, c->W);
  int w = PARAM("w", 4, c->O, c->C, c->KH, c->KH);
  int bias = PARAM("b", 3, c->O, 1, 1);
  int gm = PARAM("g", 1, c->O), bt = PARAM("bt", 1, c->O), rm = PARAM("rm", 1, c->O);
  int rv = PARAM("rv", 1, c->O);
  IrAttr at = {.kernel = {c->KH, c->KH}, .stride = {c->s, c->s}, .pad = {c->p, c->p},
               .dilation = {1, 1}, .groups = 1};
  IrAttr bn = {.value = 1e-5};
  for (int i = 0; i < 3; i++) conv[i] = op2(OP_CONV2D, x, w, &at);
  out("y", conv[0]);
  out("yb", op1(OP_RELU, op2(OP_ADD, conv[1], bias, NULL), NULL));
  int in5[5] = {conv[2], gm, bt, rm, rv};
  out("ybn", op1(OP_RELU, op_h(OP_BATCHNORM, in5, 5, &bn, NULL), NULL));
}

static bool chose_few(const TileDecision *d) { return d->conv_few; }
static bool chose_t(const TileDecision *d) { return d->conv_t; }

/* each of the n cases cs (conv_epilogue_outputs, inputs filled with f) against the
 * interpreter, Winograd off; where the host's vectors have 8 lanes or more, the tiles pass
 * must have taken the form `chose` for each convolution, so that the test exercises it */
static void check_conv_form(const char *form, const EpiConv *cs, size_t n, Fill f,
                            bool (*chose)(const TileDecision *)) {
  HwTarget hw;
  char err[256];
  bool have = hw_resolve("host", &hw, err, sizeof err) == 0 && hw.vector_bits >= 256;
  g_no_wino = true; /* the 3x3 stride-1 cases would run Winograd in an inference plan */
  for (size_t c = 0; c < n; c++) {
    int conv[3];
    conv_epilogue_outputs(&cs[c], conv);
    if (have) {
      TilePlan *tp = pass_tiles(G, &hw, NULL);
      for (int i = 0; i < 3; i++)
        ck_assert_msg(chose(&tp->tiles[conv[i]]), "%s case %zu: the tiles pass took another form (%s)",
                      form, c, tp->tiles[conv[i]].reason);
    }
    char what[64];
    snprintf(what, sizeof what, "%s case %zu", form, c);
    check_fwd(what, f, MM_RTOL, MM_ATOL);
  }
  g_no_wino = false;
  if (!have) fprintf(stderr, "%s: host vectors under 8 lanes, the choice is not checked\n", form);
}

/* Forward convolutions of few input channels computed directly (the tiles' conv_few: output
 * row vectors, output channels in register blocks of 16, the input rows in a padded,
 * phase-split buffer): 1 and 3 channels, 3x3, 5x5 and 7x7, strides 1 and 2, padding 0 to 3,
 * output channels under, at and over a block (6, 16, 20, 64), widths under a vector and
 * several vectors, one image and three; each plain, with bias + relu and with a folded
 * batchnorm + relu. The host's tiles must choose the direct form for these shapes where its
 * vectors have 8 lanes or more, so that the test exercises it. */
START_TEST(conv_few) {
  static const EpiConv cs[] = {
      {1, 3, 32, 17, 21, 3, 2, 1},  /* MobileNetV2's stem, odd sizes */
      {3, 3, 20, 15, 37, 3, 1, 1},  /* a block and 4 channels */
      {1, 3, 64, 23, 61, 7, 2, 3},  /* ResNet's stem */
      {2, 1, 6, 28, 28, 5, 1, 0},   /* LeNet's conv1 */
      {3, 1, 16, 21, 29, 5, 2, 2},  /* one vector a row, stride 2 */
      {1, 3, 16, 12, 70, 3, 1, 1},  /* rows of 5 vectors */
      {1, 3, 24, 20, 150, 3, 2, 0}, /* unpadded, rows of 74 at stride 2 */
  };
  check_conv_form("conv_few", cs, sizeof cs / sizeof *cs, F_SYM, chose_few);
}
END_TEST

static bool chose_direct_b(const TileDecision *d) { return d->direct_b && !d->conv_few && !d->conv_t; }

/* Pointwise convolutions whose image the GEMM's micro-kernel reads in place (the tiles'
 * direct_b: no packing of B but for a block's last, partial panel, KC capped to L1): more
 * input channels than the few-channel form takes, so that K runs in 1 to 3 KC blocks;
 * positions a multiple of the panel and not; 7 to 256 output channels (under, across and at
 * the register tile's edge); one image to three; each plain, with bias + relu and with a
 * folded batchnorm + relu. The host's tiles must choose the form where its vectors have 8
 * lanes or more. The tolerance's absolute part scales with the largest output. */
START_TEST(conv_pointwise) {
  static const EpiConv cs[] = {
      {2, 200, 24, 17, 19, 1, 1, 0}, /* 323 positions: a partial panel; K in 2 blocks */
      {1, 170, 7, 16, 20, 1, 1, 0},  /* 320: whole panels; fewer channels than the tile */
      {3, 300, 64, 18, 18, 1, 1, 0}, /* three images */
      {2, 161, 256, 16, 17, 1, 1, 0}, /* the most output channels it takes */
      {1, 400, 40, 23, 23, 1, 1, 0}, /* K in 3 blocks */
      {3, 200, 40, 12, 12, 1, 1, 0}, /* 144 positions: a GEMM an image, not the batch's one */
  };
  g_atol_scaled = true; /* sums of 161 to 400 products: the absolute error scales with them */
  check_conv_form("conv_pointwise", cs, sizeof cs / sizeof *cs, F_SYM, chose_direct_b);
  g_atol_scaled = false;
}
END_TEST

/* the data gradients of pointwise convolutions read dy in place too (the tiles' direct_b;
 * dx = wᵀ·dy needs no col2im): up to 256 input channels, dy's channels in 1 or 2 KC blocks,
 * a partial panel of positions and none, one image and three; with the forwards and filter
 * gradients of the same convolutions (conv_case_outputs). The host's tiles must choose the
 * form for every data gradient where its vectors have 8 lanes or more. */
/* case c's data gradients in G: dy read in place (direct_b) where the host's vectors have 8
 * lanes or more */
static void pw_dx_direct(size_t c) {
  HwTarget hw;
  char err[256];
  if (hw_resolve("host", &hw, err, sizeof err) != 0 || hw.vector_bits < 256) return;
  TilePlan *tp = pass_tiles(G, &hw, NULL);
  int nbwd = 0;
  for (int i = 0; i < G->nnodes; i++) {
    if (G->nodes[i].op != OP_CONV2D_BWD_DATA) continue;
    nbwd++;
    ck_assert_msg(tp->tiles[i].direct_b, "case %zu: dy packed (%s)", c, tp->tiles[i].reason);
  }
  ck_assert(nbwd > 0);
}

START_TEST(conv_pointwise_data_grad) {
  static const ConvCaseN cs[] = {
      {{200, 24, 17, 19, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 2},
      {{24, 200, 16, 20, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 1},
      {{64, 96, 18, 18, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 3},
  };
  g_atol_scaled = true; /* sums of 24 to 200 products */
  check_conv_cases_plan("pointwise data gradient", cs, sizeof cs / sizeof *cs, pw_dx_direct);
  g_atol_scaled = false;
}
END_TEST

/* Forward convolutions of few output positions computed transposed (the tiles pass's conv_t:
 * output channels in the lanes, yᵀ written back to NCHW with the epilogue): 1, 7, 49, 50 and
 * 196 positions, channel counts that are not multiples of 16, one image and two or three
 * (one GEMM for the batch), gathered 3x3 (stride 1 and 2) and 1x1 (one image: read as Aᵀ); each with no
 * epilogue, bias + relu and a folded batchnorm + relu. The filter is packed once (an
 * inference plan). The host's tiles must take the transposed form for these shapes where
 * its vectors have 8 lanes or more, so that the test exercises it. */
START_TEST(conv_transposed) {
  static const EpiConv cs[] = {
      {3, 20, 60, 1, 1, 3, 1, 1},    /* 1 position an image */
      {1, 24, 30, 1, 7, 3, 1, 1},    /* 7 */
      {1, 64, 190, 7, 7, 3, 1, 1},   /* 49, rows of the image contiguous */
      {3, 64, 190, 6, 6, 3, 1, 1},   /* 36 x 3 images in one GEMM */
      {1, 200, 190, 5, 10, 1, 1, 0}, /* 50, 1x1: the image as Aᵀ */
      {2, 300, 190, 5, 5, 1, 1, 0},  /* 25 x 2, 1x1 gathered */
      {1, 64, 190, 14, 14, 3, 1, 1}, /* 196 */
      {1, 64, 190, 28, 28, 3, 2, 1}, /* 196 at stride 2: gathers */
  };
  check_conv_form("conv_t", cs, sizeof cs / sizeof *cs, F_POS, chose_t);
}
END_TEST

/* filter gradients of few output channels computed directly (TileDecision.wgrad_ob,
 * llvm_ops.c wgrad_body), against the interpreter: lenet's two layers (1 -> 6 channels 5x5
 * padded 2, 6 -> 16 unpadded), odd sizes, stride 2 down the rows, dilation, two groups, 7
 * output channels (a prime: one pass of 7 at 3x3, one channel a pass at 5x5), rows longer
 * than a vector, batches of 1 and 3. Where the host has vectors of 8 lanes or more, the
 * tiles pass must choose the direct form for each. The thread pool has two threads, and
 * each case runs twice for identical bits. */
START_TEST(conv_wgrad_direct) {
  static const ConvCaseN cs[] = {
      {{1, 6, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1, 1}, 3},  /* lenet's conv1 */
      {{6, 16, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1, 1}, 1}, /* lenet's conv2 */
      {{3, 7, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 3},
      {{2, 7, 9, 10, 5, 5, 1, 1, 2, 2, 1, 1, 1}, 1},
      {{3, 4, 23, 41, 3, 3, 2, 1, 1, 1, 1, 1, 1}, 3},  /* stride 2 down the rows, rows of 41 */
      {{2, 6, 15, 19, 3, 5, 1, 1, 0, 1, 1, 1, 1}, 3},  /* 3x5, padded along the rows only */
      {{4, 4, 12, 12, 3, 3, 1, 1, 2, 2, 2, 2, 2}, 3},  /* dilated, two groups */
  };
  HwTarget hw;
  char err[256];
  bool have = hw_resolve("host", &hw, err, sizeof err) == 0 && hw.vector_bits >= 256;
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    g_begin("conv_wgrad");
    conv_case_outputs(&cs[c].c, cs[c].N, "");
    if (have) {
      TilePlan *tp = pass_tiles(G, &hw, NULL);
      int dw = tg_find_out(G, "dw");
      ck_assert_msg(tp->tiles[dw].wgrad_ob > 0, "wgrad case %zu: the tiles pass kept the GEMM (%s)",
                    c, tp->tiles[dw].reason);
    }
    char what[64];
    snprintf(what, sizeof what, "direct filter gradient case %zu", c);
    check_fwd(what, F_SYM, MM_RTOL, MM_ATOL);
  }
  if (!have) fprintf(stderr, "conv_wgrad_direct: host vectors under 8 lanes, the choice is not checked\n");
}
END_TEST

/* pointwise filter gradients computed directly (TileDecision.wgrad_cb, llvm_ops.c
 * pw_wgrad_item), against the interpreter: more output channels than input (passes in the
 * output channels' order) and fewer (the input channels' order), positions that end in a
 * partial vector and ones that fill whole vectors, batches of 1 to 3, two groups. Where the
 * host has vectors of 8 lanes or more, the tiles pass must choose the pointwise form for
 * each. Two threads, and each case twice for identical bits. */
START_TEST(conv_wgrad_pointwise) {
  static const ConvCaseN cs[] = {
      {{16, 96, 14, 14, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 3}, /* 196 positions: a partial vector */
      {{48, 8, 7, 9, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 2},    /* 63, input channels outer */
      {{24, 12, 8, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 1},   /* 64: whole vectors only */
      {{16, 24, 5, 7, 1, 1, 1, 1, 0, 0, 1, 1, 2}, 2},   /* two groups */
  };
  HwTarget hw;
  char err[256];
  bool have = hw_resolve("host", &hw, err, sizeof err) == 0 && hw.vector_bits >= 256;
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    g_begin("conv_wgrad_pw");
    conv_case_outputs(&cs[c].c, cs[c].N, "");
    if (have) {
      TilePlan *tp = pass_tiles(G, &hw, NULL);
      int dw = tg_find_out(G, "dw");
      ck_assert_msg(tp->tiles[dw].wgrad_ob > 0 && tp->tiles[dw].wgrad_cb > 0,
                    "pointwise wgrad case %zu: the tiles pass kept the GEMM (%s)", c, tp->tiles[dw].reason);
    }
    char what[64];
    snprintf(what, sizeof what, "pointwise filter gradient case %zu", c);
    check_fwd(what, F_SYM, MM_RTOL, MM_ATOL);
  }
  if (!have) fprintf(stderr, "conv_wgrad_pointwise: host vectors under 8 lanes, the choice is not checked\n");
}
END_TEST

/* max and average pooling of a [2,3,9,8] input, forward and backward, with attributes at
 * (maxpool ignores exclude_pad) and an [OH, OW] output */
static void pool_case(const char *what, IrAttr at, int OH, int OW) {
  g_begin(what);
  int x = IN("x", 4, 2, 3, 9, 8), dy = IN("dy", 4, 2, 3, OH, OW);
  IrAttr mt = at;
  mt.exclude_pad = false;
  out("mp", op1(OP_MAXPOOL, x, &mt));
  out("ap", op1(OP_AVGPOOL, x, &at));
  out("dmp", op2(OP_MAXPOOL_BWD, dy, x, &mt));
  IrType xt = G->nodes[x].type;
  out("dap", op_h(OP_AVGPOOL_BWD, &dy, 1, &at, &xt));
  check_fwd(what, F_SYM, MM_RTOL, MM_ATOL);
}

START_TEST(pooling) {
  struct {
    int k, s, p;
  } cs[] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    IrAttr at = {.kernel = {cs[c].k, cs[c].k}, .stride = {cs[c].s, cs[c].s}, .pad = {cs[c].p, cs[c].p},
                 .dilation = {1, 1}};
    pool_case("pooling", at, (9 + 2 * cs[c].p - cs[c].k) / cs[c].s + 1,
              (8 + 2 * cs[c].p - cs[c].k) / cs[c].s + 1);
  }
  /* ceil_mode: 9x8 with k3 s2 p1 gives 5x5 (floor: 5x4); count_include_pad = false */
  for (int excl = 0; excl < 2; excl++) {
    IrAttr at = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}, .dilation = {1, 1},
                 .ceil_mode = true, .exclude_pad = excl};
    pool_case("pool_modes", at, 5, 5);
  }
}
END_TEST

/* max pooling mt of x[d] (OH x OW windows) and its backward against the interpreter, on
 * value set v: x itself, q = x truncated to {-1, 0, 1} (ties), log(relu(q)) (windows of
 * -inf, ties of 0) or sqrt(q) (NaNs); tolerance tol relative and absolute */
static void maxpool_values_case(const char *what, const IrAttr *mt, const int64_t d[4], int64_t OH,
                                int64_t OW, int v, double tol) {
  g_begin("maxpool_values");
  int x = IN("x", 4, (int)d[0], (int)d[1], (int)d[2], (int)d[3]);
  int dy = IN("dy", 4, (int)d[0], (int)d[1], (int)OH, (int)OW);
  IrType it = ty(DT_I32, 4, d), ft = ty(DT_F32, 4, d);
  int qi = op_h(OP_CAST, &x, 1, NULL, &it), q = op_h(OP_CAST, &qi, 1, NULL, &ft);
  int in = v == 0 ? x : v == 1 ? q : v == 2 ? op1(OP_LOG, op1(OP_RELU, q, NULL), NULL)
                                            : op1(OP_SQRT, q, NULL);
  out("mp", op1(OP_MAXPOOL, in, mt));
  out("dmp", op2(OP_MAXPOOL_BWD, dy, in, mt));
  check_fwd(what, F_SYM, tol, tol);
}

/* 2x2 stride-2 max pooling (its vector path, runtime/rt_kernels.c) forward and backward on
 * values where the rules matter: x itself, q = x truncated to {-1, 0, 1} (ties: the first
 * maximum in window order takes the gradient), log(relu(q)) (windows of -inf: no
 * gradient; ties of 0) and sqrt(q) (NaNs: the first NaN takes it). Rows of 11 windows (one
 * vector and one overlapping it) and an odd row and column left out, rows of 4 and 5
 * windows, batches of 1 and 3; the last case's 384 planes are split over the two threads.
 * All values are exact, so the results must be the interpreter's bits. */
START_TEST(maxpool_2x2) {
  static const int cs[][4] = {{1, 2, 9, 23}, {3, 2, 8, 8}, {3, 128, 10, 10}};
  IrAttr mt = {.kernel = {2, 2}, .stride = {2, 2}, .dilation = {1, 1}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
    for (int v = 0; v < 4; v++) {
      int64_t d[4] = {cs[c][0], cs[c][1], cs[c][2], cs[c][3]};
      char what[64];
      snprintf(what, sizeof what, "maxpool_2x2 case %zu values %d", c, v);
      maxpool_values_case(what, &mt, d, d[2] / 2, d[3] / 2, v, 0);
    }
}
END_TEST

/* 3x3 stride-2 max pooling (its vector path, runtime/rt_kernels.c) forward and backward on
 * the value sets of maxpool_2x2 (ties, windows of -inf, NaNs): padding 1 (ResNet's) and 0,
 * rows of 4, 12 and 17 windows (under a vector, a vector and a part, two and a part), a
 * ceil_mode window past the row's and the plane's end, batches of 1 to 3; the last case's
 * 384 planes are split over the two threads. An input shared by windows sums their dy in
 * another order than the interpreter's: a relative 1e-6. */
START_TEST(maxpool_3x3s2) {
  static const int cs[][6] = {{1, 2, 9, 23, 1, 0}, {3, 2, 8, 8, 1, 0}, {2, 3, 11, 35, 0, 0},
                              {1, 2, 9, 8, 1, 1}, {3, 128, 10, 10, 1, 0}};
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
    for (int v = 0; v < 4; v++) {
      int64_t d[4] = {cs[c][0], cs[c][1], cs[c][2], cs[c][3]};
      int p = cs[c][4], ceil = cs[c][5];
      IrAttr mt = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {p, p}, .dilation = {1, 1},
                   .ceil_mode = ceil};
      char what[64];
      snprintf(what, sizeof what, "maxpool_3x3s2 case %zu values %d", c, v);
      maxpool_values_case(what, &mt, d, (d[2] + 2 * p - 3 + ceil) / 2 + 1,
                          (d[3] + 2 * p - 3 + ceil) / 2 + 1, v, 1e-6);
    }
}
END_TEST

/* ---- normalization, dropout, embedding, losses ----------------------------------------- */

START_TEST(normalization) {
  for (int rank = 2; rank <= 4; rank += 2) {
    for (int train = 0; train < 2; train++) {
      g_begin("bn");
      int x = rank == 2 ? IN("x", 2, 6, 5) : IN("x", 4, 3, 5, 4, 3);
      int dy = rank == 2 ? IN("dy", 2, 6, 5) : IN("dy", 4, 3, 5, 4, 3);
      int gm = IN("g", 1, 5), bt = IN("b", 1, 5), rm = IN("rm", 1, 5);
      int rv = leaf(OP_INPUT, "rv", DT_F32, 1, 5);
      IrAttr at = {.value = 1e-5, .train = train};
      int in5[5] = {x, gm, bt, rm, rv};
      out("y", op_h(OP_BATCHNORM, in5, 5, &at, NULL));
      out("dx", op3(OP_BATCHNORM_BWD, dy, x, gm, &at));
      IrType ct = G->nodes[gm].type;
      int in2[2] = {dy, x};
      out("dg", op_h(OP_BN_DGAMMA, in2, 2, &at, &ct));
      if (train) { /* computed by the batchnorm's kernels (CgTarget.bn_fused) */
        IrAttr ax = {.naxes = rank - 1, .axes = {0, 2, 3}};
        out("db", op1(OP_SUM, dy, &ax));
        out("mean", op1(OP_MEAN, x, &ax));
        ax.correction = 1;
        out("var", op1(OP_VAR, x, &ax));
      }
      check_fwd("batchnorm", F_POS, MM_RTOL, MM_ATOL);
    }
  }
  for (int na = 1; na <= 2; na++) {
    g_begin("ln");
    int x = IN("x", 3, 3, 4, 6), dy = IN("dy", 3, 3, 4, 6);
    int gm = na == 1 ? IN("g", 1, 6) : IN("g", 2, 4, 6), bt = na == 1 ? IN("b", 1, 6) : IN("b", 2, 4, 6);
    IrAttr at = {.value = 1e-5, .naxes = na};
    out("y", op3(OP_LAYERNORM, x, gm, bt, &at));
    out("dx", op3(OP_LAYERNORM_BWD, dy, x, gm, &at));
    IrType gt = G->nodes[gm].type;
    int in2[2] = {dy, x};
    out("dg", op_h(OP_LN_DGAMMA, in2, 2, &at, &gt));
    check_fwd("layernorm", F_SYM, MM_RTOL, MM_ATOL);
  }
}
END_TEST

START_TEST(dropout) {
  for (int train = 0; train < 2; train++) {
    g_begin("dropout");
    int x = IN("x", 2, 7, 33), dy = IN("dy", 2, 7, 33);
    IrAttr at = {.value = 0.3, .seed = 77, .train = train};
    out("y", op1(OP_DROPOUT, x, &at));
    out("dx", op1(OP_DROPOUT_BWD, dy, &at));
    check_fwd("dropout", F_SYM, EW_RTOL, EW_ATOL);
  }
}
END_TEST

START_TEST(embedding_and_losses) {
  g_begin("emb");
  int tab = IN("tab", 2, 11, 6);
  int idx = leaf(OP_INPUT, "idx", DT_I32, 2, 3, 5);
  int dy = IN("dy", 3, 3, 5, 6);
  out("e", op2(OP_EMBEDDING, tab, idx, NULL));
  IrType tt = G->nodes[tab].type;
  int in2[2] = {dy, idx};
  out("de", op_h(OP_EMBEDDING_BWD, in2, 2, NULL, &tt));
  check_fwd("embedding", (Fill){-2, 2, 11, false}, EW_RTOL, EW_ATOL);

  g_begin("loss");
  int lg = IN("logits", 2, 9, 7), dl = IN("dl", 0);
  int lab = leaf(OP_INPUT, "label", DT_I32, 1, 9);
  int a = IN("a", 2, 9, 7);
  out("ce", op2(OP_CROSS_ENTROPY, lg, lab, NULL));
  out("dce", op3(OP_CE_BWD, dl, lg, lab, NULL));
  out("mse", op2(OP_MSE, lg, a, NULL));
  /* label smoothing and an ignored label value (random labels in [0, 7) hit it) */
  IrAttr sm = {.value = 0.1, .ignore = true, .ignore_index = 2};
  out("ce_s", op2(OP_CROSS_ENTROPY, lg, lab, &sm));
  out("dce_s", op3(OP_CE_BWD, dl, lg, lab, &sm));
  check_fwd("losses", (Fill){-3, 3, 7, false}, MM_RTOL, MM_ATOL);
}
END_TEST

/* ---- ASSIGN: in place, and deferred when the parameter is read afterwards ------------- */

START_TEST(assign_inplace_and_deferred) {
  g_begin("assign");
  int p = PARAM("p", 2, 4, 5), q = PARAM("q", 2, 5, 3), x = IN("x", 2, 4, 5), z = IN("z", 2, 3, 4);
  IrType pt = G->nodes[p].type, qt = G->nodes[q].type;
  int in_p[2] = {p, op2(OP_ADD, p, x, NULL)};
  op_h(OP_ASSIGN, in_p, 2, NULL, &pt); /* p is read by nobody later: in place */
  int in_q[2] = {q, op1(OP_NEG, q, NULL)};
  op_h(OP_ASSIGN, in_q, 2, NULL, &qt); /* q is read by the matmul below: deferred */
  out("y", op2(OP_MATMUL, z, op2(OP_MATMUL, p, q, NULL), NULL));
  /* a forward graph has no training step; compare the updated params via a train-less
   * step: the forward entry runs the ASSIGNs */
  Diag *d = diag_new(stderr);
  CgModel *m = llvm_model_emit(G, NULL, NULL, NULL, d);
  ck_assert_ptr_nonnull(m);
  const RtModelDesc *desc = llvm_model_jit(m, d);
  ck_assert_msg(desc != NULL, "JIT failed (diagnostic above)");
  char err[256];
  char *params = alloc64(desc->params_bytes), *io = alloc64(desc->io_bytes),
       *arena = alloc64(desc->arena_bytes_forward);
  InterpOptions o = {.round_storage = true};
  Interp *I = interp_new(G, &o);
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    if (ti->kind == RT_KIND_OUTPUT) continue;
    char *base = (ti->kind == RT_KIND_INPUT ? io : params) + ti->offset;
    int64_t n = numel_of(ti);
    double v[64];
    for (int64_t i = 0; i < n; i++) ((float *)base)[i] = (float)(v[i] = urand() - 0.5);
    interp_set(I, tg_find_leaf(G, ti->name), v, n);
  }
  ck_assert_int_eq(interp_run(I, err, sizeof err), 0);
  RtModelBufs b = {params, io, arena, get_pool(), 0, 0, NULL, NULL};
  desc->forward(&b);
  double worst = 0;
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    if (ti->kind == RT_KIND_INPUT) continue;
    int node = ti->kind == RT_KIND_OUTPUT ? tg_find_out(G, ti->name) : tg_find_leaf(G, ti->name);
    int64_t n;
    const double *ref = interp_value(I, node, &n);
    double w = compare("assign", ti->name, (float *)((ti->kind == RT_KIND_OUTPUT ? io : params) + ti->offset), ref, n, MM_RTOL, MM_ATOL);
    if (w > worst) worst = w;
  }
  ck_assert_msg(worst <= 1, "assign: worst ratio %g", worst);
  interp_free(I);
  free(params);
  free(io);
  free(arena);
  llvm_model_free(m);
  diag_free(d);
  g_end();
}
END_TEST

/* ---- training step of a small hand-built network, per optimizer ----------------------- */

START_TEST(train_small_net) {
  OptKind opts[] = {OPT_SGD, OPT_SGD, OPT_ADAM, OPT_ADAMW};
  for (int o = 0; o < 4; o++) {
    IrTrain t = {.model = "net", .minimize = "loss", .opt = opts[o], .lr = 0.05,
                 .momentum = o == 1 ? 0.9 : 0, .nesterov = o == 1, .weight_decay = o >= 2 ? 0.01 : 0,
                 .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
    IrGraph *tg = small_net(8, 12, 16, 5, &t);
    run_case("small net train step", G, tg, &t, (Fill){-1, 1, 5, false}, 1e-3, 1e-4);
    run_case("small net forward", G, NULL, NULL, (Fill){-1, 1, 5, false}, 1e-4, 1e-5);
    g_end();
  }
}
END_TEST

/* ---- example models ------------------------------------------------------------------- */

/* Deep models with batchnorm over a few values per channel amplify rounding: perturbing the
 * input by one f32 ulp (1.2e-7 relative) moves the parameter gradients, in the double-precision
 * interpreter, by 5.7e-5 relative for mobilenet_v2 (N=2, S=64) and by 2.9e-3 (worst tensor
 * 3.9e-3) for resnet50 (N=4, S=64). The compiled f32 step rounds at every one of hundreds of
 * ops, so the training steps of these two are compared norm-wise at 5e-2 — a wrong kernel
 * gives errors of order 1, as a wrong kernel in the shallower models below would at 1e-4. */
static const struct {
  const char *file;
  const char *defs[4];
  bool train;
  double train_rtol;
} examples[] = {
    {"linreg.nn", {"N=16", "D=7"}, true, 1e-4},
    {"mlp.nn", {"N=4"}, true, 1e-4},
    {"lenet.nn", {"N=2"}, true, 1e-4},
    {"gpt2_block.nn", {"N=2", "T=8", "H=2", "K=8"}, true, 1e-4},
    {"char_lm.nn", {"N=2", "T=8", "H=2", "K=8"}, true, 1e-4},
    {"inception_a.nn", {"N=1"}, true, 1e-4},
    /* small images (the side S is a dim) keep the interpreter's training step quick; N=2 and
     * S=64 leave the last stage 2x2, so batch statistics see 8 values per channel */
    /* resnet18's step differs by 1e-4 relative on one host and by 1.5e-3 on another (AMD
     * Zen 4, where the tiles pass picks other GEMM blockings, so other summation orders),
     * spread evenly over every tensor: the signature of the batchnorm conditioning above,
     * not of a wrong kernel, whose error is local and of order 1 */
    {"resnet18.nn", {"N=2", "S=64"}, true, 1e-2},
    {"mobilenet_v2.nn", {"N=2", "S=64"}, true, 5e-2},
    {"resnet50.nn", {"N=4", "S=64"}, true, 5e-2},
};

/* examples/FILE compiled with up to 4 -D definitions */
static IrModule *example_module(const char *file, const char *const *defs, Diag *d) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/%s", NNC_SOURCE_DIR, file);
  int nd = 0;
  while (nd < 4 && defs[nd]) nd++;
  FeOptions fo = {.defines = defs, .ndefines = nd};
  IrModule *mod = fe_compile_file(path, &fo, d);
  ck_assert_msg(mod != NULL, "%s does not compile", path);
  return mod;
}

START_TEST(example_models) {
  Diag *d = diag_new(stderr);
  IrModule *mod = example_module(examples[_i].file, examples[_i].defs, d);
  IrGraph *g = mod->graphs[0];
  IrTrain *t = ir_module_find_train(mod, g->name);
  g_normwise = true;
  g_opt_level = 1;
  run_case(examples[_i].file, g, NULL, NULL, (Fill){-1, 1, 10, true}, 1e-4, 1e-5);
  if (t && examples[_i].train) {
    TrainInfo info;
    IrGraph *tg = pass_train_graph(g, t, &info, d);
    ck_assert_ptr_nonnull(tg);
    run_case(examples[_i].file, g, tg, t, (Fill){-1, 1, 10, true}, examples[_i].train_rtol,
             1e-5);
  }
  g_normwise = false;
  g_opt_level = 0;
  ir_module_free(mod);
  diag_free(d);
}
END_TEST

/* ---- Winograd F(4,3) --------------------------------------------------------------------- */

/* The Winograd choice is the tiles pass's, from the figures of the `host` target: without
 * `nnc probe`'s host.json (a fresh machine) the built-in estimate models the smallest of
 * these cases just under the implicit GEMM (0.037 vs 0.035 ms), with the probe's figures
 * over it. The winograd and packed tests pin the figures that choice reads (peaks, cache
 * and memory bandwidths, fork/join, packing rates, micro-kernel efficiency) to a probe of
 * the Zen 4 the cases were sized on, keeping the host's vector width and caches, in a
 * host.json under a private XDG_CONFIG_HOME that every plan and build of the test then
 * resolves (a checked fixture: it runs in each test's own process). */
static char g_wino_cfg[64];

/* "$TMPDIR/STEM_XXXXXX" (/tmp when TMPDIR is unset, empty or too long) for mkdtemp/mkstemp */
static void tmp_template(char *buf, size_t n, const char *stem) {
  const char *td = getenv("TMPDIR");
  if (!td || !*td || strlen(td) + strlen(stem) + 9 > n) td = "/tmp";
  snprintf(buf, n, "%s/%s_XXXXXX", td, stem);
}

/* hw as the host's description in a fresh configuration directory (g_wino_cfg, named from
 * tag), which XDG_CONFIG_HOME then points to */
static void host_cfg_write(const HwTarget *hw, const char *tag) {
  char err[256], dir[128], path[160];
  tmp_template(g_wino_cfg, sizeof g_wino_cfg, tag);
  ck_assert_ptr_nonnull(mkdtemp(g_wino_cfg));
  snprintf(dir, sizeof dir, "%s/nnc", g_wino_cfg);
  ck_assert_int_eq(mkdir(dir, 0700), 0);
  snprintf(path, sizeof path, "%s/host.json", dir);
  ck_assert_msg(hw_save_file(hw, path, err, sizeof err) == 0, "%s", err);
  setenv("XDG_CONFIG_HOME", g_wino_cfg, 1);
}

static void wino_host_setup(void) {
  HwTarget hw;
  char err[256];
  ck_assert_msg(hw_resolve("host", &hw, err, sizeof err) == 0, "%s", err);
  hw.peak[HWP_F32] = 233.4e9, hw.peak[HWP_F64] = 116.7e9, hw.peak_f32_1t = 117.0e9;
  hw.mem_bw = 27.1e9, hw.mem_bw_1t = 13.5e9, hw.overhead_s = 0.92e-6;
  hw.cache_bw[0] = 263.5e9, hw.cache_bw[1] = 218.8e9, hw.cache_bw[2] = 220.7e9;
  hw.pack_bw = 34.4e9, hw.pack_strided_bw = 9.4e9, hw.pack_transposed_bw = 32.7e9;
  hw.gemm_ukr_eff = 0.94, hw.softmax_s = 5.99e-9, hw.measured = true;
  host_cfg_write(&hw, "nnc_wino");
}

/* the host's measured figures with a last-level cache of 64 KiB, so that small pointwise
 * convolutions' outputs are past it (the tiles' nt_store) */
static void small_l3_host_setup(void) {
  HwTarget hw;
  char err[256];
  ck_assert_msg(hw_resolve("host", &hw, err, sizeof err) == 0, "%s", err);
  hw.l3_bytes = 64 * 1024;
  host_cfg_write(&hw, "nnc_l3");
}

static void wino_host_teardown(void) {
  char p[160];
  snprintf(p, sizeof p, "%s/nnc/host.json", g_wino_cfg);
  unlink(p);
  snprintf(p, sizeof p, "%s/nnc", g_wino_cfg);
  rmdir(p);
  rmdir(g_wino_cfg);
}

/* the plans of fwd (and of the training graph tg, if any) for the host's CPU target,
 * winograd on or off (--no-winograd) */
static void host_plan_of(CgModelPlan *P, IrGraph *fwd, IrGraph *tg, bool wino, Diag *d) {
  HwTarget hw;
  char err[256];
  ck_assert_msg(hw_resolve("host", &hw, err, sizeof err) == 0, "%s", err);
  CgTarget t;
  llvm_backend_target(&t, 0, &hw);
  t.winograd = wino;
  t.dw_fuse = !g_no_dw_fuse;
  t.dw_strip = g_dw_strip;
  ck_assert_int_eq(cg_model_plan(P, fwd, tg, &t, NULL, NULL, d), 0);
}

/* G's plans for the host's CPU target, winograd on or off (--no-winograd) */
static void host_plan(CgModelPlan *P, bool wino, Diag *d) { host_plan_of(P, G, NULL, wino, d); }

/* the kernels the host's plan of fwd (with tg: the training plan of tg) runs as Winograd
 * F(4,3), with winograd on or off (--no-winograd): forward convolutions (*nf), data
 * gradients (*nd) and filter gradients (*nw, may be NULL); a training plan's forwards and
 * data gradients transform their filters every call */
static void wino_plan_count(IrGraph *fwd, IrGraph *tg, bool on, int *nf, int *nd, int *nw) {
  Diag *d = diag_new(stderr);
  CgModelPlan P;
  host_plan_of(&P, fwd, tg, on, d);
  const CgPlan *p = tg ? &P.pt : &P.pf;
  int w = 0;
  *nf = *nd = 0;
  for (int ki = 0; ki < p->nk; ki++) {
    if (!p->k[ki].wino) continue;
    OpKind op = p->g->nodes[p->k[ki].node].op;
    ck_assert(!tg || op == OP_CONV2D_BWD_FILTER || p->k[ki].wino_step);
    if (op == OP_CONV2D) ++*nf;
    else if (op == OP_CONV2D_BWD_DATA) ++*nd;
    else ++w;
  }
  if (nw) *nw = w;
  cg_model_plan_free(&P);
  diag_free(d);
}

/* the convolutions and data gradients of G that the host's forward plan runs as Winograd */
static int wino_kernels(bool on) {
  int nf, nd;
  int nw;
  wino_plan_count(G, NULL, on, &nf, &nd, &nw);
  return nf + nd + nw;
}

/* F(4,3) in f32 rounds the transformed filter (G·g·Gᵀ), the input tile's transform (Bᵀ·d·B:
 * coefficients up to 5 per direction, with cancellation) and the output transform (Aᵀ·m·A:
 * up to 8 per direction), so its error is relative to the output's magnitude rather than
 * to each element's. Measured over these cases (docs/cpu-convolutions.md): 1.6e-6 to 6.0e-6
 * of the tensor's largest |value| with signed inputs and weights in [-2, 2) (the implicit
 * GEMM: 3e-7 to 6e-7), 3e-7 to 6e-7 with positive ones (the implicit GEMM: 5e-7 to 8e-7).
 * The tolerance, 3e-5 of the largest |value| plus 1e-4 of each element's, leaves 5x
 * headroom and is still far under any indexing or transform error (of order 1 relative). */
#define WINO_ATOL_SCALED 3e-5

/* a 3x3 stride-1 convolution of C to O channels, H x W images, padding pad, N images */
typedef struct WinoCase {
  int C, O, H, W, pad, N;
} WinoCase;

START_TEST(winograd) {
  static const WinoCase cs[] = {
      {20, 24, 16, 16, 1, 1}, /* 4k x 4k */
      {19, 21, 17, 18, 1, 3}, /* 4k+1 x 4k+2, three images */
      {32, 40, 27, 25, 0, 1}, /* unpadded: 25 x 23 outputs (4k+1 x 4k+3) */
      {35, 17, 14, 12, 0, 3}, /* unpadded: 12 x 10 (4k x 4k+2), three images */
      {24, 40, 11, 19, 1, 2}, /* 4k+3 x 4k+3, two tile blocks of 8 across */
      {30, 30, 35, 38, 1, 1}, /* tiles across a vector and a half */
      {16, 24, 45, 46, 1, 2}, /* 144 tiles an image: two rounds of one image */
      /* 2 or 4 tiles a row: several tile rows in a vector (rt_winograd.c wino_in_rows) */
      {12, 20, 14, 13, 1, 3}, /* 4 x 4 tiles, 13 columns, three images */
      {48, 40, 10, 7, 1, 2},  /* 3 x 2 tiles: one partial block of rows an image */
      {48, 36, 10, 10, 0, 3}, /* unpadded 8 x 8: 2 x 2 tiles, three images */
      {64, 56, 22, 6, 1, 2},  /* 6 x 2 tiles: a whole block of 4 rows, then 2; two images */
  };
  g_atol_scaled = true;
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++)
    for (int bn = 0; bn < 2; bn++) { /* plain and bias + relu; folded batchnorm + relu */
      g_begin("wino");
      int x = IN("x", 4, cs[c].N, cs[c].C, cs[c].H, cs[c].W);
      int w = PARAM("w", 4, cs[c].O, cs[c].C, 3, 3);
      IrAttr at = {.kernel = {3, 3}, .stride = {1, 1}, .pad = {cs[c].pad, cs[c].pad},
                   .dilation = {1, 1}, .groups = 1};
      if (!bn) {
        int b = PARAM("b", 3, cs[c].O, 1, 1);
        out("y", op2(OP_CONV2D, x, w, &at));
        out("yb", op1(OP_RELU, op2(OP_ADD, op2(OP_CONV2D, x, w, &at), b, NULL), NULL));
      } else {
        int gm = IN("g", 1, cs[c].O), bt = IN("bt", 1, cs[c].O), rm = IN("rm", 1, cs[c].O);
        int rv = IN("rv", 1, cs[c].O);
        IrAttr bna = {.value = 1e-5};
        int in5[5] = {op2(OP_CONV2D, x, w, &at), gm, bt, rm, rv};
        out("ybn", op1(OP_RELU, op_h(OP_BATCHNORM, in5, 5, &bna, NULL), NULL));
      }
      ck_assert_msg(wino_kernels(true) == 2 - bn, "case %zu: the plan runs its convolutions "
                    "as Winograd F(4,3)", c);
      ck_assert_int_eq(wino_kernels(false), 0);
      char what[64];
      snprintf(what, sizeof what, "winograd case %zu%s", c, bn ? " (batchnorm)" : "");
      /* signed inputs and weights (cancellation); positive statistics for the batchnorm */
      check_fwd(what, bn ? F_POS : F_SYM, MM_RTOL, WINO_ATOL_SCALED);
    }
  g_atol_scaled = false;
}
END_TEST

/* case c of a gradient test: the data gradient dx of x's convolution by a parameter filter
 * from dy, or (filter) its filter gradient dW from x and dy; the host's plan must run it as
 * Winograd (and not with --no-winograd), then it is checked against the interpreter */
static void wino_grad_case(const WinoCase *cs, size_t c, bool filter) {
  g_begin(filter ? "wino_dw" : "wino_dx");
  int oh = cs->H + 2 * cs->pad - 2, ow = cs->W + 2 * cs->pad - 2;
  int x = IN("x", 4, cs->N, cs->C, cs->H, cs->W), w = -1, dy;
  if (!filter) w = PARAM("w", 4, cs->O, cs->C, 3, 3);
  dy = IN("dy", 4, cs->N, cs->O, oh, ow);
  if (filter) w = IN("w", 4, cs->O, cs->C, 3, 3); /* its type only */
  IrAttr at = {.kernel = {3, 3}, .stride = {1, 1}, .pad = {cs->pad, cs->pad},
               .dilation = {1, 1}, .groups = 1};
  IrType t = G->nodes[filter ? w : x].type;
  int in2[2] = {filter ? x : dy, filter ? dy : w};
  out(filter ? "dw" : "dx",
      op_h(filter ? OP_CONV2D_BWD_FILTER : OP_CONV2D_BWD_DATA, in2, 2, &at, &t));
  int nf, nd, nw;
  wino_plan_count(G, NULL, true, &nf, &nd, &nw);
  ck_assert_msg((filter ? nw : nd) == 1, "case %zu: the plan runs the %s gradient as Winograd",
                c, filter ? "filter" : "data");
  ck_assert_int_eq(wino_kernels(false), 0);
  char what[64];
  snprintf(what, sizeof what, "winograd %s gradient case %zu", filter ? "filter" : "data", c);
  check_fwd(what, F_SYM, MM_RTOL, WINO_ATOL_SCALED);
}

/* The data gradient of a 3x3 stride-1 convolution as the Winograd convolution of dy with the
 * filter rotated and its channels swapped, padding 2 - p (transformed on every call): dx
 * against the interpreter with the winograd test's tolerance. Padding 1 and 0 (dx larger
 * than dy), images of 4k to 4k+3 rows and columns, one image and three, channels that are
 * not multiples of 16; the plan must run each as Winograd, and not with --no-winograd. */
START_TEST(winograd_data_grad) {
  static const WinoCase cs[] = {
      {20, 24, 28, 28, 1, 1}, /* 4k x 4k */
      {19, 21, 25, 30, 1, 3}, /* 4k+1 x 4k+2, three images */
      {32, 40, 27, 25, 0, 1}, /* unpadded: dy 25 x 23, dx 27 x 25 (4k+3 x 4k+1) */
      {35, 17, 22, 16, 0, 3}, /* unpadded: dx 22 x 16 (4k+2 x 4k), three images */
      {24, 40, 11, 19, 1, 2}, /* 4k+3 x 4k+3 */
      {16, 24, 45, 46, 1, 2}, /* two rounds of one image */
  };
  g_atol_scaled = true;
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) wino_grad_case(&cs[c], c, false);
  g_atol_scaled = false;
}
END_TEST

/* The filter gradient of a 3x3 stride-1 convolution as Winograd (dW = Gᵀ·[(A·dy·Aᵀ) ⊙
 * (Bᵀ·x·B)]·G summed over the tiles: 36 GEMMs whose depth is the tiles) against the
 * interpreter: padding 1 and 0, dy of 4k to 4k+3 rows and columns (partial tiles read dy's
 * zeros), one image and three, several rounds, channels that are not multiples of 16; the
 * plan must run each as Winograd, and not with --no-winograd. dW sums N·OH·OW products, so
 * its error is relative to its largest value, as the forward's (the tolerance is the
 * winograd test's) */
START_TEST(winograd_filter_grad) {
  static const WinoCase cs[] = {
      {40, 56, 64, 64, 1, 1}, /* 4k x 4k: 256 tiles, one round */
      {36, 44, 49, 50, 1, 3}, /* 4k+1 x 4k+2, three images, three rounds */
      {48, 40, 41, 43, 0, 1}, /* unpadded: dy 39 x 41 (4k+3 x 4k+1) */
      {52, 36, 30, 38, 0, 3}, /* unpadded: dy 28 x 36 (4k x 4k), three images */
      {64, 72, 27, 27, 1, 3}, /* 4k+3 x 4k+3, three images */
      {40, 48, 14, 14, 1, 3}, /* 4 x 4 tiles an image: several tile rows a vector */
  };
  g_atol_scaled = true;
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) wino_grad_case(&cs[c], c, true);
  g_atol_scaled = false;
}
END_TEST

/* three 3x3 stride-1 convolutions, unpadded in the middle (its data gradient pads by 2),
 * images of 4k+3 x 4k+2 and 4k+1 x 4k rows and columns, 12 to 28 channels, batch 3 */
static const char wino_train_net[] =
    "model wtrain {\n"
    "  dim N = 3\n"
    "  input x: f32[N, 12, 19, 30]\n"
    "  input label: i32[N]\n"
    "  c1 = relu(conv2d(x, 24, kernel = 3, pad = 1, name = \"c1\"))\n"
    "  c2 = relu(conv2d(c1, 48, kernel = 3, name = \"c2\"))\n"
    "  c3 = relu(conv2d(c2, 19, kernel = 3, pad = 1, name = \"c3\"))\n"
    "  logits = dense(flatten(global_avgpool(c3)), 10, name = \"fc\")\n"
    "  loss = cross_entropy(logits, label)\n"
    "  output logits\n"
    "}\n"
    "train wtrain {\n"
    "  minimize loss\n"
    "  optimizer sgd(lr = 0.05, momentum = 0.9)\n"
    "}\n";

/* The interpreter's training step of tg from the tensors as they are now */
static Interp *wino_interp_step(IrGraph *tg, const RtModelDesc *desc, const char *params,
                                const char *io) {
  InterpOptions o = {.round_storage = true, .seed = 1234, .step = 3};
  Interp *I = interp_new(tg, &o);
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    if (ti->kind == RT_KIND_OUTPUT || ti->kind == RT_KIND_LOSS) continue;
    const char *base = (ti->kind == RT_KIND_INPUT ? io : params) + ti->offset;
    int64_t n = numel_of(ti);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
      v[i] = ti->dtype == DT_I32 ? ((const int32_t *)base)[i] : ((const float *)base)[i];
    ck_assert_int_eq(interp_set(I, tg_find_leaf(tg, ti->name), v, n), 0);
    free(v);
  }
  char err[256];
  ck_assert_msg(interp_run(I, err, sizeof err) == 0, "interpreter: %s", err);
  return I;
}

/* each parameter's change in the step (after - before) against the interpreter's, relative
 * to the largest change (g_atol_scaled): the gradients are what Winograd computes */
static double wino_param_deltas(IrGraph *tg, const RtModelDesc *desc, Interp *I, const char *before,
                                const char *after, int step) {
  double worst = 0;
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    if (ti->kind != RT_KIND_PARAM) continue;
    int64_t n;
    const double *ref = interp_value(I, tg_find_leaf(tg, ti->name), &n);
    ck_assert_int_eq(n, numel_of(ti));
    const float *b = (const float *)(before + ti->offset), *a = (const float *)(after + ti->offset);
    float *got = malloc((size_t)n * sizeof *got);
    double *want = malloc((size_t)n * sizeof *want);
    for (int64_t i = 0; i < n; i++) got[i] = (float)((double)a[i] - b[i]), want[i] = ref[i] - b[i];
    char what[64];
    snprintf(what, sizeof what, "winograd training step %d", step);
    double w = compare(what, ti->name, got, want, n, MM_RTOL, WINO_ATOL_SCALED);
    if (w > worst) worst = w;
    free(got);
    free(want);
  }
  return worst;
}

/* A training step whose 3x3 stride-1 forwards and data gradients run as Winograd F(4,3)
 * (the filters transformed every step, straight into the GEMM's panels), and some of its
 * filter gradients (the tiles pass's choice on the host: at least one; c2's, 24 -> 48
 * channels, modeled 0.246 ms as Winograd against 0.318 ms direct with the AVX-512 figures of
 * a Zen 4 host, a margin no host's figures are expected to reverse), against the
 * interpreter, for two steps in a row: each step's parameter changes must be the
 * interpreter's from the parameters the step started from, so a transform left from the
 * step before fails the second (its panels live in scratch, which other kernels reuse).
 * Weights in [-1, 1), lr 0.05 with momentum: a step changes the filters by up to 0.1-0.7.
 * Measured: up to 9.5e-7 of the largest change (the tolerance is the winograd test's). */
START_TEST(winograd_train) {
  Diag *d = diag_new(stderr);
  FeOptions fo = {0};
  IrModule *mod = fe_compile_string("wtrain.nn", wino_train_net, sizeof wino_train_net - 1, &fo, d);
  ck_assert_ptr_nonnull(mod);
  IrGraph *g = mod->graphs[0];
  const IrTrain *t = ir_module_find_train(mod, g->name);
  TrainInfo info;
  IrGraph *tg = pass_train_graph(g, t, &info, d);
  ck_assert_ptr_nonnull(tg);
  int nf, nd;
  int nw;
  wino_plan_count(g, tg, true, &nf, &nd, &nw);
  ck_assert_msg(nf == 3 && nd == 2 && nw >= 1,
                "the training plan runs %d forwards, %d data gradients and %d filter gradients "
                "as Winograd (3, 2 and at least 1 expected)", nf, nd, nw);
  wino_plan_count(g, tg, false, &nf, &nd, &nw);
  ck_assert_int_eq(nf + nd + nw, 0);
  CgModel *m = llvm_model_emit(g, tg, t, NULL, d);
  ck_assert_ptr_nonnull(m);
  const RtModelDesc *desc = llvm_model_jit(m, d);
  ck_assert_ptr_nonnull(desc);
  char *params = alloc64(desc->params_bytes), *io = alloc64(desc->io_bytes);
  char *arena = alloc64(desc->arena_bytes_train), *before = alloc64(desc->params_bytes);
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    if (ti->kind == RT_KIND_OUTPUT || ti->kind == RT_KIND_LOSS) continue;
    char *base = (ti->kind == RT_KIND_INPUT ? io : params) + ti->offset;
    for (int64_t i = 0; i < numel_of(ti); i++) {
      if (ti->dtype == DT_I32) ((int32_t *)base)[i] = (int32_t)(urand() * 10);
      else ((float *)base)[i] = ti->kind == RT_KIND_OPTSTATE ? 0 : (float)(2 * urand() - 1);
    }
  }
  g_atol_scaled = true;
  for (int s = 0; s < 2; s++) {
    Interp *I = wino_interp_step(tg, desc, params, io);
    memcpy(before, params, (size_t)desc->params_bytes);
    RtModelBufs b = {params, io, arena, get_pool(), 3, 1234, NULL, NULL};
    desc->train_step(&b);
    double w = wino_param_deltas(tg, desc, I, before, params, s + 1);
    ck_assert_msg(w <= 1, "step %d: the parameters' changes differ from the interpreter's "
                  "(worst ratio %.3g)", s + 1, w);
    interp_free(I);
  }
  g_atol_scaled = false;
  free(before);
  free(arena);
  free(io);
  free(params);
  llvm_model_free(m);
  ir_module_free(mod);
  diag_free(d);
}
END_TEST

/* ---- weights packed once per program ---------------------------------------------------- */

/* the forward outputs of context c (at ptr[], its tensors' storage, read without telling the
 * context) against the interpreter's at the parameters the context holds now; *stale: the
 * worst ratio of the outputs `old` (a previous call's) against that reference */
static double packed_fwd_check(RtCtx *c, IrGraph *g, void *const *ptr, float *old,
                               double *stale, double atol) {
  const RtModelDesc *d = rt_ctx_desc(c);
  ck_assert_int_eq(rt_ctx_forward(c), 0);
  InterpOptions o = {.round_storage = true};
  Interp *I = interp_new(g, &o);
  for (int j = 0; j < d->ntensors; j++) {
    const RtTensorInfo *t = &d->tensors[j];
    int node = t->kind <= RT_KIND_INPUT ? tg_find_leaf(g, t->name) : -1;
    if (node < 0 || t->kind == RT_KIND_OPTSTATE) continue;
    int64_t n = numel_of(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
      v[i] = t->dtype == DT_I32 ? ((const int32_t *)ptr[j])[i] : ((const float *)ptr[j])[i];
    ck_assert_int_eq(interp_set(I, node, v, n), 0);
    free(v);
  }
  char err[256];
  ck_assert_msg(interp_run(I, err, sizeof err) == 0, "interpreter: %s", err);
  double worst = 0;
  *stale = INFINITY;
  for (int j = 0; j < d->ntensors; j++) {
    const RtTensorInfo *t = &d->tensors[j];
    if (t->kind != RT_KIND_OUTPUT) continue;
    int64_t n;
    const double *ref = interp_value(I, tg_find_out(g, t->name), &n);
    double w = compare("packed weights", t->name, ptr[j], ref, n, MM_RTOL, atol);
    if (w > worst) worst = w;
    if (old) *stale = compare("(stale outputs)", t->name, old, ref, n, MM_RTOL, atol);
    if (old) memcpy(old, ptr[j], (size_t)t->nbytes);
  }
  interp_free(I);
  return worst;
}

/* two 3x3 stride-1 convolutions the host's plan runs as Winograd F(4,3): their transformed
 * filters are packed once like every other packed weight */
static const char wino_net[] =
    "model wnet {\n"
    "  dim N = 4\n"
    "  input x: f32[N, 8, 16, 16]\n"
    "  input label: i32[N]\n"
    "  conv1 = conv2d(x, 24, kernel = 3, pad = 1)\n"
    "  conv2 = conv2d(relu(conv1), 32, kernel = 3, pad = 1)\n"
    "  logits = dense(flatten(relu(conv2)), 10, name = \"fc\")\n"
    "  loss = cross_entropy(logits, label)\n"
    "  output logits\n"
    "}\n"
    "train wnet {\n"
    "  minimize loss\n"
    "  optimizer sgd(lr = 0.01, momentum = 0.9)\n"
    "}\n";

/* two stride-2 convolutions of K = 216 and 288: the implicit GEMM (not Winograd, not the
 * direct kernel of few input channels, whatever the host) */
static const char gemm_net[] =
    "model gnet {\n"
    "  dim N = 4\n"
    "  input x: f32[N, 24, 16, 16]\n"
    "  input label: i32[N]\n"
    "  conv1 = conv2d(x, 32, kernel = 3, stride = 2, pad = 1)\n"
    "  conv2 = conv2d(relu(conv1), 16, kernel = 3, stride = 2, pad = 1)\n"
    "  logits = dense(flatten(relu(conv2)), 10, name = \"fc\")\n"
    "  loss = cross_entropy(logits, label)\n"
    "  output logits\n"
    "}\n"
    "train gnet {\n"
    "  minimize loss\n"
    "  optimizer sgd(lr = 0.01, momentum = 0.9)\n"
    "}\n";

static const struct {
  const char *src, *name;
  int64_t flags_bytes;
  int wino; /* Winograd kernels of the forward plan */
} packed_nets[] = {
    {gemm_net, "gnet.nn", 16, 0}, /* 2 implicit-GEMM convolutions (the dense layer of 4 rows streams) */
    {wino_net, "wnet.nn", 16, 2}, /* 2 Winograd convolutions */
};

/* The forward entry packs the weights of its GEMMs and convolutions once and keeps them
 * (RtModelDesc.packed_*). After a training step, a checkpoint load and a write through
 * rt_ctx_data its outputs must be those of the new weights; the outputs of the call before
 * (what a stale packed copy would give again) must not pass the same comparison. A net of
 * implicit-GEMM convolutions, then a net of Winograd convolutions (the transformed filters; its
 * comparisons with Winograd's tolerance, the winograd test's), each on 1 and 2 threads. */
START_TEST(packed_weights_refresh) {
  Diag *d = diag_new(stderr);
  int net = _i / 2;
  FeOptions fo = {0};
  const char *src = packed_nets[net].src;
  IrModule *mod = fe_compile_string(packed_nets[net].name, src, strlen(src), &fo, d);
  ck_assert_ptr_nonnull(mod);
  IrGraph *g = mod->graphs[0];
  G = g;
  ck_assert_int_eq(wino_kernels(true), packed_nets[net].wino);
  G = NULL;
  g_atol_scaled = packed_nets[net].wino > 0;
  double atol = g_atol_scaled ? WINO_ATOL_SCALED : MM_ATOL;
  TrainInfo info;
  IrGraph *tg = pass_train_graph(g, ir_module_find_train(mod, g->name), &info, d);
  ck_assert_ptr_nonnull(tg);
  CgModel *m = llvm_model_emit(g, tg, ir_module_find_train(mod, g->name), NULL, d);
  ck_assert_ptr_nonnull(m);
  const RtModelDesc *desc = llvm_model_jit(m, d);
  ck_assert_ptr_nonnull(desc);
  ck_assert_int_eq(desc->packed_flags_bytes, packed_nets[net].flags_bytes);
  char err[256];
  RtCtx *c = rt_ctx_create(desc, _i % 2 ? 2 : 1, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  ck_assert_int_eq(rt_ctx_init(c, 7), 0);
  ck_assert_int_eq(rt_ctx_prepare_training(c), 0);
  void **ptr = calloc((size_t)desc->ntensors, sizeof *ptr);
  float *old = NULL;
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *t = &desc->tensors[j];
    ptr[j] = rt_ctx_data(c, j);
    for (int64_t i = 0; t->kind == RT_KIND_INPUT && i < numel_of(t); i++) {
      if (t->dtype == DT_I32) ((int32_t *)ptr[j])[i] = (int32_t)(urand() * 10);
      else ((float *)ptr[j])[i] = (float)(2 * urand() - 1);
    }
    if (t->kind == RT_KIND_OUTPUT) old = calloc(1, (size_t)t->nbytes);
  }
  double stale;
  ck_assert(packed_fwd_check(c, g, ptr, old, &stale, atol) <= 1);
  for (int s = 0; s < 3; s++) /* the training step changes every weight */
    ck_assert_int_eq(rt_ctx_train_step(c, NULL, NULL), 0);
  ck_assert(packed_fwd_check(c, g, ptr, old, &stale, atol) <= 1);
  ck_assert_msg(stale > 1, "the training step left the outputs as they were (%.3g)", stale);
  char path[4096];
  tmp_template(path, sizeof path, "nnc_packed");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(rt_ctx_save(c, path, NULL), 0);
  ck_assert_int_eq(rt_ctx_train_step(c, NULL, NULL), 0);
  ck_assert(packed_fwd_check(c, g, ptr, old, &stale, atol) <= 1);
  ck_assert_int_eq(rt_ctx_load(c, path, NULL), 0); /* the weights of before that step */
  ck_assert(packed_fwd_check(c, g, ptr, old, &stale, atol) <= 1);
  ck_assert_msg(stale > 1, "the checkpoint left the outputs as they were (%.3g)", stale);
  unlink(path);
  float *w = rt_ctx_data(c, rt_ctx_find(c, "conv1.weight"));
  ck_assert_ptr_nonnull(w);
  for (int64_t i = 0; i < numel_of(&desc->tensors[rt_ctx_find(c, "conv1.weight")]); i++) w[i] *= -2;
  ck_assert(packed_fwd_check(c, g, ptr, old, &stale, atol) <= 1);
  ck_assert_msg(stale > 1, "the write left the outputs as they were (%.3g)", stale);
  free(old);
  free(ptr);
  rt_ctx_destroy(c);
  llvm_model_free(m);
  ir_module_free(mod);
  diag_free(d);
}
END_TEST

/* --precision bf16: every GEMM input is rounded to bf16 (unit roundoff u = 2^-8), products
 * exact and summed in f32. One GEMM's result then moves by at most 2u relative to its
 * magnitude sum (both inputs rounded); through a network of L GEMM layers (the longest
 * chain, forward or backward) these add up, so each tensor is compared norm-wise with
 * rtol = 2u·L (a bound: the roundings are independent, and the measured errors are a few
 * times smaller), atol 1e-5. The same comparison of the f32 build must be far inside it,
 * so that the rounding is seen to happen. */
static const struct {
  const char *file;
  const char *defs[4];
  int layers; /* L */
} bf16_examples[] = {
    {"mlp.nn", {"N=4"}, 3},
    {"lenet.nn", {"N=2"}, 5},
    {"char_lm.nn", {"N=2", "T=8", "H=2", "K=8"}, 13},
};

START_TEST(bf16_models) {
  Diag *d = diag_new(stderr);
  IrModule *mod = example_module(bf16_examples[_i].file, bf16_examples[_i].defs, d);
  IrGraph *g = mod->graphs[0];
  IrTrain *t = ir_module_find_train(mod, g->name);
  ck_assert_ptr_nonnull(t);
  TrainInfo info;
  IrGraph *tg = pass_train_graph(g, t, &info, d);
  ck_assert_ptr_nonnull(tg);
  double rtol = 2.0 * 0x1p-8 * bf16_examples[_i].layers, w[2][2];
  g_normwise = true;
  g_opt_level = 1;
  for (int bf = 0; bf < 2; bf++) {
    g_bf16 = bf;
    w[bf][0] = run_case(bf16_examples[_i].file, g, NULL, NULL, (Fill){-1, 1, 10, true}, rtol, 1e-5);
    w[bf][1] = run_case(bf16_examples[_i].file, g, tg, t, (Fill){-1, 1, 10, true}, rtol, 1e-5);
  }
  g_bf16 = false;
  g_normwise = false;
  g_opt_level = 0;
  printf("bf16_models: %s: forward %.3g, step %.3g of rtol %.3g (f32 build: %.2g, %.2g)\n",
         bf16_examples[_i].file, w[1][0], w[1][1], rtol, w[0][0], w[0][1]);
  for (int s = 0; s < 2; s++)
    ck_assert_msg(w[0][s] * 4 < w[1][s], "%s: bf16 (%.3g) no further from the interpreter than f32 (%.3g)",
                  bf16_examples[_i].file, w[1][s], w[0][s]);
  ir_module_free(mod);
  diag_free(d);
}
END_TEST

static int count_kernels(const char *ir, const char *prefix) {
  int n = 0;
  for (const char *q = ir; (q = strstr(q, "\ndefine ")); q++) {
    const char *eol = strchr(q + 1, '\n'), *at = strstr(q, prefix);
    if (at && eol && at < eol) {
      const char *paren = strchr(at, '(');
      bool plain = paren && paren < eol;
      for (const char *c = at + strlen(prefix); plain && c < paren; c++) plain = *c >= '0' && *c <= '9';
      n += plain;
    }
  }
  return n;
}

/* fusion decisions on the MLP: the forward pass is two GEMMs with bias (+relu) epilogues;
 * the training step adds the loss, its gradient, the backward GEMMs, one relu_bwd loop, two
 * bias-gradient sums, one loop for Adam's scalar bias corrections and one pass per
 * parameter for its Adam update (16 kernels); the arena is reused */
START_TEST(mlp_fusion_plan) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/mlp.nn", NNC_SOURCE_DIR);
  const char *defs[] = {"N=8"};
  FeOptions fo = {.defines = defs, .ndefines = 1};
  Diag *d = diag_new(stderr);
  IrModule *mod = fe_compile_file(path, &fo, d);
  ck_assert_ptr_nonnull(mod);
  IrGraph *g = mod->graphs[0];
  TrainInfo info;
  IrGraph *tg = pass_train_graph(g, ir_module_find_train(mod, "mlp"), &info, d);
  CgModel *m = llvm_model_emit(g, tg, ir_module_find_train(mod, "mlp"), NULL, d);
  ck_assert_ptr_nonnull(m);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_int_eq(llvm_model_write_ir(m, f, d), 0);
  fclose(f);
  ck_assert_int_eq(count_kernels(buf, "@nnc_mlp_fw_k"), 2);
  ck_assert_int_eq(count_kernels(buf, "@nnc_mlp_tr_k"), 16);
  const RtModelDesc *desc = llvm_model_jit(m, d);
  ck_assert_ptr_nonnull(desc);
  int64_t all = 0;
  for (int i = 0; i < tg->nnodes; i++)
    if (tg->nodes[i].op != OP_PARAM && tg->nodes[i].op != OP_INPUT)
      all += ir_type_numel(tg, &tg->nodes[i].type) * 4;
  ck_assert_int_lt(desc->arena_bytes_train, all / 2);
  ck_assert_int_eq(desc->batch, 8);
  ck_assert_str_eq(desc->dims, "N=8");
  free(buf);
  llvm_model_free(m);
  ir_module_free(mod);
  diag_free(d);
}
END_TEST

START_TEST(op_table_complete) {
  int missing = 0;
  for (int op = 0; op < OP_COUNT; op++)
    if (!llvm_op_defined((OpKind)op)) {
      fprintf(stderr, "codegen/llvm/llvm_ops.c has no lowering for %s\n", ir_op_name(op));
      missing++;
    }
  ck_assert_int_eq(missing, 0);
}
END_TEST

/* the node kernels' vector paths (runtime/rt_kernels.c): rows past a block of blocked sums
 * (1024) with remainders of the 16 lanes, tiled transposes with partial tiles, max pooling
 * over wider planes with strides, padding and dilation; then NaN inputs (log of values
 * below -1.9, about 2.5% of them) through pooling, softmax, reductions and layernorm */
START_TEST(node_kernels_wide) {
  g_begin("wide");
  int x = IN("x", 3, 3, 37, 45), v = IN("v", 2, 3, 1100), dv = IN("dv", 2, 3, 1100);
  IrAttr t1 = {.naxes = 3, .axes = {0, 2, 1}}, t2 = {.naxes = 3, .axes = {2, 0, 1}};
  out("t1", op1(OP_TRANSPOSE, x, &t1));
  out("t2", op1(OP_TRANSPOSE, x, &t2));
  int w4 = IN("w4", 4, 5, 33, 2, 19);
  IrAttr t3 = {.naxes = 4, .axes = {3, 1, 0, 2}};
  out("t3", op1(OP_TRANSPOSE, w4, &t3));
  int gm = IN("g", 1, 1100), bt = IN("b", 1, 1100);
  IrAttr ln = {.value = 1e-5, .naxes = 1};
  out("ln", op3(OP_LAYERNORM, v, gm, bt, &ln));
  out("dln", op3(OP_LAYERNORM_BWD, dv, v, gm, &ln));
  IrType gt = G->nodes[gm].type;
  int in2[2] = {dv, v};
  out("dg", op_h(OP_LN_DGAMMA, in2, 2, &ln, &gt));
  IrAttr ax = {.axis = 1};
  int sm = op1(OP_SOFTMAX, v, &ax), lsm = op1(OP_LOG_SOFTMAX, v, &ax);
  out("sm", sm);
  out("lsm", lsm);
  out("dsm", op2(OP_SOFTMAX_BWD, dv, sm, &ax));
  out("dlsm", op2(OP_LOG_SOFTMAX_BWD, dv, lsm, &ax));
  OpKind rops[4] = {OP_SUM, OP_MEAN, OP_MAX, OP_VAR};
  const char *rn[4] = {"rsum", "rmean", "rmax", "rvar"};
  IrAttr ra = {.naxes = 1, .axes = {1}, .correction = 1};
  for (int o = 0; o < 4; o++) out(rn[o], op1(rops[o], v, &ra));
  int p4 = IN("p4", 4, 1, 2, 35, 37);
  IrAttr pa[3] = {{.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}, .dilation = {1, 1}},
                  {.kernel = {3, 3}, .stride = {1, 1}, .pad = {1, 1}, .dilation = {1, 1}},
                  {.kernel = {2, 3}, .stride = {1, 2}, .pad = {1, 1}, .dilation = {2, 2}}};
  const char *pn[3] = {"mp0", "mp1", "mp2"};
  for (int c = 0; c < 3; c++) out(pn[c], op1(OP_MAXPOOL, p4, &pa[c]));
  IrAttr bn = {.value = 1e-5, .train = true};
  int bx = IN("bx", 4, 2, 3, 35, 37), bdy = IN("bdy", 4, 2, 3, 35, 37);
  int bg = IN("bg", 1, 3), bb = IN("bb", 1, 3), brm = IN("brm", 1, 3), brv = IN("brv", 1, 3);
  int in5[5] = {bx, bg, bb, brm, brv};
  out("bn", op_h(OP_BATCHNORM, in5, 5, &bn, NULL));
  out("dbn", op3(OP_BATCHNORM_BWD, bdy, bx, bg, &bn));
  check_fwd("wide node kernels", F_SYM, MM_RTOL, MM_ATOL);

  g_begin("nan");
  int y = IN("y", 4, 1, 2, 9, 37), z = IN("z", 2, 4, 97);
  IrType ct = ty(DT_F32, 0, NULL);
  IrAttr cv = {.value = 1.9};
  int c19 = op_h(OP_CONST, NULL, 0, &cv, &ct);
  int yn = op1(OP_LOG, op2(OP_ADD, y, c19, NULL), NULL), zn = op1(OP_LOG, op2(OP_ADD, z, c19, NULL), NULL);
  IrAttr mp = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}, .dilation = {1, 1}};
  out("mpn", op1(OP_MAXPOOL, yn, &mp));
  out("smn", op1(OP_SOFTMAX, zn, &ax));
  out("maxn", op1(OP_MAX, zn, &ra));
  out("sumn", op1(OP_SUM, zn, &ra));
  check_fwd("NaN inputs", F_SYM, MM_RTOL, MM_ATOL);
}
END_TEST

/* ---- transcendental functions against libm ------------------------------------------ */

/* distance in f32 units in the last place; NaN == NaN and equal infinities are 0 apart */
static double ulp_dist(float a, float b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INFINITY;
  if (a == b) return 0;
  int32_t ia, ib;
  memcpy(&ia, &a, 4);
  memcpy(&ib, &b, 4);
  int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
  return fabs((double)(oa - ob));
}

static double ref_fn(int f, double x) {
  switch (f) {
  case 0: return exp(x);
  case 1: return log(x);
  case 2: return tanh(x);
  case 3: return 1 / (1 + exp(-x));
  default: return x * 0.5 * erfc(-x / sqrt(2.0));
  }
}

/* the compiled exp, log, tanh, sigmoid and gelu (inline polynomials, llvm_math.c) on a
 * dense grid over [-110, 110], a log-spaced sweep of both signs from 1e-9 to 1e2 and the
 * special values, against the f32 rounding of libm's double result: the documented bounds
 * (1 ulp; 3 for gelu), NaN propagates, ±0 / ±inf / overflow / underflow exact */
START_TEST(transcendental_ulp) {
  enum { NG = 1 << 15, NS = 17, NX = 2 * NG + NS };
  static const OpKind ops[5] = {OP_EXP, OP_LOG, OP_TANH, OP_SIGMOID, OP_GELU};
  static const char *names[5] = {"exp", "log", "tanh", "sigmoid", "gelu"};
  static const double bound[5] = {1, 1, 1, 1, 3};
  g_begin("transcendental");
  int x = IN("x", 1, NX);
  for (int f = 0; f < 5; f++) out(names[f], op1(ops[f], x, NULL));
  Diag *d = diag_new(stderr);
  CgModel *m = llvm_model_emit(G, NULL, NULL, NULL, d);
  ck_assert_ptr_nonnull(m);
  const RtModelDesc *desc = llvm_model_jit(m, d);
  ck_assert_ptr_nonnull(desc);
  char *params = alloc64(desc->params_bytes), *io = alloc64(desc->io_bytes);
  char *arena = alloc64(desc->arena_bytes_forward);
  float *xv = NULL, *yv[5] = {0};
  for (int j = 0; j < desc->ntensors; j++) {
    const RtTensorInfo *ti = &desc->tensors[j];
    for (int f = 0; f < 5; f++)
      if (!strcmp(ti->name, names[f])) yv[f] = (float *)(io + ti->offset);
    if (!strcmp(ti->name, "x")) xv = (float *)(io + ti->offset);
  }
  ck_assert_ptr_nonnull(xv);
  static const float sp[NS] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.72f, 88.73f, -87.3f,
                               -103.2f, -104.0f, 1.17549435e-38f, 1.4e-45f, 3.4028235e38f,
                               -3.4028235e38f, -1.0f, 9.0f, -13.5f};
  for (int i = 0; i < NG; i++) xv[i] = (float)(-110.0 + 220.0 * i / NG);
  for (int i = 0; i < NG; i++) xv[NG + i] = (float)((i & 1 ? -1 : 1) * pow(10.0, -9.0 + 11.0 * i / NG));
  memcpy(xv + 2 * NG, sp, sizeof sp);
  RtModelBufs b = {params, io, arena, get_pool(), 3, 1234, NULL, NULL};
  desc->forward(&b);
  for (int f = 0; f < 5; f++) {
    ck_assert_ptr_nonnull(yv[f]);
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < NX; i++) {
      double u = ulp_dist(yv[f][i], (float)ref_fn(f, (double)xv[i]));
      if (u > worst) worst = u, at = i;
    }
    fprintf(stderr, "%s: max %.0f ulp (at x = %.9g: got %.9g, libm %.9g)\n", names[f], worst,
            (double)xv[at], (double)yv[f][at], ref_fn(f, (double)xv[at]));
    ck_assert_msg(worst <= bound[f], "%s: %.0f ulp from libm", names[f], worst);
  }
  free(params);
  free(io);
  free(arena);
  llvm_model_free(m);
  diag_free(d);
  g_end();
}
END_TEST

START_TEST(half_precision_rejected) {
  g_begin("half");
  int x = leaf(OP_INPUT, "x", DT_F16, 1, 4);
  out("y", op1(OP_RELU, x, NULL));
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  Diag *d = diag_new(mem);
  CgModel *m = llvm_model_emit(G, NULL, NULL, NULL, d);
  ck_assert_ptr_null(m);
  ck_assert_int_gt(diag_errors(d), 0);
  diag_free(d);
  fclose(mem);
  ck_assert_msg(strstr(buf, "f16") != NULL, "diagnostic does not name the dtype: %s", buf);
  free(buf);
  g_end();
}
END_TEST


/* ---- elementwise groups in GEMM and convolution epilogues -------------------------------- */

/* tests/kernels/epilogue_group.nn (relu6 as relu(x) - relu(x - 6) after a folded batchnorm, a
 * residual add, add + relu, per-channel and per-column factors, a matmul, and two
 * convolutions that must keep their groups apart), then convolutions the host computes
 * transposed (1x1 of 50 positions read as Aᵀ, 3x3 stride 2 of 196 gathered; 190 channels: a
 * partial block of lanes) with relu6, a residual and a per-channel factor */
static const char epi_t_net[] =
    "block relu6(x) { return relu(x) - relu(x - 6) }\n"
    "model et {\n"
    "  input x: f32[1, 200, 5, 10]\n"
    "  input r: f32[1, 190, 5, 10]\n"
    "  input x2: f32[1, 64, 28, 28]\n"
    "  input r2: f32[1, 190, 14, 14]\n"
    "  param s: f32[1, 190, 1, 1] = uniform(0.5, 2)\n"
    "  y = (relu6(batchnorm(conv2d(x, 190, kernel = 1, bias = false, name = \"a\"), name = \"bn\")) + r) * s\n"
    "  z = relu(conv2d(x2, 190, kernel = 3, stride = 2, pad = 1, bias = false, name = \"b\") + r2) - s\n"
    "  output y\n"
    "  output z\n"
    "}\n";

/* three images of 81 and 25 positions: one GEMM for the batch (CgConv.batch), the group
 * applied in its copy to the output (or, where the host computes them transposed, in the
 * write-back) */
static const char epi_b_net[] =
    "block relu6(x) { return relu(x) - relu(x - 6) }\n"
    "model eb {\n"
    "  input x: f32[3, 24, 9, 9]\n"
    "  input r: f32[3, 40, 9, 9]\n"
    "  param s: f32[1, 40, 1, 1] = uniform(0.5, 2)\n"
    "  y = (relu6(batchnorm(conv2d(x, 40, kernel = 1, bias = false, name = \"a\"), name = \"bn\")) + r) * s\n"
    "  z = relu(conv2d(x, 40, kernel = 3, pad = 1, stride = 2, bias = false, name = \"b\") + 1) - s\n"
    "  output y\n"
    "  output z\n"
    "}\n";

/* depthwise convolutions (25 channels of 30 rows, so that two tasks split a plane), stride
 * 1 and 2 (blocked) and 3 (row by row), each with its group on the registers before the
 * store: relu6 after a folded batchnorm times a per-channel factor, a residual add + relu,
 * relu6 alone and a residual add alone; dtwo's output is also read by a convolution, so it
 * keeps its group apart */
static const char epi_d_net[] =
    "block relu6(x) { return relu(x) - relu(x - 6) }\n"
    "model ed {\n"
    "  input x: f32[1, 25, 30, 30]\n"
    "  input r: f32[1, 25, 15, 15]\n"
    "  input r1: f32[1, 25, 30, 30]\n"
    "  param s: f32[25, 1, 1] = uniform(0.5, 2)\n"
    "  y = relu6(batchnorm(conv2d(x, 25, kernel = 3, pad = 1, groups = 25, bias = false, name = \"d1\"), name = \"bn\")) * s\n"
    "  z = relu(conv2d(x, 25, kernel = 3, stride = 2, pad = 1, groups = 25, bias = false, name = \"d2\") + r)\n"
    "  u = relu6(batchnorm(conv2d(x, 25, kernel = 3, stride = 2, pad = 1, groups = 25, bias = false, name = \"d3\"), name = \"bn3\"))\n"
    "  v = conv2d(x, 25, kernel = 3, pad = 1, groups = 25, bias = false, name = \"d4\") + r1\n"
    "  g = relu6(conv2d(x, 25, kernel = 3, stride = 3, pad = 1, groups = 25, bias = false, name = \"d5\"))\n"
    "  t = conv2d(x, 25, kernel = 3, pad = 1, groups = 25, bias = false, name = \"dtwo\")\n"
    "  w = relu(t) + conv2d(t, 25, kernel = 1, bias = false, name = \"pw\")\n"
    "  output y\n"
    "  output z\n"
    "  output u\n"
    "  output v\n"
    "  output w\n"
    "  output g\n"
    "}\n";

/* convolutions of 3 input channels computed directly (MobileNetV2's stem at stride 2 with
 * relu6 after a folded batchnorm; stride 1 with relu6 and a residual, three images), odd
 * sizes; stwo's output is a model output, so it keeps its group apart */
static const char epi_s_net[] =
    "block relu6(x) { return relu(x) - relu(x - 6) }\n"
    "model es {\n"
    "  input x: f32[1, 3, 17, 21]\n"
    "  input x2: f32[3, 3, 15, 37]\n"
    "  input r: f32[3, 20, 15, 37]\n"
    "  a = relu6(batchnorm(conv2d(x, 32, kernel = 3, stride = 2, pad = 1, bias = false, name = \"stem\"), name = \"bn\"))\n"
    "  b = relu6(conv2d(x2, 20, kernel = 3, pad = 1, bias = false, name = \"s1\")) + r\n"
    "  c = conv2d(x, 16, kernel = 3, stride = 2, pad = 1, bias = false, name = \"stwo\")\n"
    "  d = relu(c) * 2\n"
    "  output a\n"
    "  output b\n"
    "  output c\n"
    "  output d\n"
    "}\n";

/* 3x3 stride-1 convolutions the host runs as Winograd: ResNet's relu(bn2 + shortcut) (w1)
 * and relu then a residual (w3) in the output transform; relu6 (w2) is not a group the
 * transform applies, so it stays apart there (and is fused without Winograd) */
static const char epi_w_net[] =
    "block relu6(x) { return relu(x) - relu(x - 6) }\n"
    "model ew {\n"
    "  input x: f32[1, 32, 18, 18]\n"
    "  input r: f32[1, 32, 18, 18]\n"
    "  y = relu(batchnorm(conv2d(x, 32, kernel = 3, pad = 1, bias = false, name = \"w1\"), name = \"bn\") + r)\n"
    "  z = relu6(conv2d(x, 32, kernel = 3, pad = 1, bias = false, name = \"w2\"))\n"
    "  q = relu(conv2d(x, 32, kernel = 3, pad = 1, bias = false, name = \"w3\")) + r\n"
    "  output y\n"
    "  output z\n"
    "  output q\n"
    "}\n";

/* the kernels of G's forward plan for the host that compute a fused group (CgKernel.nepi);
 * *named: those whose op node is named `plain` (a convolution that must keep its group apart) */
static int epi_kernels(bool wino, const char *const *plain, int *named) {
  Diag *d = diag_new(stderr);
  CgModelPlan P;
  host_plan(&P, wino, d);
  int n = 0;
  *named = 0;
  for (int ki = 0; ki < P.pf.nk; ki++) {
    const CgKernel *k = &P.pf.k[ki];
    const char *nm = G->nodes[k->node].name;
    n += k->nepi > 0;
    for (int j = 0; plain && plain[j]; j++) *named += k->nepi > 0 && nm && strstr(nm, plain[j]);
  }
  cg_model_plan_free(&P);
  diag_free(d);
  return n;
}

/* the kernel of plan p (of G) whose op is the convolution named `name` (its filter
 * NAME.weight); -1: none */
static int conv_kernel(const CgPlan *p, const char *name) {
  int found = -1;
  for (int ki = 0; ki < p->nk; ki++) {
    const IrNode *n = &G->nodes[p->k[ki].node];
    const char *nm = n->op == OP_CONV2D ? G->nodes[n->in[1]].name : NULL;
    size_t len = strlen(name);
    if (nm && strncmp(nm, name, len) == 0 && strcmp(nm + len, ".weight") == 0) found = ki;
  }
  return found;
}

/* the group size (CgKernel.nepi) of the kernel of G's forward plan for the host of the
 * convolution named `name` (its filter NAME.weight), and its form in *cv; -1: no such kernel */
static int epi_of(bool wino, const char *name, CgConv *cv) {
  Diag *d = diag_new(stderr);
  CgModelPlan P;
  host_plan(&P, wino, d);
  int nepi = -1, ki = conv_kernel(&P.pf, name);
  if (ki >= 0) {
    nepi = P.pf.k[ki].nepi;
    cg_conv_geom(&P.pf, P.pf.k[ki].node, cv);
  }
  cg_model_plan_free(&P);
  diag_free(d);
  return nepi;
}

/* the new fused paths of nets 3-5 took (or, for the negative cases, kept apart) their
 * groups in the form they test: depthwise, few channels (where the host's vectors have 8
 * lanes: the tiles' choice), Winograd's output transform */
static void epi_forms(int net) {
  static const struct {
    int net;
    const char *name;
    bool wino;
    int nepi; /* -1: at least one member */
    int form; /* 0 depthwise, 1 few, 2 Winograd, 3 a GEMM */
  } want[] = {
      {3, "d1", false, -1, 0},  {3, "d2", false, -1, 0},  {3, "d3", false, -1, 0},
      {3, "d4", false, 1, 0},   {3, "dtwo", false, 0, 0}, {3, "d5", false, -1, 0},
      {4, "stem", false, -1, 1},
      {4, "s1", false, -1, 1},  {4, "stwo", false, 0, 1}, {5, "w1", true, 2, 2},
      {5, "w3", true, 1, 2},    {5, "w2", true, 0, 2},    {5, "w2", false, -1, 3},
      {5, "w1", false, -1, 3},
  };
  HwTarget hw;
  char err[256];
  bool wide = hw_resolve("host", &hw, err, sizeof err) == 0 && hw.vector_bits >= 256;
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    if (want[i].net != net || (want[i].form == 1 && !wide)) continue;
    CgConv cv;
    int nepi = epi_of(want[i].wino, want[i].name, &cv);
    bool form = want[i].form == 0 ? cv.depthwise : want[i].form == 1 ? cv.few
              : want[i].form == 2 ? cv.wino : !cv.wino && !cv.few && !cv.depthwise;
    ck_assert_msg(form && (want[i].nepi < 0 ? nepi > 0 : nepi == want[i].nepi),
                  "net %d, %s%s: form %d %s, a group of %d", net, want[i].name,
                  want[i].wino ? " (winograd)" : "", want[i].form, form ? "taken" : "not taken", nepi);
  }
  if (net == 4 && !wide) fprintf(stderr, "epilogue groups: host vectors under 8 lanes, the few-channel form is not checked\n");
}

static bool chose_nt(const TileDecision *d) { return d->nt_store; }

/* Pointwise convolutions whose output is past the last-level cache stored non-temporally
 * (the tiles' nt_store; the host's L3 taken as 64 KiB by the fixture): positions a multiple
 * of the vector (aligned rows: non-temporal stores) and not (rows unaligned: plain stores),
 * output channels a multiple of the register tile and not, one image and two; each plain,
 * with bias + relu and with a folded batchnorm + relu, against the interpreter. */
START_TEST(conv_nt_store) {
  static const EpiConv cs[] = {
      {2, 24, 40, 16, 20, 1, 1, 0}, /* 320 positions: aligned rows */
      {1, 20, 96, 16, 16, 1, 1, 0}, /* 256, whole tiles of channels */
      {2, 30, 50, 13, 17, 1, 1, 0}, /* 221: rows not aligned, plain stores */
  };
  check_conv_form("conv_nt", cs, sizeof cs / sizeof *cs, F_SYM, chose_nt);
}
END_TEST

static bool chose_few_nt(const TileDecision *d) { return d->conv_few && d->nt_store; }

/* The direct convolutions of few input channels with outputs past a quarter of that L3
 * (the tiles' conv_few with nt_store): rows of whole vectors (32 and 64 columns, each vector
 * stored non-temporally where aligned) and not (50 columns: masked stores), 3x3 at stride 2
 * and 5x5 at stride 1,
 * one image and two; each plain, with bias + relu and with a folded batchnorm + relu,
 * against the interpreter */
START_TEST(conv_few_nt_store) {
  static const EpiConv cs[] = {
      {1, 3, 32, 33, 64, 3, 2, 1}, /* 17 rows of 32: one image, stride 2 */
      {2, 3, 16, 20, 64, 5, 1, 2}, /* 20 rows of 64: two images, 5x5 */
      {2, 3, 20, 30, 50, 5, 1, 2}, /* 30 rows of 50: masked stores */
  };
  check_conv_form("conv_few_nt", cs, sizeof cs / sizeof *cs, F_SYM, chose_few_nt);
}
END_TEST

/* MobileNetV2's last depthwise layers at 7x7 with their group (batchnorm, relu6, a scale;
 * and a residual read at the flat positions), on 1 and 2 threads */
static const char dw_flat_net[] =
    "block relu6(x) { return relu(x) - relu(x - 6) }\n"
    "model df {\n"
    "  input x: f32[2, 20, 7, 7]\n"
    "  input r: f32[2, 20, 7, 7]\n"
    "  param s: f32[20, 1, 1] = uniform(0.5, 2)\n"
    "  y = relu6(batchnorm(conv2d(x, 20, kernel = 3, pad = 1, groups = 20, bias = false, name = \"d1\"), name = \"bn\")) * s\n"
    "  z = relu(conv2d(x, 20, kernel = 3, pad = 1, groups = 20, bias = false, name = \"d2\") + r)\n"
    "  output y\n"
    "  output z\n"
    "}\n";

/* Depthwise forwards of small planes computed as flat vectors (CgDwBlock.flat: stride 1,
 * rows of at most half a vector as wide as the input's): 7x7, 4x4 (one vector), 8x8 (two
 * rows a vector), 5x5 taps, dilation 2, unpadded rows (OH < H), a plane under a vector; each
 * with its data and filter gradients, with a folded batchnorm and relu, and the 7x7 net above
 * with its fused groups. The rule must take the flat form for these shapes with 16 lanes;
 * where the host has fewer, the 7- and 5-wide ones run by rows (said on stderr). */
START_TEST(dw_flat) {
  static const ConvCaseN cs[] = {
      {{16, 16, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 16}, 2}, /* 49: 3 vectors and a lane */
      {{8, 8, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 8}, 3},    /* one vector */
      {{8, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8}, 1},    /* two rows a vector */
      {{6, 6, 6, 6, 5, 5, 1, 1, 2, 2, 1, 1, 6}, 2},    /* 5x5 */
      {{5, 5, 7, 7, 3, 3, 1, 1, 2, 2, 2, 2, 5}, 1},    /* dilated */
      {{4, 4, 9, 5, 3, 3, 1, 1, 0, 1, 1, 1, 4}, 2},    /* unpadded rows: OH 7 of H 9 */
      {{3, 3, 2, 7, 3, 3, 1, 1, 1, 1, 1, 1, 3}, 3},    /* 14 positions */
  };
  HwTarget hw;
  char err[256];
  int vl = hw_resolve("host", &hw, err, sizeof err) == 0 ? hw.vector_bits / 32 : 0;
  for (size_t c = 0; c < sizeof cs / sizeof *cs; c++) {
    const ConvCase *k = &cs[c].c;
    CgConv cv = {.N = cs[c].N, .C = k->C, .H = k->H, .W = k->W, .O = k->O, .KH = k->KH, .KW = k->KW,
                 .G = k->G, .sh = k->sh, .sw = k->sw, .ph = k->ph, .pw = k->pw, .dh = k->dh, .dw = k->dw};
    cv.OH = (k->H + 2 * k->ph - k->dh * (k->KH - 1) - 1) / k->sh + 1;
    cv.OW = (k->W + 2 * k->pw - k->dw * (k->KW - 1) - 1) / k->sw + 1;
    CgDwBlock b;
    ck_assert_msg(cg_dw_block(&cv, 16, &b) && b.flat == (cv.OH * cv.OW + 15) / 16,
                  "case %zu: not flat with 16 lanes", c);
    if (vl > 0 && (!cg_dw_block(&cv, vl, &b) || !b.flat))
      fprintf(stderr, "dw_flat case %zu: by rows with the host's %d lanes\n", c, vl);
    char what[64];
    snprintf(what, sizeof what, "flat depthwise+batchnorm case %zu", c);
    check_conv_bn(k, cs[c].N, what);
  }
  check_conv_cases("flat depthwise", cs, sizeof cs / sizeof *cs);
  Diag *d = diag_new(stderr);
  FeOptions fo = {0};
  IrModule *mod = fe_compile_string("df.nn", dw_flat_net, strlen(dw_flat_net), &fo, d);
  ck_assert_ptr_nonnull(mod);
  G = mod->graphs[0];
  for (int i = 0; i < 2; i++) { /* both fused in the flat form */
    CgConv cv;
    CgDwBlock b;
    int nepi = epi_of(false, i ? "d2" : "d1", &cv);
    ck_assert_msg(nepi > 0 && cv.depthwise, "net: d%d's group not fused (%d)", i + 1, nepi);
    ck_assert(vl < 16 || (cg_dw_block(&cv, vl, &b) && b.flat == 4));
  }
  G = NULL;
  for (int run = 0; run < 2; run++) {
    g_one_thread = run == 0;
    run_case(run ? "flat depthwise net, 2 threads" : "flat depthwise net, 1 thread", mod->graphs[0],
             NULL, NULL, (Fill){-5, 5, 4, true}, MM_RTOL, MM_ATOL);
  }
  g_one_thread = false;
  ir_module_free(mod);
  diag_free(d);
}
END_TEST

/* case c's data gradients in the host's plan of G: one GEMM over the batch, dy in place */
static void pw_dx_batched(size_t c) {
  Diag *d = diag_new(stderr);
  CgModelPlan P;
  host_plan(&P, false, d);
  int nb = 0;
  for (int ki = 0; ki < P.pf.nk; ki++) {
    const CgKernel *k = &P.pf.k[ki];
    if (k->node < 0 || G->nodes[k->node].op != OP_CONV2D_BWD_DATA) continue;
    CgConv cv;
    cg_conv_geom(&P.pf, k->node, &cv);
    ck_assert_msg(cv.batch && cv.direct, "case %zu: the data gradient not batched", c);
    nb++;
  }
  cg_model_plan_free(&P);
  diag_free(d);
  ck_assert_int_gt(nb, 0);
}

/* Data gradients of pointwise convolutions with fewer than CG_CONV_BATCH_DX1_P positions
 * an image: one GEMM over the batch (CgConv.batch: dy's rows side by side, the filter packed
 * once), then each image's rows into place; 16 positions (MobileNetV2's 4x4 at 112²), 20,
 * 30 and 21, one group and two, with their forwards and filter gradients against the
 * interpreter; the plan must batch every such data gradient. */
START_TEST(conv_pointwise_dx_batch) {
  static const ConvCaseN cs[] = {
      {{40, 24, 4, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 3},
      {{96, 200, 4, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 2},
      {{7, 9, 5, 6, 1, 1, 1, 1, 0, 0, 1, 1, 1}, 2},
      {{8, 12, 3, 7, 1, 1, 1, 1, 0, 0, 1, 1, 2}, 4},
  };
  check_conv_cases_plan("batched pointwise data gradient", cs, sizeof cs / sizeof *cs,
                        pw_dx_batched);
}
END_TEST

START_TEST(epilogue_groups) {
  Diag *d = diag_new(stderr);
  char path[512];
  snprintf(path, sizeof path, "%s/tests/kernels/epilogue_group.nn", NNC_SOURCE_DIR);
  FeOptions fo = {0};
  static const char *const nets[] = {NULL, epi_t_net, epi_b_net, epi_d_net, epi_s_net, epi_w_net};
  for (int net = 0; net < 6; net++) {
    IrModule *mod = net == 0 ? fe_compile_file(path, &fo, d)
                             : fe_compile_string("e.nn", nets[net], strlen(nets[net]), &fo, d);
    ck_assert_ptr_nonnull(mod);
    G = mod->graphs[0];
    /* the golden file's pw, c3, other, fc and sc; in the others both convolutions */
    static const char *const plain[] = {"two", "last", NULL};
    int named, fused = epi_kernels(false, plain, &named);
    ck_assert_msg(fused >= 2, "net %d: %d kernels with a fused group", net, fused);
    ck_assert_msg(named == 0, "a convolution read by two kernels, or an output, took its group");
    fused = epi_kernels(true, NULL, &named); /* c3 may run as Winograd: then apart */
    ck_assert_int_ge(fused, 1);
    epi_forms(net);
    for (int run = 0; run < 4; run++) { /* 1 and 2 threads, without and with Winograd */
      char what[64];
      snprintf(what, sizeof what, "epilogue group net %d, %d thread(s)%s", net, 1 + run % 2,
               run / 2 ? ", winograd" : "");
      g_one_thread = run % 2 == 0;
      g_no_wino = run / 2 == 0;
      g_atol_scaled = run / 2 == 1; /* Winograd's error is relative to the largest output */
      run_case(what, G, NULL, NULL, (Fill){-5, 5, 4, true}, MM_RTOL,
               g_atol_scaled ? WINO_ATOL_SCALED : MM_ATOL);
    }
    g_one_thread = g_no_wino = g_atol_scaled = false;
    G = NULL;
    ir_module_free(mod);
  }
  diag_free(d);
}
END_TEST

/* A depthwise convolution fused into the pointwise convolution that reads it (CgKernel.dw,
 * inference plans): the depthwise's strip of rows computed into a thread's scratch and read
 * there in place by the GEMM. pw1: stride 1, 3 images of 45 rows (not a multiple of the
 * depthwise's row block), a folded batchnorm + relu6 before the strip and a residual after
 * it: whole-image strips where the host's model fuses it (its image within half of L2, the
 * batch's intermediate beyond L2, an image for every core). pw2: stride 2, one image of 65
 * output rows, batchnorms on both sides: never fused by the model (one image's intermediate
 * cannot exceed L2 and fit half of it). Then both in strips of 12 rows (CgTarget.dw_strip:
 * 45 = 3·12 + 9 and 65 = 5·12 + 5, partial blocks of the depthwise's rows at each image's end).
 * Each on 1 and 2 threads against the interpreter. A negative case: a depthwise output with
 * two readers stays its own kernel, and --no-dw-fuse fuses nothing. */
static const char dwpw_net[] =
    "block relu6(x) { return relu(x) - relu(x - 6) }\n"
    "model dp {\n"
    "  input x: f32[3, 48, 45, 45]\n"
    "  input r: f32[3, 24, 45, 45]\n"
    "  input u: f32[1, 64, 130, 130]\n"
    "  d1 = relu6(batchnorm(conv2d(x, 48, kernel = 3, pad = 1, groups = 48, bias = false, name = \"dw1\"), name = \"bn1\"))\n"
    "  y1 = conv2d(d1, 24, kernel = 1, bias = false, name = \"pw1\") + r\n"
    "  d2 = relu6(batchnorm(conv2d(u, 64, kernel = 3, stride = 2, pad = 1, groups = 64, bias = false, name = \"dw2\"), name = \"bn2\"))\n"
    "  y2 = batchnorm(conv2d(d2, 32, kernel = 1, bias = false, name = \"pw2\"), name = \"bn3\")\n"
    "  d3 = relu(conv2d(x, 48, kernel = 3, pad = 1, groups = 48, bias = false, name = \"dw3\"))\n"
    "  y3 = conv2d(d3, 16, kernel = 1, bias = false, name = \"pw3\") + conv2d(d3, 16, kernel = 1, bias = false, name = \"pw4\")\n"
    "  output y1\n"
    "  output y2\n"
    "  output y3\n"
    "}\n";

/* whether the kernel of G's host plan (dw_fuse `fuse`, dw_strip `strip`) of the pointwise
 * convolution named `name` has a depthwise fused into it; its strip in *rows, and in *direct
 * whether the tiles read its image in place (the form's condition) */
static bool dwpw_fused(const char *name, bool fuse, int strip, int *rows, bool *direct) {
  Diag *d = diag_new(stderr);
  CgModelPlan P;
  g_no_dw_fuse = !fuse;
  g_dw_strip = strip;
  host_plan(&P, false, d);
  g_no_dw_fuse = false;
  g_dw_strip = 0;
  int ki = conv_kernel(&P.pf, name);
  ck_assert_msg(ki >= 0, "no kernel of %s", name);
  const CgKernel *k = &P.pf.k[ki];
  bool fused = k->dw != NULL;
  *rows = k->dw_rows;
  *direct = k->tile && k->tile->direct_b;
  if (fused) ck_assert(G->nodes[k->dw->node].op == OP_CONV2D && G->nodes[k->node].in[0] == k->dw->out);
  cg_model_plan_free(&P);
  diag_free(d);
  return fused;
}

START_TEST(dw_pw_fused) {
  Fill f = {-2, 2, 4, true}; /* batchnorm statistics from their initializers */
  FeOptions fo = {0};
  Diag *d = diag_new(stderr);
  IrModule *mod = fe_compile_string("dp.nn", dwpw_net, strlen(dwpw_net), &fo, d);
  ck_assert_ptr_nonnull(mod);
  G = mod->graphs[0];
  HwTarget hw;
  char err[256];
  ck_assert_msg(hw_resolve("host", &hw, err, sizeof err) == 0, "%s", err);
  int rows = 0;
  bool direct = false;
  bool model = hw.l2_bytes_cpu >= 2 * 48 * 45 * 45 * 4 && hw.l2_bytes_cpu < 3 * 48 * 45 * 45 * 4 &&
               hw.cores <= 3; /* the host's model fuses pw1 (choose_dw_strip) */
  ck_assert_msg(dwpw_fused("pw1", true, 0, &rows, &direct) == (model && direct), "pw1: the model's choice not taken");
  if (model && direct) ck_assert_int_eq(rows, 45);
  else fprintf(stderr, "dw_pw_fused: the host's model keeps pw1 apart (L2 %lld, %d cores)\n", (long long)hw.l2_bytes_cpu, hw.cores);
  ck_assert_msg(!dwpw_fused("pw2", true, 0, &rows, &direct), "pw2: fused with one image");
  static const struct { const char *name; int rows; } forced[] = {{"pw1", 12}, {"pw2", 12}};
  for (int i = 0; i < 2; i++) {
    bool fused = dwpw_fused(forced[i].name, true, 12, &rows, &direct);
    ck_assert_msg(fused == direct, "%s: strips of 12 rows not taken", forced[i].name);
    if (fused) ck_assert_int_eq(rows, forced[i].rows);
    ck_assert(!dwpw_fused(forced[i].name, false, 12, &rows, &direct)); /* --no-dw-fuse */
  }
  ck_assert_msg(!dwpw_fused("pw3", true, 12, &rows, &direct) && !dwpw_fused("pw4", true, 12, &rows, &direct),
                "a depthwise output with two readers was fused");
  g_no_wino = true;
  g_atol_scaled = true; /* sums of 48 to 64 products of the depthwise's outputs */
  for (int run = 0; run < 4; run++) {
    char what[64];
    g_one_thread = run % 2 == 0;
    g_dw_strip = run / 2 ? 12 : 0;
    snprintf(what, sizeof what, "dw+pw fused, %s, %d thread(s)", run / 2 ? "strips of 12" : "the model's", 1 + run % 2);
    run_case(what, G, NULL, NULL, f, MM_RTOL, MM_ATOL);
  }
  g_one_thread = g_no_wino = g_atol_scaled = false;
  g_dw_strip = 0;
  G = NULL;
  ir_module_free(mod);
  diag_free(d);
}
END_TEST

/* a test case of the suite, added to it: every test from the same random state (rng_reset),
 * at most timeout seconds */
static TCase *codegen_tcase(Suite *s, const char *name, double timeout) {
  TCase *t = tcase_create(name);
  tcase_add_checked_fixture(t, rng_reset, NULL);
  tcase_set_timeout(t, timeout);
  suite_add_tcase(s, t);
  return t;
}
int main(void) {
  Suite *s = suite_create("codegen");
  TCase *tc = codegen_tcase(s, "ops", 300);
  tcase_add_test(tc, op_table_complete);
  tcase_add_test(tc, mlp_fusion_plan);
  tcase_add_loop_test(tc, unary, 0, (int)(sizeof unary_ops / sizeof *unary_ops));
  tcase_add_loop_test(tc, binary_broadcast, 0, (int)(sizeof binary_ops / sizeof *binary_ops));
  tcase_add_test(tc, where_and_iota);
  tcase_add_test(tc, fused_chain_and_cast);
  tcase_add_test(tc, const_output);
  tcase_add_test(tc, matmul_variants);
  tcase_add_test(tc, matmul_bias_relu_epilogue);
  tcase_add_test(tc, data_movement);
  tcase_add_test(tc, reductions);
  tcase_add_test(tc, softmax_family);
  tcase_add_test(tc, conv_variants);
  tcase_add_test(tc, conv_data_grad);
  tcase_add_test(tc, dw_data_grad);
  tcase_add_test(tc, dw_forward);
  tcase_add_test(tc, conv_few);
  tcase_add_test(tc, conv_pointwise);
  tcase_add_test(tc, conv_pointwise_data_grad);
  tcase_add_test(tc, conv_bn_fold);
  tcase_add_test(tc, conv_wgrad_direct);
  tcase_add_test(tc, conv_wgrad_pointwise);
  tcase_add_test(tc, pooling);
  tcase_add_test(tc, maxpool_2x2);
  tcase_add_test(tc, maxpool_3x3s2);
  tcase_add_test(tc, normalization);
  tcase_add_test(tc, dropout);
  tcase_add_test(tc, embedding_and_losses);
  tcase_add_test(tc, assign_inplace_and_deferred);
  tcase_add_test(tc, half_precision_rejected);
  tcase_add_test(tc, transcendental_ulp);
  tcase_add_test(tc, node_kernels_wide);
  tcase_add_test(tc, train_small_net);
  TCase *te = codegen_tcase(s, "examples", 600);
  /* the three deep image models last: skipped in the quick (sanitizer) run, where resnet18's
   * kernels are no different from the smaller models' and the interpreter dominates */
  int nex = (int)(sizeof examples / sizeof *examples);
  tcase_add_loop_test(te, example_models, 0, nnc_test_quick() ? nex - 3 : nex);
  tcase_add_loop_test(te, bf16_models, 0, (int)(sizeof bf16_examples / sizeof *bf16_examples));
  TCase *tw = codegen_tcase(s, "winograd", 300);
  tcase_add_checked_fixture(tw, wino_host_setup, wino_host_teardown);
  tcase_add_test(tw, winograd);
  tcase_add_test(tw, winograd_data_grad);
  tcase_add_test(tw, winograd_filter_grad);
  tcase_add_test(tw, winograd_train);
  TCase *tp = codegen_tcase(s, "packed", 600);
  tcase_add_checked_fixture(tp, wino_host_setup, wino_host_teardown);
  tcase_add_loop_test(tp, packed_weights_refresh, 0, 4);
  TCase *tt = codegen_tcase(s, "conv_t", 300);
  tcase_add_test(tt, conv_transposed);
  TCase *tf = codegen_tcase(s, "dw_pw_fused", 300);
  tcase_add_test(tf, dw_pw_fused);
  TCase *ts = codegen_tcase(s, "small_forms", 300); /* few-row matmuls, flat depthwise planes */
  tcase_add_test(ts, matmul_few_rows);
  tcase_add_test(ts, dw_flat);
  tcase_add_test(ts, conv_pointwise_dx_batch);
  TCase *tn = codegen_tcase(s, "nt_store", 300);
  tcase_add_checked_fixture(tn, small_l3_host_setup, wino_host_teardown);
  tcase_add_test(tn, conv_nt_store);
  tcase_add_test(tn, conv_few_nt_store);
  TCase *tg = codegen_tcase(s, "epilogue_group", 300);
  tcase_add_checked_fixture(tg, wino_host_setup, wino_host_teardown);
  tcase_add_test(tg, epilogue_groups);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int nf = srunner_ntests_failed(r);
  srunner_free(r);
  if (pool) rt_pool_destroy(pool);
  if (pool1) rt_pool_destroy(pool1);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
