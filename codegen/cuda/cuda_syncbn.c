/* cuda_syncbn.c — synchronized batchnorm on the CUDA backend (--sync-bn, docs/distributed.md).
 *
 * A sync_stats kernel of the plan (cg_plan_sync_stats: training batchnorm, its dx and dgamma,
 * the mean and var of its running statistics) becomes several launches, PREFIX_kI_s0,
 * PREFIX_kI_s1, ..., each one block per channel, which keep their per-channel sums in double
 * in the workspace (NncBufs.work) as runtime/rt_syncbn.c does on the CPU:
 *   st[0, C) sums of x, st[C] the count, st[C+1, 2C+1) sums of (x - mean)^2,
 *   st[2C+1, 3C+1) sums of dy, st[3C+1, 4C+1) sums of dy·xhat.
 * Between two of them the host that runs the table sums some of these doubles over the
 * processes: the table's sums (CudaPlanSum) say before which launch which doubles. A host
 * without a communicator (one process, the single-process entries) skips them, and the
 * launches then compute the process's own statistics. */
#include <stdlib.h>
#include <string.h>

#include "cuda_plan.h"

enum { SB_THREADS = 256, SB_MAX_BLOCKS = 65535 };

typedef struct SbEmit {
  FILE *o;
  const CgPlan *p;
  const CgKernel *k;
  const IrNode *n;
  const char *prefix;
  int ki, phase;
  CudaPlanTable *tab;
  int64_t N, C, S;
  bool oom;
} SbEmit;

/* the pointers a phase may read or write: x, dy, gamma, beta, out */
static void sb_ptrs(const SbEmit *e) {
  const IrNode *n = e->n;
  char b[96];
  bool fwd = n->op == OP_BATCHNORM, stat = n->op == OP_MEAN || n->op == OP_VAR;
  cuda_ptr_expr(b, sizeof b, e->p, n->in[fwd || stat ? 0 : 1], "const float");
  fprintf(e->o, "  const float *X = %s;\n", b);
  if (!fwd && !stat) {
    cuda_ptr_expr(b, sizeof b, e->p, n->in[0], "const float");
    fprintf(e->o, "  const float *DY = %s;\n", b);
  }
  if (fwd || n->op == OP_BATCHNORM_BWD) {
    cuda_ptr_expr(b, sizeof b, e->p, n->in[fwd ? 1 : 2], "const float");
    fprintf(e->o, "  const float *G = %s;\n", b);
  }
  if (fwd) {
    cuda_ptr_expr(b, sizeof b, e->p, n->in[2], "const float");
    fprintf(e->o, "  const float *B = %s;\n", b);
  }
  cuda_ptr_expr(b, sizeof b, e->p, e->k->node, "float");
  fprintf(e->o, "  float *Y = %s;\n", b);
}

