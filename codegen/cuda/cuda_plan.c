/* cuda_plan.c — the CUDA backend on the kernel plan (see cuda_plan.h): the target, and
 * the walk over a CgPlan that emits elementwise groups, GEMMs (cuda_gemm.c, tiles from the
 * plan's decisions), copies and node kernels (cuda_ops.c), with their launch table. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../passes/remat.h"
#include "cuda_plan.h"

enum { CUDA_EW_THREADS = 256, CUDA_EW_MAX_BLOCKS = 65535 };

void cuda_backend_target(CgTarget *t, const HwTarget *hw) {
  memset(t, 0, sizeof *t);
  t->name = "CUDA";
  for (int op = 0; op < OP_COUNT; op++)
    t->native[op] = cuda_op_defined(op) || (cuda_ew_template(op) != NULL);
  static const int ew_extra[] = {OP_INPUT, OP_PARAM, OP_RESHAPE, OP_MATMUL, OP_POWC, OP_CAST,
                                 OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE, OP_WHERE,
                                 OP_BROADCAST, OP_ASSIGN};
  for (size_t i = 0; i < sizeof ew_extra / sizeof ew_extra[0]; i++) t->native[ew_extra[i]] = true;
  t->dtypes = 1u << DT_F32 | 1u << DT_I32;
  t->conv = CG_CONV_DIRECT;
  t->vector_width = 32;
  t->epi_group = false; /* its GEMM and convolution epilogues: bias and relu; a group after
                           them stays an elementwise kernel (docs/cuda.md) */
  t->hw = hw;
}

int cuda_target_parse(const char *spec, char *arch, size_t archn, const HwTarget **hw, char *err,
                      size_t errn) {
  /* the builtin hardware whose tile model stands for each arch */
  static const struct {
    const char *arch, *hw;
  } map[] = {{"sm_80", "a100-sxm-80gb"}, {"sm_86", "a100-sxm-80gb"}, {"sm_89", "rtx-4090"},
             {"sm_90", "h100-sxm"}};
  const char *a = "sm_80";
  if (strncmp(spec, "cuda", 4) || (spec[4] && spec[4] != ':'))
    return cuda_errf(err, errn, "'%s' is not a CUDA target (cuda or cuda:sm_80|sm_86|sm_89|sm_90)", spec);
  if (spec[4] == ':') a = spec + 5;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(a, map[i].arch)) {
      snprintf(arch, archn, "%s", a);
      *hw = hw_find_builtin(map[i].hw);
      return *hw ? 0 : cuda_errf(err, errn, "no hardware description for %s", a);
    }
  return cuda_errf(err, errn, "unknown CUDA architecture '%s' (sm_80, sm_86, sm_89 or sm_90)", a);
}

int cuda_prec_parse(const char *name, CudaPrec *out) {
  static const char *names[] = {"f32", "tf32", "bf16", "f16"};
  for (int i = 0; i < 4; i++)
    if (!strcmp(name, names[i])) return *out = (CudaPrec)i, 0;
  return -1;
}

const char *cuda_prec_name(CudaPrec p) {
  return p == CUDA_PREC_TF32 ? "tf32" : p == CUDA_PREC_BF16 ? "bf16" : p == CUDA_PREC_F16 ? "f16" : "f32";
}

DType cuda_prec_dtype(CudaPrec p) {
  return p == CUDA_PREC_BF16 ? DT_BF16 : p == CUDA_PREC_F16 ? DT_F16 : DT_F32;
}

CudaPrec cuda_tile_prec(const TileDecision *d) {
  if (d->gemm.dt == DT_BF16) return CUDA_PREC_BF16;
  if (d->gemm.dt == DT_F16) return CUDA_PREC_F16;
  return d->gemm.tf32 ? CUDA_PREC_TF32 : CUDA_PREC_F32;
}

void cuda_tiles_precision(TilePlan *tp, const HwTarget *hw, CudaPrec prec) {
  for (int i = 0; prec != CUDA_PREC_F32 && i < tp->n; i++) {
    TileDecision *d = &tp->tiles[i];
    if (!d->valid || !d->gpu || d->gemm.dt != DT_F32) continue;
    TileGemm gm = d->gemm;
    gm.tf32 = prec == CUDA_PREC_TF32;
    gm.f32_in = prec == CUDA_PREC_BF16 || prec == CUDA_PREC_F16;
    if (gm.f32_in) gm.dt = cuda_prec_dtype(prec);
    tiles_choose(hw, &gm, d);
  }
}

static TilePlan *tiles_of(IrGraph *g, const HwTarget *hw, CudaPrec prec, Arena *a) {
  TilePlan *tp = pass_tiles(g, hw, a);
  cuda_tiles_precision(tp, hw, prec);
  return tp;
}

void cuda_tiles_plan(CudaTiles *t, IrGraph *fwd, IrGraph *train, const HwTarget *hw, CudaPrec prec) {
  t->a = arena_new();
  t->fwd = tiles_of(fwd, hw, prec, t->a);
  t->train = train ? tiles_of(train, hw, prec, t->a) : NULL;
}

void cuda_tiles_free(CudaTiles *t) {
  if (t->a) arena_free(t->a);
  memset(t, 0, sizeof *t);
}

