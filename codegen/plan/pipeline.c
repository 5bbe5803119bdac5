/* pipeline.c — the training step of a model, fitted to its memory budget (pipeline.h).
 *
 * The budget bounds the expected peak of a one-thread training process (runtime/rt_mem.h:
 * the step's regions and arena, the runtime's 4 MiB and 1 MiB for the thread; the thread's
 * GEMM packing buffers, known once the kernels are generated, come on top), so remat is
 * first asked for the budget less the runtime's allowance. remat plans the unfused step
 * (passes/memplan.c); the backend fuses and orders kernels itself, so the plan's arena can
 * differ a little from the planner's: the planner's budget is lowered by any overshoot until
 * the kernel plan fits. Each round costs one remat pass and one kernel plan, no code
 * generation.
 */
#include <string.h>

#include "pipeline.h"

enum { FIT_ROUNDS = 9 };

/* rematerialize train0 until the kernel plan of the step fits o->budget */
static int fit_budget(IrGraph *fwd, IrGraph *train0, const TrainInfo *info, const CgTarget *target,
                      const CgPipeOptions *o, CgPipeline *out, Diag *d) {
  int64_t allowance = RT_MEM_RUNTIME_BYTES + RT_MEM_THREAD_BYTES;
  out->plan_budget = out->budget - allowance;
  for (int round = 0;; round++) {
    if (pass_remat(train0, info, &(RematOptions){o->remat, out->plan_budget}, &out->pl)) {
      diag_error_file(d, o->path, "%s (the step gets the budget less the runtime's %lld "
                      "bytes: add them to the figures above)", out->pl.msg, (long long)allowance);
      return -1;
    }
    out->train = out->pl.g;
    out->fitted = true;
    CgMemory mem;
    if (cg_model_memory(fwd, out->train, target, &mem, d)) return -1;
    out->step = mem.params_bytes + mem.io_bytes + mem.arena_bytes_train;
    out->need = rt_mem_train_peak(&mem.fig, 0, 1);
    if (out->need <= out->budget) return 0;
    /* only `optimal` trades more recomputation for a lower budget */
    if (round == FIT_ROUNDS - 1 || o->remat != REMAT_OPTIMAL) {
      diag_error_file(d, o->path, "a training process is expected to need %lld bytes (the "
                      "compiled step %lld, the runtime and one thread), above the budget of "
                      "%lld bytes", (long long)out->need, (long long)out->step,
                      (long long)out->budget);
      return -1;
    }
    out->plan_budget -= out->need - out->budget + 4096;
  }
}

int cg_pipeline_train(IrModule *m, IrGraph *fwd, const CgTarget *target, const CgPipeOptions *o,
                      CgPipeline *out, Diag *d) {
  memset(out, 0, sizeof *out);
  out->t = ir_module_find_train(m, fwd->name);
  out->budget = o->memory_budget ? o->memory_budget : out->t ? out->t->memory_budget : 0;
  if (!out->t) return 0;
  TrainInfo info;
  IrGraph *train0 = out->train = pass_train_graph(fwd, out->t, &info, d);
  if (!train0) return -1;
  if (o->remat_given && o->remat != REMAT_NONE && out->budget <= 0) {
    diag_error_file(d, o->path, "--remat %s needs a budget: --memory SIZE or a `memory` line in "
                    "the train section", remat_mode_name(o->remat));
    return -1;
  }
  /* a budgeted program keeps no packed copy of its weights (llvm_model_emit: neither) */
  CgTarget lean = *target;
  lean.prepack = false;
  return out->budget > 0 ? fit_budget(fwd, train0, &info, &lean, o, out, d) : 0;
}