/* the next phase's kernel, one block per channel, with body inside the channel loop */
static void sb_kernel(SbEmit *e, const char *what, const char *body) {
  char name[96], suffix[16];
  snprintf(suffix, sizeof suffix, "_s%d", e->phase++);
  if (!cuda_kernel_name(name, sizeof name, e->prefix, e->ki, suffix)) {
    e->oom = true;
    return;
  }
  fprintf(e->o, "/* %s: sync-bn %s of %s %%%d */\n", name, what, ir_op_name(e->n->op), e->k->node);
  fprintf(e->o, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncBufs b) {\n", SB_THREADS, name);
  fprintf(e->o, "  NNC_EXTERN_SMEM(nnc_smem);\n  double *red = (double *)nnc_smem, *st = (double *)b.work;\n");
  fprintf(e->o, "  const long long N = %lldLL, C = %lldLL, S = %lldLL;\n", (long long)e->N, (long long)e->C,
          (long long)e->S);
  fprintf(e->o, "  const double EPS = %.17g, CORR = %d.0;\n  (void)EPS, (void)CORR;\n", e->n->attr.value,
          e->n->attr.correction);
  sb_ptrs(e);
  fprintf(e->o, "  (void)red, (void)X, (void)Y, (void)N;\n  NNC_FOR_BLOCK(c, C) {\n%s  }\n}\n\n", body);
  unsigned th = 32;
  while (th < SB_THREADS && (int64_t)th < e->N * e->S) th *= 2;
  CudaLaunch l = {{(unsigned)(e->C > SB_MAX_BLOCKS ? SB_MAX_BLOCKS : e->C), 1, 1}, {th, 1, 1},
                  (size_t)th * sizeof(double)};
  e->oom |= cuda_plan_table_add(e->tab, name, &l, (CudaLaunchOf){e->ki, 0, false, 0, 0}) != 0;
}

/* before the next launch: st[from, from + n) summed over the processes */
static void sb_sum(SbEmit *e, int64_t from, int64_t n) {
  CudaPlanTable *t = e->tab;
  if (t->nsums == t->capsums) {
    int cap = t->capsums ? 2 * t->capsums : 8;
    CudaPlanSum *v = realloc(t->sums, (size_t)cap * sizeof *v);
    if (!v) {
      e->oom = true;
      return;
    }
    t->sums = v, t->capsums = cap;
  }
  t->sums[t->nsums++] = (CudaPlanSum){t->n, from * (int64_t)sizeof(double), n};
}

#define SB_LOOP "    for (long long j = threadIdx.x; j < N * S; j += blockDim.x) {\n" \
                "      long long i = ((j / S) * C + c) * S + j % S;\n"
#define SB_STATS "    double M = st[C], mean = st[c] / M, inv = 1.0 / sqrt(st[C + 1 + c] / M + EPS);\n"
#define SB_DY SB_STATS "    double sdy = 0, sdyx = 0;\n" SB_LOOP \
  "      sdy += DY[i];\n      sdyx += (double)DY[i] * ((double)X[i] - mean) * inv;\n    }\n" \
  "    sdy = nnc_block_dred(sdy, red, 0);\n    sdyx = nnc_block_dred(sdyx, red, 0);\n" \
  "    if (threadIdx.x == 0) { st[2 * C + 1 + c] = sdy; st[3 * C + 1 + c] = sdyx;"

/* the sums of x, then of (x - mean)^2, each summed over the processes */
static void sb_moments(SbEmit *e, bool squares) {
  sb_kernel(e, "sum of x",
            "    double s = 0;\n" SB_LOOP "      s += X[i];\n    }\n"
            "    s = nnc_block_dred(s, red, 0);\n"
            "    if (threadIdx.x == 0) { st[c] = s; if (c == 0) st[C] = (double)(N * S); }\n");
  sb_sum(e, 0, e->C + 1);
  if (!squares) return;
  sb_kernel(e, "sum of squares",
            "    double mean = st[c] / st[C], q = 0;\n" SB_LOOP
            "      double d = (double)X[i] - mean;\n      q += d * d;\n    }\n"
            "    q = nnc_block_dred(q, red, 0);\n    if (threadIdx.x == 0) st[C + 1 + c] = q;\n");
  sb_sum(e, e->C + 1, e->C);
}

static void sb_phases(SbEmit *e) {
  switch (e->n->op) {
  case OP_BATCHNORM:
    sb_moments(e, true);
    sb_kernel(e, "normalization", SB_STATS SB_LOOP
              "      Y[i] = (float)((double)G[c] * ((double)X[i] - mean) * inv + (double)B[c]);\n    }\n");
    return;
  case OP_MEAN:
    sb_moments(e, false);
    sb_kernel(e, "running mean", "    if (threadIdx.x == 0) Y[c] = (float)(st[c] / st[C]);\n");
    return;
  case OP_VAR:
    sb_moments(e, true);
    sb_kernel(e, "running variance", "    if (threadIdx.x == 0) Y[c] = (float)(st[C + 1 + c] / (st[C] - CORR));\n");
    return;
  case OP_BN_DGAMMA: /* dgamma: this process's own sum */
    sb_moments(e, true);
    sb_kernel(e, "sums of dy", SB_DY " Y[c] = (float)sdyx; }\n");
    return;
  default: /* BATCHNORM_BWD */
    sb_moments(e, true);
    sb_kernel(e, "sums of dy", SB_DY " }\n");
    sb_sum(e, 2 * e->C + 1, 2 * e->C);
    sb_kernel(e, "dx", SB_STATS
              "    double sdy = st[2 * C + 1 + c], sdyx = st[3 * C + 1 + c], gsc = (double)G[c] * inv / M;\n" SB_LOOP
              "      Y[i] = (float)(gsc * (M * DY[i] - sdy - ((double)X[i] - mean) * inv * sdyx));\n    }\n");
  }
}

int cuda_syncbn_emit(FILE *o, const CgPlan *p, const CgKernel *k, const char *prefix, int ki, CudaPlanTable *tab,
                     Diag *d) {
  const IrNode *n = &p->g->nodes[k->node];
  const CgVal *x = &p->v[n->op == OP_BATCHNORM || n->op == OP_MEAN || n->op == OP_VAR ? n->in[0] : n->in[1]];
  SbEmit e = {.o = o, .p = p, .k = k, .n = n, .prefix = prefix, .ki = ki, .tab = tab};
  e.N = x->rank > 0 ? x->shape[0] : 1;
  e.C = x->rank > 1 ? x->shape[1] : 1;
  e.S = e.N * e.C != 0 ? x->numel / (e.N * e.C) : 0;
  if (e.C <= 0 || e.N * e.S <= 0) return 0; /* nothing to compute */
  if (e.C > (INT64_MAX / 8 - 1) / 4) return diag_error(d, n->loc, "sync-bn: %lld channels", (long long)e.C), -1;
  sb_phases(&e);
  int64_t need = (4 * e.C + 1) * (int64_t)sizeof(double);
  if (need > tab->work_bytes) tab->work_bytes = need;
  if (e.oom) return diag_error(d, n->loc, "out of memory (or a kernel name too long)"), -1;
  return 0;
}
