/* interp.c — the reference interpreter: every op of ops.def with plain loops in double.
 *
 * It is the oracle for the backends and the autodiff, so the semantics below are the
 * contract they all follow. Clarity first, but every op is linear in the work it describes
 * (no quadratic index recomputation), so a LeNet or ResNet block at batch 4 stays interactive.
 *
 * Semantics
 * - Shapes come from each node's type, evaluated with dim_eval at interp_new time. Negative
 *   axes count from the end. Operand shapes are checked where a mismatch would read out of
 *   bounds; such mismatches are errors naming the node.
 * - Elementwise binary ops (and the elementwise *_BWD ops) broadcast numpy-style: operands
 *   are right-aligned with the result; a dim of size 1 repeats.
 * - GELU = 0.5*x*(1+erf(x/sqrt 2)); SIGMOID is evaluated in its overflow-free form;
 *   POWC = pow(x, attr.value). CAST rounds to the node dtype: f32/f16/bf16
 *   round-to-nearest-even with IEEE overflow to inf and gradual underflow; i32 truncates
 *   toward zero. CONST fills attr.value.
 * - round_storage: after a node is evaluated, an f32/f16/bf16 result is rounded to its dtype.
 *   Values given with interp_set, CONST fills and ASSIGN commits are rounded likewise.
 * - MATMUL: numpy matmul. attr.trans_a/trans_b transpose the last two dims of a rank>=2
 *   operand first (ignored on rank 1). A rank-1 left operand is a row [1,K] whose M dim is
 *   dropped, a rank-1 right operand a column [K,1] whose N dim is dropped. Batch dims
 *   broadcast.
 * - TRANSPOSE: out dim i = in dim attr.axes[i]. RESHAPE: row-major, same element count.
 *   BROADCAST: numpy broadcast to the node type. CONCAT on attr.axis in operand order.
 *   SLICE: [start, end) on attr.axis, start = dim_eval(attr.start) (NULL = 0); the length is
 *   the node type's dim. SLICE_BWD: zeros of the node type with the operand at [start, ...).
 * - SUM/MEAN/MAX/VAR over attr.axes (attr.naxes == 0 means all axes); keepdim only changes
 *   the type, not the row-major layout. VAR divides by count - attr.correction. MAX
 *   propagates NaN.
 * - SOFTMAX/LOG_SOFTMAX on attr.axis, shifted by the max along the axis.
 * - CONV2D: x[N,C,H,W], w[O,C/groups,KH,KW] -> y[N,O,OH,OW] (OH, OW from the node type),
 *   ih = oh*stride - pad + kh*dilation; no bias. stride/dilation 0 mean 1, groups 0 means 1.
 *   CONV2D_BWD_DATA(dy, w) -> dx and CONV2D_BWD_FILTER(x, dy) -> dw are its exact adjoints.
 * - MAXPOOL/AVGPOOL: attr.kernel, attr.stride (0 = kernel), attr.pad, attr.dilation (0 = 1).
 *   MAXPOOL treats padding as -inf; MAXPOOL_BWD(dy, x) sends dy to the first strict maximum
 *   of each window in row-major order (windows whose max is -inf pass nothing). AVGPOOL
 *   divides by KH*KW including padding (count_include_pad); AVGPOOL_BWD(dy) is its adjoint.
 * - BATCHNORM(x, gamma, beta, rmean, rvar), x [N,C] or [N,C,H,W], eps = attr.value; train:
 *   batch mean and biased batch variance over every axis but 1; otherwise rmean/rvar.
 *   BATCHNORM_BWD(dy, x, gamma) = gamma*invstd/M*(M*dy - sum(dy) - xhat*sum(dy*xhat)) with
 *   batch statistics recomputed from x (M = N*H*W); BN_DGAMMA(dy, x) = sum(dy*xhat) per C.
 * - LAYERNORM(x, gamma, beta) over the trailing attr.naxes axes (0 means 1), biased variance,
 *   eps = attr.value; LAYERNORM_BWD(dy, x, gamma) -> dx; LN_DGAMMA(dy, x) = sum over the
 *   leading axes of dy*xhat.
 * - DROPOUT(x), p = attr.value: identity unless attr.train. Element i is kept iff u >= p and
 *   scaled by 1/(1-p), u = interp_philox_uniform(opt.seed, attr.seed + (step << 32), i).
 *   DROPOUT_BWD(dy) applies the same mask and scale.
 * - interp_philox_uniform(seed, stream, i): Philox-4x32-10 (Salmon et al., SC'11) with
 *   key = {lo32(seed), hi32(seed)} and counter = {lo32(i), hi32(i), lo32(stream),
 *   hi32(stream)}; u = (word0 >> 8) * 2^-24, so u is exact in f32 as well.
 * - EMBEDDING(table[V,D], idx) -> idx.shape + [D]; an index that is not an integer in [0,V)
 *   is an error naming the value and its position. EMBEDDING_BWD(dy, idx) scatter-adds.
 * - CROSS_ENTROPY(logits[N,C], label[N]) = mean_n(logsumexp(logits[n]) - logits[n,label]);
 *   labels outside [0,C) are errors. CE_BWD(dloss, logits, label) =
 *   dloss*(softmax(logits) - onehot(label))/N. MSE(a, b) = mean((a-b)^2), same shapes.
 * - RELU_BWD(dy, y) = dy*(y>0); GELU_BWD(dy, x) = dy*(Phi(x) + x*phi(x));
 *   SILU_BWD(dy, x) = dy*s*(1 + x*(1-s)), s = sigmoid(x); SIGMOID_BWD(dy, y) = dy*y*(1-y);
 *   TANH_BWD(dy, y) = dy*(1-y^2); SOFTMAX_BWD(dy, y) = y*(dy - sum(dy*y));
 *   LOG_SOFTMAX_BWD(dy, y) = dy - exp(y)*sum(dy); MAX_BWD(dy, x, y): dy (reduced layout per
 *   attr.axes) goes to every position where x equals y.
 * - ASSIGN(param, value): the node's own value is a copy of value; after every node ran, the
 *   values are committed into the PARAM's storage in node order, so all reads in a step see
 *   the old value and interp_value(param) returns the new one.
 * - interp_init_param: the stream is the FNV-1a 64 hash of the parameter name ("%<index>" if
 *   unnamed); NORMAL(std=init_a) uses Box-Muller on uniforms 2j, 2j+1 (r from 1-u so log is
 *   finite); UNIFORM(a, b); XAVIER = Glorot uniform, bound sqrt(6/(fan_in+fan_out));
 *   HE = Kaiming normal, std sqrt(2/fan_in); fan_in = dim1*receptive, fan_out =
 *   dim0*receptive, receptive = product of dims 2.. (rank 1: both dim0; rank 0: 1).
 */
#include "interp.h"
#include "../runtime/rt_program.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct Shape {
  int rank;
  int64_t d[IR_MAX_RANK];
  int64_t n; /* element count; -1 when a dim evaluated negative */
} Shape;

struct Interp {
  const IrGraph *g;
  InterpOptions opt;
  Shape *shape;
  double **val;
  bool *set; /* INPUT/PARAM: a value was provided */
  char *err;
  size_t errlen;
};

typedef int (*EvalFn)(Interp *I, int id);

/* ---- helpers ---------------------------------------------------------------------------- */

