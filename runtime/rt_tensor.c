/* rt_tensor.c — tensor allocation, named tensor sets, dtype conversion and the
 * float16/bfloat16 bit conversions used by the file readers and writers. */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_io.h"
#include "rt_tensor.h"

#define RT_ALIGN 64

int64_t rt_tensor_numel(const RtTensor *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->shape[i];
  return n;
}

int rt_tensor_alloc(RtTensor *t, DType dt, int rank, const int64_t *shape) {
  memset(t, 0, sizeof *t);
  if ((unsigned)dt >= DT_COUNT || rank < 0 || rank > RT_MAX_RANK) return -1;
  uint64_t bytes = dt_size(dt);
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 0) return -1;
    if (shape[i] != 0 && bytes > (uint64_t)SIZE_MAX / 2 / (uint64_t)shape[i]) return -1;
    bytes *= (uint64_t)shape[i];
  }
  /* round up so the tail of the last vector is addressable; never allocate 0 bytes */
  size_t alloc = (size_t)((bytes + RT_ALIGN - 1) / RT_ALIGN * RT_ALIGN);
  if (alloc == 0) alloc = RT_ALIGN;
  void *p = NULL;
  if (posix_memalign(&p, RT_ALIGN, alloc) != 0) return -1;
  memset(p, 0, alloc);
  t->dt = dt;
  t->rank = rank;
  for (int i = 0; i < rank; i++) t->shape[i] = shape[i];
  t->data = p;
  t->nbytes = (size_t)bytes;
  return 0;
}

void rt_tensor_free(RtTensor *t) {
  if (!t) return;
  free(t->data);
  memset(t, 0, sizeof *t);
}

/* --- float16 / bfloat16 ----------------------------------------------------------------- */

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

float rt_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0) { /* zero or subnormal: m * 2^-24, exact in float */
    float v = (float)m * 5.9604644775390625e-8f;
    return bits_f32(f32_bits(v) | sign);
  }
  if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
  return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t rt_f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x1ff); /* NaN */
  if (ax >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 rounds (to even) past 65504 */
  if (ax >= 0x38800000u) {                     /* normal half */
    uint32_t r = ax - 0x38000000u;             /* rebias exponent 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return sign | (uint16_t)(r >> 13);
  }
  /* subnormal half: value in units of 2^-24, rounded to nearest even */
  uint32_t e = ax >> 23;
  if (e < 102) return sign; /* below 2^-25: rounds to zero */
  uint32_t m = (ax & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126 - e; /* 14..24 */
  uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u))) q++;
  return sign | (uint16_t)q;
}

float rt_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t rt_f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
  x += 0x7fffu + ((x >> 16) & 1u); /* carries into the exponent give inf, as they should */
  return (uint16_t)(x >> 16);
}

/* --- dtype conversion ------------------------------------------------------------------- */

static int dt_is_float(DType t) {
  return t == DT_F32 || t == DT_F16 || t == DT_BF16 || t == DT_F64;
}

/* element i of p: a file's data need not be aligned to its type, so memcpy, not a typed
 * load */
static double load_f(const void *p, DType t, size_t i) {
  union { float f; uint16_t h; double d; int32_t i32; int64_t i64; } u;
  const char *b = (const char *)p;
  switch (t) {
  case DT_F32: memcpy(&u.f, b + i * 4, 4); return u.f;
  case DT_F16: memcpy(&u.h, b + i * 2, 2); return rt_f16_to_f32(u.h);
  case DT_BF16: memcpy(&u.h, b + i * 2, 2); return rt_bf16_to_f32(u.h);
  case DT_F64: memcpy(&u.d, b + i * 8, 8); return u.d;
  case DT_I32: memcpy(&u.i32, b + i * 4, 4); return u.i32;
  case DT_I64: memcpy(&u.i64, b + i * 8, 8); return (double)u.i64;
  default: return 0;
  }
}

static int64_t load_i(const void *p, DType t, size_t i) {
  const char *b = (const char *)p;
  if (t == DT_I32) {
    int32_t v;
    memcpy(&v, b + i * 4, 4);
    return v;
  }
  int64_t v;
  memcpy(&v, b + i * 8, 8);
  return v;
}

