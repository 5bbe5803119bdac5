/* rt_kernels.c — the plain-C kernels of the CPU backend (see rt_kernels.h). Each kernel
 * follows the reference interpreter's definition (ir/interp.c). Contiguous sums (rows of
 * softmax, layernorm, batchnorm planes, trailing-axis and per-channel reductions) run in f32 over
 * RK_LANES independent partial sums per block of RK_BLOCK elements, the lanes added
 * pairwise and the blocks in double: loops the compiler vectorizes, with an error bound of
 * about (RK_BLOCK/RK_LANES + 4)·eps_f32 relative to the sum of magnitudes, independent of
 * the length. Column sums and strided paths keep double accumulators. Parallel kernels give
 * every task a fixed range of independent output items and every sum has a fixed order,
 * so the bits of a result never depend on the number of threads. */
#include "rt_kernels.h"
#include "rt_program.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rt_profile.h"
#include "rt_threads.h"
#include "rt_winograd.h"

/* ---- parallel ranges ---------------------------------------------------------------- */

typedef void (*RangeFn)(void *ctx, int64_t lo, int64_t hi);
typedef struct ParRange {
  RangeFn fn;
  void *ctx;
  int64_t n, nt;
} ParRange;

static void par_task(void *c, int64_t t) {
  ParRange *p = c;
  int64_t lo = p->n * t / p->nt, hi = p->n * (t + 1) / p->nt;
  if (lo < hi) p->fn(p->ctx, lo, hi);
}

/* items [0, n), each costing about `cost` flops: small work stays on the caller */
static void par_range(void *pool, int64_t n, int64_t cost, RangeFn fn, void *ctx) {
  if (n <= 0) return;
  int64_t nt = rt_pool_size(pool);
  if (n * (cost > 0 ? cost : 1) < (1 << 15)) nt = 1;
  if (nt > n) nt = n;
  if (nt <= 1) {
    fn(ctx, 0, n);
    return;
  }
  ParRange p = {fn, ctx, n, nt};
  rt_parallel_for(pool, nt, par_task, &p);
}

static void *xalloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  if (!p) abort(); /* no error channel in the kernel ABI; a few bytes of scratch */
  return p;
}

/* ---- blocked f32 sums ------------------------------------------------------------------ */

enum { RK_LANES = RT_SUM_LANES, RK_BLOCK = RT_SUM_BLOCK };

static double rk_lanes_total(float *acc) {
  for (int w = RK_LANES / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; l++) acc[l] += acc[l + w];
  return acc[0];
}

/* static double NAME(ARGS, int64_t n): the sum of TERM(j) over j in [0, n) in the fixed
 * blocked order described at the top of this file */
#define RK_DEFINE_SUM(NAME, ARGS, TERM)                                                      \
  static double NAME(ARGS, int64_t n) {                                                      \
    double total = 0;                                                                        \
    for (int64_t b0 = 0; b0 < n; b0 += RK_BLOCK) {                                           \
      int64_t bn = n - b0 < RK_BLOCK ? n - b0 : RK_BLOCK, i = 0;                             \
      float acc[RK_LANES] = {0};                                                             \
      for (; i + RK_LANES <= bn; i += RK_LANES)                                              \
        for (int l = 0; l < RK_LANES; l++) {                                                 \
          int64_t j = b0 + i + l;                                                            \
          acc[l] += (TERM);                                                                  \
        }                                                                                    \
      for (int l = 0; i + l < bn; l++) {                                                     \
        int64_t j = b0 + i + l;                                                              \
        acc[l] += (TERM);                                                                    \
      }                                                                                      \
      total += rk_lanes_total(acc);                                                          \
    }                                                                                        \
    return total;                                                                            \
  }

#define RK_COMMA ,
RK_DEFINE_SUM(rk_sum, const float *x, x[j])
RK_DEFINE_SUM(rk_dev2, const float *x RK_COMMA float m, (x[j] - m) * (x[j] - m))
RK_DEFINE_SUM(rk_dot, const float *a RK_COMMA const float *b, a[j] * b[j])
RK_DEFINE_SUM(rk_dot_dev, const float *a RK_COMMA const float *x RK_COMMA float m,
              a[j] * (x[j] - m))
RK_DEFINE_SUM(rk_dot3_dev, const float *a RK_COMMA const float *b RK_COMMA const float *x
              RK_COMMA float m, a[j] * b[j] * (x[j] - m))

RK_DEFINE_SUM(rk_sum_exp, const float *x, expf(x[j]))

/* the largest element, NaN if any is NaN, -inf for n == 0 */
static float rk_max(const float *x, int64_t n) {
  float acc[RK_LANES];
  for (int l = 0; l < RK_LANES; l++) acc[l] = -INFINITY;
  int64_t i = 0;
  for (; i + RK_LANES <= n; i += RK_LANES)
    for (int l = 0; l < RK_LANES; l++) acc[l] = x[i + l] > acc[l] || x[i + l] != x[i + l] ? x[i + l] : acc[l];
  for (int l = 0; i + l < n; l++) acc[l] = x[i + l] > acc[l] || x[i + l] != x[i + l] ? x[i + l] : acc[l];
  float m = -INFINITY;
  for (int l = 0; l < RK_LANES; l++) m = acc[l] > m || acc[l] != acc[l] ? acc[l] : m;
  return m;
}

/* ---- reductions ----------------------------------------------------------------------- */

/* strides of x into the kept-dims row-major layout (0 on reduced axes); returns count */
static int64_t red_strides(int rank, const int64_t *dims, int32_t mask, int64_t *st,
                           int64_t *n) {
  int64_t acc = 1, count = 1;
  *n = 1;
  for (int k = rank - 1; k >= 0; k--) {
    *n *= dims[k];
    if (mask >> k & 1) {
      st[k] = 0;
      count *= dims[k];
    } else {
      st[k] = acc;
      acc *= dims[k];
    }
  }
  return count;
}

/* visit every element of x in row-major order with its offset in the reduced layout */
#define ODOMETER(rank, dims, st, n, body)                                                    \
  do {                                                                                       \
    int64_t idx_[8] = {0}, off = 0;                                                          \
    for (int64_t i = 0; i < (n); i++) {                                                      \
      body;                                                                                  \
      for (int k_ = (rank) - 1; k_ >= 0; k_--) {                                             \
        off += (st)[k_];                                                                     \
        if (++idx_[k_] < (dims)[k_]) break;                                                  \
        off -= (st)[k_] * (dims)[k_];                                                        \
        idx_[k_] = 0;                                                                        \
      }                                                                                      \
    }                                                                                        \
  } while (0)

/* Sum over the leading axes of x viewed as [R, C] (bias gradients: a column sum). Each
 * output column adds its R inputs in row order, the order of the general path below, so the
 * result is the same bits; the rows stream through contiguously and the columns are split
 * across the pool in fixed ranges. */
typedef struct ColSum {
  const float *x;
  float *y;
  int64_t R, C;
  double scale;
} ColSum;

static void colsum_range(void *cv, int64_t lo, int64_t hi) {
  const ColSum *s = cv;
  enum { BLK = 256 };
  double acc[BLK];
  for (int64_t j0 = lo; j0 < hi; j0 += BLK) {
    int64_t w = hi - j0 < BLK ? hi - j0 : BLK;
    for (int64_t j = 0; j < w; j++) acc[j] = 0;
    for (int64_t r = 0; r < s->R; r++) {
      const float *row = s->x + r * s->C + j0;
      for (int64_t j = 0; j < w; j++) acc[j] += row[j];
    }
    for (int64_t j = 0; j < w; j++)
      s->y[j0 + j] = (float)(s->scale != 1 ? acc[j] / s->scale : acc[j]);
  }
}

/* Reduction over the trailing axes of x viewed as [R, len]: each output is one contiguous
 * row, summed with the blocked f32 sums; rows split across the pool in fixed ranges. */
typedef struct RowRed {
  const float *x;
  float *y;
  int64_t len;
  int op, corr;
} RowRed;

static void rowred_range(void *cv, int64_t lo, int64_t hi) {
  const RowRed *s = cv;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = s->x + r * s->len;
    double v;
    if (s->op == RT_RED_MAX) {
      v = rk_max(x, s->len);
    } else {
      v = rk_sum(x, s->len);
      if (s->op != RT_RED_SUM) v /= (double)s->len;
      if (s->op == RT_RED_VAR) v = rk_dev2(x, (float)v, s->len) / (double)(s->len - s->corr);
    }
    s->y[r] = (float)v;
  }
}

/* the trailing-axes case of rt_k_reduce; false if mask is not a trailing run of axes */
static bool reduce_rows(void *pool, const float *x, float *y, int32_t rank,
                        const int64_t *dims, int32_t mask, int32_t op, int32_t correction) {
  int first = rank;
  while (first > 0 && (mask >> (first - 1) & 1)) first--;
  if (first == rank || (mask & ((1 << first) - 1)) != 0) return false;
  RowRed s = {x, y, 1, op, correction};
  int64_t R = 1;
  for (int k = 0; k < first; k++) R *= dims[k];
  for (int k = first; k < rank; k++) s.len *= dims[k];
  if (s.len == 0 || R == 0) return false;
  par_range(pool, R, 2 * s.len, rowred_range, &s);
  return true;
}

