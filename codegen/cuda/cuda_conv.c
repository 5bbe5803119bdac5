/* cuda_conv.c — convolutions on the CUDA plan (docs/cuda.md "Convolutions").
 *
 * Forward, backward-data and backward-filter convolutions run as implicit GEMMs through the
 * GEMM generator (cuda_gemm.c) with the tiles pass's decision for the node, in the tiles
 * pass's view of it (passes/tiles.c); the groups are the GEMM's batch (blockIdx.z) and the
 * operands' group offsets its batch strides:
 *   forward          C[N·OH·OW, Og]     = patches(x)[., Cg·KH·KW] · w[Cg·KH·KW, Og]
 *   backward-data    C[N·H·W, Cg]       = patches(dy)[., Og·KH·KW] · w[Og·KH·KW, Cg]
 *   backward-filter  C[Og, Cg·KH·KW]    = dy[Og, N·OH·OW] · patches(x)[N·OH·OW, Cg·KH·KW]
 * Operands are gathered element by element (im2col on the fly); C(r, c) is stored at its
 * NCHW / OIHW place. Backward-filter's long K is split over CTAs when the tiles pass says
 * so (split-K, slices reduced in order by the GEMM's reduce kernel).
 *
 * At --precision bf16|f16 every implicit-GEMM convolution (forward and backward, grouped or
 * not) rounds its gathered f32 operands to 16 bits on the way into shared memory (the
 * decision's f32_in) and runs m16n8k16 tensor cores with f32 accumulation; with f16 loss
 * scaling the backward ones scale their gradient operand dy.
 *
 * Depthwise convolutions (one input channel per group) would be GEMMs with K = KH·KW (or
 * N = 1): they run as direct kernels instead, one thread per output with f32 accumulation
 * in a fixed order, the input (or dy) plane tiled through shared memory; backward-filter as
 * one block per filter tap with a fixed tree reduction. */
#include <string.h>

#include "cuda_plan.h"

/* depthwise: an 8x32 tile of outputs per block, 256 threads per filter tap's reduction */
enum { DW_TH = 8, DW_TW = 32, DW_THREADS = DW_TH * DW_TW, DW_RED_THREADS = 256, DW_SMEM_MAX = 48 * 1024 };

typedef long long LL;

bool cuda_conv_depthwise(const CgConv *c) { return c->G > 1 && c->Cg == 1; }

/* ---- implicit GEMM ------------------------------------------------------------------------ */

/* one conv GEMM: sizes, batch strides (per group) and the operand nodes */
typedef struct ConvGemm {
  LL M, N, K, bsa, bsb, bsc, ldc;
  int a_node, b_node;
} ConvGemm;

/* (oh, ow) -> (ih, iw) of tap (kh, kw) and the bounds-checked read of x at channel ci:
 * the body shared by the forward and backward-filter gathers of x (n, oh, ow, ci, kh, kw set) */
static void gather_x(FILE *o, const CgConv *c) {
  fprintf(o, "  int ih = oh * %lld - %lld + kh * %lld, iw = ow * %lld - %lld + kw * %lld;\n"
             "  return ih >= 0 && ih < %lld && iw >= 0 && iw < %lld ? x[(((long)n * %lld + ci) * %lld + ih) * %lld + iw] : 0.0f;\n}\n",
          (LL)c->sh, (LL)c->ph, (LL)c->dh, (LL)c->sw, (LL)c->pw, (LL)c->dw, (LL)c->H, (LL)c->W, (LL)c->C, (LL)c->H,
          (LL)c->W);
}

