/* test_llvm_gemm.c — the generated GEMM kernels (JIT-compiled) against a double-precision
 * reference, over random sizes with tails, all transpose combinations, every epilogue and
 * 1/2 threads; bit-reproducibility; object emission; other vector widths via --target-cpu;
 * and the runtime thread pool they run on. */
#include <check.h>

#include "test_env.h"
#include "test_rng.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llvm_gemm.h"
#include "llvm_util.h"
#include "rt_threads.h"

/* ---- helpers --------------------------------------------------------------------------- */

static TestRng rng = {0x9E3779B97F4A7C15ull};

typedef struct {
    int64_t M, N, K, lda, ldb, ldc;
    float *A, *B, *C, *C0, *bias;
} Problem;

/* Allocates operands stored as the spec says, with row strides padded by a random amount so
 * that lda/ldb/ldc are exercised. */
static void problem_init(Problem *p, const LlvmGemmSpec *s, int64_t M, int64_t N, int64_t K) {
    p->M = M, p->N = N, p->K = K;
    int64_t ar = s->trans_a ? K : M, ac = s->trans_a ? M : K;
    int64_t br = s->trans_b ? N : K, bc = s->trans_b ? K : N;
    p->lda = ac + test_rng_int(&rng, 0, 3);
    p->ldb = bc + test_rng_int(&rng, 0, 3);
    p->ldc = N + test_rng_int(&rng, 0, 3);
    p->A = malloc(sizeof(float) * (size_t)(ar * p->lda + 1));
    p->B = malloc(sizeof(float) * (size_t)(br * p->ldb + 1));
    p->C = malloc(sizeof(float) * (size_t)(M * p->ldc));
    p->C0 = malloc(sizeof(float) * (size_t)(M * p->ldc));
    p->bias = malloc(sizeof(float) * (size_t)(M > N ? M : N));
    for (int64_t i = 0; i < ar * p->lda; i++) p->A[i] = test_rng_float(&rng);
    for (int64_t i = 0; i < br * p->ldb; i++) p->B[i] = test_rng_float(&rng);
    for (int64_t i = 0; i < M * p->ldc; i++) p->C0[i] = test_rng_float(&rng);
    for (int64_t i = 0; i < (M > N ? M : N); i++) p->bias[i] = test_rng_float(&rng);
}

static void problem_free(Problem *p) {
    free(p->A), free(p->B), free(p->C), free(p->C0), free(p->bias);
}

static void problem_run(const LlvmGemmKernel *k, Problem *p, RtPool *pool) {
    memcpy(p->C, p->C0, sizeof(float) * (size_t)(p->M * p->ldc));
    k->fn(p->M, p->N, p->K, p->A, p->lda, p->B, p->ldb, p->C, p->ldc, p->bias, pool);
}

/* Worst relative error against a double reference, relative to the magnitude bound
 * S = sum_k |a b| + |bias| + |C_old|; padding columns of C must be untouched. */
