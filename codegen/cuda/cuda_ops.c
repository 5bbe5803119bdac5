/* cuda_ops.c — node kernels of the CUDA backend: every plan kernel that is neither a GEMM,
 * an elementwise group nor a copy (reductions, softmax, normalizations, pooling, losses,
 * embedding, data movement, direct convolution).
 *
 * The device functions (cuda_ops_text) follow the reference interpreter's definitions and
 * runtime/rt_kernels.c: one thread per independent output item (grid-stride), double
 * accumulators, each item's terms in the interpreter's order, so results never depend on
 * the launch geometry. Kernels that end in one scalar (losses) or need per-row statistics
 * first (layernorm's dgamma) run as one block with a barrier between the phases and their
 * partial results in the split-K workspace. Each plan kernel is a small __global__ wrapper
 * calling one of these with its shapes as literals. */
#include <stdlib.h>
#include <string.h>

#include "cuda_plan.h"

enum { OPS_THREADS = 256, OPS_MAX_BLOCKS = 65535 };

const char *cuda_ops_text(void) {
  return "/* nnc node kernels */\n"
         "#define NNC_FOR(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; \\\n"
         "    i < (long long)(n); i += (long long)gridDim.x * blockDim.x)\n"
         /* one block per item: every thread of the block takes part in each item */
         "#define NNC_FOR_BLOCK(j, n) for (long long j = blockIdx.x; j < (long long)(n); j += gridDim.x)\n"
         "NNC_DEV double nnc_dinf(void) { return (double)nnc_f32_inf(); }\n"
         /* block reductions (blockDim.x a multiple of 32): a butterfly over each warp, the warps'
            results through shared memory (red: 32 floats), the same butterfly over them; every
            thread gets the total, and the order depends only on blockDim.x */
         "NNC_DEV float nnc_warp_sum(float v) {\n"
         "  for (int m = 16; m > 0; m >>= 1) v += nnc_shfl_xor(v, m);\n  return v;\n}\n"
         "NNC_DEV float nnc_block_sum(float v, float *red) {\n"
         "  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
         "  v = nnc_warp_sum(v);\n  if (lane == 0) red[warp] = v;\n  nnc_syncthreads();\n"
         "  v = nnc_warp_sum(lane < (int)(blockDim.x >> 5) ? red[lane] : 0.0f);\n  nnc_syncthreads();\n  return v;\n}\n"
         "NNC_DEV void nnc_fill(float *y, long long n, float v) { NNC_FOR(i, n) y[i] = v; }\n"
         "NNC_DEV void nnc_fill_i32(int *y, long long n, int v) { NNC_FOR(i, n) y[i] = v; }\n"
         "NNC_DEV void nnc_iota(void *y, int i32, long long n, long long inner, long long len, double a, double s) {\n"
         "  NNC_FOR(i, n) {\n"
         "    double v = a + s * (double)((i / inner) % len);\n"
         "    if (i32) ((int *)y)[i] = (int)v; else ((float *)y)[i] = (float)v;\n"
         "  }\n}\n"
         /* reductions: op 0 sum, 1 mean, 2 max, 3 var; mask bit k = axis k reduced. One block per
            output item: each thread folds a fixed strided subset in double, then nnc_block_dred
            combines the threads' values in a fixed tree (red: blockDim.x doubles of shared
            memory), so the bits depend only on the block size */
         "NNC_DEV void nnc_strides(int rank, const long long *dims, long long *st) {\n"
         "  long long acc = 1;\n"
         "  for (int k = rank - 1; k >= 0; k--) { st[k] = acc; acc *= dims[k]; }\n}\n"
         "NNC_DEV long long nnc_red_off(int rank, const long long *dims, const long long *st, int mask,\n"
         "                              int want, long long r) {\n"
         "  long long off = 0;\n"
         "  for (int k = rank - 1; k >= 0; k--)\n"
         "    if ((mask >> k & 1) == want) { off += (r % dims[k]) * st[k]; r /= dims[k]; }\n"
         "  return off;\n}\n"
         "NNC_DEV double nnc_dmax2(double a, double b) { return b > a || b != b ? b : a; }\n"
         "NNC_DEV double nnc_block_dred(double v, double *red, int mx) {\n"
         "  red[threadIdx.x] = v;\n"
         "  for (int s = blockDim.x >> 1; s > 0; s >>= 1) {\n"
         "    nnc_syncthreads();\n"
         "    if ((int)threadIdx.x < s) red[threadIdx.x] = mx ? nnc_dmax2(red[threadIdx.x], red[threadIdx.x + s]) : red[threadIdx.x] + red[threadIdx.x + s];\n"
         "  }\n"
         "  nnc_syncthreads();\n"
         "  v = red[0];\n"
         "  nnc_syncthreads();\n"
         "  return v;\n"
         "}\n"
         "NNC_DEV void nnc_reduce(const float *x, float *y, int rank, const long long *dims, int mask, int op,\n"
         "                        int corr, double *red) {\n"
         "  long long st[8], rn = 1, cnt = 1;\n"
         "  nnc_strides(rank, dims, st);\n"
         "  for (int k = 0; k < rank; k++) { if (mask >> k & 1) cnt *= dims[k]; else rn *= dims[k]; }\n"
         "  NNC_FOR_BLOCK(j, rn) {\n"
         "    long long base = nnc_red_off(rank, dims, st, mask, 0, j);\n"
         "    double acc = op == 2 ? -nnc_dinf() : 0.0;\n"
         "    for (long long q = threadIdx.x; q < cnt; q += blockDim.x) {\n"
         "      double v = x[base + nnc_red_off(rank, dims, st, mask, 1, q)];\n"
         "      acc = op == 2 ? nnc_dmax2(acc, v) : acc + v;\n"
         "    }\n"
         "    acc = nnc_block_dred(acc, red, op == 2);\n"
         "    if (op == 1 || op == 3) acc /= (double)cnt;\n"
         "    if (op == 3) {\n"
         "      double q2 = 0;\n"
         "      for (long long q = threadIdx.x; q < cnt; q += blockDim.x) {\n"
         "        double dv = x[base + nnc_red_off(rank, dims, st, mask, 1, q)] - acc;\n"
         "        q2 += dv * dv;\n"
         "      }\n"
         "      acc = nnc_block_dred(q2, red, 0) / (double)(cnt - corr);\n"
         "    }\n"
         "    if (threadIdx.x == 0) y[j] = cnt == 0 ? (op == 0 ? 0.0f : op == 2 ? -nnc_f32_inf() : nnc_f32_nan()) : (float)acc;\n"
         "  }\n"
         "}\n"
         "NNC_DEV void nnc_max_bwd(const float *dy, const float *x, const float *y, float *dx, int rank,\n"
         "                         const long long *dims, int mask) {\n"
         "  long long kd[8], kst[8], n = 1;\n"
         "  for (int k = 0; k < rank; k++) { kd[k] = (mask >> k & 1) ? 1 : dims[k]; n *= dims[k]; }\n"
         "  nnc_strides(rank, kd, kst);\n"
         "  NNC_FOR(i, n) {\n"
         "    long long r = i, off = 0;\n"
         "    for (int k = rank - 1; k >= 0; k--) { if (!(mask >> k & 1)) off += (r % dims[k]) * kst[k]; r /= dims[k]; }\n"
         "    dx[i] = x[i] == y[off] ? dy[off] : 0.0f;\n"
         "  }\n}\n"
         /* softmax over the middle axis of [outer, len, inner] */
         "NNC_DEV void nnc_softmax(const float *x, float *y, long long outer, long long len, long long inner, int lg,\n"
         "                         double *red) {\n"
         "  NNC_FOR_BLOCK(r, outer * inner) {\n"
         "    long long b = (r / inner) * len * inner + r % inner;\n"
         "    double m = -nnc_dinf(), s = 0;\n"
         "    for (long long l = threadIdx.x; l < len; l += blockDim.x) m = fmax(m, (double)x[b + l * inner]);\n"
         "    m = nnc_block_dred(m, red, 1);\n"
         "    for (long long l = threadIdx.x; l < len; l += blockDim.x) s += exp((double)x[b + l * inner] - m);\n"
         "    s = nnc_block_dred(s, red, 0);\n"
         "    double ls = log(s);\n"
         "    for (long long l = threadIdx.x; l < len; l += blockDim.x) {\n"
         "      double v = (double)x[b + l * inner] - m;\n"
         "      y[b + l * inner] = (float)(lg ? v - ls : exp(v) / s);\n"
         "    }\n"
         "  }\n"
         "}\n"
         "NNC_DEV void nnc_softmax_bwd(const float *dy, const float *y, float *dx, long long outer, long long len,\n"
         "                             long long inner, int lg, double *red) {\n"
         "  NNC_FOR_BLOCK(r, outer * inner) {\n"
         "    long long b = (r / inner) * len * inner + r % inner;\n"
         "    double s = 0;\n"
         "    for (long long l = threadIdx.x; l < len; l += blockDim.x) {\n"
         "      long long i = b + l * inner;\n"
         "      s += lg ? (double)dy[i] : (double)dy[i] * y[i];\n"
         "    }\n"
         "    s = nnc_block_dred(s, red, 0);\n"
         "    for (long long l = threadIdx.x; l < len; l += blockDim.x) {\n"
         "      long long i = b + l * inner;\n"
         "      dx[i] = (float)(lg ? dy[i] - exp((double)y[i]) * s : y[i] * ((double)dy[i] - s));\n"
         "    }\n"
         "  }\n"
         "}\n"
         /* data movement on 4-byte elements */
         "NNC_DEV void nnc_transpose(const unsigned *x, unsigned *y, int rank, const long long *dims,\n"
         "                           const long long *perm) {\n"
         "  long long ist[8], od[8], n = 1;\n"
         "  nnc_strides(rank, dims, ist);\n"
         "  for (int k = 0; k < rank; k++) { od[k] = dims[perm[k]]; n *= od[k]; }\n"
         "  NNC_FOR(i, n) {\n"
         "    long long r = i, off = 0;\n"
         "    for (int k = rank - 1; k >= 0; k--) { off += (r % od[k]) * ist[perm[k]]; r /= od[k]; }\n"
         "    y[i] = x[off];\n"
         "  }\n}\n"
         "NNC_DEV void nnc_axis_copy(const unsigned *s, unsigned *d, long long outer, long long len, long long inner,\n"
         "                           long long slen, long long sstart, long long dlen, long long dstart) {\n"
         "  NNC_FOR(i, outer * len * inner) {\n"
         "    long long o = i / (len * inner), l = (i / inner) % len, q = i % inner;\n"
         "    d[(o * dlen + dstart + l) * inner + q] = s[(o * slen + sstart + l) * inner + q];\n"
         "  }\n}\n"
         "NNC_DEV void nnc_slice_bwd(const unsigned *s, unsigned *d, long long outer, long long len, long long inner,\n"
         "                           long long blen, long long start) {\n"
         "  NNC_FOR(i, outer * blen * inner) {\n"
         "    long long o = i / (blen * inner), l = (i / inner) % blen - start, q = i % inner;\n"
         "    d[i] = l >= 0 && l < len ? s[(o * len + l) * inner + q] : 0u;\n"
         "  }\n}\n"
         /* pooling, one thread per (n, c) plane; g as rt_k_pool's geom */
         "NNC_DEV double nnc_pool_div(const long long *g, long long oh, long long ow) {\n"
         "  long long hs = oh * g[8] - g[10], ws = ow * g[9] - g[11];\n"
         "  long long he = hs + g[6] < g[2] + g[10] ? hs + g[6] : g[2] + g[10];\n"
         "  long long we = ws + g[7] < g[3] + g[11] ? ws + g[7] : g[3] + g[11];\n"
         "  if (g[14]) { hs = hs > 0 ? hs : 0; ws = ws > 0 ? ws : 0; he = he < g[2] ? he : g[2]; we = we < g[3] ? we : g[3]; }\n"
         "  return (double)((he - hs) * (we - ws));\n}\n"
         "NNC_DEV long long nnc_pool_argmax(const long long *g, const float *x, long long p, long long oh, long long ow) {\n"
         "  long long best = -1;\n  float m = -nnc_f32_inf();\n"
         "  for (long long kh = 0; kh < g[6]; kh++) {\n"
         "    long long ih = oh * g[8] - g[10] + kh * g[12];\n"
         "    if (ih < 0 || ih >= g[2]) continue;\n"
         "    for (long long kw = 0; kw < g[7]; kw++) {\n"
         "      long long iw = ow * g[9] - g[11] + kw * g[13];\n"
         "      if (iw < 0 || iw >= g[3]) continue;\n"
         "      long long i = (p * g[2] + ih) * g[3] + iw;\n"
         "      if (x[i] > m || (x[i] != x[i] && m == m)) { m = x[i]; best = i; }\n"
         "    }\n  }\n  return best;\n}\n"
         "NNC_DEV double nnc_pool_sum(const long long *g, const float *x, long long p, long long oh, long long ow) {\n"
         "  double s = 0;\n"
         "  for (long long kh = 0; kh < g[6]; kh++) {\n"
         "    long long ih = oh * g[8] - g[10] + kh * g[12];\n"
         "    if (ih < 0 || ih >= g[2]) continue;\n"
         "    for (long long kw = 0; kw < g[7]; kw++) {\n"
         "      long long iw = ow * g[9] - g[11] + kw * g[13];\n"
         "      if (iw >= 0 && iw < g[3]) s += x[(p * g[2] + ih) * g[3] + iw];\n"
         "    }\n  }\n  return s;\n}\n"
         "NNC_DEV void nnc_pool(const float *x, float *y, const long long *g, int is_max) {\n"
         "  NNC_FOR(p, g[0] * g[1])\n"
         "    for (long long oh = 0; oh < g[4]; oh++)\n"
         "      for (long long ow = 0; ow < g[5]; ow++) {\n"
         "        float *o = &y[(p * g[4] + oh) * g[5] + ow];\n"
         "        if (is_max) { long long i = nnc_pool_argmax(g, x, p, oh, ow); *o = i < 0 ? -nnc_f32_inf() : x[i]; }\n"
         "        else *o = (float)(nnc_pool_sum(g, x, p, oh, ow) / nnc_pool_div(g, oh, ow));\n"
         "      }\n}\n"
         "NNC_DEV void nnc_pool_bwd(const float *dy, const float *x, float *dx, const long long *g, int is_max) {\n"
         "  NNC_FOR(p, g[0] * g[1]) {\n"
         "    for (long long i = 0; i < g[2] * g[3]; i++) dx[p * g[2] * g[3] + i] = 0.0f;\n"
         "    for (long long oh = 0; oh < g[4]; oh++)\n"
         "      for (long long ow = 0; ow < g[5]; ow++) {\n"
         "        float d = dy[(p * g[4] + oh) * g[5] + ow];\n"
         "        if (is_max) { long long i = nnc_pool_argmax(g, x, p, oh, ow); if (i >= 0) dx[i] += d; continue; }\n"
         "        float v = (float)(d / nnc_pool_div(g, oh, ow));\n"
         "        for (long long kh = 0; kh < g[6]; kh++) {\n"
         "          long long ih = oh * g[8] - g[10] + kh * g[12];\n"
         "          if (ih < 0 || ih >= g[2]) continue;\n"
         "          for (long long kw = 0; kw < g[7]; kw++) {\n"
         "            long long iw = ow * g[9] - g[11] + kw * g[13];\n"
         "            if (iw >= 0 && iw < g[3]) dx[(p * g[2] + ih) * g[3] + iw] += v;\n"
         "          }\n        }\n      }\n  }\n}\n"
         /* batchnorm over x [N, C, S], one block per channel; mode 0 forward, 1 dx, 2 dgamma */
         "NNC_DEV void nnc_bn(const float *x, const float *dy, const float *gam, const float *bet, const float *rm,\n"
         "                    const float *rv, float *out, long long N, long long C, long long S, double eps,\n"
         "                    int train, int mode, double *red) {\n"
         "  NNC_FOR_BLOCK(c, C) {\n"
         "    double mean, inv, M = (double)(N * S);\n"
         "    if (mode == 0 && !train) { mean = rm[c]; inv = 1.0 / sqrt((double)rv[c] + eps); }\n"
         "    else {\n"
         "      double s = 0, q = 0;\n"
         "      for (long long i = threadIdx.x; i < N * S; i += blockDim.x) s += x[((i / S) * C + c) * S + i % S];\n"
         "      mean = nnc_block_dred(s, red, 0) / M;\n"
         "      for (long long i = threadIdx.x; i < N * S; i += blockDim.x) {\n"
         "        double dv = x[((i / S) * C + c) * S + i % S] - mean; q += dv * dv; }\n"
         "      inv = 1.0 / sqrt(nnc_block_dred(q, red, 0) / M + eps);\n"
         "    }\n"
         "    if (mode == 0) {\n"
         "      for (long long j = threadIdx.x; j < N * S; j += blockDim.x) {\n"
         "        long long i = ((j / S) * C + c) * S + j % S;\n"
         "        out[i] = (float)((double)gam[c] * ((double)x[i] - mean) * inv + (double)bet[c]); }\n"
         "      continue;\n"
         "    }\n"
         "    double sdy = 0, sdyx = 0;\n"
         "    for (long long j = threadIdx.x; j < N * S; j += blockDim.x) {\n"
         "      long long i = ((j / S) * C + c) * S + j % S;\n"
         "      sdy += dy[i]; sdyx += (double)dy[i] * ((double)x[i] - mean) * inv; }\n"
         "    sdy = nnc_block_dred(sdy, red, 0);\n"
         "    sdyx = nnc_block_dred(sdyx, red, 0);\n"
         "    if (mode == 2) { if (threadIdx.x == 0) out[c] = (float)sdyx; continue; }\n"
         "    double gsc = (double)gam[c] * inv / M;\n"
         "    for (long long j = threadIdx.x; j < N * S; j += blockDim.x) {\n"
         "      long long i = ((j / S) * C + c) * S + j % S;\n"
         "      out[i] = (float)(gsc * (M * dy[i] - sdy - ((double)x[i] - mean) * inv * sdyx)); }\n"
         "  }\n"
         "}\n"
         /* layernorm over rows [R, D], one block per row (dgamma: one block, a thread per column) */
         "NNC_DEV void nnc_ln_stats(const float *x, long long D, double eps, double *mean, double *inv) {\n"
         "  double s = 0, q = 0;\n"
         "  for (long long j = 0; j < D; j++) s += x[j];\n"
         "  *mean = s / (double)D;\n"
         "  for (long long j = 0; j < D; j++) q += (x[j] - *mean) * (x[j] - *mean);\n"
         "  *inv = 1.0 / sqrt(q / (double)D + eps);\n}\n"
         "NNC_DEV void nnc_ln_bstats(const float *x, long long D, double eps, double *mean, double *inv, double *red) {\n"
         "  double s = 0, q = 0;\n"
         "  for (long long j = threadIdx.x; j < D; j += blockDim.x) s += x[j];\n"
         "  *mean = nnc_block_dred(s, red, 0) / (double)D;\n"
         "  for (long long j = threadIdx.x; j < D; j += blockDim.x) q += (x[j] - *mean) * (x[j] - *mean);\n"
         "  *inv = 1.0 / sqrt(nnc_block_dred(q, red, 0) / (double)D + eps);\n"
         "}\n"
         "NNC_DEV void nnc_ln(const float *x, const float *gam, const float *bet, float *y, long long R, long long D,\n"
         "                    double eps, double *red) {\n"
         "  NNC_FOR_BLOCK(r, R) {\n"
         "    double m, inv;\n"
         "    nnc_ln_bstats(x + r * D, D, eps, &m, &inv, red);\n"
         "    for (long long j = threadIdx.x; j < D; j += blockDim.x)\n"
         "      y[r * D + j] = (float)(((double)x[r * D + j] - m) * inv * gam[j] + bet[j]);\n"
         "  }\n"
         "}\n"
         "NNC_DEV void nnc_ln_bwd(const float *dy, const float *x, const float *gam, float *dx, long long R,\n"
         "                        long long D, double eps, double *red) {\n"
         "  NNC_FOR_BLOCK(r, R) {\n"
         "    const float *xr = x + r * D, *g = dy + r * D;\n"
         "    double m, inv, s1 = 0, s2 = 0, Dd = (double)D;\n"
         "    nnc_ln_bstats(xr, D, eps, &m, &inv, red);\n"
         "    for (long long j = threadIdx.x; j < D; j += blockDim.x) { s1 += (double)gam[j] * g[j]; s2 += (double)gam[j] * g[j] * (xr[j] - m) * inv; }\n"
         "    s1 = nnc_block_dred(s1, red, 0);\n"
         "    s2 = nnc_block_dred(s2, red, 0);\n"
         "    for (long long j = threadIdx.x; j < D; j += blockDim.x)\n"
         "      dx[r * D + j] = (float)(inv / Dd * (Dd * gam[j] * g[j] - s1 - ((double)xr[j] - m) * inv * s2));\n"
         "  }\n"
         "}\n"
         "NNC_DEV void nnc_ln_dgamma(const float *dy, const float *x, float *dg, long long R, long long D, double eps,\n"
         "                           double *work) {\n"
         "  for (long long r = threadIdx.x; r < R; r += blockDim.x) nnc_ln_stats(x + r * D, D, eps, &work[r], &work[R + r]);\n"
         "  nnc_syncthreads();\n"
         "  for (long long j = threadIdx.x; j < D; j += blockDim.x) {\n"
         "    double s = 0;\n"
         "    for (long long r = 0; r < R; r++) s += (double)dy[r * D + j] * ((double)x[r * D + j] - work[r]) * work[R + r];\n"
         "    dg[j] = (float)s;\n"
         "  }\n}\n"
         /* embedding */
         "NNC_DEV void nnc_embedding(const float *tab, const int *idx, float *y, long long V, long long D, long long n) {\n"
         "  NNC_FOR(i, n * D) {\n"
         "    long long v = idx[i / D];\n"
         "    y[i] = v >= 0 && v < V ? tab[v * D + i % D] : 0.0f;\n"
         "  }\n}\n"
         "NNC_DEV void nnc_embedding_bwd(const float *dy, const int *idx, float *dt, long long V, long long D, long long n) {\n"
         "  NNC_FOR(c, D) {\n"
         "    for (long long v = 0; v < V; v++) dt[v * D + c] = 0.0f;\n"
         "    for (long long p = 0; p < n; p++) { long long v = idx[p]; if (v >= 0 && v < V) dt[v * D + c] += dy[p * D + c]; }\n"
         "  }\n}\n"
         /* dropout: the CPU backend's and the interpreter's mask, bit for bit: Philox4x32-10
          * (runtime/rt_init.c, rt_philox_uniform) at counter (i, stream), key seed */
         "NNC_DEV double nnc_philox_uniform(unsigned long long seed, unsigned long long stream, unsigned long long i) {\n"
         "  unsigned c0 = (unsigned)i, c1 = (unsigned)(i >> 32), c2 = (unsigned)stream, c3 = (unsigned)(stream >> 32);\n"
         "  unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);\n"
         "  for (int r = 0; r < 10; r++) {\n"
         "    if (r) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }\n"
         "    unsigned long long p0 = 0xD2511F53ull * c0, p1 = 0xCD9E8D57ull * c2;\n"
         "    unsigned n0 = (unsigned)(p1 >> 32) ^ c1 ^ k0, n2 = (unsigned)(p0 >> 32) ^ c3 ^ k1;\n"
         "    c0 = n0; c1 = (unsigned)p1; c2 = n2; c3 = (unsigned)p0;\n"
         "  }\n"
         "  return (double)(c0 >> 8) * (1.0 / 16777216.0);\n}\n"
         "NNC_DEV void nnc_dropout(const float *x, float *y, long long n, double p, double scale, unsigned long long seed,\n"
         "                         unsigned long long stream) {\n"
         "  NNC_FOR(i, n) y[i] = nnc_philox_uniform(seed, stream, (unsigned long long)i) >= p ? (float)(x[i] * scale) : 0.0f;\n"
         "}\n"
         /* losses: one block; rows of C >= blockDim.x logits one after another, each by the whole
            block, narrower rows a thread each; per-row terms in work, their sum by the block tree */
         "NNC_DEV double nnc_lse(const float *x, long long C) {\n"
         "  double m = -nnc_dinf(), s = 0;\n"
         "  for (long long c = 0; c < C; c++) m = fmax(m, (double)x[c]);\n"
         "  for (long long c = 0; c < C; c++) s += exp((double)x[c] - m);\n"
         "  return m + log(s);\n"
         "}\n"
         "NNC_DEV double nnc_block_lse(const float *x, long long C, double *red) {\n"
         "  double m = -nnc_dinf(), s = 0;\n"
         "  for (long long c = threadIdx.x; c < C; c += blockDim.x) m = fmax(m, (double)x[c]);\n"
         "  m = nnc_block_dred(m, red, 1);\n"
         "  for (long long c = threadIdx.x; c < C; c += blockDim.x) s += exp((double)x[c] - m);\n"
         "  return m + log(nnc_block_dred(s, red, 0));\n"
         "}\n"
         "NNC_DEV long long nnc_ce_count(const int *lab, long long N, long long ign, double *red) {\n"
         "  double k = 0;\n"
         "  for (long long n = threadIdx.x; n < N; n += blockDim.x) k += lab[n] != ign;\n"
         "  return (long long)nnc_block_dred(k, red, 0);\n"
         "}\n"
         "NNC_DEV void nnc_ce(const float *x, const int *lab, float *out, long long N, long long C, double eps,\n"
         "                    long long ign, double *work, double *red) {\n"
         "  int wide = C >= (long long)blockDim.x;\n"
         "  for (long long n = wide ? 0 : threadIdx.x; n < N; n += wide ? 1 : blockDim.x) {\n"
         "    long long l = lab[n];\n"
         "    const float *xr = x + n * C;\n"
         "    double lse = 0, mean = 0;\n"
         "    if (wide) {\n"
         "      lse = nnc_block_lse(xr, C, red);\n"
         "      for (long long c = threadIdx.x; c < C; c += blockDim.x) mean += (double)xr[c] / (double)C;\n"
         "      mean = nnc_block_dred(mean, red, 0);\n"
         "      if (threadIdx.x) continue;\n"
         "    } else if (l != ign && l >= 0 && l < C) {\n"
         "      lse = nnc_lse(xr, C);\n"
         "      for (long long c = 0; c < C; c++) mean += (double)xr[c] / (double)C;\n"
         "    }\n"
         "    if (l == ign) work[n] = 0;\n"
         "    else if (l < 0 || l >= C) work[n] = (double)nnc_f32_nan();\n"
         "    else work[n] = (1 - eps) * (lse - xr[l]) + eps * (lse - mean);\n"
         "  }\n"
         "  nnc_syncthreads();\n"
         "  double s = 0;\n"
         "  for (long long n = threadIdx.x; n < N; n += blockDim.x) s += work[n];\n"
         "  s = nnc_block_dred(s, red, 0);\n"
         "  long long k = nnc_ce_count(lab, N, ign, red);\n"
         "  if (threadIdx.x == 0) out[0] = (float)(s / (double)k);\n"
         "}\n"
         "NNC_DEV void nnc_ce_bwd(const float *dl, const float *x, const int *lab, float *dx, long long N, long long C,\n"
         "                        double eps, long long ign, double *red) {\n"
         "  double g = (double)dl[0] / (double)nnc_ce_count(lab, N, ign, red), u = eps / (double)C;\n"
         "  int wide = C >= (long long)blockDim.x;\n"
         "  for (long long n = wide ? 0 : threadIdx.x; n < N; n += wide ? 1 : blockDim.x) {\n"
         "    const float *xr = x + n * C;\n"
         "    long long l = lab[n], c0 = wide ? threadIdx.x : 0, cs = wide ? blockDim.x : 1;\n"
         "    if (l == ign || l < 0 || l >= C) { for (long long c = c0; c < C; c += cs) dx[n * C + c] = 0.0f; continue; }\n"
         "    double lse = wide ? nnc_block_lse(xr, C, red) : nnc_lse(xr, C);\n"
         "    for (long long c = c0; c < C; c += cs)\n"
         "      dx[n * C + c] = (float)(g * (exp((double)xr[c] - lse) - u - (c == l ? 1.0 - eps : 0.0)));\n"
         "  }\n"
         "}\n"
         "NNC_DEV void nnc_mse(const float *a, const float *b, float *out, long long n) {\n"
         "  if (threadIdx.x != 0) return;\n"
         "  double s = 0;\n"
         "  for (long long i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);\n"
         "  out[0] = (float)(s / (double)n);\n}\n"
         /* direct convolution, one thread per output element; g: N C H W O OH OW KH KW G sh sw ph pw dh dw */
         "NNC_DEV void nnc_conv_fwd(const float *x, const float *w, const float *bias, float *y, const long long *g,\n"
         "                          int relu) {\n"
         "  long long Cg = g[1] / g[9], Og = g[4] / g[9];\n"
         "  NNC_FOR(i, g[0] * g[4] * g[5] * g[6]) {\n"
         "    long long ow = i % g[6], oh = (i / g[6]) % g[5], o = (i / (g[5] * g[6])) % g[4], n = i / (g[4] * g[5] * g[6]);\n"
         "    double s = 0;\n"
         "    for (long long cc = 0; cc < Cg; cc++) {\n"
         "      long long c = (o / Og) * Cg + cc;\n"
         "      for (long long kh = 0; kh < g[7]; kh++) {\n"
         "        long long ih = oh * g[10] - g[12] + kh * g[14];\n"
         "        if (ih < 0 || ih >= g[2]) continue;\n"
         "        for (long long kw = 0; kw < g[8]; kw++) {\n"
         "          long long iw = ow * g[11] - g[13] + kw * g[15];\n"
         "          if (iw < 0 || iw >= g[3]) continue;\n"
         "          s += (double)w[((o * Cg + cc) * g[7] + kh) * g[8] + kw] * x[((n * g[1] + c) * g[2] + ih) * g[3] + iw];\n"
         "        }\n      }\n    }\n"
         "    float v = (float)s;\n"
         "    if (bias) v += bias[o];\n"
         "    if (relu) v = v > 0.0f || v != v ? v : 0.0f;\n"
         "    y[i] = v;\n"
         "  }\n}\n"
         "NNC_DEV void nnc_conv_data(const float *dy, const float *w, float *dx, const long long *g) {\n"
         "  long long Cg = g[1] / g[9], Og = g[4] / g[9];\n"
         "  NNC_FOR(i, g[0] * g[1] * g[2] * g[3]) {\n"
         "    long long iw = i % g[3], ih = (i / g[3]) % g[2], c = (i / (g[2] * g[3])) % g[1], n = i / (g[1] * g[2] * g[3]);\n"
         "    long long grp = c / Cg, cc = c % Cg;\n"
         "    double s = 0;\n"
         "    for (long long oo = 0; oo < Og; oo++) {\n"
         "      long long o = grp * Og + oo;\n"
         "      for (long long kh = 0; kh < g[7]; kh++) {\n"
         "        long long th = ih + g[12] - kh * g[14];\n"
         "        if (th < 0 || th % g[10]) continue;\n"
         "        long long oh = th / g[10];\n"
         "        if (oh >= g[5]) continue;\n"
         "        for (long long kw = 0; kw < g[8]; kw++) {\n"
         "          long long tw = iw + g[13] - kw * g[15];\n"
         "          if (tw < 0 || tw % g[11]) continue;\n"
         "          long long ow = tw / g[11];\n"
         "          if (ow >= g[6]) continue;\n"
         "          s += (double)w[((o * Cg + cc) * g[7] + kh) * g[8] + kw] * dy[((n * g[4] + o) * g[5] + oh) * g[6] + ow];\n"
         "        }\n      }\n    }\n"
         "    dx[i] = (float)s;\n"
         "  }\n}\n"
         "NNC_DEV void nnc_conv_filter(const float *x, const float *dy, float *dw, const long long *g) {\n"
         "  long long Cg = g[1] / g[9], Og = g[4] / g[9];\n"
         "  NNC_FOR(i, g[4] * Cg * g[7] * g[8]) {\n"
         "    long long kw = i % g[8], kh = (i / g[8]) % g[7], cc = (i / (g[7] * g[8])) % Cg, o = i / (Cg * g[7] * g[8]);\n"
         "    long long c = (o / Og) * Cg + cc;\n"
         "    double s = 0;\n"
         "    for (long long n = 0; n < g[0]; n++)\n"
         "      for (long long oh = 0; oh < g[5]; oh++) {\n"
         "        long long ih = oh * g[10] - g[12] + kh * g[14];\n"
         "        if (ih < 0 || ih >= g[2]) continue;\n"
         "        for (long long ow = 0; ow < g[6]; ow++) {\n"
         "          long long iw = ow * g[11] - g[13] + kw * g[15];\n"
         "          if (iw >= 0 && iw < g[3])\n"
         "            s += (double)x[((n * g[1] + c) * g[2] + ih) * g[3] + iw] * dy[((n * g[4] + o) * g[5] + oh) * g[6] + ow];\n"
         "        }\n      }\n"
         "    dw[i] = (float)s;\n"
         "  }\n}\n\n";
}

