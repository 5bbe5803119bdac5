/* gpu_gemm.c — the generated GEMM kernels on a real GPU (run by tests/gpu/run.sh).
 *
 * 1. every case of tests/cuda/cuda_cases.h (transposes, ragged edges, predicated loads,
 *    split-K, epilogues), compiled by NVRTC for the local architecture, launched through the
 *    runtime's driver loader and compared element by element with a double reference;
 * 2. square GEMMs (--sizes, default 1024,2048,4096,8192) in f32, tf32, bf16 and f16, planned
 *    by the tiles pass for this GPU, checked at sampled elements, timed, and timed against
 *    cuBLAS (cublasGemmEx through dlopen, same precision and f32 accumulation).
 * Inputs are multiples of 1/8 in [-1, 1]: exact in every input type, products and sums exact
 * in f32, so un-epilogued results must match the reference exactly. Exit 1 without a GPU. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../codegen/cuda/nvrtc/cuda_nvrtc.h"
#include "../../runtime/rt_cuda.h"
#include "../../runtime/rt_tensor.h"
#include "../cuda/case_plan.h"

typedef struct Gpu {
  RtCuda *cu;
  const HwTarget *hw;
  int sm;
  void *blas_lib, *blas;
  int (*gemm_ex)(void *, int, int, int, int, int, const void *, const void *, int, int, const void *,
                 int, int, const void *, void *, int, int, int, int);
} Gpu;

typedef struct Mats {
  int64_t m, n, k, batch, bsb; /* bsb: B's batch stride (0: shared) */
  int prec;
  bool ta, tb;
  float *a, *b, *bias, *res; /* host values (exact in the input type) */
  uint64_t da, db, dc, dbias, dres, dwork;
} Mats;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int upload(Gpu *g, const float *h, int64_t n, int prec, uint64_t *d) {
  size_t es = prec >= CUDA_PREC_BF16 ? 2 : 4, bytes = (size_t)n * es;
  void *buf = malloc(bytes ? bytes : 1);
  if (!buf) return -1;
  for (int64_t i = 0; i < n && es == 2; i++) ((uint16_t *)buf)[i] = prec == CUDA_PREC_BF16 ? rt_f32_to_bf16(h[i]) : rt_f32_to_f16(h[i]);
  if (es == 4) memcpy(buf, h, bytes);
  int rc = rt_cuda_alloc(g->cu, bytes ? bytes : 4, d) || rt_cuda_upload(g->cu, *d, buf, bytes);
  free(buf);
  return rc ? -1 : 0;
}

static float *rand_vals(int64_t n, uint32_t *s) {
  float *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; v && i < n; i++) *s = *s * 1664525u + 1013904223u, v[i] = (float)((int)(*s >> 28) - 8) / 8.0f;
  return v;
}

/* operands, bias, residual, C and the split-K workspace gm needs */
static int mats_new(Gpu *g, Mats *x, const CudaGemm *gm) {
  uint32_t s = 12345;
  int64_t na = x->batch * x->m * x->k, nb = x->bsb ? x->batch * x->bsb : x->k * x->n, nc = x->batch * x->m * x->n;
  x->a = rand_vals(na, &s), x->b = rand_vals(nb, &s);
  x->bias = rand_vals(x->n, &s), x->res = rand_vals(nc, &s);
  if (!x->a || !x->b || !x->bias || !x->res) return -1;
  if (upload(g, x->a, na, x->prec, &x->da) || upload(g, x->b, nb, x->prec, &x->db) ||
      upload(g, x->bias, x->n, 0, &x->dbias) || upload(g, x->res, nc, 0, &x->dres))
    return -1;
  if (rt_cuda_alloc(g->cu, (size_t)nc * 4, &x->dc)) return -1;
  int64_t work = cuda_gemm_work_bytes(gm, x->m, x->n, x->batch);
  return rt_cuda_alloc(g->cu, (size_t)(work ? work : 4), &x->dwork);
}

