/* rt_winograd.c — the transforms of a Winograd F(4,3) convolution (rt_winograd.h).
 *
 * A 3x3, stride-1 convolution computes each 4x4 block of outputs from a 6x6 block of the
 * image as  y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A  (Lavin and Gray's F(4x4, 3x3), interpolation
 * points 0, ±1, ±2 and infinity). The elementwise product, summed over the input channels,
 * is 36 GEMMs [O x C]·[C x T] (T tiles of a round of images), run by the generated GEMM;
 * the transforms around it are these loops. 8 tiles of a tile row sit in the lanes of a
 * vector (the GCC/clang vector extension): the input transform splits the six image rows
 * of 8 tiles into their four column phases by shuffles, so that the taps of neighbouring
 * tiles are lanes of the same vectors; the output transform reads the 36 GEMM outputs'
 * rows contiguously and interleaves the four output columns back. Every value is computed
 * by the same operations whatever the thread count. The loops are compiled twice, for
 * baseline x86-64 and for AVX2, chosen by the CPU at run time. */
#include "rt_winograd.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rt_threads.h"

/* geometry indices (rt_winograd.h) */
enum { WG_N, WG_C, WG_H, WG_W, WG_O, WG_OH, WG_OW, WG_PH, WG_PW, WG_TH, WG_TW, WG_COUNT };

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define WINO_X86 1
#define WINO_INLINE static inline __attribute__((always_inline))
#else
#define WINO_X86 0
#define WINO_INLINE static inline
#endif

/* ---- the filter transform, once per program ------------------------------------------ */

/* G of F(4,3): 6 x 3 */
static const double wino_g[6][3] = {{1.0 / 4, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};

void rt_k_wino_filter(const float *w, float *u, int64_t O, int64_t C) {
  for (int64_t o = 0; o < O; o++)
    for (int64_t c = 0; c < C; c++) {
      const float *g = w + (o * C + c) * 9;
      double t[6][3]; /* G·g */
      for (int a = 0; a < 6; a++)
        for (int k = 0; k < 3; k++)
          t[a][k] = wino_g[a][0] * g[k] + wino_g[a][1] * g[3 + k] + wino_g[a][2] * g[6 + k];
      for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
          double v = t[a][0] * wino_g[b][0] + t[a][1] * wino_g[b][1] + t[a][2] * wino_g[b][2];
          u[((int64_t)(a * 6 + b) * O + o) * C + c] = (float)v;
        }
    }
}

/* ---- the filter transform of a training step, into the GEMM's panels ----------------- */

/* 8 f32 lanes: 8 rows of U at once */
typedef float v8s __attribute__((vector_size(32)));

/* G of F(4,3) on three vectors (rows or columns of the 3x3 filters), in f32 */
#define WINO_G(g0, g1, g2, t)                                                                  \
  do {                                                                                          \
    v8s s_ = (g0) + (g2), q_ = (g0) * (1.0f / 24) + (g2) * (1.0f / 6), h_ = (g1) * (1.0f / 12); \
    t[0] = (g0) * 0.25f;                                                                        \
    t[1] = (s_ + (g1)) * (-1.0f / 6);                                                           \
    t[2] = (s_ - (g1)) * (-1.0f / 6);                                                           \
    t[3] = q_ + h_;                                                                             \
    t[4] = q_ - h_;                                                                             \
    t[5] = (g2);                                                                                \
  } while (0)

/* geometry of rt_k_wino_filter_pack */
enum { WF_O, WF_C, WF_FLIP, WF_W, WF_KC, WF_RPAD, WF_GSTRIDE, WF_COUNT };

typedef struct WinoFilt {
  const float *w;
  float *dst;
  const int64_t *g;
  int64_t R, D; /* rows and depth of each U[xi]: O x C, or (flip) C x O */
  int avx2;
} WinoFilt;

#if WINO_X86
#include <immintrin.h>
/* the 9 taps of rows r0 .. r0 + 7 (lanes past n read nothing: zeros) at depth k */
__attribute__((target("avx2"))) static void wino_taps_avx2(const WinoFilt *f, int64_t r0, int64_t k,
                                                           int n, v8s *g) {
  int64_t C = f->g[WF_C];
  int flip = (int)f->g[WF_FLIP];
  /* element (o, c, tap) at (o·C + c)·9 + tap; rows are o (stride 9C) or, flipped, c (9) */
  const float *base = f->w + (flip ? (k * C + r0) * 9 : (r0 * C + k) * 9);
  int32_t st = flip ? 9 : (int32_t)(9 * C);
  __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(st));
  __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int t = 0; t < 9; t++) {
    __m256 v = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base + (flip ? 8 - t : t), idx,
                                        _mm256_castsi256_ps(mask), 4);
    memcpy(&g[t], &v, sizeof v);
  }
}
#endif

