/* cmd_cost.c — `nnc cost`: FLOPs, MACs, bytes, memory and roofline time of a model, for
 * inference or a full training step, per op, layer or block, as a table, JSON or CSV, with
 * an optional roofline SVG and tile decisions. The JSON schema is in docs/cost-model.md. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../codegen/cuda/cuda_plan.h"
#include "../codegen/llvm/codegen.h"
#include "../codegen/llvm/llvm_bf16.h"
#include "../passes/comm.h"
#include "../passes/cost.h"
#include "../passes/memplan.h"
#include "../passes/passes.h"
#include "../passes/tiles.h"
#include "driver.h"
#include "cost_compare.h"
#include "cost_plan.h"
#include "report_comm.h"
#include "report_svg.h"

typedef struct Opts {
  DrvInput in;
  const char *target, *svg;
  bool train, json, csv, tiles, formula;
  const char *precision; /* --precision (GPU targets): the GEMM inputs of a CUDA build */
  CostGroupBy per;
  int top;
  int ranks;        /* --ranks P: data-parallel communication (0 = not asked) */
  int threads;      /* --threads T: the compiled step's estimate on T threads (0 = all) */
  const char *link; /* --link NAME|BW */
  double bucket_bytes; /* --bucket-kib K: the all-reduce's bucket (default COMM_BUCKET_BYTES) */
  bool compare;     /* --compare: the positional arguments are several files */
  bool measure;     /* --measure (with --compare): build each model and run its bench */
  const char *target_cpu; /* with --precision bf16 on a CPU: the CPU whose AMX decides tiles */
  bool amx;         /* bf16 on a CPU with AMX-BF16 (the target CPU's features) */
  bool no_winograd; /* the compiled step's plan without Winograd convolutions */
  char **files;
  int nfiles;
} Opts;

static void usage(FILE *out) {
  fputs("usage: nnc cost FILE.nn [options]\n"
        "       nnc cost --compare A.nn B.nn ... [--train] [--target T] [-D N=V] [--json]\n"
        "                [--measure]\n"
        "FLOPs, MACs, bytes, memory and estimated time of a model on a target; with\n"
        "--compare, parameters, FLOPs, bytes and estimated time of several models side by side,\n"
        "and with --measure the step time of each model built for this machine (its bench).\n"
        "  --target T          hardware: a built-in name, host (default), or a JSON file\n"
        "  -D, --define N=V    set a dim's value (formulas stay symbolic)\n"
        "      --symbolic N,.. keep only these dims symbolic in formulas (the others are\n"
        "                      fixed at their values), e.g. --symbolic N\n"
        "      --model M       the model to analyse when the file has several\n"
        "      --train         a full training step (forward, backward, optimizer)\n"
        "      --per op|layer|block   rows per IR node, per layer scope or per block (layer)\n"
        "      --top K         only the K most expensive rows (by time)\n"
        "      --json | --csv  machine-readable output (schema: docs/cost-model.md)\n"
        "      --svg FILE      roofline and memory charts\n"
        "      --tiles         the tile decision of every GEMM-like op\n"
        "      --precision P   GPU targets: f32 (default), tf32, bf16 or f16 GEMM inputs, as\n"
        "                      `nnc build --target cuda --precision P` builds them; CPU\n"
        "                      targets: bf16 with --tiles (AMX tiles and their\n"
        "                      alignment report where --target-cpu CPU, default the host,\n"
        "                      has AMX-BF16)\n"
        "      --threads T     the compiled step's estimate on T threads (default: all\n"
        "                      the target's cores)\n"
        "      --no-winograd   the compiled step as `nnc build --no-winograd` builds it: no\n"
        "                      Winograd F(4,3) convolutions\n"
        "      --formula       show each row's FLOPs as a formula in the dims\n"
        "      --ranks P       with --train: data-parallel on P ranks, the gradients'\n"
        "                      all-reduce, its overlap with backward, scaling efficiency\n"
        "      --link L        the link between ranks: a name (--list-targets) or a\n"
        "                      bandwidth such as 25GB/s or 100Gb/s (default: ib-hdr)\n"
        "      --bucket-kib K  the all-reduce's bucket in KiB (default 25600, as the\n"
        "                      programs' train --bucket-kib)\n"
        "      --list-targets  print the built-in hardware and link tables\n",
        out);
}

/* ---- formatting ------------------------------------------------------------------------ */

static const char *formula(IrGraph *g, Dim *d, char *buf, size_t n) {
  dim_print(g->dims, d, buf, n, DIM_PLAIN);
  return buf;
}

static double ev(IrGraph *g, Dim *d) { return dim_evalf(g->dims, d, NULL); }

/* ---- rows ----------------------------------------------------------------------------- */

typedef struct Row {
  const char *name, *op, *scope;
  char shape[96];
  int node;   /* -1 for groups */
  int nodes;
  Phase phase;
  const char *phases; /* groups: "fwd", "fwd+bwd+opt", ... */
  double params;      /* groups: trainable parameter elements of the layer or block */
  Dim *flops, *macs, *rd, *wr;
  double time, intensity;
  bool compute_bound;
} Row;

/* a node without a value name is named after its layer: "conv1/add" rather than "%4" */
static const char *node_label(IrGraph *g, int i) {
  const IrNode *nd = &g->nodes[i];
  if (nd->name) return nd->name;
  if (nd->scope) return arena_printf(g->arena, "%s/%s", nd->scope, ir_op_name(nd->op));
  return arena_printf(g->arena, "%%%d", i);
}

static const char *group_key(IrGraph *g, CostGroupBy per, const IrNode *nd) {
  return per == COST_BY_LAYER ? cost_layer_key(nd) : cost_block_key(g->arena, nd);
}

/* the torchinfo view of a layer or block row: its trainable parameters, the output shape
 * (of its last forward value), its main op (most FLOPs) and the phases it spans */
