/* model_kernels.c — the CUDA GEMM kernels nnc builds for a model's matmuls, as the tests
 * see them: `model_kernels FILE.nn TARGET` plans the forward graph the way `nnc cost`
 * does (matmul-chain reassociation, then the tiles pass at the file's dims), generates every
 * matmul's kernel, and prints per node the geometry read back from the kernel text:
 *   NODE bm bn bk wm wn stages split threads ctas */
#include <stdlib.h>
#include <string.h>

#include "../../frontend/frontend.h"
#include "../../passes/cost.h"
#include "cuda_gen.h"

static CudaPrec prec_of(DType dt) {
  return dt == DT_BF16 ? CUDA_PREC_BF16 : dt == DT_F16 ? CUDA_PREC_F16 : CUDA_PREC_F32;
}

/* the geometry as the generated text states it (header comment and launch bounds) */
static int print_kernel(int node, const char *src) {
  int bm, bn, bk, wy, wx, wm, wn, st, pad, split, th, ctas;
  const char *h = strstr(src, ", block "), *lb = strstr(src, "__launch_bounds__(");
  if (!h || !lb || sscanf(h, ", block %dx%dx%d, warps %dx%d of %dx%d, %d stages, pad %d, split-K %d", &bm, &bn,
                          &bk, &wy, &wx, &wm, &wn, &st, &pad, &split) != 10 ||
      sscanf(lb, "__launch_bounds__(%d, %d)", &th, &ctas) != 2)
    return -1;
  printf("%d %d %d %d %d %d %d %d %d %d\n", node, bm, bn, bk, wm, wn, st, split, th, ctas);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) return fprintf(stderr, "usage: model_kernels FILE.nn TARGET\n"), 2;
  const HwTarget *hw = hw_find_builtin(argv[2]);
  Diag *d = diag_new(stderr);
  IrModule *m = hw ? fe_compile_file(argv[1], &(FeOptions){0}, d) : NULL;
  if (!m || m->ngraphs < 1) return fprintf(stderr, "model_kernels: cannot plan %s\n", argv[1]), 1;
  SimplifyLog log = {0};
  IrGraph *g = pass_reassoc_matmul(m->graphs[0], &log);
  TilePlan *tp = pass_tiles(g, hw, NULL);
  int rc = 0;
  for (int i = 0; i < g->nnodes && !rc; i++) {
    TileDecision *t = &tp->tiles[i];
    if (!t->valid || g->nodes[i].op != OP_MATMUL) continue;
    char name[32], err[256];
    snprintf(name, sizeof name, "nnc_gemm_%d", i);
    CudaGemm cg = {.name = name, .prec = prec_of(t->gemm.dt), .trans_a = t->gemm.trans_a,
                   .trans_b = t->gemm.trans_b, .tile = t};
    char *src = cuda_gemm_source(&cg, err, sizeof err);
    if (!src) fprintf(stderr, "model_kernels: node %d: %s\n", i, err), rc = 1;
    else if (print_kernel(i, src)) fprintf(stderr, "model_kernels: node %d: no geometry in the kernel\n", i), rc = 1;
    free(src);
  }
  ir_module_free(m);
  diag_free(d);
  return rc;
}
