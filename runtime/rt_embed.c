/* rt_embed.c — the model context behind generated programs and the embedding API: one
 * RtModelDesc, its three memory regions, a thread pool and the step counter, with checkpoint
 * load/save and chunked forward passes. Generic over the descriptor, so the per-model code
 * (NAME.h, the program main) is only thin wrappers. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_io.h"
#include "rt_program.h"
#include "rt_threads.h"

struct RtCtx {
  const RtModelDesc *d;
  RtModelBufs b;
  RtPool *pool;
  void *mem;
  int own_mem;
  char err[1024];
  char warn[512]; /* rt_ctx_warning */
};

static int64_t round64(int64_t n) { return (n + 63) / 64 * 64; }

static int64_t arena_bytes(const RtModelDesc *d) {
  return d->arena_bytes_forward > d->arena_bytes_train ? d->arena_bytes_forward
                                                       : d->arena_bytes_train;
}

int64_t rt_ctx_memory_bytes(const RtModelDesc *d) {
  return round64(d->params_bytes) + round64(d->io_bytes) + round64(arena_bytes(d));
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

static RtCtx *ctx_new(const RtModelDesc *d, int nthreads, void *mem, int own, char *err,
                      size_t errlen) {
  RtCtx *c = calloc(1, sizeof *c);
  if (!c) {
    rt_errf(err, errlen, "out of memory");
    if (own) free(mem);
    return NULL;
  }
  c->d = d;
  c->mem = mem;
  c->own_mem = own;
  c->b.params = mem;
  c->b.io = (char *)mem + round64(d->params_bytes);
  c->b.arena = c->b.io + round64(d->io_bytes);
  if (nthreads != 1) {
    c->pool = rt_pool_create(nthreads);
    if (!c->pool) {
      rt_errf(err, errlen, "cannot start a pool of %d threads", nthreads);
      rt_ctx_destroy(c);
      return NULL;
    }
  }
  c->b.pool = c->pool;
  return c;
}

RtCtx *rt_ctx_create(const RtModelDesc *d, int nthreads, char *err, size_t errlen) {
  if (rt_desc_check(d, err, errlen)) return NULL;
  int64_t total = rt_ctx_memory_bytes(d);
  void *mem = aligned_alloc(64, (size_t)(total ? total : 64));
  if (!mem) {
    rt_errf(err, errlen, "model '%s' needs %" PRId64 " bytes of memory: out of memory", d->name,
            total);
    return NULL;
  }
  memset(mem, 0, (size_t)total);
  return ctx_new(d, nthreads, mem, 1, err, errlen);
}

RtCtx *rt_ctx_create_in(const RtModelDesc *d, int nthreads, void *mem, size_t size, char *err,
                        size_t errlen) {
  if (rt_desc_check(d, err, errlen)) return NULL;
  int64_t total = rt_ctx_memory_bytes(d);
  if (!mem || ((uintptr_t)mem & 63) || (int64_t)size < total) {
    rt_errf(err, errlen,
            "model '%s' needs %" PRId64 " bytes of 64-byte aligned memory (got %zu bytes at %p)",
            d->name, total, size, mem);
    return NULL;
  }
  memset(mem, 0, (size_t)total);
  return ctx_new(d, nthreads, mem, 0, err, errlen);
}

void rt_ctx_destroy(RtCtx *c) {
  if (!c) return;
  rt_pool_destroy(c->pool);
  if (c->own_mem) free(c->mem);
  free(c);
}

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

static int is_state(int kind) {
  return kind == RT_KIND_PARAM || kind == RT_KIND_BUFFER || kind == RT_KIND_OPTSTATE;
}

void *rt_ctx_data(RtCtx *c, int idx) {
  if (!c || idx < 0 || idx >= c->d->ntensors) return NULL;
  const RtTensorInfo *t = &c->d->tensors[idx];
  return (is_state(t->kind) ? c->b.params : c->b.io) + t->offset;
}

int rt_ctx_init(RtCtx *c, uint64_t seed) {
  if (!c) return -1;
  for (int i = 0; i < c->d->ntensors; i++)
    if (is_state(c->d->tensors[i].kind))
      rt_init_tensor(&c->d->tensors[i], seed, rt_ctx_data(c, i));
  c->b.step = 0;
  return 0;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static int same_shape(const RtTensorInfo *t, const RtTensor *x) {
  if (t->rank != x->rank) return 0;
  for (int k = 0; k < t->rank; k++)
    if (t->shape[k] != x->shape[k]) return 0;
  return 1;
}

static void tensor_type_str(const RtTensor *x, char *buf, size_t n) {
  RtTensorInfo tmp = {.dtype = (int32_t)x->dt, .rank = x->rank};
  for (int k = 0; k < x->rank && k < 8; k++) tmp.shape[k] = x->shape[k];
  rt_info_type_str(&tmp, buf, n);
}

int rt_ctx_load(RtCtx *c, const char *path, int *nunknown) {
  if (!c) return -1;
  if (!path) return ctx_fail(c, "load: no file name (NULL path)");
  const RtModelDesc *d = c->d;
  RtTensorSet set = {0};
  char err[512], want[128], got[128];
  if (rt_st_read(path, &set, err, sizeof err)) return ctx_fail(c, "%s", err);
  int rc = -1;
  /* validate and convert everything before touching the parameters, so a bad file leaves
   * the context as it was */
  for (int i = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (!is_state(t->kind)) continue;
    RtTensor *x = rt_set_find(&set, t->name);
    rt_info_type_str(t, want, sizeof want);
    if (!x) {
      if (t->kind == RT_KIND_PARAM) {
        ctx_fail(c, "%s: missing tensor '%s' (%s) of model '%s'", path, t->name, want, d->name);
        goto out;
      }
      continue;
    }
    if (!same_shape(t, x)) {
      tensor_type_str(x, got, sizeof got);
      ctx_fail(c, "%s: tensor '%s' is %s, but model '%s' expects %s", path, t->name, got,
               d->name, want);
      goto out;
    }
    if (x->dt != (DType)t->dtype && rt_tensor_convert(x, (DType)t->dtype, err, sizeof err)) {
      ctx_fail(c, "%s: tensor '%s': %s", path, t->name, err);
      goto out;
    }
    if (rt_check_finite(t, x->data, rt_info_numel(t), "tensor", err, sizeof err)) {
      ctx_fail(c, "%s: %s", path, err);
      goto out;
    }
  }
  int unknown = 0;
  for (int k = 0; k < set.n; k++) {
    int i = rt_desc_find(d, set.names[k]);
    if (i < 0 || !is_state(d->tensors[i].kind)) unknown++;
  }
  for (int i = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (!is_state(t->kind)) continue;
    RtTensor *x = rt_set_find(&set, t->name);
    if (x)
      memcpy(rt_ctx_data(c, i), x->data, (size_t)t->nbytes);
    else
      rt_init_tensor(t, 0, rt_ctx_data(c, i));
  }
  /* the step counter: ours, else the optimizer's (files written by `nnc run --train`) */
  const char *st = rt_set_meta(&set, "nnc.step");
  RtTensor *os = rt_set_find(&set, "optimizer.step");
  c->b.step = 0;
  if (st)
    c->b.step = strtoll(st, NULL, 10);
  else if (os && rt_tensor_numel(os) == 1 && !rt_tensor_convert(os, DT_I64, NULL, 0))
    c->b.step = *(const int64_t *)os->data;
  if (nunknown) *nunknown = unknown;
  c->warn[0] = 0;
  rt_check_ckpt_meta(d, &set, c->warn, sizeof c->warn);
  rc = 0;
out:
  rt_set_free(&set);
  return rc;
}

int rt_ctx_save(RtCtx *c, const char *path, const char *extra_meta_json) {
  if (!c) return -1;
  if (!path) return ctx_fail(c, "save: no file name (NULL path)");
  const RtModelDesc *d = c->d;
  RtTensorSet set = {0};
  char err[512];
  int rc = -1;
  cJSON *meta = NULL;
  char *text = NULL;
  for (int i = 0; i < d->ntensors; i++) {
    const RtTensorInfo *t = &d->tensors[i];
    if (!is_state(t->kind)) continue;
    RtTensor x = {0};
    if (rt_tensor_alloc(&x, (DType)t->dtype, t->rank, t->shape)) {
      ctx_fail(c, "%s: out of memory for tensor '%s'", path, t->name);
      goto out;
    }
    memcpy(x.data, rt_ctx_data(c, i), (size_t)t->nbytes);
    if (rt_set_add(&set, t->name, &x, err, sizeof err)) {
      rt_tensor_free(&x);
      ctx_fail(c, "%s: %s", path, err);
      goto out;
    }
  }
  meta = extra_meta_json ? cJSON_Parse(extra_meta_json) : cJSON_CreateObject();
  if (!cJSON_IsObject(meta)) {
    ctx_fail(c, "%s: the extra metadata is not a JSON object", path);
    goto out;
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
  text = cJSON_PrintUnformatted(meta);
  if (!text || rt_st_write(path, &set, text, err, sizeof err)) {
    ctx_fail(c, "%s", text ? err : "out of memory");
    goto out;
  }
  rc = 0;
out:
  free(text);
  cJSON_Delete(meta);
  rt_set_free(&set);
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
  c->d->forward(&c->b);
  return 0;
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
    if (check_io_inputs(c, s)) return -1;
    d->forward(&c->b);
    for (int k = 0; k < nout; k++)
      if (out && out[k]) get_chunk(c, rt_desc_nth(d, RT_KIND_OUTPUT, k), out[k], s, m);
  }
  return 0;
}

int rt_ctx_train_step(RtCtx *c, const void *const *in, float *loss) {
  if (!c) return -1;
  const RtModelDesc *d = c->d;
  if (!d->train_step)
    return ctx_fail(c, "model '%s' has no training step (its .nn file has no train section)",
                    d->name);
  int nin = rt_desc_count(d, RT_KIND_INPUT);
  for (int k = 0; k < nin; k++) {
    int idx = rt_desc_nth(d, RT_KIND_INPUT, k);
    if (in && in[k]) memcpy(rt_ctx_data(c, idx), in[k], (size_t)d->tensors[idx].nbytes);
  }
  if (check_io_inputs(c, 0)) return -1;
  d->train_step(&c->b);
  c->b.step++;
  if (loss) {
    int li = rt_desc_nth(d, RT_KIND_LOSS, 0);
    *loss = li >= 0 ? *(const float *)rt_ctx_data(c, li) : 0.0f;
  }
  return 0;
}
