/* test_tiles.c — tile selection on aligned and misaligned GEMMs (GPU) and the CPU
 * register/cache blocking, each against values derived by hand from the model in
 * docs/cost-model.md ("Tiles"). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../passes/tiles.h"
#include "cost_nets.h"

static TileDecision choose(const char *target, int64_t m, int64_t n, int64_t k, DType dt) {
  const HwTarget *hw = hw_find_builtin(target);
  ck_assert_ptr_nonnull(hw);
  TileGemm gm = {.m = m, .n = n, .k = k, .batch = 1, .dt = dt};
  TileDecision d;
  tiles_choose(hw, &gm, &d);
  return d;
}

/* 4096^3 f16 on A100: aligned (multiples of 8 and of the preferred 64), mma m16n8k16; the big
 * GEMM picks a 128x128 tile or larger: 32x32 = 1024 tiles over 108 SMs, tile eff 100% */
START_TEST(t_gpu_aligned) {
  TileDecision d = choose("a100-sxm-80gb", 4096, 4096, 4096, DT_F16);
  ck_assert(d.valid && d.gpu && d.aligned);
  ck_assert_str_eq(d.mma, "mma.sync m16n8k16");
  ck_assert_int_eq(d.align, 8);
  ck_assert_int_eq(d.align_pref, 64);
  ck_assert_double_eq_tol(d.pad_overhead, 0, 1e-12);
  ck_assert_int_ge(d.bm * d.bn, 128 * 128);
  ck_assert_double_eq_tol(d.tile_eff, 1.0, 1e-12);
  ck_assert_int_eq(d.bk, 32); /* 64-byte K slices of halves */
  ck_assert_int_ge(d.stages, 2);
  ck_assert_int_le(d.smem, 163 * 1024);
  /* shared-memory rows are padded by 16 bytes (8 halves) against bank conflicts: A tile
   * bm x (bk + 8), B tile bk x (bn + 8) */
  ck_assert_int_eq(d.smem_pad, 8);
  ck_assert_int_eq(d.smem, ((int64_t)d.bm * (d.bk + 8) + (int64_t)d.bk * (d.bn + 8)) * 2 * d.stages);
  /* waves = tiles / (SMs x CTAs per SM), recomputed */
  int64_t tiles = (4096 / d.bm) * (4096 / d.bn);
  ck_assert_int_eq(d.tiles, tiles);
  ck_assert_double_eq_tol(d.waves, (double)tiles / (108.0 * d.ctas_per_sm), 1e-12);
  ck_assert(d.eff > 0.5 && d.eff <= 1.0);
  /* Volta uses the 8x8x4 HMMA shape and double buffering */
  TileDecision v = choose("v100-sxm2", 4096, 4096, 4096, DT_F16);
  ck_assert_str_eq(v.mma, "mma.sync m8n8k4");
  ck_assert_int_eq(v.stages, 2);
  ck_assert_int_eq(v.align_pref, 8);
  /* f32 has no tensor-core path here: SIMT FMA, 16-byte rows = 4 floats */
  TileDecision f = choose("a100-sxm-80gb", 1024, 1024, 1024, DT_F32);
  ck_assert_str_eq(f.mma, "fma");
  ck_assert_int_eq(f.align, 4);
}
END_TEST

/* misaligned: M=N=1000, K=1001 in f16 -> pad K to 1008 (N, M already multiples of 8):
 * overhead 1008/1001 - 1; a conv with 3 input channels pads C to 8: K = 3·49 -> 8·49 */
