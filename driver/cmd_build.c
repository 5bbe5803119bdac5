/* cmd_build.c — `nnc build FILE.nn -o NAME`: compile a model to native code and link it
 * with the runtime into a program (info/init/infer/train/bench, runtime/rt_main.c), or with
 * --lib into libNAME.a + NAME.h for embedding.
 *
 * The linking is done by the system C compiler (`cc`, or $CC) and `ar` (or $AR); the runtime
 * archive is found next to the nnc executable (build tree) or in the install prefix's
 * library directory ($NNC_RUNTIME_LIB overrides both). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../codegen/header.h"
#include "../runtime/rt_io.h"
#include "build.h"
#include "passes.h"
#include "../passes/remat.h"

#ifndef NNC_INSTALL_LIBDIR
#define NNC_INSTALL_LIBDIR "lib"
#endif

/* ---- the pipeline (shared with nnc emit) ------------------------------------------------- */

/* The rematerialization strategy of the next drv_build_model (--remat; DrvModel and
 * CgOptions have no field for it) and what the memory plan did, for the program's `info`. */
static RematMode g_remat = REMAT_OPTIMAL;
static bool g_remat_given;
static char g_plan_text[1024];

static void note_plan(const RematPlan *pl, RematMode mode, int64_t budget, int64_t plan_budget,
                      int64_t need) {
  char b0[32], b1[32], b2[32], b3[32];
  double share = pl->step_flops > 0 ? pl->recompute_flops / pl->step_flops : 0;
  int nrec = 0;
  for (int q = 0; q < pl->ngroups; q++) nrec += pl->groups[q].recomputed;
  char lowered[96] = "";
  if (plan_budget != budget)
    snprintf(lowered, sizeof lowered, ", planned at %s to absorb the backend's own arena",
             drv_bytes_h((double)plan_budget, b3, sizeof b3));
  snprintf(g_plan_text, sizeof g_plan_text,
           "memory plan: budget %s (remat %s%s), compiled step %s (params + io + arena, "
           "unmodified %s); %d of %d segment groups recomputed, %d nodes, %.4g GFLOP = %.2f%% "
           "extra FLOPs on a %.4g GFLOP step",
           drv_bytes_h((double)budget, b0, sizeof b0), remat_mode_name(mode), lowered,
           drv_bytes_h((double)need, b1, sizeof b1), drv_bytes_h((double)pl->total_sched, b2, sizeof b2),
           nrec, pl->ngroups, pl->nclones, pl->recompute_flops / 1e9, 100 * share,
           pl->step_flops / 1e9);
}

int drv_build_model(const DrvInput *in, const CgOptions *o, Diag *d, DrvModel *out) {
  memset(out, 0, sizeof *out);
  out->m = drv_compile(in, d, &out->fwd);
  if (!out->m) return drv_compile_status(in);
  out->t = ir_module_find_train(out->m, out->fwd->name);
  int64_t budget = o->memory_budget ? o->memory_budget : out->t ? out->t->memory_budget : 0;
  TrainInfo info;
  IrGraph *train0 = NULL;
  if (out->t) {
    train0 = out->train = pass_train_graph(out->fwd, out->t, &info, d);
    if (!out->train) return 1;
  }
  if (!DRV_BACKEND_PRESENT()) {
    diag_error_file(d, in->path, "this nnc was built without the LLVM backend's model emitter");
    return 1;
  }
  g_plan_text[0] = 0;
  if (g_remat_given && g_remat != REMAT_NONE && budget <= 0) {
    diag_error_file(d, in->path, "--remat %s needs a budget: --memory SIZE or a `memory` line in "
                    "the train section", remat_mode_name(g_remat));
    return 1;
  }
  if (train0)
    snprintf(g_plan_text, sizeof g_plan_text, "memory plan: no budget, nothing recomputed");
  CgOptions co = *o;
  co.memory_budget = budget;
  /* With a budget, the step is rematerialized to fit (passes/remat.h). The backend fuses
   * and orders kernels itself, so its arena can differ a little from the planner's: the
   * planner's budget is lowered by any overshoot until the compiled step fits. */
  int64_t plan_budget = budget;
  for (int attempt = 0;; attempt++) {
    RematPlan pl;
    if (train0 && budget > 0) {
      if (pass_remat(train0, &info, &(RematOptions){g_remat, plan_budget}, &pl)) {
        diag_error_file(d, in->path, "%s", pl.msg);
        return 1;
      }
      out->train = pl.g;
    }
    out->cg = llvm_model_emit(out->fwd, out->train, out->t, &co, d);
    if (!out->cg) return 1;
    int64_t need = llvm_model_train_bytes(out->cg);
    if (train0 && budget > 0) note_plan(&pl, g_remat, budget, plan_budget, need);
    if (!train0 || budget <= 0 || need <= budget) return 0;
    /* only `optimal` trades more recomputation for a lower budget */
    if (attempt == 8 || g_remat != REMAT_OPTIMAL) {
      diag_error_file(d, in->path, "the compiled training step needs %lld bytes, above the budget of "
                      "%lld bytes", (long long)need, (long long)budget);
      return 1;
    }
    plan_budget -= need - budget + 4096;
    llvm_model_free(out->cg);
    out->cg = NULL;
  }
}

