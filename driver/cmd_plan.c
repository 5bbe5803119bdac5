/* cmd_plan.c — `nnc plan`: the memory plan of a training step under a budget: what is
 * kept, what is recomputed, the peak before and after, the extra FLOPs and the estimated
 * time on a target; --sweep prints the budget-vs-recompute curve of sqrt and optimal side by
 * side and --svg draws it. Method: docs/memory.md. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../passes/cost.h"
#include "../passes/memplan.h"
#include "../passes/passes.h"
#include "../passes/remat.h"
#include "driver.h"

typedef struct Opts {
  DrvInput in;
  const char *target, *svg, *memory;
  RematMode mode;
  bool sweep, json;
  int points;
} Opts;

static void usage(FILE *out) {
  fputs("usage: nnc plan FILE.nn [--memory SIZE] [options]\n"
        "Memory plan of the model's training step: arena, what is kept and what is recomputed\n"
        "to fit a budget, the extra FLOPs and the estimated time.\n"
        "  --memory SIZE       the budget for weights, optimizer state, inputs/outputs and\n"
        "                      scratch (default: the train section's `memory` line), e.g.\n"
        "                      256MiB, 1.5GB, 300M (K, M, G without B are KiB, MiB, GiB)\n"
        "  --remat MODE        none | sqrt | optimal (default optimal)\n"
        "  --target T          hardware for the time estimate (default host)\n"
        "  -D, --define N=V    set a dim's value\n"
        "      --model M       the model when the file has several\n"
        "      --sweep         budget vs recompute curve, sqrt and optimal side by side\n"
        "      --points N      budgets in the sweep (default 12)\n"
        "      --svg FILE      draw the sweep (implies --sweep)\n"
        "      --json          the plan (and the sweep) as JSON on stdout\n",
        out);
}

static const char *time_h(double s, char *buf, size_t n) {
  if (s >= 1) snprintf(buf, n, "%.3f s", s);
  else if (s >= 1e-3) snprintf(buf, n, "%.3f ms", s * 1e3);
  else snprintf(buf, n, "%.1f us", s * 1e6);
  return buf;
}

static const char *label(const IrGraph *g, int i, char *buf, size_t n) {
  if (i < 0) return "-";
  const IrNode *nd = &g->nodes[i];
  if (nd->scope && nd->name && strcmp(nd->scope, nd->name)) snprintf(buf, n, "%s/%s", nd->scope, nd->name);
  else if (nd->scope) snprintf(buf, n, "%s", nd->scope);
  else if (nd->name) snprintf(buf, n, "%s", nd->name);
  else snprintf(buf, n, "%%%d %s", i, ir_op_name(nd->op));
  return buf;
}

static int parse(int argc, char **argv, Opts *o) {
  enum { O_MEM = 256, O_REMAT, O_TARGET, O_SWEEP, O_SVG, O_POINTS, O_JSON };
  static const struct option opts[] = {
      {"define", required_argument, 0, 'D'}, {"model", required_argument, 0, 'M'},
      {"memory", required_argument, 0, O_MEM}, {"remat", required_argument, 0, O_REMAT},
      {"target", required_argument, 0, O_TARGET}, {"sweep", no_argument, 0, O_SWEEP},
      {"svg", required_argument, 0, O_SVG}, {"points", required_argument, 0, O_POINTS},
      {"json", no_argument, 0, O_JSON},
      {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  o->target = "host";
  o->mode = REMAT_OPTIMAL;
  o->points = 12;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
    int r = drv_common_opt(&o->in, c, optarg);
    if (r < 0) return 2;
    if (r) continue;
    switch (c) {
    case O_MEM: o->memory = optarg; break;
    case O_REMAT: {
      int m = remat_mode_parse(optarg);
      if (m < 0) {
        fprintf(stderr, "nnc plan: error: --remat must be none, sqrt or optimal, not '%s'\n", optarg);
        return 2;
      }
      o->mode = (RematMode)m;
      break;
    }
    case O_TARGET: o->target = optarg; break;
    case O_SWEEP: o->sweep = true; break;
    case O_JSON: o->json = true; break;
    case O_SVG: o->svg = optarg, o->sweep = true; break;
    case O_POINTS: {
      char *e;
      long v = strtol(optarg, &e, 10);
      if (*e || v < 2 || v > 200) {
        fprintf(stderr, "nnc plan: error: --points must be a number from 2 to 200\n");
        return 2;
      }
      o->points = (int)v;
      break;
    }
    case 'h': usage(stdout); return -1;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "nnc plan: error: expected one .nn file\n");
    usage(stderr);
    return 2;
  }
  o->in.path = argv[optind];
  return 0;
}

static double step_time(IrGraph *g, const HwTarget *hw) {
  CostResult *r = cost_analyze(g, NULL);
  cost_roofline(r, hw);
  return r->total.time;
}

static void print_plan(const Opts *o, IrGraph *fwd, const RematPlan *pl, const HwTarget *hw, int rc) {
  char b0[40], b1[40], b2[40], b3[40];
  const MemPlan *mp = &pl->mp;
  printf("plan for the training step of '%s' on %s (remat %s)\n", fwd->name, hw->name,
         remat_mode_name(o->mode));
  printf("  outside the arena:    params %s (weights and optimizer state), io %s\n",
         drv_bytes_h((double)mp->params_bytes, b0, sizeof b0), drv_bytes_h((double)mp->io_bytes, b1, sizeof b1));
  printf("  step, node order:     %s\n", drv_bytes_h((double)pl->total_orig, b0, sizeof b0));
  printf("  step, scheduled:      %s (optimizer updates follow their gradients, leaves their "
         "readers)\n",
         drv_bytes_h((double)pl->total_sched, b0, sizeof b0));
  if (pl->budget > 0) printf("  budget:               %s\n", drv_bytes_h((double)pl->budget, b0, sizeof b0));
  if (rc) return;
  printf("  planned:              %s = params + io + arena %s (live peak %s, %d in-place)\n",
         drv_bytes_h((double)pl->total, b0, sizeof b0), drv_bytes_h((double)mp->arena_bytes, b1, sizeof b1),
         drv_bytes_h((double)mp->live_peak, b2, sizeof b2), mp->ninplace);
  printf("  forward segments:     %d (cut at articulation points), %d group%s\n", pl->nsegs,
         pl->ngroups, pl->ngroups == 1 ? "" : "s");
  double share = pl->step_flops > 0 ? pl->recompute_flops / pl->step_flops : 0;
  printf("  recomputed:           %d nodes, %s FLOPs = %.2f%% of the step (%s FLOPs)\n", pl->nclones,
         drv_si(pl->recompute_flops, b0, sizeof b0), 100 * share, drv_si(pl->step_flops, b1, sizeof b1));
  double t0 = step_time(pl->sched, hw), t1 = pl->g == pl->sched ? t0 : step_time(pl->g, hw);
  printf("  estimated step time:  %s -> %s (%+.2f%%) on %s\n", time_h(t0, b0, sizeof b0),
         time_h(t1, b1, sizeof b1), t0 > 0 ? 100 * (t1 - t0) / t0 : 0, hw->name);
  if (pl->ngroups > 1) {
    printf("\n  %-4s %-34s %-34s %10s %8s %10s\n", "grp", "from", "to (kept boundary)", "kept",
           "clones", "FLOPs");
    for (int q = 0; q < pl->ngroups; q++) {
      const RematGroup *G = &pl->groups[q];
      char l0[160], l1[160];
      int bn = G->boundary;
      double kb = bn >= 0 && mp->where[bn] == MP_ARENA ? (double)mp->bytes[bn] : 0;
      printf("  %-4d %-34.34s %-34.34s %10s %8d %10s%s\n", q + 1, label(pl->g, G->first_node, l0, sizeof l0),
             label(pl->g, bn >= 0 ? bn : G->last_node, l1, sizeof l1),
             bn >= 0 ? drv_bytes_h(kb, b2, sizeof b2) : "-", G->nclones, drv_si(G->flops, b3, sizeof b3),
             G->recomputed ? "" : "  (kept: backward starts here)");
    }
  }
}

/* ---- JSON (--json): the same figures, bytes and FLOPs as plain numbers ------------------- */

