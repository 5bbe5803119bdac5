/* sema.c — semantic analysis: name resolution, statements, block instantiation, models and
 * train sections, lowered straight to IR through ir_build (which infers and checks shapes).
 *
 * Blocks are instantiated at each call site (their parameters are per call), so sema is an
 * evaluator over the AST: expressions evaluate to compile-time Values, tensors among them
 * being IR nodes. A failed expression yields V_ERR, which every consumer passes on silently,
 * so one mistake produces one diagnostic. Limits on nesting, loop trips and total work keep
 * hostile input from exhausting the stack or the clock.
 */
#include "sema.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fe_parse.h"

#define SEMA_MAX_WORK 200000L
#define SEMA_MAX_NODES 1000000
#define SEMA_MAX_TRIPS 100000
#define SEMA_MAX_SIZE ((int64_t)INT32_MAX)
#define SEMA_MAX_MAG 1e15

/* ---- a small string map in the arena ------------------------------------------------ */

typedef struct MapEnt {
  const char *key;
  int val;
  struct MapEnt *next;
} MapEnt;

struct StrMap {
  Arena *a;
  MapEnt *bucket[1024];
};

static uint64_t str_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static StrMap *map_new(Arena *a) {
  StrMap *m = arena_alloc(a, sizeof *m);
  m->a = a;
  return m;
}

static MapEnt *map_get(StrMap *m, const char *key) {
  for (MapEnt *e = m->bucket[str_hash(key) % 1024]; e; e = e->next)
    if (!strcmp(e->key, key)) return e;
  return NULL;
}

static void map_put(StrMap *m, const char *key, int val) {
  MapEnt *e = arena_alloc(m->a, sizeof *e);
  e->key = arena_strdup(m->a, key);
  e->val = val;
  uint64_t h = str_hash(key) % 1024;
  e->next = m->bucket[h];
  m->bucket[h] = e;
}

int sema_param_lookup(Sema *s, const char *name) {
  MapEnt *e = map_get(s->params, name);
  return e ? e->val : -1;
}

void sema_param_record(Sema *s, const char *name, int node) { map_put(s->params, name, node); }

/* ---- diagnostics -------------------------------------------------------------------- */

static void vreport(Sema *s, bool note, SrcLoc loc, const char *fmt, va_list ap) {
  char msg[768];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (note) {
    if (!s->last_skipped) diag_note(s->d, loc, "%s", msg);
    return;
  }
  char *key = arena_printf(s->a, "%s:%d:%d:%d:%d:%s", loc.file ? loc.file : "", loc.line,
                           loc.col, loc.end_line, loc.end_col, msg);
  s->last_skipped = map_get(s->seen, key) != NULL;
  if (s->last_skipped) return;
  map_put(s->seen, key, 1);
  diag_error(s->d, loc, "%s", msg);
}

void sema_error(Sema *s, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(s, false, loc, fmt, ap);
  va_end(ap);
}

void sema_note(Sema *s, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(s, true, loc, fmt, ap);
  va_end(ap);
}

/* optimal string alignment distance: a swap of neighbours counts as one edit */
static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 99;
  static const int W = 65;
  int d[65 * 65];
  for (size_t i = 0; i <= la; i++) d[i * W] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int best = d[(i - 1) * W + j - 1] + (a[i - 1] != b[j - 1]);
      if (d[(i - 1) * W + j] + 1 < best) best = d[(i - 1) * W + j] + 1;
      if (d[i * W + j - 1] + 1 < best) best = d[i * W + j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          d[(i - 2) * W + j - 2] + 1 < best)
        best = d[(i - 2) * W + j - 2] + 1;
      d[i * W + j] = best;
    }
  return d[la * W + lb];
}

const char *sema_suggest(const char *name, const char *const *cands, int n) {
  int len = (int)strlen(name);
  int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
  const char *best = NULL;
  int bestd = limit + 1;
  for (int i = 0; i < n; i++) /* a difference in case only is the likeliest mistake */
    if (cands[i] && strcmp(cands[i], name) && !strcasecmp(cands[i], name)) return cands[i];
  for (int i = 0; i < n; i++) {
    if (!cands[i] || !strcmp(cands[i], name)) continue;
    int d = edit_distance(name, cands[i]);
    if (d < bestd && d < len) {
      bestd = d;
      best = cands[i];
    }
  }
  return best;
}

/* ---- values ------------------------------------------------------------------------- */

Value v_err(void) { return (Value){.k = V_ERR}; }
Value v_int(int64_t i, SrcLoc loc) {
  return (Value){.k = V_INT, .i = i, .mag = fabs((double)i), .loc = loc};
}
Value v_tensor(int node, SrcLoc loc) { return (Value){.k = V_TENSOR, .node = node, .loc = loc}; }

const char *v_kind_name(const Value *v) {
  switch (v->k) {
  case V_TENSOR: return "a tensor";
  case V_INT: return "an int";
  case V_FLOAT: return "a float";
  case V_STR: return "a string";
  case V_BOOL: return "a bool";
  case V_DTYPE: return "a dtype";
  case V_LIST: return "a list";
  default: return "an invalid value";
  }
}

Dim *sema_dim(Sema *s, const Value *v) { return v->dim ? v->dim : dim_const(s->g->dims, v->i); }

/* an int result of dim arithmetic: constant again when the symbols cancel */
static Value v_dim(Dim *d, double mag, SrcLoc loc) {
  int64_t c;
  Value v = {.k = V_INT, .dim = d, .mag = mag, .loc = loc};
  if (dim_is_const(d, &c)) {
    v.dim = NULL;
    v.i = c;
  }
  return v;
}

const char *sema_type_str(Sema *s, int node) {
  char buf[512];
  ir_type_str(s->g, &s->g->nodes[node].type, buf, sizeof buf);
  return arena_strdup(s->a, buf);
}

bool sema_tick(Sema *s) {
  if (s->gave_up) return false;
  if (++s->work > SEMA_MAX_WORK || (s->g && s->g->nnodes > SEMA_MAX_NODES)) {
    s->gave_up = true;
    diag_error(s->d, (SrcLoc){0}, "the model is too large to compile (more than %ld evaluation "
               "steps or %d nodes); giving up", SEMA_MAX_WORK, SEMA_MAX_NODES);
    return false;
  }
  return true;
}

/* ---- environment --------------------------------------------------------------------- */

static Binding *lookup(Sema *s, const char *name) {
  Frame *f = s->fr;
  for (int i = f->n - 1; i >= 0; i--)
    if (!strcmp(f->b[i].name, name)) return &f->b[i];
  return NULL;
}

/* a dim of the model fixed at its value (`--symbolic` keeps others symbolic): blocks see it
 * like a symbolic dim, which lives in the graph's dim table */
static Binding *model_dim(Sema *s, const char *name) {
  Frame *f = s->model_fr;
  if (!f || f == s->fr) return NULL;
  for (int i = 0; i < f->n; i++)
    if (f->b[i].kind == B_DIM && !strcmp(f->b[i].name, name)) return &f->b[i];
  return NULL;
}

static Binding *bind(Sema *s, const char *name, Value v, SrcLoc loc, BindKind kind) {
  Binding *b = lookup(s, name);
  if (!b) {
    Frame *f = s->fr;
    arena_grow(s->a, (void **)&f->b, &f->cap, f->n + 1, sizeof *f->b);
    b = &f->b[f->n++];
    b->name = arena_strdup(s->a, name);
    b->loc = loc;
  }
  b->v = v;
  b->kind = kind;
  return b;
}

