/* cost_plan.h — the estimate of a model's compiled step for `nnc cost`: the kernel plan of the
 * model as `nnc build` compiles it (training step fitted to its budget, codegen/plan/), and
 * the per-kernel estimate over it (codegen/plan/plan_cost.h). */
#ifndef NN_COST_PLAN_H
#define NN_COST_PLAN_H
#include <cjson/cJSON.h>
#include <stdbool.h>

#include "../codegen/plan/plan_cost.h"
#include "driver.h"

typedef struct DrvPlanCost {
  CgPlanCost c;       /* the kernels of the forward (or training-step) plan */
  char (*members)[160]; /* [c.nk] each kernel's member ops, "matmul+add+relu" */
  double footprint;   /* params + io + arena bytes of the step */
  bool gpu;           /* a GPU target: c's rows are the CUDA launch table's launches and
                         members their GEMM tiles */
} DrvPlanCost;

/* 0, or 1 when the model does not compile for the CPU backend (diagnostics to d); free with
 * drv_plan_cost_free either way. threads <= 0: all of hw's cores. winograd: the target's
 * Winograd convolutions (off: as `nnc build --no-winograd`). */
int drv_plan_cost(const DrvInput *in, const HwTarget *hw, bool train, int threads, bool winograd,
                  Diag *d, DrvPlanCost *out);
void drv_plan_cost_free(DrvPlanCost *pc);
/* the estimate and its slowest kernels (top of them; <= 0: twelve) as text, or as the
 * "estimate" object of root (every kernel, plan order) */
void drv_plan_cost_text(const DrvPlanCost *pc, const HwTarget *hw, int top);
void drv_plan_cost_json(cJSON *root, const DrvPlanCost *pc);
#endif
