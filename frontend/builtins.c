/* builtins.c — the built-in functions of the language and their lowering to IR nodes.
 *
 * One table lists every builtin with its parameter names (positional order = table order)
 * and the number that are required; binding arguments, reporting arity and keyword
 * mistakes, and type-checking argument values is shared code. Layers create their
 * parameters here, named `<scope>.weight` etc. so they match PyTorch's state_dict keys.
 * docs/language.md describes every entry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sema.h"

#define BMAX 12
#define ATTR_MAX 65536

enum { BF_LAYER = 1, BF_VARIADIC = 2 };

typedef struct Call {
  const Builtin *b;
  const Ast *ast;
  SrcLoc loc;
  Value v[BMAX];
  bool has[BMAX];
  Value *rest; /* variadic tensors (concat) */
  int nrest;
  Value name;  /* name = "..." of layers */
  const Ast *init[2]; /* init = ..., bias_init = ... (not evaluated as expressions) */
} Call;

typedef Value (*LowerFn)(Sema *s, Call *c);

struct Builtin {
  const char *name;
  LowerFn fn;
  OpKind op;
  int nreq;
  unsigned flags;
  const char *params[BMAX];
};

bool sema_init_spec(Sema *s, const Ast *e, IrAttr *at);
int sema_param(Sema *s, const char *scope, const char *local, IrType t, const IrAttr *init,
               bool trainable, SrcLoc loc);

/* ---- argument access ------------------------------------------------------------------- */

static int slot(const Call *c, const char *name) {
  for (int i = 0; i < BMAX && c->b->params[i]; i++)
    if (!strcmp(c->b->params[i], name)) return i;
  return -1;
}

static const Value *arg(const Call *c, const char *name) {
  int i = slot(c, name);
  return i >= 0 && c->has[i] ? &c->v[i] : NULL;
}

static bool bad_arg(Sema *s, const Call *c, const char *name, const Value *v, const char *want) {
  sema_error(s, v->loc, "argument '%s' of %s must be %s, got %s", name, c->b->name, want,
             v_kind_name(v));
  return false;
}

static int want_tensor(Sema *s, const Call *c, const char *name) {
  const Value *v = arg(c, name);
  if (!v || v->k == V_ERR) return -1;
  if (v->k != V_TENSOR) {
    bad_arg(s, c, name, v, "a tensor");
    return -1;
  }
  return v->node;
}

static SrcLoc arg_loc(const Call *c, const char *name) {
  const Value *v = arg(c, name);
  return v ? v->loc : c->loc;
}

static bool want_int(Sema *s, const Call *c, const char *name, int64_t dflt, int64_t lo,
                     int64_t hi, int64_t *out) {
  const Value *v = arg(c, name);
  *out = dflt;
  if (!v) return true;
  if (v->k == V_ERR) return false;
  if (v->k != V_INT || v->dim) return bad_arg(s, c, name, v, "a constant int");
  if (v->i < lo || v->i > hi) {
    sema_error(s, v->loc, "argument '%s' of %s must be between %lld and %lld, got %lld", name,
               c->b->name, (long long)lo, (long long)hi, (long long)v->i);
    return false;
  }
  *out = v->i;
  return true;
}

/* a size such as dense's `out`: constant or symbolic, positive */
static Dim *want_size(Sema *s, const Call *c, const char *name) {
  const Value *v = arg(c, name);
  if (!v || v->k == V_ERR) return NULL;
  if (v->k != V_INT) {
    bad_arg(s, c, name, v, "an int");
    return NULL;
  }
  if (!v->dim && (v->i <= 0 || v->i > INT32_MAX)) {
    sema_error(s, v->loc, "argument '%s' of %s must be positive, got %lld", name, c->b->name,
               (long long)v->i);
    return NULL;
  }
  if (v->mag > 1e12) {
    sema_error(s, v->loc, "argument '%s' of %s is too large", name, c->b->name);
    return NULL;
  }
  return sema_dim(s, v);
}

static bool want_float(Sema *s, const Call *c, const char *name, double dflt, double *out) {
  const Value *v = arg(c, name);
  *out = dflt;
  if (!v) return true;
  if (v->k == V_ERR) return false;
  if (v->k == V_FLOAT) *out = v->f;
  else if (v->k == V_INT && !v->dim) *out = (double)v->i;
  else return bad_arg(s, c, name, v, "a number");
  return true;
}

static bool want_bool(Sema *s, const Call *c, const char *name, bool dflt, bool *out) {
  const Value *v = arg(c, name);
  *out = dflt;
  if (!v) return true;
  if (v->k == V_ERR) return false;
  if (v->k != V_BOOL) return bad_arg(s, c, name, v, "true or false");
  *out = v->b;
  return true;
}

/* an int or a list of two ints ([h, w]) */
static bool want_pair(Sema *s, const Call *c, const char *name, const int *dflt, int lo,
                      int out[2]) {
  const Value *v = arg(c, name);
  out[0] = dflt[0];
  out[1] = dflt[1];
  if (!v) return true;
  if (v->k == V_ERR) return false;
  const Value *e[2] = {v, v};
  if (v->k == V_LIST && v->nitems == 2) e[0] = &v->items[0], e[1] = &v->items[1];
  for (int i = 0; i < 2; i++) {
    if (e[i]->k != V_INT || e[i]->dim)
      return bad_arg(s, c, name, v, "a constant int or a list of two");
    if (e[i]->i < lo || e[i]->i > ATTR_MAX) {
      sema_error(s, e[i]->loc, "argument '%s' of %s must be between %d and %d, got %lld", name,
                 c->b->name, lo, ATTR_MAX, (long long)e[i]->i);
      return false;
    }
    out[i] = (int)e[i]->i;
  }
  return true;
}

static bool norm_axis(Sema *s, const Call *c, const Value *v, int rank, int *out) {
  if (v->k != V_INT || v->dim) return bad_arg(s, c, "axis", v, "a constant int");
  int64_t a = v->i < 0 ? v->i + rank : v->i;
  if (a < 0 || a >= rank) {
    sema_error(s, v->loc, "axis %lld is out of range for a tensor of rank %d", (long long)v->i,
               rank);
    return false;
  }
  *out = (int)a;
  return true;
}

/* an int or a list of ints; all axes when absent */
static bool want_axes(Sema *s, const Call *c, const char *name, int rank, IrAttr *at) {
  const Value *v = arg(c, name);
  if (!v) {
    at->naxes = rank;
    for (int i = 0; i < rank; i++) at->axes[i] = i;
    return true;
  }
  if (v->k == V_ERR) return false;
  int n = v->k == V_LIST ? v->nitems : 1;
  if (v->k != V_LIST && v->k != V_INT) return bad_arg(s, c, name, v, "an int or a list of ints");
  if (n > IR_MAX_RANK || n < 1) {
    sema_error(s, v->loc, "argument '%s' of %s needs 1 to %d axes, got %d", name, c->b->name,
               IR_MAX_RANK, n);
    return false;
  }
  at->naxes = n;
  for (int i = 0; i < n; i++)
    if (!norm_axis(s, c, v->k == V_LIST ? &v->items[i] : v, rank, &at->axes[i])) return false;
  return true;
}

static const IrType *type_of(Sema *s, int node) { return &s->g->nodes[node].type; }

static Value result(int node, const Call *c) { return node < 0 ? v_err() : v_tensor(node, c->loc); }

