/* rt_embed.c — the model context behind generated programs and the embedding API: one
 * RtModelDesc, its three memory regions, a thread pool and the step counter, with checkpoint
 * load/save and chunked forward passes. Generic over the descriptor, so the per-model code
 * (NAME.h, the program main) is only thin wrappers. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_io.h"
#include "rt_mem.h"
#include "rt_profile.h"
#include "rt_program.h"
#include "rt_threads.h"

/* one all-reduce of the gradients: gathered (grad -1: the gradients first, first - 1, ...,
 * last, in consecutive slices of the buffer from at) or in place (gradient grad from element
 * piece); count floats; ready: the last of its gradients' ready kernels */
typedef struct RtBucket {
  int64_t grad, first, last, ready;
  size_t piece, at, count;
  int started;
} RtBucket;

struct RtCtx {
  const RtModelDesc *d;
  RtModelBufs b;
  RtPool *pool;
  unsigned flags;
  int training;    /* the optimizer state and the training arena are present */
  uint64_t seed;   /* of the last rt_ctx_init: initializes optimizer state allocated later */
  RtMemFigures fig;
  RtRegion params, io, arena; /* owned memory; all empty in caller memory */
  char err[1024];
  char warn[512]; /* rt_ctx_warning */
  int64_t *prof;  /* rt_ctx_profile: the entries' kernel timestamps, or NULL */
  float *bucket;  /* the gathering buffer of the all-reduce's buckets, at their first use */
  RtBucket *buckets; /* the partition of the gradients (bucket_plan) */
  int64_t nbuckets, nstarted;
  int64_t bucket_bytes; /* 0: RT_BUCKET_BYTES */
  RtHooks hooks;        /* b.hooks when it is not NULL */
  RtStatsSumFn stats_sum; /* rt_ctx_set_stats_sum */
  void *stats_user;
  RtDeviceAllreduceFn dev_allreduce; /* rt_ctx_set_device_allreduce */
  void *dev_user;
  RtStatsSumDeviceFn dev_stats_sum; /* rt_ctx_set_stats_sum_device */
  void *dev_stats_user;
  const RtAllreduceAsync *ov; /* the overlapped step's communicator, during the step */
  int ov_failed;
  char *grad_base; /* the arena the gradients are in during a step with an all-reduce (host
                      memory; a device's address on a GPU) */
  /* rt_ctx_set_device_overlap: on (dov), on the device's host memory (dov_host, cuda-emu) or
   * on the device (dov_dev: ovd during its step, each bucket's buffers in dptr/dcnt) */
  int dov;
  RtAllreduceAsync dov_host;
  RtDeviceAllreduceAsync dov_dev;
  const RtDeviceAllreduceAsync *ovd;
  void *ov_stream;
  uint64_t *dptr;
  int64_t *dcnt;
  void *dev;            /* d->device's regions, or NULL (host entries) */
  int host_params, dev_params; /* with a device: which copy of the params is current */
  int64_t xfer[4];      /* with a device: uploads, bytes up, downloads, bytes down */
  int packed_stale;     /* the params may have changed, or a training entry used the arena,
                           since the forward entry last ran: clear the packed-operand flags */
};

static int64_t round64(int64_t n) { return (n + 63) / 64 * 64; }

int64_t rt_ctx_memory_bytes(const RtModelDesc *d) {
  RtMemFigures f;
  rt_mem_figures(d, &f);
  return rt_mem_train_ctx(&f);
}

int64_t rt_ctx_infer_bytes(const RtModelDesc *d) {
  RtMemFigures f;
  rt_mem_figures(d, &f);
  return rt_mem_infer_ctx(&f);
}

