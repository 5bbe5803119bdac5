/* shape.h — queries on the shape/dtype rule table of ir/shape.c.
 *
 * ir_infer() itself is declared in ir.h; it returns 0 on success and -1 on error (ShapeErr
 * filled). The rules are documented op by op in docs/ops.md.
 */
#ifndef NN_SHAPE_H
#define NN_SHAPE_H
#include <stdbool.h>

#include "ir.h"

/* true when ir/shape.c has a rule for op (tests/unit/test_optable.c checks every op) */
bool ir_shape_rule_defined(OpKind op);

/* true for the dtypes that float ops accept: f32, f16, bf16 */
bool ir_dtype_is_float(DType dt);
#endif
