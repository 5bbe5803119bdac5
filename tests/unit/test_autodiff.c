/* test_autodiff.c — reverse-mode autodiff against finite differences in double precision:
 * every differentiable op (broadcasting, conv/pool variants, train-mode normalization, ...)
 * and whole models (mlp, lenet, residual block, inception-like module, transformer block),
 * plus the structural guarantees: no gradients for inputs and labels, no first-layer input
 * gradient, no dead nodes, phases and scopes.
 *
 * Check: central differences with eps = 1e-6 on the reference interpreter; a gradient passes
 * when |autodiff - fd| <= 1e-7 + 1e-5*|fd| (ops) or 1e-6 + 1e-5*|fd| (models).
 */
#include "gradcheck.h"

#include "../../frontend/frontend.h"

#define RTOL 1e-5
#define ATOL 1e-7

/* y = op(x...) with a weighted-sum loss; checks and frees */
static void check_graph(Gb *b, int y, Vals *vin, int sample) {
  int l = gb_weighted_loss(b, y);
  Vals v = vals_new(b->g);
  if (vin)
    for (int i = 0; i < vin->n; i++) vals_range(&v, i, vin->lo[i], vin->hi[i]);
  gradcheck(b, l, &v, RTOL, ATOL, sample);
  vals_free(&v);
}

START_TEST(t_optable) {
  for (int op = 0; op < OP_COUNT; op++)
    ck_assert_msg(pass_autodiff_op_defined((OpKind)op), "no gradient rule for %s",
                  ir_op_name((OpKind)op));
}
END_TEST

START_TEST(t_unary) {
  static const OpKind ops[] = {OP_NEG, OP_EXP, OP_LOG, OP_SQRT, OP_TANH, OP_SIGMOID,
                               OP_RELU, OP_GELU, OP_SILU};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    Gb b = gb_new(ir_op_name(ops[i]));
    int x = PARAM(&b, "x", 3, 4);
    int y = gb_op(&b, ops[i], x, NULL);
    Vals r = vals_new(b.g);
    if (ops[i] == OP_LOG || ops[i] == OP_SQRT) vals_range(&r, x, 0.5, 2);
    else vals_range(&r, x, -2, 2);
    check_graph(&b, y, &r, 0);
    vals_free(&r);
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_powc_cast) {
  static const double ps[] = {0, 1, 2, 3, 0.5, -1.5};
  for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
    Gb b = gb_new("powc");
    int x = PARAM(&b, "x", 2, 5);
    IrAttr at = {.value = ps[i]};
    /* add x itself so x^0 still leaves x on a path to the loss */
    int y = gb_op2(&b, OP_ADD, gb_op(&b, OP_POWC, x, &at), x, NULL);
    Vals r = vals_new(b.g);
    vals_range(&r, x, 0.5, 2);
    check_graph(&b, y, &r, 0);
    vals_free(&r);
    ir_module_free(b.m);
  }
  Gb b = gb_new("cast");
  int x = PARAM(&b, "x", 2, 3);
  IrType t = b.g->nodes[x].type;
  int y = gb_build(&b, OP_CAST, &x, 1, NULL, &t);
  int l = gb_weighted_loss(&b, gb_op(&b, OP_TANH, y, NULL));
  /* cast rounds to f32, so the difference step must be far above the f32 quantum */
  TrainInfo info;
  IrGraph *gg = gc_backward(&b, l, &info);
  Vals v = vals_new(b.g);
  vals_fill(&v, b.g);
  gc_compare(gg, &info, b.g, &v, 1e-3, 1e-3, 1e-6, 0);
  vals_free(&v);
  ir_module_free(b.m);
}
END_TEST

/* binary ops on broadcasting shapes: [3,1,4] with [5,1], [2,3] with [3], [] with [2,2] */
START_TEST(t_binary_broadcast) {
  static const OpKind ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV};
  for (size_t i = 0; i < 4; i++)
    for (int s = 0; s < 3; s++) {
      Gb b = gb_new(ir_op_name(ops[i]));
      int x, y;
      if (s == 0) x = PARAM(&b, "a", 3, 1, 4), y = PARAM(&b, "b", 5, 1);
      else if (s == 1) x = PARAM(&b, "a", 2, 3), y = PARAM(&b, "b", 3);
      else x = SCALAR_PARAM(&b, "a"), y = PARAM(&b, "b", 2, 2);
      int z = gb_op2(&b, ops[i], x, y, NULL);
      Vals r = vals_new(b.g);
      vals_range(&r, y, 0.5, 2); /* divisor away from 0 */
      check_graph(&b, z, &r, 0);
      vals_free(&r);
      ir_module_free(b.m);
    }
  /* the same value in both operands accumulates two contributions */
  Gb b = gb_new("square");
  int x = PARAM(&b, "x", 4);
  check_graph(&b, gb_op2(&b, OP_MUL, x, gb_op2(&b, OP_DIV, x, gb_op(&b, OP_EXP, x, NULL), NULL), NULL), NULL, 0);
  ir_module_free(b.m);
}
END_TEST