static double problem_check(const LlvmGemmSpec *s, const Problem *p, int *pad_ok) {
    double worst = 0;
    *pad_ok = 1;
    for (int64_t i = 0; i < p->M; i++) {
        for (int64_t j = 0; j < p->N; j++) {
            double acc = 0, mag = 0;
            for (int64_t k = 0; k < p->K; k++) {
                double a = s->trans_a ? p->A[k * p->lda + i] : p->A[i * p->lda + k];
                double b = s->trans_b ? p->B[j * p->ldb + k] : p->B[k * p->ldb + j];
                acc += a * b;
                mag += fabs(a * b);
            }
            if (s->accumulate) {
                acc += p->C0[i * p->ldc + j];
                mag += fabs(p->C0[i * p->ldc + j]);
            }
            double bv = s->bias == LLVM_GEMM_BIAS_COL ? p->bias[j]
                        : s->bias == LLVM_GEMM_BIAS_ROW ? p->bias[i] : 0.0;
            acc += bv;
            mag += fabs(bv);
            if (s->relu && !(acc > 0)) acc = 0;
            double e = fabs((double)p->C[i * p->ldc + j] - acc) / (mag > 1e-30 ? mag : 1e-30);
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
        for (int64_t j = p->N; j < p->ldc; j++)
            if (memcmp(&p->C[i * p->ldc + j], &p->C0[i * p->ldc + j], sizeof(float)) != 0)
                *pad_ok = 0;
    }
    return worst;
}

/* Kernels are cached per variant: trans_a, trans_b, accumulate, bias kind, relu. */
#define NVARIANT (2 * 2 * 2 * 3 * 2)
static LlvmGemmKernel *kcache[NVARIANT];

static LlvmGemmSpec variant_spec(int v) {
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    s.trans_a = v & 1;
    s.trans_b = (v >> 1) & 1;
    s.accumulate = (v >> 2) & 1;
    s.bias = (LlvmGemmBias)((v >> 3) % 3);
    s.relu = (v / 24) & 1;
    /* small blocks so that modest sizes cross KC/MC/NC boundaries */
    s.blk.kc = 48;
    s.blk.mc = 56;
    s.blk.nc = 96;
    s.parallel_min_flops = 1;
    return s;
}

static LlvmGemmKernel *variant_kernel(int v) {
    if (!kcache[v]) {
        LlvmGemmSpec s = variant_spec(v);
        char err[512] = "";
        kcache[v] = llvm_gemm_compile(&s, err, sizeof err);
        ck_assert_msg(kcache[v] != NULL, "compile failed: %s", err);
    }
    return kcache[v];
}

static double tol_for(int64_t K) { return 1e-6 * (double)(K + 2); }

/* ---- tests ----------------------------------------------------------------------------- */

START_TEST(test_small_exact) {
    /* integer operands: every product and sum is exact in f32, so the result must be too */
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    char err[512] = "";
    LlvmGemmKernel *k = llvm_gemm_compile(&s, err, sizeof err);
    ck_assert_msg(k != NULL, "%s", err);
    enum { M = 5, N = 7, K = 3 };
    float A[M * K], B[K * N], C[M * N];
    for (int i = 0; i < M * K; i++) A[i] = (float)(i % 7 - 3);
    for (int i = 0; i < K * N; i++) B[i] = (float)(i % 5 - 2);
    k->fn(M, N, K, A, K, B, N, C, N, NULL, NULL);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float r = 0;
            for (int q = 0; q < K; q++) r += A[i * K + q] * B[q * N + j];
            ck_assert_msg(C[i * N + j] == r, "C[%d,%d] = %g, expected %g", i, j, C[i * N + j], r);
        }
    ck_assert_int_eq(k->blk.nr % k->vec_floats, 0);
    llvm_gemm_free(k);
}
END_TEST

START_TEST(test_random_all_variants) {
    RtPool *pool = rt_pool_create(2);
    ck_assert_ptr_nonnull(pool);
    double worst_ratio = 0;
    int ncases = 0;
    for (int v = 0; v < NVARIANT; v++) {
        LlvmGemmSpec s = variant_spec(v);
        LlvmGemmKernel *k = variant_kernel(v);
        for (int rep = 0; rep < 3; rep++) {
            int64_t hi = nnc_test_quick() ? 100 : 300;
            int64_t M = test_rng_int(&rng, 1, hi), N = test_rng_int(&rng, 1, hi), K = test_rng_int(&rng, 1, hi);
            if (rep == 0) M = test_rng_int(&rng, 1, 20), N = test_rng_int(&rng, 1, 40), K = test_rng_int(&rng, 1, 9);
            Problem p;
            problem_init(&p, &s, M, N, K);
            for (int threads = 1; threads <= 2; threads++) {
                problem_run(k, &p, threads == 1 ? NULL : pool);
                int pad_ok;
                double e = problem_check(&s, &p, &pad_ok);
                double ratio = e / tol_for(K);
                if (ratio > worst_ratio) worst_ratio = ratio;
                ck_assert_msg(pad_ok, "variant %d M=%ld N=%ld K=%ld: wrote past N", v, (long)M,
                              (long)N, (long)K);
                ck_assert_msg(e <= tol_for(K),
                              "variant %d (ta=%d tb=%d acc=%d bias=%d relu=%d) M=%ld N=%ld K=%ld "
                              "threads=%d: rel err %.3g > %.3g",
                              v, s.trans_a, s.trans_b, s.accumulate, (int)s.bias, s.relu, (long)M,
                              (long)N, (long)K, threads, e, tol_for(K));
                ncases++;
            }
            problem_free(&p);
        }
    }
    printf("gemm random: %d cases, worst error %.3g of the tolerance 1e-6*(K+2)\n", ncases,
           worst_ratio);
    rt_pool_destroy(pool);
}
END_TEST

