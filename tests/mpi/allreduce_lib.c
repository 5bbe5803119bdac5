/* allreduce_lib.c — NAME_train_step_allreduce of a library built by `nnc build --lib`, with
 * all-reduce callbacks standing in for a communicator (run by run_allreduce_lib.sh):
 *
 * 1. a callback that leaves the gradients as they are (the mean over one process): every
 *    step's loss and every weight and optimizer state bit-identical to mlp_train_step, the
 *    callback seeing each gradient element once per step, in buckets of at most 25 MiB;
 * 2. two threads, one context each on its half of a batch of 32, whose callback averages
 *    the two threads' buffers: both end with bit-identical weights, and loss and weights
 *    agree with one context of the same network at batch 32 (mlpg) on the whole batches,
 *    within float reassociation (run_mpi.sh states the tolerance and why);
 * 3. a failing callback: the step fails, the weights are not updated;
 * 1 and 2 again with 16 KiB buckets, where the large gradients go in place, in pieces;
 * 4. mlp_train_step_overlap, the all-reduce overlapping the backward pass: two threads whose
 *    start callback takes a copy of the bucket (as a communicator may read it at any time
 *    after start) and whose wait averages the copies: the same bits as the blocking two
 *    threads of 2, at 25 MiB and at 16 KiB buckets (a bucket started before its gradients
 *    were final would differ); the descriptor marks fc2's gradients final before fc1's, so
 *    with 16 KiB buckets some buckets start while the backward pass still runs.
 *
 * mlp.h: examples/mlp.nn at N=16; mlpg.h: the same network named mlpg at N=32.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "mlpg.h"
#include "rt_model.h"

enum { B = 16, STEPS = 4, NSAMP = 2 * B * STEPS, IN = 784 };

static const char *const k_names[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                      "fc1.weight.adam_m", "fc1.weight.adam_v",
                                      "fc2.weight.adam_m", "fc2.weight.adam_v"};
static const size_t k_numel[] = {512 * 784, 512, 10 * 512, 10, 512 * 784, 512 * 784,
                                 10 * 512, 10 * 512};
enum { NT = sizeof k_names / sizeof *k_names };

static float g_x[NSAMP * IN];
static int32_t g_y[NSAMP];
static int g_fail;

static void data(void) {
  uint64_t s = 12345;
  for (int i = 0; i < NSAMP * IN; i++) {
    s = s * 6364136223846793005u + 1442695040888963407u;
    g_x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
  }
  for (int i = 0; i < NSAMP; i++) g_y[i] = (int32_t)((unsigned)(g_x[i * IN] * 1000 + 1000) % 10);
}

#define CHECK(c, ...)                                                                    \
  do {                                                                                   \
    if (!(c)) {                                                                          \
      fprintf(stderr, "FAIL: " __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                               \
      g_fail = 1;                                                                        \
    }                                                                                    \
  } while (0)

/* ---- 1. the identity --------------------------------------------------------------------- */

typedef struct Count {
  size_t floats, calls, largest;
} Count;

static int count_cb(float *buf, size_t count, void *user) {
  Count *c = user;
  (void)buf;
  c->floats += count;
  c->calls++;
  if (count > c->largest) c->largest = count;
  return 0;
}

static int fail_cb(float *buf, size_t count, void *user) {
  (void)buf, (void)count, (void)user;
  return -1;
}