int cuda_plan_table_add(CudaPlanTable *t, const char *name, const CudaLaunch *l, CudaLaunchOf of) {
  if (t->n == t->cap) {
    int cap = t->cap ? 2 * t->cap : 16;
    CudaPlanLaunch *v = realloc(t->v, (size_t)cap * sizeof *v);
    if (!v) return -1;
    t->v = v, t->cap = cap;
  }
  size_t len = strlen(name);
  if (len >= sizeof t->v[t->n].name) return -1; /* kernel names are short; never truncated */
  memcpy(t->v[t->n].name, name, len + 1);
  t->v[t->n].kernel = of.kernel, t->v[t->n].part = of.part;
  t->v[t->n].gemm = of.gemm, t->v[t->n].work = of.work, t->v[t->n].bytes = of.bytes;
  t->v[t->n++].l = *l;
  return 0;
}

void cuda_plan_launches(const CudaPlanTable *t, CgGpuLaunch *l) {
  for (int i = 0; i < t->n; i++) {
    const CudaPlanLaunch *v = &t->v[i];
    l[i] = (CgGpuLaunch){.name = v->name, .kernel = v->kernel, .part = v->part, .gemm = v->gemm,
                         .work = v->work, .bytes = v->bytes, .smem = v->l.smem};
    memcpy(l[i].grid, v->l.grid, sizeof l[i].grid);
    memcpy(l[i].block, v->l.block, sizeof l[i].block);
  }
}

void cuda_plan_table_free(CudaPlanTable *t) {
  free(t->v);
  free(t->sums);
  memset(t, 0, sizeof *t);
}

static const char *region_name(int region) {
  return region == RT_REGION_PARAMS ? "params" : region == RT_REGION_IO ? "io" : "arena";
}

/* a value in the plan's folded constants reads the table that consts_emit wrote before the
 * plan's kernels, named NNC_CONSTS while they are emitted */
void cuda_ptr_expr(char *buf, size_t n, const CgPlan *p, int node, const char *type) {
  const CgVal *v = &p->v[node];
  if (v->region == CG_REGION_CONST)
    snprintf(buf, n, "((%s *)(NNC_CONSTS + %lld))", type, (long long)v->offset);
  else
    snprintf(buf, n, "((%s *)(b.%s + %lld))", type, region_name(v->region), (long long)v->offset);
}

/* the plan's folded constants as a device table <prefix>_consts (bytes as 32-bit words; the
 * table's size is a multiple of 64 bytes), and NNC_CONSTS naming it */
static void consts_emit(FILE *o, const CgPlan *p, const char *prefix) {
  if (!p->consts_bytes) return;
  int64_t nw = (p->consts_bytes + 3) / 4;
  fprintf(o, "/* %lld bytes of constants folded at build time */\n", (long long)p->consts_bytes);
  fprintf(o, "__device__ alignas(64) const unsigned int %s_consts[%lld] = {", prefix, (long long)nw);
  for (int64_t i = 0; i < nw; i++) {
    unsigned int w = 0;
    int64_t left = p->consts_bytes - 4 * i;
    memcpy(&w, p->consts + 4 * i, (size_t)(left < 4 ? left : 4));
    fprintf(o, "%s0x%x", i % 8 ? ", " : (i ? ",\n  " : "\n  "), w);
  }
  fprintf(o, "};\n#define NNC_CONSTS ((const char *)%s_consts)\n\n", prefix);
}

/* a grid-stride launch over n items, CUDA_EW_THREADS per block */
static void ew_grid(int64_t n, CudaLaunch *l) {
  int64_t blocks = (n + CUDA_EW_THREADS - 1) / CUDA_EW_THREADS;
  memset(l, 0, sizeof *l);
  l->grid[0] = (unsigned)(blocks < 1 ? 1 : blocks > CUDA_EW_MAX_BLOCKS ? CUDA_EW_MAX_BLOCKS : blocks);
  l->grid[1] = l->grid[2] = 1;
  l->block[0] = CUDA_EW_THREADS, l->block[1] = l->block[2] = 1;
}

/* a float literal that is valid CUDA C for every value */
static void float_lit(char *buf, size_t n, double v) {
  float f = (float)v;
  if (isnan(f)) snprintf(buf, n, "nnc_f32_nan()");
  else if (isinf(f)) snprintf(buf, n, "%snnc_f32_inf()", f < 0 ? "-" : "");
  else snprintf(buf, n, "%.9ef", (double)f);
}

/* ---- elementwise groups ------------------------------------------------------------------ */

typedef struct EwSlot {
  int node;
  int64_t st[IR_MAX_RANK]; /* element stride per iteration dim (0: broadcast) */
} EwSlot;

static bool in_group(const CgPlan *p, int kid, int o) { return p->kof[o] == kid; }
static bool const_root(const CgPlan *p, int o) { return p->g->nodes[p->v[o].root].op == OP_CONST; }

/* operands read from memory with their broadcast strides against the iteration shape */
static int ew_slots(const CgPlan *p, const CgKernel *k, int kid, const CgVal *it, EwSlot *sl, int *ns,
                    Diag *d) {
  for (int m = 0; m < k->nmembers; m++) {
    const IrNode *n = &p->g->nodes[k->members[m]];
    for (int j = n->op == OP_ASSIGN ? 1 : 0; j < n->nin; j++) {
      int o = n->in[j];
      bool dup = false;
      for (int s = 0; s < *ns; s++) dup |= sl[s].node == o;
      if (dup || in_group(p, kid, o) || const_root(p, o)) continue;
      EwSlot *s = &sl[(*ns)++];
      s->node = o;
      const CgVal *ov = &p->v[o];
      int64_t acc = 1;
      for (int dd = it->rank - 1, od = ov->rank - 1; dd >= 0; dd--, od--) {
        int64_t sz = od >= 0 ? ov->shape[od] : 1;
        if (od >= 0 && sz != it->shape[dd] && sz != 1) {
          diag_error(d, n->loc, "CUDA code generation: %%%d: operand %%%d does not broadcast", k->members[m], o);
          return -1;
        }
        s->st[dd] = (od >= 0 && sz == it->shape[dd]) ? acc : 0;
        acc *= sz;
      }
    }
  }
  return 0;
}

