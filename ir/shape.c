/* shape.c — the shape and dtype rule of every op in ops.def (ir_infer).
 *
 * Shapes are symbolic Dims, so a rule never needs dim values: equal extents are equal
 * interned expressions, conv/pool sizes become floor(...) atoms that fold when the input is
 * constant. A rule either computes *out or, for ops whose result cannot be derived from the
 * operands (leaves, reshape, broadcast, cast and some backward ops), validates the type the
 * caller put there. Every error names the full operand types in the IR spelling and the
 * operand indices at fault, so the frontend can put carets under the right spans.
 * docs/ops.md is the reference for what each rule reads and checks.
 */
#include "shape.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct Sx {
  const IrGraph *g;
  DimCtx *dc;
  OpKind op;
  const int *in;
  int nin;
  const IrAttr *a;
} Sx;

typedef int (*ShapeFn)(const Sx *s, IrType *out, ShapeErr *err);

/* ---- helpers: operand access, printing, errors ---------------------------------------- */

static const IrType *ty(const Sx *s, int i) { return &s->g->nodes[s->in[i]].type; }
static const char *opn(const Sx *s) { return ir_op_name(s->op); }

/* printed types and dims live in temporaries so several fit in one printf call */
typedef struct TStr { char s[160]; } TStr;
typedef struct DStr { char s[96]; } DStr;

static TStr tstr(const Sx *s, const IrType *t) {
  TStr r;
  ir_type_str(s->g, t, r.s, sizeof r.s);
  return r;
}

static DStr dstr(const Sx *s, const Dim *d) {
  DStr r;
  dim_print(s->dc, d, r.s, sizeof r.s, DIM_PLAIN);
  return r;
}

/* a matmul operand, with "^T" when the rule reads it transposed */
static TStr tstr_t(const Sx *s, const IrType *t, bool trans) {
  TStr r = tstr(s, t);
  if (trans && t->rank >= 2) {
    size_t k = strlen(r.s);
    if (k + 3 < sizeof r.s) memcpy(r.s + k, "^T", 3);
  }
  return r;
}

static int fail(ShapeErr *e, int arg_a, int arg_b, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(ShapeErr *e, int arg_a, int arg_b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  e->arg_a = arg_a;
  e->arg_b = arg_b;
  return -1;
}

bool ir_dtype_is_float(DType dt) { return dt == DT_F32 || dt == DT_F16 || dt == DT_BF16; }
/* i64/f64 exist only in files and are converted on load; no IR value has them */
static bool is_ir_dtype(DType dt) { return ir_dtype_is_float(dt) || dt == DT_I32; }

static bool const_val(const Dim *d, int64_t *v) { return dim_is_const(d, v); }
static bool is_one(const Dim *d) {
  int64_t v;
  return const_val(d, &v) && v == 1;
}

static bool same_shape(const IrType *a, const IrType *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (!dim_eq(a->dims[i], b->dims[i])) return false;
  return true;
}

static int need_float(const Sx *s, int i, const char *what, ShapeErr *e) {
  const IrType *t = ty(s, i);
  if (ir_dtype_is_float(t->dt)) return 0;
  return fail(e, i, -1, "%s: %s must be float (f32, f16 or bf16), got %s", opn(s), what,
              tstr(s, t).s);
}

static int need_i32(const Sx *s, int i, const char *what, ShapeErr *e) {
  const IrType *t = ty(s, i);
  if (t->dt == DT_I32) return 0;
  return fail(e, i, -1, "%s: %s must be i32, got %s", opn(s), what, tstr(s, t).s);
}

static int dtype_match(DType a, DType b, int ia, int ib, ShapeErr *e) {
  if (a == b) return 0;
  return fail(e, ia, ib, "dtype mismatch: %s and %s; insert a cast", dt_name(a), dt_name(b));
}

static int same_dtype(const Sx *s, int i, int j, ShapeErr *e) {
  return dtype_match(ty(s, i)->dt, ty(s, j)->dt, i, j, e);
}

/* operands i and j must have identical types (backward helpers, mse) */
static int same_type(const Sx *s, int i, int j, ShapeErr *e) {
  if (same_dtype(s, i, j, e)) return -1;
  if (same_shape(ty(s, i), ty(s, j))) return 0;
  return fail(e, i, j, "%s: operand %d is %s but operand %d is %s; they must have the same shape",
              opn(s), i, tstr(s, ty(s, i)).s, j, tstr(s, ty(s, j)).s);
}

/* a type the caller supplied: an IR dtype, a rank in range, every dim present and positive */
static int valid_given(const Sx *s, const IrType *t, ShapeErr *e) {
  if (!is_ir_dtype(t->dt))
    return fail(e, -1, -1, "%s: result dtype %s is not one of f32, f16, bf16, i32", opn(s),
                dt_name(t->dt));
  if (t->rank < 0 || t->rank > IR_MAX_RANK)
    return fail(e, -1, -1, "%s: result rank %d is outside 0..%d", opn(s), t->rank, IR_MAX_RANK);
  for (int i = 0; i < t->rank; i++) {
    int64_t v;
    if (!t->dims[i]) return fail(e, -1, -1, "%s: result dim %d is missing", opn(s), i);
    if (const_val(t->dims[i], &v) && v <= 0)
      return fail(e, -1, -1, "%s: dimension %d of %s is %lld; dimensions must be positive",
                  opn(s), i, tstr(s, t).s, (long long)v);
  }
  return 0;
}

static int need_float_given(const Sx *s, const IrType *t, const char *what, ShapeErr *e) {
  if (ir_dtype_is_float(t->dt)) return 0;
  return fail(e, -1, -1, "%s: %s must be float (f32, f16 or bf16), got %s", opn(s), what,
              tstr(s, t).s);
}

/* ---- broadcasting ---------------------------------------------------------------------- */

/* numpy broadcasting of two dim lists aligned at the right; on failure *bad is the result
 * axis that does not agree */
static bool bcast_dims(int ra, Dim *const *da, int rb, Dim *const *db, int *rout, Dim **out,
                       int *bad) {
  int r = ra > rb ? ra : rb;
  for (int k = 0; k < r; k++) {
    int i = k - (r - ra), j = k - (r - rb);
    Dim *x = i >= 0 ? da[i] : NULL, *y = j >= 0 ? db[j] : NULL;
    if (!x) out[k] = y;
    else if (!y || dim_eq(x, y)) out[k] = x;
    else if (is_one(x)) out[k] = y;
    else if (is_one(y)) out[k] = x;
    else {
      *bad = k;
      return false;
    }
  }
  *rout = r;
  return true;
}

/* the dims of a and b at result axis k of their broadcast (for messages) */
static void aligned(const IrType *a, const IrType *b, int k, const Dim **x, const Dim **y) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  *x = a->dims[k - (r - a->rank)];
  *y = b->dims[k - (r - b->rank)];
}