/* the gathers and C index of the forward GEMM */
static void fwd_fns(FILE *o, const char *nm, const CgConv *c, ConvGemm *g) {
  LL P = c->P, KS = c->KH * c->KW, K = c->Cg * KS;
  fprintf(o, "NNC_DEV float %s_ga(const float *x, int r, int k) {\n"
             "  int n = r / %lld, q = r %% %lld, oh = q / %lld, ow = q %% %lld;\n"
             "  int ci = k / %lld, s = k %% %lld, kh = s / %lld, kw = s %% %lld;\n",
          nm, P, P, (LL)c->OW, (LL)c->OW, KS, KS, (LL)c->KW, (LL)c->KW);
  gather_x(o, c);
  fprintf(o, "NNC_DEV float %s_gb(const float *w, int k, int oc) { return w[(long)oc * %lld + k]; }\n", nm, K);
  fprintf(o, "NNC_DEV long %s_ci(int r, int c) { return ((long)(r / %lld) * %lld + c) * %lld + r %% %lld; }\n", nm, P,
          (LL)c->O, P, P);
  *g = (ConvGemm){.M = c->N * P, .N = c->Og, .K = K, .bsa = c->Cg * c->H * c->W, .bsb = c->Og * K,
                  .bsc = c->Og * P, .ldc = c->Og};
}

/* backward-data: A(r, k) = dy[n, o, oh, ow] where oh·sh = ih + ph − kh·dh (zero elsewhere) */
static void data_fns(FILE *o, const char *nm, const CgConv *c, ConvGemm *g) {
  LL HW = c->H * c->W, KS = c->KH * c->KW;
  fprintf(o, "NNC_DEV float %s_ga(const float *dy, int r, int k) {\n"
             "  int n = r / %lld, q = r %% %lld, ih = q / %lld, iw = q %% %lld;\n"
             "  int o = k / %lld, s = k %% %lld, kh = s / %lld, kw = s %% %lld;\n"
             "  int th = ih + %lld - kh * %lld, tw = iw + %lld - kw * %lld;\n"
             "  if (th < 0 || tw < 0 || th %% %lld || tw %% %lld) return 0.0f;\n"
             "  int oh = th / %lld, ow = tw / %lld;\n"
             "  return oh < %lld && ow < %lld ? dy[(((long)n * %lld + o) * %lld + oh) * %lld + ow] : 0.0f;\n}\n",
          nm, HW, HW, (LL)c->W, (LL)c->W, KS, KS, (LL)c->KW, (LL)c->KW, (LL)c->ph, (LL)c->dh, (LL)c->pw, (LL)c->dw,
          (LL)c->sh, (LL)c->sw, (LL)c->sh, (LL)c->sw, (LL)c->OH, (LL)c->OW, (LL)c->O, (LL)c->OH, (LL)c->OW);
  fprintf(o, "NNC_DEV float %s_gb(const float *w, int k, int c) { return w[((long)(k / %lld) * %lld + c) * %lld + k %% %lld]; }\n",
          nm, KS, (LL)c->Cg, KS, KS);
  fprintf(o, "NNC_DEV long %s_ci(int r, int c) { return ((long)(r / %lld) * %lld + c) * %lld + r %% %lld; }\n", nm, HW,
          (LL)c->C, HW, HW);
  *g = (ConvGemm){.M = c->N * HW, .N = c->Cg, .K = c->Og * KS, .bsa = c->Og * c->P, .bsb = c->Og * c->Cg * KS,
                  .bsc = c->Cg * HW, .ldc = c->Cg};
}

/* backward-filter: A(o, k) = dy[n, o, q] (k = n·P + q), B(k, j) = x at tap j of output q */
static void filter_fns(FILE *o, const char *nm, const CgConv *c, ConvGemm *g) {
  LL P = c->P, KS = c->KH * c->KW;
  fprintf(o, "NNC_DEV float %s_ga(const float *dy, int o, int k) { return dy[((long)(k / %lld) * %lld + o) * %lld + k %% %lld]; }\n",
          nm, P, (LL)c->O, P, P);
  fprintf(o, "NNC_DEV float %s_gb(const float *x, int k, int j) {\n"
             "  int n = k / %lld, q = k %% %lld, oh = q / %lld, ow = q %% %lld;\n"
             "  int ci = j / %lld, s = j %% %lld, kh = s / %lld, kw = s %% %lld;\n",
          nm, P, P, (LL)c->OW, (LL)c->OW, KS, KS, (LL)c->KW, (LL)c->KW);
  gather_x(o, c);
  *g = (ConvGemm){.M = c->Og, .N = c->Cg * KS, .K = c->N * P, .bsa = c->Og * P, .bsb = c->Cg * c->H * c->W,
                  .bsc = c->Og * c->Cg * KS, .ldc = c->Cg * KS};
}