/* bucket: 0 or the bucket size in bytes */
static void test_identity(int64_t bucket) {
  mlp_ctx *a = mlp_create_threads(1), *b = mlp_create_threads(1);
  CHECK(a && b && !mlp_init(a, 1) && !mlp_init(b, 1), "create/init");
  if (bucket) rt_ctx_set_bucket_bytes(b, bucket);
  Count c = {0};
  for (int s = 0; s < STEPS; s++) {
    float la = mlp_train_step(a, g_x + (size_t)s * B * IN, g_y + s * B);
    float lb = mlp_train_step_allreduce(b, g_x + (size_t)s * B * IN, g_y + s * B, count_cb, &c);
    CHECK(memcmp(&la, &lb, sizeof la) == 0, "identity: step %d loss %.9g vs %.9g", s, la, lb);
  }
  for (int t = 0; t < NT; t++)
    CHECK(!memcmp(mlp_tensor(a, k_names[t]), mlp_tensor(b, k_names[t]), k_numel[t] * 4),
          "identity: %s differs from mlp_train_step's", k_names[t]);
  CHECK(c.floats == (size_t)MLP_NUM_PARAMS * STEPS, "identity: %zu gradient elements, want %lld",
        c.floats, (long long)MLP_NUM_PARAMS * STEPS);
  CHECK(c.largest * 4 <= (size_t)(bucket ? bucket : 25 << 20), "a bucket of %zu floats",
        c.largest);
  printf("identity, bucket %lld bytes: %d steps bit-identical to mlp_train_step; %zu calls, "
         "largest %zu floats\n", (long long)(bucket ? bucket : 25 << 20), STEPS, c.calls,
         c.largest);
  float before = ((float *)mlp_tensor(b, "fc2.bias"))[0];
  float l = mlp_train_step_allreduce(b, g_x, g_y, fail_cb, NULL);
  CHECK(isnan(l) && strstr(mlp_error(b), "all-reduce"), "failing callback: loss %g, error '%s'",
        l, mlp_error(b));
  CHECK(((float *)mlp_tensor(b, "fc2.bias"))[0] == before && mlp_step(b) == STEPS,
        "failing callback: the weights or the step counter changed");
  mlp_destroy(a);
  mlp_destroy(b);
}

/* ---- 2. two threads averaging ------------------------------------------------------------ */

typedef struct Shared {
  pthread_barrier_t bar;
  float *slot[2];
  size_t count[2];
} Shared;

typedef struct Rank {
  Shared *sh;
  int rank;
  mlp_ctx *ctx;
  float loss[STEPS];
  float *tmp;
} Rank;

/* the mean of the two threads' buffers, as MPI_Allreduce(SUM) then * 1/2 would give */
static int mean_cb(float *buf, size_t count, void *user) {
  Rank *r = user;
  Shared *sh = r->sh;
  sh->slot[r->rank] = buf;
  sh->count[r->rank] = count;
  pthread_barrier_wait(&sh->bar);
  if (sh->count[0] != sh->count[1]) return -1;
  for (size_t i = 0; i < count; i++) r->tmp[i] = (sh->slot[0][i] + sh->slot[1][i]) * 0.5f;
  pthread_barrier_wait(&sh->bar);
  memcpy(buf, r->tmp, count * sizeof(float));
  return 0;
}

/* ---- 4. the overlapped step's start and wait ------------------------------------------ */

enum { MAXB = 256 };
typedef struct Async {
  Rank *r;
  float *buf[MAXB], *copy[MAXB];
  size_t count[MAXB];
  int n;
} Async;

static int start_cb(float *buf, size_t count, void *user) {
  Async *a = user;
  if (a->n == MAXB || !(a->copy[a->n] = malloc(count * sizeof(float)))) return -1;
  memcpy(a->copy[a->n], buf, count * sizeof(float));
  a->buf[a->n] = buf;
  a->count[a->n++] = count;
  return 0;
}

/* every started bucket: the mean of the two threads' copies, in start order */
static int wait_cb(void *user) {
  Async *a = user;
  int rc = 0;
  for (int k = 0; k < a->n; k++) {
    rc |= mean_cb(a->copy[k], a->count[k], a->r);
    memcpy(a->buf[k], a->copy[k], a->count[k] * sizeof(float));
    free(a->copy[k]);
  }
  a->n = 0;
  return rc;
}

static int g_overlap; /* rank_main: the overlapped step */

static void *rank_main(void *arg) {
  Rank *r = arg;
  Async as = {.r = r};
  for (int s = 0; s < STEPS; s++) {
    size_t first = (size_t)(2 * s + r->rank) * B;
    r->loss[s] = g_overlap ? mlp_train_step_overlap(r->ctx, g_x + first * IN, g_y + first,
                                                    start_cb, wait_cb, &as)
                           : mlp_train_step_allreduce(r->ctx, g_x + first * IN, g_y + first,
                                                      mean_cb, r);
  }
  return NULL;
}

static int close_to(const float *got, const float *ref, size_t n, double rtol, double atol,
                    double *worst) {
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - ref[i]);
    if (d > *worst) *worst = d;
    if (!(d <= atol + rtol * fabs((double)ref[i]))) ok = 0;
  }
  return ok;
}