START_TEST(t_gpu_misaligned) {
  TileDecision d = choose("a100-sxm-80gb", 1000, 1000, 1001, DT_F16);
  ck_assert(!d.aligned);
  ck_assert_int_eq(d.pad_m, 1000);
  ck_assert_int_eq(d.pad_n, 1000);
  ck_assert_int_eq(d.pad_k, 1008);
  ck_assert_double_eq_tol(d.pad_overhead, 1008.0 / 1001.0 - 1, 1e-12);
  /* tile quantization for 1000 with a 128 tile: 1000 / 1024 per dimension */
  if (d.bm == 128 && d.bn == 128) ck_assert_double_eq_tol(d.tile_eff, (1000.0 / 1024) * (1000.0 / 1024), 1e-12);
  /* odd M, N, K */
  TileDecision o = choose("h100-sxm", 1023, 517, 333, DT_BF16);
  ck_assert_int_eq(o.pad_m, 1024);
  ck_assert_int_eq(o.pad_n, 520);
  ck_assert_int_eq(o.pad_k, 336);
  ck_assert_double_eq_tol(o.pad_overhead, 1024.0 * 520 * 336 / (1023.0 * 517 * 333) - 1, 1e-12);
  /* sm_90 too: the CUDA backend issues mma.sync (it has no wgmma kernels) */
  ck_assert_str_eq(o.mma, "mma.sync m16n8k16");
  /* the stem convolution of ResNet on A100 in f16 */
  Nb b = nb_new("stem", 32);
  Dim *xd[4] = {nb_n(&b), nb_k(&b, 3), nb_k(&b, 224), nb_k(&b, 224)};
  int x = nb_leaf(&b, OP_INPUT, "x", DT_F16, false, 4, xd);
  Dim *wd[4] = {nb_k(&b, 64), nb_k(&b, 3), nb_k(&b, 7), nb_k(&b, 7)};
  int w = nb_leaf(&b, OP_PARAM, "w", DT_F16, true, 4, wd);
  IrAttr at = {.kernel = {7, 7}, .stride = {2, 2}, .pad = {3, 3}};
  int y = nb_2(&b, OP_CONV2D, x, w, &at);
  TilePlan *p = pass_tiles(b.g, hw_find_builtin("a100"), NULL);
  TileDecision *c = &p->tiles[y];
  ck_assert(c->valid && c->gemm.conv);
  ck_assert_int_eq(c->gemm.m, 32LL * 112 * 112);
  ck_assert_int_eq(c->gemm.n, 64);
  ck_assert_int_eq(c->gemm.k, 147);
  ck_assert_int_eq(c->pad_k, 8 * 49);
  ck_assert_int_eq(c->pad_m, c->gemm.m); /* batch·spatial is never padded */
  ck_assert_double_eq_tol(c->pad_overhead, 8.0 / 3 - 1, 1e-12);
  ck_assert(!p->tiles[x].valid && !p->tiles[w].valid);
  ir_module_free(b.m);
}
END_TEST

/* wave quantization: with 108 SMs, a GEMM of exactly one wave of 128x128 tiles beats one
 * that spills a few tiles into a second wave, per FLOP */
START_TEST(t_gpu_waves) {
  TileDecision one = choose("a100-sxm-80gb", 128 * 12, 128 * 9, 4096, DT_F16); /* 108 tiles */
  TileDecision two = choose("a100-sxm-80gb", 128 * 12, 128 * 10, 4096, DT_F16); /* 120 */
  ck_assert(one.eff > two.eff || two.bm * two.bn != 128 * 128);
  ck_assert(one.wave_eff > 0 && one.wave_eff <= 1);
  ck_assert_ptr_nonnull(strstr(one.reason, "waves"));
}
END_TEST

/* the kernel geometry the CUDA generator builds: 4096^3 bf16 on H100 takes 64x64 warp tiles
 * (the largest; 2·(64+64)/(64·64) bytes per FMA keep shared memory under 128 B/clk at the
 * tensor-core peak), 4-8 warps, and registers and shared memory that allow the CTAs per SM the
 * model assumed; no split-K for a grid of hundreds of tiles */
