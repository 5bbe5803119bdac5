/* plan_cost_gpu.c — per-launch time of a compiled step on a GPU (plan_cost_gpu.h). */
#include "plan_cost_gpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the fraction of the FMA (or FP64) peak an elementwise or node kernel issues: adds and
 * multiplies separately, as plan_cost.c assumes for the CPU */
#define CG_GPU_EW_EFF 0.5

static bool is_gemm_launch(const CgPlan *p, const CgGpuLaunch *l) {
  if (l->kernel < 0) return false;
  const CgKernel *k = &p->k[l->kernel];
  return l->gemm && l->part == 0 && k->tile && k->tile->gpu;
}

/* the peak of the units a launch runs on */
static double launch_peak(const CgPlan *p, const HwTarget *hw, const CgGpuLaunch *l, bool gemm) {
  const CgKernel *k = &p->k[l->kernel];
  if (gemm) {
    const TileGemm *g = &k->tile->gemm;
    if (g->tf32 && hw->peak[HWP_TF32_TC] > 0) return hw->peak[HWP_TF32_TC];
    return hw_peak(hw, g->dt, g->dt == DT_F16 || g->dt == DT_BF16);
  }
  if (k->kind == CGK_NODE || k->kind == CGK_CONV) return hw_peak(hw, DT_F64, false);
  return hw_peak(hw, DT_F32, false);
}

/* bytes of a launch: its kernel's reads and writes, the split-K workspace between the two */
static void launch_bytes(const CgPlan *p, const CgGpuLaunch *l, CgKernelCost *c) {
  double rd = 0, wr = 0, param = 0;
  cg_kernel_traffic(p, l->kernel, &rd, &wr, &param);
  if (l->work <= 0) {
    c->rd = rd, c->wr = wr;
  } else if (l->part == 0) { /* partial sums to the workspace */
    c->rd = rd, c->wr = (double)l->work;
  } else { /* the reduction: the workspace in, C (and bias) out */
    c->rd = (double)l->work, c->wr = wr;
  }
}

/* a launch outside the plan's kernels: its bytes at the bandwidth of the SMs it occupies */
static void extra_cost(const HwTarget *hw, const CgGpuLaunch *l, double used, CgKernelCost *c) {
  snprintf(c->name, sizeof c->name, "%.60s (loss scaling)", l->name);
  c->rd = (double)l->bytes;
  c->t_memory = c->rd / (hw->mem_bw * used);
  c->overhead = hw->overhead_s;
  c->time = c->t_memory + c->overhead;
}

static void launch_cost(const CgPlan *p, const HwTarget *hw, const CgGpuLaunch *l, CgKernelCost *c) {
  memset(c, 0, sizeof *c);
  double blocks = (double)l->grid[0] * l->grid[1] * l->grid[2];
  double sms = hw->sm_count > 0 ? hw->sm_count : 1, used = fmin(blocks, sms) / sms;
  c->threads = (int)fmin(blocks, 2147483647.0);
  c->level = CG_LEVEL_DRAM;
  if (l->kernel < 0) {
    extra_cost(hw, l, used > 0 ? used : 1 / sms, c);
    return;
  }
  const CgKernel *k = &p->k[l->kernel];
  char what[96];
  cg_kernel_name(p, l->kernel, what, sizeof what);
  snprintf(c->name, sizeof c->name, "%.40s (%.50s)", l->name, what);
  launch_bytes(p, l, c);
  double transc = 0;
  if (k->kind != CGK_COPY) cg_kernel_work(p, l->kernel, &c->flops, &transc);
  bool gemm = is_gemm_launch(p, l);
  if (l->part == 1) /* the reduction adds split_k slices of M x N */
    c->flops = k->tile ? (double)l->work / 4 : 0, transc = 0;
  c->eff = gemm ? k->tile->eff : CG_GPU_EW_EFF * used;
  double work = c->flops + 12.0 * transc; /* plan_cost.c's transcendental weight */
  double peak = launch_peak(p, hw, l, gemm);
  c->t_compute = work > 0 && c->eff > 0 ? work / (c->eff * peak) : 0;
  c->t_memory = (c->rd + c->wr) / (hw->mem_bw * (gemm ? 1 : used));
  c->overhead = hw->overhead_s;
  c->compute_bound = c->t_compute >= c->t_memory;
  c->time = fmax(c->t_compute, c->t_memory) + c->overhead;
}

void cg_gpu_cost(const CgPlan *p, const HwTarget *hw, const CgGpuLaunch *l, int n, CgPlanCost *out) {
  memset(out, 0, sizeof *out);
  out->threads = hw->sm_count;
  out->nk = n;
  out->k = xcalloc((size_t)(n > 0 ? n : 1), sizeof *out->k);
  for (int i = 0; i < n; i++) {
    CgKernelCost *c = &out->k[i];
    launch_cost(p, hw, &l[i], c);
    out->flops += c->flops;
    out->bytes += c->rd + c->wr;
    out->time += c->time;
  }
}

void cg_gpu_tile_str(const CgPlan *p, const CgGpuLaunch *l, char *buf, size_t n) {
  buf[0] = 0;
  if (!is_gemm_launch(p, l)) return;
  const TileDecision *t = p->k[l->kernel].tile;
  char sk[32] = "";
  if (t->split_k > 1) snprintf(sk, sizeof sk, " sk%d", t->split_k);
  snprintf(buf, n, "%dx%dx%d %dw %dst%s %s%s", t->bm, t->bn, t->bk, t->warps, t->stages, sk,
           t->gemm.tf32 ? "tf32 " : "", t->mma ? t->mma : "fma");
}