/* the CUDA C name of operand o of a member */
static void ew_operand(char *buf, size_t n, const CgPlan *p, int kid, const EwSlot *sl, int ns, int o) {
  if (in_group(p, kid, o) && p->g->nodes[o].op != OP_CONST) {
    snprintf(buf, n, "v%d", o);
    return;
  }
  if (const_root(p, o)) {
    float_lit(buf, n, p->g->nodes[p->v[o].root].attr.value);
    return;
  }
  for (int s = 0; s < ns; s++)
    if (sl[s].node == o) snprintf(buf, n, "x%d", s);
}

static const char *ew_extra_template(const IrNode *n, char *buf, size_t bn) {
  switch (n->op) {
  case OP_LT: return "(%0 < %1 ? 1.0f : 0.0f)";
  case OP_LE: return "(%0 <= %1 ? 1.0f : 0.0f)";
  case OP_GT: return "(%0 > %1 ? 1.0f : 0.0f)";
  case OP_GE: return "(%0 >= %1 ? 1.0f : 0.0f)";
  case OP_EQ: return "(%0 == %1 ? 1.0f : 0.0f)";
  case OP_NE: return "(%0 != %1 ? 1.0f : 0.0f)";
  case OP_WHERE: return "(%0 != 0.0f ? %1 : %2)";
  case OP_BROADCAST: case OP_ASSIGN: return "%0";
  case OP_CAST: return n->type.dt == DT_I32 ? "truncf(%0)" : "%0";
  case OP_POWC: {
    double c = n->attr.value;
    if (c == 1) return "%0";
    if (c == 0) return "1.0f";
    if (c == 2) return "%0 * %0";
    if (c == 0.5) return "sqrtf(%0)";
    if (c == -1) return "1.0f / %0";
    char lit[48];
    float_lit(lit, sizeof lit, c);
    snprintf(buf, bn, "powf(%%0, %s)", lit);
    return buf;
  }
  default: return cuda_ew_template(n->op);
  }
}

/* one member: float vID = template(operands); false when the op has no CUDA form */
static bool ew_member(FILE *o, const CgPlan *p, int kid, const EwSlot *sl, int ns, int id) {
  const IrNode *n = &p->g->nodes[id];
  char tb[64], ops[3][48] = {"0.0f", "0.0f", "0.0f"};
  const char *t = n->op == OP_CONST ? NULL : ew_extra_template(n, tb, sizeof tb);
  if (n->op == OP_CONST) {
    float_lit(ops[0], sizeof ops[0], n->attr.value);
    t = "%0";
  }
  if (!t) return false;
  int first = n->op == OP_ASSIGN ? 1 : 0;
  for (int j = first; j < n->nin && j - first < 3; j++) ew_operand(ops[j - first], sizeof ops[0], p, kid, sl, ns, n->in[j]);
  fprintf(o, "    float v%d = (", id);
  for (const char *c = t; *c; c++) {
    if (c[0] == '%' && c[1] >= '0' && c[1] <= '2') fputs(ops[*++c - '0'], o);
    else fputc(*c, o);
  }
  fprintf(o, ");\n");
  return true;
}

static void ew_loads(FILE *o, const CgPlan *p, const CgVal *it, const EwSlot *sl, int ns) {
  for (int s = 0; s < ns; s++) fprintf(o, "    long long o%d = 0;\n", s);
  fprintf(o, "    long long r = i;\n");
  for (int dd = it->rank - 1; dd >= 0; dd--) {
    bool any = false;
    for (int s = 0; s < ns; s++) any |= sl[s].st[dd] != 0;
    if (!any) {
      if (dd > 0) fprintf(o, "    r /= %lldLL;\n", (long long)it->shape[dd]);
      continue;
    }
    fprintf(o, "    { long long c = r %% %lldLL; r /= %lldLL;", (long long)it->shape[dd], (long long)it->shape[dd]);
    for (int s = 0; s < ns; s++)
      if (sl[s].st[dd]) fprintf(o, " o%d += c * %lldLL;", s, (long long)sl[s].st[dd]);
    fprintf(o, " }\n");
  }
  fprintf(o, "    (void)r;\n");
  /* every load before any store: an in-place ASSIGN may overwrite an operand */
  for (int s = 0; s < ns; s++) {
    char ptr[96];
    bool i32 = p->g->nodes[sl[s].node].type.dt == DT_I32;
    cuda_ptr_expr(ptr, sizeof ptr, p, sl[s].node, i32 ? "const int" : "const float");
    fprintf(o, "    float x%d = (float)%s[o%d];\n", s, ptr, s);
  }
}

