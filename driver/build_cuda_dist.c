/* build_cuda_dist.c — `nnc build --mpi --target cuda|cuda-emu`: the data-parallel part of a
 * CUDA program's glue (build_cuda.c writes the rest of the translation unit first).
 *
 * The CUDA plan splits the training step like the CPU plan (CgPlan.split: the optimizer's
 * kernels last) and lists its gradients (CgModelPlan.grads, offsets in the CUDA arena). The
 * launch table follows the plan's kernels in order, each launch named PREFIX_kI[_...] after
 * its kernel I, so the launches of kernels before the split come first.
 *
 * The program trains on the persistent device context of every CUDA program (RtDevice:
 * params, optimizer state and arena stay in device memory across steps; a step uploads its
 * batch and downloads the loss). Its device adds run_split, the training step with the
 * step's hooks between the launches: by default the all-reduce overlapping the backward
 * launches, RtHooks.grads_ready_device after each launch that completes some gradient's
 * ready kernel (the table nnc_ready_after) and grads_wait_device before the first optimizer
 * launch (cuda: each bucket with NCCL on a second stream ordered by events, runtime/rt_nccl.c
 * via rt_mpi.c; cuda-emu, whose device memory is host memory: MPI_Iallreduce); with
 * --no-overlap, RtHooks.grads_device before the first optimizer launch (cuda: ncclAllReduce
 * with ncclAvg of every gradient in one group; cuda-emu: MPI_Allreduce); with --sync-bn,
 * before the launches that read them, the table's sums (CudaPlanSum,
 * codegen/cuda/cuda_syncbn.c) through RtHooks.sum_f64_device (NCCL in f64; cuda-emu:
 * MPI_Allreduce of doubles). */
#include <stdlib.h>
#include <string.h>

#include "cuda_drv.h"

/* the plan kernel of launch i of t (named PREFIX_kI[_...]), or -1 */
static int launch_kernel(const CudaPlanTable *t, const char *prefix, int i) {
  size_t n = strlen(prefix);
  const char *nm = t->v[i].name;
  return !strncmp(nm, prefix, n) && !strncmp(nm + n, "_k", 2) ? atoi(nm + n + 2) : -1;
}

/* the first launch of t whose plan kernel is at or after split (t->n if none) */
static int split_launch(const CudaPlanTable *t, const char *prefix, int split) {
  for (int i = 0; i < t->n; i++)
    if (launch_kernel(t, prefix, i) >= split) return i;
  return t->n;
}

/* The overlapped all-reduce's marks, one per launch: after launch i, every plan kernel up to
 * m is complete (the next launch belongs to kernel m + 1 or later), and m is the first such
 * point at which some gradient's ready kernel (CgGrad.ready) is complete; -1 elsewhere, and
 * after every launch when the table is not in plan order (the buckets then all start before
 * the optimizer's launches). */
static void ready_table(FILE *f, const CudaPlanTable *t, const char *prefix, const CgModelPlan *P, int split) {
  int sl = split_launch(t, prefix, split), ordered = 1;
  for (int i = 0; i + 1 < sl; i++)
    if (launch_kernel(t, prefix, i) < 0 || launch_kernel(t, prefix, i + 1) < launch_kernel(t, prefix, i)) ordered = 0;
  fprintf(f, "static const int nnc_ready_after[] = {");
  int done = -1; /* the kernels up to done are complete and were marked */
  for (int i = 0; i < t->n; i++) {
    int m = -1;
    if (ordered && i < sl) {
      int next = i + 1 < sl ? launch_kernel(t, prefix, i + 1) : split;
      int upto = next - 1;
      for (int g = 0; upto > done && upto >= launch_kernel(t, prefix, i) && g < P->ngrads; g++)
        if (P->grads[g].ready > done && P->grads[g].ready <= upto) m = upto;
      if (m >= 0) done = m;
    }
    fprintf(f, "%s%d", i ? ", " : "", m);
  }
  fprintf(f, "%s};\n", t->n ? "" : "-1");
}

static void grads_table(FILE *f, const CgModelPlan *P) {
  fprintf(f, "static const RtGradInfo nnc_cuda_grads[] = {\n");
  for (int i = 0; i < P->ngrads; i++)
    fprintf(f, "  {%lldLL, %lldLL, %d, %d},\n", (long long)P->grads[i].offset,
            (long long)P->grads[i].numel, P->grads[i].tensor, P->grads[i].ready);
  fprintf(f, "  {0, 0, 0, 0}};\n");
}

