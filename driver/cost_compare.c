/* cost_compare.c — `nnc cost --compare`: one row per model, ratios against the first. */
#include "cost_compare.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "../passes/cost.h"
#include "../passes/passes.h"
#include "build.h"
#include "cost_plan.h"

typedef struct CmpRow {
  const char *file, *model;
  double params, flops, bytes, time, batch;
  double graph_time;  /* the graph-level roofline */
  bool compiled;      /* time is the compiled step's (else the graph-level one) */
  double measured, measured_best; /* --measure: the built program's step (median, best) */
  bool ok;
} CmpRow;

static double ev(IrGraph *g, Dim *d) { return dim_evalf(g->dims, d, NULL); }

/* the analysed graph of one file: the model, or its training step; NULL on error */
static IrGraph *graph_of(IrModule *m, IrGraph *fwd, bool train, const char *path) {
  if (!train) return fwd;
  IrTrain *t = ir_module_find_train(m, fwd->name);
  if (!t) {
    fprintf(stderr, "%s: error: --train: no 'train %s' block in the file\n", path, fwd->name);
    return NULL;
  }
  Diag *d = diag_new(stderr);
  TrainInfo info;
  IrGraph *tg = pass_train_graph(fwd, t, &info, d);
  diag_free(d);
  return tg;
}

/* samples per step: the leading dim of the first input, as a built program's descriptor */
static double batch_of(IrGraph *g) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_INPUT && g->nodes[i].type.rank > 0)
      return ev(g, g->nodes[i].type.dims[0]);
  return 1;
}

static int analyse_one(const CompareOpts *o, int k, CmpRow *row) {
  DrvInput in = *o->in;
  in.path = o->files[k];
  Diag *d = diag_new(stderr);
  IrGraph *fwd;
  IrModule *m = drv_compile(&in, d, &fwd);
  diag_finish(d);
  diag_free(d);
  if (!m) return 1;
  IrGraph *g = graph_of(m, fwd, o->train, in.path);
  if (!g) {
    ir_module_free(m);
    return 1;
  }
  CostResult *r = cost_analyze(g, NULL);
  cost_roofline(r, o->hw);
  *row = (CmpRow){.file = o->files[k], .params = ev(g, r->params_trainable),
                  .flops = ev(g, r->total.flops),
                  .bytes = ev(g, r->total.rd) + ev(g, r->total.wr), .time = r->total.time,
                  .batch = batch_of(g), .ok = true};
  row->graph_time = row->time;
  DrvPlanCost pc;
  FILE *sink = fopen("/dev/null", "w");
  Diag *q = diag_new(sink ? sink : stderr);
  if (drv_plan_cost(&in, o->hw, o->train, o->threads, true, q, &pc) == 0) {
    row->time = pc.c.time;
    row->bytes = pc.c.bytes;
    row->compiled = true;
  }
  drv_plan_cost_free(&pc);
  diag_free(q);
  if (sink) fclose(sink);
  row->model = strdup(fwd->name); /* the module is freed below */
  ir_module_free(m);
  return row->model ? 0 : 1;
}

/* the step bench reports in dir/bench.json: step_s (median) and step_best_s; 0 ok */
static int read_bench(const char *path, CmpRow *row) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *j = strchr(buf, '{'); /* the report follows any line the program printed first */
  cJSON *root = j ? cJSON_Parse(j) : NULL;
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "step_s");
  const cJSON *sb = cJSON_GetObjectItemCaseSensitive(root, "step_best_s");
  int rc = cJSON_IsNumber(st) && cJSON_IsNumber(sb) ? 0 : -1;
  if (!rc) row->measured = st->valuedouble, row->measured_best = sb->valuedouble;
  cJSON_Delete(root);
  return rc;
}

/* --measure: build file k with this nnc into a temporary directory, run its bench on the
 * estimate's threads, and take the step time it measures */
static int measure_one(const CompareOpts *o, int k, CmpRow *row) {
  char dir[PATH_MAX], prog[PATH_MAX + 16], json[PATH_MAX + 16], th[16];
  if (drv_make_tmpdir(dir, sizeof dir, "cost", "nnc-compare")) return 1;
  snprintf(prog, sizeof prog, "%s/prog", dir);
  snprintf(json, sizeof json, "%s/bench.json", dir);
  snprintf(th, sizeof th, "%d", o->threads > 0 ? o->threads : o->hw->cores > 0 ? o->hw->cores : 1);
  char *av[2 * 64 + 8];
  int na = 0;
  av[na++] = "/proc/self/exe", av[na++] = "build", av[na++] = (char *)o->files[k];
  for (int i = 0; i < o->in->ndefines && i < 64; i++) av[na++] = "-D", av[na++] = (char *)o->in->defines[i];
  av[na++] = "-o", av[na++] = prog, av[na] = NULL;
  int rc = drv_run_cmd_to(av, NULL, "/dev/null", false);
  if (!rc) {
    char *bv[] = {prog, "bench", "--profile", "--json", "--threads", th, o->train ? "--train" : NULL, NULL};
    rc = drv_run_cmd_to(bv, NULL, json, false);
  }
  if (!rc && read_bench(json, row)) rc = 1;
  if (rc) fprintf(stderr, "nnc cost: error: --measure: building or running %s failed\n", o->files[k]);
  unlink(json), unlink(prog), rmdir(dir);
  return rc ? 1 : 0;
}

