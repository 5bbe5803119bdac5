/* plan_cost.c — per-kernel time of a compiled step from the kernel plan (plan_cost.h). */
#include "plan_cost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../passes/cost.h"

/* FLOPs one transcendental of an elementwise group costs beyond the one the counting rules
 * give: llvm_math.c evaluates exp, log, tanh, sigmoid and Phi in f64 lanes (each operation
 * on half the f32 lanes, so counting twice): about 25 operations for exp's reduction and
 * degree-12 polynomial, and one f64 division (log, tanh, sigmoid, Phi) whose throughput
 * is about an eighth of the FMA's, ~16 more */
#define CG_TRANSC_EXTRA 64.0
/* ... and Phi (GELU, and one of GELU's backward's two transcendentals) more: the erfc fit
 * adds an f64 division, a degree-9 polynomial, a square and a select to its exp; measured
 * on char_lm's GELU kernels (Zen 4, 1 thread: 2.0 ns an element, 1.68x what 64 gave) */
#define CG_PHI_EXTRA 110.0
/* ... but a square root is one instruction (llvm.sqrt: vsqrtps, a 16-lane result every ~6
 * cycles on Zen 4, so about 0.4 cycles an element): 8 FLOPs at the elementwise half rate */
#define CG_SQRT_EXTRA 8.0
/* elements per task of a fused elementwise kernel (the LLVM backend's split, llvm_ops.c)
 * and the work below which a runtime kernel stays on the calling thread (rt_kernels.c) */
#define CG_EW_GRAIN 16384
/* a GEMM below 2^21 multiply-adds runs on one thread (llvm_gemm.h parallel_min_flops) */
#define CG_GEMM_PAR_FLOPS (2.0 * (1 << 21))
#define CG_NODE_GRAIN 32768.0
/* cycles the scalar pooling and reduction kernels of the runtime (rt_kernels.c) spend per
 * element they touch and per window element they visit: an N-d index computed per element
 * and, for max, a data-dependent branch; measured with `bench --profile` on max-pooling's
 * backward and bias-gradient sums (Zen 4, runtime built -O3: 2.5 to 4.5; 9 to 24 at -O2
 * with the geometry reloaded per element), one of the two figures of this model taken from
 * a run rather than from the hardware's. Used for average pooling's backward,
 * cross entropy and reductions over axes that are neither leading nor trailing. */
#define CG_SCALAR_CYCLES 4.0
/* the row-wise max pooling (rt_kernels.c maxpool_plane) per window element: its inner loop
 * is vectorized in 4-float baseline vectors (strided input lanes gathered by shuffles):
 * per vector about two loads, a shuffle, a compare, a blend and the running maximum's load
 * and store, ~8 operations at the core's 4 per cycle, so half a cycle an element */
#define CG_MAXPOOL_CYCLES 0.5
/* ... and per row segment (plane, output row, window offset): the loop's setup, its valid
 * range, and the scalar remainder of up to 3 elements with its checks; measured on lenet's
 * 14- and 5-wide output rows (Zen 4: about 20), the other figure taken from a run */
#define CG_MAXPOOL_ROW_CYCLES 20.0
/* max pooling's backward (rt_kernels.c pool_argmax: a max over the window, then the first
 * index holding it by conditional moves), per window element visited and element touched:
 * lenet's 2x2 pools measured 1.7-1.8 (N=64, Zen 4) */
#define CG_MAXPOOL_BWD_CYCLES 1.8
/* 2x2 windows at stride 2 (rt_kernels.c pool2_fwd, pool2_bwd: eight windows of a row per
 * vector, a row's last ones overlapping or, in rows under eight windows, read as whole
 * vectors and stored through a buffer), cycles per window and per output row at the host
 * figure's clock (2.6 GHz): fitted to lenet's two pools (14- and 5-window rows, N=64, 1
 * thread, Zen 4, their inputs in L3): forward 34.4 and 16.3 us, backward 73.3 and 42.2 us.
 * The backward writes every element of dx once (no zeroing pass); the figures include the
 * traffic. */
#define CG_MAXPOOL2_CYCLES 0.93
#define CG_MAXPOOL2_ROW_CYCLES 3.6
#define CG_MAXPOOL2_BWD_CYCLES 1.6
#define CG_MAXPOOL2_BWD_ROW_CYCLES 13.6
/* 3x3 windows at stride 2 (rt_kernels.c pool3_fwd, pool3_bwd: eight windows a vector, each
 * input row copied once into a buffer padded with -inf; the backward zeroes dx, finds the
 * windows' taps and adds each window row's interleaved contributions to its three input
 * rows), cycles per window and per output row at the host figure's clock (2.6 GHz): the
 * forward fitted to resnet18's pool at N=1 224² (56-window rows: 272 us) and N=8 112²
 * (28-window rows: 733 us), the backward (1716 us at N=8 112²) scaled from the forward's
 * by its ratio there; one thread, Zen 4, figures taken from a run */
#define CG_MAXPOOL3_CYCLES 2.3
#define CG_MAXPOOL3_ROW_CYCLES 69.0
#define CG_MAXPOOL3_BWD_CYCLES 5.4
#define CG_MAXPOOL3_BWD_ROW_CYCLES 160.0
/* the average pooling's scalar loop (rt_kernels.c pool_planes) per window element: the
 * index, two bounds checks, a load, a conversion and a double add, ~8 instructions at about
 * 4 a cycle, the adds of neighbouring outputs overlapping; inception_a's 3x3 pools measured
 * 1.7 to 1.9 with `bench --profile` (Zen 4) */
#define CG_AVGPOOL_CYCLES 2.0
/* one call of libm's expf (softmax's exponentials in rt_kernels.c): a table lookup and a
 * short double polynomial, a dozen dependent instructions plus the call */
#define CG_EXPF_CYCLES 10.0
/* the runtime is built for baseline x86-64: its vector loops use 128-bit vectors and
 * separate multiplies and adds (no FMA) */
#define CG_RT_VECTOR_BITS 128.0
/* the call of one kernel that runs on the calling thread only */
#define CG_CALL_S 0.1e-6

const char *cg_level_name(int level) {
  static const char *names[] = {"L1", "L2", "L3", "DRAM"};
  return level >= 0 && level <= CG_LEVEL_DRAM ? names[level] : "?";
}

void cg_kernel_name(const CgPlan *p, int ki, char *buf, size_t n) {
  const CgKernel *k = &p->k[ki];
  int node = k->kind == CGK_COPY ? p->v[k->copy_src].root : k->out;
  const IrNode *nd = &p->g->nodes[node];
  const char *what = nd->name ? nd->name : nd->scope ? nd->scope : ir_op_name(nd->op);
  snprintf(buf, n, "k%d %s %s", ki, k->wino ? "winograd" : cg_kernel_kind_name(k->kind), what);
}

/* ---- bytes ------------------------------------------------------------------------------ */

/* whether value root's kernel stored it non-temporally (the tiles' nt_store: a forward
 * convolution's output past a quarter of the L3): its reader finds it in memory, not in a
 * cache, whatever its size */
static bool stored_past_caches(const CgPlan *p, int root) {
  int w = root >= 0 && root < p->g->nnodes ? p->kof[root] : -1;
  const CgKernel *k = w >= 0 ? &p->k[w] : NULL;
  return k && k->out == root && (k->kind == CGK_CONV || k->kind == CGK_GEMM) && k->tile &&
         !k->tile->gpu && k->tile->nt_store;
}

/* kernel ki's reads and writes into c; *param_bytes: those of the parameter region; *nt
 * (if not NULL): its reads of values stored past the caches (stored_past_caches) */