/* float target; returns -1 when a finite value overflows the target */
static int store_f(void *p, DType t, size_t i, double v) {
  float f = (float)v;
  switch (t) {
  case DT_F64: ((double *)p)[i] = v; return 0;
  case DT_F32: ((float *)p)[i] = f; return isinf(f) && isfinite(v) ? -1 : 0;
  case DT_F16: {
    /* through float: the double rounding can differ from a direct f64->f16 rounding only
     * for values within 2^-29 relative of a half-way point */
    uint16_t h = rt_f32_to_f16(f);
    ((uint16_t *)p)[i] = h;
    return (h & 0x7fff) == 0x7c00 && isfinite(v) ? -1 : 0;
  }
  case DT_BF16: {
    uint16_t h = rt_f32_to_bf16(f);
    ((uint16_t *)p)[i] = h;
    return (h & 0x7fff) == 0x7f80 && isfinite(v) ? -1 : 0;
  }
  default: return -1;
  }
}

static int convert_elem(const void *src, DType from, void *dst, DType to, size_t i,
                        char *err, size_t errlen) {
  if (dt_is_float(to)) {
    double v = load_f(src, from, i);
    if (store_f(dst, to, i, v) != 0) {
      rt_errf(err, errlen, "element %zu (value %g) is out of the range of %s", i, v,
              dt_name(to));
      return -1;
    }
    return 0;
  }
  int64_t lo = to == DT_I32 ? INT32_MIN : INT64_MIN, hi = to == DT_I32 ? INT32_MAX : INT64_MAX;
  int64_t iv;
  if (dt_is_float(from)) {
    double v = load_f(src, from, i);
    /* 2^63 is exactly representable; anything >= it does not fit int64 */
    if (!isfinite(v) || v != floor(v) || v < -9223372036854775808.0 ||
        v >= 9223372036854775808.0 || (int64_t)v < lo || (int64_t)v > hi) {
      rt_errf(err, errlen,
              "element %zu (value %g) is not an integer in the range of %s; "
              "round it before converting %s to %s",
              i, v, dt_name(to), dt_name(from), dt_name(to));
      return -1;
    }
    iv = (int64_t)v;
  } else {
    iv = load_i(src, from, i);
    if (iv < lo || iv > hi) {
      rt_errf(err, errlen, "element %zu (value %lld) does not fit in %s", i, (long long)iv,
              dt_name(to));
      return -1;
    }
  }
  if (to == DT_I32)
    ((int32_t *)dst)[i] = (int32_t)iv;
  else
    ((int64_t *)dst)[i] = iv;
  return 0;
}

int rt_convert_elems(const void *src, DType from, void *dst, DType to, size_t n, char *err,
                     size_t errlen) {
  if ((unsigned)to >= DT_COUNT || (unsigned)from >= DT_COUNT) {
    rt_errf(err, errlen, "invalid dtype for conversion");
    return -1;
  }
  if (from == to) {
    memcpy(dst, src, n * dt_size(to));
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    if (convert_elem(src, from, dst, to, i, err, errlen) != 0) return -1;
  return 0;
}

int rt_tensor_convert(RtTensor *t, DType to, char *err, size_t errlen) {
  if ((unsigned)to >= DT_COUNT || (unsigned)t->dt >= DT_COUNT) {
    rt_errf(err, errlen, "invalid dtype for conversion");
    return -1;
  }
  if (t->dt == to) return 0;
  RtTensor out;
  if (rt_tensor_alloc(&out, to, t->rank, t->shape) != 0) {
    rt_errf(err, errlen, "out of memory converting %s to %s", dt_name(t->dt), dt_name(to));
    return -1;
  }
  size_t n = (size_t)rt_tensor_numel(t);
  for (size_t i = 0; i < n; i++) {
    if (convert_elem(t->data, t->dt, out.data, to, i, err, errlen) != 0) {
      rt_tensor_free(&out);
      return -1;
    }
  }
  rt_tensor_free(t);
  *t = out;
  return 0;
}

/* --- tensor sets ------------------------------------------------------------------------ */

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

RtTensor *rt_set_find(const RtTensorSet *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0) return &s->t[i];
  return NULL;
}

