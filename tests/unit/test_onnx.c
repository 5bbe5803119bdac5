/* test_onnx.c — the ONNX importer without Python: models are built with protobuf-c in
 * memory, written, imported, compiled by the frontend and evaluated by the interpreter with
 * the weights the importer wrote; the result is compared with the same network computed by
 * hand. Also: refusals (one error per unsupported op kind, nothing written) and files that
 * are not ONNX. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../frontend/frontend.h"
#include "../../frontend/onnx/onnx_import.h"
#include "../../ir/interp.h"
#include "../../runtime/rt_io.h"
#include "onnx.pb-c.h"

typedef struct Tmp {
  char dir[64], onnx[96], nn[96], st[96];
} Tmp;

static void tmp_init(Tmp *t) {
  snprintf(t->dir, sizeof t->dir, "/tmp/nnc_onnx_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(t->dir));
  snprintf(t->onnx, sizeof t->onnx, "%s/m.onnx", t->dir);
  snprintf(t->nn, sizeof t->nn, "%s/m.nn", t->dir);
  snprintf(t->st, sizeof t->st, "%s/m.safetensors", t->dir);
}

static void tmp_free(Tmp *t) {
  unlink(t->onnx), unlink(t->nn), unlink(t->st);
  rmdir(t->dir);
}

static Onnx__TensorProto *tensor(const char *name, int rank, const int64_t *dims, float *data) {
  Onnx__TensorProto *t = calloc(1, sizeof *t);
  onnx__tensor_proto__init(t);
  t->name = (char *)name;
  t->has_data_type = 1, t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  t->n_dims = (size_t)rank, t->dims = (int64_t *)dims;
  size_t n = 1;
  for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
  t->n_float_data = n, t->float_data = data;
  return t;
}

static Onnx__NodeProto *node(const char *op, const char *name, int nin, char **in, char *out) {
  Onnx__NodeProto *n = calloc(1, sizeof *n);
  onnx__node_proto__init(n);
  n->op_type = (char *)op, n->name = (char *)name;
  n->n_input = (size_t)nin, n->input = in;
  n->n_output = 1, n->output = calloc(1, sizeof(char *));
  n->output[0] = out;
  return n;
}

static Onnx__ValueInfoProto *value_info(const char *name, int rank, const int64_t *dims) {
  Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = (char *)name;
  v->type = calloc(1, sizeof *v->type);
  onnx__type_proto__init(v->type);
  v->type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  v->type->tensor_type = calloc(1, sizeof *v->type->tensor_type);
  onnx__type_proto__tensor__init(v->type->tensor_type);
  v->type->tensor_type->has_elem_type = 1;
  v->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
  onnx__tensor_shape_proto__init(sh);
  sh->n_dim = (size_t)rank, sh->dim = calloc((size_t)rank, sizeof *sh->dim);
  for (int i = 0; i < rank; i++) {
    sh->dim[i] = calloc(1, sizeof **sh->dim);
    onnx__tensor_shape_proto__dimension__init(sh->dim[i]);
    sh->dim[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    sh->dim[i]->dim_value = dims[i];
  }
  v->type->tensor_type->shape = sh;
  return v;
}

static void write_model(const char *path, Onnx__GraphProto *g) {
  Onnx__ModelProto m;
  onnx__model_proto__init(&m);
  Onnx__OperatorSetIdProto op;
  onnx__operator_set_id_proto__init(&op);
  op.domain = "", op.has_version = 1, op.version = 13;
  Onnx__OperatorSetIdProto *ops[1] = {&op};
  m.has_ir_version = 1, m.ir_version = 8, m.n_opset_import = 1, m.opset_import = ops;
  m.graph = g;
  size_t len = onnx__model_proto__get_packed_size(&m);
  uint8_t *buf = malloc(len);
  onnx__model_proto__pack(&m, buf);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
  free(buf);
}

/* y = relu(x @ fc.weight^T + fc.bias) * 2 as Gemm(transB = 1), Relu, Mul by a constant */
static float W[12] = {0.5f, -1, 0.25f, 2, -0.5f, 1, 1.5f, -2, 0.75f, 0.1f, -0.3f, 0.2f};
static float B[3] = {0.1f, -0.2f, 0.3f}, TWO[1] = {2};
static const int64_t WD[2] = {3, 4}, BD[1] = {3}, XD[2] = {2, 4}, YD[2] = {2, 3};