START_TEST(test_edges) {
    /* sizes around the register and cache blocks, K = 0, and single rows/columns; columns
     * ending in a tile of at most one vector (33, 48: the narrow k loop of emit_kloops), of
     * just over one (49), and a product of one vector of columns (16) */
    RtPool *pool = rt_pool_create(2);
    static const int64_t sizes[][3] = {{1, 1, 1},   {1, 300, 1},  {300, 1, 7},  {14, 32, 48},
                                       {15, 33, 49}, {13, 31, 47}, {56, 96, 96}, {57, 97, 97},
                                       {4, 5, 0},    {64, 10, 512}, {64, 512, 784},
                                       {40, 48, 33}, {9, 49, 20},  {20, 16, 70}};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        for (int v = 0; v < NVARIANT; v += 5) {
            LlvmGemmSpec s = variant_spec(v);
            LlvmGemmKernel *k = variant_kernel(v);
            Problem p;
            problem_init(&p, &s, sizes[c][0], sizes[c][1], sizes[c][2]);
            for (int threads = 1; threads <= 2; threads++) {
                problem_run(k, &p, threads == 1 ? NULL : pool);
                int pad_ok;
                double e = problem_check(&s, &p, &pad_ok);
                ck_assert_msg(pad_ok && e <= tol_for(p.K),
                              "variant %d %ldx%ldx%ld threads=%d: rel err %.3g pad_ok=%d", v,
                              (long)p.M, (long)p.N, (long)p.K, threads, e, pad_ok);
            }
            problem_free(&p);
        }
    }
    rt_pool_destroy(pool);
}
END_TEST

START_TEST(test_bit_reproducible) {
    /* default (host) blocking, sizes large enough to be split across threads */
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    s.trans_b = 1;
    s.bias = LLVM_GEMM_BIAS_COL;
    s.relu = 1;
    char err[512] = "";
    LlvmGemmKernel *k = llvm_gemm_compile(&s, err, sizeof err);
    ck_assert_msg(k != NULL, "%s", err);
    RtPool *pool = rt_pool_create(2);
    Problem p;
    problem_init(&p, &s, 203, 517, 611);
    size_t bytes = sizeof(float) * (size_t)(p.M * p.ldc);
    float *first = malloc(bytes), *one = malloc(bytes);
    problem_run(k, &p, pool);
    memcpy(first, p.C, bytes);
    for (int rep = 0; rep < 5; rep++) {
        problem_run(k, &p, pool);
        ck_assert_msg(memcmp(first, p.C, bytes) == 0, "run %d differs from the first", rep);
    }
    problem_run(k, &p, NULL);
    memcpy(one, p.C, bytes);
    ck_assert_msg(memcmp(first, one, bytes) == 0, "1 and 2 threads give different bits");
    int pad_ok;
    double e = problem_check(&s, &p, &pad_ok);
    ck_assert_msg(pad_ok && e <= tol_for(p.K), "rel err %.3g", e);
    printf("gemm host blocking: mr=%ld nr=%ld kc=%ld mc=%ld nc=%ld, %d lanes\n", (long)k->blk.mr,
           (long)k->blk.nr, (long)k->blk.kc, (long)k->blk.mc, (long)k->blk.nc, k->vec_floats);
    free(first), free(one);
    problem_free(&p);
    rt_pool_destroy(pool);
    llvm_gemm_free(k);
}
END_TEST

static int host_is_x86(void) {
#if defined(__x86_64__)
    return 1;
#else
    return 0;
#endif
}

/* The other code paths (AVX2 8-wide, SSE 4-wide) compiled for named CPUs and run here when
 * the host can execute them. */
