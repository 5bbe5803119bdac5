/* rt_main.c — the program main of every executable `nnc build` produces:
 *   NAME info | init | infer | train | bench  [--threads T]
 * Everything model-specific comes from the RtModelDesc, so one main serves every model; the
 * driver links a two-line main() that passes the model's descriptor to rt_program_main. */
#include <errno.h>
#include <inttypes.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_io.h"
#include "rt_mem.h"
#include "rt_profile.h"
#include "rt_program.h"
#include "rt_threads.h"
#include "rt_val.h"

#define MAX_BIND 32

typedef struct Prog {
  const RtModelDesc *d;
  const char *fwd_inputs;
  const char *val_loss; /* the loss `train --val` evaluates (rt_val.h), or NULL */
  const char *argv0; /* program name for messages */
  const char *cmd;
  int threads;
  int strict; /* --strict: a checkpoint of another model or other dims is an error */
  RtDist *dist; /* data-parallel training, or NULL */
} Prog;

static int nranks(const Prog *p) { return p->dist ? p->dist->size : 1; }
static int rank0(const Prog *p) { return !p->dist || p->dist->rank == 0; }

static int perr(const Prog *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int perr(const Prog *p, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s%s%s: error: ", p->argv0, p->cmd ? " " : "", p->cmd ? p->cmd : "");
  if (nranks(p) > 1) fprintf(stderr, "rank %d: ", p->dist->rank);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage(const Prog *p, FILE *out) {
  fprintf(out,
          "usage: %s <command> [options]\n"
          "model '%s'%s%s, batch %" PRId64 "\n\n"
          "commands:\n"
          "  info                                shapes, parameters, memory, cost estimate\n"
          "  init [--seed S] -o W.safetensors    parameters from their initializers\n"
          "  infer (--weights W | --seed S) --in NAME=X.npy... [--out NAME=Y.npy]...\n"
          "                                      forward pass over all samples of the inputs\n"
          "  train [--weights W] --data NAME=X.npy[,NAME=L.npy...] [--epochs E]\n"
          "        [--val NAME=X.npy,NAME=L.npy...] [--save W2.safetensors] [--seed S]\n"
          "        [--log LOSS.csv] [--quiet] [--check-finite] [--no-overlap]\n"
          "                                      shuffled mini-batch training; --val: held-out\n"
          "                                      loss (and accuracy) after every epoch;\n"
          "                                      --check-finite stops at the first NaN/inf in\n"
          "                                      outputs or weights; --no-overlap (under\n"
          "                                      mpirun): the gradients' all-reduce after\n"
          "                                      the backward pass, not during it;\n"
          "                                      --bucket-kib K: its buckets (25 MiB)\n"
          "  bench [--train] [--iters K] [--weights W] [--profile [--json] [--svg F]]\n"
          "                                      time per step vs the cost-model estimate;\n"
          "                                      --profile: per kernel, sorted by time\n\n"
          "every command takes --threads T (default: one per CPU) and --strict (a\n"
          "checkpoint whose metadata names another model or other dims is an error, not a\n"
          "warning).\n",
          p->argv0, p->d->name, p->d->dims && *p->d->dims ? " built with " : "",
          p->d->dims ? p->d->dims : "", p->d->batch);
}

/* ---- option parsing ---------------------------------------------------------------------- */

typedef struct Args {
  int argc, i;
  char **argv;
  const char *opt; /* current option name, for messages */
} Args;

/* next option: returns its name ("--seed", "-o") and sets *val for options in `with_val`
 * (from "--x=v" or the next argument); NULL at the end. *bad set on a missing value. */
static const char *next_opt(Args *a, const char *const *with_val, const char **val, int *bad) {
  static char name[64];
  *val = NULL;
  if (a->i >= a->argc) return NULL;
  const char *s = a->argv[a->i++];
  const char *eq = strncmp(s, "--", 2) ? NULL : strchr(s, '=');
  size_t len = eq ? (size_t)(eq - s) : strlen(s);
  if (len >= sizeof name) len = sizeof name - 1;
  memcpy(name, s, len);
  name[len] = 0;
  a->opt = name;
  for (const char *const *w = with_val; *w; w++)
    if (!strcmp(*w, name)) {
      if (eq)
        *val = eq + 1;
      else if (a->i < a->argc)
        *val = a->argv[a->i++];
      else
        *bad = 1;
      return name;
    }
  if (eq) *bad = 1; /* a value given to a flag */
  return name;
}

static int parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (!*s || *end || errno) return -1;
  *out = v;
  return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (*s == '-') return -1;
  unsigned long long v = strtoull(s, &end, 0);
  if (!*s || *end || errno) return -1;
  *out = v;
  return 0;
}

typedef struct Bind {
  char name[128];
  const char *path;
} Bind;

/* "a=X.npy,b=Y.npy" appended to b[] */
static int parse_binds(const Prog *p, const char *opt, const char *arg, Bind *b, int *n) {
  const char *s = arg;
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    const char *eq = memchr(s, '=', len);
    if (!eq || eq == s || eq == s + len - 1 || (size_t)(eq - s) >= sizeof b->name) {
      perr(p, "%s expects NAME=FILE.npy[,NAME=FILE.npy...], got '%s'", opt, arg);
      return -1;
    }
    if (*n == MAX_BIND) {
      perr(p, "too many %s files", opt);
      return -1;
    }
    memcpy(b[*n].name, s, (size_t)(eq - s));
    b[*n].name[eq - s] = 0;
    b[*n].path = strndup(eq + 1, len - (size_t)(eq - s) - 1);
    for (int k = 0; k < *n; k++)
      if (!strcmp(b[k].name, b[*n].name)) {
        perr(p, "%s names '%s' twice", opt, b[*n].name);
        free((void *)b[*n].path);
        return -1;
      }
    (*n)++;
    s += len;
    if (*s == ',') s++;
  }
  return 0;
}

static void free_binds(Bind *b, int n) {
  for (int k = 0; k < n; k++) free((void *)b[k].path);
}

static const char *const common_val[] = {"--threads", NULL};

/* handles --threads and --help; 1 = consumed, 0 = not mine, -1 = error (printed), 2 = help */
static int common_opt(Prog *p, const char *name, const char *val) {
  if (!strcmp(name, "--threads")) {
    int64_t t;
    if (!val || parse_i64(val, &t) || t < 0 || t > 1024) {
      perr(p, "--threads expects a thread count (0 = one per CPU), got '%s'", val ? val : "");
      return -1;
    }
    p->threads = (int)t;
    return 1;
  }
  if (!strcmp(name, "--strict")) {
    p->strict = 1;
    return 1;
  }
  if (!strcmp(name, "--help") || !strcmp(name, "-h")) return 2;
  return 0;
}

static int unknown_opt(const Prog *p, const char *name) {
  if (name[0] == '-')
    perr(p, "unknown option '%s' (see '%s --help')", name, p->argv0);
  else
    perr(p, "unexpected argument '%s' (see '%s --help')", name, p->argv0);
  return 2;
}

static int missing_val(const Prog *p, const char *name) {
  return perr(p, "option '%s' needs a value", name), 2;
}

/* flags: RT_CTX_INFER for the commands that only run the forward pass (nothing of the
 * training step is allocated), RT_CTX_TRAIN for those that train */
static RtCtx *make_ctx(const Prog *p, unsigned flags) {
  char err[512];
  RtCtx *c = rt_ctx_create_ex(p->d, p->threads, flags, NULL, 0, err, sizeof err);
  if (!c) perr(p, "%s", err);
  return c;
}

static int load_weights(const Prog *p, RtCtx *c, const char *path) {
  int unknown = 0;
  if (rt_ctx_load(c, path, &unknown)) return perr(p, "%s", rt_ctx_error(c));
  const char *w = rt_ctx_warning(c);
  if (*w && p->strict) return perr(p, "%s: %s (--strict)", path, w);
  if (!rank0(p)) return 0; /* every rank loads the same file: one warning, not P */
  if (*w) fprintf(stderr, "%s: warning: %s: %s\n", p->argv0, path, w);
  if (unknown)
    fprintf(stderr, "%s: warning: %s: %d tensor%s not in model '%s' ignored\n", p->argv0, path,
            unknown, unknown == 1 ? "" : "s", p->d->name);
  return 0;
}

/* ---- info -------------------------------------------------------------------------------- */

/* What the compiler's memory plan did to the training step (budget, recomputation), one or
 * more lines of text written by `nnc build` into the program's main, which passes it here
 * before rt_program_main; NULL for programs that do not. Declared by the caller (the
 * generated main) until rt_program.h carries it. */
