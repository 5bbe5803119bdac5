/* build_cuda.c — `nnc build --target cuda|cuda-emu`: the model's CUDA part as one object.
 *
 * A CUDA program is the CPU program (runtime/rt_main.c's commands, checkpoints, data) with
 * the descriptor's entries replaced: nnc_cuda_main copies the LLVM-built descriptor (the
 * tensor table is the plan's, the same for every backend, so checkpoints are shared), points
 * forward/train_step at the CUDA entries and sets the arenas to the CUDA plan's (plus the
 * split-K workspace), then runs rt_program_main_val.
 *   cuda-emu: the generated source, compiled by the host C++ compiler against cuda_emu.h;
 *             the entries run the launch tables on the CPU (slow; for validation).
 *   cuda:     NVRTC's PTX embedded as a string with the launch tables; each entry loads the
 *             driver (runtime/rt_cuda.c, dlopen), uploads params and io, launches the table
 *             and downloads them. Without a driver or device it exits 1 with the reason. */
#include <stdlib.h>
#include <string.h>

#include "../runtime/rt_io.h"
#include "cuda_drv.h"

#define ARENA_ALIGN 256

static int64_t align_up(int64_t v) { return (v + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN; }

/* nnc_cuda_main: the CPU descriptor with the CUDA entries and arenas (nnc_cuda_desc; the
 * split step only where a --mpi build adds it, build_cuda_dist.c) */
static void glue_main(FILE *f, const DrvCudaSource *s, bool train) {
  fprintf(f, "static RtModelDesc nnc_cuda_desc(const RtModelDesc *cpu) {\n"
             "  RtModelDesc d = *cpu;\n"
             "  d.train_backward = d.train_apply = 0;\n  d.grads = 0;\n  d.ngrads = 0;\n"
             "  d.forward = nnc_cuda_forward;\n"
             "  d.arena_bytes_forward = %lldLL;\n", (long long)(align_up(s->P.pf.arena_bytes) + s->fwd.work_bytes));
  if (train)
    fprintf(f, "  d.train_step = nnc_cuda_train;\n  d.arena_bytes_train = %lldLL;\n"
               "  d.params_bytes = %lldLL; /* with the loss-scale state, if any */\n",
            (long long)(align_up(s->P.pt.arena_bytes) + s->train.work_bytes),
            (long long)cuda_params_bytes(&s->P, &s->ls));
  fprintf(f, "  d.thread_bytes_forward = d.thread_bytes_train = 0;\n  return d;\n}\n"
             "int nnc_cuda_main(const RtModelDesc *cpu, const char *fwd_inputs, const char *val_loss, int argc,\n"
             "                  char **argv) {\n"
             "  RtModelDesc d = nnc_cuda_desc(cpu);\n"
             "  return rt_program_main_val(&d, fwd_inputs, val_loss, argc, argv);\n}\n");
}

static void glue_emu(FILE *f, const DrvCudaSource *s, bool train) {
  fputs(s->src, f);
  fputs("extern \"C\" {\n#include \"rt_model.h\"\n#include \"rt_program.h\"\n", f);
  fprintf(f, "static void nnc_cuda_forward(const RtModelBufs *b) {\n"
             "  NncBufs nb = {b->params, b->io, b->arena, b->arena + %lldLL, (unsigned long long)b->step, b->seed};\n"
             "  nnc_emu_run(0, nb, 0);\n}\n", (long long)align_up(s->P.pf.arena_bytes));
  if (train)
    fprintf(f, "static void nnc_cuda_train(const RtModelBufs *b) {\n"
               "  NncBufs nb = {b->params, b->io, b->arena, b->arena + %lldLL, (unsigned long long)b->step, b->seed};\n"
               "  nnc_emu_run(1, nb, 0);\n}\n", (long long)align_up(s->P.pt.arena_bytes));
  glue_main(f, s, train);
  fputs("}\n", f);
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

/* the launcher: one driver session per entry call */
static const char glue_run_text[] =
    "static void nnc_cuda_fail(RtCuda *c, const char *what) {\n"
    "  fprintf(stderr, \"error: CUDA: %s: %s\\n\", what, c ? rt_cuda_error(c) : \"\");\n"
    "  exit(1);\n}\n"
    "static void nnc_cuda_run(const RtModelBufs *b, const NncLaunch *t, long long arena, long long work) {\n"
    "  char err[1024];\n"
    "  RtCuda *c = rt_cuda_open(NULL, err, sizeof err);\n"
    "  if (!c) { fprintf(stderr, \"error: %s\\n\", err); exit(1); }\n"
    "  void *mod = NULL;\n  uint64_t p = 0, io = 0, ar = 0;\n"
    "  if (rt_cuda_load_ptx(c, nnc_ptx, &mod)) nnc_cuda_fail(c, \"loading the PTX\");\n"
    "  if (rt_cuda_alloc(c, (size_t)NNC_PARAMS + 1, &p) || rt_cuda_alloc(c, (size_t)NNC_IO + 1, &io) ||\n"
    "      rt_cuda_alloc(c, (size_t)(arena + work) + 1, &ar)) nnc_cuda_fail(c, \"allocating device memory\");\n"
    "  if (rt_cuda_upload(c, p, b->params, NNC_PARAMS) || rt_cuda_upload(c, io, b->io, NNC_IO))\n"
    "    nnc_cuda_fail(c, \"uploading\");\n"
    "  NncBufs nb = {(char *)(uintptr_t)p, (char *)(uintptr_t)io, (char *)(uintptr_t)ar,\n"
    "                (char *)(uintptr_t)(ar + (uint64_t)arena), (unsigned long long)b->step, b->seed};\n"
    "  void *args[1] = {&nb};\n"
    "  for (; t->name; t++) {\n"
    "    void *fn = NULL;\n"
    "    if (rt_cuda_function(c, mod, t->name, t->smem, &fn) || rt_cuda_launch(c, fn, t->grid, t->block, t->smem, args))\n"
    "      nnc_cuda_fail(c, t->name);\n"
    "  }\n"
    "  if (rt_cuda_sync(c) || rt_cuda_download(c, b->params, p, NNC_PARAMS) || rt_cuda_download(c, b->io, io, NNC_IO))\n"
    "    nnc_cuda_fail(c, \"running the kernels\");\n"
    "  rt_cuda_free(c, p);\n  rt_cuda_free(c, io);\n  rt_cuda_free(c, ar);\n"
    "  rt_cuda_unload(c, mod);\n  rt_cuda_close(c);\n}\n";

static void glue_device(FILE *f, const DrvCudaSource *s, const char *ptx, bool train) {
  fputs("#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
        "#include \"rt_cuda.h\"\n#include \"rt_model.h\"\n#include \"rt_program.h\"\n", f);
  fputs("typedef struct NncBufs {\n  char *params, *io, *arena, *work;\n  unsigned long long step, seed;\n} NncBufs;\n"
        "typedef struct NncLaunch {\n  const char *name;\n  unsigned grid[3], block[3];\n  size_t smem;\n} NncLaunch;\n", f);
  fprintf(f, "#define NNC_PARAMS %lldLL\n#define NNC_IO %lldLL\n", (long long)cuda_params_bytes(&s->P, &s->ls),
          (long long)s->P.io_bytes);
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
  fputs(glue_run_text, f);
  fprintf(f, "static void nnc_cuda_forward(const RtModelBufs *b) {\n"
             "  nnc_cuda_run(b, nnc_fwd_launches, %lldLL, %lldLL);\n}\n",
          (long long)align_up(s->P.pf.arena_bytes), (long long)s->fwd.work_bytes);
  if (train)
    fprintf(f, "static void nnc_cuda_train(const RtModelBufs *b) {\n"
               "  nnc_cuda_run(b, nnc_train_launches, %lldLL, %lldLL);\n}\n",
            (long long)align_up(s->P.pt.arena_bytes), (long long)s->train.work_bytes);
  glue_main(f, s, train);
}

/* the glue source into tmpdir, compiled to obj */
static int compile_glue(const DrvCudaSource *s, const char *text, const char *tmpdir, bool verbose, char *obj,
                        size_t objn) {
  char src[4096], err[512], inc_rt[4096], inc_cu[4096];
  snprintf(src, sizeof src, "%s/cuda_model.%s", tmpdir, s->emu ? "cpp" : "c");
  snprintf(obj, objn, "%s/cuda_model.o", tmpdir);
  const void *parts[1] = {text};
  size_t sizes[1] = {strlen(text)};
  if (rt_file_write_atomic(src, parts, sizes, 1, err, sizeof err)) {
    fprintf(stderr, "nnc build: error: %s\n", err);
    return 1;
  }
  snprintf(inc_rt, sizeof inc_rt, "-I%s/runtime", NNC_SOURCE_DIR);
  snprintf(inc_cu, sizeof inc_cu, "-I%s/codegen/cuda", NNC_SOURCE_DIR);
  const char *cxx = getenv("CXX"), *cc = getenv("CC");
  char *argv[16];
  int k = 0;
  argv[k++] = (char *)(s->emu ? (cxx && *cxx ? cxx : "c++") : (cc && *cc ? cc : "cc"));
  if (s->emu) argv[k++] = "-std=c++17", argv[k++] = "-DNNC_CUDA_EMU", argv[k++] = inc_cu;
  argv[k++] = "-O1", argv[k++] = "-w", argv[k++] = inc_rt, argv[k++] = "-c", argv[k++] = src;
  argv[k++] = "-o", argv[k++] = obj, argv[k] = NULL;
  int rc = drv_run_cmd(argv, NULL, verbose);
  if (rc) fprintf(stderr, "nnc build: error: compiling the CUDA part failed (%s exited with status %d)\n", argv[0], rc);
  return rc ? 1 : 0;
}

int drv_cuda_object(const DrvModel *dm, const DrvCudaOpts *o, const char *tmpdir, char *obj, size_t objn,
                    Diag *d) {
  DrvCudaSource s;
  int rc = drv_cuda_target(o->target, o->precision, o->loss_scale, &s);
  if (rc) return 1;
  if (o->mpi && s.ls.on) {
    fprintf(stderr, "nnc build: error: --mpi with f16 loss scaling: the scale's overflow check is not "
                    "shared by the ranks yet; use --precision bf16, or --loss-scale none\n");
    drv_cuda_source_free(&s);
    return 1;
  }
  bool train = dm->train != NULL;
  rc = drv_cuda_source(dm, train, &s, d);
  char *text = NULL, *ptx = NULL, err[4096];
  size_t len = 0;
  if (!rc && !s.emu && !(ptx = drv_cuda_ptx(&s, dm->fwd->name, err, sizeof err))) {
    fprintf(stderr, "nnc build: error: %s\n", err);
    rc = 1;
  }
  FILE *f = rc ? NULL : open_memstream(&text, &len);
  if (f) {
    if (s.emu) glue_emu(f, &s, train);
    else glue_device(f, &s, ptx, train);
    rc = o->mpi && train && drv_cuda_glue_dist(f, &s, dm->fwd->name) ? 1 : 0;
    if (fclose(f)) rc = 1;
  }
  if (!rc) rc = compile_glue(&s, text, tmpdir, o->verbose, obj, objn);
  free(text);
  free(ptx);
  drv_cuda_source_free(&s);
  return rc;
}
