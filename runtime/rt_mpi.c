/* rt_mpi.c — the main of a program built by `nnc build --mpi`: the program main
 * (rt_main.c) as one rank of MPI_COMM_WORLD, so that `mpirun -np P ./prog train ...` trains
 * data-parallel (docs/distributed.md). The gradients are averaged with MPI_Allreduce (sum,
 * then a multiplication by 1/P) bucket by bucket (rt_ctx_train_step_allreduce), each bucket
 * started during the backward pass by default (MPI_Iallreduce, rt_ctx_train_step_overlap). A
 * CUDA build does the same between its launches (RtDevice.run_split): on cuda-emu, whose
 * device memory is host memory, with these functions; on a GPU with NCCL on a second stream
 * (rt_nccl.c).
 *
 * Errors: MPI calls return their errors (MPI_ERRORS_RETURN) and the program reports them. A
 * process that fails once training has begun calls MPI_Abort, since the others may be
 * waiting for it in an all-reduce; a process that dies (a signal, a lost machine) is
 * noticed by mpirun, which ends the others. Built only where CMake finds MPI (its own
 * archive, libnnc_runtime_mpi.a), so the rest of the runtime never depends on it.
 */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>
#include <time.h>
#include <stdio.h>
#include <string.h>

#include "rt_nccl.h"
#include "rt_program.h"

/* a started all-reduce of the overlapped step */
typedef struct RtMpiReq {
  MPI_Request req;
  float *buf;
  int n;
} RtMpiReq;

typedef struct RtMpi {
  MPI_Comm comm;
  float inv; /* 1 / the number of processes */
  const char *argv0;
  double seconds; /* in MPI_Allreduce of buffers of more than one element (gradients); in
                     the overlapped step, waiting for them after the backward pass */
  int64_t calls, floats, waits;
  RtMpiReq *reqs; /* the overlapped step's started all-reduces */
  int nreqs, capreqs;
  int rank, size;
  RtNccl *nccl; /* a CUDA build's device all-reduce, from its first step */
  int on_device; /* the overlapped buckets went to NCCL on a stream (waited for there) */
} RtMpi;

static double mpi_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int mpi_fail(const RtMpi *m, const char *what, int rc) {
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fprintf(stderr, "%s: error: %s failed: %s\n", m->argv0, what, msg);
  return -1;
}

/* The sum of buf over the processes, in place. A rank that waits for slower ones polls for
 * 0.2 ms, then sleeps 20 us between polls: with more ranks than free cores (oversubscribed,
 * or other work on the machine) a spinning rank would take the CPU from the rank it waits
 * for (on this 2-core machine that doubled the step time of two ranks). */
static int mpi_allreduce_wait(const RtMpi *m, float *buf, int n) {
  MPI_Request req;
  int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, m->comm, &req);
  double t0 = mpi_now();
  for (int done = 0; rc == MPI_SUCCESS;) {
    rc = MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) break;
    if (mpi_now() - t0 > 2e-4) nanosleep(&(struct timespec){0, 20000}, NULL);
  }
  return rc;
}

/* RtAllreduceFn: the mean over the processes, in pieces of at most INT_MAX elements */
static int mpi_mean(float *buf, size_t count, void *user) {
  RtMpi *m = user;
  while (count) {
    int n = count > INT_MAX ? INT_MAX : (int)count;
    double t0 = mpi_now();
    int rc = mpi_allreduce_wait(m, buf, n);
    if (rc != MPI_SUCCESS) return mpi_fail(m, "MPI_Allreduce", rc);
    if (n > 1) m->seconds += mpi_now() - t0, m->calls++, m->floats += n;
    for (int i = 0; i < n; i++) buf[i] *= m->inv;
    buf += n;
    count -= (size_t)n;
  }
  return 0;
}

/* RtAllreduceAsync.start: MPI_Iallreduce (sum) of buf, in pieces of at most INT_MAX
 * elements; the requests started before are tested, which lets MPI progress them */
static int mpi_start(float *buf, size_t count, void *user) {
  RtMpi *m = user;
  for (int i = 0; i < m->nreqs; i++) {
    int done;
    MPI_Test(&m->reqs[i].req, &done, MPI_STATUS_IGNORE);
  }
  while (count) {
    int n = count > INT_MAX ? INT_MAX : (int)count;
    if (m->nreqs == m->capreqs) {
      int cap = m->capreqs ? 2 * m->capreqs : 16;
      RtMpiReq *r = realloc(m->reqs, (size_t)cap * sizeof *r);
      if (!r) return fprintf(stderr, "%s: error: out of memory\n", m->argv0), -1;
      m->reqs = r, m->capreqs = cap;
    }
    RtMpiReq *r = &m->reqs[m->nreqs];
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, m->comm, &r->req);
    if (rc != MPI_SUCCESS) return mpi_fail(m, "MPI_Iallreduce", rc);
    r->buf = buf, r->n = n;
    m->nreqs++, m->calls++, m->floats += n;
    buf += n;
    count -= (size_t)n;
  }
  return 0;
}