/* ---- the wrappers ------------------------------------------------------------------------ */

typedef struct NodeCtx {
  FILE *o;
  const CgPlan *p;
  const CgKernel *k;
  const IrNode *n;
  CudaLaunch *l;
  int64_t *work;
} NodeCtx;

static const CgVal *val(const NodeCtx *c, int i) { return &c->p->v[i]; }
static const CgVal *in_val(const NodeCtx *c, int j) { return val(c, c->n->in[j]); }
static int norm_axis(int a, int rank) { return a < 0 ? a + rank : a; }

/* "((T *)(b.REGION + OFF))" of input j (j < 0: the node's own storage) */
static const char *ptr(const NodeCtx *c, int j, const char *type, char *buf) {
  cuda_ptr_expr(buf, 96, c->p, j < 0 ? c->k->node : c->n->in[j], type);
  return buf;
}

/* a grid-stride launch over n items; one block for the one-block kernels */
static void launch(const NodeCtx *c, int64_t n, bool one_block) {
  int64_t blocks = one_block ? 1 : (n + OPS_THREADS - 1) / OPS_THREADS;
  memset(c->l, 0, sizeof *c->l);
  if (n <= 0) return; /* grid 0: nothing to launch */
  c->l->grid[0] = (unsigned)(blocks > OPS_MAX_BLOCKS ? OPS_MAX_BLOCKS : blocks);
  c->l->grid[1] = c->l->grid[2] = 1;
  c->l->block[0] = OPS_THREADS, c->l->block[1] = c->l->block[2] = 1;
}

