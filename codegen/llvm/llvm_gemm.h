/* llvm_gemm.h — generator of f32 GEMM kernels as LLVM IR (GotoBLAS/BLIS structure).
 *
 * A generated kernel computes, for row-major matrices,
 *
 *     C[M,N] = op(A)[M,K] · op(B)[K,N]  (+ C if spec.accumulate)  (+ bias)  (relu)
 *
 * where op(A) = A or Aᵀ (spec.trans_a: A is stored K×M) and likewise for B (spec.trans_b:
 * B is stored N×K, the layout of dense-layer weights). lda/ldb/ldc are row strides in
 * elements of the matrices as stored. M, N, K may be any sizes >= 0 (K = 0 gives the
 * epilogue applied to zero, or leaves C unchanged when accumulating without bias/relu).
 *
 * Structure: the N dimension is cut into NC-wide blocks, K into KC-deep blocks, M into MC
 * blocks; op(B) blocks are packed into NR-column micro-panels and op(A) blocks into
 * MR-row micro-panels (zero padded), and a register-blocked MR×NR microkernel — LLVM vector
 * types of the target's width, llvm.fma — walks the packed panels. Tails are handled by
 * masked loads/stores in the microkernel, so there is no scalar clean-up code. Bias and
 * relu are applied when the last K block is stored (the epilogue hook for dense layers).
 *
 * Threads: the output is cut into as many slices as the pool has threads (along N in
 * NR-multiples, or along M in MR-multiples when M has more micro-tiles), each computed by
 * one task of rt_parallel_for. Every element of C is computed by the same sequence of
 * operations whatever the slicing, so results are bit-identical across repeated runs and
 * across thread counts.
 *
 * The generated code calls, by name: rt_pool_size, rt_parallel_for, rt_pool_scratch and
 * rt_pool_scratch_release (runtime/rt_threads.h): each task packs into the pool's kept buffer.
 */
#ifndef NNC_LLVM_GEMM_H
#define NNC_LLVM_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include <llvm-c/Core.h>

#include "llvm_util.h"

/* Cache blocking and register blocking. 0 in any field of a spec means "choose": mr/nr
 * from the vector width, kc/mc/nc from the host's L1/L2/L3 sizes (llvm_gemm_blocking). */
typedef struct LlvmGemmBlocking {
    int64_t mr, nr; /* microkernel tile; nr is rounded up to a multiple of the vector width */
    int64_t kc, mc, nc;
} LlvmGemmBlocking;

typedef enum {
    LLVM_GEMM_BIAS_NONE = 0,
    LLVM_GEMM_BIAS_COL, /* C[i,j] += bias[j]  (dense layers: one bias per output feature) */
    LLVM_GEMM_BIAS_ROW, /* C[i,j] += bias[i] */
    LLVM_GEMM_AFFINE_ROW, /* C[i,j] = C[i,j]·bias[2i] + bias[2i+1] (a folded batchnorm) */
} LlvmGemmBias;

/* Implicit GEMM of a convolution: with `on`, B is not a matrix but the image x[C][H][W] of
 * one image and group, and op(B) is its unfolded (im2col) matrix, gathered from the image
 * while B's panels are packed (no unfolded copy in memory):
 *     col[q][s] = x[c][oh·sh - ph + kh·dh][ow·sw - pw + kw·dw]  (0 outside the image)
 * for q = (c·KH + kh)·KW + kw < C·KH·KW and s = oh·OW + ow < OH·OW. op(B) = col (the forward
 * convolution: K = C·KH·KW, N = OH·OW) or, with trans_b, colᵀ (the filter gradient:
 * K = OH·OW, N = C·KH·KW). With images > 1 the spatial index runs over that many images,
 * xs elements apart: s = (n·OH + oh)·OW + ow, so that one GEMM covers the whole batch. ldb
 * is ignored; the image offsets and the indices must be below 2^31.
 * With `rows` (forward only) the gathered operand is op(A) = colᵀ instead: the output
 * positions are the rows of C (M = OH·OW, or the images' positions) and K = C·KH·KW, so
 * that C = colᵀ · op(B) is the transposed output yᵀ[P][O] with the output channels in the
 * vector lanes; A is then the image and lda is ignored. */