WINO_INLINE void wino_taps(const WinoFilt *f, int64_t r0, int64_t k, int n, v8s *g) {
#if WINO_X86
  if (f->avx2) {
    wino_taps_avx2(f, r0, k, n, g);
    return;
  }
#endif
  int64_t C = f->g[WF_C];
  int flip = (int)f->g[WF_FLIP];
  for (int t = 0; t < 9; t++) {
    g[t] = (v8s){0};
    for (int j = 0; j < n; j++)
      g[t][j] = flip ? f->w[(k * C + r0 + j) * 9 + 8 - t] : f->w[((r0 + j) * C + k) * 9 + t];
  }
}

/* U[xi] rows r0 .. r0 + 7 (n of them in the matrix) at depth k: G·g·Gᵀ of their 3x3 taps,
 * m rows stored at `at`, the groups xs floats apart */
WINO_INLINE void wino_filter_block(const WinoFilt *f, int64_t r0, int64_t k, int n, int m, float *at,
                                   int64_t xs) {
  v8s g[9], t[3][6], u[6];
  if (n > 0) wino_taps(f, r0, k, n, g);
  else
    for (int i = 0; i < 9; i++) g[i] = (v8s){0};
  for (int c = 0; c < 3; c++) WINO_G(g[c], g[3 + c], g[6 + c], t[c]); /* t[c][a] = (G·g)[a][c] */
  for (int a = 0; a < 6; a++) {
    WINO_G(t[0][a], t[1][a], t[2][a], u);
    for (int b = 0; b < 6; b++) {
      float *d = at + (a * 6 + b) * xs;
      if (m == 8) memcpy(d, &u[b], sizeof(v8s));
      else memcpy(d, &u[b], (size_t)m * sizeof(float));
    }
  }
}

/* depths a stage holds: the 36 groups' panels of WINO_FILT_KB depths, W ≤ WINO_FILT_W rows,
 * computed into a buffer that stays in L1 and then copied out as 36 runs (rather than 36
 * interleaved streams of W floats) */
#define WINO_FILT_KB 4
#define WINO_FILT_W 32

/* panels [lo, hi) of W rows (rows past the matrix zero), every depth, 8 rows at a time */
WINO_INLINE void wino_filter_rows(const WinoFilt *f, int64_t lo, int64_t hi) {
  const int64_t *g = f->g;
  int64_t W = g[WF_W], KC = g[WF_KC], rpad = g[WF_RPAD], gs = g[WF_GSTRIDE];
  float st[36 * WINO_FILT_KB * WINO_FILT_W];
  int64_t xs = WINO_FILT_KB * W;
  for (int64_t p = lo * W; p < hi * W; p += W)
    for (int64_t pc = 0; pc < f->D; pc += KC) {
      int64_t kc = f->D - pc < KC ? f->D - pc : KC;
      float *at = f->dst + pc * rpad + p * kc;
      for (int64_t k0 = 0; k0 < kc; k0 += WINO_FILT_KB) {
        int64_t kb = kc - k0 < WINO_FILT_KB ? kc - k0 : WINO_FILT_KB;
        for (int64_t k = 0; k < kb; k++)
          for (int64_t r0 = p; r0 < p + W; r0 += 8) {
            int64_t n = f->R - r0 < 8 ? f->R - r0 : 8, m = p + W - r0 < 8 ? p + W - r0 : 8;
            wino_filter_block(f, r0, pc + k0 + k, n > 0 ? (int)n : 0, (int)m, st + k * W + (r0 - p), xs);
          }
        for (int x = 0; x < 36; x++)
          memcpy(at + x * gs + k0 * W, st + x * xs, (size_t)(kb * W) * sizeof(float));
      }
    }
}

static void wino_filter_base(const WinoFilt *f, int64_t lo, int64_t hi) { wino_filter_rows(f, lo, hi); }
#if WINO_X86
__attribute__((target("avx2"))) static void wino_filter_avx2(const WinoFilt *f, int64_t lo, int64_t hi) {
  wino_filter_rows(f, lo, hi);
}
#endif

typedef struct WinoFiltPar {
  const WinoFilt *f;
  int64_t nb, nt;
} WinoFiltPar;

static void wino_filter_task(void *c, int64_t t) {
  const WinoFiltPar *p = c;
  int64_t lo = p->nb * t / p->nt, hi = p->nb * (t + 1) / p->nt;
#if WINO_X86
  if (p->f->avx2) {
    wino_filter_avx2(p->f, lo, hi);
    return;
  }
#endif
  wino_filter_base(p->f, lo, hi);
}