static void group_info(const CostResult *r, CostGroupBy per, Row *w) {
  IrGraph *g = r->g;
  double best = -1;
  bool ph[3] = {false, false, false};
  w->op = "";
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *nd = &g->nodes[i];
    if (strcmp(group_key(g, per, nd), w->scope)) continue;
    if (nd->op == OP_PARAM && nd->attr.trainable) w->params += (double)ir_type_numel(g, &nd->type);
    if (!r->node[i].kernel) continue;
    ph[nd->phase] = true;
    if (nd->phase == PH_FWD) ir_type_str(g, &nd->type, w->shape, sizeof w->shape);
    double f = ev(g, r->node[i].flops);
    if (f > best) best = f, w->op = ir_op_name(nd->op);
  }
  static const char *names[] = {"fwd", "bwd", "opt"};
  char buf[16] = "";
  for (int k = 0; k < 3; k++)
    if (ph[k]) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? "+" : "", names[k]);
  w->phases = arena_strdup(g->arena, buf);
}

static int rows_by_time(const void *a, const void *b) {
  const Row *x = a, *y = b;
  return (x->time < y->time) - (x->time > y->time);
}

static int make_rows(const CostResult *r, CostGroupBy per, Row **out) {
  IrGraph *g = r->g;
  Row *rows = arena_alloc(g->arena, (size_t)(g->nnodes ? g->nnodes : 1) * sizeof(Row));
  int n = 0;
  if (per == COST_BY_OP) {
    for (int i = 0; i < g->nnodes; i++) {
      const IrNode *nd = &g->nodes[i];
      if (!r->node[i].kernel) continue;
      Row *w = &rows[n++];
      w->name = node_label(g, i);
      w->op = ir_op_name(nd->op);
      w->scope = cost_layer_key(nd);
      ir_type_str(g, &nd->type, w->shape, sizeof w->shape);
      w->node = i, w->nodes = 1, w->phase = nd->phase;
      w->flops = r->node[i].flops, w->macs = r->node[i].macs;
      w->rd = r->node[i].rd, w->wr = r->node[i].wr;
      w->time = r->time[i].time, w->intensity = r->time[i].intensity;
      w->compute_bound = r->time[i].compute_bound;
    }
  } else {
    CostGroup *gs;
    int ng = cost_group(r, per, &gs, g->arena);
    for (int k = 0; k < ng; k++) {
      Row *w = &rows[n++];
      w->name = gs[k].key, w->op = "", w->scope = gs[k].key, w->node = -1;
      w->nodes = gs[k].nnodes;
      group_info(r, per, w);
      w->flops = gs[k].sum.flops, w->macs = gs[k].sum.macs, w->rd = gs[k].sum.rd,
      w->wr = gs[k].sum.wr, w->time = gs[k].sum.time;
      double by = ev(g, w->rd) + ev(g, w->wr), fl = ev(g, w->flops);
      w->intensity = by > 0 ? fl / by : 0;
      CostTime t = cost_time_of(fl, by, hw_peak(r->hw, DT_F32, false), r->hw->mem_bw, 0);
      /* a group is compute-bound when most of its time is in compute-bound kernels */
      double tc = 0;
      for (int i = 0; i < g->nnodes; i++) {
        const IrNode *nd = &g->nodes[i];
        if (!r->node[i].kernel) continue;
        if (!strcmp(group_key(g, per, nd), gs[k].key) && r->time[i].compute_bound) tc += r->time[i].time;
      }
      (void)t;
      w->compute_bound = tc * 2 > w->time;
    }
  }
  *out = rows;
  return n;
}

/* ---- analysis ------------------------------------------------------------------------- */

typedef struct Report {
  IrModule *m;
  IrGraph *fwd, *g;      /* the model graph, the analysed graph (fwd or training step) */
  CostResult *r;
  CostResult *train;     /* the training step's costs (NULL when there is no train block) */
  SimplifyLog log;
  HwTarget hw;
  HwLink link;           /* --link (or the default) */
  TilePlan *tiles;
  /* what a program built by `nnc build` allocates for the analysed step (its fused kernels
   * have their own arena); have_compiled = 0 when the CPU backend cannot lower the model */
  CgMemory compiled;
  int have_compiled;
  TrainInfo info;        /* of the training step (valid when train != NULL) */
  CommPlan comm;         /* --ranks: valid when comm.ranks > 0 */
  DrvPlanCost plan;      /* the compiled step's estimate (valid when have_plan) */
  bool have_plan;
} Report;

/* the training step of the model, or NULL (quietly, unless `loud`) */
static IrGraph *train_graph(Report *rp, const char *path, bool loud) {
  IrTrain *t = ir_module_find_train(rp->m, rp->fwd->name);
  if (!t) {
    if (loud) fprintf(stderr, "%s: error: --train: no 'train %s' block in the file\n", path, rp->fwd->name);
    return NULL;
  }
  FILE *sink = loud ? stderr : fopen("/dev/null", "w");
  Diag *d = diag_new(sink ? sink : stderr);
  IrGraph *tg = pass_train_graph(rp->fwd, t, &rp->info, d);
  diag_free(d);
  if (sink && sink != stderr) fclose(sink);
  return tg;
}