static void unknown_name(Sema *s, const char *name, SrcLoc loc, bool call) {
  int n = 0, cap = 0;
  const char **c = NULL;
  Frame *f = s->fr;
  int nb = builtin_count();
  arena_grow(s->a, (void **)&c, &cap, f->n + s->nblocks + nb + 64, sizeof *c);
  for (int i = 0; i < f->n; i++) c[n++] = f->b[i].name;
  for (int i = 0; s->g && i < dim_sym_count(s->g->dims) && i < 32; i++)
    c[n++] = dim_sym_name(s->g->dims, i);
  for (int i = 0; i < s->nblocks; i++) c[n++] = s->blocks[i]->name;
  if (call)
    for (int i = 0; i < nb; i++) c[n++] = builtin_name(i);
  else
    for (int i = 0; i < 6; i++) c[n++] = (const char *[]){"f32", "f16", "bf16", "i32", "true", "false"}[i];
  const char *sug = sema_suggest(name, c, n);
  const char *what = call ? "function" : "name";
  if (sug)
    sema_error(s, loc, "unknown %s '%s'; did you mean '%s'?", what, name, sug);
  else
    sema_error(s, loc, "unknown %s '%s'", what, name);
}

static bool dtype_by_name(const char *name, DType *dt) {
  static const struct { const char *n; DType dt; } t[] = {
      {"f32", DT_F32}, {"f16", DT_F16}, {"bf16", DT_BF16}, {"i32", DT_I32}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (!strcmp(name, t[i].n)) {
      *dt = t[i].dt;
      return true;
    }
  return false;
}

/* `wte.weight`: a parameter created earlier, by its path relative to the current block
 * instance, else by its full name (weight tying) */
static Value eval_param_path(Sema *s, const Ast *e) {
  int node = -1;
  if (s->fr->scope) node = sema_param_lookup(s, arena_printf(s->a, "%s.%s", s->fr->scope, e->name));
  if (node < 0) node = sema_param_lookup(s, e->name);
  if (node >= 0) return v_tensor(node, e->loc);
  int n = 0;
  const char **c = arena_alloc(s->a, (size_t)(s->g->nnodes + 1) * sizeof *c);
  for (int i = 0; i < s->g->nnodes; i++)
    if (s->g->nodes[i].op == OP_PARAM && s->g->nodes[i].name) c[n++] = s->g->nodes[i].name;
  const char *sug = sema_suggest(e->name, c, n);
  if (sug)
    sema_error(s, e->loc, "no parameter named '%s' so far; did you mean '%s'?", e->name, sug);
  else
    sema_error(s, e->loc, "no parameter named '%s' so far (a dotted name refers to a parameter "
               "created above it)", e->name);
  return v_err();
}

static Value eval_name(Sema *s, const Ast *e) {
  if (strchr(e->name, '.') && s->g) return eval_param_path(s, e);
  Binding *b = lookup(s, e->name);
  if (!b) b = model_dim(s, e->name);
  if (b) {
    Value v = b->v;
    v.loc = e->loc;
    return v;
  }
  int sym = s->g ? dim_sym_find(s->g->dims, e->name) : -1;
  if (sym >= 0) return v_dim(dim_sym(s->g->dims, sym), 1, e->loc);
  Value v = {.loc = e->loc};
  if (dtype_by_name(e->name, &v.dt)) {
    v.k = V_DTYPE;
    return v;
  }
  if (!strcmp(e->name, "true") || !strcmp(e->name, "false")) {
    v.k = V_BOOL;
    v.b = e->name[0] == 't';
    return v;
  }
  if (builtin_is_initializer(e->name))
    sema_error(s, e->loc, "initializer '%s' can only be used as a param's '= ...' or an "
               "'init =' keyword", e->name);
  else
    unknown_name(s, e->name, e->loc, false);
  return v_err();
}

/* ---- arithmetic ----------------------------------------------------------------------- */

static const char *op_word(int op) {
  switch (op) {
  case '+': return "add";
  case '-': return "subtract";
  case '*': return "multiply";
  case '/': return "divide";
  case '^': return "raise";
  default: return "matrix-multiply";
  }
}

static Value int_arith(Sema *s, int op, Value a, Value b, SrcLoc loc) {
  if (!a.dim && !b.dim) {
    int64_t r = 0;
    bool ovf = false;
    switch (op) {
    case '+': ovf = __builtin_add_overflow(a.i, b.i, &r); break;
    case '-': ovf = __builtin_sub_overflow(a.i, b.i, &r); break;
    case '*': ovf = __builtin_mul_overflow(a.i, b.i, &r); break;
    case '/':
      if (b.i == 0) {
        sema_error(s, loc, "division by zero");
        return v_err();
      }
      if (a.i % b.i == 0 && !(a.i == INT64_MIN && b.i == -1)) return v_int(a.i / b.i, loc);
      return (Value){.k = V_FLOAT, .f = (double)a.i / (double)b.i, .loc = loc};
    }
    if (ovf || r > ((int64_t)1 << 62) || r < -((int64_t)1 << 62)) {
      sema_error(s, loc, "integer overflow");
      return v_err();
    }
    return v_int(r, loc);
  }
  if (!s->g) return v_err();
  double mag = op == '*' ? a.mag * b.mag : op == '/' ? a.mag : a.mag + b.mag;
  if (mag > SEMA_MAX_MAG) {
    sema_error(s, loc, "dimension expression is too large");
    return v_err();
  }
  DimCtx *c = s->g->dims;
  Dim *da = sema_dim(s, &a), *db = sema_dim(s, &b), *r = NULL;
  switch (op) {
  case '+': r = dim_add(c, da, db); break;
  case '-': r = dim_sub(c, da, db); break;
  case '*': r = dim_mul(c, da, db); break;
  case '/':
    if (!b.dim && b.i == 0) {
      sema_error(s, loc, "division by zero");
      return v_err();
    }
    r = dim_div_exact(c, da, db);
    if (!r) {
      sema_error(s, loc, "%s is not divisible by %s", dim_str(c, da), dim_str(c, db));
      return v_err();
    }
    break;
  }
  return v_dim(r, mag, loc);
}

/* a number; a dim used as a number takes its current value (after -D overrides) */
static bool as_number_in(const DimCtx *c, const Value *v, double *out) {
  if (v->k == V_FLOAT) *out = v->f;
  else if (v->k == V_INT && !v->dim) *out = (double)v->i;
  else if (v->k == V_INT && c) *out = dim_evalf(c, v->dim, NULL);
  else return false;
  return true;
}
#define as_number(v, out) as_number_in(s->g ? s->g->dims : NULL, v, out)

static Value num_arith(Sema *s, int op, Value a, Value b, SrcLoc loc) {
  if (op == '@') {
    sema_error(s, loc, "'@' needs two tensors");
    return v_err();
  }
  if (a.k == V_INT && b.k == V_INT && op != '^') return int_arith(s, op, a, b, loc);
  double x, y;
  if (!as_number(&a, &x) || !as_number(&b, &y)) return v_err();
  double r = op == '+' ? x + y : op == '-' ? x - y : op == '*' ? x * y : op == '/' ? x / y
                                                                                   : pow(x, y);
  if (op == '^' && a.k == V_INT && b.k == V_INT && y >= 0 && fabs(r) < 4e18 && r == floor(r))
    return v_int((int64_t)r, loc);
  if (!isfinite(r)) {
    sema_error(s, loc, "arithmetic on constants gives %s", isnan(r) ? "NaN" : "infinity");
    return v_err();
  }
  return (Value){.k = V_FLOAT, .f = r, .loc = loc};
}

/* a number on one side of a tensor op becomes a rank-0 CONST of the tensor's dtype */
static int scalar_node(Sema *s, double v, DType dt, SrcLoc loc) {
  IrAttr at = {.value = v};
  IrType t = {.dt = dt, .rank = 0};
  int n = sema_build(s, OP_CONST, NULL, 0, &at, &t, loc, NULL, NULL);
  return n;
}

static Value tensor_arith(Sema *s, int op, Value a, Value b, SrcLoc loc) {
  static const struct { int op; OpKind k; } ops[] = {
      {'+', OP_ADD}, {'-', OP_SUB}, {'*', OP_MUL}, {'/', OP_DIV}, {'@', OP_MATMUL}};
  if (op == '^') {
    double e;
    if (a.k != V_TENSOR || !as_number(&b, &e)) {
      sema_error(s, b.loc, "the exponent of '^' must be a constant number, got %s",
                 v_kind_name(&b));
      return v_err();
    }
    IrAttr at = {.value = e};
    SrcLoc il[1] = {a.loc};
    int n = sema_build(s, OP_POWC, &a.node, 1, &at, NULL, loc, il, NULL);
    return n < 0 ? v_err() : v_tensor(n, loc);
  }
  Value *sides[2] = {&a, &b};
  int in[2];
  for (int i = 0; i < 2; i++) {
    Value *v = sides[i], *other = sides[1 - i];
    double x;
    if (v->k == V_TENSOR) {
      in[i] = v->node;
    } else if (op != '@' && as_number(v, &x)) {
      DType dt = s->g->nodes[other->node].type.dt;
      if (dt == DT_I32 && x != floor(x)) {
        sema_error(s, v->loc, "cannot combine an i32 tensor with the non-integer constant %g", x);
        return v_err();
      }
      in[i] = scalar_node(s, x, dt, v->loc);
      if (in[i] < 0) return v_err();
    } else {
      sema_error(s, v->loc, "cannot %s a tensor and %s", op_word(op), v_kind_name(v));
      return v_err();
    }
  }
  OpKind k = OP_ADD;
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (ops[i].op == op) k = ops[i].k;
  SrcLoc il[2] = {a.loc, b.loc};
  int n = sema_build(s, k, in, 2, NULL, NULL, loc, il, NULL);
  return n < 0 ? v_err() : v_tensor(n, loc);
}

static Value eval_binary(Sema *s, const Ast *e) {
  Value a = sema_eval(s, e->a);
  Value b = sema_eval(s, e->b);
  if (a.k == V_ERR || b.k == V_ERR) return v_err();
  if (a.k == V_TENSOR || b.k == V_TENSOR) return tensor_arith(s, e->op, a, b, e->loc);
  if ((a.k == V_INT || a.k == V_FLOAT) && (b.k == V_INT || b.k == V_FLOAT))
    return num_arith(s, e->op, a, b, e->loc);
  const Value *bad = (a.k == V_INT || a.k == V_FLOAT) ? &b : &a;
  sema_error(s, bad->loc, "cannot %s %s", op_word(e->op), v_kind_name(bad));
  return v_err();
}

static Value eval_neg(Sema *s, const Ast *e) {
  Value a = sema_eval(s, e->a);
  switch (a.k) {
  case V_ERR: return a;
  case V_FLOAT: a.f = -a.f; a.loc = e->loc; return a;
  case V_INT: return int_arith(s, '-', v_int(0, e->loc), a, e->loc);
  case V_TENSOR: {
    SrcLoc il[1] = {a.loc};
    int n = sema_build(s, OP_NEG, &a.node, 1, NULL, NULL, e->loc, il, NULL);
    return n < 0 ? v_err() : v_tensor(n, e->loc);
  }
  default:
    sema_error(s, a.loc, "cannot negate %s", v_kind_name(&a));
    return v_err();
  }
}

static Value eval_list(Sema *s, const Ast *e) {
  Value v = {.k = V_LIST, .loc = e->loc, .nitems = e->nkids};
  v.items = arena_alloc(s->a, (size_t)(e->nkids ? e->nkids : 1) * sizeof(Value));
  bool bad = false;
  for (int i = 0; i < e->nkids; i++) {
    v.items[i] = sema_eval(s, e->kids[i]);
    bad |= v.items[i].k == V_ERR;
  }
  return bad ? v_err() : v;
}

const Ast *sema_find_block(Sema *s, const char *name) {
  for (int i = 0; i < s->nblocks; i++)
    if (!strcmp(s->blocks[i]->name, name)) return s->blocks[i];
  return NULL;
}

static Value eval_call(Sema *s, const Ast *e) {
  const Ast *blk = sema_find_block(s, e->name);
  if (blk) return sema_call_block(s, blk, e);
  const Builtin *b = builtin_find(e->name);
  if (b) return builtin_call(s, b, e);
  if (builtin_is_initializer(e->name)) {
    sema_error(s, e->name_loc, "initializer '%s' can only be used as a param's '= ...' or an "
               "'init =' keyword", e->name);
    return v_err();
  }
  unknown_name(s, e->name, e->name_loc, true);
  return v_err();
}

Value sema_eval(Sema *s, const Ast *e) {
  if (!sema_tick(s)) return v_err();
  switch (e->kind) {
  case AST_INT: return v_int(e->ival, e->loc);
  case AST_FLOAT: return (Value){.k = V_FLOAT, .f = e->fval, .loc = e->loc};
  case AST_STR: return (Value){.k = V_STR, .s = arena_strdup(s->a, e->name), .loc = e->loc};
  case AST_NAME: return eval_name(s, e);
  case AST_LIST: return eval_list(s, e);
  case AST_NEG: return eval_neg(s, e);
  case AST_BINARY: return eval_binary(s, e);
  case AST_CALL: return eval_call(s, e);
  default: return v_err(); /* AST_ERROR: already reported by the parser */
  }
}

/* ---- building nodes ------------------------------------------------------------------- */

int sema_build(Sema *s, OpKind op, const int *in, int nin, const IrAttr *attr,
               const IrType *hint, SrcLoc loc, const SrcLoc *inlocs, const char *scope) {
  ShapeErr err;
  int n = ir_build(s->g, op, in, nin, attr, hint, loc, &err);
  if (n < 0) {
    sema_error(s, loc, "%s", err.msg);
    int arg = err.arg_b >= 0 ? err.arg_b : err.arg_a;
    if (inlocs && arg >= 0 && arg < nin && in[arg] >= 0 && inlocs[arg].file)
      sema_note(s, inlocs[arg], "this operand is %s", sema_type_str(s, in[arg]));
    sema_note_wide_dense(s, in, nin);
    return -1;
  }
  s->g->nodes[n].scope = scope ? scope : s->fr->scope;
  return n;
}

void sema_wide_dense(Sema *s, int mm) {
  arena_grow(s->a, (void **)&s->wide_dense, &s->cap_wide_dense, s->nwide_dense + 1, sizeof(int));
  s->wide_dense[s->nwide_dense++] = mm;
}

static bool is_wide_dense(const Sema *s, int v) {
  for (int k = 0; k < s->nwide_dense; k++)
    if (s->wide_dense[k] == v) return true;
  return false;
}

/* The earliest dense layer on a rank > 2 input whose result reaches v through ops that keep
 * v's rank (elementwise ops, dropout, norms, more such dense layers), or -1. A dense whose
 * result is reshaped or reduced on the way (attention's projections) is not the cause. */
static int wide_dense_origin(const Sema *s, int v) {
  const IrGraph *g = s->g;
  int found = -1, rank = g->nodes[v].type.rank;
  for (int steps = 0; v >= 0 && steps < g->nnodes && g->nodes[v].type.rank == rank; steps++) {
    const IrNode *n = &g->nodes[v];
    int next = -1;
    if (is_wide_dense(s, v)) {
      found = v;
      next = n->in[0];
    } else if ((ir_ops[n->op].flags & OPF_ELEMWISE) || n->op == OP_DROPOUT ||
               n->op == OP_LAYERNORM || n->op == OP_BATCHNORM) {
      for (int j = 0; j < n->nin && next < 0; j++)
        if (g->nodes[n->in[j]].type.rank == rank) next = n->in[j];
    }
    v = next;
  }
  return found;
}

void sema_note_wide_dense(Sema *s, const int *in, int nin) {
  for (int k = 0; k < nin; k++) {
    if (in[k] < 0 || in[k] >= s->g->nnodes || s->g->nodes[in[k]].type.rank <= 2) continue;
    int d = wide_dense_origin(s, in[k]);
    if (d < 0) continue;
    sema_note(s, s->g->nodes[d].loc, "dense applies to the last axis of a rank-%d tensor; did "
              "you mean flatten(x) first?", s->g->nodes[s->g->nodes[d].in[0]].type.rank);
    return;
  }
}

/* ---- names of layers and values ------------------------------------------------------- */

static bool valid_path(const char *p) {
  bool start = true;
  for (; *p; p++) {
    if (*p == '.') {
      if (start) return false;
      start = true;
    } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
               *p == '_') {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

/* "layer{s}.{i}" with {NAME} replaced by the int or string value of NAME */
static const char *interpolate(Sema *s, const Value *v) {
  const char *p = v->s;
  size_t cap = strlen(p) + 64, k = 0;
  char *out = arena_alloc(s->a, cap);
  while (*p) {
    if (*p != '{') {
      if (k + 1 >= cap) break;
      out[k++] = *p++;
      continue;
    }
    const char *close = strchr(p, '}');
    if (!close || close - p > 64) {
      sema_error(s, v->loc, "unterminated '{' in name \"%s\"", v->s);
      return NULL;
    }
    char key[66];
    snprintf(key, sizeof key, "%.*s", (int)(close - p - 1), p + 1);
    Binding *b = lookup(s, key);
    char piece[64];
    if (b && b->v.k == V_INT && !b->v.dim) {
      snprintf(piece, sizeof piece, "%lld", (long long)b->v.i);
    } else if (b && b->v.k == V_STR) {
      snprintf(piece, sizeof piece, "%s", b->v.s);
    } else {
      sema_error(s, v->loc, "'{%s}' in a name must refer to an int or string variable", key);
      return NULL;
    }
    size_t pl = strlen(piece);
    if (k + pl + strlen(close + 1) + 1 >= cap) {
      cap = 2 * (k + pl + strlen(close + 1) + 1);
      char *o2 = arena_alloc(s->a, cap);
      memcpy(o2, out, k);
      out = o2;
    }
    memcpy(out + k, piece, pl);
    k += pl;
    p = close + 1;
  }
  out[k] = 0;
  if (!valid_path(out)) {
    sema_error(s, v->loc, "invalid name \"%s\": use letters, digits and '_', separated by '.'",
               out);
    return NULL;
  }
  return out;
}

static const char *join_scope(Sema *s, const char *local) {
  return s->fr->scope ? arena_printf(s->a, "%s.%s", s->fr->scope, local)
                      : arena_strdup(s->a, local); /* local may live in the AST */
}

/* `v = f(...)` inside for-loops names the instance v.i (v.i.j when nested) */
static const char *loop_name(Sema *s, const char *var) {
  const char *r = var;
  for (int i = 0; i < s->fr->nloops; i++) r = arena_printf(s->a, "%s.%d", r, s->fr->loops[i]);
  return r;
}

const char *sema_layer_scope(Sema *s, const Ast *call, const char *kind, const Value *name) {
  const char *local = NULL;
  if (name && name->k == V_STR) {
    local = interpolate(s, name);
    if (!local) return NULL;
    /* a fixed name inside a loop would repeat: it gets the indices like an assignment */
    if (!strchr(name->s, '{')) local = loop_name(s, local);
  } else if (call == s->pending_call && s->pending_name) {
    local = loop_name(s, s->pending_name);
  } else {
    Frame *f = s->fr;
    int i = 0;
    for (; i < f->ncounters; i++)
      if (!strcmp(f->counters[i].key, kind)) break;
    if (i == f->ncounters) {
      arena_grow(s->a, (void **)&f->counters, &f->capcounters, f->ncounters + 1,
                 sizeof *f->counters);
      f->counters[f->ncounters++] = (Counter){kind, 0};
    }
    local = arena_printf(s->a, "%s_%d", kind, f->counters[i].n++);
  }
  if (call == s->pending_call) s->pending_call = NULL; /* used once */
  return join_scope(s, local);
}

/* ---- statements ---------------------------------------------------------------------- */

static bool positive_size(Sema *s, Value v, const char *what, int64_t *out) {
  if (v.k == V_ERR) return false;
  if (v.k != V_INT || v.dim) {
    sema_error(s, v.loc, "%s must be a constant integer, got %s", what,
               v.k == V_INT ? "a symbolic dim" : v_kind_name(&v));
    return false;
  }
  if (v.i <= 0 || v.i > SEMA_MAX_SIZE) {
    sema_error(s, v.loc, "%s must be between 1 and %lld, got %lld", what,
               (long long)SEMA_MAX_SIZE, (long long)v.i);
    return false;
  }
  *out = v.i;
  return true;
}

static bool eval_type(Sema *s, const Ast *t, IrType *out) {
  memset(out, 0, sizeof *out);
  if (!dtype_by_name(t->name, &out->dt)) {
    static const char *const dts[] = {"f32", "f16", "bf16", "i32"};
    const char *sug = sema_suggest(t->name, dts, 4);
    if (sug)
      sema_error(s, t->name_loc, "unknown dtype '%s'; did you mean '%s'?", t->name, sug);
    else
      sema_error(s, t->name_loc, "unknown dtype '%s'; expected f32, f16, bf16 or i32", t->name);
    return false;
  }
  if (t->nkids > IR_MAX_RANK) {
    sema_error(s, t->loc, "a tensor has at most %d dimensions, this type has %d", IR_MAX_RANK,
               t->nkids);
    return false;
  }
  out->rank = t->nkids;
  double numel = 1;
  for (int i = 0; i < t->nkids; i++) {
    Value v = sema_eval(s, t->kids[i]);
    if (v.k == V_ERR) return false;
    if (v.k != V_INT) {
      sema_error(s, v.loc, "a dimension must be an int or a dim, got %s", v_kind_name(&v));
      return false;
    }
    if (!v.dim && (v.i <= 0 || v.i > SEMA_MAX_SIZE)) {
      sema_error(s, v.loc, "dimension must be between 1 and %lld, got %lld",
                 (long long)SEMA_MAX_SIZE, (long long)v.i);
      return false;
    }
    numel *= v.mag > 1 ? v.mag : 1;
    out->dims[i] = sema_dim(s, &v);
  }
  if (numel > SEMA_MAX_MAG) {
    sema_error(s, t->loc, "tensor type is too large");
    return false;
  }
  return true;
}

static bool only_in(Sema *s, const Ast *st, bool model, const char *what) {
  bool in_model = s->fr->block == NULL;
  if (in_model == model) return true;
  sema_error(s, st->loc, "%s is allowed only in a %s", what, model ? "model" : "block");
  return false;
}

static bool fresh_name(Sema *s, const char *name, SrcLoc loc) {
  Binding *b = lookup(s, name);
  if (!b) b = model_dim(s, name);
  int sym = s->g ? dim_sym_find(s->g->dims, name) : -1;
  if (!b && sym < 0) return true;
  sema_error(s, loc, "redefinition of '%s'", name);
  if (b && b->loc.file) sema_note(s, b->loc, "previous definition is here");
  return false;
}

static int64_t define_override(Sema *s, const char *name, int64_t dflt) {
  if (!s->opt) return dflt;
  for (int i = 0; i < s->opt->ndefines; i++) {
    const char *d = s->opt->defines[i];
    const char *eq = strchr(d, '=');
    if (!eq || (size_t)(eq - d) != strlen(name) || strncmp(d, name, (size_t)(eq - d))) continue;
    s->define_used[i] = true;
    char *end;
    long long v = strtoll(eq + 1, &end, 10);
    if (eq[1] && !*end && v > 0 && v <= SEMA_MAX_SIZE) dflt = v;
  }
  return dflt;
}

/* does the comma-separated list contain name? */
static bool in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n)) return true;
    if (!e) break;
    p = e + 1;
  }
  return false;
}

