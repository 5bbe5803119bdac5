/* fake_libcuda.c — a driver library whose driver sees no device (cuInit succeeds,
 * cuDeviceGetCount reports 0), for the loader's "no CUDA device" path. Built with
 * FAKE_CUDA_DEVICE it sees one device and implements every entry point the loader resolves:
 * launches do nothing, events measure 0.25 ms per pair, and each launch, event and stream
 * call is appended to a log (fake_cuda_log) that tests read back. That build also stands in
 * for NCCL (libnccl.so.2 linked to it: the same library, so one log holds both): its
 * all-reduces change nothing and are logged with their stream; with FAKE_CUDA_LOG=PATH the
 * log is written to PATH.PID when the library is unloaded. */
int cuInit(unsigned flags);
int cuDeviceGetCount(int *n);
int cuGetErrorName(int rc, const char **s);
int cuGetErrorString(int rc, const char **s);

int cuInit(unsigned flags) { return (int)flags; }
int cuDeviceGetCount(int *n) {
#ifdef FAKE_CUDA_DEVICE
  *n = 1;
#else
  *n = 0;
#endif
  return 0;
}
int cuGetErrorName(int rc, const char **s) {
  *s = rc ? "CUDA_ERROR_FAKE" : "CUDA_SUCCESS";
  return 0;
}
int cuGetErrorString(int rc, const char **s) {
  *s = rc ? "fake error" : "no error";
  return 0;
}

#ifdef FAKE_CUDA_DEVICE
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void *H;
static char fake_log[16384];
static uintptr_t fake_events, fake_streams = 99; /* streams are numbered from 100 */

static void logf_(const char *fmt, uintptr_t a, uintptr_t b) {
  size_t n = strlen(fake_log);
  if (n + 32 < sizeof fake_log) snprintf(fake_log + n, sizeof fake_log - n, fmt, (unsigned)a, (unsigned)b);
}

/* the calls so far, "create:1 record:1 launch record:2 ..." (cleared by reset != 0) */
const char *fake_cuda_log(int reset);
const char *fake_cuda_log(int reset) {
  if (reset) fake_log[0] = 0, fake_events = 0, fake_streams = 99;
  return fake_log;
}

int cuDeviceGet(int *d, int i);
int cuDeviceGetName(char *s, int n, int d);
int cuDeviceGetAttribute(int *v, int a, int d);
int cuDevicePrimaryCtxRetain(H *c, int d);
int cuDevicePrimaryCtxRelease_v2(int d);
int cuCtxSetCurrent(H c);
int cuCtxSynchronize(void);
int cuMemAlloc_v2(uint64_t *p, size_t n);
int cuMemFree_v2(uint64_t p);
int cuMemcpyHtoD_v2(uint64_t d, const void *s, size_t n);
int cuMemcpyDtoH_v2(void *d, uint64_t s, size_t n);
int cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, H st);
int cuStreamSynchronize(H st);
int cuModuleLoadDataEx(H *m, const void *p, unsigned n, int *o, void **v);
int cuModuleUnload(H m);
int cuModuleGetFunction(H *f, H m, const char *name);
int cuFuncSetAttribute(H f, int a, int v);
int cuLaunchKernel(H f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sm,
                   H st, void **args, void **extra);
int cuEventCreate(H *e, unsigned flags);
int cuEventDestroy_v2(H e);
int cuEventRecord(H e, H st);
int cuEventSynchronize(H e);
int cuEventElapsedTime(float *ms, H a, H b);
int cuStreamCreate(H *s, unsigned flags);
int cuStreamDestroy_v2(H s);
int cuStreamWaitEvent(H s, H e, unsigned flags);