static int ew_emit(FILE *o, const CgPlan *p, const CgKernel *k, int kid, const char *name, CudaLaunch *l,
                   const char *guard, Diag *d) {
  const CgVal *it = &p->v[k->members[k->nmembers - 1]];
  EwSlot *sl = calloc((size_t)k->nmembers * IR_MAX_IN + 1, sizeof *sl);
  if (!sl) return diag_error(d, p->g->nodes[k->node].loc, "out of memory"), -1;
  int ns = 0, rc = ew_slots(p, k, kid, it, sl, &ns, d);
  if (!rc) {
    fprintf(o, "/* %s: elementwise group of %d ops over %lld elements */\n", name, k->nmembers, (long long)it->numel);
    fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncBufs b) {\n", CUDA_EW_THREADS, name);
    if (guard) fprintf(o, "%s", guard);
    fprintf(o, "  for (long long i = (long long)blockIdx.x * %d + threadIdx.x; i < %lldLL;"
               " i += (long long)gridDim.x * %d) {\n", CUDA_EW_THREADS, (long long)it->numel, CUDA_EW_THREADS);
    ew_loads(o, p, it, sl, ns);
  }
  for (int m = 0; !rc && m < k->nmembers; m++)
    if (!ew_member(o, p, kid, sl, ns, k->members[m])) {
      const IrNode *n = &p->g->nodes[k->members[m]];
      diag_error(d, n->loc, "CUDA code generation: no elementwise form for op %s", ir_op_name(n->op));
      rc = -1;
    }
  for (int m = 0; !rc && m < k->nmembers; m++) {
    int id = k->members[m];
    const CgVal *v = &p->v[id];
    if (!v->stored || v->region == CG_REGION_NONE) continue;
    bool i32 = p->g->nodes[id].type.dt == DT_I32;
    char ptr[96];
    cuda_ptr_expr(ptr, sizeof ptr, p, id, i32 ? "int" : "float");
    fprintf(o, "    %s[i] = %sv%d;\n", ptr, i32 ? "(int)" : "", id);
  }
  if (!rc) fprintf(o, "  }\n}\n\n");
  ew_grid(it->numel, l);
  free(sl);
  return rc;
}

/* ---- GEMM -------------------------------------------------------------------------------- */

typedef struct GemmView {
  int64_t M, N, K, lda, ldb, batch, bsa, bsb;
  bool ta, tb;
} GemmView;

/* the plan's matmul as one batched GEMM launch: the batch folded into M, or uniform batch
 * strides (0 for an operand broadcast over the batch); -1 for other broadcasts */
static int gemm_view(const CgPlan *p, const CgKernel *k, GemmView *g) {
  const IrNode *n = &p->g->nodes[k->node];
  const CgVal *va = &p->v[n->in[0]], *vb = &p->v[n->in[1]], *vo = &p->v[k->out];
  memset(g, 0, sizeof *g);
  g->ta = n->attr.trans_a && va->rank >= 2, g->tb = n->attr.trans_b && vb->rank >= 2;
  if (va->rank == 1) g->M = 1, g->K = va->shape[0], g->lda = g->K;
  else {
    int64_t r = va->shape[va->rank - 2], c = va->shape[va->rank - 1];
    g->M = g->ta ? c : r, g->K = g->ta ? r : c, g->lda = c;
  }
  if (vb->rank == 1) g->N = 1, g->ldb = 1;
  else {
    int64_t r = vb->shape[vb->rank - 2], c = vb->shape[vb->rank - 1];
    g->N = g->tb ? r : c, g->ldb = c;
  }
  int brank = vo->rank - (va->rank > 1) - (vb->rank > 1), abr = va->rank - 2, bbr = vb->rank - 2;
  g->batch = 1;
  for (int dd = 0; dd < brank; dd++) g->batch *= vo->shape[dd];
  int64_t na = 1, nbb = 1;
  for (int dd = 0; dd < abr; dd++) na *= va->shape[dd];
  for (int dd = 0; dd < bbr; dd++) nbb *= vb->shape[dd];
  if (g->batch > 1 && nbb == 1 && !g->ta && va->rank > 2) { /* the batch folds into M */
    g->M *= g->batch, g->batch = 1;
    return 0;
  }
  if (g->batch == 1) return 0;
  if ((na != 1 && na != g->batch) || (nbb != 1 && nbb != g->batch)) return -1;
  g->bsa = na == 1 ? 0 : g->M * g->K;
  g->bsb = nbb == 1 ? 0 : g->K * g->N;
  return 0;
}

static void gemm_args_fn(FILE *o, const CgPlan *p, const CgKernel *k, const char *name, const GemmView *g,
                         const CudaGemm *cg, int64_t ls_off) {
  const IrNode *n = &p->g->nodes[k->node];
  char pa[96], pb[96], pc[96], pbias[96] = "0";
  cuda_ptr_expr(pa, sizeof pa, p, n->in[0], "const void");
  cuda_ptr_expr(pb, sizeof pb, p, n->in[1], "const void");
  cuda_ptr_expr(pc, sizeof pc, p, k->out, "float");
  if (k->bias) cuda_ptr_expr(pbias, sizeof pbias, p, k->bias_node, "const float");
  fprintf(o, "NNC_DEV NncGemmArgs %s_args(const NncBufs &b) {\n  NncGemmArgs p = {};\n", name);
  fprintf(o, "  p.A = %s; p.B = %s; p.C = %s; p.bias = %s; p.R = 0; p.work = (float *)b.work;\n", pa, pb, pc, pbias);
  fprintf(o, "  p.bsa = %lldLL; p.bsb = %lldLL; p.bsc = %lldLL; p.bsr = 0;\n", (long long)g->bsa, (long long)g->bsb,
          (long long)(g->M * g->N));
  fprintf(o, "  p.M = %lld; p.N = %lld; p.K = %lld; p.lda = %lld; p.ldb = %lld; p.ldc = %lld; p.ldr = 0;\n",
          (long long)g->M, (long long)g->N, (long long)g->K, (long long)g->lda, (long long)g->ldb, (long long)g->N);
  fprintf(o, "  p.k_split = %lld; p.batch = %lld;\n", (long long)cuda_gemm_k_split(cg, g->K), (long long)g->batch);
  if (cg->scale_a || cg->scale_b) /* a power of two: scaling and unscaling are exact */
    fprintf(o, "  p.scale = ((const float *)(b.params + %lld))[1]; p.inv_scale = 1.0f / p.scale;\n", (long long)ls_off);
  fprintf(o, "  return p;\n}\n");
}