static void args_fn(FILE *o, const CgPlan *p, const CgKernel *k, const char *nm, const ConvGemm *g, const CudaGemm *cg,
                    int64_t groups, LL ls_off) {
  char pa[96], pb[96], pc[96], pbias[96] = "0";
  cuda_ptr_expr(pa, sizeof pa, p, g->a_node, "const void");
  cuda_ptr_expr(pb, sizeof pb, p, g->b_node, "const void");
  cuda_ptr_expr(pc, sizeof pc, p, k->out, "float");
  if (k->bias) cuda_ptr_expr(pbias, sizeof pbias, p, k->bias_node, "const float");
  fprintf(o, "NNC_DEV NncGemmArgs %s_args(const NncBufs &b) {\n  NncGemmArgs p = {};\n", nm);
  fprintf(o, "  p.A = %s; p.B = %s; p.C = %s; p.bias = %s; p.R = 0; p.work = (float *)b.work;\n", pa, pb, pc, pbias);
  fprintf(o, "  p.bsa = %lldLL; p.bsb = %lldLL; p.bsc = %lldLL; p.bsr = 0;\n", g->bsa, g->bsb, g->bsc);
  fprintf(o, "  p.M = %lld; p.N = %lld; p.K = %lld; p.lda = 0; p.ldb = 0; p.ldc = %lld; p.ldr = 0;\n", g->M, g->N,
          g->K, g->ldc);
  fprintf(o, "  p.k_split = %lld; p.batch = %lld;\n", (LL)cuda_gemm_k_split(cg, g->K), (LL)groups);
  if (cg->scale_a) /* a power of two: scaling and unscaling are exact */
    fprintf(o, "  p.scale = ((const float *)(b.params + %lld))[1]; p.inv_scale = 1.0f / p.scale;\n", ls_off);
  fprintf(o, "  return p;\n}\n");
}

/* the GEMM of conv kernel k as NAME (NAME_reduce for split-K); with f16 loss scaling
 * (ls_off >= 0) a backward convolution scales its gradient operand dy (A in both views) */
static int conv_gemm(FILE *o, const CgPlan *p, const CgKernel *k, const CgConv *c, const char *nm, CudaPlanTable *tab,
                     int64_t ls_off, Diag *d) {
  const IrNode *n = &p->g->nodes[k->node];
  ConvGemm g;
  if (n->op == OP_CONV2D) fwd_fns(o, nm, c, &g), g.a_node = n->in[0], g.b_node = n->in[1];
  else if (n->op == OP_CONV2D_BWD_DATA) data_fns(o, nm, c, &g), g.a_node = n->in[0], g.b_node = n->in[1];
  else filter_fns(o, nm, c, &g), g.a_node = n->in[1], g.b_node = n->in[0];
  char ga[80], gb[80], ci[80];
  snprintf(ga, sizeof ga, "%s_ga", nm);
  snprintf(gb, sizeof gb, "%s_gb", nm);
  snprintf(ci, sizeof ci, "%s_ci", nm);
  bool fwd = n->op == OP_CONV2D;
  CudaGemm cg = {.name = nm, .prec = cuda_tile_prec(k->tile),
                 .epilogue = fwd ? (k->bias ? CUDA_EPI_BIAS : 0u) | (k->relu ? CUDA_EPI_RELU : 0u) : 0u,
                 .tile = k->tile, .from_bufs = true, .a_gather = ga, .b_gather = gb,
                 .c_index = n->op == OP_CONV2D_BWD_FILTER ? NULL : ci, .bias_per_batch = c->G > 1,
                 .scale_a = ls_off >= 0 && !fwd && cuda_plan_is_gradient(p, g.a_node)};
  fprintf(o, "/* %s: %s %%%d as implicit GEMM %lld x %lld x %lld, batch %lld (groups) */\n", nm, ir_op_name(n->op),
          k->node, g.M, g.N, g.K, (LL)c->G);
  args_fn(o, p, k, nm, &g, &cg, c->G, (LL)ls_off);
  char err[256];
  if (cuda_gemm_emit(o, &cg, err, sizeof err)) {
    diag_error(d, n->loc, "CUDA code generation: %s %%%d: %s", ir_op_name(n->op), k->node, err);
    return -1;
  }
  if (cuda_plan_gemm_add(tab, &cg, g.M, g.N, c->G, (int)(k - p->k)))
    return diag_error(d, n->loc, "out of memory, or a kernel name over 95 characters"), -1;
  return 0;
}

