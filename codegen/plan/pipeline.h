/* pipeline.h — the backend-neutral half of compiling a model: the training step (with the
 * train section), rematerialized to fit a memory budget measured on the kernel plan's own
 * memory (plan.h), never by emitting code. A backend then emits fwd and out->train once.
 */
#ifndef NNC_PIPELINE_H
#define NNC_PIPELINE_H
#include "../../passes/remat.h"
#include "plan.h"

typedef struct CgPipeOptions {
  int64_t memory_budget; /* bytes; 0: the train section's `memory` line (or none) */
  RematMode remat;       /* how a budget is met */
  bool remat_given;      /* chosen explicitly: an error without a budget */
  const char *path;      /* the .nn file, for file-level diagnostics */
} CgPipeOptions;

typedef struct CgPipeline {
  IrTrain *t;          /* the model's train section, or NULL */
  IrGraph *train;      /* its training step as it will be compiled, or NULL */
  int64_t budget;      /* 0: none */
  int64_t plan_budget; /* what remat was asked for: the budget less the plan's overshoot */
  int64_t need;        /* with a budget: the expected peak of a one-thread training process
                          (rt_mem.h) without the GEMM packing buffers */
  int64_t step;        /* with a budget: params + io + training arena of the compiled step */
  bool fitted;         /* remat ran for a budget; pl is its plan */
  RematPlan pl;
} CgPipeline;

/* 0, or -1 after a diagnostic. The graphs live in fwd's module. */
int cg_pipeline_train(IrModule *m, IrGraph *fwd, const CgTarget *target, const CgPipeOptions *o,
                      CgPipeline *out, Diag *d);
#endif