/* one block per item (a grid-stride loop over items past the grid's limit) for the block
 * reductions: the smallest power of two of threads, from 32 to OPS_THREADS, that covers an
 * item's cnt elements, and a double per thread of shared memory for nnc_block_dred */
static void launch_items(const NodeCtx *c, int64_t items, int64_t cnt) {
  memset(c->l, 0, sizeof *c->l);
  if (items <= 0) return;
  unsigned th = 32;
  while (th < OPS_THREADS && (int64_t)th < cnt) th *= 2;
  c->l->grid[0] = (unsigned)(items > OPS_MAX_BLOCKS ? OPS_MAX_BLOCKS : items);
  c->l->grid[1] = c->l->grid[2] = 1;
  c->l->block[0] = th, c->l->block[1] = c->l->block[2] = 1;
  c->l->smem = (size_t)th * sizeof(double);
}

static const char *red_smem(const NodeCtx *c) {
  fprintf(c->o, "  NNC_EXTERN_SMEM(nnc_smem);\n");
  return "(double *)nnc_smem";
}

static void need_work(const NodeCtx *c, int64_t bytes) {
  if (bytes > *c->work) *c->work = bytes;
}

static void arr(FILE *o, const char *nm, const int64_t *v, int n) {
  fprintf(o, "  const long long %s[] = {", nm);
  for (int i = 0; i < (n ? n : 1); i++) fprintf(o, "%s%lldLL", i ? ", " : "", (long long)(n ? v[i] : 1));
  fprintf(o, "};\n");
}