static int fail(Interp *I, int id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(Interp *I, int id, const char *fmt, ...) {
  if (!I->err || !I->errlen) return -1;
  const IrNode *n = &I->g->nodes[id];
  int k = snprintf(I->err, I->errlen, "%%%d %s%s%s%s: ", id, ir_op_name(n->op),
                   n->name ? " '" : "", n->name ? n->name : "", n->name ? "'" : "");
  if (k < 0 || (size_t)k >= I->errlen) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(I->err + k, I->errlen - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

static const IrNode *node(const Interp *I, int id) { return &I->g->nodes[id]; }
static const double *arg(const Interp *I, int id, int k) { return I->val[node(I, id)->in[k]]; }
static const Shape *argsh(const Interp *I, int id, int k) {
  return &I->shape[node(I, id)->in[k]];
}

static int norm_axis(int axis, int rank) { return axis < 0 ? axis + rank : axis; }

/* round-to-nearest-even to p significant bits with exponent range [emin, emax] */
static double round_prec(double x, int p, int emin, int emax) {
  if (!isfinite(x) || x == 0) return x;
  double a = fabs(x);
  int e;
  frexp(a, &e);
  int E = e - 1 < emin ? emin : e - 1; /* below emin the quantum stays fixed: subnormals */
  double q = ldexp(1.0, E - (p - 1));
  double r = nearbyint(a / q) * q;
  if (r > ldexp(2.0 - ldexp(1.0, 1 - p), emax)) r = INFINITY;
  return copysign(r, x);
}

static double round_dtype(DType dt, double x) {
  switch (dt) {
  case DT_F32: return round_prec(x, 24, -126, 127);
  case DT_F16: return round_prec(x, 11, -14, 15);
  case DT_BF16: return round_prec(x, 8, -126, 127);
  case DT_I32:
  case DT_I64: return trunc(x);
  default: return x;
  }
}

static bool is_float_storage(DType dt) { return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16; }

/* operand k of a GEMM-like node as its tensor-core input: rounded to opt.gemm_round in a
 * copy (*tmp, freed by the caller) when that is a 16-bit type, else the value itself */
static const double *gemm_arg(const Interp *I, int id, int k, double **tmp) {
  const double *v = I->val[I->g->nodes[id].in[k]];
  DType dt = I->opt.gemm_round;
  *tmp = NULL;
  if (dt != DT_BF16 && dt != DT_F16) return v;
  int64_t n = I->shape[I->g->nodes[id].in[k]].n;
  *tmp = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  for (int64_t i = 0; i < n; i++) (*tmp)[i] = round_dtype(dt, v[i]);
  return *tmp;
}

static void round_buffer(DType dt, double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++) v[i] = round_dtype(dt, v[i]);
}

/* Strides of s when broadcast against o (right-aligned, size-1 dims repeat); -1 if they
 * do not broadcast. */
static int bcast_strides(const Shape *s, const Shape *o, int64_t *st) {
  for (int k = 0; k < o->rank; k++) st[k] = 0;
  if (s->rank > o->rank) return -1;
  int64_t acc = 1;
  for (int k = s->rank - 1, ko = o->rank - 1; k >= 0; k--, ko--) {
    if (s->d[k] == o->d[ko]) st[ko] = acc;
    else if (s->d[k] != 1) return -1;
    acc *= s->d[k];
  }
  return 0;
}

static void row_major_strides(const Shape *s, int64_t *st) {
  int64_t acc = 1;
  for (int k = s->rank - 1; k >= 0; k--) {
    st[k] = acc;
    acc *= s->d[k];
  }
}

/* Odometer over a shape that carries up to three strided offsets along, so broadcasting,
 * transposes and reductions cost O(1) per element. */
typedef struct Iter {
  int rank, nop;
  const int64_t *dims;
  int64_t idx[IR_MAX_RANK];
  int64_t st[3][IR_MAX_RANK];
  int64_t off[3];
} Iter;

static void iter_init(Iter *it, const Shape *s, int nop) {
  memset(it, 0, sizeof *it);
  it->rank = s->rank;
  it->dims = s->d;
  it->nop = nop;
}

static void iter_next(Iter *it) {
  for (int k = it->rank - 1; k >= 0; k--) {
    for (int j = 0; j < it->nop; j++) it->off[j] += it->st[j][k];
    if (++it->idx[k] < it->dims[k]) return;
    for (int j = 0; j < it->nop; j++) it->off[j] -= it->st[j][k] * it->dims[k];
    it->idx[k] = 0;
  }
}

/* a shape viewed as [outer, len, inner] around one axis */
static void axis_view(const Shape *s, int axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = *inner = 1;
  for (int k = 0; k < axis; k++) *outer *= s->d[k];
  for (int k = axis + 1; k < s->rank; k++) *inner *= s->d[k];
  *len = s->d[axis];
}

/* reduced-axes mask from attr.axes; naxes == 0 reduces everything. -1 on a bad axis. */
static int reduce_mask(const IrAttr *a, int rank, bool *mask) {
  for (int k = 0; k < rank; k++) mask[k] = a->naxes == 0;
  for (int j = 0; j < a->naxes; j++) {
    int ax = norm_axis(a->axes[j], rank);
    if (ax < 0 || ax >= rank) return -1;
    mask[ax] = true;
  }
  return 0;
}

/* strides into the reduced (kept-dims, row-major) layout, 0 on reduced axes */
static int64_t reduced_strides(const Shape *s, const bool *mask, int64_t *st) {
  int64_t acc = 1, count = 1;
  for (int k = s->rank - 1; k >= 0; k--) {
    if (mask[k]) {
      st[k] = 0;
      count *= s->d[k];
    } else {
      st[k] = acc;
      acc *= s->d[k];
    }
  }
  return count;
}

static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x);
  return e / (1.0 + e);
}

/* ---- leaves ----------------------------------------------------------------------------- */

static int ev_leaf(Interp *I, int id) {
  if (!I->set[id]) return fail(I, id, "no value was provided for this %s",
                               node(I, id)->op == OP_INPUT ? "input" : "parameter");
  return 0;
}

static int ev_const(Interp *I, int id) {
  const IrAttr *a = &node(I, id)->attr;
  for (int64_t i = 0; i < I->shape[id].n; i++) I->val[id][i] = a->data ? a->data[i] : a->value;
  return 0;
}

static int ev_iota(Interp *I, int id) {
  const IrNode *n = node(I, id);
  int64_t outer, len, inner;
  axis_view(&I->shape[id], n->attr.axis, &outer, &len, &inner);
  double *y = I->val[id];
  for (int64_t i = 0; i < I->shape[id].n; i++)
    y[i] = n->attr.init_a + n->attr.init_b * (double)((i / inner) % len);
  return 0;
}

/* ---- elementwise ------------------------------------------------------------------------ */

typedef double (*UnaryFn)(double x, const IrNode *n);
typedef double (*BinaryFn)(double a, double b);

static int unary(Interp *I, int id, UnaryFn f) {
  const Shape *s = argsh(I, id, 0);
  if (s->n != I->shape[id].n)
    return fail(I, id, "operand has %lld elements, result %lld", (long long)s->n,
                (long long)I->shape[id].n);
  const double *x = arg(I, id, 0);
  double *y = I->val[id];
  const IrNode *n = node(I, id);
  for (int64_t i = 0; i < s->n; i++) y[i] = f(x[i], n);
  return 0;
}

/* an iterator over the result carrying each of the first nop operands' broadcast offsets */
static int bcast_iter(Interp *I, int id, int nop, Iter *it) {
  iter_init(it, &I->shape[id], nop);
  for (int k = 0; k < nop; k++)
    if (bcast_strides(argsh(I, id, k), &I->shape[id], it->st[k]))
      return fail(I, id, "operand %d does not broadcast to the result shape", k);
  return 0;
}

static int binary(Interp *I, int id, BinaryFn f) {
  const Shape *o = &I->shape[id];
  Iter it;
  if (bcast_iter(I, id, 2, &it)) return -1;
  const double *a = arg(I, id, 0), *b = arg(I, id, 1);
  double *y = I->val[id];
  for (int64_t i = 0; i < o->n; i++, iter_next(&it)) y[i] = f(a[it.off[0]], b[it.off[1]]);
  return 0;
}

#define UNARY(nm, expr)                                                    \
  static double f_##nm(double x, const IrNode *n) {                        \
    (void)n;                                                               \
    return expr;                                                           \
  }                                                                        \
  static int ev_##nm(Interp *I, int id) { return unary(I, id, f_##nm); }
#define BINARY(nm, expr)                                                   \
  static double f_##nm(double a, double b) { return expr; }                \
  static int ev_##nm(Interp *I, int id) { return binary(I, id, f_##nm); }

static double phi_cdf(double x) { return 0.5 * (1.0 + erf(x / sqrt(2.0))); }
static double phi_pdf(double x) { return exp(-0.5 * x * x) / sqrt(2.0 * M_PI); }

UNARY(neg, -x)
UNARY(exp, exp(x))
UNARY(log, log(x))
UNARY(sqrt, sqrt(x))
UNARY(tanh, tanh(x))
UNARY(sigmoid, sigmoid(x))
UNARY(relu, x > 0 || isnan(x) ? x : 0.0) /* NaN stays NaN (IEEE 754-2019 maximum, PyTorch) */
UNARY(gelu, x * phi_cdf(x))
UNARY(silu, x * sigmoid(x))
UNARY(powc, pow(x, n->attr.value))
UNARY(cast, round_dtype(n->type.dt, x))

BINARY(add, a + b)
BINARY(sub, a - b)
BINARY(mul, a * b)
BINARY(div, a / b)
BINARY(lt, a < b ? 1.0 : 0.0)
BINARY(le, a <= b ? 1.0 : 0.0)
BINARY(gt, a > b ? 1.0 : 0.0)
BINARY(ge, a >= b ? 1.0 : 0.0)
BINARY(eq, a == b ? 1.0 : 0.0)
BINARY(ne, a != b ? 1.0 : 0.0)
BINARY(relu_bwd, b > 0 ? a : 0.0)
BINARY(gelu_bwd, a * (phi_cdf(b) + b * phi_pdf(b)))
BINARY(silu_bwd, a * sigmoid(b) * (1.0 + b * (1.0 - sigmoid(b))))
BINARY(sigmoid_bwd, a * b * (1.0 - b))
BINARY(tanh_bwd, a * (1.0 - b * b))

