/* test_cost.c — cost analysis: each op's counting rule against a formula derived by hand
 * from docs/cost-model.md, the roofline on worked examples, memory figures of a training
 * step, the backward/forward ratio from the real backward graph, and the published parameter
 * and MAC counts of ResNet-18/50 and MobileNetV2 (torchvision) at 224x224. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../passes/cost.h"
#include "../../passes/memplan.h"
#include "../../passes/passes.h"
#include "cost_nets.h"

/* a Dim must equal the hand formula symbolically (same interned polynomial) */
#define EQ_DIM(g, got, want)                                                                 \
  ck_assert_msg(dim_eq((got), (want)), "%s: got %s, want %s", #got, dim_str((g)->dims, got), \
                dim_str((g)->dims, want))

static Dim *c_(Nb *b, int64_t v) { return nb_k(b, v); }
static Dim *nN(Nb *b, int64_t k) { return dim_scale(b->g->dims, nb_n(b), k); } /* k·N */

static int input(Nb *b, const char *name, DType dt, int rank, ...) {
  Dim *d[IR_MAX_RANK];
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++) {
    int64_t v = va_arg(ap, int64_t);
    d[i] = v < 0 ? nb_n(b) : nb_k(b, v); /* -1 stands for the batch N */
  }
  va_end(ap);
  return nb_leaf(b, OP_INPUT, name, dt, false, rank, d);
}
#define NB (-1LL)
#define I(v) ((int64_t)(v))

static CostNode cost_of(Nb *b, int node) {
  CostNode c;
  cost_node(b->g, node, &c);
  return c;
}

START_TEST(t_table_complete) {
  for (int op = 0; op < OP_COUNT; op++)
    ck_assert_msg(cost_rule_defined((OpKind)op), "no cost rule for %s", ir_op_name((OpKind)op));
}
END_TEST

/* x[N,784] @ W[784,512]: N·784·512 MACs, 2× as FLOPs; bytes: each operand once */
START_TEST(t_matmul) {
  Nb b = nb_new("m", 64);
  int x = input(&b, "x", DT_F32, 2, NB, I(784));
  int w = nb_param(&b, "w", true, 2, I(784), I(512));
  int y = nb_2(&b, OP_MATMUL, x, w, NULL);
  CostNode c = cost_of(&b, y);
  EQ_DIM(b.g, c.macs, nN(&b, 784 * 512));
  EQ_DIM(b.g, c.flops, nN(&b, 2 * 784 * 512));
  char buf[64];
  dim_print(b.g->dims, c.flops, buf, sizeof buf, DIM_PLAIN);
  ck_assert_str_eq(buf, "802816*N");
  EQ_DIM(b.g, c.rd, dim_add(b.g->dims, nN(&b, 784 * 4), c_(&b, 784 * 512 * 4)));
  EQ_DIM(b.g, c.wr, nN(&b, 512 * 4));
  ck_assert(c.kernel);
  /* transposed, batched, vector operand: [B,K,M]^T @ [K] -> [B,M]; MACs = B·M·K */
  int a = input(&b, "a", DT_F16, 3, NB, I(32), I(16));
  int v = input(&b, "v", DT_F16, 1, I(32));
  IrAttr ta = {.trans_a = true};
  int z = nb_2(&b, OP_MATMUL, a, v, &ta);
  EQ_DIM(b.g, cost_of(&b, z).macs, nN(&b, 16 * 32));
  ir_module_free(b.m);
}
END_TEST

