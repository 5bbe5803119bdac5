/* rt_main.c — the program main of every executable `nnc build` produces:
 *   NAME info | init | infer | train | bench  [--threads T]
 * Everything model-specific comes from the RtModelDesc, so one main serves every model; the
 * driver links a two-line main() that passes the model's descriptor to rt_program_main. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rt_io.h"
#include "rt_program.h"
#include "rt_threads.h"

#define MAX_BIND 32

typedef struct Prog {
  const RtModelDesc *d;
  const char *fwd_inputs;
  const char *argv0; /* program name for messages */
  const char *cmd;
  int threads;
  int strict; /* --strict: a checkpoint of another model or other dims is an error */
} Prog;

static int perr(const Prog *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int perr(const Prog *p, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s%s%s: error: ", p->argv0, p->cmd ? " " : "", p->cmd ? p->cmd : "");
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
          "        [--save W2.safetensors] [--seed S] [--log LOSS.csv] [--quiet]\n"
          "        [--check-finite]              shuffled mini-batch training; --check-finite\n"
          "                                      stops at the first NaN/inf in outputs or weights\n"
          "  bench [--train] [--iters K] [--weights W]\n"
          "                                      time per step vs the cost-model estimate\n\n"
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

static RtCtx *make_ctx(const Prog *p) {
  char err[512];
  RtCtx *c = rt_ctx_create(p->d, p->threads, err, sizeof err);
  if (!c) perr(p, "%s", err);
  return c;
}

static int load_weights(const Prog *p, RtCtx *c, const char *path) {
  int unknown = 0;
  if (rt_ctx_load(c, path, &unknown)) return perr(p, "%s", rt_ctx_error(c));
  const char *w = rt_ctx_warning(c);
  if (*w && p->strict) return perr(p, "%s: %s (--strict)", path, w);
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
    printf("training: %s, loss '%s'\n", d->optimizer && *d->optimizer ? d->optimizer : "yes",
           li >= 0 ? d->tensors[li].name : "?");
    list_kind(d, RT_KIND_OPTSTATE, "optimizer state", 0);
  } else {
    printf("training: no (the .nn file has no train section)\n");
  }
  char b1[32], b2[32], b3[32], b4[32];
  fmt_bytes((double)d->params_bytes, b1, sizeof b1);
  fmt_bytes((double)d->io_bytes, b2, sizeof b2);
  fmt_bytes((double)d->arena_bytes_forward, b3, sizeof b3);
  fmt_bytes((double)d->arena_bytes_train, b4, sizeof b4);
  printf("memory: params %s, io %s, scratch %s (forward)", b1, b2, b3);
  if (d->train_step) printf(", %s (training step)", b4);
  fmt_bytes((double)rt_ctx_memory_bytes(d), b1, sizeof b1);
  printf("; %s in all\n", b1);
  printf("arena: %" PRId64 " bytes (forward)", d->arena_bytes_forward);
  if (d->train_step)
    printf(", %" PRId64 " bytes (training step); params + io + arena %" PRId64 " bytes",
           d->arena_bytes_train, d->params_bytes + d->io_bytes + d->arena_bytes_train);
  printf("\n");
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
  RtCtx *c = make_ctx(p);
  if (!c) return 1;
  rt_ctx_init(c, seed);
  char meta[64];
  snprintf(meta, sizeof meta, "{\"nnc.seed\":\"%" PRIu64 "\"}", seed);
  int rc = rt_ctx_save(c, out, meta) ? perr(p, "%s", rt_ctx_error(c)) : 0;
  rt_ctx_destroy(c);
  return rc;
}

/* ---- reading data ------------------------------------------------------------------------ */

/* Reads the .npy for input idx (converted to its dtype) and checks its shape: batched inputs
 * take any number of samples (*n gets it, and must agree across files), others their exact
 * shape. */
static int read_input(const Prog *p, int idx, const char *path, RtTensor *x, int64_t *n,
                      const char **n_from) {
  const RtTensorInfo *t = &p->d->tensors[idx];
  char err[512], want[128];
  if (rt_npy_read_as(path, (DType)t->dtype, x, err, sizeof err)) return perr(p, "%s", err);
  int64_t ne = rt_tensor_numel(x);
  if (rt_check_indices(t, x->data, ne, 0, err, sizeof err) ||
      rt_check_finite(t, x->data, ne, "input", err, sizeof err))
    return perr(p, "%s: %s", path, err);
  rt_info_type_str(t, want, sizeof want);
  int batched = rt_info_batched(p->d, t), ok = x->rank == t->rank;
  for (int k = batched ? 1 : 0; ok && k < t->rank; k++) ok = x->shape[k] == t->shape[k];
  if (ok && batched && x->shape[0] < 1) ok = 0;
  if (!ok) {
    char got[128];
    RtTensorInfo g = {.dtype = t->dtype, .rank = x->rank};
    for (int k = 0; k < x->rank; k++) g.shape[k] = x->shape[k];
    rt_info_type_str(&g, got, sizeof got);
    if (batched)
      perr(p, "%s: shape %s does not fit input '%s' %s (any number >= 1 of samples in the "
              "leading dim)",
           path, got, t->name, want);
    else
      perr(p, "%s: shape %s does not fit input '%s' %s", path, got, t->name, want);
    return 1;
  }
  if (batched) {
    if (*n >= 0 && x->shape[0] != *n)
      return perr(p, "%s has %" PRId64 " samples but %s has %" PRId64, path, x->shape[0],
                  *n_from, *n);
    *n = x->shape[0];
    *n_from = path;
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

static int bind_inputs(const Prog *p, Bind *b, int nb, RtTensor *data, int64_t *n) {
  const RtModelDesc *d = p->d;
  const char *n_from = NULL;
  *n = -1;
  for (int k = 0; k < nb; k++) {
    int idx = rt_desc_find(d, b[k].name);
    if (idx < 0 || d->tensors[idx].kind != RT_KIND_INPUT) {
      char names[512];
      list_names(d, RT_KIND_INPUT, names, sizeof names);
      return perr(p, "model '%s' has no input named '%s' (its inputs: %s)", d->name, b[k].name,
                  names);
    }
    int slot = -1;
    for (int j = 0; j < rt_desc_count(d, RT_KIND_INPUT); j++)
      if (rt_desc_nth(d, RT_KIND_INPUT, j) == idx) slot = j;
    if (read_input(p, idx, b[k].path, &data[slot], n, &n_from)) return 1;
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

static int cmd_infer(Prog *p, Args *a) {
  static const char *const wv[] = {"--threads", "--weights", "--seed", "--in", "--out", NULL};
  const RtModelDesc *d = p->d;
  Bind ins[MAX_BIND], outs[MAX_BIND];
  int nin = 0, nout = 0, rc = 2, have_seed = 0, bad = 0;
  uint64_t seed = 0;
  const char *name, *val, *weights = NULL;
  int ntin = rt_desc_count(d, RT_KIND_INPUT), ntout = rt_desc_count(d, RT_KIND_OUTPUT);
  RtTensor *data = calloc((size_t)ntin + 1, sizeof *data);
  void **outbuf = calloc((size_t)ntout + 1, sizeof *outbuf);
  const void **inp = calloc((size_t)ntin + 1, sizeof *inp);
  RtCtx *c = NULL;
  while ((name = next_opt(a, wv, &val, &bad))) {
    if (bad) {
      missing_val(p, name);
      goto out;
    }
    int r = common_opt(p, name, val);
    if (r < 0) goto out;
    if (r == 2) {
      usage(p, stdout);
      rc = 0;
      goto out;
    }
    if (r) continue;
    if (!strcmp(name, "--weights")) {
      weights = val;
    } else if (!strcmp(name, "--seed")) {
      if (parse_u64(val, &seed)) {
        perr(p, "--seed expects an integer, got '%s'", val);
        goto out;
      }
      have_seed = 1;
    } else if (!strcmp(name, "--in")) {
      if (parse_binds(p, "--in", val, ins, &nin)) goto out;
    } else if (!strcmp(name, "--out")) {
      if (parse_binds(p, "--out", val, outs, &nout)) goto out;
    } else {
      unknown_opt(p, name);
      goto out;
    }
  }
  if (!weights == !have_seed) {
    perr(p, weights ? "--weights and --seed both set the parameters; give one"
                    : "give --weights W.safetensors (or --seed S for initial weights)");
    goto out;
  }
  rc = 1;
  int64_t n;
  if (bind_inputs(p, ins, nin, data, &n)) goto out;
  for (int k = 0; k < ntin; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_INPUT, k)];
    if (!data[k].data && fwd_needs(p, t->name)) {
      char ty[128];
      rt_info_type_str(t, ty, sizeof ty);
      perr(p, "missing --in %s=FILE.npy (input '%s' %s)", t->name, t->name, ty);
      goto out;
    }
    inp[k] = data[k].data;
  }
  if (n < 0) n = d->batch > 0 ? d->batch : 1; /* only unbatched inputs */
  if (d->batch <= 0) n = 1;
  for (int k = 0; k < nout; k++) {
    int idx = rt_desc_find(d, outs[k].name);
    if (idx < 0 || d->tensors[idx].kind != RT_KIND_OUTPUT) {
      char names[512];
      list_names(d, RT_KIND_OUTPUT, names, sizeof names);
      perr(p, "model '%s' has no output named '%s' (its outputs: %s)", d->name, outs[k].name,
           names);
      goto out;
    }
  }
  if (!(c = make_ctx(p))) goto out;
  if (weights ? load_weights(p, c, weights) : rt_ctx_init(c, seed)) goto out;
  /* outputs are written as float32 whatever the model's dtype (all outputs are f32 today) */
  for (int k = 0; k < ntout; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_OUTPUT, k)];
    int64_t per = rt_info_batched(d, t) ? t->nbytes / t->shape[0] : 0;
    size_t bytes = per ? (size_t)(per * n) : (size_t)t->nbytes;
    if (!(outbuf[k] = malloc(bytes ? bytes : 1))) {
      perr(p, "out of memory");
      goto out;
    }
  }
  if (rt_ctx_infer(c, n, inp, outbuf)) {
    perr(p, "%s", rt_ctx_error(c));
    goto out;
  }
  for (int k = 0; k < ntout; k++) {
    const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_OUTPUT, k)];
    int batched = rt_info_batched(d, t);
    RtTensor y = {.dt = (DType)t->dtype, .rank = t->rank, .data = outbuf[k]};
    for (int j = 0; j < t->rank; j++) y.shape[j] = t->shape[j];
    if (batched) y.shape[0] = n;
    y.nbytes = (size_t)rt_tensor_numel(&y) * dt_size(y.dt);
    const char *path = NULL;
    for (int j = 0; j < nout; j++)
      if (!strcmp(outs[j].name, t->name)) path = outs[j].path;
    char err[512];
    if (path) {
      RtTensor conv = {0};
      const RtTensor *w = &y;
      if (y.dt != DT_F32) { /* npy of the dtype the interpreter writes */
        if (rt_tensor_alloc(&conv, y.dt, y.rank, y.shape)) {
          perr(p, "out of memory");
          goto out;
        }
        memcpy(conv.data, y.data, y.nbytes);
        if (rt_tensor_convert(&conv, DT_F32, err, sizeof err)) {
          rt_tensor_free(&conv);
          perr(p, "%s: %s", path, err);
          goto out;
        }
        w = &conv;
      }
      int wr = rt_npy_write(path, w, err, sizeof err);
      rt_tensor_free(&conv);
      if (wr) {
        perr(p, "%s", err);
        goto out;
      }
    } else if (!nout && y.dt == DT_F32) {
      print_summary(t, y.data, batched ? n : -1, rt_tensor_numel(&y));
    }
  }
  rc = 0;
