/* cuda_ew.c — elementwise groups and last-axis reductions as CUDA C (see cuda_gen.h).
 *
 * Elementwise: one straight-line device function per group, applied by a grid-stride loop,
 * float4 at a time when the pointers allow (128-bit loads and stores). Ops map to CUDA C
 * through one table; an op without an entry is an error. Reductions: one block per row;
 * every thread folds its strided elements in order, then a butterfly of warp shuffles and
 * the same over the per-warp results in shared memory. The order of every addition is fixed
 * by the thread count alone, so two runs give the same bits. */
#include <string.h>

#include "cuda_gen.h"

/* f32 CUDA C for each elementwise op; %0, %1 are its operands */
static const char *const ew_expr[OP_COUNT] = {
    [OP_NEG] = "-%0",
    [OP_EXP] = "expf(%0)",
    [OP_LOG] = "logf(%0)",
    [OP_SQRT] = "sqrtf(%0)",
    [OP_TANH] = "tanhf(%0)",
    [OP_SIGMOID] = "nnc_sigmoid(%0)",
    [OP_RELU] = "%0 > 0.0f || %0 != %0 ? %0 : 0.0f", /* NaN stays NaN, as in the interpreter */
    [OP_GELU] = "%0 * nnc_phi(%0)",
    [OP_SILU] = "%0 * nnc_sigmoid(%0)",
    [OP_ADD] = "%0 + %1",
    [OP_SUB] = "%0 - %1",
    [OP_MUL] = "%0 * %1",
    [OP_DIV] = "%0 / %1",
    [OP_RELU_BWD] = "%1 > 0.0f ? %0 : 0.0f",
    [OP_GELU_BWD] = "%0 * (nnc_phi(%1) + %1 * nnc_phi_pdf(%1))",
    [OP_SILU_BWD] = "%0 * nnc_sigmoid(%1) * (1.0f + %1 * (1.0f - nnc_sigmoid(%1)))",
    [OP_SIGMOID_BWD] = "%0 * %1 * (1.0f - %1)",
    [OP_TANH_BWD] = "%0 * (1.0f - %1 * %1)",
};

const char *cuda_ew_template(int op) { return op >= 0 && op < OP_COUNT ? ew_expr[op] : NULL; }

static void ew_operand(FILE *o, const CudaEw *e, int k) {
  if (k < e->ninputs) fprintf(o, "x%d", k);
  else fprintf(o, "t%d", k - e->ninputs);
}

/* one step: its template with the operands substituted */
static void ew_step(FILE *o, const CudaEw *e, int j) {
  const CudaEwStep *s = &e->steps[j];
  fprintf(o, "  float t%d = (", j);
  for (const char *c = ew_expr[s->op]; *c; c++) {
    if (c[0] == '%' && (c[1] == '0' || c[1] == '1')) ew_operand(o, e, *++c == '0' ? s->a : s->b);
    else fputc(*c, o);
  }
  fprintf(o, ");\n");
}

static int ew_check(const CudaEw *e, char *err, size_t n) {
  if (e->ninputs < 1 || e->ninputs > CUDA_EW_MAX_INPUTS || e->nsteps < 1)
    return cuda_errf(err, n, "%s: %d inputs, %d steps", e->name, e->ninputs, e->nsteps);
  if (e->threads < 32 || e->threads > 1024 || e->threads % 32)
    return cuda_errf(err, n, "%s: %d threads per block", e->name, e->threads);
  for (int j = 0; j < e->nsteps; j++) {
    const CudaEwStep *s = &e->steps[j];
    if (s->op < 0 || s->op >= OP_COUNT || !ew_expr[s->op])
      return cuda_errf(err, n, "%s: op '%s' has no CUDA form", e->name, s->op >= 0 && s->op < OP_COUNT ? ir_op_name(s->op) : "?");
    int arity = ir_ops[s->op].arity, lim = e->ninputs + j;
    if (s->a < 0 || s->a >= lim || (arity == 2 && (s->b < 0 || s->b >= lim)))
      return cuda_errf(err, n, "%s: step %d reads an operand not yet computed", e->name, j);
  }
  return 0;
}

