/* npy.c — NumPy .npy reader and writer (format 1.0, 2.0, 3.0; C order).
 * The header is a Python dict literal; it is parsed by a small bounded scanner that accepts
 * exactly what numpy writes (plus harmless variations: either quote style, trailing commas,
 * `3L` ints from Python 2) and rejects anything else with a message, never reading past the
 * header length. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_io.h"
#include "rt_mem.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the runtime's file I/O assumes a little-endian host"
#endif

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* --- header dict scanner ---------------------------------------------------------------- */

typedef struct {
  const char *p, *e; /* cursor and end of the header text */
  const char *name;  /* file name for messages */
  char *err;
  size_t errlen;
} Scan;

typedef struct {
  char descr[32];
  int fortran;
  int rank;
  int64_t shape[RT_MAX_RANK];
  int have_descr, have_fortran, have_shape;
} NpyHeader;

static int scan_fail(Scan *s, const char *what) {
  rt_errf(s->err, s->errlen, "%s: malformed .npy header: %s", s->name, what);
  return -1;
}

static void skip_ws(Scan *s) {
  while (s->p < s->e && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static int expect(Scan *s, char c, const char *what) {
  skip_ws(s);
  if (s->p >= s->e || *s->p != c) return scan_fail(s, what);
  s->p++;
  return 0;
}

static int scan_string(Scan *s, char *out, size_t outlen) {
  skip_ws(s);
  if (s->p >= s->e || (*s->p != '\'' && *s->p != '"'))
    return scan_fail(s, "expected a quoted string");
  char q = *s->p++;
  size_t n = 0;
  while (s->p < s->e && *s->p != q) {
    if (*s->p == '\\') return scan_fail(s, "escape sequences in strings are not supported");
    if (n + 1 >= outlen) return scan_fail(s, "string too long");
    out[n++] = *s->p++;
  }
  if (s->p >= s->e) return scan_fail(s, "unterminated string");
  s->p++;
  out[n] = '\0';
  return 0;
}

static int scan_word(Scan *s, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(s->e - s->p) >= n && memcmp(s->p, w, n) == 0) {
    s->p += n;
    return 1;
  }
  return 0;
}

static int scan_bool(Scan *s, int *out) {
  skip_ws(s);
  if (scan_word(s, "True")) *out = 1;
  else if (scan_word(s, "False")) *out = 0;
  else return scan_fail(s, "'fortran_order' must be True or False");
  return 0;
}

/* a non-negative dim; 2^62 bounds it well above any size a file could back */
static int scan_dim(Scan *s, int64_t *out) {
  skip_ws(s);
  if (s->p < s->e && *s->p == '-') return scan_fail(s, "negative dimension in 'shape'");
  if (s->p >= s->e || *s->p < '0' || *s->p > '9')
    return scan_fail(s, "'shape' must be a tuple of non-negative integers, like (3, 4)");
  int64_t v = 0;
  while (s->p < s->e && *s->p >= '0' && *s->p <= '9') {
    if (v > ((int64_t)1 << 62) / 10) return scan_fail(s, "dimension in 'shape' is too large");
    v = v * 10 + (*s->p++ - '0');
  }
  if (s->p < s->e && (*s->p == 'L' || *s->p == 'l')) s->p++;
  *out = v;
  return 0;
}

static int scan_shape(Scan *s, NpyHeader *h) {
  if (expect(s, '(', "'shape' must be a tuple, like (3, 4)") != 0) return -1;
  h->rank = 0;
  for (;;) {
    skip_ws(s);
    if (s->p < s->e && *s->p == ')') break;
    if (h->rank == RT_MAX_RANK) {
      rt_errf(s->err, s->errlen, "%s: arrays of rank above %d are not supported", s->name,
              RT_MAX_RANK);
      return -1;
    }
    if (scan_dim(s, &h->shape[h->rank++]) != 0) return -1;
    skip_ws(s);
    if (s->p < s->e && *s->p == ',') s->p++;
    else if (!(s->p < s->e && *s->p == ')')) return scan_fail(s, "expected ',' or ')' in 'shape'");
  }
  s->p++;
  return 0;
}

static int scan_entry(Scan *s, NpyHeader *h) {
  char key[32];
  if (scan_string(s, key, sizeof key) != 0) return -1;
  if (expect(s, ':', "expected ':' after a key") != 0) return -1;
  int *seen;
  int r;
  if (strcmp(key, "descr") == 0) {
    seen = &h->have_descr;
    skip_ws(s);
    if (s->p < s->e && *s->p == '[') {
      rt_errf(s->err, s->errlen, "%s: structured dtypes (record arrays) are not supported; "
              "save each field as its own array", s->name);
      return -1;
    }
    r = scan_string(s, h->descr, sizeof h->descr);
  } else if (strcmp(key, "fortran_order") == 0) {
    seen = &h->have_fortran;
    r = scan_bool(s, &h->fortran);
  } else if (strcmp(key, "shape") == 0) {
    seen = &h->have_shape;
    r = scan_shape(s, h);
  } else {
    rt_errf(s->err, s->errlen, "%s: malformed .npy header: unexpected key '%s' (expected "
            "'descr', 'fortran_order', 'shape')", s->name, key);
    return -1;
  }
  if (r != 0) return -1;
  if (*seen) {
    rt_errf(s->err, s->errlen, "%s: malformed .npy header: key '%s' appears twice", s->name, key);
    return -1;
  }
  *seen = 1;
  return 0;
}

static int scan_header(Scan *s, NpyHeader *h) {
  memset(h, 0, sizeof *h);
  if (expect(s, '{', "expected a dict starting with '{'") != 0) return -1;
  for (;;) {
    skip_ws(s);
    if (s->p < s->e && *s->p == '}') break;
    if (scan_entry(s, h) != 0) return -1;
    skip_ws(s);
    if (s->p < s->e && *s->p == ',') s->p++;
    else if (!(s->p < s->e && *s->p == '}')) return scan_fail(s, "expected ',' or '}'");
  }
  s->p++;
  skip_ws(s);
  if (s->p != s->e) return scan_fail(s, "unexpected text after the closing '}'");
  if (!h->have_descr || !h->have_fortran || !h->have_shape)
    return scan_fail(s, "missing one of the keys 'descr', 'fortran_order', 'shape'");
  return 0;
}

/* --- dtypes ----------------------------------------------------------------------------- */

typedef enum { NPY_F4, NPY_F8, NPY_F2, NPY_I4, NPY_I8, NPY_U1, NPY_B1 } NpyKind;

typedef struct {
  NpyKind kind;
  int bigendian;
  size_t itemsize;
  DType dt; /* what it becomes in memory */
} NpyType;

static int parse_descr(const char *d, const char *name, NpyType *t, char *err, size_t errlen) {
  static const struct {
    const char *code;
    NpyKind kind;
    size_t size;
    DType dt;
  } tab[] = {{"f4", NPY_F4, 4, DT_F32}, {"f8", NPY_F8, 8, DT_F64}, {"f2", NPY_F2, 2, DT_F16},
             {"i4", NPY_I4, 4, DT_I32}, {"i8", NPY_I8, 8, DT_I64}, {"u1", NPY_U1, 1, DT_I32},
             {"b1", NPY_B1, 1, DT_I32}};
  char order = d[0];
  const char *code = d + 1;
  if (order != '<' && order != '>' && order != '|' && order != '=') order = '=', code = d;
  for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
    if (strcmp(code, tab[i].code) != 0) continue;
    if (order == '|' && tab[i].size > 1) break; /* '|' only makes sense for single bytes */
    t->kind = tab[i].kind;
    t->itemsize = tab[i].size;
    t->dt = tab[i].dt;
    t->bigendian = order == '>' && tab[i].size > 1;
    return 0;
  }
  rt_errf(err, errlen, "%s: dtype '%s' is not supported (supported: float32, float64, float16, "
          "int32, int64, uint8, bool); save as float32 with arr.astype(np.float32) or as int32 "
          "with arr.astype(np.int32)", name, d);
  return -1;
}