static void test_two_ranks(int64_t bucket, float *keep) {
  Shared sh;
  pthread_barrier_init(&sh.bar, NULL, 2);
  Rank r[2];
  for (int k = 0; k < 2; k++) {
    r[k] = (Rank){.sh = &sh, .rank = k, .ctx = mlp_create_threads(1)};
    r[k].tmp = malloc((size_t)25 << 20);
    CHECK(r[k].ctx && r[k].tmp && !mlp_init(r[k].ctx, 1), "rank %d: create/init", k);
    if (bucket) rt_ctx_set_bucket_bytes(r[k].ctx, bucket);
  }
  pthread_t th[2];
  for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, rank_main, &r[k]);
  for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
  mlpg_ctx *g = mlpg_create_threads(1);
  CHECK(g && !mlpg_init(g, 1), "mlpg create/init");
  double worst = 0;
  for (int s = 0; s < STEPS; s++) {
    float lg = mlpg_train_step(g, g_x + (size_t)s * 2 * B * IN, g_y + s * 2 * B);
    float mean = (r[0].loss[s] + r[1].loss[s]) * 0.5f;
    CHECK(fabsf(mean - lg) <= 1e-6f + 2e-4f * fabsf(lg), "step %d: mean loss %.9g vs %.9g", s,
          mean, lg);
  }
  for (int t = 0; t < NT; t++) {
    float *p0 = mlp_tensor(r[0].ctx, k_names[t]), *p1 = mlp_tensor(r[1].ctx, k_names[t]);
    CHECK(!memcmp(p0, p1, k_numel[t] * 4), "the two threads' %s differ", k_names[t]);
    CHECK(close_to(p0, mlpg_tensor(g, k_names[t]), k_numel[t], 1e-3, 1e-4, &worst),
          "%s differs from one context at batch 32", k_names[t]);
  }
  printf("two threads%s, bucket %lld bytes: weights bit-identical to each other; max "
         "|difference| to batch 32: %.3g\n", g_overlap ? " overlapped" : "",
         (long long)(bucket ? bucket : 25 << 20), worst);
  size_t at = 0; /* keep: the weights of the blocking run; compared with the overlapped one */
  for (int t = 0; t < NT; t++, at += k_numel[t - 1]) {
    float *p0 = mlp_tensor(r[0].ctx, k_names[t]);
    if (!g_overlap) memcpy(keep + at, p0, k_numel[t] * 4);
    else CHECK(!memcmp(keep + at, p0, k_numel[t] * 4), "overlapped: %s differs from the blocking "
               "all-reduce's", k_names[t]);
  }
  for (int k = 0; k < 2; k++) {
    mlp_destroy(r[k].ctx);
    free(r[k].tmp);
  }
  mlpg_destroy(g);
  pthread_barrier_destroy(&sh.bar);
}

/* the descriptor: fc2's gradients (the first the backward pass finishes) final earlier */
static void test_ready_marks(void) {
  const RtModelDesc *d = &nnc_model_mlp;
  int64_t fc1 = -1, fc2 = -1;
  for (int64_t i = 0; i < d->ngrads; i++) {
    const char *name = d->tensors[d->grads[i].tensor].name;
    if (!strcmp(name, "fc1.weight")) fc1 = d->grads[i].ready;
    if (!strcmp(name, "fc2.weight")) fc2 = d->grads[i].ready;
  }
  CHECK(fc1 >= 0 && fc2 >= 0 && fc2 < fc1 && fc1 < d->nkernels_train,
        "ready marks: fc2.weight after kernel %lld, fc1.weight after %lld", (long long)fc2,
        (long long)fc1);
  printf("ready marks: fc2.weight final after kernel %lld, fc1.weight after %lld\n",
         (long long)fc2, (long long)fc1);
}

int main(void) {
  size_t all = 0;
  for (int t = 0; t < NT; t++) all += k_numel[t];
  float *keep = malloc(all * sizeof(float));
  if (!keep) return 1;
  data();
  test_identity(0);
  test_ready_marks();
  for (int ov = 0; ov < 2; ov++) {
    g_overlap = ov;
    test_two_ranks(0, keep);
  }
  /* 16 KiB buckets: fc1.weight and fc2.weight in place, in pieces; the biases gathered */
  test_identity(16384);
  for (int ov = 0; ov < 2; ov++) {
    g_overlap = ov;
    test_two_ranks(16384, keep);
  }
  free(keep);
  return g_fail;
}