/* where(c, a, b) on broadcasting shapes: gradients reach both branches, summed back to each
 * operand's shape; a condition computed from a parameter (a comparison) passes none */
START_TEST(t_where) {
  static const OpKind cmps[] = {OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE};
  for (size_t i = 0; i < sizeof cmps / sizeof cmps[0]; i++) {
    Gb b = gb_new(ir_op_name(cmps[i]));
    int x = INPUT(&b, "x", 3, 1, 4), t = INPUT(&b, "t", 4);
    int a = PARAM(&b, "a", 5, 1), c = PARAM(&b, "c", 4);
    int cond = gb_op2(&b, cmps[i], x, t, NULL);
    int in[3] = {cond, a, c};
    int y = gb_build(&b, OP_WHERE, in, 3, NULL, NULL);
    ck_assert_int_eq(b.g->nodes[y].type.rank, 3);
    check_graph(&b, y, NULL, 0);
    ir_module_free(b.m);
  }
  /* relu written as where(gt(p, 0), p, 0.1 * p): both branches read p */
  Gb b = gb_new("leaky");
  int p = PARAM(&b, "p", 2, 6);
  IrType st = {.dt = DT_F32, .rank = 0};
  IrAttr zv = {.value = 0}, sv = {.value = 0.1};
  int zero = gb_build(&b, OP_CONST, NULL, 0, &zv, &st), k = gb_build(&b, OP_CONST, NULL, 0, &sv, &st);
  int in[3] = {gb_op2(&b, OP_GT, p, zero, NULL), p, gb_op2(&b, OP_MUL, p, k, NULL)};
  check_graph(&b, gb_build(&b, OP_WHERE, in, 3, NULL, NULL), NULL, 0);
  ir_module_free(b.m);
}
END_TEST

/* weight tying from the language: the embedding table is also the output projection
 * (`dense(..., weight = wte.weight)`) and, inside a causal mask, the logits of a tiny
 * decoder; the one parameter's gradient sums both uses and matches finite differences */
START_TEST(t_tied_source) {
  static const char src[] =
      "model tied {\n"
      "  dim N = 2, T = 4, V = 5, D = 3\n"
      "  input idx: i32[N, T]\n"
      "  input w: f32[N, T, V]\n"
      "  e = embedding(idx, V, D, name = \"wte\")\n"
      "  s = e @ transpose(e) + embedding(arange(T, dtype = i32), T, D, name = \"wpe\") @ transpose(e)\n"
      "  a = softmax(where(tril(ones([T, T])), s, -1e9)) @ e\n"
      "  logits = dense(tanh(a), V, bias = false, weight = wte.weight)\n"
      "  loss = sum(logits * w)\n"
      "}\n";
  Diag *d = diag_new(stderr);
  IrModule *m = fe_compile_string("tied.nn", src, sizeof src - 1, NULL, d);
  ck_assert_ptr_nonnull(m);
  Gb b = {m, m->graphs[0]};
  ck_assert_int_eq(ir_param_count(b.g, true), 5 * 3 + 4 * 3);
  int loss = ir_find_value(b.g, "loss");
  Vals v = vals_new(b.g);
  for (int i = 0; i < b.g->nnodes; i++)
    if (b.g->nodes[i].op == OP_INPUT && b.g->nodes[i].type.dt == DT_I32) vals_range(&v, i, 0, 4);
  TrainInfo info = gradcheck(&b, loss, &v, RTOL, 1e-6, 0);
  ck_assert_int_eq(info.nparams, 2);
  vals_free(&v);
  ir_module_free(m);
  diag_free(d);
}
END_TEST