/* Copies n file elements into out, byte-swapping or widening as the file type needs. */
static void decode_data(const unsigned char *src, size_t n, const NpyType *t, void *out) {
  if (t->kind == NPY_U1 || t->kind == NPY_B1) {
    int32_t *o = out;
    for (size_t i = 0; i < n; i++) o[i] = t->kind == NPY_B1 ? src[i] != 0 : src[i];
    return;
  }
  memcpy(out, src, n * t->itemsize);
  if (!t->bigendian) return;
  unsigned char *b = out;
  for (size_t i = 0; i < n; i++, b += t->itemsize)
    for (size_t j = 0; j < t->itemsize / 2; j++) {
      unsigned char c = b[j];
      b[j] = b[t->itemsize - 1 - j];
      b[t->itemsize - 1 - j] = c;
    }
}

static void shape_str(const int64_t *shape, int rank, char *buf, size_t len) {
  size_t o = 0;
  buf[0] = '\0';
  if (rank == 0) snprintf(buf, len, "1");
  for (int i = 0; i < rank && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "*" : "", (long long)shape[i]);
}

/* --- reading ---------------------------------------------------------------------------- */

/* Validates the fixed prelude; sets the header text range. */
static int read_prelude(const unsigned char *b, size_t len, const char *name, size_t *hoff,
                        size_t *hlen, char *err, size_t errlen) {
  if (len < 6 || memcmp(b, npy_magic, 6) != 0) {
    rt_errf(err, errlen, "%s: not a .npy file (it does not start with \\x93NUMPY%s)", name,
            len < 6 ? "; the file is too short" : "");
    return -1;
  }
  if (len < 8) {
    rt_errf(err, errlen, "%s: truncated: the file ends inside the .npy version field", name);
    return -1;
  }
  int major = b[6], minor = b[7];
  if (!((major == 1 || major == 2 || major == 3) && minor == 0)) {
    rt_errf(err, errlen, "%s: .npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)",
            name, major, minor);
    return -1;
  }
  size_t lenbytes = major == 1 ? 2 : 4;
  if (len < 8 + lenbytes) {
    rt_errf(err, errlen, "%s: truncated: the file ends inside the .npy header length", name);
    return -1;
  }
  uint64_t h = 0;
  for (size_t i = 0; i < lenbytes; i++) h |= (uint64_t)b[8 + i] << (8 * i);
  *hoff = 8 + lenbytes;
  if (h > len - *hoff) {
    rt_errf(err, errlen, "%s: truncated: the header says it is %llu bytes long but only %zu "
            "bytes follow", name, (unsigned long long)h, len - *hoff);
    return -1;
  }
  *hlen = (size_t)h;
  return 0;
}