static void print_rows(const CompareOpts *o, const CmpRow *rw, int n) {
  char a[32], b[32], c[32];
  printf("%s on %s (%s)\n\n", o->train ? "training step" : "inference", o->hw->name, o->hw->desc);
  printf("%-16s %10s %10s %12s %9s %12s %12s%s\n", "model", "params", "FLOPs", "bytes moved",
         "FLOP/B", "est. time", "per sample", o->measure ? "     measured   meas/est" : "");
  for (int i = 0; i < n; i++) {
    printf("%-16s %10s %10s %12s %9.1f %9.3f ms %9.3f ms", rw[i].model,
           drv_si(rw[i].params, a, sizeof a), drv_si(rw[i].flops, b, sizeof b),
           drv_bytes_h(rw[i].bytes, c, sizeof c), rw[i].bytes > 0 ? rw[i].flops / rw[i].bytes : 0,
           rw[i].time * 1e3, rw[i].time * 1e3 / rw[i].batch);
    if (o->measure) printf(" %9.3f ms %10.2f", rw[i].measured * 1e3, rw[i].measured / rw[i].time);
    putchar('\n');
  }
  if (n > 1) putchar('\n');
  for (int i = 1; i < n; i++)
    printf("%s vs %s: params x%.2f, FLOPs x%.2f, bytes x%.2f, estimated time per sample x%.2f\n",
           rw[i].model, rw[0].model, rw[i].params / rw[0].params, rw[i].flops / rw[0].flops,
           rw[i].bytes / rw[0].bytes, (rw[i].time / rw[i].batch) / (rw[0].time / rw[0].batch));
  for (int i = 1; i < n && o->measure; i++)
    printf("%s vs %s: measured time per sample x%.2f\n", rw[i].model, rw[0].model,
           (rw[i].measured / rw[i].batch) / (rw[0].measured / rw[0].batch));
  printf("\n(FLOPs: algorithmic; bytes and time: the compiled kernel plan's estimate, "
         "docs/cost-model.md");
  if (o->measure) printf("; measured: the built program's bench, median step on %d thread(s)",
                         o->threads > 0 ? o->threads : o->hw->cores);
  for (int i = 0; i < n; i++)
    if (!rw[i].compiled) printf("; %s: graph-level, the CPU backend does not compile it", rw[i].model);
  printf(")\n");
}

static void print_json(const CompareOpts *o, const CmpRow *rw, int n) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "mode", o->train ? "train" : "inference");
  cJSON_AddStringToObject(root, "target", o->hw->name);
  cJSON *arr = cJSON_AddArrayToObject(root, "models");
  for (int i = 0; i < n; i++) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "file", rw[i].file);
    cJSON_AddStringToObject(m, "model", rw[i].model);
    cJSON_AddNumberToObject(m, "params", rw[i].params);
    cJSON_AddNumberToObject(m, "flops", rw[i].flops);
    cJSON_AddNumberToObject(m, "bytes", rw[i].bytes);
    cJSON_AddNumberToObject(m, "time", rw[i].time);
    cJSON_AddStringToObject(m, "time_basis", rw[i].compiled ? "compiled kernel plan" : "graph");
    cJSON_AddNumberToObject(m, "graph_time", rw[i].graph_time);
    cJSON_AddNumberToObject(m, "batch", rw[i].batch);
    if (o->measure) {
      cJSON_AddNumberToObject(m, "measured", rw[i].measured);
      cJSON_AddNumberToObject(m, "measured_best", rw[i].measured_best);
    }
    cJSON_AddItemToArray(arr, m);
  }
  char *s = cJSON_Print(root);
  if (s) puts(s);
  free(s);
  cJSON_Delete(root);
}

int cost_compare(const CompareOpts *o) {
  CmpRow rows[COMPARE_MAX_MODELS] = {0};
  int rc = 0;
  for (int k = 0; k < o->nfiles && !rc; k++) {
    rc = analyse_one(o, k, &rows[k]);
    if (!rc && o->measure) rc = measure_one(o, k, &rows[k]);
  }
  if (!rc) {
    if (o->json) print_json(o, rows, o->nfiles);
    else print_rows(o, rows, o->nfiles);
  }
  for (int k = 0; k < o->nfiles; k++) free((char *)rows[k].model);
  return rc;
}