START_TEST(t_matmul) {
  /* shapes a, b as {rank, dims...}, trans flags */
  struct { int ra; int64_t a[4]; int rb; int64_t bb[4]; bool ta, tb; } cs[] = {
      {2, {4, 3}, 2, {3, 5}, false, false}, {2, {3, 4}, 2, {3, 5}, true, false},
      {2, {4, 3}, 2, {5, 3}, false, true},  {2, {3, 4}, 2, {5, 3}, true, true},
      {3, {2, 4, 3}, 2, {3, 5}, false, false}, {4, {2, 1, 4, 3}, 3, {3, 3, 5}, false, false},
      {3, {2, 3, 4}, 3, {2, 5, 3}, true, true}, {2, {4, 3}, 1, {3}, false, false},
      {1, {3}, 2, {3, 5}, false, false},     {1, {3}, 1, {3}, false, false},
      {1, {3}, 3, {2, 5, 3}, false, true},
  };
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    Gb b = gb_new("matmul");
    int x = gb_leaf(&b, OP_PARAM, "a", DT_F32, cs[i].a, cs[i].ra, true);
    int y = gb_leaf(&b, OP_PARAM, "b", DT_F32, cs[i].bb, cs[i].rb, true);
    IrAttr at = {.trans_a = cs[i].ta, .trans_b = cs[i].tb};
    check_graph(&b, gb_op2(&b, OP_MATMUL, x, y, &at), NULL, 0);
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_movement) {
  { /* transpose */
    Gb b = gb_new("transpose");
    int x = PARAM(&b, "x", 2, 3, 4);
    IrAttr at = {.naxes = 3, .axes = {2, 0, 1}};
    check_graph(&b, gb_op(&b, OP_TRANSPOSE, x, &at), NULL, 0);
    ir_module_free(b.m);
  }
  { /* reshape, broadcast */
    Gb b = gb_new("reshape");
    int x = PARAM(&b, "x", 3, 1);
    IrType t = gb_t(&b, DT_F32, 3, (const int64_t[]){2, 3, 4});
    int y = gb_build(&b, OP_BROADCAST, &x, 1, NULL, &t);
    check_graph(&b, gb_reshape(&b, y, SHAPE(4, 6)), NULL, 0);
    ir_module_free(b.m);
  }
  { /* concat with an input in the middle (no gradient for it), slice */
    Gb b = gb_new("concat");
    int x = PARAM(&b, "x", 2, 3), c = INPUT(&b, "c", 2, 2), z = PARAM(&b, "z", 2, 4);
    int in[3] = {x, c, z};
    IrAttr at = {.axis = 1};
    int y = gb_build(&b, OP_CONCAT, in, 3, &at, NULL);
    IrAttr sl = {.axis = 1, .start = gb_c(&b, 2), .end = gb_c(&b, 7)};
    check_graph(&b, gb_op(&b, OP_SLICE, y, &sl), NULL, 0);
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_reductions) {
  static const OpKind ops[] = {OP_SUM, OP_MEAN, OP_MAX, OP_VAR};
  struct { int naxes; int axes[3]; bool keep; int corr; } cs[] = {
      {1, {1}, false, 0}, {2, {0, 2}, true, 1}, {3, {0, 1, 2}, false, 0}, {1, {2}, true, 1}};
  for (int i = 0; i < 4; i++)
    for (int c = 0; c < 4; c++) {
      Gb b = gb_new(ir_op_name(ops[i]));
      int x = PARAM(&b, "x", 3, 4, 5);
      IrAttr at = {.naxes = cs[c].naxes, .keepdim = cs[c].keep, .correction = ops[i] == OP_VAR ? cs[c].corr : 0};
      memcpy(at.axes, cs[c].axes, sizeof cs[c].axes);
      check_graph(&b, gb_op(&b, ops[i], x, &at), NULL, 0);
      ir_module_free(b.m);
    }
  for (int axis = 0; axis < 3; axis++)
    for (int k = 0; k < 2; k++) {
      Gb b = gb_new("softmax");
      int x = PARAM(&b, "x", 2, 3, 4);
      IrAttr at = {.axis = axis};
      check_graph(&b, gb_op(&b, k ? OP_LOG_SOFTMAX : OP_SOFTMAX, x, &at), NULL, 0);
      ir_module_free(b.m);
    }
}
END_TEST

/* symbolic dims: the counts of mean/var/mse come from the graph, so the same backward graph
 * is right for every value of N */
START_TEST(t_symbolic_counts) {
  Gb b = gb_new("symbolic");
  Dim *N = gb_sym(&b, "N", 3);
  IrType t = {.dt = DT_F32, .rank = 2, .dims = {N, gb_c(&b, 4)}};
  int x = gb_leaf_t(&b, OP_PARAM, "x", t, true);
  int tg = gb_leaf_t(&b, OP_INPUT, "target", t, false);
  IrAttr m0 = {.naxes = 1, .axes = {0}};
  IrAttr v0 = {.naxes = 1, .axes = {0}, .correction = 1};
  int mean = gb_op(&b, OP_MEAN, x, &m0), var = gb_op(&b, OP_VAR, x, &v0);
  int s = gb_sumall(&b, gb_op2(&b, OP_MUL, mean, var, NULL));
  int l = gb_op2(&b, OP_ADD, s, gb_op2(&b, OP_MSE, x, tg, NULL), NULL);
  for (int64_t n = 3; n <= 5; n += 2) {
    dim_sym_set_value(b.g->dims, dim_sym_find(b.g->dims, "N"), n);
    Vals v = vals_new(b.g);
    gradcheck(&b, l, &v, RTOL, ATOL, 0);
    vals_free(&v);
  }
  ir_module_free(b.m);
}
END_TEST

START_TEST(t_conv) {
  /* C, O, k, stride, pad, dilation, groups, H */
  int cs[][8] = {{3, 4, 3, 1, 0, 1, 1, 6}, {4, 4, 3, 2, 1, 1, 1, 7}, {2, 3, 3, 1, 2, 2, 1, 7},
                 {4, 6, 3, 1, 1, 1, 2, 5}, {4, 4, 3, 2, 1, 1, 4, 6}, {2, 2, 1, 1, 0, 1, 1, 4},
                 /* depthwise: 5x5 pad 2, and stride 2 with dilation 2 */
                 {3, 3, 5, 1, 2, 1, 3, 7}, {3, 3, 3, 2, 2, 2, 3, 9}};
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    int *c = cs[i];
    Gb b = gb_new("conv2d");
    int x = PARAM(&b, "x", 2, c[0], c[7], c[7]);
    int w = PARAM(&b, "w", c[1], c[0] / c[6], c[2], c[2]);
    IrAttr at = {.kernel = {c[2], c[2]}, .stride = {c[3], c[3]}, .pad = {c[4], c[4]},
                 .dilation = {c[5], c[5]}, .groups = c[6]};
    check_graph(&b, gb_op2(&b, OP_CONV2D, x, w, &at), NULL, 30);
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_pool) {
  /* max?, k, stride, pad, dilation, H */
  int cs[][6] = {{1, 2, 2, 0, 1, 6}, {1, 3, 2, 1, 1, 7}, {1, 2, 1, 0, 2, 5},
                 {0, 2, 2, 0, 1, 6}, {0, 3, 1, 1, 1, 5}, {0, 3, 2, 1, 1, 7}};
  for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
    int *c = cs[i];
    Gb b = gb_new("pool");
    int x = PARAM(&b, "x", 2, 3, c[5], c[5]);
    IrAttr at = {.kernel = {c[1], c[1]}, .stride = {c[2], c[2]}, .pad = {c[3], c[3]},
                 .dilation = {c[4], c[4]}};
    check_graph(&b, gb_op(&b, c[0] ? OP_MAXPOOL : OP_AVGPOOL, x, &at), NULL, 0);
    ir_module_free(b.m);
  }
  /* ceil_mode (partial last windows) and count_include_pad = false, H = 6 and 5 */
  for (int i = 0; i < 6; i++) {
    Gb b = gb_new("pool_modes");
    int x = PARAM(&b, "x", 2, 2, 6, 5);
    IrAttr at = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {i % 2, i % 2}, .dilation = {1, 1},
                 .ceil_mode = i < 4, .exclude_pad = i >= 2 && i != 3};
    check_graph(&b, gb_op(&b, i == 3 ? OP_MAXPOOL : OP_AVGPOOL, x, &at), NULL, 0);
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_norms) {
  for (int train = 0; train < 2; train++)
    for (int r4 = 0; r4 < 2; r4++) {
      Gb b = gb_new("batchnorm");
      int x = r4 ? PARAM(&b, "x", 3, 2, 3, 3) : PARAM(&b, "x", 5, 3);
      int in[5] = {x, PARAM(&b, "gamma", r4 ? 2 : 3), PARAM(&b, "beta", r4 ? 2 : 3),
                   BUFFER(&b, "rmean", r4 ? 2 : 3), BUFFER(&b, "rvar", r4 ? 2 : 3)};
      IrAttr at = {.value = 1e-5, .momentum = 0.1, .train = train};
      int y = gb_build(&b, OP_BATCHNORM, in, 5, &at, NULL);
      Vals r = vals_new(b.g);
      vals_range(&r, in[4], 0.5, 1.5);
      check_graph(&b, y, &r, 0);
      vals_free(&r);
      ir_module_free(b.m);
    }
  for (int n = 1; n <= 2; n++) {
    Gb b = gb_new("layernorm");
    int x = PARAM(&b, "x", 2, 3, 4);
    int g = n == 1 ? PARAM(&b, "gamma", 4) : PARAM(&b, "gamma", 3, 4);
    int be = n == 1 ? PARAM(&b, "beta", 4) : PARAM(&b, "beta", 3, 4);
    int in[3] = {x, g, be};
    IrAttr at = {.value = 1e-5, .naxes = n};
    check_graph(&b, gb_build(&b, OP_LAYERNORM, in, 3, &at, NULL), NULL, 0);
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_dropout_embedding) {
  {
    Gb b = gb_new("dropout");
    int x = PARAM(&b, "x", 4, 5);
    IrAttr at = {.value = 0.3, .seed = 11, .train = true};
    int y = gb_op(&b, OP_DROPOUT, x, &at);
    check_graph(&b, y, NULL, 0);
    ir_module_free(b.m);
  }
  {
    Gb b = gb_new("embedding");
    int t = PARAM(&b, "table", 6, 3), idx = LABELS(&b, "idx", 2, 4);
    int y = gb_op2(&b, OP_EMBEDDING, t, idx, NULL);
    Vals r = vals_new(b.g);
    vals_range(&r, idx, 0, 6);
    check_graph(&b, y, &r, 0);
    vals_free(&r);
    ir_module_free(b.m);
  }
}
END_TEST

START_TEST(t_losses) {
  {
    Gb b = gb_new("cross_entropy");
    int lg = PARAM(&b, "logits", 4, 5), lab = LABELS(&b, "label", 4);
    int l = gb_op2(&b, OP_CROSS_ENTROPY, lg, lab, NULL);
    Vals v = vals_new(b.g);
    vals_range(&v, lab, 0, 5);
    vals_range(&v, lg, -3, 3);
    TrainInfo info = gradcheck(&b, l, &v, RTOL, ATOL, 0);
    ck_assert_int_eq(info.nparams, 1);
    vals_free(&v);
    ir_module_free(b.m);
  }
  {
    Gb b = gb_new("mse");
    int p = PARAM(&b, "pred", 3, 4), q = PARAM(&b, "other", 3, 4);
    int l = gb_op2(&b, OP_MSE, gb_op(&b, OP_TANH, p, NULL), q, NULL);
    Vals v = vals_new(b.g);
    gradcheck(&b, l, &v, RTOL, ATOL, 0);
    vals_free(&v);
    ir_module_free(b.m);
  }
}
END_TEST

/* ---- whole models ---------------------------------------------------------------------- */

/* the training graph without optimizer (train-mode batchnorm/dropout) checked against finite
 * differences of its own loss */
static TrainInfo check_model(Gb *b, Vals *v, int sample, IrGraph **out) {
  TrainInfo info;
  Diag *d = diag_new(stderr);
  SrcLoc loc = {0};
  IrGraph *gg = pass_grad_graph(b->g, "loss", loc, &info, d);
  ck_assert_ptr_nonnull(gg);
  diag_free(d);
  vals_fill(v, b->g);
  gc_compare(gg, &info, gg, v, 1e-6, RTOL, 1e-6, sample);
  if (out) *out = gg;
  return info;
}

static int count_ops(const IrGraph *g, OpKind op, Phase ph) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++) k += g->nodes[i].op == op && g->nodes[i].phase == ph;
  return k;
}

