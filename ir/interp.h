/* interp.h — the reference interpreter: evaluates any graph with plain loops in double
 * precision. It is the oracle every backend and the autodiff are tested against.
 *
 * Storage is double for every dtype (i32 values are stored exactly). With round_storage set,
 * each f32/f16/bf16 result is rounded to its dtype after it is computed, which is what
 * compiled code sees; accumulation inside an op is always in double.
 *
 * ASSIGN nodes (optimizer updates, running statistics) take effect after the whole graph has
 * been evaluated: every read in a step sees the values from before the step.
 */
#ifndef NN_INTERP_H
#define NN_INTERP_H
#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

typedef struct Interp Interp;

typedef struct InterpOptions {
  bool round_storage;
  uint64_t seed; /* mixed into dropout's counter-based RNG together with attr.seed */
  int64_t step;  /* dropout counter offset, so every training step draws a new mask */
  /* DT_BF16 or DT_F16: the operands of every matmul and of every convolution that is not
   * depthwise (forward, backward-data, backward-filter; grouped or not) are rounded to that
   * type (nearest even) before the double-precision product -- the arithmetic of a GPU build
   * at --precision bf16|f16, whose tensor cores round exactly those inputs; any other value:
   * no rounding */
  DType gemm_round;
} InterpOptions;

/* dims are taken from g->dims at their current values when the interpreter is created;
 * after changing a dim's value, create a new interpreter */
Interp *interp_new(const IrGraph *g, const InterpOptions *opt);
void interp_free(Interp *in);

/* the dropout counter offset for the next interp_run (a training loop calls it per step) */
void interp_set_step(Interp *in, int64_t step);

/* provide INPUT or PARAM values (copied). numel must match the node's type. */
int interp_set(Interp *in, int node, const double *data, int64_t numel);
int interp_set_f32(Interp *in, int node, const float *data, int64_t numel);
/* evaluate every node in order; missing INPUT/PARAM values are an error. On error returns -1
 * with a message naming the node and op in err. */
int interp_run(Interp *in, char *err, size_t errlen);
/* the value of any node after interp_run (PARAM nodes: the value after ASSIGNs committed) */
const double *interp_value(const Interp *in, int node, int64_t *numel);
/* shape at the current dims */
int interp_shape(const Interp *in, int node, int64_t *shape); /* returns rank */

/* parameter initialization from the node's initializer (PARAM attr.init), deterministic in
 * seed and the parameter's name, so results do not depend on declaration order elsewhere */
void interp_init_param(const IrGraph *g, int node, uint64_t seed, double *out);

/* which ops the interpreter knows (for the op-table completeness test) */
bool interp_op_defined(OpKind op);

/* counter-based RNG (Philox-4x32-10, runtime/rt_init.c): uniform in [0,1) for element i of a
 * stream */
double interp_philox_uniform(uint64_t seed, uint64_t stream, uint64_t i);
/* (the block function itself is rt_philox4x32_10 in runtime/rt_program.h) */
#endif
