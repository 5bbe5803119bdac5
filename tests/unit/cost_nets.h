/* cost_nets.h — a small graph builder for the cost and tile tests, and reference networks
 * (ResNet-18/50, MobileNetV2 as in torchvision) built directly as IR, so the published
 * parameter and MAC counts can be checked without going through the frontend. */
#ifndef NN_TEST_COST_NETS_H
#define NN_TEST_COST_NETS_H
#include <check.h>
#include <stdarg.h>
#include <stdio.h>

#include "../../ir/ir.h"

typedef struct Nb {
  IrModule *m;
  IrGraph *g;
  const char *scope;
  int N; /* the batch symbol */
} Nb;

static inline Nb nb_new(const char *name, int64_t batch) {
  Nb b = {0};
  b.m = ir_module_new();
  b.g = ir_module_add_graph(b.m, name);
  b.N = dim_sym_declare(b.g->dims, "N", batch);
  return b;
}

static inline Dim *nb_n(Nb *b) { return dim_sym(b->g->dims, b->N); }
static inline Dim *nb_k(Nb *b, int64_t v) { return dim_const(b->g->dims, v); }

static inline int nb_op(Nb *b, OpKind op, const int *in, int nin, const IrAttr *at,
                        const IrType *hint) {
  ShapeErr e;
  SrcLoc loc = {0};
  int r = ir_build(b->g, op, in, nin, at, hint, loc, &e);
  ck_assert_msg(r >= 0, "building %s: %s", ir_op_name(op), e.msg);
  b->g->nodes[r].scope = b->scope;
  return r;
}
static inline int nb_1(Nb *b, OpKind op, int x, const IrAttr *at) { return nb_op(b, op, &x, 1, at, NULL); }
static inline int nb_2(Nb *b, OpKind op, int x, int y, const IrAttr *at) {
  int in[2] = {x, y};
  return nb_op(b, op, in, 2, at, NULL);
}

/* a leaf of dtype dt with the given dims (NULL-terminated list of Dim*) */
static inline int nb_leaf(Nb *b, OpKind op, const char *name, DType dt, bool trainable,
                          int rank, Dim **dims) {
  IrType t = ir_type(dt, rank, dims);
  IrAttr at = {.trainable = trainable, .init = INIT_ZEROS};
  int r = nb_op(b, op, NULL, 0, &at, &t);
  b->g->nodes[r].name = name ? arena_printf(b->g->arena, "%s%s%s", b->scope ? b->scope : "",
                                            b->scope ? "." : "", name)
                             : NULL;
  return r;
}

static inline int nb_param(Nb *b, const char *name, bool trainable, int rank, ...) {
  Dim *d[IR_MAX_RANK];
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++) d[i] = nb_k(b, va_arg(ap, int64_t));
  va_end(ap);
  return nb_leaf(b, OP_PARAM, name, DT_F32, trainable, rank, d);
}