static int analyse(Report *rp, const Opts *o) {
  IrGraph *g = pass_reassoc_matmul(rp->fwd, &rp->log);
  rp->fwd = g;
  IrGraph *tg = train_graph(rp, o->in.path, o->train);
  if (o->train && !tg) return 1;
  rp->g = o->train ? tg : g;
  CudaPrec prec = CUDA_PREC_F32;
  bool cpu = rp->hw.kind != HW_GPU; /* a CPU: f32, or bf16 GEMM inputs (their tiles) */
  bool cpu_bf16 = cpu && o->tiles && o->precision && !strcmp(o->precision, "bf16");
  if (o->precision && !cpu_bf16 && (cuda_prec_parse(o->precision, &prec) || (cpu && prec != CUDA_PREC_F32))) {
    fprintf(stderr, "nnc cost: error: --precision %s: f32, tf32, bf16 or f16 with a GPU --target; "
            "on a CPU, f32, or bf16 with --tiles (its blocking decisions)\n", o->precision);
    return 2;
  }
  rp->r = cost_analyze(rp->g, NULL);
  rp->r->gemm_dt = cuda_prec_dtype(prec), rp->r->gemm_tf32 = prec == CUDA_PREC_TF32;
  cost_roofline(rp->r, &rp->hw);
  if (tg) {
    rp->train = o->train ? rp->r : cost_analyze(tg, NULL);
    rp->train->gemm_dt = rp->r->gemm_dt, rp->train->gemm_tf32 = rp->r->gemm_tf32;
    if (!o->train) cost_roofline(rp->train, &rp->hw);
  }
  if (o->tiles)
    rp->tiles = cpu_bf16 ? pass_tiles_bf16(rp->g, &rp->hw, NULL, o->amx) : pass_tiles(rp->g, &rp->hw, NULL);
  if (o->tiles) cuda_tiles_precision(rp->tiles, &rp->hw, prec);
  if (o->ranks && comm_plan(rp->train, &rp->info, o->ranks, &rp->link,
                             o->bucket_bytes > 0 ? o->bucket_bytes : COMM_BUCKET_BYTES, &rp->comm))
    return 1;
  FILE *sink = fopen("/dev/null", "w");
  Diag *d = diag_new(sink ? sink : stderr);
  rp->have_compiled = llvm_model_memory(rp->fwd, o->train ? tg : NULL, !o->no_winograd, &rp->compiled, d) == 0;
  rp->have_plan = drv_plan_cost(&o->in, &rp->hw, o->train, o->threads, !o->no_winograd, d, &rp->plan) == 0;
  diag_free(d);
  if (sink) fclose(sink);
  return 0;
}

/* ---- JSON ----------------------------------------------------------------------------- */

static void jnum(cJSON *o, const char *k, IrGraph *g, Dim *d, bool with_formula) {
  cJSON_AddNumberToObject(o, k, ev(g, d));
  if (with_formula) {
    char buf[512], key[64];
    snprintf(key, sizeof key, "%s_formula", k);
    cJSON_AddStringToObject(o, key, formula(g, d, buf, sizeof buf));
  }
}

static cJSON *json_row(const Row *w, IrGraph *g, bool by_op) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", w->name);
  if (by_op) {
    cJSON_AddNumberToObject(o, "node", w->node);
    cJSON_AddStringToObject(o, "op", w->op);
    cJSON_AddStringToObject(o, "shape", w->shape);
    cJSON_AddStringToObject(o, "scope", w->scope);
    static const char *ph[] = {"fwd", "bwd", "opt"};
    cJSON_AddStringToObject(o, "phase", ph[w->phase]);
  } else {
    cJSON_AddNumberToObject(o, "nodes", w->nodes);
    cJSON_AddNumberToObject(o, "params", w->params);
    cJSON_AddStringToObject(o, "op", w->op);
    cJSON_AddStringToObject(o, "shape", w->shape);
    cJSON_AddStringToObject(o, "phase", w->phases);
  }
  jnum(o, "flops", g, w->flops, true);
  jnum(o, "macs", g, w->macs, false);
  cJSON_AddNumberToObject(o, "bytes", ev(g, w->rd) + ev(g, w->wr));
  jnum(o, "bytes_read", g, w->rd, false);
  jnum(o, "bytes_written", g, w->wr, false);
  cJSON_AddNumberToObject(o, "intensity", w->intensity);
  cJSON_AddStringToObject(o, "bound", w->compute_bound ? "compute" : "memory");
  cJSON_AddNumberToObject(o, "time", w->time);
  return o;
}

/* the kernel geometry the CUDA generator builds from a GPU decision */
static void json_tile_kernel(cJSON *o, const TileDecision *t) {
  cJSON_AddNumberToObject(o, "wm", t->wm);
  cJSON_AddNumberToObject(o, "wn", t->wn);
  cJSON_AddNumberToObject(o, "warps", t->warps);
  cJSON_AddNumberToObject(o, "threads", t->threads);
  cJSON_AddNumberToObject(o, "split_k", t->split_k);
  cJSON_AddNumberToObject(o, "smem", (double)t->smem);
  cJSON_AddNumberToObject(o, "smem_pad", t->smem_pad);
  cJSON_AddNumberToObject(o, "regs", t->regs);
  cJSON_AddNumberToObject(o, "ctas_per_sm", t->ctas_per_sm);
  cJSON_AddBoolToObject(o, "cp_async_a", t->cp_async_a);
  cJSON_AddBoolToObject(o, "cp_async_b", t->cp_async_b);
  cJSON_AddBoolToObject(o, "ldmatrix", t->ldmatrix);
}

static cJSON *json_tile(const TileDecision *t, IrGraph *g, int i) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "node", i);
  cJSON_AddStringToObject(o, "name", g->nodes[i].name ? g->nodes[i].name : "");
  cJSON_AddStringToObject(o, "op", ir_op_name(g->nodes[i].op));
  cJSON_AddNumberToObject(o, "m", (double)t->gemm.m);
  cJSON_AddNumberToObject(o, "n", (double)t->gemm.n);
  cJSON_AddNumberToObject(o, "k", (double)t->gemm.k);
  cJSON_AddNumberToObject(o, "batch", (double)t->gemm.batch);
  cJSON_AddStringToObject(o, "mma", t->mma);
  cJSON_AddNumberToObject(o, "align", t->align);
  cJSON_AddBoolToObject(o, "aligned", t->aligned);
  cJSON_AddNumberToObject(o, "pad_overhead", t->pad_overhead);
  if (t->gpu) {
    cJSON_AddNumberToObject(o, "bm", t->bm);
    cJSON_AddNumberToObject(o, "bn", t->bn);
    cJSON_AddNumberToObject(o, "bk", t->bk);
    cJSON_AddNumberToObject(o, "stages", t->stages);
    cJSON_AddNumberToObject(o, "waves", t->waves);
    json_tile_kernel(o, t);
  } else {
    cJSON_AddNumberToObject(o, "mr", t->mr);
    cJSON_AddNumberToObject(o, "nr", t->nr);
    cJSON_AddNumberToObject(o, "kc", t->kc);
    cJSON_AddNumberToObject(o, "mc", t->mc);
    cJSON_AddNumberToObject(o, "nc", t->nc);
  }
  cJSON_AddNumberToObject(o, "efficiency", t->eff);
  cJSON_AddStringToObject(o, "reason", t->reason);
  return o;
}

