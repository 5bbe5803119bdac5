/* test_llvm_bf16.c — the bf16 GEMM kernels (LlvmGemmSpec.prec, codegen/llvm/llvm_bf16.c),
 * JIT-compiled, against a double-precision reference computed from the bf16-rounded inputs:
 * many shapes (odd M, N and K, K blocks with an odd tail so that pairs are padded), all
 * transpose combinations, epilogues, 1 and 2 threads; the vdpbf16ps path where the host has
 * AVX512-BF16 (skipped, with a message, where it does not) and the f32-FMA fallback on every
 * host, which must give the same bits; NaN and infinity through the rounding; the
 * instructions in the assembly emitted for CPUs with and without AVX512-BF16; and the AMX
 * kernels, compiled for sapphirerapids and run only where the CPU has AMX-BF16.
 *
 * Tolerance: both paths multiply bf16 values exactly in f32 and add K products in f32, so the
 * result is within (K + 2)·2^-24 · S of the exact sum of the rounded products, where
 * S = sum_k |a_k b_k| + |bias| + |C_old| (the classic bound of recursive summation). */
#include <check.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llvm_gemm.h"
#include "llvm_util.h"
#include "rt_threads.h"
#include "test_env.h"
#include "test_rng.h"

static TestRng rng = {0x2545F4914F6CDD1Dull};

/* the reference rounding: f32 -> bf16 (nearest even, NaN made quiet) -> f32 */
static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if (isnan(x)) u = (u | 0x00400000u) & 0xffff0000u;
    else u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

typedef struct {
    int64_t M, N, K, lda, ldb, ldc;
    float *A, *B, *C, *C0, *bias;
} Prob;

static void prob_init(Prob *p, const LlvmGemmSpec *s, int64_t M, int64_t N, int64_t K) {
    p->M = M, p->N = N, p->K = K;
    int64_t ar = s->trans_a ? K : M, ac = s->trans_a ? M : K;
    int64_t br = s->trans_b ? N : K, bc = s->trans_b ? K : N;
    p->lda = ac + test_rng_int(&rng, 0, 3), p->ldb = bc + test_rng_int(&rng, 0, 3), p->ldc = N + test_rng_int(&rng, 0, 2);
    p->A = malloc(sizeof(float) * (size_t)(ar * p->lda + 1));
    p->B = malloc(sizeof(float) * (size_t)(br * p->ldb + 1));
    p->C = malloc(sizeof(float) * (size_t)(M * p->ldc + 1));
    p->C0 = malloc(sizeof(float) * (size_t)(M * p->ldc + 1));
    p->bias = malloc(sizeof(float) * (size_t)(M > N ? M : N));
    ck_assert(p->A && p->B && p->C && p->C0 && p->bias);
    for (int64_t i = 0; i < ar * p->lda; i++) p->A[i] = test_rng_float(&rng);
    for (int64_t i = 0; i < br * p->ldb; i++) p->B[i] = test_rng_float(&rng);
    for (int64_t i = 0; i < M * p->ldc; i++) p->C0[i] = test_rng_float(&rng);
    for (int64_t i = 0; i < (M > N ? M : N); i++) p->bias[i] = test_rng_float(&rng);
}

static void prob_free(Prob *p) { free(p->A), free(p->B), free(p->C), free(p->C0), free(p->bias); }

static void prob_run(const LlvmGemmKernel *k, Prob *p, RtPool *pool) {
    memcpy(p->C, p->C0, sizeof(float) * (size_t)(p->M * p->ldc));
    k->fn(p->M, p->N, p->K, p->A, p->lda, p->B, p->ldb, p->C, p->ldc, p->bias, pool);
}

static double opa(const LlvmGemmSpec *s, const Prob *p, int64_t i, int64_t k, int rnd) {
    float a = s->trans_a ? p->A[k * p->lda + i] : p->A[i * p->lda + k];
    return rnd ? bf16_round(a) : a;
}
static double opb(const LlvmGemmSpec *s, const Prob *p, int64_t k, int64_t j, int rnd) {
    float b = s->trans_b ? p->B[j * p->ldb + k] : p->B[k * p->ldb + j];
    return rnd ? bf16_round(b) : b;
}

/* worst |C - ref| / ((K+2)·2^-24·S) over C, the reference from the rounded (rnd = 1) or
 * the f32 (rnd = 0) inputs: at most 1 passes */
