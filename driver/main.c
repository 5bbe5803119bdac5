/* main.c — `nnc`: dispatch to the subcommands (one file each). */
#include <stdio.h>
#include <string.h>

#include "driver.h"

typedef struct Command {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} Command;

static const Command commands[] = {
    {"check", cmd_check, "parse and check a .nn file; print a summary of each model"},
    {"emit", cmd_emit, "print the AST, IR, kernel plan, LLVM IR or assembly (--emit=ast|ir|kernels|llvm|asm)"},
    {"run", cmd_run, "run a model in the reference interpreter (forward, --grad, --train)"},
    {"cost", cmd_cost, "FLOPs, MACs, memory and roofline time of a model on a target"},
    {"probe", cmd_probe, "measure this machine's FMA peak and memory bandwidth (host target)"},
    {"build", cmd_build, "compile a model into a program, or a library and header (--lib)"},
    {"plan", cmd_plan, "memory plan of a training step; rematerialization to fit a budget"},
    {"import", cmd_import, "translate an ONNX model into a .nn file and a weights file"},
};

static void usage(FILE *out) {
  fputs("usage: nnc <command> [options] FILE.nn\n\ncommands:\n", out);
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
  fputs("\n'nnc <command> --help' describes a command's options.\n"
        "options for every command:\n"
        "  -D, --define NAME=VALUE   override a dim's default value\n"
        "      --model NAME          choose the model when the file has several\n",
        out);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("nnc %s\n", NNC_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "nnc: error: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