int cuDeviceGet(int *d, int i) { return *d = i, 0; }
int cuDeviceGetName(char *s, int n, int d) { return snprintf(s, (size_t)n, "fake device %d", d), 0; }
int cuDeviceGetAttribute(int *v, int a, int d) { return *v = a == 75 ? 8 : 0, (void)d, 0; }
int cuDevicePrimaryCtxRetain(H *c, int d) { return *c = (H)(uintptr_t)(d + 1), 0; }
int cuDevicePrimaryCtxRelease_v2(int d) { return (void)d, 0; }
int cuCtxSetCurrent(H c) { return (void)c, 0; }
int cuCtxSynchronize(void) { return 0; }
int cuMemAlloc_v2(uint64_t *p, size_t n) { return *p = 0x1000 + n, 0; }
int cuMemFree_v2(uint64_t p) { return (void)p, 0; }
int cuMemcpyHtoD_v2(uint64_t d, const void *s, size_t n) { return (void)d, (void)s, (void)n, 0; }
int cuMemcpyDtoH_v2(void *d, uint64_t s, size_t n) { return memset(d, 0, n), (void)s, 0; }
int cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, H st) { return (void)d, (void)s, (void)n, (void)st, 0; }
int cuStreamSynchronize(H st) { return (void)st, 0; }
int cuModuleLoadDataEx(H *m, const void *p, unsigned n, int *o, void **v) {
  return *m = (H)1, (void)p, (void)n, (void)o, (void)v, 0;
}
int cuModuleUnload(H m) { return (void)m, 0; }
int cuModuleGetFunction(H *f, H m, const char *name) { return *f = (H)name, (void)m, 0; }
int cuFuncSetAttribute(H f, int a, int v) { return (void)f, (void)a, (void)v, 0; }
int cuLaunchKernel(H f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned sm,
                   H st, void **args, void **extra) {
  (void)f, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)sm, (void)st, (void)args, (void)extra;
  logf_("launch ", 0, 0);
  return 0;
}
int cuEventCreate(H *e, unsigned flags) {
  *e = (H)++fake_events;
  logf_(flags ? "create:%u:%u " : "create:%u ", (uintptr_t)*e, flags); /* flags when not 0 */
  return 0;
}
int cuEventDestroy_v2(H e) { return logf_("destroy:%u ", (uintptr_t)e, 0), 0; }
/* "record:E" on the default stream, "record:E@S" on stream S */
int cuEventRecord(H e, H st) {
  return logf_(st ? "record:%u@%u " : "record:%u ", (uintptr_t)e, (uintptr_t)st), 0;
}
int cuEventSynchronize(H e) { return logf_("sync:%u ", (uintptr_t)e, 0), 0; }
int cuEventElapsedTime(float *ms, H a, H b) {
  *ms = 0.25f;
  logf_("elapsed:%u-%u ", (uintptr_t)a, (uintptr_t)b);
  return 0;
}
int cuStreamCreate(H *s, unsigned flags) {
  *s = (H)++fake_streams;
  logf_("stream:%u:%u ", (uintptr_t)*s, flags);
  return 0;
}
int cuStreamDestroy_v2(H s) { return logf_("sdestroy:%u ", (uintptr_t)s, 0), 0; }
int cuStreamWaitEvent(H s, H e, unsigned flags) {
  (void)flags;
  logf_("wait:%u:%u ", (uintptr_t)s, (uintptr_t)e);
  return 0;
}

/* ---- NCCL ---- */
#include <stdlib.h>
#include <unistd.h>

typedef struct FakeNcclId {
  unsigned char b[128];
} FakeNcclId;
int ncclGetUniqueId(void *id);
int ncclCommInitRank(H *comm, int nranks, FakeNcclId id, int rank);
int ncclAllReduce(const void *send, void *recv, size_t count, int dtype, int op, H comm, H stream);
int ncclGroupStart(void);
int ncclGroupEnd(void);
int ncclCommDestroy(H comm);
const char *ncclGetErrorString(int rc);

int ncclGetUniqueId(void *id) { return memset(id, 7, sizeof(FakeNcclId)), 0; }
int ncclCommInitRank(H *comm, int nranks, FakeNcclId id, int rank) {
  (void)id;
  *comm = (H)(uintptr_t)(nranks * 16 + rank + 1);
  return 0;
}
/* "allreduce:COUNT@STREAM" (ncclAvg of f32: op 4, dtype 7), else "allreduce?" */
int ncclAllReduce(const void *send, void *recv, size_t count, int dtype, int op, H comm, H stream) {
  (void)send, (void)recv, (void)comm;
  logf_(dtype == 7 && op == 4 ? "allreduce:%u@%u " : "allreduce?:%u@%u ", count, (uintptr_t)stream);
  return 0;
}
int ncclGroupStart(void) { return logf_("group( ", 0, 0), 0; }
int ncclGroupEnd(void) { return logf_(") ", 0, 0), 0; }
int ncclCommDestroy(H comm) { return (void)comm, 0; }
const char *ncclGetErrorString(int rc) { return rc ? "fake NCCL error" : "no error"; }

__attribute__((destructor)) static void fake_dump(void) {
  const char *p = getenv("FAKE_CUDA_LOG");
  char path[4096];
  if (!p || snprintf(path, sizeof path, "%s.%d", p, (int)getpid()) >= (int)sizeof path) return;
  FILE *f = fopen(path, "w");
  if (!f) return;
  fputs(fake_log, f);
  fclose(f);
}
#endif
