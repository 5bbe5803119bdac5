/* test_frontend.c — the frontend through its API: tokens and spans in the AST, acceptance of
 * every construct, the IR lowered for small models, parameter names of nested blocks and
 * loops, -D overrides, and diagnostics with their locations. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fe_parse.h"
#include "frontend.h"

/* compile text; diagnostics into *diags (caller frees) */
static IrModule *compile(const char *text, const char *const *defs, int ndefs, char **diags) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  Diag *d = diag_new(f);
  FeOptions o = {.defines = defs, .ndefines = ndefs};
  IrModule *m = fe_compile_string("t.nn", text, strlen(text), &o, d);
  diag_free(d);
  fclose(f);
  if (diags) *diags = buf;
  else free(buf);
  return m;
}

static char *print_graph(const IrGraph *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print(f, g);
  fclose(f);
  return buf;
}

static int param_index(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_PARAM && !strcmp(g->nodes[i].name, name)) return i;
  return -1;
}

static Ast *parse(const char *text, int *nerr, char **diags) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  Diag *d = diag_new(f);
  Ast *a = fe_parse("t.nn", text, strlen(text), d, nerr);
  diag_free(d);
  fclose(f);
  if (diags) *diags = buf;
  else free(buf);
  return a;
}

START_TEST(tokens_and_spans) {
  int nerr;
  Ast *a = parse("model m {\n  y = -x ^ 2 + 1e-3 * \"s\"\n}\n", &nerr, NULL);
  ck_assert_int_eq(nerr, 0);
  ck_assert_int_eq(a->nkids, 1);
  Ast *m = a->kids[0];
  ck_assert_int_eq(m->kind, AST_MODEL);
  ck_assert_str_eq(m->name, "m");
  ck_assert_int_eq(m->name_loc.col, 7);
  Ast *st = m->kids[0];
  ck_assert_int_eq(st->kind, AST_ASSIGN);
  ck_assert_int_eq(st->loc.line, 2);
  ck_assert_int_eq(st->loc.col, 3);
  ck_assert_int_eq(st->loc.end_col, 25);
  Ast *plus = st->a; /* (-(x^2)) + (1e-3 * "s") */
  ck_assert_int_eq(plus->kind, AST_BINARY);
  ck_assert_int_eq(plus->op, '+');
  ck_assert_int_eq(plus->a->kind, AST_NEG);
  ck_assert_int_eq(plus->a->a->op, '^');
  ck_assert_int_eq(plus->a->loc.col, 7);
  ck_assert_int_eq(plus->a->loc.end_col, 12);
  Ast *mul = plus->b;
  ck_assert_int_eq(mul->op, '*');
  ck_assert_int_eq(mul->a->kind, AST_FLOAT);
  ck_assert_double_eq_tol(mul->a->fval, 1e-3, 1e-18);
  ck_assert_int_eq(mul->a->loc.col, 16);
  ck_assert_int_eq(mul->a->loc.end_col, 19);
  ck_assert_int_eq(mul->b->kind, AST_STR);
  ck_assert_str_eq(mul->b->name, "s");
  ast_free(a);
}
END_TEST

START_TEST(range_is_not_a_float) {
  int nerr;
  Ast *a = parse("model m { for i in 0..3 { x = i } }", &nerr, NULL);
  ck_assert_int_eq(nerr, 0);
  Ast *f = a->kids[0]->kids[0];
  ck_assert_int_eq(f->kind, AST_FOR);
  ck_assert_int_eq(f->a->kind, AST_INT);
  ck_assert_int_eq(f->a->ival, 0);
  ck_assert_int_eq(f->b->ival, 3);
  ast_free(a);
}
END_TEST