static double prob_check(const LlvmGemmSpec *s, const Prob *p, int rnd) {
    double worst = 0;
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < p->N; j++) {
            double acc = 0, mag = 0;
            for (int64_t k = 0; k < p->K; k++) {
                double t = opa(s, p, i, k, rnd) * opb(s, p, k, j, rnd);
                acc += t, mag += fabs(t);
            }
            double c0 = s->accumulate ? p->C0[i * p->ldc + j] : 0;
            double bv = s->bias == LLVM_GEMM_BIAS_COL ? p->bias[j] : s->bias == LLVM_GEMM_BIAS_ROW ? p->bias[i] : 0;
            acc += c0 + bv, mag += fabs(c0) + fabs(bv);
            if (s->relu && !(acc > 0)) acc = 0;
            double tol = (double)(p->K + 2) * 0x1p-24 * (mag > 1e-30 ? mag : 1e-30);
            double e = fabs((double)p->C[i * p->ldc + j] - acc) / tol;
            if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
        }
    return worst;
}

static LlvmGemmSpec spec_of(int v, LlvmGemmPrec prec) {
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    s.prec = prec;
    s.trans_a = v & 1, s.trans_b = (v >> 1) & 1, s.accumulate = (v >> 2) & 1;
    s.bias = (LlvmGemmBias)((v >> 3) % 3);
    s.relu = (v >> 3) == 2;
    /* small blocks with an odd KC, so that K blocks end in a padded pair mid-K */
    s.blk.kc = 37, s.blk.mc = 48, s.blk.nc = 96;
    s.parallel_min_flops = 1;
    return s;
}

static LlvmGemmKernel *compile(const LlvmGemmSpec *s) {
    char err[512] = "";
    LlvmGemmKernel *k = llvm_gemm_compile(s, err, sizeof err);
    ck_assert_msg(k != NULL, "compile failed: %s", err);
    return k;
}

static int host_native(void) {
    LlvmTargetInfo ti;
    char err[256];
    ck_assert_int_eq(llvm_target_resolve(NULL, &ti, err, sizeof err), 0);
    int n = ti.has_avx512bf16 && ti.vec_floats == 16;
    llvm_target_info_free(&ti);
    return n;
}

/* the variants tested (spec_of): all transpose and accumulate combinations without an
 * epilogue, and bias/relu epilogues on two of them */
static const int variants[] = {0, 1, 2, 3, 4, 5, 6, 7, 8 + 3, 16 + 6};
#define NVARIANTS ((int)(sizeof variants / sizeof *variants))

/* random shapes through one precision: within the bound of the rounded inputs; and the two
 * paths give identical bits */
static void run_shapes(LlvmGemmPrec prec) {
    RtPool *pool = rt_pool_create(2);
    int nshape = nnc_test_quick() ? 3 : 8;
    for (int vi = 0; vi < NVARIANTS; vi++) {
        int v = variants[vi];
        LlvmGemmSpec s = spec_of(v, prec), se = spec_of(v, LLVM_GEMM_BF16_EMULATED);
        LlvmGemmKernel *k = compile(&s), *ke = prec == LLVM_GEMM_BF16 ? compile(&se) : NULL;
        for (int t = 0; t < nshape; t++) {
            int64_t M = test_rng_int(&rng, 1, 70), N = test_rng_int(&rng, 1, 90), K = test_rng_int(&rng, 1, 150);
            if (t == 0) M = 1, N = 33, K = 1;         /* a single, padded pair */
            if (t == 1) M = 29, N = 47, K = 2 * 37 + 1; /* odd tail after two full blocks */
            Prob p;
            prob_init(&p, &s, M, N, K);
            prob_run(k, &p, t & 1 ? pool : NULL);
            double e = prob_check(&s, &p, 1);
            ck_assert_msg(e <= 1.0, "variant %d prec %d %lldx%lldx%lld: error %.3g of the bound", v,
                          (int)prec, (long long)M, (long long)N, (long long)K, e);
            if (ke) {
                float *c1 = malloc(sizeof(float) * (size_t)(M * p.ldc));
                ck_assert_ptr_nonnull(c1);
                memcpy(c1, p.C, sizeof(float) * (size_t)(M * p.ldc));
                prob_run(ke, &p, NULL);
                ck_assert_msg(memcmp(c1, p.C, sizeof(float) * (size_t)(M * p.ldc)) == 0,
                              "variant %d %lldx%lldx%lld: vdpbf16ps and the FMA fallback differ", v,
                              (long long)M, (long long)N, (long long)K);
                free(c1);
            }
            prob_free(&p);
        }
        llvm_gemm_free(k);
        llvm_gemm_free(ke);
    }
    rt_pool_destroy(pool);
}

