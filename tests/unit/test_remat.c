/* test_remat.c — rematerialization: the checkpoint DP against brute force over every
 * keep-set (random chain models and the models of real small chains), the model as a bound
 * of the real plan, bit-identical losses, gradients and updated parameters in the reference
 * interpreter with and without recomputation (mlp, lenet, resnet18, the GPT-2 block), the
 * budget guarantees and error of pass_remat, and the sweep acceptance on ResNet-50 (batch 32)
 * and a 64-layer MLP: optimal never recomputes more than sqrt and reaches budgets sqrt
 * cannot. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../frontend/frontend.h"
#include "../../ir/interp.h"
#include "../../passes/memplan.h"
#include "../../passes/passes.h"
#include "../../passes/remat.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t xr(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}
static double ur(double a, double b) { return a + (b - a) * (double)(xr() >> 11) / 9007199254740992.0; }

/* ---- the DP against brute force ---------------------------------------------------------- */

static double brute(const RematChain *m, double budget, bool *best_keep) {
  int k = m->k;
  bool keep[64] = {0};
  double best = -1;
  for (uint64_t mask = 0; mask < (1ull << (k - 1)); mask++) {
    for (int t = 1; t < k; t++) keep[t] = (mask >> (t - 1)) & 1;
    double pk, c;
    remat_chain_eval(m, keep, &pk, &c);
    if (pk <= budget && (best < 0 || c < best)) {
      best = c;
      if (best_keep) memcpy(best_keep, keep, sizeof keep);
    }
  }
  return best;
}

static double brute_min_peak(const RematChain *m) {
  int k = m->k;
  bool keep[64] = {0};
  double best = -1;
  for (uint64_t mask = 0; mask < (1ull << (k - 1)); mask++) {
    for (int t = 1; t < k; t++) keep[t] = (mask >> (t - 1)) & 1;
    double pk, c;
    remat_chain_eval(m, keep, &pk, &c);
    if (best < 0 || pk < best) best = pk;
  }
  return best;
}

static void check_dp(const RematChain *m, double budget, const char *what) {
  bool keep[256] = {0};
  double want = brute(m, budget, NULL);
  double got = remat_chain_optimal(m, budget, keep);
  if (want < 0) {
    ck_assert_msg(got < 0, "%s: budget %g: DP found cost %g, brute force nothing", what, budget, got);
    return;
  }
  ck_assert_msg(got >= 0, "%s: budget %g: DP found nothing, brute force %g", what, budget, want);
  ck_assert_msg(fabs(got - want) <= 1e-9 * (1 + want), "%s: budget %g: DP %.17g, brute force %.17g",
                what, budget, got, want);
  double pk, c;
  remat_chain_eval(m, keep, &pk, &c);
  ck_assert_msg(pk <= budget && fabs(c - got) <= 1e-9 * (1 + got), "%s: DP keep-set does not give its cost", what);
}

START_TEST(t_dp_random) {
  for (int trial = 0; trial < 300; trial++) {
    RematChain m;
    m.k = 2 + (int)(xr() % 11);
    int K = m.k + 1;
    m.b = calloc((size_t)K, sizeof(double));
    m.P = calloc((size_t)K * K, sizeof(double));
    m.RC = calloc((size_t)K * K, sizeof(double));
    for (int t = 1; t < m.k; t++) m.b[t] = floor(ur(0, 30));
    /* half the trials: P grows with the group (as real models do); half: arbitrary */
    bool mono = trial % 2;
    for (int i = 1; i <= m.k; i++)
      for (int j = i; j <= m.k; j++) {
        REMAT_AT(&m, m.P, i, j) = mono ? (j > i ? REMAT_AT(&m, m.P, i, j - 1) : 0) + floor(ur(1, 20))
                                       : floor(ur(0, 100));
        REMAT_AT(&m, m.RC, i, j) = floor(ur(0, 50));
      }
    double lo = brute_min_peak(&m), hi;
    bool none[64] = {0};
    double c0;
    remat_chain_eval(&m, none, &hi, &c0);
    ck_assert_double_eq(c0, 0);
    bool keep[64];
    double mp = remat_chain_min_peak(&m, keep);
    ck_assert_msg(fabs(mp - lo) <= 0.5, "min peak %g, brute force %g", mp, lo);
    for (int q = 0; q <= 8; q++) check_dp(&m, lo - 1 + (hi - lo + 2) * q / 8.0, "random");
    free(m.b);
    free(m.P);
    free(m.RC);
  }
}
END_TEST

