/* cmd_probe.c — `nnc probe`: measure this machine's peak FP32 FMA throughput (all cores,
 * widest vector unit) and its memory bandwidth (STREAM triad), and store them as the
 * `host` target ($XDG_CONFIG_HOME/nnc/host.json or ~/.config/nnc/host.json). */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../passes/hw.h"
#include "driver.h"

#define CHAINS 12 /* independent accumulators: enough for 2 FMA pipes x latency 4-6 */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* each kernel returns FLOPs done and leaves its result in *sink so nothing is elided */
#if defined(__x86_64__)
__attribute__((target("avx512f"))) static double fma512(long iters, float *sink) {
  __m512 acc[CHAINS], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps((float)j);
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
  __m512 s = acc[0];
  for (int j = 1; j < CHAINS; j++) s = _mm512_add_ps(s, acc[j]);
  *sink = _mm512_reduce_add_ps(s);
  return (double)iters * CHAINS * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma256(long iters, float *sink) {
  __m256 acc[CHAINS], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_set1_ps((float)j);
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_fmadd_ps(acc[j], b, c);
  float out[8];
  __m256 s = acc[0];
  for (int j = 1; j < CHAINS; j++) s = _mm256_add_ps(s, acc[j]);
  _mm256_storeu_ps(out, s);
  *sink = out[0] + out[7];
  return (double)iters * CHAINS * 8 * 2;
}
#endif

/* portable: 4-lane vectors, multiply and add (2 FLOPs, fused where the target can) */
typedef float v4 __attribute__((vector_size(16)));
static double fma128(long iters, float *sink) {
  v4 acc[CHAINS], b = {0.999999f, 0.999999f, 0.999999f, 0.999999f}, c = {1e-7f, 1e-7f, 1e-7f, 1e-7f};
  for (int j = 0; j < CHAINS; j++) acc[j] = (v4){(float)j, (float)j, (float)j, (float)j};
  for (long i = 0; i < iters; i++)
    for (int j = 0; j < CHAINS; j++) acc[j] = acc[j] * b + c;
  v4 s = acc[0];
  for (int j = 1; j < CHAINS; j++) s += acc[j];
  *sink = s[0] + s[3];
  return (double)iters * CHAINS * 4 * 2;
}

typedef double (*FmaFn)(long, float *);

typedef struct Job {
  FmaFn fn;
  long iters;
  double flops;
  float sink;
  /* bandwidth */
  float *a, *b, *c;
  size_t lo, hi;
  pthread_barrier_t *bar;
  double t0, t1;
} Job;

static void *run_fma(void *p) {
  Job *j = p;
  pthread_barrier_wait(j->bar);
  j->t0 = now();
  j->flops = j->fn(j->iters, &j->sink);
  j->t1 = now();
  return NULL;
}

static void *run_triad(void *p) {
  Job *j = p;
  pthread_barrier_wait(j->bar);
  j->t0 = now();
  for (size_t i = j->lo; i < j->hi; i++) j->a[i] = j->b[i] + 3.0f * j->c[i];
  j->t1 = now();
  return NULL;
}

/* run nt jobs at once; returns the wall time from the first start to the last end */
static double run_all(Job *jobs, int nt, void *(*fn)(void *)) {
  pthread_t th[256];
  pthread_barrier_t bar;
  pthread_barrier_init(&bar, NULL, (unsigned)nt);
  for (int i = 0; i < nt; i++) {
    jobs[i].bar = &bar;
    pthread_create(&th[i], NULL, fn, &jobs[i]);
  }
  double t0 = 1e300, t1 = 0;
  for (int i = 0; i < nt; i++) {
    pthread_join(th[i], NULL);
    if (jobs[i].t0 < t0) t0 = jobs[i].t0;
    if (jobs[i].t1 > t1) t1 = jobs[i].t1;
  }
  pthread_barrier_destroy(&bar);
  return t1 - t0;
}

static FmaFn pick_fma(int *bits) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return *bits = 512, fma512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return *bits = 256, fma256;
#endif
  *bits = 128;
  return fma128;
}