static int32_t reduce_mask(const IrAttr *a, int rank) {
  int32_t m = 0;
  if (a->naxes == 0) return rank ? (int32_t)((1u << rank) - 1) : 0;
  for (int j = 0; j < a->naxes; j++) m |= 1 << norm_axis(a->axes[j], rank);
  return m;
}

static int k_const(NodeCtx *c) {
  const CgVal *v = val(c, c->k->node);
  char b[96], lit[48];
  if (c->n->type.dt == DT_I32) {
    fprintf(c->o, "  nnc_fill_i32(%s, %lldLL, %d);\n", ptr(c, -1, "int", b), (long long)v->numel, (int)c->n->attr.value);
  } else {
    float f = (float)c->n->attr.value;
    if (f != f) snprintf(lit, sizeof lit, "nnc_f32_nan()");
    else if (f - f != 0) snprintf(lit, sizeof lit, "%snnc_f32_inf()", f < 0 ? "-" : "");
    else snprintf(lit, sizeof lit, "%.9ef", (double)f);
    fprintf(c->o, "  nnc_fill(%s, %lldLL, %s);\n", ptr(c, -1, "float", b), (long long)v->numel, lit);
  }
  launch(c, v->numel, false);
  return 0;
}

static int k_iota(NodeCtx *c) {
  const CgVal *v = val(c, c->k->node);
  int64_t inner = 1;
  for (int d = c->n->attr.axis + 1; d < v->rank; d++) inner *= v->shape[d];
  char b[96];
  fprintf(c->o, "  nnc_iota(%s, %d, %lldLL, %lldLL, %lldLL, %.17g, %.17g);\n", ptr(c, -1, "void", b),
          c->n->type.dt == DT_I32, (long long)v->numel, (long long)inner, (long long)v->shape[c->n->attr.axis],
          c->n->attr.init_a, c->n->attr.init_b);
  launch(c, v->numel, false);
  return 0;
}

