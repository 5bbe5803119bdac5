/* driver.h — the `nnc` command: one file per subcommand (cmd_*.c), dispatched by main.c.
 * Each subcommand parses its own options with getopt_long (argv[0] is the subcommand name)
 * and returns the process exit status: 0 success, 1 user error (diagnostics printed),
 * 2 usage error. */
#ifndef NN_DRIVER_H
#define NN_DRIVER_H
#include "../frontend/frontend.h"
#include "../ir/ir.h"

int cmd_check(int argc, char **argv);
int cmd_emit(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_cost(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_import(int argc, char **argv);

/* shared helpers (driver/common.c) */
typedef struct DrvInput {
  const char *path;          /* the .nn file */
  const char *defines[64];   /* -D N=V */
  int ndefines;
  const char *model;         /* --model NAME, or NULL = the only/first model */
  const char *symbolic;      /* --symbolic N,M: only these dims stay symbolic (cost, plan) */
  char bound[DIM_MAX_SYMS][96]; /* storage for defines added by drv_recompile_dims */
} DrvInput;
/* handles -D/--define, --model and --symbolic (option code 'Y'); returns 1 if the option was
 * consumed */
int drv_common_opt(DrvInput *in, int opt, const char *arg);
/* compile in->path; prints diagnostics; NULL on error. *g gets the selected model graph. */
IrModule *drv_compile(const DrvInput *in, Diag *d, IrGraph **g);
/* the exit status after drv_compile failed: 2 when a -D is malformed or names no dim of the
 * file (a usage error, docs/cli.md), else 1 */
int drv_compile_status(const DrvInput *in);
/* the exit status after hw_resolve failed: 1 for a target file that exists but is wrong, 2
 * for a name that is neither a known target nor a file (usage) */
int drv_target_status(const char *spec);
/* After dims were bound from data (the sizes in .npy files), compile again with those values
 * as -D overrides when any differs from its compiled value: the frontend may have folded a
 * dim's value into a constant (`x / sqrt(K)`), so changing it in place would give silently
 * wrong results. Frees *m and returns the new module (NULL on error); *g is updated, and
 * callers must look nodes up again by name. Returns m itself when nothing changed. */
IrModule *drv_recompile_dims(DrvInput *in, IrModule *m, IrGraph **g, Diag *d);
/* report formatting: "52.1M", "1.55 MiB", "1,234,567" (into buf, which is returned) */
const char *drv_si(double v, char *buf, size_t n);
const char *drv_bytes_h(double v, char *buf, size_t n);
const char *drv_commas(double v, char *buf, size_t n);
/* a new private directory "$TMPDIR/STEM-XXXXXX" (/tmp when TMPDIR is unset or empty) into
 * dir; on failure prints "nnc CMD: error: ..." and returns 1 with dir[0] = 0 */
int drv_make_tmpdir(char *dir, size_t n, const char *cmd, const char *stem);
#endif
