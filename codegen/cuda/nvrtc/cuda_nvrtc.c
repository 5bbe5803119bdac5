/* cuda_nvrtc.c — NVRTC with checked calls (see cuda_nvrtc.h). */
#define _GNU_SOURCE /* dladdr */
#include "cuda_nvrtc.h"

#include <dlfcn.h>
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* on failure: the call, its place and NVRTC's message into err, then to `fail` */
#define NVRTC_CHECK(call)                                                                   \
  do {                                                                                      \
    nvrtcResult rc_ = (call);                                                               \
    if (rc_ != NVRTC_SUCCESS) {                                                             \
      snprintf(err, errlen, "%s:%d: %s: %s", __FILE__, __LINE__, #call, nvrtcGetErrorString(rc_)); \
      goto fail;                                                                            \
    }                                                                                       \
  } while (0)

/* appends NVRTC's log (the compiler's diagnostics) to err */
static void append_log(nvrtcProgram prog, char *err, size_t errlen) {
  size_t n = 0, used = strlen(err);
  if (nvrtcGetProgramLogSize(prog, &n) != NVRTC_SUCCESS || n <= 1 || used + 2 >= errlen) return;
  char *log = malloc(n);
  if (log && nvrtcGetProgramLog(prog, log) == NVRTC_SUCCESS) snprintf(err + used, errlen - used, "\n%s", log);
  free(log);
}

/* libnvrtc loads libnvrtc-builtins.so.MAJOR.MINOR by name when it compiles, which fails
 * where the toolkit's lib64 is not in the loader's path (a toolkit not registered with
 * ldconfig, as /usr/local/cuda usually is not). Loading it first from libnvrtc's own
 * directory makes that lookup find the loaded library. A failure here is left to NVRTC
 * to report. */
static void preload_builtins(void) {
  Dl_info info;
  int major = 0, minor = 0;
  if (!dladdr((void *)nvrtcVersion, &info) || !info.dli_fname || nvrtcVersion(&major, &minor) != NVRTC_SUCCESS)
    return;
  const char *slash = strrchr(info.dli_fname, '/');
  if (!slash) return;
  char path[4096];
  int n = snprintf(path, sizeof path, "%.*s/libnvrtc-builtins.so.%d.%d", (int)(slash - info.dli_fname),
                   info.dli_fname, major, minor);
  if (n > 0 && (size_t)n < sizeof path) (void)dlopen(path, RTLD_NOW | RTLD_GLOBAL); /* kept loaded */
}

char *cuda_nvrtc_ptx(const char *src, const char *name, int sm, char *err, size_t errlen) {
  nvrtcProgram prog = NULL;
  preload_builtins();
  char *ptx = NULL, arch[48];
  size_t n = 0;
  snprintf(arch, sizeof arch, "--gpu-architecture=compute_%d", sm);
  const char *opts[] = {arch, "--std=c++17"};
  NVRTC_CHECK(nvrtcCreateProgram(&prog, src, name, 0, NULL, NULL));
  nvrtcResult rc = nvrtcCompileProgram(prog, 2, opts);
  if (rc != NVRTC_SUCCESS) {
    snprintf(err, errlen, "%s: NVRTC (sm_%d): %s", name, sm, nvrtcGetErrorString(rc));
    append_log(prog, err, errlen);
    goto fail;
  }
  NVRTC_CHECK(nvrtcGetPTXSize(prog, &n));
  ptx = malloc(n + 1);
  if (!ptx) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  NVRTC_CHECK(nvrtcGetPTX(prog, ptx));
  ptx[n] = '\0';
  nvrtcDestroyProgram(&prog);
  return ptx;
fail:
  free(ptx);
  if (prog) nvrtcDestroyProgram(&prog);
  return NULL;
}