static int ev_where(Interp *I, int id) {
  const Shape *o = &I->shape[id];
  Iter it;
  if (bcast_iter(I, id, 3, &it)) return -1;
  const double *c = arg(I, id, 0), *a = arg(I, id, 1), *b = arg(I, id, 2);
  double *y = I->val[id];
  for (int64_t i = 0; i < o->n; i++, iter_next(&it))
    y[i] = c[it.off[0]] != 0 ? a[it.off[1]] : b[it.off[2]];
  return 0;
}

/* ---- matmul ----------------------------------------------------------------------------- */

/* one operand's matrix view: rows x cols as used by the product, element strides, batch */
typedef struct MatView {
  int64_t rows, cols, rs, cs;
  Shape batch;
} MatView;

static void mat_view(const Shape *s, bool trans, bool vec_is_row, MatView *m) {
  memset(m, 0, sizeof *m);
  if (s->rank == 1) { /* a row [1,K] on the left, a column [K,1] on the right */
    m->rows = vec_is_row ? 1 : s->d[0];
    m->cols = vec_is_row ? s->d[0] : 1;
    m->rs = vec_is_row ? 0 : 1;
    m->cs = vec_is_row ? 1 : 0;
    m->batch.n = 1;
    return;
  }
  int64_t r = s->d[s->rank - 2], c = s->d[s->rank - 1];
  m->rows = trans ? c : r;
  m->cols = trans ? r : c;
  m->rs = trans ? 1 : c;
  m->cs = trans ? c : 1;
  m->batch.rank = s->rank - 2;
  m->batch.n = 1;
  for (int k = 0; k < m->batch.rank; k++) m->batch.n *= m->batch.d[k] = s->d[k];
}

static int ev_matmul(Interp *I, int id) {
  const IrNode *n = node(I, id);
  const Shape *sa = argsh(I, id, 0), *sb = argsh(I, id, 1), *so = &I->shape[id];
  if (sa->rank < 1 || sb->rank < 1) return fail(I, id, "operands must have rank >= 1");
  MatView a, b;
  mat_view(sa, n->attr.trans_a, true, &a);
  mat_view(sb, n->attr.trans_b, false, &b);
  if (a.cols != b.rows)
    return fail(I, id, "inner dims differ: %lld vs %lld", (long long)a.cols, (long long)b.rows);
  int64_t M = a.rows, K = a.cols, N = b.cols;
  Shape batch = {.rank = so->rank - (sa->rank > 1) - (sb->rank > 1), .n = 1};
  if (batch.rank < 0) return fail(I, id, "result rank %d too small", so->rank);
  for (int k = 0; k < batch.rank; k++) batch.n *= batch.d[k] = so->d[k];
  if (batch.n * M * N != so->n) return fail(I, id, "result shape does not match the operands");
  Iter it;
  iter_init(&it, &batch, 2);
  if (bcast_strides(&a.batch, &batch, it.st[0]) || bcast_strides(&b.batch, &batch, it.st[1]))
    return fail(I, id, "batch dims do not broadcast");
  double *ta, *tb;
  const double *A = gemm_arg(I, id, 0, &ta), *B = gemm_arg(I, id, 1, &tb);
  double *Y = I->val[id];
  for (int64_t bi = 0; bi < batch.n; bi++, iter_next(&it)) {
    const double *Ab = A + it.off[0] * M * K, *Bb = B + it.off[1] * K * N;
    double *Yb = Y + bi * M * N;
    for (int64_t i = 0; i < M; i++)
      for (int64_t k = 0; k < K; k++) {
        double av = Ab[i * a.rs + k * a.cs];
        const double *brow = Bb + k * b.rs;
        for (int64_t j = 0; j < N; j++) Yb[i * N + j] += av * brow[j * b.cs];
      }
  }
  free(ta);
  free(tb);
  return 0;
}

/* ---- data movement ---------------------------------------------------------------------- */

static int ev_transpose(Interp *I, int id) {
  const IrNode *n = node(I, id);
  const Shape *s = argsh(I, id, 0), *o = &I->shape[id];
  if (n->attr.naxes != s->rank || o->rank != s->rank)
    return fail(I, id, "permutation has %d axes for rank %d", n->attr.naxes, s->rank);
  int64_t ist[IR_MAX_RANK];
  row_major_strides(s, ist);
  Iter it;
  iter_init(&it, o, 1);
  for (int k = 0; k < o->rank; k++) {
    int ax = norm_axis(n->attr.axes[k], s->rank);
    if (ax < 0 || ax >= s->rank || s->d[ax] != o->d[k])
      return fail(I, id, "axis %d of the permutation does not match the result", k);
    it.st[0][k] = ist[ax];
  }
  const double *x = arg(I, id, 0);
  for (int64_t i = 0; i < o->n; i++, iter_next(&it)) I->val[id][i] = x[it.off[0]];
  return 0;
}

static int ev_reshape(Interp *I, int id) {
  const Shape *s = argsh(I, id, 0);
  if (s->n != I->shape[id].n)
    return fail(I, id, "reshape of %lld elements into %lld", (long long)s->n,
                (long long)I->shape[id].n);
  memcpy(I->val[id], arg(I, id, 0), (size_t)s->n * sizeof(double));
  return 0;
}

static int ev_broadcast(Interp *I, int id) {
  const Shape *o = &I->shape[id];
  Iter it;
  iter_init(&it, o, 1);
  if (bcast_strides(argsh(I, id, 0), o, it.st[0]))
    return fail(I, id, "operand does not broadcast to the result shape");
  const double *x = arg(I, id, 0);
  for (int64_t i = 0; i < o->n; i++, iter_next(&it)) I->val[id][i] = x[it.off[0]];
  return 0;
}

static int ev_concat(Interp *I, int id) {
  const IrNode *n = node(I, id);
  const Shape *o = &I->shape[id];
  int axis = norm_axis(n->attr.axis, o->rank);
  if (axis < 0 || axis >= o->rank) return fail(I, id, "axis %d out of range", n->attr.axis);
  int64_t outer, len, inner, pos = 0;
  axis_view(o, axis, &outer, &len, &inner);
  for (int k = 0; k < n->nin; k++) {
    const Shape *s = argsh(I, id, k);
    bool ok = s->rank == o->rank;
    for (int j = 0; ok && j < o->rank; j++) ok = j == axis || s->d[j] == o->d[j];
    if (!ok || pos + s->d[axis] > len)
      return fail(I, id, "operand %d does not fit the result shape", k);
    int64_t chunk = s->d[axis] * inner;
    const double *x = arg(I, id, k);
    for (int64_t r = 0; r < outer; r++)
      memcpy(I->val[id] + r * len * inner + pos * inner, x + r * chunk,
             (size_t)chunk * sizeof(double));
    pos += s->d[axis];
  }
  if (pos != len) return fail(I, id, "operands cover %lld of %lld", (long long)pos, (long long)len);
  return 0;
}

/* copy between a big [outer, blen, inner] and a small [outer, slen, inner] at start */
static int slice_copy(Interp *I, int id, const Shape *big, const Shape *small, bool to_small,
                      const double *src, double *dst) {
  const IrNode *n = node(I, id);
  int axis = norm_axis(n->attr.axis, big->rank);
  if (axis < 0 || axis >= big->rank || small->rank != big->rank)
    return fail(I, id, "axis %d out of range", n->attr.axis);
  int64_t start = n->attr.start ? dim_eval(I->g->dims, n->attr.start, NULL) : 0;
  int64_t outer, blen, inner, o2, slen, i2;
  axis_view(big, axis, &outer, &blen, &inner);
  axis_view(small, axis, &o2, &slen, &i2);
  if (o2 != outer || i2 != inner) return fail(I, id, "shapes differ outside the axis");
  if (start < 0 || start + slen > blen)
    return fail(I, id, "range [%lld, %lld) outside [0, %lld)", (long long)start,
                (long long)(start + slen), (long long)blen);
  for (int64_t r = 0; r < outer; r++) {
    int64_t b = (r * blen + start) * inner, s = r * slen * inner;
    if (to_small) memcpy(dst + s, src + b, (size_t)(slen * inner) * sizeof(double));
    else memcpy(dst + b, src + s, (size_t)(slen * inner) * sizeof(double));
  }
  return 0;
}

static int ev_slice(Interp *I, int id) {
  return slice_copy(I, id, argsh(I, id, 0), &I->shape[id], true, arg(I, id, 0), I->val[id]);
}

static int ev_slice_bwd(Interp *I, int id) {
  return slice_copy(I, id, &I->shape[id], argsh(I, id, 0), false, arg(I, id, 0), I->val[id]);
}

/* ---- reductions ------------------------------------------------------------------------- */