typedef struct LlvmGemmConv {
    int on;
    int rows;
    int64_t C, H, W, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw;
    int64_t images, xs;
} LlvmGemmConv;
/* Input precision: f32, or op(A) and op(B) rounded to bf16 while they are packed, with f32
 * accumulation (llvm_bf16.h): vdpbf16ps where the target has AVX512-BF16, else the same
 * bf16 products through f32 FMAs; _EMULATED asks for the latter on any target. */
typedef enum {
    LLVM_GEMM_F32 = 0,
    LLVM_GEMM_BF16,
    LLVM_GEMM_BF16_EMULATED,
} LlvmGemmPrec;

/* An operand packed once ahead of the calls (a constant weight): the entry's A (or B) then
 * points to its panels as `name`.prepack wrote them and lda (ldb) is the padded row count
 * Rpad >= M (N) rounded up to MR (NR): for each KC block of K starting at pc, the block's
 * panels lie at packed + pc·Rpad, the panel of rows [r, r + W) at + r·kc. */
typedef enum {
    LLVM_GEMM_PACKED_NONE = 0,
    LLVM_GEMM_PACKED_A,
    LLVM_GEMM_PACKED_B,
} LlvmGemmPacked;

/* A fused elementwise epilogue after bias and relu (a kernel plan's CgKernel.nepi): `emit`
 * is called at generation time for every vector x of C that the last K block stores, with
 * the builder inside the microkernel `fn`, the address of x's first element, its row and
 * the column of its first lane in this call's C, the lane mask of an edge tile (NULL:
 * all lanes) and `ectx`; it returns the value to store. With epi, the function's `bias`
 * argument is ectx: an array of 64-bit words whose first is the bias pointer (or 0) and
 * whose others belong to the emitter. `key` names the emitted code (kernels with equal
 * specs and keys are the same function). */
typedef struct LlvmGemmEpi {
    LLVMValueRef (*emit)(void *ctx, LLVMBuilderRef b, LLVMValueRef fn, LLVMValueRef x,
                         LLVMValueRef cptr, LLVMValueRef row, LLVMValueRef col,
                         LLVMValueRef mask, LLVMValueRef ectx);
    void *ctx;
    const char *key;
} LlvmGemmEpi;

typedef struct LlvmGemmSpec {
    int trans_a, trans_b;
    LlvmGemmPrec prec;
    LlvmGemmPacked packed; /* f32 only */
    int accumulate; /* C += A·B instead of C = A·B */
    LlvmGemmBias bias;
    int relu;
    const LlvmGemmEpi *epi; /* NULL: bias and relu only */
    LlvmGemmConv conv;    /* B gathered from a convolution's image (zeros: a matrix) */
    LlvmGemmBlocking blk; /* zeros = defaults */
    LlvmTarget target;    /* zeros = host CPU, -O3 */
    /* Work below this many multiply-adds runs on one thread (0 = default 2^21, about 15 µs
     * of one core: below that, waking a second thread costs more than it saves). */
    int64_t parallel_min_flops;
    /* pack strided rows by gathering a value per row and k even where k is contiguous (no
     * register transposes): `nnc probe` times the gather with it; 0 everywhere else */
    int pack_gather;
    /* op(B) read in place by the microkernel, ldb apart, instead of packed into NR-column
     * panels (f32, B not transposed, not gathered, not packed once): the product of a 1x1
     * convolution with few output channels, whose B (the image) is used by few rows of A,
     * so that packing it was a copy as long as the FMAs (docs/cpu-convolutions.md). A block's
     * last, partial panel is packed as before. */
    int direct_b;
    /* the last K block's full tiles stored non-temporally (past the caches) where the tile's
     * rows are aligned to a vector (checked per tile; else plain stores): an output larger than
     * the last-level cache, which would only evict the operands on its way to memory */
    int nt_store;
} LlvmGemmSpec;