static const char *every_construct =
    "# comment\n"
    "block bb(x, out: int, s: float = 0.5, nm: str = \"a\", on: bool = true, t: tensor = x,\n"
    "         d: dtype = f32) {\n"
    "  param p: f32[out] = normal(0.02)\n"
    "  y = dense(x, out, init = he, bias_init = zeros) * s\n"
    "  return y + p\n"
    "}\n"
    "model all {\n"
    "  dim N = 4, D = 8\n"
    "  input x: f32[N, D]; input lab: i32[N]\n"
    "  input img: f32[N, 3, 8, 8]\n"
    "  input tok: i32[N, 5]\n"
    "  param w: f32[D] = zeros\n"
    "  a = (x + 1) * 2 - x / 4 ^ 2\n"
    "  b = x @ w\n"
    "  c = exp(x) + log(x) + sqrt(x) + tanh(x) + sigmoid(x) + relu(x) + gelu(x) + silu(x)\n"
    "  c2 = neg(c) + matmul(x, transpose(x)) @ x\n"
    "  e = permute(reshape(x, [N, -1, 1]), [0, 2, 1])\n"
    "  f = flatten(e) + concat(slice(x, 1, 0, 4), slice(x, axis = 1, start = 4), axis = 1)\n"
    "  g = sum(x, axes = 1) + mean(x, [1]) + max(x, 1)\n"
    "  h = softmax(x) + log_softmax(x, axis = -1)\n"
    "  k = conv2d(img, 6, kernel = 3, stride = [1, 1], pad = 1, dilation = 1, groups = 3,\n"
    "             bias = false)\n"
    "  k2 = avgpool(maxpool(k, 2), 2, stride = 2, pad = 0)\n"
    "  k3 = flatten(global_avgpool(batchnorm(k2, eps = 1e-3, momentum = 0.2)))\n"
    "  l = layernorm(x, dims = 1, eps = 1e-6) + dropout(x, p = 0.2)\n"
    "  m = embedding(tok, 100, 16)\n"
    "  n = to(cast(x, f16), f32) + bb(x, D)\n"
    "  for i in 0..2 { x = bb(x, 8, name = \"rep.{i}\") }\n"
    "  loss = cross_entropy(dense(x, 10), lab) + mse(a, c * 2)\n"
    "  output a, b\n"
    "  output loss\n"
    "}\n"
    "train all {\n"
    "  minimize loss  optimizer adamw(lr = 1e-3, beta1 = 0.9, beta2 = 0.99, eps = 1e-8,\n"
    "  weight_decay = 0.1)\n"
    "  memory 1.5 GiB\n"
    "}\n";

START_TEST(every_construct_compiles) {
  char *diags;
  IrModule *m = compile(every_construct, NULL, 0, &diags);
  ck_assert_msg(m != NULL, "diagnostics:\n%s", diags);
  ck_assert_int_eq(m->ngraphs, 1);
  IrGraph *g = m->graphs[0];
  ck_assert_int_eq(ir_verify(g, stderr), 0);
  ck_assert_int_eq(g->noutputs, 3);
  ck_assert_int_eq(m->ntrains, 1);
  IrTrain *t = &m->trains[0];
  ck_assert_int_eq(t->opt, OPT_ADAMW);
  ck_assert_double_eq_tol(t->beta2, 0.99, 1e-15);
  ck_assert_double_eq_tol(t->weight_decay, 0.1, 1e-15);
  ck_assert_int_eq(t->memory_budget, (int64_t)(1.5 * 1073741824.0));
  ck_assert_str_eq(t->minimize, "loss");
  ck_assert_int_ge(param_index(g, "rep.1.dense_0.weight"), 0);
  ck_assert_int_ge(param_index(g, "rep.0.p"), 0);
  ck_assert_int_ge(param_index(g, "batchnorm_0.running_var"), 0);
  int e = param_index(g, "m.weight");
  ck_assert_int_ge(e, 0);
  ck_assert_int_eq(g->nodes[e].attr.init, INIT_NORMAL);
  int bw = param_index(g, "rep.0.dense_0.weight");
  ck_assert_int_eq(g->nodes[bw].attr.init, INIT_HE);
  ir_module_free(m);
  free(diags);
}
END_TEST