static const char *layer_scope(Sema *s, Call *c) {
  return sema_layer_scope(s, c->ast, c->b->name, c->name.k == V_STR ? &c->name : NULL);
}

static DType param_dtype(Sema *s, int x) {
  DType dt = type_of(s, x)->dt;
  return dt == DT_I32 ? DT_F32 : dt;
}

static bool init_or(Sema *s, const Call *c, int which, IrAttr *at, InitKind k, double a, double b) {
  at->init = k;
  at->init_a = a;
  at->init_b = b;
  return !c->init[which] || sema_init_spec(s, c->init[which], at);
}

/* ---- elementwise, algebra, data movement ---------------------------------------------- */

/* exp(2), sqrt(64) and friends on numbers are folded */
static bool fold_unary(Sema *s, Call *c, Value *out) {
  const Value *v = arg(c, "x");
  double x;
  if (!v || (v->k != V_INT && v->k != V_FLOAT)) return false;
  x = v->k == V_FLOAT ? v->f : v->dim ? dim_evalf(s->g->dims, v->dim, NULL) : (double)v->i;
  double r;
  switch (c->b->op) {
  case OP_NEG: r = -x; break;
  case OP_EXP: r = exp(x); break;
  case OP_LOG: r = log(x); break;
  case OP_SQRT: r = sqrt(x); break;
  case OP_TANH: r = tanh(x); break;
  case OP_SIGMOID: r = 1 / (1 + exp(-x)); break;
  case OP_RELU: r = x > 0 ? x : 0; break;
  default: return false;
  }
  if (!isfinite(r)) {
    sema_error(s, c->loc, "%s(%g) is not a finite number", c->b->name, x);
    *out = v_err();
  } else {
    *out = (Value){.k = V_FLOAT, .f = r, .loc = c->loc};
  }
  return true;
}

static Value lower_unary(Sema *s, Call *c) {
  Value folded;
  if (fold_unary(s, c, &folded)) return folded;
  int x = want_tensor(s, c, c->b->params[0]);
  if (x < 0) return v_err();
  SrcLoc il[1] = {arg_loc(c, c->b->params[0])};
  return result(sema_build(s, c->b->op, &x, 1, NULL, NULL, c->loc, il, NULL), c);
}

static Value lower_binary(Sema *s, Call *c) {
  int in[2] = {want_tensor(s, c, c->b->params[0]), want_tensor(s, c, c->b->params[1])};
  if (in[0] < 0 || in[1] < 0) return v_err();
  SrcLoc il[2] = {arg_loc(c, c->b->params[0]), arg_loc(c, c->b->params[1])};
  return result(sema_build(s, c->b->op, in, 2, NULL, NULL, c->loc, il, NULL), c);
}

static Value lower_cast(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  const Value *d = arg(c, "dtype");
  if (x < 0 || d->k == V_ERR) return v_err();
  if (d->k != V_DTYPE) {
    bad_arg(s, c, "dtype", d, "a dtype (f32, f16, bf16 or i32)");
    return v_err();
  }
  IrType t = *type_of(s, x);
  t.dt = d->dt;
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, OP_CAST, &x, 1, NULL, &t, c->loc, il, NULL), c);
}

static Value lower_transpose(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  if (x < 0) return v_err();
  int rank = type_of(s, x)->rank;
  if (rank < 2) {
    sema_error(s, arg_loc(c, "x"), "transpose needs a tensor of rank >= 2, got %s",
               sema_type_str(s, x));
    return v_err();
  }
  IrAttr at = {.naxes = rank};
  for (int i = 0; i < rank; i++) at.axes[i] = i;
  if (arg(c, "a") && arg(c, "a")->k == V_LIST && !arg(c, "b")) { /* transpose(x, [0, 2, 1]) */
    const Value *p = arg(c, "a");
    if (p->nitems != rank) {
      sema_error(s, p->loc, "transpose: %d axes given for a tensor of rank %d", p->nitems, rank);
      return v_err();
    }
    for (int i = 0; i < rank; i++)
      if (!norm_axis(s, c, &p->items[i], rank, &at.axes[i])) return v_err();
    SrcLoc il[1] = {arg_loc(c, "x")};
    return result(sema_build(s, OP_TRANSPOSE, &x, 1, &at, NULL, c->loc, il, NULL), c);
  }
  int a = rank - 2, b = rank - 1;
  Value va = v_int(-2, c->loc), vb = v_int(-1, c->loc);
  if (arg(c, "a")) va = *arg(c, "a");
  if (arg(c, "b")) vb = *arg(c, "b");
  if (va.k == V_ERR || vb.k == V_ERR || !norm_axis(s, c, &va, rank, &a) ||
      !norm_axis(s, c, &vb, rank, &b))
    return v_err();
  at.axes[a] = b;
  at.axes[b] = a;
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, OP_TRANSPOSE, &x, 1, &at, NULL, c->loc, il, NULL), c);
}

static Value lower_permute(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  if (x < 0) return v_err();
  IrAttr at = {0};
  const Value *p = arg(c, "axes");
  if (p->k == V_LIST && p->nitems != type_of(s, x)->rank) {
    sema_error(s, p->loc, "permute: %d axes given for a tensor of rank %d", p->nitems,
               type_of(s, x)->rank);
    return v_err();
  }
  if (!want_axes(s, c, "axes", type_of(s, x)->rank, &at)) return v_err();
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, OP_TRANSPOSE, &x, 1, &at, NULL, c->loc, il, NULL), c);
}

static Value reshape_to(Sema *s, Call *c, int x, IrType t) {
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, OP_RESHAPE, &x, 1, NULL, &t, c->loc, il, NULL), c);
}

static Value lower_reshape(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  const Value *sh = arg(c, "shape");
  if (x < 0 || sh->k == V_ERR) return v_err();
  if (sh->k != V_LIST || sh->nitems > IR_MAX_RANK) {
    bad_arg(s, c, "shape", sh, "a list of at most 6 sizes");
    return v_err();
  }
  IrGraph *g = s->g;
  IrType t = {.dt = type_of(s, x)->dt, .rank = sh->nitems};
  Dim *known = dim_const(g->dims, 1);
  int infer = -1;
  for (int i = 0; i < sh->nitems; i++) {
    const Value *e = &sh->items[i];
    if (e->k == V_INT && !e->dim && e->i == -1 && infer < 0) {
      infer = i;
      continue;
    }
    Dim *d = e->k == V_INT && (e->dim || (e->i > 0 && e->i <= INT32_MAX)) && e->mag < 1e12
                 ? sema_dim(s, e) : NULL;
    if (!d) {
      sema_error(s, e->loc, "reshape: a size must be a positive int, a dim or -1 (once)");
      return v_err();
    }
    t.dims[i] = d;
    known = dim_mul(g->dims, known, d);
  }
  if (infer >= 0) {
    Dim *total = ir_type_numel_dim(g, type_of(s, x));
    Dim *q = dim_div_exact(g->dims, total, known);
    if (!q) {
      sema_error(s, sh->items[infer].loc, "reshape: cannot infer -1: %s elements are not a "
                 "multiple of %s", dim_str(g->dims, total), dim_str(g->dims, known));
      return v_err();
    }
    t.dims[infer] = q;
  }
  return reshape_to(s, c, x, t);
}

