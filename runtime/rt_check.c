/* rt_check.c — what the runtime checks about the data a caller hands it, before the
 * generated code runs on it: class labels and embedding indices inside their range (the
 * generated kernels index memory with them unchecked), and optionally that values are finite.
 * The messages are the reference interpreter's, prefixed with the tensor's name. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rt_io.h"
#include "rt_program.h"
#include "rt_tensor.h"

/* element i of an integer tensor as int64; false for a dtype that holds no indices */
/* element i of an integer tensor; p need not be aligned (a mapped file's bytes) */
static int int_at(const void *p, int dtype, int64_t i, int64_t *v) {
  const unsigned char *b = p;
  if (dtype == DT_I32) {
    int32_t x;
    memcpy(&x, b + (size_t)i * sizeof x, sizeof x);
    *v = x;
  } else if (dtype == DT_I64) {
    memcpy(v, b + (size_t)i * sizeof *v, sizeof *v);
  } else {
    return 0;
  }
  return 1;
}

int rt_check_indices(const RtTensorInfo *t, const void *data, int64_t n, int64_t first,
                     char *err, size_t errlen) {
  if (t->index_kind == RT_INDEX_NONE || t->index_bound <= 0) return 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t v;
    if (!int_at(data, t->dtype, i, &v)) return 0;
    if (v >= 0 && v < t->index_bound) continue;
    rt_errf(err, errlen, "input '%s': %s %lld at position %lld is outside [0, %lld)", t->name,
            t->index_kind == RT_INDEX_LABEL ? "label" : "index", (long long)v,
            (long long)(first + i), (long long)t->index_bound);
    return -1;
  }
  return 0;
}

int rt_check_finite_at(const RtTensorInfo *t, const void *data, int64_t n, int64_t first,
                       const char *what, char *err, size_t errlen) {
  if (t->dtype != DT_F32) return 0;
  /* data may be a mapped file's bytes, where a tensor need not be 4-byte aligned */
  const unsigned char *p = data;
  for (int64_t i = 0; i < n; i++) {
    float x;
    memcpy(&x, p + (size_t)i * sizeof x, sizeof x);
    if (isfinite(x)) continue;
    rt_errf(err, errlen, "%s '%s': element %lld is %s", what, t->name, (long long)(first + i),
            isnan(x) ? "NaN" : x > 0 ? "+inf" : "-inf");
    return -1;
  }
  return 0;
}

int rt_check_finite(const RtTensorInfo *t, const void *data, int64_t n, const char *what,
                    char *err, size_t errlen) {
  return rt_check_finite_at(t, data, n, 0, what, err, errlen);
}

/* outputs and the loss first (the step computed them before it updated anything), then the
 * parameters, buffers and optimizer state the update wrote */
int rt_ctx_check_finite(RtCtx *c, char *err, size_t errlen) {
  static const int order[] = {RT_KIND_OUTPUT, RT_KIND_LOSS, RT_KIND_PARAM, RT_KIND_BUFFER,
                              RT_KIND_OPTSTATE};
  static const char *const what[] = {"output", "loss", "weight", "buffer", "optimizer state"};
  const RtModelDesc *d = rt_ctx_desc(c);
  if (!d) {
    rt_errf(err, errlen, "no context");
    return -1;
  }
  for (int o = 0; o < 5; o++)
    for (int i = 0; i < d->ntensors; i++) {
      const RtTensorInfo *t = &d->tensors[i];
      const void *x = t->kind == order[o] ? rt_ctx_data(c, i) : NULL; /* NULL: not held */
      if (x && rt_check_finite(t, x, rt_info_numel(t), what[o], err, errlen)) return -1;
    }
  return 0;
}

/* the checkpoint metadata `nnc build`'s programs write ("nnc.model", "nnc.dims") against the
 * model loading it; files without them (other tools) pass */
int rt_check_ckpt_meta(const RtModelDesc *d, const RtTensorSet *set, char *msg, size_t n) {
  const char *model = rt_set_meta(set, "nnc.model"), *dims = rt_set_meta(set, "nnc.dims");
  if (model && d->name && strcmp(model, d->name)) {
    rt_errf(msg, n, "saved by model '%s', loaded into model '%s'", model, d->name);
    return -1;
  }
  if (dims && d->dims && strcmp(dims, d->dims)) {
    rt_errf(msg, n, "saved with dims %s, loaded into a build with %s", dims, d->dims);
    return -1;
  }
  return 0;
}