static int ctx_fail(RtCtx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int ctx_fail(RtCtx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- the device's copies (RtDevice, rt_model.h) -------------------------------------------- */

static int is_state_kind(int kind) { return kind <= RT_KIND_OPTSTATE; }
static int ctx_start_training(RtCtx *c);

static int dev_fail(RtCtx *c, const char *what) {
  return ctx_fail(c, "%s: %s: %s", c->d->device->name, what, c->d->device->error(c->dev));
}

/* one host<->device copy of [off, off+bytes) of a region, counted */
static int dev_copy(RtCtx *c, int region, int to_dev, int64_t off, int64_t bytes) {
  char *host = (region == RT_REGION_PARAMS ? c->b.params : c->b.io) + off;
  if (bytes <= 0) return 0;
  if (c->d->device->copy(c->dev, region, to_dev, host, off, bytes))
    return dev_fail(c, to_dev ? "uploading" : "downloading");
  c->xfer[to_dev ? 0 : 2]++;
  c->xfer[to_dev ? 1 : 3] += bytes;
  return 0;
}

/* the params region this context holds: weights and buffers, and the optimizer state while
 * training (laid out after them) */
static int64_t params_held(const RtCtx *c) {
  return c->training ? c->d->params_bytes : c->fig.weights;
}

static int dev_params_to_host(RtCtx *c) {
  if (!c->dev || c->host_params) return 0;
  if (dev_copy(c, RT_REGION_PARAMS, 0, 0, params_held(c))) return -1;
  c->host_params = 1;
  return 0;
}

static int dev_params_to_dev(RtCtx *c) {
  if (!c->dev || c->dev_params) return 0;
  if (dev_copy(c, RT_REGION_PARAMS, 1, 0, params_held(c))) return -1;
  c->dev_params = 1;
  return 0;
}

/* every io tensor of a kind, one way */
static int dev_io(RtCtx *c, int kind, int to_dev) {
  for (int i = 0; i < c->d->ntensors; i++) {
    const RtTensorInfo *t = &c->d->tensors[i];
    if (t->kind == kind && dev_copy(c, RT_REGION_IO, to_dev, t->offset, t->nbytes)) return -1;
  }
  return 0;
}

/* runs entry 0 (forward) or 1 (training step): on the host, or on the device with the
 * inputs uploaded and the outputs (forward) or the loss (training step) downloaded */
static int ctx_run(RtCtx *c, int entry) {
  if (!c->dev && !entry && c->packed_stale) { /* RtModelDesc.packed_*: pack them again */
    if (c->d->packed_flags_bytes > 0)
      memset(c->b.arena + c->d->packed_flags_at, 0, (size_t)c->d->packed_flags_bytes);
    c->packed_stale = 0;
  }
  if (!c->dev) {
    (entry ? c->d->train_step : c->d->forward)(&c->b);
    return 0;
  }
  if (dev_params_to_dev(c) || dev_io(c, RT_KIND_INPUT, 1)) return -1;
  const RtDevice *D = c->d->device;
  if (c->prof && D->run_timed) { /* per launch: c->prof[i + 1] - c->prof[i] */
    if (D->run_timed(c->dev, entry, c->b.step, c->b.seed, c->prof + 1)) return dev_fail(c, "running");
    c->prof[0] = 0;
    for (int i = 0, n = entry ? c->d->nkernels_train : c->d->nkernels_forward; i < n; i++)
      c->prof[i + 1] += c->prof[i];
  } else if (entry && c->b.hooks && D->run_split) { /* data-parallel: the hooks between the launches */
    if (D->run_split(c->dev, c->b.step, c->b.seed, c->b.hooks)) return dev_fail(c, "running");
  } else if (D->run(c->dev, entry, c->b.step, c->b.seed, NULL, 1)) {
    return dev_fail(c, "running");
  }
  if (entry) c->host_params = 0;
  return dev_io(c, entry ? RT_KIND_LOSS : RT_KIND_OUTPUT, 0);
}

/* the device address of a tensor; a state tensor's device copy is made current first, and
 * the host's is then out of date (the caller may write it on the device) */
void *rt_ctx_device_data(RtCtx *c, int idx) {
  if (!c || !c->dev || idx < 0 || idx >= c->d->ntensors) return NULL;
  const RtTensorInfo *t = &c->d->tensors[idx];
  if (t->kind == RT_KIND_OPTSTATE && !c->training) return NULL;
  int region = is_state_kind(t->kind) ? RT_REGION_PARAMS : RT_REGION_IO;
  if (region == RT_REGION_PARAMS) {
    if (dev_params_to_dev(c)) return NULL;
    c->host_params = 0;
  }
  return (char *)c->d->device->region(c->dev, region) + t->offset;
}

/* copies between the device's io region and caller device memory, on stream */
static int dev_io_dd(RtCtx *c, int kind, int to_io, const void *const *ptrs, void *stream) {
  const RtDevice *D = c->d->device;
  char *io = D->region(c->dev, RT_REGION_IO);
  for (int k = 0, n = rt_desc_count(c->d, kind); k < n; k++) {
    const RtTensorInfo *t = &c->d->tensors[rt_desc_nth(c->d, kind, k)];
    if (!ptrs || !ptrs[k]) continue;
    void *dst = to_io ? io + t->offset : (void *)ptrs[k];
    const void *src = to_io ? ptrs[k] : io + t->offset;
    if (D->copy_dd(c->dev, dst, src, t->nbytes, stream)) return dev_fail(c, "copying on the device");
  }
  return 0;
}

int rt_ctx_run_device(RtCtx *c, int train, const void *const *d_in, void *const *d_out, void *stream) {
  if (!c) return -1;
  if (!c->dev)
    return ctx_fail(c, "model '%s' was built for the CPU: device pointers need a build with "
                       "--target cuda or cuda-emu", c->d->name);
  if (train && ctx_start_training(c)) return -1;
  if (dev_params_to_dev(c) || dev_io_dd(c, RT_KIND_INPUT, 1, d_in, stream)) return -1;
  if (c->d->device->run(c->dev, train, c->b.step, c->b.seed, stream, 0)) return dev_fail(c, "running");
  if (dev_io_dd(c, train ? RT_KIND_LOSS : RT_KIND_OUTPUT, 0, (const void *const *)d_out, stream)) return -1;
  if (train) {
    c->host_params = 0;
    c->b.step++;
  }
  return 0;
}

void rt_ctx_transfers(const RtCtx *c, int64_t counts[4]) {
  for (int k = 0; k < 4; k++) counts[k] = c ? c->xfer[k] : 0;
}

/* the descriptor is produced by the compiler, but a library may be linked against a newer
 * runtime: check what the generic code relies on */
int rt_desc_check(const RtModelDesc *d, char *err, size_t errlen) {
  if (!d) {
    rt_errf(err, errlen, "no model descriptor");
    return -1;
  }
  if (d->abi != RT_MODEL_ABI) {
    rt_errf(err, errlen,
            "model '%s' was compiled for runtime ABI %d, but this runtime has ABI %d; rebuild "
            "it with the nnc this runtime came with",
            d->name ? d->name : "?", d->abi, RT_MODEL_ABI);
    return -1;
  }
  if (d->packed_flags_bytes < 0 || d->packed_flags_at < 0 || d->packed_bytes < 0 ||
      d->packed_flags_at > d->arena_bytes_forward - d->packed_flags_bytes ||
      d->packed_bytes > d->arena_bytes_forward) {
    rt_errf(err, errlen, "model '%s': the descriptor's packed operands lie outside its arena",
            d->name ? d->name : "?");
    return -1;
  }
  for (int i = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    int64_t region = t->kind <= RT_KIND_OPTSTATE ? d->params_bytes : d->io_bytes;
    if (!t->name || t->rank < 0 || t->rank > 8 || (unsigned)t->dtype >= DT_COUNT ||
        t->offset < 0 || t->nbytes < 0 || t->offset + t->nbytes > region ||
        t->nbytes != rt_info_numel(t) * (int64_t)dt_size((DType)t->dtype)) {
      rt_errf(err, errlen, "model '%s': descriptor entry %d ('%s') is inconsistent",
              d->name ? d->name : "?", i, t->name ? t->name : "");
      return -1;
    }
  }
  return 0;
}

/* may this context ever hold training memory? */
static int ctx_trainable(const RtCtx *c) {
  return c->d->train_step && !(c->flags & RT_CTX_INFER);
}

/* the regions in caller memory: params | io | arena, each 64-byte rounded */
static int ctx_place(RtCtx *c, char *mem, size_t size, char *err, size_t errlen) {
  const RtMemFigures *f = &c->fig;
  int64_t need = c->training ? rt_mem_train_ctx(f) : rt_mem_infer_ctx(f);
  int64_t params = c->training ? round64(f->weights + f->optstate) : f->weights;
  if (!mem || ((uintptr_t)mem & 63) || (int64_t)size < need) {
    rt_errf(err, errlen,
            "model '%s' needs %" PRId64 " bytes of 64-byte aligned memory for %s (got %zu "
            "bytes at %p)",
            c->d->name, need, c->training ? "training" : "inference", size, (void *)mem);
    return -1;
  }
  memset(mem, 0, (size_t)need);
  c->b.params = mem;
  c->b.io = mem + params;
  c->b.arena = c->b.io + round64(f->io);
  return 0;
}

/* Owned regions: the weights (with room for the optimizer state when the context may
 * train), io, the arena. The optimizer state's pages are not written before training starts,
 * so until then they are address space, not memory; and pointers into the params region stay
 * valid when training starts. */
static int ctx_alloc(RtCtx *c) {
  const RtMemFigures *f = &c->fig;
  int64_t params = ctx_trainable(c) ? f->weights + f->optstate : f->weights;
  int64_t arena = c->training && f->arena_train > f->arena_forward ? f->arena_train
                                                                     : f->arena_forward;
  if (rt_region_alloc(&c->params, (size_t)params) || rt_region_alloc(&c->io, (size_t)f->io) ||
      rt_region_alloc(&c->arena, (size_t)arena))
    return -1;
  c->b.params = c->params.p;
  c->b.io = c->io.p;
  c->b.arena = c->arena.p;
  return 0;
}

RtCtx *rt_ctx_create_ex(const RtModelDesc *d, int nthreads, unsigned flags, void *mem,
                        size_t size, char *err, size_t errlen) {
  if (rt_desc_check(d, err, errlen)) return NULL;
  RtCtx *c = calloc(1, sizeof *c);
  if (!c) {
    rt_errf(err, errlen, "out of memory");
    return NULL;
  }
  c->d = d;
  c->flags = flags;
  rt_mem_figures(d, &c->fig);
  /* caller memory cannot grow: a context in it trains only if it is laid out for training */
  c->training = ctx_trainable(c) && (mem || (flags & RT_CTX_TRAIN));
  if (mem ? ctx_place(c, mem, size, err, errlen) : ctx_alloc(c)) {
    if (!mem)
      rt_errf(err, errlen, "model '%s' needs %" PRId64 " bytes of memory: out of memory",
              d->name, c->training ? rt_mem_train_ctx(&c->fig) : rt_mem_infer_ctx(&c->fig));
    rt_ctx_destroy(c);
    return NULL;
  }
  /* one thread gets a pool too: it keeps the kernels' scratch buffers between calls */
  if (!(c->pool = rt_pool_create(nthreads))) {
    rt_errf(err, errlen, "cannot start a pool of %d threads", nthreads);
    rt_ctx_destroy(c);
    return NULL;
  }
  c->b.pool = c->pool;
  c->host_params = 1;
  c->packed_stale = 1;
  if (d->device && !(c->dev = d->device->open(d, err, errlen))) {
    rt_ctx_destroy(c);
    return NULL;
  }
  return c;
}

RtCtx *rt_ctx_create(const RtModelDesc *d, int nthreads, char *err, size_t errlen) {
  return rt_ctx_create_ex(d, nthreads, 0, NULL, 0, err, errlen);
}

RtCtx *rt_ctx_create_in(const RtModelDesc *d, int nthreads, void *mem, size_t size, char *err,
                        size_t errlen) {
  if (!mem) { /* NULL means "allocate" to rt_ctx_create_ex */
    if (!rt_desc_check(d, err, errlen))
      rt_errf(err, errlen, "model '%s' needs %" PRId64 " bytes of 64-byte aligned memory (got "
              "%zu bytes at NULL)", d->name, rt_ctx_memory_bytes(d), size);
    return NULL;
  }
  return rt_ctx_create_ex(d, nthreads, 0, mem, size, err, errlen);
}

void rt_ctx_destroy(RtCtx *c) {
  if (!c) return;
  if (c->dev) c->d->device->close(c->dev);
  rt_pool_destroy(c->pool);
  rt_region_free(&c->params);
  rt_region_free(&c->io);
  rt_region_free(&c->arena);
  free(c->prof);
  free(c->bucket);
  free(c->buckets);
  free(c->dptr);
  free(c->dcnt);
  free(c);
}

static int is_state(int kind) {
  return kind == RT_KIND_PARAM || kind == RT_KIND_BUFFER || kind == RT_KIND_OPTSTATE;
}

/* a state tensor this context holds (optimizer state only while training) */
static int ctx_holds(const RtCtx *c, const RtTensorInfo *t) {
  return is_state(t->kind) && (t->kind != RT_KIND_OPTSTATE || c->training);
}

/* Adds the optimizer state (from its initializers, into the room ctx_alloc left) and the
 * training arena, which replaces the forward arena. */
static int ctx_start_training(RtCtx *c) {
  const RtModelDesc *d = c->d;
  if (c->training) return 0;
  if (!d->train_step)
    return ctx_fail(c, "model '%s' has no training step (its .nn file has no train section)",
                    d->name);
  if (c->flags & RT_CTX_INFER)
    return ctx_fail(c, "model '%s': this context was created for inference only "
                       "(RT_CTX_INFER); create one without it to train", d->name);
  const RtMemFigures *f = &c->fig;
  int64_t arena = f->arena_train > f->arena_forward ? f->arena_train : f->arena_forward;
  RtRegion big;
  if (dev_params_to_host(c)) return -1;
  if (rt_region_alloc(&big, (size_t)arena))
    return ctx_fail(c, "model '%s' needs %" PRId64 " bytes of memory to train: out of memory",
                    d->name, rt_mem_train_ctx(f));
  rt_region_free(&c->arena);
  c->arena = big;
  c->b.arena = c->arena.p;
  c->training = 1;
  c->dev_params = 0;
  for (int i = 0; i < d->ntensors; i++)
    if (d->tensors[i].kind == RT_KIND_OPTSTATE)
      rt_init_tensor(&d->tensors[i], c->seed, rt_ctx_data(c, i));
  return 0;
}

int rt_ctx_prepare_training(RtCtx *c) { return ctx_start_training(c); }

const RtModelDesc *rt_ctx_desc(const RtCtx *c) { return c ? c->d : NULL; }
const char *rt_ctx_error(const RtCtx *c) { return c ? c->err : "no context"; }
const char *rt_ctx_warning(const RtCtx *c) { return c ? c->warn : ""; }
int rt_ctx_null_arg(RtCtx *c, const char *arg) {
  return c ? ctx_fail(c, "argument '%s' is NULL", arg) : -1;
}
int rt_ctx_find(const RtCtx *c, const char *name) {
  return c && name ? rt_desc_find(c->d, name) : -1;
}
int32_t rt_ctx_threads(const RtCtx *c) { return c ? rt_pool_size(c->pool) : 0; }
int64_t rt_ctx_step(const RtCtx *c) { return c ? c->b.step : -1; }
void rt_ctx_set_step(RtCtx *c, int64_t step) {
  if (c) c->b.step = step;
}
void rt_ctx_set_seed(RtCtx *c, uint64_t seed) {
  if (c) c->b.seed = seed;
}

/* a tensor's host copy; with a device, a state tensor's is made current first, and when the
 * caller may write it (write) the device's copy is then out of date */
static void *ctx_data(RtCtx *c, int idx, int write) {
  if (!c || idx < 0 || idx >= c->d->ntensors) return NULL;
  const RtTensorInfo *t = &c->d->tensors[idx];
  if (t->kind == RT_KIND_OPTSTATE && !c->training) return NULL;
  if (!is_state(t->kind)) return c->b.io + t->offset;
  if (dev_params_to_host(c)) return NULL;
  if (write) c->dev_params = 0, c->packed_stale = 1;
  return c->b.params + t->offset;
}

void *rt_ctx_data(RtCtx *c, int idx) { return ctx_data(c, idx, 1); }
const void *rt_ctx_data_read(RtCtx *c, int idx) { return ctx_data(c, idx, 0); }

static unsigned char *ls_state(RtCtx *c);

int rt_ctx_init(RtCtx *c, uint64_t seed) {
  if (!c) return -1;
  c->host_params = 1; /* every tensor held is written: no download first */
  for (int i = 0; i < c->d->ntensors; i++)
    if (ctx_holds(c, &c->d->tensors[i]))
      rt_init_tensor(&c->d->tensors[i], seed, rt_ctx_data(c, i));
  unsigned char *st = ls_state(c);
  if (st) memset(st, 0, 16); /* the build's initial loss scale */
  c->seed = seed;
  c->b.step = 0;
  return 0;
}

/* ---- the loss-scale state of a device build (RtDevice.loss_scale_state) ------------------- */

/* its 16 bytes in the host params region (made current), or NULL: the build has none or the
 * context holds no training memory */
static unsigned char *ls_state(RtCtx *c) {
  const RtDevice *D = c->d->device;
  if (!D || D->loss_scale_state < 0 || !c->training || dev_params_to_host(c)) return NULL;
  return (unsigned char *)c->b.params + D->loss_scale_state;
}

/* the state a checkpoint's metadata gives (nnc.loss_scale, nnc.loss_scale_good_steps): a
 * valid one, or all zero without them (the build's initial scale on the next step); -1 with
 * the message set when they are malformed */
static int ls_parse(RtCtx *c, const RtTensorSet *meta, const char *path, uint32_t w[4]) {
  const char *s = rt_set_meta(meta, "nnc.loss_scale"), *g = rt_set_meta(meta, "nnc.loss_scale_good_steps");
  memset(w, 0, 4 * sizeof *w);
  if (!s) return 0;
  char *e1 = NULL, *e2 = NULL;
  double scale = strtod(s, &e1);
  long long good = g ? strtoll(g, &e2, 10) : 0;
  int ex = 0;
  if (e1 == s || *e1 || !(scale >= 0x1p-24 && scale <= 0x1p24) || frexp(scale, &ex) != 0.5)
    return ctx_fail(c, "%s: metadata nnc.loss_scale '%s' is not a power of two from 2^-24 to 2^24", path, s);
  if (g && (e2 == g || *e2 || good < 0 || good > (long long)UINT32_MAX))
    return ctx_fail(c, "%s: metadata nnc.loss_scale_good_steps '%s' is not a count", path, g);
  float f = (float)scale;
  w[0] = RT_LOSS_SCALE_MAGIC, w[2] = (uint32_t)good;
  memcpy(&w[1], &f, sizeof f);
  return 0;
}

/* the scale and good steps as checkpoint metadata, when the state is valid */
static int ls_meta(RtCtx *c, cJSON *meta) {
  const unsigned char *st = ls_state(c);
  uint32_t w[4];
  if (!st) return 0;
  memcpy(w, st, sizeof w);
  if (w[0] != RT_LOSS_SCALE_MAGIC) return 0;
  float f;
  memcpy(&f, &w[1], sizeof f);
  char scale[48], good[24];
  snprintf(scale, sizeof scale, "%.9g", (double)f);
  snprintf(good, sizeof good, "%" PRIu32, w[2]);
  return cJSON_AddStringToObject(meta, "nnc.loss_scale", scale) &&
         cJSON_AddStringToObject(meta, "nnc.loss_scale_good_steps", good) ? 0 : -1;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static int same_shape(const RtTensorInfo *t, const RtStItem *x) {
  if (t->rank != x->rank) return 0;
  for (int k = 0; k < t->rank; k++)
    if (t->shape[k] != x->shape[k]) return 0;
  return 1;
}

static void item_type_str(const RtStItem *x, char *buf, size_t n) {
  RtTensorInfo tmp = {.dtype = (int32_t)x->dt, .rank = x->rank};
  for (int k = 0; k < x->rank && k < 8; k++) tmp.shape[k] = x->shape[k];
  rt_info_type_str(&tmp, buf, n);
}

/* does the file hold optimizer state of this model? */
static int file_has_optstate(const RtCtx *c, const RtStView *v) {
  for (int i = 0; i < c->d->ntensors; i++)
    if (c->d->tensors[i].kind == RT_KIND_OPTSTATE && rt_st_find(v, c->d->tensors[i].name))
      return 1;
  return 0;
}

/* Checks tensor i of the model against the file; a dtype that differs is converted into
 * *conv (malloc'd). 0, 1 (absent, allowed) or -1 (message set). */
static int load_check(RtCtx *c, const RtStView *v, const char *path, int i, void **conv) {
  const RtTensorInfo *t = &c->d->tensors[i];
  const RtStItem *x = rt_st_find(v, t->name);
  char want[128], got[128], why[256];
  rt_info_type_str(t, want, sizeof want);
  if (!x) {
    if (t->kind != RT_KIND_PARAM) return 1;
    return ctx_fail(c, "%s: missing tensor '%s' (%s) of model '%s'", path, t->name, want,
                    c->d->name);
  }
  if (!same_shape(t, x)) {
    item_type_str(x, got, sizeof got);
    return ctx_fail(c, "%s: tensor '%s' is %s, but model '%s' expects %s", path, t->name, got,
                    c->d->name, want);
  }
  if (x->dt != (DType)t->dtype) {
    if (!(*conv = malloc((size_t)t->nbytes + 1)))
      return ctx_fail(c, "%s: out of memory converting tensor '%s'", path, t->name);
    if (rt_convert_elems(x->data, x->dt, *conv, (DType)t->dtype, (size_t)rt_info_numel(t), why,
                         sizeof why))
      return ctx_fail(c, "%s: tensor '%s': cannot convert %s to %s: %s", path, t->name,
                      dt_name(x->dt), dt_name((DType)t->dtype), why);
  }
  if (rt_check_finite(t, *conv ? *conv : x->data, rt_info_numel(t), "tensor", why, sizeof why))
    return ctx_fail(c, "%s: %s", path, why);
  return 0;
}

/* the step counter: ours, else the optimizer's (files written by `nnc run --train`) */
static int64_t load_step(const RtStView *v) {
  const char *st = rt_set_meta(&v->meta, "nnc.step");
  if (st) return strtoll(st, NULL, 10);
  const RtStItem *os = rt_st_find(v, "optimizer.step");
  int64_t step = 0;
  if (os && os->nbytes == dt_size(os->dt) && os->rank <= 1 &&
      rt_convert_elems(os->data, os->dt, &step, DT_I64, 1, NULL, 0))
    step = 0;
  return step;
}

static int count_unknown(const RtCtx *c, const RtStView *v) {
  int unknown = 0;
  for (int k = 0; k < v->n; k++) {
    int i = rt_desc_find(c->d, v->items[k].name);
    if (i < 0 || !is_state(c->d->tensors[i].kind)) unknown++;
  }
  return unknown;
}

int rt_ctx_load(RtCtx *c, const char *path, int *nunknown) {
  if (!c) return -1;
  if (!path) return ctx_fail(c, "load: no file name (NULL path)");
  const RtModelDesc *d = c->d;
  RtStView v;
  char err[512];
  if (rt_st_open(path, &v, err, sizeof err)) return ctx_fail(c, "%s", err);
  /* a context that may train takes the optimizer state a checkpoint brings; an inference
   * context never reads it */
  bool ls_file = c->d->device && c->d->device->loss_scale_state >= 0 && rt_set_meta(&v.meta, "nnc.loss_scale");
  if (ctx_trainable(c) && !c->training && (file_has_optstate(c, &v) || ls_file) && ctx_start_training(c)) {
    rt_st_close(&v);
    return -1;
  }
  void **conv = calloc((size_t)d->ntensors + 1, sizeof *conv);
  int rc = conv ? 0 : ctx_fail(c, "%s: out of memory", path);
  uint32_t ls[4];
  if (!rc) rc = ls_parse(c, &v.meta, path, ls);
  /* validate and convert everything before touching the parameters, so a bad file leaves
   * the context as it was */
  for (int i = 0; !rc && i < d->ntensors; i++)
    if (ctx_holds(c, &d->tensors[i]) && load_check(c, &v, path, i, &conv[i]) < 0) rc = -1;
  if (!rc) c->host_params = 1; /* every tensor held is written below: no download first */
  for (int i = 0; !rc && i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (!ctx_holds(c, t)) continue;
    const RtStItem *x = rt_st_find(&v, t->name);
    if (x)
      memcpy(rt_ctx_data(c, i), conv[i] ? conv[i] : x->data, (size_t)t->nbytes);
    else
      rt_init_tensor(t, 0, rt_ctx_data(c, i));
  }
  if (!rc) {
    unsigned char *st = ls_state(c);
    if (st) memcpy(st, ls, sizeof ls);
    c->b.step = load_step(&v);
    if (nunknown) *nunknown = count_unknown(c, &v);
    c->warn[0] = 0;
    rt_check_ckpt_meta(d, &v.meta, c->warn, sizeof c->warn);
  }
  for (int i = 0; conv && i < d->ntensors; i++) free(conv[i]);
  free(conv);
  rt_st_close(&v);
  return rc;
}

/* the checkpoint's metadata: the caller's, with the model's keys set over it */
static char *save_meta(RtCtx *c, const char *path, const char *extra_meta_json) {
  const RtModelDesc *d = c->d;
  cJSON *meta = extra_meta_json ? cJSON_Parse(extra_meta_json) : cJSON_CreateObject();
  if (!cJSON_IsObject(meta)) {
    cJSON_Delete(meta);
    ctx_fail(c, "%s: the extra metadata is not a JSON object", path);
    return NULL;
  }
  char step[32];
  snprintf(step, sizeof step, "%" PRId64, c->b.step);
  const char *keys[] = {"format", "nnc.model", "nnc.dims", "nnc.optimizer", "nnc.step"};
  const char *vals[] = {"pt", d->name ? d->name : "", d->dims ? d->dims : "",
                        d->optimizer ? d->optimizer : "", step};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    cJSON_DeleteItemFromObjectCaseSensitive(meta, keys[k]);
    cJSON_AddStringToObject(meta, keys[k], vals[k]);
  }
  cJSON_DeleteItemFromObjectCaseSensitive(meta, "nnc.loss_scale");
  cJSON_DeleteItemFromObjectCaseSensitive(meta, "nnc.loss_scale_good_steps");
  char *text = ls_meta(c, meta) ? NULL : cJSON_PrintUnformatted(meta);
  cJSON_Delete(meta);
  if (!text) ctx_fail(c, "%s: out of memory", path);
  return text;
}

/* The set holds the context's own memory (no copy): its tensors are detached before the set
 * is freed. */
static void borrowed_set_free(RtTensorSet *set) {
  for (int k = 0; k < set->n; k++) set->t[k].data = NULL;
  rt_set_free(set);
}

int rt_ctx_save(RtCtx *c, const char *path, const char *extra_meta_json) {
  if (!c) return -1;
  if (!path) return ctx_fail(c, "save: no file name (NULL path)");
  const RtModelDesc *d = c->d;
  RtTensorSet set = {0};
  char err[512];
  int rc = -1;
  char *text = NULL;
  for (int i = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (!ctx_holds(c, t)) continue;
    RtTensor x = {.dt = (DType)t->dtype, .rank = t->rank, .data = ctx_data(c, i, 0),
                  .nbytes = (size_t)t->nbytes};
    memcpy(x.shape, t->shape, sizeof x.shape);
    if (rt_set_add(&set, t->name, &x, err, sizeof err)) {
      ctx_fail(c, "%s: %s", path, err);
      goto out;
    }
  }
  if (!(text = save_meta(c, path, extra_meta_json))) goto out;
  if (rt_st_write(path, &set, text, err, sizeof err)) {
    ctx_fail(c, "%s", err);
    goto out;
  }
  rc = 0;
out:
  free(text);
  borrowed_set_free(&set);
  return rc;
}

/* ---- running ------------------------------------------------------------------------------ */

/* the labels and indices the io region holds, before generated code indexes memory with them;
 * `first`: the sample the chunk starts at, for the message's position */
static int check_io_inputs(RtCtx *c, int64_t first) {
  const RtModelDesc *d = c->d;
  for (int k = 0, n = rt_desc_count(d, RT_KIND_INPUT); k < n; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_INPUT, k)];
    int64_t ne = rt_info_numel(t), per = rt_info_batched(d, t) ? ne / t->shape[0] : 0;
    if (rt_check_indices(t, c->b.io + t->offset, ne, first * per, c->err, sizeof c->err))
      return -1;
  }
  return 0;
}