/* Reduction over leading and trailing axes of x viewed as [A, C, B], keeping the middle
 * (the per-channel sums of NCHW activations: batchnorm statistics, bias gradients): output
 * c adds, for a in order, the blocked f32 sum of the contiguous row x[a, c, :] in double;
 * the variance's second pass does the same with the squared deviations from the f32 mean.
 * Channels split across the pool in fixed ranges. */
typedef struct MidRed {
  const float *x;
  float *y;
  int64_t A, C, B;
  int op, corr;
} MidRed;

static void midred_range(void *cv, int64_t lo, int64_t hi) {
  const MidRed *s = cv;
  for (int64_t c = lo; c < hi; c++) {
    const float *x = s->x + c * s->B;
    int64_t step = s->C * s->B;
    double v = 0;
    if (s->op == RT_RED_MAX) {
      float m = -INFINITY;
      for (int64_t a = 0; a < s->A; a++) {
        float r = rk_max(x + a * step, s->B);
        m = r > m || r != r ? r : m;
      }
      v = m;
    } else {
      for (int64_t a = 0; a < s->A; a++) v += rk_sum(x + a * step, s->B);
      if (s->op != RT_RED_SUM) v /= (double)(s->A * s->B);
      if (s->op == RT_RED_VAR) {
        double q = 0;
        for (int64_t a = 0; a < s->A; a++) q += rk_dev2(x + a * step, (float)v, s->B);
        v = q / (double)(s->A * s->B - s->corr);
      }
    }
    s->y[c] = (float)v;
  }
}

/* the leading-and-trailing case of rt_k_reduce; false unless mask is a non-empty leading
 * run of axes and a non-empty trailing one around kept axes */
static bool reduce_mid(void *pool, const float *x, float *y, int32_t rank, const int64_t *dims,
                       int32_t mask, int32_t op, int32_t correction) {
  int lead = 0, first = rank;
  while (lead < rank && (mask >> lead & 1)) lead++;
  while (first > lead && (mask >> (first - 1) & 1)) first--;
  if (lead == 0 || first == rank || first == lead || (mask >> lead & ((1 << (first - lead)) - 1)))
    return false;
  MidRed s = {x, y, 1, 1, 1, op, correction};
  for (int k = 0; k < lead; k++) s.A *= dims[k];
  for (int k = lead; k < first; k++) s.C *= dims[k];
  for (int k = first; k < rank; k++) s.B *= dims[k];
  if (s.A == 0 || s.B == 0 || s.C == 0) return false;
  par_range(pool, s.C, 3 * s.A * s.B, midred_range, &s);
  return true;
}

void rt_k_reduce(void *pool, const float *x, float *y, int32_t rank, const int64_t *dims,
                 int32_t mask, int32_t op, int32_t correction) {
  /* leading axes reduced, trailing kept: the column-sum path */
  int lead = 0;
  while (lead < rank && (mask >> lead & 1)) lead++;
  if ((op == RT_RED_SUM || op == RT_RED_MEAN) && lead > 0 && lead < rank &&
      (mask >> lead) == 0) {
    ColSum s = {x, y, 1, 1, 1};
    for (int k = 0; k < lead; k++) s.R *= dims[k];
    for (int k = lead; k < rank; k++) s.C *= dims[k];
    if (s.R > 0 && s.C > 0) {
      if (op == RT_RED_MEAN) s.scale = (double)s.R;
      par_range(pool, s.C, s.R, colsum_range, &s);
      return;
    }
  }
  if (reduce_rows(pool, x, y, rank, dims, mask, op, correction)) return;
  if (reduce_mid(pool, x, y, rank, dims, mask, op, correction)) return;
  int64_t st[8], n;
  int64_t count = red_strides(rank, dims, mask, st, &n);
  int64_t rn = count ? n / count : 0;
  if (count == 0) { /* empty reduction: sum 0, others NaN/-inf as in double arithmetic */
    for (int64_t j = 0; j < rn; j++)
      y[j] = op == RT_RED_SUM ? 0.0f : op == RT_RED_MAX ? -INFINITY : NAN;
    return;
  }
  double *acc = xalloc((size_t)rn * sizeof(double));
  if (op == RT_RED_MAX) {
    for (int64_t j = 0; j < rn; j++) acc[j] = -INFINITY;
    ODOMETER(rank, dims, st, n, {
      double v = x[i];
      if (v > acc[off] || isnan(v)) acc[off] = v;
    });
  } else {
    ODOMETER(rank, dims, st, n, acc[off] += x[i]);
  }
  if (op == RT_RED_MEAN || op == RT_RED_VAR)
    for (int64_t j = 0; j < rn; j++) acc[j] /= (double)count;
  if (op == RT_RED_VAR) {
    double *q = xalloc((size_t)rn * sizeof(double));
    ODOMETER(rank, dims, st, n, {
      double d = x[i] - acc[off];
      q[off] += d * d;
    });
    for (int64_t j = 0; j < rn; j++) acc[j] = q[j] / (double)(count - correction);
    free(q);
  }
  for (int64_t j = 0; j < rn; j++) y[j] = (float)acc[j];
  free(acc);
}

void rt_k_max_bwd(void *pool, const float *dy, const float *x, const float *y, float *dx,
                  int32_t rank, const int64_t *dims, int32_t mask) {
  (void)pool;
  int64_t st[8], n;
  red_strides(rank, dims, mask, st, &n);
  ODOMETER(rank, dims, st, n, dx[i] = x[i] == y[off] ? dy[off] : 0.0f);
}

/* ---- softmax -------------------------------------------------------------------------- */

typedef struct SmCtx {
  const float *x, *y, *dy;
  float *out;
  int64_t len, inner;
  int log;
} SmCtx;

static void sm_rows(void *c, int64_t lo, int64_t hi) {
  SmCtx *s = c;
  for (int64_t r = lo; r < hi; r++) {
    int64_t o = r / s->inner, q = r % s->inner, b = o * s->len * s->inner + q;
    double m = -INFINITY, sum = 0;
    for (int64_t l = 0; l < s->len; l++) m = fmax(m, s->x[b + l * s->inner]);
    for (int64_t l = 0; l < s->len; l++) sum += exp((double)s->x[b + l * s->inner] - m);
    double ls = log(sum);
    for (int64_t l = 0; l < s->len; l++) {
      double v = (double)s->x[b + l * s->inner] - m;
      s->out[b + l * s->inner] = (float)(s->log ? v - ls : exp(v) / sum);
    }
  }
}

/* contiguous rows (inner == 1): f32 exponentials into the output, a blocked sum, a scale */
static void sm_rows_contig(void *c, int64_t lo, int64_t hi) {
  SmCtx *s = c;
  int64_t len = s->len;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = s->x + r * len; /* may be the output itself */
    float *o = s->out + r * len, m = rk_max(x, len);
    if (s->log) {
      for (int64_t l = 0; l < len; l++) o[l] = x[l] - m;
      float ls = (float)log(rk_sum_exp(o, len));
      for (int64_t l = 0; l < len; l++) o[l] -= ls;
    } else {
      for (int64_t l = 0; l < len; l++) o[l] = expf(x[l] - m);
      float inv = (float)(1.0 / rk_sum(o, len));
      for (int64_t l = 0; l < len; l++) o[l] *= inv;
    }
  }
}

void rt_k_softmax(void *pool, const float *x, float *y, int64_t outer, int64_t len,
                  int64_t inner, int32_t log) {
  SmCtx s = {.x = x, .out = y, .len = len, .inner = inner, .log = log};
  par_range(pool, outer * inner, 20 * len, inner == 1 ? sm_rows_contig : sm_rows, &s);
}

static void sm_bwd_rows(void *c, int64_t lo, int64_t hi) {
  SmCtx *s = c;
  for (int64_t r = lo; r < hi; r++) {
    int64_t o = r / s->inner, q = r % s->inner, b = o * s->len * s->inner + q;
    double sum = 0;
    for (int64_t l = 0; l < s->len; l++) {
      int64_t i = b + l * s->inner;
      sum += s->log ? (double)s->dy[i] : (double)s->dy[i] * s->y[i];
    }
    for (int64_t l = 0; l < s->len; l++) {
      int64_t i = b + l * s->inner;
      s->out[i] = (float)(s->log ? s->dy[i] - exp((double)s->y[i]) * sum
                                 : s->y[i] * ((double)s->dy[i] - sum));
    }
  }
}

static void sm_bwd_rows_contig(void *c, int64_t lo, int64_t hi) {
  SmCtx *s = c;
  int64_t len = s->len;
  for (int64_t r = lo; r < hi; r++) {
    const float *y = s->y + r * len, *dy = s->dy + r * len;
    float *o = s->out + r * len;
    float sum = (float)(s->log ? rk_sum(dy, len) : rk_dot(dy, y, len));
    if (s->log)
      for (int64_t l = 0; l < len; l++) o[l] = dy[l] - expf(y[l]) * sum;
    else
      for (int64_t l = 0; l < len; l++) o[l] = y[l] * (dy[l] - sum);
  }
}

void rt_k_softmax_bwd(void *pool, const float *dy, const float *y, float *dx, int64_t outer,
                      int64_t len, int64_t inner, int32_t log) {
  SmCtx s = {.y = y, .dy = dy, .out = dx, .len = len, .inner = inner, .log = log};
  par_range(pool, outer * inner, 10 * len, inner == 1 ? sm_bwd_rows_contig : sm_bwd_rows, &s);
}

/* ---- data movement -------------------------------------------------------------------- */