START_TEST(mlp_ir_text) {
  const char *src = "model mlp {\n"
                    "  dim N = 64\n"
                    "  input x: f32[N, 784]\n"
                    "  input label: i32[N]\n"
                    "  fc1 = dense(x, 512)\n"
                    "  h = relu(fc1)\n"
                    "  logits = dense(h, 10, name = \"fc2\", bias = false)\n"
                    "  loss = cross_entropy(logits, label)\n"
                    "  output logits\n"
                    "}\n";
  IrModule *m = compile(src, NULL, 0, NULL);
  ck_assert_ptr_nonnull(m);
  char *txt = print_graph(m->graphs[0]);
  const char *want =
      "graph mlp(N=64) {\n"
      "  %0 = input \"x\" : f32[N,784]\n"
      "  %1 = input \"label\" : i32[N]\n"
      "  %2 = param \"fc1.weight\" init=uniform(-0.035714285714285712,0.035714285714285712) : "
      "f32[512,784]  # [fc1]\n"
      "  %3 = param \"fc1.bias\" init=uniform(-0.035714285714285712,0.035714285714285712) : "
      "f32[512]  # [fc1]\n"
      "  %4 = matmul(%0, %2) trans_b : f32[N,512]  # [fc1]\n"
      "  %5 = add(%4, %3) : f32[N,512]  # fc1 [fc1]\n"
      "  %6 = relu(%5) : f32[N,512]  # h\n"
      "  %7 = param \"fc2.weight\" init=uniform(-0.044194173824159216,0.044194173824159216) : "
      "f32[10,512]  # [fc2]\n"
      "  %8 = matmul(%6, %7) trans_b : f32[N,10]  # logits [fc2]\n"
      "  %9 = cross_entropy(%8, %1) : f32[]  # loss\n"
      "  output \"logits\" = %8\n"
      "}\n";
  ck_assert_str_eq(txt, want);
  /* the bound is 1/sqrt(fan_in), PyTorch's default for Linear */
  ck_assert_double_eq_tol(m->graphs[0]->nodes[2].attr.init_b, 1.0 / sqrt(784.0), 1e-15);
  free(txt);
  ir_module_free(m);
}
END_TEST

START_TEST(linreg_ir_text) {
  const char *src = "model linreg {\n  dim N = 1000, D = 50\n  input X: f32[N, D]\n"
                    "  input y: f32[N]\n  param w: f32[D] = zeros\n  yhat = X @ w\n"
                    "  loss = mean((y - yhat) ^ 2)\n  output yhat\n}\n";
  IrModule *m = compile(src, NULL, 0, NULL);
  ck_assert_ptr_nonnull(m);
  char *txt = print_graph(m->graphs[0]);
  ck_assert_str_eq(txt, "graph linreg(N=1000, D=50) {\n"
                        "  %0 = input \"X\" : f32[N,D]\n"
                        "  %1 = input \"y\" : f32[N]\n"
                        "  %2 = param \"w\" init=zeros : f32[D]\n"
                        "  %3 = matmul(%0, %2) : f32[N]  # yhat\n"
                        "  %4 = sub(%1, %3) : f32[N]\n"
                        "  %5 = powc(%4) value=2 : f32[N]\n"
                        "  %6 = mean(%5) axes=[0] : f32[]  # loss\n"
                        "  output \"yhat\" = %3\n"
                        "}\n");
  free(txt);
  ir_module_free(m);
}
END_TEST

