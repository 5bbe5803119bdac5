/* tiles.c — tile-size selection (see tiles.h for the contract, docs/cost-model.md for the
 * model). The models are deliberately small and analytical: every decision is explained in
 * the decision's reason string, so a user can check it by hand. */
#include "tiles.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
static int64_t ev(IrGraph *g, const Dim *d) { return dim_eval(g->dims, d, NULL); }

/* ---- GEMM views ---------------------------------------------------------------------- */

static bool gemm_matmul(IrGraph *g, const IrNode *n, TileGemm *o) {
  const IrType *a = &g->nodes[n->in[0]].type, *b = &g->nodes[n->in[1]].type, *t = &n->type;
  o->k = a->rank == 1 ? ev(g, a->dims[0]) : ev(g, a->dims[a->rank - (n->attr.trans_a ? 2 : 1)]);
  if (a->rank == 1 && b->rank == 1) o->m = o->n = 1;
  else if (a->rank == 1) o->m = 1, o->n = ev(g, t->dims[t->rank - 1]);
  else if (b->rank == 1) o->m = ev(g, t->dims[t->rank - 1]), o->n = 1;
  else o->m = ev(g, t->dims[t->rank - 2]), o->n = ev(g, t->dims[t->rank - 1]);
  int64_t all = ir_type_numel(g, t);
  o->batch = (o->m * o->n) != 0 ? all / (o->m * o->n) : 1;
  o->dt = a->dt;
  o->trans_a = n->attr.trans_a, o->trans_b = n->attr.trans_b;
  o->b_shared = b->rank <= 2;
  o->matmul = true;
  return true;
}

static bool gemm_conv(IrGraph *g, const IrNode *n, TileGemm *o) {
  int groups = n->attr.groups > 1 ? n->attr.groups : 1;
  const IrType *x, *y, *w; /* activations in, activations out, filter */
  if (n->op == OP_CONV2D) x = &g->nodes[n->in[0]].type, w = &g->nodes[n->in[1]].type, y = &n->type;
  else if (n->op == OP_CONV2D_BWD_DATA) y = &g->nodes[n->in[0]].type, w = &g->nodes[n->in[1]].type, x = &n->type;
  else x = &g->nodes[n->in[0]].type, y = &g->nodes[n->in[1]].type, w = &n->type;
  if (x->rank != 4 || y->rank != 4 || w->rank != 4) return false;
  int64_t og = ev(g, w->dims[0]) / groups, cg = ev(g, w->dims[1]);
  int64_t ks = ev(g, w->dims[2]) * ev(g, w->dims[3]);
  o->conv = true;
  o->kspat = ks;
  o->conv_fwd = n->op == OP_CONV2D;
  o->images = ev(g, x->dims[0]);
  o->pointwise = n->op != OP_CONV2D_BWD_FILTER && ks == 1 && n->attr.stride[0] <= 1 &&
                 n->attr.stride[1] <= 1 && n->attr.pad[0] == 0 && n->attr.pad[1] == 0 &&
                 ev(g, y->dims[2]) == ev(g, x->dims[2]) && ev(g, y->dims[3]) == ev(g, x->dims[3]);
  o->oh = ev(g, y->dims[2]), o->ow = ev(g, y->dims[3]);
  o->batch = groups;
  o->dt = x->dt;
  if (n->op == OP_CONV2D) {
    o->m = ev(g, y->dims[0]) * ev(g, y->dims[2]) * ev(g, y->dims[3]);
    o->n = og, o->k = cg * ks;
  } else if (n->op == OP_CONV2D_BWD_DATA) {
    o->m = ev(g, x->dims[0]) * ev(g, x->dims[2]) * ev(g, x->dims[3]);
    o->n = cg, o->k = og * ks;
  } else {
    o->m = og, o->n = cg * ks;
    o->k = ev(g, y->dims[0]) * ev(g, y->dims[2]) * ev(g, y->dims[3]);
  }
  return true;
}

bool tiles_gemm_of(IrGraph *g, int i, TileGemm *out) {
  const IrNode *n = &g->nodes[i];
  memset(out, 0, sizeof *out);
  if (!(ir_ops[n->op].flags & OPF_GEMM)) return false;
  return n->op == OP_MATMUL ? gemm_matmul(g, n, out) : gemm_conv(g, n, out);
}

/* ---- alignment and padding (both kinds of target) --------------------------------------- */

/* The CUDA backend issues mma.sync on sm_80 and later (sm_90 included: it has no wgmma
 * kernels), m8n8k4 on Volta; f32 data goes to the tensor cores only as TF32, when asked. */
static void mma_shape(const HwTarget *hw, const TileGemm *gm, TileDecision *d) {
  bool half = gm->dt == DT_F16 || gm->dt == DT_BF16;
  d->mma = "fma";
  d->mma_m = d->mma_n = d->mma_k = 1;
  if (hw->kind != HW_GPU) return;
  if (gm->dt == DT_F32 && gm->tf32 && hw->cc >= 80 && hw->peak[HWP_TF32_TC] > 0) {
    d->mma = "mma.sync m16n8k8", d->mma_m = 16, d->mma_n = 8, d->mma_k = 8;
    return;
  }
  if (!half || hw_peak(hw, gm->dt, true) <= hw_peak(hw, gm->dt, false)) return;
  if (hw->cc >= 80) d->mma = "mma.sync m16n8k16", d->mma_m = 16, d->mma_n = 8, d->mma_k = 16;
  else d->mma = "mma.sync m8n8k4", d->mma_m = 8, d->mma_n = 8, d->mma_k = 4;
}

/* 16-byte rows for vector loads and tensor cores (f16/bf16: 8, f32/TF32: 4, i8: 16);
 * A100/H100 prefer 128-byte multiples */
static void alignment(const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  int es = (int)dt_size(gm->dt);
  d->align = 16 / es;
  d->align_pref = hw->kind == HW_GPU && hw->cc >= 80 ? 128 / es : d->align;
  int64_t a = d->align;
  d->pad_m = gm->conv ? gm->m : round_up(gm->m, a);
  d->pad_n = round_up(gm->n, a);
  /* a conv pads its channels: k = C·KH·KW, so C is rounded up */
  d->pad_k = gm->conv ? round_up(gm->k / gm->kspat, a) * gm->kspat : round_up(gm->k, a);
  d->aligned = d->pad_m == gm->m && d->pad_n == gm->n && d->pad_k == gm->k;
  double real = (double)gm->m * gm->n * gm->k;
  d->pad_overhead = real > 0 ? (double)d->pad_m * d->pad_n * d->pad_k / real - 1 : 0;
}

/* ---- GPU block tiles ----------------------------------------------------------------- */

/* tile loads are served mostly by L2: modeled as this multiple of DRAM bandwidth */
#define TILES_L2_AMPLIFICATION 4.0
/* shared memory delivers 32 banks of 4 bytes per clock and SM (Volta through Hopper) */
#define TILES_SMEM_BYTES_PER_CLK 128.0

typedef struct Cand {
  int bm, bn;
} Cand;
static const Cand gpu_cands[] = {{256, 128}, {128, 256}, {128, 128}, {128, 64}, {64, 128},
                                 {64, 64},   {64, 32},   {32, 64},   {32, 32}};
/* warp tiles, largest first: tensor cores need multiples of 16 (two m16n8 tiles per ldmatrix
 * x4 of B); FMA lanes form 4 x 8 */
static const Cand mma_warps[] = {{64, 64}, {64, 32}, {32, 64}, {32, 32}, {32, 16}, {16, 32}, {16, 16}};
static const Cand fma_warps[] = {{32, 64}, {64, 32}, {32, 32}, {16, 32}, {16, 16}, {8, 16}};
static const int split_cands[] = {1, 2, 3, 4, 6, 8, 12, 16};

/* The largest warp tile that gives the block 4 to 8 warps: a wm x wn warp tile reads
 * (wm + wn) operands of shared memory per wm·wn FMAs, and four or more warps per block hide
 * the MMA and load latency. */
static bool warp_tile(TileDecision *d, Cand c) {
  bool tc = strcmp(d->mma, "fma") != 0;
  const Cand *w = tc ? mma_warps : fma_warps;
  size_t n = tc ? sizeof mma_warps / sizeof *w : sizeof fma_warps / sizeof *w;
  for (size_t i = 0; i < n; i++) {
    if (c.bm % w[i].bm || c.bn % w[i].bn) continue;
    int warps = (c.bm / w[i].bm) * (c.bn / w[i].bn);
    if (warps < 4 || warps > 8) continue;
    d->wm = w[i].bm, d->wn = w[i].bn, d->warps = warps, d->threads = 32 * warps;
    return true;
  }
  return false;
}

/* registers per thread: accumulators + one k-step's fragments + 64 for addresses and loop
 * state, rounded to the allocation granule of 8 */
static int gpu_regs(const TileDecision *d) {
  bool tc = strcmp(d->mma, "fma") != 0;
  int acc = d->wm * d->wn / 32;
  int frag = tc ? (d->wm / 16) * 4 + (d->wn / 8) * 2 : d->wm / 4 + d->wn / 8;
  int r = (acc + frag + 64 + 7) / 8 * 8;
  return r > 255 ? 255 : r;
}

