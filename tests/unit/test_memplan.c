/* test_memplan.c — the static arena plan: the allocator on random lifetimes (checked by
 * brute force over every pair and against the live-bytes lower bound), in-place reuse on an
 * elementwise chain, and the plan of every example model's inference and training graph
 * verified by the independent checker, which must also reject corrupted plans. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../frontend/frontend.h"
#include "../../passes/memplan.h"
#include "../../passes/passes.h"

static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

START_TEST(t_assign_random) {
  for (int trial = 0; trial < 200; trial++) {
    int n = 1 + (int)(xr() % 60), steps = 1 + (int)(xr() % 40);
    MpBuf b[64];
    for (int i = 0; i < n; i++) {
      int d = (int)(xr() % (uint64_t)steps), l = d + (int)(xr() % (uint64_t)(steps - d));
      b[i] = (MpBuf){1 + (int64_t)(xr() % 5000), d, l, -1};
    }
    int64_t arena = mp_assign(b, n);
    char err[256];
    ck_assert_msg(mp_check_bufs(b, n, arena, err, sizeof err) == 0, "trial %d: %s", trial, err);
    /* brute force: no two buffers alive at one step share a byte */
    for (int i = 0; i < n; i++)
      for (int j = 0; j < i; j++)
        if (b[i].def <= b[j].last && b[j].def <= b[i].last)
          ck_assert(b[i].offset + b[i].size <= b[j].offset || b[j].offset + b[j].size <= b[i].offset);
    /* the arena is at least the bytes alive at the busiest step (aligned sizes), and at most
     * the sum of all buffers */
    int64_t lb = 0, sum = 0;
    for (int s = 0; s < steps; s++) {
      int64_t live = 0;
      for (int i = 0; i < n; i++)
        if (b[i].def <= s && s <= b[i].last) live += (b[i].size + 63) / 64 * 64;
      if (live > lb) lb = live;
    }
    for (int i = 0; i < n; i++) sum += (b[i].size + 63) / 64 * 64;
    ck_assert_int_ge(arena, lb);
    ck_assert_int_le(arena, sum);
  }
}
END_TEST

START_TEST(t_check_bufs_rejects) {
  MpBuf b[2] = {{100, 0, 3, 0}, {100, 2, 5, 64}};
  char err[256];
  ck_assert_int_eq(mp_check_bufs(b, 2, 256, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "overlap"));
  b[1].offset = 128;
  ck_assert_int_eq(mp_check_bufs(b, 2, 256, err, sizeof err), 0);
  b[1].offset = 100; /* not aligned */
  ck_assert_int_eq(mp_check_bufs(b, 2, 256, err, sizeof err), -1);
}
END_TEST

/* intervals of equal size that do not overlap in time share one slot */
START_TEST(t_assign_reuse) {
  MpBuf b[4] = {{1000, 0, 1, -1}, {1000, 2, 3, -1}, {1000, 4, 5, -1}, {1000, 6, 7, -1}};
  ck_assert_int_eq(mp_assign(b, 4), 1024);
  /* best fit: while B and E are alive, a 576-byte buffer has the choice of the 2048-byte
   * hole A left at 0 and the 640-byte hole C left at 3072; it takes the smaller */
  MpBuf c[5] = {{2048, 0, 1, -1}, {1024, 0, 9, -1}, {640, 0, 1, -1}, {600, 0, 9, -1}, {576, 2, 5, -1}};
  int64_t a = mp_assign(c, 5);
  char err[256];
  ck_assert_int_eq(mp_check_bufs(c, 5, a, err, sizeof err), 0);
  ck_assert_int_eq(c[2].offset, 3072);
  ck_assert_int_eq(c[4].offset, 3072);
  ck_assert_int_eq(a, 4352);
}
END_TEST

static IrModule *compile(const char *text, IrGraph **g) {
  Diag *d = diag_new(stderr);
  IrModule *m = fe_compile_string("t.nn", text, strlen(text), NULL, d);
  diag_free(d);
  ck_assert_ptr_nonnull(m);
  *g = m->graphs[0];
  return m;
}