/* the arguments function, the kernel(s), their launches */
static int gemm_finish(FILE *o, const CgPlan *p, const CgKernel *k, const GemmView *g, const CudaGemm *cg,
                       CudaPlanTable *tab, int64_t ls_off, Diag *d) {
  const IrNode *n = &p->g->nodes[k->node];
  gemm_args_fn(o, p, k, cg->name, g, cg, ls_off);
  char err[256];
  if (cuda_gemm_emit(o, cg, err, sizeof err)) {
    diag_error(d, n->loc, "CUDA code generation: %s %%%d: %s", ir_op_name(n->op), k->node, err);
    return -1;
  }
  if (cuda_plan_gemm_add(tab, cg, g->M, g->N, g->batch, (int)(k - p->k)))
    return diag_error(d, n->loc, "out of memory, or a kernel name over 95 characters"), -1;
  return 0;
}

int cuda_plan_gemm_add(CudaPlanTable *tab, const CudaGemm *cg, int64_t m, int64_t n, int64_t batch, int kernel) {
  CudaLaunch main_k, red;
  cuda_gemm_launch(cg, m, n, batch, &main_k, &red);
  int64_t work = cuda_gemm_work_bytes(cg, m, n, batch);
  if (work > tab->work_bytes) tab->work_bytes = work;
  char rn[80];
  snprintf(rn, sizeof rn, "%s_reduce", cg->name);
  if (cuda_plan_table_add(tab, cg->name, &main_k, (CudaLaunchOf){kernel, 0, true, work, 0}) ||
      (cg->tile->split_k > 1 && cuda_plan_table_add(tab, rn, &red, (CudaLaunchOf){kernel, 1, false, work, 0})))
    return -1;
  return 0;
}

/* a tile decision the f32 kernels can build: -1 after a diagnostic otherwise */
static int gemm_tile_ok(const CgPlan *p, const CgKernel *k, Diag *d) {
  const IrNode *n = &p->g->nodes[k->node];
  if (!k->tile || !k->tile->valid || !k->tile->gpu) {
    diag_error(d, n->loc, "CUDA code generation: %s %%%d has no GPU tile decision", ir_op_name(n->op), k->node);
    return -1;
  }
  if (k->tile->gemm.dt != DT_F32 && !k->tile->gemm.f32_in) {
    diag_error(d, n->loc, "CUDA code generation: %s %%%d: tiles for 16-bit operands, the values are f32",
               ir_op_name(n->op), k->node);
    return -1;
  }
  return 0;
}

bool cuda_plan_is_gradient(const CgPlan *p, int node) {
  const IrNode *n = &p->g->nodes[node];
  return n->phase == PH_BWD && !remat_is_recompute(n);
}

/* with loss scaling (ls_off >= 0) a backward GEMM scales its gradient operand (the first
 * one, cuda_plan_is_gradient) before rounding it to f16, and unscales the product */
static int gemm_emit(FILE *o, const CgPlan *p, const CgKernel *k, const char *name, CudaPlanTable *tab,
                     int64_t ls_off, Diag *d) {
  const IrNode *n = &p->g->nodes[k->node];
  GemmView g;
  if (gemm_tile_ok(p, k, d)) return -1;
  if (gemm_view(p, k, &g)) {
    diag_error(d, n->loc, "CUDA code generation: matmul %%%d broadcasts its batch dims in a way one launch cannot", k->node);
    return -1;
  }
  if (g.M * g.N * g.batch == 0) return 0;
  CudaGemm cg = {.name = name, .prec = cuda_tile_prec(k->tile), .trans_a = g.ta, .trans_b = g.tb,
                 .epilogue = (k->bias ? CUDA_EPI_BIAS : 0u) | (k->relu ? CUDA_EPI_RELU : 0u),
                 .tile = k->tile, .from_bufs = true};
  if (ls_off >= 0) {
    cg.scale_a = cuda_plan_is_gradient(p, n->in[0]);
    cg.scale_b = !cg.scale_a && cuda_plan_is_gradient(p, n->in[1]);
  }
  return gemm_finish(o, p, k, &g, &cg, tab, ls_off, d);
}

/* ---- copies, and the walk ---------------------------------------------------------------- */

