/* gradcheck.h — helpers shared by the autodiff and optimizer tests: a small graph builder
 * (graphs written by hand with ir_build), random leaf values, and a finite-difference
 * gradient check against the reference interpreter in double precision. */
#ifndef NN_TEST_GRADCHECK_H
#define NN_TEST_GRADCHECK_H
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../../ir/interp.h"
#include "../../passes/passes.h"

/* ---- builder -------------------------------------------------------------------------- */

typedef struct Gb {
  IrModule *m;
  IrGraph *g;
} Gb;

static inline Gb gb_new(const char *name) {
  Gb b;
  b.m = ir_module_new();
  b.g = ir_module_add_graph(b.m, name);
  return b;
}

static inline Dim *gb_c(Gb *b, int64_t v) { return dim_const(b->g->dims, v); }
static inline Dim *gb_sym(Gb *b, const char *name, int64_t v) {
  int s = dim_sym_find(b->g->dims, name);
  if (s < 0) s = dim_sym_declare(b->g->dims, name, v);
  return dim_sym(b->g->dims, s);
}

static inline IrType gb_t(Gb *b, DType dt, int rank, const int64_t *d) {
  IrType t = {.dt = dt, .rank = rank};
  for (int i = 0; i < rank; i++) t.dims[i] = gb_c(b, d[i]);
  return t;
}
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__}), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

static inline int gb_build(Gb *b, OpKind op, const int *in, int nin, const IrAttr *at, const IrType *hint) {
  ShapeErr e;
  SrcLoc loc = {0};
  int n = ir_build(b->g, op, in, nin, at, hint, loc, &e);
  ck_assert_msg(n >= 0, "building %s: %s", ir_op_name(op), e.msg);
  return n;
}

static inline int gb_leaf_t(Gb *b, OpKind op, const char *name, IrType t, bool trainable) {
  IrAttr at = {.trainable = trainable, .init = INIT_NORMAL, .init_a = 0.5};
  int n = gb_build(b, op, NULL, 0, &at, &t);
  b->g->nodes[n].name = arena_strdup(b->g->arena, name);
  return n;
}
static inline int gb_leaf(Gb *b, OpKind op, const char *name, DType dt, const int64_t *d, int r, bool tr) {
  return gb_leaf_t(b, op, name, gb_t(b, dt, r, d), tr);
}
#define PARAM(b, name, ...) gb_leaf(b, OP_PARAM, name, DT_F32, SHAPE(__VA_ARGS__), true)
#define BUFFER(b, name, ...) gb_leaf(b, OP_PARAM, name, DT_F32, SHAPE(__VA_ARGS__), false)
#define INPUT(b, name, ...) gb_leaf(b, OP_INPUT, name, DT_F32, SHAPE(__VA_ARGS__), false)
#define LABELS(b, name, ...) gb_leaf(b, OP_INPUT, name, DT_I32, SHAPE(__VA_ARGS__), false)
#define SCALAR_PARAM(b, name) gb_leaf(b, OP_PARAM, name, DT_F32, NULL, 0, true)

static inline int gb_op(Gb *b, OpKind op, int x, const IrAttr *at) { return gb_build(b, op, &x, 1, at, NULL); }
static inline int gb_op2(Gb *b, OpKind op, int x, int y, const IrAttr *at) {
  int in[2] = {x, y};
  return gb_build(b, op, in, 2, at, NULL);
}
static inline int gb_reshape(Gb *b, int x, const int64_t *d, int r) {
  IrType t = gb_t(b, b->g->nodes[x].type.dt, r, d);
  return gb_build(b, OP_RESHAPE, &x, 1, NULL, &t);
}
static inline int gb_sumall(Gb *b, int x) {
  IrAttr at = {.naxes = b->g->nodes[x].type.rank};
  for (int i = 0; i < at.naxes; i++) at.axes[i] = i;
  if (!at.naxes) return x;
  return gb_op(b, OP_SUM, x, &at);
}
/* a scalar loss that weighs every element of y by a random input: sum(y * w) */
static inline int gb_weighted_loss(Gb *b, int y) {
  IrType t = b->g->nodes[y].type;
  int w = gb_leaf_t(b, OP_INPUT, "loss_weights", t, false);
  int l = gb_sumall(b, gb_op2(b, OP_MUL, y, w, NULL));
  b->g->nodes[l].name = "loss";
  return l;
}

