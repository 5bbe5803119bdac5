/* autodiff.c — reverse-mode differentiation on the graph IR.
 *
 * Requires: a verified graph and a scalar float loss value in it.
 * Guarantees: appended nodes are ordinary IR (phase PH_BWD, scope and source location of the
 * forward node each gradient belongs to); only values on a path from a trainable PARAM to
 * the loss get an adjoint, so inputs, labels and the first layer's input never get one; each
 * backward node refers to the forward values it needs (its residuals) by operand, so memory
 * analysis sees exactly what must be kept. docs/autodiff.md lists the residual of every op.
 *
 * Gradient rules live in one table indexed by OpKind (grad_rules). A rule receives the
 * forward node and the index of its output adjoint and calls ad_acc() for each operand
 * that needs one; fan-out is accumulated with ADD. Broadcasting ops reduce their operand
 * gradients back with SUM + RESHAPE (reduce_to).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct Ad {
  IrGraph *g;
  Diag *d;
  int nfwd;        /* nodes of the graph before autodiff */
  int *adj;        /* [nfwd] adjoint node of each forward value, -1 = none */
  bool *need;      /* [nfwd] value lies on a trainable-param -> loss path */
  int cur;         /* forward node whose rule is running */
  const char *scope;
  SrcLoc loc;
  bool failed;
} Ad;

typedef void (*GradFn)(Ad *a, const IrNode *f, int dy);

/* ---- node construction ------------------------------------------------------------- */

static IrType ty(const Ad *a, int v) { return a->g->nodes[v].type; }

static int ad_node(Ad *a, OpKind op, const int *in, int nin, const IrAttr *attr,
                   const IrType *hint) {
  if (a->failed) return -1;
  for (int i = 0; i < nin; i++)
    if (in[i] < 0) return -1;
  ShapeErr err;
  int n = ir_build(a->g, op, in, nin, attr, hint, a->loc, &err);
  if (n < 0) {
    diag_error(a->d, a->loc, "internal error: gradient of %%%d (%s): building %s: %s", a->cur,
               ir_op_name(a->g->nodes[a->cur].op), ir_op_name(op), err.msg);
    a->failed = true;
    return -1;
  }
  a->g->nodes[n].phase = PH_BWD;
  a->g->nodes[n].scope = a->scope;
  return n;
}

static int un(Ad *a, OpKind op, int x) { return ad_node(a, op, &x, 1, NULL, NULL); }
static int bin(Ad *a, OpKind op, int x, int y) {
  int in[2] = {x, y};
  return ad_node(a, op, in, 2, NULL, NULL);
}
/* a forward-specific op (pool, norm, ...) whose backward helper reads the forward attrs */
static int with_attr(Ad *a, OpKind op, const int *in, int nin, const IrNode *f,
                     const IrType *hint) {
  return ad_node(a, op, in, nin, &f->attr, hint);
}

static int cnst(Ad *a, double v, DType dt) {
  IrType t = {.dt = dt, .rank = 0};
  IrAttr at = {.value = v};
  return ad_node(a, OP_CONST, NULL, 0, &at, &t);
}

static int reshape(Ad *a, int x, IrType t) {
  if (x < 0) return -1;
  IrType xt = ty(a, x);
  if (ir_type_eq(&xt, &t)) return x;
  return ad_node(a, OP_RESHAPE, &x, 1, NULL, &t);
}

static int reduce_sum(Ad *a, int x, const int *axes, int naxes, bool keepdim) {
  if (naxes == 0) return x;
  IrAttr at = {.naxes = naxes, .keepdim = keepdim};
  memcpy(at.axes, axes, (size_t)naxes * sizeof(int));
  return ad_node(a, OP_SUM, &x, 1, &at, NULL);
}

static bool is_one(const Dim *d) {
  int64_t v;
  return dim_is_const(d, &v) && v == 1;
}

/* sum a broadcast result g back to the shape of the operand it came from (numpy rules:
 * align from the right, extra leading axes and expanded 1-axes are summed) */
static int reduce_to(Ad *a, int x, IrType target) {
  if (x < 0) return -1;
  IrType t = ty(a, x);
  int axes[IR_MAX_RANK], n = 0, lead = t.rank - target.rank;
  for (int i = 0; i < t.rank; i++)
    if (i < lead || (is_one(target.dims[i - lead]) && !is_one(t.dims[i]))) axes[n++] = i;
  return reshape(a, reduce_sum(a, x, axes, n, false), target);
}

/* x * factor / (prod(dims) - minus), exact for symbolic dims: when the count is not a
 * constant it is computed in the graph as the sum of a ones tensor of those dims, so the
 * graph stays valid for every value of the dims */
