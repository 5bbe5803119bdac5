/* cmd_import.c — `nnc import`: an ONNX model to a .nn file and a safetensors weights file
 * (frontend/onnx/). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../frontend/onnx/onnx_import.h"
#include "driver.h"

static void usage(FILE *out) {
  fputs(
      "usage: nnc import MODEL.onnx -o MODEL.nn [--weights MODEL.safetensors] [--name NAME]\n"
      "                  [-D NAME=VALUE]... [--no-blocks]\n"
      "Translates an ONNX model into a .nn file: one statement per layer, names from the\n"
      "ONNX graph, comments with the source op. Initializers are written to the weights\n"
      "file under the .nn parameter names (default: MODEL.safetensors beside MODEL.nn).\n"
      "  -o FILE          the .nn file to write\n"
      "  --weights FILE   the safetensors file to write\n"
      "  --name NAME      the model's name (default: from the ONNX file name)\n"
      "  -D NAME=VALUE    default of the symbolic dim NAME (ONNX dim_param; default 1)\n"
      "  --no-blocks      write repeated structures out instead of as blocks\n"
      "An operator or attribute without an nnc equivalent is an error naming the node;\n"
      "docs/import.md lists the mapping.\n",
      out);
}

/* -D NAME=VALUE: the default of a symbolic dim */
static int parse_define(OnnxImportOptions *o, const char *arg, char names[][128]) {
  const char *eq = strchr(arg, '=');
  char *end = NULL;
  long long v = eq ? strtoll(eq + 1, &end, 10) : 0;
  if (!eq || eq == arg || eq - arg >= 128 || !end || *end || end == eq + 1 || v < 1 ||
      v > 2147483647) {
    fprintf(stderr, "nnc import: error: -D expects NAME=VALUE with a positive value, got '%s'\n",
            arg);
    return -1;
  }
  if (o->ndims == (int)(sizeof o->dim_names / sizeof *o->dim_names)) {
    fprintf(stderr, "nnc import: error: too many -D options\n");
    return -1;
  }
  snprintf(names[o->ndims], 128, "%.*s", (int)(eq - arg), arg);
  o->dim_names[o->ndims] = names[o->ndims];
  o->dim_values[o->ndims++] = v;
  return 0;
}

/* MODEL.nn -> MODEL.safetensors */
static const char *default_weights(const char *nn, char *buf, size_t n) {
  size_t len = strlen(nn);
  if (len > 3 && !strcmp(nn + len - 3, ".nn")) len -= 3;
  if (len + sizeof ".safetensors" > n) return NULL;
  snprintf(buf, n, "%.*s.safetensors", (int)len, nn);
  return buf;
}

int cmd_import(int argc, char **argv) {
  static const struct option opts[] = {
      {"weights", required_argument, 0, 'w'}, {"name", required_argument, 0, 'n'},
      {"no-blocks", no_argument, 0, 'B'},     {"define", required_argument, 0, 'D'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  OnnxImportOptions o = {0};
  char wbuf[4096], dim_names[16][128];
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:D:h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return 0;
    }
    if (c == 'o')
      o.out_nn = optarg;
    else if (c == 'w')
      o.out_weights = optarg;
    else if (c == 'n')
      o.model_name = optarg;
    else if (c == 'B')
      o.no_blocks = 1;
    else if (c == 'D') {
      if (parse_define(&o, optarg, dim_names)) return 2;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (optind != argc - 1 || !o.out_nn) {
    usage(stderr);
    return 2;
  }
  o.model_path = argv[optind];
  if (!o.out_weights && !(o.out_weights = default_weights(o.out_nn, wbuf, sizeof wbuf))) {
    fprintf(stderr, "nnc import: error: output path too long\n");
    return 2;
  }
  Diag *d = diag_new(stderr);
  int rc = onnx_import(&o, d);
  diag_finish(d);
  diag_free(d);
  return rc ? 1 : 0;
}