static Value lower_flatten(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  int64_t start;
  if (x < 0 || !want_int(s, c, "start", 1, -IR_MAX_RANK, IR_MAX_RANK, &start)) return v_err();
  IrType t = *type_of(s, x);
  if (start < 0) start += t.rank;
  if (start < 0 || start >= t.rank) {
    sema_error(s, arg_loc(c, "start"), "flatten: start %lld is out of range for %s",
               (long long)start, sema_type_str(s, x));
    return v_err();
  }
  Dim *p = dim_const(s->g->dims, 1);
  for (int i = (int)start; i < t.rank; i++) p = dim_mul(s->g->dims, p, t.dims[i]);
  t.dims[start] = p;
  t.rank = (int)start + 1;
  return reshape_to(s, c, x, t);
}

static Value lower_concat(Sema *s, Call *c) {
  if (c->nrest < 1) {
    sema_error(s, c->loc, "concat needs at least one tensor");
    return v_err();
  }
  int *in = arena_alloc(s->a, (size_t)c->nrest * sizeof(int));
  SrcLoc *il = arena_alloc(s->a, (size_t)c->nrest * sizeof(SrcLoc));
  for (int i = 0; i < c->nrest; i++) {
    if (c->rest[i].k == V_ERR) return v_err();
    if (c->rest[i].k != V_TENSOR) {
      sema_error(s, c->rest[i].loc, "concat takes tensors, got %s", v_kind_name(&c->rest[i]));
      return v_err();
    }
    in[i] = c->rest[i].node;
    il[i] = c->rest[i].loc;
  }
  IrAttr at = {0};
  const Value *ax = arg(c, "axis");
  Value zero = v_int(0, c->loc);
  if (!norm_axis(s, c, ax ? ax : &zero, type_of(s, in[0])->rank, &at.axis)) return v_err();
  return result(sema_build(s, OP_CONCAT, in, c->nrest, &at, NULL, c->loc, il, NULL), c);
}

static bool slice_bound(Sema *s, Call *c, const char *name, Dim *extent, Dim **out) {
  const Value *v = arg(c, name);
  if (!v) return true;
  if (v->k == V_ERR) return false;
  if (v->k != V_INT || v->mag > 1e12) return bad_arg(s, c, name, v, "an int or a dim");
  *out = !v->dim && v->i < 0 ? dim_add(s->g->dims, extent, sema_dim(s, v)) : sema_dim(s, v);
  return true;
}

static Value lower_slice(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  if (x < 0 || arg(c, "axis")->k == V_ERR) return v_err();
  IrAttr at = {0};
  if (!norm_axis(s, c, arg(c, "axis"), type_of(s, x)->rank, &at.axis)) return v_err();
  Dim *extent = type_of(s, x)->dims[at.axis];
  at.start = dim_const(s->g->dims, 0);
  at.end = extent;
  if (!slice_bound(s, c, "start", extent, &at.start) || !slice_bound(s, c, "end", extent, &at.end))
    return v_err();
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, OP_SLICE, &x, 1, &at, NULL, c->loc, il, NULL), c);
}

static Value lower_reduce(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  if (x < 0) return v_err();
  IrAttr at = {0};
  if (!want_axes(s, c, "axes", type_of(s, x)->rank, &at) ||
      !want_bool(s, c, "keepdim", false, &at.keepdim))
    return v_err();
  if (at.naxes == 0) {
    /* a rank-0 tensor: nothing to reduce */
    return v_tensor(x, c->loc);
  }
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, c->b->op, &x, 1, &at, NULL, c->loc, il, NULL), c);
}

static Value lower_softmax(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  if (x < 0) return v_err();
  IrAttr at = {0};
  const Value *ax = arg(c, "axis");
  Value last = v_int(-1, c->loc);
  if (type_of(s, x)->rank < 1) {
    sema_error(s, arg_loc(c, "x"), "%s needs a tensor of rank >= 1", c->b->name);
    return v_err();
  }
  if (!norm_axis(s, c, ax ? ax : &last, type_of(s, x)->rank, &at.axis)) return v_err();
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, c->b->op, &x, 1, &at, NULL, c->loc, il, NULL), c);
}

/* ---- layers ------------------------------------------------------------------------------ */

/* `weight = wte.weight`: an existing tensor (usually a parameter of another layer) used as
 * this layer's weight; it must have exactly the type the layer would have created */
static int tied_weight(Sema *s, Call *c, IrType want) {
  int w = want_tensor(s, c, "weight");
  if (w < 0) return -1;
  if (ir_type_eq(type_of(s, w), &want)) return w;
  char wb[160];
  ir_type_str(s->g, &want, wb, sizeof wb);
  sema_error(s, arg_loc(c, "weight"), "argument 'weight' of %s must be %s for this layer, got %s",
             c->b->name, wb, sema_type_str(s, w));
  return -1;
}

static Value lower_dense(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  Dim *out = want_size(s, c, "out");
  bool bias;
  if (x < 0 || !out || !want_bool(s, c, "bias", true, &bias)) return v_err();
  const IrType *xt = type_of(s, x);
  if (xt->rank < 1) {
    sema_error(s, arg_loc(c, "x"), "dense needs an input of rank >= 1, got %s", sema_type_str(s, x));
    return v_err();
  }
  Dim *in = xt->dims[xt->rank - 1];
  double bound = 1.0 / sqrt(fmax(1.0, dim_evalf(s->g->dims, in, NULL)));
  IrAttr wi = {0}, bi = {0};
  if (!init_or(s, c, 0, &wi, INIT_UNIFORM, -bound, bound) ||
      !init_or(s, c, 1, &bi, INIT_UNIFORM, -bound, bound))
    return v_err();
  const char *scope = layer_scope(s, c);
  if (!scope) return v_err();
  DType dt = param_dtype(s, x);
  Dim *wd[2] = {out, in};
  int w = arg(c, "weight") ? tied_weight(s, c, ir_type(dt, 2, wd))
                           : sema_param(s, scope, "weight", ir_type(dt, 2, wd), &wi, true, c->loc);
  if (w < 0) return v_err();
  int b = bias ? sema_param(s, scope, "bias", ir_type(dt, 1, &out), &bi, true, c->loc) : 0;
  if (w < 0 || b < 0) return v_err();
  IrAttr mt = {.trans_b = true};
  int in2[2] = {x, w};
  SrcLoc il[2] = {arg_loc(c, "x"), c->loc};
  int y = sema_build(s, OP_MATMUL, in2, 2, &mt, NULL, c->loc, il, scope);
  if (y >= 0 && type_of(s, x)->rank > 2) sema_wide_dense(s, y);
  if (y < 0 || !bias) return result(y, c);
  int in3[2] = {y, b};
  return result(sema_build(s, OP_ADD, in3, 2, NULL, NULL, c->loc, NULL, scope), c);
}

