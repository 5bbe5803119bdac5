/* llvm_bf16.h — the bf16 parts of the GEMM generator (llvm_gemm.c calls them when a spec
 * asks for bf16 inputs): packing that rounds f32 to bf16 while it packs, and the k loop of
 * the microkernel.
 *
 * Numbers: every element of op(A) and op(B) is rounded from f32 to bf16 with
 * round-to-nearest-even (a NaN stays a NaN, made quiet; infinities stay infinities; a finite
 * value above the largest bf16 becomes an infinity; subnormals are kept, never flushed). The
 * products of two bf16 values are exact in f32 and are accumulated in f32; C, the bias and
 * the epilogue stay f32.
 *
 * Packed layout (the one vdpbf16ps and AMX's tdpbf16ps read): a panel of W rows and kc
 * values of k is stored as ceil(kc/2) groups; group q holds, for each of the W rows, the
 * pair (x[r, 2q], x[r, 2q+1]) as one 32-bit word, bf16 of k = 2q in the low half. An odd kc
 * pads the last pair with +0. A panel therefore takes W·ceil(kc/2) 32-bit words, never more
 * than the f32 panel of the same shape.
 *
 * Microkernel: with AVX512-BF16 on the target (and 16-lane vectors), one
 * llvm.x86.avx512bf16.dpbf16ps.512 per accumulator and k pair. Without it, the same packed
 * data is widened back to f32 (a shift: bf16 is the top half of an f32) and multiplied with
 * two FMAs per pair, the odd k first as vdpbf16ps does. Both compute exact products of the
 * same bf16 inputs in f32; they differ only where vdpbf16ps flushes subnormal results.
 */
#ifndef NNC_LLVM_BF16_H
#define NNC_LLVM_BF16_H

#include <llvm-c/Core.h>

#include "llvm_util.h"

/* What the generator shares with the bf16 emitters: the builder positioned in the function
 * being built, and the register tile. */
typedef struct LlvmBf16Gen {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    int vl;     /* f32 lanes of a vector */
    int mr, nr; /* register tile: mr rows of nr = nrv·vl columns */
    int native; /* vdpbf16ps (llvm_bf16_native) rather than widened FMAs */
    int amx;    /* AMX tiles (llvm_bf16_amx): mr = nr = 32 */
} LlvmBf16Gen;

/* 1 when the target has AVX512-BF16 and 16-lane vectors, so that vdpbf16ps is used */
int llvm_bf16_native(const LlvmTargetInfo *ti);
/* 1 when the target has AMX-BF16 and the register tile is 32 x 32 (the tiles pass decides
 * that shape for AMX targets): 2 x 2 tiles of 16 x 16 f32 accumulators, tdpbf16ps on 16 x 32
 * bf16 tiles of A and B. Then both panels are padded to a multiple of 16 k pairs (+0), and
 * A's panels are stored row by row (row r's pairs contiguous, as tileloadd reads a row). */
int llvm_bf16_amx(const LlvmTargetInfo *ti, int64_t mr, int64_t nr);

/* AMX: the process's permission to use the tile data (Linux arch_prctl
 * ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA), requested at the builder's position */
void llvm_bf16_amx_permit(const LlvmBf16Gen *g);

/* The body of pack(ptr dst, ptr src, i64 rs, i64 cs, i64 rows, i64 kc) for W-row panels in
 * the layout above (source element (r, k) at src[r*rs + k*cs], f32); `fn` is the function,
 * with its entry block current. Ends with ret void. rowmajor (AMX's A): word (r, q) of a
 * panel at r*stride + q instead of q*W + r. */
void llvm_bf16_pack_body(const LlvmBf16Gen *g, LLVMValueRef fn, int w, int rowmajor);

/* The k loop of the microkernel: acc[i*nrv + v] (f32 vectors, i < mr, v < nr/vl) +=
 * sum over k < kc of A[i,k]·B[k, v·vl + lane], from the packed panels ap (mr rows) and bp
 * (nr columns). On return acc holds the final values, at the builder's new position. */
void llvm_bf16_kloop(const LlvmBf16Gen *g, LLVMValueRef kc, LLVMValueRef ap, LLVMValueRef bp,
                     LLVMValueRef *acc);

/* Units of 32 bits a packed panel row takes for kc values of k: ceil(kc/2), for AMX rounded
 * up to a multiple of 16 */
LLVMValueRef llvm_bf16_panel_stride(const LlvmBf16Gen *g, LLVMValueRef kc);

#endif
