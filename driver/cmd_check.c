/* cmd_check.c — `nnc check`: diagnostics, or one summary per model (text or JSON); with
 * --names the parameter names, with --against a checkpoint diffed against them. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/rt_io.h"
#include "driver.h"
#include "run.h"

typedef struct CheckOpts {
  DrvInput in;
  int names, json;
  const char *against;
} CheckOpts;

static void usage(FILE *out) {
  fputs("usage: nnc check FILE.nn [-D NAME=VALUE]... [--model NAME] [--json]\n"
        "                 [--names [--against W.safetensors]]\n"
        "Parses and checks FILE.nn. Prints diagnostics and exits 1 on errors; otherwise\n"
        "prints one line per model: its inputs, outputs and parameter count.\n"
        "  --json               the summary as JSON on stdout\n"
        "  --names              also list every parameter: name, shape, param or buffer\n"
        "  --against W          compare the parameter names and shapes with the checkpoint W\n"
        "                       (safetensors): missing, unexpected and misshapen tensors; exit 1\n"
        "                       when a parameter is missing or misshapen\n",
        out);
}

static void print_values(const IrGraph *g, OpKind op, const char *label) {
  char tb[256];
  int first = 1;
  printf("  %s:", label);
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].op != op) continue;
    ir_type_str(g, &g->nodes[i].type, tb, sizeof tb);
    printf("%s %s %s", first ? "" : ",", g->nodes[i].name ? g->nodes[i].name : "?", tb);
    first = 0;
  }
  printf("%s\n", first ? " none" : "");
}

static void print_names(const IrGraph *g) {
  char tb[256];
  printf("  parameters:\n");
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op != OP_PARAM) continue;
    ir_type_str(g, &n->type, tb, sizeof tb);
    printf("    %-40s %-20s %s\n", n->name, tb, n->attr.trainable ? "param" : "buffer");
  }
}

static void summarize(const IrGraph *g, int names) {
  char b1[32], b2[32], tb[256];
  int64_t trainable = ir_param_count(g, true), all = ir_param_count(g, false);
  printf("model %s: %s parameters", g->name, drv_commas(trainable, b1, sizeof b1));
  if (all != trainable) printf(" (+%s in buffers)", drv_commas(all - trainable, b2, sizeof b2));
  int nsym = dim_sym_count(g->dims);
  if (nsym) {
    printf(", dims");
    for (int i = 0; i < nsym; i++)
      printf("%s %s=%lld", i ? "," : "", dim_sym_name(g->dims, i),
             (long long)dim_sym_value(g->dims, i));
  }
  printf("\n");
  print_values(g, OP_INPUT, "inputs ");
  printf("  outputs:");
  for (int i = 0; i < g->noutputs; i++) {
    ir_type_str(g, &g->nodes[g->outputs[i].node].type, tb, sizeof tb);
    printf("%s %s %s", i ? "," : "", g->outputs[i].name, tb);
  }
  printf("%s\n", g->noutputs ? "" : " none");
  if (names) print_names(g);
}

/* ---- JSON ----------------------------------------------------------------------------- */

static cJSON *json_value(const IrGraph *g, const char *name, int node) {
  char tb[256];
  cJSON *v = cJSON_CreateObject();
  ir_type_str(g, &g->nodes[node].type, tb, sizeof tb);
  cJSON_AddStringToObject(v, "name", name ? name : "?");
  cJSON_AddStringToObject(v, "type", tb);
  return v;
}

static cJSON *json_model(const IrGraph *g) {
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "name", g->name);
  cJSON_AddNumberToObject(m, "parameters", (double)ir_param_count(g, true));
  cJSON_AddNumberToObject(m, "buffers", (double)(ir_param_count(g, false) - ir_param_count(g, true)));
  cJSON *dims = cJSON_AddObjectToObject(m, "dims");
  for (int i = 0; i < dim_sym_count(g->dims); i++)
    cJSON_AddNumberToObject(dims, dim_sym_name(g->dims, i), (double)dim_sym_value(g->dims, i));
  cJSON *ins = cJSON_AddArrayToObject(m, "inputs"), *outs = cJSON_AddArrayToObject(m, "outputs");
  cJSON *ps = cJSON_AddArrayToObject(m, "params");
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op == OP_INPUT) cJSON_AddItemToArray(ins, json_value(g, n->name, i));
    if (n->op != OP_PARAM) continue;
    cJSON *p = json_value(g, n->name, i);
    cJSON_AddBoolToObject(p, "trainable", n->attr.trainable);
    cJSON_AddNumberToObject(p, "numel", (double)ir_type_numel(g, &n->type));
    cJSON_AddItemToArray(ps, p);
  }
  for (int i = 0; i < g->noutputs; i++)
    cJSON_AddItemToArray(outs, json_value(g, g->outputs[i].name, g->outputs[i].node));
  return m;
}

