/* test_cuda_model.c — a model's CUDA code on the CPU against the reference interpreter.
 *
 *   test_cuda_model FILE.nn CXX INCDIR WORKDIR [-D NAME=VALUE]... [--tf32|--bf16|--f16] [--mutant]
 *                   [--loss-scale-check]
 *
 * Plans FILE's forward and training-step graphs for the CUDA target (tiles of sm_80),
 * generates the one CUDA C source `nnc emit --emit=cuda --train` prints, compiles it with the
 * host C++ compiler against the emulation header (codegen/cuda/cuda_emu.h) into a shared
 * object, and runs its launch tables on random data:
 *   - the forward outputs, and after one training step every parameter, buffer, optimizer
 *     state and the loss, are compared with the interpreter (double precision) norm-wise,
 *     ||got - ref|| <= 1e-5 sqrt(n) + rtol ||ref||, rtol 1e-4 (the CPU backend's tolerance
 *     for these models, test_codegen.c: f32 storage rounding against double); with --tf32
 *     (GEMMs and implicit-GEMM convolutions on TF32 tensor cores: both operands of every
 *     product rounded to 11 significant bits, u = 2^-11) rtol 4e-3 = 8 u: the rounding of
 *     every product, amplified by the few layers and the one optimizer step; parameters then
 *     come from their initializers (activations of order 1: with uniform [-1, 1] weights the
 *     logits reach 1e4 and a TF32 rounding flips relu decisions, a discrete change);
 *     with --bf16/--f16 (GEMM and implicit-GEMM convolution inputs rounded to 16 bits on load,
 *     f32 accumulation; f16 with dynamic loss scaling, as nnc builds it), parameters from
 *     their initializers, two references:
 *       the interpreter in double, rtol = 8 (u + (K + 2) u_f32), u the inputs' unit roundoff
 *       (bf16 2^-8, f16 2^-11), K the longest GEMM reduction of the model, u_f32 = 2^-24: both
 *       inputs of every product rounded (2u) and f32 accumulation, amplified as for TF32;
 *       the interpreter rounding the same GEMM inputs (InterpOptions.gemm_round), rtol =
 *       1e-4 + u/4 + (K + 2) u_f32: f32 storage and accumulation, and an input that rounds
 *       the other way when its f32 and double values straddle a rounding boundary;
 *     --mutant compiles the emulation rounding toward zero (NNC_EMU_MUTANT_RTZ): the test
 *     then passes only if a comparison fails;
 *   - the same step again from the same state with the blocks' threads in reversed order
 *     gives identical bits (a kernel racing outside a barrier would not).
 * --loss-scale-check (f16, a model with a target input y, e.g. linreg): see loss_scale_check.
 * Exit 0 when every comparison passes. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../codegen/cuda/cuda_plan.h"
#include "../../frontend/frontend.h"
#include "../../ir/interp.h"
#include "../unit/graph_names.h"

typedef struct EmuBufs {
  char *params, *io, *arena, *work;
  unsigned long long step, seed;
} EmuBufs;
typedef int (*EmuRun)(int train, EmuBufs b, int order);

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) * 0x1p-53;
}

static void *zalloc(int64_t n) {
  void *p = NULL;
  size_t sz = (size_t)(n > 0 ? (n + 63) / 64 * 64 : 64);
  if (posix_memalign(&p, 64, sz)) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  memset(p, 0, sz);
  return p;
}

static int64_t numel_of(const RtTensorInfo *t) {
  int64_t n = 1;
  for (int k = 0; k < t->rank; k++) n *= t->shape[k];
  return n;
}


/* ||got - ref|| / (atol sqrt(n) + rtol ||ref||): <= 1 passes */
static double compare(const char *what, const char *name, const float *got, const double *ref, int64_t n,
                      double rtol) {
  double dd = 0, rr = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = (double)got[i] - ref[i];
    dd += d * d;
    rr += ref[i] * ref[i];
  }
  double r = sqrt(dd) / (1e-5 * sqrt((double)n) + rtol * sqrt(rr));
  printf("%-9s %-32s n=%-8lld ||diff|| %.3g  ||ref|| %.3g  ratio %.3g\n", what, name, (long long)n, sqrt(dd),
         sqrt(rr), r);
  return isnan(r) ? INFINITY : r;
}

typedef struct Model {
  CgModelPlan P;
  CudaLossScale ls;     /* f16: dynamic loss scaling in the training step, as nnc builds it */
  int64_t params_bytes; /* with the loss-scale state */
  void *so;
  EmuRun run;
  long long (*work_bytes)(int);
} Model;