static void exec_dim(Sema *s, const Ast *st) {
  for (int i = 0; i < st->nkids; i++) {
    const Ast *dd = st->kids[i];
    if (!fresh_name(s, dd->name, dd->name_loc)) continue;
    Value v = sema_eval(s, dd->a);
    int64_t n;
    if (!positive_size(s, v, "a dim's value", &n)) {
      bind(s, dd->name, v_err(), dd->name_loc, B_DIM);
      continue;
    }
    n = define_override(s, dd->name, n);
    if (s->opt && s->opt->symbolic && !in_list(s->opt->symbolic, dd->name)) {
      bind(s, dd->name, v_dim(dim_const(s->g->dims, n), 1, dd->name_loc), dd->name_loc, B_DIM);
      continue;
    }
    int sym = dim_sym_declare(s->g->dims, dd->name, n);
    if (sym < 0) {
      sema_error(s, dd->name_loc, "too many dims in one model (at most %d)", DIM_MAX_SYMS);
      continue;
    }
    Value dv = v_dim(dim_sym(s->g->dims, sym), 1, dd->name_loc);
    bind(s, dd->name, dv, dd->name_loc, B_DIM);
  }
}

static const char *value_name(Sema *s, const char *var) { return join_scope(s, var); }

static void exec_input(Sema *s, const Ast *st) {
  IrType t;
  if (!fresh_name(s, st->name, st->name_loc)) return;
  if (!eval_type(s, st->a, &t)) {
    bind(s, st->name, v_err(), st->name_loc, B_INPUT); /* later uses stay silent */
    return;
  }
  int n = ir_add(s->g, OP_INPUT, NULL, 0, NULL, t, st->loc);
  s->g->nodes[n].name = arena_strdup(s->a, st->name);
  bind(s, st->name, v_tensor(n, st->name_loc), st->name_loc, B_INPUT);
}