START_TEST(test_other_targets) {
    if (!host_is_x86()) return;
    static const struct {
        const char *cpu;
        int lanes;
    } targets[] = {{"x86-64", 4}, {"haswell", 8}};
    for (size_t t = 0; t < 2; t++) {
#if defined(__x86_64__)
        if (targets[t].lanes == 8 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
            continue;
#endif
        for (int v = 0; v < NVARIANT; v += 7) {
            LlvmGemmSpec s = variant_spec(v);
            s.target.cpu = targets[t].cpu;
            char err[512] = "";
            LlvmGemmKernel *k = llvm_gemm_compile(&s, err, sizeof err);
            ck_assert_msg(k != NULL, "%s: %s", targets[t].cpu, err);
            ck_assert_int_eq(k->vec_floats, targets[t].lanes);
            Problem p;
            problem_init(&p, &s, test_rng_int(&rng, 1, 120), test_rng_int(&rng, 1, 120), test_rng_int(&rng, 1, 120));
            problem_run(k, &p, NULL);
            int pad_ok;
            double e = problem_check(&s, &p, &pad_ok);
            ck_assert_msg(pad_ok && e <= tol_for(p.K), "%s variant %d: rel err %.3g",
                          targets[t].cpu, v, e);
            problem_free(&p);
            llvm_gemm_free(k);
        }
    }
}
END_TEST

START_TEST(test_emit_object) {
    /* the same kernel emitted into a caller's module, verified, optimized, written as an
     * object file and as assembly */
    char err[512] = "";
    LlvmTargetInfo ti;
    ck_assert_int_eq(llvm_target_resolve(NULL, &ti, err, sizeof err), 0);
    LLVMTargetMachineRef tm = llvm_target_machine(NULL, err, sizeof err);
    ck_assert_msg(tm != NULL, "%s", err);
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("model", ctx);
    llvm_module_set_target(mod, tm);
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    s.trans_b = 1;
    s.bias = LLVM_GEMM_BIAS_COL;
    s.relu = 1;
    ck_assert_ptr_nonnull(llvm_gemm_emit(mod, &s, &ti, "dense1_fwd", NULL, err, sizeof err));
    ck_assert_ptr_nonnull(llvm_gemm_emit(mod, &s, &ti, "dense2_fwd", NULL, err, sizeof err));
    ck_assert_ptr_null(llvm_gemm_emit(mod, &s, &ti, "dense2_fwd", NULL, err, sizeof err));
    ck_assert_int_eq(llvm_module_verify(mod, err, sizeof err), 0);
    ck_assert_msg(llvm_module_optimize(mod, tm, 3, err, sizeof err) == 0, "%s", err);
    char dir[] = "/tmp/nnc_gemm_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char obj[256], asmf[256];
    snprintf(obj, sizeof obj, "%s/k.o", dir);
    snprintf(asmf, sizeof asmf, "%s/k.s", dir);
    ck_assert_msg(llvm_module_emit_file(mod, tm, obj, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(llvm_module_emit_file(mod, tm, asmf, 1, err, sizeof err) == 0, "%s", err);
    struct stat st;
    ck_assert_int_eq(stat(obj, &st), 0);
    ck_assert_int_gt(st.st_size, 1000);
    /* the assembly names the exported kernel, and on AVX-512 hosts uses zmm registers */
    FILE *f = fopen(asmf, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int saw_fn = 0, saw_zmm = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "dense1_fwd:", 11) == 0) saw_fn = 1;
        if (strstr(line, "zmm")) saw_zmm = 1;
    }
    fclose(f);
    ck_assert(saw_fn);
    if (ti.vec_floats == 16) ck_assert(saw_zmm);
    unlink(obj), unlink(asmf), rmdir(dir);
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    llvm_target_info_free(&ti);
}
END_TEST

START_TEST(test_blocking_defaults) {
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    LlvmGemmBlocking b;
    for (int vl = 4; vl <= 16; vl *= 2) {
        llvm_gemm_blocking(&s, vl, &b);
        int regs = vl == 16 ? 32 : 16;
        ck_assert_int_le(b.mr * (b.nr / vl) + b.nr / vl + 1, regs);
        ck_assert_int_eq(b.nr % vl, 0);
        ck_assert_int_eq(b.mc % b.mr, 0);
        ck_assert_int_eq(b.nc % b.nr, 0);
        ck_assert_int_ge(b.kc, 64);
    }
    s.blk.mr = 5, s.blk.nr = 20, s.blk.kc = 100, s.blk.mc = 12, s.blk.nc = 50;
    llvm_gemm_blocking(&s, 8, &b);
    ck_assert_int_eq(b.mr, 5);
    ck_assert_int_eq(b.nr, 24);
    ck_assert_int_eq(b.kc, 100);
    ck_assert_int_eq(b.mc, 10);
    ck_assert_int_eq(b.nc, 48);
}
END_TEST

/* ---- thread pool ----------------------------------------------------------------------- */

typedef struct {
    int counts[1000];
    RtPool *pool;
    int nested_ok;
} PoolCtx;

static void count_task(void *c, int64_t t) { ((PoolCtx *)c)->counts[t]++; }

static void nested_task(void *c, int64_t t) {
    PoolCtx *pc = c;
    (void)t;
    int local[3] = {0, 0, 0};
    /* a nested call must run inline and still run every task once */
    PoolCtx inner;
    memset(&inner, 0, sizeof inner);
    rt_parallel_for(pc->pool, 3, count_task, &inner);
    for (int i = 0; i < 3; i++) local[i] = inner.counts[i];
    if (local[0] != 1 || local[1] != 1 || local[2] != 1) pc->nested_ok = 0;
}

START_TEST(test_pool) {
    ck_assert_int_eq(rt_pool_size(NULL), 1);
    for (int n = 1; n <= 3; n++) {
        RtPool *pool = rt_pool_create(n);
        ck_assert_ptr_nonnull(pool);
        ck_assert_int_eq(rt_pool_size(pool), n);
        PoolCtx *c = calloc(1, sizeof *c);
        for (int rep = 0; rep < 200; rep++) rt_parallel_for(pool, 1000, count_task, c);
        for (int t = 0; t < 1000; t++) ck_assert_int_eq(c->counts[t], 200);
        c->pool = pool;
        c->nested_ok = 1;
        rt_parallel_for(pool, 4, nested_task, c);
        ck_assert(c->nested_ok);
        rt_parallel_for(pool, 0, count_task, c);
        free(c);
        rt_pool_destroy(pool);
    }
    PoolCtx *c = calloc(1, sizeof *c);
    rt_parallel_for(NULL, 10, count_task, c);
    for (int t = 0; t < 10; t++) ck_assert_int_eq(c->counts[t], 1);
    free(c);
}
END_TEST

/* each task of a 2-thread pool takes scratch, writes its own pattern, checks it survived
 * the other tasks, and releases: a buffer handed to two callers at once fails the check */
static void scratch_task(void *c, int64_t t) {
    PoolCtx *pc = c;
    for (int rep = 0; rep < 50; rep++) {
        int64_t n = 1024 + 64 * (t % 7) + rep;
        int32_t *b = rt_pool_scratch(pc->pool, n * 4);
        if (!b || (uintptr_t)b % 64) {
            pc->nested_ok = 0;
            return;
        }
        for (int64_t i = 0; i < n; i++) b[i] = (int32_t)(t * 100000 + i);
        for (volatile int spin = 0; spin < 2000; spin++) {
        }
        for (int64_t i = 0; i < n; i++)
            if (b[i] != (int32_t)(t * 100000 + i)) pc->nested_ok = 0;
        rt_pool_scratch_release(pc->pool, b);
    }
}

START_TEST(test_pool_scratch) {
    RtPool *pool = rt_pool_create(1);
    ck_assert_ptr_nonnull(pool);
    ck_assert_ptr_null(rt_pool_scratch(pool, -1));
    void *a = rt_pool_scratch(pool, 1000);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(rt_pool_scratch_bytes(pool), 1000);
    void *b = rt_pool_scratch(pool, 500); /* the kept buffer is taken: a fresh one */
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_int_eq(rt_pool_scratch_bytes(pool), 1000);
    rt_pool_scratch_release(pool, b); /* freed (ASan checks it is not leaked) */
    rt_pool_scratch_release(pool, a);
    ck_assert_ptr_eq(rt_pool_scratch(pool, 800), a); /* kept: no new allocation */
    rt_pool_scratch_release(pool, a);
    void *c = rt_pool_scratch(pool, 4000); /* grows */
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(rt_pool_scratch_bytes(pool), 4000);
    rt_pool_scratch_release(pool, c);
    rt_pool_destroy(pool);
    void *d = rt_pool_scratch(NULL, 64); /* no pool: allocated and freed */
    ck_assert_ptr_nonnull(d);
    rt_pool_scratch_release(NULL, d);
    rt_pool_scratch_release(NULL, NULL);
    PoolCtx *pc = calloc(1, sizeof *pc);
    pc->pool = rt_pool_create(2);
    pc->nested_ok = 1;
    rt_parallel_for(pc->pool, 8, scratch_task, pc);
    ck_assert(pc->nested_ok);
    ck_assert_int_le(rt_pool_scratch_bytes(pc->pool), 2 * 4 * (1024 + 64 * 6 + 49));
    rt_pool_destroy(pc->pool);
    free(pc);
}
END_TEST

static Suite *gemm_suite(void) {
    Suite *s = suite_create("llvm_gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_blocking_defaults);
    tcase_add_test(tc, test_small_exact);
    tcase_add_test(tc, test_random_all_variants);
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_bit_reproducible);
    tcase_add_test(tc, test_other_targets);
    tcase_add_test(tc, test_emit_object);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("pool");
    tcase_add_test(tp, test_pool);
    tcase_add_test(tp, test_pool_scratch);
    suite_add_tcase(s, tp);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(gemm_suite());
    /* one process: the kernel cache is shared between tests */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    for (int v = 0; v < NVARIANT; v++) llvm_gemm_free(kcache[v]);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
