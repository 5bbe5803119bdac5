/* test_hw.c — the hardware table, hardware files (JSON round trip, "base", errors), the
 * `host` target's file location and atomic save, and --target resolution. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../passes/hw.h"

START_TEST(t_builtins) {
  static const char *need[] = {"h100-sxm", "a100-sxm-80gb", "v100-sxm2", "rtx-4090",
                               "jetson-agx-orin-64gb", "jetson-orin-nano-8gb", "cpu-avx2",
                               "cpu-avx512", "cpu-neon"};
  for (size_t i = 0; i < sizeof need / sizeof *need; i++) {
    const HwTarget *t = hw_find_builtin(need[i]);
    ck_assert_msg(t != NULL, "no built-in %s", need[i]);
    ck_assert(t->peak[HWP_F32] > 0 && t->mem_bw > 0);
    if (t->kind == HW_GPU) {
      ck_assert(t->sm_count > 0 && t->smem_per_block > 0 && t->l2_bytes > 0);
      ck_assert(t->peak[HWP_F16_TC] > t->peak[HWP_F32]); /* every listed GPU has tensor cores */
    } else {
      ck_assert(t->vector_bits >= 128 && t->vector_regs >= 16 && t->l1_bytes > 0);
      /* CPU peak = cores · GHz · FMA units · f32 lanes · 2 */
      double p = t->cores * t->ghz * 1e9 * t->fma_units * (t->vector_bits / 32) * 2;
      ck_assert_double_eq_tol(t->peak[HWP_F32], p, 1);
    }
  }
  ck_assert_ptr_eq(hw_find_builtin("A100"), hw_find_builtin("a100-sxm-80gb"));
  ck_assert_ptr_null(hw_find_builtin("tpu"));
  /* tensor cores for f16 GEMMs only; elementwise f16 uses the vector rate; V100 has no
   * bf16 and falls back to FP32 */
  const HwTarget *a = hw_find_builtin("a100");
  ck_assert_double_eq(hw_peak(a, DT_F16, true), 312e12);
  ck_assert_double_eq(hw_peak(a, DT_F16, false), 78e12);
  ck_assert_double_eq(hw_peak(a, DT_F32, true), 19.5e12);
  ck_assert_double_eq(hw_peak(hw_find_builtin("v100"), DT_BF16, true), 15.7e12);
}
END_TEST

START_TEST(t_json_roundtrip) {
  for (int i = 0; i < hw_builtin_count(); i++) {
    const HwTarget *t = hw_builtin(i);
    char *s = hw_to_json(t), err[256];
    HwTarget u;
    ck_assert_msg(hw_from_json(s, &u, err, sizeof err) == 0, "%s: %s", t->name, err);
    free(s);
    ck_assert_str_eq(u.name, t->name);
    for (int k = 0; k < HWP_COUNT; k++) ck_assert_double_eq_tol(u.peak[k], t->peak[k], 1e-3 * t->peak[k] + 1);
    ck_assert_double_eq_tol(u.mem_bw, t->mem_bw, 1);
    ck_assert_int_eq(u.sm_count, t->sm_count);
    ck_assert_int_eq(u.smem_per_block, t->smem_per_block);
    ck_assert_int_eq(u.l1_bytes, t->l1_bytes);
    ck_assert_int_eq(u.vector_regs, t->vector_regs);
  }
}
END_TEST

START_TEST(t_user_file) {
  char err[256];
  HwTarget t;
  /* a clocked-down A100: only what differs */
  const char *j = "{\"name\": \"a100-slow\", \"base\": \"a100-sxm-80gb\", "
                  "\"peak_tflops\": {\"f16_tc\": 200}, \"mem_bw_gbs\": 1555}";
  ck_assert_int_eq(hw_from_json(j, &t, err, sizeof err), 0);
  ck_assert_str_eq(t.name, "a100-slow");
  ck_assert_double_eq_tol(t.peak[HWP_F16_TC], 200e12, 1);
  ck_assert_double_eq_tol(t.peak[HWP_F32], 19.5e12, 1);
  ck_assert_double_eq_tol(t.mem_bw, 1555e9, 1);
  ck_assert_int_eq(t.sm_count, 108);
  /* errors name what is wrong */
  ck_assert_int_eq(hw_from_json("[1]", &t, err, sizeof err), -1);
  ck_assert_int_eq(hw_from_json("{\"kind\": \"gpu\"}", &t, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "name"));
  ck_assert_int_eq(hw_from_json("{\"name\": \"x\", \"kind\": \"tpu\"}", &t, err, sizeof err), -1);
  ck_assert_int_eq(hw_from_json("{\"name\": \"x\", \"kind\": \"gpu\", \"peak_tflops\": {\"f32\": 1}, "
                                "\"mem_bw_gbs\": 10}", &t, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "sm_count"));
  ck_assert_int_eq(hw_from_json("{\"name\": \"x\", \"base\": \"nope\"}", &t, err, sizeof err), -1);
  /* the probe's GEMM figures on a CPU; a built-in leaves them unknown (0) */
  j = "{\"name\": \"box\", \"base\": \"cpu-avx512\", \"pack_bw_gbs\": 20, "
      "\"pack_strided_bw_gbs\": 4, \"pack_transposed_bw_gbs\": 15, \"gemm_ukr_eff\": 0.9, "
      "\"mem_bw_1t_gbs\": 12}";
  ck_assert_msg(hw_from_json(j, &t, err, sizeof err) == 0, "%s", err);
  ck_assert_double_eq_tol(t.pack_bw, 20e9, 1);
  ck_assert_double_eq_tol(t.pack_strided_bw, 4e9, 1);
  ck_assert_double_eq_tol(t.pack_transposed_bw, 15e9, 1);
  ck_assert_double_eq_tol(t.gemm_ukr_eff, 0.9, 1e-12);
  ck_assert_double_eq_tol(t.mem_bw_1t, 12e9, 1);
  ck_assert(hw_find_builtin("cpu-avx512")->pack_bw == 0);
  ck_assert_int_eq(hw_from_json("{\"name\": \"x\", \"base\": \"cpu-avx512\", \"gemm_ukr_eff\": 1.5}",
                                &t, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "gemm_ukr_eff"));
  ck_assert_int_eq(hw_from_json("{\"name\": \"x\", \"base\": \"cpu-avx512\", \"pack_bw_gbs\": -1}",
                                &t, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "pack_bw_gbs"));
  ck_assert_int_eq(hw_from_json("{\"name\": \"x\", \"base\": \"cpu-avx512\", \"pack_transposed_bw_gbs\": -2}",
                                &t, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "pack_transposed_bw_gbs"));
}
END_TEST