static void json_num(cJSON *o, const char *k, double v) { cJSON_AddNumberToObject(o, k, v); }

static cJSON *json_plan(const Opts *o, IrGraph *fwd, const RematPlan *pl, const HwTarget *hw, int rc) {
  const MemPlan *mp = &pl->mp;
  cJSON *j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "model", fwd->name);
  cJSON_AddStringToObject(j, "target", hw->name);
  cJSON_AddStringToObject(j, "remat", remat_mode_name(o->mode));
  json_num(j, "params_bytes", (double)mp->params_bytes);
  json_num(j, "io_bytes", (double)mp->io_bytes);
  json_num(j, "step_bytes_node_order", (double)pl->total_orig);
  json_num(j, "step_bytes_scheduled", (double)pl->total_sched);
  json_num(j, "budget_bytes", (double)pl->budget);
  cJSON_AddBoolToObject(j, "fits", rc == 0);
  if (rc) return j;
  json_num(j, "planned_bytes", (double)pl->total);
  json_num(j, "arena_bytes", (double)mp->arena_bytes);
  json_num(j, "live_peak_bytes", (double)mp->live_peak);
  json_num(j, "forward_segments", pl->nsegs);
  json_num(j, "recomputed_nodes", pl->nclones);
  json_num(j, "recompute_flops", pl->recompute_flops);
  json_num(j, "step_flops", pl->step_flops);
  double t0 = step_time(pl->sched, hw);
  json_num(j, "step_time_s", t0);
  json_num(j, "step_time_planned_s", pl->g == pl->sched ? t0 : step_time(pl->g, hw));
  return j;
}