void rt_k_wino_filter_pack(void *pool, const float *w, float *dst, const int64_t *geom) {
  int flip = (int)geom[WF_FLIP];
  WinoFilt f = {.w = w, .dst = dst, .g = geom, .R = flip ? geom[WF_C] : geom[WF_O],
                .D = flip ? geom[WF_O] : geom[WF_C]};
#if WINO_X86
  f.avx2 = __builtin_cpu_supports("avx2");
#endif
  int64_t W = geom[WF_W], nb = (f.R + W - 1) / W; /* panels */
  if (W < 1 || W > WINO_FILT_W) abort(); /* the GEMM's register tiles have at most 32 rows */
  int64_t nt = rt_pool_size(pool);
  if (f.R * f.D < 4096) nt = 1; /* small filters on the caller: a few microseconds */
  if (nt > nb) nt = nb;
  WinoFiltPar p = {&f, nb, nt > 1 ? nt : 1};
  if (p.nt <= 1) wino_filter_task(&p, 0);
  else rt_parallel_for(pool, p.nt, wino_filter_task, &p);
}

/* ---- vectors of 8 tiles ------------------------------------------------------------- */

/* 8 f32 lanes (GCC/clang vector extension): one AVX register in the AVX2 clones, two SSE
 * registers in the baseline ones. Vectors never cross a call (no ABI dependence). */
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
#define WV 8

#define LD(v, p) memcpy(&(v), (p), sizeof(v8f))
#define ST(p, v) memcpy((p), &(v), sizeof(v8f))

typedef struct WinoCtx {
  const int64_t *g;
  const float *src;
  float *dst;
  const float *bias, *affine; /* output: a bias per channel, or scale and shift pairs */
  int relu;
  const float *res; /* output: a tensor of y's shape added after the epilogue (NULL: none) */
  int res_relu;     /* then relu */
  bool avx2;
  bool dy; /* the input side of a filter gradient's transforms: dy's 4x4 tiles (A·dy·Aᵀ) */
} WinoCtx;

static float *wino_buf(int64_t floats) {
  float *p = calloc((size_t)floats, sizeof(float));
  if (!p) abort(); /* no error channel in the kernel ABI; one padded plane per task */
  return p;
}

static int64_t wino_round8(int64_t x) { return (x + WV - 1) / WV * WV; }

/* planes of 2 or 4 tiles a row (images of 5–16 columns) put several tile rows in a vector */
static bool wino_rows(int64_t tw, int64_t th) { return (tw == 2 || tw == 4) && th > 1; }

/* the first n (1..8) lanes of *v to p, by constant-size copies (a pointer: no vector crosses
 * a call, even one inlined) */
WINO_INLINE void wino_st(float *p, const v8f *v, int64_t n) {
  if (n >= WV) ST(p, *v);
  else if (n >= 4) {
    memcpy(p, v, 4 * sizeof(float));
    for (int64_t l = 4; l < n; l++) p[l] = (*v)[l];
  } else
    for (int64_t l = 0; l < n; l++) p[l] = (*v)[l];
}

/* ---- the input transform: V[36][C][T] = Bᵀ·d·B per tile and channel ------------------ */

/* Bᵀ of F(4,3) applied to d0..d5 (vectors or scalars) */
#define WINO_BT(d0, d1, d2, d3, d4, d5, o)                                                      \
  do {                                                                                           \
    o[0] = 4.0f * (d0) - 5.0f * (d2) + (d4);                                                    \
    o[1] = -4.0f * ((d1) + (d2)) + (d3) + (d4);                                                 \
    o[2] = 4.0f * ((d1) - (d2)) - (d3) + (d4);                                                  \
    o[3] = 2.0f * ((d3) - (d1)) - (d2) + (d4);                                                  \
    o[4] = 2.0f * ((d1) - (d3)) - (d2) + (d4);                                                  \
    o[5] = 4.0f * (d1) - 5.0f * (d3) + (d5);                                                    \
  } while (0)

/* the six taps of 8 tiles, lanes 2q and 2q + 1 from the 8 columns at p[q] (their first
 * four columns each): phases 0-3 by shuffles, the fifth and sixth taps phases 0 and 1 of
 * the loads 4 columns on */