/* ---- leaves and pass-through ops -------------------------------------------------------- */

static int rule_input(const Sx *s, IrType *out, ShapeErr *e) { return valid_given(s, out, e); }

static int rule_param(const Sx *s, IrType *out, ShapeErr *e) {
  if (valid_given(s, out, e)) return -1;
  return need_float_given(s, out, "a parameter", e);
}

static int rule_unary(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 0, "the operand", e)) return -1;
  *out = *ty(s, 0);
  return 0;
}

static int rule_cast(const Sx *s, IrType *out, ShapeErr *e) {
  if (valid_given(s, out, e)) return -1;
  const IrType *x = ty(s, 0);
  if (same_shape(x, out)) return 0;
  return fail(e, 0, -1, "cast: shape of the result %s differs from the operand %s; cast changes "
              "only the dtype", tstr(s, out).s, tstr(s, x).s);
}

static int rule_binary(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 0, "operand 0", e) || need_float(s, 1, "operand 1", e) ||
      same_dtype(s, 0, 1, e))
    return -1;
  const IrType *a = ty(s, 0), *b = ty(s, 1);
  int bad;
  IrType r = {.dt = a->dt};
  if (bcast_dims(a->rank, a->dims, b->rank, b->dims, &r.rank, r.dims, &bad)) {
    *out = r;
    return 0;
  }
  const Dim *x, *y;
  aligned(a, b, bad, &x, &y);
  return fail(e, 0, 1, "operands of '%s' do not broadcast: %s and %s (dim %d: %s vs %s)", opn(s),
              tstr(s, a).s, tstr(s, b).s, bad, dstr(s, x).s, dstr(s, y).s);
}

/* where(cond, a, b): cond any IR dtype (nonzero selects a), a and b float of one dtype; the
 * result is the broadcast of all three */
static int rule_where(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 1, "operand 1", e) || need_float(s, 2, "operand 2", e) ||
      same_dtype(s, 1, 2, e))
    return -1;
  const IrType *c = ty(s, 0), *a = ty(s, 1), *b = ty(s, 2);
  IrType ab = {.dt = a->dt}, r = {.dt = a->dt};
  int bad;
  if (!bcast_dims(a->rank, a->dims, b->rank, b->dims, &ab.rank, ab.dims, &bad)) {
    const Dim *x, *y;
    aligned(a, b, bad, &x, &y);
    return fail(e, 1, 2, "operands of 'where' do not broadcast: %s and %s (dim %d: %s vs %s)",
                tstr(s, a).s, tstr(s, b).s, bad, dstr(s, x).s, dstr(s, y).s);
  }
  if (!bcast_dims(c->rank, c->dims, ab.rank, ab.dims, &r.rank, r.dims, &bad)) {
    const Dim *x, *y;
    aligned(c, &ab, bad, &x, &y);
    return fail(e, 0, -1, "the condition of 'where' %s does not broadcast with the values %s "
                "(dim %d: %s vs %s)", tstr(s, c).s, tstr(s, &ab).s, bad, dstr(s, x).s,
                dstr(s, y).s);
  }
  *out = r;
  return 0;
}

/* iota: the given type; attr.axis names the axis whose index gives the value */
static int rule_iota(const Sx *s, IrType *out, ShapeErr *e) {
  if (valid_given(s, out, e)) return -1;
  if (out->rank < 1 || s->a->axis < 0 || s->a->axis >= out->rank)
    return fail(e, -1, -1, "iota: axis %d is out of range for %s (rank %d)", s->a->axis,
                tstr(s, out).s, out->rank);
  return 0;
}

/* ---- matmul ----------------------------------------------------------------------------- */

static void swap_last(IrType *t) {
  Dim *d = t->dims[t->rank - 1];
  t->dims[t->rank - 1] = t->dims[t->rank - 2];
  t->dims[t->rank - 2] = d;
}

/* numpy matmul: a rank-1 left operand acts as [1,K], a rank-1 right operand as [K,1], and
 * the added axis is dropped from the result; batch dims broadcast */
static int rule_matmul(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 0, "operand 0", e) || need_float(s, 1, "operand 1", e) ||
      same_dtype(s, 0, 1, e))
    return -1;
  const IrType *a0 = ty(s, 0), *b0 = ty(s, 1);
  bool ta = s->a->trans_a, tb = s->a->trans_b;
  if (a0->rank < 1 || b0->rank < 1)
    return fail(e, a0->rank < 1 ? 0 : 1, -1, "matmul: operands must have rank >= 1: %s @ %s",
                tstr(s, a0).s, tstr(s, b0).s);
  IrType a = *a0, b = *b0;
  if (ta && a.rank >= 2) swap_last(&a);
  if (tb && b.rank >= 2) swap_last(&b);
  bool va = a.rank == 1, vb = b.rank == 1;
  Dim *one = dim_const(s->dc, 1);
  if (va) a = (IrType){.dt = a.dt, .rank = 2, .dims = {one, a.dims[0]}};
  if (vb) b = (IrType){.dt = b.dt, .rank = 2, .dims = {b.dims[0], one}};
  Dim *ka = a.dims[a.rank - 1], *kb = b.dims[b.rank - 2];
  if (!dim_eq(ka, kb))
    return fail(e, 0, 1, "matmul: inner dimensions differ: %s @ %s (%s vs %s)",
                tstr_t(s, a0, ta).s, tstr_t(s, b0, tb).s, dstr(s, ka).s, dstr(s, kb).s);
  IrType r = {.dt = a.dt};
  int bad;
  if (!bcast_dims(a.rank - 2, a.dims, b.rank - 2, b.dims, &r.rank, r.dims, &bad)) {
    IrType ab = a, bb = b;
    ab.rank -= 2;
    bb.rank -= 2;
    const Dim *x, *y;
    aligned(&ab, &bb, bad, &x, &y);
    return fail(e, 0, 1, "matmul: batch dimensions do not broadcast: %s @ %s (dim %d: %s vs %s)",
                tstr_t(s, a0, ta).s, tstr_t(s, b0, tb).s, bad, dstr(s, x).s, dstr(s, y).s);
  }
  if (!va) r.dims[r.rank++] = a.dims[a.rank - 2];
  if (!vb) r.dims[r.rank++] = b.dims[b.rank - 1];
  *out = r;
  return 0;
}