static void json_sweep(cJSON *root, const RematPoint *pt, int n) {
  cJSON *a = cJSON_AddArrayToObject(root, "sweep");
  for (int i = 0; i < n; i++) {
    cJSON *p = cJSON_CreateObject();
    json_num(p, "budget_bytes", (double)pt[i].budget);
    for (int m = REMAT_SQRT; m <= REMAT_OPTIMAL; m++) {
      cJSON *r = cJSON_AddObjectToObject(p, remat_mode_name((RematMode)m));
      cJSON_AddBoolToObject(r, "fits", pt[i].ok[m]);
      json_num(r, "recompute_flops", pt[i].flops[m]);
      json_num(r, "planned_bytes", (double)pt[i].total[m]);
    }
    cJSON_AddItemToArray(a, p);
  }
}

static void json_print(cJSON *j) {
  char *s = cJSON_Print(j);
  if (s) puts(s);
  free(s);
  cJSON_Delete(j);
}

/* ---- sweep: table and SVG -------------------------------------------------------------- */

static void print_sweep(const RematPoint *pt, int n, const RematPlan *base) {
  char b0[40], b1[40], b2[40];
  printf("\nbudget sweep (%d forward segments; step %s FLOPs; unmodified step %s)\n", base->nsegs,
         drv_si(base->step_flops, b0, sizeof b0), drv_bytes_h((double)base->total_sched, b1, sizeof b1));
  printf("  %12s  %22s  %22s\n", "budget", "sqrt: recompute  peak", "optimal: recompute  peak");
  for (int i = 0; i < n; i++) {
    char s0[96], s1[96];
    if (pt[i].ok[REMAT_SQRT])
      snprintf(s0, sizeof s0, "%6.2f%% %11s", 100 * pt[i].flops[REMAT_SQRT] / base->step_flops,
               drv_bytes_h((double)pt[i].total[REMAT_SQRT], b0, sizeof b0));
    else
      snprintf(s0, sizeof s0, "%22s", "does not fit");
    if (pt[i].ok[REMAT_OPTIMAL])
      snprintf(s1, sizeof s1, "%6.2f%% %11s", 100 * pt[i].flops[REMAT_OPTIMAL] / base->step_flops,
               drv_bytes_h((double)pt[i].total[REMAT_OPTIMAL], b1, sizeof b1));
    else
      snprintf(s1, sizeof s1, "%22s", "does not fit");
    printf("  %12s  %22s  %22s\n", drv_bytes_h((double)pt[i].budget, b2, sizeof b2), s0, s1);
  }
}

static void xml_esc(FILE *f, const char *s) {
  for (; *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else if (*s == '"') fputs("&quot;", f);
    else fputc(*s, f);
  }
}