/* sets up an iterator over the input whose offset 0 walks the reduced layout */
static int reduce_setup(Interp *I, int id, const Shape *s, int64_t reduced_n, Iter *it,
                        int64_t *count) {
  bool mask[IR_MAX_RANK];
  if (reduce_mask(&node(I, id)->attr, s->rank, mask))
    return fail(I, id, "reduction axis out of range");
  iter_init(it, s, 1);
  *count = reduced_strides(s, mask, it->st[0]);
  if (*count * reduced_n != s->n)
    return fail(I, id, "reduced shape has %lld elements, expected %lld", (long long)reduced_n,
                (long long)(*count ? s->n / *count : 0));
  return 0;
}

static int ev_reduce(Interp *I, int id) {
  OpKind op = node(I, id)->op;
  const Shape *s = argsh(I, id, 0);
  int64_t rn = I->shape[id].n, count;
  Iter it;
  if (reduce_setup(I, id, s, rn, &it, &count)) return -1;
  const double *x = arg(I, id, 0);
  double *y = I->val[id];
  if (op == OP_MAX)
    for (int64_t j = 0; j < rn; j++) y[j] = -INFINITY;
  Iter start = it;
  for (int64_t i = 0; i < s->n; i++, iter_next(&it)) {
    double *o = &y[it.off[0]];
    if (op != OP_MAX) *o += x[i];
    else if (x[i] > *o || isnan(x[i])) *o = x[i];
  }
  if (op == OP_SUM || op == OP_MAX) return 0;
  for (int64_t j = 0; j < rn; j++) y[j] /= (double)count;
  if (op == OP_MEAN) return 0;
  double *mean = xmalloc((size_t)rn * sizeof(double)); /* VAR: second pass around the mean */
  memcpy(mean, y, (size_t)rn * sizeof(double));
  memset(y, 0, (size_t)rn * sizeof(double));
  it = start;
  for (int64_t i = 0; i < s->n; i++, iter_next(&it)) {
    double d = x[i] - mean[it.off[0]];
    y[it.off[0]] += d * d;
  }
  free(mean);
  double denom = (double)(count - node(I, id)->attr.correction);
  for (int64_t j = 0; j < rn; j++) y[j] /= denom;
  return 0;
}

static int ev_max_bwd(Interp *I, int id) {
  const Shape *sx = argsh(I, id, 1);
  int64_t rn = argsh(I, id, 0)->n, count;
  if (argsh(I, id, 2)->n != rn || I->shape[id].n != sx->n)
    return fail(I, id, "dy, y and the result do not match x and its reduction");
  Iter it;
  if (reduce_setup(I, id, sx, rn, &it, &count)) return -1;
  const double *dy = arg(I, id, 0), *x = arg(I, id, 1), *y = arg(I, id, 2);
  for (int64_t i = 0; i < sx->n; i++, iter_next(&it))
    I->val[id][i] = x[i] == y[it.off[0]] ? dy[it.off[0]] : 0.0;
  return 0;
}

/* ---- softmax family --------------------------------------------------------------------- */

typedef struct AxisRun {
  int64_t outer, len, inner;
} AxisRun;

static int axis_setup(Interp *I, int id, int nargs, AxisRun *r) {
  const Shape *o = &I->shape[id];
  int axis = norm_axis(node(I, id)->attr.axis, o->rank);
  if (axis < 0 || axis >= o->rank) return fail(I, id, "axis %d out of range", node(I, id)->attr.axis);
  for (int k = 0; k < nargs; k++)
    if (argsh(I, id, k)->n != o->n) return fail(I, id, "operand %d has a different size", k);
  axis_view(o, axis, &r->outer, &r->len, &r->inner);
  return 0;
}

static int ev_softmax(Interp *I, int id) {
  AxisRun r = {0, 0, 0}; /* set by axis_setup; initialized for GCC -O3 -Wmaybe-uninitialized */
  if (axis_setup(I, id, 1, &r)) return -1;
  bool logsm = node(I, id)->op == OP_LOG_SOFTMAX;
  const double *x = arg(I, id, 0);
  double *y = I->val[id];
  for (int64_t o = 0; o < r.outer; o++)
    for (int64_t q = 0; q < r.inner; q++) {
      int64_t b = o * r.len * r.inner + q;
      double m = -INFINITY, s = 0;
      for (int64_t l = 0; l < r.len; l++) m = fmax(m, x[b + l * r.inner]);
      for (int64_t l = 0; l < r.len; l++) s += exp(x[b + l * r.inner] - m);
      for (int64_t l = 0; l < r.len; l++) {
        double v = x[b + l * r.inner] - m;
        y[b + l * r.inner] = logsm ? v - log(s) : exp(v) / s;
      }
    }
  return 0;
}

static int ev_softmax_bwd(Interp *I, int id) {
  AxisRun r = {0, 0, 0}; /* set by axis_setup; initialized for GCC -O3 -Wmaybe-uninitialized */
  if (axis_setup(I, id, 2, &r)) return -1;
  bool logsm = node(I, id)->op == OP_LOG_SOFTMAX_BWD;
  const double *dy = arg(I, id, 0), *y = arg(I, id, 1);
  double *dx = I->val[id];
  for (int64_t o = 0; o < r.outer; o++)
    for (int64_t q = 0; q < r.inner; q++) {
      int64_t b = o * r.len * r.inner + q;
      double s = 0;
      for (int64_t l = 0; l < r.len; l++) {
        int64_t i = b + l * r.inner;
        s += logsm ? dy[i] : dy[i] * y[i];
      }
      for (int64_t l = 0; l < r.len; l++) {
        int64_t i = b + l * r.inner;
        dx[i] = logsm ? dy[i] - exp(y[i]) * s : y[i] * (dy[i] - s);
      }
    }
  return 0;
}

/* ---- convolution ------------------------------------------------------------------------ */

typedef struct ConvGeom {
  int64_t N, C, H, W, O, OH, OW, KH, KW, G;
  int64_t sh, sw, ph, pw, dh, dw;
} ConvGeom;

static int64_t or1(int v) { return v > 0 ? v : 1; }

/* x[N,C,H,W], w[O,C/G,KH,KW], y[N,O,OH,OW], whichever of them is the result */
static int conv_geom(Interp *I, int id, const Shape *x, const Shape *w, const Shape *y,
                     ConvGeom *g) {
  const IrAttr *a = &node(I, id)->attr;
  if (x->rank != 4 || w->rank != 4 || y->rank != 4)
    return fail(I, id, "conv2d needs rank-4 input, filter and output");
  *g = (ConvGeom){x->d[0], x->d[1], x->d[2], x->d[3], w->d[0], y->d[2], y->d[3], w->d[2],
                  w->d[3], or1(a->groups), or1(a->stride[0]), or1(a->stride[1]), a->pad[0],
                  a->pad[1], or1(a->dilation[0]), or1(a->dilation[1])};
  if (y->d[0] != g->N || y->d[1] != g->O || g->C % g->G || g->O % g->G ||
      w->d[1] * g->G != g->C)
    return fail(I, id, "input, filter and output shapes disagree (groups=%lld)", (long long)g->G);
  return 0;
}

/* output columns ow whose input column ow*s - p + k*d lies in [0, W): [lo, hi) */
static void valid_cols(int64_t OW, int64_t W, int64_t s, int64_t p, int64_t kd, int64_t *lo,
                       int64_t *hi) {
  int64_t t = p - kd, u = W - 1 + p - kd;
  *lo = t <= 0 ? 0 : (t + s - 1) / s;
  *hi = u < 0 ? 0 : u / s + 1;
  if (*hi > OW) *hi = OW;
  if (*lo > *hi) *lo = *hi;
}

enum { CONV_FWD, CONV_DATA, CONV_FILTER };

/* y[i*sy] += a * x[i*sx]; the unit-stride case (every stride-1 conv) is unrolled because it
 * carries nearly all of the work */
static void axpy(int64_t n, double a, const double *restrict x, int64_t sx, double *restrict y,
                 int64_t sy) {
  int64_t i = 0;
  if (sx == 1 && sy == 1)
    for (; i + 4 <= n; i += 4) {
      y[i] += a * x[i];
      y[i + 1] += a * x[i + 1];
      y[i + 2] += a * x[i + 2];
      y[i + 3] += a * x[i + 3];
    }
  for (; i < n; i++) y[i * sy] += a * x[i * sx];
}

static double dot(int64_t n, const double *x, int64_t sx, const double *y) {
  double acc = 0;
  for (int64_t i = 0; i < n; i++) acc += x[i * sx] * y[i];
  return acc;
}

/* One loop nest for the three convolution ops: for every (n, o, c, kh, kw, oh) the row
 * pairing x[n,c,ih,:] with y[n,o,oh,:] is contiguous in ow, so each mode is a dot or axpy. */