/* source -> WORKDIR/NAME.cu -> NAME.so, loaded */
static int build_so(Model *m, const char *name, const char *cxx, const char *inc, const char *dir, bool mutant,
                    Diag *d) {
  char cu[512], so[512], cmd[2048];
  snprintf(cu, sizeof cu, "%s/%s.cu", dir, name);
  snprintf(so, sizeof so, "%s/%s.so", dir, name);
  FILE *f = fopen(cu, "w");
  if (!f) return fprintf(stderr, "cannot write %s\n", cu), -1;
  CudaPlanTable tf = {0}, tt = {0};
  int rc = cuda_model_source_ls(f, &m->P, name, m->P.have_pt, &tf, &tt, &m->ls, d);
  printf("%s: %d forward launches, %d training-step launches\n", name, tf.n, tt.n);
  cuda_plan_table_free(&tf);
  cuda_plan_table_free(&tt);
  if (fclose(f) || rc) return fprintf(stderr, "%s: generation failed\n", name), -1;
  snprintf(cmd, sizeof cmd, "%s -std=c++17 -O1 -w -shared -fPIC -DNNC_CUDA_EMU%s -I%s -x c++ %s -o %s", cxx,
           mutant ? " -DNNC_EMU_MUTANT_RTZ" : "", inc, cu, so);
  if (system(cmd)) return fprintf(stderr, "failed: %s\n", cmd), -1;
  m->so = dlopen(so, RTLD_NOW);
  if (!m->so) return fprintf(stderr, "dlopen: %s\n", dlerror()), -1;
  m->run = (EmuRun)dlsym(m->so, "nnc_emu_run");
  m->work_bytes = (long long (*)(int))dlsym(m->so, "nnc_emu_work_bytes");
  return m->run && m->work_bytes ? 0 : (fprintf(stderr, "no emulation entry in %s\n", so), -1);
}

/* random values into the table's inputs, parameters, buffers (and optimizer state when
 * training), the same into the interpreter */
static int fill(const Model *m, const IrGraph *g, bool train, bool init, EmuBufs *b, Interp *I, Interp *I2) {
  for (int j = 0; j < m->P.nt; j++) {
    const RtTensorInfo *ti = &m->P.t[j].info;
    if (ti->kind == RT_KIND_OUTPUT || ti->kind == RT_KIND_LOSS) continue;
    if (ti->kind == RT_KIND_OPTSTATE && !train) continue;
    int node = tg_find_leaf(g, ti->name);
    if (node < 0) return fprintf(stderr, "no node for tensor %s\n", ti->name), -1;
    char *base = (ti->kind == RT_KIND_INPUT ? b->io : b->params) + ti->offset;
    int64_t n = numel_of(ti);
    double *v = malloc((size_t)(n ? n : 1) * sizeof(double));
    if (!v) return -1;
    bool from_init = init && (ti->kind == RT_KIND_PARAM || ti->kind == RT_KIND_BUFFER);
    if (from_init) interp_init_param(g, node, 1, v);
    for (int64_t i = 0; i < n; i++) {
      if (from_init) {
        /* the initializer's value */
      } else if (ti->kind == RT_KIND_OPTSTATE)
        v[i] = strstr(ti->name, "step") ? 2 : strstr(ti->name, "adam_v") ? 0.01 * urand() : 0.1 * (urand() - 0.5);
      else if (ti->dtype == DT_I32) v[i] = (double)(int64_t)(urand() * 10);
      else if (ti->kind == RT_KIND_BUFFER && strstr(ti->name, "var")) v[i] = 0.5 + urand();
      else v[i] = 2 * urand() - 1;
      if (ti->dtype == DT_I32) ((int32_t *)base)[i] = (int32_t)v[i];
      else ((float *)base)[i] = (float)v[i];
    }
    int rc = interp_set(I, node, v, n) | (I2 ? interp_set(I2, node, v, n) : 0);
    free(v);
    if (rc) return fprintf(stderr, "interp_set %s failed\n", ti->name), -1;
  }
  return 0;
}