static void json_totals(cJSON *root, const Report *rp) {
  IrGraph *g = rp->g;
  const CostResult *r = rp->r;
  cJSON *t = cJSON_AddObjectToObject(root, "totals");
  jnum(t, "params", g, r->params_trainable, true);
  jnum(t, "params_all", g, r->params, false);
  cJSON *pb = cJSON_AddObjectToObject(t, "param_bytes");
  for (int d = 0; d < DT_COUNT; d++)
    if (ev(g, r->param_bytes_dt[d]) > 0) cJSON_AddNumberToObject(pb, dt_name((DType)d), ev(g, r->param_bytes_dt[d]));
  jnum(t, "fwd_flops", g, r->phase[PH_FWD].flops, true);
  jnum(t, "fwd_macs", g, r->phase[PH_FWD].macs, true);
  jnum(t, "fwd_transcendentals", g, r->phase[PH_FWD].transc, false);
  if (rp->train) {
    IrGraph *tg = rp->train->g;
    jnum(t, "train_flops", tg, rp->train->total.flops, true);
    jnum(t, "bwd_flops", tg, rp->train->phase[PH_BWD].flops, true);
    jnum(t, "opt_flops", tg, rp->train->phase[PH_OPT].flops, true);
    jnum(t, "train_macs", tg, rp->train->total.macs, false);
    double f = ev(tg, rp->train->phase[PH_FWD].flops);
    cJSON_AddNumberToObject(t, "bwd_fwd_ratio", f > 0 ? ev(tg, rp->train->phase[PH_BWD].flops) / f : 0);
    cJSON_AddNumberToObject(t, "train_time", rp->train->total.time);
  } else {
    cJSON_AddNullToObject(t, "train_flops");
  }
  jnum(t, "bytes", g, dim_add(g->dims, r->total.rd, r->total.wr), true);
  cJSON_AddNumberToObject(t, "time", r->total.time);
  cJSON_AddNumberToObject(t, "kernels", r->total.nkernels);
}

static void json_memory(cJSON *root, const CostResult *r) {
  IrGraph *g = r->g;
  cJSON *m = cJSON_AddObjectToObject(root, "memory");
  jnum(m, "weights", g, r->mem.weights, true);
  jnum(m, "grads", g, r->mem.grads, true);
  jnum(m, "optimizer", g, r->mem.optimizer, true);
  jnum(m, "activations", g, r->mem.activations, true);
  jnum(m, "inputs", g, r->mem.inputs, true);
  cJSON_AddNumberToObject(m, "peak", r->mem.peak);
  char buf[512];
  cJSON_AddStringToObject(m, "peak_formula", formula(g, r->mem.peak_dim, buf, sizeof buf));
  cJSON_AddNumberToObject(m, "peak_live", ev(g, r->mem.peak_dim));
  cJSON_AddNumberToObject(m, "peak_node", r->mem.peak_node);
  MemPlan mp;
  if (!memplan_build(g, NULL, &mp, NULL, buf, sizeof buf)) {
    cJSON_AddNumberToObject(m, "params_region", (double)mp.params_bytes);
    cJSON_AddNumberToObject(m, "io_region", (double)mp.io_bytes);
    cJSON_AddNumberToObject(m, "arena", (double)mp.arena_bytes);
  }
}

static char *json_report(const Report *rp, const Opts *o, Row *rows, int nrows) {
  IrGraph *g = rp->g;
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", rp->fwd->name);
  cJSON_AddStringToObject(root, "mode", o->train ? "train" : "inference");
  cJSON *dims = cJSON_AddObjectToObject(root, "dims");
  for (int i = 0; i < dim_sym_count(g->dims); i++)
    cJSON_AddNumberToObject(dims, dim_sym_name(g->dims, i), (double)dim_sym_value(g->dims, i));
  cJSON *tg = cJSON_AddObjectToObject(root, "target");
  cJSON_AddStringToObject(tg, "name", rp->hw.name);
  cJSON_AddStringToObject(tg, "kind", rp->hw.kind == HW_GPU ? "gpu" : "cpu");
  cJSON_AddNumberToObject(tg, "mem_bw", rp->hw.mem_bw);
  cJSON_AddNumberToObject(tg, "overhead", rp->hw.overhead_s);
  cJSON_AddNumberToObject(tg, "peak_f32", rp->hw.peak[HWP_F32]);
  cJSON_AddBoolToObject(tg, "measured", rp->hw.measured);
  if (rp->hw.measured_at[0]) cJSON_AddStringToObject(tg, "measured_at", rp->hw.measured_at);
  cJSON *rw = cJSON_AddArrayToObject(root, "rewrites");
  for (int i = 0; i < rp->log.n; i++) cJSON_AddItemToArray(rw, cJSON_CreateString(rp->log.msg[i]));
  json_totals(root, rp);
  json_memory(root, rp->r);
  if (rp->comm.ranks) report_comm_json(root, &rp->comm);
  if (rp->have_plan) drv_plan_cost_json(root, &rp->plan);
  if (rp->have_compiled) {
    const CgMemory *c = &rp->compiled;
    cJSON *cm = cJSON_AddObjectToObject(cJSON_GetObjectItem(root, "memory"), "compiled");
    cJSON_AddNumberToObject(cm, "params_region", (double)c->params_bytes);
    cJSON_AddNumberToObject(cm, "io_region", (double)c->io_bytes);
    cJSON_AddNumberToObject(cm, "arena",
                            (double)(o->train ? c->arena_bytes_train : c->arena_bytes_forward));
    int nt = rt_mem_threads(0);
    cJSON *pp = cJSON_AddObjectToObject(cJSON_GetObjectItem(root, "memory"), "process_peak");
    cJSON_AddNumberToObject(pp, "threads", nt);
    cJSON_AddNumberToObject(pp, "infer", (double)rt_mem_infer_peak(&c->fig, 0, nt));
    cJSON_AddNumberToObject(pp, "infer_per_sample", (double)c->fig.out_per_sample);
    if (o->train) cJSON_AddNumberToObject(pp, "train", (double)rt_mem_train_peak(&c->fig, 0, nt));
  }
  static const char *key[] = {"ops", "layers", "blocks"};
  cJSON *arr = cJSON_AddArrayToObject(root, key[o->per]);
  for (int i = 0; i < nrows; i++) cJSON_AddItemToArray(arr, json_row(&rows[i], g, o->per == COST_BY_OP));
  if (o->per != COST_BY_OP) {
    Row *ops;
    int n = make_rows(rp->r, COST_BY_OP, &ops);
    cJSON *oa = cJSON_AddArrayToObject(root, "ops");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(oa, json_row(&ops[i], g, true));
  }
  if (rp->tiles) {
    cJSON *ta = cJSON_AddArrayToObject(root, "tiles");
    for (int i = 0; i < g->nnodes; i++)
      if (rp->tiles->tiles[i].valid) cJSON_AddItemToArray(ta, json_tile(&rp->tiles->tiles[i], g, i));
  }
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  return s;
}

