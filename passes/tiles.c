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

static void mma_shape(const HwTarget *hw, DType dt, TileDecision *d) {
  bool half = dt == DT_F16 || dt == DT_BF16;
  d->mma = "fma";
  d->mma_m = d->mma_n = d->mma_k = 1;
  if (hw->kind != HW_GPU || !half || hw_peak(hw, dt, true) <= hw_peak(hw, dt, false)) return;
  if (hw->cc >= 90) d->mma = "wgmma m64nNk16", d->mma_m = 64, d->mma_n = 8, d->mma_k = 16;
  else if (hw->cc >= 80) d->mma = "mma.sync m16n8k16", d->mma_m = 16, d->mma_n = 8, d->mma_k = 16;
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

typedef struct Cand {
  int bm, bn;
} Cand;
static const Cand gpu_cands[] = {{256, 128}, {128, 256}, {128, 128}, {128, 64}, {64, 128},
                                 {64, 64},   {64, 32},   {32, 64},   {32, 32}};

static bool gpu_eval(const HwTarget *hw, const TileGemm *gm, Cand c, TileDecision *d,
                     double *model_time) {
  int es = (int)dt_size(gm->dt);
  int bk = 64 / es; /* 64-byte K slices: 32 halves, 16 floats */
  int64_t per_stage = (int64_t)(c.bm + c.bn) * bk * es;
  int stages = hw->cc >= 80 ? 4 : 2; /* cp.async multi-stage pipelines from Ampere on */
  while (stages > 2 && per_stage * stages > hw->smem_per_block) stages--;
  int64_t smem = per_stage * stages;
  if (smem > hw->smem_per_block) return false;
  int wt = c.bm >= 128 && c.bn >= 128 ? 64 : 32; /* warp tile */
  int warps = (c.bm / wt) * (c.bn / wt);
  if (warps < 1) warps = 1;
  int64_t regs = (int64_t)c.bm * c.bn + 2048 * (int64_t)warps; /* accumulators + 64/thread */
  int64_t by_smem = hw->smem_per_sm / smem, by_regs = hw->regs_per_sm / regs;
  int64_t ctas = by_smem < by_regs ? by_smem : by_regs;
  if (ctas > 64 / warps) ctas = 64 / warps;
  if (ctas > 16) ctas = 16;
  if (ctas < 1) return false;
  int64_t tiles = ceil_div(gm->m, c.bm) * ceil_div(gm->n, c.bn) * gm->batch;
  int64_t slots = (int64_t)hw->sm_count * ctas;
  double waves = (double)tiles / (double)slots;
  double peak = hw_peak(hw, gm->dt, true);
  double t_comp = 2.0 * c.bm * c.bn * gm->k / (peak / (double)slots);
  double t_load = (double)(c.bm + c.bn) * gm->k * es / (hw->mem_bw * TILES_L2_AMPLIFICATION / (double)slots);
  *model_time = ceil(waves) * fmax(t_comp, t_load);
  d->bm = c.bm, d->bn = c.bn, d->bk = bk, d->stages = stages, d->warps = warps;
  d->ctas_per_sm = (int)ctas, d->smem = smem, d->tiles = tiles, d->waves = waves;
  d->tile_eff = (double)gm->m * gm->n / ((double)ceil_div(gm->m, c.bm) * c.bm * ceil_div(gm->n, c.bn) * c.bn);
  d->wave_eff = waves / ceil(waves);
  double ideal = 2.0 * gm->m * gm->n * gm->k * gm->batch / peak;
  d->eff = *model_time > 0 ? ideal / *model_time : 0;
  return true;
}

static void choose_gpu(const HwTarget *hw, TileDecision *d) {
  double best = INFINITY;
  TileDecision keep = *d;
  for (size_t i = 0; i < sizeof gpu_cands / sizeof *gpu_cands; i++) {
    TileDecision t = *d;
    double mt;
    if (!gpu_eval(hw, &d->gemm, gpu_cands[i], &t, &mt)) continue;
    if (mt < best * (1 - 1e-9)) best = mt, keep = t;
  }
  *d = keep;
  const char *bound = "";
  if (d->wave_eff < 0.75) bound = "; wave quantization dominates";
  else if (d->tile_eff < 0.75) bound = "; tile quantization dominates";
  snprintf(d->reason, sizeof d->reason,
           "%dx%dx%d, %d warps, %d stages, %lld KiB smem, %d CTA/SM; tiles %lld = %.2f waves "
           "on %d SMs; tile eff %.1f%%, wave eff %.1f%%%s",
           d->bm, d->bn, d->bk, d->warps, d->stages, (long long)(d->smem / 1024), d->ctas_per_sm,
           (long long)d->tiles, d->waves, hw->sm_count, 100 * d->tile_eff, 100 * d->wave_eff,
           bound);
}

/* ---- CPU blocking -------------------------------------------------------------------- */

static void choose_cpu(const HwTarget *hw, TileDecision *d) {
  const TileGemm *gm = &d->gemm;
  /* computed in f32 lanes unless the target has native f16 arithmetic */
  int es = gm->dt == DT_F16 && hw->peak[HWP_F16] > 0 ? 2 : gm->dt == DT_F64 ? 8 : 4;
  int lanes = hw->vector_bits / (8 * es);
  if (lanes < 1) lanes = 1;
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
  d->mr = best_mv * lanes, d->nr = best_nr;
  int64_t kc = hw->l1_bytes / (2 * (int64_t)(d->mr + d->nr) * es) / 8 * 8;
  if (kc < 8) kc = 8;
  if (kc > round_up(gm->k, 8)) kc = round_up(gm->k, 8);
  int64_t mc = hw->l2_bytes_cpu / (2 * kc * es) / d->mr * d->mr;
  if (mc < d->mr) mc = d->mr;
  if (mc > round_up(gm->m, d->mr)) mc = round_up(gm->m, d->mr);
  int64_t nc = hw->l3_bytes / (2 * kc * es) / d->nr * d->nr;
  if (nc < d->nr) nc = d->nr;
  if (nc > round_up(gm->n, d->nr)) nc = round_up(gm->n, d->nr);
  d->kc = (int)kc, d->mc = (int)mc, d->nc = (int)nc;
  int64_t um = ceil_div(gm->m, d->mr), un = ceil_div(gm->n, d->nr);
  d->tile_eff = (double)gm->m * gm->n / ((double)um * d->mr * un * d->nr);
  int64_t units = um * un * gm->batch, cores = hw->cores > 0 ? hw->cores : 1;
  d->tiles = units;
  d->waves = (double)units / (double)cores;
  d->wave_eff = d->waves / ceil(d->waves);
  bool latency_ok = best_acc >= hw->fma_latency * fu;
  d->eff = d->tile_eff * d->wave_eff * (latency_ok ? 1.0 : (double)best_acc / (hw->fma_latency * fu));
  snprintf(d->reason, sizeof d->reason,
           "micro-kernel %dx%d (%d accumulators of %d lanes, %d of %d vector registers), "
           "KC %d (L1), MC %d (L2), NC %d (L3); edge eff %.1f%%, core eff %.1f%%%s",
           d->mr, d->nr, best_acc, lanes, best_acc + best_mv + 1, regs, d->kc, d->mc, d->nc,
           100 * d->tile_eff, 100 * d->wave_eff,
           latency_ok ? "" : "; too few accumulators to hide FMA latency");
}

void tiles_choose(const HwTarget *hw, const TileGemm *gm, TileDecision *out) {
  memset(out, 0, sizeof *out);
  out->valid = true;
  out->gemm = *gm;
  out->gpu = hw->kind == HW_GPU;
  mma_shape(hw, gm->dt, out);
  if (out->gpu) {
    alignment(hw, out);
  } else { /* CPU kernels pack panels and handle edges: no padding to suggest */
    out->align = out->align_pref = 1;
    out->aligned = true;
    out->pad_m = gm->m, out->pad_n = gm->n, out->pad_k = gm->k;
  }
  if (out->gpu) choose_gpu(hw, out);
  else choose_cpu(hw, out);
}

TilePlan *pass_tiles(IrGraph *g, const HwTarget *hw, Arena *a) {
  if (!a) a = g->arena;
  TilePlan *p = arena_alloc(a, sizeof *p);
  p->n = g->nnodes;
  p->hw = hw;
  p->tiles = arena_alloc(a, (size_t)(g->nnodes ? g->nnodes : 1) * sizeof(TileDecision));
  for (int i = 0; i < g->nnodes; i++) {
    TileGemm gm;
    if (tiles_gemm_of(g, i, &gm) && gm.m > 0 && gm.n > 0 && gm.k > 0)
      tiles_choose(hw, &gm, &p->tiles[i]);
  }
  return p;
}