static Onnx__GraphProto *dense_graph(const char *extra_op) {
  static char *gin[3] = {"x", "fc.weight", "fc.bias"}, *rin[1] = {"g"}, *min[2] = {"r", "two"};
  Onnx__GraphProto *g = calloc(1, sizeof *g);
  onnx__graph_proto__init(g);
  g->n_node = extra_op ? 4 : 3;
  g->node = calloc(4, sizeof *g->node);
  g->node[0] = node("Gemm", "fc/Gemm", 3, gin, "g");
  Onnx__AttributeProto *tb = calloc(1, sizeof *tb);
  onnx__attribute_proto__init(tb);
  tb->name = "transB", tb->has_type = 1, tb->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  tb->has_i = 1, tb->i = 1;
  g->node[0]->n_attribute = 1, g->node[0]->attribute = calloc(1, sizeof tb);
  g->node[0]->attribute[0] = tb;
  g->node[1] = node("Relu", "relu", 1, rin, "r");
  g->node[2] = node("Mul", "scale", 2, min, extra_op ? "m" : "y");
  static char *ein[1] = {"m"};
  if (extra_op) g->node[3] = node(extra_op, "odd_0", 1, ein, "y");
  g->n_initializer = 3, g->initializer = calloc(3, sizeof *g->initializer);
  g->initializer[0] = tensor("fc.weight", 2, WD, W);
  g->initializer[1] = tensor("fc.bias", 1, BD, B);
  g->initializer[2] = tensor("two", 0, NULL, TWO);
  g->n_input = 1, g->input = calloc(1, sizeof *g->input);
  g->input[0] = value_info("x", 2, XD);
  g->n_output = 1, g->output = calloc(1, sizeof *g->output);
  g->output[0] = value_info("y", 2, YD);
  return g;
}

static void free_graph(Onnx__GraphProto *g) {
  for (size_t i = 0; i < g->n_node; i++) {
    for (size_t k = 0; k < g->node[i]->n_attribute; k++) free(g->node[i]->attribute[k]);
    free(g->node[i]->attribute), free(g->node[i]->output), free(g->node[i]);
  }
  for (size_t i = 0; i < g->n_initializer; i++) free(g->initializer[i]);
  Onnx__ValueInfoProto *vs[2] = {g->input[0], g->output[0]};
  for (int i = 0; i < 2; i++) {
    Onnx__TensorShapeProto *sh = vs[i]->type->tensor_type->shape;
    for (size_t k = 0; k < sh->n_dim; k++) free(sh->dim[k]);
    free(sh->dim), free(sh), free(vs[i]->type->tensor_type), free(vs[i]->type), free(vs[i]);
  }
  free(g->node), free(g->initializer), free(g->input), free(g->output), free(g);
}

static int import(const Tmp *t, char *msgs, size_t n) {
  FILE *f = fmemopen(msgs, n, "w");
  Diag *d = diag_new(f);
  OnnxImportOptions o = {.model_path = t->onnx, .out_nn = t->nn, .out_weights = t->st};
  int rc = onnx_import(&o, d);
  diag_finish(d);
  diag_free(d);
  fclose(f);
  return rc;
}

/* the imported file, evaluated with the imported weights (nw of them) on x [2, 4]; y [ny] */
static void eval_imported(const Tmp *t, const float *x, double *y, int ny, int nw) {
  Diag *d = diag_new(stderr);
  IrModule *m = fe_compile_file(t->nn, &(FeOptions){0}, d);
  ck_assert_ptr_nonnull(m);
  IrGraph *g = m->graphs[0];
  RtTensorSet w = {0};
  char err[256];
  ck_assert_msg(!rt_st_read(t->st, &w, err, sizeof err), "%s", err);
  ck_assert_int_eq(w.n, nw);
  Interp *I = interp_new(g, NULL);
  for (int i = 0; i < w.n; i++) {
    int node = ir_find_value(g, w.names[i]);
    ck_assert_msg(node >= 0, "no parameter %s", w.names[i]);
    ck_assert(!interp_set_f32(I, node, w.t[i].data, rt_tensor_numel(&w.t[i])));
  }
  ck_assert(!interp_set_f32(I, ir_find_value(g, "x"), x, 8));
  ck_assert_msg(!interp_run(I, err, sizeof err), "%s", err);
  int64_t n;
  const double *out = interp_value(I, g->outputs[0].node, &n);
  ck_assert_int_eq(n, ny);
  memcpy(y, out, (size_t)ny * sizeof *y);
  interp_free(I);
  rt_set_free(&w);
  ir_module_free(m);
  diag_free(d);
}