static int scale_count(Ad *a, int x, Dim *const *dims, int nd, double factor, int minus) {
  if (x < 0) return -1;
  DType dt = ty(a, x).dt;
  Dim *cnt = dim_const(a->g->dims, 1);
  for (int i = 0; i < nd; i++) cnt = dim_mul(a->g->dims, cnt, dims[i]);
  int64_t n;
  if (dim_is_const(cnt, &n)) return bin(a, OP_MUL, x, cnst(a, factor / (double)(n - minus), dt));
  IrType ot = {.dt = dt, .rank = nd};
  for (int i = 0; i < nd; i++) ot.dims[i] = dims[i];
  IrAttr one = {.value = 1};
  int ones = ad_node(a, OP_CONST, NULL, 0, &one, &ot);
  int all[IR_MAX_RANK];
  for (int i = 0; i < nd; i++) all[i] = i;
  int c = reduce_sum(a, ones, all, nd, false);
  if (minus) c = bin(a, OP_SUB, c, cnst(a, minus, dt));
  if (factor != 1) x = bin(a, OP_MUL, x, cnst(a, factor, dt));
  return bin(a, OP_DIV, x, c);
}

/* ---- adjoints ---------------------------------------------------------------------- */

static bool need(const Ad *a, const IrNode *f, int j) { return a->need[f->in[j]]; }

static void ad_acc(Ad *a, int v, int g) {
  if (g < 0 || a->failed) {
    a->failed = true;
    return;
  }
  IrType vt = ty(a, v), gt = ty(a, g);
  if (!ir_type_eq(&vt, &gt)) {
    char b1[256], b2[256];
    ir_type_str(a->g, &vt, b1, sizeof b1);
    ir_type_str(a->g, &gt, b2, sizeof b2);
    diag_error(a->d, a->loc, "internal error: gradient of %%%d has type %s, expected %s", v,
               b2, b1);
    a->failed = true;
    return;
  }
  if (a->adj[v] < 0) {
    a->adj[v] = g;
    return;
  }
  const char *s = a->scope;
  a->scope = a->g->nodes[v].scope;
  a->adj[v] = bin(a, OP_ADD, a->adj[v], g);
  a->scope = s;
}

static void acc_if(Ad *a, const IrNode *f, int j, int g) {
  if (need(a, f, j)) ad_acc(a, f->in[j], g);
}

/* ---- rules: leaves and non-differentiable ops -------------------------------------- */

static void grad_leaf(Ad *a, const IrNode *f, int dy) { (void)a, (void)f, (void)dy; }

static void grad_unsupported(Ad *a, const IrNode *f, int dy) {
  (void)dy;
  diag_error(a->d, a->loc, "cannot differentiate through '%s' (higher-order gradients are "
             "not supported)", ir_op_name(f->op));
  a->failed = true;
}

/* ---- elementwise ------------------------------------------------------------------- */

static int self(const Ad *a) { return a->cur; }

static void grad_neg(Ad *a, const IrNode *f, int dy) { acc_if(a, f, 0, un(a, OP_NEG, dy)); }
static void grad_exp(Ad *a, const IrNode *f, int dy) {
  acc_if(a, f, 0, bin(a, OP_MUL, dy, self(a)));
}
static void grad_log(Ad *a, const IrNode *f, int dy) {
  acc_if(a, f, 0, bin(a, OP_DIV, dy, f->in[0]));
}
static void grad_sqrt(Ad *a, const IrNode *f, int dy) {
  int g = bin(a, OP_DIV, dy, self(a));
  acc_if(a, f, 0, bin(a, OP_MUL, g, cnst(a, 0.5, f->type.dt)));
}
/* helpers of the form op(dy, residual) with the residual = the output y */
static void bwd_y(Ad *a, const IrNode *f, int dy, OpKind op) {
  int in[2] = {dy, self(a)};
  acc_if(a, f, 0, with_attr(a, op, in, 2, f, NULL));
}
/* ... or the input x */
static void bwd_x(Ad *a, const IrNode *f, int dy, OpKind op) {
  int in[2] = {dy, f->in[0]};
  acc_if(a, f, 0, with_attr(a, op, in, 2, f, NULL));
}
static void grad_tanh(Ad *a, const IrNode *f, int dy) { bwd_y(a, f, dy, OP_TANH_BWD); }
static void grad_sigmoid(Ad *a, const IrNode *f, int dy) { bwd_y(a, f, dy, OP_SIGMOID_BWD); }
static void grad_relu(Ad *a, const IrNode *f, int dy) { bwd_y(a, f, dy, OP_RELU_BWD); }
static void grad_gelu(Ad *a, const IrNode *f, int dy) { bwd_x(a, f, dy, OP_GELU_BWD); }
static void grad_silu(Ad *a, const IrNode *f, int dy) { bwd_x(a, f, dy, OP_SILU_BWD); }
static void grad_softmax(Ad *a, const IrNode *f, int dy) { bwd_y(a, f, dy, OP_SOFTMAX_BWD); }
static void grad_log_softmax(Ad *a, const IrNode *f, int dy) {
  bwd_y(a, f, dy, OP_LOG_SOFTMAX_BWD);
}

