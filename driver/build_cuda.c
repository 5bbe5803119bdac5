/* build_cuda.c — `nnc build --target cuda|cuda-emu [--lib]`: the model's CUDA part as one
 * C++ object.
 *
 * A CUDA program is the CPU program (runtime/rt_main.c's commands, checkpoints, data) with
 * another descriptor: nnc_cuda_desc copies the LLVM-built one (the tensor table is the
 * plan's, the same for every backend, so checkpoints are shared), sets the arenas to the
 * CUDA plan's (plus the split-K workspace) and adds the device (rt_model.h RtDevice), through
 * which a context keeps params, io and arena in device memory; nnc_cuda_main runs
 * rt_program_main_val with it, and a library's header uses the same descriptor as
 * nnc_model_NAME_cuda.
 *   cuda-emu: the generated source, compiled by the host C++ compiler against cuda_emu.h;
 *             the "device" regions are host memory of their own, the launch tables run on
 *             the CPU (slow; for validation).
 *   cuda:     NVRTC's PTX embedded as a string with the launch tables; the device opens the
 *             driver (runtime/rt_cuda.c, dlopen), loads the module and allocates the regions
 *             once per context. Without a driver or device it fails with the reason. */
#include <stdlib.h>
#include <string.h>

#include "../runtime/rt_io.h"
#include "cuda_drv.h"

#define ARENA_ALIGN 256