static int k_reduce(NodeCtx *c) {
  const CgVal *x = in_val(c, 0);
  int op = c->n->op == OP_SUM ? 0 : c->n->op == OP_MEAN ? 1 : c->n->op == OP_MAX ? 2 : 3;
  char b0[96], b1[96];
  arr(c->o, "dims", x->shape, x->rank);
  int64_t items = val(c, c->k->node)->numel;
  const char *red = red_smem(c);
  fprintf(c->o, "  nnc_reduce(%s, %s, %d, dims, %d, %d, %d, %s);\n", ptr(c, 0, "const float", b0), ptr(c, -1, "float", b1),
          x->rank, reduce_mask(&c->n->attr, x->rank), op, c->n->attr.correction, red);
  launch_items(c, items, items ? x->numel / items : 0);
  return 0;
}

static int k_max_bwd(NodeCtx *c) {
  const CgVal *x = in_val(c, 1);
  char b0[96], b1[96], b2[96], b3[96];
  arr(c->o, "dims", x->shape, x->rank);
  fprintf(c->o, "  nnc_max_bwd(%s, %s, %s, %s, %d, dims, %d);\n", ptr(c, 0, "const float", b0),
          ptr(c, 1, "const float", b1), ptr(c, 2, "const float", b2), ptr(c, -1, "float", b3), x->rank,
          reduce_mask(&c->n->attr, x->rank));
  launch(c, x->numel, false);
  return 0;
}

