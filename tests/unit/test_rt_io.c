/* test_rt_io.c — tests for the runtime's tensor file I/O: .npy and safetensors round trips
 * for every dtype and ranks 0..4, compatibility with numpy in both directions (files written
 * by /usr/bin/python3 are read here, files written here are checked there), rejection of
 * truncated and corrupt files, the float16/bfloat16 conversions, dtype conversion, and the
 * atomic-write guarantees. All test files are generated into a fresh temporary directory. */
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_io.h"
#include "rt_tensor.h"

#define PY "/usr/bin/python3"

static char g_dir[256];
static char g_err[512];

static void setup(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/nnc_rtio_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
}
static void teardown(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
}

static const char *path_in(const char *name) {
  static char bufs[4][512];
  static int k;
  char *b = bufs[k++ & 3];
  snprintf(b, 512, "%s/%s", g_dir, name);
  return b;
}

/* The five shapes used everywhere: ranks 0..4. Python scripts below use the same list. */
static const int64_t g_shapes[5][4] = {{0}, {5}, {3, 4}, {2, 3, 5}, {2, 1, 3, 2}};

/* Value formulas shared with the Python scripts (kept in sync with PY_COMMON):
 * 'f' floats exact in f16 and bf16, 'i' int32, 'l' int64 beyond int32, 'u' uint8, 'b' bool. */
static double ref_value(char kind, int64_t i) {
  switch (kind) {
  case 'f': return (double)((i * 37) % 101 - 50) * 0.125;
  case 'i': return (double)((i * 7919) % 2001 - 1000);
  case 'l': {
    int64_t v = (i * 7919) % 2001 - 1000;
    return (double)(i % 5 == 0 ? v * 4000000000LL : v);
  }
  case 'u': return (double)((i * 37) % 256);
  case 'b': return i % 3 == 0 ? 1.0 : 0.0;
  default: return NAN;
  }
}

static char kind_of(DType dt) {
  return dt == DT_I32 ? 'i' : dt == DT_I64 ? 'l' : 'f';
}

static double get_elem(const RtTensor *t, size_t i) {
  switch (t->dt) {
  case DT_F32: return ((const float *)t->data)[i];
  case DT_F16: return rt_f16_to_f32(((const uint16_t *)t->data)[i]);
  case DT_BF16: return rt_bf16_to_f32(((const uint16_t *)t->data)[i]);
  case DT_F64: return ((const double *)t->data)[i];
  case DT_I32: return ((const int32_t *)t->data)[i];
  case DT_I64: return (double)((const int64_t *)t->data)[i];
  default: return NAN;
  }
}

static void fill_formula(RtTensor *t, char kind) {
  size_t n = (size_t)rt_tensor_numel(t);
  for (size_t i = 0; i < n; i++) {
    double v = ref_value(kind, (int64_t)i);
    switch (t->dt) {
    case DT_F32: ((float *)t->data)[i] = (float)v; break;
    case DT_F16: ((uint16_t *)t->data)[i] = rt_f32_to_f16((float)v); break;
    case DT_BF16: ((uint16_t *)t->data)[i] = rt_f32_to_bf16((float)v); break;
    case DT_F64: ((double *)t->data)[i] = v; break;
    case DT_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case DT_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    default: break;
    }
  }
}

/* Exact comparison: every formula value is representable in every dtype it is used with. */
static void check_formula(const RtTensor *t, char kind, const char *ctx) {
  size_t n = (size_t)rt_tensor_numel(t);
  for (size_t i = 0; i < n; i++) {
    double got = get_elem(t, i), want = ref_value(kind, (int64_t)i);
    ck_assert_msg(got == want, "%s: element %zu is %.17g, expected %.17g", ctx, i, got, want);
  }
}

static void check_shape(const RtTensor *t, int rank, const int64_t *shape, const char *ctx) {
  ck_assert_msg(t->rank == rank, "%s: rank %d, expected %d", ctx, t->rank, rank);
  for (int d = 0; d < rank; d++)
    ck_assert_msg(t->shape[d] == shape[d], "%s: dim %d is %lld, expected %lld", ctx, d,
                  (long long)t->shape[d], (long long)shape[d]);
}

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 16);
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

static void *read_bytes(const char *path, size_t *n) {
  void *b = rt_file_read_all(path, n, g_err, sizeof g_err);
  ck_assert_msg(b != NULL, "%s", g_err);
  return b;
}

/* Runs a Python script (text) with the test directory as argv[1]; returns its output and
 * fails the test unless it exits 0. */
static char *run_python(const char *script) {
  const char *sp = path_in("script.py"), *op = path_in("script.out");
  write_bytes(sp, script, strlen(script));
  char cmd[1200];
  snprintf(cmd, sizeof cmd, PY " '%s' '%s' > '%s' 2>&1", sp, g_dir, op);
  int rc = system(cmd);
  size_t n;
  char *out = read_bytes(op, &n);
  ck_assert_msg(rc == 0, PY " (with numpy) failed, status %d:\n%s", rc, out);
  return out;
}

#define PY_COMMON                                                                   \
  "import sys, os, json, struct\n"                                                  \
  "import numpy as np\n"                                                            \
  "d = sys.argv[1]\n"                                                               \
  "shapes = [(), (5,), (3, 4), (2, 3, 5), (2, 1, 3, 2)]\n"                          \
  "def fv(n):\n"                                                                    \
  "    i = np.arange(n, dtype=np.int64)\n"                                          \
  "    return ((i * 37) % 101 - 50) * 0.125\n"                                      \
  "def iv(n):\n"                                                                    \
  "    i = np.arange(n, dtype=np.int64)\n"                                          \
  "    return (i * 7919) % 2001 - 1000\n"                                           \
  "def lv(n):\n"                                                                    \
  "    i = np.arange(n, dtype=np.int64)\n"                                          \
  "    return np.where(i % 5 == 0, iv(n) * 4000000000, iv(n))\n"                     \
  "def numel(s):\n"                                                                 \
  "    return int(np.prod(s, dtype=np.int64))\n"                                    \
  "def bf16(a):\n"                                                                  \
  "    return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)\n"     \
  "def from_bf16(b):\n"                                                             \
  "    return (b.astype(np.uint32) << 16).view(np.float32)\n"

/* --- float16 / bfloat16 ----------------------------------------------------------------- */

/* Every half value decodes to sign * 2^(e-15) * (1 + m/1024) (or the subnormal/special
 * form) and encodes back to itself. */
START_TEST(test_f16_exhaustive) {
  for (uint32_t h = 0; h < 65536; h++) {
    int s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
    float f = rt_f16_to_f32((uint16_t)h);
    if (e == 31 && m) {
      ck_assert_msg(isnan(f), "0x%04x should decode to NaN", h);
      uint16_t back = rt_f32_to_f16(f);
      ck_assert_msg((back & 0x7c00) == 0x7c00 && (back & 0x3ff), "NaN 0x%04x re-encoded as 0x%04x",
                    h, back);
      continue;
    }
    double want = e == 31 ? INFINITY : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    if (s) want = -want;
    ck_assert_msg((double)f == want && !signbit(f) == !signbit(want),
                  "0x%04x decodes to %.9g, expected %.9g", h, f, want);
    ck_assert_msg(rt_f32_to_f16(f) == h, "0x%04x -> %.9g -> 0x%04x", h, f, rt_f32_to_f16(f));
  }
}
END_TEST

