/* tiles.h — tile-size selection for GEMM-like ops (matmul, conv as implicit GEMM, and the
 * GEMMs of the backward pass).
 *
 * Requires: a verified graph and a hardware description. Guarantees: one TileDecision per
 * node in a side table indexed by node id (valid only for OPF_GEMM nodes); backends read
 * their tiles from it and never choose tiles themselves. Decisions are made at the current
 * dim values (tiles are concrete even when costs are symbolic).
 *
 * GPU model: MMA instruction shape per dtype and architecture, alignment rules, padding
 * suggestions with their FLOP overhead, and a block tile chosen among realistic candidates
 * by modeled time = waves x time per tile (tile and wave quantization, shared-memory fit,
 * pipeline stages, occupancy). CPU model: register blocking MR x NR from vector width and
 * register count, cache blocking KC/MC/NC from L1/L2/L3 in the spirit of BLIS.
 * docs/cost-model.md ("Tiles") derives both.
 */
#ifndef NN_TILES_H
#define NN_TILES_H
#include <stdbool.h>
#include <stdint.h>

#include "../ir/ir.h"
#include "hw.h"

/* the most rows of a matmul that streams B instead of packing it (the CPU model) */
#define TILES_CPU_STREAM_M 4
/* below this many output positions an image, a CPU convolution's images share one GEMM
 * (CG_CONV_BATCH_P of codegen/plan/plan.h, which the tiles' edge model follows) */
#define TILES_CONV_BATCH_P 256

/* a GEMM view of a node: batch independent C[m,n] += A[m,k]·B[k,n] (conv groups = batch) */
typedef struct TileGemm {
  int64_t m, n, k, batch;
  DType dt;
  bool conv;      /* implicit GEMM of a convolution: m = N·OH·OW, channels padded instead */
  int64_t kspat;  /* conv: KH·KW, so that k = channels · kspat */
  bool conv_fwd;  /* conv: the forward convolution (m = images · positions, n = channels out) */
  int64_t images; /* conv: the batch N, so that m / images positions an image */
  bool pointwise; /* conv forward or data gradient 1x1, stride 1, no padding: its GEMM's B
                     is the image (dy) itself, and n the rows of A (channels out, or in) */
  int64_t oh, ow;  /* conv: the output's rows and columns */
  bool matmul;    /* a matmul node's view (m its rows), as the backends run it: not a
                     convolution's nor a Winograd convolution's GEMMs (whose m is vectorized) */
  bool trans_a;   /* A stored K×M (rows of M), as matmul's trans_a */
  bool trans_b;   /* B stored N×K */
  bool b_shared;  /* matmul whose B has no batch dims: the batch can fold into m */
  bool tf32;      /* f32 data on tensor cores as TF32 (--precision tf32) */
  bool bf16;      /* CPU: f32 data packed as bf16 pairs, f32 accumulation (--precision bf16) */
  bool amx;       /* with bf16: the target CPU has AMX tiles (tdpbf16ps) */
  bool f32_in;    /* dt is bf16/f16 but the operands are stored f32 and rounded to dt on
                     their way into shared memory (--precision bf16|f16 on a GPU): global
                     traffic and vector-copy alignment are those of f32 */
} TileGemm;

