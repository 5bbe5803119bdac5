/* cmd_check.c — `nnc check`: diagnostics, or one summary line per model. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"

static void usage(FILE *out) {
  fputs("usage: nnc check FILE.nn [-D NAME=VALUE]... [--model NAME]\n"
        "Parses and checks FILE.nn. Prints diagnostics and exits 1 on errors; otherwise\n"
        "prints one line per model: its inputs, outputs and parameter count.\n",
        out);
}

static void print_values(const IrGraph *g, OpKind op, const char *label) {
  char tb[256];
  int first = 1;
  printf("  %s:", label);
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].op != op) continue;
    ir_type_str(g, &g->nodes[i].type, tb, sizeof tb);
    printf("%s %s %s", first ? "" : ",", g->nodes[i].name ? g->nodes[i].name : "?", tb);
    first = 0;
  }
  printf("%s\n", first ? " none" : "");
}

static void summarize(const IrGraph *g) {
  char b1[32], b2[32], tb[256];
  int64_t trainable = ir_param_count(g, true), all = ir_param_count(g, false);
  printf("model %s: %s parameters", g->name, drv_commas(trainable, b1, sizeof b1));
  if (all != trainable) printf(" (+%s in buffers)", drv_commas(all - trainable, b2, sizeof b2));
  int nsym = dim_sym_count(g->dims);
  if (nsym) {
    printf(", dims");
    for (int i = 0; i < nsym; i++)
      printf("%s %s=%lld", i ? "," : "", dim_sym_name(g->dims, i),
             (long long)dim_sym_value(g->dims, i));
  }
  printf("\n");
  print_values(g, OP_INPUT, "inputs ");
  printf("  outputs:");
  for (int i = 0; i < g->noutputs; i++) {
    ir_type_str(g, &g->nodes[g->outputs[i].node].type, tb, sizeof tb);
    printf("%s %s %s", i ? "," : "", g->outputs[i].name, tb);
  }
  printf("%s\n", g->noutputs ? "" : " none");
}

int cmd_check(int argc, char **argv) {
  static const struct option opts[] = {{"define", required_argument, 0, 'D'},
                                       {"model", required_argument, 0, 'M'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  DrvInput in = {0};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    int r = drv_common_opt(&in, c, optarg);
    if (r < 0) return 2;
    if (r == 0) {
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  in.path = argv[optind];
  Diag *d = diag_new(stderr);
  IrGraph *g = NULL;
  IrModule *m = drv_compile(&in, d, &g);
  int errors = diag_finish(d);
  diag_free(d);
  if (!m) return 1;
  for (int i = 0; i < m->ngraphs; i++)
    if (!in.model || m->graphs[i] == g) summarize(m->graphs[i]);
  ir_module_free(m);
  return errors ? 1 : 0;
}