/* numpy's float32 -> float16 cast rounds to nearest even; compare bit for bit on random
 * values across the half range, exact midpoints, and specials. */
START_TEST(test_f16_rounding_matches_numpy) {
  char *out = run_python(PY_COMMON
      "rng = np.random.default_rng(7)\n"
      "bits = rng.integers(0, 2**32, 60000, dtype=np.uint64).astype(np.uint32)\n"
      "exp = rng.integers(95, 146, 60000).astype(np.uint32)\n"
      "bits = (bits & np.uint32(0x807fffff)) | (exp << np.uint32(23))\n"
      "x = bits.view(np.float32)\n"
      "h = rng.integers(0, 0x7bff, 20000).astype(np.uint16)\n"
      "lo = h.view(np.float16).astype(np.float64)\n"
      "hi = (h + np.uint16(1)).view(np.float16).astype(np.float64)\n"
      "mid = ((lo + hi) / 2).astype(np.float32)\n"
      "sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65519.99, 65520, 1e-8,\n"
      "               2.0**-25, 2.0**-25 * 1.0000001, 2.0**-24, 3 * 2.0**-25, 6.1e-5], np.float32)\n"
      "x = np.concatenate([x, mid, -mid, sp])\n"
      "np.save(d + '/x.npy', x)\n"
      "with np.errstate(over='ignore'):\n"
      "    np.save(d + '/y.npy', x.astype(np.float16))\n"
      "print('OK')\n");
  free(out);
  RtTensor x, y;
  ck_assert_msg(rt_npy_read(path_in("x.npy"), &x, g_err, sizeof g_err) == 0, "%s", g_err);
  ck_assert_msg(rt_npy_read(path_in("y.npy"), &y, g_err, sizeof g_err) == 0, "%s", g_err);
  ck_assert_int_eq(x.dt, DT_F32);
  ck_assert_int_eq(y.dt, DT_F16);
  int64_t n = rt_tensor_numel(&x);
  ck_assert_int_eq(n, rt_tensor_numel(&y));
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    float f = ((float *)x.data)[i];
    uint16_t got = rt_f32_to_f16(f), want = ((uint16_t *)y.data)[i];
    int ok = isnan(f) ? (got & 0x7c00) == 0x7c00 && (got & 0x3ff) : got == want;
    if (!ok && bad++ < 5)
      fprintf(stderr, "f16(%.9g) = 0x%04x, numpy 0x%04x\n", (double)f, got, want);
  }
  ck_assert_msg(bad == 0, "%d of %lld conversions differ from numpy", bad, (long long)n);
  rt_tensor_free(&x);
  rt_tensor_free(&y);
}
END_TEST

/* Independent bfloat16 reference: pick the nearer of the two neighbours by exact double
 * arithmetic, ties to the even one. */
static uint16_t bf16_ref(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
  double vlo = rt_bf16_to_f32(lo);
  double vhi = (hi & 0x7fff) == 0x7f80 ? copysign(ldexp(1, 128), f) : rt_bf16_to_f32(hi);
  double dlo = fabs((double)f - vlo), dhi = fabs((double)f - vhi);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

START_TEST(test_bf16_rounding) {
  for (int k = 0; k < 200000; k++) {
    uint32_t u = rnd() ^ (rnd() << 16);
    if (k % 4 == 0) u = (u & 0xffff0000u) | 0x8000u; /* exact midpoints */
    float f;
    memcpy(&f, &u, 4);
    if (isnan(f) || isinf(f)) continue;
    uint16_t got = rt_f32_to_bf16(f), want = bf16_ref(f);
    ck_assert_msg(got == want, "bf16(%a [0x%08x]) = 0x%04x, expected 0x%04x", (double)f, u,
                  got, want);
  }
  ck_assert_uint_eq(rt_f32_to_bf16(INFINITY), 0x7f80);
  ck_assert_uint_eq(rt_f32_to_bf16(-INFINITY), 0xff80);
  ck_assert(isnan(rt_bf16_to_f32(rt_f32_to_bf16(NAN))));
  ck_assert(isnan(rt_bf16_to_f32(rt_f32_to_bf16(-NAN))));
  uint32_t snan = 0x7f800001u; /* payload only in the low bits: must not become infinity */
  float fs;
  memcpy(&fs, &snan, 4);
  ck_assert(isnan(rt_bf16_to_f32(rt_f32_to_bf16(fs))));
  ck_assert_float_eq(rt_bf16_to_f32(rt_f32_to_bf16(1.0f)), 1.0f);
}
END_TEST

/* --- round trips ------------------------------------------------------------------------ */

static void fill_random(RtTensor *t) {
  unsigned char *b = t->data;
  for (size_t i = 0; i < t->nbytes; i++) b[i] = (unsigned char)rnd();
}

static void assert_same(const RtTensor *a, const RtTensor *b, const char *ctx) {
  ck_assert_msg(a->dt == b->dt, "%s: dtype %s, expected %s", ctx, dt_name(b->dt),
                dt_name(a->dt));
  check_shape(b, a->rank, a->shape, ctx);
  ck_assert_msg(a->nbytes == b->nbytes, "%s: %zu bytes, expected %zu", ctx, b->nbytes,
                a->nbytes);
  ck_assert_msg(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0,
                "%s: data differs", ctx);
}

START_TEST(test_npy_roundtrip) {
  const DType dts[] = {DT_F32, DT_F16, DT_F64, DT_I32, DT_I64};
  for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++)
    for (int r = 0; r <= 5; r++) {
      static const int64_t empty[2] = {0, 3};
      int rank = r < 5 ? r : 2;
      const int64_t *shape = r < 5 ? g_shapes[r] : empty;
      char ctx[64];
      snprintf(ctx, sizeof ctx, "%s rank %d%s", dt_name(dts[k]), rank, r == 5 ? " empty" : "");
      RtTensor a, b;
      ck_assert_int_eq(rt_tensor_alloc(&a, dts[k], rank, shape), 0);
      fill_random(&a);
      const char *p = path_in("rt.npy");
      ck_assert_msg(rt_npy_write(p, &a, g_err, sizeof g_err) == 0, "%s: %s", ctx, g_err);
      size_t len;
      unsigned char *raw = read_bytes(p, &len);
      ck_assert_msg(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0, "%s: not a 1.0 file", ctx);
      size_t hdr = 10 + (size_t)(raw[8] | raw[9] << 8);
      ck_assert_msg(hdr % 64 == 0 && raw[hdr - 1] == '\n', "%s: header ends at %zu", ctx, hdr);
      ck_assert_uint_eq(len, hdr + a.nbytes);
      free(raw);
      ck_assert_msg(rt_npy_read(p, &b, g_err, sizeof g_err) == 0, "%s: %s", ctx, g_err);
      assert_same(&a, &b, ctx);
      rt_tensor_free(&a);
      rt_tensor_free(&b);
    }
}
END_TEST

