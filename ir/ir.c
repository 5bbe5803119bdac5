/* ir.c — graph construction, types, the textual printer, the verifier, parameter queries. */
#include "ir.h"

#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <strings.h>

const OpInfo ir_ops[OP_COUNT] = {
#define X(e, nm, ar, fl) [OP_##e] = {nm, ar, fl},
#include "ops.def"
#undef X
};

const char *ir_op_name(OpKind op) { return (unsigned)op < OP_COUNT ? ir_ops[op].name : "?"; }

int ir_op_find(const char *name) {
  for (int i = 0; i < OP_COUNT; i++)
    if (!strcmp(ir_ops[i].name, name)) return i;
  return -1;
}

/* ---- modules and graphs ------------------------------------------------------------- */

IrModule *ir_module_new(void) {
  Arena *a = arena_new();
  IrModule *m = arena_alloc(a, sizeof *m);
  m->arena = a;
  return m;
}

void ir_module_free(IrModule *m) {
  if (!m) return;
  for (int i = 0; i < m->ngraphs; i++) dim_ctx_free(m->graphs[i]->dims);
  arena_free(m->arena);
}

IrGraph *ir_module_add_graph(IrModule *m, const char *name) {
  arena_grow(m->arena, (void **)&m->graphs, &m->cap_g, m->ngraphs + 1, sizeof(IrGraph *));
  return m->graphs[m->ngraphs++] = ir_graph_new(m->arena, name);
}

IrGraph *ir_module_find(IrModule *m, const char *name) {
  for (int i = 0; i < m->ngraphs; i++)
    if (!strcmp(m->graphs[i]->name, name)) return m->graphs[i];
  return NULL;
}

IrTrain *ir_module_find_train(IrModule *m, const char *model) {
  for (int i = 0; i < m->ntrains; i++)
    if (!strcmp(m->trains[i].model, model)) return &m->trains[i];
  return NULL;
}

IrGraph *ir_graph_new(Arena *a, const char *name) {
  IrGraph *g = arena_alloc(a, sizeof *g);
  g->arena = a;
  g->dims = dim_ctx_new();
  g->name = arena_strdup(a, name);
  return g;
}

IrGraph *ir_graph_clone(Arena *a, const IrGraph *src) {
  IrGraph *g = arena_alloc(a, sizeof *g);
  *g = *src;
  g->arena = a;
  g->nodes = NULL;
  g->cap = g->nnodes = 0;
  g->outputs = NULL;
  g->noutputs = g->cap_out = 0;
  arena_grow(a, (void **)&g->nodes, &g->cap, src->nnodes, sizeof(IrNode));
  for (int i = 0; i < src->nnodes; i++) {
    IrNode n = src->nodes[i];
    int *in = arena_alloc(a, (size_t)(n.nin ? n.nin : 1) * sizeof(int));
    memcpy(in, n.in, (size_t)n.nin * sizeof(int));
    n.in = in;
    g->nodes[g->nnodes++] = n;
  }
  for (int i = 0; i < src->noutputs; i++) ir_add_output(g, src->outputs[i].name, src->outputs[i].node);
  return g;
}

bool ir_is_fill(const IrNode *n) { return n->op == OP_CONST && !n->attr.data; }

int ir_add(IrGraph *g, OpKind op, const int *in, int nin, const IrAttr *attr, IrType type,
           SrcLoc loc) {
  arena_grow(g->arena, (void **)&g->nodes, &g->cap, g->nnodes + 1, sizeof(IrNode));
  IrNode *n = &g->nodes[g->nnodes];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->nin = nin;
  n->in = arena_alloc(g->arena, (size_t)(nin ? nin : 1) * sizeof(int));
  if (nin) memcpy(n->in, in, (size_t)nin * sizeof(int));
  if (attr) n->attr = *attr;
  n->type = type;
  n->loc = loc;
  return g->nnodes++;
}

int ir_build(IrGraph *g, OpKind op, const int *in, int nin, const IrAttr *attr,
             const IrType *hint, SrcLoc loc, ShapeErr *err) {
  IrAttr none = {0};
  IrType t = {0};
  if (hint) t = *hint;
  ShapeErr local;
  if (!err) err = &local;
  err->msg[0] = 0;
  err->arg_a = err->arg_b = -1;
  if (ir_infer(g, op, in, nin, attr ? attr : &none, &t, err)) return -1;
  return ir_add(g, op, in, nin, attr, t, loc);
}