/* the node has a GPU tile decision the generator builds and every index fits an int. A
 * 16-bit decision (--precision bf16|f16) is built from f32 values rounded on load
 * (f32_in), forward, backward-data and backward-filter, grouped or not */
static bool gemm_ok(const CgKernel *k, const CgConv *c) {
  if (!k->tile || !k->tile->valid || !k->tile->gpu) return false;
  if (k->tile->gemm.dt != DT_F32 && !k->tile->gemm.f32_in) return false;
  LL x = c->N * c->C * c->H * c->W, y = c->N * c->O * c->P, w = c->O * c->Cg * c->KH * c->KW;
  return x < INT32_MAX && y < INT32_MAX && w < INT32_MAX;
}

/* ---- depthwise ---------------------------------------------------------------------------- */

/* rows or columns of a shared-memory tile: input rows under `out` output rows (forward), or
 * dy rows over `out` input rows (backward-data) */
static LL span_fwd(LL out, LL k, LL s, LL dil) { return (out - 1) * s + (k - 1) * dil + 1; }
static LL span_bwd(LL out, LL k, LL s, LL dil) { return (out - 1 + (k - 1) * dil) / s + 2; }

static void dw_launch(CudaLaunch *l, LL tiles, LL y, LL z, unsigned threads, LL smem) {
  memset(l, 0, sizeof *l);
  l->grid[0] = (unsigned)tiles, l->grid[1] = (unsigned)y, l->grid[2] = (unsigned)z;
  l->block[0] = threads, l->block[1] = l->block[2] = 1;
  l->smem = (size_t)smem;
}

