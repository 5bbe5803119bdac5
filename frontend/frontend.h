/* frontend.h — what the driver sees of the frontend: .nn text in, IR module out.
 *
 * Diagnostics go to the given Diag. The file's text is registered with diag_add_source and
 * kept alive (inside the returned module) so later passes can still show source lines.
 */
#ifndef NN_FRONTEND_H
#define NN_FRONTEND_H
#include <stddef.h>
#include <stdio.h>

#include "diag.h"
#include "ir.h"

typedef struct FeOptions {
  const char *const *defines;
  int ndefines; /* "N=256" strings from -D */
  /* comma-separated dims that stay symbolic, e.g. "N"; the others become constants at their
   * values (for short cost formulas). NULL = every dim stays symbolic. */
  const char *symbolic;
} FeOptions;

/* the largest .nn source accepted (the examples are a few KiB); a longer input, /dev/zero
 * included, is an error rather than a read that grows without bound */
#define FE_MAX_SOURCE_BYTES (16 << 20)

/* parse + sema a file into IR; NULL if any error was reported (diagnostics go to d) */
IrModule *fe_compile_file(const char *path, const FeOptions *o, Diag *d);
IrModule *fe_compile_string(const char *name, const char *text, size_t len, const FeOptions *o,
                            Diag *d);
/* parse only and dump the AST; returns number of errors */
int fe_dump_ast(FILE *out, const char *path, Diag *d);
#endif