static IrModule *compile_text(const char *text, const char *const *defs, int ndefs, IrGraph **g) {
  Diag *d = diag_new(stderr);
  FeOptions fo = {.defines = defs, .ndefines = ndefs};
  IrModule *m = fe_compile_string("t.nn", text, strlen(text), &fo, d);
  diag_free(d);
  ck_assert_ptr_nonnull(m);
  *g = m->graphs[0];
  return m;
}

static IrModule *compile_file(const char *name, const char *const *defs, int ndefs, IrGraph **g) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", NNC_SOURCE_DIR, name);
  Diag *d = diag_new(stderr);
  FeOptions fo = {.defines = defs, .ndefines = ndefs};
  IrModule *m = fe_compile_file(path, &fo, d);
  diag_free(d);
  ck_assert_msg(m != NULL, "%s", path);
  *g = m->graphs[0];
  return m;
}

static IrGraph *train_of(IrModule *m, IrGraph *g, TrainInfo *info) {
  Diag *d = diag_new(stderr);
  IrGraph *tg = pass_train_graph(g, ir_module_find_train(m, g->name), info, d);
  diag_free(d);
  ck_assert_ptr_nonnull(tg);
  return tg;
}

static const char *chain5 =
    "model c5 {\n  dim N = 32\n  input x: f32[N, 64]\n  input label: i32[N]\n"
    "  h = relu(dense(x, 64, name = \"l1\"))\n  h = relu(dense(h, 64, name = \"l2\"))\n"
    "  h = relu(dense(h, 64, name = \"l3\"))\n  h = relu(dense(h, 64, name = \"l4\"))\n"
    "  logits = dense(h, 10, name = \"l5\")\n  loss = cross_entropy(logits, label)\n  output logits\n}\n"
    "train c5 {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";

/* the model of a real chain: the DP equals brute force at every budget */
START_TEST(t_dp_real_chains) {
  const char *files[] = {NULL, "examples/mlp.nn", "examples/lenet.nn"};
  for (int f = 0; f < 3; f++) {
    IrGraph *g;
    const char *defs[] = {"N=8"};
    IrModule *m = f == 0 ? compile_text(chain5, NULL, 0, &g) : compile_file(files[f], defs, 1, &g);
    TrainInfo info;
    IrGraph *tg = train_of(m, g, &info);
    RematChain ch;
    ck_assert_int_eq(remat_model(tg, &info, &ch), 0);
    ck_assert_int_le(ch.k, 20);
    ck_assert_int_ge(ch.k, 5);
    double lo = brute_min_peak(&ch), hi, c0;
    bool none[64] = {0};
    remat_chain_eval(&ch, none, &hi, &c0);
    if (f != 1) ck_assert(lo < hi); /* recomputation lowers the peak (mlp: weights dominate) */
    for (int q = 0; q <= 12; q++) check_dp(&ch, lo + (hi - lo) * q / 12.0, f == 0 ? "c5" : files[f]);
    remat_chain_free(&ch);
    ir_module_free(m);
  }
}
END_TEST

/* for every keep-set of a small chain, the real plan's live bytes stay within the model's
 * peak, and the plan passes the checker */