/* ---- data movement ------------------------------------------------------------------------ */

/* checks attr.axes[0..n) are in range for x and distinct; `what` names the list */
static int check_axes(const Sx *s, const IrType *x, int xi, int n, const char *what,
                      ShapeErr *e) {
  bool seen[IR_MAX_RANK] = {0};
  if (n < 0 || n > IR_MAX_RANK)
    return fail(e, -1, -1, "%s: %d %s given; at most %d", opn(s), n, what, IR_MAX_RANK);
  for (int i = 0; i < n; i++) {
    int ax = s->a->axes[i];
    if (ax < 0 || ax >= x->rank)
      return fail(e, xi, -1, "%s: axis %d is out of range for %s (rank %d)", opn(s), ax,
                  tstr(s, x).s, x->rank);
    if (seen[ax])
      return fail(e, xi, -1, "%s: axis %d appears twice in %s", opn(s), ax, what);
    seen[ax] = true;
  }
  return 0;
}

static int check_axis(const Sx *s, const IrType *x, int xi, ShapeErr *e) {
  int ax = s->a->axis;
  if (ax >= 0 && ax < x->rank) return 0;
  return fail(e, xi, -1, "%s: axis %d is out of range for %s (rank %d)", opn(s), ax,
              tstr(s, x).s, x->rank);
}

static int rule_transpose(const Sx *s, IrType *out, ShapeErr *e) {
  const IrType *x = ty(s, 0);
  if (s->a->naxes != x->rank)
    return fail(e, 0, -1, "transpose: the permutation has %d axes but %s has rank %d",
                s->a->naxes, tstr(s, x).s, x->rank);
  if (check_axes(s, x, 0, s->a->naxes, "the permutation", e)) return -1;
  IrType r = {.dt = x->dt, .rank = x->rank};
  for (int i = 0; i < x->rank; i++) r.dims[i] = x->dims[s->a->axes[i]];
  *out = r;
  return 0;
}

/* product of the dims of a that have no equal partner in b (partners are cancelled first, so
 * the comparison works on small polynomials) */
static Dim *uncancelled(DimCtx *c, const IrType *a, const IrType *b, bool a_first) {
  const IrType *p = a_first ? a : b, *q = a_first ? b : a;
  Dim *prod = dim_const(c, 1);
  bool qused[IR_MAX_RANK] = {0};
  for (int i = 0; i < p->rank; i++) {
    int j;
    for (j = 0; j < q->rank; j++)
      if (!qused[j] && dim_eq(p->dims[i], q->dims[j])) break;
    if (j < q->rank) qused[j] = true;
    else prod = dim_mul(c, prod, p->dims[i]);
  }
  return prod;
}

static Dim *numel(DimCtx *c, const IrType *t) {
  Dim *n = dim_const(c, 1);
  for (int i = 0; i < t->rank; i++) n = dim_mul(c, n, t->dims[i]);
  return n;
}

static int rule_reshape(const Sx *s, IrType *out, ShapeErr *e) {
  if (valid_given(s, out, e)) return -1;
  const IrType *x = ty(s, 0);
  if (out->dt != x->dt)
    return fail(e, 0, -1, "reshape: cannot change the dtype (%s to %s); insert a cast",
                dt_name(x->dt), dt_name(out->dt));
  Dim *pa = uncancelled(s->dc, x, out, true), *pb = uncancelled(s->dc, x, out, false);
  if (dim_eq(pa, pb)) return 0;
  Dim *q = dim_div_exact(s->dc, pa, pb);
  if (q && is_one(q)) return 0;
  return fail(e, 0, -1, "reshape: %s has %s elements but %s has %s", tstr(s, x).s,
              dstr(s, numel(s->dc, x)).s, tstr(s, out).s, dstr(s, numel(s->dc, out)).s);
}

static int rule_broadcast(const Sx *s, IrType *out, ShapeErr *e) {
  if (valid_given(s, out, e)) return -1;
  const IrType *x = ty(s, 0);
  if (out->dt != x->dt)
    return fail(e, 0, -1, "broadcast: cannot change the dtype (%s to %s); insert a cast",
                dt_name(x->dt), dt_name(out->dt));
  if (x->rank > out->rank)
    return fail(e, 0, -1, "broadcast: %s has more dims than the target %s", tstr(s, x).s,
                tstr(s, out).s);
  int off = out->rank - x->rank;
  for (int i = 0; i < x->rank; i++)
    if (!is_one(x->dims[i]) && !dim_eq(x->dims[i], out->dims[off + i]))
      return fail(e, 0, -1, "broadcast: %s cannot be broadcast to %s (dim %d: %s vs %s)",
                  tstr(s, x).s, tstr(s, out).s, off + i, dstr(s, x->dims[i]).s,
                  dstr(s, out->dims[off + i]).s);
  return 0;
}

