/* test_cuda_nvrtc.c — the kernels of cuda_cases.h through NVRTC for sm_80 and sm_90, and the
 * toolkit's ptxas -v on the PTX: no local-memory spills, no stack frame, no static shared
 * memory (all of it dynamic, sized by the tile plan), and registers per thread within what
 * the tiles pass assumed for occupancy (TileDecision.regs). NVRTC's log goes into the error. */
#include <nvrtc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "case_plan.h"

#define NVRTC_CHECK(call)                                                                 \
  do {                                                                                    \
    nvrtcResult rc_ = (call);                                                             \
    if (rc_ != NVRTC_SUCCESS) {                                                           \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, nvrtcGetErrorString(rc_)); \
      return NULL;                                                                        \
    }                                                                                     \
  } while (0)

static char *nvrtc_ptx(const char *src, int sm) {
  nvrtcProgram prog;
  NVRTC_CHECK(nvrtcCreateProgram(&prog, src, "nnc_gemm.cu", 0, NULL, NULL));
  char arch[64];
  snprintf(arch, sizeof arch, "--gpu-architecture=compute_%d", sm);
  const char *opts[] = {arch, "--std=c++17"};
  nvrtcResult rc = nvrtcCompileProgram(prog, 2, opts);
  size_t logn = 0;
  nvrtcGetProgramLogSize(prog, &logn);
  if (rc != NVRTC_SUCCESS) {
    char *log = malloc(logn + 1);
    if (log && nvrtcGetProgramLog(prog, log) == NVRTC_SUCCESS) fprintf(stderr, "NVRTC (sm_%d):\n%s\n", sm, log);
    free(log);
    nvrtcDestroyProgram(&prog);
    return NULL;
  }
  size_t n = 0;
  NVRTC_CHECK(nvrtcGetPTXSize(prog, &n));
  char *ptx = malloc(n + 1);
  if (!ptx) return NULL;
  NVRTC_CHECK(nvrtcGetPTX(prog, ptx));
  nvrtcDestroyProgram(&prog);
  return ptx;
}

typedef struct Usage {
  int regs, stack, spill_st, spill_ld, smem;
  bool seen;
} Usage;

/* ptxas -v lines of the function `fn` */
static void parse_line(const char *line, const char *fn, bool *in_fn, Usage *u) {
  const char *p;
  if ((p = strstr(line, "Compiling entry function '")) || (p = strstr(line, "Function properties for "))) {
    const char *name = strchr(p, '\'') ? strchr(p, '\'') + 1 : p + strlen("Function properties for ");
    size_t n = strlen(fn);
    *in_fn = !strncmp(name, fn, n) && (name[n] == '\'' || name[n] == '\n' || name[n] == '\0');
    return;
  }
  if (!*in_fn) return;
  if ((p = strstr(line, "bytes stack frame")))
    sscanf(line, " %d bytes stack frame, %d bytes spill stores, %d bytes spill loads", &u->stack, &u->spill_st, &u->spill_ld);
  if ((p = strstr(line, "Used "))) {
    u->seen = sscanf(p, "Used %d registers", &u->regs) == 1;
    const char *s = strstr(line, "bytes smem");
    if (s) {
      while (s > line && s[-1] == ' ') s--;
      while (s > line && s[-1] >= '0' && s[-1] <= '9') s--;
      u->smem = atoi(s);
    }
  }
}

static int ptxas_usage(const char *ptx, int sm, const char *fn, Usage *u) {
  char path[] = "/tmp/nnc_ptx_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  size_t n = strlen(ptx);
  bool ok = write(fd, ptx, n) == (ssize_t)n;
  close(fd);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "'%s' -v -arch=sm_%d -o /dev/null '%s' 2>&1", NNC_PTXAS, sm, path);
  FILE *p = ok ? popen(cmd, "r") : NULL;
  memset(u, 0, sizeof *u);
  char line[512];
  bool in_fn = false;
  while (p && fgets(line, sizeof line, p)) parse_line(line, fn, &in_fn, u);
  int rc = p ? pclose(p) : -1;
  unlink(path);
  return rc == 0 && u->seen ? 0 : -1;
}

/* main kernels: registers must allow the CTAs per SM the plan assumed */
static int check_kernel(const char *ptx, int sm, const char *fn, const TileDecision *d, bool main_k,
                        const HwTarget *hw) {
  Usage u;
  if (ptxas_usage(ptx, sm, fn, &u)) {
    fprintf(stderr, "%s sm_%d: ptxas failed or reported nothing\n", fn, sm);
    return 1;
  }
  int64_t budget = main_k ? hw->regs_per_sm / ((int64_t)d->threads * d->ctas_per_sm) : 255;
  printf("%-34s sm_%d: %3d registers (estimate %3d, budget %3lld for %d CTA/SM), stack %d, spills "
         "%d/%d, static smem %d, dynamic smem %lld\n", fn, sm, u.regs, main_k ? d->regs : 0,
         (long long)budget, main_k ? d->ctas_per_sm : 0, u.stack, u.spill_st, u.spill_ld, u.smem,
         main_k ? (long long)d->smem : 0LL);
  int bad = u.spill_st || u.spill_ld || u.stack || u.smem || u.regs > budget;
  if (bad) fprintf(stderr, "%s sm_%d: exceeds the tile plan's resources\n", fn, sm);
  return bad;
}

int main(void) {
  int fails = 0;
  for (int i = 0; i < CUDA_NCASES; i++) {
    TileDecision d;
    CudaGemm g;
    char name[96], err[256], red[112];
    if (case_plan(&cuda_cases[i], &d, &g, name, sizeof name)) return 1;
    char *src = cuda_gemm_source(&g, err, sizeof err);
    if (!src) {
      fprintf(stderr, "%s: %s\n", name, err);
      return 1;
    }
    const int sms[] = {80, 90};
    for (int s = 0; s < 2; s++) {
      char *ptx = nvrtc_ptx(src, sms[s]);
      if (!ptx) {
        fails++;
        continue;
      }
      const HwTarget *hw = hw_find_builtin(cuda_cases[i].target);
      fails += check_kernel(ptx, sms[s], name, &d, true, hw);
      snprintf(red, sizeof red, "%s_reduce", name);
      if (d.split_k > 1) fails += check_kernel(ptx, sms[s], red, &d, false, hw);
      free(ptx);
    }
    free(src);
  }
  if (fails) fprintf(stderr, "%d kernel checks failed\n", fails);
  return fails ? 1 : 0;
}