static double check(const Model *m, const IrGraph *g, bool train, const EmuBufs *b, Interp *I, double rtol) {
  double worst = 0;
  for (int j = 0; j < m->P.nt; j++) {
    const RtTensorInfo *ti = &m->P.t[j].info;
    if (ti->kind == RT_KIND_INPUT || ti->dtype != DT_F32) continue;
    if (!train && ti->kind != RT_KIND_OUTPUT) continue;
    int node = ti->kind == RT_KIND_OUTPUT ? tg_find_out(g, ti->name)
               : ti->kind == RT_KIND_LOSS ? tg_find_out(g, "loss")
                                          : tg_find_leaf(g, ti->name);
    int64_t n = 0;
    const double *ref = node >= 0 ? interp_value(I, node, &n) : NULL;
    if (!ref || n != numel_of(ti)) {
      fprintf(stderr, "no reference for %s\n", ti->name);
      return INFINITY;
    }
    char *base = (ti->kind <= RT_KIND_OPTSTATE ? b->params : b->io) + ti->offset;
    double w = compare(train ? "train" : "forward", ti->name, (const float *)base, ref, n, rtol);
    if (w > worst) worst = w;
  }
  return worst;
}

/* the tolerances of one precision (see the top of the file) */
typedef struct Tol {
  double rtol;   /* against the interpreter in double */
  DType round;   /* bf16/f16: also against the interpreter rounding the GEMM inputs... */
  double rtol_r; /* ...with this tolerance */
  bool init;     /* parameters from their initializers */
} Tol;

/* worst ratios against the plain (*w) and the GEMM-input-rounding (*wr, 0 without) reference;
 * 0 when the runs completed and the two thread orders gave identical bits */
static int run_graph(const Model *m, const IrGraph *g, bool train, const Tol *tol, double *w, double *wr) {
  const CgPlan *p = train ? &m->P.pt : &m->P.pf;
  EmuBufs b = {zalloc(m->params_bytes), zalloc(m->P.io_bytes), zalloc(p->arena_bytes),
               zalloc(m->work_bytes(train)), 3, 1234};
  InterpOptions io = {.round_storage = true, .seed = 1234, .step = 3}, ior = io;
  ior.gemm_round = tol->round;
  Interp *I = interp_new(g, &io), *Ir = tol->round != DT_F32 ? interp_new(g, &ior) : NULL;
  char ierr[256];
  int rc = fill(m, g, train, tol->init, &b, I, Ir);
  if (!rc && (interp_run(I, ierr, sizeof ierr) || (Ir && interp_run(Ir, ierr, sizeof ierr)))) {
    fprintf(stderr, "interpreter: %s\n", ierr);
    rc = -1;
  }
  char *params0 = zalloc(m->params_bytes);
  memcpy(params0, b.params, (size_t)m->params_bytes);
  if (!rc) rc = m->run(train, b, 0);
  *w = rc ? INFINITY : check(m, g, train, &b, I, tol->rtol);
  *wr = rc ? INFINITY : Ir ? (printf("against the interpreter with GEMM inputs rounded:\n"),
                              check(m, g, train, &b, Ir, tol->rtol_r)) : 0;
  /* again from the same state, threads in reversed order: identical bits */
  char *io1 = zalloc(m->P.io_bytes), *params1 = zalloc(m->params_bytes);
  memcpy(io1, b.io, (size_t)m->P.io_bytes);
  memcpy(params1, b.params, (size_t)m->params_bytes);
  memcpy(b.params, params0, (size_t)m->params_bytes);
  memset(b.arena, 0xff, (size_t)(p->arena_bytes > 0 ? p->arena_bytes : 1));
  if (!rc) rc = m->run(train, b, 1);
  bool same = !memcmp(io1, b.io, (size_t)m->P.io_bytes) && !memcmp(params1, b.params, (size_t)m->params_bytes);
  if (!rc && !same) fprintf(stderr, "%s: results differ between thread orders\n", train ? "train" : "forward");
  printf("%s: worst ratio %.3g (rounded GEMM inputs: %.3g), %s in reversed thread order\n",
         train ? "training step" : "forward", *w, *wr, same ? "identical" : "DIFFERENT");
  interp_free(I);
  if (Ir) interp_free(Ir);
  free(b.params);
  free(b.io);
  free(b.arena);
  free(b.work);
  free(params0);
  free(io1);
  free(params1);
  return !rc && same ? 0 : 1;
}

/* one training step from the state in b; *skipped: the step's inf/nan flag; the scale and
 * good-step count after it */
