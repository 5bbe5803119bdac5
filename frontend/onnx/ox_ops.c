/* ox_ops.c — one handler per ONNX op kind. A handler computes its outputs' shapes, folds
 * the op when every input is a constant that shape arithmetic needs (Shape, Gather,
 * Unsqueeze, Concat, Reshape, ...), and otherwise writes one .nn statement. Attributes nnc
 * cannot honour are refused with what would be needed, never ignored. */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ox.h"

#define F_FLOAT ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define F_INT64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64
#define F_BOOL ONNX__TENSOR_PROTO__DATA_TYPE__BOOL
#define OX_MAX_FOLD (1 << 24) /* elements of a constant computed at import time */

typedef struct OxOp {
  const char *name;
  OxOpFn fn;
  const char *arg; /* the nnc function for the simple mappings */
} OxOp;
static const OxOp *op_entry(int idx);

/* a layer's scope when its weight's name gives none: the node's name, else op_output */
static const char *fallback_scope(OxCtx *c, const Onnx__NodeProto *n) {
  if (n->name && n->name[0]) return n->name;
  char *s = arena_printf(c->a, "%s_%s", n->op_type, n->output[0]);
  for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
  return s;
}

/* --- small helpers -------------------------------------------------------------------- */

static int has_in(const Onnx__NodeProto *n, int i) {
  return (size_t)i < n->n_input && n->input[i][0];
}

static OxVal *need(OxCtx *c, const Onnx__NodeProto *n, int i) {
  OxVal *v = has_in(n, i) ? ox_find(c, n->input[i]) : NULL;
  if (!v) ox_err(c, n, "input %d is missing", i);
  return v;
}

static int is_const(const OxVal *v) { return v && v->kind == OXV_CONST; }

/* a parameter source: an initializer (constant) or a graph input fed as a weight */
static int weightish(const OxVal *v) {
  return v && (v->kind == OXV_CONST || (v->kind == OXV_INPUT && !v->id));
}

static OxVal *def_const(OxCtx *c, const Onnx__NodeProto *n, int i, int rank, const OxDim *dims,
                        int elem) {
  OxVal *v = ox_new(c, n->output[i], OXV_CONST);
  v->rank = rank;
  for (int k = 0; k < rank; k++) v->dims[k] = (OxDim){dims[k].v, NULL};
  v->elem = elem;
  v->n = ox_numel(v);
  v->cv = arena_alloc(c->a, (size_t)(v->n ? v->n : 1) * sizeof(double));
  return v;
}

/* the values of a constant integer input (shape, axes, pads ...); -1 when it is not one */
static int const_ints(OxCtx *c, const Onnx__NodeProto *n, int i, int64_t *out, int max,
                      const char *what) {
  OxVal *v = need(c, n, i);
  if (!v) return -1;
  if (!is_const(v))
    return ox_err(c, n, "%s (input %d) is computed at run time; nnc needs it constant", what, i);
  if (v->n > max) return ox_err(c, n, "%s has %lld values, at most %d", what, (long long)v->n, max);
  for (int64_t k = 0; k < v->n; k++) out[k] = (int64_t)v->cv[k];
  return (int)v->n;
}

/* axes from the attribute (older opsets) or from input i (newer); -2 = none given */
static int axes_of(OxCtx *c, const Onnx__NodeProto *n, int i, int64_t *axes) {
  int k = ox_attr_ints(n, "axes", axes, OX_MAX_RANK + 1);
  if (k >= 0) return k;
  if (has_in(n, i)) return const_ints(c, n, i, axes, OX_MAX_RANK + 1, "axes");
  return -2;
}

static int broadcast(OxCtx *c, const Onnx__NodeProto *n, const OxVal *a, const OxVal *b, int *rank,
                     OxDim *out) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  for (int k = 0; k < r; k++) {
    int ia = k - (r - a->rank), ib = k - (r - b->rank);
    OxDim da = ia >= 0 ? a->dims[ia] : (OxDim){1, NULL};
    OxDim db = ib >= 0 ? b->dims[ib] : (OxDim){1, NULL};
    if (da.v != db.v && da.v != 1 && db.v != 1)
      return ox_err(c, n, "operands do not broadcast (dim %d: %lld vs %lld)", k, (long long)da.v,
                    (long long)db.v);
    out[k] = da.v == 1 && !da.sym ? db : da;
  }
  *rank = r;
  return 0;
}

static int float_input(OxCtx *c, const Onnx__NodeProto *n, const OxVal *v) {
  if (v->elem == F_FLOAT ||
      (v->kind == OXV_CONST && v->elem == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE))
    return 0;
  return ox_err(c, n,
                "'%s' is %s; nnc computes on float tensors (integer values only as "
                "constants that are folded)",
                v->name, ox_dt_name(v->elem));
}

static void print_ints(FILE *f, const int64_t *v, int k) {
  fputc('[', f);
  for (int i = 0; i < k; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)v[i]);
  fputc(']', f);
}

/* a pair argument: `3` when both are equal, else `[3, 5]` */
static const char *pair(OxCtx *c, const int64_t *p) {
  return p[0] == p[1] ? arena_printf(c->a, "%lld", (long long)p[0])
                      : arena_printf(c->a, "[%lld, %lld]", (long long)p[0], (long long)p[1]);
}

static const char *dims_str(OxCtx *c, int rank, const OxDim *dims) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return "[]";
  ox_print_dims(f, rank, dims);
  fclose(f);
  const char *s = arena_strdup(c->a, buf ? buf : "[]");
  free(buf);
  return s;
}

/* an output that is its input (Identity, Cast to the same type, Dropout at inference) */
static int alias(OxCtx *c, const Onnx__NodeProto *n, OxVal *x) {
  if (x->kind == OXV_INPUT && !ox_operand(c, n, 0, 0)) return -1;
  x = ox_find(c, n->input[0]);
  OxVal copy = *x;
  OxVal *y = ox_new(c, n->output[0], x->kind);
  const char *nm = y->name;
  *y = copy;
  y->name = nm;
  y->param = NULL; /* an exporter's Identity copy of an initializer is a parameter of its own */
  return 0;
}

/* --- elementwise ----------------------------------------------------------------------- */

static double fold_unary(const char *fn, double x) {
  if (!strcmp(fn, "relu")) return x > 0 ? x : 0;
  if (!strcmp(fn, "sqrt")) return sqrt(x);
  if (!strcmp(fn, "exp")) return exp(x);
  if (!strcmp(fn, "log")) return log(x);
  if (!strcmp(fn, "tanh")) return tanh(x);
  if (!strcmp(fn, "neg")) return -x;
  return 1 / (1 + exp(-x));
}

static int op_unary(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  const char *fn = op_entry(idx)->arg;
  if (is_const(x) && strcmp(fn, "gelu")) {
    OxVal *y = def_const(c, n, 0, x->rank, x->dims, F_FLOAT);
    for (int64_t k = 0; k < y->n; k++) y->cv[k] = fold_unary(fn, x->cv[k]);
    return 0;
  }
  if (!strcmp(fn, "gelu") && strcmp(ox_attr_s(c, n, "approximate", "none"), "none"))
    return ox_err(c, n,
                  "approximate = \"tanh\" is not supported; nnc's gelu is the exact erf "
                  "form (approximate = \"none\")");
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  ox_line(c, n, y->id, "%s(%s)", fn, e);
  return 0;
}

/* Erf exists in nnc only inside the erf form of GELU (ox_fuse.c) */
static int op_erf(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  size_t i = 0;
  while (i < c->g->n_node && c->g->node[i] != n) i++;
  if (i == c->g->n_node || !c->gelu_out[i])
    return ox_err(c, n,
                  "nnc has no erf; Erf is imported only as part of GELU, "
                  "x * 0.5 * (1 + erf(x / sqrt(2)))");
  OxVal *x = ox_find(c, c->gelu_x[i]);
  if (!x || float_input(c, n, x)) return x ? -1 : ox_err(c, n, "the GELU input is missing");
  const char *e = ox_value_expr(c, n, c->gelu_x[i], 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, c->gelu_out[i], 0, x->rank, x->dims);
  ox_line(c, n, y->id, "gelu(%s)", e);
  return 0;
}

static int op_identity(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  return x ? alias(c, n, x) : -1;
}

static int op_dropout(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  double p = ox_attr_f(n, "ratio", 0.5);
  if (has_in(n, 1)) {
    OxVal *r = need(c, n, 1);
    if (!is_const(r)) return ox_err(c, n, "ratio must be a constant");
    p = r->cv[0];
  }
  if (float_input(c, n, x)) return -1;
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  if (p <= 0) {
    ox_line(c, n, y->id, "%s", e);
    return 0;
  }
  if (p >= 1) return ox_err(c, n, "ratio %g: nnc's dropout takes 0 <= p < 1", p);
  ox_line(c, n, y->id, "dropout(%s, p = %.9g)", e, p);
  return 0;
}

static double fold_binary(char op, double a, double b) {
  switch (op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    default:
      return a / b;
  }
}

/* the element of constant v that element k of a result of shape dims (rank r) reads under
 * numpy broadcasting */
static int64_t bcast_index(int64_t k, int r, const OxDim *dims, const OxVal *v) {
  int64_t iv = 0, sv = 1;
  for (int d = r - 1; d >= 0; d--) {
    int64_t i = k % dims[d].v;
    k /= dims[d].v;
    int dv = d - (r - v->rank);
    if (dv >= 0) iv += (v->dims[dv].v == 1 ? 0 : i) * sv, sv *= v->dims[dv].v;
  }
  return iv;
}

/* both operands constant: numpy broadcasting over the flat index */
static int fold_bin(OxCtx *c, const Onnx__NodeProto *n, OxVal *a, OxVal *b, int r,
                    const OxDim *dims, char op) {
  int elem = a->elem == F_INT64 && b->elem == F_INT64 ? F_INT64 : F_FLOAT;
  OxVal *y = def_const(c, n, 0, r, dims, elem);
  for (int64_t k = 0; k < y->n; k++) {
    double v = fold_binary(op, a->cv[bcast_index(k, r, dims, a)], b->cv[bcast_index(k, r, dims, b)]);
    y->cv[k] = elem == F_INT64 && op == '/' ? floor(v) : v;
  }
  return 0;
}

/* before opset 7, `broadcast = 1, axis = k` aligns B's dims with A's from axis k: B gains
 * trailing 1s (a constant is reshaped here, a tensor by the caller) */
static int legacy_broadcast(OxCtx *c, const Onnx__NodeProto *n, const OxVal *a, OxVal *b,
                            int *pad) {
  *pad = 0;
  if (c->opset >= 7 || !ox_attr_i(n, "broadcast", 0) || !ox_attr(n, "axis")) return 0;
  int ax;
  if (ox_axis(c, n, ox_attr_i(n, "axis", 0), a->rank, &ax)) return -1;
  *pad = a->rank - ax - b->rank;
  if (*pad < 0) return ox_err(c, n, "B does not fit A from axis %d", ax);
  for (int i = 0; i < *pad; i++) b->dims[b->rank++] = (OxDim){1, NULL};
  return 0;
}

static int op_binary(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *a = need(c, n, 0), *b0 = a ? need(c, n, 1) : NULL;
  if (!b0) return -1;
  OxVal bv = *b0, *b = &bv;
  int r, pad;
  if (legacy_broadcast(c, n, a, b, &pad)) return -1;
  OxDim dims[OX_MAX_RANK];
  if (broadcast(c, n, a, b, &r, dims)) return -1;
  char op = op_entry(idx)->arg[0];
  if (is_const(a) && is_const(b)) return fold_bin(c, n, a, b, r, dims, op);
  if (float_input(c, n, a) || float_input(c, n, b)) return -1;
  const char *ea = ox_operand(c, n, 0, 1 + b->rank);
  const char *eb = ea ? ox_operand(c, n, 1, 1 + a->rank) : NULL;
  if (!eb) return -1;
  if (pad && (b0->kind != OXV_CONST || b0->n != 1))
    eb = arena_printf(c->a, "reshape(%s, %s)", eb, dims_str(c, b->rank, b->dims));
  OxVal *y = ox_def(c, n, 0, r, dims);
  ox_line(c, n, y->id, "%s %c %s", ea, op, eb);
  return 0;
}

static int op_pow(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *a = need(c, n, 0), *b = a ? need(c, n, 1) : NULL;
  if (!b || float_input(c, n, a)) return -1;
  if (!is_const(b) || b->n != 1)
    return ox_err(c, n, "the exponent must be one constant number (nnc's `x ^ c`)");
  if (is_const(a)) {
    OxVal *y = def_const(c, n, 0, a->rank, a->dims, F_FLOAT);
    for (int64_t k = 0; k < y->n; k++) y->cv[k] = pow(a->cv[k], b->cv[0]);
    return 0;
  }
  const char *ea = ox_operand(c, n, 0, 0);
  if (!ea) return -1;
  OxVal *y = ox_def(c, n, 0, a->rank, a->dims);
  ox_line(c, n, y->id, "%s ^ %.9g", ea, b->cv[0]);
  return 0;
}