static int rule_concat(const Sx *s, IrType *out, ShapeErr *e) {
  const IrType *x0 = ty(s, 0);
  if (check_axis(s, x0, 0, e)) return -1;
  int ax = s->a->axis;
  IrType r = *x0;
  for (int i = 1; i < s->nin; i++) {
    const IrType *x = ty(s, i);
    if (same_dtype(s, 0, i, e)) return -1;
    if (x->rank != x0->rank)
      return fail(e, 0, i, "concat: operands 0 and %d have different ranks: %s and %s", i,
                  tstr(s, x0).s, tstr(s, x).s);
    for (int d = 0; d < x->rank; d++)
      if (d != ax && !dim_eq(x->dims[d], x0->dims[d]))
        return fail(e, 0, i, "concat: operands 0 and %d differ outside axis %d: %s and %s "
                    "(dim %d: %s vs %s)", i, ax, tstr(s, x0).s, tstr(s, x).s, d,
                    dstr(s, x0->dims[d]).s, dstr(s, x->dims[d]).s);
    r.dims[ax] = dim_add(s->dc, r.dims[ax], x->dims[ax]);
  }
  *out = r;
  return 0;
}

/* the range [start, end) of attr.axis must satisfy 0 <= start < end <= extent wherever the
 * difference is a constant */
static int check_range(const Sx *s, const IrType *x, int xi, ShapeErr *e) {
  const IrAttr *a = s->a;
  if (!a->start || !a->end) return fail(e, -1, -1, "%s: start and end are required", opn(s));
  if (check_axis(s, x, xi, e)) return -1;
  Dim *ext = x->dims[a->axis];
  int64_t v;
  if (const_val(a->start, &v) && v < 0)
    return fail(e, xi, -1, "%s: start %lld is negative (axis %d of %s)", opn(s), (long long)v,
                a->axis, tstr(s, x).s);
  if (const_val(dim_sub(s->dc, a->end, a->start), &v) && v <= 0)
    return fail(e, xi, -1, "%s: empty range [%s, %s) on axis %d of %s", opn(s),
                dstr(s, a->start).s, dstr(s, a->end).s, a->axis, tstr(s, x).s);
  if (const_val(dim_sub(s->dc, ext, a->end), &v) && v < 0)
    return fail(e, xi, -1, "%s: range [%s, %s) exceeds axis %d of %s (extent %s)", opn(s),
                dstr(s, a->start).s, dstr(s, a->end).s, a->axis, tstr(s, x).s,
                dstr(s, ext).s);
  return 0;
}

static int rule_slice(const Sx *s, IrType *out, ShapeErr *e) {
  const IrType *x = ty(s, 0);
  if (check_range(s, x, 0, e)) return -1;
  IrType r = *x;
  r.dims[s->a->axis] = dim_sub(s->dc, s->a->end, s->a->start);
  *out = r;
  return 0;
}

/* dy is the slice's gradient; the result is the (caller-given) type of the sliced value */
static int rule_slice_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  if (valid_given(s, out, e)) return -1;
  const IrType *dy = ty(s, 0);
  if (dtype_match(dy->dt, out->dt, 0, -1, e)) return -1;
  if (check_range(s, out, -1, e)) return -1;
  IrType want = *out;
  want.dims[s->a->axis] = dim_sub(s->dc, s->a->end, s->a->start);
  if (same_shape(&want, dy)) return 0;
  return fail(e, 0, -1, "slice_bwd: slicing %s on axis %d gives %s, but the gradient is %s",
              tstr(s, out).s, s->a->axis, tstr(s, &want).s, tstr(s, dy).s);
}

/* ---- reductions --------------------------------------------------------------------------- */

static int reduce_type(const Sx *s, const IrType *x, int xi, IrType *out, ShapeErr *e) {
  int n = s->a->naxes;
  if (n < 1)
    return fail(e, -1, -1, "%s: no axes given (a reduction over all axes lists them all)",
                opn(s));
  if (check_axes(s, x, xi, n, "axes", e)) return -1;
  bool red[IR_MAX_RANK] = {0};
  for (int i = 0; i < n; i++) red[s->a->axes[i]] = true;
  IrType r = {.dt = x->dt};
  Dim *one = dim_const(s->dc, 1);
  for (int i = 0; i < x->rank; i++) {
    if (!red[i]) r.dims[r.rank++] = x->dims[i];
    else if (s->a->keepdim) r.dims[r.rank++] = one;
  }
  *out = r;
  return 0;
}

static int rule_reduce(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 0, "the operand", e)) return -1;
  if (s->op == OP_VAR && s->a->correction != 0 && s->a->correction != 1)
    return fail(e, -1, -1, "var: correction must be 0 or 1, got %d", s->a->correction);
  return reduce_type(s, ty(s, 0), 0, out, e);
}

static int rule_softmax(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 0, "the operand", e) || check_axis(s, ty(s, 0), 0, e)) return -1;
  *out = *ty(s, 0);
  return 0;
}

/* ---- convolution and pooling -------------------------------------------------------------- */

/* 0 in dilation/groups means the default 1 (the printer omits them at 1) */
static int dil(const Sx *s, int i) { return s->a->dilation[i] ? s->a->dilation[i] : 1; }
static int groups(const Sx *s) { return s->a->groups ? s->a->groups : 1; }

static const char *const hw_name[2] = {"height", "width"};

/* extent of a sliding window's output: floor((n + 2*pad - dil*(k-1) - 1)/stride) + 1 */
static int window_out(const Sx *s, Dim *n, Dim *k, int i, int dl, int xi, Dim **res,
                      ShapeErr *e) {
  const IrAttr *a = s->a;
  DimCtx *c = s->dc;
  Dim *num = dim_sub(c, dim_add(c, n, dim_const(c, 2 * (int64_t)a->pad[i] + dl - 1)),
                     dim_scale(c, k, dl));
  int64_t v, nv;
  if (a->ceil_mode) { /* PyTorch: round up, but the last window must start inside x or the left pad */
    if (!const_val(n, &nv) && a->pad[i])
      return fail(e, xi, -1, "%s: ceil_mode with padding needs a constant input %s, got %s",
                  opn(s), hw_name[i], dstr(s, n).s);
    num = dim_add(c, num, dim_const(c, a->stride[i] - 1));
  }
  Dim *r = dim_add(c, dim_floordiv(c, num, a->stride[i]), dim_const(c, 1));
  if (a->ceil_mode && const_val(r, &v) && const_val(n, &nv) &&
      (v - 1) * a->stride[i] >= nv + a->pad[i])
    r = dim_const(c, v - 1);
  if (const_val(r, &v) && v <= 0)
    return fail(e, xi, -1, "%s: output %s would be %lld: input %s %s, kernel %s (dilation %d), "
                "pad %d, stride %d", opn(s), hw_name[i], (long long)v, hw_name[i],
                dstr(s, n).s, dstr(s, k).s, dl, a->pad[i], a->stride[i]);
  *res = r;
  return 0;
}

