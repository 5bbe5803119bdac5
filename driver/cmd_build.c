/* cmd_build.c — `nnc build FILE.nn -o NAME`: compile a model to native code and link it
 * with the runtime into a program (info/init/infer/train/bench, runtime/rt_main.c), or with
 * --lib into libNAME.a + NAME.h for embedding.
 *
 * The linking is done by the system C compiler (`cc`, or $CC) and `ar` (or $AR); the runtime
 * archive is found next to the nnc executable (build tree) or in the install prefix's
 * library directory ($NNC_RUNTIME_LIB overrides both). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "cuda_drv.h"
#include "passes.h"
#include "../passes/remat.h"

#ifndef NNC_INSTALL_LIBDIR
#define NNC_INSTALL_LIBDIR "lib"
#endif

/* ---- the pipeline (shared with nnc emit) ------------------------------------------------- */

/* what the memory plan did, for the program's `info` */
static void note_plan(DrvModel *dm, const CgPipeline *pp, RematMode mode) {
  const RematPlan *pl = &pp->pl;
  char b0[32], b1[32], b2[32], b3[32], b4[32];
  if (!pp->fitted) {
    snprintf(dm->plan_text, sizeof dm->plan_text, "%s",
             dm->train ? "memory plan: no budget, nothing recomputed" : "");
    return;
  }
  double share = pl->step_flops > 0 ? pl->recompute_flops / pl->step_flops : 0;
  int nrec = 0;
  for (int q = 0; q < pl->ngroups; q++) nrec += pl->groups[q].recomputed;
  char lowered[96] = "";
  if (pp->plan_budget != pp->budget - RT_MEM_RUNTIME_BYTES - RT_MEM_THREAD_BYTES) /* lowered */
    snprintf(lowered, sizeof lowered, ", step planned at %s",
             drv_bytes_h((double)pp->plan_budget, b3, sizeof b3));
  snprintf(dm->plan_text, sizeof dm->plan_text,
           "memory plan: budget %s (remat %s%s), expected peak of train %s (compiled step "
           "%s: params + io + arena, unmodified %s; + runtime, one thread); %d of %d segment "
           "groups recomputed, %d nodes, %.4g GFLOP = %.2f%% extra FLOPs on a %.4g GFLOP step",
           drv_bytes_h((double)pp->budget, b0, sizeof b0), remat_mode_name(mode), lowered,
           drv_bytes_h((double)pp->need, b1, sizeof b1), drv_bytes_h((double)pp->step, b4, sizeof b4),
           drv_bytes_h((double)pl->total_sched, b2, sizeof b2),
           nrec, pl->ngroups, pl->nclones, pl->recompute_flops / 1e9, 100 * share,
           pl->step_flops / 1e9);
}

int drv_build_model(const DrvInput *in, const DrvBuildOptions *o, Diag *d, DrvModel *out) {
  memset(out, 0, sizeof *out);
  out->m = drv_compile(in, d, &out->fwd);
  if (!out->m) return drv_compile_status(in);
  if (pass_fold_constants(out->fwd, d) < 0) return 1; /* the dims are final here */
  CgTarget target;
  llvm_backend_target(&target, 0, NULL);
  if (o->cg.bf16) target.conv = CG_CONV_IM2COL; /* as llvm_model_compile plans it */
  CgPipeOptions po = {o->cg.memory_budget, o->remat, o->remat_given, in->path};
  CgPipeline pp;
  int rc = cg_pipeline_train(out->m, out->fwd, &target, &po, &pp, d);
  out->t = pp.t;
  out->train = pp.train;
  if (rc) return 1;
  note_plan(out, &pp, o->remat);
  if (o->plan_only) return 0;
  CgOptions co = o->cg;
  co.memory_budget = pp.budget;
  out->cg = llvm_model_emit(out->fwd, out->train, out->t, &co, d);
  return out->cg ? 0 : 1;
}

