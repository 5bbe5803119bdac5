/* cmd_emit.c — `nnc emit --emit=ast|ir|llvm|asm [--train]`: dump a compilation stage. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "build.h"
#include "driver.h"
#include "passes.h"

static void usage(FILE *out) {
  fputs("usage: nnc emit --emit=ast|ir|llvm|asm FILE.nn [-D NAME=VALUE]... [--model NAME]\n"
        "  --emit=ast   the syntax tree, as parsed\n"
        "  --emit=ir    the graph IR of each model (or of --model NAME)\n"
        "  --train      with --emit=ir: the training step of the model (forward, loss,\n"
        "               backward, optimizer update) from its train block\n"
        "  --emit=llvm  the LLVM IR module `nnc build` compiles (kernels, entries, descriptor)\n"
        "  --emit=asm   its assembly; with --target-cpu CPU and -O0..-O3 as for nnc build\n",
        out);
}

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

int cmd_emit(int argc, char **argv) {
  static const struct option opts[] = {{"emit", required_argument, 0, 'e'},
                                       {"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"train", no_argument, 0, 'T'},
                                       {"target-cpu", required_argument, 0, 'C'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  DrvInput in = {0};
  const char *what = "ir";
  int c, train = 0;
  CgOptions co = {.opt_level = 2};
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:O:h", opts, NULL)) != -1) {
    if (c == 'C' || c == 'O') {
      if (c == 'C') co.target_cpu = optarg;
      else co.opt_level = optarg[0] >= '0' && optarg[0] <= '3' && !optarg[1] ? optarg[0] - '0' : -1;
      if (co.opt_level < 0) {
        fprintf(stderr, "nnc emit: error: unknown optimization level '-O%s'\n", optarg);
        return 2;
      }
      continue;
    }
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 'e') {
      what = optarg;
      continue;
    }
    if (c == 'T') {
      train = 1;
      continue;
    }
    int r = drv_common_opt(&in, c, optarg);
    if (r < 0) return 2;
    if (r == 0) {
      usage(stderr);
      return 2;
    }
  }
  int known = !strcmp(what, "ast") || !strcmp(what, "ir") || !strcmp(what, "llvm") ||
              !strcmp(what, "asm");
  if (optind != argc - 1 || !known) {
    if (!known)
      fprintf(stderr, "nnc emit: error: unknown stage '%s' (expected ast, ir, llvm or asm)\n",
              what);
    usage(stderr);
    return 2;
  }
  in.path = argv[optind];
  Diag *d = diag_new(stderr);
  int rc = 0;
  if (!strcmp(what, "ast")) {
    rc = fe_dump_ast(stdout, in.path, d) ? 1 : 0;
  } else if (!strcmp(what, "llvm") || !strcmp(what, "asm")) {
    DrvModel dm;
    char err[1024];
    rc = drv_build_model(&in, &co, d, &dm);
    if (!rc && (what[0] == 'l' ? llvm_model_write_ir(dm.cg, stdout)
                               : llvm_model_write_asm(dm.cg, stdout, err, sizeof err))) {
      fprintf(stderr, "nnc emit: error: %s\n", what[0] == 'l' ? "writing the IR failed" : err);
      rc = 1;
    }
    drv_model_free(&dm);
  } else {
    IrGraph *g = NULL;
    IrModule *m = drv_compile(&in, d, &g);
    if (m && train) {
      rc = emit_train(m, g, d);
      ir_module_free(m);
    } else if (m) {
      if (in.model)
        ir_print(stdout, g);
      else
        ir_module_print(stdout, m);
      ir_module_free(m);
    } else {
      rc = drv_compile_status(&in);
    }
  }
  diag_finish(d);
  diag_free(d);
  return rc;
}
