/* cuda_cases.h — the GEMM kernels the CUDA tests generate, emulate and compile (C and C++).
 *
 * Each case is planned by passes/tiles.c for `target` at the plan dims (pm, pn, pk) and run
 * at (m, n, k): a kernel planned for a large GEMM runs on a small one with ragged edges in
 * the same alignment class, so the big block tiles and warp tiles are exercised in seconds.
 * Cases whose plan dims are misaligned get predicated loads; small M·N with a long K gets
 * split-K; batched cases run several products in one launch. prec: 0 f32, 1 tf32, 2 bf16, 3 f16 (CudaPrec). epi: CUDA_EPI_* bits.
 * f32_in: the operands are f32 and the kernel rounds them to bf16/f16 on load (--precision bf16|f16). */
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
  int f32_in;      /* bf16/f16: f32 operands rounded on load (TileGemm.f32_in), not 16-bit ones */
} CudaCase;

/* bias 1, relu 2, gelu 4, residual 8 */
static const CudaCase cuda_cases[] = {
    {"f32_nn_big", 0, 0, 0, 1 | 2, "a100", 4096, 4096, 4096, 150, 136, 100, 1, 0, 0},
    {"f32_tn_odd", 0, 1, 0, 8, "a100", 97, 75, 83, 97, 75, 83, 1, 0, 0},
    {"f32_nt_splitk", 0, 0, 1, 1, "h100", 32, 32, 16384, 40, 24, 1024, 1, 0, 0},
    {"tf32_nn_big", 1, 0, 0, 1 | 4, "a100", 4096, 4096, 4096, 130, 72, 68, 1, 0, 0},
    {"tf32_nt_odd", 1, 0, 1, 0, "h100", 61, 45, 50, 61, 45, 50, 1, 0, 0},
    {"bf16_nn_big", 2, 0, 0, 1 | 2 | 8, "a100", 4096, 4096, 4096, 200, 136, 120, 1, 0, 0},
    {"bf16_tn_big", 2, 1, 0, 0, "h100", 4096, 4096, 4096, 144, 80, 96, 1, 0, 0},
    {"bf16_nt_mid", 2, 0, 1, 1, "h100", 1024, 768, 768, 72, 88, 56, 1, 0, 0},
    {"bf16_nn_splitk", 2, 0, 0, 1, "a100", 64, 64, 8192, 64, 48, 1024, 1, 0, 0},
    {"f16_tt_big", 3, 1, 1, 4, "a100", 4096, 4096, 4096, 136, 72, 88, 1, 0, 0},
    {"f16_nn_odd", 3, 0, 0, 1 | 8, "h100", 100, 60, 70, 100, 60, 70, 1, 0, 0},
    {"bf16_nt_batch", 2, 0, 1, 8, "h100", 128, 128, 64, 40, 56, 64, 3, 0, 0},
    {"f32_nn_bcast", 0, 0, 0, 1, "a100", 128, 768, 768, 24, 40, 48, 2, 1, 0},
    {"tf32_tn_batchsplit", 1, 1, 0, 2, "a100", 64, 64, 4096, 32, 24, 512, 2, 0, 0},
    {"bf16in_nn_big", 2, 0, 0, 1 | 2, "a100", 4096, 4096, 4096, 150, 136, 100, 1, 0, 1},
    {"f16in_tn_odd", 3, 1, 0, 8, "h100", 97, 75, 83, 97, 75, 83, 1, 0, 1},
    {"bf16in_nt_splitk", 2, 0, 1, 1, "h100", 32, 32, 16384, 40, 24, 1024, 1, 0, 1},
    {"f16in_tt_batch", 3, 1, 1, 4, "a100", 128, 128, 64, 40, 56, 64, 3, 0, 1},
};
#define CUDA_NCASES ((int)(sizeof cuda_cases / sizeof cuda_cases[0]))

/* elementwise groups: step j applies ops[j] (an IR op name) to operands a[j], b[j]; operand
 * k < ninputs is input k, k >= ninputs step k - ninputs. misalign offsets every array by one
 * float, which rules out float4 (the scalar path); n is odd so the float4 path has a tail. */
typedef struct CudaEwCase {
  const char *name;
  int ninputs;
  const char *ops[4];
  int a[4], b[4];
  int nsteps;
  long n;
  int misalign, threads;
} CudaEwCase;

static const CudaEwCase cuda_ew_cases[] = {
    {"ew_bias_gelu", 2, {"add", "gelu"}, {0, 2}, {1, 0}, 2, 10003, 0, 256},
    {"ew_gelu_bwd", 3, {"gelu_bwd", "mul", "tanh"}, {0, 3, 4}, {1, 2, 0}, 3, 4099, 0, 128},
    {"ew_silu_misal", 2, {"sub", "silu", "relu_bwd", "exp"}, {0, 2, 3, 4}, {1, 0, 0, 0}, 4, 3001, 1, 256},
    {"ew_sigmoid_div", 2, {"sigmoid", "sigmoid_bwd", "div", "neg"}, {0, 1, 3, 4}, {0, 2, 2, 0}, 4, 777, 0, 64},
};
#define CUDA_NEW_CASES ((int)(sizeof cuda_ew_cases / sizeof cuda_ew_cases[0]))

/* last-axis reductions of [rows, cols]; cols % 4 == 0 takes float4 loads */
typedef struct CudaRedCase {
  const char *name, *op;
  long rows, cols;
  int threads;
} CudaRedCase;

static const CudaRedCase cuda_red_cases[] = {
    {"red_sum", "sum", 37, 1000, 256},     {"red_mean_odd", "mean", 5, 333, 128},
    {"red_max", "max", 64, 1024, 128},     {"red_softmax", "softmax", 19, 517, 256},
    {"red_softmax4", "softmax", 8, 2048, 512},
};
#define CUDA_NRED_CASES ((int)(sizeof cuda_red_cases / sizeof cuda_red_cases[0]))
#endif