/* lhs = NAME_f(pre0post, pre1post, ...) */
static void ew_apply(FILE *o, const CudaEw *e, const char *lhs, const char *pre, const char *post) {
  fprintf(o, "    %s = %s_f(", lhs, e->name);
  for (int k = 0; k < e->ninputs; k++) fprintf(o, "%s%s%d%s", k ? ", " : "", pre, k, post);
  fprintf(o, ");\n");
}

int cuda_ew_emit(FILE *o, const CudaEw *e, char *err, size_t errn) {
  if (ew_check(e, err, errn)) return -1;
  fprintf(o, "/* %s: elementwise, %d inputs, %s */\nNNC_DEV float %s_f(", e->name, e->ninputs,
          e->vec4 ? "float4" : "scalar", e->name);
  for (int k = 0; k < e->ninputs; k++) fprintf(o, "%sfloat x%d", k ? ", " : "", k);
  fprintf(o, ") {\n");
  for (int j = 0; j < e->nsteps; j++) ew_step(o, e, j);
  fprintf(o, "  return t%d;\n}\n\n", e->nsteps - 1);
  fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncEwArgs p) {\n", e->threads, e->name);
  fprintf(o, "  long tid = (long)blockIdx.x * %d + threadIdx.x, stride = (long)gridDim.x * %d, i0 = 0;\n",
          e->threads, e->threads);
  if (e->vec4) {
    fprintf(o, "  long nv = p.n / 4;\n  for (long v = tid; v < nv; v += stride) {\n");
    for (int k = 0; k < e->ninputs; k++) fprintf(o, "    float4 a%d = nnc_ld4(p.in[%d] + 4 * v);\n", k, k);
    fprintf(o, "    float4 r;\n");
    const char *lhs[] = {"r.x", "r.y", "r.z", "r.w"}, *post[] = {".x", ".y", ".z", ".w"};
    for (int c = 0; c < 4; c++) ew_apply(o, e, lhs[c], "a", post[c]);
    fprintf(o, "    nnc_st4(p.out + 4 * v, r);\n  }\n  i0 = nv * 4;\n");
  }
  fprintf(o, "  for (long i = i0 + tid; i < p.n; i += stride)\n");
  ew_apply(o, e, "p.out[i]", "p.in[", "][i]");
  fprintf(o, "}\n\n");
  return 0;
}

void cuda_ew_launch(const CudaEw *e, int64_t n, CudaLaunch *l) {
  int64_t work = e->vec4 ? n / 4 + n % 4 : n;
  memset(l, 0, sizeof *l);
  l->grid[0] = (unsigned)((work > 0 ? work : 1) + e->threads - 1) / (unsigned)e->threads;
  l->grid[1] = l->grid[2] = 1;
  l->block[0] = (unsigned)e->threads, l->block[1] = l->block[2] = 1;
}

/* ---- reductions -------------------------------------------------------------------------- */

/* the butterfly over a warp and over the block's warps, for + (sum) or max */
static void red_block_fn(FILE *o, const char *nm, const char *op, const char *fn, const char *ident, int threads) {
  fprintf(o, "NNC_DEV float %s_%s_warp(float v) {\n", nm, fn);
  fprintf(o, "  for (int m = 16; m > 0; m >>= 1) {\n    float w = nnc_shfl_xor(v, m);\n    v = %s;\n  }\n  return v;\n}\n", op);
  fprintf(o, "/* every thread returns the block's total, combined in the same order */\n");
  fprintf(o, "NNC_DEV float %s_%s(float v, float *red) {\n", nm, fn);
  fprintf(o, "  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n");
  fprintf(o, "  v = %s_%s_warp(v);\n  if (lane == 0) red[warp] = v;\n  nnc_syncthreads();\n", nm, fn);
  fprintf(o, "  v = %s_%s_warp(lane < %d ? red[lane] : %s);\n  nnc_syncthreads();\n  return v;\n}\n\n", nm, fn,
          threads / 32, ident);
}

