/* fuzz_frontend.c — libFuzzer target: any byte string through fe_compile_string must end in
 * a module or in diagnostics, never in a crash, a sanitizer report or a hang. A few -D
 * overrides are taken from the first bytes so the define checks are exercised too. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const pool[] = {"N=3", "D=0", "N=x", "Q=2", "=1", "H=2147483647", "N"};
  const char *defs[2];
  int nd = 0;
  if (size > 0 && data[0] < 16) {
    if (data[0] & 8) defs[nd++] = pool[data[0] % 7];
    if (data[0] & 4) defs[nd++] = pool[(data[0] / 2) % 7];
    data++;
    size--;
  }
  FILE *sink = fopen("/dev/null", "w");
  Diag *d = diag_new(sink);
  FeOptions o = {.defines = defs, .ndefines = nd};
  IrModule *m = fe_compile_string("fuzz.nn", (const char *)data, size, &o, d);
  if (m) {
    for (int i = 0; i < m->ngraphs; i++) {
      ir_print(sink, m->graphs[i]);
      if (ir_verify(m->graphs[i], sink)) __builtin_trap(); /* sema built an invalid graph */
    }
    ir_module_free(m);
  }
  diag_free(d);
  fclose(sink);
  return 0;
}
