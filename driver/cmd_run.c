/* cmd_run.c — `nnc run`: a model's forward pass in the reference interpreter, with weights
 * from a safetensors file or from the initializers, inputs from .npy files. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ir/interp.h"
#include "../runtime/rt_io.h"
#include "driver.h"

#define MAX_BINDINGS 64

typedef struct Binding {
  const char *name, *path;
} Binding;

typedef struct RunOpts {
  DrvInput in;
  const char *weights, *save_weights;
  uint64_t seed;
  int have_seed;
  Binding ins[MAX_BINDINGS], outs[MAX_BINDINGS];
  int nins, nouts;
} RunOpts;

static void usage(FILE *out) {
  fputs("usage: nnc run FILE.nn [--model NAME] [-D NAME=VALUE]...\n"
        "               (--weights W.safetensors | --seed S)\n"
        "               --in NAME=FILE.npy... [--out NAME=FILE.npy]... [--save-weights W.safetensors]\n"
        "Runs the forward pass in the reference interpreter (double precision).\n"
        "  --weights FILE      parameters by name (PyTorch-style names, e.g. fc1.weight)\n"
        "  --seed S            parameters from their initializers, seeded with S\n"
        "  --in NAME=FILE      an input's value (.npy); a dim used bare in the input's\n"
        "                      shape (e.g. N) takes its size from the file unless -D sets it\n"
        "  --out NAME=FILE     write an output or any named value as .npy (float32)\n"
        "  --save-weights FILE write the parameters as safetensors\n"
        "Without --out, prints a summary of every output.\n",
        out);
}

static int parse_binding(const char *arg, Binding *b, int *n, const char *opt) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) {
    fprintf(stderr, "nnc run: error: %s expects NAME=FILE, got '%s'\n", opt, arg);
    return -1;
  }
  if (*n == MAX_BINDINGS) {
    fprintf(stderr, "nnc run: error: too many %s options\n", opt);
    return -1;
  }
  b[*n].name = strndup(arg, (size_t)(eq - arg));
  b[*n].path = eq + 1;
  (*n)++;
  return 0;
}

static int parse_args(int argc, char **argv, RunOpts *o) {
  static const struct option opts[] = {{"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"weights", required_argument, 0, 'w'},
                                       {"seed", required_argument, 0, 's'},
                                       {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'o'},
                                       {"save-weights", required_argument, 0, 'S'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
    char *end;
    switch (c) {
    case 'h': usage(stdout); exit(0);
    case 'w': o->weights = optarg; break;
    case 'S': o->save_weights = optarg; break;
    case 's':
      o->seed = strtoull(optarg, &end, 0);
      if (*end || !*optarg) {
        fprintf(stderr, "nnc run: error: --seed expects an integer, got '%s'\n", optarg);
        return -1;
      }
      o->have_seed = 1;
      break;
    case 'i':
      if (parse_binding(optarg, o->ins, &o->nins, "--in")) return -1;
      break;
    case 'o':
      if (parse_binding(optarg, o->outs, &o->nouts, "--out")) return -1;
      break;
    default: {
      int r = drv_common_opt(&o->in, c, optarg);
      if (r <= 0) {
        if (r == 0) usage(stderr);
        return -1;
      }
    }
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return -1;
  }
  o->in.path = argv[optind];
  if (!o->weights && !o->have_seed) {
    fprintf(stderr, "nnc run: error: give --weights FILE.safetensors or --seed S for the "
                    "parameters\n");
    return -1;
  }
  if (o->weights && o->have_seed) {
    fprintf(stderr, "nnc run: error: --weights and --seed both set the parameters; give one\n");
    return -1;
  }
  return 0;
}

static int was_defined(const RunOpts *o, const char *sym) {
  size_t n = strlen(sym);
  for (int i = 0; i < o->in.ndefines; i++)
    if (!strncmp(o->in.defines[i], sym, n) && o->in.defines[i][n] == '=') return 1;
  return 0;
}

static void shape_str(const RtTensor *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", dt_name(t->dt));
  for (int i = 0; i < t->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

/* the concrete type of node at current dims, "f32[64,784] (N=64)" style */
static void node_type_str(const IrGraph *g, int node, char *buf, size_t n) {
  const IrType *t = &g->nodes[node].type;
  size_t k = (size_t)snprintf(buf, n, "%s[", dt_name(t->dt));
  for (int i = 0; i < t->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld",
                          (long long)dim_eval(g->dims, t->dims[i], NULL));
  if (k < n) k += (size_t)snprintf(buf + k, n - k, "]");
  char sym[256];
  ir_type_str(g, t, sym, sizeof sym);
  if (k < n && strcmp(sym + strlen(dt_name(t->dt)), buf + strlen(dt_name(t->dt))))
    snprintf(buf + k, n - k, " (declared %s)", sym);
}