/* ---- text ----------------------------------------------------------------------------- */

/* one row per line, then a "total" row over every row (all rows, also with --top) */
static void print_csv(const Report *rp, Row *rows, int n, int nall) {
  IrGraph *g = rp->g;
  puts("name,op,shape,phase,params,flops,macs,bytes_read,bytes_written,intensity,bound,time_s");
  static const char *ph[] = {"fwd", "bwd", "opt"};
  double t[6] = {0};
  for (int i = 0; i < nall; i++) {
    const Row *w = &rows[i];
    double v[6] = {w->params, ev(g, w->flops), ev(g, w->macs), ev(g, w->rd), ev(g, w->wr), w->time};
    for (int k = 0; k < 6; k++) t[k] += v[k];
    if (i >= n) continue;
    printf("\"%s\",%s,\"%s\",%s,%.0f,%.0f,%.0f,%.0f,%.0f,%.6g,%s,%.6g\n", w->name, w->op, w->shape,
           w->node >= 0 ? ph[w->phase] : w->phases, v[0], v[1], v[2], v[3], v[4], w->intensity,
           w->compute_bound ? "compute" : "memory", v[5]);
  }
  double by = t[3] + t[4];
  printf("\"total\",,,,%.0f,%.0f,%.0f,%.0f,%.0f,%.6g,,%.6g\n", t[0], t[1], t[2], t[3], t[4],
         by > 0 ? t[1] / by : 0, t[5]);
}

static void print_table(const Report *rp, const Opts *o, Row *rows, int n) {
  IrGraph *g = rp->g;
  char b1[32], b2[32], b3[32], fb[512];
  int wn = 4;
  for (int i = 0; i < n; i++) wn = (int)fmax(wn, strlen(rows[i].name));
  if (wn > 40) wn = 40;
  double total = rp->r->total.time;
  bool by_op = o->per == COST_BY_OP;
  printf("%-*s  %-18s %-22s %9s %9s %9s %10s %8s %-7s %10s %6s%s\n", wn,
         by_op ? "name" : o->per == COST_BY_LAYER ? "layer" : "block", by_op ? "op" : "main op",
         by_op ? "shape" : "output", by_op ? "" : "params", "FLOPs", "MACs", "bytes", "FLOP/B",
         "bound", "time(us)", "%time", o->formula ? "  FLOPs formula" : "");
  for (int i = 0; i < n; i++) {
    const Row *w = &rows[i];
    char opcol[40], pb[32] = "";
    if (w->node < 0) snprintf(opcol, sizeof opcol, "%s (%d)", w->op, w->nodes);
    else snprintf(opcol, sizeof opcol, "%s", w->op);
    if (w->node < 0) drv_commas(w->params, pb, sizeof pb);
    printf("%-*.*s  %-18.18s %-22.22s %9s %9s %9s %10s %8.3g %-7s %10.2f %5.1f%%", wn, wn, w->name,
           opcol, w->shape, pb, drv_si(ev(g, w->flops), b1, sizeof b1),
           drv_si(ev(g, w->macs), b2, sizeof b2), drv_si(ev(g, w->rd) + ev(g, w->wr), b3, sizeof b3),
           w->intensity, w->compute_bound ? "compute" : "memory", w->time * 1e6,
           total > 0 ? 100 * w->time / total : 0);
    if (o->formula) printf("  %s", formula(g, w->flops, fb, sizeof fb));
    putchar('\n');
  }
}

static void print_figure(IrGraph *g, const char *label, Dim *d, bool bytes) {
  char f[512], v[48], h[32];
  dim_print(g->dims, d, f, sizeof f, DIM_PLAIN);
  double x = ev(g, d);
  if (bytes) drv_bytes_h(x, h, sizeof h);
  else drv_si(x, h, sizeof h);
  int64_t cv;
  if (dim_is_const(d, &cv)) printf("  %-22s %24s  (%s)\n", label, drv_commas(x, v, sizeof v), h);
  else printf("  %-22s %24s  (%s) = %s\n", label, drv_commas(x, v, sizeof v), h, f);
}

/* the expected peak of a built program's processes (rt_mem.h), on this host's thread count;
 * the GEMM packing buffers are known only once the kernels are generated (NAME info) */