int rt_ctx_forward(RtCtx *c) {
  if (!c) return -1;
  if (!c->d->forward) return ctx_fail(c, "model '%s' has no forward entry", c->d->name);
  if (check_io_inputs(c, 0)) return -1;
  return ctx_run(c, 0);
}

/* copies samples [s, s+m) of a batched tensor (or all of an unbatched one) into the io
 * region, zero-filling the rest of the chunk */
static void put_chunk(RtCtx *c, int idx, const void *src, int64_t s, int64_t m) {
  const RtTensorInfo *t = &c->d->tensors[idx];
  char *dst = rt_ctx_data(c, idx);
  if (!rt_info_batched(c->d, t)) {
    memcpy(dst, src, (size_t)t->nbytes);
    return;
  }
  size_t sample = (size_t)(t->nbytes / t->shape[0]);
  memcpy(dst, (const char *)src + (size_t)s * sample, (size_t)m * sample);
  memset(dst + (size_t)m * sample, 0, (size_t)(t->shape[0] - m) * sample);
}

static void get_chunk(RtCtx *c, int idx, void *dstv, int64_t s, int64_t m) {
  const RtTensorInfo *t = &c->d->tensors[idx];
  const char *src = rt_ctx_data(c, idx);
  if (!rt_info_batched(c->d, t)) {
    memcpy(dstv, src, (size_t)t->nbytes);
    return;
  }
  size_t sample = (size_t)(t->nbytes / t->shape[0]);
  memcpy((char *)dstv + (size_t)s * sample, src, (size_t)m * sample);
}