/* Sum and Mean of any number of inputs */
static int op_nary(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  char *expr = "";
  int r = 0;
  OxDim dims[OX_MAX_RANK];
  OxVal acc = {0};
  for (size_t i = 0; i < n->n_input; i++) {
    OxVal *v = need(c, n, (int)i);
    if (!v || float_input(c, n, v)) return -1;
    if (i == 0) acc = *v;
    if (i && broadcast(c, n, &acc, v, &r, dims)) return -1;
    if (i) acc.rank = r, memcpy(acc.dims, dims, sizeof dims);
  }
  for (size_t i = 0; i < n->n_input; i++) {
    const char *e = ox_operand(c, n, (int)i, 0);
    if (!e) return -1;
    expr = ox_cat(c, expr, "%s%s", i ? " + " : "", e);
  }
  OxVal *y = ox_def(c, n, 0, acc.rank, acc.dims);
  if (!strcmp(op_entry(idx)->arg, "mean") && n->n_input > 1)
    ox_line(c, n, y->id, "(%s) / %zu.0", expr, n->n_input);
  else
    ox_line(c, n, y->id, "%s", expr);
  return 0;
}

/* Clip(x, min, max) = relu(x - min) + min - relu(x - max); LeakyRelu, Elu, Softplus,
 * HardSigmoid, HardSwish, Reciprocal likewise from nnc's elementwise functions */
static int op_clip(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  double lo = ox_attr_f(n, "min", -INFINITY), hi = ox_attr_f(n, "max", INFINITY);
  for (int i = 1; i <= 2; i++) {
    if (!has_in(n, i)) continue;
    OxVal *b = need(c, n, i);
    if (!is_const(b) || b->n != 1) return ox_err(c, n, "min and max must be constant numbers");
    *(i == 1 ? &lo : &hi) = b->cv[0];
  }
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  if (isinf(lo) && isinf(hi))
    ox_line(c, n, y->id, "%s", e);
  else if (isinf(hi))
    ox_line(c, n, y->id, "relu(%s - (%.9g)) + (%.9g)", e, lo, lo);
  else if (isinf(lo))
    ox_line(c, n, y->id, "(%.9g) - relu((%.9g) - %s)", hi, hi, e);
  else
    ox_line(c, n, y->id, "relu(%s - (%.9g)) - relu(%s - (%.9g)) + (%.9g)", e, lo, e, hi, lo);
  return 0;
}

static int op_activation(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  const char *e = ox_operand(c, n, 0, 0), *k = op_entry(idx)->arg;
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  double alpha = ox_attr_f(n, "alpha", !strcmp(k, "leaky") ? 0.01 : !strcmp(k, "hsig") ? 0.2 : 1.0);
  double beta = ox_attr_f(n, "beta", 0.5);
  if (!strcmp(k, "leaky"))
    ox_line(c, n, y->id, "relu(%s) - %.9g * relu(-%s)", e, alpha, e);
  else if (!strcmp(k, "elu"))
    ox_line(c, n, y->id, "relu(%s) + %.9g * (exp(-relu(-%s)) - 1)", e, alpha, e);
  else if (!strcmp(k, "selu"))
    ox_line(c, n, y->id, "%.9g * (relu(%s) + %.9g * (exp(-relu(-%s)) - 1))",
            ox_attr_f(n, "gamma", 1.05070102214813232421875), e,
            ox_attr_f(n, "alpha", 1.67326319217681884765625), e);
  else if (!strcmp(k, "abs"))
    ox_line(c, n, y->id, "relu(%s) + relu(-%s)", e, e);
  else if (!strcmp(k, "softplus"))
    ox_line(c, n, y->id, "log(exp(%s) + 1)", e);
  else if (!strcmp(k, "hsig"))
    ox_line(c, n, y->id, "relu(%.9g * %s + %.9g) - relu(%.9g * %s + %.9g)", alpha, e, beta, alpha,
            e, beta - 1);
  else if (!strcmp(k, "hswish"))
    ox_line(c, n, y->id, "%s * (relu(%s / 6 + 0.5) - relu(%s / 6 - 0.5))", e, e, e);
  else if (!strcmp(k, "softsign"))
    ox_line(c, n, y->id, "%s / (1 + relu(%s) + relu(-%s))", e, e, e);
  else if (!strcmp(k, "mish"))
    ox_line(c, n, y->id, "%s * tanh(log(exp(%s) + 1))", e, e);
  else if (!strcmp(k, "celu"))
    ox_line(c, n, y->id, "relu(%s) + %.9g * (exp(-relu(-%s) / %.9g) - 1)", e, alpha, e, alpha);
  else
    ox_line(c, n, y->id, "1 / %s", e);
  return 0;
}

/* PRelu(x, slope) = relu(x) - slope * relu(-x), the slope broadcast as numpy does */
static int op_prelu(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0), *sl = x ? need(c, n, 1) : NULL;
  if (!sl || float_input(c, n, x) || float_input(c, n, sl)) return -1;
  if (c->opset < 7 && is_const(sl) && sl->rank == 1 && x->rank > 2 && sl->n == x->dims[1].v &&
      sl->n > 1) /* before opset 7 a slope of C values is per channel */
    for (sl->rank = 1; sl->rank < x->rank - 1; sl->rank++) sl->dims[sl->rank] = (OxDim){1, NULL};
  int r;
  OxDim dims[OX_MAX_RANK];
  if (broadcast(c, n, x, sl, &r, dims)) return -1;
  if (r != x->rank) return ox_err(c, n, "the slope has a higher rank than the input");
  const char *e = ox_operand(c, n, 0, 0), *es = e ? ox_operand(c, n, 1, 1 + x->rank) : NULL;
  if (!es) return -1;
  OxVal *y = ox_def(c, n, 0, r, dims);
  ox_line(c, n, y->id, "relu(%s) - %s * relu(-%s)", e, es, e);
  return 0;
}

/* Max(a, b, ...) = a + relu(b - a) pairwise; Min(a, b) = a - relu(a - b) */
static int op_minmax(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  int mx = !strcmp(op_entry(idx)->arg, "max");
  OxVal acc = {0};
  const char *expr = NULL;
  for (size_t i = 0; i < n->n_input; i++) {
    OxVal *v = need(c, n, (int)i);
    if (!v || float_input(c, n, v)) return -1;
    int r;
    OxDim dims[OX_MAX_RANK];
    if (i && broadcast(c, n, &acc, v, &r, dims)) return -1;
    const char *e = ox_operand(c, n, (int)i, 0);
    if (!e) return -1;
    if (!i) {
      acc = *v, expr = e;
      continue;
    }
    acc.rank = r, memcpy(acc.dims, dims, sizeof dims);
    const char *t = ox_ident(c, arena_printf(c->a, "%s_%zu", n->output[0], i));
    if (i + 1 < n->n_input)
      ox_line(c, n, t, mx ? "%s + relu(%s - %s)" : "%s - relu(%s - %s)", expr, mx ? e : expr,
              mx ? expr : e);
    else
      expr = arena_printf(c->a, mx ? "%s + relu(%s - %s)" : "%s - relu(%s - %s)", expr,
                          mx ? e : expr, mx ? expr : e);
    if (i + 1 < n->n_input) expr = t;
  }
  OxVal *y = ox_def(c, n, 0, acc.rank, acc.dims);
  ox_line(c, n, y->id, "%s", expr);
  return 0;
}

/* --- layers ----------------------------------------------------------------------------- */

/* a 2-D weight [O, K] for dense from B ([K, O] unless transposed) */
static int dense_weight(OxCtx *c, const Onnx__NodeProto *n, OxVal *w, int trans, const char *scope,
                        int64_t *out) {
  if (w->rank != 2)
    return ox_err(c, n, "the weight '%s' has rank %d, dense needs 2", w->name, w->rank);
  int64_t o = trans ? w->dims[0].v : w->dims[1].v, k = trans ? w->dims[1].v : w->dims[0].v;
  int64_t shape[2] = {o, k};
  *out = o;
  return ox_weight(c, n, arena_printf(c->a, "%s.weight", scope), w, !trans, 2, shape);
}

static int bias_weight(OxCtx *c, const Onnx__NodeProto *n, OxVal *b, const char *scope, int64_t o) {
  if (b->kind == OXV_CONST && b->n != o)
    return ox_err(c, n, "the bias '%s' has %lld values for %lld outputs", b->name, (long long)b->n,
                  (long long)o);
  int64_t shape[1] = {o};
  return ox_weight(c, n, arena_printf(c->a, "%s.bias", scope), b, 0, 1, shape);
}

/* the Add that a MatMul's only use is, when its other operand is a [O] constant bias */
static int fused_bias(OxCtx *c, const Onnx__NodeProto *n, int64_t o, int *node, int *which) {
  if (ox_uses(c, n->output[0]) != 1) return 0;
  for (size_t i = 0; i < c->g->n_node; i++) {
    const Onnx__NodeProto *m = c->g->node[i];
    if (strcmp(m->op_type, "Add") || m->n_input != 2) continue;
    for (int s = 0; s < 2; s++) {
      OxVal *b = strcmp(m->input[s], n->output[0]) ? NULL : ox_find(c, m->input[1 - s]);
      if (b && is_const(b) && b->rank == 1 && b->n == o) {
        *node = (int)i;
        *which = 1 - s;
        return 1;
      }
    }
  }
  return 0;
}

static int matmul_shape(OxCtx *c, const Onnx__NodeProto *n, const OxVal *a, const OxVal *b, int *r,
                        OxDim *out);

/* `weight = P` when w is already the parameter P (weight tying: an embedding table that is
 * also the output projection), stored [out, in] as dense needs it */
static const char *tied_weight(OxCtx *c, const Onnx__NodeProto *n, const OxVal *w, int trans) {
  if (!w->param) return "";
  if (!trans || w->rank != 2) {
    ox_err(c, n, "'%s' is the parameter %s already, which dense would read transposed", w->name,
           w->param);
    return NULL;
  }
  return arena_printf(c->a, ", weight = %s", w->param);
}