static void print_process_peak(const RtMemFigures *f, bool training) {
  char v[64], h[32], b0[32];
  int nt = rt_mem_threads(0);
  double in = (double)rt_mem_infer_peak(f, 0, nt);
  printf("  %-22s %24s  (%s) + %s per sample: weights, io, forward arena, input staging, "
         "runtime (%d threads)\n",
         "process peak, infer", drv_commas(in, v, sizeof v), drv_bytes_h(in, h, sizeof h),
         drv_bytes_h((double)f->out_per_sample, b0, sizeof b0), nt);
  if (training) {
    double tr = (double)rt_mem_train_peak(f, 0, nt);
    printf("  %-22s %24s  (%s) + 8 B per sample: + optimizer state and training arena; the "
           "data set is mapped\n",
           "process peak, train", drv_commas(tr, v, sizeof v), drv_bytes_h(tr, h, sizeof h));
  }
  printf("  %-22s (plus each thread's GEMM packing buffers: `info` of the built program)\n", "");
}

static void print_summary(const Report *rp, const Opts *o) {
  IrGraph *g = rp->g;
  const CostResult *r = rp->r;
  printf("\ntotals (%s):\n", o->train ? "training step" : "inference");
  print_figure(g, "parameters", r->params_trainable, false);
  if (!dim_eq(r->params, r->params_trainable)) print_figure(g, "  + buffers", dim_sub(g->dims, r->params, r->params_trainable), false);
  print_figure(g, "forward FLOPs", r->phase[PH_FWD].flops, false);
  print_figure(g, "forward MACs", r->phase[PH_FWD].macs, false);
  if (rp->train) {
    IrGraph *tg = rp->train->g;
    print_figure(tg, "backward FLOPs", rp->train->phase[PH_BWD].flops, false);
    print_figure(tg, "optimizer FLOPs", rp->train->phase[PH_OPT].flops, false);
    print_figure(tg, "train step FLOPs", rp->train->total.flops, false);
    double f = ev(tg, rp->train->phase[PH_FWD].flops);
    if (f > 0) printf("  %-22s %24.3f\n", "backward/forward", ev(tg, rp->train->phase[PH_BWD].flops) / f);
  }
  print_figure(g, "bytes moved", dim_add(g->dims, r->total.rd, r->total.wr), true);
  printf("\nmemory:\n");
  print_figure(g, "weights", r->mem.weights, true);
  if (r->training) {
    print_figure(g, "gradients", r->mem.grads, true);
    print_figure(g, "optimizer state", r->mem.optimizer, true);
    print_figure(g, "saved activations", r->mem.activations, true);
  } else {
    print_figure(g, "activations (all)", r->mem.activations, true);
  }
  print_figure(g, "inputs", r->mem.inputs, true);
  char v[48], h[32], b0[32], b1[32], b2[32];
  MemPlan mp;
  if (!memplan_build(g, NULL, &mp, NULL, v, sizeof v))
    printf("  %-22s %24s  (%s) = params %s + io %s + arena %s\n", "peak (planned)",
           drv_commas(r->mem.peak, v, sizeof v), drv_bytes_h(r->mem.peak, h, sizeof h),
           drv_bytes_h((double)mp.params_bytes, b0, sizeof b0), drv_bytes_h((double)mp.io_bytes, b1, sizeof b1),
           drv_bytes_h((double)mp.arena_bytes, b2, sizeof b2));
  else
    printf("  %-22s %24s  (%s)\n", "peak (planned)", drv_commas(r->mem.peak, v, sizeof v),
           drv_bytes_h(r->mem.peak, h, sizeof h));
  if (rp->have_compiled) {
    const CgMemory *c = &rp->compiled;
    int64_t ar = r->training ? c->arena_bytes_train : c->arena_bytes_forward;
    double tot = (double)(c->params_bytes + c->io_bytes + ar);
    printf("  %-22s %24s  (%s) = params %s + io %s + arena %s (fused kernels",
           "compiled (nnc build)", drv_commas(tot, v, sizeof v), drv_bytes_h(tot, h, sizeof h),
           drv_bytes_h((double)c->params_bytes, b0, sizeof b0), drv_bytes_h((double)c->io_bytes, b1, sizeof b1),
           drv_bytes_h((double)ar, b2, sizeof b2));
    if (!r->training && c->packed_bytes > 0)
      printf("; of which %s of weights packed once", drv_bytes_h((double)c->packed_bytes, b0, sizeof b0));
    printf(")\n");
    print_process_peak(&c->fig, r->training);
  }
  char f[512];
  dim_print(g->dims, r->mem.peak_dim, f, sizeof f, DIM_PLAIN);
  int64_t cv;
  double lv = ev(g, r->mem.peak_dim);
  printf("  %-22s %24s  (%s)%s%s at %%%d\n", "live at the peak", drv_commas(lv, v, sizeof v),
         drv_bytes_h(lv, h, sizeof h), dim_is_const(r->mem.peak_dim, &cv) ? "" : " = ",
         dim_is_const(r->mem.peak_dim, &cv) ? "" : f, r->mem.peak_node);
  if (rp->have_plan) drv_plan_cost_text(&rp->plan, &rp->hw, o->top);
  else printf("\n(no compiled-step estimate: the CPU backend does not compile this model)\n");
  printf("graph-level roofline (algorithmic FLOPs, unfused bytes, one kernel per IR node): "
         "%.3f ms (%d nodes, %.1f us overhead each)\n", r->total.time * 1e3, r->total.nkernels,
         rp->hw.overhead_s * 1e6);
  if (!rp->hw.measured && !strcmp(rp->hw.name, "host")) printf("  (%s)\n", rp->hw.desc);
  if (rp->hw.measured)
    printf("  (figures used: peak FP32 %.1f GFLOP/s, DRAM %.1f GB/s, measured by nnc probe at %s)\n",
           rp->hw.peak[HWP_F32] / 1e9, rp->hw.mem_bw / 1e9,
           rp->hw.measured_at[0] ? rp->hw.measured_at : "an unrecorded time");
}