int drv_cpu_precision(const char *cmd, const char *precision, CgOptions *cg) {
  cg->bf16 = precision && !strcmp(precision, "bf16");
  if (!precision || cg->bf16 || !strcmp(precision, "f32")) return 0;
  if (!strcmp(precision, "tf32") || !strcmp(precision, "f16"))
    fprintf(stderr, "%s: error: --precision %s is for GPU builds (--target cuda...); CPU builds "
            "take f32 or bf16\n", cmd, precision);
  else
    fprintf(stderr, "%s: error: unknown precision '%s' (CPU builds: f32 or bf16)\n", cmd, precision);
  return 2;
}

void drv_model_free(DrvModel *dm) {
  if (dm->cg) llvm_model_free(dm->cg);
  if (dm->m) ir_module_free(dm->m);
  memset(dm, 0, sizeof *dm);
}

/* ---- helpers ----------------------------------------------------------------------------- */

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
        "      --target T        cuda[:sm_80|sm_86|sm_89|sm_90]: the program runs the model on an\n"
        "                        NVIDIA GPU (PTX from NVRTC, the driver loaded at run time);\n"
        "                        cuda-emu: the same CUDA C run on the CPU (slow; validation)\n"
        "      --precision P     f32 (default); bf16 on the CPU: matmul and convolution\n"
        "                        inputs rounded to bf16, f32 accumulation (AVX512-BF16 where\n"
        "                        the target CPU has it, else the same results through f32\n"
        "                        FMAs); with --target: tf32, bf16 or f16 (GEMMs on tensor cores)\n"
        "      --loss-scale S    with --precision f16: dynamic (default, from 2^16), none, or a static\n"
        "                        power of two\n"
        "      --mpi             a program that trains data-parallel under mpirun: links\n"
        "                        MPI (docs/distributed.md)\n"
        "      --sync-bn         batchnorm in training normalizes with the statistics of the\n"
        "                        global batch (summed over the processes); default: local\n"
        "      --no-winograd     every convolution as an implicit GEMM: no Winograd F(4,3)\n"
        "                        for the 3x3 stride-1 ones the tiles pass would choose it for\n"
        "      --no-dw-fuse      every depthwise convolution writes its output: none is fused\n"
        "                        into the pointwise convolution that reads it\n"
        "      --keep-temps      keep the object file and link inputs (their directory is\n"
        "                        printed)\n"
        "  -v, --verbose         print the commands that are run\n"
        "Environment: CC and AR choose the C compiler and archiver (default cc, ar);\n"
        "NNC_RUNTIME_LIB the runtime archive (default: found next to nnc).\n"
        "The program's commands: NAME info | init | infer | train | bench (NAME --help).\n",
        out);
}

int drv_run_cmd(char *const argv[], const char *cwd, bool verbose) {
  return drv_run_cmd_to(argv, cwd, NULL, verbose);
}

