/* cmd_emit.c — `nnc emit --emit=ast|ir|kernels|llvm|asm [--train]`: dump a compilation
 * stage. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "build.h"
#include "cuda_drv.h"
#include "driver.h"
#include "passes.h"

static void usage(FILE *out) {
  fputs("usage: nnc emit --emit=ast|ir|kernels|llvm|asm|cuda|ptx FILE.nn [-D NAME=VALUE]... [--model NAME]\n"
        "  --emit=ast      the syntax tree, as parsed\n"
        "  --emit=ir       the graph IR of each model (or of --model NAME)\n"
        "  --train         with --emit=ir: the training step of the model (forward, loss,\n"
        "                  backward, optimizer update) from its train block; with\n"
        "                  --emit=kernels: the kernel plan of that step\n"
        "  --emit=kernels  the kernel plan `nnc build` compiles: the tensor table, then the\n"
        "                  kernels in order with their members, fused epilogues, reads and\n"
        "                  writes (region offsets), scratch and GEMM tiles\n"
        "  --target HW     with --emit=kernels: the hardware the tiles are chosen for\n"
        "                  (default host; see nnc cost --list-targets)\n"
        "  --no-winograd   with --emit=kernels|llvm|asm: no Winograd F(4,3) convolutions, as\n"
        "                  nnc build --no-winograd\n"
        "  --no-dw-fuse    with --emit=kernels|llvm|asm: no depthwise convolution fused into\n"
        "                  its pointwise reader, as nnc build --no-dw-fuse\n"
        "  --emit=llvm     the LLVM IR module `nnc build` compiles (kernels, entries, descriptor)\n"
        "  --emit=asm      its assembly; with --target-cpu CPU and -O0..-O3 as for nnc build\n"
        "  --emit=cuda     the CUDA C of the model's forward pass (with --train: and of its\n"
        "                  training step) and the launch tables, for --target cuda[:sm_80|\n"
        "                  sm_86|sm_89|sm_90] (default cuda = sm_80)\n"
        "  --emit=ptx      that source compiled by NVRTC for the target's architecture\n"
        "  --precision P   f32 (default); bf16 for llvm/asm (CPU GEMM inputs in bf16); with\n"
        "                  cuda/ptx: tf32, bf16 or f16 (tensor cores)\n"
        "  --loss-scale S  with --precision f16: dynamic (default), none, or a static power of two\n",
        out);
}

typedef struct EmitArgs {
  DrvInput in;
  DrvBuildOptions bo;
  const char *what, *hw, *precision, *loss_scale;
  bool train;
} EmitArgs;

/* the training-step graph of g from its train block */
static int emit_train(IrModule *m, IrGraph *g, Diag *d) {
  IrTrain *t = ir_module_find_train(m, g->name);
  if (!t) {
    diag_error(d, g->loc, "model '%s' has no train block", g->name);
    return 1;
  }
  TrainInfo info;
  IrGraph *tg = pass_train_graph(g, t, &info, d);
  if (!tg) return 1;
  ir_print(stdout, tg);
  return 0;
}

static int emit_ir(const EmitArgs *a, Diag *d) {
  IrGraph *g = NULL;
  IrModule *m = drv_compile(&a->in, d, &g);
  if (!m) return drv_compile_status(&a->in);
  int rc = 0;
  if (a->train)
    rc = emit_train(m, g, d);
  else if (a->in.model)
    ir_print(stdout, g);
  else
    ir_module_print(stdout, m);
  ir_module_free(m);
  return rc;
}

static int emit_llvm(const EmitArgs *a, Diag *d) {
  DrvModel dm;
  int rc = drv_build_model(&a->in, &a->bo, d, &dm);
  bool ir = !strcmp(a->what, "llvm");
  if (!rc && (ir ? llvm_model_write_ir(dm.cg, stdout, d) : llvm_model_write_asm(dm.cg, stdout, d)))
    rc = 1;
  drv_model_free(&dm);
  return rc;
}

/* the plan of the model as nnc build compiles it: with its training step (when it has one),
 * so the tensor table and io offsets are the program's */
