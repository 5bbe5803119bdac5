/* cmd_run.c — `nnc run`: a model in the reference interpreter (double precision), with
 * weights from a safetensors file or from the initializers and inputs from .npy files.
 * Three modes: the forward pass (default); --grad, one forward+backward pass in training
 * semantics writing the loss and every parameter's gradient; --train, a training loop over
 * .npy data sets (run_train.c). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../passes/passes.h"
#include "run.h"

static void usage(FILE *out) {
  fputs("usage: nnc run FILE.nn [--model NAME] [-D NAME=VALUE]...\n"
        "         (--weights W.safetensors | --seed S)\n"
        "         --in NAME=FILE.npy... [--out NAME=FILE.npy]... [--save-weights W.safetensors]\n"
        "         [--mode train|eval]\n"
        "       nnc run FILE.nn --grad (--weights W.safetensors | --seed S) [--seed S]\n"
        "         --in NAME=FILE.npy... [-o G.safetensors] [--loss NAME] [--out NAME=FILE.npy]...\n"
        "         [--mode train|eval]\n"
        "       nnc run FILE.nn --train --data NAME=FILE.npy... --epochs E --batch B\n"
        "         [--seed S] [--weights W.safetensors] [--lr X] [--loss NAME]\n"
        "         [--save-weights W.safetensors]\n"
        "Runs a model in the reference interpreter (double precision).\n"
        "  --weights FILE      parameters by name (PyTorch-style names, e.g. fc1.weight)\n"
        "  --seed S            parameters from their initializers, seeded with S; with\n"
        "                      --grad/--train also the dropout seed (default 0)\n"
        "  --in NAME=FILE      an input's value (.npy); a dim used bare in the input's\n"
        "                      shape (e.g. N) takes its size from the file unless -D sets it\n"
        "  --out NAME=FILE     write an output or any named value as .npy (float32)\n"
        "  --save-weights FILE write the parameters (with --train: and optimizer state)\n"
        "                      as safetensors\n"
        "  --grad              one forward+backward pass (training semantics by default)\n"
        "  --mode train|eval   batchnorm and dropout semantics: the forward pass defaults\n"
        "                      to eval, --grad to train (docs/cli.md)\n"
        "  -o FILE             with --grad: write 'loss' and each trainable parameter's\n"
        "                      gradient (under the parameter's name) as safetensors\n"
        "  --loss NAME         the value to differentiate/minimize (default: the train\n"
        "                      section's 'minimize')\n"
        "  --train             train with the train section's optimizer\n"
        "  --data NAME=FILE    an input's whole data set (.npy, samples along axis 0)\n"
        "  --epochs E          passes over the data\n"
        "  --batch B           samples per step; the last partial batch of an epoch is dropped\n"
        "  --lr X              override the optimizer's learning rate\n"
        "Without --out (and -o), prints a summary of every output.\n",
        out);
}

static int parse_binding(const char *arg, RunBinding *b, int *n, const char *opt) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) {
    fprintf(stderr, "nnc run: error: %s expects NAME=FILE, got '%s'\n", opt, arg);
    return -1;
  }
  if (*n == RUN_MAX_BINDINGS) {
    fprintf(stderr, "nnc run: error: too many %s options\n", opt);
    return -1;
  }
  for (int k = 0; k < *n; k++)
    if (strlen(b[k].name) == (size_t)(eq - arg) && !strncmp(b[k].name, arg, (size_t)(eq - arg))) {
      fprintf(stderr, "nnc run: error: %s %.*s is given twice\n", opt, (int)(eq - arg), arg);
      return -1;
    }
  b[*n].name = strndup(arg, (size_t)(eq - arg));
  b[*n].path = eq + 1;
  (*n)++;
  return 0;
}

static int parse_count(const char *arg, const char *opt, int64_t *out) {
  char *end;
  long long v = strtoll(arg, &end, 10);
  if (!*arg || *end || v < 1) {
    fprintf(stderr, "nnc run: error: %s expects a positive integer, got '%s'\n", opt, arg);
    return -1;
  }
  *out = v;
  return 0;
}

/* an option that only some modes use: "--data is only used with --train" */
static int only_with(int given, int ok, const char *opt, const char *modes) {
  if (given && !ok) {
    fprintf(stderr, "nnc run: error: %s is only used with %s\n", opt, modes);
    return -1;
  }
  return 0;
}