START_TEST(test_npy_bf16_refused) {
  RtTensor a;
  const char *p = path_in("b.npy");
  ck_assert_int_eq(rt_tensor_alloc(&a, DT_BF16, 1, g_shapes[1]), 0);
  ck_assert_int_eq(rt_npy_write(p, &a, g_err, sizeof g_err), -1);
  ck_assert_ptr_nonnull(strstr(g_err, "bf16"));
  ck_assert_ptr_nonnull(strstr(g_err, p));
  ck_assert_int_ne(access(p, F_OK), 0);
  rt_tensor_free(&a);
}
END_TEST

static const DType g_st_dts[] = {DT_F32, DT_F16, DT_BF16, DT_I32, DT_I64, DT_F64};
static const char *g_st_names[] = {"F32", "F16", "BF16", "I32", "I64", "F64"};

/* All six dtypes at ranks 0..4, named "<DT>.r<rank>", values by formula. */
static void make_full_set(RtTensorSet *s) {
  memset(s, 0, sizeof *s);
  for (int k = 5; k >= 0; k--) /* inserted out of name order on purpose */
    for (int r = 0; r < 5; r++) {
      RtTensor t;
      ck_assert_int_eq(rt_tensor_alloc(&t, g_st_dts[k], r, g_shapes[r]), 0);
      fill_formula(&t, kind_of(g_st_dts[k]));
      char nm[32];
      snprintf(nm, sizeof nm, "%s.r%d", g_st_names[k], r);
      ck_assert_msg(rt_set_add(s, nm, &t, g_err, sizeof g_err) == 0, "%s", g_err);
    }
}

/* Header layout: padded to 8, keys in name order after __metadata__, every tensor aligned
 * to its element size, ranges packed with no gaps. */
static void check_st_layout(const char *p) {
  size_t len;
  unsigned char *raw = read_bytes(p, &len);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= (uint64_t)raw[i] << (8 * i);
  ck_assert_uint_eq(n % 8, 0);
  ck_assert_uint_le(8 + n, len);
  char *txt = strndup((char *)raw + 8, n);
  cJSON *root = cJSON_Parse(txt);
  ck_assert_ptr_nonnull(root);
  const char *prev = "";
  uint64_t covered = 0;
  int idx = 0;
  for (cJSON *it = root->child; it; it = it->next, idx++) {
    if (strcmp(it->string, "__metadata__") == 0) {
      ck_assert_int_eq(idx, 0);
      continue;
    }
    ck_assert_msg(strcmp(prev, it->string) < 0, "keys out of order: %s, %s", prev, it->string);
    prev = it->string;
    cJSON *off = cJSON_GetObjectItem(it, "data_offsets");
    const char *dt = cJSON_GetObjectItem(it, "dtype")->valuestring;
    uint64_t b = (uint64_t)off->child->valuedouble, e = (uint64_t)off->child->next->valuedouble;
    size_t es = strcmp(dt, "F64") == 0 || strcmp(dt, "I64") == 0 ? 8
                : strcmp(dt, "F32") == 0 || strcmp(dt, "I32") == 0 ? 4 : 2;
    ck_assert_msg(b % es == 0, "%s at %llu is not aligned to %zu", it->string,
                  (unsigned long long)b, es);
    covered += e - b;
  }
  ck_assert_uint_eq(covered, len - 8 - n);
  cJSON_Delete(root);
  free(txt);
  free(raw);
}

START_TEST(test_st_roundtrip) {
  RtTensorSet s, r;
  make_full_set(&s);
  const char *meta = "{\"format\":\"pt\",\"note\":\"caf\xc3\xa9 \\\"quoted\\\"\"}";
  const char *p = path_in("rt.safetensors"), *p2 = path_in("rt2.safetensors");
  ck_assert_msg(rt_st_write(p, &s, meta, g_err, sizeof g_err) == 0, "%s", g_err);
  check_st_layout(p);
  ck_assert_msg(rt_st_read(p, &r, g_err, sizeof g_err) == 0, "%s", g_err);
  ck_assert_int_eq(r.n, s.n);
  for (int i = 0; i < s.n; i++) {
    RtTensor *t = rt_set_find(&r, s.names[i]);
    ck_assert_msg(t != NULL, "tensor %s missing after reading back", s.names[i]);
    assert_same(&s.t[i], t, s.names[i]);
  }
  ck_assert_str_eq(rt_set_meta(&r, "format"), "pt");
  ck_assert_str_eq(rt_set_meta(&r, "note"), "caf\xc3\xa9 \"quoted\"");
  ck_assert_ptr_null(rt_set_meta(&r, "missing"));
  /* deterministic: writing the read-back set (its own metadata) gives identical bytes */
  ck_assert_msg(rt_st_write(p2, &r, NULL, g_err, sizeof g_err) == 0, "%s", g_err);
  size_t l1, l2;
  void *b1 = read_bytes(p, &l1), *b2 = read_bytes(p2, &l2);
  ck_assert_uint_eq(l1, l2);
  ck_assert_msg(memcmp(b1, b2, l1) == 0, "rewritten file differs");
  free(b1);
  free(b2);
  /* "{}" drops the metadata */
  ck_assert_int_eq(rt_st_write(p2, &r, "{}", g_err, sizeof g_err), 0);
  rt_set_free(&r);
  ck_assert_int_eq(rt_st_read(p2, &r, g_err, sizeof g_err), 0);
  ck_assert_int_eq(r.nmeta, 0);
  ck_assert_ptr_null(r.metadata_json);
  rt_set_free(&r);
  rt_set_free(&s);
}
END_TEST

START_TEST(test_st_empty_set) {
  RtTensorSet s = {0}, r;
  const char *p = path_in("e.safetensors");
  ck_assert_msg(rt_st_write(p, &s, NULL, g_err, sizeof g_err) == 0, "%s", g_err);
  ck_assert_msg(rt_st_read(p, &r, g_err, sizeof g_err) == 0, "%s", g_err);
  ck_assert_int_eq(r.n, 0);
  rt_set_free(&r);
}
END_TEST

/* --- compatibility with numpy ----------------------------------------------------------- */