static void name_loss(Gb *b, int l) { b->g->nodes[l].name = "loss"; }

/* every node after the forward is used or is an output */
static void check_no_dead(const IrGraph *g, int first) {
  bool *used = calloc((size_t)g->nnodes, 1);
  for (int i = 0; i < g->nnodes; i++)
    for (int j = 0; j < g->nodes[i].nin; j++) used[g->nodes[i].in[j]] = true;
  for (int i = 0; i < g->noutputs; i++) used[g->outputs[i].node] = true;
  for (int i = first; i < g->nnodes; i++)
    ck_assert_msg(used[i] || g->nodes[i].op == OP_ASSIGN, "dead node %%%d %s", i,
                  ir_op_name(g->nodes[i].op));
  free(used);
}

START_TEST(t_mlp) {
  Gb b = gb_new("mlp");
  int x = INPUT(&b, "x", 4, 12), lab = LABELS(&b, "label", 4);
  int h = gb_relu(&b, gb_dense(&b, x, 16, "fc1"));
  int lg = gb_dense(&b, h, 5, "fc2");
  int l = gb_op2(&b, OP_CROSS_ENTROPY, lg, lab, NULL);
  name_loss(&b, l);
  Vals v = vals_new(b.g);
  vals_range(&v, lab, 0, 5);
  IrGraph *g;
  TrainInfo info = check_model(&b, &v, 0, &g);
  ck_assert_int_eq(info.nparams, 4);
  /* fc2: dW and dh; fc1: dW only — the first layer's input gradient is never built */
  ck_assert_int_eq(count_ops(g, OP_MATMUL, PH_BWD), 3);
  IrType xt = g->nodes[x].type;
  for (int i = info.first_bwd; i < g->nnodes; i++) {
    ck_assert_msg(!ir_type_eq(&g->nodes[i].type, &xt), "%%%d has the input's type", i);
    ck_assert_int_ne(g->nodes[i].type.dt, DT_I32);
    ck_assert_int_eq(g->nodes[i].phase, PH_BWD);
  }
  for (int i = 0; i < info.nparams; i++) {
    const IrNode *gn = &g->nodes[info.grads[i]];
    char want[64];
    snprintf(want, sizeof want, "%s.grad", g->nodes[info.params[i]].name);
    ck_assert_str_eq(gn->name, want);
    ck_assert_str_eq(gn->scope, strncmp(want, "fc1", 3) ? "fc2" : "fc1");
    ck_assert_int_eq(ir_find_value(g, want), info.grads[i]);
  }
  check_no_dead(g, info.first_bwd);
  vals_free(&v);
  ir_module_free(b.m);
}
END_TEST