/* one option; 0 consumed, -1 after a message */
static int run_opt(RunOpts *o, int c, const char *arg) {
  char *end;
  switch (c) {
  case 'w': o->weights = arg; return 0;
  case 'S': o->save_weights = arg; return 0;
  case 'o': o->grad_out = arg; return 0;
  case 'g': o->grad = 1; return 0;
  case 't': o->train = 1; return 0;
  case 'L': o->loss = arg; return 0;
  case 'm':
    o->mode = !strcmp(arg, "train") ? RUN_MODE_TRAIN : !strcmp(arg, "eval") ? RUN_MODE_EVAL : -1;
    if (o->mode >= 0) return 0;
    fprintf(stderr, "nnc run: error: --mode must be train or eval, not '%s'\n", arg);
    return -1;
  case 's':
    o->seed = strtoull(arg, &end, 0);
    if (*end || !*arg || *arg == '-') {
      fprintf(stderr, "nnc run: error: --seed expects an integer, got '%s'\n", arg);
      return -1;
    }
    o->have_seed = 1;
    return 0;
  case 'E': return parse_count(arg, "--epochs", &o->epochs) ? -1 : 0;
  case 'B': return parse_count(arg, "--batch", &o->batch) ? -1 : 0;
  case 'l':
    o->lr = strtod(arg, &end);
    if (*end || !*arg || !isfinite(o->lr) || o->lr <= 0) {
      fprintf(stderr, "nnc run: error: --lr expects a positive number, got '%s'\n", arg);
      return -1;
    }
    o->have_lr = 1;
    return 0;
  case 'i': return parse_binding(arg, o->ins, &o->nins, "--in") ? -1 : 0;
  case 'O': return parse_binding(arg, o->outs, &o->nouts, "--out") ? -1 : 0;
  case 'a': return parse_binding(arg, o->data, &o->ndata, "--data") ? -1 : 0;
  default: {
    int r = drv_common_opt(&o->in, c, arg);
    if (r <= 0) {
      if (r == 0) usage(stderr);
      return -1;
    }
    return 0;
  }
  }
}

/* --train reads --data, runs --epochs of --batch; parameters from --weights or --seed */
static int check_train_opts(const RunOpts *o) {
  if (o->nins) {
    fprintf(stderr, "nnc run: error: --train reads its inputs from --data NAME=FILE.npy, "
                    "not --in\n");
    return -1;
  }
  if (o->nouts) {
    fprintf(stderr, "nnc run: error: --out is not used with --train; save the result with "
                    "--save-weights\n");
    return -1;
  }
  if (!o->ndata) {
    fprintf(stderr, "nnc run: error: --train needs the data: --data NAME=FILE.npy for each "
                    "input\n");
    return -1;
  }
  if (!o->epochs || !o->batch) {
    fprintf(stderr, "nnc run: error: --train needs --epochs E and --batch B\n");
    return -1;
  }
  return 0; /* parameters: --weights, or initializers seeded with --seed (default 0) */
}