static void conv_loops(const ConvGeom *g, int mode, const double *x, const double *w,
                       const double *y, double *out) {
  int64_t Cg = g->C / g->G, Og = g->O / g->G;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t o = 0; o < g->O; o++)
      for (int64_t cc = 0; cc < Cg; cc++) {
        int64_t c = (o / Og) * Cg + cc;
        for (int64_t kh = 0; kh < g->KH; kh++)
          for (int64_t kw = 0; kw < g->KW; kw++) {
            int64_t wi = ((o * Cg + cc) * g->KH + kh) * g->KW + kw, lo, hi;
            valid_cols(g->OW, g->W, g->sw, g->pw, kw * g->dw, &lo, &hi);
            double wv = mode == CONV_FILTER ? 0.0 : w[wi];
            for (int64_t oh = 0; oh < g->OH; oh++) {
              int64_t ih = oh * g->sh - g->ph + kh * g->dh;
              if (ih < 0 || ih >= g->H || lo >= hi) continue;
              /* x[n,c,ih, lo*s - p + kw*d] and y[n,o,oh,lo] */
              int64_t xi = ((n * g->C + c) * g->H + ih) * g->W + lo * g->sw - g->pw + kw * g->dw;
              int64_t yi = ((n * g->O + o) * g->OH + oh) * g->OW + lo;
              if (mode == CONV_FWD) axpy(hi - lo, wv, x + xi, g->sw, out + yi, 1);
              else if (mode == CONV_DATA) axpy(hi - lo, wv, y + yi, 1, out + xi, g->sw);
              else out[wi] += dot(hi - lo, x + xi, g->sw, y + yi);
            }
          }
      }
}

/* conv_loops over node id's operands, rounded as gemm_round says unless the convolution is
 * depthwise (one input channel per group: direct f32 kernels on the GPU) */
static void conv_rounded(Interp *I, int id, const ConvGeom *g, int mode) {
  double *t0 = NULL, *t1 = NULL;
  bool round = !(g->G > 1 && g->C / g->G == 1);
  const double *a0 = round ? gemm_arg(I, id, 0, &t0) : arg(I, id, 0);
  const double *a1 = round ? gemm_arg(I, id, 1, &t1) : arg(I, id, 1);
  if (mode == CONV_FWD) conv_loops(g, CONV_FWD, a0, a1, NULL, I->val[id]);
  else if (mode == CONV_DATA) conv_loops(g, CONV_DATA, NULL, a1, a0, I->val[id]);
  else conv_loops(g, CONV_FILTER, a0, NULL, a1, I->val[id]);
  free(t0);
  free(t1);
}

static int ev_conv2d(Interp *I, int id) {
  ConvGeom g;
  if (conv_geom(I, id, argsh(I, id, 0), argsh(I, id, 1), &I->shape[id], &g)) return -1;
  conv_rounded(I, id, &g, CONV_FWD);
  return 0;
}

static int ev_conv2d_bwd_data(Interp *I, int id) {
  ConvGeom g;
  if (conv_geom(I, id, &I->shape[id], argsh(I, id, 1), argsh(I, id, 0), &g)) return -1;
  conv_rounded(I, id, &g, CONV_DATA);
  return 0;
}

static int ev_conv2d_bwd_filter(Interp *I, int id) {
  ConvGeom g;
  if (conv_geom(I, id, argsh(I, id, 0), &I->shape[id], argsh(I, id, 1), &g)) return -1;
  conv_rounded(I, id, &g, CONV_FILTER);
  return 0;
}

/* ---- pooling ---------------------------------------------------------------------------- */

/* x[N,C,H,W] and y[N,C,OH,OW]; the window geometry goes in g (O = C, G unused) */
static int pool_geom(Interp *I, int id, const Shape *x, const Shape *y, ConvGeom *g) {
  const IrAttr *a = &node(I, id)->attr;
  if (x->rank != 4 || y->rank != 4 || x->d[0] != y->d[0] || x->d[1] != y->d[1])
    return fail(I, id, "pooling needs [N,C,H,W] input and output with equal N and C");
  if (a->kernel[0] <= 0 || a->kernel[1] <= 0) return fail(I, id, "kernel size must be positive");
  *g = (ConvGeom){x->d[0], x->d[1], x->d[2], x->d[3], x->d[1], y->d[2], y->d[3], a->kernel[0],
                  a->kernel[1], 1, a->stride[0] > 0 ? a->stride[0] : a->kernel[0],
                  a->stride[1] > 0 ? a->stride[1] : a->kernel[1], a->pad[0], a->pad[1],
                  or1(a->dilation[0]), or1(a->dilation[1])};
  return 0;
}

/* index into x of the first strict maximum of window (p, oh, ow) of plane p = n*C + c;
 * -1 when the window holds nothing above -inf */
static int64_t pool_argmax(const ConvGeom *g, const double *x, int64_t p, int64_t oh,
                           int64_t ow) {
  int64_t best = -1;
  double m = -INFINITY;
  for (int64_t kh = 0; kh < g->KH; kh++) {
    int64_t ih = oh * g->sh - g->ph + kh * g->dh;
    if (ih < 0 || ih >= g->H) continue;
    for (int64_t kw = 0; kw < g->KW; kw++) {
      int64_t iw = ow * g->sw - g->pw + kw * g->dw;
      if (iw < 0 || iw >= g->W) continue;
      int64_t i = (p * g->H + ih) * g->W + iw;
      if (x[i] > m || (isnan(x[i]) && !isnan(m))) {
        m = x[i];
        best = i;
      }
    }
  }
  return best;
}

/* sum of the in-bounds elements of one window (padding contributes zero) */
static double pool_window_sum(const ConvGeom *g, const double *x, int64_t p, int64_t oh,
                              int64_t ow) {
  double s = 0;
  for (int64_t kh = 0; kh < g->KH; kh++) {
    int64_t ih = oh * g->sh - g->ph + kh * g->dh;
    if (ih < 0 || ih >= g->H) continue;
    for (int64_t kw = 0; kw < g->KW; kw++) {
      int64_t iw = ow * g->sw - g->pw + kw * g->dw;
      if (iw >= 0 && iw < g->W) s += x[(p * g->H + ih) * g->W + iw];
    }
  }
  return s;
}

static void pool_window_add(const ConvGeom *g, double *dx, int64_t p, int64_t oh, int64_t ow,
                            double v) {
  for (int64_t kh = 0; kh < g->KH; kh++) {
    int64_t ih = oh * g->sh - g->ph + kh * g->dh;
    if (ih < 0 || ih >= g->H) continue;
    for (int64_t kw = 0; kw < g->KW; kw++) {
      int64_t iw = ow * g->sw - g->pw + kw * g->dw;
      if (iw >= 0 && iw < g->W) dx[(p * g->H + ih) * g->W + iw] += v;
    }
  }
}

/* the divisor of average-pooling window (oh, ow), as PyTorch: the window clipped to the
 * padded input (count_include_pad), or to the input itself (exclude_pad) */
static double pool_divisor(const ConvGeom *g, bool exclude_pad, int64_t oh, int64_t ow) {
  int64_t hs = oh * g->sh - g->ph, ws = ow * g->sw - g->pw;
  int64_t he = hs + g->KH < g->H + g->ph ? hs + g->KH : g->H + g->ph;
  int64_t we = ws + g->KW < g->W + g->pw ? ws + g->KW : g->W + g->pw;
  if (exclude_pad) {
    hs = hs > 0 ? hs : 0, ws = ws > 0 ? ws : 0;
    he = he < g->H ? he : g->H, we = we < g->W ? we : g->W;
  }
  return (double)((he - hs) * (we - ws));
}

static int ev_pool(Interp *I, int id) {
  ConvGeom g;
  if (pool_geom(I, id, argsh(I, id, 0), &I->shape[id], &g)) return -1;
  bool is_max = node(I, id)->op == OP_MAXPOOL, excl = node(I, id)->attr.exclude_pad;
  const double *x = arg(I, id, 0);
  double *y = I->val[id];
  for (int64_t p = 0; p < g.N * g.C; p++)
    for (int64_t oh = 0; oh < g.OH; oh++)
      for (int64_t ow = 0; ow < g.OW; ow++) {
        double *o = &y[(p * g.OH + oh) * g.OW + ow];
        if (is_max) {
          int64_t i = pool_argmax(&g, x, p, oh, ow);
          *o = i < 0 ? -INFINITY : x[i];
        } else {
          *o = pool_window_sum(&g, x, p, oh, ow) / pool_divisor(&g, excl, oh, ow);
        }
      }
  return 0;
}

static int ev_maxpool_bwd(Interp *I, int id) {
  ConvGeom g;
  if (argsh(I, id, 1)->n != I->shape[id].n) return fail(I, id, "x and the result differ in size");
  if (pool_geom(I, id, argsh(I, id, 1), argsh(I, id, 0), &g)) return -1;
  const double *dy = arg(I, id, 0), *x = arg(I, id, 1);
  for (int64_t p = 0; p < g.N * g.C; p++)
    for (int64_t oh = 0; oh < g.OH; oh++)
      for (int64_t ow = 0; ow < g.OW; ow++) {
        int64_t i = pool_argmax(&g, x, p, oh, ow);
        if (i >= 0) I->val[id][i] += dy[(p * g.OH + oh) * g.OW + ow];
      }
  return 0;
}