static int emit_dense(OxCtx *c, const Onnx__NodeProto *n, const Onnx__NodeProto *out_node, OxVal *x,
                      OxVal *w, int trans, OxVal *bias) {
  if (w->tsrc) w = ox_find(c, w->tsrc), trans = !trans; /* MatMul(x, Transpose(W)): W as stored */
  const char *tied = tied_weight(c, n, w, trans);
  if (!tied) return -1;
  const char *scope = ox_scope(c, tied[0] && bias ? bias->name : w->name, fallback_scope(c, n));
  int64_t o = w->rank == 2 ? w->dims[0].v : 0;
  if (!tied[0] && dense_weight(c, n, w, trans, scope, &o)) return -1;
  if (bias && bias_weight(c, n, bias, scope, o)) return -1;
  if (x->dims[x->rank - 1].v != (trans ? w->dims[1].v : w->dims[0].v))
    return ox_err(c, n, "inner dims differ: %lld vs %lld", (long long)x->dims[x->rank - 1].v,
                  (long long)(trans ? w->dims[1].v : w->dims[0].v));
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxDim dims[OX_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  dims[x->rank - 1] = (OxDim){o, NULL};
  OxVal *y = ox_def(c, out_node, 0, x->rank, dims);
  if (tied[0] && !bias)
    ox_line(c, n, y->id, "dense(%s, %lld, bias = false%s)", e, (long long)o, tied);
  else
    ox_line(c, n, y->id, "dense(%s, %lld%s%s, name = \"%s\")", e, (long long)o,
            bias ? "" : ", bias = false", tied, scope);
  return 0;
}

static int op_matmul(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *a = need(c, n, 0), *b = a ? need(c, n, 1) : NULL;
  if (!b || float_input(c, n, a) || float_input(c, n, b)) return -1;
  int r;
  OxDim dims[OX_MAX_RANK];
  if (matmul_shape(c, n, a, b, &r, dims)) return -1;
  if (weightish(b) && b->rank == 2 && a->rank >= 2 && !is_const(a)) {
    int node, which;
    if (fused_bias(c, n, b->dims[1].v, &node, &which)) {
      const Onnx__NodeProto *add = c->g->node[node];
      c->skip[node] = 1;
      return emit_dense(c, n, add, a, b, 0, ox_find(c, add->input[which]));
    }
    return emit_dense(c, n, n, a, b, 0, NULL);
  }
  const char *ea = ox_operand(c, n, 0, 0), *eb = ea ? ox_operand(c, n, 1, 0) : NULL;
  if (!eb) return -1;
  OxVal *y = ox_def(c, n, 0, r, dims);
  ox_line(c, n, y->id, "%s @ %s", ea, eb);
  return 0;
}

static int matmul_shape(OxCtx *c, const Onnx__NodeProto *n, const OxVal *a, const OxVal *b, int *r,
                        OxDim *out) {
  if (!a->rank || !b->rank) return ox_err(c, n, "matmul of a scalar");
  OxVal ba = *a, bb = *b;
  ba.rank = a->rank > 2 ? a->rank - 2 : 0;
  bb.rank = b->rank > 2 ? b->rank - 2 : 0;
  int64_t k1 = a->dims[a->rank - 1].v, k2 = b->dims[b->rank >= 2 ? b->rank - 2 : 0].v;
  if (k1 != k2)
    return ox_err(c, n, "inner dims differ: %lld vs %lld", (long long)k1, (long long)k2);
  if (broadcast(c, n, &ba, &bb, r, out)) return -1;
  if (a->rank >= 2) out[(*r)++] = a->dims[a->rank - 2];
  if (b->rank >= 2) out[(*r)++] = b->dims[b->rank - 1];
  return 0;
}

static int op_gemm(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *a = need(c, n, 0), *b = a ? need(c, n, 1) : NULL;
  if (!b || float_input(c, n, a)) return -1;
  double alpha = ox_attr_f(n, "alpha", 1), beta = ox_attr_f(n, "beta", 1);
  OxVal *cc = has_in(n, 2) ? need(c, n, 2) : NULL;
  if (ox_attr_i(n, "transA", 0))
    return ox_err(c, n, "transA = 1 is not supported; nnc's dense takes A as [M, K]");
  if (alpha != 1 || (cc && beta != 1))
    return ox_err(c, n,
                  "alpha = %g, beta = %g: nnc maps Gemm onto dense, which needs "
                  "alpha = beta = 1",
                  alpha, beta);
  if (!weightish(b) || a->rank != 2)
    return ox_err(c, n, "B must be an initializer (or a graph input fed as a weight) and A 2-D");
  int trans = (int)ox_attr_i(n, "transB", 0);
  int64_t o = trans ? b->dims[0].v : b->dims[1].v;
  if (cc && !(weightish(cc) && cc->rank <= 2 && ox_numel(cc) == o &&
              cc->dims[0].v == (cc->rank == 2 ? 1 : o)))
    return ox_err(c, n,
                  "C of shape %s: nnc's dense takes a bias of [%lld] (or [1, %lld]) from "
                  "an initializer",
                  dims_str(c, cc->rank, cc->dims), (long long)o, (long long)o);
  return emit_dense(c, n, n, a, b, trans, cc);
}

static int conv_pads(OxCtx *c, const Onnx__NodeProto *n, const OxVal *x, const int64_t *k,
                     const int64_t *s, const int64_t *d, int64_t *pad) {
  int64_t p[4] = {0, 0, 0, 0};
  const char *ap = ox_attr_s(c, n, "auto_pad", "NOTSET");
  if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
    for (int i = 0; i < 2; i++) {
      int64_t in = x->dims[2 + i].v, o = (in + s[i] - 1) / s[i];
      int64_t t = (o - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in;
      t = t < 0 ? 0 : t;
      p[i] = t / 2, p[i + 2] = t - t / 2;
    }
  } else if (strcmp(ap, "VALID")) {
    ox_attr_ints(n, "pads", p, 4);
  }
  if (x->padded && strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
    return ox_err(c, n, "auto_pad %s after a Pad is not supported", ap);
  for (int i = 0; i < 4 && x->padded; i++) p[i] += x->pad4[i];
  if (p[0] != p[2] || p[1] != p[3])
    return ox_err(c, n,
                  "asymmetric padding (pads = [%lld, %lld, %lld, %lld]); nnc pads both "
                  "sides equally",
                  (long long)p[0], (long long)p[1], (long long)p[2], (long long)p[3]);
  pad[0] = p[0], pad[1] = p[1];
  return 0;
}

/* kernel, strides, dilations and pads of a 2-D Conv or pool; output spatial sizes. ceil_mode
 * (pools) rounds up as PyTorch does: the last window must start inside the input or its left
 * padding; *ceil says whether that changed a size */
static int window(OxCtx *c, const Onnx__NodeProto *n, const OxVal *x, const int64_t *kdefault,
                  int64_t *k, int64_t *s, int64_t *d, int64_t *p, OxDim *out, int *ceil) {
  if (x->rank != 4)
    return ox_err(c, n, "input of rank %d; nnc has 1-D and 2-D convolution and pooling only",
                  x->rank);
  int64_t one[2] = {1, 1};
  if (ox_attr_ints(n, "kernel_shape", k, 2) != 2) {
    if (!kdefault) return ox_err(c, n, "kernel_shape is missing");
    memcpy(k, kdefault, sizeof one);
  }
  if (ox_attr_ints(n, "strides", s, 2) < 0) memcpy(s, one, sizeof one);
  if (ox_attr_ints(n, "dilations", d, 2) < 0) memcpy(d, one, sizeof one);
  if (conv_pads(c, n, x, k, s, d, p)) return -1;
  for (int i = 0; i < 2; i++) {
    int64_t in = x->dims[2 + i].v, span = d[i] * (k[i] - 1) + 1;
    int64_t fl = (in + 2 * p[i] - span) / s[i] + 1,
            ce = (in + 2 * p[i] - span + s[i] - 1) / s[i] + 1;
    if (fl < 1) return ox_err(c, n, "the window is larger than the padded input");
    if (ce > fl && (ce - 1) * s[i] >= in + p[i]) ce--;
    if (ox_attr_i(n, "ceil_mode", 0) && ce != fl) {
      if (!ceil)
        return ox_err(c, n, "ceil_mode = 1 changes the output size here (%lld, not %lld)",
                      (long long)ce, (long long)fl);
      *ceil = 1, fl = ce;
    }
    out[2 + i] = (OxDim){fl, NULL};
  }
  out[0] = x->dims[0];
  return 0;
}

/* --- 1-D convolution and pooling: the 2-D ops on a unit height ----------------------------- */

/* attribute a of a 1-D node for the 2-D one: kernel_shape, strides, dilations [v] -> [1, v],
 * pads [b, e] -> [0, b, 0, e]; the others as they are. NULL when a has the wrong length */
static Onnx__AttributeProto *attr_2d(OxCtx *c, Onnx__AttributeProto *a) {
  static const char *const spatial[] = {"kernel_shape", "strides", "dilations", "pads"};
  int which = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(a->name, spatial[i])) which = i;
  if (which < 0) return a;
  size_t want = which == 3 ? 2 : 1;
  if (a->n_ints != want) return NULL;
  Onnx__AttributeProto *b = arena_alloc(c->a, sizeof *b);
  *b = *a;
  b->n_ints = 2 * want;
  b->ints = arena_alloc(c->a, b->n_ints * sizeof *b->ints);
  for (size_t i = 0; i < want; i++) b->ints[2 * i] = which == 3 ? 0 : 1, b->ints[2 * i + 1] = a->ints[i];
  return b;
}

/* a value called name whose .nn expression is `reshape(e, dims)`, written as a statement */
static OxVal *reshaped_as(OxCtx *c, const Onnx__NodeProto *n, const char *name, const char *e,
                          int rank, const OxDim *dims) {
  OxVal *v = ox_new(c, name, OXV_TENSOR);
  v->rank = rank;
  memcpy(v->dims, dims, (size_t)rank * sizeof *dims);
  v->id = ox_ident(c, name);
  ox_line(c, n, v->id, "reshape(%s, %s)", e, dims_str(c, rank, dims));
  return v;
}

/* Conv, MaxPool, AveragePool, BatchNormalization on [N, C, L]: the node's 2-D form on reshape(x, [N, C, 1, L]) (a
 * Conv's weight [O, C/g, K] as [O, C/g, 1, K]), reshaped back to [N, O, L'] */
static int lower_1d(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = ox_find(c, n->input[0]);
  if (x->padded) return ox_err(c, n, "a zero Pad before a 1-D %s is not folded", n->op_type);
  Onnx__NodeProto n2 = *n;
  n2.attribute = arena_alloc(c->a, (n->n_attribute + 1) * sizeof *n2.attribute);
  for (size_t i = 0; i < n->n_attribute; i++)
    if (!(n2.attribute[i] = attr_2d(c, n->attribute[i])))
      return ox_err(c, n, "attribute %s does not fit a 1-D %s", n->attribute[i]->name, n->op_type);
  n2.input = arena_alloc(c->a, n->n_input * sizeof *n2.input);
  n2.output = arena_alloc(c->a, n->n_output * sizeof *n2.output);
  memcpy(n2.input, n->input, n->n_input * sizeof *n->input);
  memcpy(n2.output, n->output, n->n_output * sizeof *n->output);
  n2.name = arena_strdup(c->a, ox_node_name(n)); /* its errors name the node */
  n2.input[0] = arena_printf(c->a, "%s/2d", n->input[0]);
  n2.output[0] = arena_printf(c->a, "%s/2d", n->output[0]);
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxDim d4[4] = {x->dims[0], x->dims[1], {1, NULL}, x->dims[2]};
  reshaped_as(c, n, n2.input[0], e, 4, d4);
  OxVal *w = has_in(n, 1) ? ox_find(c, n->input[1]) : NULL, saved = {0};
  ptrdiff_t wi = w ? w - c->vals : -1;
  if (w && w->rank == 3) { /* seen as 4-D by the 2-D handler only */
    saved = *w;
    w->rank = 4, w->dims[3] = w->dims[2], w->dims[2] = (OxDim){1, NULL};
  }
  int rc = op_entry(idx)->fn(c, &n2, idx);
  if (saved.name) c->vals[wi] = saved;
  if (rc) return -1;
  OxVal *y4 = ox_find(c, n2.output[0]);
  OxDim d3[3] = {y4->dims[0], y4->dims[1], y4->dims[3]};
  OxVal *y = ox_def(c, n, 0, 3, d3);
  ox_line(c, n, y->id, "reshape(%s, %s)", y4->id, dims_str(c, 3, d3));
  return 0;
}

static int op_conv(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0), *w = x ? need(c, n, 1) : NULL;
  if (!w || float_input(c, n, x)) return -1;
  if (x->rank == 3) return lower_1d(c, n, idx);
  if (x->rank != 4)
    return ox_err(c, n, "input of rank %d; nnc has 1-D and 2-D convolution only (NCL, NCHW)",
                  x->rank);
  if (!weightish(w) || w->rank != 4)
    return ox_err(c, n, "the weight must be a 4-D initializer (or a graph input fed as one)");
  int64_t g = ox_attr_i(n, "group", 1), k[2], s[2], d[2], p[2],
          kw[2] = {w->dims[2].v, w->dims[3].v};
  OxDim dims[4];
  if (window(c, n, x, kw, k, s, d, p, dims, NULL)) return -1;
  if (k[0] != w->dims[2].v || k[1] != w->dims[3].v)
    return ox_err(c, n, "kernel_shape %s differs from the weight's [%lld, %lld]", pair(c, k),
                  (long long)w->dims[2].v, (long long)w->dims[3].v);
  if (x->dims[1].v != w->dims[1].v * g)
    return ox_err(c, n, "%lld input channels, weight expects %lld x %lld groups",
                  (long long)x->dims[1].v, (long long)w->dims[1].v, (long long)g);
  int64_t o = w->dims[0].v, wshape[4] = {o, w->dims[1].v, k[0], k[1]};
  dims[1] = (OxDim){o, NULL};
  const char *scope = ox_scope(c, w->name, fallback_scope(c, n));
  if (ox_weight(c, n, arena_printf(c->a, "%s.weight", scope), w, 0, 4, wshape)) return -1;
  OxVal *b = has_in(n, 2) ? need(c, n, 2) : NULL;
  if (b && (!weightish(b) || bias_weight(c, n, b, scope, o)))
    return b && !weightish(b) ? ox_err(c, n, "the bias must be an initializer") : -1;
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, 4, dims);
  char extra[256] = "";
  if (s[0] != 1 || s[1] != 1) snprintf(extra, sizeof extra, ", stride = %s", pair(c, s));
  if (p[0] || p[1])
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", pad = %s", pair(c, p));
  if (d[0] != 1 || d[1] != 1)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", dilation = %s", pair(c, d));
  if (g != 1)
    snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ", groups = %lld", (long long)g);
  ox_line(c, n, y->id, "conv2d(%s, %lld, kernel = %s%s%s, name = \"%s\")", e, (long long)o,
          pair(c, k), extra, b ? "" : ", bias = false", scope);
  return 0;
}

static int op_batchnorm(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  if (ox_attr_i(n, "training_mode", 0) || (n->n_output > 1 && n->output[1][0]))
    return ox_err(c, n,
                  "training mode (running statistics as outputs) is not imported; "
                  "export the model in eval mode");
  if (!ox_attr_i(n, "spatial", 1)) return ox_err(c, n, "spatial = 0 is not supported");
  if (x->rank == 3) return lower_1d(c, n, idx);
  if (x->rank != 2 && x->rank != 4)
    return ox_err(c, n, "input of rank %d; nnc's batchnorm takes [N, C], [N, C, L] or [N, C, H, W]",
                  x->rank);
  static const char *const pn[4] = {"weight", "bias", "running_mean", "running_var"};
  OxVal *ps[4];
  for (int i = 0; i < 4; i++)
    if (!(ps[i] = need(c, n, i + 1)) || !weightish(ps[i]))
      return ps[i] ? ox_err(c, n, "input %d must be an initializer", i + 1) : -1;
  const char *scope = ox_scope(c, ps[0]->name, fallback_scope(c, n));
  int64_t ch[1] = {x->dims[1].v};
  for (int i = 0; i < 4; i++) {
    if (ps[i]->kind == OXV_CONST && ps[i]->n != ch[0])
      return ox_err(c, n, "'%s' has %lld values for %lld channels", ps[i]->name,
                    (long long)ps[i]->n, (long long)ch[0]);
    if (ox_weight(c, n, arena_printf(c->a, "%s.%s", scope, pn[i]), ps[i], 0, 1, ch)) return -1;
  }
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  ox_line(c, n, y->id, "batchnorm(%s, eps = %.6g, momentum = %.6g, name = \"%s\")", e,
          ox_attr_f(n, "epsilon", 1e-5), 1 - ox_attr_f(n, "momentum", 0.9), scope);
  return 0;
}