/* RtAllreduceAsync.wait: every started all-reduce complete, then the means; polls, then
 * sleeps between polls, as mpi_allreduce_wait */
static int mpi_wait(void *user) {
  RtMpi *m = user;
  double t0 = mpi_now();
  int rc = MPI_SUCCESS;
  for (int i = 0; i < m->nreqs && rc == MPI_SUCCESS; i++)
    for (int done = 0; rc == MPI_SUCCESS;) {
      rc = MPI_Test(&m->reqs[i].req, &done, MPI_STATUS_IGNORE);
      if (done) break;
      if (mpi_now() - t0 > 2e-4) nanosleep(&(struct timespec){0, 20000}, NULL);
    }
  m->seconds += mpi_now() - t0;
  m->waits++;
  for (int i = 0; i < m->nreqs && rc == MPI_SUCCESS; i++)
    for (int k = 0; k < m->reqs[i].n; k++) m->reqs[i].buf[k] *= m->inv;
  m->nreqs = 0;
  return rc == MPI_SUCCESS ? 0 : mpi_fail(m, "MPI_Iallreduce", rc);
}

/* RtDist.stats_sum: the sum over the processes (sync-bn statistics) */
static int mpi_sum_f64(double *buf, int64_t n, void *user) {
  RtMpi *m = user;
  while (n > 0) {
    int k = n > INT_MAX ? INT_MAX : (int)n;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, k, MPI_DOUBLE, MPI_SUM, m->comm);
    if (rc != MPI_SUCCESS) return mpi_fail(m, "MPI_Allreduce", rc);
    buf += k;
    n -= k;
  }
  return 0;
}

/* NCCL in every process, all of them agreeing that it loaded, and the communicator from rank
 * 0's unique id (sent over MPI); 0, or -1 after the message */
static int mpi_nccl_setup(RtMpi *m) {
  char err[512] = "";
  unsigned char id[RT_NCCL_ID_BYTES + 1] = {0};
  RtNccl *nc = rt_nccl_open(NULL, err, sizeof err);
  if (nc && m->rank == 0 && rt_nccl_unique_id(nc, id)) snprintf(err, sizeof err, "%s", rt_nccl_error(nc));
  int ok = nc && !*err, all = 0;
  if (MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, m->comm) != MPI_SUCCESS) all = 0;
  if (all && MPI_Bcast(id, RT_NCCL_ID_BYTES, MPI_BYTE, 0, m->comm) != MPI_SUCCESS) all = 0;
  if (all && rt_nccl_init(nc, id, m->rank, m->size)) {
    snprintf(err, sizeof err, "%s", rt_nccl_error(nc));
    all = 0;
  }
  if (all) return m->nccl = nc, 0;
  if (*err) fprintf(stderr, "%s: error: rank %d: %s\n", m->argv0, m->rank, err);
  rt_nccl_close(nc);
  return -1;
}

/* RtDist.grads_device: every gradient in the device arena averaged with NCCL, one group */
static int mpi_nccl_grads(uint64_t arena, const RtGradInfo *g, int64_t n, void *user) {
  RtMpi *m = user;
  if (!m->nccl && mpi_nccl_setup(m)) return -1;
  uint64_t *dp = malloc((size_t)(n + 1) * sizeof *dp);
  int64_t *cnt = malloc((size_t)(n + 1) * sizeof *cnt);
  int rc = dp && cnt ? 0 : -1;
  for (int64_t i = 0; !rc && i < n; i++) dp[i] = arena + (uint64_t)g[i].offset, cnt[i] = g[i].numel;
  double t0 = mpi_now();
  if (!rc && (rc = rt_nccl_mean(m->nccl, dp, cnt, n)))
    fprintf(stderr, "%s: error: rank %d: %s\n", m->argv0, m->rank, rt_nccl_error(m->nccl));
  m->seconds += mpi_now() - t0, m->calls++;
  for (int64_t i = 0; !rc && i < n; i++) m->floats += g[i].numel;
  free(dp);
  free(cnt);
  return rc;
}

/* RtDist.overlap_device.start: one bucket's device buffers averaged with NCCL (one group) on
 * the communication stream, which waits for the launches that finished them */
static int mpi_nccl_start(const uint64_t *dptr, const int64_t *count, int64_t k, void *stream,
                          void *user) {
  RtMpi *m = user;
  if (!m->nccl && mpi_nccl_setup(m)) return -1;
  if (rt_nccl_mean_on(m->nccl, dptr, count, k, stream)) {
    fprintf(stderr, "%s: error: rank %d: %s\n", m->argv0, m->rank, rt_nccl_error(m->nccl));
    return -1;
  }
  m->calls++, m->on_device = 1;
  for (int64_t i = 0; i < k; i++) m->floats += count[i];
  return 0;
}

/* RtDist.overlap_device.wait: NCCL's work is queued on the stream the kernels then wait for;
 * nothing to wait for on the host */
static int mpi_nccl_wait(void *stream, void *user) {
  RtMpi *m = user;
  (void)stream;
  m->waits++;
  return 0;
}

