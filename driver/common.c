/* common.c — what every subcommand shares: -D/--model handling and compiling the input. */
#include <stdio.h>
#include <string.h>

#include "driver.h"

int drv_common_opt(DrvInput *in, int opt, const char *arg) {
  switch (opt) {
  case 'D':
    if (in->ndefines == (int)(sizeof in->defines / sizeof *in->defines)) {
      fprintf(stderr, "nnc: error: too many -D options\n");
      return -1;
    }
    in->defines[in->ndefines++] = arg;
    return 1;
  case 'M':
    in->model = arg;
    return 1;
  default:
    return 0;
  }
}

IrModule *drv_compile(const DrvInput *in, Diag *d, IrGraph **g) {
  FeOptions fo = {in->defines, in->ndefines};
  IrModule *m = fe_compile_file(in->path, &fo, d);
  if (!m) return NULL;
  if (in->model) {
    *g = ir_module_find(m, in->model);
    if (!*g) {
      diag_error_file(d, in->path, "no model named '%s' (the file defines %d model%s)",
                      in->model, m->ngraphs, m->ngraphs == 1 ? "" : "s");
      ir_module_free(m);
      return NULL;
    }
  } else if (m->ngraphs == 0) {
    diag_error_file(d, in->path, "the file defines no model");
    ir_module_free(m);
    return NULL;
  } else {
    *g = m->graphs[0];
  }
  return m;
}
