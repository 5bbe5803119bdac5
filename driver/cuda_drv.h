/* cuda_drv.h — the CUDA backend in the driver (driver/emit_cuda.c). */
#ifndef NN_DRIVER_CUDA_DRV_H
#define NN_DRIVER_CUDA_DRV_H
#include "../codegen/cuda/cuda_plan.h"
#include "build.h"

typedef struct DrvCudaSource {
  DrvModel dm;
  CgModelPlan P;
  CudaPlanTable fwd, train;
  char *src;     /* prelude + kernels + emulation launch tables */
  char arch[16]; /* "sm_80" */
} DrvCudaSource;

/* plans the model for target ("cuda", "cuda:sm_90") and generates its source; 0, 1 after
 * diagnostics, 2 for a bad target. Free s with drv_cuda_source_free either way. */
int drv_cuda_source(const DrvInput *in, const DrvBuildOptions *bo, const char *target, bool train,
                    DrvCudaSource *s, Diag *d);
void drv_cuda_source_free(DrvCudaSource *s);
/* NVRTC's PTX of the source for its arch; NULL with err filled (also without the toolkit) */
char *drv_cuda_ptx(const DrvCudaSource *s, const char *name, char *err, size_t errn);
/* nnc emit --emit=cuda|ptx */
int drv_emit_cuda(const DrvInput *in, const DrvBuildOptions *bo, const char *target, bool train,
                  bool ptx, Diag *d);
#endif