static void grad_powc(Ad *a, const IrNode *f, int dy) {
  double p = f->attr.value;
  int x = f->in[0];
  DType dt = f->type.dt;
  if (!need(a, f, 0)) return;
  if (p == 0) { /* constant: zero gradient */
    IrType t = ty(a, x);
    IrAttr z = {0};
    ad_acc(a, x, ad_node(a, OP_CONST, NULL, 0, &z, &t));
  } else if (p == 1) {
    ad_acc(a, x, dy);
  } else if (p == 2) {
    ad_acc(a, x, bin(a, OP_MUL, dy, bin(a, OP_MUL, x, cnst(a, 2, dt))));
  } else {
    IrAttr at = {.value = p - 1};
    int xp = ad_node(a, OP_POWC, &x, 1, &at, NULL);
    ad_acc(a, x, bin(a, OP_MUL, dy, bin(a, OP_MUL, xp, cnst(a, p, dt))));
  }
}

static void grad_cast(Ad *a, const IrNode *f, int dy) {
  IrType t = ty(a, f->in[0]);
  acc_if(a, f, 0, ad_node(a, OP_CAST, &dy, 1, NULL, &t));
}

static void grad_add(Ad *a, const IrNode *f, int dy) {
  acc_if(a, f, 0, reduce_to(a, dy, ty(a, f->in[0])));
  acc_if(a, f, 1, reduce_to(a, dy, ty(a, f->in[1])));
}
static void grad_sub(Ad *a, const IrNode *f, int dy) {
  acc_if(a, f, 0, reduce_to(a, dy, ty(a, f->in[0])));
  if (need(a, f, 1)) ad_acc(a, f->in[1], un(a, OP_NEG, reduce_to(a, dy, ty(a, f->in[1]))));
}
static void grad_mul(Ad *a, const IrNode *f, int dy) {
  if (need(a, f, 0)) ad_acc(a, f->in[0], reduce_to(a, bin(a, OP_MUL, dy, f->in[1]), ty(a, f->in[0])));
  if (need(a, f, 1)) ad_acc(a, f->in[1], reduce_to(a, bin(a, OP_MUL, dy, f->in[0]), ty(a, f->in[1])));
}
/* y = x0 / x1: dx0 = dy / x1, dx1 = -dy * y / x1 (residuals x1 and y, not x0) */
static void grad_div(Ad *a, const IrNode *f, int dy) {
  int x1 = f->in[1];
  if (need(a, f, 0)) ad_acc(a, f->in[0], reduce_to(a, bin(a, OP_DIV, dy, x1), ty(a, f->in[0])));
  if (need(a, f, 1)) {
    int g = un(a, OP_NEG, bin(a, OP_DIV, bin(a, OP_MUL, dy, self(a)), x1));
    ad_acc(a, x1, reduce_to(a, g, ty(a, x1)));
  }
}

/* y = where(c, a, b): da = where(c, dy, 0), db = where(c, 0, dy), each summed back to its
 * operand's shape; the condition gets no gradient (comparisons are piecewise constant) */
static void grad_where(Ad *a, const IrNode *f, int dy) {
  int z = cnst(a, 0, f->type.dt);
  if (need(a, f, 1)) {
    int in[3] = {f->in[0], dy, z};
    ad_acc(a, f->in[1], reduce_to(a, ad_node(a, OP_WHERE, in, 3, NULL, NULL), ty(a, f->in[1])));
  }
  if (need(a, f, 2)) {
    int in[3] = {f->in[0], z, dy};
    ad_acc(a, f->in[2], reduce_to(a, ad_node(a, OP_WHERE, in, 3, NULL, NULL), ty(a, f->in[2])));
  }
}

/* ---- matmul ------------------------------------------------------------------------ */

static int mm(Ad *a, int x, int y, bool ta, bool tb) {
  IrAttr at = {.trans_a = ta, .trans_b = tb};
  int in[2] = {x, y};
  return ad_node(a, OP_MATMUL, in, 2, &at, NULL);
}

/* a 1-D operand takes part as a matrix: [K] -> [1,K] on the left, [K,1] on the right */
static IrType as_matrix(const Ad *a, IrType t, bool left) {
  if (t.rank != 1) return t;
  Dim *one = dim_const(a->g->dims, 1);
  IrType m = t;
  m.rank = 2;
  m.dims[left ? 0 : 1] = one;
  m.dims[left ? 1 : 0] = t.dims[0];
  return m;
}