static const char *g_plan_text;
void rt_program_set_plan(const char *text) { g_plan_text = text; }

static void fmt_bytes(double b, char *buf, size_t n) {
  if (b < 1024)
    snprintf(buf, n, "%.0f B", b);
  else if (b < 1024.0 * 1024)
    snprintf(buf, n, "%.1f KiB", b / 1024);
  else if (b < 1024.0 * 1024 * 1024)
    snprintf(buf, n, "%.2f MiB", b / (1024.0 * 1024));
  else
    snprintf(buf, n, "%.2f GiB", b / (1024.0 * 1024 * 1024));
}

static void fmt_count(double v, const char *unit, char *buf, size_t n) {
  const char *pre[] = {"", "K", "M", "G", "T", "P"};
  int k = 0;
  while (fabs(v) >= 1000 && k < 5) {
    v /= 1000;
    k++;
  }
  snprintf(buf, n, k ? "%.2f %s%s" : "%.0f %s%s", v, pre[k], unit);
}

static void fmt_time(double s, char *buf, size_t n) {
  if (s >= 1)
    snprintf(buf, n, "%.3f s", s);
  else if (s >= 1e-3)
    snprintf(buf, n, "%.3f ms", s * 1e3);
  else
    snprintf(buf, n, "%.2f us", s * 1e6);
}

static const char *init_name(const RtTensorInfo *t, char *buf, size_t n) {
  switch (t->init) {
  case RT_INIT_ONES: return "ones";
  case RT_INIT_NORMAL: snprintf(buf, n, "normal(%g)", t->init_a); return buf;
  case RT_INIT_UNIFORM: snprintf(buf, n, "uniform(%g, %g)", t->init_a, t->init_b); return buf;
  case RT_INIT_XAVIER: return "xavier";
  case RT_INIT_HE: return "he";
  case RT_INIT_CONST: snprintf(buf, n, "const(%g)", t->init_a); return buf;
  default: return "zeros";
  }
}

static void list_kind(const RtModelDesc *d, int kind, const char *title, int with_init) {
  int n = rt_desc_count(d, kind);
  if (!n) return;
  int64_t elems = 0, bytes = 0;
  for (int k = 0; k < n; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, kind, k)];
    elems += rt_info_numel(t);
    bytes += t->nbytes;
  }
  char eb[32], bb[32];
  fmt_count((double)elems, "", eb, sizeof eb);
  fmt_bytes((double)bytes, bb, sizeof bb);
  if (kind == RT_KIND_INPUT || kind == RT_KIND_OUTPUT)
    printf("%s:\n", title);
  else
    printf("%s: %d tensor%s, %" PRId64 " elements (%s)\n", title, n, n == 1 ? "" : "s", elems,
           bb);
  for (int k = 0; k < n; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, kind, k)];
    char ty[128], ib[64];
    rt_info_type_str(t, ty, sizeof ty);
    if (with_init)
      printf("  %-28s %-20s %s\n", t->name, ty, init_name(t, ib, sizeof ib));
    else
      printf("  %-28s %s\n", t->name, ty);
  }
}

/* the expected peak of `infer` and `train` (rt_mem.h) with the run's thread count, in
 * words and in bytes for scripts */
static void info_process_memory(const RtModelDesc *d, int threads) {
  RtMemFigures f;
  rt_mem_figures(d, &f);
  int nt = rt_mem_threads(threads);
  char b[9][32];
  fmt_bytes((double)rt_mem_infer_peak(&f, 0, nt), b[0], sizeof b[0]);
  fmt_bytes((double)f.weights, b[1], sizeof b[1]);
  fmt_bytes((double)f.io, b[2], sizeof b[2]);
  fmt_bytes((double)f.arena_forward, b[3], sizeof b[3]);
  fmt_bytes((double)f.inputs, b[4], sizeof b[4]);
  snprintf(b[5], sizeof b[5], "%d MiB + %d MiB per thread", (int)(RT_MEM_RUNTIME_BYTES >> 20),
           (int)(RT_MEM_THREAD_BYTES >> 20));
  fmt_bytes((double)f.thread_forward, b[6], sizeof b[6]);
  printf("process memory, expected peak with %d thread%s (--threads):\n", nt, nt == 1 ? "" : "s");
  printf("  infer: %s + %" PRId64 " B per sample (weights %s, io %s, forward arena %s, input "
         "staging %s, %s of GEMM packing per thread, runtime %s; the outputs of every sample "
         "are kept for the file)\n",
         b[0], f.out_per_sample, b[1], b[2], b[3], b[4], b[6], b[5]);
  if (d->train_step) {
    int64_t arena = f.arena_train > f.arena_forward ? f.arena_train : f.arena_forward;
    int64_t per = f.thread_train > f.thread_forward ? f.thread_train : f.thread_forward;
    fmt_bytes((double)rt_mem_train_peak(&f, 0, nt), b[0], sizeof b[0]);
    fmt_bytes((double)f.optstate, b[7], sizeof b[7]);
    fmt_bytes((double)arena, b[8], sizeof b[8]);
    fmt_bytes((double)per, b[6], sizeof b[6]);
    printf("  train: %s + 8 B per sample (weights %s, optimizer state %s, io %s, arena %s, %s "
           "of GEMM packing per thread, runtime %s; the data set is mapped, not copied)\n",
           b[0], b[1], b[7], b[2], b[8], b[6], b[5]);
  }
  printf("expected peak bytes: infer %" PRId64 " + %" PRId64 "/sample",
         rt_mem_infer_peak(&f, 0, nt), f.out_per_sample);
  if (d->train_step) printf(", train %" PRId64 " + 8/sample", rt_mem_train_peak(&f, 0, nt));
  printf("\n");
}

static int cmd_info(Prog *p, Args *a) {
  const char *name, *val;
  int bad = 0;
  while ((name = next_opt(a, common_val, &val, &bad))) {
    if (bad) return missing_val(p, name);
    int r = common_opt(p, name, val);
    if (r < 0) return 2;
    if (r == 2) return usage(p, stdout), 0;
    if (!r) return unknown_opt(p, name);
  }
  const RtModelDesc *d = p->d;
  printf("model %s", d->name);
  if (d->dims && *d->dims) printf(" (built with %s)", d->dims);
  printf(", batch %" PRId64 "\n", d->batch);
  list_kind(d, RT_KIND_INPUT, "inputs", 0);
  list_kind(d, RT_KIND_OUTPUT, "outputs", 0);
  list_kind(d, RT_KIND_PARAM, "parameters", 1);
  list_kind(d, RT_KIND_BUFFER, "buffers", 1);
  if (d->train_step) {
    int li = rt_desc_nth(d, RT_KIND_LOSS, 0);
    printf("training: %s, loss '%s'%s\n", d->optimizer && *d->optimizer ? d->optimizer : "yes",
           li >= 0 ? d->tensors[li].name : "?",
           d->sync_bn ? ", batchnorm statistics of the global batch (--sync-bn)" : "");
    list_kind(d, RT_KIND_OPTSTATE, "optimizer state", 0);
  } else {
    printf("training: no (the .nn file has no train section)\n");
  }
  char b1[32], b2[32], b3[32], b4[32];
  fmt_bytes((double)d->params_bytes, b1, sizeof b1);
  fmt_bytes((double)d->io_bytes, b2, sizeof b2);
  fmt_bytes((double)d->arena_bytes_forward, b3, sizeof b3);
  fmt_bytes((double)d->arena_bytes_train, b4, sizeof b4);
  printf("memory: params %s, io %s, scratch %s (forward", b1, b2, b3);
  if (d->packed_bytes > 0) {
    fmt_bytes((double)d->packed_bytes, b1, sizeof b1);
    printf(", of which %s of weights packed once", b1);
  }
  printf(")");
  if (d->train_step) printf(", %s (training step)", b4);
  fmt_bytes((double)rt_ctx_memory_bytes(d), b1, sizeof b1);
  printf("; %s in all\n", b1);
  printf("arena: %" PRId64 " bytes (forward)", d->arena_bytes_forward);
  if (d->train_step)
    printf(", %" PRId64 " bytes (training step); params + io + arena %" PRId64 " bytes",
           d->arena_bytes_train, d->params_bytes + d->io_bytes + d->arena_bytes_train);
  printf("\n");
  info_process_memory(d, p->threads);
  if (g_plan_text && *g_plan_text) {
    fputs(g_plan_text, stdout);
    if (g_plan_text[strlen(g_plan_text) - 1] != '\n') putchar('\n');
  }
  char f[32], t[32];
  fmt_count(d->forward_flops, "FLOP", f, sizeof f);
  fmt_time(d->est_forward_s, t, sizeof t);
  printf("cost model: forward %s, estimated %s per batch", f, t);
  if (d->train_step) {
    fmt_count(d->train_flops, "FLOP", f, sizeof f);
    fmt_time(d->est_train_s, t, sizeof t);
    printf("; training step %s, estimated %s", f, t);
  }
  printf("\n");
  return 0;
}