int rt_ctx_infer(RtCtx *c, int64_t n, const void *const *in, void *const *out) {
  if (!c) return -1;
  const RtModelDesc *d = c->d;
  if (!d->forward) return ctx_fail(c, "model '%s' has no forward entry", d->name);
  int64_t B = d->batch > 0 ? d->batch : 1;
  if (n < 1 || (d->batch <= 0 && n != 1))
    return ctx_fail(c, "model '%s': cannot run on %" PRId64 " samples", d->name, n);
  int nin = rt_desc_count(d, RT_KIND_INPUT), nout = rt_desc_count(d, RT_KIND_OUTPUT);
  for (int64_t s = 0; s < n; s += B) {
    int64_t m = n - s < B ? n - s : B;
    for (int k = 0; k < nin; k++)
      if (in && in[k]) put_chunk(c, rt_desc_nth(d, RT_KIND_INPUT, k), in[k], s, m);
    if (check_io_inputs(c, s) || ctx_run(c, 0)) return -1;
    for (int k = 0; k < nout; k++)
      if (out && out[k]) get_chunk(c, rt_desc_nth(d, RT_KIND_OUTPUT, k), out[k], s, m);
  }
  return 0;
}

/* the batch of a training step into the io region, checked */
static int step_inputs(RtCtx *c, const void *const *in) {
  c->packed_stale = 1; /* a training entry follows: it changes the params and the arena */
  const RtModelDesc *d = c->d;
  if (ctx_start_training(c)) return -1;
  int nin = rt_desc_count(d, RT_KIND_INPUT);
  for (int k = 0; k < nin; k++) {
    int idx = rt_desc_nth(d, RT_KIND_INPUT, k);
    if (in && in[k]) memcpy(rt_ctx_data(c, idx), in[k], (size_t)d->tensors[idx].nbytes);
  }
  return check_io_inputs(c, 0);
}

