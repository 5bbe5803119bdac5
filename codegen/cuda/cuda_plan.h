/* cuda_plan.h — the CUDA backend on the kernel plan (codegen/plan/): its CgTarget, and the
 * generator that turns a CgPlan into one CUDA C translation unit plus a launch table.
 *
 * Every plan kernel becomes one or two `extern "C" __global__` functions taking one
 * NncBufs by value (the params, io, arena and split-K workspace base pointers, the step and
 * the seed); all offsets, shapes and constants are literals in the kernel text. The launch
 * table lists, in execution order, each launch's kernel name, grid, block and dynamic
 * shared memory: a host runs a graph by launching the table's entries in order (on the
 * device through runtime/rt_cuda.c, on the CPU through cuda_emu.h). docs/cuda.md. */
#ifndef NN_CUDA_PLAN_H
#define NN_CUDA_PLAN_H
#include <stdbool.h>
#include <stdio.h>

#include "../plan/plan.h"
#include "../plan/plan_cost_gpu.h"
#include "cuda_gen.h"

typedef struct CudaPlanLaunch {
  char name[96];
  CudaLaunch l;
  int kernel;   /* the plan kernel it runs; -1: loss scaling, outside the plan's kernels */
  int part;     /* 0, or 1 for a split-K GEMM's reduction */
  bool gemm;    /* a tiled GEMM (the kernel's tile decision) */
  int64_t work; /* the split-K workspace bytes of the GEMM (0 without split-K) */
  int64_t bytes; /* kernel -1 (loss scaling): the bytes it reads and writes */
} CudaPlanLaunch;

/* sync-bn (cuda_syncbn.c): before launch `before`, the host sums the n doubles at byte off of
 * the workspace (NncBufs.work) over the processes; a single process skips it */
typedef struct CudaPlanSum {
  int before;
  int64_t off, n;
} CudaPlanSum;

typedef struct CudaPlanTable {
  CudaPlanLaunch *v;
  int n, cap;
  int64_t work_bytes; /* the split-K workspace the launches need (NncBufs.work) */
  CudaPlanSum *sums;  /* in launch order */
  int nsums, capsums;
} CudaPlanTable;

/* the CUDA target: ops with a CUDA lowering, f32/i32 values, implicit-GEMM convolutions,
 * warps of 32, tiles for hw (NULL: plan without tiles; GEMMs then cannot be emitted) */
void cuda_backend_target(CgTarget *t, const HwTarget *hw);
/* "cuda" or "cuda:sm_XX" (XX in 80, 86, 89, 90): the arch for NVRTC ("sm_80") and the
 * builtin hardware whose tiles the kernels use; -1 with err filled otherwise */
int cuda_target_parse(const char *spec, char *arch, size_t archn, const HwTarget **hw, char *err,
                      size_t errn);

/* The tiles pass's decisions for a model's graphs on hw at precision prec (--precision):
 * with tf32 the f32 GEMMs' tiles are chosen for TF32 tensor cores (m16n8k8 mma.sync, operands
 * rounded to TF32); with bf16/f16 for m16n8k16 tensor cores with the f32 operands rounded to
 * the 16-bit type on their way into shared memory (TileGemm.f32_in); f32 accumulation in
 * every case. Pass them to cg_model_plan; free with cuda_tiles_free after the plan. */
typedef struct CudaTiles {
  Arena *a;
  const TilePlan *fwd, *train;
} CudaTiles;
void cuda_tiles_plan(CudaTiles *t, IrGraph *fwd, IrGraph *train, const HwTarget *hw, CudaPrec prec);
void cuda_tiles_free(CudaTiles *t);
/* the f32 GEMM-like decisions of tp chosen again at prec (as cuda_tiles_plan does) */
void cuda_tiles_precision(TilePlan *tp, const HwTarget *hw, CudaPrec prec);

/* The kernels of plan p, named PREFIX_kI[_...], appended to out and to tab. -1 after a
 * diagnostic naming the node and op a kernel cannot be built for. */
int cuda_plan_emit(FILE *out, const CgPlan *p, const char *prefix, CudaPlanTable *tab, Diag *d);
void cuda_plan_table_free(CudaPlanTable *t);
/* what a launch is, for the cost model: of plan kernel `kernel` (-1: loss scaling, outside
 * the plan's kernels); part 1 is a split-K reduction; work its workspace; bytes what a
 * launch outside the plan moves */
typedef struct CudaLaunchOf {
  int kernel, part;
  bool gemm;
  int64_t work, bytes;
} CudaLaunchOf;
/* buf = PREFIX_kI + suffix; false when it does not fit (names are never truncated) */
static inline bool cuda_kernel_name(char *buf, size_t n, const char *prefix, int ki, const char *suffix) {
  int r = snprintf(buf, n, "%s_k%d%s", prefix, ki, suffix);
  return r >= 0 && (size_t)r < n;
}
/* appends a launch (-1: out of memory, or a name that does not fit) */
int cuda_plan_table_add(CudaPlanTable *t, const char *name, const CudaLaunch *l, CudaLaunchOf of);
/* the launches of GEMM cg (of plan kernel `kernel`) over a batch of m×n products (and its
 * split-K reduction), raising the table's workspace to what split-K needs; -1 as
 * cuda_plan_table_add */
