/* cuda_gemm.c — the GEMM kernel generator: C = epilogue(op(A)·op(B)) as CUDA C.
 *
 * One CTA computes a bm×bn tile of C; its warps each own a wm×wn warp tile. K advances in
 * bk slices through a `stages`-deep ring of shared-memory buffers filled by cp.async (16-byte
 * copies, zero-filled past the matrix) or, when rows are not 16-byte aligned, by plain
 * predicated loads. Tensor-core precisions compute with mma.sync (m16n8k16 for bf16/f16,
 * fragments through ldmatrix; m16n8k8 for TF32); f32 computes with FMAs, each lane owning a
 * (wm/4)×(wn/8) piece of its warp tile. Shared-memory tiles keep the global orientation of A
 * and B, padded by smem_pad elements per row; ldmatrix .trans handles the transposed ones.
 * Split-K writes partial sums to a workspace that a second kernel adds in slice order, so
 * the result is deterministic. Every number here comes from the TileDecision. */
#include <stdlib.h>
#include <string.h>

#include "cuda_gen.h"

typedef struct Gen {
  FILE *o;
  const CudaGemm *g;
  const TileDecision *t;
  const char *ty;       /* shared-memory type of A and B */
  const char *gty;      /* their type in global memory: ty, or float when rounded on load */
  const char *cvt;      /* the rounding on load (nnc_f32_to_bf16/_f16), NULL when none */
  char cv_a[48], cv_b[48]; /* "CVT(" or "CVT(p.scale * " for each operand ("(" without cvt) */
  int es, v;            /* element bytes, elements per 16-byte copy */
  int lda_s, ldb_s;     /* shared-memory row lengths (elements, padding included) */
  int a_stage, b_stage; /* elements of one stage */
  int mi, ni, kstep;    /* MMA tiles per warp tile, MMA k */
  int tm, tn;           /* FMA: outputs per lane */
  char cidx[96];        /* offset of C(r, c) from p.C within a batch */
} Gen;

static bool gen_tensor_cores(const Gen *x) { return x->g->prec != CUDA_PREC_F32; }

/* ---- checking the decision -------------------------------------------------------------- */

static const char *gen_expected_mma(CudaPrec p) {
  switch (p) {
  case CUDA_PREC_F32: return "fma";
  case CUDA_PREC_TF32: return "mma.sync m16n8k8";
  default: return "mma.sync m16n8k16";
  }
}

static int gen_check_shape(const Gen *x, char *err, size_t n) {
  const TileDecision *t = x->t;
  if (t->wm <= 0 || t->wn <= 0 || t->bm % t->wm || t->bn % t->wn)
    return cuda_errf(err, n, "warp tile %dx%d does not divide block tile %dx%d", t->wm, t->wn, t->bm, t->bn);
  if (t->threads != 32 * (t->bm / t->wm) * (t->bn / t->wn) || t->threads > 1024)
    return cuda_errf(err, n, "%d threads for %d warps of %dx%d", t->threads, (t->bm / t->wm) * (t->bn / t->wn), t->wm, t->wn);
  if (gen_tensor_cores(x) && (t->wm % 16 || t->wn % 16 || t->bk % x->kstep))
    return cuda_errf(err, n, "warp tile %dx%d / K tile %d is not a multiple of the MMA shape", t->wm, t->wn, t->bk);
  if (!gen_tensor_cores(x) && (t->wm % 4 || t->wn % 8))
    return cuda_errf(err, n, "FMA warp tile %dx%d is not a multiple of 4x8 lanes", t->wm, t->wn);
  if (t->stages < 2 || t->split_k < 1 || (t->bk * x->es) % 16 || (t->smem_pad * x->es) % 16)
    return cuda_errf(err, n, "stages %d, split-K %d, K tile %d, padding %d", t->stages, t->split_k, t->bk, t->smem_pad);
  if (t->ldmatrix && (x->es != 2))
    return cuda_errf(err, n, "ldmatrix needs 16-bit operands");
  return 0;
}

