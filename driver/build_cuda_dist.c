/* build_cuda_dist.c — `nnc build --mpi --target cuda|cuda-emu`: the data-parallel part of a
 * CUDA program's glue (build_cuda.c writes the rest of the translation unit first).
 *
 * The CUDA plan splits the training step like the CPU plan (CgPlan.split: the optimizer's
 * kernels last) and lists its gradients (CgModelPlan.grads, offsets in the CUDA arena). The
 * launch table follows the plan's kernels in order, each launch named PREFIX_kI[_...] after
 * its kernel I, so the launches of kernels before the split come first.
 *   cuda-emu: train_backward and train_apply run the two halves of the table on the host,
 *             and the runtime all-reduces the gradients in the arena between them (the
 *             program's MPI path, overlapped buckets included: all start after the backward
 *             pass, since the emulation has no ready marks).
 *   cuda:     one training-step entry uploads, runs the backward half, calls the step's
 *             RtHooks.grads_device with the device arena (NCCL's ncclAllReduce with ncclAvg
 *             of every gradient, runtime/rt_nccl.c via rt_mpi.c), runs the optimizer half
 *             and downloads. */
#include <stdlib.h>
#include <string.h>

#include "cuda_drv.h"

#define ARENA_ALIGN 256

/* the first launch of t whose plan kernel is at or after split (t->n if none) */
static int split_launch(const CudaPlanTable *t, const char *prefix, int split) {
  size_t n = strlen(prefix);
  for (int i = 0; i < t->n; i++) {
    const char *nm = t->v[i].name;
    if (!strncmp(nm, prefix, n) && !strncmp(nm + n, "_k", 2) && atoi(nm + n + 2) >= split) return i;
  }
  return t->n;
}

static void grads_table(FILE *f, const CgModelPlan *P) {
  fprintf(f, "static const RtGradInfo nnc_cuda_grads[] = {\n");
  for (int i = 0; i < P->ngrads; i++)
    fprintf(f, "  {%lldLL, %lldLL, %d, %d},\n", (long long)P->grads[i].offset,
            (long long)P->grads[i].numel, P->grads[i].tensor, P->grads[i].ready);
  fprintf(f, "  {0, 0, 0, 0}};\n");
}