/* LayerNormalization's optional outputs: Mean and InvStdDev over the normalized dims, kept */
static int layernorm_stats(OxCtx *c, const Onnx__NodeProto *n, const OxVal *x, const char *e,
                           int ax) {
  int want_mean = n->n_output > 1 && n->output[1][0], want_inv = n->n_output > 2 && n->output[2][0];
  if (!want_mean && !want_inv) return 0;
  OxDim dims[OX_MAX_RANK];
  char axes[64] = "";
  memcpy(dims, x->dims, sizeof dims);
  for (int i = ax; i < x->rank; i++) {
    dims[i] = (OxDim){1, NULL};
    snprintf(axes + strlen(axes), sizeof axes - strlen(axes), "%s%d", i > ax ? ", " : "", i);
  }
  const char *m = arena_printf(c->a, "mean(%s, [%s], keepdim = true)", e, axes);
  if (want_mean) {
    OxVal *mv = ox_def(c, n, 1, x->rank, dims);
    ox_line(c, n, mv->id, "%s", m);
    m = mv->id;
  }
  if (want_inv) {
    OxVal *iv = ox_def(c, n, 2, x->rank, dims);
    ox_line(c, n, iv->id, "1.0 / sqrt(mean((%s - %s) ^ 2, [%s], keepdim = true) + %.9g)", e, m,
            axes, ox_attr_f(n, "epsilon", 1e-5));
  }
  return 0;
}

static int op_layernorm(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0), *s = x ? need(c, n, 1) : NULL;
  if (!s || float_input(c, n, x)) return -1;
  int ax;
  if (ox_axis(c, n, ox_attr_i(n, "axis", -1), x->rank, &ax)) return -1;
  int64_t shape[OX_MAX_RANK], cnt = 1;
  for (int i = ax; i < x->rank; i++) shape[i - ax] = x->dims[i].v, cnt *= x->dims[i].v;
  OxVal *b = has_in(n, 2) ? need(c, n, 2) : NULL;
  if (!weightish(s) || (b && !weightish(b)) || (s->kind == OXV_CONST && s->n != cnt) ||
      (b && b->kind == OXV_CONST && b->n != cnt))
    return ox_err(c, n, "scale and bias must be initializers shaped like the normalized dims");
  const char *scope = ox_scope(c, s->name, fallback_scope(c, n));
  if (ox_weight(c, n, arena_printf(c->a, "%s.weight", scope), s, 0, x->rank - ax, shape)) return -1;
  OxVal zeros = {.name = "zeros", .kind = OXV_CONST, .n = cnt};
  if (!b) zeros.cv = arena_alloc(c->a, (size_t)cnt * sizeof(double)), b = &zeros;
  if (ox_weight(c, n, arena_printf(c->a, "%s.bias", scope), b, 0, x->rank - ax, shape)) return -1;
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  ox_line(c, n, y->id, "layernorm(%s, dims = %d, eps = %.9g, name = \"%s\")", e, x->rank - ax,
          ox_attr_f(n, "epsilon", 1e-5), scope);
  return layernorm_stats(c, n, x, e, ax);
}

static int op_pool(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  if (x->rank == 3) return lower_1d(c, n, idx);
  int64_t k[2], s[2], d[2], p[2];
  int ceil = 0;
  OxDim dims[4];
  if (window(c, n, x, NULL, k, s, d, p, dims, &ceil)) return -1;
  const char *fn = op_entry(idx)->arg;
  if (d[0] != 1 || d[1] != 1) return ox_err(c, n, "dilations are not supported in pooling");
  if (2 * p[0] > k[0] || 2 * p[1] > k[1])
    return ox_err(c, n, "pads %s with kernel %s; nnc's pooling pads at most half the kernel",
                  pair(c, p), pair(c, k));
  if (n->n_output > 1 && n->output[1][0]) return ox_err(c, n, "the Indices output is not imported");
  if (x->padded && strcmp(fn, "avgpool"))
    return ox_err(c, n, "a zero Pad before max pooling; nnc's maxpool pads with -inf");
  /* the pool's own padding (explicit or auto_pad), beside what a folded Pad added */
  int own = p[0] != (x->padded ? x->pad4[0] : 0) || p[1] != (x->padded ? x->pad4[1] : 0);
  int exclude = !strcmp(fn, "avgpool") && (own || ceil) && !ox_attr_i(n, "count_include_pad", 0);
  if (exclude && x->padded)
    return ox_err(c, n,
                  "count_include_pad = 0 after a zero Pad: nnc's avgpool counts all of its "
                  "padding or none");
  dims[1] = x->dims[1];
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, 4, dims);
  ox_line(c, n, y->id, "%s(%s, %s, stride = %s%s%s%s%s)", fn, e, pair(c, k), pair(c, s),
          p[0] || p[1] ? ", pad = " : "", p[0] || p[1] ? pair(c, p) : "",
          ceil ? ", ceil_mode = true" : "", exclude ? ", count_include_pad = false" : "");
  return 0;
}

static int op_global_pool(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  if (x->rank < 3) return ox_err(c, n, "input of rank %d has no spatial dims", x->rank);
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxDim dims[OX_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  char axes[64] = "";
  for (int i = 2; i < x->rank; i++) {
    dims[i] = (OxDim){1, NULL};
    snprintf(axes + strlen(axes), sizeof axes - strlen(axes), "%s%d", i > 2 ? ", " : "", i);
  }
  OxVal *y = ox_def(c, n, 0, x->rank, dims);
  const char *fn = op_entry(idx)->arg;
  if (!strcmp(fn, "mean") && x->rank == 4)
    ox_line(c, n, y->id, "global_avgpool(%s)", e);
  else
    ox_line(c, n, y->id, "%s(%s, [%s], keepdim = true)", fn, e, axes);
  return 0;
}

/* a zero Pad of the spatial dims is folded into the Conv or AveragePool that alone reads it
 * (the exporters of TensorFlow models write SAME padding this way) */
static int op_pad(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t pads[8] = {0};
  double value = ox_attr_f(n, "value", 0);
  int k = c->opset < 11 ? ox_attr_ints(n, c->opset < 2 ? "paddings" : "pads", pads, 8)
                        : const_ints(c, n, 1, pads, 8, "pads");
  if (c->opset >= 11 && has_in(n, 2)) {
    OxVal *v = need(c, n, 2);
    if (!is_const(v) || v->n != 1) return ox_err(c, n, "the pad value must be a constant");
    value = v->cv[0];
  }
  if (k != 8 || x->rank != 4 || has_in(n, 3))
    return k == -1 && c->opset >= 11 ? -1 : ox_err(c, n, "nnc folds Pad of 4-D tensors only");
  if (strcmp(ox_attr_s(c, n, "mode", "constant"), "constant") || value != 0 || pads[0] || pads[1] ||
      pads[4] || pads[5])
    return ox_err(c, n,
                  "nnc has no pad op; only zero padding of H and W is folded (into a "
                  "following Conv or AveragePool)");
  int u = -1;
  for (size_t i = 0; ox_uses(c, n->output[0]) == 1 && i < c->g->n_node; i++)
    if (c->g->node[i]->n_input && !strcmp(c->g->node[i]->input[0], n->output[0])) u = (int)i;
  if (u < 0 ||
      (strcmp(c->g->node[u]->op_type, "Conv") && strcmp(c->g->node[u]->op_type, "AveragePool")))
    return ox_err(c, n,
                  "nnc has no pad op; a zero Pad folds only into the Conv or "
                  "AveragePool that alone reads it");
  for (int i = 0; i < 8; i++)
    if (pads[i] < 0) return ox_err(c, n, "negative pads (cropping) are not supported");
  if (alias(c, n, x)) return -1;
  OxVal *y = ox_find(c, n->output[0]);
  y->padded = 1;
  y->pad4[0] = pads[2], y->pad4[1] = pads[3], y->pad4[2] = pads[6], y->pad4[3] = pads[7];
  return 0;
}

/* `concat(e, e, ..., axis = ax)`: r copies of e along ax */
static const char *repeat(OxCtx *c, const char *e, int64_t r, int ax) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fputs("concat(", f);
  for (int64_t i = 0; i < r; i++) fprintf(f, "%s, ", e);
  fprintf(f, "axis = %d)", ax);
  fclose(f);
  const char *s = arena_strdup(c->a, buf ? buf : "");
  free(buf);
  return s;
}

/* Tile with constant repeats, and Expand to a constant shape, as concatenated copies */
static int op_tile(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  int expand = !strcmp(op_entry(idx)->arg, "expand");
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  int64_t rep[OX_MAX_RANK];
  int k = const_ints(c, n, 1, rep, OX_MAX_RANK, expand ? "the shape" : "repeats");
  if (k < 0) return -1;
  if (!expand && k != x->rank) return ox_err(c, n, "%d repeats for rank %d", k, x->rank);
  int r = k > x->rank ? k : x->rank;
  OxDim dims[OX_MAX_RANK];
  for (int i = 0; i < r; i++)
    dims[i] = i < r - x->rank ? (OxDim){1, NULL} : x->dims[i - (r - x->rank)];
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  if (r > x->rank) e = arena_printf(c->a, "reshape(%s, %s)", e, dims_str(c, r, dims));
  for (int i = 0; i < r; i++) {
    int64_t want = expand ? (i < r - k ? 1 : rep[i - (r - k)]) : rep[i];
    int64_t times = expand ? (dims[i].v == 1 && want > 1 ? want : 1) : want;
    if (times < 1 || times > 4096 || (expand && want != 1 && want != dims[i].v && dims[i].v != 1))
      return ox_err(c, n, "%s %lld on axis %d of size %lld is not supported",
                    expand ? "target" : "repeat", (long long)want, i, (long long)dims[i].v);
    if (times == 1) continue;
    if (!(e = repeat(c, e, times, i))) return ox_err(c, n, "out of memory");
    dims[i] = (OxDim){dims[i].v * times, NULL};
  }
  OxVal *y = ox_def(c, n, 0, r, dims);
  ox_line(c, n, y->id, "%s", e);
  return 0;
}

/* whether nearest resizing by integer factors repeats each pixel (the coordinate modes and
 * rounding under which output i reads input floor(i / s)) */
static int nearest_repeats(OxCtx *c, const Onnx__NodeProto *n, const int64_t *sc) {
  if (!strcmp(n->op_type, "Upsample")) return 1;
  const char *ct = ox_attr_s(c, n, "coordinate_transformation_mode", "half_pixel");
  const char *nm = ox_attr_s(c, n, "nearest_mode", "round_prefer_floor");
  int rounds = !strncmp(nm, "round_prefer", 12);
  if (!strcmp(ct, "half_pixel") || !strcmp(ct, "pytorch_half_pixel")) return rounds;
  if (!strcmp(ct, "asymmetric"))
    return !strcmp(nm, "floor") || (!strcmp(nm, "round_prefer_floor") && sc[0] <= 2 && sc[1] <= 2);
  return 0;
}

/* the integer factors of H and W of a nearest Resize/Upsample; -1 when there are none */
static int resize_factors(OxCtx *c, const Onnx__NodeProto *n, const OxVal *x, int64_t *sc) {
  OxVal *scales = NULL, *sizes = NULL;
  const Onnx__AttributeProto *a = ox_attr(n, "scales");
  int si = !strcmp(n->op_type, "Upsample") ? 1 : c->opset < 11 ? 1 : 2;
  if (has_in(n, si)) scales = need(c, n, si);
  if (!strcmp(n->op_type, "Resize") && c->opset >= 11 && has_in(n, 3)) sizes = need(c, n, 3);
  int64_t axes[4] = {0, 1, 2, 3};
  int na = ox_attr_ints(n, "axes", axes, 4);
  na = na < 0 ? 4 : na;
  if (strcmp(ox_attr_s(c, n, "keep_aspect_ratio_policy", "stretch"), "stretch"))
    return ox_err(c, n, "keep_aspect_ratio_policy other than stretch is not supported");
  double f[4] = {1, 1, 1, 1};
  for (int i = 0; i < na; i++) {
    int ax = (int)(axes[i] < 0 ? axes[i] + 4 : axes[i]);
    if (ax < 0 || ax > 3) return ox_err(c, n, "axis %lld out of range", (long long)axes[i]);
    if (a && (int)a->n_floats == na) f[ax] = a->floats[i];
    else if (scales && is_const(scales) && scales->n == na) f[ax] = scales->cv[i];
    else if (sizes && is_const(sizes) && sizes->n == na) f[ax] = sizes->cv[i] / (double)x->dims[ax].v;
    else return ox_err(c, n, "scales or sizes computed at run time; nnc needs them constant");
  }
  if (f[0] != 1 || f[1] != 1 || f[2] != floor(f[2]) || f[3] != floor(f[3]) || f[2] < 1 ||
      f[3] < 1 || f[2] > 64 || f[3] > 64)
    return ox_err(c, n, "scales [%g, %g, %g, %g]: nnc resizes H and W by integer factors only",
                  f[0], f[1], f[2], f[3]);
  sc[0] = (int64_t)f[2], sc[1] = (int64_t)f[3];
  return 0;
}