/* options that only make sense together */
static int check_opts(const RunOpts *o) {
  if (o->grad && o->train) {
    fprintf(stderr, "nnc run: error: --grad and --train exclude each other; give one\n");
    return -1;
  }
  if (only_with(o->grad_out != NULL, o->grad, "-o", "--grad") ||
      only_with(o->loss != NULL, o->grad || o->train, "--loss", "--grad or --train") ||
      only_with(o->ndata > 0, o->train, "--data", "--train") ||
      only_with(o->epochs > 0, o->train, "--epochs", "--train") ||
      only_with(o->batch > 0, o->train, "--batch", "--train") ||
      only_with(o->have_lr, o->train, "--lr", "--train") ||
      only_with(o->mode != RUN_MODE_DEFAULT, !o->train, "--mode", "the forward pass or --grad") ||
      only_with(o->save_weights != NULL, !o->grad, "--save-weights", "the forward pass or --train"))
    return -1;
  if (o->train) return check_train_opts(o);
  if (!o->weights && !o->have_seed) {
    fprintf(stderr, "nnc run: error: give --weights FILE.safetensors or --seed S for the "
                    "parameters\n");
    return -1;
  }
  if (o->weights && o->have_seed && !o->grad) {
    fprintf(stderr, "nnc run: error: --weights and --seed both set the parameters; give one\n");
    return -1;
  }
  return 0;
}