static int gen_init(Gen *x, FILE *o, const CudaGemm *g, char *err, size_t n) {
  memset(x, 0, sizeof *x);
  x->o = o, x->g = g, x->t = g->tile;
  const TileDecision *t = g->tile;
  if (!t || !t->valid || !t->gpu) return cuda_errf(err, n, "no GPU tile decision for kernel %s", g->name);
  if (strcmp(t->mma, gen_expected_mma(g->prec)))
    return cuda_errf(err, n, "tile decision uses %s, the precision needs %s", t->mma, gen_expected_mma(g->prec));
  bool half = g->prec == CUDA_PREC_BF16 || g->prec == CUDA_PREC_F16;
  x->ty = half ? "unsigned short" : "float";
  x->gty = x->ty;
  if (half && t->gemm.f32_in) /* f32 values rounded to the 16-bit type on the way in */
    x->gty = "float", x->cvt = g->prec == CUDA_PREC_BF16 ? "nnc_f32_to_bf16" : "nnc_f32_to_f16";
  if (half && g->a_gather && !x->cvt)
    return cuda_errf(err, n, "gathered operands are f32: a 16-bit GEMM needs the decision's f32_in");
  if ((g->scale_a || g->scale_b) && !x->cvt)
    return cuda_errf(err, n, "loss scaling needs 16-bit operands rounded on load");
  snprintf(x->cv_a, sizeof x->cv_a, "%s(%s", x->cvt ? x->cvt : "", g->scale_a ? "p.scale * " : "");
  snprintf(x->cv_b, sizeof x->cv_b, "%s(%s", x->cvt ? x->cvt : "", g->scale_b ? "p.scale * " : "");
  x->es = half ? 2 : 4;
  x->v = 16 / x->es;
  x->kstep = half ? 16 : 8;
  x->lda_s = (g->trans_a ? t->bm : t->bk) + t->smem_pad;
  x->ldb_s = (g->trans_b ? t->bk : t->bn) + t->smem_pad;
  x->a_stage = (g->trans_a ? t->bk : t->bm) * x->lda_s;
  x->b_stage = (g->trans_b ? t->bn : t->bk) * x->ldb_s;
  x->mi = t->wm / 16, x->ni = t->wn / 8;
  x->tm = t->wm / 4, x->tn = t->wn / 8;
  if (g->c_index) snprintf(x->cidx, sizeof x->cidx, "%s(r, c)", g->c_index);
  else snprintf(x->cidx, sizeof x->cidx, "(long)r * p.ldc + c");
  if (gen_check_shape(x, err, n)) return -1;
  int64_t smem = (int64_t)t->stages * (x->a_stage + x->b_stage) * x->es;
  if (smem != t->smem)
    return cuda_errf(err, n, "kernel needs %lld bytes of shared memory, the tile plan %lld", (long long)smem, (long long)t->smem);
  return 0;
}

/* ---- tile loads ------------------------------------------------------------------------ */

/* one operand's tile: rows × cols of the stored matrix, starting at (r0, c0), limits rl, cl */
static void gen_load_operand(const Gen *x, const char *smem, const char *gp, const char *ld, int rows,
                             int cols, int lds, bool vec, const char *r0, const char *c0,
                             const char *rl, const char *cl, const char *gather, const char *cv) {
  FILE *o = x->o;
  int th = x->t->threads;
  if (gather) {
    fprintf(o, "  NNC_UNROLL\n  for (int i = threadIdx.x; i < %d; i += %d) {\n", rows * cols, th);
    fprintf(o, "    int r = i / %d, c = i %% %d, gr = %s + r, gc = %s + c;\n", cols, cols, r0, c0);
    fprintf(o, "    %s[r * %d + c] = gr < %s && gc < %s ? %s%s(%s, gr, gc)) : (%s)0;\n", smem, lds, rl, cl, cv,
            gather, gp, x->ty);
    fprintf(o, "  }\n");
    return;
  }
  if (vec && x->cvt) { /* float4 loads where the 4 elements are inside, rounded, 4 stores */
    fprintf(o, "  NNC_UNROLL\n  for (int i = threadIdx.x; i < %d; i += %d) {\n", rows * cols / 4, th);
    fprintf(o, "    int r = i / %d, c = (i %% %d) * 4, gr = %s + r, gc = %s + c;\n", cols / 4, cols / 4, r0, c0);
    fprintf(o, "    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};\n");
    fprintf(o, "    if (gr < %s && gc + 3 < %s) {\n      float4 q = nnc_ld4(&%s[(long)gr * %s + gc]);\n"
               "      v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;\n", rl, cl, gp, ld);
    fprintf(o, "    } else if (gr < %s)\n      for (int e = 0; e < 4; e++) v[e] = gc + e < %s ? %s[(long)gr * %s + gc + e] : 0.0f;\n",
            rl, cl, gp, ld);
    fprintf(o, "    for (int e = 0; e < 4; e++) %s[r * %d + c + e] = %sv[e]);\n  }\n", smem, lds, cv);
    return;
  }
  if (vec) {
    fprintf(o, "  NNC_UNROLL\n  for (int i = threadIdx.x; i < %d; i += %d) {\n", rows * cols / x->v, th);
    fprintf(o, "    int r = i / %d, c = (i %% %d) * %d;\n", cols / x->v, cols / x->v, x->v);
    fprintf(o, "    int gr = %s + r, gc = %s + c, left = %s - gc;\n", r0, c0, cl);
    fprintf(o, "    int bytes = gr < %s && left > 0 ? (left < %d ? left : %d) * %d : 0;\n", rl, x->v, x->v, x->es);
    fprintf(o, "    nnc_cp_async16(&%s[r * %d + c], bytes ? (const void *)&%s[(long)gr * %s + gc] : (const void *)%s, bytes);\n",
            smem, lds, gp, ld, gp);
    fprintf(o, "  }\n");
    return;
  }
  fprintf(o, "  NNC_UNROLL\n  for (int i = threadIdx.x; i < %d; i += %d) {\n", rows * cols, th);
  fprintf(o, "    int r = i / %d, c = i %% %d, gr = %s + r, gc = %s + c;\n", cols, cols, r0, c0);
  fprintf(o, "    %s[r * %d + c] = gr < %s && gc < %s ? %s%s[(long)gr * %s + gc]) : (%s)0;\n", smem, lds, rl, cl, cv,
          gp, ld, x->ty);
  fprintf(o, "  }\n");
}

