/* build.h — the compile pipeline shared by `nnc build` and `nnc emit --emit=llvm|asm|kernels`
 * (driver/cmd_build.c). */
#ifndef NN_DRIVER_BUILD_H
#define NN_DRIVER_BUILD_H
#include "../codegen/llvm/codegen.h"
#include "../codegen/plan/pipeline.h"
#include "driver.h"

typedef struct DrvBuildOptions {
  CgOptions cg;     /* target, -O, --memory */
  RematMode remat;  /* --remat: how a budget is met */
  bool remat_given;
  bool plan_only;   /* stop after the training step: no code generation (--emit=kernels) */
} DrvBuildOptions;

typedef struct DrvModel {
  IrModule *m;
  IrGraph *fwd;   /* the selected model */
  IrGraph *train; /* its training-step graph, or NULL without a train section */
  IrTrain *t;
  CgModel *cg;    /* NULL with plan_only */
  char plan_text[1024]; /* what the memory plan did, for the program's `info` */
} DrvModel;

/* frontend, the training step fitted to the budget (codegen/plan/pipeline.h), then the LLVM
 * backend. 0 on success; 1 after diagnostics were printed. Free with drv_model_free (also
 * after a failure). */
int drv_build_model(const DrvInput *in, const DrvBuildOptions *o, Diag *d, DrvModel *out);
/* runs argv in cwd (NULL: here), printing it first when verbose; the exit status, -1 when it
 * cannot be run */
int drv_run_cmd(char *const argv[], const char *cwd, bool verbose);
/* the same with its standard output written to the file out (NULL: inherited) */
int drv_run_cmd_to(char *const argv[], const char *cwd, const char *out, bool verbose);
void drv_model_free(DrvModel *dm);
/* --precision for a CPU build (`cmd`: the command, for the message): f32 or bf16 (sets
 * cg->bf16). 0, or 2 after an error naming what CPU builds accept. */
int drv_cpu_precision(const char *cmd, const char *precision, CgOptions *cg);
#endif