START_TEST(t_model_bounds_plan) {
  IrGraph *g;
  IrModule *m = compile_text(chain5, NULL, 0, &g);
  TrainInfo info;
  IrGraph *tg = train_of(m, g, &info);
  RematChain ch;
  ck_assert_int_eq(remat_model(tg, &info, &ch), 0);
  int k = ch.k, tried = 0;
  for (uint64_t mask = 0; mask < (1ull << (k - 1)); mask += 1 + (xr() % 37)) {
    bool keep[64] = {0};
    for (int t = 1; t < k; t++) keep[t] = (mask >> (t - 1)) & 1;
    double pk, cost;
    remat_chain_eval(&ch, keep, &pk, &cost);
    RematPlan pl;
    ck_assert_int_eq(remat_apply(tg, &info, keep, &pl), 0);
    char err[512];
    ck_assert_msg(memplan_check(pl.g, &pl.mp, err, sizeof err) == 0, "%s", err);
    ck_assert_msg((double)pl.mp.live_peak <= pk + 1e-6, "mask %llx: live %lld > model %g",
                  (unsigned long long)mask, (long long)pl.mp.live_peak, pk);
    ck_assert_msg(fabs(pl.recompute_flops - cost) <= 1e-6 * (1 + cost), "mask %llx: flops %g vs model %g",
                  (unsigned long long)mask, pl.recompute_flops, cost);
    tried++;
  }
  ck_assert_int_ge(tried, 50);
  remat_chain_free(&ch);
  ir_module_free(m);
}
END_TEST

/* ---- bit-identical results in the interpreter --------------------------------------------- */

static uint64_t hash_s(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static Interp *run(const IrGraph *g) {
  InterpOptions o = {.round_storage = true, .seed = 7, .step = 3};
  Interp *in = interp_new(g, &o);
  for (int i = 0; i < g->nnodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->op != OP_INPUT && n->op != OP_PARAM) continue;
    int64_t ne = ir_type_numel(g, &n->type);
    double *v = malloc((size_t)(ne ? ne : 1) * sizeof(double));
    if (n->op == OP_PARAM) {
      interp_init_param(g, i, 11, v);
    } else {
      uint64_t s = hash_s(n->name);
      for (int64_t e = 0; e < ne; e++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        v[e] = n->type.dt == DT_I32 ? (double)((s >> 33) % 10) : (double)((s >> 11) % 2001) / 1000.0 - 1;
      }
    }
    ck_assert_int_eq(interp_set(in, i, v, ne), 0);
    free(v);
  }
  char err[256];
  ck_assert_msg(interp_run(in, err, sizeof err) == 0, "%s", err);
  return in;
}

static int find_param(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_PARAM && g->nodes[i].name && !strcmp(g->nodes[i].name, name)) return i;
  return -1;
}

/* outputs (loss, logits, gradients) and every PARAM after the step, bit for bit */
static void same_results(const IrGraph *a, Interp *ia, const IrGraph *b, Interp *ib, const char *what) {
  ck_assert_int_eq(a->noutputs, b->noutputs);
  for (int o = 0; o < a->noutputs; o++) {
    int nb = -1;
    for (int q = 0; q < b->noutputs; q++)
      if (!strcmp(a->outputs[o].name, b->outputs[q].name)) nb = b->outputs[q].node;
    ck_assert_msg(nb >= 0, "%s: output %s missing", what, a->outputs[o].name);
    int64_t na, nbn;
    const double *va = interp_value(ia, a->outputs[o].node, &na), *vb = interp_value(ib, nb, &nbn);
    ck_assert_int_eq(na, nbn);
    ck_assert_msg(memcmp(va, vb, (size_t)na * sizeof(double)) == 0, "%s: output %s differs", what,
                  a->outputs[o].name);
  }
  for (int i = 0; i < a->nnodes; i++) {
    if (a->nodes[i].op != OP_PARAM) continue;
    int j = find_param(b, a->nodes[i].name);
    ck_assert_int_ge(j, 0);
    int64_t na, nbn;
    const double *va = interp_value(ia, i, &na), *vb = interp_value(ib, j, &nbn);
    ck_assert_msg(na == nbn && memcmp(va, vb, (size_t)na * sizeof(double)) == 0, "%s: %s differs after the step",
                  what, a->nodes[i].name);
  }
}