/* runs argv in cwd (NULL: here), its stdout into out (NULL: ours); verbose: print it first */
int drv_run_cmd_to(char *const argv[], const char *cwd, const char *out, bool verbose) {
  if (verbose) {
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
    int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    if (out && (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)) _exit(126);
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

/* --mpi: the MPI main's archive beside the runtime archive, and MPI's link arguments after
 * argv[*k] (at most NNC_MPI_ARGS of them); -1 with a message when this nnc has no MPI */
enum { NNC_MPI_ARGS = 16 };
static int mpi_link_args(const char *rtlib, char *mpilib, size_t n, char *spec, size_t specn,
                         char **argv, int *k) {
#ifdef NNC_MPI_LINK
  const char *slash = strrchr(rtlib, '/');
  pathf(mpilib, n, "%.*s/libnnc_runtime_mpi.a", slash ? (int)(slash - rtlib) : 1,
        slash ? rtlib : ".");
  if (!file_exists(mpilib)) {
    fprintf(stderr, "nnc build: error: --mpi: %s: no such file (install nnc with its MPI "
            "runtime, or build it where MPI is found)\n", mpilib);
    return -1;
  }
  argv[(*k)++] = mpilib;
  snprintf(spec, specn, "%s", NNC_MPI_LINK);
  for (char *s = spec, *e; *s && *k < NNC_MPI_ARGS + 24; s = e) {
    e = s + strcspn(s, "|");
    if (*e) *e++ = 0;
    if (*s) argv[(*k)++] = s;
  }
  return 0;
#else
  (void)rtlib, (void)mpilib, (void)n, (void)spec, (void)specn, (void)argv, (void)k;
  fprintf(stderr, "nnc build: error: --mpi: this nnc was built without MPI (install "
          "libopenmpi-dev and rebuild nnc; docs/distributed.md)\n");
  return -1;
#endif
}

/* the runtime's main for the program: CUDA, MPI or the plain one */
static const char *program_main(const char *cuda_obj, bool mpi) {
  if (cuda_obj) return mpi ? "nnc_cuda_mpi_main" : "nnc_cuda_main";
  return mpi ? "rt_mpi_main" : "rt_program_main_val";
}

static int link_program(const char *out, const char *tmpdir, const char *obj, const char *cuda_obj,
                        const char *rtlib, const char *model, const char *fwd_inputs,
                        const char *val_loss, const char *plan_text, bool mpi, bool verbose) {
  char main_c[PATH_MAX], text[16384], plan[12288];
  c_string(plan_text, plan, sizeof plan);
  snprintf(main_c, sizeof main_c, "%s/main.c", tmpdir);
  snprintf(text, sizeof text,
           "/* the main of a program built by nnc build: the generic runtime main for model "
           "'%s' */\n"
           "struct RtModelDesc;\n"
           "extern const struct RtModelDesc nnc_model_%s;\n"
           "int %s(const struct RtModelDesc *d, const char *fwd_inputs, "
           "const char *val_loss, int argc, char **argv);\n"
           "void rt_program_set_plan(const char *text);\n"
           "int main(int argc, char **argv) {\n"
           "  rt_program_set_plan(\"%s\");\n"
           "  return %s(&nnc_model_%s, \"%s\", \"%s\", argc, argv);\n"
           "}\n",
           model, model, program_main(cuda_obj, mpi), plan, program_main(cuda_obj, mpi), model,
           fwd_inputs, val_loss);
  if (write_text(main_c, text)) return 1;
  char tmp[PATH_MAX];
  tmp_beside(out, tmp, sizeof tmp);
  const char *cc = getenv("CC");
  char *argv[32 + NNC_MPI_ARGS], mpilib[PATH_MAX], spec[4096];
  int k = 0;
  argv[k++] = (char *)(cc && *cc ? cc : "cc");
  argv[k++] = "-o";
  argv[k++] = tmp;
  argv[k++] = main_c;
  argv[k++] = (char *)obj;
  if (cuda_obj) argv[k++] = (char *)cuda_obj;
  if (mpi && mpi_link_args(rtlib, mpilib, sizeof mpilib, spec, sizeof spec, argv, &k)) return 1;
  argv[k++] = (char *)rtlib;
#ifdef __SANITIZE_ADDRESS__
  /* an nnc built with sanitizers sits next to a runtime built with them */
  argv[k++] = "-fsanitize=address,undefined";
#endif
  argv[k++] = "-lcjson";
  argv[k++] = "-lm";
  argv[k++] = "-lpthread";
  if (cuda_obj) argv[k++] = "-lstdc++";
  argv[k] = NULL;
  int rc = drv_run_cmd(argv, NULL, verbose);
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
                        const char *cuda_obj, const char *rtlib, bool verbose) {
  const char *ar = getenv("AR");
  if (!ar || !*ar) ar = "ar";
  char rtdir[PATH_MAX], absrt[PATH_MAX];
  snprintf(rtdir, sizeof rtdir, "%s/rt", tmpdir);
  if (mkdir(rtdir, 0755) || !realpath(rtlib, absrt)) {
    fprintf(stderr, "nnc build: error: %s: %s\n", rtdir, strerror(errno));
    return 1;
  }
  char *xargv[] = {(char *)ar, "x", absrt, NULL};
  int rc = drv_run_cmd(xargv, rtdir, verbose);
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
    if (n == cap) argv = xrealloc(argv, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *argv);   \
    argv[n++] = (s);                                                                           \
  } while (0)
  PUSH(xstrdup(ar));
  PUSH(xstrdup("rcs"));
  PUSH(xstrdup(tmp));
  PUSH(xstrdup(obj));
  if (cuda_obj) PUSH(xstrdup(cuda_obj));
  while (dir && (e = readdir(dir))) {
    size_t l = strlen(e->d_name);
    if (l < 3 || strcmp(e->d_name + l - 2, ".o")) continue;
    char p[PATH_MAX];
    pathf(p, sizeof p, "%s/%s", rtdir, e->d_name);
    PUSH(xstrdup(p));
  }
  if (dir) closedir(dir);
  PUSH(NULL);
#undef PUSH
  rc = drv_run_cmd(argv, NULL, verbose);
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

/* libNAME.so = the model's object (and the CUDA part's, cuda_obj, with the C++ library it
 * needs) + the whole runtime archive (built position-independent), so the embedding API
 * (rt_ctx_*) and the descriptors are exported for dlopen/ctypes */
static int link_shared(const char *libpath, const char *obj, const char *cuda_obj, const char *rtlib,
                       bool verbose) {
  char tmp[PATH_MAX];
  tmp_beside(libpath, tmp, sizeof tmp);
  const char *cc = getenv("CC");
  char *argv[16];
  int k = 0;
  argv[k++] = (char *)(cc && *cc ? cc : "cc"), argv[k++] = "-shared", argv[k++] = "-o", argv[k++] = tmp;
  argv[k++] = (char *)obj;
  if (cuda_obj) argv[k++] = (char *)cuda_obj;
  argv[k++] = "-Wl,--whole-archive", argv[k++] = (char *)rtlib, argv[k++] = "-Wl,--no-whole-archive";
#ifdef __SANITIZE_ADDRESS__
  argv[k++] = "-fsanitize=address,undefined";
#endif
  if (cuda_obj) argv[k++] = "-lstdc++";
  argv[k++] = "-lcjson", argv[k++] = "-lm", argv[k++] = "-lpthread", argv[k] = NULL;
  int rc = drv_run_cmd(argv, NULL, verbose);
  if (rc || rename(tmp, libpath)) {
    fprintf(stderr, "nnc build: error: linking %s failed (%s)\n", libpath,
            rc ? "the C compiler failed" : strerror(errno));
    unlink(tmp);
    return 1;
  }
  return 0;
}

/* ---- the command ------------------------------------------------------------------------- */

typedef struct BuildArgs {
  DrvInput in;
  DrvBuildOptions bo;
  const char *out;
  const char *target; /* --target cuda...: the CUDA backend (driver/build_cuda.c) */
  const char *precision; /* --precision f32|tf32|bf16|f16 (CUDA) */
  const char *loss_scale; /* --loss-scale dynamic|none|S (CUDA, f16) */
  bool lib, shared, keep, verbose, mpi; /* shared: --shared (lib is set too) */
} BuildArgs;

/* the options that are not common to every command; 0 consumed, 1 not ours, 2 usage error */
static int build_opt(BuildArgs *a, int c, const char *arg) {
  char err[256];
  switch (c) {
  case 'o': a->out = arg; return 0;
  case 'C': a->bo.cg.target_cpu = arg; return 0;
  case 'F': a->bo.cg.target_features = arg; return 0;
  case 'L': a->lib = true; return 0;
  case 'H': a->lib = a->shared = true; return 0;
  case 'K': a->keep = true; return 0;
  case 'T': a->target = arg; return 0;
  case 'P': a->precision = arg; return 0;
  case 'S': a->loss_scale = arg; return 0;
  case 'I': a->mpi = true; return 0;
  case 'B': a->bo.cg.sync_bn = true; return 0;
  case 'W': a->bo.cg.no_winograd = true; return 0;
  case 'X': a->bo.cg.no_dw_fuse = true; return 0;
  case 'v': a->verbose = true; return 0;
  case 'm':
    if ((a->bo.cg.memory_budget = remat_parse_size(arg, err, sizeof err)) >= 0) return 0;
    fprintf(stderr, "nnc build: error: --memory: %s\n", err);
    return 2;
  case 'R': {
    int m = remat_mode_parse(arg);
    if (m < 0) {
      fprintf(stderr, "nnc build: error: --remat must be none, sqrt or optimal, not '%s'\n", arg);
      return 2;
    }
    a->bo.remat = (RematMode)m;
    a->bo.remat_given = true;
    return 0;
  }
  case 'O':
    if (strlen(arg) == 1 && arg[0] >= '0' && arg[0] <= '3') {
      a->bo.cg.opt_level = arg[0] - '0';
      return 0;
    }
    fprintf(stderr, "nnc build: error: unknown optimization level '-O%s' (use -O0 .. -O3)\n", arg);
    return 2;
  default: return 1;
  }
}

/* -1: continue; else the exit status (--help, usage errors) */
static int build_args(BuildArgs *a, int argc, char **argv) {
  static const struct option opts[] = {{"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"target-cpu", required_argument, 0, 'C'},
                                       {"target-features", required_argument, 0, 'F'},
                                       {"lib", no_argument, 0, 'L'},
                                       {"shared", no_argument, 0, 'H'},
                                       {"keep-temps", no_argument, 0, 'K'},
                                       {"target", required_argument, 0, 'T'},
                                       {"precision", required_argument, 0, 'P'},
                                       {"loss-scale", required_argument, 0, 'S'},
                                       {"mpi", no_argument, 0, 'I'},
                                       {"sync-bn", no_argument, 0, 'B'},
                                       {"no-winograd", no_argument, 0, 'W'},
                                       {"no-dw-fuse", no_argument, 0, 'X'},
                                       {"memory", required_argument, 0, 'm'},
                                       {"remat", required_argument, 0, 'R'},
                                       {"verbose", no_argument, 0, 'v'},
                                       {"output", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  a->bo.cg.opt_level = 2;
  a->bo.remat = REMAT_OPTIMAL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:o:O:vh", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    int r = build_opt(a, c, optarg);
    if (r == 0) continue;
    if (r == 2) return 2;
    r = drv_common_opt(&a->in, c, optarg);
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
  if (!a->out || !*a->out) {
    fprintf(stderr, "nnc build: error: give the output name: -o NAME\n");
    return 2;
  }
  if (a->mpi && a->lib) {
    fprintf(stderr, "nnc build: error: --mpi builds a program; a library links no MPI: its "
            "NAME_train_step_allreduce takes the application's all-reduce (docs/distributed.md)\n");
    return 2;
  }
  if (!a->target && drv_cpu_precision("nnc build", a->precision, &a->bo.cg)) return 2;
  a->in.path = argv[optind];
  return -1;
}

typedef struct OutNames {
  char dir[PATH_MAX], base[256], libpath[PATH_MAX], hdrpath[PATH_MAX];
} OutNames;

/* -o NAME as a directory, a base name, and with --lib the archive and header paths; -1 when
 * they cannot be used, else the exit status so far (0) */
static int out_names(const char *out, bool lib, bool shared, OutNames *o) {
  const char *slash = strrchr(out, '/');
  snprintf(o->dir, sizeof o->dir, "%.*s", slash ? (int)(slash - out) : 1, slash ? out : ".");
  if (slash && slash == out) snprintf(o->dir, sizeof o->dir, "/");
  const char *b = slash ? slash + 1 : out;
  size_t bl = strlen(b);
  const char *ext = shared ? ".so" : ".a";
  size_t el = strlen(ext);
  if (lib && bl > el && !strcmp(b + bl - el, ext)) {
    int strip = !strncmp(b, "lib", 3) && bl > 3 + el ? 3 : 0;
    snprintf(o->base, sizeof o->base, "%.*s", (int)(bl - el - (size_t)strip), b + strip);
    snprintf(o->libpath, sizeof o->libpath, "%s", out);
  } else {
    snprintf(o->base, sizeof o->base, "%s", b);
    pathf(o->libpath, sizeof o->libpath, "%s/lib%s%s", o->dir, o->base, ext);
  }
  pathf(o->hdrpath, sizeof o->hdrpath, "%s/%s.h", o->dir, o->base);
  if (!*o->base || (lib && !is_ident(o->base))) {
    fprintf(stderr,
            "nnc build: error: '%s' is not a valid library name: the header's functions are "
            "named after it, so use letters, digits and '_'\n",
            o->base);
    return 2;
  }
  struct stat st;
  if (stat(o->dir, &st) || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "nnc build: error: %s: no such directory\n", o->dir);
    return 1;
  }
  return 0;
}

/* A CUDA build's descriptor as the header sees it (its arenas, its device), as
 * driver/build_cuda.c's nnc_model_NAME_cuda is at run time */
static RtModelDesc cuda_lib_desc(const RtModelDesc *cpu, const RtDevice *mem) {
  RtModelDesc c = *cpu;
  c.arena_bytes_forward = mem->arena_forward;
  if (c.train_step) c.arena_bytes_train = mem->arena_train;
  c.thread_bytes_forward = c.thread_bytes_train = 0;
  c.train_backward = c.train_apply = NULL;
  c.device = mem;
  return c;
}

/* libNAME.a and NAME.h, whose sizes come from the descriptor the backend emitted; with
 * --target, the CUDA part's object too (driver/build_cuda.c) */
static int write_library(const BuildArgs *a, const OutNames *on, DrvModel *dm, const char *tmpdir,
                         const char *obj, const char *rtlib, const char *fwd_inputs, Diag *d) {
  char cobj[PATH_MAX];
  DrvCudaOut *co = xcalloc(1, sizeof *co);
  const char *cuda_obj = a->target ? cobj : NULL;
  DrvCudaOpts copt = {a->target, a->precision, a->loss_scale, false, a->verbose, false}; /* --lib: no --mpi */
  int rc = a->target && drv_cuda_object(dm, &copt, tmpdir, cobj, sizeof cobj, co, d);
  if (!rc)
    rc = a->shared ? link_shared(on->libpath, obj, cuda_obj, rtlib, a->verbose)
                   : make_library(on->libpath, tmpdir, obj, cuda_obj, rtlib, a->verbose);
  const RtModelDesc *desc = rc ? NULL : llvm_model_jit(dm->cg, d);
  if (desc) {
    RtModelDesc cd = a->target ? cuda_lib_desc(desc, &co->mem) : *desc;
    rc = cg_header_write(on->hdrpath, on->base, &cd, fwd_inputs, a->in.path, d);
  }
  free(co);
  return rc || !desc ? 1 : 0;
}

/* the object file in tmpdir, then the program or the library */
static int write_outputs(const BuildArgs *a, const OutNames *on, DrvModel *dm, const char *tmpdir,
                         const char *rtlib, Diag *d) {
  const char *model = dm->fwd->name;
  char obj[PATH_MAX];
  pathf(obj, sizeof obj, "%s/%s.o", tmpdir, model);
  if (llvm_model_write_object(dm->cg, obj, d)) return 1;
  const char *fwd_inputs = cg_forward_inputs(dm->fwd);
  if (a->lib) return write_library(a, on, dm, tmpdir, obj, rtlib, fwd_inputs, d);
  char val_loss[512];
  cg_val_loss(dm->fwd, dm->t ? dm->t->minimize : NULL, val_loss, sizeof val_loss);
  char cobj[PATH_MAX], *plan = NULL;
  DrvCudaOut *co = a->target ? xcalloc(1, sizeof *co) : NULL;
  DrvCudaOpts copt = {a->target, a->precision, a->loss_scale, a->mpi, a->verbose, a->bo.cg.sync_bn};
  if (a->target && drv_cuda_object(dm, &copt, tmpdir, cobj, sizeof cobj, co, d)) {
    free(co);
    return 1;
  }
  if (a->target) {
    size_t n = strlen(dm->plan_text) + strlen(a->target) + strlen(co->info) + 32;
    plan = xmalloc(n);
    snprintf(plan, n, "%s%sbackend: %s\n%s", dm->plan_text, dm->plan_text[0] ? "\n" : "", a->target, co->info);
  }
  free(co);
  int rc = link_program(a->out, tmpdir, obj, a->target ? cobj : NULL, rtlib, model, fwd_inputs, val_loss,
                         a->target ? plan : dm->plan_text, a->mpi, a->verbose);
  free(plan);
  return rc;
}

/* --mpi: the model trains, and its step can average gradients between backward and update */
static int mpi_model_ok(const DrvModel *dm) {
  if (!dm->train) {
    fprintf(stderr, "nnc build: error: --mpi: model '%s' has no train section: there is nothing "
            "to train data-parallel\n", dm->fwd->name);
    return 1;
  }
  if (llvm_model_splits_step(dm->cg)) return 0;
  fprintf(stderr, "nnc build: error: --mpi: the training step of '%s' updates weights during "
          "the backward pass (the schedule that fits its memory budget), so its gradients "
          "cannot be averaged before the update; build it without --memory\n", dm->fwd->name);
  return 1;
}

int cmd_build(int argc, char **argv) {
  BuildArgs a;
  OutNames on;
  char rtlib[PATH_MAX], tmpdir[PATH_MAX] = "";
  int rc = build_args(&a, argc, argv);
  if (rc >= 0) return rc;
  if ((rc = out_names(a.out, a.lib, a.shared, &on))) return rc;
  if (find_runtime(rtlib, sizeof rtlib)) return 1;
  Diag *d = diag_new(stderr);
  DrvModel dm;
  rc = drv_build_model(&a.in, &a.bo, d, &dm);
  if (!rc && !is_ident(dm.fwd->name)) {
    fprintf(stderr, "nnc build: error: model name '%s' is not a C identifier\n", dm.fwd->name);
    rc = 1;
  }
  if (!rc && a.mpi) rc = mpi_model_ok(&dm);
  if (!rc) rc = drv_make_tmpdir(tmpdir, sizeof tmpdir, "build", "nnc-build");
  if (!rc && a.loss_scale && !a.target) {
    fprintf(stderr, "nnc build: error: --loss-scale is for GPU builds (--target cuda...)\n");
    rc = 2;
  }
  if (!rc && a.target && a.bo.cg.sync_bn && !a.mpi) {
    fprintf(stderr, "nnc build: error: --sync-bn with --target %s needs --mpi: only the "
            "data-parallel program sums the statistics of a CUDA build (docs/distributed.md)\n",
            a.target);
    rc = 2;
  }
  if (!rc) rc = write_outputs(&a, &on, &dm, tmpdir, rtlib, d);
  if (tmpdir[0]) {
    if (a.keep)
      fprintf(stderr, "nnc build: intermediate files kept in %s\n", tmpdir);
    else
      rm_rf(tmpdir);
  }
  drv_model_free(&dm);
  diag_finish(d);
  diag_free(d);
  return rc;
}