static int ev_avgpool_bwd(Interp *I, int id) {
  ConvGeom g;
  if (pool_geom(I, id, &I->shape[id], argsh(I, id, 0), &g)) return -1;
  const double *dy = arg(I, id, 0);
  bool excl = node(I, id)->attr.exclude_pad;
  for (int64_t p = 0; p < g.N * g.C; p++)
    for (int64_t oh = 0; oh < g.OH; oh++)
      for (int64_t ow = 0; ow < g.OW; ow++)
        pool_window_add(&g, I->val[id], p, oh, ow,
                        dy[(p * g.OH + oh) * g.OW + ow] / pool_divisor(&g, excl, oh, ow));
  return 0;
}

/* ---- normalization ---------------------------------------------------------------------- */

/* x [N,C] or [N,C,H,W] seen as [N, C, S] */
typedef struct BnView {
  int64_t N, C, S, M;
} BnView;

static int bn_view(Interp *I, int id, const Shape *x, BnView *v) {
  if (x->rank != 2 && x->rank != 4) return fail(I, id, "batchnorm input must be rank 2 or 4");
  v->N = x->d[0];
  v->C = x->d[1];
  v->S = x->rank == 4 ? x->d[2] * x->d[3] : 1;
  v->M = v->N * v->S;
  return 0;
}

/* per-channel batch mean and inverse standard deviation (biased variance) */
static void bn_stats(const BnView *v, const double *x, double eps, double *mean, double *invstd) {
  for (int64_t c = 0; c < v->C; c++) {
    double s = 0, q = 0;
    for (int64_t n = 0; n < v->N; n++)
      for (int64_t k = 0; k < v->S; k++) s += x[(n * v->C + c) * v->S + k];
    double m = s / (double)v->M;
    for (int64_t n = 0; n < v->N; n++)
      for (int64_t k = 0; k < v->S; k++) {
        double d = x[(n * v->C + c) * v->S + k] - m;
        q += d * d;
      }
    mean[c] = m;
    invstd[c] = 1.0 / sqrt(q / (double)v->M + eps);
  }
}

static int check_sizes(Interp *I, int id, int from, int to, int64_t want) {
  for (int k = from; k < to; k++)
    if (argsh(I, id, k)->n != want)
      return fail(I, id, "operand %d has %lld elements, expected %lld", k,
                  (long long)argsh(I, id, k)->n, (long long)want);
  return 0;
}

static int ev_batchnorm(Interp *I, int id) {
  const IrNode *n = node(I, id);
  BnView v = {0};
  if (bn_view(I, id, argsh(I, id, 0), &v) || check_sizes(I, id, 1, 5, v.C)) return -1;
  const double *x = arg(I, id, 0), *gam = arg(I, id, 1), *bet = arg(I, id, 2);
  double *mean = xmalloc((size_t)(2 * v.C + 1) * sizeof(double)), *inv = mean + v.C;
  if (n->attr.train) {
    bn_stats(&v, x, n->attr.value, mean, inv);
  } else {
    for (int64_t c = 0; c < v.C; c++) {
      mean[c] = arg(I, id, 3)[c];
      inv[c] = 1.0 / sqrt(arg(I, id, 4)[c] + n->attr.value);
    }
  }
  for (int64_t b = 0; b < v.N; b++)
    for (int64_t c = 0; c < v.C; c++)
      for (int64_t k = 0; k < v.S; k++) {
        int64_t i = (b * v.C + c) * v.S + k;
        I->val[id][i] = gam[c] * (x[i] - mean[c]) * inv[c] + bet[c];
      }
  free(mean);
  return 0;
}

/* BATCHNORM_BWD (want_dx) or BN_DGAMMA from per-channel sums of dy and dy*xhat */
static int ev_bn_grad(Interp *I, int id) {
  bool want_dx = node(I, id)->op == OP_BATCHNORM_BWD;
  BnView v = {0};
  const Shape *sx = argsh(I, id, 1);
  if (bn_view(I, id, sx, &v) || check_sizes(I, id, 0, 1, sx->n)) return -1;
  bool ok = want_dx ? argsh(I, id, 2)->n == v.C && I->shape[id].n == sx->n
                    : I->shape[id].n == v.C;
  if (!ok) return fail(I, id, "gamma or the result does not match x");
  const double *dy = arg(I, id, 0), *x = arg(I, id, 1);
  double *mean = xmalloc((size_t)(2 * v.C + 1) * sizeof(double)), *inv = mean + v.C;
  bn_stats(&v, x, node(I, id)->attr.value, mean, inv);
  for (int64_t c = 0; c < v.C; c++) {
    double sdy = 0, sdyx = 0, M = (double)v.M;
    for (int64_t b = 0; b < v.N; b++)
      for (int64_t k = 0; k < v.S; k++) {
        int64_t i = (b * v.C + c) * v.S + k;
        sdy += dy[i];
        sdyx += dy[i] * (x[i] - mean[c]) * inv[c];
      }
    if (!want_dx) {
      I->val[id][c] = sdyx;
      continue;
    }
    double gsc = arg(I, id, 2)[c] * inv[c] / M;
    for (int64_t b = 0; b < v.N; b++)
      for (int64_t k = 0; k < v.S; k++) {
        int64_t i = (b * v.C + c) * v.S + k;
        I->val[id][i] = gsc * (M * dy[i] - sdy - (x[i] - mean[c]) * inv[c] * sdyx);
      }
  }
  free(mean);
  return 0;
}

/* x seen as [R, D] with D the product of the trailing attr.naxes dims */
static int ln_view(Interp *I, int id, const Shape *x, int64_t *R, int64_t *D) {
  int na = node(I, id)->attr.naxes > 0 ? node(I, id)->attr.naxes : 1;
  if (na > x->rank) return fail(I, id, "normalizes %d axes of a rank-%d input", na, x->rank);
  *D = 1;
  for (int k = x->rank - na; k < x->rank; k++) *D *= x->d[k];
  *R = *D ? x->n / *D : 0;
  return 0;
}

static void ln_row_stats(const double *x, int64_t D, double eps, double *mean, double *inv) {
  double s = 0, q = 0;
  for (int64_t j = 0; j < D; j++) s += x[j];
  *mean = s / (double)D;
  for (int64_t j = 0; j < D; j++) q += (x[j] - *mean) * (x[j] - *mean);
  *inv = 1.0 / sqrt(q / (double)D + eps);
}

static int ev_layernorm(Interp *I, int id) {
  int64_t R = 0, D = 0; /* set by ln_view */
  if (ln_view(I, id, argsh(I, id, 0), &R, &D) || check_sizes(I, id, 1, 3, D)) return -1;
  const double *x = arg(I, id, 0), *gam = arg(I, id, 1), *bet = arg(I, id, 2);
  double eps = node(I, id)->attr.value, m, inv;
  for (int64_t r = 0; r < R; r++) {
    ln_row_stats(x + r * D, D, eps, &m, &inv);
    for (int64_t j = 0; j < D; j++)
      I->val[id][r * D + j] = (x[r * D + j] - m) * inv * gam[j] + bet[j];
  }
  return 0;
}

static int ev_layernorm_bwd(Interp *I, int id) {
  int64_t R = 0, D = 0; /* set by ln_view */
  const Shape *sx = argsh(I, id, 1);
  if (ln_view(I, id, sx, &R, &D) || check_sizes(I, id, 0, 1, sx->n) ||
      check_sizes(I, id, 2, 3, D))
    return -1;
  const double *dy = arg(I, id, 0), *x = arg(I, id, 1), *gam = arg(I, id, 2);
  double eps = node(I, id)->attr.value, m, inv;
  for (int64_t r = 0; r < R; r++) {
    const double *xr = x + r * D, *dr = dy + r * D;
    ln_row_stats(xr, D, eps, &m, &inv);
    double s1 = 0, s2 = 0;
    for (int64_t j = 0; j < D; j++) {
      s1 += gam[j] * dr[j];
      s2 += gam[j] * dr[j] * (xr[j] - m) * inv;
    }
    for (int64_t j = 0; j < D; j++)
      I->val[id][r * D + j] =
          inv / (double)D * ((double)D * gam[j] * dr[j] - s1 - (xr[j] - m) * inv * s2);
  }
  return 0;
}

