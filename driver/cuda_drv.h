/* cuda_drv.h — the CUDA backend in the driver (driver/emit_cuda.c): `nnc emit --emit=cuda|ptx`
 * and the model part of `nnc build --target cuda|cuda-emu`. */
#ifndef NN_DRIVER_CUDA_DRV_H
#define NN_DRIVER_CUDA_DRV_H
#include "../codegen/cuda/cuda_plan.h"
#include "build.h"

typedef struct DrvCudaSource {
  CgModelPlan P;
  CudaPlanTable fwd, train;
  char *src;     /* prelude + kernels + emulation launch tables */
  char arch[16]; /* "sm_80" */
  bool emu;      /* target cuda-emu: the source runs on the CPU through cuda_emu.h */
  CudaPrec prec; /* --precision: GEMM and convolution inputs (f32 FMA, TF32, bf16 or f16
                    tensor cores); accumulation, values and every other kernel stay f32 */
  CudaLossScale ls; /* --loss-scale (f16 training steps) */
  CudaTiles tiles;
  const HwTarget *hw; /* the hardware whose tiles the plan has */
  bool sync_bn;       /* --sync-bn: the training plan's batchnorm statistics as sync_stats
                         kernels (cuda_syncbn.c), summed by the data-parallel glue */
} DrvCudaSource;

/* the target of `--target` (cuda, cuda:sm_XX or cuda-emu) and `--precision` (NULL or f32,
 * tf32, bf16, f16) and `--loss-scale` (NULL: dynamic for f16; dynamic, none or a power of two);
 * 0, or 2 after a message */
int drv_cuda_target(const char *target, const char *precision, const char *loss_scale, DrvCudaSource *s);
/* plans dm (built by drv_build_model) for the CUDA target set by drv_cuda_target and
 * generates its source, with the training step when train; 0, or 1 after diagnostics.
 * Free s with drv_cuda_source_free either way. */
int drv_cuda_source(const DrvModel *dm, bool train, DrvCudaSource *s, Diag *d);
void drv_cuda_source_free(DrvCudaSource *s);
/* drv_cuda_source with the tiles of hw (a GPU: `nnc cost --target h100`); s zeroed first by
 * the caller, its tf32 set as wanted */
int drv_cuda_source_hw(const DrvModel *dm, bool train, const HwTarget *hw, DrvCudaSource *s, Diag *d);
/* the GPU estimate of the forward (train false) or training-step launch table of s
 * (plan_cost_gpu.h); rows per launch, tiles[i] the GEMM tile of launch i or "" (malloc'd,
 * may be NULL) */
void drv_cuda_cost(const DrvCudaSource *s, bool train, CgPlanCost *out, char (**tiles)[96]);
/* NVRTC's PTX of the source for its arch; NULL with err filled (also without the toolkit) */
char *drv_cuda_ptx(const DrvCudaSource *s, const char *name, char *err, size_t errn);
/* nnc emit --emit=cuda|ptx */
int drv_emit_cuda(const DrvInput *in, const DrvBuildOptions *bo, const char *target,
                  const char *precision, const char *loss_scale, bool train, bool ptx, Diag *d);
/* nnc build --target: compiles the model's CUDA part (the generated source for the
 * emulation, or its PTX with the launcher for the device) into tmpdir/cuda.o, whose
 * nnc_cuda_main(desc, fwd_inputs, val_loss, argc, argv) runs the program's commands with the CPU
 * descriptor's tensor table and the CUDA entries. 0, or 1 after a message. */
/* what `nnc build` asks of the CUDA part */
typedef struct DrvCudaOpts {
  const char *target, *precision, *loss_scale; /* --target, --precision, --loss-scale (NULL: default) */
  bool mpi;                                    /* --mpi: the split step and the gradient all-reduce */
  bool verbose;
  bool sync_bn; /* --sync-bn (with --mpi): batchnorm statistics summed between launches */
} DrvCudaOpts;
typedef struct DrvCudaOut {
  RtDevice mem;    /* the device's name and memory sizes (functions NULL): for the header */
  char info[6144]; /* for the program's `info`: device memory, GEMM tiles, the estimate */
} DrvCudaOut;
int drv_cuda_object(const DrvModel *dm, const DrvCudaOpts *o, const char *tmpdir, char *obj, size_t objn,
                    DrvCudaOut *out, Diag *d);
/* --mpi with --target (build_cuda_dist.c): appends to the glue the training step split at
 * the plan's optimizer kernels and nnc_cuda_mpi_main, which runs rt_mpi_main on it: cuda-emu
 * all-reduces the gradients on the host through the runtime's buckets; cuda all-reduces them
 * on the device with NCCL (runtime/rt_nccl.c), bucket by bucket during the backward launches
 * (or after them with --no-overlap), on the persistent RtDevice (its run_split). */
int drv_cuda_glue_dist(FILE *f, const DrvCudaSource *s, const char *name);
#endif