/* Resize / Upsample, nearest, by integer factors: each pixel repeated, as copies
 * concatenated in a rank-6 view */
static int op_resize(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  if (x->rank != 4) return ox_err(c, n, "input of rank %d; nnc resizes NCHW", x->rank);
  if (strcmp(ox_attr_s(c, n, "mode", "nearest"), "nearest"))
    return ox_err(c, n, "mode %s: nnc resizes with mode nearest only", ox_attr_s(c, n, "mode", ""));
  int64_t sc[2] = {1, 1};
  if (resize_factors(c, n, x, sc)) return -1;
  if (!nearest_repeats(c, n, sc))
    return ox_err(c, n, "this coordinate_transformation_mode / nearest_mode does not repeat "
                  "pixels; nnc resizes as floor(i / scale)");
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxDim six[6] = {x->dims[0], x->dims[1], x->dims[2], {1, NULL}, x->dims[3], {1, NULL}};
  e = arena_printf(c->a, "reshape(%s, %s)", e, dims_str(c, 6, six));
  if (sc[0] > 1) e = repeat(c, e, sc[0], 3);
  if (e && sc[1] > 1) e = repeat(c, e, sc[1], 5);
  if (!e) return ox_err(c, n, "out of memory");
  OxDim dims[4] = {x->dims[0], x->dims[1], {x->dims[2].v * sc[0], NULL},
                   {x->dims[3].v * sc[1], NULL}};
  OxVal *y = ox_def(c, n, 0, 4, dims);
  ox_line(c, n, y->id, "reshape(%s, %s)", e, dims_str(c, 4, dims));
  return 0;
}

/* GroupNormalization: statistics over each group of channels (x viewed as [N, G, rest]);
 * scale and bias per group (opset 18) or per channel (opset 21) */
static int op_groupnorm(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0), *sc = x ? need(c, n, 1) : NULL, *b = sc ? need(c, n, 2) : NULL;
  if (!b || float_input(c, n, x)) return -1;
  int64_t g = ox_attr_i(n, "num_groups", 0), ch = x->rank >= 2 ? x->dims[1].v : 0;
  if (x->rank < 3 || g < 1 || ch % g || (ox_numel(sc) != g && ox_numel(sc) != ch) ||
      ox_numel(b) != ox_numel(sc))
    return ox_err(c, n, "needs [N, C, ...] with C divisible by num_groups and a scale and bias "
                  "per group or per channel");
  const char *e = ox_operand(c, n, 0, 0), *es = e ? ox_operand(c, n, 1, 0) : NULL;
  const char *eb = es ? ox_operand(c, n, 2, 0) : NULL;
  if (!eb) return -1;
  const char *N = x->dims[0].sym ? x->dims[0].sym
                                 : arena_printf(c->a, "%lld", (long long)x->dims[0].v);
  char *ones = "";
  for (int i = 2; i < x->rank; i++) ones = ox_cat(c, ones, ", 1");
  const char *d = ox_ident(c, arena_printf(c->a, "%s_centered", n->output[0]));
  const char *z = ox_ident(c, arena_printf(c->a, "%s_normalized", n->output[0]));
  ox_line(c, n, d, "reshape(%s, [%s, %lld, -1]) - mean(reshape(%s, [%s, %lld, -1]), [2], "
          "keepdim = true)", e, N, (long long)g, e, N, (long long)g);
  ox_line(c, n, z, "%s / sqrt(mean(%s * %s, [2], keepdim = true) + %.9g)", d, d, d,
          ox_attr_f(n, "epsilon", 1e-5));
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  if (ox_numel(sc) == ch)
    ox_line(c, n, y->id, "reshape(%s, %s) * reshape(%s, [%lld%s]) + reshape(%s, [%lld%s])", z,
            dims_str(c, x->rank, x->dims), es, (long long)ch, ones, eb, (long long)ch, ones);
  else
    ox_line(c, n, y->id, "reshape(%s * reshape(%s, [%lld, 1]) + reshape(%s, [%lld, 1]), %s)", z,
            es, (long long)g, eb, (long long)g, dims_str(c, x->rank, x->dims));
  return 0;
}

/* DepthToSpace (DCR or CRD) and SpaceToDepth: reshape to rank 6, permute, reshape back */
static int op_depth_space(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  int d2s = !strcmp(op_entry(idx)->arg, "d2s");
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  int64_t b = ox_attr_i(n, "blocksize", 0);
  if (x->rank != 4 || b < 1 || b > 4096) return ox_err(c, n, "needs a 4-D input and a blocksize");
  int64_t C = x->dims[1].v, H = x->dims[2].v, W = x->dims[3].v;
  int crd = d2s && !strcmp(ox_attr_s(c, n, "mode", "DCR"), "CRD");
  if (d2s ? C % (b * b) : (H % b || W % b))
    return ox_err(c, n, "the dims are not divisible by the blocksize %lld", (long long)b);
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  const char *N =
      x->dims[0].sym ? x->dims[0].sym : arena_printf(c->a, "%lld", (long long)x->dims[0].v);
  long long bb = (long long)b, cb = (long long)(d2s ? C / (b * b) : C);
  const char *six = d2s ? (crd ? arena_printf(c->a, "[%s, %lld, %lld, %lld, %lld, %lld]", N, cb, bb,
                                              bb, (long long)H, (long long)W)
                               : arena_printf(c->a, "[%s, %lld, %lld, %lld, %lld, %lld]", N, bb, bb,
                                              cb, (long long)H, (long long)W))
                        : arena_printf(c->a, "[%s, %lld, %lld, %lld, %lld, %lld]", N, cb,
                                       (long long)(H / b), bb, (long long)(W / b), bb);
  const char *perm =
      d2s ? (crd ? "[0, 1, 4, 2, 5, 3]" : "[0, 3, 4, 1, 5, 2]") : "[0, 3, 5, 1, 2, 4]";
  OxDim dims[4] = {x->dims[0],
                   {d2s ? C / (b * b) : C * b * b, NULL},
                   {d2s ? H * b : H / b, NULL},
                   {d2s ? W * b : W / b, NULL}};
  OxVal *y = ox_def(c, n, 0, 4, dims);
  ox_line(c, n, y->id, "reshape(permute(reshape(%s, %s), %s), %s)", e, six, perm,
          dims_str(c, 4, dims));
  return 0;
}

/* InstanceNormalization: per (n, c) over the spatial dims, then a per-channel scale and bias */
static int op_instancenorm(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0), *sc = x ? need(c, n, 1) : NULL, *b = sc ? need(c, n, 2) : NULL;
  if (!b || float_input(c, n, x)) return -1;
  if (x->rank < 3) return ox_err(c, n, "input of rank %d has no spatial dims", x->rank);
  const char *e = ox_operand(c, n, 0, 0), *es = e ? ox_operand(c, n, 1, 0) : NULL;
  const char *eb = es ? ox_operand(c, n, 2, 0) : NULL;
  if (!eb) return -1;
  char axes[64] = "", ones[64] = "";
  for (int i = 2; i < x->rank; i++) {
    snprintf(axes + strlen(axes), sizeof axes - strlen(axes), "%s%d", i > 2 ? ", " : "", i);
    snprintf(ones + strlen(ones), sizeof ones - strlen(ones), ", 1");
  }
  const char *d = ox_ident(c, arena_printf(c->a, "%s_centered", n->output[0]));
  ox_line(c, n, d, "%s - mean(%s, [%s], keepdim = true)", e, e, axes);
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  long long ch = (long long)x->dims[1].v;
  ox_line(c, n, y->id,
          "%s / sqrt(mean(%s * %s, [%s], keepdim = true) + %.9g) * reshape(%s, [%lld%s]) "
          "+ reshape(%s, [%lld%s])",
          d, d, d, axes, ox_attr_f(n, "epsilon", 1e-5), es, ch, ones, eb, ch, ones);
  return 0;
}

/* SoftmaxCrossEntropyLoss of [N, C] scores and integer labels, averaged: cross_entropy */
static int op_sce(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0), *l = x ? need(c, n, 1) : NULL;
  if (!l || float_input(c, n, x)) return -1;
  if (strcmp(ox_attr_s(c, n, "reduction", "mean"), "mean") || has_in(n, 2) ||
      ox_attr(n, "ignore_index") || (n->n_output > 1 && n->output[1][0]))
    return ox_err(c, n,
                  "nnc's cross_entropy is the mean over the batch without class weights, "
                  "ignore_index or the log_prob output");
  if (x->rank != 2 || l->rank != 1 || l->kind == OXV_CONST || l->elem == F_FLOAT)
    return ox_err(c, n, "scores [N, C] and integer labels [N] from the graph are needed");
  const char *e = ox_operand(c, n, 0, 0), *el = e ? ox_operand(c, n, 1, 0) : NULL;
  if (!el) return -1;
  OxVal *y = ox_def(c, n, 0, 0, NULL);
  ox_line(c, n, y->id, "cross_entropy(%s, %s)", e, el);
  return 0;
}

/* LRN across channels: the window sum of squares is an avgpool over C (which counts the
 * padding, so avg * size is the sum) on x^2 viewed as [N, 1, C, H*W] */
static int op_lrn(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  int64_t size = ox_attr_i(n, "size", 0);
  if (x->rank != 4) return ox_err(c, n, "input of rank %d; nnc imports LRN on NCHW", x->rank);
  if (size < 1 || size % 2 == 0)
    return ox_err(c, n,
                  "size %lld: nnc pads the channel window symmetrically, which needs an "
                  "odd size",
                  (long long)size);
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  const char *hw = x->dims[2].sym || x->dims[3].sym
                       ? "-1"
                       : arena_printf(c->a, "%lld", (long long)(x->dims[2].v * x->dims[3].v));
  const char *nn =
      x->dims[0].sym ? x->dims[0].sym : arena_printf(c->a, "%lld", (long long)x->dims[0].v);
  const char *sq = ox_ident(c, arena_printf(c->a, "%s_sqavg", n->output[0]));
  ox_line(c, n, sq,
          "reshape(avgpool(reshape(%s * %s, [%s, 1, %lld, %s]), [%lld, 1], stride = 1, "
          "pad = [%lld, 0]), %s)",
          e, e, nn, (long long)x->dims[1].v, hw, (long long)size, (long long)(size - 1) / 2,
          dims_str(c, 4, x->dims));
  OxVal *y = ox_def(c, n, 0, 4, x->dims);
  ox_line(c, n, y->id, "%s * (%.9g + %.9g * %s) ^ (%.9g)", e, ox_attr_f(n, "bias", 1),
          ox_attr_f(n, "alpha", 1e-4), sq, -ox_attr_f(n, "beta", 0.75));
  return 0;
}

/* --- shapes and data movement ------------------------------------------------------------- */

/* y = reshape(x) to dims, folded when x is constant; dims with a symbol print as it */
static int reshaped(OxCtx *c, const Onnx__NodeProto *n, OxVal *x, int r, const OxDim *dims,
                    int infer) {
  if (is_const(x)) {
    OxVal *y = def_const(c, n, 0, r, dims, x->elem);
    memcpy(y->cv, x->cv, (size_t)y->n * sizeof(double));
    if (x->csym && y->n == x->n) y->csym = x->csym;
    return 0;
  }
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, r, dims);
  char *list = "";
  for (int i = 0; i < r; i++) {
    if (i == infer)
      list = ox_cat(c, list, "%s-1", i ? ", " : "");
    else if (dims[i].sym)
      list = ox_cat(c, list, "%s%s", i ? ", " : "", dims[i].sym);
    else
      list = ox_cat(c, list, "%s%lld", i ? ", " : "", (long long)dims[i].v);
  }
  ox_line(c, n, y->id, "reshape(%s, [%s])", e, list);
  return 0;
}

static int op_reshape(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t sh[OX_MAX_RANK];
  int r = has_in(n, 1) ? const_ints(c, n, 1, sh, OX_MAX_RANK, "the target shape")
                       : ox_attr_ints(n, "shape", sh, OX_MAX_RANK);
  if (r < 0) return r == -1 && !has_in(n, 1) ? ox_err(c, n, "the target shape is missing") : -1;
  OxVal *sv = has_in(n, 1) ? ox_find(c, n->input[1]) : NULL;
  OxDim dims[OX_MAX_RANK];
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < r; i++) {
    if (sh[i] == 0 && ox_attr_i(n, "allowzero", 0))
      return ox_err(c, n, "allowzero = 1 with a 0 in the shape (an empty tensor)");
    if (sh[i] == -1)
      infer = i, dims[i] = (OxDim){1, NULL};
    else if (sh[i] == 0 && i < x->rank)
      dims[i] = x->dims[i];
    else
      dims[i] = (OxDim){sh[i], sv && sv->csym ? sv->csym[i] : NULL};
    if (sh[i] < -1 || sh[i] > INT32_MAX)
      return ox_err(c, n, "invalid target size %lld", (long long)sh[i]);
    if (i != infer) known *= dims[i].v;
  }
  if (infer >= 0) {
    if (!known || ox_numel(x) % known)
      return ox_err(c, n, "the target shape does not divide the input");
    dims[infer].v = ox_numel(x) / known;
    for (int i = 0; i < x->rank; i++)
      if (x->dims[i].sym && x->dims[i].v == dims[infer].v) dims[infer].sym = x->dims[i].sym;
  } else if (known != ox_numel(x)) {
    return ox_err(c, n, "the target shape has %lld elements, the input %lld", (long long)known,
                  (long long)ox_numel(x));
  }
  return reshaped(c, n, x, r, dims, infer);
}