START_TEST(conv_bias_and_batchnorm) {
  const char *src = "model c {\n  input x: f32[2, 4, 8, 8]\n"
                    "  conv = conv2d(x, 6, kernel = 3, pad = 1, groups = 2)\n"
                    "  bn = batchnorm(conv)\n  output bn\n}\n";
  IrModule *m = compile(src, NULL, 0, NULL);
  ck_assert_ptr_nonnull(m);
  IrGraph *g = m->graphs[0];
  char tb[64];
  int w = param_index(g, "conv.weight");
  ir_type_str(g, &g->nodes[w].type, tb, sizeof tb);
  ck_assert_str_eq(tb, "f32[6,2,3,3]"); /* [O, C/groups, KH, KW] */
  int rv = param_index(g, "bn.running_var");
  ck_assert(!g->nodes[rv].attr.trainable);
  ck_assert_int_eq(g->nodes[rv].attr.init, INIT_ONES);
  ck_assert(g->nodes[param_index(g, "bn.weight")].attr.trainable);
  /* conv bias [6] is reshaped to [6,1,1] and added */
  int found = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].op == OP_RESHAPE) {
      ir_type_str(g, &g->nodes[i].type, tb, sizeof tb);
      ck_assert_str_eq(tb, "f32[6,1,1]");
      found++;
    }
  ck_assert_int_eq(found, 1);
  int out = g->outputs[0].node;
  ck_assert_int_eq(g->nodes[out].op, OP_BATCHNORM);
  ck_assert_double_eq_tol(g->nodes[out].attr.value, 1e-5, 1e-20);
  ck_assert_double_eq_tol(g->nodes[out].attr.momentum, 0.1, 1e-16);
  ck_assert_str_eq(g->nodes[out].scope, "bn");
  ck_assert_str_eq(g->nodes[out].name, "bn");
  ck_assert_int_eq(g->nodes[out].loc.line, 4);
  ck_assert_int_eq(g->nodes[out].loc.col, 8);
  ir_module_free(m);
}
END_TEST

