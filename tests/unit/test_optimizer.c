/* test_optimizer.c — the optimizer step as IR (sgd, adam, adamw) against the published update
 * formulas, computed independently here from the gradients the step graph produced, for
 * several steps; the structure of the step graph (state PARAMs, names, phases, ASSIGNs);
 * and a small classifier trained in the interpreter.
 *
 * Check: parameters and state after each step agree with the formulas to
 * |got - ref| <= 1e-12 + 1e-9*|ref| (both sides in double, different operation order).
 */
#include "gradcheck.h"

/* a tiny regression model: loss = sum(tanh(x @ w + b) * r) */
static int build_model(Gb *b) {
  int x = INPUT(b, "x", 5, 3);
  int w = PARAM(b, "w", 3, 4), bias = PARAM(b, "b", 4);
  int y = gb_op(b, OP_TANH, gb_op2(b, OP_ADD, gb_op2(b, OP_MATMUL, x, w, NULL), bias, NULL), NULL);
  return gb_weighted_loss(b, y);
}

typedef struct Ref {
  double *p, *buf, *m, *v;
  int64_t n;
} Ref;

/* torch.optim docs, written in their textbook form */
static void ref_step(const IrTrain *t, Ref *r, const double *grad, int step) {
  for (int64_t i = 0; i < r->n; i++) {
    double g = grad[i], p = r->p[i];
    if (t->opt == OPT_SGD) {
      if (t->weight_decay) g += t->weight_decay * p;
      if (t->momentum) {
        r->buf[i] = step == 1 ? g : t->momentum * r->buf[i] + g;
        g = t->nesterov ? g + t->momentum * r->buf[i] : r->buf[i];
      }
      r->p[i] = p - t->lr * g;
    } else {
      if (t->opt == OPT_ADAMW) p *= 1 - t->lr * t->weight_decay;
      else g += t->weight_decay * p;
      r->m[i] = t->beta1 * r->m[i] + (1 - t->beta1) * g;
      r->v[i] = t->beta2 * r->v[i] + (1 - t->beta2) * g * g;
      double mh = r->m[i] / (1 - pow(t->beta1, step)), vh = r->v[i] / (1 - pow(t->beta2, step));
      r->p[i] = p - t->lr * mh / (sqrt(vh) + t->eps);
    }
  }
}

static void close_to(const char *what, int step, const double *got, const double *ref, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    ck_assert_msg(fabs(got[i] - ref[i]) <= 1e-12 + 1e-9 * fabs(ref[i]),
                  "step %d: %s[%lld] = %.17g, formula gives %.17g", step, what, (long long)i,
                  got[i], ref[i]);
}

static int find(const IrGraph *g, const char *name) {
  int n = ir_find_value(g, name);
  ck_assert_msg(n >= 0, "no value %s", name);
  return n;
}

static void run_steps(IrTrain t, int nsteps) {
  Gb b = gb_new("opt");
  build_model(&b);
  t.minimize = "loss";
  TrainInfo info;
  Diag *d = diag_new(stderr);
  IrGraph *g = pass_train_graph(b.g, &t, &info, d);
  ck_assert_ptr_nonnull(g);
  ck_assert_int_eq(info.nparams, 2);
  /* structure: state PARAMs are buffers initialized to zeros; the step is phase opt */
  for (int i = 0; i < info.nstate; i++) {
    const IrNode *s = &g->nodes[info.state[i]];
    ck_assert_int_eq(s->op, OP_PARAM);
    ck_assert(!s->attr.trainable);
    ck_assert_int_eq(s->attr.init, INIT_ZEROS);
    ck_assert_int_eq(s->phase, PH_OPT);
  }
  for (int i = 0; i < info.nassign; i++) ck_assert_int_eq(g->nodes[info.assigns[i]].op, OP_ASSIGN);
  int want_state = t.opt == OPT_SGD ? (t.momentum ? 2 : 0) : 5;
  ck_assert_int_eq(info.nstate, want_state);
  ck_assert_int_eq(info.nassign, 2 + want_state);

  /* values of every leaf of g, carried from step to step */
  Vals v = vals_new(g);
  vals_fill(&v, g);
  for (int i = 0; i < info.nstate; i++) memset(v.v[info.state[i]], 0, (size_t)v.numel[info.state[i]] * sizeof(double));
  Ref ref[2];
  for (int k = 0; k < 2; k++) {
    int p = info.params[k];
    ref[k].n = v.numel[p];
    ref[k].p = malloc((size_t)ref[k].n * sizeof(double));
    memcpy(ref[k].p, v.v[p], (size_t)ref[k].n * sizeof(double));
    ref[k].buf = calloc((size_t)ref[k].n, sizeof(double));
    ref[k].m = calloc((size_t)ref[k].n, sizeof(double));
    ref[k].v = calloc((size_t)ref[k].n, sizeof(double));
  }
  for (int step = 1; step <= nsteps; step++) {
    Interp *in = gc_run(g, &v);
    for (int k = 0; k < 2; k++) {
      int64_t n;
      const double *grad = interp_value(in, info.grads[k], &n);
      ref_step(&t, &ref[k], grad, step);
      const char *pn = g->nodes[info.params[k]].name;
      close_to(pn, step, interp_value(in, info.params[k], &n), ref[k].p, ref[k].n);
      char sn[64];
      if (t.opt == OPT_SGD && t.momentum) {
        snprintf(sn, sizeof sn, "%s.momentum_buffer", pn);
        close_to(sn, step, interp_value(in, find(g, sn), &n), ref[k].buf, ref[k].n);
      }
      if (t.opt != OPT_SGD) {
        snprintf(sn, sizeof sn, "%s.adam_m", pn);
        close_to(sn, step, interp_value(in, find(g, sn), &n), ref[k].m, ref[k].n);
        snprintf(sn, sizeof sn, "%s.adam_v", pn);
        close_to(sn, step, interp_value(in, find(g, sn), &n), ref[k].v, ref[k].n);
      }
    }
    if (t.opt != OPT_SGD) {
      int64_t n;
      ck_assert_double_eq(interp_value(in, find(g, "optimizer.step"), &n)[0], step);
    }
    /* carry every PARAM's committed value into the next step */
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i].op == OP_PARAM) {
        int64_t n;
        const double *val = interp_value(in, i, &n);
        memcpy(v.v[i], val, (size_t)n * sizeof(double));
      }
    interp_free(in);
  }
  for (int i = info.first_bwd; i < g->nnodes; i++)
    ck_assert(g->nodes[i].phase == PH_BWD || g->nodes[i].phase == PH_OPT);
  for (int k = 0; k < 2; k++) free(ref[k].p), free(ref[k].buf), free(ref[k].m), free(ref[k].v);
  vals_free(&v);
  diag_free(d);
  ir_module_free(b.m);
}