START_TEST(t_lenet) {
  Gb b = gb_new("lenet");
  int x = INPUT(&b, "x", 2, 1, 12, 12), lab = LABELS(&b, "label", 2);
  int c1 = gb_conv(&b, x, 4, 5, 1, 0, 1, "conv1"); /* 8x8 */
  c1 = gb_op2(&b, OP_ADD, c1, PARAM(&b, "conv1.bias", 4, 1, 1), NULL);
  IrAttr mp = {.kernel = {2, 2}, .stride = {2, 2}};
  int p1 = gb_op(&b, OP_MAXPOOL, gb_relu(&b, c1), &mp); /* 4x4 */
  int c2 = gb_relu(&b, gb_conv(&b, p1, 6, 3, 1, 1, 1, "conv2"));
  int p2 = gb_op(&b, OP_AVGPOOL, c2, &mp); /* 2x2 */
  int f = gb_reshape(&b, p2, SHAPE(2, 24));
  int lg = gb_dense(&b, gb_op(&b, OP_TANH, gb_dense(&b, f, 10, "fc1"), NULL), 3, "fc2");
  name_loss(&b, gb_op2(&b, OP_CROSS_ENTROPY, lg, lab, NULL));
  Vals v = vals_new(b.g);
  vals_range(&v, lab, 0, 3);
  IrGraph *g;
  TrainInfo info = check_model(&b, &v, 12, &g);
  ck_assert_int_eq(info.nparams, 7);
  ck_assert_int_eq(count_ops(g, OP_CONV2D_BWD_DATA, PH_BWD), 1); /* conv2 only */
  ck_assert_int_eq(count_ops(g, OP_CONV2D_BWD_FILTER, PH_BWD), 2);
  check_no_dead(g, info.first_bwd);
  vals_free(&v);
  ir_module_free(b.m);
}
END_TEST

