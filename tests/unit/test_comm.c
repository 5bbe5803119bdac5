/* test_comm.c — the data-parallel communication model (passes/comm.c): the ring all-reduce
 * formula, built-in and parsed links, and the bucket/overlap replay on a real training step
 * whose node times are set by hand so the expected figures follow analytically. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "../../frontend/frontend.h"
#include "../../passes/comm.h"

START_TEST(t_ring) {
  HwLink l = {.bw = 1e10, .latency = 1e-5};
  /* 2(P-1)/P x bytes / bw + 2(P-1) x latency */
  ck_assert_double_eq_tol(comm_ring_time(1e9, 4, &l), 2.0 * 3 / 4 * 0.1 + 6e-5, 1e-12);
  ck_assert_double_eq(comm_ring_time(1e9, 1, &l), 0);
  ck_assert_double_eq(comm_ring_time(0, 8, &l), 0);
}
END_TEST

START_TEST(t_links) {
  char err[512];
  HwLink l;
  ck_assert_int_eq(hw_resolve_link("IB-HDR", &l, err, sizeof err), 0);
  ck_assert_double_eq(l.bw, 25e9);
  ck_assert_int_eq(hw_resolve_link("100Gb/s", &l, err, sizeof err), 0);
  ck_assert_double_eq(l.bw, 12.5e9);
  ck_assert_int_eq(hw_resolve_link("40GB/s@2.5", &l, err, sizeof err), 0);
  ck_assert_double_eq(l.bw, 40e9);
  ck_assert_double_eq_tol(l.latency, 2.5e-6, 1e-15);
  ck_assert_int_eq(hw_resolve_link("fast", &l, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "unknown link 'fast'") && strstr(err, "nvlink4"), "%s", err);
  ck_assert_int_eq(hw_resolve_link("-3GB/s", &l, err, sizeof err), -1);
  ck_assert_int_eq(hw_resolve_link("3GB/s@x", &l, err, sizeof err), -1);
}
END_TEST

static const char *mlp_src = "model m {\n"
                             "  input x: f32[8, 64]\n  input y: i32[8]\n"
                             "  h = relu(dense(x, 256, name = \"fc1\"))\n"
                             "  z = dense(h, 10, name = \"fc2\")\n"
                             "  loss = cross_entropy(z, y)\n  output z\n}\n"
                             "train m {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";

/* every backward node takes 1 ms, everything else nothing */
static CostResult *step_with_unit_times(IrModule **m, TrainInfo *info, int *nbwd) {
  Diag *d = diag_new(stderr);
  *m = fe_compile_string("t.nn", mlp_src, strlen(mlp_src), &(FeOptions){0}, d);
  ck_assert_ptr_nonnull(*m);
  IrGraph *g = (*m)->graphs[0];
  IrGraph *tg = pass_train_graph(g, ir_module_find_train(*m, g->name), info, d);
  diag_free(d);
  ck_assert_ptr_nonnull(tg);
  CostResult *r = cost_analyze(tg, NULL);
  HwTarget hw = *hw_find_builtin("cpu-avx2");
  cost_roofline(r, &hw);
  r->total.time = 0, *nbwd = 0;
  for (int i = 0; i < tg->nnodes; i++) {
    r->time[i].time = tg->nodes[i].phase == PH_BWD ? 1e-3 : 0;
    r->total.time += r->time[i].time, *nbwd += tg->nodes[i].phase == PH_BWD;
  }
  return r;
}

START_TEST(t_overlap) {
  IrModule *m;
  TrainInfo info;
  int nbwd;
  CostResult *r = step_with_unit_times(&m, &info, &nbwd);
  double grads = 4.0 * (256 * 64 + 256 + 10 * 256 + 10); /* fc1, fc2 weights and biases */
  HwLink l = {.bw = 1e9, .latency = 1e-6};
  CommPlan c;
  /* one bucket: sent when backward ends, all of it exposed */
  ck_assert_int_eq(comm_plan(r, &info, 4, &l, 1e12, &c), 0);
  ck_assert_double_eq(c.grad_bytes, grads);
  ck_assert_int_eq(c.nbuckets, 1);
  ck_assert_double_eq_tol(c.t_exposed, comm_ring_time(grads, 4, &l), 1e-15);
  ck_assert_double_eq_tol(c.t_step, nbwd * 1e-3 + c.t_exposed, 1e-12);
  ck_assert_double_eq_tol(c.efficiency, nbwd * 1e-3 / c.t_step, 1e-12);
  /* a bucket per gradient on a link so slow that it never idles once the first gradient is
   * ready (even the 40-byte bias gradient outlasts the whole backward pass): it ends at
   * first_ready + all transfers */
  HwLink slow = {.bw = 1e3, .latency = 0};
  ck_assert_int_eq(comm_plan(r, &info, 4, &slow, 1, &c), 0);
  ck_assert_int_eq(c.nbuckets, info.nparams);
  int first = r->g->nnodes;
  for (int k = 0; k < info.nparams; k++) first = info.grads[k] < first ? info.grads[k] : first;
  double ready = 0, bwd_end = nbwd * 1e-3;
  for (int i = 0; i <= first; i++) ready += r->time[i].time;
  ck_assert_double_eq_tol(c.t_allreduce, comm_ring_time(grads, 4, &slow), 1e-12);
  ck_assert_double_eq_tol(c.t_exposed, ready + c.t_allreduce - bwd_end, 1e-12);
  ck_assert_double_eq_tol(c.t_overlap + c.t_exposed, c.t_allreduce, 1e-12);
  ck_assert(c.t_overlap > 0);
  /* one rank: nothing to send */
  ck_assert_int_eq(comm_plan(r, &info, 1, &l, 1, &c), 0);
  ck_assert_double_eq(c.t_allreduce, 0);
  ck_assert_double_eq(c.efficiency, 1);
  ck_assert_int_eq(comm_plan(r, &info, 0, &l, 1, &c), -1);
  ir_module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("comm");
  TCase *tc = tcase_create("comm");
  tcase_add_test(tc, t_ring);
  tcase_add_test(tc, t_links);
  tcase_add_test(tc, t_overlap);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? 1 : 0;
}
