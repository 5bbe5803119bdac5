/* rt_profile.c — per-kernel profiling: the clock and the `bench --profile` report
 * (rt_profile.h). */
#include "rt_profile.h"

#include "rt_io.h"
#include "rt_svg.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t rt_prof_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int rt_prof_begin(RtProfRun *r, const RtModelDesc *d, int train, int64_t iters) {
  memset(r, 0, sizeof *r);
  r->d = d;
  r->train = train;
  r->nk = train ? d->nkernels_train : d->nkernels_forward;
  r->iters = iters > 0 ? iters : 1;
  if (r->nk > 0 && (size_t)r->iters > SIZE_MAX / sizeof(double) / (size_t)r->nk) return -1;
  r->t = malloc((size_t)r->iters * (size_t)(r->nk > 0 ? r->nk : 1) * sizeof *r->t);
  return r->t ? 0 : -1;
}

void rt_prof_add(RtProfRun *r, const double *secs) {
  if (r->n >= r->iters) return;
  memcpy(r->t + r->n * r->nk, secs, (size_t)r->nk * sizeof *secs);
  r->n++;
}

void rt_prof_free(RtProfRun *r) {
  free(r->t);
  memset(r, 0, sizeof *r);
}

double rt_prof_estimate(const RtKernelInfo *k, int threads) {
  return threads <= 1 ? k->est_1t_s : k->est_s;
}

double rt_prof_step_estimate(const RtModelDesc *d, int train, int threads) {
  int nk = train ? d->nkernels_train : d->nkernels_forward;
  const RtKernelInfo *ks = train ? d->kernels_train : d->kernels_forward;
  if (!ks || nk <= 0) return train ? d->est_train_s : d->est_forward_s;
  double s = 0;
  for (int i = 0; i < nk; i++) s += rt_prof_estimate(&ks[i], threads);
  return s;
}

/* one kernel's row */
typedef struct ProfRow {
  int k;
  double med, best, est;
} ProfRow;

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int rows_by_time(const void *a, const void *b) {
  const ProfRow *x = a, *y = b;
  return (x->med < y->med) - (x->med > y->med);
}

/* medians of every kernel, sorted by time; NULL out of memory */
static ProfRow *prof_rows(const RtProfRun *r, int threads) {
  ProfRow *rows = malloc((size_t)(r->nk ? r->nk : 1) * sizeof *rows);
  double *col = malloc((size_t)(r->n ? r->n : 1) * sizeof *col);
  if (!rows || !col) {
    free(rows);
    free(col);
    return NULL;
  }
  const RtKernelInfo *ks = r->train ? r->d->kernels_train : r->d->kernels_forward;
  for (int k = 0; k < r->nk; k++) {
    for (int64_t i = 0; i < r->n; i++) col[i] = r->t[i * r->nk + k];
    qsort(col, (size_t)r->n, sizeof *col, cmp_d);
    rows[k] = (ProfRow){k, r->n ? col[r->n / 2] : 0, r->n ? col[0] : 0,
                        rt_prof_estimate(&ks[k], threads)};
  }
  free(col);
  qsort(rows, (size_t)r->nk, sizeof *rows, rows_by_time);
  return rows;
}

static double ratio(double a, double b) { return b > 0 ? a / b : 0; }

static void print_text(FILE *out, const RtProfRun *r, const ProfRow *rows, int threads,
                       double step_s) {
  const RtKernelInfo *ks = r->train ? r->d->kernels_train : r->d->kernels_forward;
  double sum = 0, est = 0;
  for (int i = 0; i < r->nk; i++) sum += rows[i].med, est += rows[i].est;
  fprintf(out, "%s %s: %d kernels, %d thread%s, %lld profiled steps\n", r->d->name,
          r->train ? "training step" : "forward", r->nk, threads, threads == 1 ? "" : "s",
          (long long)r->n);
  fprintf(out, "  %-36s %10s %6s %9s %9s %-7s %10s %8s\n", "kernel", "time", "step%",
          "GFLOP/s", "GB/s", "bound", "estimate", "meas/est");
  for (int i = 0; i < r->nk; i++) {
    const ProfRow *w = &rows[i];
    const RtKernelInfo *k = &ks[w->k];
    fprintf(out, "  %-36.36s %8.2fus %5.1f%% %9.2f %9.2f %-7s %8.2fus %8.2f\n", k->name,
            w->med * 1e6, 100 * ratio(w->med, sum), ratio(k->flops, w->med) / 1e9,
            ratio(k->bytes, w->med) / 1e9, k->compute_bound ? "compute" : "memory",
            w->est * 1e6, ratio(w->med, w->est));
  }
  fprintf(out, "  sum of kernel medians %.3f ms, estimate %.3f ms, measured/estimate %.2f\n",
          sum * 1e3, est * 1e3, ratio(sum, est));
  if (step_s > 0)
    fprintf(out, "  whole step without profiling %.3f ms (median), measured/estimate %.2f\n",
            step_s * 1e3, ratio(step_s, est));
}