static Value lower_conv2d(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  Dim *out = want_size(s, c, "out");
  IrAttr at = {0};
  static const int one[2] = {1, 1}, zero[2] = {0, 0};
  int64_t groups;
  bool bias;
  if (x < 0 || !out || !want_pair(s, c, "kernel", one, 1, at.kernel) ||
      !want_pair(s, c, "stride", one, 1, at.stride) || !want_pair(s, c, "pad", zero, 0, at.pad) ||
      !want_pair(s, c, "dilation", one, 1, at.dilation) ||
      !want_int(s, c, "groups", 1, 1, ATTR_MAX, &groups) || !want_bool(s, c, "bias", true, &bias))
    return v_err();
  at.groups = (int)groups;
  const IrType *xt = type_of(s, x);
  if (xt->rank != 4) {
    sema_error(s, arg_loc(c, "x"), "conv2d: input must be [N,C,H,W], got %s", sema_type_str(s, x));
    return v_err();
  }
  Dim *cg = dim_div_exact(s->g->dims, xt->dims[1], dim_const(s->g->dims, groups));
  if (!cg) {
    sema_error(s, c->loc, "conv2d: groups=%d does not divide the %s input channels of %s",
               at.groups, dim_str(s->g->dims, xt->dims[1]), sema_type_str(s, x));
    return v_err();
  }
  double fan_in = dim_evalf(s->g->dims, cg, NULL) * at.kernel[0] * at.kernel[1];
  double bound = 1.0 / sqrt(fmax(1.0, fan_in));
  IrAttr wi = {0}, bi = {0};
  if (!init_or(s, c, 0, &wi, INIT_UNIFORM, -bound, bound) ||
      !init_or(s, c, 1, &bi, INIT_UNIFORM, -bound, bound))
    return v_err();
  const char *scope = layer_scope(s, c);
  if (!scope) return v_err();
  DType dt = param_dtype(s, x);
  Dim *wd[4] = {out, cg, dim_const(s->g->dims, at.kernel[0]), dim_const(s->g->dims, at.kernel[1])};
  int w = sema_param(s, scope, "weight", ir_type(dt, 4, wd), &wi, true, c->loc);
  if (w < 0) return v_err();
  int b = bias ? sema_param(s, scope, "bias", ir_type(dt, 1, &out), &bi, true, c->loc) : 0;
  if (w < 0 || b < 0) return v_err();
  int in2[2] = {x, w};
  SrcLoc il[2] = {arg_loc(c, "x"), c->loc};
  int y = sema_build(s, OP_CONV2D, in2, 2, &at, NULL, c->loc, il, scope);
  if (y < 0 || !bias) return result(y, c);
  Dim *one1 = dim_const(s->g->dims, 1);
  Dim *bd[3] = {out, one1, one1};
  IrType bt = ir_type(dt, 3, bd);
  int br = sema_build(s, OP_RESHAPE, &b, 1, NULL, &bt, c->loc, NULL, scope);
  if (br < 0) return v_err();
  int in3[2] = {y, br};
  return result(sema_build(s, OP_ADD, in3, 2, NULL, NULL, c->loc, NULL, scope), c);
}

static Value lower_pool(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  IrAttr at = {.dilation = {1, 1}};
  static const int zero[2] = {0, 0};
  if (x < 0 || !want_pair(s, c, "kernel", zero, 1, at.kernel)) return v_err();
  bool include_pad;
  if (!want_pair(s, c, "stride", at.kernel, 1, at.stride) ||
      !want_pair(s, c, "pad", zero, 0, at.pad) || !want_bool(s, c, "ceil_mode", false, &at.ceil_mode) ||
      !want_bool(s, c, "count_include_pad", true, &include_pad))
    return v_err();
  at.exclude_pad = !include_pad;
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, c->b->op, &x, 1, &at, NULL, c->loc, il, NULL), c);
}

/* the most windows per axis of an adaptive pool whose windows vary in size */
enum { ADAPTIVE_MAX_OUT = 1024 };

/* Axis `axis` (extent n) of x pooled to `out` windows [floor(i*n/out), ceil((i+1)*n/out)),
 * PyTorch's: a slice and a mean (max) reduction per window, concatenated. -1 after an
 * error. */
static int adaptive_axis(Sema *s, Call *c, int x, int axis, int64_t n, int out) {
  if (out == n) return x; /* windows of one element */
  int *parts = xcalloc((size_t)out, sizeof *parts), y = -1;
  OpKind red = c->b->op == OP_MAXPOOL ? OP_MAX : OP_MEAN;
  for (int i = 0; i < out; i++) {
    int64_t a = i * n / out, b = ((i + 1) * n + out - 1) / out;
    IrAttr sl = {.axis = axis, .start = dim_const(s->g->dims, a), .end = dim_const(s->g->dims, b)};
    IrAttr r = {.naxes = 1, .axes = {axis}, .keepdim = true};
    int v = sema_build(s, OP_SLICE, &x, 1, &sl, NULL, c->loc, NULL, NULL);
    if (v < 0 || (parts[i] = sema_build(s, red, &v, 1, &r, NULL, c->loc, NULL, NULL)) < 0)
      goto out;
  }
  IrAttr ca = {.axis = axis};
  y = out == 1 ? parts[0] : sema_build(s, OP_CONCAT, parts, out, &ca, NULL, c->loc, NULL, NULL);
out:
  free(parts);
  return y;
}

/* adaptive_avgpool(x, out) / adaptive_maxpool: PyTorch's AdaptiveAvgPool2d/MaxPool2d. When
 * each input extent is a multiple of the output extent (torchvision at its native sizes:
 * 6x6 -> 6, 7x7 -> 7, 14x14 -> 7) the windows are uniform: a pool with kernel = stride =
 * in/out. Otherwise (13 -> 6, 5 -> 7) the windows vary; as a rectangle's mean (max) is the
 * mean (max) over rows of the mean (max) over columns, the width is pooled, then the
 * height, each by adaptive_axis. */
static Value lower_adaptive_pool(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  static const int one[2] = {1, 1};
  int out[2];
  if (x < 0 || !want_pair(s, c, "out", one, 1, out)) return v_err();
  const IrType *xt = type_of(s, x);
  if (xt->rank != 4) {
    sema_error(s, arg_loc(c, "x"), "%s: input must be [N,C,H,W], got %s", c->b->name,
               sema_type_str(s, x));
    return v_err();
  }
  IrAttr at = {.dilation = {1, 1}};
  int64_t n[2];
  bool uniform = true;
  for (int i = 0; i < 2; i++) {
    if (!dim_is_const(xt->dims[2 + i], &n[i]) || n[i] > ATTR_MAX ||
        (n[i] % out[i] && out[i] > ADAPTIVE_MAX_OUT)) {
      sema_error(s, arg_loc(c, "out"), "%s: the input %s must be a constant (got %s) and an "
                 "output size that does not divide it at most %d (got %d)", c->b->name,
                 i ? "width" : "height", dim_str(s->g->dims, xt->dims[2 + i]),
                 ADAPTIVE_MAX_OUT, out[i]);
      return v_err();
    }
    uniform &= n[i] % out[i] == 0;
    at.kernel[i] = at.stride[i] = (int)(n[i] / out[i]);
  }
  SrcLoc il[1] = {arg_loc(c, "x")};
  if (uniform) return result(sema_build(s, c->b->op, &x, 1, &at, NULL, c->loc, il, NULL), c);
  int y = adaptive_axis(s, c, x, 3, n[1], out[1]);
  if (y >= 0) y = adaptive_axis(s, c, y, 2, n[0], out[0]);
  return y < 0 ? v_err() : result(y, c);
}

static Value lower_global_avgpool(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  if (x < 0) return v_err();
  if (type_of(s, x)->rank != 4) {
    sema_error(s, arg_loc(c, "x"), "global_avgpool: input must be [N,C,H,W], got %s",
               sema_type_str(s, x));
    return v_err();
  }
  IrAttr at = {.naxes = 2, .axes = {2, 3}, .keepdim = true};
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, OP_MEAN, &x, 1, &at, NULL, c->loc, il, NULL), c);
}