void ir_add_output(IrGraph *g, const char *name, int node) {
  arena_grow(g->arena, (void **)&g->outputs, &g->cap_out, g->noutputs + 1, sizeof(IrNamed));
  g->outputs[g->noutputs++] = (IrNamed){arena_strdup(g->arena, name), node};
}

int ir_find_value(const IrGraph *g, const char *name) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (g->nodes[i].name && !strcmp(g->nodes[i].name, name)) return i;
  return -1;
}

void ir_mark_live(const IrGraph *g, bool *live) {
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (live[i])
      for (int j = 0; j < g->nodes[i].nin; j++) live[g->nodes[i].in[j]] = true;
}

const char *const ir_size_units[IR_NSIZE_UNITS] = {"B",  "KB", "KiB", "MB", "MiB",
                                                   "GB", "GiB", "TB", "TiB"};

double ir_size_unit(const char *unit, bool fold) {
  static const double scale[IR_NSIZE_UNITS] = {1, 1e3, 1024, 1e6, 1048576.0, 1e9, 1073741824.0,
                                               1e12, 1099511627776.0};
  for (int i = 0; i < IR_NSIZE_UNITS; i++)
    if (fold ? !strcasecmp(unit, ir_size_units[i]) : !strcmp(unit, ir_size_units[i]))
      return scale[i];
  return 0;
}

int64_t ir_size_bytes(double x, double scale) {
  double b = ceil(x * scale);
  return b > 9.0e18 ? -1 : (int64_t)b;
}

/* ---- types --------------------------------------------------------------------------- */

IrType ir_type(DType dt, int rank, Dim *const *dims) {
  IrType t = {.dt = dt, .rank = rank};
  for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
  return t;
}

bool ir_type_eq(const IrType *a, const IrType *b) {
  if (a->dt != b->dt || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (!dim_eq(a->dims[i], b->dims[i])) return false;
  return true;
}

int64_t ir_type_numel(const IrGraph *g, const IrType *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= dim_eval(g->dims, t->dims[i], NULL);
  return n;
}

bool ir_type_bytes_checked(const IrGraph *g, const IrType *t, int64_t *bytes) {
  int64_t n = (int64_t)dt_size(t->dt), d;
  for (int i = 0; i < t->rank; i++)
    if (!dim_eval_checked(g->dims, t->dims[i], NULL, &d) || d < 0 ||
        __builtin_mul_overflow(n, d, &n))
      return false;
  *bytes = n;
  return true;
}

/* "f32[N,M,4] at N=2147483647, M=2147483647" */
static void size_desc(const IrGraph *g, const IrType *t, char *buf, size_t n) {
  size_t k = (size_t)ir_type_str(g, t, buf, n);
  for (int i = 0; i < dim_sym_count(g->dims) && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%s=%lld", i ? ", " : " at ",
                          dim_sym_name(g->dims, i), (long long)dim_sym_value(g->dims, i));
}

int ir_check_sizes(const IrGraph *g, Diag *d) {
  const int64_t limit = (int64_t)1 << IR_MAX_BYTES_LOG2;
  int64_t total = 0, b;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    bool ok = ir_type_bytes_checked(g, &n->type, &b) && b <= limit;
    total += ok ? b : 0; /* both terms <= 2^IR_MAX_BYTES_LOG2: no overflow */
    if (!ok || total > limit) {
      char desc[512];
      size_desc(g, &n->type, desc, sizeof desc);
      diag_error(d, n->loc, "tensor %s%s%sis too large: %s; more than 2^%d bytes%s",
                 n->name ? "'" : "", n->name ? n->name : "", n->name ? "' " : "", desc,
                 IR_MAX_BYTES_LOG2, ok ? " with the tensors before it" : "");
      return -1;
    }
  }
  return 0;
}

Dim *ir_type_numel_dim(IrGraph *g, const IrType *t) {
  Dim *n = dim_const(g->dims, 1);
  for (int i = 0; i < t->rank; i++) n = dim_mul(g->dims, n, t->dims[i]);
  return n;
}

int ir_type_str(const IrGraph *g, const IrType *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", dt_name(t->dt));
  for (int i = 0; i < t->rank; i++) {
    if (i) k += (size_t)snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, ",");
    k += (size_t)dim_print(g->dims, t->dims[i], buf + (k < n ? k : n), k < n ? n - k : 0,
                           DIM_PLAIN);
  }
  k += (size_t)snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, "]");
  return (int)k;
}