static void grad_matmul(Ad *a, const IrNode *f, int dy) {
  bool ta = f->attr.trans_a, tb = f->attr.trans_b;
  IrType at = ty(a, f->in[0]), bt = ty(a, f->in[1]);
  IrType am = as_matrix(a, at, true), bm = as_matrix(a, bt, false);
  int A = reshape(a, f->in[0], am), B = reshape(a, f->in[1], bm);
  /* dy with the axes a 1-D operand dropped put back: [..., M, N] */
  IrType yt = ty(a, dy), ym = yt;
  if (at.rank == 1 || bt.rank == 1) {
    int r = 0;
    Dim *one = dim_const(a->g->dims, 1);
    int batch = yt.rank - (at.rank == 1 ? 0 : 1) - (bt.rank == 1 ? 0 : 1);
    for (int i = 0; i < batch; i++) ym.dims[r++] = yt.dims[i];
    ym.dims[r++] = at.rank == 1 ? one : yt.dims[batch];
    ym.dims[r++] = bt.rank == 1 ? one : yt.dims[yt.rank - 1];
    ym.rank = r;
  }
  int G = reshape(a, dy, ym);
  if (need(a, f, 0)) {
    int dA = !ta ? mm(a, G, B, false, !tb) : (!tb ? mm(a, B, G, false, true) : mm(a, B, G, true, true));
    ad_acc(a, f->in[0], reshape(a, reduce_to(a, dA, am), at));
  }
  if (need(a, f, 1)) {
    int dB = !tb ? mm(a, A, G, !ta, false) : (!ta ? mm(a, G, A, true, false) : mm(a, G, A, true, true));
    ad_acc(a, f->in[1], reshape(a, reduce_to(a, dB, bm), bt));
  }
}

/* ---- data movement ----------------------------------------------------------------- */

static void grad_transpose(Ad *a, const IrNode *f, int dy) {
  IrAttr at = {.naxes = f->attr.naxes};
  for (int i = 0; i < f->attr.naxes; i++) at.axes[f->attr.axes[i]] = i;
  acc_if(a, f, 0, ad_node(a, OP_TRANSPOSE, &dy, 1, &at, NULL));
}
static void grad_reshape(Ad *a, const IrNode *f, int dy) {
  acc_if(a, f, 0, reshape(a, dy, ty(a, f->in[0])));
}
static void grad_broadcast(Ad *a, const IrNode *f, int dy) {
  acc_if(a, f, 0, reduce_to(a, dy, ty(a, f->in[0])));
}
static void grad_concat(Ad *a, const IrNode *f, int dy) {
  int axis = f->attr.axis < 0 ? f->attr.axis + f->type.rank : f->attr.axis;
  Dim *off = dim_const(a->g->dims, 0);
  for (int j = 0; j < f->nin; j++) {
    Dim *end = dim_add(a->g->dims, off, ty(a, f->in[j]).dims[axis]);
    if (need(a, f, j)) {
      IrAttr at = {.axis = axis, .start = off, .end = end};
      ad_acc(a, f->in[j], ad_node(a, OP_SLICE, &dy, 1, &at, NULL));
    }
    off = end;
  }
}
static void grad_slice(Ad *a, const IrNode *f, int dy) {
  IrType t = ty(a, f->in[0]);
  acc_if(a, f, 0, with_attr(a, OP_SLICE_BWD, &dy, 1, f, &t));
}

/* ---- reductions -------------------------------------------------------------------- */

/* the reduced axes of f (attr.naxes == 0 reduces every axis), normalized to >= 0 */
static int red_axes(const Ad *a, const IrNode *f, int *axes) {
  int r = ty(a, f->in[0]).rank;
  if (f->attr.naxes == 0) {
    for (int i = 0; i < r; i++) axes[i] = i;
    return r;
  }
  for (int i = 0; i < f->attr.naxes; i++)
    axes[i] = f->attr.axes[i] < 0 ? f->attr.axes[i] + r : f->attr.axes[i];
  return f->attr.naxes;
}

/* type of x with the reduced axes kept as 1 */
static IrType keep_type(const Ad *a, IrType xt, const int *axes, int n) {
  for (int i = 0; i < n; i++) xt.dims[axes[i]] = dim_const(a->g->dims, 1);
  return xt;
}

static int red_count_dims(const Ad *a, const IrNode *f, const int *axes, int n, Dim **dims) {
  IrType xt = ty(a, f->in[0]);
  for (int i = 0; i < n; i++) dims[i] = xt.dims[axes[i]];
  return n;
}