/* Output dims od[] with input strides st[] (elements): drops unit dims and merges output
 * neighbours that are also neighbours in the input; returns the new rank (>= 1). */
static int tp_collapse(int rank, int64_t *od, int64_t *st) {
  int r = 0;
  for (int k = 0; k < rank; k++) {
    if (od[k] == 1) continue;
    if (r > 0 && st[r - 1] == st[k] * od[k]) {
      od[r - 1] *= od[k];
      st[r - 1] = st[k];
      continue;
    }
    od[r] = od[k], st[r] = st[k], r++;
  }
  if (r == 0) od[0] = 1, st[0] = 1, r = 1;
  return r;
}

/* 4-byte elements: with a contiguous last output axis, rows are copied; otherwise the
 * output axis that is contiguous in the input (q) and the last output axis are walked in
 * TP_TILE x TP_TILE tiles, so both reads and writes stay within a few cache lines */
static void tp_f32(const uint32_t *s, uint32_t *d, int rank, const int64_t *od,
                   const int64_t *st) {
  enum { TP_TILE = 16 };
  int last = rank - 1, q = 0;
  int64_t ost[8], acc = 1, n = 1;
  for (int k = rank - 1; k >= 0; k--) ost[k] = acc, acc *= od[k];
  for (int k = 0; k < last; k++)
    if (st[k] < st[q] || q == last) q = k;
  /* the outer axes: all but q and last (q unused when the last axis is contiguous) */
  int64_t odims[8], ist[8], dst[8], idx[8] = {0};
  int no = 0;
  bool rows = st[last] == 1 || rank == 1;
  for (int k = 0; k < last; k++)
    if (rows || k != q) odims[no] = od[k], ist[no] = st[k], dst[no] = ost[k], n *= od[k], no++;
  int64_t L = od[last], Q = rows ? 1 : od[q];
  for (int64_t t = 0; t < n; t++) {
    int64_t so = 0, dso = 0;
    for (int k = 0; k < no; k++) so += idx[k] * ist[k], dso += idx[k] * dst[k];
    if (rows) {
      memcpy(d + dso, s + so, (size_t)L * 4);
    } else {
      for (int64_t i0 = 0; i0 < Q; i0 += TP_TILE)
        for (int64_t j0 = 0; j0 < L; j0 += TP_TILE) {
          int64_t ie = i0 + TP_TILE < Q ? i0 + TP_TILE : Q, je = j0 + TP_TILE < L ? j0 + TP_TILE : L;
          for (int64_t i = i0; i < ie; i++)
            for (int64_t j = j0; j < je; j++)
              d[dso + i * ost[q] + j] = s[so + i * st[q] + j * st[last]];
        }
    }
    for (int k = no - 1; k >= 0; k--) {
      if (++idx[k] < odims[k]) break;
      idx[k] = 0;
    }
  }
}

void rt_k_transpose(const void *x, void *y, int32_t rank, const int64_t *in_dims,
                    const int64_t *perm, int64_t esize) {
  int64_t ist[8], st[8], od[8], n = 1, acc = 1;
  for (int k = rank - 1; k >= 0; k--) {
    ist[k] = acc;
    acc *= in_dims[k];
  }
  for (int k = 0; k < rank; k++) {
    od[k] = in_dims[perm[k]];
    st[k] = ist[perm[k]];
    n *= od[k];
  }
  if (n == 0) return;
  const char *src = x;
  char *dst = y;
  if (esize == 4) {
    int r = tp_collapse(rank, od, st);
    tp_f32(x, y, r, od, st);
  } else {
    ODOMETER(rank, od, st, n, memcpy(dst + i * esize, src + off * esize, (size_t)esize));
  }
}

void rt_k_axis_copy(const void *src, void *dst, int64_t outer, int64_t len, int64_t inner,
                    int64_t src_len, int64_t src_start, int64_t dst_len, int64_t dst_start,
                    int64_t esize) {
  const char *s = src;
  char *d = dst;
  size_t chunk = (size_t)(len * inner * esize);
  for (int64_t o = 0; o < outer; o++)
    memcpy(d + ((o * dst_len + dst_start) * inner) * esize,
           s + ((o * src_len + src_start) * inner) * esize, chunk);
}

/* ---- pooling -------------------------------------------------------------------------- */

enum { G_N, G_C, G_H, G_W, G_OH, G_OW, G_KH, G_KW, G_SH, G_SW, G_PH, G_PW, G_DH, G_DW, G_EXCL };

/* average pooling's divisor for window (oh, ow): the window clipped to the padded input, or
 * with G_EXCL (count_include_pad=False) to the input itself (PyTorch's definition) */
static double pool_divisor(const int64_t *g, int64_t oh, int64_t ow) {
  int64_t hs = oh * g[G_SH] - g[G_PH], ws = ow * g[G_SW] - g[G_PW];
  int64_t he = hs + g[G_KH] < g[G_H] + g[G_PH] ? hs + g[G_KH] : g[G_H] + g[G_PH];
  int64_t we = ws + g[G_KW] < g[G_W] + g[G_PW] ? ws + g[G_KW] : g[G_W] + g[G_PW];
  if (g[G_EXCL]) {
    hs = hs > 0 ? hs : 0, ws = ws > 0 ? ws : 0;
    he = he < g[G_H] ? he : g[G_H], we = we < g[G_W] ? we : g[G_W];
  }
  return (double)((he - hs) * (we - ws));
}

typedef struct PoolCtx {
  const int64_t *g;
  const float *x, *dy;
  float *out;
  int is_max;
  bool avx2; /* the CPU has AVX2 (the 2x2 path's clones) */
} PoolCtx;

/* max pooling of plane p, one output row at a time: for each window offset (kh, kw) a
 * running maximum over the output row's valid range (vectorizable when the stride is 1).
 * The offsets are visited in the window's row-major order and a NaN replaces the maximum,
 * so the value is the maximum pool_argmax finds. */
static void maxpool_plane(const int64_t *g, const float *x, float *y) {
  int64_t H = g[G_H], W = g[G_W], OW = g[G_OW], sw = g[G_SW], pw = g[G_PW];
  for (int64_t oh = 0; oh < g[G_OH]; oh++) {
    float *yr = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ow++) yr[ow] = -INFINITY;
    for (int64_t kh = 0; kh < g[G_KH]; kh++) {
      int64_t ih = oh * g[G_SH] - g[G_PH] + kh * g[G_DH];
      if (ih < 0 || ih >= H) continue;
      const float *xr = x + ih * W;
      for (int64_t kw = 0; kw < g[G_KW]; kw++) {
        int64_t off = kw * g[G_DW] - pw; /* iw = ow·sw + off must lie in [0, W) */
        int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int64_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
        if (hi > OW) hi = OW;
        for (int64_t ow = lo; ow < hi; ow++) {
          float v = xr[ow * sw + off], m = yr[ow];
          yr[ow] = v > m || v != v ? v : m;
        }
      }
    }
  }
}

/* ---- 2x2 windows at stride 2 (LeNet's, VGG's): each input element in at most one window.
 * Eight windows of an output row at a time in vectors (GCC/clang vector extensions, built
 * for baseline x86-64 and, where the CPU has it, AVX2, as rt_winograd.c does): the two
 * input rows' 16 columns split into their even and odd lanes by shuffles; a row's last
 * windows go through a zero-padded copy. The rules are the general paths': the forward's
 * running maximum in window order with a NaN replacing it, the backward's first strict
 * maximum (the first NaN before all) and nothing for a window of -inf; the backward writes
 * every element of dx once, so it needs no zeroing pass and no scatter. */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define POOL_X86 1
#define POOL_INLINE static inline __attribute__((always_inline))
#else
#define POOL_X86 0
#define POOL_INLINE static inline
#endif

typedef float pv8f __attribute__((vector_size(32)));
typedef int32_t pv8i __attribute__((vector_size(32)));
#define PV 8
#define PLD(v, p) memcpy(&(v), (p), sizeof(pv8f))
#define PST(p, v) memcpy((p), &(v), sizeof(pv8f))

/* the windows are 2x2 at stride 2, undilated and unpadded, and lie inside the plane */
static bool pool_2x2(const int64_t *g) {
  return g[G_KH] == 2 && g[G_KW] == 2 && g[G_SH] == 2 && g[G_SW] == 2 && g[G_PH] == 0 &&
         g[G_PW] == 0 && g[G_DH] == 1 && g[G_DW] == 1 && 2 * g[G_OH] <= g[G_H] &&
         2 * g[G_OW] <= g[G_W];
}

/* a where the mask m is set, else b (macros: no vector crosses a call) */
#define POOL_SEL(m, a, b) ((pv8f)(((m) & (pv8i)(a)) | (~(m) & (pv8i)(b))))

/* the even (h = 0) or odd (h = 1) lanes of the 16 floats at p, into v */
#define POOL_HALF(v, p, h)                                                                     \
  do {                                                                                         \
    pv8f lo_, hi_;                                                                             \
    PLD(lo_, (p)), PLD(hi_, (p) + PV);                                                         \
    v = (h) ? __builtin_shufflevector(lo_, hi_, 1, 3, 5, 7, 9, 11, 13, 15)                    \
            : __builtin_shufflevector(lo_, hi_, 0, 2, 4, 6, 8, 10, 12, 14);                   \
  } while (0)