/* conv: N·O·OH·OW · (C/g)·KH·KW MACs; the two backward convs have the same count */
START_TEST(t_conv) {
  Nb b = nb_new("c", 8);
  int x = input(&b, "x", DT_F32, 4, NB, I(3), I(224), I(224));
  int y = nb_conv(&b, x, 64, 7, 2, 3, 1); /* -> [N,64,112,112] */
  int64_t macs = 64LL * 112 * 112 * 3 * 7 * 7;
  EQ_DIM(b.g, cost_of(&b, y).macs, nN(&b, macs));
  EQ_DIM(b.g, cost_of(&b, y).flops, nN(&b, 2 * macs));
  /* grouped (depthwise): [N,32,56,56], groups 32, 3x3 -> 32·56·56·9 per image */
  int x2 = input(&b, "x2", DT_F32, 4, NB, I(32), I(56), I(56));
  int dw = nb_conv(&b, x2, 32, 3, 1, 1, 32);
  EQ_DIM(b.g, cost_of(&b, dw).macs, nN(&b, 32LL * 56 * 56 * 9));
  /* backward convs, built like autodiff does */
  int w = b.g->nodes[y].in[1];
  IrAttr at = b.g->nodes[y].attr;
  IrType xt = b.g->nodes[x].type, wt = b.g->nodes[w].type;
  int in_d[2] = {y, w}, in_f[2] = {x, y};
  int dx = nb_op(&b, OP_CONV2D_BWD_DATA, in_d, 2, &at, &xt);
  int dwt = nb_op(&b, OP_CONV2D_BWD_FILTER, in_f, 2, &at, &wt);
  EQ_DIM(b.g, cost_of(&b, dx).macs, nN(&b, macs));
  EQ_DIM(b.g, cost_of(&b, dwt).macs, nN(&b, macs));
  ir_module_free(b.m);
}
END_TEST

/* elementwise: k FLOPs per result element (table in docs/cost-model.md), transcendentals
 * counted also in transc; broadcasting operands are read once at their own size */
START_TEST(t_elementwise) {
  Nb b = nb_new("e", 4);
  int x = input(&b, "x", DT_F32, 2, NB, I(100));
  int bias = nb_param(&b, "b", true, 1, I(100));
  struct {
    OpKind op;
    int flops, transc;
  } cases[] = {{OP_NEG, 1, 0},  {OP_EXP, 1, 1},     {OP_LOG, 1, 1},  {OP_SQRT, 1, 1},
               {OP_TANH, 1, 1}, {OP_SIGMOID, 4, 1}, {OP_RELU, 1, 0}, {OP_GELU, 5, 1},
               {OP_SILU, 5, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    CostNode c = cost_of(&b, nb_1(&b, cases[i].op, x, NULL));
    EQ_DIM(b.g, c.flops, nN(&b, 100 * cases[i].flops));
    EQ_DIM(b.g, c.transc, nN(&b, 100 * cases[i].transc));
    EQ_DIM(b.g, c.rd, nN(&b, 400));
    EQ_DIM(b.g, c.wr, nN(&b, 400));
  }
  CostNode c = cost_of(&b, nb_2(&b, OP_ADD, x, bias, NULL));
  EQ_DIM(b.g, c.flops, nN(&b, 100));
  EQ_DIM(b.g, c.rd, dim_add(b.g->dims, nN(&b, 400), c_(&b, 400)));
  /* x*x reads x once */
  c = cost_of(&b, nb_2(&b, OP_MUL, x, x, NULL));
  EQ_DIM(b.g, c.rd, nN(&b, 400));
  IrAttr p2 = {.value = 2}, ph = {.value = 0.5};
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_POWC, x, &p2)).transc, c_(&b, 0));
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_POWC, x, &ph)).transc, nN(&b, 100));
  ir_module_free(b.m);
}
END_TEST

/* reductions over [N,10,20] along axis 2 (R = 20, 10·N outputs) */
START_TEST(t_reductions) {
  Nb b = nb_new("r", 4);
  int x = input(&b, "x", DT_F32, 3, NB, I(10), I(20));
  IrAttr ax = {.naxes = 1, .axes = {2}};
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_SUM, x, &ax)).flops, nN(&b, 10 * 19));
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_MAX, x, &ax)).flops, nN(&b, 10 * 19));
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_MEAN, x, &ax)).flops, nN(&b, 200));
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_VAR, x, &ax)).flops, nN(&b, 800));
  /* softmax over axis 2: 3 per element + 2 row reductions of R-1: 3·200N + 2·10N·19 */
  IrAttr sa = {.axis = 2};
  CostNode s = cost_of(&b, nb_1(&b, OP_SOFTMAX, x, &sa));
  EQ_DIM(b.g, s.flops, nN(&b, 600 + 380));
  EQ_DIM(b.g, s.transc, nN(&b, 200));
  CostNode ls = cost_of(&b, nb_1(&b, OP_LOG_SOFTMAX, x, &sa));
  EQ_DIM(b.g, ls.flops, nN(&b, 600 + 380 + 10));
  EQ_DIM(b.g, ls.transc, nN(&b, 210));
  ir_module_free(b.m);
}
END_TEST