/* ---- init -------------------------------------------------------------------------------- */

static int cmd_init(Prog *p, Args *a) {
  static const char *const wv[] = {"--threads", "--seed", "-o", "--out", NULL};
  const char *name, *val, *out = NULL;
  uint64_t seed = 0;
  int bad = 0;
  while ((name = next_opt(a, wv, &val, &bad))) {
    if (bad) return missing_val(p, name);
    int r = common_opt(p, name, val);
    if (r < 0) return 2;
    if (r == 2) return usage(p, stdout), 0;
    if (r) continue;
    if (!strcmp(name, "--seed")) {
      if (parse_u64(val, &seed)) return perr(p, "--seed expects an integer, got '%s'", val), 2;
    } else if (!strcmp(name, "-o") || !strcmp(name, "--out")) {
      out = val;
    } else {
      return unknown_opt(p, name);
    }
  }
  if (!out) return perr(p, "give the output file: -o W.safetensors"), 2;
  p->threads = 1;
  RtCtx *c = make_ctx(p, RT_CTX_TRAIN); /* the file holds a fresh optimizer state */
  if (!c) return 1;
  rt_ctx_init(c, seed);
  char meta[64];
  snprintf(meta, sizeof meta, "{\"nnc.seed\":\"%" PRIu64 "\"}", seed);
  int rc = rt_ctx_save(c, out, meta) ? perr(p, "%s", rt_ctx_error(c)) : 0;
  rt_ctx_destroy(c);
  return rc;
}

/* ---- reading data ------------------------------------------------------------------------ */

/* The .npy files bound to the model's inputs, mapped read-only (rt_io.h): batches are
 * gathered from the mappings, so a data set costs page cache, not a private copy. view[k] is
 * the file of the k-th input (unbound: path NULL); n is the number of samples. */
typedef struct Data {
  int ninputs;
  RtNpyView *view;
  int64_t n;
} Data;

static void data_free(Data *dt) {
  for (int k = 0; dt->view && k < dt->ninputs; k++)
    if (dt->view[k].path) rt_npy_close(&dt->view[k]);
  free(dt->view);
  memset(dt, 0, sizeof *dt);
}

static void view_type_str(const RtNpyView *v, char *buf, size_t n) {
  RtTensorInfo g = {.dtype = v->dt, .rank = v->rank};
  for (int k = 0; k < v->rank; k++) g.shape[k] = v->shape[k];
  rt_info_type_str(&g, buf, n);
}

/* The shape of the file against input t: batched inputs take any number of samples (*n gets
 * it, and must agree across files), others their exact shape. */
static int check_view(const Prog *p, const RtTensorInfo *t, const RtNpyView *v, int64_t *n,
                      const char **n_from) {
  int batched = rt_info_batched(p->d, t), ok = v->rank == t->rank;
  for (int k = batched ? 1 : 0; ok && k < t->rank; k++) ok = v->shape[k] == t->shape[k];
  if (ok && batched && v->shape[0] < 1) ok = 0;
  if (!ok) {
    char got[128], want[128];
    view_type_str(v, got, sizeof got);
    rt_info_type_str(t, want, sizeof want);
    return perr(p, "%s: shape %s does not fit input '%s' %s%s", v->path, got, t->name, want,
                batched ? " (any number >= 1 of samples in the leading dim)" : "");
  }
  if (batched) {
    if (*n >= 0 && v->shape[0] != *n)
      return perr(p, "%s has %" PRId64 " samples but %s has %" PRId64, v->path, v->shape[0],
                  *n_from, *n);
    *n = v->shape[0];
    *n_from = v->path;
  }
  return 0;
}

static void list_names(const RtModelDesc *d, int kind, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < rt_desc_count(d, kind) && k < n; i++) {
    int w = snprintf(buf + k, n - k, "%s%s", i ? ", " : "", d->tensors[rt_desc_nth(d, kind, i)].name);
    if (w > 0) k += (size_t)w;
  }
}

/* the slot (index among the inputs) of the input named name, or -1 with a message */
static int input_slot(const Prog *p, const char *name) {
  const RtModelDesc *d = p->d;
  int idx = rt_desc_find(d, name);
  if (idx < 0 || d->tensors[idx].kind != RT_KIND_INPUT) {
    char names[512];
    list_names(d, RT_KIND_INPUT, names, sizeof names);
    perr(p, "model '%s' has no input named '%s' (its inputs: %s)", d->name, name, names);
    return -1;
  }
  for (int j = 0; j < rt_desc_count(d, RT_KIND_INPUT); j++)
    if (rt_desc_nth(d, RT_KIND_INPUT, j) == idx) return j;
  return -1;
}

/* random: the samples will be read in shuffled order */
static int data_open(const Prog *p, const Bind *b, int nb, Data *dt, int random) {
  const RtModelDesc *d = p->d;
  const char *n_from = NULL;
  dt->ninputs = rt_desc_count(d, RT_KIND_INPUT);
  dt->n = -1;
  if (!(dt->view = calloc((size_t)dt->ninputs + 1, sizeof *dt->view)))
    return perr(p, "out of memory");
  for (int k = 0; k < nb; k++) {
    int slot = input_slot(p, b[k].name);
    char err[512];
    if (slot < 0) return 1;
    if (rt_npy_open(b[k].path, &dt->view[slot], err, sizeof err)) return perr(p, "%s", err);
    if (random) rt_map_advise_random(&dt->view[slot].map);
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_INPUT, slot)];
    if (check_view(p, t, &dt->view[slot], &dt->n, &n_from)) return 1;
  }
  return 0;
}

/* is input `name` one the forward pass reads? */
static int fwd_needs(const Prog *p, const char *name) {
  if (!p->fwd_inputs) return 1;
  size_t len = strlen(name);
  for (const char *s = p->fwd_inputs; *s;) {
    const char *c = strchr(s, ',');
    size_t l = c ? (size_t)(c - s) : strlen(s);
    if (l == len && !strncmp(s, name, len)) return 1;
    s += l;
    if (*s) s++;
  }
  return 0;
}

/* every input that `needed` selects has a file; opt names the option for the message */
static int data_complete(const Prog *p, const Data *dt, const char *opt, int all) {
  const RtModelDesc *d = p->d;
  for (int k = 0; k < dt->ninputs; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_INPUT, k)];
    if (dt->view[k].path || (!all && !fwd_needs(p, t->name))) continue;
    char ty[128];
    rt_info_type_str(t, ty, sizeof ty);
    return perr(p, "missing %s %s=FILE.npy (input '%s' %s)", opt, t->name, t->name, ty);
  }
  return 0;
}

/* Samples rows[0..m) (or first..first+m) of input k, as the input's dtype, into dst;
 * an unbatched input is copied whole. Samples taken in file order (rows NULL) are checked
 * on the way in (labels and indices in range, floats finite), positions counted in the
 * file; `train` checks its files in one such pass before it shuffles. */
static int data_gather(const Prog *p, const Data *dt, int k, const int64_t *rows, int64_t first,
                       int64_t m, void *dst) {
  const RtTensorInfo *t = &p->d->tensors[rt_desc_nth(p->d, RT_KIND_INPUT, k)];
  const RtNpyView *v = &dt->view[k];
  char err[512];
  int batched = rt_info_batched(p->d, t);
  int64_t nrows = batched ? m : v->rows, at = batched ? first : 0;
  if (rt_npy_gather(v, batched ? rows : NULL, at, nrows, (DType)t->dtype, dst, err, sizeof err))
    return perr(p, "%s", err);
  int64_t ne = nrows * v->row_elems;
  if (!rows && (rt_check_indices(t, dst, ne, at * v->row_elems, err, sizeof err) ||
                rt_check_finite_at(t, dst, ne, at * v->row_elems, "input", err, sizeof err)))
    return perr(p, "%s: %s", v->path, err);
  return 0;
}

/* ---- infer ------------------------------------------------------------------------------- */