static void kernel_bytes(const CgPlan *p, int ki, CgKernelCost *c, double *param_bytes, double *nt) {
  const CgKernel *k = &p->k[ki];
  *param_bytes = 0;
  if (nt) *nt = 0;
  if (k->kind == CGK_COPY) {
    c->rd = c->wr = (double)k->copy_bytes;
    if (k->copy_dst_region == RT_REGION_PARAMS) *param_bytes = (double)k->copy_bytes;
    return;
  }
  int *roots = xmalloc(((size_t)k->nmembers * IR_MAX_IN + 1) * sizeof(int));
  int nr = cg_kernel_reads(p, ki, roots);
  for (int i = 0; i < nr; i++) {
    const CgVal *v = &p->v[roots[i]];
    c->rd += (double)v->nbytes;
    if (v->region == RT_REGION_PARAMS) *param_bytes += (double)v->nbytes;
    if (nt && stored_past_caches(p, roots[i])) *nt += (double)v->nbytes;
  }
  free(roots);
  for (int m = 0; m < k->nmembers; m++) {
    int i = k->members[m];
    const CgVal *v = &p->v[i];
    if (!v->stored || v->root != i || v->region == CG_REGION_NONE) continue;
    c->wr += (double)v->nbytes;
    if (v->region == RT_REGION_PARAMS) *param_bytes += (double)v->nbytes;
  }
}

/* im2col writes the unfolded K x P matrix of every image and group and the GEMM reads it;
 * a batch of small images has one scratch for all of them per group (CgConv.batch) */
static double conv_scratch(const CgPlan *p, const CgKernel *k) {
  if (k->kind != CGK_CONV || !k->scratch_bytes) return 0;
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  /* cv.scratch: the unfold or the batch's matrices, without a folded batchnorm's table */
  return cv.scratch > 0 ? 2.0 * (cv.batch ? 1 : (double)cv.N) * (double)cv.G * (double)cv.scratch : 0;
}

/* BLIS-style packing (llvm_gemm.h): B's KC x NC panels once, A's MC x KC blocks once per NC
 * panel of B; each packed element is read and written once. A convolution runs one GEMM
 * per image and group, filter (A) times unfolded image (B): the filter is packed again for
 * every image. */
static double pack_bytes(const CgPlan *p, const CgKernel *k, const TileDecision *t) {
  const TileGemm *g = &t->gemm;
  double es = g->dt == DT_F64 ? 8 : 4;
  if (k->kind == CGK_CONV && p->g->nodes[k->node].op == OP_CONV2D) {
    CgConv cv;
    cg_conv_geom(p, k->node, &cv);
    double nb = t->mc > 0 ? ceil((double)cv.P / t->mc) : 1;
    double filter = k->packed ? 0 : (double)cv.Og * (double)cv.K * nb; /* packed once */
    return 2.0 * es * (double)cv.N * (double)cv.G * (filter + (double)cv.K * (double)cv.P);
  }
  double nb = t->nc > 0 ? ceil((double)g->n / t->nc) : 1;
  double b = k->packed ? 0 : (double)g->k * (double)g->n; /* a weight packed once (plan_pack.c) */
  return 2.0 * es * (double)g->batch * (b + (double)g->m * (double)g->k * nb);
}

/* Every GEMM task packs into its pool thread's kept buffer (rt_pool_scratch, llvm_gemm.c):
 * taking and returning it costs a few atomics per call, and no pages are faulted in once
 * the buffer has grown to the program's largest GEMM. Calls: one per image and group for a
 * convolution (one per group for a batch of small images), one per kernel otherwise. */
#define CG_SCRATCH_S 0.1e-6

static double alloc_time(const CgPlan *p, const CgKernel *k) {
  double calls = 1;
  if (k->kind == CGK_CONV && p->g->nodes[k->node].op == OP_CONV2D) {
    CgConv cv;
    cg_conv_geom(p, k->node, &cv);
    calls = (double)cv.G * (cv.batch ? 1 : (double)cv.N);
  }
  return calls * CG_SCRATCH_S;
}

/* ---- compute ---------------------------------------------------------------------------- */

static void kernel_flops(const CgPlan *p, const CgKernel *k, double *flops, double *transc) {
  IrGraph *g = (IrGraph *)p->g; /* cost_node allocates its formulas in the graph's arena */
  *flops = *transc = 0;
  for (int m = 0; m < k->nmembers; m++) {
    CostNode cn;
    cost_node(g, k->members[m], &cn);
    *flops += dim_evalf(g->dims, cn.flops, NULL);
    *transc += dim_evalf(g->dims, cn.transc, NULL);
  }
}

/* the edge efficiency of the register tile the CPU backend runs: the decision vectorizes
 * its m side, the LLVM GEMM the N side of a matmul (so a matmul's tile is read transposed,
 * llvm_ops.c gemm_blocking, but for a few-row matmul's transposed decision, mm_t, which is
 * read as decided); a convolution's GEMM there is the transpose of the view */
static double edge_eff(const CgPlan *p, const CgKernel *k, const TileDecision *t, bool matmul) {
  double m = (double)t->gemm.m, n = (double)t->gemm.n;
  if (!matmul && k->kind == CGK_CONV) { /* one GEMM per image: its m side is OH x OW */
    CgConv cv;
    cg_conv_geom(p, k->node, &cv);
    if (cv.N > 0 && p->g->nodes[k->node].op == OP_CONV2D) m /= (double)cv.N;
  }
  bool swap = matmul && !t->mm_t;
  double rm = swap ? t->nr : t->mr, rn = swap ? t->mr : t->nr;
  return m / (ceil(m / rm) * rm) * n / (ceil(n / rn) * rn);
}

/* the tiles pass's efficiency for `threads` threads: its FMA latency factor stays, the
 * edge efficiency is that of the tile as run, the core quantization is redone, and each KC
 * block of K reloads and stores the accumulators (two vector memory operations per
 * accumulator beside kc FMA steps) */
static double gemm_eff(const CgPlan *p, const CgKernel *k, int threads) {
  const TileDecision *t = k->tile;
  bool matmul = k->kind == CGK_GEMM;
  if (!t) return 0.5;
  if (t->gpu) return t->eff;
  double wave = t->wave_eff > 0 ? t->wave_eff : 1, tile = t->tile_eff > 0 ? t->tile_eff : 1;
  double eff = t->eff / wave / tile * edge_eff(p, k, t, matmul);
  double waves = (double)t->tiles / threads;
  if (waves > 0) eff *= waves / ceil(waves);
  double kk = (double)t->gemm.k, kb = t->kc > 0 ? ceil(kk / t->kc) : 1;
  return eff * kk / (kk + 2.0 * kb);
}

/* the threads a kernel runs on: GEMMs split over all, elementwise groups in 16 Ki-element
 * tasks, runtime kernels when their work is large enough */
static int kernel_threads(const CgPlan *p, const CgKernel *k, int threads, double flops) {
  if (k->kind == CGK_GEMM || k->kind == CGK_CONV) return flops >= CG_GEMM_PAR_FLOPS ? threads : 1;
  if (k->kind == CGK_COPY) return 1;
  if (k->kind == CGK_EW) {
    int64_t tasks = p->v[k->members[k->nmembers - 1]].numel / CG_EW_GRAIN + 1;
    return tasks < threads ? (int)tasks : threads;
  }
  return flops + (double)p->v[k->out].numel >= CG_NODE_GRAIN ? threads : 1;
}

/* ---- bandwidth -------------------------------------------------------------------------- */

static int level_of(const HwTarget *hw, double bytes, int threads) {
  if (bytes <= (double)hw->l1_bytes * threads) return CG_LEVEL_L1;
  if (bytes <= (double)hw->l2_bytes_cpu * threads) return CG_LEVEL_L2;
  if (bytes <= (double)hw->l3_bytes) return CG_LEVEL_L3;
  return CG_LEVEL_DRAM;
}

double cg_level_bw(const HwTarget *hw, int level, int threads) {
  int cores = hw->cores > 0 ? hw->cores : 1;
  if (level == CG_LEVEL_DRAM && hw->mem_bw_1t > 0) return fmin(hw->mem_bw, threads * hw->mem_bw_1t);
  if (level == CG_LEVEL_DRAM || hw->cache_bw[level] <= 0) return hw->mem_bw; /* unknown */
  return hw->cache_bw[level] * threads / cores;
}

static double peak_of(const HwTarget *hw, DType dt, bool gemm, int threads) {
  int cores = hw->cores > 0 ? hw->cores : 1;
  double all = hw_peak(hw, dt, gemm);
  if (threads >= cores) return all;
  double one = hw->peak_f32_1t > 0 && hw->peak[HWP_F32] > 0
                   ? all * hw->peak_f32_1t / hw->peak[HWP_F32] : all / cores;
  return one * threads;
}