START_TEST(t_gpu_kernel_geometry) {
  const HwTarget *hw = hw_find_builtin("h100");
  TileDecision d = choose("h100", 4096, 4096, 4096, DT_BF16);
  ck_assert_int_eq(d.wm, 64);
  ck_assert_int_eq(d.wn, 64);
  ck_assert_int_eq(d.warps, (d.bm / d.wm) * (d.bn / d.wn));
  ck_assert(d.warps >= 4 && d.warps <= 8);
  ck_assert_int_eq(d.threads, 32 * d.warps);
  ck_assert_int_le((int64_t)d.regs * d.threads * d.ctas_per_sm, hw->regs_per_sm);
  ck_assert_int_le(d.smem * d.ctas_per_sm, hw->smem_per_sm);
  ck_assert_int_eq(d.split_k, 1);
  ck_assert(d.cp_async_a && d.cp_async_b && d.ldmatrix);
  /* f32 as TF32 on the tensor cores: m16n8k8, 64-byte K slices = 16 floats, no ldmatrix */
  const HwTarget *a100 = hw_find_builtin("a100");
  TileGemm tg = {.m = 4096, .n = 4096, .k = 4096, .batch = 1, .dt = DT_F32, .tf32 = true};
  tiles_choose(a100, &tg, &d);
  ck_assert_str_eq(d.mma, "mma.sync m16n8k8");
  ck_assert_int_eq(d.bk, 16);
  ck_assert(!d.ldmatrix);
  /* rows of A with K = 1001 halves are not 16-byte aligned: predicated loads for A only */
  d = choose("a100", 1000, 1000, 1001, DT_F16);
  ck_assert(!d.cp_async_a && d.cp_async_b);
  /* transposed A is stored K x M: its rows have M = 1000 elements, aligned */
  TileGemm tt = {.m = 1000, .n = 1000, .k = 1001, .batch = 1, .dt = DT_F16, .trans_a = true};
  tiles_choose(a100, &tt, &d);
  ck_assert(d.cp_async_a);
}
END_TEST

/* split-K when the output tiles under-fill the GPU: 64x64 outputs with K = 8192 make one
 * tile, so the K loop is split over CTAs (each slice keeping >= 4 K tiles) and the reason
 * says why; the partial sums' reduction is in the modeled time */
START_TEST(t_gpu_split_k) {
  TileDecision d = choose("a100", 64, 64, 8192, DT_BF16);
  ck_assert_int_gt(d.split_k, 1);
  ck_assert_int_ge(8192 / d.split_k, 4 * d.bk);
  ck_assert_int_eq(d.tiles, ((64 + d.bm - 1) / d.bm) * ((64 + d.bn - 1) / d.bn) * d.split_k);
  ck_assert_ptr_nonnull(strstr(d.reason, "fill"));
  /* the same K with a full grid is not split */
  TileDecision f = choose("a100", 8192, 8192, 8192, DT_BF16);
  ck_assert_int_eq(f.split_k, 1);
  /* a short K is never split, however small the grid */
  TileDecision s = choose("a100", 64, 64, 64, DT_BF16);
  ck_assert_int_eq(s.split_k, 1);
}
END_TEST

/* CPU: AVX2 (16 regs, 8 f32 lanes, 2 FMA, 2 loads): accumulators mv·NR with mv·NR + mv + 1
 * <= 16 and (mv + NR)/2 <= mv·NR/2: mv=2, NR=6 and mv=3, NR=4 both give 12; 16x6 moves
 * fewer bytes per FMA (96/22 > 96/28) -> MR=16, NR=6. KC = 524288/(4·22·4) = 1489, capped
 * at 512; MC = 524288/(2·512·4) = 128 (multiple of 16); NC = 32 MiB/(4·512·4) = 4096 -> 4092 */