out:
  rt_ctx_destroy(c);
  for (int k = 0; k < ntin; k++) rt_tensor_free(&data[k]);
  for (int k = 0; k < ntout; k++) free(outbuf[k]);
  free(data);
  free(outbuf);
  free(inp);
  free_binds(ins, nin);
  free_binds(outs, nout);
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

static int cmd_train(Prog *p, Args *a) {
  static const char *const wv[] = {"--threads", "--weights", "--data", "--epochs", "--save",
                                   "--seed",    "--log",     "--lr",   NULL};
  const RtModelDesc *d = p->d;
  Bind data[MAX_BIND];
  int nd = 0, rc = 2, quiet = 0, bad = 0, check_finite = 0;
  int64_t epochs = 1;
  uint64_t seed = 0;
  const char *name, *val, *weights = NULL, *save = NULL, *logpath = NULL;
  int ntin = rt_desc_count(d, RT_KIND_INPUT);
  RtTensor *x = calloc((size_t)ntin + 1, sizeof *x);
  int64_t *perm = NULL;
  RtCtx *c = NULL;
  FILE *log = NULL;
  long log_good = 0;
  char line[128];
  while ((name = next_opt(a, wv, &val, &bad))) {
    if (bad) {
      missing_val(p, name);
      goto out;
    }
    int r = common_opt(p, name, val);
    if (r < 0) goto out;
    if (r == 2) {
      usage(p, stdout);
      rc = 0;
      goto out;
    }
    if (r) continue;
    if (!strcmp(name, "--weights")) {
      weights = val;
    } else if (!strcmp(name, "--data")) {
      if (parse_binds(p, "--data", val, data, &nd)) goto out;
    } else if (!strcmp(name, "--epochs")) {
      if (parse_i64(val, &epochs) || epochs < 1 || epochs > 1000000) {
        perr(p, "--epochs expects a positive integer, got '%s'", val);
        goto out;
      }
    } else if (!strcmp(name, "--save")) {
      save = val;
    } else if (!strcmp(name, "--seed")) {
      if (parse_u64(val, &seed)) {
        perr(p, "--seed expects an integer, got '%s'", val);
        goto out;
      }
    } else if (!strcmp(name, "--log")) {
      logpath = val;
    } else if (!strcmp(name, "--lr")) {
      perr(p, "the learning rate is part of the model: %s (change the train section of the "
              ".nn file and rebuild)",
           d->optimizer && *d->optimizer ? d->optimizer : "no optimizer");
      goto out;
    } else if (!strcmp(name, "--quiet") || !strcmp(name, "-q")) {
      quiet = 1;
    } else if (!strcmp(name, "--check-finite")) {
      check_finite = 1;
    } else {
      unknown_opt(p, name);
      goto out;
    }
  }
  if (!d->train_step) {
    perr(p, "model '%s' has no training step (its .nn file has no train section)", d->name);
    rc = 1;
    goto out;
  }
  if (!nd) {
    perr(p, "give the training data: --data NAME=FILE.npy[,NAME=FILE.npy...]");
    goto out;
  }
  rc = 1;
  int64_t n;
  if (bind_inputs(p, data, nd, x, &n)) goto out;
  for (int k = 0; k < ntin; k++)
    if (!x[k].data) {
      const RtTensorInfo *t = &d->tensors[rt_desc_nth(d, RT_KIND_INPUT, k)];
      char ty[128];
      rt_info_type_str(t, ty, sizeof ty);
      perr(p, "missing --data %s=FILE.npy (input '%s' %s)", t->name, t->name, ty);
      goto out;
    }
  int64_t B = d->batch > 0 ? d->batch : 1;
  if (n < 0) n = B;
  if (n < B) {
    perr(p, "the data has %" PRId64 " samples, fewer than one batch of %" PRId64
            " (rebuild with a smaller batch, e.g. -D N=%" PRId64 ")",
         n, B, n);
    goto out;
  }
  if (!(c = make_ctx(p))) goto out;
  if (weights ? load_weights(p, c, weights) : rt_ctx_init(c, seed)) goto out;
  rt_ctx_set_seed(c, seed);
  if (logpath) {
    if (!(log = fopen(logpath, "w"))) {
      perr(p, "%s: cannot write: %s", logpath, strerror(errno));
      goto out;
    }
    if (log_line(p, log, logpath, &log_good, "step,epoch,loss\n")) goto out;
  }
  int64_t nb = n / B; /* the last partial batch is left out; shuffling varies which */
  if (!(perm = malloc((size_t)n * sizeof *perm))) {
    perr(p, "out of memory");
    goto out;
  }
  int tty = !quiet && isatty(2);
  int64_t epoch0 = rt_ctx_step(c) / nb;
  uint64_t rng = seed;
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t e = 0; e < epoch0; e++) rt_shuffle(perm, n, &rng);
  for (int64_t e = 0; e < epochs; e++) {
    rt_shuffle(perm, n, &rng);
    double t0 = now_s(), last_draw = 0, sum = 0;
    for (int64_t b = 0; b < nb; b++) {
      for (int k = 0; k < ntin; k++) {
        int idx = rt_desc_nth(d, RT_KIND_INPUT, k);
        const RtTensorInfo *t = &d->tensors[idx];
        char *dst = rt_ctx_data(c, idx);
        if (!rt_info_batched(d, t)) {
          memcpy(dst, x[k].data, (size_t)t->nbytes);
          continue;
        }
        size_t sample = (size_t)(t->nbytes / B);
        for (int64_t j = 0; j < B; j++)
          memcpy(dst + (size_t)j * sample, (char *)x[k].data + (size_t)perm[b * B + j] * sample,
                 sample);
      }
      float loss;
      char ferr[512];
      if (rt_ctx_train_step(c, NULL, &loss)) {
        perr(p, "%s", rt_ctx_error(c));
        goto out;
      }
      if (check_finite && rt_ctx_check_finite(c, ferr, sizeof ferr)) {
        if (tty) fputc('\n', stderr);
        perr(p, "step %" PRId64 " (epoch %" PRId64 "): %s", rt_ctx_step(c), epoch0 + e + 1, ferr);
        goto out;
      }
      if (!isfinite(loss)) {
        if (tty) fputc('\n', stderr);
        perr(p, "the loss became %g at step %" PRId64 " (epoch %" PRId64
                "); the weights diverged, nothing more is saved",
             (double)loss, rt_ctx_step(c), epoch0 + e + 1);
        goto out;
      }
      sum += loss;
      snprintf(line, sizeof line, "%" PRId64 ",%" PRId64 ",%.9g\n", rt_ctx_step(c), epoch0 + e + 1,
               (double)loss);
      if (log && log_line(p, log, logpath, &log_good, line)) goto out;
      double t = now_s();
      if (tty && (t - last_draw > 0.1 || b + 1 == nb)) {
        progress((int)(e + 1), (int)epochs, b + 1, nb, sum / (double)(b + 1),
                 (double)((b + 1) * B) / (t - t0 > 0 ? t - t0 : 1e-9));
        last_draw = t;
      }
    }
    double dt = now_s() - t0;
    if (tty) fputc('\r', stderr);
    if (!quiet)
      fprintf(stderr, "epoch %" PRId64 "/%" PRId64 "  loss %.6f  %.0f samples/s  %.2f s%s\n",
              e + 1, epochs, sum / (double)nb, (double)(nb * B) / (dt > 0 ? dt : 1e-9), dt,
              tty ? "\033[K" : "");
    if (!tty && !quiet) fflush(stderr);
    if (save) {
      char meta[64];
      snprintf(meta, sizeof meta, "{\"nnc.epoch\":\"%" PRId64 "\"}", epoch0 + e + 1);
      if (rt_ctx_save(c, save, meta)) {
        perr(p, "%s", rt_ctx_error(c));
        goto out;
      }
    }
  }
  rc = 0;
