/* ox_model.c — the importer's values (tensors, folded constants, parameters), ONNX
 * attributes and tensors, .nn identifiers and the lines written for them. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/rt_io.h"
#include "../sema.h"
#include "ox.h"

OxVal *ox_find(OxCtx *c, const char *name) {
  for (int i = c->nvals - 1; i >= 0; i--)
    if (!strcmp(c->vals[i].name, name)) return &c->vals[i];
  return NULL;
}

OxVal *ox_new(OxCtx *c, const char *name, OxKind k) {
  arena_grow(c->a, (void **)&c->vals, &c->cap, c->nvals + 1, sizeof *c->vals);
  OxVal *v = &c->vals[c->nvals++];
  memset(v, 0, sizeof *v);
  v->name = arena_strdup(c->a, name);
  v->kind = k;
  v->elem = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  return v;
}

int ox_uses(const OxCtx *c, const char *name) {
  int u = 0;
  for (size_t i = 0; i < c->g->n_node; i++)
    for (size_t k = 0; k < c->g->node[i]->n_input; k++) u += !strcmp(c->g->node[i]->input[k], name);
  for (size_t i = 0; i < c->g->n_output; i++) u += !strcmp(c->g->output[i]->name, name);
  return u;
}

const char *ox_text(OxCtx *c, const char *s) {
  char *o = arena_strdup(c->a, s ? s : "");
  for (char *p = o; *p; p++)
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) *p = '?';
  return o;
}

const char *ox_node_name(const Onnx__NodeProto *n) {
  if (n->name && n->name[0]) return n->name;
  return n->n_output ? n->output[0] : "?";
}

int ox_err(OxCtx *c, const Onnx__NodeProto *n, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n)
    diag_error_file(c->d, c->path, "node '%s' (%s): %s", ox_node_name(n), n->op_type, msg);
  else
    diag_error_file(c->d, c->path, "%s", msg);
  return -1;
}

const char *ox_dt_name(int elem) {
  static const char *const names[] = {"undefined",  "float",   "uint8",  "int8",   "uint16",
                                      "int16",      "int32",   "int64",  "string", "bool",
                                      "float16",    "double",  "uint32", "uint64", "complex64",
                                      "complex128", "bfloat16"};
  return elem >= 0 && elem < (int)(sizeof names / sizeof *names) ? names[elem] : "unknown";
}

int64_t ox_numel(const OxVal *v) {
  int64_t n = 1;
  for (int i = 0; i < v->rank; i++) n *= v->dims[i].v;
  return n;
}

/* --- tensors -------------------------------------------------------------------------- */

static int raw_elem_size(int elem) {
  switch (elem) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
      return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
      return 8;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
      return 1;
    default:
      return 0;
  }
}

static double raw_value(const uint8_t *p, int elem) {
  float f;
  int32_t i32;
  int64_t i64;
  double d;
  switch (elem) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
      memcpy(&f, p, 4);
      return f;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
      memcpy(&i32, p, 4);
      return i32;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
      memcpy(&i64, p, 8);
      return (double)i64;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
      memcpy(&d, p, 8);
      return d;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
      return (int8_t)p[0];
    default:
      return p[0];
  }
}

/* the typed repeated field holding the values, when raw_data is absent */
static int typed_values(const Onnx__TensorProto *t, int elem, int64_t n, double *out) {
  size_t have = 0;
  for (int64_t k = 0; k < n; k++) {
    if (elem == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && (have = t->n_float_data) > (size_t)k)
      out[k] = t->float_data[k];
    else if (elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 && (have = t->n_int64_data) > (size_t)k)
      out[k] = (double)t->int64_data[k];
    else if (elem == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE && (have = t->n_double_data) > (size_t)k)
      out[k] = t->double_data[k];
    else if (elem != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
             elem != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 &&
             elem != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE && (have = t->n_int32_data) > (size_t)k)
      out[k] = t->int32_data[k];
    else
      return -1;
  }
  return 0;
}