static void print_tiles(const Report *rp) {
  IrGraph *g = rp->g;
  printf("\ntiles on %s:\n", rp->hw.name);
  for (int i = 0; i < g->nnodes; i++) {
    const TileDecision *t = &rp->tiles->tiles[i];
    if (!t->valid) continue;
    printf("  %%%d %-24s %-18s M=%lld N=%lld K=%lld%s  %s, eff %.1f%%\n", i,
           g->nodes[i].name ? g->nodes[i].name : "", ir_op_name(g->nodes[i].op),
           (long long)t->gemm.m, (long long)t->gemm.n, (long long)t->gemm.k,
           t->gemm.batch > 1 ? arena_printf(g->arena, " x%lld", (long long)t->gemm.batch) : "",
           t->mma, 100 * t->eff);
    printf("      %s\n", t->reason);
    if (!t->aligned && !t->gpu && t->mma_k == 32) /* AMX tiles */
      printf("      not multiples of the AMX tile (M, N by 16, K by 32): padded to M=%lld N=%lld "
             "K=%lld (+%.1f%% FLOPs)\n", (long long)t->pad_m, (long long)t->pad_n,
             (long long)t->pad_k, 100 * t->pad_overhead);
    else if (!t->aligned)
      printf("      misaligned for %d-element (16-byte) rows: pad to M=%lld N=%lld K=%lld "
             "(+%.1f%% FLOPs)\n", t->align, (long long)t->pad_m, (long long)t->pad_n,
             (long long)t->pad_k, 100 * t->pad_overhead);
  }
}

static void print_text(const Report *rp, const Opts *o, Row *rows, int n) {
  IrGraph *g = rp->g;
  printf("model %s, %s, dims", rp->fwd->name, o->train ? "training step" : "inference");
  for (int i = 0; i < dim_sym_count(g->dims); i++)
    printf("%s %s=%lld", i ? "," : "", dim_sym_name(g->dims, i), (long long)dim_sym_value(g->dims, i));
  printf("; target %s (%s)\n", rp->hw.name, rp->hw.desc);
  for (int i = 0; i < rp->log.n; i++) printf("%s\n", rp->log.msg[i]);
  putchar('\n');
  print_table(rp, o, rows, n);
  print_summary(rp, o);
  if (rp->tiles) print_tiles(rp);
  if (rp->comm.ranks) report_comm_text(&rp->comm);
}

/* ---- main ----------------------------------------------------------------------------- */

static int list_targets(void) {
  printf("%-22s %-5s %10s %10s %10s  %s\n", "name", "kind", "f32 TF/s", "f16mm TF/s", "GB/s", "description");
  for (int i = 0; i < hw_builtin_count(); i++) {
    const HwTarget *t = hw_builtin(i);
    printf("%-22s %-5s %10.2f %10.2f %10.1f  %s\n", t->name, t->kind == HW_GPU ? "gpu" : "cpu",
           t->peak[HWP_F32] / 1e12, hw_peak(t, DT_F16, true) / 1e12, t->mem_bw / 1e9, t->desc);
  }
  printf("\n%-22s %10s %12s  %s\n", "link (--link)", "GB/s", "latency us", "description");
  for (int i = 0; i < hw_link_count(); i++) {
    const HwLink *l = hw_link(i);
    printf("%-22s %10.1f %12.1f  %s\n", l->name, l->bw / 1e9, l->latency * 1e6, l->desc);
  }
  return 0;
}

/* --compare takes 2..COMPARE_MAX_MODELS files and none of the single-model views */
static int parse_compare(int argc, char **argv, Opts *o) {
  int n = argc - optind;
  if (n < 2 || n > COMPARE_MAX_MODELS) {
    fprintf(stderr, "nnc cost: error: --compare takes 2 to %d .nn files, not %d\n",
            COMPARE_MAX_MODELS, n);
    return 2;
  }
  if (o->csv || o->svg || o->tiles || o->ranks || o->top || o->formula) {
    fprintf(stderr, "nnc cost: error: --compare prints one row per model; --csv, --svg, "
                    "--tiles, --ranks, --top and --formula apply to a single model\n");
    return 2;
  }
  if (o->measure && strcmp(o->target, "host")) {
    fprintf(stderr, "nnc cost: error: --measure runs the models on this machine: it needs "
                    "--target host, not '%s'\n", o->target);
    return 2;
  }
  o->files = argv + optind, o->nfiles = n;
  return 0;
}

/* --bucket-kib K: 0, or 2 after the error */
static int parse_bucket(const char *arg, Opts *o) {
  char *end;
  long long k = strtoll(arg, &end, 10);
  if (*end || k < 1 || k > (1LL << 30)) {
    fprintf(stderr, "nnc cost: error: --bucket-kib takes a positive number of KiB, not '%s'\n", arg);
    return 2;
  }
  o->bucket_bytes = (double)k * 1024;
  return 0;
}

