/* plan_cost_gpu.h — the time of a compiled step on a GPU, launch by launch, from the kernel
 * plan and the launch table a GPU backend built from it (codegen/cuda/cuda_plan.h).
 *
 * Per launch: the bytes its plan kernel moves (plan_cost.h's counting; a split-K GEMM's main
 * launch writes its partial sums to the workspace instead of C and its reduction reads them
 * back), its FLOPs, and the peak of the units it runs on: tensor cores for TF32 (the tile
 * decision's tf32) and 16-bit operands, the FP32 FMA pipes for f32 GEMMs and elementwise
 * groups, the FP64 pipes for node kernels (their accumulators are double). A GEMM reaches the
 * tiles pass's modeled efficiency (waves per SM occupancy, edge tiles, split-K, the shared-
 * memory limit: TileDecision.eff); any other launch reaches half of its peak on the SMs its
 * blocks occupy, and draws DRAM bandwidth in the same proportion (a launch of B blocks uses
 * min(B, SMs) of them). Then
 *   time = max(flops / (eff x peak x sms_used/SMs), bytes / (bw x sms_used/SMs)) + launch
 * with launch the target's per-kernel overhead (3 us on the built-in GPUs). docs/cuda.md. */
#ifndef NNC_PLAN_COST_GPU_H
#define NNC_PLAN_COST_GPU_H
#include "plan_cost.h"

/* one launch of a GPU backend's table, in execution order */
typedef struct CgGpuLaunch {
  const char *name;
  int kernel;   /* the plan kernel it runs, or -1 (see bytes) */
  int part;     /* 0: the kernel's launch; 1: a split-K GEMM's reduction */
  bool gemm;    /* the kernel runs as a tiled GEMM (its tile decision's); direct kernels not */
  int64_t work; /* split-K workspace bytes the GEMM's partial sums take (0 otherwise) */
  int64_t bytes; /* kernel -1: a launch outside the plan's kernels (f16 loss scaling), and
                    the bytes it reads and writes; it does no counted FLOPs */
  unsigned grid[3], block[3];
  size_t smem;
} CgGpuLaunch;

/* the estimate of every launch of l[0..n) of plan p on GPU hw: out->k[i] is launch i (its
 * name "NAME (kI kind what)", threads = blocks, level DRAM); out->nk = n. Free with
 * cg_plan_cost_free. */
void cg_gpu_cost(const CgPlan *p, const HwTarget *hw, const CgGpuLaunch *l, int n, CgPlanCost *out);
/* the tile of a GEMM launch as "BMxBNxBK Ww Sst[ skK] [tf32 ]MMA" (block tile, warps,
 * pipeline stages, split-K slices, MMA shape or fma); "" for any other launch */
void cg_gpu_tile_str(const CgPlan *p, const CgGpuLaunch *l, char *buf, size_t n);
#endif
