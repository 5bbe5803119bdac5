/* rt_syncbn.c — what the generated code of a training step calls back into (RtHooks,
 * rt_model.h): the gradients-ready mark of train_backward, and synchronized batchnorm.
 *
 * A --sync-bn build lowers every training batchnorm kernel (forward, dx, dgamma) to
 * rt_k_batchnorm_sync, which computes the batch statistics over the batches of all the
 * processes: per channel, the sum of x and the sample count are summed over the processes
 * (RtHooks.sum_f64), giving the global mean; then the sum of (x - mean)^2, giving the global
 * variance — the two passes of rt_k_batchnorm (whose sums are blocked f32 partial sums, so
 * one process agrees with the local kernel to rounding, not bit for bit). The backward pass sums dy and dy·xhat over the processes the same way, so dx
 * is that of one process on the global batch; dgamma stays this process's own sum (the
 * gradient all-reduce averages it). The running statistics' MEAN and VAR kernels become
 * rt_k_bn_stat_sync, the same global sums. All sums are in double. Without hooks (NULL, or no
 * sum_f64) the statistics are local. */
#include <math.h>
#include <stdlib.h>

#include "rt_kernels.h"
#include "rt_model.h"
#include "rt_threads.h"

void rt_grads_ready(RtHooks *h, int32_t kernel) {
  if (h && h->grads_ready) h->grads_ready(kernel, h->user);
}

typedef struct SbCtx {
  const float *x, *dy, *gamma, *beta;
  float *out;
  double *st; /* [0, C) sums then means; [C] the count; [C+1, 2C+1) squares then 1/std;
                 [2C+1, 3C+1) sums of dy; [3C+1, 4C+1) sums of dy·xhat */
  int64_t N, C, S;
  double eps;
  int phase;
} SbCtx;

static double sb_x(const SbCtx *b, int64_t n, int64_t c, int64_t k) {
  return b->x[(n * b->C + c) * b->S + k];
}

/* one channel of the current phase */
static void sb_channel(void *cv, int64_t c) {
  SbCtx *b = cv;
  double *st = b->st, mean = st[c], inv = st[b->C + 1 + c], s = 0, q = 0;
  for (int64_t n = 0; n < b->N; n++)
    for (int64_t k = 0; k < b->S; k++) {
      int64_t i = (n * b->C + c) * b->S + k;
      double d = sb_x(b, n, c, k) - mean;
      switch (b->phase) {
      case 0: s += sb_x(b, n, c, k); break;
      case 1: s += d * d; break;
      case 2: b->out[i] = (float)(b->gamma[c] * d * inv + b->beta[c]); break;
      case 3: s += b->dy[i], q += (double)b->dy[i] * d * inv; break;
      default: {
        double M = st[b->C], sdy = st[2 * b->C + 1 + c], sdyx = st[3 * b->C + 1 + c];
        b->out[i] = (float)(b->gamma[c] * inv / M * (M * b->dy[i] - sdy - d * inv * sdyx));
      }
      }
    }
  if (b->phase == 0) st[c] = s;
  if (b->phase == 1) st[b->C + 1 + c] = s;
  if (b->phase == 3) st[2 * b->C + 1 + c] = s, st[3 * b->C + 1 + c] = q;
}

static void sb_run(void *pool, SbCtx *b, int phase) {
  b->phase = phase;
  if (b->N * b->S * b->C < (1 << 15)) {
    for (int64_t c = 0; c < b->C; c++) sb_channel(b, c);
    return;
  }
  rt_parallel_for(pool, b->C, sb_channel, b);
}

/* buf[0, n) summed over the processes through h (nothing without a sum hook) */
static void sb_sum(RtHooks *h, double *buf, int64_t n) {
  if (h && h->sum_f64 && h->sum_f64(buf, n, h->user)) h->failed = 1;
}

/* the global mean of every channel (st[c]) and the global count (st[C]) */
static void sb_mean(void *pool, RtHooks *h, SbCtx *b) {
  int64_t C = b->C;
  sb_run(pool, b, 0);
  b->st[C] = (double)(b->N * b->S);
  sb_sum(h, b->st, C + 1);
  for (int64_t c = 0; c < C; c++) b->st[c] /= b->st[C];
}

/* the global sum of (x - mean)^2 of every channel (st[C+1+c]), after sb_mean */
static void sb_squares(void *pool, RtHooks *h, SbCtx *b) {
  sb_run(pool, b, 1);
  sb_sum(h, b->st + b->C + 1, b->C);
}

/* the global mean (st[c]) and 1/std (st[C+1+c]) of every channel, the count in st[C] */
static void sb_stats(void *pool, RtHooks *h, SbCtx *b) {
  int64_t C = b->C;
  sb_mean(pool, h, b);
  sb_squares(pool, h, b);
  for (int64_t c = 0; c < C; c++) b->st[C + 1 + c] = 1.0 / sqrt(b->st[C + 1 + c] / b->st[C] + b->eps);
}

static int sb_alloc(RtHooks *h, SbCtx *b) {
  if (b->C <= 0 || (uint64_t)b->C > SIZE_MAX / 64 ||
      !(b->st = calloc((size_t)(4 * b->C + 1), sizeof *b->st))) {
    if (h) h->failed = 1;
    return -1;
  }
  return 0;
}

/* a training batchnorm's running statistic over the batches of all the processes (x:
 * [N, C, S], out: [C]): var 0, the mean of every channel; 1, the variance with the given
 * correction (the global count less correction in the denominator, as the local MEAN and
 * VAR nodes of passes/train.c), so the running statistics of every process follow the
 * global batch and are the same bits in every process */
void rt_k_bn_stat_sync(void *pool, RtHooks *h, const float *x, float *out, int64_t N, int64_t C,
                       int64_t S, int32_t var, int32_t correction) {
  SbCtx s = {.x = x, .N = N, .C = C, .S = S};
  if (sb_alloc(h, &s)) return;
  sb_mean(pool, h, &s);
  if (var) sb_squares(pool, h, &s);
  for (int64_t c = 0; c < C; c++)
    out[c] = (float)(var ? s.st[C + 1 + c] / (s.st[C] - correction) : s.st[c]);
  free(s.st);
}

/* mode 0: y = batchnorm(x = a, gamma = b, beta = c); 1: dx of (dy = a, x = b, gamma = c);
 * 2: dgamma of (dy = a, x = b), all with the statistics of every process's batch */
void rt_k_batchnorm_sync(void *pool, RtHooks *h, const float *a, const float *b, const float *c,
                         float *out, int64_t N, int64_t C, int64_t S, double eps, int32_t mode) {
  SbCtx s = {.x = mode ? b : a, .dy = mode ? a : NULL, .gamma = mode == 0 ? b : c,
             .beta = mode == 0 ? c : NULL, .out = out, .N = N, .C = C, .S = S, .eps = eps};
  if (sb_alloc(h, &s)) return;
  sb_stats(pool, h, &s);
  if (mode == 0) {
    sb_run(pool, &s, 2);
  } else {
    sb_run(pool, &s, 3);
    if (mode == 1) sb_sum(h, s.st + 2 * C + 1, 2 * C);
    for (int64_t k = 0; mode == 2 && k < C; k++) out[k] = (float)s.st[3 * C + 1 + k];
    if (mode == 1) sb_run(pool, &s, 4);
  }
  free(s.st);
}