START_TEST(test_npy_from_numpy) {
  free(run_python(PY_COMMON
      "kinds = {'f4': (fv, np.float32), 'f8': (fv, np.float64), 'f2': (fv, np.float16),\n"
      "         'i4': (iv, np.int32), 'i8': (lv, np.int64)}\n"
      "for code, (f, t) in kinds.items():\n"
      "    for r, s in enumerate(shapes):\n"
      "        np.save('%s/%s_r%d.npy' % (d, code, r), f(numel(s)).astype(t).reshape(s))\n"
      "n = 24\n"
      "i = np.arange(n)\n"
      "np.save(d + '/u1.npy', ((i * 37) % 256).astype(np.uint8).reshape(2, 3, 4))\n"
      "np.save(d + '/b1.npy', (i % 3 == 0).reshape(4, 6))\n"
      "np.save(d + '/be.npy', fv(n).astype('>f4').reshape(6, 4))\n"
      "np.save(d + '/bei8.npy', lv(n).astype('>i8'))\n"
      "for v in [(2, 0), (3, 0)]:\n"
      "    with open('%s/v%d.npy' % (d, v[0]), 'wb') as fh:\n"
      "        np.lib.format.write_array(fh, fv(12).astype(np.float32).reshape(3, 4), version=v)\n"
      "np.save(d + '/fortran.npy', np.asfortranarray(fv(12).astype(np.float32).reshape(3, 4)))\n"
      "np.save(d + '/c8.npy', np.zeros(3, np.complex64))\n"
      "np.save(d + '/f8big.npy', np.array([1.0, 1e300]))\n"));
  const struct {
    const char *code;
    DType dt;
    char kind;
  } kinds[] = {{"f4", DT_F32, 'f'}, {"f8", DT_F64, 'f'}, {"f2", DT_F16, 'f'},
               {"i4", DT_I32, 'i'}, {"i8", DT_I64, 'l'}};
  for (size_t k = 0; k < 5; k++)
    for (int r = 0; r < 5; r++) {
      char nm[32];
      snprintf(nm, sizeof nm, "%s_r%d.npy", kinds[k].code, r);
      RtTensor t;
      ck_assert_msg(rt_npy_read(path_in(nm), &t, g_err, sizeof g_err) == 0, "%s", g_err);
      ck_assert_msg(t.dt == kinds[k].dt, "%s: dtype %s", nm, dt_name(t.dt));
      check_shape(&t, r, g_shapes[r], nm);
      check_formula(&t, kinds[k].kind, nm);
      rt_tensor_free(&t);
    }
  struct {
    const char *file;
    int rank;
    int64_t shape[3];
    DType dt;
    char kind;
  } more[] = {{"u1.npy", 3, {2, 3, 4}, DT_I32, 'u'}, {"b1.npy", 2, {4, 6}, DT_I32, 'b'},
              {"be.npy", 2, {6, 4}, DT_F32, 'f'},    {"bei8.npy", 1, {24}, DT_I64, 'l'},
              {"v2.npy", 2, {3, 4}, DT_F32, 'f'},    {"v3.npy", 2, {3, 4}, DT_F32, 'f'}};
  for (size_t k = 0; k < sizeof more / sizeof more[0]; k++) {
    RtTensor t;
    ck_assert_msg(rt_npy_read(path_in(more[k].file), &t, g_err, sizeof g_err) == 0, "%s",
                  g_err);
    ck_assert_int_eq(t.dt, more[k].dt);
    check_shape(&t, more[k].rank, more[k].shape, more[k].file);
    check_formula(&t, more[k].kind, more[k].file);
    rt_tensor_free(&t);
  }
  RtTensor t;
  ck_assert_int_eq(rt_npy_read(path_in("fortran.npy"), &t, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "Fortran") && strstr(g_err, "fortran.npy"), "%s", g_err);
  ck_assert_int_eq(rt_npy_read(path_in("c8.npy"), &t, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "'<c8' is not supported"), "%s", g_err);
  /* conversion on load: f8 -> f32 and i8 -> i32 where the values allow it */
  ck_assert_msg(rt_npy_read_as(path_in("f8_r3.npy"), DT_F32, &t, g_err, sizeof g_err) == 0, "%s",
                g_err);
  ck_assert_int_eq(t.dt, DT_F32);
  check_formula(&t, 'f', "f8 as f32");
  rt_tensor_free(&t);
  ck_assert_int_eq(rt_npy_read_as(path_in("i8_r2.npy"), DT_I32, &t, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "does not fit in i32") && strstr(g_err, "i8_r2.npy"), "%s", g_err);
  ck_assert_int_eq(rt_npy_read_as(path_in("f8big.npy"), DT_F32, &t, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "out of the range of f32"), "%s", g_err);
  ck_assert_msg(rt_npy_read_as(path_in("i4_r2.npy"), DT_I32, &t, g_err, sizeof g_err) == 0, "%s",
                g_err);
  rt_tensor_free(&t);
}
END_TEST

START_TEST(test_st_from_python) {
  free(run_python(PY_COMMON
      "def st_write(path, tensors, meta, pad):\n"
      "    hdr, blobs, off = {}, [], 0\n"
      "    if meta is not None:\n"
      "        hdr['__metadata__'] = meta\n"
      "    for name, dt, arr in tensors:\n"
      "        b = arr.tobytes()\n"
      "        hdr[name] = {'dtype': dt, 'shape': list(arr.shape), 'data_offsets': [off, off + len(b)]}\n"
      "        off += len(b)\n"
      "        blobs.append(b)\n"
      "    h = json.dumps(hdr).encode()\n"
      "    if pad:\n"
      "        h += b' ' * (-len(h) % 8)\n"
      "    with open(path, 'wb') as fh:\n"
      "        fh.write(struct.pack('<Q', len(h)) + h + b''.join(blobs))\n"
      "ts = []\n"
      "for r, s in reversed(list(enumerate(shapes))):\n"
      "    n = numel(s)\n"
      "    ts += [('F32.r%d' % r, 'F32', fv(n).astype(np.float32).reshape(s)),\n"
      "           ('F16.r%d' % r, 'F16', fv(n).astype(np.float16).reshape(s)),\n"
      "           ('BF16.r%d' % r, 'BF16', bf16(fv(n)).reshape(s)),\n"
      "           ('I32.r%d' % r, 'I32', iv(n).astype(np.int32).reshape(s)),\n"
      "           ('I64.r%d' % r, 'I64', lv(n).astype(np.int64).reshape(s)),\n"
      "           ('F64.r%d' % r, 'F64', fv(n).astype(np.float64).reshape(s))]\n"
      "st_write(d + '/py.safetensors', ts, {'format': 'pt', 'source': 'numpy'}, True)\n"
      "st_write(d + '/py_nopad.safetensors', ts[:7], None, False)\n"));
  const char *files[] = {"py.safetensors", "py_nopad.safetensors"};
  for (int f = 0; f < 2; f++) {
    RtTensorSet s;
    ck_assert_msg(rt_st_read(path_in(files[f]), &s, g_err, sizeof g_err) == 0, "%s", g_err);
    ck_assert_int_eq(s.n, f == 0 ? 30 : 7);
    for (int i = 0; i < s.n; i++) {
      const char *nm = s.names[i];
      int k = 0;
      while (k < 6 && strncmp(nm, g_st_names[k], strlen(g_st_names[k])) != 0) k++;
      ck_assert_int_lt(k, 6);
      int r = nm[strlen(nm) - 1] - '0';
      ck_assert_msg(s.t[i].dt == g_st_dts[k], "%s: dtype %s", nm, dt_name(s.t[i].dt));
      check_shape(&s.t[i], r, g_shapes[r], nm);
      check_formula(&s.t[i], kind_of(g_st_dts[k]), nm);
    }
    if (f == 0) {
      ck_assert_str_eq(rt_set_meta(&s, "source"), "numpy");
      ck_assert_ptr_nonnull(rt_set_find(&s, "BF16.r4"));
    } else {
      ck_assert_int_eq(s.nmeta, 0);
    }
    rt_set_free(&s);
  }
}
END_TEST

