/* probe_gemm.c — the figures of `nnc probe` that come from the code the backend runs rather
 * than from the hardware's limits (probe_gemm.h, docs/cost-model.md "Figures from nnc
 * probe"): the thread pool's fork/join round trip and the generated GEMM's packing. */
#include "probe_gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../codegen/llvm/llvm_gemm.h"
#include "../passes/tiles.h"
#include "../runtime/rt_kernels.h"
#include "../runtime/rt_threads.h"

#define PG_FJ_CALLS 2000 /* round trips per repetition */
/* the products' N and K: B is 4 MB, beyond L2; rows 4000 bytes apart, not a power of two,
 * whose rows would share L1 sets and make strided packing several times slower than in
 * a model's layers */
#define PG_NK 1000

static double pg_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void pg_noop(void *ctx, int64_t t) {
  volatile int64_t *sink = ctx;
  *sink += t;
}

static int pg_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* the median round trip of each repetition (a call that another process delays is an
 * outlier, not the pool's cost), the best of the repetitions */
double probe_fork_join(int nt, int reps) {
  if (nt < 2) return 0;
  RtPool *pool = rt_pool_create(nt);
  double *dt = malloc(PG_FJ_CALLS * sizeof *dt);
  volatile int64_t sink = 0;
  double best = 0;
  for (int rep = 0; pool && dt && rep <= reps; rep++) { /* the first starts the workers */
    for (int i = 0; i < PG_FJ_CALLS; i++) {
      double t0 = pg_now();
      rt_parallel_for(pool, nt, pg_noop, (void *)&sink);
      dt[i] = pg_now() - t0;
    }
    qsort(dt, PG_FJ_CALLS, sizeof *dt, pg_cmp);
    if (rep > 0 && (best == 0 || dt[PG_FJ_CALLS / 2] < best)) best = dt[PG_FJ_CALLS / 2];
  }
  free(dt);
  if (pool) rt_pool_destroy(pool);
  return best;
}

/* the runtime's softmax (rt_k_softmax: a max, libm's expf, a sum and a scale per row) on one
 * thread, per element, over a causal attention block: 128 rows of 128 values in [-8, 8), row
 * i masked by -1e9 past its i-th value (expf's underflow path, taken by the masked half,
 * costs about 1.5x its normal one: 5.5 against 4.0 ns on Zen 4) */
double probe_softmax(int reps) {
  enum { ROWS = 128, LEN = 128, CALLS = 50 };
  float *x = malloc(ROWS * LEN * sizeof *x), *y = malloc(ROWS * LEN * sizeof *y);
  double best = 0;
  for (int i = 0; x && y && i < ROWS * LEN; i++)
    x[i] = i % LEN > i / LEN ? -1e9f : (float)((i * 7919) % 1024) / 64.0f - 8.0f;
  for (int rep = 0; x && y && rep <= reps; rep++) { /* the first warms the caches */
    double t0 = pg_now();
    for (int c = 0; c < CALLS; c++) rt_k_softmax(NULL, x, y, ROWS, LEN, 1, 0);
    double dt = (pg_now() - t0) / ((double)CALLS * ROWS * LEN);
    if (rep > 0 && (best == 0 || dt < best)) best = dt;
  }
  free(x), free(y);
  return best;
}

/* the best time of one call C[m, n] = A[m, k] op(B) on the calling thread */
static double pg_time(const LlvmGemmKernel *k, int64_t m, int64_t n, const float *a,
                      const float *b, float *c, int reps, double seconds) {
  double t0 = pg_now();
  k->fn(m, n, PG_NK, a, PG_NK, b, PG_NK, c, n, NULL, NULL);
  double one = pg_now() - t0;
  int iters = one > 0 ? (int)(seconds / one) + 1 : 1;
  double best = 0;
  for (int rep = 0; rep < reps; rep++) {
    t0 = pg_now();
    for (int i = 0; i < iters; i++) k->fn(m, n, PG_NK, a, PG_NK, b, PG_NK, c, n, NULL, NULL);
    double dt = (pg_now() - t0) / iters;
    if (best == 0 || dt < best) best = dt;
  }
  return best;
}

/* times of the four products (s): sq = PG_NK^3 with B as stored (adjacent rows), and the
 * products of one row of micro-tiles (M = MR) with B strided and gathered (ts), adjacent
 * (tc), and strided but transposed in registers, as every build packs it (tt) */
typedef struct PgTimes { double sq, ts, tc, tt; } PgTimes;

static int pg_run(const LlvmGemmBlocking *blk, int reps, double seconds, PgTimes *t,
                  int64_t *mr) {
  LlvmGemmSpec sn = {.blk = *blk}, st = {.trans_b = 1, .blk = *blk, .pack_gather = 1},
               sx = {.trans_b = 1, .blk = *blk};
  char err[256];
  LlvmGemmKernel *kn = llvm_gemm_compile(&sn, err, sizeof err);
  LlvmGemmKernel *kt = kn ? llvm_gemm_compile(&st, err, sizeof err) : NULL;
  LlvmGemmKernel *kx = kt ? llvm_gemm_compile(&sx, err, sizeof err) : NULL;
  size_t n = (size_t)PG_NK * PG_NK;
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  int rc = -1;
  if (kx && a && b && c) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(i % 7) * 0.125f, b[i] = (float)(i % 5) * 0.25f;
    *mr = kn->blk.mr;
    t->sq = pg_time(kn, PG_NK, PG_NK, a, b, c, reps, seconds);
    t->ts = pg_time(kt, *mr, PG_NK, a, b, c, reps, seconds);
    t->tc = pg_time(kn, *mr, PG_NK, a, b, c, reps, seconds);
    t->tt = pg_time(kx, *mr, PG_NK, a, b, c, reps, seconds);
    rc = 0;
  }
  free(a), free(b), free(c);
  if (kx) llvm_gemm_free(kx);
  if (kt) llvm_gemm_free(kt);
  if (kn) llvm_gemm_free(kn);
  return rc;
}