static int find_node(const IrGraph *g, OpKind op, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == op && g->nodes[i].name && !strcmp(g->nodes[i].name, name)) return i;
  return -1;
}

/* bind bare symbolic dims of input types to the sizes in the files */
static int bind_dims(const RunOpts *o, IrGraph *g, RtTensor *files, const int *nodes, Diag *d) {
  int bound_by[DIM_MAX_SYMS];
  for (int s = 0; s < DIM_MAX_SYMS; s++) bound_by[s] = -1;
  for (int k = 0; k < o->nins; k++) {
    const IrType *t = &g->nodes[nodes[k]].type;
    if (files[k].rank != t->rank) continue; /* reported by check_input */
    for (int ax = 0; ax < t->rank; ax++)
      for (int s = 0; s < dim_sym_count(g->dims); s++) {
        if (!dim_eq(t->dims[ax], dim_sym(g->dims, s)) || was_defined(o, dim_sym_name(g->dims, s)))
          continue;
        int64_t v = files[k].shape[ax];
        if (bound_by[s] >= 0 && dim_sym_value(g->dims, s) != v) {
          diag_error_file(d, o->ins[k].path,
                          "axis %d has size %lld, but %s has %s=%lld; the inputs disagree on %s",
                          ax, (long long)v, o->ins[bound_by[s]].path, dim_sym_name(g->dims, s),
                          (long long)dim_sym_value(g->dims, s), dim_sym_name(g->dims, s));
          return -1;
        }
        if (v >= 1) {
          dim_sym_set_value(g->dims, s, v);
          bound_by[s] = k;
        }
      }
  }
  return 0;
}

static int check_input(const IrGraph *g, int node, RtTensor *t, const char *path, Diag *d) {
  const IrType *ty = &g->nodes[node].type;
  char want[300], got[128], err[512];
  int ok = t->rank == ty->rank;
  for (int i = 0; ok && i < ty->rank; i++)
    ok = t->shape[i] == dim_eval(g->dims, ty->dims[i], NULL);
  if (!ok) {
    node_type_str(g, node, want, sizeof want);
    shape_str(t, got, sizeof got);
    diag_error_file(d, path, "wrong shape for input '%s': expected %s, got %s%s",
                    g->nodes[node].name, want, got,
                    t->rank == ty->rank ? "; set the dims with -D NAME=VALUE if they differ"
                                        : "");
    return -1;
  }
  if (rt_tensor_convert(t, DT_F64, err, sizeof err)) {
    diag_error_file(d, path, "input '%s': %s", g->nodes[node].name, err);
    return -1;
  }
  if (ty->dt == DT_I32) { /* labels: values must be integral */
    const double *v = t->data;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
      if (v[i] != (double)(int64_t)v[i]) {
        diag_error_file(d, path, "input '%s' is i32 but element %lld is %g; save integer labels",
                        g->nodes[node].name, (long long)i, v[i]);
        return -1;
      }
  }
  return 0;
}

static void suggest_names(const IrGraph *g, OpKind op, const char *what) {
  fprintf(stderr, "note: the model's %s are:", what);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == op) fprintf(stderr, " %s", g->nodes[i].name);
  fputc('\n', stderr);
}

