/* test_cuda_gen.c — the CUDA generators refuse what they cannot build, with a clear error
 * (never a silent substitute), and kernel text holds no inline PTX (only the prelude does). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../codegen/cuda/cuda_gen.h"

static TileDecision plan(DType dt, bool tf32) {
  TileGemm gm = {.m = 4096, .n = 4096, .k = 4096, .batch = 1, .dt = dt, .tf32 = tf32};
  TileDecision d;
  tiles_choose(hw_find_builtin("a100"), &gm, &d);
  return d;
}

static char *emit(const CudaGemm *g, char *err, size_t n) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  int rc = cuda_gemm_emit(f, g, err, n);
  fclose(f);
  if (rc) free(buf), buf = NULL;
  return buf;
}

START_TEST(t_gemm_refuses) {
  char err[256];
  TileDecision d = plan(DT_F32, false);
  CudaGemm g = {.name = "k", .prec = CUDA_PREC_BF16, .tile = &d};
  ck_assert_ptr_null(emit(&g, err, sizeof err)); /* the plan is FMA, the precision wants MMA */
  ck_assert_ptr_nonnull(strstr(err, "the precision needs mma.sync m16n8k16"));
  d = plan(DT_BF16, false);
  g.prec = CUDA_PREC_BF16;
  d.wn = 48;
  ck_assert_ptr_null(emit(&g, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "does not divide block tile"));
  d = plan(DT_BF16, false);
  d.smem += 16;
  ck_assert_ptr_null(emit(&g, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "shared memory"));
  g.tile = NULL;
  ck_assert_ptr_null(emit(&g, err, sizeof err));
  ck_assert_ptr_nonnull(strstr(err, "no GPU tile decision"));
}
END_TEST

/* kernels call the prelude's wrappers; the PTX lives in the prelude alone */
START_TEST(t_no_inline_ptx) {
  char err[256];
  for (int p = 0; p < 4; p++) {
    TileDecision d = plan(p >= CUDA_PREC_BF16 ? (p == CUDA_PREC_BF16 ? DT_BF16 : DT_F16) : DT_F32, p == CUDA_PREC_TF32);
    CudaGemm g = {.name = "k", .prec = (CudaPrec)p, .tile = &d};
    char *txt = emit(&g, err, sizeof err);
    ck_assert_msg(txt != NULL, "%s", err);
    ck_assert_ptr_null(strstr(txt, "asm"));
    ck_assert_ptr_nonnull(strstr(txt, p == CUDA_PREC_F32 ? "fmaf(" : p == CUDA_PREC_TF32 ? "nnc_mma_m16n8k8_tf32(" : "nnc_mma_m16n8k16_"));
    if (p >= CUDA_PREC_BF16) ck_assert_ptr_nonnull(strstr(txt, "nnc_ldmatrix_x4"));
    ck_assert_ptr_nonnull(strstr(txt, "nnc_cp_async16("));
    free(txt);
  }
  ck_assert_ptr_nonnull(strstr(cuda_prelude_text(), "mma.sync.aligned.m16n8k16.row.col.f32."));
}
END_TEST

START_TEST(t_ew_refuses) {
  char err[256];
  FILE *f = fopen("/dev/null", "w");
  ck_assert_ptr_nonnull(f);
  CudaEwStep mm[] = {{OP_MATMUL, 0, 1}};
  CudaEw e = {.name = "e", .ninputs = 2, .steps = mm, .nsteps = 1, .threads = 128};
  ck_assert_int_eq(cuda_ew_emit(f, &e, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "op 'matmul' has no CUDA form"));
  CudaEwStep fwd[] = {{OP_ADD, 0, 2}};
  e.steps = fwd;
  ck_assert_int_eq(cuda_ew_emit(f, &e, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "not yet computed"));
  CudaEwStep ok[] = {{OP_ADD, 0, 1}};
  e.steps = ok, e.threads = 100;
  ck_assert_int_eq(cuda_ew_emit(f, &e, err, sizeof err), -1);
  CudaReduce r = {.name = "r", .op = OP_ADD, .threads = 128};
  ck_assert_int_eq(cuda_reduce_emit(f, &r, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "not a last-axis reduction"));
  fclose(f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cuda_gen");
  TCase *t = tcase_create("gen");
  tcase_add_test(t, t_gemm_refuses);
  tcase_add_test(t, t_no_inline_ptx);
  tcase_add_test(t, t_ew_refuses);
  suite_add_tcase(s, t);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