/* pooling, norms, losses, data movement */
START_TEST(t_layers) {
  Nb b = nb_new("l", 2);
  int x = input(&b, "x", DT_F32, 4, NB, I(64), I(112), I(112));
  IrAttr mp = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}};
  int64_t pout = 64LL * 56 * 56;
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_MAXPOOL, x, &mp)).flops, nN(&b, pout * 8));
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_AVGPOOL, x, &mp)).flops, nN(&b, pout * 9));
  /* batchnorm inference: 2/elem + 5/channel; training: + 4/elem + 2/channel */
  int bn = nb_bn(&b, x);
  int64_t e = 64LL * 112 * 112;
  EQ_DIM(b.g, cost_of(&b, bn).flops, dim_add(b.g->dims, nN(&b, 2 * e), c_(&b, 5 * 64)));
  b.g->nodes[bn].attr.train = true;
  EQ_DIM(b.g, cost_of(&b, bn).flops, dim_add(b.g->dims, nN(&b, 6 * e), c_(&b, 7 * 64)));
  EQ_DIM(b.g, cost_of(&b, bn).transc, c_(&b, 64));
  /* layernorm over the last axis of [N,16,32]: 8/elem + 4/row */
  int t = input(&b, "t", DT_F32, 3, NB, I(16), I(32));
  int ln_in[3] = {t, nb_param(&b, "g", true, 1, I(32)), nb_param(&b, "bb", true, 1, I(32))};
  IrAttr lna = {.naxes = 1, .value = 1e-5};
  int ln = nb_op(&b, OP_LAYERNORM, ln_in, 3, &lna, NULL);
  EQ_DIM(b.g, cost_of(&b, ln).flops, dim_add(b.g->dims, nN(&b, 8 * 512), nN(&b, 4 * 16)));
  /* cross entropy of [N,10]: log-softmax 3·10N + 2·9N, log N, pick+mean 2N; bwd */
  int lg = input(&b, "lg", DT_F32, 2, NB, I(10)), lb = input(&b, "lb", DT_I32, 1, NB);
  int ce = nb_2(&b, OP_CROSS_ENTROPY, lg, lb, NULL);
  EQ_DIM(b.g, cost_of(&b, ce).flops, nN(&b, 30 + 18 + 2));
  EQ_DIM(b.g, cost_of(&b, ce).transc, nN(&b, 11));
  IrType lt = b.g->nodes[lg].type;
  int ceb_in[3] = {ce, lg, lb};
  int ceb = nb_op(&b, OP_CE_BWD, ceb_in, 3, NULL, &lt);
  EQ_DIM(b.g, cost_of(&b, ceb).flops, nN(&b, 30 + 18 + 10 + 1));
  /* mse: 3 per element */
  int p = input(&b, "p", DT_F32, 1, NB), q = input(&b, "q", DT_F32, 1, NB);
  EQ_DIM(b.g, cost_of(&b, nb_2(&b, OP_MSE, p, q, NULL)).flops, nN(&b, 3));
  /* reshape is a view: nothing; transpose moves bytes, no flops */
  IrType rt = {.dt = DT_F32, .rank = 2, .dims = {nb_n(&b), c_(&b, 512)}};
  CostNode r = cost_of(&b, nb_op(&b, OP_RESHAPE, &t, 1, NULL, &rt));
  ck_assert(!r.kernel);
  EQ_DIM(b.g, r.rd, c_(&b, 0));
  IrAttr perm = {.naxes = 3, .axes = {0, 2, 1}};
  CostNode tr = cost_of(&b, nb_1(&b, OP_TRANSPOSE, t, &perm));
  EQ_DIM(b.g, tr.flops, c_(&b, 0));
  EQ_DIM(b.g, tr.rd, nN(&b, 2048));
  EQ_DIM(b.g, tr.wr, nN(&b, 2048));
  /* dropout: identity at inference, 2/elem in training */
  IrAttr dro = {.value = 0.1};
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_DROPOUT, t, &dro)).wr, c_(&b, 0));
  dro.train = true;
  EQ_DIM(b.g, cost_of(&b, nb_1(&b, OP_DROPOUT, t, &dro)).flops, nN(&b, 1024));
  ir_module_free(b.m);
}
END_TEST