/* sync-bn: {before launch, byte offset in the workspace, doubles} of every sum, then -1 */
static void sums_table(FILE *f, const CudaPlanTable *t) {
  fprintf(f, "static const long long nnc_cuda_sums[][3] = {\n");
  for (int i = 0; i < t->nsums; i++)
    fprintf(f, "  {%d, %lldLL, %lldLL},\n", t->sums[i].before, (long long)t->sums[i].off, (long long)t->sums[i].n);
  fprintf(f, "  {-1, 0, 0}};\n");
}

/* before launch i: the sync-bn sums due there, and at the split the gradients' mean */
static void split_hooks(FILE *f, int split) {
  fprintf(f, "static int nnc_split_hooks(RtHooks *h, uint64_t arena, uint64_t work, int i) {\n"
             "  for (int k = 0; nnc_cuda_sums[k][0] >= 0; k++)\n"
             "    if (nnc_cuda_sums[k][0] == i && h->sum_f64_device &&\n"
             "        h->sum_f64_device(work + (uint64_t)nnc_cuda_sums[k][1], nnc_cuda_sums[k][2], h->user))\n"
             "      return -1;\n"
             "  return i == %d && h->grads_device && h->grads_device(arena, h->user) ? -1 : 0;\n}\n", split);
}

/* RtDevice.run_split of the emulation: its regions are host memory, and a launch has run when
 * it returns, so the buckets are started right after it (stream NULL) */
static void emu_run_split(FILE *f, const DrvCudaSource *s, const char *name, int split) {
  fprintf(f, "static int nnc_dev_run_split(void *v, int64_t step, uint64_t seed, RtHooks *h) {\n"
             "  NncDev *d = (NncDev *)v;\n"
             "  NncBufs nb = {d->r[0], d->r[1], d->r[2], d->r[2] + nnc_arena_at[1], (unsigned long long)step, seed};\n"
             "  uint64_t ar = (uint64_t)(uintptr_t)nb.arena;\n"
             "  int ov = h->grads_ready_device && h->grads_wait_device;\n"
             "  nnc_emu_set_order((nnc_emu::Order)0);\n"
             "  for (int i = 0; i <= %d; i++) {\n"
             "    if (nnc_split_hooks(h, ar, (uint64_t)(uintptr_t)nb.work, i)) return -1;\n"
             "    if (ov && i == %d && h->grads_wait_device(ar, NULL, h->user)) return -1;\n"
             "    const NncEmuLaunch *t = &%s_train_launches[i];\n"
             "    if (i < %d) nnc_emu_launch(t->fn, t->grid, t->block, t->smem, nb);\n"
             "    if (ov && i < %d && nnc_ready_after[i] >= 0) h->grads_ready_device(nnc_ready_after[i], ar, NULL, h->user);\n"
             "  }\n  return 0;\n}\n",
          s->train.n, split, name, s->train.n, s->train.n);
}

/* the GPU's communication stream and its two events (at the first overlapped step), and the
 * fence that makes the communication stream wait for the launches queued so far */
static const char dev_comm_src[] =
    "static int nnc_dev_comm(NncDev *d) {\n"
    "  if (!d->comm && (rt_cuda_stream_create(d->c, &d->comm) || rt_cuda_event_create(d->c, &d->ev[0]) ||\n"
    "                   rt_cuda_event_create(d->c, &d->ev[1])))\n"
    "    return nnc_dev_fail(d, \"creating the communication stream\");\n"
    "  return 0;\n}\n"
    "static int nnc_dev_fence(NncDev *d, void *from, void *to, int e) {\n"
    "  if (rt_cuda_event_record(d->c, d->ev[e], from) || rt_cuda_stream_wait_event(d->c, to, d->ev[e]))\n"
    "    return nnc_dev_fail(d, \"ordering the streams\");\n"
    "  return 0;\n}\n"
    "static int nnc_dev_all_reduced(NncDev *d, RtHooks *h, uint64_t ar) {\n"
    "  if (nnc_dev_fence(d, NULL, d->comm, 0)) return -1;\n"
    "  if (h->grads_wait_device(ar, d->comm, h->user)) {\n"
    "    snprintf(d->err, sizeof d->err, \"the all-reduce of the data-parallel step failed\");\n"
    "    return -1;\n  }\n"
    "  return nnc_dev_fence(d, d->comm, NULL, 1);\n}\n"
    "static int nnc_sums_before(int i) {\n"
    "  for (int k = 0; nnc_cuda_sums[k][0] >= 0; k++)\n"
    "    if (nnc_cuda_sums[k][0] == i) return 1;\n"
    "  return 0;\n}\n";