static int write_svg(const char *path, const char *title, const RematPoint *pt, int n,
                     const RematPlan *base, char *err, size_t en) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(err, en, "%s: %s", path, strerror(errno));
    return -1;
  }
  const int W = 720, H = 440, ML = 80, MR = 160, MT = 50, MB = 60;
  double x0 = (double)pt[0].budget, x1 = (double)pt[n - 1].budget, ymax = 0;
  for (int i = 0; i < n; i++)
    for (int m = REMAT_SQRT; m <= REMAT_OPTIMAL; m++)
      if (pt[i].ok[m] && 100 * pt[i].flops[m] / base->step_flops > ymax)
        ymax = 100 * pt[i].flops[m] / base->step_flops;
  if (ymax <= 0) ymax = 1;
  ymax *= 1.1;
  if (x1 <= x0) x1 = x0 + 1;
  double pw = W - ML - MR, ph = H - MT - MB;
#define PX(b) (ML + ((double)(b) - x0) / (x1 - x0) * pw)
#define PY(y) (MT + ph - (y) / ymax * ph)
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
             "font-family=\"sans-serif\" font-size=\"12\">\n"
             "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%d\" y=\"28\" "
             "font-size=\"16\">",
          W, H, W, H, ML);
  xml_esc(f, title);
  fputs("</text>\n", f);
  fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n",
          ML, MT, pw, ph);
  char b[40];
  for (int t = 0; t <= 4; t++) {
    double y = ymax * t / 4, bx = x0 + (x1 - x0) * t / 4;
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f%%</text>\n", ML - 6, PY(y) + 4, y);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", PX(bx), H - MB + 18);
    xml_esc(f, drv_bytes_h(bx, b, sizeof b));
    fputs("</text>\n", f);
  }
  fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">budget (params + io + arena)</text>\n",
          ML + pw / 2, H - 16);
  fprintf(f, "<text x=\"18\" y=\"%.1f\" transform=\"rotate(-90 18 %.1f)\" text-anchor=\"middle\">"
             "recompute FLOPs, %% of the step</text>\n",
          MT + ph / 2, MT + ph / 2);
  static const char *color[3] = {"#888", "#d62728", "#1f77b4"};
  for (int m = REMAT_SQRT; m <= REMAT_OPTIMAL; m++) {
    fprintf(f, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
            remat_mode_name((RematMode)m), color[m]);
    for (int i = 0; i < n; i++)
      if (pt[i].ok[m]) fprintf(f, "%.1f,%.1f ", PX(pt[i].budget), PY(100 * pt[i].flops[m] / base->step_flops));
    fputs("\"/>\n", f);
    for (int i = 0; i < n; i++)
      if (pt[i].ok[m])
        fprintf(f, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" data-budget=\"%lld\" "
                   "data-recompute=\"%.0f\"/>\n",
                remat_mode_name((RematMode)m), PX(pt[i].budget), PY(100 * pt[i].flops[m] / base->step_flops),
                color[m], (long long)pt[i].budget, pt[i].flops[m]);
    fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", W - MR + 14, MT + 20 * m,
            color[m], remat_mode_name((RematMode)m));
  }
#undef PX
#undef PY
  fputs("</svg>\n", f);
  if (fclose(f) || rename(tmp, path)) {
    snprintf(err, en, "%s: %s", path, strerror(errno));
    remove(tmp);
    return -1;
  }
  return 0;
}

