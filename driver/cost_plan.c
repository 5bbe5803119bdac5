/* cost_plan.c — the compiled step's estimate for `nnc cost` (cost_plan.h). */
#include "cost_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "cuda_drv.h"

static void member_ops(const CgPlan *p, int ki, char *buf, size_t n) {
  const CgKernel *k = &p->k[ki];
  size_t w = 0;
  buf[0] = 0;
  if (k->kind == CGK_COPY) {
    snprintf(buf, n, "copy");
    return;
  }
  for (int m = 0; m < k->nmembers && w + 1 < n; m++) {
    const char *op = ir_op_name(p->g->nodes[k->members[m]].op);
    int r = snprintf(buf + w, n - w, "%s%s", m ? "+" : "", op);
    if (r < 0 || (size_t)r >= n - w) break;
    w += (size_t)r;
  }
}

/* a GPU target: the CUDA backend's plan and launch table for hw, estimated launch by
 * launch (plan_cost_gpu.h); members holds each GEMM launch's tile */
static int gpu_plan_cost(const DrvModel *dm, const HwTarget *hw, bool train, Diag *d, DrvPlanCost *out) {
  DrvCudaSource s;
  memset(&s, 0, sizeof s);
  int rc = drv_cuda_source_hw(dm, train, hw, &s, d);
  if (!rc) {
    char(*tiles)[96] = NULL;
    drv_cuda_cost(&s, train, &out->c, &tiles);
    const CgPlan *p = train ? &s.P.pt : &s.P.pf;
    out->gpu = true;
    out->footprint = (double)s.P.params_bytes + (double)s.P.io_bytes + (double)p->arena_bytes;
    out->members = xcalloc((size_t)(out->c.nk ? out->c.nk : 1), sizeof *out->members);
    for (int i = 0; i < out->c.nk; i++) snprintf(out->members[i], sizeof out->members[i], "%s", tiles[i]);
    free(tiles);
  }
  drv_cuda_source_free(&s);
  return rc;
}

int drv_plan_cost(const DrvInput *in, const HwTarget *hw, bool train, int threads, bool winograd,
                  Diag *d, DrvPlanCost *out) {
  memset(out, 0, sizeof *out);
  DrvBuildOptions bo = {.plan_only = true};
  DrvModel dm;
  int rc = drv_build_model(in, &bo, d, &dm);
  if (!rc && train && !dm.train) rc = 1;
  if (!rc && hw->kind == HW_GPU) {
    rc = gpu_plan_cost(&dm, hw, train, d, out);
    drv_model_free(&dm);
    return rc;
  }
  CgTarget target;
  llvm_backend_target(&target, 0, hw);
  target.winograd = winograd;
  CgModelPlan P = {0};
  if (!rc) rc = cg_model_plan(&P, dm.fwd, dm.train, &target, NULL, NULL, d) ? 1 : 0;
  if (!rc) {
    const CgPlan *p = train ? &P.pt : &P.pf;
    cg_model_cost(&P, train, hw, threads, &out->c);
    out->footprint = (double)P.params_bytes + (double)P.io_bytes + (double)p->arena_bytes;
    out->members = xcalloc((size_t)(p->nk ? p->nk : 1), sizeof *out->members);
    for (int ki = 0; ki < p->nk; ki++) member_ops(p, ki, out->members[ki], sizeof out->members[ki]);
  }
  cg_model_plan_free(&P);
  drv_model_free(&dm);
  return rc;
}

void drv_plan_cost_free(DrvPlanCost *pc) {
  cg_plan_cost_free(&pc->c);
  free(pc->members);
  pc->members = NULL;
}

/* kernel indices sorted by estimated time (insertion sort: plans have hundreds of kernels) */
static int *sorted(const CgPlanCost *c) {
  int *ix = xmalloc((size_t)(c->nk ? c->nk : 1) * sizeof *ix);
  for (int i = 0; i < c->nk; i++) {
    int j = i;
    for (; j > 0 && c->k[i].time > c->k[ix[j - 1]].time; j--) ix[j] = ix[j - 1];
    ix[j] = i;
  }
  return ix;
}