static void print_summary(const RtTensorInfo *t, const float *v, int64_t n, int64_t numel) {
  char ty[128];
  RtTensorInfo g = *t;
  if (n >= 0) g.shape[0] = n;
  rt_info_type_str(&g, ty, sizeof ty);
  double mn = INFINITY, mx = -INFINITY, sum = 0;
  for (int64_t i = 0; i < numel; i++) {
    mn = v[i] < mn ? v[i] : mn;
    mx = v[i] > mx ? v[i] : mx;
    sum += v[i];
  }
  printf("%s: %s  min %.6g  max %.6g  mean %.6g\n  [", t->name, ty, mn, mx,
         numel ? sum / (double)numel : 0.0);
  for (int64_t i = 0; i < numel && i < 8; i++) printf("%s%.6g", i ? ", " : "", v[i]);
  printf("%s]\n", numel > 8 ? ", ..." : "");
}

typedef struct InferOpts {
  Bind ins[MAX_BIND], outs[MAX_BIND];
  int nin, nout, have_seed;
  uint64_t seed;
  const char *weights;
} InferOpts;

/* -1: go on; otherwise the exit status */
static int infer_parse(Prog *p, Args *a, InferOpts *o) {
  static const char *const wv[] = {"--threads", "--weights", "--seed", "--in", "--out", NULL};
  const char *name, *val;
  int bad = 0;
  while ((name = next_opt(a, wv, &val, &bad))) {
    if (bad) return missing_val(p, name);
    int r = common_opt(p, name, val);
    if (r < 0) return 2;
    if (r == 2) return usage(p, stdout), 0;
    if (r) continue;
    if (!strcmp(name, "--weights")) {
      o->weights = val;
    } else if (!strcmp(name, "--seed")) {
      if (parse_u64(val, &o->seed)) return perr(p, "--seed expects an integer, got '%s'", val), 2;
      o->have_seed = 1;
    } else if (!strcmp(name, "--in")) {
      if (parse_binds(p, "--in", val, o->ins, &o->nin)) return 2;
    } else if (!strcmp(name, "--out")) {
      if (parse_binds(p, "--out", val, o->outs, &o->nout)) return 2;
    } else {
      return unknown_opt(p, name);
    }
  }
  if (!o->weights == !o->have_seed)
    return perr(p, o->weights ? "--weights and --seed both set the parameters; give one"
                              : "give --weights W.safetensors (or --seed S for initial weights)"),
           2;
  for (int k = 0; k < o->nout; k++) {
    int idx = rt_desc_find(p->d, o->outs[k].name);
    if (idx < 0 || p->d->tensors[idx].kind != RT_KIND_OUTPUT) {
      char names[512];
      list_names(p->d, RT_KIND_OUTPUT, names, sizeof names);
      return perr(p, "model '%s' has no output named '%s' (its outputs: %s)", p->d->name,
                  o->outs[k].name, names);
    }
  }
  return -1;
}

/* Runs the forward pass over n samples in chunks of the batch, each chunk's inputs gathered
 * from the mapped files into one batch of staging memory; outbuf[k] gets n samples (or the
 * whole of an unbatched output). */
static int infer_run(const Prog *p, RtCtx *c, const Data *dt, int64_t n, void **outbuf) {
  const RtModelDesc *d = p->d;
  int64_t B = d->batch > 0 ? d->batch : 1;
  int nin = dt->ninputs, nout = rt_desc_count(d, RT_KIND_OUTPUT), rc = 1;
  RtMemFigures f;
  rt_mem_figures(d, &f);
  char *stage = calloc(1, (size_t)f.inputs + 64);
  const void **in = calloc((size_t)nin + 1, sizeof *in);
  void **out = calloc((size_t)nout + 1, sizeof *out);
  if (!stage || !in || !out) {
    perr(p, "out of memory");
    goto done;
  }
  for (int64_t s = 0; s < n; s += B) {
    int64_t m = n - s < B ? n - s : B, at = 0;
    for (int k = 0; k < nin; k++) {
      const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_INPUT, k)];
      in[k] = dt->view[k].path ? stage + at : NULL;
      if (in[k] && data_gather(p, dt, k, NULL, s, m, stage + at)) goto done;
      at += (t->nbytes + 63) / 64 * 64;
    }
    for (int k = 0; k < nout; k++) {
      const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_OUTPUT, k)];
      int64_t per = rt_info_batched(d, t) ? t->nbytes / t->shape[0] : 0;
      out[k] = (char *)outbuf[k] + (size_t)(per * s);
    }
    if (rt_ctx_infer(c, m, in, out)) {
      perr(p, "%s", rt_ctx_error(c));
      goto done;
    }
  }
  rc = 0;
done:
  free(stage);
  free(in);
  free(out);
  return rc;
}

/* outputs are written as float32 whatever the model's dtype (all outputs are f32 today) */
static int write_output(const Prog *p, const char *path, RtTensor *y) {
  char err[512];
  RtTensor conv = {0};
  const RtTensor *w = y;
  if (y->dt != DT_F32) { /* npy of the dtype the interpreter writes */
    if (rt_tensor_alloc(&conv, y->dt, y->rank, y->shape)) return perr(p, "out of memory");
    memcpy(conv.data, y->data, y->nbytes);
    if (rt_tensor_convert(&conv, DT_F32, err, sizeof err)) {
      rt_tensor_free(&conv);
      return perr(p, "%s: %s", path, err);
    }
    w = &conv;
  }
  int wr = rt_npy_write(path, w, err, sizeof err);
  rt_tensor_free(&conv);
  return wr ? perr(p, "%s", err) : 0;
}

static int infer_outputs(const Prog *p, const InferOpts *o, void **outbuf, int64_t n) {
  const RtModelDesc *d = p->d;
  for (int k = 0; k < rt_desc_count(d, RT_KIND_OUTPUT); k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_OUTPUT, k)];
    int batched = rt_info_batched(d, t);
    RtTensor y = {.dt = (DType)t->dtype, .rank = t->rank, .data = outbuf[k]};
    for (int j = 0; j < t->rank; j++) y.shape[j] = t->shape[j];
    if (batched) y.shape[0] = n;
    y.nbytes = (size_t)rt_tensor_numel(&y) * dt_size(y.dt);
    const char *path = NULL;
    for (int j = 0; j < o->nout; j++)
      if (!strcmp(o->outs[j].name, t->name)) path = o->outs[j].path;
    if (path && write_output(p, path, &y)) return 1;
    if (!path && !o->nout && y.dt == DT_F32)
      print_summary(t, y.data, batched ? n : -1, rt_tensor_numel(&y));
  }
  return 0;
}

/* one buffer per output for n samples */
static void **alloc_outputs(const Prog *p, int64_t n) {
  const RtModelDesc *d = p->d;
  int nout = rt_desc_count(d, RT_KIND_OUTPUT);
  void **outbuf = calloc((size_t)nout + 1, sizeof *outbuf);
  for (int k = 0; outbuf && k < nout; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_OUTPUT, k)];
    int64_t per = rt_info_batched(d, t) ? t->nbytes / t->shape[0] : 0;
    size_t bytes = per ? (size_t)(per * n) : (size_t)t->nbytes;
    if (!(outbuf[k] = malloc(bytes ? bytes : 1))) {
      for (int j = 0; j < k; j++) free(outbuf[j]);
      free(outbuf);
      return NULL;
    }
  }
  return outbuf;
}

static int cmd_infer(Prog *p, Args *a) {
  const RtModelDesc *d = p->d;
  InferOpts o = {0};
  Data dt = {0};
  void **outbuf = NULL;
  RtCtx *c = NULL;
  int rc = infer_parse(p, a, &o);
  if (rc >= 0) goto out;
  rc = 1;
  if (data_open(p, o.ins, o.nin, &dt, 0) || data_complete(p, &dt, "--in", 0)) goto out;
  int64_t n = dt.n;
  if (n < 0 || d->batch <= 0) n = d->batch > 0 ? d->batch : 1; /* only unbatched inputs */
  if (!(c = make_ctx(p, RT_CTX_INFER))) goto out;
  if (o.weights ? load_weights(p, c, o.weights) : rt_ctx_init(c, o.seed)) goto out;
  if (!(outbuf = alloc_outputs(p, n))) {
    perr(p, "out of memory for the outputs of %" PRId64 " samples", n);
    goto out;
  }
  if (infer_run(p, c, &dt, n, outbuf) || infer_outputs(p, &o, outbuf, n)) goto out;
  rc = 0;
out:
  rt_ctx_destroy(c);
  for (int k = 0; outbuf && k < rt_desc_count(d, RT_KIND_OUTPUT); k++) free(outbuf[k]);
  free(outbuf);
  data_free(&dt);
  free_binds(o.ins, o.nin);
  free_binds(o.outs, o.nout);
  return rc;
}