START_TEST(test_c_to_numpy) {
  const DType dts[] = {DT_F32, DT_F16, DT_F64, DT_I32, DT_I64};
  const char *codes[] = {"f4", "f2", "f8", "i4", "i8"};
  for (int k = 0; k < 5; k++)
    for (int r = 0; r < 5; r++) {
      RtTensor t;
      ck_assert_int_eq(rt_tensor_alloc(&t, dts[k], r, g_shapes[r]), 0);
      fill_formula(&t, kind_of(dts[k]));
      char nm[32];
      snprintf(nm, sizeof nm, "c_%s_r%d.npy", codes[k], r);
      ck_assert_msg(rt_npy_write(path_in(nm), &t, g_err, sizeof g_err) == 0, "%s", g_err);
      rt_tensor_free(&t);
    }
  RtTensorSet s;
  make_full_set(&s);
  ck_assert_msg(rt_st_write(path_in("c.safetensors"), &s, "{\"format\":\"pt\"}", g_err,
                            sizeof g_err) == 0, "%s", g_err);
  rt_set_free(&s);
  char *out = run_python(PY_COMMON
      "bad = []\n"
      "ref = {'f4': (fv, np.float32), 'f2': (fv, np.float16), 'f8': (fv, np.float64),\n"
      "       'i4': (iv, np.int32), 'i8': (lv, np.int64)}\n"
      "for code, (f, t) in ref.items():\n"
      "    for r, s in enumerate(shapes):\n"
      "        a = np.load('%s/c_%s_r%d.npy' % (d, code, r))\n"
      "        want = f(numel(s)).astype(t).reshape(s)\n"
      "        if a.dtype != t or a.shape != s or not np.array_equal(a, want):\n"
      "            bad.append('npy %s r%d' % (code, r))\n"
      "b = open(d + '/c.safetensors', 'rb').read()\n"
      "(n,) = struct.unpack('<Q', b[:8])\n"
      "hdr = json.loads(b[8:8 + n])\n"
      "data = b[8 + n:]\n"
      "if n % 8: bad.append('header length %d' % n)\n"
      "if hdr.pop('__metadata__', None) != {'format': 'pt'}: bad.append('metadata')\n"
      "if list(hdr) != sorted(hdr): bad.append('key order')\n"
      "if len(hdr) != 30: bad.append('count')\n"
      "np_t = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64, 'I32': np.int32,\n"
      "        'I64': np.int64, 'BF16': np.uint16}\n"
      "fn = {'I32': iv, 'I64': lv}\n"
      "spans = []\n"
      "for name, e in hdr.items():\n"
      "    b0, b1 = e['data_offsets']\n"
      "    spans.append((b0, b1))\n"
      "    a = np.frombuffer(data[b0:b1], np_t[e['dtype']])\n"
      "    if b0 % a.itemsize: bad.append('alignment ' + name)\n"
      "    if e['dtype'] == 'BF16': a = from_bf16(a)\n"
      "    r = int(name.split('.r')[1])\n"
      "    want = fn.get(e['dtype'], fv)(numel(shapes[r]))\n"
      "    if tuple(e['shape']) != shapes[r] or not np.array_equal(a.astype(np.float64), want.astype(np.float64)):\n"
      "        bad.append('st ' + name)\n"
      "spans.sort()\n"
      "pos = 0\n"
      "for b0, b1 in spans:\n"
      "    if b0 != pos: bad.append('gap or overlap at %d' % b0)\n"
      "    pos = b1\n"
      "if pos != len(data): bad.append('data section length')\n"
      "print('OK' if not bad else 'FAIL ' + ', '.join(bad))\n");
  ck_assert_msg(strncmp(out, "OK", 2) == 0, "numpy check: %s", out);
  free(out);
}
END_TEST

/* --- corrupt files ---------------------------------------------------------------------- */

/* Every proper prefix of a valid file must be rejected with a message. Each prefix lives in
 * its own exact-size allocation so an overread is caught under AddressSanitizer. */
static void check_all_prefixes(const void *full, size_t len, int is_st) {
  for (size_t k = 0; k < len; k++) {
    unsigned char *cut = malloc(k ? k : 1);
    memcpy(cut, full, k);
    g_err[0] = '\0';
    int r;
    if (is_st) {
      RtTensorSet s;
      r = rt_st_parse(cut, k, "cut.safetensors", &s, g_err, sizeof g_err);
      if (r == 0) rt_set_free(&s);
    } else {
      RtTensor t;
      r = rt_npy_parse(cut, k, "cut.npy", &t, g_err, sizeof g_err);
      if (r == 0) rt_tensor_free(&t);
    }
    ck_assert_msg(r == -1, "prefix of %zu / %zu bytes was accepted", k, len);
    ck_assert_msg(strncmp(g_err, is_st ? "cut.safetensors: " : "cut.npy: ", is_st ? 17 : 9) == 0,
                  "prefix %zu: message does not name the file: '%s'", k, g_err);
    free(cut);
  }
}

START_TEST(test_npy_truncated_everywhere) {
  RtTensor t;
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 2, g_shapes[2]), 0);
  fill_formula(&t, 'f');
  const char *p = path_in("small.npy");
  ck_assert_int_eq(rt_npy_write(p, &t, g_err, sizeof g_err), 0);
  size_t len;
  unsigned char *full = read_bytes(p, &len);
  ck_assert_uint_eq(len, 128 + 48); /* numpy's header for (3, 4) needs 70 bytes */
  check_all_prefixes(full, len, 0);
  /* the exact message for a cut inside the data */
  RtTensor u;
  ck_assert_int_eq(rt_npy_parse(full, len - 8, "x.npy", &u, g_err, sizeof g_err), -1);
  ck_assert_str_eq(g_err, "x.npy: truncated: header says 3*4 f4 values (48 bytes) but only 40 "
                          "bytes follow");
  /* and one byte too many */
  unsigned char *longer = malloc(len + 1);
  memcpy(longer, full, len);
  longer[len] = 0;
  ck_assert_int_eq(rt_npy_parse(longer, len + 1, "x.npy", &u, g_err, sizeof g_err), -1);
  ck_assert_ptr_nonnull(strstr(g_err, "1 unexpected bytes after the data"));
  free(longer);
  free(full);
  rt_tensor_free(&t);
}
END_TEST