static Value lower_batchnorm(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  IrAttr at = {0};
  if (x < 0 || !want_float(s, c, "eps", 1e-5, &at.value) ||
      !want_float(s, c, "momentum", 0.1, &at.momentum))
    return v_err();
  if (type_of(s, x)->rank != 2 && type_of(s, x)->rank != 4) {
    sema_error(s, arg_loc(c, "x"), "batchnorm: input must be [N,C] or [N,C,H,W], got %s",
               sema_type_str(s, x));
    return v_err();
  }
  const char *scope = layer_scope(s, c);
  if (!scope) return v_err();
  Dim *ch = type_of(s, x)->dims[1];
  IrType pt = ir_type(param_dtype(s, x), 1, &ch);
  static const char *const names[4] = {"weight", "bias", "running_mean", "running_var"};
  static const InitKind inits[4] = {INIT_ONES, INIT_ZEROS, INIT_ZEROS, INIT_ONES};
  int in[5] = {x};
  for (int i = 0; i < 4; i++) {
    IrAttr pi = {.init = inits[i]};
    in[i + 1] = sema_param(s, scope, names[i], pt, &pi, i < 2, c->loc);
    if (in[i + 1] < 0) return v_err();
  }
  SrcLoc il[5] = {arg_loc(c, "x"), c->loc, c->loc, c->loc, c->loc};
  return result(sema_build(s, OP_BATCHNORM, in, 5, &at, NULL, c->loc, il, scope), c);
}

static Value lower_layernorm(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  IrAttr at = {0};
  int64_t n;
  if (x < 0 || !want_int(s, c, "dims", 1, 1, IR_MAX_RANK, &n) ||
      !want_float(s, c, "eps", 1e-5, &at.value))
    return v_err();
  const IrType *xt = type_of(s, x);
  if (n > xt->rank) {
    sema_error(s, arg_loc(c, "dims"), "layernorm: cannot normalize the last %lld dims of %s",
               (long long)n, sema_type_str(s, x));
    return v_err();
  }
  at.naxes = (int)n;
  const char *scope = layer_scope(s, c);
  if (!scope) return v_err();
  IrType pt = ir_type(param_dtype(s, x), (int)n, xt->dims + xt->rank - n);
  IrAttr one = {.init = INIT_ONES}, zero = {.init = INIT_ZEROS};
  int in[3] = {x, sema_param(s, scope, "weight", pt, &one, true, c->loc), -1};
  if (in[1] < 0 || (in[2] = sema_param(s, scope, "bias", pt, &zero, true, c->loc)) < 0)
    return v_err();
  SrcLoc il[3] = {arg_loc(c, "x"), c->loc, c->loc};
  return result(sema_build(s, OP_LAYERNORM, in, 3, &at, NULL, c->loc, il, scope), c);
}