static int op_flatten(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t ax = ox_attr_i(n, "axis", 1);
  ax = ax < 0 ? ax + x->rank : ax;
  if (ax < 0 || ax > x->rank) return ox_err(c, n, "axis out of range for rank %d", x->rank);
  OxDim dims[2] = {{1, NULL}, {1, NULL}};
  for (int i = 0; i < x->rank; i++) dims[i >= ax].v *= x->dims[i].v;
  if (ax == 1) dims[0] = x->dims[0];
  if (is_const(x) || ax != 1 || x->rank < 3) return reshaped(c, n, x, 2, dims, 1);
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, 2, dims);
  ox_line(c, n, y->id, "flatten(%s)", e);
  return 0;
}

static int op_squeeze(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t axes[OX_MAX_RANK + 1];
  int k = axes_of(c, n, 1, axes), un = !strcmp(op_entry(idx)->arg, "unsqueeze");
  if (k == -1) return -1;
  int r = un ? x->rank + (k > 0 ? k : 0) : x->rank, drop[OX_MAX_RANK + 1] = {0};
  if (r > OX_MAX_RANK) return ox_err(c, n, "the result would have rank %d", r);
  for (int i = 0; i < k; i++) {
    int a;
    if (ox_axis(c, n, axes[i], r, &a)) return -1;
    drop[a] = 1;
  }
  OxDim dims[OX_MAX_RANK];
  int o = 0, src = 0;
  for (int i = 0; i < (un ? r : x->rank); i++) {
    if (un)
      dims[o++] = drop[i] ? (OxDim){1, NULL} : x->dims[src++];
    else if (!(k > 0 ? drop[i] : x->dims[i].v == 1))
      dims[o++] = x->dims[i];
    else if (x->dims[i].v != 1)
      return ox_err(c, n, "axis %d has size %lld, not 1", i, (long long)x->dims[i].v);
  }
  return reshaped(c, n, x, o, dims, -1);
}

/* a Transpose of a constant, folded; a 2-D one remembers its source, so that a MatMul by it
 * is a dense layer on the source's parameter ([out, in], PyTorch's Linear weight) */
static int fold_transpose(OxCtx *c, const Onnx__NodeProto *n, const OxVal *x, const int64_t *perm,
                          const OxDim *dims) {
  OxVal *y = def_const(c, n, 0, x->rank, dims, x->elem);
  int64_t stride[OX_MAX_RANK], st = 1;
  for (int d = x->rank - 1; d >= 0; d--) stride[d] = st, st *= x->dims[d].v;
  for (int64_t k = 0; k < y->n; k++) {
    int64_t rem = k, src = 0;
    for (int d = x->rank - 1; d >= 0; d--) src += (rem % dims[d].v) * stride[perm[d]], rem /= dims[d].v;
    y->cv[k] = x->cv[src];
  }
  if (x->rank == 2 && perm[0] == 1) y->tsrc = x->tsrc ? NULL : x->name;
  return 0;
}

static int op_transpose(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t perm[OX_MAX_RANK];
  int k = ox_attr_ints(n, "perm", perm, OX_MAX_RANK);
  if (k < 0)
    for (k = 0; k < x->rank; k++) perm[k] = x->rank - 1 - k;
  if (k != x->rank) return ox_err(c, n, "perm has %d entries for rank %d", k, x->rank);
  OxDim dims[OX_MAX_RANK];
  for (int i = 0; i < k; i++) {
    if (perm[i] < 0 || perm[i] >= k)
      return ox_err(c, n, "perm entry %lld out of range", (long long)perm[i]);
    dims[i] = x->dims[perm[i]];
  }
  if (is_const(x) && x->n <= OX_MAX_FOLD) return fold_transpose(c, n, x, perm, dims);
  if (float_input(c, n, x)) return -1;
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, k, dims);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return ox_err(c, n, "out of memory");
  print_ints(f, perm, k);
  fclose(f);
  ox_line(c, n, y->id, "permute(%s, %s)", e, buf);
  free(buf);
  return 0;
}

static int fold_concat(OxCtx *c, const Onnx__NodeProto *n, int64_t total) {
  OxDim d = {total, NULL};
  OxVal *y = def_const(c, n, 0, 1, &d, F_INT64);
  y->csym = arena_alloc(c->a, (size_t)(total ? total : 1) * sizeof *y->csym);
  int64_t o = 0;
  for (size_t i = 0; i < n->n_input; i++) {
    OxVal *v = ox_find(c, n->input[i]);
    for (int64_t k = 0; k < v->n; k++, o++) {
      y->cv[o] = v->cv[k];
      y->csym[o] = v->csym ? v->csym[k] : NULL;
    }
  }
  return 0;
}

static int op_concat(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *first = need(c, n, 0);
  if (!first) return -1;
  int ax, all_const = 1;
  if (ox_axis(c, n, ox_attr_i(n, "axis", 0), first->rank, &ax)) return -1;
  OxDim dims[OX_MAX_RANK];
  memcpy(dims, first->dims, sizeof dims);
  dims[ax].v = 0, dims[ax].sym = NULL;
  for (size_t i = 0; i < n->n_input; i++) {
    OxVal *v = need(c, n, (int)i);
    if (!v) return -1;
    if (v->rank != first->rank) return ox_err(c, n, "inputs of different rank");
    dims[ax].v += v->dims[ax].v;
    all_const &= is_const(v) && v->rank == 1;
  }
  if (all_const) return fold_concat(c, n, dims[ax].v);
  char *list = "";
  for (size_t i = 0; i < n->n_input; i++) {
    if (float_input(c, n, ox_find(c, n->input[i]))) return -1;
    const char *e = ox_operand(c, n, (int)i, 0);
    if (!e) return -1;
    list = ox_cat(c, list, "%s, ", e);
  }
  OxVal *y = ox_def(c, n, 0, first->rank, dims);
  ox_line(c, n, y->id, "concat(%saxis = %d)", list, ax);
  return 0;
}

/* y = x[start:end] along one axis, as text around expression e; dims updated */
static const char *slice_expr(OxCtx *c, const char *e, const OxVal *x, OxDim *dims, int ax,
                              int64_t st, int64_t en) {
  int64_t d = dims[ax].v;
  st = st < 0 ? st + d : st, en = en < 0 ? en + d : en;
  st = st < 0 ? 0 : st > d ? d : st;
  en = en < st ? st : en > d ? d : en;
  (void)x;
  if (st == 0 && en == d) return e;
  dims[ax] = (OxDim){en - st, NULL};
  if (en == d) return arena_printf(c->a, "slice(%s, %d, %lld)", e, ax, (long long)st);
  return arena_printf(c->a, "slice(%s, %d, %lld, %lld)", e, ax, (long long)st, (long long)en);
}

static int fold_slice1(OxCtx *c, const Onnx__NodeProto *n, const OxVal *x, int64_t st, int64_t en) {
  int64_t d = x->n;
  st = st < 0 ? st + d : st, en = en < 0 ? en + d : en;
  st = st < 0 ? 0 : st > d ? d : st;
  en = en < st ? st : en > d ? d : en;
  OxDim dim = {en - st, NULL};
  OxVal *y = def_const(c, n, 0, 1, &dim, x->elem);
  y->csym = x->csym ? x->csym + st : NULL;
  memcpy(y->cv, x->cv + st, (size_t)(en - st) * sizeof(double));
  return 0;
}

static int op_slice(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t st[OX_MAX_RANK + 1], en[OX_MAX_RANK + 1], ax[OX_MAX_RANK + 1], sp[OX_MAX_RANK + 1];
  int k, ka = -1, ks = -1;
  if (c->opset < 10) {
    k = ox_attr_ints(n, "starts", st, OX_MAX_RANK + 1);
    if (k < 0 || ox_attr_ints(n, "ends", en, OX_MAX_RANK + 1) != k)
      return ox_err(c, n, "starts and ends differ");
    ka = ox_attr_ints(n, "axes", ax, OX_MAX_RANK + 1);
  } else {
    k = const_ints(c, n, 1, st, OX_MAX_RANK + 1, "starts");
    if (k < 0 || const_ints(c, n, 2, en, OX_MAX_RANK + 1, "ends") != k)
      return k < 0 ? -1 : ox_err(c, n, "starts and ends differ");
    if (has_in(n, 3) && (ka = const_ints(c, n, 3, ax, OX_MAX_RANK + 1, "axes")) < 0) return -1;
    if (has_in(n, 4) && (ks = const_ints(c, n, 4, sp, OX_MAX_RANK + 1, "steps")) < 0) return -1;
  }
  for (int i = 0; i < ks; i++)
    if (sp[i] != 1)
      return ox_err(c, n, "step %lld; nnc's slice takes step 1 only", (long long)sp[i]);
  if (is_const(x) && x->rank == 1 && k == 1) return fold_slice1(c, n, x, st[0], en[0]);
  if (float_input(c, n, x)) return -1;
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxDim dims[OX_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  for (int i = 0; i < k; i++) {
    int a;
    if (ox_axis(c, n, ka >= 0 ? ax[i] : i, x->rank, &a)) return -1;
    e = slice_expr(c, e, x, dims, a, st[i], en[i]);
    if (!dims[a].v)
      return ox_err(c, n, "the slice on axis %d is empty; nnc has no empty tensors", a);
  }
  OxVal *y = ox_def(c, n, 0, x->rank, dims);
  ox_line(c, n, y->id, "%s", e);
  return 0;
}

static int op_split(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  int ax, no = (int)n->n_output;
  if (ox_axis(c, n, ox_attr_i(n, "axis", 0), x->rank, &ax)) return -1;
  int64_t sz[64];
  int k = has_in(n, 1) ? const_ints(c, n, 1, sz, 64, "split") : ox_attr_ints(n, "split", sz, 64);
  if (k == -1 && has_in(n, 1)) return -1;
  if (k < 0) {
    int64_t d = x->dims[ax].v, per = (d + no - 1) / no;
    for (k = 0; k < no; k++) sz[k] = d - per * k < per ? d - per * k : per;
  }
  if (k != no) return ox_err(c, n, "%d split sizes for %d outputs", k, no);
  int64_t total = 0;
  for (int i = 0; i < k; i++) total += sz[i] > 0 ? sz[i] : 0;
  if (total != x->dims[ax].v)
    return ox_err(c, n, "split sizes add up to %lld, the axis has %lld", (long long)total,
                  (long long)x->dims[ax].v);
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  int64_t at = 0;
  for (int i = 0; i < no; i++) {
    OxDim dims[OX_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    const char *s = slice_expr(c, e, x, dims, ax, at, at + sz[i]);
    at += sz[i];
    if (!n->output[i][0]) continue;
    if (!dims[ax].v) return ox_err(c, n, "output %d is empty; nnc has no empty tensors", i);
    OxVal *y = ox_def(c, n, i, x->rank, dims);
    ox_line(c, n, y->id, "%s", s);
  }
  return 0;
}

static int op_softmax(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  int ax;
  if (ox_axis(c, n, ox_attr_i(n, "axis", c->opset < 13 ? 1 : -1), x->rank, &ax)) return -1;
  const char *e = ox_operand(c, n, 0, 0), *fn = op_entry(idx)->arg;
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  if (c->opset >= 13 || ax == x->rank - 1) {
    ox_line(c, n, y->id, "%s(%s, axis = %d)", fn, e, ax);
    return 0;
  }
  /* before opset 13 the op works on the input flattened to 2-D at axis */
  char *lead = "1";
  for (int i = 0; i < ax; i++) {
    if (x->dims[i].sym)
      lead = ox_cat(c, lead, " * %s", x->dims[i].sym);
    else
      lead = ox_cat(c, lead, " * %lld", (long long)x->dims[i].v);
  }
  ox_line(c, n, y->id, "reshape(%s(reshape(%s, [%s, -1]), axis = 1), %s)", fn, e, lead,
          dims_str(c, x->rank, x->dims));
  return 0;
}

static int op_reduce(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0);
  if (!x || float_input(c, n, x)) return -1;
  int64_t axes[OX_MAX_RANK + 1];
  int k = axes_of(c, n, 1, axes), keep = (int)ox_attr_i(n, "keepdims", 1), red[OX_MAX_RANK] = {0};
  if (k == -1) return -1;
  if (k <= 0 && ox_attr_i(n, "noop_with_empty_axes", 0)) return alias(c, n, x);
  char list[64] = "";
  for (int i = 0; i < (k > 0 ? k : x->rank); i++) {
    int a = i;
    if (k > 0 && ox_axis(c, n, axes[i], x->rank, &a)) return -1;
    red[a] = 1;
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? ", " : "", a);
  }
  OxDim dims[OX_MAX_RANK];
  int r = 0;
  for (int i = 0; i < x->rank; i++)
    if (!red[i])
      dims[r++] = x->dims[i];
    else if (keep)
      dims[r++] = (OxDim){1, NULL};
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, r, dims);
  const char *fn = op_entry(idx)->arg, *kd = keep ? "true" : "false";
  if (!strcmp(fn, "min"))
    ox_line(c, n, y->id, "-max(-%s, [%s], keepdim = %s)", e, list, kd);
  else if (!strcmp(fn, "sumsq"))
    ox_line(c, n, y->id, "sum(%s * %s, [%s], keepdim = %s)", e, e, list, kd);
  else if (!strcmp(fn, "l2"))
    ox_line(c, n, y->id, "sqrt(sum(%s * %s, [%s], keepdim = %s))", e, e, list, kd);
  else if (!strcmp(fn, "l1"))
    ox_line(c, n, y->id, "sum(relu(%s) + relu(-%s), [%s], keepdim = %s)", e, e, list, kd);
  else if (!strcmp(fn, "lse"))
    ox_line(c, n, y->id, "log(sum(exp(%s), [%s], keepdim = %s))", e, list, kd);
  else
    ox_line(c, n, y->id, "%s(%s, [%s], keepdim = %s)", fn, e, list, kd);
  return 0;
}

