/* fuzz_npy.c — libFuzzer target: any byte string through the .npy parser must end in a tensor
 * whose size agrees with its shape and dtype, or in an error message, never in a crash, a
 * sanitizer report or a hang; an accepted tensor also goes through every dtype conversion the
 * programs apply to inputs (f32 data, i32 labels). */
#include <stdint.h>
#include <string.h>

#include "rt_io.h"
#include "rt_tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  RtTensor t = {0};
  char err[512];
  if (rt_npy_parse(data, size, "fuzz.npy", &t, err, sizeof err)) {
    if (!err[0]) __builtin_trap(); /* a failure must say why */
    return 0;
  }
  if (t.nbytes != (size_t)rt_tensor_numel(&t) * dt_size(t.dt)) __builtin_trap();
  DType to = t.dt == DT_I32 || t.dt == DT_I64 ? DT_F32 : DT_I32;
  rt_tensor_convert(&t, DT_F32, err, sizeof err);
  rt_tensor_convert(&t, to, err, sizeof err);
  rt_tensor_free(&t);
  return 0;
}