/* dy of a reduction, brought to x's shape */
static int unreduce(Ad *a, const IrNode *f, int dy, const int *axes, int n) {
  IrType xt = ty(a, f->in[0]);
  int k = reshape(a, dy, keep_type(a, xt, axes, n));
  return k < 0 ? -1 : ad_node(a, OP_BROADCAST, &k, 1, NULL, &xt);
}

static void grad_sum(Ad *a, const IrNode *f, int dy) {
  int axes[IR_MAX_RANK], n = red_axes(a, f, axes);
  acc_if(a, f, 0, unreduce(a, f, dy, axes, n));
}
static void grad_mean(Ad *a, const IrNode *f, int dy) {
  int axes[IR_MAX_RANK], n = red_axes(a, f, axes);
  Dim *dims[IR_MAX_RANK];
  red_count_dims(a, f, axes, n, dims);
  acc_if(a, f, 0, unreduce(a, f, scale_count(a, dy, dims, n, 1, 0), axes, n));
}
/* var = sum((x - mean)^2) / (n - c): dx = dy * 2 (x - mean) / (n - c) */
static void grad_var(Ad *a, const IrNode *f, int dy) {
  if (!need(a, f, 0)) return;
  int axes[IR_MAX_RANK], n = red_axes(a, f, axes), x = f->in[0];
  Dim *dims[IR_MAX_RANK];
  red_count_dims(a, f, axes, n, dims);
  IrAttr at = {.naxes = n, .keepdim = true};
  memcpy(at.axes, axes, sizeof axes);
  int diff = bin(a, OP_SUB, x, ad_node(a, OP_MEAN, &x, 1, &at, NULL));
  int k = reshape(a, dy, keep_type(a, ty(a, x), axes, n));
  ad_acc(a, x, bin(a, OP_MUL, diff, scale_count(a, k, dims, n, 2, f->attr.correction)));
}
static void grad_max(Ad *a, const IrNode *f, int dy) {
  int in[3] = {dy, f->in[0], self(a)};
  IrType t = ty(a, f->in[0]);
  acc_if(a, f, 0, with_attr(a, OP_MAX_BWD, in, 3, f, &t));
}

/* ---- layers ------------------------------------------------------------------------ */

static void grad_conv2d(Ad *a, const IrNode *f, int dy) {
  IrType xt = ty(a, f->in[0]), wt = ty(a, f->in[1]);
  if (need(a, f, 0)) {
    int in[2] = {dy, f->in[1]};
    ad_acc(a, f->in[0], with_attr(a, OP_CONV2D_BWD_DATA, in, 2, f, &xt));
  }
  if (need(a, f, 1)) {
    int in[2] = {f->in[0], dy};
    ad_acc(a, f->in[1], with_attr(a, OP_CONV2D_BWD_FILTER, in, 2, f, &wt));
  }
}
static void grad_maxpool(Ad *a, const IrNode *f, int dy) {
  IrType xt = ty(a, f->in[0]);
  int in[2] = {dy, f->in[0]};
  acc_if(a, f, 0, with_attr(a, OP_MAXPOOL_BWD, in, 2, f, &xt));
}
static void grad_avgpool(Ad *a, const IrNode *f, int dy) {
  IrType xt = ty(a, f->in[0]);
  acc_if(a, f, 0, with_attr(a, OP_AVGPOOL_BWD, &dy, 1, f, &xt));
}

/* every axis but the channel axis 1 */
static int bn_axes(int rank, int *axes) {
  int n = 0;
  for (int i = 0; i < rank; i++)
    if (i != 1) axes[n++] = i;
  return n;
}

/* eval mode: y = (x - rmean) * gamma / sqrt(rvar + eps) + beta is affine in x */
static void grad_batchnorm_eval(Ad *a, const IrNode *f, int dy) {
  int x = f->in[0], gamma = f->in[1], rmean = f->in[3], rvar = f->in[4];
  DType dt = f->type.dt;
  int axes[IR_MAX_RANK], n = bn_axes(f->type.rank, axes);
  IrType kt = keep_type(a, ty(a, x), axes, n);
  IrAttr p = {.value = -0.5};
  int sum = bin(a, OP_ADD, rvar, cnst(a, f->attr.value, dt));
  int inv = ad_node(a, OP_POWC, &sum, 1, &p, NULL);
  if (need(a, f, 0)) ad_acc(a, x, bin(a, OP_MUL, dy, reshape(a, bin(a, OP_MUL, gamma, inv), kt)));
  if (need(a, f, 1)) {
    int xhat = bin(a, OP_MUL, bin(a, OP_SUB, x, reshape(a, rmean, kt)), reshape(a, inv, kt));
    ad_acc(a, gamma, reduce_sum(a, bin(a, OP_MUL, dy, xhat), axes, n, false));
  }
  if (need(a, f, 2)) ad_acc(a, f->in[2], reduce_sum(a, dy, axes, n, false));
}