/* ---- printer ------------------------------------------------------------------------- */

static const char *init_names[] = {"none", "zeros", "ones", "normal", "uniform",
                                   "xavier", "he", "const"};

static void print_ints(FILE *out, const char *key, const int *v, int n) {
  fprintf(out, " %s=[", key);
  for (int i = 0; i < n; i++) fprintf(out, i ? ",%d" : "%d", v[i]);
  fputc(']', out);
}

/* non-default attributes, in a fixed order, so the text is deterministic */
static void print_attr(FILE *out, const IrGraph *g, const IrNode *n) {
  const IrAttr *a = &n->attr;
  unsigned f = ir_ops[n->op].flags;
  if (n->op == OP_CONCAT || n->op == OP_SLICE || n->op == OP_SLICE_BWD || n->op == OP_SOFTMAX ||
      n->op == OP_LOG_SOFTMAX || n->op == OP_SOFTMAX_BWD || n->op == OP_LOG_SOFTMAX_BWD ||
      n->op == OP_IOTA)
    fprintf(out, " axis=%d", a->axis);
  if (a->start) fprintf(out, " start=%s", dim_str(g->dims, a->start));
  if (a->end) fprintf(out, " end=%s", dim_str(g->dims, a->end));
  if (a->naxes) print_ints(out, "axes", a->axes, a->naxes);
  if (a->keepdim) fputs(" keepdim", out);
  if (a->trans_a) fputs(" trans_a", out);
  if (a->trans_b) fputs(" trans_b", out);
  if (a->train) fputs(" train", out);
  if (a->kernel[0] || a->kernel[1]) print_ints(out, "kernel", a->kernel, 2);
  if (a->stride[0] || a->stride[1]) print_ints(out, "stride", a->stride, 2);
  if (a->pad[0] || a->pad[1]) print_ints(out, "pad", a->pad, 2);
  if (a->dilation[0] > 1 || a->dilation[1] > 1) print_ints(out, "dilation", a->dilation, 2);
  if (a->groups > 1) fprintf(out, " groups=%d", a->groups);
  if (a->ceil_mode) fputs(" ceil_mode", out);
  if (a->exclude_pad) fputs(" exclude_pad", out);
  if (a->value != 0 || ir_is_fill(n)) fprintf(out, " value=%.17g", a->value);
  if (a->data) fputs(" folded", out);
  if (a->momentum != 0) fprintf(out, " momentum=%.17g", a->momentum);
  if (a->correction) fprintf(out, " correction=%d", a->correction);
  if (a->ignore) fprintf(out, " ignore_index=%d", a->ignore_index);
  if (a->seed) fprintf(out, " seed=%llu", (unsigned long long)a->seed);
  if (n->op == OP_IOTA) fprintf(out, " start=%.17g step=%.17g", a->init_a, a->init_b);
  if (n->op == OP_PARAM) {
    fprintf(out, " init=%s", init_names[a->init]);
    if (a->init == INIT_NORMAL || a->init == INIT_CONST) fprintf(out, "(%.17g)", a->init_a);
    if (a->init == INIT_UNIFORM) fprintf(out, "(%.17g,%.17g)", a->init_a, a->init_b);
    if (!a->trainable) fputs(" buffer", out);
  }
  (void)f;
}

static const char *phase_names[] = {"fwd", "bwd", "opt"};

void ir_print(FILE *out, const IrGraph *g) {
  fprintf(out, "graph %s(", g->name);
  for (int i = 0; i < dim_sym_count(g->dims); i++)
    fprintf(out, "%s%s=%lld", i ? ", " : "", dim_sym_name(g->dims, i),
            (long long)dim_sym_value(g->dims, i));
  fputs(") {\n", out);
  char tb[512];
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    fprintf(out, "  %%%d = %s", i, ir_op_name(n->op));
    if (n->name && (ir_ops[n->op].flags & OPF_LEAF)) fprintf(out, " \"%s\"", n->name);
    if (n->nin) {
      fputc('(', out);
      for (int j = 0; j < n->nin; j++) fprintf(out, j ? ", %%%d" : "%%%d", n->in[j]);
      fputc(')', out);
    }
    print_attr(out, g, n);
    ir_type_str(g, &n->type, tb, sizeof tb);
    fprintf(out, " : %s", tb);
    if (n->phase != PH_FWD) fprintf(out, " %s", phase_names[n->phase]);
    if (n->name && !(ir_ops[n->op].flags & OPF_LEAF)) fprintf(out, "  # %s", n->name);
    if (n->scope) fprintf(out, "%s[%s]", n->name && !(ir_ops[n->op].flags & OPF_LEAF) ? " " : "  # ", n->scope);
    fputc('\n', out);
  }
  for (int i = 0; i < g->noutputs; i++)
    fprintf(out, "  output \"%s\" = %%%d\n", g->outputs[i].name, g->outputs[i].node);
  fputs("}\n", out);
}