START_TEST(t_host_file) {
  char dir[] = "/tmp/nnc_hw_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  setenv("XDG_CONFIG_HOME", dir, 1);
  char path[4096], want[4200], err[256];
  ck_assert_int_eq(hw_host_path(path, sizeof path), 0);
  snprintf(want, sizeof want, "%s/nnc/host.json", dir);
  ck_assert_str_eq(path, want);
  HwTarget t;
  /* no file yet: an estimate, not marked measured */
  ck_assert_int_eq(hw_resolve("host", &t, err, sizeof err), 0);
  ck_assert(!t.measured && t.kind == HW_CPU && t.peak[HWP_F32] > 0);
  t.peak[HWP_F32] = 123e9;
  t.mem_bw = 45e9;
  t.measured = true;
  t.peak_f32_1t = 61e9;
  t.cache_bw[0] = 900e9, t.cache_bw[1] = 400e9, t.cache_bw[2] = 200e9;
  t.mem_bw_1t = 31e9, t.pack_bw = 19e9, t.pack_strided_bw = 3.5e9, t.gemm_ukr_eff = 0.875;
  t.pack_transposed_bw = 17e9;
  t.overhead_s = 0.75e-6, t.softmax_s = 5.5e-9;
  snprintf(t.measured_at, sizeof t.measured_at, "2026-01-02T03:04:05Z");
  ck_assert_int_eq(hw_save_file(&t, path, err, sizeof err), 0);
  ck_assert_int_eq(access(path, R_OK), 0);
  HwTarget u;
  ck_assert_int_eq(hw_resolve("host", &u, err, sizeof err), 0);
  ck_assert(u.measured);
  ck_assert_double_eq_tol(u.peak[HWP_F32], 123e9, 1);
  ck_assert_double_eq_tol(u.mem_bw, 45e9, 1);
  ck_assert_double_eq_tol(u.peak_f32_1t, 61e9, 1);
  ck_assert_double_eq_tol(u.cache_bw[0], 900e9, 1);
  ck_assert_double_eq_tol(u.cache_bw[2], 200e9, 1);
  ck_assert_str_eq(u.measured_at, "2026-01-02T03:04:05Z");
  ck_assert_double_eq_tol(u.mem_bw_1t, 31e9, 1);
  ck_assert_double_eq_tol(u.pack_bw, 19e9, 1);
  ck_assert_double_eq_tol(u.pack_strided_bw, 3.5e9, 1);
  ck_assert_double_eq_tol(u.pack_transposed_bw, 17e9, 1);
  ck_assert_double_eq_tol(u.gemm_ukr_eff, 0.875, 1e-12);
  ck_assert_double_eq_tol(u.overhead_s, 0.75e-6, 1e-15);
  ck_assert_double_eq_tol(u.softmax_s, 5.5e-9, 1e-18);
  /* a named file beside it, and an explicit path */
  char other[4200];
  snprintf(other, sizeof other, "%s/nnc/lab.json", dir);
  snprintf(u.name, sizeof u.name, "lab");
  ck_assert_int_eq(hw_save_file(&u, other, err, sizeof err), 0);
  ck_assert_int_eq(hw_resolve("lab", &t, err, sizeof err), 0);
  ck_assert_str_eq(t.name, "lab");
  ck_assert_int_eq(hw_resolve(other, &t, err, sizeof err), 0);
  ck_assert_int_eq(hw_resolve("no-such-target", &t, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "h100-sxm"));
  remove(other);
  remove(path);
  snprintf(other, sizeof other, "%s/nnc", dir);
  rmdir(other);
  rmdir(dir);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("hw");
  TCase *t = tcase_create("hw");
  tcase_add_test(t, t_builtins);
  tcase_add_test(t, t_json_roundtrip);
  tcase_add_test(t, t_user_file);
  tcase_add_test(t, t_host_file);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