void drv_model_free(DrvModel *dm) {
  if (dm->cg) llvm_model_free(dm->cg);
  if (dm->m) ir_module_free(dm->m);
  memset(dm, 0, sizeof *dm);
}

/* ---- helpers ----------------------------------------------------------------------------- */

static int g_verbose;

/* snprintf for paths; a path too long for the buffer is cut (and then fails to open) */
static void pathf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, n, fmt, ap);
  va_end(ap);
}

static void usage(FILE *out) {
  fputs("usage: nnc build FILE.nn -o NAME [options]\n"
        "Compiles the model to native code and links it with the nnc runtime.\n"
        "  -o NAME               the program to write (with --lib: libNAME.a and NAME.h;\n"
        "                        -o DIR/libNAME.a works as well)\n"
        "  --lib                 a static library and a C header instead of a program\n"
        "  --shared              a shared library (libNAME.so, runtime included) and a C\n"
        "                        header: for dlopen, ctypes and the Python package\n"
        "  -D, --define N=V      fix a dim (the batch, e.g. -D N=256): shapes are concrete\n"
        "      --model NAME      the model to build when the file defines several\n"
        "      --target-cpu CPU  generate code for CPU (default: the host; e.g. x86-64-v3)\n"
        "      --target-features F  extra LLVM features, e.g. +avx2,-avx512f\n"
        "  -O0 .. -O3            optimization level (default -O2)\n"
        "      --memory SIZE     fit the training step into SIZE (weights, optimizer state,\n"
        "                        io and arena; default: the train section's memory line) by\n"
        "                        rematerialization (nnc plan shows the plan)\n"
        "      --remat MODE      none | sqrt | optimal: how the step is fitted (default\n"
        "                        optimal when there is a budget; none only reorders it)\n"
        "      --keep-temps      keep the object file and link inputs (their directory is\n"
        "                        printed)\n"
        "  -v, --verbose         print the commands that are run\n"
        "Environment: CC and AR choose the C compiler and archiver (default cc, ar);\n"
        "NNC_RUNTIME_LIB the runtime archive (default: found next to nnc).\n"
        "The program's commands: NAME info | init | infer | train | bench (NAME --help).\n",
        out);
}

