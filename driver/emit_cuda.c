/* emit_cuda.c — the CUDA backend from the driver: `nnc emit --emit=cuda|ptx --target
 * cuda[:sm_XX]` prints the generated CUDA C (with its launch tables) or NVRTC's PTX. The
 * model is planned as `nnc build` plans it (the training step fitted to the budget), then
 * with the CUDA CgTarget (codegen/cuda/cuda_plan.h). */
#include <stdlib.h>
#include <string.h>

#include "../codegen/cuda/cuda_plan.h"
#include "build.h"
#include "cuda_drv.h"
#ifdef NNC_HAVE_NVRTC
#include "../codegen/cuda/nvrtc/cuda_nvrtc.h"
#endif

int drv_cuda_source(const DrvInput *in, const DrvBuildOptions *bo, const char *target, bool train,
                    DrvCudaSource *out, Diag *d) {
  char err[512];
  const HwTarget *hw = NULL;
  memset(out, 0, sizeof *out);
  if (cuda_target_parse(target, out->arch, sizeof out->arch, &hw, err, sizeof err)) {
    fprintf(stderr, "nnc: error: --target: %s\n", err);
    return 2;
  }
  DrvBuildOptions o = *bo;
  o.plan_only = true;
  int rc = drv_build_model(in, &o, d, &out->dm);
  if (!rc && train && !out->dm.train) {
    diag_error(d, out->dm.fwd->loc, "model '%s' has no train block", out->dm.fwd->name);
    rc = 1;
  }
  CgTarget t;
  cuda_backend_target(&t, hw);
  if (!rc) rc = cg_model_plan(&out->P, out->dm.fwd, out->dm.train, &t, NULL, NULL, d) ? 1 : 0;
  size_t len = 0;
  FILE *f = rc ? NULL : open_memstream(&out->src, &len);
  if (!rc && !f) {
    fprintf(stderr, "nnc: error: out of memory\n");
    rc = 1;
  }
  if (f) {
    if (cuda_model_source(f, &out->P, out->dm.fwd->name, train, &out->fwd, &out->train, d)) rc = 1;
    if (fclose(f) && !rc) {
      fprintf(stderr, "nnc: error: out of memory\n");
      rc = 1;
    }
  }
  return rc;
}

void drv_cuda_source_free(DrvCudaSource *s) {
  free(s->src);
  cuda_plan_table_free(&s->fwd);
  cuda_plan_table_free(&s->train);
  cg_model_plan_free(&s->P);
  drv_model_free(&s->dm);
  memset(s, 0, sizeof *s);
}

char *drv_cuda_ptx(const DrvCudaSource *s, const char *name, char *err, size_t errn) {
#ifdef NNC_HAVE_NVRTC
  return cuda_nvrtc_ptx(s->src, name, atoi(s->arch + 3), err, errn);
#else
  (void)s, (void)name;
  snprintf(err, errn, "this nnc was built without the CUDA toolkit (NVRTC): no PTX");
  return NULL;
#endif
}

int drv_emit_cuda(const DrvInput *in, const DrvBuildOptions *bo, const char *target, bool train,
                  bool ptx, Diag *d) {
  DrvCudaSource s;
  int rc = drv_cuda_source(in, bo, target ? target : "cuda", train, &s, d);
  if (!rc && !ptx) {
    cuda_plan_table_print(stdout, &s.fwd, "forward");
    if (train) cuda_plan_table_print(stdout, &s.train, "training step");
    fputs(s.src, stdout);
  } else if (!rc) {
    char err[4096];
    char *p = drv_cuda_ptx(&s, s.dm.fwd->name, err, sizeof err);
    if (!p) {
      fprintf(stderr, "nnc emit: error: %s\n", err);
      rc = 1;
    } else {
      fputs(p, stdout);
      free(p);
    }
  }
  drv_cuda_source_free(&s);
  return rc;
}