START_TEST(t_sgd) {
  run_steps((IrTrain){.opt = OPT_SGD, .lr = 0.1}, 4);
  run_steps((IrTrain){.opt = OPT_SGD, .lr = 0.1, .momentum = 0.9, .weight_decay = 0.01}, 5);
  run_steps((IrTrain){.opt = OPT_SGD, .lr = 0.05, .momentum = 0.8, .weight_decay = 0.1,
                      .nesterov = true}, 5);
}
END_TEST

START_TEST(t_adam) {
  run_steps((IrTrain){.opt = OPT_ADAM, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8}, 5);
  run_steps((IrTrain){.opt = OPT_ADAM, .lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6,
                      .weight_decay = 0.1}, 5);
}
END_TEST

START_TEST(t_adamw) {
  run_steps((IrTrain){.opt = OPT_ADAMW, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                      .weight_decay = 0.01}, 5);
  run_steps((IrTrain){.opt = OPT_ADAMW, .lr = 0.1, .beta1 = 0.5, .beta2 = 0.9, .eps = 1e-3,
                      .weight_decay = 0.5}, 5);
}
END_TEST

/* three Gaussian blobs in 2-D, a 2-layer mlp trained full-batch with adam in the
 * interpreter: accuracy must reach 95% and the loss fall below a third of its start —
 * a wrong gradient or update cannot get there */
START_TEST(t_train_classifier) {
  enum { N = 48, C = 3 };
  Gb b = gb_new("blobs");
  int x = INPUT(&b, "x", N, 2), lab = LABELS(&b, "label", N);
  int lg = gb_dense(&b, gb_relu(&b, gb_dense(&b, x, 16, "fc1")), C, "fc2");
  b.g->nodes[gb_op2(&b, OP_CROSS_ENTROPY, lg, lab, NULL)].name = "loss";
  IrTrain t = {.minimize = "loss", .opt = OPT_ADAM, .lr = 0.05, .beta1 = 0.9, .beta2 = 0.999,
               .eps = 1e-8};
  TrainInfo info;
  Diag *d = diag_new(stderr);
  IrGraph *g = pass_train_graph(b.g, &t, &info, d);
  ck_assert_ptr_nonnull(g);
  Vals v = vals_new(g);
  vals_fill(&v, g);
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_PARAM)
      interp_init_param(g, i, 1, v.v[i]);
  static const double cx[C] = {0, 3, -3}, cy[C] = {3, -2, -2};
  for (int n = 0; n < N; n++) {
    int c = n % C;
    v.v[lab][n] = c;
    v.v[x][2 * n] = cx[c] + (gc_uniform() - 0.5) * 2;
    v.v[x][2 * n + 1] = cy[c] + (gc_uniform() - 0.5) * 2;
  }
  double first = 0, last = 0;
  int correct = 0;
  for (int step = 0; step < 60; step++) {
    Interp *in = gc_run(g, &v);
    int64_t k;
    last = interp_value(in, info.loss, &k)[0];
    if (step == 0) first = last;
    const double *o = interp_value(in, lg, &k);
    correct = 0;
    for (int n = 0; n < N; n++) {
      int best = 0;
      for (int c = 1; c < C; c++)
        if (o[n * C + c] > o[n * C + best]) best = c;
      correct += best == n % C;
    }
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i].op == OP_PARAM) {
        const double *val = interp_value(in, i, &k);
        memcpy(v.v[i], val, (size_t)k * sizeof(double));
      }
    interp_free(in);
  }
  ck_assert_msg(last < first / 3, "loss %g -> %g", first, last);
  ck_assert_msg(correct >= N * 95 / 100, "accuracy %d/%d", correct, N);
  vals_free(&v);
  diag_free(d);
  ir_module_free(b.m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("optimizer");
  TCase *tc = tcase_create("steps");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, t_sgd);
  tcase_add_test(tc, t_adam);
  tcase_add_test(tc, t_adamw);
  tcase_add_test(tc, t_train_classifier);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int nf = srunner_ntests_failed(r);
  srunner_free(r);
  return nf ? 1 : 0;
}