static void gen_load_fn(const Gen *x) {
  const CudaGemm *g = x->g;
  const TileDecision *t = x->t;
  fprintf(x->o, "NNC_DEV void %s_load(%s *As, %s *Bs, const %s *A, const %s *B, const NncGemmArgs &p,\n"
                "    int m0, int n0, int k0, int kend) {\n", g->name, x->ty, x->ty, x->gty, x->gty);
  fprintf(x->o, "  /* A tile */\n");
  if (g->trans_a) gen_load_operand(x, "As", "A", "p.lda", t->bk, t->bm, x->lda_s, t->cp_async_a, "k0", "m0", "kend", "p.M", g->a_gather, x->cv_a);
  else gen_load_operand(x, "As", "A", "p.lda", t->bm, t->bk, x->lda_s, t->cp_async_a, "m0", "k0", "p.M", "kend", g->a_gather, x->cv_a);
  fprintf(x->o, "  /* B tile */\n");
  if (g->trans_b) gen_load_operand(x, "Bs", "B", "p.ldb", t->bn, t->bk, x->ldb_s, t->cp_async_b, "n0", "k0", "p.N", "kend", g->b_gather, x->cv_b);
  else gen_load_operand(x, "Bs", "B", "p.ldb", t->bk, t->bn, x->ldb_s, t->cp_async_b, "k0", "n0", "kend", "p.N", g->b_gather, x->cv_b);
  fprintf(x->o, "}\n\n");
}

/* ---- fragments and the inner product ------------------------------------------------------ */

/* element (m=i, k=j) of the A stage, or (k=i, n=j) of the B stage, as a C expression */
static void gen_at(const Gen *x, char *buf, size_t n, bool a, const char *i, const char *j) {
  bool tr = a ? x->g->trans_a : x->g->trans_b;
  snprintf(buf, n, "%s[(%s) * %d + (%s)]", a ? "As" : "Bs", tr ? j : i, a ? x->lda_s : x->ldb_s, tr ? i : j);
}