/* a reduction the runtime runs as contiguous rows or column sums (rt_k_reduce): the
 * reduced axes are a leading run, a trailing run or both (per-channel statistics) */
static bool reduce_contiguous(const CgPlan *p, const IrNode *n) {
  int rank = p->v[n->in[0]].rank;
  int32_t m = 0;
  if (n->attr.naxes == 0) return true;
  for (int j = 0; j < n->attr.naxes; j++) m |= 1 << (n->attr.axes[j] < 0 ? n->attr.axes[j] + rank : n->attr.axes[j]);
  int lead = 0, trail = rank;
  while (lead < rank && (m >> lead & 1)) lead++;
  while (trail > 0 && (m >> (trail - 1) & 1)) trail--;
  return trail <= lead || ((m >> lead) & ((1 << (trail - lead)) - 1)) == 0;
}

/* cycles per core of the runtime's node kernels beyond their vector arithmetic (0 for the
 * kernels that run at memory speed: batchnorm, layernorm, data movement, row and column
 * reductions): per element or window element visited, see the constants above */
/* the runtime's vector path that takes this pooling, if any: 2 (2x2 stride 2 unpadded,
 * rt_kernels.c pool_2x2) or 3 (3x3 stride 2, padding 0 or 1: pool_3x3s2), else 0; its
 * windows (the pooled value's elements) in rows of its last dim */
static int maxpool_vec(const CgPlan *p, const IrNode *n, int pooled, double *windows, double *rows) {
  const IrAttr *a = &n->attr;
  const CgVal *o = &p->v[pooled], *x = &p->v[n->op == OP_MAXPOOL ? n->in[0] : n->in[1]];
  if (a->stride[0] != 2 || a->stride[1] != 2 || a->dilation[0] > 1 || a->dilation[1] > 1 ||
      o->rank != 4 || x->rank != 4)
    return 0;
  *windows = (double)o->numel;
  *rows = o->shape[3] > 0 ? *windows / (double)o->shape[3] : 0;
  if (a->kernel[0] == 2 && a->kernel[1] == 2 && a->pad[0] == 0 && a->pad[1] == 0 &&
      2 * o->shape[2] <= x->shape[2] && 2 * o->shape[3] <= x->shape[3])
    return 2;
  if (a->kernel[0] == 3 && a->kernel[1] == 3 && a->pad[0] >= 0 && a->pad[0] <= 1 &&
      a->pad[1] >= 0 && a->pad[1] <= 1)
    return 3;
  return 0;
}

static double node_cycles(const CgPlan *p, const CgKernel *k, const HwTarget *hw,
                          const CgKernelCost *c) {
  if (k->kind != CGK_NODE || hw->kind != HW_CPU) return 0;
  const IrNode *n = &p->g->nodes[k->node];
  double elems = (double)p->v[k->out].numel, touched = (c->rd + c->wr) / 4;
  switch (n->op) {
  case OP_MAXPOOL: { /* flops = window elements visited; rows = planes x output rows */
    double w2, r2;
    int vec = maxpool_vec(p, n, k->out, &w2, &r2);
    if (vec == 2) return w2 * CG_MAXPOOL2_CYCLES + r2 * CG_MAXPOOL2_ROW_CYCLES;
    if (vec == 3) return w2 * CG_MAXPOOL3_CYCLES + r2 * CG_MAXPOOL3_ROW_CYCLES;
    const CgVal *o = &p->v[k->out];
    double rows = o->rank >= 2 ? elems / (double)o->shape[o->rank - 1] : elems;
    return c->flops * CG_MAXPOOL_CYCLES +
           rows * n->attr.kernel[0] * n->attr.kernel[1] * CG_MAXPOOL_ROW_CYCLES;
  }
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_LOG_SOFTMAX_BWD: /* the probe's, in cycles */
    return elems * (hw->softmax_s > 0 ? hw->softmax_s * (hw->ghz > 0 ? hw->ghz : 3) * 1e9
                                      : CG_EXPF_CYCLES);
  case OP_SOFTMAX_BWD: return 0;
  case OP_AVGPOOL: return c->flops * CG_AVGPOOL_CYCLES;
  case OP_MAXPOOL_BWD: {
    double w2, r2;
    int vec = maxpool_vec(p, n, n->in[0], &w2, &r2);
    if (vec == 2) return w2 * CG_MAXPOOL2_BWD_CYCLES + r2 * CG_MAXPOOL2_BWD_ROW_CYCLES;
    if (vec == 3) return w2 * CG_MAXPOOL3_BWD_CYCLES + r2 * CG_MAXPOOL3_BWD_ROW_CYCLES;
    return (c->flops + touched) * CG_MAXPOOL_BWD_CYCLES;
  }
  case OP_AVGPOOL_BWD: case OP_CROSS_ENTROPY: case OP_CE_BWD:
    return (c->flops + touched) * CG_SCALAR_CYCLES;
  default:
    if (!(ir_ops[n->op].flags & OPF_REDUCE) || reduce_contiguous(p, n)) return 0;
    return (c->flops + touched) * CG_SCALAR_CYCLES;
  }
}

/* the runtime's small-M product (rt_k_gemv): baseline vectors, multiply and add apart */
static bool gemm_streamed(const CgKernel *k, const HwTarget *hw) {
  return k->kind == CGK_GEMM && k->tile && !k->tile->gpu && k->tile->stream_b && hw->kind == HW_CPU;
}

/* ---- the packed GEMM of the CPU backend ------------------------------------------------- */

/* cycles one thread spends per element it packs from strided rows when the probe has not
 * measured it: a scalar load and a vector insert per element (nnc probe on Zen 4: about 4) */
#define CG_PACK_STRIDED_CYCLES 4.0

double cg_pack_rate(const HwTarget *hw, CgPack how) {
  if (how == CG_PACK_GATHER)
    return hw->pack_strided_bw > 0 ? hw->pack_strided_bw
                                   : 4.0 * (hw->ghz > 0 ? hw->ghz : 3) * 1e9 / CG_PACK_STRIDED_CYCLES;
  if (how == CG_PACK_TRANSPOSED && hw->pack_transposed_bw > 0) return hw->pack_transposed_bw;
  return hw->pack_bw > 0 ? hw->pack_bw : cg_level_bw(hw, CG_LEVEL_L2, 1);
}

static double ceil_div(double a, double b) { return b > 0 ? ceil(a / b) : 1; }

/* the column tiles of cols columns, nr a tile: an edge tile of at most one vector of a
 * wider tile runs that vector's k loop alone (llvm_gemm.c emit_kloops), a fraction of a tile */
static double col_tiles(const HwTarget *hw, double cols, double nr) {
  double vl = hw->vector_bits >= 64 ? hw->vector_bits / 32 : 4, whole = floor(cols / nr);
  double tail = cols - whole * nr;
  return whole + (tail <= 0 ? 0 : nr > vl && tail <= vl ? vl / nr : 1);
}