int rt_set_add(RtTensorSet *s, const char *name, RtTensor *t, char *err, size_t errlen) {
  if (!name || !*name) {
    rt_errf(err, errlen, "tensor name is empty");
    return -1;
  }
  if (rt_set_find(s, name)) {
    rt_errf(err, errlen, "tensor '%s' is already in the set; names must be unique", name);
    return -1;
  }
  if (s->n == s->cap) {
    int nc = s->cap ? s->cap * 2 : 8;
    char **nn = realloc(s->names, (size_t)nc * sizeof *nn);
    if (nn) s->names = nn;
    RtTensor *nt = nn ? realloc(s->t, (size_t)nc * sizeof *nt) : NULL;
    if (!nt) {
      rt_errf(err, errlen, "out of memory adding tensor '%s'", name);
      return -1;
    }
    s->t = nt;
    s->cap = nc;
  }
  char *d = dupstr(name);
  if (!d) {
    rt_errf(err, errlen, "out of memory adding tensor '%s'", name);
    return -1;
  }
  s->names[s->n] = d;
  s->t[s->n] = *t;
  s->n++;
  memset(t, 0, sizeof *t);
  return 0;
}

const char *rt_set_meta(const RtTensorSet *s, const char *key) {
  for (int i = 0; i < s->nmeta; i++)
    if (strcmp(s->meta_keys[i], key) == 0) return s->meta_vals[i];
  return NULL;
}

static void clear_meta(RtTensorSet *s) {
  for (int i = 0; i < s->nmeta; i++) {
    free(s->meta_keys[i]);
    free(s->meta_vals[i]);
  }
  free(s->meta_keys);
  free(s->meta_vals);
  free(s->metadata_json);
  s->meta_keys = s->meta_vals = NULL;
  s->metadata_json = NULL;
  s->nmeta = 0;
}

/* Checks that obj is an object of unique string values and copies it into s. */
static int meta_from_cjson(RtTensorSet *s, const cJSON *obj, char *err, size_t errlen) {
  if (!cJSON_IsObject(obj)) {
    rt_errf(err, errlen, "\"__metadata__\" must be a JSON object of strings");
    return -1;
  }
  int n = cJSON_GetArraySize(obj);
  for (const cJSON *a = obj->child; a; a = a->next) {
    if (!cJSON_IsString(a)) {
      rt_errf(err, errlen, "\"__metadata__\" value for '%s' is not a string; metadata "
              "values must be strings", a->string);
      return -1;
    }
    for (const cJSON *b = a->next; b; b = b->next)
      if (strcmp(a->string, b->string) == 0) {
        rt_errf(err, errlen, "\"__metadata__\" key '%s' appears twice", a->string);
        return -1;
      }
  }
  clear_meta(s);
  if (n == 0) return 0;
  s->meta_keys = calloc((size_t)n, sizeof(char *));
  s->meta_vals = calloc((size_t)n, sizeof(char *));
  s->metadata_json = cJSON_PrintUnformatted(obj);
  int ok = s->meta_keys && s->meta_vals && s->metadata_json;
  for (const cJSON *a = obj->child; a && ok; a = a->next) {
    s->meta_keys[s->nmeta] = dupstr(a->string);
    s->meta_vals[s->nmeta] = dupstr(a->valuestring);
    s->nmeta++;
    ok = s->meta_keys[s->nmeta - 1] && s->meta_vals[s->nmeta - 1];
  }
  if (!ok) {
    clear_meta(s);
    rt_errf(err, errlen, "out of memory copying metadata");
    return -1;
  }
  return 0;
}

/* used by safetensors.c, which has the parsed header at hand */
int rt_set_meta_from_cjson(RtTensorSet *s, const void *cjson_obj, char *err, size_t errlen);
int rt_set_meta_from_cjson(RtTensorSet *s, const void *cjson_obj, char *err, size_t errlen) {
  return meta_from_cjson(s, cjson_obj, err, errlen);
}

int rt_set_set_metadata(RtTensorSet *s, const char *json, char *err, size_t errlen) {
  if (!json) {
    clear_meta(s);
    return 0;
  }
  cJSON *obj = cJSON_Parse(json);
  if (!obj) {
    rt_errf(err, errlen, "metadata is not valid JSON: expected an object like "
            "{\"format\": \"pt\"}");
    return -1;
  }
  int r = meta_from_cjson(s, obj, err, errlen);
  cJSON_Delete(obj);
  return r;
}

void rt_set_free(RtTensorSet *s) {
  if (!s) return;
  for (int i = 0; i < s->n; i++) {
    free(s->names[i]);
    rt_tensor_free(&s->t[i]);
  }
  free(s->names);
  free(s->t);
  clear_meta(s);
  memset(s, 0, sizeof *s);
}