static int ls_step(const Model *m, EmuBufs *b, bool *skipped, float *scale, unsigned *good) {
  if (m->run(1, *b, 0)) return -1;
  const unsigned char *st = (const unsigned char *)b->params + cuda_loss_scale_offset(&m->P);
  unsigned w[4];
  memcpy(w, st, sizeof w);
  memcpy(scale, &w[1], 4);
  *skipped = w[3] != 0, *good = w[2];
  printf("step: %s, scale %g, good steps %u\n", *skipped ? "skipped (inf/nan in the gradients)" : "taken", (double)*scale, *good);
  return 0;
}

/* Dynamic loss scaling (--loss-scale-check, with linreg: mse against targets y): 1. targets
 * scaled by 1e4 make the gradient of yhat (2(yhat - y)/N, thousands) overflow f16 at the
 * initial scale 2^16: the step is skipped -- every parameter and optimizer state bit for bit
 * unchanged -- and the scale halves; 2. the original targets: the step is taken and equals
 * the interpreter's one step from the same initial state (the skipped step left no trace);
 * 3. with CUDA_LS_GROWTH - 1 good steps behind it, a good step doubles the scale. */
static int loss_scale_check(const Model *m, const IrGraph *tg, const Tol *tol) {
  EmuBufs b = {zalloc(m->params_bytes), zalloc(m->P.io_bytes), zalloc(m->P.pt.arena_bytes), zalloc(m->work_bytes(1)),
               3, 1234};
  InterpOptions io = {.round_storage = true, .seed = 1234, .step = 3, .gemm_round = DT_F16};
  Interp *I = interp_new(tg, &io);
  char ierr[256];
  int rc = fill(m, tg, true, false, &b, I, NULL) || interp_run(I, ierr, sizeof ierr) ? -1 : 0;
  int yt = -1;
  for (int j = 0; j < m->P.nt; j++)
    if (!strcmp(m->P.t[j].info.name, "y") && m->P.t[j].info.kind == RT_KIND_INPUT) yt = j;
  if (rc || yt < 0) return fprintf(stderr, "loss-scale check: no target input y, or the interpreter failed\n"), 1;
  float *y = (float *)(b.io + m->P.t[yt].info.offset);
  int64_t ny = numel_of(&m->P.t[yt].info), table = m->P.params_bytes;
  float *y0 = malloc((size_t)ny * sizeof *y0);
  char *p0 = malloc((size_t)table);
  if (!y0 || !p0) return 1;
  memcpy(y0, y, (size_t)ny * sizeof *y0);
  memcpy(p0, b.params, (size_t)table);
  for (int64_t i = 0; i < ny; i++) y[i] = y0[i] * 1e4f;
  bool skipped;
  float scale;
  unsigned good;
  int bad = ls_step(m, &b, &skipped, &scale, &good) != 0;
  bad |= !skipped || scale != 32768.0f || good != 0 || memcmp(p0, b.params, (size_t)table) != 0;
  if (bad) fprintf(stderr, "1: the overflowing step was not skipped with every parameter unchanged and the scale halved\n");
  memcpy(y, y0, (size_t)ny * sizeof *y0);
  bad |= ls_step(m, &b, &skipped, &scale, &good) != 0;
  bad |= skipped || scale != 32768.0f || good != 1;
  double w = check(m, tg, true, &b, I, tol->rtol_r);
  if (w > 1 || skipped) bad = 1, fprintf(stderr, "2: the step after the skipped one is not the interpreter's (ratio %.3g)\n", w);
  unsigned growth = CUDA_LS_GROWTH - 1;
  memcpy(b.params + cuda_loss_scale_offset(&m->P) + 8, &growth, 4);
  bad |= ls_step(m, &b, &skipped, &scale, &good) != 0;
  if (skipped || scale != 65536.0f || good != 0) bad = 1, fprintf(stderr, "3: the scale did not double after %d good steps\n", CUDA_LS_GROWTH);
  printf("loss scaling: %s\n", bad ? "FAILED" : "skip, halve, resume and double as specified");
  interp_free(I);
  free(y0), free(p0), free(b.params), free(b.io), free(b.arena), free(b.work);
  return bad;
}

/* the longest reduction (K) among the GEMM-like kernels of the tile plans */
static int64_t max_k(const CudaTiles *t) {
  int64_t k = 0;
  const TilePlan *tp[2] = {t->fwd, t->train};
  for (int j = 0; j < 2; j++)
    for (int i = 0; tp[j] && i < tp[j]->n; i++)
      if (tp[j]->tiles[i].valid && tp[j]->tiles[i].gemm.k > k) k = tp[j]->tiles[i].gemm.k;
  return k;
}

