/* rt_val.c — the loss and accuracy of `train --val` over host arrays (rt_val.h). The
 * formulas are the reference interpreter's (ir/interp.c), in double precision. */
#include "rt_val.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int rt_val_parse(const char *spec, RtValLoss *v) {
  char kind[32], ign[32];
  memset(v, 0, sizeof *v);
  if (!spec || !*spec) return -1;
  if (sscanf(spec, "cross_entropy %127s %127s %31s %lf", v->out, v->tgt, ign, &v->smoothing) ==
      4) {
    v->has_ignore = strcmp(ign, "none") != 0;
    long long ii = 0;
    if (v->has_ignore && sscanf(ign, "%lld", &ii) != 1) return -1;
    v->ignore_index = ii;
    v->kind = RT_VAL_CE;
    return 0;
  }
  if (sscanf(spec, "%31s %127s %127s", kind, v->out, v->tgt) == 3 && !strcmp(kind, "mse")) {
    v->kind = RT_VAL_MSE;
    return 0;
  }
  memset(v, 0, sizeof *v);
  return -1;
}

/* the loss of one row and whether its first maximum is at the label */
static double ce_row(const float *r, int64_t C, int64_t label, double eps, int *hit) {
  int64_t best = 0;
  double mx = r[0], mean = 0, se = 0;
  for (int64_t c = 1; c < C; c++)
    if (r[c] > r[best]) best = c, mx = r[c];
  for (int64_t c = 0; c < C; c++) {
    se += exp((double)r[c] - mx);
    mean += (double)r[c] / (double)C;
  }
  double lse = mx + log(se);
  *hit = best == label;
  return (1 - eps) * (lse - (double)r[label]) + eps * (lse - mean);
}

void rt_val_cross_entropy(const RtValLoss *v, const float *logits, const int32_t *labels,
                          int64_t rows, int64_t C, RtValSum *s) {
  for (int64_t n = 0; n < rows; n++) {
    if (v->has_ignore && labels[n] == v->ignore_index) continue;
    int hit;
    s->loss += ce_row(logits + n * C, C, labels[n], v->smoothing, &hit);
    s->correct += hit;
    s->count++;
  }
}

void rt_val_mse(const float *pred, const float *tgt, int64_t n, RtValSum *s) {
  for (int64_t i = 0; i < n; i++) {
    double e = (double)pred[i] - (double)tgt[i];
    s->loss += e * e;
  }
  s->count += n;
}