START_TEST(t_residual) {
  Gb b = gb_new("resblock");
  int x = INPUT(&b, "x", 3, 4, 5, 5), lab = LABELS(&b, "label", 3);
  int h = gb_relu(&b, gb_bn(&b, gb_conv(&b, x, 4, 3, 1, 1, 1, "conv1"), "bn1"));
  h = gb_bn(&b, gb_conv(&b, h, 4, 3, 1, 1, 1, "conv2"), "bn2");
  h = gb_relu(&b, gb_op2(&b, OP_ADD, h, x, NULL));
  IrAttr gap = {.naxes = 2, .axes = {2, 3}};
  int lg = gb_dense(&b, gb_op(&b, OP_MEAN, h, &gap), 3, "fc");
  name_loss(&b, gb_op2(&b, OP_CROSS_ENTROPY, lg, lab, NULL));
  Vals v = vals_new(b.g);
  vals_range(&v, lab, 0, 3);
  IrGraph *g;
  TrainInfo info = check_model(&b, &v, 12, &g);
  ck_assert_int_eq(info.nparams, 8); /* 2 conv + 2x2 bn + fc weight/bias; no running stats */
  ck_assert_int_eq(count_ops(g, OP_CONV2D_BWD_DATA, PH_BWD), 1);
  ck_assert_int_eq(info.nassign, 4); /* running mean/var of bn1, bn2 */
  check_no_dead(g, info.first_bwd);
  vals_free(&v);
  ir_module_free(b.m);
}
END_TEST

