/* syncbn_lib.c — NAME_set_sync_bn of a library built with `nnc build --lib --sync-bn` (run
 * by run_allreduce_lib.sh): two threads, one context each on its half of a batch of 16,
 * whose statistics sum adds the two threads' buffers and whose gradient all-reduce averages
 * them, against one context of the same network at batch 16 (bng, built without --sync-bn)
 * on the whole batches: the mean loss of every step within rtol 2e-4 + atol 1e-6 and the
 * weights within rtol 1e-3 + atol 1e-4 (tests/mpi/run_mpi.sh says why); the two threads'
 * weights bit-identical; the running statistics (the MEAN and VAR of the global batch too)
 * bit-identical in both threads and within rtol 1e-4 + atol 1e-7 of one context's. Without
 * the statistics sum, the losses differ by more than 1e-3 relative (each thread's own
 * statistics of 8 samples) and the running statistics fail that tolerance. A failing sum
 * fails the step.
 *
 * bn.h: the network at N=8 with --sync-bn; bng.h: the same named bng at N=16. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn.h"
#include "bng.h"

enum { B = 8, STEPS = 4, IN = 2 * 6 * 6, NSAMP = 2 * B * STEPS };

static const char *const k_names[] = {"c.weight", "batchnorm_0.weight", "batchnorm_0.bias",
                                      "fc.weight", "fc.bias", "batchnorm_0.running_mean",
                                      "batchnorm_0.running_var"};
static const size_t k_numel[] = {72, 4, 4, 720, 5, 4, 4};
enum { NT = sizeof k_names / sizeof *k_names, NRUN = 2 /* the last NRUN: running statistics */ };

static float g_x[NSAMP * IN];
static int32_t g_y[NSAMP];
static int g_fail;

#define CHECK(c, ...)                                                                    \
  do {                                                                                   \
    if (!(c)) {                                                                          \
      fprintf(stderr, "FAIL: " __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                               \
      g_fail = 1;                                                                        \
    }                                                                                    \
  } while (0)

typedef struct Shared {
  pthread_barrier_t bar;
  void *slot[2];
  size_t count[2];
} Shared;

typedef struct Rank {
  Shared *sh;
  int rank, sync;
  bn_ctx *ctx;
  float loss[STEPS];
  double tmp[4096];
  float tmpf[4096];
} Rank;

/* the sum of the two threads' statistics, in the same order in both */
static int sum_cb(double *buf, int64_t n, void *user) {
  Rank *r = user;
  Shared *sh = r->sh;
  sh->slot[r->rank] = buf;
  sh->count[r->rank] = (size_t)n;
  pthread_barrier_wait(&sh->bar);
  if (sh->count[0] != sh->count[1] || n > 4096) return -1;
  const double *a = sh->slot[0], *b = sh->slot[1];
  for (int64_t i = 0; i < n; i++) r->tmp[i] = a[i] + b[i];
  pthread_barrier_wait(&sh->bar);
  memcpy(buf, r->tmp, (size_t)n * sizeof *buf);
  return 0;
}

static int fail_sum(double *buf, int64_t n, void *user) {
  (void)buf, (void)n, (void)user;
  return -1;
}

/* the mean of the two threads' gradients */
static int mean_cb(float *buf, size_t count, void *user) {
  Rank *r = user;
  Shared *sh = r->sh;
  sh->slot[r->rank] = buf;
  sh->count[r->rank] = count;
  pthread_barrier_wait(&sh->bar);
  if (sh->count[0] != sh->count[1] || count > 4096) return -1;
  const float *a = sh->slot[0], *b = sh->slot[1];
  for (size_t i = 0; i < count; i++) r->tmpf[i] = (a[i] + b[i]) * 0.5f;
  pthread_barrier_wait(&sh->bar);
  memcpy(buf, r->tmpf, count * sizeof(float));
  return 0;
}

static void *rank_main(void *arg) {
  Rank *r = arg;
  if (r->sync) bn_set_sync_bn(r->ctx, sum_cb, r);
  for (int s = 0; s < STEPS; s++) {
    size_t first = (size_t)(2 * s + r->rank) * B;
    r->loss[s] = bn_train_step_allreduce(r->ctx, g_x + first * IN, g_y + first, mean_cb, r);
  }
  return NULL;
}

/* |got - ref| <= atol + rtol |ref| everywhere; *worst: the largest |got - ref| */
static int close_to(const float *got, const float *ref, size_t n, double atol, double rtol,
                    double *worst) {
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - ref[i]);
    if (d > *worst) *worst = d;
    if (!(d <= atol + rtol * fabs((double)ref[i]))) ok = 0;
  }
  return ok;
}

