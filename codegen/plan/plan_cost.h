/* plan_cost.h — the time of a compiled step, estimated kernel by kernel from the kernel plan
 * (plan.h) on a HwTarget. Backend-neutral: it reads only what the plan decided.
 *
 * Per kernel: the bytes it really moves (a fused group reads each outside operand once and
 * writes each stored value once; an in-place optimizer update reads and writes its parameter;
 * a copy reads and writes its bytes), its FLOPs (the cost rules of its members), the traffic
 * of its scratch (im2col unfolds), and for a GEMM or convolution on the CPU the packed GEMM
 * as the generator runs it (cg_cpu_gemm: the busiest thread's micro-tiles and its panel
 * packing at the probe's rates, which run before the FMAs and do not overlap them, and the
 * faults of its packing buffers). Then
 *   time = max(t_compute, bytes / bw) + t_scratch + overhead
 * where bw is the bandwidth of the smallest level that holds the data: a kernel's own
 * working set for activations, the whole step's footprint for the parameter region (touched
 * once a step, so the rest of the step has passed through the caches in between).
 * docs/cost-model.md ("The compiled step") derives it.
 */
#ifndef NNC_PLAN_COST_H
#define NNC_PLAN_COST_H
#include <stdbool.h>
#include <stddef.h>

#include "plan.h"

/* memory levels a kernel's bytes come from */
enum { CG_LEVEL_L1, CG_LEVEL_L2, CG_LEVEL_L3, CG_LEVEL_DRAM };

typedef struct CgKernelCost {
  char name[96];      /* "k3 gemm fc1" (cg_kernel_name) */
  double flops;       /* the members' FLOPs (docs/cost-model.md counting) */
  double rd, wr;      /* bytes read and written from memory (the plan's reads and writes) */
  double scratch;     /* bytes of scratch traffic: im2col unfold + GEMM packing */
  double eff;         /* fraction of the thread(s)' peak the compute reaches */
  int threads;        /* threads the kernel runs on */
  int level;          /* CG_LEVEL_* of its activations */
  double t_compute, t_memory, t_scratch, overhead, time; /* seconds */
  bool compute_bound;
} CgKernelCost;

typedef struct CgPlanCost {
  CgKernelCost *k; /* [nk], plan order */
  int nk;
  int threads;
  double flops, bytes, scratch, time; /* sums over the kernels */
} CgPlanCost;

/* One call of the CPU backend's packed GEMM (codegen/llvm/llvm_gemm.c) as the generator runs
 * it: C[M,N] = op(A) op(B) in MR x NR micro-tiles (MR rows, NR vectorized columns), B packed
 * in KC x NC panels, A in MC x KC blocks once per NC panel; the output cut into one slice per
 * thread along N (NR multiples) when it has at least as many column tiles as row tiles, else
 * along M; one thread below 2^21 multiply-adds. The busiest thread's work and time. */
typedef struct CgGemmShape {
  int64_t m, n, k;
  int mr, nr, kc, nc;      /* the generator's blocking (mr rows, nr columns) */
  bool a_strided;          /* op(A)'s rows are not adjacent in memory (A stored M x K) */
  bool b_strided;          /* op(B)'s columns are not and are gathered (from an image: an
                              implicit-GEMM convolution, or its unfold's transpose) */
  bool b_transposed;       /* op(B) is stored N x K (a dense layer's weight): its panels are
                              transposed in registers (llvm_gemm.c pack_transposed_blocks) */
  bool packed_a, packed_b; /* that operand's panels are packed once per program, not here */
  double lat_eff;          /* the micro-kernel's fraction of the peak when the target has no
                              measured gemm_ukr_eff (the tiles pass's FMA-latency factor) */
} CgGemmShape;
typedef struct CgGemmRun {
  int threads;             /* threads the call runs on */
  bool split_n;            /* the slices cut N (else M) */
  double tiles;            /* micro-tiles of the busiest slice */
  double pack_a, pack_b;   /* elements that slice packs (panels padded to MR / NR) */
  double t_fma, t_pack;    /* its micro-kernel and packing time, s */
  double share;            /* micro-tiles that use each panel of a packed-once operand (B:
                              the slice's tiles down M; A: across a panel of NC columns), 1
                              without one */
} CgGemmRun;
void cg_cpu_gemm(const HwTarget *hw, const CgGemmShape *s, int threads, CgGemmRun *out);
/* how a GEMM operand's panels are packed */
typedef enum CgPack {
  CG_PACK_ADJACENT,   /* rows adjacent in memory: a vector copy per k */
  CG_PACK_GATHER,     /* strided rows: a value per row and k */
  CG_PACK_TRANSPOSED, /* rows contiguous along k: blocks transposed in registers */
} CgPack;
/* packing rate of one thread, bytes of panel per second: the probe's pack_bw,
 * pack_strided_bw and pack_transposed_bw; unmeasured, L2's bandwidth of one core for adjacent
 * and transposed rows, one element per CG_PACK_STRIDED_CYCLES at the clock for gathers */
double cg_pack_rate(const HwTarget *hw, CgPack how);

/* bandwidth of a memory level for `threads` threads: the probe's cache figures are for all
 * cores, and the private caches and L3's ports scale with the cores used; DRAM gives one
 * thread the probe's one-thread triad (mem_bw_1t), t threads t times that up to mem_bw (one
 * thread draws all of mem_bw when mem_bw_1t is unknown) */
double cg_level_bw(const HwTarget *hw, int level, int threads);

/* the estimate of every kernel of p on hw with `threads` threads (1..hw->cores; <= 0: all
 * cores); footprint: bytes of params + io + arena the step touches (for the parameter
 * region's level). Free with cg_plan_cost_free. */
void cg_plan_cost(const CgPlan *p, const HwTarget *hw, int threads, double footprint,
                  CgPlanCost *out);
void cg_plan_cost_free(CgPlanCost *c);
/* cg_plan_cost of a model's forward (train false) or training-step plan, its footprint the
 * model's params and io regions and that plan's arena */
void cg_model_cost(const CgModelPlan *P, bool train, const HwTarget *hw, int threads,
                   CgPlanCost *out);
/* the name of kernel ki: "k<i> <kind> <the name of its output or op>" */
void cg_kernel_name(const CgPlan *p, int ki, char *buf, size_t n);
const char *cg_level_name(int level);
/* kernel ki's bytes read and written (param_bytes: those of the params region), and its
 * FLOPs and transcendental evaluations, as the estimate counts them (for other models of
 * the same plan: plan_cost_gpu.h) */
void cg_kernel_traffic(const CgPlan *p, int ki, double *rd, double *wr, double *param_bytes);
void cg_kernel_work(const CgPlan *p, int ki, double *flops, double *transc);
#endif