void cg_cpu_gemm(const HwTarget *hw, const CgGemmShape *s, int threads, CgGemmRun *o) {
  memset(o, 0, sizeof *o);
  double M = (double)s->m, N = (double)s->n, K = (double)s->k, mr = s->mr, nr = s->nr;
  if (M <= 0 || N <= 0 || mr <= 0 || nr <= 0) return;
  double um = ceil_div(M, mr), un = ceil_div(N, nr);
  o->split_n = un >= um;
  double units = o->split_n ? un : um;
  o->threads = M * N * fmax(K, 1) < CG_GEMM_PAR_FLOPS / 2 ? 1 : (int)fmin(threads, units);
  if (o->threads < 1) o->threads = 1;
  double slice = ceil(units / o->threads); /* the busiest slice, in tiles of its side */
  double rows = o->split_n ? M : fmin(M, slice * mr), cols = o->split_n ? fmin(N, slice * nr) : N;
  o->tiles = ceil_div(rows, mr) * col_tiles(hw, cols, nr);
  double kb = s->kc > 0 ? ceil_div(K, s->kc) : 1;
  o->share = s->packed_b   ? ceil_div(rows, mr)
             : s->packed_a ? ceil_div(fmin(cols, s->nc > 0 ? s->nc : cols), nr)
                           : 1;
  o->pack_b = s->packed_b ? 0 : ceil_div(cols, nr) * nr * K;
  o->pack_a = s->packed_a ? 0 : ceil_div(rows, mr) * mr * K * (s->nc > 0 ? ceil_div(cols, s->nc) : 1);
  double peak1 = peak_of(hw, DT_F32, true, o->threads) / o->threads;
  double ueff = hw->gemm_ukr_eff > 0 ? hw->gemm_ukr_eff : s->lat_eff > 0 ? s->lat_eff : 1;
  /* each KC block loads and stores the accumulators: two vector memory operations per
   * accumulator beside kc FMA steps */
  o->t_fma = K > 0 ? 2 * mr * nr * K * o->tiles / (ueff * peak1) * (K + 2 * kb) / K : 0;
  CgPack how_b = s->b_strided ? CG_PACK_GATHER : s->b_transposed ? CG_PACK_TRANSPOSED : CG_PACK_ADJACENT;
  o->t_pack = 4 * o->pack_a / cg_pack_rate(hw, s->a_strided ? CG_PACK_GATHER : CG_PACK_ADJACENT) +
              4 * o->pack_b / cg_pack_rate(hw, how_b);
}

/* whether operand `in` of node `node` lives in the params region (a weight) or is folded */
static bool operand_const(const CgPlan *p, int node, int in) {
  const CgVal *v = &p->v[p->v[p->g->nodes[node].in[in]].root];
  return v->region == RT_REGION_PARAMS || p->g->nodes[p->v[p->g->nodes[node].in[in]].root].op == OP_CONST;
}

/* a matmul on the CPU's packed GEMM: its calls (the batch folded into M when B has no
 * batch dims, as llvm_ops.c lower_matmul), each cg_cpu_gemm; t_fma and t_pack of all calls */
static void matmul_run(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                       CgGemmRun *run, double *ncalls) {
  const TileDecision *t = k->tile;
  const TileGemm *g = &t->gemm;
  bool fold = g->batch > 1 && g->b_shared && !g->trans_a;
  double calls = fold ? 1 : (double)g->batch;
  double wave = t->wave_eff > 0 ? t->wave_eff : 1, tile = t->tile_eff > 0 ? t->tile_eff : 1;
  CgGemmShape s = {.m = fold ? g->m * g->batch : g->m, .n = g->n, .k = g->k,
                   .mr = t->mm_t ? t->mr : t->nr > 32 ? 32 : t->nr, .nr = t->mm_t ? t->nr : t->mr,
                   .kc = t->kc, .nc = t->nc, .a_strided = !g->trans_a, .b_transposed = g->trans_b,
                   .packed_a = k->prepacked && operand_const(p, k->node, 0),
                   .packed_b = k->prepacked && operand_const(p, k->node, 1),
                   .lat_eff = t->eff / wave / tile};
  cg_cpu_gemm(hw, &s, threads, run);
  *ncalls = calls;
  run->t_fma *= calls, run->t_pack *= calls, run->pack_a *= calls, run->pack_b *= calls;
}

/* a depthwise convolution or gradient, or a filter gradient of few output channels
 * (CgConv.OB), the backend computes directly: no GEMM, no packing */
static bool depthwise_direct(const CgPlan *p, const CgKernel *k) {
  if (k->kind != CGK_CONV) return false;
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  return cv.depthwise || cv.OB > 0;
}

/* a forward convolution of few input channels computed directly (CgConv.few) */
static bool conv_few(const CgPlan *p, const CgKernel *k) {
  if (k->kind != CGK_CONV) return false;
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  return cv.few;
}

/* cycles of one tap of one output vector of the direct depthwise convolution row by row
 * (llvm_ops.c dw_body: the tap's row and lane bounds, a masked load and an FMA), at the
 * target's clock; measured with `bench --profile` on mobilenet_v2's depthwise layers (Zen 4,
 * 56- and 112-wide rows: 2.1 to 2.4), one of the figures of this model taken from a run.
 * Only rows too long for the blocked kernel's buffer (cg_dw_block) still run this way. */
#define CG_DW_TAP_CYCLES 2.25
/* ... and per lane of a tap where a stride other than 1 gathers the lanes (a masked gather):
 * mobilenet_v2's stride-2 depthwise layers measured 0.85 to 1.2 cycles a lane */
#define CG_DW_GATHER_LANE_CYCLES 0.9
/* ... and per tap and vector at stride 2, which loads two vectors and keeps their even lanes
 * (llvm_ops.c dw_tap_s2): mobilenet_v2's stride-2 layers measured 2.0 to 4.5 cycles (the
 * 56- and 28-wide rows 4.25 and 4.5), one of the figures taken from a run */
#define CG_DW_S2_TAP_CYCLES 4.0
/* cycles of one tap of one output vector of the blocked depthwise forward (llvm_ops.c
 * dwb_body: blocks of CG_DW_ROWS output rows sharing each loaded input vector) at stride 1,
 * the image read directly (unmasked inside the rows): mobilenet_v2 N=1 S=224's ten stride-1
 * layers, 7- to 112-wide rows, measured 0.86 to 1.1 (Zen 4 at 2.6 GHz, one thread) */
#define CG_DWB_TAP_CYCLES 0.95
/* ... and at stride 2 (the rows' buffer split into even and odd columns, or, for rows of one
 * vector, two loads keeping the even lanes): its four stride-2 layers 1.75 to 2.4 */
#define CG_DWB_S2_TAP_CYCLES 2.2
/* ... and of the flat planes (CgDwBlock.flat: every tap a masked load at a constant offset
 * of the plane), with cycles a plane beside (its filter's broadcasts, its channel's
 * constants): fitted to 960 planes of 7x7 and of 4x4, batch 8, one thread (with the folded
 * batchnorm 117 us; in mobilenet_v2 N=8 S=112's training forward 47 us), 2.6 GHz */
#define CG_DW_FLAT_TAP_CYCLES 0.88
#define CG_DW_FLAT_PLANE_CYCLES 8.0

/* cycles per output vector of each member of a fused elementwise group and each tensor it
 * reads (CgKernel.nepi), on the registers of the direct depthwise and few-channel forwards
 * before their store (llvm_ops.c dw_store): mobilenet_v2's relu6 (four members) after its
 * depthwise layers at batch 8, 7- to 56-wide rows, measured 0.5 to 0.7 (Zen 4, one thread,
 * each layer alone, fused against unfused) */
#define CG_EPI_VEC_CYCLES 0.7

static double epi_vec_cycles(const CgPlan *p, const CgKernel *k) {
  if (!k->nepi) return 0;
  CgEpiOperand ops[CG_EPI_MAX_IN];
  return (k->nepi + cg_epi_operands(p, k, ops)) * CG_EPI_VEC_CYCLES;
}

/* cycles of one tap of one vector of the direct depthwise filter gradient (llvm_ops.c
 * dwdf_body: dy's vector times the tap's input vector into the tap's accumulator) at stride
 * 1 and at stride 2 (the forward's two loads keeping the even lanes); other strides gather
 * as the forward does. Fitted to `bench --train --profile` of mobilenet_v2 N=8 S=112 (Zen 4
 * at 2.6 GHz: 1.7 on its 4- and 7-wide stride-1 layers, 3.9 on a 7-wide stride-2 one) */
#define CG_DWF_TAP_CYCLES 1.7
#define CG_DWF_S2_TAP_CYCLES 3.9

/* the depthwise filter gradient: for every channel, image and output row, vectors of OW
 * times KH·KW taps; channels spread over min(threads, C, taps·elements / 65536 + 1) tasks.
 * Its input x is the forward's activation, written long before the backward pass reads it,
 * so x and dy stream from DRAM: the layers of 14- to 56-wide images measured at 0.9–1.0 of
 * their bytes at the one-thread DRAM bandwidth, above the taps' time */
