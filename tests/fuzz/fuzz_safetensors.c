/* fuzz_safetensors.c — libFuzzer target: any byte string through the safetensors parser must
 * end in a set of tensors that lie inside the data and agree with their shapes, or in an
 * error message; never a crash, a sanitizer report or a hang. Metadata lookups are exercised
 * too, as checkpoint loading does them. */
#include <stdint.h>
#include <string.h>

#include "rt_io.h"
#include "rt_tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  RtTensorSet s = {0};
  char err[512];
  if (rt_st_parse(data, size, "fuzz.safetensors", &s, err, sizeof err)) {
    if (!err[0]) __builtin_trap();
    rt_set_free(&s);
    return 0;
  }
  for (int i = 0; i < s.n; i++) {
    if (!s.names[i] || !s.names[i][0]) __builtin_trap();
    if (s.t[i].nbytes != (size_t)rt_tensor_numel(&s.t[i]) * dt_size(s.t[i].dt)) __builtin_trap();
    if (rt_set_find(&s, s.names[i]) == NULL) __builtin_trap();
  }
  for (int i = 0; i < s.nmeta; i++)
    if (!rt_set_meta(&s, s.meta_keys[i])) __builtin_trap();
  rt_set_meta(&s, "nnc.step");
  rt_set_free(&s);
  return 0;
}