static int parse_args(int argc, char **argv, RunOpts *o) {
  static const struct option opts[] = {{"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"weights", required_argument, 0, 'w'},
                                       {"seed", required_argument, 0, 's'},
                                       {"in", required_argument, 0, 'i'},
                                       {"out", required_argument, 0, 'O'},
                                       {"save-weights", required_argument, 0, 'S'},
                                       {"grad", no_argument, 0, 'g'},
                                       {"train", no_argument, 0, 't'},
                                       {"loss", required_argument, 0, 'L'},
                                       {"data", required_argument, 0, 'a'},
                                       {"epochs", required_argument, 0, 'E'},
                                       {"batch", required_argument, 0, 'B'},
                                       {"lr", required_argument, 0, 'l'},
                                       {"mode", required_argument, 0, 'm'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:ho:", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      exit(0);
    }
    if (run_opt(o, c, optarg)) return -1;
  }
  if (optind != argc - 1) {
    usage(stderr);
    return -1;
  }
  o->in.path = argv[optind];
  return check_opts(o);
}

int run_was_defined(const RunOpts *o, const char *sym) {
  size_t n = strlen(sym);
  for (int i = 0; i < o->in.ndefines; i++)
    if (!strncmp(o->in.defines[i], sym, n) && o->in.defines[i][n] == '=') return 1;
  return 0;
}

void run_shape_str(const RtTensor *t, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "%s[", dt_name(t->dt));
  for (int i = 0; i < t->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
}

void run_node_type_str(const IrGraph *g, int node, char *buf, size_t n) {
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

int run_find_node(const IrGraph *g, OpKind op, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == op && g->nodes[i].name && !strcmp(g->nodes[i].name, name)) return i;
  return -1;
}

int run_bind_dims(const RunOpts *o, IrGraph *g, const RtTensor *files, const int *nodes,
                  const RunBinding *b, int n, int from_axis, Diag *d) {
  int bound_by[DIM_MAX_SYMS];
  for (int s = 0; s < DIM_MAX_SYMS; s++) bound_by[s] = -1;
  for (int k = 0; k < n; k++) {
    const IrType *t = &g->nodes[nodes[k]].type;
    if (files[k].rank != t->rank) continue; /* reported by run_check_array */
    for (int ax = from_axis; ax < t->rank; ax++)
      for (int s = 0; s < dim_sym_count(g->dims); s++) {
        if (!dim_eq(t->dims[ax], dim_sym(g->dims, s)) ||
            run_was_defined(o, dim_sym_name(g->dims, s)))
          continue;
        int64_t v = files[k].shape[ax];
        if (bound_by[s] >= 0 && dim_sym_value(g->dims, s) != v) {
          diag_error_file(d, b[k].path,
                          "axis %d has size %lld, but %s has %s=%lld; the inputs disagree on %s",
                          ax, (long long)v, b[bound_by[s]].path, dim_sym_name(g->dims, s),
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

int run_check_array(const IrGraph *g, int node, RtTensor *t, const char *path, int from_axis,
                    Diag *d) {
  const IrType *ty = &g->nodes[node].type;
  char want[300], got[128], err[512];
  int ok = t->rank == ty->rank;
  for (int i = from_axis; ok && i < ty->rank; i++)
    ok = t->shape[i] == dim_eval(g->dims, ty->dims[i], NULL);
  if (!ok) {
    run_node_type_str(g, node, want, sizeof want);
    run_shape_str(t, got, sizeof got);
    if (from_axis) { /* a data set: say what one sample must look like */
      char sym[256], ws[300] = "[", gs[128] = "[";
      for (int i = 1; i < ty->rank; i++)
        snprintf(ws + strlen(ws), sizeof ws - strlen(ws), i > 1 ? ",%lld" : "%lld",
                 (long long)dim_eval(g->dims, ty->dims[i], NULL));
      for (int i = 1; i < t->rank; i++)
        snprintf(gs + strlen(gs), sizeof gs - strlen(gs), i > 1 ? ",%lld" : "%lld",
                 (long long)t->shape[i]);
      strcat(ws, "]");
      strcat(gs, "]");
      ir_type_str(g, ty, sym, sizeof sym);
      diag_error_file(d, path, "each sample of input '%s' must have shape %s (the model "
                      "declares %s; axis 0 is the batch), but the array %s has samples of "
                      "shape %s",
                      g->nodes[node].name, ws, sym, got, gs);
    } else
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

void run_suggest_names(const IrGraph *g, OpKind op, const char *what) {
  fprintf(stderr, "note: the model's %s are:", what);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == op) fprintf(stderr, " %s", g->nodes[i].name);
  fputc('\n', stderr);
}

/* --mode train on the forward pass: batch statistics and active dropout (running statistics
 * are not updated: the run writes no state) */
static void set_train_semantics(IrGraph *g) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_BATCHNORM || g->nodes[i].op == OP_DROPOUT) g->nodes[i].attr.train = true;
}

/* need[i]: node i feeds a value the run reports (--out values, else the model's outputs; with
 * --grad, everything) */
static void mark_needed(const RunOpts *o, const IrGraph *g, bool *need) {
  for (int i = 0; i < g->nnodes; i++) need[i] = o->grad;
  for (int i = 0; i < g->noutputs; i++)
    if (!o->nouts) need[g->outputs[i].node] = true;
  for (int k = 0; k < o->nouts; k++) {
    int node = -1;
    for (int i = 0; i < g->noutputs; i++)
      if (!strcmp(g->outputs[i].name, o->outs[k].name)) node = g->outputs[i].node;
    if (node < 0) node = ir_find_value(g, o->outs[k].name);
    if (node >= 0) need[node] = true;
  }
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (need[i])
      for (int j = 0; j < g->nodes[i].nin; j++) need[g->nodes[i].in[j]] = true;
}

/* inputs the reported values do not depend on may be omitted; they are zeros */
static void zero_unneeded_inputs(const RunOpts *o, const IrGraph *g, Interp *ip) {
  bool *need = xmalloc((size_t)(g->nnodes ? g->nnodes : 1));
  mark_needed(o, g, need);
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].op != OP_INPUT || need[i]) continue;
    bool given = false;
    for (int k = 0; k < o->nins; k++) given |= !strcmp(o->ins[k].name, g->nodes[i].name);
    if (given) continue;
    int64_t n = ir_type_numel(g, &g->nodes[i].type);
    double *z = calloc((size_t)(n ? n : 1), sizeof(double));
    if (!z) abort();
    interp_set(ip, i, z, n);
    free(z);
  }
  free(need);
}

/* reads the --in files, binds the dims from them and checks them; nodes[k] is --in k's input */
static int read_inputs(const RunOpts *o, IrGraph *g, RtTensor *files, int *nodes, Diag *d) {
  char err[512];
  for (int k = 0; k < o->nins; k++) {
    nodes[k] = run_find_node(g, OP_INPUT, o->ins[k].name);
    if (nodes[k] < 0) {
      diag_error_file(d, NULL, "--in %s: model '%s' has no input named '%s'", o->ins[k].name,
                      g->name, o->ins[k].name);
      run_suggest_names(g, OP_INPUT, "inputs");
      return -1;
    }
    if (rt_npy_read(o->ins[k].path, &files[k], err, sizeof err)) {
      diag_error_file(d, NULL, "%s", err);
      return -1;
    }
  }
  bool *need = xmalloc((size_t)(g->nnodes ? g->nnodes : 1));
  mark_needed(o, g, need);
  for (int i = 0; i < g->nnodes; i++) {
    int given = 0;
    for (int k = 0; k < o->nins; k++) given |= nodes[k] == i;
    if (g->nodes[i].op == OP_INPUT && !given && need[i]) {
      free(need);
      diag_error_file(d, o->in.path, "input '%s' has no value; pass --in %s=FILE.npy",
                      g->nodes[i].name, g->nodes[i].name);
      return -1;
    }
  }
  free(need);
  if (run_bind_dims(o, g, files, nodes, o->ins, o->nins, 0, d)) return -1;
  for (int k = 0; k < o->nins; k++)
    if (run_check_array(g, nodes[k], &files[k], o->ins[k].path, 0, d)) return -1;
  return 0;
}

/* a tensor --train saves besides the parameters: "<param>.adam_m" etc., "optimizer.step" */
static int is_opt_state(const IrGraph *g, const char *name) {
  static const char *const suffix[] = {".adam_m", ".adam_v", ".momentum_buffer"};
  if (!strcmp(name, "optimizer.step")) return 1;
  for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
    size_t n = strlen(name), m = strlen(suffix[i]);
    if (n > m && !strcmp(name + n - m, suffix[i])) {
      char *base = strndup(name, n - m);
      int found = run_find_node(g, OP_PARAM, base) >= 0;
      free(base);
      if (found) return 1;
    }
  }
  return 0;
}

/* PyTorch checkpoints carry "<bn>.num_batches_tracked" beside each batchnorm's statistics */
static int is_batches_tracked(const IrGraph *g, const char *name) {
  static const char suffix[] = ".num_batches_tracked";
  size_t n = strlen(name), m = sizeof suffix - 1;
  if (n <= m || strcmp(name + n - m, suffix)) return 0;
  char *mean = xmalloc(n - m + sizeof ".running_mean");
  memcpy(mean, name, n - m);
  strcpy(mean + n - m, ".running_mean");
  int found = run_find_node(g, OP_PARAM, mean) >= 0;
  free(mean);
  return found;
}

int run_load_weights(const RunOpts *o, const IrGraph *g, Interp *ip,
                     int (*optional)(const IrGraph *g, int node, void *ctx), void *ctx,
                     int *nloaded, Diag *d) {
  RtTensorSet set = {0};
  char err[512], want[300], got[128];
  if (nloaded) *nloaded = 0;
  if (rt_st_read(o->weights, &set, err, sizeof err)) {
    diag_error_file(d, NULL, "%s", err);
    return -1;
  }
  int missing = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op != OP_PARAM) continue;
    RtTensor *t = rt_set_find(&set, n->name);
    int opt = optional && optional(g, i, ctx);
    run_node_type_str(g, i, want, sizeof want);
    if (!t) {
      if (!opt) {
        diag_error_file(d, o->weights, "missing tensor '%s' (%s)", n->name, want);
        missing++;
      }
      continue;
    }
    int ok = t->rank == n->type.rank;
    for (int a = 0; ok && a < t->rank; a++)
      ok = t->shape[a] == dim_eval(g->dims, n->type.dims[a], NULL);
    if (!ok) {
      run_shape_str(t, got, sizeof got);
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
    if (opt && nloaded) (*nloaded)++;
  }
  int nstate = 0, ntracked = 0;
  for (int k = 0; k < set.n; k++)
    if (run_find_node(g, OP_PARAM, set.names[k]) >= 0)
      continue;
    else if (is_opt_state(g, set.names[k]))
      nstate++;
    else if (is_batches_tracked(g, set.names[k]))
      ntracked++;
    else
      diag_warning(d, (SrcLoc){.file = o->weights},
                   "tensor '%s' is not a parameter of model '%s'; ignored", set.names[k],
                   g->name);
  if (nstate)
    fprintf(stderr, "note: %s: %d optimizer state tensors not used (they resume --train)\n",
            o->weights, nstate);
  if (ntracked)
    fprintf(stderr, "note: %s: %d batchnorm 'num_batches_tracked' counters not used (nnc's "
                    "batchnorm uses a fixed momentum)\n",
            o->weights, ntracked);
  rt_set_free(&set);
  return missing ? -1 : 0;
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

int run_to_tensor(const IrGraph *g, const Interp *ip, int node, RtTensor *t) {
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
    if (run_to_tensor(g, ip, node, &t) || rt_npy_write(o->outs[k].path, &t, err, sizeof err)) {
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
    run_node_type_str(g, node, tb, sizeof tb);
    printf("%s %s:", g->outputs[i].name, tb);
    for (int64_t j = 0; j < n && j < 8; j++) printf(" %.6g", v[j]);
    printf("%s\n", n > 8 ? " ..." : "");
  }
}

int run_save_params(const IrGraph *g, const Interp *ip, const char *path, const char *meta_json,
                    Diag *d) {
  RtTensorSet set = {0};
  char err[512] = "";
  int rc = 0;
  for (int i = 0; i < g->nnodes && !rc; i++) {
    if (g->nodes[i].op != OP_PARAM) continue;
    RtTensor t = {0};
    if (run_to_tensor(g, ip, i, &t)) {
      snprintf(err, sizeof err, "%s: out of memory", path);
      rc = -1;
    } else {
      rc = rt_set_add(&set, g->nodes[i].name, &t, err, sizeof err);
    }
    rt_tensor_free(&t);
  }
  if (!rc) rc = rt_st_write(path, &set, meta_json, err, sizeof err);
  if (rc) diag_error_file(d, NULL, "%s", err);
  rt_set_free(&set);
  return rc ? -1 : 0;
}

/* --grad: the loss and each trainable parameter's gradient, under the parameter's name */
static int write_grads(const RunOpts *o, const IrGraph *g, const Interp *ip,
                       const TrainInfo *info, Diag *d) {
  RtTensorSet set = {0};
  char err[512] = "";
  int rc = 0;
  RtTensor t = {0};
  if (run_to_tensor(g, ip, info->loss, &t) || rt_set_add(&set, "loss", &t, err, sizeof err))
    rc = -1;
  rt_tensor_free(&t);
  for (int k = 0; k < info->nparams && !rc; k++) {
    if (run_to_tensor(g, ip, info->grads[k], &t) ||
        rt_set_add(&set, g->nodes[info->params[k]].name, &t, err, sizeof err))
      rc = -1;
    rt_tensor_free(&t);
  }
  if (!rc) rc = rt_st_write(o->grad_out, &set, NULL, err, sizeof err);
  if (rc) diag_error_file(d, o->grad_out, "%s", err[0] ? err : "out of memory");
  rt_set_free(&set);
  return rc ? -1 : 0;
}

static void print_grads(const IrGraph *g, const Interp *ip, const TrainInfo *info) {
  int64_t n;
  printf("loss: %.9g\n", interp_value(ip, info->loss, &n)[0]);
  for (int k = 0; k < info->nparams; k++) {
    const double *v = interp_value(ip, info->grads[k], &n);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += v[i] * v[i];
    printf("%s: gradient norm %.6g\n", g->nodes[info->params[k]].name, sqrt(s));
  }
}

/* the value --grad/--train differentiate: --loss, else the train section's minimize */
const char *run_loss_name(const RunOpts *o, IrModule *m, const IrGraph *g, SrcLoc *loc,
                          Diag *d) {
  IrTrain *t = ir_module_find_train(m, g->name);
  *loc = (SrcLoc){0};
  if (o->loss) {
    if (ir_find_value(g, o->loss) >= 0) return o->loss;
    diag_error_file(d, NULL, "--loss %s: model '%s' has no value named '%s'", o->loss, g->name,
                    o->loss);
    return NULL;
  }
  if (t && t->minimize) {
    *loc = t->loc;
    return t->minimize;
  }
  diag_error_file(d, o->in.path,
                  "model '%s' has no train section with 'minimize'; name the loss with "
                  "--loss NAME",
                  g->name);
  return NULL;
}

static void free_bindings(RunOpts *o) {
  for (int k = 0; k < o->nins; k++) free((void *)o->ins[k].name);
  for (int k = 0; k < o->nouts; k++) free((void *)o->outs[k].name);
  for (int k = 0; k < o->ndata; k++) free((void *)o->data[k].name);
}

int cmd_run(int argc, char **argv) {
  RunOpts o = {0};
  if (parse_args(argc, argv, &o)) {
    free_bindings(&o);
    return 2;
  }
  if (o.train) {
    int rc = run_train(&o);
    free_bindings(&o);
    return rc;
  }
  Diag *d = diag_new(stderr);
  IrGraph *g = NULL, *eg;
  Interp *ip = NULL;
  RtTensor files[RUN_MAX_BINDINGS] = {{0}};
  int nodes[RUN_MAX_BINDINGS];
  TrainInfo info;
  char err[512];
  int rc = 1;
  IrModule *m = drv_compile(&o.in, d, &g);
  if (!m) rc = drv_compile_status(&o.in);
  if (!m) goto done;
  /* the dims are bound before the interpreter is created: it sizes every value from them */
  if (read_inputs(&o, g, files, nodes, d)) goto free_module;
  if (!(m = drv_recompile_dims(&o.in, m, &g, d))) goto done;
  for (int k = 0; k < o.nins; k++) nodes[k] = run_find_node(g, OP_INPUT, o.ins[k].name);
  eg = g;
  if (o.grad) {
    SrcLoc loc;
    const char *loss = run_loss_name(&o, m, g, &loc, d);
    bool train = o.mode != RUN_MODE_EVAL;
    if (!loss || !(eg = pass_grad_graph_mode(g, loss, loc, train, &info, d))) goto free_module;
  } else if (o.mode == RUN_MODE_TRAIN) {
    set_train_semantics(g);
  }
  InterpOptions io = {.seed = o.seed};
  ip = interp_new(eg, &io);
  for (int k = 0; k < o.nins; k++) /* the clone keeps the forward graph's node indices */
    interp_set(ip, nodes[k], files[k].data, rt_tensor_numel(&files[k]));
  zero_unneeded_inputs(&o, eg, ip);
  if (o.weights ? run_load_weights(&o, eg, ip, NULL, NULL, NULL, d) : (init_weights(&o, eg, ip), 0))
    goto free_module;
  if (interp_run(ip, err, sizeof err)) {
    diag_error_file(d, o.in.path, "%s", err);
    goto free_module;
  }
  if (write_outputs(&o, eg, ip, d)) goto free_module;
  if (o.grad) {
    if (o.grad_out ? write_grads(&o, eg, ip, &info, d) : (print_grads(eg, ip, &info), 0))
      goto free_module;
  } else if (!o.nouts) {
    print_summary(eg, ip);
  }
  if (o.save_weights && run_save_params(eg, ip, o.save_weights, NULL, d)) goto free_module;
  rc = 0;
free_module:
  interp_free(ip);
  ir_module_free(m);
done:
  diag_finish(d);
  diag_free(d);
  for (int k = 0; k < o.nins; k++) rt_tensor_free(&files[k]);
  free_bindings(&o);
  return rc;
}