static int step_check_hooks(RtCtx *c);
static int dev_overlap_begin(RtCtx *c);

static void step_done(RtCtx *c, float *loss) {
  c->b.step++;
  if (loss) {
    int li = rt_desc_nth(c->d, RT_KIND_LOSS, 0);
    *loss = li >= 0 ? *(const float *)rt_ctx_data(c, li) : 0.0f;
  }
}

int rt_ctx_train_step(RtCtx *c, const void *const *in, float *loss) {
  if (!c) return -1;
  if (step_inputs(c, in)) return -1;
  const RtModelDesc *d = c->d;
  if (c->dev) { /* a device build: its hooks are device ones (RtDevice.run_split) */
    if (c->dov && dev_overlap_begin(c)) return -1;
    if (ctx_run(c, 1))
      return c->dov && c->ov_failed ? ctx_fail(c, "the all-reduce of the gradients failed") : -1;
  } else if (c->b.hooks && d->train_backward && d->train_apply) { /* a failed hook updates nothing */
    d->train_backward(&c->b);
    if (step_check_hooks(c)) return -1;
    d->train_apply(&c->b);
  } else {
    d->train_step(&c->b);
    if (step_check_hooks(c)) return -1;
  }
  step_done(c, loss);
  return 0;
}

/* the buckets planned again at the next step */
static void bucket_reset(RtCtx *c) {
  free(c->bucket);
  free(c->buckets);
  free(c->dptr);
  free(c->dcnt);
  c->bucket = NULL;
  c->buckets = NULL;
  c->dptr = NULL;
  c->dcnt = NULL;
  c->nbuckets = 0;
}