START_TEST(t_cpu_avx2) {
  TileDecision d = choose("cpu-avx2", 100000, 100000, 100000, DT_F32);
  ck_assert(!d.gpu && d.aligned);
  ck_assert_int_eq(d.mr, 16);
  ck_assert_int_eq(d.nr, 6);
  ck_assert_int_eq(d.kc, 512);
  ck_assert_int_eq(d.mc, 128);
  ck_assert_int_eq(d.nc, 4092);
  /* blocks never exceed the (rounded) problem; 20 rows fill 20 of 16x6's 32 lanes (62.5%),
   * so the narrow tile 8x10 (one vector, 10 broadcasts: 20 of 24 lanes, 10 of 10 columns,
   * loads 11 for 10 FMAs) is taken: 0.833 x 0.909 against 0.625 x 0.833 */
  TileDecision s = choose("cpu-avx2", 20, 10, 30, DT_F32);
  ck_assert_int_eq(s.mr, 8);
  ck_assert_int_eq(s.nr, 10);
  ck_assert_int_eq(s.kc, 32);
  ck_assert_int_eq(s.mc, 24);
  ck_assert_int_eq(s.nc, 10);
  ck_assert_double_eq_tol(s.tile_eff, (20.0 * 10) / (24.0 * 10), 1e-12);
  ck_assert_double_eq_tol(s.eff, s.tile_eff * s.wave_eff * (10.0 / 2) / (11.0 / 2), 1e-12);
}
END_TEST

/* AVX-512, few rows in the lanes: a Winograd GEMM of 16 tiles (m) x 128 output channels
 * x 128 input channels fills half of 32x14's lanes; one vector and 26 broadcasts
 * (128 = 5 x 26 - 2: 98.5%, 27 loads for 26 FMAs) models 0.948 against 0.5 x 0.914. A
 * square product keeps 32x14, and a tile that fills 75% of its lanes is kept (49 rows) */
START_TEST(t_cpu_narrow) {
  TileDecision d = choose("cpu-avx512", 16, 128, 128, DT_F32);
  ck_assert_int_eq(d.mr, 16);
  ck_assert_int_eq(d.nr, 26);
  ck_assert(strstr(d.reason, "narrow tile") != NULL);
  TileDecision w = choose("cpu-avx512", 49, 512, 4608, DT_F32);
  ck_assert_int_eq(w.mr, 32);
  ck_assert_int_eq(w.nr, 14);
  ck_assert(strstr(w.reason, "narrow tile") == NULL);
}
END_TEST

/* a matmul node's view (TileGemm.matmul), rows r, outputs n, depth k, batch b */
static TileDecision choose_mm(const char *target, int64_t r, int64_t n, int64_t k, int64_t b) {
  const HwTarget *hw = hw_find_builtin(target);
  ck_assert_ptr_nonnull(hw);
  TileGemm gm = {.m = r, .n = n, .k = k, .batch = b, .dt = DT_F32, .matmul = true,
                 .trans_b = true, .b_shared = true};
  TileDecision d;
  tiles_choose(hw, &gm, &d);
  return d;
}

/* few-row matmuls: the generated GEMM runs the decision's tile read transposed (d.nr rows),
 * so 8 rows ran 8 of 25 (32x14 narrowed to 16x25): the outputs go to the lanes instead
 * (mm_t), 8 rows x 3 vectors (24 accumulators, 28 registers; 1000 = 21 x 48 - 8: 99.2%).
 * 12 rows fold from a batch of 2 x 6 sharing B (two tiles of 6 x 3 vectors: 99.2%, against
 * 12 x 2 vectors' 97.7%); 64 rows keep
 * the usual tile; AVX2 takes it too; a GEMM view that is not a matmul's (a Winograd
 * convolution's, whose m the generated GEMM vectorizes) never does */
