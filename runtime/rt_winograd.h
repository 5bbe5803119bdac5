/* rt_winograd.h — the transforms of a Winograd F(4,3) convolution (3x3, stride 1, dilation
 * 1, one group) around the 36 GEMMs the generated code runs (codegen/llvm/llvm_ops.c,
 * docs/cpu-convolutions.md "Winograd F(4,3)"). Generated code calls them by name, so their
 * signatures are part of the object-file contract (like rt_kernels.h).
 *
 * geom = {N, C, H, W, O, OH, OW, ph, pw, TH, TW}: x [N, C, H, W], y [N, O, OH, OW], padding
 * ph, pw; TH = ceil(OH / 4), TW = ceil(OW / 4) tiles of 4x4 outputs, T = N·TH·TW tiles of
 * the batch, tile t = (n·TH + i)·TW + j. Edge tiles read zeros past the image and write
 * only their outputs inside y. Results do not depend on the number of threads. */
#ifndef RT_WINOGRAD_H
#define RT_WINOGRAD_H
#include <stdint.h>

/* the transformed filter U[36][O][C] = G·w[o][c]·Gᵀ (computed in double) of w [O, C, 3, 3] */
void rt_k_wino_filter(const float *w, float *u, int64_t O, int64_t C);
/* the transformed filter of a training step (the weights change every step), over the
 * pool, computed in f32 and written straight into the GEMM's packed A panels (llvm_gemm.h
 * LLVM_GEMM_PACKED_A: per group, KC blocks rpad·kc floats apart, panels of W rows, row-major
 * in W within a panel, rows past the matrix zero). geom = {O, C, flip, W, KC, rpad, gstride}:
 * filter w [O, C, 3, 3]; flip 0: U[xi] = G·w[o][c]·Gᵀ, rows o, depth c; flip 1: U[xi] =
 * G·rot180(w[o][c])·Gᵀ, rows c, depth o (the data gradient: the full correlation of dy with
 * the rotated filter, channels swapped); group xi at dst + xi·gstride floats. */
void rt_k_wino_filter_pack(void *pool, const float *w, float *dst, const int64_t *geom);
/* V[36][C][T] = Bᵀ·d·B for every 6x6 input tile d of every channel */
void rt_k_wino_in(void *pool, const float *x, float *V, const int64_t *geom);
/* y = Aᵀ·m·A for every tile and output channel from M[36][O][T], then the epilogue: + bias[o]
 * (bias not NULL), or ·affine[2o] + affine[2o + 1] (a folded batchnorm), then relu; then, with
 * res not NULL, + res (y's shape, at y's index) and relu where res_relu (a fused residual) */
void rt_k_wino_out(void *pool, const float *M, float *y, const float *bias, const float *affine,
                   int32_t relu, const float *res, int32_t res_relu, const int64_t *geom);
/* the filter gradient's input side: D[36][O][T] = A·dy·Aᵀ for every 4x4 tile of dy [N, O,
 * OH, OW] (zeros past its edges), the tiles and T as V's (A = (Aᵀ)ᵀ of the output transform) */
void rt_k_wino_dy(void *pool, const float *dy, float *D, const int64_t *geom);
/* the filter gradient from the 36 GEMMs' sums M[36][O][C] = Σ_t D[xi][o][t]·V[xi][c][t]:
 * dw[o][c] = Gᵀ·M[.][o][c]·G (6x6 to the 3x3 taps), dw [O, C, 3, 3] overwritten */
void rt_k_wino_wgrad_out(void *pool, const float *M, float *dw, int64_t O, int64_t C);
#endif