/* Roofline worked example: a 4096x1024 linear layer (y = x Wᵀ, W f16[4096,1024]) on V100.
 * batch 512: 2·512·1024·4096 FLOPs over 2·(512·1024 + 4096·1024 + 512·4096) bytes = 315
 * FLOP/B, above V100's ridge 125e12/900e9 = 139 -> compute-bound, 34.4 us + overhead.
 * batch 1: 8,388,608 FLOPs over 8,398,848 bytes ≈ 1 FLOP/B -> memory-bound, 9.33 us. */
START_TEST(t_roofline_v100) {
  const HwTarget *v100 = hw_find_builtin("v100-sxm2");
  ck_assert_ptr_nonnull(v100);
  int64_t batches[2] = {512, 1};
  for (int k = 0; k < 2; k++) {
    Nb b = nb_new("lin", batches[k]);
    Dim *xd[2] = {nb_n(&b), c_(&b, 1024)}, *wd[2] = {c_(&b, 4096), c_(&b, 1024)};
    int x = nb_leaf(&b, OP_INPUT, "x", DT_F16, false, 2, xd);
    int w = nb_leaf(&b, OP_PARAM, "w", DT_F16, true, 2, wd);
    IrAttr tb = {.trans_b = true};
    int y = nb_2(&b, OP_MATMUL, x, w, &tb);
    CostResult *r = cost_analyze(b.g, NULL);
    cost_roofline(r, v100);
    double B = (double)batches[k];
    double fl = 2 * B * 1024 * 4096, by = 2 * (B * 1024 + 4096.0 * 1024 + B * 4096);
    CostTime t = r->time[y];
    ck_assert_double_eq_tol(t.flops, fl, 0.5);
    ck_assert_double_eq_tol(t.bytes, by, 0.5);
    ck_assert_double_eq_tol(t.intensity, fl / by, 1e-9);
    ck_assert_double_eq_tol(t.peak, 125e12, 1);
    if (k == 0) {
      ck_assert(t.compute_bound);
      ck_assert_double_eq_tol(t.time, fl / 125e12 + v100->overhead_s, 1e-12);
    } else {
      ck_assert(!t.compute_bound);
      ck_assert_double_eq_tol(t.time, by / 900e9 + v100->overhead_s, 1e-12);
    }
    /* the same layer in f32 has no tensor cores on V100: 15.7 TFLOP/s */
    ck_assert_double_eq_tol(hw_peak(v100, DT_F32, true), 15.7e12, 1);
    ir_module_free(b.m);
  }
}
END_TEST

/* published figures: torchvision's parameter counts (exact) and MACs at 224x224 counted as
 * conv + linear multiply-accumulates (fvcore convention), within 0.5% */
