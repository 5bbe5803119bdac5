/* rt_kernels.c — the plain-C kernels of the CPU backend (see rt_kernels.h). Each kernel
 * follows the reference interpreter's definition (ir/interp.c) and accumulates in double;
 * parallel kernels give every task a fixed range of independent output items, so the bits
 * of a result never depend on the number of threads. */
#include "rt_kernels.h"
#include "rt_program.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_profile.h"
#include "rt_threads.h"

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

void rt_k_softmax(void *pool, const float *x, float *y, int64_t outer, int64_t len,
                  int64_t inner, int32_t log) {
  SmCtx s = {.x = x, .out = y, .len = len, .inner = inner, .log = log};
  par_range(pool, outer * inner, 20 * len, sm_rows, &s);
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

void rt_k_softmax_bwd(void *pool, const float *dy, const float *y, float *dx, int64_t outer,
                      int64_t len, int64_t inner, int32_t log) {
  SmCtx s = {.y = y, .dy = dy, .out = dx, .len = len, .inner = inner, .log = log};
  par_range(pool, outer * inner, 10 * len, sm_bwd_rows, &s);
}

/* ---- data movement -------------------------------------------------------------------- */

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
  const char *src = x;
  char *dst = y;
  if (esize == 4) {
    const uint32_t *s = x;
    uint32_t *d = y;
    ODOMETER(rank, od, st, n, d[i] = s[off]);
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
} PoolCtx;

/* index of the first strict maximum of a window within plane p, -1 if all -inf */
static int64_t pool_argmax(const int64_t *g, const float *x, int64_t p, int64_t oh,
                           int64_t ow) {
  int64_t best = -1;
  float m = -INFINITY;
  for (int64_t kh = 0; kh < g[G_KH]; kh++) {
    int64_t ih = oh * g[G_SH] - g[G_PH] + kh * g[G_DH];
    if (ih < 0 || ih >= g[G_H]) continue;
    for (int64_t kw = 0; kw < g[G_KW]; kw++) {
      int64_t iw = ow * g[G_SW] - g[G_PW] + kw * g[G_DW];
      if (iw < 0 || iw >= g[G_W]) continue;
      int64_t i = (p * g[G_H] + ih) * g[G_W] + iw;
      if (x[i] > m || (isnan(x[i]) && !isnan(m))) {
        m = x[i];
        best = i;
      }
    }
  }
  return best;
}

static void pool_planes(void *c, int64_t lo, int64_t hi) {
  PoolCtx *s = c;
  const int64_t *g = s->g;
  for (int64_t p = lo; p < hi; p++)
    for (int64_t oh = 0; oh < g[G_OH]; oh++)
      for (int64_t ow = 0; ow < g[G_OW]; ow++) {
        float *o = &s->out[(p * g[G_OH] + oh) * g[G_OW] + ow];
        if (s->is_max) {
          int64_t i = pool_argmax(g, s->x, p, oh, ow);
          *o = i < 0 ? -INFINITY : s->x[i];
          continue;
        }
        double sum = 0;
        for (int64_t kh = 0; kh < g[G_KH]; kh++) {
          int64_t ih = oh * g[G_SH] - g[G_PH] + kh * g[G_DH];
          if (ih < 0 || ih >= g[G_H]) continue;
          for (int64_t kw = 0; kw < g[G_KW]; kw++) {
            int64_t iw = ow * g[G_SW] - g[G_PW] + kw * g[G_DW];
            if (iw >= 0 && iw < g[G_W]) sum += s->x[(p * g[G_H] + ih) * g[G_W] + iw];
          }
        }
        *o = (float)(sum / pool_divisor(g, oh, ow));
      }
}

void rt_k_pool(void *pool, const float *x, float *y, const int64_t *geom, int32_t is_max) {
  PoolCtx s = {.g = geom, .x = x, .out = y, .is_max = is_max};
  par_range(pool, geom[G_N] * geom[G_C], geom[G_OH] * geom[G_OW] * geom[G_KH] * geom[G_KW],
            pool_planes, &s);
}

static void pool_bwd_planes(void *c, int64_t lo, int64_t hi) {
  PoolCtx *s = c;
  const int64_t *g = s->g;
  int64_t plane = g[G_H] * g[G_W];
  memset(s->out + lo * plane, 0, (size_t)((hi - lo) * plane) * sizeof(float));
  for (int64_t p = lo; p < hi; p++)
    for (int64_t oh = 0; oh < g[G_OH]; oh++)
      for (int64_t ow = 0; ow < g[G_OW]; ow++) {
        float d = s->dy[(p * g[G_OH] + oh) * g[G_OW] + ow];
        if (s->is_max) {
          int64_t i = pool_argmax(g, s->x, p, oh, ow);
          if (i >= 0) s->out[i] += d;
          continue;
        }
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
  PoolCtx s = {.g = geom, .x = x, .dy = dy, .out = dx, .is_max = 1};
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
  float *out;
  int64_t N, C, S;
  double eps;
  int train, mode; /* mode 0 forward, 1 dx, 2 dgamma */
} BnCtx;

static void bn_stats(const BnCtx *b, int64_t c, double *mean, double *inv) {
  double s = 0, q = 0, M = (double)(b->N * b->S);
  for (int64_t n = 0; n < b->N; n++)
    for (int64_t k = 0; k < b->S; k++) s += b->x[(n * b->C + c) * b->S + k];
  *mean = s / M;
  for (int64_t n = 0; n < b->N; n++)
    for (int64_t k = 0; k < b->S; k++) {
      double d = b->x[(n * b->C + c) * b->S + k] - *mean;
      q += d * d;
    }
  *inv = 1.0 / sqrt(q / M + b->eps);
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
    if (b->mode == 0) {
      double gm = b->gamma[c], bt = b->beta[c];
      for (int64_t n = 0; n < b->N; n++)
        for (int64_t k = 0; k < b->S; k++) {
          int64_t i = (n * b->C + c) * b->S + k;
          b->out[i] = (float)(gm * ((double)b->x[i] - mean) * inv + bt);
        }
      continue;
    }
    double sdy = 0, sdyx = 0, M = (double)(b->N * b->S);
    for (int64_t n = 0; n < b->N; n++)
      for (int64_t k = 0; k < b->S; k++) {
        int64_t i = (n * b->C + c) * b->S + k;
        sdy += b->dy[i];
        sdyx += (double)b->dy[i] * ((double)b->x[i] - mean) * inv;
      }
    if (b->mode == 2) {
      b->out[c] = (float)sdyx;
      continue;
    }
    double gsc = b->gamma[c] * inv / M;
    for (int64_t n = 0; n < b->N; n++)
      for (int64_t k = 0; k < b->S; k++) {
        int64_t i = (n * b->C + c) * b->S + k;
        b->out[i] = (float)(gsc * (M * b->dy[i] - sdy - ((double)b->x[i] - mean) * inv * sdyx));
      }
  }
}

void rt_k_batchnorm(void *pool, const float *x, const float *gamma, const float *beta,
                    const float *rmean, const float *rvar, float *y, int64_t N, int64_t C,
                    int64_t S, double eps, int32_t train) {
  BnCtx b = {.x = x, .gamma = gamma, .beta = beta, .rmean = rmean, .rvar = rvar, .out = y,
             .N = N, .C = C, .S = S, .eps = eps, .train = train, .mode = 0};
  par_range(pool, C, 8 * N * S, bn_channels, &b);
}

void rt_k_batchnorm_bwd(void *pool, const float *dy, const float *x, const float *gamma,
                        float *dx, int64_t N, int64_t C, int64_t S, double eps) {
  BnCtx b = {.x = x, .dy = dy, .gamma = gamma, .out = dx, .N = N, .C = C, .S = S, .eps = eps,
             .train = 1, .mode = 1};
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
  double s = 0, q = 0;
  for (int64_t j = 0; j < D; j++) s += x[j];
  *mean = s / (double)D;
  for (int64_t j = 0; j < D; j++) q += (x[j] - *mean) * (x[j] - *mean);
  *inv = 1.0 / sqrt(q / (double)D + eps);
}

static void ln_rows(void *cv, int64_t lo, int64_t hi) {
  LnCtx *l = cv;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = l->x + r * l->D;
    double m, inv;
    ln_stats(x, l->D, l->eps, &m, &inv);
    for (int64_t j = 0; j < l->D; j++)
      l->out[r * l->D + j] = (float)(((double)x[j] - m) * inv * l->gamma[j] + l->beta[j]);
  }
}