/* block tile c: warp tile, shared memory (stages of padded A and B tiles), occupancy */
static bool gpu_geometry(const HwTarget *hw, const TileGemm *gm, Cand c, TileDecision *d) {
  int es = (int)dt_size(gm->dt);
  int bk = 64 / es, pad = 16 / es; /* 64-byte K slices; rows padded by 16 bytes */
  if (!warp_tile(d, c)) return false;
  int64_t a_el = gm->trans_a ? (int64_t)bk * (c.bm + pad) : (int64_t)c.bm * (bk + pad);
  int64_t b_el = gm->trans_b ? (int64_t)c.bn * (bk + pad) : (int64_t)bk * (c.bn + pad);
  int64_t per_stage = (a_el + b_el) * es;
  int stages = hw->cc >= 80 ? 4 : 2; /* cp.async multi-stage pipelines from Ampere on */
  while (stages > 2 && per_stage * stages > hw->smem_per_block) stages--;
  int64_t smem = per_stage * stages;
  if (smem > hw->smem_per_block) return false;
  d->bm = c.bm, d->bn = c.bn, d->bk = bk, d->stages = stages, d->smem_pad = pad, d->smem = smem;
  d->regs = gpu_regs(d);
  int64_t by_smem = hw->smem_per_sm / smem, by_regs = hw->regs_per_sm / ((int64_t)d->regs * d->threads);
  int64_t ctas = by_smem < by_regs ? by_smem : by_regs;
  if (ctas > 64 / d->warps) ctas = 64 / d->warps;
  if (ctas > 16) ctas = 16;
  d->ctas_per_sm = (int)ctas;
  return ctas >= 1;
}

/* shared-memory traffic of one warp per step of K, in bytes of bandwidth: tensor-core
 * fragments read each operand once ((wm + wn) elements, ldmatrix or conflict-free loads);
 * FMA lanes load (wm/4 + wn/8) values each, one 128-byte wavefront per warp-wide load */
static double warp_smem_bytes(const TileDecision *d, int es) {
  if (strcmp(d->mma, "fma")) return (double)(d->wm + d->wn) * es;
  return (double)(d->wm / 4 + d->wn / 8) * TILES_SMEM_BYTES_PER_CLK;
}

static double gpu_peak(const HwTarget *hw, const TileGemm *gm, const TileDecision *d) {
  if (!strcmp(d->mma, "mma.sync m16n8k8")) return hw->peak[HWP_TF32_TC];
  return hw_peak(hw, gm->dt, true);
}

/* Modeled time of the whole GEMM with d's block tile and K split in `split` slices. The
 * busiest SM runs ceil(CTAs / SMs) CTAs, at most ctas_per_sm at a time, which share its
 * tensor/FMA units, its slice of the L2 bandwidth and its shared memory; the slowest of the
 * three sets the time of a round. Split-K adds the reduction of the partial sums (read
 * split + 1 times, written once) and its launch. */
static double gpu_time(const HwTarget *hw, const TileGemm *gm, TileDecision *d, int split) {
  int es = (int)dt_size(gm->dt);
  double kslice = ceil((double)gm->k / split), sms = hw->sm_count;
  int64_t tiles = ceil_div(gm->m, d->bm) * ceil_div(gm->n, d->bn) * gm->batch;
  int64_t per_sm = ceil_div(tiles * split, hw->sm_count);
  int64_t resident = per_sm < d->ctas_per_sm ? per_sm : d->ctas_per_sm;
  double rounds = ceil((double)per_sm / d->ctas_per_sm);
  double t_comp = 2.0 * d->bm * d->bn * kslice * resident / (gpu_peak(hw, gm, d) / sms);
  int ges = gm->f32_in ? 4 : es; /* bytes per operand element read from global memory */
  double t_load = (double)(d->bm + d->bn) * kslice * ges * resident / (hw->mem_bw * TILES_L2_AMPLIFICATION / sms);
  double t_smem = hw->ghz > 0 ? (double)d->warps * warp_smem_bytes(d, es) * kslice * resident /
                                    (TILES_SMEM_BYTES_PER_CLK * hw->ghz * 1e9)
                              : 0;
  double t = rounds * fmax(t_comp, fmax(t_load, t_smem));
  if (split > 1) t += (double)(split + 1) * gm->m * gm->n * gm->batch * 4 / hw->mem_bw + hw->overhead_s;
  d->split_k = split, d->tiles = tiles * split;
  d->waves = (double)(tiles * split) / ((double)hw->sm_count * d->ctas_per_sm);
  d->tile_eff = (double)gm->m * gm->n / ((double)ceil_div(gm->m, d->bm) * d->bm * ceil_div(gm->n, d->bn) * d->bn);
  d->wave_eff = d->waves / ceil(d->waves);
  double ideal = 2.0 * gm->m * gm->n * gm->k * gm->batch / gpu_peak(hw, gm, d);
  d->eff = t > 0 ? ideal / t : 0;
  return t;
}

/* shared-memory bytes per clock and SM the warp tile needs to keep the MMA units at peak */
static double smem_need(const HwTarget *hw, const TileGemm *gm, const TileDecision *d) {
  if (hw->ghz <= 0) return 0;
  double fma_per_clk = gpu_peak(hw, gm, d) / (2.0 * hw->sm_count * hw->ghz * 1e9);
  return fma_per_clk * warp_smem_bytes(d, (int)dt_size(gm->dt)) / ((double)d->wm * d->wn);
}

static void gpu_reason(const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  const char *bound = "";
  if (d->wave_eff < 0.75) bound = "; wave quantization dominates";
  else if (d->tile_eff < 0.75) bound = "; tile quantization dominates";
  char split[96] = "";
  int64_t out_tiles = d->tiles / d->split_k, slots = (int64_t)hw->sm_count * d->ctas_per_sm;
  if (d->split_k > 1)
    snprintf(split, sizeof split, " (%lld output tiles fill %.0f%% of %lld CTA slots)",
             (long long)out_tiles, 100.0 * out_tiles / slots, (long long)slots);
  snprintf(d->reason, sizeof d->reason,
           "%dx%dx%d, %d warps of %dx%d (largest warp tile with 4-8 warps; needs %.0f of %.0f "
           "smem B/clk/SM), %d stages, %lld KiB smem (rows +%d), ~%d regs/thread, %d CTA/SM; "
           "split-K %d%s; %lld CTAs = %.2f waves on %d SMs; tile eff %.1f%%, wave eff %.1f%%%s",
           d->bm, d->bn, d->bk, d->warps, d->wm, d->wn, smem_need(hw, gm, d), TILES_SMEM_BYTES_PER_CLK,
           d->stages, (long long)(d->smem / 1024), d->smem_pad, d->regs, d->ctas_per_sm, d->split_k,
           split, (long long)d->tiles, d->waves, hw->sm_count, 100 * d->tile_eff, 100 * d->wave_eff, bound);
  size_t len = strlen(d->reason);
  if (gm->f32_in && len < sizeof d->reason)
    snprintf(d->reason + len, sizeof d->reason - len, "; f32 operands rounded to %s on load", dt_name(gm->dt));
}

/* every block tile and K split; the fastest modeled wins, ties to the larger tile and no
 * split. Split-K is considered only when the output tiles alone under-fill the GPU and each
 * slice keeps at least 4 K tiles for the pipeline. */
static void choose_gpu(const HwTarget *hw, TileDecision *d) {
  double best = INFINITY;
  TileDecision keep = *d;
  const TileGemm *gm = &d->gemm;
  for (size_t i = 0; i < sizeof gpu_cands / sizeof *gpu_cands; i++) {
    TileDecision t = *d;
    if (!gpu_geometry(hw, gm, gpu_cands[i], &t)) continue;
    int64_t tiles = ceil_div(gm->m, t.bm) * ceil_div(gm->n, t.bn) * gm->batch;
    for (size_t s = 0; s < sizeof split_cands / sizeof *split_cands; s++) {
      int split = split_cands[s];
      if (split > 1 && (tiles >= (int64_t)hw->sm_count * t.ctas_per_sm || gm->k / split < 4 * t.bk)) break;
      double mt = gpu_time(hw, gm, &t, split);
      if (mt < best * (1 - 1e-9)) best = mt, keep = t;
    }
  }
  *d = keep;
  int es = (int)dt_size(gm->dt), vec = 16 / (gm->f32_in ? 4 : es);
  d->cp_async_a = (gm->trans_a ? gm->m : gm->k) % vec == 0;
  d->cp_async_b = (gm->trans_b ? gm->k : gm->n) % vec == 0;
  d->ldmatrix = es == 2 && strcmp(d->mma, "fma") != 0;
  gpu_reason(hw, d);
}

/* ---- CPU blocking -------------------------------------------------------------------- */

/* KC: the C tile is read and written once per KC block, 2·acc vector accesses against
 * KC·acc FMAs, so a deep KC amortizes it (and the micro-kernel's call); 512 keeps it under
 * 0.5%. The KC×NR panel of B then streams from L2 rather than sitting in L1, which L2's
 * bandwidth sustains at these intensities. Measured on Zen 4 (one core, a 960³ GEMM, 14x32
 * micro-kernel): KC 88 (half of L1, the previous rule) 90 GFLOP/s, 256: 102, 512: 105. */
#define TILES_CPU_KC 512

static double edge1(int64_t x, int64_t t) { return (double)x / (double)(ceil_div(x, t) * t); }

/* Few rows in the lanes (a Winograd GEMM of 16 tiles fills 16 of the widest tile's 32 lanes)
 * leave most accumulators idle. A tile of fewer vectors and more broadcasts is then taken
 * where its modeled rate is TILES_CPU_NARROW_GAIN better: the edges of both sides, the FMA
 * latency covered, and the broadcasts' loads beyond the FMAs' issue slots (a 16 x 30 tile
 * issues 31 loads for 30 FMAs: 97%). Measured on Zen 4 (one core, 36 GEMMs of 128 x 128 x 16
 * tiles): 32 x 14 at 50% of its lanes against 16 x 30. */
#define TILES_CPU_NARROW_EDGE 0.75
#define TILES_CPU_NARROW_GAIN 1.15
#define TILES_CPU_NARROW_MAX_NR 32 /* the generated GEMM's broadcast rows (GEMM_MAX_MR) */

/* the fraction of an mv-vector x nr tile's k-step its FMAs take, against its loads */
static double load_factor(const HwTarget *hw, int mv, int nr) {
  return fmin(1.0, ((double)mv * nr / hw->fma_units) / ((double)(mv + nr) / hw->load_ports));
}

/* the modeled fraction of the FMA peak of a tile of mv vectors along an extent of vm and nr
 * broadcasts along one of bn: the edges of both sides, the FMA latency covered, the loads */
