/* rt_init.c — parameter initializers of generated programs, and descriptor helpers.
 *
 * The runtime cannot include ir/, yet `NAME init --seed S` must give exactly the weights
 * `nnc run --seed S` uses, so this file repeats the reference interpreter's mapping
 * (ir/interp.c, interp_init_param) operation for operation, in double precision:
 *   stream = FNV-1a 64 of the tensor name; u_i = Philox-4x32-10 word 0 of counter
 *   {lo(i), hi(i), lo(stream), hi(stream)} and key {lo(seed), hi(seed)}, (w >> 8) * 2^-24;
 *   normal: Box-Muller on u_2j, u_2j+1 with r = sqrt(-2 log(1 - u_2j)), cos for even i, sin
 *   for odd; xavier: uniform(-b, b), b = sqrt(6/(fan_in+fan_out)); he: normal with
 *   std sqrt(2/fan_in); fan_in = dim1*receptive, fan_out = dim0*receptive.
 * tests/unit/test_rt_program.c checks the two agree bit for bit. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rt_program.h"
#include "rt_tensor.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void rt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]}, k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = (uint32_t)p1;
    c[2] = n2;
    c[3] = (uint32_t)p0;
  }
  memcpy(out, c, sizeof c);
}

double rt_philox_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  uint32_t ctr[4] = {(uint32_t)i, (uint32_t)(i >> 32), (uint32_t)stream,
                     (uint32_t)(stream >> 32)};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
  rt_philox4x32_10(ctr, key, out);
  return (double)(out[0] >> 8) * 0x1p-24;
}

uint64_t rt_fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static double normal_at(uint64_t seed, uint64_t stream, int64_t i) {
  uint64_t j = (uint64_t)(i / 2) * 2;
  double u1 = rt_philox_uniform(seed, stream, j), u2 = rt_philox_uniform(seed, stream, j + 1);
  double r = sqrt(-2.0 * log(1.0 - u1)), t = 2.0 * M_PI * u2;
  return i % 2 ? r * sin(t) : r * cos(t);
}

int64_t rt_info_numel(const RtTensorInfo *t) {
  int64_t n = 1;
  for (int k = 0; k < t->rank; k++) n *= t->shape[k];
  return n;
}

/* values of elements [start, start+count) of t */
static void init_range(const RtTensorInfo *t, uint64_t seed, int64_t start, int64_t count,
                       double *out) {
  uint64_t stream = rt_fnv1a64(t->name ? t->name : "");
  int64_t receptive = 1;
  for (int k = 2; k < t->rank; k++) receptive *= t->shape[k];
  double fan_in = t->rank >= 2   ? (double)(t->shape[1] * receptive)
                  : t->rank == 1 ? (double)t->shape[0]
                                 : 1;
  double fan_out = t->rank >= 1 ? (double)(t->shape[0] * receptive) : 1;
  for (int64_t j = 0; j < count; j++) {
    int64_t i = start + j;
    double v;
    switch (t->init) {
    case RT_INIT_ONES: v = 1; break;
    case RT_INIT_CONST: v = t->init_a; break;
    case RT_INIT_NORMAL: v = t->init_a * normal_at(seed, stream, i); break;
    case RT_INIT_UNIFORM:
      v = t->init_a + (t->init_b - t->init_a) * rt_philox_uniform(seed, stream, (uint64_t)i);
      break;
    case RT_INIT_XAVIER: {
      double bound = sqrt(6.0 / (fan_in + fan_out));
      v = -bound + 2.0 * bound * rt_philox_uniform(seed, stream, (uint64_t)i);
      break;
    }
    case RT_INIT_HE: v = sqrt(2.0 / fan_in) * normal_at(seed, stream, i); break;
    default: v = 0; break; /* none, zeros */
    }
    out[j] = v;
  }
}

void rt_init_values(const RtTensorInfo *t, uint64_t seed, double *out) {
  init_range(t, seed, 0, rt_info_numel(t), out);
}

/* in bounded chunks, so no tensor-sized double buffer is needed */
void rt_init_tensor(const RtTensorInfo *t, uint64_t seed, void *dst) {
  int64_t numel = rt_info_numel(t);
  if (t->init == RT_INIT_NONE || t->init == RT_INIT_ZEROS) {
    memset(dst, 0, (size_t)t->nbytes);
    return;
  }
  enum { CH = 2048 };
  double buf[CH];
  for (int64_t s = 0; s < numel; s += CH) {
    int64_t m = numel - s < CH ? numel - s : CH;
    init_range(t, seed, s, m, buf);
    for (int64_t i = 0; i < m; i++) {
      double v = buf[i];
      switch (t->dtype) {
      case DT_F32: ((float *)dst)[s + i] = (float)v; break;
      case DT_F16: ((uint16_t *)dst)[s + i] = rt_f32_to_f16((float)v); break;
      case DT_BF16: ((uint16_t *)dst)[s + i] = rt_f32_to_bf16((float)v); break;
      case DT_I32: ((int32_t *)dst)[s + i] = (int32_t)v; break;
      case DT_I64: ((int64_t *)dst)[s + i] = (int64_t)v; break;
      case DT_F64: ((double *)dst)[s + i] = v; break;
      default: break;
      }
    }
  }
}

/* ---- descriptor helpers ------------------------------------------------------------------ */

void rt_info_type_str(const RtTensorInfo *t, char *buf, size_t n) {
  size_t k = 0;
  int w = snprintf(buf, n, "%s[", dt_name((DType)t->dtype));
  if (w > 0) k = (size_t)w;
  for (int i = 0; i < t->rank && k < n; i++) {
    w = snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (w > 0) k += (size_t)w;
  }
  if (k < n) snprintf(buf + k, n - k, "]");
}

int rt_desc_find(const RtModelDesc *d, const char *name) {
  for (int i = 0; i < d->ntensors; i++)
    if (d->tensors[i].name && !strcmp(d->tensors[i].name, name)) return i;
  return -1;
}

int rt_desc_count(const RtModelDesc *d, int kind) {
  int n = 0;
  for (int i = 0; i < d->ntensors; i++) n += d->tensors[i].kind == kind;
  return n;
}

int rt_desc_nth(const RtModelDesc *d, int kind, int k) {
  for (int i = 0; i < d->ntensors; i++)
    if (d->tensors[i].kind == kind && k-- == 0) return i;
  return -1;
}

int rt_info_batched(const RtModelDesc *d, const RtTensorInfo *t) {
  return d->batch > 0 && t->rank >= 1 && t->shape[0] == d->batch;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void rt_shuffle(int64_t *perm, int64_t n, uint64_t *rng) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(splitmix64(rng) % (uint64_t)(i + 1));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}