static void dw_dfilter_cost(const CgConv *cv, const HwTarget *hw, int threads, CgKernelCost *c) {
  double vl = hw->vector_bits >= 64 ? hw->vector_bits / 32.0 : 8;
  double taps = (double)cv->KH * (double)cv->KW;
  double tapvec = (double)cv->N * (double)cv->C * (double)cv->OH * ceil((double)cv->OW / vl) * taps;
  double per = cv->sw == 1 ? CG_DWF_TAP_CYCLES : cv->sw == 2 ? CG_DWF_S2_TAP_CYCLES
                                                              : vl * CG_DW_GATHER_LANE_CYCLES;
  double elems = (double)cv->N * (double)cv->C * (double)cv->OH * (double)cv->OW * taps;
  c->threads = (int)fmax(1, fmin(fmin(threads, (double)cv->C), floor(elems / 65536) + 1));
  c->t_compute = tapvec * per / c->threads / ((hw->ghz > 0 ? hw->ghz : 3) * 1e9);
  c->eff = c->t_compute > 0 ? c->flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads)) : 0;
  double bytes = 4.0 * (double)cv->N * (double)cv->C *
                 ((double)cv->H * (double)cv->W + (double)cv->OH * (double)cv->OW);
  double bw = cg_level_bw(hw, CG_LEVEL_DRAM, c->threads);
  if (bw > 0) c->t_memory = fmax(c->t_memory, bytes / bw);
  c->overhead = c->threads > 1 ? hw->overhead_s : CG_CALL_S;
}

/* cycles of one tap of one vector of the direct depthwise data gradient (llvm_ops.c
 * dwdx_phase: the lanes' bounds, a masked load of dy's row and an FMA), of a vector of dx
 * stored (at stride 2 also the two phases' interleave) and of a dx row (its taps' rows and
 * filter); fitted to `bench --train --profile` of mobilenet_v2 N=8 S=112 (Zen 4 at 2.6 GHz,
 * 16 layers of 4- to 28-wide rows at strides 1 and 2: within 0.82-1.06 of the fit) */
#define CG_DWDX_TAP_CYCLES 1.4
#define CG_DWDX_VEC_CYCLES 0.55
#define CG_DWDX_ROW_CYCLES 4.4

/* the direct depthwise data gradient: each dx row of phase q = ih mod sh takes the taps kh
 * the stride divides, each vector of column phase p the taps kw (llvm_ops.c dwdx_row);
 * dx rows of N·C·H spread over min(threads, taps·elements / 65536 + 1) tasks */
static void dw_dx_cost(const CgConv *cv, const HwTarget *hw, int threads, CgKernelCost *c) {
  double vl = hw->vector_bits >= 64 ? hw->vector_bits / 32.0 : 8;
  double vecs = ceil(ceil((double)cv->W / (double)cv->sw) / vl), tapvec = 0, stores = 0;
  for (int64_t q = 0; q < cv->sh; q++) {
    double rows = (double)((cv->H - q + cv->sh - 1) / cv->sh), taps = 0;
    for (int64_t p = 0; p < cv->sw; p++)
      for (int64_t kh = 0; kh < cv->KH; kh++)
        for (int64_t kw = 0; kw < cv->KW; kw++)
          taps += (q + cv->ph - kh * cv->dh) % cv->sh == 0 && (p + cv->pw - kw * cv->dw) % cv->sw == 0;
    tapvec += rows * vecs * taps;
    stores += rows * vecs * (double)cv->sw;
  }
  double planes = (double)cv->N * (double)cv->C, rows = planes * (double)cv->H;
  double tasks = fmin(rows, floor(rows * (double)cv->W * (double)(cv->KH * cv->KW) / 65536) + 1);
  c->threads = (int)fmax(1, fmin(threads, tasks));
  double cyc = planes * (tapvec * CG_DWDX_TAP_CYCLES + stores * CG_DWDX_VEC_CYCLES +
                        (double)cv->H * CG_DWDX_ROW_CYCLES) / c->threads;
  c->t_compute = cyc / ((hw->ghz > 0 ? hw->ghz : 3) * 1e9);
  c->eff = c->t_compute > 0 ? c->flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads)) : 0;
  c->overhead = c->threads > 1 ? hw->overhead_s : CG_CALL_S;
}

/* cycles of one tap of one output vector of the direct filter gradient per output channel
 * (llvm_ops.c wgrad_body: OB FMAs on one masked load of the tap's input, dy's OB vectors
 * loaded once a row), at the target's clock: lenet's two layers (N=64, 1 thread, Zen 4 at
 * the host figure's 2.6 GHz) measured 0.81 (28-wide rows, 3 channels a pass) and 0.74
 * (10-wide rows, 4 a pass); passes/tiles.c TILES_WGRAD_TAP_CYCLES */
#define CG_WGRAD_TAP_CYCLES 0.78

/* cycles of one vector step of the pointwise direct filter gradient per accumulator
 * (CgConv.CB; llvm_ops.c pw_wgrad_item: OB + CB loads for OB·CB FMAs, the rows streamed
 * again every pass), measured on MobileNetV2's (N=8, 112², Zen 4, one thread); passes/tiles.c
 * TILES_WGRAD_PW_CYCLES */
#define CG_WGRAD_PW_CYCLES 1.0

/* the direct filter gradient: G·(Og/OB)·Cg passes, each every image's output rows in
 * vectors of OW times KH·KW taps times OB output channels, over min(threads, passes,
 * elements·taps / 65536 + 1) tasks */
static void wgrad_cost(const CgConv *cv, const HwTarget *hw, int threads, CgKernelCost *c) {
  double vl = hw->vector_bits >= 64 ? hw->vector_bits / 32.0 : 8;
  double taps = (double)cv->KH * (double)cv->KW, pairs = (double)cv->O * (double)cv->Cg;
  double tapvec = (double)cv->N * (double)cv->OH * ceil((double)cv->OW / vl) * taps * pairs;
  double items = pairs / (double)cv->OB, cyc = CG_WGRAD_TAP_CYCLES;
  if (cv->CB > 0) { /* pointwise: the images' positions in vectors, OB x CB a pass */
    tapvec = (double)cv->N * ceil((double)cv->P / vl) * pairs;
    items /= (double)cv->CB, cyc = CG_WGRAD_PW_CYCLES;
  }
  double elems = (double)cv->N * (double)cv->OH * (double)cv->OW * taps * pairs;
  c->threads = (int)fmax(1, fmin(fmin(threads, items), floor(elems / 65536) + 1));
  c->t_compute = tapvec * cyc / c->threads / ((hw->ghz > 0 ? hw->ghz : 3) * 1e9);
  c->eff = c->t_compute > 0 ? c->flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads)) : 0;
  c->overhead = c->threads > 1 ? hw->overhead_s : CG_CALL_S;
}

/* a depthwise kernel; the forward: output rows of N·C·OH in vectors of OW (planes of short
 * rows: flat vectors of OH·OW, CgDwBlock.flat), KH·KW taps a vector, then the fused group
 * (epi_vec_cycles); at strides 1 and 2 in blocks of output rows (cg_dw_block), blocks spread over
 * min(threads, blocks, taps·elements / 65536 + 1) tasks; otherwise row by row (a masked load
 * at stride 1, else a gather), rows over min(threads, rows, taps·elements / 65536 + 1) */