int ox_tensor_to_const(OxCtx *c, const Onnx__TensorProto *t, OxVal *v, const Onnx__NodeProto *n) {
  const char *name = t->name ? t->name : v->name;
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return ox_err(c, n,
                  "tensor '%s' keeps its data in an external file, which nnc import does "
                  "not read; save the model with its data inside",
                  name);
  int elem = t->data_type, es = raw_elem_size(elem);
  if (!es)
    return ox_err(c, n,
                  "tensor '%s' has element type %s; nnc takes float, double and integer "
                  "tensors",
                  name, ox_dt_name(elem));
  if (t->n_dims > OX_MAX_RANK)
    return ox_err(c, n, "tensor '%s' has rank %zu; nnc tensors have at most %d dims", name,
                  t->n_dims, OX_MAX_RANK);
  int64_t cnt = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || (t->dims[i] && cnt > INT64_MAX / 8 / t->dims[i]))
      return ox_err(c, n, "tensor '%s' has an invalid shape", name);
    cnt *= t->dims[i];
    v->dims[i] = (OxDim){t->dims[i], NULL};
  }
  v->rank = (int)t->n_dims;
  v->kind = OXV_CONST;
  v->elem = elem;
  v->n = cnt;
  if (t->has_raw_data && t->raw_data.len != (size_t)cnt * (size_t)es)
    return ox_err(c, n, "tensor '%s': raw_data holds %zu bytes, its shape needs %lld", name,
                  t->raw_data.len, (long long)(cnt * es));
  size_t have = t->n_float_data + t->n_int32_data + t->n_int64_data + t->n_double_data;
  if (!t->has_raw_data && have < (size_t)cnt)
    return ox_err(c, n, "tensor '%s' holds fewer values than its shape needs", name);
  v->cv = arena_alloc(c->a, (size_t)(cnt ? cnt : 1) * sizeof(double));
  if (t->has_raw_data)
    for (int64_t k = 0; k < cnt; k++) v->cv[k] = raw_value(t->raw_data.data + k * es, elem);
  else if (typed_values(t, elem, cnt, v->cv))
    return ox_err(c, n, "tensor '%s' holds fewer values than its shape needs", name);
  return 0;
}

/* --- attributes ----------------------------------------------------------------------- */

const Onnx__AttributeProto *ox_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
  return NULL;
}

int64_t ox_attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_i ? a->i : dflt;
}

double ox_attr_f(const Onnx__NodeProto *n, const char *name, double dflt) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  return a && a->has_f ? a->f : dflt;
}

const char *ox_attr_s(OxCtx *c, const Onnx__NodeProto *n, const char *name, const char *dflt) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a || !a->has_s) return dflt;
  char *s = arena_alloc(c->a, a->s.len + 1);
  memcpy(s, a->s.data, a->s.len);
  return s;
}

int ox_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *out, int max) {
  const Onnx__AttributeProto *a = ox_attr(n, name);
  if (!a) return -1;
  int k = (int)(a->n_ints < (size_t)max ? a->n_ints : (size_t)max);
  for (int i = 0; i < k; i++) out[i] = a->ints[i];
  return k;
}

int ox_axis(OxCtx *c, const Onnx__NodeProto *n, int64_t axis, int rank, int *out) {
  if (axis < -rank || axis >= (rank ? rank : 1))
    return ox_err(c, n, "axis %lld is out of range for rank %d", (long long)axis, rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return 0;
}

/* --- names ---------------------------------------------------------------------------- */

int ox_reserved(const char *s) {
  static const char *const kw[] = {
      "model",    "block",     "train",  "dim",  "input", "param", "output", "return", "for", "in",
      "minimize", "optimizer", "memory", "true", "false", "f32",   "f16",    "bf16",   "i32", NULL};
  for (int i = 0; kw[i]; i++)
    if (!strcmp(kw[i], s)) return 1;
  return builtin_find(s) || builtin_is_initializer(s);
}

int ox_claim(OxCtx *c, const char *name) {
  for (int i = 0; i < c->nids; i++)
    if (!strcmp(c->ids[i], name)) return 0;
  arena_grow(c->a, (void **)&c->ids, &c->idcap, c->nids + 1, sizeof *c->ids);
  c->ids[c->nids++] = arena_strdup(c->a, name);
  return 1;
}

/* s with every run of characters outside [A-Za-z0-9_] (or also '.', when dots) made one
 * '_', no leading/trailing '_' */
static char *sanitize(OxCtx *c, const char *s, int dots) {
  size_t n = strlen(s);
  char *o = arena_alloc(c->a, n + 3);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    int ok = isalnum(ch) || ch == '_' || (dots && ch == '.');
    if (ok)
      o[k++] = (char)ch;
    else if (k && o[k - 1] != '_')
      o[k++] = '_';
  }
  while (k && o[k - 1] == '_') k--;
  o[k] = 0;
  return o;
}