/* layers */
static inline int gb_dense(Gb *b, int x, int out, const char *name) {
  int in = (int)dim_eval(b->g->dims, b->g->nodes[x].type.dims[b->g->nodes[x].type.rank - 1], NULL);
  char wn[64], bn[64];
  snprintf(wn, sizeof wn, "%s.weight", name);
  snprintf(bn, sizeof bn, "%s.bias", name);
  int w = PARAM(b, wn, out, in), bias = PARAM(b, bn, out);
  IrAttr mt = {.trans_b = true};
  int mm = gb_op2(b, OP_MATMUL, x, w, &mt);
  int y = gb_op2(b, OP_ADD, mm, bias, NULL);
  b->g->nodes[mm].scope = b->g->nodes[y].scope = arena_strdup(b->g->arena, name);
  return y;
}
static inline int gb_conv(Gb *b, int x, int out, int k, int stride, int pad, int groups, const char *name) {
  int c = (int)dim_eval(b->g->dims, b->g->nodes[x].type.dims[1], NULL);
  char wn[64];
  snprintf(wn, sizeof wn, "%s.weight", name);
  int w = PARAM(b, wn, out, c / groups, k, k);
  IrAttr at = {.kernel = {k, k}, .stride = {stride, stride}, .pad = {pad, pad},
               .dilation = {1, 1}, .groups = groups};
  int y = gb_op2(b, OP_CONV2D, x, w, &at);
  b->g->nodes[y].scope = arena_strdup(b->g->arena, name);
  return y;
}
static inline int gb_bn(Gb *b, int x, const char *name) {
  int c = (int)dim_eval(b->g->dims, b->g->nodes[x].type.dims[1], NULL);
  char n[4][64];
  const char *sfx[4] = {"weight", "bias", "running_mean", "running_var"};
  int in[5] = {x};
  for (int i = 0; i < 4; i++) {
    snprintf(n[i], sizeof n[i], "%s.%s", name, sfx[i]);
    in[i + 1] = gb_leaf(b, OP_PARAM, n[i], DT_F32, SHAPE(c), i < 2);
  }
  IrAttr at = {.value = 1e-5, .momentum = 0.1};
  int y = gb_build(b, OP_BATCHNORM, in, 5, &at, NULL);
  b->g->nodes[y].scope = arena_strdup(b->g->arena, name);
  return y;
}
static inline int gb_relu(Gb *b, int x) { return gb_op(b, OP_RELU, x, NULL); }

/* ---- values ------------------------------------------------------------------------- */

static uint64_t gc_rng = 88172645463325252ull;
static inline double gc_uniform(void) {
  gc_rng ^= gc_rng << 13;
  gc_rng ^= gc_rng >> 7;
  gc_rng ^= gc_rng << 17;
  return (double)(gc_rng >> 11) * 0x1.0p-53;
}

typedef struct Vals {
  int n;
  double **v;     /* per node: leaf values or NULL */
  int64_t *numel;
  double *lo, *hi; /* per node: uniform range; i32 leaves get integers in [0, hi) */
} Vals;

static inline Vals vals_new(const IrGraph *g) {
  Vals v = {.n = g->nnodes};
  v.v = calloc((size_t)v.n, sizeof *v.v);
  v.numel = calloc((size_t)v.n, sizeof *v.numel);
  v.lo = calloc((size_t)v.n, sizeof *v.lo);
  v.hi = calloc((size_t)v.n, sizeof *v.hi);
  for (int i = 0; i < v.n; i++) v.lo[i] = -1, v.hi[i] = 1;
  return v;
}
static inline void vals_range(Vals *v, int node, double lo, double hi) { v->lo[node] = lo, v->hi[node] = hi; }
/* fill every INPUT/PARAM of g (below v->n) that has no value yet */
static inline void vals_fill(Vals *v, const IrGraph *g) {
  for (int i = 0; i < v->n && i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if ((n->op != OP_INPUT && n->op != OP_PARAM) || v->v[i]) continue;
    int64_t k = ir_type_numel(g, &n->type);
    v->numel[i] = k;
    v->v[i] = malloc((size_t)(k ? k : 1) * sizeof(double));
    for (int64_t j = 0; j < k; j++) {
      double u = gc_uniform();
      v->v[i][j] = n->type.dt == DT_I32 ? floor(u * v->hi[i]) : v->lo[i] + (v->hi[i] - v->lo[i]) * u;
    }
  }
}
static inline void vals_free(Vals *v) {
  for (int i = 0; i < v->n; i++) free(v->v[i]);
  free(v->v), free(v->numel), free(v->lo), free(v->hi);
}