static void gen_frag_ldmatrix(const Gen *x) {
  FILE *o = x->o;
  const CudaGemm *g = x->g;
  fprintf(o, "    NNC_UNROLL\n    for (int mi = 0; mi < %d; mi++) {\n", x->mi);
  if (!g->trans_a)
    fprintf(o, "      nnc_ldmatrix_x4(a[mi], &As[(wm0 + mi * 16 + (lane & 15)) * %d + kk + (lane >> 4) * 8]);\n", x->lda_s);
  else
    fprintf(o, "      nnc_ldmatrix_x4_trans(a[mi], &As[(kk + (lane & 7) + (lane >> 4) * 8) * %d + wm0 + mi * 16 + ((lane >> 3) & 1) * 8]);\n", x->lda_s);
  fprintf(o, "    }\n");
  fprintf(o, "    NNC_UNROLL\n    for (int nj = 0; nj < %d; nj += 2) {\n      unsigned r[4];\n", x->ni);
  if (g->trans_b)
    fprintf(o, "      nnc_ldmatrix_x4(r, &Bs[(wn0 + nj * 8 + (lane >> 4) * 8 + (lane & 7)) * %d + kk + ((lane >> 3) & 1) * 8]);\n", x->ldb_s);
  else
    fprintf(o, "      nnc_ldmatrix_x4_trans(r, &Bs[(kk + ((lane >> 3) & 1) * 8 + (lane & 7)) * %d + wn0 + nj * 8 + (lane >> 4) * 8]);\n", x->ldb_s);
  fprintf(o, "      b[nj][0] = r[0], b[nj][1] = r[1], b[nj + 1][0] = r[2], b[nj + 1][1] = r[3];\n    }\n");
}

/* fragments element by element, in the PTX layouts (see cuda_emu.h) */
static void gen_frag_scalar(const Gen *x) {
  FILE *o = x->o;
  char e0[160], e1[160];
  fprintf(o, "    NNC_UNROLL\n    for (int mi = 0; mi < %d; mi++)\n      NNC_UNROLL\n      for (int i = 0; i < 4; i++) {\n", x->mi);
  fprintf(o, "        int r = wm0 + mi * 16 + g + 8 * (i & 1);\n");
  if (x->es == 4) {
    gen_at(x, e0, sizeof e0, true, "r", "kk + t + 4 * (i >> 1)");
    fprintf(o, "        a[mi][i] = nnc_f32_to_tf32(%s);\n      }\n", e0);
  } else {
    gen_at(x, e0, sizeof e0, true, "r", "kk + 2 * t + 8 * (i >> 1)");
    gen_at(x, e1, sizeof e1, true, "r", "kk + 2 * t + 8 * (i >> 1) + 1");
    fprintf(o, "        a[mi][i] = (unsigned)%s | (unsigned)%s << 16;\n      }\n", e0, e1);
  }
  fprintf(o, "    NNC_UNROLL\n    for (int ni = 0; ni < %d; ni++)\n      NNC_UNROLL\n      for (int j = 0; j < 2; j++) {\n", x->ni);
  fprintf(o, "        int c = wn0 + ni * 8 + g;\n");
  if (x->es == 4) {
    gen_at(x, e0, sizeof e0, false, "kk + t + 4 * j", "c");
    fprintf(o, "        b[ni][j] = nnc_f32_to_tf32(%s);\n      }\n", e0);
  } else {
    gen_at(x, e0, sizeof e0, false, "kk + 2 * t + 8 * j", "c");
    gen_at(x, e1, sizeof e1, false, "kk + 2 * t + 8 * j + 1", "c");
    fprintf(o, "        b[ni][j] = (unsigned)%s | (unsigned)%s << 16;\n      }\n", e0, e1);
  }
}

static const char *gen_mma_fn(CudaPrec p) {
  return p == CUDA_PREC_TF32 ? "nnc_mma_m16n8k8_tf32"
         : p == CUDA_PREC_BF16 ? "nnc_mma_m16n8k16_bf16" : "nnc_mma_m16n8k16_f16";
}

static void gen_compute_mma(const Gen *x) {
  FILE *o = x->o;
  fprintf(o, "  NNC_UNROLL\n  for (int kk = 0; kk < %d; kk += %d) {\n", x->t->bk, x->kstep);
  fprintf(o, "    unsigned a[%d][4], b[%d][2];\n", x->mi, x->ni);
  if (x->t->ldmatrix) gen_frag_ldmatrix(x);
  else gen_frag_scalar(x);
  fprintf(o, "    NNC_UNROLL\n    for (int mi = 0; mi < %d; mi++)\n      NNC_UNROLL\n      for (int ni = 0; ni < %d; ni++) %s(acc[mi][ni], a[mi], b[ni]);\n",
          x->mi, x->ni, gen_mma_fn(x->g->prec));
  fprintf(o, "  }\n");
}