static void mats_free(Gpu *g, Mats *x) {
  free(x->a), free(x->b), free(x->bias), free(x->res);
  uint64_t d[] = {x->da, x->db, x->dc, x->dbias, x->dres, x->dwork};
  for (int i = 0; i < 6; i++)
    if (d[i]) rt_cuda_free(g->cu, d[i]);
}

/* reference of C[zb][i][j], epilogue included */
static double ref_at(const Mats *x, unsigned epi, int64_t zb, int64_t i, int64_t j) {
  const float *a = x->a + zb * x->m * x->k, *b = x->b + zb * x->bsb;
  double s = 0;
  for (int64_t l = 0; l < x->k; l++)
    s += (double)a[x->ta ? l * x->m + i : i * x->k + l] * b[x->tb ? j * x->k + l : l * x->n + j];
  if (epi & CUDA_EPI_BIAS) s += x->bias[j];
  if (epi & CUDA_EPI_RELU) s = s > 0 ? s : 0;
  if (epi & CUDA_EPI_GELU) s = 0.5 * s * (1 + erf(s / sqrt(2.0)));
  if (epi & CUDA_EPI_RESIDUAL) s += x->res[(zb * x->m + i) * x->n + j];
  return s;
}

/* ---- one generated kernel ---------------------------------------------------------------- */

typedef struct Kern {
  void *mod, *fn, *red;
  CudaLaunch mk, rk;
  long long k_split;
} Kern;

static int kern_build(Gpu *g, const CudaGemm *gm, const Mats *x, Kern *kr) {
  char err[8192];
  memset(kr, 0, sizeof *kr);
  char *src = cuda_gemm_source(gm, err, sizeof err);
  char *ptx = src ? cuda_nvrtc_ptx(src, gm->name, g->sm, err, sizeof err) : NULL;
  free(src);
  if (!ptx) return fprintf(stderr, "%s: %s\n", gm->name, err), -1;
  int rc = rt_cuda_load_ptx(g->cu, ptx, &kr->mod);
  free(ptx);
  cuda_gemm_launch(gm, x->m, x->n, x->batch, &kr->mk, &kr->rk);
  kr->k_split = cuda_gemm_k_split(gm, x->k);
  char red[128];
  snprintf(red, sizeof red, "%s_reduce", gm->name);
  if (rc || rt_cuda_function(g->cu, kr->mod, gm->name, kr->mk.smem, &kr->fn) ||
      (gm->tile->split_k > 1 && rt_cuda_function(g->cu, kr->mod, red, 0, &kr->red)))
    return fprintf(stderr, "%s: %s\n", gm->name, rt_cuda_error(g->cu)), -1;
  return 0;
}

/* the layout of NncGemmArgs in the prelude */
typedef struct Args {
  uint64_t A, B, C, bias, R, work;
  long long bsa, bsb, bsc, bsr;
  int M, N, K, lda, ldb, ldc, ldr, k_split, batch;
  float scale, inv_scale;
} Args;

static int kern_run(Gpu *g, const Kern *kr, const Mats *x) {
  long long mn = x->m * x->n;
  Args a = {x->da, x->db, x->dc, x->dbias, x->dres, x->dwork, x->m * x->k, x->bsb, mn, mn,
            (int)x->m, (int)x->n, (int)x->k, (int)(x->ta ? x->m : x->k), (int)(x->tb ? x->k : x->n),
            (int)x->n, (int)x->n, (int)kr->k_split, (int)x->batch, 1.0f, 1.0f};
  void *args[] = {&a};
  if (rt_cuda_launch(g->cu, kr->fn, kr->mk.grid, kr->mk.block, kr->mk.smem, args)) return -1;
  if (kr->red && rt_cuda_launch(g->cu, kr->red, kr->rk.grid, kr->rk.block, 0, args)) return -1;
  return 0;
}