static void dw_fwd(FILE *o, const CgPlan *p, const CgKernel *k, const CgConv *c, CudaLaunch *l) {
  const IrNode *n = &p->g->nodes[k->node];
  LL R = span_fwd(DW_TH, c->KH, c->sh, c->dh), Q = span_fwd(DW_TW, c->KW, c->sw, c->dw), KS = c->KH * c->KW;
  LL tw = (c->OW + DW_TW - 1) / DW_TW, th = (c->OH + DW_TH - 1) / DW_TH;
  char px[96], pw[96], py[96], pb[96] = "0";
  cuda_ptr_expr(px, sizeof px, p, n->in[0], "const float");
  cuda_ptr_expr(pw, sizeof pw, p, n->in[1], "const float");
  cuda_ptr_expr(py, sizeof py, p, k->out, "float");
  if (k->bias) cuda_ptr_expr(pb, sizeof pb, p, k->bias_node, "const float");
  fprintf(o, "  float *xs = (float *)nnc_smem, *ws = xs + %lld;\n", R * Q);
  fprintf(o, "  int oh0 = (blockIdx.x / %lld) * %d, ow0 = (blockIdx.x %% %lld) * %d, oc = blockIdx.y, n = blockIdx.z;\n",
          tw, DW_TH, tw, DW_TW);
  fprintf(o, "  int ih0 = oh0 * %lld - %lld, iw0 = ow0 * %lld - %lld;\n", (LL)c->sh, (LL)c->ph, (LL)c->sw, (LL)c->pw);
  fprintf(o, "  const float *xp = %s + ((long)n * %lld + oc / %lld) * %lldL;\n", px, (LL)c->C, (LL)c->Og, (LL)(c->H * c->W));
  fprintf(o, "  for (int i = threadIdx.x; i < %lld; i += %d) {\n"
             "    int ih = ih0 + i / %lld, iw = iw0 + i %% %lld;\n"
             "    xs[i] = ih >= 0 && ih < %lld && iw >= 0 && iw < %lld ? xp[(long)ih * %lld + iw] : 0.0f;\n  }\n",
          R * Q, DW_THREADS, Q, Q, (LL)c->H, (LL)c->W, (LL)c->W);
  fprintf(o, "  for (int i = threadIdx.x; i < %lld; i += %d) ws[i] = %s[(long)oc * %lld + i];\n", KS, DW_THREADS, pw, KS);
  fprintf(o, "  nnc_syncthreads();\n");
  fprintf(o, "  int ty = threadIdx.x / %d, tx = threadIdx.x %% %d, oh = oh0 + ty, ow = ow0 + tx;\n", DW_TW, DW_TW);
  fprintf(o, "  if (oh >= %lld || ow >= %lld) return;\n  float s = 0.0f;\n", (LL)c->OH, (LL)c->OW);
  fprintf(o, "  for (int kh = 0; kh < %lld; kh++)\n    for (int kw = 0; kw < %lld; kw++)\n"
             "      s = fmaf(ws[kh * %lld + kw], xs[(ty * %lld + kh * %lld) * %lld + tx * %lld + kw * %lld], s);\n",
          (LL)c->KH, (LL)c->KW, (LL)c->KW, (LL)c->sh, (LL)c->dh, Q, (LL)c->sw, (LL)c->dw);
  if (k->bias) fprintf(o, "  s += %s[oc];\n", pb);
  if (k->relu) fprintf(o, "  s = s > 0.0f || s != s ? s : 0.0f;\n");
  fprintf(o, "  %s[((long)n * %lld + oc) * %lldL + (long)oh * %lld + ow] = s;\n", py, (LL)c->O, (LL)c->P, (LL)c->OW);
  dw_launch(l, tw * th, c->O, c->N, DW_THREADS, (R * Q + KS) * 4);
}

/* int dst = floor(v / s), v an int variable */
static void dw_floor_div(FILE *o, const char *dst, const char *v, LL s) {
  fprintf(o, "  int %s = %s >= 0 ? %s / %lld : -((-%s + %lld) / %lld);\n", dst, v, v, s, v, s - 1, s);
}