static int64_t align_up(int64_t v) { return (v + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

/* each launch of an entry's table with its GPU estimate (plan_cost_gpu.c), in launch order:
 * the descriptor's kernel table, which `bench --profile` reports per launch */
static void glue_kernels(FILE *f, const DrvCudaSource *s, bool train, const char *name) {
  CgPlanCost c;
  drv_cuda_cost(s, train, &c, NULL);
  fprintf(f, "static const RtKernelInfo %s[] = {\n", name);
  for (int i = 0; i < c.nk; i++) {
    const CgKernelCost *k = &c.k[i];
    fputs("  {\"", f);
    for (const char *q = k->name; *q; q++) {
      if (*q == '"' || *q == '\\') fputc('\\', f);
      fputc(*q, f);
    }
    fprintf(f, "\", %.17g, %.17g, %.17g, %.17g, %d},\n", k->flops, k->rd + k->wr, k->time, k->time,
            k->compute_bound ? 1 : 0);
  }
  fprintf(f, "  {0, 0, 0, 0, 0, 0}};\n");
  cg_plan_cost_free(&c);
}

/* The descriptor: the CPU one (its tensor table) with the CUDA entries, arenas and device
 * (rt_model.h RtDevice: params, io and arena stay in device memory across calls). The
 * host-pointer entries forward/train_step run one call with the regions copied in and out.
 * nnc_cuda_main runs the program's commands with it; a library's header names
 * nnc_model_NAME_cuda. */
static void glue_desc(FILE *f, const DrvCudaSource *s, const char *model, bool train, const double est[2]) {
  glue_kernels(f, s, false, "nnc_kernels_fwd");
  if (train) glue_kernels(f, s, true, "nnc_kernels_train");
  long long af = align_up(s->P.pf.arena_bytes), at = train ? align_up(s->P.pt.arena_bytes) : 0;
  long long wf = s->fwd.work_bytes, wt = train ? s->train.work_bytes : 0;
  long long ls_state = train && s->ls.on && s->ls.dynamic ? (long long)cuda_loss_scale_offset(&s->P) : -1;
  fprintf(f, "static const RtDevice nnc_cuda_device = {\"%s\", nnc_dev_open, nnc_dev_close, nnc_dev_copy, "
             "nnc_dev_run, nnc_dev_region, nnc_dev_copy_dd, nnc_dev_error, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, "
             "nnc_dev_run_timed, %lldLL};\n",
          s->emu ? "cuda-emu" : "cuda", (long long)cuda_params_bytes(&s->P, &s->ls), (long long)s->P.io_bytes, af, at,
          wf > wt ? wf : wt, ls_state);
  fputs("static void nnc_cuda_host_entry(const RtModelBufs *b, int entry) {\n"
        "  char err[1024];\n"
        "  void *dev = nnc_dev_open(NULL, err, sizeof err);\n"
        "  if (!dev) { fprintf(stderr, \"error: %s\\n\", err); exit(1); }\n"
        "  if (nnc_dev_copy(dev, 0, 1, b->params, 0, NNC_PARAMS) || nnc_dev_copy(dev, 1, 1, b->io, 0, NNC_IO) ||\n"
        "      nnc_dev_run(dev, entry, b->step, b->seed, NULL, 1) || nnc_dev_copy(dev, 0, 0, b->params, 0, NNC_PARAMS) ||\n"
        "      nnc_dev_copy(dev, 1, 0, b->io, 0, NNC_IO)) {\n"
        "    fprintf(stderr, \"error: %s\\n\", nnc_dev_error(dev));\n    exit(1);\n  }\n"
        "  nnc_dev_close(dev);\n}\n"
        "static void nnc_cuda_forward(const RtModelBufs *b) { nnc_cuda_host_entry(b, 0); }\n"
        "static void nnc_cuda_train(const RtModelBufs *b) { nnc_cuda_host_entry(b, 1); }\n", f);
  fprintf(f, "extern \"C\" const RtModelDesc nnc_model_%s;\n"
             "static RtModelDesc nnc_cuda_desc(const RtModelDesc *cpu) {\n"
             "  RtModelDesc d = *cpu;\n"
             "  d.forward = nnc_cuda_forward;\n  d.arena_bytes_forward = %lldLL;\n"
             "  d.packed_bytes = d.packed_flags_at = d.packed_flags_bytes = 0;\n", model, af + wf);
  if (train)
    fprintf(f, "  d.train_step = nnc_cuda_train;\n  d.arena_bytes_train = %lldLL;\n"
               "  d.params_bytes = %lldLL; /* with the loss-scale state, if any */\n",
            at + wt, (long long)cuda_params_bytes(&s->P, &s->ls));
  fprintf(f, "  d.thread_bytes_forward = d.thread_bytes_train = 0;\n"
             "  d.nkernels_forward = %d;\n  d.kernels_forward = nnc_kernels_fwd;\n"
             "  d.nkernels_train = %d;\n  d.kernels_train = %s;\n"
             "  d.roof_peak_1t = d.roof_peak = %.17g;\n  d.roof_bw = %.17g;\n",
          s->fwd.n, train ? s->train.n : 0, train ? "nnc_kernels_train" : "NULL", hw_peak(s->hw, DT_F32, false),
          s->hw->mem_bw);
  fprintf(f, "  d.train_backward = d.train_apply = NULL;\n  d.grads = NULL;\n  d.ngrads = 0;\n"
             "  d.device = &nnc_cuda_device;\n  d.est_forward_s = %.17g;\n  d.est_train_s = %.17g;\n"
             "  d.est_cores = 1;\n  return d;\n}\n"
             "extern \"C\" const RtModelDesc nnc_model_%s_cuda = nnc_cuda_desc(&nnc_model_%s);\n"
             "extern \"C\" int nnc_cuda_main(const RtModelDesc *cpu, const char *fwd_inputs, const char *val_loss,\n"
             "                              int argc, char **argv) {\n"
             "  RtModelDesc d = nnc_cuda_desc(cpu);\n"
             "  return rt_program_main_val(&d, fwd_inputs, val_loss, argc, argv);\n}\n", est[0], est[1], model,
          model);
}

static void glue_headers(FILE *f, const DrvCudaSource *s) {
  fputs("#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
        "extern \"C\" {\n#include \"rt_cuda.h\"\n#include \"rt_model.h\"\n#include \"rt_program.h\"\n}\n", f);
  fprintf(f, "#define NNC_PARAMS %lldLL\n#define NNC_IO %lldLL\n", (long long)cuda_params_bytes(&s->P, &s->ls),
          (long long)s->P.io_bytes);
}

/* the device arena: the larger entry's, with its split-K workspace after each entry's arena */
static void glue_arena(FILE *f, const DrvCudaSource *s, bool train) {
  long long af = align_up(s->P.pf.arena_bytes), at = train ? align_up(s->P.pt.arena_bytes) : 0;
  long long a = af + s->fwd.work_bytes, b = train ? at + s->train.work_bytes : 0;
  fprintf(f, "static const long long nnc_arena_at[2] = {%lldLL, %lldLL};\n", af, at);
  fprintf(f, "static long long nnc_arena_bytes(void) { return %lldLL; }\n", a > b ? a : b);
}

/* the emulated device: its regions are host memory of their own, so that the context's
 * copies between them and the host regions happen as on a GPU */
static const char glue_emu_dev[] =
    "typedef struct NncDev { char *r[3]; } NncDev;\n"
    "static void nnc_dev_close(void *v) {\n"
    "  NncDev *d = (NncDev *)v;\n  if (!d) return;\n"
    "  for (int k = 0; k < 3; k++) free(d->r[k]);\n  free(d);\n}\n"
    "static void *nnc_dev_open(const RtModelDesc *, char *err, size_t n) {\n"
    "  NncDev *d = (NncDev *)calloc(1, sizeof *d);\n"
    "  long long sz[3] = {NNC_PARAMS, NNC_IO, nnc_arena_bytes()};\n"
    "  for (int k = 0; d && k < 3; k++)\n"
    "    if (!(d->r[k] = (char *)aligned_alloc(256, (size_t)(sz[k] + 255) / 256 * 256 + 256))) { nnc_dev_close(d); d = NULL; }\n"
    "  if (!d) snprintf(err, n, \"cuda-emu: out of memory for the device regions\");\n"
    "  return d;\n}\n"
    "static int nnc_dev_copy(void *v, int region, int to_dev, void *host, int64_t off, int64_t bytes) {\n"
    "  NncDev *d = (NncDev *)v;\n"
    "  if (to_dev) memcpy(d->r[region] + off, host, (size_t)bytes);\n"
    "  else memcpy(host, d->r[region] + off, (size_t)bytes);\n  return 0;\n}\n"
    "static int nnc_dev_run(void *v, int entry, int64_t step, uint64_t seed, void *, int) {\n"
    "  NncDev *d = (NncDev *)v;\n"
    "  NncBufs nb = {d->r[0], d->r[1], d->r[2], d->r[2] + nnc_arena_at[entry], (unsigned long long)step, seed};\n"
    "  return nnc_emu_run(entry, nb, 0);\n}\n"
    "static int nnc_dev_run_timed(void *v, int entry, int64_t step, uint64_t seed, int64_t *ns) {\n"
    "  NncDev *d = (NncDev *)v;\n"
    "  NncBufs nb = {d->r[0], d->r[1], d->r[2], d->r[2] + nnc_arena_at[entry], (unsigned long long)step, seed};\n"
    "  return nnc_emu_run_timed(entry, nb, (long long *)ns);\n}\n"
    "static void *nnc_dev_region(void *v, int region) { return ((NncDev *)v)->r[region]; }\n"
    "static int nnc_dev_copy_dd(void *, void *dst, const void *src, int64_t bytes, void *) {\n"
    "  memmove(dst, src, (size_t)bytes);\n  return 0;\n}\n"
    "static const char *nnc_dev_error(const void *) { return \"the emulation failed\"; }\n";

/* the device through the driver (runtime/rt_cuda.c): module, regions and functions are
 * loaded once per context */
static const char glue_cuda_dev[] =
    "typedef struct NncDev {\n"
    "  RtCuda *c; void *mod; uint64_t r[3]; void **fn[2]; RtCudaLaunch *L[2]; int n[2]; char err[1400];\n"
    "  void *comm, *ev[2]; /* a data-parallel step's communication stream and its events */\n"
    "} NncDev;\n"
    "static int nnc_dev_fail(NncDev *d, const char *what) {\n"
    "  snprintf(d->err, sizeof d->err, \"%s: %s\", what, rt_cuda_error(d->c));\n  return -1;\n}\n"
    "static void nnc_dev_close(void *v) {\n"
    "  NncDev *d = (NncDev *)v;\n  if (!d) return;\n"
    "  for (int k = 0; k < 3; k++) if (d->r[k]) rt_cuda_free(d->c, d->r[k]);\n"
    "  for (int k = 0; k < 2; k++) if (d->ev[k]) rt_cuda_event_destroy(d->c, d->ev[k]);\n"
    "  if (d->comm) rt_cuda_stream_destroy(d->c, d->comm);\n"
    "  if (d->mod) rt_cuda_unload(d->c, d->mod);\n"
    "  free(d->fn[0]);\n  free(d->fn[1]);\n  free(d->L[0]);\n  free(d->L[1]);\n  rt_cuda_close(d->c);\n  free(d);\n}\n"
    "static int nnc_dev_load(NncDev *d) {\n"
    "  long long sz[3] = {NNC_PARAMS, NNC_IO, nnc_arena_bytes()};\n"
    "  if (rt_cuda_load_ptx(d->c, nnc_ptx, &d->mod)) return nnc_dev_fail(d, \"loading the PTX\");\n"
    "  for (int k = 0; k < 3; k++)\n"
    "    if (rt_cuda_alloc(d->c, (size_t)sz[k] + 1, &d->r[k])) return nnc_dev_fail(d, \"allocating device memory\");\n"
    "  for (int e = 0; e < 2; e++) {\n"
    "    int n = 0;\n"
    "    for (const NncLaunch *t = nnc_tables[e]; t && t->name; t++) n++;\n"
    "    d->n[e] = n;\n"
    "    d->fn[e] = (void **)calloc((size_t)n + 1, sizeof(void *));\n"
    "    d->L[e] = (RtCudaLaunch *)calloc((size_t)n + 1, sizeof(RtCudaLaunch));\n"
    "    if (!d->fn[e] || !d->L[e]) return nnc_dev_fail(d, \"out of memory\");\n"
    "    for (int i = 0; i < n; i++) {\n"
    "      const NncLaunch *t = &nnc_tables[e][i];\n"
    "      if (rt_cuda_function(d->c, d->mod, t->name, t->smem, &d->fn[e][i])) return nnc_dev_fail(d, t->name);\n"
    "      d->L[e][i].fn = d->fn[e][i], d->L[e][i].smem = t->smem;\n"
    "      memcpy(d->L[e][i].grid, t->grid, sizeof t->grid);\n"
    "      memcpy(d->L[e][i].block, t->block, sizeof t->block);\n"
    "    }\n"
    "  }\n  return 0;\n}\n"
    "static void *nnc_dev_open(const RtModelDesc *, char *err, size_t n) {\n"
    "  NncDev *d = (NncDev *)calloc(1, sizeof *d);\n"
    "  if (!d) { snprintf(err, n, \"out of memory\"); return NULL; }\n"
    "  if (!(d->c = rt_cuda_open(NULL, err, n))) { free(d); return NULL; }\n"
    "  if (nnc_dev_load(d)) { snprintf(err, n, \"CUDA: %s\", d->err); nnc_dev_close(d); return NULL; }\n"
    "  return d;\n}\n"
    "static int nnc_dev_copy(void *v, int region, int to_dev, void *host, int64_t off, int64_t bytes) {\n"
    "  NncDev *d = (NncDev *)v;\n"
    "  if (to_dev ? rt_cuda_upload(d->c, d->r[region] + (uint64_t)off, host, (size_t)bytes)\n"
    "             : rt_cuda_download(d->c, host, d->r[region] + (uint64_t)off, (size_t)bytes))\n"
    "    return nnc_dev_fail(d, to_dev ? \"uploading\" : \"downloading\");\n  return 0;\n}\n"
    "static int nnc_dev_run(void *v, int entry, int64_t step, uint64_t seed, void *stream, int sync) {\n"
    "  NncDev *d = (NncDev *)v;\n"
    "  NncBufs nb = {(char *)(uintptr_t)d->r[0], (char *)(uintptr_t)d->r[1], (char *)(uintptr_t)d->r[2],\n"
    "                (char *)(uintptr_t)(d->r[2] + (uint64_t)nnc_arena_at[entry]), (unsigned long long)step, seed};\n"
    "  void *args[1] = {&nb};\n"
    "  const NncLaunch *t = nnc_tables[entry];\n"
    "  for (int i = 0; t && t[i].name; i++)\n"
    "    if (rt_cuda_launch_on(d->c, d->fn[entry][i], t[i].grid, t[i].block, t[i].smem, args, stream))\n"
    "      return nnc_dev_fail(d, t[i].name);\n"
    "  if (sync && rt_cuda_stream_sync(d->c, stream)) return nnc_dev_fail(d, \"running the kernels\");\n"
    "  return 0;\n}\n"
    "static int nnc_dev_run_timed(void *v, int entry, int64_t step, uint64_t seed, int64_t *ns) {\n"
    "  NncDev *d = (NncDev *)v;\n"
    "  NncBufs nb = {(char *)(uintptr_t)d->r[0], (char *)(uintptr_t)d->r[1], (char *)(uintptr_t)d->r[2],\n"
    "                (char *)(uintptr_t)(d->r[2] + (uint64_t)nnc_arena_at[entry]), (unsigned long long)step, seed};\n"
    "  void *args[1] = {&nb};\n"
    "  if (rt_cuda_run_timed(d->c, d->L[entry], d->n[entry], args, ns)) return nnc_dev_fail(d, \"timing the kernels\");\n"
    "  return 0;\n}\n"
    "static void *nnc_dev_region(void *v, int region) { return (void *)(uintptr_t)((NncDev *)v)->r[region]; }\n"
    "static int nnc_dev_copy_dd(void *v, void *dst, const void *src, int64_t bytes, void *stream) {\n"
    "  NncDev *d = (NncDev *)v;\n"
    "  if (rt_cuda_copy_dd(d->c, (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src, (size_t)bytes, stream))\n"
    "    return nnc_dev_fail(d, \"copying on the device\");\n  return 0;\n}\n"
    "static const char *nnc_dev_error(const void *v) { return ((const NncDev *)v)->err; }\n";

static void glue_emu(FILE *f, const DrvCudaSource *s, const char *model, bool train, const double est[2]) {
  fputs(s->src, f);
  glue_headers(f, s);
  glue_arena(f, s, train);
  fputs(glue_emu_dev, f);
  glue_desc(f, s, model, train, est);
}

static void glue_table(FILE *f, const CudaPlanTable *t, const char *name) {
  fprintf(f, "static const NncLaunch %s[] = {\n", name);
  for (int i = 0; i < t->n; i++) {
    const CudaLaunch *l = &t->v[i].l;
    fprintf(f, "  {\"%s\", {%u, %u, %u}, {%u, %u, %u}, %zu},\n", t->v[i].name, l->grid[0], l->grid[1], l->grid[2],
            l->block[0], l->block[1], l->block[2], l->smem);
  }
  fprintf(f, "  {0, {0, 0, 0}, {0, 0, 0}, 0}};\n");
}

static void glue_device(FILE *f, const DrvCudaSource *s, const char *ptx, const char *model, bool train,
                        const double est[2]) {
  glue_headers(f, s);
  fputs("typedef struct NncBufs {\n  char *params, *io, *arena, *work;\n  unsigned long long step, seed;\n} NncBufs;\n"
        "typedef struct NncLaunch {\n  const char *name;\n  unsigned grid[3], block[3];\n  size_t smem;\n} NncLaunch;\n", f);
  fputs("static const char nnc_ptx[] =\n", f);
  for (const char *l = ptx; *l;) { /* one string literal per line */
    const char *e = strchr(l, '\n');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    fputs("  \"", f);
    for (size_t i = 0; i < n; i++) {
      if (l[i] == '"' || l[i] == '\\') fputc('\\', f);
      if (l[i] != '\r') fputc(l[i], f);
    }
    fputs("\\n\"\n", f);
    l += n + (e ? 1 : 0);
  }
  fputs("  \"\";\n", f);
  glue_table(f, &s->fwd, "nnc_fwd_launches");
  if (train) glue_table(f, &s->train, "nnc_train_launches");
  fprintf(f, "static const NncLaunch *const nnc_tables[2] = {nnc_fwd_launches, %s};\n",
          train ? "nnc_train_launches" : "NULL");
  glue_arena(f, s, train);
  fputs(glue_cuda_dev, f);
  glue_desc(f, s, model, train, est);
}

/* the glue source into tmpdir, compiled to obj */
static int compile_glue(const DrvCudaSource *s, const char *text, const char *tmpdir, bool verbose, char *obj,
                        size_t objn) {
  char src[4096], err[512], inc_rt[4096], inc_cu[4096];
  snprintf(src, sizeof src, "%s/cuda_model.cpp", tmpdir);
  snprintf(obj, objn, "%s/cuda_model.o", tmpdir);
  const void *parts[1] = {text};
  size_t sizes[1] = {strlen(text)};
  if (rt_file_write_atomic(src, parts, sizes, 1, err, sizeof err)) {
    fprintf(stderr, "nnc build: error: %s\n", err);
    return 1;
  }
  snprintf(inc_rt, sizeof inc_rt, "-I%s/runtime", NNC_SOURCE_DIR);
  snprintf(inc_cu, sizeof inc_cu, "-I%s/codegen/cuda", NNC_SOURCE_DIR);
  const char *cxx = getenv("CXX");
  char *argv[16];
  int k = 0;
  argv[k++] = (char *)(cxx && *cxx ? cxx : "c++");
  argv[k++] = "-std=c++17";
  if (s->emu) argv[k++] = "-DNNC_CUDA_EMU", argv[k++] = inc_cu;
  argv[k++] = "-O1", argv[k++] = "-fPIC", argv[k++] = "-w", argv[k++] = inc_rt, argv[k++] = "-c", argv[k++] = src;
  argv[k++] = "-o", argv[k++] = obj, argv[k] = NULL;
  int rc = drv_run_cmd(argv, NULL, verbose);
  if (rc) fprintf(stderr, "nnc build: error: compiling the CUDA part failed (%s exited with status %d)\n", argv[0], rc);
  return rc ? 1 : 0;
}

/* the device's name and memory, as glue_desc states them */
static void device_mem(const DrvCudaSource *s, bool train, RtDevice *mem) {
  memset(mem, 0, sizeof *mem);
  mem->name = s->emu ? "cuda-emu" : "cuda";
  mem->loss_scale_state = -1; /* (the header needs only the sizes) */
  mem->params_bytes = cuda_params_bytes(&s->P, &s->ls);
  mem->io_bytes = s->P.io_bytes;
  mem->arena_forward = align_up(s->P.pf.arena_bytes) + s->fwd.work_bytes;
  mem->arena_train = train ? align_up(s->P.pt.arena_bytes) + s->train.work_bytes : 0;
  mem->work_bytes = s->fwd.work_bytes > (train ? s->train.work_bytes : 0) ? s->fwd.work_bytes : s->train.work_bytes;
}

/* the GEMM tiles of a launch table, "k0 64x32x16 4w 4st fma; k1 ..." */
static size_t tiles_text(const DrvCudaSource *s, bool train, char *buf, size_t n) {
  const CudaPlanTable *t = train ? &s->train : &s->fwd;
  CgGpuLaunch *l = xcalloc((size_t)(t->n > 0 ? t->n : 1), sizeof *l);
  cuda_plan_launches(t, l);
  size_t w = 0;
  for (int i = 0; i < t->n && w + 1 < n; i++) {
    char tile[96];
    cg_gpu_tile_str(train ? &s->P.pt : &s->P.pf, &l[i], tile, sizeof tile);
    if (!*tile) continue;
    int r = snprintf(buf + w, n - w, "%s k%d %s", w ? ";" : "", l[i].kernel, tile);
    if (r < 0 || (size_t)r >= n - w) break;
    w += (size_t)r;
  }
  free(l);
  return w;
}

/* `info`'s lines: device memory, GEMM tiles per entry, the estimate of each entry (est[]) */
static void cuda_info(const DrvCudaSource *s, bool train, double est[2], char *buf, size_t n) {
  RtDevice mem;
  device_mem(s, train, &mem);
  const RtDevice *m = &mem;
  size_t w = (size_t)snprintf(buf, n, "device memory: params %lld B, io %lld B, arena %lld B forward, %lld B "
                              "training step (split-K workspace %lld B included)\n", (long long)m->params_bytes,
                              (long long)m->io_bytes, (long long)m->arena_forward, (long long)m->arena_train,
                              (long long)m->work_bytes);
  for (int e = 0; e < (train ? 2 : 1) && w + 64 < n; e++) {
    CgPlanCost c;
    drv_cuda_cost(s, e == 1, &c, NULL);
    est[e] = c.time;
    w += (size_t)snprintf(buf + w, n - w, "%s on %s: %d launches, estimated %.3f ms; GEMM tiles (%s):",
                          e ? "training step" : "forward", s->hw->name, c.nk, c.time * 1e3, s->arch);
    cg_plan_cost_free(&c);
    if (w + 1 < n) w += tiles_text(s, e == 1, buf + w, n - w);
    if (w + 1 < n) buf[w++] = '\n', buf[w] = 0;
  }
}

int drv_cuda_object(const DrvModel *dm, const DrvCudaOpts *o, const char *tmpdir, char *obj, size_t objn,
                    DrvCudaOut *out, Diag *d) {
  DrvCudaSource s;
  double est[2] = {0, 0};
  int rc = drv_cuda_target(o->target, o->precision, o->loss_scale, &s);
  if (rc) return 1;
  if (o->mpi && s.ls.on) {
    fprintf(stderr, "nnc build: error: --mpi with f16 loss scaling: the scale's overflow check is not "
                    "shared by the ranks yet; use --precision bf16, or --loss-scale none\n");
    drv_cuda_source_free(&s);
    return 1;
  }
  bool train = dm->train != NULL;
  s.sync_bn = o->mpi && o->sync_bn;
  rc = drv_cuda_source(dm, train, &s, d);
  if (!rc) device_mem(&s, train, &out->mem), cuda_info(&s, train, est, out->info, sizeof out->info);
  char *text = NULL, *ptx = NULL, err[4096];
  size_t len = 0;
  if (!rc && !s.emu && !(ptx = drv_cuda_ptx(&s, dm->fwd->name, err, sizeof err))) {
    fprintf(stderr, "nnc build: error: %s\n", err);
    rc = 1;
  }
  FILE *f = rc ? NULL : open_memstream(&text, &len);
  if (f) {
    if (s.emu) glue_emu(f, &s, dm->fwd->name, train, est);
    else glue_device(f, &s, ptx, dm->fwd->name, train, est);
    rc = o->mpi && train && drv_cuda_glue_dist(f, &s, dm->fwd->name) ? 1 : 0;
    if (fclose(f)) rc = 1;
  }
  if (!rc) rc = compile_glue(&s, text, tmpdir, o->verbose, obj, objn);
  free(text);
  free(ptx);
  drv_cuda_source_free(&s);
  return rc;
}