/* two threads (sync: with the statistics sum); the largest relative loss difference */
static double run(int sync, const float *ref_loss, bng_ctx *g) {
  Shared sh;
  pthread_barrier_init(&sh.bar, NULL, 2);
  Rank *r = calloc(2, sizeof *r);
  if (!r) return INFINITY;
  for (int k = 0; k < 2; k++) {
    r[k].sh = &sh, r[k].rank = k, r[k].sync = sync, r[k].ctx = bn_create_threads(1);
    CHECK(r[k].ctx && !bn_init(r[k].ctx, 1), "rank %d: create/init", k);
  }
  pthread_t th[2];
  for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, rank_main, &r[k]);
  for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
  double rel = 0, worst = 0, wrun = 0;
  for (int s = 0; s < STEPS; s++) {
    double mean = ((double)r[0].loss[s] + r[1].loss[s]) * 0.5, d = fabs(mean - ref_loss[s]);
    rel = fmax(rel, d / fabs(ref_loss[s]));
    if (sync)
      CHECK(d <= 1e-6 + 2e-4 * fabs(ref_loss[s]), "sync-bn step %d: mean loss %.9g vs %.9g", s,
            mean, ref_loss[s]);
  }
  for (int t = 0; t < NT; t++) {
    float *p0 = bn_tensor(r[0].ctx, k_names[t]), *p1 = bn_tensor(r[1].ctx, k_names[t]);
    bool run = t >= NT - NRUN; /* running statistics: tighter (they see no Adam step) */
    int ok = close_to(p0, bng_tensor(g, k_names[t]), k_numel[t], run ? 1e-7 : 1e-4,
                      run ? 1e-4 : 1e-3, run ? &wrun : &worst);
    if (!sync) { /* each thread's own running statistics are not those of the whole batch */
      CHECK(!run || !ok, "local statistics: %s should differ from one context", k_names[t]);
      continue;
    }
    CHECK(!memcmp(p0, p1, k_numel[t] * 4), "sync-bn: the two threads' %s differ", k_names[t]);
    CHECK(ok, "sync-bn: %s differs from one context at batch 16", k_names[t]);
  }
  if (sync)
    printf("sync-bn, two threads: losses within %.3g (relative) of one context at batch 16, "
           "weights within %.3g, running statistics within %.3g\n", rel, worst, wrun);
  for (int k = 0; k < 2; k++) bn_destroy(r[k].ctx);
  free(r);
  pthread_barrier_destroy(&sh.bar);
  return rel;
}

int main(void) {
  uint64_t s = 777;
  for (int i = 0; i < NSAMP * IN; i++) {
    s = s * 6364136223846793005u + 1442695040888963407u;
    g_x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 4 - 1);
  }
  for (int i = 0; i < NSAMP; i++) g_y[i] = (int32_t)((unsigned)(g_x[i * IN] * 1000 + 1000) % 5);
  bng_ctx *g = bng_create_threads(1);
  CHECK(g && !bng_init(g, 1), "bng create/init");
  float ref[STEPS];
  for (int k = 0; k < STEPS; k++) ref[k] = bng_train_step(g, g_x + (size_t)k * 2 * B * IN, g_y + k * 2 * B);
  run(1, ref, g);
  double local = run(0, ref, g);
  printf("local statistics, two threads: losses within %.3g (relative) of one context\n", local);
  CHECK(local > 1e-3, "without the statistics sum the losses should differ (%.3g)", local);
  /* a failing sum fails the step (NAN, the reason in bn_error) and updates nothing */
  bn_ctx *f = bn_create_threads(1);
  CHECK(f && !bn_init(f, 1), "create/init");
  bn_set_sync_bn(f, fail_sum, NULL);
  float before = ((float *)bn_tensor(f, "fc.bias"))[0];
  float l = bn_train_step(f, g_x, g_y);
  CHECK(isnan(l) && strstr(bn_error(f), "batchnorm statistics"), "failing sum: loss %g, '%s'", l,
        bn_error(f));
  CHECK(((float *)bn_tensor(f, "fc.bias"))[0] == before, "failing sum: the weights changed");
  printf("a failing statistics sum: %s\n", bn_error(f));
  bn_destroy(f);
  bng_destroy(g);
  return g_fail;
}