static double probe_fma(int nt, double seconds, int *bits) {
  FmaFn fn = pick_fma(bits);
  Job one = {.fn = fn, .iters = 1 << 16};
  float s;
  double t0 = now();
  fn(one.iters, &s);
  double dt = now() - t0;
  long iters = (long)((double)one.iters * seconds / (dt > 1e-6 ? dt : 1e-6));
  if (iters < 1000) iters = 1000;
  Job jobs[256];
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    for (int i = 0; i < nt; i++) jobs[i] = (Job){.fn = fn, .iters = iters};
    double wall = run_all(jobs, nt, run_fma);
    double fl = 0;
    for (int i = 0; i < nt; i++) fl += jobs[i].flops;
    if (wall > 0 && fl / wall > best) best = fl / wall;
  }
  return best;
}

static double probe_bw(int nt, size_t n) {
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
  if (!a || !b || !c) {
    free(a), free(b), free(c);
    return 0;
  }
  Job jobs[256];
  double best = 0;
  for (int rep = 0; rep < 6; rep++) {
    for (int i = 0; i < nt; i++) {
      jobs[i] = (Job){.a = a, .b = b, .c = c, .lo = n * (size_t)i / (size_t)nt,
                      .hi = n * (size_t)(i + 1) / (size_t)nt};
      if (rep == 0) /* first touch by the thread that will use the pages */
        for (size_t k = jobs[i].lo; k < jobs[i].hi; k++) a[k] = 0, b[k] = 1, c[k] = 2;
    }
    double wall = run_all(jobs, nt, run_triad);
    double bw = wall > 0 ? 3.0 * (double)n * sizeof(float) / wall : 0;
    if (rep > 0 && bw > best) best = bw; /* rep 0 warms up */
  }
  volatile float keep = a[n / 2];
  (void)keep;
  free(a), free(b), free(c);
  return best;
}

static void usage(FILE *out) {
  fputs("usage: nnc probe [--output FILE] [--quick]\n"
        "Measures this machine's peak FP32 FMA throughput and memory bandwidth and saves them\n"
        "as the 'host' target (default file: $XDG_CONFIG_HOME/nnc/host.json or\n"
        "~/.config/nnc/host.json), used by 'nnc cost --target host'.\n"
        "  --output FILE   write there instead\n"
        "  --quick         shorter measurement (less accurate)\n",
        out);
}

int cmd_probe(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"quick", no_argument, 0, 'q'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *outp = NULL;
  bool quick = false;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    if (c == 'h') return usage(stdout), 0;
    if (c == 'o') outp = optarg;
    else if (c == 'q') quick = true;
    else return usage(stderr), 2;
  }
  if (optind != argc) return usage(stderr), 2;
  char path[4096];
  if (outp) snprintf(path, sizeof path, "%s", outp);
  else if (hw_host_path(path, sizeof path)) {
    fprintf(stderr, "nnc probe: error: neither XDG_CONFIG_HOME nor HOME is set; use --output\n");
    return 1;
  }
  HwTarget t;
  hw_host_estimate(&t);
  int nt = t.cores > 256 ? 256 : t.cores, bits;
  double peak = probe_fma(nt, quick ? 0.05 : 0.3, &bits);
  double bw = probe_bw(nt, quick ? (size_t)8 << 20 : (size_t)32 << 20);
  if (peak <= 0 || bw <= 0) {
    fprintf(stderr, "nnc probe: error: measurement failed\n");
    return 1;
  }
  t.peak[HWP_F32] = peak;
  t.peak[HWP_F64] = peak / 2;
  t.mem_bw = bw;
  t.vector_bits = bits;
  t.measured = true;
  snprintf(t.desc, sizeof t.desc, "this machine, measured by nnc probe: %d threads, %d-bit FMA",
           nt, bits);
  char err[512];
  if (hw_save_file(&t, path, err, sizeof err)) {
    fprintf(stderr, "nnc probe: error: %s\n", err);
    return 1;
  }
  printf("peak FP32 FMA: %.1f GFLOP/s (%d threads, %d-bit vectors)\n", peak / 1e9, nt, bits);
  printf("memory bandwidth (triad): %.1f GB/s\n", bw / 1e9);
  printf("caches: L1d %lld KiB, L2 %lld KiB, L3 %lld KiB\n", (long long)(t.l1_bytes / 1024),
         (long long)(t.l2_bytes_cpu / 1024), (long long)(t.l3_bytes / 1024));
  printf("saved as target 'host' in %s\n", path);
  return 0;
}