void drv_plan_cost_text(const DrvPlanCost *pc, const HwTarget *hw, int top) {
  const CgPlanCost *c = &pc->c;
  char f[32], b[32], s[32];
  if (pc->gpu)
    printf("\nestimated time on %s, compiled step (CUDA launch table, %d launches, %.1f us "
           "launch overhead each): %.3f ms\n  %s FLOP, %s read and written\n", hw->name, c->nk,
           hw->overhead_s * 1e6, c->time * 1e3, drv_si(c->flops, f, sizeof f),
           drv_bytes_h(c->bytes, b, sizeof b));
  else
    printf("\nestimated time on %s, compiled step (kernel plan, %d thread%s): %.3f ms\n"
           "  %d kernels, %s FLOP, %s read and written, %s scratch traffic (im2col, GEMM "
           "packing)\n", hw->name, c->threads, c->threads == 1 ? "" : "s", c->time * 1e3, c->nk,
           drv_si(c->flops, f, sizeof f), drv_bytes_h(c->bytes, b, sizeof b),
           drv_bytes_h(c->scratch, s, sizeof s));
  int n = top > 0 && top < c->nk ? top : c->nk < 12 ? c->nk : 12;
  printf("  %-*s %-24s %9s %10s %5s %5s %-7s %10s\n", pc->gpu ? 44 : 28,
         pc->gpu ? "launch (slowest first)" : "kernel (slowest first)",
         pc->gpu ? "tile" : "members", "FLOP", "bytes", "eff", "level", "bound", "estimate");
  int *ix = sorted(c);
  for (int i = 0; i < n; i++) {
    const CgKernelCost *k = &c->k[ix[i]];
    printf("  %-*.*s %-24.24s %9s %10s %4.0f%% %5s %-7s %8.2fus\n", pc->gpu ? 44 : 28, pc->gpu ? 44 : 28, k->name,
           pc->members[ix[i]], drv_si(k->flops, f, sizeof f),
           drv_bytes_h(k->rd + k->wr, b, sizeof b),
           100 * k->eff, cg_level_name(k->level), k->compute_bound ? "compute" : "memory",
           k->time * 1e6);
  }
  if (n < c->nk) printf("  ... %d more %s\n", c->nk - n, pc->gpu ? "launches" : "kernels");
  free(ix);
}

void drv_plan_cost_json(cJSON *root, const DrvPlanCost *pc) {
  const CgPlanCost *c = &pc->c;
  cJSON *e = cJSON_AddObjectToObject(root, "estimate");
  cJSON_AddStringToObject(e, "basis", pc->gpu ? "CUDA launch table" : "compiled kernel plan");
  cJSON_AddNumberToObject(e, "time", c->time);
  cJSON_AddNumberToObject(e, "threads", c->threads);
  cJSON_AddNumberToObject(e, "flops", c->flops);
  cJSON_AddNumberToObject(e, "bytes", c->bytes);
  cJSON_AddNumberToObject(e, "scratch_bytes", c->scratch);
  cJSON_AddNumberToObject(e, "footprint", pc->footprint);
  cJSON *arr = cJSON_AddArrayToObject(e, "kernels");
  for (int i = 0; i < c->nk; i++) {
    const CgKernelCost *k = &c->k[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddStringToObject(o, pc->gpu ? "tile" : "members", pc->members[i]);
    cJSON_AddNumberToObject(o, "flops", k->flops);
    cJSON_AddNumberToObject(o, "read", k->rd);
    cJSON_AddNumberToObject(o, "written", k->wr);
    cJSON_AddNumberToObject(o, "scratch", k->scratch);
    cJSON_AddNumberToObject(o, "efficiency", k->eff);
    cJSON_AddNumberToObject(o, "threads", k->threads);
    cJSON_AddStringToObject(o, "level", cg_level_name(k->level));
    cJSON_AddStringToObject(o, "bound", k->compute_bound ? "compute" : "memory");
    cJSON_AddNumberToObject(o, "t_compute", k->t_compute);
    cJSON_AddNumberToObject(o, "t_memory", k->t_memory);
    cJSON_AddNumberToObject(o, "t_scratch", k->t_scratch);
    cJSON_AddNumberToObject(o, "overhead", k->overhead);
    cJSON_AddNumberToObject(o, "time", k->time);
    cJSON_AddItemToArray(arr, o);
  }
}