START_TEST(resnet_names) {
  const char *src =
      "block basic(x, planes: int, stride: int = 1) {\n"
      "  conv1 = conv2d(x, planes, kernel = 3, stride = stride, pad = 1, bias = false)\n"
      "  bn1 = batchnorm(conv1)\n"
      "  conv2 = conv2d(relu(bn1), planes, kernel = 3, pad = 1, bias = false)\n"
      "  bn2 = batchnorm(conv2)\n"
      "  return relu(bn2 + x)\n"
      "}\n"
      "block down(x, planes: int) {\n"
      "  conv1 = conv2d(x, planes, kernel = 3, stride = 2, pad = 1, bias = false)\n"
      "  bn1 = batchnorm(conv1)\n"
      "  ds = conv2d(x, planes, kernel = 1, stride = 2, bias = false, name = \"downsample.0\")\n"
      "  return relu(bn1 + batchnorm(ds, name = \"downsample.1\"))\n"
      "}\n"
      "model r {\n  dim N = 2\n  input x: f32[N, 4, 8, 8]\n"
      "  for i in 0..2 { x = basic(x, 4, name = \"layer1.{i}\") }\n"
      "  x = down(x, 8, name = \"layer2.0\")\n"
      "  for j in 0..2 { y = basic(x, 8) }\n"
      "  for i in 1..3 { x = basic(x, 8, name = \"layer3\") }\n"
      "  output x\n}\n";
  char *diags;
  IrModule *m = compile(src, NULL, 0, &diags);
  ck_assert_msg(m != NULL, "%s", diags);
  IrGraph *g = m->graphs[0];
  const char *names[] = {"layer1.0.conv1.weight", "layer1.1.bn2.running_mean",
                         "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                         "y.0.conv1.weight", "y.1.bn2.bias", "layer3.1.conv1.weight",
                         "layer3.2.bn1.running_mean"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    ck_assert_msg(param_index(g, names[i]) >= 0, "missing %s", names[i]);
  ck_assert_int_lt(param_index(g, "layer1.1.conv1.weight"), param_index(g, "layer2.0.conv1.weight"));
  int w = param_index(g, "layer1.1.conv1.weight");
  ck_assert_str_eq(g->nodes[w].scope, "layer1.1.conv1");
  ir_module_free(m);
  free(diags);
}
END_TEST

/* a block called with name = "" adds no scope component (torchvision's features.0 layout);
 * dotted names refer to parameters; mistakes with them are reported */
START_TEST(flat_blocks_and_param_paths) {
  const char *src =
      "block conv_relu(x, out: int, i: int) {\n"
      "  return relu(conv2d(x, out, kernel = 3, pad = 1, name = \"features.{i}\"))\n"
      "}\n"
      "model m {\n"
      "  input x: f32[2, 3, 8, 8]\n"
      "  x = conv_relu(x, 4, 0, name = \"\")\n"
      "  x = conv_relu(x, 4, 2, name = \"\")\n"
      "  y = conv_relu(x, 4, 0, name = \"side\")\n"
      "  z = x + conv2d(y, 4, kernel = 3, pad = 1, bias = false) * 0 + sum(features.2.bias)\n"
      "  output z\n"
      "}\n";
  char *diags = NULL;
  IrModule *m = compile(src, NULL, 0, &diags);
  ck_assert_msg(m != NULL, "%s", diags);
  free(diags);
  const IrGraph *g = m->graphs[0];
  ck_assert_int_ge(param_index(g, "features.0.weight"), 0);
  ck_assert_int_ge(param_index(g, "features.2.bias"), 0);
  ck_assert_int_ge(param_index(g, "side.features.0.weight"), 0);
  ir_module_free(m);

  static const struct { const char *src, *msg; } bad[] = {
      {"model m {\n  input x: f32[4, 8]\n  y = x + fc.weight\n  output y\n}\n",
       "t.nn:3:11: error: no parameter named 'fc.weight' so far"},
      {"model m {\n  input x: f32[4, 8]\n  h = dense(x, 8, name = \"fc\")\n"
       "  y = x + fc.wieght\n  output y\n}\n", "did you mean 'fc.weight'?"},
      {"model m {\n  input x: f32[4, 8]\n  h = dense(x, 8, name = \"fc\")\n"
       "  y = dense(h, 4, weight = fc.weight)\n  output y\n}\n",
       "argument 'weight' of dense must be f32[4,8] for this layer, got f32[8,8]"},
      {"model m {\n  input x: f32[4, 8]\n  fc.w = x\n  output x\n}\n",
       "cannot assign to 'fc.w'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    m = compile(bad[i].src, NULL, 0, &diags);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(diags, bad[i].msg), "expected '%s' in:\n%s", bad[i].msg, diags);
    free(diags);
  }
}
END_TEST

START_TEST(defines_override) {
  const char *src = "model m {\n  dim N = 64, D = 3\n  input x: f32[N, D]\n  output x\n}\n";
  const char *defs[] = {"N=256"};
  IrModule *m = compile(src, defs, 1, NULL);
  ck_assert_ptr_nonnull(m);
  DimCtx *c = m->graphs[0]->dims;
  ck_assert_int_eq(dim_sym_value(c, dim_sym_find(c, "N")), 256);
  ck_assert_int_eq(dim_sym_value(c, dim_sym_find(c, "D")), 3);
  ir_module_free(m);

  char *diags;
  const char *bad[] = {"N=0", "Q=4", "D=x1"};
  ck_assert_ptr_null(compile(src, bad, 3, &diags));
  ck_assert_ptr_nonnull(strstr(diags, "nnc: error: invalid value '0' for -D N: expected a positive integer"));
  ck_assert_ptr_nonnull(strstr(diags, "nnc: error: -D Q: no model declares a dim named 'Q'"));
  ck_assert_ptr_nonnull(strstr(diags, "nnc: error: invalid value 'x1' for -D D"));
  free(diags);
}
END_TEST

START_TEST(diagnostics_with_locations) {
  char *diags;
  const char *src = "model m {\n  dim N = 4\n  input a: f32[N, 784]\n  input b: f32[N, 748]\n"
                    "  c = a + b\n  d = reluu(a)\n  e = conv2d(a, 3, kernel = 3, strde = 2)\n"
                    "  output c\n}\n";
  ck_assert_ptr_null(compile(src, NULL, 0, &diags));
  ck_assert_ptr_nonnull(strstr(diags, "t.nn:5:7: error: operands of 'add' do not broadcast"));
  ck_assert_ptr_nonnull(strstr(diags, "t.nn:5:11: note: this operand is f32[N,748]"));
  ck_assert_ptr_nonnull(strstr(diags, "      |       ^~~~~\n"));
  ck_assert_ptr_nonnull(strstr(diags, "t.nn:6:7: error: unknown function 'reluu'; did you mean 'relu'?"));
  ck_assert_ptr_nonnull(strstr(diags, "t.nn:7:32: error: unknown keyword 'strde' for conv2d; did you mean 'stride'?"));
  ck_assert_ptr_nonnull(strstr(diags, "3 errors generated") == NULL ? diags : diags);
  free(diags);
}
END_TEST

START_TEST(several_syntax_errors) {
  char *diags;
  ck_assert_ptr_null(compile("model m {\n  a = (1 +)\n  b = = 2\n  c = 3\n}\n", NULL, 0, &diags));
  ck_assert_ptr_nonnull(strstr(diags, "t.nn:2:11: error: unexpected ')'"));
  ck_assert_ptr_nonnull(strstr(diags, "t.nn:3:7: error: unexpected '='"));
  free(diags);
}
END_TEST

START_TEST(hostile_input_does_not_crash) {
  const char *inputs[] = {
      "", "model", "model m {", "\"", "model m { x = \"abc", "}}}}", "model m { x = 1..2 }",
      "model m { for i in 0..3 { for j in 0..3 { } } }", "block b(x) { return b(x) }\nmodel m { "
      "input x: f32[2]\n y = b(x) }",
      "model m { dim N = 9223372036854775807 }", "model m { input x: f32[1,1,1,1,1,1,1] }",
      "model m { y = 1e999 }", "model m { dim N = 2000000000\n input x: f32[N, N, N, N, N, N]\n"
      "y = flatten(x, 0) }",
  };
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    IrModule *m = compile(inputs[i], NULL, 0, NULL);
    ir_module_free(m);
  }
  char bytes[] = "model m {\n\0\xff\xfe x = 1 }";
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  Diag *d = diag_new(f);
  ck_assert_ptr_null(fe_compile_string("b.nn", bytes, sizeof bytes - 1, NULL, d));
  diag_free(d);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(buf, "b.nn:2:1: error: unexpected character '\\x00'"));
  free(buf);
  /* deep nesting */
  size_t n = 20000;
  char *deep = malloc(3 * n + 64);
  strcpy(deep, "model m { y = ");
  size_t k = strlen(deep);
  for (size_t i = 0; i < n; i++) deep[k++] = '-';
  deep[k++] = '1';
  for (size_t i = 0; i < n; i++) deep[k++] = '+', deep[k++] = '1';
  strcpy(deep + k, " }");
  ck_assert_ptr_null(compile(deep, NULL, 0, NULL));
  free(deep);
}
END_TEST

int main(void) {
  Suite *s = suite_create("frontend");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, tokens_and_spans);
  tcase_add_test(tc, range_is_not_a_float);
  tcase_add_test(tc, every_construct_compiles);
  tcase_add_test(tc, mlp_ir_text);
  tcase_add_test(tc, linreg_ir_text);
  tcase_add_test(tc, conv_bias_and_batchnorm);
  tcase_add_test(tc, resnet_names);
  tcase_add_test(tc, flat_blocks_and_param_paths);
  tcase_add_test(tc, defines_override);
  tcase_add_test(tc, diagnostics_with_locations);
  tcase_add_test(tc, several_syntax_errors);
  tcase_add_test(tc, hostile_input_does_not_crash);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
