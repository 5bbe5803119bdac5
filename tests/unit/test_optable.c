/* test_optable.c — every module's per-op table covers every op of ir/ops.def, and the op
 * table itself is consistent (unique names, lookups round-trip). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../ir/interp.h"
#include "../../ir/ir.h"
#include "../../ir/shape.h"
#include "../../passes/cost.h"
#include "../../passes/passes.h"

typedef struct Table {
  const char *module;
  bool (*defined)(OpKind);
} Table;

static const Table tables[] = {
    {"ir/shape.c (shape rules)", ir_shape_rule_defined},
    {"ir/interp.c (reference evaluation)", interp_op_defined},
    {"passes/autodiff.c (gradient rules)", pass_autodiff_op_defined},
    {"passes/cost.c (cost rules)", cost_rule_defined},
};

START_TEST(every_table_covers_every_op) {
  int missing = 0;
  for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
    for (int op = 0; op < OP_COUNT; op++)
      if (!tables[t].defined((OpKind)op)) {
        fprintf(stderr, "%s has no entry for op '%s'\n", tables[t].module, ir_op_name(op));
        missing++;
      }
  ck_assert_int_eq(missing, 0);
}
END_TEST

START_TEST(names_unique_and_found) {
  for (int a = 0; a < OP_COUNT; a++) {
    ck_assert_ptr_nonnull(ir_ops[a].name);
    ck_assert_int_eq(ir_op_find(ir_ops[a].name), a);
    for (int b = a + 1; b < OP_COUNT; b++) ck_assert_str_ne(ir_ops[a].name, ir_ops[b].name);
  }
  ck_assert_int_eq(ir_op_find("no_such_op"), -1);
}
END_TEST

START_TEST(arity_and_flags_consistent) {
  for (int op = 0; op < OP_COUNT; op++) {
    unsigned f = ir_ops[op].flags;
    if (f & OPF_LEAF) ck_assert_int_eq(ir_ops[op].arity, 0);
    else ck_assert_int_ne(ir_ops[op].arity, 0);
    if ((f & OPF_ELEMWISE) && !(f & OPF_BWD)) ck_assert(ir_ops[op].arity >= 1 && ir_ops[op].arity <= 3);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("optable");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, every_table_covers_every_op);
  tcase_add_test(tc, names_unique_and_found);
  tcase_add_test(tc, arity_and_flags_consistent);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