static void check_net(const char *name, int which, int64_t params, double macs) {
  Nb b = nb_new(name, 1);
  if (which == 0) nb_resnet(&b, 18);
  else if (which == 1) nb_resnet(&b, 50);
  else nb_mobilenet_v2(&b);
  CostResult *r = cost_analyze(b.g, NULL);
  int64_t got_p = dim_eval(b.g->dims, r->params_trainable, NULL);
  ck_assert_msg(got_p == params, "%s: %lld parameters, published %lld", name, (long long)got_p,
                (long long)params);
  double got_m = dim_evalf(b.g->dims, r->phase[PH_FWD].macs, NULL);
  double rel = fabs(got_m - macs) / macs;
  ck_assert_msg(rel <= 0.005, "%s: %.0f MACs, published %.0f (%.3f%% off)", name, got_m, macs,
                100 * rel);
  printf("%s: %lld parameters, %.0f MACs (published %.4g, %+.3f%%)\n", name, (long long)got_p,
         got_m, macs, 100 * (got_m - macs) / macs);
  /* the formula is linear in N: at N = 32 it is 32 times the figure */
  int64_t vals[DIM_MAX_SYMS] = {0};
  vals[b.N] = 32;
  ck_assert_double_eq_tol(dim_evalf(b.g->dims, r->phase[PH_FWD].macs, vals), 32 * got_m, 1);
  ir_module_free(b.m);
}

START_TEST(t_resnet18) { check_net("resnet18", 0, 11689512, 1.814e9); }
END_TEST
START_TEST(t_resnet50) { check_net("resnet50", 1, 25557032, 4.089e9); }
END_TEST
START_TEST(t_mobilenet_v2) { check_net("mobilenet_v2", 2, 3504872, 0.300e9); }
END_TEST

static IrGraph *train_step(Nb *b, int loss, OptKind opt, TrainInfo *info) {
  (void)loss;
  IrTrain t = {.model = b->g->name, .minimize = "loss", .opt = opt, .lr = 0.01, .beta1 = 0.9,
               .beta2 = 0.999, .eps = 1e-8};
  Diag *d = diag_new(stderr);
  IrGraph *tg = pass_train_graph(b->g, &t, info, d);
  ck_assert_msg(tg != NULL, "pass_train_graph failed");
  diag_free(d);
  return tg;
}

/* the first layer's backward needs only the weight gradient (no dx for the image), so its
 * backward/forward FLOP ratio is below 2; deeper convs need both and sit near 2 */
START_TEST(t_bwd_ratio) {
  Nb b = nb_new("resnet18", 2);
  int loss = nb_resnet(&b, 18);
  TrainInfo info;
  IrGraph *tg = train_step(&b, loss, OPT_SGD, &info);
  CostResult *r = cost_analyze(tg, NULL);
  ck_assert(r->training);
  CostGroup *gs;
  int ng = cost_group(r, COST_BY_LAYER, &gs, tg->arena);
  double first = -1, deep = -1;
  for (int i = 0; i < ng; i++) {
    double f = dim_evalf(tg->dims, gs[i].phase[PH_FWD].flops, NULL);
    double bw = dim_evalf(tg->dims, gs[i].phase[PH_BWD].flops, NULL);
    if (!strcmp(gs[i].key, "conv1")) first = bw / f;
    if (!strcmp(gs[i].key, "layer3.1.conv2")) deep = bw / f;
  }
  ck_assert_msg(first > 0.9 && first < 2, "first layer bwd/fwd = %g", first);
  ck_assert_msg(deep > 1.9 && deep <= 2.0 + 1e-9, "layer3.1.conv2 bwd/fwd = %g", deep);
  /* whole step: fwd + bwd + opt equals the total */
  Dim *sum = dim_add(tg->dims, dim_add(tg->dims, r->phase[0].flops, r->phase[1].flops),
                     r->phase[2].flops);
  EQ_DIM(tg, sum, r->total.flops);
  ir_module_free(b.m);
}
END_TEST

/* memory of an MLP step with Adam: grads = trainable bytes, optimizer = 2 per parameter
 * (+ the step counter, if any), saved activations = exactly the forward values read by
 * backward nodes (recomputed here by walking the graph) */