/* eight windows from rows r0, r1 (16 columns each) into y[0..8) */
POOL_INLINE void pool2_fwd8(const float *r0, const float *r1, float *y) {
  pv8f m = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  for (int i = 0; i < 4; i++) { /* v replaces the maximum where it is larger or a NaN */
    pv8f v;
    POOL_HALF(v, i < 2 ? r0 : r1, i & 1);
    pv8i up = (v > m) | (v != v);
    m = POOL_SEL(up, v, m);
  }
  PST(y, m);
}

/* eight windows' gradients dy[0..8) into d0, d1 (16 columns each) at each window's first
 * strict maximum (pool_argmax's sequential rule), 0 elsewhere */
POOL_INLINE void pool2_bwd8(const float *r0, const float *r1, const float *dy, float *d0, float *d1) {
  pv8f v[4], g, z = {0};
  for (int i = 0; i < 4; i++) POOL_HALF(v[i], i < 2 ? r0 : r1, i & 1);
  pv8f m = v[0];
  pv8i s = {0};
  for (int i = 1; i < 4; i++) {
    pv8i up = (v[i] > m) | ((v[i] != v[i]) & (m == m));
    m = POOL_SEL(up, v[i], m);
    s = (up & i) | (~up & s);
  }
  s = (pv8i)POOL_SEL(m == -INFINITY, (pv8f)(s - s - 1), (pv8f)s);
  PLD(g, dy);
  pv8f e[4];
  for (int i = 0; i < 4; i++) e[i] = POOL_SEL(s == i, g, z);
  pv8f o[4] = {__builtin_shufflevector(e[0], e[1], 0, 8, 1, 9, 2, 10, 3, 11),
               __builtin_shufflevector(e[0], e[1], 4, 12, 5, 13, 6, 14, 7, 15),
               __builtin_shufflevector(e[2], e[3], 0, 8, 1, 9, 2, 10, 3, 11),
               __builtin_shufflevector(e[2], e[3], 4, 12, 5, 13, 6, 14, 7, 15)};
  PST(d0, o[0]), PST(d0 + PV, o[1]), PST(d1, o[2]), PST(d1 + PV, o[3]);
}

/* the first column of a row's i-th vector of eight windows: the last one ends with the row
 * (overlapping the one before; the windows' results are written again, the same) */
static inline int64_t pool2_col(int64_t i, int64_t OW) { return (i + 1) * PV <= OW ? i * PV : OW - PV; }

/* Rows shorter than a vector: the input rows r0, r1 (n floats each) and dy's row dr (n/2)
 * are read as whole vectors where the tensor goes on that far (x_end, dy_end; the extra
 * lanes are computed and dropped), else from zero-padded copies; the outputs are stored as
 * whole vectors where this task's range goes on that far (out_end: rows after this one,
 * which the next row overwrites), else copied from buffers. */
typedef struct PoolShort {
  const float *x_end, *dy_end;
  float *out_end;
} PoolShort;

POOL_INLINE const float *pool2_in(const float *r, int64_t n, const float *end, float *buf) {
  if (r + 2 * PV <= end) return r;
  for (int64_t i = 0; i < 2 * PV; i++) buf[i] = i < n ? r[i] : 0.0f;
  return buf;
}

/* forward: planes [lo, hi) */
POOL_INLINE void pool2_fwd(const int64_t *g, const float *x, float *y, int64_t lo, int64_t hi) {
  int64_t H = g[G_H], W = g[G_W], OH = g[G_OH], OW = g[G_OW], nv = (OW + PV - 1) / PV;
  const float *x_end = x + g[G_N] * g[G_C] * H * W;
  float *y_end = y + hi * OH * OW;
  for (int64_t p = lo; p < hi; p++)
    for (int64_t oh = 0; oh < OH; oh++) {
      const float *r0 = x + (p * H + 2 * oh) * W, *r1 = r0 + W;
      float *yr = y + (p * OH + oh) * OW;
      if (OW < PV) {
        float b0[2 * PV], b1[2 * PV], t[PV];
        bool room = yr + PV <= y_end;
        pool2_fwd8(pool2_in(r0, 2 * OW, x_end, b0), pool2_in(r1, 2 * OW, x_end, b1), room ? yr : t);
        for (int64_t i = 0; !room && i < OW; i++) yr[i] = t[i];
        continue;
      }
      for (int64_t i = 0; i < nv; i++) {
        int64_t ow = pool2_col(i, OW);
        pool2_fwd8(r0 + 2 * ow, r1 + 2 * ow, yr + ow);
      }
    }
}

/* backward: one output row of fewer than eight windows; its dx rows d0, d1 */
POOL_INLINE void pool2_bwd_short(const float *r0, const float *r1, const float *dr, float *d0,
                                 float *d1, int64_t OW, const PoolShort *ps) {
  float b0[2 * PV], b1[2 * PV], t[2 * PV], o0[2 * PV], o1[2 * PV];
  bool room = d1 + 2 * PV <= ps->out_end;
  r0 = pool2_in(r0, 2 * OW, ps->x_end, b0), r1 = pool2_in(r1, 2 * OW, ps->x_end, b1);
  pool2_bwd8(r0, r1, pool2_in(dr, OW, ps->dy_end, t), room ? d0 : o0, o1);
  if (room) { /* d0's vectors ran into d1's row: d1 after them */
    memcpy(d1, o1, sizeof o1);
    return;
  }
  for (int64_t i = 0; i < 2 * OW; i++) d0[i] = o0[i], d1[i] = o1[i];
}

/* backward: dx of planes [lo, hi), every element written once (0 outside the windows) */
POOL_INLINE void pool2_bwd(const int64_t *g, const float *x, const float *dy, float *dx,
                           int64_t lo, int64_t hi) {
  int64_t H = g[G_H], W = g[G_W], OH = g[G_OH], OW = g[G_OW], nv = (OW + PV - 1) / PV;
  PoolShort ps = {x + g[G_N] * g[G_C] * H * W, dy + g[G_N] * g[G_C] * OH * OW, dx + hi * H * W};
  for (int64_t p = lo; p < hi; p++) {
    for (int64_t oh = 0; oh < OH; oh++) {
      int64_t r = (p * H + 2 * oh) * W;
      const float *r0 = x + r, *r1 = r0 + W, *dr = dy + (p * OH + oh) * OW;
      float *d0 = dx + r, *d1 = d0 + W;
      if (OW < PV) pool2_bwd_short(r0, r1, dr, d0, d1, OW, &ps);
      for (int64_t i = 0; OW >= PV && i < nv; i++) {
        int64_t ow = pool2_col(i, OW);
        pool2_bwd8(r0 + 2 * ow, r1 + 2 * ow, dr + ow, d0 + 2 * ow, d1 + 2 * ow);
      }
      for (int64_t iw = 2 * OW; iw < W; iw++) d0[iw] = d1[iw] = 0.0f;
    }
    memset(dx + (p * H + 2 * OH) * W, 0, (size_t)((H - 2 * OH) * W) * sizeof(float));
  }
}

static void pool2_fwd_base(const int64_t *g, const float *x, float *y, int64_t lo, int64_t hi) {
  pool2_fwd(g, x, y, lo, hi);
}
static void pool2_bwd_base(const int64_t *g, const float *x, const float *dy, float *dx,
                           int64_t lo, int64_t hi) {
  pool2_bwd(g, x, dy, dx, lo, hi);
}
#if POOL_X86
__attribute__((target("avx2"))) static void pool2_fwd_avx2(const int64_t *g, const float *x,
                                                           float *y, int64_t lo, int64_t hi) {
  pool2_fwd(g, x, y, lo, hi);
}
__attribute__((target("avx2"))) static void pool2_bwd_avx2(const int64_t *g, const float *x,
                                                           const float *dy, float *dx,
                                                           int64_t lo, int64_t hi) {
  pool2_bwd(g, x, dy, dx, lo, hi);
}
#endif

/* the 2x2 path over planes [lo, hi): the forward (dy NULL) or the backward */
static void pool2_range(const int64_t *g, const float *x, const float *dy, float *out,
                        int64_t lo, int64_t hi, bool avx2) {
#if POOL_X86
  if (avx2) {
    if (dy) pool2_bwd_avx2(g, x, dy, out, lo, hi);
    else pool2_fwd_avx2(g, x, out, lo, hi);
    return;
  }
#endif
  (void)avx2;
  if (dy) pool2_bwd_base(g, x, dy, out, lo, hi);
  else pool2_fwd_base(g, x, out, lo, hi);
}

/* the window taps [*k0, *k1) whose index o + k·d lies in [0, n) */
static void pool_taps(int64_t o, int64_t d, int64_t k, int64_t n, int64_t *k0, int64_t *k1) {
  *k0 = o >= 0 ? 0 : (-o + d - 1) / d;
  *k1 = o >= n ? 0 : (n - o + d - 1) / d;
  if (*k1 > k) *k1 = k;
  if (*k0 > *k1) *k0 = *k1;
}

/* ---- 3x3 windows at stride 2 (ResNet's pool after the stem: padding 1) ------------------
 * Eight windows of an output row at a time, in the 2x2 path's vectors. Each input row a
 * window row needs is copied into a buffer padded with -inf (the padding, and past the
 * row's end), whose even and odd lanes from the first window's column 0 are the windows'
 * columns 0 and 1, and whose even lanes two floats on their column 2. The forward keeps
 * the running maximum in window order (a NaN replacing it). The backward finds each
 * window's tap (pool_argmax's rule: the first NaN, else the first strict maximum, none for
 * a window of -inf), then for each of the window row's input rows interleaves the windows'
 * dy masked by tap into a row of contributions (column 2's two floats on, added) and adds
 * it to dx, which is zeroed first: an input shared by windows sums their dy. */

