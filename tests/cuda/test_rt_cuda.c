/* test_rt_cuda.c — the CUDA driver loader fails cleanly without a driver or a device, and
 * where a GPU is present moves bytes through device memory unchanged; timed launches record
 * one pair of events around each launch, and a second stream is ordered by events (a fake
 * driver that logs its calls). */
#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/rt_cuda.h"

START_TEST(t_no_driver) {
  char err[512] = "";
  RtCuda *c = rt_cuda_open("libnnc-no-such-driver.so.1", err, sizeof err);
  ck_assert_ptr_null(c);
  ck_assert_msg(!strncmp(err, "no CUDA driver (", 16), "%s", err);
  ck_assert_ptr_nonnull(strstr(err, "libnnc-no-such-driver.so.1"));
}
END_TEST

START_TEST(t_no_device) {
  char err[512] = "";
  RtCuda *c = rt_cuda_open(NNC_FAKE_LIBCUDA, err, sizeof err);
  ck_assert_ptr_null(c);
  ck_assert_str_eq(err, "no CUDA device");
}
END_TEST

/* the real driver: on this machine either a clean refusal or a working device */
START_TEST(t_system_driver) {
  char err[512] = "";
  RtCuda *c = rt_cuda_open(NULL, err, sizeof err);
  if (!c) {
    ck_assert_msg(!strncmp(err, "no CUDA driver", 14) || !strncmp(err, "no CUDA device", 14), "%s", err);
    return;
  }
  ck_assert_int_ge(rt_cuda_cc(c), 50);
  float in[256], out[256];
  for (int i = 0; i < 256; i++) in[i] = (float)i * 0.5f, out[i] = -1;
  uint64_t d = 0;
  ck_assert_msg(rt_cuda_alloc(c, sizeof in, &d) == 0, "%s", rt_cuda_error(c));
  ck_assert_msg(rt_cuda_upload(c, d, in, sizeof in) == 0, "%s", rt_cuda_error(c));
  ck_assert_msg(rt_cuda_download(c, out, d, sizeof out) == 0, "%s", rt_cuda_error(c));
  ck_assert(!memcmp(in, out, sizeof in));
  /* a bad module reports the call, its place and the driver's error name */
  void *mod = NULL;
  ck_assert_int_eq(rt_cuda_load_ptx(c, "this is not PTX", &mod), -1);
  ck_assert_ptr_nonnull(strstr(rt_cuda_error(c), "rt_cuda.c:"));
  ck_assert_ptr_nonnull(strstr(rt_cuda_error(c), "cuModuleLoadDataEx"));
  ck_assert_int_eq(rt_cuda_free(c, d), 0);
  rt_cuda_close(c);
}
END_TEST

/* the fake driver with a device, its call log (fake_cuda_log) emptied */
static RtCuda *fake_open(void **lib, const char *(**log)(int)) {
  char err[512] = "";
  RtCuda *c = rt_cuda_open(NNC_FAKE_LIBCUDA_DEV, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  *lib = dlopen(NNC_FAKE_LIBCUDA_DEV, RTLD_NOW | RTLD_NOLOAD);
  ck_assert_ptr_nonnull(*lib);
  *log = (const char *(*)(int))(uintptr_t)dlsym(*lib, "fake_cuda_log");
  ck_assert_ptr_nonnull(*log);
  (*log)(1);
  return c;
}

/* rt_cuda_run_timed: per launch its own events, recorded right before and after it, then the
 * elapsed time of each pair, and every event destroyed */
START_TEST(t_timed_pairs) {
  void *lib = NULL;
  const char *(*log)(int) = NULL;
  RtCuda *c = fake_open(&lib, &log);
  RtCudaLaunch l[3] = {{(void *)"k0", {1, 1, 1}, {32, 1, 1}, 0}, {(void *)"k1", {2, 1, 1}, {64, 1, 1}, 0},
                       {(void *)"k2", {4, 1, 1}, {128, 1, 1}, 0}};
  int64_t ns[3] = {-1, -1, -1};
  void *args[1] = {NULL};
  ck_assert_msg(rt_cuda_run_timed(c, l, 3, args, ns) == 0, "%s", rt_cuda_error(c));
  ck_assert_str_eq(log(0), "create:1 create:2 create:3 create:4 create:5 create:6 "
                           "record:1 launch record:2 record:3 launch record:4 record:5 launch record:6 "
                           "sync:2 elapsed:1-2 sync:4 elapsed:3-4 sync:6 elapsed:5-6 "
                           "destroy:1 destroy:2 destroy:3 destroy:4 destroy:5 destroy:6 ");
  for (int i = 0; i < 3; i++) ck_assert_int_eq(ns[i], 250000); /* the fake's 0.25 ms */
  dlclose(lib);
  rt_cuda_close(c);
}
END_TEST

/* a second stream ordered after the default one by an event, and back: the calls in order,
 * the stream non-blocking (flag 1: no implicit waits on the legacy default stream), the
 * events without timing (flag 2) */
START_TEST(t_stream_events) {
  void *lib = NULL;
  const char *(*log)(int) = NULL;
  RtCuda *c = fake_open(&lib, &log);
  void *s = NULL, *e0 = NULL, *e1 = NULL;
  ck_assert_int_eq(rt_cuda_stream_create(c, &s), 0);
  ck_assert_int_eq(rt_cuda_event_create(c, &e0), 0);
  ck_assert_int_eq(rt_cuda_event_create(c, &e1), 0);
  ck_assert_int_eq(rt_cuda_event_record(c, e0, NULL), 0);
  ck_assert_int_eq(rt_cuda_stream_wait_event(c, s, e0), 0);
  ck_assert_int_eq(rt_cuda_event_record(c, e1, s), 0);
  ck_assert_int_eq(rt_cuda_stream_wait_event(c, NULL, e1), 0);
  ck_assert_int_eq(rt_cuda_event_destroy(c, e0), 0);
  ck_assert_int_eq(rt_cuda_event_destroy(c, e1), 0);
  ck_assert_int_eq(rt_cuda_stream_destroy(c, s), 0);
  ck_assert_ptr_eq(s, (void *)100); /* the fake's first stream */
  ck_assert_str_eq(log(0), "stream:100:1 create:1:2 create:2:2 record:1 wait:100:1 record:2@100 wait:0:2 "
                           "destroy:1 destroy:2 sdestroy:100 ");
  dlclose(lib);
  rt_cuda_close(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rt_cuda");
  TCase *t = tcase_create("loader");
  tcase_add_test(t, t_no_driver);
  tcase_add_test(t, t_no_device);
  tcase_add_test(t, t_system_driver);
  tcase_add_test(t, t_timed_pairs);
  tcase_add_test(t, t_stream_events);
  suite_add_tcase(s, t);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