WINO_INLINE void wino_taps_at(const float *const p[4], v8f d[6]) {
  v8f a0, a1, a2, a3, b0, b1, b2, b3;
  LD(a0, p[0]), LD(a1, p[1]), LD(a2, p[2]), LD(a3, p[3]);
  LD(b0, p[0] + 4), LD(b1, p[1] + 4), LD(b2, p[2] + 4), LD(b3, p[3] + 4);
  v8f u01 = __builtin_shufflevector(a0, a1, 0, 4, 8, 12, 1, 5, 9, 13);
  v8f u23 = __builtin_shufflevector(a0, a1, 2, 6, 10, 14, 3, 7, 11, 15);
  v8f w01 = __builtin_shufflevector(a2, a3, 0, 4, 8, 12, 1, 5, 9, 13);
  v8f w23 = __builtin_shufflevector(a2, a3, 2, 6, 10, 14, 3, 7, 11, 15);
  v8f x01 = __builtin_shufflevector(b0, b1, 0, 4, 8, 12, 1, 5, 9, 13);
  v8f z01 = __builtin_shufflevector(b2, b3, 0, 4, 8, 12, 1, 5, 9, 13);
  d[0] = __builtin_shufflevector(u01, w01, 0, 1, 2, 3, 8, 9, 10, 11);
  d[1] = __builtin_shufflevector(u01, w01, 4, 5, 6, 7, 12, 13, 14, 15);
  d[2] = __builtin_shufflevector(u23, w23, 0, 1, 2, 3, 8, 9, 10, 11);
  d[3] = __builtin_shufflevector(u23, w23, 4, 5, 6, 7, 12, 13, 14, 15);
  d[4] = __builtin_shufflevector(x01, z01, 0, 1, 2, 3, 8, 9, 10, 11);
  d[5] = __builtin_shufflevector(x01, z01, 4, 5, 6, 7, 12, 13, 14, 15);
}

/* 8 tiles into V (cstride floats between its 36 matrices), of which n are stored: the
 * windows of lanes 2q, 2q + 1 start at p[q] in the padded plane (rows wp floats) */
WINO_INLINE void wino_in_vec(const float *const p[4], int64_t wp, float *v, int64_t cstride,
                             int64_t n) {
  v8f r[6][6]; /* r[k][s]: image row k of the window, transformed along the row */
  for (int k = 0; k < 6; k++) {
    const float *pk[4] = {p[0] + k * wp, p[1] + k * wp, p[2] + k * wp, p[3] + k * wp};
    v8f d[6];
    wino_taps_at(pk, d);
    WINO_BT(d[0], d[1], d[2], d[3], d[4], d[5], r[k]);
  }
  for (int s = 0; s < 6; s++) {
    v8f o[6];
    WINO_BT(r[0][s], r[1][s], r[2][s], r[3][s], r[4][s], r[5][s], o);
    for (int a = 0; a < 6; a++) wino_st(v + (int64_t)(a * 6 + s) * cstride, &o[a], n);
  }
}

/* A of F(4,3) (6 x 4, the output transform's Aᵀ transposed) applied to d0..d3 */
#define WINO_A(d0, d1, d2, d3, o)                                                               \
  do {                                                                                           \
    v8f s02_ = (d0) + (d2), s13_ = (d1) + (d3), t02_ = (d0) + 4.0f * (d2);                      \
    v8f t13_ = 2.0f * (d1) + 8.0f * (d3);                                                       \
    o[0] = (d0);                                                                                \
    o[1] = s02_ + s13_;                                                                         \
    o[2] = s02_ - s13_;                                                                         \
    o[3] = t02_ + t13_;                                                                         \
    o[4] = t02_ - t13_;                                                                         \
    o[5] = (d3);                                                                                \
  } while (0)

/* 8 of dy's 4x4 tiles into D (cstride floats between its 36 matrices) as A·dy·Aᵀ, n of them
 * stored: the tiles of lanes 2q, 2q + 1 start at p[q] in the zero-padded plane */
WINO_INLINE void wino_dy_vec(const float *const p[4], int64_t wp, float *v, int64_t cstride,
                             int64_t n) {
  v8f r[4][6]; /* r[k][s]: row k of the tile, transformed along the row */
  for (int k = 0; k < 4; k++) {
    const float *pk[4] = {p[0] + k * wp, p[1] + k * wp, p[2] + k * wp, p[3] + k * wp};
    v8f d[6];
    wino_taps_at(pk, d);
    WINO_A(d[0], d[1], d[2], d[3], r[k]);
  }
  for (int s = 0; s < 6; s++) {
    v8f o[6];
    WINO_A(r[0][s], r[1][s], r[2][s], r[3][s], o);
    for (int a = 0; a < 6; a++) wino_st(v + (int64_t)(a * 6 + s) * cstride, &o[a], n);
  }
}