/* worst |C - ref| / (1e-5 (|ref| + 1)) at `samples` elements (all when 0) */
static double check(Gpu *g, const Mats *x, unsigned epi, int samples) {
  int64_t mn = x->m * x->n, all = x->batch * mn;
  float *c = malloc((size_t)all * sizeof *c);
  if (!c || rt_cuda_sync(g->cu) || rt_cuda_download(g->cu, c, x->dc, (size_t)all * sizeof *c)) {
    free(c);
    return INFINITY;
  }
  int64_t total = samples ? samples : all;
  uint32_t s = 99;
  double worst = 0;
  for (int64_t t = 0; t < total; t++) {
    int64_t idx = samples ? (int64_t)((s = s * 1664525u + 1013904223u) % (uint32_t)all) : t;
    double r = ref_at(x, epi, idx / mn, idx % mn / x->n, idx % x->n), e = fabs(c[idx] - r) / (1e-5 * (fabs(r) + 1));
    if (!(e <= worst)) worst = e;
  }
  free(c);
  return worst;
}

/* ---- 1. the emulated cases, now on the device -------------------------------------------- */

static int run_cases(Gpu *g) {
  int fails = 0;
  for (int i = 0; i < CUDA_NCASES; i++) {
    const CudaCase *c = &cuda_cases[i];
    TileDecision d;
    CudaGemm gm;
    char name[96];
    Kern kr;
    Mats x = {.m = c->m, .n = c->n, .k = c->k, .batch = case_batch(c), .bsb = case_bsb(c),
              .prec = c->f32_in ? CUDA_PREC_F32 : c->prec, /* f32 operands, rounded by the kernel */
              .ta = c->trans_a, .tb = c->trans_b};
    if (case_plan(c, &d, &gm, name, sizeof name) || kern_build(g, &gm, &x, &kr) ||
        mats_new(g, &x, &gm) || kern_run(g, &kr, &x)) {
      fails++;
      mats_free(g, &x);
      continue;
    }
    double w = check(g, &x, c->epi, 0);
    printf("case %-18s %ldx %4ldx%4ldx%4ld: max err/tol %.3f %s\n", c->name, x.batch, c->m, c->n, c->k, w, w <= 1 ? "ok" : "FAILED");
    fails += !(w <= 1);
    mats_free(g, &x);
    rt_cuda_unload(g->cu, kr.mod);
  }
  return fails;
}

/* ---- 2. square GEMMs against cuBLAS --------------------------------------------------------- */

static void blas_open(Gpu *g) {
  const char *libs[] = {"libcublas.so", "libcublas.so.13", "libcublas.so.12"};
  for (int i = 0; i < 3 && !g->blas_lib; i++) g->blas_lib = dlopen(libs[i], RTLD_NOW | RTLD_LOCAL);
  int (*create)(void **) = NULL;
  if (g->blas_lib) *(void **)&create = dlsym(g->blas_lib, "cublasCreate_v2");
  if (g->blas_lib) *(void **)&g->gemm_ex = dlsym(g->blas_lib, "cublasGemmEx");
  if (!create || !g->gemm_ex || create(&g->blas)) g->blas = NULL;
  if (!g->blas) printf("cuBLAS not available: no comparison\n");
}

/* row-major C = A·B is column-major C^T = B^T·A^T */
static int blas_run(Gpu *g, const Mats *x) {
  static const int dtype[] = {0, 0, 14, 2};  /* CUDA_R_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16F */
  static const int compute[] = {68, 77, 68, 68}; /* CUBLAS_COMPUTE_32F, _32F_FAST_TF32 */
  float one = 1, zero = 0;
  return g->gemm_ex(g->blas, 0, 0, (int)x->n, (int)x->m, (int)x->k, &one, (void *)x->db, dtype[x->prec],
                    (int)x->n, (void *)x->da, dtype[x->prec], (int)x->k, &zero, (void *)x->dc, 0,
                    (int)x->n, compute[x->prec], -1);
}