static void axis_view(const CgVal *v, int axis, int64_t *o, int64_t *l, int64_t *in) {
  *o = *in = 1;
  for (int d = 0; d < axis; d++) *o *= v->shape[d];
  for (int d = axis + 1; d < v->rank; d++) *in *= v->shape[d];
  *l = v->shape[axis];
}

static int k_softmax(NodeCtx *c) {
  const CgVal *y = val(c, c->k->node);
  int64_t o, l, in;
  axis_view(y, norm_axis(c->n->attr.axis, y->rank), &o, &l, &in);
  bool bwd = c->n->op == OP_SOFTMAX_BWD || c->n->op == OP_LOG_SOFTMAX_BWD;
  int lg = c->n->op == OP_LOG_SOFTMAX || c->n->op == OP_LOG_SOFTMAX_BWD;
  char b0[96], b1[96], b2[96];
  const char *red = red_smem(c);
  if (!bwd)
    fprintf(c->o, "  nnc_softmax(%s, %s, %lldLL, %lldLL, %lldLL, %d, %s);\n", ptr(c, 0, "const float", b0),
            ptr(c, -1, "float", b1), (long long)o, (long long)l, (long long)in, lg, red);
  else
    fprintf(c->o, "  nnc_softmax_bwd(%s, %s, %s, %lldLL, %lldLL, %lldLL, %d, %s);\n", ptr(c, 0, "const float", b0),
            ptr(c, 1, "const float", b1), ptr(c, -1, "float", b2), (long long)o, (long long)l, (long long)in, lg, red);
  launch_items(c, o * in, l);
  return 0;
}

static int k_transpose(NodeCtx *c) {
  const CgVal *x = in_val(c, 0);
  int64_t perm[IR_MAX_RANK];
  for (int d = 0; d < x->rank; d++) perm[d] = norm_axis(c->n->attr.axes[d], x->rank);
  char b0[96], b1[96];
  arr(c->o, "dims", x->shape, x->rank);
  arr(c->o, "perm", perm, x->rank);
  fprintf(c->o, "  nnc_transpose(%s, %s, %d, dims, perm);\n", ptr(c, 0, "const unsigned", b0),
          ptr(c, -1, "unsigned", b1), x->rank);
  launch(c, x->numel, false);
  return 0;
}

static int k_concat(NodeCtx *c) {
  const CgVal *y = val(c, c->k->node);
  int axis = norm_axis(c->n->attr.axis, y->rank);
  int64_t o, l, in, pos = 0;
  axis_view(y, axis, &o, &l, &in);
  char b0[96], b1[96];
  for (int j = 0; j < c->n->nin; j++) { /* disjoint parts of the output: no barrier needed */
    int64_t lj = in_val(c, j)->shape[axis];
    if (lj * in * o > 0)
      fprintf(c->o, "  nnc_axis_copy(%s, %s, %lldLL, %lldLL, %lldLL, %lldLL, 0, %lldLL, %lldLL);\n",
              ptr(c, j, "const unsigned", b0), ptr(c, -1, "unsigned", b1), (long long)o, (long long)lj,
              (long long)in, (long long)lj, (long long)l, (long long)pos);
    pos += lj;
  }
  launch(c, y->numel, false);
  return 0;
}

