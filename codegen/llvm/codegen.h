/* codegen.h — the LLVM CPU backend's entry points, as the driver sees them.
 *
 * llvm_model_emit lowers one model (its forward graph and, if train != NULL, its
 * training-step graph from passes/train.c) into an LLVM module holding the kernels, the entry
 * functions and the `nnc_model_<NAME>` RtModelDesc (runtime/rt_model.h). The module can then
 * be written as an object file (nnc build), as textual IR or assembly (nnc emit), or JIT'ed
 * (tests compare it against the reference interpreter).
 */
#ifndef NN_CODEGEN_H
#define NN_CODEGEN_H
#include <stdbool.h>

#include "../../ir/ir.h"
#include "../../runtime/rt_mem.h"
#include "../../runtime/rt_model.h"
#include "../plan/plan.h"

typedef struct CgOptions {
  const char *target_cpu;      /* NULL = host */
  const char *target_features; /* NULL = host's */
  int opt_level;               /* 0..3, default 2 */
  int64_t memory_budget;       /* bytes, 0 = none (the remat pass applies it) */
  /* tile decisions of the tiles pass (passes/tiles.c) for the forward and training graphs;
   * NULL: llvm_model_emit runs the pass for the host target itself. The emitter never
   * chooses blockings on its own. */
  const struct TilePlan *tiles_fwd, *tiles_train;
  /* --precision bf16: the inputs of every GEMM (matmuls, convolutions and their backward
   * GEMMs) rounded to bf16, f32 accumulation; weights and all other ops stay f32 */
  bool bf16;
  bool sync_bn; /* the training step's batchnorm statistics through RtHooks.sum_f64 */
  bool no_winograd; /* no Winograd F(4,3) convolutions (CgTarget.winograd off) */
  bool no_dw_fuse;  /* no depthwise convolution fused into its pointwise reader (CgTarget.dw_fuse) */
  int dw_strip;     /* > 0: CgTarget.dw_strip, fused in strips of this many rows (tests) */
} CgOptions;

typedef struct CgModel CgModel; /* an LLVM context + module for one model */

/* fwd: the inference graph; train: the training-step graph or NULL. Returns NULL after
 * reporting through d. */
CgModel *llvm_model_emit(const IrGraph *fwd, const IrGraph *train, const IrTrain *t,
                         const CgOptions *o, Diag *d);
void llvm_model_free(CgModel *m);

/* This backend as the kernel plan sees it (plan.h): the ops of its lowering table, f32 with
 * i32 labels and indices, im2col convolutions, vec_floats f32 lanes (0: 4), tiles for hw. */
void llvm_backend_target(CgTarget *t, int vec_floats, const HwTarget *hw);

/* The memory the compiled model allocates — regions and the arenas of its fused kernels —
 * computed from the same tensor table and kernel plan as llvm_model_emit, without LLVM
 * (cg_model_memory for this backend), so `nnc cost` and `nnc plan` report what a built
 * program really uses. -1 after a diagnostic. */
int llvm_model_memory(const IrGraph *fwd, const IrGraph *train, bool winograd, CgMemory *out,
                      Diag *d);
/* params + io + the training step's arena (0 without a training step): what a budget bounds */
int64_t llvm_model_train_bytes(const CgModel *m);
/* the figures of the expected process peak (rt_mem.h), GEMM packing per thread included */
const RtMemFigures *llvm_model_figures(const CgModel *m);
/* the training step is also emitted in two halves around its gradients (rt_model.h:
 * train_backward, train_apply), so an all-reduce can run between them */
bool llvm_model_splits_step(const CgModel *m);
/* The writers and the JIT report failures through d (like emission), and return -1 / NULL */
int llvm_model_write_object(CgModel *m, const char *path, Diag *d);
int llvm_model_write_ir(CgModel *m, FILE *out, Diag *d);
int llvm_model_write_asm(CgModel *m, FILE *out, Diag *d);
/* JIT the module; returns the model's descriptor (valid until llvm_model_free) */
const RtModelDesc *llvm_model_jit(CgModel *m, Diag *d);
#endif