void ir_module_print(FILE *out, const IrModule *m) {
  for (int i = 0; i < m->ngraphs; i++) {
    if (i) fputc('\n', out);
    ir_print(out, m->graphs[i]);
  }
}

/* ---- verifier ------------------------------------------------------------------------ */

int ir_verify(const IrGraph *g, FILE *err) {
  int bad = 0;
  char t1[256], t2[256];
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if ((unsigned)n->op >= OP_COUNT) {
      fprintf(err, "%s: %%%d: invalid op %d\n", g->name, i, (int)n->op);
      bad++;
      continue;
    }
    int ar = ir_ops[n->op].arity;
    if ((ar >= 0 && n->nin != ar) || (ar < 0 && n->nin < 1)) {
      fprintf(err, "%s: %%%d %s: %d operands, expected %d\n", g->name, i, ir_op_name(n->op),
              n->nin, ar);
      bad++;
      continue;
    }
    int ok = 1;
    for (int j = 0; j < n->nin; j++)
      if (n->in[j] < 0 || n->in[j] >= i) {
        fprintf(err, "%s: %%%d %s: operand %d refers to %%%d (not an earlier node)\n", g->name,
                i, ir_op_name(n->op), j, n->in[j]);
        bad++;
        ok = 0;
      }
    if (!ok) continue;
    IrType t = n->type;
    ShapeErr se;
    if (ir_infer(g, n->op, n->in, n->nin, &n->attr, &t, &se)) {
      fprintf(err, "%s: %%%d: %s\n", g->name, i, se.msg);
      bad++;
    } else if (!ir_type_eq(&t, &n->type)) {
      ir_type_str(g, &n->type, t1, sizeof t1);
      ir_type_str(g, &t, t2, sizeof t2);
      fprintf(err, "%s: %%%d %s: type %s, but its rule gives %s\n", g->name, i,
              ir_op_name(n->op), t1, t2);
      bad++;
    }
  }
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node < 0 || g->outputs[i].node >= g->nnodes) {
      fprintf(err, "%s: output '%s' refers to no node\n", g->name, g->outputs[i].name);
      bad++;
    }
  return bad;
}

/* ---- parameters ---------------------------------------------------------------------- */

int ir_params(const IrGraph *g, int *out, int max) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_PARAM) {
      if (k < max) out[k] = i;
      k++;
    }
  return k;
}

int64_t ir_param_count(const IrGraph *g, bool trainable_only) {
  int64_t total = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op == OP_PARAM && (!trainable_only || n->attr.trainable))
      total += ir_type_numel(g, &n->type);
  }
  return total;
}

/* does `v` reach `input` through reshapes only? */
static bool ir_reads_directly(const IrGraph *g, int v, int input) {
  while (v != input && g->nodes[v].op == OP_RESHAPE) v = g->nodes[v].in[0];
  return v == input;
}

int64_t ir_index_bound(const IrGraph *g, int input, bool *is_label) {
  int64_t best = 0;
  *is_label = false;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    bool label = n->op == OP_CROSS_ENTROPY;
    if ((!label && n->op != OP_EMBEDDING) || n->nin < 2 || !ir_reads_directly(g, n->in[1], input))
      continue;
    /* with ignore_index a label outside [0, C) is legal (padding, -100); the loss kernels
     * skip every label outside the range, so nothing reads out of bounds */
    if (label && n->attr.ignore) continue;
    const IrType *t = &g->nodes[n->in[0]].type; /* logits [N,C] or table [V,D] */
    if (t->rank < 1) continue;
    int64_t b = dim_eval(g->dims, t->dims[label ? t->rank - 1 : 0], NULL);
    if (best == 0 || b < best) {
      best = b;
      *is_label = label;
    }
  }
  return best;
}