/* The three times in the model the estimate uses (plan_cost.h cg_cpu_gemm): x per micro-tile
 * over K, S per element packed from strided rows (A's MR-row panels, B stored N x K), P per
 * element packed from adjacent rows (B stored K x N):
 *   sq = tiles x + NK P + ceil(N / NC) NK S,  ts = nt x + (NK + MR K) S,  tc = nt x + NK P + MR K S
 * with nt = N / NR tiles in one row; solved by substitution (x is most of sq, S of ts). The
 * fourth, T per element of B's panels transposed in registers, from tt = nt x + NK T + MR K S:
 * T = P + (tt - tc) / NK (P where the noise leaves it at or below zero). */
static int pg_solve(const PgTimes *t, double mr, double nr, double nc, ProbeGemm *out,
                    double *x) {
  double K = PG_NK, NK = K * K, nt = ceil(K / nr), tiles = ceil(K / mr) * nt;
  double na = ceil(K / (nc > 0 ? nc : K)), S = 0, P = 0;
  for (int it = 0; it < 8; it++) {
    *x = (t->sq - NK * P - na * NK * S) / tiles;
    S = (t->ts - nt * *x) / (NK + mr * K);
    P = (t->tc - nt * *x - mr * K * S) / NK;
  }
  if (!(*x > 0 && S > 0 && P > 0)) return -1;
  out->pack_strided_bw = 4 / S;
  out->pack_bw = 4 / P;
  double T = P + (t->tt - t->tc) / NK;
  out->pack_transposed_bw = 4 / (T > 0 ? T : P);
  return 0;
}

int probe_gemm(const HwTarget *hw, int reps, double seconds, ProbeGemm *out) {
  memset(out, 0, sizeof *out);
  TileGemm gm = {.m = PG_NK, .n = PG_NK, .k = PG_NK, .batch = 1, .dt = DT_F32};
  TileDecision d;
  tiles_choose(hw, &gm, &d);
  /* the blocking the CPU backend hands the generator (llvm_ops.c gemm_blocking): the
   * decision vectorizes its m side, the generator its N side */
  LlvmGemmBlocking blk = {.mr = d.nr, .nr = d.mr, .kc = d.kc, .mc = d.mc, .nc = d.nc};
  PgTimes t;
  int64_t mr;
  double x;
  if (pg_run(&blk, reps, seconds, &t, &mr) ||
      pg_solve(&t, (double)mr, (double)blk.nr, (double)blk.nc, out, &x)) {
    memset(out, 0, sizeof *out);
    return -1;
  }
  double peak1 = hw->peak_f32_1t > 0 ? hw->peak_f32_1t : hw->peak[HWP_F32] / (hw->cores > 0 ? hw->cores : 1);
  out->ukr_eff = peak1 > 0 ? 2.0 * (double)mr * (double)blk.nr * PG_NK / x / peak1 : 0;
  if (out->ukr_eff > 1) out->ukr_eff = 1;
  return 0;
}