static void bit_identical(IrModule *m, IrGraph *g, const char *what) {
  TrainInfo info;
  IrGraph *tg = train_of(m, g, &info);
  Interp *ref = run(tg);
  RematChain ch;
  ck_assert_int_eq(remat_model(tg, &info, &ch), 0);
  bool keep[1024] = {0};
  ck_assert_int_lt(ch.k, 1024);
  int checked = 0;
  for (int variant = 0; variant < 4; variant++) {
    memset(keep, 0, sizeof keep);
    if (variant == 3)
      for (int t = 1; t < ch.k; t++) keep[t] = true; /* every segment its own group */
    if (variant == 0) keep[ch.k / 2] = ch.k > 2; /* two groups */
    if (variant == 1) remat_chain_min_peak(&ch, keep);
    if (variant == 2) {
      double w[1024];
      for (int s = 0; s <= ch.k; s++) w[s] = 1;
      remat_chain_sqrt(&ch, w, keep);
    }
    RematPlan pl;
    ck_assert_int_eq(remat_apply(tg, &info, keep, &pl), 0);
    char err[512];
    ck_assert_msg(ir_verify(pl.g, stderr) == 0, "%s: remat graph does not verify", what);
    ck_assert_msg(memplan_check(pl.g, &pl.mp, err, sizeof err) == 0, "%s: %s", what, err);
    if (pl.nclones == 0) continue;
    checked++;
    for (int i = 0; i < pl.g->nnodes; i++)
      if (remat_is_recompute(&pl.g->nodes[i])) ck_assert_int_eq(pl.g->nodes[i].phase, PH_BWD);
    Interp *r = run(pl.g);
    char w2[96];
    snprintf(w2, sizeof w2, "%s variant %d (%d clones)", what, variant, pl.nclones);
    same_results(tg, ref, pl.g, r, w2);
    interp_free(r);
  }
  ck_assert_msg(checked >= 1, "%s: no keep-set recomputes anything", what);
  remat_chain_free(&ch);
  interp_free(ref);
}

START_TEST(t_bits_mlp) {
  IrGraph *g;
  const char *defs[] = {"N=4"};
  IrModule *m = compile_file("examples/mlp.nn", defs, 1, &g);
  bit_identical(m, g, "mlp");
  ir_module_free(m);
}
END_TEST

START_TEST(t_bits_lenet) {
  IrGraph *g;
  const char *defs[] = {"N=2"};
  IrModule *m = compile_file("examples/lenet.nn", defs, 1, &g);
  bit_identical(m, g, "lenet");
  ir_module_free(m);
}
END_TEST

START_TEST(t_bits_resnet18) {
  IrGraph *g;
  const char *defs[] = {"N=2", "S=64"}; /* 64x64 images: the same graph, a quarter of the work */
  IrModule *m = compile_file("examples/resnet18.nn", defs, 2, &g);
  bit_identical(m, g, "resnet18");
  ir_module_free(m);
}
END_TEST

/* the GPT-2 block has no loss of its own: minimize mean(y^2) */
START_TEST(t_bits_gpt2) {
  char path[512];
  snprintf(path, sizeof path, "%s/examples/gpt2_block.nn", NNC_SOURCE_DIR);
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  static char text[65536];
  size_t n = fread(text, 1, sizeof text - 512, f);
  fclose(f);
  text[n] = 0;
  char *out = strstr(text, "  output y\n}");
  ck_assert_ptr_nonnull(out);
  strcpy(out, "  loss = mean(y * y)\n  output y\n}\n"
              "train gpt2_block {\n  minimize loss\n  optimizer adam(lr = 0.001)\n}\n");
  IrGraph *g;
  const char *defs[] = {"N=1", "T=8", "H=2", "K=8"};
  IrModule *m = compile_text(text, defs, 4, &g);
  bit_identical(m, g, "gpt2_block");
  ir_module_free(m);
}
END_TEST

/* ---- budgets ------------------------------------------------------------------------- */