static const char *unique(OxCtx *c, const char *base, const char *prefix) {
  const char *s = arena_printf(c->a, "%s%s", prefix, base);
  for (int k = 2; !ox_claim(c, s); k++) s = arena_printf(c->a, "%s%s_%d", prefix, base, k);
  return s + strlen(prefix);
}

const char *ox_ident(OxCtx *c, const char *onnx_name) {
  char *s = sanitize(c, onnx_name, 0);
  const char *b = s;
  while (*b == '_') b++;
  if (!*b || isdigit((unsigned char)*b) || ox_reserved(b)) b = arena_printf(c->a, "t_%s", b);
  return unique(c, b, "");
}

/* a weight name `a.b.c.weight` gives the scope `a.b.c` when every component is a word */
static const char *scope_of(OxCtx *c, const char *weight_name) {
  const char *dot = weight_name ? strrchr(weight_name, '.') : NULL;
  if (!dot || dot == weight_name) return NULL;
  char *s = arena_strdup(c->a, weight_name);
  s[dot - weight_name] = 0;
  for (char *p = s; *p; p++)
    if (!(isalnum((unsigned char)*p) || *p == '_' || (*p == '.' && p[1] && p[1] != '.' && p != s)))
      return NULL;
  return s;
}

const char *ox_scope(OxCtx *c, const char *weight_name, const char *fallback) {
  const char *s = scope_of(c, weight_name);
  if (s && ox_claim(c, arena_printf(c->a, "@%s", s))) return s;
  char *f = sanitize(c, fallback, 0);
  if (!*f) f = "layer";
  return unique(c, f, "@");
}

/* --- output ----------------------------------------------------------------------------- */

void ox_print_dims(FILE *f, int rank, const OxDim *dims) {
  fputc('[', f);
  for (int i = 0; i < rank; i++) {
    if (dims[i].sym)
      fprintf(f, "%s%s", i ? ", " : "", dims[i].sym);
    else
      fprintf(f, "%s%lld", i ? ", " : "", (long long)dims[i].v);
  }
  fputc(']', f);
}

char *ox_cat(OxCtx *c, const char *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *t = arena_vprintf(c->a, fmt, ap);
  va_end(ap);
  return arena_printf(c->a, "%s%s", s ? s : "", t);
}

void ox_line(OxCtx *c, const Onnx__NodeProto *n, const char *id, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *expr = arena_vprintf(c->a, fmt, ap);
  va_end(ap);
  int w = fprintf(c->body, "  %s = %s", id, expr);
  fprintf(c->body, "%*s# %s", w < 48 ? 48 - w : 1, "", n->op_type);
  if (n->name && n->name[0]) fprintf(c->body, " %s", ox_text(c, n->name));
  fputc('\n', c->body);
}

OxVal *ox_def(OxCtx *c, const Onnx__NodeProto *n, int i, int rank, const OxDim *dims) {
  OxVal *v = ox_new(c, n->output[i], OXV_TENSOR);
  v->rank = rank;
  if (rank) memcpy(v->dims, dims, (size_t)rank * sizeof *dims);
  v->id = ox_ident(c, n->output[i]);
  return v;
}

static void declare_input(OxCtx *c, OxVal *v) {
  v->id = ox_ident(c, v->name);
  int is_int = v->elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
               v->elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
  fprintf(c->decl, "  input %s: %s", v->id, is_int ? "i32" : "f32");
  ox_print_dims(c->decl, v->rank, v->dims);
  fputc('\n', c->decl);
  fprintf(c->notes, "# input  %s <- '%s'%s\n", v->id, ox_text(c, v->name),
          v->elem == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL ? " (bool, as 0.0 and 1.0)" : "");
}