static int ev_ln_dgamma(Interp *I, int id) {
  int64_t R = 0, D = 0; /* set by ln_view */
  const Shape *sx = argsh(I, id, 1);
  if (ln_view(I, id, sx, &R, &D) || check_sizes(I, id, 0, 1, sx->n)) return -1;
  if (I->shape[id].n != D) return fail(I, id, "result must have %lld elements", (long long)D);
  const double *dy = arg(I, id, 0), *x = arg(I, id, 1);
  double eps = node(I, id)->attr.value, m, inv;
  for (int64_t r = 0; r < R; r++) {
    ln_row_stats(x + r * D, D, eps, &m, &inv);
    for (int64_t j = 0; j < D; j++) I->val[id][j] += dy[r * D + j] * (x[r * D + j] - m) * inv;
  }
  return 0;
}

/* ---- dropout ---------------------------------------------------------------------------- */

static int ev_dropout(Interp *I, int id) {
  const IrNode *n = node(I, id);
  const Shape *s = argsh(I, id, 0);
  if (s->n != I->shape[id].n) return fail(I, id, "operand and result differ in size");
  const double *x = arg(I, id, 0);
  double *y = I->val[id], p = n->attr.value;
  if (!n->attr.train) {
    memcpy(y, x, (size_t)s->n * sizeof(double));
    return 0;
  }
  uint64_t stream = n->attr.seed + ((uint64_t)I->opt.step << 32);
  for (int64_t i = 0; i < s->n; i++)
    y[i] = interp_philox_uniform(I->opt.seed, stream, (uint64_t)i) >= p ? x[i] / (1.0 - p) : 0.0;
  return 0;
}

/* ---- embedding -------------------------------------------------------------------------- */

static int check_index(Interp *I, int id, double v, int64_t pos, int64_t V) {
  if (v >= 0 && v < (double)V && v == floor(v)) return 0;
  return fail(I, id, "index %.17g at position %lld is outside [0, %lld)", v, (long long)pos,
              (long long)V);
}

static int ev_embedding(Interp *I, int id) {
  const Shape *st = argsh(I, id, 0), *si = argsh(I, id, 1);
  if (st->rank != 2) return fail(I, id, "table must be rank 2");
  int64_t V = st->d[0], D = st->d[1];
  if (I->shape[id].n != si->n * D) return fail(I, id, "result must be idx.shape + [%lld]", (long long)D);
  const double *tab = arg(I, id, 0), *idx = arg(I, id, 1);
  for (int64_t p = 0; p < si->n; p++) {
    if (check_index(I, id, idx[p], p, V)) return -1;
    memcpy(I->val[id] + p * D, tab + (int64_t)idx[p] * D, (size_t)D * sizeof(double));
  }
  return 0;
}

static int ev_embedding_bwd(Interp *I, int id) {
  const Shape *so = &I->shape[id], *si = argsh(I, id, 1);
  if (so->rank != 2) return fail(I, id, "result must be a rank-2 table");
  int64_t V = so->d[0], D = so->d[1];
  if (argsh(I, id, 0)->n != si->n * D) return fail(I, id, "dy must be idx.shape + [%lld]", (long long)D);
  const double *dy = arg(I, id, 0), *idx = arg(I, id, 1);
  for (int64_t p = 0; p < si->n; p++) {
    if (check_index(I, id, idx[p], p, V)) return -1;
    double *row = I->val[id] + (int64_t)idx[p] * D;
    for (int64_t j = 0; j < D; j++) row[j] += dy[p * D + j];
  }
  return 0;
}

/* ---- losses ----------------------------------------------------------------------------- */

/* logits [N,C] and labels [N] checked; returns 0 and fills N, C */
static bool ce_ignored(const IrAttr *a, double label) {
  return a->ignore && label == (double)a->ignore_index;
}

/* shapes and labels; *count = the labels that are not ignored (the mean's denominator) */
static int ce_setup(Interp *I, int id, int kl, int64_t *N, int64_t *C, int64_t *count) {
  const Shape *sl = argsh(I, id, kl);
  if (sl->rank != 2) return fail(I, id, "logits must be [N,C]");
  *N = sl->d[0];
  *C = sl->d[1];
  if (argsh(I, id, kl + 1)->n != *N) return fail(I, id, "labels must have %lld elements", (long long)*N);
  const double *lab = arg(I, id, kl + 1);
  *count = 0;
  for (int64_t n = 0; n < *N; n++) {
    if (ce_ignored(&node(I, id)->attr, lab[n])) continue;
    ++*count;
    if (!(lab[n] >= 0 && lab[n] < (double)*C && lab[n] == floor(lab[n])))
      return fail(I, id, "label %.17g at position %lld is outside [0, %lld)", lab[n],
                  (long long)n, (long long)*C);
  }
  return 0;
}

static double row_logsumexp(const double *x, int64_t C) {
  double m = -INFINITY, s = 0;
  for (int64_t c = 0; c < C; c++) m = fmax(m, x[c]);
  for (int64_t c = 0; c < C; c++) s += exp(x[c] - m);
  return m + log(s);
}

/* PyTorch's definition: with smoothing eps, the target puts 1 - eps on the label and eps/C
 * on every class; the mean runs over the labels that are not ignored (0/0 = NaN when all are) */
static int ev_cross_entropy(Interp *I, int id) {
  int64_t N, C, count;
  if (ce_setup(I, id, 0, &N, &C, &count)) return -1;
  const double *x = arg(I, id, 0), *lab = arg(I, id, 1);
  const IrAttr *a = &node(I, id)->attr;
  double s = 0, eps = a->value;
  for (int64_t n = 0; n < N; n++) {
    if (ce_ignored(a, lab[n])) continue;
    const double *r = x + n * C;
    double lse = row_logsumexp(r, C), mean = 0;
    for (int64_t c = 0; c < C; c++) mean += r[c] / (double)C;
    s += (1 - eps) * (lse - r[(int64_t)lab[n]]) + eps * (lse - mean);
  }
  I->val[id][0] = s / (double)count;
  return 0;
}

static int ev_ce_bwd(Interp *I, int id) {
  int64_t N, C, count;
  if (ce_setup(I, id, 1, &N, &C, &count)) return -1;
  if (argsh(I, id, 0)->n != 1 || I->shape[id].n != N * C)
    return fail(I, id, "dloss must be a scalar and the result [N,C]");
  double g = arg(I, id, 0)[0] / (double)count;
  const double *x = arg(I, id, 1), *lab = arg(I, id, 2);
  const IrAttr *a = &node(I, id)->attr;
  double eps = a->value;
  for (int64_t n = 0; n < N; n++) {
    if (ce_ignored(a, lab[n])) continue; /* the row stays 0 */
    double lse = row_logsumexp(x + n * C, C);
    for (int64_t c = 0; c < C; c++)
      I->val[id][n * C + c] = g * (exp(x[n * C + c] - lse) - eps / (double)C -
                                   (c == (int64_t)lab[n] ? 1.0 - eps : 0.0));
  }
  return 0;
}

static int ev_mse(Interp *I, int id) {
  int64_t n = argsh(I, id, 0)->n;
  if (check_sizes(I, id, 1, 2, n)) return -1;
  const double *a = arg(I, id, 0), *b = arg(I, id, 1);
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (a[i] - b[i]) * (a[i] - b[i]);
  I->val[id][0] = s / (double)n;
  return 0;
}

/* ---- effects ---------------------------------------------------------------------------- */

static int ev_assign(Interp *I, int id) {
  int p = node(I, id)->in[0];
  if (I->g->nodes[p].op != OP_PARAM) return fail(I, id, "target %%%d is not a parameter", p);
  if (check_sizes(I, id, 1, 2, I->shape[p].n) || I->shape[id].n != I->shape[p].n)
    return fail(I, id, "value and parameter differ in size");
  memcpy(I->val[id], arg(I, id, 1), (size_t)I->shape[id].n * sizeof(double));
  return 0;
}

/* ---- dispatch --------------------------------------------------------------------------- */

