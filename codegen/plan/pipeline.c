/* pipeline.c — the training step of a model, fitted to its memory budget (pipeline.h).
 *
 * remat plans the unfused step (passes/memplan.c); the backend fuses and orders kernels
 * itself, so the plan's arena can differ a little from the planner's: the planner's budget
 * is lowered by any overshoot until the kernel plan fits. Each round costs one remat pass
 * and one kernel plan, no code generation.
 */
#include <string.h>

#include "pipeline.h"

enum { FIT_ROUNDS = 9 };

/* rematerialize train0 until the kernel plan of the step fits o->budget */
static int fit_budget(IrGraph *fwd, IrGraph *train0, const TrainInfo *info, const CgTarget *target,
                      const CgPipeOptions *o, CgPipeline *out, Diag *d) {
  out->plan_budget = out->budget;
  for (int round = 0;; round++) {
    if (pass_remat(train0, info, &(RematOptions){o->remat, out->plan_budget}, &out->pl)) {
      diag_error_file(d, o->path, "%s", out->pl.msg);
      return -1;
    }
    out->train = out->pl.g;
    out->fitted = true;
    CgMemory mem;
    if (cg_model_memory(fwd, out->train, target, &mem, d)) return -1;
    out->need = mem.params_bytes + mem.io_bytes + mem.arena_bytes_train;
    if (out->need <= out->budget) return 0;
    /* only `optimal` trades more recomputation for a lower budget */
    if (round == FIT_ROUNDS - 1 || o->remat != REMAT_OPTIMAL) {
      diag_error_file(d, o->path, "the compiled training step needs %lld bytes, above the budget "
                      "of %lld bytes", (long long)out->need, (long long)out->budget);
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
  return out->budget > 0 ? fit_budget(fwd, train0, &info, target, o, out, d) : 0;
}