void rt_ctx_set_bucket_bytes(RtCtx *c, int64_t bytes) {
  if (!c) return;
  c->bucket_bytes = bytes < 4 ? 4 : bytes;
  bucket_reset(c);
}

/* RtHooks.sum_f64: the application's sum */
static int ctx_stats_sum(double *buf, int64_t n, void *user) {
  RtCtx *c = user;
  return c->stats_sum(buf, n, c->stats_user);
}

/* RtHooks.grads_device: the application's device all-reduce */
static int ctx_grads_device(uint64_t arena, void *user) {
  RtCtx *c = user;
  return c->dev_allreduce(arena, c->d->grads, c->d->ngrads, c->dev_user);
}

/* RtHooks.sum_f64_device: the application's sum on the device */
static int ctx_stats_sum_device(uint64_t buf, int64_t n, void *user) {
  RtCtx *c = user;
  return c->dev_stats_sum(buf, n, c->dev_stats_user);
}

static void ctx_dev_ready(int32_t kernel, uint64_t arena, void *stream, void *user);
static int ctx_dev_wait(uint64_t arena, void *stream, void *user);

/* b.hooks for the callbacks set (NULL without any); a device's overlapped all-reduce replaces
 * its all-reduce after the backward launches */
static void ctx_hooks(RtCtx *c) {
  c->hooks = (RtHooks){.sum_f64 = c->stats_sum ? ctx_stats_sum : NULL,
                       .grads_device = c->dev_allreduce && !c->dov ? ctx_grads_device : NULL,
                       .sum_f64_device = c->dev_stats_sum ? ctx_stats_sum_device : NULL,
                       .grads_ready_device = c->dov ? ctx_dev_ready : NULL,
                       .grads_wait_device = c->dov ? ctx_dev_wait : NULL, .user = c};
  c->b.hooks = c->stats_sum || c->dev_allreduce || c->dev_stats_sum || c->dov ? &c->hooks : NULL;
}

void rt_ctx_set_device_overlap(RtCtx *c, const RtAllreduceAsync *host,
                               const RtDeviceAllreduceAsync *dev) {
  if (!c) return;
  c->dov_host = host ? *host : (RtAllreduceAsync){0};
  c->dov_dev = dev ? *dev : (RtDeviceAllreduceAsync){0};
  c->dov = (host && host->start && host->wait) || (dev && dev->start && dev->wait);
  bucket_reset(c); /* planned again: listed or gathered */
  ctx_hooks(c);
}