static int check_stride_pad(const Sx *s, ShapeErr *e) {
  const IrAttr *a = s->a;
  for (int i = 0; i < 2; i++) {
    if (a->stride[i] < 1)
      return fail(e, -1, -1, "%s: stride must be >= 1, got [%d,%d]", opn(s), a->stride[0],
                  a->stride[1]);
    if (a->pad[i] < 0)
      return fail(e, -1, -1, "%s: pad must be >= 0, got [%d,%d]", opn(s), a->pad[0], a->pad[1]);
    if (a->dilation[i] < 0)
      return fail(e, -1, -1, "%s: dilation must be >= 1, got [%d,%d]", opn(s), a->dilation[0],
                  a->dilation[1]);
  }
  return 0;
}

/* does the positive integer g divide channel count d? */
static bool divides(const Sx *s, const Dim *d, int g) {
  int64_t v;
  if (const_val(d, &v)) return v % g == 0;
  return dim_div_exact(s->dc, d, dim_const(s->dc, g)) != NULL;
}

/* conv2d of x[N,C,H,W] with w[O,C/g,KH,KW]; xi/wi are operand indices (-1: the
 * caller-given result), used by the forward op and both backward ops */
static int conv_type(const Sx *s, const IrType *x, int xi, const IrType *w, int wi, IrType *out,
                     ShapeErr *e) {
  const IrAttr *a = s->a;
  if (x->rank != 4)
    return fail(e, xi, -1, "%s: input must be [N,C,H,W], got %s", opn(s), tstr(s, x).s);
  if (w->rank != 4)
    return fail(e, wi, -1, "%s: weight must be [O,C/groups,KH,KW], got %s", opn(s),
                tstr(s, w).s);
  if (!ir_dtype_is_float(x->dt))
    return fail(e, xi, -1, "%s: input must be float (f32, f16 or bf16), got %s", opn(s),
                tstr(s, x).s);
  if (dtype_match(x->dt, w->dt, xi, wi, e) || check_stride_pad(s, e)) return -1;
  int g = groups(s);
  if (g < 1) return fail(e, -1, -1, "%s: groups must be >= 1, got %d", opn(s), a->groups);
  for (int i = 0; i < 2; i++) {
    int64_t k;
    if (a->kernel[i] && (!const_val(w->dims[2 + i], &k) || k != a->kernel[i]))
      return fail(e, wi, -1, "%s: kernel [%d,%d] does not match the weight %s", opn(s),
                  a->kernel[0], a->kernel[1], tstr(s, w).s);
  }
  Dim *c = x->dims[1], *o = w->dims[0];
  if (!divides(s, c, g))
    return fail(e, xi, -1, "%s: groups=%d does not divide the %s input channels of %s", opn(s), g,
                dstr(s, c).s, tstr(s, x).s);
  if (!dim_eq(c, dim_scale(s->dc, w->dims[1], g)))
    return fail(e, xi, wi, "%s: input has %s channels but weight expects %s (groups=%d): %s and %s",
                opn(s), dstr(s, c).s, dstr(s, dim_scale(s->dc, w->dims[1], g)).s, g,
                tstr(s, x).s, tstr(s, w).s);
  if (!divides(s, o, g))
    return fail(e, wi, -1, "%s: groups=%d does not divide the %s output channels of %s", opn(s),
                g, dstr(s, o).s, tstr(s, w).s);
  IrType r = {.dt = x->dt, .rank = 4, .dims = {x->dims[0], o}};
  for (int i = 0; i < 2; i++)
    if (window_out(s, x->dims[2 + i], w->dims[2 + i], i, dil(s, i), xi, &r.dims[2 + i], e))
      return -1;
  *out = r;
  return 0;
}

static int rule_conv(const Sx *s, IrType *out, ShapeErr *e) {
  return conv_type(s, ty(s, 0), 0, ty(s, 1), 1, out, e);
}

/* the caller gives the result because several input sizes give the same output size */
static int conv_bwd_check(const Sx *s, const IrType *got, const IrType *dy, int dyi,
                          const IrType *x, const IrType *w, ShapeErr *e) {
  if (dtype_match(dy->dt, got->dt, dyi, -1, e)) return -1;
  if (same_shape(got, dy)) return 0;
  return fail(e, dyi, -1, "%s: %s convolved with %s gives %s, but the gradient is %s", opn(s),
              tstr(s, x).s, tstr(s, w).s, tstr(s, got).s, tstr(s, dy).s);
}

static int rule_conv_bwd_data(const Sx *s, IrType *out, ShapeErr *e) {
  IrType y;
  if (valid_given(s, out, e) || conv_type(s, out, -1, ty(s, 1), 1, &y, e)) return -1;
  return conv_bwd_check(s, &y, ty(s, 0), 0, out, ty(s, 1), e);
}

static int rule_conv_bwd_filter(const Sx *s, IrType *out, ShapeErr *e) {
  IrType y;
  if (valid_given(s, out, e) || conv_type(s, ty(s, 0), 0, out, -1, &y, e)) return -1;
  return conv_bwd_check(s, &y, ty(s, 1), 1, ty(s, 0), out, e);
}