static void print_json(const IrModule *m, const IrGraph *only) {
  cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "models");
  for (int i = 0; i < m->ngraphs; i++)
    if (!only || m->graphs[i] == only) cJSON_AddItemToArray(arr, json_model(m->graphs[i]));
  char *s = cJSON_Print(root);
  if (s) puts(s);
  free(s);
  cJSON_Delete(root);
}

/* ---- --against ------------------------------------------------------------------------ */

static int shape_matches(const IrGraph *g, const IrNode *n, const RtTensor *t) {
  if (t->rank != n->type.rank) return 0;
  for (int a = 0; a < t->rank; a++)
    if (t->shape[a] != dim_eval(g->dims, n->type.dims[a], NULL)) return 0;
  return 1;
}

/* the model's parameters against the checkpoint's tensors; the number of problems */
static int diff_names(const IrGraph *g, const RtTensorSet *set, const char *path) {
  char tb[256], fb[128];
  int bad = 0, extra = 0;
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op != OP_PARAM) continue;
    const RtTensor *t = rt_set_find(set, n->name);
    ir_type_str(g, &n->type, tb, sizeof tb);
    if (!t) printf("missing    %s %s (not in %s)\n", n->name, tb, path);
    else if (!shape_matches(g, n, t))
      printf("shape      %s: model %s, file %s\n", n->name, tb, (run_shape_str(t, fb, sizeof fb), fb));
    bad += !t || !shape_matches(g, n, t);
  }
  for (int k = 0; k < set->n; k++) {
    int node = ir_find_value(g, set->names[k]);
    if (node >= 0 && g->nodes[node].op == OP_PARAM) continue;
    printf("unexpected %s (in the file, not a parameter of '%s')\n", set->names[k], g->name);
    extra++;
  }
  printf("%s: %d parameter%s missing or misshapen, %d tensor%s not used\n", path, bad,
         bad == 1 ? "" : "s", extra, extra == 1 ? "" : "s");
  return bad;
}

static int check_against(const CheckOpts *o, const IrGraph *g) {
  RtTensorSet set = {0};
  char err[512];
  if (rt_st_read(o->against, &set, err, sizeof err)) {
    fprintf(stderr, "nnc: error: %s\n", err);
    return -1;
  }
  int bad = diff_names(g, &set, o->against);
  rt_set_free(&set);
  return bad ? -1 : 0;
}

/* ---- the command ---------------------------------------------------------------------- */

static int parse_args(int argc, char **argv, CheckOpts *o) {
  static const struct option opts[] = {{"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"names", no_argument, 0, 'n'},
                                       {"against", required_argument, 0, 'a'},
                                       {"json", no_argument, 0, 'j'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
    if (c == 'h') return usage(stdout), 1;
    if (c == 'n') o->names = 1;
    else if (c == 'a') o->against = optarg;
    else if (c == 'j') o->json = 1;
    else {
      int r = drv_common_opt(&o->in, c, optarg);
      if (r < 0) return 2;
      if (r == 0) return usage(stderr), 2;
    }
  }
  if (optind != argc - 1) return usage(stderr), 2;
  if (o->against && !o->names) {
    fputs("nnc check: error: --against needs --names\n", stderr);
    return 2;
  }
  o->in.path = argv[optind];
  return 0;
}

int cmd_check(int argc, char **argv) {
  CheckOpts o = {0};
  int r = parse_args(argc, argv, &o);
  if (r) return r == 1 ? 0 : r;
  Diag *d = diag_new(stderr);
  IrGraph *g = NULL;
  IrModule *m = drv_compile(&o.in, d, &g);
  int errors = diag_finish(d);
  diag_free(d);
  if (!m) return drv_compile_status(&o.in);
  if (o.json) print_json(m, o.in.model ? g : NULL);
  for (int i = 0; i < m->ngraphs && !o.json; i++)
    if (!o.in.model || m->graphs[i] == g) summarize(m->graphs[i], o.names);
  if (o.against && !errors && check_against(&o, g)) errors = 1;
  ir_module_free(m);
  return errors ? 1 : 0;
}