static double rate_of(const HwTarget *hw, int64_t vm, int64_t bn, int lanes, int mv, int nr) {
  double lat = fmin(1.0, (double)mv * nr / (hw->fma_latency * hw->fma_units));
  return edge1(vm, (int64_t)mv * lanes) * edge1(bn, nr) * lat * load_factor(hw, mv, nr);
}

/* ... of an mv-vector x nr tile on gm (m in the lanes) */
static double tile_rate(const HwTarget *hw, const TileGemm *gm, int lanes, int mv, int nr) {
  return rate_of(hw, gm->m, gm->n, lanes, mv, nr);
}

/* the narrow alternative to mv x nr (above), if any; *ld: its load factor */
static void narrow_tile(const HwTarget *hw, const TileGemm *gm, int lanes, int *mv, int *nr,
                        double *ld) {
  *ld = 1;
  if (lanes < 4 || edge1(gm->m, (int64_t)*mv * lanes) >= TILES_CPU_NARROW_EDGE) return;
  double best = TILES_CPU_NARROW_GAIN * tile_rate(hw, gm, lanes, *mv, *nr);
  int bm = 0, bn = 0;
  for (int m = 1; m < *mv; m++)
    for (int n = 1; n <= TILES_CPU_NARROW_MAX_NR && m * n + m + 1 <= hw->vector_regs; n++) {
      double r = tile_rate(hw, gm, lanes, m, n);
      if (r >= best && (r > best || n > bn)) best = r, bm = m, bn = n; /* ties: more rows */
    }
  if (!bm) return;
  *mv = bm, *nr = bn;
  *ld = load_factor(hw, bm, bn);
}

/* Few output channels in the broadcasts: a forward pointwise convolution's n (its output
 * channels) of 16, 24 or 32 fills 16/28, 24/28 or 32/42 of the widest tile's 14 broadcast
 * rows (MobileNetV2's projections). Where that column edge is below TILES_CPU_COLS_EDGE, the
 * tile of the same vectors and fewer broadcasts with the best modeled rate (edges, FMA
 * latency, loads) is taken if it is TILES_CPU_NARROW_GAIN better; ties: more broadcasts.
 * Pointwise ones only: gathered implicit GEMMs, and the direct stems they compete with, were
 * not measured with it. Measured on Zen 4 (one core, MobileNetV2 at batch 8): 32 x 14 against
 * 32 x 8 at 32 channels, 980 -> 800 us (bench/RESULTS.md). */
#define TILES_CPU_COLS_EDGE 0.9

static bool few_columns_tile(const HwTarget *hw, const TileGemm *gm, int lanes, int mv, int *nr) {
  if (edge1(gm->n, *nr) >= TILES_CPU_COLS_EDGE) return false;
  double best = TILES_CPU_NARROW_GAIN * tile_rate(hw, gm, lanes, mv, *nr);
  int bn = 0;
  for (int n = 1; n < *nr; n++) {
    double r = tile_rate(hw, gm, lanes, mv, n);
    if (r >= best) best = r, bn = n;
  }
  if (bn) *nr = bn;
  return bn > 0;
}

/* AMX (bf16 on a CPU with AMX-BF16): the register tile is 2 x 2 tiles of 16 x 16 f32
 * accumulators (tmm0-3) fed by two 16 x 32 bf16 tiles of A and two of B (tmm4-7), so 32 x 32,
 * with K in steps of 32 (16 pairs). Like tensor cores, the alignment report says which dims
 * are not multiples of the tile (16 for M and N, 32 for K) and what the padding costs: the
 * generated kernel pads k to 32 with zeros and runs edge tiles whole. */
static void choose_amx(const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  d->mma = "amx tdpbf16ps 16x16x32";
  d->mma_m = 16, d->mma_n = 16, d->mma_k = 32;
  d->align = d->align_pref = 16;
  d->pad_m = gm->conv ? gm->m : round_up(gm->m, 16);
  d->pad_n = round_up(gm->n, 16);
  d->pad_k = round_up(gm->k, 32);
  d->aligned = d->pad_m == gm->m && d->pad_n == gm->n && d->pad_k == gm->k;
  double real = (double)gm->m * gm->n * gm->k;
  d->pad_overhead = real > 0 ? (double)d->pad_m * d->pad_n * d->pad_k / real - 1 : 0;
  d->mr = d->nr = 32;
  d->kc = (int)round_up(d->kc, 32);
  d->mc = (int)round_up(d->mc, 32), d->nc = (int)round_up(d->nc, 32);
  int64_t um = ceil_div(gm->m, 32), un = ceil_div(gm->n, 32);
  d->tile_eff = (double)gm->m * gm->n / ((double)um * 32 * un * 32);
  d->tiles = um * un * gm->batch;
  d->waves = (double)d->tiles / (double)(hw->cores > 0 ? hw->cores : 1);
  d->wave_eff = d->waves / ceil(d->waves);
  d->eff = d->tile_eff * d->wave_eff;
  snprintf(d->reason, sizeof d->reason,
           "AMX: 2x2 tiles of 16x16 f32 (tmm0-3) from 16x32 bf16 tiles of A and B (tmm4-7), "
           "KC %d, MC %d, NC %d; edge eff %.1f%%, padding to 16/16/32 %+.1f%% FLOPs",
           d->kc, d->mc, d->nc, 100 * d->tile_eff, 100 * d->pad_overhead);
}

/* A pointwise convolution's B is the image, rows of positions, used by only n rows of A (its
 * output channels). Packing it copies each element once for every n FMAs, and with few
 * output channels that copy took a third of the kernel. The micro-kernel then reads B in
 * place (the last, partial panel of a block is still packed) and KC is capped so that the
 * KC x MR column it reads stays in L1. Measured on Zen 4, one thread, batch 8, packed ->
 * in place: 144 -> 24 channels at 56² 2.99 -> 1.88 ms, 96 -> 24 at 56² 2.08 -> 1.34,
 * 192 -> 64 at 28² 2.26 -> 1.64, 256 -> 96 at 28² 3.42 -> 2.93, 576 -> 160 at 28²
 * 12.3 -> 11.2; 64 -> 256 at 56² and 128 -> 512 at 28² tied. */
#define TILES_CPU_DIRECT_B_N 256
/* Images of at least this many positions then run a GEMM each even where fewer than
 * TILES_CONV_BATCH_P would have the batch share one gathered GEMM (CgConv.batch): at 14²
 * (196) 384 -> 64 channels ran 0.99 -> 0.88 ms, 576 -> 96 1.98 -> 1.84 (batch 8); at 7²
 * (49, a panel and a half) 960 -> 160 lost, 1.21 -> 1.27 */
#define TILES_CPU_DIRECT_B_P 128
#define TILES_CPU_DIRECT_B_L1 0.75 /* of L1 for the KC x MR column of B */

static void direct_b(const HwTarget *hw, TileDecision *d, int es) {
  const TileGemm *gm = &d->gemm;
  int64_t p = gm->images > 0 ? gm->m / gm->images : gm->m;
  if (!gm->pointwise || gm->bf16 || gm->dt != DT_F32 || gm->batch != 1 ||
      gm->n > TILES_CPU_DIRECT_B_N || p < TILES_CPU_DIRECT_B_P)
    return;
  d->direct_b = true;
  int64_t l1 = hw->l1_bytes > 0 ? hw->l1_bytes : 32 * 1024;
  int64_t kc = (int64_t)(TILES_CPU_DIRECT_B_L1 * (double)l1) / ((int64_t)d->mr * es) / 8 * 8;
  if (kc >= 8 && kc < d->kc) d->kc = (int)kc;
}

/* A pointwise forward whose image (C channels of OH x OW) a depthwise convolution writes
 * only for it (MobileNetV2's projections) can take that convolution into its kernel: each task
 * computes the depthwise's output for a strip of rows of one image into its thread's scratch,
 * [C][rows·OW], and the GEMM reads it there in place, so that the depthwise's output never
 * goes to memory. The model takes it where the strip is a whole image within
 * TILES_DW_STRIP_L2 of L2, there is an image for every core, and the batch's intermediate
 * (written and read back apart) would not stay in L2 (TILES_DW_FUSE_L2). Shorter strips lost:
 * a strip reads a short run of each of the depthwise's input planes, and the stream
 * prefetcher, retrained at every plane, left the depthwise waiting on memory. Measured on
 * Zen 4 (one thread, batch 8, MobileNetV2, depthwise + projection apart -> fused): 56²
 * layers in 24-row strips 3.23 -> 4.32 ms and 3.44 -> 4.14 (6-row strips: 5.84, 4.19;
 * with software prefetch of the next plane's rows no better), 28² ones in strips of 24 of 28
 * rows 1.33 -> 1.38, whole 28² images of 144 channels 1.33 -> 1.30, whole 14² images
 * 0.92-1.00 of apart (2 of 7 layers: 635 -> 586 us, 1454 -> 1414). */
#define TILES_DW_STRIP_L2 0.5
#define TILES_DW_FUSE_L2 1.0

static void choose_dw_strip(const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  d->dw_rows = 0;
  if (!d->direct_b || !gm->conv_fwd || gm->oh <= 0 || gm->ow <= 0 || gm->images <= 0) return;
  double l2 = hw->l2_bytes_cpu > 0 ? (double)hw->l2_bytes_cpu : 1024.0 * 1024;
  double image = (double)gm->k * (double)gm->ow * (double)gm->oh * 4;
  int64_t cores = hw->cores > 0 ? hw->cores : 1;
  if (image > TILES_DW_STRIP_L2 * l2 || image * (double)gm->images <= TILES_DW_FUSE_L2 * l2 ||
      gm->images < cores)
    return;
  d->dw_rows = (int)gm->oh;
}

#define TILES_DW_GROUP_HOPS 16 /* nodes of a group walked back to its depthwise */

/* The depthwise convolution that computes pointwise forward i's image, through the
 * elementwise and batchnorm nodes of its group (first operands), or NULL */
