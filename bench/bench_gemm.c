/* bench_gemm.c — generated GEMM (llvm_gemm, JIT-compiled for the host) against OpenBLAS
 * cblas_sgemm on square sizes and on the MLP's GEMMs (forward and backward), on 1 and 2
 * threads. Reports best-of-N GFLOP/s, the ratio to OpenBLAS and the share of the FP32 peak.
 *
 * usage: bench_gemm [--peak GFLOPS_PER_CORE] [--threads LIST] [--min-time SECONDS] [--quick]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llvm_gemm.h"
#include "rt_threads.h"

/* OpenBLAS entry points, declared here so the benchmark does not depend on which cblas.h
 * the system's alternatives select. */
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc);
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);
char *openblas_get_config(void);

typedef struct {
    const char *label;
    int64_t M, N, K;
    int ta, tb;
} Case;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double min_time = 0.3;

typedef void (*RunFn)(void *ctx);

/* Best time of repeated runs: at least 3, until min_time has been spent. */
static double best_of(RunFn fn, void *ctx) {
    fn(ctx); /* warm caches, page in buffers, start threads */
    double best = INFINITY, spent = 0;
    int reps = 0;
    while (reps < 3 || spent < min_time) {
        double t0 = now();
        fn(ctx);
        double dt = now() - t0;
        if (dt < best) best = dt;
        spent += dt;
        reps++;
        if (reps > 10000) break;
    }
    return best;
}

typedef struct {
    const Case *c;
    const float *A, *B;
    float *C;
    LlvmGemmKernel *k;
    RtPool *pool;
} RunCtx;

static void run_ours(void *p) {
    RunCtx *r = p;
    const Case *c = r->c;
    int64_t lda = c->ta ? c->M : c->K, ldb = c->tb ? c->K : c->N;
    r->k->fn(c->M, c->N, c->K, r->A, lda, r->B, ldb, r->C, c->N, NULL, r->pool);
}

static void run_blas(void *p) {
    RunCtx *r = p;
    const Case *c = r->c;
    int lda = (int)(c->ta ? c->M : c->K), ldb = (int)(c->tb ? c->K : c->N);
    cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans,
                (int)c->M, (int)c->N, (int)c->K, 1.0f, r->A, lda, r->B, ldb, 0.0f, r->C, (int)c->N);
}

