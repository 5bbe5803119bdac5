/* cuda_nvrtc.c — NVRTC with checked calls (see cuda_nvrtc.h). */
#include "cuda_nvrtc.h"

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

char *cuda_nvrtc_ptx(const char *src, const char *name, int sm, char *err, size_t errlen) {
  nvrtcProgram prog = NULL;
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