static int load_inputs(const RunOpts *o, IrGraph *g, Interp *ip, Diag *d) {
  RtTensor files[MAX_BINDINGS] = {{0}};
  int nodes[MAX_BINDINGS], rc = -1;
  char err[512];
  for (int k = 0; k < o->nins; k++) {
    nodes[k] = find_node(g, OP_INPUT, o->ins[k].name);
    if (nodes[k] < 0) {
      diag_error_file(d, NULL, "--in %s: model '%s' has no input named '%s'", o->ins[k].name,
                      g->name, o->ins[k].name);
      suggest_names(g, OP_INPUT, "inputs");
      goto out;
    }
    if (rt_npy_read(o->ins[k].path, &files[k], err, sizeof err)) {
      diag_error_file(d, NULL, "%s", err);
      goto out;
    }
  }
  for (int i = 0; i < g->nnodes; i++) {
    int given = 0;
    for (int k = 0; k < o->nins; k++) given |= nodes[k] == i;
    if (g->nodes[i].op == OP_INPUT && !given) {
      diag_error_file(d, o->in.path, "input '%s' has no value; pass --in %s=FILE.npy",
                      g->nodes[i].name, g->nodes[i].name);
      goto out;
    }
  }
  if (bind_dims(o, g, files, nodes, d)) goto out;
  for (int k = 0; k < o->nins; k++) {
    if (check_input(g, nodes[k], &files[k], o->ins[k].path, d)) goto out;
    interp_set(ip, nodes[k], files[k].data, rt_tensor_numel(&files[k]));
  }
  rc = 0;
out:
  for (int k = 0; k < o->nins; k++) rt_tensor_free(&files[k]);
  return rc;
}

static int load_weights(const RunOpts *o, const IrGraph *g, Interp *ip, Diag *d) {
  RtTensorSet set = {0};
  char err[512], want[300], got[128];
  int rc = -1;
  if (rt_st_read(o->weights, &set, err, sizeof err)) {
    diag_error_file(d, NULL, "%s", err);
    return -1;
  }
  int missing = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op != OP_PARAM) continue;
    RtTensor *t = rt_set_find(&set, n->name);
    node_type_str(g, i, want, sizeof want);
    if (!t) {
      diag_error_file(d, o->weights, "missing tensor '%s' (%s)", n->name, want);
      missing++;
      continue;
    }
    int ok = t->rank == n->type.rank;
    for (int a = 0; ok && a < t->rank; a++)
      ok = t->shape[a] == dim_eval(g->dims, n->type.dims[a], NULL);
    if (!ok) {
      shape_str(t, got, sizeof got);
      diag_error_file(d, o->weights, "tensor '%s' has shape %s, but the model expects %s",
                      n->name, got, want);
      missing++;
      continue;
    }
    if (rt_tensor_convert(t, DT_F64, err, sizeof err)) {
      diag_error_file(d, o->weights, "tensor '%s': %s", n->name, err);
      missing++;
      continue;
    }
    interp_set(ip, i, t->data, rt_tensor_numel(t));
  }
  for (int k = 0; k < set.n; k++)
    if (find_node(g, OP_PARAM, set.names[k]) < 0)
      diag_warning(d, (SrcLoc){.file = o->weights}, "tensor '%s' is not a parameter of model '%s'; ignored",
                   set.names[k], g->name);
  rc = missing ? -1 : 0;
  rt_set_free(&set);
  return rc;
}

static void init_weights(const RunOpts *o, const IrGraph *g, Interp *ip) {
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].op != OP_PARAM) continue;
    int64_t n = ir_type_numel(g, &g->nodes[i].type);
    double *buf = xmalloc((size_t)(n ? n : 1) * sizeof(double));
    interp_init_param(g, i, o->seed, buf);
    interp_set(ip, i, buf, n);
    free(buf);
  }
}