static void depthwise_cost(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                           CgKernelCost *c) {
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  if (cv.OB > 0) {
    wgrad_cost(&cv, hw, threads, c);
    return;
  }
  if (p->g->nodes[k->node].op == OP_CONV2D_BWD_FILTER) {
    dw_dfilter_cost(&cv, hw, threads, c);
    return;
  }
  if (p->g->nodes[k->node].op == OP_CONV2D_BWD_DATA) {
    dw_dx_cost(&cv, hw, threads, c);
    return;
  }
  double vl = hw->vector_bits >= 64 ? hw->vector_bits / 32.0 : 8; /* the backend's f32 lanes */
  double rows = (double)cv.N * (double)cv.C * (double)cv.OH, taps = (double)cv.KH * (double)cv.KW;
  CgDwBlock b;
  bool blocked = cg_dw_block(&cv, (int)vl, &b);
  bool flat = blocked && b.flat > 0;
  double planes = (double)cv.N * (double)cv.C;
  double units = flat ? planes : blocked ? planes * (double)b.nb : rows;
  double tasks = fmin(units, floor(rows * (double)cv.OW * taps / 65536) + 1);
  c->threads = (int)fmax(1, fmin(threads, tasks));
  double vecs_all = flat ? planes * (double)b.flat : rows * ceil((double)cv.OW / vl);
  double tapvec = vecs_all * taps / c->threads;
  double cyc = flat         ? CG_DW_FLAT_TAP_CYCLES
               : blocked    ? (cv.sw == 1 ? CG_DWB_TAP_CYCLES : CG_DWB_S2_TAP_CYCLES)
               : cv.sw == 1 ? CG_DW_TAP_CYCLES
               : cv.sw == 2 ? CG_DW_S2_TAP_CYCLES
                            : vl * CG_DW_GATHER_LANE_CYCLES;
  double vecs = tapvec / taps; /* a thread's output vectors, each through the group */
  double per_plane = flat ? planes / c->threads * CG_DW_FLAT_PLANE_CYCLES : 0;
  c->t_compute = (tapvec * cyc + per_plane + vecs * epi_vec_cycles(p, k)) / ((hw->ghz > 0 ? hw->ghz : 3) * 1e9);
  c->eff = c->t_compute > 0 ? c->flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads)) : 0;
  c->overhead = c->threads > 1 ? hw->overhead_s : CG_CALL_S;
}

/* the direct convolution of few input channels (llvm_ops.c lower_conv_few): every output
 * row's vectors of OW (the last partly masked) times O channels, each K FMAs at the FMA peak,
 * the tiles' TILES_CONV_FEW_VEC_S and the fused group (epi_vec_cycles), rows spread over min(threads, rows, O·K·elements /
 * (8·65536) + 1) tasks */
static void conv_few_cost(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                          CgKernelCost *c) {
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  double vl = hw->vector_bits >= 64 ? hw->vector_bits / 32.0 : 8;
  double rows = (double)cv.N * (double)cv.OH, ok = (double)cv.O * (double)cv.K;
  double tasks = fmin(rows, floor(rows * (double)cv.OW * ok / 8 / 65536) + 1);
  c->threads = (int)fmax(1, fmin(threads, tasks));
  double vecs = rows * ceil((double)cv.OW / vl) * (double)cv.O;
  double epi = vecs * epi_vec_cycles(p, k) / ((hw->ghz > 0 ? hw->ghz : 3) * 1e9);
  c->t_compute = (2 * vecs * vl * (double)cv.K / peak_of(hw, DT_F32, true, 1) + vecs * TILES_CONV_FEW_VEC_S + epi) /
                 c->threads;
  c->eff = c->t_compute > 0 ? c->flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads)) : 0;
  c->scratch = 0, c->t_scratch = 0;
  c->overhead = c->threads > 1 ? hw->overhead_s : CG_CALL_S;
}

/* seconds per output element of a transposed convolution's write-back (llvm_ops.c
 * conv_t_body: vl x vl blocks of yᵀ transposed in registers, the epilogue, vector stores to
 * y), one thread; measured on a 128-channel 28x28 layer (Zen 4: 0.18 ns), TILES_CONV_T_WB_S */
#define CG_CONV_T_WB_S 0.2e-9

/* the write-back of a transposed convolution: output channels over min(threads, tasks) */
static double conv_t_writeback(const CgConv *cv, int threads) {
  double el = (double)cv->N * (double)cv->O * (double)cv->P;
  double tasks = fmin(floor((cv->batch ? (double)cv->N : 1) * (double)cv->P * (double)cv->Og / 32768) + 1,
                      (double)cv->Og);
  return el * CG_CONV_T_WB_S / fmax(1, fmin(threads, tasks));
}

/* a convolution on the packed GEMM (llvm_ops.c lower_conv), per image and group or, for a
 * batch of small images, per group: forward C[Og, P] = W[Og, K] col[K, P] (col gathered from
 * the image while packing, or unfolded into scratch before); data gradient
 * dcol[K, P] = Wᵀ dy[Og, P]; filter gradient dW[Og, K] += dy[Og, P] colᵀ. False for a
 * depthwise convolution, which runs direct. */
static bool conv_run(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                     CgGemmRun *run, double *ncalls) {
  const TileDecision *t = k->tile;
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  int op = p->g->nodes[k->node].op;
  if (depthwise_direct(p, k) || cv.few) return false;
  double wave = t->wave_eff > 0 ? t->wave_eff : 1, tile = t->tile_eff > 0 ? t->tile_eff : 1;
  bool batch = cv.batch, gather = !cv.col && (!cv.direct || cv.batch);
  int64_t np = batch ? cv.N * cv.P : cv.P;
  CgGemmShape s = {.mr = t->nr > 32 ? 32 : t->nr, .nr = t->mr, .kc = t->kc, .nc = t->mc,
                   .lat_eff = t->eff / wave / tile};
  /* the gathering pack loads a row of the image with one masked vector load where the
   * output row is the input row (stride 1, same width, one image: llvm_gemm.c pack_conv),
   * else it gathers element by element */
  bool rows = cv.sh == 1 && cv.sw == 1 && cv.OW == cv.W && !batch;
  if (cv.trans) /* yᵀ[np, Og] = colᵀ·wᵀ: the tile as decided (conv_t), the filter as B */
    s = (CgGemmShape){.m = np, .n = cv.Og, .k = cv.K, .mr = t->mr, .nr = t->nr, .kc = t->kc,
                      .nc = t->nc, .lat_eff = s.lat_eff, .a_strided = gather && !rows,
                      .b_transposed = true, .packed_b = k->prepacked};
  else if (op == OP_CONV2D)
    s.m = cv.Og, s.n = np, s.k = cv.K, s.a_strided = true, s.b_strided = gather && !rows,
    s.packed_a = k->prepacked, s.packed_b = t->direct_b; /* the image read in place */
  else if (op == OP_CONV2D_BWD_DATA)
    s.m = cv.K, s.n = np, s.k = cv.Og, s.packed_a = k->prepacked;
  else
    s.m = cv.Og, s.n = cv.K, s.k = np, s.a_strided = true, s.b_strided = true;
  double calls = (double)cv.G * (batch ? 1 : (double)cv.N);
  cg_cpu_gemm(hw, &s, threads, run);
  *ncalls = calls;
  run->t_fma *= calls, run->t_pack *= calls, run->pack_a *= calls, run->pack_b *= calls;
  if (cv.trans) run->t_pack += conv_t_writeback(&cv, threads);
  return true;
}

/* a matmul or convolution on the packed GEMM: the busiest thread's micro-tiles and
 * packing in every call */
static void cpu_gemm_cost(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                          CgKernelCost *c) {
  CgGemmRun run;
  double calls;
  if (k->kind == CGK_GEMM) matmul_run(p, k, hw, threads, &run, &calls);
  else if (!conv_run(p, k, hw, threads, &run, &calls)) return;
  if (run.t_fma <= 0) return;
  c->threads = run.threads;
  c->t_compute = run.t_fma;
  c->eff = c->flops / (run.t_fma * peak_of(hw, DT_F32, true, run.threads));
  c->scratch = conv_scratch(p, k) + 8 * (run.pack_a + run.pack_b); /* read and written */
  c->t_scratch = run.t_pack + (c->scratch - 8 * (run.pack_a + run.pack_b)) /
                                  cg_level_bw(hw, c->level > CG_LEVEL_L2 ? c->level : CG_LEVEL_L2, c->threads);
  c->overhead = calls * ((run.threads > 1 ? hw->overhead_s : CG_CALL_S) + CG_SCRATCH_S);
  /* a packed-once operand that streams from memory is pulled in by the first of the
   * micro-tiles that share each of its panels; the others' FMAs run from L2 while the
   * memory idles: max(t_fma / share, t_mem) + t_fma (share - 1) / share in place of
   * max(t_fma, t_mem). resnet18 N=4 S=64's layer4 (its 9.4 MB filters from DRAM, 16
   * positions: 2 tiles of 8 share a panel) measured 1.36 (1 thread) and 1.44 (2) of the
   * max; of this 0.96 and 1.01 (Zen 4) */
  if (run.share > 1) c->t_scratch += fmax(0, fmin(c->t_memory, run.t_fma) - run.t_fma / run.share);
}