/* train mode: the batch statistics are recomputed from x inside the helpers, so x and
 * gamma are the only residuals */
static void grad_batchnorm(Ad *a, const IrNode *f, int dy) {
  if (!f->attr.train) {
    grad_batchnorm_eval(a, f, dy);
    return;
  }
  int x = f->in[0], gamma = f->in[1];
  int axes[IR_MAX_RANK], n = bn_axes(f->type.rank, axes);
  if (need(a, f, 0)) {
    int in[3] = {dy, x, gamma};
    IrType xt = ty(a, x);
    ad_acc(a, x, with_attr(a, OP_BATCHNORM_BWD, in, 3, f, &xt));
  }
  if (need(a, f, 1)) {
    int in[2] = {dy, x};
    IrType gt = ty(a, gamma);
    ad_acc(a, gamma, with_attr(a, OP_BN_DGAMMA, in, 2, f, &gt));
  }
  if (need(a, f, 2)) ad_acc(a, f->in[2], reduce_sum(a, dy, axes, n, false));
}

static void grad_layernorm(Ad *a, const IrNode *f, int dy) {
  int x = f->in[0], gamma = f->in[1], beta = f->in[2];
  if (need(a, f, 0)) {
    int in[3] = {dy, x, gamma};
    IrType xt = ty(a, x);
    ad_acc(a, x, with_attr(a, OP_LAYERNORM_BWD, in, 3, f, &xt));
  }
  if (need(a, f, 1)) {
    int in[2] = {dy, x};
    IrType gt = ty(a, gamma);
    ad_acc(a, gamma, with_attr(a, OP_LN_DGAMMA, in, 2, f, &gt));
  }
  if (need(a, f, 2)) {
    int axes[IR_MAX_RANK], n = f->type.rank - f->attr.naxes;
    for (int i = 0; i < n; i++) axes[i] = i;
    ad_acc(a, beta, reshape(a, reduce_sum(a, dy, axes, n, false), ty(a, beta)));
  }
}

/* the mask is regenerated from the counter-based RNG (same attr.seed), so nothing is kept */
static void grad_dropout(Ad *a, const IrNode *f, int dy) {
  if (!f->attr.train || f->attr.value == 0) {
    acc_if(a, f, 0, dy);
    return;
  }
  IrType xt = ty(a, f->in[0]);
  acc_if(a, f, 0, with_attr(a, OP_DROPOUT_BWD, &dy, 1, f, &xt));
}

static void grad_embedding(Ad *a, const IrNode *f, int dy) {
  IrType tt = ty(a, f->in[0]);
  int in[2] = {dy, f->in[1]};
  acc_if(a, f, 0, with_attr(a, OP_EMBEDDING_BWD, in, 2, f, &tt));
}

static void grad_cross_entropy(Ad *a, const IrNode *f, int dy) {
  IrType lt = ty(a, f->in[0]);
  int in[3] = {dy, f->in[0], f->in[1]};
  acc_if(a, f, 0, with_attr(a, OP_CE_BWD, in, 3, f, &lt));
}

/* mse = mean((p - t)^2) over every element: dp = dloss * 2 (p - t) / numel */
static void grad_mse(Ad *a, const IrNode *f, int dy) {
  if (!need(a, f, 0) && !need(a, f, 1)) return;
  int p = f->in[0], t = f->in[1];
  int diff = bin(a, OP_SUB, p, t);
  IrType dt = ty(a, diff);
  int g = bin(a, OP_MUL, diff, scale_count(a, dy, dt.dims, dt.rank, 2, 0));
  acc_if(a, f, 0, reduce_to(a, g, ty(a, p)));
  if (need(a, f, 1)) ad_acc(a, t, un(a, OP_NEG, reduce_to(a, g, ty(a, t))));
}

/* ---- the rule table ---------------------------------------------------------------- */