bool sema_init_spec(Sema *s, const Ast *e, IrAttr *at); /* builtins.c */
int sema_param(Sema *s, const char *scope, const char *local, IrType t, const IrAttr *init,
               bool trainable, SrcLoc loc); /* builtins.c */

static void exec_param(Sema *s, const Ast *st) {
  IrType t;
  if (!fresh_name(s, st->name, st->name_loc)) return;
  IrAttr at = {.init = INIT_ZEROS};
  int n = -1;
  if (eval_type(s, st->a, &t) && (!st->b || sema_init_spec(s, st->b, &at)))
    n = sema_param(s, s->fr->scope, st->name, t, &at, true, st->loc);
  bind(s, st->name, n >= 0 ? v_tensor(n, st->name_loc) : v_err(), st->name_loc, B_PARAM);
}

static void exec_output(Sema *s, const Ast *st) {
  for (int i = 0; i < st->nkids; i++) {
    const Ast *nm = st->kids[i];
    Value v = eval_name(s, nm);
    if (v.k == V_ERR) continue;
    if (v.k != V_TENSOR) {
      sema_error(s, nm->loc, "output '%s' must be a tensor, got %s", nm->name, v_kind_name(&v));
      continue;
    }
    bool dup = false;
    for (int j = 0; j < s->g->noutputs; j++) dup |= !strcmp(s->g->outputs[j].name, nm->name);
    if (dup) {
      sema_error(s, nm->loc, "'%s' is already an output", nm->name);
      continue;
    }
    ir_add_output(s->g, nm->name, v.node);
  }
}