/* Validates a whole .npy image: header, dtype, order, and that the data is exactly shape x
 * dtype bytes. Fills the type, the header and where the data starts. */
static int npy_locate(const unsigned char *b, size_t len, const char *name, NpyType *ty,
                      NpyHeader *h, const unsigned char **data, char *err, size_t errlen) {
  size_t hoff, hlen;
  if (read_prelude(b, len, name, &hoff, &hlen, err, errlen) != 0) return -1;
  Scan s = {(const char *)b + hoff, (const char *)b + hoff + hlen, name, err, errlen};
  if (scan_header(&s, h) != 0) return -1;
  if (parse_descr(h->descr, name, ty, err, errlen) != 0) return -1;
  if (h->fortran && h->rank > 1) {
    rt_errf(err, errlen, "%s: the array is in Fortran (column-major) order, which is not "
            "supported; save np.ascontiguousarray(arr) instead", name);
    return -1;
  }
  size_t avail = len - hoff - hlen;
  char dims[256];
  shape_str(h->shape, h->rank, dims, sizeof dims);
  /* the element count is checked against the bytes present before anything is allocated */
  uint64_t n = 1;
  int too_big = 0;
  for (int i = 0; i < h->rank; i++) {
    uint64_t d = (uint64_t)h->shape[i];
    if (d && n > UINT64_MAX / d) too_big = 1;
    else n *= d;
  }
  if (!too_big && n > UINT64_MAX / ty->itemsize) too_big = 1;
  uint64_t need = n * ty->itemsize;
  if (too_big || need > avail) {
    rt_errf(err, errlen, "%s: truncated: header says %s %s values (%s%llu bytes) but only %zu "
            "bytes follow", name, dims, h->descr + (h->descr[0] == '<' || h->descr[0] == '|'),
            too_big ? "more than " : "", too_big ? (unsigned long long)UINT64_MAX
            : (unsigned long long)need, avail);
    return -1;
  }
  if (need < avail) {
    rt_errf(err, errlen, "%s: %zu unexpected bytes after the data (header says %s %s values, "
            "%llu bytes); the file is corrupt or not a single .npy array", name,
            avail - (size_t)need, dims, h->descr, (unsigned long long)need);
    return -1;
  }
  *data = b + hoff + hlen;
  return 0;
}