static void copy_emit(FILE *o, const CgPlan *p, const CgKernel *k, const char *name, CudaLaunch *l,
                      const char *guard) {
  char src[96];
  bool words = k->copy_bytes % 4 == 0;
  int64_t n = words ? k->copy_bytes / 4 : k->copy_bytes;
  const char *ty = words ? "int" : "char";
  cuda_ptr_expr(src, sizeof src, p, k->copy_src, ty);
  fprintf(o, "/* %s: copy of %lld bytes */\n", name, (long long)k->copy_bytes);
  fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncBufs b) {\n", CUDA_EW_THREADS, name);
  if (guard) fprintf(o, "%s", guard);
  fprintf(o, "  %s *dst = (%s *)(b.%s + %lld);\n", ty, ty, region_name(k->copy_dst_region), (long long)k->copy_dst_offset);
  fprintf(o, "  for (long long i = (long long)blockIdx.x * %d + threadIdx.x; i < %lldLL;"
             " i += (long long)gridDim.x * %d)\n    dst[i] = %s[i];\n}\n\n",
          CUDA_EW_THREADS, (long long)n, CUDA_EW_THREADS, src);
  ew_grid(n, l);
}

static bool kernel_empty(const CgPlan *p, const CgKernel *k) {
  if (k->kind == CGK_COPY) return k->copy_bytes <= 0;
  if (k->kind == CGK_EW) return p->v[k->members[k->nmembers - 1]].numel == 0;
  if (k->kind == CGK_NODE) {
    int op = p->g->nodes[k->node].op;
    return op == OP_INPUT || op == OP_PARAM || op == OP_RESHAPE;
  }
  return false;
}

/* ---- f16 loss scaling (docs/cuda.md "Loss scaling") ------------------------------------- */

/* what the training step's kernels need to know: the state's offset in params, the
 * gradients to check; off < 0: no loss scaling */
typedef struct LsCtx {
  const CudaLossScale *ls;
  int64_t off;
  const CgGrad *grads;
  int ngrads;
} LsCtx;

/* the state: words [magic, scale (f32), good steps, inf/nan seen in this step] */
#define CUDA_LS_MAGIC RT_LOSS_SCALE_MAGIC
#define CUDA_LS_STATE(b) "((unsigned *)(" b ".params + %lldLL))"

int64_t cuda_loss_scale_offset(const CgModelPlan *P) { return (P->params_bytes + 63) / 64 * 64; }

int64_t cuda_params_bytes(const CgModelPlan *P, const CudaLossScale *ls) {
  return ls && ls->on ? cuda_loss_scale_offset(P) + 64 : P->params_bytes;
}

/* one thread: a state that is not valid yet gets the initial scale; a static scale is
 * restored every step; the step's inf/nan flag is cleared */
static void ls_begin_emit(FILE *o, const LsCtx *c, const char *prefix, CudaPlanTable *tab, bool *oom) {
  char name[96], init[48];
  CudaLaunch l = {{1, 1, 1}, {32, 1, 1}, 0};
  snprintf(name, sizeof name, "%s_ls_begin", prefix);
  float_lit(init, sizeof init, c->ls->init);
  fprintf(o, "/* %s: loss scaling (%s, initial scale %s) */\n", name, c->ls->dynamic ? "dynamic" : "static", init);
  fprintf(o, "extern \"C\" __global__ void __launch_bounds__(32) %s(NncBufs b) {\n", name);
  fprintf(o, "  unsigned *st = " CUDA_LS_STATE("b") ";\n  if (threadIdx.x) return;\n", (long long)c->off);
  if (c->ls->dynamic)
    fprintf(o, "  if (st[0] != 0x%xu) st[0] = 0x%xu, ((float *)st)[1] = %s, st[2] = 0u;\n", CUDA_LS_MAGIC,
            CUDA_LS_MAGIC, init);
  else
    fprintf(o, "  st[0] = 0x%xu, ((float *)st)[1] = %s;\n", CUDA_LS_MAGIC, init);
  fprintf(o, "  st[3] = 0u;\n}\n\n");
  *oom |= cuda_plan_table_add(tab, name, &l, (CudaLaunchOf){-1, 0, false, 0, 16}) != 0;
}

/* every gradient buffer: an element that is inf or NaN sets the step's flag */
static void ls_check_emit(FILE *o, const LsCtx *c, const char *prefix, CudaPlanTable *tab, bool *oom) {
  for (int i = 0; i < c->ngrads; i++) {
    char name[96];
    CudaLaunch l;
    snprintf(name, sizeof name, "%s_ls_check%d", prefix, i);
    fprintf(o, "extern \"C\" __global__ void __launch_bounds__(%d) %s(NncBufs b) {\n", CUDA_EW_THREADS, name);
    fprintf(o, "  const float *g = (const float *)(b.arena + %lldLL);\n", (long long)c->grads[i].offset);
    fprintf(o, "  for (long long i = (long long)blockIdx.x * %d + threadIdx.x; i < %lldLL; i += (long long)gridDim.x * %d)\n"
               "    if (!(fabsf(g[i]) <= 3.40282347e38f)) " CUDA_LS_STATE("b") "[3] = 1u;\n}\n\n",
            CUDA_EW_THREADS, (long long)c->grads[i].numel, CUDA_EW_THREADS, (long long)c->off);
    ew_grid(c->grads[i].numel, &l);
    *oom |= cuda_plan_table_add(tab, name, &l, (CudaLaunchOf){-1, 0, false, 0, 4 * c->grads[i].numel}) != 0;
  }
}

/* one thread: after a step with inf/nan a dynamic scale halves (not below 2^-24); after
 * CUDA_LS_GROWTH good steps in a row it doubles */
