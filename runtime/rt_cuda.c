/* rt_cuda.c — the CUDA driver through dlopen (see rt_cuda.h). The driver API's types are
 * declared here from its stable ABI (handles are pointers, CUdevice an int, CUdeviceptr a
 * 64-bit integer, CUresult an int), so no toolkit is needed to build the runtime. */
#include "rt_cuda.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef void *CUhandle;
enum {
  CU_ERROR_NO_DEVICE = 100,
  CU_ATTR_CC_MAJOR = 75,
  CU_ATTR_CC_MINOR = 76,
  CU_FUNC_ATTR_MAX_DYNAMIC_SHARED = 8,
  CU_JIT_ERROR_LOG_BUFFER = 5,
  CU_JIT_ERROR_LOG_BUFFER_SIZE = 6,
  CU_STREAM_NON_BLOCKING = 1,
  CU_EVENT_DISABLE_TIMING = 2,
};

/* the entry points, each with its exported symbol (versioned where the driver versions it) */
#define RT_CU_FUNCS(X)                                                                          \
  X(cuDeviceGet, "cuDeviceGet", (int *, int))                                                    \
  X(cuDeviceGetName, "cuDeviceGetName", (char *, int, int))                                      \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute", (int *, int, int))                             \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (CUhandle *, int))                     \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (int))                            \
  X(cuCtxSetCurrent, "cuCtxSetCurrent", (CUhandle))                                              \
  X(cuCtxSynchronize, "cuCtxSynchronize", (void))                                                \
  X(cuMemAlloc, "cuMemAlloc_v2", (uint64_t *, size_t))                                           \
  X(cuMemFree, "cuMemFree_v2", (uint64_t))                                                       \
  X(cuMemcpyHtoD, "cuMemcpyHtoD_v2", (uint64_t, const void *, size_t))                           \
  X(cuMemcpyDtoH, "cuMemcpyDtoH_v2", (void *, uint64_t, size_t))                                 \
  X(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2", (uint64_t, uint64_t, size_t, CUhandle))           \
  X(cuStreamSynchronize, "cuStreamSynchronize", (CUhandle))                                      \
  X(cuModuleLoadDataEx, "cuModuleLoadDataEx", (CUhandle *, const void *, unsigned, int *, void **)) \
  X(cuModuleUnload, "cuModuleUnload", (CUhandle))                                                \
  X(cuModuleGetFunction, "cuModuleGetFunction", (CUhandle *, CUhandle, const char *))           \
  X(cuFuncSetAttribute, "cuFuncSetAttribute", (CUhandle, int, int))                             \
  X(cuLaunchKernel, "cuLaunchKernel",                                                           \
    (CUhandle, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUhandle,  \
     void **, void **))                                                                         \
  X(cuEventCreate, "cuEventCreate", (CUhandle *, unsigned))                                      \
  X(cuEventDestroy, "cuEventDestroy_v2", (CUhandle))                                             \
  X(cuEventRecord, "cuEventRecord", (CUhandle, CUhandle))                                        \
  X(cuEventSynchronize, "cuEventSynchronize", (CUhandle))                                        \
  X(cuEventElapsedTime, "cuEventElapsedTime", (float *, CUhandle, CUhandle))                   \
  X(cuStreamCreate, "cuStreamCreate", (CUhandle *, unsigned))                                    \
  X(cuStreamDestroy, "cuStreamDestroy_v2", (CUhandle))                                           \
  X(cuStreamWaitEvent, "cuStreamWaitEvent", (CUhandle, CUhandle, unsigned))

struct RtCuda {
  void *lib;
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuGetErrorName)(CUresult, const char **);
  CUresult (*cuGetErrorString)(CUresult, const char **);
#define RT_CU_FIELD(name, sym, args) CUresult(*name) args;
  RT_CU_FUNCS(RT_CU_FIELD)
#undef RT_CU_FIELD
  int dev, cc;
  CUhandle ctx;
  char name[256];
  char jitlog[4096];
  char err[1024];
};

static int cu_fail(RtCuda *c, CUresult rc, const char *call, const char *file, int line) {
  const char *nm = NULL, *desc = NULL;
  if (c->cuGetErrorName) c->cuGetErrorName(rc, &nm);
  if (c->cuGetErrorString) c->cuGetErrorString(rc, &desc);
  snprintf(c->err, sizeof c->err, "%s:%d: %s: %s (%d): %s", file, line, call, nm ? nm : "CUDA error", rc,
           desc ? desc : "");
  return -1;
}