/* ---- train ------------------------------------------------------------------------------- */

static void progress(int epoch, int epochs, int64_t b, int64_t nb, double loss, double sps) {
  int width = 24, fill = nb ? (int)(width * b / nb) : width;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  fprintf(stderr, "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 "  loss %.4f  %.0f samples/s \033[K",
          epoch, epochs, bar, b, nb, loss, sps);
  fflush(stderr);
}

/* One line of the loss log, written whole or not at all: on a write error (a full disk) the
 * file is cut back to its last complete line and the error names the cause. *good: the
 * length of the complete lines so far. */
static int log_line(const Prog *p, FILE *log, const char *path, long *good, const char *line) {
  if (fputs(line, log) >= 0 && fflush(log) == 0) {
    *good = ftell(log);
    return 0;
  }
  int e = errno;
  if (ftruncate(fileno(log), *good) == 0) clearerr(log);
  return perr(p, "%s: write failed: %s (the log keeps its complete lines)", path, strerror(e));
}

typedef struct TrainOpts {
  Bind data[MAX_BIND], val[MAX_BIND];
  int nd, nv, quiet, check_finite;
  int no_overlap; /* --no-overlap: the all-reduce after the whole backward pass */
  int64_t epochs, bucket_kib; /* --bucket-kib: the all-reduce's bucket size (0: default) */
  uint64_t seed;
  const char *weights, *save, *logpath;
} TrainOpts;

/* one option of `train` other than the common ones; 0, or the exit status */
static int train_opt(Prog *p, TrainOpts *o, const char *name, const char *val) {
  if (!strcmp(name, "--weights")) {
    o->weights = val;
  } else if (!strcmp(name, "--data")) {
    if (parse_binds(p, "--data", val, o->data, &o->nd)) return 2;
  } else if (!strcmp(name, "--val")) {
    if (parse_binds(p, "--val", val, o->val, &o->nv)) return 2;
  } else if (!strcmp(name, "--epochs")) {
    if (parse_i64(val, &o->epochs) || o->epochs < 1 || o->epochs > 1000000)
      return perr(p, "--epochs expects a positive integer, got '%s'", val), 2;
  } else if (!strcmp(name, "--save")) {
    o->save = val;
  } else if (!strcmp(name, "--seed")) {
    if (parse_u64(val, &o->seed)) return perr(p, "--seed expects an integer, got '%s'", val), 2;
  } else if (!strcmp(name, "--log")) {
    o->logpath = val;
  } else if (!strcmp(name, "--lr")) {
    return perr(p, "the learning rate is part of the model: %s (change the train section of "
                   "the .nn file and rebuild)",
                p->d->optimizer && *p->d->optimizer ? p->d->optimizer : "no optimizer"),
           2;
  } else if (!strcmp(name, "--quiet") || !strcmp(name, "-q")) {
    o->quiet = 1;
  } else if (!strcmp(name, "--check-finite")) {
    o->check_finite = 1;
  } else if (!strcmp(name, "--no-overlap")) {
    o->no_overlap = 1;
  } else if (!strcmp(name, "--bucket-kib")) {
    if (parse_i64(val, &o->bucket_kib) || o->bucket_kib < 1 || o->bucket_kib > (INT64_C(1) << 30))
      return perr(p, "--bucket-kib expects a positive integer, got '%s'", val), 2;
  } else {
    return unknown_opt(p, name);
  }
  return 0;
}

/* -1: go on; otherwise the exit status */
static int train_parse(Prog *p, Args *a, TrainOpts *o) {
  static const char *const wv[] = {"--threads", "--weights", "--data", "--epochs", "--save",
                                   "--seed",    "--log",     "--lr",   "--val",
                                   "--bucket-kib", NULL};
  const char *name, *val;
  int bad = 0;
  o->epochs = 1;
  while ((name = next_opt(a, wv, &val, &bad))) {
    if (bad) return missing_val(p, name);
    int r = common_opt(p, name, val);
    if (r < 0) return 2;
    if (r == 2) return usage(p, stdout), 0;
    if (!r && (r = train_opt(p, o, name, val))) return r;
  }
  if (!p->d->train_step)
    return perr(p, "model '%s' has no training step (its .nn file has no train section)",
                p->d->name);
  if (!o->nd) return perr(p, "give the training data: --data NAME=FILE.npy[,NAME=FILE.npy...]"), 2;
  return -1;
}

/* One pass over the data in file order, through each input's slot of the io region, before
 * the first step: a value out of range, not finite, or that does not convert (a file whose
 * bytes are not the input's dtype is converted batch by batch) is reported with its
 * position in the file rather than in the middle of a run. */
static int train_check_data(const Prog *p, RtCtx *c, const Data *dt) {
  const RtModelDesc *d = p->d;
  int64_t B = d->batch > 0 ? d->batch : 1;
  for (int k = 0; k < dt->ninputs; k++) {
    int idx = rt_desc_nth(d, RT_KIND_INPUT, k);
    if (!rt_info_batched(d, &d->tensors[idx])) {
      if (data_gather(p, dt, k, NULL, 0, 0, rt_ctx_data(c, idx))) return 1;
      continue;
    }
    for (int64_t s = 0; s < dt->n; s += B)
      if (data_gather(p, dt, k, NULL, s, dt->n - s < B ? dt->n - s : B, rt_ctx_data(c, idx)))
        return 1;
  }
  return 0;
}

/* ---- held-out evaluation (train --val) ------------------------------------------------- */

/* The held-out files, every output of the forward pass over their n samples, and the loss's
 * targets gathered once: rows targets, each against C values of the output. */
typedef struct Val {
  RtValLoss loss;
  Data dt;
  void **out, *tgt;
  int out_k;
  int64_t rows, C;
} Val;

static void val_free(const Prog *p, Val *V) {
  for (int k = 0; V->out && k < rt_desc_count(p->d, RT_KIND_OUTPUT); k++) free(V->out[k]);
  free(V->out);
  free(V->tgt);
  data_free(&V->dt);
}

/* the output of the loss (its slot among the outputs in V->out_k) and the target input's
 * slot (*ts), checked to pair up sample by sample */
static int val_tensors(const Prog *p, Val *V, int *ts) {
  const RtModelDesc *d = p->d;
  if ((*ts = input_slot(p, V->loss.tgt)) < 0) return 1;
  if (!V->dt.view[*ts].path)
    return perr(p, "missing --val %s=FILE.npy (the targets of the loss)", V->loss.tgt);
  for (V->out_k = 0; V->out_k < rt_desc_count(d, RT_KIND_OUTPUT); V->out_k++)
    if (!strcmp(d->tensors[rt_desc_nth(d, RT_KIND_OUTPUT, V->out_k)].name, V->loss.out)) break;
  if (V->out_k == rt_desc_count(d, RT_KIND_OUTPUT))
    return perr(p, "--val: model '%s' has no output '%s'", d->name, V->loss.out);
  const RtTensorInfo *o = &d->tensors[rt_desc_nth(d, RT_KIND_OUTPUT, V->out_k)];
  const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_INPUT, *ts)];
  V->C = V->loss.kind == RT_VAL_CE ? o->shape[o->rank - 1] : 1;
  if (!rt_info_batched(d, o) || !rt_info_batched(d, t) || V->C < 1 ||
      rt_info_numel(o) != rt_info_numel(t) * V->C)
    return perr(p, "--val: output '%s' and input '%s' do not pair up sample by sample",
                o->name, t->name);
  V->rows = rt_info_numel(t) / d->batch * V->dt.n;
  return 0;
}

/* the held-out files of --val opened and checked, their targets read: 0, or 1 after a message */
static int val_setup(const Prog *p, const TrainOpts *o, Val *V) {
  int ts;
  if (rt_val_parse(p->val_loss, &V->loss))
    return perr(p, "--val: the loss of model '%s' is not a cross_entropy or mse of one of its "
                   "outputs against one of its inputs, so the forward pass cannot evaluate it",
                p->d->name);
  if (data_open(p, o->val, o->nv, &V->dt, 0) || data_complete(p, &V->dt, "--val", 0)) return 1;
  if (V->dt.n < 1) return perr(p, "--val: no batched input was given");
  if (val_tensors(p, V, &ts)) return 1;
  size_t bytes = (size_t)V->rows * sizeof(float);
  if ((uint64_t)V->rows > SIZE_MAX / sizeof(float) || !(V->tgt = malloc(bytes ? bytes : 1)) ||
      !(V->out = alloc_outputs(p, V->dt.n)))
    return perr(p, "out of memory for %" PRId64 " held-out samples", V->dt.n);
  return data_gather(p, &V->dt, ts, NULL, 0, V->dt.n, V->tgt);
}