/* a pointwise convolution with the depthwise convolution that computes its image fused into
 * it (CgKernel.dw): the GEMM as priced above (its B read in place, now from a thread's strip
 * in L2) plus the depthwise's taps and group at their direct rates (depthwise_cost), on the
 * same threads; its bytes are the depthwise's reads and the projection's writes and reads
 * (kernel_bytes: the image between them is never stored); a call of the GEMM a strip */
static void dw_fused_cost(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                          CgKernelCost *c) {
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  CgKernelCost d = {0};
  double transc;
  kernel_flops(p, k->dw, &d.flops, &transc);
  depthwise_cost(p, k->dw, hw, threads, &d);
  /* a task's depthwise strip, then its GEMM: the two phases one after the other, the
   * depthwise's waiting on its input where that comes from memory */
  CgConv cw;
  cg_conv_geom(p, k->dw->node, &cw);
  int x = p->v[p->g->nodes[k->dw->node].in[0]].root;
  double in = 4.0 * (double)cw.N * (double)cw.C * (double)cw.H * (double)cw.W;
  int lvl = stored_past_caches(p, x) ? CG_LEVEL_DRAM : c->level;
  double t_in = in / cg_level_bw(hw, lvl, c->threads);
  c->t_compute += fmax(d.t_compute * (double)d.threads / fmax(1, c->threads), t_in);
  c->eff = c->t_compute > 0 ? c->flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads)) : 0;
  double strips = (double)cv.N * ceil((double)cv.OH / fmax(1, k->dw_rows));
  c->overhead = (c->threads > 1 ? hw->overhead_s : CG_CALL_S) + strips * CG_SCRATCH_S / c->threads;
}

/* a Winograd kernel that does not pack its filter once (CgKernel.wino_step: a training
 * step's) transforms it every call straight into the GEMM's panels (rt_k_wino_filter_pack:
 * panels of rows over the pool from 4096 channel pairs on; tiles_wino_filter_time) */
static void wino_step_cost(const CgConv *cv, const HwTarget *hw, int threads, CgKernelCost *c) {
  double pairs = (double)cv->O * (double)cv->C;
  double panels = ceil((double)cv->O / 32);
  int ft = pairs < 4096 ? 1 : (int)fmin(threads, panels);
  c->t_scratch += tiles_wino_filter_time(hw, cv->O, cv->C) / ft;
  c->scratch += 4.0 * 36 * pairs;
  c->overhead += ft > 1 ? hw->overhead_s : CG_CALL_S;
}

/* the shape of a Winograd kernel's GEMMs [m x k]·[k x n] with the blocking of its decision t */
static CgGemmShape wino_gemm_shape(const TileDecision *t, int64_t m, int64_t n, int64_t k) {
  double wave = t->wave_eff > 0 ? t->wave_eff : 1, tile = t->tile_eff > 0 ? t->tile_eff : 1;
  return (CgGemmShape){.m = m, .n = n, .k = k, .mr = t->nr > 32 ? 32 : t->nr, .nr = t->mr,
                       .kc = t->kc, .nc = t->mc, .lat_eff = t->eff / wave / tile};
}

/* a Winograd F(4,3) convolution (CgKernel.wino, llvm_ops.c lower_conv_wino), in rounds of
 * NB images: 36 GEMMs [O x C]·[C x T] on the packed GEMM with the transformed filter packed
 * once (streamed each round from where its 36·rpad·C floats fit), and the runtime's
 * transforms (rt_winograd.c: their FLOPs in 256-bit vectors and the bytes of x, V, M, y
 * and a fused group's residual, tiles_wino_xform_time) spread over the planes. FLOPs stay the convolution's count; the
 * efficiency is that of the GEMMs. */
static void wino_cost(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                      CgKernelCost *c) {
  const TileDecision *t = k->tile->wino;
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  CgGemmShape s = wino_gemm_shape(t, cv.O, cv.T, cv.C);
  s.packed_a = true;
  /* GEMMs below the GEMM's threshold for threads run one per task (llvm_ops.c): the busiest
   * thread runs ceil(36 / threads) of them whole */
  bool spread = 2.0 * (double)cv.O * (double)cv.T * (double)cv.C < CG_GEMM_PAR_FLOPS;
  CgGemmRun run;
  cg_cpu_gemm(hw, &s, spread ? 1 : threads, &run);
  if (run.t_fma <= 0) return;
  double rounds = (double)(cv.N / cv.NB), calls = 36 * rounds;
  double busiest = rounds * (spread ? ceil(36.0 / threads) : 36);
  double gemm_flops = calls * 2.0 * (double)cv.O * (double)cv.T * (double)cv.C;
  c->threads = spread ? (threads < 36 ? threads : 36) : run.threads;
  c->t_compute = busiest * run.t_fma;
  c->eff = gemm_flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads));
  double planes = (double)cv.NB * (double)(cv.C < cv.O ? cv.C : cv.O);
  int xt = (int)fmin(threads, planes);
  int64_t yb = 4 * cv.NB * cv.O * cv.OH * cv.OW; /* y, and a fused residual as much again */
  double xf = rounds * tiles_wino_xform_time(hw, cv.O, cv.C, cv.NB, cv.TH, cv.TW,
                                             4 * cv.NB * cv.C * cv.H * cv.W, k->nepi ? 2 * yb : yb);
  c->scratch = rounds * (2.0 * 36 * 4 * (double)cv.T * (double)(cv.C + cv.O) + 8 * 36 * run.pack_b);
  /* every round streams the transformed filter's panels once, beside the FMAs */
  double u = 36.0 * 4 * (double)k->packed_rpad * (double)cv.C;
  c->t_scratch = busiest * run.t_pack + xf / (xt > 0 ? xt : 1) +
                 rounds * u / cg_level_bw(hw, level_of(hw, u, c->threads), c->threads);
  double fork = spread ? rounds * (c->threads > 1 ? hw->overhead_s : 0) : 0;
  c->overhead = busiest * ((run.threads > 1 ? hw->overhead_s : CG_CALL_S) + CG_SCRATCH_S) + fork +
                2 * rounds * (xt > 1 ? hw->overhead_s : CG_CALL_S);
  if (k->wino_step) wino_step_cost(&cv, hw, threads, c);
}

/* a Winograd filter gradient (CgConv.wino_wgrad, llvm_ops.c lower_wgrad_wino), in rounds of
 * NB images: x's and dy's transforms over the planes (tiles_wino_wgrad_xform_time), then 36
 * GEMMs [O x T]·[T x C] one a task (the busiest thread runs ceil(36 / threads) of them whole
 * a round), both operands packed every call, B stored N x K, each call reading and writing
 * its sums M[O][C]; after the rounds the output transform Gᵀ·M·G over the output channels.
 * FLOPs stay the convolution's count; the efficiency is that of the GEMMs. */
static void wino_wgrad_cost(const CgPlan *p, const CgKernel *k, const HwTarget *hw, int threads,
                            CgKernelCost *c) {
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  CgGemmShape s = wino_gemm_shape(k->tile->wino, cv.O, cv.C, cv.T);
  s.a_strided = s.b_transposed = true;
  CgGemmRun run;
  cg_cpu_gemm(hw, &s, 1, &run);
  if (run.t_fma <= 0) return;
  double rounds = (double)(cv.N / cv.NB), busiest = rounds * ceil(36.0 / threads);
  double gemm_flops = rounds * 36 * 2.0 * (double)cv.O * (double)cv.T * (double)cv.C;
  double sums = 8.0 * (double)cv.O * (double)cv.C; /* one GEMM's sums read and written */
  c->threads = threads < 36 ? threads : 36;
  c->t_compute = busiest * run.t_fma;
  c->eff = gemm_flops / (c->t_compute * peak_of(hw, DT_F32, true, c->threads));
  double planes = (double)cv.NB * (double)(cv.C < cv.O ? cv.C : cv.O);
  int xt = (int)fmin(threads, planes), ot = cv.O * cv.C < 4096 ? 1 : (int)fmin(threads, cv.O);
  double xf = rounds * tiles_wino_wgrad_xform_time(hw, cv.O, cv.C, cv.NB, cv.TH, cv.TW,
                                                   4 * cv.NB * cv.C * cv.H * cv.W,
                                                   4 * cv.NB * cv.O * cv.OH * cv.OW);
  c->scratch = rounds * (2.0 * 36 * 4 * (double)cv.T * (double)(cv.C + cv.O) + 36 * sums);
  c->t_scratch = busiest * (run.t_pack + sums / cg_level_bw(hw, level_of(hw, 36 * sums / 2, 1), 1)) +
                 xf / (xt > 0 ? xt : 1) + tiles_wino_wgrad_out_time(hw, cv.O, cv.C) / (ot > 0 ? ot : 1);
  c->overhead = busiest * (CG_CALL_S + CG_SCRATCH_S) + rounds * (c->threads > 1 ? hw->overhead_s : 0) +
                (2 * rounds + 1) * (xt > 1 ? hw->overhead_s : CG_CALL_S);
}