static int parse(int argc, char **argv, Opts *o) {
  enum { O_TARGET = 256, O_TRAIN, O_PER, O_TOP, O_JSON, O_CSV, O_SVG, O_TILES, O_FORMULA, O_LIST,
         O_RANKS, O_LINK, O_COMPARE, O_THREADS, O_PREC, O_BUCKET, O_TARGET_CPU, O_MEASURE,
         O_NO_WINO };
  static const struct option opts[] = {
      {"define", required_argument, 0, 'D'}, {"model", required_argument, 0, 'M'},
      {"symbolic", required_argument, 0, 'Y'}, {"target", required_argument, 0, O_TARGET}, {"train", no_argument, 0, O_TRAIN},
      {"per", required_argument, 0, O_PER}, {"top", required_argument, 0, O_TOP},
      {"json", no_argument, 0, O_JSON}, {"csv", no_argument, 0, O_CSV},
      {"svg", required_argument, 0, O_SVG}, {"tiles", no_argument, 0, O_TILES},
      {"formula", no_argument, 0, O_FORMULA}, {"list-targets", no_argument, 0, O_LIST},
      {"ranks", required_argument, 0, O_RANKS}, {"link", required_argument, 0, O_LINK},
      {"compare", no_argument, 0, O_COMPARE}, {"threads", required_argument, 0, O_THREADS},
      {"precision", required_argument, 0, O_PREC}, {"bucket-kib", required_argument, 0, O_BUCKET},
      {"target-cpu", required_argument, 0, O_TARGET_CPU}, {"measure", no_argument, 0, O_MEASURE},
      {"no-winograd", no_argument, 0, O_NO_WINO},
      {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  optind = 1;
  o->target = "host";
  o->link = "ib-hdr";
  o->per = COST_BY_LAYER;
  while ((c = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
    int r = drv_common_opt(&o->in, c, optarg);
    if (r < 0) return 2;
    if (r) continue;
    switch (c) {
    case 'h': usage(stdout); return -1;
    case O_TARGET: o->target = optarg; break;
    case O_TRAIN: o->train = true; break;
    case O_NO_WINO: o->no_winograd = true; break;
    case O_PER:
      if (!strcmp(optarg, "op")) o->per = COST_BY_OP;
      else if (!strcmp(optarg, "layer")) o->per = COST_BY_LAYER;
      else if (!strcmp(optarg, "block")) o->per = COST_BY_BLOCK;
      else {
        fprintf(stderr, "nnc cost: error: --per takes op, layer or block, not '%s'\n", optarg);
        return 2;
      }
      break;
    case O_TOP: {
      char *end;
      long k = strtol(optarg, &end, 10);
      if (*end || k < 1) {
        fprintf(stderr, "nnc cost: error: --top takes a positive number, not '%s'\n", optarg);
        return 2;
      }
      o->top = (int)k;
      break;
    }
    case O_JSON: o->json = true; break;
    case O_CSV: o->csv = true; break;
    case O_SVG: o->svg = optarg; break;
    case O_TILES: o->tiles = true; break;
    case O_PREC: o->precision = optarg; break;
    case O_FORMULA: o->formula = true; break;
    case O_LIST: list_targets(); return -1;
    case O_RANKS: {
      char *end;
      long p = strtol(optarg, &end, 10);
      if (*end || p < 1 || p > COMM_MAX_RANKS) {
        fprintf(stderr, "nnc cost: error: --ranks takes a number of ranks in [1, %d], not '%s'\n",
                COMM_MAX_RANKS, optarg);
        return 2;
      }
      o->ranks = (int)p;
      break;
    }
    case O_LINK: o->link = optarg; break;
    case O_BUCKET: if (parse_bucket(optarg, o)) return 2; break;
    case O_THREADS: {
      char *end;
      long t = strtol(optarg, &end, 10);
      if (*end || t < 1 || t > 4096) {
        fprintf(stderr, "nnc cost: error: --threads takes a number of threads in [1, 4096], "
                        "not '%s'\n", optarg);
        return 2;
      }
      o->threads = (int)t;
      break;
    }
    case O_COMPARE: o->compare = true; break;
    case O_MEASURE: o->measure = true; break;
    case O_TARGET_CPU: o->target_cpu = optarg; break;
    default: usage(stderr); return 2;
    }
  }
  if (o->json && o->csv) {
    fprintf(stderr, "nnc cost: error: --json and --csv exclude each other\n");
    return 2;
  }
  if (o->measure && !o->compare) {
    fprintf(stderr, "nnc cost: error: --measure applies to --compare\n");
    return 2;
  }
  if (o->compare) return parse_compare(argc, argv, o);
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  if (o->ranks && !o->train) {
    fprintf(stderr, "nnc cost: error: --ranks needs --train (it costs the training step's "
                    "gradient all-reduce)\n");
    return 2;
  }
  o->in.path = argv[optind];
  return 0;
}

/* --precision bf16: AMX tiles where the target CPU (--target-cpu, default the host) has them */
static void cost_amx(Opts *o) {
  LlvmTarget t = {.cpu = o->target_cpu};
  LlvmTargetInfo ti;
  char err[256];
  if (!o->precision || strcmp(o->precision, "bf16") || llvm_target_resolve(&t, &ti, err, sizeof err))
    return;
  o->amx = llvm_bf16_amx(&ti, 32, 32);
  llvm_target_info_free(&ti);
}

int cmd_cost(int argc, char **argv) {
  Opts o = {0};
  int rc = parse(argc, argv, &o);
  if (rc) return rc < 0 ? 0 : rc;
  cost_amx(&o);
  Report rp = {0};
  char err[512];
  if (hw_resolve(o.target, &rp.hw, err, sizeof err) ||
      hw_resolve_link(o.link, &rp.link, err, sizeof err)) {
    fprintf(stderr, "nnc cost: error: %s\n", err);
    return drv_target_status(o.target);
  }
  if (o.compare)
    return cost_compare(&(CompareOpts){.in = &o.in, .files = (const char *const *)o.files,
                                       .nfiles = o.nfiles, .train = o.train, .json = o.json,
                                       .hw = &rp.hw, .threads = o.threads, .measure = o.measure});
  Diag *d = diag_new(stderr);
  rp.m = drv_compile(&o.in, d, &rp.fwd);
  int status = rp.m ? 1 : drv_compile_status(&o.in); /* 2 for a -D usage error */
  if (rp.m && (analyse(&rp, &o) || cost_check(rp.r, d) || (rp.train && cost_check(rp.train, d)))) {
    ir_module_free(rp.m);
    rp.m = NULL;
  }
  diag_finish(d);
  diag_free(d);
  if (!rp.m) {
    drv_plan_cost_free(&rp.plan);
    return status;
  }
  Row *rows;
  int n = make_rows(rp.r, o.per, &rows), nall = n;
  if (o.top) {
    qsort(rows, (size_t)n, sizeof *rows, rows_by_time);
    if (n > o.top) n = o.top;
  }
  rc = 0;
  if (o.svg && report_svg(o.svg, rp.r, rp.fwd->name, err, sizeof err)) {
    fprintf(stderr, "nnc cost: error: %s\n", err);
    rc = 1;
  }
  if (o.json) {
    char *s = json_report(&rp, &o, rows, n);
    puts(s);
    free(s);
  } else if (o.csv) {
    print_csv(&rp, rows, n, nall);
  } else {
    print_text(&rp, &o, rows, n);
  }
  drv_plan_cost_free(&rp.plan);
  ir_module_free(rp.m);
  return rc;
}