START_TEST(t_budget_and_error) {
  IrGraph *g;
  const char *defs[] = {"N=8"};
  IrModule *m = compile_file("examples/resnet18.nn", defs, 1, &g);
  TrainInfo info;
  IrGraph *tg = train_of(m, g, &info);
  RematPlan none;
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_OPTIMAL, 0}, &none), 0);
  ck_assert_int_eq(none.nclones, 0);
  int64_t full = none.total_sched;
  /* a budget below the unmodified step: fits, with recomputation */
  int64_t b1 = full - full / 8;
  RematPlan p1;
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_OPTIMAL, b1}, &p1), 0);
  ck_assert_int_le(p1.total, b1);
  ck_assert_int_gt(p1.nclones, 0);
  ck_assert(p1.recompute_flops > 0 && p1.recompute_flops < p1.step_flops);
  char err[512];
  ck_assert_msg(memplan_check(p1.g, &p1.mp, err, sizeof err) == 0, "%s", err);
  /* far too little: the error names the minimum and a budget to use */
  RematPlan p2;
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_OPTIMAL, full / 4}, &p2), -1);
  ck_assert_ptr_nonnull(strstr(p2.msg, "is below the minimum"));
  ck_assert_ptr_nonnull(strstr(p2.msg, "use --memory"));
  ck_assert_ptr_nonnull(strstr(p2.msg, "weights"));
  ck_assert(p2.min_total > full / 4 && p2.min_total < full);
  /* exactly the minimum works */
  RematPlan p3;
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_OPTIMAL, p2.min_total}, &p3), 0);
  ck_assert_int_le(p3.total, p2.min_total);
  /* none with a budget below the step fails and points at optimal */
  RematPlan p4;
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_NONE, b1}, &p4), -1);
  ck_assert_ptr_nonnull(strstr(p4.msg, "--remat optimal"));
  ir_module_free(m);
}
END_TEST

/* The rewritten step keeps what the backend needs to fuse: parameters and inputs precede
 * every computed node (a matmul takes its `+ bias` into the GEMM epilogue only when the bias
 * comes first), and no forward node is recomputed twice. */
static void check_fusable(IrModule *m, IrGraph *g, double frac, const char *what) {
  TrainInfo info;
  IrGraph *tg = train_of(m, g, &info);
  RematPlan base, pl;
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_OPTIMAL, 0}, &base), 0);
  int64_t budget = (int64_t)((double)base.total_sched * frac);
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_OPTIMAL, budget}, &pl), 0);
  ck_assert_msg(pl.nclones > 0, "%s: nothing recomputed at %.0f%% of the step", what, 100 * frac);
  const IrGraph *r = pl.g;
  int first_computed = r->nnodes;
  for (int i = 0; i < r->nnodes; i++)
    if (!(ir_ops[r->nodes[i].op].flags & OPF_LEAF)) {
      first_computed = i;
      break;
    }
  int biased = 0;
  for (int i = 0; i < r->nnodes; i++) {
    const IrNode *n = &r->nodes[i];
    if (n->op == OP_PARAM || n->op == OP_INPUT)
      ck_assert_msg(i < first_computed, "%s: %s '%s' at %d after the first computed node %d", what,
                    ir_op_name(n->op), n->name ? n->name : "", i, first_computed);
    if (n->op == OP_ADD)
      for (int j = 0; j < 2; j++)
        if (r->nodes[n->in[j]].op == OP_MATMUL && r->nodes[n->in[1 - j]].op == OP_PARAM)
        {
          biased++;
          ck_assert_int_lt(n->in[1 - j], n->in[j]);
        }
  }
  ck_assert_int_gt(biased, 0);
  /* a node recomputed twice would give two clones of one op reading the same operands */
  for (int i = 0; i < r->nnodes; i++) {
    const IrNode *a = &r->nodes[i];
    if (!remat_is_recompute(a)) continue;
    for (int j = i + 1; j < r->nnodes; j++) {
      const IrNode *b = &r->nodes[j];
      if (!remat_is_recompute(b) || b->op != a->op || b->nin != a->nin) continue;
      bool same = true;
      for (int q = 0; q < a->nin; q++) same &= a->in[q] == b->in[q];
      ck_assert_msg(!same, "%s: %%%d and %%%d compute the same %s", what, i, j, ir_op_name(a->op));
    }
  }
}