/* the forward pass (inference mode) over the held-out set: "  val_loss L[  val_acc A]" */
static int val_epoch(const Prog *p, RtCtx *c, Val *V, char *buf, size_t n) {
  RtValSum sum = {0};
  if (infer_run(p, c, &V->dt, V->dt.n, V->out)) return 1;
  if (V->loss.kind == RT_VAL_CE)
    rt_val_cross_entropy(&V->loss, V->out[V->out_k], V->tgt, V->rows, V->C, &sum);
  else
    rt_val_mse(V->out[V->out_k], V->tgt, V->rows, &sum);
  double loss = sum.count ? sum.loss / (double)sum.count : NAN;
  int w = snprintf(buf, n, "  val_loss %.6f", loss);
  if (V->loss.kind == RT_VAL_CE && w > 0 && (size_t)w < n)
    snprintf(buf + w, n - (size_t)w, "  val_acc %.4f",
             sum.count ? (double)sum.correct / (double)sum.count : NAN);
  return 0;
}

typedef struct Trainer {
  const TrainOpts *o;
  RtCtx *c;
  Data dt;
  int64_t *perm, nb, epoch0;
  uint64_t rng;
  FILE *log;
  long log_good; /* bytes of complete lines in the log */
  int tty;
  Val val; /* --val */
} Trainer;

/* the epoch a checkpoint written by `train` ends (its "nnc.epoch"), or -1 */
static int64_t ckpt_epoch(const char *path) {
  RtStView v;
  char err[256];
  if (!path || rt_st_open(path, &v, err, sizeof err)) return -1;
  const char *e = rt_set_meta(&v.meta, "nnc.epoch");
  int64_t r = e ? strtoll(e, NULL, 10) : -1;
  rt_st_close(&v);
  return r;
}

/* a CUDA build whose step all-reduces its gradients on the device (--mpi --target cuda) */
static int device_step(const Prog *p) {
  return p->dist && p->dist->grads_device && !p->d->train_backward && p->d->ngrads > 0;
}

/* data-parallel: every process reads a batch of each global batch, which the data must hold */
static int dist_check(const Prog *p, int64_t n, int64_t B) {
  int P = nranks(p);
  if (P > 1 && n < B * P)
    return perr(p, "the data has %" PRId64 " samples, fewer than one global batch of %" PRId64
                   " (%d processes x the batch of %" PRId64 "): run fewer processes or "
                   "rebuild with a smaller batch",
                n, B * P, P, B);
  if (P > 1 && !device_step(p) && (!p->d->train_backward || !p->d->train_apply))
    return perr(p, "model '%s' cannot average its gradients across processes: its optimizer "
                   "step is not separate from the backward pass (a --memory budget's "
                   "schedule); rebuild it without --memory",
                p->d->name);
  return 0;
}

static int train_setup(Prog *p, Trainer *T) {
  const RtModelDesc *d = p->d;
  const TrainOpts *o = T->o;
  int64_t B = d->batch > 0 ? d->batch : 1;
  if (data_open(p, o->data, o->nd, &T->dt, 1) || data_complete(p, &T->dt, "--data", 1)) return 1;
  int64_t n = T->dt.n < 0 ? B : T->dt.n;
  if (n < B)
    return perr(p, "the data has %" PRId64 " samples, fewer than one batch of %" PRId64
                   " (rebuild with a smaller batch, e.g. -D N=%" PRId64 ")",
                n, B, n);
  if (dist_check(p, n, B)) return 1;
  B *= nranks(p); /* the global batch */
  if (!(T->c = make_ctx(p, RT_CTX_TRAIN))) return 1;
  if (p->dist && d->sync_bn) rt_ctx_set_stats_sum(T->c, p->dist->stats_sum, p->dist->user);
  if (device_step(p)) rt_ctx_set_device_allreduce(T->c, p->dist->grads_device, p->dist->user);
  if (device_step(p) && !o->no_overlap) { /* buckets during the backward launches */
    const RtDeviceAllreduceAsync *dev = p->dist->overlap_device.start ? &p->dist->overlap_device : NULL;
    rt_ctx_set_device_overlap(T->c, dev ? NULL : &p->dist->overlap, dev);
  }
  if (device_step(p) && d->sync_bn)
    rt_ctx_set_stats_sum_device(T->c, p->dist->stats_sum_device, p->dist->user);
  if (o->bucket_kib) rt_ctx_set_bucket_bytes(T->c, o->bucket_kib * 1024);
  if (o->weights ? load_weights(p, T->c, o->weights) : rt_ctx_init(T->c, o->seed)) return 1;
  /* dropout: the processes' batches get masks of their own (rank 0 those of one process) */
  rt_ctx_set_seed(T->c, o->seed + (uint64_t)(p->dist ? p->dist->rank : 0) * 0x9E3779B97F4A7C15u);
  if (train_check_data(p, T->c, &T->dt)) return 1;
  if (o->logpath) {
    if (!(T->log = fopen(o->logpath, "w")))
      return perr(p, "%s: cannot write: %s", o->logpath, strerror(errno));
    if (log_line(p, T->log, o->logpath, &T->log_good, "step,epoch,loss\n")) return 1;
  }
  if (o->nv && val_setup(p, o, &T->val)) return 1;
  T->dt.n = n;
  T->nb = n / B; /* the last partial batch is left out; shuffling varies which */
  if (n % B && !o->quiet)
    fprintf(stderr, "note: %" PRId64 " of the %" PRId64 " samples do not fill a batch of %" PRId64
                    " and are left out of each epoch (shuffling varies which)\n",
            n % B, n, B);
  if (!(T->perm = malloc((size_t)n * sizeof *T->perm))) return perr(p, "out of memory");
  T->tty = !o->quiet && isatty(2);
  int64_t e0 = ckpt_epoch(o->weights); /* the step count depends on the number of processes */
  T->epoch0 = e0 >= 0 ? e0 : rt_ctx_step(T->c) / T->nb;
  T->rng = o->seed;
  for (int64_t i = 0; i < n; i++) T->perm[i] = i;
  for (int64_t e = 0; e < T->epoch0; e++) rt_shuffle(T->perm, n, &T->rng);
  return 0;
}

/* one step of data-parallel training: gradients and loss averaged over the processes, the
 * gradients' buckets started during the backward pass unless --no-overlap */
static int dist_step(const Prog *p, Trainer *T, float *loss) {
  const RtDist *ds = p->dist;
  int rc = device_step(p) ? rt_ctx_train_step(T->c, NULL, loss) /* all-reduces between launches */
           : ds->overlap.start && !T->o->no_overlap
               ? rt_ctx_train_step_overlap(T->c, NULL, ds->overlap.start, ds->overlap.wait,
                                           ds->overlap.user, loss)
               : rt_ctx_train_step_allreduce(T->c, NULL, ds->allreduce, ds->user, loss);
  if (rc) return perr(p, "%s", rt_ctx_error(T->c));
  if (ds->allreduce(loss, 1, ds->user)) return perr(p, "the all-reduce of the loss failed");
  return 0;
}

/* batch b of the epoch's order (this process's part of it when data-parallel), gathered
 * from the mapped files into the io region */
static int train_batch(const Prog *p, Trainer *T, int64_t b, float *loss) {
  const RtModelDesc *d = p->d;
  int64_t B = d->batch > 0 ? d->batch : 1;
  const int64_t *rows = T->perm + (b * nranks(p) + (p->dist ? p->dist->rank : 0)) * B;
  for (int k = 0; k < T->dt.ninputs; k++) {
    int idx = rt_desc_nth(d, RT_KIND_INPUT, k);
    if (data_gather(p, &T->dt, k, rows, 0, B, rt_ctx_data(T->c, idx))) return 1;
  }
  if (nranks(p) > 1) return dist_step(p, T, loss);
  if (rt_ctx_train_step(T->c, NULL, loss)) return perr(p, "%s", rt_ctx_error(T->c));
  return 0;
}