static bool pool_3x3s2(const int64_t *g) {
  return g[G_KH] == 3 && g[G_KW] == 3 && g[G_SH] == 2 && g[G_SW] == 2 && g[G_DH] == 1 &&
         g[G_DW] == 1 && g[G_PH] >= 0 && g[G_PH] <= 1 && g[G_PW] >= 0 && g[G_PW] <= 1;
}

/* a padded row's floats: the windows' 2·nv·8 columns, column 2's two more and a vector of
 * slack, and at least the row with its left padding */
static int64_t pool3_len(const int64_t *g) {
  int64_t nv = (g[G_OW] + PV - 1) / PV, n = 2 * nv * PV + 2 + 2 * PV;
  return n > g[G_W] + g[G_PW] ? n : g[G_W] + g[G_PW];
}

/* input row r into buf: its W floats at pw, -inf around them (len floats in all) */
POOL_INLINE void pool3_row(const float *r, const int64_t *g, float *buf, int64_t len) {
  int64_t W = g[G_W], pw = g[G_PW];
  for (int64_t j = 0; j < pw; j++) buf[j] = -INFINITY;
  memcpy(buf + pw, r, (size_t)W * sizeof(float));
  for (int64_t j = pw + W; j < len; j++) buf[j] = -INFINITY;
}

/* the window's column kw (0..2) of the eight windows from padded row b */
#define POOL3_COL(v, b, kw) POOL_HALF(v, (b) + ((kw) == 2 ? 2 : 0), (kw) == 1)

/* the padded rows of window row oh's taps into rows[0..3) (NULL outside the plane; [kh0,
 * kh1) valid): input row ih lives in buf[ih % 3], copied from plane xp when *have says it
 * is not there yet (each input row is copied once for the two window rows it is in) */
POOL_INLINE void pool3_rows(const int64_t *g, const float *xp, int64_t oh, float *const *buf,
                            int64_t *have, int64_t len, float **rows, int64_t *kh0, int64_t *kh1) {
  int64_t ih0 = 2 * oh - g[G_PH];
  pool_taps(ih0, 1, 3, g[G_H], kh0, kh1);
  rows[0] = rows[1] = rows[2] = NULL;
  for (int64_t kh = *kh0; kh < *kh1; kh++) {
    int64_t ih = ih0 + kh;
    if (have[ih % 3] != ih) pool3_row(xp + ih * g[G_W], g, buf[ih % 3], len), have[ih % 3] = ih;
    rows[kh] = buf[ih % 3];
  }
}

/* forward: planes [lo, hi); t: pool3_scratch's floats */
POOL_INLINE void pool3_fwd(const int64_t *g, const float *x, float *y, int64_t lo, int64_t hi,
                           float *t) {
  int64_t H = g[G_H], W = g[G_W], OH = g[G_OH], OW = g[G_OW], nv = (OW + PV - 1) / PV;
  int64_t len = pool3_len(g), kh0, kh1;
  float *buf[3] = {t, t + len, t + 2 * len}, *rows[3];
  for (int64_t p = lo; p < hi; p++) {
    int64_t have[3] = {-1, -1, -1};
    for (int64_t oh = 0; oh < OH; oh++) {
      pool3_rows(g, x + p * H * W, oh, buf, have, len, rows, &kh0, &kh1);
      float *yr = y + (p * OH + oh) * OW;
      for (int64_t i = 0; i < nv; i++) {
        pv8f m = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}, v;
        for (int64_t kh = kh0; kh < kh1; kh++)
          for (int kw = 0; kw < 3; kw++) { /* v replaces the maximum where larger or a NaN */
            POOL3_COL(v, rows[kh] + 2 * i * PV, kw);
            m = POOL_SEL((v > m) | (v != v), v, m);
          }
        if ((i + 1) * PV <= OW) {
          PST(yr + i * PV, m);
        } else {
          float o[PV];
          PST(o, m);
          memcpy(yr + i * PV, o, (size_t)(OW - i * PV) * sizeof(float));
        }
      }
    }
  }
}

/* into out[0..8): the tap 3·kh + kw that pool_argmax picks in each of eight windows at
 * offset off of the padded rows rows[kh] (NULL: outside the plane), or -1 */
POOL_INLINE void pool3_taps8(float *const *rows, int64_t off, int32_t *out) {
  pv8f v[9], m = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  pv8i nan = {0}, best = {-1, -1, -1, -1, -1, -1, -1, -1}, bnan = best;
  for (int t = 0; t < 9; t++) {
    if (!rows[t / 3]) continue;
    POOL3_COL(v[t], rows[t / 3] + off, t % 3);
    m = POOL_SEL(v[t] > m, v[t], m);
    nan |= v[t] != v[t];
  }
  for (int t = 8; t >= 0; t--) { /* the first of them in window order */
    if (!rows[t / 3]) continue;
    pv8i eq = v[t] == m, isnan = v[t] != v[t];
    best = (eq & t) | (~eq & best), bnan = (isnan & t) | (~isnan & bnan);
  }
  pv8i none = m == -INFINITY;
  best = (none & -1) | (~none & best);
  best = (nan & bnan) | (~nan & best);
  PST(out, best);
}

/* dx row d (W floats) += one window row's contributions to its input row kh: the windows'
 * taps tap[] and gradients dr[] (nv vectors each) masked by tap and interleaved into acc,
 * column 2's (two floats on) added to column 0's of the next window */
POOL_INLINE void pool3_bwd_row(const int64_t *g, const int32_t *tap, const float *dr, int kh,
                               float *acc, float *d) {
  int64_t nv = (g[G_OW] + PV - 1) / PV, W = g[G_W], pw = g[G_PW];
  pv8f z = {0}, prev = z;
  for (int64_t i = 0; i < nv; i++) {
    pv8i c;
    pv8f dyv, e[3];
    PLD(c, tap + i * PV), PLD(dyv, dr + i * PV);
    for (int kw = 0; kw < 3; kw++) e[kw] = POOL_SEL(c == 3 * kh + kw, dyv, z);
    /* even columns: window ow's column 0 and window ow - 1's column 2 */
    pv8f ev = e[0] + __builtin_shufflevector(prev, e[2], 7, 8, 9, 10, 11, 12, 13, 14);
    pv8f lo = __builtin_shufflevector(ev, e[1], 0, 8, 1, 9, 2, 10, 3, 11);
    pv8f hi = __builtin_shufflevector(ev, e[1], 4, 12, 5, 13, 6, 14, 7, 15);
    PST(acc + 2 * i * PV, lo), PST(acc + 2 * i * PV + PV, hi);
    prev = e[2];
  }
  acc[2 * nv * PV] = prev[PV - 1], acc[2 * nv * PV + 1] = 0.0f;
  for (int64_t iw = 0; iw < W; iw++) d[iw] += acc[iw + pw];
}

/* backward: planes [lo, hi); t: pool3_scratch's floats */
POOL_INLINE void pool3_bwd(const int64_t *g, const float *x, const float *dy, float *dx,
                           int64_t lo, int64_t hi, float *t) {
  int64_t H = g[G_H], W = g[G_W], OH = g[G_OH], OW = g[G_OW], nv = (OW + PV - 1) / PV;
  int64_t len = pool3_len(g), kh0, kh1;
  float *buf[3] = {t, t + len, t + 2 * len}, *acc = t + 3 * len, *dr = acc + len, *rows[3];
  int32_t *tap = (int32_t *)(dr + nv * PV);
  memset(dx + lo * H * W, 0, (size_t)((hi - lo) * H * W) * sizeof(float));
  for (int64_t p = lo; p < hi; p++) {
    int64_t have[3] = {-1, -1, -1};
    for (int64_t oh = 0; oh < OH; oh++) {
      pool3_rows(g, x + p * H * W, oh, buf, have, len, rows, &kh0, &kh1);
      memcpy(dr, dy + (p * OH + oh) * OW, (size_t)OW * sizeof(float));
      for (int64_t j = OW; j < nv * PV; j++) dr[j] = 0.0f;
      for (int64_t i = 0; i < nv; i++) pool3_taps8(rows, 2 * i * PV, tap + i * PV);
      for (int64_t kh = kh0; kh < kh1; kh++)
        pool3_bwd_row(g, tap, dr, (int)kh, acc, dx + (p * H + 2 * oh - g[G_PH] + kh) * W);
    }
  }
}

/* scratch floats of the forward (fwd) or the backward */
static int64_t pool3_scratch(const int64_t *g, bool fwd) {
  int64_t nv = (g[G_OW] + PV - 1) / PV;
  return fwd ? 3 * pool3_len(g) : 4 * pool3_len(g) + 2 * nv * PV;
}

