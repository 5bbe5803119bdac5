/* cuda_gen.h — CUDA C generation (text for NVRTC, or for the host compiler with the
 * emulation header cuda_emu.h).
 *
 * The generators never choose tiles: every block/warp tile, MMA shape, pipeline depth,
 * padding, split-K factor and copy path comes from a TileDecision filled by passes/tiles.c.
 * A decision the generator cannot build is an error, not a silent substitute.
 * docs/cuda.md describes the kernels. */
#ifndef NN_CUDA_GEN_H
#define NN_CUDA_GEN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../../passes/tiles.h"

/* the arithmetic of a GEMM's multiply: inputs as stored (f32, bf16, f16) or f32 data rounded
 * to TF32 on the tensor cores; accumulation is f32 in every case */
typedef enum { CUDA_PREC_F32, CUDA_PREC_TF32, CUDA_PREC_BF16, CUDA_PREC_F16 } CudaPrec;

/* The one precision field of a build: --precision NAME (f32, tf32, bf16, f16) -> CudaPrec;
 * -1 for another name. The tiles pass records it in each GPU TileDecision (gemm.tf32, or
 * gemm.dt = DT_BF16/DT_F16 with gemm.f32_in for f32 values rounded on load), and every
 * GEMM-like kernel reads it back with cuda_tile_prec, so the decision is the only place it
 * lives. */
int cuda_prec_parse(const char *name, CudaPrec *out);
const char *cuda_prec_name(CudaPrec p);
CudaPrec cuda_tile_prec(const TileDecision *d);
/* the GEMM-input element type of a precision (DT_F32 for f32 and tf32) */
DType cuda_prec_dtype(CudaPrec p);

/* fused epilogue, applied in this order: + bias[col], activation, + residual[row, col] */
enum { CUDA_EPI_BIAS = 1, CUDA_EPI_RELU = 2, CUDA_EPI_GELU = 4, CUDA_EPI_RESIDUAL = 8 };

/* C[M,N] (f32, row-major, ldc) = epilogue(op(A)·op(B)); A is M×K row-major (lda), or K×M
 * when trans_a; B is K×N row-major (ldb), or N×K when trans_b. A batch of such products
 * runs in one launch (blockIdx.z), operands offset by their batch strides. */
typedef struct CudaGemm {
  const char *name; /* kernel symbol; split-K adds NAME_reduce */
  CudaPrec prec;
  bool trans_a, trans_b;
  unsigned epilogue;
  const TileDecision *tile;
  bool from_bufs; /* kernels take NncBufs; a device function NAME_args(NncBufs) (emitted
                     by the caller first) gives the NncGemmArgs (cuda_plan.c) */
  /* implicit GEMM (convolutions): device functions emitted by the caller first.
   * a_gather/b_gather: float F(const float *base, int row, int col) gives element (row, col)
   * of the operand (its tile is then loaded element by element, whatever the decision's
   * cp.async flag); c_index: long F(int r, int c) gives C(r, c)'s offset from p.C */
  const char *a_gather, *b_gather, *c_index;
  /* f16 loss scaling: the operand is multiplied by p.scale before its rounding to 16 bits,
   * and the f32 product by p.inv_scale before the epilogue (needs the decision's f32_in) */
  bool scale_a, scale_b;
} CudaGemm;

typedef struct CudaLaunch {
  unsigned grid[3], block[3];
  size_t smem; /* dynamic shared memory, bytes */
} CudaLaunch;

/* An elementwise group as one kernel: out[i] = f(in_0[i], ..., in_{n-1}[i]) over n f32
 * elements. f is a straight-line program: step j applies op (an elementwise IR op, OP_ADD,
 * OP_GELU, OP_RELU_BWD, ...) to operands a, b, where operand k < ninputs is input k and
 * k >= ninputs is step k - ninputs; the last step is the result. vec4: every pointer is
 * 16-byte aligned, so the kernel moves float4 (128-bit) vectors, the n % 4 tail singly. */
enum { CUDA_EW_MAX_INPUTS = 8 };
typedef struct CudaEwStep {
  int op; /* OpKind */
  int a, b;
} CudaEwStep;
typedef struct CudaEw {
  const char *name;
  int ninputs;
  const CudaEwStep *steps;
  int nsteps;
  bool vec4;
  int threads; /* per block */
} CudaEw;

/* A reduction over the last axis of a [rows, cols] f32 array, one block per row: OP_SUM,
 * OP_MEAN, OP_MAX into out[rows], or OP_SOFTMAX into out[rows, cols]. Each thread folds a
 * fixed strided subset of the row in order, then a fixed warp-shuffle tree and a fixed tree
 * over the warps: the same bits on every run. vec4: rows 16-byte aligned (cols % 4 == 0). */
typedef struct CudaReduce {
  const char *name;
  int op;      /* OpKind */
  bool vec4;
  int threads; /* per block, a multiple of 32 */
} CudaReduce;

/* kernels taking NncEwArgs / NncReduceArgs (in the prelude); 0 or -1 with err filled
 * (an op without a CUDA form, operands out of range, bad thread counts) */
int cuda_ew_emit(FILE *out, const CudaEw *e, char *err, size_t errn);
int cuda_reduce_emit(FILE *out, const CudaReduce *r, char *err, size_t errn);
/* grid-stride launch over n elements; one block per row */
void cuda_ew_launch(const CudaEw *e, int64_t n, CudaLaunch *l);
void cuda_reduce_launch(const CudaReduce *r, int64_t rows, CudaLaunch *l);

/* the CUDA C template of an elementwise op (%0, %1: operands), NULL when it has none */
const char *cuda_ew_template(int op);

/* formats the generators' errors into err; returns -1 */
int cuda_errf(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* the device prelude (wrappers over inline PTX, or cuda_emu.h under NNC_CUDA_EMU) and the
 * NncGemmArgs struct every GEMM kernel takes */
const char *cuda_prelude_text(void);

/* Writes the kernel(s) of g to out. 0, or -1 with err filled when the tile decision is not
 * one the generator can build (no GPU decision, MMA shape not matching the precision, warp
 * tile not dividing the block tile, shared memory differing from the plan's). */
int cuda_gemm_emit(FILE *out, const CudaGemm *g, char *err, size_t errn);
/* prelude + kernel(s) as one malloc'd text; NULL with err filled */
char *cuda_gemm_source(const CudaGemm *g, char *err, size_t errn);
/* launch geometry for a batch of m×n products: main kernel, and the reduction when
 * split_k > 1 */
void cuda_gemm_launch(const CudaGemm *g, int64_t m, int64_t n, int64_t batch, CudaLaunch *main_k,
                      CudaLaunch *reduce);
/* K rows each split-K slice covers (a multiple of the K tile); k when split_k is 1 */
int64_t cuda_gemm_k_split(const CudaGemm *g, int64_t k);
/* bytes of the f32 workspace split-K needs (0 when split_k is 1) */
int64_t cuda_gemm_work_bytes(const CudaGemm *g, int64_t m, int64_t n, int64_t batch);
#endif