static void exec_assign(Sema *s, const Ast *st) {
  if (strchr(st->name, '.')) {
    sema_error(s, st->name_loc, "cannot assign to '%s': a dotted name refers to an existing "
               "parameter; bind a plain name", st->name);
    return;
  }
  Binding *old = lookup(s, st->name);
  if (old && (old->kind == B_DIM || old->kind == B_LOOP)) {
    sema_error(s, st->name_loc, "cannot assign to %s '%s'",
               old->kind == B_DIM ? "dim" : "loop variable", st->name);
    return;
  }
  int before = s->g->nnodes;
  const Ast *saved_call = s->pending_call;
  const char *saved_name = s->pending_name;
  s->pending_call = st->a->kind == AST_CALL ? st->a : NULL;
  s->pending_name = st->name;
  Value v = sema_eval(s, st->a);
  s->pending_call = saved_call;
  s->pending_name = saved_name;
  if (v.k == V_TENSOR && v.node >= before) s->g->nodes[v.node].name = value_name(s, st->name);
  /* a failed value is still bound, so later uses stay silent */
  bind(s, st->name, v, st->name_loc, B_VAR);
}

static void exec_stmts(Sema *s, Ast *const *kids, int n);

static bool const_int(Sema *s, const Ast *e, int64_t *out) {
  Value v = sema_eval(s, e);
  if (v.k == V_ERR) return false;
  if (v.k != V_INT || v.dim) {
    sema_error(s, v.loc, "a loop bound must be a constant integer, got %s",
               v.k == V_INT ? "a symbolic dim" : v_kind_name(&v));
    return false;
  }
  *out = v.i;
  return true;
}

static void exec_for(Sema *s, Ast *st) {
  int64_t lo, hi;
  bool ok1 = const_int(s, st->a, &lo), ok2 = const_int(s, st->b, &hi);
  if (!ok1 || !ok2) return;
  if (hi - lo > SEMA_MAX_TRIPS) {
    sema_error(s, st->loc, "loop runs %lld times; at most %d are allowed", (long long)(hi - lo),
               SEMA_MAX_TRIPS);
    return;
  }
  Frame *f = s->fr;
  if (f->nloops >= 16) {
    sema_error(s, st->loc, "for-loops are nested too deeply");
    return;
  }
  if (lookup(s, st->name)) {
    sema_error(s, st->name_loc, "loop variable '%s' shadows an existing name", st->name);
    return;
  }
  f->nloops++;
  for (int64_t i = lo; i < hi && !f->returned && !s->gave_up; i++) {
    f->loops[f->nloops - 1] = (int)i;
    bind(s, st->name, v_int(i, st->name_loc), st->name_loc, B_LOOP);
    exec_stmts(s, st->kids, st->nkids);
  }
  f->nloops--;
  Binding *b = lookup(s, st->name); /* the index lives only inside the loop */
  if (b) *b = f->b[--f->n];
}

static void exec_stmt(Sema *s, Ast *st) {
  switch (st->kind) {
  case AST_DIM:
    if (only_in(s, st, true, "'dim'")) exec_dim(s, st);
    break;
  case AST_INPUT:
    if (only_in(s, st, true, "'input'")) exec_input(s, st);
    break;
  case AST_PARAM: exec_param(s, st); break;
  case AST_OUTPUT:
    if (only_in(s, st, true, "'output'")) exec_output(s, st);
    break;
  case AST_ASSIGN: exec_assign(s, st); break;
  case AST_RETURN:
    if (!only_in(s, st, false, "'return'")) break;
    s->fr->ret = sema_eval(s, st->a);
    s->fr->returned = true;
    break;
  case AST_FOR: exec_for(s, st); break;
  case AST_MINIMIZE:
  case AST_OPTIMIZER:
  case AST_MEMORY:
    sema_error(s, st->loc, "'%s' is allowed only in a train section", ast_kind_name(st->kind));
    break;
  default: break;
  }
}