static const IrNode *dw_source(IrGraph *g, int i) {
  int x = g->nodes[i].nin > 0 ? g->nodes[i].in[0] : -1;
  for (int hop = 0; x >= 0 && hop < TILES_DW_GROUP_HOPS; hop++) {
    const IrNode *n = &g->nodes[x];
    if (n->op == OP_CONV2D) {
      const IrType *w = n->nin > 1 ? &g->nodes[n->in[1]].type : NULL;
      bool dw = w && w->rank == 4 && n->attr.groups > 1 && ev(g, w->dims[1]) == 1 &&
                ev(g, w->dims[0]) == n->attr.groups;
      return dw ? n : NULL;
    }
    if (!(ir_ops[n->op].flags & OPF_ELEMWISE) && n->op != OP_BATCHNORM) return NULL;
    x = n->nin > 0 ? n->in[0] : -1;
  }
  return NULL;
}

/* Strips of an image past L2 (choose_dw_strip takes only whole images): where the depthwise
 * runs at stride 1 and each strip reads runs of at least TILES_DW_RUN_MIN bytes of each of its
 * input planes, the strip as tall as TILES_DW_STRIP_L2 of L2 holds. Then the pointwise is the
 * GEMM with its image in place, not the direct kernel of few channels. Measured on Zen 4 (one
 * thread, batch 8, apart -> fused in 16-row strips): 32 channels at 112² (to 16) 4.03 ->
 * 3.44 ms, in MobileNetV2 1.78 + 2.25 -> 3.2 ms; 64 at 112² (runs of 8 KiB) 8.6-9.2 ->
 * 8.4-8.7; 96 at 112² (runs of 5.4 KiB) even; 144 at 56² (runs of 3.5 KiB) 3.15 -> 4.2;
 * stride 2 (96 channels, 112² -> 56²) 3.6 -> 4.8. */
#define TILES_DW_RUN_MIN 8192.0

static void choose_dw_run(IrGraph *g, int i, const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  const IrNode *dw = hw->kind == HW_CPU && d->direct_b && d->dw_rows == 0 && gm->conv_fwd &&
                             gm->oh > 0 && gm->ow > 0 && gm->images > 0
                         ? dw_source(g, i)
                         : NULL;
  if (!dw || dw->attr.stride[0] > 1 || dw->attr.stride[1] > 1) return;
  double l2 = hw->l2_bytes_cpu > 0 ? (double)hw->l2_bytes_cpu : 1024.0 * 1024;
  double row = (double)gm->k * (double)gm->ow * 4; /* a row of the strip, all channels */
  int64_t rows = (int64_t)(TILES_DW_STRIP_L2 * l2 / row);
  if (rows >= gm->oh || (double)rows * (double)gm->ow * 4 < TILES_DW_RUN_MIN) return;
  int64_t strips = (gm->oh + rows - 1) / rows;
  rows = (gm->oh + strips - 1) / strips; /* strips of even height */
  d->dw_rows = (int)rows;
  size_t n = strlen(d->reason);
  if (n + 1 < sizeof d->reason)
    snprintf(d->reason + n, sizeof d->reason - n,
             "; its depthwise fused in %lld strips of %lld rows an image (runs of %.1f KiB a plane)",
             (long long)strips, (long long)rows, (double)rows * (double)gm->ow * 4 / 1024);
}

static void choose_cpu(const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  /* computed in f32 lanes unless the target has native f16 arithmetic */
  int es = gm->dt == DT_F16 && hw->peak[HWP_F16] > 0 ? 2 : gm->dt == DT_F64 ? 8 : 4;
  int lanes = hw->vector_bits / (8 * es);
  if (lanes < 1) lanes = 1;
  /* bf16 inputs: f32 accumulators as before (one vdpbf16ps per accumulator and k pair, the
   * loads per instruction unchanged), but packed panels of 2-byte values, so the caches
   * hold twice the k depth and KC is capped at the same instructions per C tile */
  int kcap = TILES_CPU_KC;
  if (gm->bf16 && gm->dt == DT_F32) es = 2, kcap = 2 * TILES_CPU_KC;
  int regs = hw->vector_regs, fu = hw->fma_units, lp = hw->load_ports;
  int best_mv = 1, best_nr = 1, best_acc = 0;
  double best_ratio = 0;
  for (int mv = 1; mv <= regs; mv++)
    for (int nr = 1; mv * nr + mv + 1 <= regs; nr++) {
      int acc = mv * nr;
      /* loads of one k-step must not take longer than its FMAs */
      if ((double)(mv + nr) / lp > (double)acc / fu) continue;
      double ratio = (double)(mv * lanes) * nr / (mv * lanes + nr);
      if (acc > best_acc || (acc == best_acc && ratio > best_ratio))
        best_acc = acc, best_ratio = ratio, best_mv = mv, best_nr = nr;
    }
  double load_eff = 1;
  if (!gm->bf16 && !gm->conv) { /* a convolution's gathering pack prefers its wide tile */
    int mv = best_mv, nr = best_nr;
    narrow_tile(hw, gm, lanes, &mv, &nr, &load_eff);
    if (mv != best_mv) best_mv = mv, best_nr = nr, best_acc = mv * nr;
  }
  bool cols = gm->conv_fwd && gm->pointwise && gm->batch == 1 && !gm->bf16 &&
              few_columns_tile(hw, gm, lanes, best_mv, &best_nr);
  if (cols) best_acc = best_mv * best_nr;
  d->mr = best_mv * lanes, d->nr = best_nr;
  int64_t kc = hw->l2_bytes_cpu / (4 * (int64_t)(d->mr + d->nr) * es) / 8 * 8;
  if (kc > kcap) kc = kcap;
  if (kc < 8) kc = 8;
  if (kc > round_up(gm->k, 8)) kc = round_up(gm->k, 8);
  int64_t mc = hw->l2_bytes_cpu / (2 * kc * es) / d->mr * d->mr;
  if (mc < d->mr) mc = d->mr;
  if (mc > round_up(gm->m, d->mr)) mc = round_up(gm->m, d->mr);
  int64_t nc = hw->l3_bytes / (4 * kc * es) / d->nr * d->nr;
  if (nc < d->nr) nc = d->nr;
  if (nc > round_up(gm->n, d->nr)) nc = round_up(gm->n, d->nr);
  d->kc = (int)kc, d->mc = (int)mc, d->nc = (int)nc;
  direct_b(hw, d, es);
  choose_dw_strip(hw, d);
  int64_t um = ceil_div(gm->m, d->mr), un = ceil_div(gm->n, d->nr);
  d->tile_eff = (double)gm->m * gm->n / ((double)um * d->mr * un * d->nr);
  int64_t units = um * un * gm->batch, cores = hw->cores > 0 ? hw->cores : 1;
  d->tiles = units;
  d->waves = (double)units / (double)cores;
  d->wave_eff = d->waves / ceil(d->waves);
  /* a product with at most TILES_CPU_STREAM_M rows reuses each element of B at most that
   * often: packing B (a read and a write of all of it) costs more than the product, and a
   * register tile of mr rows would be mostly empty; such a matmul streams B once instead
   * (in f32: a bf16 product keeps the packed path, whose packing rounds its inputs) */
  int64_t rows = gm->m * gm->batch; /* one product: the batch folds into m (a shared B) */
  d->stream_b = !gm->conv && !gm->trans_a && !gm->bf16 && gm->dt == DT_F32 && rows <= TILES_CPU_STREAM_M &&
                (gm->b_shared || gm->batch == 1);
  bool latency_ok = best_acc >= hw->fma_latency * fu;
  d->eff = d->tile_eff * d->wave_eff * load_eff *
           (latency_ok ? 1.0 : (double)best_acc / (hw->fma_latency * fu));
  snprintf(d->reason, sizeof d->reason,
           "micro-kernel %dx%d%s (%d accumulators of %d lanes, %d of %d vector registers), "
           "KC %d, MC %d (L2), NC %d (L3); edge eff %.1f%%, core eff %.1f%%%s",
           d->mr, d->nr, es == 2 && gm->bf16 ? " on bf16 pairs" : "", best_acc, lanes,
           best_acc + best_mv + 1, regs, d->kc, d->mc, d->nc,
           100 * d->tile_eff, 100 * d->wave_eff,
           d->stream_b ? "; few rows: B streamed, not packed"
           : d->direct_b ? "; a pointwise convolution of few channels: B (the image, or dy) read in place, not packed"
           : load_eff < 1 ? "; few rows in the lanes: a narrow tile, loads beyond the FMAs"
           : latency_ok ? "" : "; too few accumulators to hide FMA latency");
  size_t len = strlen(d->reason);
  if (cols && len < sizeof d->reason)
    snprintf(d->reason + len, sizeof d->reason - len,
             "; %lld output channels: %d broadcast rows, not the widest tile's",
             (long long)gm->n, d->nr);
}

/* ---- CPU forward convolutions of few positions: output channels in the lanes ------------ */

/* A forward convolution's GEMM vectorizes its output positions (m), so an image of 49
 * positions (ResNet's last stage, MobileNetV2's late layers at 224²) fills 49 of 64 lanes
 * and one of 196 fills 196 of 224. Computed transposed, yᵀ[P, Og] = colᵀ·wᵀ, the output
 * channels (multiples of 16 in these networks) fill the lanes and the positions are the
 * register tile's rows, where any count from TILES_CONV_T_MR_MIN up divides them better
 * (49 = 7 x 7, 196 = 14 x 14). The price is the write-back: the GEMM writes yᵀ to scratch
 * and a pass writes it to y's NCHW layout, applying the epilogue (bias or folded
 * batchnorm, relu) on the way. */
#define TILES_CONV_T_NRV 2 /* vectors of channels: 32 lanes with AVX-512, the most the packed
                              filter's row padding (CG_PACK_ROWS_A) holds */
#define TILES_CONV_T_MR_MIN 4
/* seconds per output element of the write-back, one thread (vl x vl blocks transposed in
 * registers; a 128-channel 28x28 layer on Zen 4: 0.18 ns; CG_CONV_T_WB_S of the cost model) */