/* pooling of x[N,C,H,W]; max pooling reads dilation, average pooling does not */
static int pool_type(const Sx *s, bool is_max, const IrType *x, int xi, IrType *out,
                     ShapeErr *e) {
  const IrAttr *a = s->a;
  if (x->rank != 4)
    return fail(e, xi, -1, "%s: input must be [N,C,H,W], got %s", opn(s), tstr(s, x).s);
  if (!ir_dtype_is_float(x->dt))
    return fail(e, xi, -1, "%s: input must be float (f32, f16 or bf16), got %s", opn(s),
                tstr(s, x).s);
  if (check_stride_pad(s, e)) return -1;
  for (int i = 0; i < 2; i++) {
    if (a->kernel[i] < 1)
      return fail(e, -1, -1, "%s: kernel must be >= 1, got [%d,%d]", opn(s), a->kernel[0],
                  a->kernel[1]);
    if (a->pad[i] > a->kernel[i] / 2)
      return fail(e, -1, -1, "%s: pad %d must be at most half the kernel size %d", opn(s),
                  a->pad[i], a->kernel[i]);
    if (is_max && a->exclude_pad)
      return fail(e, -1, -1, "%s: count_include_pad applies to average pooling only", opn(s));
    if (!is_max && dil(s, i) != 1)
      return fail(e, -1, -1, "%s: dilation is not supported, got [%d,%d]", opn(s),
                  a->dilation[0], a->dilation[1]);
  }
  IrType r = *x;
  for (int i = 0; i < 2; i++)
    if (window_out(s, x->dims[2 + i], dim_const(s->dc, a->kernel[i]), i, is_max ? dil(s, i) : 1,
                   xi, &r.dims[2 + i], e))
      return -1;
  *out = r;
  return 0;
}

static int rule_pool(const Sx *s, IrType *out, ShapeErr *e) {
  return pool_type(s, s->op == OP_MAXPOOL, ty(s, 0), 0, out, e);
}

static int pool_bwd_check(const Sx *s, const IrType *x, const IrType *y, ShapeErr *e) {
  const IrType *dy = ty(s, 0);
  if (dtype_match(dy->dt, x->dt, 0, s->op == OP_MAXPOOL_BWD ? 1 : -1, e)) return -1;
  if (same_shape(y, dy)) return 0;
  return fail(e, 0, s->op == OP_MAXPOOL_BWD ? 1 : -1,
              "%s: pooling %s gives %s, but the gradient is %s", opn(s), tstr(s, x).s,
              tstr(s, y).s, tstr(s, dy).s);
}

static int rule_maxpool_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  IrType y;
  if (pool_type(s, true, ty(s, 1), 1, &y, e) || pool_bwd_check(s, ty(s, 1), &y, e)) return -1;
  *out = *ty(s, 1);
  return 0;
}

static int rule_avgpool_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  IrType y;
  if (valid_given(s, out, e) || pool_type(s, false, out, -1, &y, e)) return -1;
  return pool_bwd_check(s, out, &y, e);
}

/* ---- normalization, dropout, embedding ---------------------------------------------------- */

static int bn_input(const Sx *s, int xi, ShapeErr *e) {
  const IrType *x = ty(s, xi);
  if (x->rank != 2 && x->rank != 4)
    return fail(e, xi, -1, "%s: input must be [N,C] or [N,C,H,W], got %s", opn(s),
                tstr(s, x).s);
  return need_float(s, xi, "the input", e);
}

/* operand pi must be [C] for the channels C of operand xi */
static int bn_param(const Sx *s, int pi, int xi, const char *what, ShapeErr *e) {
  const IrType *p = ty(s, pi), *x = ty(s, xi);
  if (same_dtype(s, pi, xi, e)) return -1;
  if (p->rank == 1 && dim_eq(p->dims[0], x->dims[1])) return 0;
  return fail(e, pi, xi, "%s: %s %s does not match the %s channels of %s", opn(s), what,
              tstr(s, p).s, dstr(s, x->dims[1]).s, tstr(s, x).s);
}

static int rule_batchnorm(const Sx *s, IrType *out, ShapeErr *e) {
  static const char *const names[] = {"x", "gamma", "beta", "running_mean", "running_var"};
  if (bn_input(s, 0, e)) return -1;
  for (int i = 1; i < 5; i++)
    if (bn_param(s, i, 0, names[i], e)) return -1;
  if (s->a->value < 0)
    return fail(e, -1, -1, "batchnorm: eps must be >= 0, got %g", s->a->value);
  *out = *ty(s, 0);
  return 0;
}

static int rule_batchnorm_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  if (bn_input(s, 1, e) || same_type(s, 0, 1, e) || bn_param(s, 2, 1, "gamma", e)) return -1;
  *out = *ty(s, 1);
  return 0;
}

static int rule_bn_dgamma(const Sx *s, IrType *out, ShapeErr *e) {
  if (bn_input(s, 1, e) || same_type(s, 0, 1, e)) return -1;
  const IrType *x = ty(s, 1);
  *out = (IrType){.dt = x->dt, .rank = 1, .dims = {x->dims[1]}};
  return 0;
}

/* the trailing attr.naxes dims of operand xi, which gamma and beta have */
static int ln_param_type(const Sx *s, int xi, IrType *out, ShapeErr *e) {
  const IrType *x = ty(s, xi);
  int n = s->a->naxes;
  if (need_float(s, xi, "the input", e)) return -1;
  if (n < 1 || n > x->rank)
    return fail(e, xi, -1, "%s: normalizes the last %d dims, but %s has rank %d", opn(s), n,
                tstr(s, x).s, x->rank);
  IrType r = {.dt = x->dt, .rank = n};
  for (int i = 0; i < n; i++) r.dims[i] = x->dims[x->rank - n + i];
  *out = r;
  return 0;
}

static int ln_param(const Sx *s, int pi, int xi, const IrType *want, const char *what,
                    ShapeErr *e) {
  if (same_dtype(s, pi, xi, e)) return -1;
  if (same_shape(ty(s, pi), want)) return 0;
  return fail(e, pi, xi, "%s: %s must be %s (the last %d dims of %s), got %s", opn(s), what,
              tstr(s, want).s, want->rank, tstr(s, ty(s, xi)).s, tstr(s, ty(s, pi)).s);
}