static void pool3_fwd_base(const int64_t *g, const float *x, float *y, int64_t lo, int64_t hi, float *t) {
  pool3_fwd(g, x, y, lo, hi, t);
}
static void pool3_bwd_base(const int64_t *g, const float *x, const float *dy, float *dx,
                           int64_t lo, int64_t hi, float *t) {
  pool3_bwd(g, x, dy, dx, lo, hi, t);
}
#if POOL_X86
__attribute__((target("avx2"))) static void pool3_fwd_avx2(const int64_t *g, const float *x,
                                                           float *y, int64_t lo, int64_t hi,
                                                           float *t) {
  pool3_fwd(g, x, y, lo, hi, t);
}
__attribute__((target("avx2"))) static void pool3_bwd_avx2(const int64_t *g, const float *x,
                                                           const float *dy, float *dx,
                                                           int64_t lo, int64_t hi, float *t) {
  pool3_bwd(g, x, dy, dx, lo, hi, t);
}
#endif

/* the 3x3 stride-2 path over planes [lo, hi): the forward (dy NULL) or the backward; false
 * (nothing done) where its scratch cannot be had */
static bool pool3_range(const int64_t *g, const float *x, const float *dy, float *out,
                        int64_t lo, int64_t hi, bool avx2) {
  int64_t n = pool3_scratch(g, !dy);
  float *t = n > 0 && (uint64_t)n < SIZE_MAX / sizeof(float) ? malloc((size_t)n * sizeof(float)) : NULL;
  if (!t) return false;
#if POOL_X86
  if (avx2) {
    if (dy) pool3_bwd_avx2(g, x, dy, out, lo, hi, t);
    else pool3_fwd_avx2(g, x, out, lo, hi, t);
    free(t);
    return true;
  }
#endif
  (void)avx2;
  if (dy) pool3_bwd_base(g, x, dy, out, lo, hi, t);
  else pool3_fwd_base(g, x, out, lo, hi, t);
  free(t);
  return true;
}

static bool pool_avx2(void) {
#if POOL_X86
  return __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

static void pool_planes(void *c, int64_t lo, int64_t hi) {
  PoolCtx *s = c;
  int64_t g[G_EXCL + 1]; /* a local copy: stores to the output cannot change it */
  memcpy(g, s->g, sizeof g);
  if (s->is_max && pool_2x2(g)) {
    pool2_range(g, s->x, NULL, s->out, lo, hi, s->avx2);
    return;
  }
  if (s->is_max && pool_3x3s2(g) && pool3_range(g, s->x, NULL, s->out, lo, hi, s->avx2)) return;
  for (int64_t p = lo; p < hi; p++) {
    if (s->is_max) {
      maxpool_plane(g, s->x + p * g[G_H] * g[G_W], s->out + p * g[G_OH] * g[G_OW]);
      continue;
    }
    for (int64_t oh = 0; oh < g[G_OH]; oh++)
      for (int64_t ow = 0; ow < g[G_OW]; ow++) {
        double sum = 0;
        for (int64_t kh = 0; kh < g[G_KH]; kh++) {
          int64_t ih = oh * g[G_SH] - g[G_PH] + kh * g[G_DH];
          if (ih < 0 || ih >= g[G_H]) continue;
          for (int64_t kw = 0; kw < g[G_KW]; kw++) {
            int64_t iw = ow * g[G_SW] - g[G_PW] + kw * g[G_DW];
            if (iw >= 0 && iw < g[G_W]) sum += s->x[(p * g[G_H] + ih) * g[G_W] + iw];
          }
        }
        s->out[(p * g[G_OH] + oh) * g[G_OW] + ow] = (float)(sum / pool_divisor(g, oh, ow));
      }
  }
}

void rt_k_pool(void *pool, const float *x, float *y, const int64_t *geom, int32_t is_max) {
  PoolCtx s = {.g = geom, .x = x, .out = y, .is_max = is_max, .avx2 = pool_avx2()};
  par_range(pool, geom[G_N] * geom[G_C], geom[G_OH] * geom[G_OW] * geom[G_KH] * geom[G_KW],
            pool_planes, &s);
}


/* the index of the first strict maximum of the window rows [kh0, kh1) x [kw0, kw1) from
 * x + row0, in row-major order (a NaN replaces it), or -1 when all are -inf: the largest
 * value first (one max a value), then the first index holding it, walking backwards with
 * conditional moves; a window with a NaN in it takes the sequential rule */
static int64_t pool_argmax(const float *x, int64_t row0, int64_t W, int64_t dh, int64_t dw,
                           int64_t kh0, int64_t kh1, int64_t kw0, int64_t kw1) {
  float m = -INFINITY;
  int nan = 0;
  for (int64_t kh = kh0; kh < kh1; kh++)
    for (int64_t kw = kw0; kw < kw1; kw++) {
      float v = x[row0 + kh * dh * W + kw * dw];
      m = v > m ? v : m;
      nan |= v != v;
    }
  int64_t best = -1;
  if (nan) {
    m = -INFINITY;
    for (int64_t kh = kh0; kh < kh1; kh++)
      for (int64_t kw = kw0; kw < kw1; kw++) {
        int64_t i = row0 + kh * dh * W + kw * dw;
        if (x[i] > m || (x[i] != x[i] && m == m)) m = x[i], best = i;
      }
    return best;
  }
  if (m == -INFINITY) return -1;
  for (int64_t kh = kh1 - 1; kh >= kh0; kh--)
    for (int64_t kw = kw1 - 1; kw >= kw0; kw--) {
      int64_t i = row0 + kh * dh * W + kw * dw;
      best = x[i] == m ? i : best;
    }
  return best;
}

/* max pooling's backward over plane p: each output's dy added at its window's first strict
 * maximum (pool_argmax), the window clipped to the plane once per row and column */
static void maxpool_bwd_plane(const int64_t *g, const float *x, const float *dy, float *dx) {
  int64_t H = g[G_H], W = g[G_W], OW = g[G_OW], KW = g[G_KW], sw = g[G_SW], pw = g[G_PW];
  int64_t dh = g[G_DH], dw = g[G_DW];
  for (int64_t oh = 0; oh < g[G_OH]; oh++) {
    int64_t ih0 = oh * g[G_SH] - g[G_PH], kh0, kh1;
    pool_taps(ih0, dh, g[G_KH], H, &kh0, &kh1);
    for (int64_t ow = 0; ow < OW; ow++) {
      int64_t iw0 = ow * sw - pw, kw0, kw1;
      pool_taps(iw0, dw, KW, W, &kw0, &kw1);
      int64_t best = pool_argmax(x, ih0 * W + iw0, W, dh, dw, kh0, kh1, kw0, kw1);
      if (best >= 0) dx[best] += dy[oh * OW + ow];
    }
  }
}

static void pool_bwd_planes(void *c, int64_t lo, int64_t hi) {
  PoolCtx *s = c;
  int64_t g[G_EXCL + 1]; /* a local copy: stores to the output cannot change it */
  memcpy(g, s->g, sizeof g);
  int64_t plane = g[G_H] * g[G_W];
  if (s->is_max && pool_2x2(g)) {
    pool2_range(g, s->x, s->dy, s->out, lo, hi, s->avx2);
    return;
  }
  if (s->is_max && pool_3x3s2(g) && pool3_range(g, s->x, s->dy, s->out, lo, hi, s->avx2)) return;
  memset(s->out + lo * plane, 0, (size_t)((hi - lo) * plane) * sizeof(float));
  for (int64_t p = lo; s->is_max && p < hi; p++)
    maxpool_bwd_plane(g, s->x + p * plane, s->dy + p * g[G_OH] * g[G_OW], s->out + p * plane);
  for (int64_t p = lo; !s->is_max && p < hi; p++)
    for (int64_t oh = 0; oh < g[G_OH]; oh++)
      for (int64_t ow = 0; ow < g[G_OW]; ow++) {
        float d = s->dy[(p * g[G_OH] + oh) * g[G_OW] + ow];
        float v = (float)(d / pool_divisor(g, oh, ow));
        for (int64_t kh = 0; kh < g[G_KH]; kh++) {
          int64_t ih = oh * g[G_SH] - g[G_PH] + kh * g[G_DH];
          if (ih < 0 || ih >= g[G_H]) continue;
          for (int64_t kw = 0; kw < g[G_KW]; kw++) {
            int64_t iw = ow * g[G_SW] - g[G_PW] + kw * g[G_DW];
            if (iw >= 0 && iw < g[G_W]) s->out[(p * g[G_H] + ih) * g[G_W] + iw] += v;
          }
        }
      }
}

void rt_k_maxpool_bwd(void *pool, const float *dy, const float *x, float *dx,
                      const int64_t *geom) {
  PoolCtx s = {.g = geom, .x = x, .dy = dy, .out = dx, .is_max = 1, .avx2 = pool_avx2()};
  par_range(pool, geom[G_N] * geom[G_C], geom[G_OH] * geom[G_OW] * geom[G_KH] * geom[G_KW],
            pool_bwd_planes, &s);
}

void rt_k_avgpool_bwd(void *pool, const float *dy, float *dx, const int64_t *geom) {
  PoolCtx s = {.g = geom, .dy = dy, .out = dx, .is_max = 0};
  par_range(pool, geom[G_N] * geom[G_C], geom[G_OH] * geom[G_OW] * geom[G_KH] * geom[G_KW],
            pool_bwd_planes, &s);
}

/* ---- batchnorm ------------------------------------------------------------------------ */

typedef struct BnCtx {
  const float *x, *dy, *gamma, *beta, *rmean, *rvar;
  float *out, *dg, *db; /* where not NULL: mode 0 (training) also the batch mean and
                           unbiased variance, mode 1 gamma's and beta's gradients */
  int64_t N, C, S;
  double eps;
  int train, mode; /* mode 0 forward, 1 dx, 2 dgamma */
} BnCtx;

/* the planes of channel c: x + (n·C + c)·S for n < N, S contiguous elements each */
static void bn_stats(const BnCtx *b, int64_t c, double *mean, double *inv) {
  double s = 0, q = 0, M = (double)(b->N * b->S);
  for (int64_t n = 0; n < b->N; n++) s += rk_sum(b->x + (n * b->C + c) * b->S, b->S);
  *mean = s / M;
  for (int64_t n = 0; n < b->N; n++) q += rk_dev2(b->x + (n * b->C + c) * b->S, (float)*mean, b->S);
  *inv = 1.0 / sqrt(q / M + b->eps);
  if (b->mode == 0 && b->dg) b->dg[c] = (float)*mean; /* the batch mean, unbiased variance */
  if (b->mode == 0 && b->db) b->db[c] = (float)(q / (M - 1));
}

/* out = a·p + k·(x - m) + c0 over the planes of channel c (p = dy, or nothing when a = 0) */
static void bn_affine(const BnCtx *b, int64_t c, const float *p, float a, float k, float m,
                      float c0) {
  for (int64_t n = 0; n < b->N; n++) {
    int64_t o = (n * b->C + c) * b->S;
    const float *x = b->x + o;
    float *y = b->out + o;
    if (p)
      for (int64_t j = 0; j < b->S; j++) y[j] = a * p[o + j] + k * (x[j] - m) + c0;
    else
      for (int64_t j = 0; j < b->S; j++) y[j] = k * (x[j] - m) + c0;
  }
}

static void bn_channels(void *cv, int64_t lo, int64_t hi) {
  BnCtx *b = cv;
  for (int64_t c = lo; c < hi; c++) {
    double mean, inv;
    if (b->mode == 0 && !b->train) {
      mean = b->rmean[c];
      inv = 1.0 / sqrt((double)b->rvar[c] + b->eps);
    } else {
      bn_stats(b, c, &mean, &inv);
    }
    float mf = (float)mean;
    if (b->mode == 0) {
      bn_affine(b, c, NULL, 0, (float)(b->gamma[c] * inv), mf, b->beta[c]);
      continue;
    }
    double sdy = 0, sdyx = 0, M = (double)(b->N * b->S);
    for (int64_t n = 0; n < b->N; n++) {
      int64_t o = (n * b->C + c) * b->S;
      sdy += rk_sum(b->dy + o, b->S);
      sdyx += rk_dot_dev(b->dy + o, b->x + o, mf, b->S);
    }
    sdyx *= inv;
    if (b->mode == 2) {
      b->out[c] = (float)sdyx;
      continue;
    }
    if (b->dg) b->dg[c] = (float)sdyx;
    if (b->db) b->db[c] = (float)sdy;
    /* gamma·inv/M·(M·dy - sdy - (x - m)·inv·sdyx) */
    double gsc = b->gamma[c] * inv / M;
    bn_affine(b, c, b->dy, (float)(gsc * M), (float)(-gsc * inv * sdyx), mf, (float)(-gsc * sdy));
  }
}

void rt_k_batchnorm(void *pool, const float *x, const float *gamma, const float *beta,
                    const float *rmean, const float *rvar, float *y, float *mean, float *var,
                    int64_t N, int64_t C, int64_t S, double eps, int32_t train) {
  BnCtx b = {.x = x, .gamma = gamma, .beta = beta, .rmean = rmean, .rvar = rvar, .out = y,
             .dg = train ? mean : NULL, .db = train ? var : NULL, .N = N, .C = C, .S = S,
             .eps = eps, .train = train, .mode = 0};
  par_range(pool, C, 8 * N * S, bn_channels, &b);
}

void rt_k_batchnorm_bwd(void *pool, const float *dy, const float *x, const float *gamma,
                        float *dx, float *dgamma, float *dbeta, int64_t N, int64_t C, int64_t S,
                        double eps) {
  BnCtx b = {.x = x, .dy = dy, .gamma = gamma, .out = dx, .dg = dgamma, .db = dbeta, .N = N,
             .C = C, .S = S, .eps = eps, .train = 1, .mode = 1};
  par_range(pool, C, 12 * N * S, bn_channels, &b);
}

void rt_k_bn_dgamma(void *pool, const float *dy, const float *x, float *dg, int64_t N,
                    int64_t C, int64_t S, double eps) {
  BnCtx b = {.x = x, .dy = dy, .out = dg, .N = N, .C = C, .S = S, .eps = eps, .train = 1,
             .mode = 2};
  par_range(pool, C, 8 * N * S, bn_channels, &b);
}

/* ---- layernorm ------------------------------------------------------------------------ */

typedef struct LnCtx {
  const float *x, *dy, *gamma, *beta;
  float *out;
  double *mean, *inv;
  int64_t R, D;
  double eps;
} LnCtx;

static void ln_stats(const float *x, int64_t D, double eps, double *mean, double *inv) {
  *mean = rk_sum(x, D) / (double)D;
  *inv = 1.0 / sqrt(rk_dev2(x, (float)*mean, D) / (double)D + eps);
}

static void ln_rows(void *cv, int64_t lo, int64_t hi) {
  LnCtx *l = cv;
  const float *gm = l->gamma, *bt = l->beta;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = l->x + r * l->D;
    float *y = l->out + r * l->D;
    double m, inv;
    ln_stats(x, l->D, l->eps, &m, &inv);
    float mf = (float)m, sf = (float)inv;
    for (int64_t j = 0; j < l->D; j++) y[j] = (x[j] - mf) * sf * gm[j] + bt[j];
  }
}