static int train_epoch(const Prog *p, Trainer *T, int64_t e) {
  int64_t B = (p->d->batch > 0 ? p->d->batch : 1) * nranks(p), epoch = T->epoch0 + e + 1;
  rt_shuffle(T->perm, T->dt.n, &T->rng);
  double t0 = now_s(), last_draw = 0, sum = 0;
  for (int64_t b = 0; b < T->nb; b++) {
    float loss;
    char ferr[512], line[128];
    if (train_batch(p, T, b, &loss)) return 1;
    if (T->o->check_finite && rt_ctx_check_finite(T->c, ferr, sizeof ferr)) {
      if (T->tty) fputc('\n', stderr);
      return perr(p, "step %" PRId64 " (epoch %" PRId64 "): %s", rt_ctx_step(T->c), epoch, ferr);
    }
    if (!isfinite(loss)) {
      if (T->tty) fputc('\n', stderr);
      return perr(p, "the loss became %g at step %" PRId64 " (epoch %" PRId64
                     "); the weights diverged, nothing more is saved",
                  (double)loss, rt_ctx_step(T->c), epoch);
    }
    sum += loss;
    snprintf(line, sizeof line, "%" PRId64 ",%" PRId64 ",%.9g\n", rt_ctx_step(T->c), epoch,
             (double)loss);
    if (T->log && log_line(p, T->log, T->o->logpath, &T->log_good, line)) return 1;
    double t = now_s();
    if (T->tty && (t - last_draw > 0.1 || b + 1 == T->nb)) {
      progress((int)(e + 1), (int)T->o->epochs, b + 1, T->nb, sum / (double)(b + 1),
               (double)((b + 1) * B) / (t - t0 > 0 ? t - t0 : 1e-9));
      last_draw = t;
    }
  }
  double dt = now_s() - t0;
  char val[96] = "";
  if (T->o->nv && val_epoch(p, T->c, &T->val, val, sizeof val)) return 1;
  if (T->tty) fputs("\r\033[K", stderr);
  if (!T->o->quiet)
    printf("epoch %" PRId64 "/%" PRId64 "  loss %.6f%s  %.0f samples/s  %.2f s\n", e + 1,
           T->o->epochs, sum / (double)T->nb, val, (double)(T->nb * B) / (dt > 0 ? dt : 1e-9), dt);
  fflush(stdout);
  return 0;
}

/* data-parallel: the weights and optimizer state must be the same bits in every process
 * after every epoch (the same averaged gradients, the same update); buffers (batchnorm's
 * running statistics, from each process's own batches) may differ, except with --sync-bn,
 * where they follow the global batch's statistics and are compared too */
static int dist_same_weights(const Prog *p, Trainer *T, int64_t e) {
  if (nranks(p) < 2) return 0;
  const RtModelDesc *d = p->d;
  uint64_t h = 1469598103934665603u; /* FNV-1a over every state tensor */
  for (int i = 0; i < d->ntensors; i++) {
    int kind = d->tensors[i].kind;
    if (kind != RT_KIND_PARAM && kind != RT_KIND_OPTSTATE && !(d->sync_bn && kind == RT_KIND_BUFFER))
      continue;
    const unsigned char *s = rt_ctx_data_read(T->c, i);
    for (int64_t k = 0; s && k < d->tensors[i].nbytes; k++) h = (h ^ s[k]) * 1099511628211u;
  }
  int same = p->dist->same(h, p->dist->user);
  if (same < 0) return 1;
  if (!same)
    return perr(p, "after epoch %" PRId64 " the weights %sdiffer between the processes (they "
                   "must be bit-identical)", T->epoch0 + e + 1,
                d->sync_bn ? "or running statistics " : "");
  return 0;
}

static int train_save(const Prog *p, Trainer *T, int64_t e) {
  char meta[64];
  snprintf(meta, sizeof meta, "{\"nnc.epoch\":\"%" PRId64 "\"}", T->epoch0 + e + 1);
  return rt_ctx_save(T->c, T->o->save, meta) ? perr(p, "%s", rt_ctx_error(T->c)) : 0;
}

/* data-parallel: did every process get ready to train? (each calls this once) */
static int dist_ready(Prog *p, int failed) {
  if (nranks(p) < 2) return failed;
  float f = failed ? 1.0f : 0.0f;
  if (p->dist->allreduce(&f, 1, p->dist->user)) return 1;
  if (f > 0 && !failed && rank0(p)) perr(p, "another process failed before training began");
  if (f > 0) return 1;
  p->dist->fatal = 1; /* from now on an error leaves the others waiting */
  return 0;
}

static int cmd_train(Prog *p, Args *a) {
  TrainOpts o = {0};
  Trainer T = {.o = &o};
  int rc = train_parse(p, a, &o);
  if (rc >= 0) goto out;
  rc = 1;
  if (!rank0(p)) /* rank 0 alone reports and writes */
    o.quiet = 1, o.logpath = NULL, o.save = NULL;
  if (dist_ready(p, train_setup(p, &T))) goto out;
  for (int64_t e = 0; e < o.epochs; e++)
    if (train_epoch(p, &T, e) || dist_same_weights(p, &T, e) || (o.save && train_save(p, &T, e)))
      goto out;
  if (nranks(p) > 1 && !o.quiet) {
    char sum[256] = "";
    if (p->dist->summary) p->dist->summary(p->dist->user, sum, sizeof sum);
    fprintf(stderr, "weights bit-identical in all %d processes after every epoch%s%s%s\n",
            nranks(p), p->d->sync_bn ? ", running statistics too (--sync-bn)" : "",
            *sum ? "; " : "", sum);
  }
  if (p->d->device && !o.quiet) { /* params stay on the device: the batch in, the loss out */
    int64_t x[4];
    rt_ctx_transfers(T.c, x);
    fprintf(stderr, "%s: host-device copies: %" PRId64 " uploads (%" PRId64 " bytes), %" PRId64
            " downloads (%" PRId64 " bytes)\n", p->d->device->name, x[0], x[1], x[2], x[3]);
  }
  rc = 0;
out:
  if (T.log && fclose(T.log) && rc == 0)
    rc = perr(p, "%s: write failed: %s", o.logpath, strerror(errno));
  rt_ctx_destroy(T.c);
  data_free(&T.dt);
  val_free(p, &T.val);
  free(T.perm);
  free_binds(o.data, o.nd);
  free_binds(o.val, o.nv);
  return rc;
}

/* ---- bench ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

typedef struct BenchOpts {
  int train;
  int64_t iters;
  const char *weights;
  int profile, json; /* --profile: per-kernel times; --json: that report as JSON */
  const char *svg;   /* --svg FILE: that report on the roofline */
} BenchOpts;

/* -1: go on; otherwise the exit status */
static int bench_parse(Prog *p, Args *a, BenchOpts *o) {
  static const char *const wv[] = {"--threads", "--iters", "--weights", "--svg", NULL};
  const char *name, *val;
  int bad = 0;
  while ((name = next_opt(a, wv, &val, &bad))) {
    if (bad) return missing_val(p, name);
    int r = common_opt(p, name, val);
    if (r < 0) return 2;
    if (r == 2) return usage(p, stdout), 0;
    if (r) continue;
    if (!strcmp(name, "--svg")) {
      o->svg = val;
    } else if (!strcmp(name, "--train")) {
      o->train = 1;
    } else if (!strcmp(name, "--iters")) {
      if (parse_i64(val, &o->iters) || o->iters < 1)
        return perr(p, "--iters expects a positive integer, got '%s'", val), 2;
    } else if (!strcmp(name, "--weights")) {
      o->weights = val;
    } else if (!strcmp(name, "--profile") || !strcmp(name, "--json")) {
      *(name[2] == 'p' ? &o->profile : &o->json) = 1;
    } else {
      return unknown_opt(p, name);
    }
  }
  if ((o->json || o->svg) && !o->profile)
    return perr(p, "%s is an output of --profile", o->json ? "--json" : "--svg"), 2;
  if (o->train && !p->d->train_step)
    return perr(p, "model '%s' has no training step (its .nn file has no train section)",
                p->d->name);
  return -1;
}

/* inputs: small uniform floats; integer inputs (labels, indices) stay 0, always valid */
static void bench_inputs(const RtModelDesc *d, RtCtx *c) {
  for (int k = 0; k < rt_desc_count(d, RT_KIND_INPUT); k++) {
    int idx = rt_desc_nth(d, RT_KIND_INPUT, k);
    const RtTensorInfo *t = &d->tensors[idx];
    RtTensorInfo u = *t;
    u.init = (t->dtype == DT_I32 || t->dtype == DT_I64) ? RT_INIT_ZEROS : RT_INIT_UNIFORM;
    u.init_a = -1;
    u.init_b = 1;
    rt_init_tensor(&u, 12345, rt_ctx_data(c, idx));
  }
}