/* --- constants ------------------------------------------------------------------------- */

static int op_constant(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  const Onnx__AttributeProto *a = ox_attr(n, "value");
  OxVal *y = ox_new(c, n->output[0], OXV_CONST);
  if (a && a->t) return ox_tensor_to_const(c, a->t, y, n);
  if ((a = ox_attr(n, "value_float")) || (a = ox_attr(n, "value_int"))) {
    y->elem = a->has_f ? F_FLOAT : F_INT64;
    y->n = 1;
    y->cv = arena_alloc(c->a, sizeof(double));
    y->cv[0] = a->has_f ? a->f : (double)a->i;
    return 0;
  }
  if ((a = ox_attr(n, "value_floats")) || (a = ox_attr(n, "value_ints"))) {
    int fl = a->n_floats > 0 || !strcmp(a->name, "value_floats");
    y->elem = fl ? F_FLOAT : F_INT64;
    y->n = (int64_t)(fl ? a->n_floats : a->n_ints);
    y->rank = 1;
    y->dims[0] = (OxDim){y->n, NULL};
    y->cv = arena_alloc(c->a, (size_t)(y->n ? y->n : 1) * sizeof(double));
    for (int64_t k = 0; k < y->n; k++) y->cv[k] = fl ? a->floats[k] : (double)a->ints[k];
    return 0;
  }
  return ox_err(c, n, "only tensor, float(s) and int(s) values are supported");
}

static int op_shape(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t st = ox_attr_i(n, "start", 0), en = ox_attr_i(n, "end", x->rank);
  st = st < 0 ? st + x->rank : st, en = en < 0 ? en + x->rank : en;
  st = st < 0 ? 0 : st > x->rank ? x->rank : st;
  en = en < st ? st : en > x->rank ? x->rank : en;
  OxDim d = {en - st, NULL};
  OxVal *y = def_const(c, n, 0, 1, &d, F_INT64);
  y->csym = arena_alloc(c->a, (size_t)(d.v ? d.v : 1) * sizeof *y->csym);
  for (int64_t k = st; k < en; k++) {
    y->cv[k - st] = (double)x->dims[k].v;
    y->csym[k - st] = x->dims[k].sym;
  }
  return 0;
}

/* Gather of rows of a [V, D] initializer by integer indices from the graph: an embedding */
/* constant indices 0, 1, ..., n-1 (positions): `arange(n, dtype = i32)` */
static int is_arange(const OxVal *ix) {
  if (!is_const(ix) || ix->rank != 1 || !ix->n) return 0;
  for (int64_t k = 0; k < ix->n; k++)
    if (ix->cv[k] != (double)k) return 0;
  return 1;
}

static int embedding(OxCtx *c, const Onnx__NodeProto *n, OxVal *table, OxVal *ix) {
  if (table->tsrc || table->rank != 2 || ix->rank + 1 > OX_MAX_RANK)
    return ox_err(c, n, "a table of rank %d; nnc's embedding takes [V, D]", table->rank);
  const char *scope = ox_scope(c, table->name, fallback_scope(c, n));
  int64_t shape[2] = {table->dims[0].v, table->dims[1].v};
  const char *tied = table->param;
  if (!tied && ox_weight(c, n, arena_printf(c->a, "%s.weight", scope), table, 0, 2, shape))
    return -1;
  const char *e = is_arange(ix) ? arena_printf(c->a, "arange(%lld, dtype = i32)", (long long)ix->n)
                                : ox_operand(c, n, 1, 0);
  if (!e) return -1;
  OxDim dims[OX_MAX_RANK];
  memcpy(dims, ix->dims, sizeof dims);
  dims[ix->rank] = table->dims[1];
  OxVal *y = ox_def(c, n, 0, ix->rank + 1, dims);
  if (tied)
    ox_line(c, n, y->id, "embedding(%s, %lld, %lld, weight = %s)", e, (long long)shape[0],
            (long long)shape[1], tied);
  else
    ox_line(c, n, y->id, "embedding(%s, %lld, %lld, name = \"%s\")", e, (long long)shape[0],
            (long long)shape[1], scope);
  return 0;
}

static int op_gather(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0), *ix = x ? need(c, n, 1) : NULL;
  if (!ix) return -1;
  int ax;
  if (ox_axis(c, n, ox_attr_i(n, "axis", 0), x->rank, &ax)) return -1;
  if (ax == 0 && weightish(x) && ((ix->kind != OXV_CONST && ix->elem != F_FLOAT) ||
                                   (x->rank == 2 && is_arange(ix))))
    return embedding(c, n, x, ix);
  if (!is_const(ix) || ix->rank > 1)
    return ox_err(c, n,
                  "indices computed at run time (or of rank > 1); nnc folds Gather of "
                  "constant indices only");
  if (is_const(x) && x->rank == 1) {
    OxVal *y = def_const(c, n, 0, ix->rank, ix->dims, x->elem);
    y->csym = x->csym ? arena_alloc(c->a, (size_t)(y->n ? y->n : 1) * sizeof *y->csym) : NULL;
    for (int64_t k = 0; k < y->n; k++) {
      int64_t i = (int64_t)ix->cv[k];
      i = i < 0 ? i + x->n : i;
      if (i < 0 || i >= x->n) return ox_err(c, n, "index %lld out of range", (long long)i);
      y->cv[k] = x->cv[i];
      if (y->csym) y->csym[k] = x->csym[i];
    }
    return 0;
  }
  if (ix->n != 1 || float_input(c, n, x))
    return ix->n != 1 ? ox_err(c, n, "several indices into a computed tensor are not supported")
                      : -1;
  int64_t i = (int64_t)ix->cv[0];
  i = i < 0 ? i + x->dims[ax].v : i;
  if (i < 0 || i >= x->dims[ax].v)
    return ox_err(c, n, "index %lld out of range for a dim of %lld", (long long)ix->cv[0],
                  (long long)x->dims[ax].v);
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxDim dims[OX_MAX_RANK], out[OX_MAX_RANK];
  memcpy(dims, x->dims, sizeof dims);
  e = slice_expr(c, e, x, dims, ax, i, i + 1);
  int r = 0;
  for (int k = 0; k < x->rank; k++)
    if (k != ax || ix->rank) out[r++] = dims[k];
  OxVal *y = ox_def(c, n, 0, r, out);
  if (ix->rank)
    ox_line(c, n, y->id, "%s", e);
  else
    ox_line(c, n, y->id, "reshape(%s, %s)", e, dims_str(c, r, out));
  return 0;
}

static int op_constant_of_shape(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  int64_t sh[OX_MAX_RANK];
  int r = const_ints(c, n, 0, sh, OX_MAX_RANK, "the shape");
  if (r < 0) return -1;
  OxDim dims[OX_MAX_RANK];
  int64_t cnt = 1;
  for (int i = 0; i < r; i++) {
    if (sh[i] < 1 || sh[i] > OX_MAX_FOLD || (cnt *= sh[i]) > OX_MAX_FOLD)
      return ox_err(c, n,
                    "a constant of shape %lld... is empty or too large to fold "
                    "(at most %d elements)",
                    (long long)sh[0], OX_MAX_FOLD);
    dims[i] = (OxDim){sh[i], NULL};
  }
  const Onnx__AttributeProto *a = ox_attr(n, "value");
  OxVal fill = {.name = "value", .n = 1};
  if (a && a->t && ox_tensor_to_const(c, a->t, &fill, n)) return -1;
  OxVal *y = def_const(c, n, 0, r, dims, a && a->t ? fill.elem : F_FLOAT);
  for (int64_t k = 0; k < y->n; k++) y->cv[k] = fill.cv ? fill.cv[0] : 0;
  return 0;
}

/* Range(start, limit, delta) of constants (positions for a traced `torch.arange`), folded */
static int op_range(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *v[3];
  for (int i = 0; i < 3; i++)
    if (!(v[i] = need(c, n, i)) || !is_const(v[i]) || v[i]->n != 1)
      return v[i] ? ox_err(c, n, "input %d is not a constant number; nnc's shapes are known at "
                           "compile time", i)
                  : -1;
  double start = v[0]->cv[0], limit = v[1]->cv[0], delta = v[2]->cv[0];
  double cnt = delta ? ceil((limit - start) / delta) : -1;
  if (!(cnt >= 1 && cnt <= OX_MAX_FOLD))
    return ox_err(c, n, "a range of %.0f elements (at least 1, at most %d fold)", cnt, OX_MAX_FOLD);
  OxDim d = {(int64_t)cnt, NULL};
  OxVal *y = def_const(c, n, 0, 1, &d, v[0]->elem);
  for (int64_t k = 0; k < y->n; k++) y->cv[k] = start + (double)k * delta;
  return 0;
}

/* Trilu: `tril(x, k)` / `triu(x, k)` on the last two dims (folded on a constant) */
static int op_trilu(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  int64_t k = 0, upper = ox_attr_i(n, "upper", 1);
  if (has_in(n, 1) && const_ints(c, n, 1, &k, 1, "k") != 1) return -1;
  if (x->rank < 2) return ox_err(c, n, "input of rank %d; Trilu needs 2 or more", x->rank);
  int64_t rows = x->dims[x->rank - 2].v, cols = x->dims[x->rank - 1].v;
  if (is_const(x)) {
    OxVal *y = def_const(c, n, 0, x->rank, x->dims, x->elem);
    for (int64_t e = 0; e < y->n; e++) {
      int64_t i = e / cols % rows, j = e % cols;
      y->cv[e] = (upper ? j - i >= k : j - i <= k) ? x->cv[e] : 0;
    }
    return 0;
  }
  if (float_input(c, n, x)) return -1;
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  ox_line(c, n, y->id, "%s(%s%s)", upper ? "triu" : "tril", e,
          k ? arena_printf(c->a, ", %lld", (long long)k) : "");
  return 0;
}

/* Size: the element count, a constant */
static int op_size(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x) return -1;
  for (int i = 0; i < x->rank; i++)
    if (x->dims[i].sym)
      return ox_err(c, n, "the size depends on the symbolic dim %s", x->dims[i].sym);
  OxVal *y = def_const(c, n, 0, 0, NULL, F_INT64);
  y->cv[0] = (double)ox_numel(x);
  return 0;
}

/* integer ids from the graph made float: `to(x, f32)`; a bool (0/1 in nnc) made float is
 * itself, a float made bool is `ne(x, 0.0)`; other casts are refused */
static int cast_to_float(OxCtx *c, const Onnx__NodeProto *n, OxVal *x, int to) {
  if ((to == F_FLOAT || to == F_BOOL) && x->elem == F_BOOL) {
    if (alias(c, n, x)) return -1;
    ox_find(c, n->output[0])->elem = to;
    return 0;
  }
  int from_int = x->elem == F_INT64 || x->elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  if (!(to == F_FLOAT && from_int) && !(to == F_BOOL && x->elem == F_FLOAT))
    return ox_err(c, n, "cast of a computed %s tensor to %s; nnc computes on float tensors",
                  ox_dt_name(x->elem), ox_dt_name(to));
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  y->elem = to;
  ox_line(c, n, y->id, to == F_BOOL ? "ne(%s, 0.0)" : "to(%s, f32)", e);
  return 0;
}

/* Cast (to = attribute) and CastLike (to = the second input's type) */
static int op_cast(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *x = need(c, n, 0), *like = NULL;
  if (!x) return -1;
  if (op_entry(idx)->arg && !(like = need(c, n, 1))) return -1;
  int to = like ? like->elem : (int)ox_attr_i(n, "to", F_FLOAT);
  if (is_const(x)) {
    OxVal *y = def_const(c, n, 0, x->rank, x->dims, to);
    for (int64_t k = 0; k < y->n; k++)
      y->cv[k] = to == F_FLOAT ? (float)x->cv[k] : to == F_INT64 ? trunc(x->cv[k]) : x->cv[k];
    y->csym = x->csym;
    return 0;
  }
  if (to != F_FLOAT || x->elem != F_FLOAT)
    return cast_to_float(c, n, x, to);
  return alias(c, n, x);
}