typedef struct TileDecision {
  bool valid;
  TileGemm gemm;
  bool gpu;
  /* alignment (elements) and padding suggestion */
  const char *mma;     /* "m16n8k16", "m8n8k4", "wgmma m64nNk16", "fma" */
  int mma_m, mma_n, mma_k;
  int align, align_pref;
  bool aligned;        /* m (not for convs), n, k multiples of align */
  int64_t pad_m, pad_n, pad_k;
  double pad_overhead; /* extra FLOPs of the padded problem, fraction of the real ones */
  /* GPU block tile; the CUDA kernel generator (codegen/cuda) builds exactly this */
  int bm, bn, bk, stages, warps, ctas_per_sm;
  int wm, wn;          /* warp tile: each warp computes wm x wn of the block tile */
  int threads;         /* 32 x warps */
  int smem_pad;        /* elements added to every shared-memory row (bank conflicts) */
  int split_k;         /* K split over this many CTAs, partial sums reduced in order */
  int regs;            /* registers per thread the occupancy assumes (ptxas must not exceed) */
  bool cp_async_a, cp_async_b; /* rows of A / B 16-byte aligned: cp.async 16-byte copies */
  bool ldmatrix;       /* 16-bit operands: fragments through ldmatrix */
  int64_t smem, tiles;
  double waves, tile_eff, wave_eff;
  /* CPU blocking */
  int mr, nr, kc, mc, nc;
  bool stream_b;       /* few rows: B streamed once by a row-times-matrix kernel, no packing */
  bool direct_b;       /* CPU pointwise convolution of few output channels: its image read
                          in place by the micro-kernel, not packed (TILES_CPU_DIRECT_B_N) */
  int dw_rows;         /* a direct_b forward whose image a depthwise convolution computes
                          (a plan on a target with dw_fuse): the depthwise's output rows
                          one task computes into its thread's scratch for the GEMM to read,
                          choose_dw_strip; 0: the model keeps the two kernels apart */
  bool conv_t;         /* CPU forward convolution computed transposed, yᵀ[P, Og] = colᵀ·wᵀ:
                          the output channels (n) in the vector lanes, the positions (m) the
                          register tile's rows, written back to NCHW with the epilogue; then
                          nr is the vectorized side and mr the other (else the reverse) */
  bool nt_store;       /* CPU pointwise convolution whose output is larger than the last-level
                          cache, in one K block: its tiles stored non-temporally (past the
                          caches, no read for ownership; TILES_NT_MIN_L3) */
  bool mm_t;           /* CPU matmul of few rows computed transposed, Cᵀ = op(B)ᵀ·op(A)ᵀ: the
                          outputs (n) in the vector lanes, the rows (m) the register tile's
                          broadcast side; nr is then the vectorized side, as for conv_t */
  bool conv_few;       /* CPU forward convolution of few input channels (TILES_CONV_FEW_K)
                          computed directly: vectors of an output row's positions, the output
                          channels as register blocks sharing each input vector
                          (docs/cpu-convolutions.md); the GEMM blocking above unused */
  double eff;          /* modeled fraction of peak */
  char reason[512];
  /* CPU, a 3x3 stride-1 dilation-1 ungrouped f32 forward convolution or data gradient
   * (tiles_wino_shape) where the model prefers it: Winograd F(4,3), the decision for its 36
   * GEMMs (m = the batch's 4x4 output tiles, n = output channels, k = input channels, batch
   * 36) with the comparison in its reason; NULL: the implicit GEMM. For the filter gradient
   * of such a convolution: its 36 GEMMs M[o][c] += D·Vᵀ (m = input channels, n = output
   * channels, k = a round's tiles, B transposed) */
  const struct TileDecision *wino;
  int64_t wino_images; /* in the Winograd decision: images whose tiles one round of
                          transforms and GEMMs covers (a divisor of the batch) */
  /* CPU, a filter gradient with few output channels where the model prefers it: computed
   * directly (no GEMM, no packing), wgrad_ob output channels a pass, each with one vector
   * accumulator per tap of a filter row; 0: the implicit GEMM */
  int wgrad_ob;
  /* with wgrad_ob, a 1x1 stride-1 unpadded filter gradient: wgrad_cb input channels a pass
   * too, wgrad_ob x wgrad_cb accumulators along the images' positions (dy's and x's vectors
   * loaded once for all of them); 0: one input channel a pass */
  int wgrad_cb;
} TileDecision;

/* FLOPs of the Winograd F(4,3) transforms (runtime/rt_winograd.c) per 4x4 tile: the input
 * transform per input channel (Bᵀ·d·B: 6 + 4 one-dimensional transforms of 24 operations,
 * the first along the tile row's shared columns), the output transform per output channel
 * (Aᵀ·m·A: 6 + 4 of 13 operations, and the epilogue's multiply and add per output) */
#define TILES_WINO_IN_FLOPS 240.0
#define TILES_WINO_OUT_FLOPS 162.0
/* the transforms run as compiled C in 256-bit vectors (AVX2) with multiplies and adds apart */
#define TILES_WINO_VECTOR_BITS 256.0
/* ... a filter gradient's: dy's transform A·dy·Aᵀ per tile and output channel (4 + 6
 * one-dimensional transforms of 12 operations), and its output transform Gᵀ·M·G per channel
 * pair (6 + 3 of 14, and the taps' scattered stores) */
#define TILES_WINO_DY_FLOPS 120.0
/* seconds per (output, input) channel pair of a filter gradient's output transform Gᵀ·M·G
 * (rt_k_wino_wgrad_out, one thread): its 150 FLOPs would take 5 ns, but each vector of 8
 * pairs loads one vector from each of the 36 sums M[xi], O·C floats apart (for the usual
 * channel counts a multiple of 4 KiB: their lines share one L1 set and evict each other
 * before their second half is read), and stores the 9 taps of every pair one float at a
 * time. Measured on the Zen 4: 19.4 to 21.9 ns from 64 x 64 to 512 x 512 channels (M in L2
 * and beyond it alike) */
#define TILES_WINO_GOUT_S 20e-9
/* ... where the sums' stride 4·O·C bytes is not a multiple of 4 KiB (their lines spread
 * over several sets): 96 x 40 channels measured 11.3 ns */
