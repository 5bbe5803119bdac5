/* main.c — embedding a model compiled by nnc in a C program.
 *
 * mlp.h comes from `nnc build ../mlp.nn --lib` (through nnc_add_model in CMakeLists.txt).
 * The program makes a learnable data set (10 classes, each a random 784-pixel prototype in
 * [-0.1, 0.1] plus uniform noise in [-0.5, 0.5]), trains the mlp on it with mlp_train_step, classifies held-out samples with
 * mlp_infer, and saves and reloads the weights.
 *
 *   embed [--steps K] [--threads T] [--weights W.safetensors] [--save W.safetensors]
 * Exit status 0 when the held-out accuracy reaches 90%. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

enum { CLASSES = 10, PIXELS = MLP_X_PER_SAMPLE, TEST = 500 };

/* a small deterministic generator, so runs are reproducible */
static uint64_t g_state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(g_state >> 11) * 0x1p-53;
}

static float prototypes[CLASSES][PIXELS];

static void sample(float *x, int32_t *label) {
  int c = (int)(uniform() * CLASSES);
  for (int i = 0; i < PIXELS; i++) x[i] = prototypes[c][i] + (float)(uniform() - 0.5);
  *label = c;
}

int main(int argc, char **argv) {
  int steps = 200, threads = 0;
  const char *weights = NULL, *save = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--steps") && i + 1 < argc)
      steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--weights") && i + 1 < argc)
      weights = argv[++i];
    else if (!strcmp(argv[i], "--save") && i + 1 < argc)
      save = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--steps K] [--threads T] [--weights W] [--save W]\n", argv[0]);
      return 2;
    }
  }
  printf("mlp: batch %d, %lld parameters, %lld bytes of memory (params %lld, io %lld, "
         "scratch %lld)\n",
         MLP_BATCH, (long long)MLP_NUM_PARAMS, (long long)MLP_MEMORY_BYTES,
         (long long)MLP_PARAMS_BYTES, (long long)MLP_IO_BYTES, (long long)MLP_ARENA_BYTES);

  mlp_ctx *ctx = mlp_create_threads(threads);
  if (!ctx) {
    fprintf(stderr, "embed: cannot create the model context\n");
    return 1;
  }
  if (weights ? mlp_load(ctx, weights) : mlp_init(ctx, 1)) {
    fprintf(stderr, "embed: %s\n", mlp_error(ctx));
    return 1;
  }

  for (int c = 0; c < CLASSES; c++)
    for (int i = 0; i < PIXELS; i++) prototypes[c][i] = (float)(uniform() * 0.2 - 0.1);

  static float x[MLP_BATCH * PIXELS];
  static int32_t label[MLP_BATCH];
  float first = 0, loss = 0;
  for (int s = 0; s < steps; s++) {
    for (int n = 0; n < MLP_BATCH; n++) sample(&x[n * PIXELS], &label[n]);
    loss = mlp_train_step(ctx, x, label);
    if (isnan(loss)) {
      fprintf(stderr, "embed: %s\n", mlp_error(ctx));
      return 1;
    }
    if (s == 0) first = loss;
    if (s == 0 || (s + 1) % 50 == 0) printf("step %4d  loss %.4f\n", s + 1, loss);
  }

  /* held-out samples, any count: mlp_infer runs them in batches of MLP_BATCH */
  float *tx = malloc(sizeof(float) * TEST * PIXELS), *logits = malloc(sizeof(float) * TEST * CLASSES);
  int32_t *tl = malloc(sizeof(int32_t) * TEST);
  for (int n = 0; n < TEST; n++) sample(&tx[n * PIXELS], &tl[n]);
  if (mlp_infer(ctx, TEST, tx, logits)) {
    fprintf(stderr, "embed: %s\n", mlp_error(ctx));
    return 1;
  }
  int correct = 0;
  for (int n = 0; n < TEST; n++) {
    int best = 0;
    for (int c = 1; c < CLASSES; c++)
      if (logits[n * CLASSES + c] > logits[n * CLASSES + best]) best = c;
    correct += best == tl[n];
  }
  double acc = (double)correct / TEST;
  printf("loss %.4f -> %.4f after %d steps; held-out accuracy %.3f (%d/%d)\n", first, loss,
         steps, acc, correct, TEST);

  /* a checkpoint round trip: the reloaded model gives the same logits */
  if (save) {
    if (mlp_save(ctx, save)) {
      fprintf(stderr, "embed: %s\n", mlp_error(ctx));
      return 1;
    }
    mlp_ctx *again = mlp_create_threads(threads);
    float *l2 = malloc(sizeof(float) * TEST * CLASSES);
    if (!again || mlp_load(again, save) || mlp_infer(again, TEST, tx, l2)) {
      fprintf(stderr, "embed: reload: %s\n", again ? mlp_error(again) : "no context");
      return 1;
    }
    int same = !memcmp(l2, logits, sizeof(float) * TEST * CLASSES);
    printf("saved %s; reloaded logits %s\n", save, same ? "identical" : "DIFFER");
    mlp_destroy(again);
    free(l2);
    if (!same) return 1;
  }
  free(tx);
  free(logits);
  free(tl);
  mlp_destroy(ctx);
  return acc >= 0.9 ? 0 : 1;
}