START_TEST(t_inception) {
  Gb b = gb_new("inception");
  int x = INPUT(&b, "x", 2, 3, 5, 5), tg = INPUT(&b, "target", 2, 4);
  int b1 = gb_relu(&b, gb_conv(&b, x, 2, 1, 1, 0, 1, "b1"));
  int b3 = gb_relu(&b, gb_conv(&b, gb_relu(&b, gb_conv(&b, x, 2, 1, 1, 0, 1, "b3a")), 3, 3, 1, 1, 1, "b3b"));
  int b5 = gb_bn(&b, gb_conv(&b, x, 2, 5, 1, 2, 1, "b5"), "b5bn");
  IrAttr mp = {.kernel = {3, 3}, .stride = {1, 1}, .pad = {1, 1}};
  int bp = gb_conv(&b, gb_op(&b, OP_MAXPOOL, x, &mp), 2, 1, 1, 0, 1, "bp");
  int in[4] = {b1, b3, b5, bp};
  IrAttr cat = {.axis = 1};
  int y = gb_build(&b, OP_CONCAT, in, 4, &cat, NULL);
  IrAttr gap = {.naxes = 2, .axes = {2, 3}};
  int o = gb_dense(&b, gb_op(&b, OP_MEAN, y, &gap), 4, "fc");
  name_loss(&b, gb_op2(&b, OP_MSE, o, tg, NULL));
  Vals v = vals_new(b.g);
  IrGraph *g;
  TrainInfo info = check_model(&b, &v, 10, &g);
  ck_assert_int_eq(count_ops(g, OP_CONV2D_BWD_DATA, PH_BWD), 1); /* b3b only */
  check_no_dead(g, info.first_bwd);
  vals_free(&v);
  ir_module_free(b.m);
}
END_TEST

static int ln(Gb *b, int x, const char *name) {
  char gn[64], bn[64];
  snprintf(gn, sizeof gn, "%s.weight", name);
  snprintf(bn, sizeof bn, "%s.bias", name);
  int in[3] = {x, PARAM(b, gn, 8), PARAM(b, bn, 8)};
  IrAttr at = {.value = 1e-5, .naxes = 1};
  return gb_build(b, OP_LAYERNORM, in, 3, &at, NULL);
}

START_TEST(t_transformer) {
  Gb b = gb_new("transformer");
  int tok = LABELS(&b, "tokens", 2, 4), tg = INPUT(&b, "target", 2, 4, 8);
  int x = gb_op2(&b, OP_EMBEDDING, PARAM(&b, "embed.weight", 7, 8), tok, NULL); /* [2,4,8] */
  int h = ln(&b, x, "ln1");
  int q = gb_dense(&b, h, 8, "attn.q"), k = gb_dense(&b, h, 8, "attn.k"), vv = gb_dense(&b, h, 8, "attn.v");
  IrAttr tr = {.naxes = 3, .axes = {0, 2, 1}};
  int s = gb_op2(&b, OP_MATMUL, q, gb_op(&b, OP_TRANSPOSE, k, &tr), NULL); /* [2,4,4] */
  IrType st = {.dt = DT_F32, .rank = 0};
  IrAttr sc = {.value = 1 / sqrt(8.0)};
  s = gb_op2(&b, OP_MUL, s, gb_build(&b, OP_CONST, NULL, 0, &sc, &st), NULL);
  IrAttr sm = {.axis = 2};
  int att = gb_op(&b, OP_SOFTMAX, s, &sm);
  IrAttr dr = {.value = 0.2, .seed = 3};
  att = gb_op(&b, OP_DROPOUT, att, &dr);
  int x1 = gb_op2(&b, OP_ADD, x, gb_dense(&b, gb_op2(&b, OP_MATMUL, att, vv, NULL), 8, "attn.out"), NULL);
  int m = gb_dense(&b, gb_op(&b, OP_GELU, gb_dense(&b, ln(&b, x1, "ln2"), 16, "mlp.fc1"), NULL), 8, "mlp.fc2");
  int y = gb_op2(&b, OP_ADD, x1, m, NULL);
  name_loss(&b, gb_op2(&b, OP_MSE, y, tg, NULL));
  Vals v = vals_new(b.g);
  vals_range(&v, tok, 0, 7);
  IrGraph *g;
  TrainInfo info = check_model(&b, &v, 10, &g);
  ck_assert_int_eq(info.nparams, 17);
  ck_assert_int_eq(count_ops(g, OP_DROPOUT_BWD, PH_BWD), 1);
  ck_assert_int_eq(count_ops(g, OP_EMBEDDING_BWD, PH_BWD), 1);
  check_no_dead(g, info.first_bwd);
  vals_free(&v);
  ir_module_free(b.m);
}
END_TEST

