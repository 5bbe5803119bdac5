/* rt_tensor.h — the runtime's in-memory tensor: a dtype, a shape and an owned, 64-byte
 * aligned buffer; named tensor sets (what a safetensors file holds); dtype conversion and the
 * float16/bfloat16 bit conversions. Linked into every generated binary, so it depends only on
 * nn_dtype.h and the C library. */
#ifndef RT_TENSOR_H
#define RT_TENSOR_H
#include <stddef.h>
#include <stdint.h>

#include "nn_dtype.h"

#define RT_MAX_RANK 8

typedef struct RtTensor {
  DType dt;
  int rank;
  int64_t shape[RT_MAX_RANK];
  void *data;    /* owned; 64-byte aligned; never NULL after a successful alloc */
  size_t nbytes; /* numel * dt_size(dt) */
} RtTensor;

/* Product of the dims (1 for rank 0). */
int64_t rt_tensor_numel(const RtTensor *t);

/* Fills *t and allocates a zeroed buffer. Returns -1 (leaving *t empty) when rank is outside
 * 0..RT_MAX_RANK, a dim is negative, the byte size overflows, or memory runs out. */
int rt_tensor_alloc(RtTensor *t, DType dt, int rank, const int64_t *shape);

/* Frees the buffer and zeroes *t; safe on a zeroed or already freed tensor. */
void rt_tensor_free(RtTensor *t);

/* Converts *t in place to dtype `to`. Floats convert to floats with round-to-nearest-even
 * (a finite value that would become infinite is an error); integers to integers with a
 * range check; floats to integers only when every value is integral and in range;
 * integers to floats always. On error *t is unchanged. */
int rt_tensor_convert(RtTensor *t, DType to, char *err, size_t errlen);

/* The same conversion on n elements from src (dtype `from`) to dst (dtype `to`), without
 * allocating; on error dst is partly written and err names the element (index in 0..n). */
int rt_convert_elems(const void *src, DType from, void *dst, DType to, size_t n, char *err,
                     size_t errlen);

/* Named tensors, in insertion order. Start from a zeroed struct: `RtTensorSet s = {0};`. */
typedef struct RtTensorSet {
  int n, cap;
  char **names;
  RtTensor *t;
  /* safetensors "__metadata__": a JSON object of string values, or NULL when absent;
   * meta_keys/meta_vals hold the same pairs, in file order */
  char *metadata_json;
  int nmeta;
  char **meta_keys, **meta_vals;
} RtTensorSet;

/* Moves *t into the set under `name` (the set owns the buffer afterwards and *t is zeroed).
 * Fails on a duplicate or empty name, leaving *t untouched. */
int rt_set_add(RtTensorSet *s, const char *name, RtTensor *t, char *err, size_t errlen);
/* The tensor named `name`, or NULL. */
RtTensor *rt_set_find(const RtTensorSet *s, const char *name);
/* A metadata value, or NULL. */
const char *rt_set_meta(const RtTensorSet *s, const char *key);
/* Replaces the metadata with the JSON object `json` (string values only; NULL clears it). */
int rt_set_set_metadata(RtTensorSet *s, const char *json, char *err, size_t errlen);
void rt_set_free(RtTensorSet *s);

/* IEEE binary16 and bfloat16 <-> float; float -> narrow rounds to nearest, ties to even,
 * overflows to infinity and keeps NaNs NaN (quiet). */
float rt_f16_to_f32(uint16_t h);
uint16_t rt_f32_to_f16(float f);
float rt_bf16_to_f32(uint16_t h);
uint16_t rt_f32_to_bf16(float f);

#endif
