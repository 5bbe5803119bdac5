/* rt_profile.h — per-kernel profiling of a compiled model: the clock the generated entries
 * read around their kernels (RtModelBufs.prof, rt_model.h) and the `bench --profile` report
 * of a program: each kernel's measured time (median over steps), its achieved FLOP/s and
 * bytes/s, what bounds it, the cost model's estimate and measured/estimate. */
#ifndef RT_PROFILE_H
#define RT_PROFILE_H
#include <stdint.h>
#include <stdio.h>

#include "rt_model.h"

/* nanoseconds of a monotonic clock */
int64_t rt_prof_clock(void);

/* the kernel times of `iters` steps of one entry */
typedef struct RtProfRun {
  const RtModelDesc *d;
  int train;
  int nk;
  int64_t iters, n; /* capacity and steps recorded */
  double *t;        /* [iters][nk] seconds */
} RtProfRun;

/* 0, or -1 out of memory */
int rt_prof_begin(RtProfRun *r, const RtModelDesc *d, int train, int64_t iters);
/* the step just run: secs[nk] (rt_ctx_profile_last) */
void rt_prof_add(RtProfRun *r, const double *secs);
void rt_prof_free(RtProfRun *r);

/* the estimate of kernel k for `threads` threads: one thread's figure on one, the all-core
 * figure on more */
double rt_prof_estimate(const RtKernelInfo *k, int threads);
/* the estimate of a whole forward (train 0) or training step: the sum over its kernels (the
 * descriptor's est_*_s for a descriptor without a kernel table) */
double rt_prof_step_estimate(const RtModelDesc *d, int train, int threads);

/* the report, kernels sorted by measured time: text, or JSON with json != 0; step[0] and
 * step[1] are the median and best time of a whole step measured without profiling. 0, or
 * -1 out of memory. */
int rt_prof_print(FILE *out, const RtProfRun *r, int threads, const double step[2], int json);
/* the measured kernels (filled) beside their estimates (hollow) on the build target's
 * roofline, as an SVG file written atomically; 0, or -1 with err filled */
int rt_prof_svg(const char *path, const RtProfRun *r, int threads, char *err, size_t n);
#endif