/* one vector of tiles of the plane being transformed: x's (wino_in_vec) or dy's */
WINO_INLINE void wino_plane_vec(const WinoCtx *w, const float *const p[4], int64_t wp, float *v,
                                int64_t cstride, int64_t n) {
  if (w->dy) wino_dy_vec(p, wp, v, cstride, n);
  else wino_in_vec(p, wp, v, cstride, n);
}

/* plane p = c·N + n (channel-major, so that one task writes all of a channel's tiles in
 * V: a row of V shared by two threads' stores would bounce between their caches): copied
 * into the zero-padded xp (rows wp floats: padding and tiles
 * past the image read zeros), then every tile row in blocks of 8 tiles, or several tile
 * rows a block where a row has 2 or 4 tiles (images of 5 to 16 columns: the vector full).
 * With w->dy the plane is dy's (O channels, OH x OW, no padding, 4x4 tiles) into D */
WINO_INLINE void wino_in_plane(const WinoCtx *w, int64_t p, float *xp, int64_t wp) {
  const int64_t *g = w->g;
  bool dy = w->dy;
  int64_t H = g[dy ? WG_OH : WG_H], W = g[dy ? WG_OW : WG_W], C = g[dy ? WG_O : WG_C];
  int64_t ph = dy ? 0 : g[WG_PH], pw = dy ? 0 : g[WG_PW], tw = g[WG_TW], th = g[WG_TH];
  int64_t rows = 4 * th + (dy ? 0 : 2), n = p % g[WG_N], c = p / g[WG_N];
  const float *x = w->src + (n * C + c) * H * W;
  int64_t T = g[WG_N] * th * tw, cw = W + pw > wp ? wp - pw : W;
  for (int64_t ih = 0; ih < H && ih + ph < rows; ih++)
    memcpy(xp + (ih + ph) * wp + pw, x + ih * W, (size_t)cw * sizeof(float));
  if (wino_rows(tw, th)) { /* lane l: tile l % tw of row i0 + l / tw (rows past th: lanes
                              * not stored, reading the last row) */
    for (int64_t i0 = 0; i0 < th; i0 += WV / tw) {
      int64_t t = (n * th + i0) * tw, end = (n + 1) * th * tw;
      const float *p[4];
      for (int q = 0; q < 4; q++) {
        int64_t i = i0 + 2 * q / tw;
        p[q] = xp + 4 * (i < th ? i : th - 1) * wp + 8 * q % (4 * tw);
      }
      wino_plane_vec(w, p, wp, w->dst + c * T + t, C * T, end - t < WV ? end - t : WV);
    }
    return;
  }
  for (int64_t i = 0; i < th; i++)
    for (int64_t j0 = 0; j0 < tw; j0 += WV) {
      int64_t t = (n * th + i) * tw + j0;
      /* all 8 lanes where the plane's later tiles (written afterwards) take the others */
      int64_t n_ = tw - j0 < WV && t + WV > (n + 1) * th * tw ? tw - j0 : WV;
      const float *row = xp + 4 * i * wp + 4 * j0, *p[4] = {row, row + 8, row + 16, row + 24};
      wino_plane_vec(w, p, wp, w->dst + c * T + t, C * T, n_);
    }
}

WINO_INLINE void wino_in_planes(const WinoCtx *w, int64_t lo, int64_t hi) {
  const int64_t *g = w->g;
  int64_t wp = 4 * wino_round8(g[WG_TW]) + 8;
  float *xp = wino_buf((4 * g[WG_TH] + 2) * wp);
  for (int64_t p = lo; p < hi; p++) wino_in_plane(w, p, xp, wp);
  free(xp);
}

/* ---- the output transform: y = Aᵀ·m·A per tile and output channel, with the epilogue --- */

/* Aᵀ of F(4,3) applied to m0..m5 */
#define WINO_AT(m0, m1, m2, m3, m4, m5, o)                                                      \
  do {                                                                                           \
    v8f s12_ = (m1) + (m2), d12_ = (m1) - (m2), s34_ = (m3) + (m4), d34_ = (m3) - (m4);         \
    o[0] = (m0) + s12_ + s34_;                                                                  \
    o[1] = d12_ + 2.0f * d34_;                                                                  \
    o[2] = s12_ + 4.0f * s34_;                                                                  \
    o[3] = d12_ + 8.0f * d34_ + (m5);                                                           \
  } while (0)

/* the epilogue on a vector: ·sc + sh, then relu (NaN kept, as the GEMM's) */
#define WINO_EPI(v, sc, sh, relu)                                                               \
  do {                                                                                           \
    v = v * (sc) + (sh);                                                                        \
    if (relu) v = (v8f)((v8i)v & ~(v <= (v8f){0}));                                              \
  } while (0)