int rt_npy_parse(const void *buf, size_t len, const char *name, RtTensor *out, char *err,
                 size_t errlen) {
  memset(out, 0, sizeof *out);
  NpyType ty;
  NpyHeader h;
  const unsigned char *data;
  if (npy_locate(buf, len, name, &ty, &h, &data, err, errlen) != 0) return -1;
  if (rt_tensor_alloc(out, ty.dt, h.rank, h.shape) != 0) {
    char dims[256];
    shape_str(h.shape, h.rank, dims, sizeof dims);
    rt_errf(err, errlen, "%s: out of memory for %s values", name, dims);
    return -1;
  }
  decode_data(data, (size_t)rt_tensor_numel(out), &ty, out->data);
  return 0;
}

int rt_npy_read(const char *path, RtTensor *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  RtMap m;
  if (rt_map_file(path, &m, err, errlen)) return -1;
  int r = rt_npy_parse(m.data, m.len, path, out, err, errlen);
  rt_map_free(&m);
  return r;
}

/* --- mapped arrays ---------------------------------------------------------------------- */

int rt_npy_open(const char *path, RtNpyView *v, char *err, size_t errlen) {
  memset(v, 0, sizeof *v);
  if (rt_map_file(path, &v->map, err, errlen)) return -1;
  NpyType ty;
  NpyHeader h;
  if (npy_locate(v->map.data, v->map.len, path, &ty, &h, &v->data, err, errlen) != 0) {
    rt_map_free(&v->map);
    return -1;
  }
  v->path = path;
  v->dt = ty.dt;
  v->rank = h.rank;
  memcpy(v->shape, h.shape, sizeof v->shape);
  v->file_kind = (int)ty.kind;
  v->file_bigendian = ty.bigendian;
  v->file_itemsize = ty.itemsize;
  v->row_elems = 1;
  for (int k = 1; k < h.rank; k++) v->row_elems *= h.shape[k];
  v->rows = h.rank ? h.shape[0] : 1;
  return 0;
}

void rt_npy_close(RtNpyView *v) {
  rt_map_free(&v->map);
  memset(v, 0, sizeof *v);
}

int rt_npy_direct(const RtNpyView *v, DType want) {
  NpyKind k = (NpyKind)v->file_kind;
  return v->dt == want && !v->file_bigendian && k != NPY_U1 && k != NPY_B1;
}

/* one row decoded to the view's dtype in tmp, then converted into dst */
static int gather_convert(const RtNpyView *v, int64_t row, DType want, void *tmp, void *dst,
                          char *err, size_t errlen) {
  NpyType ty = {(NpyKind)v->file_kind, v->file_bigendian, v->file_itemsize, v->dt};
  size_t n = (size_t)v->row_elems;
  decode_data(v->data + (size_t)row * n * v->file_itemsize, n, &ty, tmp);
  char why[256];
  if (rt_convert_elems(tmp, v->dt, dst, want, n, why, sizeof why) == 0) return 0;
  rt_errf(err, errlen, "%s: sample %lld: cannot convert %s to %s: %s", v->path,
          (long long)row, dt_name(v->dt), dt_name(want), why);
  return -1;
}