/* calls c->CALL; on failure records it with the call's text and place, and returns -1 */
#define RT_CU_CHECK(c, call)                                              \
  do {                                                                    \
    CUresult rc_ = (c)->call;                                             \
    if (rc_ != 0) return cu_fail((c), rc_, #call, __FILE__, __LINE__);   \
  } while (0)

static RtCuda *open_fail(RtCuda *c, char *err, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
  if (c && c->lib) dlclose(c->lib);
  free(c);
  return NULL;
}

static int resolve(RtCuda *c, const char **missing) {
#define RT_CU_SYM(name, sym, args)                              \
  *(void **)&c->name = dlsym(c->lib, sym);                      \
  if (!c->name) {                                               \
    *missing = sym;                                             \
    return -1;                                                  \
  }
  RT_CU_FUNCS(RT_CU_SYM)
#undef RT_CU_SYM
  return 0;
}

/* device 0 and its primary context */
static int open_device(RtCuda *c) {
  RT_CU_CHECK(c, cuDeviceGet(&c->dev, 0));
  RT_CU_CHECK(c, cuDeviceGetName(c->name, (int)sizeof c->name, c->dev));
  int major = 0, minor = 0;
  RT_CU_CHECK(c, cuDeviceGetAttribute(&major, CU_ATTR_CC_MAJOR, c->dev));
  RT_CU_CHECK(c, cuDeviceGetAttribute(&minor, CU_ATTR_CC_MINOR, c->dev));
  c->cc = major * 10 + minor;
  RT_CU_CHECK(c, cuDevicePrimaryCtxRetain(&c->ctx, c->dev));
  RT_CU_CHECK(c, cuCtxSetCurrent(c->ctx));
  return 0;
}

RtCuda *rt_cuda_open(const char *libname, char *err, size_t errlen) {
  if (!libname) libname = "libcuda.so.1";
  RtCuda *c = calloc(1, sizeof *c);
  if (!c) return open_fail(NULL, err, errlen, "out of memory");
  c->lib = dlopen(libname, RTLD_NOW | RTLD_LOCAL);
  if (!c->lib) return open_fail(c, err, errlen, "no CUDA driver (%s)", dlerror());
  *(void **)&c->cuInit = dlsym(c->lib, "cuInit");
  *(void **)&c->cuDeviceGetCount = dlsym(c->lib, "cuDeviceGetCount");
  *(void **)&c->cuGetErrorName = dlsym(c->lib, "cuGetErrorName");
  *(void **)&c->cuGetErrorString = dlsym(c->lib, "cuGetErrorString");
  if (!c->cuInit || !c->cuDeviceGetCount)
    return open_fail(c, err, errlen, "no CUDA driver (%s has no cuInit/cuDeviceGetCount)", libname);
  int n = 0;
  CUresult rc = c->cuInit(0);
  if (rc == CU_ERROR_NO_DEVICE || (rc == 0 && c->cuDeviceGetCount(&n) == 0 && n == 0))
    return open_fail(c, err, errlen, "no CUDA device");
  if (rc != 0) {
    cu_fail(c, rc, "cuInit(0)", __FILE__, __LINE__);
    return open_fail(c, err, errlen, "no CUDA driver (%s)", c->err);
  }
  const char *missing = NULL;
  if (resolve(c, &missing)) return open_fail(c, err, errlen, "no CUDA driver (%s has no %s)", libname, missing);
  if (open_device(c)) return open_fail(c, err, errlen, "no CUDA device (%s)", c->err);
  return c;
}

void rt_cuda_close(RtCuda *c) {
  if (!c) return;
  if (c->ctx) c->cuDevicePrimaryCtxRelease(c->dev);
  dlclose(c->lib);
  free(c);
}

const char *rt_cuda_error(const RtCuda *c) { return c->err; }
const char *rt_cuda_device_name(const RtCuda *c) { return c->name; }
int rt_cuda_cc(const RtCuda *c) { return c->cc; }

int rt_cuda_alloc(RtCuda *c, size_t bytes, uint64_t *dptr) {
  RT_CU_CHECK(c, cuMemAlloc(dptr, bytes));
  return 0;
}
int rt_cuda_free(RtCuda *c, uint64_t dptr) {
  RT_CU_CHECK(c, cuMemFree(dptr));
  return 0;
}
int rt_cuda_upload(RtCuda *c, uint64_t dst, const void *src, size_t bytes) {
  RT_CU_CHECK(c, cuMemcpyHtoD(dst, src, bytes));
  return 0;
}
int rt_cuda_download(RtCuda *c, void *dst, uint64_t src, size_t bytes) {
  RT_CU_CHECK(c, cuMemcpyDtoH(dst, src, bytes));
  return 0;
}

int rt_cuda_load_ptx(RtCuda *c, const char *ptx, void **module) {
  int opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE};
  void *vals[] = {c->jitlog, (void *)(uintptr_t)sizeof c->jitlog};
  c->jitlog[0] = '\0';
  CUresult rc = c->cuModuleLoadDataEx(module, ptx, 2, opts, vals);
  if (rc != 0) {
    cu_fail(c, rc, "cuModuleLoadDataEx(module, ptx)", __FILE__, __LINE__);
    size_t n = strlen(c->err);
    snprintf(c->err + n, sizeof c->err - n, "\n%s", c->jitlog);
    return -1;
  }
  return 0;
}