START_TEST(t_cpu_mm_few_rows) {
  TileDecision d = choose_mm("cpu-avx512", 8, 1000, 1280, 1);
  ck_assert(d.mm_t);
  ck_assert_int_eq(d.mr, 8);
  ck_assert_int_eq(d.nr, 48);
  ck_assert_int_eq(d.mc, 8);
  ck_assert_double_eq_tol(d.tile_eff, 1000.0 / 1008, 1e-12);
  ck_assert(strstr(d.reason, "outputs in the lanes") != NULL);
  TileDecision f = choose_mm("cpu-avx512", 6, 1000, 1280, 2);
  ck_assert(f.mm_t);
  ck_assert_int_eq(f.mr, 6);
  ck_assert_int_eq(f.nr, 48);
  ck_assert(!choose_mm("cpu-avx512", 64, 1000, 1280, 1).mm_t);
  ck_assert(!choose_mm("cpu-avx512", 3, 1000, 1280, 1).mm_t); /* streamed instead */
  ck_assert(choose_mm("cpu-avx2", 8, 1000, 1280, 1).mm_t);
  ck_assert(!choose("cpu-avx512", 8, 1000, 1280, DT_F32).mm_t);
}
END_TEST

/* non-temporal stores: a pointwise convolution's output past a quarter of the L3
 * (cpu-avx512: 32 MiB, so 8 MiB) in one K block. MobileNetV2's 16 -> 96 at 112², batch 8
 * (38.5 MB) and batch 4 (19.3 MB), and its 24 -> 144 at 56², batch 8 (14.5 MB), take them;
 * its 32 -> 16 (6.4 MB), the 16 -> 96 at batch 1 (4.8 MB), the 24 -> 144 at batch 4
 * (7.2 MB), a 3x3 convolution and a K of 2 blocks do not */
static TileDecision choose_ntpw(int64_t images, int64_t p, int64_t og, int64_t k, bool pointwise) {
  const HwTarget *hw = hw_find_builtin("cpu-avx512");
  ck_assert_ptr_nonnull(hw);
  TileGemm gm = {.m = images * p, .n = og, .k = k, .batch = 1, .dt = DT_F32, .conv = true,
                 .kspat = pointwise ? 1 : 9, .conv_fwd = true, .images = images, .pointwise = pointwise};
  TileDecision d;
  tiles_choose(hw, &gm, &d);
  return d;
}

START_TEST(t_cpu_nt_store) {
  TileDecision d = choose_ntpw(8, 12544, 96, 16, true);
  ck_assert(d.nt_store);
  ck_assert(strstr(d.reason, "non-temporal") != NULL);
  ck_assert(!choose_ntpw(8, 12544, 16, 32, true).nt_store);
  ck_assert(choose_ntpw(4, 12544, 96, 16, true).nt_store);
  ck_assert(choose_ntpw(8, 3136, 144, 24, true).nt_store);
  ck_assert(!choose_ntpw(1, 12544, 96, 16, true).nt_store);
  ck_assert(!choose_ntpw(4, 3136, 144, 24, true).nt_store);
  ck_assert(!choose_ntpw(8, 12544, 96, 144, false).nt_store);
  ck_assert(!choose_ntpw(8, 12544, 96, 2048, true).nt_store);
}
END_TEST

/* AVX-512 (32 regs, 16 lanes): mv=2 allows NR=14 (28 accumulators + 3 = 31 registers),
 * mv=1 is load-bound, mv=3 gives 27 -> MR=32, NR=14. NEON (32 regs, 4 lanes) -> 8x14 */
/* a forward convolution on the CPU as the tiles pass sees it: m = images x positions */
static TileDecision choose_conv(const char *target, int64_t images, int64_t p, int64_t og,
                                int64_t k, bool fwd) {
  const HwTarget *hw = hw_find_builtin(target);
  ck_assert_ptr_nonnull(hw);
  TileGemm gm = {.m = images * p, .n = og, .k = k, .batch = 1, .dt = DT_F32, .conv = true,
                 .kspat = 9, .conv_fwd = fwd, .images = images};
  TileDecision d;
  tiles_choose(hw, &gm, &d);
  return d;
}