START_TEST(test_native_shapes) {
    if (!host_native()) {
        printf("test_llvm_bf16: SKIPPED running vdpbf16ps: this CPU has no AVX512-BF16 "
               "(the fallback is tested below)\n");
        return;
    }
    run_shapes(LLVM_GEMM_BF16);
}
END_TEST

START_TEST(test_fallback_shapes) { run_shapes(LLVM_GEMM_BF16_EMULATED); }
END_TEST

/* the rounding is really applied: at K = 64 the f32 inputs' result is off the bf16 bound */
START_TEST(test_rounding_visible) {
    LlvmGemmSpec s = spec_of(0, LLVM_GEMM_BF16);
    LlvmGemmKernel *k = compile(&s);
    Prob p;
    prob_init(&p, &s, 16, 32, 64);
    prob_run(k, &p, NULL);
    ck_assert_double_le(prob_check(&s, &p, 1), 1.0);
    double e32 = prob_check(&s, &p, 0);
    ck_assert_msg(e32 > 10.0, "f32 inputs agree too well (%.3g): inputs not rounded?", e32);
    prob_free(&p);
    llvm_gemm_free(k);
}
END_TEST

/* NaN, infinities and f32 values beyond the largest bf16 */
static void special_case(LlvmGemmPrec prec) {
    LlvmGemmSpec s = spec_of(0, prec);
    s.blk.kc = 0; /* defaults */
    LlvmGemmKernel *k = compile(&s);
    Prob p;
    prob_init(&p, &s, 4, 20, 9);
    for (int64_t i = 0; i < 4 * p.lda; i++) p.A[i] = 0.5f + 0.25f * (float)(i % 3);
    for (int64_t i = 0; i < 9 * p.ldb; i++) p.B[i] = 0.25f + 0.125f * (float)(i % 5);
    p.A[0 * p.lda + 8] = NAN;        /* row 0: NaN everywhere, through the odd last pair */
    p.B[3 * p.ldb + 5] = INFINITY;   /* column 5: +inf in rows 1..3 */
    p.A[2 * p.lda + 1] = FLT_MAX;    /* rounds up to +inf in bf16: row 2 all +inf */
    p.B[4 * p.ldb + 7] = -INFINITY;  /* column 7: -inf, and NaN in row 2 (+inf + -inf) */
    prob_run(k, &p, NULL);
    for (int64_t j = 0; j < 20; j++) ck_assert_msg(isnan(p.C[j]), "C[0,%lld] = %g", (long long)j, p.C[j]);
    ck_assert(isinf(p.C[1 * p.ldc + 5]) && p.C[1 * p.ldc + 5] > 0);
    ck_assert(isinf(p.C[3 * p.ldc + 7]) && p.C[3 * p.ldc + 7] < 0);
    ck_assert(isnan(p.C[2 * p.ldc + 7])); /* +inf + -inf */
    ck_assert(isinf(p.C[2 * p.ldc + 0]) && p.C[2 * p.ldc + 0] > 0);
    ck_assert(isfinite(p.C[1 * p.ldc + 0]) && isfinite(p.C[3 * p.ldc + 19]));
    prob_free(&p);
    llvm_gemm_free(k);
}

START_TEST(test_special_values) {
    special_case(LLVM_GEMM_BF16_EMULATED);
    if (host_native()) special_case(LLVM_GEMM_BF16);
    else printf("test_llvm_bf16: SKIPPED NaN/inf through vdpbf16ps: no AVX512-BF16 here\n");
}
END_TEST