/* RtDist.stats_sum_device: sync-bn statistics on the device summed with NCCL */
static int mpi_nccl_sum_f64(uint64_t buf, int64_t n, void *user) {
  RtMpi *m = user;
  if (!m->nccl && mpi_nccl_setup(m)) return -1;
  if (!rt_nccl_sum_f64(m->nccl, buf, n)) return 0;
  fprintf(stderr, "%s: error: rank %d: %s\n", m->argv0, m->rank, rt_nccl_error(m->nccl));
  return -1;
}

/* RtDist.grads_device of cuda-emu, whose device memory is host memory: every gradient at
 * arena + offset averaged with MPI_Allreduce (the sums of the host path: at the same P the
 * same bits, whatever the buckets) */
static int mpi_host_grads(uint64_t arena, const RtGradInfo *g, int64_t n, void *user) {
  for (int64_t i = 0; i < n; i++)
    if (mpi_mean((float *)(uintptr_t)(arena + (uint64_t)g[i].offset), (size_t)g[i].numel, user))
      return -1;
  return 0;
}

/* RtDist.stats_sum_device of cuda-emu: the sync-bn sum on its (host) memory */
static int mpi_host_sum_f64(uint64_t buf, int64_t n, void *user) {
  return mpi_sum_f64((double *)(uintptr_t)buf, n, user);
}

/* RtDist.same: the smallest and the largest hash over the processes */
static int mpi_same(uint64_t hash, void *user) {
  const RtMpi *m = user;
  uint64_t lo = hash, hi = hash;
  int rc = MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, m->comm);
  if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, m->comm);
  if (rc != MPI_SUCCESS) return mpi_fail(m, "MPI_Allreduce", rc);
  return lo == hi;
}

/* RtDist.summary: the time in the gradients' all-reduce */
static void mpi_summary(void *user, char *buf, size_t n) {
  const RtMpi *m = user;
  if (m->waits && m->on_device) {
    snprintf(buf, n, "all-reduce of the gradients, overlapping the backward pass: %lld buckets, "
             "%.1f MiB, with NCCL on a second stream (the kernels wait for it on the GPU)",
             (long long)m->calls, (double)m->floats * 4 / 1048576);
    return;
  }
  if (m->waits) {
    snprintf(buf, n, "all-reduce of the gradients, overlapping the backward pass: %lld buckets, "
             "%.1f MiB, %.3f ms per step waiting for them after the backward pass (rank 0)",
             (long long)m->calls, (double)m->floats * 4 / 1048576,
             1e3 * m->seconds / (double)m->waits);
    return;
  }
  snprintf(buf, n, "all-reduce of the gradients: %lld calls, %.1f MiB, %.3f ms per call on "
           "average (rank 0, waiting for the others included)",
           (long long)m->calls, (double)m->floats * 4 / 1048576,
           m->calls ? 1e3 * m->seconds / (double)m->calls : 0.0);
}

int rt_mpi_main(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss, int argc,
                char **argv);

int rt_mpi_main(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss, int argc,
                char **argv) {
  const char *s = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
  RtMpi m = {.comm = MPI_COMM_WORLD, .inv = 1.0f,
             .argv0 = s ? s + 1 : argc > 0 && argv[0] ? argv[0] : "model"};
  int rc = MPI_Init(&argc, &argv);
  if (rc != MPI_SUCCESS) return mpi_fail(&m, "MPI_Init", rc), 1;
  RtDist dist = {0, 1, mpi_mean, mpi_same, mpi_summary, &m, 0, {mpi_start, mpi_wait, &m},
                 mpi_sum_f64, mpi_nccl_grads, mpi_nccl_sum_f64,
                 {mpi_nccl_start, mpi_nccl_wait, &m}};
  MPI_Comm_set_errhandler(m.comm, MPI_ERRORS_RETURN);
  if ((rc = MPI_Comm_rank(m.comm, &dist.rank)) != MPI_SUCCESS ||
      (rc = MPI_Comm_size(m.comm, &dist.size)) != MPI_SUCCESS) {
    mpi_fail(&m, "MPI_Comm_rank/size", rc);
    MPI_Abort(m.comm, 1);
    return 1;
  }
  m.inv = 1.0f / (float)dist.size;
  if (d->device && d->device->name && !strcmp(d->device->name, "cuda-emu")) {
    dist.grads_device = mpi_host_grads, dist.stats_sum_device = mpi_host_sum_f64;
    dist.overlap_device.start = NULL; /* host memory: the CPU path's buckets (dist.overlap) */
  }
  m.rank = dist.rank, m.size = dist.size;
  rc = rt_program_main_dist(d, fwd_inputs, val_loss, argc, argv, &dist);
  if (rc && dist.fatal && dist.size > 1) {
    fprintf(stderr, "%s: rank %d failed during training; stopping the other processes\n",
            m.argv0, dist.rank);
    MPI_Abort(m.comm, rc);
  }
  rt_nccl_close(m.nccl);
  MPI_Finalize();
  free(m.reqs);
  return rc;
}