START_TEST(gemm_relu_mul) {
  Tmp t;
  tmp_init(&t);
  Onnx__GraphProto *g = dense_graph(NULL);
  write_model(t.onnx, g);
  free_graph(g);
  char msgs[2048] = "";
  ck_assert_msg(!import(&t, msgs, sizeof msgs), "%s", msgs);
  float x[8] = {1, -2, 0.5f, 3, -1, 0.25f, 2, -0.5f};
  double y[6], maxd = 0;
  eval_imported(&t, x, y, 6, 2); /* fc.weight, fc.bias; the scalar 2 is a number in the text */
  for (int r = 0; r < 2; r++)
    for (int o = 0; o < 3; o++) {
      double acc = B[o];
      for (int k = 0; k < 4; k++) acc += (double)x[r * 4 + k] * W[o * 4 + k];
      double want = 2 * (acc > 0 ? acc : 0), d = fabs(y[r * 3 + o] - want);
      maxd = d > maxd ? d : maxd;
      ck_assert_msg(d <= 1e-6 + 1e-6 * fabs(want), "y[%d,%d] = %g, want %g", r, o, y[r * 3 + o],
                    want);
    }
  printf("gemm_relu_mul: max |diff| %.3g\n", maxd);
  tmp_free(&t);
}
END_TEST

/* y = Where(Less(x, 2), x, 2) = min(x, 2): a bool from a comparison selects */
START_TEST(where_less) {
  Tmp t;
  tmp_init(&t);
  static char *lin[2] = {"x", "two"}, *win[3] = {"c", "x", "two"};
  Onnx__GraphProto *g = calloc(1, sizeof *g);
  onnx__graph_proto__init(g);
  g->n_node = 2, g->node = calloc(2, sizeof *g->node);
  g->node[0] = node("Less", "less", 2, lin, "c");
  g->node[1] = node("Where", "where", 3, win, "y");
  g->n_initializer = 1, g->initializer = calloc(1, sizeof *g->initializer);
  g->initializer[0] = tensor("two", 0, NULL, TWO);
  g->n_input = 1, g->input = calloc(1, sizeof *g->input);
  g->input[0] = value_info("x", 2, XD);
  g->n_output = 1, g->output = calloc(1, sizeof *g->output);
  g->output[0] = value_info("y", 2, XD);
  write_model(t.onnx, g);
  free_graph(g);
  char msgs[2048] = "";
  ck_assert_msg(!import(&t, msgs, sizeof msgs), "%s", msgs);
  float x[8] = {1, -2, 2.5f, 3, -1, 2, 1.999f, -0.5f};
  double y[8];
  eval_imported(&t, x, y, 8, 0);
  for (int i = 0; i < 8; i++) {
    double want = x[i] < 2 ? x[i] : 2;
    ck_assert_msg(fabs(y[i] - want) <= 1e-7, "y[%d] = %g, want %g", i, y[i], want);
  }
  tmp_free(&t);
}
END_TEST

START_TEST(unsupported_op_refused) {
  Tmp t;
  tmp_init(&t);
  Onnx__GraphProto *g = dense_graph("Sin");
  write_model(t.onnx, g);
  free_graph(g);
  char msgs[2048] = "";
  ck_assert_int_eq(import(&t, msgs, sizeof msgs), -1);
  ck_assert_msg(strstr(msgs,
                       "node 'odd_0' (Sin): operator 'Sin' (opset 13, 1 node) has no nnc "
                       "equivalent"),
                "%s", msgs);
  ck_assert(access(t.nn, F_OK) != 0 && access(t.st, F_OK) != 0);
  tmp_free(&t);
}
END_TEST

START_TEST(not_onnx_refused) {
  Tmp t;
  tmp_init(&t);
  FILE *f = fopen(t.onnx, "wb");
  fputs("\xff\xff\xff\xff\x0f garbage", f);
  fclose(f);
  char msgs[2048] = "";
  ck_assert_int_eq(import(&t, msgs, sizeof msgs), -1);
  ck_assert_msg(strstr(msgs, "not an ONNX model"), "%s", msgs);
  ck_assert(access(t.nn, F_OK) != 0);
  tmp_free(&t);
}
END_TEST

int main(void) {
  Suite *s = suite_create("onnx");
  TCase *tc = tcase_create("import");
  tcase_add_test(tc, gemm_relu_mul);
  tcase_add_test(tc, where_less);
  tcase_add_test(tc, unsupported_op_refused);
  tcase_add_test(tc, not_onnx_refused);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