START_TEST(test_st_truncated_everywhere) {
  RtTensorSet s = {0};
  for (int k = 0; k < 3; k++) {
    RtTensor t;
    ck_assert_int_eq(rt_tensor_alloc(&t, g_st_dts[k], k, g_shapes[k]), 0);
    fill_formula(&t, 'f');
    ck_assert_int_eq(rt_set_add(&s, g_st_names[k], &t, g_err, sizeof g_err), 0);
  }
  const char *p = path_in("small.safetensors");
  ck_assert_int_eq(rt_st_write(p, &s, "{\"a\":\"b\"}", g_err, sizeof g_err), 0);
  size_t len;
  unsigned char *full = read_bytes(p, &len);
  check_all_prefixes(full, len, 1);
  free(full);
  rt_set_free(&s);
}
END_TEST

/* A .npy file from a header text and a data length (magic and version given). */
static size_t make_npy(unsigned char *buf, const char *magic, int major, const char *hdr,
                       size_t datalen) {
  size_t h = strlen(hdr);
  memcpy(buf, magic, 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  buf[8] = (unsigned char)(h & 0xff);
  buf[9] = (unsigned char)(h >> 8);
  memcpy(buf + 10, hdr, h);
  memset(buf + 10 + h, 0, datalen);
  return 10 + h + datalen;
}

static void expect_npy_error(const char *magic, int major, const char *hdr, size_t datalen,
                             const char *want) {
  static unsigned char buf[4096];
  size_t n = make_npy(buf, magic, major, hdr, datalen);
  unsigned char *exact = malloc(n);
  memcpy(exact, buf, n);
  RtTensor t;
  int r = rt_npy_parse(exact, n, "bad.npy", &t, g_err, sizeof g_err);
  free(exact);
  if (r == 0) rt_tensor_free(&t);
  ck_assert_msg(r == -1, "header accepted: %s", hdr);
  ck_assert_msg(strstr(g_err, want) != NULL && strncmp(g_err, "bad.npy: ", 9) == 0,
                "header %s: message '%s' lacks '%s'", hdr, g_err, want);
}

START_TEST(test_npy_corrupt) {
  const char *M = "\x93NUMPY";
  const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  /* the well-formed header passes, so each failure below is due to its one change */
  static unsigned char buf[512];
  size_t n = make_npy(buf, M, 1, ok, 24);
  RtTensor t;
  ck_assert_msg(rt_npy_parse(buf, n, "ok.npy", &t, g_err, sizeof g_err) == 0, "%s", g_err);
  rt_tensor_free(&t);
  expect_npy_error("\x93NUMPZ", 1, ok, 24, "not a .npy file");
  expect_npy_error("PK\x03\x04zz", 1, ok, 24, "not a .npy file");
  expect_npy_error(M, 4, ok, 24, "version 4.0 is not supported");
  expect_npy_error(M, 1, ok, 20, "truncated");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24,
                   "Fortran");
  expect_npy_error(M, 1, "{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", 32,
                   "'<c16' is not supported");
  expect_npy_error(M, 1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2,), }", 8,
                   "not supported");
  expect_npy_error(M, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                   8, "structured");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, }", 4, "missing");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", 4,
                   "unexpected key 'x'");
  expect_npy_error(M, 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
                   4, "appears twice");
  expect_npy_error(M, 1, "{'descr': '<f4, 'fortran_order': False, 'shape': ()}", 4,
                   "expected ',' or '}'");
  expect_npy_error(M, 1, "{'descr' '<f4', 'fortran_order': False, 'shape': ()}", 4,
                   "expected ':'");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4,
                   "negative");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, }", 24,
                   "tuple of non-negative");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': 6, }", 24, "tuple");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,), }", 24,
                   "True or False");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), } x", 24,
                   "after the closing");
  expect_npy_error(M, 1, "", 0, "expected a dict");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", 24,
                   "expected ',' or '}'");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}",
                   4, "rank above 8");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': "
                   "(4000000000, 4000000000, 4000000000)}", 4, "truncated");
  expect_npy_error(M, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': "
                   "(99999999999999999999,)}", 4, "too large");
  expect_npy_error(M, 1, "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}", 4,
                   "escape");
  /* header length field larger than the file */
  n = make_npy(buf, M, 1, ok, 24);
  buf[8] = 0xff, buf[9] = 0x7f;
  ck_assert_int_eq(rt_npy_parse(buf, n, "big.npy", &t, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "header says it is 32767 bytes long"), "%s", g_err);
}
END_TEST

/* A safetensors file from a header text (length taken from it unless hlen_override) and a
 * data section of datalen bytes. */
static unsigned char *make_st(const char *hdr, size_t datalen, uint64_t hlen_override,
                              size_t *n) {
  size_t h = strlen(hdr);
  uint64_t hl = hlen_override ? hlen_override : h;
  *n = 8 + h + datalen;
  unsigned char *b = malloc(*n);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hl >> (8 * i));
  memcpy(b + 8, hdr, h);
  memset(b + 8 + h, 0, datalen);
  return b;
}

static void expect_st_error(const char *hdr, size_t datalen, uint64_t hlen, const char *want) {
  size_t n;
  unsigned char *b = make_st(hdr, datalen, hlen, &n);
  RtTensorSet s;
  int r = rt_st_parse(b, n, "w.safetensors", &s, g_err, sizeof g_err);
  free(b);
  if (r == 0) rt_set_free(&s);
  ck_assert_msg(r == -1, "header accepted: %s", hdr);
  ck_assert_msg(strstr(g_err, want) != NULL && strncmp(g_err, "w.safetensors: ", 15) == 0,
                "header %s: message '%s' lacks '%s'", hdr, g_err, want);
}

START_TEST(test_st_corrupt) {
  const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                   "\"b\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[24,32]}}";
  size_t n;
  unsigned char *b = make_st(ok, 32, 0, &n);
  RtTensorSet s;
  ck_assert_msg(rt_st_parse(b, n, "ok.safetensors", &s, g_err, sizeof g_err) == 0, "%s", g_err);
  ck_assert_int_eq(s.n, 2);
  rt_set_free(&s);
  free(b);
  expect_st_error(ok, 32, 100000, "truncated: header length is 100000 bytes");
  expect_st_error(ok, 32, (uint64_t)1 << 40, "implausible");
  expect_st_error("{\"a\": ", 0, 0, "not valid JSON");
  expect_st_error("{\"a\":1} trailing", 0, 0, "not valid JSON");
  expect_st_error("[1, 2]", 0, 0, "not an object");
  expect_st_error("{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":[0,4096]}}",
                  100, 0, "tensor 'fc1.weight' data range [0, 4096) exceeds the data section "
                  "(100 bytes)");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                  24, 0, "overlap");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24, 0,
                  "has shape [2, 3] of F32 (24 bytes) but its data range [0, 20) holds 20 bytes");
  expect_st_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 0,
                  "dtype 'U8', which is not supported");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  8, 0, "'a' appears twice");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, 0,
                  "invalid data_offsets");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4]}}", 8, 0,
                  "invalid data_offsets");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8, 0,
                  "invalid data_offsets");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8, 0,
                  "non-negative");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                  "\"data_offsets\":[0,4]}}", 8, 0, "rank 9");
  expect_st_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 8, 0, "needs \"dtype\"");
  expect_st_error("{\"a\":[1,2]}", 8, 0, "not an object");
  expect_st_error("{\"__metadata__\":{\"k\":1}}", 0, 0, "not a string");
  expect_st_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0, 0, "appears twice");
  expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                  "\"data_offsets\":[0,4]}}", 8, 0, "overflowing");
  /* a NUL inside the header text */
  b = make_st("{\"a\":{}}  ", 0, 0, &n);
  b[8 + 8] = '\0';
  ck_assert_int_eq(rt_st_parse(b, n, "nul.safetensors", &s, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "NUL"), "%s", g_err);
  free(b);
}
END_TEST