/* the 32 outputs of one output row of 8 tiles from their four column phases, interleaved
 * (lane l's four columns at 4l) */
WINO_INLINE void wino_interleave(const v8f p[4], v8f q[4]) {
  v8f u01 = __builtin_shufflevector(p[0], p[1], 0, 8, 1, 9, 2, 10, 3, 11);
  v8f u23 = __builtin_shufflevector(p[2], p[3], 0, 8, 1, 9, 2, 10, 3, 11);
  v8f h01 = __builtin_shufflevector(p[0], p[1], 4, 12, 5, 13, 6, 14, 7, 15);
  v8f h23 = __builtin_shufflevector(p[2], p[3], 4, 12, 5, 13, 6, 14, 7, 15);
  q[0] = __builtin_shufflevector(u01, u23, 0, 1, 8, 9, 2, 3, 10, 11);
  q[1] = __builtin_shufflevector(u01, u23, 4, 5, 12, 13, 6, 7, 14, 15);
  q[2] = __builtin_shufflevector(h01, h23, 0, 1, 8, 9, 2, 3, 10, 11);
  q[3] = __builtin_shufflevector(h01, h23, 4, 5, 12, 13, 6, 7, 14, 15);
}

/* where the 8 lanes of an output vector go: `rows` tile rows of `seg` interleaved outputs
 * each (1 x 32 along a tile row, or 8/tw x 4·tw for tw = 2 or 4), the first `cols` of each
 * stored at y + (4·k + a)·OW for output row a of tile row k, below `oh` output rows */
typedef struct WinoSeg {
  int64_t rows, seg, cols, oh;
} WinoSeg;

/* n outputs q to y (inside w->dst), with w's residual at the same index added and relu
 * after it where w has them (NaN kept, as WINO_EPI) */
WINO_INLINE void wino_put(const WinoCtx *w, float *y, const float *q, int64_t n) {
  int64_t l = 0;
  if (w->res) {
    const float *r = w->res + (y - w->dst);
    for (; l + WV <= n; l += WV) {
      v8f a, b;
      LD(a, q + l), LD(b, r + l);
      a += b;
      if (w->res_relu) a = (v8f)((v8i)a & ~(a <= (v8f){0}));
      ST(y + l, a);
    }
    for (; l < n; l++) {
      float v = q[l] + r[l];
      y[l] = w->res_relu && v <= 0 ? 0.0f : v;
    }
    return;
  }
  for (; l + WV <= n; l += WV) memcpy(y + l, q + l, WV * sizeof(float));
  if (l + 4 <= n) memcpy(y + l, q + l, 4 * sizeof(float)), l += 4;
  for (; l < n; l++) y[l] = q[l];
}

/* 8 tiles of output channel o: m points at M[0][o][t] of the first, n lanes are read (the
 * rest zeros), then Aᵀ·m·A, the epilogue, and the outputs inside y stored as sg says */
WINO_INLINE void wino_out_vec(const WinoCtx *w, const float *m, int64_t xs, int64_t n, float *y,
                              const WinoSeg *sg, float sc, float sh) {
  int64_t OW = w->g[WG_OW];
  v8f r[4][6]; /* r[a][s]: output row a of the tile, column s of the product */
  for (int s = 0; s < 6; s++) {
    v8f v[6];
    for (int a = 0; a < 6; a++) {
      const float *p = m + (int64_t)(a * 6 + s) * xs;
      if (n == WV) LD(v[a], p);
      else {
        v[a] = (v8f){0};
        for (int64_t l = 0; l < n; l++) v[a][l] = p[l];
      }
    }
    v8f o[4];
    WINO_AT(v[0], v[1], v[2], v[3], v[4], v[5], o);
    for (int a = 0; a < 4; a++) r[a][s] = o[a];
  }
  for (int a = 0; a < 4 && a < sg->oh; a++) {
    v8f q[4], row[4];
    WINO_AT(r[a][0], r[a][1], r[a][2], r[a][3], r[a][4], r[a][5], q);
    for (int k = 0; k < 4; k++) WINO_EPI(q[k], sc, sh, w->relu);
    wino_interleave(q, row);
    const float *f = (const float *)row;
    for (int64_t k = 0; k < sg->rows && 4 * k + a < sg->oh; k++)
      wino_put(w, y + (4 * k + a) * OW, f + k * sg->seg, sg->cols);
  }
}