static int k_slice(NodeCtx *c) {
  bool bwd = c->n->op == OP_SLICE_BWD;
  const CgVal *big = bwd ? val(c, c->k->node) : in_val(c, 0), *small = bwd ? in_val(c, 0) : val(c, c->k->node);
  int axis = norm_axis(c->n->attr.axis, big->rank);
  int64_t start = c->n->attr.start ? dim_eval(c->p->g->dims, c->n->attr.start, NULL) : 0;
  int64_t o, bl, in, o2, sl, in2;
  axis_view(big, axis, &o, &bl, &in);
  axis_view(small, axis, &o2, &sl, &in2);
  char b0[96], b1[96];
  if (bwd)
    fprintf(c->o, "  nnc_slice_bwd(%s, %s, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL);\n", ptr(c, 0, "const unsigned", b0),
            ptr(c, -1, "unsigned", b1), (long long)o, (long long)sl, (long long)in, (long long)bl, (long long)start);
  else
    fprintf(c->o, "  nnc_axis_copy(%s, %s, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, 0);\n",
            ptr(c, 0, "const unsigned", b0), ptr(c, -1, "unsigned", b1), (long long)o, (long long)sl, (long long)in,
            (long long)bl, (long long)start, (long long)sl);
  launch(c, bwd ? big->numel : small->numel, false);
  return 0;
}

static void pool_geom(const NodeCtx *c, const CgVal *x, const CgVal *y) {
  const IrAttr *a = &c->n->attr;
  int64_t g[15] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[2], y->shape[3],
                   a->kernel[0], a->kernel[1], a->stride[0] > 0 ? a->stride[0] : a->kernel[0],
                   a->stride[1] > 0 ? a->stride[1] : a->kernel[1], a->pad[0], a->pad[1],
                   a->dilation[0] > 0 ? a->dilation[0] : 1, a->dilation[1] > 0 ? a->dilation[1] : 1,
                   a->exclude_pad};
  arr(c->o, "geom", g, 15);
}

static int k_pool(NodeCtx *c) {
  char b0[96], b1[96], b2[96];
  const CgVal *x;
  if (c->n->op == OP_MAXPOOL || c->n->op == OP_AVGPOOL) {
    x = in_val(c, 0);
    pool_geom(c, x, val(c, c->k->node));
    fprintf(c->o, "  nnc_pool(%s, %s, geom, %d);\n", ptr(c, 0, "const float", b0), ptr(c, -1, "float", b1),
            c->n->op == OP_MAXPOOL);
  } else if (c->n->op == OP_MAXPOOL_BWD) {
    x = in_val(c, 1);
    pool_geom(c, x, in_val(c, 0));
    fprintf(c->o, "  nnc_pool_bwd(%s, %s, %s, geom, 1);\n", ptr(c, 0, "const float", b0), ptr(c, 1, "const float", b1),
            ptr(c, -1, "float", b2));
  } else {
    x = val(c, c->k->node);
    pool_geom(c, x, in_val(c, 0));
    fprintf(c->o, "  nnc_pool_bwd(%s, 0, %s, geom, 0);\n", ptr(c, 0, "const float", b0), ptr(c, -1, "float", b1));
  }
  launch(c, x->shape[0] * x->shape[1], false);
  return 0;
}

static int k_bn(NodeCtx *c) {
  bool fwd = c->n->op == OP_BATCHNORM;
  const CgVal *x = in_val(c, fwd ? 0 : 1);
  int64_t N = x->rank > 0 ? x->shape[0] : 1, C = x->rank > 1 ? x->shape[1] : 1;
  int64_t S = N * C != 0 ? x->numel / (N * C) : 0;
  char bx[96], bd[96], bg[96], bb[96], rm[96], rv[96], bo[96];
  const char *red = red_smem(c);
  if (fwd)
    fprintf(c->o, "  nnc_bn(%s, 0, %s, %s, %s, %s, %s, %lldLL, %lldLL, %lldLL, %.17g, %d, 0, %s);\n",
            ptr(c, 0, "const float", bx), ptr(c, 1, "const float", bg), ptr(c, 2, "const float", bb),
            ptr(c, 3, "const float", rm), ptr(c, 4, "const float", rv), ptr(c, -1, "float", bo), (long long)N,
            (long long)C, (long long)S, c->n->attr.value, c->n->attr.train ? 1 : 0, red);
  else
    fprintf(c->o, "  nnc_bn(%s, %s, %s, 0, 0, 0, %s, %lldLL, %lldLL, %lldLL, %.17g, 1, %d, %s);\n",
            ptr(c, 1, "const float", bx), ptr(c, 0, "const float", bd),
            c->n->op == OP_BATCHNORM_BWD ? ptr(c, 2, "const float", bg) : "0", ptr(c, -1, "float", bo),
            (long long)N, (long long)C, (long long)S, c->n->attr.value, c->n->op == OP_BATCHNORM_BWD ? 1 : 2, red);
  launch_items(c, C, N * S);
  return 0;
}

static int k_ln(NodeCtx *c) {
  const CgVal *x = in_val(c, c->n->op == OP_LAYERNORM ? 0 : 1);
  int na = c->n->attr.naxes > 0 ? c->n->attr.naxes : 1;
  int64_t D = 1;
  for (int d = x->rank - na; d < x->rank; d++) D *= d >= 0 ? x->shape[d] : 1;
  int64_t R = D ? x->numel / D : 0;
  char b0[96], b1[96], b2[96], b3[96];
  double eps = c->n->attr.value;
  if (c->n->op == OP_LAYERNORM) {
    const char *red = red_smem(c);
    fprintf(c->o, "  nnc_ln(%s, %s, %s, %s, %lldLL, %lldLL, %.17g, %s);\n", ptr(c, 0, "const float", b0),
            ptr(c, 1, "const float", b1), ptr(c, 2, "const float", b2), ptr(c, -1, "float", b3), (long long)R,
            (long long)D, eps, red);
    launch_items(c, R, D);
  } else if (c->n->op == OP_LAYERNORM_BWD) {
    const char *red = red_smem(c);
    fprintf(c->o, "  nnc_ln_bwd(%s, %s, %s, %s, %lldLL, %lldLL, %.17g, %s);\n", ptr(c, 0, "const float", b0),
            ptr(c, 1, "const float", b1), ptr(c, 2, "const float", b2), ptr(c, -1, "float", b3), (long long)R,
            (long long)D, eps, red);
    launch_items(c, R, D);
  } else {
    fprintf(c->o, "  nnc_ln_dgamma(%s, %s, %s, %lldLL, %lldLL, %.17g, (double *)b.work);\n",
            ptr(c, 0, "const float", b0), ptr(c, 1, "const float", b1), ptr(c, -1, "float", b2), (long long)R,
            (long long)D, eps);
    need_work(c, 16 * R);
    launch(c, R + D, true);
  }
  return 0;
}

static int k_embedding(NodeCtx *c) {
  char b0[96], b1[96], b2[96];
  int64_t n = in_val(c, 1)->numel;
  if (c->n->op == OP_EMBEDDING) {
    const CgVal *t = in_val(c, 0);
    fprintf(c->o, "  nnc_embedding(%s, %s, %s, %lldLL, %lldLL, %lldLL);\n", ptr(c, 0, "const float", b0),
            ptr(c, 1, "const int", b1), ptr(c, -1, "float", b2), (long long)t->shape[0], (long long)t->shape[1],
            (long long)n);
    launch(c, n * t->shape[1], false);
  } else {
    const CgVal *t = val(c, c->k->node);
    fprintf(c->o, "  nnc_embedding_bwd(%s, %s, %s, %lldLL, %lldLL, %lldLL);\n", ptr(c, 0, "const float", b0),
            ptr(c, 1, "const int", b1), ptr(c, -1, "float", b2), (long long)t->shape[0], (long long)t->shape[1],
            (long long)n);
    launch(c, t->shape[1], false);
  }
  return 0;
}