/* --- conversion and sets ---------------------------------------------------------------- */

START_TEST(test_convert) {
  int64_t shp[1] = {4};
  RtTensor t;
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F64, 1, shp), 0);
  double *d = t.data;
  d[0] = 0.1, d[1] = -2.5, d[2] = 1e-40, d[3] = 3.0;
  ck_assert_int_eq(rt_tensor_convert(&t, DT_F32, g_err, sizeof g_err), 0);
  ck_assert_int_eq(t.dt, DT_F32);
  ck_assert_uint_eq(t.nbytes, 16);
  float *f = t.data;
  ck_assert(f[0] == 0.1f && f[1] == -2.5f && f[2] == (float)1e-40 && f[3] == 3.0f);
  /* floats to ints only when integral */
  ck_assert_int_eq(rt_tensor_convert(&t, DT_I32, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "element 0") && strstr(g_err, "not an integer"), "%s", g_err);
  ck_assert_int_eq(t.dt, DT_F32); /* unchanged on failure */
  f[0] = 7, f[1] = -2, f[2] = 0;
  ck_assert_int_eq(rt_tensor_convert(&t, DT_I64, g_err, sizeof g_err), 0);
  int64_t *l = t.data;
  ck_assert(l[0] == 7 && l[1] == -2 && l[2] == 0 && l[3] == 3);
  l[2] = (int64_t)INT32_MAX + 1;
  ck_assert_int_eq(rt_tensor_convert(&t, DT_I32, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "element 2 (value 2147483648) does not fit in i32"), "%s", g_err);
  l[2] = INT32_MIN;
  ck_assert_int_eq(rt_tensor_convert(&t, DT_I32, g_err, sizeof g_err), 0);
  ck_assert_int_eq(((int32_t *)t.data)[2], INT32_MIN);
  ck_assert_int_eq(rt_tensor_convert(&t, DT_F16, g_err, sizeof g_err), -1); /* -2^31 */
  ck_assert_msg(strstr(g_err, "element 2") && strstr(g_err, "out of the range of f16"), "%s",
                g_err);
  ((int32_t *)t.data)[2] = -2049; /* rounds to even: -2048 */
  ck_assert_int_eq(rt_tensor_convert(&t, DT_F16, g_err, sizeof g_err), 0);
  ck_assert_float_eq(rt_f16_to_f32(((uint16_t *)t.data)[0]), 7.0f);
  ck_assert_float_eq(rt_f16_to_f32(((uint16_t *)t.data)[2]), -2048.0f);
  rt_tensor_free(&t);
  /* finite f32 beyond the f16 range is refused; bf16 holds it */
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 1, shp), 0);
  ((float *)t.data)[1] = 70000.0f;
  ck_assert_int_eq(rt_tensor_convert(&t, DT_F16, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "element 1 (value 70000) is out of the range of f16"), "%s", g_err);
  ck_assert_int_eq(rt_tensor_convert(&t, DT_BF16, g_err, sizeof g_err), 0);
  ck_assert_float_eq(rt_bf16_to_f32(((uint16_t *)t.data)[1]), 70144.0f); /* nearest bf16 */
  rt_tensor_free(&t);
}
END_TEST

START_TEST(test_tensor_alloc_and_set) {
  RtTensor t;
  int64_t bad[2] = {3, -1}, huge[3] = {1LL << 40, 1LL << 40, 1LL << 40};
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 2, bad), -1);
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 3, huge), -1);
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 9, huge), -1);
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 0, NULL), 0);
  ck_assert_int_eq(rt_tensor_numel(&t), 1);
  ck_assert_uint_eq(t.nbytes, 4);
  ck_assert_uint_eq((uintptr_t)t.data % 64, 0);
  RtTensorSet s = {0};
  ck_assert_int_eq(rt_set_add(&s, "x", &t, g_err, sizeof g_err), 0);
  ck_assert_ptr_null(t.data); /* moved */
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_I32, 1, g_shapes[1]), 0);
  ck_assert_int_eq(rt_set_add(&s, "x", &t, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "'x' is already in the set"), "%s", g_err);
  ck_assert_int_eq(rt_set_add(&s, "", &t, g_err, sizeof g_err), -1);
  for (int i = 0; i < 20; i++) {
    char nm[16];
    RtTensor u;
    snprintf(nm, sizeof nm, "t%d", i);
    ck_assert_int_eq(rt_tensor_alloc(&u, DT_I32, 1, g_shapes[1]), 0);
    ((int32_t *)u.data)[0] = i;
    ck_assert_int_eq(rt_set_add(&s, nm, &u, g_err, sizeof g_err), 0);
  }
  ck_assert_int_eq(s.n, 21);
  ck_assert_int_eq(((int32_t *)rt_set_find(&s, "t13")->data)[0], 13);
  ck_assert_ptr_null(rt_set_find(&s, "t20"));
  ck_assert_int_eq(rt_set_set_metadata(&s, "{\"k\":\"v\"}", g_err, sizeof g_err), 0);
  ck_assert_str_eq(rt_set_meta(&s, "k"), "v");
  ck_assert_int_eq(rt_set_set_metadata(&s, "{\"k\":[1]}", g_err, sizeof g_err), -1);
  ck_assert_int_eq(rt_set_set_metadata(&s, "nope", g_err, sizeof g_err), -1);
  /* writing refuses bad metadata and leaves no file */
  const char *p = path_in("m.safetensors");
  ck_assert_int_eq(rt_st_write(p, &s, "{\"k\":2}", g_err, sizeof g_err), -1);
  ck_assert_ptr_nonnull(strstr(g_err, "metadata must be a JSON object of strings"));
  ck_assert_int_ne(access(p, F_OK), 0);
  rt_set_free(&s);
  rt_tensor_free(&t);
  rt_set_free(&s); /* twice is harmless */
}
END_TEST

/* --- files ------------------------------------------------------------------------------ */