static const char *number(OxCtx *c, double x) {
  char b[64];
  snprintf(b, sizeof b, "%.9g", x);
  if (!strpbrk(b, ".en")) strcat(b, ".0");
  return arena_printf(c->a, x < 0 ? "(%s)" : "%s", b);
}

const char *ox_operand(OxCtx *c, const Onnx__NodeProto *n, int i, int allow_number) {
  const char *name = (size_t)i < n->n_input ? n->input[i] : "";
  if (!name[0] || !ox_find(c, name)) {
    ox_err(c, n, "input %d%s%s%s is missing", i, name[0] ? " '" : "", name, name[0] ? "'" : "");
    return NULL;
  }
  return ox_value_expr(c, n, name, allow_number);
}

const char *ox_value_expr(OxCtx *c, const Onnx__NodeProto *n, const char *name, int allow_number) {
  OxVal *v = ox_find(c, name);
  if (v->kind == OXV_TENSOR || v->id) return v->id;
  if (v->kind == OXV_INPUT) {
    declare_input(c, v);
    return v->id;
  }
  if (allow_number && v->n == 1 && v->rank < allow_number) {
    if (!isfinite(v->cv[0])) {
      ox_err(c, n, "constant '%s' is not finite, which a .nn number cannot be", v->name);
      return NULL;
    }
    return number(c, v->cv[0]);
  }
  if (v->elem != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
      v->elem != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE &&
      v->elem != ONNX__TENSOR_PROTO__DATA_TYPE__BOOL) { /* bools: 0 and 1 */
    ox_err(c, n, "constant '%s' (%s) is used as a tensor; nnc imports float constants only",
           v->name, ox_dt_name(v->elem));
    return NULL;
  }
  const char *id = ox_ident(c, v->name);
  int64_t shape[OX_MAX_RANK];
  for (int k = 0; k < v->rank; k++) shape[k] = v->dims[k].v;
  if (ox_weight(c, n, id, v, 0, v->rank, shape)) return NULL;
  fprintf(c->body, "  param %s: f32", id);
  ox_print_dims(c->body, v->rank, v->dims);
  fprintf(c->body, "%*s# constant '%s'\n", 8, "", ox_text(c, v->name));
  v->id = id;
  return id;
}

int ox_weight(OxCtx *c, const Onnx__NodeProto *n, const char *pname, OxVal *v, int transpose,
              int rank, const int64_t *shape) {
  if (!ox_claim(c, arena_printf(c->a, "#%s", pname)))
    return ox_err(c, n, "parameter '%s' would be defined twice", pname);
  int64_t cnt = 1;
  for (int k = 0; k < rank; k++) cnt *= shape[k];
  if (v->kind == OXV_CONST && (v->n != cnt || (transpose && v->rank != 2)))
    return ox_err(c, n, "'%s' has %lld values where the parameter %s needs %lld", v->name,
                  (long long)v->n, pname, (long long)cnt);
  OxDim dims[OX_MAX_RANK] = {{0, NULL}};
  for (int k = 0; k < rank; k++) dims[k] = (OxDim){shape[k], NULL};
  fprintf(c->notes, "# param  %s f32", pname);
  ox_print_dims(c->notes, rank, dims);
  fprintf(c->notes, " <- %s'%s'%s\n", v->kind == OXV_INPUT ? "graph input " : "",
          ox_text(c, v->name), transpose ? " transposed" : "");
  if (!transpose) v->param = pname; /* a later use shares it (weight tying) */
  if (v->kind == OXV_INPUT) return 0; /* its value comes with the weights, from the user */
  RtTensor t = {0};
  if (rt_tensor_alloc(&t, DT_F32, rank, shape))
    return ox_err(c, n, "out of memory for parameter '%s'", pname);
  float *o = t.data;
  int64_t rows = v->rank == 2 ? v->dims[0].v : 1, cols = v->rank == 2 ? v->dims[1].v : 1;
  for (int64_t k = 0; k < v->n; k++)
    o[k] = (float)(transpose ? v->cv[(k % rows) * cols + k / rows] : v->cv[k]);
  char err[256];
  if (rt_set_add(&c->weights, pname, &t, err, sizeof err)) {
    rt_tensor_free(&t);
    return ox_err(c, n, "%s", err);
  }
  return 0;
}