void rt_ctx_set_stats_sum_device(RtCtx *c, RtStatsSumDeviceFn fn, void *user) {
  if (!c) return;
  c->dev_stats_sum = fn;
  c->dev_stats_user = user;
  ctx_hooks(c);
}

void rt_ctx_set_stats_sum(RtCtx *c, RtStatsSumFn sum, void *user) {
  if (!c) return;
  c->stats_sum = sum;
  c->stats_user = user;
  ctx_hooks(c);
}

void rt_ctx_set_device_allreduce(RtCtx *c, RtDeviceAllreduceFn fn, void *user) {
  if (!c) return;
  c->dev_allreduce = fn;
  c->dev_user = user;
  ctx_hooks(c);
}

/* floats in a bucket */
static size_t bucket_floats(const RtCtx *c) {
  return (size_t)((c->bucket_bytes ? c->bucket_bytes : RT_BUCKET_BYTES) / (int64_t)sizeof(float));
}

static float *grad_ptr(RtCtx *c, int64_t i) { return (float *)(c->grad_base + c->d->grads[i].offset); }

/* appends bucket b to the partition; false when out of memory */
static bool bucket_push(RtCtx *c, RtBucket b, int64_t *cap) {
  if (c->nbuckets == *cap) {
    *cap = *cap ? 2 * *cap : 16;
    RtBucket *nb = realloc(c->buckets, (size_t)*cap * sizeof *nb);
    if (!nb) return false;
    c->buckets = nb;
  }
  c->buckets[c->nbuckets++] = b;
  return true;
}

/* The buckets, in reverse gradient order (the order the backward pass finishes them):
 * gradients of at most a bucket are gathered into consecutive slices of one buffer, up to a
 * bucket a slice; a larger one is reduced in place in bucket-sized pieces. Both the blocking
 * and the overlapped step use this partition, so they reduce the same buffers. */
static int bucket_plan(RtCtx *c) {
  const RtModelDesc *d = c->d;
  size_t cap = bucket_floats(c), total = 0;
  int64_t bcap = 0;
  RtBucket cur = {.grad = -1, .first = -1};
  for (int64_t j = 0; j <= d->ngrads; j++) {
    int64_t i = d->ngrads - 1 - j; /* -1: the end */
    size_t n = i >= 0 ? (size_t)d->grads[i].numel : 0;
    if (cur.count && (i < 0 || n > cap || cur.count + n > cap)) {
      if (!bucket_push(c, cur, &bcap)) goto oom;
      cur = (RtBucket){.grad = -1, .first = -1, .at = total};
    }
    if (i < 0) break;
    for (size_t s = 0; n > cap && s < n; s += cap) /* in place, piece by piece */
      if (!bucket_push(c, (RtBucket){.grad = i, .piece = s, .count = n - s < cap ? n - s : cap,
                                     .ready = d->grads[i].ready}, &bcap))
        goto oom;
    if (n > cap) continue;
    if (!cur.count) cur.first = i, cur.at = total;
    cur.last = i;
    cur.count += n;
    total += n;
    cur.ready = cur.ready > d->grads[i].ready ? cur.ready : d->grads[i].ready;
  }
  if (c->dov_dev.start) { /* on the device: each bucket's buffers listed, none gathered */
    c->dptr = malloc((size_t)(d->ngrads + 1) * sizeof *c->dptr);
    c->dcnt = malloc((size_t)(d->ngrads + 1) * sizeof *c->dcnt);
    return c->dptr && c->dcnt ? 0 : ctx_fail(c, "out of memory for the all-reduce buckets");
  }
  if (!total || (c->bucket = malloc(total * sizeof(float)))) return 0;
  return ctx_fail(c, "out of memory for the all-reduce buffer (%zu bytes)", total * sizeof(float));
oom:
  return ctx_fail(c, "out of memory for the all-reduce buckets");
}

/* bucket b's buffer; gathered buckets copy their gradients in (to 0) or back out (to 1) */
static float *bucket_buf(RtCtx *c, const RtBucket *b, int back) {
  if (b->grad >= 0) return grad_ptr(c, b->grad) + b->piece;
  float *buf = c->bucket + b->at;
  size_t at = 0;
  for (int64_t i = b->first; i >= b->last; i--) {
    size_t n = (size_t)c->d->grads[i].numel;
    if (back) memcpy(grad_ptr(c, i), buf + at, n * sizeof(float));
    else memcpy(buf + at, grad_ptr(c, i), n * sizeof(float));
    at += n;
  }
  return buf;
}

/* every gradient through fn, bucket by bucket (rt_ctx_train_step_allreduce) */
static int ctx_allreduce(RtCtx *c, RtAllreduceFn fn, void *user) {
  for (int64_t k = 0; k < c->nbuckets; k++) {
    const RtBucket *b = &c->buckets[k];
    if (fn(bucket_buf(c, b, 0), b->count, user))
      return ctx_fail(c, "the all-reduce of the gradients failed");
    if (b->grad < 0) bucket_buf(c, b, 1);
  }
  return 0;
}

/* starts bucket b: gathered into its buffer (or in place) for c->ov, or its gradients' device
 * buffers listed for c->ovd */
static int bucket_start(RtCtx *c, const RtBucket *b) {
  if (!c->ovd) return c->ov->start(bucket_buf(c, b, 0), b->count, c->ov->user);
  const RtGradInfo *g = c->d->grads;
  uint64_t base = (uint64_t)(uintptr_t)c->grad_base;
  int64_t k = 0;
  if (b->grad >= 0)
    c->dptr[k] = base + (uint64_t)g[b->grad].offset + b->piece * sizeof(float), c->dcnt[k++] = (int64_t)b->count;
  else
    for (int64_t i = b->first; i >= b->last; i--)
      c->dptr[k] = base + (uint64_t)g[i].offset, c->dcnt[k++] = g[i].numel;
  return c->ovd->start(c->dptr, c->dcnt, k, c->ov_stream, c->ovd->user);
}

/* the buckets ready after kernel `kernel` (all of them for INT32_MAX), started in order */
static void overlap_start(RtCtx *c, int32_t kernel) {
  for (int64_t k = c->nstarted; k < c->nbuckets && !c->ov_failed; k++) {
    RtBucket *b = &c->buckets[k];
    if (b->started || b->ready > kernel) continue;
    b->started = 1;
    if (bucket_start(c, b)) c->ov_failed = 1;
  }
  while (c->nstarted < c->nbuckets && c->buckets[c->nstarted].started) c->nstarted++;
}

