/* mlp_step.c — times the training step of a model compiled by `nnc build --lib`, fed the
 * same kind of data as bench/torch_mlp.py: a fresh batch every step (made outside the timed
 * region), inputs uniform in [-1, 1) and labels uniform over the classes. Fresh random labels
 * keep the loss near ln(classes), so the gradients (and Adam's moments) stay in the normal
 * float range for the whole run, as in a real training run; a constant batch would be
 * memorized and drive them into denormals, which measures the FPU's denormal path instead
 * of the code.
 *
 *   cc -std=c11 -O2 -Iruntime -DNNC_DESC=nnc_model_mlp3 bench/mlp_step.c libmlp3.a \
 *      -lcjson -lm -lpthread -o mlp3_step
 *   mlp3_step [--threads T] [--steps K] [--warmup W]
 *
 * Prints one line: `nnc <model> batch B threads T steps K median_ms M best_ms B
 * mean_ms A loss_first L0 loss_last L1`. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_program.h"

#ifndef NNC_DESC
#error "compile with -DNNC_DESC=nnc_model_<name>"
#endif
extern const RtModelDesc NNC_DESC;

static uint64_t g_state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(g_state >> 11) * 0x1p-53;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int threads = 1, steps = 300, warmup = 30;
  for (int i = 1; i < argc; i++) {
    if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--warmup")) warmup = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--threads T] [--steps K] [--warmup W]\n", argv[0]);
      return 2;
    }
  }
  if (steps < 1 || warmup < 0) return 2;
  const RtModelDesc *d = &NNC_DESC;
  char err[256] = "";
  RtCtx *c = rt_ctx_create(d, threads, err, sizeof err);
  if (!c || rt_ctx_init(c, 1)) {
    fprintf(stderr, "mlp_step: %s\n", c ? rt_ctx_error(c) : err);
    return 1;
  }
  int ix = rt_desc_find(d, "x"), il = rt_desc_find(d, "label");
  if (ix < 0 || il < 0) {
    fprintf(stderr, "mlp_step: model '%s' has no inputs 'x' and 'label'\n", d->name);
    return 1;
  }
  const RtTensorInfo *tx = &d->tensors[ix], *tl = &d->tensors[il];
  int64_t nx = tx->nbytes / 4, nl = tl->nbytes / 4, classes = 10;
  for (int k = 0; k < d->ntensors; k++) /* classes = the width of the first output */
    if (d->tensors[k].kind == RT_KIND_OUTPUT && d->tensors[k].rank == 2) {
      classes = d->tensors[k].shape[1];
      break;
    }
  float *xs = malloc((size_t)nx * sizeof(float));
  int32_t *ls = malloc((size_t)nl * sizeof(int32_t));
  double *ts = malloc((size_t)steps * sizeof(double));
  if (!xs || !ls || !ts) return 1;
  float loss = 0, first = NAN;
  for (int s = 0; s < warmup + steps; s++) {
    for (int64_t i = 0; i < nx; i++) xs[i] = (float)(2 * uniform() - 1);
    for (int64_t i = 0; i < nl; i++) ls[i] = (int32_t)(uniform() * (double)classes);
    const void *in[2]; /* inputs in descriptor order; x and label are the only ones here */
    in[ix < il ? 0 : 1] = xs;
    in[ix < il ? 1 : 0] = ls;
    double t0 = now_s();
    if (rt_ctx_train_step(c, in, &loss)) {
      fprintf(stderr, "mlp_step: %s\n", rt_ctx_error(c));
      return 1;
    }
    double t1 = now_s();
    if (s == 0) first = loss;
    if (s >= warmup) ts[s - warmup] = t1 - t0;
  }
  double sum = 0;
  for (int i = 0; i < steps; i++) sum += ts[i];
  qsort(ts, (size_t)steps, sizeof *ts, cmp_double);
  printf("nnc %s batch %lld threads %d steps %d median_ms %.4f best_ms %.4f mean_ms %.4f "
         "loss_first %.4f loss_last %.4f\n",
         d->name, (long long)d->batch, threads, steps, 1e3 * ts[steps / 2], 1e3 * ts[0],
         1e3 * sum / steps, first, loss);
  free(xs);
  free(ls);
  free(ts);
  rt_ctx_destroy(c);
  return 0;
}
