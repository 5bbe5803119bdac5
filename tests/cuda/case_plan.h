/* case_plan.h — a test case's tile decision and kernel description (C only). */
#ifndef NN_TESTS_CUDA_CASE_PLAN_H
#define NN_TESTS_CUDA_CASE_PLAN_H
#include <stdio.h>
#include <string.h>

#include "../../codegen/cuda/cuda_gen.h"
#include "cuda_cases.h"

/* plans case c with the tiles pass and fills g (name points into namebuf); 0 or -1 */
static inline int case_plan(const CudaCase *c, TileDecision *d, CudaGemm *g, char *namebuf, size_t n) {
  const HwTarget *hw = hw_find_builtin(c->target);
  if (!hw) return -1;
  static const DType dts[] = {DT_F32, DT_F32, DT_BF16, DT_F16};
  TileGemm gm = {.m = c->pm, .n = c->pn, .k = c->pk, .batch = c->batch ? c->batch : 1, .dt = dts[c->prec],
                 .trans_a = c->trans_a, .trans_b = c->trans_b, .tf32 = c->prec == CUDA_PREC_TF32,
                 .f32_in = c->f32_in != 0};
  tiles_choose(hw, &gm, d);
  snprintf(namebuf, n, "nnc_gemm_%s", c->name);
  memset(g, 0, sizeof *g);
  g->name = namebuf, g->prec = (CudaPrec)c->prec, g->trans_a = c->trans_a, g->trans_b = c->trans_b;
  g->epilogue = c->epi, g->tile = d;
  return 0;
}
/* the kernel of an elementwise case; steps into st[4]. 0 or -1 (an unknown op name) */
static inline int case_ew(const CudaEwCase *c, CudaEwStep st[4], CudaEw *e) {
  for (int j = 0; j < c->nsteps; j++) {
    st[j].op = ir_op_find(c->ops[j]), st[j].a = c->a[j], st[j].b = c->b[j];
    if (st[j].op < 0) return -1;
  }
  *e = (CudaEw){.name = c->name, .ninputs = c->ninputs, .steps = st, .nsteps = c->nsteps,
                .vec4 = !c->misalign, .threads = c->threads};
  return 0;
}

static inline int case_red(const CudaRedCase *c, CudaReduce *r) {
  *r = (CudaReduce){.name = c->name, .op = ir_op_find(c->op), .vec4 = c->cols % 4 == 0, .threads = c->threads};
  return r->op < 0 ? -1 : 0;
}

/* products in the case's launch, and B's batch stride in elements */
static inline long case_batch(const CudaCase *c) { return c->batch ? c->batch : 1; }
static inline long case_bsb(const CudaCase *c) { return c->bcast_b ? 0 : c->k * c->n; }
#endif