static void gen_compute_fma(const Gen *x) {
  FILE *o = x->o;
  char ea[160], eb[160];
  gen_at(x, ea, sizeof ea, true, "wm0 + lr + 4 * i", "kk");
  gen_at(x, eb, sizeof eb, false, "kk", "wn0 + lc + 8 * j");
  fprintf(o, "  NNC_UNROLL\n  for (int kk = 0; kk < %d; kk++) {\n    float a[%d], b[%d];\n", x->t->bk, x->tm, x->tn);
  fprintf(o, "    NNC_UNROLL\n    for (int i = 0; i < %d; i++) a[i] = %s;\n", x->tm, ea);
  fprintf(o, "    NNC_UNROLL\n    for (int j = 0; j < %d; j++) b[j] = %s;\n", x->tn, eb);
  fprintf(o, "    NNC_UNROLL\n    for (int i = 0; i < %d; i++)\n      NNC_UNROLL\n      for (int j = 0; j < %d; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);\n",
          x->tm, x->tn);
  fprintf(o, "  }\n");
}

static void gen_compute_fn(const Gen *x) {
  const char *nm = x->g->name;
  if (gen_tensor_cores(x))
    fprintf(x->o, "NNC_DEV void %s_compute(const %s *As, const %s *Bs, float (*acc)[%d][4], int wm0, int wn0, int lane) {\n"
                  "  int g = lane >> 2, t = lane & 3;\n  (void)g, (void)t;\n", nm, x->ty, x->ty, x->ni);
  else
    fprintf(x->o, "NNC_DEV void %s_compute(const %s *As, const %s *Bs, float (*acc)[%d], int wm0, int wn0, int lane) {\n"
                  "  int lr = lane >> 3, lc = lane & 7;\n", nm, x->ty, x->ty, x->tn);
  if (gen_tensor_cores(x)) gen_compute_mma(x);
  else gen_compute_fma(x);
  fprintf(x->o, "}\n\n");
}

/* ---- epilogue -------------------------------------------------------------------------- */

static void gen_epilogue_fn(const Gen *x) {
  unsigned e = x->g->epilogue;
  fprintf(x->o, "NNC_DEV float %s_epi(float v, int r, int c, int zb, const NncGemmArgs &p) {\n", x->g->name);
  if (x->g->scale_a || x->g->scale_b) fprintf(x->o, "  v *= p.inv_scale; /* loss scaling undone */\n");
  if (e & CUDA_EPI_BIAS) fprintf(x->o, "  v += p.bias[c];\n");
  if (e & CUDA_EPI_RELU) fprintf(x->o, "  v = v > 0.0f || v != v ? v : 0.0f; /* NaN stays NaN */\n");
  if (e & CUDA_EPI_GELU) fprintf(x->o, "  v = v * nnc_phi(v);\n");
  if (e & CUDA_EPI_RESIDUAL) fprintf(x->o, "  v += p.R[zb * p.bsr + (long)r * p.ldr + c];\n");
  fprintf(x->o, "  (void)r, (void)c, (void)zb, (void)p;\n  return v;\n}\n\n");
}

/* stores value v of C at (r, c): epilogue, or the raw partial sum of this K slice into the
 * workspace [batch][split][M][N] (blockIdx.z = batch index · split + slice) */
static void gen_store(const Gen *x, const char *indent) {
  if (x->t->split_k > 1)
    fprintf(x->o, "%sif (r < p.M && c < p.N) p.work[((long)blockIdx.z * p.M + r) * p.N + c] = v;\n", indent);
  else
    fprintf(x->o, "%sif (r < p.M && c < p.N) p.C[zb * p.bsc + %s] = %s_epi(v, r, c, zb, p);\n",
            indent, x->cidx, x->g->name);
}

static void gen_store_acc(const Gen *x) {
  FILE *o = x->o;
  if (gen_tensor_cores(x)) {
    fprintf(o, "  NNC_UNROLL\n  for (int mi = 0; mi < %d; mi++)\n    NNC_UNROLL\n    for (int ni = 0; ni < %d; ni++)\n"
               "      NNC_UNROLL\n      for (int i = 0; i < 4; i++) {\n", x->mi, x->ni);
    fprintf(o, "        int r = m0 + wm0 + mi * 16 + (lane >> 2) + 8 * (i >> 1);\n");
    fprintf(o, "        int c = n0 + wn0 + ni * 8 + 2 * (lane & 3) + (i & 1);\n");
    fprintf(o, "        float v = acc[mi][ni][i];\n");
    gen_store(x, "        ");
    fprintf(o, "      }\n");
  } else {
    fprintf(o, "  NNC_UNROLL\n  for (int i = 0; i < %d; i++)\n    NNC_UNROLL\n    for (int j = 0; j < %d; j++) {\n", x->tm, x->tn);
    fprintf(o, "      int r = m0 + wm0 + (lane >> 3) + 4 * i, c = n0 + wn0 + (lane & 7) + 8 * j;\n");
    fprintf(o, "      float v = acc[i][j];\n");
    gen_store(x, "      ");
    fprintf(o, "    }\n");
  }
}