static int rule_layernorm(const Sx *s, IrType *out, ShapeErr *e) {
  IrType p;
  if (ln_param_type(s, 0, &p, e) || ln_param(s, 1, 0, &p, "gamma", e) ||
      ln_param(s, 2, 0, &p, "beta", e))
    return -1;
  if (s->a->value < 0)
    return fail(e, -1, -1, "layernorm: eps must be >= 0, got %g", s->a->value);
  *out = *ty(s, 0);
  return 0;
}

static int rule_layernorm_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  IrType p;
  if (ln_param_type(s, 1, &p, e) || same_type(s, 0, 1, e) || ln_param(s, 2, 1, &p, "gamma", e))
    return -1;
  *out = *ty(s, 1);
  return 0;
}

static int rule_ln_dgamma(const Sx *s, IrType *out, ShapeErr *e) {
  if (ln_param_type(s, 1, out, e) || same_type(s, 0, 1, e)) return -1;
  return 0;
}

static int rule_dropout(const Sx *s, IrType *out, ShapeErr *e) {
  double p = s->a->value;
  if (!(p >= 0 && p < 1)) return fail(e, -1, -1, "%s: p must be in [0, 1), got %g", opn(s), p);
  return rule_unary(s, out, e);
}

/* table[V,D] looked up at idx: idx.shape + [D] */
static int embed_type(const Sx *s, const IrType *tab, int ti, int ii, IrType *out, ShapeErr *e) {
  if (tab->rank != 2)
    return fail(e, ti, -1, "%s: table must be [V,D], got %s", opn(s), tstr(s, tab).s);
  if (!ir_dtype_is_float(tab->dt))
    return fail(e, ti, -1, "%s: table must be float (f32, f16 or bf16), got %s", opn(s),
                tstr(s, tab).s);
  if (need_i32(s, ii, "indices", e)) return -1;
  const IrType *idx = ty(s, ii);
  if (idx->rank + 1 > IR_MAX_RANK)
    return fail(e, ii, -1, "%s: indices %s leave no room for the embedding dim (rank <= %d)",
                opn(s), tstr(s, idx).s, IR_MAX_RANK);
  IrType r = *idx;
  r.dt = tab->dt;
  r.dims[r.rank++] = tab->dims[1];
  *out = r;
  return 0;
}

static int rule_embedding(const Sx *s, IrType *out, ShapeErr *e) {
  return embed_type(s, ty(s, 0), 0, 1, out, e);
}

static int rule_embedding_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  IrType y;
  if (valid_given(s, out, e) || embed_type(s, out, -1, 1, &y, e)) return -1;
  const IrType *dy = ty(s, 0);
  if (dtype_match(dy->dt, out->dt, 0, -1, e)) return -1;
  if (same_shape(dy, &y)) return 0;
  return fail(e, 0, 1, "embedding_bwd: looking up %s in %s gives %s, but the gradient is %s",
              tstr(s, ty(s, 1)).s, tstr(s, out).s, tstr(s, &y).s, tstr(s, dy).s);
}

/* ---- losses ----------------------------------------------------------------------------- */

static int ce_check(const Sx *s, int li, int yi, ShapeErr *e) {
  const IrType *lg = ty(s, li), *y = ty(s, yi);
  if (lg->rank != 2)
    return fail(e, li, -1, "%s: logits must be [N,C], got %s", opn(s), tstr(s, lg).s);
  if (need_float(s, li, "logits", e) || need_i32(s, yi, "labels", e)) return -1;
  if (!(s->a->value >= 0 && s->a->value < 1))
    return fail(e, -1, -1, "%s: label smoothing %g is outside [0, 1)", opn(s), s->a->value);
  if (y->rank != 1 || !dim_eq(y->dims[0], lg->dims[0]))
    return fail(e, yi, li, "%s: labels must be i32[%s] for logits %s, got %s", opn(s),
                dstr(s, lg->dims[0]).s, tstr(s, lg).s, tstr(s, y).s);
  return 0;
}

static int rule_cross_entropy(const Sx *s, IrType *out, ShapeErr *e) {
  if (ce_check(s, 0, 1, e)) return -1;
  *out = (IrType){.dt = DT_F32, .rank = 0};
  return 0;
}

static int rule_mse(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 0, "the prediction", e) || need_float(s, 1, "the target", e) ||
      same_type(s, 0, 1, e))
    return -1;
  *out = (IrType){.dt = DT_F32, .rank = 0};
  return 0;
}

static int rule_ce_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  const IrType *dl = ty(s, 0);
  if (dl->rank != 0 || !ir_dtype_is_float(dl->dt))
    return fail(e, 0, -1, "%s: the loss gradient must be a float scalar, got %s", opn(s),
                tstr(s, dl).s);
  if (ce_check(s, 1, 2, e)) return -1;
  *out = *ty(s, 1);
  return 0;
}

/* ---- backward helpers and effects ------------------------------------------------------- */

/* (dy, v) with v the forward input or output: both of one float type, which is the result */
static int rule_bwd_pair(const Sx *s, IrType *out, ShapeErr *e) {
  if (need_float(s, 0, "the gradient", e) || same_type(s, 0, 1, e)) return -1;
  if ((s->op == OP_SOFTMAX_BWD || s->op == OP_LOG_SOFTMAX_BWD) && check_axis(s, ty(s, 1), 1, e))
    return -1;
  *out = *ty(s, 1);
  return 0;
}

static int rule_max_bwd(const Sx *s, IrType *out, ShapeErr *e) {
  IrType want;
  if (need_float(s, 1, "the input", e) || reduce_type(s, ty(s, 1), 1, &want, e) ||
      same_dtype(s, 2, 1, e))
    return -1;
  if (!same_shape(ty(s, 2), &want))
    return fail(e, 2, 1, "max_bwd: operand 2 %s is not the max of %s over the given axes "
                "(expected %s)", tstr(s, ty(s, 2)).s, tstr(s, ty(s, 1)).s, tstr(s, &want).s);
  if (same_type(s, 0, 2, e)) return -1;
  *out = *ty(s, 1);
  return 0;
}