int rt_npy_gather(const RtNpyView *v, const int64_t *rows, int64_t first, int64_t n, DType want,
                  void *dst, char *err, size_t errlen) {
  size_t out_row = (size_t)v->row_elems * dt_size(want);
  if (rt_npy_direct(v, want)) {
    for (int64_t i = 0; i < n; i++)
      memcpy((char *)dst + (size_t)i * out_row,
             v->data + (size_t)(rows ? rows[i] : first + i) * out_row, out_row);
    return 0;
  }
  void *tmp = malloc((size_t)v->row_elems * dt_size(v->dt) + 1);
  if (!tmp) {
    rt_errf(err, errlen, "%s: out of memory", v->path);
    return -1;
  }
  int rc = 0;
  for (int64_t i = 0; i < n && !rc; i++)
    rc = gather_convert(v, rows ? rows[i] : first + i, want, tmp,
                        (char *)dst + (size_t)i * out_row, err, errlen);
  free(tmp);
  return rc;
}

int rt_npy_read_as(const char *path, DType want, RtTensor *out, char *err, size_t errlen) {
  if (rt_npy_read(path, out, err, errlen) != 0) return -1;
  char why[256];
  if (rt_tensor_convert(out, want, why, sizeof why) != 0) {
    rt_errf(err, errlen, "%s: cannot convert %s to %s: %s", path, dt_name(out->dt),
            dt_name(want), why);
    rt_tensor_free(out);
    return -1;
  }
  return 0;
}

/* --- writing ---------------------------------------------------------------------------- */

static const char *npy_descr(DType dt) {
  switch (dt) {
  case DT_F32: return "<f4";
  case DT_F16: return "<f2";
  case DT_F64: return "<f8";
  case DT_I32: return "<i4";
  case DT_I64: return "<i8";
  default: return NULL;
  }
}

int rt_npy_write(const char *path, const RtTensor *t, char *err, size_t errlen) {
  const char *descr = (unsigned)t->dt < DT_COUNT ? npy_descr(t->dt) : NULL;
  if (!descr) {
    rt_errf(err, errlen, "%s: dtype %s has no .npy equivalent; convert to f32 first", path,
            dt_name(t->dt));
    return -1;
  }
  if (t->rank < 0 || t->rank > RT_MAX_RANK) {
    rt_errf(err, errlen, "%s: invalid tensor rank %d", path, t->rank);
    return -1;
  }
  for (int i = 0; i < t->rank; i++)
    if (t->shape[i] < 0) {
      rt_errf(err, errlen, "%s: invalid tensor: dim %d is negative", path, i);
      return -1;
    }
  if ((uint64_t)rt_tensor_numel(t) * dt_size(t->dt) != t->nbytes || (t->nbytes && !t->data)) {
    rt_errf(err, errlen, "%s: invalid tensor: nbytes %zu does not match its shape", path,
            t->nbytes);
    return -1;
  }
  /* the dict numpy itself writes, so `np.load` output and byte-level diffs agree */
  char hdr[512];
  int o = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '%s', 'fortran_order': False, "
                   "'shape': (", descr);
  for (int i = 0; i < t->rank; i++)
    o += snprintf(hdr + 10 + o, sizeof hdr - 10 - (size_t)o, "%s%lld%s", i ? ", " : "",
                  (long long)t->shape[i], t->rank == 1 ? "," : "");
  o += snprintf(hdr + 10 + o, sizeof hdr - 10 - (size_t)o, "), }");
  size_t total = (10 + (size_t)o + 1 + 63) / 64 * 64; /* +1 for the final '\n' */
  memset(hdr + 10 + o, ' ', total - 10 - (size_t)o - 1);
  hdr[total - 1] = '\n';
  memcpy(hdr, npy_magic, 6);
  hdr[6] = 1;
  hdr[7] = 0;
  hdr[8] = (char)((total - 10) & 0xff);
  hdr[9] = (char)((total - 10) >> 8);
  const void *parts[2] = {hdr, t->data};
  size_t sizes[2] = {total, t->nbytes};
  return rt_file_write_atomic(path, parts, sizes, 2, err, errlen);
}