START_TEST(t_memory_adam) {
  Nb b = nb_new("mlp", 64);
  int x = input(&b, "x", DT_F32, 2, NB, I(784));
  nb_scope(&b, "fc1");
  int h = nb_1(&b, OP_RELU, nb_dense(&b, x, 512), NULL);
  nb_scope(&b, "fc2");
  int lg = nb_dense(&b, h, 10);
  b.scope = NULL;
  int lb = input(&b, "label", DT_I32, 1, NB);
  int loss = nb_2(&b, OP_CROSS_ENTROPY, lg, lb, NULL);
  b.g->nodes[loss].name = "loss";
  int64_t P = 784 * 512 + 512 + 512 * 10 + 10;
  TrainInfo info;
  IrGraph *tg = train_step(&b, loss, OPT_ADAM, &info);
  CostResult *r = cost_analyze(tg, NULL);
  DimCtx *dc = tg->dims;
  ck_assert_int_eq(dim_eval(dc, r->params_trainable, NULL), P);
  ck_assert_int_eq(dim_eval(dc, r->mem.weights, NULL), 4 * P);
  ck_assert_int_eq(dim_eval(dc, r->mem.grads, NULL), 4 * P);
  int64_t opt = dim_eval(dc, r->mem.optimizer, NULL);
  ck_assert_msg(opt >= 8 * P && opt <= 8 * P + 64, "optimizer state %lld bytes", (long long)opt);
  /* saved activations, independently */
  double saved = 0;
  for (int i = 0; i < tg->nnodes; i++) {
    const IrNode *n = &tg->nodes[i];
    if (n->phase != PH_FWD || n->op == OP_PARAM || n->op == OP_CONST || n->op == OP_RESHAPE)
      continue;
    bool used = false;
    for (int j = i + 1; j < tg->nnodes && !used; j++)
      for (int k = 0; k < tg->nodes[j].nin; k++)
        used |= tg->nodes[j].phase == PH_BWD && tg->nodes[j].in[k] == i;
    if (used) saved += (double)ir_type_numel(tg, &n->type) * dt_size(n->type.dt);
  }
  ck_assert_double_eq_tol(dim_evalf(dc, r->mem.activations, NULL), saved, 0.5);
  ck_assert(saved >= 4.0 * 64 * 784); /* the input x is read by fc1's weight gradient */
  /* the peak holds at least every persistent tensor plus the largest transient */
  double persist = dim_evalf(dc, dim_add(dc, dim_add(dc, r->mem.weights, r->mem.optimizer),
                                         r->mem.inputs), NULL);
  ck_assert(r->mem.peak >= persist + 4.0 * 64 * 512);
  ck_assert(r->mem.peak_node >= 0);
  /* the peak is the memory plan's params + io + arena; its formula is the live set at the
   * plan's busiest step, without the 64-byte alignment padding (at most 63 bytes per value)
   * and without the allocator's holes (arena - live peak) */
  MemPlan mp;
  char err[256];
  ck_assert_int_eq(memplan_build(tg, NULL, &mp, NULL, err, sizeof err), 0);
  ck_assert_double_eq_tol(r->mem.peak, (double)memplan_total(&mp), 0.5);
  double live = dim_evalf(dc, r->mem.peak_dim, NULL);
  ck_assert_msg(live <= r->mem.peak && r->mem.peak - live <= 63.0 * tg->nnodes +
                (double)(mp.arena_bytes - mp.live_peak),
                "peak %g, formula %g, arena %lld, live peak %lld", r->mem.peak, live,
                (long long)mp.arena_bytes, (long long)mp.live_peak);
  /* inference: no grads, activations = all intermediate values */
  CostResult *ri = cost_analyze(b.g, NULL);
  ck_assert(!ri->training);
  ck_assert_int_eq(dim_eval(b.g->dims, ri->mem.grads, NULL), 0);
  ck_assert_int_eq(dim_eval(b.g->dims, ri->mem.optimizer, NULL), 0);
  ir_module_free(b.m);
}
END_TEST