/* running statistics of train-mode batchnorm follow PyTorch: unbiased variance, momentum */
START_TEST(t_bn_running_stats) {
  Gb b = gb_new("bnstats");
  int x = INPUT(&b, "x", 4, 2, 3, 3);
  int y = gb_bn(&b, gb_conv(&b, x, 2, 1, 1, 0, 1, "conv"), "bn");
  name_loss(&b, gb_sumall(&b, gb_op(&b, OP_TANH, y, NULL)));
  Vals v = vals_new(b.g);
  vals_fill(&v, b.g);
  int rm = ir_find_value(b.g, "bn.running_mean"), rv = ir_find_value(b.g, "bn.running_var");
  int conv = b.g->nodes[y].in[0];
  TrainInfo info;
  Diag *d = diag_new(stderr);
  SrcLoc loc = {0};
  IrGraph *g = pass_grad_graph(b.g, "loss", loc, &info, d);
  ck_assert_ptr_nonnull(g);
  ck_assert(g->nodes[y].attr.train);
  ck_assert(!b.g->nodes[y].attr.train); /* forward graph untouched */
  Interp *in = gc_run(g, &v);
  int64_t k;
  const double *c = interp_value(in, conv, &k);
  const double *nm = interp_value(in, rm, &k), *nv = interp_value(in, rv, &k);
  for (int ch = 0; ch < 2; ch++) {
    double s = 0, s2 = 0;
    for (int n = 0; n < 4; n++)
      for (int j = 0; j < 9; j++) s += c[(n * 2 + ch) * 9 + j];
    double mean = s / 36;
    for (int n = 0; n < 4; n++)
      for (int j = 0; j < 9; j++) s2 += pow(c[(n * 2 + ch) * 9 + j] - mean, 2);
    double em = 0.9 * v.v[rm][ch] + 0.1 * mean, ev = 0.9 * v.v[rv][ch] + 0.1 * s2 / 35;
    ck_assert_msg(fabs(nm[ch] - em) <= 1e-12 + 1e-12 * fabs(em), "running_mean %g vs %g", nm[ch], em);
    ck_assert_msg(fabs(nv[ch] - ev) <= 1e-12 + 1e-12 * fabs(ev), "running_var %g vs %g", nv[ch], ev);
  }
  interp_free(in);
  diag_free(d);
  vals_free(&v);
  ir_module_free(b.m);
}
END_TEST

START_TEST(t_errors) {
  Gb b = gb_new("err");
  int x = PARAM(&b, "x", 3);
  int y = gb_op(&b, OP_TANH, x, NULL);
  TrainInfo info;
  FILE *sink = fopen("/dev/null", "w");
  Diag *d = diag_new(sink);
  ck_assert_int_eq(pass_autodiff(b.g, y, &info, d), -1); /* not a scalar */
  SrcLoc loc = {0};
  ck_assert_ptr_null(pass_grad_graph(b.g, "nope", loc, &info, d));
  ck_assert_int_ge(diag_errors(d), 2);
  diag_free(d);
  fclose(sink);
  ir_module_free(b.m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("autodiff");
  TCase *ops = tcase_create("ops"), *models = tcase_create("models");
  tcase_set_timeout(ops, 120);
  tcase_set_timeout(models, 300);
  tcase_add_test(ops, t_optable);
  tcase_add_test(ops, t_unary);
  tcase_add_test(ops, t_powc_cast);
  tcase_add_test(ops, t_binary_broadcast);
  tcase_add_test(ops, t_where);
  tcase_add_test(ops, t_tied_source);
  tcase_add_test(ops, t_matmul);
  tcase_add_test(ops, t_movement);
  tcase_add_test(ops, t_reductions);
  tcase_add_test(ops, t_symbolic_counts);
  tcase_add_test(ops, t_conv);
  tcase_add_test(ops, t_pool);
  tcase_add_test(ops, t_norms);
  tcase_add_test(ops, t_dropout_embedding);
  tcase_add_test(ops, t_losses);
  tcase_add_test(ops, t_errors);
  tcase_add_test(models, t_mlp);
  tcase_add_test(models, t_lenet);
  tcase_add_test(models, t_residual);
  tcase_add_test(models, t_inception);
  tcase_add_test(models, t_transformer);
  tcase_add_test(models, t_bn_running_stats);
  suite_add_tcase(s, ops);
  suite_add_tcase(s, models);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int nf = srunner_ntests_failed(r);
  srunner_free(r);
  return nf ? 1 : 0;
}
