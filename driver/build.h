/* build.h — the compile-to-LLVM pipeline shared by `nnc build` and `nnc emit --emit=llvm|asm`
 * (driver/cmd_build.c): frontend, training-step graph when the model has a train section,
 * then the LLVM backend. */
#ifndef NN_DRIVER_BUILD_H
#define NN_DRIVER_BUILD_H
#include "../codegen/llvm/codegen.h"
#include "driver.h"

typedef struct DrvModel {
  IrModule *m;
  IrGraph *fwd;   /* the selected model */
  IrGraph *train; /* its training-step graph, or NULL without a train section */
  IrTrain *t;
  CgModel *cg;
} DrvModel;

/* 0 on success; 1 after diagnostics were printed (through d or to stderr). Free with
 * drv_model_free (also after a failure). */
int drv_build_model(const DrvInput *in, const CgOptions *o, Diag *d, DrvModel *out);
void drv_model_free(DrvModel *dm);

/* While the backend's model emitter (codegen/llvm_model.c) is not yet in the tree, its entry
 * points are weak references, so nnc links without it and `nnc build`/`nnc emit --emit=llvm`
 * report that the backend is missing. Once the file exists the references are ordinary ones
 * (a weak reference alone would not pull the member out of libnnc_codegen.a). */
#if !__has_include("llvm_model.c")
#pragma weak llvm_model_emit
#pragma weak llvm_model_free
#pragma weak llvm_model_write_object
#pragma weak llvm_model_write_ir
#pragma weak llvm_model_write_asm
#pragma weak llvm_model_jit
#define DRV_BACKEND_PRESENT() (llvm_model_emit != NULL)
#else
#define DRV_BACKEND_PRESENT() 1
#endif
#endif