static void ls_end_emit(FILE *o, const LsCtx *c, const char *prefix, CudaPlanTable *tab, bool *oom) {
  char name[96];
  CudaLaunch l = {{1, 1, 1}, {32, 1, 1}, 0};
  snprintf(name, sizeof name, "%s_ls_end", prefix);
  fprintf(o, "extern \"C\" __global__ void __launch_bounds__(32) %s(NncBufs b) {\n", name);
  fprintf(o, "  unsigned *st = " CUDA_LS_STATE("b") ";\n  float *scale = (float *)st + 1;\n", (long long)c->off);
  fprintf(o, "  if (threadIdx.x) return;\n");
  if (c->ls->dynamic)
    fprintf(o, "  if (st[3]) {\n    if (*scale > 0x1p-24f) *scale *= 0.5f;\n    st[2] = 0u;\n"
               "  } else if (++st[2] >= %du) {\n    *scale *= 2.0f;\n    st[2] = 0u;\n  }\n", CUDA_LS_GROWTH);
  fprintf(o, "}\n\n");
  *oom |= cuda_plan_table_add(tab, name, &l, (CudaLaunchOf){-1, 0, false, 0, 16}) != 0;
}

static int plan_kernels(FILE *out, const CgPlan *p, const char *prefix, CudaPlanTable *tab, const LsCtx *c,
                        Diag *d);

int cuda_plan_emit(FILE *out, const CgPlan *p, const char *prefix, CudaPlanTable *tab, Diag *d) {
  LsCtx none = {.off = -1};
  consts_emit(out, p, prefix);
  int rc = plan_kernels(out, p, prefix, tab, &none, d);
  if (p->consts_bytes) fprintf(out, "#undef NNC_CONSTS\n\n");
  return rc;
}

/* the kernels of p; with loss scaling (c->off >= 0): begin, the plan's kernels (backward GEMMs
 * scaled), the gradient checks at the split, the optimizer kernels guarded by the flag, end */
static int plan_kernels(FILE *out, const CgPlan *p, const char *prefix, CudaPlanTable *tab, const LsCtx *c,
                        Diag *d) {
  bool ls = c->off >= 0, oom = false;
  char guard[160];
  snprintf(guard, sizeof guard, "  if (" CUDA_LS_STATE("b") "[3]) return; /* inf/nan: step skipped */\n",
           (long long)c->off);
  if (ls) ls_begin_emit(out, c, prefix, tab, &oom);
  for (int ki = 0; ki < p->nk; ki++) {
    const CgKernel *k = &p->k[ki];
    if (ls && ki == p->split) ls_check_emit(out, c, prefix, tab, &oom);
    if (kernel_empty(p, k)) continue;
    char name[64];
    if (!cuda_kernel_name(name, sizeof name, prefix, ki, "_gemm")) /* the longest form */
      return diag_error(d, p->g->loc, "CUDA code generation: kernel names of '%s' too long", prefix), -1;
    cuda_kernel_name(name, sizeof name, prefix, ki, "");
    CudaLaunch l;
    int rc;
    bool guarded = ls && ki >= p->split && (k->kind == CGK_EW || (k->kind == CGK_COPY && k->copy_dst_region == RT_REGION_PARAMS));
    if (ls && ki >= p->split && k->kind != CGK_EW && k->kind != CGK_COPY) {
      diag_error(d, p->g->nodes[k->node].loc, "loss scaling: optimizer kernel %d is not elementwise", ki);
      return -1;
    }
    if (k->sync_stats) {
      if (cuda_syncbn_emit(out, p, k, prefix, ki, tab, d)) return -1;
      continue;
    }
    if (k->kind == CGK_GEMM) {
      cuda_kernel_name(name, sizeof name, prefix, ki, "_gemm"); /* fits: checked above */
      if (gemm_emit(out, p, k, name, tab, c->off, d)) return -1;
      continue;
    }
    if (k->kind == CGK_CONV) {
      if (cuda_conv_emit(out, p, k, prefix, ki, tab, c->off, d)) return -1;
      continue;
    }
    if (k->kind == CGK_COPY) copy_emit(out, p, k, name, &l, guarded ? guard : NULL), rc = 0;
    else if (k->kind == CGK_EW) rc = ew_emit(out, p, k, ki, name, &l, guarded ? guard : NULL, d);
    else rc = cuda_node_emit(out, p, k, name, &l, &tab->work_bytes, d);
    if (rc) return -1;
    if (l.grid[0] == 0) continue; /* nothing to launch (an empty node) */
    if (cuda_plan_table_add(tab, name, &l, (CudaLaunchOf){ki, 0, false, 0, 0})) return diag_error(d, p->g->nodes[k->node].loc, "out of memory"), -1;
  }
  if (ls && p->split >= p->nk) ls_check_emit(out, c, prefix, tab, &oom);
  if (ls) ls_end_emit(out, c, prefix, tab, &oom);
  if (oom) return diag_error(d, p->g->loc, "out of memory"), -1;
  return 0;
}

/* ---- the model's source ------------------------------------------------------------------ */