#define TILES_CONV_T_WB_S 0.2e-9
/* seconds to gather one row (a filter tap) of one panel of col while packing, either
 * orientation (Zen 4, a 128-channel 28x28 layer, rows of 14 positions: 3.9 ns): a panel
 * holds as many positions as the vectorized side's tile, and every output channel shares
 * it, so per output element it costs TILES_CONV_ROW_S·K / (positions a panel · Og) */
#define TILES_CONV_ROW_S 4e-9
/* the transposed form must model this much faster to be taken */
#define TILES_CONV_T_GAIN 0.97

/* the rows of one of the backend's GEMM calls: one image's positions, or every image's
 * when the images share one GEMM (CG_CONV_BATCH_P) */
static int64_t conv_call_rows(const TileGemm *gm) {
  int64_t p = gm->images > 0 ? gm->m / gm->images : gm->m;
  return gm->images > 1 && p < TILES_CONV_BATCH_P ? gm->m : p;
}

static void conv_t_blocking(const HwTarget *hw, TileDecision *d, int mr, int nr) {
  const TileGemm *gm = &d->gemm;
  int64_t kc = hw->l2_bytes_cpu / (4 * (int64_t)(mr + nr) * 4) / 8 * 8;
  if (kc > TILES_CPU_KC) kc = TILES_CPU_KC;
  if (kc < 8) kc = 8;
  if (kc > round_up(gm->k, 8)) kc = round_up(gm->k, 8);
  int64_t mc = hw->l2_bytes_cpu / (2 * kc * 4) / mr * mr;
  if (mc < mr) mc = mr;
  if (mc > round_up(gm->m, mr)) mc = round_up(gm->m, mr);
  int64_t nc = hw->l3_bytes / (4 * kc * 4) / nr * nr;
  if (nc < nr) nc = nr;
  if (nc > round_up(gm->n, nr)) nc = round_up(gm->n, nr);
  d->mr = mr, d->nr = nr, d->kc = (int)kc, d->mc = (int)mc, d->nc = (int)nc;
}

static void choose_conv_t(const HwTarget *hw, TileDecision *d, int lanes) {
  const TileGemm *gm = &d->gemm;
  if (!gm->conv_fwd || gm->bf16 || gm->dt != DT_F32 || lanes < 4 || d->mr % lanes) return;
  int nrv = TILES_CONV_T_NRV, nr = nrv * lanes, regs = hw->vector_regs;
  int lat = hw->fma_latency * hw->fma_units, lo = (lat + nrv - 1) / nrv;
  if (lo < TILES_CONV_T_MR_MIN) lo = TILES_CONV_T_MR_MIN;
  int64_t rows = conv_call_rows(gm);
  double e_n = edge1(rows, d->mr) * edge1(gm->n, d->nr), best = 0;
  int best_mr = 0;
  for (int mr = lo; mr * nrv + nrv + 1 <= regs; mr++) {
    double e = edge1(rows, mr) * edge1(gm->n, nr);
    if (e >= best) best = e, best_mr = mr; /* ties to the larger tile */
  }
  if (!best_mr) return;
  int cores = hw->cores > 0 ? hw->cores : 1;
  double peak1 = hw->peak_f32_1t > 0 ? hw->peak_f32_1t : hw_peak(hw, DT_F32, true) / cores;
  /* cost per output element, in units of its FMAs at the core's peak */
  double wb = TILES_CONV_T_WB_S * peak1 / (2.0 * (double)gm->k), og = (double)gm->n;
  double g_n = TILES_CONV_ROW_S * peak1 / (2.0 * d->mr * og), g_t = TILES_CONV_ROW_S * peak1 / (2.0 * best_mr * og);
  if (1 / best + wb + g_t >= TILES_CONV_T_GAIN * (1 / e_n + g_n)) return;
  double keep = d->eff / (d->tile_eff > 0 ? d->tile_eff : 1); /* the latency and core factors */
  d->conv_t = true;
  d->direct_b = false;
  d->dw_rows = 0;
  conv_t_blocking(hw, d, best_mr, nr);
  int64_t um = ceil_div(gm->m, d->mr), un = ceil_div(gm->n, d->nr);
  d->tile_eff = (double)gm->m * gm->n / ((double)um * d->mr * un * d->nr);
  d->tiles = um * un * gm->batch;
  d->waves = (double)d->tiles / (double)cores;
  double wave_eff = d->waves / ceil(d->waves);
  d->eff = keep / (d->wave_eff > 0 ? d->wave_eff : 1) * wave_eff * d->tile_eff;
  d->wave_eff = wave_eff;
  snprintf(d->reason, sizeof d->reason,
           "transposed (output channels in the lanes): micro-kernel %d positions x %d channels "
           "(%d accumulators of %d lanes), KC %d, MC %d, NC %d; edge eff %.1f%% per call of %lld "
           "positions (%.1f%% with the positions in the lanes), write-back %.1f%% and gathers "
           "%.1f%% of the FMAs (%.1f%% with the positions in the lanes)",
           d->mr, d->nr, d->mr * nrv, lanes, d->kc, d->mc, d->nc, 100 * best, (long long)rows,
           100 * e_n, 100 * wb, 100 * g_t, 100 * g_n);
}

/* ---- CPU matmuls of few rows: the outputs in the lanes ---------------------------------- */

/* The decision vectorizes m and the generated GEMM runs its tile read transposed (n in the
 * lanes, d->nr rows of m: llvm_ops.c gemm_blocking), so a matmul of few rows (a classifier
 * at batch 8: 8 x 1280 x 1000) ran 8 of a 25-row tile's rows: a third of its FMAs. Computed
 * transposed instead, Cᵀ = op(B)ᵀ·op(A)ᵀ, the outputs (n) fill vectors of the lanes and the
 * rows are the broadcast side, a tile as tall as they divide best (8 x 48 for that
 * classifier); then mr is the rows (m) and nr the lanes (n), as for conv_t. Only for at most
 * TILES_MM_T_ROWS rows a call (the generated GEMM's tallest tile), where the modeled rate
 * is TILES_MM_T_GAIN better. Measured on Zen 4, one thread: the classifier above, see
 * docs/cpu-convolutions.md "Few-row matmuls". */
#define TILES_MM_T_ROWS 32
#define TILES_MM_T_MAX_NRV 4
#define TILES_MM_T_GAIN 1.1


static void choose_mm_t(const HwTarget *hw, TileDecision *d, int lanes) {
  const TileGemm *gm = &d->gemm;
  if (!gm->matmul || gm->bf16 || gm->dt != DT_F32 || d->stream_b || lanes < 4 || d->mr % lanes) return;
  int64_t rows = gm->batch > 1 && gm->b_shared && !gm->trans_a ? gm->m * gm->batch : gm->m;
  if (rows > TILES_MM_T_ROWS) return;
  int run_rows = d->nr > TILES_MM_T_ROWS ? TILES_MM_T_ROWS : d->nr; /* the tile as run now */
  double now = rate_of(hw, gm->n, rows, lanes, d->mr / lanes, run_rows), best = 0;
  int best_r = 0, best_v = 0;
  for (int v = 1; v <= TILES_MM_T_MAX_NRV; v++)
    for (int r = 1; r <= TILES_MM_T_ROWS && r * v + v + 1 <= hw->vector_regs; r++) {
      double e = rate_of(hw, gm->n, rows, lanes, v, r);
      if (e > best * (1 + 1e-9) || (e >= best * (1 - 1e-9) && r * v > best_r * best_v))
        best = e, best_r = r, best_v = v; /* ties to more accumulators */
    }
  if (!best_r || best < TILES_MM_T_GAIN * now) return;
  int cores = hw->cores > 0 ? hw->cores : 1;
  d->mm_t = true;
  conv_t_blocking(hw, d, best_r, best_v * lanes);
  d->tile_eff = edge1(rows, d->mr) * edge1(gm->n, d->nr);
  d->tiles = ceil_div(rows, d->mr) * ceil_div(gm->n, d->nr) * (rows > gm->m ? 1 : gm->batch);
  d->waves = (double)d->tiles / (double)cores;
  d->wave_eff = d->waves / ceil(d->waves);
  d->eff = best * d->wave_eff;
  snprintf(d->reason, sizeof d->reason,
           "transposed (the outputs in the lanes): micro-kernel %d rows x %d outputs (%d accumulators "
           "of %d lanes), KC %d, MC %d, NC %d; modeled rate %.1f%% per call of %lld rows "
           "(%.1f%% with the %d-row tile read transposed)",
           d->mr, d->nr, d->mr * best_v, lanes, d->kc, d->mc, d->nc, 100 * best, (long long)rows,
           100 * now, run_rows);
}

/* ---- CPU non-temporal stores for outputs past the last-level cache --------------------- */

/* A pointwise convolution at 112² writes its output once and reads nothing back; where the
 * output (all images) exceeds what the last-level cache keeps for the next layer, plain
 * stores first read every line for ownership and evict the operands on the way. Stored
 * non-temporally instead (and not prefetched, llvm_gemm.c emit_c_prefetch): MobileNetV2's
 * 16 -> 96 at 112², batch 8 (38.5 MB against 32 MB of L3) 5.5-5.8 -> 4.2-4.5 ms. The L3 is
 * shared by every core of its complex (and on a cloud host by other guests): a 2-vCPU Zen 4
 * guest that reports 32 MB kept a pointwise convolution's 9.6 MB of traffic (batch 4) but
 * not 14.4 MB (batch 6: 1.5x the time a sample). So outputs over TILES_NT_MIN_L3 of the L3
 * take them, in one K block (each store then the last): at batch 8, MobileNetV2's 24 -> 144
 * at 56² (14.4 MB) 2.30-2.34 -> 2.08-2.15 ms each, their readers 0.02-0.05 ms slower; the
 * direct stem (12.8 MB, choose_conv_few) 2.86-2.91 -> 2.23-2.29 ms, its reader 0.25 ms
 * slower. */
#define TILES_NT_MIN_L3 0.25

static double out_bytes(const TileGemm *gm) { return (double)gm->m * (double)gm->n * (double)gm->batch * 4; }