START_TEST(t_fusable) {
  IrGraph *g;
  IrModule *m = compile_file("tests/plan/deep_mlp.nn", NULL, 0, &g);
  check_fusable(m, g, 0.6, "deep_mlp");
  ir_module_free(m);
  m = compile_file("examples/mlp.nn", NULL, 0, &g);
  TrainInfo info;
  IrGraph *tg = train_of(m, g, &info);
  RematPlan pl;
  ck_assert_int_eq(pass_remat(tg, &info, &(RematOptions){REMAT_OPTIMAL, 0}, &pl), 0);
  for (int i = 1; i < pl.g->nnodes; i++) /* leaves first even without recomputation */
    if (pl.g->nodes[i].op == OP_PARAM || pl.g->nodes[i].op == OP_INPUT)
      ck_assert(pl.g->nodes[i - 1].op == OP_PARAM || pl.g->nodes[i - 1].op == OP_INPUT);
  ir_module_free(m);
}
END_TEST

static void sweep_accept(IrModule *m, IrGraph *g, const char *what) {
  TrainInfo info;
  IrGraph *tg = train_of(m, g, &info);
  RematPoint pt[12];
  RematPlan base;
  ck_assert_int_eq(remat_sweep(tg, &info, 12, pt, &base), 0);
  ck_assert_msg(pt[0].ok[REMAT_OPTIMAL] && !pt[0].ok[REMAT_SQRT],
                "%s: optimal should reach the lowest budget and sqrt not", what);
  for (int i = 0; i < 12; i++) {
    if (pt[i].ok[REMAT_OPTIMAL]) ck_assert_int_le(pt[i].total[REMAT_OPTIMAL], pt[i].budget);
    if (!pt[i].ok[REMAT_SQRT]) continue;
    ck_assert_msg(pt[i].ok[REMAT_OPTIMAL], "%s: budget %lld: sqrt fits, optimal does not", what,
                  (long long)pt[i].budget);
    ck_assert_msg(pt[i].flops[REMAT_OPTIMAL] <= pt[i].flops[REMAT_SQRT] * (1 + 1e-12),
                  "%s: budget %lld: optimal recomputes %g FLOPs, sqrt %g", what, (long long)pt[i].budget,
                  pt[i].flops[REMAT_OPTIMAL], pt[i].flops[REMAT_SQRT]);
  }
  /* somewhere optimal is strictly cheaper than sqrt */
  bool better = false;
  for (int i = 0; i < 12; i++)
    better |= pt[i].ok[REMAT_SQRT] && pt[i].flops[REMAT_OPTIMAL] < pt[i].flops[REMAT_SQRT] * 0.9;
  ck_assert(better);
}

START_TEST(t_sweep_resnet50) {
  IrGraph *g;
  const char *defs[] = {"N=32"};
  IrModule *m = compile_file("examples/resnet50.nn", defs, 1, &g);
  sweep_accept(m, g, "resnet50 N=32");
  ir_module_free(m);
}
END_TEST

START_TEST(t_sweep_deep_mlp) {
  IrGraph *g;
  IrModule *m = compile_file("tests/plan/deep_mlp.nn", NULL, 0, &g);
  sweep_accept(m, g, "deep_mlp");
  ir_module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("remat");
  TCase *tc = tcase_create("remat");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, t_dp_random);
  tcase_add_test(tc, t_dp_real_chains);
  tcase_add_test(tc, t_model_bounds_plan);
  tcase_add_test(tc, t_bits_mlp);
  tcase_add_test(tc, t_bits_lenet);
  tcase_add_test(tc, t_bits_gpt2);
  tcase_add_test(tc, t_bits_resnet18);
  tcase_add_test(tc, t_budget_and_error);
  tcase_add_test(tc, t_fusable);
  tcase_add_test(tc, t_sweep_resnet50);
  tcase_add_test(tc, t_sweep_deep_mlp);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int nf = srunner_ntests_failed(r);
  srunner_free(r);
  return nf ? 1 : 0;
}