/* RtDevice.run_split on the GPU: the launches on the legacy default stream; the overlapped
 * all-reduce's buckets with NCCL on the communication stream, each after an event recorded
 * behind the launch that finishes its gradients, and the optimizer's launches behind an
 * event recorded on the communication stream (no host wait); the sync-bn sums and the
 * all-reduce after the backward launches (--no-overlap) on the default stream. NCCL does not
 * order the collectives of one communicator issued on two streams, so before a sync-bn sum
 * the default stream also waits for the buckets started so far: every rank then runs the
 * communicator's collectives in the order it issues them. */
static void device_run_split(FILE *f, const DrvCudaSource *s, int split) {
  fputs(dev_comm_src, f);
  fprintf(f, "static int nnc_dev_run_split(void *v, int64_t step, uint64_t seed, RtHooks *h) {\n"
             "  NncDev *d = (NncDev *)v;\n"
             "  uint64_t ar = d->r[2], work = ar + (uint64_t)nnc_arena_at[1];\n"
             "  NncBufs nb = {(char *)(uintptr_t)d->r[0], (char *)(uintptr_t)d->r[1], (char *)(uintptr_t)ar,\n"
             "                (char *)(uintptr_t)work, (unsigned long long)step, seed};\n"
             "  void *args[1] = {&nb};\n"
             "  const NncLaunch *t = nnc_train_launches;\n"
             "  int ov = h->grads_ready_device && h->grads_wait_device;\n"
             "  if (ov && nnc_dev_comm(d)) return -1;\n"
             "  for (int i = 0; i <= %d; i++) {\n"
             "    /* one communicator on two streams: its sync-bn sums after the buckets started */\n"
             "    if (ov && h->sum_f64_device && nnc_sums_before(i) && nnc_dev_fence(d, d->comm, NULL, 1)) return -1;\n"
             "    if (nnc_split_hooks(h, ar, work, i)) {\n"
             "      snprintf(d->err, sizeof d->err, \"the all-reduce of the data-parallel step failed\");\n"
             "      return -1;\n    }\n"
             "    if (ov && i == %d && nnc_dev_all_reduced(d, h, ar)) return -1;\n"
             "    if (i < %d && rt_cuda_launch_on(d->c, d->fn[1][i], t[i].grid, t[i].block, t[i].smem, args, NULL))\n"
             "      return nnc_dev_fail(d, t[i].name);\n"
             "    if (ov && i < %d && nnc_ready_after[i] >= 0) {\n"
             "      if (nnc_dev_fence(d, NULL, d->comm, 0)) return -1;\n"
             "      h->grads_ready_device(nnc_ready_after[i], ar, d->comm, h->user);\n"
             "    }\n"
             "  }\n"
             "  if (rt_cuda_stream_sync(d->c, NULL)) return nnc_dev_fail(d, \"running the kernels\");\n"
             "  return 0;\n}\n",
          s->train.n, split, s->train.n, s->train.n);
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
  fputs("extern \"C\" {\n", f); /* nnc_cuda_mpi_main and rt_mpi_main are C functions */
  grads_table(f, &s->P);
  sums_table(f, &s->train);
  ready_table(f, &s->train, prefix, &s->P, s->P.pt.split);
  split_hooks(f, split);
  if (s->emu) emu_run_split(f, s, name, split);
  else device_run_split(f, s, split);
  fprintf(f, "static RtDevice nnc_cuda_mpi_dev(void) {\n"
             "  RtDevice v = nnc_cuda_device;\n  v.run_split = nnc_dev_run_split;\n  return v;\n}\n"
             "static const RtDevice nnc_cuda_mpi_device = nnc_cuda_mpi_dev();\n"
             "int rt_mpi_main(const RtModelDesc *d, const char *fwd_inputs, const char *val_loss, int argc, char **argv);\n"
             "int nnc_cuda_mpi_main(const RtModelDesc *cpu, const char *fwd_inputs, const char *val_loss, int argc,\n"
             "                      char **argv) {\n"
             "  RtModelDesc d = nnc_cuda_desc(cpu);\n"
             "  d.device = &nnc_cuda_mpi_device; /* the persistent context, with the all-reduce between launches */\n"
             "  d.grads = nnc_cuda_grads;\n  d.ngrads = %d;\n"
             "  return rt_mpi_main(&d, fwd_inputs, val_loss, argc, argv);\n}\n", s->P.ngrads);
  fputs("}\n", f);
  return 0;
}