static const EvalFn eval_ops[OP_COUNT] = {
    [OP_INPUT] = ev_leaf,
    [OP_PARAM] = ev_leaf,
    [OP_CONST] = ev_const,
    [OP_IOTA] = ev_iota,
    [OP_NEG] = ev_neg,
    [OP_EXP] = ev_exp,
    [OP_LOG] = ev_log,
    [OP_SQRT] = ev_sqrt,
    [OP_TANH] = ev_tanh,
    [OP_SIGMOID] = ev_sigmoid,
    [OP_RELU] = ev_relu,
    [OP_GELU] = ev_gelu,
    [OP_SILU] = ev_silu,
    [OP_POWC] = ev_powc,
    [OP_CAST] = ev_cast,
    [OP_ADD] = ev_add,
    [OP_SUB] = ev_sub,
    [OP_MUL] = ev_mul,
    [OP_DIV] = ev_div,
    [OP_LT] = ev_lt,
    [OP_LE] = ev_le,
    [OP_GT] = ev_gt,
    [OP_GE] = ev_ge,
    [OP_EQ] = ev_eq,
    [OP_NE] = ev_ne,
    [OP_WHERE] = ev_where,
    [OP_MATMUL] = ev_matmul,
    [OP_TRANSPOSE] = ev_transpose,
    [OP_RESHAPE] = ev_reshape,
    [OP_BROADCAST] = ev_broadcast,
    [OP_CONCAT] = ev_concat,
    [OP_SLICE] = ev_slice,
    [OP_SLICE_BWD] = ev_slice_bwd,
    [OP_SUM] = ev_reduce,
    [OP_MEAN] = ev_reduce,
    [OP_MAX] = ev_reduce,
    [OP_VAR] = ev_reduce,
    [OP_SOFTMAX] = ev_softmax,
    [OP_LOG_SOFTMAX] = ev_softmax,
    [OP_CONV2D] = ev_conv2d,
    [OP_MAXPOOL] = ev_pool,
    [OP_AVGPOOL] = ev_pool,
    [OP_BATCHNORM] = ev_batchnorm,
    [OP_LAYERNORM] = ev_layernorm,
    [OP_DROPOUT] = ev_dropout,
    [OP_EMBEDDING] = ev_embedding,
    [OP_CROSS_ENTROPY] = ev_cross_entropy,
    [OP_MSE] = ev_mse,
    [OP_RELU_BWD] = ev_relu_bwd,
    [OP_GELU_BWD] = ev_gelu_bwd,
    [OP_SILU_BWD] = ev_silu_bwd,
    [OP_SIGMOID_BWD] = ev_sigmoid_bwd,
    [OP_TANH_BWD] = ev_tanh_bwd,
    [OP_SOFTMAX_BWD] = ev_softmax_bwd,
    [OP_LOG_SOFTMAX_BWD] = ev_softmax_bwd,
    [OP_MAX_BWD] = ev_max_bwd,
    [OP_CONV2D_BWD_DATA] = ev_conv2d_bwd_data,
    [OP_CONV2D_BWD_FILTER] = ev_conv2d_bwd_filter,
    [OP_MAXPOOL_BWD] = ev_maxpool_bwd,
    [OP_AVGPOOL_BWD] = ev_avgpool_bwd,
    [OP_BATCHNORM_BWD] = ev_bn_grad,
    [OP_BN_DGAMMA] = ev_bn_grad,
    [OP_LAYERNORM_BWD] = ev_layernorm_bwd,
    [OP_LN_DGAMMA] = ev_ln_dgamma,
    [OP_DROPOUT_BWD] = ev_dropout,
    [OP_EMBEDDING_BWD] = ev_embedding_bwd,
    [OP_CE_BWD] = ev_ce_bwd,
    [OP_ASSIGN] = ev_assign,
};

bool interp_op_defined(OpKind op) { return (unsigned)op < OP_COUNT && eval_ops[op] != NULL; }

/* ---- the interpreter -------------------------------------------------------------------- */

Interp *interp_new(const IrGraph *g, const InterpOptions *opt) {
  Interp *I = xcalloc(1, sizeof *I);
  I->g = g;
  if (opt) I->opt = *opt;
  int nn = g->nnodes;
  I->shape = xcalloc((size_t)(nn ? nn : 1), sizeof(Shape));
  I->val = xcalloc((size_t)(nn ? nn : 1), sizeof(double *));
  I->set = xcalloc((size_t)(nn ? nn : 1), sizeof(bool));
  for (int i = 0; i < nn; i++) {
    const IrType *t = &g->nodes[i].type;
    Shape *s = &I->shape[i];
    s->rank = t->rank;
    s->n = 1;
    for (int k = 0; k < t->rank; k++) {
      s->d[k] = t->dims[k] ? dim_eval(g->dims, t->dims[k], NULL) : -1;
      if (s->d[k] < 0 || s->n < 0) s->n = -1;
      else s->n *= s->d[k];
    }
    I->val[i] = xcalloc((size_t)(s->n > 0 ? s->n : 1), sizeof(double));
  }
  return I;
}

void interp_free(Interp *I) {
  if (!I) return;
  for (int i = 0; i < I->g->nnodes; i++) free(I->val[i]);
  free(I->val);
  free(I->shape);
  free(I->set);
  free(I);
}

int interp_set(Interp *I, int id, const double *data, int64_t numel) {
  if (id < 0 || id >= I->g->nnodes) return -1;
  OpKind op = I->g->nodes[id].op;
  if ((op != OP_INPUT && op != OP_PARAM) || numel != I->shape[id].n) return -1;
  memcpy(I->val[id], data, (size_t)numel * sizeof(double));
  if (I->opt.round_storage && is_float_storage(I->g->nodes[id].type.dt))
    round_buffer(I->g->nodes[id].type.dt, I->val[id], numel);
  I->set[id] = true;
  return 0;
}

int interp_set_f32(Interp *I, int id, const float *data, int64_t numel) {
  if (numel < 0) return -1;
  double *tmp = xmalloc((size_t)(numel ? numel : 1) * sizeof(double));
  for (int64_t i = 0; i < numel; i++) tmp[i] = data[i];
  int r = interp_set(I, id, tmp, numel);
  free(tmp);
  return r;
}

static int run_node(Interp *I, int id) {
  const IrNode *n = &I->g->nodes[id];
  if ((unsigned)n->op >= OP_COUNT || !eval_ops[n->op])
    return fail(I, id, "the interpreter cannot evaluate this op");
  if (I->shape[id].n < 0) return fail(I, id, "result shape has a negative dim");
  for (int k = 0; k < n->nin; k++)
    if (n->in[k] < 0 || n->in[k] >= id || I->shape[n->in[k]].n < 0)
      return fail(I, id, "operand %d (%%%d) is invalid", k, n->in[k]);
  if (n->op != OP_INPUT && n->op != OP_PARAM)
    memset(I->val[id], 0, (size_t)I->shape[id].n * sizeof(double));
  if (eval_ops[n->op](I, id)) return -1;
  if (I->opt.round_storage && is_float_storage(n->type.dt) && n->op != OP_INPUT &&
      n->op != OP_PARAM)
    round_buffer(n->type.dt, I->val[id], I->shape[id].n);
  return 0;
}

int interp_run(Interp *I, char *err, size_t errlen) {
  I->err = err;
  I->errlen = errlen;
  if (err && errlen) err[0] = 0;
  const IrGraph *g = I->g;
  for (int id = 0; id < g->nnodes; id++)
    if (run_node(I, id)) return -1;
  for (int id = 0; id < g->nnodes; id++) /* commit in node order: later ASSIGNs win */
    if (g->nodes[id].op == OP_ASSIGN) {
      int p = g->nodes[id].in[0];
      memcpy(I->val[p], I->val[id], (size_t)I->shape[p].n * sizeof(double));
      if (I->opt.round_storage && is_float_storage(g->nodes[p].type.dt))
        round_buffer(g->nodes[p].type.dt, I->val[p], I->shape[p].n);
    }
  return 0;
}

const double *interp_value(const Interp *I, int id, int64_t *numel) {
  if (id < 0 || id >= I->g->nnodes) return NULL;
  if (numel) *numel = I->shape[id].n;
  return I->val[id];
}

int interp_shape(const Interp *I, int id, int64_t *shape) {
  if (id < 0 || id >= I->g->nnodes) return -1;
  for (int k = 0; k < I->shape[id].rank; k++) shape[k] = I->shape[id].d[k];
  return I->shape[id].rank;
}

/* ---- random numbers and parameter initialization ---------------------------------------- */

void interp_set_step(Interp *I, int64_t step) { I->opt.step = step; }

/* The RNG and the initializers are the runtime's (runtime/rt_init.c), so that a compiled
 * program's `init` and dropout masks are the interpreter's, bit for bit. */
double interp_philox_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  return rt_philox_uniform(seed, stream, i);
}

_Static_assert((int)INIT_ZEROS == RT_INIT_ZEROS && (int)INIT_NORMAL == RT_INIT_NORMAL &&
                   (int)INIT_UNIFORM == RT_INIT_UNIFORM && (int)INIT_XAVIER == RT_INIT_XAVIER &&
                   (int)INIT_HE == RT_INIT_HE && (int)INIT_CONST == RT_INIT_CONST,
               "IR initializer kinds and the runtime's must agree");

void interp_init_param(const IrGraph *g, int id, uint64_t seed, double *out) {
  const IrNode *n = &g->nodes[id];
  char buf[32];
  RtTensorInfo t = {.name = n->name, .dtype = n->type.dt, .rank = n->type.rank,
                    .init = (int32_t)n->attr.init, .init_a = n->attr.init_a,
                    .init_b = n->attr.init_b};
  if (!t.name) {
    snprintf(buf, sizeof buf, "%%%d", id);
    t.name = buf;
  }
  for (int k = 0; k < t.rank; k++) t.shape[k] = dim_eval(g->dims, n->type.dims[k], NULL);
  rt_init_values(&t, seed, out);
}
