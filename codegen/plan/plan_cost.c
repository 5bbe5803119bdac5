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
 * a run rather than from the hardware's. Used for max-pooling's backward, average pooling,
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
  snprintf(buf, n, "k%d %s %s", ki, cg_kernel_kind_name(k->kind), what);
}

/* ---- bytes ------------------------------------------------------------------------------ */

static void kernel_bytes(const CgPlan *p, int ki, CgKernelCost *c, double *param_bytes) {
  const CgKernel *k = &p->k[ki];
  *param_bytes = 0;
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

/* im2col writes the unfolded K x P matrix of every image and group and the GEMM reads it */
static double conv_scratch(const CgPlan *p, const CgKernel *k) {
  if (k->kind != CGK_CONV || !k->scratch_bytes) return 0;
  CgConv cv;
  cg_conv_geom(p, k->node, &cv);
  return 2.0 * (double)cv.N * (double)cv.G * (double)k->scratch_bytes;
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
    return 2.0 * es * (double)cv.N * (double)cv.G *
           ((double)cv.Og * (double)cv.K * nb + (double)cv.K * (double)cv.P);
  }
  double nb = t->nc > 0 ? ceil((double)g->n / t->nc) : 1;
  return 2.0 * es * (double)g->batch *
         ((double)g->k * (double)g->n + (double)g->m * (double)g->k * nb);
}

/* Every GEMM task packs into its pool thread's kept buffer (rt_pool_scratch, llvm_gemm.c):
 * taking and returning it costs a few atomics per call, and no pages are faulted in once
 * the buffer has grown to the program's largest GEMM. Calls: one per image and group for a
 * convolution, one per kernel otherwise. */
#define CG_SCRATCH_S 0.1e-6

static double alloc_time(const CgPlan *p, const CgKernel *k) {
  double calls = 1;
  if (k->kind == CGK_CONV && p->g->nodes[k->node].op == OP_CONV2D) {
    CgConv cv;
    cg_conv_geom(p, k->node, &cv);
    calls = (double)cv.N * (double)cv.G;
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
 * llvm_ops.c gemm_blocking); a convolution's GEMM there is the transpose of the view */
static double edge_eff(const CgPlan *p, const CgKernel *k, const TileDecision *t, bool matmul) {
  double m = (double)t->gemm.m, n = (double)t->gemm.n;
  if (!matmul && k->kind == CGK_CONV) { /* one GEMM per image: its m side is OH x OW */
    CgConv cv;
    cg_conv_geom(p, k->node, &cv);
    if (cv.N > 0 && p->g->nodes[k->node].op == OP_CONV2D) m /= (double)cv.N;
  }
  double rm = matmul ? t->nr : t->mr, rn = matmul ? t->mr : t->nr;
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

/* bandwidth of a level for `threads` threads: the probe's figures are for all cores; the
 * private caches and L3's ports scale with the cores used, one core can draw the DRAM's */
static double level_bw(const HwTarget *hw, int level, int threads) {
  int cores = hw->cores > 0 ? hw->cores : 1;
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
static double node_cycles(const CgPlan *p, const CgKernel *k, const HwTarget *hw,
                          const CgKernelCost *c) {
  if (k->kind != CGK_NODE || hw->kind != HW_CPU) return 0;
  const IrNode *n = &p->g->nodes[k->node];
  double elems = (double)p->v[k->out].numel, touched = (c->rd + c->wr) / 4;
  switch (n->op) {
  case OP_MAXPOOL: { /* flops = window elements visited; rows = planes x output rows */
    const CgVal *o = &p->v[k->out];
    double rows = o->rank >= 2 ? elems / (double)o->shape[o->rank - 1] : elems;
    return c->flops * CG_MAXPOOL_CYCLES +
           rows * n->attr.kernel[0] * n->attr.kernel[1] * CG_MAXPOOL_ROW_CYCLES;
  }
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_LOG_SOFTMAX_BWD:
    return elems * CG_EXPF_CYCLES;
  case OP_SOFTMAX_BWD: return 0;
  case OP_AVGPOOL: case OP_MAXPOOL_BWD: case OP_AVGPOOL_BWD: case OP_CROSS_ENTROPY: case OP_CE_BWD:
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

/* ---- one kernel ------------------------------------------------------------------------- */

static void kernel_cost(const CgPlan *p, int ki, const HwTarget *hw, int threads,
                        double footprint, CgKernelCost *c) {
  const CgKernel *k = &p->k[ki];
  memset(c, 0, sizeof *c);
  cg_kernel_name(p, ki, c->name, sizeof c->name);
  double param_bytes, transc = 0;
  kernel_bytes(p, ki, c, &param_bytes);
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
  double work = c->flops + CG_TRANSC_EXTRA * transc * (k->kind == CGK_EW);
  c->t_compute = work > 0 && c->eff > 0 ? work / (c->eff * peak) : 0;
  double cyc = node_cycles(p, k, hw, c);
  if (cyc > 0)
    c->t_compute = fmax(c->t_compute, cyc / ((hw->ghz > 0 ? hw->ghz : 3) * 1e9 * c->threads));
  double act = c->rd + c->wr - param_bytes;
  c->level = level_of(hw, c->rd + c->wr, c->threads);
  int plevel = level_of(hw, footprint > c->rd + c->wr ? footprint : c->rd + c->wr, c->threads);
  c->t_memory = act / level_bw(hw, c->level, c->threads) +
                param_bytes / level_bw(hw, plevel, c->threads);
  c->scratch = conv_scratch(p, k);
  if (gemm && k->tile && !k->tile->gpu) c->scratch += pack_bytes(p, k, k->tile); /* not streamed */
  if (c->scratch > 0) /* packing reads its operands where they live, its panels stay in L2 */
    c->t_scratch = c->scratch / level_bw(hw, c->level > CG_LEVEL_L2 ? c->level : CG_LEVEL_L2,
                                         c->threads);
  c->overhead = c->threads > 1 ? hw->overhead_s : CG_CALL_S;
  if (gemm && k->tile && !k->tile->gpu && hw->kind == HW_CPU) c->overhead += alloc_time(p, k);
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
  kernel_bytes(p, ki, &c, param_bytes);
  *rd = c.rd, *wr = c.wr;
}

void cg_kernel_work(const CgPlan *p, int ki, double *flops, double *transc) {
  kernel_flops(p, &p->k[ki], flops, transc);
}
