/* cuda_cases.h — the GEMM kernels the CUDA tests generate, emulate and compile (C and C++).
 *
 * Each case is planned by passes/tiles.c for `target` at the plan dims (pm, pn, pk) and run
 * at (m, n, k): a kernel planned for a large GEMM runs on a small one with ragged edges in
 * the same alignment class, so the big block tiles and warp tiles are exercised in seconds.
 * Cases whose plan dims are misaligned get predicated loads; small M·N with a long K gets
 * split-K; batched cases run several products in one launch. prec: 0 f32, 1 tf32, 2 bf16, 3 f16 (CudaPrec). epi: CUDA_EPI_* bits. */
#ifndef NN_TESTS_CUDA_CASES_H
#define NN_TESTS_CUDA_CASES_H

typedef struct CudaCase {
  const char *name;
  int prec;
  int trans_a, trans_b;
  unsigned epi;
  const char *target;
  long pm, pn, pk; /* dims the tiles pass plans for */
  long m, n, k;    /* dims the kernel runs at */
  long batch;      /* products in one launch */
  int bcast_b;     /* B shared by the whole batch (batch stride 0) */
} CudaCase;

/* bias 1, relu 2, gelu 4, residual 8 */
static const CudaCase cuda_cases[] = {
    {"f32_nn_big", 0, 0, 0, 1 | 2, "a100", 4096, 4096, 4096, 150, 136, 100, 1, 0},
    {"f32_tn_odd", 0, 1, 0, 8, "a100", 97, 75, 83, 97, 75, 83, 1, 0},
    {"f32_nt_splitk", 0, 0, 1, 1, "h100", 32, 32, 16384, 40, 24, 1024, 1, 0},
    {"tf32_nn_big", 1, 0, 0, 1 | 4, "a100", 4096, 4096, 4096, 130, 72, 68, 1, 0},
    {"tf32_nt_odd", 1, 0, 1, 0, "h100", 61, 45, 50, 61, 45, 50, 1, 0},
    {"bf16_nn_big", 2, 0, 0, 1 | 2 | 8, "a100", 4096, 4096, 4096, 200, 136, 120, 1, 0},
    {"bf16_tn_big", 2, 1, 0, 0, "h100", 4096, 4096, 4096, 144, 80, 96, 1, 0},
    {"bf16_nt_mid", 2, 0, 1, 1, "h100", 1024, 768, 768, 72, 88, 56, 1, 0},
    {"bf16_nn_splitk", 2, 0, 0, 1, "a100", 64, 64, 8192, 64, 48, 1024, 1, 0},
    {"f16_tt_big", 3, 1, 1, 4, "a100", 4096, 4096, 4096, 136, 72, 88, 1, 0},
    {"f16_nn_odd", 3, 0, 0, 1 | 8, "h100", 100, 60, 70, 100, 60, 70, 1, 0},
    {"bf16_nt_batch", 2, 0, 1, 8, "h100", 128, 128, 64, 40, 56, 64, 3, 0},
    {"f32_nn_bcast", 0, 0, 0, 1, "a100", 128, 768, 768, 24, 40, 48, 2, 1},
    {"tf32_tn_batchsplit", 1, 1, 0, 2, "a100", 64, 64, 4096, 32, 24, 512, 2, 0},
};
#define CUDA_NCASES ((int)(sizeof cuda_cases / sizeof cuda_cases[0]))
#endif