static bool nt_output(const HwTarget *hw, const TileGemm *gm) {
  return gm->dt == DT_F32 && !gm->bf16 && hw->l3_bytes > 0 && out_bytes(gm) > TILES_NT_MIN_L3 * (double)hw->l3_bytes;
}

static void nt_reason(const HwTarget *hw, TileDecision *d) {
  double out = out_bytes(&d->gemm);
  size_t n = strlen(d->reason);
  if (n + 1 < sizeof d->reason)
    snprintf(d->reason + n, sizeof d->reason - n,
             "; non-temporal stores: the output, %.1f MB, is past %.0f%% of the %.1f MB L3",
             out / 1e6, 100 * TILES_NT_MIN_L3, (double)hw->l3_bytes / 1e6);
}

static void choose_nt_store(const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  d->nt_store = gm->conv_fwd && gm->pointwise && !d->conv_t && !d->conv_few && nt_output(hw, gm) &&
                gm->k <= d->kc;
  if (d->nt_store) nt_reason(hw, d);
}

void tiles_choose(const HwTarget *hw, const TileGemm *gm, TileDecision *out) {
  memset(out, 0, sizeof *out);
  out->valid = true;
  out->gemm = *gm;
  out->gpu = hw->kind == HW_GPU;
  mma_shape(hw, gm, out);
  if (out->gpu) {
    alignment(hw, out);
  } else { /* CPU kernels pack panels and handle edges: no padding to suggest */
    out->align = out->align_pref = 1;
    out->aligned = true;
    out->pad_m = gm->m, out->pad_n = gm->n, out->pad_k = gm->k;
  }
  if (out->gpu) choose_gpu(hw, out);
  else choose_cpu(hw, out);
  if (!out->gpu && !out->gemm.bf16) choose_conv_t(hw, out, hw->vector_bits / 32);
  if (!out->gpu && !out->gemm.bf16) choose_mm_t(hw, out, hw->vector_bits / 32);
  if (!out->gpu) choose_nt_store(hw, out);
  if (!out->gpu && gm->bf16 && gm->amx) choose_amx(hw, out);
}

/* ---- Winograd F(4,3) (CPU) ---------------------------------------------------------- */

bool tiles_wino_shape(IrGraph *g, int i, int64_t *o, int64_t *c, int64_t *t) {
  const IrNode *n = &g->nodes[i];
  bool bwd = n->op == OP_CONV2D_BWD_DATA; /* the convolution of dy into dx, padding 2 - p */
  if ((n->op != OP_CONV2D && !bwd) || n->attr.groups > 1 || n->nin < 2) return false;
  const IrType *x = &g->nodes[n->in[0]].type, *w = &g->nodes[n->in[1]].type, *y = &n->type;
  if (x->rank != 4 || w->rank != 4 || y->rank != 4 || x->dt != DT_F32 || w->dt != DT_F32) return false;
  for (int d = 0; d < 2; d++)
    if (n->attr.stride[d] > 1 || n->attr.dilation[d] > 1 || ev(g, w->dims[2 + d]) != 3 ||
        (bwd && n->attr.pad[d] > 2))
      return false;
  *o = ev(g, w->dims[bwd ? 1 : 0]), *c = ev(g, w->dims[bwd ? 0 : 1]);
  *t = ev(g, y->dims[0]) * ceil_div(ev(g, y->dims[2]), 4) * ceil_div(ev(g, y->dims[3]), 4);
  return *o > 0 && *c > 0 && *t > 0;
}

static double peak_1t(const HwTarget *hw) {
  if (hw->peak_f32_1t > 0) return hw->peak_f32_1t;
  return hw_peak(hw, DT_F32, true) / (hw->cores > 0 ? hw->cores : 1);
}

/* one core's bandwidth for a working set of `bytes` (the level it fits in) */
static double core_bw(const HwTarget *hw, double bytes) {
  double cores = hw->cores > 0 ? hw->cores : 1;
  if (bytes <= (double)hw->l2_bytes_cpu && hw->cache_bw[1] > 0) return hw->cache_bw[1] / cores;
  if (bytes <= (double)hw->l3_bytes && hw->cache_bw[2] > 0) return hw->cache_bw[2] / cores;
  return hw->mem_bw_1t > 0 ? hw->mem_bw_1t : hw->mem_bw;
}

/* the lanes the transforms' vectors of TILES_WINO_LANES tiles run for one image's plane */
static int64_t wino_plane_lanes(int64_t th, int64_t tw) {
  int64_t L = TILES_WINO_LANES;
  if ((tw == 2 || tw == 4) && th > 1) return ceil_div(th * tw, L) * L;
  return th * ceil_div(tw, L) * L;
}

double tiles_wino_xform_time(const HwTarget *hw, int64_t o, int64_t c, int64_t nb, int64_t th,
                             int64_t tw, int64_t xbytes, int64_t ybytes) {
  double rate = 0.5 * peak_1t(hw) * fmin(1.0, TILES_WINO_VECTOR_BITS / (hw->vector_bits > 0 ? hw->vector_bits : 128));
  double t = (double)(nb * th * tw), lanes = (double)(nb * wino_plane_lanes(th, tw));
  double flops = lanes * ((double)c * TILES_WINO_IN_FLOPS + (double)o * TILES_WINO_OUT_FLOPS);
  double scratch = 4.0 * 36 * (double)t * (double)(c + o);
  double bytes = (double)xbytes + (double)ybytes + 4.0 * 36 * (double)t * (double)(c + 2 * o);
  return flops / rate + bytes / core_bw(hw, scratch);
}

double tiles_wino_filter_time(const HwTarget *hw, int64_t o, int64_t c) {
  double pairs = (double)o * (double)c, u = 4.0 * 36 * pairs;
  bool l2 = u <= (double)hw->l2_bytes_cpu; /* beyond: one thread's memory bandwidth */
  return pairs * TILES_WINO_FILTER_S + u / (l2 ? core_bw(hw, u) : core_bw(hw, INFINITY));
}

/* the fixed cost of one call of a packed GEMM or runtime kernel on one thread (its loops'
 * setup, the pool's packing buffer): plan_cost.c's CG_CALL_S + CG_SCRATCH_S */
#define TILES_CALL_S 0.2e-6

/* one core's time of a packed GEMM with decision d over m x n (m vectorized), depth k:
 * the decision's FMA latency factor, the edge efficiency of its tile, B packed once, and
 * the packed-once A (n x k) streamed from the level it fits in */
static double cpu_gemm_1t(const HwTarget *hw, const TileDecision *d, double m, double n, double k) {
  double core = d->tile_eff > 0 && d->wave_eff > 0 ? d->eff / (d->tile_eff * d->wave_eff) : 1;
  double edge = m / (ceil(m / d->mr) * d->mr) * n / (ceil(n / d->nr) * d->nr);
  double pack = hw->pack_bw > 0 ? hw->pack_bw : core_bw(hw, 0);
  return 2 * m * n * k / (peak_1t(hw) * core * edge) + 8 * k * m / pack +
         4 * n * k / core_bw(hw, 4 * n * k) + TILES_CALL_S;
}

/* one core's time of the implicit GEMM node i runs instead (decided as d; o, c: the
 * Winograd convolution's channels out and in): the forward per image, or on the whole batch
 * below 256 positions an image; a data gradient's unfold GEMM dcol[9o, P] = wᵀ·dy and its
 * col2im (the unfold written, read back and summed into dx) */
static double wino_direct_time(IrGraph *g, int i, const HwTarget *hw, const TileDecision *d,
                               int64_t o, int64_t c) {
  const IrType *y = &g->nodes[i].type;
  int64_t N = ev(g, y->dims[0]), P = ev(g, y->dims[2]) * ev(g, y->dims[3]);
  double pm = N > 1 && P < TILES_CONV_BATCH_P ? (double)(N * P) : (double)P, calls = (double)N * P / pm;
  if (g->nodes[i].op == OP_CONV2D) return calls * cpu_gemm_1t(hw, d, pm, (double)o, 9.0 * (double)c);
  double col = 4.0 * 9 * (double)o * pm;
  return calls * (cpu_gemm_1t(hw, d, pm, 9.0 * (double)o, (double)c) + 3 * col / core_bw(hw, col));
}

/* Winograd F(4,3) against the implicit GEMM for node i (decided as d): 36 GEMMs of a
 * quarter of the multiply-adds in all but smaller, plus the transforms' FLOPs and bytes and,
 * in a training step (step: the filter changes every call) or for a data gradient (whose
 * rotated filter is never packed once), the filter's transform */
static void choose_wino(IrGraph *g, int i, const HwTarget *hw, Arena *a, TileDecision *d, bool step) {
  int64_t o, c, t;
  if (hw->kind != HW_CPU || d->gemm.bf16 || !tiles_wino_shape(g, i, &o, &c, &t)) return;
  const IrNode *n = &g->nodes[i];
  const IrType *y = &n->type;
  int64_t N = ev(g, y->dims[0]);
  int64_t nb = 1, per = t / N; /* images a round: the fewest dividing N with enough tiles */
  while (nb < N && (N % nb || nb * per < TILES_WINO_MIN_TILES)) nb++;
  double rounds = (double)(N / nb);
  TileGemm wg = {.m = nb * per, .n = o, .k = c, .batch = 36, .dt = DT_F32};
  TileDecision *wd = arena_alloc(a, sizeof *wd);
  tiles_choose(hw, &wg, wd);
  wd->wino_images = nb;
  double direct = wino_direct_time(g, i, hw, d, o, c);
  bool every = step || n->op == OP_CONV2D_BWD_DATA;
  int64_t xb = ir_type_numel(g, &g->nodes[n->in[0]].type) * 4, yb = ir_type_numel(g, y) * 4;
  double wino = rounds * (36 * cpu_gemm_1t(hw, wd, (double)wg.m, (double)o, (double)c) +
                         tiles_wino_xform_time(hw, o, c, nb, ceil_div(ev(g, y->dims[2]), 4),
                                               ceil_div(ev(g, y->dims[3]), 4), xb / (N / nb),
                                               yb / (N / nb)) +
                         2 * TILES_CALL_S) +
                (every ? tiles_wino_filter_time(hw, o, c) : 0);
  bool win = wino < direct;
  if (win) d->wino = wd;
  size_t len = strlen(d->reason);
  if (len < sizeof d->reason)
    snprintf(d->reason + len, sizeof d->reason - len,
             "; Winograd F(4,3) %s: %lld tiles in rounds of %lld images%s, modeled %.3g ms vs "
             "%.3g ms implicit GEMM (one core)",
             win ? "chosen" : "not chosen", (long long)t, (long long)nb,
             every ? ", filter transformed every call" : "", 1e3 * wino, 1e3 * direct);
}