static void exec_stmts(Sema *s, Ast *const *kids, int n) {
  for (int i = 0; i < n && !s->fr->returned && sema_tick(s); i++) exec_stmt(s, kids[i]);
}

/* ---- blocks ----------------------------------------------------------------------------- */

static bool arg_type_ok(Sema *s, const Ast *blk, const Ast *ad, Value *v) {
  if (!ad->b || v->k == V_ERR) return true;
  const char *t = ad->b->name;
  double x;
  if (!strcmp(t, "float") && as_number(v, &x)) {
    *v = (Value){.k = V_FLOAT, .f = x, .loc = v->loc};
    return true;
  }
  if ((!strcmp(t, "int") && v->k == V_INT) || (!strcmp(t, "float") && v->k == V_FLOAT) ||
      (!strcmp(t, "str") && v->k == V_STR) || (!strcmp(t, "bool") && v->k == V_BOOL) ||
      (!strcmp(t, "tensor") && v->k == V_TENSOR) || (!strcmp(t, "dtype") && v->k == V_DTYPE))
    return true;
  sema_error(s, v->loc, "argument '%s' of block '%s' must be %s %s, got %s", ad->name,
             blk->name, t[0] == 'i' ? "an" : "a", t, v_kind_name(v));
  return false;
}

/* match call arguments to the block's parameters; vals/have indexed like the parameters */
static bool bind_block_args(Sema *s, const Ast *blk, const Ast *call, Value *vals, bool *have,
                            Value *name) {
  const Ast *params = blk->a;
  int np = params->nkids, pos = 0;
  bool ok = true;
  for (int i = 0; i < call->nkids; i++) {
    const Ast *arg = call->kids[i];
    int slot = -1;
    if (arg->kind == AST_KWARG) {
      if (!strcmp(arg->name, "name")) {
        *name = sema_eval(s, arg->a);
        if (name->k != V_STR && name->k != V_ERR) {
          sema_error(s, arg->a->loc, "'name' must be a string, got %s", v_kind_name(name));
          ok = false;
        }
        continue;
      }
      for (int j = 0; j < np; j++)
        if (!strcmp(params->kids[j]->name, arg->name)) slot = j;
      if (slot < 0) {
        const char *c[64];
        int n = 0;
        for (int j = 0; j < np && n < 63; j++) c[n++] = params->kids[j]->name;
        c[n++] = "name";
        const char *sug = sema_suggest(arg->name, c, n);
        if (sug)
          sema_error(s, arg->name_loc, "unknown keyword '%s' for block '%s'; did you mean '%s'?",
                     arg->name, blk->name, sug);
        else
          sema_error(s, arg->name_loc, "unknown keyword '%s' for block '%s'", arg->name,
                     blk->name);
        ok = false;
        continue;
      }
    } else {
      if (pos >= np) {
        sema_error(s, arg->loc, "block '%s' takes %d argument%s, got %d", blk->name, np,
                   np == 1 ? "" : "s", call->nkids);
        return false;
      }
      slot = pos++;
    }
    if (have[slot]) {
      sema_error(s, arg->loc, "argument '%s' of block '%s' is given twice",
                 params->kids[slot]->name, blk->name);
      ok = false;
      continue;
    }
    vals[slot] = sema_eval(s, arg->kind == AST_KWARG ? arg->a : arg);
    have[slot] = true;
  }
  for (int j = 0; j < np && ok; j++)
    if (!have[j] && !params->kids[j]->a) {
      sema_error(s, call->loc, "missing argument '%s' for block '%s'", params->kids[j]->name,
                 blk->name);
      ok = false;
    }
  return ok;
}

static const char *instance_scope(Sema *s, const Ast *call, const char *blkname, Value *name) {
  return sema_layer_scope(s, call, blkname, name->k == V_STR ? name : NULL);
}

Value sema_call_block(Sema *s, const Ast *blk, const Ast *call) {
  for (int i = 0; i < s->nactive; i++)
    if (s->active[i] == blk) {
      sema_error(s, call->name_loc, "block '%s' calls itself (recursion is not allowed)",
                 blk->name);
      return v_err();
    }
  if (s->nactive >= 64) {
    sema_error(s, call->name_loc, "blocks are nested too deeply");
    return v_err();
  }
  int np = blk->a->nkids;
  Value *vals = arena_alloc(s->a, (size_t)(np + 1) * sizeof(Value));
  bool *have = arena_alloc(s->a, (size_t)(np + 1));
  Value name = {.k = V_ERR};
  bool ok = bind_block_args(s, blk, call, vals, have, &name);
  /* name = "": the instance adds no component; its layers are named in the caller's scope */
  bool flat = ok && name.k == V_STR && !name.s[0];
  const char *scope = ok && !flat ? instance_scope(s, call, blk->name, &name) : s->fr->scope;
  if (!ok || (!flat && !scope)) return v_err();
  s->active[s->nactive++] = blk;
  Frame f = {.scope = scope, .block = blk};
  Frame *caller = s->fr;
  s->fr = &f;
  for (int j = 0; j < np && ok; j++) {
    const Ast *ad = blk->a->kids[j];
    Value v = have[j] ? vals[j] : sema_eval(s, ad->a);
    if (!arg_type_ok(s, blk, ad, &v)) v = v_err();
    bind(s, ad->name, v, ad->name_loc, B_ARG);
  }
  exec_stmts(s, blk->kids, blk->nkids);
  Value r = f.returned ? f.ret : v_err();
  s->fr = caller;
  s->nactive--;
  if (r.k != V_ERR) r.loc = call->loc;
  return r;
}

/* ---- items ------------------------------------------------------------------------------ */

typedef struct ModelEnv {
  const char *name;
  IrGraph *g;
  Frame fr;
} ModelEnv;

/* statements a block may not hold, reported even when the block is never used */
static void check_block_stmts(Sema *s, Ast *const *kids, int n) {
  for (int i = 0; i < n; i++) {
    const Ast *st = kids[i];
    const char *what = st->kind == AST_DIM ? "'dim'" : st->kind == AST_INPUT ? "'input'"
                     : st->kind == AST_OUTPUT ? "'output'" : NULL;
    if (what) sema_error(s, st->loc, "%s is allowed only in a model", what);
    if (st->kind == AST_MINIMIZE || st->kind == AST_OPTIMIZER || st->kind == AST_MEMORY)
      sema_error(s, st->loc, "'%s' is allowed only in a train section", ast_kind_name(st->kind));
    if (st->kind == AST_FOR) check_block_stmts(s, st->kids, st->nkids);
  }
}

static void check_block_def(Sema *s, const Ast *b) {
  check_block_stmts(s, b->kids, b->nkids);
  static const char *const types[] = {"int", "float", "str", "bool", "tensor", "dtype"};
  bool has_return = false;
  for (int i = 0; i < b->nkids; i++) has_return |= b->kids[i]->kind == AST_RETURN;
  if (!has_return) sema_error(s, b->name_loc, "block '%s' has no 'return'", b->name);
  for (int i = 0; i < b->a->nkids; i++) {
    const Ast *ad = b->a->kids[i];
    for (int j = 0; j < i; j++)
      if (!strcmp(b->a->kids[j]->name, ad->name))
        sema_error(s, ad->name_loc, "duplicate argument '%s' in block '%s'", ad->name, b->name);
    if (!strcmp(ad->name, "name"))
      sema_error(s, ad->name_loc, "'name' is reserved for naming block instances");
    if (!ad->b) continue;
    bool known = false;
    for (int j = 0; j < 6; j++) known |= !strcmp(ad->b->name, types[j]);
    if (!known) {
      const char *sug = sema_suggest(ad->b->name, types, 6);
      sema_error(s, ad->b->loc, "unknown argument type '%s'%s%s%s", ad->b->name,
                 sug ? "; did you mean '" : "; expected int, float, str, bool, tensor or dtype",
                 sug ? sug : "", sug ? "'?" : "");
    }
  }
}