/* ---- the kernels ----------------------------------------------------------------------- */

static void gen_kernel_head(const Gen *x) {
  FILE *o = x->o;
  const TileDecision *t = x->t;
  /* the occupancy the plan assumed: ptxas keeps registers within regs_per_sm / (threads·CTAs) */
  if (x->g->from_bufs)
    fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d, %d) %s(NncBufs nb) {\n"
               "  const NncGemmArgs p = %s_args(nb);\n", t->threads, t->ctas_per_sm, x->g->name, x->g->name);
  else
    fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d, %d) %s(NncGemmArgs p) {\n", t->threads,
            t->ctas_per_sm, x->g->name);
  fprintf(o, "  NNC_EXTERN_SMEM(nnc_smem);\n");
  fprintf(o, "  %s *As = (%s *)nnc_smem, *Bs = As + %d;\n", x->ty, x->ty, t->stages * x->a_stage);
  fprintf(o, "  int zb = blockIdx.z / %d, zs = blockIdx.z %% %d;\n  (void)zs;\n", t->split_k, t->split_k);
  fprintf(o, "  const %s *A = (const %s *)p.A + zb * p.bsa, *B = (const %s *)p.B + zb * p.bsb;\n", x->gty,
          x->gty, x->gty);
  fprintf(o, "  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n");
  fprintf(o, "  int m0 = blockIdx.y * %d, n0 = blockIdx.x * %d;\n", t->bm, t->bn);
  fprintf(o, "  int wm0 = (warp / %d) * %d, wn0 = (warp %% %d) * %d;\n", t->bn / t->wn, t->wm, t->bn / t->wn, t->wn);
  if (t->split_k > 1) {
    fprintf(o, "  int kbeg = zs * p.k_split;\n");
    fprintf(o, "  int kend = kbeg + p.k_split < p.K ? kbeg + p.k_split : p.K;\n");
  } else {
    fprintf(o, "  int kbeg = 0, kend = p.K;\n");
  }
  if (gen_tensor_cores(x))
    fprintf(o, "  float acc[%d][%d][4] = {};\n", x->mi, x->ni);
  else
    fprintf(o, "  float acc[%d][%d] = {};\n", x->tm, x->tn);
}

/* the cp.async ring: stages-1 slices in flight while one is computed */
static void gen_main_loop(const Gen *x) {
  FILE *o = x->o;
  const TileDecision *t = x->t;
  const char *nm = x->g->name;
  int st = t->stages;
  fprintf(o, "  int kt_n = kend > kbeg ? (kend - kbeg + %d) / %d : 0;\n", t->bk - 1, t->bk);
  fprintf(o, "  for (int s = 0; s < %d; s++) {\n", st - 1);
  fprintf(o, "    if (s < kt_n) %s_load(As + s * %d, Bs + s * %d, A, B, p, m0, n0, kbeg + s * %d, kend);\n",
          nm, x->a_stage, x->b_stage, t->bk);
  fprintf(o, "    nnc_cp_async_commit();\n  }\n");
  fprintf(o, "  for (int kt = 0; kt < kt_n; kt++) {\n");
  fprintf(o, "    nnc_cp_async_wait<%d>();\n    nnc_syncthreads();\n", st - 2);
  fprintf(o, "    int nk = kt + %d, ns = nk %% %d, cs = kt %% %d;\n", st - 1, st, st);
  fprintf(o, "    if (nk < kt_n) %s_load(As + ns * %d, Bs + ns * %d, A, B, p, m0, n0, kbeg + nk * %d, kend);\n",
          nm, x->a_stage, x->b_stage, t->bk);
  fprintf(o, "    nnc_cp_async_commit();\n");
  fprintf(o, "    %s_compute(As + cs * %d, Bs + cs * %d, acc, wm0, wn0, lane);\n  }\n", nm, x->a_stage, x->b_stage);
}