/* whether g is a training step (it assigns): its parameters change every call */
static bool tiles_graph_steps(const IrGraph *g) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_ASSIGN) return true;
  return false;
}

/* cycles of one tap of one output vector of the direct filter gradient (llvm_ops.c
 * wgrad_body: one masked load of the tap's input vector and wgrad_ob FMAs, dy's vectors
 * loaded once a row for a filter row's taps), per output channel: measured on lenet's two
 * (N=64, Zen 4 at the host figure's 2.6 GHz: 0.74 and 0.81; plan_cost.c CG_WGRAD_TAP_CYCLES) */
#define TILES_WGRAD_TAP_CYCLES 0.78

/* one core's time of the direct filter gradient of d's GEMM view gm (dy rows of OW) */
static double wgrad_direct_time(const HwTarget *hw, const TileGemm *gm, int64_t OW) {
  int lanes = hw->vector_bits / 32;
  double ghz = hw->ghz > 0 ? hw->ghz : 3;
  double tapvec = (double)gm->k / (double)OW * ceil((double)OW / lanes) * (double)(gm->n * gm->m * gm->batch);
  return tapvec * TILES_WGRAD_TAP_CYCLES / (ghz * 1e9) + TILES_CALL_S;
}

/* cycles of one vector step of the pointwise direct filter gradient per accumulator
 * (llvm_ops.c pw_wgrad_item: OB + CB loads, OB·CB FMAs; dy's and x's rows streamed again
 * for every pass), measured on MobileNetV2's (N=8, 112², Zen 4, one thread);
 * plan_cost.c CG_WGRAD_PW_CYCLES */
#define TILES_WGRAD_PW_CYCLES 1.0

/* one core's time of the pointwise direct filter gradient of gm (m output channels, n
 * input channels, k the images' positions) in ob x cb passes */
static double wgrad_pw_time(const HwTarget *hw, const TileGemm *gm, int64_t ob, int64_t cb) {
  int lanes = hw->vector_bits / 32;
  double ghz = hw->ghz > 0 ? hw->ghz : 3;
  double steps = ceil((double)gm->k / lanes) * (double)(gm->m / ob) * (double)(gm->n / cb) * (double)gm->batch;
  return steps * (double)(ob * cb) * TILES_WGRAD_PW_CYCLES / (ghz * 1e9) + TILES_CALL_S;
}

/* below this many positions an image, a filter gradient's implicit GEMM runs one call for
 * the whole batch (codegen/plan/plan.h CG_CONV_BATCH_DW_P) */
#define TILES_WGRAD_BATCH_P 32

/* the filter gradient d (dW[m, n] += dy·colᵀ, k = the batch's positions) as the implicit GEMM,
 * on one core: a call per image, or one for the batch of small images; per group */
static double wgrad_gemm_time(const HwTarget *hw, const TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  double N = gm->images > 0 ? (double)gm->images : 1, P = (double)gm->k / N;
  double pm = N > 1 && P < TILES_WGRAD_BATCH_P ? N * P : P, calls = N * P / pm;
  return calls * (double)gm->batch * cpu_gemm_1t(hw, d, (double)gm->m, (double)gm->n, pm);
}

/* a 1x1 stride-1 unpadded filter gradient (dW[o][c] = Σ dy[o][p]·x[c][p]) computed directly:
 * ob output channels x cb input channels a pass (dividing them; their accumulators and one
 * vector of each row in the registers, the most FMAs per load), against the GEMM d */
static void choose_wgrad_pw(IrGraph *g, int i, const HwTarget *hw, TileDecision *d) {
  const IrNode *n = &g->nodes[i];
  const TileGemm *gm = &d->gemm;
  int regs = hw->vector_regs > 0 ? hw->vector_regs : 16;
  if (n->attr.stride[0] != 1 || n->attr.stride[1] != 1 || n->attr.pad[0] || n->attr.pad[1] ||
      gm->m < 1 || gm->n < 1 || gm->images < 1)
    return;
  const IrType *x = &g->nodes[n->in[0]].type, *y = &g->nodes[n->in[1]].type;
  if (ev(g, x->dims[2]) != ev(g, y->dims[2]) || ev(g, x->dims[3]) != ev(g, y->dims[3])) return;
  int64_t ob = 0, cb = 0;
  for (int64_t a = 1; a <= gm->m && a <= 8; a++)
    for (int64_t b = 1; b <= gm->n && b <= 8; b++)
      if (gm->m % a == 0 && gm->n % b == 0 && a * b + a + b + 1 <= regs &&
          (double)(a * b) / (double)(a + b) > (ob ? (double)(ob * cb) / (double)(ob + cb) : 0))
        ob = a, cb = b;
  if (ob * cb < 4) return; /* fewer FMAs than loads: the GEMM's */
  double direct = wgrad_pw_time(hw, gm, ob, cb), gemm = wgrad_gemm_time(hw, d);
  bool win = direct < gemm;
  if (win) d->wgrad_ob = (int)ob, d->wgrad_cb = (int)cb;
  size_t len = strlen(d->reason);
  if (len < sizeof d->reason)
    snprintf(d->reason + len, sizeof d->reason - len,
             "; direct pointwise filter gradient %s: %lld x %lld channels a pass, modeled %.3g ms "
             "vs %.3g ms GEMM (one core)",
             win ? "chosen" : "not chosen", (long long)ob, (long long)cb, 1e3 * direct, 1e3 * gemm);
}

/* the filter gradient of node i computed directly (TileDecision.wgrad_ob) against the
 * implicit GEMM d: for every output channel, input channel and tap, a vector accumulator
 * along the output rows, as many output channels a pass as the registers hold (their
 * accumulators, dy's vectors and the input's); up to 8x8 filters at strides 1 and 2 */
static void choose_wgrad(IrGraph *g, int i, const HwTarget *hw, TileDecision *d) {
  const IrNode *n = &g->nodes[i];
  const TileGemm *gm = &d->gemm;
  if (n->op != OP_CONV2D_BWD_FILTER || hw->kind != HW_CPU || gm->bf16 || gm->dt != DT_F32)
    return;
  const IrType *y = &g->nodes[n->in[1]].type, *w = &n->type;
  int64_t KH = ev(g, w->dims[2]), KW = ev(g, w->dims[3]), OW = ev(g, y->dims[3]);
  int lanes = hw->vector_bits / 32, regs = hw->vector_regs > 0 ? hw->vector_regs : 16;
  /* filters under 3 wide, or stride 2 along the rows (two loads a tap), load more than they
   * multiply: resnet18's 1x1 stride-2 downsample's gradient ran 875 us direct, 595 as the
   * GEMM (N=8 S=112, Zen 4); the kernel computes them all the same (strides 1 and 2) */
  if (KH == 1 && KW == 1 && lanes >= 4) {
    choose_wgrad_pw(g, i, hw, d);
    return;
  }
  if (KH < 1 || KH > 8 || KW < 3 || KW > 8 || n->attr.stride[0] > 2 || n->attr.stride[1] > 1 ||
      lanes < 4 || OW < 1 || ev(g, y->dims[2]) < 1)
    return;
  int64_t og = gm->m, ob = 0;
  if (og == 1 && gm->n == KH * KW && gm->batch > 1) return; /* depthwise: its own kernels */
  for (int64_t b = 1; b <= og && b <= 16; b++) /* accumulators, dy's vectors, the input's, a spare */
    if (og % b == 0 && b * (KW + 1) + 2 <= regs) ob = b;
  if (!ob) return;
  double direct = wgrad_direct_time(hw, gm, OW), gemm = wgrad_gemm_time(hw, d);
  bool win = direct < gemm;
  if (win) d->wgrad_ob = (int)ob;
  size_t len = strlen(d->reason);
  if (len < sizeof d->reason)
    snprintf(d->reason + len, sizeof d->reason - len,
             "; direct filter gradient %s: %lld output channels a pass, modeled %.3g ms vs "
             "%.3g ms implicit GEMM (one core)",
             win ? "chosen" : "not chosen", (long long)ob, 1e3 * direct, 1e3 * gemm);
}

/* the filter gradient of a 3x3, stride-1, dilation-1, ungrouped f32 convolution (node i a
 * CONV2D_BWD_FILTER: x, dy in): its channels out o and in c, images, tiles a row and column */
static bool wino_wgrad_shape(IrGraph *g, int i, int64_t *o, int64_t *c, int64_t *nimg,
                             int64_t *th, int64_t *tw) {
  const IrNode *n = &g->nodes[i];
  if (n->op != OP_CONV2D_BWD_FILTER || n->attr.groups > 1 || n->nin < 2) return false;
  const IrType *x = &g->nodes[n->in[0]].type, *dy = &g->nodes[n->in[1]].type, *w = &n->type;
  if (x->rank != 4 || dy->rank != 4 || w->rank != 4 || x->dt != DT_F32 || dy->dt != DT_F32 ||
      w->dt != DT_F32)
    return false;
  for (int d = 0; d < 2; d++)
    if (n->attr.stride[d] > 1 || n->attr.dilation[d] > 1 || ev(g, w->dims[2 + d]) != 3) return false;
  *o = ev(g, w->dims[0]), *c = ev(g, w->dims[1]), *nimg = ev(g, dy->dims[0]);
  *th = ceil_div(ev(g, dy->dims[2]), 4), *tw = ceil_div(ev(g, dy->dims[3]), 4);
  return *o > 0 && *c > 0 && *nimg > 0 && *th > 0 && *tw > 0;
}