static void collect_items(Sema *s, ModelEnv **envs, int *nenv) {
  const Ast *f = s->file;
  int cap = 0, capb = 0;
  for (int i = 0; i < f->nkids; i++) {
    const Ast *it = f->kids[i];
    if (it->kind == AST_BLOCK) {
      const Ast *prev = sema_find_block(s, it->name);
      if (prev || builtin_find(it->name) || builtin_is_initializer(it->name)) {
        sema_error(s, it->name_loc, "redefinition of %s'%s'", prev ? "block " : "builtin ",
                   it->name);
        if (prev) sema_note(s, prev->name_loc, "previous definition is here");
        continue;
      }
      check_block_def(s, it);
      arena_grow(s->a, (void **)&s->blocks, &capb, s->nblocks + 1, sizeof *s->blocks);
      s->blocks[s->nblocks++] = it;
    } else if (it->kind == AST_MODEL) {
      bool dup = false;
      for (int j = 0; j < *nenv; j++)
        if (!strcmp((*envs)[j].name, it->name)) {
          dup = true;
        }
      if (dup) {
        sema_error(s, it->name_loc, "redefinition of model '%s'", it->name);
        continue;
      }
      arena_grow(s->a, (void **)envs, &cap, *nenv + 1, sizeof **envs);
      (*envs)[(*nenv)++] = (ModelEnv){.name = it->name};
    }
  }
}

static void run_model(Sema *s, const Ast *it, ModelEnv *env) {
  env->g = ir_module_add_graph(s->m, it->name);
  env->g->loc = it->loc;
  s->g = env->g;
  s->params = map_new(s->a);
  s->nwide_dense = 0;
  s->fr = s->model_fr = &env->fr;
  exec_stmts(s, it->kids, it->nkids);
  s->fr = s->model_fr = NULL;
}

static ModelEnv *find_env(ModelEnv *envs, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(envs[i].name, name) && envs[i].g) return &envs[i];
  return NULL;
}

static bool opt_number(Sema *s, const Ast *arg, double *out, double lo) {
  Value v = sema_eval(s, arg->a);
  double x;
  if (v.k == V_ERR) return false;
  if (v.k == V_BOOL) {
    *out = v.b;
    return true;
  }
  if (!as_number(&v, &x)) {
    sema_error(s, v.loc, "optimizer setting '%s' must be a number, got %s", arg->name,
               v_kind_name(&v));
    return false;
  }
  if (x < lo) {
    sema_error(s, v.loc, "optimizer setting '%s' must be >= %g, got %g", arg->name, lo, x);
    return false;
  }
  *out = x;
  return true;
}

static void train_optimizer(Sema *s, const Ast *call, IrTrain *t) {
  static const char *const names[] = {"sgd", "adam", "adamw"};
  static const char *const keys[] = {"lr", "momentum", "weight_decay", "nesterov",
                                     "beta1", "beta2", "eps"};
  int k = -1;
  for (int i = 0; i < 3; i++)
    if (!strcmp(call->name, names[i])) k = i;
  if (k < 0) {
    const char *sug = sema_suggest(call->name, names, 3);
    sema_error(s, call->name_loc, "unknown optimizer '%s'%s%s%s", call->name,
               sug ? "; did you mean '" : "; expected sgd, adam or adamw", sug ? sug : "",
               sug ? "'?" : "");
    return;
  }
  t->opt = (OptKind)(OPT_SGD + k);
  t->lr = k == 0 ? 0.01 : 1e-3;
  t->beta1 = 0.9;
  t->beta2 = 0.999;
  t->eps = 1e-8;
  t->weight_decay = k == 2 ? 0.01 : 0;
  double *slots[] = {&t->lr, &t->momentum, &t->weight_decay, NULL, &t->beta1, &t->beta2, &t->eps};
  const char *pos[] = {"lr", NULL};
  for (int i = 0; i < call->nkids; i++) {
    const Ast *arg = call->kids[i];
    const char *key = arg->kind == AST_KWARG ? arg->name : (i == 0 ? pos[0] : NULL);
    if (!key) {
      sema_error(s, arg->loc, "optimizer settings after the first (lr) must be keywords");
      continue;
    }
    int j = -1;
    for (int q = 0; q < 7; q++)
      if (!strcmp(key, keys[q])) j = q;
    bool sgd_only = j == 1 || j == 3, adam_only = j >= 4;
    if (j >= 0 && ((k == 0 && adam_only) || (k != 0 && sgd_only))) {
      sema_error(s, arg->name_loc, "'%s' is not a setting of %s", key, names[k]);
      continue;
    }
    if (j < 0) {
      const char *sug = sema_suggest(key, k == 0 ? keys : keys + 2, k == 0 ? 4 : 5);
      sema_error(s, arg->name_loc, "unknown keyword '%s' for %s%s%s%s", key, names[k],
                 sug ? "; did you mean '" : "", sug ? sug : "", sug ? "'?" : "");
      continue;
    }
    Ast tmp = *arg;
    if (arg->kind != AST_KWARG) tmp.a = (Ast *)arg, tmp.name = (char *)key;
    double x;
    if (!opt_number(s, &tmp, &x, 0)) continue;
    if (j == 3) t->nesterov = x != 0;
    else *slots[j] = x;
  }
}

static void train_memory(Sema *s, const Ast *st, IrTrain *t) {
  Value v = sema_eval(s, st->a);
  double x;
  if (v.k == V_ERR) return;
  if (!as_number(&v, &x) || x <= 0) {
    sema_error(s, v.loc, "memory budget must be a positive number");
    return;
  }
  double scale = ir_size_unit(st->name, false);
  if (scale) {
    if ((t->memory_budget = ir_size_bytes(x, scale)) < 0) {
      sema_error(s, st->loc, "memory budget is too large");
      t->memory_budget = 0;
    }
    return;
  }
  const char *sug = sema_suggest(st->name, ir_size_units, IR_NSIZE_UNITS);
  sema_error(s, st->name_loc, "unknown memory unit '%s'%s%s%s", st->name,
             sug ? "; did you mean '" : "; expected B, KB, KiB, MB, MiB, GB, GiB, TB or TiB",
             sug ? sug : "", sug ? "'?" : "");
}

static void train_minimize(Sema *s, const Ast *st, ModelEnv *env, IrTrain *t) {
  s->fr = &env->fr;
  s->g = env->g;
  Binding *b = lookup(s, st->name);
  s->fr = NULL;
  if (!b) {
    int n = env->fr.n;
    const char **c = arena_alloc(s->a, (size_t)(n + 1) * sizeof *c);
    for (int i = 0; i < n; i++) c[i] = env->fr.b[i].name;
    const char *sug = sema_suggest(st->name, c, n);
    if (sug)
      sema_error(s, st->name_loc, "model '%s' has no value '%s'; did you mean '%s'?", env->name,
                 st->name, sug);
    else
      sema_error(s, st->name_loc, "model '%s' has no value '%s'", env->name, st->name);
    return;
  }
  if (b->v.k == V_ERR) return;
  if (b->v.k != V_TENSOR || env->g->nodes[b->v.node].type.rank != 0) {
    sema_error(s, st->name_loc, "can only minimize a scalar, but '%s' is %s", st->name,
               b->v.k == V_TENSOR ? sema_type_str(s, b->v.node) : v_kind_name(&b->v));
    if (b->v.k == V_TENSOR) sema_note(s, b->loc, "'%s' is defined here", st->name);
    return;
  }
  IrNode *n = &env->g->nodes[b->v.node];
  if (!n->name) n->name = arena_strdup(s->a, st->name);
  t->minimize = n->name;
}