int cuda_plan_gemm_add(CudaPlanTable *tab, const CudaGemm *cg, int64_t m, int64_t n, int64_t batch, int kernel);
/* The whole source of a model: prelude, forward kernels (prefix NAME_fwd), training-step
 * kernels when train and P has them (NAME_train), and for the host emulation the launch
 * tables as arrays NAME_fwd_launches / NAME_train_launches of NncEmuLaunch (under
 * NNC_CUDA_EMU). */
int cuda_model_source(FILE *out, const CgModelPlan *P, const char *name, bool train,
                      CudaPlanTable *fwd, CudaPlanTable *trn, Diag *d);
/* the table as the cost model's launches (plan_cost_gpu.h); l[t->n], names borrowed */
void cuda_plan_launches(const CudaPlanTable *t, CgGpuLaunch *l);
/* f16 loss scaling in the training step (docs/cuda.md "Loss scaling"): backward GEMMs
 * multiply their gradient operand by the scale before rounding it to f16 and divide the f32
 * product by it; after the backward pass, a gradient with inf or NaN skips the optimizer
 * kernels; dynamic: the scale halves after such a step and doubles after CUDA_LS_GROWTH good
 * steps in a row. The state (magic, scale, good steps, this step's flag: four 32-bit words)
 * lies in the params region after the tensor table's tensors, at cuda_loss_scale_offset. */
typedef struct CudaLossScale {
  bool on, dynamic;
  float init; /* initial (dynamic) or fixed (static) scale, a power of two */
} CudaLossScale;
enum { CUDA_LS_GROWTH = 2000 };
int64_t cuda_loss_scale_offset(const CgModelPlan *P);
/* the params region's bytes with the loss-scale state (P->params_bytes without) */
int64_t cuda_params_bytes(const CgModelPlan *P, const CudaLossScale *ls);
/* cuda_model_source with loss scaling in the training step (ls NULL or off: none) */
int cuda_model_source_ls(FILE *out, const CgModelPlan *P, const char *name, bool train, CudaPlanTable *fwd,
                         CudaPlanTable *trn, const CudaLossScale *ls, Diag *d);
/* the launch table as a C comment block (nnc emit --emit=cuda) */
void cuda_plan_table_print(FILE *out, const CudaPlanTable *t, const char *title);

/* a gradient: a value of the backward pass that is not a forward value recomputed there (the
 * operand a backward GEMM scales by the f16 loss scale) */
bool cuda_plan_is_gradient(const CgPlan *p, int node);

/* ---- node kernels (cuda_ops.c) ---------------------------------------------------------- */
/* the device functions node kernels call (part of the source once) */
const char *cuda_ops_text(void);
/* true when op has a single-node CUDA lowering */
bool cuda_op_defined(int op);
/* one node kernel (CGK_NODE or CGK_CONV) named name; fills its launch (grid[0] 0: nothing to
 * launch) and raises *work to the workspace bytes it needs. -1 after a diagnostic */
int cuda_node_emit(FILE *out, const CgPlan *p, const CgKernel *k, const char *name, CudaLaunch *l,
                   int64_t *work, Diag *d);
/* "(T *)(b.REGION + OFFSET)" for node i's storage */
void cuda_ptr_expr(char *buf, size_t n, const CgPlan *p, int node, const char *type);

/* ---- synchronized batchnorm (cuda_syncbn.c) ------------------------------------------------ */
/* sync_stats plan kernel ki (cg_plan_sync_stats) as launches PREFIX_kI_s0, _s1, ... with the
 * table's sums between them, raising its workspace to the statistics' doubles; -1 after a
 * diagnostic */
int cuda_syncbn_emit(FILE *o, const CgPlan *p, const CgKernel *k, const char *prefix, int ki, CudaPlanTable *tab,
                     Diag *d);

/* ---- convolutions (cuda_conv.c) ---------------------------------------------------------- */
/* one input channel per group: direct kernels rather than implicit GEMMs */
bool cuda_conv_depthwise(const CgConv *c);
/* conv plan kernel ki (forward, backward-data or backward-filter) as PREFIX_kI_gemm (implicit
 * GEMM with the node's tile decision, groups as the batch; at ls_off >= 0, f16 loss scaling,
 * the gradient operand dy scaled before rounding), PREFIX_kI_dw (depthwise) or, past 32-bit
 * indices or without a GPU tile decision, the direct kernel PREFIX_kI; -1 after a diagnostic */
int cuda_conv_emit(FILE *o, const CgPlan *p, const CgKernel *k, const char *prefix, int ki, CudaPlanTable *tab,
                   int64_t ls_off, Diag *d);
#endif
