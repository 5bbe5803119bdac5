/* llvm_emit.h — state shared by the LLVM model emitter (llvm_model.c) and the per-op
 * lowering (llvm_ops.c). Internal to codegen/llvm/.
 *
 * Every kernel of a plan becomes one internal function
 *     void k(ptr params, ptr io, ptr arena, ptr pool, i64 step, i64 seed)
 * that finds its operands at constant offsets from the three region bases; the entry
 * functions call the kernels in plan order.
 */
#ifndef NNC_LLVM_EMIT_H
#define NNC_LLVM_EMIT_H
#include <llvm-c/Core.h>

#include "../../passes/hw.h"
#include "../../passes/tiles.h"
#include "llvm_gemm.h"
#include "llvm_util.h"
#include "../plan/plan.h"

typedef struct CgGemmFn {
  char key[1024];
  LLVMValueRef fn;
  LlvmGemmBlocking blk;
} CgGemmFn;

typedef struct CgEmit {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, vd, vf, kfn_ty;
  int vl;
  const LlvmTargetInfo *ti;
  const HwTarget *hw;
  const CgPlan *p;
  const char *prefix; /* function names: <prefix>_k<index> */
  int kidx;
  LLVMValueRef fn;    /* function being built */
  LLVMValueRef params, io, arena, pool, step, seed; /* current kernel's arguments */
  LLVMValueRef hooks; /* the step's RtHooks * (rt_model.h), for sync_stats kernels */
  LLVMValueRef consts; /* the plan's folded constants: a read-only global, or NULL */
  CgGemmFn *gemms;
  int ngemm, capgemm;
  LlvmGemmBlocking gemm_blk; /* of the GEMM function gemm_fn returned last */
  int64_t pack_bytes;        /* the largest per-thread packing buffers of a GEMM call */
  bool bf16;                 /* GEMM inputs rounded to bf16 (--precision bf16) */
  int nglobals;
  int ntasks;         /* task functions so far: names depend on this module alone */
  Diag *d;            /* where lowering errors go */
  int epi_bad;        /* a member of the kernel's fused group with no lowering, or -1 */
} CgEmit;

typedef int (*LowerFn)(CgEmit *e, const CgKernel *k);

/* llvm_ops.c */
bool llvm_op_defined(OpKind op);
int llvm_lower_kernel(CgEmit *e, const CgKernel *k); /* body of the current kernel function */

/* f32 (scalar or vector) exp, log, tanh, sigmoid, the normal CDF Phi and GELU as inline f64
 * polynomial code, no libm calls (llvm_math.c; error bounds there) */
LLVMValueRef llvm_math_exp(CgEmit *e, LLVMValueRef x);
LLVMValueRef llvm_math_log(CgEmit *e, LLVMValueRef x);
LLVMValueRef llvm_math_tanh(CgEmit *e, LLVMValueRef x);
LLVMValueRef llvm_math_sigmoid(CgEmit *e, LLVMValueRef x);
LLVMValueRef llvm_math_phi(CgEmit *e, LLVMValueRef x);
LLVMValueRef llvm_math_gelu(CgEmit *e, LLVMValueRef x);

/* helpers (llvm_ops.c) */
LLVMValueRef cg_c64(CgEmit *e, int64_t v);
LLVMValueRef cg_ptr(CgEmit *e, int node);
LLVMValueRef cg_region_ptr(CgEmit *e, int region, int64_t offset);
/* a private constant C string (llvm_model.c) */
LLVMValueRef llvm_cstr(CgEmit *e, const char *s);

/* profiling (llvm_profile.c): at the builder's position, `if (prof) prof[slot] =
 * rt_prof_clock();` */
void llvm_prof_mark(CgEmit *e, LLVMValueRef prof, int slot);
/* the descriptor's RtKernelInfo table of the forward (or training-step) plan of P, with the
 * estimates on hw (zeros when hw is NULL); *est_s: the sum over all cores (0 without hw) */
LLVMValueRef llvm_kernel_table(CgEmit *e, const CgModelPlan *P, bool train, const HwTarget *hw,
                               double *est_s);
#endif