static void dw_data(FILE *o, const CgPlan *p, const CgKernel *k, const CgConv *c, CudaLaunch *l) {
  const IrNode *n = &p->g->nodes[k->node];
  LL R = span_bwd(DW_TH, c->KH, c->sh, c->dh), Q = span_bwd(DW_TW, c->KW, c->sw, c->dw), KS = c->KH * c->KW;
  LL tw = (c->W + DW_TW - 1) / DW_TW, th = (c->H + DW_TH - 1) / DW_TH, OKS = c->Og * KS;
  char pdy[96], pw[96], pdx[96];
  cuda_ptr_expr(pdy, sizeof pdy, p, n->in[0], "const float");
  cuda_ptr_expr(pw, sizeof pw, p, n->in[1], "const float");
  cuda_ptr_expr(pdx, sizeof pdx, p, k->node, "float");
  fprintf(o, "  float *ds = (float *)nnc_smem, *ws = ds + %lld;\n", R * Q);
  fprintf(o, "  int ih0 = (blockIdx.x / %lld) * %d, iw0 = (blockIdx.x %% %lld) * %d, ch = blockIdx.y, n = blockIdx.z;\n",
          tw, DW_TH, tw, DW_TW);
  fprintf(o, "  int th0 = ih0 + %lld, tw0 = iw0 + %lld;\n", (LL)(c->ph - (c->KH - 1) * c->dh), (LL)(c->pw - (c->KW - 1) * c->dw));
  dw_floor_div(o, "oh0", "th0", c->sh);
  dw_floor_div(o, "ow0", "tw0", c->sw);
  fprintf(o, "  for (int i = threadIdx.x; i < %lld; i += %d) ws[i] = %s[(long)ch * %lld + i];\n", OKS, DW_THREADS, pw, OKS);
  fprintf(o, "  int ty = threadIdx.x / %d, tx = threadIdx.x %% %d, ih = ih0 + ty, iw = iw0 + tx;\n  float s = 0.0f;\n",
          DW_TW, DW_TW);
  fprintf(o, "  for (int oo = 0; oo < %lld; oo++) {\n", (LL)c->Og);
  fprintf(o, "    const float *dp = %s + ((long)n * %lld + ch * %lld + oo) * %lldL;\n", pdy, (LL)c->O, (LL)c->Og, (LL)c->P);
  fprintf(o, "    nnc_syncthreads();\n"
             "    for (int i = threadIdx.x; i < %lld; i += %d) {\n"
             "      int oh = oh0 + i / %lld, ow = ow0 + i %% %lld;\n"
             "      ds[i] = oh >= 0 && oh < %lld && ow >= 0 && ow < %lld ? dp[(long)oh * %lld + ow] : 0.0f;\n    }\n"
             "    nnc_syncthreads();\n",
          R * Q, DW_THREADS, Q, Q, (LL)c->OH, (LL)c->OW, (LL)c->OW);
  fprintf(o, "    for (int kh = 0; kh < %lld; kh++) {\n"
             "      int t = ih + %lld - kh * %lld;\n      if (t < 0 || t %% %lld) continue;\n      int lr = t / %lld - oh0;\n"
             "      for (int kw = 0; kw < %lld; kw++) {\n"
             "        int u = iw + %lld - kw * %lld;\n        if (u < 0 || u %% %lld) continue;\n"
             "        s = fmaf(ws[oo * %lld + kh * %lld + kw], ds[lr * %lld + u / %lld - ow0], s);\n      }\n    }\n  }\n",
          (LL)c->KH, (LL)c->ph, (LL)c->dh, (LL)c->sh, (LL)c->sh, (LL)c->KW, (LL)c->pw, (LL)c->dw, (LL)c->sw, KS,
          (LL)c->KW, Q, (LL)c->sw);
  fprintf(o, "  if (ih < %lld && iw < %lld) %s[((long)n * %lld + ch) * %lldL + (long)ih * %lld + iw] = s;\n", (LL)c->H,
          (LL)c->W, pdx, (LL)c->C, (LL)(c->H * c->W), (LL)c->W);
  dw_launch(l, tw * th, c->C, c->N, DW_THREADS, (R * Q + OKS) * 4);
}

/* one block per filter tap (kh, kw) of output channel oc: every thread folds a fixed strided
 * subset of the N·OH·OW products in order, then a fixed tree over the block */
static void dw_filter(FILE *o, const CgPlan *p, const CgKernel *k, const CgConv *c, CudaLaunch *l) {
  const IrNode *n = &p->g->nodes[k->node];
  LL KS = c->KH * c->KW;
  char px[96], pdy[96], pdw[96];
  cuda_ptr_expr(px, sizeof px, p, n->in[0], "const float");
  cuda_ptr_expr(pdy, sizeof pdy, p, n->in[1], "const float");
  cuda_ptr_expr(pdw, sizeof pdw, p, k->node, "float");
  fprintf(o, "  int s = blockIdx.x, oc = blockIdx.y, kh = s / %lld, kw = s %% %lld;\n", (LL)c->KW, (LL)c->KW);
  fprintf(o, "  const float *xp = %s + (long)(oc / %lld) * %lldL, *dp = %s + (long)oc * %lldL;\n", px, (LL)c->Og,
          (LL)(c->H * c->W), pdy, (LL)c->P);
  fprintf(o, "  float acc = 0.0f;\n  for (long i = threadIdx.x; i < %lldL; i += %d) {\n", (LL)(c->N * c->P), DW_RED_THREADS);
  fprintf(o, "    long n = i / %lld;\n    int q = (int)(i %% %lld), oh = q / %lld, ow = q %% %lld;\n", (LL)c->P, (LL)c->P,
          (LL)c->OW, (LL)c->OW);
  fprintf(o, "    int ih = oh * %lld - %lld + kh * %lld, iw = ow * %lld - %lld + kw * %lld;\n", (LL)c->sh, (LL)c->ph,
          (LL)c->dh, (LL)c->sw, (LL)c->pw, (LL)c->dw);
  fprintf(o, "    if (ih >= 0 && ih < %lld && iw >= 0 && iw < %lld)\n"
             "      acc = fmaf(xp[n * %lldL + (long)ih * %lld + iw], dp[n * %lldL + q], acc);\n  }\n",
          (LL)c->H, (LL)c->W, (LL)(c->C * c->H * c->W), (LL)c->W, (LL)(c->O * c->P));
  fprintf(o, "  acc = nnc_block_sum(acc, (float *)nnc_smem);\n");
  fprintf(o, "  if (threadIdx.x == 0) %s[(long)oc * %lld + s] = acc;\n", pdw, KS);
  dw_launch(l, KS, c->O, 1, DW_RED_THREADS, 32 * 4);
}