/* output plane p = o·N + n (channel-major: a task reads whole rows of M), tile row by tile
 * row, 8 tiles at a time (several rows a block where tw is 2 or 4) */
WINO_INLINE void wino_out_plane(const WinoCtx *w, int64_t p) {
  const int64_t *g = w->g;
  int64_t O = g[WG_O], OH = g[WG_OH], OW = g[WG_OW], tw = g[WG_TW], th = g[WG_TH];
  int64_t n = p % g[WG_N], o = p / g[WG_N], T = g[WG_N] * th * tw;
  float sc = 1, sh = 0;
  if (w->bias) sh = w->bias[o];
  else if (w->affine) sc = w->affine[2 * o], sh = w->affine[2 * o + 1];
  float *y = w->dst + (n * O + o) * OH * OW;
  if (wino_rows(tw, th)) { /* lane l: tile l % tw of row i0 + l / tw, as the input's */
    for (int64_t i0 = 0; i0 < th; i0 += WV / tw) {
      int64_t t = (n * th + i0) * tw;
      WinoSeg sg = {WV / tw, 4 * tw, OW, OH - 4 * i0};
      wino_out_vec(w, w->src + o * T + t, O * T, T - t < WV ? T - t : WV, y + 4 * i0 * OW, &sg,
                   sc, sh);
    }
    return;
  }
  for (int64_t i = 0; i < th; i++)
    for (int64_t j0 = 0; j0 < tw; j0 += WV) {
      int64_t t = (n * th + i) * tw + j0;
      WinoSeg sg = {1, 4 * WV, OW - 4 * j0 < 4 * WV ? OW - 4 * j0 : 4 * WV, OH - 4 * i};
      wino_out_vec(w, w->src + o * T + t, O * T, tw - j0 < WV && t + WV > T ? tw - j0 : WV,
                   y + 4 * i * OW + 4 * j0, &sg, sc, sh);
    }
}

WINO_INLINE void wino_out_planes(const WinoCtx *w, int64_t lo, int64_t hi) {
  for (int64_t p = lo; p < hi; p++) wino_out_plane(w, p);
}

/* ---- the filter gradient's output transform: dW = Gᵀ·M·G per channel pair ----------- */

/* Gᵀ of F(4,3) applied to m0..m5 (vectors): the three taps along one direction */
#define WINO_GT(m0, m1, m2, m3, m4, m5, o)                                                      \
  do {                                                                                           \
    v8f s12_ = (m1) + (m2), s34_ = (m3) + (m4);                                                 \
    o[0] = (m0) * 0.25f - s12_ * (1.0f / 6) + s34_ * (1.0f / 24);                               \
    o[1] = ((m2) - (m1)) * (1.0f / 6) + ((m3) - (m4)) * (1.0f / 12);                            \
    o[2] = (s34_ - s12_) * (1.0f / 6) + (m5);                                                   \
  } while (0)

typedef struct WinoGradOut {
  const float *M;
  float *dw;
  int64_t O, C, nt;
  bool avx2;
} WinoGradOut;

/* rows [lo, hi) of output channels: 8 input channels a vector (the last block's lanes past
 * C read zeros and are not stored) */
WINO_INLINE void wino_gout_rows(const WinoGradOut *w, int64_t lo, int64_t hi) {
  int64_t O = w->O, C = w->C;
  for (int64_t o = lo; o < hi; o++)
    for (int64_t c0 = 0; c0 < C; c0 += WV) {
      int64_t n = C - c0 < WV ? C - c0 : WV;
      v8f r[6][3]; /* r[a][s]: row a of M·G */
      for (int a = 0; a < 6; a++) {
        v8f m[6];
        for (int b = 0; b < 6; b++) {
          const float *p = w->M + ((int64_t)(a * 6 + b) * O + o) * C + c0;
          if (n == WV) LD(m[b], p);
          else {
            m[b] = (v8f){0};
            for (int64_t l = 0; l < n; l++) m[b][l] = p[l];
          }
        }
        WINO_GT(m[0], m[1], m[2], m[3], m[4], m[5], r[a]);
      }
      float t[9][WV];
      for (int s = 0; s < 3; s++) {
        v8f q[3];
        WINO_GT(r[0][s], r[1][s], r[2][s], r[3][s], r[4][s], r[5][s], q);
        for (int k = 0; k < 3; k++) ST(t[k * 3 + s], q[k]);
      }
      float *d = w->dw + (o * C + c0) * 9;
      for (int64_t l = 0; l < n; l++)
        for (int k = 0; k < 9; k++) d[l * 9 + k] = t[k][l];
    }
}