/* DROPOUT (training) and DROPOUT_BWD: the same mask; stream = attr.seed + (step << 32) as the
 * CPU backend (codegen/llvm/llvm_ops.c) and the interpreter */
static int k_dropout(NodeCtx *c) {
  char b0[96], b1[96];
  int64_t n = val(c, c->k->node)->numel;
  double p = c->n->attr.value;
  fprintf(c->o, "  nnc_dropout(%s, %s, %lldLL, %.17g, %.17g, b.seed, %lluULL + (b.step << 32));\n",
          ptr(c, 0, "const float", b0), ptr(c, -1, "float", b1), (long long)n, p, 1.0 / (1.0 - p),
          (unsigned long long)c->n->attr.seed);
  launch(c, n, false);
  return 0;
}

static int k_loss(NodeCtx *c) {
  char b0[96], b1[96], b2[96], b3[96];
  char ign[48] = "(-9223372036854775807LL - 1)"; /* INT64_MIN: no label ignored */
  if (c->n->attr.ignore) snprintf(ign, sizeof ign, "%lldLL", (long long)c->n->attr.ignore_index);
  if (c->n->op == OP_CROSS_ENTROPY) {
    const CgVal *l = in_val(c, 0);
    const char *red = red_smem(c);
    fprintf(c->o, "  nnc_ce(%s, %s, %s, %lldLL, %lldLL, %.17g, %s, (double *)b.work, %s);\n",
            ptr(c, 0, "const float", b0), ptr(c, 1, "const int", b1), ptr(c, -1, "float", b2),
            (long long)l->shape[0], (long long)l->shape[1], c->n->attr.value, ign, red);
    need_work(c, 8 * l->shape[0]);
  } else if (c->n->op == OP_CE_BWD) {
    const CgVal *l = in_val(c, 1);
    const char *red = red_smem(c);
    fprintf(c->o, "  nnc_ce_bwd(%s, %s, %s, %s, %lldLL, %lldLL, %.17g, %s, %s);\n",
            ptr(c, 0, "const float", b0), ptr(c, 1, "const float", b1), ptr(c, 2, "const int", b2),
            ptr(c, -1, "float", b3), (long long)l->shape[0], (long long)l->shape[1], c->n->attr.value, ign, red);
  } else {
    fprintf(c->o, "  nnc_mse(%s, %s, %s, %lldLL);\n", ptr(c, 0, "const float", b0), ptr(c, 1, "const float", b1),
            ptr(c, -1, "float", b2), (long long)in_val(c, 0)->numel);
  }
  launch_items(c, 1, OPS_THREADS);
  return 0;
}

static int k_conv(NodeCtx *c) {
  CgConv g;
  cg_conv_geom(c->p, c->k->node, &g);
  int64_t geom[16] = {g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.KH, g.KW, g.G, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
  arr(c->o, "geom", geom, 16);
  char b0[96], b1[96], b2[96], bb[96] = "0";
  if (c->n->op == OP_CONV2D) {
    if (c->k->bias) cuda_ptr_expr(bb, sizeof bb, c->p, c->k->bias_node, "const float");
    cuda_ptr_expr(b2, sizeof b2, c->p, c->k->out, "float");
    fprintf(c->o, "  nnc_conv_fwd(%s, %s, %s, %s, geom, %d);\n", ptr(c, 0, "const float", b0),
            ptr(c, 1, "const float", b1), bb, b2, c->k->relu);
    launch(c, g.N * g.O * g.OH * g.OW, false);
  } else if (c->n->op == OP_CONV2D_BWD_DATA) {
    fprintf(c->o, "  nnc_conv_data(%s, %s, %s, geom);\n", ptr(c, 0, "const float", b0), ptr(c, 1, "const float", b1),
            ptr(c, -1, "float", b2));
    launch(c, g.N * g.C * g.H * g.W, false);
  } else {
    fprintf(c->o, "  nnc_conv_filter(%s, %s, %s, geom);\n", ptr(c, 0, "const float", b0),
            ptr(c, 1, "const float", b1), ptr(c, -1, "float", b2));
    launch(c, g.O * g.Cg * g.KH * g.KW, false);
  }
  return 0;
}

typedef int (*NodeFn)(NodeCtx *c);
static const NodeFn node_fns[OP_COUNT] = {
    [OP_CONST] = k_const,           [OP_IOTA] = k_iota,
    [OP_SUM] = k_reduce,            [OP_MEAN] = k_reduce,
    [OP_MAX] = k_reduce,            [OP_VAR] = k_reduce,
    [OP_MAX_BWD] = k_max_bwd,       [OP_SOFTMAX] = k_softmax,
    [OP_LOG_SOFTMAX] = k_softmax,   [OP_SOFTMAX_BWD] = k_softmax,
    [OP_LOG_SOFTMAX_BWD] = k_softmax, [OP_TRANSPOSE] = k_transpose,
    [OP_CONCAT] = k_concat,         [OP_SLICE] = k_slice,
    [OP_SLICE_BWD] = k_slice,       [OP_MAXPOOL] = k_pool,
    [OP_AVGPOOL] = k_pool,          [OP_MAXPOOL_BWD] = k_pool,
    [OP_AVGPOOL_BWD] = k_pool,      [OP_BATCHNORM] = k_bn,
    [OP_BATCHNORM_BWD] = k_bn,      [OP_BN_DGAMMA] = k_bn,
    [OP_LAYERNORM] = k_ln,          [OP_LAYERNORM_BWD] = k_ln,
    [OP_LN_DGAMMA] = k_ln,          [OP_EMBEDDING] = k_embedding,
    [OP_EMBEDDING_BWD] = k_embedding, [OP_CROSS_ENTROPY] = k_loss,
    [OP_CE_BWD] = k_loss,           [OP_MSE] = k_loss,
    [OP_CONV2D] = k_conv,           [OP_CONV2D_BWD_DATA] = k_conv,
    [OP_CONV2D_BWD_FILTER] = k_conv, [OP_DROPOUT] = k_dropout,
    [OP_DROPOUT_BWD] = k_dropout,
};

bool cuda_op_defined(int op) { return op >= 0 && op < OP_COUNT && node_fns[op] != NULL; }

int cuda_node_emit(FILE *out, const CgPlan *p, const CgKernel *k, const char *name, CudaLaunch *l,
                   int64_t *work, Diag *d) {
  const IrNode *n = &p->g->nodes[k->node];
  if (!cuda_op_defined(n->op)) {
    diag_error(d, n->loc, "CUDA code generation: no CUDA lowering for op %s", ir_op_name(n->op));
    return -1;
  }
  NodeCtx c = {.o = out, .p = p, .k = k, .n = n, .l = l, .work = work};
  fprintf(out, "/* %s: %s %%%d */\n", name, ir_op_name(n->op), k->node);
  fprintf(out, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncBufs b) {\n", OPS_THREADS, name);
  int rc = node_fns[n->op](&c);
  fprintf(out, "}\n\n");
  return rc;
}