static int emit_kernels(EmitArgs *a, Diag *d) {
  HwTarget hw;
  char err[512];
  if (hw_resolve(a->hw ? a->hw : "host", &hw, err, sizeof err)) {
    fprintf(stderr, "nnc emit: error: --target: %s\n", err);
    return 2;
  }
  DrvModel dm;
  a->bo.plan_only = true;
  int rc = drv_build_model(&a->in, &a->bo, d, &dm);
  if (!rc && a->train && !dm.train) {
    diag_error(d, dm.fwd->loc, "model '%s' has no train block", dm.fwd->name);
    rc = 1;
  }
  CgTarget target;
  llvm_backend_target(&target, 0, &hw);
  target.winograd = !a->bo.cg.no_winograd;
  target.dw_fuse = !a->bo.cg.no_dw_fuse;
  CgModelPlan P = {0};
  if (!rc) rc = cg_model_plan(&P, dm.fwd, dm.train, &target, NULL, NULL, d) ? 1 : 0;
  if (!rc) cg_model_plan_print(stdout, &P, a->train);
  cg_model_plan_free(&P);
  drv_model_free(&dm);
  return rc;
}

static int emit_opt(EmitArgs *a, int c, const char *arg) {
  switch (c) {
  case 'e': a->what = arg; return 0;
  case 'T': a->train = true; return 0;
  case 'H': a->hw = arg; return 0;
  case 'P': a->precision = arg; return 0;
  case 'S': a->loss_scale = arg; return 0;
  case 'C': a->bo.cg.target_cpu = arg; return 0;
  case 'W': a->bo.cg.no_winograd = true; return 0;
  case 'X': a->bo.cg.no_dw_fuse = true; return 0;
  case 'O':
    if (arg[0] >= '0' && arg[0] <= '3' && !arg[1]) {
      a->bo.cg.opt_level = arg[0] - '0';
      return 0;
    }
    fprintf(stderr, "nnc emit: error: unknown optimization level '-O%s'\n", arg);
    return 2;
  default: return 1;
  }
}

/* -1: continue; else the exit status */
static int emit_args(EmitArgs *a, int argc, char **argv) {
  static const struct option opts[] = {{"emit", required_argument, 0, 'e'},
                                       {"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"train", no_argument, 0, 'T'},
                                       {"target", required_argument, 0, 'H'},
                                       {"precision", required_argument, 0, 'P'},
                                       {"loss-scale", required_argument, 0, 'S'},
                                       {"target-cpu", required_argument, 0, 'C'},
                                       {"no-winograd", no_argument, 0, 'W'},
                                       {"no-dw-fuse", no_argument, 0, 'X'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  memset(a, 0, sizeof *a);
  a->what = "ir";
  a->bo.cg.opt_level = 2;
  a->bo.remat = REMAT_OPTIMAL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:O:h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    int r = emit_opt(a, c, optarg);
    if (r == 0) continue;
    if (r == 2) return 2;
    r = drv_common_opt(&a->in, c, optarg);
    if (r < 0) return 2;
    if (r == 0) {
      usage(stderr);
      return 2;
    }
  }
  const char *stages[] = {"ast", "ir", "kernels", "llvm", "asm", "cuda", "ptx"};
  bool known = false;
  for (size_t i = 0; i < sizeof stages / sizeof *stages; i++) known |= !strcmp(a->what, stages[i]);
  if (optind != argc - 1 || !known) {
    if (!known)
      fprintf(stderr, "nnc emit: error: unknown stage '%s' (expected ast, ir, kernels, llvm, "
                      "asm, cuda or ptx)\n", a->what);
    usage(stderr);
    return 2;
  }
  bool cuda = !strcmp(a->what, "cuda") || !strcmp(a->what, "ptx");
  if (!cuda && drv_cpu_precision("nnc emit", a->precision, &a->bo.cg)) return 2;
  a->in.path = argv[optind];
  return -1;
}

int cmd_emit(int argc, char **argv) {
  EmitArgs a;
  int rc = emit_args(&a, argc, argv);
  if (rc >= 0) return rc;
  Diag *d = diag_new(stderr);
  if (!strcmp(a.what, "ast"))
    rc = fe_dump_ast(stdout, a.in.path, d) ? 1 : 0;
  else if (!strcmp(a.what, "kernels"))
    rc = emit_kernels(&a, d);
  else if (!strcmp(a.what, "cuda") || !strcmp(a.what, "ptx"))
    rc = drv_emit_cuda(&a.in, &a.bo, a.hw, a.precision, a.loss_scale, a.train, !strcmp(a.what, "ptx"), d);
  else if (!strcmp(a.what, "llvm") || !strcmp(a.what, "asm"))
    rc = emit_llvm(&a, d);
  else
    rc = emit_ir(&a, d);
  diag_finish(d);
  diag_free(d);
  return rc;
}