static int dw_emit(FILE *o, const CgPlan *p, const CgKernel *k, const CgConv *c, const char *nm, CudaPlanTable *tab,
                   Diag *d) {
  const IrNode *n = &p->g->nodes[k->node];
  if (c->N > 65535 || c->O > 65535)
    return diag_error(d, n->loc, "CUDA code generation: depthwise %s %%%d: over 65535 images or channels",
                      ir_op_name(n->op), k->node), -1;
  CudaLaunch l;
  fprintf(o, "/* %s: depthwise %s %%%d, direct */\n", nm, ir_op_name(n->op), k->node);
  fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncBufs b) {\n  NNC_EXTERN_SMEM(nnc_smem);\n",
          n->op == OP_CONV2D_BWD_FILTER ? DW_RED_THREADS : DW_THREADS, nm);
  if (n->op == OP_CONV2D) dw_fwd(o, p, k, c, &l);
  else if (n->op == OP_CONV2D_BWD_DATA) dw_data(o, p, k, c, &l);
  else dw_filter(o, p, k, c, &l);
  fprintf(o, "}\n\n");
  if (l.smem > DW_SMEM_MAX)
    return diag_error(d, n->loc, "CUDA code generation: depthwise %s %%%d: a %zu-byte shared-memory tile (window too wide)",
                      ir_op_name(n->op), k->node, l.smem), -1;
  if (cuda_plan_table_add(tab, nm, &l, (CudaLaunchOf){(int)(k - p->k), 0, false, 0, 0})) return diag_error(d, n->loc, "out of memory"), -1;
  return 0;
}

/* ---- the plan kernel -------------------------------------------------------------------- */

int cuda_conv_emit(FILE *o, const CgPlan *p, const CgKernel *k, const char *prefix, int ki, CudaPlanTable *tab,
                   int64_t ls_off, Diag *d) {
  CgConv c;
  cg_conv_geom(p, k->node, &c);
  if (p->v[k->out].numel == 0) return 0;
  char nm[64];
  if (!cuda_kernel_name(nm, sizeof nm, prefix, ki, "_gemm")) /* the longest form */
    return diag_error(d, p->g->loc, "CUDA code generation: kernel names of '%s' too long", prefix), -1;
  if (cuda_conv_depthwise(&c)) {
    cuda_kernel_name(nm, sizeof nm, prefix, ki, "_dw");
    return dw_emit(o, p, k, &c, nm, tab, d);
  }
  if (gemm_ok(k, &c)) {
    cuda_kernel_name(nm, sizeof nm, prefix, ki, "_gemm");
    return conv_gemm(o, p, k, &c, nm, tab, ls_off, d);
  }
  /* sizes past 32-bit indices or no GPU tile decision: the direct kernel */
  cuda_kernel_name(nm, sizeof nm, prefix, ki, "");
  CudaLaunch l;
  if (cuda_node_emit(o, p, k, nm, &l, &tab->work_bytes, d)) return -1;
  if (l.grid[0] && cuda_plan_table_add(tab, nm, &l, (CudaLaunchOf){ki, 0, false, 0, 0}))
    return diag_error(d, p->g->nodes[k->node].loc, "out of memory"), -1;
  return 0;
}