void rt_k_layernorm(void *pool, const float *x, const float *gamma, const float *beta,
                    float *y, int64_t R, int64_t D, double eps) {
  LnCtx l = {.x = x, .gamma = gamma, .beta = beta, .out = y, .R = R, .D = D, .eps = eps};
  par_range(pool, R, 8 * D, ln_rows, &l);
}

static void ln_bwd_rows(void *cv, int64_t lo, int64_t hi) {
  LnCtx *l = cv;
  double D = (double)l->D;
  for (int64_t r = lo; r < hi; r++) {
    const float *x = l->x + r * l->D, *dy = l->dy + r * l->D;
    double m, inv, s1 = 0, s2 = 0;
    ln_stats(x, l->D, l->eps, &m, &inv);
    for (int64_t j = 0; j < l->D; j++) {
      s1 += (double)l->gamma[j] * dy[j];
      s2 += (double)l->gamma[j] * dy[j] * (x[j] - m) * inv;
    }
    for (int64_t j = 0; j < l->D; j++)
      l->out[r * l->D + j] =
          (float)(inv / D * (D * l->gamma[j] * dy[j] - s1 - ((double)x[j] - m) * inv * s2));
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

static void ln_dg_cols(void *cv, int64_t lo, int64_t hi) {
  LnCtx *l = cv;
  for (int64_t j = lo; j < hi; j++) {
    double s = 0;
    for (int64_t r = 0; r < l->R; r++)
      s += (double)l->dy[r * l->D + j] * ((double)l->x[r * l->D + j] - l->mean[r]) * l->inv[r];
    l->out[j] = (float)s;
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
    SYM(rt_k_batchnorm_sync), SYM(rt_grads_ready),
    {NULL, NULL}};
