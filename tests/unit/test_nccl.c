/* test_nccl.c — NCCL loaded at run time (runtime/rt_nccl.c): a missing library is one clear
 * error naming it; where the library loads (the CUDA toolkit's libnccl.so.2), every entry
 * point is found, and an all-reduce (the gradients' mean, the sync-bn statistics' sum) before
 * the communicator exists fails with a message
 * instead of calling NCCL. Communicators need a GPU: tests/gpu/run.sh runs them. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/rt_nccl.h"

START_TEST(t_missing) {
  char err[512] = "";
  RtNccl *n = rt_nccl_open("libnccl-missing.so.9", err, sizeof err);
  ck_assert_ptr_null(n);
  ck_assert_msg(strstr(err, "NCCL: cannot load libnccl-missing.so.9") != NULL, "%s", err);
  ck_assert_msg(strstr(err, "libnccl2") != NULL, "the message names the package: %s", err);
  ck_assert_str_eq(rt_nccl_error(NULL), "NCCL: not loaded");
  rt_nccl_close(NULL);
}
END_TEST

START_TEST(t_present) {
  char err[512] = "";
  RtNccl *n = rt_nccl_open(NULL, err, sizeof err);
  if (!n) {
    printf("SKIP: %s\n", err);
    return;
  }
  uint64_t p = 0;
  int64_t c = 4;
  ck_assert_int_eq(rt_nccl_mean(n, &p, &c, 1), -1);
  ck_assert_str_eq(rt_nccl_error(n), "NCCL: no communicator");
  ck_assert_int_eq(rt_nccl_mean_on(n, &p, &c, 1, NULL), -1); /* on a stream, likewise */
  ck_assert_str_eq(rt_nccl_error(n), "NCCL: no communicator");
  ck_assert_int_eq(rt_nccl_sum_f64(n, p, c), -1); /* the sync-bn sum, likewise */
  ck_assert_str_eq(rt_nccl_error(n), "NCCL: no communicator");
  rt_nccl_close(n);
}
END_TEST

int main(void) {
  Suite *s = suite_create("nccl");
  TCase *t = tcase_create("nccl");
  tcase_add_test(t, t_missing);
  tcase_add_test(t, t_present);
  suite_add_tcase(s, t);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