/* seconds per call, averaged over enough calls for ~0.3 s */
static double time_it(Gpu *g, const Kern *kr, const Mats *x, bool blas) {
  double flops = 2.0 * x->m * x->n * x->k;
  int iters = (int)fmin(50, fmax(3, 3e13 * 0.3 / flops));
  if ((blas ? blas_run(g, x) : kern_run(g, kr, x)) || rt_cuda_sync(g->cu)) return NAN;
  double t0 = now();
  for (int i = 0; i < iters; i++)
    if (blas ? blas_run(g, x) : kern_run(g, kr, x)) return NAN;
  if (rt_cuda_sync(g->cu)) return NAN;
  return (now() - t0) / iters;
}

static int bench_one(Gpu *g, int prec, int64_t n) {
  static const char *names[] = {"f32", "tf32", "bf16", "f16"};
  static const DType dts[] = {DT_F32, DT_F32, DT_BF16, DT_F16};
  TileGemm tg = {.m = n, .n = n, .k = n, .batch = 1, .dt = dts[prec], .tf32 = prec == CUDA_PREC_TF32};
  TileDecision d;
  tiles_choose(g->hw, &tg, &d);
  char name[64];
  snprintf(name, sizeof name, "nnc_gemm_%s_%lld", names[prec], (long long)n);
  CudaGemm gm = {.name = name, .prec = (CudaPrec)prec, .tile = &d};
  Mats x = {.m = n, .n = n, .k = n, .batch = 1, .bsb = n * n, .prec = prec};
  Kern kr;
  if (kern_build(g, &gm, &x, &kr) || mats_new(g, &x, &gm)) return mats_free(g, &x), 1;
  double t = time_it(g, &kr, &x, false), w = check(g, &x, 0, 512);
  double tb = g->blas ? time_it(g, &kr, &x, true) : NAN;
  double tf = 2.0 * n * n * n / 1e12;
  printf("gemm %-4s %5lld: nnc %7.1f TFLOP/s (%dx%dx%d, %d warps, %d stages, split %d), cuBLAS %7.1f "
         "TFLOP/s, nnc/cuBLAS %.2f, check %s\n", names[prec], (long long)n, tf / t, d.bm, d.bn, d.bk,
         d.warps, d.stages, d.split_k, tf / tb, tb / t, w <= 1 ? "ok" : "FAILED");
  mats_free(g, &x);
  rt_cuda_unload(g->cu, kr.mod);
  return !(w <= 1);
}

static const HwTarget *local_target(RtCuda *cu) {
  const char *nm = rt_cuda_device_name(cu);
  if (strstr(nm, "H100") || strstr(nm, "H200") || rt_cuda_cc(cu) >= 90) return hw_find_builtin("h100");
  if (strstr(nm, "4090") || rt_cuda_cc(cu) == 89) return hw_find_builtin("rtx-4090");
  return hw_find_builtin("a100");
}

int main(int argc, char **argv) {
  const char *sizes = argc > 2 && !strcmp(argv[1], "--sizes") ? argv[2] : "1024,2048,4096,8192";
  char err[1024];
  Gpu g = {0};
  g.cu = rt_cuda_open(NULL, err, sizeof err);
  if (!g.cu) return fprintf(stderr, "gpu_gemm: %s\n", err), 1;
  g.sm = rt_cuda_cc(g.cu), g.hw = local_target(g.cu);
  printf("device: %s (sm_%d), planned as %s\n", rt_cuda_device_name(g.cu), g.sm, g.hw->name);
  int fails = run_cases(&g);
  blas_open(&g);
  for (const char *p = sizes; *p;) {
    int64_t n = strtoll(p, (char **)&p, 10);
    for (int prec = 0; prec < 4 && n > 0; prec++) fails += bench_one(&g, prec, n);
    if (*p == ',') p++;
    else if (*p) break;
  }
  rt_cuda_close(g.cu);
  printf("%d failures\n", fails);
  return fails ? 1 : 0;
}