/* the instructions of kernels emitted for named CPUs (no need to run them) */
static int asm_has_blk(const char *cpu, LlvmGemmPrec prec, int64_t mr, int64_t nr, const char *needle) {
    char err[512] = "";
    LlvmTarget t = {.cpu = cpu};
    LlvmTargetInfo ti;
    ck_assert_int_eq(llvm_target_resolve(&t, &ti, err, sizeof err), 0);
    LLVMTargetMachineRef tm = llvm_target_machine(&t, err, sizeof err);
    ck_assert_msg(tm != NULL, "%s", err);
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("m", ctx);
    llvm_module_set_target(mod, tm);
    LlvmGemmSpec s;
    memset(&s, 0, sizeof s);
    s.prec = prec;
    s.blk.mr = mr, s.blk.nr = nr;
    ck_assert_ptr_nonnull(llvm_gemm_emit(mod, &s, &ti, "g", NULL, err, sizeof err));
    ck_assert_int_eq(llvm_module_verify(mod, err, sizeof err), 0);
    ck_assert_msg(llvm_module_optimize(mod, tm, 2, err, sizeof err) == 0, "%s", err);
    char dir[] = "/tmp/nnc_bf16_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char asmf[256];
    snprintf(asmf, sizeof asmf, "%s/k.s", dir);
    ck_assert_msg(llvm_module_emit_file(mod, tm, asmf, 1, err, sizeof err) == 0, "%s", err);
    FILE *f = fopen(asmf, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int saw = 0;
    while (fgets(line, sizeof line, f)) saw |= strstr(line, needle) != NULL;
    fclose(f);
    unlink(asmf), rmdir(dir);
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    llvm_target_info_free(&ti);
    return saw;
}

static int asm_has(const char *cpu, LlvmGemmPrec prec, const char *needle) {
    return asm_has_blk(cpu, prec, 0, 0, needle);
}

START_TEST(test_emitted_instructions) {
    ck_assert(asm_has("znver4", LLVM_GEMM_BF16, "vdpbf16ps"));
    ck_assert(asm_has("cooperlake", LLVM_GEMM_BF16, "vdpbf16ps"));
    ck_assert(!asm_has("skylake-avx512", LLVM_GEMM_BF16, "vdpbf16ps")); /* the fallback */
    ck_assert(asm_has("skylake-avx512", LLVM_GEMM_BF16, "vfmadd"));
    ck_assert(!asm_has("znver4", LLVM_GEMM_BF16_EMULATED, "vdpbf16ps"));
    ck_assert(!asm_has("x86-64-v3", LLVM_GEMM_BF16, "vdpbf16ps"));
}
END_TEST

/* AMX: compiled for sapphirerapids with the 32x32 register tile the tiles pass decides there;
 * run where the host has AMX-BF16 (against the same reference as the other paths) */
START_TEST(test_amx) {
    ck_assert(asm_has_blk("sapphirerapids", LLVM_GEMM_BF16, 32, 32, "tdpbf16ps"));
    ck_assert(asm_has_blk("sapphirerapids", LLVM_GEMM_BF16, 32, 32, "ldtilecfg"));
    ck_assert(asm_has_blk("sapphirerapids", LLVM_GEMM_BF16, 32, 32, "tilerelease"));
    ck_assert(!asm_has_blk("znver4", LLVM_GEMM_BF16, 32, 32, "tdpbf16ps")); /* no AMX */
    ck_assert(!asm_has_blk("sapphirerapids", LLVM_GEMM_BF16, 12, 32, "tdpbf16ps"));
    LlvmTargetInfo ti;
    char err[256];
    ck_assert_int_eq(llvm_target_resolve(NULL, &ti, err, sizeof err), 0);
    int amx = ti.has_amx_bf16 && ti.vec_floats == 16;
    llvm_target_info_free(&ti);
    if (!amx) {
        printf("test_llvm_bf16: SKIPPED running the AMX kernels: this CPU has no AMX-BF16 "
               "(their code was compiled and checked above)\n");
        return;
    }
    for (int vi = 0; vi < NVARIANTS; vi++) {
        int v = variants[vi];
        LlvmGemmSpec s = spec_of(v, LLVM_GEMM_BF16);
        s.blk.mr = s.blk.nr = 32, s.blk.kc = 64, s.blk.mc = 64, s.blk.nc = 96;
        LlvmGemmKernel *k = compile(&s);
        for (int t = 0; t < 4; t++) {
            int64_t M = test_rng_int(&rng, 1, 80), N = test_rng_int(&rng, 1, 90), K = t == 0 ? 1 : test_rng_int(&rng, 1, 170);
            Prob p;
            prob_init(&p, &s, M, N, K);
            prob_run(k, &p, NULL);
            double e = prob_check(&s, &p, 1);
            ck_assert_msg(e <= 1.0, "AMX variant %d %lldx%lldx%lld: error %.3g of the bound", v,
                          (long long)M, (long long)N, (long long)K, e);
            prob_free(&p);
        }
        llvm_gemm_free(k);
    }
}
END_TEST

static Suite *bf16_suite(void) {
    Suite *s = suite_create("llvm_bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_rounding_visible);
    tcase_add_test(tc, test_native_shapes);
    tcase_add_test(tc, test_fallback_shapes);
    tcase_add_test(tc, test_special_values);
    tcase_add_test(tc, test_emitted_instructions);
    tcase_add_test(tc, test_amx);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(bf16_suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
