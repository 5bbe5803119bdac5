/* nn_dtype.h — element types shared by the compiler and the runtime.
 * The runtime links into generated binaries, so this header depends on nothing. */
#ifndef NN_DTYPE_H
#define NN_DTYPE_H
#include <stddef.h>

typedef enum {
  DT_F32,
  DT_F16,
  DT_BF16,
  DT_I32,
  DT_I64, /* only in files (.npy labels written by numpy); converted on load */
  DT_F64, /* likewise */
  DT_COUNT
} DType;

/* bytes per element */
static inline size_t dt_size(DType t) {
  static const size_t sz[DT_COUNT] = {4, 2, 2, 4, 8, 8};
  return (unsigned)t < DT_COUNT ? sz[t] : 0;
}
static inline const char *dt_name(DType t) {
  static const char *nm[DT_COUNT] = {"f32", "f16", "bf16", "i32", "i64", "f64"};
  return (unsigned)t < DT_COUNT ? nm[t] : "?";
}
#endif