int main(int argc, char **argv) {
    double peak = 236.0;
    int threads[4] = {1, 2}, nthreads = 2, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--peak") && i + 1 < argc) peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            nthreads = 0;
            for (char *s = strtok(argv[++i], ","); s && nthreads < 4; s = strtok(NULL, ","))
                threads[nthreads++] = atoi(s);
        } else {
            fprintf(stderr, "usage: %s [--peak GFLOPS_PER_CORE] [--threads 1,2] [--min-time S] [--quick]\n",
                    argv[0]);
            return 2;
        }
    }
    /* MLP 784-512-512-10 at batch B: forward X·Wᵀ (weights stored out×in), backward
     * dX = dY·W and dW = dYᵀ·X. */
    Case cases[64];
    int n = 0;
    static const int64_t sq[] = {256, 512, 1024, 2048};
    for (int i = 0; i < 4; i++) {
        if (quick && sq[i] != 1024) continue;
        char *l = malloc(32);
        snprintf(l, 32, "square %ld", (long)sq[i]);
        cases[n++] = (Case){l, sq[i], sq[i], sq[i], 0, 0};
    }
    static const int64_t layers[3][2] = {{784, 512}, {512, 512}, {512, 10}};
    for (int bi = 0; bi < 2 && !quick; bi++) {
        int64_t B = bi == 0 ? 64 : 256;
        for (int li = 0; li < 3; li++) {
            int64_t in = layers[li][0], out = layers[li][1];
            char *l1 = malloc(48), *l2 = malloc(48), *l3 = malloc(48);
            snprintf(l1, 48, "mlp b%ld %ld->%ld fwd", (long)B, (long)in, (long)out);
            snprintf(l2, 48, "mlp b%ld %ld->%ld dX", (long)B, (long)in, (long)out);
            snprintf(l3, 48, "mlp b%ld %ld->%ld dW", (long)B, (long)in, (long)out);
            cases[n++] = (Case){l1, B, out, in, 0, 1};
            if (li > 0) cases[n++] = (Case){l2, B, in, out, 0, 0}; /* no dX for the input layer */
            cases[n++] = (Case){l3, out, in, B, 1, 0};
        }
    }

    printf("OpenBLAS core: %s\nOpenBLAS config: %s\n", openblas_get_corename(),
           openblas_get_config());
    /* one kernel per transpose combination */
    LlvmGemmKernel *kern[4] = {0};
    for (int t = 0; t < 4; t++) {
        LlvmGemmSpec s;
        memset(&s, 0, sizeof s);
        s.trans_a = t & 1;
        s.trans_b = t >> 1;
        char err[512];
        double t0 = now();
        kern[t] = llvm_gemm_compile(&s, err, sizeof err);
        if (!kern[t]) {
            fprintf(stderr, "compile failed: %s\n", err);
            return 1;
        }
        if (t == 0)
            printf("generated kernel: %d lanes, mr=%ld nr=%ld kc=%ld mc=%ld nc=%ld, JIT %.0f ms\n",
                   kern[t]->vec_floats, (long)kern[t]->blk.mr, (long)kern[t]->blk.nr,
                   (long)kern[t]->blk.kc, (long)kern[t]->blk.mc, (long)kern[t]->blk.nc,
                   1e3 * (now() - t0));
    }
    printf("peak assumed: %.0f GFLOP/s per core (FP32)\n\n", peak);
    printf("%-26s %3s %9s %9s %7s %7s %7s %9s\n", "case (MxNxK)", "thr", "nnc GF/s", "blas GF/s",
           "ratio", "nnc%pk", "blas%pk", "max rdiff");
    for (int ti = 0; ti < nthreads; ti++) {
        int T = threads[ti];
        RtPool *pool = rt_pool_create(T);
        openblas_set_num_threads(T);
        for (int ci = 0; ci < n; ci++) {
            const Case *c = &cases[ci];
            int64_t ar = c->ta ? c->K : c->M, ac = c->ta ? c->M : c->K;
            int64_t br = c->tb ? c->N : c->K, bc = c->tb ? c->K : c->N;
            float *A = malloc(sizeof(float) * (size_t)(ar * ac));
            float *B = malloc(sizeof(float) * (size_t)(br * bc));
            float *C1 = malloc(sizeof(float) * (size_t)(c->M * c->N));
            float *C2 = malloc(sizeof(float) * (size_t)(c->M * c->N));
            srand(42);
            for (int64_t i = 0; i < ar * ac; i++) A[i] = (float)rand() / (float)RAND_MAX - 0.5f;
            for (int64_t i = 0; i < br * bc; i++) B[i] = (float)rand() / (float)RAND_MAX - 0.5f;
            RunCtx r1 = {c, A, B, C1, kern[c->ta | (c->tb << 1)], pool};
            RunCtx r2 = {c, A, B, C2, NULL, NULL};
            double t_ours = best_of(run_ours, &r1);
            double t_blas = best_of(run_blas, &r2);
            double diff = 0, mag = 0;
            for (int64_t i = 0; i < c->M * c->N; i++) {
                double d = fabs((double)C1[i] - C2[i]);
                if (d > diff) diff = d;
                if (fabs(C2[i]) > mag) mag = fabs(C2[i]);
            }
            double flop = 2.0 * (double)c->M * (double)c->N * (double)c->K;
            double g1 = flop / t_ours * 1e-9, g2 = flop / t_blas * 1e-9;
            char lab[80];
            snprintf(lab, sizeof lab, "%s (%ldx%ldx%ld%s%s)", c->label, (long)c->M, (long)c->N,
                     (long)c->K, c->ta ? ",At" : "", c->tb ? ",Bt" : "");
            printf("%-26s %3d %9.1f %9.1f %7.2f %6.1f%% %6.1f%% %9.1e\n", lab, T, g1, g2, g1 / g2,
                   100 * g1 / (peak * T), 100 * g2 / (peak * T), diff / (mag > 0 ? mag : 1));
            fflush(stdout);
            free(A), free(B), free(C1), free(C2);
        }
        rt_pool_destroy(pool);
    }
    for (int t = 0; t < 4; t++) llvm_gemm_free(kern[t]);
    return 0;
}