int rt_cuda_unload(RtCuda *c, void *module) {
  RT_CU_CHECK(c, cuModuleUnload(module));
  return 0;
}

int rt_cuda_function(RtCuda *c, void *module, const char *name, size_t dyn_smem, void **fn) {
  RT_CU_CHECK(c, cuModuleGetFunction(fn, module, name));
  if (dyn_smem > 48 * 1024) RT_CU_CHECK(c, cuFuncSetAttribute(*fn, CU_FUNC_ATTR_MAX_DYNAMIC_SHARED, (int)dyn_smem));
  return 0;
}

int rt_cuda_launch(RtCuda *c, void *fn, const unsigned grid[3], const unsigned block[3], size_t dyn_smem,
                   void **args) {
  return rt_cuda_launch_on(c, fn, grid, block, dyn_smem, args, NULL);
}

int rt_cuda_launch_on(RtCuda *c, void *fn, const unsigned grid[3], const unsigned block[3], size_t dyn_smem,
                      void **args, void *stream) {
  RT_CU_CHECK(c, cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                (unsigned)dyn_smem, stream, args, NULL));
  return 0;
}

int rt_cuda_copy_dd(RtCuda *c, uint64_t dst, uint64_t src, size_t bytes, void *stream) {
  RT_CU_CHECK(c, cuMemcpyDtoDAsync(dst, src, bytes, stream));
  return 0;
}

int rt_cuda_stream_sync(RtCuda *c, void *stream) {
  RT_CU_CHECK(c, cuStreamSynchronize(stream));
  return 0;
}

int rt_cuda_sync(RtCuda *c) {
  RT_CU_CHECK(c, cuCtxSynchronize());
  return 0;
}

/* ---- streams and events ---------------------------------------------------------------- */

int rt_cuda_stream_create(RtCuda *c, void **stream) {
  RT_CU_CHECK(c, cuStreamCreate(stream, CU_STREAM_NON_BLOCKING));
  return 0;
}

int rt_cuda_stream_destroy(RtCuda *c, void *stream) {
  RT_CU_CHECK(c, cuStreamDestroy(stream));
  return 0;
}

int rt_cuda_event_create(RtCuda *c, void **event) {
  RT_CU_CHECK(c, cuEventCreate(event, CU_EVENT_DISABLE_TIMING));
  return 0;
}

int rt_cuda_event_destroy(RtCuda *c, void *event) {
  RT_CU_CHECK(c, cuEventDestroy(event));
  return 0;
}

int rt_cuda_event_record(RtCuda *c, void *event, void *stream) {
  RT_CU_CHECK(c, cuEventRecord(event, stream));
  return 0;
}

int rt_cuda_stream_wait_event(RtCuda *c, void *stream, void *event) {
  RT_CU_CHECK(c, cuStreamWaitEvent(stream, event, 0));
  return 0;
}

/* ---- timed launches ---------------------------------------------------------------------- */

static int ev_create(RtCuda *c, CUhandle *ev) {
  RT_CU_CHECK(c, cuEventCreate(ev, 0));
  return 0;
}

/* launch l between the records of its start and end events */
static int launch_between(RtCuda *c, const RtCudaLaunch *l, void **args, CUhandle start, CUhandle end) {
  RT_CU_CHECK(c, cuEventRecord(start, NULL));
  if (rt_cuda_launch_on(c, l->fn, l->grid, l->block, l->smem, args, NULL)) return -1;
  RT_CU_CHECK(c, cuEventRecord(end, NULL));
  return 0;
}

static int ev_elapsed_ns(RtCuda *c, CUhandle start, CUhandle end, int64_t *ns) {
  float ms = 0;
  RT_CU_CHECK(c, cuEventSynchronize(end));
  RT_CU_CHECK(c, cuEventElapsedTime(&ms, start, end));
  *ns = (int64_t)((double)ms * 1e6 + 0.5);
  return 0;
}

int rt_cuda_run_timed(RtCuda *c, const RtCudaLaunch *l, int n, void **args, int64_t *ns) {
  if (n <= 0) return 0;
  CUhandle *ev = calloc((size_t)n * 2, sizeof *ev);
  if (!ev) return snprintf(c->err, sizeof c->err, "out of memory for %d event pairs", n), -1;
  int rc = 0;
  for (int i = 0; !rc && i < 2 * n; i++) rc = ev_create(c, &ev[i]);
  for (int i = 0; !rc && i < n; i++) rc = launch_between(c, &l[i], args, ev[2 * i], ev[2 * i + 1]);
  for (int i = 0; !rc && i < n; i++) rc = ev_elapsed_ns(c, ev[2 * i], ev[2 * i + 1], &ns[i]);
  for (int i = 0; i < 2 * n; i++)
    if (ev[i]) c->cuEventDestroy(ev[i]);
  free(ev);
  return rc;
}