#define TILES_WINO_GOUT_SPREAD_S 11e-9
/* a Winograd filter gradient's rounds cover at least this many tiles (the GEMMs' depth) */
#define TILES_WINO_WGRAD_MIN_TILES 32
/* tiles a vector of the transforms (rt_winograd.c WV) */
#define TILES_WINO_LANES 8
/* seconds per (output, input) channel pair of the filter transform a training step runs
 * every call (rt_k_wino_filter_pack: 8 rows of U a vector, their taps gathered, one
 * thread), beside the bytes of U it writes: measured on the Zen 4 with U in L2 (64 x 64
 * channels: 11.5 ns). A U larger than L2 (36 groups of panels written in runs of 512
 * bytes) is written at about one thread's memory bandwidth: 256 x 256 channels (9.4 MB)
 * measured 21 to 26 ns a pair, 11 + 144 bytes at 13.5 GB/s = 21.7 modelled */
#define TILES_WINO_FILTER_S 11e-9
/* the GEMMs' columns (tiles) a round of a Winograd convolution covers at least: the batch
 * runs in rounds of the fewest images with this many tiles (or all of them), so that V and
 * M stay small (cache-resident) while the GEMMs still fill several 32-lane register tiles */
#define TILES_WINO_MIN_TILES 128

/* a forward convolution computed directly when C·KH·KW is at most this (the stems: 3
 * channels 3x3 or 7x7, 1 channel 5x5), where the implicit GEMM's depth is too short to
 * amortize its packing and gathers */
#define TILES_CONV_FEW_K 160
/* ... its time: the FMAs (all lanes of every output vector, the last of a row partly
 * masked) at one core's FMA peak, each with a broadcast of the filter from memory, plus this
 * many seconds per output vector and channel (the epilogue and the store, the rows' buffer);
 * fitted to MobileNetV2's stem (K = 27: 0.66 of the peak) and ResNet-18's (K = 147: 0.91) on
 * Zen 4, one thread */
#define TILES_CONV_FEW_VEC_S 3.8e-9

typedef struct TilePlan {
  int n;               /* = g->nnodes */
  TileDecision *tiles; /* [n] */
  const HwTarget *hw;
} TilePlan;

/* the GEMM view of node i (false when the node is not GEMM-like) at current dims */
bool tiles_gemm_of(IrGraph *g, int i, TileGemm *out);
/* choose tiles for one GEMM */
void tiles_choose(const HwTarget *hw, const TileGemm *gm, TileDecision *out);
/* the Winograd F(4,3) geometry of node i: whether it is a candidate (a 3x3, stride-1,
 * dilation-1, ungrouped f32 conv2d, or the data gradient of one with padding at most 2: the
 * Winograd convolution of dy into dx), its output channels o, input channels c and 4x4
 * output tiles t of the whole batch */
bool tiles_wino_shape(IrGraph *g, int i, int64_t *o, int64_t *c, int64_t *t);
/* modeled seconds of one core for the transforms of a Winograd convolution over nb images
 * of th x tw tiles: their FLOPs on the vectors of 8 tiles they run (rt_winograd.c: along a
 * tile row, or several rows where a row has 2 or 4 tiles; lanes past a row or an image are
 * computed too) and the bytes of x, V[36][C][T], M[36][O][T] and y they move */
double tiles_wino_xform_time(const HwTarget *hw, int64_t o, int64_t c, int64_t nb, int64_t th,
                             int64_t tw, int64_t xbytes, int64_t ybytes);
/* modeled seconds of one core for the filter transform of o x c channel pairs that a
 * training step's Winograd kernel runs every call (rt_k_wino_filter_pack: U written
 * straight into the GEMM's panels) */
double tiles_wino_filter_time(const HwTarget *hw, int64_t o, int64_t c);
/* one core's time of a Winograd filter gradient's transforms for a round of nb images of th
 * x tw tiles: x's input transform (c channels) and dy's (o channels) on the vectors of 8
 * tiles they run, and the bytes of x, dy, V and D; and of its output transform Gᵀ·M·G (o x
 * c pairs, once a call) */
double tiles_wino_wgrad_xform_time(const HwTarget *hw, int64_t o, int64_t c, int64_t nb, int64_t th,
                                   int64_t tw, int64_t xbytes, int64_t dybytes);
double tiles_wino_wgrad_out_time(const HwTarget *hw, int64_t o, int64_t c);
/* every GEMM-like node of g; allocations in a (NULL = g->arena) */
TilePlan *pass_tiles(IrGraph *g, const HwTarget *hw, Arena *a);
/* the same with the CPU's f32 GEMMs decided for bf16 inputs (--precision bf16), on AMX
 * tiles when amx (the target CPU has AMX-BF16) */
TilePlan *pass_tiles_bf16(IrGraph *g, const HwTarget *hw, Arena *a, bool amx);
#endif