static int run_cmd(char *const argv[], const char *cwd) {
  if (g_verbose) {
    fputs("+", stderr);
    for (int i = 0; argv[i]; i++) fprintf(stderr, " %s", argv[i]);
    fputs("\n", stderr);
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (cwd && chdir(cwd)) _exit(126);
    execvp(argv[0], argv);
    fprintf(stderr, "nnc build: error: cannot run '%s': %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* the runtime archive: $NNC_RUNTIME_LIB, next to nnc (build tree), or <prefix>/<libdir> */
static int find_runtime(char *out, size_t n) {
  const char *env = getenv("NNC_RUNTIME_LIB");
  if (env && *env) {
    snprintf(out, n, "%s", env);
    if (file_exists(out)) return 0;
    fprintf(stderr, "nnc build: error: NNC_RUNTIME_LIB=%s: no such file\n", env);
    return -1;
  }
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) {
    fprintf(stderr, "nnc build: error: cannot find the nnc executable's directory; set "
                    "NNC_RUNTIME_LIB to the path of libnnc_runtime.a\n");
    return -1;
  }
  exe[len] = 0;
  *strrchr(exe, '/') = 0;
  const char *cands[] = {"%s/libnnc_runtime.a", "%s/../" NNC_INSTALL_LIBDIR "/libnnc_runtime.a",
                         "%s/../lib/libnnc_runtime.a", "%s/../lib64/libnnc_runtime.a"};
  for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
    snprintf(out, n, cands[i], exe);
    if (file_exists(out)) return 0;
  }
  fprintf(stderr,
          "nnc build: error: libnnc_runtime.a is neither next to %s/nnc nor in %s/../%s; "
          "install nnc (cmake --install) or set NNC_RUNTIME_LIB\n",
          exe, exe, NNC_INSTALL_LIBDIR);
  return -1;
}

static int write_text(const char *path, const char *text) {
  char err[512];
  const void *parts[1] = {text};
  size_t sizes[1] = {strlen(text)};
  if (rt_file_write_atomic(path, parts, sizes, 1, err, sizeof err)) {
    fprintf(stderr, "nnc build: error: %s\n", err);
    return -1;
  }
  return 0;
}

static void rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      char p[PATH_MAX];
      pathf(p, sizeof p, "%s/%s", dir, e->d_name);
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
        rm_rf(p);
      else
        unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* a temporary name in the directory of `final`, so the rename into place is atomic */
static void tmp_beside(const char *final, char *out, size_t n) {
  pathf(out, n, "%s.tmp.%ld", final, (long)getpid());
}

static int is_ident(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_'))
      return 0;
  return 1;
}

/* ---- linking ----------------------------------------------------------------------------- */

/* s as the body of a C string literal */
static void c_string(const char *s, char *out, size_t n) {
  size_t k = 0;
  for (; *s && k + 5 < n; s++) {
    if (*s == '"' || *s == '\\') out[k++] = '\\', out[k++] = *s;
    else if (*s == '\n') out[k++] = '\\', out[k++] = 'n';
    else if ((unsigned char)*s >= 32) out[k++] = *s;
  }
  out[k] = 0;
}

static int link_program(const char *out, const char *tmpdir, const char *obj, const char *rtlib,
                        const char *model, const char *fwd_inputs) {
  char main_c[PATH_MAX], text[4096], plan[2200];
  c_string(g_plan_text, plan, sizeof plan);
  snprintf(main_c, sizeof main_c, "%s/main.c", tmpdir);
  snprintf(text, sizeof text,
           "/* the main of a program built by nnc build: the generic runtime main for model "
           "'%s' */\n"
           "struct RtModelDesc;\n"
           "extern const struct RtModelDesc nnc_model_%s;\n"
           "int rt_program_main(const struct RtModelDesc *d, const char *fwd_inputs, int argc, "
           "char **argv);\n"
           "void rt_program_set_plan(const char *text);\n"
           "int main(int argc, char **argv) {\n"
           "  rt_program_set_plan(\"%s\");\n"
           "  return rt_program_main(&nnc_model_%s, \"%s\", argc, argv);\n"
           "}\n",
           model, model, plan, model, fwd_inputs);
  if (write_text(main_c, text)) return 1;
  char tmp[PATH_MAX];
  tmp_beside(out, tmp, sizeof tmp);
  const char *cc = getenv("CC");
  char *argv[32];
  int k = 0;
  argv[k++] = (char *)(cc && *cc ? cc : "cc");
  argv[k++] = "-o";
  argv[k++] = tmp;
  argv[k++] = main_c;
  argv[k++] = (char *)obj;
  argv[k++] = (char *)rtlib;
#ifdef __SANITIZE_ADDRESS__
  /* an nnc built with sanitizers sits next to a runtime built with them */
  argv[k++] = "-fsanitize=address,undefined";
#endif
  argv[k++] = "-lcjson";
  argv[k++] = "-lm";
  argv[k++] = "-lpthread";
  argv[k] = NULL;
  int rc = run_cmd(argv, NULL);
  if (rc) {
    unlink(tmp);
    fprintf(stderr, "nnc build: error: linking %s failed (%s exited with status %d)\n", out,
            argv[0], rc);
    return 1;
  }
  if (rename(tmp, out)) {
    fprintf(stderr, "nnc build: error: %s: cannot write: %s\n", out, strerror(errno));
    unlink(tmp);
    return 1;
  }
  return 0;
}

/* libNAME.a = the model's object + every member of the runtime archive, so users link one
 * archive (plus -lcjson -lm -lpthread) */
static int make_library(const char *libpath, const char *tmpdir, const char *obj,
                        const char *rtlib) {
  const char *ar = getenv("AR");
  if (!ar || !*ar) ar = "ar";
  char rtdir[PATH_MAX], absrt[PATH_MAX];
  snprintf(rtdir, sizeof rtdir, "%s/rt", tmpdir);
  if (mkdir(rtdir, 0755) || !realpath(rtlib, absrt)) {
    fprintf(stderr, "nnc build: error: %s: %s\n", rtdir, strerror(errno));
    return 1;
  }
  char *xargv[] = {(char *)ar, "x", absrt, NULL};
  int rc = run_cmd(xargv, rtdir);
  if (rc) {
    fprintf(stderr, "nnc build: error: extracting %s failed (%s exited with status %d)\n",
            rtlib, ar, rc);
    return 1;
  }
  char **argv = NULL;
  int n = 0, cap = 0;
  DIR *dir = opendir(rtdir);
  struct dirent *e;
  char tmp[PATH_MAX];
  tmp_beside(libpath, tmp, sizeof tmp);
  unlink(tmp);
#define PUSH(s)                                                                                \
  do {                                                                                         \
    if (n == cap) argv = realloc(argv, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *argv);    \
    argv[n++] = (s);                                                                           \
  } while (0)
  PUSH(strdup(ar));
  PUSH(strdup("rcs"));
  PUSH(strdup(tmp));
  PUSH(strdup(obj));
  while (dir && (e = readdir(dir))) {
    size_t l = strlen(e->d_name);
    if (l < 3 || strcmp(e->d_name + l - 2, ".o")) continue;
    char p[PATH_MAX];
    pathf(p, sizeof p, "%s/%s", rtdir, e->d_name);
    PUSH(strdup(p));
  }
  if (dir) closedir(dir);
  PUSH(NULL);
#undef PUSH
  rc = run_cmd(argv, NULL);
  for (int i = 0; i < n; i++) free(argv[i]);
  free(argv);
  if (rc) {
    unlink(tmp);
    fprintf(stderr, "nnc build: error: creating %s failed (%s exited with status %d)\n",
            libpath, ar, rc);
    return 1;
  }
  if (rename(tmp, libpath)) {
    fprintf(stderr, "nnc build: error: %s: cannot write: %s\n", libpath, strerror(errno));
    unlink(tmp);
    return 1;
  }
  return 0;
}

/* libNAME.so = the model's object + the whole runtime archive (built position-independent),
 * so the embedding API (rt_ctx_*) and the descriptor are exported for dlopen/ctypes */
static int link_shared(const char *libpath, const char *obj, const char *rtlib) {
  char tmp[PATH_MAX];
  tmp_beside(libpath, tmp, sizeof tmp);
  const char *cc = getenv("CC");
  char *argv[] = {(char *)(cc && *cc ? cc : "cc"), "-shared", "-o", tmp, (char *)obj,
                  "-Wl,--whole-archive", (char *)rtlib, "-Wl,--no-whole-archive",
#ifdef __SANITIZE_ADDRESS__
                  "-fsanitize=address,undefined",
#endif
                  "-lcjson", "-lm", "-lpthread", NULL};
  int rc = run_cmd(argv, NULL);
  if (rc || rename(tmp, libpath)) {
    fprintf(stderr, "nnc build: error: linking %s failed (%s)\n", libpath,
            rc ? "the C compiler failed" : strerror(errno));
    unlink(tmp);
    return 1;
  }
  return 0;
}

/* ---- the command ------------------------------------------------------------------------- */

int cmd_build(int argc, char **argv) {
  static const struct option opts[] = {{"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"target-cpu", required_argument, 0, 'C'},
                                       {"target-features", required_argument, 0, 'F'},
                                       {"lib", no_argument, 0, 'L'},
                                       {"shared", no_argument, 0, 'H'},
                                       {"keep-temps", no_argument, 0, 'K'},
                                       {"memory", required_argument, 0, 'm'},
                                       {"remat", required_argument, 0, 'R'},
                                       {"verbose", no_argument, 0, 'v'},
                                       {"output", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  DrvInput in = {0};
  CgOptions co = {.opt_level = 2};
  const char *out = NULL;
  int c, lib = 0, keep = 0;
  g_verbose = 0;
  g_remat = REMAT_OPTIMAL;
  g_remat_given = false;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:o:O:vh", opts, NULL)) != -1) {
    switch (c) {
    case 'h': usage(stdout); return 0;
    case 'o': out = optarg; continue;
    case 'C': co.target_cpu = optarg; continue;
    case 'F': co.target_features = optarg; continue;
    case 'L': lib = 1; continue;
    case 'H': lib = 2; continue;
    case 'K': keep = 1; continue;
    case 'm': {
      char err[256];
      if ((co.memory_budget = remat_parse_size(optarg, err, sizeof err)) < 0) {
        fprintf(stderr, "nnc build: error: --memory: %s\n", err);
        return 2;
      }
      continue;
    }
    case 'R': {
      int m = remat_mode_parse(optarg);
      if (m < 0) {
        fprintf(stderr, "nnc build: error: --remat must be none, sqrt or optimal, not '%s'\n", optarg);
        return 2;
      }
      g_remat = (RematMode)m;
      g_remat_given = true;
      continue;
    }
    case 'v': g_verbose = 1; continue;
    case 'O':
      if (strlen(optarg) != 1 || optarg[0] < '0' || optarg[0] > '3') {
        fprintf(stderr, "nnc build: error: unknown optimization level '-O%s' (use -O0 .. -O3)\n",
                optarg);
        return 2;
      }
      co.opt_level = optarg[0] - '0';
      continue;
    default: break;
    }
    int r = drv_common_opt(&in, c, optarg);
    if (r < 0) return 2;
    if (r == 0) {
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, optind < argc ? "nnc build: error: give one .nn file\n"
                                  : "nnc build: error: no input file\n");
    usage(stderr);
    return 2;
  }
  if (!out || !*out) {
    fprintf(stderr, "nnc build: error: give the output name: -o NAME\n");
    return 2;
  }
  in.path = argv[optind];

  /* output names */
  char dir[PATH_MAX], base[256], libpath[PATH_MAX], hdrpath[PATH_MAX];
  const char *slash = strrchr(out, '/');
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - out) : 1, slash ? out : ".");
  if (slash && slash == out) snprintf(dir, sizeof dir, "/");
  const char *b = slash ? slash + 1 : out;
  size_t bl = strlen(b);
  const char *ext = lib == 2 ? ".so" : ".a";
  size_t el = strlen(ext);
  if (lib && bl > el && !strcmp(b + bl - el, ext)) {
    int strip = !strncmp(b, "lib", 3) && bl > 3 + el ? 3 : 0;
    snprintf(base, sizeof base, "%.*s", (int)(bl - el - (size_t)strip), b + strip);
    snprintf(libpath, sizeof libpath, "%s", out);
  } else {
    snprintf(base, sizeof base, "%s", b);
    pathf(libpath, sizeof libpath, "%s/lib%s%s", dir, base, ext);
  }
  pathf(hdrpath, sizeof hdrpath, "%s/%s.h", dir, base);
  if (!*base || (lib && !is_ident(base))) {
    fprintf(stderr,
            "nnc build: error: '%s' is not a valid library name: the header's functions are "
            "named after it, so use letters, digits and '_'\n",
            base);
    return 2;
  }
  struct stat st;
  if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "nnc build: error: %s: no such directory\n", dir);
    return 1;
  }

  char rtlib[PATH_MAX];
  if (find_runtime(rtlib, sizeof rtlib)) return 1;

  Diag *d = diag_new(stderr);
  DrvModel dm;
  int rc = drv_build_model(&in, &co, d, &dm);
  char tmpdir[PATH_MAX] = "";
  if (rc) goto done;
  rc = 1;
  const char *model = dm.fwd->name;
  if (!is_ident(model)) {
    fprintf(stderr, "nnc build: error: model name '%s' is not a C identifier\n", model);
    goto done;
  }
  const char *tmpenv = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/nnc-build-XXXXXX", tmpenv && *tmpenv ? tmpenv : "/tmp");
  if (!mkdtemp(tmpdir)) {
    fprintf(stderr, "nnc build: error: cannot create a temporary directory %s: %s\n", tmpdir,
            strerror(errno));
    tmpdir[0] = 0;
    goto done;
  }
  char obj[PATH_MAX], err[1024];
  pathf(obj, sizeof obj, "%s/%s.o", tmpdir, model);
  if (llvm_model_write_object(dm.cg, obj, err, sizeof err)) {
    fprintf(stderr, "nnc build: error: %s\n", err);
    goto done;
  }
  const char *fwd_inputs = cg_forward_inputs(dm.fwd);
  if (!lib) {
    rc = link_program(out, tmpdir, obj, rtlib, model, fwd_inputs);
    goto done;
  }
  if (lib == 2 ? link_shared(libpath, obj, rtlib) : make_library(libpath, tmpdir, obj, rtlib))
    goto done;
  /* the header's sizes come from the descriptor the backend emitted */
  const RtModelDesc *desc = llvm_model_jit(dm.cg, err, sizeof err);
  if (!desc) {
    fprintf(stderr, "nnc build: error: reading the model's descriptor: %s\n", err);
    goto done;
  }
  if (cg_header_write(hdrpath, base, desc, fwd_inputs, in.path, err, sizeof err)) {
    fprintf(stderr, "nnc build: error: %s\n", err);
    goto done;
  }
  rc = 0;
done:
  if (tmpdir[0]) {
    if (keep)
      fprintf(stderr, "nnc build: intermediate files kept in %s\n", tmpdir);
    else
      rm_rf(tmpdir);
  }
  drv_model_free(&dm);
  diag_finish(d);
  diag_free(d);
  return rc;
}