/* few output positions: the output channels go to the lanes (conv_t) where the positions'
 * lane edges and the channels' row edges lose more than the write-back and the narrower
 * panels' gathers cost. cpu-avx512: 16 lanes, 32 registers, 2.56 TFLOP/s over 16 cores (160
 * GFLOP/s a core): the write-back is 0.2 ns x 160 GFLOP/s / 2K = 16/K of the FMAs' time, the
 * gathers 4 ns x 160 GFLOP/s / (2 x positions a panel x Og) = 320 / (positions a panel x Og) */
START_TEST(t_cpu_conv_transposed) {
  /* ResNet-18 layer4 at batch 1: 49 positions fill 49 of 64 lanes, 512 channels 512 of 518
   * rows (14-row tiles); transposed, 7 x 7 positions and 16 x 32 channels fill every tile */
  TileDecision d = choose_conv("cpu-avx512", 1, 49, 512, 4608, true);
  ck_assert(d.conv_t);
  ck_assert_int_eq(d.mr, 7);
  ck_assert_int_eq(d.nr, 32);
  ck_assert_double_eq_tol(d.tile_eff, 1.0, 1e-12);
  ck_assert_ptr_nonnull(strstr(d.reason, "transposed"));
  /* the same at batch 8: the images share one GEMM of 392 rows = 28 x 14 */
  d = choose_conv("cpu-avx512", 8, 49, 512, 4608, true);
  ck_assert(d.conv_t);
  ck_assert_int_eq(d.mr, 14);
  /* 196 positions (layer3): 14 x 14, 256 channels */
  d = choose_conv("cpu-avx512", 1, 196, 256, 2304, true);
  ck_assert(d.conv_t);
  ck_assert_int_eq(d.mr, 14);
  /* layer1 (3136 = 98 x 32 positions, 64 channels, K = 576): the positions' tiles are full
   * and 64 channels fill 64 of 70 rows (91.4%): 1/0.914 + 320/(32 x 64) = 1.25 against
   * 1 + 16/576 + 320/(14 x 64) = 1.39 transposed, so the positions stay in the lanes */
  d = choose_conv("cpu-avx512", 1, 3136, 64, 576, true);
  ck_assert(!d.conv_t);
  ck_assert_int_eq(d.mr, 32);
  ck_assert_int_eq(d.nr, 14);
  /* few channels: 8 of 32 lanes would be used */
  ck_assert(!choose_conv("cpu-avx512", 1, 49, 8, 72, true).conv_t);
  /* only forward convolutions, only f32 */
  ck_assert(!choose_conv("cpu-avx512", 1, 49, 512, 4608, false).conv_t);
  const HwTarget *hw = hw_find_builtin("cpu-avx512");
  TileGemm gm = {.m = 49, .n = 512, .k = 4608, .batch = 1, .dt = DT_F32, .conv = true,
                 .kspat = 9, .conv_fwd = true, .images = 1, .bf16 = true};
  tiles_choose(hw, &gm, &d);
  ck_assert(!d.conv_t);
  /* AVX2 (8 lanes, 16 registers): 2 vectors of channels, at most 6 positions a tile */
  d = choose_conv("cpu-avx2", 1, 49, 512, 4608, true);
  ck_assert(d.conv_t);
  ck_assert_int_eq(d.nr, 16);
  ck_assert(d.mr >= 4 && d.mr <= 6);
}
END_TEST

/* a pointwise convolution (1x1, stride 1, no padding) of few output channels reads its image
 * (a data gradient: dy) in place (direct_b) with KC capped at 3/4 of L1 for a 32-position
 * column; not with more than TILES_CPU_DIRECT_B_N channels, not on images under
 * TILES_CPU_DIRECT_B_P positions, not for a strided 1x1 convolution (gathered), not in bf16
 * (its pack rounds) */
static TileDecision choose_pw(int64_t images, int64_t p, int64_t og, int64_t k, bool pointwise,
                              bool bf16) {
  const HwTarget *hw = hw_find_builtin("cpu-avx512");
  ck_assert_ptr_nonnull(hw);
  TileGemm gm = {.m = images * p, .n = og, .k = k, .batch = 1, .dt = DT_F32, .conv = true,
                 .kspat = 1, .conv_fwd = true, .images = images, .pointwise = pointwise,
                 .bf16 = bf16};
  TileDecision d;
  tiles_choose(hw, &gm, &d);
  return d;
}