/* --- comparisons, logic, select ------------------------------------------------------- */
/* A bool tensor is a float tensor of 0s and 1s in nnc (what its comparisons return); its
 * OxVal keeps elem BOOL, so that only the ops that take booleans read it. */

static int is_int_elem(int e) {
  return e == F_INT64 || e == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
         e == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 || e == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ||
         e == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
}

/* an integer constant read as a float tensor: a float copy (integers up to 2^24 are exact) */
static const char *int_const_expr(OxCtx *c, const Onnx__NodeProto *n, OxVal *v, int allow_number) {
  for (int64_t k = 0; k < v->n; k++)
    if (fabs(v->cv[k]) > 16777216.0) {
      ox_err(c, n, "integer constant '%s' holds %.0f, which float32 does not hold exactly",
             v->name, v->cv[k]);
      return NULL;
    }
  const char *fname = arena_printf(c->a, "%s_f32", v->name);
  OxVal *f = ox_find(c, fname);
  if (!f) {
    f = def_const(c, n, 0, v->rank, v->dims, F_FLOAT);
    f->name = fname;
    memcpy(f->cv, v->cv, (size_t)v->n * sizeof *v->cv);
  }
  return ox_value_expr(c, n, fname, allow_number);
}

/* an operand of a comparison: float and bool values as they are, integer graph inputs as
 * `to(x, f32)`, integer constants as float constants */
static const char *cmp_operand(OxCtx *c, const Onnx__NodeProto *n, int i, int allow_number) {
  OxVal *v = need(c, n, i);
  if (!v) return NULL;
  if (!is_int_elem(v->elem)) {
    if (v->elem == F_BOOL || v->elem == F_FLOAT || v->kind == OXV_CONST)
      return ox_operand(c, n, i, allow_number);
    float_input(c, n, v);
    return NULL;
  }
  if (v->kind == OXV_CONST) return int_const_expr(c, n, v, allow_number);
  const char *e = ox_operand(c, n, i, 0);
  return e ? arena_printf(c->a, "to(%s, f32)", e) : NULL;
}

static double fold_logic(const char *op, double a, double b) {
  if (!strcmp(op, "lt")) return a < b;
  if (!strcmp(op, "le")) return a <= b;
  if (!strcmp(op, "gt")) return a > b;
  if (!strcmp(op, "ge")) return a >= b;
  if (!strcmp(op, "eq")) return a == b;
  if (!strcmp(op, "and")) return a != 0 && b != 0;
  if (!strcmp(op, "or")) return a != 0 || b != 0;
  return (a != 0) != (b != 0); /* xor */
}

static int need_bool(OxCtx *c, const Onnx__NodeProto *n, const OxVal *v) {
  if (v->elem == F_BOOL) return 0;
  return ox_err(c, n, "'%s' is %s where %s takes bool", v->name, ox_dt_name(v->elem), n->op_type);
}

/* Equal Less LessOrEqual Greater GreaterOrEqual: `lt(a, b)` ...; And Or Xor on bools:
 * `a * b`, `a + b - a * b`, `ne(a, b)` */
static int op_compare(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  OxVal *a = need(c, n, 0), *b = a ? need(c, n, 1) : NULL;
  if (!b) return -1;
  const char *op = op_entry(idx)->arg;
  int logic = !strcmp(op, "and") || !strcmp(op, "or") || !strcmp(op, "xor");
  if (logic && (need_bool(c, n, a) || need_bool(c, n, b))) return -1;
  int r;
  OxDim dims[OX_MAX_RANK];
  if (broadcast(c, n, a, b, &r, dims)) return -1;
  if (is_const(a) && is_const(b)) {
    OxVal *y = def_const(c, n, 0, r, dims, F_BOOL);
    for (int64_t k = 0; k < y->n; k++)
      y->cv[k] = fold_logic(op, a->cv[bcast_index(k, r, dims, a)], b->cv[bcast_index(k, r, dims, b)]);
    return 0;
  }
  const char *ea = cmp_operand(c, n, 0, 1 + b->rank);
  const char *eb = ea ? cmp_operand(c, n, 1, 1 + a->rank) : NULL;
  if (!eb) return -1;
  OxVal *y = ox_def(c, n, 0, r, dims);
  y->elem = F_BOOL;
  if (!strcmp(op, "and"))
    ox_line(c, n, y->id, "%s * %s", ea, eb);
  else if (!strcmp(op, "or"))
    ox_line(c, n, y->id, "%s + %s - %s * %s", ea, eb, ea, eb);
  else
    ox_line(c, n, y->id, "%s(%s, %s)", !strcmp(op, "xor") ? "ne" : op, ea, eb);
  return 0;
}

static int op_not(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *x = need(c, n, 0);
  if (!x || need_bool(c, n, x)) return -1;
  if (is_const(x)) {
    OxVal *y = def_const(c, n, 0, x->rank, x->dims, F_BOOL);
    for (int64_t k = 0; k < y->n; k++) y->cv[k] = x->cv[k] == 0;
    return 0;
  }
  const char *e = ox_operand(c, n, 0, 0);
  if (!e) return -1;
  OxVal *y = ox_def(c, n, 0, x->rank, x->dims);
  y->elem = F_BOOL;
  ox_line(c, n, y->id, "1.0 - %s", e);
  return 0;
}

/* k when the rank-2 constant m is 1 exactly where j - i <= k (tril) or j - i >= k (triu) */
static int tri_mask(const OxVal *m, int upper, int64_t *k) {
  if (m->rank != 2) return 0;
  int64_t rows = m->dims[0].v, cols = m->dims[1].v, kk = upper ? cols : -rows;
  for (int64_t i = 0; i < rows; i++) /* the first 1 (triu) or the last 1 (tril) of row i */
    for (int64_t j = 0; j < cols; j++)
      if (m->cv[i * cols + j] != 0 && (upper ? j - i < kk : j - i > kk)) kk = j - i;
  if (upper ? kk >= cols : kk <= -rows) return 0;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++)
      if ((m->cv[i * cols + j] != 0) != (upper ? j - i >= kk : j - i <= kk)) return 0;
  *k = kk;
  return 1;
}

/* Where's condition: a constant triangular mask (causal attention) as `tril(ones([T, T]))`,
 * computed inside the kernel that applies it; otherwise the value */
static const char *where_cond(OxCtx *c, const Onnx__NodeProto *n, OxVal *cond) {
  int64_t k;
  for (int upper = 0; is_const(cond) && upper < 2; upper++)
    if (tri_mask(cond, upper, &k))
      return arena_printf(c->a, "%s(ones([%lld, %lld])%s)", upper ? "triu" : "tril",
                          (long long)cond->dims[0].v, (long long)cond->dims[1].v,
                          k ? arena_printf(c->a, ", %lld", (long long)k) : "");
  return ox_operand(c, n, 0, 0);
}

static int op_where(OxCtx *c, const Onnx__NodeProto *n, int idx) {
  (void)idx;
  OxVal *cond = need(c, n, 0), *a = cond ? need(c, n, 1) : NULL, *b = a ? need(c, n, 2) : NULL;
  if (!b || need_bool(c, n, cond)) return -1;
  int r, r2;
  OxDim d1[OX_MAX_RANK], dims[OX_MAX_RANK];
  if (broadcast(c, n, a, b, &r, d1)) return -1;
  OxVal ab = *a;
  ab.rank = r, memcpy(ab.dims, d1, sizeof d1);
  if (broadcast(c, n, cond, &ab, &r2, dims)) return -1;
  if (is_const(cond) && is_const(a) && is_const(b)) {
    OxVal *y = def_const(c, n, 0, r2, dims, a->elem);
    for (int64_t k = 0; k < y->n; k++)
      y->cv[k] = cond->cv[bcast_index(k, r2, dims, cond)] != 0 ? a->cv[bcast_index(k, r2, dims, a)]
                                                                : b->cv[bcast_index(k, r2, dims, b)];
    return 0;
  }
  if (float_input(c, n, a) || float_input(c, n, b)) return -1;
  const char *ec = where_cond(c, n, cond);
  const char *ea = ec ? ox_operand(c, n, 1, 1 + r2) : NULL;
  const char *eb = ea ? ox_operand(c, n, 2, 1 + r2) : NULL;
  if (!eb) return -1;
  OxVal *y = ox_def(c, n, 0, r2, dims);
  ox_line(c, n, y->id, "where(%s, %s, %s)", ec, ea, eb);
  return 0;
}

/* --- the table --------------------------------------------------------------------------- */

static const OxOp ops[] = {
    {"Relu", op_unary, "relu"},
    {"Sigmoid", op_unary, "sigmoid"},
    {"Tanh", op_unary, "tanh"},
    {"Exp", op_unary, "exp"},
    {"Log", op_unary, "log"},
    {"Sqrt", op_unary, "sqrt"},
    {"Neg", op_unary, "neg"},
    {"Gelu", op_unary, "gelu"},
    {"Erf", op_erf, NULL},
    {"Identity", op_identity, NULL},
    {"Dropout", op_dropout, NULL},
    {"Add", op_binary, "+"},
    {"Sub", op_binary, "-"},
    {"Mul", op_binary, "*"},
    {"Div", op_binary, "/"},
    {"Pow", op_pow, NULL},
    {"Equal", op_compare, "eq"},
    {"Less", op_compare, "lt"},
    {"LessOrEqual", op_compare, "le"},
    {"Greater", op_compare, "gt"},
    {"GreaterOrEqual", op_compare, "ge"},
    {"And", op_compare, "and"},
    {"Or", op_compare, "or"},
    {"Xor", op_compare, "xor"},
    {"Not", op_not, NULL},
    {"Where", op_where, NULL},
    {"Trilu", op_trilu, NULL},
    {"Range", op_range, NULL},
    {"Sum", op_nary, "sum"},
    {"Mean", op_nary, "mean"},
    {"Clip", op_clip, NULL},
    {"LeakyRelu", op_activation, "leaky"},
    {"Elu", op_activation, "elu"},
    {"Softplus", op_activation, "softplus"},
    {"HardSigmoid", op_activation, "hsig"},
    {"HardSwish", op_activation, "hswish"},
    {"Selu", op_activation, "selu"},
    {"Softsign", op_activation, "softsign"},
    {"Mish", op_activation, "mish"},
    {"Celu", op_activation, "celu"},
    {"Abs", op_activation, "abs"},
    {"PRelu", op_prelu, NULL},
    {"Max", op_minmax, "max"},
    {"Min", op_minmax, "min"},
    {"Reciprocal", op_activation, "recip"},
    {"MatMul", op_matmul, NULL},
    {"Gemm", op_gemm, NULL},
    {"Conv", op_conv, NULL},
    {"BatchNormalization", op_batchnorm, NULL},
    {"LayerNormalization", op_layernorm, NULL},
    {"MaxPool", op_pool, "maxpool"},
    {"AveragePool", op_pool, "avgpool"},
    {"SoftmaxCrossEntropyLoss", op_sce, NULL},
    {"LRN", op_lrn, NULL},
    {"Pad", op_pad, NULL},
    {"Tile", op_tile, "tile"},
    {"Expand", op_tile, "expand"},
    {"DepthToSpace", op_depth_space, "d2s"},
    {"SpaceToDepth", op_depth_space, "s2d"},
    {"InstanceNormalization", op_instancenorm, NULL},
    {"GroupNormalization", op_groupnorm, NULL},
    {"Resize", op_resize, NULL},
    {"Upsample", op_resize, NULL},
    {"GlobalAveragePool", op_global_pool, "mean"},
    {"GlobalMaxPool", op_global_pool, "max"},
    {"Flatten", op_flatten, NULL},
    {"Reshape", op_reshape, NULL},
    {"Squeeze", op_squeeze, "squeeze"},
    {"Unsqueeze", op_squeeze, "unsqueeze"},
    {"Transpose", op_transpose, NULL},
    {"Concat", op_concat, NULL},
    {"Slice", op_slice, NULL},
    {"Split", op_split, NULL},
    {"Softmax", op_softmax, "softmax"},
    {"LogSoftmax", op_softmax, "log_softmax"},
    {"ReduceMean", op_reduce, "mean"},
    {"ReduceSum", op_reduce, "sum"},
    {"ReduceMax", op_reduce, "max"},
    {"ReduceMin", op_reduce, "min"},
    {"ReduceSumSquare", op_reduce, "sumsq"},
    {"ReduceL1", op_reduce, "l1"},
    {"ReduceL2", op_reduce, "l2"},
    {"ReduceLogSumExp", op_reduce, "lse"},
    {"Constant", op_constant, NULL},
    {"Shape", op_shape, NULL},
    {"Gather", op_gather, NULL},
    {"ConstantOfShape", op_constant_of_shape, NULL},
    {"Cast", op_cast, NULL},
    {"CastLike", op_cast, "like"},
    {"Size", op_size, NULL},
};

static const OxOp *op_entry(int idx) { return &ops[idx]; }

int ox_op_index(const char *op_type) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (!strcmp(ops[i].name, op_type)) return (int)i;
  return -1;
}

int ox_op_run(OxCtx *c, const Onnx__NodeProto *n, int idx) { return ops[idx].fn(c, n, idx); }