static void emu_halves(FILE *f, const DrvCudaSource *s, const char *name, int split) {
  int64_t arena = (s->P.pt.arena_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
  fprintf(f, "static void nnc_cuda_range(const RtModelBufs *b, int from, int to) {\n"
             "  NncBufs nb = {b->params, b->io, b->arena, b->arena + %lldLL, (unsigned long long)b->step, b->seed};\n"
             "  nnc_emu_set_order((nnc_emu::Order)0);\n"
             "  for (int i = from; i < to; i++) {\n"
             "    const NncEmuLaunch *t = &%s_train_launches[i];\n"
             "    nnc_emu_launch(t->fn, t->grid, t->block, t->smem, nb);\n  }\n}\n"
             "static void nnc_cuda_backward(const RtModelBufs *b) { nnc_cuda_range(b, 0, %d); }\n"
             "static void nnc_cuda_apply(const RtModelBufs *b) { nnc_cuda_range(b, %d, %d); }\n",
          (long long)arena, name, split, split, s->train.n);
}

/* the device step: one driver session, the gradients' all-reduce between the halves */
static void device_step(FILE *f, const DrvCudaSource *s, int split) {
  int64_t arena = (s->P.pt.arena_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
  fprintf(f,
          "static void nnc_cuda_dist_launch(RtCuda *c, void *mod, NncBufs *nb, int from, int to) {\n"
          "  void *args[1] = {nb};\n"
          "  for (int i = from; i < to; i++) {\n"
          "    const NncLaunch *t = &nnc_train_launches[i];\n    void *fn = NULL;\n"
          "    if (rt_cuda_function(c, mod, t->name, t->smem, &fn) || rt_cuda_launch(c, fn, t->grid, t->block, t->smem, args))\n"
          "      nnc_cuda_fail(c, t->name);\n  }\n}\n"
          "static void nnc_cuda_dist_step(const RtModelBufs *b) {\n"
          "  char err[1024];\n  const long long arena = %lldLL, work = %lldLL;\n"
          "  RtCuda *c = rt_cuda_open(NULL, err, sizeof err);\n"
          "  if (!c) { fprintf(stderr, \"error: %%s\\n\", err); exit(1); }\n"
          "  void *mod = NULL;\n  uint64_t p = 0, io = 0, ar = 0;\n"
          "  if (rt_cuda_load_ptx(c, nnc_ptx, &mod)) nnc_cuda_fail(c, \"loading the PTX\");\n"
          "  if (rt_cuda_alloc(c, (size_t)NNC_PARAMS + 1, &p) || rt_cuda_alloc(c, (size_t)NNC_IO + 1, &io) ||\n"
          "      rt_cuda_alloc(c, (size_t)(arena + work) + 1, &ar)) nnc_cuda_fail(c, \"allocating device memory\");\n"
          "  if (rt_cuda_upload(c, p, b->params, NNC_PARAMS) || rt_cuda_upload(c, io, b->io, NNC_IO))\n"
          "    nnc_cuda_fail(c, \"uploading\");\n"
          "  NncBufs nb = {(char *)(uintptr_t)p, (char *)(uintptr_t)io, (char *)(uintptr_t)ar,\n"
          "                (char *)(uintptr_t)(ar + (uint64_t)arena), (unsigned long long)b->step, b->seed};\n"
          "  nnc_cuda_dist_launch(c, mod, &nb, 0, %d);\n"
          "  if (!b->hooks || !b->hooks->grads_device || b->hooks->grads_device(ar, b->hooks->user)) {\n"
          "    fprintf(stderr, \"error: the all-reduce of the gradients on the device failed\\n\");\n"
          "    exit(1);\n  }\n"
          "  nnc_cuda_dist_launch(c, mod, &nb, %d, %d);\n"
          "  if (rt_cuda_sync(c) || rt_cuda_download(c, b->params, p, NNC_PARAMS) || rt_cuda_download(c, b->io, io, NNC_IO))\n"
          "    nnc_cuda_fail(c, \"running the kernels\");\n"
          "  rt_cuda_free(c, p);\n  rt_cuda_free(c, io);\n  rt_cuda_free(c, ar);\n"
          "  rt_cuda_unload(c, mod);\n  rt_cuda_close(c);\n}\n",
          (long long)arena, (long long)s->train.work_bytes, split, split, s->train.n);
}

int drv_cuda_glue_dist(FILE *f, const DrvCudaSource *s, const char *name) {
  if (!s->P.split_ok) {
    fprintf(stderr, "nnc build: error: --mpi --target: the CUDA plan of '%s' cannot split its "
            "training step before the optimizer (build it without --memory)\n", name);
    return 1;
  }
  char prefix[160];
  snprintf(prefix, sizeof prefix, "%s_train", name);
  int split = split_launch(&s->train, prefix, s->P.pt.split);
  if (s->emu) fputs("extern \"C\" {\n", f);
  grads_table(f, &s->P);
  if (s->emu) emu_halves(f, s, name, split);
  else device_step(f, s, split);
  fprintf(f, "int rt_mpi_main(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss, int argc, char **argv);\n"
             "int nnc_cuda_mpi_main(const RtModelDesc *cpu, const char *fwd_inputs, const char *val_loss, int argc,\n"
             "                      char **argv) {\n"
             "  RtModelDesc d = nnc_cuda_desc(cpu);\n"
             "  d.grads = nnc_cuda_grads;\n  d.ngrads = %d;\n", s->P.ngrads);
  if (s->emu)
    fprintf(f, "  d.train_backward = nnc_cuda_backward;\n  d.train_apply = nnc_cuda_apply;\n");
  else
    fprintf(f, "  d.train_step = nnc_cuda_dist_step; /* all-reduces on the device (RtHooks.grads_device) */\n");
  fprintf(f, "  return rt_mpi_main(&d, fwd_inputs, val_loss, argc, argv);\n}\n");
  if (s->emu) fputs("}\n", f);
  return 0;
}