/* RtHooks.grads_ready of an overlapped step */
static void overlap_ready(int32_t kernel, void *user) { overlap_start(user, kernel); }

/* a device step with the overlapped all-reduce: the buckets planned, none started */
static int dev_overlap_begin(RtCtx *c) {
  if (!c->d->device->run_split)
    return ctx_fail(c, "model '%s': this %s build has no data-parallel step (build it with --mpi)",
                    c->d->name, c->d->device->name);
  if (!c->buckets && c->d->ngrads && bucket_plan(c)) return -1;
  for (int64_t k = 0; k < c->nbuckets; k++) c->buckets[k].started = 0;
  c->nstarted = 0;
  c->ov_failed = 0;
  c->ov = c->dov_dev.start ? NULL : &c->dov_host;
  c->ovd = c->dov_dev.start ? &c->dov_dev : NULL;
  return 0;
}

/* RtHooks.grads_ready_device: the buckets final after kernel `kernel`, started on stream */
static void ctx_dev_ready(int32_t kernel, uint64_t arena, void *stream, void *user) {
  RtCtx *c = user;
  c->grad_base = (char *)(uintptr_t)arena;
  c->ov_stream = stream;
  overlap_start(c, kernel);
}

/* RtHooks.grads_wait_device: any bucket left started, every one completed (on a GPU: queued
 * on stream), the gathered ones copied back into the (host-memory) arena */
static int ctx_dev_wait(uint64_t arena, void *stream, void *user) {
  RtCtx *c = user;
  c->grad_base = (char *)(uintptr_t)arena;
  c->ov_stream = stream;
  overlap_start(c, INT32_MAX);
  int rc = c->ovd ? c->ovd->wait(stream, c->ovd->user) : c->ov->wait(c->ov->user);
  if (rc) c->ov_failed = 1;
  for (int64_t k = 0; !c->ov_failed && !c->ovd && k < c->nbuckets; k++)
    if (c->buckets[k].grad < 0) bucket_buf(c, &c->buckets[k], 1);
  return c->ov_failed ? -1 : 0;
}

static int step_check_hooks(RtCtx *c) {
  if (!c->hooks.failed) return 0;
  c->hooks.failed = 0;
  return ctx_fail(c, "the sum of the batchnorm statistics over the processes failed");
}

/* the model's step can be split around an all-reduce, and its buckets are planned */
static int split_ready(RtCtx *c, const void *const *in) {
  const RtModelDesc *d = c->d;
  if (d->device)
    return ctx_fail(c, "model '%s': a %s build cannot all-reduce its gradients yet "
                       "(data-parallel training on GPUs is not available)", d->name, d->device->name);
  if (d->train_step && (!d->train_backward || !d->train_apply))
    return ctx_fail(c, "model '%s': this build cannot all-reduce its gradients: its optimizer "
                       "step is not separate from the backward pass (a --memory budget's "
                       "schedule updates each weight as soon as its gradient is ready)",
                    d->name);
  if (step_inputs(c, in)) return -1;
  if (!c->buckets && d->ngrads && bucket_plan(c)) return -1;
  c->grad_base = c->b.arena;
  return 0;
}

int rt_ctx_train_step_allreduce(RtCtx *c, const void *const *in, RtAllreduceFn fn, void *user,
                                float *loss) {
  if (!c) return -1;
  if (!fn) return rt_ctx_train_step(c, in, loss);
  if (split_ready(c, in)) return -1;
  c->d->train_backward(&c->b);
  if (step_check_hooks(c) || ctx_allreduce(c, fn, user)) return -1;
  c->d->train_apply(&c->b);
  step_done(c, loss);
  return 0;
}

int rt_ctx_train_step_overlap(RtCtx *c, const void *const *in, RtAllreduceStartFn start,
                              RtAllreduceWaitFn wait, void *user, float *loss) {
  if (!c) return -1;
  if (!start || !wait) return ctx_fail(c, "the overlapped all-reduce needs start and wait");
  RtAllreduceAsync a = {start, wait, user}, *ar = &a;
  if (split_ready(c, in)) return -1;
  for (int64_t k = 0; k < c->nbuckets; k++) c->buckets[k].started = 0;
  c->nstarted = 0;
  c->ov = ar;
  c->ovd = NULL;
  c->ov_failed = 0;
  c->hooks.grads_ready = overlap_ready;
  c->hooks.user = c;
  c->b.hooks = &c->hooks;
  c->d->train_backward(&c->b);
  overlap_start(c, INT32_MAX);
  int failed = c->hooks.failed;
  ctx_hooks(c); /* grads_ready off again */
  c->hooks.failed = failed;
  int wrc = ar->wait(ar->user); /* every started bucket, even after a failure */
  c->ov = NULL;
  if (c->ov_failed || wrc) return ctx_fail(c, "the all-reduce of the gradients failed");
  if (step_check_hooks(c)) return -1;
  for (int64_t k = 0; k < c->nbuckets; k++)
    if (c->buckets[k].grad < 0) bucket_buf(c, &c->buckets[k], 1);
  c->d->train_apply(&c->b);
  step_done(c, loss);
  return 0;
}

/* ---- per-kernel profiling (rt_profile.h) ------------------------------------------------ */

int rt_ctx_profile(RtCtx *c, int on) {
  if (!c) return -1;
  if (!on) {
    free(c->prof);
    c->prof = c->b.prof = NULL;
    return 0;
  }
  if (c->prof) return 0;
  int32_t nk = c->d->nkernels_forward > c->d->nkernels_train ? c->d->nkernels_forward
                                                             : c->d->nkernels_train;
  c->prof = calloc((size_t)nk + 1, sizeof *c->prof);
  if (!c->prof) {
    snprintf(c->err, sizeof c->err, "out of memory");
    return -1;
  }
  c->b.prof = c->prof;
  return 0;
}

int rt_ctx_profile_last(const RtCtx *c, int train, double *secs, int n) {
  if (!c || !c->prof) return 0;
  int nk = train ? c->d->nkernels_train : c->d->nkernels_forward;
  if (nk > n) nk = n;
  for (int i = 0; i < nk; i++) secs[i] = (double)(c->prof[i + 1] - c->prof[i]) * 1e-9;
  return nk;
}

const char *rt_ctx_kernel_name(const RtCtx *c, int train, int i, double *est_s) {
  if (!c) return NULL;
  int nk = train ? c->d->nkernels_train : c->d->nkernels_forward;
  const RtKernelInfo *ks = train ? c->d->kernels_train : c->d->kernels_forward;
  if (!ks || i < 0 || i >= nk) return NULL;
  if (est_s) *est_s = rt_prof_estimate(&ks[i], rt_ctx_threads(c));
  return ks[i].name;
}