START_TEST(t_cpu_pointwise) {
  const HwTarget *hw = hw_find_builtin("cpu-avx512");
  int64_t cap = (int64_t)(0.75 * (double)hw->l1_bytes) / (32 * 4) / 8 * 8;
  TileDecision d = choose_pw(8, 3136, 24, 144, true, false); /* MobileNetV2's 144 -> 24 */
  ck_assert(d.direct_b && !d.conv_t);
  ck_assert_int_eq(d.mr, 32);
  ck_assert_int_eq(d.kc, 144 < cap ? 144 : cap);
  ck_assert_ptr_nonnull(strstr(d.reason, "read in place"));
  d = choose_pw(1, 784, 64, 576, true, false);
  ck_assert(d.direct_b);
  ck_assert_int_eq(d.kc, cap);
  ck_assert(choose_pw(1, 784, 256, 576, true, false).direct_b);
  ck_assert(!choose_pw(1, 784, 257, 576, true, false).direct_b);
  ck_assert(choose_pw(8, 196, 64, 384, true, false).direct_b); /* a GEMM an image from 128 */
  ck_assert(!choose_pw(8, 127, 64, 384, true, false).direct_b); /* one gathered GEMM */
  ck_assert(!choose_pw(1, 3136, 24, 144, false, false).direct_b);
  ck_assert(!choose_pw(1, 3136, 24, 144, true, true).direct_b);
  d = choose_pw(1, 3136, 24, 576, false, false);
  ck_assert(!d.direct_b);
  ck_assert_int_gt(d.kc, cap); /* the packed path keeps its deep KC */
  /* a data gradient (dy read in place, n = input channels) runs a GEMM per image whatever
   * the image's size */
  const HwTarget *hw512 = hw_find_builtin("cpu-avx512");
  TileGemm gm = {.m = 8 * 196, .n = 96, .k = 576, .batch = 1, .dt = DT_F32, .conv = true,
                 .kspat = 1, .conv_fwd = false, .images = 8, .pointwise = true};
  tiles_choose(hw512, &gm, &d);
  ck_assert(d.direct_b);
}
END_TEST

/* AVX-512, a forward convolution of few output channels (n, in the broadcasts): 32 x 14
 * fills 16 of 28, 24 of 28 and 32 of 42 broadcast rows at 16, 24 and 32 channels, so
 * few_columns_tile takes 32 x 8, 32 x 12 and 32 x 8 (all rows full, 16-24 accumulators
 * still cover the FMA latency, loads within the FMAs' slots: modeled 1.0 against 0.57,
 * 0.86, 0.76). 64 channels (64 of 70, 0.91) keep 32 x 14; a depthwise convolution (one
 * channel a group, batch = groups) and a matmul of 16 columns keep it too */
START_TEST(t_cpu_few_columns) {
  int want[][2] = {{16, 8}, {24, 12}, {32, 8}, {64, 14}, {96, 14}, {160, 14}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    TileDecision d = choose_pw(8, 3136, want[i][0], 144, true, false);
    ck_assert_int_eq(d.mr, 32);
    ck_assert_int_eq(d.nr, want[i][1]);
    ck_assert(d.tile_eff > 0.9);
    ck_assert_int_le((d.mr / 16) * d.nr + d.mr / 16 + 1, 32);
  }
  const HwTarget *hw = hw_find_builtin("cpu-avx512");
  TileGemm dw = {.m = 8 * 3136, .n = 1, .k = 9, .batch = 144, .dt = DT_F32, .conv = true,
                 .kspat = 9, .conv_fwd = true, .images = 8};
  TileDecision d;
  tiles_choose(hw, &dw, &d);
  ck_assert_int_eq(d.nr, 14);
  ck_assert_int_eq(choose("cpu-avx512", 4096, 16, 512, DT_F32).nr, 14);
}
END_TEST