static void emu_table(FILE *out, const CudaPlanTable *t, const char *name) {
  fprintf(out, "static const NncEmuLaunch %s_launches[] = {\n", name);
  for (int i = 0; i < t->n; i++) {
    const CudaLaunch *l = &t->v[i].l;
    fprintf(out, "    {%s, \"%s\", dim3(%u, %u, %u), dim3(%u, %u, %u), %zu},\n", t->v[i].name, t->v[i].name,
            l->grid[0], l->grid[1], l->grid[2], l->block[0], l->block[1], l->block[2], l->smem);
  }
  fprintf(out, "    {0, 0, dim3(0, 0, 0), dim3(0, 0, 0), 0}};\n");
  fprintf(out, "static const long long %s_work_bytes = %lldLL;\n", name, (long long)t->work_bytes);
}

int cuda_model_source(FILE *out, const CgModelPlan *P, const char *name, bool train,
                      CudaPlanTable *fwd, CudaPlanTable *trn, Diag *d) {
  return cuda_model_source_ls(out, P, name, train, fwd, trn, NULL, d);
}

/* the training step's kernels, with loss scaling when ls asks for it */
static int train_emit(FILE *out, const CgModelPlan *P, const char *prefix, CudaPlanTable *trn,
                      const CudaLossScale *ls, Diag *d) {
  if (!ls || !ls->on) return cuda_plan_emit(out, &P->pt, prefix, trn, d);
  if (!P->split_ok) {
    diag_error(d, P->pt.g->loc, "loss scaling needs a training step whose gradients lie in the arena before "
                                "the optimizer step (this model's does not)");
    return -1;
  }
  LsCtx c = {.ls = ls, .off = cuda_loss_scale_offset(P), .grads = P->grads, .ngrads = P->ngrads};
  consts_emit(out, &P->pt, prefix);
  int rc = plan_kernels(out, &P->pt, prefix, trn, &c, d);
  if (P->pt.consts_bytes) fprintf(out, "#undef NNC_CONSTS\n\n");
  return rc;
}

int cuda_model_source_ls(FILE *out, const CgModelPlan *P, const char *name, bool train, CudaPlanTable *fwd,
                         CudaPlanTable *trn, const CudaLossScale *ls, Diag *d) {
  char pf[64], pt[64];
  snprintf(pf, sizeof pf, "%s_fwd", name);
  snprintf(pt, sizeof pt, "%s_train", name);
  fputs(cuda_prelude_text(), out);
  fputs(cuda_ops_text(), out);
  if (P->have_pf && cuda_plan_emit(out, &P->pf, pf, fwd, d)) return -1;
  if (train && P->have_pt && train_emit(out, P, pt, trn, ls, d)) return -1;
  fprintf(out, "#ifdef NNC_CUDA_EMU\n"
               "struct NncEmuLaunch {\n  void (*fn)(NncBufs);\n  const char *name;\n"
               "  dim3 grid, block;\n  size_t smem;\n};\n");
  if (P->have_pf) emu_table(out, fwd, pf);
  if (train && P->have_pt) emu_table(out, trn, pt);
  /* one model per source: fixed entry names for a host that loads it (tests, cuda-emu) */
  bool t = train && P->have_pt;
  char sel[200];
  snprintf(sel, sizeof sel, "train ? %s%s : %s%s", t ? pt : "0", t ? "_launches" : "", P->have_pf ? pf : "0",
           P->have_pf ? "_launches" : "");
  fprintf(out, "extern \"C\" int nnc_emu_run(int train, NncBufs b, int order) {\n"
               "  const NncEmuLaunch *t = %s;\n"
               "  if (!t) return -1;\n"
               "  nnc_emu_set_order((nnc_emu::Order)order);\n"
               "  for (; t->fn; t++) nnc_emu_launch(t->fn, t->grid, t->block, t->smem, b);\n"
               "  return 0;\n}\n", sel);
  /* each launch timed by the host clock (per-kernel profiling of cuda-emu programs) */
  fprintf(out, "extern \"C\" int nnc_emu_run_timed(int train, NncBufs b, long long *ns) {\n"
               "  const NncEmuLaunch *t = %s;\n"
               "  if (!t) return -1;\n"
               "  nnc_emu_set_order((nnc_emu::Order)0);\n"
               "  for (int i = 0; t[i].fn; i++) {\n"
               "    struct timespec a, z;\n"
               "    clock_gettime(CLOCK_MONOTONIC, &a);\n"
               "    nnc_emu_launch(t[i].fn, t[i].grid, t[i].block, t[i].smem, b);\n"
               "    clock_gettime(CLOCK_MONOTONIC, &z);\n"
               "    ns[i] = (long long)(z.tv_sec - a.tv_sec) * 1000000000LL + (z.tv_nsec - a.tv_nsec);\n"
               "  }\n  return 0;\n}\n", sel);
  fprintf(out, "extern \"C\" long long nnc_emu_work_bytes(int train) {\n"
               "  return train ? %lldLL : %lldLL;\n}\n", (long long)(t ? trn->work_bytes : 0),
          (long long)fwd->work_bytes);
  fprintf(out, "#endif\n");
  return 0;
}

void cuda_plan_table_print(FILE *out, const CudaPlanTable *t, const char *title) {
  fprintf(out, "/* launch table: %s (%d launches, split-K workspace %lld bytes)\n", title, t->n,
          (long long)t->work_bytes);
  for (int i = 0; i < t->n; i++) {
    const CudaLaunch *l = &t->v[i].l;
    fprintf(out, " *   %-28s grid %u x %u x %u, block %u, smem %zu\n", t->v[i].name, l->grid[0], l->grid[1],
            l->grid[2], l->block[0], l->smem);
  }
  fprintf(out, " */\n");
}