/* value of node as an f32 tensor */
static int to_tensor(const IrGraph *g, const Interp *ip, int node, RtTensor *t) {
  int64_t shape[IR_MAX_RANK], numel;
  int rank = interp_shape(ip, node, shape);
  const double *v = interp_value(ip, node, &numel);
  DType dt = g->nodes[node].type.dt == DT_I32 ? DT_I32 : DT_F32;
  if (rt_tensor_alloc(t, dt, rank, shape)) return -1;
  for (int64_t i = 0; i < numel; i++) {
    if (dt == DT_I32)
      ((int32_t *)t->data)[i] = (int32_t)v[i];
    else
      ((float *)t->data)[i] = (float)v[i];
  }
  return 0;
}

static int write_outputs(const RunOpts *o, const IrGraph *g, const Interp *ip, Diag *d) {
  char err[512];
  for (int k = 0; k < o->nouts; k++) {
    int node = -1;
    for (int i = 0; i < g->noutputs; i++)
      if (!strcmp(g->outputs[i].name, o->outs[k].name)) node = g->outputs[i].node;
    if (node < 0) node = ir_find_value(g, o->outs[k].name);
    if (node < 0) {
      diag_error_file(d, NULL, "--out %s: model '%s' has no value named '%s'", o->outs[k].name,
                      g->name, o->outs[k].name);
      return -1;
    }
    RtTensor t = {0};
    if (to_tensor(g, ip, node, &t) || rt_npy_write(o->outs[k].path, &t, err, sizeof err)) {
      diag_error_file(d, NULL, "%s", err);
      rt_tensor_free(&t);
      return -1;
    }
    rt_tensor_free(&t);
  }
  return 0;
}

static void print_summary(const IrGraph *g, const Interp *ip) {
  char tb[300];
  for (int i = 0; i < g->noutputs; i++) {
    int node = g->outputs[i].node;
    int64_t n;
    const double *v = interp_value(ip, node, &n);
    node_type_str(g, node, tb, sizeof tb);
    printf("%s %s:", g->outputs[i].name, tb);
    for (int64_t j = 0; j < n && j < 8; j++) printf(" %.6g", v[j]);
    printf("%s\n", n > 8 ? " ..." : "");
  }
}

int save_params(const IrGraph *g, const Interp *ip, const char *path, Diag *d) {
  RtTensorSet set = {0};
  char err[512];
  int rc = 0;
  for (int i = 0; i < g->nnodes && !rc; i++) {
    if (g->nodes[i].op != OP_PARAM) continue;
    RtTensor t = {0};
    rc = to_tensor(g, ip, i, &t) || rt_set_add(&set, g->nodes[i].name, &t, err, sizeof err);
    rt_tensor_free(&t);
  }
  if (!rc) rc = rt_st_write(path, &set, NULL, err, sizeof err);
  if (rc) diag_error_file(d, NULL, "%s", err);
  rt_set_free(&set);
  return rc ? -1 : 0;
}

int cmd_run(int argc, char **argv) {
  RunOpts o = {0};
  if (parse_args(argc, argv, &o)) return 2;
  Diag *d = diag_new(stderr);
  IrGraph *g = NULL;
  IrModule *m = drv_compile(&o.in, d, &g);
  int rc = 1;
  if (!m) goto done;
  InterpOptions io = {.seed = o.seed};
  Interp *ip = interp_new(g, &io);
  char err[512];
  if (load_inputs(&o, g, ip, d)) goto free_interp;
  if (o.weights ? load_weights(&o, g, ip, d) : (init_weights(&o, g, ip), 0)) goto free_interp;
  if (interp_run(ip, err, sizeof err)) {
    diag_error_file(d, o.in.path, "%s", err);
    goto free_interp;
  }
  if (write_outputs(&o, g, ip, d)) goto free_interp;
  if (!o.nouts) print_summary(g, ip);
  if (o.save_weights && save_params(g, ip, o.save_weights, d)) goto free_interp;
  rc = 0;
free_interp:
  interp_free(ip);
  ir_module_free(m);
done:
  diag_finish(d);
  diag_free(d);
  for (int k = 0; k < o.nins; k++) free((void *)o.ins[k].name);
  for (int k = 0; k < o.nouts; k++) free((void *)o.outs[k].name);
  return rc;
}