/* AVX-512 (L2 1280 KiB): a pointwise convolution whose image a stride-1 depthwise computes,
 * 32 channels at 112² (1.6 MB, past half the L2): strips of 45 rows fit half the L2, so 3
 * strips of 38 (runs of 16.6 KiB a plane, over TILES_DW_RUN_MIN), and the GEMM, not the
 * direct kernel of few channels. Not at stride 2 (96 channels, 112² -> 56²), not 144
 * channels at 56² (20-row strips: runs of 4.4 KiB), not where a full convolution computes
 * the image (then the direct kernel of few channels, as before) */
static int dw_pw(Nb *b, int64_t c, int64_t hw, int stride, bool depthwise, int64_t out) {
  int x = nb_image(b, c, hw);
  nb_scope(b, "dw");
  int h = nb_conv(b, x, c, 3, stride, 1, depthwise ? (int)c : 1);
  nb_scope(b, "bn");
  h = nb_1(b, OP_RELU, nb_bn(b, h), NULL);
  nb_scope(b, "pw");
  return nb_conv(b, h, out, 1, 1, 0, 1);
}

START_TEST(t_cpu_dw_strips) {
  static const struct { int64_t c, hw; int stride; bool dw; int64_t out; int rows; bool few; } cs[] = {
      {32, 112, 1, true, 16, 38, false},
      {96, 112, 2, true, 24, 0, false},
      {144, 56, 1, true, 24, 0, false},
      {32, 112, 1, false, 16, 0, true},
  };
  for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
    Nb b = nb_new("dwpw", 8);
    int y = dw_pw(&b, cs[i].c, cs[i].hw, cs[i].stride, cs[i].dw, cs[i].out);
    TilePlan *p = pass_tiles(b.g, hw_find_builtin("cpu-avx512"), NULL);
    const TileDecision *d = &p->tiles[y];
    ck_assert_msg(d->valid && d->direct_b, "case %zu: the image not read in place", i);
    ck_assert_msg(d->dw_rows == cs[i].rows, "case %zu: strips of %d rows, want %d", i, d->dw_rows, cs[i].rows);
    ck_assert_msg(d->conv_few == cs[i].few, "case %zu: conv_few %d", i, d->conv_few);
    if (cs[i].rows) ck_assert_ptr_nonnull(strstr(d->reason, "depthwise fused in 3 strips of 38 rows an image"));
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_cpu_wide) {
  TileDecision d = choose("cpu-avx512", 4096, 4096, 4096, DT_F32);
  ck_assert_int_eq(d.mr, 32);
  ck_assert_int_eq(d.nr, 14);
  ck_assert_int_le((d.mr / 16) * d.nr + d.mr / 16 + 1, 32);
  TileDecision n = choose("cpu-neon", 4096, 4096, 4096, DT_F32);
  ck_assert_int_eq(n.mr, 8);
  ck_assert_int_eq(n.nr, 14);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("tiles");
  TCase *t = tcase_create("tiles");
  tcase_add_test(t, t_gpu_aligned);
  tcase_add_test(t, t_gpu_misaligned);
  tcase_add_test(t, t_gpu_waves);
  tcase_add_test(t, t_gpu_kernel_geometry);
  tcase_add_test(t, t_gpu_split_k);
  tcase_add_test(t, t_cpu_avx2);
  tcase_add_test(t, t_cpu_narrow);
  tcase_add_test(t, t_cpu_mm_few_rows);
  tcase_add_test(t, t_cpu_nt_store);
  tcase_add_test(t, t_cpu_pointwise);
  tcase_add_test(t, t_cpu_wide);
  tcase_add_test(t, t_cpu_few_columns);
  tcase_add_test(t, t_cpu_dw_strips);
  tcase_add_test(t, t_cpu_conv_transposed);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