void rt_k_layernorm(void *pool, const float *x, const float *gamma, const float *beta,
                    float *y, int64_t R, int64_t D, double eps) {
  LnCtx l = {.x = x, .gamma = gamma, .beta = beta, .out = y, .R = R, .D = D, .eps = eps};
  par_range(pool, R, 8 * D, ln_rows, &l);
}

/* dx = inv/D·(D·g·dy - s1 - xhat·s2), s1 = sum g·dy, s2 = sum g·dy·xhat, xhat = (x-m)·inv */
static void ln_bwd_rows(void *cv, int64_t lo, int64_t hi) {
  LnCtx *l = cv;
  int64_t D = l->D;
  const float *g = l->gamma;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = l->x + r * D, *dy = l->dy + r * D;
    float *dx = l->out + r * D;
    double m, inv;
    ln_stats(x, D, l->eps, &m, &inv);
    float mf = (float)m, sf = (float)inv;
    double s1 = rk_dot(g, dy, D), s2 = rk_dot3_dev(g, dy, x, mf, D) * inv;
    float a = sf, c1 = (float)(inv * s1 / (double)D), c2 = (float)(inv * inv * s2 / (double)D);
    for (int64_t j = 0; j < D; j++) dx[j] = a * g[j] * dy[j] - c1 - (x[j] - mf) * c2;
  }
}

void rt_k_layernorm_bwd(void *pool, const float *dy, const float *x, const float *gamma,
                        float *dx, int64_t R, int64_t D, double eps) {
  LnCtx l = {.x = x, .dy = dy, .gamma = gamma, .out = dx, .R = R, .D = D, .eps = eps};
  par_range(pool, R, 12 * D, ln_bwd_rows, &l);
}

static void ln_stat_rows(void *cv, int64_t lo, int64_t hi) {
  LnCtx *l = cv;
  for (int64_t r = lo; r < hi; r++) ln_stats(l->x + r * l->D, l->D, l->eps, &l->mean[r], &l->inv[r]);
}

/* dgamma[j] = sum over rows of dy·xhat: columns [lo, hi) in blocks, rows streamed in order
 * into double accumulators (the column-sum order of colsum_range) */
static void ln_dg_cols(void *cv, int64_t lo, int64_t hi) {
  LnCtx *l = cv;
  enum { BLK = 256 };
  double acc[BLK];
  for (int64_t j0 = lo; j0 < hi; j0 += BLK) {
    int64_t w = hi - j0 < BLK ? hi - j0 : BLK;
    for (int64_t j = 0; j < w; j++) acc[j] = 0;
    for (int64_t r = 0; r < l->R; r++) {
      const float *dy = l->dy + r * l->D + j0, *x = l->x + r * l->D + j0;
      float mf = (float)l->mean[r], sf = (float)l->inv[r];
      for (int64_t j = 0; j < w; j++) acc[j] += dy[j] * ((x[j] - mf) * sf);
    }
    for (int64_t j = 0; j < w; j++) l->out[j0 + j] = (float)acc[j];
  }
}

void rt_k_ln_dgamma(void *pool, const float *dy, const float *x, float *dg, int64_t R,
                    int64_t D, double eps) {
  LnCtx l = {.x = x, .dy = dy, .out = dg, .R = R, .D = D, .eps = eps};
  l.mean = xalloc((size_t)(2 * R + 1) * sizeof(double));
  l.inv = l.mean + R;
  par_range(pool, R, 4 * D, ln_stat_rows, &l);
  par_range(pool, D, 3 * R, ln_dg_cols, &l);
  free(l.mean);
}

/* ---- dropout -------------------------------------------------------------------------- */

typedef struct DropCtx {
  const float *x;
  float *y;
  double p, scale;
  uint64_t seed, stream;
} DropCtx;