static Tol tolerances(CudaPrec prec, int64_t K) {
  Tol t = {.rtol = 1e-4};
  double u = prec == CUDA_PREC_BF16 ? 0x1p-8 : 0x1p-11, uf = 0x1p-24;
  if (prec == CUDA_PREC_TF32) t.rtol = 4e-3, t.init = true;
  if (prec == CUDA_PREC_BF16 || prec == CUDA_PREC_F16) {
    t.rtol = 8 * (u + (double)(K + 2) * uf);
    t.round = cuda_prec_dtype(prec);
    t.rtol_r = 1e-4 + u / 4 + (double)(K + 2) * uf;
    t.init = true;
  }
  return t;
}

int main(int argc, char **argv) {
  if (argc < 5)
    return fprintf(stderr, "usage: test_cuda_model FILE.nn CXX INCDIR WORKDIR [-D N=V]... [--tf32|--bf16|--f16] [--mutant]\n"), 2;
  const char *defs[8];
  int nd = 0;
  CudaPrec prec = CUDA_PREC_F32;
  bool mutant = false, ls_check = false;
  for (int i = 5; i < argc; i++) {
    if (!strncmp(argv[i], "--", 2) && !cuda_prec_parse(argv[i] + 2, &prec)) continue;
    if (!strcmp(argv[i], "--mutant")) mutant = true;
    else if (!strcmp(argv[i], "--loss-scale-check")) ls_check = true, prec = CUDA_PREC_F16;
    else if (!strcmp(argv[i], "-D") && i + 1 < argc && nd < 8) defs[nd++] = argv[++i];
    else return fprintf(stderr, "test_cuda_model: unknown argument %s\n", argv[i]), 2;
  }
  Diag *d = diag_new(stderr);
  FeOptions fo = {.defines = defs, .ndefines = nd};
  IrModule *mod = fe_compile_file(argv[1], &fo, d);
  if (!mod) return fprintf(stderr, "%s does not compile\n", argv[1]), 1;
  IrGraph *g = mod->graphs[0];
  IrTrain *t = ir_module_find_train(mod, g->name);
  TrainInfo info;
  IrGraph *tg = t ? pass_train_graph(g, t, &info, d) : NULL;
  CgTarget ct;
  const HwTarget *hw = hw_find_builtin("a100-sxm-80gb");
  cuda_backend_target(&ct, hw);
  CudaTiles tiles;
  cuda_tiles_plan(&tiles, g, tg, hw, prec);
  Tol tol = tolerances(prec, max_k(&tiles));
  printf("precision %s: rtol %.3g against double", cuda_prec_name(prec), tol.rtol);
  if (tol.round != DT_F32) printf(", %.3g against GEMM inputs rounded (K = %lld)", tol.rtol_r, (long long)max_k(&tiles));
  printf("%s\n", mutant ? "; mutant (round toward zero): must fail" : "");
  Model m = {0};
  int rc = 1;
  char so[160];
  snprintf(so, sizeof so, "%s_%s%s", g->name, cuda_prec_name(prec), mutant ? "_mutant" : "");
  double w[2] = {0, 0}, wr[2] = {0, 0};
  m.ls = (CudaLossScale){.on = prec == CUDA_PREC_F16, .dynamic = true, .init = 65536.0f};
  bool planned = !cg_model_plan(&m.P, g, tg, &ct, tiles.fwd, tiles.train, d);
  if (planned) m.params_bytes = cuda_params_bytes(&m.P, &m.ls);
  if (planned && !build_so(&m, so, argv[2], argv[3], argv[4], mutant, d)) {
    rc = ls_check ? 0 : run_graph(&m, g, false, &tol, &w[0], &wr[0]);
    if (tg) rc |= ls_check ? loss_scale_check(&m, tg, &tol) : run_graph(&m, tg, true, &tol, &w[1], &wr[1]);
  }
  double worst = fmax(fmax(w[0], w[1]), fmax(wr[0], wr[1]));
  if (!rc && mutant) rc = worst > 1 ? 0 : 1; /* the fault must be seen */
  else if (!rc) rc = worst <= 1 ? 0 : 1;
  cuda_tiles_free(&tiles);
  printf("%s: %s%s\n", argv[1], rc ? "FAILED" : "ok", mutant ? (rc ? " (the mutant passed)" : " (the mutant was caught)") : "");
  cg_model_plan_free(&m.P);
  ir_module_free(mod);
  diag_free(d);
  return rc;
}