/* grouping: layers are scopes, blocks are scope prefixes; the groups partition the nodes */
START_TEST(t_groups) {
  Nb b = nb_new("r18", 1);
  nb_resnet(&b, 18);
  CostResult *r = cost_analyze(b.g, NULL);
  CostGroup *gs;
  int ng = cost_group(r, COST_BY_BLOCK, &gs, b.g->arena);
  Dim *sum = c_(&b, 0);
  bool found = false;
  for (int i = 0; i < ng; i++) {
    sum = dim_add(b.g->dims, sum, gs[i].sum.flops);
    found |= !strcmp(gs[i].key, "layer2.0");
  }
  ck_assert(found);
  EQ_DIM(b.g, sum, r->total.flops);
  ck_assert_str_eq(cost_block_key(b.g->arena, &(IrNode){.scope = "layer1.0.conv1"}), "layer1.0");
  ck_assert_str_eq(cost_block_key(b.g->arena, &(IrNode){.scope = "fc"}), "fc");
  ir_module_free(b.m);
}
END_TEST

/* (Xᵀ X) w is reassociated to Xᵀ (X w) when D is large, kept when it is not cheaper */
START_TEST(t_reassoc) {
  Nb b = nb_new("gram", 1000);
  int D = dim_sym_declare(b.g->dims, "D", 50);
  Dim *xd[2] = {nb_n(&b), dim_sym(b.g->dims, D)}, *wd[1] = {dim_sym(b.g->dims, D)};
  int X = nb_leaf(&b, OP_INPUT, "X", DT_F32, false, 2, xd);
  int w = nb_leaf(&b, OP_PARAM, "w", DT_F32, true, 1, wd);
  IrAttr ta = {.trans_a = true};
  int G = nb_2(&b, OP_MATMUL, X, X, &ta); /* [D,D] */
  int y = nb_2(&b, OP_MATMUL, G, w, NULL); /* [D] */
  ir_add_output(b.g, "y", y);
  CostResult *before = cost_analyze(b.g, NULL);
  SimplifyLog log = {0};
  IrGraph *g2 = pass_reassoc_matmul(b.g, &log);
  ck_assert_ptr_ne(g2, b.g);
  ck_assert_int_eq(log.n, 1);
  ck_assert_int_eq(ir_verify(g2, stderr), 0);
  CostResult *after = cost_analyze(g2, NULL);
  /* (XᵀX)w: N·D² + D² MACs;  Xᵀ(Xw): 2·N·D */
  Dim *n = nb_n(&b), *d = dim_sym(b.g->dims, D);
  Dim *dd = dim_mul(b.g->dims, d, d);
  EQ_DIM(b.g, before->total.macs, dim_add(b.g->dims, dim_mul(b.g->dims, n, dd), dd));
  EQ_DIM(g2, after->total.macs, dim_scale(b.g->dims, dim_mul(b.g->dims, n, d), 2));
  ck_assert_ptr_nonnull(strstr(log.msg[0], "->"));
  /* the output keeps its name and type */
  int yo = g2->outputs[0].node;
  ck_assert(ir_type_eq(&g2->nodes[yo].type, &b.g->nodes[y].type));
  /* with D = 1 both orders cost the same (N + 1 vs 2N... the rewrite needs a gain) */
  dim_sym_set_value(b.g->dims, D, 1);
  dim_sym_set_value(b.g->dims, b.N, 1);
  SimplifyLog l2 = {0};
  ck_assert_ptr_eq(pass_reassoc_matmul(b.g, &l2), b.g);
  ir_module_free(b.m);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("cost");
  TCase *t = tcase_create("rules");
  tcase_add_test(t, t_table_complete);
  tcase_add_test(t, t_matmul);
  tcase_add_test(t, t_conv);
  tcase_add_test(t, t_elementwise);
  tcase_add_test(t, t_reductions);
  tcase_add_test(t, t_layers);
  tcase_add_test(t, t_roofline_v100);
  suite_add_tcase(s, t);
  TCase *n = tcase_create("nets");
  tcase_set_timeout(n, 120);
  tcase_add_test(n, t_resnet18);
  tcase_add_test(n, t_resnet50);
  tcase_add_test(n, t_mobilenet_v2);
  tcase_add_test(n, t_bwd_ratio);
  tcase_add_test(n, t_memory_adam);
  tcase_add_test(n, t_groups);
  tcase_add_test(n, t_reassoc);
  suite_add_tcase(s, n);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int nf = srunner_ntests_failed(sr);
  srunner_free(sr);
  return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