/* the interpreter's mask, bit for bit: the same generator (rt_init.c) and mapping */
static void drop_range(void *cv, int64_t lo, int64_t hi) {
  DropCtx *d = cv;
  for (int64_t i = lo; i < hi; i++)
    d->y[i] = rt_philox_uniform(d->seed, d->stream, (uint64_t)i) >= d->p
                  ? (float)(d->x[i] * d->scale)
                  : 0.0f;
}

void rt_k_dropout(void *pool, const float *x, float *y, int64_t n, double p, uint64_t seed,
                  uint64_t stream) {
  DropCtx d = {x, y, p, 1.0 / (1.0 - p), seed, stream};
  par_range(pool, n, 40, drop_range, &d);
}

/* ---- embedding ------------------------------------------------------------------------ */

typedef struct EmbCtx {
  const float *tab;
  const int32_t *idx;
  float *y;
  int64_t V, D;
} EmbCtx;

static void emb_rows(void *cv, int64_t lo, int64_t hi) {
  EmbCtx *e = cv;
  for (int64_t p = lo; p < hi; p++) {
    int64_t v = e->idx[p];
    if (v >= 0 && v < e->V) memcpy(e->y + p * e->D, e->tab + v * e->D, (size_t)e->D * sizeof(float));
    else memset(e->y + p * e->D, 0, (size_t)e->D * sizeof(float));
  }
}

void rt_k_embedding(void *pool, const float *tab, const int32_t *idx, float *y, int64_t V,
                    int64_t D, int64_t n) {
  EmbCtx e = {tab, idx, y, V, D};
  par_range(pool, n, D, emb_rows, &e);
}

void rt_k_embedding_bwd(const float *dy, const int32_t *idx, float *dtab, int64_t V, int64_t D,
                        int64_t n) {
  memset(dtab, 0, (size_t)(V * D) * sizeof(float));
  for (int64_t p = 0; p < n; p++) {
    int64_t v = idx[p];
    if (v < 0 || v >= V) continue;
    for (int64_t j = 0; j < D; j++) dtab[v * D + j] += dy[p * D + j];
  }
}

/* ---- losses --------------------------------------------------------------------------- */

typedef struct CeCtx {
  const float *x;
  const int32_t *lab;
  float *dx;
  double *row, g, eps; /* eps: label smoothing */
  int64_t C, ignore;   /* ignore: a label value that is skipped, or INT64_MIN */
} CeCtx;

static double row_lse(const float *x, int64_t C) {
  double m = -INFINITY, s = 0;
  for (int64_t c = 0; c < C; c++) m = fmax(m, x[c]);
  for (int64_t c = 0; c < C; c++) s += exp((double)x[c] - m);
  return m + log(s);
}

static void ce_rows(void *cv, int64_t lo, int64_t hi) {
  CeCtx *e = cv;
  for (int64_t n = lo; n < hi; n++) {
    int64_t l = e->lab[n];
    const float *x = e->x + n * e->C;
    if (l == e->ignore) {
      e->row[n] = 0;
      continue;
    }
    if (l < 0 || l >= e->C) {
      e->row[n] = NAN;
      continue;
    }
    double lse = row_lse(x, e->C), mean = 0;
    for (int64_t c = 0; c < e->C; c++) mean += (double)x[c] / (double)e->C;
    e->row[n] = (1 - e->eps) * (lse - x[l]) + e->eps * (lse - mean);
  }
}

static int64_t ce_count(const int32_t *label, int64_t N, int64_t ignore) {
  int64_t k = 0;
  for (int64_t n = 0; n < N; n++) k += label[n] != ignore;
  return k;
}

void rt_k_cross_entropy(void *pool, const float *logits, const int32_t *label, float *out,
                        int64_t N, int64_t C, double eps, int64_t ignore) {
  CeCtx e = {.x = logits, .lab = label, .C = C, .eps = eps, .ignore = ignore};
  e.row = xalloc((size_t)N * sizeof(double));
  par_range(pool, N, 20 * C, ce_rows, &e);
  double s = 0;
  for (int64_t n = 0; n < N; n++) s += e.row[n];
  out[0] = (float)(s / (double)ce_count(label, N, ignore));
  free(e.row);
}

static void ce_bwd_rows(void *cv, int64_t lo, int64_t hi) {
  CeCtx *e = cv;
  for (int64_t n = lo; n < hi; n++) {
    const float *x = e->x + n * e->C;
    int64_t l = e->lab[n];
    if (l == e->ignore || l < 0 || l >= e->C) { /* ignored (or invalid) labels: nothing */
      memset(e->dx + n * e->C, 0, (size_t)e->C * sizeof(float));
      continue;
    }
    double lse = row_lse(x, e->C), u = e->eps / (double)e->C;
    for (int64_t c = 0; c < e->C; c++)
      e->dx[n * e->C + c] =
          (float)(e->g * (exp((double)x[c] - lse) - u - (c == l ? 1.0 - e->eps : 0.0)));
  }
}

void rt_k_ce_bwd(void *pool, const float *dloss, const float *logits, const int32_t *label,
                 float *dx, int64_t N, int64_t C, double eps, int64_t ignore) {
  CeCtx e = {.x = logits, .lab = label, .dx = dx, .C = C, .eps = eps, .ignore = ignore,
             .g = (double)dloss[0] / (double)ce_count(label, N, ignore)};
  par_range(pool, N, 20 * C, ce_bwd_rows, &e);
}

void rt_k_mse(const float *a, const float *b, float *out, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  out[0] = (float)(s / (double)n);
}

/* ---- small-M matrix products ------------------------------------------------------------ */

typedef struct GemvCtx {
  const float *A, *B, *bias;
  float *C;
  int64_t M, K, lda, ldb, ldc;
  int trans_b, relu;
} GemvCtx;

/* columns [lo, hi) of every row. B stored N×K: one blocked dot product per element. B
 * stored K×N: rows of B streamed once per block of GEMV_COLS columns, each C element
 * accumulated over k in order. Then bias and relu (which keeps NaN, like the GEMM's). */
static void gemv_cols(void *cv, int64_t lo, int64_t hi) {
  const GemvCtx *g = cv;
  enum { GEMV_COLS = 1024 };
  if (g->trans_b) {
    for (int64_t j = lo; j < hi; j++)
      for (int64_t i = 0; i < g->M; i++)
        g->C[i * g->ldc + j] = (float)rk_dot(g->A + i * g->lda, g->B + j * g->ldb, g->K);
  } else {
    for (int64_t j0 = lo; j0 < hi; j0 += GEMV_COLS) {
      int64_t w = hi - j0 < GEMV_COLS ? hi - j0 : GEMV_COLS;
      for (int64_t i = 0; i < g->M; i++) memset(g->C + i * g->ldc + j0, 0, (size_t)w * sizeof(float));
      for (int64_t k = 0; k < g->K; k++) {
        const float *b = g->B + k * g->ldb + j0;
        for (int64_t i = 0; i < g->M; i++) {
          float a = g->A[i * g->lda + k], *c = g->C + i * g->ldc + j0;
          for (int64_t j = 0; j < w; j++) c[j] += a * b[j];
        }
      }
    }
  }
  if (!g->bias && !g->relu) return;
  for (int64_t i = 0; i < g->M; i++) {
    float *c = g->C + i * g->ldc;
    for (int64_t j = lo; j < hi; j++) {
      float v = g->bias ? c[j] + g->bias[j] : c[j];
      c[j] = !g->relu || v > 0 || v != v ? v : 0.0f;
    }
  }
}

void rt_k_gemv(void *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
               const float *B, int64_t ldb, float *C, int64_t ldc, const float *bias,
               int32_t trans_b, int32_t relu) {
  GemvCtx g = {A, B, bias, C, M, K, lda, ldb, ldc, trans_b, relu};
  if (M <= 0 || N <= 0) return;
  par_range(pool, N, 2 * M * K, gemv_cols, &g);
}

/* ---- symbols for in-process linking ---------------------------------------------------- */

#define SYM(f) {#f, (void *)(f)}
const RtKernelSym rt_kernel_syms[] = {
    SYM(rt_pool_size),     SYM(rt_parallel_for),    SYM(rt_k_reduce),
    SYM(rt_k_max_bwd),     SYM(rt_k_softmax),       SYM(rt_k_softmax_bwd),
    SYM(rt_k_transpose),   SYM(rt_k_axis_copy),     SYM(rt_k_pool),
    SYM(rt_k_maxpool_bwd), SYM(rt_k_avgpool_bwd),   SYM(rt_k_batchnorm),
    SYM(rt_k_batchnorm_bwd), SYM(rt_k_bn_dgamma),   SYM(rt_k_layernorm),
    SYM(rt_k_layernorm_bwd), SYM(rt_k_ln_dgamma),   SYM(rt_k_dropout),
    SYM(rt_k_embedding),   SYM(rt_k_embedding_bwd), SYM(rt_k_cross_entropy),
    SYM(rt_k_ce_bwd),      SYM(rt_k_mse),           SYM(rt_prof_clock),
    SYM(rt_k_gemv),        SYM(rt_k_batchnorm_sync), SYM(rt_grads_ready),
    SYM(rt_pool_scratch),  SYM(rt_pool_scratch_release), SYM(rt_k_bn_stat_sync),
    SYM(rt_k_wino_filter), SYM(rt_k_wino_in),       SYM(rt_k_wino_out),
    SYM(rt_k_wino_filter_pack),
    {NULL, NULL}};
