/* cost_compare.h — `nnc cost --compare A.nn B.nn ...`: parameters, FLOPs, bytes and estimated
 * time of several models side by side (the three are different things: fewer parameters or
 * FLOPs do not make a model proportionally faster). */
#ifndef NN_COST_COMPARE_H
#define NN_COST_COMPARE_H
#include <stdbool.h>

#include "../passes/hw.h"
#include "driver.h"

#define COMPARE_MAX_MODELS 32 /* files one --compare takes */

typedef struct CompareOpts {
  const DrvInput *in; /* -D, --symbolic, --model: applied to every file (path ignored) */
  const char *const *files;
  int nfiles;
  bool train, json;
  bool measure;       /* build each model for this machine and run its bench */
  const HwTarget *hw;
  int threads; /* of the compiled step's estimate (0: all the target's cores) */
} CompareOpts;

/* prints the table (or JSON); 0 ok, 1 when a file does not compile (diagnostics printed) */
int cost_compare(const CompareOpts *o);
#endif