/* The generated function. `bias` is ignored unless the spec has a bias; `pool` is an RtPool*
 * (NULL = the calling thread only). */
typedef void (*LlvmGemmFn)(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
                           const float *B, int64_t ldb, float *C, int64_t ldc,
                           const float *bias, void *pool);

typedef struct LlvmGemmKernel {
    LlvmGemmFn fn;
    LlvmGemmBlocking blk; /* the blocking actually used */
    int vec_floats;       /* vector width of the microkernel, in f32 lanes */
    LlvmJit *jit;
} LlvmGemmKernel;

/* Resolves the blocking for `spec` on a target with `vec_floats` lanes: explicit fields of
 * spec->blk are kept (nr rounded up to a vector multiple, mc to an mr multiple, nc to an nr
 * multiple), zeros are filled from the register count and cache sizes. */
void llvm_gemm_blocking(const LlvmGemmSpec *spec, int vec_floats, LlvmGemmBlocking *out);

/* Bytes of the packing buffers one task of an M x N x K product allocates with blocking b
 * (the task allocates them on entry and frees them on exit; a pool runs one task per thread
 * at a time): what the product costs per thread beyond its operands. */
int64_t llvm_gemm_pack_bytes(const LlvmGemmBlocking *b, int64_t M, int64_t N, int64_t K);

/* Host data cache sizes in bytes (sysfs, then sysconf, then common defaults). */
void llvm_gemm_cache_sizes(int64_t *l1, int64_t *l2, int64_t *l3);

/* Emits the kernel into `mod` as an externally visible function `name` (with internal
 * helpers named `name`.ukr, .pack_a, .pack_b, .region, .task) and declarations of the
 * runtime functions it calls. The functions carry target-cpu/target-features attributes of
 * `target`. Returns the function, or NULL with a message. `blk_out` (may be NULL) receives
 * the blocking used. */
LLVMValueRef llvm_gemm_emit(LLVMModuleRef mod, const LlvmGemmSpec *spec,
                            const LlvmTargetInfo *target, const char *name,
                            LlvmGemmBlocking *blk_out, char *err, size_t errlen);

/* With spec->packed, llvm_gemm_emit also emits `name`.prepack (internal linkage):
 *     void prepack(ptr dst, ptr src, i64 ld, i64 rows, i64 K, i64 rpad)
 * packs op(A) (rows = M) or op(B) (rows = N) of leading dimension ld, as the spec stores it,
 * into dst in the layout above (rpad · K floats). */
LLVMValueRef llvm_gemm_prepack_fn(LLVMModuleRef mod, const char *name);

/* The single-threaded body of `name` (internal linkage), for a caller that spreads its own
 * tasks over the threads and calls it from each:
 *     void region(i64 K, ptr A, i64 lda, ptr B, i64 ldb, ptr C, i64 ldc, ptr bias,
 *                 i64 m0, i64 m1, i64 n0, i64 n1, ptr Abuf, ptr Bbuf)
 * computes C[m0:m1, n0:n1] completely, packing into Abuf (room for the A panels of one MC x KC
 * block, rounded up to 16 floats) and Bbuf (one NC x KC block): llvm_gemm_pack_bytes bounds
 * both, Abuf first. A packed once (spec.packed) needs no Abuf; with direct_b, Bbuf holds one
 * partial panel. */
LLVMValueRef llvm_gemm_region_fn(LLVMModuleRef mod, const char *name);

/* Generates, optimizes and JIT-compiles a kernel for the spec (target from spec->target).
 * NULL with a message on failure. */
LlvmGemmKernel *llvm_gemm_compile(const LlvmGemmSpec *spec, char *err, size_t errlen);
void llvm_gemm_free(LlvmGemmKernel *k);

#endif