static const GradFn grad_rules[OP_COUNT] = {
    [OP_INPUT] = grad_leaf,
    [OP_PARAM] = grad_leaf,
    [OP_CONST] = grad_leaf,
    [OP_IOTA] = grad_leaf,
    [OP_NEG] = grad_neg,
    [OP_EXP] = grad_exp,
    [OP_LOG] = grad_log,
    [OP_SQRT] = grad_sqrt,
    [OP_TANH] = grad_tanh,
    [OP_SIGMOID] = grad_sigmoid,
    [OP_RELU] = grad_relu,
    [OP_GELU] = grad_gelu,
    [OP_SILU] = grad_silu,
    [OP_POWC] = grad_powc,
    [OP_CAST] = grad_cast,
    [OP_ADD] = grad_add,
    [OP_SUB] = grad_sub,
    [OP_MUL] = grad_mul,
    [OP_DIV] = grad_div,
    [OP_LT] = grad_leaf, /* piecewise constant: zero almost everywhere */
    [OP_LE] = grad_leaf,
    [OP_GT] = grad_leaf,
    [OP_GE] = grad_leaf,
    [OP_EQ] = grad_leaf,
    [OP_NE] = grad_leaf,
    [OP_WHERE] = grad_where,
    [OP_MATMUL] = grad_matmul,
    [OP_TRANSPOSE] = grad_transpose,
    [OP_RESHAPE] = grad_reshape,
    [OP_BROADCAST] = grad_broadcast,
    [OP_CONCAT] = grad_concat,
    [OP_SLICE] = grad_slice,
    [OP_SLICE_BWD] = grad_unsupported,
    [OP_SUM] = grad_sum,
    [OP_MEAN] = grad_mean,
    [OP_MAX] = grad_max,
    [OP_VAR] = grad_var,
    [OP_SOFTMAX] = grad_softmax,
    [OP_LOG_SOFTMAX] = grad_log_softmax,
    [OP_CONV2D] = grad_conv2d,
    [OP_MAXPOOL] = grad_maxpool,
    [OP_AVGPOOL] = grad_avgpool,
    [OP_BATCHNORM] = grad_batchnorm,
    [OP_LAYERNORM] = grad_layernorm,
    [OP_DROPOUT] = grad_dropout,
    [OP_EMBEDDING] = grad_embedding,
    [OP_CROSS_ENTROPY] = grad_cross_entropy,
    [OP_MSE] = grad_mse,
    [OP_RELU_BWD] = grad_unsupported,
    [OP_GELU_BWD] = grad_unsupported,
    [OP_SILU_BWD] = grad_unsupported,
    [OP_SIGMOID_BWD] = grad_unsupported,
    [OP_TANH_BWD] = grad_unsupported,
    [OP_SOFTMAX_BWD] = grad_unsupported,
    [OP_LOG_SOFTMAX_BWD] = grad_unsupported,
    [OP_MAX_BWD] = grad_unsupported,
    [OP_CONV2D_BWD_DATA] = grad_unsupported,
    [OP_CONV2D_BWD_FILTER] = grad_unsupported,
    [OP_MAXPOOL_BWD] = grad_unsupported,
    [OP_AVGPOOL_BWD] = grad_unsupported,
    [OP_BATCHNORM_BWD] = grad_unsupported,
    [OP_BN_DGAMMA] = grad_unsupported,
    [OP_LAYERNORM_BWD] = grad_unsupported,
    [OP_LN_DGAMMA] = grad_unsupported,
    [OP_DROPOUT_BWD] = grad_unsupported,
    [OP_EMBEDDING_BWD] = grad_unsupported,
    [OP_CE_BWD] = grad_unsupported,
    [OP_ASSIGN] = grad_unsupported,
};

bool pass_autodiff_op_defined(OpKind op) {
  return (unsigned)op < OP_COUNT && grad_rules[op] != NULL;
}

/* ---- the pass ---------------------------------------------------------------------- */

static bool is_float(DType dt) { return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16; }

/* need[v]: v depends on a trainable PARAM (through float values) and the loss depends on v */
static void mark_needed(Ad *a, int loss) {
  const IrGraph *g = a->g;
  bool *dep = xcalloc((size_t)a->nfwd, 1), *reach = xcalloc((size_t)g->nnodes + 1, 1);
  for (int i = 0; i <= loss; i++) {
    const IrNode *n = &g->nodes[i];
    if (!is_float(n->type.dt) || n->op == OP_ASSIGN) continue;
    if (n->op == OP_PARAM) dep[i] = n->attr.trainable;
    for (int j = 0; j < n->nin && !dep[i]; j++) dep[i] = dep[n->in[j]];
  }
  reach[loss] = true;
  ir_mark_live(g, reach);
  for (int i = 0; i < a->nfwd; i++) a->need[i] = dep[i] && reach[i];
  free(dep);
  free(reach);
}

/* the gradient node of a parameter carries the name "<param>.grad"; when the adjoint node
 * is shared (another value's adjoint, or a forward-named value) an identity RESHAPE gets
 * the name instead */