/* Times o->iters steps (0: about a second's worth) into *ts (sorted); 0, -1 (the context
 * failed) or -2 (out of memory). Training on one fixed
 * batch converges within a few hundred steps, and the gradients and Adam moments then decay
 * into denormals, which are far slower than a real step. So the parameters (and optimizer
 * state) are restored from a snapshot every 16 steps, outside the timed region: every timed
 * step is a step of a model that is still learning. */
/* the kernel times of the step just run into prof */
static void bench_prof_step(RtCtx *c, RtProfRun *prof) {
  double secs[256], *v = prof->nk <= 256 ? secs : malloc((size_t)prof->nk * sizeof *v);
  if (!v) return;
  rt_ctx_profile_last(c, prof->train, v, prof->nk);
  rt_prof_add(prof, v);
  if (v != secs) free(v);
}

static int bench_time(const RtModelDesc *d, RtCtx *c, const BenchOpts *o, double **ts,
                      int64_t *iters, RtProfRun *prof);

/* --profile: as many steps again with the kernels' timestamps on, after the plain run */
static int bench_profile(const Prog *p, RtCtx *c, const BenchOpts *o, int64_t iters,
                         const double step[2]) {
  const RtModelDesc *d = p->d;
  RtProfRun prof;
  BenchOpts po = *o;
  po.iters = iters;
  double *ts = NULL;
  int64_t n = 0;
  int rc = rt_prof_begin(&prof, d, o->train, iters) || rt_ctx_profile(c, 1) ? -2 : 0;
  if (!rc) rc = bench_time(d, c, &po, &ts, &n, &prof);
  rt_ctx_profile(c, 0);
  if (!rc && rt_prof_print(stdout, &prof, rt_ctx_threads(c), step, o->json)) rc = -2;
  char err[512];
  if (!rc && o->svg && rt_prof_svg(o->svg, &prof, rt_ctx_threads(c), err, sizeof err)) {
    perr(p, "%s", err);
    rc = -3;
  }
  free(ts);
  rt_prof_free(&prof);
  return rc;
}

static int bench_time(const RtModelDesc *d, RtCtx *c, const BenchOpts *o, double **ts,
                      int64_t *iters, RtProfRun *prof) {
  char *params = d->params_bytes ? rt_ctx_data(c, 0) : NULL, *snap = NULL;
  if (o->train && params) {
    params -= d->tensors[0].offset; /* the params region starts at tensor 0's offset 0 */
    if (!(snap = malloc((size_t)d->params_bytes))) return -2;
    memcpy(snap, params, (size_t)d->params_bytes);
  }
  double t0 = now_s(); /* warm-up, and a guess of how many steps fit in about a second */
  int warm = 0, rc = -1;
  do {
    if (o->train ? rt_ctx_train_step(c, NULL, NULL) : rt_ctx_forward(c)) goto out;
    warm++;
  } while (warm < 2 || (now_s() - t0 < 0.2 && warm < 20));
  double per = (now_s() - t0) / warm;
  *iters = o->iters ? o->iters : per > 0 ? (int64_t)(1.0 / per) : 1000;
  if (!o->iters) *iters = *iters < 5 ? 5 : *iters > 10000 ? 10000 : *iters;
  if (!(*ts = malloc((size_t)*iters * sizeof **ts))) {
    rc = -2;
    goto out;
  }
  for (int64_t i = 0; i < *iters; i++) {
    if (snap && i % 16 == 0) /* through rt_ctx_data: a device's copy is then refreshed */
      memcpy((char *)rt_ctx_data(c, 0) - d->tensors[0].offset, snap, (size_t)d->params_bytes);
    double s = now_s();
    if (o->train ? rt_ctx_train_step(c, NULL, NULL) : rt_ctx_forward(c)) goto out;
    (*ts)[i] = now_s() - s;
    if (prof) bench_prof_step(c, prof);
  }
  qsort(*ts, (size_t)*iters, sizeof **ts, cmp_double);
  rc = 0;
out:
  free(snap);
  return rc;
}

static void bench_print(const RtModelDesc *d, RtCtx *c, int train, const double *ts,
                        int64_t iters) {
  double med = ts[iters / 2], best = ts[0], flops = train ? d->train_flops : d->forward_flops;
  double est = rt_prof_step_estimate(d, train, rt_ctx_threads(c));
  char tm[32], tb[32], te[32], fl[32];
  fmt_time(med, tm, sizeof tm);
  fmt_time(best, tb, sizeof tb);
  fmt_time(est, te, sizeof te);
  fmt_count(flops / med, "FLOP/s", fl, sizeof fl);
  int64_t B = d->batch > 0 ? d->batch : 1;
  printf("%s %s, batch %" PRId64 ", %d thread%s, %" PRId64 " steps\n", d->name,
         train ? "training step" : "forward", B, rt_ctx_threads(c),
         rt_ctx_threads(c) == 1 ? "" : "s", iters);
  printf("  measured:   %s per step (median; best %s), %.0f samples/s, %s\n", tm, tb,
         (double)B / med, fl);
  if (est > 0)
    printf("  cost model: %s per step (estimate for the build target); measured/estimate "
           "%.2f\n",
           te, med / est);
  else
    printf("  cost model: no estimate in this build\n");
}

static int cmd_bench(Prog *p, Args *a) {
  const RtModelDesc *d = p->d;
  BenchOpts o = {0};
  int rc = bench_parse(p, a, &o);
  if (rc >= 0) return rc;
  RtCtx *c = make_ctx(p, o.train ? RT_CTX_TRAIN : RT_CTX_INFER);
  if (!c) return 1;
  double *ts = NULL;
  int64_t iters = 0;
  rc = 1;
  if (o.weights ? load_weights(p, c, o.weights) : rt_ctx_init(c, 0)) goto out;
  bench_inputs(d, c);
  int r = bench_time(d, c, &o, &ts, &iters, NULL);
  if (!r && !o.json) bench_print(d, c, o.train, ts, iters);
  if (!r && o.profile) r = bench_profile(p, c, &o, iters, (double[2]){ts[iters / 2], ts[0]});
  if (r) {
    if (r != -3) perr(p, "%s", r == -2 ? "out of memory" : rt_ctx_error(c));
    goto out;
  }
  rc = 0;
out:
  free(ts);
  rt_ctx_destroy(c);
  return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

/* The GEMM kernels allocate packing buffers per task and free them at its end. With glibc's
 * default, the mmap threshold rises to the largest block freed so far, after which such
 * blocks come from each thread's arena, and the arenas keep freed blocks of every size a
 * thread has used: megabytes per thread beyond the largest buffer (resnet18 at batch 8:
 * 4 MiB a thread for 0.5 MiB buffers). A fixed threshold of 256 KiB keeps the larger blocks
 * out of the arenas (each is mapped for its task and unmapped after), which bounds what a
 * thread holds to the 1 MiB a thread of the expected peak (rt_mem.h). MALLOC_MMAP_THRESHOLD_
 * in the environment still wins. */
static void fix_malloc_threshold(void) {
#if defined(__GLIBC__)
  if (!getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 256 << 10);
#endif
}

int rt_program_main(const RtModelDesc *d, const char *fwd_inputs, int argc, char **argv) {
  return rt_program_main_val(d, fwd_inputs, NULL, argc, argv);
}

int rt_program_main_val(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss,
                        int argc, char **argv) {
  return rt_program_main_dist(d, fwd_inputs, val_loss, argc, argv, NULL);
}

int rt_program_main_dist(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss,
                         int argc, char **argv, RtDist *dist) {
  Prog p = {d, fwd_inputs, val_loss, "model", NULL, 0, 0, dist};
  fix_malloc_threshold();
  if (argc > 0 && argv[0]) {
    const char *s = strrchr(argv[0], '/');
    p.argv0 = s ? s + 1 : argv[0];
  }
  char err[512];
  if (rt_desc_check(d, err, sizeof err)) return perr(&p, "%s", err);
  if (argc < 2) {
    usage(&p, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(&p, stdout);
    return 0;
  }
  static const struct {
    const char *name;
    int (*fn)(Prog *, Args *);
  } cmds[] = {{"info", cmd_info},
              {"init", cmd_init},
              {"infer", cmd_infer},
              {"train", cmd_train},
              {"bench", cmd_bench}};
  Args a = {argc, 2, argv, NULL};
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
    if (!strcmp(cmd, cmds[i].name)) {
      p.cmd = cmd;
      return cmds[i].fn(&p, &a);
    }
  perr(&p, "unknown command '%s'", cmd);
  usage(&p, stderr);
  return 2;
}