static char *json_text(const RtProfRun *r, const ProfRow *rows, int threads,
                       const double step[2]) {
  double step_s = step[0];
  const RtKernelInfo *ks = r->train ? r->d->kernels_train : r->d->kernels_forward;
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "model", r->d->name);
  cJSON_AddStringToObject(root, "entry", r->train ? "train_step" : "forward");
  cJSON_AddNumberToObject(root, "threads", threads);
  cJSON_AddNumberToObject(root, "steps", (double)r->n);
  double sum = 0, est = 0;
  cJSON *arr = cJSON_AddArrayToObject(root, "kernels");
  for (int i = 0; i < r->nk; i++) {
    const ProfRow *w = &rows[i];
    const RtKernelInfo *k = &ks[w->k];
    sum += w->med, est += w->est;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", w->k);
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddNumberToObject(o, "time_s", w->med);
    cJSON_AddNumberToObject(o, "best_s", w->best);
    cJSON_AddNumberToObject(o, "flops", k->flops);
    cJSON_AddNumberToObject(o, "bytes", k->bytes);
    cJSON_AddNumberToObject(o, "gflops", ratio(k->flops, w->med) / 1e9);
    cJSON_AddNumberToObject(o, "gbs", ratio(k->bytes, w->med) / 1e9);
    cJSON_AddStringToObject(o, "bound", k->compute_bound ? "compute" : "memory");
    cJSON_AddNumberToObject(o, "estimate_s", w->est);
    cJSON_AddNumberToObject(o, "measured_over_estimate", ratio(w->med, w->est));
    cJSON_AddItemToArray(arr, o);
  }
  cJSON_AddNumberToObject(root, "kernels_time_s", sum);
  cJSON_AddNumberToObject(root, "estimate_s", est);
  cJSON_AddNumberToObject(root, "step_s", step_s);
  cJSON_AddNumberToObject(root, "step_best_s", step[1]);
  cJSON_AddNumberToObject(root, "step_over_estimate", ratio(step_s, est));
  char *s = cJSON_Print(root);
  cJSON_Delete(root);
  return s;
}

int rt_prof_print(FILE *out, const RtProfRun *r, int threads, const double step[2], int json) {
  ProfRow *rows = prof_rows(r, threads);
  if (!rows) return -1;
  int rc = 0;
  if (json) {
    char *s = json_text(r, rows, threads, step);
    if (s) fprintf(out, "%s\n", s);
    else rc = -1;
    free(s);
  } else {
    print_text(out, r, rows, threads, step[0]);
  }
  free(rows);
  return rc;
}

/* ---- the roofline chart ----------------------------------------------------------------- */

/* one kernel: the estimate (hollow) and the measurement (filled) at its intensity, joined */
static void svg_kernel(FILE *f, const RtRoofAxes *a, const RtKernelInfo *k, int idx,
                       const ProfRow *w) {
  char e[256];
  double x = k->flops / k->bytes, pm = k->flops / w->med, pe = k->flops / w->est;
  const char *col = k->compute_bound ? "#c0392b" : "#2471a3";
  double lo = pow(10, a->y0);
  pm = fmax(pm, lo), pe = fmax(pe, lo);
  rt_svg_esc(k->name, e, sizeof e);
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
             "stroke-opacity=\"0.4\"/>\n", rt_svg_px(a, x), rt_svg_py(a, pe), rt_svg_px(a, x),
          rt_svg_py(a, pm), col);
  fprintf(f, "<circle class=\"estimate\" data-kernel=\"%d\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
             "fill=\"none\" stroke=\"%s\"><title>%s: estimated %.3g us</title></circle>\n", idx,
          rt_svg_px(a, x), rt_svg_py(a, pe), col, e, w->est * 1e6);
  fprintf(f, "<circle class=\"measured\" data-kernel=\"%d\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
             "fill=\"%s\"><title>%s: measured %.3g us (%.2fx the estimate)</title></circle>\n",
          idx, rt_svg_px(a, x), rt_svg_py(a, pm), col, e, w->med * 1e6, ratio(w->med, w->est));
}

static void svg_body(FILE *f, const RtProfRun *r, const ProfRow *rows, int threads) {
  const RtModelDesc *d = r->d;
  const RtKernelInfo *ks = r->train ? d->kernels_train : d->kernels_forward;
  double peak = threads <= 1 ? d->roof_peak_1t : d->roof_peak, lo = 0, hi = 0;
  for (int i = 0; i < r->nk; i++) {
    const RtKernelInfo *k = &ks[i];
    if (k->flops <= 0 || k->bytes <= 0) continue;
    double x = k->flops / k->bytes;
    lo = lo > 0 ? fmin(lo, x) : x, hi = fmax(hi, x);
  }
  RtRoofAxes a;
  rt_svg_axes(&a, peak > 0 ? peak : 1e9, lo, hi);
  char t[256];
  snprintf(t, sizeof t, "%s %s, %d thread%s: measured (filled) and estimated (hollow)", d->name,
           r->train ? "training step" : "forward", threads, threads == 1 ? "" : "s");
  rt_svg_begin(f, RT_SVG_RH, t);
  rt_svg_grid(f, &a);
  if (peak > 0 && d->roof_bw > 0) rt_svg_roof(f, &a, peak, d->roof_bw, "FP32 ");
  for (int i = 0; i < r->nk; i++) {
    const RtKernelInfo *k = &ks[rows[i].k];
    if (k->flops > 0 && k->bytes > 0 && rows[i].med > 0 && rows[i].est > 0)
      svg_kernel(f, &a, k, rows[i].k, &rows[i]);
  }
  fputs("</svg>\n", f);
}

int rt_prof_svg(const char *path, const RtProfRun *r, int threads, char *err, size_t n) {
  ProfRow *rows = prof_rows(r, threads);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = rows ? open_memstream(&buf, &len) : NULL;
  if (!f) {
    free(rows);
    snprintf(err, n, "out of memory");
    return -1;
  }
  svg_body(f, r, rows, threads);
  int rc = fclose(f);
  free(rows);
  if (rc || !buf) {
    free(buf);
    snprintf(err, n, "out of memory");
    return -1;
  }
  const void *parts[1] = {buf};
  size_t sizes[1] = {len};
  rc = rt_file_write_atomic(path, parts, sizes, 1, err, n);
  free(buf);
  return rc;
}