static void gen_reduce_kernel(const Gen *x) {
  FILE *o = x->o;
  fprintf(o, "/* split-K: adds the %d partial sums in slice order, then the epilogue */\n", x->t->split_k);
  if (x->g->from_bufs)
    fprintf(o, "extern \"C\" __global__ void __launch_bounds__(256) %s_reduce(NncBufs nb) {\n"
               "  const NncGemmArgs p = %s_args(nb);\n", x->g->name, x->g->name);
  else
    fprintf(o, "extern \"C\" __global__ void __launch_bounds__(256) %s_reduce(NncGemmArgs p) {\n", x->g->name);
  int s = x->t->split_k;
  fprintf(o, "  long i = (long)blockIdx.x * 256 + threadIdx.x, mn = (long)p.M * p.N;\n");
  fprintf(o, "  if (i >= mn * p.batch) return;\n");
  fprintf(o, "  int zb = (int)(i / mn);\n  long e = i %% mn;\n  int r = (int)(e / p.N), c = (int)(e %% p.N);\n");
  fprintf(o, "  float v = 0.0f;\n  for (int z = 0; z < %d; z++) v += p.work[((long)zb * %d + z) * mn + e];\n", s, s);
  fprintf(o, "  p.C[zb * p.bsc + %s] = %s_epi(v, r, c, zb, p);\n}\n\n", x->cidx, x->g->name);
}

int cuda_gemm_emit(FILE *out, const CudaGemm *g, char *err, size_t errn) {
  Gen x;
  if (gen_init(&x, out, g, err, errn)) return -1;
  const TileDecision *t = x.t;
  fprintf(out, "/* %s: %s, %s%s, block %dx%dx%d, warps %dx%d of %dx%d, %d stages, pad %d, split-K %d, %s */\n",
          g->name, t->mma, g->trans_a ? "A^T" : "A", g->trans_b ? "B^T" : "B", t->bm, t->bn, t->bk,
          t->bm / t->wm, t->bn / t->wn, t->wm, t->wn, t->stages, t->smem_pad, t->split_k,
          x.cvt ? "f32 rounded to 16 bits on load" : t->cp_async_a && t->cp_async_b ? "cp.async" : "predicated loads");
  gen_load_fn(&x);
  gen_compute_fn(&x);
  gen_epilogue_fn(&x);
  gen_kernel_head(&x);
  gen_main_loop(&x);
  gen_store_acc(&x);
  fprintf(out, "}\n\n");
  if (t->split_k > 1) gen_reduce_kernel(&x);
  return 0;
}

char *cuda_gemm_source(const CudaGemm *g, char *err, size_t errn) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    cuda_errf(err, errn, "out of memory");
    return NULL;
  }
  fputs(cuda_prelude_text(), f);
  int rc = cuda_gemm_emit(f, g, err, errn);
  if (fclose(f) || rc) {
    if (!rc) cuda_errf(err, errn, "out of memory");
    free(buf);
    return NULL;
  }
  return buf;
}

int64_t cuda_gemm_k_split(const CudaGemm *g, int64_t k) {
  const TileDecision *t = g->tile;
  if (t->split_k <= 1) return k;
  int64_t per = (k + t->split_k - 1) / t->split_k;
  return (per + t->bk - 1) / t->bk * t->bk;
}

int64_t cuda_gemm_work_bytes(const CudaGemm *g, int64_t m, int64_t n, int64_t batch) {
  return g->tile->split_k > 1 ? (int64_t)g->tile->split_k * batch * m * n * 4 : 0;
}

void cuda_gemm_launch(const CudaGemm *g, int64_t m, int64_t n, int64_t batch, CudaLaunch *main_k,
                      CudaLaunch *reduce) {
  const TileDecision *t = g->tile;
  memset(main_k, 0, sizeof *main_k);
  main_k->grid[0] = (unsigned)((n + t->bn - 1) / t->bn);
  main_k->grid[1] = (unsigned)((m + t->bm - 1) / t->bm);
  main_k->grid[2] = (unsigned)(t->split_k * batch);
  main_k->block[0] = (unsigned)t->threads, main_k->block[1] = main_k->block[2] = 1;
  main_k->smem = (size_t)t->smem;
  if (reduce) {
    memset(reduce, 0, sizeof *reduce);
    reduce->grid[0] = (unsigned)((batch * m * n + 255) / 256);
    reduce->grid[1] = reduce->grid[2] = 1;
    reduce->block[0] = 256, reduce->block[1] = reduce->block[2] = 1;
  }
}