static int name_grad(Ad *a, int p) {
  int gnode = a->adj[p];
  bool shared = a->g->nodes[gnode].name != NULL;
  for (int v = 0; v < a->nfwd && !shared; v++) shared = v != p && a->adj[v] == gnode;
  if (shared) {
    IrType t = ty(a, gnode);
    gnode = ad_node(a, OP_RESHAPE, &gnode, 1, NULL, &t);
    if (gnode < 0) return -1;
  }
  a->g->nodes[gnode].name = arena_printf(a->g->arena, "%s.grad", a->g->nodes[p].name);
  return gnode;
}

static int finish(Ad *a, TrainInfo *info) {
  IrGraph *g = a->g;
  int np = 0;
  for (int i = 0; i < a->nfwd; i++) np += g->nodes[i].op == OP_PARAM && a->need[i];
  info->params = arena_alloc(g->arena, (size_t)(np ? np : 1) * sizeof(int));
  info->grads = arena_alloc(g->arena, (size_t)(np ? np : 1) * sizeof(int));
  info->nparams = 0;
  for (int p = 0; p < a->nfwd; p++) {
    if (g->nodes[p].op != OP_PARAM || !a->need[p]) continue;
    a->cur = p;
    a->scope = g->nodes[p].scope;
    a->loc = g->nodes[p].loc;
    if (a->adj[p] < 0) { /* every path to the loss had a zero derivative (x^0) */
      IrType t = ty(a, p);
      IrAttr z = {0};
      a->adj[p] = ad_node(a, OP_CONST, NULL, 0, &z, &t);
    }
    int gn = a->adj[p] < 0 ? -1 : name_grad(a, p);
    if (gn < 0) return -1;
    info->params[info->nparams] = p;
    info->grads[info->nparams++] = gn;
  }
  return 0;
}

int pass_autodiff(IrGraph *g, int loss, TrainInfo *info, Diag *d) {
  if (loss < 0 || loss >= g->nnodes) {
    diag_error(d, g->loc, "autodiff: no loss value");
    return -1;
  }
  const IrNode *ln = &g->nodes[loss];
  IrType lt = ln->type;
  for (int i = 0; i < lt.rank; i++)
    if (!is_one(lt.dims[i])) {
      diag_error(d, ln->loc, "the minimized value must be a scalar");
      return -1;
    }
  if (!is_float(lt.dt)) {
    diag_error(d, ln->loc, "the minimized value must have a float type, not %s", dt_name(lt.dt));
    return -1;
  }
  Ad a = {.g = g, .d = d, .nfwd = g->nnodes};
  a.adj = malloc((size_t)a.nfwd * sizeof(int));
  a.need = calloc((size_t)a.nfwd, 1);
  for (int i = 0; i < a.nfwd; i++) a.adj[i] = -1;
  mark_needed(&a, loss);
  info->loss = loss;
  info->first_bwd = g->nnodes;
  a.cur = loss;
  a.scope = ln->scope;
  a.loc = ln->loc;
  IrAttr one = {.value = 1};
  a.adj[loss] = ad_node(&a, OP_CONST, NULL, 0, &one, &lt);
  for (int i = loss; i >= 0 && !a.failed; i--) {
    if (a.adj[i] < 0 || !a.need[i]) continue;
    IrNode f = g->nodes[i]; /* copy: appending nodes may move the array */
    if (!grad_rules[f.op]) {
      diag_error(d, f.loc, "no gradient rule for '%s'", ir_op_name(f.op));
      a.failed = true;
      break;
    }
    a.cur = i;
    a.scope = f.scope;
    a.loc = f.loc;
    grad_rules[f.op](&a, &f, a.adj[i]);
  }
  int rc = a.failed ? -1 : finish(&a, info);
  free(a.adj);
  free(a.need);
  return rc;
}

/* ---- dead-node elimination of appended nodes --------------------------------------- */

int pass_dce_tail(IrGraph *g, int first, int *remap) {
  int n = g->nnodes;
  bool *live = xcalloc((size_t)n + 1, 1);
  int *map = remap ? remap : xmalloc((size_t)(n ? n : 1) * sizeof(int));
  for (int i = 0; i < n; i++) live[i] = i < first || g->nodes[i].op == OP_ASSIGN;
  for (int i = 0; i < g->noutputs; i++) live[g->outputs[i].node] = true;
  ir_mark_live(g, live);
  int k = 0;
  for (int i = 0; i < n; i++) {
    map[i] = live[i] ? k : -1;
    if (!live[i]) continue;
    IrNode nd = g->nodes[i];
    for (int j = 0; j < nd.nin; j++) nd.in[j] = map[nd.in[j]];
    g->nodes[k++] = nd;
  }
  g->nnodes = k;
  for (int i = 0; i < g->noutputs; i++) g->outputs[i].node = map[g->outputs[i].node];
  if (!remap) free(map);
  free(live);
  return n - k;
}