static Value lower_dropout(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  IrAttr at = {0};
  if (x < 0 || !want_float(s, c, "p", 0.5, &at.value)) return v_err();
  const char *scope = layer_scope(s, c);
  if (!scope) return v_err();
  uint64_t h = 1469598103934665603ull;
  for (const char *p = scope; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  at.seed = h ? h : 1;
  SrcLoc il[1] = {arg_loc(c, "x")};
  return result(sema_build(s, OP_DROPOUT, &x, 1, &at, NULL, c->loc, il, scope), c);
}

static Value lower_embedding(Sema *s, Call *c) {
  int idx = want_tensor(s, c, "idx");
  Dim *num = want_size(s, c, "num"), *dim = want_size(s, c, "dim");
  if (idx < 0 || !num || !dim) return v_err();
  IrAttr ti = {0};
  if (!init_or(s, c, 0, &ti, INIT_NORMAL, 1.0, 0)) return v_err();
  const char *scope = layer_scope(s, c);
  if (!scope) return v_err();
  Dim *td[2] = {num, dim};
  int t = arg(c, "weight") ? tied_weight(s, c, ir_type(DT_F32, 2, td))
                           : sema_param(s, scope, "weight", ir_type(DT_F32, 2, td), &ti, true, c->loc);
  if (t < 0) return v_err();
  int in[2] = {t, idx};
  SrcLoc il[2] = {c->loc, arg_loc(c, "idx")};
  return result(sema_build(s, OP_EMBEDDING, in, 2, NULL, NULL, c->loc, il, scope), c);
}


/* ---- comparisons, selection, index tensors -------------------------------------------- */

/* a tensor argument, or a number made a rank-0 constant of dtype dt */
static int tensor_or_number(Sema *s, const Call *c, const char *name, DType dt) {
  const Value *v = arg(c, name);
  if (!v || v->k == V_ERR) return -1;
  if (v->k == V_TENSOR) return v->node;
  double x;
  if (v->k == V_FLOAT) x = v->f;
  else if (v->k == V_INT) x = v->dim ? dim_evalf(s->g->dims, v->dim, NULL) : (double)v->i;
  else {
    bad_arg(s, c, name, v, "a tensor or a number");
    return -1;
  }
  IrAttr at = {.value = x};
  IrType t = {.dt = dt, .rank = 0};
  return sema_build(s, OP_CONST, NULL, 0, &at, &t, v->loc, NULL, NULL);
}

/* the dtype of the first tensor among the arguments, f32 when none is a tensor */
static DType first_tensor_dtype(Sema *s, const Call *c, const char *const *names, int n) {
  for (int i = 0; i < n; i++) {
    const Value *v = arg(c, names[i]);
    if (v && v->k == V_TENSOR) return type_of(s, v->node)->dt;
  }
  return DT_F32;
}

static Value lower_compare(Sema *s, Call *c) {
  const Value *a = arg(c, "a"), *b = arg(c, "b");
  if (a->k != V_TENSOR && b->k != V_TENSOR && a->k != V_ERR && b->k != V_ERR) {
    sema_error(s, c->loc, "%s needs at least one tensor operand", c->b->name);
    return v_err();
  }
  const char *names[2] = {"a", "b"};
  DType dt = first_tensor_dtype(s, c, names, 2);
  int in[2] = {tensor_or_number(s, c, "a", dt), tensor_or_number(s, c, "b", dt)};
  if (in[0] < 0 || in[1] < 0) return v_err();
  SrcLoc il[2] = {arg_loc(c, "a"), arg_loc(c, "b")};
  return result(sema_build(s, c->b->op, in, 2, NULL, NULL, c->loc, il, NULL), c);
}

static Value lower_where(Sema *s, Call *c) {
  int cond = want_tensor(s, c, "cond");
  const char *names[2] = {"a", "b"};
  DType dt = first_tensor_dtype(s, c, names, 2);
  bool any = arg(c, "a")->k == V_TENSOR || arg(c, "b")->k == V_TENSOR;
  if (!any && cond >= 0 && type_of(s, cond)->dt != DT_I32) dt = type_of(s, cond)->dt;
  int in[3] = {cond, tensor_or_number(s, c, "a", dt), tensor_or_number(s, c, "b", dt)};
  if (in[0] < 0 || in[1] < 0 || in[2] < 0) return v_err();
  SrcLoc il[3] = {arg_loc(c, "cond"), arg_loc(c, "a"), arg_loc(c, "b")};
  return result(sema_build(s, OP_WHERE, in, 3, NULL, NULL, c->loc, il, NULL), c);
}

static bool want_dtype(Sema *s, const Call *c, DType *dt) {
  const Value *d = arg(c, "dtype");
  *dt = DT_F32;
  if (!d) return true;
  if (d->k == V_ERR) return false;
  if (d->k != V_DTYPE) return bad_arg(s, c, "dtype", d, "a dtype (f32, f16, bf16 or i32)");
  *dt = d->dt;
  return true;
}

/* an iota node of type t along axis: start + step * index */
static int iota_node(Sema *s, IrType t, int axis, double start, double step, SrcLoc loc) {
  IrAttr at = {.axis = axis, .init_a = start, .init_b = step};
  return sema_build(s, OP_IOTA, NULL, 0, &at, &t, loc, NULL, NULL);
}

/* arange(end) or arange(start, end, step = 1): a 1-D tensor like torch.arange; with a
 * symbolic end, start and step must be constants and step 1 */
static Value lower_arange(Sema *s, Call *c) {
  const Value *a = arg(c, "a"), *b = arg(c, "b");
  const Value *endv = b ? b : a;
  int64_t start = 0, step = 1;
  DType dt;
  if (a->k == V_ERR || (b && b->k == V_ERR) || !want_dtype(s, c, &dt) ||
      !want_int(s, c, "step", 1, -INT32_MAX, INT32_MAX, &step))
    return v_err();
  if (b) {
    if (a->k != V_INT || a->dim) return bad_arg(s, c, "a", a, "a constant int"), v_err();
    start = a->i;
  }
  if (endv->k != V_INT) return bad_arg(s, c, b ? "b" : "a", endv, "an int or a dim"), v_err();
  if (step == 0) {
    sema_error(s, arg_loc(c, "step"), "arange: step must not be 0");
    return v_err();
  }
  Dim *count;
  if (endv->dim) {
    if (step != 1) {
      sema_error(s, arg_loc(c, "step"), "arange: with a symbolic end the step must be 1");
      return v_err();
    }
    count = dim_sub(s->g->dims, sema_dim(s, endv), dim_const(s->g->dims, start));
  } else {
    int64_t span = endv->i - start, n = span / step + (span % step != 0);
    if (n <= 0 || n > INT32_MAX) {
      sema_error(s, c->loc, "arange(%lld, %lld, %lld) would have %lld elements; it needs at "
                 "least 1", (long long)start, (long long)endv->i, (long long)step,
                 (long long)(n > 0 ? n : 0));
      return v_err();
    }
    count = dim_const(s->g->dims, n);
  }
  IrType t = {.dt = dt, .rank = 1, .dims = {count}};
  return result(iota_node(s, t, 0, (double)start, (double)step, c->loc), c);
}

/* tril(x, k) keeps x[.., i, j] where j - i <= k (triu: >= k) and zeroes the rest. The mask is
 * two index vectors compared elementwise, fused into the pass that applies it: nothing is
 * fed or stored at the size of x */
static Value lower_tri(Sema *s, Call *c) {
  int x = want_tensor(s, c, "x");
  int64_t k;
  if (x < 0 || !want_int(s, c, "k", 0, -INT32_MAX, INT32_MAX, &k)) return v_err();
  const IrType *xt = type_of(s, x);
  if (xt->rank < 2) {
    sema_error(s, arg_loc(c, "x"), "%s needs a tensor of rank >= 2, got %s", c->b->name,
               sema_type_str(s, x));
    return v_err();
  }
  Dim *one = dim_const(s->g->dims, 1);
  IrType rt = {.dt = DT_F32, .rank = 2, .dims = {xt->dims[xt->rank - 2], one}};
  IrType ct = {.dt = DT_F32, .rank = 2, .dims = {one, xt->dims[xt->rank - 1]}};
  int row = iota_node(s, rt, 0, (double)k, 1, c->loc), col = iota_node(s, ct, 1, 0, 1, c->loc);
  if (row < 0 || col < 0) return v_err();
  int cmp_in[2] = {col, row}; /* j <= i + k (tril), j >= i + k (triu) */
  int mask = sema_build(s, c->b->op, cmp_in, 2, NULL, NULL, c->loc, NULL, NULL);
  IrAttr z = {.value = 0};
  IrType zt = {.dt = xt->dt, .rank = 0};
  int zero = sema_build(s, OP_CONST, NULL, 0, &z, &zt, c->loc, NULL, NULL);
  if (mask < 0 || zero < 0) return v_err();
  int in[3] = {mask, x, zero};
  SrcLoc il[3] = {c->loc, arg_loc(c, "x"), c->loc};
  return result(sema_build(s, OP_WHERE, in, 3, NULL, NULL, c->loc, il, NULL), c);
}

/* full(shape, value), ones(shape), zeros(shape): a constant of that shape */
static Value lower_full(Sema *s, Call *c) {
  const Value *sh = arg(c, "shape");
  DType dt;
  double v = !strcmp(c->b->name, "ones") ? 1 : 0;
  if (sh->k == V_ERR || !want_dtype(s, c, &dt) || !want_float(s, c, "value", v, &v))
    return v_err();
  if (sh->k != V_LIST || sh->nitems > IR_MAX_RANK)
    return bad_arg(s, c, "shape", sh, "a list of at most 6 sizes"), v_err();
  IrType t = {.dt = dt, .rank = sh->nitems};
  for (int i = 0; i < sh->nitems; i++) {
    const Value *e = &sh->items[i];
    t.dims[i] = e->k == V_INT && (e->dim || (e->i > 0 && e->i <= INT32_MAX)) && e->mag < 1e12
                    ? sema_dim(s, e) : NULL;
    if (!t.dims[i]) {
      sema_error(s, e->loc, "%s: a size must be a positive int or a dim", c->b->name);
      return v_err();
    }
  }
  IrAttr at = {.value = v};
  return result(sema_build(s, OP_CONST, NULL, 0, &at, &t, c->loc, NULL, NULL), c);
}

/* ---- losses ------------------------------------------------------------------------------ */

/* logits [.., C] with labels [..] (e.g. [N, T, V] and [N, T]) are viewed as [rows, C] and
 * [rows]; a mismatch on logits of rank > 2 from a dense layer gets a note on that layer */
static bool ce_flatten(Sema *s, Call *c, int *lg, int *lab) {
  const IrType *lt = type_of(s, *lg), *yt = type_of(s, *lab);
  if (lt->rank <= 2) return true;
  bool ok = yt->rank == lt->rank - 1;
  for (int i = 0; ok && i < yt->rank; i++) ok = dim_eq(yt->dims[i], lt->dims[i]);
  if (!ok) {
    IrType want = *lt;
    want.dt = DT_I32;
    want.rank--;
    char wb[160];
    ir_type_str(s->g, &want, wb, sizeof wb);
    sema_error(s, arg_loc(c, "labels"), "cross_entropy: logits %s need labels %s (one per "
               "position), got %s", sema_type_str(s, *lg), wb, sema_type_str(s, *lab));
    if (yt->rank == 1) sema_note_wide_dense(s, lg, 1);
    return false;
  }
  Dim *rows = dim_const(s->g->dims, 1);
  for (int i = 0; i < yt->rank; i++) rows = dim_mul(s->g->dims, rows, yt->dims[i]);
  IrType l2 = {.dt = lt->dt, .rank = 2, .dims = {rows, lt->dims[lt->rank - 1]}};
  IrType y1 = {.dt = yt->dt, .rank = 1, .dims = {rows}};
  *lg = sema_build(s, OP_RESHAPE, lg, 1, NULL, &l2, arg_loc(c, "logits"), NULL, NULL);
  *lab = sema_build(s, OP_RESHAPE, lab, 1, NULL, &y1, arg_loc(c, "labels"), NULL, NULL);
  return *lg >= 0 && *lab >= 0;
}

static Value lower_cross_entropy(Sema *s, Call *c) {
  int in[2] = {want_tensor(s, c, "logits"), want_tensor(s, c, "labels")};
  IrAttr at = {0};
  int64_t ign = 0;
  at.ignore = arg(c, "ignore_index") != NULL;
  if (in[0] < 0 || in[1] < 0 || !want_float(s, c, "label_smoothing", 0, &at.value) ||
      !want_int(s, c, "ignore_index", 0, INT32_MIN, INT32_MAX, &ign))
    return v_err();
  if (!(at.value >= 0 && at.value < 1)) {
    sema_error(s, arg_loc(c, "label_smoothing"), "label_smoothing must be in [0, 1), got %g",
               at.value);
    return v_err();
  }
  at.ignore_index = (int)ign;
  if (!ce_flatten(s, c, &in[0], &in[1])) return v_err();
  SrcLoc il[2] = {arg_loc(c, "logits"), arg_loc(c, "labels")};
  return result(sema_build(s, OP_CROSS_ENTROPY, in, 2, &at, NULL, c->loc, il, NULL), c);
}

/* ---- the table ---------------------------------------------------------------------------- */

#define UNARY(nm, OP) {nm, lower_unary, OP, 1, 0, {"x"}}
static const Builtin builtins[] = {
    UNARY("neg", OP_NEG), UNARY("exp", OP_EXP), UNARY("log", OP_LOG), UNARY("sqrt", OP_SQRT),
    UNARY("tanh", OP_TANH), UNARY("sigmoid", OP_SIGMOID), UNARY("relu", OP_RELU),
    UNARY("gelu", OP_GELU), UNARY("silu", OP_SILU),
    {"matmul", lower_binary, OP_MATMUL, 2, 0, {"a", "b"}},
    {"lt", lower_compare, OP_LT, 2, 0, {"a", "b"}},
    {"le", lower_compare, OP_LE, 2, 0, {"a", "b"}},
    {"gt", lower_compare, OP_GT, 2, 0, {"a", "b"}},
    {"ge", lower_compare, OP_GE, 2, 0, {"a", "b"}},
    {"eq", lower_compare, OP_EQ, 2, 0, {"a", "b"}},
    {"ne", lower_compare, OP_NE, 2, 0, {"a", "b"}},
    {"where", lower_where, OP_WHERE, 3, 0, {"cond", "a", "b"}},
    {"arange", lower_arange, OP_IOTA, 1, 0, {"a", "b", "step", "dtype"}},
    {"tril", lower_tri, OP_LE, 1, 0, {"x", "k"}},
    {"triu", lower_tri, OP_GE, 1, 0, {"x", "k"}},
    {"full", lower_full, OP_CONST, 2, 0, {"shape", "value", "dtype"}},
    {"ones", lower_full, OP_CONST, 1, 0, {"shape", "dtype"}},
    {"zeros", lower_full, OP_CONST, 1, 0, {"shape", "dtype"}},
    {"cast", lower_cast, OP_CAST, 2, 0, {"x", "dtype"}},
    {"to", lower_cast, OP_CAST, 2, 0, {"x", "dtype"}},
    {"transpose", lower_transpose, OP_TRANSPOSE, 1, 0, {"x", "a", "b"}},
    {"permute", lower_permute, OP_TRANSPOSE, 2, 0, {"x", "axes"}},
    {"reshape", lower_reshape, OP_RESHAPE, 2, 0, {"x", "shape"}},
    {"flatten", lower_flatten, OP_RESHAPE, 1, 0, {"x", "start"}},
    {"concat", lower_concat, OP_CONCAT, 0, BF_VARIADIC, {"axis"}},
    {"slice", lower_slice, OP_SLICE, 2, 0, {"x", "axis", "start", "end"}},
    {"sum", lower_reduce, OP_SUM, 1, 0, {"x", "axes", "keepdim"}},
    {"mean", lower_reduce, OP_MEAN, 1, 0, {"x", "axes", "keepdim"}},
    {"max", lower_reduce, OP_MAX, 1, 0, {"x", "axes", "keepdim"}},
    {"softmax", lower_softmax, OP_SOFTMAX, 1, 0, {"x", "axis"}},
    {"log_softmax", lower_softmax, OP_LOG_SOFTMAX, 1, 0, {"x", "axis"}},
    {"dense", lower_dense, OP_MATMUL, 2, BF_LAYER, {"x", "out", "bias", "init", "bias_init", "weight"}},
    {"conv2d", lower_conv2d, OP_CONV2D, 3, BF_LAYER,
     {"x", "out", "kernel", "stride", "pad", "dilation", "groups", "bias", "init", "bias_init"}},
    {"maxpool", lower_pool, OP_MAXPOOL, 2, 0, {"x", "kernel", "stride", "pad", "ceil_mode"}},
    {"avgpool", lower_pool, OP_AVGPOOL, 2, 0,
     {"x", "kernel", "stride", "pad", "ceil_mode", "count_include_pad"}},
    {"adaptive_avgpool", lower_adaptive_pool, OP_AVGPOOL, 2, 0, {"x", "out"}},
    {"adaptive_maxpool", lower_adaptive_pool, OP_MAXPOOL, 2, 0, {"x", "out"}},
    {"global_avgpool", lower_global_avgpool, OP_MEAN, 1, 0, {"x"}},
    {"batchnorm", lower_batchnorm, OP_BATCHNORM, 1, BF_LAYER, {"x", "eps", "momentum"}},
    {"layernorm", lower_layernorm, OP_LAYERNORM, 1, BF_LAYER, {"x", "dims", "eps"}},
    {"dropout", lower_dropout, OP_DROPOUT, 1, BF_LAYER, {"x", "p"}},
    {"embedding", lower_embedding, OP_EMBEDDING, 3, BF_LAYER, {"idx", "num", "dim", "init", "weight"}},
    {"cross_entropy", lower_cross_entropy, OP_CROSS_ENTROPY, 2, 0,
     {"logits", "labels", "ignore_index", "label_smoothing"}},
    {"mse", lower_binary, OP_MSE, 2, 0, {"pred", "target"}},
};
#define NBUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

const Builtin *builtin_find(const char *name) {
  for (int i = 0; i < NBUILTINS; i++)
    if (!strcmp(builtins[i].name, name)) return &builtins[i];
  return NULL;
}

int builtin_count(void) { return NBUILTINS; }
const char *builtin_name(int i) { return builtins[i].name; }

static const char *const init_names[] = {"zeros", "ones", "normal", "uniform", "xavier", "he",
                                         "const"};

bool builtin_is_initializer(const char *name) {
  for (int i = 0; i < 7; i++)
    if (!strcmp(name, init_names[i])) return true;
  return false;
}

static int nparams(const Builtin *b) {
  int n = 0;
  while (n < BMAX && b->params[n]) n++;
  return n;
}

static bool is_init_param(const char *p) { return !strcmp(p, "init") || !strcmp(p, "bias_init"); }

static void unknown_keyword(Sema *s, const Builtin *b, const Ast *kw) {
  const char *c[BMAX + 1];
  int n = 0;
  for (int i = 0; i < BMAX && b->params[i]; i++) c[n++] = b->params[i];
  if (b->flags & BF_LAYER) c[n++] = "name";
  const char *sug = sema_suggest(kw->name, c, n);
  if (sug)
    sema_error(s, kw->name_loc, "unknown keyword '%s' for %s; did you mean '%s'?", kw->name,
               b->name, sug);
  else
    sema_error(s, kw->name_loc, "unknown keyword '%s' for %s", kw->name, b->name);
}

static bool bind_kwarg(Sema *s, Call *c, const Ast *kw) {
  const Builtin *b = c->b;
  if (!strcmp(kw->name, "name") && (b->flags & BF_LAYER)) {
    c->name = sema_eval(s, kw->a);
    if (c->name.k == V_ERR) return false;
    if (c->name.k != V_STR) return bad_arg(s, c, "name", &c->name, "a string");
    return true;
  }
  int i = slot(c, kw->name);
  if (i < 0) {
    unknown_keyword(s, b, kw);
    return false;
  }
  if (c->has[i] || (is_init_param(kw->name) && c->init[kw->name[0] == 'b'])) {
    sema_error(s, kw->name_loc, "argument '%s' of %s is given twice", kw->name, b->name);
    return false;
  }
  if (is_init_param(kw->name)) {
    c->init[kw->name[0] == 'b'] = kw->a;
    return true;
  }
  c->v[i] = sema_eval(s, kw->a);
  c->has[i] = true;
  return c->v[i].k != V_ERR;
}

static bool bind_args(Sema *s, Call *c, const Ast *call) {
  const Builtin *b = c->b;
  int np = nparams(b), pos = 0, npos_max = 0;
  while (npos_max < np && !is_init_param(b->params[npos_max])) npos_max++;
  bool ok = true;
  for (int i = 0; i < call->nkids; i++) {
    const Ast *a = call->kids[i];
    if (a->kind == AST_KWARG) {
      ok &= bind_kwarg(s, c, a);
      continue;
    }
    if (b->flags & BF_VARIADIC) {
      arena_grow(s->a, (void **)&c->rest, &(int){c->nrest}, c->nrest + 1, sizeof(Value));
      c->rest[c->nrest++] = sema_eval(s, a);
      continue;
    }
    if (pos >= npos_max) {
      sema_error(s, a->loc, "%s takes %s%d argument%s, got %d", b->name,
                 b->nreq < npos_max ? "at most " : "", npos_max, npos_max == 1 ? "" : "s",
                 call->nkids);
      return false;
    }
    if (c->has[pos]) {
      sema_error(s, a->loc, "argument '%s' of %s is given twice", b->params[pos], b->name);
      return false;
    }
    c->v[pos] = sema_eval(s, a);
    c->has[pos] = true;
    ok &= c->v[pos].k != V_ERR;
    pos++;
  }
  for (int i = 0; i < b->nreq && ok; i++)
    if (!c->has[i]) {
      sema_error(s, call->loc, "%s expects %s%d argument%s, got %d (missing '%s')", b->name,
                 b->nreq < npos_max ? "at least " : "", b->nreq, b->nreq == 1 ? "" : "s",
                 call->nkids, b->params[i]);
      return false;
    }
  return ok;
}

Value builtin_call(Sema *s, const Builtin *b, const Ast *call) {
  Call c = {.b = b, .ast = call, .loc = call->loc, .name = {.k = V_ERR}};
  if (!bind_args(s, &c, call)) return v_err();
  return b->fn(s, &c);
}

/* ---- initializers and parameters ------------------------------------------------------- */

static bool init_number(Sema *s, const Ast *e, double *out) {
  Value v = sema_eval(s, e);
  if (v.k == V_ERR) return false;
  if (v.k == V_FLOAT) *out = v.f;
  else if (v.k == V_INT && !v.dim) *out = (double)v.i;
  else {
    sema_error(s, v.loc, "initializer arguments must be numbers, got %s", v_kind_name(&v));
    return false;
  }
  return true;
}

bool sema_init_spec(Sema *s, const Ast *e, IrAttr *at) {
  if (e->kind == AST_ERROR) return false;
  if (e->kind != AST_NAME && e->kind != AST_CALL) {
    sema_error(s, e->loc, "expected an initializer (zeros, ones, normal(std), uniform(a, b), "
               "xavier, he, const(v))");
    return false;
  }
  int k = -1;
  for (int i = 0; i < 7; i++)
    if (!strcmp(e->name, init_names[i])) k = i;
  if (k < 0) {
    const char *sug = sema_suggest(e->name, init_names, 7);
    if (sug)
      sema_error(s, e->name_loc, "unknown initializer '%s'; did you mean '%s'?", e->name, sug);
    else
      sema_error(s, e->name_loc, "unknown initializer '%s'", e->name);
    return false;
  }
  static const InitKind kinds[7] = {INIT_ZEROS, INIT_ONES, INIT_NORMAL, INIT_UNIFORM,
                                    INIT_XAVIER, INIT_HE, INIT_CONST};
  static const int nargs_max[7] = {0, 0, 1, 2, 0, 0, 1};
  static const int nargs_min[7] = {0, 0, 0, 0, 0, 0, 1};
  int n = e->kind == AST_CALL ? e->nkids : 0;
  if (n > nargs_max[k] || n < nargs_min[k]) {
    sema_error(s, e->loc, "initializer %s takes %d to %d arguments, got %d", e->name,
               nargs_min[k], nargs_max[k], n);
    return false;
  }
  double a[2] = {k == 3 ? -1.0 : 1.0, 1.0};
  for (int i = 0; i < n; i++) {
    const Ast *x = e->kids[i];
    if (x->kind == AST_KWARG) {
      sema_error(s, x->name_loc, "initializer arguments are positional");
      return false;
    }
    if (!init_number(s, x, &a[i])) return false;
  }
  if (k == 3 && n == 1) a[1] = a[0], a[0] = -a[0];
  if (k == 3 && a[0] > a[1]) {
    sema_error(s, e->loc, "uniform(a, b) needs a <= b");
    return false;
  }
  if (k == 2 && a[0] < 0) {
    sema_error(s, e->loc, "normal(std) needs std >= 0");
    return false;
  }
  at->init = kinds[k];
  at->init_a = k == 2 || k == 3 || k == 6 ? a[0] : 0;
  at->init_b = k == 3 ? a[1] : 0;
  return true;
}

int sema_param(Sema *s, const char *scope, const char *local, IrType t, const IrAttr *init,
               bool trainable, SrcLoc loc) {
  const char *name = scope ? arena_printf(s->a, "%s.%s", scope, local) : arena_strdup(s->a, local);
  int prev = sema_param_lookup(s, name);
  if (prev >= 0) {
    sema_error(s, loc, "duplicate parameter name '%s'", name);
    sema_note(s, s->g->nodes[prev].loc, "'%s' was first created here", name);
    const char *last = scope ? strrchr(scope, '.') : NULL;
    last = last ? last + 1 : scope;
    if (s->pending_name && last && !strcmp(last, s->pending_name))
      sema_note(s, loc, "a layer is named after the variable it is assigned to; assign this one "
                "to a new variable (%s_2 = ...) or give it name = \"...\"", s->pending_name);
    else
      sema_note(s, loc, "give this layer its own name with name = \"...\"");
    return -1;
  }
  IrAttr at = *init;
  at.trainable = trainable;
  int n = sema_build(s, OP_PARAM, NULL, 0, &at, &t, loc, NULL, scope);
  if (n >= 0) {
    s->g->nodes[n].name = name;
    sema_param_record(s, name, n);
  }
  return n;
}
