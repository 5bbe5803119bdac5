/* test_cuda_nvrtc.c — the kernels of cuda_cases.h through NVRTC for sm_80 and sm_90, and the
 * toolkit's ptxas -v on the PTX: no local-memory spills, no stack frame, no static shared
 * memory (all of it dynamic, sized by the tile plan), and registers per thread that allow the
 * CTAs per SM the tiles pass assumed (regs x threads x CTAs <= registers per SM). A source
 * that does not compile reports NVRTC's log in the error. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../codegen/cuda/nvrtc/cuda_nvrtc.h"
#include "case_plan.h"

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

/* the elementwise and reduction cases in one source */
static char *ew_red_source(void) {
  char *buf = NULL, err[256] = "unknown op name";
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fputs(cuda_prelude_text(), f);
  int rc = 0;
  for (int i = 0; i < CUDA_NEW_CASES && !rc; i++) {
    CudaEwStep st[4];
    CudaEw e;
    rc = case_ew(&cuda_ew_cases[i], st, &e) || cuda_ew_emit(f, &e, err, sizeof err);
  }
  for (int i = 0; i < CUDA_NRED_CASES && !rc; i++) {
    CudaReduce r;
    rc = case_red(&cuda_red_cases[i], &r) || cuda_reduce_emit(f, &r, err, sizeof err);
  }
  if (fclose(f) || rc) {
    fprintf(stderr, "%s\n", err);
    free(buf);
    return NULL;
  }
  return buf;
}

static int check_ew_red(void) {
  char *src = ew_red_source(), err[4096];
  int fails = !src;
  for (int s = 0; s < 2 && src; s++) {
    int sm = s ? 90 : 80;
    char *ptx = cuda_nvrtc_ptx(src, "nnc_ew.cu", sm, err, sizeof err);
    if (!ptx) {
      fprintf(stderr, "%s\n", err);
      fails++;
      continue;
    }
    for (int i = 0; i < CUDA_NEW_CASES; i++) fails += check_kernel(ptx, sm, cuda_ew_cases[i].name, NULL, false, NULL);
    for (int i = 0; i < CUDA_NRED_CASES; i++) fails += check_kernel(ptx, sm, cuda_red_cases[i].name, NULL, false, NULL);
    free(ptx);
  }
  free(src);
  return fails;
}

int main(void) {
  int fails = 0;
  char lerr[2048];
  char *bad = cuda_nvrtc_ptx("__global__ void k() { undeclared_name = 1; }", "bad.cu", 80, lerr, sizeof lerr);
  if (bad || !strstr(lerr, "bad.cu") || !strstr(lerr, "undeclared_name")) {
    fprintf(stderr, "a failing compile must report NVRTC's log: %s\n", bad ? "(compiled)" : lerr);
    fails++;
  }
  free(bad);
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
      char *ptx = cuda_nvrtc_ptx(src, name, sms[s], err, sizeof err);
      if (!ptx) {
        fprintf(stderr, "%s\n", err);
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
  fails += check_ew_red();
  if (fails) fprintf(stderr, "%d kernel checks failed\n", fails);
  return fails ? 1 : 0;
}
