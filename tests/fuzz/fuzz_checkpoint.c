/* fuzz_checkpoint.c — libFuzzer target: any byte string loaded as a checkpoint of a small
 * model (tests/unit/tiny_model.h: weights, optimizer state, metadata naming model, dims and
 * step) must load or fail with a message, and a failed load must leave the context's
 * parameters exactly as they were. Never a crash, a sanitizer report or a hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_program.h"
#include "../unit/tiny_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64], err[512];
  snprintf(path, sizeof path, "/tmp/nnc_fuzz_ckpt.%d.safetensors", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  size_t w = size ? fwrite(data, 1, size, f) : 0;
  if (fclose(f) || w != size) return 0;
  RtCtx *c = rt_ctx_create(&nnc_model_tiny, 1, err, sizeof err);
  if (!c) __builtin_trap();
  rt_ctx_init(c, 1);
  float before[6];
  memcpy(before, rt_ctx_data(c, 0), sizeof before);
  int unknown = 0;
  if (rt_ctx_load(c, path, &unknown)) {
    if (!rt_ctx_error(c)[0]) __builtin_trap();
    if (memcmp(before, rt_ctx_data(c, 0), sizeof before)) __builtin_trap(); /* left as it was */
  }
  rt_ctx_destroy(c);
  remove(path);
  return 0;
}