/* the FLOPs an elementwise group's transcendentals cost beyond the counting rules: Phi
 * (GELU and its backward) CG_PHI_EXTRA each, square roots CG_SQRT_EXTRA, the other
 * polynomial ones CG_TRANSC_EXTRA */
static double ew_transc_extra(const CgPlan *p, const CgKernel *k, double transc) {
  double sq = 0, phi = 0;
  for (int m = 0; m < k->nmembers; m++) {
    OpKind op = p->g->nodes[k->members[m]].op;
    double n = (double)p->v[k->members[m]].numel;
    if (op == OP_SQRT) sq += n;
    if (op == OP_GELU || op == OP_GELU_BWD) phi += n;
  }
  return CG_TRANSC_EXTRA * fmax(0, transc - sq - phi) + CG_PHI_EXTRA * phi + CG_SQRT_EXTRA * sq;
}

/* ---- one kernel ------------------------------------------------------------------------- */

static void kernel_cost(const CgPlan *p, int ki, const HwTarget *hw, int threads,
                        double footprint, CgKernelCost *c) {
  const CgKernel *k = &p->k[ki];
  memset(c, 0, sizeof *c);
  cg_kernel_name(p, ki, c->name, sizeof c->name);
  double param_bytes, transc = 0;
  double nt = 0; /* bytes read from memory: stored there non-temporally */
  kernel_bytes(p, ki, c, &param_bytes, hw->kind == HW_CPU ? &nt : NULL);
  if (k->kind != CGK_COPY) kernel_flops(p, k, &c->flops, &transc);
  bool streamed = gemm_streamed(k, hw);
  bool gemm = (k->kind == CGK_GEMM || k->kind == CGK_CONV) && !streamed;
  c->threads = kernel_threads(p, k, threads, c->flops);
  if (streamed) c->threads = c->flops >= CG_NODE_GRAIN ? threads : 1; /* par_range */
  DType dt = p->g->nodes[k->kind == CGK_COPY ? p->v[k->copy_src].root : k->node].type.dt;
  double peak = peak_of(hw, dt, gemm, c->threads);
  /* GEMMs reach the tiles' efficiency of the FMA peak; other kernels issue adds and
   * multiplies separately, half the FMA rate; the runtime's kernels also at its vector width */
  double rt_vec = hw->vector_bits > 0 ? fmin(1.0, CG_RT_VECTOR_BITS / hw->vector_bits) : 1.0;
  c->eff = gemm ? gemm_eff(p, k, c->threads) : k->kind == CGK_NODE || streamed ? 0.5 * rt_vec : 0.5;
  double work = c->flops + (k->kind == CGK_EW ? ew_transc_extra(p, k, transc) : 0);
  c->t_compute = work > 0 && c->eff > 0 ? work / (c->eff * peak) : 0;
  double cyc = node_cycles(p, k, hw, c);
  if (cyc > 0)
    c->t_compute = fmax(c->t_compute, cyc / ((hw->ghz > 0 ? hw->ghz : 3) * 1e9 * c->threads));
  double act = c->rd + c->wr - param_bytes - nt;
  c->level = level_of(hw, c->rd + c->wr, c->threads);
  int plevel = level_of(hw, footprint > c->rd + c->wr ? footprint : c->rd + c->wr, c->threads);
  c->t_memory = act / cg_level_bw(hw, c->level, c->threads) +
                nt / cg_level_bw(hw, CG_LEVEL_DRAM, c->threads) +
                param_bytes / cg_level_bw(hw, plevel, c->threads);
  c->scratch = conv_scratch(p, k);
  bool packed = gemm && k->tile && !k->tile->gpu && !depthwise_direct(p, k) && !conv_few(p, k);
  if (packed) c->scratch += pack_bytes(p, k, k->tile);
  if (c->scratch > 0) /* packing reads its operands where they live, its panels stay in L2 */
    c->t_scratch = c->scratch / cg_level_bw(hw, c->level > CG_LEVEL_L2 ? c->level : CG_LEVEL_L2,
                                         c->threads);
  c->overhead = c->threads > 1 ? hw->overhead_s : CG_CALL_S;
  if (packed && hw->kind == HW_CPU) c->overhead += alloc_time(p, k);
  if (gemm && k->tile && !k->tile->gpu && hw->kind == HW_CPU) {
    if (k->wino && p->g->nodes[k->node].op == OP_CONV2D_BWD_FILTER) wino_wgrad_cost(p, k, hw, threads, c);
    else if (k->wino) wino_cost(p, k, hw, threads, c);
    else cpu_gemm_cost(p, k, hw, threads, c);
  }
  if (hw->kind == HW_CPU && k->dw && gemm && k->tile && !k->tile->gpu) dw_fused_cost(p, k, hw, threads, c);
  if (hw->kind == HW_CPU && depthwise_direct(p, k)) depthwise_cost(p, k, hw, threads, c);
  if (hw->kind == HW_CPU && conv_few(p, k)) conv_few_cost(p, k, hw, threads, c);
  /* a fused epilogue's transcendentals (a dense layer's GELU) beside the GEMM, on its
   * threads at the elementwise rate: char_lm's c_fc GEMMs measured 430 us against 173
   * modelled without them (Zen 4, one thread), 2.0 ns an element more */
  if (gemm && hw->kind == HW_CPU && transc > 0)
    c->t_compute += ew_transc_extra(p, k, transc) / (0.5 * peak_of(hw, dt, false, c->threads));
  c->compute_bound = c->t_compute >= c->t_memory;
  c->time = fmax(c->t_compute, c->t_memory) + c->t_scratch + c->overhead;
}

void cg_plan_cost(const CgPlan *p, const HwTarget *hw, int threads, double footprint,
                  CgPlanCost *out) {
  memset(out, 0, sizeof *out);
  int cores = hw->cores > 0 ? hw->cores : 1;
  out->threads = threads <= 0 || threads > cores ? cores : threads;
  out->nk = p->nk;
  out->k = xcalloc((size_t)(p->nk ? p->nk : 1), sizeof *out->k);
  for (int ki = 0; ki < p->nk; ki++) {
    CgKernelCost *c = &out->k[ki];
    kernel_cost(p, ki, hw, out->threads, footprint, c);
    out->flops += c->flops;
    out->bytes += c->rd + c->wr;
    out->scratch += c->scratch;
    out->time += c->time;
  }
}

void cg_plan_cost_free(CgPlanCost *c) {
  free(c->k);
  memset(c, 0, sizeof *c);
}

void cg_model_cost(const CgModelPlan *P, bool train, const HwTarget *hw, int threads,
                   CgPlanCost *out) {
  const CgPlan *p = train ? &P->pt : &P->pf;
  double footprint = (double)P->params_bytes + (double)P->io_bytes + (double)p->arena_bytes;
  cg_plan_cost(p, hw, threads, footprint, out);
}

void cg_kernel_traffic(const CgPlan *p, int ki, double *rd, double *wr, double *param_bytes) {
  CgKernelCost c = {0};
  kernel_bytes(p, ki, &c, param_bytes, NULL);
  *rd = c.rd, *wr = c.wr;
}

void cg_kernel_work(const CgPlan *p, int ki, double *flops, double *transc) {
  kernel_flops(p, &p->k[ki], flops, transc);
}
