/* bench_bf16.c — the generated bf16 GEMM (inputs rounded to bf16 while packing, f32
 * accumulation: vdpbf16ps where the host has AVX512-BF16, else the f32-FMA fallback) against
 * the generated f32 GEMM on square sizes, each with the blocking the tiles pass decides for
 * it (passes/tiles.c, as `nnc build` uses it). Reports best-of-N GFLOP/s and the ratio, and
 * the bf16 result's largest error relative to sum_k |a_k b_k| of the f32 inputs (the rounding
 * of the inputs, ~2^-8) on a sample of rows.
 *
 * usage: bench_bf16 [--threads T] [--min-time SECONDS] [--sizes 256,512,...] [--fallback]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hw.h"
#include "llvm_gemm.h"
#include "rt_threads.h"
#include "tiles.h"

/* on one thread, the process's CPU time: on a shared machine other jobs preempt long runs,
 * which wall time would count (more threads: wall time) */
static int use_cpu_time;
static double now(void) {
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* best time of at least 3 runs, until min_time is spent */
static double best_time(const LlvmGemmKernel *k, int64_t n, const float *A, const float *B, float *C,
                        RtPool *pool, double min_time) {
    k->fn(n, n, n, A, n, B, n, C, n, NULL, pool);
    double best = INFINITY, spent = 0;
    for (int reps = 0; (reps < 3 || spent < min_time) && reps < 10000; reps++) {
        double t0 = now();
        k->fn(n, n, n, A, n, B, n, C, n, NULL, pool);
        double dt = now() - t0;
        if (dt < best) best = dt;
        spent += dt;
    }
    return best;
}

/* the kernel for an n³ GEMM with the tiles pass's blocking (read as llvm_ops.c reads it) */
static LlvmGemmKernel *kernel_for(const HwTarget *hw, int64_t n, LlvmGemmPrec prec, LlvmGemmBlocking *blk) {
    TileGemm gm = {.m = n, .n = n, .k = n, .batch = 1, .dt = DT_F32, .bf16 = prec != LLVM_GEMM_F32};
    TileDecision d;
    tiles_choose(hw, &gm, &d);
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    s.prec = prec;
    s.blk.mr = d.nr > 32 ? 32 : d.nr;
    s.blk.nr = d.mr;
    s.blk.kc = d.kc, s.blk.mc = d.mc, s.blk.nc = d.nc;
    char err[512] = "";
    LlvmGemmKernel *k = llvm_gemm_compile(&s, err, sizeof err);
    if (!k) fprintf(stderr, "bench_bf16: %s\n", err);
    else *blk = k->blk;
    return k;
}

/* largest |C - A·B| / sum |a b| over a few rows, in double from the f32 inputs */
static double rel_error(int64_t n, const float *A, const float *B, const float *C) {
    double worst = 0;
    for (int64_t i = 0; i < n; i += n / 8 > 0 ? n / 8 : 1)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0, mag = 0;
            for (int64_t k = 0; k < n; k++) {
                double t = (double)A[i * n + k] * B[k * n + j];
                acc += t, mag += fabs(t);
            }
            double e = fabs(C[i * n + j] - acc) / mag;
            if (e > worst) worst = e;
        }
    return worst;
}

int main(int argc, char **argv) {
    int threads = 1, fallback = 0;
    double min_time = 0.5;
    int64_t sizes[16] = {256, 512, 1024, 2048, 4096};
    int nsizes = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--fallback")) fallback = 1;
        else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) {
            nsizes = 0;
            for (char *s = strtok(argv[++i], ","); s && nsizes < 16; s = strtok(NULL, ","))
                sizes[nsizes++] = atoll(s);
        } else {
            fprintf(stderr, "usage: %s [--threads T] [--min-time S] [--sizes 256,512,...] [--fallback]\n", argv[0]);
            return 2;
        }
    }
    HwTarget hw;
    char err[256];
    if (hw_resolve("host", &hw, err, sizeof err)) {
        fprintf(stderr, "bench_bf16: %s\n", err);
        return 1;
    }
    RtPool *pool = threads > 1 ? rt_pool_create(threads) : NULL;
    use_cpu_time = threads <= 1;
    LlvmGemmPrec bprec = fallback ? LLVM_GEMM_BF16_EMULATED : LLVM_GEMM_BF16;
    printf("# %d thread(s), %s; bf16 path: %s\n", threads, use_cpu_time ? "CPU time" : "wall time",
           fallback ? "f32-FMA fallback (forced)" : "as built for the host");
    printf("%6s %10s %10s %7s %12s %22s\n", "n", "f32 GF/s", "bf16 GF/s", "ratio", "bf16 rel err",
           "bf16 blocking");
    int rc = 0;
    for (int s = 0; s < nsizes; s++) {
        int64_t n = sizes[s];
        float *A = malloc(sizeof(float) * (size_t)(n * n)), *B = malloc(sizeof(float) * (size_t)(n * n)),
              *C = malloc(sizeof(float) * (size_t)(n * n));
        if (!A || !B || !C) return 1;
        srand(1);
        for (int64_t i = 0; i < n * n; i++) A[i] = (float)rand() / RAND_MAX - 0.5f, B[i] = (float)rand() / RAND_MAX - 0.5f;
        LlvmGemmBlocking b32, b16;
        LlvmGemmKernel *k32 = kernel_for(&hw, n, LLVM_GEMM_F32, &b32), *k16 = kernel_for(&hw, n, bprec, &b16);
        if (!k32 || !k16) return 1;
        double flops = 2.0 * (double)n * n * n;
        double t32 = best_time(k32, n, A, B, C, pool, min_time);
        double t16 = best_time(k16, n, A, B, C, pool, min_time);
        double e = n <= 2048 ? rel_error(n, A, B, C) : NAN;
        char blk[64];
        snprintf(blk, sizeof blk, "%lldx%lld KC%lld MC%lld NC%lld", (long long)b16.mr, (long long)b16.nr,
                 (long long)b16.kc, (long long)b16.mc, (long long)b16.nc);
        printf("%6lld %10.1f %10.1f %7.2f %12.3g %22s\n", (long long)n, flops / t32 * 1e-9, flops / t16 * 1e-9,
               t32 / t16, e, blk);
        fflush(stdout);
        if (e > 0x1p-6) rc = 1; /* far beyond the rounding of the inputs: wrong results */
        llvm_gemm_free(k32), llvm_gemm_free(k16);
        free(A), free(B), free(C);
    }
    if (pool) rt_pool_destroy(pool);
    return rc;
}