static void run_train(Sema *s, const Ast *it, ModelEnv *envs, int nenv) {
  ModelEnv *env = find_env(envs, nenv, it->name);
  if (!env) {
    const char **c = arena_alloc(s->a, (size_t)(nenv + 1) * sizeof *c);
    for (int i = 0; i < nenv; i++) c[i] = envs[i].name;
    const char *sug = sema_suggest(it->name, c, nenv);
    if (sug)
      sema_error(s, it->name_loc, "unknown model '%s' in train section; did you mean '%s'?",
                 it->name, sug);
    else
      sema_error(s, it->name_loc, "unknown model '%s' in train section", it->name);
    return;
  }
  if (ir_module_find_train(s->m, it->name)) {
    sema_error(s, it->name_loc, "a second train section for model '%s'", it->name);
    return;
  }
  IrTrain t = {.model = arena_strdup(s->a, it->name), .loc = it->loc, .opt = OPT_SGD,
               .lr = 0.01};
  bool have_min = false, have_opt = false, have_mem = false;
  Frame tf = {0};
  s->fr = &tf;
  s->g = env->g;
  for (int i = 0; i < it->nkids; i++) {
    const Ast *st = it->kids[i];
    bool *seen = st->kind == AST_MINIMIZE ? &have_min : st->kind == AST_OPTIMIZER ? &have_opt
               : st->kind == AST_MEMORY ? &have_mem : NULL;
    if (!seen) {
      sema_error(s, st->loc, "a train section holds only 'minimize', 'optimizer' and 'memory'");
      continue;
    }
    if (*seen) {
      sema_error(s, st->loc, "'%s' is given twice", ast_kind_name(st->kind));
      continue;
    }
    *seen = true;
    if (st->kind == AST_MINIMIZE) train_minimize(s, st, env, &t);
    else if (st->kind == AST_OPTIMIZER) train_optimizer(s, st->a, &t);
    else train_memory(s, st, &t);
    s->fr = &tf;
  }
  s->fr = NULL;
  if (!have_min) sema_error(s, it->name_loc, "train section for '%s' has no 'minimize'", it->name);
  arena_grow(s->a, (void **)&s->m->trains, &s->m->cap_t, s->m->ntrains + 1, sizeof(IrTrain));
  s->m->trains[s->m->ntrains++] = t;
}

static void check_defines(Sema *s) {
  if (!s->opt) return;
  for (int i = 0; i < s->opt->ndefines; i++) {
    const char *d = s->opt->defines[i];
    const char *eq = strchr(d, '=');
    if (!eq || eq == d) {
      diag_error(s->d, (SrcLoc){0}, "invalid -D '%s': expected NAME=VALUE", d);
      continue;
    }
    char *end;
    long long v = strtoll(eq + 1, &end, 10);
    if (!eq[1] || *end || v <= 0 || v > SEMA_MAX_SIZE)
      diag_error(s->d, (SrcLoc){0}, "invalid value '%s' for -D %.*s: expected a positive integer",
                 eq + 1, (int)(eq - d), d);
    else if (!s->define_used[i])
      diag_error(s->d, (SrcLoc){0}, "-D %.*s: no model declares a dim named '%.*s'",
                 (int)(eq - d), d, (int)(eq - d), d);
  }
}

/* ---- entry points ---------------------------------------------------------------------- */

static void sema_run(Sema *s) {
  ModelEnv *envs = NULL;
  int nenv = 0;
  collect_items(s, &envs, &nenv);
  int mi = 0;
  for (int i = 0; i < s->file->nkids; i++) {
    const Ast *it = s->file->kids[i];
    if (it->kind != AST_MODEL) continue;
    if (mi < nenv && !strcmp(envs[mi].name, it->name) && !envs[mi].g) run_model(s, it, &envs[mi++]);
  }
  for (int i = 0; i < s->file->nkids; i++)
    if (s->file->kids[i]->kind == AST_TRAIN) run_train(s, s->file->kids[i], envs, nenv);
  check_defines(s);
}

IrModule *fe_compile_string(const char *name, const char *text, size_t len, const FeOptions *o,
                            Diag *d) {
  if (len > FE_MAX_SOURCE_BYTES) {
    diag_error_file(d, name ? name : "<input>", "source file too large (more than %d MiB)",
                    FE_MAX_SOURCE_BYTES >> 20);
    return NULL;
  }
  IrModule *m = ir_module_new();
  const char *file = arena_strdup(m->arena, name ? name : "<input>");
  char *copy = arena_alloc(m->arena, len + 1);
  if (len) memcpy(copy, text, len);
  diag_add_source(d, file, copy, len);
  int before = diag_errors(d);
  int perr = 0;
  Ast *root = fe_parse(file, copy, len, d, &perr);
  /* statements lost to syntax errors would only produce follow-up noise */
  if (!perr) {
    Sema s = {.d = d, .a = m->arena, .m = m, .opt = o, .file = root};
    s.seen = map_new(m->arena);
    s.define_used = arena_alloc(m->arena, (size_t)(o && o->ndefines > 0 ? o->ndefines : 1));
    sema_run(&s);
  }
  ast_free(root);
  for (int i = 0; diag_errors(d) == before && i < m->ngraphs; i++) {
    IrGraph *g = m->graphs[i];
    if (dim_ctx_overflowed(g->dims))
      diag_error(d, g->loc, "a dimension of model '%s' overflows 64-bit integers", g->name);
    else
      ir_check_sizes(g, d);
  }
  if (diag_errors(d) > before) {
    ir_module_free(m);
    return NULL;
  }
  return m;
}

/* reads at most FE_MAX_SOURCE_BYTES (+1, to tell a file of exactly the cap from a longer
 * one); a longer input, such as /dev/zero, is reported instead of read to the end */
static char *read_file(const char *path, size_t *len, Diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_error_file(d, path, "cannot read file: %s", strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = xmalloc(cap);
  size_t k;
  while (n <= FE_MAX_SOURCE_BYTES && (k = fread(buf + n, 1, cap - n, f)) > 0) {
    n += k;
    if (n == cap) buf = xrealloc(buf, cap *= 2);
  }
  int e = ferror(f) ? errno : 0;
  fclose(f);
  if (e || n > FE_MAX_SOURCE_BYTES) {
    if (e)
      diag_error_file(d, path, "cannot read file: %s", strerror(e));
    else
      diag_error_file(d, path, "source file too large (more than %d MiB)",
                      FE_MAX_SOURCE_BYTES >> 20);
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

IrModule *fe_compile_file(const char *path, const FeOptions *o, Diag *d) {
  size_t len;
  char *text = read_file(path, &len, d);
  if (!text) return NULL;
  IrModule *m = fe_compile_string(path, text, len, o, d);
  free(text);
  return m;
}

int fe_dump_ast(FILE *out, const char *path, Diag *d) {
  size_t len;
  char *text = read_file(path, &len, d);
  if (!text) return 1;
  diag_add_source(d, path, text, len);
  int nerr = 0;
  Ast *root = fe_parse(path, text, len, d, &nerr);
  ast_dump(out, root);
  ast_free(root);
  free(text); /* every diagnostic about this text has been printed */
  return nerr;
}