out:
  if (log && fclose(log) && rc == 0) rc = perr(p, "%s: write failed: %s", logpath, strerror(errno));
  rt_ctx_destroy(c);
  for (int k = 0; k < ntin; k++) rt_tensor_free(&x[k]);
  free(x);
  free(perm);
  free_binds(data, nd);
  return rc;
}

/* ---- bench ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmd_bench(Prog *p, Args *a) {
  static const char *const wv[] = {"--threads", "--iters", "--weights", NULL};
  const RtModelDesc *d = p->d;
  const char *name, *val, *weights = NULL;
  int train = 0, bad = 0;
  int64_t iters = 0;
  while ((name = next_opt(a, wv, &val, &bad))) {
    if (bad) return missing_val(p, name);
    int r = common_opt(p, name, val);
    if (r < 0) return 2;
    if (r == 2) return usage(p, stdout), 0;
    if (r) continue;
    if (!strcmp(name, "--train")) {
      train = 1;
    } else if (!strcmp(name, "--iters")) {
      if (parse_i64(val, &iters) || iters < 1)
        return perr(p, "--iters expects a positive integer, got '%s'", val), 2;
    } else if (!strcmp(name, "--weights")) {
      weights = val;
    } else {
      return unknown_opt(p, name);
    }
  }
  if (train && !d->train_step)
    return perr(p, "model '%s' has no training step (its .nn file has no train section)",
                d->name);
  RtCtx *c = make_ctx(p);
  if (!c) return 1;
  if (weights ? load_weights(p, c, weights) : rt_ctx_init(c, 0)) {
    rt_ctx_destroy(c);
    return 1;
  }
  /* inputs: small uniform floats; integer inputs (labels, indices) stay 0, always valid */
  for (int k = 0; k < rt_desc_count(d, RT_KIND_INPUT); k++) {
    int idx = rt_desc_nth(d, RT_KIND_INPUT, k);
    const RtTensorInfo *t = &d->tensors[idx];
    RtTensorInfo u = *t;
    u.init = (t->dtype == DT_I32 || t->dtype == DT_I64) ? RT_INIT_ZEROS : RT_INIT_UNIFORM;
    u.init_a = -1;
    u.init_b = 1;
    rt_init_tensor(&u, 12345, rt_ctx_data(c, idx));
  }
  double *ts = NULL;
  int rc = 1;
  /* Training on one fixed batch converges within a few hundred steps, and the gradients and
   * Adam moments then decay into denormals, which are far slower than a real step. So the
   * parameters (and optimizer state) are restored from a snapshot every 16 steps, outside
   * the timed region: every timed step is a step of a model that is still learning. */
  char *params = d->params_bytes ? rt_ctx_data(c, 0) : NULL, *snap = NULL;
  if (train && params) {
    const RtTensorInfo *t0i = &d->tensors[0];
    params -= t0i->offset; /* the params region starts at tensor 0's offset 0 */
    if (!(snap = malloc((size_t)d->params_bytes))) goto fail;
    memcpy(snap, params, (size_t)d->params_bytes);
  }
  /* warm-up, and a guess of how many steps fit in about a second */
  double t0 = now_s();
  int warm = 0;
  do {
    if (train ? rt_ctx_train_step(c, NULL, NULL) : rt_ctx_forward(c)) goto fail;
    warm++;
  } while (warm < 2 || (now_s() - t0 < 0.2 && warm < 20));
  double per = (now_s() - t0) / warm;
  if (!iters) {
    iters = per > 0 ? (int64_t)(1.0 / per) : 1000;
    iters = iters < 5 ? 5 : iters > 10000 ? 10000 : iters;
  }
  if (!(ts = malloc((size_t)iters * sizeof *ts))) goto fail;
  for (int64_t i = 0; i < iters; i++) {
    if (snap && i % 16 == 0) memcpy(params, snap, (size_t)d->params_bytes);
    double s = now_s();
    if (train ? rt_ctx_train_step(c, NULL, NULL) : rt_ctx_forward(c)) goto fail;
    ts[i] = now_s() - s;
  }
  qsort(ts, (size_t)iters, sizeof *ts, cmp_double);
  double med = ts[iters / 2], best = ts[0], flops = train ? d->train_flops : d->forward_flops;
  double est = train ? d->est_train_s : d->est_forward_s;
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
  rc = 0;
  goto done;
fail:
  perr(p, "%s", rt_ctx_error(c));
done:
  free(ts);
  free(snap);
  rt_ctx_destroy(c);
  return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

int rt_program_main(const RtModelDesc *d, const char *fwd_inputs, int argc, char **argv) {
  Prog p = {d, fwd_inputs, "model", NULL, 0, 0};
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
