/* test_env.h — how thoroughly to test. The sanitizer run of the suite (.ci/test.sh) sets
 * NNC_TEST_QUICK=1: the instrumented build then runs every test case, but the few that repeat
 * a check at a larger size (whole deep models through the interpreter, GEMMs up to 300^3
 * against a naive reference) run at their smaller sizes only. The plain build runs them all. */
#ifndef NNC_TEST_ENV_H
#define NNC_TEST_ENV_H
#include <stdlib.h>

static inline int nnc_test_quick(void) {
  const char *q = getenv("NNC_TEST_QUICK");
  return q && q[0] == '1';
}
#endif