/* y = exp(relu(x*2 + 1)) - every step may write over its dying operand */
START_TEST(t_inplace_chain) {
  IrGraph *g;
  IrModule *m = compile("model c { input x: f32[1000]\n"
                        "  y = exp(relu(x * 2 + 1) * 3)\n  z = y + 1\n  output z }\n",
                        &g);
  MemPlan p;
  char err[256];
  ck_assert_int_eq(memplan_build(g, NULL, &p, NULL, err, sizeof err), 0);
  ck_assert_int_eq(memplan_check(g, &p, err, sizeof err), 0);
  /* x*2 is the only fresh buffer; +1, relu, *3 and exp reuse it; z is an output (io) */
  ck_assert_int_eq(p.arena_bytes, 4032);
  ck_assert_int_ge(p.ninplace, 4);
  MemPlan q;
  ck_assert_int_eq(memplan_build(g, &(MpOptions){.no_inplace = true}, &q, NULL, err, sizeof err), 0);
  ck_assert_int_eq(memplan_check(g, &q, err, sizeof err), 0);
  ck_assert_int_eq(q.ninplace, 0);
  ck_assert_int_eq(q.arena_bytes, 2 * 4032); /* two alive at each step */
  ir_module_free(m);
}
END_TEST

/* a matmul must not write over its operand, even when it dies there */
START_TEST(t_no_inplace_for_gemm) {
  IrGraph *g;
  IrModule *m = compile("model c { input x: f32[16, 16]\n  param w: f32[16, 16] = zeros\n"
                        "  y = relu(x * 2) @ w\n  output y }\n",
                        &g);
  MemPlan p;
  char err[256];
  ck_assert_int_eq(memplan_build(g, NULL, &p, NULL, err, sizeof err), 0);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_MATMUL) ck_assert_int_eq(p.inplace_src[i], -1);
  ck_assert_int_eq(memplan_check(g, &p, err, sizeof err), 0);
  ir_module_free(m);
}
END_TEST

static void check_graph(const char *what, const IrGraph *g) {
  MemPlan p;
  char err[512];
  ck_assert_msg(memplan_build(g, NULL, &p, NULL, err, sizeof err) == 0, "%s: %s", what, err);
  ck_assert_msg(memplan_check(g, &p, err, sizeof err) == 0, "%s: %s", what, err);
  ck_assert_int_ge(p.arena_bytes, p.live_peak);
  int64_t sum = 0;
  for (int b = 0; b < p.nbufs; b++) sum += (p.bufs[b].size + 63) / 64 * 64;
  ck_assert_int_le(p.arena_bytes, sum);
  /* the checker must be able to fail: move one live value onto another */
  int a = -1, b = -1;
  for (int i = 0; i < g->nnodes && b < 0; i++) {
    if (p.where[i] != MP_ARENA) continue;
    for (int j = i + 1; j < g->nnodes; j++)
      if (p.where[j] == MP_ARENA && j <= p.last[i] && p.inplace_src[j] != i && p.offset[j] != p.offset[i]) {
        a = i, b = j;
        break;
      }
  }
  if (b >= 0) {
    int64_t save = p.offset[b];
    p.offset[b] = p.offset[a];
    ck_assert_msg(memplan_check(g, &p, err, sizeof err) != 0, "%s: overlap not detected", what);
    p.offset[b] = save + 8; /* misaligned */
    ck_assert_msg(memplan_check(g, &p, err, sizeof err) != 0, "%s: misalignment not detected", what);
    p.offset[b] = save;
  }
}

START_TEST(t_examples) {
  static const char *ex[] = {"linreg", "mlp", "lenet", "resnet18", "resnet50", "mobilenet_v2",
                             "inception_a", "gpt2_block"};
  for (size_t e = 0; e < sizeof ex / sizeof *ex; e++) {
    char path[512];
    snprintf(path, sizeof path, "%s/examples/%s.nn", NNC_SOURCE_DIR, ex[e]);
    Diag *d = diag_new(stderr);
    const char *defs[] = {"N=2"};
    FeOptions fo = {.defines = defs, .ndefines = 1};
    IrModule *m = fe_compile_file(path, &fo, d);
    ck_assert_msg(m != NULL, "%s", path);
    IrGraph *g = m->graphs[0];
    check_graph(ex[e], g);
    IrTrain *t = ir_module_find_train(m, g->name);
    if (t) {
      TrainInfo info;
      IrGraph *tg = pass_train_graph(g, t, &info, d);
      ck_assert_ptr_nonnull(tg);
      char what[64];
      snprintf(what, sizeof what, "%s (train)", ex[e]);
      check_graph(what, tg);
    }
    diag_free(d);
    ir_module_free(m);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("memplan");
  TCase *tc = tcase_create("memplan");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, t_assign_random);
  tcase_add_test(tc, t_check_bufs_rejects);
  tcase_add_test(tc, t_assign_reuse);
  tcase_add_test(tc, t_inplace_chain);
  tcase_add_test(tc, t_no_inplace_for_gemm);
  tcase_add_test(tc, t_examples);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int nf = srunner_ntests_failed(r);
  srunner_free(r);
  return nf ? 1 : 0;
}