static int rule_dropout_bwd(const Sx *s, IrType *out, ShapeErr *e) { return rule_dropout(s, out, e); }

static int rule_assign(const Sx *s, IrType *out, ShapeErr *e) {
  OpKind k = s->g->nodes[s->in[0]].op;
  if (k != OP_PARAM)
    return fail(e, 0, -1, "assign: operand 0 must be a param, got '%s'", ir_op_name(k));
  const IrType *p = ty(s, 0), *v = ty(s, 1);
  if (dtype_match(v->dt, p->dt, 1, 0, e)) return -1;
  if (!same_shape(p, v))
    return fail(e, 1, 0, "assign: value %s does not match param %s", tstr(s, v).s,
                tstr(s, p).s);
  *out = *p;
  return 0;
}

/* ---- the table -------------------------------------------------------------------------- */

static const ShapeFn shape_rules[OP_COUNT] = {
    [OP_INPUT] = rule_input,
    [OP_PARAM] = rule_param,
    [OP_CONST] = rule_input,
    [OP_IOTA] = rule_iota,
    [OP_NEG] = rule_unary,
    [OP_EXP] = rule_unary,
    [OP_LOG] = rule_unary,
    [OP_SQRT] = rule_unary,
    [OP_TANH] = rule_unary,
    [OP_SIGMOID] = rule_unary,
    [OP_RELU] = rule_unary,
    [OP_GELU] = rule_unary,
    [OP_SILU] = rule_unary,
    [OP_POWC] = rule_unary,
    [OP_CAST] = rule_cast,
    [OP_ADD] = rule_binary,
    [OP_SUB] = rule_binary,
    [OP_MUL] = rule_binary,
    [OP_DIV] = rule_binary,
    [OP_LT] = rule_binary,
    [OP_LE] = rule_binary,
    [OP_GT] = rule_binary,
    [OP_GE] = rule_binary,
    [OP_EQ] = rule_binary,
    [OP_NE] = rule_binary,
    [OP_WHERE] = rule_where,
    [OP_MATMUL] = rule_matmul,
    [OP_TRANSPOSE] = rule_transpose,
    [OP_RESHAPE] = rule_reshape,
    [OP_BROADCAST] = rule_broadcast,
    [OP_CONCAT] = rule_concat,
    [OP_SLICE] = rule_slice,
    [OP_SLICE_BWD] = rule_slice_bwd,
    [OP_SUM] = rule_reduce,
    [OP_MEAN] = rule_reduce,
    [OP_MAX] = rule_reduce,
    [OP_VAR] = rule_reduce,
    [OP_SOFTMAX] = rule_softmax,
    [OP_LOG_SOFTMAX] = rule_softmax,
    [OP_CONV2D] = rule_conv,
    [OP_MAXPOOL] = rule_pool,
    [OP_AVGPOOL] = rule_pool,
    [OP_BATCHNORM] = rule_batchnorm,
    [OP_LAYERNORM] = rule_layernorm,
    [OP_DROPOUT] = rule_dropout,
    [OP_EMBEDDING] = rule_embedding,
    [OP_CROSS_ENTROPY] = rule_cross_entropy,
    [OP_MSE] = rule_mse,
    [OP_RELU_BWD] = rule_bwd_pair,
    [OP_GELU_BWD] = rule_bwd_pair,
    [OP_SILU_BWD] = rule_bwd_pair,
    [OP_SIGMOID_BWD] = rule_bwd_pair,
    [OP_TANH_BWD] = rule_bwd_pair,
    [OP_SOFTMAX_BWD] = rule_bwd_pair,
    [OP_LOG_SOFTMAX_BWD] = rule_bwd_pair,
    [OP_MAX_BWD] = rule_max_bwd,
    [OP_CONV2D_BWD_DATA] = rule_conv_bwd_data,
    [OP_CONV2D_BWD_FILTER] = rule_conv_bwd_filter,
    [OP_MAXPOOL_BWD] = rule_maxpool_bwd,
    [OP_AVGPOOL_BWD] = rule_avgpool_bwd,
    [OP_BATCHNORM_BWD] = rule_batchnorm_bwd,
    [OP_BN_DGAMMA] = rule_bn_dgamma,
    [OP_LAYERNORM_BWD] = rule_layernorm_bwd,
    [OP_LN_DGAMMA] = rule_ln_dgamma,
    [OP_DROPOUT_BWD] = rule_dropout_bwd,
    [OP_EMBEDDING_BWD] = rule_embedding_bwd,
    [OP_CE_BWD] = rule_ce_bwd,
    [OP_ASSIGN] = rule_assign,
};

bool ir_shape_rule_defined(OpKind op) {
  return (unsigned)op < OP_COUNT && shape_rules[op] != NULL;
}

int ir_infer(const IrGraph *g, OpKind op, const int *in, int nin, const IrAttr *attr,
             IrType *out, ShapeErr *err) {
  ShapeErr local;
  IrAttr none = {0};
  if (!err) err = &local;
  err->msg[0] = 0;
  err->arg_a = err->arg_b = -1;
  if (!ir_shape_rule_defined(op)) return fail(err, -1, -1, "no shape rule for op %d", (int)op);
  int ar = ir_ops[op].arity;
  if ((ar >= 0 && nin != ar) || (ar < 0 && nin < 1))
    return fail(err, -1, -1, "%s takes %s%d operand%s, got %d", ir_op_name(op),
                ar < 0 ? "at least " : "", ar < 0 ? 1 : ar, ar == 1 || ar < 0 ? "" : "s", nin);
  for (int i = 0; i < nin; i++)
    if (in[i] < 0 || in[i] >= g->nnodes)
      return fail(err, i, -1, "%s: operand %d refers to %%%d, which does not exist",
                  ir_op_name(op), i, in[i]);
  Sx s = {.g = g, .dc = g->dims, .op = op, .in = in, .nin = nin, .a = attr ? attr : &none};
  IrType r = *out;
  if (shape_rules[op](&s, &r, err)) return -1;
  *out = r;
  return 0;
}