static void wino_gout_base(const WinoGradOut *w, int64_t lo, int64_t hi) { wino_gout_rows(w, lo, hi); }
#if WINO_X86
__attribute__((target("avx2"))) static void wino_gout_avx2(const WinoGradOut *w, int64_t lo,
                                                           int64_t hi) {
  wino_gout_rows(w, lo, hi);
}
#endif

static void wino_gout_task(void *c, int64_t t) {
  const WinoGradOut *w = c;
  int64_t lo = w->O * t / w->nt, hi = w->O * (t + 1) / w->nt;
#if WINO_X86
  if (w->avx2) {
    wino_gout_avx2(w, lo, hi);
    return;
  }
#endif
  wino_gout_base(w, lo, hi);
}

/* ---- dispatch: the same loops for baseline x86-64 and AVX2 ---------------------------- */

static void wino_in_base(const WinoCtx *w, int64_t lo, int64_t hi) { wino_in_planes(w, lo, hi); }
static void wino_out_base(const WinoCtx *w, int64_t lo, int64_t hi) { wino_out_planes(w, lo, hi); }
#if WINO_X86
__attribute__((target("avx2"))) static void wino_in_avx2(const WinoCtx *w, int64_t lo, int64_t hi) {
  wino_in_planes(w, lo, hi);
}
__attribute__((target("avx2"))) static void wino_out_avx2(const WinoCtx *w, int64_t lo, int64_t hi) {
  wino_out_planes(w, lo, hi);
}
#endif

typedef struct WinoPar {
  const WinoCtx *w;
  bool out;
  int64_t n, nt;
} WinoPar;

static void wino_range(const WinoCtx *w, bool out, int64_t lo, int64_t hi) {
#if WINO_X86
  if (w->avx2) {
    if (out) wino_out_avx2(w, lo, hi);
    else wino_in_avx2(w, lo, hi);
    return;
  }
#endif
  if (out) wino_out_base(w, lo, hi);
  else wino_in_base(w, lo, hi);
}

static void wino_task(void *c, int64_t t) {
  const WinoPar *p = c;
  int64_t lo = p->n * t / p->nt, hi = p->n * (t + 1) / p->nt;
  if (lo < hi) wino_range(p->w, p->out, lo, hi);
}

/* planes [0, n) over the pool, a fixed range per task; small work on the caller */
static void wino_par(void *pool, WinoCtx *w, bool out, int64_t n, int64_t per_plane) {
#if WINO_X86
  w->avx2 = __builtin_cpu_supports("avx2");
#endif
  int64_t nt = rt_pool_size(pool);
  if (n * per_plane < (1 << 15)) nt = 1;
  if (nt > n) nt = n;
  if (nt <= 1) {
    if (n > 0) wino_range(w, out, 0, n);
    return;
  }
  WinoPar p = {w, out, n, nt};
  rt_parallel_for(pool, nt, wino_task, &p);
}

void rt_k_wino_in(void *pool, const float *x, float *V, const int64_t *geom) {
  WinoCtx w = {.g = geom, .src = x, .dst = V};
  wino_par(pool, &w, false, geom[WG_N] * geom[WG_C], 36 * geom[WG_TH] * geom[WG_TW]);
}

void rt_k_wino_dy(void *pool, const float *dy, float *D, const int64_t *geom) {
  WinoCtx w = {.g = geom, .src = dy, .dst = D, .dy = true};
  wino_par(pool, &w, false, geom[WG_N] * geom[WG_O], 36 * geom[WG_TH] * geom[WG_TW]);
}

void rt_k_wino_out(void *pool, const float *M, float *y, const float *bias, const float *affine,
                   int32_t relu, const float *res, int32_t res_relu, const int64_t *geom) {
  WinoCtx w = {.g = geom, .src = M, .dst = y, .bias = bias, .affine = affine, .relu = relu,
               .res = res, .res_relu = res_relu};
  wino_par(pool, &w, true, geom[WG_N] * geom[WG_O], 36 * geom[WG_TH] * geom[WG_TW]);
}

void rt_k_wino_wgrad_out(void *pool, const float *M, float *dw, int64_t O, int64_t C) {
  WinoGradOut w = {.M = M, .dw = dw, .O = O, .C = C, .nt = rt_pool_size(pool)};
#if WINO_X86
  w.avx2 = __builtin_cpu_supports("avx2");
#endif
  if (O * C < 4096) w.nt = 1; /* small filters on the caller */
  if (w.nt > O) w.nt = O;
  if (w.nt <= 1) {
    w.nt = 1;
    wino_gout_task(&w, 0);
  } else {
    rt_parallel_for(pool, w.nt, wino_gout_task, &w);
  }
}