/* a model without a train section: the forward graph's arena only */
static int plan_inference(const Opts *o, const IrGraph *fwd) {
  MemPlan mp;
  char err[512];
  if (memplan_build(fwd, NULL, &mp, NULL, err, sizeof err)) {
    fprintf(stderr, "nnc plan: error: %s\n", err);
    return 1;
  }
  char b0[40], b1[40], b2[40], b3[40];
  if (o->json) {
    cJSON *js = cJSON_CreateObject();
    cJSON_AddStringToObject(js, "model", fwd->name);
    cJSON_AddBoolToObject(js, "inference_only", true);
    json_num(js, "params_bytes", (double)mp.params_bytes);
    json_num(js, "io_bytes", (double)mp.io_bytes);
    json_num(js, "arena_bytes", (double)mp.arena_bytes);
    json_num(js, "live_peak_bytes", (double)mp.live_peak);
    json_print(js);
  } else {
    printf("'%s' has no train section: inference plan only\n"
           "  params %s, io %s, arena %s (live peak %s, %d in-place)\n",
           fwd->name, drv_bytes_h((double)mp.params_bytes, b0, sizeof b0),
           drv_bytes_h((double)mp.io_bytes, b1, sizeof b1),
           drv_bytes_h((double)mp.arena_bytes, b2, sizeof b2),
           drv_bytes_h((double)mp.live_peak, b3, sizeof b3), mp.ninplace);
  }
  if (o->memory || o->sweep) {
    fprintf(stderr, "nnc plan: error: --memory and --sweep plan a training step; '%s' has none\n",
            fwd->name);
    return 1;
  }
  return 0;
}

/* --sweep: the recompute/memory curve, into the JSON document or as text (and --svg) */
static int plan_sweep(const Opts *o, const IrGraph *fwd, IrGraph *tg, const TrainInfo *info,
                      cJSON *json) {
  RematPoint *pts = xcalloc((size_t)o->points, sizeof *pts);
  RematPlan base;
  int rc = 0;
  char err[512];
  if (remat_sweep(tg, info, o->points, pts, &base)) {
    fprintf(stderr, "nnc plan: internal error in the sweep\n");
    rc = 1;
  } else {
    if (json) json_sweep(json, pts, o->points);
    else print_sweep(pts, o->points, &base);
    if (o->svg) {
      char title[200];
      snprintf(title, sizeof title, "%s: recompute vs memory budget (training step)", fwd->name);
      if (write_svg(o->svg, title, pts, o->points, &base, err, sizeof err)) {
        fprintf(stderr, "nnc plan: error: %s\n", err);
        rc = 1;
      }
    }
  }
  free(pts);
  return rc;
}

/* the training step's plan under the budget (0 = none), printed; then the sweep */
static int plan_train(const Opts *o, IrGraph *fwd, IrGraph *tg, const TrainInfo *info,
                      int64_t budget, const HwTarget *hw) {
  RematPlan pl;
  RematOptions ro = {o->mode, budget};
  int r = pass_remat(tg, info, &ro, &pl);
  if (r == -2) {
    fprintf(stderr, "nnc plan: internal error: %s\n", pl.msg);
    return 1;
  }
  int rc = 0;
  cJSON *json = o->json ? json_plan(o, fwd, &pl, hw, r) : NULL;
  if (!o->json) print_plan(o, fwd, &pl, hw, r);
  if (r) {
    fprintf(stderr, "%s: error: %s\n", o->in.path, pl.msg);
    rc = 1;
  }
  if (o->sweep && plan_sweep(o, fwd, tg, info, json)) rc = 1;
  if (json) json_print(json);
  return rc;
}

int cmd_plan(int argc, char **argv) {
  Opts o = {0};
  int rc = parse(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  char err[512];
  int64_t budget = 0;
  if (o.memory && (budget = remat_parse_size(o.memory, err, sizeof err)) < 0) {
    fprintf(stderr, "nnc plan: error: --memory: %s\n", err);
    return 2;
  }
  HwTarget hw;
  if (hw_resolve(o.target, &hw, err, sizeof err)) {
    fprintf(stderr, "nnc plan: error: %s\n", err);
    return drv_target_status(o.target);
  }
  Diag *d = diag_new(stderr);
  IrGraph *fwd;
  IrModule *m = drv_compile(&o.in, d, &fwd);
  if (!m) {
    diag_finish(d);
    diag_free(d);
    return drv_compile_status(&o.in);
  }
  IrTrain *t = ir_module_find_train(m, fwd->name);
  IrGraph *tg = NULL;
  TrainInfo info;
  if (t) tg = pass_train_graph(fwd, t, &info, d);
  diag_finish(d);
  diag_free(d);
  if (!t) rc = plan_inference(&o, fwd);
  else if (!tg) rc = 1;
  else rc = plan_train(&o, fwd, tg, &info, budget ? budget : t->memory_budget, &hw);
  ir_module_free(m);
  return rc;
}