/* run g with the values; zeros for leaves beyond v (optimizer state) */
static inline Interp *gc_run(const IrGraph *g, const Vals *v) {
  InterpOptions o = {.seed = 7};
  Interp *in = interp_new(g, &o);
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op != OP_INPUT && n->op != OP_PARAM) continue;
    if (i < v->n && v->v[i]) {
      ck_assert_int_eq(interp_set(in, i, v->v[i], v->numel[i]), 0);
    } else {
      int64_t k = ir_type_numel(g, &n->type);
      double *z = calloc((size_t)(k ? k : 1), sizeof(double));
      ck_assert_int_eq(interp_set(in, i, z, k), 0);
      free(z);
    }
  }
  char err[512];
  int rc = interp_run(in, err, sizeof err);
  ck_assert_msg(rc == 0, "interp: %s", err);
  return in;
}

static inline double gc_loss(const IrGraph *g, const Vals *v, int loss) {
  Interp *in = gc_run(g, v);
  int64_t k;
  double l = interp_value(in, loss, &k)[0];
  interp_free(in);
  return l;
}

/* ---- the check ------------------------------------------------------------------------ */

/* the backward graph of g (a clone; g untouched) with the adjoints of loss; outputs added for
 * the gradients so the DCE keeps them */
static inline IrGraph *gc_backward(Gb *b, int loss, TrainInfo *info) {
  IrGraph *gg = ir_graph_clone(b->m->arena, b->g);
  Diag *d = diag_new(stderr);
  int rc = pass_autodiff(gg, loss, info, d);
  ck_assert_int_eq(rc, 0);
  for (int i = 0; i < info->nparams; i++) ir_add_output(gg, gg->nodes[info->grads[i]].name, info->grads[i]);
  int *map = malloc((size_t)gg->nnodes * sizeof(int));
  pass_dce_tail(gg, info->first_bwd, map);
  for (int i = 0; i < info->nparams; i++) info->grads[i] = map[info->grads[i]];
  free(map);
  ck_assert_int_eq(ir_verify(gg, stderr), 0);
  diag_free(d);
  return gg;
}

/* central differences (eps) on every trainable parameter of info against the gradients of
 * gg; `at most` samples elements per parameter. Pass: |g - fd| <= atol + rtol*|fd|. */
static inline void gc_compare(const IrGraph *gg, const TrainInfo *info, const IrGraph *fg, Vals *v,
                       double eps, double rtol, double atol, int sample) {
  Interp *in = gc_run(gg, v);
  double maxdiff = 0;
  for (int i = 0; i < info->nparams; i++) {
    int p = info->params[i];
    int64_t k;
    const double *gr = interp_value(in, info->grads[i], &k);
    ck_assert_int_eq(k, v->numel[p]);
    int64_t step = (sample > 0 && k > sample) ? k / sample : 1;
    for (int64_t j = (int64_t)(gc_uniform() * (double)step) % (step ? step : 1); j < k; j += step) {
      double x0 = v->v[p][j];
      v->v[p][j] = x0 + eps;
      double lp = gc_loss(fg, v, info->loss);
      v->v[p][j] = x0 - eps;
      double lm = gc_loss(fg, v, info->loss);
      v->v[p][j] = x0;
      double fd = (lp - lm) / (2 * eps), diff = fabs(gr[j] - fd);
      if (diff > maxdiff) maxdiff = diff;
      ck_assert_msg(diff <= atol + rtol * fabs(fd),
                    "%s: d loss / d %s[%lld]: autodiff %.12g, finite difference %.12g "
                    "(diff %.3g)", gg->name, gg->nodes[p].name, (long long)j, gr[j], fd, diff);
    }
  }
  interp_free(in);
}

/* build the backward graph of b's graph for loss and check all gradients */
static inline TrainInfo gradcheck(Gb *b, int loss, Vals *v, double rtol, double atol, int sample) {
  TrainInfo info;
  IrGraph *gg = gc_backward(b, loss, &info);
  vals_fill(v, b->g);
  gc_compare(gg, &info, b->g, v, 1e-6, rtol, atol, sample);
  return info;
}
#endif
