/* emit_cuda.c — the CUDA backend from the driver: `nnc emit --emit=cuda|ptx --target
 * cuda[:sm_XX]` prints the generated CUDA C (with its launch tables) or NVRTC's PTX, and
 * `nnc build --target cuda|cuda-emu` compiles the model's CUDA part. The model is planned as
 * `nnc build` plans it (the training step fitted to the budget), then with the CUDA CgTarget
 * (codegen/cuda/cuda_plan.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_drv.h"
#ifdef NNC_HAVE_NVRTC
#include "../codegen/cuda/nvrtc/cuda_nvrtc.h"
#endif

/* --loss-scale: dynamic (the default for f16) from 2^16, none, or a static power of two */
static int loss_scale_parse(const char *arg, CudaPrec prec, CudaLossScale *ls) {
  *ls = (CudaLossScale){.on = prec == CUDA_PREC_F16, .dynamic = true, .init = 65536.0f};
  if (!arg) return 0;
  if (prec != CUDA_PREC_F16) {
    fprintf(stderr, "nnc: error: --loss-scale is for --precision f16 (bf16 has the range of f32)\n");
    return 2;
  }
  if (!strcmp(arg, "dynamic")) return 0;
  if (!strcmp(arg, "none")) return ls->on = false, 0;
  char *end;
  double v = strtod(arg, &end);
  int e;
  if (*end || !(v >= 0x1p-24 && v <= 0x1p24) || frexp(v, &e) != 0.5) {
    fprintf(stderr, "nnc: error: --loss-scale %s: a power of two from 2^-24 to 2^24, dynamic or none\n", arg);
    return 2;
  }
  ls->dynamic = false, ls->init = (float)v;
  return 0;
}

int drv_cuda_target(const char *target, const char *precision, const char *loss_scale, DrvCudaSource *s) {
  char err[256];
  const HwTarget *hw;
  memset(s, 0, sizeof *s);
  s->prec = CUDA_PREC_F32;
  if (precision && cuda_prec_parse(precision, &s->prec)) {
    fprintf(stderr, "nnc: error: --precision %s: the CUDA backend builds f32, tf32, bf16 or f16\n", precision);
    return 2;
  }
  if (loss_scale_parse(loss_scale, s->prec, &s->ls)) return 2;
  s->emu = !strcmp(target, "cuda-emu");
  if (cuda_target_parse(s->emu ? "cuda" : target, s->arch, sizeof s->arch, &hw, err, sizeof err)) {
    fprintf(stderr, "nnc: error: --target: %s (or cuda-emu)\n", err);
    return 2;
  }
  return 0;
}

int drv_cuda_source(const DrvModel *dm, bool train, DrvCudaSource *s, Diag *d) {
  char spec[32], err[256], arch[16];
  const HwTarget *hw = NULL;
  snprintf(spec, sizeof spec, "cuda:%s", s->arch);
  if (cuda_target_parse(spec, arch, sizeof arch, &hw, err, sizeof err)) {
    fprintf(stderr, "nnc: error: %s\n", err);
    return 1;
  }
  return drv_cuda_source_hw(dm, train, hw, s, d);
}

int drv_cuda_source_hw(const DrvModel *dm, bool train, const HwTarget *hw, DrvCudaSource *s, Diag *d) {
  s->hw = hw;
  CgTarget t;
  cuda_backend_target(&t, hw);
  cuda_tiles_plan(&s->tiles, dm->fwd, dm->train, hw, s->prec);
  if (cg_model_plan(&s->P, dm->fwd, dm->train, &t, s->tiles.fwd, s->tiles.train, d)) return 1;
  if (s->sync_bn && s->P.have_pt) cg_plan_sync_stats(&s->P.pt);
  size_t len = 0;
  FILE *f = open_memstream(&s->src, &len);
  if (!f) {
    fprintf(stderr, "nnc: error: out of memory\n");
    return 1;
  }
  int rc = cuda_model_source_ls(f, &s->P, dm->fwd->name, train, &s->fwd, &s->train, &s->ls, d) ? 1 : 0;
  if (fclose(f) && !rc) {
    fprintf(stderr, "nnc: error: out of memory\n");
    rc = 1;
  }
  return rc;
}

void drv_cuda_source_free(DrvCudaSource *s) {
  free(s->src);
  cuda_plan_table_free(&s->fwd);
  cuda_plan_table_free(&s->train);
  cg_model_plan_free(&s->P);
  cuda_tiles_free(&s->tiles);
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

int drv_emit_cuda(const DrvInput *in, const DrvBuildOptions *bo, const char *target,
                  const char *precision, const char *loss_scale, bool train, bool ptx, Diag *d) {
  DrvCudaSource s;
  int rc = drv_cuda_target(target ? target : "cuda", precision, loss_scale, &s);
  if (rc) return rc;
  DrvBuildOptions o = *bo;
  o.plan_only = true;
  DrvModel dm;
  rc = drv_build_model(in, &o, d, &dm);
  if (!rc && train && !dm.train) {
    diag_error(d, dm.fwd->loc, "model '%s' has no train block", dm.fwd->name);
    rc = 1;
  }
  if (!rc) rc = drv_cuda_source(&dm, train, &s, d);
  if (!rc && !ptx) {
    cuda_plan_table_print(stdout, &s.fwd, "forward");
    if (train) cuda_plan_table_print(stdout, &s.train, "training step");
    fputs(s.src, stdout);
  } else if (!rc) {
    char err[4096];
    char *p = drv_cuda_ptx(&s, dm.fwd->name, err, sizeof err);
    if (!p) {
      fprintf(stderr, "nnc emit: error: %s\n", err);
      rc = 1;
    } else {
      fputs(p, stdout);
      free(p);
    }
  }
  drv_cuda_source_free(&s);
  drv_model_free(&dm);
  return rc;
}

void drv_cuda_cost(const DrvCudaSource *s, bool train, CgPlanCost *out, char (**tiles)[96]) {
  const CudaPlanTable *t = train ? &s->train : &s->fwd;
  const CgPlan *p = train ? &s->P.pt : &s->P.pf;
  CgGpuLaunch *l = xcalloc((size_t)(t->n > 0 ? t->n : 1), sizeof *l);
  cuda_plan_launches(t, l);
  cg_gpu_cost(p, s->hw, l, t->n, out);
  if (tiles) {
    *tiles = xcalloc((size_t)(t->n > 0 ? t->n : 1), sizeof **tiles);
    for (int i = 0; i < t->n; i++) cg_gpu_tile_str(p, &l[i], (*tiles)[i], sizeof (*tiles)[i]);
  }
  free(l);
}
