/* llvm_profile.c — what the LLVM backend emits for per-kernel profiling (rt_profile.h): the
 * timestamps an entry stores around its kernels when its RtModelBufs carries a `prof` table
 * (one untaken branch per kernel otherwise), and the descriptor's table of kernels with the
 * cost model's estimate of each (codegen/plan/plan_cost.h). */
#include <stdio.h>
#include <stdlib.h>

#include "../plan/plan_cost.h"
#include "llvm_emit.h"

void llvm_prof_mark(CgEmit *e, LLVMValueRef prof, int slot) {
  LLVMValueRef on = LLVMBuildICmp(e->b, LLVMIntNE, prof, LLVMConstPointerNull(e->ptr), "");
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(e->b));
  LLVMBasicBlockRef mark = LLVMAppendBasicBlockInContext(e->ctx, fn, "prof");
  LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(e->ctx, fn, "");
  LLVMBuildCondBr(e->b, on, mark, next);
  LLVMPositionBuilderAtEnd(e->b, mark);
  LLVMValueRef clk = LLVMGetNamedFunction(e->mod, "rt_prof_clock");
  LLVMTypeRef clk_ty = LLVMFunctionType(e->i64, NULL, 0, 0);
  if (!clk) clk = LLVMAddFunction(e->mod, "rt_prof_clock", clk_ty);
  LLVMValueRef now = LLVMBuildCall2(e->b, clk_ty, clk, NULL, 0, "");
  LLVMValueRef idx = cg_c64(e, slot);
  LLVMBuildStore(e->b, now, LLVMBuildGEP2(e->b, e->i64, prof, &idx, 1, ""));
  LLVMBuildBr(e->b, next);
  LLVMPositionBuilderAtEnd(e->b, next);
}

/* RtKernelInfo (rt_model.h) as an LLVM struct */
static LLVMTypeRef info_type(CgEmit *e) {
  LLVMTypeRef f[6] = {e->ptr, e->f64, e->f64, e->f64, e->f64, e->i32};
  return LLVMStructTypeInContext(e->ctx, f, 6, 0);
}

LLVMValueRef llvm_kernel_table(CgEmit *e, const CgModelPlan *P, bool train, const HwTarget *hw,
                               double *est_s) {
  const CgPlan *p = train ? &P->pt : &P->pf;
  *est_s = 0;
  if (!p->nk) return LLVMConstPointerNull(e->ptr);
  CgPlanCost one = {0}, all = {0};
  if (hw) {
    cg_model_cost(P, train, hw, 1, &one);
    cg_model_cost(P, train, hw, 0, &all);
    *est_s = all.time;
  }
  LLVMTypeRef it = info_type(e);
  LLVMValueRef *rows = xmalloc((size_t)p->nk * sizeof *rows);
  for (int ki = 0; ki < p->nk; ki++) {
    char name[96];
    cg_kernel_name(p, ki, name, sizeof name);
    const CgKernelCost *a = hw ? &all.k[ki] : NULL, *o = hw ? &one.k[ki] : NULL;
    LLVMValueRef v[6] = {llvm_cstr(e, name), LLVMConstReal(e->f64, a ? a->flops : 0),
                         LLVMConstReal(e->f64, a ? a->rd + a->wr : 0),
                         LLVMConstReal(e->f64, o ? o->time : 0),
                         LLVMConstReal(e->f64, a ? a->time : 0),
                         LLVMConstInt(e->i32, a && a->compute_bound, 0)};
    rows[ki] = LLVMConstNamedStruct(it, v, 6);
  }
  char nm[64];
  snprintf(nm, sizeof nm, "nnc.kernels.%s", train ? "train" : "forward");
  LLVMValueRef tab = LLVMAddGlobal(e->mod, LLVMArrayType2(it, (uint64_t)p->nk), nm);
  LLVMSetInitializer(tab, LLVMConstArray2(it, rows, (uint64_t)p->nk));
  LLVMSetGlobalConstant(tab, 1);
  LLVMSetLinkage(tab, LLVMPrivateLinkage);
  free(rows);
  cg_plan_cost_free(&one);
  cg_plan_cost_free(&all);
  return tab;
}
