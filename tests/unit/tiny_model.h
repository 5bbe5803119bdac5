/* tiny_model.h — a hand-written RtModelDesc standing in for generated code in the runtime
 * tests: y = x W^T + b (batch 4, 3 -> 2), MSE loss against t, SGD with momentum 0.9.
 * Included by test_rt_program.c and by the program it compiles against a generated NAME.h. */
#ifndef NNC_TEST_TINY_MODEL_H
#define NNC_TEST_TINY_MODEL_H
#include "rt_model.h"
#include "nn_dtype.h"

enum { B = 4, IN = 3, OUT = 2 };
#define LR 0.05f
#define MOM 0.9f

/* params region: W[2,3] @0, b[2] @64, vW[2,3] @128, vb[2] @192 (256 bytes)
 * io region: x[4,3] @0, t[4,2] @64, y[4,2] @128, loss @192 (256 bytes) */
static const RtTensorInfo tiny_tensors[] = {
    {"fc.weight", RT_KIND_PARAM, DT_F32, 2, RT_INIT_XAVIER, {OUT, IN}, 0, 24, 0, 0, 0, RT_INDEX_NONE},
    {"fc.bias", RT_KIND_PARAM, DT_F32, 1, RT_INIT_UNIFORM, {OUT}, 64, 8, -0.5, 0.5, 0, RT_INDEX_NONE},
    {"fc.weight.momentum", RT_KIND_OPTSTATE, DT_F32, 2, RT_INIT_ZEROS, {OUT, IN}, 128, 24, 0, 0, 0, RT_INDEX_NONE},
    {"fc.bias.momentum", RT_KIND_OPTSTATE, DT_F32, 1, RT_INIT_ZEROS, {OUT}, 192, 8, 0, 0, 0, RT_INDEX_NONE},
    {"x", RT_KIND_INPUT, DT_F32, 2, 0, {B, IN}, 0, 48, 0, 0, 0, RT_INDEX_NONE},
    {"t", RT_KIND_INPUT, DT_F32, 2, 0, {B, OUT}, 64, 32, 0, 0, 0, RT_INDEX_NONE},
    {"y", RT_KIND_OUTPUT, DT_F32, 2, 0, {B, OUT}, 128, 32, 0, 0, 0, RT_INDEX_NONE},
    {"loss", RT_KIND_LOSS, DT_F32, 0, 0, {0}, 192, 4, 0, 0, 0, RT_INDEX_NONE},
};

static int g_forward_calls;

static void tiny_fwd(const RtModelBufs *b) {
  const float *W = (const float *)b->params, *bias = (const float *)(b->params + 64);
  const float *x = (const float *)b->io;
  float *y = (float *)(b->io + 128);
  for (int n = 0; n < B; n++)
    for (int o = 0; o < OUT; o++) {
      float s = bias[o];
      for (int i = 0; i < IN; i++) s += x[n * IN + i] * W[o * IN + i];
      y[n * OUT + o] = s;
    }
  g_forward_calls++;
}

static void tiny_train(const RtModelBufs *b) {
  float *W = (float *)b->params, *bias = (float *)(b->params + 64);
  float *vW = (float *)(b->params + 128), *vb = (float *)(b->params + 192);
  const float *x = (const float *)b->io, *t = (const float *)(b->io + 64);
  float *y = (float *)(b->io + 128), *loss = (float *)(b->io + 192);
  tiny_fwd(b);
  float gW[OUT * IN] = {0}, gb[OUT] = {0}, l = 0;
  for (int n = 0; n < B; n++)
    for (int o = 0; o < OUT; o++) {
      float e = y[n * OUT + o] - t[n * OUT + o];
      l += e * e;
      float g = 2 * e / (B * OUT);
      gb[o] += g;
      for (int i = 0; i < IN; i++) gW[o * IN + i] += g * x[n * IN + i];
    }
  *loss = l / (B * OUT);
  for (int k = 0; k < OUT * IN; k++) {
    vW[k] = MOM * vW[k] + gW[k];
    W[k] -= LR * vW[k];
  }
  for (int k = 0; k < OUT; k++) {
    vb[k] = MOM * vb[k] + gb[k];
    bias[k] -= LR * vb[k];
  }
}

const RtModelDesc nnc_model_tiny = {
    .abi = RT_MODEL_ABI,
    .ntensors = (int32_t)(sizeof tiny_tensors / sizeof *tiny_tensors),
    .name = "tiny",
    .tensors = tiny_tensors,
    .params_bytes = 256,
    .io_bytes = 256,
    .arena_bytes_forward = 0,
    .arena_bytes_train = 64,
    .batch = B,
    .forward = tiny_fwd,
    .train_step = tiny_train,
    .optimizer = "sgd(lr=0.05, momentum=0.9)",
    .dims = "N=4",
    .forward_flops = 2.0 * B * IN * OUT,
    .train_flops = 6.0 * B * IN * OUT,
    .est_forward_s = 1e-7,
    .est_train_s = 3e-7,
};

#endif