static inline void nb_scope(Nb *b, const char *fmt, ...) {
  char buf[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  b->scope = arena_strdup(b->g->arena, buf);
}

static inline int nb_channels(Nb *b, int x) {
  return (int)dim_eval(b->g->dims, b->g->nodes[x].type.dims[1], NULL);
}

/* conv (no bias) in scope s */
static inline int nb_conv(Nb *b, int x, int64_t cout, int k, int stride, int pad, int groups) {
  int64_t cin = nb_channels(b, x);
  int w = nb_param(b, "weight", true, 4, cout, cin / groups, (int64_t)k, (int64_t)k);
  IrAttr at = {.kernel = {k, k}, .stride = {stride, stride}, .pad = {pad, pad},
               .groups = groups};
  return nb_2(b, OP_CONV2D, x, w, &at);
}

static inline int nb_bn(Nb *b, int x) {
  int64_t c = nb_channels(b, x);
  int in[5] = {x, nb_param(b, "weight", true, 1, c), nb_param(b, "bias", true, 1, c),
               nb_param(b, "running_mean", false, 1, c), nb_param(b, "running_var", false, 1, c)};
  IrAttr at = {.value = 1e-5, .momentum = 0.1};
  return nb_op(b, OP_BATCHNORM, in, 5, &at, NULL);
}

/* conv + bn (+ relu), each with its own torchvision-style scope under `base` */
static inline int nb_conv_bn(Nb *b, const char *base, const char *cname, const char *bname,
                             int x, int64_t cout, int k, int stride, int pad, int groups,
                             bool relu) {
  nb_scope(b, "%s%s%s", base, base[0] ? "." : "", cname);
  x = nb_conv(b, x, cout, k, stride, pad, groups);
  nb_scope(b, "%s%s%s", base, base[0] ? "." : "", bname);
  x = nb_bn(b, x);
  return relu ? nb_1(b, OP_RELU, x, NULL) : x;
}

static inline int nb_dense(Nb *b, int x, int64_t out) {
  int64_t in = dim_eval(b->g->dims, b->g->nodes[x].type.dims[1], NULL);
  int w = nb_param(b, "weight", true, 2, out, in), bias = nb_param(b, "bias", true, 1, out);
  IrAttr tb = {.trans_b = true};
  return nb_2(b, OP_ADD, nb_2(b, OP_MATMUL, x, w, &tb), bias, NULL);
}

static inline int nb_image(Nb *b, int64_t c, int64_t hw) {
  Dim *d[4] = {nb_n(b), nb_k(b, c), nb_k(b, hw), nb_k(b, hw)};
  b->scope = NULL;
  return nb_leaf(b, OP_INPUT, "img", DT_F32, false, 4, d);
}

/* global average pool + fc + cross-entropy loss; returns the loss node */
static inline int nb_head(Nb *b, int x, int64_t classes, const char *fc) {
  b->scope = NULL;
  IrAttr gap = {.naxes = 2, .axes = {2, 3}};
  x = nb_1(b, OP_MEAN, x, &gap);
  nb_scope(b, "%s", fc);
  int logits = nb_dense(b, x, classes);
  b->scope = NULL;
  Dim *nd[1] = {nb_n(b)};
  int label = nb_leaf(b, OP_INPUT, "label", DT_I32, false, 1, nd);
  int loss = nb_2(b, OP_CROSS_ENTROPY, logits, label, NULL);
  b->g->nodes[loss].name = "loss";
  ir_add_output(b->g, "logits", logits);
  return loss;
}

static inline int nb_resnet_stem(Nb *b) {
  int x = nb_image(b, 3, 224);
  x = nb_conv_bn(b, "", "conv1", "bn1", x, 64, 7, 2, 3, 1, true);
  b->scope = NULL;
  IrAttr mp = {.kernel = {3, 3}, .stride = {2, 2}, .pad = {1, 1}};
  return nb_1(b, OP_MAXPOOL, x, &mp);
}

/* torchvision BasicBlock / Bottleneck */
static inline int nb_basic(Nb *b, int x, const char *s, int64_t c, int stride) {
  int h = nb_conv_bn(b, s, "conv1", "bn1", x, c, 3, stride, 1, 1, true);
  h = nb_conv_bn(b, s, "conv2", "bn2", h, c, 3, 1, 1, 1, false);
  int sc = x;
  if (stride != 1 || nb_channels(b, x) != c)
    sc = nb_conv_bn(b, s, "downsample.0", "downsample.1", x, c, 1, stride, 0, 1, false);
  nb_scope(b, "%s", s);
  return nb_1(b, OP_RELU, nb_2(b, OP_ADD, h, sc, NULL), NULL);
}

static inline int nb_bottleneck(Nb *b, int x, const char *s, int64_t c, int stride) {
  int h = nb_conv_bn(b, s, "conv1", "bn1", x, c, 1, 1, 0, 1, true);
  h = nb_conv_bn(b, s, "conv2", "bn2", h, c, 3, stride, 1, 1, true);
  h = nb_conv_bn(b, s, "conv3", "bn3", h, 4 * c, 1, 1, 0, 1, false);
  int sc = x;
  if (stride != 1 || nb_channels(b, x) != 4 * c)
    sc = nb_conv_bn(b, s, "downsample.0", "downsample.1", x, 4 * c, 1, stride, 0, 1, false);
  nb_scope(b, "%s", s);
  return nb_1(b, OP_RELU, nb_2(b, OP_ADD, h, sc, NULL), NULL);
}

/* depth 18 or 50; returns the loss */
static inline int nb_resnet(Nb *b, int depth) {
  static const int blocks18[4] = {2, 2, 2, 2}, blocks50[4] = {3, 4, 6, 3};
  const int *nbk = depth == 18 ? blocks18 : blocks50;
  int x = nb_resnet_stem(b);
  char s[32];
  for (int st = 0; st < 4; st++)
    for (int i = 0; i < nbk[st]; i++) {
      snprintf(s, sizeof s, "layer%d.%d", st + 1, i);
      int stride = st > 0 && i == 0 ? 2 : 1;
      x = depth == 18 ? nb_basic(b, x, s, 64 << st, stride) : nb_bottleneck(b, x, s, 64 << st, stride);
    }
  return nb_head(b, x, 1000, "fc");
}

/* ReLU6 as the examples write it: relu(x) - relu(x - 6) */
static inline int nb_relu6(Nb *b, int x) {
  IrType s = {.dt = DT_F32, .rank = 0};
  IrAttr six = {.value = 6};
  int c = nb_op(b, OP_CONST, NULL, 0, &six, &s);
  return nb_2(b, OP_SUB, nb_1(b, OP_RELU, x, NULL),
              nb_1(b, OP_RELU, nb_2(b, OP_SUB, x, c, NULL), NULL), NULL);
}

static inline int nb_mobilenet_v2(Nb *b) {
  static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int x = nb_image(b, 3, 224);
  x = nb_relu6(b, nb_conv_bn(b, "features.0", "0", "1", x, 32, 3, 2, 1, 1, false));
  int f = 1;
  char s[48], s2[64];
  for (int c = 0; c < 7; c++)
    for (int i = 0; i < cfg[c][2]; i++, f++) {
      int t = cfg[c][0], cout = cfg[c][1], stride = i == 0 ? cfg[c][3] : 1;
      int cin = nb_channels(b, x), hid = cin * t, h = x, li = 0;
      snprintf(s, sizeof s, "features.%d.conv", f);
      if (t != 1) {
        snprintf(s2, sizeof s2, "%s.%d", s, li++);
        h = nb_relu6(b, nb_conv_bn(b, s2, "0", "1", h, hid, 1, 1, 0, 1, false));
      }
      snprintf(s2, sizeof s2, "%s.%d", s, li++);
      h = nb_relu6(b, nb_conv_bn(b, s2, "0", "1", h, hid, 3, stride, 1, hid, false));
      char cn[8], bn[8];
      snprintf(cn, sizeof cn, "%d", li);
      snprintf(bn, sizeof bn, "%d", li + 1);
      h = nb_conv_bn(b, s, cn, bn, h, cout, 1, 1, 0, 1, false);
      x = stride == 1 && cin == cout ? nb_2(b, OP_ADD, x, h, NULL) : h;
    }
  x = nb_relu6(b, nb_conv_bn(b, "features.18", "0", "1", x, 1280, 1, 1, 0, 1, false));
  return nb_head(b, x, 1000, "classifier.1");
}
#endif