double tiles_wino_wgrad_xform_time(const HwTarget *hw, int64_t o, int64_t c, int64_t nb, int64_t th,
                                   int64_t tw, int64_t xbytes, int64_t dybytes) {
  double rate = 0.5 * peak_1t(hw) * fmin(1.0, TILES_WINO_VECTOR_BITS / (hw->vector_bits > 0 ? hw->vector_bits : 128));
  double t = (double)(nb * th * tw), lanes = (double)(nb * wino_plane_lanes(th, tw));
  double flops = lanes * ((double)c * TILES_WINO_IN_FLOPS + (double)o * TILES_WINO_DY_FLOPS);
  double scratch = 4.0 * 36 * t * (double)(c + o);
  return flops / rate + ((double)xbytes + (double)dybytes + scratch) / core_bw(hw, scratch);
}

double tiles_wino_wgrad_out_time(const HwTarget *hw, int64_t o, int64_t c) {
  (void)hw; /* the rate of its memory operations: TILES_WINO_GOUT_S */
  bool alias = (o * c) % 1024 == 0; /* the 36 sums 4 KiB-multiples apart: one L1 set */
  return (double)o * (double)c * (alias ? TILES_WINO_GOUT_S : TILES_WINO_GOUT_SPREAD_S);
}

/* the filter gradient of node i as Winograd (F(3,4) in effect: dW = Gᵀ·[(A·dy·Aᵀ) ⊙ (Bᵀ·x·B)]·G
 * summed over the tiles) against the implicit GEMM decided as d (dW[o, 9c] = dy·colᵀ, K the
 * positions), or the direct filter gradient where choose_wgrad took it: per round the two
 * transforms, 36 GEMMs [o x T]·[T x c] (m = c in the lanes, n = o, k = the round's tiles, B
 * transposed) accumulating into the sums, then their output transform once */
static void choose_wino_wgrad(IrGraph *g, int i, const HwTarget *hw, Arena *a, TileDecision *d) {
  int64_t o, c, N, th, tw;
  if (hw->kind != HW_CPU || d->gemm.bf16 || !wino_wgrad_shape(g, i, &o, &c, &N, &th, &tw)) return;
  const IrNode *n = &g->nodes[i];
  int64_t per = th * tw, nb = 1; /* images a round: the fewest dividing N with enough tiles */
  while (nb < N && (N % nb || nb * per < TILES_WINO_WGRAD_MIN_TILES)) nb++;
  double rounds = (double)(N / nb);
  TileGemm wg = {.m = c, .n = o, .k = nb * per, .batch = 36, .dt = DT_F32, .trans_b = true};
  TileDecision *wd = arena_alloc(a, sizeof *wd);
  tiles_choose(hw, &wg, wd);
  wd->wino_images = nb;
  double direct = d->wgrad_ob > 0 ? wgrad_direct_time(hw, &d->gemm, ev(g, g->nodes[n->in[1]].type.dims[3]))
                                   : wgrad_gemm_time(hw, d);
  int64_t xb = ir_type_numel(g, &g->nodes[n->in[0]].type) * 4 / (N / nb);
  int64_t yb = ir_type_numel(g, &g->nodes[n->in[1]].type) * 4 / (N / nb);
  double wino = rounds * (36 * (cpu_gemm_1t(hw, wd, (double)c, (double)o, (double)(nb * per)) +
                                4.0 * (double)(o * c) / core_bw(hw, 4.0 * 36 * (double)(o * c))) +
                          tiles_wino_wgrad_xform_time(hw, o, c, nb, th, tw, xb, yb) + 2 * TILES_CALL_S) +
                tiles_wino_wgrad_out_time(hw, o, c) + TILES_CALL_S;
  bool win = wino < direct, was = d->wgrad_ob > 0;
  if (win) d->wino = wd, d->wgrad_ob = 0, d->wgrad_cb = 0;
  size_t len = strlen(d->reason);
  if (len < sizeof d->reason)
    snprintf(d->reason + len, sizeof d->reason - len,
             "; Winograd filter gradient %s: %lld tiles in rounds of %lld images, modeled %.3g ms "
             "vs %.3g ms %s (one core)",
             win ? "chosen" : "not chosen", (long long)(N * per), (long long)nb, 1e3 * wino,
             1e3 * direct, was ? "direct" : "implicit GEMM");
}

/* a forward f32 convolution of one group and few input channels at column stride 1 or 2
 * (the shapes llvm_ops.c lower_conv_few computes directly); its rows' buffer of C·KH input
 * rows in sw phases must fit the backend's 64 KiB (CG_DW_BUF_MAX) */
static bool conv_few_shape(IrGraph *g, const IrNode *n, int lanes) {
  if (n->op != OP_CONV2D || n->attr.groups > 1 || n->nin < 2) return false;
  const IrType *x = &g->nodes[n->in[0]].type, *w = &g->nodes[n->in[1]].type, *y = &n->type;
  if (x->rank != 4 || w->rank != 4 || y->rank != 4 || x->dt != DT_F32 || w->dt != DT_F32) return false;
  int64_t c = ev(g, w->dims[1]), kh = ev(g, w->dims[2]), kw = ev(g, w->dims[3]), ow = ev(g, y->dims[3]);
  int64_t sw = n->attr.stride[1] > 0 ? n->attr.stride[1] : 1, dw = n->attr.dilation[1] > 0 ? n->attr.dilation[1] : 1;
  if (kh > 8 || kw > 8 || sw > 2 || dw > 64 || c * kh * kw > TILES_CONV_FEW_K || ow > 4096) return false;
  /* a 1x1 convolution's GEMM reads the image without gathers; direct only where its output
   * channels fill one register block (the GEMM's tile is then half empty) */
  if (kh * kw == 1 && ev(g, w->dims[0]) > lanes) return false;
  int64_t lp = (ceil_div(ow, lanes) * lanes + (kw - 1) * dw / sw + lanes) / lanes * lanes;
  return c * kh * sw * lp * 4 <= 64 * 1024;
}

/* the direct kernel of few input channels against the implicit GEMM (decided as d) for
 * node i, both on one core: the direct kernel's vectors (TILES_CONV_FEW_VEC_S) against the
 * packed GEMM plus its gathers */
static void choose_conv_few(IrGraph *g, int i, const HwTarget *hw, TileDecision *d) {
  const IrNode *n = &g->nodes[i];
  int lanes = hw->vector_bits >= 128 ? hw->vector_bits / 32 : 4;
  if (hw->kind != HW_CPU || d->gemm.bf16 || d->wino || !conv_few_shape(g, n, lanes)) return;
  if (d->dw_rows > 0 && dw_source(g, i)) return; /* fused with its depthwise (choose_dw_run) */
  const TileGemm *gm = &d->gemm;
  int64_t N = gm->images > 0 ? gm->images : 1, ow = ev(g, n->type.dims[3]);
  double P = (double)gm->m / (double)N, rows = P / (double)ow;
  double vecs = (double)N * rows * (double)ceil_div(ow, lanes);
  double few = vecs * (double)gm->n * (2.0 * lanes * (double)gm->k / peak_1t(hw) + TILES_CONV_FEW_VEC_S);
  double pm = N > 1 && P < TILES_CONV_BATCH_P ? (double)N * P : P, calls = (double)N * P / pm;
  double panel = d->mr; /* positions a gathered panel, either orientation */
  double gemm = calls * cpu_gemm_1t(hw, d, pm, (double)gm->n, (double)gm->k) +
                TILES_CONV_ROW_S * (double)gm->k * (double)N * P / (panel > 0 ? panel : 1);
  bool win = few < gemm;
  if (win) d->conv_few = true, d->conv_t = false, d->nt_store = nt_output(hw, gm);
  size_t len = strlen(d->reason);
  if (len < sizeof d->reason)
    snprintf(d->reason + len, sizeof d->reason - len,
             "; direct (few input channels, K = %lld) %s: modeled %.3g ms vs %.3g ms implicit GEMM "
             "(one core)",
             (long long)gm->k, win ? "chosen" : "not chosen", 1e3 * few, 1e3 * gemm);
  if (win && d->nt_store) nt_reason(hw, d); /* its output rows' whole aligned vectors */
}

TilePlan *pass_tiles(IrGraph *g, const HwTarget *hw, Arena *a) {
  if (!a) a = g->arena;
  TilePlan *p = arena_alloc(a, sizeof *p);
  p->n = g->nnodes;
  p->hw = hw;
  p->tiles = arena_alloc(a, (size_t)(g->nnodes ? g->nnodes : 1) * sizeof(TileDecision));
  bool step = tiles_graph_steps(g);
  for (int i = 0; i < g->nnodes; i++) {
    TileGemm gm;
    if (tiles_gemm_of(g, i, &gm) && gm.m > 0 && gm.n > 0 && gm.k > 0) {
      tiles_choose(hw, &gm, &p->tiles[i]);
      choose_wino(g, i, hw, a, &p->tiles[i], step);
      choose_wgrad(g, i, hw, &p->tiles[i]);
      choose_wino_wgrad(g, i, hw, a, &p->tiles[i]);
      choose_dw_run(g, i, hw, &p->tiles[i]);
      choose_conv_few(g, i, hw, &p->tiles[i]);
    }
  }
  return p;
}

TilePlan *pass_tiles_bf16(IrGraph *g, const HwTarget *hw, Arena *a, bool amx) {
  TilePlan *p = pass_tiles(g, hw, a);
  for (int i = 0; i < p->n; i++) {
    TileDecision *d = &p->tiles[i];
    if (!d->valid || d->gpu || d->gemm.dt != DT_F32) continue;
    TileGemm gm = d->gemm;
    gm.bf16 = true;
    gm.amx = amx;
    tiles_choose(hw, &gm, d);
  }
  return p;
}