/* each thread folds x[j] for j = tid, tid + threads, ... (float4 at a time with vec4) */
static void red_fold(FILE *o, const CudaReduce *r, const char *acc, const char *op, const char *elem) {
  if (r->vec4) {
    fprintf(o, "  for (long j = threadIdx.x; j < p.cols / 4; j += %d) {\n    float4 q = nnc_ld4(x + 4 * j);\n", r->threads);
    const char *comp[] = {"q.x", "q.y", "q.z", "q.w"};
    for (int c = 0; c < 4; c++) {
      fprintf(o, "    { float w = ");
      fprintf(o, elem, comp[c]);
      fprintf(o, "; %s = %s; }\n", acc, op);
    }
    fprintf(o, "  }\n");
    return;
  }
  fprintf(o, "  for (long j = threadIdx.x; j < p.cols; j += %d) {\n    float w = ", r->threads);
  fprintf(o, elem, "x[j]");
  fprintf(o, ";\n    %s = %s;\n  }\n", acc, op);
}

int cuda_reduce_emit(FILE *o, const CudaReduce *r, char *err, size_t errn) {
  if (r->op != OP_SUM && r->op != OP_MEAN && r->op != OP_MAX && r->op != OP_SOFTMAX)
    return cuda_errf(err, errn, "%s: op '%s' is not a last-axis reduction", r->name, ir_op_name(r->op));
  if (r->threads < 32 || r->threads > 1024 || r->threads % 32)
    return cuda_errf(err, errn, "%s: %d threads per block", r->name, r->threads);
  bool mx = r->op == OP_MAX || r->op == OP_SOFTMAX, sum = r->op != OP_MAX;
  fprintf(o, "/* %s: %s over the last axis, %d threads per row%s */\n", r->name, ir_op_name(r->op), r->threads,
          r->vec4 ? ", float4" : "");
  if (mx) red_block_fn(o, r->name, "fmaxf(v, w)", "max", "nnc_neg_inf()", r->threads);
  if (sum) red_block_fn(o, r->name, "v + w", "sum", "0.0f", r->threads);
  fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncReduceArgs p) {\n", r->threads, r->name);
  fprintf(o, "  NNC_EXTERN_SMEM(nnc_smem);\n  float *red = (float *)nnc_smem;\n");
  fprintf(o, "  const float *x = p.x + (long)blockIdx.x * p.cols;\n");
  if (mx) {
    fprintf(o, "  float m = nnc_neg_inf();\n");
    red_fold(o, r, "m", "fmaxf(m, w)", "%s");
    fprintf(o, "  m = %s_max(m, red);\n", r->name);
  }
  if (sum) {
    fprintf(o, "  float s = 0.0f;\n");
    red_fold(o, r, "s", "s + w", r->op == OP_SOFTMAX ? "expf(%s - m)" : "%s");
    fprintf(o, "  s = %s_sum(s, red);\n", r->name);
  }
  if (r->op == OP_SOFTMAX)
    fprintf(o, "  float *y = p.out + (long)blockIdx.x * p.cols;\n"
               "  for (long j = threadIdx.x; j < p.cols; j += %d) y[j] = expf(x[j] - m) / s;\n", r->threads);
  else
    fprintf(o, "  if (threadIdx.x == 0) p.out[blockIdx.x] = %s;\n",
            r->op == OP_MAX ? "m" : r->op == OP_MEAN ? "s / (float)p.cols" : "s");
  fprintf(o, "}\n\n");
  return 0;
}

void cuda_reduce_launch(const CudaReduce *r, int64_t rows, CudaLaunch *l) {
  memset(l, 0, sizeof *l);
  l->grid[0] = (unsigned)rows, l->grid[1] = l->grid[2] = 1;
  l->block[0] = (unsigned)r->threads, l->block[1] = l->block[2] = 1;
  l->smem = 32 * sizeof(float);
}
