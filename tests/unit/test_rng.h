/* test_rng.h — the tests' reproducible random numbers: xorshift64 on a caller-held state
 * (each test file seeds its own), integers in [lo, hi] and floats in [-1, 1). */
#ifndef NNC_TEST_RNG_H
#define NNC_TEST_RNG_H
#include <stdint.h>

typedef struct TestRng {
    uint64_t s; /* nonzero */
} TestRng;

static inline uint64_t test_rng_next(TestRng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}
static inline int64_t test_rng_int(TestRng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)(test_rng_next(r) % (uint64_t)(hi - lo + 1));
}
static inline float test_rng_float(TestRng *r) {
    return (float)((double)(test_rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
#endif