static int count_temps(void) {
  DIR *d = opendir(g_dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  closedir(d);
  return n;
}

static void assert_content(const char *p, const char *want) {
  size_t n;
  char *b = read_bytes(p, &n);
  ck_assert_uint_eq(n, strlen(want));
  ck_assert_str_eq(b, want);
  free(b);
}

START_TEST(test_read_all) {
  size_t n;
  ck_assert_ptr_null(rt_file_read_all(path_in("nope"), &n, g_err, sizeof g_err));
  ck_assert_msg(strstr(g_err, "nope: cannot open: No such file"), "%s", g_err);
  ck_assert_ptr_null(rt_file_read_all(g_dir, &n, g_err, sizeof g_err));
  ck_assert_msg(strstr(g_err, "is a directory"), "%s", g_err);
  RtTensor t;
  ck_assert_int_eq(rt_npy_read(g_dir, &t, g_err, sizeof g_err), -1);
  /* larger than any initial buffer guess for a stream */
  char *big = malloc(100000);
  for (int i = 0; i < 100000; i++) big[i] = (char)('a' + i % 26);
  write_bytes(path_in("big"), big, 100000);
  char *b = rt_file_read_all(path_in("big"), &n, g_err, sizeof g_err);
  ck_assert_uint_eq(n, 100000);
  ck_assert(memcmp(b, big, n) == 0 && b[n] == '\0');
  free(b);
  b = rt_file_read_all("/proc/self/status", &n, g_err, sizeof g_err); /* size 0 in stat */
  ck_assert_msg(b && n > 0 && strstr(b, "Name:"), "%s", g_err);
  free(b);
  free(big);
  write_bytes(path_in("empty"), "", 0);
  b = rt_file_read_all(path_in("empty"), &n, g_err, sizeof g_err);
  ck_assert(b && n == 0);
  free(b);
}
END_TEST

START_TEST(test_atomic_write) {
  const char *p = path_in("f.txt");
  const void *parts[3] = {"hello ", "", "world"};
  size_t sizes[3] = {6, 0, 5};
  ck_assert_int_eq(rt_file_write_atomic(p, parts, sizes, 3, g_err, sizeof g_err), 0);
  assert_content(p, "hello world");
  struct stat st;
  ck_assert_int_eq(stat(p, &st), 0);
  mode_t mask = umask(0);
  umask(mask);
  ck_assert_uint_eq(st.st_mode & 0777, 0666 & ~mask); /* the umask decides, as for any file */
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(rt_file_write_atomic(p, parts, sizes, 1, g_err, sizeof g_err), 0);
  assert_content(p, "hello ");
  ck_assert_int_eq(count_temps(), 0);
  /* into a directory that does not exist */
  const char *q = path_in("no/such/dir/x.npy");
  ck_assert_int_eq(rt_file_write_atomic(q, parts, sizes, 1, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, q) && strstr(g_err, "does the directory exist?"), "%s", g_err);
  /* rename fails when the target is a non-empty directory: the directory stays, no temp */
  const char *dir = path_in("adir");
  ck_assert_int_eq(mkdir(dir, 0777), 0);
  write_bytes(path_in("adir/keep"), "k", 1);
  ck_assert_int_eq(rt_file_write_atomic(dir, parts, sizes, 1, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "rename"), "%s", g_err);
  assert_content(path_in("adir/keep"), "k");
  ck_assert_int_eq(count_temps(), 0);
}
END_TEST

/* A write that fails halfway (file size limit) reports it, removes the temporary and leaves
 * the previous file as it was. Check runs each test in its own process, so the limit does
 * not leak; it is restored anyway. */
START_TEST(test_atomic_write_failure_keeps_old) {
  const char *p = path_in("w.npy");
  RtTensor t;
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 2, g_shapes[2]), 0);
  fill_formula(&t, 'f');
  ck_assert_int_eq(rt_npy_write(p, &t, g_err, sizeof g_err), 0);
  size_t n0;
  void *before = read_bytes(p, &n0);
  rt_tensor_free(&t);

  int64_t big[1] = {1 << 20};
  ck_assert_int_eq(rt_tensor_alloc(&t, DT_F32, 1, big), 0);
  struct rlimit old, lim;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 4096;
  signal(SIGXFSZ, SIG_IGN);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  int r = rt_npy_write(p, &t, g_err, sizeof g_err);
  setrlimit(RLIMIT_FSIZE, &old);
  ck_assert_int_eq(r, -1);
  ck_assert_msg(strstr(g_err, p) && strstr(g_err, "write failed"), "%s", g_err);
  size_t n1;
  void *after = read_bytes(p, &n1);
  ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
  ck_assert_int_eq(count_temps(), 0);
  /* a set that cannot be written (duplicate names) leaves the old file too */
  RtTensorSet s = {0};
  RtTensor a, b;
  ck_assert_int_eq(rt_tensor_alloc(&a, DT_F32, 0, NULL), 0);
  ck_assert_int_eq(rt_tensor_alloc(&b, DT_F32, 0, NULL), 0);
  ck_assert_int_eq(rt_set_add(&s, "a", &a, g_err, sizeof g_err), 0);
  ck_assert_int_eq(rt_set_add(&s, "b", &b, g_err, sizeof g_err), 0);
  free(s.names[1]);
  s.names[1] = strdup("a");
  ck_assert_int_eq(rt_st_write(p, &s, NULL, g_err, sizeof g_err), -1);
  ck_assert_msg(strstr(g_err, "'a' appears twice"), "%s", g_err);
  free(after);
  after = read_bytes(p, &n1);
  ck_assert(n0 == n1 && memcmp(before, after, n0) == 0);
  rt_set_free(&s);
  free(before);
  free(after);
  rt_tensor_free(&t);
}
END_TEST

static Suite *rt_io_suite(void) {
  Suite *s = suite_create("rt_io");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_f16_exhaustive);
  tcase_add_test(tc, test_f16_rounding_matches_numpy);
  tcase_add_test(tc, test_bf16_rounding);
  tcase_add_test(tc, test_npy_roundtrip);
  tcase_add_test(tc, test_npy_bf16_refused);
  tcase_add_test(tc, test_st_roundtrip);
  tcase_add_test(tc, test_st_empty_set);
  tcase_add_test(tc, test_npy_from_numpy);
  tcase_add_test(tc, test_st_from_python);
  tcase_add_test(tc, test_c_to_numpy);
  tcase_add_test(tc, test_npy_truncated_everywhere);
  tcase_add_test(tc, test_st_truncated_everywhere);
  tcase_add_test(tc, test_npy_corrupt);
  tcase_add_test(tc, test_st_corrupt);
  tcase_add_test(tc, test_convert);
  tcase_add_test(tc, test_tensor_alloc_and_set);
  tcase_add_test(tc, test_read_all);
  tcase_add_test(tc, test_atomic_write);
  tcase_add_test(tc, test_atomic_write_failure_keeps_old);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(rt_io_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
